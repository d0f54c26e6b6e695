/* test_prerank.c -- precomputed rankings: the stored form (infer/prerank.h) round trip and
 * every refusal of its decoder, the kept length, explanations as data against their text,
 * and the conditional write of storage/userrank.h (a row is written only while the user's
 * order count is the one it was ranked from). */
#include "explain.h"
#include "harness.h"
#include "nb_err.h"
#include "prerank.h"
#include "userrank.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char st_schema_text[]; /* build/gen/schema_sql.c */

/* n entries in the serving order over products [0, P), with every why kind. */
static void entries(tr_prerank_entry *e, int n) {
    for (int i = 0; i < n; i++) {
        e[i].idx = (i * 37) % 1000;
        e[i].score = 1.0f - (float)i / 64.0f; /* descending; i = 64: 0 */
        e[i].why = (tr_why){1 + i % 5, i, i + 5, i % 3};
    }
    e[3].score = e[2].score; /* a tie: broken by the lower index */
    if (e[3].idx < e[2].idx) {
        int32_t t = e[3].idx;
        e[3].idx = e[2].idx, e[2].idx = t;
    }
}

static int test_round_trip(void) {
    tr_prerank_entry e[100], d[100];
    char err[NB_ERRLEN];
    entries(e, 100);
    uint8_t *b = NULL;
    size_t len = 0;
    tr_prerank_encode(e, 100, 130, &b, &len);
    T_ASSERT(len == TR_PRERANK_HEAD + 100 * TR_PRERANK_ENTRY && !memcmp(b, "NBR1", 4), "size %zu",
             len);
    int n = 0, nt = 0;
    T_ASSERT(tr_prerank_decode(b, len, 1000, d, 100, &n, &nt, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(n == 100 && nt == 130, "n %d of %d", n, nt);
    for (int i = 0; i < n; i++)
        T_ASSERT(d[i].idx == e[i].idx && d[i].score == e[i].score &&
                     !memcmp(&d[i].why, &e[i].why, sizeof(tr_why)),
                 "entry %d", i);
    /* little-endian bytes, whatever the machine: entry 1's product index 37 at offset 33 */
    T_ASSERT(b[33] == 37 && b[34] == 0 && b[35] == 0 && b[36] == 0, "little-endian");
    free(b);
    /* empty rankings encode too (a user with no candidate: never stored, but valid) */
    tr_prerank_encode(e, 0, 0, &b, &len);
    T_ASSERT(tr_prerank_decode(b, len, 1000, d, 100, &n, &nt, err, sizeof err) == NB_OK && n == 0,
             "%s", err);
    free(b);
    return T_PASS;
}

/* Decodes a copy of b[len] after fix(copy) and expects NB_EFORMAT with want in the message. */
static int refused(const uint8_t *b, size_t len, size_t cut, int at, uint8_t byte, int cap,
                   const char *want) {
    uint8_t *c = malloc(len);
    memcpy(c, b, len);
    if (at >= 0) c[at] = byte;
    tr_prerank_entry d[100];
    char err[NB_ERRLEN] = "";
    int n = -1, nt = -1;
    int rc = tr_prerank_decode(c, len - cut, 1000, d, cap, &n, &nt, err, sizeof err);
    free(c);
    T_ASSERT(rc == NB_EFORMAT && strstr(err, want) && n == 0 && nt == 0,
             "rc %d, '%s' (want '%s')", rc, err, want);
    return T_PASS;
}

static int test_refusals(void) {
    tr_prerank_entry e[100];
    entries(e, 100);
    uint8_t *b = NULL;
    size_t len = 0;
    tr_prerank_encode(e, 20, 130, &b, &len);
    int f = 0;
    f |= refused(b, len, 0, 0, 'X', 100, "magic");
    f |= refused(b, 3, 0, -1, 0, 100, "magic");               /* shorter than a header */
    f |= refused(b, len, 1, -1, 0, 100, "bytes");             /* truncated */
    f |= refused(b, len, 0, -1, 0, 10, "room for 10");        /* more entries than room */
    f |= refused(b, len, 0, 8, 200, 100, "of 130");           /* n > n_total */
    f |= refused(b, len, 0, 5, 4, 100, "1000 products");      /* n_total 1154 > P */
    f |= refused(b, len, 0, 12 + 21 * 4 + 3, 0x80, 100, "product index -"); /* idx < 0 */
    f |= refused(b, len, 0, 12 + 21 * 4 + 1, 0x10, 100, "product index 4244"); /* >= P */
    f |= refused(b, len, 0, 12 + 21 * 6 + 8, 0, 100, "why kind 0");
    f |= refused(b, len, 0, 12 + 21 * 6 + 8, 6, 100, "why kind 6");
    f |= refused(b, len, 0, 12 + 21 * 7 + 6, 0x7f, 100, "out of order"); /* .89 -> .996 */
    free(b);
    /* a score that is not a number */
    e[5].score = NAN;
    tr_prerank_encode(e, 20, 130, &b, &len);
    f |= refused(b, len, 0, -1, 0, 100, "score nan");
    free(b);
    entries(e, 100);
    /* two equal entries are out of order too (the order is strict) */
    e[9] = e[8];
    tr_prerank_encode(e, 20, 130, &b, &len);
    f |= refused(b, len, 0, -1, 0, 100, "out of order");
    free(b);
    return f ? T_FAIL : T_PASS;
}

static int test_keep(void) {
    T_ASSERT(tr_prerank_keep(130, 3) == 130, "all of a short list");
    T_ASSERT(tr_prerank_keep(900, 3) == TR_EF1_M, "the expected-F1 programme's %d", TR_EF1_M);
    T_ASSERT(tr_prerank_keep(900, 450) == 450, "every entry of the threshold basket");
    T_ASSERT(tr_prerank_keep(0, 0) == 0, "none");
    return T_PASS;
}

/* tr_why_text of each kind is the text tr_explain writes (test_explain.c checks those
 * texts against hand-counted histories); bad kinds and indices give -1 and "". */
static int test_why_text(void) {
    const char *names[] = {"apples", "bread"};
    tr_names nm = {.n = 2, .name = (char **)names};
    tr_explainer x = {.n_products = 2, .E = 0, .emb = NULL, .names = &nm};
    struct {
        tr_why w;
        const char *want;
    } cases[] = {
        {{TR_WHY_LAST5, 4, 9, 0}, "bought in 4 of your last 5 orders"},
        {{TR_WHY_LAST5, 3, 3, 0}, "bought in 3 of your 3 orders"},
        {{TR_WHY_SHARE, 2, 6, 3}, "you buy this in 33% of your orders (2 of 6); not bought in your last 3 orders"},
        {{TR_WHY_SHARE, 1, 6, 1}, "you buy this in 17% of your orders (1 of 6); last bought in the order before your last"},
        {{TR_WHY_SHARE, 2, 3, 0}, "you buy this in 67% of your orders (2 of 3); last bought in your last order"},
        {{TR_WHY_NEW, 1, 0, 0}, "new for you: often bought with bread"},
        {{TR_WHY_POPULAR, 0, 0, 0}, "popular with other shoppers"},
        {{TR_WHY_NEIGHBOURS, 0, 0, 0}, "people who buy what you buy also buy this"},
    };
    char out[256];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n = tr_why_text(out, sizeof out, &x, &cases[c].w);
        T_ASSERT(n == (int)strlen(out) && !strcmp(out, cases[c].want), "case %zu: '%s'", c, out);
    }
    tr_explainer xn = {.n_products = 2};
    T_ASSERT(tr_why_text(out, sizeof out, &xn, &(tr_why){TR_WHY_NEW, 0, 0, 0}) > 0 &&
                 !strcmp(out, "new for you: often bought with product #0"),
             "no names: '%s'", out);
    tr_why bad[] = {{0, 0, 0, 0}, {6, 0, 0, 0}, {TR_WHY_NEW, 2, 0, 0}, {TR_WHY_NEW, -1, 0, 0},
                    {TR_WHY_SHARE, 1, 0, 0}};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++)
        T_ASSERT(tr_why_text(out, sizeof out, &x, &bad[c]) == -1 && out[0] == 0, "bad %zu", c);
    return T_PASS;
}

