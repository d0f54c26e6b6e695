/* nn_head.c -- the output layer's forward as a deterministic kernel, and the thread helper.
 *
 * Why not sgemm: OpenBLAS's result bits for one output element depend on the matrix shape,
 * the element's position in its tiles and the thread count, so scoring a candidate subset
 * would not reproduce the full head's logits exactly (measured: ~10% of 96,000 logits differ
 * in the last bit at 32 x 3,000 vs 32 x 49,688). Here every logit is computed by the same
 * sequence of operations whatever the batch, the candidate list or the thread split:
 * 8 lane-wise partial sums over d = 8j+k (j increasing), a fixed tree over the lanes, the
 * d % 8 tail added in order, then the bias. The build uses -std=c11, i.e.
 * -ffp-contract=off, so no clone fuses a multiply-add and the AVX2 and baseline clones give
 * identical bits. Register tiles of 2 samples x 4 products keep it compute-bound; W streams
 * through once per call.
 */
#include "nb_simd.h"
#include "nn.h"

#include <pthread.h>
#include <string.h>

/* ---- threads ------------------------------------------------------------------------ */

static int g_threads = 1;

/* OpenBLAS's setter (declared in its cblas.h, which we do not include here because of the
 * complex.h it pulls in). */
void openblas_set_num_threads(int num_threads);

/* OpenBLAS itself is kept single-threaded: the model's gemms are either small (GRU steps,
 * conv, fc), where OpenBLAS's spin-waiting threads cost more than they save -- badly so on a
 * busy machine -- or split across our own threads (the output layer). */
void nn_set_threads(int n) {
    g_threads = n < 1 ? 1 : n;
    openblas_set_num_threads(1);
}

/* Returns the thread count set by nn_set_threads (default 1). */
int nn_get_threads(void) { return g_threads; }

typedef struct {
    void (*fn)(void *ctx, size_t lo, size_t hi, int part);
    void *ctx;
    size_t lo, hi;
    int part;
} par_job;

/* Thread entry: runs one part of an nn_par_for. */
static void *par_main(void *arg) {
    par_job *j = arg;
    j->fn(j->ctx, j->lo, j->hi, j->part);
    return NULL;
}

/* See nn.h. The split depends only on n, align and the thread count. */
int nn_par_for(void (*fn)(void *, size_t, size_t, int), void *ctx, size_t n, size_t min_n,
               size_t align) {
    enum { MAXT = NN_MAX_PARTS };
    int nt = g_threads > MAXT ? MAXT : g_threads;
    if (nt <= 1 || n < min_n) {
        fn(ctx, 0, n, 0);
        return 1;
    }
    if (align < 1) align = 1;
    par_job jobs[MAXT];
    pthread_t th[MAXT];
    int started[MAXT] = {0};
    size_t chunk = (n + nt - 1) / nt;
    chunk = (chunk + align - 1) / align * align;
    for (int k = 0; k < nt; k++) {
        size_t lo = chunk * k, hi = lo + chunk;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        jobs[k] = (par_job){fn, ctx, lo, hi, k};
    }
    for (int k = 1; k < nt; k++) started[k] = pthread_create(&th[k], NULL, par_main, &jobs[k]) == 0;
    par_main(&jobs[0]);
    for (int k = 1; k < nt; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            par_main(&jobs[k]);
    }
    return nt;
}

/* ---- the deterministic head kernel --------------------------------------------------- */

#define VW 8

