/* rktrain.h -- the ranking stage in nb-train (issue 10): out-of-fold product statistics,
 * training rows, XGBoost training, evaluation on validation and test users beside the
 * baselines, and the selection with its safeguard.
 *
 * Users are those of nb-train's split. Training rows come by default from the target (last
 * train) order of each training user (--ranker-rows): every candidate of infer/rkfeat.h, label 1 if the product is
 * in the target. The features of a training user see:
 *   - product statistics computed out of fold: the training users are split into
 *     TR_RK_FOLDS folds by a hash of user_id, and the statistics of a user in fold k count
 *     only the training users of the other folds (their orders up to and including their
 *     targets); validation, test and served users see the statistics of all training users.
 *     So no target order reaches its own features through the statistics;
 *   - TIFU-KNN's neighbour part over the training users' histories before their targets, the
 *     user itself excluded (baselines.h); the same reference set for validation and test;
 *   - the CNN->GRU model's calibrated probability (absent in the "without model" variant).
 *     The model was trained on the training users' targets, so this input is in sample for
 *     the training rows (a stacked input must be out of fold, and it is not): the trees that
 *     may ship are those without it ("ranker -model"); the trees with it are trained and
 *     measured with --ranker-ablation, so that what the model's input is worth stays on record.
 * Selection: validation alone is too small on small data sets (~100 users on dunnhumby-cj:
 * a standard error of ~9 % of R@10), so the selection also uses the training users,
 * cross-validated (the first TR_RK_CV_USERS of them) at the orders their rows come from (the
 * targets by default, the earlier orders with --ranker-rows prev|both): the training users
 * are split by the folds of the statistics, and each fold is ranked by trees trained on the
 * rows of the other folds' users (all of them, up to TR_RK_CV_TRAIN_ROWS). None of the shipping variant's inputs is fitted to those targets: the
 * statistics are out of fold, TIFU-KNN's parameters were tuned on the validation users, and
 * the user itself is not its own neighbour. The ranker ships only when, over validation and
 * cross-validated users together, its R@10 is above that of the best baseline (by that R@10,
 * baselines scored at the same orders) by more than the standard error of the per-user
 * difference (the one-standard-error rule: within the noise the simpler model ships) and its
 * NDCG@10 is above that baseline's too; otherwise that baseline's
 * ranking ships, and the report says so. The spread is reported as the standard error of the
 * per-user R@10 difference. The same cross-validation, scored after 25 to 300 boosting rounds,
 * chooses how many rounds the trees get (the best R@10; small data sets get fewer), and the
 * trees are boosted from TIFU-KNN's score (infer/ranker.h: the prior).
 */
#ifndef TR_RKTRAIN_H
#define TR_RKTRAIN_H

#include <stdio.h>

#include "candgen.h"
#include "evaluate.h"
#include "ranker.h"
#include "rkfeat.h"
#include "rkserve.h"
#include "samples.h"
#include "score.h"
#include "split.h"

#define TR_RK_FOLDS 5
#define TR_RK_MAX_TRAIN_ROWS 3000000
#define TR_RK_CV_USERS 4000 /* training users in the cross-validated selection, at most */
#define TR_RK_CV_TRAIN_ROWS 1000000 /* rows that train each fold's trees, at most */
#define TR_RK_NROUNDS 6     /* boosting-round counts the cross-validation compares */

/* Training rows: the target order of each training user (LAST), the order with items
 * before it (PREV: the features see the history before that order; the CNN->GRU model never
 * had that order as a label, so its input is out of sample there as it is for served users),
 * or both. */
enum { TR_RK_ROWS_LAST = 1, TR_RK_ROWS_PREV = 2, TR_RK_ROWS_BOTH = 3 };
/* Parses "last" | "prev" | "both" (NULL: the default, last: on Ta-Feng, seed 1, test R@10
 * 0.2115 with last vs 0.1937 with prev; dunnhumby-cj and -carbo within noise). Returns NB_OK or NB_EINVAL
 * naming --ranker-rows. */
int tr_rk_rows_parse(const char *v, int *rows, char *err, size_t errlen);

/* The ranker variants measured. */
enum { TR_RKV_FULL, TR_RKV_NOMODEL, TR_RKV_OWNONLY, TR_RK_NV };
extern const char *const tr_rkv_names[TR_RK_NV]; /* "ranker", "ranker -model", ... */

