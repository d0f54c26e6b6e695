/* ranker.c -- XGBoost C API wrapper and the ranker file (ranker.h). */
#include "ranker.h"
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
#include <xgboost/c_api.h>

static const char MAGIC[8] = "NBXGB2\n";  /* 7 characters and the NUL: 8 bytes */
static const char MAGIC1[8] = "NBXGB1\n"; /* version 1: no prior, a 24-byte header */
#define HDR2 40
#define HDR1 24
#define RK_MAX_BIN 256 /* the training matrix's and the booster's: they must agree */
#define RK_STR_(x) #x
#define RK_STR(x) RK_STR_(x) /* RK_STR(RK_MAX_BIN) is "256": the booster's parameter string */

void tr_ranker_defaults(tr_ranker_params *p) {
    p->trees = 300;
    p->depth = 6;
    p->eta = 0.05;
    p->subsample = 1.0;
    p->threads = 2;
    p->seed = 1;
    p->prior_col = -1;
}

/* NB_EIO with XGBoost's last message, prefixed by what. */
static int xgb_err(char *err, size_t errlen, const char *what) {
    return nb_err(err, errlen, NB_EIO, "XGBoost %s: %s", what, XGBGetLastError());
}

void tr_ranker_free(tr_ranker *r) {
    if (r->booster) XGBoosterFree(r->booster);
    r->booster = NULL;
}

/* log(1 + e^t) without overflow. */
static double softplus(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }

/* The log-likelihood of intercept a and slope b on the standardised feature. */
static double prior_ll(const float *X, const float *y, int64_t n, int nf, int col, double mu,
                       double sd, double a, double b) {
    double ll = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = X[(size_t)i * nf + col];
        if (isnan(x)) continue;
        double t = a + b * (x - mu) / sd;
        ll -= y[i] > 0 ? softplus(-t) : softplus(t);
    }
    return ll;
}

int tr_ranker_fit_prior(const float *X, const float *y, int64_t n, int nf, int col, double *m0,
                        double *m1, char *err, size_t errlen) {
    assert(col >= 0 && col < nf);
    *m0 = *m1 = 0;
    /* on the standardised feature, for a well-conditioned Newton step */
    double sx = 0, sxx = 0, sy = 0;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = X[(size_t)i * nf + col];
        if (isnan(x)) continue;
        sx += x, sxx += x * x, sy += y[i] > 0, m++;
    }
    if (m == 0 || sy == 0 || sy == (double)m)
        return nb_err(err, errlen, NB_EINVAL,
                      "ranker prior: %lld rows with feature %d, %.0f positive: nothing to fit",
                      (long long)m, col, sy);
    double mu = sx / m, sd = sqrt(fmax(sxx / m - mu * mu, 0));
    if (!(sd > 0)) sd = 1;
    double a = log(sy / (m - sy)), b = 0; /* intercept-only start */
    double ll = prior_ll(X, y, n, nf, col, mu, sd, a, b);
    /* Newton's method, each step halved until the likelihood does not fall: a heavy-tailed
     * feature (TIFU-KNN's score) makes full steps overshoot and diverge */
    for (int it = 0; it < 100; it++) {
        double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = X[(size_t)i * nf + col];
            if (isnan(x)) continue;
            double z = (x - mu) / sd, pr = 1 / (1 + exp(-(a + b * z))), w = pr * (1 - pr);
            double e = pr - (y[i] > 0);
            g0 += e, g1 += e * z, h00 += w, h01 += w * z, h11 += w * z * z;
        }
        double det = h00 * h11 - h01 * h01;
        if (!(det > 1e-12)) break;
        double da = (h11 * g0 - h01 * g1) / det, db = (h00 * g1 - h01 * g0) / det, step = 1;
        double na = a - da, nb = b - db, nll = prior_ll(X, y, n, nf, col, mu, sd, na, nb);
        for (int k = 0; k < 40 && !(nll >= ll); k++) {
            step /= 2;
            na = a - step * da, nb = b - step * db;
            nll = prior_ll(X, y, n, nf, col, mu, sd, na, nb);
        }
        if (!(nll >= ll)) break; /* no ascent left */
        a = na, b = nb;
        double gain = nll - ll;
        ll = nll;
        if (fabs(step * da) + fabs(step * db) < 1e-12 || gain < 1e-12 * fabs(ll)) break;
    }
    assert(isfinite(a) && isfinite(b));
    *m1 = b / sd;
    *m0 = a - b * mu / sd;
    return NB_OK;
}

/* The prior's margin of every row of X[n, stride] (malloc'd), or NULL without a prior. */
static float *prior_margins(const tr_ranker *r, const float *X, int64_t n, int stride) {
    if (!r->has_prior) return NULL;
    float *m = nb_xmalloc(((size_t)n + 1) * sizeof *m);
    for (int64_t i = 0; i < n; i++) {
        double x = X[(size_t)i * stride + r->prior_col];
        m[i] = (float)(isnan(x) ? r->m0 : r->m0 + r->m1 * x);
    }
    return m;
}

