/* topk.h -- selecting the best of a ranking without sorting all of it, for evaluation,
 * scoring and serving. One order everywhere: higher score first, ties by lower product
 * index (a strict total order when the indices are distinct, so every selection is the
 * prefix of the full sort). Two forms of the one selection: tr_topk for a small k over
 * scores addressed by index (one insertion pass, almost every element fails its first
 * comparison), tr_rank_prefix over (score, index) pairs for any prefix length.
 */
#ifndef TR_TOPK_H
#define TR_TOPK_H

#include <stdint.h>

/* Writes the indices of the k highest of score[idx[i]] (idx NULL: of score[0..n)) into out,
 * best first, ties by lower product index. Returns how many (min(k, n)). */
int tr_topk(const float *score, const int32_t *idx, int n, int k, int32_t *out);

/* A score and its product index. */
typedef struct {
    float p;
    int32_t idx;
} tr_ranked;

/* Reorders rk[0..n) so that rk[0..m) are the first min(m, n) in the order above, sorted;
 * the rest is left in some order. The indices must be distinct. Quickselect (median of
 * three) narrows to the prefix, then only the prefix is sorted. Returns min(m, n). */
int tr_rank_prefix(tr_ranked *rk, int n, int m);

#endif
