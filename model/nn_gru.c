/* nn_gru.c -- one GRU layer (PyTorch's gate layout and formulas) over a packed batch. */
#include "nb_simd.h"
#include "nn.h"
#include "nn_act.h"

#include <cblas.h>
#undef I /* OpenBLAS's cblas.h pulls in complex.h; I is our input-size name */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef NN_DOUBLE
/* The gradient checks compare against finite differences: keep libm's exact exp/tanh. */
static void gates_sigmoid(nn_real *x, int n) {
    for (int j = 0; j < n; j++) x[j] = 1 / (1 + exp(-x[j]));
}
static void gates_tanh(nn_real *x, int n) {
    for (int j = 0; j < n; j++) x[j] = tanh(x[j]);
}
#else
/* 8-lane float activations (nn_act.c): libm's scalar tanhf/expf were ~17% of a request. */
static void gates_sigmoid(nn_real *x, int n) { nn_sigmoid_f(x, (size_t)n); }
static void gates_tanh(nn_real *x, int n) { nn_tanh_f(x, (size_t)n); }
#endif

/* ---- the one-row products ------------------------------------------------------------ */

#define VL 16

/* Unaligned load of VL reals. */
static inline nb_real16 vload(const nn_real *p) {
    nb_real16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Unaligned load and store of 8 reals. */
static inline nb_real8 v8load(const nn_real *p) {
    nb_real8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v8store(nn_real *p, nb_real8 v) { memcpy(p, &v, sizeof v); }

/* Lanes k and k + 8 added: the first level of the fixed reduction tree. */
static inline nb_real8 vfold(nb_real16 a) {
    nb_real8 lo, hi;
    memcpy(&lo, &a, sizeof lo);
    memcpy(&hi, (char *)&a + sizeof lo, sizeof hi);
    return lo + hi;
}

/* Lane j of the result = the sum of a_j's lanes, by a fixed tree: lane pairs (0+1, 2+3, ..),
 * then quads, then halves. Lane j depends on a_j alone, so callers may pass zeros for rows
 * they do not have without changing the others' bits. */
static inline nb_real8 vsum8(nb_real8 a0, nb_real8 a1, nb_real8 a2, nb_real8 a3, nb_real8 a4,
                             nb_real8 a5, nb_real8 a6, nb_real8 a7) {
    const nb_mask8 ev = {0, 8, 2, 10, 4, 12, 6, 14}, od = {1, 9, 3, 11, 5, 13, 7, 15};
    const nb_mask8 lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const nb_mask8 lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    nb_real8 s0 = __builtin_shuffle(a0, a1, ev) + __builtin_shuffle(a0, a1, od);
    nb_real8 s1 = __builtin_shuffle(a2, a3, ev) + __builtin_shuffle(a2, a3, od);
    nb_real8 s2 = __builtin_shuffle(a4, a5, ev) + __builtin_shuffle(a4, a5, od);
    nb_real8 s3 = __builtin_shuffle(a6, a7, ev) + __builtin_shuffle(a6, a7, od);
    /* s0 = [a0 01, a1 01, a0 23, a1 23, a0 45, a1 45, a0 67, a1 67] */
    nb_real8 t0 = __builtin_shuffle(s0, s1, lo2) + __builtin_shuffle(s0, s1, hi2);
    nb_real8 t1 = __builtin_shuffle(s2, s3, lo2) + __builtin_shuffle(s2, s3, hi2);
    /* t0 = [a0 0123, a1 0123, a2 0123, a3 0123, a0 4567, a1 4567, a2 4567, a3 4567] */
    return __builtin_shuffle(t0, t1, lo4) + __builtin_shuffle(t0, t1, hi4);
}

/* The tail i >= I0 added in order, then the store (=, or += when acc). */
static inline void put(nn_real *o, nn_real v, const nn_real *x, const nn_real *w, int I0, int I,
                       int acc) {
    for (int i = I0; i < I; i++) v += x[i] * w[i];
    *o = acc ? *o + v : v;
}

/* out[m * ldo + r] (= or +=, by acc) dot(x[m * ldx, 0:I], w[r, 0:I]) for m < M, r < N; w is
 * [N, I] row-major. Register tiles of R rows of W (8 where there are 32 vector registers, 4
 * with 16) by one row of x: each tile of W is read from memory once and from L1 for the
 * other rows of x, where sgemv would stream W once per row of x and sgemm repack all of W.
 * Every element is the same sequence of operations whatever the tile (this body,
 * rows_dot_body_halves, rows_dot_x5): 16 lane-wise partial sums over i = 16j + k (j
 * increasing), lanes k and k + 8 added, the vsum8 tree, the I % 16 tail in order. No
 * multiply-add is fused (-std=c11 means -ffp-contract=off), so all tiles give the same
 * bits. Measured for one user (T = 5, both layers, loaded machine): AVX-512 tiles with
 * rows_dot_x5 ~105-125 us, AVX2 tiles ~150 us, OpenBLAS sgemv step by step ~210 us.
 * No failure cases. */
static inline __attribute__((always_inline)) void rows_dot_body(nn_real *out, int ldo,
                                                                const nn_real *x, int ldx, int M,
                                                                const nn_real *w, int N, int I,
                                                                int acc, const int R) {
    int I0 = I / VL * VL, r = 0;
    for (; r + R <= N; r += R) {
        const nn_real *w0 = w + (size_t)r * I;
        for (int m = 0; m < M; m++) {
            const nn_real *xm = x + (size_t)m * ldx;
            nb_real16 a[8] = {{0}};
            for (int i = 0; i < I0; i += VL) {
                nb_real16 u = vload(xm + i);
#pragma GCC unroll 8
                for (int j = 0; j < R; j++) a[j] += u * vload(w0 + (size_t)j * I + i);
            }
            nb_real8 f[8] = {{0}};
#pragma GCC unroll 8
            for (int j = 0; j < R; j++) f[j] = vfold(a[j]);
            nb_real8 s = vsum8(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
            nn_real *o = out + (size_t)m * ldo + r;
#pragma GCC unroll 8
            for (int j = 0; j < R; j++) put(o + j, s[j], xm, w0 + (size_t)j * I, I0, I, acc);
        }
    }
    for (; r < N; r++) {
        const nn_real *wr = w + (size_t)r * I;
        for (int m = 0; m < M; m++) {
            const nn_real *xm = x + (size_t)m * ldx;
            nb_real16 a = {0};
            nb_real8 z = {0};
            for (int i = 0; i < I0; i += VL) a += vload(xm + i) * vload(wr + i);
            nb_real8 s = vsum8(vfold(a), z, z, z, z, z, z, z);
            put(out + (size_t)m * ldo + r, s[0], xm, wr, I0, I, acc);
        }
    }
}

/* Finishes the 4 row sums of one row of x (rows_dot_body's tree; lanes 4..7 unused). */
static inline void put4(nn_real *o, nb_real16 a0, nb_real16 a1, nb_real16 a2, nb_real16 a3,
                        const nn_real *xm, const nn_real *w0, int I0, int I, int acc) {
    const nb_real8 z = {0};
    nb_real8 s = vsum8(vfold(a0), vfold(a1), vfold(a2), vfold(a3), z, z, z, z);
    for (int j = 0; j < 4; j++) put(o + j, s[j], xm, w0 + (size_t)j * I, I0, I, acc);
}

/* rows_dot for 5 rows of x at once (a user's 5 steps of input products): register tiles
 * of 4 rows of W by the 5 rows of x (20 accumulators), so each loaded vector feeds 4 or 5
 * multiply-adds instead of ~1; the 8 x 1 tiles were bound by loads (measured at
 * 768 x 256 x 5: 37 -> 80 G multiply-adds/s). Same operations per element as
 * rows_dot_body, so the same bits. Rows of W past a multiple of 4 go through
 * rows_dot_body. */
static inline __attribute__((always_inline)) void rows_dot_x5(nn_real *out, int ldo,
                                                              const nn_real *x, int ldx,
                                                              const nn_real *w, int N, int I,
                                                              int acc) {
    int I0 = I / VL * VL, r = 0;
    const nn_real *x0 = x, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx, *x4 = x3 + ldx;
    for (; r + 4 <= N; r += 4) {
        const nn_real *w0 = w + (size_t)r * I, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;
        nb_real16 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0},
                  a13 = {0}, a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0},
                  a32 = {0}, a33 = {0}, a40 = {0}, a41 = {0}, a42 = {0}, a43 = {0};
        for (int i = 0; i < I0; i += VL) {
            nb_real16 v0 = vload(w0 + i), v1 = vload(w1 + i), v2 = vload(w2 + i),
                      v3 = vload(w3 + i), u;
            u = vload(x0 + i);
            a00 += u * v0;
            a01 += u * v1;
            a02 += u * v2;
            a03 += u * v3;
            u = vload(x1 + i);
            a10 += u * v0;
            a11 += u * v1;
            a12 += u * v2;
            a13 += u * v3;
            u = vload(x2 + i);
            a20 += u * v0;
            a21 += u * v1;
            a22 += u * v2;
            a23 += u * v3;
            u = vload(x3 + i);
            a30 += u * v0;
            a31 += u * v1;
            a32 += u * v2;
            a33 += u * v3;
            u = vload(x4 + i);
            a40 += u * v0;
            a41 += u * v1;
            a42 += u * v2;
            a43 += u * v3;
        }
        put4(out + r, a00, a01, a02, a03, x0, w0, I0, I, acc);
        put4(out + (size_t)ldo + r, a10, a11, a12, a13, x1, w0, I0, I, acc);
        put4(out + 2 * (size_t)ldo + r, a20, a21, a22, a23, x2, w0, I0, I, acc);
        put4(out + 3 * (size_t)ldo + r, a30, a31, a32, a33, x3, w0, I0, I, acc);
        put4(out + 4 * (size_t)ldo + r, a40, a41, a42, a43, x4, w0, I0, I, acc);
    }
    if (r < N) rows_dot_body(out + r, ldo, x, ldx, 5, w + (size_t)r * I, N - r, I, acc, 8);
}

/* The AVX-512 tiles: groups of 5 rows of x by rows_dot_x5, the rest 8 rows of W x 1. */
__attribute__((target("avx2,avx512f"))) static void rows_dot_r8(nn_real *out, int ldo,
                                                                const nn_real *x, int ldx, int M,
                                                                const nn_real *w, int N, int I,
                                                                int acc) {
    int m = 0;
    for (; m + 5 <= M; m += 5)
        rows_dot_x5(out + (size_t)m * ldo, ldo, x + (size_t)m * ldx, ldx, w, N, I, acc);
    if (m < M)
        rows_dot_body(out + (size_t)m * ldo, ldo, x + (size_t)m * ldx, ldx, M - m, w, N, I, acc, 8);
}

/* rows_dot_body with each 16-lane accumulator held as two 8-lane halves (lanes k and k + 8
 * of the 16-lane sum): the same operations on every lane, so the same bits, in the 16
 * registers of AVX2 (a 16-lane vector type there was split through the stack, 5x slower
 * than sgemv). Tiles of 4 rows: 8 accumulators. */
static inline __attribute__((always_inline)) void rows_dot_body_halves(nn_real *out, int ldo,
                                                                       const nn_real *x, int ldx,
                                                                       int M, const nn_real *w,
                                                                       int N, int I, int acc) {
    enum { R = 4 };
    int I0 = I / VL * VL, r = 0;
    const nb_real8 z = {0};
    for (; r + R <= N; r += R) {
        const nn_real *w0 = w + (size_t)r * I, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;
        for (int m = 0; m < M; m++) {
            const nn_real *xm = x + (size_t)m * ldx;
            nb_real8 l0 = z, l1 = z, l2 = z, l3 = z, h0 = z, h1 = z, h2 = z, h3 = z;
            for (int i = 0; i < I0; i += VL) {
                nb_real8 ul = v8load(xm + i), uh = v8load(xm + i + 8);
                l0 += ul * v8load(w0 + i);
                h0 += uh * v8load(w0 + i + 8);
                l1 += ul * v8load(w1 + i);
                h1 += uh * v8load(w1 + i + 8);
                l2 += ul * v8load(w2 + i);
                h2 += uh * v8load(w2 + i + 8);
                l3 += ul * v8load(w3 + i);
                h3 += uh * v8load(w3 + i + 8);
            }
            nb_real8 s = vsum8(l0 + h0, l1 + h1, l2 + h2, l3 + h3, z, z, z, z);
            nn_real *o = out + (size_t)m * ldo + r;
            put(o, s[0], xm, w0, I0, I, acc);
            put(o + 1, s[1], xm, w1, I0, I, acc);
            put(o + 2, s[2], xm, w2, I0, I, acc);
            put(o + 3, s[3], xm, w3, I0, I, acc);
        }
    }
    for (; r < N; r++) {
        const nn_real *wr = w + (size_t)r * I;
        for (int m = 0; m < M; m++) {
            const nn_real *xm = x + (size_t)m * ldx;
            nb_real8 l = z, h = z;
            for (int i = 0; i < I0; i += VL) {
                l += v8load(xm + i) * v8load(wr + i);
                h += v8load(xm + i + 8) * v8load(wr + i + 8);
            }
            nb_real8 s = vsum8(l + h, z, z, z, z, z, z, z);
            put(out + (size_t)m * ldo + r, s[0], xm, wr, I0, I, acc);
        }
    }
}

__attribute__((target("avx2"))) static void rows_dot_r4(nn_real *out, int ldo, const nn_real *x,
                                                        int ldx, int M, const nn_real *w, int N,
                                                        int I, int acc) {
    rows_dot_body_halves(out, ldo, x, ldx, M, w, N, I, acc);
}

/* See nn.h: 0, or 4 / 8 to force a tile (tests check both give the same bits). */
int nn_gru_tile_rows = 0;

/* See rows_dot_body: the 8-row tiles where AVX-512 is available, 4-row tiles with AVX2
 * (same bits); on older CPUs BLAS's gemv for each row of x (whose kernels suit them better
 * than these vectors split into SSE halves; a different summation order, but the same on
 * every run of that machine). A forced tile the CPU cannot run is ignored. */
static void rows_dot(nn_real *out, int ldo, const nn_real *x, int ldx, int M, const nn_real *w,
                     int N, int I, int acc) {
    int has8 = __builtin_cpu_supports("avx512f"), has4 = __builtin_cpu_supports("avx2");
    int tile = has8 ? 8 : has4 ? 4 : 0;
    if ((nn_gru_tile_rows == 8 && has8) || (nn_gru_tile_rows == 4 && has4)) tile = nn_gru_tile_rows;
    if (tile == 8)
        rows_dot_r8(out, ldo, x, ldx, M, w, N, I, acc);
    else if (tile == 4)
        rows_dot_r4(out, ldo, x, ldx, M, w, N, I, acc);
    else
        for (int m = 0; m < M; m++)
            NN_GEMV(CblasRowMajor, CblasNoTrans, N, I, 1, w, I, x + (size_t)m * ldx, 1, acc ? 1 : 0,
                    out + (size_t)m * ldo, 1);
}

/* ---- repacked recurrent weights (scoring clones) ------------------------------------- */

/* See nn.h. */
size_t nn_gru_pack_size(int H) { return H > 0 && H % VL == 0 ? (size_t)3 * H * H : 0; }

/* See nn.h. Layout: rows in groups of 8; within a group, for each block of 16 columns, the
 * 8 rows' 16 values one after the other, so that an 8-row tile reads one sequential
 * stream instead of 8 (measured at 768 x 256: ~7.5 -> ~5.5 us per product). Row r's
 * group starts at r * H, as in w_hh. */
void nn_gru_pack_hh(nn_real *dst, const nn_real *w_hh, int H) {
    size_t n = 0;
    for (int g = 0; g < 3 * H; g += 8)
        for (int i = 0; i < H; i += VL)
            for (int j = 0; j < 8; j++, n += VL)
                memcpy(dst + n, w_hh + (size_t)(g + j) * H + i, VL * sizeof(nn_real));
}

/* rows_dot for one row of x over N rows of a packed matrix (N % 8 == 0, I % 16 == 0): the
 * same operations as rows_dot_body's 8 x 1 tile, so the same bits. */
__attribute__((target("avx2,avx512f"))) static void rows_dot_packed(nn_real *out, const nn_real *x,
                                                                    const nn_real *wp, int N, int I,
                                                                    int acc) {
    for (int r = 0; r < N; r += 8) {
        const nn_real *p = wp + (size_t)r * I;
        nb_real16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
        for (int i = 0; i < I; i += VL, p += 8 * VL) {
            nb_real16 u = vload(x + i);
            a0 += u * vload(p);
            a1 += u * vload(p + VL);
            a2 += u * vload(p + 2 * VL);
            a3 += u * vload(p + 3 * VL);
            a4 += u * vload(p + 4 * VL);
            a5 += u * vload(p + 5 * VL);
            a6 += u * vload(p + 6 * VL);
            a7 += u * vload(p + 7 * VL);
        }
        nb_real8 s = vsum8(vfold(a0), vfold(a1), vfold(a2), vfold(a3), vfold(a4), vfold(a5),
                           vfold(a6), vfold(a7));
        for (int j = 0; j < 8; j++) out[r + j] = acc ? out[r + j] + s[j] : s[j];
    }
}

/* The hidden products of one active row: h.W_hh[r,z]^T added onto g[0:2H], h.W_hh[n]^T into
 * g[3H:4H]; from the packed copy when there is one and the 8-row tiles run here. */
static void hidden_one_row(nn_real *g, const nn_real *hp, const nn_real *w_hh,
                           const nn_real *w_hh_packed, int H) {
    int r8 = nn_gru_tile_rows != 4 && __builtin_cpu_supports("avx512f");
    if (w_hh_packed && r8) {
        rows_dot_packed(g, hp, w_hh_packed, 2 * H, H, 1);
        rows_dot_packed(g + 3 * H, hp, w_hh_packed + (size_t)2 * H * H, H, H, 0);
    } else {
        rows_dot(g, 4 * H, hp, H, 1, w_hh, 2 * H, H, 1);
        rows_dot(g + 3 * H, 4 * H, hp, H, 1, w_hh + (size_t)2 * H * H, H, H, 0);
    }
}

/* One row's gates from its pre-activations gi[0:4H] (x.W_ih^T in 0:3H, h.W_hn^T in 3H:4H,
 * the r,z hidden products already added): r, z = sigmoid(.. + b_ih + b_hh); W_hn h + b_hn
 * kept in gi[3H:4H]; n = tanh(.. + b_in + r * (W_hn h + b_hn)); hi = (1 - z) n + z h0
 * (h0 NULL: zero). The same operations in the same order per element as a scalar loop,
 * 8 elements at a time where H allows (no fused multiply-add: -ffp-contract=off). */
__attribute__((target_clones("avx2", "default"))) static void gate_row(nn_real *gi, nn_real *hi,
                                                                       const nn_real *h0,
                                                                       const nn_real *b_ih,
                                                                       const nn_real *b_hh, int H) {
    int j = 0, H8 = H / 8 * 8;
    /* r, z pre-activations, then both sigmoids over the 2H row at once */
    for (; j + 8 <= 2 * H; j += 8)
        v8store(gi + j, (v8load(gi + j) + v8load(b_ih + j)) + v8load(b_hh + j));
    for (; j < 2 * H; j++) gi[j] = gi[j] + b_ih[j] + b_hh[j];
    gates_sigmoid(gi, 2 * H);
    for (j = 0; j < H8; j += 8) {
        nb_real8 hn = v8load(gi + 3 * H + j) + v8load(b_hh + 2 * H + j);
        v8store(gi + 3 * H + j, hn);
        v8store(gi + 2 * H + j,
                (v8load(gi + 2 * H + j) + v8load(b_ih + 2 * H + j)) + v8load(gi + j) * hn);
    }
    for (; j < H; j++) {
        nn_real hn = gi[3 * H + j] + b_hh[2 * H + j];
        gi[3 * H + j] = hn;
        gi[2 * H + j] = gi[2 * H + j] + b_ih[2 * H + j] + gi[j] * hn;
    }
    gates_tanh(gi + 2 * H, H);
    const nb_real8 one = {1, 1, 1, 1, 1, 1, 1, 1}, zero = {0};
    for (j = 0; j < H8; j += 8) {
        nb_real8 z = v8load(gi + H + j), n = v8load(gi + 2 * H + j);
        v8store(hi + j, (one - z) * n + z * (h0 ? v8load(h0 + j) : zero));
    }
    for (; j < H; j++) {
        nn_real z = gi[H + j], n = gi[2 * H + j];
        hi[j] = (1 - z) * n + z * (h0 ? h0[j] : 0);
    }
}

/* ---- forward ------------------------------------------------------------------------- */

/* The input products x.W_ih^T of every step into gates[:, :, 0:3H] (row stride 4H): they do
 * not depend on the recurrence, so they are done before it, W_ih read once for all steps.
 * Steps 0..t1-1 with every row active are one contiguous block of rows (one gemm); the
 * later steps, which have fewer rows, one gemm each over their active rows (never reading
 * the ignored rows of x, which may be uninitialised). One active row: rows_dot. */
static void input_products(nn_real *gates, const nn_real *x, const nn_real *w_ih, const int *bt,
                           int T, int B, int I, int H) {
    int H3 = 3 * H, H4 = 4 * H, t = 0;
    if (B == 1) {
        rows_dot(gates, H4, x, I, T, w_ih, H3, I, 0);
        return;
    }
    while (t < T && bt[t] == B) t++;
    if (t > 0)
        NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, t * B, H3, I, 1, x, I, w_ih, I, 0, gates,
                H4);
    for (; t < T; t++) {
        const nn_real *xt = x + (size_t)t * B * I;
        nn_real *g = gates + (size_t)t * B * H4;
        if (bt[t] == 1)
            rows_dot(g, H4, xt, I, 1, w_ih, H3, I, 0);
        else
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, bt[t], H3, I, 1, xt, I, w_ih, I, 0, g,
                    H4);
    }
}

