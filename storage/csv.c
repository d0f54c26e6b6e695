/* csv.c -- see csv.h. A byte-at-a-time state machine over a 1 MB read buffer; fields are
 * copied (quotes undone) into one record buffer so that callers get NUL-terminated texts. */
#include "csv.h"
#include "nb_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CSV_BUFSZ (1u << 20)
#define CSV_EOF (-1)
#define CSV_ERR (-2)

/* Refills the read buffer. Returns 1 (data), 0 (end of file) or NB_EIO. */
static int csv_fill(st_csv *c, char *err, size_t errlen) {
    if (c->eof) return 0;
    for (;;) {
        ssize_t n = read(c->fd, c->buf, CSV_BUFSZ);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return nb_err(err, errlen, NB_EIO, "%s: read failed: %s", c->path, strerror(errno));
        c->buf_pos = 0;
        c->buf_len = (size_t)n;
        if (n == 0) c->eof = 1;
        return n > 0;
    }
}

/* Returns the next byte, CSV_EOF, or CSV_ERR (message in err). */
static inline int csv_getc(st_csv *c, char *err, size_t errlen) {
    if (c->buf_pos == c->buf_len) {
        int rc = csv_fill(c, err, errlen);
        if (rc < 0) return CSV_ERR;
        if (rc == 0) return CSV_EOF;
    }
    return (unsigned char)c->buf[c->buf_pos++];
}

/* Like csv_getc but leaves the byte in the buffer. */
static inline int csv_peek(st_csv *c, char *err, size_t errlen) {
    int ch = csv_getc(c, err, errlen);
    if (ch >= 0) c->buf_pos--;
    return ch;
}

/* Appends one byte to the record buffer, growing it. */
static inline void rec_put(st_csv *c, char ch) {
    if (c->rec_len == c->rec_cap) {
        c->rec_cap = c->rec_cap ? 2 * c->rec_cap : 256;
        c->rec = nb_xrealloc(c->rec, c->rec_cap);
    }
    c->rec[c->rec_len++] = ch;
}

/* Starts field number c->nf at the current end of the record buffer. */
static void field_begin(st_csv *c) {
    if (c->nf == c->fcap) {
        c->fcap = c->fcap ? 2 * c->fcap : 16;
        c->fstart = nb_xrealloc(c->fstart, (size_t)c->fcap * sizeof *c->fstart);
        c->f = nb_xrealloc(c->f, (size_t)c->fcap * sizeof *c->f);
        c->flen = nb_xrealloc(c->flen, (size_t)c->fcap * sizeof *c->flen);
    }
    c->fstart[c->nf] = c->rec_len;
}

/* Ends the current field: records its length and NUL-terminates it. */
static void field_end(st_csv *c) {
    c->flen[c->nf] = c->rec_len - c->fstart[c->nf];
    rec_put(c, 0);
    c->nf++;
}

/* See csv.h. Skips a UTF-8 byte-order mark at the start of the file. */
int st_csv_open(st_csv *c, const char *path, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        int e = errno;
        return nb_err(err, errlen, e == ENOENT ? NB_ENOTFOUND : NB_EIO, "%s: cannot open: %s", path,
                      strerror(e));
    }
    c->path = strdup(path);
    c->buf = nb_xmalloc(CSV_BUFSZ);
    c->next_line = 1;
    int rc = csv_fill(c, err, errlen);
    if (rc < 0) {
        st_csv_close(c);
        return rc;
    }
    /* A UTF-8 byte-order mark (Excel exports) is not part of the first column name. */
    if (c->buf_len >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) c->buf_pos = 3;
    return NB_OK;
}

/* See csv.h: one record, quotes undone, line numbers counted across quoted newlines. */
int st_csv_read(st_csv *c, char *err, size_t errlen) {
    int ch;
    /* Skip blank lines; they carry no record (a trailing empty line is common). */
    for (;;) {
        ch = csv_getc(c, err, errlen);
        if (ch == CSV_ERR) return NB_EIO;
        if (ch == CSV_EOF) return 0;
        if (ch == '\n') {
            c->next_line++;
        } else if (ch == '\r') {
            c->next_line++;
            if (csv_peek(c, err, errlen) == '\n') c->buf_pos++;
        } else {
            break;
        }
    }
    c->line = c->next_line;
    c->nf = 0;
    c->rec_len = 0;
    for (;;) {
        field_begin(c);
        if (ch == '"') {
            for (;;) {
                ch = csv_getc(c, err, errlen);
                if (ch == CSV_ERR) return NB_EIO;
                if (ch == CSV_EOF)
                    return nb_err(err, errlen, NB_EFORMAT, "%s:%lld: field %d: unterminated quoted field",
                                  c->path, c->line, c->nf + 1);
                if (ch == '"') {
                    if (csv_peek(c, err, errlen) != '"') break;
                    c->buf_pos++;
                } else if (ch == '\n') {
                    c->next_line++;
                }
                rec_put(c, (char)ch);
            }
            ch = csv_getc(c, err, errlen);
            if (ch == CSV_ERR) return NB_EIO;
            if (ch != ',' && ch != '\n' && ch != '\r' && ch != CSV_EOF)
                return nb_err(err, errlen, NB_EFORMAT, "%s:%lld: field %d: text after the closing quote",
                              c->path, c->line, c->nf + 1);
        } else {
            /* A quote inside an unquoted field is kept literally (e.g. 12" Pizza). */
            while (ch != ',' && ch != '\n' && ch != '\r' && ch >= 0) {
                rec_put(c, (char)ch);
                ch = csv_getc(c, err, errlen);
            }
            if (ch == CSV_ERR) return NB_EIO;
        }
        field_end(c);
        if (ch == ',') {
            ch = csv_getc(c, err, errlen);
            if (ch == CSV_ERR) return NB_EIO;
            continue;
        }
        if (ch == '\n') {
            c->next_line++;
        } else if (ch == '\r') {
            c->next_line++;
            if (csv_peek(c, err, errlen) == '\n') c->buf_pos++;
        }
        break;
    }
    for (int i = 0; i < c->nf; i++) c->f[i] = c->rec + c->fstart[i];
    return 1;
}

