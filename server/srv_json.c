/* srv_json.c -- request parsing/validation and the response writer (see srv_json.h). */
#include "srv_json.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nb_err.h"

/* See srv_json.h. */
int srv_json_int(const struct cJSON *obj, const char *name, double lo, double hi,
                 long long *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it) return 0;
    if (!cJSON_IsNumber(it)) return -1;
    double v = it->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < lo || v > hi) return -1;
    *out = (long long)v;
    return 1;
}

/* Length of the well-formed UTF-8 sequence (2..4 bytes) that starts at p (a byte >= 0x80),
 * reading no byte at or past end; 0 when the bytes there are not one (a stray continuation
 * byte, an overlong form, a surrogate, past U+10FFFF, or cut short). */
static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0; /* overlong */
        if (c == 0xed) hi = 0x9f; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90; /* overlong */
        if (c == 0xf4) hi = 0x8f; /* past U+10FFFF */
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* The byte-level rules cJSON does not enforce, checked before it runs: cJSON takes every
 * byte <= 0x20 for whitespace (so a trailing NUL or a \x01 between tokens passed), keeps raw
 * control bytes and invalid UTF-8 inside strings, decodes \u0000 into a string that ends
 * early, and reports nesting past its limit as a plain syntax error. Returns NB_OK or
 * NB_EFORMAT with the message (naming the byte offset) in err. */
static int json_prescan(const char *body, size_t len, char *err, size_t errlen) {
    const unsigned char *p = (const unsigned char *)body, *end = p + len;
    int in_str = 0, depth = 0;
    for (const unsigned char *q = p; q < end; q++) {
        unsigned c = *q;
        size_t at = (size_t)(q - p);
        if (in_str) {
            if (c == '"') {
                in_str = 0;
            } else if (c == '\\') {
                if (q + 1 < end && q[1] == 'u' && end - q >= 6 && memcmp(q + 2, "0000", 4) == 0)
                    return nb_err(err, errlen, NB_EFORMAT,
                                  "\\u0000 (NUL) inside a string at "
                                  "byte %zu",
                                  at);
                if (q + 1 < end) q++; /* the escaped character is not a quote */
            } else if (c < 0x20) {
                return nb_err(err, errlen, NB_EFORMAT,
                              "raw control byte 0x%02x inside a "
                              "string at byte %zu",
                              c, at);
            } else if (c >= 0x80) {
                size_t n = utf8_seq_len(q, end);
                if (!n) return nb_err(err, errlen, NB_EFORMAT, "invalid UTF-8 at byte %zu", at);
                q += n - 1;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > SRV_JSON_DEPTH_MAX)
                return nb_err(err, errlen, NB_EFORMAT,
                              "JSON nested deeper than %d levels at "
                              "byte %zu",
                              SRV_JSON_DEPTH_MAX, at);
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return nb_err(err, errlen, NB_EFORMAT,
                          "control byte 0x%02x at byte %zu (JSON "
                          "allows only space, tab, CR and LF between tokens)",
                          c, at);
        }
    }
    return NB_OK;
}

/* Checks that root (an object) has each of fields[nf] at most once and no other field.
 * Returns NB_OK, or NB_EFORMAT with *code "duplicate_field" or "unknown_field" and a
 * message naming the fields (every unknown one, as far as the message holds). */
static int check_fields(const cJSON *root, const char *const *fields, int nf, const char **code,
                        char *err, size_t errlen) {
    unsigned long long seen = 0;
    char unknown[160], known[160];
    size_t ul = 0, kl = 0;
    int n_unknown = 0;
    unknown[0] = known[0] = '\0';
    assert(nf <= 64);
    for (const cJSON *it = root->child; it; it = it->next) {
        int f = 0;
        while (f < nf && strcmp(it->string, fields[f])) f++;
        if (f < nf) {
            if (seen & (1ull << f)) {
                *code = "duplicate_field";
                return nb_err(err, errlen, NB_EFORMAT, "field %s appears more than once",
                              fields[f]);
            }
            seen |= 1ull << f;
            continue;
        }
        if (ul < sizeof unknown) {
            int w = snprintf(unknown + ul, sizeof unknown - ul, "%s\"%.40s\"",
                             n_unknown ? ", " : "", it->string);
            ul += w > 0 ? (size_t)w : 0;
        }
        n_unknown++;
    }
    if (!n_unknown) return NB_OK;
    for (int f = 0; f < nf && kl < sizeof known; f++) { /* "a, b and c" */
        int w = snprintf(known + kl, sizeof known - kl, "%s%s",
                         f == 0 ? "" : f == nf - 1 ? " and " : ", ", fields[f]);
        kl += w > 0 ? (size_t)w : 0;
    }
    *code = "unknown_field";
    return nb_err(err, errlen, NB_EFORMAT, "unknown field%s %s%s (a request has %s)",
                  n_unknown > 1 ? "s" : "", unknown, ul >= sizeof unknown ? "..." : "", known);
}

