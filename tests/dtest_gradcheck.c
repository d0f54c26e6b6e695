/* dtest_gradcheck.c -- finite-difference gradient checks of every layer and of the whole
 * model, in double precision (this file and model/nn_*.c are compiled with -DNN_DOUBLE).
 *
 * Method: each layer's output is reduced to a scalar f = sum(out * W) with a fixed random W
 * (so every output element gets a distinct upstream gradient), the analytic gradient comes
 * from the layer's backward with dout = W, and every input/parameter entry (or a sample of
 * them when the tensor is large) is compared with the central difference
 *   (f(x + eps) - f(x - eps)) / (2 eps),  eps = 1e-6.
 * Tolerance: |analytic - numeric| <= 1e-6 * max(|analytic|, |numeric|) + 1e-9, i.e. a
 * relative error below 1e-6 except for gradients so small (< 1e-3) that the absolute floor,
 * set by double rounding in f divided by eps, decides. Inputs are drawn away from ReLU
 * kinks only by chance; a kink inside +-eps would show up as a failure, never as a pass.
 */
#include "harness.h"
#include "nb_err.h"
#include "nn.h"

#include <cblas.h>
#undef I /* OpenBLAS's cblas.h pulls in complex.h; I is our input-size name */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- moved here from model/nn_layers.c: only this test uses them ---- */

/* Gathers the S selected rows of w into wbuf (for backward), then out[B,S] = in . wbuf^T +
 * b[rows] through nn_head_forward, so the logits equal the full head's bit for bit. */
static void nn_linear_rows_forward(nn_real *out, nn_real *wbuf, const nn_real *in, const nn_real *w,
                                   const nn_real *b, const int32_t *rows, int B, int I, int S) {
    for (int s = 0; s < S; s++)
        memcpy(wbuf + (size_t)s * I, w + (size_t)rows[s] * I, (size_t)I * sizeof(nn_real));
    nn_head_forward(out, in, w, b, rows, B, I, S);
}

/* dwbuf[S,I] = dout^T . in (overwritten), then scattered (+=) into dw rows; db[rows] +=
 * colsum(dout); din += dout . wbuf. Repeated rows accumulate correctly. */
static void nn_linear_rows_backward(nn_real *din, nn_real *dw, nn_real *db, nn_real *dwbuf,
                                    const nn_real *dout, const nn_real *in, const nn_real *wbuf,
                                    const int32_t *rows, int B, int I, int S) {
    if (din)
        NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, I, S, 1, dout, S, wbuf, I, 1, din, I);
    NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, S, I, B, 1, dout, S, in, I, 0, dwbuf, I);
    for (int s = 0; s < S; s++) {
        nn_real *d = dw + (size_t)rows[s] * I;
        const nn_real *g = dwbuf + (size_t)s * I;
        for (int i = 0; i < I; i++) d[i] += g[i];
    }
    if (db)
        for (int i = 0; i < B; i++) {
            const nn_real *d = dout + (size_t)i * S;
            for (int s = 0; s < S; s++) db[rows[s]] += d[s];
        }
}


#ifndef NN_DOUBLE
#error "dtest_gradcheck.c must be compiled with -DNN_DOUBLE"
#endif

#include "gradcheck.h"

/* ---- embedding ---------------------------------------------------------------------- */

typedef struct {
    double *emb, *W, *out;
    int32_t *idx;
    int T, E;
} embed_ctx;
static double embed_f(void *v) {
    embed_ctx *c = v;
    nn_embed_forward(c->out, c->idx, c->emb, c->T, c->E);
    return dot(c->out, c->W, (size_t)c->T * c->E);
}
static int test_grad_embedding(void) {
    int P = 6, E = 3, T = 7;
    int32_t idx[] = {0, 3, 3, 5, 1, 3, 0}; /* repeats must add up */
    embed_ctx c = {rnd((size_t)P * E, 1), rnd((size_t)T * E, 1), zeros((size_t)T * E), idx, T, E};
    double *g = zeros((size_t)P * E);
    nn_embed_backward(g, c.W, idx, T, E);
    int bad = compare("embedding demb", c.emb, g, (size_t)P * E, embed_f, &c, 1000, NULL);
    free(c.emb);
    free(c.W);
    free(c.out);
    free(g);
    T_ASSERT(bad == 0, "embedding gradient mismatch");
    return T_PASS;
}

