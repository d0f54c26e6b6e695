/* test_train_units.c -- nb-train's pieces that need no network: flags, split, samples,
 * batches, checkpoint file, top-K. */
#include "checkpoint.h"
#include "evaluate.h"
#include "flags.h"
#include "harness.h"
#include "hist_fixture.h"
#include "nb_err.h"
#include "samples.h"
#include "split.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a small hand-built history ------------------------------------------------------ */
/* users[u] = string of orders separated by '|'; each order "E:p,p,p" with E = P/T/X
 * (prior/train/test; a test order has no items). */
static void build_history(st_history *h, int P, const char **users, int nu) {
    hf_build b;
    hf_begin(&b, h, P, 100, 1);
    for (int u = 0; u < nu; u++) {
        hf_user(&b, 1 + u);
        const char *s = users[u];
        while (*s) {
            char e = *s;
            s += 2;
            hf_order(&b, (int32_t)(1000 + h->n_orders),
                     e == 'P'       ? ST_PRIOR
                         : e == 'T' ? ST_TRAIN
                                    : ST_TEST,
                     7);
            while (*s && *s != '|') {
                char *end;
                long p = strtol(s, &end, 10);
                if (end == s) break;
                hf_item(&b, (int32_t)p);
                s = end;
                if (*s == ',') s++;
            }
            if (*s == '|') s++;
        }
    }
    hf_end(&b);
}