/* Unaligned load of VW reals. */
static inline nb_real8 vload(const nn_real *p) {
    nb_real8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The fixed lane reduction, then the tail, then the bias: the only way a logit is finished. */
static inline nn_real finish(nb_real8 a, const nn_real *x, const nn_real *w, int I0, int I,
                             nn_real bias) {
    nn_real s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    for (int d = I0; d < I; d++) s += x[d] * w[d];
    return s + bias;
}

typedef struct {
    nn_real *out;
    const nn_real *in, *w, *b;
    const int32_t *rows;
    int B, I, S;
} head_ctx;

#define RIDX(c, s) ((c)->rows ? (size_t)(c)->rows[s] : (size_t)(s))
#define ROW(c, s) ((c)->w + RIDX(c, s) * (size_t)(c)->I)
#define BIAS(c, s) ((c)->b ? (c)->b[RIDX(c, s)] : (nn_real)0)

/* Products lo..hi-1, sample rows i0..B-1, in tiles of 2 samples x 4 products. */
__attribute__((target_clones("avx2", "default"))) static void head_rest(const head_ctx *c,
                                                                        size_t lo, size_t hi,
                                                                        int i0) {
    int B = c->B, I = c->I, S = c->S, I0 = I / VW * VW;
    const nn_real *in = c->in;
    nn_real *out = c->out;
    size_t s = lo;
    for (; s + 4 <= hi; s += 4) {
        const nn_real *w0 = ROW(c, s), *w1 = ROW(c, s + 1), *w2 = ROW(c, s + 2),
                      *w3 = ROW(c, s + 3);
        nn_real b0 = BIAS(c, s), b1 = BIAS(c, s + 1), b2 = BIAS(c, s + 2), b3 = BIAS(c, s + 3);
        /* A candidate list jumps between rows of a W far larger than the caches, and with
         * few samples there is little arithmetic to hide each new row's misses behind:
         * fetch the tile after next ahead (does not change any result). */
        if (c->rows && B - i0 <= 2 && s + 12 <= hi)
            for (int k = 8; k < 12; k++) {
                const char *r = (const char *)ROW(c, s + k);
                for (size_t off = 0; off < (size_t)I * sizeof(nn_real); off += 64)
                    __builtin_prefetch(r + off, 0, 0);
            }
        int i = i0;
        for (; i + 2 <= B; i += 2) {
            const nn_real *x0 = in + (size_t)i * I, *x1 = x0 + I;
            nb_real8 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0},
                     a13 = {0};
            for (int d = 0; d < I0; d += VW) {
                nb_real8 u0 = vload(x0 + d), u1 = vload(x1 + d);
                nb_real8 v0 = vload(w0 + d), v1 = vload(w1 + d), v2 = vload(w2 + d),
                         v3 = vload(w3 + d);
                a00 += u0 * v0;
                a01 += u0 * v1;
                a02 += u0 * v2;
                a03 += u0 * v3;
                a10 += u1 * v0;
                a11 += u1 * v1;
                a12 += u1 * v2;
                a13 += u1 * v3;
            }
            nn_real *o0 = out + (size_t)i * S + s, *o1 = o0 + S;
            o0[0] = finish(a00, x0, w0, I0, I, b0);
            o0[1] = finish(a01, x0, w1, I0, I, b1);
            o0[2] = finish(a02, x0, w2, I0, I, b2);
            o0[3] = finish(a03, x0, w3, I0, I, b3);
            o1[0] = finish(a10, x1, w0, I0, I, b0);
            o1[1] = finish(a11, x1, w1, I0, I, b1);
            o1[2] = finish(a12, x1, w2, I0, I, b2);
            o1[3] = finish(a13, x1, w3, I0, I, b3);
        }
        for (; i < B; i++) {
            const nn_real *x0 = in + (size_t)i * I;
            nb_real8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int d = 0; d < I0; d += VW) {
                nb_real8 u0 = vload(x0 + d);
                a0 += u0 * vload(w0 + d);
                a1 += u0 * vload(w1 + d);
                a2 += u0 * vload(w2 + d);
                a3 += u0 * vload(w3 + d);
            }
            nn_real *o0 = out + (size_t)i * S + s;
            o0[0] = finish(a0, x0, w0, I0, I, b0);
            o0[1] = finish(a1, x0, w1, I0, I, b1);
            o0[2] = finish(a2, x0, w2, I0, I, b2);
            o0[3] = finish(a3, x0, w3, I0, I, b3);
        }
    }
    for (; s < hi; s++) {
        const nn_real *w0 = ROW(c, s);
        nn_real b0 = BIAS(c, s);
        for (int i = i0; i < B; i++) {
            const nn_real *x0 = in + (size_t)i * I;
            nb_real8 a0 = {0};
            for (int d = 0; d < I0; d += VW) a0 += vload(x0 + d) * vload(w0 + d);
            out[(size_t)i * S + s] = finish(a0, x0, w0, I0, I, b0);
        }
    }
}

