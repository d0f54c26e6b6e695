/* test_metrics.c -- hand-computed cases for the metrics accumulator (train/metrics.h).
 * tests/metrics_sklearn.sh checks the same code against scikit-learn on random data. */
#include "harness.h"
#include "metrics.h"
#include "nb_err.h"

#include <math.h>
#include <string.h>

/* ---- moved here from train/metrics.c: only this test uses it ---- */

/* Zeroes every count but keeps the arrays and n_products. */
static void tr_metrics_reset(tr_metrics *m) {
    size_t p = (size_t)m->n_products;
    int64_t *tp = m->prod_tp, *fp = m->prod_fp, *fn = m->prod_fn;
    uint8_t *mark = m->mark;
    memset(tp, 0, p * sizeof *tp);
    memset(fp, 0, p * sizeof *fp);
    memset(fn, 0, p * sizeof *fn);
    memset(m, 0, sizeof *m);
    m->n_products = (int)p;
    m->prod_tp = tp;
    m->prod_fp = fp;
    m->prod_fn = fn;
    m->mark = mark;
}


#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)
#define L(...) ((const int32_t[]){__VA_ARGS__}), (int)(sizeof((int32_t[]){__VA_ARGS__}) / 4)

/* Two users, every figure worked out by hand in the comments. */
static int test_two_users_by_hand(void) {
    char err[NB_ERRLEN];
    tr_metrics m;
    T_ASSERT(tr_metrics_init(&m, 6, err, sizeof err) == NB_OK, "%s", err);
    /* user 1: ranking 0..5, predicted {0,1}, truth {1,2}: tp 1, fp 1, fn 1, F1 = 2/4.
     * hits at ranks 2 and 3: P@10 = 2/10, P@20 = 2/20, R = 1,
     * NDCG = (1/log2 3 + 1/log2 4) / (1 + 1/log2 3) over min(K, |truth|) = 2 ideal hits. */
    T_ASSERT(tr_metrics_add(&m, L(0, 1, 2, 3, 4, 5), L(0, 1), L(1, 2), err, sizeof err) == NB_OK,
             "%s", err);
    /* user 2: ranking {5}, nothing predicted, truth {3}: fn 1, F1 0, no hit. */
    T_ASSERT(tr_metrics_add(&m, L(5), NULL, 0, L(3), err, sizeof err) == NB_OK, "%s", err);
    tr_metrics_result r;
    tr_metrics_get(&m, &r);
    double ndcg1 = (1 / log2(3.0) + 0.5) / (1 + 1 / log2(3.0));
    T_ASSERT(r.n_users == 2, "users %lld", (long long)r.n_users);
    T_ASSERT(NEAR(r.f1_micro, 2.0 / 5.0), "micro %.17g: tp 1 fp 1 fn 2", r.f1_micro);
    T_ASSERT(NEAR(r.precision_micro, 0.5) && NEAR(r.recall_micro, 1.0 / 3), "micro P/R");
    T_ASSERT(NEAR(r.f1_macro, 1.0 / 6.0), "macro %.17g: only product 1 has F1 1", r.f1_macro);
    T_ASSERT(NEAR(r.f1_example, 0.25), "example %.17g", r.f1_example);
    T_ASSERT(NEAR(r.p_at[0], 0.1) && NEAR(r.p_at[1], 0.05), "P@10 %.17g P@20 %.17g", r.p_at[0],
             r.p_at[1]);
    T_ASSERT(r.p_at[0] != r.p_at[1], "P@10 must differ from P@20");
    T_ASSERT(NEAR(r.r_at[0], 0.5) && NEAR(r.r_at[1], 0.5), "R@K");
    T_ASSERT(NEAR(r.ndcg_at[0], ndcg1 / 2) && NEAR(r.ndcg_at[1], ndcg1 / 2), "NDCG %.17g",
             r.ndcg_at[0]);
    T_ASSERT(NEAR(r.hit_at[0], 0.5) && NEAR(r.hit_at[1], 0.5), "hit");
    T_ASSERT(NEAR(r.mean_pred_size, 1.0) && NEAR(r.mean_true_size, 1.5), "sizes");
    tr_metrics_reset(&m);
    tr_metrics_get(&m, &r);
    T_ASSERT(r.n_users == 0 && r.f1_micro == 0 && r.f1_macro == 0, "reset clears");
    T_ASSERT(m.prod_tp[1] == 0, "reset clears per-product counts");
    tr_metrics_free(&m);
    return T_PASS;
}

