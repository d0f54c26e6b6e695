/* samples.h -- training/evaluation samples and the batches built from them.
 *
 * A sample is (user u, target order t): the input is the last <= max_orders orders of u
 * before t that have items (oldest first, each truncated to max_products items in cart
 * order), the label is the set of t's products. Orders are indices into the st_history
 * order arrays.
 */
#ifndef TR_SAMPLES_H
#define TR_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "nn.h"
#include "repfeat.h"

typedef struct {
    int32_t user;   /* index into h */
    int64_t target; /* order index of the target (or the history end when scoring) */
} tr_sample;

/* Fills idx[0..] with the order indices of u's input for the order at hist_end: the last
 * <= max_orders orders in [user start, hist_end) having items, oldest first. Returns how
 * many (0: a cold-start user). */
int tr_input_orders(const st_history *h, int u, int64_t hist_end, int max_orders, int64_t *idx);

/* Repeat-term features for a batch: called once per sample with (h, u, hist_end); must
 * append rows for that sample by calling tr_batch_add_rep. NULL when the model has none. */
typedef struct tr_batch tr_batch;
typedef int (*tr_rep_fn)(void *ctx, tr_batch *tb, int b, const st_history *h, int u,
                         int64_t hist_end, char *err, size_t errlen);

/* Reusable batch buffers and the nn_batch that points into them. */
struct tr_batch {
    nn_batch nb;
    int cap_B, cap_ord;
    size_t cap_items, cap_targets, cap_rep, cap_rep_feat;
    int *n_ord, *ord_off;
    int32_t *items;
    nn_real *ord_info; /* [orders, NN_ORDER_INFO] when the model has order_info */
    size_t cap_info;
    nn_real *targets;
    int32_t *rep_b, *rep_col;
    nn_real *rep_feat;
    int n_rep, n_feat;
    int64_t *scratch_ord; /* [max_orders] */
    int32_t *col_of;      /* [P] product -> scored column, -1 (only with rows) */
    int col_P;
};

/* Frees tb's buffers (tb itself is the caller's). */
void tr_batch_free(tr_batch *tb);

/* Fills tb for samples smp[0..B) under config c. rows/S: the scored products (S == 0: all
 * of them). with_targets: also the 0/1 label matrix [B, P] (requires S == 0). rep/ctx: the
 * repeat-feature callback (NULL for none). Every sample must have input (tr_input_orders
 * > 0). Returns NB_OK, or the callback's error. tb keeps ownership of its buffers. */
int tr_batch_fill(tr_batch *tb, const st_history *h, const tr_sample *smp, int B,
                  const nn_config *c, const int32_t *rows, int S, int with_targets, tr_rep_fn rep,
                  void *ctx, char *err, size_t errlen);

/* Appends one repeat entry (sample b, product index p, features feat[n_feat]) to tb; a
 * product not among the scored columns is skipped. For use inside a tr_rep_fn. */
void tr_batch_add_rep(tr_batch *tb, int b, int32_t p, const float *feat, int n_feat);

/* ---- the repeat-feature callback used by training, evaluation and scoring ----------- */
typedef struct {
    tr_features f;              /* owned scratch (tr_rep_ctx_init / _free); after a call,
                                     the features of (last_h, last_u, last_end) */
    const tr_product_stats *ps; /* borrowed */
    const st_history *last_h;   /* the last successful call's history (NULL: none yet or
                                     the last call failed); the caller may reset it */
    int last_u;
    int64_t last_end;
} tr_rep_ctx;
/* Returns NB_OK or NB_EINVAL. ctx borrows ps; free with tr_rep_ctx_free. */
int tr_rep_ctx_init(tr_rep_ctx *ctx, const tr_product_stats *ps, char *err, size_t errlen);
void tr_rep_ctx_free(tr_rep_ctx *ctx);
/* A tr_rep_fn (ctx is a tr_rep_ctx *): adds the features of every product the user bought
 * before hist_end that is among the batch's scored products, and leaves them in ctx->f
 * (the server's explanations read them there, so that a request computes them once).
 * Returns NB_OK or tr_features_user's error. */
int tr_rep_cb(void *ctx, tr_batch *tb, int b, const st_history *h, int u, int64_t hist_end,
              char *err, size_t errlen);

#endif
