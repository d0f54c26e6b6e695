/* orders.h -- appending one completed order to the store while it is being served
 * (nb-serve's POST /orders): the single writer connection and the append transaction.
 *
 * The rules are the importer's (import.h), applied to one new order:
 *   - order_id is new in the store (else: the same order again, or a conflict, below);
 *   - every product_id is in the catalogue, and at most once in the order;
 *   - order_dow 0..6, order_hour_of_day 0..23, days_since_prior_order 0..30 or NULL;
 *   - a user has at most one 'train' or 'test' order and it is the user's last: the new
 *     order becomes the user's last, order_number = the user's highest + 1 (1 for a new
 *     user, who is created), with eval_set 'train' (the user's newest order with items is
 *     what nb-train learns to predict next); the user's previous 'train' or 'test' order,
 *     if any, becomes 'prior' (its items, if any, are history now);
 *   - reordered = 1 exactly when the user bought the product in an earlier order (the
 *     Instacart definition, as nb-synth writes it);
 *   - add_to_cart_order = the position in the request, from 1.
 * Everything happens in one BEGIN IMMEDIATE transaction: all of it or nothing.
 *
 * Idempotence by order_id: when the order_id exists, the stored order is compared with the
 * request (user, order_dow, order_hour_of_day, days_since_prior_order, products in cart
 * order). Equal: ST_ORDER_SAME, nothing written, and the result describes the stored order
 * exactly as when it was added. Different: ST_ORDER_CONFLICT, nothing written.
 *
 * Concurrency: one st_writer is one read-write connection; it is not thread-safe (the
 * caller serializes its calls, e.g. with a mutex). The store must be in WAL mode (stores
 * are created so), so readers on other connections are never blocked by the append; it
 * waits up to busy_ms for another writer (nb-train registering a model) and then fails
 * with *busy set. synchronous=FULL: an order reported added survives a power loss.
 */
#ifndef ST_ORDERS_H
#define ST_ORDERS_H

#include <stddef.h>
#include <stdint.h>

#include "userrank.h"

/* One order to append. products[n_products] in cart order, borrowed. */
typedef struct {
    int32_t order_id, user_id;
    int order_dow;      /* 0..6 */
    int order_hour;     /* 0..23 */
    int days_since;     /* 0..30, or -1 for NULL */
    const int32_t *products;
    int n_products;     /* >= 1 */
} st_order;

enum {
    ST_ORDER_ADDED = 1,    /* appended */
    ST_ORDER_SAME = 2,     /* order_id already holds this very order: nothing written */
    ST_ORDER_CONFLICT = 3, /* order_id holds another order: nothing written; why says how */
    ST_ORDER_UNKNOWN = 4   /* some product_id is not in the catalogue: nothing written */
};

typedef struct {
    int outcome;          /* ST_ORDER_* */
    int64_t order_number; /* ADDED / SAME: the order's order_number */
    int n_products;       /* ADDED / SAME: items of the order */
    int n_reordered;      /* ADDED / SAME: of which flagged reordered */
    int new_user;         /* ADDED: the user was created by this order */
    int n_unknown;        /* UNKNOWN: how many ids were written into the caller's unknown[] */
    char why[192];        /* CONFLICT: what differs ("user_id 7, this request 8") */
} st_order_result;

typedef struct st_writer st_writer;

/* Opens path read-write (never creating it), checks the schema version (st_open), that the
 * store is in WAL mode, sets synchronous=FULL and a busy timeout of busy_ms, and prepares
 * the statements. Returns NB_OK and *w (free with st_writer_free), or NB_ENOTFOUND /
 * NB_EMISMATCH / NB_EDB (message names the file; "not in WAL mode" for a store that is
 * not); on error *w is NULL. */
int st_writer_open(st_writer **w, const char *path, int busy_ms, char *err, size_t errlen);
void st_writer_free(st_writer *w); /* safe on NULL */

/* Appends o in one transaction (see the top of this file). unknown[] needs room for
 * o->n_products ids: it receives the product ids not in the catalogue (in request order,
 * each once) when the outcome is ST_ORDER_UNKNOWN. Returns NB_OK with r->outcome set;
 * NB_EINVAL when o breaks a rule the caller should have checked (a field out of range, no
 * products, a product twice: message names it), nothing written; NB_EDB when SQLite
 * failed, with *busy = 1 when it was another writer holding the store past the busy
 * timeout (the transaction is rolled back either way). */
int st_order_append(st_writer *w, const st_order *o, st_order_result *r, int32_t *unknown,
                    int *busy, char *err, size_t errlen);

/* Writes one user's precomputed ranking for model_id through w (st_prerank_put_batch of
 * userrank.h: its own transaction, only if the user still has row->n_orders orders), after
 * an order appended by st_order_append was ranked again. *written is 1 or 0. Returns NB_OK
 * or NB_EDB. */
int st_writer_prerank(st_writer *w, int64_t model_id, const st_prerank_row *row, int *written,
                      char *err, size_t errlen);

#endif
