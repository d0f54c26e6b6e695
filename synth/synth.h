/* synth.h -- nb-synth: a synthetic grocery data set in the Instacart CSV layout.
 *
 * Pipeline (one file per step):
 *   synth_catalog.c  the catalogue: invented (synth_words.c) or read from a real one
 *   synth_model.c    latent structure over the catalogue: Zipf-like product popularity and
 *                    co-purchase clusters (groups of products spanning 1-3 aisles)
 *   synth_user.c     one user's orders and baskets, generated from that user's own RNG stream
 *   synth_run.c      order ids, streaming the CSV files, statistics
 *
 * Determinism: every random number comes from common/rng.h, seeded from (--seed, user) or
 * (--seed, purpose); nothing depends on time, pid or iteration order of a hash table, so the
 * same arguments give byte-identical files. The invented catalogue (names, aisles,
 * departments) does not depend on --seed, so products.csv is the same for every seed; the
 * latent structure (popularity, clusters) and all orders do.
 */
#ifndef ST_SYNTH_H
#define ST_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rng.h"

/* Sizes of the invented catalogue (those of the real Instacart catalogue). */
#define SY_N_PRODUCTS 49688
#define SY_N_AISLES 134
#define SY_N_DEPTS 21

#define SY_MIN_ORDERS 4
#define SY_MAX_ORDERS 100
#define SY_MAX_BASKET 145

/* ---- catalogue (synth_catalog.c) --------------------------------------------------------- */
typedef struct {
    int n_products, n_aisles, n_depts;
    int32_t *product_id; /* [n_products] as written in products.csv */
    int32_t *aisle;      /* [n_products] aisle index 0..n_aisles-1 */
    int32_t *dept;       /* [n_products] department index 0..n_depts-1 */
    char *dir;           /* the real catalogue's directory when loaded (owned), else NULL */
} sy_catalog;

/* Fills c with the invented catalogue (fixed: independent of any seed). Cannot fail. */
void sy_catalog_invent(sy_catalog *c);
/* Reads products.csv, aisles.csv and departments.csv of a real catalogue in `dir` (Instacart
 * layout, headers checked). Returns NB_OK, or NB_ENOTFOUND / NB_EIO / NB_EFORMAT with a
 * message naming the file and line. On success c owns its arrays (sy_catalog_free). */
int sy_catalog_load(sy_catalog *c, const char *dir, char *err, size_t errlen);
/* Writes products.csv, aisles.csv and departments.csv into out_dir, atomically: a loaded
 * catalogue's files byte for byte, the invented one generated with RFC 4180 quoting.
 * Returns NB_OK or NB_EIO naming the file. */
int sy_catalog_write(const sy_catalog *c, const char *out_dir, char *err, size_t errlen);
void sy_catalog_free(sy_catalog *c);

/* ---- invented names (synth_words.c) ---------------------------------------------------- */
const char *sy_dept_name(int d);  /* d in 0..SY_N_DEPTS-1 */
const char *sy_aisle_name(int a); /* a in 0..SY_N_AISLES-1 */
int sy_aisle_dept(int a);         /* the department of aisle a */
/* Writes product p's name (deterministic in p and its aisle) into buf, returns its length.
 * Some names contain commas and double quotes, on purpose. */
size_t sy_product_name(int p, int aisle, char *buf, size_t cap);

/* ---- latent structure (synth_model.c) ---------------------------------------------------- */
/* Sampling table: cumulative weights, drawn by binary search. */
typedef struct {
    int n;
    const int32_t *item; /* [n] values returned (NULL: the index itself) */
    double *cum;         /* [n] inclusive prefix sums of the weights (owned) */
} sy_table;

typedef struct {
    const sy_catalog *cat;
    double *pop;     /* [n_products] popularity weight, Zipf-like over a random rank */
    sy_table global; /* all products by popularity */
    int n_clusters;
    int32_t *prod_cluster;   /* [n_products] */
    int32_t *cl_off;         /* [n_clusters + 1] into cl_items */
    int32_t *cl_items;       /* products of each cluster, grouped */
    sy_table *cl_table;      /* [n_clusters] products of a cluster by popularity */
    int32_t *cl_dept;        /* [n_clusters] department of the cluster's primary aisle */
    sy_table dept_table;     /* departments by total popularity */
    sy_table *dept_clusters; /* [n_depts] clusters whose primary aisle is in the department */
    int32_t *dc_items;       /* the cluster lists dept_clusters[] point into */
    sy_table all_clusters;   /* all clusters by total popularity */
} sy_model;

