/* nn_optim.c -- BCEWithLogits (pos_weight), Adam, gradient norm.
 *
 * The float build evaluates the loss with its own exp/log1p on 8-lane vectors (GCC vector
 * extensions): with the full 49,688-product head the loss touches 1.6M logits per step and
 * libm's scalar expf + log1pf cost more than the output layer's gemm. Accuracy is a few ulp
 * (checked against libm in tests/test_nn.c). The double build (gradient checks) uses libm.
 * The loss form (see bce_core) is a sum of non-negative terms: no cancellation.
 * Adam has an AVX2 path chosen at run time; it performs the same IEEE operations in the same
 * order as the scalar loop (the build never contracts a*b+c into an FMA: -std=c11 implies
 * -ffp-contract=off), so both give identical bits.
 */
#include "nb_simd.h"
#include "nn.h"

#include <math.h>
#include <string.h>
#ifndef NN_DOUBLE
#include <immintrin.h>
#endif

#ifdef NN_DOUBLE
/* ---- double build: libm ------------------------------------------------------------- */

/* One element, lw = 1 + (pw-1) y, sp = log1p(exp(-|x|)):
 *   l = pw y (sp + max(-x, 0)) + (1-y) (sp + max(x, 0))   [= pw y softplus(-x) + (1-y) softplus(x)]
 *   dl/dx = sigmoid(x) lw - pw y.
 * Equal to PyTorch's (1-y) x + lw (sp + max(-x, 0)) but a sum of non-negative terms, so a tiny
 * loss (x << 0 with y = 0) is not lost to cancellation against |x|. */
static double bce_core(nn_real *grad, int acc, const nn_real *logits, const nn_real *targets,
                       size_t n, float pos_weight) {
    double s = 0, pw = pos_weight, inv = 1.0 / (double)n;
    for (size_t i = 0; i < n; i++) {
        double x = logits[i], y = targets[i], ax = fabs(x), e = exp(-ax);
        double lw = 1 + (pw - 1) * y, sp = log1p(e);
        s += pw * y * (sp + (x < 0 ? ax : 0)) + (1 - y) * (sp + (x > 0 ? ax : 0));
        if (grad) {
            double g = ((x >= 0 ? 1 : e) / (1 + e) * lw - pw * y) * inv;
            grad[i] = acc ? grad[i] + g : g;
        }
    }
    return n ? s / (double)n : 0;
}

#else
/* ---- float build: 8-lane exp / log1p ------------------------------------------------ */


