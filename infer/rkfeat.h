/* rkfeat.h -- the ranking stage's candidates and per-(user, product) features (issue 10).
 *
 * A user's ranking candidates, for the order after the history [user start, hist_end):
 *   own   every product the user bought in the history (orders with items);
 *   nbr   the TR_RK_NBR_TOP products the user never bought with the highest TIFU-KNN
 *         neighbour part (mean of the k nearest users' vectors; computed by the caller,
 *         precomputed per user by nb-train for serving), score > 0, ties by lower index;
 *   cos   the TR_RK_COS_TOP products the user never bought, not already in nbr, with the
 *         highest CNN->GRU probability among the user's cosine candidate set (candgen.h);
 *         absent when no model probabilities are given.
 * Listed own first (ascending product index), then nbr (by neighbour score), then cos (by
 * probability). Everything is a deterministic function of its inputs.
 *
 * One row of TR_RK_NF floats per candidate, NAN where a value does not exist (XGBoost's
 * "missing"). With n = the user's orders with items in the history, numbered 0..n-1 oldest
 * first, x_i = 1 if order i holds the product:
 *   share          sum x_i / n
 *   dshare90/70/50 decayed share sum r^(n-1-i) x_i / sum r^(n-1-i), r = 0.9, 0.7, 0.5
 *   last1/3/5      orders among the last 1 / 3 / 5 holding it (counts)
 *   count          sum x_i
 *   since          orders after the last one holding it (n-1-last); NAN if never bought
 *   days_since     days from the last order holding it to the history's last order (sum of
 *                  days_since_prior of the later orders); NAN if never bought or any of the
 *                  user's days is unknown (NULL beyond the first order)
 *   gap            mean orders between purchases (last-first)/(count-1); NAN if count < 2
 *   due            since / gap (NAN if gap is NAN or 0)
 *   gap_days, due_days   the same in days (NAN when days are unknown)
 *   share_since_first    count / (n - first)
 *   u_orders, u_basket (mean distinct products per order), u_reorder (share of history
 *   items whose product was in an earlier history order), u_distinct (products bought),
 *   u_days (mean days between the user's orders; NAN unknown)
 *   p_pop, p_reorder, p_rebuy   product statistics (tr_rk_pstats; out of fold in training)
 *   aisle_share, dept_share     share of the user's orders holding a product of its aisle /
 *                               department
 *   tifu_own       TIFU-KNN's personal part: the user's vector (baselines.h definition,
 *                  with the tr_rk_user's m, r_b, r_g: tr_rk_tifu) at the product
 *   tifu_nbr       TIFU-KNN's neighbour part at the product (0 when not given; the caller
 *                  computes it with the same parameters and k)
 *   src_own, src_nbr, src_cos   1/0: the sources that proposed the candidate
 *   model          the CNN->GRU model's calibrated probability (with its repeat term);
 *                  NAN when not given (the ranker "without the model" never sees it)
 *   tifu           TIFU-KNN's score: alpha * tifu_own + (1 - alpha) * tifu_nbr, with the
 *                  tr_rk_user's alpha (the trees are boosted from it: infer/ranker.h)
 *   tifu_rank      its rank among the user's candidates, 0 = highest (ties: lower position
 *                  in the candidate list first)
 * The last two were added after rankers of 31 features were registered; those read the
 * first 31 values of each row (tr_ranker_predict), which are unchanged.
 */
#ifndef TR_RKFEAT_H
#define TR_RKFEAT_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define TR_RK_NBR_TOP 50
#define TR_RK_COS_TOP 20

enum { TR_RK_SRC_OWN = 1, TR_RK_SRC_NBR = 2, TR_RK_SRC_COS = 4 };

enum {
    TR_RK_SHARE,
    TR_RK_DSHARE90,
    TR_RK_DSHARE70,
    TR_RK_DSHARE50,
    TR_RK_LAST1,
    TR_RK_LAST3,
    TR_RK_LAST5,
    TR_RK_COUNT,
    TR_RK_SINCE,
    TR_RK_DAYS_SINCE,
    TR_RK_GAP,
    TR_RK_DUE,
    TR_RK_GAP_DAYS,
    TR_RK_DUE_DAYS,
    TR_RK_SHARE_SINCE_FIRST,
    TR_RK_U_ORDERS,
    TR_RK_U_BASKET,
    TR_RK_U_REORDER,
    TR_RK_U_DISTINCT,
    TR_RK_U_DAYS,
    TR_RK_P_POP,
    TR_RK_P_REORDER,
    TR_RK_P_REBUY,
    TR_RK_AISLE_SHARE,
    TR_RK_DEPT_SHARE,
    TR_RK_TIFU_OWN,
    TR_RK_TIFU_NBR,
    TR_RK_SRC_OWN_F,
    TR_RK_SRC_NBR_F,
    TR_RK_SRC_COS_F,
    TR_RK_MODEL,
    TR_RK_TIFU,
    TR_RK_TIFU_RANK,
    TR_RK_NF
};
extern const char *const tr_rk_feat_names[TR_RK_NF];

