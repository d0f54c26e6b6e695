/* test_rank_loss.c -- the ranking term of the training loss (train/rankloss.h): the
 * negative sampler (negatives are never positives, n_neg per positive, uniform over the
 * non-positives, deterministic by seed and independent of batch slicing), tr_rank_apply on
 * a real model's dlogits (bce+X adds W x the ranking gradient to the BCE's, bpr replaces
 * it, bce leaves everything alone), and PyTorch parity of the composed losses
 * (rank_parity.h, float build: tolerance 1e-4; tests/dtest_rank_parity.c: double, 1e-6).
 */
#include "harness.h"
#include "nb_err.h"
#include "nn.h"
#include "rank_parity.h"
#include "rankloss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* targets [B, P] with ~frac positives, row 0 holding at least one. */
static nn_real *make_targets(int B, int P, double frac, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    nn_real *y = nb_xcalloc((size_t)B * P, sizeof(nn_real));
    for (int i = 0; i < B * P; i++) y[i] = nb_rng_uniform(&r) < frac;
    y[0] = 1;
    return y;
}

static int test_sampler_pairs(void) {
    int B = 5, P = 40, K = 3;
    nn_real *y = make_targets(B, P, 0.15, 7);
    size_t n_pos = 0;
    for (int i = 0; i < B * P; i++) n_pos += y[i] != 0;
    tr_pairs a = {0}, b = {0}, c = {0}, d = {0};
    size_t n = tr_neg_sample(&a, y, B, P, K, 11, 1, 100);
    T_ASSERT(n == n_pos * K, "%zu pairs for %zu positives x %d", n, n_pos, K);
    for (size_t i = 0; i < n; i++) {
        T_ASSERT(y[a.pos[i]] == 1 && y[a.neg[i]] == 0, "pair %zu: %lld/%lld", i,
                 (long long)a.pos[i], (long long)a.neg[i]);
        T_ASSERT(a.pos[i] / P == a.neg[i] / P, "pair %zu crosses rows", i);
    }
    /* same seed/epoch/position: same pairs; the rows' draws do not depend on the slicing
     * (rows 2..4 sampled alone from position 102 equal the tail of the whole batch) */
    T_ASSERT(tr_neg_sample(&b, y, B, P, K, 11, 1, 100) == n, "count");
    T_ASSERT(!memcmp(a.neg, b.neg, n * sizeof(int64_t)), "same seed, other pairs");
    size_t head = 0;
    while (head < n && a.pos[head] < 2 * P) head++;
    size_t m = tr_neg_sample(&c, y + 2 * P, 3, P, K, 11, 1, 102);
    T_ASSERT(m == n - head, "slice count %zu vs %zu", m, n - head);
    for (size_t i = 0; i < m; i++)
        T_ASSERT(c.neg[i] + 2 * P == a.neg[head + i], "slice pair %zu differs", i);
    /* another seed, epoch or position: other negatives */
    tr_neg_sample(&d, y, B, P, K, 12, 1, 100);
    T_ASSERT(memcmp(a.neg, d.neg, n * sizeof(int64_t)) != 0, "seed ignored");
    tr_neg_sample(&d, y, B, P, K, 11, 2, 100);
    T_ASSERT(memcmp(a.neg, d.neg, n * sizeof(int64_t)) != 0, "epoch ignored");
    /* a row whose every product is a positive yields no pair (and does not loop) */
    for (int p = 0; p < P; p++) y[p] = 1;
    tr_neg_sample(&d, y, 1, P, K, 11, 1, 100);
    T_ASSERT(d.n == 0, "all-positive row gave %zu pairs", d.n);
    tr_pairs_free(&a), tr_pairs_free(&b), tr_pairs_free(&c), tr_pairs_free(&d);
    free(y);
    return T_PASS;
}

/* Uniform: one positive in a row of P = 21; 200,000 negatives over the 20 others, each
 * count within 5% of 10,000 (sd ~ 98, so 5% is > 5 sd: a biased sampler fails, a fair one
 * does not by chance). */
static int test_sampler_uniform(void) {
    int P = 21;
    nn_real *y = nb_xcalloc((size_t)P, sizeof(nn_real));
    y[7] = 1;
    tr_pairs a = {0};
    size_t n = tr_neg_sample(&a, y, 1, P, 200000 / 1000, 3, 1, 0), cnt[21] = {0};
    for (int rep = 1; rep < 1000; rep++) {
        for (size_t i = 0; i < n; i++) cnt[a.neg[i]]++;
        tr_neg_sample(&a, y, 1, P, 200, 3, 1, rep);
    }
    for (size_t i = 0; i < n; i++) cnt[a.neg[i]]++;
    T_ASSERT(cnt[7] == 0, "the positive was drawn %zu times", cnt[7]);
    for (int p = 0; p < P; p++)
        if (p != 7)
            T_ASSERT(fabs((double)cnt[p] - 10000) < 500, "product %d drawn %zu times", p, cnt[p]);
    tr_pairs_free(&a);
    free(y);
    return T_PASS;
}

