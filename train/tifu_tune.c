/* tifu_tune.c -- see tifu_tune.h. */
#include "tifu_tune.h"

#include "nb_err.h"
#include "split.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPN 10      /* R@10 / NDCG@10 */
#define MAX_ROUNDS 3 /* coordinate-descent sweeps over (m, r_b, r_g) at most */

/* Fills g with the default grid (see the header). */
void tr_tifu_grid_default(tr_tifu_grid *g) {
    static const int m[] = {3, 7, 11};
    static const double d[] = {0.6, 0.7, 0.8, 0.9, 1.0};
    static const int k[] = {100, 300, 900};
    static const double a[] = {0.1, 0.3, 0.5, 0.7, 0.9, 1.0};
    memset(g, 0, sizeof *g);
    g->n_m = 3, g->n_rb = 5, g->n_rg = 5, g->n_k = 3, g->n_alpha = 6;
    memcpy(g->m, m, sizeof m);
    memcpy(g->r_b, d, sizeof d);
    memcpy(g->r_g, d, sizeof d);
    memcpy(g->k, k, sizeof k);
    memcpy(g->alpha, a, sizeof a);
}

/* Returns NB_OK when every count is in 1..TR_TIFU_GRID_MAX, every value is a valid TIFU-KNN
 * parameter and k ascends strictly (neighbour lists are grown prefix by prefix), else
 * NB_EINVAL naming the first bad entry. */
static int check_grid(const tr_tifu_grid *g, char *err, size_t errlen) {
    const int n[5] = {g->n_m, g->n_rb, g->n_rg, g->n_k, g->n_alpha};
    static const char *const name[5] = {"m", "r_b", "r_g", "k", "alpha"};
    for (int i = 0; i < 5; i++)
        if (n[i] < 1 || n[i] > TR_TIFU_GRID_MAX)
            return nb_err(err, errlen, NB_EINVAL, "TIFU-KNN grid: %d values of %s (want 1..%d)",
                          n[i], name[i], TR_TIFU_GRID_MAX);
    for (int i = 0; i < g->n_m; i++)
        if (g->m[i] < 1)
            return nb_err(err, errlen, NB_EINVAL, "TIFU-KNN grid: m = %d < 1", g->m[i]);
    for (int i = 0; i < g->n_rb; i++)
        if (!(g->r_b[i] > 0 && g->r_b[i] <= 1))
            return nb_err(err, errlen, NB_EINVAL, "TIFU-KNN grid: r_b = %g not in (0, 1]",
                          g->r_b[i]);
    for (int i = 0; i < g->n_rg; i++)
        if (!(g->r_g[i] > 0 && g->r_g[i] <= 1))
            return nb_err(err, errlen, NB_EINVAL, "TIFU-KNN grid: r_g = %g not in (0, 1]",
                          g->r_g[i]);
    for (int i = 0; i < g->n_k; i++)
        if (g->k[i] < 1 || (i > 0 && g->k[i] <= g->k[i - 1]))
            return nb_err(err, errlen, NB_EINVAL,
                          "TIFU-KNN grid: k = %d (want >= 1 and strictly ascending)", g->k[i]);
    for (int i = 0; i < g->n_alpha; i++)
        if (!(g->alpha[i] >= 0 && g->alpha[i] <= 1))
            return nb_err(err, errlen, NB_EINVAL, "TIFU-KNN grid: alpha = %g not in [0, 1]",
                          g->alpha[i]);
    return NB_OK;
}

/* Copies an evenly strided subsample of at most cap of s[0..n) (indices floor(i * n / cap),
 * in order) into a new array (caller frees). Returns the count. */
static int subsample(const tr_sample *s, int n, int cap, tr_sample **out) {
    int c = n < cap ? n : cap;
    *out = nb_xmalloc(((size_t)c + 1) * sizeof **out);
    for (int i = 0; i < c; i++) (*out)[i] = s[(int64_t)i * n / c];
    return c;
}

/* Checks that every sample's user and target lie in h. Returns NB_OK or NB_EINVAL. */
static int check_samples(const st_history *h, const tr_sample *s, int n, const char *what,
                         char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        int u = s[i].user;
        if (u < 0 || u >= h->n_users || s[i].target < h->user_order_off[u] ||
            s[i].target >= h->user_order_off[u + 1])
            return nb_err(
                err, errlen, NB_EINVAL,
                "TIFU-KNN tuning: %s sample %d (user index %d, order %lld) not in the history",
                what, i, u, (long long)s[i].target);
    }
    return NB_OK;
}

