/* test_srv_auth.c -- server/srv_auth.h: the token file's validation (each error names the
 * file and never the token), the warnings, and the Authorization header check. */
#include "harness.h"
#include "nb_err.h"
#include "srv_auth.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define TOK "s3cr3t-Token_0123456789+/abc=="

/* Writes text to <tmp>/name with mode, returns the path (static buffer per call site). */
static const char *token_file(const char *name, const char *text, mode_t mode, char *path,
                              size_t n) {
    t_put(t_tmpdir(), name, text);
    snprintf(path, n, "%s/%s", t_tmpdir(), name);
    chmod(path, mode);
    return path;
}

static int test_load(void) {
    char path[600], err[NB_ERRLEN], warn[NB_ERRLEN];
    srv_auth *a = NULL;
    /* good: one line end is not part of the token; no warning at 0600 */
    token_file("good", TOK "\r\n", 0600, path, sizeof path);
    T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(warn[0] == '\0', "warning: %s", warn);
    T_ASSERT(srv_auth_check(a, "Bearer " TOK) == 0, "token with the line end stripped");
    srv_auth_free(a);
    /* the errors: each names the file, none quotes the content */
    struct {
        const char *name, *text, *msg;
    } bad[] = {
        {"empty", "", "is empty"},
        {"newline_only", "\n", "is empty"},
        {"space", "abc def-ghijklmnopq", "byte 3"},
        {"two_lines", TOK "\n" TOK "\n", "byte 30"},
        {"inner_pad", "abc=def", "byte 4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        token_file(bad[i].name, bad[i].text, 0600, path, sizeof path);
        a = NULL;
        T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_EFORMAT && !a,
                 "%s loaded", bad[i].name);
        T_ASSERT(strstr(err, path) && strstr(err, bad[i].msg) && !strstr(err, "def"),
                 "%s: %s", bad[i].name, err);
    }
    char big[SRV_TOKEN_MAX + 3];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    token_file("long", big, 0600, path, sizeof path);
    T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "longer than"),
             "%s", err);
    snprintf(path, sizeof path, "%s/absent", t_tmpdir());
    T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_EIO &&
                 strstr(err, path),
             "%s", err);
    T_ASSERT(srv_auth_load(&a, t_tmpdir(), warn, sizeof warn, err, sizeof err) == NB_EIO &&
                 strstr(err, "not a regular file"),
             "%s", err);
    /* the warnings: readable by others, short */
    token_file("world", TOK, 0644, path, sizeof path);
    T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(strstr(warn, "mode 644") && strstr(warn, path) && !strstr(warn, TOK), "%s", warn);
    srv_auth_free(a);
    token_file("short", "abc", 0600, path, sizeof path);
    T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(strstr(warn, "3 characters"), "%s", warn);
    srv_auth_free(a);
    return T_PASS;
}

static int test_check(void) {
    char path[600], err[NB_ERRLEN], warn[NB_ERRLEN];
    srv_auth *a = NULL;
    token_file("tok", TOK "\n", 0600, path, sizeof path);
    T_ASSERT(srv_auth_load(&a, path, warn, sizeof warn, err, sizeof err) == NB_OK, "%s", err);
    struct {
        const char *h;
        int want;
    } c[] = {
        {NULL, 401},
        {"", 401},
        {"Bearer", 401},
        {"Bearer   ", 401},
        {"Basic " TOK, 401},
        {"Bearer" TOK, 401},
        {"Bearer " TOK, 0},
        {"bearer " TOK, 0},
        {"  BEARER \t" TOK "  ", 0},
        {"Bearer " TOK "x", 403},
        {"Bearer s3cr3t", 403},
        {"Bearer X3cr3t-Token_0123456789+/abc==", 403},
        {"Bearer " TOK " " TOK, 403},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        T_ASSERT(srv_auth_check(a, c[i].h) == c[i].want, "case %zu '%s': %d", i,
                 c[i].h ? c[i].h : "(none)", srv_auth_check(a, c[i].h));
    srv_auth_free(a);
    T_ASSERT(srv_auth_check(NULL, "Bearer " TOK) == 403 && srv_auth_check(NULL, NULL) == 401,
             "no token configured");
    return T_PASS;
}

int main(void) {
    T_RUN(test_load);
    T_RUN(test_check);
    return t_summary();
}
