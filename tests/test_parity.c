/* test_parity.c -- our model against PyTorch on the committed fixtures
 * (tests/fixtures/parity_NAME.bin, written by tests/gen_torch_fixture.py; the format is
 * described at the top of that script).
 *
 * For each fixture: load torch's initial weights into our model (float build) and take 5
 * Adam steps. At every step k we run our forward and backward and compare the loss (and, at
 * step 0, every logit) and every parameter's gradient with torch's at the same step; then we
 * replace our gradient by torch's (teacher forcing) and take our Adam step. After the fifth
 * step every weight is compared. Teacher forcing keeps the Adam check exact: Adam's first
 * updates are lr * g/|g| whatever |g| is, so on a free-running trajectory a gradient element
 * that is mathematically ~1e-9 (below float32 noise) could flip a whole lr-sized update and
 * drown the comparison; with torch's gradients our optimizer must reproduce torch's weights
 * to float32 rounding.
 *
 * Tolerance (scale-aware, per tensor): every element must satisfy
 *
 *     |ours - torch| <= PARITY_TOL * max(|torch|, scale),   PARITY_TOL = 1e-4,
 *
 * where scale is the largest |torch| element of that tensor (for a scalar, itself): relative
 * error for the large elements, and an absolute error of 1e-4 of the tensor's magnitude for
 * its small ones (whose float32 rounding error is set by the large terms they are summed
 * from). The torch side is computed in float64 from float32 weights and rounded once, so the
 * tolerance covers our float32 arithmetic only. The worst element of every tensor is printed
 * (name, flat index, ours, torch's, error / tolerance).
 *
 * The last test perturbs single weights and requires the comparison to fail, so the checker
 * is shown to be able to fail in the forward pass, the gradients and the optimizer.
 */
#include "harness.h"
#include "nb_err.h"
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef PARITY_TOL
#define PARITY_TOL 1e-4 /* tests/dtest_parity_double.c compiles this file with 1e-6 */
#endif
#include "fixture.h"

/* A scalar (loss) against element i of a record. Returns 1 on mismatch. */
static int compare_scalar(const char *fxname, const char *what, double ours, const fx_rec *r,
                          size_t i) {
    nn_real v = (nn_real)ours;
    if (!r || i >= r->n) {
        printf("# %s %s: missing in fixture\n", fxname, what);
        return 1;
    }
    fx_rec one = *r;
    one.data = r->data + (r->dtype == FX_F64 ? 8 : 4) * i;
    one.n = 1;
    return compare(fxname, what, &v, 1, &one);
}

/* The model's tensors, named as in the fixture (nn_params field names). */
typedef struct {
    char name[32];
    size_t offset, size;
} ptensor;

/* Fills t[] from m's named views (so the test does not depend on tensor names or order in
 * m->tensors[], only on nn.h's nn_params) and checks every view against m->tensors[].
 * Returns the count, or -1 with a message. */
static int model_tensors(const nn_model *m, ptensor *t, char *err, size_t errlen) {
    int n = 0;
    const nn_params *p = &m->p;
#define ADD(nm, ptr)                                     \
    do {                                                 \
        snprintf(t[n].name, sizeof t[n].name, "%s", nm); \
        t[n].offset = (size_t)((ptr)-m->mem);            \
        n++;                                             \
    } while (0)
    ADD("emb", p->emb);
    ADD("conv_w", p->conv_w);
    ADD("conv_b", p->conv_b);
    for (int l = 0; l < m->cfg.gru_layers; l++) {
        char nm[32];
        snprintf(nm, sizeof nm, "gru_w_ih.%d", l);
        ADD(nm, p->gru_w_ih[l]);
        snprintf(nm, sizeof nm, "gru_w_hh.%d", l);
        ADD(nm, p->gru_w_hh[l]);
        snprintf(nm, sizeof nm, "gru_b_ih.%d", l);
        ADD(nm, p->gru_b_ih[l]);
        snprintf(nm, sizeof nm, "gru_b_hh.%d", l);
        ADD(nm, p->gru_b_hh[l]);
    }
    ADD("fc_w", p->fc_w);
    ADD("fc_b", p->fc_b);
    ADD("out_w", p->out_w);
    ADD("out_b", p->out_b);
    if (m->cfg.rep_features > 0) {
        ADD("rep_w1", p->rep_w1);
        ADD("rep_b1", p->rep_b1);
        ADD("rep_w2", p->rep_w2);
        ADD("rep_b2", p->rep_b2);
    }
#undef ADD
    if (n != m->n_tensors)
        return nb_err(err, errlen, -1, "nn_params has %d tensors, m->tensors[] %d", n,
                      m->n_tensors);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int k = 0; k < m->n_tensors; k++)
            if (m->tensors[k].offset == t[i].offset) {
                t[i].size = m->tensors[k].size;
                found = 1;
            }
        if (!found)
            return nb_err(err, errlen, -1, "%s: no m->tensors[] entry at its offset", t[i].name);
    }
    return n;
}

