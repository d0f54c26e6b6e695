/* test_headprune.c -- the pruned scoring path (tr_score_user_top, model/nn_headq.c) against
 * the full one (tr_score_user) on a small model trained in memory with the repeat term:
 * for every user, k in {1, 10, 100} and both basket modes the ranked prefix a response reads
 * and the basket are the same products with bit-identical probabilities; the bounds hold for
 * every product; flat logits prune nothing; a negative calibration slope and saturated
 * probabilities fall back to scoring everything. */
#include "expected_f1.h"
#include "harness.h"
#include "hist_fixture.h"
#include "flags.h"
#include "loop.h"
#include "nb_err.h"
#include "repfeat.h"
#include "samples.h"
#include "score.h"
#include "store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define P 1200 /* > 1024: the sampled cutoff in score.c is exercised (m = 200) */
#define NU 240

static st_history H;
static nn_model M;
static tr_product_stats PS;
static tr_rep_ctx RC;
static int trained;

/* Users with 4 staples out of a popular head of the catalogue, plus 1-3 Zipf-ish products
 * per order; 3-8 orders; the last is a train order. */
static void synth(st_history *h, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    hf_build b;
    hf_begin(&b, h, P, 10, 1);
    for (int u = 0; u < NU; u++) {
        hf_user(&b, 1 + u);
        int staple[4];
        for (int k = 0; k < 4; k++) staple[k] = (int)nb_rng_below(&r, P / 4);
        int n_ord = 3 + (int)nb_rng_below(&r, 6);
        for (int o = 0; o < n_ord; o++) {
            hf_order(&b, (int32_t)(100000 + h->n_orders), o == n_ord - 1 ? ST_TRAIN : ST_PRIOR,
                     o ? 7 : -1);
            uint8_t in[P] = {0};
            for (int k = 0; k < 4; k++)
                if (nb_rng_uniform(&r) < 0.7 && !in[staple[k]])
                    in[staple[k]] = 1, hf_item(&b, staple[k]);
            int extra = 1 + (int)nb_rng_below(&r, 3);
            for (int k = 0; k < extra; k++) {
                double x = nb_rng_uniform(&r);
                int p = (int)(P * x * x * x);
                if (p >= P) p = P - 1;
                if (!in[p]) in[p] = 1, hf_item(&b, p);
            }
        }
    }
    hf_end(&b);
}

/* Trains M once (a few epochs, repeat term on). Returns NB_OK or an error. */
static int train_model(char *err) {
    if (trained) return NB_OK;
    tr_flags f;
    tr_flags_default(&f);
    f.emb = 8, f.cnn_out = 16, f.kernel = 2, f.gru_hidden = 16, f.gru_layers = 2;
    f.head = 32, f.batch = 16, f.lr = 0.01, f.epochs = 3, f.patience = 100;
    f.threads = 1, f.quiet = 1, f.dropout = 0.1;
    nn_config c;
    nn_config_default(&c, P);
    c.emb = f.emb, c.cnn_out = f.cnn_out, c.kernel = f.kernel, c.gru_hidden = f.gru_hidden;
    c.gru_layers = f.gru_layers, c.head = f.head, c.dropout = (float)f.dropout;
    c.rep_features = TR_N_FEATURES, c.rep_hidden = 8;
    tr_samples s = {0};
    tr_train_state *st = calloc(1, sizeof *st);
    char ck[600];
    snprintf(ck, sizeof ck, "%s/hp.ckpt", t_tmpdir());
    int rc = nn_model_init(&M, &c, 3, err, NB_ERRLEN);
    if (rc == NB_OK) rc = nn_model_train_init(&M, err, NB_ERRLEN);
    if (rc == NB_OK) rc = tr_product_stats_compute(&PS, &H, err, NB_ERRLEN);
    if (rc == NB_OK) rc = tr_rep_ctx_init(&RC, &PS, err, NB_ERRLEN);
    if (rc == NB_OK) rc = tr_samples_build(&s, &H, f.split, 0, 0, 5, err, NB_ERRLEN);
    if (rc == NB_OK) {
        st->signature = tr_run_signature(&f, P);
        nb_rng_seed(&st->shuffle_rng, (uint64_t)f.seed);
        st->best_params = malloc(M.n_params * sizeof(nn_real));
        tr_loop L = {.f = &f,
                     .m = &M,
                     .h = &H,
                     .s = &s,
                     .st = st,
                     .ckpt_path = ck,
                     .rep = tr_rep_cb,
                     .rep_ctx = &RC};
        rc = tr_train_run(&L, err, NB_ERRLEN);
    }
    tr_samples_free(&s);
    free(st->best_params);
    free(st);
    /* a calibration with a positive slope, as tr_calibration fits */
    M.calib_a = 0.9f, M.calib_b = -0.4f;
    trained = rc == NB_OK;
    return rc;
}

