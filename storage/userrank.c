/* userrank.c -- the user_rankings rows (userrank.h). */
#include "userrank.h"

#include <stdlib.h>
#include <string.h>

#include "nb_err.h"
#include "store.h"

/* Runs sql on db. Returns NB_OK or NB_EDB naming it. */
static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK) return NB_OK;
    return nb_err(err, errlen, NB_EDB, "user_rankings: %s: %s", sql, sqlite3_errmsg(db));
}

/* See userrank.h. The count uses orders_by_user: one index range per user. */
int st_prerank_put_batch(sqlite3 *db, int64_t model_id, const st_prerank_row *rows, int n,
                         uint8_t *written, char *err, size_t errlen) {
    static const char sql[] =
        "INSERT OR REPLACE INTO user_rankings(model_id, user_id, ranking) SELECT ?1, ?2, ?3 "
        "WHERE (SELECT count(*) FROM orders WHERE user_id = ?2) = ?4";
    sqlite3_stmt *st = NULL;
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) return rc;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "preparing the user_rankings insert: %s",
                    sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(st, 1, model_id);
    for (int i = 0; i < n && rc == NB_OK; i++) {
        const st_prerank_row *r = &rows[i];
        sqlite3_bind_int(st, 2, r->user_id);
        sqlite3_bind_blob(st, 3, r->blob, (int)r->len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, r->n_orders);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = nb_err(err, errlen, NB_EDB, "writing the ranking of user %d: %s", (int)r->user_id,
                        sqlite3_errmsg(db));
        written[i] = rc == NB_OK && sqlite3_changes(db) > 0;
        sqlite3_reset(st);
    }
    if (rc == NB_OK) rc = exec(db, "COMMIT", err, errlen);
done:
    sqlite3_finalize(st); /* also drops the bindings of the caller's blobs */
    if (rc) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        memset(written, 0, (size_t)n);
    }
    return rc;
}

/* See userrank.h. */
int st_prerank_get_stmt(sqlite3 *db, sqlite3_stmt **st, char *err, size_t errlen) {
    *st = NULL;
    int has = st_has_table(db, "user_rankings", err, errlen);
    if (has < 0) return has;
    if (!has) return NB_OK; /* a store from before the table */
    if (sqlite3_prepare_v3(db,
                           "SELECT ranking FROM user_rankings WHERE model_id = ?1 AND user_id = ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK)
        return NB_OK;
    *st = NULL;
    return nb_err(err, errlen, NB_EDB, "preparing the user_rankings read: %s", sqlite3_errmsg(db));
}

/* See userrank.h. */
int st_prerank_get(sqlite3_stmt *st, int64_t model_id, int32_t user_id, uint8_t **buf,
                   size_t *cap, size_t *len, char *err, size_t errlen) {
    int rc = NB_ENOTFOUND;
    *len = 0;
    if (!st) return rc;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int(st, 2, user_id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (n > *cap) {
            *buf = nb_xrealloc(*buf, n);
            *cap = n;
        }
        if (n) memcpy(*buf, b, n);
        *len = n;
        rc = NB_OK;
    } else if (s != SQLITE_DONE) {
        rc = nb_err(err, errlen, NB_EDB, "reading the ranking of user %d: %s", (int)user_id,
                    sqlite3_errmsg(sqlite3_db_handle(st)));
    }
    sqlite3_reset(st);
    return rc;
}