/* Candidate sources for coverage: own, nbr, cos, all. */
enum { TR_RK_COV_OWN, TR_RK_COV_NBR, TR_RK_COV_COS, TR_RK_COV_ALL, TR_RK_NCOV };

typedef struct {
    int ran[TR_RK_NV];
    tr_eval_result test[TR_RK_NV]; /* test users, full catalogue ([0]) */
    double val_r10[TR_RK_NV], val_ndcg10[TR_RK_NV];
    double val_bl_r10[TR_N_BL], val_bl_ndcg10[TR_N_BL];
    int best_bl;              /* best baseline on validation R@10 among the servable ones */
    int bl_servable[TR_N_BL]; /* the baselines the safeguard chose among (rktrain.c RK_N_BL) */
    int n_sel;                /* users of the selection: validation + CV */
    double sel_r10, sel_ndcg10, sel_bl_r10[TR_N_BL], sel_bl_ndcg10[TR_N_BL];
    double diff_mean, diff_se; /* per-user selection R@10: ranker - best baseline */
    int n_val, n_test;         /* users evaluated */
    int crossfit;              /* the tuned TIFU-KNN is cross-fitted (rktrain.h tifu_half) */
    int n_crossfit;            /* selection users cross-fitted (the validation users) */
    double sel_tuned_insample_r10; /* the tuned TIFU-KNN's with a->tifu for all: tr_rk_args */
    int shipped_ranker;        /* 1: the ranker ships; 0: baseline best_bl */
    int variant;               /* the trees that ship with shipped_ranker: TR_RKV_NOMODEL, or
                                  TR_RKV_FULL when there is no model input (a->sc NULL) */
    double cov_val[TR_RK_NCOV], cov_test[TR_RK_NCOV]; /* share of target items */
    double mean_cands;                                /* mean candidates per test user */
    long long n_train_rows, n_train_pos;
    double t_rows, t_train, t_eval, t_cv;
    int trees;                     /* boosting rounds of the trees trained (chosen by the CV) */
    double cv_r10[TR_RK_NROUNDS];  /* the cross-validated R@10 after each count compared */
    /* what ships, on the test users: the trees' test[variant], or the shipped baseline over
     * the stage's candidates with the scores nb-serve serves (calibrated when cal) */
    tr_eval_result served;
    /* a shipped baseline's calibration (infer/rkscore.h tr_rk_calibrate): the logistic
     * regression of the label on its raw score over the training rows; cal = 0 when the
     * trees ship, or when the slope is not positive (it would reverse the baseline's order:
     * raw scores are served) */
    int cal;
    double cal_a, cal_b;
} tr_rk_report;

/* What ships, as stored in ranker_models.shipped and named by /health: "ranker" (the
 * trees), "ranker -model" (the trees without the model's input), or the baseline's name. */
const char *tr_rk_shipped(const tr_rk_report *r);

typedef struct {
    const st_history *h;
    const tr_samples *s;
    const tr_cands *cands; /* the cosine candidate table (cos source) */
    tr_scorer *sc;         /* the calibrated CNN->GRU model, or NULL (no model input) */
    int ablation;          /* also train and measure the other variants */
    int prior;             /* boost the trees from TIFU-KNN's score (infer/ranker.h) */
    int rows;              /* TR_RK_ROWS_*: which orders of the training users give rows */
    double threshold;      /* basket threshold on ranker probabilities */
    /* TIFU-KNN's parameters for the tifu_own / tifu_nbr features, the neighbour candidates
     * and the TIFU-KNN baseline of the safeguard (nb-train: the tuned ones, tifu_tune.h);
     * NULL: tr_tifu_defaults, and the safeguard's TIFU-KNN is the default one */
    const tr_tifu_params *tifu;
    /* NULL, or tifu_half[2]: the parameters tuned on the even-positioned ([0]) and the
     * odd-positioned ([1]) samples of the tuning users (nb-train: tifu_tune.h
     * tr_tifu_tuning_set, the validation users at their targets and training users at an
     * earlier order), and tifu_half_of[user index]: the half that holds the user if it was
     * tuned at its selection target (nb-train: the validation users), or -1. The safeguard
     * then scores the tuned TIFU-KNN on each such user with the other half's parameters:
     * out of sample, as the trees' own selection score is (tuned on all of them, its score
     * there is the best of a grid on those very users, and overstates it); the other
     * selection users get a->tifu, tuned without their selection targets. The report's
     * sel_tuned_insample_r10 is the selection R@10 with a->tifu for every user: minus the
     * cross-fitted figure, what the tuning overstates it by */
    const tr_tifu_params *tifu_half;
    const int8_t *tifu_half_of;
    /* NULL, or a servable baseline's name that ships whatever the selection says (only
     * nb-train's test build sets it, NB_TEST_RK_SHIP: tests/ranker.sh serves a shipped tuned
     * TIFU-KNN end to end); a name that is not servable is an NB_EINVAL */
    const char *force_ship;
    tr_ranker_params prm;
    /* NULL, or a directory: the training, validation and test rows are written there as
     * train/val/test.nbrows (rkdump.h) for offline analysis */
    const char *dump_dir;
    FILE *log; /* progress, or NULL */
} tr_rk_args;

