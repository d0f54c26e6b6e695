/* test_csv.c -- the streaming CSV reader on its edge cases. */
#include "csv.h"
#include "harness.h"
#include "nb_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes n bytes of data to a fresh file under the test directory; returns its path. */
static const char *put(const char *name, const char *data, size_t n) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
    return path;
}
#define PUT(name, lit) put(name, lit, sizeof lit - 1)

static const char *const hdr3[] = {"a", "b", "c"};

static int test_csv_quotes_commas(void) {
    char err[NB_ERRLEN];
    st_csv c;
    const char *p = PUT("q.csv",
                        "a,b,c\n1,\"Bag of Organic Bananas, 2 lb\",x\n"
                        "2,\"say \"\"hi\"\"\",\"\"\n3,\"two\nlines\",z\n4,plain\"quote,w\n");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.nf == 3, "row 1");
    T_ASSERT(strcmp(c.f[1], "Bag of Organic Bananas, 2 lb") == 0, "comma in quotes: '%s'", c.f[1]);
    T_ASSERT(c.line == 2 && c.flen[1] == 28, "line %lld len %zu", c.line, c.flen[1]);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.nf == 3, "row 2");
    T_ASSERT(strcmp(c.f[1], "say \"hi\"") == 0, "doubled quotes: '%s'", c.f[1]);
    T_ASSERT(c.f[2][0] == 0 && c.flen[2] == 0, "empty quoted field");
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && strcmp(c.f[1], "two\nlines") == 0,
             "newline in quotes");
    T_ASSERT(c.line == 4, "record starts on line 4, got %lld", c.line);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.line == 6,
             "line counting after a quoted newline");
    T_ASSERT(strcmp(c.f[1], "plain\"quote") == 0, "quote inside unquoted field kept: '%s'", c.f[1]);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 0, "EOF");
    st_csv_close(&c);
    return T_PASS;
}

static int test_csv_crlf_bom_lastline(void) {
    char err[NB_ERRLEN];
    st_csv c;
    const char *p = PUT("crlf.csv",
                        "\xEF\xBB\xBF"
                        "a,b,c\r\n1,2,\r\n\r\n3,\"x,y\",4");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "BOM not part of the header: %s",
             err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.nf == 3, "row 1 has 3 fields (empty last)");
    T_ASSERT(strcmp(c.f[1], "2") == 0 && c.flen[2] == 0, "CR stripped, empty last field");
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.nf == 3 && c.line == 4,
             "blank line skipped, line %lld", c.line);
    T_ASSERT(strcmp(c.f[1], "x,y") == 0 && strcmp(c.f[2], "4") == 0,
             "last line without newline: '%s'", c.f[2]);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 0, "EOF");
    st_csv_close(&c);
    return T_PASS;
}

static int test_csv_errors(void) {
    char err[NB_ERRLEN];
    st_csv c;
    const char *p = PUT("bad.csv", "a,b,c\n1,2\n1,2,3,4\n\"open,2,3\n");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1, "short row still reads");
    T_ASSERT(st_csv_check_count(&c, err, sizeof err) == NB_EFORMAT, "2 fields refused");
    T_ASSERT(strstr(err, "bad.csv:2: 2 fields, expected 3") != NULL, "message: %s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 &&
                 st_csv_check_count(&c, err, sizeof err) == NB_EFORMAT,
             "4 fields refused");
    T_ASSERT(strstr(err, "bad.csv:3: 4 fields") != NULL, "message: %s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == NB_EFORMAT, "unterminated quote");
    T_ASSERT(strstr(err, "bad.csv:4: field 1: unterminated") != NULL, "message: %s", err);
    st_csv_close(&c);

    p = PUT("after.csv", "a,b,c\n\"x\"y,2,3\n");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "after.csv:2: field 1: text after"),
             "text after closing quote: %s", err);
    st_csv_close(&c);

    p = PUT("hdr.csv", "a,x,c\n");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_EFORMAT, "wrong header");
    T_ASSERT(strstr(err, "hdr.csv:1: header field 2 is 'x', expected 'b'") != NULL, "message: %s",
             err);
    st_csv_close(&c);
    p = PUT("hdr2.csv", "a,b\n");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "2 fields, expected 3"),
             "short header: %s", err);
    st_csv_close(&c);
    p = PUT("empty.csv", "");
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_EFORMAT && strstr(err, "empty file"),
             "%s", err);
    st_csv_close(&c);

    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.csv", t_tmpdir());
    T_ASSERT(st_csv_open(&c, missing, err, sizeof err) == NB_ENOTFOUND && strstr(err, "nope.csv"),
             "%s", err);
    st_csv_close(&c);
    return T_PASS;
}

