/* ownprod.c -- the stored candidate set plus the user's own products (see ownprod.h). */
#include "ownprod.h"

/* See ownprod.h. Marks the set, appends the unmarked history products (marking them), then
 * clears every mark it made: O(n_cand + items), no sorting. */
int tr_cands_add_own(const st_history *h, int u, int64_t hist_end, int32_t *cand, int n_cand,
                     int cap, uint8_t *mark) {
    int n = n_cand;
    for (int i = 0; i < n_cand; i++) mark[cand[i]] = 1;
    int64_t o0 = h->user_order_off[u];
    for (int64_t e = h->order_item_off[o0]; e < h->order_item_off[hist_end] && n < cap; e++) {
        int32_t p = h->items[e];
        if (!mark[p]) mark[p] = 1, cand[n++] = p;
    }
    for (int i = 0; i < n; i++) mark[cand[i]] = 0;
    return n;
}
