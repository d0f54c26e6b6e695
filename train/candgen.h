/* candgen.h -- every user's candidate set, computed from a trained model's embeddings.
 *
 * A user's candidate set is
 *   1. every product the user has bought in the history [user start, hist_end[u]) (all of
 *      them, even when there are more than n_top), then
 *   2. filled up to n_top products with the products whose embedding has the highest cosine
 *      similarity to the user's profile vector: the purchase-frequency-weighted mean of the
 *      embeddings of the products in that history (every item occurrence counts once).
 * Ties in cosine are broken by the lower product index, so the result is a deterministic
 * function of (h, hist_end, emb, n_top), independent of the thread count.
 * A user with no item in the history (cold start) gets the n_top most popular products
 * (item counts over every user's history before hist_end; ties: lower index).
 * Sets are stored sorted by ascending product index (the order storage/candidates.h encodes).
 *
 * The default history end of a user (hist_end == NULL) is the user's first order whose
 * eval_set is not ST_PRIOR (the "next order": train or test), or the user's end when every
 * order is prior. So one table serves both the evaluation (its targets are outside the
 * history) and nb-serve: a product first bought in a user's train order (or in an order
 * added by POST /orders since) is not guaranteed a place in the table, so nb-serve and
 * --score-user add the user's own products to the stored set per request (infer/ownprod.h).
 *
 * Speed: embeddings are L2-normalised once; profiles are computed per block of 32 users and
 * scored against all products with one sgemm per block; each user's top scores are then
 * found by a quickselect on a sample (threshold estimate), one filtering pass over the row
 * and a quickselect on the ~1.15 * n_top survivors -- no sort; blocks are spread over
 * n_threads threads (OpenBLAS itself is held at one thread meanwhile).
 */
#ifndef TR_CANDGEN_H
#define TR_CANDGEN_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define TR_CANDS_DEFAULT 3000

/* The table in memory, in the stored encoding of storage/candidates.h (~1 byte per
 * candidate: ~620 MB at full Instacart scale, 206k users x 3,000, where int32 indices would
 * take 2.5 GB and set the training job's peak memory); tr_cands_user decodes one set. */
typedef struct {
    int n_users;    /* == h->n_users of the history it was built from */
    int n_products; /* P */
    int64_t *off;   /* [n_users + 1]: user u's encoded set is enc[off[u] .. off[u+1]) */
    uint8_t *enc;   /* st_cand_encode_buf's bytes, user after user */
    int32_t *count; /* [n_users]: the size of each set */
    int64_t n_total; /* the sum of count */
    int max_count;  /* the largest set */
} tr_cands;

/* The default history end of user u (see above): an order index into h's order arrays. */
int64_t tr_cands_default_end(const st_history *h, int u);

/* Builds every user's candidate set into c.
 *   emb:       [n_products, E] row-major product embeddings (the model's m->p.emb);
 *              n_products must equal h->n_products.
 *   hist_end:  [h->n_users] per-user history end (order index), or NULL for the default.
 *   n_top:     candidates per user (>= 1; capped at n_products).
 *   n_threads: worker threads (>= 1).
 * Returns NB_OK or NB_EINVAL (bad argument, message names it). c owns its
 * arrays afterwards; free them with tr_cands_free (also safe on a zeroed c). */
int tr_cands_build(tr_cands *c, const st_history *h, const float *emb, int n_products, int E,
                   const int64_t *hist_end, int n_top, int n_threads, char *err, size_t errlen);
void tr_cands_free(tr_cands *c);

/* User u's set, decoded into buf (the caller's, at least c->max_count entries): returns buf,
 * the indices ascending, and their count in *n. */
const int32_t *tr_cands_user(const tr_cands *c, int u, int32_t *buf, int *n);

/* Writes c into the `candidates` table for model_id, replacing any rows of that model.
 * MUST be called inside a transaction that the caller opened (BEGIN) and will COMMIT or
 * ROLLBACK, the same one in which the caller inserts/replaces the `models` row, so that a
 * model and its candidates appear or disappear together: the function never begins or ends a
 * transaction and returns NB_EINVAL when the connection is in autocommit mode.
 * user_ids come from h->user_ids (the history c was built from).
 * Returns NB_OK, NB_EINVAL, NB_EMISMATCH (c not built from h) or NB_EDB
 * (message names the user). On error the caller should ROLLBACK. */
int tr_cands_write(sqlite3 *db, int64_t model_id, const tr_cands *c, const st_history *h, char *err,
                   size_t errlen);

/* Candidate recall: the share of target items that are inside the candidate set.
 * For each user with target[u] >= 0 (an order index in the user's range with items, e.g.
 * the eval_set=train order of the users in a validation split; target == NULL means each
 * user's first ST_TRAIN order, if any) the target's distinct products are looked up in the
 * user's set.
 *   micro = sum hits / sum distinct target products;
 *   macro = mean over users of (hits / distinct target products). */
typedef struct {
    int n_users;       /* users with a non-empty target */
    int64_t n_targets; /* distinct target products, summed over users */
    int64_t n_hits;    /* of which in the candidate set */
    double micro, macro;
    double mean_size; /* mean candidate-set size of those users */
} tr_cand_recall;
/* Returns NB_OK or NB_EMISMATCH (c not built from h). */
int tr_cands_recall(const tr_cands *c, const st_history *h, const int64_t *target,
                    tr_cand_recall *r, char *err, size_t errlen);

#endif
