/* explain.c -- human-readable reasons for recommended products (see explain.h). */
#include "explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"

#define TR_EXPLAIN_TOP 10 /* the user's most frequent products considered as "bought with" */

/* Cosine of the embeddings of products a and b (0 when either is the zero vector). */
static double ex_cosine(const tr_explainer *x, int32_t a, int32_t b) {
    const float *u = x->emb + (size_t)a * x->E, *v = x->emb + (size_t)b * x->E;
    double d = 0, nu = 0, nv = 0;
    for (int k = 0; k < x->E; k++) {
        d += (double)u[k] * v[k];
        nu += (double)u[k] * u[k];
        nv += (double)v[k] * v[k];
    }
    return nu > 0 && nv > 0 ? d / sqrt(nu * nv) : 0.0;
}

/* The product (index) to cite for a new product p: see explain.h. -1 if f is empty. */
static int32_t ex_companion(const tr_explainer *x, const tr_features *f, int32_t p) {
    /* top[] holds positions into f, most frequent first (ties: lower product index, which
     * is f's order, so a strict > keeps the earlier one) */
    int top[TR_EXPLAIN_TOP], nt = 0;
    for (int j = 0; j < f->n; j++) {
        int k;
        if (nt < TR_EXPLAIN_TOP)
            k = nt++;
        else if (f->raw[j].n_with > f->raw[top[TR_EXPLAIN_TOP - 1]].n_with)
            k = TR_EXPLAIN_TOP - 1;
        else
            continue;
        while (k > 0 && f->raw[j].n_with > f->raw[top[k - 1]].n_with) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = j;
    }
    int32_t best = -1;
    double bc = -2;
    for (int k = 0; k < nt; k++) {
        double c = x->emb ? ex_cosine(x, p, f->prod[top[k]]) : 0.0;
        if (c > bc) bc = c, best = f->prod[top[k]];
    }
    return best;
}

/* See explain.h. */
int tr_why_of(tr_why *w, const tr_explainer *x, const tr_features *f, int32_t p) {
    memset(w, 0, sizeof *w);
    if (p < 0 || p >= x->n_products) return -1;
    int j = tr_features_find(f, p);
    if (j >= 0) {
        const tr_rep_raw *r = &f->raw[j];
        if (r->n_last5 >= 3)
            *w = (tr_why){TR_WHY_LAST5, r->n_last5, f->n_orders, 0};
        else
            *w = (tr_why){TR_WHY_SHARE, r->n_with, f->n_orders, r->since};
        return 0;
    }
    int32_t c = ex_companion(x, f, p);
    *w = c < 0 ? (tr_why){TR_WHY_POPULAR, 0, 0, 0} : (tr_why){TR_WHY_NEW, c, 0, 0};
    return 0;
}

/* See explain.h. */
int tr_why_text(char *out, size_t outlen, const tr_explainer *x, const tr_why *w) {
    if (!out || outlen == 0) return -1;
    out[0] = 0;
    int n;
    switch (w->kind) {
    case TR_WHY_LAST5:
        if (w->b >= 5)
            n = snprintf(out, outlen, "bought in %d of your last 5 orders", (int)w->a);
        else
            n = snprintf(out, outlen, "bought in %d of your %d orders", (int)w->a, (int)w->b);
        break;
    case TR_WHY_SHARE: {
        char last[64];
        if (w->b <= 0) return -1; /* a share of no orders: not a tr_why_of result */
        if (w->c == 0)
            snprintf(last, sizeof last, "last bought in your last order");
        else if (w->c == 1)
            snprintf(last, sizeof last, "last bought in the order before your last");
        else
            snprintf(last, sizeof last, "not bought in your last %d orders", (int)w->c);
        n = snprintf(out, outlen, "you buy this in %d%% of your orders (%d of %d); %s",
                     (int)lround(100.0 * w->a / w->b), (int)w->a, (int)w->b, last);
        break;
    }
    case TR_WHY_NEW:
        if (w->a < 0 || w->a >= x->n_products) return -1;
        if (x->names && w->a < x->names->n && x->names->name[w->a])
            n = snprintf(out, outlen, "new for you: often bought with %s", x->names->name[w->a]);
        else
            n = snprintf(out, outlen, "new for you: often bought with product #%d", (int)w->a);
        break;
    case TR_WHY_POPULAR:
        n = snprintf(out, outlen, "popular with other shoppers");
        break;
    case TR_WHY_NEIGHBOURS:
        n = snprintf(out, outlen, "people who buy what you buy also buy this");
        break;
    default:
        return -1;
    }
    if (n < 0) return -1;
    return (size_t)n < outlen ? n : (int)outlen - 1;
}

/* See explain.h. */
int tr_explain(char *out, size_t outlen, const tr_explainer *x, const tr_features *f, int32_t p) {
    tr_why w;
    if (out && outlen) out[0] = 0;
    if (tr_why_of(&w, x, f, p) < 0) return -1;
    return tr_why_text(out, outlen, x, &w);
}
