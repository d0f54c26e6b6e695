/* test_cands.c -- candidate encoding, lookup from SQLite, and candidate generation. */
#include "candgen.h"
#include "candidates.h"
#include "cands_util.h"
#include "harness.h"
#include "nb_err.h"
#include "rng.h"
#include "store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- moved here from storage/candidates.c: only this test uses it ---- */

/* Checks idx[n] and encodes it. Returns NB_OK and a malloc'd *blob (caller frees; never NULL
 * on success, even when n == 0), or NB_EINVAL when idx is negative or not strictly
 * ascending (message names the position). */
static int st_cand_encode(const int32_t *idx, int n, uint8_t **blob, size_t *len, char *err,
                          size_t errlen) {
    *blob = NULL;
    *len = 0;
    if (n < 0) return nb_err(err, errlen, NB_EINVAL, "candidate count %d < 0", n);
    if (n > 0 && idx[0] < 0)
        return nb_err(err, errlen, NB_EINVAL, "candidate 0 is negative (%d)", idx[0]);
    for (int i = 1; i < n; i++)
        if (idx[i] <= idx[i - 1])
            return nb_err(err, errlen, NB_EINVAL,
                          "candidates not strictly ascending at position %d (%d after %d)", i,
                          idx[i], idx[i - 1]);
    *blob = nb_xmalloc((size_t)n * 5 + 1);
    *len = st_cand_encode_buf(idx, n, *blob);
    return NB_OK;
}


extern const char st_schema_text[]; /* build/gen/schema_sql.c */

/* Encodes then decodes idx[n]; 0 when the round trip is exact. */
static int roundtrip(const int32_t *idx, int n, int P, size_t *len_out) {
    uint8_t *b;
    size_t len;
    char err[NB_ERRLEN];
    if (st_cand_encode(idx, n, &b, &len, err, sizeof err) != NB_OK) return 1;
    int32_t *out = nb_xmalloc((size_t)(n + 1) * sizeof *out);
    int m = -1;
    int rc = st_cand_decode(b, len, P, out, n, &m, err, sizeof err);
    int bad = rc != NB_OK || m != n || (n && memcmp(out, idx, (size_t)n * sizeof *idx));
    free(out);
    free(b);
    if (len_out) *len_out = len;
    return bad;
}

static int test_encode_roundtrip(void) {
    const int P = 49688;
    int32_t one0[] = {0}, oneLast[] = {P - 1}, two[] = {0, P - 1};
    size_t len;
    T_ASSERT(roundtrip(NULL, 0, P, &len) == 0 && len == 0, "empty set");
    T_ASSERT(roundtrip(one0, 1, P, &len) == 0 && len == 1, "{0} takes 1 byte");
    T_ASSERT(roundtrip(oneLast, 1, P, &len) == 0 && len == 3, "{P-1} takes 3 bytes (%zu)", len);
    T_ASSERT(roundtrip(two, 2, P, NULL) == 0, "{0, P-1}: the largest gap");
    int32_t run[1000];
    for (int i = 0; i < 1000; i++) run[i] = 500 + i;
    T_ASSERT(roundtrip(run, 1000, P, &len) == 0 && len == 1000 + 1, "consecutive run (%zu)", len);
    int32_t big[] = {0, 127, 128, 255, 16383 + 256, 16384 + 16383 + 257, 2000000000};
    T_ASSERT(roundtrip(big, 7, 2000000001, NULL) == 0, "varint length boundaries");
    nb_rng r;
    nb_rng_seed(&r, 7);
    int32_t *set = nb_xmalloc((size_t)P * sizeof *set);
    size_t total = 0, cnt = 0;
    for (int t = 0; t < 200; t++) {
        /* random density, occasionally with large gaps */
        double dens = t % 3 == 0 ? 0.06 : nb_rng_uniform(&r) * (t % 5 == 0 ? 0.001 : 0.5);
        int n = 0;
        for (int p = 0; p < P; p++)
            if (nb_rng_uniform(&r) < dens) set[n++] = p;
        T_ASSERT(roundtrip(set, n, P, &len) == 0, "random set %d (n=%d)", t, n);
        if (t % 3 == 0) total += len, cnt += (size_t)n;
    }
    /* ~3,000 of ~50,000 products: the documented <= 2 bytes per candidate (really ~1) */
    T_ASSERT(cnt > 0 && (double)total / cnt <= 1.1, "bytes per candidate %.3f at 6%% density",
             (double)total / cnt);
    free(set);
    return T_PASS;
}