/* nn_real copy of a float/int record (caller frees). */
static nn_real *to_real(const fx_rec *r) {
    nn_real *v = malloc(sizeof *v * (r->n ? r->n : 1));
    for (size_t i = 0; i < r->n; i++) v[i] = (nn_real)fx_get(r, i);
    return v;
}

/* int32 copy of an i32 record (caller frees). */
static int32_t *to_i32(const fx_rec *r) {
    int32_t *v = malloc(sizeof *v * (r->n ? r->n : 1));
    memcpy(v, r->data, 4 * r->n);
    return v;
}

/* What to break on purpose (the self-test of the checker). */
typedef struct {
    const char *tensor; /* add delta to element 0 of this tensor after loading, or NULL */
    double delta;
    float adam_b2; /* if non-zero, our Adam steps use this beta2 instead of torch's */
} perturbation;

/* Mismatch counts of one run, by stage. */
typedef struct {
    int fwd;  /* losses, logits */
    int grad; /* gradients at the 5 steps */
    int adam; /* weights after the 5 steps */
} mismatches;

/* Runs one fixture through our model (see the top of the file); pb may be NULL. Fills *mm.
 * Returns 0, or -1 with a message in err when the fixture cannot be run at all. Owns nothing
 * afterwards. */
static int run_fixture(const char *path, const perturbation *pb, mismatches *mm, char *err,
                       size_t errlen) {
    const char *fxname = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    fixture fx;
    nn_model m;
    memset(&m, 0, sizeof m);
    memset(mm, 0, sizeof *mm);
    int model_ok = 0, rc = -1;
    nn_real *targets = NULL, *rep_feat = NULL;
    int32_t *n_ord = NULL, *ord_off = NULL, *items = NULL, *rows = NULL, *rep_b = NULL;
    int32_t *rep_col = NULL;
    if (fx_load(&fx, path, err, errlen)) goto done;

    const fx_rec *cfgr = fx_find(&fx, "cfg"), *hy = fx_find(&fx, "hyper");
    if (!cfgr || cfgr->n != 11 || !hy || hy->n != 6) {
        nb_err(err, errlen, -1, "%s: cfg/hyper records missing", path);
        goto done;
    }
    nn_config c;
    nn_config_default(&c, 0); /* the fields the fixture does not set: the CNN -> GRU model */
    int *f[11] = {&c.n_products,   &c.emb,          &c.cnn_out,   &c.kernel,
                  &c.gru_hidden,   &c.gru_layers,   &c.head,      &c.max_orders,
                  &c.max_products, &c.rep_features, &c.rep_hidden};
    for (int i = 0; i < 11; i++) *f[i] = (int)fx_get(cfgr, (size_t)i);
    c.dropout = (float)fx_get(hy, 0);
    if (c.rep_features == 0) c.rep_hidden = 32; /* unused without the repeat term */
    float pos_weight = (float)fx_get(hy, 1), lr = (float)fx_get(hy, 2), b1 = (float)fx_get(hy, 3);
    float b2 = (float)fx_get(hy, 4), eps = (float)fx_get(hy, 5);
    if (pb && pb->adam_b2 != 0) b2 = pb->adam_b2;

    if (nn_model_init(&m, &c, 1, err, errlen) != NB_OK) goto done;
    model_ok = 1;
    if (nn_model_train_init(&m, err, errlen) != NB_OK) goto done;
    ptensor pt[8 + 4 * NN_MAX_LAYERS];
    int nt = model_tensors(&m, pt, err, errlen);
    if (nt < 0) goto done;
    for (int i = 0; i < nt; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "w0.%.40s", pt[i].name);
        const fx_rec *r = fx_find(&fx, nm);
        if (!r || r->n != pt[i].size) {
            nb_err(err, errlen, -1, "%s: %s missing or of size %zu, the model's is %zu", path, nm,
                   r ? r->n : 0, pt[i].size);
            goto done;
        }
        for (size_t k = 0; k < r->n; k++) m.mem[pt[i].offset + k] = (nn_real)fx_get(r, k);
        if (pb && pb->tensor && strcmp(pb->tensor, pt[i].name) == 0)
            m.mem[pt[i].offset] += (nn_real)pb->delta;
    }

    const fx_rec *r_nord = fx_find(&fx, "batch.n_ord"), *r_off = fx_find(&fx, "batch.ord_off");
    const fx_rec *r_items = fx_find(&fx, "batch.items"), *r_rows = fx_find(&fx, "batch.rows");
    const fx_rec *r_tg = fx_find(&fx, "batch.targets"), *r_rb = fx_find(&fx, "batch.rep_b");
    const fx_rec *r_rc = fx_find(&fx, "batch.rep_col"), *r_rf = fx_find(&fx, "batch.rep_feat");
    if (!r_nord || !r_off || !r_items || !r_tg || (r_rb && (!r_rc || !r_rf))) {
        nb_err(err, errlen, -1, "%s: batch records missing", path);
        goto done;
    }
    nn_batch b;
    memset(&b, 0, sizeof b);
    b.B = (int)r_nord->n;
    b.n_ord = n_ord = to_i32(r_nord);
    b.ord_off = ord_off = to_i32(r_off);
    b.items = items = to_i32(r_items);
    if (r_rows) {
        b.S = (int)r_rows->n;
        b.rows = rows = to_i32(r_rows);
    }
    b.targets = targets = to_real(r_tg);
    if (r_rb) {
        b.n_rep = (int)r_rb->n;
        b.rep_b = rep_b = to_i32(r_rb);
        b.rep_col = rep_col = to_i32(r_rc);
        b.rep_feat = rep_feat = to_real(r_rf);
    }
    size_t W = (size_t)(b.S ? b.S : c.n_products), total_ord = 0;
    for (int i = 0; i < b.B; i++) total_ord += (size_t)n_ord[i];
    if (r_off->n != total_ord + 1 || (size_t)ord_off[total_ord] != r_items->n ||
        r_tg->n != (size_t)b.B * W) {
        nb_err(err, errlen, -1, "%s: inconsistent batch records", path);
        goto done;
    }

    const fx_rec *losses = fx_find(&fx, "losses");
    for (int step = 0; step < 5; step++) {
        nn_model_zero_grad(&m);
        double loss = nn_model_forward(&m, &b, 1, pos_weight);
        char what[64];
        snprintf(what, sizeof what, "loss[%d]", step);
        mm->fwd += compare_scalar(fxname, what, loss, losses, (size_t)step);
        if (step == 0)
            mm->fwd += compare(fxname, "logits", m.logits, (size_t)b.B * W, fx_find(&fx, "logits"));
        nn_model_backward(&m, &b, pos_weight);
        for (int i = 0; i < nt; i++) {
            snprintf(what, sizeof what, "grad%d.%.40s", step, pt[i].name);
            const fx_rec *r = fx_find(&fx, what);
            mm->grad += compare(fxname, what, m.grad_mem + pt[i].offset, pt[i].size, r);
            if (!r || r->n != pt[i].size) continue;
            /* teacher forcing: step with torch's gradient */
            for (size_t k = 0; k < r->n; k++) m.grad_mem[pt[i].offset + k] = (nn_real)fx_get(r, k);
        }
        nn_model_adam_step(&m, lr, b1, b2, eps, 0.0f);
    }
    for (int i = 0; i < nt; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "w5.%.40s", pt[i].name);
        mm->adam += compare(fxname, nm, m.mem + pt[i].offset, pt[i].size, fx_find(&fx, nm));
    }
    rc = 0;

