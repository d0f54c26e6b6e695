/* nn_optim.c -- BCEWithLogits (pos_weight), Adam, gradient norm. */
#include "nn.h"

#include <math.h>

#ifdef NN_DOUBLE
#define NN_EXP exp
#define NN_LOG1P log1p
#define NN_SQRT sqrt
#else
#define NN_EXP expf
#define NN_LOG1P log1pf
#define NN_SQRT sqrtf
#endif

/* PyTorch's stable form: with lw = 1 + (pw-1) y,
 *   l = (1-y) x + lw (log1p(exp(-|x|)) + max(-x, 0)),
 * finite for any x. Returns the mean over n (accumulated in double); n == 0 gives 0. */
double nn_bce_forward(const nn_real *logits, const nn_real *targets, size_t n, float pos_weight) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        nn_real x = logits[i], y = targets[i];
        nn_real lw = 1 + ((nn_real)pos_weight - 1) * y;
        nn_real sp = NN_LOG1P(NN_EXP(-(x < 0 ? -x : x))) + (x < 0 ? -x : 0);
        s += (double)((1 - y) * x + lw * sp);
    }
    return n ? s / (double)n : 0;
}

/* dlogits += (sigmoid(x) * lw - pw*y) / n, with the sigmoid computed without overflow. */
void nn_bce_backward(nn_real *dlogits, const nn_real *logits, const nn_real *targets, size_t n,
                     float pos_weight) {
    nn_real pw = pos_weight, inv = (nn_real)(1.0 / (double)n);
    for (size_t i = 0; i < n; i++) {
        nn_real x = logits[i], y = targets[i];
        nn_real e = NN_EXP(-(x < 0 ? -x : x));
        nn_real s = x >= 0 ? 1 / (1 + e) : e / (1 + e);
        dlogits[i] += (s * (1 + (pw - 1) * y) - pw * y) * inv;
    }
}

/* Both at once, one pass over the logits (the training hot path with a 49,688-wide head):
 * dlogits = (not +=) the gradient, returns the mean loss. */
double nn_bce_forward_backward(nn_real *dlogits, const nn_real *logits, const nn_real *targets,
                               size_t n, float pos_weight) {
    nn_real pw = pos_weight, inv = (nn_real)(1.0 / (double)n);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        nn_real x = logits[i], y = targets[i];
        nn_real ax = x < 0 ? -x : x;
        nn_real e = NN_EXP(-ax);
        nn_real lw = 1 + (pw - 1) * y;
        nn_real sig = (x >= 0 ? 1 : e) / (1 + e);
        s += (double)((1 - y) * x + lw * (NN_LOG1P(e) + (x < 0 ? ax : 0)));
        dlogits[i] = (sig * lw - pw * y) * inv;
    }
    return n ? s / (double)n : 0;
}

/* torch.optim.Adam (no weight decay, no amsgrad), step t >= 1, in the same operation order:
 * denom = sqrt(v) / sqrt(1 - b2^t) + eps; p -= (lr / (1 - b1^t)) * (m / denom).
 * g is read as gscale * g (clip_grad_norm_'s scaling folded in). One branch-free loop the
 * compiler vectorises. */
void nn_adam_update_scaled(nn_real *p, const nn_real *g, nn_real *m, nn_real *v, size_t n,
                           nn_real gscale, float lr, float b1, float b2, float eps, long t) {
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    nn_real step = (nn_real)((double)lr / bc1);
    nn_real sbc2 = (nn_real)sqrt(bc2);
    nn_real B1 = b1, B2 = b2, C1 = (nn_real)(1.0 - (double)b1), C2 = (nn_real)(1.0 - (double)b2);
    nn_real E = eps;
    for (size_t i = 0; i < n; i++) {
        nn_real gi = g[i] * gscale;
        nn_real mi = B1 * m[i] + C1 * gi;
        nn_real vi = B2 * v[i] + C2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * (mi / (NN_SQRT(vi) / sbc2 + E));
    }
}

void nn_adam_update(nn_real *p, const nn_real *g, nn_real *m, nn_real *v, size_t n, float lr,
                    float b1, float b2, float eps, long t) {
    nn_adam_update_scaled(p, g, m, v, n, 1, lr, b1, b2, eps, t);
}

/* Returns sqrt(sum g^2), summed in double. */
double nn_grad_norm(const nn_real *g, size_t n) {
    /* four partial sums so the loop is not one long dependency chain (fixed grouping, so
     * the result is still deterministic) */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)g[i] * (double)g[i];
        s1 += (double)g[i + 1] * (double)g[i + 1];
        s2 += (double)g[i + 2] * (double)g[i + 2];
        s3 += (double)g[i + 3] * (double)g[i + 3];
    }
    for (; i < n; i++) s0 += (double)g[i] * (double)g[i];
    return sqrt((s0 + s1) + (s2 + s3));
}
