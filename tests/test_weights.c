/* test_weights.c -- the .nbw weight file (model/weights.c, format model/WEIGHTS.md):
 * bit-exact round trips, every rejection with its own message, and a small fuzz (every
 * truncation length, a flipped byte at every offset) that must never crash or load.
 */
#include "crc32.h"
#include "harness.h"
#include "nb_err.h"
#include "nn.h"
#include "weights.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define P_SMALL 20

/* A small model whose file is ~2 KB, so that exhaustive fuzzing stays fast. variant 1: the
 * attention encoder, order metadata and the transformer (a version-2 file). */
static void small_config_v(nn_config *c, int rep, int variant) {
    nn_config_default(c, P_SMALL);
    c->emb = 4;
    c->cnn_out = 5;
    c->kernel = 3;
    c->gru_hidden = 6;
    c->gru_layers = 2;
    c->head = 7;
    c->dropout = 0.25f;
    c->rep_features = rep ? 3 : 0;
    c->rep_hidden = rep ? 4 : 32;
    if (variant) {
        c->encoder = NN_ENC_ATTENTION;
        c->order_info = 1;
        c->sequence = NN_SEQ_TRANSFORMER;
        c->cnn_out = 8;
        c->heads = 2;
    }
}

static void small_config(nn_config *c, int rep) { small_config_v(c, rep, 0); }

static void ids_for(int32_t *ids, int n) {
    for (int i = 0; i < n; i++) ids[i] = 1000 + 7 * i;
}

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 512, "%s/%s", t_tmpdir(), name);
    return p;
}

/* Reads a whole file (caller frees). Returns its size, or -1. */
static long read_all(const char *path, unsigned char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n > 0 ? (size_t)n : 1);
    long got = (long)fread(*out, 1, (size_t)n, f);
    fclose(f);
    return got == n ? n : -1;
}

/* Writes buf to a new file at path. The old file is unlinked first: truncating a file that
 * holds data makes ext4 flush it on close (auto_da_alloc), which made the fuzz loops slow. */
