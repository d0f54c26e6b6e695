/* nn_layers.c -- embedding, conv1d+ReLU+masked max-pool, linear, rows-linear, ReLU, dropout.
 * Forward/backward pairs as documented in nn.h; every backward accumulates (+=). */
#include "nb_simd.h"
#include "nn.h"

#include <assert.h>
#include <cblas.h>
#undef I /* OpenBLAS's cblas.h pulls in complex.h; I is our input-size name */
#include <stdint.h>
#include <string.h>

/* ---- embedding ---------------------------------------------------------------------- */

/* out[T,E] = emb[idx[t], :]. No failure cases; writes only out. */
void nn_embed_forward(nn_real *out, const int32_t *idx, const nn_real *emb, int T, int E) {
    for (int t = 0; t < T; t++)
        memcpy(out + (size_t)t * E, emb + (size_t)idx[t] * E, (size_t)E * sizeof(nn_real));
}

/* demb[idx[t], :] += dout[t, :] (rows repeat when a product repeats; they add up). */
void nn_embed_backward(nn_real *demb, const nn_real *dout, const int32_t *idx, int T, int E) {
    for (int t = 0; t < T; t++) {
        nn_real *d = demb + (size_t)idx[t] * E;
        const nn_real *g = dout + (size_t)t * E;
        for (int e = 0; e < E; e++) d[e] += g[e];
    }
}

/* ---- conv1d + ReLU + masked max-pool -------------------------------------------------- */

/* Output positions of an order of length len: L-K+1, or 1 when shorter than the kernel
 * (zero-padded at its end to length K). */
static inline int conv_npos(int len, int K) { return len >= K ? len - K + 1 : 1; }

/* Returns the output positions of all orders together (rows of the im2col matrix). */
static size_t conv_total_pos(const int *off, int n_ord, int K) {
    size_t n = 0;
    for (int o = 0; o < n_ord; o++) n += (size_t)conv_npos(off[o + 1] - off[o], K);
    return n;
}

/* Returns the reals of scratch nn_conv_forward needs: the im2col matrix [Npos, E*K] and the
 * pre-activations [Npos, C], Npos = total output positions of the batch. */
size_t nn_conv_scratch_size(const int *off, int n_ord, int E, int C, int K) {
    size_t np = conv_total_pos(off, n_ord, K);
    return np * ((size_t)E * K + (size_t)C);
}

/* im2col: row p of cols is the receptive field of output position p laid out as [E, K] (the
 * weight's inner layout), zeros past the end of a short order. */
static void conv_im2col(nn_real *cols, const nn_real *in, const int *off, int n_ord, int E, int K) {
    size_t row = 0, ek = (size_t)E * K;
    for (int o = 0; o < n_ord; o++) {
        int len = off[o + 1] - off[o];
        const nn_real *x = in + (size_t)off[o] * E;
        int np = conv_npos(len, K);
        for (int p = 0; p < np; p++, row++) {
            nn_real *c = cols + row * ek;
            for (int k = 0; k < K; k++) {
                int t = p + k;
                if (t < len) {
                    const nn_real *xt = x + (size_t)t * E;
                    for (int e = 0; e < E; e++) c[(size_t)e * K + k] = xt[e];
                } else {
                    for (int e = 0; e < E; e++) c[(size_t)e * K + k] = 0;
                }
            }
        }
    }
}

/* ---- 8-lane helpers (GCC vector extensions; the default clone lowers them to SSE) ----- */


