/* import.c -- Instacart CSV files -> a new store (see import.h).
 *
 * One pass over each file, one transaction, prepared statements, no journal and no fsync
 * while the temporary database is being built (a crash leaves only a temporary file that is
 * never renamed), secondary indexes created after the bulk load, WAL switched on at the end.
 * Orders and items flow through two threads: a parser (CSV, validation, id maps) and the
 * caller's thread, the only one that touches SQLite.
 * Memory: the id maps (32 to 64 bytes per order, per (user, order_number) pair, per user),
 * a bitmap of product ids, SQLite's page cache (IMP_CACHE_KIB), a few row batches, the
 * products of the largest order (duplicate check) and one CSV record (at most
 * ST_CSV_MAX_RECORD bytes); nothing grows with the number of item rows or the length of a
 * line.
 */
#include "import.h"
#include "atomic_file.h"
#include "csv.h"
#include "idmap.h"
#include "nb_err.h"
#include "rng.h"
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

/* A set of the products of one order, emptied in O(1) (by bumping gen) when the next
 * order's items begin: items files are grouped by order, so duplicate (order, product) rows
 * are found with memory for the largest order only. */
typedef struct {
    int32_t product;
    uint32_t gen;   /* the slot is in use when gen equals the set's gen */
    long long line; /* where the product was first seen */
} imp_group_slot;

typedef struct {
    imp_group_slot *s;
    size_t cap, n; /* cap a power of two (or 0) */
    uint32_t gen;
} imp_group;

typedef struct {
    sqlite3 *db;
    st_idmap depts, aisles, products;
    st_idmap orders;     /* order_id -> line << 3 | has-items << 2 | eval_set */
    st_idmap user_num;   /* user_id << 32 | order_number -> line */
    st_idmap users;      /* user_id -> highest order_number << 33 | final order_number << 2 |
                           final eval_set (0: none yet, else its train/test code) */
    st_idmap reopened;   /* order ids whose items are not all on consecutive lines -> 0 */
    imp_group grp;       /* the products of the order whose items are being read */
    uint8_t *prod_bits;  /* bitmap of known product ids below prod_bits_n: the hot item check */
    int64_t prod_bits_n; /* stays in cache where the products map would not */
    int progress;
    double t0, t_last;
    long long rows;
    int printed;
    st_import_stats *s;
    /* the two-thread load of orders and items */
    st_rowq *q;
    st_rowbatch *cur; /* parser: the batch being filled */
    char *paths[3];   /* IMP_ORDERS / IMP_PRIOR / IMP_TRAIN file paths, for messages */
    sqlite3_stmt *ins_order, *ins_user, *ins_item;
} imp_ctx;

enum { IMP_ORDERS = 0, IMP_PRIOR = 1, IMP_TRAIN = 2 };

/* Empties g for the next order. */
static void group_clear(imp_group *g) {
    g->n = 0;
    if (++g->gen == 0) { /* after 2^32 orders: old stamps could match again */
        if (g->s) memset(g->s, 0, g->cap * sizeof *g->s);
        g->gen = 1;
    }
}

/* Adds product (seen on line) to g. Returns 0 (added), 1 (already there: *first is the line
 * it was first seen on) or -1 (out of memory; g unchanged). */
static int group_add(imp_group *g, int32_t product, long long line, long long *first) {
    if (2 * (g->n + 1) > g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        imp_group_slot *ns = calloc(cap, sizeof *ns);
        if (!ns) return -1;
        uint32_t gen = g->gen ? g->gen : 1;
        for (size_t i = 0; i < g->cap; i++) {
            if (g->s[i].gen != g->gen) continue;
            size_t j = nb_hash64((uint64_t)g->s[i].product) & (cap - 1);
            while (ns[j].gen == gen) j = (j + 1) & (cap - 1);
            ns[j] = g->s[i];
            ns[j].gen = gen;
        }
        free(g->s);
        g->s = ns;
        g->cap = cap;
        g->gen = gen;
    }
    size_t j = nb_hash64((uint64_t)product) & (g->cap - 1);
    for (; g->s[j].gen == g->gen; j = (j + 1) & (g->cap - 1)) {
        if (g->s[j].product == product) {
            *first = g->s[j].line;
            return 1;
        }
    }
    g->s[j].product = product;
    g->s[j].gen = g->gen;
    g->s[j].line = line;
    g->n++;
    return 0;
}