/* |truth| = 12 > K = 10: the ideal DCG@10 uses 10 hits, @20 uses 12. Hits at ranks 1..10
 * and 13, 14 (ranks 11, 12 are misses). */
static int test_ndcg_truth_longer_than_k(void) {
    char err[NB_ERRLEN];
    tr_metrics m;
    T_ASSERT(tr_metrics_init(&m, 40, err, sizeof err) == NB_OK, "%s", err);
    int32_t ranked[20], truth[12];
    for (int i = 0; i < 20; i++) ranked[i] = i;
    for (int i = 0; i < 10; i++) truth[i] = i;
    truth[10] = 12;
    truth[11] = 13;
    T_ASSERT(tr_metrics_add(&m, ranked, 20, ranked, 3, truth, 12, err, sizeof err) == NB_OK, "%s",
             err);
    tr_metrics_result r;
    tr_metrics_get(&m, &r);
    double dcg20 = 0, idcg20 = 0;
    for (int i = 0; i < 12; i++) idcg20 += 1 / log2(i + 2.0);
    for (int i = 0; i < 20; i++)
        if (i < 10 || i == 12 || i == 13) dcg20 += 1 / log2(i + 2.0);
    T_ASSERT(NEAR(r.ndcg_at[0], 1.0), "NDCG@10 %.17g: top 10 all true", r.ndcg_at[0]);
    T_ASSERT(NEAR(r.ndcg_at[1], dcg20 / idcg20), "NDCG@20 %.17g want %.17g", r.ndcg_at[1],
             dcg20 / idcg20);
    T_ASSERT(r.ndcg_at[1] < 1.0, "two misses before the last hits cost something");
    T_ASSERT(NEAR(r.p_at[0], 1.0) && NEAR(r.p_at[1], 12 / 20.0), "P@K %g %g", r.p_at[0], r.p_at[1]);
    T_ASSERT(NEAR(r.r_at[0], 10 / 12.0) && NEAR(r.r_at[1], 1.0), "R@K %g %g", r.r_at[0], r.r_at[1]);
    T_ASSERT(NEAR(r.f1_example, 2 * 3 / 15.0), "F1 of 3 predicted, all true, of 12");
    tr_metrics_free(&m);
    return T_PASS;
}

/* Short rankings: P@K still divides by K; NDCG ideal over min(K, |truth|) with |truth| < K. */
static int test_short_ranking_and_small_truth(void) {
    char err[NB_ERRLEN];
    tr_metrics m;
    T_ASSERT(tr_metrics_init(&m, 10, err, sizeof err) == NB_OK, "%s", err);
    /* truth {7}, ranked [3, 7]: hit at rank 2, DCG = 1/log2 3, IDCG = 1 */
    T_ASSERT(tr_metrics_add(&m, L(3, 7), L(7), L(7), err, sizeof err) == NB_OK, "%s", err);
    tr_metrics_result r;
    tr_metrics_get(&m, &r);
    T_ASSERT(NEAR(r.p_at[0], 0.1) && NEAR(r.p_at[1], 0.05), "P@K divides by K");
    T_ASSERT(NEAR(r.ndcg_at[0], 1 / log2(3.0)), "NDCG %.17g", r.ndcg_at[0]);
    T_ASSERT(NEAR(r.f1_example, 1.0) && NEAR(r.f1_micro, 1.0) && NEAR(r.f1_macro, 0.1),
             "perfect basket: macro is 1 product of 10");
    tr_metrics_free(&m);
    return T_PASS;
}

