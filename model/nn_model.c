/* nn_model.c -- the CNN -> GRU -> head model: layout, init, forward, backward, Adam step.
 *
 * Data flow of one batch (B samples, T = the largest n_ord):
 *   samples sorted by n_ord descending (perm: sorted position -> caller's index), so GRU step
 *   t has the bt[t] longest users active in rows 0..bt[t]-1 (like pack_padded_sequence);
 *   the orders are listed step-major (t, then sorted row) and go through
 *   embedding -> conv+ReLU+max-pool as one packed batch of n_ord_tot orders;
 *   GRU layer 0 input x0 [T,B,C] <- those pooled vectors; layers 1.. read the previous
 *   layer's states after dropout; user vector u[b] = top layer's final state of caller b;
 *   head fc -> ReLU -> dropout -> out (all P rows or the S candidate rows), in the caller's
 *   sample order, + the repeat MLP on the listed (sample, column) entries.
 * The research log's other designs (nn_config.encoder / order_info / sequence) swap stages:
 * the attention encoder (nn_variant.c) replaces conv+pool on the same packed orders; the
 * order metadata features are appended to each order vector; the transformer (nn_variant.c)
 * replaces the GRU stack, reading the orders regrouped sample by sample (tf_forward).
 */
#include "nn.h"
#include "nb_err.h"
#include "nn_buf.h"
#include "nn_variant.h"

#include <assert.h>
#include <limits.h>
#include <cblas.h>
#undef I /* OpenBLAS's cblas.h pulls in complex.h; I is our input-size name */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------------ */

