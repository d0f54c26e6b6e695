/* evaluate.c -- model and baseline evaluation over the metrics accumulator. */
#include "evaluate.h"
#include "calibration.h"
#include "dist.h"
#include "expected_f1.h"
#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const tr_bl_names[TR_N_BL] = {"G-TopFreq", "P-TopFreq", "TIFU-KNN", "TIFU-KNN tuned"};

#define EVAL_BATCH 64

/* BCE with pos_weight for one logit, stable for any |x| (as nn_bce_forward). */
static double bce(double x, int y, double pw) {
    double sp_neg = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); /* -log s(x)  */
    double sp_pos = sp_neg + x;                                  /* -log(1-s(x)) */
    return y ? pw * sp_neg : sp_pos;
}

int tr_truth_of(const st_history *h, int64_t t, uint8_t *mark, int32_t *truth) {
    int n = 0;
    for (int64_t j = h->order_item_off[t]; j < h->order_item_off[t + 1]; j++) {
        int32_t p = h->items[j];
        if (!mark[p]) mark[p] = 1, truth[n++] = p;
    }
    return n;
}

int tr_eval_model(tr_scorer *s, const nn_model *m, const st_history *h, const tr_sample *smp, int n,
                  const tr_cands *cands, double threshold, int want_ef1, float pos_weight,
                  tr_reliability *rel_before, tr_reliability *rel_after, tr_eval_result *out,
                  char *err, size_t errlen) {
    int P = h->n_products, rc = NB_OK;
    double t0 = nb_now();
    memset(out, 0, sizeof *out);
    tr_metrics acc[2][2]; /* [full/cand][thr/ef1] */
    memset(acc, 0, sizeof acc);
    tr_ef1 *ef = NULL;
    float *logit = nb_xmalloc((size_t)EVAL_BATCH * P * sizeof(float));
    float *prob = nb_xmalloc((size_t)EVAL_BATCH * P * sizeof(float));
    float *cprob = nb_xmalloc((size_t)P * sizeof(float));
    int32_t *truth = nb_xmalloc((size_t)P * sizeof(int32_t));
    int32_t *pred = nb_xmalloc((size_t)P * sizeof(int32_t));
    int32_t *cbuf = nb_xmalloc((size_t)P * sizeof(int32_t)); /* a decoded candidate set */
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    int32_t ranked[TR_EVAL_TOPN];
    double loss = 0;
    for (int a = 0; a < 2 && rc == NB_OK; a++)
        for (int b = 0; b < 2 && rc == NB_OK; b++) rc = tr_metrics_init(&acc[a][b], P, err, errlen);
    if (rc == NB_OK && want_ef1) rc = tr_ef1_new(&ef, TR_EF1_M, err, errlen);
    /* under mpirun each rank evaluates its slice and the sums are reduced (dist.h) */
    int lo, hi;
    tr_dist_slice(n, &lo, &hi);
    for (int i = lo; i < hi && rc == NB_OK; i += EVAL_BATCH) {
        int B = hi - i < EVAL_BATCH ? hi - i : EVAL_BATCH;
        rc = tr_score_batch(s, h, smp + i, B, logit, prob, err, errlen);
        for (int b = 0; b < B && rc == NB_OK; b++) {
            const float *lg = logit + (size_t)b * P, *pr = prob + (size_t)b * P;
            int nt = tr_truth_of(h, smp[i + b].target, mark, truth);
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
                const int32_t *cs = tr_cands_user(cands, smp[i + b].user, cbuf, &nc);
                nr = tr_topk(pr, cs, nc, TR_EVAL_TOPN, ranked);
                np = 0;
                for (int j = 0; j < nc; j++) {
                    if (pr[cs[j]] >= threshold) pred[np++] = cs[j];
                    cprob[j] = pr[cs[j]];
                    if (rel_before)
                        tr_reliability_add(rel_before, tr_sigmoid(lg[cs[j]]), mark[cs[j]]);
                    if (rel_after) tr_reliability_add(rel_after, pr[cs[j]], mark[cs[j]]);
                }
                rc = tr_metrics_add(&acc[1][0], ranked, nr, pred, np, truth, nt, err, errlen);
                if (rc == NB_OK)
                    rc = tr_metrics_add_cands(&acc[1][0], cs, nc, truth, nt, err, errlen);
                if (rc == NB_OK && ef) {
                    rc = tr_ef1_choose(ef, cprob, cs, nc, 0, pred, &np, NULL, err, errlen);
                    if (rc == NB_OK)
                        rc = tr_metrics_add(&acc[1][1], ranked, nr, pred, np, truth, nt, err,
                                            errlen);
                }
            } else if (rc == NB_OK) {
                for (int p = 0; p < P; p++) {
                    if (rel_before) tr_reliability_add(rel_before, tr_sigmoid(lg[p]), mark[p]);
                    if (rel_after) tr_reliability_add(rel_after, pr[p], mark[p]);
                }
            }
            for (int j = 0; j < nt; j++) mark[truth[j]] = 0;
        }
    }
    if (rc == NB_OK)
        rc = tr_dist_reduce_eval(&acc[0][0], 4, &loss, rel_before, rel_after, err, errlen);
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
    free(cbuf);
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
    int32_t *cbuf = nb_xmalloc((size_t)P * sizeof(int32_t)); /* a decoded candidate set */
    int64_t cap = 1 << 16, np = 0;
    float *L = nb_xmalloc((size_t)cap * sizeof(float));
    uint8_t *Y = nb_xmalloc((size_t)cap);
    for (int i = 0; i < n && rc == NB_OK && np < max_pairs; i += EVAL_BATCH) {
        int B = n - i < EVAL_BATCH ? n - i : EVAL_BATCH;
        rc = tr_score_batch(s, h, smp + i, B, logit, NULL, err, errlen);
        for (int b = 0; b < B && rc == NB_OK && np < max_pairs; b++) {
            const float *lg = logit + (size_t)b * P;
            int nt = tr_truth_of(h, smp[i + b].target, mark, truth), nc = P;
            const int32_t *cs = cands ? tr_cands_user(cands, smp[i + b].user, cbuf, &nc) : NULL;
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
    free(cbuf);
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
