/* flags.c -- nb-train's flags: the table (common/nb_flags.h parses it) and the checks
 * between flags. */
#include "flags.h"
#include "nb_err.h"
#include "nb_flags.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const off_on[] = {"off", "on", NULL};
static const char *const targets[] = {"last", "all", NULL};
static const char *const baskets[] = {"threshold", "expected-f1", NULL};
static const char *const encoders[] = {"cnn", "attention", NULL};
static const char *const sequences[] = {"gru", "transformer", NULL};
const char *const tr_loss_names[] = {"bce", "bce+bpr", "bce+margin", "bpr", NULL};

/* An NB_F_FN parser for --split TRAIN/VAL/TEST: field is int[3]. Returns NB_OK or
 * NB_EINVAL naming the flag. */
static int parse_split(void *field, const char *v, const nb_flag *d, char *err, size_t errlen) {
    int a, b, c, n = 0;
    if (sscanf(v, "%d/%d/%d%n", &a, &b, &c, &n) != 3 || v[n] || a < 1 || b < 1 || c < 0 ||
        a + b + c != 100)
        return nb_err(err, errlen, NB_EINVAL,
                      "--%s: '%s' must be TRAIN/VAL/TEST percentages summing to 100 "
                      "(train and validation > 0)",
                      d->name, v);
    int *s = field;
    s[0] = a, s[1] = b, s[2] = c;
    return NB_OK;
}

