/* test_repinit.c -- the repeat model's starting point (train/repinit.h): untrained, it ranks
 * every user's products exactly as P-TopFreq does (share, ties by the later purchase, then by
 * product index; then never-bought products by popularity), and the training loop keeps that starting point ("epoch 0") when no
 * trained epoch beats it on validation. */
#include "baselines.h"
#include "checkpoint.h"
#include "evaluate.h"
#include "flags.h"
#include "harness.h"
#include "hist_fixture.h"
#include "loop.h"
#include "nb_err.h"
#include "repinit.h"
#include "samples.h"
#include "score.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define P 60
#define NU 200

static st_history H;

/* Users with 4-30 orders: 5 staples bought with user-specific probabilities (many equal
 * purchase shares, so the recency tie rule matters) plus 0-3 random products per order; the
 * last order is the train target. */
static void synth(st_history *h, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    hf_build b;
    hf_begin(&b, h, P, 1, 1);
    for (int u = 0; u < NU; u++) {
        hf_user(&b, 1 + u);
        int staple[5];
        double q[5];
        for (int k = 0; k < 5; k++) {
            staple[k] = (int)nb_rng_below(&r, P);
            q[k] = 0.2 + 0.15 * k;
        }
        int n_ord = 4 + (int)nb_rng_below(&r, 27);
        for (int o = 0; o < n_ord; o++) {
            hf_order(&b, (int32_t)(100000 + h->n_orders), o == n_ord - 1 ? ST_TRAIN : ST_PRIOR,
                     o ? 7 : -1);
            uint8_t in[P] = {0};
            for (int k = 0; k < 5; k++)
                if (nb_rng_uniform(&r) < q[k] && !in[staple[k]])
                    in[staple[k]] = 1, hf_item(&b, staple[k]);
            int extra = (int)nb_rng_below(&r, 4);
            for (int k = 0; k < extra; k++) {
                int p = (int)nb_rng_below(&r, P);
                if (!in[p]) in[p] = 1, hf_item(&b, p);
            }
            if (o == 0 && !in[0] && !in[1]) hf_item(&b, staple[0] == 0 ? 1 : 0); /* non-empty */
        }
    }
    hf_end(&b);
}

/* The user's purchase share of product p over the orders before end, as a fraction. */
static double share_of(int u, int64_t end, int32_t p) {
    int with = 0, n = 0;
    for (int64_t o = H.user_order_off[u]; o < end; o++) {
        int in = 0;
        for (int64_t i = H.order_item_off[o]; i < H.order_item_off[o + 1]; i++)
            in |= H.items[i] == p;
        with += in;
        n += H.order_item_off[o + 1] > H.order_item_off[o];
    }
    return (double)with / n;
}

/* A small repeat model, PyTorch init then tr_rep_init_prior with ps. */
static int small_model(nn_model *m, uint64_t seed, const tr_product_stats *ps, char *err) {
    nn_config c;
    nn_config_default(&c, P);
    c.emb = 8, c.cnn_out = 16, c.kernel = 2, c.gru_hidden = 16, c.gru_layers = 1, c.head = 16;
    c.rep_features = TR_N_FEATURES, c.rep_hidden = 8;
    int rc = nn_model_init(m, &c, seed, err, NB_ERRLEN);
    if (rc == NB_OK) tr_rep_init_prior(m, ps);
    return rc;
}

