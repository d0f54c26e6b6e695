/* srv_engine.c -- start-up checks and loading, per-thread contexts, /health (see
 * srv_engine.h). The request path itself is in srv_recommend.c. */
#include "srv_engine_int.h"

#include <cjson/cJSON.h>
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models.h"
#include "srv_metrics.h"
#include "nb_err.h"
#include "store.h"
#include "weights.h"

#define SRV_POP_MAX 100 /* cold-start list length: the largest k */

/* Finds the model's row by checksum and reads its basket threshold from the hyper-parameters
 * it was trained and evaluated with (hyper_params.threshold, nb-train --threshold).
 * Returns NB_OK, NB_ENOTFOUND (not registered), NB_EFORMAT (no usable threshold) or NB_EDB. */
static int model_row_load(srv_model *sm, sqlite3 *db, const char *model_path, char *err,
                          size_t errlen) {
    char *hp = NULL;
    cJSON *m = NULL;
    int rc = st_model_find(db, sm->crc, &sm->model_id, &hp, err, errlen);
    if (rc == NB_ENOTFOUND) {
        rc = nb_err(err, errlen, NB_ENOTFOUND,
                    "%s (checksum %s) is not registered in the "
                    "store's models table (train it with nb-train on this store)",
                    model_path, sm->model_name);
        goto done;
    }
    if (rc) goto done;
    m = hp ? cJSON_Parse(hp) : NULL;
    const cJSON *t = m ? cJSON_GetObjectItemCaseSensitive(m, "threshold") : NULL;
    if (!cJSON_IsNumber(t) || !(t->valuedouble >= 0 && t->valuedouble <= 1)) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "models row %" PRId64 ": hyper_params has no "
                    "threshold in [0, 1]",
                    sm->model_id);
        goto done;
    }
    sm->threshold = t->valuedouble;
done:
    cJSON_Delete(m);
    free(hp);
    return rc;
}

/* The cold-start list: the SRV_POP_MAX products with the most items in prior orders, from
 * the statistics stored with the model (no scan of order_items at start-up), each scored by
 * its item count over the number of prior orders (the share of orders containing it when a
 * product appears at most once per order). Ties: lower index. Returns NB_OK or NB_EDB. */
static int popularity_load(srv_model *e, sqlite3 *db, char *err, size_t errlen) {
    int64_t n_orders = 0;
    int rc = st_count_prior_orders(db, &n_orders, err, errlen);
    if (rc) return rc;
    const tr_product_stats *ps = &e->stats;
    e->pop_idx = nb_xcalloc(SRV_POP_MAX, sizeof *e->pop_idx);
    e->pop_score = nb_xcalloc(SRV_POP_MAX, sizeof *e->pop_score);
    /* Insertion into a sorted list of at most SRV_POP_MAX: P * 100 compares at worst. */
    for (int i = 0; i < ps->n_products; i++) {
        int64_t c = ps->n_items[i];
        if (c <= 0) continue;
        int j = e->n_pop < SRV_POP_MAX ? e->n_pop : SRV_POP_MAX - 1;
        if (e->n_pop == SRV_POP_MAX && ps->n_items[e->pop_idx[j]] >= c) continue;
        while (j > 0 && ps->n_items[e->pop_idx[j - 1]] < c) {
            e->pop_idx[j] = e->pop_idx[j - 1];
            j--;
        }
        e->pop_idx[j] = i;
        if (e->n_pop < SRV_POP_MAX) e->n_pop++;
    }
    for (int j = 0; j < e->n_pop; j++) {
        double share = n_orders > 0 ? (double)ps->n_items[e->pop_idx[j]] / (double)n_orders : 0;
        e->pop_score[j] = (float)(share < 1 ? share : 1);
    }
    return NB_OK;
}

#define SRV_REF_USERS 256 /* users whose mean head input is the pruning reference */

/* headq_build's user source: the users in id order, each loaded alone. */
typedef struct {
    int32_t *ids;
    int n, next;
    st_userq *uq;
    const st_history *catalog;
    st_history uh;
} ref_users;

/* A tr_user_next_fn over ref_users: returns 1 with the next user that has orders, 0 when
 * none is left, or a negative NB_E* from loading. */
