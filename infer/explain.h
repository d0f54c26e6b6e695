/* explain.h -- a short human-readable reason for each recommended product.
 *
 * Built from the same per-user counts as the repeat features (infer/repfeat.h), so the
 * numbers in the text are the user's history:
 *   bought in >= 3 of the last 5 orders:  "bought in 4 of your last 5 orders"
 *                                         (n < 5 orders: "bought in 3 of your 3 orders")
 *   otherwise, bought before:             "you buy this in 40% of your orders (8 of 20);
 *                                          last bought 2 orders ago"
 *                                         ("... last bought in your last order")
 *   never bought:                         "new for you: often bought with <name>"
 *     where <name> is, among the user's (up to) 10 most frequently bought products (ties:
 *     lower index), the one whose model embedding is most cosine-similar to the new
 *     product's (ties: the more frequent). Products whose embeddings lie close are the
 *     ones the model learned to see in the same baskets. Users with no history:
 *     "popular with other shoppers".
 */
#ifndef TR_EXPLAIN_H
#define TR_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "names.h"
#include "repfeat.h"

typedef struct {
    int n_products;
    int E;
    const float *emb;      /* [n_products, E] the model's embeddings (borrowed) */
    const tr_names *names; /* borrowed; NULL -> "product #<index>" */
} tr_explainer;

/* An explanation as data: which text and its numbers. What nb-train stores with a
 * precomputed ranking (infer/prerank.h), so that nb-serve writes the same text without the
 * user's features; the names are looked up only when the text is written. */
enum {
    TR_WHY_LAST5 = 1,  /* a = bought in a of the last min(5, b) orders, b = orders */
    TR_WHY_SHARE = 2,  /* a = orders with it, b = orders, c = orders since the last one */
    TR_WHY_NEW = 3,    /* a = the product index to cite ("often bought with") */
    TR_WHY_POPULAR = 4, /* a user without history */
    TR_WHY_NEIGHBOURS = 5 /* proposed by similar users (infer/rkserve.h) */
};
typedef struct {
    int32_t kind; /* TR_WHY_* */
    int32_t a, b, c;
} tr_why;

/* Fills *w with the explanation of product p for the user whose features f holds (the
 * last tr_features_user call). Returns 0, or -1 if p is out of range (*w zeroed). */
int tr_why_of(tr_why *w, const tr_explainer *x, const tr_features *f, int32_t p);

/* Writes w's text into out[outlen] (always NUL-terminated, truncated if needed); x gives
 * the names (x->names NULL: "product #<index>"). Returns the length written (like
 * snprintf, capped at outlen - 1), or -1 for an unknown kind or a product index out of
 * range (out empty). */
int tr_why_text(char *out, size_t outlen, const tr_explainer *x, const tr_why *w);

/* tr_why_of then tr_why_text: the explanation of product p into out[outlen]. Returns as
 * tr_why_text, -1 if p is out of range. */
int tr_explain(char *out, size_t outlen, const tr_explainer *x, const tr_features *f, int32_t p);

#endif
