/* nn_act.h -- the GRU's gate activations over whole rows, float build only.
 *
 * libm's scalar tanhf/expf were ~17% of a /recommend's instructions (2 layers x 5 steps x 3H
 * gates per user). These evaluate 8 lanes at a time (GCC vector extensions) with relative
 * error of a few ulp against libm (tests/test_nn.c), saturate exactly (sigmoid -> 0 / 1,
 * tanh -> -1 / 1 for large |x|), keep the sign of zero for tanh and pass NaN through.
 * The double build (-DNN_DOUBLE, gradient checks) keeps libm's exp/tanh in nn_gru.c.
 */
#ifndef NB_NN_ACT_H
#define NB_NN_ACT_H
#include <stddef.h>

/* x[i] = 1 / (1 + exp(-x[i])) for i < n, in place. No failure cases. */
void nn_sigmoid_f(float *x, size_t n);
/* x[i] = tanh(x[i]) for i < n, in place. No failure cases. */
void nn_tanh_f(float *x, size_t n);

#endif