static int write_all(const char *path, const unsigned char *buf, long n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    long put = (long)fwrite(buf, 1, (size_t)n, f);
    return fclose(f) == 0 && put == n ? 0 : -1;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the trailing CRC of buf so that a deliberate edit passes the checksum, then
 * writes buf to path as write_all does. Returns 0, or -1 when the write failed. */
static int write_with_crc(const char *path, unsigned char *buf, long n) {
    put_u32(buf + n - 4, nb_crc32(0, buf, (size_t)n - 4));
    return write_all(path, buf, n);
}

/* Saves a small model (seeded) with calibration and ids to path (variant: small_config_v). */
static int save_small_v(const char *path, int rep, int variant, nn_model *m, char *err) {
    nn_config c;
    small_config_v(&c, rep, variant);
    int32_t ids[P_SMALL];
    ids_for(ids, P_SMALL);
    int rc = nn_model_init(m, &c, 42 + (uint64_t)rep, err, NB_ERRLEN);
    if (rc) return rc;
    m->calib_a = 0.8125f;
    m->calib_b = -1.0625f;
    return nbw_save(m, ids, path, err, NB_ERRLEN);
}

/* Saves a small model (as save_small) to path, frees it, and reads the file back into *buf
 * (caller frees). Returns the file's size, or -1 with *buf NULL and a message in err. */
static int save_small(const char *path, int rep, nn_model *m, char *err) {
    return save_small_v(path, rep, 0, m, err);
}

static long small_file(const char *path, int rep, unsigned char **buf, char *err) {
    nn_model m;
    *buf = NULL;
    if (save_small(path, rep, &m, err) != NB_OK) return -1;
    nn_model_free(&m);
    long n = read_all(path, buf);
    if (n < 0) {
        free(*buf);
        *buf = NULL;
        snprintf(err, NB_ERRLEN, "%s: cannot read back", path);
    }
    return n;
}

/* Loads path expecting failure with code `want_rc` and `want_msg` in the message; also
 * requires the message to name the file and *m / ids to be left empty. Returns T_PASS. */
static int expect_fail(const char *path, const int32_t *expect, int n_expect, int want_rc,
                       const char *want_msg) {
    nn_model m;
    memset(&m, 0xAB, sizeof m);
    int32_t *ids = (int32_t *)&m; /* any non-NULL value: must be reset */
    char err[NB_ERRLEN] = "";
    int rc = nbw_load(&m, path, expect, n_expect, &ids, NULL, err, sizeof err);
    T_ASSERT(rc == want_rc, "rc %d, want %d (%s)", rc, want_rc, err);
    T_ASSERT(strstr(err, want_msg) != NULL, "message '%s' lacks '%s'", err, want_msg);
    T_ASSERT(strstr(err, path) != NULL, "message '%s' does not name the file", err);
    T_ASSERT(m.mem == NULL && m.n_params == 0 && ids == NULL, "failed load left state behind");
    return T_PASS;
}

static int round_trip(int rep, int variant) {
    char err[NB_ERRLEN];
    const char *path = tmp_path(rep ? "rt_rep.nbw" : "rt.nbw");
    nn_model a, b;
    T_ASSERT(save_small_v(path, rep, variant, &a, err) == NB_OK, "%s", err);
    int32_t ids[P_SMALL], *got_ids = NULL;
    ids_for(ids, P_SMALL);
    uint32_t crc = 0;
    T_ASSERT(nbw_load(&b, path, ids, P_SMALL, &got_ids, &crc, err, sizeof err) == NB_OK, "%s", err);
    int ok = memcmp(&a.cfg, &b.cfg, sizeof a.cfg) == 0 && a.n_params == b.n_params &&
        memcmp(a.mem, b.mem, a.n_params * sizeof(nn_real)) == 0 &&
        memcmp(got_ids, ids, sizeof ids) == 0 && a.calib_a == b.calib_a && a.calib_b == b.calib_b &&
        a.n_tensors == b.n_tensors;
    unsigned char *file = NULL;
    long n = read_all(path, &file);
    uint32_t version = n > 12 ? (uint32_t)file[8] | (uint32_t)file[9] << 8 : 0;
    uint32_t stored = n > 4 ? (uint32_t)file[n - 4] | (uint32_t)file[n - 3] << 8 |
            (uint32_t)file[n - 2] << 16 | (uint32_t)file[n - 1] << 24
                            : 0;
    /* saving the loaded model again gives the same bytes */
    const char *path2 = tmp_path("rt2.nbw");
    int rc2 = nbw_save(&b, got_ids, path2, err, sizeof err);
    unsigned char *file2 = NULL;
    long n2 = read_all(path2, &file2);
    int same = n2 == n && n > 0 && memcmp(file, file2, (size_t)n) == 0;
    free(file);
    free(file2);
    free(got_ids);
    nn_model_free(&a);
    nn_model_free(&b);
    T_ASSERT(ok, "loaded model differs from the saved one (config, params, ids or calibration)");
    T_ASSERT(crc == stored, "returned crc %08x, file's %08x", crc, stored);
    T_ASSERT(rc2 == NB_OK && same, "re-saving the loaded model changed the file (%s)", err);
    T_ASSERT(version == (variant ? 2u : 1u), "version %u written", version);
    return T_PASS;
}

static int test_round_trip_bit_exact(void) { return round_trip(0, 0); }
static int test_round_trip_with_repeat_term(void) { return round_trip(1, 0); }
/* attention encoder + order metadata + transformer: a version-2 file, every field back */
static int test_round_trip_variants(void) { return round_trip(1, 1); }

/* tests/fixtures/weights_v1.nbw was written by the build before version 2 existed (the
 * small_config(rep = 1) model, seed 43, the calibration of save_small): it loads with the
 * version-2 fields at their defaults, holds exactly the parameters this build's init draws
 * for that configuration and seed, and saving it again gives the same bytes (a default
 * model is still written as version 1). */
static int test_loads_version1_file(void) {
    char err[NB_ERRLEN];
    const char *path = "tests/fixtures/weights_v1.nbw";
    nn_model a, b;
    nn_config c;
    small_config(&c, 1);
    T_ASSERT(nn_model_init(&a, &c, 43, err, sizeof err) == NB_OK, "%s", err);
    int32_t ids[P_SMALL];
    ids_for(ids, P_SMALL);
    int rc = nbw_load(&b, path, ids, P_SMALL, NULL, NULL, err, sizeof err);
    if (rc != NB_OK) nn_model_free(&a);
    T_ASSERT(rc == NB_OK, "%s", err);
    int same_cfg = memcmp(&a.cfg, &b.cfg, sizeof a.cfg) == 0;
    int same_w =
        a.n_params == b.n_params && memcmp(a.mem, b.mem, a.n_params * sizeof(nn_real)) == 0;
    int defaults = b.cfg.encoder == NN_ENC_CNN && b.cfg.sequence == NN_SEQ_GRU &&
        b.cfg.order_info == 0 && b.cfg.heads == 4;
    const char *p2 = tmp_path("v1_again.nbw");
    int rc2 = nbw_save(&b, ids, p2, err, sizeof err);
    nn_model_free(&a);
    nn_model_free(&b);
    unsigned char *f1 = NULL, *f2 = NULL;
    long n1 = read_all(path, &f1), n2 = read_all(p2, &f2);
    int same_bytes = n1 > 0 && n1 == n2 && memcmp(f1, f2, (size_t)n1) == 0;
    free(f1);
    free(f2);
    T_ASSERT(same_cfg && defaults, "configuration read from a version-1 file differs");
    T_ASSERT(same_w, "parameters read from a version-1 file differ from the seeded init");
    T_ASSERT(rc2 == NB_OK && same_bytes, "re-saving a version-1 model changed its bytes (%s)", err);
    return T_PASS;
}

/* The loaded model scores exactly like the original. */
static int test_loaded_model_scores_identically(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("score.nbw");
    nn_model a, b;
    T_ASSERT(save_small(path, 1, &a, err) == NB_OK, "%s", err);
    T_ASSERT(nbw_load(&b, path, NULL, 0, NULL, NULL, err, sizeof err) == NB_OK, "%s", err);
    int n_ord[2] = {2, 1}, ord_off[4] = {0, 2, 7, 8};
    int32_t items[8] = {3, 5, 0, 1, 2, 19, 7, 11};
    int32_t rep_b[2] = {0, 1}, rep_col[2] = {4, 19};
    nn_real feat[6] = {0.5f, 1, -2, 3, 0.25f, 1};
    nn_batch bt = {.B = 2,
                   .n_ord = n_ord,
                   .ord_off = ord_off,
                   .items = items,
                   .S = 0,
                   .n_rep = 2,
                   .rep_b = rep_b,
                   .rep_col = rep_col,
                   .rep_feat = feat};
    nn_model_forward(&a, &bt, 0, 10);
    nn_model_forward(&b, &bt, 0, 10);
    int same = memcmp(a.logits, b.logits, 2 * P_SMALL * sizeof(nn_real)) == 0;
    nn_model_free(&a);
    nn_model_free(&b);
    T_ASSERT(same, "logits of the loaded model differ");
    return T_PASS;
}

/* Saving leaves exactly the final file (no temporary), and a failed save (unwritable
 * directory) reports the path and leaves nothing. */
static int test_save_is_atomic_and_clean(void) {
    char err[NB_ERRLEN];
    nn_model m;
    const char *path = tmp_path("atomic/model.nbw");
    char dir[512];
    snprintf(dir, sizeof dir, "mkdir -p '%s/atomic'", t_tmpdir());
    T_ASSERT(system(dir) == 0, "mkdir");
    T_ASSERT(save_small(path, 0, &m, err) == NB_OK, "%s", err);
    nn_model_free(&m);
    T_ASSERT(save_small(path, 1, &m, err) == NB_OK, "overwriting: %s", err);
    nn_model_free(&m);
    snprintf(dir, sizeof dir, "%s/atomic", t_tmpdir());
    DIR *d = opendir(dir);
    T_ASSERT(d, "opendir");
    int n = 0, other = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            n++;
            other += strcmp(e->d_name, "model.nbw") != 0;
        }
    closedir(d);
    T_ASSERT(n == 1 && other == 0, "directory holds %d entries (%d unexpected)", n, other);
    nn_config c;
    small_config(&c, 0);
    T_ASSERT(nn_model_init(&m, &c, 1, err, sizeof err) == NB_OK, "%s", err);
    int32_t ids[P_SMALL];
    ids_for(ids, P_SMALL);
    int rc = nbw_save(&m, ids, "/nonexistent-dir/m.nbw", err, sizeof err);
    nn_model_free(&m);
    T_ASSERT(rc == NB_EIO && strstr(err, "/nonexistent-dir/m.nbw"), "rc %d: %s", rc, err);
    return T_PASS;
}

