/* evaluate.c -- model and baseline evaluation over the metrics accumulator. */
#include "evaluate.h"
#include "expected_f1.h"
#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const tr_bl_names[TR_N_BL] = {"G-TopFreq", "P-TopFreq", "TIFU-KNN"};

#define EVAL_BATCH 64
#define EF1_M 200        /* products entering the expected-F1 programme */
#define BL_LIST 500      /* baseline list length before restricting to candidates */

/* BCE with pos_weight for one logit, stable for any |x| (as nn_bce_forward). */
static double bce(double x, int y, double pw) {
    double sp_neg = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); /* -log s(x)  */
    double sp_pos = sp_neg + x;                                      /* -log(1-s(x)) */
    return y ? pw * sp_neg : sp_pos;
}

static double raw_sigmoid(double z) {
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* The distinct true products of order t into truth (capacity P); returns the count. */
static int truth_of(const st_history *h, int64_t t, uint8_t *mark, int32_t *truth) {
    int n = 0;
    for (int64_t j = h->order_item_off[t]; j < h->order_item_off[t + 1]; j++) {
        int32_t p = h->items[j];
        if (!mark[p]) mark[p] = 1, truth[n++] = p;
    }
    return n;
}

int tr_eval_model(tr_scorer *s, const nn_model *m, const st_history *h, const tr_sample *smp,
                  int n, const tr_cands *cands, double threshold, int want_ef1,
                  float pos_weight, tr_reliability *rel_before, tr_reliability *rel_after,
                  tr_eval_result *out, char *err, size_t errlen) {
    int P = h->n_products, rc = NB_OK;
    double t0 = nb_now();
    memset(out, 0, sizeof *out);
    tr_metrics acc[2][2];   /* [full/cand][thr/ef1] */
    memset(acc, 0, sizeof acc);
    tr_ef1 *ef = NULL;
    float *logit = nb_xmalloc((size_t)EVAL_BATCH * P * sizeof(float));
    float *prob = nb_xmalloc((size_t)EVAL_BATCH * P * sizeof(float));
    float *cprob = nb_xmalloc((size_t)P * sizeof(float));
    int32_t *truth = nb_xmalloc((size_t)P * sizeof(int32_t));
    int32_t *pred = nb_xmalloc((size_t)P * sizeof(int32_t));
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    int32_t ranked[TR_EVAL_TOPN];
    double loss = 0;
    for (int a = 0; a < 2 && rc == NB_OK; a++)
        for (int b = 0; b < 2 && rc == NB_OK; b++) rc = tr_metrics_init(&acc[a][b], P, err, errlen);
    if (rc == NB_OK && want_ef1) rc = tr_ef1_new(&ef, EF1_M, err, errlen);
    for (int i = 0; i < n && rc == NB_OK; i += EVAL_BATCH) {
        int B = n - i < EVAL_BATCH ? n - i : EVAL_BATCH;
        rc = tr_score_batch(s, h, smp + i, B, logit, prob, err, errlen);
        for (int b = 0; b < B && rc == NB_OK; b++) {
            const float *lg = logit + (size_t)b * P, *pr = prob + (size_t)b * P;
            int nt = truth_of(h, smp[i + b].target, mark, truth);
            double l = 0;
            for (int p = 0; p < P; p++) l += bce(lg[p], mark[p], pos_weight);
            loss += l / P;
            /* full catalogue */
            int nr = tr_topk(pr, NULL, P, TR_EVAL_TOPN, ranked), np = 0;
            for (int p = 0; p < P; p++)
                if (pr[p] >= threshold) pred[np++] = p;
            rc = tr_metrics_add(&acc[0][0], ranked, nr, pred, np, truth, nt, err, errlen);
            if (rc == NB_OK && ef) {
                rc = tr_ef1_choose(ef, pr, NULL, P, 0, pred, &np, NULL, err, errlen);
                if (rc == NB_OK)
                    rc = tr_metrics_add(&acc[0][1], ranked, nr, pred, np, truth, nt, err, errlen);
            }
            /* candidate set */
            if (rc == NB_OK && cands) {
                int nc;
                const int32_t *cs = tr_cands_user(cands, smp[i + b].user, &nc);
                nr = tr_topk(pr, cs, nc, TR_EVAL_TOPN, ranked);
                np = 0;
                for (int j = 0; j < nc; j++) {
                    if (pr[cs[j]] >= threshold) pred[np++] = cs[j];
                    cprob[j] = pr[cs[j]];
                    if (rel_before) tr_reliability_add(rel_before, raw_sigmoid(lg[cs[j]]), mark[cs[j]]);
                    if (rel_after) tr_reliability_add(rel_after, pr[cs[j]], mark[cs[j]]);
                }
                rc = tr_metrics_add(&acc[1][0], ranked, nr, pred, np, truth, nt, err, errlen);
                if (rc == NB_OK)
                    rc = tr_metrics_add_cands(&acc[1][0], cs, nc, truth, nt, err, errlen);
                if (rc == NB_OK && ef) {
                    rc = tr_ef1_choose(ef, cprob, cs, nc, 0, pred, &np, NULL, err, errlen);
                    if (rc == NB_OK)
                        rc = tr_metrics_add(&acc[1][1], ranked, nr, pred, np, truth, nt, err, errlen);
                }
            } else if (rc == NB_OK) {
                for (int p = 0; p < P; p++) {
                    if (rel_before) tr_reliability_add(rel_before, raw_sigmoid(lg[p]), mark[p]);
                    if (rel_after) tr_reliability_add(rel_after, pr[p], mark[p]);
                }
            }
            for (int j = 0; j < nt; j++) mark[truth[j]] = 0;
        }
    }
    if (rc == NB_OK) {
        for (int a = 0; a < 2; a++) {
            tr_metrics_get(&acc[a][0], &out->thr[a]);
            tr_metrics_get(&acc[a][1], &out->ef1[a]);
        }
        out->loss = n ? loss / n : 0;
        out->n = n;
        out->seconds = nb_now() - t0;
    }
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) tr_metrics_free(&acc[a][b]);
    tr_ef1_free(ef);
    free(logit);
    free(prob);
    free(cprob);
    free(truth);
    free(pred);
    free(mark);
    (void)m;
    return rc;
}

