/* srv_auth.c -- the admin token (see srv_auth.h). */
#include "srv_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nb_err.h"

struct srv_auth {
    size_t len;
    char tok[SRV_TOKEN_MAX + 1];
};

/* 1 for a b64token character (RFC 6750 section 2.1), '=' excluded (only trailing). */
static int b64tok_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* See srv_auth.h. The file is read whole (bounded) with one descriptor: the permission
 * check and the content are of the same file. */
int srv_auth_load(srv_auth **out, const char *path, char *warn, size_t warnlen, char *err,
                  size_t errlen) {
    int rc = NB_OK, fd = -1;
    srv_auth *a = nb_xcalloc(1, sizeof *a);
    struct stat sb;
    size_t n = 0;
    *out = NULL;
    if (warn && warnlen) warn[0] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = nb_err(err, errlen, NB_EIO, "--admin-token-file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = nb_err(err, errlen, NB_EIO, "--admin-token-file %s: not a regular file", path);
        goto done;
    }
    for (;;) { /* one byte past the limit tells "too long" from "exactly the limit" */
        ssize_t r = read(fd, a->tok + n, sizeof a->tok - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = nb_err(err, errlen, NB_EIO, "--admin-token-file %s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0 || (n += (size_t)r) == sizeof a->tok) break;
    }
    /* one line end may follow the token (echo, editors) */
    if (n > 0 && a->tok[n - 1] == '\n') n--;
    if (n > 0 && a->tok[n - 1] == '\r') n--;
    if (n == 0) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "--admin-token-file %s: the file is empty; it must hold the token "
                    "(e.g. head -c 32 /dev/urandom | base64 > FILE)",
                    path);
        goto done;
    }
    if (n > SRV_TOKEN_MAX) {
        rc = nb_err(err, errlen, NB_EFORMAT, "--admin-token-file %s: longer than %d bytes", path,
                    SRV_TOKEN_MAX);
        goto done;
    }
    size_t i = 0;
    while (i < n && b64tok_char((unsigned char)a->tok[i])) i++;
    while (i > 0 && i < n && a->tok[i] == '=') i++; /* b64token's trailing padding */
    if (i < n) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "--admin-token-file %s: byte %zu is not a token character (letters, "
                    "digits, - . _ ~ + /, trailing =; one line end at most)",
                    path, i);
        goto done;
    }
    a->len = n;
    if (warn && warnlen) {
        if (sb.st_mode & (S_IRWXG | S_IRWXO))
            snprintf(warn, warnlen,
                     "--admin-token-file %s: readable or writable by group or others (mode "
                     "%03o); chmod 600 it",
                     path, (unsigned)(sb.st_mode & 0777));
        else if (n < SRV_TOKEN_MIN_ADVISED)
            snprintf(warn, warnlen,
                     "--admin-token-file %s: the token has %zu characters; use at least %d", path,
                     n, SRV_TOKEN_MIN_ADVISED);
    }
    *out = a;
    a = NULL;
done:
    if (fd >= 0) close(fd);
    srv_auth_free(a);
    return rc;
}

/* See srv_auth.h. */
void srv_auth_free(srv_auth *a) {
    if (!a) return;
    explicit_bzero(a, sizeof *a);
    free(a);
}

/* 1 when b[nb] equals a[na]. The loop runs over the configured token a (its length is the
 * only thing about it the time reveals) and reads b without a data-dependent branch. */
static int equal_ct(const char *a, size_t na, const char *b, size_t nb) {
    volatile unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++) {
        unsigned char bc = i < nb ? (unsigned char)b[i] : 0;
        d |= (unsigned char)((unsigned char)a[i] ^ bc);
    }
    return d == 0;
}

/* See srv_auth.h. */
int srv_auth_check(const srv_auth *a, const char *h) {
    if (!h) return 401;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return 401;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n == 0) return 401;
    if (!a) return 403;
    return equal_ct(a->tok, a->len, h, n) ? 0 : 403;
}
