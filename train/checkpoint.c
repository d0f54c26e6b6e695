/* checkpoint.c -- write and read the training checkpoint (format in checkpoint.h). */
#include "checkpoint.h"
#include "atomic_file.h"
#include "crc32.h"
#include "nb_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing byte buffer: the whole checkpoint is assembled, checksummed, then written. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *x, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n) c *= 2;
        b->p = nb_xrealloc(b->p, c);
        b->cap = c;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
#define PUT(b, v) put((b), &(v), sizeof(v))

/* The configuration in machine byte order: the int fields of nn_config_fields in order,
 * sizeof(nn_real) (a float checkpoint does not resume a double build), then the float
 * fields. */
static void put_cfg(buf *b, const nn_config *c) {
    for (int i = 0; i < NN_CONFIG_NFIELDS; i++)
        if (!nn_config_fields[i].is_float) {
            int32_t v = (int32_t)nn_config_get(c, &nn_config_fields[i]);
            PUT(b, v);
        }
    int32_t real = (int32_t)sizeof(nn_real);
    PUT(b, real);
    for (int i = 0; i < NN_CONFIG_NFIELDS; i++)
        if (nn_config_fields[i].is_float) {
            float v = (float)nn_config_get(c, &nn_config_fields[i]);
            PUT(b, v);
        }
}

int tr_ckpt_save(const char *path, const nn_model *m, const tr_train_state *st, char *err,
                 size_t errlen) {
    buf b = {0};
    put(&b, TR_CKPT_MAGIC, 8);
    uint32_t ver = TR_CKPT_VERSION;
    PUT(&b, ver);
    PUT(&b, st->signature);
    put_cfg(&b, &m->cfg);
    uint64_t np = m->n_params;
    PUT(&b, np);
    int32_t i3[3] = {st->epochs_done, st->best_epoch, st->bad_epochs};
    put(&b, i3, sizeof i3);
    int64_t t = m->adam_t;
    PUT(&b, t);
    PUT(&b, st->best_metric);
    PUT(&b, st->start_metric);
    put(&b, m->rng.s, sizeof m->rng.s);
    put(&b, st->shuffle_rng.s, sizeof st->shuffle_rng.s);
    PUT(&b, st->train_seconds);
    int32_t nh = st->n_hist;
    PUT(&b, nh);
    for (int i = 0; i < st->n_hist; i++) {
        const tr_epoch_stat *e = &st->hist[i];
        double v[TR_EPOCH_FIELDS] = {e->train_loss, e->val_loss, e->val_recall10,
                                     e->val_ndcg10, e->seconds,  e->samples_per_s};
        put(&b, v, sizeof v);
    }
    size_t bytes = m->n_params * sizeof(nn_real);
    /* the best parameters are usually the current ones: then a flag replaces the copy */
    uint8_t same = memcmp(m->mem, st->best_params, bytes) == 0;
    PUT(&b, same);
    put(&b, m->mem, bytes);
    put(&b, m->adam_m, bytes);
    put(&b, m->adam_v, bytes);
    if (!same) put(&b, st->best_params, bytes);
    uint32_t crc = nb_crc32(0, b.p, b.n);
    PUT(&b, crc);

    nb_afile af;
    int rc = nb_afile_open(&af, path, err, errlen);
    if (rc) goto done;
    if (fwrite(b.p, 1, b.n, af.f) != b.n) {
        int e = errno;
        nb_afile_abort(&af);
        rc = nb_err(err, errlen, NB_EIO, "%s: write failed: %s", path, strerror(e));
        goto done;
    }
    rc = nb_afile_commit(&af, err, errlen);
done:
    free(b.p);
    return rc;
}

/* A bounds-checked reader over the loaded bytes. */
typedef struct {
    const unsigned char *p;
    size_t n, at;
    int short_read;
} rd;

static void get(rd *r, void *x, size_t n) {
    if (r->at + n > r->n) {
        r->short_read = 1;
        memset(x, 0, n);
        return;
    }
    memcpy(x, r->p + r->at, n);
    r->at += n;
}
#define GET(r, v) get((r), &(v), sizeof(v))

