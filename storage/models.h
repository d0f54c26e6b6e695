/* models.h -- the model registry: table models (one row per weight file, found by the
 * file's CRC-32), written by nb-train together with the rows that belong to the model
 * (candidates, product_stats) and read by nb-serve and nb-train --score-user.
 */
#ifndef ST_MODELS_H
#define ST_MODELS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Finds the newest models row whose checksum is crc ("%08x", compared case-insensitively).
 * Returns NB_OK with *id and, when hyper is not NULL, *hyper = its hyper_params text
 * (malloc'd, caller frees; NULL when the column is NULL); NB_ENOTFOUND (not registered) or
 * NB_EDB. */
int st_model_find(sqlite3 *db, uint32_t crc, int64_t *id, char **hyper, char *err, size_t errlen);

/* Writes the rows that belong to model_id (candidates, product statistics) inside
 * st_model_register's transaction. Returns NB_OK or an error (message in err). */
typedef int (*st_model_rows_fn)(void *ctx, sqlite3 *db, int64_t model_id, char *err, size_t errlen);

/* A model to register. */
typedef struct {
    const char *path;      /* its weight file: a name never overwritten (nbw_save_versioned) */
    uint32_t crc;          /* the weight file's checksum */
    const char *hyper;     /* hyper_params JSON text */
    const char *metrics;   /* metrics JSON text (the --report content) */
    int keep;              /* models kept registered, this one included (>= 1) */
    st_model_rows_fn rows; /* writes the model's other rows (may be NULL) */
    void *ctx;             /* rows' context */
} st_model_new;

/* A list of malloc'd strings (free with st_strlist_free). */
typedef struct {
    char **v;
    int n;
} st_strlist;
void st_strlist_free(st_strlist *l);

/* Registers a model in one transaction (BEGIN IMMEDIATE ... COMMIT): inserts the models row
 * (path, checksum "%08x" of crc, hyper_params, metrics) under a model_id never given
 * before, calls rows(ctx, db, model_id), then retires every model but the nm->keep newest
 * with all their rows (candidates, product statistics, the ranking stage's), so that a
 * server still holding a retired model's weights finds no rows for its id rather than
 * another model's. Returns NB_OK, *model_id and in *unused the files (weight files, ranker
 * files) that only retired models named -- the caller may delete them once committed;
 * NB_EDB or rows' error, with everything rolled back and *unused empty. */
int st_model_register(sqlite3 *db, const st_model_new *nm, int64_t *model_id, st_strlist *unused,
                      char *err, size_t errlen);

/* The weight file of the newest registered model (checksum NULL), or of the newest one
 * whose checksum is `checksum` ("%08x", any case). Returns NB_OK and *path (malloc'd,
 * caller frees), NB_ENOTFOUND (the message says which) or NB_EDB. */
int st_model_path(sqlite3 *db, const char *checksum, char **path, char *err, size_t errlen);

/* Whether a registered model names the file path (models.path or ranker_models.path).
 * Returns 1, 0, or NB_EDB. */
int st_model_file_named(sqlite3 *db, const char *path, char *err, size_t errlen);

/* Checks that the store has the tables a model is written to (models, candidates,
 * product_stats), so that nb-train fails before training rather than after. Returns NB_OK
 * or NB_EMISMATCH (the store predates schema.sql: the message says to re-import). */
int st_model_tables_check(sqlite3 *db, char *err, size_t errlen);

/* Binds row i of a model's rows to ins (parameters ?2...; ?1 is the model_id) and sets *key
 * to the row's key (user_id, product_id) for messages. */
typedef void (*st_row_bind_fn)(void *ctx, sqlite3_stmt *ins, int i, int32_t *key);

/* Replaces model_id's rows in `table` (one of the tables keyed by model_id: candidates,
 * product_stats): deletes them, then runs ins_sql (?1 = model_id) once per row i in [0, n)
 * after bind(ctx, ins, i, ...). key_name ("user", "product") names a failing row. MUST run
 * inside the caller's open transaction, the one that writes the models row, so that a model
 * and its rows appear or disappear together: NB_EINVAL in autocommit mode. Returns NB_OK,
 * NB_EINVAL or NB_EDB (the message names the row); on error the caller should ROLLBACK. */
int st_model_rows_replace(sqlite3 *db, int64_t model_id, const char *table, const char *ins_sql,
                          int n, st_row_bind_fn bind, void *ctx, const char *key_name, char *err,
                          size_t errlen);

#endif