/* Issue 15 item 13: a weight file chmod'ed 600 stays 600 when a retrain replaces it. */
static int test_save_keeps_mode(void) {
    char err[NB_ERRLEN];
    nn_model m;
    const char *path = tmp_path("mode.nbw");
    T_ASSERT(save_small(path, 0, &m, err) == NB_OK, "%s", err);
    nn_model_free(&m);
    T_ASSERT(chmod(path, 0600) == 0, "chmod");
    T_ASSERT(save_small(path, 1, &m, err) == NB_OK, "overwriting: %s", err);
    nn_model_free(&m);
    struct stat st;
    T_ASSERT(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600,
             "mode %o after the replacement, want 600", (unsigned)(st.st_mode & 07777));
    return T_PASS;
}

static int test_rejects_missing_file(void) {
    if (expect_fail(tmp_path("does-not-exist.nbw"), NULL, 0, NB_EIO, "cannot open") != T_PASS)
        return T_FAIL;
    return expect_fail(t_tmpdir(), NULL, 0, NB_EIO, "cannot open"); /* a directory */
}

static int test_rejects_bad_magic(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("magic.nbw");
    unsigned char *buf;
    long n = small_file(path, 0, &buf, err);
    T_ASSERT(n > 0, "%s", err);
    buf[7] = 'X';
    int w = write_with_crc(path, buf, n);
    free(buf);
    T_ASSERT(w == 0, "write");
    if (expect_fail(path, NULL, 0, NB_EFORMAT, "bad magic") != T_PASS) return T_FAIL;
    const char *txt = tmp_path("text.nbw");
    T_ASSERT(write_all(txt, (const unsigned char *)"user_id,product_id\n1,2\n", 23) == 0, "write");
    if (expect_fail(txt, NULL, 0, NB_EFORMAT, "bad magic") != T_PASS) return T_FAIL;
    T_ASSERT(write_all(txt, (const unsigned char *)"x", 1) == 0, "write");
    return expect_fail(txt, NULL, 0, NB_EFORMAT, "bad magic");
}