/* The research log's best setting (see nn.h for each field). */
static const char *const enc_words[] = {"cnn", "attention", NULL};
static const char *const seq_words[] = {"gru", "transformer", NULL};
static const char *const off_on[] = {"off", "on", NULL};
#define F(field, fl, flag) \
    { #field, offsetof(nn_config, field), fl, flag, NULL }
#define W(field, flag, words) \
    { #field, offsetof(nn_config, field), 0, flag, words }
const nn_config_field nn_config_fields[NN_CONFIG_NFIELDS] = {
    F(n_products, 0, NULL),
    F(emb, 0, "emb"),
    F(cnn_out, 0, "cnn-out"),
    F(kernel, 0, "kernel"),
    F(gru_hidden, 0, "gru-hidden"),
    F(gru_layers, 0, "gru-layers"),
    F(head, 0, "head"),
    F(max_orders, 0, "orders"),
    F(max_products, 0, "max-products"),
    F(dropout, 1, "dropout"),
    F(rep_features, 0, NULL),
    F(rep_hidden, 0, "rep-hidden"),
    /* version 2 of the weight file (NN_CONFIG_NFIELDS_V1 above) */
    W(encoder, "encoder", enc_words),
    W(order_info, "order-info", off_on),
    W(sequence, "sequence", seq_words),
    F(heads, 0, "heads"),
};
#undef F
#undef W

/* See nn.h. */
double nn_config_get(const nn_config *c, const nn_config_field *f) {
    const char *p = (const char *)c + f->off;
    return f->is_float ? (double)*(const float *)p : (double)*(const int *)p;
}

/* See nn.h. */
void nn_config_set(nn_config *c, const nn_config_field *f, double v) {
    char *p = (char *)c + f->off;
    if (f->is_float)
        *(float *)p = (float)v;
    else
        *(int *)p = (int)v;
}

/* See nn.h. */
void nn_config_default(nn_config *c, int n_products) {
    memset(c, 0, sizeof *c);
    c->n_products = n_products;
    c->emb = 32;
    c->cnn_out = 128;
    c->kernel = 4;
    c->gru_hidden = 256;
    c->gru_layers = 2;
    c->head = 256;
    c->max_orders = 5;
    c->max_products = 145;
    c->dropout = 0.1f;
    c->rep_features = 0;
    c->rep_hidden = 32;
    c->encoder = NN_ENC_CNN;
    c->order_info = 0;
    c->sequence = NN_SEQ_GRU;
    c->heads = 4;
}

/* See nn.h. Scaled scalars, not embeddings: the cyclic pairs put Sunday next to Saturday
 * and 23h next to 0h without parameters, and a data set whose fields are placeholders
 * (constant) gives constant features that cost nothing. */
void nn_order_info(nn_real *f, int dow, int hour, int days_since) {
    const double tau = 6.283185307179586;
    double d = ((dow % 7) + 7) % 7, h = ((hour % 24) + 24) % 24;
    f[0] = (nn_real)sin(tau * d / 7);
    f[1] = (nn_real)cos(tau * d / 7);
    f[2] = (nn_real)sin(tau * h / 24);
    f[3] = (nn_real)cos(tau * h / 24);
    f[4] = days_since < 0 ? 0 : (nn_real)((days_since > 30 ? 30 : days_since) / 30.0);
    f[5] = days_since < 0 ? 1 : 0;
}

/* Returns NB_OK or NB_EINVAL naming the first bad field. */
int nn_config_check(const nn_config *c, char *err, size_t errlen) {
    struct {
        const char *name;
        int v;
    } pos[] = {
        {"n_products", c->n_products}, {"emb", c->emb},
        {"cnn_out", c->cnn_out},       {"kernel", c->kernel},
        {"gru_hidden", c->gru_hidden}, {"head", c->head},
        {"max_orders", c->max_orders}, {"max_products", c->max_products},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return nb_err(err, errlen, NB_EINVAL, "nn_config.%s must be > 0 (got %d)", pos[i].name,
                          pos[i].v);
    if (c->gru_layers < 1 || c->gru_layers > NN_MAX_LAYERS)
        return nb_err(err, errlen, NB_EINVAL, "nn_config.gru_layers must be 1..%d (got %d)",
                      NN_MAX_LAYERS, c->gru_layers);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return nb_err(err, errlen, NB_EINVAL, "nn_config.dropout must be in [0, 1) (got %g)",
                      (double)c->dropout);
    if (c->rep_features < 0)
        return nb_err(err, errlen, NB_EINVAL, "nn_config.rep_features must be >= 0 (got %d)",
                      c->rep_features);
    if (c->rep_features > 0 && c->rep_hidden <= 0)
        return nb_err(err, errlen, NB_EINVAL,
                      "nn_config.rep_hidden must be > 0 when rep_features > 0 (got %d)",
                      c->rep_hidden);
    if (c->encoder != NN_ENC_CNN && c->encoder != NN_ENC_ATTENTION)
        return nb_err(err, errlen, NB_EINVAL,
                      "nn_config.encoder must be 0 (cnn) or 1 (attention) (got %d)", c->encoder);
    if (c->sequence != NN_SEQ_GRU && c->sequence != NN_SEQ_TRANSFORMER)
        return nb_err(err, errlen, NB_EINVAL,
                      "nn_config.sequence must be 0 (gru) or 1 (transformer) (got %d)",
                      c->sequence);
    if (c->order_info != 0 && c->order_info != 1)
        return nb_err(err, errlen, NB_EINVAL, "nn_config.order_info must be 0 or 1 (got %d)",
                      c->order_info);
    if (c->heads < 1)
        return nb_err(err, errlen, NB_EINVAL, "nn_config.heads must be > 0 (got %d)", c->heads);
    if (c->encoder == NN_ENC_ATTENTION && c->cnn_out % c->heads)
        return nb_err(err, errlen, NB_EINVAL,
                      "nn_config.cnn_out (%d, the attention encoder's width) must be a multiple "
                      "of heads (%d)",
                      c->cnn_out, c->heads);
    if (c->sequence == NN_SEQ_TRANSFORMER && c->gru_hidden % c->heads)
        return nb_err(err, errlen, NB_EINVAL,
                      "nn_config.gru_hidden (%d, the transformer's width) must be a multiple of "
                      "heads (%d)",
                      c->gru_hidden, c->heads);
    return NB_OK;
}

/* The width of an order's vector into the sequence model: the encoder's output, plus the
 * order metadata features with order_info. */
static int nn_seq_input(const nn_config *c) {
    return c->cnn_out + (c->order_info ? NN_ORDER_INFO : 0);
}

/* ---- activations -------------------------------------------------------------------- */


typedef struct {
    /* dimensions of the last forward */
    int B, T, n_ord_tot, n_items, NS, n_rep, dl_ready;
    int packed; /* scoring clone: whh_pack holds the repacked recurrent weights */
    buf perm, inv, bt, ord_start, coff, cidx, eout, cscr, cout, camax, x0;
    buf hs[NN_MAX_LAYERS], gates[NN_MAX_LAYERS], dmask[NN_MAX_LAYERS], xd[NN_MAX_LAYERS];
    buf u, a1, r1, hmask, d1, wbuf, logits, dlogits, rp1, rh1, rv;
    /* backward */
    buf dhs, dx, gscr, dcout, deout, du, dd1, dr1, da1, dwbuf, dv, dh1, dp1, hparts;
    buf whh_pack[NN_MAX_LAYERS];
    buf oinfo, soff, xs, us, dxs; /* order metadata; the transformer's sample-major tokens */
    nn_var_act var;               /* the alternative stages' buffers (all bufs too) */
} nn_act;

#define NEED(field, type, count) ((type *)need(&a->field, (size_t)(count) * sizeof(type)))

/* Frees every activation buffer and a itself (NULL is fine). */
static void act_free(nn_act *a) {
    if (!a) return;
    /* every member from perm on is a buf (nn_var_act holds only bufs) */
    size_t first = offsetof(nn_act, perm), n = (sizeof *a - first) / sizeof(buf);
    buf *all = (buf *)((char *)a + first);
    for (size_t i = 0; i < n; i++) free(all[i].p);
    free(a);
}

/* ---- layout and init ---------------------------------------------------------------- */

/* The tensors of configuration c, in file order = init order = memory order: fills
 * t[0..n) with names and shapes (offset and size left 0) and returns n. The one list of a
 * model's tensors: the layout below and the parameter count (nn_config_params) read it. */
static int tensor_shapes(const nn_config *c, nn_tensor_info *t) {
    int n = 0;
#define T_ADD(nm, r, cl)                              \
    do {                                              \
        t[n] = (nn_tensor_info){nm, 0, 0, (r), (cl)}; \
        n++;                                          \
    } while (0)
    static const char *gn[NN_MAX_LAYERS][4] = {
        {"gru.w_ih.0", "gru.w_hh.0", "gru.b_ih.0", "gru.b_hh.0"},
        {"gru.w_ih.1", "gru.w_hh.1", "gru.b_ih.1", "gru.b_hh.1"},
        {"gru.w_ih.2", "gru.w_hh.2", "gru.b_ih.2", "gru.b_hh.2"},
        {"gru.w_ih.3", "gru.w_hh.3", "gru.b_ih.3", "gru.b_hh.3"},
    };
    static const char *tn[NN_MAX_LAYERS][NN_TBLOCK_NTENSORS] = {
#define TB(l)                                                                          \
    {"tf.ln1.w." #l,      "tf.ln1.b." #l,      "tf.attn.w_in." #l, "tf.attn.b_in." #l, \
     "tf.attn.w_out." #l, "tf.attn.b_out." #l, "tf.ln2.w." #l,     "tf.ln2.b." #l,     \
     "tf.ff1.w." #l,      "tf.ff1.b." #l,      "tf.ff2.w." #l,     "tf.ff2.b." #l}
        TB(0),
        TB(1),
        TB(2),
        TB(3),
#undef TB
    };
    int H = c->gru_hidden, A = c->cnn_out, I0 = nn_seq_input(c);
    T_ADD("emb", c->n_products, c->emb);
    if (c->encoder == NN_ENC_ATTENTION) {
        T_ADD("enc.w", A, c->emb);
        T_ADD("enc.b", 1, A);
        T_ADD("enc.mha.w_in", 3 * A, A);
        T_ADD("enc.mha.b_in", 1, 3 * A);
        T_ADD("enc.mha.w_out", A, A);
        T_ADD("enc.mha.b_out", 1, A);
        T_ADD("enc.pool.q", 1, A);
    } else {
        T_ADD("conv.w", c->cnn_out, c->emb * c->kernel);
        T_ADD("conv.b", 1, c->cnn_out);
    }
    if (c->sequence == NN_SEQ_TRANSFORMER) {
        T_ADD("tf.w_in", H, I0);
        T_ADD("tf.b_in", 1, H);
        T_ADD("tf.pos", c->max_orders, H);
        for (int l = 0; l < c->gru_layers; l++) {
            /* shapes in nn_tblock_params order, F = 4H */
            const int rc[NN_TBLOCK_NTENSORS][2] = {{1, H},     {1, H},     {3 * H, H}, {1, 3 * H},
                                                   {H, H},     {1, H},     {1, H},     {1, H},
                                                   {4 * H, H}, {1, 4 * H}, {H, 4 * H}, {1, H}};
            for (int j = 0; j < NN_TBLOCK_NTENSORS; j++) T_ADD(tn[l][j], rc[j][0], rc[j][1]);
        }
        T_ADD("tf.lnf.w", 1, H);
        T_ADD("tf.lnf.b", 1, H);
    } else {
        for (int l = 0; l < c->gru_layers; l++) {
            T_ADD(gn[l][0], 3 * H, l == 0 ? I0 : H);
            T_ADD(gn[l][1], 3 * H, H);
            T_ADD(gn[l][2], 1, 3 * H);
            T_ADD(gn[l][3], 1, 3 * H);
        }
    }
    T_ADD("fc.w", c->head, H);
    T_ADD("fc.b", 1, c->head);
    T_ADD("out.w", c->n_products, c->head);
    T_ADD("out.b", 1, c->n_products);
    if (c->rep_features > 0) {
        T_ADD("rep.w1", c->rep_hidden, c->rep_features);
        T_ADD("rep.b1", 1, c->rep_hidden);
        T_ADD("rep.w2", 1, c->rep_hidden);
        T_ADD("rep.b2", 1, 1);
    }
#undef T_ADD
    return n;
}

/* See nn.h: the sum over tensor_shapes in double, exact below 2^53. */
double nn_config_params(const nn_config *c) {
    /* shapes that do not fit an int (a crafted header) have no parameter count */
    if ((double)c->emb * c->kernel > INT_MAX || 4.0 * c->gru_hidden > INT_MAX ||
        3.0 * c->cnn_out > INT_MAX || (double)c->cnn_out + NN_ORDER_INFO > INT_MAX)
        return HUGE_VAL;
    nn_tensor_info t[sizeof((nn_model *)0)->tensors / sizeof(nn_tensor_info)];
    int n = tensor_shapes(c, t);
    double total = 0;
    for (int k = 0; k < n; k++) total += (double)t[k].rows * (double)t[k].cols;
    return total;
}

/* Fills m->tensors and n_params for m->cfg (tensor_shapes, then offsets in that order). */
static void layout(nn_model *m) {
    size_t off = 0;
    int n = tensor_shapes(&m->cfg, m->tensors);
    assert(n <= (int)(sizeof m->tensors / sizeof m->tensors[0]));
    for (int k = 0; k < n; k++) {
        nn_tensor_info *t = &m->tensors[k];
        t->offset = off;
        t->size = (size_t)t->rows * (size_t)t->cols;
        off += t->size;
    }
    m->n_tensors = n;
    m->n_params = off;
}

/* Named views into base (mem, grad_mem, adam_m or adam_v) following m->tensors. */
static void bind(const nn_model *m, nn_real *base, nn_params *p) {
    memset(p, 0, sizeof *p);
    int k = 0;
#define NX() (base + m->tensors[k++].offset)
    p->emb = NX();
    if (m->cfg.encoder == NN_ENC_ATTENTION) {
        p->enc_w = NX();
        p->enc_b = NX();
        p->enc_w_in = NX();
        p->enc_b_in = NX();
        p->enc_w_out = NX();
        p->enc_b_out = NX();
        p->enc_q = NX();
    } else {
        p->conv_w = NX();
        p->conv_b = NX();
    }
    if (m->cfg.sequence == NN_SEQ_TRANSFORMER) {
        p->tf_w_in = NX();
        p->tf_b_in = NX();
        p->tf_pos = NX();
        for (int l = 0; l < m->cfg.gru_layers; l++) {
            nn_tblock_params *b = &p->tf[l];
            nn_real **f[NN_TBLOCK_NTENSORS] = {&b->ln1_w, &b->ln1_b, &b->w_in,  &b->b_in,
                                               &b->w_out, &b->b_out, &b->ln2_w, &b->ln2_b,
                                               &b->ff1_w, &b->ff1_b, &b->ff2_w, &b->ff2_b};
            for (int j = 0; j < NN_TBLOCK_NTENSORS; j++) *f[j] = NX();
        }
        p->tf_lnf_w = NX();
        p->tf_lnf_b = NX();
    } else {
        for (int l = 0; l < m->cfg.gru_layers; l++) {
            p->gru_w_ih[l] = NX();
            p->gru_w_hh[l] = NX();
            p->gru_b_ih[l] = NX();
            p->gru_b_hh[l] = NX();
        }
    }
    p->fc_w = NX();
    p->fc_b = NX();
    p->out_w = NX();
    p->out_b = NX();
    if (m->cfg.rep_features > 0) {
        p->rep_w1 = NX();
        p->rep_b1 = NX();
        p->rep_w2 = NX();
        p->rep_b2 = NX();
    }
#undef NX
    assert(k == m->n_tensors);
}

/* Returns n zeroed reals, 64-byte aligned (caller frees), or NULL. */
static nn_real *alloc_reals(size_t n) { return nb_xaligned(64, n * sizeof(nn_real)); }

/* x[i] ~ U(-bound, bound), drawn in index order from r. */
static void fill_uniform(nn_real *x, size_t n, double bound, nb_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (nn_real)((2 * nb_rng_uniform(r) - 1) * bound);
}

/* How tensor `name` starts (PyTorch's defaults for the module it stands for): uniform
 * +-bound, the returned value (1/sqrt(fan_in): conv in_channels*K, GRU hidden size, linear
 * in_features; Xavier for an attention's in_proj); or, for a return of 0, the constant
 * *fill (LayerNorm weights 1, LayerNorm and attention biases 0), drawing nothing. */
static double init_bound(const nn_model *m, const char *name, const nn_tensor_info *t,
                         double *fill) {
    const nn_config *c = &m->cfg;
    double A = c->cnn_out, H = c->gru_hidden;
    *fill = 0;
    if (strstr(name, ".ln")) { /* tf.ln1.w.0, tf.lnf.b, ... */
        *fill = strstr(name, ".w") ? 1 : 0;
        return 0;
    }
    if (!strcmp(name, "tf.w_in") || !strcmp(name, "tf.b_in"))
        return 1 / sqrt((double)nn_seq_input(c));
    if (strstr(name, ".b_in") || strstr(name, ".b_out")) return 0;
    if (!strcmp(name, "enc.w") || !strcmp(name, "enc.b")) return 1 / sqrt((double)c->emb);
    if (!strcmp(name, "enc.mha.w_in")) return sqrt(6 / (A + 3 * A));
    if (!strcmp(name, "enc.mha.w_out") || !strcmp(name, "enc.pool.q")) return 1 / sqrt(A);
    if (!strcmp(name, "tf.pos")) return 1 / sqrt(H);
    if (!strncmp(name, "tf.attn.w_in.", 13)) return sqrt(6 / (H + 3 * H));
    if (!strncmp(name, "tf.attn.w_out.", 14) || !strncmp(name, "tf.ff1.", 7)) return 1 / sqrt(H);
    if (!strncmp(name, "tf.ff2.", 7)) return 1 / sqrt(4 * H);
    if (!strncmp(name, "conv.", 5)) return 1 / sqrt((double)c->emb * c->kernel);
    if (!strncmp(name, "gru.", 4)) return 1 / sqrt((double)c->gru_hidden);
    if (!strcmp(name, "fc.w") || !strcmp(name, "fc.b")) return 1 / sqrt((double)c->gru_hidden);
    if (!strcmp(name, "out.w") || !strcmp(name, "out.b")) return 1 / sqrt((double)c->head);
    if (!strcmp(name, "rep.w1") || !strcmp(name, "rep.b1"))
        return 1 / sqrt((double)c->rep_features);
    if (!strcmp(name, "rep.w2") || !strcmp(name, "rep.b2")) return 1 / sqrt((double)c->rep_hidden);
    (void)t;
    assert(0 && "unknown tensor");
    return 0;
}

/* See nn.h. Returns NB_OK or NB_EINVAL (bad config); on error *m is zeroed. */
int nn_model_alloc(nn_model *m, const nn_config *c, uint64_t seed, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    int rc = nn_config_check(c, err, errlen);
    if (rc) return rc;
    nn_set_threads(nn_get_threads()); /* applies the OpenBLAS policy (see nn_set_threads) */
    m->cfg = *c;
    layout(m);
    m->mem = alloc_reals(m->n_params);
    m->act = nb_xcalloc(1, sizeof(nn_act));
    m->owns_mem = 1;
    m->calib_a = 1;
    m->calib_b = 0;
    bind(m, m->mem, &m->p);
    /* dropout masks use their own stream, derived from the seed but not overlapping init */
    nb_rng_seed(&m->rng, nb_hash64(seed ^ 0x64726f706f7574ull));
    return NB_OK;
}

/* See nn.h. Returns what nn_model_alloc returns; on error *m is zeroed. */
int nn_model_init(nn_model *m, const nn_config *c, uint64_t seed, char *err, size_t errlen) {
    int rc = nn_model_alloc(m, c, seed, err, errlen);
    if (rc) return rc;
    nb_rng r;
    nb_rng_seed(&r, seed);
    for (int k = 0; k < m->n_tensors; k++) {
        const nn_tensor_info *t = &m->tensors[k];
        nn_real *x = m->mem + t->offset;
        double fill, bound = k == 0 ? 0 : init_bound(m, t->name, t, &fill);
        if (k == 0)
            for (size_t i = 0; i < t->size; i++) x[i] = (nn_real)nb_rng_normal(&r);
        else if (bound > 0)
            fill_uniform(x, t->size, bound, &r);
        else
            for (size_t i = 0; i < t->size; i++) x[i] = (nn_real)fill;
    }
    return NB_OK;
}

/* Allocates zeroed gradients and Adam moments. Returns NB_OK. */
int nn_model_train_init(nn_model *m, char *err, size_t errlen) {
    (void)err, (void)errlen;
    if (m->grad_mem) return NB_OK;
    m->grad_mem = alloc_reals(m->n_params);
    m->adam_m = alloc_reals(m->n_params);
    m->adam_v = alloc_reals(m->n_params);
    bind(m, m->grad_mem, &m->g);
    m->adam_t = 0;
    m->grad_stale = 0;
    return NB_OK;
}

/* Frees what m owns (not a scoring clone's borrowed parameters) and zeroes *m. */
void nn_model_free(nn_model *m) {
    if (m->owns_mem) free(m->mem);
    free(m->grad_mem);
    free(m->adam_m);
    free(m->adam_v);
    act_free(m->act);
    memset(m, 0, sizeof *m);
}

/* See nn.h. Returns NB_OK. dst borrows src->mem, which must outlive dst. */
int nn_model_clone_for_scoring(nn_model *dst, const nn_model *src, char *err, size_t errlen) {
    (void)err, (void)errlen;
    memset(dst, 0, sizeof *dst);
    dst->act = nb_xcalloc(1, sizeof(nn_act));
    dst->cfg = src->cfg;
    dst->n_params = src->n_params;
    dst->mem = src->mem;
    dst->p = src->p;
    dst->n_tensors = src->n_tensors;
    memcpy(dst->tensors, src->tensors, sizeof dst->tensors);
    dst->rng = src->rng;
    dst->calib_a = src->calib_a;
    dst->calib_b = src->calib_b;
    dst->owns_mem = 0;
    size_t n = src->cfg.sequence == NN_SEQ_GRU ? nn_gru_pack_size(src->cfg.gru_hidden) : 0;
    nn_act *a = dst->act;
    for (int l = 0; n > 0 && l < src->cfg.gru_layers; l++)
        nn_gru_pack_hh(need(&a->whh_pack[l], n * sizeof(nn_real)), src->p.gru_w_hh[l],
                       src->cfg.gru_hidden);
    a->packed = n > 0;
    return NB_OK;
}

/* ---- forward ------------------------------------------------------------------------ */

/* ---- the sequence models --------------------------------------------------------------- */

/* The GRU stack over the order vectors cout [n_ord, C] (step-major: step t, then sorted
 * row i < bt[t]), each followed by its metadata features oinfo (NULL: none; I0 = C + those):
 * u [B, H] receives the top layer's final state of every sample in the caller's order (inv:
 * caller index -> sorted row). Dropout between layers when training. */
static void gru_forward(nn_model *m, nn_real *u, const nn_real *cout, const nn_real *oinfo,
                        const int *bt, const int *inv, int B, int T, int I0, int training) {
    const nn_config *c = &m->cfg;
    nn_act *a = m->act;
    const nn_params *P = &m->p;
    int C = c->cnn_out, H = c->gru_hidden, L = c->gru_layers;
    size_t TB = (size_t)T * B;
    nn_real *x0 = NEED(x0, nn_real, TB * I0);
    int k = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < bt[t]; i++, k++) {
            nn_real *x = x0 + ((size_t)t * B + i) * I0;
            memcpy(x, cout + (size_t)k * C, C * sizeof(nn_real));
            if (oinfo)
                memcpy(x + C, oinfo + (size_t)k * NN_ORDER_INFO, NN_ORDER_INFO * sizeof(nn_real));
        }
    for (int l = 0; l < L; l++) {
        const nn_real *x = l == 0 ? x0 : (nn_real *)a->xd[l - 1].p;
        nn_real *hs = NEED(hs[l], nn_real, TB * H), *gates = NEED(gates[l], nn_real, TB * 4 * H);
        nn_gru_forward_packed(hs, gates, x, P->gru_w_ih[l], P->gru_w_hh[l],
                              a->packed ? (nn_real *)a->whh_pack[l].p : NULL, P->gru_b_ih[l],
                              P->gru_b_hh[l], bt, T, B, l == 0 ? I0 : H, H);
        if (l + 1 < L)
            nn_dropout_forward(NEED(xd[l], nn_real, TB * H), NEED(dmask[l], nn_real, TB * H), hs,
                               TB * H, c->dropout, training, &m->rng);
    }
    const nn_real *top = (nn_real *)a->hs[L - 1].p + (size_t)(T - 1) * B * H;
    for (int i = 0; i < B; i++)
        memcpy(u + (size_t)i * H, top + (size_t)inv[i] * H, H * sizeof(nn_real));
}

/* gru_forward's backward: dcout [n_ord, C] = the gradient of the order vectors (the
 * metadata features take none), from du [B, H] (caller order). */
static void gru_backward(nn_model *m, nn_real *dcout, const nn_real *du) {
    const nn_config *c = &m->cfg;
    nn_act *a = m->act;
    const nn_params *P = &m->p, *G = &m->g;
    int B = a->B, T = a->T, C = c->cnn_out, H = c->gru_hidden, L = c->gru_layers;
    int I0 = nn_seq_input(c), IM = I0 > H ? I0 : H, *inv = a->inv.p, *bt = a->bt.p;
    size_t TB = (size_t)T * B;
    nn_real *dhs = NEED(dhs, nn_real, TB * H), *dx = NEED(dx, nn_real, TB * IM);
    nn_real *gscr = NEED(gscr, nn_real, nn_gru_scratch_size(B, H));
    memset(dhs, 0, TB * H * sizeof(nn_real));
    nn_real *dtop = dhs + (size_t)(T - 1) * B * H;
    for (int i = 0; i < B; i++)
        memcpy(dtop + (size_t)inv[i] * H, du + (size_t)i * H, H * sizeof(nn_real));
    for (int l = L - 1; l >= 0; l--) {
        int I = l == 0 ? I0 : H;
        const nn_real *x = l == 0 ? (nn_real *)a->x0.p : (nn_real *)a->xd[l - 1].p;
        memset(dx, 0, TB * I * sizeof(nn_real));
        nn_gru_backward(dx, G->gru_w_ih[l], G->gru_w_hh[l], G->gru_b_ih[l], G->gru_b_hh[l], dhs,
                        gscr, a->gates[l].p, a->hs[l].p, x, P->gru_w_ih[l], P->gru_w_hh[l], bt, T,
                        B, I, H);
        if (l > 0) {
            memset(dhs, 0, TB * H * sizeof(nn_real));
            nn_dropout_backward(dhs, dx, a->dmask[l - 1].p, TB * H);
        }
    }
    int k = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < bt[t]; i++, k++)
            memcpy(dcout + (size_t)k * C, dx + ((size_t)t * B + i) * I0, C * sizeof(nn_real));
}

/* The transformer over the same inputs as gru_forward: the orders are regrouped sample by
 * sample (sorted row i's orders oldest first at rows soff[i] .. soff[i+1]-1 of xs) and
 * u [B, H] gets each sample's vector in the caller's order. */
static void tf_forward(nn_act *a, nn_real *u, const nn_real *cout, const nn_real *oinfo,
                       const nn_batch *b, const int *bt, const int *perm, const int *inv, int T,
                       const nn_config *c, const nn_params *P) {
    int B = b->B, C = c->cnn_out, H = c->gru_hidden, I0 = nn_seq_input(c);
    int *soff = NEED(soff, int, B + 1);
    soff[0] = 0;
    for (int i = 0; i < B; i++) soff[i + 1] = soff[i] + b->n_ord[perm[i]];
    nn_real *xs = NEED(xs, nn_real, (size_t)soff[B] * I0);
    int k = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < bt[t]; i++, k++) {
            nn_real *x = xs + (size_t)(soff[i] + t) * I0;
            memcpy(x, cout + (size_t)k * C, C * sizeof(nn_real));
            if (oinfo)
                memcpy(x + C, oinfo + (size_t)k * NN_ORDER_INFO, NN_ORDER_INFO * sizeof(nn_real));
        }
    nn_real *us = NEED(us, nn_real, (size_t)B * H);
    nn_seq_tf_forward(&a->var, us, xs, soff, B, I0, c, P);
    for (int i = 0; i < B; i++)
        memcpy(u + (size_t)i * H, us + (size_t)inv[i] * H, H * sizeof(nn_real));
}

/* tf_forward's backward: dcout [n_ord, C] from du [B, H] (caller order). */
static void tf_backward(nn_act *a, nn_real *dcout, const nn_real *du, const nn_config *c,
                        const nn_params *P, const nn_params *G) {
    int B = a->B, T = a->T, C = c->cnn_out, H = c->gru_hidden, I0 = nn_seq_input(c);
    int *soff = a->soff.p, *inv = a->inv.p, *bt = a->bt.p;
    nn_real *dus = NEED(us, nn_real, (size_t)B * H); /* the forward's us is not needed again */
    for (int i = 0; i < B; i++)
        memcpy(dus + (size_t)inv[i] * H, du + (size_t)i * H, H * sizeof(nn_real));
    nn_real *dxs = NEED(dxs, nn_real, (size_t)soff[B] * I0);
    memset(dxs, 0, (size_t)soff[B] * I0 * sizeof(nn_real));
    nn_seq_tf_backward(&a->var, dxs, dus, a->xs.p, soff, B, I0, c, P, G);
    int k = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < bt[t]; i++, k++)
            memcpy(dcout + (size_t)k * C, dxs + (size_t)(soff[i] + t) * I0, C * sizeof(nn_real));
}

