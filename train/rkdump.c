/* rkdump.c -- the ranking stage's rows for offline analysis (rkdump.h). */
#include "rkdump.h"
#include "atomic_file.h"
#include "evaluate.h"
#include "nb_err.h"
#include "rkfeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = "NBRKRW1\n";

/* The bought bits of r's rows (rkdump.h) into bits[r->n]; bm[P] is zero on entry and exit. */
static void bought_bits(const st_history *h, const tr_rk_dump_rows *r, uint64_t *bm,
                        uint64_t *bits) {
    for (int j = 0; j < r->nu; j++) {
        int64_t o0 = h->user_order_off[r->user[j]], end = r->target[j];
        int k = 0;
        for (int64_t o = end - 1; o >= o0 && k < 64; o--) {
            if (h->order_item_off[o + 1] == h->order_item_off[o]) continue;
            for (int64_t e = h->order_item_off[o]; e < h->order_item_off[o + 1]; e++)
                bm[h->items[e]] |= 1ull << k;
            k++;
        }
        for (int64_t i = r->off[j]; i < r->off[j + 1]; i++) bits[i] = bm[r->prod[i]];
        for (int64_t o = end - 1; o >= o0; o--)
            for (int64_t e = h->order_item_off[o]; e < h->order_item_off[o + 1]; e++)
                bm[h->items[e]] = 0;
    }
}

int tr_rk_dump(const char *dir, const char *name, const st_history *h, const tr_rk_dump_rows *r,
               char *err, size_t errlen) {
    int P = h->n_products, rc = NB_OK;
    size_t n = (size_t)r->n, nu = (size_t)r->nu;
    char *path = nb_xmalloc(strlen(dir) + strlen(name) + 16);
    sprintf(path, "%s/%s.nbrows", dir, name);
    int32_t *i32 = nb_xmalloc((n > nu ? n : nu) * sizeof *i32 + 4);
    uint64_t *bits = nb_xmalloc(n * sizeof *bits + 8), *bm = nb_xcalloc((size_t)P, sizeof *bm);
    int32_t *truth = nb_xmalloc((size_t)P * sizeof *truth);
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    char names[TR_RK_DUMP_NAME];
    nb_afile af = {0};
    rc = nb_afile_open(&af, path, err, errlen);
    if (rc) goto done;
    int64_t hdr[3] = {r->n, r->nf, r->nu};
    int ok = fwrite(MAGIC, 1, sizeof MAGIC, af.f) == sizeof MAGIC &&
             fwrite(hdr, sizeof hdr, 1, af.f) == 1;
    for (int f = 0; f < r->nf && ok; f++) {
        memset(names, 0, sizeof names);
        snprintf(names, sizeof names, "%s", f < TR_RK_NF ? tr_rk_feat_names[f] : "?");
        ok = fwrite(names, sizeof names, 1, af.f) == 1;
    }
    ok = ok && fwrite(r->X, sizeof *r->X * (size_t)r->nf, n, af.f) == n &&
         fwrite(r->y, sizeof *r->y, n, af.f) == n && fwrite(r->model, sizeof *r->model, n, af.f) == n;
    for (size_t i = 0; i < n; i++) i32[i] = h->product_ids[r->prod[i]];
    ok = ok && fwrite(i32, sizeof *i32, n, af.f) == n &&
         fwrite(r->off, sizeof *r->off, nu + 1, af.f) == nu + 1;
    for (size_t j = 0; j < nu; j++) i32[j] = h->user_ids[r->user[j]];
    ok = ok && fwrite(i32, sizeof *i32, nu, af.f) == nu;
    for (size_t j = 0; j < nu; j++) {
        int nt = tr_truth_of(h, r->target[j], mark, truth);
        for (int k = 0; k < nt; k++) mark[truth[k]] = 0;
        i32[j] = nt;
    }
    ok = ok && fwrite(i32, sizeof *i32, nu, af.f) == nu;
    bought_bits(h, r, bm, bits);
    ok = ok && fwrite(bits, sizeof *bits, n, af.f) == n;
    if (!ok) {
        nb_afile_abort(&af);
        rc = nb_err(err, errlen, NB_EIO, "%s: write failed", path);
        goto done;
    }
    rc = nb_afile_commit(&af, err, errlen);
done:
    free(path);
    free(i32);
    free(bits);
    free(bm);
    free(truth);
    free(mark);
    return rc;
}