static int ref_users_next(void *ctx, const st_history **h, int *u, int64_t *hist_end, char *err,
                          size_t errlen) {
    ref_users *it = ctx;
    int rc;
    do { /* a user without orders (or gone since the list was read) is skipped */
        if (it->next == it->n) return 0;
        rc = st_userq_load(it->uq, it->catalog, it->ids[it->next++], &it->uh, err, errlen);
    } while (rc == NB_ENOTFOUND);
    if (rc) return rc;
    *h = &it->uh;
    *u = 0;
    *hist_end = it->uh.user_order_off[1];
    return 1;
}

/* Builds e->headq (row norms of the output layer)
 * and its reference input: the mean output-layer input of the first SRV_REF_USERS users
 * (by id) with history. The reference only decides how many candidates a request scores
 * exactly, never a result. Returns NB_OK or an error (message in err); e->headq is freed
 * by srv_engine_free either way. */
static int headq_build(const srv_engine *eng, srv_model *e, sqlite3 *db, char *err,
                       size_t errlen) {
    const nn_config *cf = &e->model.cfg;
    int rc = nn_headq_build(&e->headq, e->model.p.out_w, cf->n_products, cf->head, err, errlen);
    if (rc) return rc;
    nn_model clone = {0};
    int have_clone = 0;
    tr_scorer *sc = NULL;
    ref_users it = {.catalog = &eng->catalog};
    rc = nn_model_clone_for_scoring(&clone, &e->model, err, errlen);
    have_clone = rc == NB_OK;
    if (!rc) rc = tr_scorer_new(&sc, &clone, err, errlen);
    if (!rc && cf->rep_features > 0) rc = tr_scorer_set_stats(sc, &e->stats, err, errlen);
    if (!rc) rc = st_userq_open(&it.uq, db, err, errlen);
    if (!rc) rc = st_user_ids(db, 0, &it.ids, &it.n, err, errlen);
    if (!rc)
        rc =
            tr_headq_reference_from(&e->headq, sc, ref_users_next, &it, SRV_REF_USERS, err, errlen);
    free(it.ids);
    if (it.uq) st_userq_free(it.uq); /* also frees it.uh's buffers */
    tr_scorer_free(sc);
    if (have_clone) nn_model_free(&clone);
    return rc;
}

static void model_free(srv_model *m);

/* Loads the weight file at path and everything read for it from db into a new model:
 * the weights (checked against the engine's catalogue), its models row and threshold, its
 * product statistics and ranking stage, the cold-start list, the pruning bounds (scoring
 * the reference users: a first use of the weights). Returns NB_OK and *out (refs 0), or an
 * error naming what failed with nothing left allocated. */
static int model_load(srv_engine *e, sqlite3 *db, const char *path, srv_model **out, char *err,
                      size_t errlen) {
    static _Atomic uint64_t next_gen = 1;
    srv_model *m = nb_xcalloc(1, sizeof *m);
    *out = NULL;
    m->gen = next_gen++;
    m->loaded_at = (double)time(NULL);
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = nbw_load(&m->model, path, e->catalog.product_ids, e->catalog.n_products, NULL,
                      &m->crc, err, errlen);
    if (rc) goto done;
    snprintf(m->model_name, sizeof m->model_name, "%08" PRIx32, m->crc);
    rc = model_row_load(m, db, path, err, errlen);
    if (!rc) rc = tr_product_stats_load(&m->stats, db, m->model_id, &e->catalog, err, errlen);
    if (!rc) rc = tr_rk_serving_open(&m->rks, db, m->model_id, &e->catalog, err, errlen);
    if (!rc) rc = popularity_load(m, db, err, errlen);
    if (!rc) rc = headq_build(e, m, db, err, errlen);
    if (rc) {
        nb_err_wrap(err, errlen, rc, "%s", e->db_path);
        goto done;
    }
    m->explainer =
        (tr_explainer){e->catalog.n_products, m->model.cfg.emb, m->model.p.emb, &e->names};
    *out = m;
    m = NULL;
done:
    model_free(m);
    return rc;
}

/* See srv_engine.h. Everything is checked before *out is set; on error every partial load is
 * freed. The start-up connection is closed: worker threads open their own. */
