/* nb-bench-model -- training throughput of the C model: forward + backward + Adam steps per
 * second on a synthetic batch with realistic shapes.
 *
 * Usage: nb-bench-model [--batch 32] [--products 49688] [--cand 0] [--steps 20]
 *                       [--threads 2] [--warmup 2] [--seed 1] [--repeat-features 0]
 *                       [--encoder cnn|attention] [--sequence gru|transformer]
 * --cand 0 scores the full head; --cand S a candidate list of S products shared by the batch.
 * The batch follows bench/torch_model.py's rules: each user has 1..5 orders (uniform), each
 * order 1 + Poisson(9) distinct products (capped at 145), about 10 positive targets per user
 * (half of them repeats from the history). Prints one line:
 *   "steps/s <x> batch <B> products <P> cand <S> threads <T> steps <N> ms/step <m>
 *    forward <f> backward <b> adam <a> (ms) cpu-ms/step <c> (...) params <n> loss <l>"
 * Exit status 0, or 2 on a bad flag / failed initialisation.
 */
#include "nb_err.h"
#include "nb_flags.h"
#include "nn.h"
#include "rng.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds used by the whole process (all threads): on a shared machine this moves much
 * less than wall time when other jobs compete for the cores. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Returns a Poisson(lambda) draw (Knuth's product of uniforms; lambda is small). */
static int poisson(nb_rng *r, double lambda) {
    double l = exp(-lambda), p = 1;
    int k = 0;
    do {
        k++;
        p *= nb_rng_uniform(r);
    } while (p > l);
    return k - 1;
}

typedef struct {
    int batch, products, cand, steps, threads, warmup, seed, rep_features, encoder, sequence;
} bench_flags;
static const char *const encoders[] = {"cnn", "attention", NULL};
static const char *const sequences[] = {"gru", "transformer", NULL};

#define O(field) offsetof(bench_flags, field)
static const nb_flag FLAGS[] = {
    {"batch", NB_F_INT, O(batch), 1, 1e8, "B", "32", "users per batch", 0, NULL, NULL},
    {"products", NB_F_INT, O(products), 1, 1e8, "P", "49688", "catalogue size", 0, NULL, NULL},
    {"cand", NB_F_INT, O(cand), 0, 1e8, "S", "0",
     "0: the full head; S: a candidate list of S products shared by the batch", 0, NULL, NULL},
    {"steps", NB_F_INT, O(steps), 1, 1e8, "N", "20", "timed steps", 0, NULL, NULL},
    {"threads", NB_F_INT, O(threads), 1, 1e8, "T", "2", "OpenBLAS threads", 0, NULL, NULL},
    {"warmup", NB_F_INT, O(warmup), 0, 1e8, "N", "2", "untimed steps first", 0, NULL, NULL},
    {"seed", NB_F_INT, O(seed), 0, 1e8, "S", "1", "random seed", 0, NULL, NULL},
    {"repeat-features", NB_F_INT, O(rep_features), 0, 1e8, "F", "0",
     "repeat features (0: no repeat term)", 0, NULL, NULL},
    {"encoder", NB_F_CHOICE, O(encoder), 0, 0, NULL, "cnn", "cnn | attention (nn.h)", 0, encoders,
     NULL},
    {"sequence", NB_F_CHOICE, O(sequence), 0, 0, NULL, "gru", "gru | transformer (nn.h)", 0,
     sequences, NULL},
};
#undef O

/* See the header comment. */
int main(int argc, char **argv) {
    bench_flags f = {
        .batch = 32, .products = 49688, .steps = 20, .threads = 2, .warmup = 2, .seed = 1};
    int ex = nb_flags_main("nb-bench-model", "usage: nb-bench-model [flags]\n", FLAGS,
                           NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    int B = f.batch, P = f.products, S = f.cand, steps = f.steps, threads = f.threads,
        warmup = f.warmup, seed = f.seed, F = f.rep_features;
    if (S > P) {
        fprintf(stderr, "nb-bench-model: --cand %d exceeds --products %d\n", S, P);
        return 2;
    }
    nn_set_threads(threads);

    nn_config cfg;
    nn_config_default(&cfg, P);
    cfg.rep_features = F;
    cfg.encoder = f.encoder;
    cfg.sequence = f.sequence;
    nn_model m;
    char err[NB_ERRLEN];
    if (nn_model_init(&m, &cfg, (uint64_t)seed, err, sizeof err) ||
        nn_model_train_init(&m, err, sizeof err)) {
        fprintf(stderr, "nb-bench-model: %s\n", err);
        return 2;
    }

    /* the synthetic batch */
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed * 7919 + 1);
    int *n_ord = calloc((size_t)B, sizeof(int));
    int *ord_off = calloc((size_t)B * 5 + 1, sizeof(int));
    int32_t *items = calloc((size_t)B * 5 * 145, sizeof(int32_t));
    int32_t *rows = calloc((size_t)(S > 0 ? S : 1), sizeof(int32_t));
    int NS = S > 0 ? S : P;
    nn_real *targets = calloc((size_t)B * NS, sizeof(nn_real));
    int32_t *rep_b = calloc((size_t)B * 10 + 1, sizeof(int32_t));
    int32_t *rep_col = calloc((size_t)B * 10 + 1, sizeof(int32_t));
    nn_real *rep_feat = calloc(((size_t)B * 10 + 1) * (size_t)(F > 0 ? F : 1), sizeof(nn_real));
    char *seen = calloc((size_t)P, 1);
    if (!n_ord || !ord_off || !items || !rows || !targets || !rep_b || !rep_col || !rep_feat ||
        !seen) {
        fprintf(stderr, "nb-bench-model: out of memory\n");
        return 2;
    }
    /* candidate list: S distinct products (a partial Fisher-Yates over 0..P-1) */
    if (S > 0) {
        int32_t *all = malloc((size_t)P * sizeof(int32_t));
        for (int i = 0; i < P; i++) all[i] = i;
        for (int i = 0; i < S; i++) {
            int j = i + (int)nb_rng_below(&r, (uint64_t)(P - i));
            int32_t t = all[i];
            all[i] = all[j];
            all[j] = t;
            rows[i] = all[i];
        }
        free(all);
    }
    int o = 0, k = 0, n_rep = 0;
    for (int b = 0; b < B; b++) {
        n_ord[b] = 1 + (int)nb_rng_below(&r, 5);
        int first_item = k;
        for (int j = 0; j < n_ord[b]; j++, o++) {
            int len = 1 + poisson(&r, 9);
            if (len > 145) len = 145;
            for (int q = 0; q < len; q++) {
                int32_t p;
                do p = (int32_t)nb_rng_below(&r, (uint64_t)P);
                while (seen[p]);
                seen[p] = 1;
                items[k++] = p;
            }
            for (int q = k - len; q < k; q++) seen[items[q]] = 0;
            ord_off[o + 1] = k;
        }
        /* ~10 positives: 5 drawn from the history, 5 at random, in scored-column terms */
        for (int q = 0; q < 10; q++) {
            int col;
            if (S > 0)
                col = (int)nb_rng_below(&r, (uint64_t)S);
            else if (q < 5)
                col = items[first_item + (int)nb_rng_below(&r, (uint64_t)(k - first_item))];
            else
                col = (int)nb_rng_below(&r, (uint64_t)P);
            if (targets[(size_t)b * NS + col] != 0) continue;
            targets[(size_t)b * NS + col] = 1;
            if (F > 0 && q < 5) {
                rep_b[n_rep] = b;
                rep_col[n_rep] = col;
                for (int f = 0; f < F; f++)
                    rep_feat[(size_t)n_rep * F + f] = (nn_real)nb_rng_uniform(&r);
                n_rep++;
            }
        }
    }
    nn_batch batch = {.B = B,
                      .n_ord = n_ord,
                      .ord_off = ord_off,
                      .items = items,
                      .S = S,
                      .rows = rows,
                      .targets = targets,
                      .n_rep = n_rep,
                      .rep_b = rep_b,
                      .rep_col = rep_col,
                      .rep_feat = rep_feat};

    double tf = 0, tb = 0, ta = 0, t_all = 0, loss = 0, cf = 0, cb = 0, ca = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double c0 = cpu_now(), t0 = nb_now();
        loss = nn_model_forward(&m, &batch, 1, 10.0f);
        double c1 = cpu_now(), t1 = nb_now();
        nn_model_zero_grad(&m);
        nn_model_backward(&m, &batch, 10.0f);
        double c2 = cpu_now(), t2 = nb_now();
        nn_model_adam_step(&m, 1e-3f, 0.9f, 0.999f, 1e-8f, 0);
        double c3 = cpu_now(), t3 = nb_now();
        if (s >= warmup) {
            cf += c1 - c0;
            cb += c2 - c1;
            ca += c3 - c2;
            tf += t1 - t0;
            tb += t2 - t1;
            ta += t3 - t2;
            t_all += t3 - t0;
        }
    }
    if (!isfinite(loss)) {
        fprintf(stderr, "nb-bench-model: loss is not finite (%g)\n", loss);
        return 2;
    }
    printf("steps/s %.3f batch %d products %d cand %d threads %d steps %d ms/step %.2f "
           "forward %.2f backward %.2f adam %.2f (ms) cpu-ms/step %.2f (forward %.2f backward "
           "%.2f adam %.2f) params %zu loss %.5f\n",
           steps / t_all, B, P, S, threads, steps, 1e3 * t_all / steps, 1e3 * tf / steps,
           1e3 * tb / steps, 1e3 * ta / steps, 1e3 * (cf + cb + ca) / steps, 1e3 * cf / steps,
           1e3 * cb / steps, 1e3 * ca / steps, m.n_params, loss);
    nn_model_free(&m);
    free(n_ord);
    free(ord_off);
    free(items);
    free(rows);
    free(targets);
    free(rep_b);
    free(rep_col);
    free(rep_feat);
    free(seen);
    return 0;
}
