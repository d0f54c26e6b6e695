/* baselines.c -- see baselines.h. */
#include "baselines.h"

#include "nb_err.h"
#include "store.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One product of a ranking being built: primary score, secondary key (recency), index. */
typedef struct {
    double s;
    int64_t rec;
    int32_t idx;
} bl_item;

struct tr_bl_ws {
    int P;
    double *acc;      /* [P] dense scores / vector values, zero between calls */
    int64_t *last;    /* [P] last order index that counted the product, -1 between calls */
    int32_t *cnt;     /* [P] orders containing the product, zero between calls */
    int32_t *touched; /* [P] products with a non-zero entry in acc/cnt */
    int n_touched;
    bl_item *items; /* [P] */
    int32_t *qi;    /* [P] query vector indices */
    float *qv;      /* [P] query vector values */
    double *dots;   /* [cap_ref] dot products with the reference users */
    int cap_ref;
    int32_t *heap; /* [cap_k] nearest reference users */
    double *heapd;
    int cap_k;
};

/* Returns NB_OK and *ws (caller frees with tr_bl_ws_free) or NB_EINVAL. */
int tr_bl_ws_new(tr_bl_ws **ws, int n_products, char *err, size_t errlen) {
    *ws = NULL;
    if (n_products <= 0)
        return nb_err(err, errlen, NB_EINVAL, "baselines: n_products = %d must be > 0", n_products);
    size_t P = (size_t)n_products;
    tr_bl_ws *w = nb_xcalloc(1, sizeof *w);
    w->P = n_products;
    w->acc = nb_xcalloc(P, sizeof *w->acc);
    w->last = nb_xmalloc(P * sizeof *w->last);
    w->cnt = nb_xcalloc(P, sizeof *w->cnt);
    w->touched = nb_xmalloc(P * sizeof *w->touched);
    w->items = nb_xmalloc(P * sizeof *w->items);
    w->qi = nb_xmalloc(P * sizeof *w->qi);
    w->qv = nb_xmalloc(P * sizeof *w->qv);
    for (size_t j = 0; j < P; j++) w->last[j] = -1;
    *ws = w;
    return NB_OK;
}

/* Frees ws and its buffers; NULL is a no-op. */
void tr_bl_ws_free(tr_bl_ws *ws) {
    if (!ws) return;
    free(ws->acc);
    free(ws->last);
    free(ws->cnt);
    free(ws->touched);
    free(ws->items);
    free(ws->qi);
    free(ws->qv);
    free(ws->dots);
    free(ws->heap);
    free(ws->heapd);
    free(ws);
}

/* Returns acc/last/cnt of the touched products to their between-calls state. */
static void ws_clear(tr_bl_ws *w) {
    for (int i = 0; i < w->n_touched; i++) {
        int32_t j = w->touched[i];
        w->acc[j] = 0;
        w->last[j] = -1;
        w->cnt[j] = 0;
    }
    w->n_touched = 0;
}

/* Score descending, then recency descending, then index ascending: a total order. */
static int item_cmp(const void *pa, const void *pb) {
    const bl_item *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    if (a->rec != b->rec) return a->rec > b->rec ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Restores the heap property below i in a heap of n items whose root is the WORST item
 * (the one item_cmp orders last). */
static void item_heap_down(bl_item *a, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && item_cmp(&a[l], &a[w]) > 0) w = l;
        if (r < n && item_cmp(&a[r], &a[w]) > 0) w = r;
        if (w == i) return;
        bl_item t = a[i];
        a[i] = a[w];
        a[w] = t;
        i = w;
    }
}

/* Moves the best min(n, ni) of a[0..ni) into a[0..) in item_cmp order and returns that count.
 * O(ni log n): a bounded heap, so that ranking thousands of neighbour products for a top-20
 * list does not sort them all. */
static int select_top(bl_item *a, int ni, int n) {
    if (n <= 0) return 0;
    if (ni > n) {
        for (int i = n / 2 - 1; i >= 0; i--) item_heap_down(a, n, i);
        for (int i = n; i < ni; i++)
            if (item_cmp(&a[i], &a[0]) < 0) {
                a[0] = a[i];
                item_heap_down(a, n, 0);
            }
        ni = n;
    }
    qsort(a, (size_t)ni, sizeof *a, item_cmp);
    return ni;
}

