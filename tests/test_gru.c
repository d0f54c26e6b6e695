/* test_gru.c -- nn_gru_forward (input products hoisted out of the recurrence, one-row
 * products by rows_dot, gemms otherwise) against a plain step-wise GRU in double written
 * from PyTorch's formulas, for one sequence (serving) and a ragged batch (training). */
#include "harness.h"
#include "nn.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* nn_gru.c's tile override for tests: 0 = by CPU, 4 or 8 rows of W per register tile. */
extern int nn_gru_tile_rows;

/* n reals ~ U(-s, s) from r. Caller frees. */
static float *urand(nb_rng *r, size_t n, double s) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)((2 * nb_rng_uniform(r) - 1) * s);
    return p;
}

static double sig(double v) { return 1 / (1 + exp(-v)); }

/* Step-wise reference over the packed batch (same shapes as nn_gru_forward): hs [T,B,H],
 * gates [T,B,4H] for the active rows, inactive rows' states carried forward. */
static void ref_gru(double *hs, double *gates, const float *x, const float *wih, const float *whh,
                    const float *bih, const float *bhh, const int *bt, int T, int B, int I, int H) {
    double *h = calloc((size_t)B * H, sizeof *h), *hn = calloc((size_t)B * H, sizeof *hn);
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < bt[t]; b++) {
            const float *xb = x + ((size_t)t * B + b) * I;
            const double *hb = h + (size_t)b * H;
            double *g = gates + ((size_t)t * B + b) * 4 * H;
            for (int j = 0; j < H; j++) {
                double a[3], c[3];
                for (int q = 0; q < 3; q++) {
                    int row = q * H + j;
                    a[q] = bih[row];
                    c[q] = bhh[row];
                    for (int i = 0; i < I; i++) a[q] += (double)wih[(size_t)row * I + i] * xb[i];
                    for (int i = 0; i < H; i++) c[q] += (double)whh[(size_t)row * H + i] * hb[i];
                }
                double r = sig(a[0] + c[0]), z = sig(a[1] + c[1]), n = tanh(a[2] + r * c[2]);
                g[j] = r;
                g[H + j] = z;
                g[2 * H + j] = n;
                g[3 * H + j] = c[2];
                hn[(size_t)b * H + j] = (1 - z) * n + z * hb[j];
            }
        }
        for (int b = 0; b < bt[t]; b++)
            memcpy(h + (size_t)b * H, hn + (size_t)b * H, H * sizeof *h);
        memcpy(hs + (size_t)t * B * H, h, (size_t)B * H * sizeof *h);
    }
    free(h);
    free(hn);
}

/* Runs nn_gru_forward with the given tile setting and the reference on random data; returns
 * the worst |difference| over hs (every row) and the active rows' gates, and keeps the float
 * hs in *hs_out (caller frees) for bit comparisons. */
static double run_case(int T, int B, int I, int H, const int *bt, uint64_t seed, int tile,
                       float **hs_out) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    double s = 1 / sqrt((double)H);
    float *x = urand(&r, (size_t)T * B * I, 1.0), *wih = urand(&r, (size_t)3 * H * I, s);
    float *whh = urand(&r, (size_t)3 * H * H, s), *bih = urand(&r, (size_t)3 * H, s);
    float *bhh = urand(&r, (size_t)3 * H, s);
    /* the ignored rows of x (b >= bt[t]) must not matter: make them huge */
    for (int t = 0; t < T; t++)
        for (int b = bt[t]; b < B; b++)
            for (int i = 0; i < I; i++) x[((size_t)t * B + b) * I + i] = 1e30f;
    float *hs = calloc((size_t)T * B * H, sizeof *hs),
          *g = calloc((size_t)T * B * 4 * H, sizeof *g);
    double *rhs = calloc((size_t)T * B * H, sizeof *rhs),
           *rg = calloc((size_t)T * B * 4 * H, sizeof *rg);
    nn_gru_tile_rows = tile;
    nn_gru_forward(hs, g, x, wih, whh, bih, bhh, bt, T, B, I, H);
    nn_gru_tile_rows = 0;
    ref_gru(rhs, rg, x, wih, whh, bih, bhh, bt, T, B, I, H);
    double worst = 0;
    for (size_t i = 0; i < (size_t)T * B * H; i++) {
        double d = fabs(hs[i] - rhs[i]);
        if (!(d <= worst)) worst = d; /* NaN propagates as a failure */
    }
    for (int t = 0; t < T; t++)
        for (int b = 0; b < bt[t]; b++)
            for (int j = 0; j < 4 * H; j++) {
                size_t k = ((size_t)t * B + b) * 4 * H + j;
                double d = fabs(g[k] - rg[k]);
                if (!(d <= worst)) worst = d;
            }
    free(x);
    free(wih);
    free(whh);
    free(bih);
    free(bhh);
    free(g);
    free(rhs);
    free(rg);
    *hs_out = hs;
    return worst;
}

