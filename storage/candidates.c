/* candidates.c -- candidate-set encoding (sorted, delta, LEB128) and lookup. */
#include "candidates.h"

#include <assert.h>
#include <stdlib.h>

#include "models.h"
#include "nb_err.h"

/* Writes one unsigned LEB128 varint; returns the bytes written (1..5). */
static inline size_t put_varint(uint8_t *b, uint32_t v) {
    size_t k = 0;
    while (v >= 0x80) {
        b[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[k++] = (uint8_t)v;
    return k;
}

/* Encodes idx[n] (first value, then gap - 1 for every later value) into buf, which holds at
 * least 5 * n bytes. Returns the length. The caller guarantees the order (asserted). */
size_t st_cand_encode_buf(const int32_t *idx, int n, uint8_t *buf) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        assert(i == 0 ? idx[0] >= 0 : idx[i] > idx[i - 1]);
        k += put_varint(buf + k, i == 0 ? (uint32_t)idx[0] : (uint32_t)(idx[i] - idx[i - 1] - 1));
    }
    return k;
}

/* Decodes blob[len] into out[max] (*n = count). Every byte must belong to a complete varint,
 * every value must be < n_products, and there must be at most max of them. Returns NB_OK or
 * NB_EFORMAT naming the byte offset; out's contents are unspecified on error. */
int st_cand_decode(const uint8_t *blob, size_t len, int n_products, int32_t *out, int max, int *n,
                   char *err, size_t errlen) {
    *n = 0;
    int cnt = 0;
    int64_t prev = -1;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        uint64_t v = 0;
        int shift = 0;
        for (;;) {
            if (i >= len)
                return nb_err(err, errlen, NB_EFORMAT,
                              "candidate blob truncated: varint at byte %zu of %zu unfinished",
                              start, len);
            if (shift > 28)
                return nb_err(err, errlen, NB_EFORMAT,
                              "candidate blob: varint at byte %zu longer than 5 bytes", start);
            uint8_t c = blob[i++];
            v |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
            if (!(c & 0x80)) break;
        }
        int64_t x = prev + 1 + (int64_t)v;
        if (x >= n_products)
            return nb_err(err, errlen, NB_EFORMAT,
                          "candidate blob: value %d (byte %zu) is >= n_products %d", cnt, start,
                          n_products);
        if (cnt >= max)
            return nb_err(err, errlen, NB_EFORMAT,
                          "candidate blob holds more than %d values (byte %zu)", max, start);
        out[cnt++] = (int32_t)x;
        prev = x;
    }
    *n = cnt;
    return NB_OK;
}

/* Prepares the lookup statement on db into *stmt (caller finalizes it with
 * sqlite3_finalize). Returns NB_OK or NB_EDB (e.g. no candidates table). */
int st_cand_stmt(sqlite3 *db, sqlite3_stmt **stmt, char *err, size_t errlen) {
    *stmt = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT n_candidates, encoded FROM candidates "
                           "WHERE model_id = ?1 AND user_id = ?2",
                           -1, stmt, NULL) != SQLITE_OK)
        return nb_err(err, errlen, NB_EDB, "preparing candidate lookup: %s", sqlite3_errmsg(db));
    return NB_OK;
}

/* Looks up (model_id, user_id) and decodes its blob into out[max]. The stored count must
 * equal the decoded count. Returns NB_OK, NB_ENOTFOUND (no row), NB_EDB or NB_EFORMAT
 * (message names the model and user). The statement is reset before returning. */
int st_cand_load(sqlite3_stmt *stmt, int64_t model_id, int32_t user_id, int n_products,
                 int32_t *out, int max, int *n, char *err, size_t errlen) {
    int rc = NB_OK;
    *n = 0;
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, model_id);
    sqlite3_bind_int(stmt, 2, user_id);
    int s = sqlite3_step(stmt);
    if (s == SQLITE_DONE) {
        rc = nb_err(err, errlen, NB_ENOTFOUND, "no candidates for model %lld, user %d",
                    (long long)model_id, (int)user_id);
        goto done;
    }
    if (s != SQLITE_ROW) {
        rc = nb_err(err, errlen, NB_EDB, "candidates of model %lld, user %d: %s",
                    (long long)model_id, (int)user_id, sqlite3_errmsg(sqlite3_db_handle(stmt)));
        goto done;
    }
    int64_t stored = sqlite3_column_int64(stmt, 0);
    const uint8_t *blob = sqlite3_column_blob(stmt, 1);
    size_t len = (size_t)sqlite3_column_bytes(stmt, 1);
    rc = st_cand_decode(blob, len, n_products, out, max, n, err, errlen);
    if (rc != NB_OK) {
        nb_err_wrap(err, errlen, rc, "candidates of model %lld, user %d", (long long)model_id,
                    (int)user_id);
        goto done;
    }
    if (stored != *n)
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "candidates of model %lld, user %d: n_candidates %lld but blob holds %d",
                    (long long)model_id, (int)user_id, (long long)stored, *n);
done:
    sqlite3_reset(stmt);
    return rc;
}

/* st_cands_write's rows: user u's set, already encoded. */
typedef struct {
    const int32_t *user_ids, *count;
    const int64_t *off;
    const uint8_t *enc;
} cand_rows;

/* An st_row_bind_fn over cand_rows. */
static void bind_cands(void *ctx, sqlite3_stmt *ins, int u, int32_t *key) {
    const cand_rows *r = ctx;
    sqlite3_bind_int(ins, 2, r->user_ids[u]);
    sqlite3_bind_int(ins, 3, r->count[u]);
    sqlite3_bind_blob(ins, 4, r->enc + r->off[u], (int)(r->off[u + 1] - r->off[u]),
                      SQLITE_STATIC);
    *key = r->user_ids[u];
}

/* See candidates.h: one row per user, through st_model_rows_replace. */
int st_cands_write(sqlite3 *db, int64_t model_id, int n_users, const int32_t *user_ids,
                   const int32_t *count, const int64_t *off, const uint8_t *enc, char *err,
                   size_t errlen) {
    cand_rows r = {user_ids, count, off, enc};
    return st_model_rows_replace(db, model_id, "candidates",
                                 "INSERT INTO candidates (model_id, user_id, n_candidates, "
                                 "encoded) VALUES (?1, ?2, ?3, ?4)",
                                 n_users, bind_cands, &r, "user", err, errlen);
}
