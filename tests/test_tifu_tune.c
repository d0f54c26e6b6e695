/* test_tifu_tune.c -- TIFU-KNN at the parameter values the tuner varies (worked out by hand),
 * and the tuner (train/tifu_tune.h): its figures equal those of tr_tifu_score scored through
 * the metrics accumulator, its choice is a coordinate-wise optimum of the grid, it never
 * depends on the test users' targets, and it is deterministic. */
#include "baselines.h"
#include "harness.h"
#include "hist_fixture.h"
#include "history.h"
#include "metrics.h"
#include "nb_err.h"
#include "rng.h"
#include "samples.h"
#include "store.h"
#include "tifu_tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-6)

/* One user per entry of baskets: baskets[u] is a list of baskets of product indices, each
 * ended by -1, the list ended by -2; the last basket is the ST_TRAIN target. */
static void hist_from_lists(st_history *h, int P, const int *const *baskets, int U) {
    hf_build b;
    hf_begin(&b, h, P, 1, 1);
    for (int u = 0; u < U; u++) {
        hf_user(&b, u + 1);
        const int *x = baskets[u];
        int nb = 0;
        for (const int *y = x; *y != -2; y++) nb += *y == -1;
        for (int k = 0; k < nb; k++) {
            hf_order(&b, (int32_t)h->n_orders + 1, k + 1 == nb ? ST_TRAIN : ST_PRIOR, -1);
            for (; *x != -1; x++) hf_item(&b, *x);
            x++;
        }
    }
    hf_end(&b);
}

/* The user b1={0,1} b2={1} b3={2,2} b4={0,3} (then a target {4}) at parameter values other
 * than the defaults (which test_baselines covers). */
