/* nn_headq.c -- rigorous bounds on the output layer's logits from a reference input, so
 * that a caller can skip computing logits that provably cannot matter.
 *
 * Error of the exact kernel (u = 2^-24, gamma_n = n u / (1 - n u), standard floating-point
 * error analysis, Higham ch. 3; D = the head width): nn_head_forward computes
 * x = fl(fl(sum_i h_i w_i) + b) (+ v, one more float addition). Whatever the summation
 * order, a dot product of D terms is within gamma_D * sum |h_i w_i| of the real one, and
 * each further addition adds one rounding:
 *   |x - (h.w + b + v)| <= gamma_{D+2} (sum |h_i w_i| + |b| + |v|),
 * with sum |h_i w_i| <= ||h||_2 ||w||_2. Gradual underflow adds at most (D + 3) 2^-150
 * absolute per computation: 1e-30 covers it. ||w_p|| is computed in double and rounded up
 * to float. A double build (NN_DOUBLE) has a more exact kernel, so the float bound holds a
 * fortiori. (An int8 copy of the rows was a second stage once; it cost as much memory
 * latency as the exact float rows and was removed.)
 */
#include "nn.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"

/* Returns x rounded up to a float (the smallest float >= x). */
static float up(double x) {
    float f = (float)x;
    if ((double)f < x) f = nextafterf(f, INFINITY);
    return f;
}

void nn_headq_free(nn_headq *hq) {
    if (!hq) return;
    free(hq->wnorm);
    free(hq->ref);
    free(hq->ref_h);
    memset(hq, 0, sizeof *hq);
}

/* See nn.h. */
int nn_headq_build(nn_headq *hq, const nn_real *w, int P, int D, char *err, size_t errlen) {
    memset(hq, 0, sizeof *hq);
    if (P < 1 || D < 1)
        return nb_err(err, errlen, NB_EINVAL, "nn_headq_build: bad dimensions %d x %d", P, D);
    hq->P = P;
    hq->D = D;
    hq->wnorm = nb_xmalloc((size_t)P * sizeof(float));
    for (int p = 0; p < P; p++) {
        const nn_real *wp = w + (size_t)p * D;
        double n2 = 0;
        for (int i = 0; i < D; i++) {
            double a = fabs((double)wp[i]);
            if (!isfinite(a)) {
                nn_headq_free(hq);
                return nb_err(err, errlen, NB_EINVAL,
                              "nn_headq_build: out.w row %d element %d is not finite", p, i);
            }
            n2 += a * a;
        }
        /* the 1 + 1e-12 covers the double rounding of the sums of squares and sqrt */
        hq->wnorm[p] = up(sqrt(n2) * (1 + 1e-12));
    }
    return NB_OK;
}

/* ---- the reference stage ----------------------------------------------------------------
 * With a reference input h0 and g_p = w_p . h0 + b_p precomputed, the logit for h is
 * g_p + (h - h0) . w_p (+ v), and |(h - h0) . w_p| <= ||h - h0||_2 ||w_p||_2. Reading 8
 * bytes per product from a 400 KB table that stays in cache, this is far cheaper than the
 * exact rows (a request's ~3,000 scattered 1 KB rows cost a memory round trip each) and
 * is tight whenever the user's h is close to h0. Rounding: g_p is computed in double and
 * stored as a float; gerr_p >= |stored g_p - (w_p . h0 + b_p)| covers the double and the
 * float rounding. The exact kernel's error is <= gamma_{D+2} (||h|| ||w|| + |b| + |v|) as
 * above; the radius takes twice that, plus the Cauchy-Schwarz term, plus the largest
 * gerr_p + 2 gamma |b_p| over all rows (one constant, ref_c). */

