/* nb-candbench.c -- measures candidate generation and the candidate table at full scale.
 *
 *   nb-candbench [--users 206209] [--products 49688] [--emb 32] [--top 3000]
 *                [--threads 2] [--seed 1] [--db PATH [--page-size BYTES]] [--store DB]
 *
 * Synthesises Instacart-shaped histories (about 15.6 prior orders of about 10 items per
 * user, each user with a personal set of favourite products; 1 train order per user) and an
 * aisle-clustered embedding matrix, then times tr_cands_build with --threads threads and
 * with 1 thread (checking both give identical bytes), reports candidate recall on the
 * train orders, times the repeat features of every user, and, with --db, writes the table inside one transaction into a new SQLite
 * file (schema.sql) and reports the write time, the file size and bytes per candidate.
 * --store DB takes the users, orders and catalogue from an nb-import store instead (e.g.
 * nb-synth --users 206209 output), through the real history loader; the embeddings are
 * still synthetic (clustered by the store's aisles). Every number printed is measured in
 * this run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "candgen.h"
#include "candidates.h"
#include "crc32.h"
#include "history.h"
#include "nb_err.h"
#include "nb_flags.h"
#include "repfeat.h"
#include "rng.h"
#include "store.h"

extern const char st_schema_text[]; /* build/gen/schema_sql.c */

/* A Zipf-like draw from 0..P-1 (index 0 most popular): floor(P * u^3). */
static int32_t draw_popular(nb_rng *r, int P) {
    double u = nb_rng_uniform(r);
    return (int32_t)(u * u * u * P);
}

/* Fills h with n_users synthetic users over P products (see the top comment). */
static void synth_history(st_history *h, int n_users, int P, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    memset(h, 0, sizeof *h);
    h->n_products = P;
    h->product_ids = nb_xmalloc((size_t)P * sizeof(int32_t));
    h->product_aisle = nb_xmalloc((size_t)P * sizeof(int32_t));
    h->product_dept = nb_xcalloc((size_t)P, sizeof(int32_t));
    for (int p = 0; p < P; p++) {
        h->product_ids[p] = p + 1;
        h->product_aisle[p] = 1 + (int32_t)nb_rng_below(&r, 134);
    }
    h->n_users = n_users;
    h->user_ids = nb_xmalloc((size_t)n_users * sizeof(int32_t));
    h->user_order_off = nb_xmalloc((size_t)(n_users + 1) * sizeof(int64_t));
    size_t ocap = (size_t)n_users * 20, icap = ocap * 11;
    h->order_ids = nb_xmalloc(ocap * sizeof(int32_t));
    h->eval_set = nb_xmalloc(ocap);
    h->dow = nb_xcalloc(ocap, 1);
    h->hour = nb_xcalloc(ocap, 1);
    h->days_since = nb_xmalloc(ocap * sizeof(int16_t));
    h->order_item_off = nb_xmalloc((ocap + 1) * sizeof(int64_t));
    h->items = nb_xmalloc(icap * sizeof(int32_t));
    h->reordered = nb_xcalloc(icap, 1);
    int64_t o = 0, i = 0;
    h->order_item_off[0] = 0;
    int32_t fav[64];
    for (int u = 0; u < n_users; u++) {
        h->user_ids[u] = u + 1;
        h->user_order_off[u] = o;
        int nfav = 8 + (int)nb_rng_below(&r, 56);
        for (int k = 0; k < nfav; k++) fav[k] = draw_popular(&r, P);
        /* 3..99 orders, mean ~16.6 (15.6 prior + 1 train) */
        int no = 3 + (int)(-13.6 * __builtin_log(1.0 - nb_rng_uniform(&r)));
        if (no > 99) no = 99;
        for (int q = 0; q < no; q++, o++) {
            if ((size_t)o + 1 >= ocap) {
                ocap *= 2;
                h->order_ids = nb_xrealloc(h->order_ids, ocap * sizeof(int32_t));
                h->eval_set = nb_xrealloc(h->eval_set, ocap);
                h->dow = nb_xrealloc(h->dow, ocap);
                h->hour = nb_xrealloc(h->hour, ocap);
                h->days_since = nb_xrealloc(h->days_since, ocap * sizeof(int16_t));
                h->order_item_off = nb_xrealloc(h->order_item_off, (ocap + 1) * sizeof(int64_t));
            }
            h->order_ids[o] = (int32_t)(o + 1);
            h->eval_set[o] = q == no - 1 ? ST_TRAIN : ST_PRIOR;
            h->dow[o] = h->hour[o] = 0;
            h->days_since[o] = q == 0 ? -1 : (int16_t)nb_rng_below(&r, 31);
            int m = 1 + (int)(-9.1 * __builtin_log(1.0 - nb_rng_uniform(&r)));
            if (m > 80) m = 80;
            if ((size_t)(i + m) >= icap) {
                icap *= 2;
                h->items = nb_xrealloc(h->items, icap * sizeof(int32_t));
                h->reordered = nb_xrealloc(h->reordered, icap);
            }
            for (int j = 0; j < m; j++, i++) {
                h->items[i] = nb_rng_uniform(&r) < 0.6 ? fav[nb_rng_below(&r, (uint64_t)nfav)]
                                                       : draw_popular(&r, P);
                h->reordered[i] = 0;
            }
            h->order_item_off[o + 1] = i;
        }
    }
    h->user_order_off[n_users] = o;
    h->n_orders = o;
    h->n_items = i;
}

