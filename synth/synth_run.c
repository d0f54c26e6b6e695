/* synth_run.c -- nb-synth's whole run: catalogue, order ids, streaming the users' orders
 * into the CSV files, statistics.
 *
 * Layout of the output (Instacart's): orders.csv sorted by user_id then order_number;
 * order ids are 1..total shuffled across all users (a keyed bijection, like Instacart's
 * unrelated ids), so they are unique but carry no order. The item files hold each order's
 * rows in add_to_cart order, orders grouped by user in order_number order (Instacart's are
 * sorted by order_id instead; readers must not rely on either). Memory is the catalogue,
 * the model, one byte per user (its order count) and one user's history at a time.
 */
#include "synth.h"

#include "atomic_file.h"
#include "nb_err.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OUT_BUF (1 << 20)
#define MAX_USERS 20000000 /* keeps order ids (<= 100 per user) within int32 */

void sy_out_init(sy_out *o, FILE *f) {
    o->f = f;
    o->cap = OUT_BUF;
    o->buf = nb_xmalloc(o->cap);
    o->n = 0;
}

/* Writes the buffer out. Every WB_CHUNK bytes it also starts the kernel's writeback of
 * what was written (without waiting), so that the disk works while users are generated
 * and the final fsync has little left to do. Write errors surface in nb_afile_commit. */
#define WB_CHUNK (32u << 20)
void sy_out_flush(sy_out *o) {
    if (o->n && o->f) {
        fwrite(o->buf, 1, o->n, o->f);
        o->written += o->n;
        if (o->written - o->wb_from >= WB_CHUNK && fflush(o->f) == 0) {
            sync_file_range(fileno(o->f), (off64_t)o->wb_from, (off64_t)(o->written - o->wb_from),
                            SYNC_FILE_RANGE_WRITE);
            o->wb_from = o->written;
        }
    }
    o->n = 0;
    o->written = o->wb_from = 0;
}

void sy_out_free(sy_out *o) {
    free(o->buf);
    memset(o, 0, sizeof *o);
}

/* The Feistel round function: keyed hash of the half block. */
static uint64_t feistel_f(const sy_ids *ids, int round, uint64_t x) {
    return nb_hash64(x ^ ids->key[round]) & ((1ull << ids->half_bits) - 1);
}

void sy_ids_init(sy_ids *ids, uint64_t n, uint64_t seed) {
    int bits = 2;
    while ((1ull << bits) < n) bits++;
    ids->n = n;
    ids->half_bits = (bits + 1) / 2;
    for (int i = 0; i < 4; i++)
        ids->key[i] = nb_hash64(seed ^ (0x1D5ull + (uint64_t)i * 0x9E3779B97F4A7C15ull));
}

uint64_t sy_ids_map(const sy_ids *ids, uint64_t x) {
    uint64_t mask = (1ull << ids->half_bits) - 1;
    assert(x < ids->n);
    do { /* cycle walking: the permutation of [0, 2^(2h)) restricted to [0, n) */
        uint64_t L = x >> ids->half_bits, R = x & mask;
        for (int i = 0; i < 4; i++) {
            uint64_t t = L ^ feistel_f(ids, i, R);
            L = R;
            R = t;
        }
        x = (L << ids->half_bits) | R;
    } while (x >= ids->n);
    return x;
}

/* mkdir -p. Returns NB_OK or NB_EIO naming the directory. */
static int make_dirs(const char *dir, char *err, size_t errlen) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return nb_err(err, errlen, NB_EINVAL, "--out: path too long");
    for (char *q = path + 1;; q++) {
        if (*q == '/' || *q == 0) {
            char c = *q;
            *q = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return nb_err(err, errlen, NB_EIO, "--out %s: cannot create %s: %s", dir, path,
                              strerror(errno));
            *q = c;
            if (!c) break;
        }
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return nb_err(err, errlen, NB_EIO, "--out %s: not a directory", dir);
    return NB_OK;
}