static const char *const eval_names[] = {"prior", "train", "test"};

/* Counts a row and, on a terminal, reports progress at most four times a second. */
static void tick(imp_ctx *x, const st_csv *c) {
    x->rows++;
    if (!x->progress || (x->rows & 0x3FFF) != 0) return;
    double now = nb_now();
    if (now - x->t_last < 0.25) return;
    x->t_last = now;
    const char *base = strrchr(c->path, '/');
    fprintf(stderr, "\rnb-import: %-28s %12lld rows  %9.0f rows/s", base ? base + 1 : c->path,
            x->rows, x->rows / (now - x->t0));
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
static int insert_row(imp_ctx *x, sqlite3_stmt *st, const st_csv *c, int col, char *err,
                      size_t errlen) {
    int r = sqlite3_step(st);
    int rc = NB_OK;
    if (r == SQLITE_CONSTRAINT)
        rc = st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "rejected by the store: %s",
                              sqlite3_errmsg(x->db));
    else if (r != SQLITE_DONE)
        rc = nb_err(err, errlen, NB_EDB, "%s:%lld: insert failed: %s", c->path, c->line,
                    sqlite3_errmsg(x->db));
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
static int open_csv(st_csv *c, const char *dir, const char *name, const char *const *cols,
                    int ncols, char *err, size_t errlen) {
    char *path = join_path(dir, name);
    int rc = st_csv_open(c, path, err, errlen);
    free(path);
    if (rc == NB_OK) rc = st_csv_header(c, cols, ncols, err, errlen);
    if (rc) st_csv_close(c);
    return rc;
}

/* Reports that a map of ids could not grow: "<path>:<line>: out of memory ...". Returns
 * NB_ENOMEM. */
static int oom(const st_csv *c, size_t n, const char *what, char *err, size_t errlen) {
    return nb_err(err, errlen, NB_ENOMEM,
                  "%s:%lld: out of memory after %zu %s (the input is too large for this machine)",
                  c->path, c->line, n, what);
}

/* Loads departments.csv or aisles.csv (id, name) into table, remembering ids in *ids.
 * Returns NB_OK or an error naming file, line and field. */
static int load_named(imp_ctx *x, const char *dir, const char *file, const char *table,
                      const char *id_col, const char *name_col, st_idmap *ids, long long *count,
                      char *err, size_t errlen) {
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
        if ((rc = st_csv_check_count(&c, err, errlen)) ||
            (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &id, err, errlen)) ||
            (rc = st_csv_text(&c, 1, ST_IMPORT_MAX_NAME, err, errlen)))
            break;
        uint64_t *line = st_idmap_put(ids, (uint64_t)id, &found);
        if (!line) {
            rc = oom(&c, ids->n, id_col, err, errlen);
            break;
        }
        if (found) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT,
                                  "duplicate %s %lld (first on line %llu)", id_col, (long long)id,
                                  (unsigned long long)*line);
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
        if ((rc = st_csv_check_count(&c, err, errlen)) ||
            (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &id, err, errlen)) ||
            (rc = st_csv_int(&c, 2, 0, INT32_MAX, 0, &aisle, err, errlen)) ||
            (rc = st_csv_int(&c, 3, 0, INT32_MAX, 0, &dept, err, errlen)) ||
            (rc = st_csv_text(&c, 1, ST_IMPORT_MAX_NAME, err, errlen)))
            break;
        if (!st_idmap_get(&x->aisles, (uint64_t)aisle)) {
            rc = st_csv_field_err(&c, 2, err, errlen, NB_EFORMAT,
                                  "unknown aisle_id %lld (not in aisles.csv)", (long long)aisle);
            break;
        }
        if (!st_idmap_get(&x->depts, (uint64_t)dept)) {
            rc = st_csv_field_err(&c, 3, err, errlen, NB_EFORMAT,
                                  "unknown department_id %lld (not in departments.csv)",
                                  (long long)dept);
            break;
        }
        uint64_t *line = st_idmap_put(&x->products, (uint64_t)id, &found);
        if (!line) {
            rc = oom(&c, x->products.n, "products", err, errlen);
            break;
        }
        if (found) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT,
                                  "duplicate product_id %lld (first on line %llu)", (long long)id,
                                  (unsigned long long)*line);
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

