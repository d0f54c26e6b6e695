/* split.h -- which users train, validate and test.
 *
 * A user's split depends only on nb_hash64(user_id) and the percentages, never on the seed,
 * the order of users in the store or --limit-users: the same user is always in the same
 * split, so a test user is never trained on by any run with the same --split.
 */
#ifndef TR_SPLIT_H
#define TR_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "samples.h"

enum { TR_SPLIT_TRAIN = 0, TR_SPLIT_VAL = 1, TR_SPLIT_TEST = 2 };

/* Returns TR_SPLIT_TRAIN, _VAL or _TEST for user_id; pct[3] sums to 100. The hash is taken
 * modulo 10,000 so that the shares match the percentages to 0.01%. */
int tr_split_of(int32_t user_id, const int pct[3]);

/* ---- the samples of each part (a sample: infer/samples.h) ---------------------------- */

typedef struct {
    tr_sample *train, *val, *test; /* owned */
    int n_train, n_val, n_test;
    int n_users; /* users considered (after --limit-users) */
    int n_train_users, n_val_users, n_test_users;
    int n_no_target; /* users whose next order is eval_set=test (or none) */
    int n_cold;      /* users with a train order but no history before it */
} tr_samples;

/* The order index of u's eval_set=train order, or -1. */
int64_t tr_train_order(const st_history *h, int u);

/* The earlier time point before order t of user u: the last order with items before t,
 * when an order with items comes before it, else -1. The ranking stage's earlier-order rows
 * (rktrain.h TR_RK_ROWS_PREV) and TIFU-KNN's tuning targets (tifu_tune.h) both step back
 * with it, so that "the order before" means the same order in both. */
int64_t tr_earlier_order(const st_history *h, int u, int64_t t);

/* Builds the samples of the first limit_users users (0 = all), split by tr_split_of with
 * pct[3]. Every user with a train order and some history gives one sample targeting it;
 * with targets_all, training users also give one sample per earlier order with items that
 * has an order with items before it. Returns NB_OK (s owns its arrays; free with
 * tr_samples_free). */
int tr_samples_build(tr_samples *s, const st_history *h, const int pct[3], int targets_all,
                     int limit_users, int max_orders, char *err, size_t errlen);
void tr_samples_free(tr_samples *s);

#endif