/* See srv_json.h. On error *root is NULL and nothing is owned. */
int srv_json_object(const char *body, size_t len, const char *const *fields, int n_fields,
                    struct cJSON **out, const char **code, char *err, size_t errlen) {
    int rc = NB_OK;
    const char *end = NULL;
    cJSON *root = NULL;
    *out = NULL;
    *code = "bad_json";
    if (len == 0) return nb_err(err, errlen, NB_EFORMAT, "empty body: expected a JSON object");
    rc = json_prescan(body, len, err, errlen);
    if (rc) return rc;
    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return nb_err(err, errlen, NB_EFORMAT, "malformed JSON near byte %zu", at);
    }
    /* Anything but JSON whitespace after the value is malformed too ("{} x"). */
    for (const char *p = end; p < body + len && !rc; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            rc = nb_err(err, errlen, NB_EFORMAT, "trailing data after the JSON value at byte %zu",
                        (size_t)(p - body));
    if (!rc && !cJSON_IsObject(root))
        rc = nb_err(err, errlen, NB_EFORMAT, "the body must be a JSON object");
    if (!rc) rc = check_fields(root, fields, n_fields, code, err, errlen);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    *code = NULL;
    *out = root;
    return NB_OK;
}

/* The fields a /recommend request may have. */
static const char *const req_fields[] = {"user_id", "k", "basket_mode"};

/* See srv_json.h. Owns nothing after the call (the cJSON tree is freed here). */
int srv_parse_request(const char *body, size_t len, int default_mode, srv_request *rq,
                      const char **code, char *err, size_t errlen) {
    cJSON *root = NULL;
    long long v;

    rq->k = SRV_K_DEFAULT;
    rq->basket_mode = default_mode;
    int rc = srv_json_object(body, len, req_fields, 3, &root, code, err, errlen);
    if (rc) goto done;
    int got = srv_json_int(root, "user_id", -2147483648.0, 2147483647.0, &v);
    if (got <= 0) {
        *code = "bad_user_id";
        rc = nb_err(err, errlen, NB_EFORMAT,
                    got == 0 ? "missing field user_id"
                             : "user_id must be an integer in the int32 range");
        goto done;
    }
    rq->user_id = (int32_t)v;
    got = srv_json_int(root, "k", 1, SRV_K_MAX, &v);
    if (got < 0) {
        *code = "bad_k";
        rc = nb_err(err, errlen, NB_EFORMAT, "k must be an integer in 1..%d", SRV_K_MAX);
        goto done;
    }
    if (got > 0) rq->k = (int)v;
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(root, "basket_mode");
    if (bm) {
        int m = cJSON_IsString(bm) ? srv_basket_mode_parse(bm->valuestring) : -1;
        if (m < 0) {
            *code = "bad_basket_mode";
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "basket_mode must be \"threshold\" or \"expected-f1\"");
            goto done;
        }
        rq->basket_mode = m;
    }
done:
    cJSON_Delete(root);
    return rc;
}

/* See srv_json.h (this and the writer functions below). */
int srv_basket_mode_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "threshold") == 0) return SRV_BASKET_THRESHOLD;
    if (strcmp(s, "expected-f1") == 0) return SRV_BASKET_EF1;
    return -1;
}

const char *srv_basket_mode_name(int mode) {
    return mode == SRV_BASKET_EF1 ? "expected-f1" : "threshold";
}