/* Sets the prior's margin of every row of X[n, stride] on d (nothing without a prior). */
static int set_margins(DMatrixHandle d, const tr_ranker *r, const float *X, int64_t n, int stride,
                       char *err, size_t errlen) {
    float *m = prior_margins(r, X, n, stride);
    if (!m) return NB_OK;
    int rc = XGDMatrixSetFloatInfo(d, "base_margin", m, (bst_ulong)n) ? xgb_err(err, errlen, "margins")
                                                                      : NB_OK;
    free(m);
    return rc;
}

/* The training matrix is a quantile DMatrix, built through XGBoost's data-iterator API from
 * one batch: the dense rows X, labels y and margins (or NULL). The hist method trains on
 * the quantised matrix alone (~1 byte a value); a plain DMatrix also keeps a CSR copy of X
 * (8 bytes a value: 770 MB for the 3M rows of the full-scale training, the job's peak). */
typedef struct {
    DMatrixHandle proxy;
    const float *X, *y, *margin;
    int64_t n;
    int nf, done;
} one_batch;

static void one_batch_reset(DataIterHandle h) { ((one_batch *)h)->done = 0; }

/* XGDMatrixCallbackNext: 1 with the batch set on the proxy, 0 after it, -1 on an error. */
static int one_batch_next(DataIterHandle h) {
    one_batch *b = h;
    if (b->done) return 0;
    char js[256];
    snprintf(js, sizeof js,
             "{\"data\": [%" PRIuPTR ", true], \"shape\": [%lld, %d], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (uintptr_t)b->X, (long long)b->n, b->nf);
    if (XGProxyDMatrixSetDataDense(b->proxy, js) ||
        XGDMatrixSetFloatInfo(b->proxy, "label", b->y, (bst_ulong)b->n) ||
        (b->margin && XGDMatrixSetFloatInfo(b->proxy, "base_margin", b->margin, (bst_ulong)b->n)))
        return -1;
    b->done = 1;
    return 1;
}

/* The quantile DMatrix of rows X[n, nf] (NaN missing), labels y and margins m (or NULL),
 * max_bin bins a feature, into *d. Returns NB_OK or NB_EIO (XGBoost's message). */
static int quantile_matrix(DMatrixHandle *d, const float *X, const float *y, const float *m,
                           int64_t n, int nf, int max_bin, int threads, char *err,
                           size_t errlen) {
    one_batch b = {NULL, X, y, m, n, nf, 0};
    if (XGProxyDMatrixCreate(&b.proxy)) return xgb_err(err, errlen, "proxy matrix");
    char cfg[128];
    snprintf(cfg, sizeof cfg, "{\"missing\": NaN, \"nthread\": %d, \"max_bin\": %d}", threads,
             max_bin);
    int rc = XGQuantileDMatrixCreateFromCallback(&b, b.proxy, NULL, one_batch_reset,
                                                 one_batch_next, cfg, d)
                 ? xgb_err(err, errlen, "training matrix")
                 : NB_OK;
    XGDMatrixFree(b.proxy);
    return rc;
}

int tr_ranker_train(tr_ranker *r, const float *X, const float *y, int64_t n, int nf,
                    const tr_ranker_params *p, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (n <= 0 || nf <= 0)
        return nb_err(err, errlen, NB_EINVAL, "ranker: no training rows (%lld x %d)", (long long)n,
                      nf);
    if (p->prior_col >= nf)
        return nb_err(err, errlen, NB_EINVAL, "ranker: prior feature %d of %d", p->prior_col, nf);
    DMatrixHandle d = NULL;
    BoosterHandle b = NULL;
    int rc = NB_OK;
    if (p->prior_col >= 0) {
        rc = tr_ranker_fit_prior(X, y, n, nf, p->prior_col, &r->m0, &r->m1, err, errlen);
        if (rc) return rc;
        r->has_prior = 1, r->prior_col = p->prior_col;
    }
    float *margin = prior_margins(r, X, n, nf);
    rc = quantile_matrix(&d, X, y, margin, n, nf, RK_MAX_BIN, p->threads, err, errlen);
    free(margin);
    if (rc) goto done;
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
              {"max_bin", RK_STR(RK_MAX_BIN)},
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
    if (rc) memset(r, 0, sizeof *r);
    return rc;
}

int tr_ranker_predict(tr_ranker *r, const float *X, int64_t n, int stride, float *out, char *err,
                      size_t errlen) {
    if (n <= 0) return NB_OK;
    if (stride < r->n_features || (r->has_prior && r->prior_col >= stride))
        return nb_err(err, errlen, NB_EINVAL, "ranker: rows of %d values for a ranker of %d",
                      stride, r->n_features);
    DMatrixHandle d = NULL;
    int rc = NB_OK;
    bst_ulong len = 0;
    const float *res = NULL, *M = X;
    float *packed = NULL;
    if (stride > r->n_features) { /* the prefix of each row */
        packed = nb_xmalloc((size_t)n * (size_t)r->n_features * sizeof *packed);
        for (int64_t i = 0; i < n; i++)
            memcpy(packed + (size_t)i * r->n_features, X + (size_t)i * stride,
                   (size_t)r->n_features * sizeof *packed);
        M = packed;
    }
    if (XGDMatrixCreateFromMat_omp(M, (bst_ulong)n, (bst_ulong)r->n_features, NAN, &d, 1)) {
        rc = xgb_err(err, errlen, "prediction matrix");
        goto done;
    }
    rc = set_margins(d, r, X, n, stride, err, errlen);
    if (rc) goto done;
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
    free(packed);
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

/* Copies src's prior into dst (a slice or a clone boosts from the same prior). */
static void prior_copy(tr_ranker *dst, const tr_ranker *src) {
    dst->has_prior = src->has_prior, dst->prior_col = src->prior_col;
    dst->m0 = src->m0, dst->m1 = src->m1;
}

int tr_ranker_slice(tr_ranker *dst, const tr_ranker *src, int rounds, char *err, size_t errlen) {
    memset(dst, 0, sizeof *dst);
    if (rounds <= 0)
        return nb_err(err, errlen, NB_EINVAL, "ranker: a slice of %d rounds", rounds);
    /* checked here: XGBoost 1.7 leaks the sliced learner when it finds the range out of bound */
    int have = 0;
    if (XGBoosterBoostedRounds(src->booster, &have)) return xgb_err(err, errlen, "rounds");
    if (rounds > have)
        return nb_err(err, errlen, NB_EINVAL, "ranker: a slice of %d rounds of %d", rounds, have);
    BoosterHandle b = NULL;
    if (XGBoosterSlice(src->booster, 0, rounds, 1, &b)) return xgb_err(err, errlen, "slice");
    dst->booster = b;
    dst->n_features = src->n_features;
    prior_copy(dst, src);
    return NB_OK;
}

int tr_ranker_clone(tr_ranker *dst, const tr_ranker *src, char *err, size_t errlen) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = tr_ranker_serialize(src, &buf, &len, err, errlen);
    if (rc == NB_OK) rc = tr_ranker_deserialize(dst, buf, len, src->n_features, err, errlen);
    if (rc == NB_OK) prior_copy(dst, src);
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

/* The bits of a double, and back (the file stores the prior's coefficients exactly). */
static uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static double bitsd(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

int tr_ranker_save(const tr_ranker *r, const char *path, uint32_t *crc, char *err, size_t errlen) {
    uint8_t *body = NULL, *file = NULL;
    size_t blen = 0;
    int rc = tr_ranker_serialize(r, &body, &blen, err, errlen);
    if (rc) return rc;
    size_t flen = HDR2 + blen + 4;
    file = nb_xmalloc(flen);
    memcpy(file, MAGIC, 8);
    put32(file + 8, (uint32_t)r->n_features);
    put32(file + 12, r->has_prior ? (uint32_t)r->prior_col : UINT32_MAX);
    put64(file + 16, blen);
    put64(file + 24, dbits(r->m0));
    put64(file + 32, dbits(r->m1));
    memcpy(file + HDR2, body, blen);
    uint32_t c = nb_crc32(0, file, HDR2 + blen);
    put32(file + HDR2 + blen, c);
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
    size_t hdr = n >= 8 && memcmp(file, MAGIC, 8) == 0    ? HDR2
                 : n >= 8 && memcmp(file, MAGIC1, 8) == 0 ? HDR1
                                                          : 0;
    if (hdr == 0 || n < hdr + 4) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: not a ranker file (bad magic or %zu bytes)", path,
                    n);
        goto done;
    }
    uint64_t blen = get64(file + 16);
    if (blen != n - hdr - 4) {
        rc = nb_err(err, errlen, NB_EFORMAT,
                    "%s: truncated or padded: header says %llu model bytes, file holds %zu", path,
                    (unsigned long long)blen, n - hdr - 4);
        goto done;
    }
    uint32_t want = get32(file + n - 4), c = nb_crc32(0, file, n - 4);
    if (want != c) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: checksum %08x, file says %08x (corrupt)", path, c,
                    want);
        goto done;
    }
    int nf = (int)get32(file + 8), mc = hdr == HDR2 ? (int)(int32_t)get32(file + 12) : -1;
    if (mc < -1 || mc >= nf) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: prior feature %d of %d features", path, mc, nf);
        goto done;
    }
    rc = tr_ranker_deserialize(r, file + hdr, (size_t)blen, nf, err, errlen);
    if (rc) {
        nb_err_wrap(err, errlen, rc, "%s", path);
    } else {
        *crc = c;
        if (mc >= 0) {
            r->has_prior = 1, r->prior_col = mc;
            r->m0 = bitsd(get64(file + 24)), r->m1 = bitsd(get64(file + 32));
        }
    }
done:
    fclose(f);
    free(file);
    return rc;
}
