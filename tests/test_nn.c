/* test_nn.c -- float-build behaviour of the network: loss stability, Adam, candidate head,
 * determinism, batch-order invariance, gradient accumulation, scoring clones, learning. */
#include "harness.h"
#include "nb_err.h"
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- moved here from model/nn_optim.c: only this test uses it ---- */

/* nn_adam_update_scaled with gscale 1. */
static void nn_adam_update(nn_real *p, const nn_real *g, nn_real *m, nn_real *v, size_t n, float lr,
                           float b1, float b2, float eps, long t) {
    nn_adam_update_scaled(p, g, m, v, n, 1, lr, b1, b2, eps, t);
}


/* ---- loss, optimiser ---------------------------------------------------------------- */

static int test_bce_large_logits(void) {
    /* |x| = 100: exp(100) overflows float, so a naive log(sigmoid) gives inf/nan.
     * Analytic: y=0,x=100: l = 100; y=1,x=-100: l = pw*100; the other two ~ e^-100 = 0. */
    float x[4] = {100, -100, 100, -100}, y[4] = {0, 1, 1, 0};
    float pw = 10;
    double l = nn_bce_forward(x, y, 4, pw);
    T_ASSERT(isfinite(l), "loss not finite: %g", l);
    T_ASSERT(fabs(l - (100.0 + 1000.0) / 4) < 1e-4, "mean loss %.9g, expected 275", l);
    double l1 = nn_bce_forward(x, y, 1, pw), l2 = nn_bce_forward(x + 1, y + 1, 1, pw);
    T_ASSERT(l1 == 100.0, "y=0, x=100: %.9g", l1);
    T_ASSERT(l2 == 1000.0, "y=1, x=-100: %.9g", l2);
    float g[4] = {0, 0, 0, 0}, g2[4];
    nn_bce_backward(g, x, y, 4, pw);
    /* d/dx = (sigmoid(x) * (pw*y + 1 - y) - pw*y) / n */
    const float want[4] = {1.0f / 4, -10.0f / 4, 0, 0};
    for (int i = 0; i < 4; i++)
        T_ASSERT(isfinite(g[i]) && fabsf(g[i] - want[i]) < 1e-7f, "grad[%d] = %g want %g", i,
                 (double)g[i], (double)want[i]);
    double lf = nn_bce_forward_backward(g2, x, y, 4, pw);
    T_ASSERT(lf == l, "fused loss %.9g vs %.9g", lf, l);
    for (int i = 0; i < 4; i++) T_ASSERT(g2[i] == g[i], "fused grad[%d]", i);
    /* moderate values against the textbook formula in double */
    float xm = 0.7f, ym = 1;
    double ref = -10.0 * log(1 / (1 + exp(-0.7)));
    T_ASSERT(fabs(nn_bce_forward(&xm, &ym, 1, pw) - ref) < 1e-5, "x=0.7,y=1");
    return T_PASS;
}

/* The float build's own exp/log1p against libm in double, over the range that matters and
 * through both the 8-lane body and the masked tail. */