static int test_csv_int(void) {
    char err[NB_ERRLEN];
    st_csv c;
    const char *p = PUT("int.csv", "a,b,c\n15.0,15,\n15.5,x1,99999999999999999999999\n-3,+4,1e3\n");
    int64_t v = 0;
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1, "row");
    T_ASSERT(st_csv_int(&c, 0, 0, 30, 1, &v, err, sizeof err) == NB_OK && v == 15,
             "15.0 with allow_point");
    T_ASSERT(st_csv_int(&c, 0, 0, 30, 0, &v, err, sizeof err) == NB_EFORMAT,
             "15.0 refused as an id");
    T_ASSERT(strstr(err, "int.csv:2: field a: '15.0' is not an integer") != NULL, "message: %s",
             err);
    T_ASSERT(st_csv_int(&c, 1, 0, 30, 1, &v, err, sizeof err) == NB_OK && v == 15, "15");
    T_ASSERT(st_csv_int(&c, 1, 0, 10, 0, &v, err, sizeof err) == NB_EFORMAT, "range");
    T_ASSERT(strstr(err, "field b: 15 is out of range 0..10") != NULL, "message: %s", err);
    T_ASSERT(st_csv_int(&c, 2, 0, 10, 0, &v, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "field c: empty"),
             "empty: %s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1, "row");
    T_ASSERT(st_csv_int(&c, 0, 0, 30, 1, &v, err, sizeof err) == NB_EFORMAT,
             "15.5 is not an integer");
    T_ASSERT(st_csv_int(&c, 1, 0, 30, 1, &v, err, sizeof err) == NB_EFORMAT, "x1");
    T_ASSERT(st_csv_int(&c, 2, 0, INT32_MAX, 0, &v, err, sizeof err) == NB_EFORMAT &&
                 strstr(err, "out of range"),
             "overflow: %s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1, "row");
    T_ASSERT(st_csv_int(&c, 0, -5, 5, 0, &v, err, sizeof err) == NB_OK && v == -3, "negative");
    T_ASSERT(st_csv_int(&c, 1, -5, 5, 0, &v, err, sizeof err) == NB_OK && v == 4, "plus sign");
    T_ASSERT(st_csv_int(&c, 2, 0, 5000, 0, &v, err, sizeof err) == NB_EFORMAT, "1e3 refused");
    st_csv_close(&c);
    return T_PASS;
}

/* Found by tests/fuzz/fuzz_csv.c: an integer field with a NUL inside ("160\0...32") was
 * read as the digits before the NUL, so a corrupted order id imported as another one. */
static int test_csv_int_nul(void) {
    char err[NB_ERRLEN];
    st_csv c;
    static const char data[] = "a,b,c\n160\0\0"
                               "32,7\0,\"5\"\n";
    const char *p = put("intnul.csv", data, sizeof data - 1);
    int64_t v = 0;
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1, "row: %s", err);
    T_ASSERT(st_csv_int(&c, 0, 0, INT32_MAX, 0, &v, err, sizeof err) == NB_EFORMAT,
             "160<NUL>32 read as %lld", (long long)v);
    T_ASSERT(strstr(err, "field a: '160' is followed by a NUL byte"), "message: %s", err);
    T_ASSERT(st_csv_int(&c, 1, 0, 30, 1, &v, err, sizeof err) == NB_EFORMAT, "7<NUL> read as %lld",
             (long long)v);
    T_ASSERT(st_csv_int(&c, 2, 0, 30, 0, &v, err, sizeof err) == NB_OK && v == 5, "quoted 5");
    st_csv_close(&c);
    return T_PASS;
}