/* One sequence of 5 steps at the model's shapes (layer 0: I = 128, layer 1: I = 256), and
 * odd shapes whose step count (groups of 5 rows of x and a rest), row count and input width
 * leave tails in every tile; the AVX2 and AVX-512 tiles must give the same bits. */
static int test_gru_one_row(void) {
    const int shapes[][3] = {{5, 128, 256}, {5, 256, 256}, {3, 37, 21}, {1, 7, 3},
                             {5, 37, 21},   {7, 40, 13},   {10, 16, 8}};
    const int bt[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int T = shapes[k][0], I = shapes[k][1], H = shapes[k][2];
        float *h4 = NULL, *h8 = NULL;
        double w4 = run_case(T, 1, I, H, bt, 11 + k, 4, &h4);
        double w8 = run_case(T, 1, I, H, bt, 11 + k, 8, &h8);
        int same = !memcmp(h4, h8, (size_t)T * H * sizeof *h4);
        free(h4);
        free(h8);
        T_ASSERT(w4 <= 1e-6 && w8 <= 1e-6,
                 "T=%d I=%d H=%d: worst |diff| %.3g (4-row tiles), "
                 "%.3g (8-row)",
                 T, I, H, w4, w8);
        T_ASSERT(same, "T=%d I=%d H=%d: 4-row and 8-row tiles differ in bits", T, I, H);
    }
    return T_PASS;
}

/* A batch of 32 with ragged lengths 5..1, sorted descending as the model packs it: steps
 * with every row active (one hoisted gemm), steps with fewer (a gemm each), and a last step
 * with a single active row (rows_dot inside a batch). */
static int test_gru_ragged_batch(void) {
    enum { B = 32, T = 5 };
    int n_ord[B];
    for (int b = 0; b < B; b++) n_ord[b] = b < 1 ? 5 : b < 9 ? 4 : b < 20 ? 3 : b < 26 ? 2 : 1;
    int bt[T];
    for (int t = 0; t < T; t++) {
        bt[t] = 0;
        for (int b = 0; b < B; b++) bt[t] += n_ord[b] > t;
    }
    T_ASSERT(bt[0] == B && bt[T - 1] == 1, "bt %d..%d", bt[0], bt[T - 1]);
    const int shapes[][2] = {{128, 64}, {37, 21}};
    for (size_t k = 0; k < 2; k++) {
        float *hs = NULL;
        double w = run_case(T, B, shapes[k][0], shapes[k][1], bt, 99 + k, 0, &hs);
        free(hs);
        T_ASSERT(w <= 1e-6, "I=%d H=%d: worst |diff| %.3g", shapes[k][0], shapes[k][1], w);
    }
    return T_PASS;
}

/* The repacked recurrent weights (scoring clones) give the same bits as the plain ones:
 * one sequence, and a batch whose last steps have a single active row. H = 40 is not a
 * multiple of 16: no packing (nn_gru_pack_size 0), the plain path must be taken. */
