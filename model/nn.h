/* nn.h -- the CNN -> GRU -> head next-basket network: layers, model, optimiser.
 *
 * Every layer is a forward/backward pair in the style of llm.c:
 *   nn_x_forward(out, in, params..., dims)
 *   nn_x_backward(din, dparams..., dout, in, params..., dims)
 * outputs first, a shape comment on top. Backward ACCUMULATES (+=) into every gradient it
 * writes (din may be NULL when the input needs no gradient). All matrices are row-major.
 *
 * Precision: nn_real is float, or double when compiled with -DNN_DOUBLE (the Makefile builds
 * model/nn_*.c both ways; the double build exists for finite-difference gradient checks).
 * NN_GEMM / NN_GEMV map to cblas_sgemm/sgemv or cblas_dgemm/dgemv accordingly.
 *
 * Products are dense indices 0..n_products-1 (the order of the model's product-id list).
 *
 * Ownership: the model owns every buffer it allocates; nn_batch arrays are borrowed from the
 * caller for the duration of one call; nothing here keeps a pointer to them.
 */
#ifndef NN_H
#define NN_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#ifdef NN_DOUBLE
typedef double nn_real;
#define NN_GEMM cblas_dgemm
#define NN_GEMV cblas_dgemv
#else
typedef float nn_real;
#define NN_GEMM cblas_sgemm
#define NN_GEMV cblas_sgemv
#endif

#define NN_MAX_LAYERS 4

/* ---- layers ------------------------------------------------------------------------- */

/* Embedding gather. out[T,E] = emb[idx[t], :]. */
void nn_embed_forward(nn_real *out, const int32_t *idx, const nn_real *emb, int T, int E);
/* demb[idx[t], :] += dout[t, :]. */
void nn_embed_backward(nn_real *demb, const nn_real *dout, const int32_t *idx, int T, int E);

/* Conv1d (E in-channels, C out-channels, kernel K, bias) over each order's products, ReLU,
 * then max-pool over the valid output positions of that order.
 * in:      [T, E] the gathered embeddings of all orders, concatenated (order o is rows
 *          off[o] .. off[o+1]-1, in add-to-cart order).
 * off:     [n_ord + 1] row offsets, off[0] = 0, every order non-empty.
 * w:       [C, E, K] (PyTorch's Conv1d weight layout), b: [C].
 * out:     [n_ord, C] pooled outputs.
 * argmax:  [n_ord, C] which output position of that order (0-based within the order) won
 *          the max, first one on ties (-1 when the pooled value is 0, i.e. the ReLU was
 *          inactive everywhere); saved for backward.
 * An order of length L >= K has L-K+1 output positions; an order shorter than K is
 * zero-padded at its end to length K and has exactly one position. No work is spent on
 * padding beyond that. scratch: caller-provided, nn_conv_scratch_size(...) reals. */
size_t nn_conv_scratch_size(const int *off, int n_ord, int E, int C, int K);
void nn_conv_forward(nn_real *out, int *argmax, nn_real *scratch, const nn_real *in, const int *off,
                     const nn_real *w, const nn_real *b, int n_ord, int E, int C, int K);
/* din: [T, E] (may be NULL), dw: [C, E, K], db: [C]; dout: [n_ord, C]. Only the winning
 * position of each (order, channel) carries gradient, so backward works straight from `in`
 * and argmax (2*n_ord*C*E*K flops); scratch is not read and need not survive from forward. */
void nn_conv_backward(nn_real *din, nn_real *dw, nn_real *db, nn_real *scratch, const nn_real *dout,
                      const int *argmax, const nn_real *in, const int *off, const nn_real *w,
                      int n_ord, int E, int C, int K);

/* One GRU layer over a packed batch (PyTorch gate layout r, z, n):
 *   r = s(W_ir x + b_ir + W_hr h + b_hr); z = s(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) * n + z * h
 * Steps t = 0..T-1 (oldest order first). The batch is sorted by length, descending, so at
 * step t only rows 0..bt[t]-1 are active (bt non-increasing, bt[0] = B); inactive rows keep
 * their hidden state. h0 = 0.
 * x:      [T, B, I] step-major input (rows >= bt[t] of step t are ignored).
 * hs:     [T, B, H] output: the hidden state after each step (inactive rows copied forward),
 *         so hs[T-1] holds every sequence's final state.
 * gates:  [T, B, 4H] saved for backward (r, z, n, and W_hn h + b_hn).
 * w_ih [3H, I], w_hh [3H, H], b_ih [3H], b_hh [3H]. */