/* ---- conv + ReLU + masked max-pool -------------------------------------------------- */

typedef struct {
    double *in, *w, *b, *W, *out, *scr;
    int *am, *off;
    int n_ord, E, C, K;
} conv_ctx;
static double conv_f(void *v) {
    conv_ctx *c = v;
    nn_conv_forward(c->out, c->am, c->scr, c->in, c->off, c->w, c->b, c->n_ord, c->E, c->C, c->K);
    return dot(c->out, c->W, (size_t)c->n_ord * c->C);
}
static int test_grad_conv(void) {
    /* lengths 1, 2, 3 (< K), 4 (== K), 5, 9 (> K) */
    int off[] = {0, 1, 3, 6, 10, 15, 24};
    int n_ord = 6, E = 3, C = 5, K = 4, T = off[n_ord];
    conv_ctx c = {rnd((size_t)T * E, 1),
                  rnd((size_t)C * E * K, 0.5),
                  rnd(C, 0.3),
                  rnd((size_t)n_ord * C, 1),
                  zeros((size_t)n_ord * C),
                  zeros(nn_conv_scratch_size(off, n_ord, E, C, K)),
                  nb_xcalloc((size_t)n_ord * C, sizeof(int)),
                  off,
                  n_ord,
                  E,
                  C,
                  K};
    conv_f(&c);
    int active = 0, inactive = 0;
    for (int i = 0; i < n_ord * C; i++) {
        if (c.am[i] >= 0)
            active++;
        else
            inactive++;
    }
    double *din = zeros((size_t)T * E), *dw = zeros((size_t)C * E * K), *db = zeros(C);
    nn_conv_backward(din, dw, db, c.scr, c.W, c.am, c.in, off, c.w, n_ord, E, C, K);
    int bad = compare("conv din", c.in, din, (size_t)T * E, conv_f, &c, 1000, NULL);
    bad += compare("conv dw", c.w, dw, (size_t)C * E * K, conv_f, &c, 1000, NULL);
    bad += compare("conv db", c.b, db, C, conv_f, &c, 1000, NULL);
    printf("# conv: %d pooled outputs active, %d clamped by the ReLU\n", active, inactive);
    free(c.in);
    free(c.w);
    free(c.b);
    free(c.W);
    free(c.out);
    free(c.scr);
    free(c.am);
    free(din);
    free(dw);
    free(db);
    T_ASSERT(active > 0 && inactive > 0, "the test should exercise both ReLU branches");
    T_ASSERT(bad == 0, "conv gradient mismatch");
    return T_PASS;
}

/* ---- GRU ------------------------------------------------------------------------------ */

