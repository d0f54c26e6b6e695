/* rktrain.c -- the ranking stage in nb-train (rktrain.h). */
#include "rktrain.h"
#include "baselines.h"
#include "expected_f1.h"
#include "loop.h"
#include "metrics.h"
#include "nb_err.h"
#include "rkdump.h"
#include "rkscore.h"
#include "rng.h"

#include <assert.h>
#include <cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const tr_rkv_names[TR_RK_NV] = {"ranker", "ranker -model", "ranker own-only"};

/* See rktrain.h. */
const char *tr_rk_shipped(const tr_rk_report *r) {
    return r->shipped_ranker ? tr_rkv_names[r->variant] : tr_bl_names[r->best_bl];
}

int tr_rk_rows_parse(const char *v, int *rows, char *err, size_t errlen) {
    if (!v || !strcmp(v, "last"))
        *rows = TR_RK_ROWS_LAST;
    else if (!strcmp(v, "prev"))
        *rows = TR_RK_ROWS_PREV;
    else if (!strcmp(v, "both"))
        *rows = TR_RK_ROWS_BOTH;
    else
        return nb_err(err, errlen, NB_EINVAL, "--ranker-rows: '%s' is not last|prev|both", v);
    return NB_OK;
}

int tr_rk_fold(int32_t user_id) {
    /* its own constant: unrelated to the train/val/test split's hash (split.c) */
    return (int)(nb_hash64((uint64_t)(uint32_t)user_id ^ 0xf01d5eedull) % TR_RK_FOLDS);
}

/* Rows of a set of users: user j's rows are [off[j], off[j+1]), its first n_own[j] rows its
 * own products. */
typedef struct {
    float *X, *y;
    float *model; /* the model column, kept apart: NaN in X (see variant_rows) */
    int32_t *prod;
    uint8_t *src;
    int64_t n, cap;
    int nu, capu;
    int64_t *off;
    int32_t *n_own;
    int32_t *smp;  /* sample index of each user */
    int32_t *user; /* its user (index in the history) */
} rowset;

static void rowset_free(rowset *r) {
    free(r->X);
    free(r->y);
    free(r->model);
    free(r->prod);
    free(r->src);
    free(r->off);
    free(r->n_own);
    free(r->smp);
    free(r->user);
    memset(r, 0, sizeof *r);
}

/* Resizes rs's row arrays to cap rows (cap >= rs->n). */
static void rowset_resize(rowset *rs, int64_t cap) {
    assert(cap >= rs->n);
    rs->cap = cap;
    size_t c = (size_t)(cap > 0 ? cap : 1);
    rs->X = nb_xrealloc(rs->X, c * TR_RK_NF * sizeof *rs->X);
    rs->y = nb_xrealloc(rs->y, c * sizeof *rs->y);
    rs->model = nb_xrealloc(rs->model, c * sizeof *rs->model);
    rs->prod = nb_xrealloc(rs->prod, c * sizeof *rs->prod);
    rs->src = nb_xrealloc(rs->src, c);
}

/* Makes room in rs for one more user with n rows. */
static void rowset_reserve(rowset *rs, int64_t n) {
    if (rs->nu + 1 >= rs->capu) {
        rs->capu = rs->capu ? 2 * rs->capu : 256;
        rs->off = nb_xrealloc(rs->off, (size_t)(rs->capu + 1) * sizeof *rs->off);
        rs->n_own = nb_xrealloc(rs->n_own, (size_t)rs->capu * sizeof *rs->n_own);
        rs->smp = nb_xrealloc(rs->smp, (size_t)rs->capu * sizeof *rs->smp);
        rs->user = nb_xrealloc(rs->user, (size_t)rs->capu * sizeof *rs->user);
    }
    if (rs->nu == 0) rs->off[0] = 0;
    if (rs->n + n > rs->cap) {
        int64_t cap = rs->cap ? 2 * rs->cap : 65536;
        while (rs->n + n > cap) cap *= 2;
        rowset_resize(rs, cap);
    }
}

/* Appends user i's candidates and features (labels from mark) to rs; the model column goes
 * to rs->model, NaN in rs->X. */
static void rowset_add(rowset *rs, int i, int u, const tr_rk_user *ru, const uint8_t *mark) {
    rowset_reserve(rs, ru->n);
    memcpy(rs->X + rs->n * TR_RK_NF, ru->x, (size_t)ru->n * TR_RK_NF * sizeof *rs->X);
    for (int64_t r = rs->n; r < rs->n + ru->n; r++) {
        rs->model[r] = rs->X[r * TR_RK_NF + TR_RK_MODEL];
        rs->X[r * TR_RK_NF + TR_RK_MODEL] = NAN;
    }
    memcpy(rs->prod + rs->n, ru->cand, (size_t)ru->n * sizeof *rs->prod);
    memcpy(rs->src + rs->n, ru->src, (size_t)ru->n);
    for (int c = 0; c < ru->n; c++) rs->y[rs->n + c] = mark[ru->cand[c]] ? 1.0f : 0.0f;
    rs->n += ru->n;
    rs->n_own[rs->nu] = ru->n_own;
    rs->smp[rs->nu] = i;
    rs->user[rs->nu] = u;
    rs->nu++;
    rs->off[rs->nu] = rs->n;
}

/* Shared state of one run. */
typedef struct {
    const tr_rk_args *a;
    tr_popularity pop;
    tr_tifu *tifu_nbr;     /* alpha 0: the neighbour part */
    tr_tifu *tifu_bl;      /* the stage's parameters (a->tifu): the baseline, for validation */
    tr_tifu *tifu_half[2]; /* a->tifu_half's: the cross-fitted baseline (or NULL) */
    tr_bl_ws *ws;
    tr_rk_user ru;
    int32_t *list, *nbr_idx, *truth;
    int32_t *cbuf; /* [P] a decoded candidate set */
    float *score, *nbr_val, *prob;
    uint8_t *mark, *own;
} run_t;

/* The neighbour pairs kept for a user (the same in evaluation and in the store): from
 * TIFU-KNN's list (list/score[nl], best first), the user's own products with score > 0 and
 * the TR_RK_NBR_TOP best unseen ones, into idx/val; returns how many. own: [P] zeroed
 * scratch, left zeroed. */
static int keep_nbr(const st_history *h, int u, int64_t end, const int32_t *list,
                    const float *score, int nl, uint8_t *own, int32_t *idx, float *val) {
    int64_t o0 = h->user_order_off[u];
    int n = 0, unseen = 0;
    for (int64_t e = h->order_item_off[o0]; e < h->order_item_off[end]; e++) own[h->items[e]] = 1;
    for (int j = 0; j < nl && score[j] > 0; j++) {
        if (!own[list[j]]) {
            if (unseen == TR_RK_NBR_TOP) continue;
            unseen++;
        }
        idx[n] = list[j], val[n++] = score[j];
    }
    for (int64_t e = h->order_item_off[o0]; e < h->order_item_off[end]; e++) own[h->items[e]] = 0;
    return n;
}

/* Builds the rows of smp[0..n) into rs with statistics ps[fold] (train: out of fold) or
 * ps[0] (fold_of == 0); stops adding users once max_rows rows are reached. Adds each
 * user's target items inside each source to hits[] and their count to *n_truth. */