/* Runs the network; see nn.h. The batch must be valid (n_ord in 1..max_orders, items in
 * 0..P-1, every order non-empty, rows in 0..P-1): asserted, as it is the caller's data
 * structure, not user input. Orders longer than max_products are truncated to their first
 * max_products items. */
/* The forward pass; with head == 0 it stops before the output layer (nn_model_forward_hidden):
 * no logits, the repeat values are left in a->rv instead of being added. */
static double forward(nn_model *m, const nn_batch *b, int training, float pos_weight, int head) {
    const nn_config *c = &m->cfg;
    nn_act *a = m->act;
    const nn_params *P = &m->p;
    int B = b->B, E = c->emb, C = c->cnn_out, K = c->kernel, H = c->gru_hidden;
    int D = c->head, R = c->rep_hidden, F = c->rep_features;
    int NS = b->S > 0 ? b->S : c->n_products;
    assert(B > 0);

    /* sort by n_ord descending, stable: counting over the few possible lengths */
    int *perm = NEED(perm, int, B), *inv = NEED(inv, int, B);
    int *ord_start = NEED(ord_start, int, B + 1);
    int T = 0, k = 0;
    ord_start[0] = 0;
    for (int i = 0; i < B; i++) {
        assert(b->n_ord[i] >= 1 && b->n_ord[i] <= c->max_orders);
        if (b->n_ord[i] > T) T = b->n_ord[i];
        ord_start[i + 1] = ord_start[i] + b->n_ord[i];
    }
    for (int n = T; n >= 1; n--)
        for (int i = 0; i < B; i++)
            if (b->n_ord[i] == n) {
                inv[i] = k;
                perm[k++] = i;
            }
    int *bt = NEED(bt, int, T);
    for (int t = 0; t < T; t++) {
        int n = 0;
        while (n < B && b->n_ord[perm[n]] > t) n++;
        bt[t] = n;
    }
    int n_ord_tot = ord_start[B];

    /* the orders, step-major, as one packed conv batch */
    int *coff = NEED(coff, int, n_ord_tot + 1);
    int n_items = 0;
    coff[0] = 0;
    k = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < bt[t]; i++, k++) {
            int g = ord_start[perm[i]] + t;
            int len = b->ord_off[g + 1] - b->ord_off[g];
            assert(len >= 1);
            if (len > c->max_products) len = c->max_products;
            n_items += len;
            coff[k + 1] = n_items;
        }
    int32_t *cidx = NEED(cidx, int32_t, n_items);
    k = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < bt[t]; i++, k++) {
            int g = ord_start[perm[i]] + t;
            int len = coff[k + 1] - coff[k];
            memcpy(cidx + coff[k], b->items + b->ord_off[g], (size_t)len * sizeof(int32_t));
            for (int j = 0; j < len; j++)
                assert(cidx[coff[k] + j] >= 0 && cidx[coff[k] + j] < c->n_products);
        }
    nn_real *eout = NEED(eout, nn_real, (size_t)n_items * E);
    nn_embed_forward(eout, cidx, P->emb, n_items, E);
    nn_real *cout = NEED(cout, nn_real, (size_t)n_ord_tot * C);
    if (c->encoder == NN_ENC_ATTENTION) {
        nn_enc_attn_forward(&a->var, cout, eout, coff, n_ord_tot, c, P);
    } else {
        nn_real *cscr = NEED(cscr, nn_real, nn_conv_scratch_size(coff, n_ord_tot, E, C, K));
        int *camax = NEED(camax, int, (size_t)n_ord_tot *C);
        nn_conv_forward(cout, camax, cscr, eout, coff, P->conv_w, P->conv_b, n_ord_tot, E, C, K);
    }
    /* the orders' metadata features, in the same step-major order as cout */
    const nn_real *oinfo = NULL;
    if (c->order_info) {
        assert(b->ord_info);
        nn_real *oi = NEED(oinfo, nn_real, (size_t)n_ord_tot * NN_ORDER_INFO);
        k = 0;
        for (int t = 0; t < T; t++)
            for (int i = 0; i < bt[t]; i++, k++)
                memcpy(oi + (size_t)k * NN_ORDER_INFO,
                       b->ord_info + (size_t)(ord_start[perm[i]] + t) * NN_ORDER_INFO,
                       NN_ORDER_INFO * sizeof(nn_real));
        oinfo = oi;
    }
    int I0 = nn_seq_input(c);
    nn_real *u = NEED(u, nn_real, (size_t)B * H);
    if (c->sequence == NN_SEQ_TRANSFORMER)
        tf_forward(a, u, cout, oinfo, b, bt, perm, inv, T, c, P);
    else
        gru_forward(m, u, cout, oinfo, bt, inv, B, T, I0, training);

    /* head, in the caller's sample order */
    nn_real *a1 = NEED(a1, nn_real, (size_t)B * D), *r1 = NEED(r1, nn_real, (size_t)B * D);
    nn_real *d1 = NEED(d1, nn_real, (size_t)B * D);
    nn_linear_forward(a1, u, P->fc_w, P->fc_b, B, H, D);
    nn_relu_forward(r1, a1, (size_t)B * D);
    nn_dropout_forward(d1, NEED(hmask, nn_real, (size_t)B * D), r1, (size_t)B * D, c->dropout,
                       training, &m->rng);
    nn_real *logits = NULL;
    /* the candidate head reads the out.w rows in place: the gathered copy its backward
     * multiplies with is made by nn_model_backward (the parameters cannot change between
     * the two), so scoring never copies S x D reals */
    if (b->S > 0)
        for (int s = 0; s < b->S; s++) assert(b->rows[s] >= 0 && b->rows[s] < c->n_products);
    if (head) {
        logits = NEED(logits, nn_real, (size_t)B * NS);
        nn_head_forward(logits, d1, P->out_w, P->out_b, b->S > 0 ? b->rows : NULL, B, D, NS);
    }

    /* repeat term */
    int n_rep = F > 0 ? b->n_rep : 0;
    if (n_rep > 0) {
        nn_real *p1 = NEED(rp1, nn_real, (size_t)n_rep * R);
        nn_real *h1 = NEED(rh1, nn_real, (size_t)n_rep * R), *v = NEED(rv, nn_real, n_rep);
        nn_linear_forward(p1, b->rep_feat, P->rep_w1, P->rep_b1, n_rep, F, R);
        nn_relu_forward(h1, p1, (size_t)n_rep * R);
        nn_linear_forward(v, h1, P->rep_w2, P->rep_b2, n_rep, R, 1);
        for (int i = 0; i < n_rep; i++) {
            assert(b->rep_b[i] >= 0 && b->rep_b[i] < B && b->rep_col[i] >= 0 && b->rep_col[i] < NS);
            if (head) logits[(size_t)b->rep_b[i] * NS + b->rep_col[i]] += v[i];
        }
    }

    a->B = B;
    a->T = T;
    a->n_ord_tot = n_ord_tot;
    a->n_items = n_items;
    a->NS = NS;
    a->n_rep = n_rep;
    a->dl_ready = 0;
    m->logits = logits;
    if (!head || !b->targets) return 0;
    size_t n = (size_t)B * NS;
    if (training && m->grad_mem) {
        /* the gradient comes almost free with the loss: one pass instead of two */
        a->dl_ready = 1;
        return nn_bce_forward_backward(NEED(dlogits, nn_real, n), logits, b->targets, n,
                                       pos_weight);
    }
    return nn_bce_forward(logits, b->targets, n, pos_weight);
}

