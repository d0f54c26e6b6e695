/* score.c -- the single scoring path for evaluation (batched) and serving (one user). */
#include "score.h"
#include "calibration.h"
#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tr_scorer {
    nn_model *m;            /* borrowed */
    tr_batch tb;
    tr_rep_fn rep;          /* repeat features, NULL until set */
    void *rep_ctx;
    void (*rep_free)(void *);
    int64_t *ord;           /* [max_orders] scratch for the cold-start check */
};

int tr_scorer_new(tr_scorer **s, nn_model *m, char *err, size_t errlen) {
    (void)err, (void)errlen;
    tr_scorer *x = nb_xcalloc(1, sizeof *x);
    x->m = m;
    x->ord = nb_xmalloc((size_t)m->cfg.max_orders * sizeof(int64_t));
    *s = x;
    return NB_OK;
}

void tr_scorer_free(tr_scorer *s) {
    if (!s) return;
    tr_batch_free(&s->tb);
    if (s->rep_free) s->rep_free(s->rep_ctx);
    free(s->ord);
    free(s);
}

void tr_scorer_set_rep(tr_scorer *s, tr_rep_fn fn, void *ctx, void (*free_ctx)(void *)) {
    if (s->rep_free) s->rep_free(s->rep_ctx);
    s->rep = fn;
    s->rep_ctx = ctx;
    s->rep_free = free_ctx;
}

float tr_calibrate(const nn_model *m, float logit) {
    return (float)tr_sigmoid((double)m->calib_a * logit + m->calib_b);
}

/* Runs the network on smp[0..B) scoring rows[0..S) (S == 0: all). Returns NB_OK with the
 * logits in s->m->logits, or NB_EINVAL when the model needs product stats it was not given. */
static int run(tr_scorer *s, const st_history *h, const tr_sample *smp, int B,
               const int32_t *rows, int S, char *err, size_t errlen) {
    nn_model *m = s->m;
    if (m->cfg.rep_features > 0 && !s->rep)
        return nb_err(err, errlen, NB_EINVAL,
                      "the model has a repeat term: tr_scorer_set_stats was not called");
    if (m->cfg.rep_features > 0 && m->cfg.rep_features != TR_N_FEATURES)
        return nb_err(err, errlen, NB_EMISMATCH, "model has %d repeat features, this build %d",
                      m->cfg.rep_features, TR_N_FEATURES);
    int rc = tr_batch_fill(&s->tb, h, smp, B, &m->cfg, rows, S, 0,
                           m->cfg.rep_features > 0 ? s->rep : NULL, s->rep_ctx, err, errlen);
    if (rc) return rc;
    nn_model_forward(m, &s->tb.nb, 0, 1.0f);
    return NB_OK;
}

int tr_score_user(tr_scorer *s, const st_history *h, int u, int64_t hist_end,
                  const int32_t *cand, int n_cand, float *prob, char *err, size_t errlen) {
    if (u < 0 || u >= h->n_users || hist_end < h->user_order_off[u] ||
        hist_end > h->user_order_off[u + 1])
        return nb_err(err, errlen, NB_EINVAL, "user index %d / history end %lld out of range",
                      u, (long long)hist_end);
    if (tr_input_orders(h, u, hist_end, s->m->cfg.max_orders, s->ord) == 0)
        return nb_err(err, errlen, NB_ENOTFOUND, "user %d has no order with items",
                      h->user_ids[u]);
    if (!cand) n_cand = 0;
    tr_sample smp = {u, hist_end};
    int rc = run(s, h, &smp, 1, cand, n_cand, err, errlen);
    if (rc) return rc;
    int n = n_cand > 0 ? n_cand : s->m->cfg.n_products;
    for (int i = 0; i < n; i++) prob[i] = tr_calibrate(s->m, s->m->logits[i]);
    return NB_OK;
}

int tr_score_batch(tr_scorer *s, const st_history *h, const tr_sample *smp, int B,
                   float *logit, float *prob, char *err, size_t errlen) {
    int rc = run(s, h, smp, B, NULL, 0, err, errlen);
    if (rc) return rc;
    size_t n = (size_t)B * s->m->cfg.n_products;
    if (logit) memcpy(logit, s->m->logits, n * sizeof(float));
    if (prob)
        for (size_t i = 0; i < n; i++) prob[i] = tr_calibrate(s->m, s->m->logits[i]);
    return NB_OK;
}