/* Checks u and hist_end against h. Returns NB_OK or NB_EINVAL. */
static int check_user(const st_history *h, int u, int64_t hist_end, int n, char *err,
                      size_t errlen) {
    if (u < 0 || u >= h->n_users)
        return nb_err(err, errlen, NB_EINVAL, "baselines: user index %d not in 0..%d", u,
                      h->n_users - 1);
    if (hist_end < h->user_order_off[u] || hist_end > h->user_order_off[u + 1])
        return nb_err(err, errlen, NB_EINVAL,
                      "baselines: hist_end %lld outside user %d's orders [%lld, %lld]",
                      (long long)hist_end, (int)h->user_ids[u], (long long)h->user_order_off[u],
                      (long long)h->user_order_off[u + 1]);
    if (n < 0) return nb_err(err, errlen, NB_EINVAL, "baselines: list length %d < 0", n);
    return NB_OK;
}

/* ---- popularity ------------------------------------------------------------------------ */

/* Order count descending, then index ascending (qsort_r with the counts as context). */
static int pop_cmp(const void *pa, const void *pb, void *ctx) {
    const int32_t *cnt = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (cnt[a] != cnt[b]) return cnt[a] > cnt[b] ? -1 : 1;
    return (a > b) - (a < b);
}

/* Counts ST_PRIOR orders per product. Returns NB_OK or NB_EINVAL. */
int tr_popularity_build(tr_popularity *pop, const st_history *h, char *err, size_t errlen) {
    memset(pop, 0, sizeof *pop);
    if (h->n_products <= 0) return nb_err(err, errlen, NB_EINVAL, "popularity: no products");
    const size_t P = (size_t)h->n_products;
    int32_t *cnt = nb_xcalloc(P, sizeof *cnt);
    int64_t *seen = nb_xmalloc(P * sizeof *seen);
    pop->share = nb_xmalloc(P * sizeof *pop->share);
    pop->rank = nb_xmalloc(P * sizeof *pop->rank);
    for (size_t j = 0; j < P; j++) seen[j] = -1;
    pop->n_products = (int)P;
    for (int64_t o = 0; o < h->n_orders; o++) {
        if (h->eval_set[o] != ST_PRIOR || h->order_item_off[o] == h->order_item_off[o + 1])
            continue;
        pop->n_orders++;
        for (int64_t t = h->order_item_off[o]; t < h->order_item_off[o + 1]; t++) {
            int32_t j = h->items[t];
            if (seen[j] != o) seen[j] = o, cnt[j]++;
        }
    }
    for (size_t j = 0; j < P; j++) {
        pop->share[j] = pop->n_orders ? (float)((double)cnt[j] / (double)pop->n_orders) : 0.0f;
        pop->rank[j] = (int32_t)j;
    }
    qsort_r(pop->rank, P, sizeof *pop->rank, pop_cmp, cnt);
    free(cnt);
    free(seen);
    return NB_OK;
}

/* Frees pop's arrays; pop is left zeroed. */
void tr_popularity_free(tr_popularity *pop) {
    free(pop->share);
    free(pop->rank);
    memset(pop, 0, sizeof *pop);
}

/* The top min(n, P) products by popularity. */
void tr_gtopfreq(const tr_popularity *pop, int n, int32_t *out, float *score, int *n_out) {
    int k = n < pop->n_products ? n : pop->n_products;
    if (k < 0) k = 0;
    for (int i = 0; i < k; i++) {
        out[i] = pop->rank[i];
        score[i] = pop->share[pop->rank[i]];
    }
    *n_out = k;
}

/* Writes the first min(n, n_items) sorted items, then popular products whose acc is 0 (not
 * in the items) with score 0, up to n or P. Returns the count written. */
