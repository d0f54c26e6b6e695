/* nb_flags.c -- table-driven command-line parsing (see nb_flags.h). */
#include "nb_flags.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"

/* See nb_flags.h. */
void nb_flags_usage(FILE *out, const char *usage, const nb_flag *t, size_t n) {
    int has_help = 0;
    if (usage) fputs(usage, out);
    for (size_t i = 0; i < n; i++) {
        const nb_flag *d = &t[i];
        int bare = d->type == NB_F_BOOL || d->type == NB_F_HELP;
        has_help |= d->type == NB_F_HELP;
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", d->name, bare ? "" : " ",
                 bare                      ? ""
                     : d->arg              ? d->arg
                     : d->type == NB_F_STR ? "S"
                                           : "V");
        const char *def = d->def ? d->def : "";
        fprintf(out, "  %-18s %s%s%s%s%s\n", left, d->help ? d->help : "",
                d->flags & NB_F_REQUIRED ? " (required)" : "", def[0] ? " [default " : "", def,
                def[0] ? "]" : "");
    }
    if (!has_help) fprintf(out, "  %-18s %s\n", "--help", "this list");
}

/* Parses one value for d into the field p. Returns NB_OK or NB_EINVAL naming the flag. */
static int set_value(void *p, const nb_flag *d, const char *v, char *err, size_t errlen) {
    char *end = NULL;
    errno = 0;
    switch (d->type) {
        case NB_F_STR:
            if (!*v) return nb_err(err, errlen, NB_EINVAL, "--%s: empty value", d->name);
            *(const char **)p = v;
            return NB_OK;
        case NB_F_INT:
        case NB_F_LL: {
            long long x = strtoll(v, &end, 10);
            if (errno || end == v || *end)
                return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not an integer", d->name, v);
            if ((double)x < d->lo || (double)x > d->hi)
                return nb_err(err, errlen, NB_EINVAL, "--%s: %lld is out of range [%.0f, %.0f]",
                              d->name, x, d->lo, d->hi);
            if (d->type == NB_F_INT)
                *(int *)p = (int)x;
            else
                *(long long *)p = x;
            return NB_OK;
        }
        case NB_F_U64: {
            unsigned long long x = 0;
            if (*v != '-' && *v != '+') x = strtoull(v, &end, 10);
            if (*v == '-' || *v == '+' || errno || end == v || *end)
                return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not an unsigned integer",
                              d->name, v);
            if ((double)x < d->lo || (d->hi > 0 && (double)x > d->hi))
                return nb_err(err, errlen, NB_EINVAL, "--%s: %llu is out of range [%.0f, %.0f]",
                              d->name, x, d->lo, d->hi);
            *(unsigned long long *)p = x;
            return NB_OK;
        }
        case NB_F_DBL: {
            double x = strtod(v, &end);
            if (errno || end == v || *end || !isfinite(x))
                return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not a number", d->name, v);
            if (x < d->lo || x > d->hi)
                return nb_err(err, errlen, NB_EINVAL, "--%s: %g is out of range [%g, %g]", d->name,
                              x, d->lo, d->hi);
            *(double *)p = x;
            return NB_OK;
        }
        case NB_F_CHOICE: {
            char list[256] = "";
            size_t len = 0;
            for (int k = 0; d->choices[k]; k++) {
                if (!strcmp(v, d->choices[k])) {
                    *(int *)p = k;
                    return NB_OK;
                }
                int w =
                    snprintf(list + len, sizeof list - len, "%s%s", k ? "|" : "", d->choices[k]);
                if (w > 0 && (size_t)w < sizeof list - len) len += (size_t)w;
            }
            return nb_err(err, errlen, NB_EINVAL, "--%s: '%s' is not %s", d->name, v, list);
        }
        case NB_F_FN: return d->parse(p, v, d, err, errlen);
    }
    return nb_err(err, errlen, NB_EINVAL, "--%s: internal flag type", d->name);
}

/* See nb_flags.h. */
int nb_flags_parse(const nb_flag *t, size_t n, void *dst, int argc, char **argv, char *err,
                   size_t errlen) {
    unsigned char seen[256] = {0}; /* per table entry; tables are far shorter */
    int help = 0;
    if (n > sizeof seen) return nb_err(err, errlen, NB_EINVAL, "flag table too long");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h")) a = "--help";
        if (strncmp(a, "--", 2) != 0)
            return nb_err(err, errlen, NB_EINVAL, "unexpected argument '%s' (flags start with --)",
                          a);
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const nb_flag *d = NULL;
        for (size_t j = 0; j < n && !d; j++)
            if (strlen(t[j].name) == nlen && !strncmp(t[j].name, a, nlen)) d = &t[j];
        if (!d) return nb_err(err, errlen, NB_EINVAL, "unknown flag '%s' (see --help)", argv[i]);
        seen[d - t] = 1;
        void *field = (char *)dst + d->off;
        if (d->type == NB_F_BOOL || d->type == NB_F_HELP) {
            if (eq) return nb_err(err, errlen, NB_EINVAL, "--%s takes no value", d->name);
            *(int *)field = 1;
            help |= d->type == NB_F_HELP;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) return nb_err(err, errlen, NB_EINVAL, "--%s needs a value", d->name);
            v = argv[++i];
        }
        int rc = set_value(field, d, v, err, errlen);
        if (rc) return rc;
    }
    if (help) return NB_OK;
    for (size_t j = 0; j < n; j++)
        if ((t[j].flags & NB_F_REQUIRED) && !seen[j])
            return nb_err(err, errlen, NB_EINVAL, "--%s%s%s is required (see --help)", t[j].name,
                          t[j].arg ? " " : "", t[j].arg ? t[j].arg : "");
    return NB_OK;
}

/* See nb_flags.h. */
int nb_flags_main(const char *prog, const char *usage, const nb_flag *t, size_t n, void *dst,
                  int argc, char **argv) {
    char err[NB_ERRLEN];
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            nb_flags_usage(stdout, usage, t, n);
            return 0;
        }
    if (nb_flags_parse(t, n, dst, argc, argv, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", prog, err);
        nb_flags_usage(stderr, usage, t, n);
        return 2;
    }
    return -1;
}
