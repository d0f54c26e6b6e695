/* rkstore.c -- ranking-stage rows in the store (rkstore.h). */
#include "rkstore.h"
#include "nb_err.h"
#include "store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ranking-stage tables are the tail of schema.sql, from this line on, every one of them
 * CREATE TABLE IF NOT EXISTS so that older stores get them: st_rk_ensure_tables runs that
 * tail of the compiled schema rather than a second copy of the DDL. */
#define RK_DDL_START \
    "\nCREATE TABLE IF NOT EXISTS ranker_models" /* at a line start: not a comment */

/* Runs sql. Returns NB_OK or NB_EDB naming what. */
static int exec(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = nb_err(err, errlen, NB_EDB, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return rc;
    }
    return NB_OK;
}

/* 1 if ranker_models has column `col` (stores from before it do not), 0 if not, -1 on a
 * database error (message in err). */
static int has_col(sqlite3 *db, const char *col, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(ranker_models)", -1, &q, NULL) != SQLITE_OK) {
        nb_err(err, errlen, NB_EDB, "ranker_models columns: %s", sqlite3_errmsg(db));
        return -1;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(q, 1);
        if (c && !strcmp(c, col)) found = 1;
    }
    sqlite3_finalize(q);
    return found;
}

int st_rk_ensure_tables(sqlite3 *db, char *err, size_t errlen) {
    const char *ddl = strstr(st_schema_sql(), RK_DDL_START);
    assert(ddl); /* schema.sql is compiled in: a missing section is a build error, not input */
    int rc = exec(db, ddl + 1, "creating the ranking-stage tables", err, errlen);
    if (rc) return rc;
    /* CREATE IF NOT EXISTS leaves an older ranker_models without the later columns;
     * nullable columns can be added in place (its rows read as "defaults", st_rk_load_tifu,
     * and "uncalibrated", st_rk_load_cal) */
    int has = has_col(db, "tifu_m", err, errlen);
    if (has < 0) return NB_EDB;
    if (!has)
        rc = exec(db,
                  "ALTER TABLE ranker_models ADD COLUMN tifu_m INTEGER; "
                  "ALTER TABLE ranker_models ADD COLUMN tifu_k INTEGER; "
                  "ALTER TABLE ranker_models ADD COLUMN tifu_r_b REAL; "
                  "ALTER TABLE ranker_models ADD COLUMN tifu_r_g REAL; "
                  "ALTER TABLE ranker_models ADD COLUMN tifu_alpha REAL",
                  "adding the TIFU-KNN columns to ranker_models", err, errlen);
    if (rc) return rc;
    has = has_col(db, "bl_cal_a", err, errlen);
    if (has < 0) return NB_EDB;
    if (!has)
        rc = exec(db,
                  "ALTER TABLE ranker_models ADD COLUMN bl_cal_a REAL; "
                  "ALTER TABLE ranker_models ADD COLUMN bl_cal_b REAL",
                  "adding the calibration columns to ranker_models", err, errlen);
    return rc;
}