typedef struct {
    double *x, *wih, *whh, *bih, *bhh, *W, *hs, *gates;
    const int *bt;
    int T, B, I, H;
} gru_ctx;
static double gru_f(void *v) {
    gru_ctx *c = v;
    nn_gru_forward(c->hs, c->gates, c->x, c->wih, c->whh, c->bih, c->bhh, c->bt, c->T, c->B, c->I,
                   c->H);
    return dot(c->hs, c->W, (size_t)c->T * c->B * c->H);
}
static int gru_case(const int *bt, int T, int B) {
    int I = 3, H = 4;
    size_t TB = (size_t)T * B;
    gru_ctx c = {rnd(TB * I, 1),
                 rnd((size_t)3 * H * I, 0.5),
                 rnd((size_t)3 * H * H, 0.5),
                 rnd(3 * H, 0.5),
                 rnd(3 * H, 0.5),
                 rnd(TB * H, 1),
                 zeros(TB * H),
                 zeros(TB * 4 * H),
                 bt,
                 T,
                 B,
                 I,
                 H};
    gru_f(&c);
    double *dx = zeros(TB * I), *dwih = zeros((size_t)3 * H * I), *dwhh = zeros((size_t)3 * H * H);
    double *dbih = zeros(3 * H), *dbhh = zeros(3 * H), *dhs = zeros(TB * H);
    double *scr = zeros(nn_gru_scratch_size(B, H));
    memcpy(dhs, c.W, TB * H * sizeof(double));
    nn_gru_backward(dx, dwih, dwhh, dbih, dbhh, dhs, scr, c.gates, c.hs, c.x, c.wih, c.whh, bt, T,
                    B, I, H);
    int bad = compare("gru dx", c.x, dx, TB * I, gru_f, &c, 1000, NULL);
    bad += compare("gru dw_ih", c.wih, dwih, (size_t)3 * H * I, gru_f, &c, 1000, NULL);
    bad += compare("gru dw_hh", c.whh, dwhh, (size_t)3 * H * H, gru_f, &c, 1000, NULL);
    bad += compare("gru db_ih", c.bih, dbih, 3 * H, gru_f, &c, 1000, NULL);
    bad += compare("gru db_hh", c.bhh, dbhh, 3 * H, gru_f, &c, 1000, NULL);
    free(c.x);
    free(c.wih);
    free(c.whh);
    free(c.bih);
    free(c.bhh);
    free(c.W);
    free(c.hs);
    free(c.gates);
    free(dx);
    free(dwih);
    free(dwhh);
    free(dbih);
    free(dbhh);
    free(dhs);
    free(scr);
    return bad;
}
static int test_grad_gru(void) {
    /* users with 5, 4, 3, 2, 1 orders; then unequal groups (5, 5, 3, 1); then all 1 */
    static const int bt1[] = {5, 4, 3, 2, 1}, bt2[] = {4, 3, 3, 2, 2}, bt3[] = {3};
    int bad = gru_case(bt1, 5, 5);
    bad += gru_case(bt2, 5, 4);
    bad += gru_case(bt3, 1, 3);
    T_ASSERT(bad == 0, "GRU gradient mismatch");
    return T_PASS;
}

/* ---- linear, rows-linear, relu, dropout ------------------------------------------------ */

typedef struct {
    double *in, *w, *b, *W, *out, *wbuf;
    const int32_t *rows;
    int B, I, O, S;
} lin_ctx;
static double lin_f(void *v) {
    lin_ctx *c = v;
    nn_linear_forward(c->out, c->in, c->w, c->b, c->B, c->I, c->O);
    return dot(c->out, c->W, (size_t)c->B * c->O);
}
static double rows_f(void *v) {
    lin_ctx *c = v;
    nn_linear_rows_forward(c->out, c->wbuf, c->in, c->w, c->b, c->rows, c->B, c->I, c->S);
    return dot(c->out, c->W, (size_t)c->B * c->S);
}
static int test_grad_linear(void) {
    int B = 3, I = 4, O = 5;
    lin_ctx c = {rnd((size_t)B * I, 1),
                 rnd((size_t)O * I, 1),
                 rnd(O, 1),
                 rnd((size_t)B * O, 1),
                 zeros((size_t)B * O),
                 NULL,
                 NULL,
                 B,
                 I,
                 O,
                 0};
    double *din = zeros((size_t)B * I), *dw = zeros((size_t)O * I), *db = zeros(O);
    nn_linear_backward(din, dw, db, c.W, c.in, c.w, B, I, O);
    int bad = compare("linear din", c.in, din, (size_t)B * I, lin_f, &c, 1000, NULL);
    bad += compare("linear dw", c.w, dw, (size_t)O * I, lin_f, &c, 1000, NULL);
    bad += compare("linear db", c.b, db, O, lin_f, &c, 1000, NULL);
    free(c.in);
    free(c.w);
    free(c.b);
    free(c.W);
    free(c.out);
    free(din);
    free(dw);
    free(db);
    T_ASSERT(bad == 0, "linear gradient mismatch");
    return T_PASS;
}
static int test_grad_linear_rows(void) {
    int B = 3, I = 4, O = 7, S = 4;
    static const int32_t rows[] = {5, 0, 2, 6};
    lin_ctx c = {rnd((size_t)B * I, 1),
                 rnd((size_t)O * I, 1),
                 rnd(O, 1),
                 rnd((size_t)B * S, 1),
                 zeros((size_t)B * S),
                 zeros((size_t)S * I),
                 rows,
                 B,
                 I,
                 O,
                 S};
    rows_f(&c);
    double *din = zeros((size_t)B * I), *dw = zeros((size_t)O * I), *db = zeros(O);
    double *dwbuf = zeros((size_t)S * I);
    nn_linear_rows_backward(din, dw, db, dwbuf, c.W, c.in, c.wbuf, rows, B, I, S);
    int bad = compare("rows-linear din", c.in, din, (size_t)B * I, rows_f, &c, 1000, NULL);
    bad += compare("rows-linear dw", c.w, dw, (size_t)O * I, rows_f, &c, 1000, NULL);
    bad += compare("rows-linear db", c.b, db, O, rows_f, &c, 1000, NULL);
    free(c.in);
    free(c.w);
    free(c.b);
    free(c.W);
    free(c.out);
    free(c.wbuf);
    free(din);
    free(dw);
    free(db);
    free(dwbuf);
    T_ASSERT(bad == 0, "rows-linear gradient mismatch");
    return T_PASS;
}

