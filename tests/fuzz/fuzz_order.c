/* fuzz_order.c -- libFuzzer harness for nb-serve's POST /orders body parser
 * (server/srv_orders.c, srv_orders_parse). Checked beyond memory safety: an accepted order
 * has every field in its range and 1 or more distinct product ids; a refused one has a code
 * and a message, and the error body is valid UTF-8 without raw control bytes. */
#include <stdint.h>

#include "fuzz_util.h"
#include "nb_err.h"
#include "srv_json.h"
#include "srv_orders.h"

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_order o;
    int32_t *p = NULL;
    const char *code = NULL;
    char err[NB_ERRLEN];
    int rc = srv_orders_parse((const char *)data, size, &o, &p, &code, err, sizeof err);
    if (rc == NB_OK) {
        if (o.user_id < 0 || o.order_id < 0 || o.order_dow < 0 || o.order_dow > 6 ||
            o.order_hour < 0 || o.order_hour > 23 || o.days_since < -1 || o.days_since > 30 ||
            o.n_products < 1 || o.products != p)
            abort();
        int32_t *s = malloc((size_t)o.n_products * sizeof *s);
        if (!s) abort();
        memcpy(s, p, (size_t)o.n_products * sizeof *s);
        qsort(s, (size_t)o.n_products, sizeof *s, cmp_i32);
        for (int i = 0; i < o.n_products; i++)
            if (s[i] < 0 || (i && s[i] == s[i - 1])) abort();
        free(s);
        free(p);
        return 0;
    }
    if (rc != NB_EFORMAT || !code || !err[0] || p) abort();
    size_t len;
    char *body = srv_error_json(code, err, &len);
    if (!fuzz_utf8_ok((const unsigned char *)body, len)) abort();
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)body[i] < 0x20) abort();
    free(body);
    return 0;
}
