/* srv_orders.c -- POST /orders (see srv_orders.h). */
#include "srv_orders.h"
#include "srv_metrics.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"
#include "orders.h"
#include "srv_json.h"

#define SRV_UNKNOWN_NAMED 20 /* unknown product ids the 422 message lists (the array: all) */

struct srv_orders {
    st_writer *w;
    srv_engine *e;
    pthread_mutex_t lock; /* one append at a time on w */
    atomic_long added, replayed, conflicts, unknown, bad, busy, failed;
};

/* The fields of an order body. */
static const char *const order_fields[] = {"user_id",   "order_id",          "products",
                                           "order_dow", "order_hour_of_day", "days_since_prior_order"};

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Reads a required integer field into *out. Returns NB_OK or NB_EFORMAT with *code. */
static int req_int(const cJSON *root, const char *name, long long lo, long long hi,
                   const char *bad_code, long long *out, const char **code, char *err,
                   size_t errlen) {
    int got = srv_json_int(root, name, (double)lo, (double)hi, out);
    if (got > 0) return NB_OK;
    *code = bad_code;
    return got == 0 ? nb_err(err, errlen, NB_EFORMAT, "missing field %s", name)
                    : nb_err(err, errlen, NB_EFORMAT, "%s must be an integer in %lld..%lld", name,
                             lo, hi);
}

/* A parsed request. products is malloc'd (free it). */
typedef struct {
    st_order o;
    int32_t *products;
} order_req;

/* Parses body[len] into rq (see srv_orders.h for the fields). Returns NB_OK (rq->products
 * owned by the caller), or NB_EFORMAT with *code and a message naming the field (nothing
 * owned). */
static int parse_order(const char *body, size_t len, order_req *rq, const char **code, char *err,
                       size_t errlen) {
    cJSON *root = NULL;
    long long v;
    memset(rq, 0, sizeof *rq);
    int rc = srv_json_object(body, len, order_fields, 6, &root, code, err, errlen);
    if (rc) return rc;
    if ((rc = req_int(root, "user_id", 0, INT32_MAX, "bad_user_id", &v, code, err, errlen)))
        goto done;
    rq->o.user_id = (int32_t)v;
    if ((rc = req_int(root, "order_id", 0, INT32_MAX, "bad_order_id", &v, code, err, errlen)))
        goto done;
    rq->o.order_id = (int32_t)v;
    if ((rc = req_int(root, "order_dow", 0, 6, "bad_order_dow", &v, code, err, errlen))) goto done;
    rq->o.order_dow = (int)v;
    if ((rc = req_int(root, "order_hour_of_day", 0, 23, "bad_order_hour_of_day", &v, code, err,
                      errlen)))
        goto done;
    rq->o.order_hour = (int)v;
    /* Instacart's first orders have no days_since_prior_order: absent or null */
    rq->o.days_since = -1;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "days_since_prior_order");
    if (d && !cJSON_IsNull(d)) {
        if (srv_json_int(root, "days_since_prior_order", 0, 30, &v) <= 0) {
            *code = "bad_days_since_prior_order";
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "days_since_prior_order must be an integer in 0..30 or null");
            goto done;
        }
        rq->o.days_since = (int)v;
    }
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(root, "products");
    int n = cJSON_IsArray(pa) ? cJSON_GetArraySize(pa) : 0;
    if (n == 0) {
        *code = "bad_products";
        rc = nb_err(err, errlen, NB_EFORMAT,
                    !pa ? "missing field products"
                        : "products must be a non-empty array of product ids");
        goto done;
    }
    rq->products = nb_xmalloc((size_t)n * sizeof *rq->products);
    int i = 0;
    for (const cJSON *it = pa->child; it; it = it->next, i++) {
        double x = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!isfinite(x) || x != floor(x) || x < 0 || x > INT32_MAX) {
            *code = "bad_products";
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "products[%d] must be a product id (an integer in 0..%d)", i, INT32_MAX);
            goto done;
        }
        rq->products[i] = (int32_t)x;
    }
    /* a product once per order (the importer's rule): found on a sorted copy */
    int32_t *s = nb_xmalloc((size_t)n * sizeof *s);
    memcpy(s, rq->products, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_i32);
    for (i = 1; i < n && !rc; i++)
        if (s[i] == s[i - 1]) {
            *code = "duplicate_product";
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "product_id %" PRId32 " appears more than once in products (an order "
                        "lists a product once)",
                        s[i]);
        }
    free(s);
    rq->o.products = rq->products;
    rq->o.n_products = n;