static int emit_with_fill(tr_bl_ws *w, const tr_popularity *pop, int n_items, int n, int32_t *out,
                          float *score) {
    int k = 0;
    for (; k < n_items && k < n; k++) {
        out[k] = w->items[k].idx;
        score[k] = (float)w->items[k].s;
    }
    /* exactly the items have cnt != 0 (the callers see to it): the fill skips them */
    for (int r = 0; k < n && r < pop->n_products; r++) {
        int32_t j = pop->rank[r];
        if (w->cnt[j] == 0) {
            out[k] = j;
            score[k] = 0.0f;
            k++;
        }
    }
    return k;
}

/* P-TopFreq; see the header. Returns NB_OK or NB_EINVAL. */
int tr_ptopfreq(const tr_popularity *pop, const st_history *h, int u, int64_t hist_end,
                tr_bl_ws *ws, int n, int32_t *out, float *score, int *n_out, char *err,
                size_t errlen) {
    *n_out = 0;
    int rc = check_user(h, u, hist_end, n, err, errlen);
    if (rc != NB_OK) return rc;
    if (ws->P != h->n_products || pop->n_products != h->n_products)
        return nb_err(err, errlen, NB_EINVAL,
                      "P-TopFreq: workspace/popularity for %d/%d products, history has %d", ws->P,
                      pop->n_products, h->n_products);
    int64_t n_hist = 0;
    for (int64_t o = h->user_order_off[u]; o < hist_end; o++) {
        if (h->order_item_off[o] == h->order_item_off[o + 1]) continue;
        n_hist++;
        for (int64_t t = h->order_item_off[o]; t < h->order_item_off[o + 1]; t++) {
            int32_t j = h->items[t];
            if (ws->last[j] == o) continue; /* repeated within this order */
            if (ws->cnt[j] == 0) ws->touched[ws->n_touched++] = j;
            ws->cnt[j]++;
            ws->last[j] = o;
        }
    }
    for (int i = 0; i < ws->n_touched; i++) {
        int32_t j = ws->touched[i];
        ws->items[i] = (bl_item){(double)ws->cnt[j] / (double)n_hist, ws->last[j], j};
    }
    int ni = select_top(ws->items, ws->n_touched, n);
    for (int i = ni; i < ws->n_touched; i++) ws->cnt[ws->items[i].idx] = 0; /* not listed */
    *n_out = emit_with_fill(ws, pop, ni, n, out, score);
    ws_clear(ws);
    return NB_OK;
}

/* ---- TIFU-KNN -------------------------------------------------------------------------- */

/* Fills p with the brief's settings: r_b 0.9, r_g 0.7, m 3, k 300, alpha 0.9. */
void tr_tifu_defaults(tr_tifu_params *p) {
    p->r_b = 0.9;
    p->r_g = 0.7;
    p->m = 3;
    p->k = 300;
    p->alpha = 0.9;
}

/* Returns NB_OK when the TIFU-KNN parameters are usable, else NB_EINVAL naming them. */
static int check_params(const tr_tifu_params *p, char *err, size_t errlen) {
    if (!(p->r_b > 0 && p->r_b <= 1) || !(p->r_g > 0 && p->r_g <= 1) || p->m < 1 || p->k < 0 ||
        !(p->alpha >= 0 && p->alpha <= 1))
        return nb_err(err, errlen, NB_EINVAL,
                      "TIFU-KNN: bad parameters r_b %g r_g %g m %d k %d alpha %g (want decays in "
                      "(0,1], m >= 1, k >= 0, alpha in [0,1])",
                      p->r_b, p->r_g, p->m, p->k, p->alpha);
    return NB_OK;
}

/* Accumulates u's vector into ws->acc (touched list filled, ws->last used for per-order
 * dedupe). Caller has checked the arguments. */
