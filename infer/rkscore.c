/* rkscore.c -- one user's ranking-stage scores (rkscore.h). */
#include "rkscore.h"
#include "nb_err.h"

#include <math.h>
#include <string.h>

int tr_rk_score_user(tr_rk_user *ru, tr_ranker *rk, tr_scorer *sc, const st_history *h, int u,
                     int64_t hist_end, const tr_rk_pstats *ps, const int32_t *nbr_idx,
                     const float *nbr_val, int n_nbr, const int32_t *cos, int n_cos, float *prob,
                     int32_t *list, float *out, char *err, size_t errlen) {
    int rc = NB_OK;
    if (sc) {
        /* only the products the features read; each gets the bits the evaluation's scoring
         * of every product gives it (score.h: candidate logits equal the full head's) */
        if (u < 0 || u >= h->n_users || hist_end < h->user_order_off[u] ||
            hist_end > h->user_order_off[u + 1])
            return nb_err(err, errlen, NB_EINVAL,
                          "ranker scoring: user %d / history end out of range", u);
        /* list = own and neighbour products (nk, every one read as a feature), then the
         * cosine candidates not among them, of which tr_rk_user_build picks only the
         * TR_RK_COS_TOP most probable: those are scored exactly and the rest, proven to rank
         * after them (tr_score_user_top_keep), get -INFINITY so that they are never picked.
         * The cosine set is most of the catalogue's candidates (thousands): scoring all of
         * them through the output layer was a large part of the stage's cost. */
        int nk = tr_rk_model_products(ru, h, u, hist_end, nbr_idx, n_nbr, cos, 0, list);
        int nl = tr_rk_model_products(ru, h, u, hist_end, nbr_idx, n_nbr, cos, n_cos, list);
        for (int i = nk; i < nl; i++) prob[list[i]] = -INFINITY;
        int ns = 0;
        rc = tr_score_user_top_keep(sc, h, u, hist_end, list, nl, nk, TR_RK_COS_TOP, INFINITY, list,
                                    out, &ns, err, errlen);
        if (rc) return rc;
        for (int i = 0; i < ns; i++) prob[list[i]] = out[i];
    }
    rc = tr_rk_user_build(ru, h, u, hist_end, ps, nbr_idx, nbr_val, n_nbr, cos, n_cos,
                          sc ? prob : NULL, 1, err, errlen);
    if (rc) return rc;
    if (ru->n == 0)
        return nb_err(err, errlen, NB_ENOTFOUND, "user %d has no history", h->user_ids[u]);
    if (rk) rc = tr_ranker_predict(rk, ru->x, ru->n, TR_RK_NF, out, err, errlen);
    return rc;
}

int tr_rk_baseline_scores(const tr_rk_user *ru, const char *name, float *out, char *err,
                          size_t errlen) {
    return tr_rk_baseline_rows(ru->x, ru->n, ru->tifu.alpha, name, out, err, errlen);
}

int tr_rk_baseline_rows(const float *rows, int64_t n, double alpha, const char *name, float *out,
                        char *err, size_t errlen) {
    int which = !strcmp(name, "P-TopFreq") ? 0
        : !strcmp(name, "TIFU-KNN")        ? 1
        : !strcmp(name, "G-TopFreq")       ? 2
        : !strcmp(name, "TIFU-KNN tuned")  ? 3
                                           : -1;
    if (which < 0) return nb_err(err, errlen, NB_EINVAL, "unknown shipped ranking '%s'", name);
    for (int64_t c = 0; c < n; c++) {
        const float *x = rows + (size_t)c * TR_RK_NF;
        if (which == 0) {
            /* recency breaks ties between equal shares: 1e-3 / (1 + since) < any share step */
            double since = isnan(x[TR_RK_SINCE]) ? 1e9 : x[TR_RK_SINCE];
            out[c] = (float)(x[TR_RK_SHARE] + (x[TR_RK_SHARE] > 0 ? 1e-4 / (1.0 + since) : 0));
        } else if (which == 1) {
            out[c] = (float)(0.9 * x[TR_RK_TIFU_OWN] + 0.1 * x[TR_RK_TIFU_NBR]);
        } else if (which == 3) {
            /* the features were computed with the tuned m, r_b, r_g (and k), so its alpha
             * blends them into the tuned TIFU-KNN's score */
            double al = alpha;
            out[c] = (float)(al * x[TR_RK_TIFU_OWN] + (1.0 - al) * x[TR_RK_TIFU_NBR]);
        } else {
            out[c] = x[TR_RK_P_POP];
        }
    }
    return NB_OK;
}

void tr_rk_calibrate(float *s, int64_t n, double a, double b) {
    for (int64_t i = 0; i < n; i++) s[i] = (float)(1.0 / (1.0 + exp(-(a + b * (double)s[i]))));
}
