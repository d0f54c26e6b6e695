/* topk.h -- the one selection of the K best scores (no full sort), shared by evaluation,
 * scoring and serving. Order: higher score first, ties by lower product index.
 */
#ifndef TR_TOPK_H
#define TR_TOPK_H

#include <stdint.h>

/* Writes the indices of the k highest of score[idx[i]] (idx NULL: of score[0..n)) into out,
 * best first, ties by lower product index. Returns how many (min(k, n)). */
int tr_topk(const float *score, const int32_t *idx, int n, int k, int32_t *out);

#endif