/* Conventions: empty truth + empty prediction = F1 1; repeats in pred/truth count once. */
static int test_conventions(void) {
    char err[NB_ERRLEN];
    tr_metrics m;
    T_ASSERT(tr_metrics_init(&m, 5, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_metrics_add(&m, L(0, 1), NULL, 0, NULL, 0, err, sizeof err) == NB_OK, "%s", err);
    tr_metrics_result r;
    tr_metrics_get(&m, &r);
    T_ASSERT(NEAR(r.f1_example, 1.0), "both empty -> 1 (Kaggle convention), got %g", r.f1_example);
    T_ASSERT(r.r_at[0] == 0 && r.hit_at[0] == 0 && r.ndcg_at[0] == 0, "empty truth -> 0 @K");
    tr_metrics_reset(&m);
    T_ASSERT(tr_metrics_add(&m, L(2, 1), L(2, 2, 1), L(2, 4, 2, 4), err, sizeof err) == NB_OK, "%s",
             err);
    tr_metrics_get(&m, &r);
    /* sets: pred {1,2}, truth {2,4}: tp 1 fp 1 fn 1 */
    T_ASSERT(m.tp == 1 && m.fp == 1 && m.fn == 1, "tp %lld fp %lld fn %lld", (long long)m.tp,
             (long long)m.fp, (long long)m.fn);
    T_ASSERT(m.prod_fn[4] == 1 && m.prod_tp[2] == 1 && m.prod_fp[1] == 1, "per product");
    T_ASSERT(NEAR(r.r_at[0], 0.5) && NEAR(r.mean_true_size, 2), "repeated truth counts once");
    for (int j = 0; j < 5; j++) T_ASSERT(m.mark[j] == 0, "scratch cleared at %d", j);
    tr_metrics_free(&m);
    return T_PASS;
}

/* Bad input is refused with a message and leaves the accumulator unchanged. */
static int test_errors(void) {
    char err[NB_ERRLEN];
    tr_metrics m;
    T_ASSERT(tr_metrics_init(&m, 0, err, sizeof err) == NB_EINVAL, "P = 0 refused");
    T_ASSERT(tr_metrics_init(&m, 5, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_metrics_add(&m, L(0, 5), NULL, 0, L(1), err, sizeof err) == NB_EINVAL, "range");
    T_ASSERT(strstr(err, "ranked[1]") != NULL, "message names the entry: %s", err);
    T_ASSERT(tr_metrics_add(&m, L(0, 1, 0), NULL, 0, L(1), err, sizeof err) == NB_EINVAL, "dup");
    T_ASSERT(strstr(err, "ranked[2]") != NULL, "message names the repeat: %s", err);
    T_ASSERT(tr_metrics_add(&m, L(0), L(-1), L(1), err, sizeof err) == NB_EINVAL, "negative");
    T_ASSERT(tr_metrics_add_cands(&m, L(9), L(1), err, sizeof err) == NB_EINVAL, "cand range");
    T_ASSERT(m.n_users == 0 && m.tp + m.fp + m.fn == 0 && m.cand_users == 0, "unchanged");
    for (int j = 0; j < 5; j++) T_ASSERT(m.mark[j] == 0, "scratch cleared at %d", j);
    tr_metrics_free(&m);
    return T_PASS;
}

/* Candidate recall is pooled: (1 + 2) / (2 + 3), not the mean of 1/2 and 2/3. */
static int test_candidate_recall(void) {
    char err[NB_ERRLEN];
    tr_metrics m;
    T_ASSERT(tr_metrics_init(&m, 8, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_metrics_add_cands(&m, L(0, 1, 2), L(2, 7), err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_metrics_add_cands(&m, L(3, 4, 5, 4), L(3, 4, 6), err, sizeof err) == NB_OK, "%s",
             err);
    tr_metrics_result r;
    tr_metrics_get(&m, &r);
    T_ASSERT(NEAR(r.cand_recall, 3 / 5.0), "pooled recall %.17g", r.cand_recall);
    T_ASSERT(NEAR(r.mean_cand_size, 3.0) && r.cand_users == 2, "mean size %g", r.mean_cand_size);
    tr_metrics_free(&m);
    return T_PASS;
}

int main(void) {
    T_RUN(test_two_users_by_hand);
    T_RUN(test_ndcg_truth_longer_than_k);
    T_RUN(test_short_ranking_and_small_truth);
    T_RUN(test_conventions);
    T_RUN(test_errors);
    T_RUN(test_candidate_recall);
    return t_summary();
}
