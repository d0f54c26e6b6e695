/* test_train_loop.c -- the training loop and the scoring path on a small synthetic history
 * built in memory (no store needed): the loss falls, --resume reaches bit-identical
 * weights, a NaN stops the run with the last checkpoint intact, batched scoring equals
 * tr_score_user. */
#include "checkpoint.h"
#include "evaluate.h"
#include "flags.h"
#include "harness.h"
#include "hist_fixture.h"
#include "loop.h"
#include "nb_err.h"
#include "samples.h"
#include "score.h"
#include "store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define P 40
#define NU 300

static st_history H;

/* Users with 3 staples bought with probability 0.8 each, plus 1-2 random products per
 * order; 4-9 orders; the last is a train order for ~85% of users, else a test order. */
static void synth(st_history *h, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    hf_build b;
    hf_begin(&b, h, P, 10, 1);
    for (int u = 0; u < NU; u++) {
        hf_user(&b, 1 + u);
        int staple[3];
        for (int k = 0; k < 3; k++) staple[k] = (int)nb_rng_below(&r, P);
        int n_ord = 4 + (int)nb_rng_below(&r, 6);
        int has_train = nb_rng_uniform(&r) < 0.85;
        for (int o = 0; o < n_ord; o++) {
            int last = o == n_ord - 1;
            hf_order(&b, (int32_t)(100000 + h->n_orders),
                     last ? (has_train ? ST_TRAIN : ST_TEST) : ST_PRIOR, o ? 7 : -1);
            if (!(last && !has_train)) {
                uint8_t in[P] = {0};
                for (int k = 0; k < 3; k++)
                    if (nb_rng_uniform(&r) < 0.8 && !in[staple[k]])
                        in[staple[k]] = 1, hf_item(&b, staple[k]);
                int extra = 1 + (int)nb_rng_below(&r, 2);
                for (int k = 0; k < extra; k++) {
                    int p = (int)nb_rng_below(&r, P);
                    if (!in[p]) in[p] = 1, hf_item(&b, p);
                }
            }
        }
    }
    hf_end(&b);
}

static void small_flags(tr_flags *f) {
    tr_flags_default(f);
    f->emb = 8, f->cnn_out = 16, f->kernel = 2, f->gru_hidden = 16, f->gru_layers = 2;
    f->head = 16, f->batch = 16, f->lr = 0.01, f->epochs = 4, f->patience = 100;
    f->repeat = 0, f->threads = 1, f->quiet = 1, f->dropout = 0.1;
}

typedef struct {
    nn_model m;
    tr_samples s;
    tr_train_state *st;
} run_t;

static int run_init(run_t *R, const tr_flags *f, char *err) {
    memset(R, 0, sizeof *R);
    nn_config c;
    nn_config_default(&c, P);
    c.emb = f->emb, c.cnn_out = f->cnn_out, c.kernel = f->kernel, c.gru_hidden = f->gru_hidden;
    c.gru_layers = f->gru_layers, c.head = f->head, c.dropout = (float)f->dropout;
    c.rep_features = 0;
    int rc = nn_model_init(&R->m, &c, (uint64_t)f->seed, err, NB_ERRLEN);
    if (rc == NB_OK) rc = nn_model_train_init(&R->m, err, NB_ERRLEN);
    if (rc == NB_OK) rc = tr_samples_build(&R->s, &H, f->split, 0, 0, 5, err, NB_ERRLEN);
    R->st = calloc(1, sizeof *R->st);
    R->st->signature = tr_run_signature(f, P);
    nb_rng_seed(&R->st->shuffle_rng, (uint64_t)f->seed);
    R->st->best_params = malloc(R->m.n_params * sizeof(nn_real));
    return rc;
}

static void run_free(run_t *R) {
    free(R->st->best_params);
    free(R->st);
    nn_model_free(&R->m);
    tr_samples_free(&R->s);
}

static int train(run_t *R, const tr_flags *f, const char *ckpt, long nan_at, char *err) {
    tr_loop L = {.f = f,
                 .m = &R->m,
                 .h = &H,
                 .s = &R->s,
                 .st = R->st,
                 .ckpt_path = ckpt,
                 .nan_at_batch = nan_at};
    return tr_train_run(&L, err, NB_ERRLEN);
}