/* Embeddings clustered by aisle: centre[aisle] + 0.8 * noise, all N(0,1). */
static float *synth_emb(const st_history *h, int E, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    int na = 0;
    for (int p = 0; p < h->n_products; p++)
        if (h->product_aisle[p] > na) na = h->product_aisle[p];
    float *centre = nb_xmalloc((size_t)(na + 1) * E * sizeof *centre);
    for (int k = 0; k < (na + 1) * E; k++) centre[k] = (float)nb_rng_normal(&r);
    float *e = nb_xmalloc((size_t)h->n_products * E * sizeof *e);
    for (int p = 0; p < h->n_products; p++)
        for (int k = 0; k < E; k++)
            e[(size_t)p * E + k] =
                centre[h->product_aisle[p] * E + k] + 0.8f * (float)nb_rng_normal(&r);
    free(centre);
    return e;
}

/* CPU seconds used by this process so far (all threads): wall time is meaningless on a
 * machine shared with other jobs, CPU time much less so. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
        1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

typedef struct {
    int users, products, emb, top, threads, page_size;
    unsigned long long seed;
    const char *db, *store;
} candbench_flags;

#define O(field) offsetof(candbench_flags, field)
static const nb_flag FLAGS[] = {
    {"users", NB_F_INT, O(users), 1, 1e9, "N", "206209", "synthetic users (without --store)", 0,
     NULL, NULL},
    {"products", NB_F_INT, O(products), 1, 1e9, "P", "49688", "synthetic catalogue size", 0, NULL,
     NULL},
    {"emb", NB_F_INT, O(emb), 1, 1e6, "E", "32", "embedding size", 0, NULL, NULL},
    {"top", NB_F_INT, O(top), 1, 1e9, "N", "3000", "candidates per user", 0, NULL, NULL},
    {"threads", NB_F_INT, O(threads), 1, 1024, "T", "2", "worker threads", 0, NULL, NULL},
    {"seed", NB_F_U64, O(seed), 0, 0, "S", "1", "random seed", 0, NULL, NULL},
    {"db", NB_F_STR, O(db), 0, 0, "PATH", "",
     "also write the candidate table into this new SQLite file", 0, NULL, NULL},
    {"page-size", NB_F_INT, O(page_size), 0, 65536, "BYTES", "0",
     "--db's page size (0: SQLite's default)", 0, NULL, NULL},
    {"store", NB_F_STR, O(store), 0, 0, "DB", "", "take the users' histories from this store", 0,
     NULL, NULL},
};
#undef O

int main(int argc, char **argv) {
    candbench_flags fl = {.users = 206209,
                          .products = 49688,
                          .emb = 32,
                          .top = TR_CANDS_DEFAULT,
                          .threads = 2,
                          .seed = 1};
    int ex = nb_flags_main("nb-candbench", "usage: nb-candbench [flags]\n", FLAGS,
                           NB_FLAGS_N(FLAGS), &fl, argc, argv);
    if (ex >= 0) return ex;
    int users = fl.users, P = fl.products, E = fl.emb, top = fl.top, threads = fl.threads;
    uint64_t seed = fl.seed;
    const char *dbpath = fl.db, *store = fl.store;
    int page_size = fl.page_size; /* 0: SQLite's default (4096) */
    char err[NB_ERRLEN];
    int rc = 0;
    double t0 = nb_now();
    st_history h;
    if (store) {
        sqlite3 *sdb;
        if (st_open(&sdb, store, 1, err, sizeof err) != NB_OK ||
            st_history_load(&h, sdb, err, sizeof err) != NB_OK) {
            fprintf(stderr, "nb-candbench: %s\n", err);
            return 1;
        }
        sqlite3_close(sdb);
        users = h.n_users;
        P = h.n_products;
    } else {
        synth_history(&h, users, P, seed);
    }
    float *emb = synth_emb(&h, E, seed + 1);
    printf("%s data: %d users, %d products, E=%d, %lld orders, %lld items (%.1f s)\n",
           store ? store : "synthetic", users, P, E, (long long)h.n_orders, (long long)h.n_items,
           nb_now() - t0);

    /* the multi-threaded build first, reduced to a CRC, so that only one table is alive at
     * a time */
    tr_cands c1;
    double c0 = cpu_seconds();
    t0 = nb_now();
    if (tr_cands_build(&c1, &h, emb, P, E, NULL, top, threads, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-candbench: %s\n", err);
        return 1;
    }
    double t2 = nb_now() - t0, cp2 = cpu_seconds() - c0;
    uint32_t crc2 = nb_crc32(nb_crc32(0, c1.off, (size_t)(users + 1) * sizeof *c1.off), c1.enc,
                             (size_t)c1.off[users]);
    tr_cands_free(&c1);
    c0 = cpu_seconds();
    t0 = nb_now();
    if (tr_cands_build(&c1, &h, emb, P, E, NULL, top, 1, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-candbench: %s\n", err);
        return 1;
    }
    double t1 = nb_now() - t0, cp1 = cpu_seconds() - c0;
    uint32_t crc1 = nb_crc32(nb_crc32(0, c1.off, (size_t)(users + 1) * sizeof *c1.off), c1.enc,
                             (size_t)c1.off[users]);
    int same = crc1 == crc2;
    printf("build, 1 thread:   %.2f s wall, %.2f s CPU (%.1f us CPU/user)\n", t1, cp1,
           1e6 * cp1 / users);
    printf("build, %d threads: %.2f s wall (speed-up %.2fx), %.2f s CPU, identical to 1 "
           "thread: %s (CRC-32 %08x)\n",
           threads, t2, t1 / t2, cp2, same ? "yes" : "NO", crc1);
    if (!same) rc = 1;
    int64_t n_cand = c1.n_total, n_bytes = c1.off[users];
    int32_t *buf = nb_xmalloc((size_t)c1.max_count * sizeof *buf);
    t0 = nb_now();
    for (int u = 0; u < users; u++) {
        int n;
        tr_cands_user(&c1, u, buf, &n);
    }
    double te = nb_now() - t0;
    free(buf);
    printf("candidates: %lld (mean %.1f per user, max %d), encoded %lld bytes = %.3f bytes "
           "per candidate (decoding all: %.2f s)\n",
           (long long)n_cand, (double)n_cand / users, c1.max_count, (long long)n_bytes,
           (double)n_bytes / (double)n_cand, te);
    tr_cand_recall r;
    if (tr_cands_recall(&c1, &h, NULL, &r, err, sizeof err) == NB_OK)
        printf("candidate recall on the train orders: micro %.4f, macro %.4f over %d users "
               "(synthetic embeddings: a smoke figure, not a model result)\n",
               r.micro, r.macro, r.n_users);
    printf("peak RSS so far: %.0f MB\n", nb_peak_rss() / 1e6);

    /* repeat features of every user (the per-sample / per-request cost) */
    tr_product_stats ps;
    tr_features f;
    if (tr_product_stats_compute(&ps, &h, err, sizeof err) != NB_OK ||
        tr_features_init(&f, P, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-candbench: %s\n", err);
        return 1;
    }
    int64_t f_rows = 0, f_items = 0;
    double fsum = 0;
    c0 = cpu_seconds();
    t0 = nb_now();
    for (int u = 0; u < users; u++) {
        if (tr_features_user(&f, &h, u, tr_cands_default_end(&h, u), &ps, err, sizeof err) !=
            NB_OK) {
            fprintf(stderr, "nb-candbench: %s\n", err);
            return 1;
        }
        f_rows += f.n;
        f_items += f.n_items;
        for (int k = 0; k < f.n * TR_N_FEATURES; k++) fsum += f.feat[k];
    }
    double tf = nb_now() - t0, cf = cpu_seconds() - c0;
    printf("repeat features: %d users, %lld history items, %lld rows x %d in %.2f s wall, "
           "%.2f s CPU (%.1f us CPU/user, %.1f ns CPU/history item; checksum %.3f)\n",
           users, (long long)f_items, (long long)f_rows, TR_N_FEATURES, tf, cf, 1e6 * cf / users,
           1e9 * cf / (double)f_items, fsum);
    tr_features_free(&f);
    tr_product_stats_free(&ps);

    if (dbpath) {
        sqlite3 *db = NULL;
        unlink(dbpath);
        t0 = nb_now();
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA page_size = %d", page_size);
        if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
            (page_size && sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK) ||
            sqlite3_exec(db, st_schema_text, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db,
                         "BEGIN; INSERT INTO models (model_id, path, checksum, hyper_params, "
                         "metrics) VALUES (1, 'bench.nbw', '00000000', '{}', '{}');",
                         NULL, NULL, NULL) != SQLITE_OK) {
            fprintf(stderr, "nb-candbench: %s: %s\n", dbpath, sqlite3_errmsg(db));
            sqlite3_close(db);
            return 1;
        }
        if (tr_cands_write(db, 1, &c1, &h, err, sizeof err) != NB_OK) {
            fprintf(stderr, "nb-candbench: %s\n", err);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            sqlite3_close(db);
            return 1;
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            fprintf(stderr, "nb-candbench: commit: %s\n", sqlite3_errmsg(db));
            sqlite3_close(db);
            return 1;
        }
        sqlite3_close(db);
        double tw = nb_now() - t0;
        struct stat st;
        if (stat(dbpath, &st) == 0)
            printf("table write: %.2f s; database file (page size %d) %.1f MB = %.3f bytes per "
                   "candidate (with SQLite overhead)\n",
                   tw, page_size ? page_size : 4096, st.st_size / 1e6,
                   (double)st.st_size / (double)n_cand);
    }
    tr_cands_free(&c1);
    free(emb);
    if (store)
        st_history_free(&h);
    else
        st_history_free(&h);
    return rc;
}