/* The Instacart layout's rule for a user's orders: all are 'prior' except at most one, the
 * 'train' (target) or 'test' (withheld) order, which is the user's last by order_number.
 * Checks the current row (user, num, ev) against the user's state *u (see imp_ctx.users)
 * and updates it; rows may come in any order, so both "this final order is not the last"
 * and "this order comes after the final one" are caught. Returns NB_OK or NB_EFORMAT naming
 * the field and the line of the other order. */
static int check_final(imp_ctx *x, const st_csv *c, uint64_t *u, int64_t user, int64_t num, int ev,
                       char *err, size_t errlen) {
    int64_t max_num = (int64_t)(*u >> 33), fin_num = (int64_t)(*u >> 2 & 0x7FFFFFFF);
    int fin_ev = (int)(*u & 3);
    /* the line of the user's order number n (it is in the map: every order of the user is) */
#define LINE_OF(n) (*st_idmap_get(&x->user_num, (uint64_t)user << 32 | (uint64_t)(n)))
    if (ev != ST_PRIOR && fin_ev == ev)
        return st_csv_field_err(
            c, 2, err, errlen, NB_EFORMAT,
            "user_id %lld has a second '%s' order (the first is order_number %lld on line %llu); "
            "a user has at most one",
            (long long)user, eval_names[ev], (long long)fin_num,
            (unsigned long long)LINE_OF(fin_num));
    if (ev != ST_PRIOR && fin_ev != 0)
        return st_csv_field_err(
            c, 2, err, errlen, NB_EFORMAT,
            "user_id %lld has both a '%s' order (order_number %lld on line %llu) and this '%s' "
            "order; a user has one or the other",
            (long long)user, eval_names[fin_ev], (long long)fin_num,
            (unsigned long long)LINE_OF(fin_num), eval_names[ev]);
    if (ev != ST_PRIOR && num < max_num)
        return st_csv_field_err(
            c, 3, err, errlen, NB_EFORMAT,
            "a '%s' order must be the user's last, but user_id %lld has order_number %lld "
            "(line %llu) after this one, %lld",
            eval_names[ev], (long long)user, (long long)max_num,
            (unsigned long long)LINE_OF(max_num), (long long)num);
    if (ev == ST_PRIOR && fin_ev != 0 && num > fin_num)
        return st_csv_field_err(
            c, 3, err, errlen, NB_EFORMAT,
            "user_id %lld's '%s' order (order_number %lld on line %llu) must be the user's last, "
            "but this order has order_number %lld",
            (long long)user, eval_names[fin_ev], (long long)fin_num,
            (unsigned long long)LINE_OF(fin_num), (long long)num);
#undef LINE_OF
    if (num > max_num) max_num = num;
    if (ev != ST_PRIOR) {
        fin_num = num;
        fin_ev = ev;
    }
    *u = (uint64_t)max_num << 33 | (uint64_t)fin_num << 2 | (uint64_t)fin_ev;
    return NB_OK;
}

