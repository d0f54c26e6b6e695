/* calibrate.h -- calibration's apply half: a model's probability is
 * sigmoid(a * logit + b) with the (a, b) fitted by train/calibration.c (Platt scaling) and
 * stored in the weight file; tr_calibrate (score.h) applies it.
 */
#ifndef TR_CALIBRATE_H
#define TR_CALIBRATE_H

/* Numerically stable logistic function and its inverse (p clamped to [1e-7, 1 - 1e-7]). */
double tr_sigmoid(double z);
#endif
