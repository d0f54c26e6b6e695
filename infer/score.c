/* score.c -- the single scoring path for evaluation (batched) and serving (one user). */
#include "score.h"
#include "calibrate.h"
#include "topk.h"
#include "nb_err.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tr_scorer {
    nn_model *m; /* borrowed */
    tr_batch tb;
    tr_rep_fn rep; /* repeat features, NULL until set */
    void *rep_ctx;
    void (*rep_free)(void *);
    int64_t *ord;       /* [max_orders] scratch for the cold-start check */
    const nn_headq *hq; /* borrowed logit bounds of the output layer, NULL: no pruning */
    /* tr_score_user_top's scratch, [cap] each */
    int cap;
    float *lo, *hi, *tmp, *extra, *out;
    uint8_t *has;
    int32_t *pos, *rows;
    tr_ranked *rk;
    tr_prune_stats st;
};

int tr_scorer_new(tr_scorer **s, nn_model *m, char *err, size_t errlen) {
    (void)err, (void)errlen;
    tr_scorer *x = nb_xcalloc(1, sizeof *x);
    x->m = m;
    x->ord = nb_xmalloc((size_t)m->cfg.max_orders * sizeof(int64_t));
    *s = x;
    return NB_OK;
}

void tr_scorer_free(tr_scorer *s) {
    if (!s) return;
    tr_batch_free(&s->tb);
    if (s->rep_free) s->rep_free(s->rep_ctx);
    free(s->ord);
    free(s->lo);
    free(s->hi);
    free(s->tmp);
    free(s->extra);
    free(s->out);
    free(s->has);
    free(s->pos);
    free(s->rows);
    free(s->rk);
    free(s);
}

void tr_scorer_set_rep(tr_scorer *s, tr_rep_fn fn, void *ctx, void (*free_ctx)(void *)) {
    if (s->rep_free) s->rep_free(s->rep_ctx);
    s->rep = fn;
    s->rep_ctx = ctx;
    s->rep_free = free_ctx;
}

float tr_calibrate(const nn_model *m, float logit) {
    return (float)tr_sigmoid((double)m->calib_a * logit + m->calib_b);
}

/* Runs the network on smp[0..B) scoring rows[0..S) (S == 0: all). Returns NB_OK with the
 * logits in s->m->logits (head != 0), or with the output layer's input and the repeat values
 * in *hin / *rep_v (head == 0: nn_model_forward_hidden), or NB_EINVAL when the model needs
 * product stats it was not given. */
static int run_part(tr_scorer *s, const st_history *h, const tr_sample *smp, int B,
                    const int32_t *rows, int S, int head, const nn_real **hin,
                    const nn_real **rep_v, char *err, size_t errlen) {
    nn_model *m = s->m;
    if (m->cfg.rep_features > 0 && !s->rep)
        return nb_err(err, errlen, NB_EINVAL,
                      "the model has a repeat term: tr_scorer_set_stats was not called");
    if (m->cfg.rep_features > 0 && m->cfg.rep_features != TR_N_FEATURES)
        return nb_err(err, errlen, NB_EMISMATCH, "model has %d repeat features, this build %d",
                      m->cfg.rep_features, TR_N_FEATURES);
    int rc = tr_batch_fill(&s->tb, h, smp, B, &m->cfg, rows, S, 0,
                           m->cfg.rep_features > 0 ? s->rep : NULL, s->rep_ctx, err, errlen);
    if (rc) return rc;
    if (head)
        nn_model_forward(m, &s->tb.nb, 0, 1.0f);
    else
        nn_model_forward_hidden(m, &s->tb.nb, hin, rep_v);
    return NB_OK;
}

/* run_part with the whole network. */
static int run(tr_scorer *s, const st_history *h, const tr_sample *smp, int B, const int32_t *rows,
               int S, char *err, size_t errlen) {
    return run_part(s, h, smp, B, rows, S, 1, NULL, NULL, err, errlen);
}

