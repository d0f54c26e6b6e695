/* nb-train -- import (optional), train, evaluate, calibrate, save, register.
 *
 *   nb-train --db FILE --model OUT.nbw [--csv DIR [--catalog DIR]] [--report OUT.json] ...
 *   nb-train --db FILE --model M.nbw --score-user ID [--k K]
 *
 * Exit status: 0 success, 2 bad flags, 3 interrupted (SIGINT/SIGTERM, or --stop-after in the
 * test build; the checkpoint is valid, continue with --resume), 4 training diverged
 * (NaN/Inf), 1 otherwise.
 *
 * Compiled a second time with -DNB_TEST_HOOKS into build/tests/nb-train-test, which also
 * has --stop-after N and reads NB_TEST_NAN_BATCH (tests/train.sh); bin/nb-train has neither.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "calibration.h"
#include "candgen.h"
#include "candidates.h"
#include "checkpoint.h"
#include "dist.h"
#include "evaluate.h"
#include "flags.h"
#include "history.h"
#include "import.h"
#include "loop.h"
#include "models.h"
#include "nb_err.h"
#include "nn.h"
#include "prerank_build.h"
#include "publish.h"
#include "ownprod.h"
#include "repfeat.h"
#include "repinit.h"
#include "rkscore.h"
#include "rkstore.h"
#include "rktrain.h"
#include "report.h"
#include "samples.h"
#include "score.h"
#include "store.h"
#include "tifu_tune.h"
#include "weights.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CALIB_PAIRS 4000000

/* Fills an nn_config from the flags for n_products: every field of nn_config_fields that
 * has a flag takes that flag's value; the repeat term's width follows --repeat. */
static void config_from_flags(nn_config *c, const tr_flags *f, int n_products) {
    nn_config_default(c, n_products);
    for (int i = 0; i < NN_CONFIG_NFIELDS; i++) {
        const nn_config_field *fd = &nn_config_fields[i];
        double v;
        if (fd->flag && tr_flags_number(f, fd->flag, &v)) nn_config_set(c, fd, v);
    }
    c->rep_features = f->repeat ? TR_N_FEATURES : 0;
}

/* --score-user: prints {"user_id", "model", "top_k": [{"product_id", "score"}...]} using
 * tr_score_user over the user's candidate set. Returns NB_OK or an error. */
