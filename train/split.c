/* split.c -- deterministic user split by hash, and the samples of each part. */
#include "split.h"
#include "nb_err.h"
#include "rng.h"
#include "store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int tr_split_of(int32_t user_id, const int pct[3]) {
    assert(pct[0] + pct[1] + pct[2] == 100);
    /* The constant keeps this hash unrelated to any other use of nb_hash64(user_id). */
    uint64_t b = nb_hash64((uint64_t)(uint32_t)user_id ^ 0x5eed5b117ull) % 10000;
    if (b < (uint64_t)pct[0] * 100) return TR_SPLIT_TRAIN;
    if (b < (uint64_t)(pct[0] + pct[1]) * 100) return TR_SPLIT_VAL;
    return TR_SPLIT_TEST;
}

/* Whether order o has items. */
static int has_items(const st_history *h, int64_t o) {
    return h->order_item_off[o + 1] > h->order_item_off[o];
}

int64_t tr_train_order(const st_history *h, int u) {
    for (int64_t o = h->user_order_off[u + 1] - 1; o >= h->user_order_off[u]; o--)
        if (h->eval_set[o] == ST_TRAIN) return o;
    return -1;
}

/* Whether u has an order with items strictly before order t. */
static int has_history(const st_history *h, int u, int64_t t) {
    for (int64_t o = h->user_order_off[u]; o < t; o++)
        if (has_items(h, o)) return 1;
    return 0;
}

int64_t tr_earlier_order(const st_history *h, int u, int64_t t) {
    int64_t o = t - 1;
    while (o >= h->user_order_off[u] && !has_items(h, o)) o--;
    return o >= h->user_order_off[u] && has_history(h, u, o) ? o : -1;
}

static void push(tr_sample **a, int *n, int *cap, int u, int64_t t) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *a = nb_xrealloc(*a, (size_t)*cap * sizeof **a);
    }
    (*a)[(*n)++] = (tr_sample){u, t};
}

int tr_samples_build(tr_samples *s, const st_history *h, const int pct[3], int targets_all,
                     int limit_users, int max_orders, char *err, size_t errlen) {
    (void)err, (void)errlen, (void)max_orders;
    memset(s, 0, sizeof *s);
    int cap[3] = {0, 0, 0};
    int nu = h->n_users;
    if (limit_users > 0 && limit_users < nu) nu = limit_users;
    s->n_users = nu;
    for (int u = 0; u < nu; u++) {
        int64_t t = tr_train_order(h, u);
        if (t < 0 || !has_items(h, t)) {
            s->n_no_target++;
            continue;
        }
        if (!has_history(h, u, t)) {
            s->n_cold++;
            continue;
        }
        int sp = tr_split_of(h->user_ids[u], pct);
        if (sp == TR_SPLIT_TRAIN) {
            s->n_train_users++;
            if (targets_all) {
                /* every earlier order with items that has an order with items before it */
                int seen = 0;
                for (int64_t o = h->user_order_off[u]; o < t; o++) {
                    if (!has_items(h, o)) continue;
                    if (seen) push(&s->train, &s->n_train, &cap[0], u, o);
                    seen = 1;
                }
            }
            push(&s->train, &s->n_train, &cap[0], u, t);
        } else if (sp == TR_SPLIT_VAL) {
            s->n_val_users++;
            push(&s->val, &s->n_val, &cap[1], u, t);
        } else {
            s->n_test_users++;
            push(&s->test, &s->n_test, &cap[2], u, t);
        }
    }
    return NB_OK;
}

void tr_samples_free(tr_samples *s) {
    free(s->train);
    free(s->val);
    free(s->test);
    memset(s, 0, sizeof *s);
}