static int gen_rows(run_t *R, const tr_sample *smp, int n, const tr_rk_pstats *ps, int by_fold,
                    int64_t max_rows, rowset *rs, int64_t hits[TR_RK_NCOV], int64_t *n_truth,
                    char *err, size_t errlen) {
    const st_history *h = R->a->h;
    int P = h->n_products, rc = NB_OK;
    for (int i = 0; i < n && rc == NB_OK; i++) {
        if (rs->n >= max_rows) break;
        int u = smp[i].user, nl = 0, nn = 0, nc = 0;
        int64_t end = smp[i].target;
        if (R->a->sc) {
            rc = tr_score_user(R->a->sc, h, u, end, NULL, 0, R->prob, err, errlen);
            if (rc == NB_ENOTFOUND) {
                rc = NB_OK;
                continue; /* cold start: no history, no candidates to rank */
            }
            if (rc) break;
        }
        rc = tr_tifu_score(R->tifu_nbr, &R->pop, h, u, end, R->ws, P, R->list, R->score, &nl, err,
                           errlen);
        if (rc) break;
        nn = keep_nbr(h, u, end, R->list, R->score, nl, R->own, R->nbr_idx, R->nbr_val);
        const int32_t *cos = R->a->cands ? tr_cands_user(R->a->cands, u, R->cbuf, &nc) : NULL;
        const tr_rk_pstats *pu = by_fold ? &ps[tr_rk_fold(h->user_ids[u])] : &ps[0];
        rc = tr_rk_user_build(&R->ru, h, u, end, pu, R->nbr_idx, R->nbr_val, nn, cos, nc,
                              R->a->sc ? R->prob : NULL, 1, err, errlen);
        if (rc || R->ru.n == 0) continue;
        int nt = tr_truth_of(h, end, R->mark, R->truth);
        if (nt > 0) {
            *n_truth += nt;
            for (int c = 0; c < R->ru.n; c++)
                if (R->mark[R->ru.cand[c]]) {
                    uint8_t s = R->ru.src[c];
                    hits[TR_RK_COV_ALL]++;
                    if (s & TR_RK_SRC_OWN) hits[TR_RK_COV_OWN]++;
                    if (s & TR_RK_SRC_NBR) hits[TR_RK_COV_NBR]++;
                    if (s & TR_RK_SRC_COS) hits[TR_RK_COV_COS]++;
                }
            rowset_add(rs, i, u, &R->ru, R->mark);
        }
        for (int j = 0; j < nt; j++) R->mark[R->truth[j]] = 0;
    }
    return rc;
}

/* The rows of variant v of rs into *X and *y, with per-user offsets in off2 [rs->nu + 1].
 * NOMODEL's rows are rs's own arrays, not a copy (the trees that ship: at full scale a copy
 * of their 3M training rows is 400 MB at the job's peak); *owned = 0. The others' are a
 * malloc'd copy with the model column filled in (OWNONLY keeps each user's own rows); *owned
 * = 1 and the caller frees *X and *y. Returns the row count. */
static int64_t variant_rows(const rowset *rs, int v, float **X, float **y, int64_t *off2,
                            int *owned) {
    if (v == TR_RKV_NOMODEL) {
        *X = rs->X, *y = rs->y, *owned = 0;
        off2[0] = 0; /* rs->off is NULL while rs has no user */
        if (rs->nu) memcpy(off2, rs->off, ((size_t)rs->nu + 1) * sizeof *off2);
        return rs->n;
    }
    int64_t m = 0;
    *X = nb_xmalloc(((size_t)rs->n + 1) * TR_RK_NF * sizeof **X);
    *y = nb_xmalloc(((size_t)rs->n + 1) * sizeof **y);
    *owned = 1;
    off2[0] = 0;
    for (int j = 0; j < rs->nu; j++) {
        int64_t a = rs->off[j], b = v == TR_RKV_OWNONLY ? a + rs->n_own[j] : rs->off[j + 1];
        memcpy(*X + m * TR_RK_NF, rs->X + a * TR_RK_NF, (size_t)(b - a) * TR_RK_NF * sizeof **X);
        memcpy(*y + m, rs->y + a, (size_t)(b - a) * sizeof **y);
        for (int64_t r = a; r < b; r++) (*X)[(m + r - a) * TR_RK_NF + TR_RK_MODEL] = rs->model[r];
        m += b - a;
        off2[j + 1] = m;
    }
    return m;
}

/* Per-user R@10 and NDCG@10 of ranked[nr] against the marked truth (nt items), with the
 * definitions of metrics.h. */
static void user_metrics(const int32_t *ranked, int nr, const uint8_t *mark, int nt, double *r10,
                         double *ndcg10) {
    int hits = 0;
    double dcg = 0, idcg = 0;
    for (int r = 0; r < nr && r < 10; r++)
        if (mark[ranked[r]]) hits++, dcg += 1.0 / log2((double)r + 2.0);
    for (int i = 0; i < nt && i < 10; i++) idcg += 1.0 / log2((double)i + 2.0);
    *r10 = nt ? (double)hits / nt : 0;
    *ndcg10 = idcg > 0 ? dcg / idcg : 0;
}

typedef struct {
    float p;
    int32_t i;
} scored;
static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Evaluates the scores pr of rs's rows (users of smp; user j's rows are pr[off2[j] ..
 * off2[j+1]), in rs's row order from rs->off[j]): metrics into out (when given), per-user
 * R@10/NDCG@10 into ur/un (when given). Returns NB_OK or an error of the metrics. */
static int eval_scores(run_t *R, const rowset *rs, const int64_t *off2, const float *pr,
                       const tr_sample *smp, tr_eval_result *out, double *ur, double *un, char *err,
                       size_t errlen) {
    const st_history *h = R->a->h;
    int P = h->n_products, rc = NB_OK;
    scored *sc = NULL;
    int32_t *ranked = nb_xmalloc((TR_EVAL_TOPN + 1) * sizeof *ranked);
    int32_t *pred = nb_xmalloc((size_t)P * sizeof *pred), *efp = NULL, *efout = NULL;
    float *efprob = NULL;
    uint8_t *inlist = nb_xcalloc((size_t)P, 1);
    tr_ef1 *ef = NULL;
    tr_metrics mt = {0}, me = {0};
    rc = tr_metrics_init(&mt, P, err, errlen);
    if (rc == NB_OK) rc = tr_metrics_init(&me, P, err, errlen);
    if (rc == NB_OK) rc = tr_ef1_new(&ef, TR_EF1_M, err, errlen);
    if (rc) goto done;
    int64_t maxu = 1;
    for (int j = 0; j < rs->nu; j++)
        if (off2[j + 1] - off2[j] > maxu) maxu = off2[j + 1] - off2[j];
    sc = nb_xmalloc((size_t)maxu * sizeof *sc);
    efp = nb_xmalloc((size_t)maxu * sizeof *efp);
    efprob = nb_xmalloc((size_t)maxu * sizeof *efprob);
    efout = nb_xmalloc((size_t)TR_EF1_M * sizeof *efout);
    for (int j = 0; j < rs->nu && rc == NB_OK; j++) {
        int64_t a = off2[j], b = off2[j + 1], a0 = rs->off[j];
        int nc = (int)(b - a), nr = 0, np = 0, ke = 0;
        for (int c = 0; c < nc; c++) sc[c] = (scored){pr[a + c], rs->prod[a0 + c]};
        qsort(sc, (size_t)nc, sizeof *sc, cmp_scored);
        for (int c = 0; c < nc && nr < TR_EVAL_TOPN; c++)
            ranked[nr++] = sc[c].i, inlist[sc[c].i] = 1;
        /* a short list is filled with popular products, as P-TopFreq's is */
        for (int k = 0; k < P && nr < TR_EVAL_TOPN; k++)
            if (!inlist[R->pop.rank[k]]) ranked[nr++] = R->pop.rank[k], inlist[R->pop.rank[k]] = 1;
        for (int c = 0; c < nr; c++) inlist[ranked[c]] = 0;
        for (int c = 0; c < nc; c++)
            if (sc[c].p >= R->a->threshold) pred[np++] = sc[c].i;
        for (int c = 0; c < nc; c++) efp[c] = sc[c].i, efprob[c] = sc[c].p;
        rc = tr_ef1_choose(ef, efprob, efp, nc, 0, efout, &ke, NULL, err, errlen);
        if (rc) break;
        int64_t end = smp[rs->smp[j]].target;
        int nt = tr_truth_of(h, end, R->mark, R->truth);
        if (ur) user_metrics(ranked, nr, R->mark, nt, &ur[j], &un[j]);
        for (int k = 0; k < nt; k++) R->mark[R->truth[k]] = 0;
        rc = tr_metrics_add(&mt, ranked, nr, pred, np, R->truth, nt, err, errlen);
        if (rc == NB_OK) rc = tr_metrics_add(&me, ranked, nr, efout, ke, R->truth, nt, err, errlen);
    }
    if (rc == NB_OK && out) {
        memset(out, 0, sizeof *out);
        tr_metrics_get(&mt, &out->thr[0]);
        tr_metrics_get(&me, &out->ef1[0]);
        out->n = rs->nu;
    }
done:
    tr_metrics_free(&mt);
    tr_metrics_free(&me);
    tr_ef1_free(ef);
    free(efout);
    free(sc);
    free(ranked);
    free(pred);
    free(efp);
    free(efprob);
    free(inlist);
    return rc;
}