#define O(field) offsetof(tr_flags, field)
static const nb_flag FLAGS[] = {
    {"db", NB_F_STR, O(db), 0, 0, NULL, "", "SQLite store to train on (created by --csv)",
     NB_F_REQUIRED, NULL, NULL},
    {"model", NB_F_STR, O(model), 0, 0, NULL, "", "output weight file (.nbw)", NB_F_REQUIRED, NULL,
     NULL},
    {"csv", NB_F_STR, O(csv), 0, 0, NULL, "", "import this Instacart CSV folder into --db first", 0,
     NULL, NULL},
    {"catalog", NB_F_STR, O(catalog), 0, 0, NULL, "",
     "take products/aisles/departments from this folder", 0, NULL, NULL},
    {"report", NB_F_STR, O(report), 0, 0, NULL, "", "write the JSON report here", 0, NULL, NULL},
    {"checkpoint", NB_F_STR, O(checkpoint), 0, 0, NULL, "MODEL.ckpt", "checkpoint file", 0, NULL,
     NULL},
    {"resume", NB_F_BOOL, O(resume), 0, 0, NULL, "off", "continue from the checkpoint", 0, NULL,
     NULL},
    {"epochs", NB_F_INT, O(epochs), 1, 100000, NULL, "10", "maximum epochs", 0, NULL, NULL},
    {"patience", NB_F_INT, O(patience), 1, 100000, NULL, "3",
     "stop after this many epochs without a better validation Recall@10", 0, NULL, NULL},
    {"seed", NB_F_LL, O(seed), 0, 9.2e18, NULL, "1", "random seed (init, shuffling, dropout)", 0,
     NULL, NULL},
    {"threads", NB_F_INT, O(threads), 1, 1024, NULL, "cores", "OpenBLAS threads", 0, NULL, NULL},
    {"limit-users", NB_F_INT, O(limit_users), 0, INT_MAX, NULL, "0",
     "use only the first N users (0 = all)", 0, NULL, NULL},
    {"score-user", NB_F_LL, O(score_user), 0, INT32_MAX, NULL, "",
     "print this user's top-K as JSON and exit", 0, NULL, NULL},
    {"k", NB_F_INT, O(k), 1, 100000, NULL, "10", "K for --score-user", 0, NULL, NULL},
    {"keep-models", NB_F_INT, O(keep_models), 1, 1000, NULL, "2",
     "models kept registered, the new one included (a running nb-serve keeps serving an older "
     "one until it is retired)",
     0, NULL, NULL},
#ifdef NB_TEST_HOOKS /* only in the test build, build/tests/nb-train-test (Makefile) */
    {"stop-after", NB_F_INT, O(stop_after), 0, 100000, NULL, "0",
     "test hook: stop as if interrupted after N epochs of this run", 0, NULL, NULL},
#endif
    {"quiet", NB_F_BOOL, O(quiet), 0, 0, NULL, "off", "no progress output", 0, NULL, NULL},
    {"emb", NB_F_INT, O(emb), 1, 4096, NULL, "32", "product embedding size", 0, NULL, NULL},
    {"cnn-out", NB_F_INT, O(cnn_out), 1, 8192, NULL, "128", "Conv1d output channels", 0, NULL,
     NULL},
    {"kernel", NB_F_INT, O(kernel), 1, 145, NULL, "4", "Conv1d kernel size", 0, NULL, NULL},
    {"gru-hidden", NB_F_INT, O(gru_hidden), 1, 8192, NULL, "256", "GRU hidden size", 0, NULL, NULL},
    {"gru-layers", NB_F_INT, O(gru_layers), 1, 4, NULL, "2", "GRU layers", 0, NULL, NULL},
    {"dropout", NB_F_DBL, O(dropout), 0, 0.99, NULL, "0.1", "dropout rate", 0, NULL, NULL},
    {"head", NB_F_INT, O(head), 1, 8192, NULL, "256", "head hidden size", 0, NULL, NULL},
    {"lr", NB_F_DBL, O(lr), 1e-30, 1e30, NULL, "0.001", "Adam learning rate", 0, NULL, NULL},
    {"batch", NB_F_INT, O(batch), 1, 65536, NULL, "32", "mini-batch size", 0, NULL, NULL},
    {"threshold", NB_F_DBL, O(threshold), 0, 1, NULL, "0.4",
     "basket threshold on calibrated probability", 0, NULL, NULL},
    {"pos-weight", NB_F_DBL, O(pos_weight), 1e-6, 1e6, NULL, "10", "BCE positive weight", 0, NULL,
     NULL},
    {"orders", NB_F_INT, O(orders), 1, 100, NULL, "5", "orders per sample", 0, NULL, NULL},
    {"max-products", NB_F_INT, O(max_products), 1, 10000, NULL, "145",
     "products per order (longer orders are truncated)", 0, NULL, NULL},
    {"candidates", NB_F_INT, O(candidates), 1, INT_MAX, NULL, "3000", "candidate set size per user",
     0, NULL, NULL},
    {"rep-hidden", NB_F_INT, O(rep_hidden), 2, 4096, NULL, "32",
     "repeat MLP hidden size (>= 2: train/repinit.h)", 0, NULL, NULL},
    {"split", NB_F_FN, O(split), 0, 0, NULL, "80/10/10", "train/validation/test user percentages",
     0, NULL, parse_split},
    {"targets", NB_F_CHOICE, O(targets_all), 0, 0, NULL, "last",
     "last | all: train on every prior order too", 0, targets, NULL},
    {"repeat", NB_F_CHOICE, O(repeat), 0, 0, NULL, "on", "on | off: the repeat-feature term", 0,
     off_on, NULL},
    {"basket", NB_F_CHOICE, O(basket_ef1), 0, 0, NULL, "threshold", "threshold | expected-f1", 0,
     baskets, NULL},
    {"clip", NB_F_DBL, O(clip), -1, 1e30, NULL, "auto",
     "max gradient norm (0 = off; -1 = auto: off with the GRU, 1 with the transformer)", 0, NULL,
     NULL},
    {"encoder", NB_F_CHOICE, O(encoder), 0, 0, NULL, "cnn",
     "cnn | attention: the order encoder (attention: self-attention over the order's products, "
     "--cnn-out wide, --heads heads, then attention pooling)",
     0, encoders, NULL},
    {"order-info", NB_F_CHOICE, O(order_info), 0, 0, NULL, "off",
     "on | off: day of week, hour and days since the prior order into the sequence model", 0,
     off_on, NULL},
    {"sequence", NB_F_CHOICE, O(sequence), 0, 0, NULL, "gru",
     "gru | transformer: the model over the orders (transformer: --gru-layers pre-LN blocks, "
     "--gru-hidden wide, causal)",
     0, sequences, NULL},
    {"heads", NB_F_INT, O(heads), 1, 256, NULL, "4",
     "attention heads (attention encoder, transformer)", 0, NULL, NULL},
    {"warmup", NB_F_INT, O(warmup), -1, 100000000, NULL, "auto",
     "learning-rate warm-up steps, linear from lr/N to lr (-1 = auto: 0 with the GRU, 200 "
     "with the transformer)",
     0, NULL, NULL},
    {"loss", NB_F_CHOICE, O(loss), 0, 0, NULL, "bce",
     "bce | bce+bpr | bce+margin | bpr: BCE (pos-weight), plus rank-weight x a ranking loss over "
     "sampled negatives, or BPR alone",
     0, tr_loss_names, NULL},
    {"rank-weight", NB_F_DBL, O(rank_weight), 0, 1e6, NULL, "1",
     "weight W of the ranking term in bce+bpr / bce+margin (loss = BCE + W x ranking)", 0, NULL,
     NULL},
    {"margin", NB_F_DBL, O(margin), 0, 1e6, NULL, "1", "margin M of bce+margin: max(0, M - s+ + s-)",
     0, NULL, NULL},
    {"negatives", NB_F_INT, O(negatives), 1, 1000, NULL, "4",
     "negative products sampled per positive, uniformly among the products not in the target "
     "basket",
     0, NULL, NULL},
    {"ranker", NB_F_CHOICE, O(ranker), 0, 0, NULL, "on",
     "on | off: the ranking stage (gradient-boosted trees over several candidate sources, issue "
     "10)",
     0, off_on, NULL},
    {"ranker-rows", NB_F_STR, O(ranker_rows), 0, 0, "MODE", "last",
     "last | prev | both: the ranker's training rows target each training user's last order, the "
     "order before it (where the model's input is out of sample), or both",
     0, NULL, NULL},
    {"ranker-prior", NB_F_CHOICE, O(ranker_prior), 0, 0, NULL, "on",
     "on | off: boost the ranker's trees from TIFU-KNN's score (a logistic prior) rather than "
     "from a constant",
     0, off_on, NULL},
    {"ranker-ablation", NB_F_BOOL, O(ranker_ablation), 0, 0, NULL, "off",
     "also measure the ranker with the model input and without unseen candidates", 0, NULL,
     NULL},
    {"ranker-dump", NB_F_STR, O(ranker_dump), 0, 0, "DIR", "",
     "write the ranking stage's training, validation and test rows (features, labels, "
     "purchase bits) to DIR/train|val|test.nbrows for offline analysis (train/rkdump.h; "
     "bench/rk_explore.py)",
     0, NULL, NULL},
    {"precompute", NB_F_CHOICE, O(precompute), 0, 0, NULL, "on",
     "on | off: rank every user with history ahead of time with the ranking stage, for nb-serve "
     "to read (infer/prerank.h)",
     0, off_on, NULL},
    {"help", NB_F_HELP, O(help), 0, 0, NULL, "", "this list", 0, NULL, NULL},
};
#undef O
#define N_FLAGS (sizeof FLAGS / sizeof FLAGS[0])