int srv_engine_open(srv_engine **out, const char *db_path, const char *model_path, char *err,
                    size_t errlen) {
    int rc;
    sqlite3 *db = NULL;
    srv_engine *e = nb_xcalloc(1, sizeof *e);

    *out = NULL;
    e->t_start = nb_now();
    snprintf(e->db_path, sizeof e->db_path, "%s", db_path);
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->reload_lock, NULL);
    rc = st_open(&db, db_path, 1, err, errlen);
    if (rc) goto done;
    rc = st_catalog_load(&e->catalog, db, err, errlen);
    if (rc) {
        nb_err_wrap(err, errlen, rc, "%s: loading the catalogue", db_path);
        goto done;
    }
    int64_t n_users = 0;
    rc = tr_names_load(&e->names, db, &e->catalog, err, errlen);
    if (!rc) rc = st_count_users(db, &n_users, err, errlen);
    if (!rc) rc = st_idnames_load(&e->aisles, db, ST_AISLES, err, errlen);
    if (!rc) rc = st_idnames_load(&e->depts, db, ST_DEPARTMENTS, err, errlen);
    if (rc) {
        nb_err_wrap(err, errlen, rc, "%s", db_path);
        goto done;
    }
    atomic_store(&e->n_users, (int)n_users);
    rc = model_load(e, db, model_path, &e->cur, err, errlen);
    if (rc) goto done;
    e->cur->refs = 1; /* the reference of being current */
    *out = e;
    e = NULL;
done:
    st_close(db);
    srv_engine_free(e);
    return rc;
}

/* Frees a worker context and everything it owns (safe on a partly built one). */
static void ctx_free(srv_ctx *c) {
    if (!c) return;
    st_reader_free(c->rd); /* also frees the buffers of c->uh */
    tr_scorer_free(c->sc);
    tr_rep_ctx_free(&c->rep);
    tr_ef1_free(c->ef1);
    if (c->have_clone) nn_model_free(&c->clone);
    free(c->cand_idx);
    free(c->own_mark);
    free(c->prob);
    free(c->rank);
    free(c->basket);
    tr_rk_thread_free(&c->rt);
    free(c);
}

/* Frees m, its thread contexts and everything loaded for it (safe on NULL and on a
 * partly loaded one). No request may hold it. */
static void model_free(srv_model *m) {
    if (!m) return;
    for (srv_ctx *c = m->ctxs, *next; c; c = next) {
        next = c->next;
        ctx_free(c);
    }
    tr_product_stats_free(&m->stats);
    tr_rk_serving_free(&m->rks);
    free(m->pop_idx);
    free(m->pop_score);
    if (m->model.mem) nn_model_free(&m->model);
    nn_headq_free(&m->headq);
    free(m);
}

/* See srv_engine.h. Must run after the HTTP workers have stopped: it frees their contexts. */
void srv_engine_free(srv_engine *e) {
    if (!e) return;
    model_free(e->cur);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->reload_lock);
    tr_names_free(&e->names);
    st_idnames_free(&e->aisles);
    st_idnames_free(&e->depts);
    st_history_free(&e->catalog);
    free(e);
}

/* See srv_engine_int.h. */
srv_model *srv_model_acquire(srv_engine *e) {
    pthread_mutex_lock(&e->lock);
    srv_model *m = e->cur;
    m->refs++;
    pthread_mutex_unlock(&e->lock);
    return m;
}

/* See srv_engine_int.h. */
void srv_model_release(srv_engine *e, srv_model *m) {
    pthread_mutex_lock(&e->lock);
    int last = --m->refs == 0;
    assert(m->refs >= 0 && (!last || m != e->cur));
    pthread_mutex_unlock(&e->lock);
    if (last) model_free(m);
}

/* This thread's last context: reused while the thread serves the same model (matched by
 * its load generation, so a freed model's address reused by a new one cannot match). */
static _Thread_local struct {
    uint64_t gen;
    srv_ctx *c;
} tl_ctx;

/* See srv_engine_int.h. The new context is owned by m (its list); a thread that served
 * another model in between finds its context of m again in that list. */