/* The reference users' vectors for one (m, r_b, r_g) and the inverted index over them, laid
 * out as in tr_tifu_build so that the dot products are summed in the same order. */
typedef struct {
    int64_t *off; /* [n_ref + 1] into idx / val */
    int32_t *idx;
    float *val;
    size_t cap;
    double *norm2;     /* [n_ref] */
    int64_t *post_off; /* [P + 1] */
    int32_t *post_ref;
    float *post_val;
    size_t post_cap;
} ref_set;

/* Frees r's arrays (r itself is the caller's). */
static void ref_set_free(ref_set *r) {
    free(r->off);
    free(r->idx);
    free(r->val);
    free(r->norm2);
    free(r->post_off);
    free(r->post_ref);
    free(r->post_val);
}

/* Builds r's vectors and index for ref[0..n) under p (arrays reused across calls).
 * Returns NB_OK or tr_tifu_user_vector's error. */
static int ref_set_build(ref_set *r, const st_history *h, const tr_sample *ref, int n,
                         const tr_tifu_params *p, tr_bl_ws *ws, char *err, size_t errlen) {
    const size_t P = (size_t)h->n_products;
    size_t nnz = 0;
    memset(r->post_off, 0, (P + 1) * sizeof *r->post_off);
    r->off[0] = 0;
    for (int i = 0; i < n; i++) {
        int u = ref[i].user;
        /* at most one entry per item of the history */
        size_t bound =
            (size_t)(h->order_item_off[ref[i].target] - h->order_item_off[h->user_order_off[u]]);
        if (nnz + bound > r->cap) {
            while (nnz + bound > r->cap) r->cap = r->cap ? 2 * r->cap : 4096;
            r->idx = nb_xrealloc(r->idx, r->cap * sizeof *r->idx);
            r->val = nb_xrealloc(r->val, r->cap * sizeof *r->val);
        }
        int k = 0;
        int rc = tr_tifu_user_vector(h, u, ref[i].target, p, ws, r->idx + nnz, r->val + nnz, &k,
                                     err, errlen);
        if (rc != NB_OK) return rc;
        double n2 = 0;
        for (int j = 0; j < k; j++) {
            n2 += (double)r->val[nnz + j] * r->val[nnz + j];
            r->post_off[r->idx[nnz + j] + 1]++;
        }
        nnz += (size_t)k;
        r->off[i + 1] = (int64_t)nnz;
        r->norm2[i] = n2;
    }
    if (nnz + 1 > r->post_cap) {
        r->post_cap = nnz + 1;
        r->post_ref = nb_xrealloc(r->post_ref, r->post_cap * sizeof *r->post_ref);
        r->post_val = nb_xrealloc(r->post_val, r->post_cap * sizeof *r->post_val);
    }
    /* counting sort: postings in reference order, as tr_tifu_build */
    for (size_t j = 0; j < P; j++) r->post_off[j + 1] += r->post_off[j];
    for (int i = 0; i < n; i++)
        for (int64_t e = r->off[i]; e < r->off[i + 1]; e++) {
            int64_t pos = r->post_off[r->idx[e]]++;
            r->post_ref[pos] = i;
            r->post_val[pos] = r->val[e];
        }
    for (size_t j = P; j > 0; j--) r->post_off[j] = r->post_off[j - 1];
    r->post_off[0] = 0;
    return NB_OK;
}

/* A neighbour candidate: squared distance, reference index. */
typedef struct {
    double d;
    int32_t r;
} nbr;

/* Nearer first; equal distances by reference order (tr_tifu_score's tie rule). */
static int nbr_cmp(const void *pa, const void *pb) {
    const nbr *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->r > b->r) - (a->r < b->r);
}

/* Max-heap sift-down (the farthest by nbr_cmp at the root). */
static void nbr_down(nbr *a, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, c = l + 1, w = i;
        if (l < n && nbr_cmp(&a[l], &a[w]) > 0) w = l;
        if (c < n && nbr_cmp(&a[c], &a[w]) > 0) w = c;
        if (w == i) return;
        nbr t = a[i];
        a[i] = a[w];
        a[w] = t;
        i = w;
    }
}