void tr_flags_default(tr_flags *f) {
    memset(f, 0, sizeof *f);
    f->epochs = 10;
    f->patience = 3;
    f->seed = 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    f->threads = n > 0 ? (int)n : 1;
    f->score_user = -1;
    f->k = 10;
    f->keep_models = 2;
    f->emb = 32;
    f->cnn_out = 128;
    f->kernel = 4;
    f->gru_hidden = 256;
    f->gru_layers = 2;
    f->dropout = 0.1;
    f->head = 256;
    f->lr = 0.001;
    f->batch = 32;
    f->threshold = 0.4;
    f->pos_weight = 10;
    f->orders = 5;
    f->max_products = 145;
    f->candidates = 3000;
    f->rep_hidden = 32;
    f->split[0] = 80, f->split[1] = 10, f->split[2] = 10;
    f->repeat = 1;
    f->ranker = 1;
    f->ranker_prior = 1;
    f->precompute = 1;
    f->clip = -1; /* auto: tr_flags_parse settles it */
    f->heads = 4;
    f->warmup = -1;
    f->loss = TR_LOSS_BCE;
    f->rank_weight = 1;
    f->margin = 1;
    f->negatives = 4;
}

/* See flags.h. */
int tr_flags_number(const tr_flags *f, const char *name, double *v) {
    for (size_t i = 0; i < N_FLAGS; i++) {
        const nb_flag *d = &FLAGS[i];
        if (strcmp(d->name, name)) continue;
        const char *p = (const char *)f + d->off;
        switch (d->type) {
            case NB_F_INT: *v = *(const int *)p; return 1;
            case NB_F_LL: *v = (double)*(const long long *)p; return 1;
            case NB_F_DBL: *v = *(const double *)p; return 1;
            case NB_F_CHOICE: *v = *(const int *)p; return 1; /* the word's index */
            default: return 0;
        }
    }
    return 0;
}