static int test_bce_accuracy(void) {
    enum { N = 6003 };
    static float x[N], y[N], g[N];
    for (int i = 0; i < N; i++) {
        x[i] = -30.0f + 60.0f * (float)i / (N - 1);
        y[i] = (float)(i % 2);
    }
    x[0] = -88.5f;
    x[1] = 87.9f;
    x[2] = 1e-8f;
    x[3] = -1e-8f;
    x[4] = 0;
    double worst_l = 0, worst_g = 0, sum = 0;
    int wl = 0, wg = 0;
    for (int i = 0; i < N; i++) {
        double xd = x[i], yd = y[i], pw = 10, lw = 1 + (pw - 1) * yd;
        /* -[pw y log s(x) + (1-y) log(1 - s(x))] with log1p/exp in double, written without
         * cancellation (log s(x) = -log1p(exp(-x)), log(1 - s(x)) = -log1p(exp(x))) */
        double ref = pw * yd * (xd >= 0 ? log1p(exp(-xd)) : -xd + log1p(exp(xd))) +
            (1 - yd) * (xd <= 0 ? log1p(exp(xd)) : xd + log1p(exp(-xd)));
        double sig = 1 / (1 + exp(-xd));
        double gref = sig * lw - pw * yd;
        sum += ref;
        float gi = 0;
        double l = nn_bce_forward(x + i, y + i, 1, 10);
        nn_bce_backward(&gi, x + i, y + i, 1, 10);
        /* relative for the loss (absolute below 1e-30: exp(-87) and smaller flush to 0);
         * the gradient's float form sigmoid*lw - pw*y cancels for y = 1, so its error is
         * measured against the scale of its terms, pw */
        double el = fabs(l - ref) / fmax(fabs(ref), 1e-30), eg = fabs(gi - gref) / pw;
        if (el > worst_l) {
            worst_l = el;
            wl = i;
        }
        if (eg > worst_g) {
            worst_g = eg;
            wg = i;
        }
    }
    double mean = nn_bce_forward_backward(g, x, y, N, 10);
    printf("# bce vs libm: worst relative error loss %.3g (x=%g), gradient %.3g (x=%g)\n", worst_l,
           (double)x[wl], worst_g, (double)x[wg]);
    T_ASSERT(worst_l < 2e-6, "loss relative error %g", worst_l);
    T_ASSERT(worst_g < 2e-6, "gradient error %g", worst_g);
    T_ASSERT(fabs(mean - sum / N) < 1e-6 * fabs(sum / N), "mean %.9g vs %.9g", mean, sum / N);
    return T_PASS;
}

static int test_adam_two_steps(void) {
    /* lr 0.1, betas 0.9/0.999, eps 1e-8; p = {1, -2}; gradients {0.5, 3} then {-0.25, -1}.
     * Step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected m^ = g, v^ = g^2, so each p moves by
     *   lr * g/(|g| + eps): p = {1 - 0.1*0.5/0.50000001, -2 - 0.1*3/3.00000001}
     *                         = {0.900000002, -2.0999999996667}.
     * Step 2 (p[0]): m = 0.9*0.05 - 0.025 = 0.02, v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225,
     *   m^ = 0.02/0.19 = 0.10526316, v^ = 0.00031225/0.001999 = 0.15620310, sqrt = 0.39522538,
     *   p = 0.900000002 - 0.1*0.10526316/0.39522538 = 0.87336630.
     *   (p[1]): m = 0.27 - 0.1 = 0.17, v = 0.008991 + 0.001 = 0.009991, m^ = 0.89473684,
     *   v^ = 4.99799900, sqrt = 2.23561155, p = -2.1 - 0.1*0.89473684/2.23561155 = -2.14002186. */
    float p[2] = {1, -2}, m[2] = {0, 0}, v[2] = {0, 0};
    float g1[2] = {0.5f, 3}, g2[2] = {-0.25f, -1};
    nn_adam_update(p, g1, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 1);
    T_ASSERT(fabs(p[0] - 0.900000002) < 1e-6 && fabs(p[1] + 2.0999999996667) < 1e-6,
             "after step 1: %.9g %.9g", (double)p[0], (double)p[1]);
    nn_adam_update(p, g2, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 2);
    T_ASSERT(fabs(p[0] - 0.87336630) < 2e-6, "after step 2: p[0] = %.9g", (double)p[0]);
    T_ASSERT(fabs(p[1] + 2.14002186) < 2e-6, "after step 2: p[1] = %.9g", (double)p[1]);
    return T_PASS;
}

/* ---- model helpers ------------------------------------------------------------------ */

/* A deterministic pseudo-random batch of B users over P products. */
typedef struct {
    int B, n_ord[64], ord_off[64 * 5 + 1];
    int32_t items[64 * 5 * 12];
    float *targets;
} tbatch;