typedef struct {
    double *in, *W, *out, *mask;
    size_t n;
    int drop;
} ew_ctx;
static double ew_f(void *v) {
    ew_ctx *c = v;
    if (c->drop)
        for (size_t i = 0; i < c->n; i++) c->out[i] = c->in[i] * c->mask[i];
    else
        nn_relu_forward(c->out, c->in, c->n);
    return dot(c->out, c->W, c->n);
}
static int test_grad_relu_dropout(void) {
    size_t n = 50;
    ew_ctx c = {rnd(n, 1), rnd(n, 1), zeros(n), zeros(n), n, 0};
    double *din = zeros(n);
    nn_relu_backward(din, c.W, c.in, n);
    int bad = compare("relu", c.in, din, n, ew_f, &c, 1000, NULL);
    /* dropout: the mask drawn by forward must be what backward applies */
    nb_rng r;
    nb_rng_seed(&r, 5);
    nn_dropout_forward(c.out, c.mask, c.in, n, 0.3f, 1, &r);
    int zeros_seen = 0;
    for (size_t i = 0; i < n; i++) zeros_seen += c.mask[i] == 0;
    memset(din, 0, n * sizeof(double));
    nn_dropout_backward(din, c.W, c.mask, n);
    c.drop = 1;
    bad += compare("dropout", c.in, din, n, ew_f, &c, 1000, NULL);
    free(c.in);
    free(c.W);
    free(c.out);
    free(c.mask);
    free(din);
    T_ASSERT(zeros_seen > 0 && zeros_seen < (int)n, "dropout at p=0.3 dropped %d of %zu",
             zeros_seen, n);
    T_ASSERT(bad == 0, "relu/dropout gradient mismatch");
    return T_PASS;
}

/* ---- BCE with pos_weight ------------------------------------------------------------- */

typedef struct {
    double *x, *y;
    size_t n;
    float pw;
} bce_ctx;
static double bce_f(void *v) {
    bce_ctx *c = v;
    return nn_bce_forward(c->x, c->y, c->n, c->pw);
}
static int test_grad_bce(void) {
    size_t n = 40;
    bce_ctx c = {rnd(n, 6), zeros(n), n, 10.0f};
    for (size_t i = 0; i < n; i++) c.y[i] = (i % 3) == 0;
    double *g = zeros(n), *g2 = zeros(n);
    nn_bce_backward(g, c.x, c.y, n, c.pw);
    int bad = compare("bce pos_weight=10", c.x, g, n, bce_f, &c, 1000, NULL);
    double l2 = nn_bce_forward_backward(g2, c.x, c.y, n, c.pw);
    T_ASSERT(fabs(l2 - bce_f(&c)) < 1e-14, "fused loss %.17g vs %.17g", l2, bce_f(&c));
    for (size_t i = 0; i < n; i++) T_ASSERT(fabs(g[i] - g2[i]) < 1e-15, "fused grad [%zu]", i);
    free(c.x);
    free(c.y);
    free(g);
    free(g2);
    T_ASSERT(bad == 0, "BCE gradient mismatch");
    return T_PASS;
}

