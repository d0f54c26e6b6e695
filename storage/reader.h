/* reader.h -- one thread's read-only view of the store for serving: its own connection,
 * prepared statements for one user's history, candidate set and existence, and a read
 * transaction (one snapshot) around each request, so that a user's history and candidate
 * set come from the same state of the store.
 */
#ifndef ST_READER_H
#define ST_READER_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

typedef struct st_reader st_reader;

/* Opens path read-only and prepares the statements. Returns NB_OK and *r (free with
 * st_reader_free), or an error from st_open / NB_EDB; on error *r is NULL. */
int st_reader_open(st_reader **r, const char *path, char *err, size_t errlen);
/* Finalizes the statements, closes the connection and frees the buffers of the histories
 * filled by st_reader_user (safe on NULL). */
void st_reader_free(st_reader *r);

/* Begin / end the read transaction. Return NB_OK or NB_EDB ("BEGIN: ..." / "COMMIT: ..."). */
int st_reader_begin(st_reader *r, char *err, size_t errlen);
int st_reader_commit(st_reader *r, char *err, size_t errlen);

/* st_userq_load on the reader's statements: user_id's history into out (buffers reused and
 * owned by r). Returns as st_userq_load (NB_ENOTFOUND: no order). */
int st_reader_user(st_reader *r, const st_history *catalog, int32_t user_id, st_history *out,
                   char *err, size_t errlen);

/* 1 when user_id is in the users table, 0 when not, a negative NB_E* on a database error. */
int st_reader_user_exists(st_reader *r, int32_t user_id, char *err, size_t errlen);

/* st_cand_load on the reader's statement: model_id's candidate set of user_id. Returns as
 * st_cand_load (NB_ENOTFOUND: no stored set). */
int st_reader_cands(st_reader *r, int64_t model_id, int32_t user_id, int n_products, int32_t *out,
                    int max, int *n, char *err, size_t errlen);

/* user_id's ranking precomputed for model_id (storage/userrank.h): *blob (owned by r, valid
 * until the next call) and *len. Returns NB_OK, NB_ENOTFOUND (no row; or a store without
 * the table) or NB_EDB. One statement: its own snapshot, no st_reader_begin needed. */
int st_reader_prerank(st_reader *r, int64_t model_id, int32_t user_id, const uint8_t **blob,
                      size_t *len, char *err, size_t errlen);

/* The reader's connection, for storage functions that take one (storage/rkstore.h), so that
 * their reads fall inside the same per-request snapshot. Borrowed: owned by r. */
sqlite3 *st_reader_conn(st_reader *r);

/* For /health, inside a read transaction: the models row model_id still holds checksum crc
 * (the store was not replaced by one with another model), and *user_id receives a user
 * with a stored candidate set for it (0 when none). Returns NB_OK, NB_EMISMATCH (row gone
 * or another checksum: message says which) or NB_EDB (the read failed: SQLite's message,
 * e.g. "database disk image is malformed"). */
int st_reader_model_check(st_reader *r, int64_t model_id, uint32_t crc, int32_t *user_id, char *err,
                          size_t errlen);

#endif
