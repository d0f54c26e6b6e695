/* userrank.h -- the user_rankings rows (schema.sql): each user's ranking precomputed by
 * nb-train (the blob's format: infer/prerank.h; here it is opaque bytes). Every SQL
 * statement on the table is here, but the delete of POST /orders (storage/orders.c), which
 * belongs to the order's own transaction.
 *
 * A row must never outlive the history it was computed from. Two writers meet here:
 * nb-train, which ranked a user from the orders it loaded at its start, and POST /orders,
 * which adds an order and deletes the user's rows in one transaction. So nb-train writes
 * a row only if the user still has the number of orders it ranked from: whichever
 * transaction comes second sees the other's effect.
 */
#ifndef ST_USERRANK_H
#define ST_USERRANK_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* One row for st_prerank_put_batch: user_id's ranking blob[len] (borrowed), ranked from a
 * history of n_orders orders. */
typedef struct {
    int32_t user_id;
    int64_t n_orders;
    const uint8_t *blob;
    size_t len;
} st_prerank_row;

/* Writes rows[0..n) for model_id in one transaction (BEGIN IMMEDIATE .. COMMIT on db, which
 * must not be inside one), each only if its user has exactly n_orders orders in the store
 * at that moment (else not: an order came in after the history was loaded); written[i]
 * receives 1 or 0. Returns NB_OK, or NB_EDB (message names the user or the step; rolled
 * back, nothing written). */
int st_prerank_put_batch(sqlite3 *db, int64_t model_id, const st_prerank_row *rows, int n,
                         uint8_t *written, char *err, size_t errlen);

/* The read statement for one user's row, prepared on db; *st is NULL (and NB_OK returned)
 * when the store has no user_rankings table (trained before it existed). Returns NB_OK or
 * NB_EDB. */
int st_prerank_get_stmt(sqlite3 *db, sqlite3_stmt **st, char *err, size_t errlen);

/* Copies model_id's row of user_id into *buf (grown as needed: *cap bytes, owned by the
 * caller, free() it), *len bytes. Returns NB_OK, NB_ENOTFOUND (no row, or st NULL) or
 * NB_EDB. */
int st_prerank_get(sqlite3_stmt *st, int64_t model_id, int32_t user_id, uint8_t **buf,
                   size_t *cap, size_t *len, char *err, size_t errlen);

#endif