int tr_eval_calib_pairs(tr_scorer *s, const st_history *h, const tr_sample *smp, int n,
                        const tr_cands *cands, int64_t max_pairs, float **logit_out,
                        uint8_t **label_out, int64_t *np_out, char *err, size_t errlen) {
    int P = h->n_products, rc = NB_OK;
    float *logit = nb_xmalloc((size_t)EVAL_BATCH * P * sizeof(float));
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    int32_t *truth = nb_xmalloc((size_t)P * sizeof(int32_t));
    int64_t cap = 1 << 16, np = 0;
    float *L = nb_xmalloc((size_t)cap * sizeof(float));
    uint8_t *Y = nb_xmalloc((size_t)cap);
    for (int i = 0; i < n && rc == NB_OK && np < max_pairs; i += EVAL_BATCH) {
        int B = n - i < EVAL_BATCH ? n - i : EVAL_BATCH;
        rc = tr_score_batch(s, h, smp + i, B, logit, NULL, err, errlen);
        for (int b = 0; b < B && rc == NB_OK && np < max_pairs; b++) {
            const float *lg = logit + (size_t)b * P;
            int nt = truth_of(h, smp[i + b].target, mark, truth), nc = P;
            const int32_t *cs = cands ? tr_cands_user(cands, smp[i + b].user, &nc) : NULL;
            if (np + nc > cap) {
                while (np + nc > cap) cap *= 2;
                L = nb_xrealloc(L, (size_t)cap * sizeof(float));
                Y = nb_xrealloc(Y, (size_t)cap);
            }
            for (int j = 0; j < nc; j++) {
                int p = cs ? cs[j] : j;
                L[np] = lg[p];
                Y[np++] = mark[p];
            }
            for (int j = 0; j < nt; j++) mark[truth[j]] = 0;
        }
    }
    free(logit);
    free(mark);
    free(truth);
    if (rc) {
        free(L);
        free(Y);
        return rc;
    }
    *logit_out = L;
    *label_out = Y;
    *np_out = np;
    return NB_OK;
}

/* Whether p is in the ascending set cs[n]. */
static int in_set(const int32_t *cs, int n, int32_t p) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cs[mid] < p) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && cs[lo] == p;
}

/* Feeds one baseline list (list[nl], score[nl], best first) into acc (full and cand). */
static int feed_list(tr_metrics acc[2], const int32_t *list, const float *score, int nl,
                     const int32_t *cs, int nc, double thr, const int32_t *truth, int nt,
                     int32_t *ranked, int32_t *pred, char *err, size_t errlen) {
    for (int a = 0; a < (cs ? 2 : 1); a++) {
        int nr = 0, np = 0;
        for (int j = 0; j < nl; j++) {
            if (a == 1 && !in_set(cs, nc, list[j])) continue;
            if (nr < TR_EVAL_TOPN) ranked[nr++] = list[j];
            if (score[j] >= thr) pred[np++] = list[j];
        }
        int rc = tr_metrics_add(&acc[a], ranked, nr, pred, np, truth, nt, err, errlen);
        if (rc) return rc;
        if (a == 1) {
            rc = tr_metrics_add_cands(&acc[1], cs, nc, truth, nt, err, errlen);
            if (rc) return rc;
        }
    }
    return NB_OK;
}