/* Records longer than the 1 MB read buffer, split across refills. */
static int test_csv_buffer_boundaries(void) {
    char err[NB_ERRLEN];
    size_t n = 3u << 20;
    char *data = malloc(n + 64);
    T_ASSERT(data != NULL, "malloc");
    size_t len = (size_t)sprintf(data, "a,b,c\n1,\"");
    size_t body = 2500000;
    for (size_t i = 0; i < body; i++) data[len++] = (i % 1000 == 999) ? ',' : 'q';
    len += (size_t)sprintf(data + len, "\",3\r\n");
    /* many short rows after it, so that CRLF pairs straddle a buffer refill somewhere */
    int rows = 0;
    while (len < n) {
        len += (size_t)sprintf(data + len, "%d,y,z\r\n", rows);
        rows++;
    }
    const char *p = put("big.csv", data, len);
    free(data);
    st_csv c;
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    c.max_record =
        4u << 20; /* above the default limit on purpose: a record longer than the read buffer */
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.nf == 3 && c.flen[1] == body,
             "long field %zu", c.flen[1]);
    int got = 0, r;
    while ((r = st_csv_read(&c, err, sizeof err)) == 1) {
        if (c.nf != 3 || atoi(c.f[0]) != got || strcmp(c.f[2], "z") != 0) break;
        got++;
    }
    T_ASSERT(r == 0 && got == rows, "read %d of %d rows (r=%d, line %lld)", got, rows, r, c.line);
    T_ASSERT(c.line == 2 + rows, "last line number %lld", c.line);
    st_csv_close(&c);
    return T_PASS;
}

/* Issue 15 item 5: a record is bounded (ST_CSV_MAX_RECORD); past the bound the reader stops
 * with a message naming file, line and the field being read, having allocated no more than
 * the bound, whether the line is one huge field or a huge number of empty ones. */
static int test_csv_record_limit(void) {
    char err[NB_ERRLEN];
    size_t n = 5u * ST_CSV_MAX_RECORD;
    char *data = malloc(n + 256);
    T_ASSERT(data != NULL, "malloc");
    size_t len = (size_t)sprintf(data, "a,b,c\n1,ok,3\n2,");
    for (size_t i = 0; i < n; i++) data[len++] = 'x';
    len += (size_t)sprintf(data + len, ",3\n");
    const char *p = put("longname.csv", data, len);
    st_csv c;
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == 1, "a short row is fine");
    T_ASSERT(st_csv_read(&c, err, sizeof err) == NB_EFORMAT, "a record past the limit is refused");
    char want[128];
    snprintf(want, sizeof want, "longname.csv:3: field b: too long: the record passes %d bytes",
             ST_CSV_MAX_RECORD);
    T_ASSERT(strstr(err, want) != NULL, "message: %s", err);
    T_ASSERT(c.rec_cap <= ST_CSV_MAX_RECORD, "record buffer %zu bytes", c.rec_cap);
    st_csv_close(&c);

    /* a line of commas: the field arrays are bounded as well (~25 bytes per comma before) */
    len = (size_t)sprintf(data, "a,b,c\n");
    for (size_t i = 0; i < n; i++) data[len++] = ',';
    data[len++] = '\n';
    p = put("commas.csv", data, len);
    free(data);
    T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_csv_read(&c, err, sizeof err) == NB_EFORMAT,
             "a line of commas past the limit is refused");
    T_ASSERT(strstr(err, "commas.csv:2: field ") && strstr(err, "too long"), "message: %s", err);
    T_ASSERT(c.rec_cap <= ST_CSV_MAX_RECORD && (size_t)c.fcap <= ST_CSV_MAX_RECORD + 1,
             "buffers %zu / %d", c.rec_cap, c.fcap);
    st_csv_close(&c);
    return T_PASS;
}