/* Returns NB_OK when user u has input before hist_end, else NB_EINVAL (out of range) or
 * NB_ENOTFOUND (no order with items: cold start). */
static int check_user(tr_scorer *s, const st_history *h, int u, int64_t hist_end, char *err,
                      size_t errlen) {
    if (u < 0 || u >= h->n_users || hist_end < h->user_order_off[u] ||
        hist_end > h->user_order_off[u + 1])
        return nb_err(err, errlen, NB_EINVAL, "user index %d / history end %lld out of range", u,
                      (long long)hist_end);
    if (tr_input_orders(h, u, hist_end, s->m->cfg.max_orders, s->ord) == 0)
        return nb_err(err, errlen, NB_ENOTFOUND, "user %d has no order with items", h->user_ids[u]);
    return NB_OK;
}

int tr_score_user(tr_scorer *s, const st_history *h, int u, int64_t hist_end, const int32_t *cand,
                  int n_cand, float *prob, char *err, size_t errlen) {
    int rc = check_user(s, h, u, hist_end, err, errlen);
    if (rc) return rc;
    if (!cand) n_cand = 0;
    tr_sample smp = {u, hist_end};
    rc = run(s, h, &smp, 1, cand, n_cand, err, errlen);
    if (rc) return rc;
    int n = n_cand > 0 ? n_cand : s->m->cfg.n_products;
    for (int i = 0; i < n; i++) prob[i] = tr_calibrate(s->m, s->m->logits[i]);
    return NB_OK;
}

int tr_score_batch(tr_scorer *s, const st_history *h, const tr_sample *smp, int B, float *logit,
                   float *prob, char *err, size_t errlen) {
    int rc = run(s, h, smp, B, NULL, 0, err, errlen);
    if (rc) return rc;
    size_t n = (size_t)B * s->m->cfg.n_products;
    if (logit) memcpy(logit, s->m->logits, n * sizeof(float));
    if (prob)
        for (size_t i = 0; i < n; i++) prob[i] = tr_calibrate(s->m, s->m->logits[i]);
    return NB_OK;
}

/* ---- the pruned path ---------------------------------------------------------------------
 *
 * Why it returns exactly what a response shows. Let x_p be candidate p's logit as
 * tr_score_user computes it and F(x) = tr_calibrate(x) its probability.
 *  1. nn_headq_bounds_ref (from a reference input h0: 8 bytes per product, in cache) gives
 *     lo_p <= x_p <= hi_p (a rigorous float error analysis, see model/nn_headq.c); the
 *     repeat value is part of it.
 *  2. The cutoff c is the m-th largest lo, lowered to the logit threshold when a basket
 *     threshold applies. Candidates with
 *     hi_p >= c are "survivors" and get x_p from the same
 *     deterministic kernel as the full path (nn_head_forward: a logit's bits do not depend on
 *     the row list) plus the same single float addition of the repeat value: bit-identical.
 *     The m candidates with the largest lo survive (hi >= lo >= c), so there are >= m.
 *  3. The cutoff is only a choice; correctness rests on a final check. With U the largest hi
 *     of the candidates left out, every one of them has x <= U, hence
 *     F(x) <= F(U + delta) (F is monotone up to double-rounding noise in exp and the
 *     division, a z-window of a few 1e-16 (1 + |z|), which a * delta exceeds by far; the
 *     check requires a * delta > 1e-12 (1 + |z|)). The check demands F(U + delta) < the
 *     m-th largest survivor probability and < thr. Then each left-out candidate has a
 *     strictly smaller probability than m survivors (so it ranks after them whatever the
 *     tie rule) and is below the threshold: the top m and the basket are the full path's.
 *     If the check fails (e.g. probabilities saturated at 1), the rest is scored too.
 */

void tr_scorer_set_headq(tr_scorer *s, const nn_headq *hq) { s->hq = hq; }

