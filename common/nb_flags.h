/* nb_flags.h -- the one command-line parser of every program: a table of flags, each with
 * its type, range, default and help, parsed into the fields of a caller's struct. --help
 * always lists exactly the flags that exist.
 *
 * Flags are "--name value", "--name=value" or, for NB_F_BOOL, "--name" alone; "-h" means
 * "--help". Every error names the flag and the value.
 */
#ifndef NB_FLAGS_H
#define NB_FLAGS_H

#include <stddef.h>
#include <stdio.h>

enum {
    NB_F_STR,    /* const char * (borrowed from argv), not empty */
    NB_F_INT,    /* int in [lo, hi] */
    NB_F_LL,     /* long long in [lo, hi] */
    NB_F_U64,    /* unsigned long long (uint64_t), no sign, in [lo, hi] (hi 0: no upper bound) */
    NB_F_DBL,    /* finite double in [lo, hi] */
    NB_F_BOOL,   /* int set to 1 by the flag alone */
    NB_F_HELP,   /* like NB_F_BOOL; when given, required flags are not checked */
    NB_F_CHOICE, /* int = index of the value in choices (NULL-terminated) */
    NB_F_FN,     /* parse(field, value, ...) does the work */
};

#define NB_F_REQUIRED 1 /* nb_flag.flags: the flag must be given */

typedef struct nb_flag {
    const char *name; /* without the leading "--" */
    int type;         /* NB_F_* */
    size_t off;       /* offset of the field in the caller's struct (offsetof) */
    double lo, hi;    /* accepted range for numbers (inclusive) */
    const char *arg;  /* placeholder in usage and messages ("FILE", "N"), may be NULL */
    const char *def;  /* default shown by usage ("" for none) */
    const char *help;
    int flags;                  /* NB_F_REQUIRED */
    const char *const *choices; /* NB_F_CHOICE */
    /* NB_F_FN: parses v into field. Returns NB_OK or NB_EINVAL with a message naming --name */
    int (*parse)(void *field, const char *v, const struct nb_flag *d, char *err, size_t errlen);
} nb_flag;

/* Parses argv[1..argc) into dst by the table t[0..n). dst keeps its values (the defaults)
 * for flags not given; string fields borrow from argv. Returns NB_OK, or NB_EINVAL with a
 * message naming the flag: unknown flag, missing value, bad or out-of-range value, a
 * required flag missing (not checked when an NB_F_HELP flag was given). */
int nb_flags_parse(const nb_flag *t, size_t n, void *dst, int argc, char **argv, char *err,
                   size_t errlen);

/* Prints usage (one or more lines, may be NULL) and then every flag of t with its help and
 * default to out. */
void nb_flags_usage(FILE *out, const char *usage, const nb_flag *t, size_t n);

/* The number of entries of a flag table array. */
#define NB_FLAGS_N(t) (sizeof(t) / sizeof((t)[0]))

/* The usual start of a program's main: with --help or -h anywhere in argv prints the usage
 * and every flag (t needs no help entry: one is listed) to stdout and returns 0; else
 * parses argv into dst by t, and on an error prints "prog: message" and the usage to
 * stderr and returns 2; otherwise returns -1 (carry on). */
int nb_flags_main(const char *prog, const char *usage, const nb_flag *t, size_t n, void *dst,
                  int argc, char **argv);

#endif
