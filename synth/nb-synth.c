/* nb-synth -- writes a synthetic grocery data set in the Instacart CSV layout.
 *
 *   nb-synth --users N --seed S --out DIR [--catalog DIR]
 *
 * See synth/synth.h for the model behind the data. Exit status: 0 on success, 2 for bad
 * flags, 1 for any other error (the message names the parameter or file). */
#include "synth.h"

#include "nb_err.h"
#include "nb_flags.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static const char usage[] =
    "usage: nb-synth --users N --seed S --out DIR [--catalog DIR]\n"
    "\n"
    "Writes a synthetic grocery data set in the Instacart CSV layout into DIR (created if\n"
    "missing): orders.csv, order_products__prior.csv, order_products__train.csv,\n"
    "products.csv, aisles.csv, departments.csv. Same arguments give byte-identical files.\n"
    "orders.csv is sorted by user_id, then order_number; order ids are 1..(number of\n"
    "orders), shuffled across all users by a keyed bijection (unique, but in no order).\n"
    "The item files list each order's rows in add_to_cart_order, orders grouped by user.\n"
    "orders.csv is written last, so its presence means the set is complete.\n"
    "Statistics of the generated set (orders per user, basket size, reorder share,\n"
    "train/test share, top-product share) are printed to stderr.\n"
    "\n";

typedef struct {
    unsigned long long users, seed;
    const char *out, *catalog;
} synth_flags;

#define O(field) offsetof(synth_flags, field)
static const nb_flag FLAGS[] = {
    {"users", NB_F_U64, O(users), 1, 20000000, "N", "", "number of users (Instacart has 206209)",
     NB_F_REQUIRED, NULL, NULL},
    {"seed", NB_F_U64, O(seed), 0, 0, "S", "1", "random seed, an unsigned 64-bit integer", 0, NULL,
     NULL},
    {"out", NB_F_STR, O(out), 0, 0, "DIR", "", "output directory", NB_F_REQUIRED, NULL, NULL},
    {"catalog", NB_F_STR, O(catalog), 0, 0, "DIR", "",
     "use the real catalogue in DIR (products.csv, aisles.csv, departments.csv, copied into the "
     "output) instead of the invented one (49688 products, 134 aisles, 21 departments)",
     0, NULL, NULL},
};
#undef O

int main(int argc, char **argv) {
    synth_flags f = {.seed = 1};
    int ex = nb_flags_main("nb-synth", usage, FLAGS, NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    char err[NB_ERRLEN];
    sy_options o = {
        .users = (int64_t)f.users, .seed = f.seed, .out_dir = f.out, .catalog_dir = f.catalog};
    int rc = sy_run(&o, stderr, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nb-synth: %s\n", err);
        return rc == NB_EINVAL ? 2 : 1;
    }
    return 0;
}