/* Parser side of orders.csv: validates each row, records ids in the maps, and emits
 * (order_id, user_id, eval_set, order_number, dow, hour, days or -1, new-user flag). */
static int parse_orders(imp_ctx *x, const char *dir, char *err, size_t errlen) {
    static const char *const cols[] = {"order_id",
                                       "user_id",
                                       "eval_set",
                                       "order_number",
                                       "order_dow",
                                       "order_hour_of_day",
                                       "days_since_prior_order"};
    st_csv c;
    int rc = open_csv(&c, dir, "orders.csv", cols, 7, err, errlen);
    if (rc) return rc;
    x->paths[IMP_ORDERS] = strdup(c.path);
    int r = 0;
    while (rc == NB_OK && (r = st_csv_read(&c, err, errlen)) == 1) {
        int64_t id, user, num, dow, hour, days = -1;
        int found, ev;
        if ((rc = st_csv_check_count(&c, err, errlen)) ||
            (rc = st_csv_int(&c, 0, 0, INT32_MAX, 0, &id, err, errlen)) ||
            (rc = st_csv_int(&c, 1, 0, INT32_MAX, 0, &user, err, errlen)))
            break;
        /* the length too: "prior<NUL>x" is not prior */
        for (ev = 0;
             ev < 3 && (strcmp(c.f[2], eval_names[ev]) != 0 || c.flen[2] != strlen(eval_names[ev]));
             ev++) {}
        if (ev == 3) {
            rc = st_csv_field_err(&c, 2, err, errlen, NB_EFORMAT,
                                  "'%.32s' is not prior, train or test", c.f[2]);
            break;
        }
        if ((rc = st_csv_int(&c, 3, 1, INT32_MAX, 0, &num, err, errlen)) ||
            (rc = st_csv_int(&c, 4, 0, 6, 0, &dow, err, errlen)) ||
            (rc = st_csv_int(&c, 5, 0, 23, 0, &hour, err, errlen)) ||
            (c.flen[6] > 0 && (rc = st_csv_int(&c, 6, 0, 30, 1, &days, err, errlen))))
            break;
        uint64_t *v = st_idmap_put(&x->orders, (uint64_t)id, &found);
        if (!v) {
            rc = oom(&c, x->orders.n, "orders", err, errlen);
            break;
        }
        if (found) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT,
                                  "duplicate order_id %lld (first on line %llu)", (long long)id,
                                  (unsigned long long)(*v >> 3));
            break;
        }
        *v = (uint64_t)c.line << 3 | (uint64_t)ev;
        v = st_idmap_put(&x->user_num, (uint64_t)user << 32 | (uint64_t)num, &found);
        if (!v) {
            rc = oom(&c, x->user_num.n, "orders", err, errlen);
            break;
        }
        if (found) {
            rc = st_csv_field_err(&c, 3, err, errlen, NB_EFORMAT,
                                  "user_id %lld has order_number %lld twice (first on line %llu)",
                                  (long long)user, (long long)num, (unsigned long long)*v);
            break;
        }
        *v = (uint64_t)c.line;
        v = st_idmap_put(&x->users, (uint64_t)user, &found);
        if (!v) {
            rc = oom(&c, x->users.n, "users", err, errlen);
            break;
        }
        if (!found) x->s->users++;
        if ((rc = check_final(x, &c, v, user, num, ev, err, errlen))) break;
        int32_t row[8] = {(int32_t)id,   (int32_t)user, ev,    (int32_t)num, (int32_t)dow,
                          (int32_t)hour, (int32_t)days, !found};
        if ((rc = emit(x, ST_ROW_ORDER, IMP_ORDERS, c.line, row, 8))) break;
        x->s->orders++;
        if (ev == 0)
            x->s->orders_prior++;
        else if (ev == 1)
            x->s->orders_train++;
        else
            x->s->orders_test++;
        tick(x, &c);
    }
    if (rc == NB_OK && r < 0) rc = r;
    st_csv_close(&c);
    return rc;
}