/* tr_rank_apply on a small model: the dlogits it leaves against the BCE's plus (or, for
 * bpr, instead of) W x the ranking gradient on the same pairs, and the loss it returns. */
static int test_rank_apply(void) {
    int B = 3, P = 30;
    nn_config c;
    nn_config_default(&c, P);
    c.emb = 6, c.cnn_out = 8, c.gru_hidden = 10, c.head = 12, c.dropout = 0;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 5, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&m, err, sizeof err) == NB_OK, "%s", err);
    int n_ord[3] = {1, 2, 1}, off[5] = {0, 3, 5, 9, 10};
    int32_t items[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    nn_real *y = make_targets(B, P, 0.2, 9);
    nn_batch b = {.B = B, .n_ord = n_ord, .ord_off = off, .items = items, .targets = y};
    nn_real *bce_g = nb_xmalloc((size_t)B * P * sizeof(nn_real));
    nn_real *want = nb_xmalloc((size_t)B * P * sizeof(nn_real));
    tr_flags f;
    tr_flags_default(&f);
    f.rank_weight = 0.3, f.margin = 0.5, f.negatives = 2, f.seed = 4;
    tr_pairs pr = {0}, ref = {0};
    for (int loss = TR_LOSS_BCE; loss <= TR_LOSS_BPR; loss++) {
        f.loss = loss;
        double bce = nn_model_forward(&m, &b, 1, 10);
        memcpy(bce_g, nn_model_dlogits(&m), (size_t)B * P * sizeof(nn_real));
        double tot = tr_rank_apply(&pr, &m, y, B, &f, 3, 40, bce);
        const nn_real *dl = nn_model_dlogits(&m);
        if (loss == TR_LOSS_BCE) {
            T_ASSERT(tot == bce && !memcmp(dl, bce_g, (size_t)B * P * sizeof(nn_real)),
                     "bce: loss or gradient changed");
            continue;
        }
        size_t n = tr_neg_sample(&ref, y, B, P, 2, 4, 3, 40);
        T_ASSERT(n > 0 && pr.n == n, "pairs %zu vs %zu", pr.n, n);
        double w = loss == TR_LOSS_BPR ? 1 : 0.3, r;
        if (loss == TR_LOSS_BPR)
            memset(want, 0, (size_t)B * P * sizeof(nn_real));
        else
            memcpy(want, bce_g, (size_t)B * P * sizeof(nn_real));
        if (loss == TR_LOSS_BCE_MARGIN) {
            r = nn_margin_forward(m.logits, ref.pos, ref.neg, n, 0.5);
            nn_margin_backward(want, m.logits, ref.pos, ref.neg, n, 0.5, w);
        } else {
            r = nn_bpr_forward(m.logits, ref.pos, ref.neg, n);
            nn_bpr_backward(want, m.logits, ref.pos, ref.neg, n, w);
        }
        double want_tot = loss == TR_LOSS_BPR ? r : bce + w * r;
        T_ASSERT(fabs(tot - want_tot) < 1e-12 && r > 0, "%s: loss %.17g vs %.17g",
                 tr_loss_names[loss], tot, want_tot);
        T_ASSERT(!memcmp(dl, want, (size_t)B * P * sizeof(nn_real)), "%s: gradient differs",
                 tr_loss_names[loss]);
        T_ASSERT(memcmp(dl, bce_g, (size_t)B * P * sizeof(nn_real)) != 0, "%s: gradient unchanged",
                 tr_loss_names[loss]);
        nn_model_backward(&m, &b, 10); /* runs on the combined gradient */
    }
    T_ASSERT(nn_model_forward(&m, &b, 0, 10) >= 0 && nn_model_dlogits(&m) == NULL,
             "dlogits after a scoring forward");
    tr_pairs_free(&pr), tr_pairs_free(&ref);
    free(y), free(bce_g), free(want);
    nn_model_free(&m);
    return T_PASS;
}

static int test_rank_parity_float(void) { return rank_parity(1e-4); }

int main(void) {
    T_RUN(test_sampler_pairs);
    T_RUN(test_sampler_uniform);
    T_RUN(test_rank_apply);
    T_RUN(test_rank_parity_float);
    return t_summary();
}
