/* test_expected_f1.c -- the O(n^2) expected-F1 programme (infer/expected_f1.h) against brute
 * force: for n <= 12 the exact expected F1 of every subset, by enumerating all 2^n outcomes. */
#include "expected_f1.h"
#include "harness.h"
#include "nb_err.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Exact E[F1] of every prediction mask S over all outcome masks y (metrics.h convention:
 * both empty -> 1). prob_y[y] = P(outcome y). ef[S] receives the expectation. */
static void brute_force(const double *p, int n, double *ef) {
    int N = 1 << n;
    double *py = malloc((size_t)N * sizeof *py);
    for (int y = 0; y < N; y++) {
        double q = 1;
        for (int i = 0; i < n; i++) q *= (y >> i & 1) ? p[i] : 1 - p[i];
        py[y] = q;
    }
    for (int S = 0; S < N; S++) {
        int ns = __builtin_popcount((unsigned)S);
        double e = 0;
        for (int y = 0; y < N; y++) {
            int d = ns + __builtin_popcount((unsigned)y);
            e += py[y] * (d == 0 ? 1.0 : 2.0 * __builtin_popcount((unsigned)(S & y)) / d);
        }
        ef[S] = e;
    }
    free(py);
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Random cases of n = 1..12 (probabilities from several regimes, including ones where the
 * empty basket wins), each checked three ways against brute force. */
static int test_against_brute_force(void) {
    char err[NB_ERRLEN];
    nb_rng r;
    nb_rng_seed(&r, 2012);
    double *ef = malloc(sizeof(double) << 12);
    double ws[13 * 13 + 26 + 2], dp[13];
    int cases = 0, empty_wins = 0;
    tr_ef1 *ch;
    T_ASSERT(tr_ef1_new(&ch, 12, err, sizeof err) == NB_OK, "%s", err);
    for (int c = 0; c < 40; c++) {
        int n = 1 + c % 12;
        double p[12];
        int regime = c % 4;
        for (int i = 0; i < n; i++) {
            double u = nb_rng_uniform(&r);
            p[i] = regime == 0 ? u
                : regime == 1  ? 0.15 * u
                : regime == 2  ? u * u * u
                               : 0.5 + 0.5 * u;
        }
        qsort(p, (size_t)n, sizeof p[0], cmp_desc);
        brute_force(p, n, ef);
        T_ASSERT(tr_ef1_expectations(p, n, ws, dp, err, sizeof err) == NB_OK, "%s", err);
        /* 1. every prefix's expectation is exact */
        for (int k = 0; k <= n; k++)
            T_ASSERT(fabs(dp[k] - ef[(1 << k) - 1]) < 1e-12,
                     "case %d n %d k %d: dp %.17g brute %.17g", c, n, k, dp[k], ef[(1 << k) - 1]);
        /* 2. the best subset is a prefix: brute optimum == best prefix, over all sets and
         *    over non-empty sets */
        double best_all = -1, best_ne = -1;
        int arg_all = 0;
        for (int S = 0; S < (1 << n); S++) {
            if (ef[S] > best_all) best_all = ef[S], arg_all = S;
            if (S && ef[S] > best_ne) best_ne = ef[S];
        }
        int ka = __builtin_popcount((unsigned)arg_all);
        T_ASSERT(fabs(ef[(1 << ka) - 1] - best_all) < 1e-12,
                 "case %d: optimum of size %d not a prefix", c, ka);
        /* 3. the chooser (float probabilities, shuffled order) reaches the optimum */
        float pf[12];
        int32_t items[12], out[12];
        for (int i = 0; i < n; i++) {
            pf[i] = (float)p[i];
            items[i] = 100 + i;
        }
        for (int i = n - 1; i > 0; i--) { /* shuffle */
            int j = (int)nb_rng_below(&r, (uint64_t)i + 1);
            float t = pf[i];
            pf[i] = pf[j];
            pf[j] = t;
            int32_t ti = items[i];
            items[i] = items[j];
            items[j] = ti;
        }
        double pr[12]; /* the probabilities the chooser sees, rounded to float */
        for (int i = 0; i < n; i++) pr[i] = (float)p[i];
        brute_force(pr, n, ef);
        best_all = best_ne = -1;
        for (int S = 0; S < (1 << n); S++) {
            if (ef[S] > best_all) best_all = ef[S];
            if (S && ef[S] > best_ne) best_ne = ef[S];
        }
        for (int allow = 0; allow <= 1; allow++) {
            int k;
            double e;
            T_ASSERT(tr_ef1_choose(ch, pf, items, n, allow, out, &k, &e, err, sizeof err) == NB_OK,
                     "%s", err);
            double want = allow ? best_all : best_ne;
            T_ASSERT(fabs(e - want) < 1e-9,
                     "case %d n %d allow %d: chose k %d with E %.17g, optimum %.17g", c, n, allow,
                     k, e, want);
            T_ASSERT(allow || k >= 1, "allow_empty = 0 must predict something");
            for (int i = 0; i < k; i++)
                T_ASSERT(out[i] == 100 + i, "case %d: out[%d] = %d is not the %d-th most probable",
                         c, i, (int)out[i], i);
            if (allow && k == 0) empty_wins++;
        }
        cases++;
    }
    tr_ef1_free(ch);
    free(ef);
    T_ASSERT(cases == 40 && empty_wins > 0, "the empty basket must win somewhere (%d)", empty_wins);
    return T_PASS;
}

/* Only the top m enter: with m = 40 of 3000 products the chooser equals the programme run on
 * the 40 largest probabilities; ties go to the smaller product index. */
static int test_top_m_and_ties(void) {
    char err[NB_ERRLEN];
    enum { N = 3000, M = 40 };
    static float prob[N];
    static double sorted[N];
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) prob[i] = (float)(nb_rng_uniform(&r) * nb_rng_uniform(&r) * 0.6);
    prob[1234] = prob[77] = 0.9f; /* a tie at the top */
    for (int i = 0; i < N; i++) sorted[i] = prob[i];
    qsort(sorted, N, sizeof sorted[0], cmp_desc);
    double ws[(M + 1) * (M + 1) + 2 * M + 2], dp[M + 1];
    T_ASSERT(tr_ef1_expectations(sorted, M, ws, dp, err, sizeof err) == NB_OK, "%s", err);
    int kb = 1;
    for (int k = 2; k <= M; k++)
        if (dp[k] > dp[kb]) kb = k;
    tr_ef1 *ch;
    T_ASSERT(tr_ef1_new(&ch, M, err, sizeof err) == NB_OK, "%s", err);
    int32_t out[M];
    int k;
    double e;
    T_ASSERT(tr_ef1_choose(ch, prob, NULL, N, 0, out, &k, &e, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(k == kb && e == dp[kb], "k %d (want %d), E %.17g (want %.17g)", k, kb, e, dp[kb]);
    T_ASSERT(k >= 2 && out[0] == 77 && out[1] == 1234, "tie by index: %d %d", (int)out[0],
             (int)out[1]);
    for (int i = 0; i < k; i++) T_ASSERT(prob[out[i]] == (float)sorted[i], "rank %d", i);
    /* invalid input */
    prob[5] = NAN;
    T_ASSERT(tr_ef1_choose(ch, prob, NULL, N, 0, out, &k, &e, err, sizeof err) == NB_EINVAL, "NaN");
    T_ASSERT(strstr(err, "product 5") != NULL, "message names the product: %s", err);
    double unsorted[2] = {0.1, 0.2};
    T_ASSERT(tr_ef1_expectations(unsorted, 2, ws, dp, err, sizeof err) == NB_EINVAL, "unsorted");
    T_ASSERT(tr_ef1_choose(ch, prob, NULL, 0, 0, out, &k, &e, err, sizeof err) == NB_OK && k == 0,
             "no products -> empty basket");
    tr_ef1_free(ch);
    T_ASSERT(tr_ef1_new(&ch, 0, err, sizeof err) == NB_EINVAL && ch == NULL, "m = 0");
    return T_PASS;
}

/* Scale: 2,000 users of 5,000 products with m = 200, as the training evaluation calls it;
 * prints the time (not asserted: the machine is shared) and checks the basket sizes. */
static int test_speed(void) {
    char err[NB_ERRLEN];
    enum { N = 5000, U = 2000 };
    static float prob[N];
    nb_rng r;
    nb_rng_seed(&r, 9);
    tr_ef1 *ch;
    T_ASSERT(tr_ef1_new(&ch, 200, err, sizeof err) == NB_OK, "%s", err);
    int32_t out[200];
    long total = 0;
    double t0 = nb_now();
    for (int u = 0; u < U; u++) {
        for (int i = 0; i < N; i++)
            prob[i] = (float)(0.9 * pow(nb_rng_uniform(&r), 400.0)); /* ~11 expected true */
        int k;
        T_ASSERT(tr_ef1_choose(ch, prob, NULL, N, 0, out, &k, NULL, err, sizeof err) == NB_OK, "%s",
                 err);
        total += k;
    }
    double dt = nb_now() - t0;
    printf("# expected F1: %d users x %d products, m = 200: %.3f s, mean basket %.2f\n", U, N, dt,
           (double)total / U);
    tr_ef1_free(ch);
    T_ASSERT(total > 2 * U && total < 60 * U, "mean basket %.2f for ~11 expected true",
             (double)total / U);
    return T_PASS;
}

int main(void) {
    T_RUN(test_against_brute_force);
    T_RUN(test_top_m_and_ties);
    T_RUN(test_speed);
    return t_summary();
}