static void tb_make(tbatch *t, nn_batch *b, int B, int P, int max_ord, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    memset(t, 0, sizeof *t);
    t->B = B;
    int o = 0, k = 0;
    for (int i = 0; i < B; i++) {
        t->n_ord[i] = 1 + (int)nb_rng_below(&r, (uint64_t)max_ord);
        for (int j = 0; j < t->n_ord[i]; j++, o++) {
            int len = 1 + (int)nb_rng_below(&r, 11);
            for (int q = 0; q < len; q++) t->items[k++] = (int32_t)nb_rng_below(&r, (uint64_t)P);
            t->ord_off[o + 1] = k;
        }
    }
    t->targets = calloc((size_t)B * P, sizeof(float));
    for (int i = 0; i < B * P; i++) t->targets[i] = nb_rng_uniform(&r) < 0.1;
    memset(b, 0, sizeof *b);
    b->B = B;
    b->n_ord = t->n_ord;
    b->ord_off = t->ord_off;
    b->items = t->items;
    b->targets = t->targets;
}

static void small_cfg(nn_config *c, int P) {
    nn_config_default(c, P);
    c->emb = 8;
    c->cnn_out = 16;
    c->gru_hidden = 24;
    c->head = 20;
}

static int test_config_check(void) {
    nn_config c;
    char err[NB_ERRLEN];
    nn_config_default(&c, 100);
    T_ASSERT(nn_config_check(&c, err, sizeof err) == NB_OK, "default config: %s", err);
    T_ASSERT(c.emb == 32 && c.cnn_out == 128 && c.kernel == 4 && c.gru_hidden == 256 &&
                 c.gru_layers == 2 && c.head == 256 && c.max_orders == 5,
             "defaults");
    c.kernel = 0;
    T_ASSERT(nn_config_check(&c, err, sizeof err) == NB_EINVAL && strstr(err, "kernel"),
             "kernel=0: %s", err);
    nn_config_default(&c, 100);
    c.gru_layers = NN_MAX_LAYERS + 1;
    T_ASSERT(nn_config_check(&c, err, sizeof err) == NB_EINVAL && strstr(err, "gru_layers"),
             "gru_layers: %s", err);
    nn_model m;
    T_ASSERT(nn_model_init(&m, &c, 1, err, sizeof err) == NB_EINVAL, "init rejects bad config");
    return T_PASS;
}

/* The tensor table covers the allocation exactly, in order, for the largest configuration. */
static int test_tensor_table(void) {
    nn_config c;
    small_cfg(&c, 50);
    c.gru_layers = NN_MAX_LAYERS;
    c.rep_features = 3;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 1, err, sizeof err) == NB_OK, "%s", err);
    size_t off = 0;
    for (int k = 0; k < m.n_tensors; k++) {
        T_ASSERT(m.tensors[k].offset == off, "tensor %s offset", m.tensors[k].name);
        T_ASSERT((size_t)m.tensors[k].rows * m.tensors[k].cols == m.tensors[k].size, "%s dims",
                 m.tensors[k].name);
        off += m.tensors[k].size;
    }
    T_ASSERT(off == m.n_params, "tensors cover %zu of %zu reals", off, m.n_params);
    T_ASSERT(m.n_tensors == 11 + 4 * NN_MAX_LAYERS, "n_tensors %d", m.n_tensors);
    T_ASSERT(m.p.out_w == m.mem + m.tensors[m.n_tensors - 6].offset, "out.w view");
    T_ASSERT(!strcmp(m.tensors[3].name, "gru.w_ih.0") && m.tensors[3].rows == 3 * c.gru_hidden &&
                 m.tensors[3].cols == c.cnn_out,
             "gru.w_ih.0 is [3H, C]");
    nn_model_free(&m);
    /* the research setting at the Instacart catalogue size: emb P*E, conv C*E*K + C,
     * GRU 3H*(C + H) + 6H then 3H*2H + 6H, fc H*D + D, out D*P + P = 15,133,336 */
    nn_config_default(&c, 49688);
    T_ASSERT(nn_model_init(&m, &c, 1, err, sizeof err) == NB_OK, "%s", err);
    size_t want = 49688 * 32 + (128 * 32 * 4 + 128) + (768 * (128 + 256) + 1536) +
        (768 * 512 + 1536) + (256 * 256 + 256) + (256 * 49688 + 49688);
    T_ASSERT(m.n_params == want, "n_params %zu, want %zu", m.n_params, want);
    nn_model_free(&m);
    return T_PASS;
}

