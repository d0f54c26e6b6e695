/* prerank.c -- the stored form of a precomputed ranking (prerank.h). */
#include "prerank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"
#include "rkserve.h"

static const uint8_t MAGIC[4] = {'N', 'B', 'R', '1'};

/* See prerank.h. */
int tr_prerank_keep(int n_total, int n_above) {
    int want = n_above > TR_EF1_M ? n_above : TR_EF1_M;
    return n_total < want ? n_total : want;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* See prerank.h. */
void tr_prerank_encode(const tr_prerank_entry *e, int n, int n_total, uint8_t **out, size_t *len) {
    size_t L = TR_PRERANK_HEAD + (size_t)n * TR_PRERANK_ENTRY;
    uint8_t *b = nb_xmalloc(L), *p = b + TR_PRERANK_HEAD;
    memcpy(b, MAGIC, 4);
    put32(b + 4, (uint32_t)n_total);
    put32(b + 8, (uint32_t)n);
    for (int i = 0; i < n; i++, p += TR_PRERANK_ENTRY) {
        uint32_t s;
        memcpy(&s, &e[i].score, 4);
        put32(p, (uint32_t)e[i].idx);
        put32(p + 4, s);
        p[8] = (uint8_t)e[i].why.kind;
        put32(p + 9, (uint32_t)e[i].why.a);
        put32(p + 13, (uint32_t)e[i].why.b);
        put32(p + 17, (uint32_t)e[i].why.c);
    }
    *out = b;
    *len = L;
}

/* See prerank.h. */
int tr_prerank_decode(const uint8_t *buf, size_t len, int n_products, tr_prerank_entry *e, int cap,
                      int *n, int *n_total, char *err, size_t errlen) {
    *n = *n_total = 0;
    if (len < TR_PRERANK_HEAD || memcmp(buf, MAGIC, 4) != 0)
        return nb_err(err, errlen, NB_EFORMAT, "not a stored ranking (%zu bytes, no NBR1 magic)",
                      len);
    uint32_t nt = get32(buf + 4), nk = get32(buf + 8);
    if (nk > nt || nk > (uint32_t)cap || nt > (uint32_t)n_products ||
        len != TR_PRERANK_HEAD + (size_t)nk * TR_PRERANK_ENTRY)
        return nb_err(err, errlen, NB_EFORMAT,
                      "stored ranking of %u of %u entries in %zu bytes (room for %d, %d products)",
                      nk, nt, len, cap, n_products);
    const uint8_t *p = buf + TR_PRERANK_HEAD;
    for (uint32_t i = 0; i < nk; i++, p += TR_PRERANK_ENTRY) {
        tr_prerank_entry *x = &e[i];
        uint32_t s = get32(p + 4);
        x->idx = (int32_t)get32(p);
        memcpy(&x->score, &s, 4);
        x->why = (tr_why){p[8], (int32_t)get32(p + 9), (int32_t)get32(p + 13),
                          (int32_t)get32(p + 17)};
        if (x->idx < 0 || x->idx >= n_products || !isfinite(x->score) || x->why.kind < TR_WHY_LAST5 ||
            x->why.kind > TR_WHY_NEIGHBOURS)
            return nb_err(err, errlen, NB_EFORMAT,
                          "stored ranking entry %u: product index %d, score %g, why kind %d", i,
                          (int)x->idx, (double)x->score, (int)x->why.kind);
        /* the serving order: a strict total order, so equal neighbours are a fault too */
        if (i > 0 && !(e[i - 1].score > x->score ||
                       (e[i - 1].score == x->score && e[i - 1].idx < x->idx)))
            return nb_err(err, errlen, NB_EFORMAT,
                          "stored ranking entry %u (product index %d, score %.9g) is out of "
                          "order after product index %d, score %.9g",
                          i, (int)x->idx, (double)x->score, (int)e[i - 1].idx,
                          (double)e[i - 1].score);
    }
    *n = (int)nk;
    *n_total = (int)nt;
    return NB_OK;
}

/* See prerank.h. */
int tr_prerank_from_stage(tr_prerank_entry *e, tr_ranked *rank, const tr_rk_user *ru,
                          const float *score, const int32_t *pos, double threshold,
                          const tr_explainer *x, const tr_features *f) {
    int n = ru->n, above = 0;
    for (int i = 0; i < n; i++) {
        rank[i] = (tr_ranked){score[i], ru->cand[i]};
        above += score[i] >= threshold;
    }
    int keep = tr_prerank_keep(n, above);
    tr_rank_prefix(rank, n, keep);
    for (int i = 0; i < keep; i++) {
        e[i].idx = rank[i].idx;
        e[i].score = rank[i].p;
        tr_rk_why(&e[i].why, x, f, ru, pos[e[i].idx]);
    }
    return keep;
}
