/* prerank_build.c -- every user's ranking ahead of time (prerank_build.h). */
#include "prerank_build.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "candidates.h"
#include "loop.h"
#include "nb_err.h"
#include "nn.h"
#include "prerank.h"
#include "prodstats.h"
#include "repfeat.h"
#include "rkserve.h"
#include "score.h"
#include "store.h"
#include "topk.h"
#include "userrank.h"
#include "weights.h"

#define CHUNK 2048 /* users per transaction */

/* What every worker reads: loaded once, shared read-only. */
typedef struct {
    const st_history *h;
    nn_model model;
    tr_product_stats ps;
    tr_rk_serving rks;
    tr_explainer x;
    int64_t model_id;
    double threshold;
} shared;

/* One worker: its connection and scratch, and the rows of its users in the chunk. */
typedef struct {
    const shared *s;
    int id, n_workers;
    int lo, hi; /* the chunk's users [lo, hi) */
    sqlite3 *db;
    sqlite3_stmt *cq;
    nn_model clone;
    int have_clone;
    tr_scorer *sc;
    tr_rk_thread rt; /* the trees' copy and the ranking's scratch, as an nb-serve thread's */
    tr_features f;
    int32_t *cand;
    tr_ranked *rank;
    uint8_t **blob; /* [CHUNK] the rows of this worker's users (NULL: none) */
    size_t *len;
    int64_t ranked;
    int rc;
    char err[NB_ERRLEN];
} worker;

static void worker_free(worker *w) {
    st_stmt_free(w->cq);
    st_close(w->db);
    tr_scorer_free(w->sc);
    if (w->have_clone) nn_model_free(&w->clone);
    tr_rk_thread_free(&w->rt);
    tr_features_free(&w->f);
    free(w->cand), free(w->rank);
    for (int i = 0; w->blob && i < CHUNK; i++) free(w->blob[i]);
    free(w->blob), free(w->len);
}

/* Sets up w as nb-serve sets up a thread (server/srv_engine.c srv_ctx_get) and nb-train
 * --score-user its scorer. Returns NB_OK or an error. */
static int worker_init(worker *w, const shared *s, const char *db_path, char *err, size_t errlen) {
    size_t P = (size_t)s->h->n_products;
    int rc = st_open(&w->db, db_path, 1, err, errlen);
    if (!rc) rc = st_no_mmap(w->db, err, errlen); /* one pass over the rows: not resident */
    if (!rc) rc = st_cand_stmt(w->db, &w->cq, err, errlen);
    if (!rc) {
        rc = nn_model_clone_for_scoring(&w->clone, &s->model, err, errlen);
        w->have_clone = rc == NB_OK;
    }
    if (!rc) rc = tr_scorer_new(&w->sc, &w->clone, err, errlen);
    if (!rc && s->model.cfg.rep_features > 0) rc = tr_scorer_set_stats(w->sc, &s->ps, err, errlen);
    if (!rc) rc = tr_rk_thread_init(&w->rt, &s->rks, s->h, err, errlen);
    if (!rc) rc = tr_features_init(&w->f, (int)P, err, errlen);
    w->cand = nb_xmalloc(P * sizeof *w->cand);
    w->rank = nb_xmalloc(P * sizeof *w->rank);
    w->blob = nb_xcalloc(CHUNK, sizeof *w->blob);
    w->len = nb_xcalloc(CHUNK, sizeof *w->len);
    return rc;
}

/* Ranks user u into w->blob[u - w->lo] (left NULL for a user nb-serve ranks live: no
 * stored candidate set, or no history with items). Returns NB_OK or an error. */
static int rank_one(worker *w, int u) {
    const shared *s = w->s;
    const st_history *h = s->h;
    int P = h->n_products, nc = 0, slot = u - w->lo;
    int64_t end = h->user_order_off[u + 1]; /* serving: every known order is history */
    int rc = st_cand_load(w->cq, s->model_id, h->user_ids[u], P, w->cand, P, &nc, w->err,
                          sizeof w->err);
    if (rc == NB_ENOTFOUND) return NB_OK;
    if (rc == NB_OK)
        rc = tr_rk_thread_rank(&w->rt, &s->rks, w->sc, w->db, s->model_id, h, u,
                               end, w->cand, nc, w->err, sizeof w->err);
    if (rc == NB_ENOTFOUND) return NB_OK; /* cold: the popularity list, live */
    if (rc == NB_OK) rc = tr_features_user(&w->f, h, u, end, &s->ps, w->err, sizeof w->err);
    if (rc) return rc;
    int keep = tr_prerank_from_stage(w->rt.pre, w->rank, &w->rt.ru, w->rt.score, w->rt.pos,
                                     s->threshold, &s->x, &w->f);
    tr_prerank_encode(w->rt.pre, keep, w->rt.ru.n, &w->blob[slot], &w->len[slot]);
    w->ranked++;
    return NB_OK;
}

