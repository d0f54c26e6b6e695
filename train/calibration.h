/* calibration.h -- are the predicted probabilities honest, and a two-parameter fix.
 *
 * Reliability table: TR_CAL_BINS equal-width probability bins on [0, 1] (bin b holds
 * b/10 <= p < (b+1)/10, p = 1 in the last bin) with count, mean predicted probability and
 * observed frequency of label 1. Expected calibration error
 * ECE = sum_b (count_b / N) * |mean_pred_b - freq_b|.
 * Platt / temperature scaling: p = sigmoid(a * logit + b), a and b minimising the log loss
 * on validation pairs, by Newton's method in double with a halving line search. Targets are
 * Platt's smoothed labels (N+ + 1)/(N+ + 2) and 1/(N- + 2), which keeps the optimum finite
 * when the data are separable or all of one class.
 */
#ifndef TR_CALIBRATION_H
#define TR_CALIBRATION_H

#include <stddef.h>
#include <stdint.h>

#include "calibrate.h"

#define TR_CAL_BINS 10

typedef struct {
    int64_t count[TR_CAL_BINS];
    double sum_pred[TR_CAL_BINS];
    double sum_pos[TR_CAL_BINS];
} tr_reliability;

void tr_reliability_init(tr_reliability *r);
/* Adds one (probability, label) pair; label != 0 means positive. p is clamped to [0, 1]. */
void tr_reliability_add(tr_reliability *r, double p, int label);
/* ECE over all pairs added; 0 when none. */
double tr_reliability_ece(const tr_reliability *r);

/* Fits a, b on n (logit, label) pairs. Returns NB_OK, or NB_EINVAL (n == 0, a non-finite
 * logit: the message names its index), leaving *a = 1, *b = 0 on failure. Converges in a
 * few iterations; *iters (may be NULL) receives how many. */
int tr_platt_fit(const float *logit, const uint8_t *label, int64_t n, double *a, double *b,
                 int *iters, char *err, size_t errlen);

#endif
