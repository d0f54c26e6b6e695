/* ownprod.h -- a stored candidate set completed with the user's own products.
 *
 * The candidate table (train/candgen.h) is built at training time from each user's history
 * before the 'train' order, so a product the user bought later -- in that order, or in an
 * order added since by nb-serve's POST /orders -- need not be in it. Serving (nb-serve and
 * nb-train --score-user, which must agree) therefore scores the stored set plus every
 * product of the user's history, so that a product just bought can be recommended again.
 * (The ranking stage takes the user's own products from the history itself.)
 */
#ifndef TR_OWNPROD_H
#define TR_OWNPROD_H

#include <stdint.h>

#include "history.h"

/* Appends to cand[0..n_cand) every product of user u's orders before hist_end that is not
 * in it yet, each once, in history order; cap is cand's capacity (>= the catalogue size is
 * always enough). mark [h->n_products] is scratch that must be all zero on entry and is all
 * zero again on return. Returns the new count (<= cap: products past cap are left out). */
int tr_cands_add_own(const st_history *h, int u, int64_t hist_end, int32_t *cand, int n_cand,
                     int cap, uint8_t *mark);

#endif