static inline nb_real8 rload(const nn_real *p) {
    nb_real8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void rstore(nn_real *p, nb_real8 v) { memcpy(p, &v, sizeof v); }
static inline nb_i32x8 iload(const int *p) {
    nb_i32x8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void istore(int *p, nb_i32x8 v) { memcpy(p, &v, sizeof v); }
/* Lane-wise m ? a : b, m's lanes -1 or 0 (a comparison's result). Bit selection: exact. */
static inline nb_real8 rsel(nb_mask8 m, nb_real8 a, nb_real8 b) {
    nb_mask8 x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x = (x & m) | (y & ~m);
    memcpy(&a, &x, sizeof a);
    return a;
}
static inline nb_i32x8 isel(nb_mask8 m, nb_i32x8 a, nb_i32x8 b) {
    nb_i32x8 mi = __builtin_convertvector(m, nb_i32x8);
    return (a & mi) | (b & ~mi);
}

/* Max over npos rows of pre (row stride C) per channel, first maximum on ties, then
 * y = relu(max + b) with argmax -1 where it is 0: one order's pooling. The same
 * comparisons as a scalar loop, 8 channels at a time (a scalar branch per element
 * mispredicted on ~half of them). */
__attribute__((target_clones("avx2", "default"))) static void conv_pool(nn_real *y, int *am,
                                                                        const nn_real *pre,
                                                                        int npos, const nn_real *b,
                                                                        int C) {
    int c = 0;
    const nb_real8 zero = {0};
    const nb_i32x8 neg1 = {-1, -1, -1, -1, -1, -1, -1, -1};
    for (; c + 8 <= C; c += 8) {
        nb_real8 yv = rload(pre + c);
        nb_i32x8 av = {0};
        for (int p = 1; p < npos; p++) {
            nb_real8 a = rload(pre + (size_t)p * C + c);
            nb_mask8 m = a > yv;
            yv = rsel(m, a, yv);
            nb_i32x8 pv = {p, p, p, p, p, p, p, p};
            av = isel(m, pv, av);
        }
        nb_real8 v = yv + rload(b + c);
        nb_mask8 on = v > zero;
        rstore(y + c, rsel(on, v, zero));
        istore(am + c, isel(on, av, neg1));
    }
    for (; c < C; c++) {
        nn_real m = pre[c];
        int a = 0;
        for (int p = 1; p < npos; p++)
            if (pre[(size_t)p * C + c] > m) {
                m = pre[(size_t)p * C + c];
                a = p;
            }
        nn_real v = m + b[c];
        if (v > 0) {
            y[c] = v;
            am[c] = a;
        } else {
            y[c] = 0;
            am[c] = -1;
        }
    }
}

/* Pooled out[n_ord, C] and argmax (global output-position index within the order, or -1
 * when every position's ReLU was off). One sgemm over all positions of all orders; the
 * bias and ReLU are folded into the max (max(relu(a)) = relu(max(a))). */
void nn_conv_forward(nn_real *out, int *argmax, nn_real *scratch, const nn_real *in, const int *off,
                     const nn_real *w, const nn_real *b, int n_ord, int E, int C, int K) {
    size_t np = conv_total_pos(off, n_ord, K);
    int ek = E * K;
    nn_real *cols = scratch, *pre = scratch + np * (size_t)ek;
    conv_im2col(cols, in, off, n_ord, E, K);
    NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)np, C, ek, 1, cols, ek, w, ek, 0, pre, C);
    size_t row = 0;
    for (int o = 0; o < n_ord; o++) {
        int npos = conv_npos(off[o + 1] - off[o], K);
        conv_pool(out + (size_t)o * C, argmax + (size_t)o * C, pre + row * C, npos, b, C);
        row += npos;
    }
}

/* Backward of the pooled conv. Only one position per (order, channel) carries gradient, so
 * instead of a dense gemm over all positions (mostly zeros) each (order, channel) does two
 * axpys of length E*K: n_ord*C*E*K*2 flops, far below the forward's gemm. The receptive
 * field is read straight from `in` (no im2col needed); scratch is unused but kept in the
 * signature for a dense variant. */
void nn_conv_backward(nn_real *din, nn_real *dw, nn_real *db, nn_real *scratch, const nn_real *dout,
                      const int *argmax, const nn_real *in, const int *off, const nn_real *w,
                      int n_ord, int E, int C, int K) {
    (void)scratch;
    size_t ek = (size_t)E * K;
    for (int o = 0; o < n_ord; o++) {
        int len = off[o + 1] - off[o];
        const nn_real *x = in + (size_t)off[o] * E;
        nn_real *dx = din ? din + (size_t)off[o] * E : NULL;
        for (int c = 0; c < C; c++) {
            int p = argmax[(size_t)o * C + c];
            nn_real g = dout[(size_t)o * C + c];
            if (p < 0 || g == 0) continue;
            db[c] += g;
            nn_real *dwc = dw + (size_t)c * ek;
            const nn_real *wc = w + (size_t)c * ek;
            int kmax = len - p < K ? len - p : K; /* padded taps have zero input */
            for (int k = 0; k < kmax; k++) {
                const nn_real *xt = x + (size_t)(p + k) * E;
                for (int e = 0; e < E; e++) dwc[(size_t)e * K + k] += g * xt[e];
                if (dx) {
                    nn_real *dxt = dx + (size_t)(p + k) * E;
                    for (int e = 0; e < E; e++) dxt[e] += g * wc[(size_t)e * K + k];
                }
            }
        }
    }
}