/* 4 samples x 4 products per register tile (16 accumulators): needs the 32 vector registers
 * of AVX-512VL, and halves the loads per multiply-add against the 2 x 4 tile. The operation
 * sequence of each logit is the one every other path uses. Returns the first sample row it
 * did not do (a multiple of 4); the caller finishes the rest. */
#define ACC4(a0, a1, a2, a3, u) \
    a0 += u * v0;               \
    a1 += u * v1;               \
    a2 += u * v2;               \
    a3 += u * v3
#define FIN4(o, x, a0, a1, a2, a3)         \
    (o)[0] = finish(a0, x, w0, I0, I, b0); \
    (o)[1] = finish(a1, x, w1, I0, I, b1); \
    (o)[2] = finish(a2, x, w2, I0, I, b2); \
    (o)[3] = finish(a3, x, w3, I0, I, b3)
__attribute__((target("avx2,avx512f,avx512vl"))) static void head_part_4x4(void *vc, size_t lo,
                                                                           size_t hi, int part) {
    const head_ctx *c = vc;
    (void)part;
    int B = c->B, I = c->I, S = c->S, I0 = I / VW * VW, B4 = B / 4 * 4;
    const nn_real *in = c->in;
    nn_real *out = c->out;
    size_t s = lo;
    for (; s + 4 <= hi; s += 4) {
        const nn_real *w0 = ROW(c, s), *w1 = ROW(c, s + 1), *w2 = ROW(c, s + 2),
                      *w3 = ROW(c, s + 3);
        nn_real b0 = BIAS(c, s), b1 = BIAS(c, s + 1), b2 = BIAS(c, s + 2), b3 = BIAS(c, s + 3);
        for (int i = 0; i < B4; i += 4) {
            const nn_real *x0 = in + (size_t)i * I, *x1 = x0 + I, *x2 = x1 + I, *x3 = x2 + I;
            nb_real8 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0},
                     a13 = {0}, a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0},
                     a32 = {0}, a33 = {0};
            for (int d = 0; d < I0; d += VW) {
                nb_real8 v0 = vload(w0 + d), v1 = vload(w1 + d), v2 = vload(w2 + d),
                         v3 = vload(w3 + d);
                nb_real8 u0 = vload(x0 + d), u1 = vload(x1 + d), u2 = vload(x2 + d),
                         u3 = vload(x3 + d);
                ACC4(a00, a01, a02, a03, u0);
                ACC4(a10, a11, a12, a13, u1);
                ACC4(a20, a21, a22, a23, u2);
                ACC4(a30, a31, a32, a33, u3);
            }
            nn_real *o = out + (size_t)i * S + s;
            FIN4(o, x0, a00, a01, a02, a03);
            FIN4(o + S, x1, a10, a11, a12, a13);
            FIN4(o + 2 * (size_t)S, x2, a20, a21, a22, a23);
            FIN4(o + 3 * (size_t)S, x3, a30, a31, a32, a33);
        }
    }
}

/* The AVX-512 tiles where available (sample rows 0 .. B/4*4 of the 4-aligned products), then
 * the general routine for the remaining rows and products. */
static void head_part(void *vc, size_t lo, size_t hi, int part) {
    const head_ctx *c = vc;
    if (__builtin_cpu_supports("avx512vl") && c->B >= 4 && (c->I % VW) == 0) {
        head_part_4x4(vc, lo, hi, part);
        size_t s4 = lo + (hi - lo) / 4 * 4;
        head_rest(c, lo, s4, c->B / 4 * 4); /* rows past the 4-tiles */
        head_rest(c, s4, hi, 0);            /* products past the 4-tiles, all rows */
    } else {
        head_rest(c, lo, hi, 0);
    }
}

/* out[B, S] = in[B, I] . w[r(s), :]^T + b[r(s)] with r(s) = rows ? rows[s] : s (b may be
 * NULL). Split over products across nn_get_threads() threads; the bits do not depend on the
 * split. No failure cases. */
void nn_head_forward(nn_real *out, const nn_real *in, const nn_real *w, const nn_real *b,
                     const int32_t *rows, int B, int I, int S) {
    head_ctx c = {out, in, w, b, rows, B, I, S};
    /* threads only pay off above ~1M multiply-adds per part */
    size_t min_s = (size_t)(1 << 21) / ((size_t)B * I + 1) + 1;
    nn_par_for(head_part, &c, (size_t)S, min_s, 4);
}