/* The conditional write: user 7 has 2 orders. A row ranked from 2 orders is written; one
 * ranked from 1 (an order came in since) is not; an order appended (as POST /orders does:
 * the delete is in storage/orders.c) makes the next 2-order write a no-op. */
static int test_conditional_put(void) {
    char path[512], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/ur.db", t_tmpdir());
    remove(path);
    sqlite3 *db = NULL;
    sqlite3_stmt *get = NULL;
    T_ASSERT(sqlite3_open(path, &db) == SQLITE_OK, "open");
    T_ASSERT(sqlite3_exec(db, st_schema_text, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    T_ASSERT(sqlite3_exec(db,
                          "INSERT INTO users VALUES (7), (8);"
                          "INSERT INTO models(path, checksum, hyper_params, metrics) VALUES ('m', 'x', '{}', '{}');"
                          "INSERT INTO orders VALUES (1, 7, 0, 1, 0, 0, NULL), (2, 7, 1, 2, 0, 0, 3);",
                          NULL, NULL, NULL) == SQLITE_OK,
             "%s", sqlite3_errmsg(db));
    T_ASSERT(st_prerank_get_stmt(db, &get, err, sizeof err) == NB_OK && get, "%s", err);
    const uint8_t row[] = "NBR1-row";
    st_prerank_row rows[] = {{7, 1, row, 8}, {7, 2, row, 8}, {8, 0, row, 5}};
    uint8_t w[3];
    T_ASSERT(st_prerank_put_batch(db, 1, rows, 3, w, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(w[0] == 0, "ranked from 1 order, the store has 2: not written");
    T_ASSERT(w[1] == 1, "ranked from 2 orders: written");
    T_ASSERT(w[2] == 1, "a user with no order, ranked from none: written");
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    T_ASSERT(st_prerank_get(get, 1, 7, &buf, &cap, &len, err, sizeof err) == NB_OK && len == 8 &&
                 !memcmp(buf, row, 8),
             "read back (%zu bytes)", len);
    T_ASSERT(st_prerank_get(get, 2, 7, &buf, &cap, &len, err, sizeof err) == NB_ENOTFOUND, "other model");
    T_ASSERT(sqlite3_exec(db, "INSERT INTO orders VALUES (3, 7, 1, 3, 0, 0, 3)", NULL, NULL, NULL) ==
                 SQLITE_OK,
             "append");
    T_ASSERT(sqlite3_exec(db, "DELETE FROM user_rankings", NULL, NULL, NULL) == SQLITE_OK, "clear");
    T_ASSERT(st_prerank_put_batch(db, 1, rows + 1, 1, w, err, sizeof err) == NB_OK && w[0] == 0,
             "after an appended order the 2-order ranking is stale (%d)", w[0]);
    /* inside a caller's transaction: refused, nothing written */
    T_ASSERT(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK, "begin");
    T_ASSERT(st_prerank_put_batch(db, 1, rows + 2, 1, w, err, sizeof err) == NB_EDB &&
                 strstr(err, "BEGIN") && w[0] == 0,
             "nested: %s", err);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(get);
    /* a store from before the table: no statement, every read is "no row" */
    T_ASSERT(sqlite3_exec(db, "DROP TABLE user_rankings", NULL, NULL, NULL) == SQLITE_OK, "drop");
    T_ASSERT(st_prerank_get_stmt(db, &get, err, sizeof err) == NB_OK && !get, "no statement");
    T_ASSERT(st_prerank_get(get, 1, 7, &buf, &cap, &len, err, sizeof err) == NB_ENOTFOUND, "no row");
    free(buf);
    sqlite3_close(db);
    return T_PASS;
}

int main(void) {
    T_RUN(test_round_trip);
    T_RUN(test_refusals);
    T_RUN(test_keep);
    T_RUN(test_why_text);
    T_RUN(test_conditional_put);
    return t_summary();
}
