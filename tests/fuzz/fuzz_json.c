/* fuzz_json.c -- libFuzzer harness for nb-serve's request parser and JSON writer
 * (server/srv_json.c). The input is a /recommend body. Checked beyond memory safety: an
 * accepted request is in range; a refused one has a code and a message; the message as an
 * error body, and the input written as a JSON string, are valid UTF-8 without raw control
 * bytes; srv_escape_bytes gives printable ASCII only. */
#include <stdint.h>

#include "fuzz_util.h"
#include "nb_err.h"
#include "srv_json.h"

/* Aborts unless out[n] is valid UTF-8 with no byte below 0x20 but the final newline. */
static void check_json_text(const char *out, size_t n) {
    if (!fuzz_utf8_ok((const unsigned char *)out, n)) abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 && !(out[i] == '\n' && i == n - 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    srv_request rq;
    const char *code = NULL;
    char err[NB_ERRLEN];
    int rc =
        srv_parse_request((const char *)data, size, SRV_BASKET_EF1, &rq, &code, err, sizeof err);
    if (rc == NB_OK) {
        if (rq.k < 1 || rq.k > SRV_K_MAX) abort();
        if (rq.basket_mode != SRV_BASKET_THRESHOLD && rq.basket_mode != SRV_BASKET_EF1) abort();
    } else {
        if (rc != NB_EFORMAT || !code || !err[0]) abort();
        size_t len;
        char *body = srv_error_json(code, err, &len);
        check_json_text(body, len);
        free(body);
    }
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    srv_buf b = {0};
    srv_buf_str(&b, s);
    check_json_text(b.p, b.len);
    srv_buf_free(&b);
    char esc[160];
    size_t n = srv_escape_bytes(esc, sizeof esc, s);
    if (n != strlen(esc) || n >= sizeof esc) abort();
    for (size_t i = 0; i < n; i++)
        if (esc[i] < 0x20 || esc[i] > 0x7e) abort();
    free(s);
    return 0;
}
