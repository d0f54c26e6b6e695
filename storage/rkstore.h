/* rkstore.h -- the ranking stage's rows in the store (schema.sql: ranker_models,
 * ranker_product_stats, neighbour_cands). Every SQL statement of the ranking stage is here.
 * Arrays are in the catalogue's product-index order (ascending product_id, history.h). */
#ifndef ST_RKSTORE_H
#define ST_RKSTORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

/* Creates the three tables when the store predates them, and adds ranker_models' TIFU-KNN
 * and calibration columns to a table that predates those. Returns NB_OK or NB_EDB. */
int st_rk_ensure_tables(sqlite3 *db, char *err, size_t errlen);

/* What is written with a model. nbr: user u (index in the catalogue history h) has pairs
 * nbr_idx/nbr_val [nbr_off[u], nbr_off[u+1]) (product indices). */
typedef struct {
    const char *path; /* ranker file */
    uint32_t checksum;
    const char *shipped;                /* "ranker" or a baseline name */
    const float *pop, *reorder, *rebuy; /* [P] */
    const int64_t *nbr_off;             /* [n_users + 1] */
    const int32_t *nbr_idx;
    const float *nbr_val;
    /* TIFU-KNN's parameters behind the tifu_own / tifu_nbr features (infer/rkfeat.h) */
    int tifu_m, tifu_k;
    double tifu_r_b, tifu_r_g, tifu_alpha;
    /* a shipped baseline's calibration (infer/rkscore.h tr_rk_calibrate), when bl_cal */
    int bl_cal;
    double bl_cal_a, bl_cal_b;
} st_rk_rows;

/* Replaces every ranking-stage row with r's for model_id (r NULL: only deletes them, for a
 * model registered without a ranking stage). MUST run inside the caller's open
 * transaction (the one registering the model): NB_EINVAL in autocommit mode. Returns NB_OK,
 * NB_EINVAL or NB_EDB (the caller rolls back). */
int st_rk_write(sqlite3 *db, int64_t model_id, const st_rk_rows *r, const st_history *h, char *err,
                size_t errlen);

/* model_id's ranker registration: path (malloc'd, caller frees), checksum, shipped (into
 * shipped[shipped_len]). Returns NB_OK, NB_ENOTFOUND (none registered, or a store without
 * the tables) or NB_EDB. */
int st_rk_load_model(sqlite3 *db, int64_t model_id, char **path, uint32_t *checksum, char *shipped,
                     size_t shipped_len, char *err, size_t errlen);

/* model_id's TIFU-KNN feature parameters into m, k, r_b, r_g, alpha. A store written before
 * they were stored (no such columns, or NULLs) gets *stored = 0 and the values untouched:
 * its ranker's features used the defaults the caller preset. Returns NB_OK, NB_ENOTFOUND
 * (no ranker row) or NB_EDB. */
int st_rk_load_tifu(sqlite3 *db, int64_t model_id, int *m, int *k, double *r_b, double *r_g,
                    double *alpha, int *stored, char *err, size_t errlen);

/* model_id's calibration of its shipped baseline (infer/rkscore.h tr_rk_calibrate) into a,
 * b with *stored = 1; *stored = 0 and a, b untouched when there is none (the trees ship, or
 * a store written before the columns: raw scores). Returns NB_OK, NB_ENOTFOUND (no ranker
 * row) or NB_EDB. */
int st_rk_load_cal(sqlite3 *db, int64_t model_id, double *a, double *b, int *stored, char *err,
                   size_t errlen);

/* model_id's product statistics into pop/reorder/rebuy [catalog->n_products]. Returns NB_OK,
 * NB_EMISMATCH (a product missing or unknown, named) or NB_EDB. */
int st_rk_load_pstats(sqlite3 *db, int64_t model_id, const st_history *catalog, float *pop,
                      float *reorder, float *rebuy, char *err, size_t errlen);

/* One user's neighbour pairs into idx/val (capacity cap, product indices of catalog);
 * *n = 0 when the user has no row. Returns NB_OK, NB_EFORMAT (a bad row, named) or NB_EDB. */
int st_rk_load_nbr(sqlite3 *db, int64_t model_id, const st_history *catalog, int32_t user_id,
                   int32_t *idx, float *val, int cap, int *n, char *err, size_t errlen);

#endif