/* Runs the whole ranking stage. *ranker receives rep->variant's trees (trained on the
 * training users) whether or not they ship (rep->shipped_ranker says); *ps_all the product
 * statistics of all training users (the ones served). Returns NB_OK, NB_EINTR when a
 * signal arrived during its cross-validation (loop.h tr_stop_requested), or an error from
 * the features, XGBoost, the baselines, the metrics or the rows' dump (--ranker-dump). */
int tr_rk_run(const tr_rk_args *a, tr_ranker *ranker, tr_rk_pstats *ps_all, tr_rk_report *rep,
              char *err, size_t errlen);

/* Every user's neighbour part for serving (the history end = the user's last order): the
 * neighbour scores of the user's own products and of the TR_RK_NBR_TOP best unseen ones,
 * from the same reference set as the evaluation (the training users before their targets).
 * Users are h's; user u's pairs are [off[u], off[u+1]). */
typedef struct {
    int n_users;
    int64_t *off;
    int32_t *idx;
    float *val;
} tr_rk_nbr;
/* tifu: the parameters of the stage's features (tr_rk_args.tifu; NULL: the defaults; alpha is
 * ignored: the neighbour part alone is kept). Returns NB_OK (out owns its arrays; free with
 * tr_rk_nbr_free) or an error from TIFU-KNN. */
int tr_rk_serving_nbr(const st_history *h, const tr_samples *s, const tr_tifu_params *tifu,
                      tr_rk_nbr *out, char *err, size_t errlen);
void tr_rk_nbr_free(tr_rk_nbr *n);

/* nb-train --score-user with a registered ranking stage: prints {"user_id", "model",
 * "ranking" ("ranker" or the shipped baseline), "top_k": [{"product_id", "score",
 * "source"}...]} for user u of h (whole store) at the end of its history, over the
 * cosine candidate set cos[n_cos]. Returns NB_OK (a cold-start user prints an empty list
 * with "cold_start": true) or an error. */
int tr_rk_print_user(FILE *out, tr_rk_serving *rs, tr_scorer *sc, sqlite3 *db, int64_t model_id,
                     uint32_t crc, const st_history *h, int u, const int32_t *cos, int n_cos, int k,
                     char *err, size_t errlen);

/* The ranker's product statistics over the users of train[0..n_train) (each counted once,
 * its orders up to and including its eval_set=train order): *all over all of them, oof[k]
 * over those outside fold k (what the training rows of fold k's users see). Returns NB_OK
 * (free each with tr_rk_pstats_free) or NB_EINVAL. */
int tr_rk_oof_stats(const st_history *h, const tr_sample *train, int n_train, tr_rk_pstats *all,
                    tr_rk_pstats oof[TR_RK_FOLDS], char *err, size_t errlen);

/* The fold of a user id, 0..TR_RK_FOLDS-1. */
int tr_rk_fold(int32_t user_id);

/* Adds object "ranker" to the report object o (a cJSON *): per variant the test metrics
 * (R@10, NDCG@10, P@10, HR@10, R@20, F1_example threshold / expected-F1) and validation
 * R@10/NDCG@10, the validation baselines, the selection ("shipped": "ranker" or the
 * baseline's name), coverage per source and timings. */
void tr_rk_report_json(void *o, const tr_rk_report *r);

/* Prints the ranker rows (test users) under the baselines' table, and the selection. */
void tr_rk_report_table(const tr_rk_report *r, FILE *out);

#endif