static void tifu_accumulate(const st_history *h, int u, int64_t hist_end, const tr_tifu_params *p,
                            tr_bl_ws *w) {
    int64_t N = 0;
    for (int64_t o = h->user_order_off[u]; o < hist_end; o++)
        N += h->order_item_off[o] != h->order_item_off[o + 1];
    if (N == 0) return;
    const int64_t m = p->m, G = (N + m - 1) / m;
    const int64_t s_oldest = N - m * (G - 1); /* size of the oldest group */
    int64_t i = 0;                            /* basket number, oldest first */
    for (int64_t o = h->user_order_off[u]; o < hist_end; o++) {
        if (h->order_item_off[o] == h->order_item_off[o + 1]) continue;
        int64_t q = N - 1 - i; /* 0 = most recent basket */
        int64_t gj = q / m;    /* 0 = most recent group */
        double s = gj == G - 1 ? (double)s_oldest : (double)m;
        double coef = pow(p->r_g, (double)gj) / (double)G * pow(p->r_b, (double)(q % m)) / s;
        for (int64_t t = h->order_item_off[o]; t < h->order_item_off[o + 1]; t++) {
            int32_t j = h->items[t];
            if (w->last[j] == o) continue;
            w->last[j] = o;
            if (w->cnt[j] == 0) { /* cnt marks "touched" even if a value rounds to 0 */
                w->touched[w->n_touched++] = j;
                w->cnt[j] = 1;
            }
            w->acc[j] += coef;
        }
        i++;
    }
}

/* Ascending int32 order for qsort. */
static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Moves the accumulated vector out of ws into sorted (idx, val) and clears ws. */
static int tifu_extract(tr_bl_ws *w, int32_t *idx, float *val) {
    int nnz = w->n_touched;
    qsort(w->touched, (size_t)nnz, sizeof *w->touched, cmp_i32);
    for (int i = 0; i < nnz; i++) {
        idx[i] = w->touched[i];
        val[i] = (float)w->acc[w->touched[i]];
    }
    ws_clear(w);
    return nnz;
}

/* The user vector as sorted (idx, val); see the header. Returns NB_OK or NB_EINVAL. */
int tr_tifu_user_vector(const st_history *h, int u, int64_t hist_end, const tr_tifu_params *p,
                        tr_bl_ws *ws, int32_t *idx, float *val, int *nnz, char *err,
                        size_t errlen) {
    *nnz = 0;
    int rc = check_user(h, u, hist_end, 0, err, errlen);
    if (rc == NB_OK) rc = check_params(p, err, errlen);
    if (rc == NB_OK && ws->P != h->n_products)
        rc = nb_err(err, errlen, NB_EINVAL, "TIFU-KNN: workspace for %d products, history has %d",
                    ws->P, h->n_products);
    if (rc != NB_OK) return rc;
    tifu_accumulate(h, u, hist_end, p, ws);
    *nnz = tifu_extract(ws, idx, val);
    return NB_OK;
}

struct tr_tifu {
    tr_tifu_params prm;
    int P, n_ref;
    int32_t *ref_user; /* [n_ref] user index in h */
    int64_t *off;      /* [n_ref + 1] into idx/val */
    int32_t *idx;
    float *val;
    double *norm2;     /* [n_ref] squared Euclidean norms */
    int64_t *post_off; /* [P + 1] inverted index: product -> (reference user, value) */
    int32_t *post_ref;
    float *post_val;
};

/* Frees the reference set; NULL is a no-op. */
void tr_tifu_free(tr_tifu *t) {
    if (!t) return;
    free(t->ref_user);
    free(t->off);
    free(t->idx);
    free(t->val);
    free(t->norm2);
    free(t->post_off);
    free(t->post_ref);
    free(t->post_val);
    free(t);
}

