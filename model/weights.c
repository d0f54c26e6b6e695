/* weights.c -- the .nbw weight file: save and load a model (format: model/WEIGHTS.md).
 *
 * Saving streams the header, the product ids and the tensors through a running CRC into an
 * atomic file. Loading reads the whole file into memory (so nothing the file says can make us
 * read outside it), checks size and CRC before trusting any field, then validates the
 * structure against the configuration before allocating the model.
 */
#include "weights.h"

#include "atomic_file.h"
#include "crc32.h"
#include "nb_err.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(sizeof(float) == 4, "the file stores IEEE binary32");

/* The fixed header (magic .. id count, see WEIGHTS.md) of a file of version v: 20 bytes,
 * the configuration fields that version has (4 bytes each), calib_a, calib_b, id count. */
static int nfields(uint32_t v) { return v == 1 ? NN_CONFIG_NFIELDS_V1 : NN_CONFIG_NFIELDS; }
static size_t header_size(uint32_t v) { return 20 + 4 * (size_t)nfields(v) + 12; }
#define NBW_HEADER_MIN 80 /* version 1's, the shortest */
#define NBW_HEADER_MAX (20 + 4 * NN_CONFIG_NFIELDS + 12)
#define NBW_MAX_NAME 64
#define NBW_CHUNK 4096 /* floats converted per fwrite */

