/* baselines.h -- the non-neural next-basket recommenders the model is compared against.
 *
 * Each scores user u of an st_history for the order after the history
 * [user_order_off[u], hist_end) and writes a ranked list: out[0..*n_out) product indices,
 * best first, with score[] non-increasing alongside, so the result feeds tr_metrics_add and
 * a threshold (score >= t) gives the predicted basket. Only orders with items count as
 * history (an ST_TEST order has none). A product that appears several times in one order
 * counts once for that order.
 *
 *   G-TopFreq  the globally most bought products; score = share of the prior orders that
 *              contain the product (tr_popularity).
 *   P-TopFreq  the user's own products ranked by the share of the user's history orders that
 *              contain them; ties broken by recency (the product bought in a later order
 *              first), then by product index. The list is filled up with the most popular
 *              products the user never bought, with score 0, so the list stays sorted by score
 *              and no threshold > 0 ever selects a fill product.
 *   TIFU-KNN   Hu et al., SIGIR 2020. See tr_tifu_* below.
 *
 * Global popularity is counted over all ST_PRIOR orders of h. In Instacart-style data every
 * user's prior orders precede that user's train/test target order, so no target basket
 * leaks into it; the synthetic and Ta-Feng imports follow the same layout. (A target that is
 * itself marked ST_PRIOR would leak: the caller must not evaluate on such orders.)
 *
 * Ties everywhere are broken by ascending product index, so results are deterministic.
 * Functions that only read a tr_popularity / tr_tifu may run concurrently on different
 * workspaces (tr_bl_ws); a workspace is used by one thread at a time.
 */
#ifndef TR_BASELINES_H
#define TR_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

/* ---- global popularity ---------------------------------------------------------------- */
typedef struct {
    int n_products;
    int64_t n_orders; /* ST_PRIOR orders with items that were counted */
    float *share;     /* [n_products] share of those orders containing the product */
    int32_t *rank;    /* [n_products] product indices by share descending, then index */
} tr_popularity;

/* Counts popularity over the ST_PRIOR orders of h. Returns NB_OK or NB_EINVAL
 * (h has no products). pop owns its arrays afterwards; free with tr_popularity_free. */
int tr_popularity_build(tr_popularity *pop, const st_history *h, char *err, size_t errlen);
void tr_popularity_free(tr_popularity *pop);

/* ---- per-thread scratch space --------------------------------------------------------- */
typedef struct tr_bl_ws tr_bl_ws;
/* Returns NB_OK and *ws for n_products (caller frees with tr_bl_ws_free), or NB_EINVAL. */
int tr_bl_ws_new(tr_bl_ws **ws, int n_products, char *err, size_t errlen);
void tr_bl_ws_free(tr_bl_ws *ws);

/* ---- G-TopFreq / P-TopFreq ------------------------------------------------------------ */
/* Writes the min(n, P) most popular products. Cannot fail. */
void tr_gtopfreq(const tr_popularity *pop, int n, int32_t *out, float *score, int *n_out);

/* P-TopFreq for user u, history [user start, hist_end). Writes min(n, P) products.
 * Returns NB_OK, or NB_EINVAL (u or hist_end out of range, n < 0). */
int tr_ptopfreq(const tr_popularity *pop, const st_history *h, int u, int64_t hist_end,
                tr_bl_ws *ws, int n, int32_t *out, float *score, int *n_out, char *err,
                size_t errlen);

/* ---- TIFU-KNN -------------------------------------------------------------------------
 * User vector (as we read the paper): the user's history baskets b_1..b_N (oldest first,
 * binary product vectors) are split into groups of m consecutive baskets counted from the
 * most recent, so only the oldest group can hold fewer than m. A group holding baskets
 * c_1..c_s (oldest first) has vector g = (1/s) * sum_i r_b^(s-i) c_i; with groups
 * g_1..g_G (oldest first) the user vector is u = (1/G) * sum_j r_g^(G-j) g_j.
 * (The authors' released code instead splits into a fixed number of groups and decays by a
 * basket's global position; we follow the paper's equations and the grouping above.)
 * Neighbours: the k reference users nearest to u by Euclidean distance between the sparse
 * user vectors (ties by reference order), the query user itself excluded when it is in the
 * reference set. Score = alpha * u + (1 - alpha) * mean of the neighbours' vectors (divided
 * by the number of neighbours found, <= k). Products with score > 0 are ranked by score
 * (ties: product index), then the list is filled with popular products at score 0. */
typedef struct {
    double r_b;   /* within-group decay, 0.9 */
    double r_g;   /* group decay, 0.7 */
    int m;        /* group size, 3 */
    int k;        /* neighbours, 300 */
    double alpha; /* weight of the user's own vector, 0.9 */
} tr_tifu_params;

/* The defaults above (the paper's settings for these data sets as given in our brief). */
void tr_tifu_defaults(tr_tifu_params *p);

/* The user vector of u over history [user start, hist_end) as sorted (idx, val) pairs:
 * idx/val must hold P entries (or at least the number of distinct products bought);
 * *nnz receives the count. Returns NB_OK or NB_EINVAL (bad u / hist_end / params). */
int tr_tifu_user_vector(const st_history *h, int u, int64_t hist_end, const tr_tifu_params *p,
                        tr_bl_ws *ws, int32_t *idx, float *val, int *nnz, char *err, size_t errlen);

typedef struct tr_tifu tr_tifu;
/* Builds the reference set: users ref_users[0..n_ref) of h with histories
 * [user start, ref_hist_end[i]) (ref_hist_end NULL: each user's whole range), their vectors
 * and an inverted index product -> reference users. Reads h only during the call.
 * Returns NB_OK and *t (caller frees with tr_tifu_free) or NB_EINVAL. */
int tr_tifu_build(tr_tifu **t, const st_history *h, const int32_t *ref_users,
                  const int64_t *ref_hist_end, int n_ref, const tr_tifu_params *p, char *err,
                  size_t errlen);
void tr_tifu_free(tr_tifu *t);

/* TIFU-KNN scores for user u, history [user start, hist_end), from reference set t (built
 * over the same catalogue) and popularity pop for the fill. Writes min(n, P) products.
 * Returns NB_OK or NB_EINVAL (u / hist_end out of range, catalogue mismatch). */
int tr_tifu_score(const tr_tifu *t, const tr_popularity *pop, const st_history *h, int u,
                  int64_t hist_end, tr_bl_ws *ws, int n, int32_t *out, float *score, int *n_out,
                  char *err, size_t errlen);

#endif
