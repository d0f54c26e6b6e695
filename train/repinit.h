/* repinit.h -- a starting point for the repeat MLP that already ranks like P-TopFreq.
 *
 * With the default uniform init the repeat term starts as noise and, at the default learning
 * rate, needs more epochs than the default budget to learn that a product the user bought
 * often is likely again (bench/quality.sh: on the built-in nb-synth data the model stayed below
 * P-TopFreq). tr_rep_init_prior makes hidden unit 0 pass TR_F_SHARE through unchanged
 * (w1 row 0 = e_share, b1[0] = 0, so relu gives share >= 0) and gives it the output weight
 * TR_REP_INIT_SLOPE, with output bias TR_REP_INIT_BIAS: at epoch 0 the repeat logit is
 * BIAS + SLOPE * share + (the other units' small random contribution), i.e. bought products
 * rank above unbought ones and among themselves by purchase share -- P-TopFreq's order.
 * Training then adjusts every weight as before; the other hidden units keep their random init.
 */
#ifndef TR_REPINIT_H
#define TR_REPINIT_H

#include "nn.h"

#define TR_REP_INIT_SLOPE 20.0
#define TR_REP_INIT_BIAS 3.0

/* Overwrites row 0 of rep.w1, rep.b1[0], rep.w2[0] and rep.b2 of m as described above. Does
 * nothing when m has no repeat term. Deterministic (no random numbers). m keeps ownership. */
void tr_rep_init_prior(nn_model *m);

#endif
