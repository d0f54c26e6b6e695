/* hist_fixture.h -- builds small st_history values by hand for the C tests, one user, order
 * and item at a time; each test keeps its own way of describing the history (a spec string,
 * a script, an RNG) and calls these to lay out the arrays.
 *
 *   hf_build b;
 *   hf_begin(&b, &h, P, 1, 1);            product_ids 1, 2, ..., P
 *   hf_user(&b, 7);                       user_id 7
 *   hf_order(&b, 1001, ST_PRIOR, -1);     order_id 1001, days_since NULL
 *   hf_item(&b, 3);                       product index 3
 *   hf_end(&b);                           ... free h with st_history_free
 *
 * Header-only (static inline): tests/harness.o is also linked into the NN_DOUBLE tests,
 * which do not link storage. */
#ifndef NB_HIST_FIXTURE_H
#define NB_HIST_FIXTURE_H

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "nb_err.h"

typedef struct {
    st_history *h;
    size_t cap_u, cap_o, cap_i; /* allocated users / orders / items (offsets: one more) */
} hf_build;

/* Zeroes h and starts a history of P products whose product_ids are id0, id0 + step, ...
 * (aisles and departments 0), no users yet. h owns every array (all of them allocated, so
 * code that reads dow/hour/days_since/reordered finds them); free with st_history_free. */
static inline void hf_begin(hf_build *b, st_history *h, int P, int32_t id0, int32_t step) {
    memset(h, 0, sizeof *h);
    b->h = h;
    h->n_products = P;
    h->product_ids = nb_xmalloc((size_t)(P > 0 ? P : 1) * sizeof(int32_t));
    h->product_aisle = nb_xcalloc((size_t)(P > 0 ? P : 1), sizeof(int32_t));
    h->product_dept = nb_xcalloc((size_t)(P > 0 ? P : 1), sizeof(int32_t));
    for (int p = 0; p < P; p++) h->product_ids[p] = id0 + step * p;
    b->cap_u = 16, b->cap_o = 64, b->cap_i = 256;
    h->user_ids = nb_xmalloc(b->cap_u * sizeof(int32_t));
    h->user_order_off = nb_xmalloc((b->cap_u + 1) * sizeof(int64_t));
    h->order_ids = nb_xmalloc(b->cap_o * sizeof(int32_t));
    h->eval_set = nb_xmalloc(b->cap_o);
    h->dow = nb_xcalloc(b->cap_o, 1);
    h->hour = nb_xcalloc(b->cap_o, 1);
    h->days_since = nb_xmalloc(b->cap_o * sizeof(int16_t));
    h->order_item_off = nb_xmalloc((b->cap_o + 1) * sizeof(int64_t));
    h->items = nb_xmalloc(b->cap_i * sizeof(int32_t));
    h->reordered = nb_xcalloc(b->cap_i, 1);
    h->user_order_off[0] = 0;
    h->order_item_off[0] = 0;
}

/* Resizes the order arrays to hold cap orders (the new dow/hour bytes are zero). */
static inline void hf__orders_to(hf_build *b, size_t cap) {
    st_history *h = b->h;
    h->order_ids = nb_xrealloc(h->order_ids, cap * sizeof(int32_t));
    h->eval_set = nb_xrealloc(h->eval_set, cap);
    h->dow = nb_xrealloc(h->dow, cap);
    h->hour = nb_xrealloc(h->hour, cap);
    if (cap > b->cap_o) {
        memset(h->dow + b->cap_o, 0, cap - b->cap_o);
        memset(h->hour + b->cap_o, 0, cap - b->cap_o);
    }
    h->days_since = nb_xrealloc(h->days_since, cap * sizeof(int16_t));
    h->order_item_off = nb_xrealloc(h->order_item_off, (cap + 1) * sizeof(int64_t));
    b->cap_o = cap;
}

/* Resizes the item arrays to hold cap items (the new reordered flags are zero). */
static inline void hf__items_to(hf_build *b, size_t cap) {
    st_history *h = b->h;
    h->items = nb_xrealloc(h->items, cap * sizeof(int32_t));
    h->reordered = nb_xrealloc(h->reordered, cap);
    if (cap > b->cap_i) memset(h->reordered + b->cap_i, 0, cap - b->cap_i);
    b->cap_i = cap;
}

/* Starts the next user (user_ids must ascend); its orders follow with hf_order. */
static inline void hf_user(hf_build *b, int32_t user_id) {
    st_history *h = b->h;
    if ((size_t)h->n_users == b->cap_u) {
        b->cap_u *= 2;
        h->user_ids = nb_xrealloc(h->user_ids, b->cap_u * sizeof(int32_t));
        h->user_order_off = nb_xrealloc(h->user_order_off, (b->cap_u + 1) * sizeof(int64_t));
    }
    h->user_ids[h->n_users++] = user_id;
    h->user_order_off[h->n_users] = h->n_orders;
}

/* Starts the next order of the current user: eval_set ST_PRIOR/ST_TRAIN/ST_TEST, days_since
 * -1 for NULL; dow and hour 0. Its items follow with hf_item. */
static inline void hf_order(hf_build *b, int32_t order_id, int eval_set, int days_since) {
    st_history *h = b->h;
    assert(h->n_users > 0);
    if ((size_t)h->n_orders == b->cap_o) hf__orders_to(b, 2 * b->cap_o);
    h->order_ids[h->n_orders] = order_id;
    h->eval_set[h->n_orders] = (uint8_t)eval_set;
    h->days_since[h->n_orders] = (int16_t)days_since;
    h->n_orders++;
    h->order_item_off[h->n_orders] = h->n_items;
    h->user_order_off[h->n_users] = h->n_orders;
}

/* Appends product index p to the current order (reordered 0; see hf_mark_reordered). */
static inline void hf_item(hf_build *b, int32_t p) {
    st_history *h = b->h;
    assert(h->n_orders > 0);
    if ((size_t)h->n_items == b->cap_i) hf__items_to(b, 2 * b->cap_i);
    h->items[h->n_items++] = p;
    h->order_item_off[h->n_orders] = h->n_items;
}

/* Finishes h: trims every array to its size plus one, so that AddressSanitizer sees reads
 * past the end. */
static inline void hf_end(hf_build *b) {
    st_history *h = b->h;
    b->cap_u = (size_t)h->n_users + 1;
    h->user_ids = nb_xrealloc(h->user_ids, b->cap_u * sizeof(int32_t));
    h->user_order_off = nb_xrealloc(h->user_order_off, (b->cap_u + 1) * sizeof(int64_t));
    hf__orders_to(b, (size_t)h->n_orders + 1);
    hf__items_to(b, (size_t)h->n_items + 1);
}

/* Sets reordered[i] = 1 for every item its user bought in an earlier order, 0 otherwise
 * (what the importer stores). */
static inline void hf_mark_reordered(st_history *h) {
    uint8_t *seen = nb_xcalloc((size_t)(h->n_products > 0 ? h->n_products : 1), 1);
    for (int u = 0; u < h->n_users; u++) {
        for (int64_t o = h->user_order_off[u]; o < h->user_order_off[u + 1]; o++) {
            int64_t i0 = h->order_item_off[o], i1 = h->order_item_off[o + 1];
            for (int64_t i = i0; i < i1; i++) h->reordered[i] = seen[h->items[i]];
            for (int64_t i = i0; i < i1; i++) seen[h->items[i]] = 1;
        }
        for (int64_t i = h->order_item_off[h->user_order_off[u]];
             i < h->order_item_off[h->user_order_off[u + 1]]; i++)
            seen[h->items[i]] = 0;
    }
    free(seen);
}

#endif