int srv_ctx_get(srv_engine *e, srv_model *m, srv_ctx **out, char *err, size_t errlen) {
    if (tl_ctx.gen == m->gen) {
        *out = tl_ctx.c;
        return NB_OK;
    }
    pthread_t self = pthread_self();
    srv_ctx *c = NULL;
    pthread_mutex_lock(&e->lock);
    for (c = m->ctxs; c && !pthread_equal(c->owner, self); c = c->next) {}
    pthread_mutex_unlock(&e->lock);
    if (c) {
        tl_ctx.gen = m->gen, tl_ctx.c = c;
        *out = c;
        return NB_OK;
    }
    int rc = NB_OK;
    size_t P = (size_t)e->catalog.n_products;
    c = nb_xcalloc(1, sizeof *c);
    c->m = m;
    c->owner = self;
    rc = st_reader_open(&c->rd, e->db_path, err, errlen);
    if (!rc) {
        rc = nn_model_clone_for_scoring(&c->clone, &m->model, err, errlen);
        c->have_clone = rc == NB_OK;
    }
    if (!rc) rc = tr_scorer_new(&c->sc, &c->clone, err, errlen);
    if (!rc) rc = tr_rep_ctx_init(&c->rep, &m->stats, err, errlen);
    if (!rc && m->model.cfg.rep_features > 0) tr_scorer_set_rep(c->sc, tr_rep_cb, &c->rep, NULL);
    if (!rc) rc = tr_ef1_new(&c->ef1, TR_EF1_M, err, errlen);
    if (!rc && m->rks.present) rc = tr_rk_thread_init(&c->rt, &m->rks, &e->catalog, err, errlen);
    if (rc) {
        ctx_free(c);
        return rc;
    }
    tr_scorer_set_headq(c->sc, &m->headq);
    c->cand_idx = nb_xmalloc(P * sizeof *c->cand_idx);
    c->own_mark = nb_xcalloc(P, sizeof *c->own_mark);
    c->prob = nb_xmalloc(P * sizeof *c->prob);
    c->rank = nb_xmalloc(P * sizeof *c->rank);
    c->basket = nb_xmalloc(TR_EF1_M * sizeof *c->basket);
    pthread_mutex_lock(&e->lock);
    c->next = m->ctxs;
    m->ctxs = c;
    pthread_mutex_unlock(&e->lock);
    tl_ctx.gen = m->gen, tl_ctx.c = c;
    *out = c;
    return NB_OK;
}

/* /health reads what /recommend reads, through this thread's reader for model m: the
 * models row (still this model), one user's history and candidate set. Returns NB_OK or
 * the error of the first read that failed (message in err). */
static int health_check(srv_engine *e, srv_model *m, char *err, size_t errlen) {
    srv_ctx *c = NULL;
    char cerr[NB_ERRLEN];
    int32_t user = 0;
    int n = 0;
    int rc = srv_ctx_get(e, m, &c, err, errlen);
    if (rc) return rc;
    rc = st_reader_begin(c->rd, err, errlen);
    if (rc) return rc;
    rc = st_reader_model_check(c->rd, m->model_id, m->crc, &user, err, errlen);
    if (!rc && user) {
        rc = st_reader_user(c->rd, &e->catalog, user, &c->uh, err, errlen);
        if (rc == NB_ENOTFOUND) rc = NB_OK; /* a user without orders is fine */
        if (!rc)
            rc = st_reader_cands(c->rd, m->model_id, user, e->catalog.n_products, c->cand_idx,
                                 e->catalog.n_products, &n, err, errlen);
    }
    int cr = st_reader_commit(c->rd, cerr, sizeof cerr);
    if (cr && !rc) rc = nb_err(err, errlen, cr, "%s", cerr);
    return rc;
}

/* "%Y-%m-%dT%H:%M:%SZ" of t (seconds since the epoch) into buf[24]. */
static void iso_time(char *buf, double t) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* See srv_engine.h: status, model name and when it was loaded, reloads, user and product
 * counts, whole seconds since start; 503 with the reason when the store cannot serve
 * (health_check). */