double nn_model_forward(nn_model *m, const nn_batch *b, int training, float pos_weight) {
    return forward(m, b, training, pos_weight, 1);
}

/* See nn.h. */
void nn_model_forward_hidden(nn_model *m, const nn_batch *b, const nn_real **head_in,
                             const nn_real **rep_v) {
    forward(m, b, 0, 1.0f, 0);
    nn_act *a = m->act;
    *head_in = (const nn_real *)a->d1.p;
    *rep_v = a->n_rep > 0 ? (const nn_real *)a->rv.p : NULL;
}

/* ---- backward ----------------------------------------------------------------------- */

/* The output layer's backward, split over the scored columns across nn_get_threads()
 * threads (each part one single-threaded sgemm pair; OpenBLAS's own threads spin-wait and
 * cost more than they gain on the small gemms of this model). Part k computes
 *   dW rows of its columns = dl[:, cols]^T . d1   (into dw directly for the full head,
 *                                                 overwriting when `overwrite`; into the
 *                                                 gathered dwbuf for a candidate head)
 *   its share of dd1 = dl[:, cols] . W[cols]       (summed over parts in part order)
 * and the bias gradient of its columns. A candidate head's dwbuf rows are scattered into dw
 * afterwards on one thread (rows may repeat). The result depends on the thread count only
 * through the order of the dd1 partial sums. */