/* ---- the whole model ---------------------------------------------------------------- */

/* With dropout, every evaluation restarts the model's rng from the state the analytic
 * forward started from, so all of them use the same masks. */
typedef struct {
    nn_model *m;
    const nn_batch *b;
    nb_rng rng0;
    int training;
} model_ctx;
static double model_f(void *v) {
    model_ctx *c = v;
    c->m->rng = c->rng0;
    return nn_model_forward(c->m, c->b, c->training, 10.0f);
}

/* A small batch: 4 users with 2, 5, 1, 3 orders of lengths 1..7 (some shorter than the
 * kernel, some equal), product indices cycling through the catalogue. */
typedef struct {
    int n_ord[4];
    int ord_off[16];
    int32_t items[64];
    double targets[4 * 16];
} small_batch;

static void make_batch(small_batch *sb, nn_batch *b, int P, int S, const int32_t *rows) {
    static const int n_ord[4] = {2, 5, 1, 3};
    static const int lens[11] = {3, 1, 7, 2, 3, 4, 5, 1, 6, 2, 3};
    memset(sb, 0, sizeof *sb);
    memcpy(sb->n_ord, n_ord, sizeof n_ord);
    int k = 0;
    sb->ord_off[0] = 0;
    for (int o = 0; o < 11; o++) {
        for (int j = 0; j < lens[o]; j++) sb->items[k + j] = (int32_t)((7 * (k + j) + o) % P);
        k += lens[o];
        sb->ord_off[o + 1] = k;
    }
    int NS = S ? S : P;
    for (int i = 0; i < 4 * NS; i++) sb->targets[i] = (i * 5 + 3) % 7 == 0;
    memset(b, 0, sizeof *b);
    b->B = 4;
    b->n_ord = sb->n_ord;
    b->ord_off = sb->ord_off;
    b->items = sb->items;
    b->S = S;
    b->rows = rows;
    b->targets = sb->targets;
}

/* variant bits: 1 attention encoder, 2 order metadata, 4 transformer */
static int model_case_v(int S, int with_rep, int layers, float dropout, int variant,
                        double *worst) {
    static const int32_t rows[] = {9, 2, 4, 0, 7};
    static const int32_t rep_b[] = {0, 1, 1, 3, 2}, rep_col[] = {1, 0, 4, 3, 2};
    double rep_feat[5 * 2];
    for (int i = 0; i < 10; i++) rep_feat[i] = 0.3 * (i % 4) - 0.5 + 0.07 * i;
    nn_config cfg;
    nn_config_default(&cfg, 11);
    cfg.emb = 3;
    cfg.cnn_out = 4;
    cfg.kernel = 3;
    cfg.gru_hidden = 5;
    cfg.gru_layers = 2;
    cfg.head = 6;
    cfg.dropout = dropout;
    cfg.rep_features = with_rep ? 2 : 0;
    cfg.rep_hidden = 3;
    cfg.gru_layers = layers;
    if (variant) { /* widths divisible by 2 heads */
        cfg.heads = 2;
        cfg.gru_hidden = 6;
        cfg.encoder = variant & 1 ? NN_ENC_ATTENTION : NN_ENC_CNN;
        cfg.order_info = (variant & 2) != 0;
        cfg.sequence = variant & 4 ? NN_SEQ_TRANSFORMER : NN_SEQ_GRU;
    }
    double info[11 * NN_ORDER_INFO];
    for (int o = 0; o < 11; o++) /* dow, hour, days since (missing for some orders) */
        nn_order_info(info + o * NN_ORDER_INFO, o % 7, (5 * o) % 24, o % 3 == 0 ? -1 : 4 * o);
    nn_model m;
    char err[NB_ERRLEN];
    if (nn_model_init(&m, &cfg, 7, err, sizeof err) || nn_model_train_init(&m, err, sizeof err)) {
        printf("# init: %s\n", err);
        return 1;
    }
    small_batch sb;
    nn_batch b;
    make_batch(&sb, &b, 11, S, rows);
    b.ord_info = info;
    if (with_rep) {
        b.n_rep = 5;
        b.rep_b = rep_b;
        b.rep_col = rep_col;
        b.rep_feat = rep_feat;
    }
    /* training=1 with dropout 0: exercises the fused loss+gradient path; zero_grad first:
     * exercises the deferred clearing (out.w overwritten rather than accumulated) */
    nb_rng rng0 = m.rng;
    nn_model_forward(&m, &b, 1, 10.0f);
    nn_model_zero_grad(&m);
    nn_model_backward(&m, &b, 10.0f);
    model_ctx c = {&m, &b, rng0, dropout > 0};
    int bad = 0;
    char what[96];
    for (int k = 0; k < m.n_tensors; k++) {
        const nn_tensor_info *t = &m.tensors[k];
        snprintf(what, sizeof what, "model S=%d rep=%d L=%d p=%g v=%d %s", S, with_rep, layers,
                 (double)dropout, variant, t->name);
        bad += compare(what, m.mem + t->offset, m.grad_mem + t->offset, t->size, model_f, &c, 400,
                       worst);
    }
    nn_model_free(&m);
    return bad;
}