static int test_flags_defaults_and_errors(void) {
    tr_flags f;
    char err[NB_ERRLEN];
    char *ok[] = {"nb-train",   "--db",    "x.db",     "--model",    "m.nbw",
                  "--kernel=3", "--split", "70/20/10", "--targets",  "all",
                  "--repeat",   "off",     "--basket", "expected-f1"};
    T_ASSERT(tr_flags_parse(&f, 14, ok, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(f.kernel == 3 && f.split[0] == 70 && f.split[1] == 20 && f.targets_all == 1 &&
                 f.repeat == 0 && f.basket_ef1 == 1,
             "parsed values");
    T_ASSERT(f.emb == 32 && f.cnn_out == 128 && f.gru_hidden == 256 && f.gru_layers == 2 &&
                 f.head == 256 && f.batch == 32 && f.orders == 5 && f.max_products == 145 &&
                 f.candidates == 3000 && f.dropout == 0.1 && f.lr == 0.001 && f.threshold == 0.4 &&
                 f.pos_weight == 10 && f.patience == 3,
             "research-log defaults");
    struct {
        char *argv[8];
        int argc;
        const char *needle;
    } bad[] = {
        {{"t", "--db", "a", "--model", "b", "--kernel", "0"}, 7, "--kernel"},
        {{"t", "--db", "a", "--model", "b", "--lr", "-0.1"}, 7, "--lr"},
        {{"t", "--db", "a", "--model", "b", "--split", "80/10"}, 7, "--split"},
        {{"t", "--db", "a", "--model", "b", "--split", "80/30/10"}, 7, "--split"},
        {{"t", "--db", "a", "--model", "b", "--bogus", "1"}, 7, "--bogus"},
        {{"t", "--db", "a", "--model", "b", "--dropout", "1.5"}, 7, "--dropout"},
        {{"t", "--db", "a", "--model", "b", "--batch", "3x"}, 7, "--batch"},
        {{"t", "--db", "a", "--model", "b", "--targets", "some"}, 7, "--targets"},
        {{"t", "--db", "a", "--model", "b", "--epochs"}, 6, "--epochs"},
        {{"t", "--model", "b"}, 3, "--db"},
        {{"t", "--db", "a"}, 3, "--model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        T_ASSERT(tr_flags_parse(&f, bad[i].argc, bad[i].argv, err, sizeof err) == NB_EINVAL,
                 "case %zu accepted", i);
        T_ASSERT(strstr(err, bad[i].needle) != NULL, "case %zu: '%s' does not name %s", i, err,
                 bad[i].needle);
    }
    return T_PASS;
}

static int test_split_deterministic_disjoint(void) {
    int pct[3] = {80, 10, 10}, cnt[3] = {0, 0, 0};
    for (int32_t id = 1; id <= 100000; id++) {
        int s = tr_split_of(id, pct);
        T_ASSERT(s >= 0 && s <= 2, "split value");
        T_ASSERT(s == tr_split_of(id, pct), "deterministic for %d", id);
        cnt[s]++;
    }
    T_ASSERT(abs(cnt[0] - 80000) < 800 && abs(cnt[1] - 10000) < 400 && abs(cnt[2] - 10000) < 400,
             "shares %d/%d/%d", cnt[0], cnt[1], cnt[2]);
    /* a user in train under 80/10/10 is in train under 90/5/5 too (monotone buckets) */
    int pct2[3] = {90, 5, 5};
    for (int32_t id = 1; id <= 10000; id++)
        if (tr_split_of(id, pct) == TR_SPLIT_TRAIN)
            T_ASSERT(tr_split_of(id, pct2) == TR_SPLIT_TRAIN, "monotone %d", id);
    return T_PASS;
}

/* A tr_rep_fn adding products 5 (scored: column 2) and 2 (not scored) to sample 0. */
static int add_two(void *ctx, tr_batch *tb, int b, const st_history *h, int u, int64_t end,
                   char *err, size_t errlen) {
    (void)ctx, (void)h, (void)u, (void)end, (void)err, (void)errlen;
    float feat[2] = {0.5f, 0.25f};
    if (b == 0) {
        tr_batch_add_rep(tb, 0, 5, feat, 2);
        tr_batch_add_rep(tb, 0, 2, feat, 2);
    }
    return NB_OK;
}

static int test_samples_and_inputs(void) {
    const char *users[] = {
        "P:1,2|P:3|P:|P:4,5|P:6|P:7|P:8|T:1,9", /* 7 orders with items then the target */
        "P:2|X:",                               /* next order is a test order */
        "T:3",                                  /* cold: target without history */
        "P:1|P:2|T:3,4",
    };
    st_history h;
    build_history(&h, 10, users, 4);
    int64_t idx[5];
    int n = tr_input_orders(&h, 0, 7, 5, idx);
    T_ASSERT(n == 5, "five inputs, got %d", n);
    T_ASSERT(idx[0] == 1 && idx[1] == 3 && idx[4] == 6,
             "last five with items, oldest first (%lld..%lld)", (long long)idx[0],
             (long long)idx[4]);
    n = tr_input_orders(&h, 0, 3, 5, idx);
    T_ASSERT(n == 2 && idx[0] == 0 && idx[1] == 1, "empty order skipped");
    T_ASSERT(tr_train_order(&h, 0) == 7 && tr_train_order(&h, 1) == -1, "train order");

    int all[3] = {100, 0, 0};
    /* tr_split_of needs validation > 0 only in flags; 100/0/0 puts everyone in train */
    tr_samples s;
    char err[NB_ERRLEN];
    T_ASSERT(tr_samples_build(&s, &h, all, 0, 0, 5, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(s.n_train == 2 && s.n_no_target == 1 && s.n_cold == 1,
             "last: %d samples, %d "
             "no-target, %d cold",
             s.n_train, s.n_no_target, s.n_cold);
    tr_samples_free(&s);
    T_ASSERT(tr_samples_build(&s, &h, all, 1, 0, 5, err, sizeof err) == NB_OK, "%s", err);
    /* user 0: orders with items 0,1,3,4,5,6 before the train order 7 -> targets 1,3,4,5,6
     * + 7 = 6 samples; user 3: order 1 + train = 2 */
    T_ASSERT(s.n_train == 8, "all: %d samples", s.n_train);
    for (int i = 0; i < s.n_train; i++) {
        int64_t t = s.train[i].target;
        T_ASSERT(h.order_item_off[t + 1] > h.order_item_off[t], "target has items");
        T_ASSERT(tr_input_orders(&h, s.train[i].user, t, 5, idx) > 0, "target has input");
    }
    tr_samples_free(&s);
    T_ASSERT(tr_samples_build(&s, &h, all, 0, 1, 5, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(s.n_users == 1 && s.n_train == 1, "--limit-users 1");
    tr_samples_free(&s);

    /* a batch: two samples, truncation to max_products 1, targets */
    nn_config c;
    memset(&c, 0, sizeof c);
    c.n_products = 10, c.max_orders = 5, c.max_products = 1;
    tr_sample smp[2] = {{0, 7}, {3, 13}};
    tr_batch tb = {0};
    T_ASSERT(tr_batch_fill(&tb, &h, smp, 2, &c, NULL, 0, 1, NULL, NULL, err, sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(tb.nb.B == 2 && tb.nb.n_ord[0] == 5 && tb.nb.n_ord[1] == 2, "orders per sample");
    T_ASSERT(tb.nb.ord_off[7] == 7, "one item per order after truncation: %d", tb.nb.ord_off[7]);
    T_ASSERT(tb.nb.items[0] == 3 && tb.nb.items[5] == 1 && tb.nb.items[6] == 2, "items");
    T_ASSERT(tb.nb.targets[1] == 1 && tb.nb.targets[9] == 1 && tb.nb.targets[0] == 0 &&
                 tb.nb.targets[10 + 3] == 1 && tb.nb.targets[10 + 4] == 1 &&
                 tb.nb.targets[10 + 1] == 0,
             "targets");
    /* repeat entries with a candidate head map products to columns, skipping others */
    int32_t rows[3] = {9, 1, 5};
    T_ASSERT(tr_batch_fill(&tb, &h, smp, 2, &c, rows, 3, 0, NULL, NULL, err, sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(tr_batch_fill(&tb, &h, smp, 2, &c, rows, 3, 0, add_two, NULL, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(tb.nb.n_rep == 1 && tb.rep_col[0] == 2 && tb.rep_b[0] == 0 && tb.rep_feat[1] == 0.25f,
             "rep mapping");
    tr_batch_free(&tb);
    st_history_free(&h);
    return T_PASS;
}

static int test_checkpoint_roundtrip(void) {
    char path[600], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/c.ckpt", t_tmpdir());
    nn_model m;
    memset(&m, 0, sizeof m);
    m.cfg.n_products = 7, m.cfg.emb = 3, m.cfg.kernel = 2, m.cfg.dropout = 0.1f;
    m.n_params = 1000;
    m.mem = malloc(m.n_params * sizeof(nn_real));
    m.adam_m = malloc(m.n_params * sizeof(nn_real));
    m.adam_v = malloc(m.n_params * sizeof(nn_real));
    for (size_t i = 0; i < m.n_params; i++)
        m.mem[i] = (float)i * 0.5f, m.adam_m[i] = -(float)i, m.adam_v[i] = (float)i * i;
    m.adam_t = 123;
    nb_rng_seed(&m.rng, 9);
    tr_train_state *st = calloc(1, sizeof *st), *st2 = calloc(1, sizeof *st2);
    st->signature = 0xabcd;
    st->epochs_done = 2, st->best_epoch = 1, st->bad_epochs = 1, st->best_metric = 0.25;
    nb_rng_seed(&st->shuffle_rng, 5);
    st->n_hist = 2;
    st->hist[1].val_recall10 = 0.125;
    st->best_params = malloc(m.n_params * sizeof(nn_real));
    for (size_t i = 0; i < m.n_params; i++) st->best_params[i] = 1.0f / (1 + i);
    T_ASSERT(tr_ckpt_save(path, &m, st, err, sizeof err) == NB_OK, "%s", err);

    nn_model m2 = m;
    m2.mem = calloc(m.n_params, sizeof(nn_real));
    m2.adam_m = calloc(m.n_params, sizeof(nn_real));
    m2.adam_v = calloc(m.n_params, sizeof(nn_real));
    m2.adam_t = 0;
    memset(&m2.rng, 0, sizeof m2.rng);
    st2->signature = 0xabcd;
    st2->best_params = calloc(m.n_params, sizeof(nn_real));
    T_ASSERT(tr_ckpt_load(path, &m2, st2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(!memcmp(m.mem, m2.mem, m.n_params * sizeof(nn_real)) &&
                 !memcmp(m.adam_m, m2.adam_m, m.n_params * sizeof(nn_real)) &&
                 !memcmp(m.adam_v, m2.adam_v, m.n_params * sizeof(nn_real)) &&
                 !memcmp(st->best_params, st2->best_params, m.n_params * sizeof(nn_real)),
             "tensors restored");
    T_ASSERT(m2.adam_t == 123 && !memcmp(&m.rng, &m2.rng, sizeof m.rng) &&
                 !memcmp(&st->shuffle_rng, &st2->shuffle_rng, sizeof st->shuffle_rng),
             "adam t and rng states restored");
    T_ASSERT(st2->epochs_done == 2 && st2->best_epoch == 1 && st2->bad_epochs == 1 &&
                 st2->best_metric == 0.25 && st2->n_hist == 2 && st2->hist[1].val_recall10 == 0.125,
             "counters restored");
    /* other flags: refused before anything is touched */
    st2->signature = 0x1234;
    st2->epochs_done = 77;
    T_ASSERT(tr_ckpt_load(path, &m2, st2, err, sizeof err) == NB_EMISMATCH, "signature");
    T_ASSERT(st2->epochs_done == 77, "state untouched on refusal");
    st2->signature = 0xabcd;
    m2.cfg.emb = 4;
    T_ASSERT(tr_ckpt_load(path, &m2, st2, err, sizeof err) == NB_EMISMATCH, "config: %s", err);
    m2.cfg.emb = 3;
    /* corruption: flip one byte, then truncate */
    FILE *f = fopen(path, "r+b");
    fseek(f, 200, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 200, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    T_ASSERT(tr_ckpt_load(path, &m2, st2, err, sizeof err) == NB_EFORMAT && strstr(err, "checksum"),
             "flipped byte: %s", err);
    T_ASSERT(truncate(path, 100) == 0, "truncate");
    T_ASSERT(tr_ckpt_load(path, &m2, st2, err, sizeof err) == NB_EFORMAT, "truncated: %s", err);
    free(m.mem), free(m.adam_m), free(m.adam_v), free(st->best_params);
    free(m2.mem), free(m2.adam_m), free(m2.adam_v), free(st2->best_params);
    free(st), free(st2);
    return T_PASS;
}

static int cmp_desc(const void *a, const void *b, void *s) {
    const float *sc = s;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sc[x] != sc[y]) return sc[x] > sc[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int test_topk_matches_sort(void) {
    nb_rng r;
    nb_rng_seed(&r, 3);
    float sc[500];
    int32_t all[500], top[40];
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + (int)nb_rng_below(&r, 500);
        for (int i = 0; i < n; i++) sc[i] = (float)nb_rng_below(&r, 20), all[i] = i; /* ties */
        qsort_r(all, n, sizeof(int32_t), cmp_desc, sc);
        int k = 1 + (int)nb_rng_below(&r, 40);
        int m = tr_topk(sc, NULL, n, k, top);
        T_ASSERT(m == (k < n ? k : n), "count");
        for (int i = 0; i < m; i++) T_ASSERT(top[i] == all[i], "trial %d rank %d", trial, i);
    }
    return T_PASS;
}

int main(void) {
    T_RUN(test_flags_defaults_and_errors);
    T_RUN(test_split_deterministic_disjoint);
    T_RUN(test_samples_and_inputs);
    T_RUN(test_checkpoint_roundtrip);
    T_RUN(test_topk_matches_sort);
    return t_summary();
}
