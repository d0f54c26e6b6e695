/* report.h -- the JSON report (--report, and the models.metrics / hyper_params columns) and
 * the model-vs-baselines table printed at the end.
 *
 * Layout of the report:
 *   hyper_params {every flag; loss, rank_weight, margin, negatives, negative_sampling: the
 *   training loss, train/rankloss.h}, data {users, products, orders, items, samples per split, ...},
 *   epochs [{epoch, train_loss, val_loss, val_R@10, val_NDCG@10, seconds, samples_per_s}],
 *   start_val_R@10 (the untrained starting point, "epoch 0"), best_epoch (0: that starting
 *   point won on validation), best_val_R@10, test_users (all of the following are on the test users),
 *   model {metrics..., loss, candidates {metrics...}},
 *   baselines {"G-TopFreq" {...}, "P-TopFreq" {...}, "TIFU-KNN" {...}, "TIFU-KNN tuned" {...}}
 *   (same shape; "TIFU-KNN tuned" only when the tuning ran),
 *   tifu_tuning {m, r_b, r_g, k, alpha (chosen), selected_on, val_R@10, val_NDCG@10,
 *   default_val_R@10, default_val_NDCG@10, configs (evaluated), grid, val_users, ref_users, seconds, cpu_seconds},
 *   best_baseline {"R@10" {name, value, model_ratio}, "NDCG@10" {...}} (the highest test
 *   figure among the baselines, tuned TIFU-KNN included: the one the model must beat),
 *   candidate_recall {...}, calibration {calib_a, calib_b, ece_before, ece_after, ...},
 *   basket {threshold {F1_example, candidates_F1_example}, expected-f1 {...}},
 *   timings {...}.
 * Metric keys: F1_micro, F1_macro, F1_example, P@10, R@10, NDCG@10, HR@10, P@20, R@20,
 * NDCG@20, HR@20.
 */
#ifndef TR_REPORT_H
#define TR_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "candgen.h"
#include "checkpoint.h"
#include "evaluate.h"
#include "flags.h"
#include "rktrain.h"
#include "split.h"
#include "tifu_tune.h"

typedef struct {
    const tr_flags *f;
    const st_history *h;
    const tr_samples *s;
    const tr_train_state *st;
    int have_test;                 /* test evaluation done */
    tr_eval_result model;          /* test users */
    tr_eval_result bl[TR_N_BL];    /* bl[b].n == 0: baseline b not evaluated */
    int have_tifu_tune;            /* tifu_tune filled */
    tr_tifu_tune_result tifu_tune; /* TIFU-KNN's parameters tuned on validation and training
                                    * users (tifu_tune.h tr_tifu_tuning_set) */
    int tifu_tune_nv;              /* validation users among tifu_tune.n_val */
    tr_tifu_crossfit_result tifu_cf; /* the tuning's signal check (tifu_tune.h) */
    tr_tifu_params tifu_tuner_choice; /* what the tuner chose; tifu_tune.best is what is used:
                                       * the same, or tr_tifu_defaults when !tifu_kept */
    int tifu_kept;                 /* 1: the tuned parameters beat the defaults cross-fitted
                                    * (0 with fewer than 2 tuning users: nothing to check) */
    tr_cand_recall cand_recall;    /* test users */
    double calib_a, calib_b, ece_before, ece_after;
    long long calib_pairs;
    int calib_iters;
    double t_load, t_train, t_cands, t_calib, t_eval, t_baselines, t_tifu_tune, t_total;
    long long peak_rss;
    int n_params;
    const tr_rk_report *rk; /* the ranking stage, or NULL (--ranker off) */
} tr_report;

/* The hyper-parameters as a JSON text (malloc'd, caller frees). */
char *tr_report_hyper_json(const tr_flags *f);
/* The whole report as a JSON text (malloc'd, caller frees). */
char *tr_report_json(const tr_report *r);
/* Writes the report atomically to path. Returns NB_OK or NB_EIO. */
int tr_report_write(const tr_report *r, const char *path, char *err, size_t errlen);
/* Prints the model-vs-baselines table. */
void tr_report_table(const tr_report *r, FILE *out);

#endif