int st_rk_write(sqlite3 *db, int64_t model_id, const st_rk_rows *r, const st_history *h, char *err,
                size_t errlen) {
    if (sqlite3_get_autocommit(db))
        return nb_err(err, errlen, NB_EINVAL,
                      "st_rk_write must run inside the transaction that registers the model");
    sqlite3_stmt *q = NULL;
    int P = h->n_products, rc = NB_OK;
    uint8_t *buf = NULL;
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", r ? r->checksum : 0);
    if (rc || !r) goto done;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO ranker_models(model_id, path, checksum, shipped, "
                           "tifu_m, tifu_k, tifu_r_b, tifu_r_g, tifu_alpha, bl_cal_a, bl_cal_b) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(q, 1, model_id);
    sqlite3_bind_text(q, 2, r->path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 4, r->shipped, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 5, r->tifu_m);
    sqlite3_bind_int(q, 6, r->tifu_k);
    sqlite3_bind_double(q, 7, r->tifu_r_b);
    sqlite3_bind_double(q, 8, r->tifu_r_g);
    sqlite3_bind_double(q, 9, r->tifu_alpha);
    if (r->bl_cal) {
        sqlite3_bind_double(q, 10, r->bl_cal_a);
        sqlite3_bind_double(q, 11, r->bl_cal_b);
    } /* else NULL: unbound parameters are NULL */
    if (sqlite3_step(q) != SQLITE_DONE) goto dberr;
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO ranker_product_stats VALUES (?, ?, ?, ?, ?)", -1, &q,
                           NULL) != SQLITE_OK)
        goto dberr;
    for (int p = 0; p < P; p++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, model_id);
        sqlite3_bind_int(q, 2, h->product_ids[p]);
        sqlite3_bind_double(q, 3, r->pop[p]);
        sqlite3_bind_double(q, 4, r->reorder[p]);
        sqlite3_bind_double(q, 5, r->rebuy[p]);
        if (sqlite3_step(q) != SQLITE_DONE) goto dberr;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO neighbour_cands VALUES (?, ?, ?, ?, ?)", -1, &q,
                           NULL) != SQLITE_OK)
        goto dberr;
    int64_t maxn = 0;
    for (int u = 0; u < h->n_users; u++)
        if (r->nbr_off[u + 1] - r->nbr_off[u] > maxn) maxn = r->nbr_off[u + 1] - r->nbr_off[u];
    buf = nb_xmalloc((size_t)maxn * 8 + 8);
    for (int u = 0; u < h->n_users; u++) {
        int64_t a = r->nbr_off[u], n = r->nbr_off[u + 1] - a;
        if (n == 0) continue;
        uint8_t *pb = buf, *sb = buf + 4 * n;
        for (int64_t i = 0; i < n; i++) {
            uint32_t pid = (uint32_t)h->product_ids[r->nbr_idx[a + i]], sv;
            memcpy(&sv, &r->nbr_val[a + i], 4);
            for (int k = 0; k < 4; k++)
                pb[4 * i + k] = (uint8_t)(pid >> (8 * k)), sb[4 * i + k] = (uint8_t)(sv >> (8 * k));
        }
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, model_id);
        sqlite3_bind_int(q, 2, h->user_ids[u]);
        sqlite3_bind_int64(q, 3, n);
        sqlite3_bind_blob(q, 4, pb, (int)(4 * n), SQLITE_STATIC);
        sqlite3_bind_blob(q, 5, sb, (int)(4 * n), SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) goto dberr;
    }
    goto done;
dberr:
    rc = nb_err(err, errlen, NB_EDB, "writing the ranking-stage rows: %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(q);
    free(buf);
    (void)P;
    return rc;
}

/* Runs sql (one "?" for model_id) and leaves *q on model_id's ranker_models row. Returns NB_OK,
 * NB_ENOTFOUND (no row for model_id), prep_fail when the statement cannot be prepared (callers
 * differ: a store from before the ranking stage has no table), or NB_EDB. The caller finalizes
 * *q in every case. */
static int ranker_row(sqlite3 *db, const char *sql, int64_t model_id, int prep_fail,
                      sqlite3_stmt **q, char *err, size_t errlen) {
    if (sqlite3_prepare_v2(db, sql, -1, q, NULL) != SQLITE_OK)
        return nb_err(err, errlen, prep_fail,
                      prep_fail == NB_ENOTFOUND ? "no ranker registered (%s)" : "ranker_models: %s",
                      sqlite3_errmsg(db));
    sqlite3_bind_int64(*q, 1, model_id);
    int s = sqlite3_step(*q);
    if (s == SQLITE_DONE)
        return nb_err(err, errlen, NB_ENOTFOUND, "no ranker registered for model %lld",
                      (long long)model_id);
    if (s != SQLITE_ROW)
        return nb_err(err, errlen, NB_EDB, "ranker_models: %s", sqlite3_errmsg(db));
    return NB_OK;
}

int st_rk_load_model(sqlite3 *db, int64_t model_id, char **path, uint32_t *checksum, char *shipped,
                     size_t shipped_len, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    *path = NULL;
    /* a store from before the ranking stage has no table: nothing registered */
    int rc = ranker_row(db, "SELECT path, checksum, shipped FROM ranker_models WHERE model_id = ?",
                        model_id, NB_ENOTFOUND, &q, err, errlen);
    if (rc == NB_OK) {
        *path = strdup((const char *)sqlite3_column_text(q, 0));
        *checksum = (uint32_t)strtoul((const char *)sqlite3_column_text(q, 1), NULL, 16);
        snprintf(shipped, shipped_len, "%s", (const char *)sqlite3_column_text(q, 2));
    }
    sqlite3_finalize(q);
    return rc;
}

int st_rk_load_tifu(sqlite3 *db, int64_t model_id, int *m, int *k, double *r_b, double *r_g,
                    double *alpha, int *stored, char *err, size_t errlen) {
    *stored = 0;
    int has = has_col(db, "tifu_m", err, errlen);
    if (has < 0) return NB_EDB;
    if (!has) return NB_OK; /* a store from before the columns: the defaults */
    sqlite3_stmt *q = NULL;
    int rc = ranker_row(db,
                        "SELECT tifu_m, tifu_k, tifu_r_b, tifu_r_g, tifu_alpha FROM "
                        "ranker_models WHERE model_id = ?",
                        model_id, NB_EDB, &q, err, errlen);
    if (rc) goto done;
    for (int c = 0; c < 5; c++)
        if (sqlite3_column_type(q, c) == SQLITE_NULL) goto done; /* a row from before them */
    *m = sqlite3_column_int(q, 0);
    *k = sqlite3_column_int(q, 1);
    *r_b = sqlite3_column_double(q, 2);
    *r_g = sqlite3_column_double(q, 3);
    *alpha = sqlite3_column_double(q, 4);
    *stored = 1;
done:
    sqlite3_finalize(q);
    return rc;
}

