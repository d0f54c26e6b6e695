/* flags.c -- table-driven parsing of nb-train's flags. */
#include "flags.h"
#include "nb_err.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { F_STR, F_INT, F_LL, F_DBL, F_BOOL, F_ONOFF, F_SPLIT, F_TARGETS, F_BASKET };

typedef struct {
    const char *name;   /* without the leading "--" */
    int type;
    size_t off;         /* field offset in tr_flags */
    double lo, hi;      /* accepted range for numbers (inclusive) */
    const char *def;    /* default shown by --help */
    const char *help;
} flag_def;

#define O(field) offsetof(tr_flags, field)
static const flag_def FLAGS[] = {
    {"db", F_STR, O(db), 0, 0, "(required)", "SQLite store to train on (created by --csv)"},
    {"model", F_STR, O(model), 0, 0, "(required)", "output weight file (.nbw)"},
    {"csv", F_STR, O(csv), 0, 0, "", "import this Instacart CSV folder into --db first"},
    {"catalog", F_STR, O(catalog), 0, 0, "", "take products/aisles/departments from this folder"},
    {"report", F_STR, O(report), 0, 0, "", "write the JSON report here"},
    {"checkpoint", F_STR, O(checkpoint), 0, 0, "MODEL.ckpt", "checkpoint file"},
    {"resume", F_BOOL, O(resume), 0, 0, "off", "continue from the checkpoint"},
    {"epochs", F_INT, O(epochs), 1, 100000, "10", "maximum epochs"},
    {"patience", F_INT, O(patience), 1, 100000, "3", "stop after this many epochs without a better validation Recall@10"},
    {"seed", F_LL, O(seed), 0, 9.2e18, "1", "random seed (init, shuffling, dropout)"},
    {"threads", F_INT, O(threads), 1, 1024, "cores", "OpenBLAS threads"},
    {"limit-users", F_INT, O(limit_users), 0, INT_MAX, "0", "use only the first N users (0 = all)"},
    {"score-user", F_LL, O(score_user), 0, INT32_MAX, "", "print this user's top-K as JSON and exit"},
    {"k", F_INT, O(k), 1, 100000, "10", "K for --score-user"},
    {"stop-after", F_INT, O(stop_after), 0, 100000, "0", "test hook: stop as if interrupted after N epochs of this run"},
    {"quiet", F_BOOL, O(quiet), 0, 0, "off", "no progress output"},
    {"emb", F_INT, O(emb), 1, 4096, "32", "product embedding size"},
    {"cnn-out", F_INT, O(cnn_out), 1, 8192, "128", "Conv1d output channels"},
    {"kernel", F_INT, O(kernel), 1, 145, "4", "Conv1d kernel size"},
    {"gru-hidden", F_INT, O(gru_hidden), 1, 8192, "256", "GRU hidden size"},
    {"gru-layers", F_INT, O(gru_layers), 1, 4, "2", "GRU layers"},
    {"dropout", F_DBL, O(dropout), 0, 0.99, "0.1", "dropout rate"},
    {"head", F_INT, O(head), 1, 8192, "256", "head hidden size"},
    {"lr", F_DBL, O(lr), 1e-30, 1e30, "0.001", "Adam learning rate"},
    {"batch", F_INT, O(batch), 1, 65536, "32", "mini-batch size"},
    {"threshold", F_DBL, O(threshold), 0, 1, "0.4", "basket threshold on calibrated probability"},
    {"pos-weight", F_DBL, O(pos_weight), 1e-6, 1e6, "10", "BCE positive weight"},
    {"orders", F_INT, O(orders), 1, 100, "5", "orders per sample"},
    {"max-products", F_INT, O(max_products), 1, 10000, "145", "products per order (longer orders are truncated)"},
    {"candidates", F_INT, O(candidates), 1, INT_MAX, "3000", "candidate set size per user"},
    {"rep-hidden", F_INT, O(rep_hidden), 2, 4096, "32", "repeat MLP hidden size (>= 2: train/repinit.h)"},
    {"split", F_SPLIT, O(split), 0, 0, "80/10/10", "train/validation/test user percentages"},
    {"targets", F_TARGETS, O(targets_all), 0, 0, "last", "last | all: train on every prior order too"},
    {"repeat", F_ONOFF, O(repeat), 0, 0, "on", "on | off: the repeat-feature term"},
    {"basket", F_BASKET, O(basket_ef1), 0, 0, "threshold", "threshold | expected-f1"},
    {"clip", F_DBL, O(clip), 0, 1e30, "0", "max gradient norm (0 = off)"},
    {"ranker", F_ONOFF, O(ranker), 0, 0, "on", "on | off: the ranking stage (gradient-boosted trees over several candidate sources, issue 10)"},
    {"ranker-rows", F_STR, O(ranker_rows), 0, 0, "last", "last | prev | both: the ranker's training rows target each training user's last order, the order before it (where the model's input is out of sample), or both"},
    {"ranker-ablation", F_BOOL, O(ranker_ablation), 0, 0, "off", "also measure the ranker without the model input and without unseen candidates"},
    {"help", F_BOOL, O(help), 0, 0, "", "this list"},
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
}

