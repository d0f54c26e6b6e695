/* models.c -- the model registry (see models.h). */
#include "models.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"
#include "store.h"

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

/* The tables whose rows belong to one model (model_id column), the ranking stage's last:
 * they may be missing from a store that never trained a ranking stage. */
static const char *const MODEL_TABLES[] = {"candidates",           "product_stats",
                                           "ranker_models",        "ranker_product_stats",
                                           "neighbour_cands",      "user_rankings"};
#define N_MODEL_TABLES (int)(sizeof MODEL_TABLES / sizeof *MODEL_TABLES)

/* The files of the models about to be retired (those not among the `keep` newest) that no
 * kept model names: appended to out. Returns NB_OK or NB_EDB. */
static int retired_files(sqlite3 *db, int keep, int have_rk, st_strlist *out, char *err,
                         size_t errlen) {
    sqlite3_stmt *q = NULL;
    int rc = NB_OK;
    const char *sql_rk =
        "WITH kept AS (SELECT model_id FROM models ORDER BY model_id DESC LIMIT ?1), "
        "files AS (SELECT model_id, path FROM models UNION ALL "
        "          SELECT model_id, path FROM ranker_models) "
        "SELECT DISTINCT path FROM files WHERE model_id NOT IN kept "
        "AND path NOT IN (SELECT path FROM files WHERE model_id IN kept) ORDER BY path";
    const char *sql =
        "WITH kept AS (SELECT model_id FROM models ORDER BY model_id DESC LIMIT ?1) "
        "SELECT DISTINCT path FROM models WHERE model_id NOT IN kept "
        "AND path NOT IN (SELECT path FROM models WHERE model_id IN kept) ORDER BY path";
    if (sqlite3_prepare_v2(db, have_rk ? sql_rk : sql, -1, &q, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "listing retired model files: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int(q, 1, keep);
    int s;
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        out->v = nb_xrealloc(out->v, (size_t)(out->n + 1) * sizeof *out->v);
        out->v[out->n] = strdup((const char *)sqlite3_column_text(q, 0));
        if (!out->v[out->n]) abort(); /* common/nb_err.h: allocation failure aborts */
        out->n++;
    }
    if (s != SQLITE_DONE)
        rc = nb_err(err, errlen, NB_EDB, "listing retired model files: %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(q);
    return rc;
}

/* Deletes every model but the `keep` newest, with its rows in MODEL_TABLES. Returns NB_OK or
 * NB_EDB. */
static int retire(sqlite3 *db, int keep, char *err, size_t errlen) {
    int rc = NB_OK;
    char sql[256];
    for (int t = 0; t < N_MODEL_TABLES && rc == NB_OK; t++) {
        /* the ranking-stage tables came in two steps: a store may have some or none */
        int has = t >= 2 ? st_has_table(db, MODEL_TABLES[t], err, errlen) : 1;
        if (has < 0) return NB_EDB;
        if (!has) continue;
        snprintf(sql, sizeof sql,
                 "DELETE FROM %s WHERE model_id NOT IN "
                 "(SELECT model_id FROM models ORDER BY model_id DESC LIMIT %d)",
                 MODEL_TABLES[t], keep);
        rc = exec(db, sql, err, errlen);
    }
    if (rc == NB_OK) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM models WHERE model_id NOT IN "
                 "(SELECT model_id FROM models ORDER BY model_id DESC LIMIT %d)",
                 keep);
        rc = exec(db, sql, err, errlen);
    }
    return rc;
}

/* See models.h. The new row is inserted before anything is deleted, so its rowid is above
 * every id still present -- and, with the newest row always kept, above every id ever
 * given: a store made before models had AUTOINCREMENT never reuses an id either. */
int st_model_register(sqlite3 *db, const st_model_new *nm, int64_t *model_id, st_strlist *unused,
                      char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    char hex[16];
    int have_rk = 0;
    assert(nm->keep >= 1);
    memset(unused, 0, sizeof *unused);
    snprintf(hex, sizeof hex, "%08x", nm->crc);
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (rc) goto done;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO models(path, checksum, hyper_params, metrics) "
                           "VALUES (?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        rc = nb_err(err, errlen, NB_EDB, "models insert: %s", sqlite3_errmsg(db));
    if (rc == NB_OK) {
        sqlite3_bind_text(q, 1, nm->path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, hex, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, nm->hyper, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 4, nm->metrics, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = nb_err(err, errlen, NB_EDB, "models insert: %s", sqlite3_errmsg(db));
        *model_id = sqlite3_last_insert_rowid(db);
    }
    if (rc == NB_OK && nm->rows) rc = nm->rows(nm->ctx, db, *model_id, err, errlen);
    if (rc == NB_OK) {
        have_rk = st_has_table(db, "ranker_models", err, errlen);
        if (have_rk < 0) rc = have_rk;
    }
    if (rc == NB_OK) rc = retired_files(db, nm->keep, have_rk, unused, err, errlen);
    if (rc == NB_OK) rc = retire(db, nm->keep, err, errlen);
    if (rc == NB_OK)
        rc = exec(db, "COMMIT", err, errlen);
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (rc) st_strlist_free(unused);
done:
    sqlite3_finalize(q);
    return rc;
}

/* See models.h. */
int st_model_path(sqlite3 *db, const char *checksum, char **path, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    const char *sql = checksum ? "SELECT path FROM models WHERE lower(checksum) = lower(?1) "
                                 "ORDER BY model_id DESC LIMIT 1"
                               : "SELECT path FROM models ORDER BY model_id DESC LIMIT 1";
    int rc = NB_OK;
    *path = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
        goto done;
    }
    if (checksum) sqlite3_bind_text(q, 1, checksum, -1, SQLITE_STATIC);
    int s = sqlite3_step(q);
    if (s == SQLITE_ROW) {
        *path = strdup((const char *)sqlite3_column_text(q, 0));
        if (!*path) abort(); /* common/nb_err.h: allocation failure aborts */
    } else if (s == SQLITE_DONE) {
        rc = checksum ? nb_err(err, errlen, NB_ENOTFOUND,
                               "no model with checksum %s is registered in the store", checksum)
                      : nb_err(err, errlen, NB_ENOTFOUND, "no model is registered in the store");
    } else {
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
    }
done:
    sqlite3_finalize(q);
    return rc;
}

/* See models.h. */
int st_model_file_named(sqlite3 *db, const char *path, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    int have_rk = st_has_table(db, "ranker_models", err, errlen);
    if (have_rk < 0) return have_rk;
    const char *sql = have_rk ? "SELECT 1 FROM models WHERE path = ?1 UNION ALL "
                                "SELECT 1 FROM ranker_models WHERE path = ?1"
                              : "SELECT 1 FROM models WHERE path = ?1";
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    int s = sqlite3_step(q);
    int rc = s == SQLITE_ROW    ? 1
             : s == SQLITE_DONE ? 0
                                : nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return rc;
}

/* See models.h. */
void st_strlist_free(st_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
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
