/* reader.c -- a thread's read-only connection for serving (see reader.h). */
#include "reader.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "candidates.h"
#include "nb_err.h"
#include "userrank.h"
#include "store.h"

struct st_reader {
    sqlite3 *db;
    st_userq *uq;         /* one user's history */
    sqlite3_stmt *cand;   /* one user's candidate set */
    sqlite3_stmt *exists; /* is user_id in users? */
    sqlite3_stmt *health; /* the model's checksum and one user with candidates */
    sqlite3_stmt *begin, *commit;
    sqlite3_stmt *prerank; /* one user's precomputed ranking (NULL: no such table) */
    uint8_t *pr_buf;       /* its bytes, reused */
    size_t pr_cap;
};

/* Prepares sql on db for repeated use. Returns NB_OK or NB_EDB (message quotes the SQL). */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK)
        return NB_OK;
    return nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
}

/* See reader.h. */
int st_reader_open(st_reader **out, const char *path, char *err, size_t errlen) {
    st_reader *r = nb_xcalloc(1, sizeof *r);
    int rc = st_open(&r->db, path, 1, err, errlen);
    if (!rc) rc = st_userq_open(&r->uq, r->db, err, errlen);
    if (!rc) rc = st_cand_stmt(r->db, &r->cand, err, errlen);
    if (!rc) rc = prepare(r->db, "SELECT 1 FROM users WHERE user_id = ?1", &r->exists, err, errlen);
    if (!rc)
        rc = prepare(r->db,
                     "SELECT (SELECT lower(checksum) FROM models WHERE model_id = ?1), "
                     "(SELECT user_id FROM candidates WHERE model_id = ?1 LIMIT 1)",
                     &r->health, err, errlen);
    if (!rc) rc = st_prerank_get_stmt(r->db, &r->prerank, err, errlen);
    if (!rc) rc = prepare(r->db, "BEGIN", &r->begin, err, errlen);
    if (!rc) rc = prepare(r->db, "COMMIT", &r->commit, err, errlen);
    if (rc) {
        st_reader_free(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

/* See reader.h. */
void st_reader_free(st_reader *r) {
    if (!r) return;
    if (r->uq) st_userq_free(r->uq);
    sqlite3_finalize(r->cand);
    sqlite3_finalize(r->exists);
    sqlite3_finalize(r->health);
    sqlite3_finalize(r->begin);
    sqlite3_finalize(r->commit);
    sqlite3_finalize(r->prerank);
    free(r->pr_buf);
    if (r->db) sqlite3_close(r->db);
    free(r);
}

/* Steps a statement without rows and resets it. Returns NB_OK or NB_EDB named by what. */
static int step_done(st_reader *r, sqlite3_stmt *st, const char *what, char *err, size_t errlen) {
    int rc = NB_OK;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", what, sqlite3_errmsg(r->db));
    sqlite3_reset(st);
    return rc;
}

/* See reader.h. */
int st_reader_begin(st_reader *r, char *err, size_t errlen) {
    return step_done(r, r->begin, "BEGIN", err, errlen);
}

/* See reader.h. */
int st_reader_commit(st_reader *r, char *err, size_t errlen) {
    return step_done(r, r->commit, "COMMIT", err, errlen);
}

/* See reader.h. */
int st_reader_user(st_reader *r, const st_history *catalog, int32_t user_id, st_history *out,
                   char *err, size_t errlen) {
    return st_userq_load(r->uq, catalog, user_id, out, err, errlen);
}

/* See reader.h. */
int st_reader_user_exists(st_reader *r, int32_t user_id, char *err, size_t errlen) {
    sqlite3_bind_int(r->exists, 1, user_id);
    int s = sqlite3_step(r->exists);
    sqlite3_reset(r->exists);
    if (s == SQLITE_ROW) return 1;
    if (s == SQLITE_DONE) return 0;
    return nb_err(err, errlen, NB_EDB, "users: %s", sqlite3_errmsg(r->db));
}

/* See reader.h. */
int st_reader_cands(st_reader *r, int64_t model_id, int32_t user_id, int n_products, int32_t *out,
                    int max, int *n, char *err, size_t errlen) {
    return st_cand_load(r->cand, model_id, user_id, n_products, out, max, n, err, errlen);
}

/* See reader.h. */
int st_reader_model_check(st_reader *r, int64_t model_id, uint32_t crc, int32_t *user_id, char *err,
                          size_t errlen) {
    char hex[16];
    int rc = NB_OK;
    *user_id = 0;
    snprintf(hex, sizeof hex, "%08x", crc);
    sqlite3_bind_int64(r->health, 1, model_id);
    int s = sqlite3_step(r->health);
    if (s != SQLITE_ROW) {
        rc = nb_err(err, errlen, NB_EDB, "models: %s", sqlite3_errmsg(r->db));
        goto done;
    }
    const char *ck = (const char *)sqlite3_column_text(r->health, 0);
    if (!ck || strcmp(ck, hex) != 0) {
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "model_id %lld is %s in the store, not the "
                    "served weights %s",
                    (long long)model_id, ck ? ck : "gone", hex);
        goto done;
    }
    if (sqlite3_column_type(r->health, 1) != SQLITE_NULL)
        *user_id = (int32_t)sqlite3_column_int(r->health, 1);
done:
    sqlite3_reset(r->health);
    return rc;
}

/* See reader.h. */
int st_reader_prerank(st_reader *r, int64_t model_id, int32_t user_id, const uint8_t **blob,
                      size_t *len, char *err, size_t errlen) {
    int rc = st_prerank_get(r->prerank, model_id, user_id, &r->pr_buf, &r->pr_cap, len, err,
                            errlen);
    *blob = rc == NB_OK ? r->pr_buf : NULL;
    return rc;
}

/* See reader.h. */
sqlite3 *st_reader_conn(st_reader *r) { return r->db; }
