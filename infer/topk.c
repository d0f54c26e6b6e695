/* topk.c -- partial selection of the best scores (no full sort); see topk.h. */
#include "topk.h"

#include <stdlib.h>

/* Whether score a at index ia ranks before b at ib (higher first, then lower index). */
static int better(float a, int32_t ia, float b, int32_t ib) { return a > b || (a == b && ia < ib); }

/* See topk.h: insertion into the sorted prefix out[0..m). */
int tr_topk(const float *score, const int32_t *idx, int n, int k, int32_t *out) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int32_t p = idx ? idx[i] : i;
        float v = score[p];
        if (m == k && !better(v, p, score[out[m - 1]], out[m - 1])) continue;
        int j = m < k ? m++ : m - 1; /* insertion into the sorted prefix */
        while (j > 0 && better(v, p, score[out[j - 1]], out[j - 1])) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = p;
    }
    return m;
}


/* better() on pairs. */
static inline int before(const tr_ranked *x, const tr_ranked *y) {
    return better(x->p, x->idx, y->p, y->idx);
}

/* qsort order of the pairs: before() first. */
static int ranked_cmp(const void *a, const void *b) {
    const tr_ranked *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

/* See topk.h. */
int tr_rank_prefix(tr_ranked *rk, int n, int m) {
    if (m > n) m = n;
    if (m <= 0) return 0;
    int lo = 0, hi = n; /* the boundary m lies in [lo, hi) */
    while (hi - lo > 16 && m > lo && m < hi) {
        int mid = lo + (hi - lo) / 2;
        tr_ranked a = rk[lo], b = rk[mid], c = rk[hi - 1], piv;
        if (before(&a, &b))
            piv = before(&b, &c) ? b : (before(&a, &c) ? c : a);
        else
            piv = before(&a, &c) ? a : (before(&b, &c) ? c : b);
        /* Hoare partition; the entries are distinct and piv is the median of three, so
         * both sides are non-empty and the range shrinks */
        int i = lo, j = hi - 1;
        for (;;) {
            while (before(&rk[i], &piv)) i++;
            while (before(&piv, &rk[j])) j--;
            if (i >= j) break;
            tr_ranked t = rk[i];
            rk[i] = rk[j];
            rk[j] = t;
            i++;
            j--;
        }
        /* rk[lo..j] rank no later than piv, rk[j+1..hi) no earlier */
        if (m <= j + 1)
            hi = j + 1;
        else
            lo = j + 1;
    }
    /* everything in [0, lo) ranks before [lo, hi), which ranks before [hi, n), and
     * lo <= m <= hi: sorting [0, hi) (or [0, m) when m == lo) orders the prefix */
    qsort(rk, (size_t)(m == lo ? m : hi), sizeof *rk, ranked_cmp);
    return m;
}
