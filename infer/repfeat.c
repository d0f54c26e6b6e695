/* repfeat.c -- repeat features and global product statistics (see repfeat.h). */
#include "repfeat.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"

const char *const tr_feature_names[TR_N_FEATURES] = {
    "share",       "last5",        "recency",     "in_last",      "days",     "days_known",
    "share_since", "user_reorder", "user_orders", "prod_reorder", "prod_pop",
};

/* ---- one user's features ---------------------------------------------------------------- */

/* Per-product accumulators in discovery order, and per-order suffix sums. Private. */
typedef struct {
    int32_t first, last, n_with, n_last5;
} rf_acc;

typedef struct {
    rf_acc *acc;         /* [cap] */
    int32_t *days_after; /* [ocap] known days_since of the orders after ordinal q */
    uint8_t *unk_after;  /* [ocap] 1 if one of them is unknown */
    int64_t *ord;        /* [ocap] order indices with items */
    int ocap;
} rf_scratch;

void tr_features_free(tr_features *f) {
    if (!f) return;
    rf_scratch *x = f->priv;
    if (x) {
        free(x->acc);
        free(x->days_after);
        free(x->unk_after);
        free(x->ord);
        free(x);
    }
    free(f->prod);
    free(f->feat);
    free(f->raw);
    free(f->slot);
    memset(f, 0, sizeof *f);
}

int tr_features_init(tr_features *f, int n_products, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (n_products < 1)
        return nb_err(err, errlen, NB_EINVAL, "features: n_products %d < 1", n_products);
    f->n_products = n_products;
    f->cap = 256;
    f->prod = nb_xmalloc((size_t)f->cap * sizeof *f->prod);
    f->feat = nb_xmalloc((size_t)f->cap * TR_N_FEATURES * sizeof *f->feat);
    f->raw = nb_xmalloc((size_t)f->cap * sizeof *f->raw);
    f->slot = nb_xmalloc((size_t)n_products * sizeof *f->slot);
    for (int p = 0; p < n_products; p++) f->slot[p] = -1;
    rf_scratch *x = nb_xcalloc(1, sizeof *x);
    x->acc = nb_xmalloc((size_t)f->cap * sizeof *x->acc);
    f->priv = x;
    return NB_OK;
}

static void rf_grow(tr_features *f) {
    rf_scratch *x = f->priv;
    f->cap *= 2;
    f->prod = nb_xrealloc(f->prod, (size_t)f->cap * sizeof *f->prod);
    f->feat = nb_xrealloc(f->feat, (size_t)f->cap * TR_N_FEATURES * sizeof *f->feat);
    f->raw = nb_xrealloc(f->raw, (size_t)f->cap * sizeof *f->raw);
    x->acc = nb_xrealloc(x->acc, (size_t)f->cap * sizeof *x->acc);
}