/* The entries a response reads, computed from (idx, prob) pairs exactly as the server does:
 * the m best (probability descending, ties by lower index) into top[], and the number of
 * entries with prob >= thr. Returns how many went into top. */
typedef struct {
    float p;
    int32_t i;
} pr;
static int pr_cmp(const void *a, const void *b) {
    const pr *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}
static int view(const int32_t *idx, const float *prob, int n, int m, double thr, pr *top,
                int *n_basket) {
    pr *all = malloc(sizeof(pr) * (size_t)n);
    int nb = 0;
    for (int j = 0; j < n; j++) {
        all[j] = (pr){prob[j], idx[j]};
        nb += prob[j] >= thr;
    }
    qsort(all, (size_t)n, sizeof(pr), pr_cmp);
    int k = m < n ? m : n;
    if (nb > k) k = nb; /* the basket is a prefix of the ranking too */
    memcpy(top, all, sizeof(pr) * (size_t)k);
    free(all);
    *n_basket = nb;
    return k;
}

/* Compares tr_score_user_top with tr_score_user for user u over cand[0..nc) (NULL: all).
 * Returns 0 when equal (adds the survivor count to *surv), else 1 with a message in msg. */
static int compare_user(tr_scorer *s, int u, const int32_t *cand, int nc, int m, double thr,
                        long *surv, char *msg, size_t msglen) {
    char err[NB_ERRLEN];
    int n = cand ? nc : P, ns = 0;
    float full[P], prob[P];
    int32_t idx[P], all[P];
    pr a[P], b[P];
    int64_t end = H.user_order_off[u + 1];
    int rc1 = tr_score_user(s, &H, u, end, cand, nc, full, err, sizeof err);
    int rc2 = tr_score_user_top(s, &H, u, end, cand, nc, m, thr, idx, prob, &ns, err, sizeof err);
    if (rc1 != rc2) return snprintf(msg, msglen, "user %d: rc %d vs %d", u, rc1, rc2), 1;
    if (rc1 == NB_ENOTFOUND) return 0;
    if (rc1) return snprintf(msg, msglen, "user %d: %s", u, err), 1;
    for (int j = 0; j < n; j++) all[j] = cand ? cand[j] : j;
    int nb1, nb2;
    int k1 = view(all, full, n, m, thr, a, &nb1);
    int k2 = view(idx, prob, ns, m, thr, b, &nb2);
    if (ns < (m < n ? m : n) || ns > n)
        return snprintf(msg, msglen, "user %d: %d survivors of %d for m %d", u, ns, n, m), 1;
    if (nb1 != nb2)
        return snprintf(msg, msglen, "user %d m %d: basket %d vs %d", u, m, nb1, nb2), 1;
    if (k1 != k2) return snprintf(msg, msglen, "user %d m %d: prefix %d vs %d", u, m, k1, k2), 1;
    if (memcmp(a, b, sizeof(pr) * (size_t)k1) != 0)
        return snprintf(msg, msglen, "user %d m %d thr %g: ranked prefix differs", u, m, thr), 1;
    /* every survivor carries the full path's bits, wherever it ranks */
    for (int j = 0; j < ns; j++) {
        int p = -1;
        for (int q = 0; q < n && p < 0; q++)
            if (all[q] == idx[j]) p = q;
        if (p < 0 || memcmp(&full[p], &prob[j], sizeof(float)) != 0)
            return snprintf(msg, msglen, "user %d: survivor %d has other bits", u, idx[j]), 1;
    }
    *surv += ns;
    return 0;
}

