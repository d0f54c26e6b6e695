/* nb-synth -- writes a synthetic grocery data set in the Instacart CSV layout.
 *
 *   nb-synth --users N --seed S --out DIR [--catalog DIR]
 *
 * See storage/synth.h for the model behind the data. Exit status: 0 on success, 2 for bad
 * flags, 1 for any other error (the message names the parameter or file). */
#include "synth.h"

#include "nb_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: nb-synth --users N --seed S --out DIR [--catalog DIR]\n"
    "\n"
    "Writes a synthetic grocery data set in the Instacart CSV layout into DIR (created if\n"
    "missing): orders.csv, order_products__prior.csv, order_products__train.csv,\n"
    "products.csv, aisles.csv, departments.csv. Same arguments give byte-identical files.\n"
    "\n"
    "  --users N      number of users, 1..20000000 (Instacart has 206209)\n"
    "  --seed S       random seed, an unsigned 64-bit integer (default 1)\n"
    "  --out DIR      output directory (required)\n"
    "  --catalog DIR  use the real catalogue in DIR (products.csv, aisles.csv,\n"
    "                 departments.csv, copied into the output) instead of the invented one\n"
    "                 (49688 products, 134 aisles, 21 departments)\n"
    "  --help         this text\n"
    "\n"
    "orders.csv is sorted by user_id, then order_number; order ids are 1..(number of\n"
    "orders), shuffled across all users by a keyed bijection (unique, but in no order).\n"
    "The item files list each order's rows in add_to_cart_order, orders grouped by user.\n"
    "orders.csv is written last, so its presence means the set is complete.\n"
    "\n"
    "Statistics of the generated set (orders per user, basket size, reorder share,\n"
    "train/test share, top-product share) are printed to stderr.\n";

/* Parses a whole decimal unsigned integer. Returns 0 and *v, or -1. */
static int parse_u64(const char *s, uint64_t *v) {
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *v = x;
    return 0;
}

int main(int argc, char **argv) {
    sy_options o = {.users = 0, .seed = 1, .out_dir = NULL, .catalog_dir = NULL};
    char err[NB_ERRLEN];
    int have_users = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        int known = !strcmp(a, "--users") || !strcmp(a, "--seed") || !strcmp(a, "--out") ||
                    !strcmp(a, "--catalog");
        if (!known) {
            fprintf(stderr, "nb-synth: unknown flag '%s' (see --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "nb-synth: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        uint64_t x;
        if (!strcmp(a, "--users")) {
            if (parse_u64(v, &x) || x < 1 || x > 20000000) {
                fprintf(stderr, "nb-synth: --users must be an integer in 1..20000000, got '%s'\n", v);
                return 2;
            }
            o.users = (int64_t)x;
            have_users = 1;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(v, &x)) {
                fprintf(stderr, "nb-synth: --seed must be an unsigned integer, got '%s'\n", v);
                return 2;
            }
            o.seed = x;
        } else if (!strcmp(a, "--out")) {
            if (!*v) {
                fprintf(stderr, "nb-synth: --out must not be empty\n");
                return 2;
            }
            o.out_dir = v;
        } else {
            if (!*v) {
                fprintf(stderr, "nb-synth: --catalog must not be empty\n");
                return 2;
            }
            o.catalog_dir = v;
        }
    }
    if (!have_users) {
        fprintf(stderr, "nb-synth: --users N is required (see --help)\n");
        return 2;
    }
    if (!o.out_dir) {
        fprintf(stderr, "nb-synth: --out DIR is required (see --help)\n");
        return 2;
    }
    int rc = sy_run(&o, stderr, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nb-synth: %s\n", err);
        return rc == NB_EINVAL ? 2 : 1;
    }
    return 0;
}
