/* expected_f1.c -- see expected_f1.h. */
#include "expected_f1.h"

#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* E[F1] of every prefix; see the header for the recursions. Returns NB_OK or NB_EINVAL. */
int tr_ef1_expectations(const double *p, int n, double *ws, double *ef1, char *err, size_t errlen) {
    if (n < 0) return nb_err(err, errlen, NB_EINVAL, "expected F1: n = %d < 0", n);
    for (int i = 0; i < n; i++) {
        if (!(p[i] >= 0.0 && p[i] <= 1.0))
            return nb_err(err, errlen, NB_EINVAL, "expected F1: p[%d] = %g is not in [0, 1]", i,
                          p[i]);
        if (i > 0 && p[i] > p[i - 1])
            return nb_err(err, errlen, NB_EINVAL,
                          "expected F1: p[%d] = %g > p[%d] = %g (must be sorted descending)", i,
                          p[i], i - 1, p[i - 1]);
    }
    const size_t w = (size_t)n + 1;
    double *C = ws;         /* C[k*w + a] = P(a of the first k are true), a <= k */
    double *g = ws + w * w; /* g[s] = E[1 / (s + B_k)], s = 1..2k */
    C[0] = 1.0;
    for (int k = 1; k <= n; k++) {
        const double *prev = C + (size_t)(k - 1) * w;
        double *cur = C + (size_t)k * w;
        cur[0] = prev[0] * (1.0 - p[k - 1]);
        for (int a = 1; a < k; a++) cur[a] = prev[a] * (1.0 - p[k - 1]) + prev[a - 1] * p[k - 1];
        cur[k] = prev[k - 1] * p[k - 1];
    }
    for (int s = 1; s <= 2 * n; s++) g[s] = 1.0 / s;
    for (int k = n; k >= 1; k--) {
        const double *ck = C + (size_t)k * w;
        double e = 0;
        for (int a = 1; a <= k; a++) e += ck[a] * 2.0 * a * g[k + a];
        ef1[k] = e;
        /* g_{k-1}: item k moves from the predicted prefix to the rest */
        for (int s = 1; s <= 2 * (k - 1); s++) g[s] = (1.0 - p[k - 1]) * g[s] + p[k - 1] * g[s + 1];
    }
    ef1[0] = C[(size_t)n * w]; /* nothing true: F1(empty, empty) = 1 */
    return NB_OK;
}

struct tr_ef1 {
    int m;
    float *hp;   /* [m] heap of the best probabilities seen, worst at the root */
    int32_t *hi; /* [m] their products */
    double *p;   /* [m] sorted probabilities */
    double *ef1; /* [m + 1] */
    double *ws;  /* (m+1)^2 + 2m + 2 */
};

/* Returns NB_OK and *e (caller frees with tr_ef1_free) or NB_EINVAL (m out of range). */
int tr_ef1_new(tr_ef1 **e, int m, char *err, size_t errlen) {
    *e = NULL;
    if (m < 1 || m > 46000) /* (m+1)^2 doubles must stay a sane allocation */
        return nb_err(err, errlen, NB_EINVAL, "expected F1: m = %d must be in 1..46000", m);
    tr_ef1 *x = nb_xcalloc(1, sizeof *x);
    x->m = m;
    x->hp = nb_xmalloc((size_t)m * sizeof *x->hp);
    x->hi = nb_xmalloc((size_t)m * sizeof *x->hi);
    x->p = nb_xmalloc((size_t)m * sizeof *x->p);
    x->ef1 = nb_xmalloc(((size_t)m + 1) * sizeof *x->ef1);
    x->ws = nb_xmalloc((((size_t)m + 1) * ((size_t)m + 1) + 2 * (size_t)m + 2) * sizeof *x->ws);
    *e = x;
    return NB_OK;
}

/* Frees the chooser; NULL is a no-op. */
void tr_ef1_free(tr_ef1 *e) {
    if (!e) return;
    free(e->hp);
    free(e->hi);
    free(e->p);
    free(e->ef1);
    free(e->ws);
    free(e);
}

/* 1 if (pa, ia) ranks below (pb, ib): lower probability, or equal and larger index. */
static int worse(float pa, int32_t ia, float pb, int32_t ib) {
    return pa < pb || (pa == pb && ia > ib);
}

/* Restores the heap property (worst at the root) below position i of a heap of n. */
static void sift_down(float *hp, int32_t *hi, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(hp[l], hi[l], hp[w], hi[w])) w = l;
        if (r < n && worse(hp[r], hi[r], hp[w], hi[w])) w = r;
        if (w == i) return;
        float tp = hp[i];
        int32_t ti = hi[i];
        hp[i] = hp[w];
        hi[i] = hi[w];
        hp[w] = tp;
        hi[w] = ti;
        i = w;
    }
}

/* Chooses the expected-F1-optimal prefix of the top min(n, m); see the header. */
int tr_ef1_choose(tr_ef1 *e, const float *prob, const int32_t *items, int n, int allow_empty,
                  int32_t *out, int *k, double *ef1, char *err, size_t errlen) {
    *k = 0;
    if (ef1) *ef1 = 0;
    if (n < 0) return nb_err(err, errlen, NB_EINVAL, "expected F1: n = %d < 0", n);
    /* top m by probability: a bounded heap, O(n log m) */
    int h = 0;
    for (int i = 0; i < n; i++) {
        float pi = prob[i];
        int32_t id = items ? items[i] : i;
        if (!(pi >= 0.0f && pi <= 1.0f))
            return nb_err(err, errlen, NB_EINVAL,
                          "expected F1: probability %g of product %d (entry %d) not in [0, 1]",
                          (double)pi, (int)id, i);
        if (h < e->m) {
            /* sift up */
            int j = h++;
            while (j > 0) {
                int up = (j - 1) / 2;
                if (!worse(pi, id, e->hp[up], e->hi[up])) break;
                e->hp[j] = e->hp[up];
                e->hi[j] = e->hi[up];
                j = up;
            }
            e->hp[j] = pi;
            e->hi[j] = id;
        } else if (worse(e->hp[0], e->hi[0], pi, id)) {
            e->hp[0] = pi;
            e->hi[0] = id;
            sift_down(e->hp, e->hi, h, 0);
        }
    }
    /* heap sort in place: popping the worst to the end leaves best-first order */
    for (int end = h - 1; end > 0; end--) {
        float tp = e->hp[0];
        int32_t ti = e->hi[0];
        e->hp[0] = e->hp[end];
        e->hi[0] = e->hi[end];
        e->hp[end] = tp;
        e->hi[end] = ti;
        sift_down(e->hp, e->hi, end, 0);
    }
    for (int i = 0; i < h; i++) e->p[i] = e->hp[i];
    int rc = tr_ef1_expectations(e->p, h, e->ws, e->ef1, err, errlen);
    assert(rc == NB_OK); /* sorted and in range by construction */
    (void)rc;
    int best = (allow_empty || h == 0) ? 0 : 1;
    for (int j = best + 1; j <= h; j++)
        if (e->ef1[j] > e->ef1[best]) best = j; /* ties keep the smaller basket */
    memcpy(out, e->hi, (size_t)best * sizeof *out);
    *k = best;
    if (ef1) *ef1 = e->ef1[best];
    return NB_OK;
}