/* Scratch for scoring one validation user. */
typedef struct {
    int32_t *qi; /* [P] query vector */
    float *qv;
    double *qd;       /* [P] dense query vector, zero between users */
    double *S;        /* [P] sum of the neighbours' vectors so far, zero between users */
    uint8_t *on;      /* [P] 1 for products in touched */
    int32_t *touched; /* [P] */
    uint8_t *truth;   /* [P] 1 for the target's products, zero between users */
    int32_t *cj;      /* [P] the products that can reach a top 10: the user's own */
    double *cq, *cs;  /* products and the 10 best others; qd / S alongside */
    double *dots;     /* [n_ref] */
    nbr *heap;        /* [k_max] */
} scratch;

/* Inserts (v, j) into the top list bs/bj of *nb <= TOPN entries (descending, ties by lower
 * index) if it belongs there. */
static void top_insert(double *bs, int32_t *bj, int *nb, double v, int32_t j) {
    if (*nb == TOPN && !(v > bs[TOPN - 1] || (v == bs[TOPN - 1] && j < bj[TOPN - 1]))) return;
    int c = *nb < TOPN ? (*nb)++ : TOPN - 1;
    while (c > 0 && (v > bs[c - 1] || (v == bs[c - 1] && j < bj[c - 1]))) {
        bs[c] = bs[c - 1], bj[c] = bj[c - 1];
        c--;
    }
    bs[c] = v, bj[c] = j;
}

/* Ranks the nc candidate products cj by blend score (> 0 only; descending, ties by lower
 * index), fills from popularity as tr_tifu_score does, and adds the user's R@10 and NDCG@10
 * (nt target products) to *sr / *sn. */
static void rank_and_score(const scratch *s, int nc, const tr_popularity *pop, double alpha,
                           double wgt, int nt, double *sr, double *sn) {
    double bs[TOPN];
    int32_t bj[TOPN];
    int nb = 0;
    for (int i = 0; i < nc; i++) {
        int32_t j = s->cj[i];
        double v = alpha * s->cq[i] + wgt * s->cs[i];
        if (v > 0) top_insert(bs, bj, &nb, v, j);
    }
    for (int r = 0; nb < TOPN && r < pop->n_products; r++) {
        int32_t j = pop->rank[r];
        if (s->on[j] && alpha * s->qd[j] + wgt * s->S[j] > 0) continue; /* already ranked */
        bj[nb++] = j;
    }
    if (nt == 0) return;
    int hits = 0;
    double dcg = 0, idcg = 0;
    for (int i = 0; i < nb; i++)
        if (s->truth[bj[i]]) hits++, dcg += 1.0 / log2((double)i + 2.0);
    for (int i = 0; i < (nt < TOPN ? nt : TOPN); i++) idcg += 1.0 / log2((double)i + 2.0);
    *sr += (double)hits / nt;
    *sn += dcg / idcg;
}

/* Evaluates every (k, alpha) of the grid for the reference set rs (built under p) on the
 * validation samples, adding each user's R@10 / NDCG@10 to sr / sn [n_k * n_alpha].
 * Returns NB_OK or tr_tifu_user_vector's error. */