int tr_score_user_hidden(tr_scorer *s, const st_history *h, int u, int64_t hist_end, float *out,
                         char *err, size_t errlen) {
    int rc = check_user(s, h, u, hist_end, err, errlen);
    if (rc) return rc;
    tr_sample smp = {u, hist_end};
    const nn_real *hin = NULL, *rep_v = NULL;
    /* one scored column: the repeat features of a single product are cheap */
    int32_t one = 0;
    rc = run_part(s, h, &smp, 1, &one, 1, 0, &hin, &rep_v, err, errlen);
    if (rc) return rc;
    for (int i = 0; i < s->m->cfg.head; i++) out[i] = (float)hin[i];
    return NB_OK;
}

int tr_headq_reference_from(nn_headq *hq, tr_scorer *s, tr_user_next_fn next, void *ctx,
                            int max_users, char *err, size_t errlen) {
    int D = s->m->cfg.head, n = 0, rc = NB_OK;
    double *sum = nb_xcalloc((size_t)D, sizeof(double));
    float *one = nb_xmalloc((size_t)D * sizeof(float));
    while (n < max_users) {
        const st_history *h = NULL;
        int u = 0;
        int64_t end = 0;
        rc = next(ctx, &h, &u, &end, err, errlen);
        if (rc <= 0) break;
        rc = tr_score_user_hidden(s, h, u, end, one, err, errlen);
        if (rc == NB_ENOTFOUND) { /* no order with items */
            rc = NB_OK;
            continue;
        }
        if (rc) break;
        for (int i = 0; i < D; i++) sum[i] += one[i];
        n++;
    }
    if (rc == NB_OK && n > 0) {
        for (int i = 0; i < D; i++) one[i] = (float)(sum[i] / n);
        rc = nn_headq_set_ref(hq, one, s->m->p.out_w, s->m->p.out_b, err, errlen);
    }
    free(sum);
    free(one);
    return rc;
}

/* tr_headq_reference's user source: the users of one history in order. */
typedef struct {
    const st_history *h;
    int u;
} hist_users;

static int hist_users_next(void *ctx, const st_history **h, int *u, int64_t *hist_end, char *err,
                           size_t errlen) {
    (void)err, (void)errlen;
    hist_users *it = ctx;
    if (it->u >= it->h->n_users) return 0;
    *h = it->h;
    *u = it->u;
    *hist_end = it->h->user_order_off[it->u + 1];
    it->u++;
    return 1;
}

int tr_headq_reference(nn_headq *hq, tr_scorer *s, const st_history *h, char *err, size_t errlen) {
    hist_users it = {h, 0};
    return tr_headq_reference_from(hq, s, hist_users_next, &it, INT_MAX, err, errlen);
}

void tr_scorer_prune_stats(const tr_scorer *s, tr_prune_stats *st) { *st = s->st; }

/* Grows the pruned path's scratch to n entries each. */
static void top_reserve(tr_scorer *s, int n) {
    if (n <= s->cap) return;
    size_t f = (size_t)n * sizeof(float), i = (size_t)n * sizeof(int32_t);
    s->lo = nb_xrealloc(s->lo, f);
    s->hi = nb_xrealloc(s->hi, f);
    s->tmp = nb_xrealloc(s->tmp, f);
    s->extra = nb_xrealloc(s->extra, f);
    s->out = nb_xrealloc(s->out, f);
    s->has = nb_xrealloc(s->has, (size_t)n);
    s->pos = nb_xrealloc(s->pos, i);
    s->rows = nb_xrealloc(s->rows, i);
    s->rk = nb_xrealloc(s->rk, (size_t)n * sizeof *s->rk);
    s->cap = n;
}

static float kth_select(float *v, int n, int k, tr_ranked *rk);

/* Returns the k-th largest (k = 1: the largest) of v[0..n), 1 <= k <= n, reordering v; rk
 * is scratch for n pairs. No NaN (the bounds are checked finite). */