void nn_gru_forward(nn_real *hs, nn_real *gates, const nn_real *x, const nn_real *w_ih,
                    const nn_real *w_hh, const nn_real *b_ih, const nn_real *b_hh, const int *bt,
                    int T, int B, int I, int H);
/* Scoring clones keep the recurrent weights repacked for the one-row products (the
 * hidden side of serving one user): nn_gru_pack_size(H) reals (0 when H is not a multiple
 * of 16: no packing), filled by nn_gru_pack_hh from w_hh [3H, H]. nn_gru_forward_packed is
 * nn_gru_forward reading them (w_hh_packed NULL: plain nn_gru_forward); the results are
 * the same bits either way. */
size_t nn_gru_pack_size(int H);
void nn_gru_pack_hh(nn_real *dst, const nn_real *w_hh, int H);
void nn_gru_forward_packed(nn_real *hs, nn_real *gates, const nn_real *x, const nn_real *w_ih,
                           const nn_real *w_hh, const nn_real *w_hh_packed, const nn_real *b_ih,
                           const nn_real *b_hh, const int *bt, int T, int B, int I, int H);
/* Test hook: register tile of the one-row products, 0 = chosen by the CPU (8 rows of W with
 * AVX-512, 4 with AVX2, else BLAS gemv), 4 or 8 to force one (ignored when the CPU lacks
 * it). Both tiles give the same bits. */
extern int nn_gru_tile_rows;
/* dhs: [T, B, H] gradient w.r.t. every hs (it is modified: used as the running dh).
 * dx: [T, B, I] (may be NULL; rows >= bt[t] of step t are not written).
 * scratch: nn_gru_scratch_size(B, H) = 6*B*H reals. */
size_t nn_gru_scratch_size(int B, int H);
void nn_gru_backward(nn_real *dx, nn_real *dw_ih, nn_real *dw_hh, nn_real *db_ih, nn_real *db_hh,
                     nn_real *dhs, nn_real *scratch, const nn_real *gates, const nn_real *hs,
                     const nn_real *x, const nn_real *w_ih, const nn_real *w_hh, const int *bt,
                     int T, int B, int I, int H);

/* Linear: out[B, O] = in[B, I] . w[O, I]^T + b[O] (b may be NULL). */
void nn_linear_forward(nn_real *out, const nn_real *in, const nn_real *w, const nn_real *b, int B,
                       int I, int O);
/* din [B, I] (may be NULL), dw [O, I], db [O] (may be NULL). */
void nn_linear_backward(nn_real *din, nn_real *dw, nn_real *db, const nn_real *dout,
                        const nn_real *in, const nn_real *w, int B, int I, int O);

/* ReLU in place is not used: out and in are separate so backward can read in. */
void nn_relu_forward(nn_real *out, const nn_real *in, size_t n);
void nn_relu_backward(nn_real *din, const nn_real *dout, const nn_real *in, size_t n);

/* Inverted dropout: mask[i] = 0 or 1/(1-p) drawn from rng; out = in * mask.
 * p == 0 or !training: mask = 1 (the rng is not advanced). */
void nn_dropout_forward(nn_real *out, nn_real *mask, const nn_real *in, size_t n, float p,
                        int training, nb_rng *rng);
void nn_dropout_backward(nn_real *din, const nn_real *dout, const nn_real *mask, size_t n);

/* LayerNorm over the last dimension (eps 1e-5, biased variance, like nn.LayerNorm):
 * out[N, A] = (x - mean) * rstd * w + b; mean [N] and rstd [N] are saved for backward. */
void nn_layernorm_forward(nn_real *out, nn_real *mean, nn_real *rstd, const nn_real *x,
                          const nn_real *w, const nn_real *b, int N, int A);
/* dx [N, A] (may be NULL), dw [A], db [A]; dout [N, A]. */
void nn_layernorm_backward(nn_real *dx, nn_real *dw, nn_real *db, const nn_real *dout,
                           const nn_real *x, const nn_real *mean, const nn_real *rstd,
                           const nn_real *w, int N, int A);

