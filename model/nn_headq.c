/* nn_headq.c -- an int8 copy of the output layer and rigorous bounds on the logits it
 * approximates, so that a caller can skip computing logits that provably cannot matter.
 *
 * The approximate logit of row p is a_p = s_p * (h . q_p) + b_p (+ v), read from 256 bytes
 * instead of 1 KB. Why the bound is rigorous (u = 2^-24, gamma_n = n u / (1 - n u), standard
 * floating-point error analysis, Higham ch. 3; D = the head width):
 *
 *  - The exact kernel (nn_head_forward) computes x = fl(fl(sum_i h_i w_i) + b) (+ v, one more
 *    float addition). Whatever the summation order, a dot product of D terms is within
 *    gamma_D * sum |h_i w_i| of the real one, and each further addition adds one rounding:
 *    |x - (h.w + b + v)| <= gamma_{D+2} (sum |h_i w_i| + |b| + |v|), with
 *    sum |h_i w_i| <= ||h||_2 ||w||_2.
 *  - The approximation (this file) computes a = fl(fl(s * fl(sum_i h_i q_i)) + b) (+ v): the
 *    int8 -> float conversion is exact, so with z = s q (a real vector),
 *    |a - (h.z + b + v)| <= gamma_{D+3} (sum |h_i z_i| + |b| + |v|), and
 *    sum |h_i z_i| <= ||h||_2 ||z||_2 <= ||h||_2 (||w||_2 + e2).
 *  - The quantisation: |h.w - h.z| = |h.(w - z)| <= min(||h||_2 e2, ||h||_1 emax)
 *    (Cauchy-Schwarz, and Hoelder with the largest element error).
 *  - Gradual underflow adds at most (D + 3) 2^-150 absolute per computation: 1e-30 covers
 *    both.
 * So |x - a| <= Q + gamma_{D+3} (||h||_2 (2 ||w||_2 + e2) + 2 |b| + 2 |v|) + 2e-30 with
 * Q = that min. The radius is evaluated in double with gamma doubled: the slack,
 * gamma_{D+3} (...) >= 1.5e-5 |a|, dwarfs the double roundings of the norms, of the radius
 * and of a +- r (each ~1e-16 relative); lo and hi are then rounded outwards to float.
 * The table's e2, emax and ||w|| are computed in double and rounded up to float.
 * A double build (NN_DOUBLE) has a more exact kernel, so the float bound holds a fortiori.
 */
#include "nn.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nb_err.h"

/* Returns x rounded up to a float (the smallest float >= x). */
static float up(double x) {
    float f = (float)x;
    if ((double)f < x) f = nextafterf(f, INFINITY);
    return f;
}

/* Returns x rounded down to a float (the largest float <= x). */
static float down(double x) {
    float f = (float)x;
    if ((double)f > x) f = nextafterf(f, -INFINITY);
    return f;
}

/* The int8 table, on 2 MB pages where the kernel allows (transparent huge pages in madvise
 * mode): a request reads ~3,000 rows 256 bytes apart from each other by ~4 KB, so with
 * 4 KB pages nearly every row costs a TLB miss and a page walk. Aborts when out of memory
 * (nb_xmalloc's rule). */
static int8_t *table_alloc(size_t n) {
    size_t huge = (size_t)2 << 20, len = (n + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, len);
    if (!p) return nb_xmalloc(n);
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE);   /* advice only: failure changes nothing */
#endif
    return p;
}

void nn_headq_free(nn_headq *hq) {
    if (!hq) return;
    free(hq->q);
    free(hq->scale);
    free(hq->err2);
    free(hq->errmax);
    free(hq->wnorm);
    free(hq->ref);
    free(hq->ref_h);
    memset(hq, 0, sizeof *hq);
}

/* See nn.h. */
int nn_headq_build(nn_headq *hq, const nn_real *w, int P, int D, int with_int8, char *err,
                   size_t errlen) {
    memset(hq, 0, sizeof *hq);
    if (P < 1 || D < 1)
        return nb_err(err, errlen, NB_EINVAL, "nn_headq_build: bad dimensions %d x %d", P, D);
    hq->P = P;
    hq->D = D;
    hq->wnorm = nb_xmalloc((size_t)P * sizeof(float));
    if (with_int8) {
        hq->q = table_alloc((size_t)P * D);
        hq->scale = nb_xmalloc((size_t)P * sizeof(float));
        hq->err2 = nb_xmalloc((size_t)P * sizeof(float));
        hq->errmax = nb_xmalloc((size_t)P * sizeof(float));
    }
    for (int p = 0; p < P; p++) {
        const nn_real *wp = w + (size_t)p * D;
        double mx = 0, n2 = 0;
        for (int i = 0; i < D; i++) {
            double a = fabs((double)wp[i]);
            if (!isfinite(a)) {
                nn_headq_free(hq);
                return nb_err(err, errlen, NB_EINVAL,
                              "nn_headq_build: out.w row %d element %d is not finite", p, i);
            }
            if (a > mx) mx = a;
            n2 += a * a;
        }
        /* the 1 + 1e-12 covers the double rounding of the sums of squares and sqrt */
        hq->wnorm[p] = up(sqrt(n2) * (1 + 1e-12));
        if (!with_int8) continue;
        int8_t *qp = hq->q + (size_t)p * D;
        float s = (float)(mx / 127);
        double e2 = 0, em = 0;
        for (int i = 0; i < D; i++) {
            double q = 0;
            if (s > 0) {
                q = nearbyint((double)wp[i] / s);
                if (q > 127) q = 127;
                if (q < -127) q = -127;
            }
            qp[i] = (int8_t)q;
            /* exact in double for float weights: s q has <= 31 significant bits and lies
             * within a factor 2 of w's magnitude range */
            double e = fabs((double)wp[i] - (double)s * q);
            e2 += e * e;
            if (e > em) em = e;
        }
        hq->scale[p] = s;
        hq->err2[p] = up(sqrt(e2) * (1 + 1e-12));
        hq->errmax[p] = up(em);
    }
    return NB_OK;
}

