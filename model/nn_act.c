/* nn_act.c -- vectorised float sigmoid and tanh for the GRU gates (see nn_act.h).
 *
 * Both rest on one kernel: for y <= 0, exp(y) = 2^k (1 + q(r)) with r = y - k ln2 in
 * [-ln2/2, ln2/2] (Cody-Waite split ln2) and q the degree-7 Taylor polynomial of expm1
 * (truncation < 2e-8 relative to r). Returning q and 2^k separately gives expm1(y) =
 * (2^k - 1) + 2^k q without cancellation near 0, which tanh needs. 2^k is applied as two
 * normal powers of two so results down to the denormal range are right (to within rounding).
 * The build never contracts a*b+c into an FMA (-std=c11 implies -ffp-contract=off), so the
 * avx2 and default clones give identical bits.
 */
#include "nb_simd.h"
#include "nn.h"

#ifndef NN_DOUBLE
#include "nn_act.h"

#include <stdint.h>
#include <string.h>


static inline nb_f32x8 vsplat(float x) { return (nb_f32x8){x, x, x, x, x, x, x, x}; }
static inline nb_i32x8 vbits(nb_f32x8 a) {
    nb_i32x8 i;
    memcpy(&i, &a, sizeof i);
    return i;
}
static inline nb_f32x8 vfloat(nb_i32x8 i) {
    nb_f32x8 a;
    memcpy(&a, &i, sizeof a);
    return a;
}
/* Lane-wise mask ? a : b; mask lanes are -1 or 0 (a vector comparison's result). */
static inline nb_f32x8 vsel(nb_i32x8 mask, nb_f32x8 a, nb_f32x8 b) {
    return vfloat((vbits(a) & mask) | (vbits(b) & ~mask));
}

/* For y <= 0 (NaN-free): *s1 * *s2 = 2^k, and the returned q with exp(y) = 2^k (1 + q).
 * y below -104 (exp underflows past the smallest denormal) gives exp(y) = 0 via 2^-151. */
static inline nb_f32x8 vexpm1_parts(nb_f32x8 y, nb_f32x8 *s1, nb_f32x8 *s2) {
    y = vsel(y < vsplat(-104.0f), vsplat(-104.0f), y);
    const nb_f32x8 shifter = vsplat(12582912.0f); /* 1.5 * 2^23: adding it rounds to integer */
    nb_f32x8 kf = (y * vsplat(1.44269504088896341f) + shifter) - shifter;
    nb_f32x8 r = (y - kf * vsplat(0.693145751953125f)) - kf * vsplat(1.42860682030941723e-6f);
    nb_f32x8 p = vsplat(1.0f / 5040);
    p = p * r + vsplat(1.0f / 720);
    p = p * r + vsplat(1.0f / 120);
    p = p * r + vsplat(1.0f / 24);
    p = p * r + vsplat(1.0f / 6);
    p = p * r + vsplat(0.5f);
    p = p * r + vsplat(1.0f);
    nb_i32x8 k = __builtin_convertvector(kf, nb_i32x8); /* in [-150, 0] */
    nb_i32x8 k1 = k >> 1, k2 = k - k1;                  /* each >= -75: normal powers of two */
    *s1 = vfloat((k1 + 127) << 23);
    *s2 = vfloat((k2 + 127) << 23);
    return p * r;
}

/* exp(y) for y <= 0, NaN-free lanes. */
static inline nb_f32x8 vexp_nonpos(nb_f32x8 y) {
    nb_f32x8 s1, s2;
    nb_f32x8 q = vexpm1_parts(y, &s1, &s2);
    return ((vsplat(1.0f) + q) * s1) * s2;
}

/* sigmoid via e = exp(-|x|): x >= 0 -> 1 / (1 + e), x < 0 -> e / (1 + e). */
static inline nb_f32x8 vsigmoid8(nb_f32x8 x) {
    nb_i32x8 nan = x != x;
    nb_f32x8 xs = vsel(nan, vsplat(0), x);
    nb_i32x8 neg = xs < vsplat(0);
    nb_f32x8 ax = vfloat(vbits(xs) & 0x7fffffff);
    nb_f32x8 e = vexp_nonpos(-ax);
    nb_f32x8 s = vsel(neg, e, vsplat(1.0f)) / (vsplat(1.0f) + e);
    return vsel(nan, x, s);
}

/* tanh(|x|) = -m / (2 + m), m = expm1(-2|x|) in (-1, 0], with the sign of x put back. */
static inline nb_f32x8 vtanh8(nb_f32x8 x) {
    nb_i32x8 nan = x != x;
    nb_f32x8 xs = vsel(nan, vsplat(0), x);
    nb_i32x8 sign = vbits(xs) & (int32_t)0x80000000;
    nb_f32x8 ax = vfloat(vbits(xs) & 0x7fffffff);
    nb_f32x8 s1, s2;
    nb_f32x8 q = vexpm1_parts(vsplat(-2.0f) * ax, &s1, &s2);
    nb_f32x8 m = (s1 * s2 - vsplat(1.0f)) + (q * s1) * s2;
    nb_f32x8 t = -m / (vsplat(2.0f) + m);
    nb_f32x8 res = vfloat((vbits(t) & 0x7fffffff) | sign);
    return vsel(nan, x, res);
}

#define ROW_LOOP(fn)                               \
    size_t i = 0;                                  \
    for (; i + 8 <= n; i += 8) {                   \
        nb_f32x8 v;                                \
        memcpy(&v, x + i, sizeof v);               \
        v = fn(v);                                 \
        memcpy(x + i, &v, sizeof v);               \
    }                                              \
    if (i < n) { /* the tail, padded with zeros */ \
        float b[8] = {0};                          \
        memcpy(b, x + i, (n - i) * sizeof(float)); \
        nb_f32x8 v;                                \
        memcpy(&v, b, sizeof v);                   \
        v = fn(v);                                 \
        memcpy(b, &v, sizeof v);                   \
        memcpy(x + i, b, (n - i) * sizeof(float)); \
    }

/* See nn_act.h. */
__attribute__((target_clones("avx2", "default"))) void nn_sigmoid_f(float *x, size_t n) {
    ROW_LOOP(vsigmoid8)
}

/* See nn_act.h. */
__attribute__((target_clones("avx2", "default"))) void nn_tanh_f(float *x, size_t n) {
    ROW_LOOP(vtanh8)
}

#else
/* The double build evaluates the gates with libm (nn_gru.c); nothing to compile here. */
typedef int nn_act_unused;
#endif
