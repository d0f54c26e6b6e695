/* harness.h -- a tiny test harness shared by every C test program.
 *
 *   static int test_crc(void) {
 *       T_ASSERT(nb_crc32(0, "123456789", 9) == 0xCBF43926u, "crc of check string");
 *       return T_PASS;
 *   }
 *   int main(void) { T_RUN(test_crc); return t_summary(); }
 *
 * Each test prints one line, "ok <name>", "not ok <name>: <why>" or "skip <name>: <why>",
 * which tests/run.sh counts. A skip becomes a failure when CI=true (real data must be there).
 * t_summary() returns the exit status: non-zero if anything failed.
 */
#ifndef NB_HARNESS_H
#define NB_HARNESS_H
#include <stdio.h>

#define T_PASS 0
#define T_FAIL 1
#define T_SKIPPED 77

/* Fails the current test (returns from it) with file:line and a message when !cond. */
#define T_ASSERT(cond, ...)                                     \
    do {                                                        \
        if (!(cond)) {                                          \
            t_fail_msg(__FILE__, __LINE__, #cond, __VA_ARGS__); \
            return T_FAIL;                                      \
        }                                                       \
    } while (0)

/* Skips the current test with a reason (e.g. "../shared/data/tafeng absent"). */
#define T_SKIP(...)              \
    do {                         \
        t_skip_msg(__VA_ARGS__); \
        return T_SKIPPED;        \
    } while (0)

#define T_RUN(fn) t_run(#fn, fn)

void t_fail_msg(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void t_skip_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_run(const char *name, int (*fn)(void));
int t_summary(void);

/* Directory of the shared real data (env NB_DATA, default "../shared/data" relative to the
 * repository root, which is the working directory of every test). NULL if absent. */
const char *t_data_dir(void);
/* A fresh empty temporary directory for this test program (removed by t_summary). */
const char *t_tmpdir(void);
/* Writes text to the file dir/name, replacing it (best effort: a file that could not be
 * written shows up as a failure where the test reads it). */
void t_put(const char *dir, const char *name, const char *text);
/* Directory holding the built programs (env NB_BIN, default "bin"). */
const char *t_bin_dir(void);

#endif
