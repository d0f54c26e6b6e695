/* gradcheck.h -- the finite-difference comparison shared by the double-precision gradient
 * checks (tests/dtest_gradcheck*.c; method and tolerance at the top of dtest_gradcheck.c).
 * Static functions: each test program includes it once. */
#ifndef NB_GRADCHECK_H
#define NB_GRADCHECK_H

#include "nn.h"
#include "nb_err.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define EPS 1e-6
#define RTOL 1e-6
#define ATOL 1e-9

static nb_rng g_rng;

static double *rnd(size_t n, double scale) {
    double *x = nb_xmalloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) x[i] = (2 * nb_rng_uniform(&g_rng) - 1) * scale;
    return x;
}
static double *zeros(size_t n) { return nb_xcalloc(n ? n : 1, sizeof(double)); }

typedef double (*scalar_fn)(void *ctx);

/* Compares ana[i] with the central difference of f w.r.t. x[i] for up to max_check entries
 * (all of them when n <= max_check, else an evenly spread sample). Returns the number of
 * mismatches and prints the worst one; *worst receives the largest error/tolerance ratio. */
static int compare(const char *what, double *x, const double *ana, size_t n, scalar_fn f, void *ctx,
                   size_t max_check, double *worst) {
    size_t stride = n <= max_check ? 1 : n / max_check;
    int bad = 0;
    double wr = 0;
    size_t wi = 0;
    double wa = 0, wn = 0;
    for (size_t i = 0; i < n; i += stride) {
        double x0 = x[i];
        x[i] = x0 + EPS;
        double fp = f(ctx);
        x[i] = x0 - EPS;
        double fm = f(ctx);
        x[i] = x0;
        double num = (fp - fm) / (2 * EPS);
        double tol = RTOL * fmax(fabs(num), fabs(ana[i])) + ATOL;
        double r = fabs(num - ana[i]) / tol;
        if (r > wr) {
            wr = r;
            wi = i;
            wa = ana[i];
            wn = num;
        }
        if (!(r <= 1)) bad++; /* a NaN on either side fails */
    }
    if (bad)
        printf("# %s: %d mismatches; worst [%zu] analytic %.10g numeric %.10g\n", what, bad, wi, wa,
               wn);
    else
        printf("# %s: ok, worst |a-n|/tol = %.3g\n", what, wr);
    if (worst && wr > *worst) *worst = wr;
    return bad;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

#endif