static int test_init_same_seed_same_bits(void) {
    nn_config c;
    small_cfg(&c, 40);
    nn_model a, b, d;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&a, &c, 42, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_init(&b, &c, 42, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_init(&d, &c, 43, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(!memcmp(a.mem, b.mem, a.n_params * sizeof(float)), "same seed, different bits");
    T_ASSERT(memcmp(a.mem, d.mem, a.n_params * sizeof(float)), "different seeds, same bits");
    /* ranges: embedding ~N(0,1), conv within +-1/sqrt(E*K), out.w within +-1/sqrt(D) */
    double s2 = 0;
    for (int i = 0; i < 40 * c.emb; i++) s2 += (double)a.p.emb[i] * a.p.emb[i];
    T_ASSERT(fabs(s2 / (40 * c.emb) - 1) < 0.2, "embedding variance %g", s2 / (40 * c.emb));
    float bc = 1 / sqrtf((float)c.emb * c.kernel), bo = 1 / sqrtf((float)c.head), mx = 0;
    for (int i = 0; i < c.cnn_out * c.emb * c.kernel; i++) {
        T_ASSERT(fabsf(a.p.conv_w[i]) <= bc, "conv weight out of range");
        if (fabsf(a.p.conv_w[i]) > mx) mx = fabsf(a.p.conv_w[i]);
    }
    T_ASSERT(mx > 0.9f * bc, "conv weights should fill their range (max %g of %g)", mx, bc);
    for (int i = 0; i < 40 * c.head; i++) T_ASSERT(fabsf(a.p.out_w[i]) <= bo, "out.w range");
    nn_model_free(&a);
    nn_model_free(&b);
    nn_model_free(&d);
    return T_PASS;
}

static int test_candidate_head_matches_full(void) {
    int P = 300, B = 9;
    nn_config c;
    small_cfg(&c, P);
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 3, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb;
    nn_batch b;
    tb_make(&tb, &b, B, P, 5, 11);
    b.targets = NULL;
    nn_model_forward(&m, &b, 0, 10);
    float *full = malloc((size_t)B * P * sizeof(float));
    memcpy(full, m.logits, (size_t)B * P * sizeof(float));
    int32_t rows[37];
    for (int s = 0; s < 37; s++) rows[s] = (int32_t)((s * 53 + 7) % P);
    b.S = 37;
    b.rows = rows;
    nn_model_forward(&m, &b, 0, 10);
    int bad = 0;
    for (int i = 0; i < B; i++)
        for (int s = 0; s < 37; s++) bad += m.logits[i * 37 + s] != full[(size_t)i * P + rows[s]];
    free(full);
    free(tb.targets);
    nn_model_free(&m);
    T_ASSERT(bad == 0, "%d of %d candidate logits differ from the full head's columns", bad,
             B * 37);
    return T_PASS;
}

static int test_dropout_off_deterministic(void) {
    int P = 120, B = 7;
    nn_config c;
    small_cfg(&c, P);
    c.dropout = 0.5f;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 5, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb;
    nn_batch b;
    tb_make(&tb, &b, B, P, 5, 2);
    size_t n = (size_t)B * P;
    float *l1 = malloc(n * sizeof(float)), *l2 = malloc(n * sizeof(float));
    double loss1 = nn_model_forward(&m, &b, 0, 10);
    memcpy(l1, m.logits, n * sizeof(float));
    double loss2 = nn_model_forward(&m, &b, 0, 10);
    int same_eval = loss1 == loss2 && !memcmp(l1, m.logits, n * sizeof(float));
    nn_model_forward(&m, &b, 1, 10);
    memcpy(l2, m.logits, n * sizeof(float));
    int train_differs = memcmp(l1, l2, n * sizeof(float)) != 0;
    nn_model_forward(&m, &b, 1, 10);
    int train_draws_new_masks = memcmp(l2, m.logits, n * sizeof(float)) != 0;
    free(l1);
    free(l2);
    free(tb.targets);
    nn_model_free(&m);
    T_ASSERT(same_eval, "two eval forwards differ");
    T_ASSERT(train_differs, "dropout 0.5 in training changed nothing");
    T_ASSERT(train_draws_new_masks, "two training forwards used the same dropout masks");
    return T_PASS;
}

static int test_batch_order_invariance(void) {
    int P = 150, B = 11;
    nn_config c;
    small_cfg(&c, P);
    c.rep_features = 2;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 9, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb, tp;
    nn_batch b, bp;
    tb_make(&tb, &b, B, P, 5, 4);
    int32_t rep_b[3] = {0, 4, 10}, rep_col[3] = {3, 7, 149};
    float feat[6] = {1, 0.5f, -1, 2, 0.25f, 0.75f};
    b.n_rep = 3;
    b.rep_b = rep_b;
    b.rep_col = rep_col;
    b.rep_feat = feat;
    double loss = nn_model_forward(&m, &b, 0, 10);
    size_t n = (size_t)B * P;
    float *ref = malloc(n * sizeof(float));
    memcpy(ref, m.logits, n * sizeof(float));
    /* reverse the samples (and their orders, items, targets and repeat entries) */
    memset(&tp, 0, sizeof tp);
    tp.targets = malloc(n * sizeof(float));
    int o = 0, k = 0, pos[64];
    for (int j = 0; j < B; j++) {
        int i = B - 1 - j;
        pos[i] = j;
        tp.n_ord[j] = tb.n_ord[i];
        int first = 0;
        for (int q = 0; q < i; q++) first += tb.n_ord[q];
        for (int q = 0; q < tb.n_ord[i]; q++, o++) {
            int a0 = tb.ord_off[first + q], a1 = tb.ord_off[first + q + 1];
            memcpy(tp.items + k, tb.items + a0, (size_t)(a1 - a0) * sizeof(int32_t));
            k += a1 - a0;
            tp.ord_off[o + 1] = k;
        }
        memcpy(tp.targets + (size_t)j * P, tb.targets + (size_t)i * P, P * sizeof(float));
    }
    bp = b;
    bp.n_ord = tp.n_ord;
    bp.ord_off = tp.ord_off;
    bp.items = tp.items;
    bp.targets = tp.targets;
    int32_t rep_bp[3];
    for (int i = 0; i < 3; i++) rep_bp[i] = pos[rep_b[i]];
    bp.rep_b = rep_bp;
    double lossp = nn_model_forward(&m, &bp, 0, 10);
    int bad = 0;
    float worst = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < P; j++) {
            float d = fabsf(m.logits[(size_t)pos[i] * P + j] - ref[(size_t)i * P + j]);
            if (d > worst) worst = d;
            bad += d > 1e-5f * (1 + fabsf(ref[(size_t)i * P + j]));
        }
    free(ref);
    free(tb.targets);
    free(tp.targets);
    nn_model_free(&m);
    T_ASSERT(bad == 0, "%d logits not permuted with the samples (worst diff %g)", bad, worst);
    T_ASSERT(fabs(loss - lossp) < 1e-6 * fabs(loss), "loss %.9g vs %.9g", loss, lossp);
    return T_PASS;
}

/* The repeat MLP adds to exactly the listed (sample, column) logits. */
static int test_repeat_term_only_listed(void) {
    int P = 60, B = 4;
    nn_config c;
    small_cfg(&c, P);
    c.rep_features = 3;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 12, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb;
    nn_batch b;
    tb_make(&tb, &b, B, P, 3, 8);
    int32_t rows[5] = {3, 9, 17, 40, 59};
    b.S = 5;
    b.rows = rows;
    nn_model_forward(&m, &b, 0, 10);
    float base[20];
    memcpy(base, m.logits, sizeof base);
    int32_t rep_b[2] = {1, 3}, rep_col[2] = {4, 0};
    float feat[6] = {1, 2, 3, -1, 0.5f, 0};
    b.n_rep = 2;
    b.rep_b = rep_b;
    b.rep_col = rep_col;
    b.rep_feat = feat;
    nn_model_forward(&m, &b, 0, 10);
    int changed = 0, wrong = 0;
    for (int i = 0; i < 20; i++) {
        int listed = i == 1 * 5 + 4 || i == 3 * 5 + 0;
        if (m.logits[i] != base[i]) {
            if (listed)
                changed++;
            else
                wrong++;
        }
    }
    free(tb.targets);
    nn_model_free(&m);
    T_ASSERT(wrong == 0, "%d unlisted logits changed", wrong);
    T_ASSERT(changed == 2, "%d of 2 listed logits changed", changed);
    return T_PASS;
}

/* Backward accumulates; zero_grad (deferred clearing) gives the same as fresh gradients. */
static int test_backward_accumulates(void) {
    int P = 80, B = 6;
    nn_config c;
    small_cfg(&c, P);
    c.dropout = 0;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 21, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&m, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb;
    nn_batch b;
    tb_make(&tb, &b, B, P, 5, 13);
    nn_model_forward(&m, &b, 1, 10);
    nn_model_backward(&m, &b, 10);
    float *g1 = malloc(m.n_params * sizeof(float));
    memcpy(g1, m.grad_mem, m.n_params * sizeof(float));
    nn_model_forward(&m, &b, 1, 10);
    nn_model_backward(&m, &b, 10);
    int bad2 = 0;
    for (size_t i = 0; i < m.n_params; i++)
        bad2 += fabsf(m.grad_mem[i] - 2 * g1[i]) > 1e-6f * (1 + fabsf(g1[i]));
    nn_model_zero_grad(&m);
    nn_model_forward(&m, &b, 1, 10);
    nn_model_backward(&m, &b, 10);
    int bad1 = 0, nonzero = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        bad1 += fabsf(m.grad_mem[i] - g1[i]) > 1e-6f * (1 + fabsf(g1[i]));
        nonzero += g1[i] != 0;
    }
    free(g1);
    free(tb.targets);
    nn_model_free(&m);
    T_ASSERT(nonzero > 1000, "only %d non-zero gradient entries", nonzero);
    T_ASSERT(bad2 == 0, "%d entries are not doubled by a second backward", bad2);
    T_ASSERT(bad1 == 0, "%d entries differ after zero_grad + backward", bad1);
    return T_PASS;
}