/* Evaluates variant v's trees rk on rs (users of smp), as eval_scores. */
static int eval_rows(run_t *R, tr_ranker *rk, int v, const rowset *rs, const tr_sample *smp,
                     tr_eval_result *out, double *ur, double *un, char *err, size_t errlen) {
    double t0 = nb_now();
    float *X = NULL, *y = NULL;
    int64_t *off2 = nb_xmalloc(((size_t)rs->nu + 1) * sizeof *off2);
    int owned = 0;
    int64_t m = variant_rows(rs, v, &X, &y, off2, &owned);
    float *pr = nb_xmalloc(((size_t)m + 1) * sizeof *pr);
    int rc = tr_ranker_predict(rk, X, m, TR_RK_NF, pr, err, errlen);
    if (owned) free(X), free(y);
    if (rc == NB_OK) rc = eval_scores(R, rs, off2, pr, smp, out, ur, un, err, errlen);
    if (rc == NB_OK && out) out->seconds = nb_now() - t0;
    free(pr);
    free(off2);
    return rc;
}

/* Trains variant v on the training rows with prm. */
static int train_variant(const tr_ranker_params *prm, const rowset *tr, int v, tr_ranker *rk,
                         char *err, size_t errlen) {
    float *X = NULL, *y = NULL;
    int64_t *off2 = nb_xmalloc(((size_t)tr->nu + 1) * sizeof *off2);
    int owned = 0;
    int64_t m = variant_rows(tr, v, &X, &y, off2, &owned);
    int rc = tr_ranker_train(rk, X, y, m, TR_RK_NF, prm, err, errlen);
    if (owned) free(X), free(y);
    free(off2);
    return rc;
}

/* The baselines the safeguard chooses among are those tr_rk_baseline_scores can serve from
 * the stage's features: G-TopFreq, P-TopFreq, and the TIFU-KNN whose parameters the
 * tifu_own / tifu_nbr features were computed with -- the tuned one (TR_BL_TIFU_TUNED) when
 * a->tifu is given, else the default one (TR_BL_TIFU). The other TIFU-KNN is not servable
 * (its personal part and neighbours differ from the features') and is left out: it costs
 * nothing, since the tuner's grid holds the default point and it picks the best validation
 * R@10, so on the validation users the tuned one is >= the default one by construction
 * (up to the tuner's subsample cap and summation order, tifu_tune.h). Keeping both feature
 * pairs instead would add a second neighbour search per user at training and a second
 * stored neighbour list at serving for a baseline that does not win. Slots [0, RK_N_BL). */
#define RK_N_BL TR_N_BL

/* 1 if baseline b can be served from the features of a stage with (tuned != 0) or without
 * tuned TIFU-KNN parameters. */
static int bl_servable(int b, int tuned) {
    if (b == TR_BL_TIFU) return !tuned;
    if (b == TR_BL_TIFU_TUNED) return tuned;
    return 1;
}

/* Per-user R@10/NDCG@10 of the servable baselines into bl_r/bl_n [RK_N_BL][n] for the users
 * of rs (sample indices rs->smp into smp) at those samples' targets; the other slots get 0.
 * The tuned TIFU-KNN of a tuning user is cross-fitted when R->tifu_half is built: it uses
 * the parameters tuned on the other half (rktrain.h tifu_half); *n_cf is increased by the
 * users cross-fitted, and ins_r[n] gets each user's R@10 with the stage's own parameters
 * (in sample for those users). Returns NB_OK or an error from the baselines. */
static int val_baselines(run_t *R, const rowset *rs, const tr_sample *smp, double **bl_r,
                         double **bl_n, double *ins_r, int *n_cf, char *err, size_t errlen) {
    const st_history *h = R->a->h;
    const int8_t *half_of = R->a->tifu_half_of;
    int rc = NB_OK, ng = 0, nl = 0;
    int32_t g[TR_EVAL_TOPN];
    float gs[TR_EVAL_TOPN];
    tr_gtopfreq(&R->pop, TR_EVAL_TOPN, g, gs, &ng);
    for (int j = 0; j < rs->nu && rc == NB_OK; j++) {
        int u = smp[rs->smp[j]].user;
        int64_t end = smp[rs->smp[j]].target;
        int nt = tr_truth_of(h, end, R->mark, R->truth);
        user_metrics(g, ng, R->mark, nt, &bl_r[TR_BL_GTOP][j], &bl_n[TR_BL_GTOP][j]);
        rc = tr_ptopfreq(&R->pop, h, u, end, R->ws, TR_EVAL_TOPN, R->list, R->score, &nl, err,
                         errlen);
        if (rc == NB_OK)
            user_metrics(R->list, nl, R->mark, nt, &bl_r[TR_BL_PTOP][j], &bl_n[TR_BL_PTOP][j]);
        const tr_tifu *tf = R->tifu_bl;
        if (R->tifu_half[0] && half_of && half_of[u] >= 0) tf = R->tifu_half[1 - half_of[u]];
        if (rc == NB_OK)
            rc = tr_tifu_score(tf, &R->pop, h, u, end, R->ws, TR_EVAL_TOPN, R->list, R->score, &nl,
                               err, errlen);
        int tb = R->a->tifu ? TR_BL_TIFU_TUNED : TR_BL_TIFU,
            ob = TR_BL_TIFU + TR_BL_TIFU_TUNED - tb;
        if (rc == NB_OK) user_metrics(R->list, nl, R->mark, nt, &bl_r[tb][j], &bl_n[tb][j]);
        bl_r[ob][j] = bl_n[ob][j] = 0;
        if (rc == NB_OK) ins_r[j] = bl_r[tb][j];
        if (rc == NB_OK && tf != R->tifu_bl) {
            double nd;
            (*n_cf)++;
            rc = tr_tifu_score(R->tifu_bl, &R->pop, h, u, end, R->ws, TR_EVAL_TOPN, R->list,
                               R->score, &nl, err, errlen);
            if (rc == NB_OK) user_metrics(R->list, nl, R->mark, nt, &ins_r[j], &nd);
        }
        for (int k = 0; k < nt; k++) R->mark[R->truth[k]] = 0;
    }
    return rc;
}

/* Appends user j of src (its rows, own count and sample index) to dst. */
static void rowset_copy_user(rowset *dst, const rowset *src, int j) {
    int64_t a = src->off[j], n = src->off[j + 1] - a;
    rowset_reserve(dst, n);
    memcpy(dst->X + dst->n * TR_RK_NF, src->X + a * TR_RK_NF,
           (size_t)n * TR_RK_NF * sizeof *dst->X);
    memcpy(dst->y + dst->n, src->y + a, (size_t)n * sizeof *dst->y);
    memcpy(dst->model + dst->n, src->model + a, (size_t)n * sizeof *dst->model);
    memcpy(dst->prod + dst->n, src->prod + a, (size_t)n * sizeof *dst->prod);
    memcpy(dst->src + dst->n, src->src + a, (size_t)n);
    dst->n += n;
    dst->n_own[dst->nu] = src->n_own[j];
    dst->smp[dst->nu] = src->smp[j];
    dst->user[dst->nu] = src->user[j];
    dst->nu++;
    dst->off[dst->nu] = dst->n;
}

/* Boosting rounds the cross-validation compares (the last is the most trees: the default
 * parameters' count); the trees that ship get the count with the best cross-validated R@10,
 * so that a small data set is not fitted with as many trees as a large one. */
static const int rk_rounds[TR_RK_NROUNDS] = {25, 50, 100, 150, 200, 300};

/* Cross-validated per-user R@10 / NDCG@10 of variant v's trees over the first nu users of tr
 * (rows built from samples smp), after each count of rounds rk_rounds[i] (into ur[i] / un[i],
 * [nu] each): the users of fold k among them (tr_rk_fold, the folds of the out-of-fold
 * statistics) are ranked by trees trained (with prm) on the rows of every user of tr outside
 * fold k -- all of them, both orders with --ranker-rows both, as the trees that ship are
 * trained -- up to TR_RK_CV_TRAIN_ROWS rows (the first in tr's order): the trees compared see
 * ~4/5 of what the final trees see, not only the evaluated users' folds. Returns NB_OK,
 * NB_EINTR when a signal arrived (tr_stop_requested, checked before each fold), or an error
 * from XGBoost / the metrics. */
