/* report.c -- the JSON report via cJSON and the final table. */
#include "report.h"
#include "atomic_file.h"
#include "nb_err.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Adds the number flag `flag` of f to o, keyed by its name with '_' for '-'; with `words`
 * (a word-valued flag, whose number is the word's index) the word instead. */
static void add_flag(cJSON *o, const tr_flags *f, const char *flag, const char *const *words) {
    char key[32];
    double v;
    snprintf(key, sizeof key, "%s", flag);
    for (char *c = key; *c; c++)
        if (*c == '-') *c = '_';
    if (!tr_flags_number(f, flag, &v)) return;
    if (words)
        cJSON_AddStringToObject(o, key, words[(int)v]);
    else
        cJSON_AddNumberToObject(o, key, v);
}

/* The hyper-parameters as a JSON object (owned by the caller): the flags of the model's
 * configuration (nn_config_fields), the training flags, then the flags that are words. */
static cJSON *hyper(const tr_flags *f) {
    static const char *const training[] = {"lr",          "batch",       "threshold", "pos-weight",
                                           "candidates",  "epochs",      "patience",  "seed",
                                           "threads",     "limit-users", "clip",      "warmup",
                                           "rank-weight", "margin",      "negatives"};
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < NN_CONFIG_NFIELDS; i++)
        if (nn_config_fields[i].flag)
            add_flag(o, f, nn_config_fields[i].flag, nn_config_fields[i].choices);
    for (size_t i = 0; i < sizeof training / sizeof training[0]; i++)
        add_flag(o, f, training[i], NULL);
    char sp[32];
    snprintf(sp, sizeof sp, "%d/%d/%d", f->split[0], f->split[1], f->split[2]);
    cJSON_AddStringToObject(o, "split", sp);
    cJSON_AddStringToObject(o, "targets", f->targets_all ? "all" : "last");
    cJSON_AddStringToObject(o, "repeat", f->repeat ? "on" : "off");
    cJSON_AddStringToObject(o, "basket", f->basket_ef1 ? "expected-f1" : "threshold");
    cJSON_AddStringToObject(o, "loss", tr_loss_names[f->loss]);
    cJSON_AddStringToObject(o, "negative_sampling", "uniform");
    cJSON_AddStringToObject(o, "early_stopping", "validation R@10");
    return o;
}