static int test_encode_rejects(void) {
    char err[NB_ERRLEN];
    uint8_t *b = NULL;
    size_t len;
    int32_t dup[] = {3, 5, 5}, desc[] = {3, 2}, neg[] = {-1, 4};
    T_ASSERT(st_cand_encode(dup, 3, &b, &len, err, sizeof err) == NB_EINVAL, "duplicate");
    T_ASSERT(strstr(err, "position 2") != NULL, "message names the position: %s", err);
    T_ASSERT(st_cand_encode(desc, 2, &b, &len, err, sizeof err) == NB_EINVAL, "descending");
    T_ASSERT(st_cand_encode(neg, 2, &b, &len, err, sizeof err) == NB_EINVAL, "negative");
    T_ASSERT(b == NULL, "no blob on error");
    return T_PASS;
}

static int test_decode_rejects_corrupt(void) {
    char err[NB_ERRLEN];
    int32_t out[8];
    int n;
    uint8_t trunc[] = {0x05, 0x81}; /* second varint has its "more" bit set, then ends */
    T_ASSERT(st_cand_decode(trunc, 2, 100, out, 8, &n, err, sizeof err) == NB_EFORMAT, "truncated");
    T_ASSERT(strstr(err, "truncated") && strstr(err, "byte 1"), "message: %s", err);
    uint8_t big[] = {0x10, 0x50}; /* 16, then 16 + 1 + 80 = 97 */
    T_ASSERT(st_cand_decode(big, 2, 97, out, 8, &n, err, sizeof err) == NB_EFORMAT, "index >= P");
    T_ASSERT(strstr(err, ">= n_products 97"), "message: %s", err);
    T_ASSERT(st_cand_decode(big, 2, 98, out, 8, &n, err, sizeof err) == NB_OK && n == 2 &&
                 out[1] == 97,
             "the same blob is fine with P = 98");
    uint8_t many[] = {0, 0, 0, 0};
    T_ASSERT(st_cand_decode(many, 4, 100, out, 3, &n, err, sizeof err) == NB_EFORMAT, "too many");
    T_ASSERT(strstr(err, "more than 3"), "message: %s", err);
    uint8_t longv[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    T_ASSERT(st_cand_decode(longv, 6, 100, out, 8, &n, err, sizeof err) == NB_EFORMAT,
             "6-byte varint");
    return T_PASS;
}

/* ---- generation ------------------------------------------------------------------------ */

static float *random_emb(int P, int E, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    float *e = nb_xmalloc((size_t)P * E * sizeof *e);
    for (size_t i = 0; i < (size_t)P * E; i++) e[i] = (float)nb_rng_normal(&r);
    return e;
}

typedef struct {
    double s;
    int i;
} bf_pair;
static int bf_cmp(const void *a, const void *b) {
    const bf_pair *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i - y->i;
}

/* Brute force in double: bought first, then a FULL sort of the cosines of the others.
 * Compares with c's set of user u; boundary ties within 1e-5 may legitimately differ. */
static int check_user_bruteforce(const tr_cands *c, const st_history *h, const float *emb, int E,
                                 int n_top, int u, char *why, size_t wl) {
    int P = h->n_products;
    int64_t end = tr_cands_default_end(h, u);
    int64_t i0 = h->order_item_off[h->user_order_off[u]], i1 = h->order_item_off[end];
    int n;
    int32_t *cb = malloc((size_t)P * sizeof *cb);
    const int32_t *set = tr_cands_user(c, u, cb, &n);
    uint8_t *in = calloc((size_t)P, 1), *bought = calloc((size_t)P, 1);
    for (int k = 0; k < n; k++) in[set[k]] = 1;
    for (int k = 1; k < n; k++)
        if (set[k] <= set[k - 1]) {
            snprintf(why, wl, "user %d: set not ascending", u);
            free(in);
            free(bought);
            free(cb);
            return 1;
        }
    int nb = 0;
    double prof[256] = {0}, pn = 0;
    for (int64_t i = i0; i < i1; i++) {
        int p = h->items[i];
        if (!bought[p]) bought[p] = 1, nb++;
        for (int k = 0; k < E; k++) prof[k] += emb[(size_t)p * E + k];
    }
    int rc = 0;
    if (i0 == i1) goto out; /* cold start: checked elsewhere */
    int want = n_top > nb ? n_top : nb;
    if (n != want) {
        snprintf(why, wl, "user %d: size %d want %d", u, n, want);
        rc = 1;
        goto out;
    }
    for (int p = 0; p < P; p++)
        if (bought[p] && !in[p]) {
            snprintf(why, wl, "user %d: bought product %d missing", u, p);
            rc = 1;
            goto out;
        }
    for (int k = 0; k < E; k++) pn += prof[k] * prof[k];
    bf_pair *all = malloc((size_t)P * sizeof *all);
    int m = 0;
    for (int p = 0; p < P; p++) {
        if (bought[p]) continue;
        double d = 0, en = 0;
        for (int k = 0; k < E; k++) {
            d += prof[k] * emb[(size_t)p * E + k];
            en += (double)emb[(size_t)p * E + k] * emb[(size_t)p * E + k];
        }
        all[m++] = (bf_pair){d / sqrt(pn * en), p};
    }
    qsort(all, (size_t)m, sizeof *all, bf_cmp);
    int need = want - nb;
    if (need > 0) {
        double thr = all[need - 1].s;
        for (int k = 0; k < m; k++) {
            int expect = k < need, got = in[all[k].i];
            if (expect != got && fabs(all[k].s - thr) > 1e-5) {
                snprintf(why, wl, "user %d: product %d (cos %.6f, rank %d, threshold %.6f) %s", u,
                         all[k].i, all[k].s, k, thr, got ? "wrongly in" : "missing");
                rc = 1;
                break;
            }
        }
    }
    free(all);
out:
    free(in);
    free(bought);
    free(cb);
    return rc;
}

static int test_topn_bruteforce(void) {
    char err[NB_ERRLEN], why[256];
    int sizes[][4] = {{50, 8, 40, 10}, {300, 16, 120, 50}, {1000, 32, 600, 200}, {97, 4, 30, 96}};
    for (int c_ = 0; c_ < 4; c_++) {
        int P = sizes[c_][0], E = sizes[c_][1], nu = sizes[c_][2], n_top = sizes[c_][3];
        st_history h;
        tu_history_random(&h, P, nu, 12, 15, 100 + c_);
        float *emb = random_emb(P, E, 200 + c_);
        tr_cands c;
        T_ASSERT(tr_cands_build(&c, &h, emb, P, E, NULL, n_top, 1, err, sizeof err) == NB_OK, "%s",
                 err);
        for (int u = 0; u < nu; u++)
            T_ASSERT(check_user_bruteforce(&c, &h, emb, E, n_top, u, why, sizeof why) == 0,
                     "case %d: %s", c_, why);
        tr_cands_free(&c);
        free(emb);
        st_history_free(&h);
    }
    return T_PASS;
}

/* Hand-built: 2 users, 6 products on a circle in 2-D; history end excludes the train order. */
static int test_hand_example(void) {
    /* product k has angle 60k degrees */
    float emb[6 * 2];
    for (int k = 0; k < 6; k++) {
        float norm = k < 2 ? 1.0f : (float)(k + 1); /* cosine ignores the other norms */
        emb[2 * k] = (float)cos(k * M_PI / 3) * norm;
        emb[2 * k + 1] = (float)sin(k * M_PI / 3) * norm;
    }
    int script[] = {
        /* user 0: bought product 0 twice and 1 once (profile angle ~ 20 deg); the train
         * order (product 4) must not count */
        3,
        ST_PRIOR,
        -1,
        1,
        0,
        ST_PRIOR,
        5,
        2,
        0,
        1,
        ST_TRAIN,
        3,
        1,
        4,
        /* user 1: cold start (only a test order) */
        1,
        ST_TEST,
        -1,
        0,
    };
    st_history h;
    tu_history_script(&h, 6, 2, script);
    tr_cands c;
    char err[NB_ERRLEN];
    T_ASSERT(tr_cands_build(&c, &h, emb, 6, 2, NULL, 3, 1, err, sizeof err) == NB_OK, "%s", err);
    int n;
    int32_t cb[6]; /* a decoded set */
    const int32_t *s = tr_cands_user(&c, 0, cb, &n);
    /* bought {0, 1}; profile 2 e0 + e1 = (2.5, 0.87) at 19 deg; the next closest is
     * product 5 (-60 deg, 79 away), not 2 (120 deg, 101 away) */
    T_ASSERT(n == 3 && s[0] == 0 && s[1] == 1 && s[2] == 5, "user 0: n=%d {%d,%d,%d}", n, s[0],
             s[1], s[2]);
    s = tr_cands_user(&c, 1, cb, &n);
    /* popularity over histories: 0 (x2), 1 (x1), then ties at 0 -> lowest index 2 */
    T_ASSERT(n == 3 && s[0] == 0 && s[1] == 1 && s[2] == 2, "cold user: n=%d {%d,%d,%d}", n, s[0],
             s[1], s[2]);
    /* with hist_end at the user's end the train order's product 4 is bought, hence in */
    int64_t ends[2] = {h.user_order_off[1], h.user_order_off[2]};
    tr_cands c2;
    T_ASSERT(tr_cands_build(&c2, &h, emb, 6, 2, ends, 2, 1, err, sizeof err) == NB_OK, "%s", err);
    s = tr_cands_user(&c2, 0, cb, &n);
    T_ASSERT(n == 3 && s[0] == 0 && s[1] == 1 && s[2] == 4,
             "bought > n_top: all 3 bought kept, n=%d", n);
    /* recall of the default table: user 0's target {4} is not a candidate */
    tr_cand_recall r;
    T_ASSERT(tr_cands_recall(&c, &h, NULL, &r, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.n_users == 1 && r.n_targets == 1 && r.n_hits == 0 && r.micro == 0, "recall");
    T_ASSERT(tr_cands_recall(&c2, &h, NULL, &r, err, sizeof err) == NB_OK && r.micro == 1.0 &&
                 r.macro == 1.0 && r.mean_size == 3.0,
             "recall with the target in the history");
    tr_cands_free(&c2);
    ends[0] = 99;
    T_ASSERT(tr_cands_build(&c2, &h, emb, 6, 2, ends, 2, 1, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "user 100"),
             "bad hist_end named: %s", err);
    emb[3] = NAN;
    T_ASSERT(tr_cands_build(&c2, &h, emb, 6, 2, NULL, 2, 1, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "product index 1"),
             "NaN embedding named: %s", err);
    tr_cands_free(&c);
    tr_cands_free(&c2);
    st_history_free(&h);
    return T_PASS;
}

static int test_threads_identical(void) {
    int P = 2000, E = 32, nu = 1500;
    st_history h;
    tu_history_random(&h, P, nu, 20, 12, 5);
    float *emb = random_emb(P, E, 6);
    tr_cands a, b;
    char err[NB_ERRLEN];
    T_ASSERT(tr_cands_build(&a, &h, emb, P, E, NULL, 150, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_cands_build(&b, &h, emb, P, E, NULL, 150, 2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(memcmp(a.off, b.off, (size_t)(nu + 1) * sizeof *a.off) == 0, "offsets");
    T_ASSERT(memcmp(a.enc, b.enc, (size_t)a.off[nu]) == 0, "sets");
    T_ASSERT(memcmp(a.count, b.count, (size_t)nu * sizeof *a.count) == 0, "sizes");
    int32_t *cb = nb_xmalloc((size_t)P * sizeof *cb); /* a decoded set */
    tr_cand_recall r;
    T_ASSERT(tr_cands_recall(&a, &h, NULL, &r, err, sizeof err) == NB_OK, "%s", err);
    /* the hits recounted by hand */
    int64_t hits = 0, tg = 0;
    for (int u = 0; u < nu; u++) {
        for (int64_t o = h.user_order_off[u]; o < h.user_order_off[u + 1]; o++) {
            if (h.eval_set[o] != ST_TRAIN) continue;
            int n;
            const int32_t *s = tr_cands_user(&a, u, cb, &n);
            for (int64_t i = h.order_item_off[o]; i < h.order_item_off[o + 1]; i++) {
                int dup = 0;
                for (int64_t j = h.order_item_off[o]; j < i; j++) dup |= h.items[j] == h.items[i];
                if (dup) continue;
                tg++;
                for (int k = 0; k < n; k++) hits += s[k] == h.items[i];
            }
        }
    }
    T_ASSERT(r.n_targets == tg && r.n_hits == hits, "recall counts %lld/%lld vs %lld/%lld",
             (long long)r.n_hits, (long long)r.n_targets, (long long)hits, (long long)tg);
    T_ASSERT(r.micro > 0.1 && r.micro < 1, "recall %.3f plausible", r.micro);
    free(cb);
    tr_cands_free(&a);
    tr_cands_free(&b);
    free(emb);
    st_history_free(&h);
    return T_PASS;
}

/* ---- SQLite -------------------------------------------------------------------------- */

static int test_write_and_load(void) {
    char path[512], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/cands.db", t_tmpdir());
    sqlite3 *db;
    T_ASSERT(sqlite3_open(path, &db) == SQLITE_OK, "open");
    T_ASSERT(sqlite3_exec(db, st_schema_text, NULL, NULL, NULL) == SQLITE_OK, "schema: %s",
             sqlite3_errmsg(db));
    int P = 700, E = 16, nu = 300;
    st_history h;
    tu_history_random(&h, P, nu, 10, 10, 9);
    float *emb = random_emb(P, E, 10);
    tr_cands c;
    T_ASSERT(tr_cands_build(&c, &h, emb, P, E, NULL, 60, 2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_cands_write(db, 1, &c, &h, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "transaction"),
             "autocommit refused: %s", err);
    T_ASSERT(tu_begin_model(db, 1) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    T_ASSERT(tr_cands_write(db, 1, &c, &h, err, sizeof err) == NB_OK, "%s", err);
    /* written twice in the same transaction: the rows are replaced, not duplicated */
    T_ASSERT(tr_cands_write(db, 1, &c, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "commit");
    sqlite3_stmt *q;
    T_ASSERT(sqlite3_prepare_v2(db,
                                "SELECT count(*), sum(length(encoded)), sum(n_candidates) "
                                "FROM candidates",
                                -1, &q, NULL) == SQLITE_OK,
             "count");
    T_ASSERT(sqlite3_step(q) == SQLITE_ROW, "count row");
    T_ASSERT(sqlite3_column_int(q, 0) == nu, "rows %d", sqlite3_column_int(q, 0));
    double bpc = sqlite3_column_double(q, 1) / sqlite3_column_double(q, 2);
    T_ASSERT(sqlite3_column_int64(q, 2) == c.n_total && sqlite3_column_int64(q, 1) == c.off[nu] &&
                 bpc <= 2.0, "bytes/candidate %.3f", bpc);
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* reopen and read back every user through st_cand_load */
    T_ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "reopen");
    sqlite3_stmt *st;
    T_ASSERT(st_cand_stmt(db, &st, err, sizeof err) == NB_OK, "%s", err);
    int32_t *buf = nb_xmalloc((size_t)P * sizeof *buf);
    int32_t *cb = nb_xmalloc((size_t)P * sizeof *cb); /* a decoded set */
    for (int u = 0; u < nu; u++) {
        int n, m;
        const int32_t *want = tr_cands_user(&c, u, cb, &m);
        T_ASSERT(st_cand_load(st, 1, h.user_ids[u], P, buf, P, &n, err, sizeof err) == NB_OK, "%s",
                 err);
        T_ASSERT(n == m && memcmp(buf, want, (size_t)n * sizeof *buf) == 0, "user %d", u);
    }
    int n;
    T_ASSERT(st_cand_load(st, 1, 99999, P, buf, P, &n, err, sizeof err) == NB_ENOTFOUND &&
                 strstr(err, "99999"),
             "unknown user: %s", err);
    T_ASSERT(st_cand_load(st, 2, h.user_ids[0], P, buf, P, &n, err, sizeof err) == NB_ENOTFOUND,
             "unknown model");
    T_ASSERT(st_cand_load(st, 1, h.user_ids[0], P, buf, 5, &n, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "user 100"),
             "buffer too small named: %s", err);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* a corrupt row and a count mismatch */
    T_ASSERT(sqlite3_open(path, &db) == SQLITE_OK, "open rw");
    T_ASSERT(sqlite3_exec(db,
                          "UPDATE candidates SET encoded = x'0581' WHERE user_id = 100;"
                          "UPDATE candidates SET n_candidates = n_candidates + 1 "
                          "WHERE user_id = 103;",
                          NULL, NULL, NULL) == SQLITE_OK,
             "%s", sqlite3_errmsg(db));
    T_ASSERT(st_cand_stmt(db, &st, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_cand_load(st, 1, 100, P, buf, P, &n, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "truncated"),
             "corrupt row: %s", err);
    T_ASSERT(st_cand_load(st, 1, 103, P, buf, P, &n, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "n_candidates"),
             "count mismatch: %s", err);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(buf);
    free(cb);
    tr_cands_free(&c);
    free(emb);
    st_history_free(&h);
    return T_PASS;
}

int main(void) {
    T_RUN(test_encode_roundtrip);
    T_RUN(test_encode_rejects);
    T_RUN(test_decode_rejects_corrupt);
    T_RUN(test_topn_bruteforce);
    T_RUN(test_hand_example);
    T_RUN(test_threads_identical);
    T_RUN(test_write_and_load);
    return t_summary();
}