typedef struct {
    nn_act *a;
    nn_real *dw, *db, *dwbuf, *parts;
    const nn_real *dl, *d1, *W;
    const int32_t *rows;
    int B, D, NS, overwrite;
} hb_ctx;

/* One part of head_backward: columns lo..hi-1; writes parts[part] (its dd1 share). */
static void head_backward_part(void *vc, size_t lo, size_t hi, int part) {
    hb_ctx *c = vc;
    int B = c->B, D = c->D, NS = c->NS, n = (int)(hi - lo);
    nn_real *pd = c->parts + (size_t)part * B * D;
    if (n == 0) {
        memset(pd, 0, (size_t)B * D * sizeof(nn_real));
        return;
    }
    NN_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, D, n, 1, c->dl + lo, NS, c->W + lo * D, D,
            0, pd, D);
    if (c->rows) {
        NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, B, 1, c->dl + lo, NS, c->d1, D, 0,
                c->dwbuf + lo * D, D);
    } else {
        NN_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, B, 1, c->dl + lo, NS, c->d1, D,
                c->overwrite ? 0 : 1, c->dw + lo * D, D);
        for (int i = 0; i < B; i++) {
            const nn_real *d = c->dl + (size_t)i * NS;
            for (size_t j = lo; j < hi; j++) c->db[j] += d[j];
        }
    }
}