/* Gradient clipping: the step equals Adam on the gradient scaled by max_norm/(norm+1e-6). */
static int test_adam_step_clipping(void) {
    nn_config c;
    small_cfg(&c, 30);
    nn_model m, r;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&m, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_init(&r, &c, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&r, err, sizeof err) == NB_OK, "%s", err);
    double sq = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        m.grad_mem[i] = (float)((int)(i % 7) - 3) * 0.01f;
        sq += (double)m.grad_mem[i] * m.grad_mem[i];
    }
    double norm = nn_model_adam_step(&m, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.5f);
    T_ASSERT(fabs(norm - sqrt(sq)) < 1e-9 * sqrt(sq), "norm %.12g vs %.12g", norm, sqrt(sq));
    T_ASSERT(norm > 0.5, "the test needs a norm above max_norm (%g)", norm);
    float scale = (float)(0.5 / (sqrt(sq) + 1e-6));
    for (size_t i = 0; i < r.n_params; i++) r.grad_mem[i] = (float)((int)(i % 7) - 3) * 0.01f;
    nn_adam_update_scaled(r.mem, r.grad_mem, r.adam_m, r.adam_v, r.n_params, scale, 1e-3f, 0.9f,
                          0.999f, 1e-8f, 1);
    int bad = 0;
    for (size_t i = 0; i < m.n_params; i++)
        bad += m.adam_m[i] != r.adam_m[i] || m.mem[i] != r.mem[i];
    T_ASSERT(m.adam_t == 1, "adam_t %ld", m.adam_t);
    nn_model_free(&m);
    nn_model_free(&r);
    T_ASSERT(bad == 0, "%d entries differ from the hand-scaled update", bad);
    return T_PASS;
}

