/* calibration.c -- see calibration.h. */
#include "calibration.h"
#include "calibrate.h"

#include "nb_err.h"

#include <math.h>
#include <string.h>

/* Empties the table. */
void tr_reliability_init(tr_reliability *r) { memset(r, 0, sizeof *r); }

/* Adds one pair; NaN probabilities land in bin 0 as 0 (callers check for NaN upstream). */
void tr_reliability_add(tr_reliability *r, double p, int label) {
    if (!(p >= 0.0)) p = 0.0;
    if (p > 1.0) p = 1.0;
    int b = (int)(p * TR_CAL_BINS);
    if (b >= TR_CAL_BINS) b = TR_CAL_BINS - 1;
    r->count[b]++;
    r->sum_pred[b] += p;
    r->sum_pos[b] += label != 0;
}

/* Returns the count-weighted mean |mean_pred - freq| over bins; 0 with no pairs. */
double tr_reliability_ece(const tr_reliability *r) {
    int64_t n = 0;
    double s = 0;
    for (int b = 0; b < TR_CAL_BINS; b++) {
        n += r->count[b];
        s += fabs(r->sum_pred[b] - r->sum_pos[b]); /* = count * |mean_pred - freq| */
    }
    return n ? s / (double)n : 0.0;
}

/* log(1 + exp(z)) without overflow. */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

/* Sum over pairs of the cross-entropy with targets t1 (label 1) / t0 (label 0). */
static double smoothed_loss(const float *x, const uint8_t *y, int64_t n, double a, double b,
                            double t1, double t0) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double z = a * x[i] + b;
        s += softplus(z) - (y[i] ? t1 : t0) * z;
    }
    return s;
}

/* Fits a, b by Newton's method on Platt's smoothed targets; see the header. */
int tr_platt_fit(const float *logit, const uint8_t *label, int64_t n, double *a, double *b,
                 int *iters, char *err, size_t errlen) {
    *a = 1.0;
    *b = 0.0;
    if (iters) *iters = 0;
    if (n <= 0) return nb_err(err, errlen, NB_EINVAL, "calibration: no validation pairs");
    int64_t npos = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(logit[i]))
            return nb_err(err, errlen, NB_EINVAL, "calibration: logit[%lld] = %g is not finite",
                          (long long)i, (double)logit[i]);
        npos += label[i] != 0;
    }
    const double t1 = (npos + 1.0) / (npos + 2.0), t0 = 1.0 / (n - npos + 2.0);
    double A = 1.0, B = 0.0;
    double f = smoothed_loss(logit, label, n, A, B, t1, t0);
    int it;
    for (it = 1; it <= 100; it++) {
        /* gradient and Hessian of the summed loss in (A, B) */
        double ga = 0, gb = 0, haa = 0, hab = 0, hbb = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = logit[i], p = tr_sigmoid(A * x + B), d = p - (label[i] ? t1 : t0);
            double w = p * (1 - p);
            ga += d * x;
            gb += d;
            haa += w * x * x;
            hab += w * x;
            hbb += w;
        }
        /* a tiny ridge keeps the step defined when every logit is equal (a is then not
         * identifiable and only b moves) or every weight has underflowed */
        double ridge = 1e-12 * (haa + hbb) + 1e-300;
        haa += ridge;
        hbb += ridge;
        double det = haa * hbb - hab * hab;
        double da, db;
        if (det > 1e-14 * haa * hbb) {
            da = -(hbb * ga - hab * gb) / det;
            db = -(haa * gb - hab * ga) / det;
        } else { /* collinear: move b alone */
            da = 0;
            db = -gb / hbb;
        }
        /* halve the step until the loss does not increase */
        double step = 1.0, fn = f;
        int moved = 0;
        for (int ls = 0; ls < 60; ls++, step *= 0.5) {
            fn = smoothed_loss(logit, label, n, A + step * da, B + step * db, t1, t0);
            if (fn <= f) {
                moved = 1;
                break;
            }
        }
        if (!moved) break; /* at the optimum to rounding */
        A += step * da;
        B += step * db;
        double change = fabs(step * da) + fabs(step * db);
        f = fn;
        if (change < 1e-10 * (1.0 + fabs(A) + fabs(B))) break;
    }
    *a = A;
    *b = B;
    if (iters) *iters = it > 100 ? 100 : it;
    return NB_OK;
}
