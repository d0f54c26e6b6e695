/* metrics.c -- see metrics.h. */
#include "metrics.h"

#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const int tr_metrics_k[TR_METRICS_NK] = {10, 20};

/* mark bits in m->mark while one user is being added */
enum { M_TRUE = 1, M_PRED = 2, M_RANK = 4, M_CAND = 8 };

/* Returns NB_OK or NB_EINVAL (n_products <= 0); m owns the arrays after. */
int tr_metrics_init(tr_metrics *m, int n_products, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (n_products <= 0)
        return nb_err(err, errlen, NB_EINVAL, "metrics: n_products must be > 0, got %d",
                      n_products);
    size_t p = (size_t)n_products;
    m->n_products = n_products;
    m->prod_tp = nb_xcalloc(p, sizeof *m->prod_tp);
    m->prod_fp = nb_xcalloc(p, sizeof *m->prod_fp);
    m->prod_fn = nb_xcalloc(p, sizeof *m->prod_fn);
    m->mark = nb_xcalloc(p, 1);
    return NB_OK;
}

/* Frees m's arrays; m is left zeroed. */
void tr_metrics_free(tr_metrics *m) {
    free(m->prod_tp);
    free(m->prod_fp);
    free(m->prod_fn);
    free(m->mark);
    memset(m, 0, sizeof *m);
}

/* Clears the given mark bits of the listed products (the lists that set them). */
static void unmark(uint8_t *mark, const int32_t *a, int n, uint8_t bits) {
    for (int i = 0; i < n; i++) mark[a[i]] &= (uint8_t)~bits;
}

/* Returns NB_OK if every a[i] is in [0, P), else NB_EINVAL naming the list and position. */
static int check_range(const int32_t *a, int n, int P, const char *what, char *err, size_t errlen) {
    if (n < 0) return nb_err(err, errlen, NB_EINVAL, "metrics: %s length %d < 0", what, n);
    if (n > 0 && !a) return nb_err(err, errlen, NB_EINVAL, "metrics: %s is NULL", what);
    for (int i = 0; i < n; i++)
        if (a[i] < 0 || a[i] >= P)
            return nb_err(err, errlen, NB_EINVAL,
                          "metrics: %s[%d] = %d is not a product index (0..%d)", what, i, (int)a[i],
                          P - 1);
    return NB_OK;
}

/* Adds one user; see metrics.h. Returns NB_OK or NB_EINVAL with m unchanged. */
int tr_metrics_add(tr_metrics *m, const int32_t *ranked, int n_ranked, const int32_t *pred,
                   int n_pred, const int32_t *truth, int n_truth, char *err, size_t errlen) {
    const int P = m->n_products;
    int rc = check_range(ranked, n_ranked, P, "ranked", err, errlen);
    if (rc == NB_OK) rc = check_range(pred, n_pred, P, "pred", err, errlen);
    if (rc == NB_OK) rc = check_range(truth, n_truth, P, "truth", err, errlen);
    if (rc != NB_OK) return rc;

    /* Only the first max K ranks matter; a repeat among them would count a hit twice. */
    const int kmax = tr_metrics_k[TR_METRICS_NK - 1];
    const int nr = n_ranked < kmax ? n_ranked : kmax;
    uint8_t *mark = m->mark;
    for (int i = 0; i < nr; i++) {
        if (mark[ranked[i]] & M_RANK) {
            unmark(mark, ranked, i, M_RANK);
            return nb_err(err, errlen, NB_EINVAL,
                          "metrics: ranked[%d] = %d repeats an earlier rank", i, (int)ranked[i]);
        }
        mark[ranked[i]] |= M_RANK;
    }
    unmark(mark, ranked, nr, M_RANK);

    /* distinct truth and prediction sizes */
    int nt = 0, np = 0, tp = 0;
    for (int i = 0; i < n_truth; i++)
        if (!(mark[truth[i]] & M_TRUE)) {
            mark[truth[i]] |= M_TRUE;
            nt++;
        }
    for (int i = 0; i < n_pred; i++) {
        int32_t j = pred[i];
        if (mark[j] & M_PRED) continue;
        mark[j] |= M_PRED;
        np++;
        if (mark[j] & M_TRUE) {
            tp++;
            m->prod_tp[j]++;
        } else {
            m->prod_fp[j]++;
        }
    }
    for (int i = 0; i < n_truth; i++) {
        int32_t j = truth[i];
        if ((mark[j] & (M_TRUE | M_PRED)) == M_TRUE) {
            m->prod_fn[j]++;
            mark[j] |= M_PRED; /* so that a repeated truth entry is not counted again */
        }
    }
    m->tp += tp;
    m->fp += np - tp;
    m->fn += nt - tp;
    m->sum_f1_example += (np + nt == 0) ? 1.0 : 2.0 * tp / (double)(np + nt);
    m->sum_pred_size += np;
    m->sum_true_size += nt;

    /* @K: one pass over the ranking, closing each cut-off as it is reached */
    double dcg = 0;
    int hits = 0, ki = 0;
    for (int r = 0; r < kmax && ki < TR_METRICS_NK; r++) {
        if (r < nr && (mark[ranked[r]] & M_TRUE)) {
            hits++;
            dcg += 1.0 / log2((double)r + 2.0);
        }
        if (r + 1 == tr_metrics_k[ki]) {
            int K = tr_metrics_k[ki];
            m->sum_p[ki] += hits / (double)K;
            if (nt > 0) {
                double idcg = 0;
                int ni = nt < K ? nt : K;
                for (int i = 0; i < ni; i++) idcg += 1.0 / log2((double)i + 2.0);
                m->sum_r[ki] += hits / (double)nt;
                m->sum_ndcg[ki] += dcg / idcg;
                m->sum_hit[ki] += hits > 0;
            }
            ki++;
        }
    }
    assert(ki == TR_METRICS_NK);

    unmark(mark, truth, n_truth, M_TRUE | M_PRED);
    unmark(mark, pred, n_pred, M_TRUE | M_PRED);
    m->n_users++;
    return NB_OK;
}