static int test_gru_packed_same_bits(void) {
    const int shapes[][4] = {{5, 1, 128, 256}, {5, 4, 48, 32}, {3, 1, 16, 16}, {4, 1, 8, 40}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int T = shapes[k][0], B = shapes[k][1], I = shapes[k][2], H = shapes[k][3];
        int bt[5];
        for (int t = 0; t < T; t++) bt[t] = B > 1 && t >= 2 ? 1 : B;
        nb_rng r;
        nb_rng_seed(&r, 40 + k);
        double s = 1 / sqrt((double)H);
        float *x = urand(&r, (size_t)T * B * I, 1.0), *wih = urand(&r, (size_t)3 * H * I, s);
        float *whh = urand(&r, (size_t)3 * H * H, s), *bih = urand(&r, (size_t)3 * H, s);
        float *bhh = urand(&r, (size_t)3 * H, s);
        size_t np = nn_gru_pack_size(H);
        float *pk = malloc((np ? np : 1) * sizeof *pk);
        if (np) nn_gru_pack_hh(pk, whh, H);
        size_t nh = (size_t)T * B * H, ng = nh * 4;
        float *h1 = calloc(nh, sizeof *h1), *h2 = calloc(nh, sizeof *h2);
        float *g1 = calloc(ng, sizeof *g1), *g2 = calloc(ng, sizeof *g2);
        nn_gru_forward(h1, g1, x, wih, whh, bih, bhh, bt, T, B, I, H);
        nn_gru_forward_packed(h2, g2, x, wih, whh, np ? pk : NULL, bih, bhh, bt, T, B, I, H);
        int same = !memcmp(h1, h2, nh * sizeof *h1);
        for (int t = 0; t < T; t++)
            same &= !memcmp(g1 + (size_t)t * B * 4 * H, g2 + (size_t)t * B * 4 * H,
                            (size_t)bt[t] * 4 * H * sizeof *g1);
        free(x);
        free(wih);
        free(whh);
        free(bih);
        free(bhh);
        free(pk);
        free(h1);
        free(h2);
        free(g1);
        free(g2);
        T_ASSERT((np > 0) == (H % 16 == 0), "H=%d: pack size %zu", H, np);
        T_ASSERT(same, "T=%d B=%d I=%d H=%d: packed and plain weights differ in bits", T, B, I, H);
    }
    return T_PASS;
}

/* The check above can fail: a wrong recurrent weight shows up far above the tolerance. */
static int test_gru_reference_detects_error(void) {
    const int bt[3] = {1, 1, 1};
    nb_rng r;
    nb_rng_seed(&r, 5);
    int T = 3, I = 16, H = 8;
    float *x = urand(&r, (size_t)T * I, 1), *wih = urand(&r, 3 * H * I, 0.3);
    float *whh = urand(&r, 3 * H * H, 0.3), *b = calloc(3 * H, sizeof *b);
    float hs[3 * 8], g[3 * 32];
    double rhs[3 * 8], rg[3 * 32];
    nn_gru_forward(hs, g, x, wih, whh, b, b, bt, T, 1, I, H);
    whh[5] += 0.2f;
    ref_gru(rhs, rg, x, wih, whh, b, b, bt, T, 1, I, H);
    double worst = 0;
    for (int i = 0; i < T * H; i++) worst = fmax(worst, fabs(hs[i] - rhs[i]));
    free(x);
    free(wih);
    free(whh);
    free(b);
    T_ASSERT(worst > 1e-5, "a perturbed W_hh went unnoticed (worst %.3g)", worst);
    return T_PASS;
}

int main(void) {
    T_RUN(test_gru_one_row);
    T_RUN(test_gru_ragged_batch);
    T_RUN(test_gru_packed_same_bits);
    T_RUN(test_gru_reference_detects_error);
    return t_summary();
}