static int cv_rows(run_t *R, const rowset *tr, int nu, const tr_sample *smp, int v,
                   const tr_ranker_params *prm, double **ur, double **un, char *err,
                   size_t errlen) {
    const st_history *h = R->a->h;
    int rc = NB_OK;
    int32_t *pos = nb_xmalloc(((size_t)nu + 1) * sizeof *pos);
    double *tr_ = nb_xmalloc(((size_t)nu + 1) * sizeof *tr_),
           *tn = nb_xmalloc(((size_t)nu + 1) * sizeof *tn);
    for (int i = 0; i < TR_RK_NROUNDS; i++)
        for (int j = 0; j < nu; j++) ur[i][j] = un[i][j] = 0;
    for (int k = 0; k < TR_RK_FOLDS && rc == NB_OK; k++) {
        if (tr_stop_requested) { /* ~6 min at full scale: a signal stops it between folds */
            rc = nb_err(err, errlen, NB_EINTR,
                        "stopped by a signal in the ranking stage's cross-validation; --resume "
                        "skips the finished training");
            break;
        }
        rowset trn = {0}, tst = {0};
        tr_ranker rk = {0};
        int nt = 0;
        for (int j = 0; j < nu; j++)
            if (tr_rk_fold(h->user_ids[tr->user[j]]) == k) {
                rowset_copy_user(&tst, tr, j);
                pos[nt++] = j;
            }
        for (int j = 0; j < tr->nu; j++)
            if (tr_rk_fold(h->user_ids[tr->user[j]]) != k &&
                trn.n + (tr->off[j + 1] - tr->off[j]) <= TR_RK_CV_TRAIN_ROWS)
                rowset_copy_user(&trn, tr, j);
        if (tst.nu > 0 && trn.n > 0) rc = train_variant(prm, &trn, v, &rk, err, errlen);
        for (int i = 0; i < TR_RK_NROUNDS && rc == NB_OK && tst.nu > 0 && trn.n > 0; i++) {
            if (rk_rounds[i] > prm->trees) continue; /* not trained: R@10 0, never chosen */
            tr_ranker sl = {0};
            rc = tr_ranker_slice(&sl, &rk, rk_rounds[i], err, errlen);
            if (rc == NB_OK) rc = eval_rows(R, &sl, v, &tst, smp, NULL, tr_, tn, err, errlen);
            for (int j = 0; j < nt && rc == NB_OK; j++)
                ur[i][pos[j]] = tr_[j], un[i][pos[j]] = tn[j];
            tr_ranker_free(&sl);
        }
        tr_ranker_free(&rk);
        rowset_free(&trn);
        rowset_free(&tst);
    }
    free(pos);
    free(tr_);
    free(tn);
    return rc;
}

/* The shipped baseline rep->best_bl: its calibration fitted on the training rows tr into
 * rep->cal/cal_a/cal_b, and its test metrics over te's candidates (users of smp) with the
 * scores nb-serve serves (infer/rkserve.c: raw, then calibrated) into rep->served. Returns
 * NB_OK or an error of the fit or the metrics. */
static int served_baseline(run_t *R, const rowset *tr, const rowset *te, const tr_sample *smp,
                           tr_rk_report *rep, char *err, size_t errlen) {
    const char *name = tr_bl_names[rep->best_bl];
    double al = R->ru.tifu.alpha, a = 0, b = 0;
    int64_t n = tr->n > te->n ? tr->n : te->n;
    float *s = nb_xmalloc(((size_t)n + 1) * sizeof *s);
    int rc = tr_rk_baseline_rows(tr->X, tr->n, al, name, s, err, errlen);
    if (rc == NB_OK) rc = tr_ranker_fit_prior(s, tr->y, tr->n, 1, 0, &a, &b, err, errlen);
    if (rc == NB_OK && b > 0) rep->cal = 1, rep->cal_a = a, rep->cal_b = b;
    if (rc == NB_OK) rc = tr_rk_baseline_rows(te->X, te->n, al, name, s, err, errlen);
    if (rc == NB_OK && rep->cal) tr_rk_calibrate(s, te->n, a, b);
    if (rc == NB_OK)
        rc = eval_scores(R, te, te->off, s, smp, &rep->served, NULL, NULL, err, errlen);
    free(s);
    return rc;
}

/* Writes rs to a->dump_dir/<name>.nbrows (rkdump.h): user j's target is that of
 * smp[rs->smp[j]] for j < j2 (the earlier orders' block of the training rows), of
 * smp2[rs->smp[j]] from j2 on. Returns NB_OK or NB_EIO naming the file. */
static int dump_rows(run_t *R, const rowset *rs, const tr_sample *smp, int j2,
                     const tr_sample *smp2, const char *name, char *err, size_t errlen) {
    int64_t *target = nb_xmalloc(((size_t)rs->nu + 1) * sizeof *target);
    for (int j = 0; j < rs->nu; j++) target[j] = (j < j2 ? smp : smp2)[rs->smp[j]].target;
    int64_t off0 = 0;
    tr_rk_dump_rows d = {.X = rs->X,
                         .y = rs->y,
                         .model = rs->model,
                         .prod = rs->prod,
                         .n = rs->n,
                         .nf = TR_RK_NF,
                         .nu = rs->nu,
                         .off = rs->nu ? rs->off : &off0,
                         .user = rs->user,
                         .target = target};
    int rc = tr_rk_dump(R->a->dump_dir, name, R->a->h, &d, err, errlen);
    free(target);
    return rc;
}

static double mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}