static int eval_triple(const st_history *h, const tr_popularity *pop, const tr_sample *val, int nv,
                       const tr_sample *ref, int nr, const ref_set *rs, const tr_tifu_params *p,
                       const tr_tifu_grid *g, tr_bl_ws *ws, scratch *s, double *sr, double *sn,
                       char *err, size_t errlen) {
    const int kmax = g->k[g->n_k - 1];
    for (int v = 0; v < nv; v++) {
        int u = val[v].user, nq = 0, nt = 0;
        int64_t t = val[v].target;
        for (int64_t e = h->order_item_off[t]; e < h->order_item_off[t + 1]; e++)
            if (!s->truth[h->items[e]]) s->truth[h->items[e]] = 1, nt++;
        int rc = tr_tifu_user_vector(h, u, t, p, ws, s->qi, s->qv, &nq, err, errlen);
        if (rc != NB_OK) return rc;
        double qn = 0;
        for (int i = 0; i < nq; i++) qn += (double)s->qv[i] * s->qv[i];
        memset(s->dots, 0, (size_t)nr * sizeof *s->dots);
        for (int i = 0; i < nq; i++) {
            int32_t j = s->qi[i];
            double q = s->qv[i];
            for (int64_t e = rs->post_off[j]; e < rs->post_off[j + 1]; e++)
                s->dots[rs->post_ref[e]] += q * rs->post_val[e];
        }
        /* the k_max nearest, the user itself excluded, then in distance order */
        int nh = 0;
        for (int r = 0; r < nr; r++) {
            if (ref[r].user == u) continue;
            nbr c = {qn + rs->norm2[r] - 2.0 * s->dots[r], r};
            if (nh < kmax) {
                s->heap[nh++] = c;
                if (nh == kmax)
                    for (int i = nh / 2 - 1; i >= 0; i--) nbr_down(s->heap, nh, i);
            } else if (nbr_cmp(&c, &s->heap[0]) < 0) {
                s->heap[0] = c;
                nbr_down(s->heap, nh, 0);
            }
        }
        qsort(s->heap, (size_t)nh, sizeof *s->heap, nbr_cmp);
        int n_touched = 0;
        for (int i = 0; i < nq; i++) {
            int32_t j = s->qi[i];
            s->qd[j] = s->qv[i];
            s->on[j] = 1;
            s->touched[n_touched++] = j;
        }
        int done = 0; /* neighbours summed into S */
        for (int ik = 0; ik < g->n_k; ik++) {
            int kk = g->k[ik] < nh ? g->k[ik] : nh;
            for (; done < kk; done++) {
                int r = s->heap[done].r;
                for (int64_t e = rs->off[r]; e < rs->off[r + 1]; e++) {
                    int32_t j = rs->idx[e];
                    if (!s->on[j]) s->on[j] = 1, s->touched[n_touched++] = j;
                    s->S[j] += rs->val[e];
                }
            }
            /* A product the user never bought scores wgt * S, the same order for every
             * alpha < 1 (and 0 at alpha = 1), so only the 10 best of them by S can enter a
             * top 10: the alpha loop ranks the user's own products and those 10. */
            double ns[TOPN];
            int32_t nj[TOPN];
            int nn = 0, nc = 0;
            for (int i = nq; i < n_touched; i++)
                top_insert(ns, nj, &nn, s->S[s->touched[i]], s->touched[i]);
            for (int i = 0; i < nq; i++, nc++)
                s->cj[nc] = s->touched[i], s->cq[nc] = s->qd[s->touched[i]],
                s->cs[nc] = s->S[s->touched[i]];
            for (int i = 0; i < nn; i++, nc++) s->cj[nc] = nj[i], s->cq[nc] = 0, s->cs[nc] = ns[i];
            for (int ia = 0; ia < g->n_alpha; ia++) {
                double a = g->alpha[ia], wgt = kk > 0 ? (1.0 - a) / kk : 0.0;
                int c = ik * g->n_alpha + ia;
                rank_and_score(s, nc, pop, a, wgt, nt, &sr[c], &sn[c]);
            }
        }
        for (int i = 0; i < n_touched; i++) {
            int32_t j = s->touched[i];
            s->qd[j] = 0, s->S[j] = 0, s->on[j] = 0;
        }
        for (int64_t e = h->order_item_off[t]; e < h->order_item_off[t + 1]; e++)
            s->truth[h->items[e]] = 0;
    }
    return NB_OK;
}