/* Forward over T steps; see nn.h for shapes. First every step's input products (see
 * input_products), then per step only the hidden side over the active rows: h.W_hh[r,z]^T
 * added onto the r,z pre-activations and h.W_hh[n]^T into the 4th slot (it is needed
 * apart, multiplied by r); at t = 0 h is zero and the hidden products are skipped. gates end
 * up holding r, z, n and W_hn h + b_hn. No failure cases. */
void nn_gru_forward(nn_real *hs, nn_real *gates, const nn_real *x, const nn_real *w_ih,
                    const nn_real *w_hh, const nn_real *b_ih, const nn_real *b_hh, const int *bt,
                    int T, int B, int I, int H) {
    nn_gru_forward_packed(hs, gates, x, w_ih, w_hh, NULL, b_ih, b_hh, bt, T, B, I, H);
}

/* See nn.h: nn_gru_forward, with the one-row hidden products read from w_hh_packed (NULL:
 * none). No failure cases. */
void nn_gru_forward_packed(nn_real *hs, nn_real *gates, const nn_real *x, const nn_real *w_ih,
                           const nn_real *w_hh, const nn_real *w_hh_packed, const nn_real *b_ih,
                           const nn_real *b_hh, const int *bt, int T, int B, int I, int H) {
    int H4 = 4 * H;
    if (nn_gru_pack_size(H) == 0) w_hh_packed = NULL;
    input_products(gates, x, w_ih, bt, T, B, I, H);
    for (int t = 0; t < T; t++) {
        int nb = bt[t];
        nn_real *g = gates + (size_t)t * B * H4;
        nn_real *ht = hs + (size_t)t * B * H;
        const nn_real *hp = t > 0 ? hs + (size_t)(t - 1) * B * H : NULL;
        if (hp && nb == 1) {
            /* one active row (serving, or the tail of a batch): with the input products
             * hoisted, only W_hh streams through the cache inside the recurrence */
            hidden_one_row(g, hp, w_hh, w_hh_packed, H);
        } else if (hp) {
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, 2 * H, H, 1, hp, H, w_hh, H, 1, g,
                    H4);
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, H, H, 1, hp, H,
                    w_hh + (size_t)2 * H * H, H, 0, g + 3 * H, H4);
        } else {
            for (int i = 0; i < nb; i++) memset(g + (size_t)i * H4 + 3 * H, 0, H * sizeof(nn_real));
        }
        for (int i = 0; i < nb; i++)
            gate_row(g + (size_t)i * H4, ht + (size_t)i * H, hp ? hp + (size_t)i * H : NULL, b_ih,
                     b_hh, H);
        /* finished sequences carry their state forward so hs[T-1] holds every final state */
        for (int i = nb; i < B; i++) {
            if (hp)
                memcpy(ht + (size_t)i * H, hp + (size_t)i * H, H * sizeof(nn_real));
            else
                memset(ht + (size_t)i * H, 0, H * sizeof(nn_real));
        }
    }
}