/* Multi-head self-attention (nn.MultiheadAttention's layout and arithmetic) over packed
 * sequences: sequence s is rows off[s] .. off[s+1]-1 of x [T, A], T = off[n_seq], every
 * sequence non-empty; attention stays inside a sequence (= a key padding mask), and with
 * `causal` row i of a sequence attends only rows <= i.
 *   qkv [T, 3A] = x . w_in^T + b_in  (w_in [3A, A]: q, k, v blocks; b_in [3A])
 *   per head h (hd = A/nh columns): probs = softmax(q_h k_h^T / sqrt(hd)) (masked entries 0)
 *   ctx [T, A] = probs . v_h per head, out [T, A] = ctx . w_out^T + b_out (w_out [A, A]).
 * qkv, probs (nn_mha_probs_size reals: nh L^2 per sequence) and ctx are saved for backward.
 * A must be a multiple of nh. */
size_t nn_mha_probs_size(const int *off, int n_seq, int nh);
void nn_mha_forward(nn_real *out, nn_real *qkv, nn_real *probs, nn_real *ctx, const nn_real *x,
                    const nn_real *w_in, const nn_real *b_in, const nn_real *w_out,
                    const nn_real *b_out, const int *off, int n_seq, int A, int nh, int causal);
/* dx [T, A] (may be NULL), dw_in [3A, A], db_in [3A], dw_out [A, A], db_out [A]; dout [T, A].
 * scratch: nn_mha_scratch_size reals (overwritten). */
size_t nn_mha_scratch_size(const int *off, int n_seq, int A);
void nn_mha_backward(nn_real *dx, nn_real *dw_in, nn_real *db_in, nn_real *dw_out, nn_real *db_out,
                     nn_real *scratch, const nn_real *dout, const nn_real *qkv,
                     const nn_real *probs, const nn_real *ctx, const nn_real *x,
                     const nn_real *w_in, const nn_real *w_out, const int *off, int n_seq, int A,
                     int nh, int causal);

/* Attention pooling with a learned query q [A] over packed sequences (as above):
 *   alpha_i = softmax_i(q . x_i / sqrt(A)) within the sequence, out[s, :] = sum_i alpha_i x_i.
 * out [n_seq, A]; alpha [T] saved for backward. */
void nn_attnpool_forward(nn_real *out, nn_real *alpha, const nn_real *x, const nn_real *q,
                         const int *off, int n_seq, int A);
/* dx [T, A] (may be NULL), dq [A]; dout [n_seq, A]. */
void nn_attnpool_backward(nn_real *dx, nn_real *dq, const nn_real *dout, const nn_real *alpha,
                          const nn_real *x, const nn_real *q, const int *off, int n_seq, int A);

/* One pre-layer-norm transformer block (nn.TransformerEncoderLayer(norm_first=True), ReLU,
 * no dropout) over packed sequences:
 *   h = x + MHA(LN1(x)),  out = h + ff2(relu(ff1(LN2(h)))),  ff1: A -> F, ff2: F -> A.
 * The 12 tensors in file order (PyTorch's shapes). */
typedef struct {
    nn_real *ln1_w, *ln1_b; /* [A], [A] */
    nn_real *w_in, *b_in;   /* [3A, A], [3A] */
    nn_real *w_out, *b_out; /* [A, A], [A] */
    nn_real *ln2_w, *ln2_b; /* [A], [A] */
    nn_real *ff1_w, *ff1_b; /* [F, A], [F] */
    nn_real *ff2_w, *ff2_b; /* [A, F], [A] */
} nn_tblock_params;
#define NN_TBLOCK_NTENSORS 12
/* act: nn_tblock_act_size reals, written by forward and read by backward. out [T, A]. */
size_t nn_tblock_act_size(const int *off, int n_seq, int A, int nh, int F);
void nn_tblock_forward(nn_real *out, nn_real *act, const nn_real *x, const nn_tblock_params *p,
                       const int *off, int n_seq, int A, int nh, int F, int causal);
/* dx [T, A] (required), g: the gradients (same layout as p); scratch: nn_tblock_scratch_size
 * reals (overwritten). */
size_t nn_tblock_scratch_size(const int *off, int n_seq, int A, int F);
void nn_tblock_backward(nn_real *dx, const nn_tblock_params *g, nn_real *scratch,
                        const nn_real *dout, const nn_real *act, const nn_real *x,
                        const nn_tblock_params *p, const int *off, int n_seq, int A, int nh, int F,
                        int causal);