/* See srv_json.h. A hand parser: the grammar is tiny and this runs on every request. */
int srv_content_type_is_json(const char *ct) {
    static const char mt[] = "application/json";
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    if (strncasecmp(ct, mt, sizeof mt - 1) != 0) return 0;
    const char *p = ct + sizeof mt - 1;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return 1;
    if (*p++ != ';') return 0;
    while (*p == ' ' || *p == '\t') p++;
    if (strncasecmp(p, "charset=", 8) != 0) return 0;
    p += 8;
    int quoted = *p == '"';
    if (quoted) p++;
    if (strncasecmp(p, "utf-8", 5) != 0) return 0;
    p += 5;
    if (quoted && *p++ != '"') return 0;
    while (*p == ' ' || *p == '\t') p++;
    return *p == '\0';
}

/* ---- writer ------------------------------------------------------------------------- */

static void buf_reserve(srv_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    /* a /recommend response is ~3 KB: one allocation instead of five doublings from 256 */
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    b->p = nb_xrealloc(b->p, cap);
    b->cap = cap;
}

void srv_buf_raw(srv_buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void srv_buf_cstr(srv_buf *b, const char *s) { srv_buf_raw(b, s, strlen(s)); }

void srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    buf_reserve(b, 64);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    va_end(ap);
    assert(n >= 0); /* only an invalid format fails, and formats are literals */
    b->len += (size_t)n;
}

void srv_buf_int(srv_buf *b, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[sizeof tmp - 1 - n++] = '-';
    srv_buf_raw(b, tmp + sizeof tmp - n, (size_t)n);
}

/* Runs of characters that need no escape are copied whole (product names rarely contain
 * any): one reserve and one memcpy per run instead of per character. Well-formed UTF-8
 * sequences belong to the run; a byte that starts none becomes U+FFFD, so that the body is
 * valid UTF-8 whatever the store holds (the Content-Type promises charset=utf-8). */
void srv_buf_str(srv_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    buf_reserve(b, 1);
    b->p[b->len++] = '"';
    /* plain[c]: byte c is copied as is (printable ASCII but " and \); one load per byte */
    static const unsigned char plain[256] = {
        [0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 " */
        [0x30] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        [0x40] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        [0x50] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5c \ */
        [0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        [0x70] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    };
    for (;;) {
        const unsigned char *q = p;
        for (;;) {
            while (plain[*q]) q++;
            size_t n;
            /* the string is NUL-terminated: a sequence cut short stops at the NUL, which is
             * not a continuation byte, so 4 bytes past q are never read past the end */
            if (*q >= 0x80 && (n = utf8_seq_len(q, q + 4)) != 0) {
                q += n;
                continue;
            }
            break;
        }
        srv_buf_raw(b, (const char *)p, (size_t)(q - p));
        if (!*q) break;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (*q) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                if (*q >= 0x80) { /* not UTF-8: the replacement character */
                    memcpy(esc, "\xef\xbf\xbd", 3);
                    n = 3;
                    break;
                }
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*q >> 4];
                esc[5] = hex[*q & 15];
                n = 6;
        }
        srv_buf_raw(b, esc, n);
        p = q + 1;
    }
    buf_reserve(b, 1);
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

/* See srv_json.h. */
size_t srv_escape_bytes(char *dst, size_t cap, const char *src) {
    static const char hex[] = "0123456789abcdef";
    size_t w = 0;
    if (cap == 0) return 0;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char tmp[4];
        size_t n = 1;
        tmp[0] = (char)*p;
        if (*p < 0x20 || *p >= 0x7f || *p == '\\' || *p == '"') {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[*p >> 4];
            tmp[3] = hex[*p & 15];
            n = 4;
        }
        if (w + n + 1 > cap) { /* cut: say so, within the buffer */
            while (w > 0 && w + 4 > cap) w--;
            if (w + 4 <= cap) {
                memcpy(dst + w, "...", 3);
                w += 3;
            }
            break;
        }
        memcpy(dst + w, tmp, n);
        w += n;
    }
    dst[w] = '\0';
    return w;
}

char *srv_buf_take(srv_buf *b, size_t *len) {
    buf_reserve(b, 0);
    char *p = b->p;
    if (len) *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

char *srv_error_json(const char *code, const char *message, size_t *len) {
    srv_buf b = {0};
    srv_buf_cstr(&b, "{\"error\": {\"code\": ");
    srv_buf_str(&b, code);
    srv_buf_cstr(&b, ", \"message\": ");
    srv_buf_str(&b, message);
    srv_buf_cstr(&b, "}}\n");
    return srv_buf_take(&b, len);
}
