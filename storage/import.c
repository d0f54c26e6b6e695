/* import.c -- Instacart CSV files -> a new store (see import.h).
 *
 * One pass over each file, one transaction, prepared statements, no journal and no fsync
 * while the temporary database is being built (a crash leaves only a temporary file that is
 * never renamed), secondary indexes created after the bulk load, WAL switched on at the end.
 * Memory: the id maps (about 64 bytes per order, per (user, order_number) pair, per product)
 * plus SQLite's page cache; nothing grows with the number of item rows.
 */
#include "import.h"
#include "atomic_file.h"
#include "csv.h"
#include "idmap.h"
#include "nb_err.h"
#include "rowq.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMP_CACHE_KIB 1048576 /* SQLite page cache while building: 1 GiB, a full-scale store fits */

typedef struct {
    sqlite3 *db;
    st_idmap depts, aisles, products;
    st_idmap orders;    /* order_id -> line << 2 | eval_set */
    st_idmap user_num;  /* user_id << 32 | order_number -> line */
    st_idmap users;     /* user_id -> 0 */
    uint8_t *prod_bits; /* bitmap of known product ids below prod_bits_n: the hot item check */
    int64_t prod_bits_n; /* stays in cache where the products map would not */
    int progress;
    double t0, t_last;
    long long rows;
    int printed;
    st_import_stats *s;
    /* the two-thread load of orders and items */
    st_rowq *q;
    st_rowbatch *cur;   /* parser: the batch being filled */
    char *paths[3];     /* IMP_ORDERS / IMP_PRIOR / IMP_TRAIN file paths, for messages */
    sqlite3_stmt *ins_order, *ins_user, *ins_item;
} imp_ctx;

enum { IMP_ORDERS = 0, IMP_PRIOR = 1, IMP_TRAIN = 2 };

static const char *const eval_names[] = {"prior", "train", "test"};

/* Counts a row and, on a terminal, reports progress at most four times a second. */
static void tick(imp_ctx *x, const st_csv *c) {
    x->rows++;
    if (!x->progress || (x->rows & 0x3FFF) != 0) return;
    double now = nb_now();
    if (now - x->t_last < 0.25) return;
    x->t_last = now;
    const char *base = strrchr(c->path, '/');
    fprintf(stderr, "\rnb-import: %-28s %12lld rows  %9.0f rows/s", base ? base + 1 : c->path, x->rows,
            x->rows / (now - x->t0));
    x->printed = 1;
}

/* Returns NB_OK or NB_EDB naming what failed. */
static int exec_sql(imp_ctx *x, const char *sql, const char *what, char *err, size_t errlen) {
    char *msg = NULL;
    if (sqlite3_exec(x->db, sql, NULL, NULL, &msg) == SQLITE_OK) return NB_OK;
    int rc = nb_err(err, errlen, NB_EDB, "%s: %s", what, msg ? msg : sqlite3_errmsg(x->db));
    sqlite3_free(msg);
    return rc;
}

/* Returns NB_OK and a prepared *st (caller finalizes), or NB_EDB. */
static int prep(imp_ctx *x, const char *sql, sqlite3_stmt **st, char *err, size_t errlen) {
    if (sqlite3_prepare_v2(x->db, sql, -1, st, NULL) == SQLITE_OK) return NB_OK;
    return nb_err(err, errlen, NB_EDB, "preparing '%s': %s", sql, sqlite3_errmsg(x->db));
}

/* Runs an INSERT whose values are bound and resets it. A constraint failure is reported
 * against field col of the current CSV record (our own checks should have caught it first).
 * Returns NB_OK, NB_EFORMAT or NB_EDB. */
static int insert_row(imp_ctx *x, sqlite3_stmt *st, const st_csv *c, int col, char *err, size_t errlen) {
    int r = sqlite3_step(st);
    int rc = NB_OK;
    if (r == SQLITE_CONSTRAINT)
        rc = st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "rejected by the store: %s", sqlite3_errmsg(x->db));
    else if (r != SQLITE_DONE)
        rc = nb_err(err, errlen, NB_EDB, "%s:%lld: insert failed: %s", c->path, c->line, sqlite3_errmsg(x->db));
    sqlite3_reset(st);
    return rc;
}

