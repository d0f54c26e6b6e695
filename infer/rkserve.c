/* rkserve.c -- the ranking stage at serving time (rkserve.h). */
#include "rkserve.h"
#include "nb_err.h"
#include "rkscore.h"
#include "rkstore.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tr_rk_serving_free(tr_rk_serving *s) {
    tr_ranker_free(&s->rk);
    tr_rk_pstats_free(&s->ps);
    free(s->path);
    memset(s, 0, sizeof *s);
}

int tr_rk_serving_open(tr_rk_serving *s, sqlite3 *db, int64_t model_id, const st_history *catalog,
                       char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    uint32_t want = 0, got = 0;
    int rc =
        st_rk_load_model(db, model_id, &s->path, &want, s->shipped, sizeof s->shipped, err, errlen);
    if (rc == NB_ENOTFOUND) return NB_OK; /* no ranking stage: the model serves */
    if (rc) goto done;
    rc = tr_ranker_load(&s->rk, s->path, &got, err, errlen);
    if (rc) goto done;
    if (got != want) {
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "%s: ranker file checksum %08x, the store registered %08x with the model "
                    "(the file was replaced or corrupted: retrain, or restore the file)",
                    s->path, got, want);
        goto done;
    }
    s->crc = got;
    /* the features' TIFU-KNN parameters; an older store has none and used the defaults */
    tr_rk_tifu_defaults(&s->tifu);
    int stored = 0;
    rc = st_rk_load_tifu(db, model_id, &s->tifu.m, &s->tifu.k, &s->tifu.r_b, &s->tifu.r_g,
                         &s->tifu.alpha, &stored, err, errlen);
    if (rc == NB_OK) rc = st_rk_load_cal(db, model_id, &s->cal_a, &s->cal_b, &s->cal, err, errlen);
    if (rc) goto done;
    int P = catalog->n_products;
    s->ps.n_products = P;
    s->ps.pop = nb_xmalloc((size_t)P * sizeof(float));
    s->ps.reorder = nb_xmalloc((size_t)P * sizeof(float));
    s->ps.rebuy = nb_xmalloc((size_t)P * sizeof(float));
    rc = st_rk_load_pstats(db, model_id, catalog, s->ps.pop, s->ps.reorder, s->ps.rebuy, err,
                           errlen);
    if (rc) goto done;
    s->model_input = strcmp(s->shipped, "ranker -model") != 0;
    s->ship_ranker = !strcmp(s->shipped, "ranker") || !s->model_input;
    s->present = 1;
done:
    if (rc) tr_rk_serving_free(s);
    return rc;
}

int tr_rk_serving_rank(const tr_rk_serving *s, tr_ranker *rk, tr_rk_user *ru, tr_scorer *sc, sqlite3 *db,
                       int64_t model_id, const st_history *h, int u, int64_t hist_end,
                       const int32_t *cos, int n_cos, int32_t *nbr_idx, float *nbr_val, float *prob,
                       int32_t *list, float *score, char *err, size_t errlen) {
    int nn = 0;
    ru->tifu = s->tifu; /* the features the trees (or the shipped baseline) were built on */
    int rc = st_rk_load_nbr(db, model_id, h, h->user_ids[u], nbr_idx, nbr_val, h->n_products, &nn,
                            err, errlen);
    if (rc == NB_OK)
        rc = tr_rk_score_user(ru, NULL, sc, h, u, hist_end, &s->ps, nbr_idx, nbr_val, nn, cos,
                              n_cos, prob, list, score, err, errlen);
    if (rc == NB_OK && s->ship_ranker) {
        /* trees trained without the model's input read it as missing, as in training
         * (train/rktrain.c variant_rows); the model still chose the cosine candidates */
        if (!s->model_input)
            for (int c = 0; c < ru->n; c++) ru->x[(size_t)c * TR_RK_NF + TR_RK_MODEL] = NAN;
        rc = tr_ranker_predict(rk, ru->x, ru->n, TR_RK_NF, score, err, errlen);
    } else if (rc == NB_OK) {
        rc = tr_rk_baseline_scores(ru, s->shipped, score, err, errlen);
        if (rc == NB_OK && s->cal) tr_rk_calibrate(score, ru->n, s->cal_a, s->cal_b);
    }
    return rc;
}