static int rf_i32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int tr_features_user(tr_features *f, const st_history *h, int u, int64_t hist_end,
                     const tr_product_stats *ps, char *err, size_t errlen) {
    f->n = 0;
    f->n_orders = 0;
    f->n_items = 0;
    if (u < 0 || u >= h->n_users)
        return nb_err(err, errlen, NB_EINVAL, "features: user index %d not in 0..%d", u,
                      h->n_users - 1);
    int64_t o0 = h->user_order_off[u], o1 = h->user_order_off[u + 1];
    if (hist_end < o0 || hist_end > o1)
        return nb_err(err, errlen, NB_EINVAL,
                      "features: hist_end %lld outside user %d's orders [%lld, %lld]",
                      (long long)hist_end, (int)h->user_ids[u], (long long)o0, (long long)o1);
    if (h->n_products != f->n_products || !ps || ps->n_products != f->n_products)
        return nb_err(err, errlen, NB_EINVAL,
                      "features: product counts differ (history %d, features %d, stats %d)",
                      h->n_products, f->n_products, ps ? ps->n_products : -1);
    rf_scratch *x = f->priv;
    /* the orders with items, oldest first */
    int n = 0;
    for (int64_t o = o0; o < hist_end; o++) n += h->order_item_off[o + 1] > h->order_item_off[o];
    if (n > x->ocap) {
        x->ocap = n;
        x->days_after = nb_xrealloc(x->days_after, (size_t)n * sizeof *x->days_after);
        x->unk_after = nb_xrealloc(x->unk_after, (size_t)n);
        x->ord = nb_xrealloc(x->ord, (size_t)n * sizeof *x->ord);
    }
    n = 0;
    for (int64_t o = o0; o < hist_end; o++)
        if (h->order_item_off[o + 1] > h->order_item_off[o]) x->ord[n++] = o;
    f->n_orders = n;
    if (n == 0) return NB_OK;
    /* days from order q to the last order: the days_since of every later order */
    x->days_after[n - 1] = 0;
    x->unk_after[n - 1] = 0;
    for (int q = n - 2; q >= 0; q--) {
        int d = h->days_since[x->ord[q + 1]];
        x->days_after[q] = x->days_after[q + 1] + (d >= 0 ? d : 0);
        x->unk_after[q] = x->unk_after[q + 1] | (d < 0);
    }
    int64_t n_reord = 0;
    int m = 0;
    for (int q = 0; q < n; q++) {
        int64_t o = x->ord[q];
        for (int64_t i = h->order_item_off[o]; i < h->order_item_off[o + 1]; i++) {
            int32_t p = h->items[i];
            f->n_items++;
            n_reord += h->reordered[i] != 0;
            int s = f->slot[p];
            if (s < 0) {
                if (m == f->cap) rf_grow(f);
                s = f->slot[p] = m;
                f->prod[m++] = p;
                x->acc[s] = (rf_acc){q, -1, 0, 0};
            }
            rf_acc *a = &x->acc[s];
            if (a->last == q) continue; /* the same product twice in one order counts once */
            a->last = q;
            a->n_with++;
            a->n_last5 += q >= n - 5;
        }
    }
    f->n = m;
    qsort(f->prod, (size_t)m, sizeof *f->prod, rf_i32_cmp);
    float user_reorder = (float)((double)n_reord / (double)f->n_items);
    double uo = log1p((double)n) / log1p(100.0);
    float user_orders = (float)(uo < 1 ? uo : 1);
    for (int j = 0; j < m; j++) {
        int32_t p = f->prod[j];
        const rf_acc *a = &x->acc[f->slot[p]];
        f->slot[p] = -1;
        tr_rep_raw *r = &f->raw[j];
        r->n_with = a->n_with;
        r->n_last5 = a->n_last5;
        r->since = n - 1 - a->last;
        r->span = n - a->first;
        r->days = x->days_after[a->last];
        r->days_known = !x->unk_after[a->last];
        float *v = f->feat + (size_t)j * TR_N_FEATURES;
        v[TR_F_SHARE] = (float)r->n_with / (float)n;
        v[TR_F_LAST5] = (float)r->n_last5 / 5.0f;
        v[TR_F_RECENCY] = 1.0f / (1.0f + (float)r->since);
        v[TR_F_IN_LAST] = r->since == 0 ? 1.0f : 0.0f;
        v[TR_F_DAYS] = r->days >= 90 ? 1.0f : (float)r->days / 90.0f;
        v[TR_F_DAYS_KNOWN] = (float)r->days_known;
        v[TR_F_SHARE_SINCE] = (float)r->n_with / (float)r->span;
        v[TR_F_USER_REORDER] = user_reorder;
        v[TR_F_USER_ORDERS] = user_orders;
        v[TR_F_PROD_REORDER] = ps->reorder_rate[p];
        v[TR_F_PROD_POP] = ps->log_pop[p];
    }
    return NB_OK;
}

int tr_features_find(const tr_features *f, int32_t p) {
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (f->prod[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n && f->prod[lo] == p ? lo : -1;
}
