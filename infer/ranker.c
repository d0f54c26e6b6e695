/* ranker.c -- XGBoost C API wrapper and the ranker file (ranker.h). */
#include "ranker.h"
#include "atomic_file.h"
#include "crc32.h"
#include "nb_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

static const char MAGIC[8] = "NBXGB1\n"; /* 7 characters and the NUL: 8 bytes */

void tr_ranker_defaults(tr_ranker_params *p) {
    p->trees = 300;
    p->depth = 6;
    p->eta = 0.05;
    p->subsample = 1.0;
    p->threads = 2;
    p->seed = 1;
}

/* NB_EIO with XGBoost's last message, prefixed by what. */
static int xgb_err(char *err, size_t errlen, const char *what) {
    return nb_err(err, errlen, NB_EIO, "XGBoost %s: %s", what, XGBGetLastError());
}

void tr_ranker_free(tr_ranker *r) {
    if (r->booster) XGBoosterFree(r->booster);
    r->booster = NULL;
}

int tr_ranker_train(tr_ranker *r, const float *X, const float *y, int64_t n, int nf,
                    const tr_ranker_params *p, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (n <= 0 || nf <= 0)
        return nb_err(err, errlen, NB_EINVAL, "ranker: no training rows (%lld x %d)", (long long)n,
                      nf);
    DMatrixHandle d = NULL;
    BoosterHandle b = NULL;
    int rc = NB_OK;
    if (XGDMatrixCreateFromMat_omp(X, (bst_ulong)n, (bst_ulong)nf, NAN, &d, p->threads)) {
        rc = xgb_err(err, errlen, "training matrix");
        goto done;
    }
    if (XGDMatrixSetFloatInfo(d, "label", y, (bst_ulong)n)) {
        rc = xgb_err(err, errlen, "labels");
        goto done;
    }
    if (XGBoosterCreate(&d, 1, &b)) {
        rc = xgb_err(err, errlen, "booster");
        goto done;
    }
    char v[64];
    struct {
        const char *k;
        char v[32];
    } kv[] = {{"objective", "binary:logistic"},
              {"tree_method", "hist"},
              {"max_depth", ""},
              {"eta", ""},
              {"subsample", ""},
              {"nthread", ""},
              {"seed", ""},
              {"min_child_weight", "1"},
              {"max_bin", "256"},
              {"verbosity", "0"}};
    snprintf(kv[2].v, sizeof kv[2].v, "%d", p->depth);
    snprintf(kv[3].v, sizeof kv[3].v, "%.17g", p->eta);
    snprintf(kv[4].v, sizeof kv[4].v, "%.17g", p->subsample);
    snprintf(kv[5].v, sizeof kv[5].v, "%d", p->threads);
    snprintf(kv[6].v, sizeof kv[6].v, "%d", p->seed);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (XGBoosterSetParam(b, kv[i].k, kv[i].v)) {
            snprintf(v, sizeof v, "parameter %s", kv[i].k);
            rc = xgb_err(err, errlen, v);
            goto done;
        }
    for (int it = 0; it < p->trees; it++)
        if (XGBoosterUpdateOneIter(b, it, d)) {
            rc = xgb_err(err, errlen, "training");
            goto done;
        }
    r->booster = b, b = NULL;
    r->n_features = nf;
done:
    if (b) XGBoosterFree(b);
    if (d) XGDMatrixFree(d);
    return rc;
}

int tr_ranker_predict(tr_ranker *r, const float *X, int64_t n, float *out, char *err,
                      size_t errlen) {
    if (n <= 0) return NB_OK;
    DMatrixHandle d = NULL;
    int rc = NB_OK;
    bst_ulong len = 0;
    const float *res = NULL;
    if (XGDMatrixCreateFromMat_omp(X, (bst_ulong)n, (bst_ulong)r->n_features, NAN, &d, 1)) {
        rc = xgb_err(err, errlen, "prediction matrix");
        goto done;
    }
    if (XGBoosterPredict(r->booster, d, 0, 0, 0, &len, &res)) {
        rc = xgb_err(err, errlen, "prediction");
        goto done;
    }
    if (len != (bst_ulong)n) {
        rc = nb_err(err, errlen, NB_EIO, "XGBoost prediction: %llu values for %lld rows",
                    (unsigned long long)len, (long long)n);
        goto done;
    }
    memcpy(out, res, (size_t)n * sizeof *out);
done:
    if (d) XGDMatrixFree(d);
    return rc;
}

