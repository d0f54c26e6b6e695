/* repctx.c -- the repeat-feature callback shared by training, evaluation and scoring
 * (kept apart from samples.c so that the sample code links without the features). */
#include "nb_err.h"
#include "samples.h"
#include "score.h"

#include <stdlib.h>

#include <string.h>

int tr_rep_ctx_init(tr_rep_ctx *ctx, const tr_product_stats *ps, char *err, size_t errlen) {
    memset(ctx, 0, sizeof *ctx);
    ctx->ps = ps;
    return tr_features_init(&ctx->f, ps->n_products, err, errlen);
}

void tr_rep_ctx_free(tr_rep_ctx *ctx) {
    tr_features_free(&ctx->f);
    memset(ctx, 0, sizeof *ctx);
}

int tr_rep_cb(void *vctx, tr_batch *tb, int b, const st_history *h, int u, int64_t hist_end,
              char *err, size_t errlen) {
    tr_rep_ctx *ctx = vctx;
    int rc = tr_features_user(&ctx->f, h, u, hist_end, ctx->ps, err, errlen);
    ctx->last_h = rc == NB_OK ? h : NULL;
    ctx->last_u = u;
    ctx->last_end = hist_end;
    if (rc) return rc;
    for (int i = 0; i < ctx->f.n; i++)
        tr_batch_add_rep(tb, b, ctx->f.prod[i], ctx->f.feat + (size_t)i * TR_N_FEATURES,
                         TR_N_FEATURES);
    return NB_OK;
}

static void free_ctx(void *p) {
    tr_rep_ctx_free(p);
    free(p);
}

int tr_scorer_set_stats(tr_scorer *s, const tr_product_stats *ps, char *err, size_t errlen) {
    tr_rep_ctx *ctx = nb_xcalloc(1, sizeof *ctx);
    int rc = tr_rep_ctx_init(ctx, ps, err, errlen);
    if (rc) {
        free(ctx);
        return rc;
    }
    tr_scorer_set_rep(s, tr_rep_cb, ctx, free_ctx);
    return NB_OK;
}