/* The name of column col for messages: the header name, or its 1-based number. */
static const char *col_name(const st_csv *c, int col, char *tmp, size_t n) {
    if (col < c->nhdr) return c->hdr[col];
    snprintf(tmp, n, "%d", col + 1);
    return tmp;
}

/* See csv.h: line 1 must equal want[0..n). */
int st_csv_header(st_csv *c, const char *const *want, int n, char *err, size_t errlen) {
    int rc = st_csv_read(c, err, errlen);
    if (rc < 0) return rc;
    if (rc == 0) return nb_err(err, errlen, NB_EFORMAT, "%s:1: empty file, expected a header line", c->path);
    if (c->line != 1)
        return nb_err(err, errlen, NB_EFORMAT, "%s:1: blank first line, expected the header", c->path);
    for (int i = 0; i < n && i < c->nf; i++) {
        if (strcmp(c->f[i], want[i]) != 0)
            return nb_err(err, errlen, NB_EFORMAT, "%s:1: header field %d is '%.64s', expected '%s'", c->path,
                          i + 1, c->f[i], want[i]);
    }
    if (c->nf != n)
        return nb_err(err, errlen, NB_EFORMAT, "%s:1: header has %d fields, expected %d", c->path, c->nf, n);
    c->hdr = nb_xmalloc((size_t)n * sizeof *c->hdr);
    for (int i = 0; i < n; i++) c->hdr[i] = strdup(want[i]);
    c->nhdr = n;
    return NB_OK;
}

/* See csv.h: the record has as many fields as the header. */
int st_csv_check_count(const st_csv *c, char *err, size_t errlen) {
    if (c->nf == c->nhdr) return NB_OK;
    return nb_err(err, errlen, NB_EFORMAT, "%s:%lld: %d fields, expected %d (as in the header)", c->path,
                  c->line, c->nf, c->nhdr);
}

/* See csv.h: "<path>:<line>: field <name>: <message>". */
int st_csv_field_err(const st_csv *c, int col, char *err, size_t errlen, int code, const char *fmt, ...) {
    if (!err || errlen == 0) return code;
    char tmp[16];
    int n = snprintf(err, errlen, "%s:%lld: field %s: ", c->path, c->line, col_name(c, col, tmp, sizeof tmp));
    if (n > 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* See csv.h: a decimal integer in [lo, hi], optionally written with ".0". */
int st_csv_int(const st_csv *c, int col, int64_t lo, int64_t hi, int allow_point, int64_t *v, char *err,
               size_t errlen) {
    if (col >= c->nf) return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "missing");
    const char *s = c->f[col];
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, *s ? "'%.32s' is not an integer" : "empty",
                                s);
    uint64_t x = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (UINT64_MAX - 9) / 10)
            return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "'%.32s' is out of range %lld..%lld", s,
                                    (long long)lo, (long long)hi);
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (allow_point && *p == '.') {
        for (p++; *p == '0'; p++) {
        }
    }
    if (*p)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "'%.32s' is not an integer", s);
    if (x > (uint64_t)INT64_MAX)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "'%.32s' is out of range %lld..%lld", s,
                                (long long)lo, (long long)hi);
    int64_t y = neg ? -(int64_t)x : (int64_t)x;
    if (y < lo || y > hi)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "%lld is out of range %lld..%lld", (long long)y,
                                (long long)lo, (long long)hi);
    *v = y;
    return NB_OK;
}

/* See csv.h: closes the file and frees every buffer. */
void st_csv_close(st_csv *c) {
    if (c->path && c->fd >= 0) close(c->fd);
    free(c->path);
    free(c->buf);
    free(c->rec);
    free(c->fstart);
    free(c->f);
    free(c->flen);
    for (int i = 0; i < c->nhdr; i++) free(c->hdr[i]);
    free(c->hdr);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}