int tr_ranker_serialize(const tr_ranker *r, uint8_t **buf, size_t *len, char *err, size_t errlen) {
    bst_ulong n = 0;
    const char *p = NULL;
    if (XGBoosterSaveModelToBuffer(r->booster, "{\"format\": \"ubj\"}", &n, &p))
        return xgb_err(err, errlen, "save");
    *buf = nb_xmalloc(n ? n : 1);
    memcpy(*buf, p, n);
    *len = n;
    return NB_OK;
}

int tr_ranker_deserialize(tr_ranker *r, const uint8_t *buf, size_t len, int nf, char *err,
                          size_t errlen) {
    memset(r, 0, sizeof *r);
    BoosterHandle b = NULL;
    if (XGBoosterCreate(NULL, 0, &b)) return xgb_err(err, errlen, "booster");
    if (XGBoosterLoadModelFromBuffer(b, buf, (bst_ulong)len) ||
        XGBoosterSetParam(b, "nthread", "1")) {
        int rc = nb_err(err, errlen, NB_EFORMAT, "XGBoost model: %s", XGBGetLastError());
        XGBoosterFree(b);
        return rc;
    }
    r->booster = b;
    r->n_features = nf;
    return NB_OK;
}

int tr_ranker_clone(tr_ranker *dst, const tr_ranker *src, char *err, size_t errlen) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = tr_ranker_serialize(src, &buf, &len, err, errlen);
    if (rc == NB_OK) rc = tr_ranker_deserialize(dst, buf, len, src->n_features, err, errlen);
    free(buf);
    return rc;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int tr_ranker_save(const tr_ranker *r, const char *path, uint32_t *crc, char *err, size_t errlen) {
    uint8_t *body = NULL, *file = NULL;
    size_t blen = 0;
    int rc = tr_ranker_serialize(r, &body, &blen, err, errlen);
    if (rc) return rc;
    size_t flen = 24 + blen + 4;
    file = nb_xmalloc(flen);
    memcpy(file, MAGIC, 8);
    put32(file + 8, (uint32_t)r->n_features);
    put32(file + 12, 0);
    put64(file + 16, blen);
    memcpy(file + 24, body, blen);
    uint32_t c = nb_crc32(0, file, 24 + blen);
    put32(file + 24 + blen, c);
    nb_afile af;
    rc = nb_afile_open(&af, path, err, errlen);
    if (rc == NB_OK) {
        if (fwrite(file, 1, flen, af.f) != flen) {
            int e = errno;
            nb_afile_abort(&af);
            rc = nb_err(err, errlen, NB_EIO, "%s: write failed: %s", path, strerror(e));
        } else {
            rc = nb_afile_commit(&af, err, errlen);
        }
    }
    if (rc == NB_OK) *crc = c;
    free(body);
    free(file);
    return rc;
}

int tr_ranker_load(tr_ranker *r, const char *path, uint32_t *crc, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    uint8_t *file = NULL;
    int rc = NB_OK;
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(err, errlen, NB_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    file = nb_xmalloc(cap);
    while ((got = fread(file + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) file = nb_xrealloc(file, cap *= 2);
    }
    if (ferror(f)) {
        rc = nb_err(err, errlen, NB_EIO, "%s: read failed", path);
        goto done;
    }
    if (n < 28 || memcmp(file, MAGIC, 8) != 0) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: not a ranker file (bad magic or %zu bytes)", path,
                    n);
        goto done;
    }
    uint64_t blen = get64(file + 16);
    if (blen != n - 28) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "%s: truncated or padded: header says %llu model bytes, file holds %zu", path,
                    (unsigned long long)blen, n - 28);
        goto done;
    }
    uint32_t want = get32(file + n - 4), c = nb_crc32(0, file, n - 4);
    if (want != c) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: checksum %08x, file says %08x (corrupt)", path, c,
                    want);
        goto done;
    }
    int nf = (int)get32(file + 8);
    rc = tr_ranker_deserialize(r, file + 24, (size_t)blen, nf, err, errlen);
    if (rc)
        nb_err_wrap(err, errlen, rc, "%s", path);
    else
        *crc = c;
done:
    fclose(f);
    free(file);
    return rc;
}
