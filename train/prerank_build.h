/* prerank_build.h -- nb-train ranks every user with history ahead of time, for nb-serve
 * (infer/prerank.h explains why and what is kept).
 *
 * It runs after the model's registration has committed, on the rows nb-serve reads: the
 * weight file as saved, its stored product statistics, ranking stage, candidate sets and
 * neighbour pairs, through the functions nb-serve calls (tr_rk_serving_rank, tr_rk_why).
 * So a stored ranking is by construction the one nb-serve would compute live for the same
 * history; tests/prerank.sh compares the two responses for every user.
 *
 * Users are ranked by `threads` workers (each its own read connection, scorer and copy
 * of the trees; user u goes to worker u mod threads, so the result does not depend on
 * timing) in chunks; each chunk is written in one transaction, every row under the
 * condition of storage/userrank.h (the user's order count is still the one ranked from).
 * A model without a registered ranking stage gets no rows: its live path is the cheap one.
 */
#ifndef TR_PRERANK_BUILD_H
#define TR_PRERANK_BUILD_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

typedef struct {
    int64_t ranked;  /* users ranked (history with items and a stored candidate set) */
    int64_t written; /* rows written */
    int64_t stale;   /* ranked but not written: an order came in after h was loaded */
    int64_t bytes;   /* total size of the rows written */
    double seconds;
} tr_prerank_stats;

/* Ranks the users of h (the history nb-train loaded) for model_id, registered and
 * committed in the store at db_path with weight file model_path, and writes the rows
 * through db (a read-write connection to the same store, not inside a transaction).
 * threshold is the model's basket threshold. Returns NB_OK and *st, NB_EINTR (a signal:
 * what was written stays, and is correct), or an error (model file, store).
 */
int tr_prerank_build(sqlite3 *db, const char *db_path, const char *model_path, int64_t model_id,
                     const st_history *h, double threshold, int threads, tr_prerank_stats *st,
                     char *err, size_t errlen);

#endif