/* BCEWithLogits with pos_weight, mean over all n elements (PyTorch's default reduction):
 *   l = -[pw * y * log s(x) + (1 - y) * log(1 - s(x))], computed stably for any |x|.
 * Returns the mean loss (accumulated in double). */
double nn_bce_forward(const nn_real *logits, const nn_real *targets, size_t n, float pos_weight);
/* dlogits += (s(x) * (pw*y + 1 - y) - pw*y) / n */
void nn_bce_backward(nn_real *dlogits, const nn_real *logits, const nn_real *targets, size_t n,
                     float pos_weight);

/* Both of the above in one pass over the logits (the training hot path): dlogits is
 * OVERWRITTEN (=, not +=) with the gradient; returns the mean loss. */
double nn_bce_forward_backward(nn_real *dlogits, const nn_real *logits, const nn_real *targets,
                               size_t n, float pos_weight);

/* Pairwise ranking losses (nn_rank.c) over n (positive, negative) pairs of logits; pair i
 * is logits[pos[i]] (s+) against logits[neg[i]] (s-), flat indices into the logits array
 * (e.g. b * S + column). With d = s+ - s-:
 *   BPR:    l = -log sigmoid(d) = softplus(-d)          (stable for any |d|)
 *   margin: l = max(0, margin - d)                      (PyTorch's margin_ranking_loss, y=1)
 * Forward returns the mean over the pairs (0 when n == 0), accumulated in double.
 * Backward ACCUMULATES scale * d(mean)/d(logits) into dlogits (scale: the term's weight in
 * the total loss); an index may repeat (the gradients add). */
double nn_bpr_forward(const nn_real *logits, const int64_t *pos, const int64_t *neg, size_t n);
void nn_bpr_backward(nn_real *dlogits, const nn_real *logits, const int64_t *pos,
                     const int64_t *neg, size_t n, double scale);
double nn_margin_forward(const nn_real *logits, const int64_t *pos, const int64_t *neg, size_t n,
                         double margin);
void nn_margin_backward(nn_real *dlogits, const nn_real *logits, const int64_t *pos,
                        const int64_t *neg, size_t n, double margin, double scale);

/* The same with every g[i] first multiplied by gscale (gradient clipping folded into the
 * update, so the clipped gradient is never written back). */
void nn_adam_update_scaled(nn_real *restrict p, const nn_real *restrict g, nn_real *restrict m,
                           nn_real *restrict v, size_t n, nn_real gscale, float lr, float b1,
                           float b2, float eps, long t);
/* L2 norm of g (accumulated in double). */
double nn_grad_norm(const nn_real *g, size_t n);

/* The output layer's forward, deterministic: out[B, S] = in[B, I] . w[r(s), :]^T + b[r(s)],
 * r(s) = rows ? rows[s] : s (b may be NULL). Every element is computed by the same sequence
 * of operations whatever B, S, the rows, the element's position or the thread count (sgemm's
 * bits depend on all of those), so a candidate head reproduces the full head's logits
 * bit for bit. Used by the model for the full and the candidate head. */
void nn_head_forward(nn_real *out, const nn_real *in, const nn_real *w, const nn_real *b,
                     const int32_t *rows, int B, int I, int S);

/* Threads used by the model's own parallel passes (output layer forward and backward, Adam,
 * gradient norm), >= 1, default 1. OpenBLAS is set to one thread (here and by
 * nn_model_init): the model splits its big gemms itself. Process-wide; call before
 * training, not concurrently with a forward/backward. */
void nn_set_threads(int n);
int nn_get_threads(void);

/* Runs fn(ctx, lo, hi, part) over [0, n) split into at most nn_get_threads() (and at most
 * NN_MAX_PARTS) contiguous parts whose bounds are multiples of align; on the calling thread
 * alone when n < min_n. Part k gets the k-th range (the split depends only on n, align and
 * the thread count). Returns the number of parts. */
#define NN_MAX_PARTS 16
int nn_par_for(void (*fn)(void *ctx, size_t lo, size_t hi, int part), void *ctx, size_t n,
               size_t min_n, size_t align);

/* ---- bounds on the output layer's logits, for skipping those that cannot matter ------- */