int tr_rk_run(const tr_rk_args *a, tr_ranker *ranker, tr_rk_pstats *ps_all, tr_rk_report *rep,
              char *err, size_t errlen) {
    const st_history *h = a->h;
    const tr_samples *s = a->s;
    int P = h->n_products, rc = NB_OK;
    memset(rep, 0, sizeof *rep);
    memset(ranker, 0, sizeof *ranker);
    memset(ps_all, 0, sizeof *ps_all);
    run_t R;
    memset(&R, 0, sizeof R);
    R.a = a;
    tr_rk_pstats fps[TR_RK_FOLDS];
    memset(fps, 0, sizeof fps);
    rowset tr = {0}, va = {0}, te = {0};
    tr_ranker extra[TR_RK_NV];
    memset(extra, 0, sizeof extra);
    double *vr[TR_RK_NV] = {0}, *vn[TR_RK_NV] = {0}, *blr[TR_N_BL] = {0}, *bln[TR_N_BL] = {0};
    double *cr[TR_RK_NROUNDS] = {0}, *cn[TR_RK_NROUNDS] = {0}; /* cross-validated, per count */
    R.list = nb_xmalloc((size_t)P * sizeof *R.list);
    R.nbr_idx = nb_xmalloc((size_t)P * sizeof *R.nbr_idx);
    R.truth = nb_xmalloc((size_t)P * sizeof *R.truth);
    R.cbuf = nb_xmalloc((size_t)P * sizeof *R.cbuf);
    R.score = nb_xmalloc((size_t)P * sizeof *R.score);
    R.nbr_val = nb_xmalloc((size_t)P * sizeof *R.nbr_val);
    R.prob = nb_xmalloc((size_t)P * sizeof *R.prob);
    R.mark = nb_xcalloc((size_t)P, 1);
    R.own = nb_xcalloc((size_t)P, 1);
    int32_t *ref_users = nb_xmalloc(((size_t)s->n_train + 1) * sizeof *ref_users);
    int64_t *ref_end = nb_xmalloc(((size_t)s->n_train + 1) * sizeof *ref_end);
    tr_sample *prev = NULL;
    double t0 = nb_now();

    /* product statistics: all training users, and out of fold */
    rc = tr_rk_oof_stats(h, s->train, s->n_train, ps_all, fps, err, errlen);
    if (rc) goto done;
    /* TIFU-KNN reference set: the training users before their targets, as the baseline's */
    for (int i = 0; i < s->n_train; i++)
        ref_users[i] = s->train[i].user, ref_end[i] = s->train[i].target;
    tr_tifu_params tp;
    if (a->tifu)
        tp = *a->tifu;
    else
        tr_tifu_defaults(&tp);
    if (rc == NB_OK) rc = tr_popularity_build(&R.pop, h, err, errlen);
    if (rc == NB_OK) rc = tr_bl_ws_new(&R.ws, P, err, errlen);
    if (rc == NB_OK)
        rc = tr_tifu_build(&R.tifu_bl, h, ref_users, ref_end, s->n_train, &tp, err, errlen);
    for (int k = 0; k < 2 && rc == NB_OK && a->tifu && a->tifu_half; k++)
        rc = tr_tifu_build(&R.tifu_half[k], h, ref_users, ref_end, s->n_train, &a->tifu_half[k],
                           err, errlen);
    tp.alpha = 0;
    if (rc == NB_OK)
        rc = tr_tifu_build(&R.tifu_nbr, h, ref_users, ref_end, s->n_train, &tp, err, errlen);
    if (rc == NB_OK) rc = tr_rk_user_init(&R.ru, h, err, errlen);
    if (rc) goto done;
    /* the personal-part features with the same m, r_b, r_g as the neighbour part (the
     * defaults of tr_rk_user_init when a->tifu is NULL) */
    if (a->tifu)
        R.ru.tifu = (tr_rk_tifu){.m = a->tifu->m,
                                 .k = a->tifu->k,
                                 .r_b = a->tifu->r_b,
                                 .r_g = a->tifu->r_g,
                                 .alpha = a->tifu->alpha};

    /* rows */
    int64_t hv[TR_RK_NCOV] = {0}, ht[TR_RK_NCOV] = {0}, htr[TR_RK_NCOV] = {0}, ntv = 0, ntt = 0,
            ntr = 0;
    /* the earlier time point of each training user: its last order with items before the
     * target that has an order with items before it */
    prev = nb_xmalloc(((size_t)s->n_train + 1) * sizeof *prev);
    int n_prev = 0;
    for (int i = 0; i < s->n_train; i++) {
        int u = s->train[i].user;
        int64_t t = tr_earlier_order(h, u, s->train[i].target);
        if (t >= 0) prev[n_prev++] = (tr_sample){u, t};
    }
    if (a->rows & TR_RK_ROWS_PREV)
        rc = gen_rows(&R, prev, n_prev, fps, 1, TR_RK_MAX_TRAIN_ROWS, &tr, htr, &ntr, err, errlen);
    int nu_prev = tr.nu; /* users of the earlier orders' block (0 without it), for the dump */
    /* the cross-validation below uses the first block of rows: the earlier orders' (prev),
     * or with --ranker-rows last the targets' */
    int cv_nu = tr.nu;
    const tr_sample *cv_smp = a->rows & TR_RK_ROWS_PREV ? prev : s->train;
    if (rc == NB_OK && (a->rows & TR_RK_ROWS_LAST))
        rc = gen_rows(&R, s->train, s->n_train, fps, 1, TR_RK_MAX_TRAIN_ROWS, &tr, htr, &ntr, err,
                      errlen);
    if (!(a->rows & TR_RK_ROWS_PREV)) cv_nu = tr.nu;
    if (rc) goto done;
    /* the arrays grew by doubling: give back the unused tail (up to half of them) */
    rowset_resize(&tr, tr.n);
    if (cv_nu > TR_RK_CV_USERS) cv_nu = TR_RK_CV_USERS; /* bounds its cost on large data */
    rep->n_train_rows = tr.n;
    for (int64_t r = 0; r < tr.n; r++) rep->n_train_pos += tr.y[r] > 0;
    rep->t_rows = nb_now() - t0;
    if (a->log)
        fprintf(a->log, "ranker: %lld training rows (%lld positive) from %d users (%.1fs)\n",
                rep->n_train_rows, rep->n_train_pos, tr.nu, rep->t_rows);
    if (tr.n == 0 || s->n_val == 0) {
        rc = nb_err(err, errlen, NB_EINVAL,
                    "ranker: %lld training rows and %d validation users: too little data "
                    "(use --ranker off)",
                    (long long)tr.n, s->n_val);
        goto done;
    }

    /* The trees that may ship are those without the CNN->GRU model's input: the model was
     * trained on the training users' targets, so its probability is in sample for the
     * ranker's training rows (a stacked input must be out of fold), and trees trained on it
     * trust it more than it deserves on new users. The trees with it are measured beside
     * (--ranker-ablation), so that what the model's input is worth stays on record. Without
     * a model (no scorer) the two variants are one. */
    int sv = a->sc ? TR_RKV_NOMODEL : TR_RKV_FULL;

    /* the cross-validation of those trees over the first cv_nu training users, after each
     * count of rounds: the count with the best R@10 is the one every variant is trained
     * with (the fewest on ties; the default count without users to cross-validate) */
    tr_ranker_params prm = a->prm;
    prm.prior_col = a->prior ? TR_RK_TIFU : -1; /* from TIFU-KNN's score (infer/ranker.h) */
    for (int i = 0; i < TR_RK_NROUNDS; i++) {
        cr[i] = nb_xmalloc(((size_t)cv_nu + 1) * sizeof(double));
        cn[i] = nb_xmalloc(((size_t)cv_nu + 1) * sizeof(double));
    }
    t0 = nb_now();
    rc = cv_rows(&R, &tr, cv_nu, cv_smp, sv, &prm, cr, cn, err, errlen);
    rep->t_cv = nb_now() - t0;
    int best_i = 0;
    for (int i = 0; i < TR_RK_NROUNDS; i++) {
        rep->cv_r10[i] = mean(cr[i], cv_nu);
        if (rk_rounds[i] <= prm.trees && rep->cv_r10[i] > rep->cv_r10[best_i]) best_i = i;
    }
    if (cv_nu > 0 && rk_rounds[best_i] <= prm.trees) prm.trees = rk_rounds[best_i];
    rep->trees = prm.trees;
    if (a->log && rc == NB_OK) {
        fprintf(a->log, "ranker: cross-validated R@10 of %d training users after", cv_nu);
        for (int i = 0; i < TR_RK_NROUNDS; i++)
            fprintf(a->log, "%s %d", i ? "," : "", rk_rounds[i]);
        fprintf(a->log, " rounds:");
        for (int i = 0; i < TR_RK_NROUNDS; i++)
            fprintf(a->log, "%s %.4f", i ? "," : "", rep->cv_r10[i]);
        fprintf(a->log, "; %d rounds (%.1fs)\n", prm.trees, rep->t_cv);
    }

    /* trees per variant; then the validation and test users' rows (only now: at full scale
     * their ~3.6M rows would sit beside the training matrix, the job's peak), and the
     * variants' validation and test figures */
    for (int v = 0; v < TR_RK_NV && rc == NB_OK; v++) {
        if (v != sv && !a->ablation) continue;
        if (v == TR_RKV_NOMODEL && !a->sc) continue; /* no model input anyway */
        t0 = nb_now();
        rc = train_variant(&prm, &tr, v, v == sv ? ranker : &extra[v], err, errlen);
        rep->t_train += nb_now() - t0;
        rep->ran[v] = rc == NB_OK;
    }
    t0 = nb_now();
    if (rc == NB_OK)
        rc = gen_rows(&R, s->val, s->n_val, ps_all, 0, INT64_MAX, &va, hv, &ntv, err, errlen);
    if (rc == NB_OK)
        rc = gen_rows(&R, s->test, s->n_test, ps_all, 0, INT64_MAX, &te, ht, &ntt, err, errlen);
    if (rc) goto done;
    rowset_resize(&va, va.n), rowset_resize(&te, te.n);
    if (a->dump_dir) {
        rc = dump_rows(&R, &tr, prev, nu_prev, s->train, "train", err, errlen);
        if (rc == NB_OK) rc = dump_rows(&R, &va, NULL, 0, s->val, "val", err, errlen);
        if (rc == NB_OK) rc = dump_rows(&R, &te, NULL, 0, s->test, "test", err, errlen);
        if (rc) goto done;
    }
    for (int c = 0; c < TR_RK_NCOV; c++) {
        rep->cov_val[c] = ntv ? (double)hv[c] / (double)ntv : 0;
        rep->cov_test[c] = ntt ? (double)ht[c] / (double)ntt : 0;
    }
    rep->mean_cands = te.nu ? (double)te.n / te.nu : 0;
    rep->t_rows += nb_now() - t0;
    if (a->log)
        fprintf(a->log,
                "ranker: %d validation / %d test users, %.1f candidates per test user (%.1fs)\n",
                va.nu, te.nu, rep->mean_cands, nb_now() - t0);
    if (va.nu == 0) {
        rc = nb_err(err, errlen, NB_EINVAL,
                    "ranker: no validation user with history: too little data (use --ranker off)");
        goto done;
    }
    for (int v = 0; v < TR_RK_NV && rc == NB_OK; v++) {
        if (!rep->ran[v]) continue;
        tr_ranker *rk = v == sv ? ranker : &extra[v];
        t0 = nb_now();
        vr[v] = nb_xmalloc(((size_t)va.nu + 1) * sizeof(double));
        vn[v] = nb_xmalloc(((size_t)va.nu + 1) * sizeof(double));
        rc = eval_rows(&R, rk, v, &va, s->val, NULL, vr[v], vn[v], err, errlen);
        if (rc == NB_OK)
            rc = eval_rows(&R, rk, v, &te, s->test, &rep->test[v], NULL, NULL, err, errlen);
        rep->t_eval += nb_now() - t0;
        rep->val_r10[v] = mean(vr[v], va.nu), rep->val_ndcg10[v] = mean(vn[v], va.nu);
        if (a->log && rc == NB_OK)
            fprintf(a->log, "%s: validation R@10 %.4f NDCG@10 %.4f; test R@10 %.4f NDCG@10 %.4f\n",
                    tr_rkv_names[v], rep->val_r10[v], rep->val_ndcg10[v],
                    rep->test[v].thr[0].r_at[0], rep->test[v].thr[0].ndcg_at[0]);
    }
    if (rc) goto done;

    /* selection with the safeguard, on the validation users and (cross-validated) the
     * training users at the orders their rows come from: ~9x more users than validation
     * alone, so that small data sets can tell a few per cent apart */
    int NS = cv_nu + va.nu;
    for (int b = 0; b < RK_N_BL; b++) {
        blr[b] = nb_xmalloc(((size_t)NS + 1) * sizeof(double));
        bln[b] = nb_xmalloc(((size_t)NS + 1) * sizeof(double));
    }
    double *sr = nb_xmalloc(((size_t)NS + 1) * sizeof(double));
    double *sn = nb_xmalloc(((size_t)NS + 1) * sizeof(double));
    memcpy(sr, cr[best_i], (size_t)cv_nu * sizeof *sr);
    memcpy(sn, cn[best_i], (size_t)cv_nu * sizeof *sn);
    rep->variant = sv;
    memcpy(sr + cv_nu, vr[rep->variant], (size_t)va.nu * sizeof *sr);
    memcpy(sn + cv_nu, vn[rep->variant], (size_t)va.nu * sizeof *sn);
    rowset view = tr;
    view.nu = cv_nu;
    double *br[TR_N_BL], *bn[TR_N_BL];
    double *ins = nb_xmalloc(((size_t)NS + 1) * sizeof(double));
    rep->n_crossfit = 0;
    if (rc == NB_OK)
        rc = val_baselines(&R, &view, cv_smp, blr, bln, ins, &rep->n_crossfit, err, errlen);
    for (int b = 0; b < RK_N_BL; b++) br[b] = blr[b] + cv_nu, bn[b] = bln[b] + cv_nu;
    if (rc == NB_OK)
        rc = val_baselines(&R, &va, s->val, br, bn, ins + cv_nu, &rep->n_crossfit, err, errlen);
    rep->sel_tuned_insample_r10 = mean(ins, NS);
    free(ins);
    if (rc) {
        free(sr), free(sn);
        goto done;
    }
    rep->best_bl = 0;
    for (int b = 0; b < RK_N_BL; b++) {
        rep->bl_servable[b] = bl_servable(b, a->tifu != NULL);
        rep->val_bl_r10[b] = mean(br[b], va.nu), rep->val_bl_ndcg10[b] = mean(bn[b], va.nu);
        rep->sel_bl_r10[b] = mean(blr[b], NS), rep->sel_bl_ndcg10[b] = mean(bln[b], NS);
        if (rep->bl_servable[b] && rep->sel_bl_r10[b] > rep->sel_bl_r10[rep->best_bl])
            rep->best_bl = b;
    }
    rep->sel_r10 = mean(sr, NS), rep->sel_ndcg10 = mean(sn, NS);
    rep->n_sel = NS;
    double sd = 0, dm = 0;
    for (int j = 0; j < NS; j++) dm += sr[j] - blr[rep->best_bl][j];
    dm /= NS;
    for (int j = 0; j < NS; j++) {
        double d = sr[j] - blr[rep->best_bl][j] - dm;
        sd += d * d;
    }
    free(sr), free(sn);
    rep->diff_mean = dm;
    rep->diff_se = NS > 1 ? sqrt(sd / (NS - 1) / NS) : 0;
    rep->n_val = va.nu, rep->n_test = te.nu;
    rep->crossfit = R.tifu_half[0] != NULL;
    /* the one-standard-error rule (Hastie et al., ESL 7.10): the trees, the more complex
     * model, ship only when their R@10 is ahead of the baseline's by more than the standard
     * error of the difference (and their NDCG@10 ahead too); within the noise the simpler
     * baseline ships, as level on the selection it is level in expectation, and cheaper */
    rep->shipped_ranker = dm > rep->diff_se && rep->sel_ndcg10 > rep->sel_bl_ndcg10[rep->best_bl];
    if (a->force_ship && !strcmp(a->force_ship, tr_rkv_names[TR_RKV_NOMODEL])) {
        if (!rep->ran[TR_RKV_NOMODEL]) {
            rc = nb_err(err, errlen, NB_EINVAL, "ranker: no '%s' variant (no model input)",
                        a->force_ship);
            goto done;
        }
        rep->variant = TR_RKV_NOMODEL, rep->shipped_ranker = 1;
    } else if (a->force_ship) {
        int b = 0;
        while (b < RK_N_BL && (strcmp(tr_bl_names[b], a->force_ship) || !rep->bl_servable[b])) b++;
        if (b == RK_N_BL) {
            rc = nb_err(err, errlen, NB_EINVAL, "ranker: '%s' is not a servable baseline",
                        a->force_ship);
            goto done;
        }
        rep->best_bl = b, rep->shipped_ranker = 0;
    }
    if (rep->shipped_ranker)
        rep->served = rep->test[rep->variant];
    else if ((rc = served_baseline(&R, &tr, &te, s->test, rep, err, errlen)) != NB_OK)
        goto done;
    if (a->log)
        fprintf(a->log,
                "selection on %d users (%d cross-validated training users, %d "
                "validation users; %s, validation R@10 %.4f): R@10 %.4f vs %s %.4f "
                "(difference %+.4f, standard error %.4f): %s ships\n",
                NS, cv_nu, va.nu, tr_rkv_names[rep->variant], rep->val_r10[rep->variant],
                rep->sel_r10, tr_bl_names[rep->best_bl], rep->sel_bl_r10[rep->best_bl], dm,
                rep->diff_se, tr_rk_shipped(rep));
done:
    if (rc) tr_ranker_free(ranker);
    if (rc) tr_rk_pstats_free(ps_all);
    for (int v = 0; v < TR_RK_NV; v++) {
        tr_ranker_free(&extra[v]);
        free(vr[v]);
        free(vn[v]);
    }
    for (int b = 0; b < RK_N_BL; b++) free(blr[b]), free(bln[b]);
    for (int i = 0; i < TR_RK_NROUNDS; i++) free(cr[i]), free(cn[i]);
    for (int k = 0; k < TR_RK_FOLDS; k++) tr_rk_pstats_free(&fps[k]);
    rowset_free(&tr);
    rowset_free(&va);
    rowset_free(&te);
    tr_popularity_free(&R.pop);
    tr_tifu_free(R.tifu_nbr);
    tr_tifu_free(R.tifu_bl);
    tr_tifu_free(R.tifu_half[0]);
    tr_tifu_free(R.tifu_half[1]);
    tr_bl_ws_free(R.ws);
    tr_rk_user_free(&R.ru);
    free(R.list);
    free(R.nbr_idx);
    free(R.truth);
    free(R.cbuf);
    free(R.score);
    free(R.nbr_val);
    free(R.prob);
    free(R.mark);
    free(R.own);
    free(prev);
    free(ref_users);
    free(ref_end);
    return rc;
}

