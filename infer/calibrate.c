/* calibrate.c -- calibration's apply half: the logistic function the calibrated
 * probabilities go through (the fit is train/calibration.c). */
#include "calibrate.h"

#include <math.h>

/* Returns 1 / (1 + exp(-z)) without overflow for large |z|. */
double tr_sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}
