/* test_act.c -- the GRU's vectorised float sigmoid/tanh (model/nn_act.c) against libm. */
#include "harness.h"
#include "nn_act.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Relative error of a float result against a double reference; results whose reference is
 * below FLT_MIN (denormal range, where float itself has fewer bits) are judged absolutely. */
static double err_of(float got, double ref) {
    double d = fabs((double)got - ref);
    return fabs(ref) < FLT_MIN ? d / FLT_MIN * 1e-7 : d / fabs(ref);
}

/* A dense sweep of [-120, 120] plus a log-spaced sweep of tiny magnitudes, odd-sized so the
 * 8-lane tail path runs too; every value checked in both functions at 1e-6 relative. */
static int test_act_vs_libm(void) {
    size_t n = 0, cap = 700001;
    float *x = malloc(cap * sizeof *x), *s = malloc(cap * sizeof *s), *t = malloc(cap * sizeof *t);
    T_ASSERT(x && s && t, "out of memory");
    for (int i = 0; i <= 480000; i++) x[n++] = -120.0f + (float)i * 0.0005f;
    for (int i = 0; i < 100000; i++) { /* |x| from 1e-30 to 10, both signs */
        float v = (float)pow(10.0, -30.0 + 31.0 * i / 100000.0);
        x[n++] = v;
        x[n++] = -v;
    }
    x[n++] = 0.0f; /* an odd count: exercises the padded tail */
    memcpy(s, x, n * sizeof *x);
    memcpy(t, x, n * sizeof *x);
    nn_sigmoid_f(s, n);
    nn_tanh_f(t, n);
    double ws = 0, wt = 0;
    size_t is = 0, it = 0;
    for (size_t i = 0; i < n; i++) {
        double xd = x[i];
        double es = err_of(s[i], 1 / (1 + exp(-xd))), et = err_of(t[i], tanh(xd));
        if (es > ws) {
            ws = es;
            is = i;
        }
        if (et > wt) {
            wt = et;
            it = i;
        }
    }
    int rc = T_PASS;
    if (ws > 1e-6 || wt > 1e-6) {
        t_fail_msg(__FILE__, __LINE__, "max rel err <= 1e-6",
                   "sigmoid %.3g at x=%.9g (%.9g vs %.9g), tanh %.3g at x=%.9g (%.9g vs %.9g)", ws,
                   x[is], s[is], 1 / (1 + exp(-(double)x[is])), wt, x[it], t[it],
                   tanh((double)x[it]));
        rc = T_FAIL;
    }
    free(x);
    free(s);
    free(t);
    return rc;
}

/* Zeros, saturation, infinities, the largest floats and NaN give exactly libm's answers. */
static int test_act_special(void) {
    float in[] = {0.0f,    -0.0f,   20.0f,    -20.0f,   50.0f,     -50.0f, 88.0f, -88.0f, 200.0f,
                  -200.0f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN,    -NAN,  1e-40f, -1e-40f};
    enum { N = sizeof in / sizeof in[0] };
    float s[N], t[N];
    memcpy(s, in, sizeof in);
    memcpy(t, in, sizeof in);
    nn_sigmoid_f(s, N);
    nn_tanh_f(t, N);
    for (int i = 0; i < N; i++) {
        float x = in[i];
        if (isnan(x)) {
            T_ASSERT(isnan(s[i]) && isnan(t[i]), "NaN in gives sigmoid %g, tanh %g", s[i], t[i]);
            continue;
        }
        float ls = 1 / (1 + expf(-x)), lt = tanhf(x);
        if (fabsf(x) >= 20) { /* saturated: exactly libm's value (0 or 1, +-1) */
            T_ASSERT(t[i] == lt, "tanh(%g) = %.9g, libm %.9g", x, t[i], lt);
            if (x > 0) T_ASSERT(s[i] == 1.0f, "sigmoid(%g) = %.9g, libm 1", x, s[i]);
        }
        if (fabsf(x) > 104) T_ASSERT(s[i] == ls, "sigmoid(%g) = %.9g, libm %.9g", x, s[i], ls);
        if (x == 0) {
            T_ASSERT(s[i] == 0.5f, "sigmoid(%g) = %.9g", x, s[i]);
            T_ASSERT(t[i] == 0 && signbit(t[i]) == signbit(x), "tanh(%g) = %g keeps the sign", x,
                     t[i]);
        }
        if (fabsf(x) < 1e-30f && x != 0) { /* denormal input: tanh(x) = x, sigmoid 0.5 */
            T_ASSERT(t[i] == x, "tanh(%g) = %g", x, t[i]);
            T_ASSERT(s[i] == 0.5f, "sigmoid(%g) = %.9g", x, s[i]);
        }
    }
    /* the deep negative tail of the sigmoid is exp(x): denormal results, not a flush to 0 */
    float d[] = {-90.0f, -100.0f};
    nn_sigmoid_f(d, 2);
    T_ASSERT(d[0] > 0 && fabs(d[0] - exp(-90.0)) < 1e-44, "sigmoid(-90) = %g", d[0]);
    T_ASSERT(d[1] > 0 && fabs(d[1] - exp(-100.0)) < 1e-44, "sigmoid(-100) = %g", d[1]);
    return T_PASS;
}

int main(void) {
    T_RUN(test_act_vs_libm);
    T_RUN(test_act_special);
    return t_summary();
}