static int score_user(const tr_flags *f, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    st_history h = {0};
    nn_model m = {0};
    tr_product_stats ps = {0};
    tr_scorer *sc = NULL;
    tr_rk_serving rks = {0};
    sqlite3_stmt *cq = NULL;
    uint32_t crc = 0;
    int64_t model_id = 0;
    int32_t *cand = NULL, *top = NULL;
    float *prob = NULL, *full = NULL;
    uint8_t *mark = NULL;
    int rc = st_open(&db, f->db, 1, err, errlen);
    if (rc == NB_OK) rc = st_history_load(&h, db, err, errlen);
    if (rc == NB_OK)
        rc = nbw_load(&m, f->model, h.product_ids, h.n_products, NULL, &crc, err, errlen);
    if (rc == NB_OK) rc = st_model_find(db, crc, &model_id, NULL, err, errlen);
    if (rc == NB_OK && m.cfg.rep_features > 0)
        rc = tr_product_stats_load(&ps, db, model_id, &h, err, errlen);
    if (rc == NB_OK) rc = tr_scorer_new(&sc, &m, err, errlen);
    if (rc == NB_OK && m.cfg.rep_features > 0) rc = tr_scorer_set_stats(sc, &ps, err, errlen);
    if (rc) goto done;
    int u = st_user_index(&h, (int32_t)f->score_user);
    if (u < 0) {
        rc = nb_err(err, errlen, NB_ENOTFOUND, "--score-user %lld: no such user", f->score_user);
        goto done;
    }
    int P = h.n_products, nc = 0;
    cand = nb_xmalloc((size_t)P * sizeof(int32_t));
    prob = nb_xmalloc((size_t)P * sizeof(float));
    full = nb_xmalloc((size_t)P * sizeof(float));
    rc = st_cand_stmt(db, &cq, err, errlen);
    if (rc == NB_OK) rc = st_cand_load(cq, model_id, h.user_ids[u], P, cand, P, &nc, err, errlen);
    if (rc) goto done;
    /* a registered ranking stage ranks (or its safeguard's baseline): train/rktrain.h */
    rc = tr_rk_serving_open(&rks, db, model_id, &h, err, errlen);
    if (rc == NB_OK && rks.present)
        rc = tr_rk_print_user(stdout, &rks, sc, db, model_id, crc, &h, u, cand, nc, f->k, err,
                              errlen);
    if (rc || rks.present) goto done;
    int64_t end = h.user_order_off[u + 1]; /* serving: every known order is history */
    /* as nb-serve: the stored set plus the user's own products (infer/ownprod.h) */
    mark = nb_xcalloc((size_t)P, 1);
    nc = tr_cands_add_own(&h, u, end, cand, nc, P, mark);
    rc = tr_score_user(sc, &h, u, end, cand, nc, prob, err, errlen);
    if (rc == NB_ENOTFOUND) {
        printf("{\"user_id\": %lld, \"model\": \"%08x\", \"cold_start\": true, \"top_k\": []}\n",
               f->score_user, crc);
        rc = NB_OK;
        goto done;
    }
    if (rc) goto done;
    /* rank among the candidates: scatter into a P-array so tr_topk breaks ties by index */
    for (int i = 0; i < nc; i++) full[cand[i]] = prob[i];
    int k = f->k < nc ? f->k : nc;
    top = nb_xmalloc(((size_t)k + 1) * sizeof(int32_t));
    k = tr_topk(full, cand, nc, k, top);
    printf("{\"user_id\": %lld, \"model\": \"%08x\", \"top_k\": [", f->score_user, crc);
    for (int i = 0; i < k; i++)
        printf("%s{\"product_id\": %d, \"score\": %.9g}", i ? ", " : "", h.product_ids[top[i]],
               (double)full[top[i]]);
    printf("]}\n");
done:
    st_stmt_free(cq);
    tr_rk_serving_free(&rks);
    tr_scorer_free(sc);
    tr_product_stats_free(&ps);
    nn_model_free(&m);
    st_history_free(&h);
    st_close(db);
    free(cand);
    free(prob);
    free(full);
    free(top);
    free(mark);
    return rc;
}

/* What belongs to a model besides its row: its candidates and product statistics. */
typedef struct {
    const tr_cands *c;
    const tr_product_stats *ps;
    const st_history *h;
    const st_rk_rows *rkr; /* the ranking stage's rows, or NULL (--ranker off) */
} model_rows;

/* A st_model_rows_fn: writes the candidates, the product statistics and the ranking stage's
 * rows (or clears an earlier model's) of model_id inside the registration's transaction.
 * Returns NB_OK or their error. */
static int write_model_rows(void *ctx, sqlite3 *db, int64_t model_id, char *err, size_t errlen) {
    const model_rows *r = ctx;
    int rc = tr_cands_write(db, model_id, r->c, r->h, err, errlen);
    if (rc == NB_OK) rc = tr_product_stats_write(db, model_id, r->ps, r->h, err, errlen);
    if (rc == NB_OK) rc = st_rk_write(db, model_id, r->rkr, r->h, err, errlen);
    return rc;
}

/* Registers the model (its checksum-named weight file p->wpath) and writes its candidates,
 * product stats and ranking-stage rows in one transaction, retiring all but the
 * --keep-models newest models. Returns NB_OK, *model_id and the files only retired models
 * named (*unused), or NB_EDB (rolled back). */
static int register_model(sqlite3 *db, const tr_flags *f, const tr_pub *p, const char *hyper,
                          const char *metrics, model_rows *rows, int64_t *model_id,
                          st_strlist *unused, char *err, size_t errlen) {
    st_model_new nm = {.path = p->wpath,
                       .crc = p->crc,
                       .hyper = hyper,
                       .metrics = metrics,
                       .keep = f->keep_models,
                       .rows = write_model_rows,
                       .ctx = rows};
    return st_model_register(db, &nm, model_id, unused, err, errlen);
}

