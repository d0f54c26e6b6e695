/* nb-storebench -- how fast the store is read: st_history_load of the whole store, then
 * st_userq_load of sampled users (checked against the whole history).
 *
 *   nb-storebench --db FILE [--users N] [--seed S]
 *
 * Prints the load time, peak RSS, array sizes, and per-user query latencies (mean, median,
 * 99th percentile, max), all measured in this run. Exit 1 if a user's one-user history
 * differs from its slice of the whole history. */
#include "history.h"
#include "nb_err.h"
#include "nb_flags.h"
#include "rng.h"
#include "store.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds used so far by this thread (independent of how loaded the machine is). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* qsort order for latencies. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1 when q (one user) equals user u of h. */
static int same_user(const st_history *h, int u, const st_history *q) {
    int64_t o0 = h->user_order_off[u], no = h->user_order_off[u + 1] - o0;
    if (q->n_orders != no || q->user_ids[0] != h->user_ids[u]) return 0;
    for (int64_t k = 0; k < no; k++) {
        int64_t o = o0 + k, n = h->order_item_off[o + 1] - h->order_item_off[o];
        if (q->order_ids[k] != h->order_ids[o] || q->days_since[k] != h->days_since[o] ||
            q->order_item_off[k + 1] - q->order_item_off[k] != n)
            return 0;
        if (memcmp(q->items + q->order_item_off[k], h->items + h->order_item_off[o],
                   (size_t)n * 4) != 0)
            return 0;
    }
    return 1;
}

typedef struct {
    const char *db;
    int users;
    unsigned long long seed;
} storebench_flags;

#define O(field) offsetof(storebench_flags, field)
static const nb_flag FLAGS[] = {
    {"db", NB_F_STR, O(db), 0, 0, "FILE", "", "the store", NB_F_REQUIRED, NULL, NULL},
    {"users", NB_F_INT, O(users), 1, 1e9, "N", "2000", "random users loaded one at a time", 0, NULL,
     NULL},
    {"seed", NB_F_U64, O(seed), 0, 0, "S", "1", "random seed", 0, NULL, NULL},
};
#undef O

int main(int argc, char **argv) {
    storebench_flags f = {.users = 2000, .seed = 1};
    int ex =
        nb_flags_main("nb-storebench", "usage: nb-storebench --db FILE [--users N] [--seed S]\n",
                      FLAGS, NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    const char *db_path = f.db;
    int n_users = f.users;
    unsigned long long seed = f.seed;
    char err[NB_ERRLEN];
    sqlite3 *db = NULL;
    st_history h, q;
    st_userq *uq = NULL;
    double *lat = NULL;
    int rc = 1;
    if (st_open(&db, db_path, 1, err, sizeof err)) goto fail;
    double t0 = nb_now(), c0 = cpu_now();
    if (st_history_load(&h, db, err, sizeof err)) goto fail;
    double t_load = nb_now() - t0, c_load = cpu_now() - c0;
    size_t bytes = (size_t)h.n_products * 12 + (size_t)h.n_users * 12 + (size_t)h.n_orders * 21 +
        (size_t)h.n_items * 5;
    printf("history: %d users, %lld orders, %lld items, %d products loaded in %.2f s (CPU %.2f s); "
           "arrays "
           "%.0f MiB, peak RSS %.0f MiB\n",
           h.n_users, (long long)h.n_orders, (long long)h.n_items, h.n_products, t_load, c_load,
           bytes / 1048576.0, nb_peak_rss() / 1048576.0);
    if (h.n_users == 0) {
        printf("userq: no users to sample\n");
        rc = 0;
        goto fail_h;
    }
    if (st_userq_open(&uq, db, err, sizeof err)) goto fail_h;
    nb_rng r;
    nb_rng_seed(&r, seed);
    lat = nb_xmalloc((size_t)n_users * sizeof *lat);
    double sum = 0, cpu = 0;
    int64_t orders = 0;
    for (int i = 0; i < n_users; i++) {
        int u = (int)nb_rng_below(&r, (uint64_t)h.n_users);
        double t = nb_now(), c = cpu_now();
        if (st_userq_load(uq, &h, h.user_ids[u], &q, err, sizeof err)) goto fail_h;
        lat[i] = (nb_now() - t) * 1e6;
        cpu += cpu_now() - c;
        sum += lat[i];
        orders += q.n_orders;
        if (!same_user(&h, u, &q)) {
            snprintf(err, sizeof err, "user %d: st_userq_load differs from st_history_load",
                     h.user_ids[u]);
            goto fail_h;
        }
    }
    qsort(lat, (size_t)n_users, sizeof *lat, cmp_double);
    printf("userq: %d random users (%.1f orders each): wall mean %.0f us, median %.0f us, p99 %.0f "
           "us, max %.0f us;"
           " CPU mean %.0f us; all equal to the whole-history slices\n",
           n_users, (double)orders / n_users, sum / n_users, lat[n_users / 2],
           lat[(int)(n_users * 0.99)], lat[n_users - 1], cpu / n_users * 1e6);
    rc = 0;
fail_h:
    st_history_free(&h);
fail:
    if (rc) fprintf(stderr, "nb-storebench: %s\n", err);
    free(lat);
    st_userq_free(uq);
    sqlite3_close(db);
    return rc;
}