int tr_rk_oof_stats(const st_history *h, const tr_sample *train, int n_train, tr_rk_pstats *all,
                    tr_rk_pstats oof[TR_RK_FOLDS], char *err, size_t errlen) {
    int P = h->n_products, rc = NB_OK;
    tr_rk_counts ca = {0}, fold[TR_RK_FOLDS];
    memset(fold, 0, sizeof fold);
    memset(all, 0, sizeof *all);
    memset(oof, 0, TR_RK_FOLDS * sizeof *oof);
    uint8_t *umark = nb_xcalloc((size_t)h->n_users + 1, 1);
    uint8_t *mark = nb_xcalloc((size_t)P + 1, 1);
    int32_t *cnt = nb_xcalloc((size_t)P + 1, sizeof *cnt);
    rc = tr_rk_counts_init(&ca, P, err, errlen);
    for (int k = 0; k < TR_RK_FOLDS && rc == NB_OK; k++)
        rc = tr_rk_counts_init(&fold[k], P, err, errlen);
    for (int i = 0; i < n_train && rc == NB_OK; i++) {
        int u = train[i].user;
        if (umark[u]) continue; /* --targets all: several samples per user */
        umark[u] = 1;
        /* up to and including the user's target (its eval_set=train order) */
        int64_t end = tr_train_order(h, u);
        end = end >= 0 ? end + 1 : train[i].target + 1;
        tr_rk_counts_add_user(&ca, h, u, end, mark, cnt);
        tr_rk_counts_add_user(&fold[tr_rk_fold(h->user_ids[u])], h, u, end, mark, cnt);
    }
    if (rc == NB_OK) rc = tr_rk_pstats_from(all, &ca, NULL, err, errlen);
    for (int k = 0; k < TR_RK_FOLDS && rc == NB_OK; k++)
        rc = tr_rk_pstats_from(&oof[k], &ca, &fold[k], err, errlen);
    if (rc) {
        tr_rk_pstats_free(all);
        for (int k = 0; k < TR_RK_FOLDS; k++) tr_rk_pstats_free(&oof[k]);
    }
    for (int k = 0; k < TR_RK_FOLDS; k++) tr_rk_counts_free(&fold[k]);
    tr_rk_counts_free(&ca);
    free(umark);
    free(mark);
    free(cnt);
    return rc;
}