static int test_loss_falls(void) {
    tr_flags f;
    small_flags(&f);
    f.epochs = 30;
    char err[NB_ERRLEN], ck[600];
    snprintf(ck, sizeof ck, "%s/a.ckpt", t_tmpdir());
    run_t R;
    T_ASSERT(run_init(&R, &f, err) == NB_OK, "%s", err);
    T_ASSERT(R.s.n_train > 150 && R.s.n_val > 10, "samples %d / %d", R.s.n_train, R.s.n_val);
    /* the splits are disjoint: no user appears in two of them */
    uint8_t seen[NU] = {0};
    const tr_sample *sets[3] = {R.s.train, R.s.val, R.s.test};
    int ns[3] = {R.s.n_train, R.s.n_val, R.s.n_test};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ns[k]; i++) {
            int u = sets[k][i].user;
            T_ASSERT(seen[u] == 0 || seen[u] == k + 1, "user %d in splits %d and %d", u,
                     seen[u] - 1, k);
            seen[u] = (uint8_t)(k + 1);
        }
    T_ASSERT(train(&R, &f, ck, 0, err) == NB_OK, "%s", err);
    const tr_train_state *st = R.st;
    for (int i = 0; i < st->n_hist; i++)
        printf("# epoch %d train %.4f val %.4f R@10 %.4f\n", i + 1, st->hist[i].train_loss,
               st->hist[i].val_loss, st->hist[i].val_recall10);
    T_ASSERT(st->n_hist == 30, "30 epochs logged");
    T_ASSERT(st->hist[29].train_loss < 0.8 * st->hist[0].train_loss, "train loss %g -> %g",
             st->hist[0].train_loss, st->hist[29].train_loss);
    /* without the repeat term the tiny network overfits 200 users: validation loss and
     * Recall@10 improve first, then the loss rises (which is what early stopping is for) */
    double min_val = st->hist[0].val_loss;
    for (int i = 1; i < st->n_hist; i++)
        if (st->hist[i].val_loss < min_val) min_val = st->hist[i].val_loss;
    T_ASSERT(min_val < 0.99 * st->hist[0].val_loss, "val loss never fell below %g",
             st->hist[0].val_loss);
    T_ASSERT(st->best_metric > st->hist[0].val_recall10 + 0.05 && st->best_epoch > 1,
             "best val R@10 %g (epoch %d) vs epoch 1 %g", st->best_metric, st->best_epoch,
             st->hist[0].val_recall10);
    T_ASSERT(!memcmp(R.m.mem, st->best_params, R.m.n_params * sizeof(nn_real)),
             "the best epoch's parameters are restored");
    run_free(&R);
    return T_PASS;
}

