/* srv_recommend.c -- one POST /recommend: load the user, score the candidate set with
 * tr_score_user (the code path nb-train evaluates with), rank, choose the basket, explain,
 * write the JSON. Runs on a worker thread and touches only that thread's srv_ctx and the
 * engine's read-only state. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"
#include "ownprod.h"
#include "prerank.h"
#include "srv_metrics.h"
#include "srv_engine_int.h"

/* Appends one product object; w (NULL: none) is its explanation (infer/explain.h).
 * Literals and integers are appended directly: printf's format parsing was most of this
 * function's cost; only the score goes through it (%.9g). */
static void write_item(srv_buf *b, const srv_engine *e, const srv_ctx *c, const tr_ranked *r,
                       const tr_why *w) {
    int32_t i = r->idx;
    SRV_BUF_LIT(b, "{\"product_id\": ");
    srv_buf_int(b, e->catalog.product_ids[i]);
    SRV_BUF_LIT(b, ", \"name\": ");
    srv_buf_str(b, e->names.name[i]);
    SRV_BUF_LIT(b, ", \"aisle\": ");
    srv_buf_str(b, st_idnames_get(&e->aisles, e->catalog.product_aisle[i]));
    SRV_BUF_LIT(b, ", \"department\": ");
    srv_buf_str(b, st_idnames_get(&e->depts, e->catalog.product_dept[i]));
    srv_buf_printf(b, ", \"score\": %.9g", (double)r->p);
    if (w) {
        char why[256];
        if (tr_why_text(why, sizeof why, &c->m->explainer, w) < 0) why[0] = '\0';
        SRV_BUF_LIT(b, ", \"why\": ");
        srv_buf_str(b, why);
    }
    SRV_BUF_LIT(b, "}");
}

/* The explanation of ranked product r for the user whose features c->rep.f holds: the
 * ranking stage's (its candidate's sources) or the model's. */
static void why_live(srv_ctx *c, const tr_ranked *r, tr_why *w) {
    int pos = c->m->rks.present ? c->rt.pos[r->idx] : -1; /* the ranking stage's candidate */
    if ((pos >= 0 ? tr_rk_why(w, &c->m->explainer, &c->rep.f, &c->rt.ru, pos)
                  : tr_why_of(w, &c->m->explainer, &c->rep.f, r->idx)) < 0)
        w->kind = 0; /* no text */
}

/* The user's ranking precomputed by nb-train (infer/prerank.h) into c->rank and c->rt.pre.
 * Returns the number of entries (> 0), 0 when there is none to use -- no row (a user
 * added or whose order came after training, a store without the table), or a row that
 * does not decode, which is logged: the caller then ranks live -- or a negative NB_E* on
 * a database error. */
static int ranked_ahead(srv_engine *e, srv_ctx *c, int32_t user_id, char *err, size_t errlen) {
    const uint8_t *blob = NULL;
    size_t len = 0;
    int n = 0, n_total = 0;
    int rc = st_reader_prerank(c->rd, c->m->model_id, user_id, &blob, &len, err, errlen);
    if (rc == NB_ENOTFOUND) return 0;
    if (rc) return rc;
    char derr[NB_ERRLEN];
    rc = tr_prerank_decode(blob, len, e->catalog.n_products, c->rt.pre, e->catalog.n_products, &n,
                           &n_total, derr, sizeof derr);
    if (rc || n == 0) {
        fprintf(stderr, "nb-serve: user %" PRId32 ": stored ranking of model %s unusable (%s); "
                        "ranking live\n",
                user_id, c->m->model_name, rc ? derr : "empty");
        return 0;
    }
    for (int i = 0; i < n; i++) c->rank[i] = (tr_ranked){c->rt.pre[i].score, c->rt.pre[i].idx};
    return n;
}

/* rank_user with a registered ranking stage (infer/rkserve.h): the same candidates and
 * scores as nb-train --score-user (tr_rk_serving_rank), every candidate scored; cand[n_cand]
 * is the user's cosine candidate set. Returns as rank_user. */
