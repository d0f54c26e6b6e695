/* tifu_tune.h -- TIFU-KNN's own parameters tuned on held-out targets (as Hu et al., SIGIR
 * 2020, tune theirs on validation users), so that the baseline the model must beat is the
 * tuned one. The tuner's "validation samples" are whatever targets it is given; nb-train
 * gives it tr_tifu_tuning_set's: the validation users, and training users at the order before
 * their target; and it uses the tuned parameters only when tr_tifu_crossfit (below) says that
 * tuning beats the defaults out of sample.
 *
 * Search: coordinate descent over (m, r_b, r_g) with the full (k, alpha) grid at every point
 * visited. One neighbour search per (m, r_b, r_g) -- the user vectors depend only on those
 * three -- gives each validation user its k_max nearest reference users in distance order;
 * every k of the grid is a prefix of that list and every alpha another blend of the same two
 * parts, so a (k, alpha) point costs one top-10 ranking, not one TIFU-KNN run. The descent
 * starts at tr_tifu_defaults' (m, r_b, r_g), tries every value of m, then of r_b, then of
 * r_g, each time moving to the best point seen, and repeats the sweep (at most 3 times) until
 * a sweep moves nowhere: ~20 of the 75 (m, r_b, r_g) points of the default grid are visited
 * instead of all (on nb-synth and Ta-Feng it found the same point as the full grid).
 * Selection: the highest validation R@10 (the figure nb-train's early stopping uses), ties by
 * NDCG@10, then the default parameters, then the point visited first. Deterministic: one
 * thread, fixed orders, no randomness.
 *
 * Bounded cost: at most TR_TIFU_TUNE_MAX_VAL validation samples and TR_TIFU_TUNE_MAX_REF
 * reference samples are used, each an evenly strided subsample (indices floor(i * n / cap)),
 * so that full-scale data (206k users) costs the same as ~20,000 training users.
 *
 * What the tuner reads: the validation samples (history and target), the reference samples'
 * histories up to their targets, and the caller's popularity (for the fill of short lists;
 * tr_popularity_build counts ST_PRIOR orders only, never a train/test target). It is never
 * given the test samples.
 *
 * The scores are computed as tr_tifu_score computes them except for the order in which the
 * neighbours' values are summed (distance order here, heap order there), so the last bits of
 * a score -- and hence an exact tie -- can differ; the chosen parameters are then evaluated on
 * the test users by tr_tifu_build / tr_tifu_score themselves.
 */
#ifndef TR_TIFU_TUNE_H
#define TR_TIFU_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "baselines.h"
#include "history.h"
#include "samples.h"

#define TR_TIFU_TUNE_MAX_VAL 2000  /* validation samples used at most */
#define TR_TIFU_TUNE_MAX_REF 20000 /* reference samples used at most */
#define TR_TIFU_GRID_MAX 8         /* values per parameter at most */

/* The values tried per parameter (the full cross product is searched). */
typedef struct {
    int n_m, n_rb, n_rg, n_k, n_alpha;
    int m[TR_TIFU_GRID_MAX];
    double r_b[TR_TIFU_GRID_MAX];
    double r_g[TR_TIFU_GRID_MAX];
    int k[TR_TIFU_GRID_MAX];
    double alpha[TR_TIFU_GRID_MAX];
} tr_tifu_grid;

/* The default grid (1,350 points): m {3, 7, 11}, r_b {0.6, 0.7, 0.8, 0.9, 1.0}, r_g {0.6,
 * 0.7, 0.8, 0.9, 1.0}, k {100, 300, 900}, alpha {0.1, 0.3, 0.5, 0.7, 0.9, 1.0}: the paper's
 * ranges, coarser, holding tr_tifu_defaults' point (so the tuned validation R@10 is never
 * below the default's). */
void tr_tifu_grid_default(tr_tifu_grid *g);

typedef struct {
    tr_tifu_params best;        /* the chosen parameters */
    double val_r10, val_ndcg10; /* the chosen parameters' figures on the tuning users */
    double def_r10, def_ndcg10; /* tr_tifu_defaults' figures there (-1 when not in the grid) */
    int n_configs;              /* grid points evaluated */
    int n_grid;                 /* grid points in all */
    int n_val, n_ref;           /* validation / reference samples used (after the caps) */
    double seconds;             /* wall clock */
    double cpu_seconds;         /* process CPU time over the call (the tuner is one thread) */
} tr_tifu_tune_result;

