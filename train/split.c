/* split.c -- deterministic user split by hash. */
#include "split.h"
#include "rng.h"

#include <assert.h>

int tr_split_of(int32_t user_id, const int pct[3]) {
    assert(pct[0] + pct[1] + pct[2] == 100);
    /* The constant keeps this hash unrelated to any other use of nb_hash64(user_id). */
    uint64_t b = nb_hash64((uint64_t)(uint32_t)user_id ^ 0x5eed5b117ull) % 10000;
    if (b < (uint64_t)pct[0] * 100) return TR_SPLIT_TRAIN;
    if (b < (uint64_t)(pct[0] + pct[1]) * 100) return TR_SPLIT_VAL;
    return TR_SPLIT_TEST;
}
