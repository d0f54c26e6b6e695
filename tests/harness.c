/* harness.c -- see harness.h. */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_pass, n_fail, n_skip;
static char why[2048];
static char tmpdir[256];

void t_fail_msg(const char *file, int line, const char *cond, const char *fmt, ...) {
    int n = snprintf(why, sizeof why, "%s:%d: (%s) ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof why) vsnprintf(why + n, sizeof why - (size_t)n, fmt, ap);
    va_end(ap);
}

void t_skip_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
}

void t_run(const char *name, int (*fn)(void)) {
    why[0] = 0;
    int rc = fn();
    if (rc == T_SKIPPED) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            printf("not ok %s: skipped under CI=true: %s\n", name, why);
            n_fail++;
        } else {
            printf("skip %s: %s\n", name, why);
            n_skip++;
        }
    } else if (rc == T_PASS) {
        printf("ok %s\n", name);
        n_pass++;
    } else {
        printf("not ok %s: %s\n", name, why[0] ? why : "failed");
        n_fail++;
    }
    fflush(stdout);
}

int t_summary(void) {
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
    fprintf(stderr, "# %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}

const char *t_data_dir(void) {
    const char *d = getenv("NB_DATA");
    if (!d || !*d) d = "../shared/data";
    struct stat st;
    return stat(d, &st) == 0 && S_ISDIR(st.st_mode) ? d : NULL;
}

const char *t_tmpdir(void) {
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/nbtest.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

const char *t_bin_dir(void) {
    const char *b = getenv("NB_BIN");
    return b && *b ? b : "bin";
}

/* See harness.h: fopen/fputs, errors left for the reader of the file to find. */
void t_put(const char *dir, const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}