/* Returns the reals nn_gru_backward needs: dgi [B,3H] and dgh [B,3H]. */
size_t nn_gru_scratch_size(int B, int H) { return (size_t)6 * B * H; }

/* Backward through time. dhs is consumed as the running dh: the gradient reaching step t
 * from above plus from step t+1. Inactive rows pass their dh straight to step t-1 (their
 * state was copied). dx rows >= bt[t] are left untouched. */
void nn_gru_backward(nn_real *dx, nn_real *dw_ih, nn_real *dw_hh, nn_real *db_ih, nn_real *db_hh,
                     nn_real *dhs, nn_real *scratch, const nn_real *gates, const nn_real *hs,
                     const nn_real *x, const nn_real *w_ih, const nn_real *w_hh, const int *bt,
                     int T, int B, int I, int H) {
    int H3 = 3 * H, H4 = 4 * H;
    nn_real *dgi = scratch, *dgh = scratch + (size_t)B * H3;
    for (int t = T - 1; t >= 0; t--) {
        int nb = bt[t];
        const nn_real *g = gates + (size_t)t * B * H4;
        const nn_real *hp = t > 0 ? hs + (size_t)(t - 1) * B * H : NULL;
        nn_real *dh = dhs + (size_t)t * B * H;
        nn_real *dhp = t > 0 ? dhs + (size_t)(t - 1) * B * H : NULL;
        for (int i = 0; i < nb; i++) {
            const nn_real *gi = g + (size_t)i * H4;
            const nn_real *dhi = dh + (size_t)i * H;
            nn_real *a = dgi + (size_t)i * H3, *c = dgh + (size_t)i * H3;
            for (int j = 0; j < H; j++) {
                nn_real r = gi[j], z = gi[H + j], n = gi[2 * H + j], hn = gi[3 * H + j];
                nn_real h0 = hp ? hp[(size_t)i * H + j] : 0;
                nn_real d = dhi[j];
                nn_real dn = d * (1 - z) * (1 - n * n);
                nn_real dz = d * (h0 - n) * z * (1 - z);
                nn_real dr = dn * hn * r * (1 - r);
                a[j] = dr;
                a[H + j] = dz;
                a[2 * H + j] = dn;
                c[j] = dr;
                c[H + j] = dz;
                c[2 * H + j] = dn * r;
                if (dhp) dhp[(size_t)i * H + j] += d * z;
            }
        }
        for (int i = nb; dhp && i < B; i++) {
            nn_real *dp = dhp + (size_t)i * H;
            const nn_real *d = dh + (size_t)i * H;
            for (int j = 0; j < H; j++) dp[j] += d[j];
        }
        for (int i = 0; i < nb; i++) {
            const nn_real *a = dgi + (size_t)i * H3, *c = dgh + (size_t)i * H3;
            for (int j = 0; j < H3; j++) {
                db_ih[j] += a[j];
                db_hh[j] += c[j];
            }
        }
        const nn_real *xt = x + (size_t)t * B * I;
        NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, H3, I, nb, 1, dgi, H3, xt, I, 1, dw_ih, I);
        if (dx)
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, I, H3, 1, dgi, H3, w_ih, I, 1,
                    dx + (size_t)t * B * I, I);
        if (hp) {
            NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, H3, H, nb, 1, dgh, H3, hp, H, 1, dw_hh,
                    H);
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, H, H3, 1, dgh, H3, w_hh, H, 1,
                    dhp, H);
        }
    }
}
