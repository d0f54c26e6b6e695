/* repinit.h -- a starting point for the repeat model that already ranks exactly like P-TopFreq.
 *
 * With the default uniform init the repeat term starts as noise and, at the default learning
 * rate, needs more epochs than the default budget to learn that a product the user bought
 * often is likely again (bench/quality.sh: on the built-in nb-synth data the model stayed below
 * P-TopFreq). tr_rep_init_prior therefore
 *   - makes hidden unit 0 of the repeat MLP compute share + TIEBREAK * recency (w1 row 0,
 *     b1[0] = 0; both features are >= 0 so the relu passes it through) and gives it the output
 *     weight TR_REP_INIT_SLOPE, with output bias TR_REP_INIT_BIAS. TIEBREAK (0.009) is below
 *     the smallest step of share (1/n, n <= ~100 orders) times the largest recency gap (< 1),
 *     so it only orders products of equal share: the later-bought first, P-TopFreq's tie rule;
 *     the other hidden units keep their random input weights but get output weight 0.
 *     SLOPE and BIAS keep the starting logits within [1, ~6]: ranking is by calibrated
 *     probability (float), and sigmoid saturates to 1.0f above ~17, which would turn share
 *     differences into ties;
 *   - makes hidden unit 1 pass the product's log popularity (TR_F_PROD_POP, in [0, 1]) with
 *     output weight -1, and sets the output layer to out.w = 0, out.b[p] = log_pop[p] - 1: a
 *     never-bought product starts at logit log_pop - 1 in [-1, 0] (ranked by popularity, like
 *     P-TopFreq's fill), and on a bought product out.b and unit 1 cancel (up to float rounding,
 *     ~1e-7), leaving BIAS - 1 + SLOPE * (share + TIEBREAK * recency) > 0.
 * The untrained model ("epoch 0") therefore ranks a user's products exactly as P-TopFreq does
 * (then the never-bought products by popularity, as its fill), up to float resolution.
 * train/loop.c evaluates that starting point on the validation users and keeps it when no trained epoch beats it: the
 * model never ships worse than its prior on validation. Training then adjusts every weight;
 * the zero output weights get their gradient from the first step (d out.w = dlogits x d1,
 * d rep.w2 = dv x h1), and the layers below them from the second.
 * Only models with a repeat term are touched: with --repeat off the model keeps PyTorch's
 * init, exactly the research log's.
 */
#ifndef TR_REPINIT_H
#define TR_REPINIT_H

#include "nn.h"
#include "repfeat.h"

#define TR_REP_INIT_SLOPE 5.0
#define TR_REP_INIT_BIAS 1.0
#define TR_REP_INIT_TIEBREAK 0.009

/* Overwrites rows 0-1 of rep.w1, rep.b1[0..1], rep.w2, rep.b2, out.w and out.b of m as
 * described above, with ps the product statistics the model is trained with (borrowed; its
 * n_products must be the model's). Needs rep_hidden >= 2. Does nothing when m has no repeat
 * term. Deterministic (no random numbers). m keeps ownership. */
void tr_rep_init_prior(nn_model *m, const tr_product_stats *ps);

#endif