static float kth_largest(float *v, int n, int k, tr_ranked *rk) {
    if (k > 32 && n >= 1024 && 4 * k <= n) {
        /* a threshold t from a strided sample, likely just below the k-th largest; if at
         * least k values are >= t, the k-th largest is among them (moved to the front) */
        float smp[256];
        int step = n / 256;
        for (int i = 0; i < 256; i++) smp[i] = v[i * step];
        int r = (int)(1.25 * k * 256 / n) + 8;
        if (r > 256) r = 256;
        float t = kth_select(smp, 256, r, rk);
        int c = 0;
        for (int i = 0; i < n; i++)
            if (v[i] >= t) {
                float x = v[c];
                v[c++] = v[i];
                v[i] = x;
            }
        if (c >= k) return kth_select(v, c, k, rk);
    }
    return kth_select(v, n, k, rk);
}

/* kth_largest's general case, by the selections of topk.h. */
static float kth_select(float *v, int n, int k, tr_ranked *rk) {
    if (k <= 32) {
        /* the usual case (k = top-k of a threshold-mode request): tr_topk's one pass keeping
         * the k largest in order; almost every element fails its first comparison */
        int32_t top[32];
        tr_topk(v, NULL, n, k, top);
        return v[top[k - 1]];
    }
    for (int i = 0; i < n; i++) rk[i] = (tr_ranked){v[i], i};
    tr_rank_prefix(rk, n, k);
    return rk[k - 1].p;
}

/* The smallest logit whose probability can reach thr, rounded down with a margin (a lower
 * cutoff only keeps more candidates; the final check is what makes the result exact):
 * -INFINITY when every probability is >= thr, INFINITY when thr does not constrain. */
static float logit_cut(const nn_model *m, double thr) {
    if (!(thr > 0)) return -INFINITY;
    if (!(thr < 1)) return INFINITY;
    double t = (log(thr / (1 - thr)) - m->calib_b) / m->calib_a;
    t -= 1e-3 * (1 + fabs(t));
    if (!(t > -1e30)) return -INFINITY;
    if (t > 1e30) return INFINITY;
    return (float)t - 1e-6f * (1 + fabsf((float)t));
}

/* Exact logits and probabilities of the candidates at positions pos[0..ns) (cand == NULL:
 * position = product index): the full path's kernel and repeat addition. Writes their
 * product indices into s->rows and the probabilities into prob. */
static void score_exact(tr_scorer *s, const nn_real *hin, const int32_t *cand, const int32_t *pos,
                        int ns, float *prob) {
    nn_model *m = s->m;
    for (int j = 0; j < ns; j++) s->rows[j] = cand ? cand[pos[j]] : pos[j];
    nn_head_forward(s->out, hin, m->p.out_w, m->p.out_b, s->rows, 1, m->cfg.head, ns);
    for (int j = 0; j < ns; j++) {
        float x = s->out[j];
        if (s->has[pos[j]]) x += s->extra[pos[j]];
        prob[j] = tr_calibrate(m, x);
    }
}

int tr_score_user_top(tr_scorer *s, const st_history *h, int u, int64_t hist_end,
                      const int32_t *cand, int n_cand, int m, double thr, int32_t *idx, float *prob,
                      int *n_out, char *err, size_t errlen) {
    return tr_score_user_top_keep(s, h, u, hist_end, cand, n_cand, 0, m, thr, idx, prob, n_out, err,
                                  errlen);
}