done:
    if (model_ok) nn_model_free(&m);
    fx_free(&fx);
    free(targets);
    free(rep_feat);
    free(n_ord);
    free(ord_off);
    free(items);
    free(rows);
    free(rep_b);
    free(rep_col);
    return rc;
}

static int check(const char *name) {
    char path[256], err[NB_ERRLEN] = "";
    snprintf(path, sizeof path, "tests/fixtures/%s.bin", name);
    mismatches mm;
    T_ASSERT(run_fixture(path, NULL, &mm, err, sizeof err) == 0, "%s", err);
    T_ASSERT(mm.fwd + mm.grad + mm.adam == 0,
             "%s: %d forward, %d gradient, %d Adam tensors differ from PyTorch beyond %g "
             "(see the lines above)",
             name, mm.fwd, mm.grad, mm.adam, PARITY_TOL);
    return T_PASS;
}

static int test_parity_full_head(void) { return check("parity_full"); }
static int test_parity_candidate_head(void) { return check("parity_cand"); }
static int test_parity_repeat_term(void) { return check("parity_rep"); }
static int test_parity_repeat_candidates(void) { return check("parity_rep_cand"); }

/* The checker must be able to fail: a 1e-3 change to one bias shows in the gradients (and,
 * for the output bias, which shifts a logit column by 1e-3, in the forward pass); a wrong
 * beta2 (0.99 for 0.999) shows in the weights after the 5 steps (and, as our weights then drift
 * from torch's, in the later steps' losses and gradients). */
