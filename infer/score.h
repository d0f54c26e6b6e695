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

#include "calibrate.h"
#include "history.h"
#include "nn.h"
#include "repfeat.h"
#include "samples.h"

typedef struct tr_scorer tr_scorer;

/* Creates a scorer around m (borrowed; a model or a scoring clone, one per thread).
 * Returns NB_OK and *s (caller frees with tr_scorer_free); allocation failure aborts
 * (common/nb_err.h), so there is no other outcome. */
int tr_scorer_new(tr_scorer **s, nn_model *m, char *err, size_t errlen);
void tr_scorer_free(tr_scorer *s);

/* Scores user u (index into h) for the order after history [.., hist_end).
 * cand: n_cand product indices to score (any order), or NULL/0 for all products.
 * prob: [n_cand or P] receives calibrated probabilities sigmoid(a*logit+b), aligned with
 * cand. Returns NB_OK, or NB_ENOTFOUND when the user has no order with items before
 * hist_end (a cold-start user: the caller falls back to popularity). */
int tr_score_user(tr_scorer *s, const st_history *h, int u, int64_t hist_end, const int32_t *cand,
                  int n_cand, float *prob, char *err, size_t errlen);

/* ---- the repeat term and batched scoring ---------------------------------------------- */

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
int tr_score_batch(tr_scorer *s, const st_history *h, const tr_sample *smp, int B, float *logit,
                   float *prob, char *err, size_t errlen);

/* The calibrated probability of one logit under m's calibration: the single formula. */
float tr_calibrate(const nn_model *m, float logit);

/* ---- the pruned path (serving) -------------------------------------------------------------- */

/* Gives s the bounding tables of its model's output layer (nn_headq_build from the same
 * out.w, plus a reference input: tr_headq_reference / nn_headq_set_ref; borrowed, must
 * outlive s, may be shared by many scorers). Without them tr_score_user_top scores every
 * candidate. */
void tr_scorer_set_headq(tr_scorer *s, const nn_headq *hq);

/* The output layer's input [cfg.head] for user u (as tr_score_user would use it) into out.
 * Returns as tr_score_user. */
int tr_score_user_hidden(tr_scorer *s, const st_history *h, int u, int64_t hist_end, float *out,
                         char *err, size_t errlen);

/* A source of users for tr_headq_reference_from: sets *h, *u and *hist_end to the next user
 * and returns 1, returns 0 when there is none left, or a negative NB_E* (message in err).
 * *h stays valid until the next call. */
typedef int (*tr_user_next_fn)(void *ctx, const st_history **h, int *u, int64_t *hist_end,
                               char *err, size_t errlen);

/* Sets hq's reference input (nn_headq_set_ref) to the mean output-layer input of the users
 * that next yields, scored with s, whose model hq was built from; users without history are
 * skipped, and it stops after max_users with history. Returns NB_OK (no user with history:
 * hq left without a reference) or an error from next or the scoring. */
int tr_headq_reference_from(nn_headq *hq, tr_scorer *s, tr_user_next_fn next, void *ctx,
                            int max_users, char *err, size_t errlen);
/* tr_headq_reference_from over every user of h, each at the end of its history. */
int tr_headq_reference(nn_headq *hq, tr_scorer *s, const st_history *h, char *err, size_t errlen);

/* tr_score_user restricted to what a response can show: the m best candidates (probability
 * descending, ties by lower product index) and every candidate whose probability is >= thr
 * (thr = INFINITY: none). Same inputs as tr_score_user; writes n_out <= n_cand (or P)
 * survivors into idx (product indices) and prob, in candidate order. Among them are those
 * m best and all >= thr, each with exactly the bits tr_score_user gives it; every
 * candidate left out ranks after the m-th best and is below thr. Candidates are only left
 * out when the bounds prove it (see score.c); otherwise (no headq, calibration slope
 * <= 0, n_cand <= m, a check failing) all of them are returned. idx and prob need room for
 * n_cand (or P) entries; idx may be cand itself (written last). Returns as tr_score_user
 * (NB_ENOTFOUND: cold start). */
int tr_score_user_top(tr_scorer *s, const st_history *h, int u, int64_t hist_end,
                      const int32_t *cand, int n_cand, int m, double thr, int32_t *idx, float *prob,
                      int *n_out, char *err, size_t errlen);

/* tr_score_user_top where the first n_keep candidates (cand != NULL) are always returned
 * exactly, in front, and the m best / >= thr rule applies to the others, cand[n_keep..n_cand):
 * every one of those left out ranks after the m-th best of them and is below thr. The
 * ranking stage uses it for the cosine candidates, of which only the best few are picked,
 * while every product the features read keeps its exact probability. Returns as
 * tr_score_user_top (NB_EINVAL also when n_keep is outside [0, n_cand]). */
int tr_score_user_top_keep(tr_scorer *s, const st_history *h, int u, int64_t hist_end,
                           const int32_t *cand, int n_cand, int n_keep, int m, double thr,
                           int32_t *idx, float *prob, int *n_out, char *err, size_t errlen);

/* Totals over s's tr_score_user_top calls since it was created. */
typedef struct {
    long calls;        /* calls that scored a user */
    long candidates;   /* candidates they were given */
    long survivors;    /* candidates scored exactly (returned) */
    long pruned_calls; /* calls that left at least one candidate out */
    long fallbacks;    /* calls whose final check failed, so every candidate was scored */
} tr_prune_stats;
void tr_scorer_prune_stats(const tr_scorer *s, tr_prune_stats *st);

#endif
