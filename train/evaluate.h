/* evaluate.h -- the model's and the baselines' figures on a set of evaluation samples.
 *
 * The model is scored through tr_score_batch (score.h), the same path as tr_score_user.
 * Every metric comes from the metrics branch's accumulator (metrics.h), once over the full
 * catalogue and once restricted to each user's candidate set (when candidates are given):
 * then the ranking and the basket only hold products of the set.
 * Baskets: --basket threshold takes every product whose calibrated probability is >= the
 * threshold; expected-f1 takes the expected-F1-optimal prefix (expected_f1.h, never empty).
 * Both are always computed so that the report can show F1_example under each.
 * Baselines have no probabilities: their basket is every ranked product whose score (a
 * frequency share for G-/P-TopFreq, a decayed frequency for TIFU-KNN, all in [0, 1]) is
 * >= the same threshold.
 */
#ifndef TR_EVALUATE_H
#define TR_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "baselines.h"
#include "calibration.h"
#include "candgen.h"
#include "metrics.h"
#include "samples.h"
#include "score.h"
#include "topk.h"

#define TR_EVAL_TOPN 20 /* ranking length fed to the metrics (K = 10 and 20) */

/* The result of one evaluation: [0] full catalogue, [1] candidate sets. */
typedef struct {
    tr_metrics_result thr[2]; /* basket by threshold */
    tr_metrics_result ef1[2]; /* basket by expected F1 */
    double loss;              /* mean BCE (pos_weight) over samples x all products */
    int64_t n;                /* samples evaluated */
    double seconds;
} tr_eval_result;

/* The distinct products of order t into truth (capacity P), marking each in mark[P] (the
 * caller clears the marks). Returns the count. */
int tr_truth_of(const st_history *h, int64_t t, uint8_t *mark, int32_t *truth);

/* Evaluates the model (through scorer s) on smp[0..n). cands: candidate sets (NULL: full
 * catalogue only). want_ef1: also the expected-F1 baskets. rel_before/rel_after (may be
 * NULL): reliability tables over the candidate-set (or, without cands, full) pairs with
 * the raw (a=1, b=0) and the model's calibrated probabilities. pos_weight for the loss.
 * Under mpirun (tr_dist_size() > 1) it is collective: every rank must call it with the
 * same samples; each scores its slice and the accumulators are summed (dist.h).
 * Returns NB_OK or an error from scoring/metrics. */
int tr_eval_model(tr_scorer *s, const nn_model *m, const st_history *h, const tr_sample *smp, int n,
                  const tr_cands *cands, double threshold, int want_ef1, float pos_weight,
                  tr_reliability *rel_before, tr_reliability *rel_after, tr_eval_result *out,
                  char *err, size_t errlen);

/* Collects (logit, label) pairs for calibration from smp over their candidate sets (or all
 * products without cands), at most max_pairs of them (users in order until the cap).
 * *logit / *label are malloc'd (caller frees); *np receives the count. */
int tr_eval_calib_pairs(tr_scorer *s, const st_history *h, const tr_sample *smp, int n,
                        const tr_cands *cands, int64_t max_pairs, float **logit, uint8_t **label,
                        int64_t *np, char *err, size_t errlen);

/* TR_BL_TIFU runs tr_tifu_defaults; TR_BL_TIFU_TUNED the parameters tuned on validation users
 * (tifu_tune.h), a row of its own so that the default's figures stay comparable. */
enum { TR_BL_GTOP, TR_BL_PTOP, TR_BL_TIFU, TR_BL_TIFU_TUNED, TR_N_BL };
/* "G-TopFreq", "P-TopFreq", "TIFU-KNN", "TIFU-KNN tuned" */
extern const char *const tr_bl_names[TR_N_BL];

/* Evaluates the baselines on smp[0..n) (TIFU-KNN's neighbours from ref[0..n_ref), each with
 * its own target as history end). out[b] as for the model (ef1 left zero). tuned: the
 * parameters of the TR_BL_TIFU_TUNED row (NULL: that row is not evaluated and stays zero,
 * n = 0). Returns NB_OK or an error from the baselines. */
int tr_eval_baselines(const st_history *h, const tr_sample *smp, int n, const tr_sample *ref,
                      int n_ref, const tr_cands *cands, double threshold, int n_threads,
                      const tr_tifu_params *tuned, tr_eval_result out[TR_N_BL], char *err,
                      size_t errlen);

#endif