/* Returns a malloc'd "dir/name". */
static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = nb_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Opens dir/name and checks its header. Returns NB_OK (caller closes c), or an error with
 * c closed. */
static int open_csv(st_csv *c, const char *dir, const char *name, const char *const *cols, int ncols, char *err,
                    size_t errlen) {
    char *path = join_path(dir, name);
    int rc = st_csv_open(c, path, err, errlen);
    free(path);
    if (rc == NB_OK) rc = st_csv_header(c, cols, ncols, err, errlen);
    if (rc) st_csv_close(c);
    return rc;
}

/* Loads departments.csv or aisles.csv (id, name) into table, remembering ids in *ids.
 * Returns NB_OK or an error naming file, line and field. */
static int load_named(imp_ctx *x, const char *dir, const char *file, const char *table, const char *id_col,
                      const char *name_col, st_idmap *ids, long long *count, char *err, size_t errlen) {
    const char *cols[] = {id_col, name_col};
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (?1, ?2)", table);
    st_csv c;
    sqlite3_stmt *st = NULL;
    int rc = open_csv(&c, dir, file, cols, 2, err, errlen);
    if (rc) return rc;
    rc = prep(x, sql, &st, err, errlen);
    int r = 0;
    while (rc == NB_OK && (r = st_csv_read(&c, err, errlen)) == 1) {
        int64_t id;
        int found;
        if ((rc = st_csv_check_count(&c, err, errlen)) || (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &id, err, errlen)))
            break;
        uint64_t *line = st_idmap_put(ids, (uint64_t)id, &found);
        if (found) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT, "duplicate %s %lld (first on line %llu)", id_col,
                                  (long long)id, (unsigned long long)*line);
            break;
        }
        *line = (uint64_t)c.line;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, c.f[1], (int)c.flen[1], SQLITE_STATIC);
        rc = insert_row(x, st, &c, 0, err, errlen);
        (*count)++;
        tick(x, &c);
    }
    if (rc == NB_OK && r < 0) rc = r;
    sqlite3_finalize(st);
    st_csv_close(&c);
    return rc;
}

/* Loads products.csv; every aisle and department must be known. */
static int load_products(imp_ctx *x, const char *dir, char *err, size_t errlen) {
    static const char *const cols[] = {"product_id", "product_name", "aisle_id", "department_id"};
    st_csv c;
    sqlite3_stmt *st = NULL;
    int rc = open_csv(&c, dir, "products.csv", cols, 4, err, errlen);
    if (rc) return rc;
    rc = prep(x, "INSERT INTO products VALUES (?1, ?2, ?3, ?4)", &st, err, errlen);
    int r = 0;
    while (rc == NB_OK && (r = st_csv_read(&c, err, errlen)) == 1) {
        int64_t id, aisle, dept;
        int found;
        if ((rc = st_csv_check_count(&c, err, errlen)) || (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &id, err, errlen)) ||
            (rc = st_csv_int(&c, 2, 0, INT32_MAX, 0, &aisle, err, errlen)) ||
            (rc = st_csv_int(&c, 3, 0, INT32_MAX, 0, &dept, err, errlen)))
            break;
        if (!st_idmap_get(&x->aisles, (uint64_t)aisle)) {
            rc = st_csv_field_err(&c, 2, err, errlen, NB_EFORMAT, "unknown aisle_id %lld (not in aisles.csv)",
                                  (long long)aisle);
            break;
        }
        if (!st_idmap_get(&x->depts, (uint64_t)dept)) {
            rc = st_csv_field_err(&c, 3, err, errlen, NB_EFORMAT,
                                  "unknown department_id %lld (not in departments.csv)", (long long)dept);
            break;
        }
        uint64_t *line = st_idmap_put(&x->products, (uint64_t)id, &found);
        if (found) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT, "duplicate product_id %lld (first on line %llu)",
                                  (long long)id, (unsigned long long)*line);
            break;
        }
        *line = (uint64_t)c.line;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, c.f[1], (int)c.flen[1], SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, aisle);
        sqlite3_bind_int64(st, 4, dept);
        rc = insert_row(x, st, &c, 0, err, errlen);
        x->s->products++;
        tick(x, &c);
    }
    if (rc == NB_OK && r < 0) rc = r;
    sqlite3_finalize(st);
    st_csv_close(&c);
    return rc;
}