static void *worker_run(void *arg) {
    worker *w = arg;
    for (int u = w->lo + w->id; u < w->hi && w->rc == NB_OK; u += w->n_workers)
        w->rc = rank_one(w, u);
    return NULL;
}

/* Writes the chunk [lo, hi) ranked by ws[0..nw) (storage/userrank.h: one transaction).
 * rows and written: scratch of CHUNK. Returns NB_OK or NB_EDB (nothing of the chunk
 * written). */
static int write_chunk(sqlite3 *db, const shared *s, worker *ws, int nw, int lo, int hi,
                       st_prerank_row *rows, uint8_t *written, tr_prerank_stats *st, char *err,
                       size_t errlen) {
    const int64_t *off = s->h->user_order_off;
    int n = 0;
    for (int u = lo; u < hi; u++) {
        worker *w = &ws[(u - lo) % nw];
        if (w->blob[u - lo])
            rows[n++] = (st_prerank_row){s->h->user_ids[u], off[u + 1] - off[u], w->blob[u - lo],
                                         w->len[u - lo]};
    }
    int rc = st_prerank_put_batch(db, s->model_id, rows, n, written, err, errlen);
    for (int i = 0; i < n && rc == NB_OK; i++) {
        st->written += written[i];
        st->stale += !written[i];
        st->bytes += written[i] ? (int64_t)rows[i].len : 0;
    }
    for (int u = lo; u < hi; u++) {
        worker *w = &ws[(u - lo) % nw];
        free(w->blob[u - lo]);
        w->blob[u - lo] = NULL;
    }
    return rc;
}

/* See prerank_build.h. */
int tr_prerank_build(sqlite3 *db, const char *db_path, const char *model_path, int64_t model_id,
                     const st_history *h, double threshold, int threads, tr_prerank_stats *st,
                     char *err, size_t errlen) {
    double t0 = nb_now();
    shared s = {.h = h, .model_id = model_id, .threshold = threshold};
    worker *ws = NULL;
    st_prerank_row *rows = nb_xmalloc(CHUNK * sizeof *rows);
    uint8_t *written = nb_xmalloc(CHUNK);
    int nw = threads > 0 ? threads : 1, saved_threads = nn_get_threads();
    memset(st, 0, sizeof *st);
    int rc = nbw_load(&s.model, model_path, h->product_ids, h->n_products, NULL, NULL, err, errlen);
    if (!rc) rc = tr_product_stats_load(&s.ps, db, model_id, h, err, errlen);
    if (!rc) rc = tr_rk_serving_open(&s.rks, db, model_id, h, err, errlen);
    if (rc || !s.rks.present) goto done;
    s.x = (tr_explainer){h->n_products, s.model.cfg.emb, s.model.p.emb, NULL};
    ws = nb_xcalloc((size_t)nw, sizeof *ws);
    for (int i = 0; i < nw && !rc; i++) {
        ws[i] = (worker){.s = &s, .id = i, .n_workers = nw};
        rc = worker_init(&ws[i], &s, db_path, err, errlen);
    }
    nn_set_threads(1); /* the workers are the parallelism */
    for (int lo = 0; lo < h->n_users && !rc; lo += CHUNK) {
        int hi = lo + CHUNK < h->n_users ? lo + CHUNK : h->n_users, started = 0;
        pthread_t th[64];
        for (int i = 0; i < nw; i++) ws[i].lo = lo, ws[i].hi = hi;
        for (; started < nw && started < 64; started++)
            if (pthread_create(&th[started], NULL, worker_run, &ws[started]) != 0) break;
        for (int i = started; i < nw; i++) worker_run(&ws[i]); /* no thread: this one */
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < nw && !rc; i++)
            if (ws[i].rc) rc = nb_err(err, errlen, ws[i].rc, "%s", ws[i].err);
        if (!rc) rc = write_chunk(db, &s, ws, nw, lo, hi, rows, written, st, err, errlen);
        if (!rc && tr_stop_requested)
            rc = nb_err(err, errlen, NB_EINTR, "stopped by a signal while ranking users ahead "
                                               "of time (%lld written: they stay, and are correct)",
                        (long long)st->written);
    }
    for (int i = 0; i < nw; i++) st->ranked += ws ? ws[i].ranked : 0;
done:
    nn_set_threads(saved_threads);
    free(rows);
    free(written);
    for (int i = 0; ws && i < nw; i++) worker_free(&ws[i]);
    free(ws);
    tr_rk_serving_free(&s.rks);
    tr_product_stats_free(&s.ps);
    nn_model_free(&s.model);
    st->seconds = nb_now() - t0;
    return rc;
}
