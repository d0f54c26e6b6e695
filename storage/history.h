/* history.h -- users' order histories in memory, the form that training, evaluation,
 * baselines, candidates and serving all read.
 *
 * Compressed-sparse-row arrays. Products are dense indices 0..n_products-1 in ascending
 * product_id order (the same order as the model's product list). Users are in ascending
 * user_id order; a user's orders are in order_number order; an order's items are in
 * add_to_cart order. Orders with eval_set = test have no items.
 */
#ifndef ST_HISTORY_H
#define ST_HISTORY_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* catalogue */
    int n_products;
    int32_t *product_ids;   /* [n_products] ascending: index -> product_id */
    int32_t *product_aisle; /* [n_products] aisle_id */
    int32_t *product_dept;  /* [n_products] department_id */
    /* users */
    int n_users;
    int32_t *user_ids;       /* [n_users] ascending */
    int64_t *user_order_off; /* [n_users + 1] into the order arrays */
    /* orders */
    int64_t n_orders;
    int32_t *order_ids;      /* [n_orders] */
    uint8_t *eval_set;       /* [n_orders] ST_PRIOR / ST_TRAIN / ST_TEST */
    uint8_t *dow;            /* [n_orders] 0..6 */
    uint8_t *hour;           /* [n_orders] 0..23 */
    int16_t *days_since;     /* [n_orders] 0..30, -1 when NULL (first order) */
    int64_t *order_item_off; /* [n_orders + 1] into the item arrays */
    /* items */
    int64_t n_items;
    int32_t *items;     /* [n_items] product indices */
    uint8_t *reordered; /* [n_items] 0/1 */
} st_history;

/* Loads the whole store into h (products, users, orders, items). Returns NB_OK, or NB_EDB
 * with a message (allocation failure aborts: nb_err.h). h owns its arrays afterwards; free
 * with st_history_free. */
int st_history_load(st_history *h, sqlite3 *db, char *err, size_t errlen);
void st_history_free(st_history *h);

/* Index of product_id in h->product_ids (binary search), or -1. */
int st_product_index(const st_history *h, int32_t product_id);
/* Index of user_id in h->user_ids (binary search), or -1. */
int st_user_index(const st_history *h, int32_t user_id);

/* ---- one user at a time (the server) --------------------------------------------------
 * st_userq holds prepared statements on one connection; st_userq_load fills `out` with a
 * one-user history (same layout as above, n_users == 1) whose catalogue arrays BORROW from
 * `catalog` (a history loaded once at start-up with at least the products). Reuses out's
 * buffers between calls. */
typedef struct st_userq st_userq;
/* Returns NB_OK and a new *q (caller frees with st_userq_free), or NB_EDB. */
int st_userq_open(st_userq **q, sqlite3 *db, char *err, size_t errlen);
/* Returns NB_OK, NB_ENOTFOUND (no such user), or NB_EDB. */
int st_userq_load(st_userq *q, const st_history *catalog, int32_t user_id, st_history *out,
                  char *err, size_t errlen);
/* Frees the statements (not the connection) and the buffers of the last `out` it filled. */
void st_userq_free(st_userq *q);
/* Loads only the catalogue (products, aisles, departments) into h; users/orders empty. */
int st_catalog_load(st_history *h, sqlite3 *db, char *err, size_t errlen);

#endif