static void row(FILE *out, const char *name, const tr_metrics_result *m) {
    fprintf(out, "%-16s %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f\n", name, m->f1_micro,
            m->f1_macro, m->f1_example, m->p_at[0], m->r_at[0], m->ndcg_at[0], m->hit_at[0],
            m->r_at[1]);
}

void tr_rk_report_table(const tr_rk_report *r, FILE *out) {
    fprintf(out,
            "\nranking stage, %d test users (full catalogue; basket: threshold | "
            "F1_ex expected-F1 in brackets)\n",
            r->n_test);
    for (int v = 0; v < TR_RK_NV; v++) {
        if (!r->ran[v]) continue;
        row(out, tr_rkv_names[v], &r->test[v].thr[0]);
        fprintf(out, "%-16s F1_ex expected-F1 %.4f\n", "", r->test[v].ef1[0].f1_example);
    }
    if (!r->shipped_ranker) {
        row(out, "served", &r->served.thr[0]);
        fprintf(out, "%-16s F1_ex expected-F1 %.4f (%s over the stage's candidates, ", "",
                r->served.ef1[0].f1_example, tr_bl_names[r->best_bl]);
        if (r->cal)
            fprintf(out, "calibrated 1 / (1 + exp(-(%.4g + %.4g s))))\n", r->cal_a, r->cal_b);
        else
            fprintf(out, "raw scores)\n");
    }
    fprintf(out,
            "candidates cover %.4f of test target items (own %.4f, neighbours %.4f, "
            "model/cosine %.4f), %.1f per user\n",
            r->cov_test[TR_RK_COV_ALL], r->cov_test[TR_RK_COV_OWN], r->cov_test[TR_RK_COV_NBR],
            r->cov_test[TR_RK_COV_COS], r->mean_cands);
    fprintf(out,
            "selection on %d users (%d validation, %d cross-validated training users): "
            "%s R@10 %.4f NDCG@10 %.4f vs %s %.4f / %.4f (R@10 difference "
            "%+.4f, s.e. %.4f; the trees ship when ahead by more than one s.e.): %s ships\n",
            r->n_sel, r->n_val, r->n_sel - r->n_val, tr_rkv_names[r->variant], r->sel_r10,
            r->sel_ndcg10, tr_bl_names[r->best_bl], r->sel_bl_r10[r->best_bl],
            r->sel_bl_ndcg10[r->best_bl], r->diff_mean, r->diff_se,
            !r->shipped_ranker              ? tr_bl_names[r->best_bl]
                : r->variant == TR_RKV_FULL ? "the ranker"
                                            : "the ranker without the model's input");
    if (r->crossfit)
        fprintf(out,
                "the tuned TIFU-KNN there: R@10 %.4f cross-fitted on %d tuning users, %.4f with "
                "the parameters tuned on all of them (in sample)\n",
                r->sel_bl_r10[TR_BL_TIFU_TUNED], r->n_crossfit, r->sel_tuned_insample_r10);
}

/* Test metrics of one result as a new cJSON object. */
static void *metrics_json(const tr_eval_result *e) {
    cJSON *m = cJSON_CreateObject();
    const tr_metrics_result *t = &e->thr[0];
    cJSON_AddNumberToObject(m, "R@10", t->r_at[0]);
    cJSON_AddNumberToObject(m, "NDCG@10", t->ndcg_at[0]);
    cJSON_AddNumberToObject(m, "P@10", t->p_at[0]);
    cJSON_AddNumberToObject(m, "HR@10", t->hit_at[0]);
    cJSON_AddNumberToObject(m, "R@20", t->r_at[1]);
    cJSON_AddNumberToObject(m, "NDCG@20", t->ndcg_at[1]);
    cJSON_AddNumberToObject(m, "F1_example_threshold", t->f1_example);
    cJSON_AddNumberToObject(m, "F1_example_expected_f1", e->ef1[0].f1_example);
    return m;
}

