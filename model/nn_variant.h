/* nn_variant.h -- the model's alternative stages (issue 11), private to model/:
 * the attention order encoder (in place of the CNN) and the transformer over orders (in
 * place of the GRU). nn_model.c routes a batch through them when the configuration asks;
 * they own only their activation buffers, the parameters are the model's.
 */
#ifndef NN_VARIANT_H
#define NN_VARIANT_H

#include "nn.h"
#include "nn_buf.h"

/* Activation buffers of both stages (all bufs: nn_model.c frees them with the rest). */
typedef struct {
    buf ein, eqkv, eprobs, ectx, ez, ealpha, dez, dein, escr;         /* encoder */
    buf x[NN_MAX_LAYERS + 1], act[NN_MAX_LAYERS], last, lnm, lnr, dl; /* transformer */
    buf d0, d1, scr;
} nn_var_act;

/* Attention encoder: eout [T, E] (the orders' product embeddings, order o = rows
 * coff[o] .. coff[o+1]-1) -> cout [n_ord, A], A = cnn_out:
 *   z = x + MHA(x), x = eout . enc_w^T + enc_b (no positions: a basket is a set),
 *   cout[o] = attention pooling of order o's rows of z with the query enc_q. */
void nn_enc_attn_forward(nn_var_act *v, nn_real *cout, const nn_real *eout, const int *coff,
                         int n_ord, const nn_config *c, const nn_params *P);
/* deout [T, E] += the input gradient; G's encoder gradients accumulate. Needs the forward's
 * activations (same eout, coff). */
void nn_enc_attn_backward(nn_var_act *v, nn_real *deout, const nn_real *dcout, const nn_real *eout,
                          const int *coff, int n_ord, const nn_config *c, const nn_params *P,
                          const nn_params *G);

/* Transformer over orders: x [T, I0] tokens, sample s's orders oldest first at rows
 * soff[s] .. soff[s+1]-1 (1..max_orders each) -> u [B, H], H = gru_hidden: each token is
 * projected (tf_w_in, tf_b_in) and gets the learned position of its distance from the
 * sample's latest order, then gru_layers causal pre-LN blocks, then the final LayerNorm of
 * each sample's latest token. */
void nn_seq_tf_forward(nn_var_act *v, nn_real *u, const nn_real *x, const int *soff, int B, int I0,
                       const nn_config *c, const nn_params *P);
/* dx [T, I0] += the input gradient (may be NULL); G's transformer gradients accumulate. */
void nn_seq_tf_backward(nn_var_act *v, nn_real *dx, const nn_real *du, const nn_real *x,
                        const int *soff, int B, int I0, const nn_config *c, const nn_params *P,
                        const nn_params *G);

#endif