/* Builds the reference set; see the header. Returns NB_OK or NB_EINVAL. */
int tr_tifu_build(tr_tifu **tp, const st_history *h, const int32_t *ref_users,
                  const int64_t *ref_hist_end, int n_ref, const tr_tifu_params *p, char *err,
                  size_t errlen) {
    *tp = NULL;
    tr_bl_ws *w = NULL;
    tr_tifu *t = NULL;
    int rc = check_params(p, err, errlen);
    if (rc == NB_OK && n_ref < 0)
        rc = nb_err(err, errlen, NB_EINVAL, "TIFU-KNN: n_ref %d < 0", n_ref);
    for (int i = 0; rc == NB_OK && i < n_ref; i++) {
        int u = ref_users[i];
        int64_t end = ref_hist_end       ? ref_hist_end[i]
            : (u >= 0 && u < h->n_users) ? h->user_order_off[u + 1]
                                         : 0;
        rc = check_user(h, u, end, 0, err, errlen);
        if (rc != NB_OK) rc = nb_err_wrap(err, errlen, rc, "TIFU-KNN reference entry %d", i);
    }
    if (rc == NB_OK) rc = tr_bl_ws_new(&w, h->n_products, err, errlen);
    if (rc != NB_OK) goto done;
    const size_t P = (size_t)h->n_products;
    t = nb_xcalloc(1, sizeof *t);
    t->prm = *p;
    t->P = (int)P;
    t->n_ref = n_ref;
    t->ref_user = nb_xmalloc(((size_t)n_ref + 1) * sizeof *t->ref_user);
    t->off = nb_xmalloc(((size_t)n_ref + 1) * sizeof *t->off);
    t->norm2 = nb_xmalloc(((size_t)n_ref + 1) * sizeof *t->norm2);
    t->post_off = nb_xcalloc(P + 1, sizeof *t->post_off);
    size_t cap = 1024, nnz = 0;
    t->idx = nb_xmalloc(cap * sizeof *t->idx);
    t->val = nb_xmalloc(cap * sizeof *t->val);
    t->off[0] = 0;
    for (int i = 0; i < n_ref; i++) {
        int u = ref_users[i];
        int64_t end = ref_hist_end ? ref_hist_end[i] : h->user_order_off[u + 1];
        tifu_accumulate(h, u, end, p, w);
        size_t need = nnz + (size_t)w->n_touched;
        if (need > cap) {
            while (cap < need) cap *= 2;
            t->idx = nb_xrealloc(t->idx, cap * sizeof *t->idx);
            t->val = nb_xrealloc(t->val, cap * sizeof *t->val);
        }
        int k = tifu_extract(w, t->idx + nnz, t->val + nnz);
        double n2 = 0;
        for (int j = 0; j < k; j++) {
            n2 += (double)t->val[nnz + j] * t->val[nnz + j];
            t->post_off[t->idx[nnz + j] + 1]++;
        }
        nnz += (size_t)k;
        t->ref_user[i] = u;
        t->off[i + 1] = (int64_t)nnz;
        t->norm2[i] = n2;
    }
    /* inverted index by counting sort; postings are in reference order */
    for (size_t j = 0; j < P; j++) t->post_off[j + 1] += t->post_off[j];
    t->post_ref = nb_xmalloc((nnz + 1) * sizeof *t->post_ref);
    t->post_val = nb_xmalloc((nnz + 1) * sizeof *t->post_val);
    for (int i = 0; i < n_ref; i++)
        for (int64_t e = t->off[i]; e < t->off[i + 1]; e++) {
            int32_t j = t->idx[e];
            int64_t pos = t->post_off[j]++;
            t->post_ref[pos] = i;
            t->post_val[pos] = t->val[e];
        }
    for (size_t j = P; j > 0; j--) t->post_off[j] = t->post_off[j - 1]; /* undo the shift */
    t->post_off[0] = 0;
    *tp = t;
    t = NULL;
done:
    tr_tifu_free(t);
    tr_bl_ws_free(w);
    return rc;
}

/* 1 if neighbour (da, a) is farther than (db, b): larger distance, or equal and later. */
static int farther(double da, int32_t a, double db, int32_t b) {
    return da > db || (da == db && a > b);
}

/* Max-heap (farthest at the root) sift-down over n entries. */
static void heap_down(double *d, int32_t *r, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, c = l + 1, w = i;
        if (l < n && farther(d[l], r[l], d[w], r[w])) w = l;
        if (c < n && farther(d[c], r[c], d[w], r[w])) w = c;
        if (w == i) return;
        double td = d[i];
        int32_t tr = r[i];
        d[i] = d[w], r[i] = r[w];
        d[w] = td, r[w] = tr;
        i = w;
    }
}