int st_rk_load_cal(sqlite3 *db, int64_t model_id, double *a, double *b, int *stored, char *err,
                   size_t errlen) {
    *stored = 0;
    int has = has_col(db, "bl_cal_a", err, errlen);
    if (has < 0) return NB_EDB;
    if (!has) return NB_OK; /* a store from before the columns: raw scores */
    sqlite3_stmt *q = NULL;
    int rc = ranker_row(db, "SELECT bl_cal_a, bl_cal_b FROM ranker_models WHERE model_id = ?",
                        model_id, NB_EDB, &q, err, errlen);
    if (rc == NB_OK && sqlite3_column_type(q, 0) != SQLITE_NULL &&
        sqlite3_column_type(q, 1) != SQLITE_NULL) {
        *a = sqlite3_column_double(q, 0);
        *b = sqlite3_column_double(q, 1);
        *stored = 1;
    }
    sqlite3_finalize(q);
    return rc;
}

int st_rk_load_pstats(sqlite3 *db, int64_t model_id, const st_history *catalog, float *pop,
                      float *reorder, float *rebuy, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    int rc = NB_OK, P = catalog->n_products, seen = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT product_id, pop, reorder, rebuy FROM "
                           "ranker_product_stats WHERE model_id = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "ranker_product_stats: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(q, 1, model_id);
    int s;
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        int32_t pid = sqlite3_column_int(q, 0);
        int p = st_product_index(catalog, pid);
        if (p < 0) {
            rc = nb_err(err, errlen, NB_EMISMATCH,
                        "ranker_product_stats: product_id %d is not in the catalogue", pid);
            goto done;
        }
        pop[p] = (float)sqlite3_column_double(q, 1);
        reorder[p] = (float)sqlite3_column_double(q, 2);
        rebuy[p] = (float)sqlite3_column_double(q, 3);
        seen++;
    }
    if (s != SQLITE_DONE)
        rc = nb_err(err, errlen, NB_EDB, "ranker_product_stats: %s", sqlite3_errmsg(db));
    else if (seen != P)
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "ranker_product_stats: %d rows for model %lld, the catalogue has %d products",
                    seen, (long long)model_id, P);
done:
    sqlite3_finalize(q);
    return rc;
}

int st_rk_load_nbr(sqlite3 *db, int64_t model_id, const st_history *catalog, int32_t user_id,
                   int32_t *idx, float *val, int cap, int *n, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    int rc = NB_OK;
    *n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT n, products, scores FROM neighbour_cands WHERE "
                           "model_id = ? AND user_id = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "neighbour_cands: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(q, 1, model_id);
    sqlite3_bind_int(q, 2, user_id);
    int s = sqlite3_step(q);
    if (s == SQLITE_DONE) goto done;
    if (s != SQLITE_ROW) {
        rc = nb_err(err, errlen, NB_EDB, "neighbour_cands: %s", sqlite3_errmsg(db));
        goto done;
    }
    int64_t m = sqlite3_column_int64(q, 0);
    const uint8_t *pb = sqlite3_column_blob(q, 1);
    int lp = sqlite3_column_bytes(q, 1);
    const uint8_t *sb = sqlite3_column_blob(q, 2);
    int ls = sqlite3_column_bytes(q, 2);
    if (m < 0 || m > cap || lp != 4 * m || ls != 4 * m) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "neighbour_cands: user_id %d: n %lld with %d / %d blob bytes", user_id,
                    (long long)m, lp, ls);
        goto done;
    }
    for (int64_t i = 0; i < m; i++) {
        uint32_t pid = 0, sv = 0;
        for (int k = 0; k < 4; k++)
            pid |= (uint32_t)pb[4 * i + k] << (8 * k), sv |= (uint32_t)sb[4 * i + k] << (8 * k);
        int p = st_product_index(catalog, (int32_t)pid);
        if (p < 0) {
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "neighbour_cands: user_id %d: product_id %u not in the catalogue", user_id,
                        pid);
            goto done;
        }
        idx[i] = p;
        memcpy(&val[i], &sv, 4);
    }
    *n = (int)m;
done:
    sqlite3_finalize(q);
    return rc;
}