/* See the comment on hb_ctx. dd1 += the input gradient; dw, db accumulate (or dw is
 * overwritten for the full head when `overwrite`). W is out.w (full head) or the gathered
 * wbuf (candidate head, rows != NULL). */
static void head_backward(nn_act *a, nn_real *dd1, int overwrite, nn_real *dw, nn_real *db,
                          const nn_real *dl, const nn_real *d1, const nn_real *W,
                          const int32_t *rows, int B, int D, int NS) {
    hb_ctx c = {a,  dw, db,       NULL, NEED(hparts, nn_real, (size_t)NN_MAX_PARTS * B * D),
                dl, d1, W,        rows, B,
                D,  NS, overwrite};
    if (rows) c.dwbuf = NEED(dwbuf, nn_real, (size_t)NS * D);
    /* threads pay off above ~1M multiply-adds per part */
    size_t min_n = (size_t)(1 << 20) / ((size_t)B * D + 1) + 1;
    int np = nn_par_for(head_backward_part, &c, (size_t)NS, min_n, 16);
    for (int k = 0; k < np; k++) {
        const nn_real *pd = c.parts + (size_t)k * B * D;
        for (size_t i = 0; i < (size_t)B * D; i++) dd1[i] += pd[i];
    }
    if (rows) {
        for (int s = 0; s < NS; s++) {
            nn_real *d = dw + (size_t)rows[s] * D;
            const nn_real *g = c.dwbuf + (size_t)s * D;
            for (int j = 0; j < D; j++) d[j] += g[j];
        }
        for (int i = 0; i < B; i++) {
            const nn_real *d = dl + (size_t)i * NS;
            for (int s = 0; s < NS; s++) db[rows[s]] += d[s];
        }
    }
}