/* An order longer than max_products is cut to its first max_products items. */
static int test_long_order_truncated(void) {
    int P = 200;
    nn_config c;
    small_cfg(&c, P);
    c.max_products = 20;
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 8, err, sizeof err) == NB_OK, "%s", err);
    int32_t items[2 + 30];
    for (int i = 0; i < 32; i++) items[i] = (int32_t)((i * 37 + 11) % P);
    int n_ord = 2, off_long[3] = {0, 2, 32}, off_cut[3] = {0, 2, 22};
    nn_batch b = {.B = 1, .n_ord = &n_ord, .ord_off = off_long, .items = items};
    nn_model_forward(&m, &b, 0, 10);
    float *l1 = malloc((size_t)P * sizeof(float));
    memcpy(l1, m.logits, (size_t)P * sizeof(float));
    b.ord_off = off_cut;
    nn_model_forward(&m, &b, 0, 10);
    int same = !memcmp(l1, m.logits, (size_t)P * sizeof(float));
    /* and the cut is real: 10 more items inside the limit change the result */
    c.max_products = 40;
    nn_model m2;
    T_ASSERT(nn_model_init(&m2, &c, 8, err, sizeof err) == NB_OK, "%s", err);
    b.ord_off = off_long;
    nn_model_forward(&m2, &b, 0, 10);
    int differs = memcmp(l1, m2.logits, (size_t)P * sizeof(float)) != 0;
    free(l1);
    nn_model_free(&m);
    nn_model_free(&m2);
    T_ASSERT(same, "a 30-item order with max_products 20 differs from its first 20 items");
    T_ASSERT(differs, "items 21..30 should matter when max_products is 40");
    return T_PASS;
}