/* See flags.h. */
void tr_flags_usage(FILE *out) {
    nb_flags_usage(out,
                   "usage: nb-train --db FILE --model OUT.nbw [--csv DIR [--catalog DIR]] "
                   "[--report OUT.json] [flags]\n"
                   "       nb-train --db FILE --model M.nbw --score-user ID [--k K]\n",
                   FLAGS, N_FLAGS);
}

/* See flags.h: the table's checks, then those between flags. */
int tr_flags_parse(tr_flags *f, int argc, char **argv, char *err, size_t errlen) {
    tr_flags_default(f);
    int rc = nb_flags_parse(FLAGS, N_FLAGS, f, argc, argv, err, errlen);
    if (rc) return rc;
    if (f->help) return NB_OK;
    if (f->catalog && !f->csv) return nb_err(err, errlen, NB_EINVAL, "--catalog needs --csv");
    /* the transformer's defaults: the research log's run went NaN without them */
    if (f->clip < 0 && f->clip != -1)
        return nb_err(err, errlen, NB_EINVAL, "--clip %g: must be >= 0, or -1 (auto)", f->clip);
    if (f->clip < 0) f->clip = f->sequence ? 1 : 0;
    if (f->warmup < 0) f->warmup = f->sequence ? 200 : 0;
    if (f->encoder && f->cnn_out % f->heads)
        return nb_err(
            err, errlen, NB_EINVAL,
            "--cnn-out %d (the attention encoder's width) must be a multiple of --heads %d",
            f->cnn_out, f->heads);
    if (f->sequence && f->gru_hidden % f->heads)
        return nb_err(err, errlen, NB_EINVAL,
                      "--gru-hidden %d (the transformer's width) must be a multiple of --heads %d",
                      f->gru_hidden, f->heads);
    if (f->kernel > f->max_products)
        return nb_err(err, errlen, NB_EINVAL, "--kernel %d exceeds --max-products %d", f->kernel,
                      f->max_products);
    /* checked now, not after the hours of training before the ranking stage writes there */
    if (f->ranker_dump && !f->ranker)
        return nb_err(err, errlen, NB_EINVAL, "--ranker-dump needs --ranker on");
    struct stat st;
    if (f->ranker_dump && (stat(f->ranker_dump, &st) || !S_ISDIR(st.st_mode) ||
                           access(f->ranker_dump, W_OK | X_OK)))
        return nb_err(err, errlen, NB_EINVAL, "--ranker-dump %s: not a writable directory",
                      f->ranker_dump);
    return NB_OK;
}
