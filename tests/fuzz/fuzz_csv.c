/* fuzz_csv.c -- libFuzzer harness for the streaming CSV reader (storage/csv.c). The input is
 * a whole file; its first byte picks the record limit (small limits reach the "too long"
 * paths with small inputs). Every record is read (at most 10,000) and every field parsed as
 * an integer; checked beyond memory safety: a field's text is no longer than its length (it
 * may hold NULs), an integer is accepted only from a field without a NUL, the reader returns
 * only its documented codes, line numbers never go back. */
#include <stdint.h>

#include "csv.h"
#include "fuzz_util.h"
#include "nb_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[300], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/in.csv", fuzz_dir());
    size_t limit = size > 0 ? 16 + (size_t)data[0] * 4 : ST_CSV_MAX_RECORD;
    fuzz_write(path, data, size);
    st_csv c;
    if (st_csv_open(&c, path, err, sizeof err) != NB_OK) abort();
    if (size > 0 && data[0] & 1) c.max_record = limit;
    static const char *const names[] = {"order_id", "product_id", "add_to_cart_order", "reordered"};
    int rc = size > 1 && data[1] & 1 ? st_csv_header(&c, names, 4, err, sizeof err) : NB_OK;
    long long last = 0;
    for (int r = 0; rc == NB_OK && r < 10000; r++) {
        rc = st_csv_read(&c, err, sizeof err);
        if (rc != 1) break;
        rc = NB_OK;
        if (c.nf < 1 || c.line < last) abort();
        last = c.line;
        for (int i = 0; i < c.nf; i++) {
            if (strlen(c.f[i]) > c.flen[i]) abort();
            int64_t v;
            int pr = st_csv_int(&c, i, -1000, INT32_MAX, i & 1, &v, err, sizeof err);
            if (pr != NB_OK && pr != NB_EFORMAT) abort();
            if (pr == NB_OK && (v < -1000 || v > INT32_MAX)) abort();
            if (pr == NB_OK && memchr(c.f[i], 0, c.flen[i])) abort(); /* "160<NUL>32" */
        }
        if (c.nhdr) (void)st_csv_check_count(&c, err, sizeof err);
    }
    if (rc != NB_OK && rc != 0 && rc != NB_EFORMAT && rc != NB_ENOMEM) abort();
    st_csv_close(&c);
    return 0;
}