/* All lanes x. */
static inline nb_f32x8 vsplat(float x) { return (nb_f32x8){x, x, x, x, x, x, x, x}; }
/* Lane-wise mask ? a : b; mask lanes are -1 or 0 (a vector comparison's result). */
static inline nb_f32x8 vsel(nb_i32x8 mask, nb_f32x8 a, nb_f32x8 b) {
    nb_i32x8 ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    nb_i32x8 r = (ia & mask) | (ib & ~mask);
    nb_f32x8 f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp(-a) for a >= 0: 2^k * P(r), r = -a - k ln2 in [-ln2/2, ln2/2] (Cody-Waite split ln2),
 * P the degree-6 Taylor polynomial (relative error < 2e-7 on that interval). Lanes with
 * a > 87 (result below the smallest normal float) give 0. */
static inline nb_f32x8 vexp_neg(nb_f32x8 a) {
    nb_i32x8 small = a > vsplat(87.0f);
    a = vsel(small, vsplat(87.0f), a);            /* keeps the exponent arithmetic in range */
    const nb_f32x8 shifter = vsplat(12582912.0f); /* 1.5 * 2^23: adding it rounds to integer */
    nb_f32x8 t = vsplat(-1.44269504088896341f) * a;
    nb_f32x8 kf = (t + shifter) - shifter;
    nb_f32x8 r = (vsplat(-1.0f) * a - kf * vsplat(0.693145751953125f)) -
        kf * vsplat(1.42860682030941723e-6f);
    nb_f32x8 p = vsplat(1.0f / 720);
    p = p * r + vsplat(1.0f / 120);
    p = p * r + vsplat(1.0f / 24);
    p = p * r + vsplat(1.0f / 6);
    p = p * r + vsplat(0.5f);
    p = p * r + vsplat(1.0f);
    p = p * r + vsplat(1.0f);
    nb_i32x8 k = __builtin_convertvector(kf, nb_i32x8);
    nb_i32x8 k2 = (k + 127) << 23; /* k >= -126: a normal power of two */
    nb_f32x8 scale;
    memcpy(&scale, &k2, sizeof scale);
    return vsel(small, vsplat(0), p * scale);
}

/* log1p(e) for e in [0, 1]: u = 1 + e = 2^j m with m in [sqrt(1/2), sqrt(2)), log(m) =
 * 2 atanh(f / (2 + f)), f = m - 1 (odd series to s^9, |s| < 0.172), plus the rounding error
 * of u = 1 + e fed back as (e - (u - 1)) / u so tiny e keep full precision. */
static inline nb_f32x8 vlog1p01(nb_f32x8 e) {
    nb_f32x8 u = vsplat(1.0f) + e;
    nb_f32x8 c = (e - (u - vsplat(1.0f))) / u;
    nb_i32x8 big = u > vsplat(1.41421356f);
    nb_f32x8 m = vsel(big, u * vsplat(0.5f), u);
    nb_f32x8 f = m - vsplat(1.0f);
    nb_f32x8 s = f / (vsplat(2.0f) + f);
    nb_f32x8 s2 = s * s;
    nb_f32x8 q = vsplat(1.0f / 9);
    q = q * s2 + vsplat(1.0f / 7);
    q = q * s2 + vsplat(1.0f / 5);
    q = q * s2 + vsplat(1.0f / 3);
    q = q * s2 + vsplat(1.0f);
    nb_f32x8 lg = vsplat(2.0f) * s * q;
    return vsel(big, lg + vsplat(0.693147180559945309f), lg) + c;
}

/* Loss terms and gradient of 8 logits; `valid` masks the lanes past the end. */
static inline void bce8(nb_f32x8 x, nb_f32x8 y, nb_f32x8 pw, nb_f32x8 inv, nb_i32x8 valid,
                        nb_f32x8 *loss, nb_f32x8 *grad) {
    nb_f32x8 zero = vsplat(0), one = vsplat(1.0f);
    nb_i32x8 neg = x < zero;
    nb_f32x8 ax = vsel(neg, -x, x);
    nb_f32x8 e = vexp_neg(ax);
    nb_f32x8 lw = one + (pw - one) * y;
    nb_f32x8 sp = vlog1p01(e);
    *loss = vsel(
        valid, pw * y * (sp + vsel(neg, ax, zero)) + (one - y) * (sp + vsel(neg, zero, ax)), zero);
    nb_f32x8 sig = vsel(neg, e, one) / (one + e);
    *grad = (sig * lw - pw * y) * inv;
}

/* Shared by the three entry points so the loss and the gradient are the same bits whichever
 * is called. grad == NULL: loss only; acc: grad += instead of =. Returns the mean loss; the
 * per-lane partial sums are kept in double and reduced in a fixed order. */
__attribute__((target_clones("avx2", "default"))) static double bce_core(nn_real *grad, int acc,
                                                                         const nn_real *logits,
                                                                         const nn_real *targets,
                                                                         size_t n,
                                                                         float pos_weight) {
    nb_f32x8 pw = vsplat(pos_weight), inv = vsplat((float)(1.0 / (double)n));
    nb_i32x8 all = {-1, -1, -1, -1, -1, -1, -1, -1};
    nb_f64x8 sum = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        nb_f32x8 x, y, l, g;
        memcpy(&x, logits + i, sizeof x);
        memcpy(&y, targets + i, sizeof y);
        bce8(x, y, pw, inv, all, &l, &g);
        sum += __builtin_convertvector(l, nb_f64x8);
        if (grad) {
            if (acc) {
                nb_f32x8 old;
                memcpy(&old, grad + i, sizeof old);
                g += old;
            }
            memcpy(grad + i, &g, sizeof g);
        }
    }
    if (i < n) { /* the tail, padded with zeros and masked */
        size_t r = n - i;
        float xb[8] = {0}, yb[8] = {0}, gb[8] = {0};
        nb_i32x8 valid = {0};
        for (size_t k = 0; k < r; k++) valid[k] = -1;
        memcpy(xb, logits + i, r * sizeof(float));
        memcpy(yb, targets + i, r * sizeof(float));
        nb_f32x8 x, y, l, g;
        memcpy(&x, xb, sizeof x);
        memcpy(&y, yb, sizeof y);
        bce8(x, y, pw, inv, valid, &l, &g);
        sum += __builtin_convertvector(l, nb_f64x8);
        if (grad) {
            memcpy(gb, &g, sizeof g);
            for (size_t k = 0; k < r; k++) grad[i + k] = acc ? grad[i + k] + gb[k] : gb[k];
        }
    }
    double s = ((sum[0] + sum[4]) + (sum[2] + sum[6])) + ((sum[1] + sum[5]) + (sum[3] + sum[7]));
    return n ? s / (double)n : 0;
}
#endif