int tr_eval_baselines(const st_history *h, const tr_sample *smp, int n, const tr_sample *ref,
                      int n_ref, const tr_cands *cands, double threshold, int n_threads,
                      tr_eval_result out[TR_N_BL], char *err, size_t errlen) {
    (void)n_threads;
    int P = h->n_products, rc = NB_OK;
    int nl_max = P < BL_LIST ? P : BL_LIST;
    tr_popularity pop = {0};
    tr_bl_ws *ws = NULL;
    tr_tifu *tifu = NULL;
    tr_tifu_params tp;
    tr_tifu_defaults(&tp);
    tr_metrics acc[TR_N_BL][2];
    memset(acc, 0, sizeof acc);
    int32_t *ref_users = nb_xmalloc(((size_t)n_ref + 1) * sizeof(int32_t));
    int64_t *ref_end = nb_xmalloc(((size_t)n_ref + 1) * sizeof(int64_t));
    int32_t *list = nb_xmalloc((size_t)nl_max * sizeof(int32_t));
    float *score = nb_xmalloc((size_t)nl_max * sizeof(float));
    int32_t *glist = nb_xmalloc((size_t)nl_max * sizeof(int32_t));
    float *gscore = nb_xmalloc((size_t)nl_max * sizeof(float));
    int32_t *truth = nb_xmalloc((size_t)P * sizeof(int32_t));
    int32_t *pred = nb_xmalloc((size_t)P * sizeof(int32_t));
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    int32_t ranked[TR_EVAL_TOPN];
    double t0 = nb_now(), t_bl[TR_N_BL] = {0};
    memset(out, 0, sizeof(tr_eval_result) * TR_N_BL);
    for (int i = 0; i < n_ref; i++) ref_users[i] = ref[i].user, ref_end[i] = ref[i].target;
    rc = tr_popularity_build(&pop, h, err, errlen);
    if (rc == NB_OK) rc = tr_bl_ws_new(&ws, P, err, errlen);
    if (rc == NB_OK) rc = tr_tifu_build(&tifu, h, ref_users, ref_end, n_ref, &tp, err, errlen);
    t_bl[TR_BL_TIFU] += nb_now() - t0;
    for (int b = 0; b < TR_N_BL && rc == NB_OK; b++)
        for (int a = 0; a < 2 && rc == NB_OK; a++) rc = tr_metrics_init(&acc[b][a], P, err, errlen);
    int ng = 0;
    if (rc == NB_OK) tr_gtopfreq(&pop, nl_max, glist, gscore, &ng);
    for (int i = 0; i < n && rc == NB_OK; i++) {
        int u = smp[i].user, nc = 0;
        int64_t end = smp[i].target;
        const int32_t *cs = cands ? tr_cands_user(cands, u, &nc) : NULL;
        int nt = truth_of(h, end, mark, truth), nl = 0;
        for (int j = 0; j < nt; j++) mark[truth[j]] = 0;
        double t = nb_now();
        rc = feed_list(acc[TR_BL_GTOP], glist, gscore, ng, cs, nc, threshold, truth, nt, ranked,
                       pred, err, errlen);
        t_bl[TR_BL_GTOP] += nb_now() - t, t = nb_now();
        if (rc == NB_OK)
            rc = tr_ptopfreq(&pop, h, u, end, ws, nl_max, list, score, &nl, err, errlen);
        if (rc == NB_OK)
            rc = feed_list(acc[TR_BL_PTOP], list, score, nl, cs, nc, threshold, truth, nt,
                           ranked, pred, err, errlen);
        t_bl[TR_BL_PTOP] += nb_now() - t, t = nb_now();
        if (rc == NB_OK)
            rc = tr_tifu_score(tifu, &pop, h, u, end, ws, nl_max, list, score, &nl, err, errlen);
        if (rc == NB_OK)
            rc = feed_list(acc[TR_BL_TIFU], list, score, nl, cs, nc, threshold, truth, nt,
                           ranked, pred, err, errlen);
        t_bl[TR_BL_TIFU] += nb_now() - t;
    }
    if (rc == NB_OK)
        for (int b = 0; b < TR_N_BL; b++) {
            tr_metrics_get(&acc[b][0], &out[b].thr[0]);
            if (cands) tr_metrics_get(&acc[b][1], &out[b].thr[1]);
            out[b].n = n;
            out[b].seconds = t_bl[b];
        }
    for (int b = 0; b < TR_N_BL; b++)
        for (int a = 0; a < 2; a++) tr_metrics_free(&acc[b][a]);
    tr_popularity_free(&pop);
    tr_bl_ws_free(ws);
    tr_tifu_free(tifu);
    free(ref_users);
    free(ref_end);
    free(list);
    free(score);
    free(glist);
    free(gscore);
    free(truth);
    free(pred);
    free(mark);
    return rc;
}