/* Tunes TIFU-KNN on validation samples val[0..n_val) with neighbours from ref[0..n_ref)
 * (each reference sample's history ends at its target, as in tr_eval_baselines), over grid g
 * (NULL: tr_tifu_grid_default), at most max_val / max_ref samples of each (<= 0: the
 * TR_TIFU_TUNE_* caps). pop: popularity over h for the fill (NULL: built here by
 * tr_popularity_build, as tr_eval_baselines builds it). With no validation samples the
 * result is tr_tifu_defaults with figures 0. Returns NB_OK and *out, or NB_EINVAL (a bad grid
 * value, a sample out of range, pop / h catalogue mismatch). */
int tr_tifu_tune(const st_history *h, const tr_popularity *pop, const tr_sample *val, int n_val,
                 const tr_sample *ref, int n_ref, const tr_tifu_grid *g, int max_val, int max_ref,
                 tr_tifu_tune_result *out, char *err, size_t errlen);

/* The samples TIFU-KNN is tuned on: the validation samples val[0..n_val) at their targets
 * and training users at an order before their target, at most cap in all (<= 0:
 * TR_TIFU_TUNE_MAX_VAL). Every validation sample comes first (an evenly strided cap of them
 * if they alone exceed it), then an evenly strided subsample of the training users fills the
 * cap, one sample per user: back steps of tr_earlier_order (split.h; back >= 1) from the
 * target of its last sample in train (tr_samples_build pushes a user's samples together, its
 * train order last); a user with no such order is left out.
 * nb-train's back: 1, or 2 when the ranking stage also trains on the order before the target
 * (--ranker-rows prev|both), so that the tuning targets are never its rows' labels.
 *
 * Why training users: tuned on a few hundred validation users alone, the best of the grid's
 * points is mostly their noise (dunnhumby-carbo: +.023 R@10 over the defaults on its 257
 * validation users, -.008 on the test users; bench/RESULTS.md). Why their earlier order: the
 * ranking stage's training rows are their target orders, and its TIFU-KNN features use the
 * tuned parameters; tuned on the earlier order, those parameters never saw the rows' labels
 * (the earlier order's items are history to those rows anyway). The tuner also excludes each
 * user from its own neighbours. Returns the count and *out (a new array the caller frees;
 * never NULL), and *n_from_val, how many of them are validation samples (the first). */
int tr_tifu_tuning_set(const st_history *h, const tr_sample *val, int n_val,
                       const tr_sample *train, int n_train, int back, int cap, tr_sample **out,
                       int *n_from_val);

/* The tuning's signal check. The tuning samples are split by position (even, odd), TIFU-KNN
 * is tuned on each half (tr_tifu_tune, default grid and caps), and each half's parameters
 * are scored on the other half's samples, beside tr_tifu_defaults on the same samples (the
 * whole tuning's figure for them: it scored the defaults on exactly these samples). The
 * sum over both halves says whether tuning beats the defaults out of sample: the tuned
 * point's own figure is the best of hundreds of points on the same users, biased upwards
 * (dunnhumby-carbo: +.011 R@10 over the defaults in sample; bench/RESULTS.md).
 * Why halves: the same halves give the ranking stage's safeguard its out-of-sample tuned
 * TIFU-KNN on validation users (rktrain.h tifu_half). */
typedef struct {
    tr_tifu_params half[2];       /* tuned on the even / odd positions of the samples */
    double r10, ndcg10;           /* each half's parameters on the other half: mean over all */
    double def_r10, def_ndcg10;   /* tr_tifu_defaults on the same samples (full's) */
    int n;                        /* samples scored (every tuning sample, after the cap) */
    double seconds;               /* wall clock of the two tunings and two scorings */
} tr_tifu_crossfit_result;

/* Tunes on each half of tune[0..n_tune) (neighbours from ref[0..n_ref), as tr_tifu_tune)
 * and scores as described above; full is tr_tifu_tune's result on the same samples and
 * reference with the default grid and caps, whose figures for the defaults are taken. With
 * fewer than 2 samples both halves get the defaults and every figure is 0. pop as in
 * tr_tifu_tune. Returns NB_OK and *out, NB_EINVAL when full is not such a result (another
 * sample count, or no figure for the defaults), or tr_tifu_tune's errors. The caller owns
 * the samples and full; nothing is kept. */
int tr_tifu_crossfit(const st_history *h, const tr_popularity *pop, const tr_sample *tune,
                     int n_tune, const tr_sample *ref, int n_ref, const tr_tifu_tune_result *full,
                     tr_tifu_crossfit_result *out, char *err, size_t errlen);

#endif
