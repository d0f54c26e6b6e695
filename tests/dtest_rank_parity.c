/* dtest_rank_parity.c -- the ranking losses against PyTorch (rank_parity.h) in the double
 * build (model/nn_*.c with -DNN_DOUBLE; becomes build/tests/test_rank_parity): the torch
 * side is float64, so the tolerance is 1e-6 instead of the float build's 1e-4. */
#include "rank_parity.h"

static int test_rank_parity_double(void) { return rank_parity(1e-6); }

int main(void) {
    T_RUN(test_rank_parity_double);
    return t_summary();
}
