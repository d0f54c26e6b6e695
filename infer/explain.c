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

int tr_explain(char *out, size_t outlen, const tr_explainer *x, const tr_features *f, int32_t p) {
    if (!out || outlen == 0) return -1;
    out[0] = 0;
    if (p < 0 || p >= x->n_products) return -1;
    int j = tr_features_find(f, p), n;
    if (j >= 0) {
        const tr_rep_raw *r = &f->raw[j];
        int no = f->n_orders;
        if (r->n_last5 >= 3) {
            if (no >= 5)
                n = snprintf(out, outlen, "bought in %d of your last 5 orders", r->n_last5);
            else
                n = snprintf(out, outlen, "bought in %d of your %d orders", r->n_last5, no);
        } else {
            char last[64];
            if (r->since == 0)
                snprintf(last, sizeof last, "last bought in your last order");
            else if (r->since == 1)
                snprintf(last, sizeof last, "last bought in the order before your last");
            else
                snprintf(last, sizeof last, "not bought in your last %d orders", r->since);
            n = snprintf(out, outlen, "you buy this in %d%% of your orders (%d of %d); %s",
                         (int)lround(100.0 * r->n_with / no), r->n_with, no, last);
        }
    } else {
        int32_t c = ex_companion(x, f, p);
        if (c < 0) {
            n = snprintf(out, outlen, "popular with other shoppers");
        } else if (x->names && c < x->names->n && x->names->name[c]) {
            n = snprintf(out, outlen, "new for you: often bought with %s", x->names->name[c]);
        } else {
            n = snprintf(out, outlen, "new for you: often bought with product #%d", (int)c);
        }
    }
    if (n < 0) return -1;
    return (size_t)n < outlen ? n : (int)outlen - 1;
}
