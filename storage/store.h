/* store.h -- the SQLite store (schema.sql): open it, create it, check its version.
 *
 * schema.sql at the repository root is the single source of the schema; the Makefile
 * embeds it as the byte array st_schema_text[] (build/gen/schema_sql.c), which
 * st_schema_sql() returns, so the programs never need the file at run time.
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define ST_SCHEMA_VERSION 1

/* eval_set codes as stored in orders.eval_set */
enum { ST_PRIOR = 0, ST_TRAIN = 1, ST_TEST = 2 };

/* Opens an existing store. readonly != 0 opens it SQLITE_OPEN_READONLY (the server).
 * Returns NB_OK and *db, or NB_EDB / NB_ENOTFOUND (no such file) / NB_EMISMATCH
 * (PRAGMA user_version != ST_SCHEMA_VERSION, with a hint to re-import). On error *db is NULL.
 * The caller owns *db and closes it with st_close. */
int st_open(sqlite3 **db, const char *path, int readonly, char *err, size_t errlen);

/* 1 when db has table name, 0 when not, or NB_EDB (negative) on error (message in err). */
int st_has_table(sqlite3 *db, const char *name, char *err, size_t errlen);

/* Turns memory-mapped reads off for db (st_open maps up to 2 GB): for a connection that reads
 * much of the store once, whose mapped pages would otherwise all count in this process's
 * resident set (nb-train's precompute workers each read every candidate row). Plain reads
 * go through SQLite's small page cache instead. Returns NB_OK or NB_EDB. */
int st_no_mmap(sqlite3 *db, char *err, size_t errlen);

/* The text of schema.sql as compiled into the program. */
const char *st_schema_sql(void);

/* Removes the database file path and its -wal, -shm and -journal side files (those that
 * exist). For cleaning up after a failed import or create. */
void st_remove_files(const char *path);

/* Closes db (NULL: nothing). Statements prepared on it must be finalized first. */
void st_close(sqlite3 *db);

/* Finalizes a statement prepared by a storage function for the caller to hold (NULL:
 * nothing). */
void st_stmt_free(sqlite3_stmt *st);

/* Row counts: every user (st_count_users), every ST_PRIOR order (st_count_prior_orders).
 * Return NB_OK and *n, or NB_EDB. */
int st_count_users(sqlite3 *db, int64_t *n, char *err, size_t errlen);
int st_count_prior_orders(sqlite3 *db, int64_t *n, char *err, size_t errlen);

/* The user ids in ascending order into *ids (malloc'd, caller frees; NULL when none):
 * every user of table users, or with with_history only those with an order that has items.
 * Returns NB_OK and *n, or NB_EDB. */
int st_user_ids(sqlite3 *db, int with_history, int32_t **ids, int *n, char *err, size_t errlen);

#endif