/* Returns the mean loss over n (0 for n == 0); finite for any logit. */
double nn_bce_forward(const nn_real *logits, const nn_real *targets, size_t n, float pos_weight) {
    return bce_core(NULL, 0, logits, targets, n, pos_weight);
}

/* dlogits += (sigmoid(x) * lw - pw*y) / n, with the sigmoid computed without overflow. */
void nn_bce_backward(nn_real *dlogits, const nn_real *logits, const nn_real *targets, size_t n,
                     float pos_weight) {
    if (n) bce_core(dlogits, 1, logits, targets, n, pos_weight);
}

/* Both at once, one pass over the logits (the training hot path with a 49,688-wide head):
 * dlogits = (not +=) the gradient, returns the mean loss. */
double nn_bce_forward_backward(nn_real *dlogits, const nn_real *logits, const nn_real *targets,
                               size_t n, float pos_weight) {
    return bce_core(dlogits, 0, logits, targets, n, pos_weight);
}

#ifdef NN_DOUBLE
#define NN_SQRT sqrt
#else
#define NN_SQRT sqrtf
#endif

/* ---- Adam --------------------------------------------------------------------------- */

typedef struct {
    nn_real gscale, step, sbc2, B1, B2, C1, C2, E;
} adam_k;

/* The reference loop: torch's operation order. */
static void adam_scalar(nn_real *restrict p, const nn_real *restrict g, nn_real *restrict m,
                        nn_real *restrict v, size_t n, const adam_k *k) {
    for (size_t i = 0; i < n; i++) {
        nn_real gi = g[i] * k->gscale;
        nn_real mi = k->B1 * m[i] + k->C1 * gi;
        nn_real vi = k->B2 * v[i] + k->C2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= k->step * (mi / (NN_SQRT(vi) / k->sbc2 + k->E));
    }
}

#ifndef NN_DOUBLE
/* The same operations, 8 lanes at a time (sqrt/div are correctly rounded in both). Returns
 * how many leading elements it did (a multiple of 8). */
__attribute__((target("avx2"))) static size_t adam_avx2(float *p, const float *g, float *m,
                                                        float *v, size_t n, const adam_k *k) {
    __m256 gs = _mm256_set1_ps(k->gscale), st = _mm256_set1_ps(k->step);
    __m256 sb = _mm256_set1_ps(k->sbc2), b1 = _mm256_set1_ps(k->B1), b2 = _mm256_set1_ps(k->B2);
    __m256 c1 = _mm256_set1_ps(k->C1), c2 = _mm256_set1_ps(k->C2), e = _mm256_set1_ps(k->E);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), gs);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(c1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                  _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sb), e);
        __m256 pi =
            _mm256_sub_ps(_mm256_loadu_ps(p + i), _mm256_mul_ps(st, _mm256_div_ps(mi, den)));
        _mm256_storeu_ps(p + i, pi);
    }
    return i;
}
#endif

/* torch.optim.Adam (no weight decay, no amsgrad), step t >= 1, in the same operation order:
 * denom = sqrt(v) / sqrt(1 - b2^t) + eps; p -= (lr / (1 - b1^t)) * (m / denom).
 * g is read as gscale * g (clip_grad_norm_'s scaling folded in, the clipped gradient is never
 * written back). */
void nn_adam_update_scaled(nn_real *restrict p, const nn_real *restrict g, nn_real *restrict m,
                           nn_real *restrict v, size_t n, nn_real gscale, float lr, float b1,
                           float b2, float eps, long t) {
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    adam_k k = {gscale, (nn_real)((double)lr / bc1), (nn_real)sqrt(bc2),          b1,
                b2,     (nn_real)(1.0 - (double)b1), (nn_real)(1.0 - (double)b2), eps};
    size_t done = 0;
#ifndef NN_DOUBLE
    if (__builtin_cpu_supports("avx2")) done = adam_avx2(p, g, m, v, n, &k);
#endif
    adam_scalar(p + done, g + done, m + done, v + done, n - done, &k);
}

/* Returns sqrt(sum g^2), summed in double. */
double nn_grad_norm(const nn_real *g, size_t n) {
    /* four partial sums so the loop is not one long dependency chain (fixed grouping, so
     * the result is still deterministic) */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)g[i] * (double)g[i];
        s1 += (double)g[i + 1] * (double)g[i + 1];
        s2 += (double)g[i + 2] * (double)g[i + 2];
        s3 += (double)g[i + 3] * (double)g[i + 3];
    }
    for (; i < n; i++) s0 += (double)g[i] * (double)g[i];
    return sqrt((s0 + s1) + (s2 + s3));
}
