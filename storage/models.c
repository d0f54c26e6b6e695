/* models.c -- the model registry (see models.h). */
#include "models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"

/* See models.h. The query takes the newest row, so a store with several rows of the same
 * weight file (an older nb-train kept them) answers with the latest one. */
int st_model_find(sqlite3 *db, uint32_t crc, int64_t *id, char **hyper, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    char hex[16];
    int rc = NB_OK;
    const char *sql = "SELECT model_id, hyper_params FROM models WHERE lower(checksum) = ?1 "
                      "ORDER BY model_id DESC LIMIT 1";
    snprintf(hex, sizeof hex, "%08x", crc);
    if (hyper) *hyper = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_text(q, 1, hex, -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(q);
    if (s == SQLITE_DONE) {
        rc = nb_err(err, errlen, NB_ENOTFOUND,
                    "no model with checksum %s is registered in the store (train it on this store)",
                    hex);
        goto done;
    }
    if (s != SQLITE_ROW) {
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
        goto done;
    }
    *id = sqlite3_column_int64(q, 0);
    const char *hp = (const char *)sqlite3_column_text(q, 1);
    if (hyper && hp) {
        *hyper = strdup(hp);
        if (!*hyper) abort(); /* common/nb_err.h: allocation failure aborts */
    }
done:
    sqlite3_finalize(q);
    return rc;
}

/* Executes sql on db. Returns NB_OK or NB_EDB naming what. */
static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return rc;
    }
    return NB_OK;
}

/* See models.h. */
int st_model_register(sqlite3 *db, const char *path, uint32_t crc, const char *hyper,
                      const char *metrics, st_model_rows_fn rows, void *ctx, int64_t *model_id,
                      char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", crc);
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) goto done;
    rc = exec(db, "DELETE FROM candidates; DELETE FROM product_stats; DELETE FROM models", err,
              errlen);
    if (rc == NB_OK &&
        sqlite3_prepare_v2(db,
                           "INSERT INTO models(path, checksum, hyper_params, metrics) "
                           "VALUES (?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        rc = nb_err(err, errlen, NB_EDB, "models insert: %s", sqlite3_errmsg(db));
    if (rc == NB_OK) {
        sqlite3_bind_text(q, 1, path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, hyper, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 4, metrics, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = nb_err(err, errlen, NB_EDB, "models insert: %s", sqlite3_errmsg(db));
        *model_id = sqlite3_last_insert_rowid(db);
    }
    if (rc == NB_OK && rows) rc = rows(ctx, db, *model_id, err, errlen);
    if (rc == NB_OK)
        rc = exec(db, "COMMIT", err, errlen);
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
done:
    sqlite3_finalize(q);
    return rc;
}

/* See models.h. */
int st_model_tables_check(sqlite3 *db, char *err, size_t errlen) {
    if (sqlite3_exec(db, "SELECT 1 FROM models, candidates, product_stats LIMIT 0", NULL, NULL,
                     NULL) == SQLITE_OK)
        return NB_OK;
    return nb_err(err, errlen, NB_EMISMATCH,
                  "%s (the store predates the current schema.sql: re-import it)",
                  sqlite3_errmsg(db));
}

/* See models.h. */
int st_model_rows_replace(sqlite3 *db, int64_t model_id, const char *table, const char *ins_sql,
                          int n, st_row_bind_fn bind, void *ctx, const char *key_name, char *err,
                          size_t errlen) {
    if (sqlite3_get_autocommit(db))
        return nb_err(err, errlen, NB_EINVAL,
                      "writing %s needs an open transaction (BEGIN) shared with the models "
                      "row of model %lld",
                      table, (long long)model_id);
    int rc = NB_OK;
    sqlite3_stmt *del = NULL, *ins = NULL;
    char del_sql[128];
    snprintf(del_sql, sizeof del_sql, "DELETE FROM %s WHERE model_id = ?1", table);
    if (sqlite3_prepare_v2(db, del_sql, -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, ins_sql, -1, &ins, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "preparing the %s write: %s", table, sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(del, 1, model_id);
    if (sqlite3_step(del) != SQLITE_DONE) {
        rc = nb_err(err, errlen, NB_EDB, "deleting %s of model %lld: %s", table,
                    (long long)model_id, sqlite3_errmsg(db));
        goto done;
    }
    for (int i = 0; i < n && rc == NB_OK; i++) {
        int32_t key = 0;
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, model_id);
        bind(ctx, ins, i, &key);
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = nb_err(err, errlen, NB_EDB, "writing %s of model %lld, %s %d: %s", table,
                        (long long)model_id, key_name, (int)key, sqlite3_errmsg(db));
        sqlite3_clear_bindings(ins); /* no binding outlives the caller's buffers */
    }
done:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return rc;
}
