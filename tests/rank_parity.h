/* rank_parity.h -- the ranking losses (model/nn_rank.c) composed as train/rankloss.c does
 * (BCE + W x BPR, BCE + W x margin, BPR alone) against PyTorch on the committed fixture
 * tests/fixtures/parity_rank.txt (tests/gen_torch_fixture.py, build_rank: its format). Used
 * by tests/test_rank_loss.c (float build, tolerance 1e-4) and tests/dtest_rank_parity.c
 * (double build, 1e-6). Tolerance per element: |ours - torch| <= tol * max(|torch|, scale),
 * scale = the largest |torch| of that gradient (the rule of tests/test_parity.c).
 */
#ifndef RANK_PARITY_H
#define RANK_PARITY_H

#include "harness.h"
#include "nb_err.h"
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK_FX "tests/fixtures/parity_rank.txt"
#define RANK_NREC 12

typedef struct {
    char name[32];
    size_t n;
    double *v;
} rank_rec;

/* Reads every record of the fixture into r[] (at most RANK_NREC). Returns the count, or -1
 * with a message naming the file and record. The caller frees each r[i].v. */
static int rank_fx_load(rank_rec *r, char *err, size_t errlen) {
    FILE *f = fopen(RANK_FX, "r");
    if (!f) return nb_err(err, errlen, -1, "%s: cannot open", RANK_FX);
    int n = 0;
    while (n < RANK_NREC && fscanf(f, "%31s %zu", r[n].name, &r[n].n) == 2) {
        r[n].v = nb_xmalloc((r[n].n ? r[n].n : 1) * sizeof(double));
        for (size_t i = 0; i < r[n].n; i++)
            if (fscanf(f, "%lf", &r[n].v[i]) != 1) {
                fclose(f);
                return nb_err(err, errlen, -1, "%s: record %s: value %zu unreadable", RANK_FX,
                              r[n].name, i);
            }
        n++;
    }
    fclose(f);
    return n;
}

static const rank_rec *rank_fx_find(const rank_rec *r, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0) return &r[i];
    return NULL;
}

/* The loss and gradient of `loss` ("bce+bpr", "bce+margin", "bpr") on the fixture's data,
 * computed with our functions in nn_real; perturb (0 = none) is added to logit 0's gradient
 * (the negative control). Returns the number of elements out of tolerance (loss included),
 * or -1 when the fixture lacks a record. */
static int rank_parity_one(const rank_rec *r, int nr, const char *loss, double tol, double perturb) {
    const rank_rec *dims = rank_fx_find(r, nr, "dims"), *hy = rank_fx_find(r, nr, "hyper");
    const rank_rec *lg = rank_fx_find(r, nr, "logits"), *tg = rank_fx_find(r, nr, "targets");
    const rank_rec *ps = rank_fx_find(r, nr, "pos"), *ng = rank_fx_find(r, nr, "neg");
    char k1[48], k2[48];
    snprintf(k1, sizeof k1, "loss.%s", loss);
    snprintf(k2, sizeof k2, "grad.%s", loss);
    const rank_rec *tl = rank_fx_find(r, nr, k1), *tgr = rank_fx_find(r, nr, k2);
    if (!dims || !hy || !lg || !tg || !ps || !ng || !tl || !tgr || dims->n != 2 || hy->n != 3 ||
        ps->n != ng->n)
        return -1;
    size_t n = (size_t)dims->v[0] * (size_t)dims->v[1], np = ps->n;
    if (lg->n != n || tg->n != n || tgr->n != n) return -1;
    nn_real *x = nb_xmalloc(n * sizeof(nn_real)), *y = nb_xmalloc(n * sizeof(nn_real));
    nn_real *g = nb_xmalloc(n * sizeof(nn_real));
    int64_t *pos = nb_xmalloc(np * sizeof(int64_t)), *neg = nb_xmalloc(np * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) x[i] = (nn_real)lg->v[i], y[i] = (nn_real)tg->v[i];
    for (size_t i = 0; i < np; i++) pos[i] = (int64_t)ps->v[i], neg[i] = (int64_t)ng->v[i];
    double pw = hy->v[0], w = hy->v[1], margin = hy->v[2], total;
    int is_margin = strstr(loss, "margin") != NULL, alone = strcmp(loss, "bpr") == 0;
    if (alone) {
        memset(g, 0, n * sizeof(nn_real));
        w = 1;
        total = 0;
    } else {
        total = nn_bce_forward_backward(g, x, y, n, (float)pw);
    }
    if (is_margin) {
        total += w * nn_margin_forward(x, pos, neg, np, margin);
        nn_margin_backward(g, x, pos, neg, np, margin, w);
    } else {
        total += w * nn_bpr_forward(x, pos, neg, np);
        nn_bpr_backward(g, x, pos, neg, np, w);
    }
    g[0] += (nn_real)perturb;
    int bad = fabs(total - tl->v[0]) > tol * fabs(tl->v[0]);
    printf("# %-10s loss ours %.10g torch %.10g%s\n", loss, total, tl->v[0], bad ? "  MISMATCH" : "");
    double scale = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(tgr->v[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(g[i] - tgr->v[i]) / (tol * fmax(fabs(tgr->v[i]), scale));
        if (!(e <= 1)) bad++;
        if (!(e <= worst)) worst = e, wi = i;
    }
    printf("# %-10s grad worst [%zu] ours % .8e torch % .8e err/tol %.3g\n", loss, wi, (double)g[wi],
           tgr->v[wi], worst);
    free(x), free(y), free(g), free(pos), free(neg);
    return bad;
}

/* The test: every loss within tol, and a perturbation of 20 x tol of the gradient's scale
 * detected (so the comparison can fail). */
static int rank_parity(double tol) {
    rank_rec r[RANK_NREC];
    char err[256];
    int nr = rank_fx_load(r, err, sizeof err), rc = T_PASS;
    T_ASSERT(nr > 0, "%s", err);
    static const char *const losses[] = {"bce+bpr", "bce+margin", "bpr"};
    for (int i = 0; i < 3 && rc == T_PASS; i++) {
        int bad = rank_parity_one(r, nr, losses[i], tol, 0);
        if (bad != 0) {
            t_fail_msg(__FILE__, __LINE__, "bad == 0", "%s: %d mismatches (-1: record missing)",
                       losses[i], bad);
            rc = T_FAIL;
        }
    }
    if (rc == T_PASS && rank_parity_one(r, nr, "bce+bpr", tol, 0.05 * 20 * tol) <= 0) {
        t_fail_msg(__FILE__, __LINE__, "perturbed", "a perturbed gradient passed the check");
        rc = T_FAIL;
    }
    for (int i = 0; i < nr; i++) free(r[i].v);
    return rc;
}

#endif