/* A scorer over M with the repeat stats, and hq (may be NULL). */
static tr_scorer *scorer(const nn_headq *hq, char *err) {
    tr_scorer *s = NULL;
    if (tr_scorer_new(&s, &M, err, NB_ERRLEN) != NB_OK) return NULL;
    if (tr_scorer_set_stats(s, &PS, err, NB_ERRLEN) != NB_OK) {
        tr_scorer_free(s);
        return NULL;
    }
    tr_scorer_set_headq(s, hq);
    return s;
}

/* Every user, k in {1, 10, 100}, threshold and expected-F1 modes, all products and a
 * 300-product candidate list; with the reference bounds (as served), and without them
 * (nothing can be pruned then: every call scores every candidate). */
static int check_all(int with_ref, double *mean_surv, long *pruned_calls) {
    char err[NB_ERRLEN], msg[NB_ERRLEN + 64];
    T_ASSERT(train_model(err) == NB_OK, "%s", err);
    nn_headq hq;
    T_ASSERT(nn_headq_build(&hq, M.p.out_w, P, M.cfg.head, err, sizeof err) == NB_OK, "%s", err);
    tr_scorer *s = scorer(&hq, err);
    T_ASSERT(s, "%s", err);
    if (with_ref) {
        T_ASSERT(tr_headq_reference(&hq, s, &H, err, sizeof err) == NB_OK, "%s", err);
        T_ASSERT(hq.ref != NULL, "no reference built");
    }
    int32_t cand[300];
    for (int j = 0; j < 300; j++) cand[j] = 2 * j; /* every even product */
    static const int ks[3] = {1, 10, 100};
    long surv = 0, calls = 0;
    for (int u = 0; u < NU; u++)
        for (int ki = 0; ki < 3; ki++)
            for (int mode = 0; mode < 2; mode++)
                for (int c = 0; c < 2; c++) {
                    int k = ks[ki], m = mode ? (k > TR_EF1_M ? k : TR_EF1_M) : k;
                    double thr = mode ? INFINITY : 0.4;
                    T_ASSERT(compare_user(s, u, c ? cand : NULL, c ? 300 : 0, m, thr, &surv, msg,
                                          sizeof msg) == 0,
                             "%s", msg);
                    calls++;
                }
    tr_prune_stats st;
    tr_scorer_prune_stats(s, &st);
    *mean_surv = (double)st.survivors / st.calls;
    *pruned_calls = st.pruned_calls;
    printf("# %s: %ld calls, %.1f of %.1f candidates scored exactly on average, %ld pruned, "
           "%ld fell back\n",
           with_ref ? "reference" : "no reference", st.calls, *mean_surv,
           (double)st.candidates / st.calls, st.pruned_calls, st.fallbacks);
    T_ASSERT(st.calls == calls, "%ld calls counted, %ld made", st.calls, calls);
    if (with_ref)
        T_ASSERT(st.pruned_calls > 0 && *mean_surv < 0.8 * (double)st.candidates / st.calls,
                 "pruning does not work: %.1f of %.1f candidates scored", *mean_surv,
                 (double)st.candidates / st.calls);
    else
        T_ASSERT(st.pruned_calls == 0, "%ld calls pruned without bounds", st.pruned_calls);
    tr_scorer_free(s);
    nn_headq_free(&hq);
    return T_PASS;
}

static int test_pruned_equals_full_with_reference(void) {
    double ms;
    long pc;
    return check_all(1, &ms, &pc);
}

static int test_no_reference_scores_all(void) {
    double ms;
    long pc;
    return check_all(0, &ms, &pc);
}

/* lo <= x <= hi for every product, for users' h and for adversarial inputs (large, mixed
 * sign, far from the reference), with and without the repeat value added. */