/* Prints o (indented when pretty) and deletes it. Returns the text; the caller frees it. */
static char *print_and_delete(cJSON *o, int pretty) {
    char *s = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *tr_report_hyper_json(const tr_flags *f) { return print_and_delete(hyper(f), 0); }

/* Adds the standard metric keys of r to o. */
static void add_metrics(cJSON *o, const tr_metrics_result *r) {
    cJSON_AddNumberToObject(o, "n_users", (double)r->n_users);
    cJSON_AddNumberToObject(o, "F1_micro", r->f1_micro);
    cJSON_AddNumberToObject(o, "F1_macro", r->f1_macro);
    cJSON_AddNumberToObject(o, "F1_example", r->f1_example);
    for (int i = 0; i < TR_METRICS_NK; i++) {
        char k[32];
        int K = tr_metrics_k[i];
        snprintf(k, sizeof k, "P@%d", K), cJSON_AddNumberToObject(o, k, r->p_at[i]);
        snprintf(k, sizeof k, "R@%d", K), cJSON_AddNumberToObject(o, k, r->r_at[i]);
        snprintf(k, sizeof k, "NDCG@%d", K), cJSON_AddNumberToObject(o, k, r->ndcg_at[i]);
        snprintf(k, sizeof k, "HR@%d", K), cJSON_AddNumberToObject(o, k, r->hit_at[i]);
    }
    cJSON_AddNumberToObject(o, "mean_basket_size", r->mean_pred_size);
}

/* A metrics object for the main basket mode, with its "candidates" sub-object. */
static cJSON *metrics_obj(const tr_eval_result *e, int ef1, int with_cands) {
    cJSON *o = cJSON_CreateObject();
    add_metrics(o, ef1 ? &e->ef1[0] : &e->thr[0]);
    if (with_cands) {
        cJSON *c = cJSON_AddObjectToObject(o, "candidates");
        add_metrics(c, ef1 ? &e->ef1[1] : &e->thr[1]);
    }
    return o;
}

/* Adds TIFU-KNN parameters p to o as m, r_b, r_g, k, alpha (o keeps them). */
static void add_tifu_params(cJSON *o, const tr_tifu_params *p) {
    cJSON_AddNumberToObject(o, "m", p->m);
    cJSON_AddNumberToObject(o, "r_b", p->r_b);
    cJSON_AddNumberToObject(o, "r_g", p->r_g);
    cJSON_AddNumberToObject(o, "k", p->k);
    cJSON_AddNumberToObject(o, "alpha", p->alpha);
}

/* The evaluated baseline with the highest full-catalogue R@10 (metric 0) or NDCG@10
 * (metric 1) on the test users, tuned TIFU-KNN included: the figure the model must beat.
 * Ties go to the earlier row. */
static int best_baseline(const tr_report *r, int metric) {
    int best = -1;
    for (int i = 0; i < TR_N_BL; i++) {
        if (r->bl[i].n == 0) continue;
        const tr_metrics_result *m = &r->bl[i].thr[0];
        double v = metric ? m->ndcg_at[0] : m->r_at[0];
        const tr_metrics_result *b = best >= 0 ? &r->bl[best].thr[0] : NULL;
        if (!b || v > (metric ? b->ndcg_at[0] : b->r_at[0])) best = i;
    }
    return best;
}

static cJSON *report_obj(const tr_report *r) {
    const tr_flags *f = r->f;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "hyper_params", hyper(f));
    cJSON *d = cJSON_AddObjectToObject(o, "data");
    cJSON_AddStringToObject(d, "db", f->db);
    cJSON_AddNumberToObject(d, "products", r->h->n_products);
    cJSON_AddNumberToObject(d, "users", r->h->n_users);
    cJSON_AddNumberToObject(d, "users_used", r->s->n_users);
    cJSON_AddNumberToObject(d, "orders", (double)r->h->n_orders);
    cJSON_AddNumberToObject(d, "items", (double)r->h->n_items);
    cJSON_AddNumberToObject(d, "train_users", r->s->n_train_users);
    cJSON_AddNumberToObject(d, "val_users", r->s->n_val_users);
    cJSON_AddNumberToObject(d, "test_users", r->s->n_test_users);
    cJSON_AddNumberToObject(d, "train_samples", r->s->n_train);
    cJSON_AddNumberToObject(d, "users_without_target", r->s->n_no_target);
    cJSON_AddNumberToObject(d, "cold_users", r->s->n_cold);
    cJSON_AddNumberToObject(d, "parameters", r->n_params);
    cJSON *ep = cJSON_AddArrayToObject(o, "epochs");
    for (int i = 0; i < r->st->n_hist; i++) {
        const tr_epoch_stat *e = &r->st->hist[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "epoch", i + 1);
        cJSON_AddNumberToObject(x, "train_loss", e->train_loss);
        cJSON_AddNumberToObject(x, "val_loss", e->val_loss);
        cJSON_AddNumberToObject(x, "val_R@10", e->val_recall10);
        cJSON_AddNumberToObject(x, "val_NDCG@10", e->val_ndcg10);
        cJSON_AddNumberToObject(x, "seconds", e->seconds);
        cJSON_AddNumberToObject(x, "samples_per_s", e->samples_per_s);
        cJSON_AddItemToArray(ep, x);
    }
    cJSON_AddNumberToObject(o, "start_val_R@10", r->st->start_metric);
    cJSON_AddNumberToObject(o, "best_epoch", r->st->best_epoch);
    cJSON_AddNumberToObject(o, "best_val_R@10", r->st->best_metric);
    if (r->have_test) {
        cJSON_AddNumberToObject(o, "test_users", (double)r->model.n);
        cJSON *mo = metrics_obj(&r->model, f->basket_ef1, 1);
        cJSON_AddNumberToObject(mo, "loss", r->model.loss);
        cJSON_AddItemToObject(o, "model", mo);
        cJSON *bb = cJSON_AddObjectToObject(o, "baselines");
        for (int i = 0; i < TR_N_BL; i++)
            if (r->bl[i].n > 0 || i != TR_BL_TIFU_TUNED)
                cJSON_AddItemToObject(bb, tr_bl_names[i], metrics_obj(&r->bl[i], 0, 1));
        cJSON *bst = cJSON_AddObjectToObject(o, "best_baseline");
        for (int k = 0; k < 2; k++) {
            int b = best_baseline(r, k);
            const char *key = k ? "NDCG@10" : "R@10";
            double v = k ? r->bl[b].thr[0].ndcg_at[0] : r->bl[b].thr[0].r_at[0];
            double mv = k ? r->model.thr[0].ndcg_at[0] : r->model.thr[0].r_at[0];
            cJSON *x = cJSON_AddObjectToObject(bst, key);
            cJSON_AddStringToObject(x, "name", tr_bl_names[b]);
            cJSON_AddNumberToObject(x, "value", v);
            cJSON_AddNumberToObject(x, "model_ratio", v > 0 ? mv / v : 0);
        }
        if (r->rk) tr_rk_report_json(o, r->rk);
        cJSON *cr = cJSON_AddObjectToObject(o, "candidate_recall");
        cJSON_AddNumberToObject(cr, "micro", r->cand_recall.micro);
        cJSON_AddNumberToObject(cr, "macro", r->cand_recall.macro);
        cJSON_AddNumberToObject(cr, "users", r->cand_recall.n_users);
        cJSON_AddNumberToObject(cr, "mean_size", r->cand_recall.mean_size);
        cJSON *bk = cJSON_AddObjectToObject(o, "basket");
        cJSON *bt = cJSON_AddObjectToObject(bk, "threshold");
        cJSON_AddNumberToObject(bt, "F1_example", r->model.thr[0].f1_example);
        cJSON_AddNumberToObject(bt, "candidates_F1_example", r->model.thr[1].f1_example);
        cJSON_AddNumberToObject(bt, "mean_basket_size", r->model.thr[0].mean_pred_size);
        cJSON *be = cJSON_AddObjectToObject(bk, "expected-f1");
        cJSON_AddNumberToObject(be, "F1_example", r->model.ef1[0].f1_example);
        cJSON_AddNumberToObject(be, "candidates_F1_example", r->model.ef1[1].f1_example);
        cJSON_AddNumberToObject(be, "mean_basket_size", r->model.ef1[0].mean_pred_size);
    }
    if (r->have_tifu_tune) {
        const tr_tifu_tune_result *t = &r->tifu_tune;
        cJSON *tt = cJSON_AddObjectToObject(o, "tifu_tuning");
        add_tifu_params(tt, &t->best);
        cJSON_AddStringToObject(tt, "selected_on", "the tuning users' R@10, ties by NDCG@10");
        cJSON_AddNumberToObject(tt, "tuning_R@10", t->val_r10);
        cJSON_AddNumberToObject(tt, "tuning_NDCG@10", t->val_ndcg10);
        cJSON_AddNumberToObject(tt, "default_tuning_R@10", t->def_r10);
        cJSON_AddNumberToObject(tt, "default_tuning_NDCG@10", t->def_ndcg10);
        cJSON_AddNumberToObject(tt, "configs", t->n_configs);
        cJSON_AddNumberToObject(tt, "grid", t->n_grid);
        cJSON_AddNumberToObject(tt, "tuning_users", t->n_val);
        cJSON_AddNumberToObject(tt, "validation_users", r->tifu_tune_nv);
        cJSON_AddNumberToObject(tt, "training_users", t->n_val - r->tifu_tune_nv);
        cJSON_AddNumberToObject(tt, "ref_users", t->n_ref);
        cJSON_AddNumberToObject(tt, "seconds", t->seconds);
        cJSON_AddNumberToObject(tt, "cpu_seconds", t->cpu_seconds);
        /* the signal check (tifu_tune.h tr_tifu_crossfit): m ... alpha above are what is
         * used; the tuner's own choice is here */
        const tr_tifu_crossfit_result *cf = &r->tifu_cf;
        cJSON *cj = cJSON_AddObjectToObject(tt, "cross_fit");
        cJSON_AddStringToObject(cj, "used", r->tifu_kept ? "tuned" : "defaults");
        cJSON_AddNumberToObject(cj, "users", cf->n);
        cJSON_AddNumberToObject(cj, "R@10", cf->r10);
        cJSON_AddNumberToObject(cj, "NDCG@10", cf->ndcg10);
        cJSON_AddNumberToObject(cj, "default_R@10", cf->def_r10);
        cJSON_AddNumberToObject(cj, "default_NDCG@10", cf->def_ndcg10);
        cJSON_AddNumberToObject(cj, "seconds", cf->seconds);
        add_tifu_params(cJSON_AddObjectToObject(cj, "tuner_choice"), &r->tifu_tuner_choice);
        add_tifu_params(cJSON_AddObjectToObject(cj, "half_even"), &cf->half[0]);
        add_tifu_params(cJSON_AddObjectToObject(cj, "half_odd"), &cf->half[1]);
    }
    cJSON *c = cJSON_AddObjectToObject(o, "calibration");
    cJSON_AddNumberToObject(c, "calib_a", r->calib_a);
    cJSON_AddNumberToObject(c, "calib_b", r->calib_b);
    cJSON_AddNumberToObject(c, "fit_pairs", (double)r->calib_pairs);
    cJSON_AddNumberToObject(c, "fit_iterations", r->calib_iters);
    cJSON_AddNumberToObject(c, "ece_before", r->ece_before);
    cJSON_AddNumberToObject(c, "ece_after", r->ece_after);
    cJSON *tm = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(tm, "load_s", r->t_load);
    cJSON_AddNumberToObject(tm, "train_s", r->t_train);
    cJSON_AddNumberToObject(tm, "candidates_s", r->t_cands);
    cJSON_AddNumberToObject(tm, "calibration_s", r->t_calib);
    cJSON_AddNumberToObject(tm, "test_eval_s", r->t_eval);
    cJSON_AddNumberToObject(tm, "baselines_s", r->t_baselines);
    cJSON_AddNumberToObject(tm, "tifu_tuning_s", r->t_tifu_tune);
    cJSON_AddNumberToObject(tm, "total_s", r->t_total);
    double sps = r->st->train_seconds > 0 && r->st->epochs_done > 0
        ? (double)r->s->n_train * r->st->epochs_done / r->st->train_seconds
        : 0;
    cJSON_AddNumberToObject(tm, "train_samples_per_s", sps);
    cJSON_AddNumberToObject(tm, "peak_rss_mb", (double)r->peak_rss / 1048576.0);
    return o;
}