/* Two threads: logits bit-identical to one thread (the head kernel's split does not change
 * any operation), gradients equal up to the order of the partial sums, for the full and a
 * candidate head (P large enough that the output layer really is split). */
static int test_threads_match_single(void) {
    int P = 9000, B = 16;
    nn_config c;
    small_cfg(&c, P);
    c.dropout = 0;
    c.head = 64; /* B*D = 1024: both the forward (> 2,048 columns) and the backward
                      (> 1,024 columns) thresholds for splitting are passed */
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 31, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&m, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb;
    nn_batch b;
    tb_make(&tb, &b, B, P, 5, 17);
    static int32_t rows[4000];
    for (int s = 0; s < 4000; s++) rows[s] = (int32_t)((s * 7 + 3) % P);
    size_t n = (size_t)B * P;
    float *l1 = malloc(n * sizeof(float)), *g1 = malloc(m.n_params * sizeof(float));
    int bad_logits = 0, bad_grad = 0;
    for (int cand = 0; cand < 2; cand++) {
        b.S = cand ? 4000 : 0;
        b.rows = cand ? rows : NULL;
        size_t nl = (size_t)B * (cand ? 4000 : P);
        for (int th = 1; th <= 2; th++) {
            nn_set_threads(th);
            nn_model_forward(&m, &b, 1, 10);
            nn_model_zero_grad(&m);
            nn_model_backward(&m, &b, 10);
            if (th == 1) {
                memcpy(l1, m.logits, nl * sizeof(float));
                memcpy(g1, m.grad_mem, m.n_params * sizeof(float));
            } else {
                bad_logits += memcmp(l1, m.logits, nl * sizeof(float)) != 0;
                for (size_t i = 0; i < m.n_params; i++)
                    bad_grad += fabsf(m.grad_mem[i] - g1[i]) > 1e-5f * (fabsf(g1[i]) + 1e-3f);
            }
        }
    }
    nn_set_threads(1);
    free(l1);
    free(g1);
    free(tb.targets);
    nn_model_free(&m);
    T_ASSERT(bad_logits == 0, "logits differ between 1 and 2 threads");
    T_ASSERT(bad_grad == 0, "%d gradient entries differ between 1 and 2 threads", bad_grad);
    return T_PASS;
}