#ifdef NB_TEST_HOOKS
/* Test build only (tests/retrain.sh): NB_TEST_KILL_AT=<point> kills this process at that
 * point of the publication, as a crash or kill -9 would. */
static void test_kill_at(const char *point) {
    const char *at = getenv("NB_TEST_KILL_AT");
    if (at && strcmp(at, point) == 0) raise(SIGKILL);
}
#else
#define test_kill_at(point) ((void)0)
#endif

/* NB_EINTR with a message when a signal arrived (between the phases after training: the
 * checkpoint is complete, so --resume redoes only what follows), else NB_OK. */
static int stopped(const char *after, char *err, size_t errlen) {
    if (!tr_stop_requested) return NB_OK;
    return nb_err(err, errlen, NB_EINTR,
                  "stopped by a signal after %s; --resume skips the finished training", after);
}

/* The whole training job. Returns NB_OK or an error code (message in err). */
static int train(tr_flags *f, char *err, size_t errlen) {
    double t_start = nb_now();
    sqlite3 *db = NULL;
    st_history h = {0};
    tr_samples s = {0};
    nn_model m = {0};
    tr_product_stats ps = {0};
    tr_cands cands = {0};
    tr_scorer *sc = NULL;
    tr_ranker rkm = {0};
    tr_rk_pstats rkps = {0};
    tr_rk_report rk;
    tr_rk_nbr rknbr = {0};
    tr_pub pub = {0};
    st_strlist unused = {0};
    int published = 0; /* registered: pub's files are the store's from then on */
    tr_train_state *st = nb_xcalloc(1, sizeof *st);
    tr_report R;
    memset(&R, 0, sizeof R);
    float *cl = NULL;
    uint8_t *cy = NULL;
    char *hyper = NULL, *metrics = NULL;
    tr_sample *tune = NULL; /* TIFU-KNN's tuning users */
    int n_tune = 0;
    int8_t *half_of = NULL; /* [user]: the half of tune that holds a validation user, or -1 */
    char ckpt_buf[4096];
    const char *ckpt = f->checkpoint;
    if (!ckpt) {
        snprintf(ckpt_buf, sizeof ckpt_buf, "%s.ckpt", f->model);
        ckpt = ckpt_buf;
    }
    int rc = NB_OK;
    /* under mpirun, rank 0 speaks and writes for the job; the others only train (dist.h) */
    int rank = tr_dist_rank();
    FILE *log = f->quiet || rank > 0 ? NULL : stderr;
    nn_set_threads(f->threads);
    if (f->csv && rank == 0) {
        st_import_stats is;
        rc = st_import(f->csv, f->catalog, f->db, !f->quiet, &is, err, errlen);
        if (rc) goto done;
        if (log)
            fprintf(log,
                    "imported %s: %lld users, %lld orders, %lld items, %lld products (%.1fs)\n",
                    f->csv, is.users, is.orders, is.items, is.products, is.seconds);
    }
    tr_dist_barrier(); /* the other ranks read the store rank 0 has just imported */
    rc = st_open(&db, f->db, rank > 0, err, errlen);
    if (rc == NB_OK && rank == 0) rc = st_rk_ensure_tables(db, err, errlen);
    /* fail now rather than after training if the store predates a table we write */
    if (rc == NB_OK && (rc = st_model_tables_check(db, err, errlen)) != NB_OK)
        nb_err_wrap(err, errlen, rc, "%s", f->db);
    if (rc == NB_OK) rc = st_history_load(&h, db, err, errlen);
    if (rc == NB_OK)
        rc = tr_samples_build(&s, &h, f->split, f->targets_all, f->limit_users, f->orders, err,
                              errlen);
    if (rc) goto done;
    R.t_load = nb_now() - t_start;
    if (log)
        fprintf(log,
                "data: %d users (%d used), %d products, %" PRId64 " orders, %" PRId64
                " items; users train/val/test %d/%d/%d, %d training samples, %d without a "
                "target, %d cold (%.1fs)\n",
                h.n_users, s.n_users, h.n_products, h.n_orders, h.n_items, s.n_train_users,
                s.n_val_users, s.n_test_users, s.n_train, s.n_no_target, s.n_cold, R.t_load);
    nn_config cfg;
    config_from_flags(&cfg, f, h.n_products);
    rc = nn_config_check(&cfg, err, errlen);
    if (rc == NB_OK) rc = nn_model_init(&m, &cfg, (uint64_t)f->seed, err, errlen);
    if (rc == NB_OK) rc = tr_product_stats_compute(&ps, &h, err, errlen);
    if (rc == NB_OK) tr_rep_init_prior(&m, &ps);
    if (rc == NB_OK) rc = nn_model_train_init(&m, err, errlen);
    if (rc) goto done;
    R.n_params = (int)m.n_params;
    st->signature = tr_dist_signature(tr_run_signature(f, h.n_products));
    nb_rng_seed(&st->shuffle_rng, (uint64_t)f->seed ^ 0x5348554646ull);
    st->best_params = nb_xmalloc(m.n_params * sizeof(nn_real));
    memcpy(st->best_params, m.mem, m.n_params * sizeof(nn_real));
    if (f->resume) {
        rc = tr_ckpt_load(ckpt, &m, st, err, errlen);
        if (rc) {
            nb_err_wrap(err, errlen, rc, "--resume");
            goto done;
        }
        if (log)
            fprintf(log, "resuming after epoch %d (best epoch %d, R@10 %.4f)\n", st->epochs_done,
                    st->best_epoch, st->best_metric);
    }
    if (log) fprintf(log, "model: %zu parameters, %d threads\n", m.n_params, f->threads);
    if (log && tr_dist_size() > 1)
        fprintf(log,
                "data-parallel: %d ranks, each %d-%d samples of every batch of %d; %zu "
                "gradient bytes allreduced per step\n",
                tr_dist_size(), f->batch / tr_dist_size(),
                (f->batch + tr_dist_size() - 1) / tr_dist_size(), f->batch,
                m.n_params * sizeof(nn_real));
    tr_install_signals();
    double t0 = nb_now();
    long nan_at_batch = 0;
#ifdef NB_TEST_HOOKS /* only in the test build, build/tests/nb-train-test (Makefile) */
    const char *nan_env = getenv("NB_TEST_NAN_BATCH");
    if (nan_env) nan_at_batch = atol(nan_env);
#endif
    tr_rep_ctx repctx;
    rc = tr_rep_ctx_init(&repctx, &ps, err, errlen);
    if (rc) goto done;
    tr_loop L = {.f = f,
                 .m = &m,
                 .h = &h,
                 .s = &s,
                 .st = st,
                 .ckpt_path = ckpt,
                 .log = log,
                 .rep = cfg.rep_features > 0 ? tr_rep_cb : NULL,
                 .rep_ctx = &repctx,
                 .nan_at_batch = nan_at_batch};
    rc = tr_train_run(&L, err, errlen);
    tr_rep_ctx_free(&repctx);
    R.t_train = nb_now() - t0;
    if (log && tr_dist_size() > 1)
        fprintf(log, "allreduce: %llu calls, %.1f MB, %.2fs on rank 0 (%.1f%% of training)\n",
                (unsigned long long)tr_dist_reduce_calls(), tr_dist_bytes_reduced() / 1e6,
                tr_dist_reduce_seconds(), 100 * tr_dist_reduce_seconds() / R.t_train);
    if (rc) goto done;

    /* candidates from the final (best) embeddings, for every user of the store */
    rc = stopped("training", err, errlen);
    if (rc) goto done;
    t0 = nb_now();
    rc = tr_cands_build(&cands, &h, m.p.emb, h.n_products, cfg.emb, NULL, f->candidates, f->threads,
                        err, errlen);
    R.t_cands = nb_now() - t0;
    if (rc == NB_OK) rc = stopped("the candidate sets", err, errlen);
    if (rc == NB_OK) rc = tr_scorer_new(&sc, &m, err, errlen);
    if (rc == NB_OK && cfg.rep_features > 0) rc = tr_scorer_set_stats(sc, &ps, err, errlen);
    if (rc) goto done;

    /* calibration on validation users' candidate sets */
    t0 = nb_now();
    int64_t ncl = 0;
    double a = 1, b = 0;
    rc = tr_eval_calib_pairs(sc, &h, s.val, s.n_val, &cands, MAX_CALIB_PAIRS, &cl, &cy, &ncl, err,
                             errlen);
    if (rc) goto done;
    if (ncl > 0) {
        rc = tr_platt_fit(cl, cy, ncl, &a, &b, &R.calib_iters, err, errlen);
        if (rc) goto done;
    }
    m.calib_a = (float)a, m.calib_b = (float)b;
    R.calib_a = m.calib_a, R.calib_b = m.calib_b, R.calib_pairs = ncl;
    R.t_calib = nb_now() - t0;

    /* test: model and baselines on the same users */
    t0 = nb_now();
    tr_reliability rb, ra;
    tr_reliability_init(&rb);
    tr_reliability_init(&ra);
    rc = tr_eval_model(sc, &m, &h, s.test, s.n_test, &cands, f->threshold, 1, (float)f->pos_weight,
                       &rb, &ra, &R.model, err, errlen);
    if (rc) goto done;
    R.ece_before = tr_reliability_ece(&rb);
    R.ece_after = tr_reliability_ece(&ra);
    R.t_eval = nb_now() - t0;
    /* the ranks' shared work ends with the test evaluation: rank 0 alone goes on to the
     * baselines and writes the weight file and the store */
    tr_dist_solo();
    if (rank > 0) goto done;
    /* TIFU-KNN tuned on the validation users and training users at an order before the
     * ranking stage's rows (tifu_tune.h tr_tifu_tuning_set): the tuner is never given s.test */
    int rk_rows = TR_RK_ROWS_LAST;
    if (f->ranker) rc = tr_rk_rows_parse(f->ranker_rows, &rk_rows, err, errlen);
    if (rc) goto done;
    n_tune = tr_tifu_tuning_set(&h, s.val, s.n_val, s.train, s.n_train,
                                rk_rows & TR_RK_ROWS_PREV ? 2 : 1, 0, &tune, &R.tifu_tune_nv);
    rc = tr_tifu_tune(&h, NULL, tune, n_tune, s.train, s.n_train, NULL, 0, 0, &R.tifu_tune, err,
                      errlen);
    if (rc) goto done;
    /* the signal check (tifu_tune.h tr_tifu_crossfit): the tuned parameters are used only
     * when, tuned on one half of the tuning users, they beat the defaults on the other */
    rc = tr_tifu_crossfit(&h, NULL, tune, n_tune, s.train, s.n_train, &R.tifu_tune, &R.tifu_cf,
                          err, errlen);
    if (rc) goto done;
    R.tifu_tuner_choice = R.tifu_tune.best;
    R.tifu_kept = R.tifu_cf.n > 0 && R.tifu_cf.r10 > R.tifu_cf.def_r10; /* unchecked: defaults */
    if (!R.tifu_kept) {
        tr_tifu_defaults(&R.tifu_tune.best);
        R.tifu_cf.half[0] = R.tifu_cf.half[1] = R.tifu_tune.best;
    }
    R.have_tifu_tune = 1;
    R.t_tifu_tune = R.tifu_tune.seconds + R.tifu_cf.seconds;
    rc = stopped("the TIFU-KNN tunings", err, errlen);
    if (rc) goto done;
    if (log)
        fprintf(log,
                "TIFU-KNN tuned on %d users (%d validation, %d training) in %.1fs: m %d r_b %g "
                "r_g %g k %d alpha %g (their R@10 %.4f, default parameters %.4f); "
                "cross-fitted R@10 %.4f, default parameters %.4f: %s\n",
                R.tifu_tune.n_val, R.tifu_tune_nv, R.tifu_tune.n_val - R.tifu_tune_nv,
                R.t_tifu_tune, R.tifu_tuner_choice.m, R.tifu_tuner_choice.r_b,
                R.tifu_tuner_choice.r_g, R.tifu_tuner_choice.k, R.tifu_tuner_choice.alpha,
                R.tifu_tune.val_r10, R.tifu_tune.def_r10, R.tifu_cf.r10, R.tifu_cf.def_r10,
                R.tifu_kept ? "tuned parameters kept" : "the default parameters are used");
    t0 = nb_now();
    rc = tr_eval_baselines(&h, s.test, s.n_test, s.train, s.n_train, &cands, f->threshold,
                           f->threads, &R.tifu_tune.best, R.bl, err, errlen);
    if (rc) goto done;
    R.t_baselines = nb_now() - t0;
    rc = stopped("the evaluation", err, errlen);
    if (rc) goto done;
    int64_t *tg = nb_xmalloc(((size_t)h.n_users + 1) * sizeof(int64_t));
    for (int u = 0; u < h.n_users; u++) tg[u] = -1;
    for (int i = 0; i < s.n_test; i++) tg[s.test[i].user] = s.test[i].target;
    rc = tr_cands_recall(&cands, &h, tg, &R.cand_recall, err, errlen);
    free(tg);
    if (rc) goto done;
    R.have_test = 1;

    /* the ranking stage over several candidate sources (train/rktrain.h) */
    if (f->ranker) {
        /* each validation user is scored by the safeguard with the parameters tuned on the
         * other half of the tuning users (R.tifu_cf.half), out of sample as the trees'
         * selection score is (rktrain.h tifu_half); the training users' selection targets
         * were not tuning targets */
        half_of = nb_xmalloc((size_t)h.n_users + 1);
        memset(half_of, -1, (size_t)h.n_users + 1);
        for (int i = 0; i < R.tifu_tune_nv; i++) half_of[tune[i].user] = (int8_t)(i & 1);
        tr_rk_args ra = {.h = &h,
                         .s = &s,
                         .cands = &cands,
                         .sc = sc,
                         .ablation = f->ranker_ablation,
                         .prior = f->ranker_prior,
                         .threshold = f->threshold,
                         .tifu = &R.tifu_tune.best,
                         .tifu_half = R.tifu_cf.half,
                         .tifu_half_of = half_of,
                         .dump_dir = f->ranker_dump,
                         .log = log};
        tr_ranker_defaults(&ra.prm);
        ra.rows = rk_rows;
        ra.prm.seed = (int)(f->seed & 0x7fffffff);
#ifdef NB_TEST_HOOKS /* test build only: ship a named baseline (tests/ranker.sh) */
        ra.force_ship = getenv("NB_TEST_RK_SHIP");
#endif
        rc = tr_rk_run(&ra, &rkm, &rkps, &rk, err, errlen);
        /* the stage and the neighbour lists take ~30 min at full scale: a signal during them
         * stops here, not only at the precompute */
        if (rc == NB_OK) rc = stopped("the ranking stage", err, errlen);
        if (rc == NB_OK) rc = tr_rk_serving_nbr(&h, &s, &R.tifu_tune.best, &rknbr, err, errlen);
        if (rc == NB_OK) rc = stopped("the neighbour lists", err, errlen);
        if (rc) goto done;
        R.rk = &rk;
    }

    /* save, register, switch, report (train/publish.h) */
    rc = tr_pub_save(&pub, &m, h.product_ids, h.n_products, f->model, err, errlen);
    if (rc) goto done;
    if (f->ranker) rc = tr_pub_save_ranker(&pub, &rkm, err, errlen);
    if (rc) goto done;
    R.f = f, R.h = &h, R.s = &s, R.st = st;
    R.peak_rss = nb_peak_rss();
    R.t_total = nb_now() - t_start;
    hyper = tr_report_hyper_json(f);
    metrics = tr_report_json(&R);
    int64_t model_id = 0;
    st_rk_rows rkr = {0};
    if (f->ranker) {
        /* the trees beside the weight file, registered in the same transaction, with the
         * tuned TIFU-KNN parameters the features used, for nb-serve's features */
        const tr_tifu_params *tp = &R.tifu_tune.best;
        rkr = (st_rk_rows){.path = pub.rkpath,
                           .checksum = pub.rkcrc,
                           .shipped = tr_rk_shipped(&rk),
                           .pop = rkps.pop,
                           .reorder = rkps.reorder,
                           .rebuy = rkps.rebuy,
                           .nbr_off = rknbr.off,
                           .nbr_idx = rknbr.idx,
                           .nbr_val = rknbr.val,
                           .tifu_m = tp->m,
                           .tifu_k = tp->k,
                           .tifu_r_b = tp->r_b,
                           .tifu_r_g = tp->r_g,
                           .tifu_alpha = tp->alpha,
                           .bl_cal = rk.cal,
                           .bl_cal_a = rk.cal_a,
                           .bl_cal_b = rk.cal_b};
    }
    test_kill_at("saved");
    model_rows rows = {&cands, &ps, &h, f->ranker ? &rkr : NULL};
    rc = register_model(db, f, &pub, hyper, metrics, &rows, &model_id, &unused, err, errlen);
    if (rc) goto done;
    published = 1;
    test_kill_at("registered");
    /* every user's ranking ahead of time, on the rows just committed (train/prerank_build.h);
     * before the switch below, so that a server that follows model.nbw finds them */
    tr_prerank_stats pst = {0};
    if (f->ranker && f->precompute) {
        rc = tr_prerank_build(db, f->db, pub.wpath, model_id, &h, f->threshold, f->threads, &pst,
                              err, errlen);
        if (rc) goto done;
        if (log)
            fprintf(log,
                    "ranked %lld users ahead of time in %.1fs: %lld rows (%.1f MB), %lld not "
                    "written (an order came in since the history was loaded)\n",
                    (long long)pst.ranked, pst.seconds, (long long)pst.written, pst.bytes / 1e6,
                    (long long)pst.stale);
    }
    rc = tr_pub_commit(&pub, f->model, db, &unused, err, errlen);
    if (rc) {
        nb_err_wrap(err, errlen, rc, "model %08x is registered as %s, but", pub.crc, pub.wpath);
        goto done;
    }
    if (f->report) rc = tr_report_write(&R, f->report, err, errlen);
    if (rc) goto done;
    tr_report_table(&R, stdout);
    printf("model %s (checksum %08x, models.model_id %lld), %d users' candidates; best epoch %d "
           "of %d; %.1fs total, peak RSS %.0f MB\n",
           f->model, pub.crc, (long long)model_id, cands.n_users, st->best_epoch, st->epochs_done,
           R.t_total, (double)R.peak_rss / 1048576.0);
done:
    free(tune);
    free(half_of);
    free(hyper);
    free(metrics);
    free(cl);
    free(cy);
    tr_scorer_free(sc);
    tr_ranker_free(&rkm);
    tr_rk_pstats_free(&rkps);
    tr_rk_nbr_free(&rknbr);
    if (published)
        tr_pub_free(&pub);
    else
        tr_pub_abort(&pub, db);
    st_strlist_free(&unused);
    tr_cands_free(&cands);
    tr_product_stats_free(&ps);
    free(st->best_params);
    free(st);
    nn_model_free(&m);
    tr_samples_free(&s);
    st_history_free(&h);
    st_close(db);
    return rc;
}

