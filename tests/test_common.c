/* test_common.c -- the shared utilities: CRC-32, RNG determinism, atomic files, errors. */
#include "atomic_file.h"
#include "crc32.h"
#include "harness.h"
#include "nb_err.h"
#include "rng.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>

static int test_crc32_check_value(void) {
    T_ASSERT(nb_crc32(0, "123456789", 9) == 0xCBF43926u, "CRC-32 check value");
    uint32_t c = nb_crc32(0, "1234", 4);
    T_ASSERT(nb_crc32(c, "56789", 5) == 0xCBF43926u, "incremental CRC-32");
    return T_PASS;
}

/* The bitwise definition of CRC-32 (reflected, polynomial 0xEDB88320), one bit at a time. */
static uint32_t crc32_bitwise(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

/* The 8-bytes-at-a-time path against the definition: every length 0..70 at every start
 * offset 0..7 (both the 8-byte loop and the tail, any alignment), and split points. */
static int test_crc32_slices(void) {
    unsigned char buf[80];
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)nb_rng_u64(&r);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= 70; n++) {
            uint32_t want = crc32_bitwise(0, buf + off, n);
            T_ASSERT(nb_crc32(0, buf + off, n) == want, "offset %zu length %zu", off, n);
            size_t cut = n / 3;
            T_ASSERT(nb_crc32(nb_crc32(0, buf + off, cut), buf + off + cut, n - cut) == want,
                     "offset %zu length %zu split at %zu", off, n, cut);
        }
    return T_PASS;
}

static int test_rng_deterministic(void) {
    nb_rng a, b;
    nb_rng_seed(&a, 42);
    nb_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) T_ASSERT(nb_rng_u64(&a) == nb_rng_u64(&b), "step %d", i);
    nb_rng_seed(&b, 43);
    T_ASSERT(nb_rng_u64(&a) != nb_rng_u64(&b), "different seeds differ");
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = nb_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    T_ASSERT(fabs(s / 1e5) < 0.02 && fabs(s2 / 1e5 - 1) < 0.02, "normal mean %g var %g", s / 1e5, s2 / 1e5);
    for (int i = 0; i < 1000; i++) T_ASSERT(nb_rng_below(&a, 7) < 7, "below");
    return T_PASS;
}

static int test_atomic_file(void) {
    char path[512], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/f.bin", t_tmpdir());
    nb_afile af;
    T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
    fputs("hello", af.f);
    struct stat st;
    T_ASSERT(stat(path, &st) != 0, "final name must not exist before commit");
    T_ASSERT(nb_afile_commit(&af, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(stat(path, &st) == 0 && st.st_size == 5, "committed file has 5 bytes");
    T_ASSERT(nb_afile_open(&af, path, err, sizeof err) == NB_OK, "%s", err);
    fputs("partial", af.f);
    char *tmp = nb_tmp_name(path);
    nb_afile_abort(&af);
    T_ASSERT(stat(tmp, &st) != 0, "abort removes the temporary file");
    free(tmp);
    T_ASSERT(stat(path, &st) == 0 && st.st_size == 5, "abort leaves the old file intact");
    T_ASSERT(nb_afile_open(&af, "/nonexistent-dir/x", err, sizeof err) == NB_EIO, "bad dir");
    T_ASSERT(strstr(err, "/nonexistent-dir/x") != NULL, "message names the file: %s", err);
    return T_PASS;
}

static int test_err_wrap(void) {
    char err[NB_ERRLEN];
    nb_err(err, sizeof err, NB_EINVAL, "bad %s", "kernel");
    T_ASSERT(nb_err_wrap(err, sizeof err, NB_EINVAL, "flag %d", 3) == NB_EINVAL, "code returned");
    T_ASSERT(strcmp(err, "flag 3: bad kernel") == 0, "got '%s'", err);
    return T_PASS;
}

int main(void) {
    T_RUN(test_crc32_check_value);
    T_RUN(test_crc32_slices);
    T_RUN(test_rng_deterministic);
    T_RUN(test_atomic_file);
    T_RUN(test_err_wrap);
    return t_summary();
}
