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
        if (n < 0)
            return nb_err(err, errlen, NB_EIO, "%s: read failed: %s", c->path, strerror(errno));
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

/* The name of column col for messages: the header name, or its 1-based number. */
static const char *col_name(const st_csv *c, int col, char *tmp, size_t n) {
    if (col < c->nhdr) return c->hdr[col];
    snprintf(tmp, n, "%d", col + 1);
    return tmp;
}

/* Grows the record buffer, which never passes ST_CSV_MAX_RECORD bytes: without a bound one
 * line of commas costs ~25 bytes of memory per input byte and a long enough line ends the
 * process in an abort. Returns NB_OK, NB_EFORMAT (the record is too long, naming the field
 * being read) or NB_ENOMEM, with "<path>:<line>: ..." in err. */
static int rec_grow(st_csv *c, char *err, size_t errlen) {
    char tmp[16];
    if (c->rec_cap >= c->max_record)
        return nb_err(
            err, errlen, NB_EFORMAT,
            "%s:%lld: field %s: too long: the record passes %zu bytes, the limit of a line",
            c->path, c->line, col_name(c, c->nf, tmp, sizeof tmp), c->max_record);
    size_t cap = c->rec_cap ? 2 * c->rec_cap : 256;
    if (cap > c->max_record) cap = c->max_record;
    char *p = realloc(c->rec, cap);
    if (!p)
        return nb_err(err, errlen, NB_ENOMEM, "%s:%lld: out of memory for a record of %zu bytes",
                      c->path, c->line, cap);
    c->rec = p;
    c->rec_cap = cap;
    return NB_OK;
}

/* Appends one byte to the record buffer, growing it. Returns NB_OK or rec_grow's error. */
static inline int rec_put(st_csv *c, char ch, char *err, size_t errlen) {
    if (c->rec_len == c->rec_cap) {
        int rc = rec_grow(c, err, errlen);
        if (rc) return rc;
    }
    c->rec[c->rec_len++] = ch;
    return NB_OK;
}

/* Starts field number c->nf at the current end of the record buffer. The field arrays are
 * bounded too: every field takes at least its terminator in the record buffer. Returns NB_OK
 * or NB_ENOMEM. */
static int field_begin(st_csv *c, char *err, size_t errlen) {
    if (c->nf == c->fcap) {
        size_t cap = c->fcap ? 2 * (size_t)c->fcap : 16;
        if (cap > c->max_record + 1)
            cap = c->max_record + 1; /* the most fields a record can hold */
        size_t *fs = realloc(c->fstart, (size_t)cap * sizeof *fs);
        if (fs) c->fstart = fs;
        char **f = fs ? realloc(c->f, (size_t)cap * sizeof *f) : NULL;
        if (f) c->f = f;
        size_t *fl = f ? realloc(c->flen, (size_t)cap * sizeof *fl) : NULL;
        if (!fl)
            return nb_err(err, errlen, NB_ENOMEM,
                          "%s:%lld: out of memory for a record of %zu fields", c->path, c->line,
                          cap);
        c->flen = fl;
        c->fcap = (int)cap;
    }
    c->fstart[c->nf] = c->rec_len;
    return NB_OK;
}

/* Ends the current field: records its length and NUL-terminates it. Returns NB_OK or
 * rec_put's error. */
