/* csv.h -- a streaming CSV reader (RFC 4180 plus the habits of real exports).
 *
 *   st_csv c;
 *   if (st_csv_open(&c, "orders.csv", err, sizeof err)) return ...;
 *   if (st_csv_header(&c, names, 7, err, sizeof err)) goto done;   // checks line 1
 *   while ((rc = st_csv_read(&c, err, sizeof err)) == 1) {
 *       int64_t id;
 *       if (st_csv_int(&c, 0, 1, INT32_MAX, &id, err, sizeof err)) ...;
 *   }
 *   st_csv_close(&c);
 *
 * Accepted: quoted fields with commas, doubled quotes and newlines; LF, CRLF or lone CR line
 * endings; a UTF-8 byte-order mark; a missing final newline; blank lines (skipped). Memory is
 * one read buffer plus the longest record, whatever the file size, and the longest record is
 * bounded: a record (a line, or the lines of a quoted field with newlines) of more than
 * ST_CSV_MAX_RECORD bytes (its field texts plus one byte per field, about its length in the
 * file) is an error, reported against the field being read when the limit was passed. So the
 * reader never holds more than about 3 MB whatever the input. Error messages have the form
 * "<path>:<line>: field <name>: <what>", <line> being the line a record starts on. After an
 * error the reader can only be closed.
 */
#ifndef ST_CSV_H
#define ST_CSV_H

#include <stddef.h>
#include <stdint.h>

/* The longest record accepted, in bytes: the Instacart files' longest line has 171 bytes, so
 * 64 KiB leaves room for any real export and bounds memory (and the 25 bytes of field arrays
 * per field of a line of commas) to ~1.6 MB. */
#define ST_CSV_MAX_RECORD 65536

typedef struct {
    char *path; /* owned copy, used in messages */
    int fd;
    char *buf; /* read buffer */
    size_t buf_len, buf_pos;
    int eof;
    char *rec; /* the current record's fields, each NUL-terminated */
    size_t rec_len, rec_cap;
    size_t max_record; /* ST_CSV_MAX_RECORD after st_csv_open; a caller may change it */
    size_t *fstart;    /* [fcap] offsets of fields in rec */
    int fcap;
    /* the current record: valid until the next st_csv_read */
    int nf;              /* number of fields */
    char **f;            /* [nf] NUL-terminated field texts */
    size_t *flen;        /* [nf] their lengths (a quoted field may contain NUL-free text only) */
    long long line;      /* line number (1-based) where the current record starts */
    long long next_line; /* line number where the next record starts */
    /* the header (after st_csv_header): names used in messages */
    int nhdr;
    char **hdr;
} st_csv;

/* Opens path for reading. Returns NB_OK, NB_ENOTFOUND (no such file), NB_ENOMEM or NB_EIO, with a
 * message naming the file. On success the caller owns c and calls st_csv_close. On error c
 * holds nothing (st_csv_close is still safe). */
int st_csv_open(st_csv *c, const char *path, char *err, size_t errlen);

/* Reads the next record into c->nf / c->f. Returns 1 (a record), 0 (end of file) or
 * NB_EFORMAT (unterminated quote, text after a closing quote, a record longer than
 * c->max_record: "field <name>: too long") / NB_ENOMEM / NB_EIO with "<path>:<line>: ...". */
int st_csv_read(st_csv *c, char *err, size_t errlen);

/* Reads line 1 and checks that it is exactly the n column names `want` (in order). Returns
 * NB_OK, or NB_EFORMAT naming the file, line 1 and the first column that differs (or the
 * column count). Afterwards field names in messages come from the header. */
int st_csv_header(st_csv *c, const char *const *want, int n, char *err, size_t errlen);

/* Checks that the current record has exactly c->nhdr fields. Returns NB_OK or NB_EFORMAT
 * "<path>:<line>: N fields, expected M (<names>)". */
int st_csv_check_count(const st_csv *c, char *err, size_t errlen);

/* Parses field col of the current record as a decimal integer in [lo, hi]. A value written
 * "15.0" (digits, a point, only zeros) is accepted as 15 when allow_point is set. Returns
 * NB_OK and *v, or NB_EFORMAT "<path>:<line>: field <name>: ..." (empty, not an integer,
 * out of range). */
int st_csv_int(const st_csv *c, int col, int64_t lo, int64_t hi, int allow_point, int64_t *v,
               char *err, size_t errlen);

/* Checks that field col of the current record is text fit for a name shown to users and
 * written into JSON: at most max_len bytes, valid UTF-8 (no stray continuation or truncated
 * sequence, no overlong form, no UTF-16 surrogate, nothing past U+10FFFF), and no control
 * character (U+0000..U+001F, U+007F): an embedded NUL would silently truncate the name in
 * SQLite's text accessors, and other controls forge lines in logs and terminals. Returns NB_OK
 * or NB_EFORMAT "<path>:<line>: field <name>: ..." giving the byte offset (0-based, in the
 * field as unquoted) and the byte at fault. */
int st_csv_text(const st_csv *c, int col, size_t max_len, char *err, size_t errlen);

/* Formats "<path>:<line>: field <name>: " followed by the printf message into err and returns
 * code; for errors found by the caller about field col of the current record. */
int st_csv_field_err(const st_csv *c, int col, char *err, size_t errlen, int code, const char *fmt,
                     ...) __attribute__((format(printf, 6, 7)));

/* Releases everything c owns. Safe on a zeroed or failed-open c. */
void st_csv_close(st_csv *c);

#endif