/* ---- linear --------------------------------------------------------------------------- */

/* out[B,O] = in[B,I] . w[O,I]^T + b. One input row (the fc layer when serving one user) or
 * one output column (the repeat MLP's last layer) is a matrix-vector product: sgemv reads
 * the matrix once, where sgemm would repack it first. */
void nn_linear_forward(nn_real *out, const nn_real *in, const nn_real *w, const nn_real *b, int B,
                       int I, int O) {
    if (B == 1)
        NN_GEMV(CblasRowMajor, CblasNoTrans, O, I, 1, w, I, in, 1, 0, out, 1);
    else if (O == 1)
        NN_GEMV(CblasRowMajor, CblasNoTrans, B, I, 1, in, I, w, 1, 0, out, 1);
    else
        NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, I, 1, in, I, w, I, 0, out, O);
    if (b)
        for (int i = 0; i < B; i++) {
            nn_real *o = out + (size_t)i * O;
            for (int j = 0; j < O; j++) o[j] += b[j];
        }
}

/* Column sums of dout[B,N] added into db[N]. */
static void colsum_add(nn_real *db, const nn_real *dout, int B, int N) {
    for (int i = 0; i < B; i++) {
        const nn_real *d = dout + (size_t)i * N;
        for (int j = 0; j < N; j++) db[j] += d[j];
    }
}

/* din += dout . w; dw += dout^T . in; db += colsum(dout). */
void nn_linear_backward(nn_real *din, nn_real *dw, nn_real *db, const nn_real *dout,
                        const nn_real *in, const nn_real *w, int B, int I, int O) {
    if (din)
        NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, I, O, 1, dout, O, w, I, 1, din, I);
    NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, B, 1, dout, O, in, I, 1, dw, I);
    if (db) colsum_add(db, dout, B, O);
}

/* ---- ReLU, dropout ------------------------------------------------------------------- */

/* out = in > 0 ? in : 0 (NaN and -0 give +0), 8 lanes at a time: the scalar branch
 * mispredicted on about half of the repeat MLP's hidden units. */
__attribute__((target_clones("avx2", "default"))) void nn_relu_forward(nn_real *out,
                                                                       const nn_real *in,
                                                                       size_t n) {
    const nb_real8 zero = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        nb_real8 v = rload(in + i);
        rstore(out + i, rsel(v > zero, v, zero));
    }
    for (; i < n; i++) out[i] = in[i] > 0 ? in[i] : 0;
}

/* din += dout where in > 0 (the subgradient at 0 is taken as 0, like PyTorch). */
void nn_relu_backward(nn_real *din, const nn_real *dout, const nn_real *in, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] += in[i] > 0 ? dout[i] : 0;
}

/* Inverted dropout; the mask is drawn element by element from rng so that the same rng
 * state gives the same mask bits. */
void nn_dropout_forward(nn_real *out, nn_real *mask, const nn_real *in, size_t n, float p,
                        int training, nb_rng *rng) {
    if (!training || p <= 0) {
        for (size_t i = 0; i < n; i++) {
            mask[i] = 1;
            out[i] = in[i];
        }
        return;
    }
    assert(p < 1);
    nn_real keep = (nn_real)(1.0 / (1.0 - (double)p));
    for (size_t i = 0; i < n; i++) {
        mask[i] = nb_rng_uniform(rng) < p ? 0 : keep;
        out[i] = in[i] * mask[i];
    }
}

/* din += dout * mask (the mask forward drew). */
void nn_dropout_backward(nn_real *din, const nn_real *dout, const nn_real *mask, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] += dout[i] * mask[i];
}
