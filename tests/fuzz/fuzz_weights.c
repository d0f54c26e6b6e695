/* fuzz_weights.c -- libFuzzer harness for the weight-file loader (model/weights.c: nbw_load).
 * The input is a weight file. When its first byte is odd the harness rewrites the last 4
 * bytes to the CRC-32 of the rest, so that the fuzzer gets past the checksum into the
 * header, hyper-parameter and product-list checks instead of stopping at "checksum
 * mismatch" every time. Checked beyond memory safety: the result is one of nbw_load's
 * codes, and on success the model's product list has n_products entries. */
#include <stdint.h>

#include "crc32.h"
#include "fuzz_util.h"
#include "nb_err.h"
#include "nn.h"
#include "weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[300], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/m.nbw", fuzz_dir());
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    if (size >= 8 && (buf[0] & 1)) {
        uint32_t crc = nb_crc32(0, buf, size - 4);
        for (int i = 0; i < 4; i++) buf[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    }
    fuzz_write(path, buf, size);
    free(buf);
    nn_model m;
    int32_t *ids = NULL;
    uint32_t crc = 0;
    int rc = nbw_load(&m, path, NULL, 0, &ids, &crc, err, sizeof err);
    if (rc == NB_OK) {
        if (!ids || m.cfg.n_products < 1) abort();
        for (int i = 1; i < m.cfg.n_products; i++) (void)ids[i]; /* all readable (ASan) */
        nn_model_free(&m);
        free(ids);
    } else if (rc != NB_EIO && rc != NB_EFORMAT && rc != NB_EMISMATCH) {
        abort();
    }
    return 0;
}