static int field_end(st_csv *c, char *err, size_t errlen) {
    c->flen[c->nf] = c->rec_len - c->fstart[c->nf];
    int rc = rec_put(c, 0, err, errlen);
    if (rc == NB_OK) c->nf++;
    return rc;
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
    c->buf = malloc(CSV_BUFSZ);
    c->next_line = 1;
    c->max_record = ST_CSV_MAX_RECORD;
    if (!c->path || !c->buf) {
        close(c->fd); /* st_csv_close closes it only when path is set */
        c->fd = -1;
        st_csv_close(c);
        return nb_err(err, errlen, NB_ENOMEM, "%s: out of memory for the read buffer", path);
    }
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
    int rc;
    for (;;) {
        if ((rc = field_begin(c, err, errlen))) return rc;
        if (ch == '"') {
            for (;;) {
                ch = csv_getc(c, err, errlen);
                if (ch == CSV_ERR) return NB_EIO;
                if (ch == CSV_EOF)
                    return nb_err(err, errlen, NB_EFORMAT,
                                  "%s:%lld: field %d: unterminated quoted field", c->path, c->line,
                                  c->nf + 1);
                if (ch == '"') {
                    if (csv_peek(c, err, errlen) != '"') break;
                    c->buf_pos++;
                } else if (ch == '\n') {
                    c->next_line++;
                }
                if ((rc = rec_put(c, (char)ch, err, errlen))) return rc;
            }
            ch = csv_getc(c, err, errlen);
            if (ch == CSV_ERR) return NB_EIO;
            if (ch != ',' && ch != '\n' && ch != '\r' && ch != CSV_EOF)
                return nb_err(err, errlen, NB_EFORMAT,
                              "%s:%lld: field %d: text after the closing quote", c->path, c->line,
                              c->nf + 1);
        } else {
            /* A quote inside an unquoted field is kept literally (e.g. 12" Pizza). */
            while (ch != ',' && ch != '\n' && ch != '\r' && ch >= 0) {
                if ((rc = rec_put(c, (char)ch, err, errlen))) return rc;
                ch = csv_getc(c, err, errlen);
            }
            if (ch == CSV_ERR) return NB_EIO;
        }
        if ((rc = field_end(c, err, errlen))) return rc;
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

/* See csv.h: line 1 must equal want[0..n). */
int st_csv_header(st_csv *c, const char *const *want, int n, char *err, size_t errlen) {
    int rc = st_csv_read(c, err, errlen);
    if (rc < 0) return rc;
    if (rc == 0)
        return nb_err(err, errlen, NB_EFORMAT, "%s:1: empty file, expected a header line", c->path);
    if (c->line != 1)
        return nb_err(err, errlen, NB_EFORMAT, "%s:1: blank first line, expected the header",
                      c->path);
    for (int i = 0; i < n && i < c->nf; i++) {
        if (strcmp(c->f[i], want[i]) != 0)
            return nb_err(err, errlen, NB_EFORMAT,
                          "%s:1: header field %d is '%.64s', expected '%s'", c->path, i + 1,
                          c->f[i], want[i]);
    }
    if (c->nf != n)
        return nb_err(err, errlen, NB_EFORMAT, "%s:1: header has %d fields, expected %d", c->path,
                      c->nf, n);
    c->hdr = calloc((size_t)n, sizeof *c->hdr);
    if (!c->hdr)
        return nb_err(err, errlen, NB_ENOMEM, "%s:1: out of memory for the header", c->path);
    for (; c->nhdr < n; c->nhdr++)
        if (!(c->hdr[c->nhdr] = strdup(want[c->nhdr])))
            return nb_err(err, errlen, NB_ENOMEM, "%s:1: out of memory for the header", c->path);
    return NB_OK;
}

/* See csv.h: the record has as many fields as the header. */
int st_csv_check_count(const st_csv *c, char *err, size_t errlen) {
    if (c->nf == c->nhdr) return NB_OK;
    return nb_err(err, errlen, NB_EFORMAT, "%s:%lld: %d fields, expected %d (as in the header)",
                  c->path, c->line, c->nf, c->nhdr);
}

/* See csv.h: "<path>:<line>: field <name>: <message>". */
int st_csv_field_err(const st_csv *c, int col, char *err, size_t errlen, int code, const char *fmt,
                     ...) {
    if (!err || errlen == 0) return code;
    char tmp[16];
    int n = snprintf(err, errlen, "%s:%lld: field %s: ", c->path, c->line,
                     col_name(c, col, tmp, sizeof tmp));
    if (n > 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Returns the length (1..4) of the valid UTF-8 sequence at p (n bytes available) that
 * encodes no control character, or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned b = p[0];
    if (b < 0x80) return b >= 0x20 && b != 0x7F;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        len = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates U+D800..U+DFFF */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong two-byte forms) or F5..FF */
    }
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

/* See csv.h: length, then UTF-8 and controls byte by byte. */
int st_csv_text(const st_csv *c, int col, size_t max_len, char *err, size_t errlen) {
    if (col >= c->nf) return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "missing");
    const unsigned char *s = (const unsigned char *)c->f[col];
    size_t n = c->flen[col];
    if (n > max_len)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT,
                                "too long: %zu bytes, the limit is %zu", n, max_len);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) {
            const char *what = s[i] == 0      ? "a NUL byte"
                : s[i] < 0x20 || s[i] == 0x7F ? "a control character"
                                              : "invalid UTF-8";
            return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "%s at byte %zu (0x%02x)",
                                    what, i, s[i]);
        }
        i += k;
    }
    return NB_OK;
}

/* See csv.h: a decimal integer in [lo, hi], optionally written with ".0". */
int st_csv_int(const st_csv *c, int col, int64_t lo, int64_t hi, int allow_point, int64_t *v,
               char *err, size_t errlen) {
    if (col >= c->nf) return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "missing");
    const char *s = c->f[col];
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT,
                                *s ? "'%.32s' is not an integer" : "empty", s);
    uint64_t x = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (x > (UINT64_MAX - 9) / 10)
            return st_csv_field_err(c, col, err, errlen, NB_EFORMAT,
                                    "'%.32s' is out of range %lld..%lld", s, (long long)lo,
                                    (long long)hi);
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (allow_point && *p == '.') {
        for (p++; *p == '0'; p++) {}
    }
    if (*p)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "'%.32s' is not an integer", s);
    /* the text ends at a NUL that is not the field's end: "160<NUL>32" must not read as
     * 160 (found by tests/fuzz/fuzz_csv.c) */
    if ((size_t)(p - s) != c->flen[col])
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT,
                                "'%.32s' is followed by a NUL "
                                "byte: not an integer",
                                s);
    if (x > (uint64_t)INT64_MAX)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT,
                                "'%.32s' is out of range %lld..%lld", s, (long long)lo,
                                (long long)hi);
    int64_t y = neg ? -(int64_t)x : (int64_t)x;
    if (y < lo || y > hi)
        return st_csv_field_err(c, col, err, errlen, NB_EFORMAT, "%lld is out of range %lld..%lld",
                                (long long)y, (long long)lo, (long long)hi);
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
