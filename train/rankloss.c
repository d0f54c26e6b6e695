/* rankloss.c -- negative sampling and the ranking term of the training loss (rankloss.h). */
#include "rankloss.h"
#include "nb_err.h"
#include "rng.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Appends the pair (p, q) to pr, growing it. */
static void add_pair(tr_pairs *pr, int64_t p, int64_t q) {
    if (pr->n == pr->cap) {
        pr->cap = pr->cap ? 2 * pr->cap : 1024;
        pr->pos = nb_xrealloc(pr->pos, pr->cap * sizeof(int64_t));
        pr->neg = nb_xrealloc(pr->neg, pr->cap * sizeof(int64_t));
    }
    pr->pos[pr->n] = p;
    pr->neg[pr->n] = q;
    pr->n++;
}

size_t tr_neg_sample(tr_pairs *pr, const nn_real *targets, int B, int P, int n_neg, uint64_t seed,
                     int epoch, long first_sample) {
    pr->n = 0;
    /* a stream of its own: the constant keeps it apart from the other users of --seed */
    uint64_t base = nb_hash64(seed ^ 0x6e65672d73616d70ull);
    for (int b = 0; b < B; b++) {
        const nn_real *y = targets + (size_t)b * P;
        nb_rng r;
        nb_rng_seed(&r, nb_hash64(base ^ nb_hash64(((uint64_t)(uint32_t)epoch << 40) ^
                                                   (uint64_t)(first_sample + b))));
        for (int p = 0; p < P; p++) {
            if (y[p] == 0) continue;
            for (int k = 0; k < n_neg; k++) {
                for (int t = 0; t < TR_NEG_TRIES; t++) {
                    int q = (int)nb_rng_below(&r, (uint64_t)P);
                    if (y[q] != 0) continue;
                    add_pair(pr, (int64_t)b * P + p, (int64_t)b * P + q);
                    break;
                }
            }
        }
    }
    return pr->n;
}

void tr_pairs_free(tr_pairs *pr) {
    free(pr->pos);
    free(pr->neg);
    memset(pr, 0, sizeof *pr);
}

double tr_rank_apply(tr_pairs *pr, nn_model *m, const nn_real *targets, int B, const tr_flags *f,
                     int epoch, long first_sample, double bce) {
    if (f->loss == TR_LOSS_BCE) return bce;
    int P = m->cfg.n_products;
    nn_real *dl = nn_model_dlogits(m);
    assert(dl && m->logits); /* a training forward with targets over the full head */
    size_t n = tr_neg_sample(pr, targets, B, P, f->negatives, (uint64_t)f->seed, epoch,
                             first_sample);
    double w = f->loss == TR_LOSS_BPR ? 1 : f->rank_weight;
    if (f->loss == TR_LOSS_BPR) memset(dl, 0, (size_t)B * P * sizeof(nn_real));
    double r;
    if (f->loss == TR_LOSS_BCE_MARGIN) {
        r = nn_margin_forward(m->logits, pr->pos, pr->neg, n, f->margin);
        nn_margin_backward(dl, m->logits, pr->pos, pr->neg, n, f->margin, w);
    } else {
        r = nn_bpr_forward(m->logits, pr->pos, pr->neg, n);
        nn_bpr_backward(dl, m->logits, pr->pos, pr->neg, n, w);
    }
    return f->loss == TR_LOSS_BPR ? r : bce + w * r;
}