/* See nn.h. */
int nn_headq_set_ref(nn_headq *hq, const float *h0, const nn_real *w, const nn_real *b, char *err,
                     size_t errlen) {
    int P = hq->P, D = hq->D;
    for (int i = 0; i < D; i++)
        if (!isfinite(h0[i]))
            return nb_err(err, errlen, NB_EINVAL, "nn_headq_set_ref: h0[%d] is not finite", i);
    free(hq->ref);
    free(hq->ref_h);
    hq->ref = nb_xmalloc((size_t)P * 2 * sizeof(float));
    double cmax = 0;
    hq->ref_h = nb_xmalloc((size_t)D * sizeof(float));
    memcpy(hq->ref_h, h0, (size_t)D * sizeof(float));
    double u = ldexp(1.0, -24), n = D + 3, g2 = 2 * (n * u / (1 - n * u));
    for (int p = 0; p < P; p++) {
        const nn_real *wp = w + (size_t)p * D;
        double bias = b ? (double)b[p] : 0, g = bias, mag = fabs(bias);
        for (int i = 0; i < D; i++) {
            g += (double)wp[i] * h0[i];
            mag += fabs((double)wp[i] * h0[i]);
        }
        float gf = (float)g;
        /* double summation error <= gamma_{D+1}(double) * mag < 1e-13 mag; then the float */
        double gerr = fabs((double)gf - g) + 1e-13 * mag + 1e-30;
        if (!isfinite(g)) {
            free(hq->ref);
            free(hq->ref_h);
            hq->ref = hq->ref_h = NULL;
            return nb_err(err, errlen, NB_EINVAL, "nn_headq_set_ref: row %d overflows", p);
        }
        hq->ref[2 * (size_t)p] = gf;
        hq->ref[2 * (size_t)p + 1] = hq->wnorm[p];
        double c = gerr + g2 * fabs(bias);
        if (c > cmax) cmax = c;
    }
    /* one constant for every row: 8 bytes a row keep the table (400 KB at 49,688 products)
     * in L2; the largest c_p is ~1e-6, which costs nothing in pruning */
    hq->ref_c = up(cmax * (1 + 1e-6));
    return NB_OK;
}

/* nn_headq_bounds_ref's loop over the rows, the hot loop of a request (~3,000 rows), in
 * float so that it vectorises. The double bound of the argument above is
 *   r = k1 ||w_p|| + c + g |v|,   k1 = ||h - h0|| + g ||h||   (rounded up once),
 * c = the largest c_p = gerr_p + g |b_p|,
 * around a = g_p + v. Here a, r and a +- r are each a few float operations, each off by at
 * most u = 2^-24 relative: r is taken 1e-4 wider (>> 4u) plus 1e-6 |a| (>> the 2u |a| of
 * computing a and a - r) plus 1e-30 (gradual underflow). Returns 1, or 0 when a value
 * is not finite. */
__attribute__((target_clones("avx2", "default"))) static int ref_loop(
    float *lo, float *hi, const float *ref, const int32_t *rows, const float *extra,
    const uint8_t *has_extra, int S, float k1, float c, float g) {
    float big = 0;
    for (int s = 0; s < S; s++) {
        const float *rf = ref + 2 * (size_t)(rows ? rows[s] : s);
        float v = extra ? extra[s] : 0.0f;
        if (has_extra && !has_extra[s]) v = 0.0f;
        float a = rf[0] + v;
        float r = k1 * rf[1] + c + g * fabsf(v);
        r = r * 1.0001f + 1e-6f * fabsf(a) + 1e-30f;
        lo[s] = a - r;
        hi[s] = a + r;
        big += fabsf(a) + r; /* NaN or inf anywhere shows here */
    }
    return isfinite(big);
}

/* See nn.h; the argument is just above. */
int nn_headq_bounds_ref(float *lo, float *hi, const float *h, const nn_headq *hq,
                        const int32_t *rows, const float *extra, const uint8_t *has_extra, int S) {
    int D = hq->D;
    if (!hq->ref) return -1;
    double n2 = 0, d2 = 0;
    for (int i = 0; i < D; i++) {
        double x = h[i], dx = x - (double)hq->ref_h[i]; /* exact in double */
        n2 += x * x;
        d2 += dx * dx;
    }
    if (!isfinite(n2) || !isfinite(d2)) return -1;
    n2 = sqrt(n2) * (1 + 1e-6);
    d2 = sqrt(d2) * (1 + 1e-6);
    double u = ldexp(1.0, -24), n = D + 3, g = 2 * (n * u / (1 - n * u));
    float k1 = up(d2 + g * n2), gf = up(g);
    return ref_loop(lo, hi, hq->ref, rows, extra, has_extra, S, k1, hq->ref_c, gf) ? 0 : -1;
}