static int test_bounds_hold(void) {
    char err[NB_ERRLEN];
    T_ASSERT(train_model(err) == NB_OK, "%s", err);
    int D = M.cfg.head;
    nn_headq hq;
    T_ASSERT(nn_headq_build(&hq, M.p.out_w, P, D, err, sizeof err) == NB_OK, "%s", err);
    tr_scorer *s = scorer(&hq, err);
    T_ASSERT(s, "%s", err);
    T_ASSERT(tr_headq_reference(&hq, s, &H, err, sizeof err) == NB_OK, "%s", err);
    float h[64], x[P], lo[P], hi[P], ex[P];
    uint8_t has[P];
    nb_rng r;
    nb_rng_seed(&r, 11);
    double worst_ref = 0;
    for (int t = 0; t < 200; t++) {
        if (t < 100) {
            T_ASSERT(tr_score_user_hidden(s, &H, t, H.user_order_off[t + 1], h, err, sizeof err) ==
                         NB_OK,
                     "%s", err);
        } else {
            double scale = pow(10, (double)(t % 7) - 2);
            for (int i = 0; i < D; i++)
                h[i] = (float)(scale * (nb_rng_uniform(&r) - (t % 2 ? 0.5 : 0)));
        }
        for (int p = 0; p < P; p++) {
            has[p] = nb_rng_uniform(&r) < 0.3;
            ex[p] = (float)(4 * nb_rng_uniform(&r) - 2);
        }
        nn_head_forward(x, h, M.p.out_w, M.p.out_b, NULL, 1, D, P);
        for (int p = 0; p < P; p++)
            if (has[p]) x[p] += ex[p];
        T_ASSERT(nn_headq_bounds_ref(lo, hi, h, &hq, NULL, ex, has, P) == 0, "reference");
        for (int p = 0; p < P; p++) {
            T_ASSERT(lo[p] <= x[p] && x[p] <= hi[p],
                     "reference bound: input %d product %d: "
                     "%.9g not in [%.9g, %.9g]",
                     t, p, x[p], lo[p], hi[p]);
            double w = (hi[p] - lo[p]) / (1 + fabs(x[p]));
            if (t < 100 && w > worst_ref) worst_ref = w;
        }
    }
    printf("# widest relative interval over users' inputs: reference %.3g\n", worst_ref);
    /* a non-finite input gives no bound */
    h[3] = NAN;
    T_ASSERT(nn_headq_bounds_ref(lo, hi, h, &hq, NULL, NULL, NULL, P) == -1, "NaN h (ref)");
    tr_scorer_free(s);
    nn_headq_free(&hq);
    return T_PASS;
}

/* Logits that are all (nearly) equal: no bound separates them, nothing may be pruned, and
 * the result is still the full one. */
static int test_flat_logits_prune_nothing(void) {
    char err[NB_ERRLEN], msg[NB_ERRLEN + 64];
    T_ASSERT(train_model(err) == NB_OK, "%s", err);
    int D = M.cfg.head;
    size_t nw = (size_t)P * D;
    nn_real *w0 = malloc(nw * sizeof(nn_real)), *b0 = malloc(P * sizeof(nn_real));
    memcpy(w0, M.p.out_w, nw * sizeof(nn_real));
    memcpy(b0, M.p.out_b, P * sizeof(nn_real));
    for (int p = 0; p < P; p++) {
        for (int i = 0; i < D; i++) M.p.out_w[(size_t)p * D + i] = w0[i] * (1 + 1e-7f * (p % 3));
        M.p.out_b[p] = b0[0];
    }
    /* and a repeat term that adds 0 */
    int R = M.cfg.rep_hidden;
    nn_real *rw = malloc((size_t)(R + 1) * sizeof(nn_real));
    memcpy(rw, M.p.rep_w2, (size_t)R * sizeof(nn_real));
    rw[R] = M.p.rep_b2[0];
    memset(M.p.rep_w2, 0, (size_t)R * sizeof(nn_real));
    M.p.rep_b2[0] = 0;
    nn_headq hq;
    int ok = nn_headq_build(&hq, M.p.out_w, P, D, err, sizeof err) == NB_OK;
    tr_scorer *s = ok ? scorer(&hq, err) : NULL;
    int rc = s ? tr_headq_reference(&hq, s, &H, err, sizeof err) : NB_EINVAL;
    long surv = 0;
    int bad = 0;
    for (int u = 0; u < 40 && rc == NB_OK && !bad; u++)
        bad = compare_user(s, u, NULL, 0, 10, 0.4, &surv, msg, sizeof msg);
    tr_prune_stats st = {0};
    if (s) tr_scorer_prune_stats(s, &st);
    memcpy(M.p.out_w, w0, nw * sizeof(nn_real));
    memcpy(M.p.out_b, b0, P * sizeof(nn_real));
    memcpy(M.p.rep_w2, rw, (size_t)R * sizeof(nn_real));
    M.p.rep_b2[0] = rw[R];
    free(rw);
    free(w0);
    free(b0);
    tr_scorer_free(s);
    nn_headq_free(&hq);
    T_ASSERT(rc == NB_OK, "%s", err);
    T_ASSERT(!bad, "%s", msg);
    T_ASSERT(st.calls > 0 && st.survivors == st.candidates && st.pruned_calls == 0,
             "flat logits: %ld of %ld candidates scored, %ld pruned calls", st.survivors,
             st.candidates, st.pruned_calls);
    return T_PASS;
}

