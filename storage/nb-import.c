/* nb-import -- load Instacart-layout CSV files into a new nextbasket store.
 *
 *   nb-import --csv DIR --db FILE [--catalog DIR2] [--quiet]
 *
 * All or nothing: FILE is replaced only when the whole import succeeded. Progress (rows,
 * rows/s) goes to stderr when it is a terminal; a summary line always ends the output.
 * Exit status 0 on success, 1 on bad input or any failure, 2 on bad flags. */
#include "import.h"
#include "nb_err.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fputs("usage: nb-import --csv DIR --db FILE [--catalog DIR2] [--quiet]\n"
          "  --csv DIR      folder with orders.csv, order_products__prior.csv and (optionally)\n"
          "                 order_products__train.csv, plus the catalogue unless --catalog is given\n"
          "  --catalog DIR2 take products.csv, aisles.csv, departments.csv from DIR2\n"
          "  --db FILE      the store to create or replace (atomically)\n"
          "  --quiet        no progress display even on a terminal\n",
          f);
}

int main(int argc, char **argv) {
    const char *csv = NULL, *catalog = NULL, *db = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--csv") || !strcmp(a, "--catalog") || !strcmp(a, "--db")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "nb-import: %s needs a value\n", a);
                return 2;
            }
            const char **dst = !strcmp(a, "--csv") ? &csv : !strcmp(a, "--db") ? &db : &catalog;
            *dst = argv[++i];
        } else {
            fprintf(stderr, "nb-import: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!csv || !db) {
        fprintf(stderr, "nb-import: %s is required\n", !csv ? "--csv DIR" : "--db FILE");
        usage(stderr);
        return 2;
    }
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