int tr_rk_top(const tr_rk_user *ru, const float *score, int k, int32_t *top) {
    if (k > ru->n) k = ru->n;
    /* insertion selection: k is small (a response) */
    int m = 0;
    for (int c = 0; c < ru->n; c++) {
        int j = m < k ? m++ : k;
        if (j == k) {
            int w = top[k - 1];
            if (!(score[c] > score[w] || (score[c] == score[w] && ru->cand[c] < ru->cand[w])))
                continue;
            j = k - 1;
        }
        while (j > 0) {
            int w = top[j - 1];
            if (score[c] > score[w] || (score[c] == score[w] && ru->cand[c] < ru->cand[w]))
                top[j] = w, j--;
            else
                break;
        }
        top[j] = c;
    }
    return m;
}

int tr_rk_why(tr_why *w, const tr_explainer *x, const tr_features *f, const tr_rk_user *ru,
              int c) {
    if (c < 0 || c >= ru->n) {
        memset(w, 0, sizeof *w);
        return -1;
    }
    if ((ru->src[c] & TR_RK_SRC_NBR) && !(ru->src[c] & TR_RK_SRC_OWN)) {
        *w = (tr_why){TR_WHY_NEIGHBOURS, 0, 0, 0};
        return 0;
    }
    return tr_why_of(w, x, f, ru->cand[c]);
}

/* See rkserve.h. */
int tr_rk_thread_init(tr_rk_thread *t, const tr_rk_serving *s, const st_history *catalog,
                      char *err, size_t errlen) {
    size_t P = (size_t)catalog->n_products;
    memset(t, 0, sizeof *t);
    int rc = tr_rk_user_init(&t->ru, catalog, err, errlen);
    if (!rc && s->ship_ranker) rc = tr_ranker_clone(&t->rk, &s->rk, err, errlen);
    if (rc) return rc;
    t->score = nb_xmalloc(P * sizeof *t->score);
    t->pos = nb_xmalloc(P * sizeof *t->pos);
    t->pre = nb_xmalloc(P * sizeof *t->pre);
    t->nbr_idx = nb_xmalloc(P * sizeof *t->nbr_idx);
    t->list = nb_xmalloc(P * sizeof *t->list);
    t->nbr_val = nb_xmalloc(P * sizeof *t->nbr_val);
    t->prob = nb_xmalloc(P * sizeof *t->prob);
    for (size_t p = 0; p < P; p++) t->pos[p] = -1;
    return NB_OK;
}

/* See rkserve.h. */
void tr_rk_thread_free(tr_rk_thread *t) {
    tr_rk_user_free(&t->ru);
    tr_ranker_free(&t->rk);
    free(t->score), free(t->pos), free(t->pre);
    free(t->nbr_idx), free(t->list), free(t->nbr_val), free(t->prob);
    memset(t, 0, sizeof *t);
}

/* See rkserve.h. */
int tr_rk_thread_rank(tr_rk_thread *t, const tr_rk_serving *s, tr_scorer *sc, sqlite3 *db,
                      int64_t model_id, const st_history *h, int u, int64_t hist_end,
                      const int32_t *cos, int n_cos, char *err, size_t errlen) {
    for (int i = 0; i < t->ru.n; i++) t->pos[t->ru.cand[i]] = -1; /* the last user's */
    t->ru.n = 0;
    int rc = tr_rk_serving_rank(s, &t->rk, &t->ru, sc, db, model_id, h, u, hist_end, cos, n_cos,
                                t->nbr_idx, t->nbr_val, t->prob, t->list, t->score, err, errlen);
    if (rc) {
        t->ru.n = 0;
        return rc;
    }
    for (int i = 0; i < t->ru.n; i++) t->pos[t->ru.cand[i]] = i;
    return NB_OK;
}