static int test_rejects_wrong_version(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("version.nbw");
    unsigned char *buf;
    long n = small_file(path, 0, &buf, err);
    T_ASSERT(n > 0, "%s", err);
    put_u32(buf + 8, 3);
    int w = write_with_crc(path, buf, n);
    free(buf);
    T_ASSERT(w == 0, "write");
    return expect_fail(path, NULL, 0, NB_EFORMAT,
                       "unsupported version 3 (this build reads 1 to 2)");
}

static int test_rejects_different_product_list(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("ids.nbw");
    nn_model m;
    T_ASSERT(save_small(path, 0, &m, err) == NB_OK, "%s", err);
    nn_model_free(&m);
    int32_t ids[P_SMALL + 1];
    ids_for(ids, P_SMALL + 1);
    ids[5] = 4;
    if (expect_fail(path, ids, P_SMALL, NB_EMISMATCH, "product list differs from the store") !=
        T_PASS)
        return T_FAIL;
    if (expect_fail(path, ids, P_SMALL, NB_EMISMATCH, "index 5") != T_PASS) return T_FAIL;
    ids_for(ids, P_SMALL + 1); /* same prefix, one product more in the store */
    return expect_fail(path, ids, P_SMALL + 1, NB_EMISMATCH, "product list differs from the store");
}

