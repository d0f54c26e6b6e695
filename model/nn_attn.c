/* nn_attn.c -- layer norm, multi-head self-attention and attention pooling over packed
 * variable-length sequences (the attention order encoder and the transformer over orders).
 * Forward/backward pairs as documented in nn.h; every backward accumulates (+=).
 *
 * A "packed" batch lists its sequences one after the other: sequence s is rows
 * off[s] .. off[s+1]-1 of a [T, A] matrix, T = off[n_seq]. Attention never crosses a
 * sequence boundary, so a sequence needs no padding and no padding mask: it is exactly
 * PyTorch's key_padding_mask applied to a padded batch, with the padded rows never computed.
 */
#include "nn.h"

#include <assert.h>
#include <cblas.h>
#undef I /* OpenBLAS's cblas.h pulls in complex.h */
#include <math.h>
#include <string.h>

#define LN_EPS 1e-5 /* PyTorch's nn.LayerNorm default */

/* ---- layer norm ----------------------------------------------------------------------- */

/* See nn.h. Statistics in double (the rows are short: A <= a few hundred). */
void nn_layernorm_forward(nn_real *out, nn_real *mean, nn_real *rstd, const nn_real *x,
                          const nn_real *w, const nn_real *b, int N, int A) {
    for (int n = 0; n < N; n++) {
        const nn_real *xr = x + (size_t)n * A;
        double m = 0, v = 0;
        for (int i = 0; i < A; i++) m += xr[i];
        m /= A;
        for (int i = 0; i < A; i++) v += (xr[i] - m) * (xr[i] - m);
        double rs = 1 / sqrt(v / A + LN_EPS);
        nn_real *o = out + (size_t)n * A;
        for (int i = 0; i < A; i++) o[i] = (nn_real)((xr[i] - m) * rs) * w[i] + b[i];
        mean[n] = (nn_real)m;
        rstd[n] = (nn_real)rs;
    }
}

/* See nn.h: dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w. */
void nn_layernorm_backward(nn_real *dx, nn_real *dw, nn_real *db, const nn_real *dout,
                           const nn_real *x, const nn_real *mean, const nn_real *rstd,
                           const nn_real *w, int N, int A) {
    for (int n = 0; n < N; n++) {
        const nn_real *xr = x + (size_t)n * A, *d = dout + (size_t)n * A;
        double mg = 0, mgx = 0;
        for (int i = 0; i < A; i++) {
            double xh = (xr[i] - mean[n]) * rstd[n], g = (double)d[i] * w[i];
            mg += g;
            mgx += g * xh;
            dw[i] += (nn_real)(d[i] * xh);
            db[i] += d[i];
        }
        mg /= A;
        mgx /= A;
        if (!dx) continue;
        nn_real *o = dx + (size_t)n * A;
        for (int i = 0; i < A; i++) {
            double xh = (xr[i] - mean[n]) * rstd[n], g = (double)d[i] * w[i];
            o[i] += (nn_real)(rstd[n] * (g - mg - xh * mgx));
        }
    }
}

/* ---- multi-head self-attention -------------------------------------------------------- */

/* See nn.h: sum over sequences of nh * L^2. */
size_t nn_mha_probs_size(const int *off, int n_seq, int nh) {
    size_t n = 0;
    for (int s = 0; s < n_seq; s++) {
        size_t L = (size_t)(off[s + 1] - off[s]);
        n += (size_t)nh * L * L;
    }
    return n;
}

/* See nn.h: dctx [T, A], dqkv [T, 3A] and one row of L reals for the longest sequence. */
size_t nn_mha_scratch_size(const int *off, int n_seq, int A) {
    int mx = 0;
    for (int s = 0; s < n_seq; s++)
        if (off[s + 1] - off[s] > mx) mx = off[s + 1] - off[s];
    return (size_t)off[n_seq] * 4 * A + (size_t)mx;
}

static nn_real dot(const nn_real *a, const nn_real *b, int n) {
    nn_real s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* See nn.h. */
void nn_mha_forward(nn_real *out, nn_real *qkv, nn_real *probs, nn_real *ctx, const nn_real *x,
                    const nn_real *w_in, const nn_real *b_in, const nn_real *w_out,
                    const nn_real *b_out, const int *off, int n_seq, int A, int nh, int causal) {
    int T = off[n_seq], hd = A / nh, A3 = 3 * A;
    assert(hd * nh == A);
    nn_real scale = (nn_real)(1 / sqrt((double)hd));
    nn_linear_forward(qkv, x, w_in, b_in, T, A, A3);
    memset(ctx, 0, (size_t)T * A * sizeof(nn_real));
    nn_real *pp = probs;
    for (int s = 0; s < n_seq; s++) {
        int a = off[s], L = off[s + 1] - a;
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < L; i++) {
                const nn_real *q = qkv + (size_t)(a + i) * A3 + h * hd;
                nn_real *row = pp + ((size_t)h * L + i) * L;
                int nj = causal ? i + 1 : L;
                nn_real mx = -INFINITY;
                for (int j = 0; j < nj; j++) {
                    row[j] = dot(q, qkv + (size_t)(a + j) * A3 + A + h * hd, hd) * scale;
                    if (row[j] > mx) mx = row[j];
                }
                nn_real sum = 0;
                for (int j = 0; j < nj; j++) sum += row[j] = (nn_real)exp(row[j] - mx);
                for (int j = 0; j < nj; j++) row[j] /= sum;
                for (int j = nj; j < L; j++) row[j] = 0;
                nn_real *c = ctx + (size_t)(a + i) * A + h * hd;
                for (int j = 0; j < nj; j++) {
                    const nn_real *v = qkv + (size_t)(a + j) * A3 + 2 * A + h * hd;
                    for (int e = 0; e < hd; e++) c[e] += row[j] * v[e];
                }
            }
        pp += (size_t)nh * L * L;
    }
    nn_linear_forward(out, ctx, w_out, b_out, T, A, A);
}