static int rank_user_stage(srv_ctx *c, const int32_t *cand, int n_cand, int need,
                           int *cold, char *err, size_t errlen) {
    tr_ranked *rk = c->rank;
    int rc = tr_rk_thread_rank(&c->rt, &c->m->rks, c->sc, st_reader_conn(c->rd), c->m->model_id,
                               &c->uh, 0, c->uh.user_order_off[1], cand, n_cand, err, errlen);
    *cold = rc == NB_ENOTFOUND;
    if (*cold) {
        for (int i = 0; i < c->m->n_pop; i++) rk[i] = (tr_ranked){c->m->pop_score[i], c->m->pop_idx[i]};
        return c->m->n_pop;
    }
    if (rc) return rc;
    int n = c->rt.ru.n, above = 0;
    for (int i = 0; i < n; i++) {
        rk[i] = (tr_ranked){c->rt.score[i], c->rt.ru.cand[i]};
        above += c->rt.score[i] >= c->m->threshold;
    }
    tr_rank_prefix(rk, n, need > above ? need : above);
    return n;
}

/* Fills c->rank with the ranked candidates of the user in c->uh and returns how many, or a
 * negative NB_E* code (message in err). Only the first `need` entries are in rank order
 * (tr_rank_prefix), plus every entry at or above the basket threshold. Candidates that
 * provably do not matter to the response (tr_score_user_top: outside the top c->req_k in
 * threshold mode and below the threshold; outside the top `need` in expected-F1 mode) are
 * not scored and not in c->rank. *cold is set when the user has no history with items: the
 * ranking is then the popularity list. */
static int rank_user(srv_engine *e, srv_ctx *c, int32_t user_id, int need, int *cold, char *err,
                     size_t errlen) {
    int P = e->catalog.n_products, n_cand = 0;
    const int32_t *cand = c->cand_idx;
    tr_ranked *rk = c->rank;
    int rc = st_reader_cands(c->rd, c->m->model_id, user_id, P, c->cand_idx, P, &n_cand, err, errlen);
    if (rc == NB_ENOTFOUND) {
        /* No stored candidate set: a model retired by a later nb-train, whose rows are all
         * gone -- refuse to serve it rather than answer from half of it (train/publish.h)
         * -- or a user added after training, e.g. by POST /orders: the model alone scores
         * the whole catalogue; the ranking stage takes the cold-start popularity list as
         * the user's cosine candidates, beside the user's own products (its neighbour part
         * is empty too: no neighbour_cands row). */
        int32_t any = 0;
        rc = st_reader_model_check(c->rd, c->m->model_id, c->m->crc, &any, err, errlen);
        c->retired = rc == NB_EMISMATCH;
        if (rc) return rc;
        cand = c->m->rks.present ? c->m->pop_idx : NULL;
        n_cand = c->m->rks.present ? c->m->n_pop : 0;
    }
    if (rc) return rc;
    if (c->m->rks.present) return rank_user_stage(c, cand, n_cand, need, cold, err, errlen);
    if (cand) /* the products bought since the set was stored too (infer/ownprod.h) */
        n_cand = tr_cands_add_own(&c->uh, 0, c->uh.user_order_off[1], c->cand_idx, n_cand, P,
                                  c->own_mark);
    /* what the response reads: threshold mode the top k and the basket, expected-F1 mode
     * the top `need` (>= TR_EF1_M); the survivors' indices overwrite cand_idx
     * (tr_score_user_top allows idx == cand) */
    int ef1 = c->req_mode == SRV_BASKET_EF1, m = ef1 || c->req_k > need ? need : c->req_k;
    double thr = ef1 ? INFINITY : c->m->threshold;
    int ns = 0;
    rc = tr_score_user_top(c->sc, &c->uh, 0, c->uh.user_order_off[1], cand, n_cand, m, thr,
                           c->cand_idx, c->prob, &ns, err, errlen);
    *cold = rc == NB_ENOTFOUND;
    if (*cold) {
        for (int i = 0; i < c->m->n_pop; i++) rk[i] = (tr_ranked){c->m->pop_score[i], c->m->pop_idx[i]};
        return c->m->n_pop; /* already in popularity order, ties by product_id = by index */
    }
    if (rc) return rc;
    int n = ns, above = 0;
    for (int i = 0; i < n; i++) {
        rk[i] = (tr_ranked){c->prob[i], c->cand_idx[i]};
        above += c->prob[i] >= thr;
    }
    tr_rank_prefix(rk, n, need > above ? need : above);
    return n;
}

/* The basket size: a prefix of the ranking (threshold), or the expected-F1 choice, which is
 * also a prefix (the k most probable, same tie rule). Returns >= 0 or a negative NB_E*. */