/* Tunes TIFU-KNN; see the header. Returns NB_OK or NB_EINVAL. */
int tr_tifu_tune(const st_history *h, const tr_popularity *pop, const tr_sample *val, int n_val,
                 const tr_sample *ref, int n_ref, const tr_tifu_grid *g, int max_val, int max_ref,
                 tr_tifu_tune_result *out, char *err, size_t errlen) {
    double t0 = nb_now();
    clock_t c0 = clock();
    tr_tifu_grid dg;
    if (!g) tr_tifu_grid_default(&dg), g = &dg;
    memset(out, 0, sizeof *out);
    tr_tifu_defaults(&out->best);
    out->def_r10 = out->def_ndcg10 = -1;
    tr_sample *V = NULL, *R = NULL;
    tr_bl_ws *ws = NULL;
    tr_popularity own_pop = {0};
    ref_set rs = {0};
    scratch s = {0};
    double *sr = NULL, *sn = NULL;
    uint8_t *seen = NULL; /* [(m, r_b, r_g) points] evaluated */
    int rc = check_grid(g, err, errlen);
    if (rc == NB_OK && !pop) {
        rc = tr_popularity_build(&own_pop, h, err, errlen);
        pop = &own_pop;
    }
    if (rc == NB_OK && (pop->n_products != h->n_products || n_val < 0 || n_ref < 0))
        rc = nb_err(err, errlen, NB_EINVAL,
                    "TIFU-KNN tuning: popularity for %d products, history has %d; %d / %d samples",
                    pop->n_products, h->n_products, n_val, n_ref);
    if (rc == NB_OK) rc = check_samples(h, val, n_val, "validation", err, errlen);
    if (rc == NB_OK) rc = check_samples(h, ref, n_ref, "reference", err, errlen);
    if (rc == NB_OK) rc = tr_bl_ws_new(&ws, h->n_products, err, errlen);
    if (rc != NB_OK || n_val == 0) goto done;
    const int nv = subsample(val, n_val, max_val > 0 ? max_val : TR_TIFU_TUNE_MAX_VAL, &V);
    const int nr = subsample(ref, n_ref, max_ref > 0 ? max_ref : TR_TIFU_TUNE_MAX_REF, &R);
    const size_t P = (size_t)h->n_products;
    const int nka = g->n_k * g->n_alpha;
    const int n_cfg = g->n_m * g->n_rb * g->n_rg * nka;
    rs.off = nb_xmalloc(((size_t)nr + 1) * sizeof *rs.off);
    rs.norm2 = nb_xmalloc(((size_t)nr + 1) * sizeof *rs.norm2);
    rs.post_off = nb_xmalloc((P + 1) * sizeof *rs.post_off);
    s.qi = nb_xmalloc(P * sizeof *s.qi);
    s.qv = nb_xmalloc(P * sizeof *s.qv);
    s.qd = nb_xcalloc(P, sizeof *s.qd);
    s.S = nb_xcalloc(P, sizeof *s.S);
    s.on = nb_xcalloc(P, 1);
    s.touched = nb_xmalloc(P * sizeof *s.touched);
    s.truth = nb_xcalloc(P, 1);
    s.cj = nb_xmalloc((P + TOPN) * sizeof *s.cj);
    s.cq = nb_xmalloc((P + TOPN) * sizeof *s.cq);
    s.cs = nb_xmalloc((P + TOPN) * sizeof *s.cs);
    s.dots = nb_xmalloc(((size_t)nr + 1) * sizeof *s.dots);
    s.heap = nb_xmalloc((size_t)g->k[g->n_k - 1] * sizeof *s.heap);
    sr = nb_xcalloc((size_t)n_cfg, sizeof *sr);
    sn = nb_xcalloc((size_t)n_cfg, sizeof *sn);
    /* coordinate descent over (m, r_b, r_g) from the defaults' values (the grid's first
     * values for any that is not in the grid); every (m, r_b, r_g) visited is evaluated with
     * all its (k, alpha), and the search stands on the best grid point seen so far */
    tr_tifu_params def;
    tr_tifu_defaults(&def);
    const int nd[3] = {g->n_m, g->n_rb, g->n_rg};
    int cur[3] = {0, 0, 0};
    for (int i = 0; i < g->n_m; i++)
        if (g->m[i] == def.m) cur[0] = i;
    for (int i = 0; i < g->n_rb; i++)
        if (g->r_b[i] == def.r_b) cur[1] = i;
    for (int i = 0; i < g->n_rg; i++)
        if (g->r_g[i] == def.r_g) cur[2] = i;
    int idef = -1;
    for (int ik = 0; ik < g->n_k; ik++)
        for (int ia = 0; ia < g->n_alpha; ia++)
            if (g->m[cur[0]] == def.m && g->r_b[cur[1]] == def.r_b && g->r_g[cur[2]] == def.r_g &&
                g->k[ik] == def.k && g->alpha[ia] == def.alpha)
                idef =
                    ((cur[0] * g->n_rb + cur[1]) * g->n_rg + cur[2]) * nka + ik * g->n_alpha + ia;
    seen = nb_xcalloc((size_t)(n_cfg / nka), 1);
    int best = -1, moved = 1, n_tri = 0;
    for (int round = 0; round < MAX_ROUNDS && moved && rc == NB_OK; round++) {
        moved = 0;
        for (int d = 0; d < 3 && rc == NB_OK; d++) {
            int at[3] = {cur[0], cur[1], cur[2]};
            for (int v = 0; v < nd[d] && rc == NB_OK; v++) {
                at[d] = v;
                int tri = (at[0] * g->n_rb + at[1]) * g->n_rg + at[2], c0 = tri * nka;
                if (seen[tri]) continue;
                seen[tri] = 1, n_tri++;
                tr_tifu_params p = {.r_b = g->r_b[at[1]],
                                    .r_g = g->r_g[at[2]],
                                    .m = g->m[at[0]],
                                    .k = g->k[g->n_k - 1],
                                    .alpha = 1};
                rc = ref_set_build(&rs, h, R, nr, &p, ws, err, errlen);
                if (rc == NB_OK)
                    rc = eval_triple(h, pop, V, nv, R, nr, &rs, &p, g, ws, &s, sr + c0, sn + c0,
                                     err, errlen);
                /* higher R@10, then NDCG@10; an exact tie keeps the earlier point unless
                 * the newcomer is the defaults' */
                for (int c = c0; c < c0 + nka && rc == NB_OK; c++)
                    if (best < 0 || sr[c] > sr[best] ||
                        (sr[c] == sr[best] &&
                         (sn[c] > sn[best] || (sn[c] == sn[best] && c == idef))))
                        best = c;
            }
            if (rc != NB_OK) break;
            int bt = best / nka,
                nb3[3] = {bt / g->n_rg / g->n_rb, bt / g->n_rg % g->n_rb, bt % g->n_rg};
            if (nb3[0] != cur[0] || nb3[1] != cur[1] || nb3[2] != cur[2]) moved = 1;
            memcpy(cur, nb3, sizeof cur);
        }
    }
    if (rc != NB_OK) goto done;
    {
        int ia = best % g->n_alpha, ik = best / g->n_alpha % g->n_k;
        out->best = (tr_tifu_params){.r_b = g->r_b[cur[1]],
                                     .r_g = g->r_g[cur[2]],
                                     .m = g->m[cur[0]],
                                     .k = g->k[ik],
                                     .alpha = g->alpha[ia]};
    }
    out->val_r10 = sr[best] / nv;
    out->val_ndcg10 = sn[best] / nv;
    if (idef >= 0) out->def_r10 = sr[idef] / nv, out->def_ndcg10 = sn[idef] / nv;
    out->n_configs = n_tri * nka;
    out->n_grid = n_cfg;
    out->n_val = nv;
    out->n_ref = nr;
done:
    out->seconds = nb_now() - t0;
    out->cpu_seconds = (double)(clock() - c0) / CLOCKS_PER_SEC;
    free(V);
    free(R);
    tr_bl_ws_free(ws);
    tr_popularity_free(&own_pop);
    ref_set_free(&rs);
    free(s.qi);
    free(s.qv);
    free(s.qd);
    free(s.S);
    free(s.on);
    free(s.touched);
    free(s.truth);
    free(s.cj);
    free(s.cq);
    free(s.cs);
    free(s.dots);
    free(s.heap);
    free(sr);
    free(sn);
    free(seen);
    return rc;
}