/* See nn.h. */
void nn_mha_backward(nn_real *dx, nn_real *dw_in, nn_real *db_in, nn_real *dw_out, nn_real *db_out,
                     nn_real *scratch, const nn_real *dout, const nn_real *qkv,
                     const nn_real *probs, const nn_real *ctx, const nn_real *x,
                     const nn_real *w_in, const nn_real *w_out, const int *off, int n_seq, int A,
                     int nh, int causal) {
    int T = off[n_seq], hd = A / nh, A3 = 3 * A;
    nn_real scale = (nn_real)(1 / sqrt((double)hd));
    nn_real *dctx = scratch, *dqkv = scratch + (size_t)T * A, *dp = dqkv + (size_t)T * A3;
    memset(dctx, 0, (size_t)T * 4 * A * sizeof(nn_real));
    nn_linear_backward(dctx, dw_out, db_out, dout, ctx, w_out, T, A, A);
    const nn_real *pp = probs;
    for (int s = 0; s < n_seq; s++) {
        int a = off[s], L = off[s + 1] - a;
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < L; i++) {
                const nn_real *row = pp + ((size_t)h * L + i) * L;
                const nn_real *dc = dctx + (size_t)(a + i) * A + h * hd;
                const nn_real *q = qkv + (size_t)(a + i) * A3 + h * hd;
                nn_real *dq = dqkv + (size_t)(a + i) * A3 + h * hd;
                int nj = causal ? i + 1 : L;
                nn_real sdot = 0;
                for (int j = 0; j < nj; j++) {
                    size_t rj = (size_t)(a + j) * A3 + h * hd;
                    dp[j] = dot(dc, qkv + rj + 2 * A, hd);
                    sdot += row[j] * dp[j];
                    nn_real *dv = dqkv + rj + 2 * A;
                    for (int e = 0; e < hd; e++) dv[e] += row[j] * dc[e];
                }
                for (int j = 0; j < nj; j++) {
                    size_t rj = (size_t)(a + j) * A3 + h * hd;
                    nn_real ds = row[j] * (dp[j] - sdot) * scale;
                    const nn_real *k = qkv + rj + A;
                    nn_real *dk = dqkv + rj + A;
                    for (int e = 0; e < hd; e++) {
                        dq[e] += ds * k[e];
                        dk[e] += ds * q[e];
                    }
                }
            }
        pp += (size_t)nh * L * L;
    }
    nn_linear_backward(dx, dw_in, db_in, dqkv, x, w_in, T, A, A3);
}

/* ---- attention pooling ---------------------------------------------------------------- */

/* See nn.h. */
void nn_attnpool_forward(nn_real *out, nn_real *alpha, const nn_real *x, const nn_real *q,
                         const int *off, int n_seq, int A) {
    nn_real scale = (nn_real)(1 / sqrt((double)A));
    for (int s = 0; s < n_seq; s++) {
        int a = off[s], L = off[s + 1] - a;
        nn_real mx = -INFINITY, sum = 0, *o = out + (size_t)s * A;
        for (int i = 0; i < L; i++) {
            alpha[a + i] = dot(q, x + (size_t)(a + i) * A, A) * scale;
            if (alpha[a + i] > mx) mx = alpha[a + i];
        }
        for (int i = 0; i < L; i++) sum += alpha[a + i] = (nn_real)exp(alpha[a + i] - mx);
        memset(o, 0, (size_t)A * sizeof(nn_real));
        for (int i = 0; i < L; i++) {
            alpha[a + i] /= sum;
            const nn_real *xr = x + (size_t)(a + i) * A;
            for (int e = 0; e < A; e++) o[e] += alpha[a + i] * xr[e];
        }
    }
}

/* See nn.h. d alpha_i = dout . x_i, d score_i = alpha_i (d alpha_i - sum_j alpha_j d alpha_j);
 * the d alpha_i are computed twice instead of stored (a dot of A reals each). */
void nn_attnpool_backward(nn_real *dx, nn_real *dq, const nn_real *dout, const nn_real *alpha,
                          const nn_real *x, const nn_real *q, const int *off, int n_seq, int A) {
    nn_real scale = (nn_real)(1 / sqrt((double)A));
    for (int s = 0; s < n_seq; s++) {
        int a = off[s], L = off[s + 1] - a;
        const nn_real *d = dout + (size_t)s * A;
        nn_real sdot = 0;
        for (int i = 0; i < L; i++) sdot += alpha[a + i] * dot(d, x + (size_t)(a + i) * A, A);
        for (int i = 0; i < L; i++) {
            const nn_real *xr = x + (size_t)(a + i) * A;
            nn_real al = alpha[a + i], ds = al * (dot(d, xr, A) - sdot) * scale;
            for (int e = 0; e < A; e++) dq[e] += ds * xr[e];
            if (!dx) continue;
            nn_real *dr = dx + (size_t)(a + i) * A;
            for (int e = 0; e < A; e++) dr[e] += al * d[e] + ds * q[e];
        }
    }
}
