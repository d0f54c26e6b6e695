/* nn_tblock.c -- one pre-layer-norm transformer encoder block over packed sequences,
 * PyTorch's nn.TransformerEncoderLayer(norm_first=True, activation=relu, dropout=0):
 *   h   = x + MHA(LN1(x))
 *   out = h + W2 relu(W1 LN2(h) + b1) + b2
 * Pre-norm keeps the residual stream an identity path from input to output, which is what
 * lets it train without the loss blowing up (the research log's post-norm attempt went NaN).
 */
#include "nn.h"

#include <string.h>

/* The activations of one forward, carved from the caller's buffer in this order. */
typedef struct {
    nn_real *ln1, *m1, *r1, *qkv, *ctx, *h, *ln2, *m2, *r2, *f1, *f1r, *probs;
} tb_act;

static tb_act carve(nn_real *p, int T, int A, int F) {
    tb_act a;
    size_t t = (size_t)T;
    a.ln1 = p, p += t * A;
    a.m1 = p, p += t;
    a.r1 = p, p += t;
    a.qkv = p, p += t * 3 * A;
    a.ctx = p, p += t * A;
    a.h = p, p += t * A;
    a.ln2 = p, p += t * A;
    a.m2 = p, p += t;
    a.r2 = p, p += t;
    a.f1 = p, p += t * F;
    a.f1r = p, p += t * F;
    a.probs = p;
    return a;
}

/* See nn.h. */
size_t nn_tblock_act_size(const int *off, int n_seq, int A, int nh, int F) {
    size_t T = (size_t)off[n_seq];
    return T * (7 * (size_t)A + 4 + 2 * (size_t)F) + nn_mha_probs_size(off, n_seq, nh);
}

/* See nn.h. */
size_t nn_tblock_scratch_size(const int *off, int n_seq, int A, int F) {
    size_t T = (size_t)off[n_seq];
    return T * (2 * (size_t)A + 2 * (size_t)F) + nn_mha_scratch_size(off, n_seq, A);
}

/* See nn.h. */
void nn_tblock_forward(nn_real *out, nn_real *act, const nn_real *x, const nn_tblock_params *p,
                       const int *off, int n_seq, int A, int nh, int F, int causal) {
    int T = off[n_seq];
    size_t n = (size_t)T * A;
    tb_act a = carve(act, T, A, F);
    nn_layernorm_forward(a.ln1, a.m1, a.r1, x, p->ln1_w, p->ln1_b, T, A);
    nn_mha_forward(a.h, a.qkv, a.probs, a.ctx, a.ln1, p->w_in, p->b_in, p->w_out, p->b_out, off,
                   n_seq, A, nh, causal);
    for (size_t i = 0; i < n; i++) a.h[i] += x[i];
    nn_layernorm_forward(a.ln2, a.m2, a.r2, a.h, p->ln2_w, p->ln2_b, T, A);
    nn_linear_forward(a.f1, a.ln2, p->ff1_w, p->ff1_b, T, A, F);
    nn_relu_forward(a.f1r, a.f1, (size_t)T * F);
    nn_linear_forward(out, a.f1r, p->ff2_w, p->ff2_b, T, F, A);
    for (size_t i = 0; i < n; i++) out[i] += a.h[i];
}

/* See nn.h. */
void nn_tblock_backward(nn_real *dx, const nn_tblock_params *g, nn_real *scratch,
                        const nn_real *dout, const nn_real *act, const nn_real *x,
                        const nn_tblock_params *p, const int *off, int n_seq, int A, int nh, int F,
                        int causal) {
    int T = off[n_seq];
    size_t n = (size_t)T * A, nf = (size_t)T * F;
    tb_act a = carve((nn_real *)act, T, A, F);
    nn_real *dh = scratch, *dln = dh + n, *df1r = dln + n, *df1 = df1r + nf, *ms = df1 + nf;
    /* feed-forward branch; the residual carries dout straight into dh */
    memcpy(dh, dout, n * sizeof(nn_real));
    memset(dln, 0, (n + 2 * nf) * sizeof(nn_real));
    nn_linear_backward(df1r, g->ff2_w, g->ff2_b, dout, a.f1r, p->ff2_w, T, F, A);
    nn_relu_backward(df1, df1r, a.f1, nf);
    nn_linear_backward(dln, g->ff1_w, g->ff1_b, df1, a.ln2, p->ff1_w, T, A, F);
    nn_layernorm_backward(dh, g->ln2_w, g->ln2_b, dln, a.h, a.m2, a.r2, p->ln2_w, T, A);
    /* attention branch */
    memset(dln, 0, n * sizeof(nn_real));
    nn_mha_backward(dln, g->w_in, g->b_in, g->w_out, g->b_out, ms, dh, a.qkv, a.probs, a.ctx, a.ln1,
                    p->w_in, p->w_out, off, n_seq, A, nh, causal);
    nn_layernorm_backward(dx, g->ln1_w, g->ln1_b, dln, x, a.m1, a.r1, p->ln1_w, T, A);
    for (size_t i = 0; i < n; i++) dx[i] += dh[i];
}