/* ---- little-endian encoding, independent of the host's byte order ------------------- */

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_u64(unsigned char *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static void put_f32(unsigned char *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(p, u);
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float get_f32(const unsigned char *p) {
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- save --------------------------------------------------------------------------- */

/* Writes n bytes to f and folds them into *crc. Returns 0 or -1 (short write). */
static int write_crc(FILE *f, uint32_t *crc, const void *buf, size_t n) {
    *crc = nb_crc32(*crc, buf, n);
    return fwrite(buf, 1, n, f) == n ? 0 : -1;
}

/* The version nbw_save writes for c: 1 when every field version 2 added is at its default
 * (the CNN -> GRU model: its file, and so its CRC name, stay what they always were), else 2. */
static uint32_t version_for(const nn_config *c) {
    nn_config d;
    nn_config_default(&d, c->n_products);
    for (int i = NN_CONFIG_NFIELDS_V1; i < NN_CONFIG_NFIELDS; i++)
        if (nn_config_get(c, &nn_config_fields[i]) != nn_config_get(&d, &nn_config_fields[i]))
            return NBW_VERSION;
    return 1;
}

/* Encodes the fixed header (WEIGHTS.md) of m for version ver into h (header_size(ver)
 * bytes). */
static void encode_header(unsigned char *h, uint32_t ver, const nn_model *m, uint64_t file_size) {
    const nn_config *c = &m->cfg;
    int nf = nfields(ver);
    memcpy(h, NBW_MAGIC, 8);
    put_u32(h + 8, ver);
    put_u64(h + 12, file_size);
    for (int i = 0; i < nf; i++) { /* bytes 20 .. 20 + 4 nf - 1 */
        const nn_config_field *f = &nn_config_fields[i];
        const char *v = (const char *)c + f->off;
        if (f->is_float)
            put_f32(h + 20 + 4 * i, *(const float *)v);
        else
            put_u32(h + 20 + 4 * i, (uint32_t) * (const int *)v);
    }
    put_f32(h + 20 + 4 * nf, m->calib_a);
    put_f32(h + 24 + 4 * nf, m->calib_b);
    put_u32(h + 28 + 4 * nf, (uint32_t)c->n_products);
}

/* The exact size of the file nbw_save writes for m. */
static uint64_t file_size_for(const nn_model *m) {
    uint64_t n = header_size(version_for(&m->cfg)) + 4 * (uint64_t)m->cfg.n_products + 4;
    for (int i = 0; i < m->n_tensors; i++)
        n += 4 + strlen(m->tensors[i].name) + 8 + 4 * (uint64_t)m->tensors[i].size;
    return n + 4;
}

/* Writes the whole file through af->f and sets *crc_out to its checksum (the CRC-32 of every
 * byte before the last four, which hold it). Returns 0, or nonzero when a write failed
 * (errno set). Borrows everything. */
static int write_file(nb_afile *af, const nn_model *m, const int32_t *product_ids,
                      uint32_t *crc_out) {
    unsigned char *buf = nb_xmalloc(4 * NBW_CHUNK);
    uint32_t crc = 0;
    unsigned char h[NBW_HEADER_MAX];
    uint32_t ver = version_for(&m->cfg);
    encode_header(h, ver, m, file_size_for(m));
    int bad = write_crc(af->f, &crc, h, header_size(ver));

    for (int i = 0; i < m->cfg.n_products && !bad; i += NBW_CHUNK) {
        int n = m->cfg.n_products - i < NBW_CHUNK ? m->cfg.n_products - i : NBW_CHUNK;
        for (int k = 0; k < n; k++) put_u32(buf + 4 * k, (uint32_t)product_ids[i + k]);
        bad = write_crc(af->f, &crc, buf, 4 * (size_t)n);
    }
    put_u32(h, (uint32_t)m->n_tensors);
    if (!bad) bad = write_crc(af->f, &crc, h, 4);

    for (int t = 0; t < m->n_tensors && !bad; t++) {
        const nn_tensor_info *ti = &m->tensors[t];
        size_t len = strlen(ti->name);
        assert(len >= 1 && len <= NBW_MAX_NAME);
        assert((size_t)ti->rows * (size_t)ti->cols == ti->size);
        put_u32(h, (uint32_t)len);
        bad = write_crc(af->f, &crc, h, 4) || write_crc(af->f, &crc, ti->name, len);
        put_u32(h, (uint32_t)ti->rows);
        put_u32(h + 4, (uint32_t)ti->cols);
        if (!bad) bad = write_crc(af->f, &crc, h, 8);
        const nn_real *src = m->mem + ti->offset;
        for (size_t i = 0; i < ti->size && !bad; i += NBW_CHUNK) {
            size_t n = ti->size - i < NBW_CHUNK ? ti->size - i : NBW_CHUNK;
            for (size_t k = 0; k < n; k++) put_f32(buf + 4 * k, src[i + k]);
            bad = write_crc(af->f, &crc, buf, 4 * n);
        }
    }
    put_u32(h, crc);
    if (!bad) bad = fwrite(h, 1, 4, af->f) != 4;
    int e = errno;
    free(buf);
    errno = e;
    *crc_out = crc;
    return bad;
}

/* The checksum-named file of nbw_save_versioned: "<path>.<crc %08x>", malloc'd. */
static char *versioned_name(const char *path, uint32_t crc) {
    size_t n = strlen(path) + 10;
    char *v = nb_xmalloc(n);
    snprintf(v, n, "%s.%08" PRIx32, path, crc);
    return v;
}

/* Writes m to a temporary name of path and commits it as path, or (vpath != NULL) as
 * "<path>.<crc>" with *vpath set to that name (malloc'd, caller frees). Returns NB_OK or
 * NB_EIO naming path; the temporary file is removed on error. Borrows m and product_ids. */
static int save(const nn_model *m, const int32_t *product_ids, const char *path, uint32_t *crc,
                char **vpath, char *err, size_t errlen) {
    assert(m && m->mem && product_ids && path);
    nb_afile af;
    uint32_t c = 0;
    int rc = nb_afile_open(&af, path, err, errlen);
    if (rc) return rc;
    if (write_file(&af, m, product_ids, &c)) {
        int e = errno;
        nb_afile_abort(&af);
        return nb_err(err, errlen, NB_EIO, "%s: write failed: %s", path, strerror(e));
    }
    if (!vpath) return nb_afile_commit(&af, err, errlen);
    char *v = versioned_name(path, c);
    rc = nb_afile_commit_as(&af, v, err, errlen);
    if (rc) {
        free(v);
        return rc;
    }
    *vpath = v;
    if (crc) *crc = c;
    return NB_OK;
}

/* See weights.h. */
int nbw_save(const nn_model *m, const int32_t *product_ids, const char *path, char *err,
             size_t errlen) {
    return save(m, product_ids, path, NULL, NULL, err, errlen);
}

/* See weights.h. */
int nbw_save_versioned(const nn_model *m, const int32_t *product_ids, const char *path,
                       uint32_t *crc, char **vpath, char *err, size_t errlen) {
    *vpath = NULL;
    return save(m, product_ids, path, crc, vpath, err, errlen);
}

/* ---- load --------------------------------------------------------------------------- */

/* Reads the whole of path into a malloc'd buffer (*buf, caller frees) of *size bytes.
 * Returns NB_OK or NB_EIO ("cannot open"). */
static int slurp(const char *path, unsigned char **buf, size_t *size, char *err, size_t errlen) {
    *buf = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(err, errlen, NB_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = NB_OK;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot open: not a regular file", path);
        goto done;
    }
    *size = (size_t)st.st_size;
    *buf = nb_xmalloc(*size ? *size : 1);
    if (fread(*buf, 1, *size, f) != *size) {
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot open: read failed: %s", path,
                    ferror(f) ? strerror(errno) : "file shrank while reading");
        free(*buf);
        *buf = NULL;
    }
done:
    fclose(f);
    return rc;
}

/* Decodes the configuration fields of a version-ver header whose size and CRC were already
 * verified; the fields an older version lacks keep nn_config_default's values (version 1:
 * the CNN encoder, no order metadata, the GRU). */
static void decode_config(nn_config *c, uint32_t ver, const unsigned char *h) {
    nn_config_default(c, 0);
    for (int i = 0; i < nfields(ver); i++) { /* encode_header's fields */
        const nn_config_field *f = &nn_config_fields[i];
        char *v = (char *)c + f->off;
        if (f->is_float)
            *(float *)v = get_f32(h + 20 + 4 * i);
        else
            *(int *)v = (int32_t)get_u32(h + 20 + 4 * i);
    }
}

/* One tensor record located in the file buffer. */
typedef struct {
    const unsigned char *name;
    uint32_t name_len, rows, cols;
    const unsigned char *data;
} rec;

/* Walks the tensor records between *pos and end (the CRC's offset); fills recs[0..n) (n <=
 * cap). Returns NB_OK or NB_EFORMAT with a "bad hyper-parameters: ..." message. */
static int parse_records(rec *recs, uint32_t n, const unsigned char *buf, size_t pos, size_t end,
                         uint64_t *total, const char *path, char *err, size_t errlen) {
    *total = 0;
    for (uint32_t t = 0; t < n; t++) {
        rec *r = &recs[t];
        if (end - pos < 4) goto short_rec;
        r->name_len = get_u32(buf + pos);
        pos += 4;
        if (r->name_len < 1 || r->name_len > NBW_MAX_NAME)
            return nb_err(err, errlen, NB_EFORMAT,
                          "%s: bad hyper-parameters: tensor %u has a name of %u bytes", path, t,
                          r->name_len);
        if (end - pos < (size_t)r->name_len + 8) goto short_rec;
        r->name = buf + pos;
        pos += r->name_len;
        r->rows = get_u32(buf + pos);
        r->cols = get_u32(buf + pos + 4);
        pos += 8;
        uint64_t n = (uint64_t)r->rows * r->cols; /* < 2^64: a product of two u32 */
        if (n > (end - pos) / 4) goto short_rec;
        r->data = buf + pos;
        pos += (size_t)(4 * n);
        *total += (uint64_t)r->rows * r->cols;
    }
    if (pos != end)
        return nb_err(err, errlen, NB_EFORMAT,
                      "%s: bad hyper-parameters: %zu unexplained bytes after the last tensor", path,
                      end - pos);
    return NB_OK;
short_rec:
    return nb_err(err, errlen, NB_EFORMAT,
                  "%s: bad hyper-parameters: tensor records run past the checksum", path);
}

/* Checks the file's records against the freshly initialised model m (names, shapes, order)
 * and copies the values into m->mem; every value must be finite (a NaN weight would make the
 * server answer NaN). Returns NB_OK or NB_EFORMAT. */
static int fill_model(nn_model *m, const rec *recs, uint32_t n, const char *path, char *err,
                      size_t errlen) {
    if ((int)n != m->n_tensors)
        return nb_err(err, errlen, NB_EFORMAT,
                      "%s: bad hyper-parameters: file has %u tensors, the model has %d", path, n,
                      m->n_tensors);
    for (uint32_t t = 0; t < n; t++) {
        const nn_tensor_info *ti = &m->tensors[t];
        const rec *r = &recs[t];
        if (strlen(ti->name) != r->name_len || memcmp(ti->name, r->name, r->name_len) != 0)
            return nb_err(err, errlen, NB_EFORMAT,
                          "%s: bad hyper-parameters: tensor %u is '%.*s', the model expects '%s'",
                          path, t, (int)r->name_len, (const char *)r->name, ti->name);
        if ((int)r->rows != ti->rows || (int)r->cols != ti->cols)
            return nb_err(err, errlen, NB_EFORMAT,
                          "%s: bad hyper-parameters: tensor '%s' is %ux%u, the model expects %dx%d",
                          path, ti->name, r->rows, r->cols, ti->rows, ti->cols);
        nn_real *dst = m->mem + ti->offset;
        for (size_t i = 0; i < ti->size; i++) {
            dst[i] = get_f32(r->data + 4 * i);
            if (!isfinite(dst[i]))
                return nb_err(err, errlen, NB_EFORMAT,
                              "%s: non-finite value %g in tensor '%s' at element %zu", path,
                              (double)dst[i], ti->name, i);
        }
    }
    return NB_OK;
}

/* See weights.h. On success *m owns its buffers (free with nn_model_free) and *product_ids
 * (if requested) is the caller's; on failure nothing is allocated and *m is zeroed. */
int nbw_load(nn_model *m, const char *path, const int32_t *expect_ids, int n_expect,
             int32_t **product_ids, uint32_t *crc, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (product_ids) *product_ids = NULL;
    unsigned char *buf = NULL;
    size_t size = 0;
    rec *recs = NULL;
    int model_ok = 0;
    int rc = slurp(path, &buf, &size, err, errlen);
    if (rc) return rc;

    /* The magic first (as much of it as there is), so that a short file of another kind
     * says "bad magic" and a short prefix of a weight file says "truncated". */
    if (memcmp(buf, NBW_MAGIC, size < 8 ? size : 8) != 0) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: bad magic (not a weight file)", path);
        goto done;
    }
    if (size < NBW_HEADER_MIN + 8) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "%s: truncated (%zu bytes, a weight file has at least %d)", path, size,
                    NBW_HEADER_MIN + 8);
        goto done;
    }
    uint32_t version = get_u32(buf + 8);
    if (version < 1 || version > NBW_VERSION) {
        rc =
            nb_err(err, errlen, NB_EFORMAT, "%s: unsupported version %u (this build reads 1 to %d)",
                   path, version, NBW_VERSION);
        goto done;
    }
    size_t hsize = header_size(version);
    if (size < hsize + 8) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "%s: truncated (%zu bytes, a version %u weight file has at least %zu)", path,
                    size, version, hsize + 8);
        goto done;
    }
    uint64_t declared = get_u64(buf + 12);
    if (declared != size) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: %s (header says %llu bytes, file has %zu)", path,
                    declared > size ? "truncated" : "trailing bytes", (unsigned long long)declared,
                    size);
        goto done;
    }
    uint32_t file_crc = get_u32(buf + size - 4);
    uint32_t calc_crc = nb_crc32(0, buf, size - 4);
    if (file_crc != calc_crc) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: checksum mismatch (stored %08x, computed %08x)",
                    path, file_crc, calc_crc);
        goto done;
    }

    /* From here on the bytes are what the writer wrote; the checks below guard against a
     * writer with a different idea of the model (or a crafted file with a valid CRC). */
    nn_config cfg;
    decode_config(&cfg, version, buf);
    char why[NB_ERRLEN];
    if (nn_config_check(&cfg, why, sizeof why) != NB_OK) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: bad hyper-parameters: %s", path, why);
        goto done;
    }
    size_t end = size - 4, pos = hsize;
    uint32_t n_ids = get_u32(buf + hsize - 4);
    if ((int64_t)n_ids != cfg.n_products || (end - pos) / 4 < (size_t)n_ids + 1) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "%s: bad hyper-parameters: %u product ids for n_products %d", path, n_ids,
                    cfg.n_products);
        goto done;
    }
    const unsigned char *ids = buf + pos;
    pos += 4 * (size_t)n_ids;
    uint32_t n_tensors = get_u32(buf + pos);
    pos += 4;
    /* Every record takes at least 13 bytes, which bounds the allocation by the file size. */
    if (n_tensors == 0 || n_tensors > (end - pos) / 13) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: bad hyper-parameters: %u tensors", path,
                    n_tensors);
        goto done;
    }
    recs = nb_xcalloc(n_tensors, sizeof *recs);
    uint64_t total;
    rc = parse_records(recs, n_tensors, buf, pos, end, &total, path, err, errlen);
    if (rc) goto done;
    double want = nn_config_params(&cfg);
    if (want != (double)total) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "%s: bad hyper-parameters: this configuration has %.0f parameters, the file "
                    "holds %llu",
                    path, want, (unsigned long long)total);
        goto done;
    }
    if (expect_ids) {
        if (n_expect != cfg.n_products) {
            rc = nb_err(err, errlen, NB_EMISMATCH,
                        "%s: product list differs from the store (%d products in the file, %d "
                        "in the store)",
                        path, cfg.n_products, n_expect);
            goto done;
        }
        for (int i = 0; i < n_expect; i++) {
            int32_t id = (int32_t)get_u32(ids + 4 * (size_t)i);
            if (id != expect_ids[i]) {
                rc = nb_err(err, errlen, NB_EMISMATCH,
                            "%s: product list differs from the store (index %d: file has product "
                            "%d, store has %d)",
                            path, i, id, expect_ids[i]);
                goto done;
            }
        }
    }

    rc = nn_model_alloc(m, &cfg, 0, why, sizeof why); /* fill_model writes every tensor */
    if (rc) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: bad hyper-parameters: %s", path, why);
        goto done;
    }
    model_ok = 1;
    rc = fill_model(m, recs, n_tensors, path, err, errlen);
    if (rc) goto done;
    m->calib_a = get_f32(buf + hsize - 12);
    m->calib_b = get_f32(buf + hsize - 8);
    if (!isfinite(m->calib_a) || !isfinite(m->calib_b)) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: non-finite value in the calibration (%g, %g)",
                    path, (double)m->calib_a, (double)m->calib_b);
        goto done;
    }
    if (product_ids) {
        *product_ids = nb_xmalloc(sizeof(int32_t) * (size_t)cfg.n_products);
        for (int i = 0; i < cfg.n_products; i++)
            (*product_ids)[i] = (int32_t)get_u32(ids + 4 * (size_t)i);
    }
    if (crc) *crc = file_crc;

done:
    if (rc && model_ok) nn_model_free(m);
    if (rc) memset(m, 0, sizeof *m);
    free(recs);
    free(buf);
    return rc;
}
