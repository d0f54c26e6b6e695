/* samples.c -- samples per user and the batches fed to the network. */
#include "samples.h"
#include "nb_err.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static int has_items(const st_history *h, int64_t o) {
    return h->order_item_off[o + 1] > h->order_item_off[o];
}

int tr_input_orders(const st_history *h, int u, int64_t hist_end, int max_orders, int64_t *idx) {
    int64_t start = h->user_order_off[u];
    assert(hist_end >= start && hist_end <= h->user_order_off[u + 1]);
    int n = 0;
    for (int64_t o = hist_end - 1; o >= start && n < max_orders; o--)
        if (has_items(h, o)) idx[n++] = o;
    for (int i = 0; i < n / 2; i++) { /* newest-first -> oldest-first */
        int64_t t = idx[i];
        idx[i] = idx[n - 1 - i];
        idx[n - 1 - i] = t;
    }
    return n;
}

void tr_batch_free(tr_batch *tb) {
    free(tb->n_ord);
    free(tb->ord_off);
    free(tb->items);
    free(tb->ord_info);
    free(tb->targets);
    free(tb->rep_b);
    free(tb->rep_col);
    free(tb->rep_feat);
    free(tb->scratch_ord);
    free(tb->col_of);
    memset(tb, 0, sizeof *tb);
}

/* Grows *p to hold n elements of size sz if *cap is smaller. */
static void grow(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < n) c *= 2;
    *p = nb_xrealloc(*p, c * sz);
    *cap = c;
}

void tr_batch_add_rep(tr_batch *tb, int b, int32_t p, const float *feat, int n_feat) {
    int col = p;
    if (tb->nb.S > 0) {
        col = tb->col_of[p];
        if (col < 0) return;
    }
    assert(tb->n_rep == 0 || tb->n_feat == n_feat);
    tb->n_feat = n_feat;
    size_t n = (size_t)tb->n_rep + 1, cap = tb->cap_rep;
    grow((void **)&tb->rep_b, &cap, n, sizeof(int32_t));
    cap = tb->cap_rep;
    grow((void **)&tb->rep_col, &cap, n, sizeof(int32_t));
    tb->cap_rep = cap;
    grow((void **)&tb->rep_feat, &tb->cap_rep_feat, n * (size_t)n_feat, sizeof(nn_real));
    tb->rep_b[tb->n_rep] = b;
    tb->rep_col[tb->n_rep] = col;
    for (int j = 0; j < n_feat; j++) tb->rep_feat[(size_t)tb->n_rep * n_feat + j] = feat[j];
    tb->n_rep++;
}

int tr_batch_fill(tr_batch *tb, const st_history *h, const tr_sample *smp, int B,
                  const nn_config *c, const int32_t *rows, int S, int with_targets, tr_rep_fn rep,
                  void *ctx, char *err, size_t errlen) {
    assert(!with_targets || S == 0);
    int P = c->n_products, N = c->max_orders;
    if (!tb->scratch_ord || tb->cap_ord < N) {
        free(tb->scratch_ord);
        tb->scratch_ord = nb_xmalloc((size_t)N * sizeof(int64_t));
        tb->cap_ord = N;
    }
    if (B > tb->cap_B) {
        tb->n_ord = nb_xrealloc(tb->n_ord, (size_t)B * sizeof(int));
        tb->ord_off = nb_xrealloc(tb->ord_off, ((size_t)B * N + 1) * sizeof(int));
        tb->cap_B = B;
    }
    /* previous rows' column map is reset lazily: clear only what was set */
    if (S > 0) {
        if (tb->col_P != P) {
            free(tb->col_of);
            tb->col_of = nb_xmalloc((size_t)P * sizeof(int32_t));
            for (int p = 0; p < P; p++) tb->col_of[p] = -1;
            tb->col_P = P;
        }
        for (int i = 0; i < S; i++) tb->col_of[rows[i]] = i;
    }
    size_t n_items = 0;
    int n_o = 0;
    tb->ord_off[0] = 0;
    for (int b = 0; b < B; b++) {
        int n = tr_input_orders(h, smp[b].user, smp[b].target, N, tb->scratch_ord);
        assert(n > 0);
        tb->n_ord[b] = n;
        for (int i = 0; i < n; i++) {
            int64_t o = tb->scratch_ord[i];
            int64_t a = h->order_item_off[o], e = h->order_item_off[o + 1];
            if (e - a > c->max_products) e = a + c->max_products;
            grow((void **)&tb->items, &tb->cap_items, n_items + (size_t)(e - a), sizeof(int32_t));
            for (int64_t j = a; j < e; j++) tb->items[n_items++] = h->items[j];
            if (c->order_info) {
                grow((void **)&tb->ord_info, &tb->cap_info, (size_t)(n_o + 1) * NN_ORDER_INFO,
                     sizeof(nn_real));
                nn_order_info(tb->ord_info + (size_t)n_o * NN_ORDER_INFO, h->dow[o], h->hour[o],
                              h->days_since[o]);
            }
            tb->ord_off[++n_o] = (int)n_items;
        }
    }
    if (with_targets) {
        size_t need = (size_t)B * P;
        grow((void **)&tb->targets, &tb->cap_targets, need, sizeof(nn_real));
        memset(tb->targets, 0, need * sizeof(nn_real));
        for (int b = 0; b < B; b++) {
            int64_t t = smp[b].target;
            for (int64_t j = h->order_item_off[t]; j < h->order_item_off[t + 1]; j++)
                tb->targets[(size_t)b * P + h->items[j]] = 1;
        }
    }
    tb->nb = (nn_batch){.B = B,
                        .n_ord = tb->n_ord,
                        .ord_off = tb->ord_off,
                        .items = tb->items,
                        .S = S,
                        .rows = S > 0 ? rows : NULL,
                        .targets = with_targets ? tb->targets : NULL,
                        .ord_info = c->order_info ? tb->ord_info : NULL};
    tb->n_rep = 0;
    int rc = NB_OK;
    if (rep)
        for (int b = 0; b < B && rc == NB_OK; b++)
            rc = rep(ctx, tb, b, h, smp[b].user, smp[b].target, err, errlen);
    if (S > 0)
        for (int i = 0; i < S; i++) tb->col_of[rows[i]] = -1;
    if (rc) return rc;
    tb->nb.n_rep = tb->n_rep;
    tb->nb.rep_b = tb->rep_b;
    tb->nb.rep_col = tb->rep_col;
    tb->nb.rep_feat = tb->rep_feat;
    return NB_OK;
}