/* Appends one row to the batch being filled (kind, file), handing the previous batch to the
 * writer when it is full or of another kind. Returns NB_OK, or NB_EINTR when the writer has
 * stopped (it failed; its message is the one reported). */
static int emit(imp_ctx *x, int kind, int file, long long line, const int32_t *v, int nv) {
    st_rowbatch *b = x->cur;
    if (b && (b->kind != kind || b->file != file || b->n == ST_ROWQ_BATCH)) {
        st_rowq_push(x->q, b);
        b = x->cur = NULL;
    }
    if (!b) {
        if (!(b = x->cur = st_rowq_get_free(x->q))) return NB_EINTR;
        b->kind = kind;
        b->file = file;
    }
    memcpy(b->v[b->n], v, (size_t)nv * sizeof *v);
    b->line[b->n++] = line;
    return NB_OK;
}

/* Parser side of orders.csv: validates each row, records ids in the maps, and emits
 * (order_id, user_id, eval_set, order_number, dow, hour, days or -1, new-user flag). */
static int parse_orders(imp_ctx *x, const char *dir, char *err, size_t errlen) {
    static const char *const cols[] = {"order_id",  "user_id",           "eval_set",
                                       "order_number", "order_dow", "order_hour_of_day",
                                       "days_since_prior_order"};
    st_csv c;
    int rc = open_csv(&c, dir, "orders.csv", cols, 7, err, errlen);
    if (rc) return rc;
    x->paths[IMP_ORDERS] = strdup(c.path);
    int r = 0;
    while (rc == NB_OK && (r = st_csv_read(&c, err, errlen)) == 1) {
        int64_t id, user, num, dow, hour, days = -1;
        int found, ev;
        if ((rc = st_csv_check_count(&c, err, errlen)) || (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &id, err, errlen)) ||
            (rc = st_csv_int(&c, 1, 0, INT32_MAX, 0, &user, err, errlen)))
            break;
        for (ev = 0; ev < 3 && strcmp(c.f[2], eval_names[ev]) != 0; ev++) {
        }
        if (ev == 3) {
            rc = st_csv_field_err(&c, 2, err, errlen, NB_EFORMAT, "'%.32s' is not prior, train or test", c.f[2]);
            break;
        }
        if ((rc = st_csv_int(&c, 3, 1, INT32_MAX, 0, &num, err, errlen)) ||
            (rc = st_csv_int(&c, 4, 0, 6, 0, &dow, err, errlen)) ||
            (rc = st_csv_int(&c, 5, 0, 23, 0, &hour, err, errlen)) ||
            (c.flen[6] > 0 && (rc = st_csv_int(&c, 6, 0, 30, 1, &days, err, errlen))))
            break;
        uint64_t *v = st_idmap_put(&x->orders, (uint64_t)id, &found);
        if (found) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT, "duplicate order_id %lld (first on line %llu)",
                                  (long long)id, (unsigned long long)(*v >> 2));
            break;
        }
        *v = (uint64_t)c.line << 2 | (uint64_t)ev;
        v = st_idmap_put(&x->user_num, (uint64_t)user << 32 | (uint64_t)num, &found);
        if (found) {
            rc = st_csv_field_err(&c, 3, err, errlen, NB_EFORMAT,
                                  "user_id %lld has order_number %lld twice (first on line %llu)", (long long)user,
                                  (long long)num, (unsigned long long)*v);
            break;
        }
        *v = (uint64_t)c.line;
        st_idmap_put(&x->users, (uint64_t)user, &found);
        if (!found) x->s->users++;
        int32_t row[8] = {(int32_t)id, (int32_t)user, ev, (int32_t)num, (int32_t)dow, (int32_t)hour, (int32_t)days,
                          !found};
        if ((rc = emit(x, ST_ROW_ORDER, IMP_ORDERS, c.line, row, 8))) break;
        x->s->orders++;
        if (ev == 0) x->s->orders_prior++;
        else if (ev == 1) x->s->orders_train++;
        else x->s->orders_test++;
        tick(x, &c);
    }
    if (rc == NB_OK && r < 0) rc = r;
    st_csv_close(&c);
    return rc;
}

