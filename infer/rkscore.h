/* rkscore.h -- one user's ranking-stage scores: the single code path behind nb-train
 * --score-user and serving, so that both give the same bits. */
#ifndef TR_RKSCORE_H
#define TR_RKSCORE_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "ranker.h"
#include "rkfeat.h"
#include "score.h"

/* Builds user u's candidates and features into ru (rkfeat.h; the CNN->GRU probabilities
 * from sc over the products the features read, tr_rk_model_products; NULL sc: none) and,
 * when rk is given, the ranker's probabilities into out[ru->n] (capacity: n_products).
 * prob: [n_products] scratch; list: [n_products] scratch.
 * Returns NB_OK, NB_ENOTFOUND (no history before hist_end: cold start) or an error from
 * the scoring, the features or XGBoost. */
int tr_rk_score_user(tr_rk_user *ru, tr_ranker *rk, tr_scorer *sc, const st_history *h, int u,
                     int64_t hist_end, const tr_rk_pstats *ps, const int32_t *nbr_idx,
                     const float *nbr_val, int n_nbr, const int32_t *cos, int n_cos, float *prob,
                     int32_t *list, float *out, char *err, size_t errlen);

/* The shipped baseline's scores over ru's candidates, from their features, when the
 * selection kept a baseline (rktrain.h): "P-TopFreq" share (ties: fewer orders since the
 * last purchase, i.e. a small bonus), "TIFU-KNN" 0.9 * tifu_own + 0.1 * tifu_nbr (its
 * default alpha; stores from before the parameters were stored, whose features used the
 * defaults), "TIFU-KNN tuned" ru->tifu.alpha * tifu_own + (1 - alpha) * tifu_nbr (the
 * features computed with ru->tifu's parameters), "G-TopFreq" p_pop. Returns NB_OK or
 * NB_EINVAL (an unknown name). */
int tr_rk_baseline_scores(const tr_rk_user *ru, const char *name, float *out, char *err,
                          size_t errlen);
/* The same over n feature rows rows[n, TR_RK_NF] (the training job's), alpha the tuned
 * TIFU-KNN's (ru->tifu.alpha above). */
int tr_rk_baseline_rows(const float *rows, int64_t n, double alpha, const char *name, float *out,
                        char *err, size_t errlen);

/* A shipped baseline's served scores: s[i] = 1 / (1 + exp(-(a + b * s[i]))) in place, the
 * logistic calibration of its raw score fitted on the ranker's training rows (rktrain.h
 * tr_rk_report.cal_a/b), so that the basket's threshold and expected-F1 choice read
 * probabilities, not raw shares or TIFU-KNN scores. With b > 0 the order is the raw one,
 * up to float ties (broken by product index, as every tie is). */
void tr_rk_calibrate(float *s, int64_t n, double a, double b);

#endif
