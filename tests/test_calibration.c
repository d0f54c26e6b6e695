/* test_calibration.c -- reliability table, ECE and the Platt fit (train/calibration.h). */
#include "calibration.h"
#include "harness.h"
#include "nb_err.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- moved here from infer/calibrate.c: only this test uses it ---- */

/* Returns log(p / (1 - p)) with p clamped to [1e-7, 1 - 1e-7]. */
static double tr_logit(double p) {
    if (!(p >= 1e-7)) p = 1e-7;
    if (p > 1 - 1e-7) p = 1 - 1e-7;
    return log(p / (1 - p));
}

/* ---- moved here from train/calibration.c: only this test uses them ---- */

/* One bin of a reliability table. */
typedef struct {
    int64_t count;
    double mean_pred; /* 0 when count == 0 */
    double freq;      /* observed share of label 1; 0 when count == 0 */
} tr_rel_bin;

/* Adds n (logit, label) pairs as probabilities sigmoid(a * logit + b). */
static void tr_reliability_add_logits(tr_reliability *r, const float *logit, const uint8_t *label,
                                      int64_t n, double a, double b) {
    for (int64_t i = 0; i < n; i++) tr_reliability_add(r, tr_sigmoid(a * logit[i] + b), label[i]);
}

/* Returns bin b's count, mean prediction and observed frequency (zeros when empty). */
static tr_rel_bin tr_reliability_bin(const tr_reliability *r, int b) {
    tr_rel_bin o = {0, 0, 0};
    if (b < 0 || b >= TR_CAL_BINS || r->count[b] == 0) return o;
    o.count = r->count[b];
    o.mean_pred = r->sum_pred[b] / (double)r->count[b];
    o.freq = r->sum_pos[b] / (double)r->count[b];
    return o;
}

/* log(1 + exp(z)) without overflow. */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* Returns the mean log loss of sigmoid(a x + b) against 0/1 labels; 0 when n == 0. */
static double tr_log_loss(const float *logit, const uint8_t *label, int64_t n, double a, double b) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double z = a * logit[i] + b;
        s += softplus(z) - (label[i] ? z : 0.0);
    }
    return n ? s / (double)n : 0.0;
}


/* Bins by hand: 0.05 -> bin 0, 0.1 -> bin 1, 0.95 and 1.0 -> bin 9. */
static int test_reliability_by_hand(void) {
    tr_reliability r;
    tr_reliability_init(&r);
    tr_reliability_add(&r, 0.05, 0);
    tr_reliability_add(&r, 0.10, 1);
    tr_reliability_add(&r, 0.95, 1);
    tr_reliability_add(&r, 1.00, 0);
    T_ASSERT(r.count[0] == 1 && r.count[1] == 1 && r.count[9] == 2, "bins %lld %lld %lld",
             (long long)r.count[0], (long long)r.count[1], (long long)r.count[9]);
    tr_rel_bin b9 = tr_reliability_bin(&r, 9);
    T_ASSERT(fabs(b9.mean_pred - 0.975) < 1e-12 && fabs(b9.freq - 0.5) < 1e-12, "bin 9");
    tr_rel_bin b5 = tr_reliability_bin(&r, 5);
    T_ASSERT(b5.count == 0 && b5.mean_pred == 0 && b5.freq == 0, "empty bin");
    /* ECE = (1*0.05 + 1*0.9 + 2*0.475) / 4 */
    double want = (0.05 + 0.9 + 2 * 0.475) / 4;
    T_ASSERT(fabs(tr_reliability_ece(&r) - want) < 1e-12, "ECE %.17g want %.17g",
             tr_reliability_ece(&r), want);
    tr_reliability_init(&r);
    T_ASSERT(tr_reliability_ece(&r) == 0, "no pairs -> 0");
    T_ASSERT(fabs(tr_sigmoid(-800)) < 1e-300 && tr_sigmoid(800) == 1.0, "sigmoid saturates");
    T_ASSERT(fabs(tr_logit(tr_sigmoid(1.5)) - 1.5) < 1e-9, "logit inverts sigmoid");
    return T_PASS;
}

/* Labels drawn from sigmoid(2x - 1) with x ~ N(0, 1.5^2): the fit recovers a = 2, b = -1 and
 * the calibrated ECE is far below the raw one. */