/* Clears every gradient but out.w, which the full head's backward overwrites (beta = 0):
 * 12.7M reals not written twice per step. Returns whether out.w still needs clearing. */
static void clear_stale_grads(nn_model *m, int keep_out_w) {
    size_t ow = (size_t)(m->g.out_w - m->grad_mem);
    size_t own = (size_t)m->cfg.n_products * m->cfg.head;
    if (keep_out_w) {
        memset(m->grad_mem, 0, ow * sizeof(nn_real));
        memset(m->grad_mem + ow + own, 0, (m->n_params - ow - own) * sizeof(nn_real));
    } else {
        memset(m->grad_mem, 0, m->n_params * sizeof(nn_real));
    }
}

/* See nn.h. Requires nn_model_train_init and the preceding forward on the same b with
 * targets. */
void nn_model_backward(nn_model *m, const nn_batch *b, float pos_weight) {
    const nn_config *c = &m->cfg;
    nn_act *a = m->act;
    const nn_params *P = &m->p;
    const nn_params *G = &m->g;
    assert(m->grad_mem && b->targets && m->logits && a->B == b->B);
    int B = a->B, NS = a->NS, n_rep = a->n_rep;
    int E = c->emb, C = c->cnn_out, K = c->kernel, H = c->gru_hidden;
    int D = c->head, R = c->rep_hidden, F = c->rep_features;

    nn_real *dl;
    if (a->dl_ready) {
        dl = a->dlogits.p;
    } else {
        dl = NEED(dlogits, nn_real, (size_t)B * NS);
        memset(dl, 0, (size_t)B * NS * sizeof(nn_real));
        nn_bce_backward(dl, m->logits, b->targets, (size_t)B * NS, pos_weight);
    }
    int overwrite_out_w = m->grad_stale && b->S == 0;
    if (m->grad_stale) clear_stale_grads(m, overwrite_out_w);
    m->grad_stale = 0;

    /* repeat MLP */
    if (n_rep > 0) {
        nn_real *dv = NEED(dv, nn_real, n_rep);
        nn_real *dh1 = NEED(dh1, nn_real, (size_t)n_rep * R);
        nn_real *dp1 = NEED(dp1, nn_real, (size_t)n_rep * R);
        for (int i = 0; i < n_rep; i++) dv[i] = dl[(size_t)b->rep_b[i] * NS + b->rep_col[i]];
        memset(dh1, 0, (size_t)n_rep * R * sizeof(nn_real));
        memset(dp1, 0, (size_t)n_rep * R * sizeof(nn_real));
        nn_linear_backward(dh1, G->rep_w2, G->rep_b2, dv, a->rh1.p, P->rep_w2, n_rep, R, 1);
        nn_relu_backward(dp1, dh1, a->rp1.p, (size_t)n_rep * R);
        nn_linear_backward(NULL, G->rep_w1, G->rep_b1, dp1, b->rep_feat, P->rep_w1, n_rep, F, R);
    }

    /* head */
    nn_real *dd1 = NEED(dd1, nn_real, (size_t)B * D);
    memset(dd1, 0, (size_t)B * D * sizeof(nn_real));
    nn_real *wbuf = NULL;
    if (b->S > 0) { /* the candidate rows of out.w, gathered for the gemm (not in forward) */
        wbuf = NEED(wbuf, nn_real, (size_t)b->S * D);
        for (int s = 0; s < b->S; s++)
            memcpy(wbuf + (size_t)s * D, P->out_w + (size_t)b->rows[s] * D, D * sizeof(nn_real));
    }
    head_backward(a, dd1, overwrite_out_w, G->out_w, G->out_b, dl, a->d1.p,
                  b->S > 0 ? wbuf : P->out_w, b->S > 0 ? b->rows : NULL, B, D, NS);
    nn_real *dr1 = NEED(dr1, nn_real, (size_t)B * D), *da1 = NEED(da1, nn_real, (size_t)B * D);
    memset(dr1, 0, (size_t)B * D * sizeof(nn_real));
    memset(da1, 0, (size_t)B * D * sizeof(nn_real));
    nn_dropout_backward(dr1, dd1, a->hmask.p, (size_t)B * D);
    nn_relu_backward(da1, dr1, a->a1.p, (size_t)B * D);
    nn_real *du = NEED(du, nn_real, (size_t)B * H);
    memset(du, 0, (size_t)B * H * sizeof(nn_real));
    nn_linear_backward(du, G->fc_w, G->fc_b, da1, a->u.p, P->fc_w, B, H, D);

    /* sequence model, then the encoder and the embedding */
    nn_real *dcout = NEED(dcout, nn_real, (size_t)a->n_ord_tot * C);
    if (c->sequence == NN_SEQ_TRANSFORMER)
        tf_backward(a, dcout, du, c, P, G);
    else
        gru_backward(m, dcout, du);
    nn_real *deout = NEED(deout, nn_real, (size_t)a->n_items * E);
    memset(deout, 0, (size_t)a->n_items * E * sizeof(nn_real));
    if (c->encoder == NN_ENC_ATTENTION)
        nn_enc_attn_backward(&a->var, deout, dcout, a->eout.p, a->coff.p, a->n_ord_tot, c, P, G);
    else
        nn_conv_backward(deout, G->conv_w, G->conv_b, a->cscr.p, dcout, a->camax.p, a->eout.p,
                         a->coff.p, P->conv_w, a->n_ord_tot, E, C, K);
    nn_embed_backward(G->emb, deout, a->cidx.p, a->n_items, E);
}

