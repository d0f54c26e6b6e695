/* history.c -- the store read into the CSR arrays of history.h, whole or one user at a time.
 *
 * Whole store: orders are read through orders_by_user (user, order_number order), which
 * fixes every order's position; items are read in the table's own order (order_id,
 * add_to_cart_order: one sequential b-tree scan) into temporary arrays and matched to their
 * orders by a merge with the order ids sorted, then copied into position order. Peak memory is
 * the final arrays plus one temporary copy of the item arrays.
 */
#include "history.h"
#include "nb_err.h"
#include "store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns NB_OK and a prepared *st (caller finalizes), or NB_EDB. */
static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen) {
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK) return NB_OK;
    return nb_err(err, errlen, NB_EDB, "preparing '%s': %s", sql, sqlite3_errmsg(db));
}

/* Runs a one-value query (a count). Returns NB_OK and *v, or NB_EDB. */
static int query_i64(sqlite3 *db, const char *sql, int64_t *v, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int rc = prep(db, sql, &st, err, errlen);
    if (rc == NB_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *v = sqlite3_column_int64(st, 0);
        else
            rc = nb_err(err, errlen, NB_EDB, "'%s': %s", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

/* Frees every array h owns and zeroes it (safe on a zeroed h). Not for a history filled
 * by st_userq_load, whose arrays belong to the st_userq. */
void st_history_free(st_history *h) {
    free(h->product_ids);
    free(h->product_aisle);
    free(h->product_dept);
    free(h->user_ids);
    free(h->user_order_off);
    free(h->order_ids);
    free(h->eval_set);
    free(h->dow);
    free(h->hour);
    free(h->days_since);
    free(h->order_item_off);
    free(h->items);
    free(h->reordered);
    memset(h, 0, sizeof *h);
}

/* Binary search of product_id in the ascending product_ids: its index, or -1. */
int st_product_index(const st_history *h, int32_t product_id) {
    int lo = 0, hi = h->n_products - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (h->product_ids[mid] < product_id)
            lo = mid + 1;
        else if (h->product_ids[mid] > product_id)
            hi = mid - 1;
        else
            return mid;
    }
    return -1;
}

/* Binary search of user_id in the ascending user_ids: its index, or -1. */
int st_user_index(const st_history *h, int32_t user_id) {
    int lo = 0, hi = h->n_users - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (h->user_ids[mid] < user_id)
            lo = mid + 1;
        else if (h->user_ids[mid] > user_id)
            hi = mid - 1;
        else
            return mid;
    }
    return -1;
}

/* Loads products in ascending product_id order into h (which it zeroes first). Returns NB_OK
 * or NB_EDB; on error h is freed. */
int st_catalog_load(st_history *h, sqlite3 *db, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    int rc = query_i64(db, "SELECT count(*) FROM products", &n, err, errlen);
    if (rc) goto done;
    h->product_ids = nb_xmalloc((size_t)(n + 1) * sizeof *h->product_ids);
    h->product_aisle = nb_xmalloc((size_t)(n + 1) * sizeof *h->product_aisle);
    h->product_dept = nb_xmalloc((size_t)(n + 1) * sizeof *h->product_dept);
    rc = prep(db, "SELECT product_id, aisle_id, department_id FROM products ORDER BY product_id",
              &st, err, errlen);
    int r, i = 0;
    while (rc == NB_OK && (r = sqlite3_step(st)) == SQLITE_ROW && i < n) {
        h->product_ids[i] = sqlite3_column_int(st, 0);
        h->product_aisle[i] = sqlite3_column_int(st, 1);
        h->product_dept[i] = sqlite3_column_int(st, 2);
        i++;
    }
    if (rc == NB_OK && (r != SQLITE_DONE || i != n))
        rc = nb_err(err, errlen, NB_EDB, "reading products: %s",
                    r == SQLITE_DONE ? "row count changed" : sqlite3_errmsg(db));
    h->n_products = i;
done:
    sqlite3_finalize(st);
    if (rc) st_history_free(h);
    return rc;
}

/* product_id -> product index: arithmetic when the ids are consecutive (Instacart's 1..P),
 * a dense table when they are compact, else binary search. The arithmetic case matters to
 * the server: between two requests the model's weights evict the table from the caches,
 * and a lookup per history item then cost a cache miss each (~10 us per request). */
typedef struct {
    int32_t *dense;
    int32_t max_id;
    int32_t first; /* consecutive: index = id - first for id in [first, max_id] */
    int consecutive;
    const st_history *h;
} prod_map;

/* Builds m for h's catalogue (m borrows h; free m->dense). */
static void prod_map_init(prod_map *m, const st_history *h) {
    m->h = h;
    m->dense = NULL;
    m->max_id = h->n_products ? h->product_ids[h->n_products - 1] : 0;
    m->first = h->n_products ? h->product_ids[0] : 0;
    /* product_ids are sorted and distinct, so last - first == n - 1 means consecutive */
    m->consecutive = h->n_products && (int64_t)m->max_id - m->first == (int64_t)h->n_products - 1;
    if (m->consecutive) return;
    if (h->n_products && m->max_id >= 0 &&
        (int64_t)m->max_id <= 16 * (int64_t)h->n_products + 4096) {
        m->dense = nb_xmalloc(((size_t)m->max_id + 1) * sizeof *m->dense);
        for (int32_t i = 0; i <= m->max_id; i++) m->dense[i] = -1;
        for (int i = 0; i < h->n_products; i++)
            if (h->product_ids[i] >= 0) m->dense[h->product_ids[i]] = i;
    }
}

/* The product index of id, or -1 when it is not in the catalogue. */
static inline int prod_map_get(const prod_map *m, int32_t id) {
    if (m->consecutive) return id >= m->first && id <= m->max_id ? id - m->first : -1;
    if (m->dense) return id >= 0 && id <= m->max_id ? m->dense[id] : -1;
    return st_product_index(m->h, id);
}

typedef struct {
    int32_t id;
    int32_t pad;
    int64_t pos;
} id_pos;

typedef struct {
    uint64_t key; /* user_id << 32 | order_number */
    int64_t row;  /* rank of the order by order_id */
} key_row;

/* qsort order: by (user_id, order_number). */
static int cmp_key_row(const void *a, const void *b) {
    uint64_t x = ((const key_row *)a)->key, y = ((const key_row *)b)->key;
    return (x > y) - (x < y);
}

/* Reads every order into h's user and order arrays in (user_id, order_number) order and
 * returns in *byid (malloc'd, caller frees) the (order_id, position) pairs sorted by id.
 * The table is read in its own order (order_id: sequential pages) and sorted here, which is
 * much faster than following orders_by_user into random table pages. */
static int load_orders(st_history *h, sqlite3 *db, id_pos **byid, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    *byid = NULL;
    int rc = query_i64(db, "SELECT count(*) FROM orders", &n, err, errlen);
    if (rc) return rc;
    size_t un = (size_t)n + 1;
    h->order_ids = nb_xmalloc(un * sizeof *h->order_ids);
    h->eval_set = nb_xmalloc(un);
    h->dow = nb_xmalloc(un);
    h->hour = nb_xmalloc(un);
    h->days_since = nb_xmalloc(un * sizeof *h->days_since);
    h->order_item_off = nb_xcalloc(un, sizeof *h->order_item_off);
    id_pos *p = nb_xmalloc(un * sizeof *p);
    key_row *kr = nb_xmalloc(un * sizeof *kr);
    uint8_t *tev = nb_xmalloc(un), *tdow = nb_xmalloc(un), *thour = nb_xmalloc(un);
    int16_t *tdays = nb_xmalloc(un * sizeof *tdays);
    rc = prep(db,
              "SELECT order_id, user_id, order_number, eval_set, order_dow, order_hour_of_day, "
              "days_since_prior_order FROM orders ORDER BY order_id",
              &st, err, errlen);
    int64_t i = 0;
    int r = 0;
    while (rc == NB_OK && (r = sqlite3_step(st)) == SQLITE_ROW && i < n) {
        p[i].id = sqlite3_column_int(st, 0);
        p[i].pad = 0;
        int64_t u = sqlite3_column_int64(st, 1), num = sqlite3_column_int64(st, 2);
        if (u < 0 || u > INT32_MAX || num < 0 || num > INT32_MAX) {
            rc = nb_err(err, errlen, NB_EDB,
                        "orders: order %d has user_id %lld, order_number %lld out of range",
                        p[i].id, (long long)u, (long long)num);
            break;
        }
        kr[i].key = (uint64_t)u << 32 | (uint64_t)num;
        kr[i].row = i;
        tev[i] = (uint8_t)sqlite3_column_int(st, 3);
        tdow[i] = (uint8_t)sqlite3_column_int(st, 4);
        thour[i] = (uint8_t)sqlite3_column_int(st, 5);
        tdays[i] =
            sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : (int16_t)sqlite3_column_int(st, 6);
        i++;
    }
    if (rc == NB_OK && (r != SQLITE_DONE || i != n))
        rc = nb_err(err, errlen, NB_EDB, "reading orders: %s",
                    r == SQLITE_DONE ? "row count changed" : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (rc == NB_OK) {
        qsort(kr, (size_t)n, sizeof *kr, cmp_key_row);
        size_t ucap = 1024;
        h->user_ids = nb_xmalloc(ucap * sizeof *h->user_ids);
        h->user_order_off = nb_xmalloc((ucap + 1) * sizeof *h->user_order_off);
        for (int64_t k = 0; k < n; k++) {
            int32_t u = (int32_t)(kr[k].key >> 32);
            if (h->n_users == 0 || h->user_ids[h->n_users - 1] != u) {
                if ((size_t)h->n_users == ucap) {
                    ucap *= 2;
                    h->user_ids = nb_xrealloc(h->user_ids, ucap * sizeof *h->user_ids);
                    h->user_order_off =
                        nb_xrealloc(h->user_order_off, (ucap + 1) * sizeof *h->user_order_off);
                }
                h->user_ids[h->n_users] = u;
                h->user_order_off[h->n_users] = k;
                h->n_users++;
            }
            int64_t row = kr[k].row;
            p[row].pos = k;
            h->order_ids[k] = p[row].id;
            h->eval_set[k] = tev[row];
            h->dow[k] = tdow[row];
            h->hour[k] = thour[row];
            h->days_since[k] = tdays[row];
        }
        if (h->user_order_off) h->user_order_off[h->n_users] = n;
        h->n_orders = n;
    }
    free(kr);
    free(tev);
    free(tdow);
    free(thour);
    free(tdays);
    if (rc) {
        free(p);
        return rc;
    }
    *byid = p;
    return NB_OK;
}

/* Reads every item in (order_id, add_to_cart_order) order and lays them out by order
 * position. byid: the orders sorted by id (from load_orders). */
static int load_items(st_history *h, sqlite3 *db, const id_pos *byid, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    int rc = query_i64(db, "SELECT count(*) FROM order_items", &n, err, errlen);
    if (rc) return rc;
    int32_t *tprod = nb_xmalloc(((size_t)n + 1) * sizeof *tprod);
    uint8_t *treord = nb_xmalloc((size_t)n + 1);
    int64_t *tstart = nb_xmalloc(((size_t)h->n_orders + 1) * sizeof *tstart); /* by position */
    prod_map pm;
    prod_map_init(&pm, h);
    rc = prep(db,
              "SELECT order_id, product_id, reordered FROM order_items ORDER BY order_id, "
              "add_to_cart_order",
              &st, err, errlen);
    int64_t i = 0, j = -1; /* j: index into byid of the current order */
    int32_t cur = 0;
    int r = 0;
    int64_t *cnt = h->order_item_off; /* counts per position first, offsets after */
    while (rc == NB_OK && (r = sqlite3_step(st)) == SQLITE_ROW && i < n) {
        int32_t o = sqlite3_column_int(st, 0);
        if (j < 0 || o != cur) {
            while (++j < h->n_orders && byid[j].id < o) {}
            if (j >= h->n_orders || byid[j].id != o) {
                rc = nb_err(err, errlen, NB_EDB,
                            "order_items: order_id %d is not in orders (store inconsistent)", o);
                break;
            }
            cur = o;
            tstart[byid[j].pos] = i;
        }
        int32_t pid = sqlite3_column_int(st, 1);
        int pi = prod_map_get(&pm, pid);
        if (pi < 0) {
            rc = nb_err(err, errlen, NB_EDB,
                        "order_items: product_id %d of order %d is not in products", pid, o);
            break;
        }
        tprod[i] = pi;
        treord[i] = (uint8_t)sqlite3_column_int(st, 2);
        cnt[byid[j].pos]++;
        i++;
    }
    if (rc == NB_OK && (r != SQLITE_DONE || i != n))
        rc = nb_err(err, errlen, NB_EDB, "reading order_items: %s",
                    r == SQLITE_DONE ? "row count changed" : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (rc == NB_OK) {
        h->n_items = n;
        h->items = nb_xmalloc(((size_t)n + 1) * sizeof *h->items);
        h->reordered = nb_xmalloc((size_t)n + 1);
        int64_t off = 0;
        for (int64_t k = 0; k < h->n_orders; k++) {
            int64_t c = cnt[k];
            cnt[k] = off;
            if (c) {
                memcpy(h->items + off, tprod + tstart[k], (size_t)c * sizeof *tprod);
                memcpy(h->reordered + off, treord + tstart[k], (size_t)c);
            }
            off += c;
        }
        assert(off == n);
        cnt[h->n_orders] = off;
    }
    free(pm.dense);
    free(tprod);
    free(treord);
    free(tstart);
    return rc;
}

/* Loads the whole store. Returns NB_OK (h owns its arrays) or NB_EDB (h freed). The reads
 * run in one read transaction so that they see one consistent state. */
int st_history_load(st_history *h, sqlite3 *db, char *err, size_t errlen) {
    id_pos *byid = NULL;
    int rc = st_catalog_load(h, db, err, errlen);
    if (rc) return rc;
    /* Sequential scans read each page once: plain reads are as fast as mmap here, and do
     * not add the whole file to this process's resident set. */
    int64_t mmap_size = 0;
    if (query_i64(db, "PRAGMA mmap_size", &mmap_size, NULL, 0) != NB_OK) mmap_size = -1;
    sqlite3_exec(db, "PRAGMA mmap_size=0", NULL, NULL, NULL);
    int in_txn = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    if ((rc = load_orders(h, db, &byid, err, errlen)) == NB_OK)
        rc = load_items(h, db, byid, err, errlen);
    if (in_txn) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (mmap_size > 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA mmap_size=%lld", (long long)mmap_size);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    free(byid);
    if (rc) st_history_free(h);
    return rc;
}

/* ---- one user at a time ------------------------------------------------------------------ */

struct st_userq {
    sqlite3 *db;
    sqlite3_stmt *orders_st, *items_st;
    sqlite3_stmt *begin_st, *commit_st; /* one read transaction per user: one lock, one snapshot */
    prod_map pm;                        /* product_id -> index for the catalogue last used */
    const st_history *pm_for;
    int32_t user_id[1];
    int64_t user_off[2];
    size_t ocap, icap;
    int32_t *order_ids;
    uint8_t *eval_set, *dow, *hour;
    int16_t *days;
    int64_t *item_off;
    int32_t *items;
    uint8_t *reordered;
};

/* Prepares the two per-user statements on db (which the caller keeps owning). Returns
 * NB_OK and *q, or NB_EDB with *q NULL. */
int st_userq_open(st_userq **q, sqlite3 *db, char *err, size_t errlen) {
    st_userq *u = nb_xcalloc(1, sizeof *u);
    u->db = db;
    int rc = prep(db,
                  "SELECT order_id, eval_set, order_dow, order_hour_of_day, days_since_prior_order "
                  "FROM orders WHERE user_id = ?1 ORDER BY order_number",
                  &u->orders_st, err, errlen);
    if (rc == NB_OK)
        rc = prep(db,
                  "SELECT product_id, reordered FROM order_items WHERE order_id = ?1 ORDER BY "
                  "add_to_cart_order",
                  &u->items_st, err, errlen);
    if (rc == NB_OK) rc = prep(db, "BEGIN", &u->begin_st, err, errlen);
    if (rc == NB_OK) rc = prep(db, "COMMIT", &u->commit_st, err, errlen);
    if (rc) {
        st_userq_free(u);
        u = NULL;
    }
    *q = u;
    return rc;
}

/* Reads user_id's orders, then each order's items, into q's buffers and fills out. Returns
 * NB_OK, NB_ENOTFOUND (the user has no orders), NB_EDB (also for a product missing from
 * catalog). */
static int userq_read(st_userq *q, const st_history *catalog, int32_t user_id, st_history *out,
                      char *err, size_t errlen) {
    int rc = NB_OK, r;
    size_t no = 0, ni = 0;
    sqlite3_bind_int(q->orders_st, 1, user_id);
    while ((r = sqlite3_step(q->orders_st)) == SQLITE_ROW) {
        if (no + 1 >= q->ocap) {
            q->ocap = q->ocap ? 2 * q->ocap : 128;
            q->order_ids = nb_xrealloc(q->order_ids, q->ocap * sizeof *q->order_ids);
            q->eval_set = nb_xrealloc(q->eval_set, q->ocap);
            q->dow = nb_xrealloc(q->dow, q->ocap);
            q->hour = nb_xrealloc(q->hour, q->ocap);
            q->days = nb_xrealloc(q->days, q->ocap * sizeof *q->days);
            q->item_off = nb_xrealloc(q->item_off, q->ocap * sizeof *q->item_off);
        }
        q->order_ids[no] = sqlite3_column_int(q->orders_st, 0);
        q->eval_set[no] = (uint8_t)sqlite3_column_int(q->orders_st, 1);
        q->dow[no] = (uint8_t)sqlite3_column_int(q->orders_st, 2);
        q->hour[no] = (uint8_t)sqlite3_column_int(q->orders_st, 3);
        q->days[no] = sqlite3_column_type(q->orders_st, 4) == SQLITE_NULL
            ? -1
            : (int16_t)sqlite3_column_int(q->orders_st, 4);
        no++;
    }
    if (r != SQLITE_DONE)
        rc = nb_err(err, errlen, NB_EDB, "user %d: reading orders: %s", user_id,
                    sqlite3_errmsg(q->db));
    else if (no == 0)
        rc = nb_err(err, errlen, NB_ENOTFOUND, "user_id %d: no such user", user_id);
    sqlite3_reset(q->orders_st);
    for (size_t k = 0; rc == NB_OK && k < no; k++) {
        q->item_off[k] = (int64_t)ni;
        sqlite3_bind_int(q->items_st, 1, q->order_ids[k]);
        while ((r = sqlite3_step(q->items_st)) == SQLITE_ROW) {
            if (ni == q->icap) {
                q->icap = q->icap ? 2 * q->icap : 1024;
                q->items = nb_xrealloc(q->items, q->icap * sizeof *q->items);
                q->reordered = nb_xrealloc(q->reordered, q->icap);
            }
            int32_t pid = sqlite3_column_int(q->items_st, 0);
            int pi = prod_map_get(&q->pm, pid);
            if (pi < 0) {
                rc = nb_err(err, errlen, NB_EDB,
                            "user %d, order %d: product_id %d is not in the catalogue", user_id,
                            q->order_ids[k], pid);
                break;
            }
            q->items[ni] = pi;
            q->reordered[ni] = (uint8_t)sqlite3_column_int(q->items_st, 1);
            ni++;
        }
        if (rc == NB_OK && r != SQLITE_DONE)
            rc = nb_err(err, errlen, NB_EDB, "user %d: reading items: %s", user_id,
                        sqlite3_errmsg(q->db));
        sqlite3_reset(q->items_st);
    }
    if (rc) return rc;
    q->item_off[no] = (int64_t)ni;
    q->user_id[0] = user_id;
    q->user_off[0] = 0;
    q->user_off[1] = (int64_t)no;
    memset(out, 0, sizeof *out);
    out->n_products = catalog->n_products;
    out->product_ids = catalog->product_ids;
    out->product_aisle = catalog->product_aisle;
    out->product_dept = catalog->product_dept;
    out->n_users = 1;
    out->user_ids = q->user_id;
    out->user_order_off = q->user_off;
    out->n_orders = (int64_t)no;
    out->order_ids = q->order_ids;
    out->eval_set = q->eval_set;
    out->dow = q->dow;
    out->hour = q->hour;
    out->days_since = q->days;
    out->order_item_off = q->item_off;
    out->n_items = (int64_t)ni;
    out->items = q->items;
    out->reordered = q->reordered;
    return NB_OK;
}

/* See history.h. The statements run inside one read transaction (unless the caller has one
 * open): one lock and one consistent snapshot per user instead of one per statement. The
 * catalogue must stay alive and unchanged while q is used with it (q caches an id map). */
int st_userq_load(st_userq *q, const st_history *catalog, int32_t user_id, st_history *out,
                  char *err, size_t errlen) {
    if (q->pm_for != catalog) {
        free(q->pm.dense);
        prod_map_init(&q->pm, catalog);
        q->pm_for = catalog;
    }
    int txn = sqlite3_get_autocommit(q->db) && sqlite3_step(q->begin_st) == SQLITE_DONE;
    sqlite3_reset(q->begin_st);
    int rc = userq_read(q, catalog, user_id, out, err, errlen);
    if (txn) {
        sqlite3_step(q->commit_st);
        sqlite3_reset(q->commit_st);
    }
    return rc;
}

/* Finalizes q's statements and frees its buffers (the last st_userq_load result dies
 * with them). Safe on NULL. */
void st_userq_free(st_userq *q) {
    if (!q) return;
    sqlite3_finalize(q->orders_st);
    sqlite3_finalize(q->items_st);
    sqlite3_finalize(q->begin_st);
    sqlite3_finalize(q->commit_st);
    free(q->pm.dense);
    free(q->order_ids);
    free(q->eval_set);
    free(q->dow);
    free(q->hour);
    free(q->days);
    free(q->item_off);
    free(q->items);
    free(q->reordered);
    free(q);
}