static int test_start_ranks_like_ptopfreq(void) {
    char err[NB_ERRLEN];
    nn_model m;
    tr_product_stats ps = {0};
    tr_popularity pop = {0};
    tr_bl_ws *ws = NULL;
    tr_scorer *sc = NULL;
    T_ASSERT(tr_product_stats_compute(&ps, &H, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(small_model(&m, 7, &ps, err) == NB_OK, "%s", err);
    T_ASSERT(tr_popularity_build(&pop, &H, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_bl_ws_new(&ws, P, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_scorer_new(&sc, &m, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_scorer_set_stats(sc, &ps, err, sizeof err) == NB_OK, "%s", err);
    float prob[P], bsc[P];
    int32_t ours[P], theirs[P];
    int users = 0, ties = 0, exact = 0, total = 0;
    for (int u = 0; u < H.n_users; u++) {
        int64_t end = H.user_order_off[u + 1] - 1; /* history: every order but the target */
        T_ASSERT(tr_score_user(sc, &H, u, end, NULL, 0, prob, err, sizeof err) == NB_OK,
                 "user %d: %s", u, err);
        int n = 0, nb = 0;
        T_ASSERT(tr_ptopfreq(&pop, &H, u, end, ws, P, theirs, bsc, &n, err, sizeof err) == NB_OK,
                 "%s", err);
        while (nb < n && bsc[nb] > 0) nb++; /* the user's own products; the rest is fill */
        tr_topk(prob, NULL, P, P, ours);
        int64_t lastpos[P];
        for (int p = 0; p < P; p++) lastpos[p] = -1;
        for (int64_t o = H.user_order_off[u]; o < end; o++)
            for (int64_t i = H.order_item_off[o]; i < H.order_item_off[o + 1]; i++)
                lastpos[H.items[i]] = o;
        /* The user's own products in P-TopFreq's order: the same (share, last purchase) at
         * every rank. Within an exact tie of both, P-TopFreq goes by index and the model by
         * the rounding of its popularity cancellation (train/repinit.h), an equally arbitrary
         * order. Then its fill exactly: never-bought products by popularity, ties by index. */
        for (int i = 0; i < n; i++) {
            int same = i < nb
                ? prob[ours[i]] > 0.5f && bsc[i] > 0 && lastpos[ours[i]] == lastpos[theirs[i]] &&
                    share_of(u, end, ours[i]) == share_of(u, end, theirs[i])
                : ours[i] == theirs[i];
            T_ASSERT(same,
                     "user %d rank %d (%s): model product %d (p %.9g), P-TopFreq %d "
                     "(score %g)",
                     u, i, i < nb ? "bought" : "fill", ours[i], prob[ours[i]], theirs[i], bsc[i]);
            ties += i > 0 && i < nb && bsc[i] == bsc[i - 1];
            exact += ours[i] == theirs[i];
        }
        users++;
        total += n;
    }
    printf("# %d users, %d equal-share neighbours ordered by recency as P-TopFreq; %d of %d "
           "ranks the very same product\n",
           users, ties, exact, total);
    T_ASSERT(exact > total * 99 / 100, "%d of %d ranks differ", total - exact, total);
    T_ASSERT(ties > 50, "the fixture must exercise the tie rule (%d ties)", ties);
    tr_scorer_free(sc);
    tr_bl_ws_free(ws);
    tr_popularity_free(&pop);
    tr_product_stats_free(&ps);
    nn_model_free(&m);
    return T_PASS;
}

/* With a zero learning rate no epoch can beat the start: the loop must keep epoch 0, its
 * validation figure and its parameters. */
static int test_loop_keeps_start(void) {
    char err[NB_ERRLEN], ck[600];
    snprintf(ck, sizeof ck, "%s/start.ckpt", t_tmpdir());
    tr_flags f;
    tr_flags_default(&f);
    f.batch = 16, f.epochs = 2, f.patience = 5, f.threads = 1, f.quiet = 1, f.lr = 0;
    nn_model m;
    tr_samples s;
    tr_product_stats ps = {0};
    tr_rep_ctx rc_ctx;
    T_ASSERT(tr_product_stats_compute(&ps, &H, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(small_model(&m, 3, &ps, err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&m, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_samples_build(&s, &H, f.split, 0, 0, 5, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_rep_ctx_init(&rc_ctx, &ps, err, sizeof err) == NB_OK, "%s", err);
    tr_train_state *st = calloc(1, sizeof *st);
    st->signature = tr_run_signature(&f, P);
    nb_rng_seed(&st->shuffle_rng, 1);
    st->best_params = malloc(m.n_params * sizeof(nn_real));
    nn_real *start = malloc(m.n_params * sizeof(nn_real));
    memcpy(start, m.mem, m.n_params * sizeof(nn_real));
    tr_loop L = {.f = &f,
                 .m = &m,
                 .h = &H,
                 .s = &s,
                 .st = st,
                 .ckpt_path = ck,
                 .rep = tr_rep_cb,
                 .rep_ctx = &rc_ctx};
    T_ASSERT(tr_train_run(&L, err, sizeof err) == NB_OK, "%s", err);
    printf("# start val R@10 %.4f, epochs %d, best epoch %d (%.4f)\n", st->start_metric,
           st->epochs_done, st->best_epoch, st->best_metric);
    T_ASSERT(st->epochs_done == 2, "both epochs ran (%d)", st->epochs_done);
    T_ASSERT(st->start_metric > 0.2, "the starting point ranks like P-TopFreq: val R@10 %g",
             st->start_metric);
    T_ASSERT(st->best_epoch == 0 && st->best_metric == st->start_metric,
             "best epoch %d (%g), start %g", st->best_epoch, st->best_metric, st->start_metric);
    T_ASSERT(!memcmp(m.mem, start, m.n_params * sizeof(nn_real)), "start parameters restored");
    /* the checkpoint carries the start figure and best epoch 0 */
    tr_train_state *st2 = calloc(1, sizeof *st2);
    st2->signature = st->signature;
    st2->best_params = malloc(m.n_params * sizeof(nn_real));
    T_ASSERT(tr_ckpt_load(ck, &m, st2, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st2->start_metric == st->start_metric && st2->best_epoch == 0, "checkpoint");
    free(st2->best_params), free(st2);
    free(start), free(st->best_params), free(st);
    tr_rep_ctx_free(&rc_ctx);
    tr_product_stats_free(&ps);
    tr_samples_free(&s);
    nn_model_free(&m);
    return T_PASS;
}

int main(void) {
    synth(&H, 11);
    T_RUN(test_start_ranks_like_ptopfreq);
    T_RUN(test_loop_keeps_start);
    st_history_free(&H);
    return t_summary();
}