static int test_resume_bit_identical(void) {
    tr_flags f;
    small_flags(&f);
    char err[NB_ERRLEN], ca[600], cb[600];
    snprintf(ca, sizeof ca, "%s/full.ckpt", t_tmpdir());
    snprintf(cb, sizeof cb, "%s/part.ckpt", t_tmpdir());
    run_t A, B, C;
    T_ASSERT(run_init(&A, &f, err) == NB_OK, "%s", err);
    T_ASSERT(train(&A, &f, ca, 0, err) == NB_OK, "%s", err);
    /* interrupted after 2 epochs, then resumed in a fresh model from the checkpoint */
    f.stop_after = 2;
    T_ASSERT(run_init(&B, &f, err) == NB_OK, "%s", err);
    T_ASSERT(train(&B, &f, cb, 0, err) == NB_EINTR, "stop-after must interrupt: %s", err);
    T_ASSERT(B.st->epochs_done == 2, "two epochs done");
    f.stop_after = 0;
    T_ASSERT(run_init(&C, &f, err) == NB_OK, "%s", err);
    T_ASSERT(tr_ckpt_load(cb, &C.m, C.st, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(C.st->epochs_done == 2, "resumed at epoch 2");
    T_ASSERT(train(&C, &f, cb, 0, err) == NB_OK, "%s", err);
    T_ASSERT(C.st->epochs_done == 4, "finished");
    T_ASSERT(!memcmp(A.m.mem, C.m.mem, A.m.n_params * sizeof(nn_real)),
             "resumed weights differ from the uninterrupted run");
    T_ASSERT(A.m.adam_t == C.m.adam_t, "adam steps");
    T_ASSERT(A.st->hist[3].train_loss == C.st->hist[3].train_loss, "same epoch-4 loss");
    /* (the checkpoint files themselves differ only in the recorded wall times) */
    run_free(&A), run_free(&B), run_free(&C);
    return T_PASS;
}

static int test_nan_stops_with_valid_checkpoint(void) {
    tr_flags f;
    small_flags(&f);
    char err[NB_ERRLEN], ck[600];
    snprintf(ck, sizeof ck, "%s/nan.ckpt", t_tmpdir());
    run_t R;
    T_ASSERT(run_init(&R, &f, err) == NB_OK, "%s", err);
    long per_epoch = (R.s.n_train + f.batch - 1) / f.batch;
    int rc = train(&R, &f, ck, per_epoch + 3, err); /* third batch of epoch 2 */
    T_ASSERT(rc == NB_ENAN, "got %d: %s", rc, err);
    T_ASSERT(strstr(err, "NaN") && strstr(err, "epoch 2") && strstr(err, "batch 3"), "message: %s",
             err);
    run_t C;
    T_ASSERT(run_init(&C, &f, err) == NB_OK, "%s", err);
    T_ASSERT(tr_ckpt_load(ck, &C.m, C.st, err, sizeof err) == NB_OK, "checkpoint: %s", err);
    T_ASSERT(C.st->epochs_done == 1, "epoch 1's checkpoint stays");
    run_free(&R), run_free(&C);
    /* a real divergence: an absurd learning rate */
    small_flags(&f);
    f.lr = 1e25;
    f.epochs = 3;
    T_ASSERT(run_init(&R, &f, err) == NB_OK, "%s", err);
    rc = train(&R, &f, ck, 0, err);
    T_ASSERT(rc == NB_ENAN, "lr 1e25 must diverge, got %d (%s)", rc, err);
    run_free(&R);
    return T_PASS;
}

static int test_batched_scoring_equals_single(void) {
    tr_flags f;
    small_flags(&f);
    f.epochs = 1;
    char err[NB_ERRLEN], ck[600];
    snprintf(ck, sizeof ck, "%s/s.ckpt", t_tmpdir());
    run_t R;
    T_ASSERT(run_init(&R, &f, err) == NB_OK, "%s", err);
    T_ASSERT(train(&R, &f, ck, 0, err) == NB_OK, "%s", err);
    R.m.calib_a = 0.7f, R.m.calib_b = -0.3f;
    tr_scorer *s;
    T_ASSERT(tr_scorer_new(&s, &R.m, err, sizeof err) == NB_OK, "%s", err);
    int n = R.s.n_val < 40 ? R.s.n_val : 40;
    float *bp = malloc(sizeof(float) * n * P), one[P], sub[P];
    T_ASSERT(tr_score_batch(s, &H, R.s.val, n, NULL, bp, err, sizeof err) == NB_OK, "%s", err);
    int32_t cand[7] = {39, 0, 5, 17, 2, 33, 21};
    double worst = 0;
    for (int i = 0; i < n; i++) {
        T_ASSERT(tr_score_user(s, &H, R.s.val[i].user, R.s.val[i].target, NULL, 0, one, err,
                               sizeof err) == NB_OK,
                 "%s", err);
        T_ASSERT(tr_score_user(s, &H, R.s.val[i].user, R.s.val[i].target, cand, 7, sub, err,
                               sizeof err) == NB_OK,
                 "%s", err);
        for (int p = 0; p < P; p++) {
            double d = fabs(one[p] - bp[(size_t)i * P + p]);
            if (d > worst) worst = d;
        }
        for (int j = 0; j < 7; j++) {
            double d = fabs(sub[j] - one[cand[j]]);
            if (d > worst) worst = d;
        }
    }
    T_ASSERT(worst <= 1e-6, "batched vs single scoring differ by %g", worst);
    /* a cold-start user (no order with items before hist_end) */
    int u = R.s.val[0].user;
    T_ASSERT(tr_score_user(s, &H, u, H.user_order_off[u], NULL, 0, one, err, sizeof err) ==
                 NB_ENOTFOUND,
             "cold start");
    tr_scorer_free(s);
    free(bp);
    run_free(&R);
    return T_PASS;
}

int main(void) {
    synth(&H, 7);
    T_RUN(test_loss_falls);
    T_RUN(test_resume_bit_identical);
    T_RUN(test_nan_stops_with_valid_checkpoint);
    T_RUN(test_batched_scoring_equals_single);
    st_history_free(&H);
    return t_summary();
}
