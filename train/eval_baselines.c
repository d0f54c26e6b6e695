/* eval_baselines.c -- G-TopFreq, P-TopFreq and TIFU-KNN (default and tuned) on the evaluation
 * users. */
#include "evaluate.h"
#include "nb_err.h"

#include <stdlib.h>
#include <string.h>

#define BL_LIST 500 /* baseline list length before restricting to candidates */

/* Whether p is in the ascending set cs[n]. */
static int in_set(const int32_t *cs, int n, int32_t p) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cs[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
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
                      const tr_tifu_params *tuned, tr_eval_result out[TR_N_BL], char *err,
                      size_t errlen) {
    (void)n_threads;
    int P = h->n_products, rc = NB_OK;
    int nl_max = P < BL_LIST ? P : BL_LIST;
    tr_popularity pop = {0};
    tr_bl_ws *ws = NULL;
    tr_tifu *tifu = NULL, *tifu_tuned = NULL;
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
    int32_t *cbuf = nb_xmalloc((size_t)P * sizeof(int32_t)); /* a decoded candidate set */
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    int32_t ranked[TR_EVAL_TOPN];
    double t0 = nb_now(), t_bl[TR_N_BL] = {0};
    memset(out, 0, sizeof(tr_eval_result) * TR_N_BL);
    for (int i = 0; i < n_ref; i++) ref_users[i] = ref[i].user, ref_end[i] = ref[i].target;
    rc = tr_popularity_build(&pop, h, err, errlen);
    if (rc == NB_OK) rc = tr_bl_ws_new(&ws, P, err, errlen);
    if (rc == NB_OK) rc = tr_tifu_build(&tifu, h, ref_users, ref_end, n_ref, &tp, err, errlen);
    t_bl[TR_BL_TIFU] += nb_now() - t0, t0 = nb_now();
    if (rc == NB_OK && tuned)
        rc = tr_tifu_build(&tifu_tuned, h, ref_users, ref_end, n_ref, tuned, err, errlen);
    t_bl[TR_BL_TIFU_TUNED] += nb_now() - t0;
    for (int b = 0; b < TR_N_BL && rc == NB_OK; b++)
        for (int a = 0; a < 2 && rc == NB_OK; a++) rc = tr_metrics_init(&acc[b][a], P, err, errlen);
    int ng = 0;
    if (rc == NB_OK) tr_gtopfreq(&pop, nl_max, glist, gscore, &ng);
    for (int i = 0; i < n && rc == NB_OK; i++) {
        int u = smp[i].user, nc = 0;
        int64_t end = smp[i].target;
        const int32_t *cs = cands ? tr_cands_user(cands, u, cbuf, &nc) : NULL;
        int nt = tr_truth_of(h, end, mark, truth), nl = 0;
        for (int j = 0; j < nt; j++) mark[truth[j]] = 0;
        double t = nb_now();
        rc = feed_list(acc[TR_BL_GTOP], glist, gscore, ng, cs, nc, threshold, truth, nt, ranked,
                       pred, err, errlen);
        t_bl[TR_BL_GTOP] += nb_now() - t, t = nb_now();
        if (rc == NB_OK)
            rc = tr_ptopfreq(&pop, h, u, end, ws, nl_max, list, score, &nl, err, errlen);
        if (rc == NB_OK)
            rc = feed_list(acc[TR_BL_PTOP], list, score, nl, cs, nc, threshold, truth, nt, ranked,
                           pred, err, errlen);
        t_bl[TR_BL_PTOP] += nb_now() - t, t = nb_now();
        if (rc == NB_OK)
            rc = tr_tifu_score(tifu, &pop, h, u, end, ws, nl_max, list, score, &nl, err, errlen);
        if (rc == NB_OK)
            rc = feed_list(acc[TR_BL_TIFU], list, score, nl, cs, nc, threshold, truth, nt, ranked,
                           pred, err, errlen);
        t_bl[TR_BL_TIFU] += nb_now() - t, t = nb_now();
        if (rc == NB_OK && tifu_tuned)
            rc = tr_tifu_score(tifu_tuned, &pop, h, u, end, ws, nl_max, list, score, &nl, err,
                               errlen);
        if (rc == NB_OK && tifu_tuned)
            rc = feed_list(acc[TR_BL_TIFU_TUNED], list, score, nl, cs, nc, threshold, truth, nt,
                           ranked, pred, err, errlen);
        t_bl[TR_BL_TIFU_TUNED] += nb_now() - t;
    }
    if (rc == NB_OK)
        for (int b = 0; b < TR_N_BL; b++) {
            if (b == TR_BL_TIFU_TUNED && !tifu_tuned) continue; /* not evaluated: n = 0 */
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
    tr_tifu_free(tifu_tuned);
    free(ref_users);
    free(ref_end);
    free(list);
    free(score);
    free(glist);
    free(gscore);
    free(truth);
    free(pred);
    free(cbuf);
    free(mark);
    return rc;
}
