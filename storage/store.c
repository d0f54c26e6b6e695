/* store.c -- open, create and version-check the SQLite store (see store.h, schema.sql). */
#include "store.h"
#include "nb_err.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char st_schema_text[]; /* build/gen/schema_sql.c, made from schema.sql */

const char *st_schema_sql(void) { return st_schema_text; }

/* Returns NB_OK and the database's PRAGMA user_version in *v, or NB_EDB. */
static int read_user_version(sqlite3 *db, const char *path, int *v, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = NB_OK;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = nb_err(err, errlen, NB_EDB, "%s: cannot read the schema version: %s", path,
                    sqlite3_errmsg(db));
        goto done;
    }
    *v = sqlite3_column_int(st, 0);
done:
    sqlite3_finalize(st);
    return rc;
}

/* Opens the store at path (read-only or read-write, never creating it) and checks its
 * schema version. Returns NB_OK and *db (caller closes it), or NB_ENOTFOUND (no file),
 * NB_EDB (SQLite refused it, e.g. not a database), NB_EMISMATCH (user_version differs). On
 * error *db is NULL. */
int st_open(sqlite3 **db, const char *path, int readonly, char *err, size_t errlen) {
    *db = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return nb_err(err, errlen, errno == ENOENT ? NB_ENOTFOUND : NB_EIO,
                      "%s: no such store (%s); create it with nb-import --csv DIR --db %s", path,
                      strerror(errno), path);
    sqlite3 *d = NULL;
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
    int rc = NB_OK, v = -1;
    if (sqlite3_open_v2(path, &d, flags, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: cannot open store: %s", path,
                    d ? sqlite3_errmsg(d) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(d, 5000);
    /* Memory-mapped reads: a page is a pointer into the OS cache instead of a pread() copy,
     * which halves the cost of whole-store scans and keeps per-user lookups syscall-free.
     * (Safe here: a store is replaced by rename, never truncated in place.) */
    sqlite3_exec(d, "PRAGMA mmap_size=2147418112", NULL, NULL, NULL);
    rc = read_user_version(d, path, &v, err, errlen);
    if (rc) goto fail;
    if (v != ST_SCHEMA_VERSION) {
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "%s: schema version %d, this program needs %d; re-import the data "
                    "(nb-import --csv DIR --db %s)",
                    path, v, ST_SCHEMA_VERSION, path);
        goto fail;
    }
    *db = d;
    return NB_OK;
fail:
    sqlite3_close(d);
    return rc;
}

/* Removes path and its -wal, -shm and -journal side files, ignoring the ones that do not
 * exist. */
void st_remove_files(const char *path) {
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    size_t n = strlen(path) + 16;
    char *p = nb_xmalloc(n);
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(p, n, "%s%s", path, suffix[i]);
        unlink(p);
    }
    free(p);
}

/* See store.h. */
void st_close(sqlite3 *db) {
    if (db) sqlite3_close(db);
}

/* See store.h. */
void st_stmt_free(sqlite3_stmt *st) { sqlite3_finalize(st); }

/* One integer from a query without parameters. Returns NB_OK or NB_EDB. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = NB_OK;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        rc = nb_err(err, errlen, NB_EDB, "%s: %s", sql, sqlite3_errmsg(db));
    else
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* See store.h. */
int st_count_users(sqlite3 *db, int64_t *n, char *err, size_t errlen) {
    return query_int(db, "SELECT COUNT(*) FROM users", n, err, errlen);
}

/* See store.h. */
int st_count_prior_orders(sqlite3 *db, int64_t *n, char *err, size_t errlen) {
    return query_int(db, "SELECT COUNT(*) FROM orders WHERE eval_set = 0", n, err, errlen);
}

/* See store.h. */
int st_user_ids(sqlite3 *db, int with_history, int32_t **ids, int *n, char *err, size_t errlen) {
    const char *sql = with_history ? "SELECT DISTINCT o.user_id FROM orders o JOIN order_items i "
                                     "USING(order_id) ORDER BY o.user_id"
                                   : "SELECT user_id FROM users ORDER BY user_id";
    sqlite3_stmt *st = NULL;
    int rc = NB_OK, cap = 0, s;
    *ids = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "users: %s", sqlite3_errmsg(db));
        goto done;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap)
            *ids = nb_xrealloc(*ids, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof **ids);
        (*ids)[(*n)++] = (int32_t)sqlite3_column_int64(st, 0);
    }
    if (s != SQLITE_DONE) rc = nb_err(err, errlen, NB_EDB, "users: %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

/* See store.h. */
int st_no_mmap(sqlite3 *db, char *err, size_t errlen) {
    if (sqlite3_exec(db, "PRAGMA mmap_size=0", NULL, NULL, NULL) == SQLITE_OK) return NB_OK;
    return nb_err(err, errlen, NB_EDB, "PRAGMA mmap_size: %s", sqlite3_errmsg(db));
}

/* See store.h. */
int st_has_table(sqlite3 *db, const char *name, char *err, size_t errlen) {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return nb_err(err, errlen, NB_EDB, "sqlite_master: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(q);
    int rc = s == SQLITE_ROW    ? 1
             : s == SQLITE_DONE ? 0
                                : nb_err(err, errlen, NB_EDB, "sqlite_master: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return rc;
}
