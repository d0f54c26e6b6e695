/* dtest_gradcheck_attn.c -- finite-difference gradient checks of the attention layers
 * (model/nn_attn.c, model/nn_tblock.c) in double precision: LayerNorm, multi-head
 * self-attention (full and causal), attention pooling and the pre-LN transformer block.
 * Method and tolerance as in dtest_gradcheck.c (tests/gradcheck.h): f = sum(out * W) with a
 * fixed random W, every input and parameter entry against the central difference. The
 * packed sequences have lengths 1 (a single order or product: softmax over one key), 3
 * and 5, so the per-sequence masking is exercised.
 */
#include "gradcheck.h"
#include "harness.h"

#include <string.h>

#ifndef NN_DOUBLE
#error "dtest_gradcheck_attn.c must be compiled with -DNN_DOUBLE"
#endif

static const int OFF[] = {0, 1, 4, 9}; /* lengths 1, 3, 5 */
#define NSEQ 3
#define T_TOK 9

/* ---- layer norm ----------------------------------------------------------------------- */

typedef struct {
    double *x, *w, *b, *W, *out, *mean, *rstd;
    int N, A;
} ln_ctx;
static double ln_f(void *v) {
    ln_ctx *c = v;
    nn_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->A);
    return dot(c->out, c->W, (size_t)c->N * c->A);
}
static int test_grad_layernorm(void) {
    int N = 4, A = 5;
    size_t n = (size_t)N * A;
    ln_ctx c = {rnd(n, 2), rnd((size_t)A, 1), rnd((size_t)A, 1), rnd(n, 1),
                zeros(n),  zeros(N),          zeros(N),          N,
                A};
    double *dx = zeros(n), *dw = zeros(A), *db = zeros(A);
    ln_f(&c);
    nn_layernorm_backward(dx, dw, db, c.W, c.x, c.mean, c.rstd, c.w, N, A);
    int bad = compare("layernorm dx", c.x, dx, n, ln_f, &c, 1000, NULL);
    bad += compare("layernorm dw", c.w, dw, A, ln_f, &c, 1000, NULL);
    bad += compare("layernorm db", c.b, db, A, ln_f, &c, 1000, NULL);
    double *all[] = {c.x, c.w, c.b, c.W, c.out, c.mean, c.rstd, dx, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    T_ASSERT(bad == 0, "layernorm gradient mismatch");
    return T_PASS;
}

/* ---- multi-head self-attention --------------------------------------------------------- */

typedef struct {
    double *x, *w_in, *b_in, *w_out, *b_out, *W, *out, *qkv, *probs, *ctx;
    int A, nh, causal;
} mha_ctx;
static double mha_f(void *v) {
    mha_ctx *c = v;
    nn_mha_forward(c->out, c->qkv, c->probs, c->ctx, c->x, c->w_in, c->b_in, c->w_out, c->b_out,
                   OFF, NSEQ, c->A, c->nh, c->causal);
    return dot(c->out, c->W, (size_t)T_TOK * c->A);
}
static int mha_case(int causal) {
    int A = 6, nh = 2;
    size_t n = (size_t)T_TOK * A;
    mha_ctx c = {rnd(n, 1),
                 rnd((size_t)3 * A * A, 0.7),
                 rnd((size_t)3 * A, 0.3),
                 rnd((size_t)A * A, 0.5),
                 rnd(A, 0.3),
                 rnd(n, 1),
                 zeros(n),
                 zeros(3 * n),
                 zeros(nn_mha_probs_size(OFF, NSEQ, nh)),
                 zeros(n),
                 A,
                 nh,
                 causal};
    double *dx = zeros(n), *dwi = zeros((size_t)3 * A * A), *dbi = zeros((size_t)3 * A);
    double *dwo = zeros((size_t)A * A), *dbo = zeros(A);
    double *scr = zeros(nn_mha_scratch_size(OFF, NSEQ, A));
    mha_f(&c);
    nn_mha_backward(dx, dwi, dbi, dwo, dbo, scr, c.W, c.qkv, c.probs, c.ctx, c.x, c.w_in, c.w_out,
                    OFF, NSEQ, A, nh, causal);
    char w[64];
    int bad = 0;
    snprintf(w, sizeof w, "mha causal=%d dx", causal);
    bad += compare(w, c.x, dx, n, mha_f, &c, 1000, NULL);
    snprintf(w, sizeof w, "mha causal=%d dw_in", causal);
    bad += compare(w, c.w_in, dwi, (size_t)3 * A * A, mha_f, &c, 1000, NULL);
    snprintf(w, sizeof w, "mha causal=%d db_in", causal);
    bad += compare(w, c.b_in, dbi, (size_t)3 * A, mha_f, &c, 1000, NULL);
    snprintf(w, sizeof w, "mha causal=%d dw_out", causal);
    bad += compare(w, c.w_out, dwo, (size_t)A * A, mha_f, &c, 1000, NULL);
    snprintf(w, sizeof w, "mha causal=%d db_out", causal);
    bad += compare(w, c.b_out, dbo, A, mha_f, &c, 1000, NULL);
    double *all[] = {c.x,     c.w_in, c.b_in, c.w_out, c.b_out, c.W, c.out, c.qkv,
                     c.probs, c.ctx,  dx,     dwi,     dbi,     dwo, dbo,   scr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    return bad;
}
static int test_grad_mha(void) {
    int bad = mha_case(0) + mha_case(1);
    T_ASSERT(bad == 0, "%d attention gradient mismatches", bad);
    return T_PASS;
}

/* ---- attention pooling ---------------------------------------------------------------- */

typedef struct {
    double *x, *q, *W, *out, *alpha;
    int A;
} pool_ctx;
static double pool_f(void *v) {
    pool_ctx *c = v;
    nn_attnpool_forward(c->out, c->alpha, c->x, c->q, OFF, NSEQ, c->A);
    return dot(c->out, c->W, (size_t)NSEQ * c->A);
}
static int test_grad_attnpool(void) {
    int A = 5;
    size_t n = (size_t)T_TOK * A;
    pool_ctx c = {rnd(n, 1.5),  rnd(A, 1), rnd((size_t)NSEQ * A, 1), zeros((size_t)NSEQ * A),
                  zeros(T_TOK), A};
    double *dx = zeros(n), *dq = zeros(A);
    pool_f(&c);
    nn_attnpool_backward(dx, dq, c.W, c.alpha, c.x, c.q, OFF, NSEQ, A);
    int bad = compare("attnpool dx", c.x, dx, n, pool_f, &c, 1000, NULL);
    bad += compare("attnpool dq", c.q, dq, A, pool_f, &c, 1000, NULL);
    double *all[] = {c.x, c.q, c.W, c.out, c.alpha, dx, dq};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    T_ASSERT(bad == 0, "attention pooling gradient mismatch");
    return T_PASS;
}

/* ---- transformer block ---------------------------------------------------------------- */

typedef struct {
    double *x, *W, *out, *act;
    nn_tblock_params p;
    int A, nh, F, causal;
} tb_ctx;
static double tb_f(void *v) {
    tb_ctx *c = v;
    nn_tblock_forward(c->out, c->act, c->x, &c->p, OFF, NSEQ, c->A, c->nh, c->F, c->causal);
    return dot(c->out, c->W, (size_t)T_TOK * c->A);
}
/* The 12 tensors of p in order, with their sizes. */
static void tb_list(nn_tblock_params *p, double ***t, size_t *sz, int A, int F) {
    double **f[NN_TBLOCK_NTENSORS] = {&p->ln1_w, &p->ln1_b, &p->w_in,  &p->b_in,
                                      &p->w_out, &p->b_out, &p->ln2_w, &p->ln2_b,
                                      &p->ff1_w, &p->ff1_b, &p->ff2_w, &p->ff2_b};
    size_t s[NN_TBLOCK_NTENSORS] = {A,
                                    A,
                                    (size_t)3 * A * A,
                                    (size_t)3 * A,
                                    (size_t)A * A,
                                    A,
                                    A,
                                    A,
                                    (size_t)F * A,
                                    F,
                                    (size_t)A * F,
                                    A};
    for (int j = 0; j < NN_TBLOCK_NTENSORS; j++) t[j] = f[j], sz[j] = s[j];
}
static int tblock_case(int causal) {
    static const char *names[NN_TBLOCK_NTENSORS] = {"ln1_w", "ln1_b", "w_in",  "b_in",
                                                    "w_out", "b_out", "ln2_w", "ln2_b",
                                                    "ff1_w", "ff1_b", "ff2_w", "ff2_b"};
    int A = 4, nh = 2, F = 8;
    size_t n = (size_t)T_TOK * A;
    tb_ctx c = {rnd(n, 1), rnd(n, 1), zeros(n), zeros(nn_tblock_act_size(OFF, NSEQ, A, nh, F)),
                {0},       A,         nh,       F,
                causal};
    nn_tblock_params g = {0};
    double **pt[NN_TBLOCK_NTENSORS], **gt[NN_TBLOCK_NTENSORS];
    size_t sz[NN_TBLOCK_NTENSORS];
    tb_list(&c.p, pt, sz, A, F);
    tb_list(&g, gt, sz, A, F);
    for (int j = 0; j < NN_TBLOCK_NTENSORS; j++) {
        *pt[j] = rnd(sz[j], 0.6);
        *gt[j] = zeros(sz[j]);
    }
    for (int i = 0; i < A; i++) c.p.ln1_w[i] += 1, c.p.ln2_w[i] += 1; /* around PyTorch's init */
    double *dx = zeros(n), *scr = zeros(nn_tblock_scratch_size(OFF, NSEQ, A, F));
    tb_f(&c);
    nn_tblock_backward(dx, &g, scr, c.W, c.act, c.x, &c.p, OFF, NSEQ, A, nh, F, causal);
    char w[64];
    snprintf(w, sizeof w, "tblock causal=%d dx", causal);
    int bad = compare(w, c.x, dx, n, tb_f, &c, 1000, NULL);
    for (int j = 0; j < NN_TBLOCK_NTENSORS; j++) {
        snprintf(w, sizeof w, "tblock causal=%d %s", causal, names[j]);
        bad += compare(w, *pt[j], *gt[j], sz[j], tb_f, &c, 1000, NULL);
    }
    for (int j = 0; j < NN_TBLOCK_NTENSORS; j++) free(*pt[j]), free(*gt[j]);
    double *all[] = {c.x, c.W, c.out, c.act, dx, scr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    return bad;
}
static int test_grad_tblock(void) {
    int bad = tblock_case(0) + tblock_case(1);
    T_ASSERT(bad == 0, "%d transformer block gradient mismatches", bad);
    return T_PASS;
}

int main(void) {
    nb_rng_seed(&g_rng, 4321);
    T_RUN(test_grad_layernorm);
    T_RUN(test_grad_mha);
    T_RUN(test_grad_attnpool);
    T_RUN(test_grad_tblock);
    return t_summary();
}