/* The tuning samples; see the header. Returns their count. */
int tr_tifu_tuning_set(const st_history *h, const tr_sample *val, int n_val,
                       const tr_sample *train, int n_train, int back, int cap, tr_sample **out,
                       int *n_from_val) {
    assert(back >= 1);
    if (cap <= 0) cap = TR_TIFU_TUNE_MAX_VAL;
    tr_sample *v = NULL;
    int nv = subsample(val, n_val > 0 ? n_val : 0, cap, &v);
    /* one sample per training user: back orders before the last of its (contiguous) samples */
    int nl = 0;
    tr_sample *early = nb_xmalloc(((size_t)(n_train > 0 ? n_train : 0) + 1) * sizeof *early);
    for (int i = 0; i < n_train; i++) {
        if (i + 1 < n_train && train[i + 1].user == train[i].user) continue;
        int64_t o = train[i].target;
        for (int b = 0; b < back && o >= 0; b++) o = tr_earlier_order(h, train[i].user, o);
        if (o >= 0) early[nl++] = (tr_sample){.user = train[i].user, .target = o};
    }
    int nt = cap - nv < nl ? cap - nv : nl;
    *out = nb_xrealloc(v, ((size_t)nv + nt + 1) * sizeof *v);
    for (int i = 0; i < nt; i++) (*out)[nv + i] = early[(int64_t)i * nl / nt];
    free(early);
    *n_from_val = nv;
    return nv + nt;
}