int main(int argc, char **argv) {
    char err[NB_ERRLEN] = "";
    tr_flags f;
    int rc = tr_dist_init(&argc, &argv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nb-train: %s\n", err);
        return 1;
    }
    rc = tr_flags_parse(&f, argc, argv, err, sizeof err);
    if (rc) {
        /* every rank parses the same flags: each refuses them, rank 0 says why */
        if (tr_dist_rank() == 0) fprintf(stderr, "nb-train: %s\n", err);
        tr_dist_finalize();
        return 2;
    }
    if (f.help) {
        if (tr_dist_rank() == 0) tr_flags_usage(stdout);
        tr_dist_finalize();
        return 0;
    }
    rc = f.score_user >= 0 ? score_user(&f, err, sizeof err) : train(&f, err, sizeof err);
    int code = rc == NB_OK ? 0 : rc == NB_EINTR ? 3 : rc == NB_ENAN ? 4 : 1;
    if (rc == NB_EINTR || rc == NB_ENAN) {
        /* reached by every rank at the same batch (agreed in the loop): a normal end */
        if (tr_dist_rank() == 0) fprintf(stderr, "nb-train: %s\n", err);
    } else if (rc) {
        /* this rank alone may have failed while the others wait in a collective: abort
         * them all (a plain message and exit without MPI) */
        tr_dist_abort(code, err);
    }
    tr_dist_finalize();
    return code;
}