/* Parser side of an order_products file whose orders must all have eval_set want_ev (a
 * missing file is accepted when optional: a data set without targets). Emits (order_id,
 * add_to_cart_order, product_id, reordered). */
static int parse_items(imp_ctx *x, const char *dir, int file, int want_ev, int optional, long long *count,
                       char *err, size_t errlen) {
    static const char *const cols[] = {"order_id", "product_id", "add_to_cart_order", "reordered"};
    st_csv c;
    int rc = open_csv(&c, dir, file == IMP_PRIOR ? "order_products__prior.csv" : "order_products__train.csv", cols,
                      4, err, errlen);
    if (rc == NB_ENOTFOUND && optional) return NB_OK;
    if (rc) return rc;
    x->paths[file] = strdup(c.path);
    int r = 0;
    int64_t last_order = -1;
    const uint64_t *ov = NULL; /* x->orders is not modified while items load */
    while (rc == NB_OK && (r = st_csv_read(&c, err, errlen)) == 1) {
        int64_t order, product, pos, reord;
        if ((rc = st_csv_check_count(&c, err, errlen)) ||
            (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &order, err, errlen)) ||
            (rc = st_csv_int(&c, 1, 0, INT32_MAX, 0, &product, err, errlen)) ||
            (rc = st_csv_int(&c, 2, 1, INT32_MAX, 0, &pos, err, errlen)) ||
            (rc = st_csv_int(&c, 3, 0, 1, 0, &reord, err, errlen)))
            break;
        /* Item files are usually grouped by order: look the order up once per group. */
        if (order != last_order || !ov) {
            ov = st_idmap_get(&x->orders, (uint64_t)order);
            last_order = order;
        }
        if (!ov) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT, "unknown order_id %lld (not in orders.csv)",
                                  (long long)order);
            break;
        }
        if ((int)(*ov & 3) != want_ev) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT,
                                  "order_id %lld is a '%s' order (orders.csv line %llu), this file holds '%s' orders",
                                  (long long)order, eval_names[*ov & 3], (unsigned long long)(*ov >> 2),
                                  eval_names[want_ev]);
            break;
        }
        int known = product < x->prod_bits_n ? (x->prod_bits[product >> 3] >> (product & 7)) & 1
                                              : st_idmap_get(&x->products, (uint64_t)product) != NULL;
        if (!known) {
            rc = st_csv_field_err(&c, 1, err, errlen, NB_EFORMAT, "unknown product_id %lld (not in products.csv)",
                                  (long long)product);
            break;
        }
        int32_t row[4] = {(int32_t)order, (int32_t)pos, (int32_t)product, (int32_t)reord};
        if ((rc = emit(x, ST_ROW_ITEM, file, c.line, row, 4))) break;
        (*count)++;
        x->s->items++;
        tick(x, &c);
    }
    if (rc == NB_OK && r < 0) rc = r;
    st_csv_close(&c);
    return rc;
}

typedef struct {
    imp_ctx *x;
    const char *dir;
} parser_arg;

/* The parser thread: orders, then prior items, then train items, then an END batch carrying
 * the result. Exits early (no END) when the writer stopped the queue. */
static void *parser_main(void *arg) {
    parser_arg *a = arg;
    imp_ctx *x = a->x;
    char err[NB_ERRLEN] = "";
    int rc = parse_orders(x, a->dir, err, sizeof err);
    if (rc == NB_OK) rc = parse_items(x, a->dir, IMP_PRIOR, 0, 0, &x->s->items_prior, err, sizeof err);
    if (rc == NB_OK) rc = parse_items(x, a->dir, IMP_TRAIN, 1, 1, &x->s->items_train, err, sizeof err);
    if (rc == NB_EINTR) return NULL;
    if (x->cur) st_rowq_push(x->q, x->cur);
    x->cur = NULL;
    st_rowbatch *b = st_rowq_get_free(x->q);
    if (!b) return NULL;
    b->kind = ST_ROW_END;
    b->rc = rc;
    snprintf(b->err, sizeof b->err, "%s", err);
    st_rowq_push(x->q, b);
    return NULL;
}

