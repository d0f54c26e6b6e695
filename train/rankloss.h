/* rankloss.h -- the ranking term of --loss bce+bpr | bce+margin | bpr: negative sampling and
 * the loss added to (or, for bpr, replacing) the model's BCE on one training batch.
 *
 * Negative sampling: for every positive (sample b, product p with target 1), --negatives
 * products are drawn UNIFORMLY over the catalogue among the products that are not in b's
 * target basket (rejection sampling; at most TR_NEG_TRIES draws per negative, after which
 * that pair is left out -- only a basket covering nearly the whole catalogue gets there).
 * Uniform, as in the BPR paper (Rendle et al. 2009): it needs no statistics, is unbiased
 * over the catalogue, and does not depend on the candidate generator, which runs after
 * training. Popular products are not favoured, so most negatives are easy ones the BCE
 * term already pushes down.
 *
 * Determinism: the draws of a sample come from an rng seeded by a hash of (--seed, epoch,
 * the sample's position in the epoch's shuffled order), so they do not depend on batch
 * size slicing, MPI ranks, threads or a --resume, and no rng state needs checkpointing.
 *
 * Loss of a batch: L = BCE + W * R (bce+bpr, bce+margin), or L = R (bpr: the BCE gradient
 * is discarded), where R is the mean over the batch's pairs of softplus(-(s+ - s-)) (BPR)
 * or max(0, M - s+ + s-) (margin), on the logits (repeat term included).
 */
#ifndef TR_RANKLOSS_H
#define TR_RANKLOSS_H

#include <stddef.h>
#include <stdint.h>

#include "flags.h"
#include "nn.h"

#define TR_NEG_TRIES 100

/* The pairs of one batch, flat indices into its [B, P] logits. Reused across batches. */
typedef struct {
    int64_t *pos, *neg;
    size_t n, cap;
} tr_pairs;

/* Fills pr with the pairs of targets [B, P] (0/1): for each positive of row b, n_neg
 * uniform negatives, drawn from an rng seeded by (seed, epoch, first_sample + b). Returns
 * the number of pairs (pr->n). pr keeps its arrays (tr_pairs_free). */
size_t tr_neg_sample(tr_pairs *pr, const nn_real *targets, int B, int P, int n_neg, uint64_t seed,
                     int epoch, long first_sample);
void tr_pairs_free(tr_pairs *pr);

/* The ranking term for f->loss on the batch whose training forward m has just run (full
 * head, S == 0; targets [B, P]; first_sample: the batch's first sample's position in the
 * epoch's order): samples the pairs into pr, adds W x R's gradient to nn_model_dlogits(m)
 * (bpr: replaces the BCE gradient by R's), and returns the total loss given the forward's
 * BCE. f->loss == TR_LOSS_BCE returns bce untouched. */
double tr_rank_apply(tr_pairs *pr, nn_model *m, const nn_real *targets, int B, const tr_flags *f,
                     int epoch, long first_sample, double bce);

#endif
