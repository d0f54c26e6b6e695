/* test_conv_pool.c -- the 8-lane max-pool of nn_conv_forward and nn_relu_forward against
 * scalar references, with many ties (first maximum must win), all-negative channels
 * (argmax -1), NaN and -0 inputs to the ReLU, and channel counts that leave a tail. */
#include "harness.h"
#include "nn.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* With E = K = 1 the conv's pre-activation is exactly in[p] * w[c] (small integers and
 * halves: no rounding), so the reference below sees the same numbers. */
static int test_pool_matches_scalar(void) {
    nb_rng r;
    nb_rng_seed(&r, 3);
    const int Cs[] = {8, 21, 128};
    for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++) {
        int C = Cs[ci], n_ord = 40, off[41];
        off[0] = 0;
        for (int o = 0; o < n_ord; o++) off[o + 1] = off[o] + 1 + (int)nb_rng_below(&r, 12);
        int T = off[n_ord];
        float *in = malloc((size_t)T * sizeof *in), *w = malloc((size_t)C * sizeof *w);
        float *b = malloc((size_t)C * sizeof *b), *out = malloc((size_t)n_ord * C * sizeof *out);
        int *am = malloc((size_t)n_ord * C * sizeof *am);
        for (int t = 0; t < T; t++) in[t] = (float)((int)nb_rng_below(&r, 7) - 3); /* ties */
        for (int c = 0; c < C; c++) {
            w[c] = (float)((int)nb_rng_below(&r, 5) - 2) * 0.5f;
            b[c] = (float)((int)nb_rng_below(&r, 5) - 2) * 0.5f;
        }
        float *scr = malloc(nn_conv_scratch_size(off, n_ord, 1, C, 1) * sizeof *scr);
        nn_conv_forward(out, am, scr, in, off, w, b, n_ord, 1, C, 1);
        int bad = 0, n_tie = 0, n_off = 0;
        for (int o = 0; o < n_ord && !bad; o++)
            for (int c = 0; c < C && !bad; c++) {
                float m = in[off[o]] * w[c];
                int a = 0, ties = 0;
                for (int p = 1; p < off[o + 1] - off[o]; p++) {
                    float v = in[off[o] + p] * w[c];
                    if (v > m) {
                        m = v;
                        a = p;
                        ties = 0;
                    } else if (v == m)
                        ties = 1;
                }
                float v = m + b[c];
                float wy = v > 0 ? v : 0;
                int wa = v > 0 ? a : -1;
                n_tie += ties && wa >= 0;
                n_off += wa < 0;
                size_t k = (size_t)o * C + c;
                if (out[k] != wy || am[k] != wa) bad = 1;
            }
        free(in);
        free(w);
        free(b);
        free(out);
        free(am);
        free(scr);
        T_ASSERT(!bad, "C=%d: pooled value or argmax differs from the scalar reference", C);
        T_ASSERT(n_tie > 0 && n_off > 0, "C=%d: the data has no ties (%d) or no dead channels (%d)",
                 C, n_tie, n_off);
    }
    return T_PASS;
}

static int test_relu_matches_scalar(void) {
    enum { N = 29 };
    float in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = (float)(i % 5) - 2.0f + 0.25f * (float)(i % 3);
    in[3] = NAN;
    in[4] = -0.0f;
    in[11] = INFINITY;
    in[12] = -INFINITY;
    in[27] = NAN; /* in the scalar tail */
    nn_relu_forward(out, in, N);
    for (int i = 0; i < N; i++) {
        float want = in[i] > 0 ? in[i] : 0;
        T_ASSERT(!memcmp(&out[i], &want, sizeof want), "relu(%g) = %g, want %g", (double)in[i],
                 (double)out[i], (double)want);
    }
    return T_PASS;
}

int main(void) {
    T_RUN(test_pool_matches_scalar);
    T_RUN(test_relu_matches_scalar);
    return t_summary();
}
