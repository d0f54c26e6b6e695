/* nb-import -- load Instacart-layout CSV files into a new nextbasket store.
 *
 *   nb-import --csv DIR --db FILE [--catalog DIR2] [--quiet]
 *
 * All or nothing: FILE is replaced only when the whole import succeeded. Progress (rows,
 * rows/s) goes to stderr when it is a terminal; a summary line always ends the output.
 * Exit status 0 on success, 1 on bad input or any failure, 2 on bad flags. */
#include "import.h"
#include "nb_err.h"
#include "nb_flags.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *csv, *catalog, *db;
    int quiet;
} import_flags;

#define O(field) offsetof(import_flags, field)
static const nb_flag FLAGS[] = {
    {"csv", NB_F_STR, O(csv), 0, 0, "DIR", "", "folder with orders.csv, order_products__prior.csv and (optionally) order_products__train.csv, plus the catalogue unless --catalog is given", NB_F_REQUIRED, NULL, NULL},
    {"catalog", NB_F_STR, O(catalog), 0, 0, "DIR2", "", "take products.csv, aisles.csv, departments.csv from DIR2", 0, NULL, NULL},
    {"db", NB_F_STR, O(db), 0, 0, "FILE", "", "the store to create or replace (atomically)", NB_F_REQUIRED, NULL, NULL},
    {"quiet", NB_F_BOOL, O(quiet), 0, 0, NULL, "", "no progress display even on a terminal", 0, NULL, NULL},
};
#undef O
#define USAGE "usage: nb-import --csv DIR --db FILE [--catalog DIR2] [--quiet]\n"

int main(int argc, char **argv) {
    import_flags f = {0};
    int ex = nb_flags_main("nb-import", USAGE, FLAGS, NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    const char *csv = f.csv, *catalog = f.catalog, *db = f.db;
    int quiet = f.quiet;
    /* Only this thread ever calls SQLite (the import's parser thread does not), so SQLite's
     * own mutexes and memory statistics are pure overhead here: about 5% of the import. */
    sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    char err[NB_ERRLEN];
    st_import_stats s;
    int rc = st_import(csv, catalog, db, !quiet && isatty(2), &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nb-import: %s\n", err);
        fprintf(stderr, "nb-import: failed; %s is unchanged\n", db);
        return 1;
    }
    printf("nb-import: %lld users, %lld orders (%lld prior, %lld train, %lld test), %lld items, "
           "%lld products, %lld aisles, %lld departments in %.2f s (rows %.2f s, indexes %.2f s, fsync %.2f s) "
           "-> %s\n",
           s.users, s.orders, s.orders_prior, s.orders_train, s.orders_test, s.items, s.products, s.aisles,
           s.departments, s.seconds, s.seconds_rows, s.seconds_index, s.seconds_fsync, db);
    return 0;
}