/* See nn.h: the fused forward's dlogits, which nn_model_backward then propagates as they are. */
nn_real *nn_model_dlogits(nn_model *m) {
    nn_act *a = m->act;
    return m->logits && a->dl_ready ? a->dlogits.p : NULL;
}

/* Marks the gradients zero; the clearing itself happens lazily (see clear_stale_grads). */
void nn_model_zero_grad(nn_model *m) {
    if (m->grad_mem) m->grad_stale = 1;
}

/* ---- Adam step ---------------------------------------------------------------------- */

typedef struct {
    nn_model *m;
    nn_real scale;
    float lr, b1, b2, eps;
    double part_sq[NN_MAX_PARTS];
} adam_ctx;

/* Squared norm of one part of the gradient into part_sq[part]. */
static void norm_part(void *vc, size_t lo, size_t hi, int part) {
    adam_ctx *c = vc;
    double n = nn_grad_norm(c->m->grad_mem + lo, hi - lo);
    c->part_sq[part] = n * n;
}

/* Adam over one part of the parameters. */
static void adam_part(void *vc, size_t lo, size_t hi, int part) {
    adam_ctx *c = vc;
    nn_model *m = c->m;
    (void)part;
    nn_adam_update_scaled(m->mem + lo, m->grad_mem + lo, m->adam_m + lo, m->adam_v + lo, hi - lo,
                          c->scale, c->lr, c->b1, c->b2, c->eps, m->adam_t);
}

/* See nn.h. Returns the pre-clip gradient norm. The clip scale is
 * max_norm / (norm + 1e-6), applied when it is < 1 (torch.nn.utils.clip_grad_norm_). */
double nn_model_adam_step(nn_model *m, float lr, float b1, float b2, float eps, float max_norm) {
    assert(m->grad_mem);
    if (m->grad_stale) { /* zero_grad without a backward: the gradient really is zero */
        memset(m->grad_mem, 0, m->n_params * sizeof(nn_real));
        m->grad_stale = 0;
    }
    adam_ctx c = {.m = m, .scale = 1, .lr = lr, .b1 = b1, .b2 = b2, .eps = eps};
    int nt = nn_par_for(norm_part, &c, m->n_params, 1 << 16, 16);
    double sq = 0;
    for (int k = 0; k < nt; k++) sq += c.part_sq[k];
    double norm = sqrt(sq);
    if (max_norm > 0) {
        double coef = (double)max_norm / (norm + 1e-6);
        if (coef < 1) c.scale = (nn_real)coef;
    }
    m->adam_t++;
    nn_par_for(adam_part, &c, m->n_params, 1 << 16, 16);
    return norm;
}