/* A calibration slope <= 0 (probability not increasing in the logit): every candidate is
 * scored; and a slope so steep that probabilities saturate at 1: the final check fails, the
 * rest is scored, the result is still the full one. */
static int test_calibration_fallbacks(void) {
    char err[NB_ERRLEN], msg[NB_ERRLEN + 64];
    T_ASSERT(train_model(err) == NB_OK, "%s", err);
    nn_headq hq;
    T_ASSERT(nn_headq_build(&hq, M.p.out_w, P, M.cfg.head, err, sizeof err) == NB_OK, "%s", err);
    tr_scorer *s = scorer(&hq, err);
    T_ASSERT(s, "%s", err);
    T_ASSERT(tr_headq_reference(&hq, s, &H, err, sizeof err) == NB_OK, "%s", err);
    float a0 = M.calib_a, b0 = M.calib_b;
    long surv = 0;
    tr_prune_stats st;
    int bad = 0;
    M.calib_a = -0.5f;
    for (int u = 0; u < 30 && !bad; u++)
        bad = compare_user(s, u, NULL, 0, 10, 0.4, &surv, msg, sizeof msg);
    tr_scorer_prune_stats(s, &st);
    long calls_neg = st.calls, cands_neg = st.candidates, surv_neg = st.survivors;
    /* saturation: sigmoid(200 x + 200) is 1.0f for most products */
    M.calib_a = 200, M.calib_b = 200;
    for (int u = 0; u < 30 && !bad; u++)
        bad = compare_user(s, u, NULL, 0, 10, INFINITY, &surv, msg, sizeof msg);
    tr_prune_stats st2;
    tr_scorer_prune_stats(s, &st2);
    M.calib_a = a0, M.calib_b = b0;
    tr_scorer_free(s);
    nn_headq_free(&hq);
    T_ASSERT(!bad, "%s", msg);
    T_ASSERT(calls_neg > 0 && surv_neg == cands_neg, "negative slope: %ld of %ld scored", surv_neg,
             cands_neg);
    printf("# saturated calibration: %ld of %ld calls fell back\n", st2.fallbacks,
           st2.calls - calls_neg);
    T_ASSERT(st2.fallbacks > 0, "saturated probabilities never triggered the final check");
    return T_PASS;
}

int main(void) {
    synth(&H, 5);
    T_RUN(test_pruned_equals_full_with_reference);
    T_RUN(test_no_reference_scores_all);
    T_RUN(test_bounds_hold);
    T_RUN(test_flat_logits_prune_nothing);
    T_RUN(test_calibration_fallbacks);
    tr_rep_ctx_free(&RC);
    tr_product_stats_free(&PS);
    nn_model_free(&M);
    st_history_free(&H);
    return t_summary();
}