/* Sums parameters p's R@10 and NDCG@10 over samples v[0..n) into *r10 / *ndcg10, scored by
 * the tuner (a one-point grid, no cap). Returns NB_OK or tr_tifu_tune's errors. */
static int score_point(const st_history *h, const tr_popularity *pop, const tr_sample *v, int n,
                       const tr_sample *ref, int n_ref, const tr_tifu_params *p, double *r10,
                       double *ndcg10, char *err, size_t errlen) {
    tr_tifu_grid g = {.n_m = 1, .n_rb = 1, .n_rg = 1, .n_k = 1, .n_alpha = 1};
    g.m[0] = p->m, g.r_b[0] = p->r_b, g.r_g[0] = p->r_g, g.k[0] = p->k, g.alpha[0] = p->alpha;
    tr_tifu_tune_result r;
    int rc = tr_tifu_tune(h, pop, v, n, ref, n_ref, &g, n, 0, &r, err, errlen);
    if (rc == NB_OK) *r10 += r.val_r10 * r.n_val, *ndcg10 += r.val_ndcg10 * r.n_val;
    return rc;
}

/* The cross-fitted check; see the header. Returns NB_OK, NB_EINVAL (full is not the
 * whole tuning of these samples) or tr_tifu_tune's errors. */
int tr_tifu_crossfit(const st_history *h, const tr_popularity *pop, const tr_sample *tune,
                     int n_tune, const tr_sample *ref, int n_ref, const tr_tifu_tune_result *full,
                     tr_tifu_crossfit_result *out, char *err, size_t errlen) {
    double t0 = nb_now();
    memset(out, 0, sizeof *out);
    tr_tifu_defaults(&out->half[0]);
    out->half[1] = out->half[0];
    if (n_tune > TR_TIFU_TUNE_MAX_VAL) n_tune = TR_TIFU_TUNE_MAX_VAL; /* as the tuner caps */
    if (n_tune < 2) return NB_OK;
    if (full->n_val != n_tune || full->def_r10 < 0)
        return nb_err(err, errlen, NB_EINVAL,
                      "TIFU-KNN signal check: the whole tuning scored %d samples (%s), not the "
                      "%d given with the defaults",
                      full->n_val, full->def_r10 < 0 ? "no defaults" : "defaults", n_tune);
    tr_sample *hv[2];
    int nh[2] = {0, 0}, rc = NB_OK;
    hv[0] = nb_xmalloc(((size_t)n_tune / 2 + 1) * sizeof **hv);
    hv[1] = nb_xmalloc(((size_t)n_tune / 2 + 1) * sizeof **hv);
    for (int i = 0; i < n_tune; i++) hv[i & 1][nh[i & 1]++] = tune[i];
    for (int k = 0; k < 2 && rc == NB_OK; k++) {
        tr_tifu_tune_result r;
        rc = tr_tifu_tune(h, pop, hv[k], nh[k], ref, n_ref, NULL, nh[k], 0, &r, err, errlen);
        out->half[k] = r.best;
    }
    for (int k = 0; k < 2 && rc == NB_OK; k++)
        rc = score_point(h, pop, hv[1 - k], nh[1 - k], ref, n_ref, &out->half[k], &out->r10,
                         &out->ndcg10, err, errlen);
    if (rc == NB_OK) {
        out->n = n_tune;
        out->r10 /= n_tune, out->ndcg10 /= n_tune;
        out->def_r10 = full->def_r10, out->def_ndcg10 = full->def_ndcg10;
    }
    free(hv[0]);
    free(hv[1]);
    out->seconds = nb_now() - t0;
    return rc;
}