/* Files with a valid CRC whose contents do not describe a model of their configuration. */
static int test_rejects_bad_hyper_parameters(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("hyper.nbw"), *bad = tmp_path("hyper-bad.nbw");
    unsigned char *orig;
    long n = small_file(path, 0, &orig, err);
    T_ASSERT(n > 100, "%s", err);
    unsigned char *buf = malloc((size_t)n);
    /* offset, new value: gru_layers 0, gru_layers 1 (fewer tensors), emb 5 (sizes differ),
     * n_products 10^9 (the id count cannot fit), dropout 1.5 */
    const struct {
        int off;
        uint32_t v;
        const char *msg;
    } cases[] = {{40, 0, "gru_layers"},        {40, 1, "bad hyper-parameters"},
                 {24, 5, "parameters"},        {20, 1000000000u, "product ids"},
                 {56, 0x3FC00000u, "dropout"}, {76, P_SMALL + 1, "product ids"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(buf, orig, (size_t)n);
        put_u32(buf + cases[i].off, cases[i].v);
        T_ASSERT(write_with_crc(bad, buf, n) == 0, "write");
        if (expect_fail(bad, NULL, 0, NB_EFORMAT, "bad hyper-parameters") != T_PASS ||
            expect_fail(bad, NULL, 0, NB_EFORMAT, cases[i].msg) != T_PASS) {
            free(buf);
            free(orig);
            return T_FAIL;
        }
    }
    /* a renamed tensor: the first name starts right after the ids and the tensor count */
    memcpy(buf, orig, (size_t)n);
    buf[80 + 4 * P_SMALL + 4 + 4] ^= 0x20;
    T_ASSERT(write_with_crc(bad, buf, n) == 0, "write");
    free(buf);
    free(orig);
    return expect_fail(bad, NULL, 0, NB_EFORMAT, "the model expects");
}

/* A NaN weight or calibration value (with a valid CRC) is refused. */
static int test_rejects_non_finite_values(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("nan.nbw");
    unsigned char *buf;
    long n = small_file(path, 0, &buf, err);
    T_ASSERT(n > 100, "%s", err);
    put_u32(buf + n - 8, 0x7FC00000u); /* the last value of the last tensor: NaN */
    int w = write_with_crc(path, buf, n);
    if (w == 0 && expect_fail(path, NULL, 0, NB_EFORMAT, "non-finite value") != T_PASS) w = -2;
    put_u32(buf + n - 8, 0);
    put_u32(buf + 68, 0x7F800000u); /* calib_a = +Inf */
    if (w == 0) w = write_with_crc(path, buf, n);
    free(buf);
    T_ASSERT(w == 0, "write or first check failed (%d)", w);
    return expect_fail(path, NULL, 0, NB_EFORMAT, "non-finite value in the calibration");
}

static int test_rejects_trailing_bytes(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("trail.nbw");
    nn_model m;
    T_ASSERT(save_small(path, 0, &m, err) == NB_OK, "%s", err);
    nn_model_free(&m);
    FILE *f = fopen(path, "ab");
    T_ASSERT(f && fputc(0, f) == 0 && fclose(f) == 0, "append");
    return expect_fail(path, NULL, 0, NB_EFORMAT, "trailing bytes");
}

/* Every truncation length, 0 bytes included, says "truncated" (a prefix of the magic is a
 * truncated weight file, not a foreign one). */
static int test_fuzz_every_truncation(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("trunc-src.nbw"), *cut = tmp_path("trunc.nbw");
    unsigned char *buf;
    long n = small_file(path, 1, &buf, err);
    T_ASSERT(n > 0, "%s", err);
    int fails = 0;
    long first_bad = -1;
    for (long len = 0; len < n; len++) {
        if (write_all(cut, buf, len) != 0) {
            fails++;
            continue;
        }
        if (expect_fail(cut, NULL, 0, NB_EFORMAT, "truncated") != T_PASS) {
            if (first_bad < 0) first_bad = len;
            fails++;
        }
    }
    free(buf);
    T_ASSERT(fails == 0, "%d of %ld truncations not reported as truncated (first at %ld bytes)",
             fails, n, first_bad);
    return T_PASS;
}

/* A flipped byte at every offset: the magic says "bad magic", the version "unsupported
 * version", the size field "truncated"/"trailing bytes", everything else "checksum mismatch". */
static int test_fuzz_every_flipped_byte(void) {
    char err[NB_ERRLEN];
    const char *path = tmp_path("flip-src.nbw"), *bad = tmp_path("flip.nbw");
    unsigned char *buf;
    long n = small_file(path, 1, &buf, err);
    T_ASSERT(n > 0, "%s", err);
    int fails = 0;
    long first_bad = -1;
    for (long off = 0; off < n; off++) {
        unsigned char mask = (unsigned char)(1u << (off % 8)) | 0x10; /* 1 or 2 bits */
        buf[off] ^= mask;
        int w = write_all(bad, buf, n);
        buf[off] ^= mask;
        if (w != 0) {
            fails++;
            continue;
        }
        const char *want = off < 8 ? "bad magic"
            : off < 12             ? "unsupported version"
            : off < 20             ? "" /* truncated or trailing bytes */
                                   : "checksum mismatch";
        int r = expect_fail(bad, NULL, 0, NB_EFORMAT, want);
        if (r == T_PASS && off >= 12 && off < 20) {
            nn_model mm;
            int32_t *ids = NULL;
            char e2[NB_ERRLEN] = "";
            nbw_load(&mm, bad, NULL, 0, &ids, NULL, e2, sizeof e2);
            r = strstr(e2, "truncated") || strstr(e2, "trailing bytes") ? T_PASS : T_FAIL;
        }
        if (r != T_PASS) {
            if (first_bad < 0) first_bad = off;
            fails++;
        }
    }
    free(buf);
    T_ASSERT(fails == 0, "%d of %ld flipped bytes misreported (first at offset %ld)", fails, n,
             first_bad);
    return T_PASS;
}

int main(void) {
    T_RUN(test_round_trip_bit_exact);
    T_RUN(test_round_trip_with_repeat_term);
    T_RUN(test_round_trip_variants);
    T_RUN(test_loads_version1_file);
    T_RUN(test_loaded_model_scores_identically);
    T_RUN(test_save_is_atomic_and_clean);
    T_RUN(test_save_keeps_mode);
    T_RUN(test_rejects_missing_file);
    T_RUN(test_rejects_bad_magic);
    T_RUN(test_rejects_wrong_version);
    T_RUN(test_rejects_different_product_list);
    T_RUN(test_rejects_bad_hyper_parameters);
    T_RUN(test_rejects_non_finite_values);
    T_RUN(test_rejects_trailing_bytes);
    T_RUN(test_fuzz_every_truncation);
    T_RUN(test_fuzz_every_flipped_byte);
    return t_summary();
}