/* Per row p of the output weights w [P, D]: wnorm[p] >= ||w_p||_2 (computed in double and
 * rounded up to float), and, once a reference input is set, the reference table. Built once
 * from a loaded model and shared read-only by every thread (8-12 bytes per row). */
typedef struct {
    int P, D;
    float *wnorm; /* [P] */
    float *ref;   /* [P, 2] with a reference input: g_p = w_p . h0 + b_p, ||w_p||_2;
                        NULL without (nn_headq_set_ref) */
    float ref_c;  /* >= every row's error of g_p plus its bias term (see nn_headq.c) */
    float *ref_h; /* [D] h0 */
} nn_headq;

/* Builds hq from w [P, D] (row norms; the reference comes with nn_headq_set_ref). Returns
 * NB_OK, or NB_EINVAL (bad dimensions, or a non-finite weight: the message names the row);
 * hq owns its arrays afterwards (nn_headq_free, which is also safe on a zeroed or failed
 * hq). */
int nn_headq_build(nn_headq *hq, const nn_real *w, int P, int D, char *err, size_t errlen);
void nn_headq_free(nn_headq *hq);

/* Gives hq a reference input h0 [D] (typically the mean head input over some users) for
 * nn_headq_bounds_ref: precomputes w_p . h0 + b_p for every row (w, b: the same out.w and
 * out.b hq was built from). Replaces an earlier reference. Returns NB_OK, or NB_EINVAL
 * (h0 not finite, or a row overflowing) leaving hq without a reference. */
int nn_headq_set_ref(nn_headq *hq, const float *h0, const nn_real *w, const nn_real *b, char *err,
                     size_t errlen);
/* Rigorous bounds on the logits nn_head_forward (B = 1) would give, without reading w:
 * for s in 0..S-1, r = rows ? rows[s] : s, and x_s the float logit
 *   x_s = head(h, w_r) + b[r]   (then + extra[s] when extra is non-NULL and
 *                                has_extra[s]: the repeat term, one more float addition)
 * lo[s] <= x_s <= hi[s] is guaranteed (the argument is in nn_headq.c): from the reference,
 * x_s = (w_r . h0 + b_r) + (h - h0) . w_r, bounded with ||h - h0||_2 ||w_r||_2. Reads
 * 8 bytes per row. has_extra may be NULL (every extra[s] is added). h is [D] float (the
 * float build's head input). Returns 0, or -1 without a reference or with a non-finite h. */
int nn_headq_bounds_ref(float *lo, float *hi, const float *h, const nn_headq *hq,
                        const int32_t *rows, const float *extra, const uint8_t *has_extra, int S);

/* ---- the model ---------------------------------------------------------------------- */

typedef struct {
    int n_products;   /* P: embedding rows and output rows */
    int emb;          /* E, default 32 */
    int cnn_out;      /* C, default 128 */
    int kernel;       /* K, default 4 */
    int gru_hidden;   /* H, default 256 */
    int gru_layers;   /* L, default 2, 1..NN_MAX_LAYERS */
    int head;         /* D, default 256 */
    int max_orders;   /* N, default 5: orders per sample */
    int max_products; /* default 145: products per order (longer orders are truncated) */
    float dropout;    /* default 0.1: between GRU layers and after the head's ReLU */
    int rep_features; /* F: repeat-term feature count, 0 = no repeat term (--repeat off) */
    int rep_hidden;   /* R: repeat MLP hidden size (default 32) */
    /* the research log's other designs (issue 11; weight-file version 2 stores them, a
     * version-1 file loads with the defaults below, the CNN -> GRU model it holds) */
    int encoder;    /* NN_ENC_CNN (default) or NN_ENC_ATTENTION: self-attention over an
                         order's products (model dim cnn_out, `heads` heads, one block) then
                         attention pooling with a learned query */
    int order_info; /* 0 (default) or 1: NN_ORDER_INFO features of each order (day of week,
                         hour, days since the prior order) appended to its vector before the
                         sequence model; the caller fills nn_batch.ord_info */
    int sequence;   /* NN_SEQ_GRU (default) or NN_SEQ_TRANSFORMER: gru_layers pre-LN
                         transformer blocks of width gru_hidden (FFN 4 x gru_hidden), learned
                         positions counted back from the latest order, causal attention; the
                         latest order's output after a final LayerNorm is the user vector */
    int heads;      /* attention heads of the attention encoder and the transformer (4) */
} nn_config;