/* Prints the statistics that show the resemblance to Instacart. */
static void print_stats(FILE *log, const sy_stats *st, const sy_catalog *cat, double t_gen,
                        double secs) {
    int64_t med = 0, lo = 0, hi = 0, acc = 0;
    for (int n = 0; n <= SY_MAX_ORDERS; n++) {
        if (!st->orders_hist[n]) continue;
        if (!lo) lo = n;
        hi = n;
        acc += st->orders_hist[n];
        if (!med && 2 * acc >= st->users) med = n;
    }
    int top = 0;
    int64_t best[10] = {0}, top10 = 0; /* the ten largest counts, descending */
    for (int p = 0; p < cat->n_products; p++) {
        int64_t c = st->product_rows[p];
        if (c > st->product_rows[top]) top = p;
        if (c <= best[9]) continue;
        int i = 9;
        while (i > 0 && best[i - 1] < c) {
            best[i] = best[i - 1];
            i--;
        }
        best[i] = c;
    }
    for (int i = 0; i < 10; i++) top10 += best[i];
    int64_t item_orders = st->prior_orders + st->train_orders;
    double last = (double)(st->train_orders + st->test_orders);
    fprintf(
        log,
        "nb-synth: %lld users, %lld orders (prior %lld, train %lld, test %lld), %lld item rows\n",
        (long long)st->users, (long long)st->orders, (long long)st->prior_orders,
        (long long)st->train_orders, (long long)st->test_orders, (long long)st->item_rows);
    fprintf(log, "  time: %.1f s (generated and written %.1f s, then fsync and rename %.1f s)\n",
            secs, t_gen, secs - t_gen);
    fprintf(log, "  orders per user: mean %.2f, median %lld, min %lld, max %lld\n",
            (double)st->orders / (double)st->users, (long long)med, (long long)lo, (long long)hi);
    fprintf(log, "  basket size (prior + train orders): mean %.2f\n",
            item_orders ? (double)st->item_rows / (double)item_orders : 0.0);
    fprintf(log, "  reorder share: %.3f\n",
            st->item_rows ? (double)st->reordered_rows / (double)st->item_rows : 0.0);
    fprintf(log, "  last order: train %.3f, test %.3f\n", last ? st->train_orders / last : 0.0,
            last ? st->test_orders / last : 0.0);
    fprintf(log, "  top product: id %d, %.2f%% of item rows; top 10: %.2f%%\n",
            cat->product_id[top],
            st->item_rows ? 100.0 * (double)st->product_rows[top] / (double)st->item_rows : 0.0,
            st->item_rows ? 100.0 * (double)top10 / (double)st->item_rows : 0.0);
}

int sy_run(const sy_options *o, FILE *log, char *err, size_t errlen) {
    sy_catalog cat = {0};
    sy_model m = {0};
    sy_stats st = {0};
    sy_gen *g = NULL;
    uint8_t *norders = NULL;
    nb_afile af[3] = {{0}}; /* prior, train, orders */
    sy_out out[3] = {{0}};
    static const char *const names[3] = {"order_products__prior.csv", "order_products__train.csv",
                                         "orders.csv"};
    double t0 = nb_now();
    int rc = NB_OK;

    if (o->users < 1 || o->users > MAX_USERS)
        return nb_err(err, errlen, NB_EINVAL, "--users must be in 1..%d, got %lld", MAX_USERS,
                      (long long)o->users);
    if (!o->out_dir || !o->out_dir[0])
        return nb_err(err, errlen, NB_EINVAL, "--out DIR is required");
    if ((rc = make_dirs(o->out_dir, err, errlen))) goto done;
    if (o->catalog_dir) {
        if ((rc = sy_catalog_load(&cat, o->catalog_dir, err, errlen))) {
            nb_err_wrap(err, errlen, rc, "--catalog");
            goto done;
        }
    } else {
        sy_catalog_invent(&cat);
    }
    if ((rc = sy_catalog_write(&cat, o->out_dir, err, errlen))) goto done;
    sy_model_build(&m, &cat, o->seed);

    /* order counts first, so that every order's id is known when its user is generated */
    norders = nb_xmalloc((size_t)o->users);
    uint64_t total = 0;
    for (int64_t u = 1; u <= o->users; u++) {
        int tr;
        norders[u - 1] = (uint8_t)sy_user_orders(o->seed, u, &tr);
        total += norders[u - 1];
    }
    sy_ids ids;
    sy_ids_init(&ids, total, o->seed);

    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->out_dir, names[i]);
        if ((rc = nb_afile_open(&af[i], path, err, errlen))) goto done;
        sy_out_init(&out[i], af[i].f);
    }
    sy_out_str(&out[0], "order_id,product_id,add_to_cart_order,reordered\n", 48);
    sy_out_str(&out[1], "order_id,product_id,add_to_cart_order,reordered\n", 48);
    static const char oh[] = "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,"
                             "days_since_prior_order\n";
    sy_out_str(&out[2], oh, sizeof oh - 1);
    st.product_rows = nb_xcalloc((size_t)cat.n_products, sizeof(int64_t));
    g = sy_gen_new(&m, o->seed, &out[2], &out[0], &out[1], &st);
    uint64_t first = 0;
    for (int64_t u = 1; u <= o->users; u++) {
        sy_gen_user(g, u, first, &ids);
        first += norders[u - 1];
    }
    assert(first == total && (uint64_t)st.orders == total);
    double t_gen = nb_now() - t0;
    for (int i = 0; i < 3 && !rc; i++) { /* orders.csv last: its presence means complete */
        sy_out_flush(&out[i]);
        rc = nb_afile_commit(&af[i], err, errlen);
    }
    if (!rc) print_stats(log, &st, &cat, t_gen, nb_now() - t0);
done:
    for (int i = 0; i < 3; i++) {
        if (af[i].f || af[i].tmp) nb_afile_abort(&af[i]);
        sy_out_free(&out[i]);
    }
    sy_gen_free(g);
    free(st.product_rows);
    free(norders);
    if (m.pop) sy_model_free(&m);
    sy_catalog_free(&cat);
    return rc;
}