int srv_engine_health(void *ctx, char **body, size_t *len) {
    srv_engine *e = ctx;
    srv_buf b = {0};
    char err[NB_ERRLEN], at[24];
    srv_model *m = srv_model_acquire(e);
    int status = 200;
    if (health_check(e, m, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-serve: health check failed: %s\n", err);
        srv_buf_printf(&b,
                       "{\"status\": \"error\", \"model\": \"%s\", \"reason\": ", m->model_name);
        srv_buf_str(&b, err);
        srv_buf_cstr(&b, "}\n");
        status = 503;
        goto done;
    }
    long reloads, failures;
    srv_engine_reload_counts(e, &reloads, &failures);
    iso_time(at, m->loaded_at);
    /* "ranking": what orders the responses -- the ranking stage's trees, the baseline its
     * validation safeguard shipped instead, or the model alone (no ranking stage) */
    srv_buf_printf(&b,
                   "{\"status\": \"ok\", \"model\": \"%s\", \"ranking\": \"%s\", "
                   "\"model_loaded_at\": \"%s\", \"reloads\": %ld, \"failed_reloads\": %ld, "
                   "\"users\": %d, \"products\": %d, \"uptime_s\": %.0f}\n",
                   m->model_name, m->rks.present ? m->rks.shipped : "model", at, reloads, failures,
                   atomic_load(&e->n_users), e->catalog.n_products, nb_now() - e->t_start);
done:
    srv_model_release(e, m);
    *body = srv_buf_take(&b, len);
    return status;
}

/* The weight file to reload: the newest registered model, or the one whose checksum is
 * `checksum`. Returns NB_OK with path[len], NB_ENOTFOUND or NB_EDB. */
static int reload_target(sqlite3 *db, const char *checksum, char *path, size_t len, char *err,
                         size_t errlen) {
    char *p = NULL;
    int rc = st_model_path(db, checksum, &p, err, errlen);
    if (rc) return rc;
    snprintf(path, len, "%s", p);
    free(p);
    return NB_OK;
}

/* See srv_engine.h. The new model is loaded and checked entirely beside the current one
 * (requests go on meanwhile); the swap itself is one pointer under the lock. */
int srv_engine_reload(srv_engine *e, const char *checksum, int wait, srv_reload_result *res,
                      char *err, size_t errlen) {
    sqlite3 *db = NULL;
    srv_model *m = NULL, *old = NULL;
    char path[1024];
    memset(res, 0, sizeof *res);
    if (wait)
        pthread_mutex_lock(&e->reload_lock);
    else if (pthread_mutex_trylock(&e->reload_lock) != 0)
        return nb_err(err, errlen, NB_EBUSY, "another model reload is running");
    int rc = st_open(&db, e->db_path, 1, err, errlen);
    if (!rc) {
        rc = reload_target(db, checksum, path, sizeof path, err, errlen);
        res->unknown = rc == NB_ENOTFOUND;
    }
    if (!rc) rc = model_load(e, db, path, &m, err, errlen);
    st_close(db);
    if (!rc) rc = health_check(e, m, err, errlen);
    if (rc) {
        e->reload_failures++;
        srv_metrics_reload(0);
        model_free(m);
        goto done;
    }
    m->refs = 1;
    pthread_mutex_lock(&e->lock);
    old = e->cur;
    e->cur = m;
    pthread_mutex_unlock(&e->lock);
    e->reloads++;
    snprintf(res->model, sizeof res->model, "%s", m->model_name);
    snprintf(res->previous, sizeof res->previous, "%s", old->model_name);
    iso_time(res->loaded_at, m->loaded_at);
    srv_metrics_model(m->model_name, m->loaded_at);
    srv_metrics_reload(1);
    srv_model_release(e, old); /* its last request frees it, or this call */
done:
    pthread_mutex_unlock(&e->reload_lock);
    return rc;
}

/* See srv_engine.h. */
void srv_engine_reload_counts(srv_engine *e, long *reloads, long *failures) {
    pthread_mutex_lock(&e->reload_lock);
    *reloads = e->reloads;
    *failures = e->reload_failures;
    pthread_mutex_unlock(&e->reload_lock);
}

/* See srv_engine.h. */
void srv_engine_model_info(srv_engine *e, srv_model_info *info) {
    srv_model *m = srv_model_acquire(e);
    snprintf(info->name, sizeof info->name, "%s", m->model_name);
    snprintf(info->path, sizeof info->path, "%s", m->path);
    info->loaded_at = m->loaded_at;
    info->n_users = atomic_load(&e->n_users);
    info->n_products = e->catalog.n_products;
    info->threshold = m->threshold;
    srv_model_release(e, m);
}

/* See srv_engine.h. */
void srv_engine_user_added(srv_engine *e) { atomic_fetch_add(&e->n_users, 1); }

/* See srv_engine.h. */
void srv_engine_prune_stats(srv_engine *e, long *calls, long *candidates, long *survivors,
                            long *fallbacks) {
    *calls = *candidates = *survivors = *fallbacks = 0;
    pthread_mutex_lock(&e->lock);
    for (srv_ctx *c = e->cur->ctxs; c; c = c->next) {
        tr_prune_stats st;
        tr_scorer_prune_stats(c->sc, &st);
        *calls += st.calls;
        *candidates += st.candidates;
        *survivors += st.survivors;
        *fallbacks += st.fallbacks;
    }
    pthread_mutex_unlock(&e->lock);
}
