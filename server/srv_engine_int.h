/* srv_engine_int.h -- the engine's private structures, shared by srv_engine.c (start-up,
 * thread contexts, /health) and srv_recommend.c (one /recommend request). */
#ifndef SRV_ENGINE_INT_H
#define SRV_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "expected_f1.h"
#include "explain.h"
#include "history.h"
#include "names.h"
#include "nn.h"
#include "prerank.h"
#include "reader.h"
#include "repfeat.h"
#include "rkserve.h"
#include "score.h"
#include "srv_engine.h"
#include "topk.h"

typedef struct srv_model srv_model;

/* One worker thread's private state for one loaded model. */
typedef struct srv_ctx {
    struct srv_ctx *next; /* the model's list of all its contexts (freed with it) */
    srv_model *m;         /* the model this context scores with */
    pthread_t owner;      /* the thread it belongs to */
    st_reader *rd;        /* read-only connection of this thread: one user's history,
                                  candidates, existence, one snapshot per request */
    nn_model clone;       /* scoring clone sharing the engine's parameters */
    int have_clone;
    tr_scorer *sc;
    tr_rep_ctx rep;      /* the scorer's repeat-feature hook (tr_rep_cb) over the
                                  engine's stats; rep.f keeps the user's counts for the
                                  explanations (filled while scoring, or after it) */
    tr_ef1 *ef1;         /* expected-F1 basket chooser */
    st_history uh;       /* the last user loaded (buffers reused; filled by rd) */
    int32_t empty_user;  /* user id of uh when it is the empty history of a cold user */
    int32_t *cand_idx;   /* [P] candidate product indices */
    uint8_t *own_mark;   /* [P] zero scratch of tr_cands_add_own */
    float *prob;         /* [P] their probabilities */
    tr_ranked *rank;     /* [P] (prob, index) pairs being ranked */
    int32_t *basket;     /* [TR_EF1_M] the expected-F1 choice */
    int req_k, req_mode; /* the current request's k and basket mode (what it reads) */
    int retired;         /* the current request found the model retired from the store */
    /* the ranking stage (infer/rkserve.h), when one is registered: the trees' copy, the
     * user's candidates, scores and positions (for the explanations), the stored ranking */
    tr_rk_thread rt;
} srv_ctx;

/* One loaded model with everything read for it: what a reload swaps as a whole. Shared
 * read-only by the requests that acquired it; freed (with its thread contexts) when it is
 * no longer current and its last request has released it. */
struct srv_model {
    uint64_t gen;           /* unique per load in this process: threads' cached contexts
                                  are matched by it, never by address */
    nn_model model;         /* the loaded weights */
    nn_headq headq;         /* logit bounds of model's out.w for pruning */
    tr_product_stats stats; /* the global product statistics stored with the model */
    tr_rk_serving rks;      /* the ranking stage registered with the model (or none) */
    tr_explainer explainer; /* borrows model's embeddings and the engine's names */
    uint32_t crc;
    char model_name[9];
    char path[1024];  /* the weight file it was loaded from */
    int64_t model_id; /* models.model_id of this weight file */
    double threshold; /* basket threshold on the calibrated probability */
    /* cold start: the most popular products, share of all orders that contain them */
    int n_pop;
    int32_t *pop_idx;
    float *pop_score;
    double loaded_at; /* wall-clock time of the load (seconds since the epoch) */
    int refs;         /* requests using it, + 1 while current (guarded by engine lock) */
    srv_ctx *ctxs;    /* its thread contexts (guarded by engine lock) */
};

struct srv_engine {
    char db_path[1024];
    st_history catalog; /* products, aisles, departments (indices = model rows) */
    tr_names names;     /* product names by index */
    st_idnames aisles, depts;
    atomic_int n_users; /* users in the store: counted at start, + srv_engine_user_added */
    double t_start;
    pthread_mutex_t lock;        /* guards cur and every model's refs and ctxs */
    pthread_mutex_t reload_lock; /* one reload at a time */
    srv_model *cur;              /* what new requests use */
    long reloads, reload_failures; /* guarded by reload_lock */
};

/* The current model with one more reference: a request uses it from start to end, even
 * when a reload swaps another in meanwhile. Never NULL after srv_engine_open. */
srv_model *srv_model_acquire(srv_engine *e);
/* Drops the reference; the last one of a model no longer current frees it. */
void srv_model_release(srv_engine *e, srv_model *m);

/* The calling thread's context for model m (acquired), created on first use. Returns NB_OK
 * and *c (owned by m), or an error (message in err) when the connection or the clone
 * cannot be made. */
int srv_ctx_get(srv_engine *e, srv_model *m, srv_ctx **c, char *err, size_t errlen);

#endif