static int test_vector_at_tuned_values(void) {
    char err[NB_ERRLEN];
    static const int u0[] = {0, 1, -1, 1, -1, 2, 2, -1, 0, 3, -1, 4, -1, -2};
    const int *bs[1] = {u0};
    st_history h;
    hist_from_lists(&h, 5, bs, 1);
    tr_bl_ws *ws;
    T_ASSERT(tr_bl_ws_new(&ws, 5, err, sizeof err) == NB_OK, "%s", err);
    int32_t idx[5];
    float val[5];
    int nnz;
    struct {
        tr_tifu_params p;
        double want[4];
        const char *why;
    } c[] = {
        /* m 2: groups {b1,b2} {b3,b4}; u = 1/2 (r_g/2 (r_b b1 + b2) + 1/2 (r_b b3 + b4)) */
        {{.r_b = 0.6, .r_g = 0.8, .m = 2, .k = 1, .alpha = 0.5},
         {0.5 * (0.4 * 0.6 + 0.5), 0.5 * 0.4 * 1.6, 0.5 * 0.5 * 0.6, 0.25},
         "m 2 r_b .6 r_g .8"},
        /* m 1: every basket a group, r_b unused; u = 1/4 sum r_g^(4-j) b_j */
        {{.r_b = 0.6, .r_g = 0.8, .m = 1, .k = 1, .alpha = 0.5},
         {(0.512 + 1) / 4, (0.512 + 0.64) / 4, 0.8 / 4, 0.25},
         "m 1 r_g .8"},
        /* m 7 > 4 baskets: one group of 4, no decay: u = the purchase shares */
        {{.r_b = 1.0, .r_g = 1.0, .m = 7, .k = 1, .alpha = 0.5},
         {0.5, 0.5, 0.25, 0.25},
         "m 7 no decay"},
        /* m 3, r_b 1, r_g .6: groups {b1} {b2,b3,b4}: u = 1/2 (.6 b1 + 1/3 (b2 + b3 + b4)) */
        {{.r_b = 1.0, .r_g = 0.6, .m = 3, .k = 1, .alpha = 0.5},
         {0.5 * (0.6 + 1.0 / 3), 0.5 * (0.6 + 1.0 / 3), 0.5 / 3, 0.5 / 3},
         "m 3 r_b 1 r_g .6"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        T_ASSERT(tr_tifu_user_vector(&h, 0, 4, &c[i].p, ws, idx, val, &nnz, err, sizeof err) ==
                     NB_OK,
                 "%s", err);
        T_ASSERT(nnz == 4, "%s: nnz %d", c[i].why, nnz);
        for (int j = 0; j < 4; j++)
            T_ASSERT(idx[j] == j && NEAR(val[j], c[i].want[j]), "%s: u[%d] = %.7f want %.7f",
                     c[i].why, (int)idx[j], val[j], c[i].want[j]);
    }
    tr_bl_ws_free(ws);
    st_history_free(&h);
    return T_PASS;
}

/* Single-basket users (vector = basket). Query q = {0,1}; references r0 {0,1,2} (d^2 1),
 * r1 {0} (d^2 1), r2 {3,4} (d^2 4), r3 {0,1} (d^2 0). k 3: r3, r0, r1; mean {0: 1, 1: 2/3,
 * 2: 1/3}; alpha .3: score = .3 q + .7 mean = {0: 1, 1: .3 + .7 * 2/3, 2: .7/3}, then the
 * popularity fill (3, 4, 5) at 0. */
static int test_knn_at_tuned_values(void) {
    char err[NB_ERRLEN];
    static const int q[] = {0, 1, -1, 5, -1, -2}, r0[] = {0, 1, 2, -1, 5, -1, -2},
                     r1[] = {0, -1, 5, -1, -2}, r2[] = {3, 4, -1, 5, -1, -2},
                     r3[] = {0, 1, -1, 5, -1, -2};
    const int *bs[5] = {q, r0, r1, r2, r3};
    st_history h;
    hist_from_lists(&h, 6, bs, 5);
    tr_tifu_params p = {.r_b = 0.6, .r_g = 0.8, .m = 7, .k = 3, .alpha = 0.3};
    tr_popularity pop;
    tr_bl_ws *ws;
    tr_tifu *t;
    T_ASSERT(tr_popularity_build(&pop, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_bl_ws_new(&ws, 6, err, sizeof err) == NB_OK, "%s", err);
    int32_t refs[4] = {1, 2, 3, 4};
    int64_t ends[4] = {3, 5, 7, 9};
    T_ASSERT(tr_tifu_build(&t, &h, refs, ends, 4, &p, err, sizeof err) == NB_OK, "%s", err);
    int32_t out[6];
    float sc[6];
    int n;
    T_ASSERT(tr_tifu_score(t, &pop, &h, 0, 1, ws, 6, out, sc, &n, err, sizeof err) == NB_OK, "%s",
             err);
    int32_t want[6] = {0, 1, 2, 3, 4, 5};
    double wsc[6] = {1.0, 0.3 + 0.7 * 2 / 3.0, 0.7 / 3, 0, 0, 0};
    T_ASSERT(n == 6, "n %d", n);
    for (int i = 0; i < 6; i++)
        T_ASSERT(out[i] == want[i] && NEAR(sc[i], wsc[i]), "rank %d: %d (%g) want %d (%g)", i,
                 (int)out[i], sc[i], (int)want[i], wsc[i]);
    tr_tifu_free(t);
    tr_bl_ws_free(ws);
    tr_popularity_free(&pop);
    st_history_free(&h);
    return T_PASS;
}

/* A random history of U users with 2..13 baskets (the last the target) of Zipf-like products
 * around a per-user favourite block; users >= first_test get their targets from a second
 * generator seeded with test_seed, so that only the test users' targets change with it. */
enum { P = 60, U = 120, N_VAL = 30, N_REF = 60, FIRST_TEST = 90 };
static void random_history(st_history *h, uint64_t seed, uint64_t test_seed, uint64_t val_seed) {
    nb_rng r, rt, rv;
    nb_rng_seed(&r, seed);
    nb_rng_seed(&rt, test_seed);
    nb_rng_seed(&rv, val_seed);
    hf_build b;
    hf_begin(&b, h, P, 1, 1);
    for (int u = 0; u < U; u++) {
        hf_user(&b, u + 1);
        int nb = 2 + (int)nb_rng_below(&r, 12);
        for (int k = 0; k < nb; k++) {
            int target = k + 1 == nb;
            /* the test (validation) users' targets come from their own generator */
            nb_rng *g = target && u >= FIRST_TEST ? &rt : target && u < N_VAL ? &rv : &r;
            hf_order(&b, (int32_t)h->n_orders + 1, target ? ST_TRAIN : ST_PRIOR, -1);
            int ni = 1 + (int)nb_rng_below(g, 10);
            for (int i = 0; i < ni; i++) {
                int j = (int)(P * pow(nb_rng_uniform(g), 3.0));
                if (nb_rng_uniform(g) < 0.5) j = (u * 7 + (int)nb_rng_below(g, 5)) % P;
                hf_item(&b, j);
            }
        }
    }
    hf_end(&b);
}

/* Validation samples: users 0..N_VAL; reference: N_VAL..N_VAL+N_REF; test: FIRST_TEST..U. */
static void samples_of(const st_history *h, tr_sample *val, tr_sample *ref, tr_sample *test) {
    for (int u = 0; u < U; u++) {
        tr_sample s = {u, h->user_order_off[u + 1] - 1};
        if (u < N_VAL)
            val[u] = s;
        else if (u < N_VAL + N_REF)
            ref[u - N_VAL] = s;
        else if (u >= FIRST_TEST)
            test[u - FIRST_TEST] = s;
    }
}

/* A 2-value grid per parameter around the defaults (32 points); rev lists m, r_b and r_g in
 * the other order (so a tuner that always used a coordinate's first value would be caught by
 * one of the two). */
static void small_grid(tr_tifu_grid *g, int rev) {
    memset(g, 0, sizeof *g);
    g->n_m = g->n_rb = g->n_rg = g->n_k = g->n_alpha = 2;
    g->m[rev] = 1, g->m[!rev] = 3;
    g->r_b[rev] = 0.6, g->r_b[!rev] = 0.9;
    g->r_g[rev] = 0.7, g->r_g[!rev] = 1.0;
    g->k[0] = 3, g->k[1] = 20;
    g->alpha[0] = 0.5, g->alpha[1] = 0.9;
}

/* R@10 and NDCG@10 of tr_tifu_score with p on val[0..nv) (neighbours from ref), through the
 * project's metrics accumulator. Returns NB_OK or an error. */
static int brute(const st_history *h, const tr_popularity *pop, const tr_sample *val, int nv,
                 const tr_sample *ref, int nr, const tr_tifu_params *p, double *r10, double *ndcg10,
                 char *err, size_t errlen) {
    int32_t users[N_REF], out[P], truth[P];
    int64_t ends[N_REF];
    float sc[P];
    for (int i = 0; i < nr; i++) users[i] = ref[i].user, ends[i] = ref[i].target;
    tr_tifu *t = NULL;
    tr_bl_ws *ws = NULL;
    tr_metrics m;
    int rc = tr_metrics_init(&m, P, err, errlen);
    if (rc == NB_OK) rc = tr_bl_ws_new(&ws, P, err, errlen);
    if (rc == NB_OK) rc = tr_tifu_build(&t, h, users, ends, nr, p, err, errlen);
    for (int i = 0; i < nv && rc == NB_OK; i++) {
        int n = 0, nt = 0;
        rc = tr_tifu_score(t, pop, h, val[i].user, val[i].target, ws, P, out, sc, &n, err, errlen);
        for (int64_t e = h->order_item_off[val[i].target]; e < h->order_item_off[val[i].target + 1];
             e++)
            truth[nt++] = h->items[e];
        if (rc == NB_OK) rc = tr_metrics_add(&m, out, n, NULL, 0, truth, nt, err, errlen);
    }
    if (rc == NB_OK) {
        tr_metrics_result res;
        tr_metrics_get(&m, &res);
        *r10 = res.r_at[0], *ndcg10 = res.ndcg_at[0];
    }
    tr_metrics_free(&m);
    tr_tifu_free(t);
    tr_bl_ws_free(ws);
    return rc;
}

/* The tuner's figures for every visited point equal tr_tifu_score's through the metrics
 * accumulator (the chosen point and the defaults' are reported); the chosen point is at
 * least as good as every grid point that differs from it in one of m, r_b, r_g (any k,
 * alpha) -- where coordinate descent stops -- and as the defaults. */
static int test_tuner_matches_tifu_score(void) {
    char err[NB_ERRLEN];
    st_history h;
    random_history(&h, 11, 12, 13);
    tr_sample val[N_VAL], ref[N_REF], test[U - FIRST_TEST];
    samples_of(&h, val, ref, test);
    tr_popularity pop;
    T_ASSERT(tr_popularity_build(&pop, &h, err, sizeof err) == NB_OK, "%s", err);
    tr_tifu_grid g;
    small_grid(&g, 0);
    tr_tifu_tune_result res;
    T_ASSERT(tr_tifu_tune(&h, &pop, val, N_VAL, ref, N_REF, &g, 0, 0, &res, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(res.n_val == N_VAL && res.n_ref == N_REF && res.n_grid == 32, "sizes %d %d %d",
             res.n_val, res.n_ref, res.n_grid);
    T_ASSERT(res.n_configs >= 16 && res.n_configs <= 32 && res.n_configs % 4 == 0, "configs %d",
             res.n_configs);
    T_ASSERT(res.def_r10 == -1, "the defaults' k 300 is not in this grid: %g", res.def_r10);
    /* with k 300 the grid holds the defaults (k is capped by the 59 other users) */
    double r, n;
    tr_tifu_params def;
    tr_tifu_defaults(&def);
    g.k[1] = 300;
    T_ASSERT(tr_tifu_tune(&h, &pop, val, N_VAL, ref, N_REF, &g, 0, 0, &res, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(brute(&h, &pop, val, N_VAL, ref, N_REF, &def, &r, &n, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(fabs(r - res.def_r10) < 1e-12 && fabs(n - res.def_ndcg10) < 1e-12,
             "defaults: tuner R@10 %.6f NDCG@10 %.6f, tr_tifu_score %.6f %.6f", res.def_r10,
             res.def_ndcg10, r, n);
    T_ASSERT(res.val_r10 >= res.def_r10, "tuned %.4f below the defaults %.4f", res.val_r10,
             res.def_r10);
    /* coordinate-wise optimum over (m, r_b, r_g), every (k, alpha), in both grid orders */
    int n_better_seen = 0, n_checked = 0;
    for (int rev = 0; rev < 2; rev++) {
        small_grid(&g, rev);
        T_ASSERT(tr_tifu_tune(&h, &pop, val, N_VAL, ref, N_REF, &g, 0, 0, &res, err, sizeof err) ==
                     NB_OK,
                 "%s", err);
        T_ASSERT(brute(&h, &pop, val, N_VAL, ref, N_REF, &res.best, &r, &n, err, sizeof err) ==
                     NB_OK,
                 "%s", err);
        T_ASSERT(fabs(r - res.val_r10) < 1e-12 && fabs(n - res.val_ndcg10) < 1e-12,
                 "grid order %d: tuner R@10 %.6f NDCG@10 %.6f, tr_tifu_score %.6f %.6f", rev,
                 res.val_r10, res.val_ndcg10, r, n);
        const tr_tifu_params b = res.best;
        for (int d = 0; d < 3; d++)
            for (int v = 0; v < 2; v++)
                for (int ik = 0; ik < 2; ik++)
                    for (int ia = 0; ia < 2; ia++) {
                        tr_tifu_params p = b;
                        if (d == 0) p.m = g.m[v];
                        if (d == 1) p.r_b = g.r_b[v];
                        if (d == 2) p.r_g = g.r_g[v];
                        p.k = g.k[ik], p.alpha = g.alpha[ia];
                        T_ASSERT(brute(&h, &pop, val, N_VAL, ref, N_REF, &p, &r, &n, err,
                                       sizeof err) == NB_OK,
                                 "%s", err);
                        n_checked++;
                        n_better_seen += r < res.val_r10 - 1e-12;
                        T_ASSERT(r < res.val_r10 - 1e-12 ||
                                     (r <= res.val_r10 + 1e-12 && n <= res.val_ndcg10 + 1e-12),
                                 "m %d r_b %g r_g %g k %d alpha %g: R@10 %.6f NDCG@10 %.6f beats "
                                 "the chosen "
                                 "%.6f %.6f",
                                 p.m, p.r_b, p.r_g, p.k, p.alpha, r, n, res.val_r10,
                                 res.val_ndcg10);
                    }
    }
    /* the grid must discriminate, or the checks above prove nothing */
    T_ASSERT(n_better_seen > n_checked / 2, "only %d of %d neighbours worse", n_better_seen,
             n_checked);
    tr_popularity_free(&pop);
    st_history_free(&h);
    return T_PASS;
}

/* Changing the test users' targets leaves the tuning bit for bit unchanged; changing the
 * validation users' targets changes its figures (so the comparison can fail). */
static int test_tuner_ignores_test_users(void) {
    char err[NB_ERRLEN];
    tr_tifu_grid g;
    small_grid(&g, 0);
    tr_tifu_tune_result res[3];
    uint64_t test_items[3] = {0}; /* a hash of the test targets (unsigned: wraps) */
    for (int v = 0; v < 3; v++) {
        st_history h;
        /* v 1: other test targets; v 2: other validation targets */
        random_history(&h, 11, v == 1 ? 99 : 12, v == 2 ? 98 : 13);
        tr_sample val[N_VAL], ref[N_REF], test[U - FIRST_TEST];
        samples_of(&h, val, ref, test);
        for (int i = 0; i < U - FIRST_TEST; i++)
            for (int64_t e = h.order_item_off[test[i].target];
                 e < h.order_item_off[test[i].target + 1]; e++)
                test_items[v] = test_items[v] * 31 + (uint64_t)h.items[e];
        int rc = tr_tifu_tune(&h, NULL, val, N_VAL, ref, N_REF, &g, 0, 0, &res[v], err, sizeof err);
        st_history_free(&h);
        T_ASSERT(rc == NB_OK, "%s", err);
    }
    T_ASSERT(test_items[1] != test_items[0] && test_items[2] == test_items[0],
             "the fixture changes only the test users' targets in variant 1");
    T_ASSERT(memcmp(&res[0].best, &res[1].best, sizeof res[0].best) == 0 &&
                 res[0].val_r10 == res[1].val_r10 && res[0].val_ndcg10 == res[1].val_ndcg10 &&
                 res[0].def_r10 == res[1].def_r10 && res[0].n_configs == res[1].n_configs,
             "test targets changed the tuning: R@10 %.6f vs %.6f", res[0].val_r10, res[1].val_r10);
    T_ASSERT(res[2].val_r10 != res[0].val_r10 || res[2].val_ndcg10 != res[0].val_ndcg10,
             "validation targets did not change the figures (%.6f)", res[0].val_r10);
    return T_PASS;
}

/* Two runs give the same bits; the caps take evenly strided subsamples; bad input is refused. */
static int test_tuner_deterministic_and_errors(void) {
    char err[NB_ERRLEN];
    st_history h;
    random_history(&h, 21, 22, 23);
    tr_sample val[N_VAL], ref[N_REF], test[U - FIRST_TEST];
    samples_of(&h, val, ref, test);
    tr_tifu_grid g;
    tr_tifu_grid_default(&g);
    T_ASSERT(g.n_m * g.n_rb * g.n_rg * g.n_k * g.n_alpha == 1350, "default grid size");
    tr_tifu_tune_result a, b;
    T_ASSERT(tr_tifu_tune(&h, NULL, val, N_VAL, ref, N_REF, NULL, 10, 25, &a, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(tr_tifu_tune(&h, NULL, val, N_VAL, ref, N_REF, &g, 10, 25, &b, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(a.n_val == 10 && a.n_ref == 25 && a.n_grid == 1350, "caps: %d %d", a.n_val, a.n_ref);
    T_ASSERT(memcmp(&a.best, &b.best, sizeof a.best) == 0 && a.val_r10 == b.val_r10 &&
                 a.val_ndcg10 == b.val_ndcg10 && a.def_r10 == b.def_r10 &&
                 a.n_configs == b.n_configs,
             "two runs differ: %.9f vs %.9f", a.val_r10, b.val_r10);
    T_ASSERT(a.def_r10 >= 0 && a.val_r10 >= a.def_r10, "defaults in the grid, tuned >= defaults");
    /* no validation samples: the defaults */
    T_ASSERT(tr_tifu_tune(&h, NULL, val, 0, ref, N_REF, NULL, 0, 0, &a, err, sizeof err) == NB_OK,
             "%s", err);
    tr_tifu_params def;
    tr_tifu_defaults(&def);
    T_ASSERT(memcmp(&a.best, &def, sizeof def) == 0 && a.n_configs == 0, "no validation users");
    /* errors */
    g.k[1] = g.k[0];
    T_ASSERT(tr_tifu_tune(&h, NULL, val, N_VAL, ref, N_REF, &g, 0, 0, &a, err, sizeof err) ==
                     NB_EINVAL &&
                 strstr(err, "ascending"),
             "k not ascending: %s", err);
    tr_tifu_grid_default(&g);
    g.r_g[2] = 0;
    T_ASSERT(tr_tifu_tune(&h, NULL, val, N_VAL, ref, N_REF, &g, 0, 0, &a, err, sizeof err) ==
                     NB_EINVAL &&
                 strstr(err, "r_g = 0"),
             "r_g 0: %s", err);
    ref[3].target = h.user_order_off[ref[3].user + 1];
    T_ASSERT(tr_tifu_tune(&h, NULL, val, N_VAL, ref, N_REF, NULL, 0, 0, &a, err, sizeof err) ==
                     NB_EINVAL &&
                 strstr(err, "reference sample 3"),
             "bad reference sample: %s", err);
    st_history_free(&h);
    return T_PASS;
}

/* The tuning set: every validation sample first, then one sample per training user at the
 * back-th order with items before its last sample's target, that order having an order with
 * items before it (else the user is left out), evenly strided up to the cap; validation
 * alone over the cap is strided too. */
static int test_tuning_set(void) {
    /* u0 {0} {1} {2} {3}; u1 {0} {1}; u2 {0} {1} {} {2}; u3 {0} {1} {2} (the last basket of
     * each is its train order) */
    static const int u0[] = {0, -1, 1, -1, 2, -1, 3, -1, -2}, u1[] = {0, -1, 1, -1, -2},
                     u2[] = {0, -1, 1, -1, -1, 2, -1, -2}, u3[] = {0, -1, 1, -1, 2, -1, -2};
    const int *bs[4] = {u0, u1, u2, u3};
    st_history h;
    hist_from_lists(&h, 4, bs, 4);
    const int64_t *o = h.user_order_off;
    tr_sample val[5], train[5] = {{0, o[0] + 3}, {1, o[1] + 1}, {2, o[2] + 3},
                                  {3, o[3] + 1}, {3, o[3] + 2}}; /* u3: two samples */
    for (int i = 0; i < 5; i++) val[i] = (tr_sample){.user = 100 + i, .target = 1000 + i};
    tr_sample *t = NULL;
    int nv = -1;
    int n = tr_tifu_tuning_set(&h, val, 5, train, 5, 1, 100, &t, &nv);
    T_ASSERT(n == 8 && nv == 5, "count %d, validation %d", n, nv);
    for (int i = 0; i < 5; i++) T_ASSERT(t[i].user == 100 + i, "validation %d first", i);
    /* u1's earlier order has nothing before it; u2 skips its empty order; u3 from its last */
    const tr_sample want1[3] = {{0, o[0] + 2}, {2, o[2] + 1}, {3, o[3] + 1}};
    for (int i = 0; i < 3; i++)
        T_ASSERT(t[5 + i].user == want1[i].user && t[5 + i].target == want1[i].target,
                 "back 1, training %d: user %d order %lld", i, t[5 + i].user,
                 (long long)(t[5 + i].target - o[t[5 + i].user]));
    free(t);
    n = tr_tifu_tuning_set(&h, val, 5, train, 5, 2, 100, &t, &nv);
    T_ASSERT(n == 6 && t[5].user == 0 && t[5].target == o[0] + 1, "back 2: %d", n);
    free(t);
    n = tr_tifu_tuning_set(&h, val, 5, train, 5, 1, 7, &t, &nv);
    T_ASSERT(n == 7 && t[5].user == 0 && t[6].user == 2, "strided to the cap: %d", n);
    free(t);
    n = tr_tifu_tuning_set(&h, val, 5, train, 5, 1, 2, &t, &nv);
    T_ASSERT(n == 2 && nv == 2 && t[0].user == 100 && t[1].user == 102, "validation over the cap");
    free(t);
    n = tr_tifu_tuning_set(&h, val, 0, train, 0, 1, 0, &t, &nv);
    T_ASSERT(n == 0 && nv == 0 && t != NULL, "empty");
    free(t);
    st_history_free(&h);
    return T_PASS;
}

/* The signal check: each half (even, odd positions) is tuned as tr_tifu_tune tunes it alone,
 * the cross-fitted figure is each half's parameters scored by tr_tifu_score on the other
 * half, the defaults' figure (the whole tuning's) the defaults on all of them; a whole
 * tuning of other samples is refused; fewer than 2 samples: the defaults and zeros. */
static int test_crossfit(void) {
    char err[NB_ERRLEN];
    st_history h;
    random_history(&h, 31, 32, 33);
    tr_sample val[N_VAL], ref[N_REF], test[U - FIRST_TEST], half[2][N_VAL / 2];
    samples_of(&h, val, ref, test);
    for (int i = 0; i < N_VAL; i++) half[i & 1][i / 2] = val[i];
    tr_popularity pop;
    T_ASSERT(tr_popularity_build(&pop, &h, err, sizeof err) == NB_OK, "%s", err);
    tr_tifu_tune_result full, half_full;
    T_ASSERT(tr_tifu_tune(&h, &pop, val, N_VAL, ref, N_REF, NULL, 0, 0, &full, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    tr_tifu_crossfit_result cf, cf2;
    T_ASSERT(tr_tifu_crossfit(&h, &pop, val, N_VAL, ref, N_REF, &full, &cf, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    T_ASSERT(cf.n == N_VAL, "n %d", cf.n);
    double r10 = 0, nd = 0, r, n;
    for (int k = 0; k < 2; k++) {
        tr_tifu_tune_result t;
        T_ASSERT(tr_tifu_tune(&h, &pop, half[k], N_VAL / 2, ref, N_REF, NULL, 0, 0, &t, err,
                              sizeof err) == NB_OK,
                 "%s", err);
        T_ASSERT(memcmp(&t.best, &cf.half[k], sizeof t.best) == 0, "half %d: m %d/%d k %d/%d", k,
                 t.best.m, cf.half[k].m, t.best.k, cf.half[k].k);
        T_ASSERT(brute(&h, &pop, half[1 - k], N_VAL / 2, ref, N_REF, &cf.half[k], &r, &n, err,
                       sizeof err) == NB_OK,
                 "%s", err);
        r10 += r / 2, nd += n / 2;
    }
    T_ASSERT(fabs(r10 - cf.r10) < 1e-9 && fabs(nd - cf.ndcg10) < 1e-9,
             "cross-fitted R@10 %.6f NDCG@10 %.6f, tr_tifu_score %.6f %.6f", cf.r10, cf.ndcg10,
             r10, nd);
    tr_tifu_params def;
    tr_tifu_defaults(&def);
    T_ASSERT(brute(&h, &pop, val, N_VAL, ref, N_REF, &def, &r, &n, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(fabs(r - cf.def_r10) < 1e-9 && fabs(n - cf.def_ndcg10) < 1e-9,
             "defaults R@10 %.6f NDCG@10 %.6f, tr_tifu_score %.6f %.6f", cf.def_r10,
             cf.def_ndcg10, r, n);
    T_ASSERT(tr_tifu_crossfit(&h, &pop, val, N_VAL, ref, N_REF, &full, &cf2, err, sizeof err) ==
                     NB_OK &&
                 cf2.r10 == cf.r10 && cf2.def_r10 == cf.def_r10 &&
                 memcmp(cf2.half, cf.half, sizeof cf.half) == 0,
             "two runs differ");
    /* a whole tuning of other samples is refused */
    T_ASSERT(tr_tifu_tune(&h, &pop, val, N_VAL / 2, ref, N_REF, NULL, 0, 0, &half_full, err,
                          sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(tr_tifu_crossfit(&h, &pop, val, N_VAL, ref, N_REF, &half_full, &cf2, err,
                              sizeof err) == NB_EINVAL &&
                 strstr(err, "scored 15 samples"),
             "another tuning: %s", err);
    T_ASSERT(tr_tifu_crossfit(&h, &pop, val, 1, ref, N_REF, &full, &cf2, err, sizeof err) == NB_OK &&
                 cf2.n == 0 && cf2.r10 == 0 && cf2.def_r10 == 0 &&
                 memcmp(&cf2.half[0], &def, sizeof def) == 0 &&
                 memcmp(&cf2.half[1], &def, sizeof def) == 0,
             "one sample: the defaults");
    tr_popularity_free(&pop);
    st_history_free(&h);
    return T_PASS;
}

int main(void) {
    T_RUN(test_tuning_set);
    T_RUN(test_crossfit);
    T_RUN(test_vector_at_tuned_values);
    T_RUN(test_knn_at_tuned_values);
    T_RUN(test_tuner_matches_tifu_score);
    T_RUN(test_tuner_ignores_test_users);
    T_RUN(test_tuner_deterministic_and_errors);
    return t_summary();
}
