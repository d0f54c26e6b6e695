/* prerank.h -- a user's ranking computed ahead of time, as stored in user_rankings.
 *
 * With a ranking stage one request costs ~1.3 ms of CPU (the trees over ~130 candidates,
 * their features, the model), five times the model alone. nb-train therefore ranks every
 * user with history once, with the functions nb-serve uses on the rows nb-serve reads
 * (train/prerank_build.h), and stores the result; nb-serve answers from it and ranks
 * live only the users without a row: users added after training, and users whose row
 * POST /orders deleted with the order that made it stale.
 *
 * What is kept: the first n of the user's n_total ranked candidates in the serving order
 * (score descending, ties by lower product index: infer/topk.h), each with its score and
 * its explanation (explain.h tr_why), where
 *     n = min(n_total, max(TR_EF1_M, n_above)),   n_above = scores >= the basket threshold.
 * That is every entry a response can read: top_k (k <= 100 < TR_EF1_M), the threshold
 * basket (the n_above first), the expected-F1 programme (the first min(n_total, TR_EF1_M)).
 *
 * Encoding, little-endian: "NBR1", u32 n_total, u32 n, then n entries of 21 bytes:
 * i32 product index, f32 score (bits), u8 why kind, i32 why a, i32 why b, i32 why c.
 */
#ifndef TR_PRERANK_H
#define TR_PRERANK_H

#include <stddef.h>
#include <stdint.h>

#include "expected_f1.h"
#include "explain.h"
#include "rkfeat.h"
#include "topk.h"

#define TR_PRERANK_ENTRY 21 /* bytes per entry */
#define TR_PRERANK_HEAD 12  /* magic, n_total, n */

typedef struct {
    int32_t idx; /* product index (catalogue order) */
    float score; /* what /recommend prints */
    tr_why why;
} tr_prerank_entry;

/* A user's stored ranking from the ranking stage's result for that user (rkserve.h
 * tr_rk_thread_rank): ru's candidates with their scores score[ru->n] and positions pos
 * (product -> position in ru), f the user's features (repfeat.h tr_features_user, for the
 * explanations), x the explainer, threshold the basket's. Writes the kept entries, in the
 * serving order, into e; rank is scratch of ru->n entries. Returns how many were kept
 * (tr_prerank_keep). The one place where nb-train (train/prerank_build.h) and nb-serve
 * (after POST /orders) build a row. */
int tr_prerank_from_stage(tr_prerank_entry *e, tr_ranked *rank, const tr_rk_user *ru,
                          const float *score, const int32_t *pos, double threshold,
                          const tr_explainer *x, const tr_features *f);

/* How many of n_total ranked entries, n_above of them at or above the threshold, are
 * kept (the formula above). */
int tr_prerank_keep(int n_total, int n_above);

/* Encodes e[0..n) of n_total into a new buffer (*out, caller frees; *len bytes). */
void tr_prerank_encode(const tr_prerank_entry *e, int n, int n_total, uint8_t **out, size_t *len);

/* Decodes buf[len] into e (capacity cap entries), checking everything: magic, sizes
 * (n <= n_total, n <= cap, len exact), product indices in [0, n_products), distinct
 * entries in the serving order, finite scores, why kinds known. Returns NB_OK with *n and
 * *n_total, or NB_EFORMAT with the first fault in err. */
int tr_prerank_decode(const uint8_t *buf, size_t len, int n_products, tr_prerank_entry *e, int cap,
                      int *n, int *n_total, char *err, size_t errlen);

#endif
