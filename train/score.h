/* score.h -- score one user's next basket. The one code path that nb-train's evaluation and
 * nb-serve both use, so that served scores are exactly the evaluated ones.
 *
 * A user's input is the orders of h that precede `hist_end` (an order index into h's order
 * arrays, within the user's range [user_order_off[u], user_order_off[u+1]] ) and have items:
 * the last max_orders of them go through the CNN -> GRU, and (with the repeat term) the
 * whole history feeds the repeat features. For evaluation hist_end is the target order; for
 * serving it is the user's end (every known order is history).
 */
#ifndef TR_SCORE_H
#define TR_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "nn.h"

typedef struct tr_scorer tr_scorer;

/* Creates a scorer around m (borrowed; a model or a scoring clone, one per thread).
 * Returns NB_OK and *s (caller frees with tr_scorer_free), or NB_ENOMEM. */
int tr_scorer_new(tr_scorer **s, nn_model *m, char *err, size_t errlen);
void tr_scorer_free(tr_scorer *s);

/* Scores user u (index into h) for the order after history [.., hist_end).
 * cand: n_cand product indices to score (any order), or NULL/0 for all products.
 * prob: [n_cand or P] receives calibrated probabilities sigmoid(a*logit+b), aligned with
 * cand. Returns NB_OK, or NB_ENOTFOUND when the user has no order with items before
 * hist_end (a cold-start user: the caller falls back to popularity). */
int tr_score_user(tr_scorer *s, const st_history *h, int u, int64_t hist_end,
                  const int32_t *cand, int n_cand, float *prob, char *err, size_t errlen);

/* ---- additions by the train branch ------------------------------------------------------ */
#include "repfeat.h"
#include "samples.h"

/* A model with the repeat term (cfg.rep_features > 0) needs the global product statistics
 * it was trained with (tr_product_stats_load in the server). ps is borrowed and must outlive
 * s. Returns NB_OK, or NB_EMISMATCH when ps's catalogue size differs from the model's.
 * (Implemented in repctx.c.) */
int tr_scorer_set_stats(tr_scorer *s, const tr_product_stats *ps, char *err, size_t errlen);

/* The general form behind tr_scorer_set_stats: fn(ctx, ...) adds each sample's repeat
 * features; free_ctx (may be NULL) is called on ctx when s is freed or the hook replaced. */
void tr_scorer_set_rep(tr_scorer *s, tr_rep_fn fn, void *ctx, void (*free_ctx)(void *));

/* The batched form of tr_score_user used by evaluation: samples smp[0..B) (user, hist_end),
 * every product scored. logit [B, P] (may be NULL) receives the raw logits, prob [B, P]
 * (may be NULL) the calibrated probabilities, each exactly as tr_score_user computes them
 * up to BLAS summation order. Every sample must have input. Returns NB_OK or an error from
 * the repeat features. */
int tr_score_batch(tr_scorer *s, const st_history *h, const tr_sample *smp, int B,
                   float *logit, float *prob, char *err, size_t errlen);

/* The calibrated probability of one logit under m's calibration: the single formula. */
float tr_calibrate(const nn_model *m, float logit);

#endif
