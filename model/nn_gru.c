/* nn_gru.c -- one GRU layer (PyTorch's gate layout and formulas) over a packed batch. */
#include "nn.h"
#include "nn_act.h"

#include <cblas.h>
#undef I /* OpenBLAS's cblas.h pulls in complex.h; I is our input-size name */
#include <math.h>
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

/* Forward over T steps; see nn.h for shapes. Per step three gemms over the active rows only
 * (gemvs when a single row is active):
 * x.W_ih^T into gates[:, 0:3H] (row stride 4H), then h.W_hh[r,z]^T added onto the r,z
 * pre-activations and h.W_hh[n]^T into the 4th slot (it is needed apart, multiplied by r).
 * gates end up holding r, z, n and W_hn h + b_hn. No failure cases. */
void nn_gru_forward(nn_real *hs, nn_real *gates, const nn_real *x, const nn_real *w_ih,
                    const nn_real *w_hh, const nn_real *b_ih, const nn_real *b_hh,
                    const int *bt, int T, int B, int I, int H) {
    int H3 = 3 * H, H4 = 4 * H;
    for (int t = 0; t < T; t++) {
        int nb = bt[t];
        const nn_real *xt = x + (size_t)t * B * I;
        nn_real *g = gates + (size_t)t * B * H4;
        nn_real *ht = hs + (size_t)t * B * H;
        const nn_real *hp = t > 0 ? hs + (size_t)(t - 1) * B * H : NULL;
        if (nb == 1) {
            /* one active row (serving, or the tail of a batch): sgemv streams W once, where
             * sgemm would first repack the whole of W for a single row */
            NN_GEMV(CblasRowMajor, CblasNoTrans, H3, I, 1, w_ih, I, xt, 1, 0, g, 1);
            if (hp) {
                NN_GEMV(CblasRowMajor, CblasNoTrans, 2 * H, H, 1, w_hh, H, hp, 1, 1, g, 1);
                NN_GEMV(CblasRowMajor, CblasNoTrans, H, H, 1, w_hh + (size_t)2 * H * H, H, hp,
                        1, 0, g + 3 * H, 1);
            }
        } else {
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, H3, I, 1, xt, I, w_ih, I, 0, g,
                    H4);
            if (hp) {
                NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, 2 * H, H, 1, hp, H, w_hh, H,
                        1, g, H4);
                NN_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nb, H, H, 1, hp, H,
                        w_hh + (size_t)2 * H * H, H, 0, g + 3 * H, H4);
            }
        }
        if (!hp) {
            for (int i = 0; i < nb; i++) memset(g + (size_t)i * H4 + 3 * H, 0, H * sizeof(nn_real));
        }
        for (int i = 0; i < nb; i++) {
            nn_real *gi = g + (size_t)i * H4;
            nn_real *hi = ht + (size_t)i * H;
            const nn_real *h0 = hp ? hp + (size_t)i * H : NULL;
            /* r, z pre-activations, then both sigmoids over the 2H row at once */
            for (int j = 0; j < 2 * H; j++) gi[j] = gi[j] + b_ih[j] + b_hh[j];
            gates_sigmoid(gi, 2 * H);
            for (int j = 0; j < H; j++) {
                nn_real hn = gi[3 * H + j] + b_hh[2 * H + j];
                gi[3 * H + j] = hn;
                gi[2 * H + j] = gi[2 * H + j] + b_ih[2 * H + j] + gi[j] * hn;
            }
            gates_tanh(gi + 2 * H, H);
            for (int j = 0; j < H; j++) {
                nn_real z = gi[H + j], n = gi[2 * H + j];
                hi[j] = (1 - z) * n + z * (h0 ? h0[j] : 0);
            }
        }
        /* finished sequences carry their state forward so hs[T-1] holds every final state */
        for (int i = nb; i < B; i++) {
            if (hp) memcpy(ht + (size_t)i * H, hp + (size_t)i * H, H * sizeof(nn_real));
            else memset(ht + (size_t)i * H, 0, H * sizeof(nn_real));
        }
    }
}

/* Returns the reals nn_gru_backward needs: dgi [B,3H] and dgh [B,3H]. */
size_t nn_gru_scratch_size(int B, int H) { return (size_t)6 * B * H; }

/* Backward through time. dhs is consumed as the running dh: the gradient reaching step t
 * from above plus from step t+1. Inactive rows pass their dh straight to step t-1 (their
 * state was copied). dx rows >= bt[t] are left untouched. */
void nn_gru_backward(nn_real *dx, nn_real *dw_ih, nn_real *dw_hh, nn_real *db_ih,
                     nn_real *db_hh, nn_real *dhs, nn_real *scratch, const nn_real *gates,
                     const nn_real *hs, const nn_real *x, const nn_real *w_ih,
                     const nn_real *w_hh, const int *bt, int T, int B, int I, int H) {
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
                a[j] = dr; a[H + j] = dz; a[2 * H + j] = dn;
                c[j] = dr; c[H + j] = dz; c[2 * H + j] = dn * r;
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
            for (int j = 0; j < H3; j++) { db_ih[j] += a[j]; db_hh[j] += c[j]; }
        }
        const nn_real *xt = x + (size_t)t * B * I;
        NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, H3, I, nb, 1, dgi, H3, xt, I, 1, dw_ih,
                I);
        if (dx)
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, I, H3, 1, dgi, H3, w_ih, I, 1,
                    dx + (size_t)t * B * I, I);
        if (hp) {
            NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, H3, H, nb, 1, dgh, H3, hp, H, 1,
                    dw_hh, H);
            NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, H, H3, 1, dgh, H3, w_hh, H, 1,
                    dhp, H);
        }
    }
}