/* Parser side of an order_products file whose orders must all have eval_set want_ev (a
 * missing file is accepted when optional: a data set without targets). Emits (order_id,
 * add_to_cart_order, product_id, reordered). */
static int parse_items(imp_ctx *x, const char *dir, int file, int want_ev, int optional,
                       long long *count, char *err, size_t errlen) {
    static const char *const cols[] = {"order_id", "product_id", "add_to_cart_order", "reordered"};
    st_csv c;
    int rc = open_csv(&c, dir,
                      file == IMP_PRIOR ? "order_products__prior.csv" : "order_products__train.csv",
                      cols, 4, err, errlen);
    if (rc == NB_ENOTFOUND && optional) return NB_OK;
    if (rc) return rc;
    x->paths[file] = strdup(c.path);
    int r = 0;
    int64_t last_order = -1;
    uint64_t *ov =
        NULL; /* x->orders gets no new key while items load (only has-items bits): stays valid */
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
            if (ov && (*ov & 4)) {
                /* this order's items began earlier in the file: duplicates across its groups are
                 * looked for in the store once everything is loaded (check_reopened) */
                int found;
                if (!st_idmap_put(&x->reopened, (uint64_t)order, &found)) {
                    rc = oom(&c, x->reopened.n, "orders with scattered items", err, errlen);
                    break;
                }
            }
            if (ov) *ov |= 4;
            group_clear(&x->grp);
        }
        if (!ov) {
            rc = st_csv_field_err(&c, 0, err, errlen, NB_EFORMAT,
                                  "unknown order_id %lld (not in orders.csv)", (long long)order);
            break;
        }
        if ((int)(*ov & 3) != want_ev) {
            rc = st_csv_field_err(
                &c, 0, err, errlen, NB_EFORMAT,
                "order_id %lld is a '%s' order (orders.csv line %llu), this file holds '%s' orders",
                (long long)order, eval_names[*ov & 3], (unsigned long long)(*ov >> 3),
                eval_names[want_ev]);
            break;
        }
        int known = product < x->prod_bits_n
            ? (x->prod_bits[product >> 3] >> (product & 7)) & 1
            : st_idmap_get(&x->products, (uint64_t)product) != NULL;
        if (!known) {
            rc = st_csv_field_err(&c, 1, err, errlen, NB_EFORMAT,
                                  "unknown product_id %lld (not in products.csv)",
                                  (long long)product);
            break;
        }
        long long first;
        int dup = group_add(&x->grp, (int32_t)product, c.line, &first);
        if (dup < 0) {
            rc = oom(&c, x->grp.n, "items of one order", err, errlen);
            break;
        }
        if (dup) {
            rc = st_csv_field_err(
                &c, 1, err, errlen, NB_EFORMAT,
                "product_id %lld appears twice in order_id %lld (first on line %lld)",
                (long long)product, (long long)order, first);
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
    if (rc == NB_OK)
        rc = parse_items(x, a->dir, IMP_PRIOR, 0, 0, &x->s->items_prior, err, sizeof err);
    if (rc == NB_OK)
        rc = parse_items(x, a->dir, IMP_TRAIN, 1, 1, &x->s->items_train, err, sizeof err);
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
                    return nb_err(err, errlen, NB_EDB, "%s:%lld: inserting user %d: %s",
                                  x->paths[b->file], b->line[i], v[1], sqlite3_errmsg(x->db));
            }
            for (int k = 0; k < 6; k++) sqlite3_bind_int(x->ins_order, k + 1, v[k]);
            if (v[6] < 0)
                sqlite3_bind_null(x->ins_order, 7);
            else
                sqlite3_bind_int(x->ins_order, 7, v[6]);
            r = sqlite3_step(x->ins_order);
            sqlite3_reset(x->ins_order);
        } else {
            for (int k = 0; k < 4; k++) sqlite3_bind_int(x->ins_item, k + 1, v[k]);
            r = sqlite3_step(x->ins_item);
            sqlite3_reset(x->ins_item);
            if (r == SQLITE_CONSTRAINT)
                return nb_err(err, errlen, NB_EFORMAT,
                              "%s:%lld: field add_to_cart_order: duplicate (order_id %d, "
                              "add_to_cart_order %d)",
                              x->paths[b->file], b->line[i], v[0], v[1]);
        }
        if (r != SQLITE_DONE)
            return nb_err(err, errlen, NB_EDB, "%s:%lld: insert failed: %s", x->paths[b->file],
                          b->line[i], sqlite3_errmsg(x->db));
    }
    return NB_OK;
}

