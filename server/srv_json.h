/* srv_json.h -- the JSON side of nb-serve: parsing and validating a /recommend body, and a
 * small append-only writer for the responses (faster than building a cJSON tree for every
 * request, and it escapes product names that contain quotes or control characters).
 */
#ifndef SRV_JSON_H
#define SRV_JSON_H

#include <stddef.h>
#include <stdint.h>

#define SRV_K_DEFAULT 10
#define SRV_K_MAX 100

enum { SRV_BASKET_THRESHOLD = 0, SRV_BASKET_EF1 = 1 };

typedef struct {
    int32_t user_id;
    int k;           /* 1..SRV_K_MAX */
    int basket_mode; /* SRV_BASKET_* */
} srv_request;

#define SRV_JSON_DEPTH_MAX 8 /* nesting a request body may have (it needs 1) */

/* Parses body[len] (not necessarily NUL-terminated) as a /recommend request. Missing "k"
 * gives SRV_K_DEFAULT, missing "basket_mode" gives default_mode. Strict: a field twice, a
 * field other than user_id, k and basket_mode, a raw control byte or invalid UTF-8 in a
 * string, \u0000, a control byte between tokens (a trailing NUL too), trailing data and
 * nesting deeper than SRV_JSON_DEPTH_MAX are refused, each with the byte offset or field.
 * Returns NB_OK, or NB_EFORMAT with *code set to a static machine-readable error code
 * ("bad_json", "duplicate_field", "unknown_field", "bad_user_id", "bad_k",
 * "bad_basket_mode") and a message in err. */
int srv_parse_request(const char *body, size_t len, int default_mode, srv_request *rq,
                      const char **code, char *err, size_t errlen);

/* The strict object parser behind srv_parse_request, for every endpoint's body: the byte
 * rules above, one JSON object, each of fields[n_fields] (n_fields <= 64) at most once and
 * no other field. Returns NB_OK and *root (caller frees it with cJSON_Delete), or
 * NB_EFORMAT with *code "bad_json", "duplicate_field" or "unknown_field" (the message names
 * the byte offset or the fields, and lists the allowed ones); *root is NULL then. */
struct cJSON;
int srv_json_object(const char *body, size_t len, const char *const *fields, int n_fields,
                    struct cJSON **root, const char **code, char *err, size_t errlen);

/* Reads field `name` of obj as a JSON integer in [lo, hi]. Returns 1 and *out when it is,
 * 0 when the field is absent, -1 when it is present but not such an integer (a string, a
 * bool, null, 42.5, 1e300). Integral doubles such as 42.0 are accepted: JSON has one
 * number type. */
int srv_json_int(const struct cJSON *obj, const char *name, double lo, double hi,
                 long long *out);

/* "threshold" -> SRV_BASKET_THRESHOLD, "expected-f1" -> SRV_BASKET_EF1, else -1. */
int srv_basket_mode_parse(const char *s);
const char *srv_basket_mode_name(int mode);

/* 1 when a Content-Type header value names JSON: "application/json" (any case), optionally
 * followed by "; charset=utf-8" (value any case, optionally quoted). 0 otherwise, NULL too. */
int srv_content_type_is_json(const char *ct);

/* ---- writer ------------------------------------------------------------------------- */
typedef struct {
    char *p; /* NUL-terminated text (owned) */
    size_t len, cap;
} srv_buf;

/* Appenders grow the buffer with nb_xrealloc (an allocation failure aborts). */
void srv_buf_raw(srv_buf *b, const char *s, size_t n);
void srv_buf_cstr(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends v in decimal (as printf's %lld). */
void srv_buf_int(srv_buf *b, int64_t v);
/* Appends a string literal without a strlen. */
#define SRV_BUF_LIT(b, lit) srv_buf_raw((b), "" lit, sizeof(lit) - 1)
/* Appends s as a quoted JSON string (escapes ", \, and control characters; a byte that
 * starts no well-formed UTF-8 sequence becomes U+FFFD, so the output is always valid). */
void srv_buf_str(srv_buf *b, const char *s);
/* Copies the NUL-terminated src into dst[cap] (cap >= 1) for a log line or a message:
 * printable ASCII as is, every other byte (control bytes, DEL, non-ASCII, and \ and " so that
 * the result cannot be mistaken for an escape or end a quoted field) as \xHH. Cut to fit,
 * ending in "..." when cut. Returns the length written (dst is always NUL-terminated). */
size_t srv_escape_bytes(char *dst, size_t cap, const char *src);
/* Hands the text to the caller (who frees it) and resets b. Never NULL. */
char *srv_buf_take(srv_buf *b, size_t *len);
void srv_buf_free(srv_buf *b);

/* {"error": {"code": code, "message": message}} as a malloc'd NUL-terminated string (caller
 * frees); *len receives its length. */
char *srv_error_json(const char *code, const char *message, size_t *len);

#endif
