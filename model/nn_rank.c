/* nn_rank.c -- pairwise ranking losses over (positive, negative) pairs of logits: BPR and
 * margin ranking (nn.h). They are added to the BCE term by the training loop (train/loop.c,
 * --loss); the pairs come from train/negsample.c.
 *
 * Both are means over the pairs, like PyTorch's reduction='mean' (the parity fixture uses
 * -logsigmoid and F.margin_ranking_loss). Sums are accumulated in double in both builds, so
 * the float build's loss does not depend on the pair order beyond float rounding of terms.
 */
#include "nn.h"

#include <math.h>

/* softplus(-d) = log(1 + exp(-d)) = log1p(exp(-|d|)) + max(-d, 0): no overflow for any d,
 * and no cancellation (a sum of non-negative terms). */
static double softplus_neg(double d) { return log1p(exp(-fabs(d))) + (d < 0 ? -d : 0); }

/* sigmoid(-d) without overflow. */
static double sigmoid_neg(double d) {
    double e = exp(-fabs(d));
    return d >= 0 ? e / (1 + e) : 1 / (1 + e);
}

double nn_bpr_forward(const nn_real *logits, const int64_t *pos, const int64_t *neg, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += softplus_neg((double)logits[pos[i]] - logits[neg[i]]);
    return n ? s / (double)n : 0;
}

void nn_bpr_backward(nn_real *dlogits, const nn_real *logits, const int64_t *pos,
                     const int64_t *neg, size_t n, double scale) {
    double w = n ? scale / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        /* d softplus(-d) / dd = -sigmoid(-d); d = s+ - s- */
        double g = w * sigmoid_neg((double)logits[pos[i]] - logits[neg[i]]);
        dlogits[pos[i]] -= (nn_real)g;
        dlogits[neg[i]] += (nn_real)g;
    }
}

double nn_margin_forward(const nn_real *logits, const int64_t *pos, const int64_t *neg, size_t n,
                         double margin) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double v = margin - ((double)logits[pos[i]] - logits[neg[i]]);
        s += v > 0 ? v : 0;
    }
    return n ? s / (double)n : 0;
}

void nn_margin_backward(nn_real *dlogits, const nn_real *logits, const int64_t *pos,
                        const int64_t *neg, size_t n, double margin, double scale) {
    double w = n ? scale / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        /* the hinge is active (gradient -1 on s+, +1 on s-) only strictly inside the margin:
         * at v == 0 the gradient is 0, as for PyTorch's clamp_min/relu at 0 */
        if (margin - ((double)logits[pos[i]] - logits[neg[i]]) > 0) {
            dlogits[pos[i]] -= (nn_real)w;
            dlogits[neg[i]] += (nn_real)w;
        }
    }
}