#define NN_ENC_CNN 0
#define NN_ENC_ATTENTION 1
#define NN_SEQ_GRU 0
#define NN_SEQ_TRANSFORMER 1
/* Order metadata features (scaled scalars, no parameters; model/WEIGHTS.md): sin and cos of
 * 2 pi dow / 7, sin and cos of 2 pi hour / 24, min(days_since, 30) / 30 (0 when missing)
 * and a missing flag (1 for a user's first order, whose days_since is unknown). */
#define NN_ORDER_INFO 6
/* The features of one order into f[NN_ORDER_INFO]; days_since < 0 means missing. No
 * failure cases (dow and hour are taken modulo 7 and 24). */
void nn_order_info(nn_real *f, int dow, int hour, int days_since);

/* The one list of nn_config's fields, in the order of the weight file header (WEIGHTS.md:
 * field i at byte 20 + 4 i) and of the checkpoint (the int fields in this order, then the
 * float ones). weights.c, train/checkpoint.c, nb-train's flags (config_from_flags) and the
 * report all walk it, so a new field is added here once. */
typedef struct {
    const char *name;           /* the field's name ("emb"), as in messages */
    size_t off;                 /* offsetof(nn_config, field) */
    int is_float;               /* a float field (dropout); the others are int */
    const char *flag;           /* nb-train's flag setting it ("cnn-out"; "cnn_out" in the report's
                           and the models row's hyper_params), NULL: set otherwise
                           (n_products from the data, rep_features from --repeat) */
    const char *const *choices; /* a word-valued flag: the words, value i = choices[i]
                                     (NULL-terminated); NULL for a number */
} nn_config_field;

/* The fields in a version-1 weight file (the first 12); version 2 has all of them. */
#define NN_CONFIG_NFIELDS_V1 12
#define NN_CONFIG_NFIELDS 16
extern const nn_config_field nn_config_fields[NN_CONFIG_NFIELDS];

/* Field f of c as a double (exact: ints and floats both fit). */
double nn_config_get(const nn_config *c, const nn_config_field *f);
/* Sets field f of c to v (converted to int or float). */
void nn_config_set(nn_config *c, const nn_config_field *f, double v);

/* Fills c with the research log's best setting for a catalogue of n_products. */
void nn_config_default(nn_config *c, int n_products);
/* Returns NB_OK or NB_EINVAL with a message naming the bad field. */
int nn_config_check(const nn_config *c, char *err, size_t errlen);

/* The number of parameters (reals) of a model of configuration c: the sum of its tensors'
 * sizes, from the one tensor list in nn_model.c. In double so that a configuration read
 * from a damaged file cannot overflow (HUGE_VAL when a shape does not fit an int); exact
 * below 2^53. c must pass nn_config_check. */
double nn_config_params(const nn_config *c);

/* Named views into one allocation (parameters, gradients, Adam m and v share the layout). */
typedef struct {
    nn_real *emb;                     /* [P, E]      N(0,1) init */
    nn_real *conv_w, *conv_b;         /* [C, E, K], [C] */
    nn_real *gru_w_ih[NN_MAX_LAYERS]; /* [3H, C] for layer 0, [3H, H] above */
    nn_real *gru_w_hh[NN_MAX_LAYERS]; /* [3H, H] */
    nn_real *gru_b_ih[NN_MAX_LAYERS]; /* [3H] */
    nn_real *gru_b_hh[NN_MAX_LAYERS]; /* [3H] */
    nn_real *fc_w, *fc_b;             /* [D, H], [D] */
    nn_real *out_w, *out_b;           /* [P, D], [P] */
    nn_real *rep_w1, *rep_b1;         /* [R, F], [R]   (only when rep_features > 0) */
    nn_real *rep_w2, *rep_b2;         /* [1, R], [1] */
    /* attention encoder (encoder == NN_ENC_ATTENTION, instead of conv; A = cnn_out) */
    nn_real *enc_w, *enc_b;         /* [A, E], [A]: product embedding -> model dim */
    nn_real *enc_w_in, *enc_b_in;   /* [3A, A], [3A] */
    nn_real *enc_w_out, *enc_b_out; /* [A, A], [A] */
    nn_real *enc_q;                 /* [A] the pooling query */
    /* transformer (sequence == NN_SEQ_TRANSFORMER, instead of the GRU; H = gru_hidden,
     * I0 = order vector width (+ NN_ORDER_INFO)) */
    nn_real *tf_w_in, *tf_b_in;         /* [H, I0], [H] */
    nn_real *tf_pos;                    /* [max_orders, H]: row p = the order p before the
                                             latest */
    nn_tblock_params tf[NN_MAX_LAYERS]; /* gru_layers blocks */
    nn_real *tf_lnf_w, *tf_lnf_b;       /* [H], [H] */
} nn_params;