static int test_parity_detects_perturbation(void) {
    char err[NB_ERRLEN] = "";
    mismatches mm;
    printf("# perturbed runs follow (mismatches expected)\n");
    const struct {
        const char *fx, *tensor;
    } w[] = {{"parity_full", "out_b"},
             {"parity_cand", "gru_b_ih.1"},
             {"parity_rep", "rep_b2"},
             {"parity_rep_cand", "conv_b"}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/%s.bin", w[i].fx);
        perturbation pb = {w[i].tensor, 1e-3, 0};
        T_ASSERT(run_fixture(path, &pb, &mm, err, sizeof err) == 0, "%s", err);
        T_ASSERT(mm.grad > 0 && (i != 0 || mm.fwd > 0),
                 "%s: +1e-3 on %s[0] unnoticed (fwd %d, grad %d)", w[i].fx, w[i].tensor, mm.fwd,
                 mm.grad);
    }
    perturbation pb = {NULL, 0, 0.99f};
    T_ASSERT(run_fixture("tests/fixtures/parity_full.bin", &pb, &mm, err, sizeof err) == 0, "%s",
             err);
    T_ASSERT(mm.adam > 0, "beta2 0.99 unnoticed in the weights (fwd %d grad %d adam %d)", mm.fwd,
             mm.grad, mm.adam);
    return T_PASS;
}

int main(void) {
    const uint32_t one = 1;
    unsigned char lsb;
    memcpy(&lsb, &one, 1);
    if (lsb != 1) {
        printf("skip parity: the fixtures are little-endian and this host is not\n");
        return 0;
    }
    T_RUN(test_parity_full_head);
    T_RUN(test_parity_candidate_head);
    T_RUN(test_parity_repeat_term);
    T_RUN(test_parity_repeat_candidates);
    T_RUN(test_parity_detects_perturbation);
    return t_summary();
}
