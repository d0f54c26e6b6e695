/* names.h -- catalogue names from the store: product names by product index, and aisle and
 * department names by id. (tr_names keeps the prefix it had in train/explain.h so that
 * branches using it still merge.)
 */
#ifndef ST_NAMES_H
#define ST_NAMES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

/* Product names by product index (ascending product_id order, as in st_history). */
typedef struct {
    int n;
    char **name; /* [n], each malloc'd */
} tr_names;

/* Loads the names of catalog's products from table products (product_id must match
 * catalog->product_ids one to one). Returns NB_OK, NB_EMISMATCH (message names the
 * product_id) or NB_EDB. nm owns everything; free with tr_names_free. */
int tr_names_load(tr_names *nm, sqlite3 *db, const st_history *catalog, char *err, size_t errlen);
void tr_names_free(tr_names *nm);

/* id -> name for aisles or departments (sorted by id, binary search). */
typedef struct {
    int n;
    int32_t *ids;
    char **names;
} st_idnames;

enum { ST_AISLES, ST_DEPARTMENTS };

/* Loads every aisle (which = ST_AISLES) or department (ST_DEPARTMENTS) name into n.
 * Returns NB_OK or NB_EDB. n owns its arrays (st_idnames_free, safe on a zeroed n). */
int st_idnames_load(st_idnames *n, sqlite3 *db, int which, char *err, size_t errlen);
void st_idnames_free(st_idnames *n);

/* The name of id, "" when unknown. Borrowed from n. */
const char *st_idnames_get(const st_idnames *n, int32_t id);

#endif