/* The most tensors a model has (attention encoder + NN_MAX_LAYERS transformer blocks). */
#define NN_MAX_TENSORS (1 + 7 + 5 + NN_TBLOCK_NTENSORS * NN_MAX_LAYERS + 4 + 4)

/* The order in which tensors are laid out in the allocation and in the weight file. */
typedef struct {
    const char *name; /* e.g. "gru.w_ih.0" -- stable, used in messages and the file */
    size_t offset;    /* in reals from the start of the allocation */
    size_t size;      /* reals */
    int rows, cols;   /* 2-D view (rows*cols == size) for messages */
} nn_tensor_info;

/* One batch of samples. A sample is a user's last n_ord[b] orders (1..max_orders, oldest
 * first) and the products to score. Arrays are borrowed for the call.
 *   ord_off: [total_orders + 1] offsets into items; the orders of sample 0 come first.
 *   items:   product indices in add-to-cart order (at most max_products per order).
 *   S, rows: score only these S product indices for every sample (a candidate head);
 *            S == 0 means all P products (rows ignored).
 *   targets: [B, S or P] 0/1 labels, or NULL when only scoring.
 *   Repeat term (when the model has rep_features > 0): n_rep entries, entry i adds
 *   MLP(rep_feat[i, :]) to logit [rep_b[i], rep_col[i]] (rep_col indexes the scored
 *   columns: 0..S-1, or the product index when S == 0). Each (b, col) at most once. */
typedef struct {
    int B;
    const int *n_ord;
    const int *ord_off;
    const int32_t *items;
    int S;
    const int32_t *rows;
    const nn_real *targets;
    int n_rep;
    const int32_t *rep_b, *rep_col;
    const nn_real *rep_feat;
    const nn_real *ord_info; /* [total_orders, NN_ORDER_INFO] (nn_order_info), in ord_off's
                                  order; required when the model has order_info, else
                                  ignored */
} nn_batch;

typedef struct {
    nn_config cfg;
    size_t n_params;          /* total reals */
    nn_real *mem;             /* parameters, one allocation */
    nn_real *grad_mem;        /* gradients, same layout (allocated by nn_model_train_init) */
    nn_real *adam_m, *adam_v; /* Adam moments, same layout (idem) */
    long adam_t;              /* Adam steps taken */
    nn_params p, g;           /* named views into mem and grad_mem */
    int n_tensors;
    nn_tensor_info tensors[NN_MAX_TENSORS]; /* emb, conv 2 (or attention encoder 7), GRU 4/layer
                                               (or transformer 5 + 12/block), fc 2, out 2, rep 4 */
    nb_rng rng;                             /* dropout masks; part of the checkpointed state */
    float calib_a, calib_b; /* calibrated probability = sigmoid(calib_a * logit + calib_b);
                                  1 and 0 until a calibration is fitted (stored in the file) */
    int owns_mem;           /* 0 for a scoring clone that borrows another model's mem */
    int grad_stale;         /* private: grad_mem is logically zero but not yet cleared
                                  (nn_model_zero_grad defers the clearing to backward, which
                                  overwrites the big output-layer gradient instead) */
    nn_real *logits;        /* [B, S or P] after forward, in the batch's sample order */
    void *act;              /* activation buffers, private to nn_model.c */
} nn_model;