/* TIFU-KNN scores for user u; see the header. Returns NB_OK or NB_EINVAL. */
int tr_tifu_score(const tr_tifu *t, const tr_popularity *pop, const st_history *h, int u,
                  int64_t hist_end, tr_bl_ws *ws, int n, int32_t *out, float *score, int *n_out,
                  char *err, size_t errlen) {
    *n_out = 0;
    int rc = check_user(h, u, hist_end, n, err, errlen);
    if (rc != NB_OK) return rc;
    if (t->P != h->n_products || ws->P != h->n_products || pop->n_products != h->n_products)
        return nb_err(err, errlen, NB_EINVAL,
                      "TIFU-KNN: reference set / workspace / popularity for %d / %d / %d "
                      "products, history has %d",
                      t->P, ws->P, pop->n_products, h->n_products);
    const tr_tifu_params *p = &t->prm;
    if (ws->cap_ref < t->n_ref) {
        ws->dots = nb_xrealloc(ws->dots, (size_t)t->n_ref * sizeof *ws->dots);
        ws->cap_ref = t->n_ref;
    }
    if (ws->cap_k < p->k) {
        ws->heap = nb_xrealloc(ws->heap, (size_t)p->k * sizeof *ws->heap);
        ws->heapd = nb_xrealloc(ws->heapd, (size_t)p->k * sizeof *ws->heapd);
        ws->cap_k = p->k;
    }
    /* the query vector, kept in qi/qv (acc is needed again for the blended scores) */
    tifu_accumulate(h, u, hist_end, p, ws);
    int nq = tifu_extract(ws, ws->qi, ws->qv);
    double qn = 0;
    for (int i = 0; i < nq; i++) qn += (double)ws->qv[i] * ws->qv[i];
    /* dot products through the inverted index: O(sum of posting lengths of u's products) */
    memset(ws->dots, 0, (size_t)t->n_ref * sizeof *ws->dots);
    for (int i = 0; i < nq; i++) {
        int32_t j = ws->qi[i];
        double qv = ws->qv[i];
        for (int64_t e = t->post_off[j]; e < t->post_off[j + 1]; e++)
            ws->dots[t->post_ref[e]] += qv * t->post_val[e];
    }
    /* k nearest by squared Euclidean distance, the user itself excluded */
    int nh = 0;
    for (int r = 0; r < t->n_ref; r++) {
        if (t->ref_user[r] == u) continue;
        double d = qn + t->norm2[r] - 2.0 * ws->dots[r];
        if (nh < p->k) {
            int c = nh++;
            while (c > 0) { /* sift up */
                int up = (c - 1) / 2;
                if (!farther(d, r, ws->heapd[up], ws->heap[up])) break;
                ws->heapd[c] = ws->heapd[up];
                ws->heap[c] = ws->heap[up];
                c = up;
            }
            ws->heapd[c] = d;
            ws->heap[c] = r;
        } else if (nh > 0 && farther(ws->heapd[0], ws->heap[0], d, r)) {
            ws->heapd[0] = d;
            ws->heap[0] = r;
            heap_down(ws->heapd, ws->heap, nh, 0);
        }
    }
    /* blend: alpha * own + (1 - alpha) * mean of the neighbours */
    for (int i = 0; i < nq; i++) {
        int32_t j = ws->qi[i];
        ws->touched[ws->n_touched++] = j;
        ws->cnt[j] = 1;
        ws->acc[j] = p->alpha * ws->qv[i];
    }
    if (nh > 0) {
        double wgt = (1.0 - p->alpha) / nh;
        for (int q = 0; q < nh; q++) {
            int r = ws->heap[q];
            for (int64_t e = t->off[r]; e < t->off[r + 1]; e++) {
                int32_t j = t->idx[e];
                if (ws->cnt[j] == 0) {
                    ws->touched[ws->n_touched++] = j;
                    ws->cnt[j] = 1;
                }
                ws->acc[j] += wgt * t->val[e];
            }
        }
    }
    int ni = 0;
    for (int i = 0; i < ws->n_touched; i++) {
        int32_t j = ws->touched[i];
        if (ws->acc[j] > 0)
            ws->items[ni++] = (bl_item){ws->acc[j], 0, j};
        else
            ws->cnt[j] = 0; /* not ranked, so the popularity fill may use it */
    }
    int nsel = select_top(ws->items, ni, n);
    *n_out = emit_with_fill(ws, pop, nsel, n, out, score);
    ws_clear(ws);
    return NB_OK;
}