static int basket_size(srv_ctx *c, const tr_ranked *rk, int n, int mode, char *err,
                       size_t errlen) {
    int k = 0;
    if (mode == SRV_BASKET_THRESHOLD) {
        while (k < n && rk[k].p >= c->m->threshold) k++;
        return k;
    }
    int m = n < TR_EF1_M ? n : TR_EF1_M;
    for (int i = 0; i < m; i++) {
        c->prob[i] = rk[i].p;
        c->cand_idx[i] = rk[i].idx;
    }
    int rc = tr_ef1_choose(c->ef1, c->prob, c->cand_idx, m, 0, c->basket, &k, NULL, err, errlen);
    if (rc) return rc;
    for (int i = 0; i < k; i++)
        if (c->basket[i] != rk[i].idx)
            return nb_err(err, errlen, NB_EMISMATCH,
                          "expected-F1 basket item %d is product "
                          "index %d, ranking has %d",
                          i, c->basket[i], rk[i].idx);
    return k;
}

/* Makes c->rep.f hold the features of the user in c->uh over the whole history, for the
 * explanations: scoring computed them already, unless the user was cold or the model has
 * no repeat term. Returns NB_OK or tr_features_user's error. */
static int user_features(srv_ctx *c, char *err, size_t errlen) {
    if (c->rep.last_h == &c->uh && c->rep.last_u == 0 &&
        c->rep.last_end == c->uh.user_order_off[1])
        return NB_OK;
    return tr_features_user(&c->rep.f, &c->uh, 0, c->uh.user_order_off[1], &c->m->stats, err,
                            errlen);
}

/* Points c->uh at an empty one-user history (a user with no orders at all). */
static void empty_history(srv_engine *e, srv_ctx *c, int32_t user_id) {
    static const int64_t off0[2] = {0, 0};
    static const int64_t item_off0[1] = {0};
    c->empty_user = user_id;
    memset(&c->uh, 0, sizeof c->uh);
    c->uh.n_products = e->catalog.n_products;
    c->uh.product_ids = e->catalog.product_ids;
    c->uh.product_aisle = e->catalog.product_aisle;
    c->uh.product_dept = e->catalog.product_dept;
    c->uh.n_users = 1;
    c->uh.user_ids = &c->empty_user;
    c->uh.user_order_off = (int64_t *)off0;
    c->uh.order_item_off = (int64_t *)item_off0;
}

/* Loads the user's history and ranks the candidates inside one read transaction, so that
 * the history and the candidate set come from the same snapshot of the store. Returns the
 * number ranked, 0 with *unknown set for a user not in the store, or a negative NB_E*. */
static int load_and_rank(srv_engine *e, srv_ctx *c, int32_t user_id, int need, int *cold,
                         int *unknown, char *err, size_t errlen) {
    char cerr[NB_ERRLEN];
    *unknown = 0;
    int n = st_reader_begin(c->rd, err, errlen);
    if (n) return n;
    n = st_reader_user(c->rd, &e->catalog, user_id, &c->uh, err, errlen);
    if (n == NB_ENOTFOUND) {
        /* No orders: a user unknown to the store, or one who has never ordered (cold). */
        n = st_reader_user_exists(c->rd, user_id, err, errlen);
        if (n == 0) *unknown = 1;
        if (n == 1) {
            empty_history(e, c, user_id);
            n = NB_OK;
        }
    }
    if (n == NB_OK && !*unknown) n = rank_user(e, c, user_id, need, cold, err, errlen);
    /* the snapshot ends either way; its error is reported only when nothing failed before */
    int cr = st_reader_commit(c->rd, cerr, sizeof cerr);
    if (cr && n >= 0) n = nb_err(err, errlen, cr, "%s", cerr);
    return n;
}