/* Allocates the model for c and initialises it as PyTorch does by default (uniform
 * +-1/sqrt(fan_in) for linear/conv/GRU weights and biases, fan_in = E*K for the conv, H for
 * the GRU, in_features for linear layers; N(0,1) for the embedding), drawing from an rng
 * seeded with `seed`, tensor by tensor in m->tensors[] order: emb, conv.w, conv.b, then per
 * GRU layer gru.w_ih.k, gru.w_hh.k, gru.b_ih.k, gru.b_hh.k, then fc.w, fc.b, out.w, out.b,
 * rep.w1, rep.b1, rep.w2, rep.b2 (the rep.* only when rep_features > 0); the attention
 * encoder's and the transformer's tensors take the place of conv.* and gru.* (names in
 * model/WEIGHTS.md; init: LayerNorm weights 1, attention biases 0, Xavier in_proj, the
 * rest uniform +-1/sqrt(fan_in); constants draw nothing). m->rng (dropout) is
 * seeded from a hash of `seed`. Returns NB_OK or NB_EINVAL (bad config, message names the
 * field); on error *m is zeroed (allocation failure aborts: common/nb_err.h). The model owns everything; free it with
 * nn_model_free. Without nn_model_train_init it can only score (no gradients). */
int nn_model_init(nn_model *m, const nn_config *c, uint64_t seed, char *err, size_t errlen);
/* The same allocation (and the same m->rng seeding) with every parameter left at zero: for a
 * loader that overwrites them all (nbw_load), which then skips drawing 15M random numbers. */
int nn_model_alloc(nn_model *m, const nn_config *c, uint64_t seed, char *err, size_t errlen);
/* Allocates gradients and Adam state (zeroed). Returns NB_OK. */
int nn_model_train_init(nn_model *m, char *err, size_t errlen);
void nn_model_free(nn_model *m);

/* Runs the network on b; fills m->logits ([B, S or P], rows in b's sample order).
 * The output layer uses nn_head_forward, so a candidate head's logits equal the full head's
 * columns bit for bit. Orders longer than max_products are cut to their first max_products
 * items; n_ord must be 1..max_orders (asserted, as are product indices).
 * training != 0 turns dropout on (masks drawn from m->rng); with training and gradients
 * allocated, the loss gradient is computed in the same pass as the loss. Returns the mean BCE loss (pos_weight) when b->targets is
 * non-NULL, else 0. Keeps the activations for nn_model_backward. Thread-compatible: one
 * model per thread (a scoring-only model may be shared read-only through nn_model_clone). */
double nn_model_forward(nn_model *m, const nn_batch *b, int training, float pos_weight);
/* The same forward (not training) stopped before the output layer, for a caller that scores
 * the head itself (infer/score.c's pruned path): *head_in receives the output layer's input
 * [B, D] (rows in b's sample order), *rep_v the repeat term's value of each of b's n_rep
 * entries (NULL without a repeat term), both owned by m and valid until its next forward.
 * nn_head_forward(head_in, ...) plus rep_v[i] added to column rep_col[i] gives exactly
 * nn_model_forward's logits. m->logits is NULL afterwards (no backward from here). */
void nn_model_forward_hidden(nn_model *m, const nn_batch *b, const nn_real **head_in,
                             const nn_real **rep_v);
/* Accumulates d(loss)/d(params) into m->grad_mem for the last forward (same b, targets
 * required). */
void nn_model_backward(nn_model *m, const nn_batch *b, float pos_weight);
/* The gradient of the loss w.r.t. the logits [B, S or P] that the next nn_model_backward
 * propagates, after a training forward with targets (gradients allocated): the BCE's, which
 * a caller adding a loss term (train/loop.c's ranking losses) may add to or replace in place
 * before calling backward. NULL after any other forward. Owned by m, valid until its next
 * forward. */
nn_real *nn_model_dlogits(nn_model *m);
/* Marks the gradients zero. The clearing is deferred to the next backward (which overwrites
 * the big out.w gradient instead of clearing and accumulating) or Adam step. */
void nn_model_zero_grad(nn_model *m);
/* Clips the gradient to max_norm (if max_norm > 0; clip_grad_norm_'s rule: scale by
 * max_norm / (norm + 1e-6) when that is < 1), then one Adam step over every parameter
 * (dense, like torch.optim.Adam, also with a candidate head). Returns the pre-clip gradient
 * norm. Split across nn_get_threads() threads. */
double nn_model_adam_step(nn_model *m, float lr, float b1, float b2, float eps, float max_norm);

/* A scoring-only model that shares m's parameters (read-only) but has its own activation
 * buffers: one per server thread. Free with nn_model_free (does not free shared params).
 * It also keeps a repacked copy of the GRU's recurrent weights (nn_gru_pack_hh), so m's
 * parameters must not change while the clone is used. Returns NB_OK. */
int nn_model_clone_for_scoring(nn_model *dst, const nn_model *src, char *err, size_t errlen);

#endif
