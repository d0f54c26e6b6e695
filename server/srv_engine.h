/* srv_engine.h -- what nb-serve serves: the store and the model loaded once, and a scoring
 * context per worker thread (its own read-only SQLite connection with prepared statements,
 * its own scoring clone of the model), created on the thread's first request.
 *
 * Start-up (srv_engine_open) checks everything before the server listens: the store opens
 * and has the current schema, the weight file loads (nbw_load: magic, version, checksum,
 * hyper-parameters) and its product list equals the store's catalogue, and the model is
 * registered in models (found by its checksum: its model_id keys the candidate table).
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

/* Counts one more user in /health's "users" (POST /orders created one). Thread-safe. */
void srv_engine_user_added(srv_engine *e);

/* Facts for the start-up log line. */
const char *srv_engine_model_name(const srv_engine *e); /* "%08x" checksum */
int srv_engine_n_users(const srv_engine *e);
int srv_engine_n_products(const srv_engine *e);
double srv_engine_threshold(const srv_engine *e);

/* Candidate pruning totals over every worker's requests so far (tr_prune_stats): requests
 * scored, candidates they had, candidates scored exactly, requests whose final check made
 * them score everything. Call when no request is in flight. */
void srv_engine_prune_stats(srv_engine *e, long *calls, long *candidates, long *survivors,
                            long *fallbacks);

#endif