static int test_platt_recovers_known_answer(void) {
    char err[NB_ERRLEN];
    enum { N = 200000 };
    float *x = malloc(N * sizeof *x);
    uint8_t *y = malloc(N);
    nb_rng r;
    nb_rng_seed(&r, 31);
    for (int i = 0; i < N; i++) {
        x[i] = (float)(1.5 * nb_rng_normal(&r));
        y[i] = nb_rng_uniform(&r) < tr_sigmoid(2.0 * x[i] - 1.0);
    }
    double a, b;
    int it;
    T_ASSERT(tr_platt_fit(x, y, N, &a, &b, &it, err, sizeof err) == NB_OK, "%s", err);
    printf("# platt: a %.4f b %.4f in %d iterations\n", a, b, it);
    T_ASSERT(fabs(a - 2) < 0.05 && fabs(b + 1) < 0.05, "a %.4f b %.4f", a, b);
    T_ASSERT(it <= 15, "Newton took %d iterations", it);
    double l_raw = tr_log_loss(x, y, N, 1, 0), l_fit = tr_log_loss(x, y, N, a, b);
    double l_true = tr_log_loss(x, y, N, 2, -1);
    T_ASSERT(l_fit <= l_true + 1e-9 && l_fit < l_raw, "loss fit %.6f true %.6f raw %.6f", l_fit,
             l_true, l_raw);
    tr_reliability raw, cal;
    tr_reliability_init(&raw);
    tr_reliability_init(&cal);
    tr_reliability_add_logits(&raw, x, y, N, 1, 0);
    tr_reliability_add_logits(&cal, x, y, N, a, b);
    double e0 = tr_reliability_ece(&raw), e1 = tr_reliability_ece(&cal);
    printf("# ECE raw %.4f calibrated %.4f\n", e0, e1);
    T_ASSERT(e1 < 0.01 && e1 < e0 / 4, "ECE raw %.4f calibrated %.4f", e0, e1);
    free(x);
    free(y);
    return T_PASS;
}

/* Degenerate inputs stay finite: one class only, separable data, all logits equal, n = 0,
 * a NaN logit. */
static int test_degenerate(void) {
    char err[NB_ERRLEN];
    float x[100];
    uint8_t y[100];
    double a, b;
    for (int i = 0; i < 100; i++) x[i] = (float)(i - 50) / 10, y[i] = 1;
    T_ASSERT(tr_platt_fit(x, y, 100, &a, &b, NULL, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(isfinite(a) && isfinite(b), "all positive: a %g b %g", a, b);
    for (int i = 0; i < 100; i++)
        T_ASSERT(tr_sigmoid(a * x[i] + b) > 0.5, "all positive -> p > 0.5");
    for (int i = 0; i < 100; i++) y[i] = x[i] > 0;
    T_ASSERT(tr_platt_fit(x, y, 100, &a, &b, NULL, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(isfinite(a) && isfinite(b) && a > 0, "separable: a %g b %g", a, b);
    for (int i = 0; i < 100; i++) x[i] = 0.3f, y[i] = i < 25;
    T_ASSERT(tr_platt_fit(x, y, 100, &a, &b, NULL, err, sizeof err) == NB_OK, "%s", err);
    double p = tr_sigmoid(a * 0.3 + b), want = (25 + 1.0) / (25 + 2) * 0.25 + 1.0 / (75 + 2) * 0.75;
    T_ASSERT(fabs(p - want) < 1e-6, "constant logit: p %.6f want the smoothed base rate %.6f", p,
             want);
    T_ASSERT(tr_platt_fit(x, y, 0, &a, &b, NULL, err, sizeof err) == NB_EINVAL && a == 1 && b == 0,
             "n = 0");
    x[7] = NAN;
    T_ASSERT(tr_platt_fit(x, y, 100, &a, &b, NULL, err, sizeof err) == NB_EINVAL, "NaN refused");
    T_ASSERT(strstr(err, "logit[7]") != NULL, "message names the entry: %s", err);
    return T_PASS;
}

int main(void) {
    T_RUN(test_reliability_by_hand);
    T_RUN(test_platt_recovers_known_answer);
    T_RUN(test_degenerate);
    return t_summary();
}
