/* fixture.h -- reading the PyTorch reference fixtures (format at the top of
 * tests/gen_torch_fixture.py) and comparing our tensors with them under the scale-aware
 * tolerance PARITY_TOL (defined by the includer; the rule is described in test_parity.c).
 * Static functions: each parity test program includes it once. */
#ifndef NB_FIXTURE_H
#define NB_FIXTURE_H

#include "crc32.h"
#include "nb_err.h"
#include "nn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PARITY_TOL
#error "define PARITY_TOL before including fixture.h"
#endif

enum { FX_F32 = 1, FX_I32 = 2, FX_F64 = 3 };

typedef struct {
    char name[64];
    int dtype, ndim;
    int dims[4];
    size_t n; /* elements */
    const unsigned char *data;
} fx_rec;

typedef struct {
    unsigned char *buf;
    int n;
    fx_rec *recs;
} fixture;

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Loads and indexes a fixture. Returns 0, or -1 with a message in err (the fixture is then
 * empty). The caller frees with fx_free. */
static int fx_load(fixture *fx, const char *path, char *err, size_t errlen) {
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(err, errlen, -1, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    fx->buf = malloc(size > 0 ? (size_t)size : 1);
    size_t got = fread(fx->buf, 1, (size_t)size, f);
    fclose(f);
    if (size < 16 || got != (size_t)size || memcmp(fx->buf, "NBFIXT01", 8) != 0)
        return nb_err(err, errlen, -1, "%s: not a fixture", path);
    if (nb_crc32(0, fx->buf, (size_t)size - 4) != rd_u32(fx->buf + size - 4))
        return nb_err(err, errlen, -1, "%s: fixture checksum mismatch", path);
    fx->n = (int)rd_u32(fx->buf + 8);
    fx->recs = calloc((size_t)fx->n, sizeof *fx->recs);
    size_t pos = 12, end = (size_t)size - 4;
    for (int i = 0; i < fx->n; i++) {
        fx_rec *r = &fx->recs[i];
        uint32_t len = rd_u32(fx->buf + pos);
        if (len >= sizeof r->name || pos + 12 + len > end)
            return nb_err(err, errlen, -1, "%s: record %d malformed", path, i);
        memcpy(r->name, fx->buf + pos + 4, len);
        pos += 4 + len;
        r->dtype = (int)rd_u32(fx->buf + pos);
        r->ndim = (int)rd_u32(fx->buf + pos + 4);
        pos += 8;
        if (r->ndim < 1 || r->ndim > 4 || pos + 4 * (size_t)r->ndim > end)
            return nb_err(err, errlen, -1, "%s: record %s malformed", path, r->name);
        r->n = 1;
        for (int d = 0; d < r->ndim; d++) {
            r->dims[d] = (int)rd_u32(fx->buf + pos);
            r->n *= (size_t)r->dims[d];
            pos += 4;
        }
        size_t bytes = r->n * (r->dtype == FX_F64 ? 8 : 4);
        if (pos + bytes > end)
            return nb_err(err, errlen, -1, "%s: record %s truncated", path, r->name);
        r->data = fx->buf + pos;
        pos += bytes;
    }
    if (pos != end) return nb_err(err, errlen, -1, "%s: trailing bytes", path);
    return 0;
}

static void fx_free(fixture *fx) {
    free(fx->buf);
    free(fx->recs);
    memset(fx, 0, sizeof *fx);
}

/* The record called name, or NULL. */
static const fx_rec *fx_find(const fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->recs[i].name, name) == 0) return &fx->recs[i];
    return NULL;
}

/* Element i of r as a double, whatever its type (the host is little-endian; checked in main). */
static double fx_get(const fx_rec *r, size_t i) {
    if (r->dtype == FX_F32) {
        float v;
        memcpy(&v, r->data + 4 * i, 4);
        return v;
    }
    if (r->dtype == FX_I32) {
        int32_t v;
        memcpy(&v, r->data + 4 * i, 4);
        return v;
    }
    double v;
    memcpy(&v, r->data + 8 * i, 8);
    return v;
}

/* Compares ours[0..n) with the record (same element count required) under the scale-aware
 * tolerance above; prints the worst element. Returns 1 if any element is out of tolerance
 * (or the sizes differ, or a value is NaN), else 0. */
static int compare(const char *fxname, const char *what, const nn_real *ours, size_t n,
                   const fx_rec *r) {
    if (!r || r->n != n) {
        printf("# %s %s: size mismatch (ours %zu, torch %zu)\n", fxname, what, n, r ? r->n : 0);
        return 1;
    }
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(fx_get(r, i)));
    size_t worst = 0, bad = 0;
    double worst_ratio = -1;
    for (size_t i = 0; i < n; i++) {
        double b = fx_get(r, i), a = ours[i];
        double tol = PARITY_TOL * fmax(fabs(b), scale);
        double ratio = a == b ? 0 : fabs(a - b) / tol; /* a == b covers an all-zero tensor */
        if (!(ratio <= 1)) bad++;
        if (!(ratio <= worst_ratio)) {
            worst_ratio = ratio;
            worst = i;
        } /* NaN wins */
    }
    printf("# %-16s %-16s worst [%5zu] ours % .8e torch % .8e  err/tol %.3g%s\n", fxname, what,
           worst, (double)ours[worst], fx_get(r, worst), worst_ratio, bad ? "  MISMATCH" : "");
    if (bad) printf("# %s %s: %zu of %zu elements out of tolerance\n", fxname, what, bad, n);
    return bad ? 1 : 0;
}

#endif
