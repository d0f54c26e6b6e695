/* metrics.h -- next-basket evaluation metrics, accumulated one user at a time.
 *
 * For each evaluated user the caller gives
 *   ranked[n_ranked]  product indices, best first (distinct; >= 20 long where possible),
 *   pred[n_pred]      the predicted basket (the products decided "bought"),
 *   truth[n_truth]    the true basket (the target order's products).
 * pred and truth are sets: a product listed twice counts once (Ta-Feng baskets can hold a
 * product on several receipt lines). The caller decides what the ranking covers (the whole
 * catalogue, or the user's candidate set, in which case products outside it are simply never
 * ranked or predicted). Work per user is O(n_ranked + n_pred + n_truth), never O(P): the
 * per-product counts live in arrays and the macro average is computed once at the end.
 *
 * Definitions (all checked against scikit-learn by tests/metrics_sklearn.sh):
 *   F1_micro    2 TP / (2 TP + FP + FN) pooled over every (user, product) decision.
 *   F1_macro    sklearn f1_score(Y, Yhat, average='macro', zero_division=0) on the users x P
 *               indicator matrices: the mean over ALL P products of each product's
 *               2 tp / (2 tp + fp + fn), a product never true nor predicted counting 0.
 *   F1_example  mean over users of the F1 of their predicted basket. Convention (Kaggle
 *               Instacart; = sklearn average='samples', zero_division=1): empty truth and
 *               empty prediction score 1; exactly one of them empty scores 0. Our data never
 *               has an empty truth, so an empty prediction always scores 0.
 *   P@K         |top-K ∩ truth| / K, dividing by K even when the ranking is shorter.
 *   R@K         |top-K ∩ truth| / |truth|.
 *   NDCG@K      DCG = sum over hits at rank r (1-based) of 1/log2(r+1); divided by the ideal
 *               DCG of min(K, |truth|) hits at ranks 1..min(K, |truth|).
 *   Hit@K       1 if top-K holds at least one true product.
 *   For K in {10, 20}, each averaged over users. A user with an empty truth contributes 0 to
 *   R@K, NDCG@K and Hit@K (and to P@K, having no hits).
 *   Candidate recall: pooled share of true products inside the users' candidate sets,
 *   sum_u |cand_u ∩ truth_u| / sum_u |truth_u| (fed separately by tr_metrics_add_cands).
 */
#ifndef TR_METRICS_H
#define TR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define TR_METRICS_NK 2
/* The cut-offs K, in the order of the @K arrays below. */
extern const int tr_metrics_k[TR_METRICS_NK]; /* {10, 20} */

typedef struct {
    int n_products;
    int64_t n_users;                      /* users added with tr_metrics_add */
    int64_t tp, fp, fn;                   /* pooled over users and products */
    int64_t *prod_tp, *prod_fp, *prod_fn; /* [n_products] for F1_macro */
    double sum_f1_example;
    double sum_p[TR_METRICS_NK], sum_r[TR_METRICS_NK], sum_ndcg[TR_METRICS_NK],
        sum_hit[TR_METRICS_NK];
    int64_t sum_pred_size, sum_true_size;
    /* candidate recall */
    int64_t cand_users, cand_hits, cand_truth, cand_size;
    uint8_t *mark; /* [n_products] scratch, all zero between calls */
} tr_metrics;

typedef struct {
    int64_t n_users;
    double f1_micro, precision_micro, recall_micro;
    double f1_macro;
    double f1_example;
    double p_at[TR_METRICS_NK], r_at[TR_METRICS_NK], ndcg_at[TR_METRICS_NK],
        hit_at[TR_METRICS_NK]; /* index i is K = tr_metrics_k[i] */
    double mean_pred_size, mean_true_size;
    int64_t cand_users; /* users fed to tr_metrics_add_cands */
    double cand_recall; /* pooled; 0 when no candidate sets were fed */
    double mean_cand_size;
} tr_metrics_result;

/* Prepares an empty accumulator for products 0..n_products-1. Returns NB_OK, NB_EINVAL
 * (n_products <= 0). m owns its arrays afterwards; free with tr_metrics_free. */
int tr_metrics_init(tr_metrics *m, int n_products, char *err, size_t errlen);
void tr_metrics_free(tr_metrics *m);
/* Adds one user. The arrays are only read. Returns NB_OK, or NB_EINVAL (a product index out
 * of range, a product repeated within the first 20 of ranked, a negative length) with m
 * unchanged. Ranks beyond 20 are only range-checked. */
int tr_metrics_add(tr_metrics *m, const int32_t *ranked, int n_ranked, const int32_t *pred,
                   int n_pred, const int32_t *truth, int n_truth, char *err, size_t errlen);

/* Adds one user's candidate set (for candidate recall only). cand and truth are sets
 * (repeats count once). Returns NB_OK or NB_EINVAL (index out of range) with m unchanged. */
int tr_metrics_add_cands(tr_metrics *m, const int32_t *cand, int n_cand, const int32_t *truth,
                         int n_truth, char *err, size_t errlen);

/* Computes the averages (O(P) for F1_macro). With no users every figure is 0. */
void tr_metrics_get(const tr_metrics *m, tr_metrics_result *r);

#endif