char *tr_report_json(const tr_report *r) { return print_and_delete(report_obj(r), 1); }

int tr_report_write(const tr_report *r, const char *path, char *err, size_t errlen) {
    char *s = tr_report_json(r);
    nb_afile af;
    int rc = nb_afile_open(&af, path, err, errlen);
    if (rc == NB_OK) {
        if (fputs(s, af.f) < 0 || fputc('\n', af.f) < 0) {
            int e = errno;
            nb_afile_abort(&af);
            rc = nb_err(err, errlen, NB_EIO, "%s: write failed: %s", path, strerror(e));
        } else {
            rc = nb_afile_commit(&af, err, errlen);
        }
    }
    free(s);
    return rc;
}

static void row(FILE *out, const char *name, const tr_metrics_result *m) {
    fprintf(out, "%-16s %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f\n", name, m->f1_micro,
            m->f1_macro, m->f1_example, m->p_at[0], m->r_at[0], m->ndcg_at[0], m->hit_at[0],
            m->r_at[1]);
}

void tr_report_table(const tr_report *r, FILE *out) {
    if (!r->have_test) return;
    const tr_eval_result *mo = &r->model;
    int ef = r->f->basket_ef1;
    for (int a = 0; a < 2; a++) {
        fprintf(out, "\n%s, %lld test users (basket: %s)\n",
                a ? "restricted to candidate sets" : "full catalogue", (long long)mo->n,
                ef ? "expected-F1" : "threshold");
        fprintf(out, "%-16s %8s %8s %8s %8s %8s %8s %8s %8s\n", "", "F1_micro", "F1_macro", "F1_ex",
                "P@10", "R@10", "NDCG@10", "HR@10", "R@20");
        row(out, "model", ef ? &mo->ef1[a] : &mo->thr[a]);
        for (int i = 0; i < TR_N_BL; i++)
            if (r->bl[i].n > 0 || i != TR_BL_TIFU_TUNED) row(out, tr_bl_names[i], &r->bl[i].thr[a]);
    }
    int br = best_baseline(r, 0), bn = best_baseline(r, 1);
    const tr_metrics_result *mr = &mo->thr[0];
    fprintf(out,
            "\nbaseline to beat (full catalogue): R@10 %s %.4f (model %.3fx), NDCG@10 %s "
            "%.4f (model %.3fx)\n",
            tr_bl_names[br], r->bl[br].thr[0].r_at[0],
            r->bl[br].thr[0].r_at[0] > 0 ? mr->r_at[0] / r->bl[br].thr[0].r_at[0] : 0,
            tr_bl_names[bn], r->bl[bn].thr[0].ndcg_at[0],
            r->bl[bn].thr[0].ndcg_at[0] > 0 ? mr->ndcg_at[0] / r->bl[bn].thr[0].ndcg_at[0] : 0);
    if (r->have_tifu_tune) {
        const tr_tifu_tune_result *t = &r->tifu_tune;
        fprintf(out,
                "TIFU-KNN tuned on %d users (%d validation, %d training at an earlier order; "
                "%d reference, %d of %d grid points, %.1fs): m %d r_b %.2f r_g %.2f k %d alpha "
                "%.2f; their R@10 %.4f (default parameters %.4f)\n",
                t->n_val, r->tifu_tune_nv, t->n_val - r->tifu_tune_nv, t->n_ref, t->n_configs,
                t->n_grid, t->seconds, r->tifu_tuner_choice.m, r->tifu_tuner_choice.r_b,
                r->tifu_tuner_choice.r_g, r->tifu_tuner_choice.k, r->tifu_tuner_choice.alpha,
                t->val_r10, t->def_r10);
        fprintf(out,
                "  cross-fitted (tuned on one half of those users, scored on the other): R@10 "
                "%.4f against the default parameters' %.4f: %s\n",
                r->tifu_cf.r10, r->tifu_cf.def_r10,
                r->tifu_kept ? "the tuned parameters are used"
                             : "the default parameters are used (\"TIFU-KNN tuned\" = TIFU-KNN)");
    }
    fprintf(out,
            "\ncandidate recall %.4f (mean set size %.0f); F1_example threshold %.4f, "
            "expected-F1 %.4f; ECE %.4f -> %.4f (a=%.3f b=%.3f)\n",
            r->cand_recall.micro, r->cand_recall.mean_size, mo->thr[0].f1_example,
            mo->ef1[0].f1_example, r->ece_before, r->ece_after, r->calib_a, r->calib_b);
    if (r->rk) tr_rk_report_table(r->rk, out);
}