/* Writer side of one batch. Returns NB_OK, NB_EFORMAT (a duplicate cart position, named by
 * file, line and field) or NB_EDB. */
static int write_batch(imp_ctx *x, const st_rowbatch *b, char *err, size_t errlen) {
    for (int i = 0; i < b->n; i++) {
        const int32_t *v = b->v[i];
        int r;
        if (b->kind == ST_ROW_ORDER) {
            if (v[7]) {
                sqlite3_bind_int(x->ins_user, 1, v[1]);
                r = sqlite3_step(x->ins_user);
                sqlite3_reset(x->ins_user);
                if (r != SQLITE_DONE)
                    return nb_err(err, errlen, NB_EDB, "%s:%lld: inserting user %d: %s", x->paths[b->file],
                                  b->line[i], v[1], sqlite3_errmsg(x->db));
            }
            for (int k = 0; k < 6; k++) sqlite3_bind_int(x->ins_order, k + 1, v[k]);
            if (v[6] < 0) sqlite3_bind_null(x->ins_order, 7);
            else sqlite3_bind_int(x->ins_order, 7, v[6]);
            r = sqlite3_step(x->ins_order);
            sqlite3_reset(x->ins_order);
        } else {
            for (int k = 0; k < 4; k++) sqlite3_bind_int(x->ins_item, k + 1, v[k]);
            r = sqlite3_step(x->ins_item);
            sqlite3_reset(x->ins_item);
            if (r == SQLITE_CONSTRAINT)
                return nb_err(err, errlen, NB_EFORMAT,
                              "%s:%lld: field add_to_cart_order: duplicate (order_id %d, add_to_cart_order %d)",
                              x->paths[b->file], b->line[i], v[0], v[1]);
        }
        if (r != SQLITE_DONE)
            return nb_err(err, errlen, NB_EDB, "%s:%lld: insert failed: %s", x->paths[b->file], b->line[i],
                          sqlite3_errmsg(x->db));
    }
    return NB_OK;
}

/* Loads orders and items with two threads: a parser (CSV, validation, id maps) and this one
 * writing to SQLite, the larger half of the work. Errors come out in file order: the parser's
 * error travels behind the rows it read before it. Returns NB_OK or the first error. */
