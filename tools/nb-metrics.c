/* nb-metrics -- evaluation metrics (train/metrics.h) of rankings and baskets in a text file.
 *
 *   nb-metrics --products P [--in FILE]      (default: standard input)
 *
 * One user per line, fields separated by '|', each a space-separated list of product indices:
 *   ranked | predicted basket | true basket [| candidate set]
 * Prints one "name value" line per metric (%.17g). tests/metrics_sklearn.sh feeds it random
 * data and compares with scikit-learn; it also lets any other tool's output be scored.
 */
#include "metrics.h"
#include "nb_err.h"
#include "nb_flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses the space-separated integers of s into *a (grown as needed, caller frees).
 * Returns the count, or -1 on a token that is not an integer. */
static int parse_list(char *s, int32_t **a, int *cap) {
    int n = 0;
    char *tok, *save = NULL;
    for (tok = strtok_r(s, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *end;
        errno = 0;
        long v = strtol(tok, &end, 10);
        if (*end || errno || v < INT32_MIN || v > INT32_MAX) return -1;
        if (n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *a = nb_xrealloc(*a, (size_t)*cap * sizeof **a);
        }
        (*a)[n++] = (int32_t)v;
    }
    return n;
}

typedef struct {
    int products;
    const char *in;
} metrics_flags;

#define O(field) offsetof(metrics_flags, field)
static const nb_flag FLAGS[] = {
    {"products", NB_F_INT, O(products), 1, INT32_MAX, "P", "", "catalogue size", NB_F_REQUIRED,
     NULL, NULL},
    {"in", NB_F_STR, O(in), 0, 0, "FILE", "stdin", "input", 0, NULL, NULL},
};
#undef O

/* Returns 0 after printing the metrics, 1 on an unreadable or malformed input, 2 on bad flags. */
int main(int argc, char **argv) {
    metrics_flags fl = {0};
    int ex = nb_flags_main("nb-metrics", "usage: nb-metrics --products P [--in FILE]\n", FLAGS,
                           NB_FLAGS_N(FLAGS), &fl, argc, argv);
    if (ex >= 0) return ex;
    long P = fl.products;
    const char *in = fl.in;

    char err[NB_ERRLEN];
    int rc = 1;
    FILE *f = in ? fopen(in, "r") : stdin;
    char *line = NULL;
    size_t linecap = 0;
    int32_t *a[4] = {0};
    int cap[4] = {0}, n[4];
    tr_metrics m;
    int inited = 0;
    if (!f) {
        fprintf(stderr, "nb-metrics: %s: %s\n", in, strerror(errno));
        goto done;
    }
    if (tr_metrics_init(&m, (int)P, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-metrics: %s\n", err);
        goto done;
    }
    inited = 1;
    long lineno = 0;
    while (getline(&line, &linecap, f) > 0) {
        lineno++;
        char *field[4] = {0};
        int nf = 0;
        /* split on '|' by hand: strtok_r would merge empty fields */
        field[nf++] = line;
        for (char *p = line; *p && nf <= 4; p++)
            if (*p == '|') {
                *p = 0;
                if (nf < 4) field[nf] = p + 1;
                nf++;
            }
        if (nf != 3 && nf != 4) {
            fprintf(stderr, "nb-metrics: %s:%ld: want 3 or 4 '|'-separated fields, got %d\n",
                    in ? in : "stdin", lineno, nf);
            goto done;
        }
        for (int k = 0; k < nf; k++) {
            n[k] = parse_list(field[k], &a[k], &cap[k]);
            if (n[k] < 0) {
                fprintf(stderr, "nb-metrics: %s:%ld: field %d: not a list of integers\n",
                        in ? in : "stdin", lineno, k + 1);
                goto done;
            }
        }
        if (tr_metrics_add(&m, a[0], n[0], a[1], n[1], a[2], n[2], err, sizeof err) != NB_OK ||
            (nf == 4 &&
             tr_metrics_add_cands(&m, a[3], n[3], a[2], n[2], err, sizeof err) != NB_OK)) {
            fprintf(stderr, "nb-metrics: %s:%ld: %s\n", in ? in : "stdin", lineno, err);
            goto done;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "nb-metrics: reading %s: %s\n", in ? in : "stdin", strerror(errno));
        goto done;
    }
    tr_metrics_result r;
    tr_metrics_get(&m, &r);
    printf("users %lld\n", (long long)r.n_users);
    printf("f1_micro %.17g\nprecision_micro %.17g\nrecall_micro %.17g\n", r.f1_micro,
           r.precision_micro, r.recall_micro);
    printf("f1_macro %.17g\nf1_example %.17g\n", r.f1_macro, r.f1_example);
    for (int k = 0; k < TR_METRICS_NK; k++) {
        int K = tr_metrics_k[k];
        printf("p@%d %.17g\nr@%d %.17g\nndcg@%d %.17g\nhit@%d %.17g\n", K, r.p_at[k], K, r.r_at[k],
               K, r.ndcg_at[k], K, r.hit_at[k]);
    }
    printf("mean_pred_size %.17g\nmean_true_size %.17g\n", r.mean_pred_size, r.mean_true_size);
    if (r.cand_users)
        printf("cand_recall %.17g\nmean_cand_size %.17g\n", r.cand_recall, r.mean_cand_size);
    rc = 0;
done:
    if (inited) tr_metrics_free(&m);
    for (int k = 0; k < 4; k++) free(a[k]);
    free(line);
    if (f && f != stdin) fclose(f);
    return rc;
}