#define S(lit) lit, sizeof(lit) - 1 /* a literal and its length (it may hold a NUL) */

/* Issue 15 item 6: names must be valid UTF-8 without control characters (NUL included). */
static int test_csv_text(void) {
    static const struct {
        const char *field; /* the CSV text of field b, quoted where needed */
        size_t len;
        const char *want; /* NULL: accepted; else part of the message */
    } cases[] = {
        {S("Brut Ros\xc3\xa9"), NULL},
        {S("fruitwater\xc2\xae \xe2\x82\xac \xf0\x9f\x8d\x8c"), NULL},
        {S("\"12\"\" Pizza, large\""), NULL},
        {S("\xff\xfe"), "invalid UTF-8 at byte 0 (0xff)"},
        {S("ab\xc3"), "invalid UTF-8 at byte 2 (0xc3)"},           /* truncated */
        {S("ab\xc3("), "invalid UTF-8 at byte 2 (0xc3)"},          /* bad continuation */
        {S("\x80x"), "invalid UTF-8 at byte 0 (0x80)"},            /* stray continuation */
        {S("\xc0\xaf"), "invalid UTF-8 at byte 0 (0xc0)"},         /* overlong '/' */
        {S("\xe0\x80\xaf"), "invalid UTF-8 at byte 0 (0xe0)"},     /* overlong */
        {S("\xed\xa0\x80"), "invalid UTF-8 at byte 0 (0xed)"},     /* surrogate U+D800 */
        {S("\xf4\x90\x80\x80"), "invalid UTF-8 at byte 0 (0xf4)"}, /* past U+10FFFF */
        {S("nul\0here"), "a NUL byte at byte 3 (0x00)"},
        {S("tab\there"), "a control character at byte 3 (0x09)"},
        {S("\"two\nlines\""), "a control character at byte 3 (0x0a)"},
        {S("esc\x1b[31m"), "a control character at byte 3 (0x1b)"},
        {S("del\x7f"), "a control character at byte 3 (0x7f)"},
        {S("0123456789abcdef0123456789abcdef"), NULL},
        {S("0123456789abcdef0123456789abcdefg"), "too long: 33 bytes, the limit is 32"},
    };
    char err[NB_ERRLEN], data[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = (size_t)sprintf(data, "a,b,c\n1,");
        memcpy(data + len, cases[i].field, cases[i].len);
        len += cases[i].len;
        len += (size_t)sprintf(data + len, ",3\n");
        const char *p = put("text.csv", data, len);
        st_csv c;
        T_ASSERT(st_csv_open(&c, p, err, sizeof err) == NB_OK, "%s", err);
        T_ASSERT(st_csv_header(&c, hdr3, 3, err, sizeof err) == NB_OK, "%s", err);
        T_ASSERT(st_csv_read(&c, err, sizeof err) == 1 && c.nf == 3, "case %zu: read", i);
        int rc = st_csv_text(&c, 1, 32, err, sizeof err);
        if (!cases[i].want) {
            T_ASSERT(rc == NB_OK, "case %zu accepted: %s", i, err);
        } else {
            T_ASSERT(rc == NB_EFORMAT, "case %zu refused", i);
            T_ASSERT(strstr(err, "text.csv:2: field b: ") && strstr(err, cases[i].want),
                     "case %zu: %s", i, err);
        }
        st_csv_close(&c);
    }
    return T_PASS;
}

int main(void) {
    T_RUN(test_csv_quotes_commas);
    T_RUN(test_csv_crlf_bom_lastline);
    T_RUN(test_csv_errors);
    T_RUN(test_csv_int);
    T_RUN(test_csv_int_nul);
    T_RUN(test_csv_buffer_boundaries);
    T_RUN(test_csv_record_limit);
    T_RUN(test_csv_text);
    return t_summary();
}