static int test_scoring_clone(void) {
    int P = 90, B = 5;
    nn_config c;
    small_cfg(&c, P);
    nn_model m, s;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 4, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_clone_for_scoring(&s, &m, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(s.mem == m.mem && !s.owns_mem && m.owns_mem, "clone borrows the parameters");
    tbatch tb;
    nn_batch b;
    tb_make(&tb, &b, B, P, 5, 6);
    b.targets = NULL;
    nn_model_forward(&m, &b, 0, 10);
    nn_model_forward(&s, &b, 0, 10);
    T_ASSERT(s.logits != m.logits, "own activation buffers");
    int same = !memcmp(s.logits, m.logits, (size_t)B * P * sizeof(float));
    nn_model_free(&s);
    /* m's parameters must survive the clone's free (valgrind/ASan would flag a double free) */
    nn_model_forward(&m, &b, 0, 10);
    free(tb.targets);
    nn_model_free(&m);
    T_ASSERT(same, "clone logits differ");
    return T_PASS;
}

/* Adam steps on one fixed batch whose targets are the products of each user's last order
 * must overfit it: the loss has to fall to a fraction of its start. */
static int test_overfits_fixed_batch(void) {
    int P = 40, B = 16;
    nn_config c;
    small_cfg(&c, P);
    nn_model m;
    char err[NB_ERRLEN];
    T_ASSERT(nn_model_init(&m, &c, 77, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(nn_model_train_init(&m, err, sizeof err) == NB_OK, "%s", err);
    tbatch tb;
    nn_batch b;
    double first = 0, last = 0;
    for (int step = 0; step < 200; step++) {
        tb_make(&tb, &b, B, P, 5, 1000);
        memset(tb.targets, 0, (size_t)B * P * sizeof(float));
        int o = 0;
        for (int i = 0; i < B; i++) {
            o += tb.n_ord[i];
            for (int q = tb.ord_off[o - 1]; q < tb.ord_off[o]; q++)
                tb.targets[(size_t)i * P + tb.items[q]] = 1;
        }
        double l = nn_model_forward(&m, &b, 1, 3);
        nn_model_zero_grad(&m);
        nn_model_backward(&m, &b, 3);
        nn_model_adam_step(&m, 1e-2f, 0.9f, 0.999f, 1e-8f, 5);
        if (step < 20) first += l / 20;
        if (step >= 180) last += l / 20;
        free(tb.targets);
    }
    nn_model_free(&m);
    printf("# fixed batch: mean loss first 20 steps %.4f, last 20 %.4f\n", first, last);
    T_ASSERT(isfinite(last) && last < 0.2 * first, "loss %.4f -> %.4f", first, last);
    return T_PASS;
}

int main(void) {
    T_RUN(test_bce_large_logits);
    T_RUN(test_bce_accuracy);
    T_RUN(test_adam_two_steps);
    T_RUN(test_config_check);
    T_RUN(test_tensor_table);
    T_RUN(test_init_same_seed_same_bits);
    T_RUN(test_candidate_head_matches_full);
    T_RUN(test_dropout_off_deterministic);
    T_RUN(test_batch_order_invariance);
    T_RUN(test_repeat_term_only_listed);
    T_RUN(test_backward_accumulates);
    T_RUN(test_adam_step_clipping);
    T_RUN(test_long_order_truncated);
    T_RUN(test_threads_match_single);
    T_RUN(test_scoring_clone);
    T_RUN(test_overfits_fixed_batch);
    return t_summary();
}