static int model_case_l(int S, int with_rep, int layers, float dropout, double *worst) {
    return model_case_v(S, with_rep, layers, dropout, 0, worst);
}

static int model_case(int S, int with_rep, double *worst) {
    return model_case_l(S, with_rep, 2, 0, worst);
}

static int test_grad_model_full_head(void) {
    double worst = 0;
    int bad = model_case(0, 0, &worst);
    printf("# full head: worst |a-n|/tol over all tensors %.3g\n", worst);
    T_ASSERT(bad == 0, "%d model gradient mismatches (full head)", bad);
    return T_PASS;
}

static int test_grad_model_candidates_repeat(void) {
    double worst = 0;
    int bad = model_case(5, 1, &worst);
    bad += model_case(0, 1, &worst);
    T_ASSERT(bad == 0, "%d model gradient mismatches (candidate head / repeat term)", bad);
    return T_PASS;
}

/* The ranking losses (nn_rank.c): a fixed backward scale (the term's weight), pairs that
 * share logits (an index repeated, on both sides), and differences from -15 to 15, so the
 * BPR check covers both branches of its stable form. The margin's kink (d == margin) is
 * avoided by construction: |d - margin| > 1e-3 >> eps for every pair. */
typedef struct {
    double *x, margin;
    const int64_t *pos, *neg;
    size_t n;
    int margin_loss;
} rank_ctx;
static double rank_f(void *v) {
    rank_ctx *c = v;
    return c->margin_loss ? nn_margin_forward(c->x, c->pos, c->neg, c->n, c->margin)
                          : nn_bpr_forward(c->x, c->pos, c->neg, c->n);
}
static int test_grad_rank_losses(void) {
    size_t n = 24, nx = 12;
    const int64_t pos[24] = {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9, 9, 10, 10, 11, 0, 3};
    const int64_t neg[24] = {5, 6, 7, 0, 8, 9, 10, 11, 2, 1, 4, 0, 3, 3, 2, 1, 0, 4, 7, 6, 2, 9, 11, 7};
    int bad = 0;
    for (int kind = 0; kind < 2; kind++) {
        rank_ctx c = {rnd(nx, 15), 0.8, pos, neg, n, kind};
        for (size_t i = 0; i < n && kind; i++) /* keep d away from the margin's kink */
            for (int t = 0; t < 100 && fabs(c.x[pos[i]] - c.x[neg[i]] - c.margin) < 1e-3; t++)
                c.x[pos[i]] += 0.01;
        double *g = zeros(nx), *ones = zeros(nx);
        if (kind) {
            nn_margin_backward(g, c.x, pos, neg, n, c.margin, 1.0);
            nn_margin_backward(ones, c.x, pos, neg, n, c.margin, 2.5);
        } else {
            nn_bpr_backward(g, c.x, pos, neg, n, 1.0);
            nn_bpr_backward(ones, c.x, pos, neg, n, 2.5);
        }
        bad += compare(kind ? "margin ranking" : "bpr", c.x, g, nx, rank_f, &c, 1000, NULL);
        for (size_t i = 0; i < nx; i++) /* the scale multiplies the gradient */
            T_ASSERT(fabs(ones[i] - 2.5 * g[i]) <= 1e-13 * fabs(ones[i]) + 1e-300,
                     "scale 2.5 [%zu]: %.17g vs %.17g", i, ones[i], 2.5 * g[i]);
        double active = 0;
        for (size_t i = 0; i < nx; i++) active += fabs(g[i]);
        T_ASSERT(active > 0, "%s: every gradient is zero (the check would be vacuous)",
                 kind ? "margin" : "bpr");
        free(c.x);
        free(g);
        free(ones);
    }
    /* stability: BPR of a pair 800 apart is 800 (not inf) one way and ~0 the other */
    double big[2] = {-400, 400};
    int64_t p0 = 0, n1 = 1;
    T_ASSERT(fabs(nn_bpr_forward(big, &p0, &n1, 1) - 800) < 1e-12, "bpr(-800) = %.17g",
             nn_bpr_forward(big, &p0, &n1, 1));
    T_ASSERT(nn_bpr_forward(big, &n1, &p0, 1) < 1e-300, "bpr(800) = %g",
             nn_bpr_forward(big, &n1, &p0, 1));
    T_ASSERT(nn_bpr_forward(big, &p0, &n1, 0) == 0, "no pairs: loss 0");
    T_ASSERT(bad == 0, "%d ranking-loss gradient mismatches", bad);
    return T_PASS;
}