/* Builds the latent structure for catalogue `cat` (which must outlive m) from `seed`.
 * Cannot fail (allocation failure aborts). Free with sy_model_free. */
void sy_model_build(sy_model *m, const sy_catalog *cat, uint64_t seed);
void sy_model_free(sy_model *m);
/* A draw from table t: an item (or index) with probability proportional to its weight. */
int32_t sy_table_draw(const sy_table *t, nb_rng *r);

/* ---- output and statistics (synth_run.c, synth_user.c) ------------------------------------ */
/* A buffered writer over a FILE*: the CSV rows are formatted by hand for speed. */
typedef struct {
    FILE *f;
    char *buf;
    size_t n, cap;
    uint64_t written, wb_from; /* bytes written; start of the range not yet sent to disk */
} sy_out;

typedef struct {
    int64_t users, orders, prior_orders, train_orders, test_orders;
    int64_t item_rows, reordered_rows;      /* rows of order_products__prior + __train */
    int64_t orders_hist[SY_MAX_ORDERS + 1]; /* users by number of orders */
    int64_t *product_rows;                  /* [n_products] rows per product */
} sy_stats;

/* Everything one user's generation needs besides the model: scratch arrays reused from user
 * to user (sized by the catalogue), the three output streams and the statistics. */
typedef struct sy_gen sy_gen;

/* Returns a generator for model m (caller frees with sy_gen_free). */
sy_gen *sy_gen_new(const sy_model *m, uint64_t seed, sy_out *orders, sy_out *prior, sy_out *train,
                   sy_stats *st);
void sy_gen_free(sy_gen *g);

/* The number of orders of user u (1-based) and whether its last order is `train` (1) or
 * `test` (0): a function of (seed, u) only, so that order ids can be laid out before the
 * users are generated. */
int sy_user_orders(uint64_t seed, int64_t u, int *is_train);

/* Generates user u's orders and writes them: rows of orders.csv, and its items into the
 * prior/train streams. order_id(k) for its k-th order (0-based) is first_id_index + k mapped
 * through `ids` (see sy_ids). Cannot fail (writers report errors when flushed). */
typedef struct {
    uint64_t n; /* domain size: total orders */
    int half_bits;
    uint64_t key[4];
} sy_ids;
void sy_ids_init(sy_ids *ids, uint64_t n, uint64_t seed);
/* A bijection of [0, n) onto [0, n): a 4-round Feistel network with cycle walking. */
uint64_t sy_ids_map(const sy_ids *ids, uint64_t x);

void sy_gen_user(sy_gen *g, int64_t u, uint64_t first_index, const sy_ids *ids);

/* sy_out helpers */
void sy_out_init(sy_out *o, FILE *f);
void sy_out_flush(sy_out *o);
void sy_out_free(sy_out *o);
static inline void sy_out_reserve(sy_out *o, size_t k) {
    if (o->n + k > o->cap) sy_out_flush(o);
}
static inline void sy_out_ch(sy_out *o, char c) { o->buf[o->n++] = c; }
static inline void sy_out_str(sy_out *o, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) o->buf[o->n++] = s[i];
}
static inline void sy_out_u64(sy_out *o, uint64_t v) {
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k) o->buf[o->n++] = tmp[--k];
}

/* ---- the whole run (synth_run.c) --------------------------------------------------------- */
typedef struct {
    int64_t users;
    uint64_t seed;
    const char *out_dir;
    const char *catalog_dir; /* NULL: invent the catalogue */
} sy_options;

/* Writes the data set into o->out_dir (created if missing): the catalogue files, then
 * order_products__prior.csv, order_products__train.csv and last orders.csv, each atomically
 * (orders.csv appearing means the set is complete). Prints the statistics to `log` (stderr
 * in nb-synth). Returns NB_OK, or NB_EINVAL / NB_EIO / NB_EFORMAT / NB_ENOTFOUND with a
 * message naming the parameter or file. */
int sy_run(const sy_options *o, FILE *log, char *err, size_t errlen);

#endif
