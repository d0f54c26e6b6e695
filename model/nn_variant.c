/* nn_variant.c -- the attention order encoder and the transformer over orders (see
 * nn_variant.h), composed from the layers of nn_attn.c and nn_tblock.c. */
#include "nn_variant.h"

#include <string.h>

#define NEED(field, count) ((nn_real *)need(&v->field, (size_t)(count) * sizeof(nn_real)))

/* ---- attention encoder ---------------------------------------------------------------- */

/* See nn_variant.h. */
void nn_enc_attn_forward(nn_var_act *v, nn_real *cout, const nn_real *eout, const int *coff,
                         int n_ord, const nn_config *c, const nn_params *P) {
    int T = coff[n_ord], E = c->emb, A = c->cnn_out, nh = c->heads;
    size_t n = (size_t)T * A;
    nn_real *ein = NEED(ein, n), *ez = NEED(ez, n);
    nn_linear_forward(ein, eout, P->enc_w, P->enc_b, T, E, A);
    nn_mha_forward(ez, NEED(eqkv, 3 * n), NEED(eprobs, nn_mha_probs_size(coff, n_ord, nh)),
                   NEED(ectx, n), ein, P->enc_w_in, P->enc_b_in, P->enc_w_out, P->enc_b_out, coff,
                   n_ord, A, nh, 0);
    for (size_t i = 0; i < n; i++) ez[i] += ein[i];
    nn_attnpool_forward(cout, NEED(ealpha, T), ez, P->enc_q, coff, n_ord, A);
}

/* See nn_variant.h. */
void nn_enc_attn_backward(nn_var_act *v, nn_real *deout, const nn_real *dcout, const nn_real *eout,
                          const int *coff, int n_ord, const nn_config *c, const nn_params *P,
                          const nn_params *G) {
    int T = coff[n_ord], E = c->emb, A = c->cnn_out, nh = c->heads;
    size_t n = (size_t)T * A;
    nn_real *dez = NEED(dez, n), *dein = NEED(dein, n);
    memset(dez, 0, n * sizeof(nn_real));
    nn_attnpool_backward(dez, G->enc_q, dcout, v->ealpha.p, v->ez.p, P->enc_q, coff, n_ord, A);
    memcpy(dein, dez, n * sizeof(nn_real)); /* the residual */
    nn_mha_backward(dein, G->enc_w_in, G->enc_b_in, G->enc_w_out, G->enc_b_out,
                    NEED(escr, nn_mha_scratch_size(coff, n_ord, A)), dez, v->eqkv.p, v->eprobs.p,
                    v->ectx.p, v->ein.p, P->enc_w_in, P->enc_w_out, coff, n_ord, A, nh, 0);
    nn_linear_backward(deout, G->enc_w, G->enc_b, dein, eout, P->enc_w, T, E, A);
}

/* ---- transformer over orders ---------------------------------------------------------- */

/* See nn_variant.h. */
void nn_seq_tf_forward(nn_var_act *v, nn_real *u, const nn_real *x, const int *soff, int B, int I0,
                       const nn_config *c, const nn_params *P) {
    int T = soff[B], H = c->gru_hidden, L = c->gru_layers, nh = c->heads, F = 4 * H;
    nn_real *x0 = NEED(x[0], (size_t)T * H);
    nn_linear_forward(x0, x, P->tf_w_in, P->tf_b_in, T, I0, H);
    for (int s = 0; s < B; s++)
        for (int r = soff[s]; r < soff[s + 1]; r++) {
            const nn_real *pos = P->tf_pos + (size_t)(soff[s + 1] - 1 - r) * H;
            nn_real *xr = x0 + (size_t)r * H;
            for (int e = 0; e < H; e++) xr[e] += pos[e];
        }
    size_t act = nn_tblock_act_size(soff, B, H, nh, F);
    for (int l = 0; l < L; l++)
        nn_tblock_forward(NEED(x[l + 1], (size_t)T * H), NEED(act[l], act), v->x[l].p, &P->tf[l],
                          soff, B, H, nh, F, 1);
    /* the final LayerNorm is needed on the latest tokens only */
    nn_real *last = NEED(last, (size_t)B * H);
    for (int s = 0; s < B; s++)
        memcpy(last + (size_t)s * H, (nn_real *)v->x[L].p + (size_t)(soff[s + 1] - 1) * H,
               (size_t)H * sizeof(nn_real));
    nn_layernorm_forward(u, NEED(lnm, B), NEED(lnr, B), last, P->tf_lnf_w, P->tf_lnf_b, B, H);
}

/* See nn_variant.h. */
void nn_seq_tf_backward(nn_var_act *v, nn_real *dx, const nn_real *du, const nn_real *x,
                        const int *soff, int B, int I0, const nn_config *c, const nn_params *P,
                        const nn_params *G) {
    int T = soff[B], H = c->gru_hidden, L = c->gru_layers, nh = c->heads, F = 4 * H;
    size_t n = (size_t)T * H;
    nn_real *dl = NEED(dl, (size_t)B * H), *dy = NEED(d0, n), *dn = NEED(d1, n);
    nn_real *scr = NEED(scr, nn_tblock_scratch_size(soff, B, H, F));
    memset(dl, 0, (size_t)B * H * sizeof(nn_real));
    nn_layernorm_backward(dl, G->tf_lnf_w, G->tf_lnf_b, du, v->last.p, v->lnm.p, v->lnr.p,
                          P->tf_lnf_w, B, H);
    memset(dy, 0, n * sizeof(nn_real));
    for (int s = 0; s < B; s++)
        memcpy(dy + (size_t)(soff[s + 1] - 1) * H, dl + (size_t)s * H, (size_t)H * sizeof(nn_real));
    for (int l = L - 1; l >= 0; l--) {
        memset(dn, 0, n * sizeof(nn_real));
        nn_tblock_backward(dn, &G->tf[l], scr, dy, v->act[l].p, v->x[l].p, &P->tf[l], soff, B, H,
                           nh, F, 1);
        nn_real *t = dy;
        dy = dn, dn = t;
    }
    for (int s = 0; s < B; s++)
        for (int r = soff[s]; r < soff[s + 1]; r++) {
            nn_real *dp = G->tf_pos + (size_t)(soff[s + 1] - 1 - r) * H;
            const nn_real *d = dy + (size_t)r * H;
            for (int e = 0; e < H; e++) dp[e] += d[e];
        }
    nn_linear_backward(dx, G->tf_w_in, G->tf_b_in, dy, x, P->tf_w_in, T, I0, H);
}