#define QROW(k) (q + (size_t)(rows ? rows[k] : (k)) * D)

/* Prefetches the rows of tile s + PF .. s + PF + 3 (scattered rows: the hardware prefetcher
 * does not see them coming). Does not change any result. */
#define HQ_PF 16
static inline void prefetch_ahead(const int8_t *q, const int32_t *rows, int s, int S, int D) {
    if (!rows || s + HQ_PF + 4 > S) return;
    for (int k = HQ_PF; k < HQ_PF + 4; k++) {
        const char *r = (const char *)QROW(s + k);
        for (int off = 0; off < D; off += 64) __builtin_prefetch(r + off, 0, 0);
    }
}

/* out[s] = h . q[r(s)] for s in 0..S-1, any CPU. */
static void dots_base(float *out, const float *h, const int8_t *q, const int32_t *rows, int S,
                      int D) {
    for (int s = 0; s < S; s++) {
        const int8_t *q0 = QROW(s);
        prefetch_ahead(q, rows, s / 4 * 4, S, D);
        float t = 0;
        for (int d = 0; d < D; d++) t += h[d] * q0[d];
        out[s] = t;
    }
}

/* The same with AVX2 + FMA, 4 rows at a time (the summation order is irrelevant to the
 * bound, and an FMA only removes roundings). */
__attribute__((target("avx2,fma")))
static void dots_avx2(float *out, const float *h, const int8_t *q, const int32_t *rows, int S,
                      int D) {
    int D0 = D / 8 * 8, s = 0;
    for (; s + 4 <= S; s += 4) {
        const int8_t *q0 = QROW(s), *q1 = QROW(s + 1), *q2 = QROW(s + 2), *q3 = QROW(s + 3);
        prefetch_ahead(q, rows, s, S, D);
        /* two accumulators per row: the FMA latency chains, not memory, bound a B = 1 dot */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int d = 0;
#define CVT(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))
        for (; d + 16 <= D0; d += 16) {
            __m256 x = _mm256_loadu_ps(h + d), y = _mm256_loadu_ps(h + d + 8);
            a0 = _mm256_fmadd_ps(x, CVT(q0 + d), a0);
            a1 = _mm256_fmadd_ps(x, CVT(q1 + d), a1);
            a2 = _mm256_fmadd_ps(x, CVT(q2 + d), a2);
            a3 = _mm256_fmadd_ps(x, CVT(q3 + d), a3);
            b0 = _mm256_fmadd_ps(y, CVT(q0 + d + 8), b0);
            b1 = _mm256_fmadd_ps(y, CVT(q1 + d + 8), b1);
            b2 = _mm256_fmadd_ps(y, CVT(q2 + d + 8), b2);
            b3 = _mm256_fmadd_ps(y, CVT(q3 + d + 8), b3);
        }
        for (; d < D0; d += 8) {
            __m256 x = _mm256_loadu_ps(h + d);
            a0 = _mm256_fmadd_ps(x, CVT(q0 + d), a0);
            a1 = _mm256_fmadd_ps(x, CVT(q1 + d), a1);
            a2 = _mm256_fmadd_ps(x, CVT(q2 + d), a2);
            a3 = _mm256_fmadd_ps(x, CVT(q3 + d), a3);
        }
        a0 = _mm256_add_ps(a0, b0);
        a1 = _mm256_add_ps(a1, b1);
        a2 = _mm256_add_ps(a2, b2);
        a3 = _mm256_add_ps(a3, b3);
        /* the four lane sums at once: [a0 a1 a2 a3] -> 4 totals */
        __m256 t01 = _mm256_hadd_ps(a0, a1), t23 = _mm256_hadd_ps(a2, a3);
        __m256 t = _mm256_hadd_ps(t01, t23);
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        float o[4];
        _mm_storeu_ps(o, r);
        for (int d = D0; d < D; d++) {
            o[0] += h[d] * q0[d];
            o[1] += h[d] * q1[d];
            o[2] += h[d] * q2[d];
            o[3] += h[d] * q3[d];
        }
        memcpy(out + s, o, sizeof o);
    }
    for (; s < S; s++) {
        const int8_t *q0 = QROW(s);
        __m256 a0 = _mm256_setzero_ps();
        for (int d = 0; d < D0; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(h + d), CVT(q0 + d), a0);
#undef CVT
        float o[8], t = 0;
        _mm256_storeu_ps(o, a0);
        for (int k = 0; k < 8; k++) t += o[k];
        for (int d = D0; d < D; d++) t += h[d] * q0[d];
        out[s] = t;
    }
}
#undef QROW