/* One request on model m (acquired by the caller). Returns as srv_engine_recommend. */
static int recommend(srv_engine *e, srv_model *m, const srv_request *rq, char **body,
                     size_t *len) {
    srv_ctx *c = NULL;
    char err[NB_ERRLEN] = "";
    int rc, cold = 0, unknown = 0;
    srv_buf b = {0};

    rc = srv_ctx_get(e, m, &c, err, sizeof err);
    if (rc) goto fault;
    c->req_k = rq->k;
    c->req_mode = rq->basket_mode;
    c->retired = 0;

    /* ranked entries read below: top-k, the threshold basket, the expected-F1 programme */
    int need = rq->k > TR_EF1_M ? rq->k : TR_EF1_M;
    c->rep.last_h = NULL; /* no features of this request's user yet */
    int n = c->m->rks.present ? ranked_ahead(e, c, rq->user_id, err, sizeof err) : 0;
    int ahead = n > 0;
    if (n == 0) n = load_and_rank(e, c, rq->user_id, need, &cold, &unknown, err, sizeof err);
    if (unknown) {
        char msg[96];
        snprintf(msg, sizeof msg, "unknown user_id %" PRId32, rq->user_id);
        *body = srv_error_json("unknown_user", msg, len);
        return 404;
    }
    if (n < 0) {
        rc = n;
        goto fault;
    }
    int nb = basket_size(c, c->rank, n, rq->basket_mode, err, sizeof err);
    if (nb < 0) {
        rc = nb;
        goto fault;
    }
    if (!ahead && (rc = user_features(c, err, sizeof err)) != NB_OK) goto fault;

    const tr_ranked *rk = c->rank;
    int k = rq->k < n ? rq->k : n;
    srv_buf_printf(&b,
                   "{\"user_id\": %" PRId32 ", \"model\": \"%s\", \"threshold\": %.9g, "
                   "\"basket_mode\": \"%s\", \"cold_start\": %s, \"basket\": [",
                   rq->user_id, c->m->model_name, c->m->threshold, srv_basket_mode_name(rq->basket_mode),
                   cold ? "true" : "false");
    for (int i = 0; i < nb; i++) {
        if (i) SRV_BUF_LIT(&b, ", ");
        write_item(&b, e, c, &rk[i], NULL);
    }
    srv_buf_cstr(&b, "], \"top_k\": [");
    for (int i = 0; i < k; i++) {
        tr_why w;
        if (ahead)
            w = c->rt.pre[i].why;
        else
            why_live(c, &rk[i], &w);
        if (i) SRV_BUF_LIT(&b, ", ");
        write_item(&b, e, c, &rk[i], &w);
    }
    srv_buf_cstr(&b, "]}\n");
    *body = srv_buf_take(&b, len);
    srv_metrics_ranking(ahead);
    return 200;

fault:
    srv_buf_free(&b);
    if (c && c->retired) {
        /* the store no longer has this model's rows: not a fault of this server */
        fprintf(stderr, "nb-serve: cannot serve user %" PRId32 ": %s\n", rq->user_id, err);
        *body = srv_error_json("model_retired", err, len);
        return 503;
    }
    fprintf(stderr, "nb-serve: internal error serving user %" PRId32 " (code %d): %s\n",
            rq->user_id, rc, err);
    *body = srv_error_json("internal_error", "internal error (logged)", len);
    return 500;
}

/* See srv_engine.h. The body is built in a srv_buf and handed to the HTTP layer. The model
 * is held from the first read to the last byte written, so a reload meanwhile does not
 * change it under the request. */
int srv_engine_recommend(void *ctx, const srv_request *rq, char **body, size_t *len) {
    srv_engine *e = ctx;
    srv_model *m = srv_model_acquire(e);
    int status = recommend(e, m, rq, body, len);
    srv_model_release(e, m);
    return status;
}

/* See srv_engine.h. The live path of /recommend (load_and_rank with the expected-F1
 * programme's need, the features for the explanations), then the row as nb-train builds it
 * (tr_prerank_from_stage). */
int srv_engine_rank_blob(srv_engine *e, int32_t user_id, uint8_t **blob, size_t *len,
                         int64_t *model_id, int64_t *n_orders, char *err, size_t errlen) {
    srv_model *m = srv_model_acquire(e);
    srv_ctx *c = NULL;
    int cold = 0, unknown = 0;
    *blob = NULL;
    int rc = m->rks.present ? srv_ctx_get(e, m, &c, err, errlen) : NB_ENOTFOUND;
    if (rc) goto done;
    c->req_k = SRV_K_MAX;
    c->req_mode = SRV_BASKET_EF1; /* rank at least the programme's entries */
    c->retired = 0;
    c->rep.last_h = NULL;
    int n = load_and_rank(e, c, user_id, TR_EF1_M, &cold, &unknown, err, errlen);
    if (n < 0) {
        rc = n;
        goto done;
    }
    if (unknown || cold || n == 0) {
        rc = NB_ENOTFOUND;
        goto done;
    }
    rc = user_features(c, err, errlen);
    if (rc) goto done;
    int keep = tr_prerank_from_stage(c->rt.pre, c->rank, &c->rt.ru, c->rt.score, c->rt.pos,
                                     m->threshold, &m->explainer, &c->rep.f);
    tr_prerank_encode(c->rt.pre, keep, c->rt.ru.n, blob, len);
    *model_id = m->model_id;
    *n_orders = c->uh.user_order_off[1];
done:
    srv_model_release(e, m);
    return rc;
}
