/* expected_f1.h -- choose the basket that maximises the expected F1.
 *
 * Given a user's product probabilities, taken as independent Bernoulli truths, the expected
 * F1 of predicting a set S is E[2 |S ∩ T| / (|S| + |T|)]. For a fixed size k the best S is
 * the k most probable products (Ye, Chai, Lee, Chieu, ICML 2012; Jansche 2007), and the
 * expectations of all n+1 prefixes come from one O(n^2) dynamic programme (the one the
 * Kaggle Instacart winners used):
 *   with p_1 >= ... >= p_n, A_k = #true among the first k, B_k = #true among the rest,
 *   E[F1_k] = sum_a P(A_k = a) * 2a * E[1 / (k + a + B_k)],
 *   P(A_k = a) by the forward recursion over items, and g_k(s) = E[1/(s + B_k)] by the
 *   backward recursion g_{k-1}(s) = (1 - p_k) g_k(s) + p_k g_k(s + 1), g_n(s) = 1/s.
 * Empty sets follow the metrics convention (metrics.h): F1(empty, empty) = 1, so
 * E[F1_0] = prod (1 - p_i). Our data never has an empty true basket, so callers normally
 * pass allow_empty = 0 and always predict at least one product.
 * Only the top m products by probability enter the programme (O(m^2) per user); the rest are
 * never predicted and are ignored as possible false negatives (their probabilities are
 * small when m is ~200).
 */
#ifndef TR_EXPECTED_F1_H
#define TR_EXPECTED_F1_H

#include <stddef.h>
#include <stdint.h>

/* The m every caller uses: nb-train's evaluation, the ranking stage's, nb-serve, and the
 * precomputed rankings (infer/prerank.h), which must hold what the programme reads. */
#define TR_EF1_M 200

/* E[F1_k] for k = 0..n of the prefixes of p (sorted descending by the caller, each in
 * [0, 1]) into ef1[0..n]. ws: scratch of at least (n+1)*(n+1) + 2*n + 2 doubles.
 * Returns NB_OK or NB_EINVAL (p not sorted, a value outside [0, 1] or NaN). */
int tr_ef1_expectations(const double *p, int n, double *ws, double *ef1, char *err, size_t errlen);

typedef struct tr_ef1 tr_ef1;
/* A chooser for at most m products (m >= 1). Returns NB_OK and *e (caller frees with
 * tr_ef1_free) or NB_EINVAL. Not thread-safe: one per thread. */
int tr_ef1_new(tr_ef1 **e, int m, char *err, size_t errlen);
void tr_ef1_free(tr_ef1 *e);

/* Chooses the basket for one user: prob[i] is the probability of product items[i]
 * (items NULL: product i), i < n. Writes the chosen products, most probable first, into
 * out[0..*k) (out holds min(n, m) entries); *ef1 (may be NULL) receives its expected F1.
 * Ties in probability are broken by the smaller product index. allow_empty = 0 forces
 * k >= 1 when n >= 1. Returns NB_OK or NB_EINVAL (a probability outside [0, 1] or NaN). */
int tr_ef1_choose(tr_ef1 *e, const float *prob, const int32_t *items, int n, int allow_empty,
                  int32_t *out, int *k, double *ef1, char *err, size_t errlen);

#endif