done:
    cJSON_Delete(root);
    if (rc) {
        free(rq->products);
        rq->products = NULL;
    }
    return rc;
}

/* See srv_orders.h. */
int srv_orders_parse(const char *body, size_t len, st_order *o, int32_t **products,
                     const char **code, char *err, size_t errlen) {
    order_req rq;
    int rc = parse_order(body, len, &rq, code, err, errlen);
    *o = rq.o;
    *products = rq.products;
    return rc;
}

/* See srv_orders.h. */
int srv_orders_open(srv_orders **out, const char *db_path, srv_engine *e, char *err,
                    size_t errlen) {
    srv_orders *o = nb_xcalloc(1, sizeof *o);
    *out = NULL;
    int rc = st_writer_open(&o->w, db_path, SRV_ORDERS_BUSY_MS, err, errlen);
    if (rc) {
        free(o);
        return rc;
    }
    o->e = e;
    pthread_mutex_init(&o->lock, NULL);
    *out = o;
    return NB_OK;
}

/* See srv_orders.h. */
void srv_orders_free(srv_orders *o) {
    if (!o) return;
    st_writer_free(o->w);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

/* The 422 body: the message names up to SRV_UNKNOWN_NAMED ids, "product_ids" all of them. */
static char *unknown_json(const int32_t *ids, int n, size_t *len) {
    srv_buf m = {0}, b = {0};
    srv_buf_printf(&m, "unknown product_id%s ", n > 1 ? "s" : "");
    for (int i = 0; i < n && i < SRV_UNKNOWN_NAMED; i++)
        srv_buf_printf(&m, "%s%" PRId32, i ? ", " : "", ids[i]);
    if (n > SRV_UNKNOWN_NAMED) srv_buf_printf(&m, " and %d more", n - SRV_UNKNOWN_NAMED);
    srv_buf_cstr(&m, " (not in the catalogue); nothing was written");
    SRV_BUF_LIT(&b, "{\"error\": {\"code\": \"unknown_products\", \"message\": ");
    srv_buf_str(&b, m.p);
    SRV_BUF_LIT(&b, ", \"product_ids\": [");
    for (int i = 0; i < n; i++) {
        if (i) SRV_BUF_LIT(&b, ", ");
        srv_buf_int(&b, ids[i]);
    }
    SRV_BUF_LIT(&b, "]}}\n");
    srv_buf_free(&m);
    return srv_buf_take(&b, len);
}

/* After an order of user_id: ranks the user again and writes the row back (the order's
 * transaction deleted the user's rows, storage/orders.c), so that the next /recommend
 * reads a row, not the live ranking. A failure only costs that: it is logged, and the user
 * is ranked live until the next training. */
static void rerank(srv_orders *so, int32_t user_id) {
    char err[NB_ERRLEN];
    st_prerank_row row = {.user_id = user_id};
    uint8_t *blob = NULL;
    int64_t model_id = 0;
    int written = 0;
    int rc = srv_engine_rank_blob(so->e, user_id, &blob, &row.len, &model_id, &row.n_orders, err,
                                  sizeof err);
    if (rc == NB_OK) {
        row.blob = blob;
        pthread_mutex_lock(&so->lock);
        rc = st_writer_prerank(so->w, model_id, &row, &written, err, sizeof err);
        pthread_mutex_unlock(&so->lock);
    }
    if (rc && rc != NB_ENOTFOUND)
        fprintf(stderr, "nb-serve: user %" PRId32 " is ranked live until the next training: "
                        "%s\n", user_id, err);
    free(blob);
}

/* See srv_orders.h. The mutex is held for the append and for the ranking's write-back only
 * (parsing, the ranking itself and the answer are outside it). */
int srv_orders_post(void *ctx, const char *body, size_t len, char **out, size_t *outlen) {
    srv_orders *so = ctx;
    order_req rq;
    st_order_result r;
    const char *code = NULL;
    char err[NB_ERRLEN];
    int busy = 0, status;
    if (parse_order(body, len, &rq, &code, err, sizeof err) != NB_OK) {
        atomic_fetch_add(&so->bad, 1);
        *out = srv_error_json(code, err, outlen);
        return 400;
    }
    int32_t *unknown = nb_xmalloc((size_t)rq.o.n_products * sizeof *unknown);
    pthread_mutex_lock(&so->lock);
    int rc = st_order_append(so->w, &rq.o, &r, unknown, &busy, err, sizeof err);
    pthread_mutex_unlock(&so->lock);
    if (rc == NB_EDB && busy) {
        atomic_fetch_add(&so->busy, 1);
        fprintf(stderr, "nb-serve: order %" PRId32 " not written, the store is busy: %s\n",
                rq.o.order_id, err);
        *out = srv_error_json("store_busy",
                              "another writer holds the store (a model being registered?); "
                              "nothing was written, retry",
                              outlen);
        status = 503;
    } else if (rc) {
        atomic_fetch_add(&so->failed, 1);
        fprintf(stderr, "nb-serve: internal error writing order %" PRId32 " (code %d): %s\n",
                rq.o.order_id, rc, err);
        *out = srv_error_json("internal_error", "internal error (logged)", outlen);
        status = 500;
    } else if (r.outcome == ST_ORDER_CONFLICT) {
        atomic_fetch_add(&so->conflicts, 1);
        char msg[320];
        snprintf(msg, sizeof msg,
                 "order_id %" PRId32 " exists with other content (%s); nothing was written",
                 rq.o.order_id, r.why);
        *out = srv_error_json("order_conflict", msg, outlen);
        status = 409;
    } else if (r.outcome == ST_ORDER_UNKNOWN) {
        atomic_fetch_add(&so->unknown, 1);
        *out = unknown_json(unknown, r.n_unknown, outlen);
        status = 422;
    } else {
        /* ADDED or SAME: the body describes the stored order, so a retry gets these bytes */
        if (r.outcome == ST_ORDER_ADDED) {
            atomic_fetch_add(&so->added, 1);
            srv_metrics_order();
            if (r.new_user && so->e) srv_engine_user_added(so->e);
            if (so->e) rerank(so, rq.o.user_id);
        } else {
            atomic_fetch_add(&so->replayed, 1);
        }
        srv_buf b = {0};
        srv_buf_printf(&b,
                       "{\"order_id\": %" PRId32 ", \"user_id\": %" PRId32
                       ", \"order_number\": %" PRId64 ", \"n_products\": %d, \"n_reordered\": %d}\n",
                       rq.o.order_id, rq.o.user_id, r.order_number, r.n_products, r.n_reordered);
        *out = srv_buf_take(&b, outlen);
        status = 200;
    }
    free(unknown);
    free(rq.products);
    return status;
}

/* See srv_orders.h. */
void srv_orders_stats_get(srv_orders *o, srv_orders_stats *s) {
    s->added = atomic_load(&o->added);
    s->replayed = atomic_load(&o->replayed);
    s->conflicts = atomic_load(&o->conflicts);
    s->unknown_products = atomic_load(&o->unknown);
    s->bad_requests = atomic_load(&o->bad);
    s->busy = atomic_load(&o->busy);
    s->failed = atomic_load(&o->failed);
}