/* Loads orders and items with two threads: a parser (CSV, validation, id maps) and this one
 * writing to SQLite, the larger half of the work. Errors come out in file order: the parser's
 * error travels behind the rows it read before it. Returns NB_OK or the first error. */
static int load_orders_items(imp_ctx *x, const char *dir, char *err, size_t errlen) {
    int rc;
    if ((rc = prep(x, "INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &x->ins_order, err,
                   errlen)) ||
        (rc = prep(x, "INSERT INTO users VALUES (?1)", &x->ins_user, err, errlen)) ||
        (rc =
             prep(x, "INSERT INTO order_items VALUES (?1, ?2, ?3, ?4)", &x->ins_item, err, errlen)))
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

/* Finds the first two lines of the items file path that hold (order, product), for the
 * message about a duplicate found in the store. Returns NB_OK with *l1 < *l2, or an error
 * (reading the file again failed, or the pair was not found twice). */
static int dup_lines(const char *path, int64_t order, int64_t product, long long *l1, long long *l2,
                     char *err, size_t errlen) {
    static const char *const cols[] = {"order_id", "product_id", "add_to_cart_order", "reordered"};
    st_csv c;
    int rc = st_csv_open(&c, path, err, errlen);
    if (rc == NB_OK) rc = st_csv_header(&c, cols, 4, err, errlen);
    int r = 0;
    *l1 = 0;
    while (rc == NB_OK && (r = st_csv_read(&c, err, errlen)) == 1) {
        int64_t o, p;
        if (st_csv_int(&c, 0, 0, INT32_MAX, 0, &o, NULL, 0) || o != order ||
            st_csv_int(&c, 1, 0, INT32_MAX, 0, &p, NULL, 0) || p != product)
            continue;
        if (*l1) {
            *l2 = c.line;
            break;
        }
        *l1 = c.line;
    }
    if (rc == NB_OK && r < 0) rc = r;
    if (rc == NB_OK && r != 1)
        rc = nb_err(err, errlen, NB_EIO,
                    "%s: changed while it was imported (order_id %lld, product_id %lld)", path,
                    (long long)order, (long long)product);
    st_csv_close(&c);
    return rc;
}

/* Duplicate (order, product) rows across the scattered item groups of the orders in
 * x->reopened (rare: the files we know group items by order, and then the parser has
 * checked everything). Reads each such order's items back from the store through its primary
 * key. Returns NB_OK, NB_EFORMAT "<file>:<line>: field product_id: ..." naming both lines,
 * NB_ENOMEM or NB_EDB. */
static int check_reopened(imp_ctx *x, char *err, size_t errlen) {
    if (x->reopened.n == 0) return NB_OK;
    sqlite3_stmt *st = NULL;
    int rc = prep(x, "SELECT product_id FROM order_items WHERE order_id = ?1", &st, err, errlen);
    for (size_t i = 0; rc == NB_OK && i < x->reopened.cap; i++) {
        if (!x->reopened.slots[i].key) continue;
        int64_t order = (int64_t)x->reopened.slots[i].key - 1;
        group_clear(&x->grp);
        sqlite3_bind_int64(st, 1, order);
        int r = SQLITE_DONE;
        while (rc == NB_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            int32_t product = sqlite3_column_int(st, 0);
            long long first;
            int dup = group_add(&x->grp, product, 0, &first);
            if (dup < 0) {
                rc = nb_err(err, errlen, NB_ENOMEM,
                            "out of memory checking the items of order_id %lld", (long long)order);
            } else if (dup) {
                const uint64_t *ov = st_idmap_get(&x->orders, (uint64_t)order);
                const char *path = x->paths[ov && (*ov & 3) == ST_TRAIN ? IMP_TRAIN : IMP_PRIOR];
                long long l1 = 0, l2 = 0;
                rc = dup_lines(path, order, product, &l1, &l2, err, errlen);
                if (rc == NB_OK)
                    rc = nb_err(err, errlen, NB_EFORMAT,
                                "%s:%lld: field product_id: product_id %d appears twice in "
                                "order_id %lld (first on "
                                "line %lld)",
                                path, l2, product, (long long)order, l1);
            }
        }
        if (rc == NB_OK && r != SQLITE_DONE)
            rc = nb_err(err, errlen, NB_EDB, "reading the items of order_id %lld: %s",
                        (long long)order, sqlite3_errmsg(x->db));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Builds x->prod_bits from x->products for the ids below the smallest of 2^27, the largest
 * id + 1 and max(2^16, 256 per product): the bitmap's size follows the catalogue, not one
 * outlying id (a products.csv with three ids near 10^8 would otherwise cost a 16 MiB
 * calloc); ids above it are looked up in x->products. Returns NB_OK or NB_ENOMEM. */
static int product_bitmap(imp_ctx *x, char *err, size_t errlen) {
    int64_t max_id = -1;
    for (size_t i = 0; i < x->products.cap; i++)
        if (x->products.slots[i].key && (int64_t)x->products.slots[i].key - 1 > max_id)
            max_id = (int64_t)x->products.slots[i].key - 1;
    int64_t cap = (int64_t)x->products.n * 256;
    if (cap < (INT64_C(1) << 16)) cap = INT64_C(1) << 16;
    if (cap > (INT64_C(1) << 27)) cap = INT64_C(1) << 27;
    x->prod_bits_n = max_id + 1 < cap ? max_id + 1 : cap;
    if (!(x->prod_bits = calloc((size_t)(x->prod_bits_n >> 3) + 1, 1)))
        return nb_err(err, errlen, NB_ENOMEM,
                      "out of memory for the bitmap of product ids up to %lld",
                      (long long)x->prod_bits_n);
    for (size_t i = 0; i < x->products.cap; i++) {
        int64_t id = (int64_t)x->products.slots[i].key - 1;
        if (x->products.slots[i].key && id < x->prod_bits_n)
            x->prod_bits[id >> 3] |= (uint8_t)(1u << (id & 7));
    }
    return NB_OK;
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
    int rc = prep(x, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
                  &st, err, errlen);
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
static int build(imp_ctx *x, const char *tmp, const char *csv_dir, const char *cat_dir, char *err,
                 size_t errlen) {
    char *index_sql = NULL;
    int rc = NB_OK;
    if (sqlite3_open_v2(tmp, &x->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: cannot create: %s", tmp,
                    x->db ? sqlite3_errmsg(x->db) : "out of memory");
        goto done;
    }
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-%d;",
             IMP_CACHE_KIB);
    if ((rc = exec_sql(x, pragmas, tmp, err, errlen)) ||
        (rc = exec_sql(x, "BEGIN", tmp, err, errlen)) ||
        (rc = exec_sql(x, st_schema_sql(), "applying schema.sql", err, errlen)) ||
        (rc = drop_indexes(x, &index_sql, err, errlen)))
        goto done;
    if ((rc = load_named(x, cat_dir, "departments.csv", "departments", "department_id",
                         "department", &x->depts, &x->s->departments, err, errlen)) ||
        (rc = load_named(x, cat_dir, "aisles.csv", "aisles", "aisle_id", "aisle", &x->aisles,
                         &x->s->aisles, err, errlen)) ||
        (rc = load_products(x, cat_dir, err, errlen)))
        goto done;
    if ((rc = product_bitmap(x, err, errlen)) ||
        (rc = load_orders_items(x, csv_dir, err, errlen)) || (rc = check_reopened(x, err, errlen)))
        goto done;
    double t = nb_now();
    x->s->seconds_rows = t - x->t0;
    if ((rc = exec_sql(x, index_sql, "creating indexes", err, errlen))) goto done;
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
            rc = nb_err(
                err, errlen, NB_EIO,
                "%s: the store being replaced has a non-empty write-ahead log that could not be "
                "checkpointed (is another process writing it?); not replacing it",
                wal);
    }
    free(wal);
    return rc;
}

/* Creates the empty file tmp, which SQLite then fills (it opens an empty file as a new
 * database), with the permission bits of the store it will replace: a store chmod'ed 600
 * holds every user's order history and must not come back 644, nor be readable while it is
 * being built. SQLite gives its -wal and -shm files the database file's mode. Returns NB_OK
 * or NB_EIO naming the file. */
static int create_tmp(const char *tmp, const char *db_path, char *err, size_t errlen) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return nb_err(err, errlen, NB_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = NB_OK;
    if (nb_keep_mode(db_path, fd) != 0)
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot give it the mode of %s: %s", tmp, db_path,
                    strerror(errno));
    if (close(fd) != 0 && rc == NB_OK)
        rc = nb_err(err, errlen, NB_EIO, "%s: close failed: %s", tmp, strerror(errno));
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
    /* Small starting sizes: the maps double as the input needs (a full-scale import grows
     * orders to 2^23 slots either way), and a small import -- a test, a fuzz input -- does
     * not clear megabytes it never uses. */
    st_idmap_init(&x.depts, 64);
    st_idmap_init(&x.aisles, 256);
    st_idmap_init(&x.products, 1024);
    st_idmap_init(&x.orders, 1024);
    st_idmap_init(&x.user_num, 1024);
    st_idmap_init(&x.users, 1024);
    st_idmap_init(&x.reopened, 16);
    char *tmp = nb_tmp_name(db_path);
    st_remove_files(tmp);  /* a leftover of a killed run that had our pid */
    nb_tmp_sweep(db_path); /* ... and those of killed runs with other pids (kill -9, OOM killer) */
    int rc = create_tmp(tmp, db_path, err, errlen);
    if (rc == NB_OK) rc = build(&x, tmp, csv_dir, catalog_dir ? catalog_dir : csv_dir, err, errlen);
    if (x.printed) fputc('\n', stderr);
    double t_fin = nb_now();
    if (rc == NB_OK && fsync_path(tmp) != 0)
        rc = nb_err(err, errlen, NB_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (rc == NB_OK) rc = settle_old_wal(db_path, err, errlen);
    if (rc == NB_OK && rename(tmp, db_path) != 0)
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot rename the new store into place: %s", db_path,
                    strerror(errno));
    if (rc == NB_OK) nb_fsync_dir(db_path);
    st_remove_files(tmp); /* the database itself after a failure; WAL/SHM side files always */
    free(tmp);
    st_idmap_free(&x.depts);
    st_idmap_free(&x.aisles);
    st_idmap_free(&x.products);
    st_idmap_free(&x.orders);
    st_idmap_free(&x.user_num);
    st_idmap_free(&x.users);
    st_idmap_free(&x.reopened);
    free(x.grp.s);
    free(x.prod_bits);
    for (int i = 0; i < 3; i++) free(x.paths[i]);
    stats.seconds = nb_now() - x.t0;
    stats.seconds_fsync = nb_now() - t_fin;
    if (rc == NB_OK && out) *out = stats;
    return rc;
}