void tr_flags_usage(FILE *out) {
    fprintf(out, "usage: nb-train --db FILE --model OUT.nbw [--csv DIR [--catalog DIR]] "
                 "[--report OUT.json] [flags]\n"
                 "       nb-train --db FILE --model M.nbw --score-user ID [--k K]\n");
    for (size_t i = 0; i < N_FLAGS; i++) {
        const flag_def *d = &FLAGS[i];
        const char *arg = d->type == F_BOOL ? "" : d->type == F_STR ? " S" : " V";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", d->name, arg);
        fprintf(out, "  %-18s %s%s%s%s\n", left, d->help, d->def[0] ? " [default " : "", d->def,
                d->def[0] ? "]" : "");
    }
}

/* Parses one value for d into f. Returns NB_OK or NB_EINVAL naming the flag. */
static int set_value(tr_flags *f, const flag_def *d, const char *v, char *err, size_t errlen) {
    char *p = (char *)f + d->off;
    char *end = NULL;
    errno = 0;
    switch (d->type) {
    case F_STR:
        if (!*v) return nb_err(err, errlen, NB_EINVAL, "--%s: empty value", d->name);
        *(const char **)p = v;
        return NB_OK;
    case F_INT:
    case F_LL: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not an integer", d->name, v);
        if ((double)x < d->lo || (double)x > d->hi)
            return nb_err(err, errlen, NB_EINVAL, "--%s: %lld is out of range [%.0f, %.0f]",
                          d->name, x, d->lo, d->hi);
        if (d->type == F_INT) *(int *)p = (int)x;
        else *(long long *)p = x;
        return NB_OK;
    }
    case F_DBL: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not a number", d->name, v);
        if (x < d->lo || x > d->hi)
            return nb_err(err, errlen, NB_EINVAL, "--%s: %g is out of range [%g, %g]", d->name,
                          x, d->lo, d->hi);
        *(double *)p = x;
        return NB_OK;
    }
    case F_ONOFF:
        if (!strcmp(v, "on")) *(int *)p = 1;
        else if (!strcmp(v, "off")) *(int *)p = 0;
        else return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not on|off", d->name, v);
        return NB_OK;
    case F_TARGETS:
        if (!strcmp(v, "all")) *(int *)p = 1;
        else if (!strcmp(v, "last")) *(int *)p = 0;
        else return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not last|all", d->name, v);
        return NB_OK;
    case F_BASKET:
        if (!strcmp(v, "expected-f1")) *(int *)p = 1;
        else if (!strcmp(v, "threshold")) *(int *)p = 0;
        else return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not threshold|expected-f1",
                           d->name, v);
        return NB_OK;
    case F_SPLIT: {
        int a, b, c, n = 0;
        if (sscanf(v, "%d/%d/%d%n", &a, &b, &c, &n) != 3 || v[n] || a < 1 || b < 1 || c < 0 ||
            a + b + c != 100)
            return nb_err(err, errlen, NB_EINVAL,
                          "--%s: '%s' must be TRAIN/VAL/TEST percentages summing to 100 "
                          "(train and validation > 0)", d->name, v);
        int *s = (int *)p;
        s[0] = a, s[1] = b, s[2] = c;
        return NB_OK;
    }
    }
    return nb_err(err, errlen, NB_EINVAL, "--%s: internal flag type", d->name);
}

int tr_flags_parse(tr_flags *f, int argc, char **argv, char *err, size_t errlen) {
    tr_flags_default(f);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return nb_err(err, errlen, NB_EINVAL, "unexpected argument '%s' (flags start with --)", a);
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const flag_def *d = NULL;
        for (size_t j = 0; j < N_FLAGS; j++)
            if (strlen(FLAGS[j].name) == nlen && !strncmp(FLAGS[j].name, a, nlen)) d = &FLAGS[j];
        if (!d) return nb_err(err, errlen, NB_EINVAL, "unknown flag '%s' (see --help)", argv[i]);
        if (d->type == F_BOOL) {
            if (eq) return nb_err(err, errlen, NB_EINVAL, "--%s takes no value", d->name);
            *(int *)((char *)f + d->off) = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) return nb_err(err, errlen, NB_EINVAL, "--%s needs a value", d->name);
            v = argv[++i];
        }
        int rc = set_value(f, d, v, err, errlen);
        if (rc) return rc;
    }
    if (f->help) return NB_OK;
    if (!f->db) return nb_err(err, errlen, NB_EINVAL, "--db is required");
    if (!f->model) return nb_err(err, errlen, NB_EINVAL, "--model is required");
    if (f->catalog && !f->csv)
        return nb_err(err, errlen, NB_EINVAL, "--catalog needs --csv");
    if (f->kernel > f->max_products)
        return nb_err(err, errlen, NB_EINVAL, "--kernel %d exceeds --max-products %d", f->kernel,
                      f->max_products);
    return NB_OK;
}
