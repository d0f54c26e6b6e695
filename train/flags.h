/* flags.h -- nb-train's command line: every flag, its default, and validation.
 *
 * The defaults are the research log's best setting. Parsing is table-driven (flags.c), so
 * --help always lists exactly the flags that exist, each with its default.
 */
#ifndef TR_FLAGS_H
#define TR_FLAGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    /* files */
    const char *db, *model, *csv, *catalog, *report, *checkpoint;
    /* run control */
    int epochs, patience, threads, limit_users, resume, help;
    long long seed;
    long long score_user; /* -1 unless --score-user was given */
    int k;                /* --k for --score-user */
    int stop_after;       /* stop as if interrupted after N epochs (0 = off); a flag only in
                               the test build (--stop-after, -DNB_TEST_HOOKS) */
    int quiet;            /* no progress bar / per-epoch lines (tests) */
    /* hyper-parameters */
    int emb, cnn_out, kernel, gru_hidden, gru_layers, head, batch, orders, max_products;
    int candidates, rep_hidden;
    double dropout, lr, threshold, pos_weight, clip;
    int encoder, order_info, sequence, heads; /* issue 11: nn_config's fields of those names */
    int warmup;          /* learning-rate warm-up steps (-1: the default of the sequence model) */
    int split[3];        /* train / validation / test percentages, sum 100 */
    int targets_all;     /* --targets all */
    int repeat;          /* --repeat on */
    int basket_ef1;      /* --basket expected-f1 */
    int keep_models;     /* --keep-models: registered models kept (st_model_register) */
    int ranker;          /* --ranker on: the ranking stage (train/rktrain.h) */
    int ranker_ablation; /* --ranker-ablation: also its variants */
    int ranker_prior;    /* --ranker-prior on: trees boosted from TIFU-KNN's score */
    int precompute;      /* --precompute on: every user's ranking ahead of time */
    const char *ranker_rows; /* --ranker-rows last | prev | both (NULL: the default) */
    const char *ranker_dump; /* --ranker-dump DIR: the stage's rows written there, or NULL */
    /* the training loss (train/rankloss.h): an index into tr_loss_names */
    int loss;
    double rank_weight, margin; /* --rank-weight W, --margin M */
    int negatives;              /* --negatives: sampled negatives per positive */
} tr_flags;

/* --loss: BCE alone (the default), BCE plus W x BPR, BCE plus W x margin ranking, BPR alone. */
enum { TR_LOSS_BCE, TR_LOSS_BCE_BPR, TR_LOSS_BCE_MARGIN, TR_LOSS_BPR };
/* The --loss words, in the enum's order, NULL-terminated. */
extern const char *const tr_loss_names[];

/* Fills f with every default. */
void tr_flags_default(tr_flags *f);

/* Parses argv[1..argc) into f (pointers borrow from argv). Returns NB_OK, or NB_EINVAL with
 * a message naming the flag (unknown flag, missing value, bad or out-of-range value, missing
 * required --db/--model). Nothing else is done before validation succeeds. */
int tr_flags_parse(tr_flags *f, int argc, char **argv, char *err, size_t errlen);

/* The value of flag `name` (without "--") in f, for a number flag. Returns 1 and *v, or 0
 * when there is no such number flag. */
int tr_flags_number(const tr_flags *f, const char *name, double *v);

/* Prints the usage and every flag with its default to out. */
void tr_flags_usage(FILE *out);

#endif
