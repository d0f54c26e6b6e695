/* srv_engine.h -- what nb-serve serves: the store and the model loaded once, and a scoring
 * context per worker thread (its own read-only SQLite connection with prepared statements,
 * its own scoring clone of the model), created on the thread's first request.
 *
 * Start-up (srv_engine_open) checks everything before the server listens: the store opens
 * and has the current schema, the weight file loads (nbw_load: magic, version, checksum,
 * hyper-parameters) and its product list equals the store's catalogue, and the model is
 * registered in models (found by its checksum: its model_id keys the candidate table).
 * srv_engine_reload swaps in another registered model while serving (SIGHUP,
 * POST /admin/reload).
 */
#ifndef SRV_ENGINE_H
#define SRV_ENGINE_H

#include <stddef.h>

#include "srv_json.h"

typedef struct srv_engine srv_engine;

/* Returns NB_OK and *e (free with srv_engine_free after the HTTP layer has stopped), or
 * NB_ENOTFOUND / NB_EDB / NB_EIO / NB_EFORMAT / NB_EMISMATCH with a message naming the file
 * and the check that failed (not registered, product list differs, checksum, ...). */
int srv_engine_open(srv_engine **e, const char *db_path, const char *model_path, char *err,
                    size_t errlen);
void srv_engine_free(srv_engine *e);

/* The srv_handlers callbacks (ctx is the srv_engine). Return an HTTP status and a malloc'd
 * JSON body: 200, 404 (unknown user) or 500 (logged on stderr). */
int srv_engine_recommend(void *ctx, const srv_request *rq, char **body, size_t *len);
int srv_engine_health(void *ctx, char **body, size_t *len); /* 200, or 503 + reason */

/* What is being served: the current model (a copy, valid after a reload). */
typedef struct {
    char name[9];   /* "%08x" checksum */
    char path[1024];
    double loaded_at; /* seconds since the epoch */
    int n_users, n_products;
    double threshold;
} srv_model_info;
void srv_engine_model_info(srv_engine *e, srv_model_info *info);

/* What srv_engine_reload did. */
typedef struct {
    char model[9];    /* the model served now ("%08x") */
    char previous[9]; /* the one served before */
    char loaded_at[24]; /* when, "%Y-%m-%dT%H:%M:%SZ" (UTC), as /health prints it */
    int unknown;      /* the failure was: no registered model has that checksum */
} srv_reload_result;

/* Loads the newest model registered in the store (checksum NULL) or the one whose checksum
 * is `checksum` ("%08x"), with its rows, checks it (weights against the catalogue, its
 * rows, a scoring pass, a read of what /recommend reads) and makes it the one new requests
 * use; requests in flight finish on the model they started with, which is freed when the
 * last of them ends. Safe from any thread, one reload at a time: with wait 0 a reload
 * already running makes it return NB_EBUSY at once, else it waits for it. Returns NB_OK
 * and *res (the same model again is a valid reload), or an error naming what failed
 * (res->unknown set when it was the checksum) -- the current model then keeps serving.
 * Counted in /health and /metrics either way (NB_EBUSY is not an attempt). */
int srv_engine_reload(srv_engine *e, const char *checksum, int wait, srv_reload_result *res,
                      char *err, size_t errlen);
/* Reloads done and refused since start. */
void srv_engine_reload_counts(srv_engine *e, long *reloads, long *failures);
/* Counts one more user in /health's "users" (POST /orders created one). Thread-safe. */
void srv_engine_user_added(srv_engine *e);

/* Ranks user_id live with the current model's ranking stage, as /recommend would, and
 * encodes the result as a precomputed ranking (infer/prerank.h): what POST /orders writes
 * back after an order, so that the user's next /recommend reads a row again. Returns NB_OK
 * with *blob (caller frees), *len, *model_id and *n_orders (the orders ranked from), or
 * NB_ENOTFOUND when there is nothing to store (no ranking stage, an unknown or cold user),
 * or an error (message in err). Thread-safe (the calling thread's context). */
int srv_engine_rank_blob(srv_engine *e, int32_t user_id, uint8_t **blob, size_t *len,
                         int64_t *model_id, int64_t *n_orders, char *err, size_t errlen);

/* Candidate pruning totals over every worker's requests so far (tr_prune_stats): requests
 * scored, candidates they had, candidates scored exactly, requests whose final check made
 * them score everything. Call when no request is in flight. */
void srv_engine_prune_stats(srv_engine *e, long *calls, long *candidates, long *survivors,
                            long *fallbacks);

#endif