/* out[s] = h . q[r(s)]: the AVX2 routine where the CPU has it. */
static void dots(float *out, const float *h, const int8_t *q, const int32_t *rows, int S,
                 int D) {
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        dots_avx2(out, h, q, rows, S, D);
    else
        dots_base(out, h, q, rows, S, D);
}

/* See nn.h; the argument is at the top of this file. lo doubles as the dot products'
 * scratch. */
int nn_headq_bounds(float *lo, float *hi, const float *h, const nn_headq *hq,
                    const nn_real *b, const int32_t *rows, const float *extra,
                    const uint8_t *has_extra, int S) {
    int D = hq->D;
    if (!hq->q) return -1;
    double n1 = 0, n2 = 0;
    for (int i = 0; i < D; i++) {
        double a = fabs((double)h[i]);
        n1 += a;
        n2 += a * a;
    }
    if (!isfinite(n1) || !isfinite(n2)) return -1;
    n1 *= 1 + 1e-6;
    n2 = sqrt(n2) * (1 + 1e-6);
    double u = ldexp(1.0, -24), n = D + 3;
    double g = 2 * (n * u / (1 - n * u));   /* 2 gamma_{D+3}: see the top of the file */
    dots(lo, h, hq->q, rows, S, D);
    for (int s = 0; s < S; s++) {
        int r = rows ? rows[s] : s;
        float bias = b ? (float)b[r] : 0.0f;
        float v = extra && (!has_extra || has_extra[s]) ? extra[s] : 0.0f;
        /* the same float operations as the bound's a: s * dot, + b, + v */
        float a = hq->scale[r] * lo[s];
        a = a + bias;
        if (extra && (!has_extra || has_extra[s])) a = a + v;
        double e2 = hq->err2[r], em = hq->errmax[r], wn = hq->wnorm[r];
        double qerr = n2 * e2 < n1 * em ? n2 * e2 : n1 * em;
        double rad = qerr * (1 + 1e-6) +
                     g * (n2 * (2 * wn + e2) + 2 * fabs((double)bias) + 2 * fabs((double)v)) +
                     2e-30;
        if (!isfinite(a) || !isfinite(rad)) return -1;
        lo[s] = down((double)a - rad);
        hi[s] = up((double)a + rad);
    }
    return 0;
}

/* ---- the reference stage ----------------------------------------------------------------
 * With a reference input h0 and g_p = w_p . h0 + b_p precomputed, the logit for h is
 * g_p + (h - h0) . w_p (+ v), and |(h - h0) . w_p| <= ||h - h0||_2 ||w_p||_2. Reading 8
 * bytes per product from a 400 KB table that stays in cache, this is far cheaper than the
 * int8 rows (a request's ~3,000 scattered 256-byte rows cost a memory round trip each) and
 * is tight whenever the user's h is close to h0. Rounding: g_p is computed in double and
 * stored as a float; gerr_p >= |stored g_p - (w_p . h0 + b_p)| covers the double and the
 * float rounding. The exact kernel's error is <= gamma_{D+2} (||h|| ||w|| + |b| + |v|) as
 * above; the radius takes twice that, plus the Cauchy-Schwarz term, plus the largest
 * gerr_p + 2 gamma |b_p| over all rows (one constant, ref_c). */

/* See nn.h. */
int nn_headq_set_ref(nn_headq *hq, const float *h0, const nn_real *w, const nn_real *b,
                     char *err, size_t errlen) {
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
__attribute__((target_clones("avx2", "default")))
static int ref_loop(float *lo, float *hi, const float *ref, const int32_t *rows,
                    const float *extra, const uint8_t *has_extra, int S, float k1, float c,
                    float g) {
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
        big += fabsf(a) + r;   /* NaN or inf anywhere shows here */
    }
    return isfinite(big);
}

/* See nn.h; the argument is just above. */
int nn_headq_bounds_ref(float *lo, float *hi, const float *h, const nn_headq *hq,
                        const int32_t *rows, const float *extra, const uint8_t *has_extra,
                        int S) {
    int D = hq->D;
    if (!hq->ref) return -1;
    double n2 = 0, d2 = 0;
    for (int i = 0; i < D; i++) {
        double x = h[i], dx = x - (double)hq->ref_h[i];   /* exact in double */
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