void tr_rk_report_json(void *obj, const tr_rk_report *r) {
    cJSON *o = cJSON_AddObjectToObject(obj, "ranker");
    cJSON_AddStringToObject(o, "shipped", tr_rk_shipped(r));
    cJSON_AddStringToObject(o, "best_baseline_on_validation", tr_bl_names[r->best_bl]);
    cJSON_AddNumberToObject(o, "validation_users", r->n_val);
    cJSON_AddNumberToObject(o, "test_users", r->n_test);
    cJSON_AddNumberToObject(o, "selection_users", r->n_sel);
    cJSON_AddNumberToObject(o, "selection_R@10", r->sel_r10);
    cJSON_AddNumberToObject(o, "selection_NDCG@10", r->sel_ndcg10);
    cJSON_AddNumberToObject(o, "selection_baseline_R@10", r->sel_bl_r10[r->best_bl]);
    cJSON_AddNumberToObject(o, "selection_baseline_NDCG@10", r->sel_bl_ndcg10[r->best_bl]);
    cJSON_AddNumberToObject(o, "val_R@10_difference", r->diff_mean);
    cJSON_AddNumberToObject(o, "val_R@10_difference_se", r->diff_se);
    cJSON_AddNumberToObject(o, "cv_s", r->t_cv);
    cJSON_AddNumberToObject(o, "trees", r->trees);
    cJSON *cr = cJSON_AddObjectToObject(o, "cv_R@10_by_rounds");
    for (int i = 0; i < TR_RK_NROUNDS; i++) {
        char k[16];
        snprintf(k, sizeof k, "%d", rk_rounds[i]);
        cJSON_AddNumberToObject(cr, k, r->cv_r10[i]);
    }
    cJSON_AddBoolToObject(o, "selection_tuned_baseline_cross_fitted", r->crossfit);
    cJSON_AddNumberToObject(o, "selection_users_cross_fitted", r->n_crossfit);
    if (r->crossfit) {
        cJSON_AddNumberToObject(o, "selection_tuned_baseline_R@10",
                                r->sel_bl_r10[TR_BL_TIFU_TUNED]);
        cJSON_AddNumberToObject(o, "selection_tuned_baseline_in_sample_R@10",
                                r->sel_tuned_insample_r10);
    }
    cJSON *vb = cJSON_AddObjectToObject(o, "validation_baselines");
    for (int b = 0; b < RK_N_BL; b++) {
        if (!r->bl_servable[b]) continue;
        cJSON *x = cJSON_AddObjectToObject(vb, tr_bl_names[b]);
        cJSON_AddNumberToObject(x, "R@10", r->val_bl_r10[b]);
        cJSON_AddNumberToObject(x, "NDCG@10", r->val_bl_ndcg10[b]);
    }
    cJSON *sv = metrics_json(&r->served);
    if (r->cal) {
        cJSON *c = cJSON_AddObjectToObject(sv, "calibration");
        cJSON_AddNumberToObject(c, "a", r->cal_a);
        cJSON_AddNumberToObject(c, "b", r->cal_b);
    }
    cJSON_AddItemToObject(o, "served", sv);
    cJSON *vs = cJSON_AddObjectToObject(o, "variants");
    for (int v = 0; v < TR_RK_NV; v++) {
        if (!r->ran[v]) continue;
        cJSON *x = metrics_json(&r->test[v]);
        cJSON_AddNumberToObject(x, "val_R@10", r->val_r10[v]);
        cJSON_AddNumberToObject(x, "val_NDCG@10", r->val_ndcg10[v]);
        cJSON_AddItemToObject(vs, tr_rkv_names[v], x);
    }
    static const char *const cov[TR_RK_NCOV] = {"own", "neighbours", "model_cosine", "all"};
    cJSON *ct = cJSON_AddObjectToObject(o, "coverage_test");
    cJSON *cv = cJSON_AddObjectToObject(o, "coverage_validation");
    for (int c = 0; c < TR_RK_NCOV; c++) {
        cJSON_AddNumberToObject(ct, cov[c], r->cov_test[c]);
        cJSON_AddNumberToObject(cv, cov[c], r->cov_val[c]);
    }
    cJSON_AddNumberToObject(o, "mean_candidates", r->mean_cands);
    cJSON_AddNumberToObject(o, "train_rows", (double)r->n_train_rows);
    cJSON_AddNumberToObject(o, "train_positives", (double)r->n_train_pos);
    cJSON_AddNumberToObject(o, "rows_s", r->t_rows);
    cJSON_AddNumberToObject(o, "train_s", r->t_train);
    cJSON_AddNumberToObject(o, "eval_s", r->t_eval);
}

void tr_rk_nbr_free(tr_rk_nbr *n) {
    free(n->off);
    free(n->idx);
    free(n->val);
    memset(n, 0, sizeof *n);
}

int tr_rk_serving_nbr(const st_history *h, const tr_samples *s, const tr_tifu_params *tifu,
                      tr_rk_nbr *out, char *err, size_t errlen) {
    int P = h->n_products, rc = NB_OK;
    memset(out, 0, sizeof *out);
    tr_popularity pop = {0};
    tr_bl_ws *ws = NULL;
    tr_tifu *t = NULL;
    tr_tifu_params tp;
    if (tifu)
        tp = *tifu;
    else
        tr_tifu_defaults(&tp);
    tp.alpha = 0;
    int32_t *ref_users = nb_xmalloc(((size_t)s->n_train + 1) * sizeof *ref_users);
    int64_t *ref_end = nb_xmalloc(((size_t)s->n_train + 1) * sizeof *ref_end);
    int32_t *list = nb_xmalloc((size_t)P * sizeof *list);
    float *score = nb_xmalloc((size_t)P * sizeof *score);
    uint8_t *own = nb_xcalloc((size_t)P, 1);
    int64_t cap = 1024;
    for (int i = 0; i < s->n_train; i++)
        ref_users[i] = s->train[i].user, ref_end[i] = s->train[i].target;
    out->n_users = h->n_users;
    out->off = nb_xcalloc((size_t)h->n_users + 1, sizeof *out->off);
    out->idx = nb_xmalloc((size_t)cap * sizeof *out->idx);
    out->val = nb_xmalloc((size_t)cap * sizeof *out->val);
    rc = tr_popularity_build(&pop, h, err, errlen);
    if (rc == NB_OK) rc = tr_bl_ws_new(&ws, P, err, errlen);
    if (rc == NB_OK) rc = tr_tifu_build(&t, h, ref_users, ref_end, s->n_train, &tp, err, errlen);
    int64_t n = 0;
    int32_t *ki = nb_xmalloc((size_t)P * sizeof *ki);
    float *kv = nb_xmalloc((size_t)P * sizeof *kv);
    for (int u = 0; u < h->n_users && rc == NB_OK; u++) {
        int64_t end = h->user_order_off[u + 1];
        int nl = 0;
        rc = tr_tifu_score(t, &pop, h, u, end, ws, P, list, score, &nl, err, errlen);
        if (rc) break;
        int k = keep_nbr(h, u, end, list, score, nl, own, ki, kv);
        while (n + k > cap) {
            cap *= 2;
            out->idx = nb_xrealloc(out->idx, (size_t)cap * sizeof *out->idx);
            out->val = nb_xrealloc(out->val, (size_t)cap * sizeof *out->val);
        }
        memcpy(out->idx + n, ki, (size_t)k * sizeof *ki);
        memcpy(out->val + n, kv, (size_t)k * sizeof *kv);
        n += k;
        out->off[u + 1] = n;
    }
    free(ki);
    free(kv);
    if (rc) tr_rk_nbr_free(out);
    tr_popularity_free(&pop);
    tr_bl_ws_free(ws);
    tr_tifu_free(t);
    free(ref_users);
    free(ref_end);
    free(list);
    free(score);
    free(own);
    return rc;
}

int tr_rk_print_user(FILE *out, tr_rk_serving *rs, tr_scorer *sc, sqlite3 *db, int64_t model_id,
                     uint32_t crc, const st_history *h, int u, const int32_t *cos, int n_cos, int k,
                     char *err, size_t errlen) {
    tr_rk_thread t;
    int32_t *top = NULL;
    int rc = tr_rk_thread_init(&t, rs, h, err, errlen);
    if (rc == NB_OK)
        rc = tr_rk_thread_rank(&t, rs, sc, db, model_id, h, u, h->user_order_off[u + 1], cos, n_cos,
                               err, errlen);
    if (rc == NB_ENOTFOUND) {
        fprintf(out,
                "{\"user_id\": %d, \"model\": \"%08x\", \"ranking\": \"%s\", "
                "\"cold_start\": true, \"top_k\": []}\n",
                h->user_ids[u], crc, rs->shipped);
        rc = NB_OK;
        goto done;
    }
    if (rc) goto done;
    top = nb_xmalloc(((size_t)k + 1) * sizeof *top);
    int m = tr_rk_top(&t.ru, t.score, k, top);
    fprintf(out, "{\"user_id\": %d, \"model\": \"%08x\", \"ranking\": \"%s\", \"top_k\": [",
            h->user_ids[u], crc, rs->shipped);
    for (int i = 0; i < m; i++) {
        int c = top[i];
        uint8_t sr = t.ru.src[c];
        fprintf(out, "%s{\"product_id\": %d, \"score\": %.9g, \"source\": \"%s\"}", i ? ", " : "",
                h->product_ids[t.ru.cand[c]], (double)t.score[c],
                sr & TR_RK_SRC_OWN       ? "own"
                    : sr & TR_RK_SRC_NBR ? "neighbours"
                                         : "model");
    }
    fprintf(out, "]}\n");
done:
    tr_rk_thread_free(&t);
    free(top);
    return rc;
}
