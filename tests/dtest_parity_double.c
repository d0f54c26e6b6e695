/* dtest_parity_double.c -- tests/test_parity.c against the double-precision build of the
 * model (model/nn_*.c compiled with -DNN_DOUBLE; this becomes build/tests/test_parity_double).
 * PyTorch's reference is float64 rounded once to float32, so a correct double implementation
 * must agree to that rounding (~6e-8 relative); the tolerance is tightened from 1e-4 to 1e-6,
 * which a formula error the float build's tolerance might hide would not pass. */
#define PARITY_TOL 1e-6
#include "test_parity.c"
