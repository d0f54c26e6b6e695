/* nb-import -- load Instacart-layout CSV files into a new nextbasket store.
 *
 *   nb-import --csv DIR --db FILE [--catalog DIR2] [--quiet]
 *
 * All or nothing: FILE is replaced only when the whole import succeeded; interrupted (Ctrl-C,
 * SIGTERM, SIGHUP) it removes its temporary store before dying. Progress (rows,
 * rows/s) goes to stderr when it is a terminal; a summary line always ends the output.
 * Exit status 0 on success, 1 on bad input or any failure, 2 on bad flags. */
#include "atomic_file.h"
#include "import.h"
#include "nb_err.h"
#include "nb_flags.h"

#include <signal.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The temporary store of this process and its SQLite side files, named before any signal
 * handler can run (the handler may only call async-signal-safe functions such as unlink). */
static char *g_tmp[4];

/* Ctrl-C, SIGTERM, SIGHUP, or abort() (a failed allocation outside the import's checked
 * paths): removes the half-built temporary store, which can be as large as the store, then
 * dies of the same signal (SA_RESETHAND restored the default action; the signal is blocked
 * in the handler, so the raise takes effect when it returns). After a rename the names no
 * longer exist and unlink does nothing. */
static void remove_tmp_and_die(int sig) {
    for (int i = 0; i < 4; i++)
        if (g_tmp[i]) unlink(g_tmp[i]);
    raise(sig);
}

/* Names the temporary files and installs remove_tmp_and_die for the signals not ignored. */
static void clean_tmp_on_signals(const char *db) {
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char *tmp = nb_tmp_name(db);
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(tmp) + 16;
        g_tmp[i] = nb_xmalloc(n);
        snprintf(g_tmp[i], n, "%s%s", tmp, suffix[i]);
    }
    free(tmp);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_tmp_and_die;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        /* a signal ignored by whoever started us (nohup, a background job's SIGINT) stays so */
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

typedef struct {
    const char *csv, *catalog, *db;
    int quiet;
} import_flags;

#define O(field) offsetof(import_flags, field)
static const nb_flag FLAGS[] = {
    {"csv", NB_F_STR, O(csv), 0, 0, "DIR", "",
     "folder with orders.csv, order_products__prior.csv and (optionally) "
     "order_products__train.csv, plus the catalogue unless --catalog is given",
     NB_F_REQUIRED, NULL, NULL},
    {"catalog", NB_F_STR, O(catalog), 0, 0, "DIR2", "",
     "take products.csv, aisles.csv, departments.csv from DIR2", 0, NULL, NULL},
    {"db", NB_F_STR, O(db), 0, 0, "FILE", "", "the store to create or replace (atomically)",
     NB_F_REQUIRED, NULL, NULL},
    {"quiet", NB_F_BOOL, O(quiet), 0, 0, NULL, "", "no progress display even on a terminal", 0,
     NULL, NULL},
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
    clean_tmp_on_signals(db);
    char err[NB_ERRLEN];
    st_import_stats s;
    int rc = st_import(csv, catalog, db, !quiet && isatty(2), &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nb-import: %s\n", err);
        fprintf(stderr, "nb-import: failed; %s is unchanged\n", db);
        return 1;
    }
    printf("nb-import: %lld users, %lld orders (%lld prior, %lld train, %lld test), %lld items, "
           "%lld products, %lld aisles, %lld departments in %.2f s (rows %.2f s, indexes %.2f s, "
           "fsync %.2f s) "
           "-> %s\n",
           s.users, s.orders, s.orders_prior, s.orders_train, s.orders_test, s.items, s.products,
           s.aisles, s.departments, s.seconds, s.seconds_rows, s.seconds_index, s.seconds_fsync,
           db);
    return 0;
}