int tr_ckpt_load(const char *path, nn_model *m, tr_train_state *st, char *err, size_t errlen) {
    int rc = NB_OK;
    unsigned char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return nb_err(err, errlen, NB_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        rc = nb_err(err, errlen, NB_EIO, "%s: cannot seek", path);
        goto done;
    }
    long len = ftell(f);
    rewind(f);
    if (len < 8 + 4) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: truncated (%ld bytes)", path, len);
        goto done;
    }
    data = nb_xmalloc((size_t)len);
    if (fread(data, 1, (size_t)len, f) != (size_t)len) {
        rc = nb_err(err, errlen, NB_EIO, "%s: read failed", path);
        goto done;
    }
    if (memcmp(data, TR_CKPT_MAGIC, 8) != 0) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: bad magic (not a checkpoint)", path);
        goto done;
    }
    uint32_t crc;
    memcpy(&crc, data + len - 4, 4);
    if (nb_crc32(0, data, (size_t)len - 4) != crc) {
        rc =
            nb_err(err, errlen, NB_EFORMAT, "%s: checksum mismatch (truncated or corrupted)", path);
        goto done;
    }
    rd r = {data, (size_t)len - 4, 8, 0};
    uint32_t ver, sig;
    GET(&r, ver);
    GET(&r, sig);
    if (ver != TR_CKPT_VERSION) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: unsupported version %u (this build reads %d)",
                    path, ver, TR_CKPT_VERSION);
        goto done;
    }
    buf want = {0};
    put_cfg(&want, &m->cfg);
    size_t cfg_at = r.at;
    r.at += want.n;
    int cfg_ok = !(r.at > r.n) && memcmp(data + cfg_at, want.p, want.n) == 0;
    free(want.p);
    if (!cfg_ok) {
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "%s: written for other model dimensions (a different store or flags)", path);
        goto done;
    }
    if (sig != st->signature) {
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "%s: written by a run with other training flags (seed, lr, batch, split, ...)",
                    path);
        goto done;
    }
    uint64_t np;
    GET(&r, np);
    if (np != m->n_params) {
        rc = nb_err(err, errlen, NB_EMISMATCH, "%s: %llu parameters, model has %zu", path,
                    (unsigned long long)np, m->n_params);
        goto done;
    }
    int32_t i3[3];
    int64_t t;
    double best, start, secs;
    nb_rng mr, sr;
    int32_t nh;
    get(&r, i3, sizeof i3);
    GET(&r, t);
    GET(&r, best);
    GET(&r, start);
    get(&r, mr.s, sizeof mr.s);
    get(&r, sr.s, sizeof sr.s);
    GET(&r, secs);
    GET(&r, nh);
    if (r.short_read || nh < 0 || nh > TR_MAX_EPOCHS_HIST || i3[0] < 0) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: bad header", path);
        goto done;
    }
    size_t bytes = m->n_params * sizeof(nn_real);
    size_t hist_bytes = (size_t)nh * TR_EPOCH_FIELDS * sizeof(double);
    uint8_t same = 2;
    if (r.at + hist_bytes < r.n) memcpy(&same, data + r.at + hist_bytes, 1);
    if (same > 1 || r.at + hist_bytes + 1 + (same ? 3 : 4) * bytes != r.n) {
        rc = nb_err(err, errlen, NB_EFORMAT, "%s: size does not match its header", path);
        goto done;
    }
    /* every check passed: now overwrite the caller's state */
    st->epochs_done = i3[0];
    st->best_epoch = i3[1];
    st->bad_epochs = i3[2];
    st->best_metric = best;
    st->start_metric = start;
    st->shuffle_rng = sr;
    st->train_seconds = secs;
    st->n_hist = nh;
    for (int i = 0; i < nh; i++) {
        double v[TR_EPOCH_FIELDS];
        get(&r, v, sizeof v);
        st->hist[i] = (tr_epoch_stat){v[0], v[1], v[2], v[3], v[4], v[5]};
    }
    m->adam_t = t;
    m->rng = mr;
    r.at++; /* the "best == current" flag read above */
    get(&r, m->mem, bytes);
    get(&r, m->adam_m, bytes);
    get(&r, m->adam_v, bytes);
    if (same)
        memcpy(st->best_params, m->mem, bytes);
    else
        get(&r, st->best_params, bytes);
done:
    if (f) fclose(f);
    free(data);
    return rc;
}
