/* candidates.h -- the per-user candidate table: encoding and lookup.
 *
 * A candidate set is a set of product indices stored as one BLOB per user in the
 * `candidates` table (schema.sql). Encoding (<= 2 bytes per candidate on average): the
 * indices sorted ascending, delta-coded (first value, then gaps - 1) as LEB128 varints
 * (7 bits a byte, high bit = more). With 3,000 of ~50,000 products the mean gap is ~16, so
 * almost every candidate takes one byte. The count is stored beside the blob.
 */
#ifndef ST_CANDIDATES_H
#define ST_CANDIDATES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Encodes idx[n], which the caller guarantees strictly ascending and non-negative, in the
 * format above into buf (at least 5 * n bytes). Returns the length. */
size_t st_cand_encode_buf(const int32_t *idx, int n, uint8_t *buf);
/* Decodes blob[len] into out[max]; *n receives the count. Returns NB_OK or NB_EFORMAT
 * (truncated varint, more than max values, an index >= n_products). */
int st_cand_decode(const uint8_t *blob, size_t len, int n_products, int32_t *out, int max, int *n,
                   char *err, size_t errlen);

/* Reads user_id's candidate set of the given model (models.id) with a prepared statement
 * held by the caller (st_cand_stmt). Returns NB_OK, NB_ENOTFOUND or NB_EDB/NB_EFORMAT. */
int st_cand_stmt(sqlite3 *db, sqlite3_stmt **stmt, char *err, size_t errlen);
int st_cand_load(sqlite3_stmt *stmt, int64_t model_id, int32_t user_id, int n_products,
                 int32_t *out, int max, int *n, char *err, size_t errlen);

/* Writes every user's set into the `candidates` table for model_id, replacing any rows of
 * that model: user u (id user_ids[u]) has count[u] candidates, encoded as above (by
 * st_cand_encode_buf) in enc[off[u] .. off[u+1]); the bytes are stored as they are. MUST run
 * inside a transaction the caller opened (the one in which it writes the `models` row, so
 * that a model and its candidates appear or disappear together): returns NB_EINVAL in
 * autocommit mode. Returns NB_OK, NB_EINVAL or NB_EDB (message names the user); on error the
 * caller should ROLLBACK. The arrays stay the caller's. */
int st_cands_write(sqlite3 *db, int64_t model_id, int n_users, const int32_t *user_ids,
                   const int32_t *count, const int64_t *off, const uint8_t *enc, char *err,
                   size_t errlen);

#endif