/* Adds one user's candidate set for the candidate recall. Returns NB_OK or NB_EINVAL. */
int tr_metrics_add_cands(tr_metrics *m, const int32_t *cand, int n_cand, const int32_t *truth,
                         int n_truth, char *err, size_t errlen) {
    const int P = m->n_products;
    int rc = check_range(cand, n_cand, P, "cand", err, errlen);
    if (rc == NB_OK) rc = check_range(truth, n_truth, P, "truth", err, errlen);
    if (rc != NB_OK) return rc;
    uint8_t *mark = m->mark;
    int nc = 0, nt = 0, hits = 0;
    for (int i = 0; i < n_cand; i++)
        if (!(mark[cand[i]] & M_CAND)) {
            mark[cand[i]] |= M_CAND;
            nc++;
        }
    for (int i = 0; i < n_truth; i++) {
        int32_t j = truth[i];
        if (mark[j] & M_TRUE) continue;
        mark[j] |= M_TRUE;
        nt++;
        hits += (mark[j] & M_CAND) != 0;
    }
    unmark(mark, cand, n_cand, M_CAND);
    unmark(mark, truth, n_truth, M_TRUE);
    m->cand_users++;
    m->cand_hits += hits;
    m->cand_truth += nt;
    m->cand_size += nc;
    return NB_OK;
}

/* Fills r from m's counts. */
void tr_metrics_get(const tr_metrics *m, tr_metrics_result *r) {
    memset(r, 0, sizeof *r);
    r->n_users = m->n_users;
    r->cand_users = m->cand_users;
    if (m->cand_truth > 0) r->cand_recall = m->cand_hits / (double)m->cand_truth;
    if (m->cand_users > 0) r->mean_cand_size = m->cand_size / (double)m->cand_users;
    if (m->n_users == 0) return;
    double nu = (double)m->n_users;
    int64_t d = 2 * m->tp + m->fp + m->fn;
    r->f1_micro = d ? 2.0 * m->tp / (double)d : 0.0;
    r->precision_micro = m->tp + m->fp ? m->tp / (double)(m->tp + m->fp) : 0.0;
    r->recall_micro = m->tp + m->fn ? m->tp / (double)(m->tp + m->fn) : 0.0;
    double macro = 0;
    for (int j = 0; j < m->n_products; j++) {
        int64_t dj = 2 * m->prod_tp[j] + m->prod_fp[j] + m->prod_fn[j];
        if (dj) macro += 2.0 * m->prod_tp[j] / (double)dj;
    }
    r->f1_macro = macro / m->n_products;
    r->f1_example = m->sum_f1_example / nu;
    for (int k = 0; k < TR_METRICS_NK; k++) {
        r->p_at[k] = m->sum_p[k] / nu;
        r->r_at[k] = m->sum_r[k] / nu;
        r->ndcg_at[k] = m->sum_ndcg[k] / nu;
        r->hit_at[k] = m->sum_hit[k] / nu;
    }
    r->mean_pred_size = m->sum_pred_size / nu;
    r->mean_true_size = m->sum_true_size / nu;
}