static int load_orders_items(imp_ctx *x, const char *dir, char *err, size_t errlen) {
    int rc;
    if ((rc = prep(x, "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &x->ins_order, err, errlen)) ||
        (rc = prep(x, "INSERT INTO users VALUES (?1)", &x->ins_user, err, errlen)) ||
        (rc = prep(x, "INSERT INTO order_items VALUES (?1, ?2, ?3, ?4)", &x->ins_item, err, errlen)))
        return rc;
    x->q = st_rowq_new(6);
    parser_arg a = {x, dir};
    pthread_t th;
    if (pthread_create(&th, NULL, parser_main, &a) != 0) {
        st_rowq_free(x->q);
        x->q = NULL;
        return nb_err(err, errlen, NB_EIO, "cannot start the parser thread");
    }
    for (;;) {
        st_rowbatch *b = st_rowq_pop(x->q);
        if (b->kind == ST_ROW_END) {
            rc = b->rc;
            if (rc) snprintf(err, errlen, "%s", b->err);
            st_rowq_release(x->q, b);
            break;
        }
        rc = write_batch(x, b, err, errlen);
        st_rowq_release(x->q, b);
        if (rc) {
            st_rowq_stop(x->q);
            break;
        }
    }
    pthread_join(th, NULL);
    st_rowq_free(x->q);
    x->q = NULL;
    return rc;
}

/* Builds x->prod_bits from x->products for ids below 2^27 (a bitmap of at most 16 MiB). */
static void product_bitmap(imp_ctx *x) {
    int64_t max_id = -1;
    for (size_t i = 0; i < x->products.cap; i++)
        if (x->products.slots[i].key && (int64_t)x->products.slots[i].key - 1 > max_id)
            max_id = (int64_t)x->products.slots[i].key - 1;
    x->prod_bits_n = max_id + 1 < (INT64_C(1) << 27) ? max_id + 1 : (INT64_C(1) << 27);
    x->prod_bits = nb_xcalloc((size_t)(x->prod_bits_n >> 3) + 1, 1);
    for (size_t i = 0; i < x->products.cap; i++) {
        int64_t id = (int64_t)x->products.slots[i].key - 1;
        if (x->products.slots[i].key && id < x->prod_bits_n) x->prod_bits[id >> 3] |= (uint8_t)(1u << (id & 7));
    }
}

/* Drops the schema's secondary indexes (to be rebuilt after the bulk load) and returns their
 * CREATE statements, malloc'd, in *sql. Returns NB_OK or NB_EDB. */
static int drop_indexes(imp_ctx *x, char **sql, char *err, size_t errlen) {
    sqlite3_stmt *st = NULL;
    size_t len = 0, cap = 256;
    char *create = nb_xmalloc(cap), *drop = NULL;
    size_t dlen = 0, dcap = 256;
    drop = nb_xmalloc(dcap);
    create[0] = drop[0] = 0;
    int rc = prep(x, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL", &st, err, errlen);
    while (rc == NB_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1);
        size_t need = strlen(text) + 4;
        while (len + need >= cap) create = nb_xrealloc(create, cap *= 2);
        len += (size_t)snprintf(create + len, cap - len, "%s;\n", text);
        need = strlen(name) + 32;
        while (dlen + need >= dcap) drop = nb_xrealloc(drop, dcap *= 2);
        dlen += (size_t)snprintf(drop + dlen, dcap - dlen, "DROP INDEX \"%s\";\n", name);
    }
    sqlite3_finalize(st);
    if (rc == NB_OK) rc = exec_sql(x, drop, "dropping indexes for the bulk load", err, errlen);
    free(drop);
    if (rc) {
        free(create);
        return rc;
    }
    *sql = create;
    return NB_OK;
}

/* Builds the complete store in the file tmp. Returns NB_OK with x->db closed, or an error
 * (x->db closed as well; the caller removes the files). */
static int build(imp_ctx *x, const char *tmp, const char *csv_dir, const char *cat_dir, char *err, size_t errlen) {
    char *index_sql = NULL;
    int rc = NB_OK;
    if (sqlite3_open_v2(tmp, &x->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: cannot create: %s", tmp, x->db ? sqlite3_errmsg(x->db) : "out of memory");
        goto done;
    }
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-%d;",
             IMP_CACHE_KIB);
    if ((rc = exec_sql(x, pragmas, tmp, err, errlen)) || (rc = exec_sql(x, "BEGIN", tmp, err, errlen)) ||
        (rc = exec_sql(x, st_schema_sql(), "applying schema.sql", err, errlen)) ||
        (rc = drop_indexes(x, &index_sql, err, errlen)))
        goto done;
    if ((rc = load_named(x, cat_dir, "departments.csv", "departments", "department_id", "department", &x->depts,
                         &x->s->departments, err, errlen)) ||
        (rc = load_named(x, cat_dir, "aisles.csv", "aisles", "aisle_id", "aisle", &x->aisles, &x->s->aisles, err,
                         errlen)) ||
        (rc = load_products(x, cat_dir, err, errlen)))
        goto done;
    product_bitmap(x);
    if ((rc = load_orders_items(x, csv_dir, err, errlen)))
        goto done;
    double t = nb_now();
    x->s->seconds_rows = t - x->t0;
    if ((rc = exec_sql(x, index_sql, "creating indexes", err, errlen)))
        goto done;
    x->s->seconds_index = nb_now() - t;
    if ((rc = exec_sql(x, "COMMIT", tmp, err, errlen)) ||
        (rc = exec_sql(x, "PRAGMA journal_mode=WAL", tmp, err, errlen)))
        goto done;
done:
    free(index_sql);
    sqlite3_finalize(x->ins_order);
    sqlite3_finalize(x->ins_user);
    sqlite3_finalize(x->ins_item);
    x->ins_order = x->ins_user = x->ins_item = NULL;
    if (x->db && sqlite3_close(x->db) != SQLITE_OK && rc == NB_OK)
        rc = nb_err(err, errlen, NB_EDB, "%s: close failed: %s", tmp, sqlite3_errmsg(x->db));
    x->db = NULL;
    return rc;
}

/* Flushes the finished file to disk before it is renamed into place. Returns 0 or -1. */
static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* A write-ahead log left next to the store we replace would be read as the new store's log
 * (SQLite does not tie a WAL file to its database). So before the rename: if "<db>-wal"
 * exists, checkpoint it into the old store and truncate it. Returns NB_OK when there is no
 * log left with content (empty or gone), else NB_EIO naming the file (another process is
 * writing the old store; nothing has been replaced). */
static int settle_old_wal(const char *db_path, char *err, size_t errlen) {
    size_t n = strlen(db_path) + 8;
    char *wal = nb_xmalloc(n);
    snprintf(wal, n, "%s-wal", db_path);
    struct stat sb;
    int rc = NB_OK;
    if (stat(wal, &sb) == 0 && sb.st_size > 0) {
        sqlite3 *old = NULL;
        if (sqlite3_open_v2(db_path, &old, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
            sqlite3_busy_timeout(old, 2000);
            sqlite3_exec(old, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        }
        sqlite3_close(old);
        if (stat(wal, &sb) == 0 && sb.st_size > 0)
            rc = nb_err(err, errlen, NB_EIO,
                        "%s: the store being replaced has a non-empty write-ahead log that could not be "
                        "checkpointed (is another process writing it?); not replacing it",
                        wal);
    }
    free(wal);
    return rc;
}

/* See import.h. Builds the store under nb_tmp_name(db_path), fsyncs it, settles a
 * leftover WAL of the old store, renames, fsyncs the directory; removes the temporary file
 * and its side files whatever happened. */
int st_import(const char *csv_dir, const char *catalog_dir, const char *db_path, int progress,
              st_import_stats *out, char *err, size_t errlen) {
    st_import_stats stats;
    memset(&stats, 0, sizeof stats);
    imp_ctx x;
    memset(&x, 0, sizeof x);
    x.s = &stats;
    x.progress = progress;
    x.t0 = nb_now();
    x.t_last = x.t0 - 1; /* the first check prints at once */
    st_idmap_init(&x.depts, 64);
    st_idmap_init(&x.aisles, 256);
    st_idmap_init(&x.products, 1 << 16);
    st_idmap_init(&x.orders, 1 << 16);
    st_idmap_init(&x.user_num, 1 << 16);
    st_idmap_init(&x.users, 1 << 12);
    char *tmp = nb_tmp_name(db_path);
    st_remove_files(tmp); /* a leftover of a killed run that had our pid */
    int rc = build(&x, tmp, csv_dir, catalog_dir ? catalog_dir : csv_dir, err, errlen);
    if (x.printed) fputc('\n', stderr);
    double t_fin = nb_now();
    if (rc == NB_OK && fsync_path(tmp) != 0)
        rc = nb_err(err, errlen, NB_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (rc == NB_OK) rc = settle_old_wal(db_path, err, errlen);
    if (rc == NB_OK && rename(tmp, db_path) != 0)
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot rename the new store into place: %s", db_path, strerror(errno));
    if (rc == NB_OK) nb_fsync_dir(db_path);
    st_remove_files(tmp); /* the database itself after a failure; WAL/SHM side files always */
    free(tmp);
    st_idmap_free(&x.depts);
    st_idmap_free(&x.aisles);
    st_idmap_free(&x.products);
    st_idmap_free(&x.orders);
    st_idmap_free(&x.user_num);
    st_idmap_free(&x.users);
    free(x.prod_bits);
    for (int i = 0; i < 3; i++) free(x.paths[i]);
    stats.seconds = nb_now() - x.t0;
    stats.seconds_fsync = nb_now() - t_fin;
    if (rc == NB_OK && out) *out = stats;
    return rc;
}