/* Product statistics over a set of users' orders with items:
 *   pop     share of those orders holding the product
 *   reorder share of the product's items whose user bought it in an earlier order
 *   rebuy   share of the product's buyers who bought it in >= 2 orders
 * Every value is a ratio, so statistics over 4/5 of the users (out of fold) and over all of
 * them (serving) are on the same scale. */
typedef struct {
    int n_products;
    float *pop, *reorder, *rebuy; /* [n_products] */
} tr_rk_pstats;
void tr_rk_pstats_free(tr_rk_pstats *s);

/* Raw counts behind tr_rk_pstats, additive over users (for out-of-fold differences). */
typedef struct {
    int n_products;
    int64_t n_orders;
    int64_t *orders_with, *items, *reorders, *buyers, *rebuyers; /* [n_products] */
} tr_rk_counts;
/* Returns NB_OK or NB_EINVAL (n_products <= 0). Free with tr_rk_counts_free. */
int tr_rk_counts_init(tr_rk_counts *c, int n_products, char *err, size_t errlen);
void tr_rk_counts_free(tr_rk_counts *c);
/* Adds user u's orders with items in [user start, end) to c (mark: [P] scratch, all zero,
 * left zero; cnt: [P] int32 scratch, all zero, left zero). */
void tr_rk_counts_add_user(tr_rk_counts *c, const st_history *h, int u, int64_t end, uint8_t *mark,
                           int32_t *cnt);
/* s = stats of (all - minus) (minus may be NULL). Returns NB_OK or NB_EMISMATCH (sizes). s
 * owns its arrays (free with tr_rk_pstats_free). */
int tr_rk_pstats_from(tr_rk_pstats *s, const tr_rk_counts *all, const tr_rk_counts *minus,
                      char *err, size_t errlen);

/* TIFU-KNN's parameters behind the tifu_own / tifu_nbr features (baselines.h tr_tifu_params):
 * nb-train tunes them on validation users and stores them with the ranking stage
 * (storage/rkstore.h), so that serving computes the features the trees were trained on.
 * k only shapes the neighbour part, which the caller computes (kept here to be stored);
 * alpha only weighs the two parts when the tuned TIFU-KNN ships (infer/rkscore.h). */
typedef struct {
    int m, k;
    double r_b, r_g, alpha;
} tr_rk_tifu;
/* The defaults of baselines.h's tr_tifu_defaults: m 3, k 300, r_b 0.9, r_g 0.7, alpha 0.9
 * (the parameters of every ranking stage registered before they were stored). */
void tr_rk_tifu_defaults(tr_rk_tifu *t);

/* One user's candidates and feature rows (reused between calls). */
typedef struct {
    int n;           /* candidates */
    int32_t *cand;   /* [n] product indices */
    uint8_t *src;    /* [n] TR_RK_SRC_* bits */
    float *x;        /* [n, TR_RK_NF] row-major */
    int n_own;       /* the first n_own candidates are the user's own products */
    tr_rk_tifu tifu; /* tr_rk_tifu_defaults after tr_rk_user_init; the caller may set it */
    /* private scratch */
    int P, cap;
    void *priv;
} tr_rk_user;

/* Prepares r for the catalogue of h (products, aisles, departments; h is read only during the
 * call), with r->tifu the default parameters. Returns NB_OK or NB_EINVAL (no products). Free with tr_rk_user_free (safe on a
 * zeroed r). One per thread. */
int tr_rk_user_init(tr_rk_user *r, const st_history *h, char *err, size_t errlen);
void tr_rk_user_free(tr_rk_user *r);

/* Fills r with user u's candidates and features for the order after [start, hist_end).
 *   ps        product statistics (n_products must match h)
 *   nbr_idx/nbr_val/n_nbr  the neighbour part as sparse (product, score) pairs, any order,
 *             duplicates not allowed (n_nbr 0: no neighbour source, tifu_nbr 0)
 *   cos/n_cos the user's cosine candidate set (any order; n_cos 0: no cos source)
 *   prob      [P] CNN->GRU probabilities, read only at cos-set members and at candidates;
 *             NULL: no cos source and the model feature NAN
 *   with_unseen  0: own products only (the ablation "without unseen candidates")
 * A user without history gets n = 0. Returns NB_OK or NB_EINVAL (u / hist_end / index out
 * of range, sizes differ, r->tifu.m < 1 or r_b / r_g not in (0, 1]). */
int tr_rk_user_build(tr_rk_user *r, const st_history *h, int u, int64_t hist_end,
                     const tr_rk_pstats *ps, const int32_t *nbr_idx, const float *nbr_val,
                     int n_nbr, const int32_t *cos, int n_cos, const float *prob, int with_unseen,
                     char *err, size_t errlen);

/* The products whose model probability tr_rk_user_build may read for user u (its own
 * products before hist_end, nbr_idx, cos), each once, into out (capacity n_products);
 * returns how many. Serving scores only these (bit for bit the values of a full scoring). */
int tr_rk_model_products(tr_rk_user *r, const st_history *h, int u, int64_t hist_end,
                         const int32_t *nbr_idx, int n_nbr, const int32_t *cos, int n_cos,
                         int32_t *out);

#endif
