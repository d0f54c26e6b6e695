/* test_explain.c -- explanations: exact texts on a hand-built history, and on random
 * histories every number in the text recounted from the history. */
#include "cands_util.h"
#include "explain.h"
#include "harness.h"
#include "nb_err.h"
#include "repfeat.h"
#include "store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

extern const char st_schema_text[]; /* build/gen/schema_sql.c */

/* A store with the catalogue of h named "prod-<index>"; returns the open connection. */
static sqlite3 *names_db(const st_history *h) {
    char path[512];
    snprintf(path, sizeof path, "%s/names.db", t_tmpdir());
    remove(path);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) return NULL;
    sqlite3_exec(db, st_schema_text, NULL, NULL, NULL);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int p = 0; p < h->n_products; p++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO products VALUES (%d, 'prod-%d', 1, 1)",
                 (int)h->product_ids[p], p);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return db;
}

static int test_explain_hand(void) {
    st_history h;
    tu_history_script(&h, TU_K_P, TU_K_USERS, tu_k_script);
    char err[NB_ERRLEN], out[256];
    sqlite3 *db = names_db(&h);
    T_ASSERT(db, "names db");
    tr_names nm;
    T_ASSERT(tr_names_load(&nm, db, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nm.n == 10 && !strcmp(nm.name[5], "prod-5"), "names loaded");
    /* embeddings: product k at angle 50k degrees; product 9 points exactly like product 5 */
    float emb[10 * 2];
    for (int k = 0; k < 10; k++) {
        double a = (k == 9 ? 5 : k) * 50.0 * M_PI / 180.0;
        emb[2 * k] = (float)cos(a) * (1 + k);
        emb[2 * k + 1] = (float)sin(a) * (1 + k);
    }
    tr_explainer x = {.n_products = 10, .E = 2, .emb = emb, .names = &nm};
    tr_product_stats s;
    tr_features f;
    T_ASSERT(tr_product_stats_compute(&s, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_features_init(&f, 10, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_features_user(&f, &h, 0, h.user_order_off[0] + 6, &s, err, sizeof err) == NB_OK,
             "%s", err);
    struct {
        int p;
        const char *want;
    } cases[] = {
        {1, "bought in 4 of your last 5 orders"},
        {2, "you buy this in 33% of your orders (2 of 6); not bought in your last 3 orders"},
        {5,
         "you buy this in 33% of your orders (2 of 6); last bought in the order before your last"},
        {6, "you buy this in 17% of your orders (1 of 6); last bought in your last order"},
        {9, "new for you: often bought with prod-5"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n = tr_explain(out, sizeof out, &x, &f, cases[c].p);
        T_ASSERT(n == (int)strlen(out) && !strcmp(out, cases[c].want), "product %d: '%s'",
                 cases[c].p, out);
    }
    /* product 0 (angle 0): of the user's products, 1 (50 deg away) beats 6 (300 = -60 deg) */
    T_ASSERT(tr_explain(out, sizeof out, &x, &f, 0) > 0 &&
                 !strcmp(out, "new for you: often bought with prod-1"),
             "product 0: '%s'", out);
    tr_explainer xn = {.n_products = 10, .E = 2, .emb = emb, .names = NULL};
    T_ASSERT(tr_explain(out, sizeof out, &xn, &f, 9) > 0 &&
                 !strcmp(out, "new for you: often bought with product #5"),
             "no names: '%s'", out);
    T_ASSERT(tr_explain(out, 10, &x, &f, 1) == 9 && strlen(out) == 9, "truncated to the buffer");
    T_ASSERT(tr_explain(out, sizeof out, &x, &f, 10) == -1 && out[0] == 0, "out of range");
    /* fewer than 5 orders */
    T_ASSERT(tr_features_user(&f, &h, 2, h.user_order_off[3], &s, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(
        tr_explain(out, sizeof out, &x, &f, 9) > 0 &&
            !strcmp(out,
                    "you buy this in 67% of your orders (2 of 3); last bought in your last order"),
        "user 2: '%s'", out);
    /* no history */
    T_ASSERT(tr_features_user(&f, &h, 3, h.user_order_off[4], &s, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(tr_explain(out, sizeof out, &x, &f, 4) > 0 &&
                 !strcmp(out, "popular with other shoppers"),
             "cold user: '%s'", out);
    /* a catalogue that does not match the products table */
    h.product_ids[3] = 32;
    tr_names bad;
    T_ASSERT(tr_names_load(&bad, db, &h, err, sizeof err) == NB_EMISMATCH && strstr(err, "31"),
             "mismatch named: %s", err);
    sqlite3_close(db);
    tr_names_free(&nm);
    tr_features_free(&f);
    tr_product_stats_free(&s);
    st_history_free(&h);
    return T_PASS;
}

/* Random histories: the numbers in each text recounted directly from the orders. */
static int test_explain_consistent(void) {
    int P = 200, nu = 300, E = 8;
    st_history h;
    tu_history_random(&h, P, nu, 25, 10, 31);
    float *emb = nb_xmalloc((size_t)P * E * sizeof *emb);
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (int i = 0; i < P * E; i++) emb[i] = (float)nb_rng_normal(&r);
    tr_explainer x = {.n_products = P, .E = E, .emb = emb, .names = NULL};
    tr_product_stats s;
    tr_features f;
    char err[NB_ERRLEN], out[256];
    T_ASSERT(tr_product_stats_compute(&s, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_features_init(&f, P, err, sizeof err) == NB_OK, "%s", err);
    int kinds[3] = {0, 0, 0};
    for (int u = 0; u < nu; u++) {
        int64_t end = h.user_order_off[u + 1];
        T_ASSERT(tr_features_user(&f, &h, u, end, &s, err, sizeof err) == NB_OK, "%s", err);
        /* the user's orders with items, oldest first */
        int64_t ord[64];
        int n = 0;
        for (int64_t o = h.user_order_off[u]; o < end; o++)
            if (h.order_item_off[o + 1] > h.order_item_off[o]) ord[n++] = o;
        for (int p = 0; p < P; p += 7) {
            T_ASSERT(tr_explain(out, sizeof out, &x, &f, p) > 0, "text for %d", p);
            int in[64], with = 0, last = -1;
            for (int q = 0; q < n; q++) {
                in[q] = 0;
                for (int64_t i = h.order_item_off[ord[q]]; i < h.order_item_off[ord[q] + 1]; i++)
                    in[q] |= h.items[i] == p;
                if (in[q]) with++, last = q;
            }
            int a, b, c, d, e = -1;
            /* %n after the last literal: the whole text must match the form */
            if (sscanf(out, "bought in %d of your last 5 orders%n", &a, &e) == 1 &&
                e == (int)strlen(out)) {
                int l5 = 0;
                for (int q = n - 5; q < n; q++) l5 += q >= 0 && in[q];
                T_ASSERT(n >= 5 && a == l5 && a >= 3, "user %d p %d: '%s' (%d)", u, p, out, l5);
                kinds[0]++;
            } else if (sscanf(out, "bought in %d of your %d orders%n", &a, &b, &e) == 2 &&
                       e == (int)strlen(out)) {
                T_ASSERT(b == n && n < 5 && a == with, "user %d p %d: '%s'", u, p, out);
                kinds[0]++;
            } else if (sscanf(out, "you buy this in %d%% of your orders (%d of %d)", &a, &b, &c) ==
                       3) {
                T_ASSERT(b == with && c == n && a == (int)lround(100.0 * with / n),
                         "user %d p %d: '%s' (%d of %d)", u, p, out, with, n);
                const char *tail = strchr(out, ';');
                T_ASSERT(tail, "tail");
                e = -1;
                if (sscanf(tail, "; not bought in your last %d orders%n", &d, &e) == 1 &&
                    e == (int)strlen(tail))
                    T_ASSERT(d == n - 1 - last && d >= 2, "user %d p %d: '%s'", u, p, out);
                else if (!strcmp(tail, "; last bought in your last order"))
                    T_ASSERT(last == n - 1, "user %d p %d: '%s'", u, p, out);
                else
                    T_ASSERT(!strcmp(tail, "; last bought in the order before your last") &&
                                 last == n - 2,
                             "user %d p %d: '%s'", u, p, out);
                kinds[1]++;
            } else {
                T_ASSERT(with == 0, "user %d p %d bought %d times: '%s'", u, p, with, out);
                if (n == 0) {
                    T_ASSERT(!strcmp(out, "popular with other shoppers"), "'%s'", out);
                } else {
                    T_ASSERT(sscanf(out, "new for you: often bought with product #%d", &a) == 1,
                             "'%s'", out);
                    int bought = 0;
                    for (int q = 0; q < n; q++)
                        for (int64_t i = h.order_item_off[ord[q]]; i < h.order_item_off[ord[q] + 1];
                             i++)
                            bought |= h.items[i] == a;
                    T_ASSERT(bought, "user %d: companion %d was bought by the user", u, a);
                }
                kinds[2]++;
            }
        }
    }
    T_ASSERT(kinds[0] > 10 && kinds[1] > 10 && kinds[2] > 10, "all kinds seen: %d %d %d", kinds[0],
             kinds[1], kinds[2]);
    tr_features_free(&f);
    tr_product_stats_free(&s);
    free(emb);
    st_history_free(&h);
    return T_PASS;
}

int main(void) {
    T_RUN(test_explain_hand);
    T_RUN(test_explain_consistent);
    return t_summary();
}
