/* srv_orders.h -- POST /orders: one completed order appended to the served store
 * (storage/orders.h has the rules), so that the user's next /recommend sees it: the
 * requests read each user's history from the store per request (storage/reader.h), nothing
 * of it is cached.
 *
 * Body (strict, as /recommend's: srv_json_object):
 *   {"user_id": int >= 0, "order_id": int >= 0, "products": [product_id, ...] (cart order,
 *    1 or more, each once), "order_dow": 0..6, "order_hour_of_day": 0..23,
 *    "days_since_prior_order": 0..30 or null (optional: null/absent for a first order)}
 * Answers:
 *   200 {"order_id", "user_id", "order_number", "n_products", "n_reordered"}: the order is
 *       in the store -- added now, or already there with this very content (a retry gets
 *       the same body, and nothing is written)
 *   400 bad_json / duplicate_field / unknown_field / bad_user_id / bad_order_id /
 *       bad_products / duplicate_product / bad_order_dow / bad_order_hour_of_day /
 *       bad_days_since_prior_order
 *   409 order_conflict: order_id holds a different order (the message says what differs)
 *   422 unknown_products: the message and "product_ids" name every product not in the
 *       catalogue
 *   503 store_busy: another writer (nb-train registering a model) held the store past the
 *       busy timeout; retry
 *   500 internal_error (logged)
 * Nothing is written unless the answer is 200 for a new order. The authentication (admin
 * token) is the HTTP layer's (srv_http.h), before the body is read.
 *
 * One writer connection for the whole server, its appends serialized by a mutex: each
 * request holds it for one short transaction; readers (every /recommend) use their own
 * connections and WAL snapshots, so they never wait for it.
 */
#ifndef SRV_ORDERS_H
#define SRV_ORDERS_H

#include <stddef.h>

#include "orders.h"
#include "srv_engine.h"

#define SRV_ORDERS_BUSY_MS 5000 /* how long an append waits for another writer */

typedef struct srv_orders srv_orders;

/* Opens the writer on db_path (storage/orders.h: WAL, synchronous=FULL, busy timeout).
 * e (borrowed, may be NULL) is told about each user the orders create (its /health count).
 * Returns NB_OK and *o, or the writer's error (message names the file). */
int srv_orders_open(srv_orders **o, const char *db_path, srv_engine *e, char *err, size_t errlen);
void srv_orders_free(srv_orders *o); /* after the HTTP layer has stopped; safe on NULL */

/* The handler (ctx is the srv_orders): parses body[len], appends, answers. Returns the
 * HTTP status and a malloc'd JSON body in *out (*outlen bytes). Thread-safe. */
int srv_orders_post(void *ctx, const char *body, size_t len, char **out, size_t *outlen);

/* The body parser behind srv_orders_post (exposed for the fuzz harness). Returns NB_OK with
 * *o filled and o->products pointing at *products (malloc'd, the caller frees it), or
 * NB_EFORMAT with *code (see above) and a message naming the field (nothing owned). */
int srv_orders_parse(const char *body, size_t len, st_order *o, int32_t **products,
                     const char **code, char *err, size_t errlen);

/* Counts since start (for logs and metrics): orders added, retries answered from the
 * store, 409s, 422s, 400s, 503s and 500s. */
typedef struct {
    long added, replayed, conflicts, unknown_products, bad_requests, busy, failed;
} srv_orders_stats;
void srv_orders_stats_get(srv_orders *o, srv_orders_stats *s);

#endif