/* One and three GRU layers; and dropout 0.3 in training (between GRU layers and after the
 * head's ReLU) with the masks held fixed, so backward must apply exactly forward's masks. */
static int test_grad_model_layers_dropout(void) {
    double worst = 0;
    int bad = model_case_l(0, 0, 1, 0, &worst);
    bad += model_case_l(0, 0, 3, 0, &worst);
    bad += model_case_l(5, 1, 3, 0.3f, &worst);
    T_ASSERT(bad == 0, "%d model gradient mismatches (layers / dropout)", bad);
    return T_PASS;
}

/* The whole model with issue 11's stages: the attention encoder, the order metadata, the
 * transformer (one and two blocks), each alone and all together, with a candidate head,
 * the repeat term and dropout in the head. */
static int test_grad_model_variants(void) {
    double worst = 0;
    int bad = model_case_v(0, 0, 1, 0, 1, &worst);
    bad += model_case_v(0, 0, 2, 0, 2, &worst);
    bad += model_case_v(0, 0, 1, 0, 4, &worst);
    bad += model_case_v(5, 1, 2, 0.3f, 7, &worst);
    printf("# variants: worst |a-n|/tol over all tensors %.3g\n", worst);
    T_ASSERT(bad == 0, "%d model gradient mismatches (attention / order info / transformer)", bad);
    return T_PASS;
}

int main(void) {
    nb_rng_seed(&g_rng, 1234);
    T_RUN(test_grad_embedding);
    T_RUN(test_grad_conv);
    T_RUN(test_grad_gru);
    T_RUN(test_grad_linear);
    T_RUN(test_grad_linear_rows);
    T_RUN(test_grad_relu_dropout);
    T_RUN(test_grad_bce);
    T_RUN(test_grad_rank_losses);
    T_RUN(test_grad_model_full_head);
    T_RUN(test_grad_model_candidates_repeat);
    T_RUN(test_grad_model_layers_dropout);
    T_RUN(test_grad_model_variants);
    return t_summary();
}
