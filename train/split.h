/* split.h -- which users train, validate and test.
 *
 * A user's split depends only on nb_hash64(user_id) and the percentages, never on the seed,
 * the order of users in the store or --limit-users: the same user is always in the same
 * split, so a test user is never trained on by any run with the same --split.
 */
#ifndef TR_SPLIT_H
#define TR_SPLIT_H

#include <stdint.h>

enum { TR_SPLIT_TRAIN = 0, TR_SPLIT_VAL = 1, TR_SPLIT_TEST = 2 };

/* Returns TR_SPLIT_TRAIN, _VAL or _TEST for user_id; pct[3] sums to 100. The hash is taken
 * modulo 10,000 so that the shares match the percentages to 0.01%. */
int tr_split_of(int32_t user_id, const int pct[3]);

#endif
