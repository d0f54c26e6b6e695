/* names.c -- catalogue names from the store (see names.h). */
#include "names.h"

#include <stdlib.h>
#include <string.h>

#include "nb_err.h"

/* See names.h. Safe on a zeroed or partly loaded nm. */
void tr_names_free(tr_names *nm) {
    if (!nm) return;
    for (int i = 0; i < nm->n; i++) free(nm->name[i]);
    free(nm->name);
    memset(nm, 0, sizeof *nm);
}

/* See names.h: one query over products in product_id order, checked against catalog. */
int tr_names_load(tr_names *nm, sqlite3 *db, const st_history *catalog, char *err, size_t errlen) {
    int rc = NB_OK, P = catalog->n_products, p = 0;
    sqlite3_stmt *q = NULL;
    memset(nm, 0, sizeof *nm);
    nm->name = nb_xcalloc((size_t)(P > 0 ? P : 1), sizeof *nm->name);
    nm->n = P;
    if (sqlite3_prepare_v2(db, "SELECT product_id, name FROM products ORDER BY product_id", -1, &q,
                           NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "reading product names: %s", sqlite3_errmsg(db));
        goto done;
    }
    int st;
    while ((st = sqlite3_step(q)) == SQLITE_ROW) {
        int32_t id = sqlite3_column_int(q, 0);
        if (p >= P || catalog->product_ids[p] != id) {
            rc = nb_err(err, errlen, NB_EMISMATCH,
                        "product names: product_id %d differs from the catalogue's %d", (int)id,
                        p < P ? (int)catalog->product_ids[p] : -1);
            goto done;
        }
        const char *s = (const char *)sqlite3_column_text(q, 1);
        nm->name[p++] = strdup(s ? s : "");
    }
    if (st != SQLITE_DONE) {
        rc = nb_err(err, errlen, NB_EDB, "reading product names: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (p != P)
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "product names: %d products in table products, %d in the catalogue", p, P);
done:
    sqlite3_finalize(q);
    if (rc != NB_OK) tr_names_free(nm);
    return rc;
}

/* Loads id -> name pairs from `sql` (two columns, ordered by id) into n. Returns NB_OK or
 * NB_EDB. n owns its arrays (st_idnames_free). */
static int idnames_query(st_idnames *n, sqlite3 *db, const char *sql, char *err, size_t errlen) {
    int rc = NB_OK, cap = 0;
    sqlite3_stmt *st = NULL;
    memset(n, 0, sizeof *n);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
        goto done;
    }
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n->n == cap) {
            cap = cap ? 2 * cap : 64;
            n->ids = nb_xrealloc(n->ids, (size_t)cap * sizeof *n->ids);
            n->names = nb_xrealloc(n->names, (size_t)cap * sizeof *n->names);
        }
        const unsigned char *t = sqlite3_column_text(st, 1);
        n->ids[n->n] = (int32_t)sqlite3_column_int64(st, 0);
        n->names[n->n] = strdup(t ? (const char *)t : "");
        if (!n->names[n->n]) abort();
        n->n++;
    }
    if (s != SQLITE_DONE) rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    return rc;
}

/* Frees n's names and ids and zeroes it (safe on a zeroed n). */
void st_idnames_free(st_idnames *n) {
    for (int i = 0; i < n->n; i++) free(n->names[i]);
    free(n->names);
    free(n->ids);
    memset(n, 0, sizeof *n);
}

/* The name of id (binary search over the sorted ids), "" when unknown. Borrowed from n. */
const char *st_idnames_get(const st_idnames *n, int32_t id) {
    int lo = 0, hi = n->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (n->ids[mid] == id) return n->names[mid];
        if (n->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return "";
}

/* See names.h. */
int st_idnames_load(st_idnames *n, sqlite3 *db, int which, char *err, size_t errlen) {
    return idnames_query(n, db,
                         which == ST_AISLES ? "SELECT aisle_id, name FROM aisles ORDER BY aisle_id"
                                            : "SELECT department_id, name FROM departments "
                                              "ORDER BY department_id",
                         err, errlen);
}