int tr_score_user_top_keep(tr_scorer *s, const st_history *h, int u, int64_t hist_end,
                           const int32_t *cand, int n_cand, int n_keep, int m, double thr,
                           int32_t *idx, float *prob, int *n_out, char *err, size_t errlen) {
    nn_model *mo = s->m;
    *n_out = 0;
    int rc = check_user(s, h, u, hist_end, err, errlen);
    if (rc) return rc;
    if (!cand) n_cand = 0;
    if (n_keep < 0 || n_keep > n_cand)
        return nb_err(err, errlen, NB_EINVAL, "%d candidates kept of %d", n_keep, n_cand);
    int n = n_cand > 0 ? n_cand : mo->cfg.n_products, k0 = n_keep;
    tr_sample smp = {u, hist_end};
    const nn_real *hin = NULL, *rep_v = NULL;
    rc = run_part(s, h, &smp, 1, cand, n_cand, 0, &hin, &rep_v, err, errlen);
    if (rc) return rc;
    top_reserve(s, n);
    int32_t *pos = s->pos;
    memset(s->has, 0, (size_t)n);
    memset(s->extra, 0, (size_t)n * sizeof(float));
    if (rep_v)
        for (int i = 0; i < s->tb.nb.n_rep; i++) {
            int col = s->tb.nb.rep_col[i];
            s->has[col] = 1;
            s->extra[col] = rep_v[i];
        }
    s->st.calls++;
    s->st.candidates += n;

    /* the pruning, when it applies (see the top of this section); ns = n: score all */
    int ns = n, pruned = 0;
    float umax = -INFINITY;
    const nn_headq *hq = s->hq;
    if (hq && mo->calib_a > 0 && isfinite(mo->calib_a) && isfinite(mo->calib_b) && m >= 1 &&
        m < n - k0 && hq->P == mo->cfg.n_products && hq->D == mo->cfg.head) {
        float ct = logit_cut(mo, thr);
        for (int p = 0; p < n; p++) pos[p] = p;
        /* the reference bounds (cheap, in cache): lo/hi by position */
        int ok0 = nn_headq_bounds_ref(s->lo, s->hi, hin, hq, cand, s->extra, s->has, n) == 0;
        if (ok0) {
            /* the cutoff from the candidates that may be left out; the kept ones survive */
            memcpy(s->tmp, s->lo + k0, (size_t)(n - k0) * sizeof(float));
            float c = kth_largest(s->tmp, n - k0, m, s->rk);
            if (ct < c) c = ct;
            ns = 0;
            for (int p = 0; p < n; p++) {
                if (p < k0 || s->hi[p] >= c)
                    pos[ns++] = p;
                else if (s->hi[p] > umax)
                    umax = s->hi[p];
            }
        } else {
            for (int p = 0; p < n; p++) s->lo[p] = -INFINITY, s->hi[p] = INFINITY;
        }
        pruned = ns < n;
    }
    if (!pruned) {
        for (int p = 0; p < n; p++) pos[p] = p;
        ns = n;
    }
    score_exact(s, hin, cand, pos, ns, prob);

    if (pruned) {
        /* the final check (see the top of this section) */
        double a = mo->calib_a, delta = 1e-6 * (1 + fabs((double)umax));
        float ub = (float)((double)umax + delta);
        if ((double)ub < (double)umax + delta) ub = nextafterf(ub, INFINITY);
        double z = a * ub + mo->calib_b;
        double pu = tr_calibrate(mo, ub);
        /* survivors are in position order: the kept ones are prob[0..k0) */
        assert(ns - k0 >= m);
        memcpy(s->tmp, prob + k0, (size_t)(ns - k0) * sizeof(float));
        double pm = kth_largest(s->tmp, ns - k0, m, s->rk);
        if (!(a * delta > 1e-12 * (1 + fabs(z)) && pu < pm && pu < thr)) {
            s->st.fallbacks++;
            for (int p = 0; p < n; p++) pos[p] = p;
            ns = n;
            score_exact(s, hin, cand, pos, ns, prob);
            pruned = 0;
        }
    }
    s->st.pruned_calls += pruned;
    s->st.survivors += ns;
    /* last, so that idx may be cand */
    memcpy(idx, s->rows, (size_t)ns * sizeof(int32_t));
    *n_out = ns;
    return NB_OK;
}
