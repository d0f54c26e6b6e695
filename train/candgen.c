/* candgen.c -- every user's candidate set from the model's embeddings (see candgen.h).
 *
 * Per block of TR_CG_BLOCK users, in one of n_threads workers:
 *   profiles [bu, E]  = normalised frequency-weighted mean of the history embeddings
 *   scores   [bu, P]  = profiles . normalised_emb^T            (one sgemm)
 *   per user: previously bought products are excluded from the scores and taken first; for
 *   the rest, a threshold a little below the need-th best score is estimated from every
 *   16th score (quickselect on ~3,100 values), one pass over the row collects the ~1.2 *
 *   need products above it, and a quickselect on those finds the exact need-th (score
 *   desc, index asc); a filter of the collected list (still in index order) yields the set
 *   already sorted. One full pass over the row, no sort.
 * Every user's output range is fixed up front (off[]), so the result does not depend on
 * the thread count. While the workers run, OpenBLAS is told to use one thread (each worker's sgemm is
 * already one of n_threads parallel streams); its setting is restored afterwards, so do not
 * run other OpenBLAS work concurrently with tr_cands_build in the same process.
 */
#include "candgen.h"

#include <assert.h>
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "candidates.h"
#include "nb_err.h"
#include "store.h"

#define TR_CG_BLOCK 32 /* users per sgemm: 32 x 49,688 floats = 6.4 MB, stays in cache */

int64_t tr_cands_default_end(const st_history *h, int u) {
    int64_t o = h->user_order_off[u], e = h->user_order_off[u + 1];
    for (; o < e; o++)
        if (h->eval_set[o] != ST_PRIOR) return o;
    return e;
}

typedef struct {
    float s;
    int32_t i;
} cg_pair;

/* a ranks before b: higher score, then lower index (a total order on distinct indices). */
static inline int cg_better(cg_pair a, cg_pair b) { return a.s > b.s || (a.s == b.s && a.i < b.i); }

/* A 64-bit key whose unsigned order is cg_better's order (larger = better): the float's
 * bits made order-preserving in the high half, the complemented index in the low half.
 * (-0.0 ranks below +0.0 here; float comparison calls them equal. Nothing else differs.) */
static inline uint64_t cg_key(float s, int32_t i) {
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return (uint64_t)u << 32 | (uint32_t)(0xffffffffu - (uint32_t)i);
}
static inline int32_t cg_key_index(uint64_t k) { return (int32_t)(0xffffffffu - (uint32_t)k); }

/* Quickselect (Hoare partition, median-of-three pivot): rearranges a[0..n) so that a[k] is
 * the k-th largest (0 = largest). Keys are distinct. O(n) expected. */
static void cg_nth(uint64_t *a, int n, int k) {
    int lo = 0, hi = n - 1;
    while (hi > lo) {
        int mid = lo + (hi - lo) / 2;
        uint64_t t;
        if (a[mid] > a[lo]) t = a[mid], a[mid] = a[lo], a[lo] = t;
        if (a[hi] > a[lo]) t = a[hi], a[hi] = a[lo], a[lo] = t;
        if (a[hi] > a[mid]) t = a[hi], a[hi] = a[mid], a[mid] = t;
        uint64_t piv = a[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] > piv) i++;
            while (piv > a[j]) j--;
            if (i <= j) {
                t = a[i], a[i] = a[j], a[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

/* For the cold-start popularity list: a full sort (once per build). */
static int cg_pair_cmp(const void *a, const void *b) {
    const cg_pair *x = a, *y = b;
    return cg_better(*x, *y) ? -1 : cg_better(*y, *x) ? 1 : 0;
}

static int cg_i32_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    /* shared, read-only */
    const st_history *h;
    const float *emb;   /* raw [P, E] */
    const float *nrm;   /* normalised [P, E] */
    const int64_t *end; /* [n_users] */
    const int32_t *pop; /* [n_top] popularity top list, ascending */
    int P, E, n_top, n_threads, tid;
    const int32_t *cnt; /* [n_users] set sizes */
    int64_t *ulen;      /* [n_users] encoded length of each user's set (its worker writes it) */
    int64_t *ustart;    /* [n_users] where in its worker's buf it starts */
    /* private */
    uint8_t *buf;        /* this worker's users' encoded sets, in the order it ran them */
    size_t len, cap;     /* of buf */
    int32_t *set;        /* [max set size] the current user's set */
    float *prof;     /* [TR_CG_BLOCK, E] */
    float *scores;   /* [TR_CG_BLOCK, P] */
    uint8_t *mark;   /* [P] bought by the current user */
    int32_t *bought; /* [P] */
    int32_t *lst;    /* [P] products scoring above the estimated threshold, ascending */
    uint64_t *tmp;   /* [P] keys (cg_key) for the quickselects */
    int32_t *sel;    /* [P] the selected ones, ascending */
} cg_worker;

/* Merge of ascending disjoint lists into out; returns the count. */
static int cg_merge(int32_t *out, const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0, j = 0, n = 0;
    while (i < na && j < nb) out[n++] = a[i] < b[j] ? a[i++] : b[j++];
    while (i < na) out[n++] = a[i++];
    while (j < nb) out[n++] = b[j++];
    return n;
}

/* Collects the not-bought products scoring >= thr into w->lst (index order); returns the
 * count. */
static int cg_collect(cg_worker *w, const float *s, float thr) {
    /* branch-free: the write always happens, the count advances only on a keep (a branch
     * taken ~7% of the time at random costs more in mispredictions than the stores).
     * Bought products hold -inf, below any thr but -inf itself. */
    int m = 0;
    int32_t *lst = w->lst;
    for (int p = 0; p < w->P; p++) {
        lst[m] = p;
        m += s[p] >= thr;
    }
    return m;
}

/* Computes user u's set into w->set from its score row s[P] (cosines against every product;
 * the bought products' entries are overwritten with -inf). */
static void cg_select_user(cg_worker *w, int u, float *s) {
    int P = w->P;
    int32_t *out = w->set;
    int total = w->cnt[u];
    const st_history *h = w->h;
    int64_t i0 = h->order_item_off[h->user_order_off[u]];
    int64_t i1 = h->order_item_off[w->end[u]];
    if (i0 == i1) { /* cold start */
        assert(total == w->n_top);
        memcpy(out, w->pop, (size_t)total * sizeof *out);
        return;
    }
    int nb = 0;
    for (int64_t i = i0; i < i1; i++) {
        int32_t p = h->items[i];
        if (!w->mark[p]) {
            w->mark[p] = 1;
            w->bought[nb++] = p;
        }
    }
    qsort(w->bought, (size_t)nb, sizeof *w->bought, cg_i32_cmp);
    int need = total - nb, nsel = 0;
    for (int k = 0; k < nb; k++) s[w->bought[k]] = -INFINITY;
    if (need > 0) {
        /* Estimate a threshold a little below the need-th best score from every 16th
         * score, so that one pass collects ~1.15 * need products; if the estimate was too
         * high (rare), collect everything. */
        int avail = P - nb, ns = 0;
        for (int p = 0; p < P; p += 16)
            if (s[p] > -INFINITY) w->tmp[ns++] = cg_key(s[p], p);
        /* expected f sample values above the true threshold; 3 standard deviations more
         * make a miss (and the second pass) rare */
        double f = (double)need / avail * ns;
        int r = (int)(f + 3.0 * sqrt(f) + 4.0);
        float thr = -FLT_MAX;
        if (r < ns) {
            cg_nth(w->tmp, ns, r);
            uint64_t kr = w->tmp[r];
            thr = s[cg_key_index(kr)];
        }
        int m = cg_collect(w, s, thr);
        if (m < need) m = cg_collect(w, s, -FLT_MAX);
        assert(m >= need);
        /* the need-th best of the collected, then keep those ranking at or before it */
        for (int k = 0; k < m; k++) w->tmp[k] = cg_key(s[w->lst[k]], w->lst[k]);
        cg_nth(w->tmp, m, need - 1);
        uint64_t piv = w->tmp[need - 1];
        for (int k = 0; k < m; k++) {
            w->sel[nsel] = w->lst[k];
            nsel += cg_key(s[w->lst[k]], w->lst[k]) >= piv;
        }
        assert(nsel == need);
    }
    int n = cg_merge(out, w->bought, nb, w->sel, nsel);
    assert(n == total);
    (void)n;
    for (int k = 0; k < nb; k++) w->mark[w->bought[k]] = 0;
}

/* Worker: blocks tid, tid + n_threads, ... */
static void *cg_worker_run(void *arg) {
    cg_worker *w = arg;
    const st_history *h = w->h;
    int E = w->E, P = w->P, nu = h->n_users;
    for (int u0 = w->tid * TR_CG_BLOCK; u0 < nu; u0 += w->n_threads * TR_CG_BLOCK) {
        int bu = nu - u0 < TR_CG_BLOCK ? nu - u0 : TR_CG_BLOCK;
        for (int r = 0; r < bu; r++) {
            int u = u0 + r;
            float *pr = w->prof + (size_t)r * E;
            double acc[E];
            memset(acc, 0, sizeof acc);
            int64_t i0 = h->order_item_off[h->user_order_off[u]];
            int64_t i1 = h->order_item_off[w->end[u]];
            for (int64_t i = i0; i < i1; i++) {
                const float *e = w->emb + (size_t)h->items[i] * E;
                for (int k = 0; k < E; k++) acc[k] += e[k];
            }
            double nn = 0;
            for (int k = 0; k < E; k++) nn += acc[k] * acc[k];
            double inv = nn > 0 ? 1.0 / sqrt(nn) : 0.0;
            for (int k = 0; k < E; k++) pr[k] = (float)(acc[k] * inv);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bu, P, E, 1.0f, w->prof, E, w->nrm, E,
                    0.0f, w->scores, P);
        for (int r = 0; r < bu; r++) {
            int u = u0 + r;
            cg_select_user(w, u, w->scores + (size_t)r * P);
            /* encoded at once: the decoded table would be 4 bytes a candidate */
            size_t need = w->len + (size_t)w->cnt[u] * 5;
            if (need > w->cap) {
                w->cap = need > 2 * w->cap ? need : 2 * w->cap;
                w->buf = nb_xrealloc(w->buf, w->cap);
            }
            w->ustart[u] = (int64_t)w->len;
            w->ulen[u] = (int64_t)st_cand_encode_buf(w->set, w->cnt[u], w->buf + w->len);
            w->len += (size_t)w->ulen[u];
        }
    }
    return NULL;
}

void tr_cands_free(tr_cands *c) {
    if (!c) return;
    free(c->off);
    free(c->enc);
    free(c->count);
    memset(c, 0, sizeof *c);
}

const int32_t *tr_cands_user(const tr_cands *c, int u, int32_t *buf, int *n) {
    assert(u >= 0 && u < c->n_users);
    char err[128];
    int rc = st_cand_decode(c->enc + c->off[u], (size_t)(c->off[u + 1] - c->off[u]),
                            c->n_products, buf, c->max_count, n, err, sizeof err);
    /* the bytes are the build's own encoding: a failure is a bug, not bad input */
    assert(rc == NB_OK && *n == c->count[u]);
    (void)rc;
    return buf;
}

/* Popularity (item counts over every user's history) top n_top, ascending index. */
static int32_t *cg_popular(const st_history *h, const int64_t *end, int n_top) {
    int P = h->n_products;
    cg_pair *pp = nb_xmalloc((size_t)P * sizeof *pp);
    int64_t *cnt = nb_xcalloc((size_t)P, sizeof *cnt);
    for (int u = 0; u < h->n_users; u++)
        for (int64_t i = h->order_item_off[h->user_order_off[u]]; i < h->order_item_off[end[u]];
             i++)
            cnt[h->items[i]]++;
    for (int p = 0; p < P; p++) pp[p] = (cg_pair){(float)cnt[p], p};
    qsort(pp, (size_t)P, sizeof *pp, cg_pair_cmp);
    int32_t *top = nb_xmalloc((size_t)n_top * sizeof *top);
    for (int k = 0; k < n_top; k++) top[k] = pp[k].i;
    qsort(top, (size_t)n_top, sizeof *top, cg_i32_cmp);
    free(cnt);
    free(pp);
    return top;
}

int tr_cands_build(tr_cands *c, const st_history *h, const float *emb, int n_products, int E,
                   const int64_t *hist_end, int n_top, int n_threads, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (n_products != h->n_products)
        return nb_err(err, errlen, NB_EINVAL, "candidates: embedding has %d products, history %d",
                      n_products, h->n_products);
    if (n_products < 1 || E < 1 || E > 4096)
        return nb_err(err, errlen, NB_EINVAL, "candidates: bad sizes P=%d E=%d", n_products, E);
    if (n_top < 1) return nb_err(err, errlen, NB_EINVAL, "candidates: n_top %d < 1", n_top);
    if (n_threads < 1 || n_threads > 64)
        return nb_err(err, errlen, NB_EINVAL, "candidates: n_threads %d not in 1..64", n_threads);
    if (n_top > n_products) n_top = n_products;
    int P = n_products, nu = h->n_users, rc = NB_OK;
    int64_t *end = nb_xmalloc((size_t)(nu > 0 ? nu : 1) * sizeof *end);
    float *nrm = nb_xmalloc((size_t)P * E * sizeof *nrm);
    uint8_t *mark = nb_xcalloc((size_t)P, 1);
    int32_t *pop = NULL;
    int64_t *ulen = NULL, *ustart = NULL;
    cg_worker *ws = NULL;
    pthread_t *th = NULL;

    for (int u = 0; u < nu; u++) {
        end[u] = hist_end ? hist_end[u] : tr_cands_default_end(h, u);
        if (end[u] < h->user_order_off[u] || end[u] > h->user_order_off[u + 1]) {
            rc = nb_err(err, errlen, NB_EINVAL,
                        "candidates: hist_end %lld of user %d outside its orders [%lld, %lld]",
                        (long long)end[u], (int)h->user_ids[u], (long long)h->user_order_off[u],
                        (long long)h->user_order_off[u + 1]);
            goto fail;
        }
    }
    for (int p = 0; p < P; p++) {
        double nn = 0;
        for (int k = 0; k < E; k++) {
            float v = emb[(size_t)p * E + k];
            if (!isfinite(v)) {
                rc = nb_err(err, errlen, NB_EINVAL,
                            "candidates: embedding of product index %d is not finite", p);
                goto fail;
            }
            nn += (double)v * v;
        }
        double inv = nn > 0 ? 1.0 / sqrt(nn) : 0.0;
        for (int k = 0; k < E; k++) nrm[(size_t)p * E + k] = (float)(emb[(size_t)p * E + k] * inv);
    }
    /* sizes: max(n_top, distinct bought) per user */
    c->n_users = nu;
    c->n_products = P;
    c->off = nb_xmalloc((size_t)(nu + 1) * sizeof *c->off);
    c->count = nb_xmalloc((size_t)(nu > 0 ? nu : 1) * sizeof *c->count);
    ulen = nb_xmalloc((size_t)(nu > 0 ? nu : 1) * sizeof *ulen);
    ustart = nb_xmalloc((size_t)(nu > 0 ? nu : 1) * sizeof *ustart);
    int32_t *tmp = nb_xmalloc((size_t)P * sizeof *tmp);
    for (int u = 0; u < nu; u++) {
        int nb = 0;
        for (int64_t i = h->order_item_off[h->user_order_off[u]]; i < h->order_item_off[end[u]];
             i++) {
            int32_t p = h->items[i];
            if (!mark[p]) mark[p] = 1, tmp[nb++] = p;
        }
        for (int k = 0; k < nb; k++) mark[tmp[k]] = 0;
        int cnt = nb > n_top ? nb : n_top;
        c->count[u] = cnt;
        c->n_total += cnt;
        if (cnt > c->max_count) c->max_count = cnt;
    }
    free(tmp);
    pop = cg_popular(h, end, n_top);
    int n_blocks = (nu + TR_CG_BLOCK - 1) / TR_CG_BLOCK;

    int nt = n_threads;
    if (n_blocks < nt) nt = n_blocks;
    if (nt < 1) nt = 1;
    ws = nb_xcalloc((size_t)nt, sizeof *ws);
    th = nb_xcalloc((size_t)nt, sizeof *th);
    for (int t = 0; t < nt; t++) {
        cg_worker *w = &ws[t];
        *w = (cg_worker){.h = h,
                         .emb = emb,
                         .nrm = nrm,
                         .end = end,
                         .pop = pop,
                         .P = P,
                         .E = E,
                         .n_top = n_top,
                         .n_threads = nt,
                         .tid = t,
                         .cnt = c->count,
                         .ulen = ulen,
                         .ustart = ustart};
        w->set = nb_xmalloc(((size_t)c->max_count + 1) * sizeof *w->set);
        w->prof = nb_xmalloc((size_t)TR_CG_BLOCK * E * sizeof *w->prof);
        w->scores = nb_xmalloc((size_t)TR_CG_BLOCK * P * sizeof *w->scores);
        w->mark = nb_xcalloc((size_t)P, 1);
        w->bought = nb_xmalloc((size_t)P * sizeof *w->bought);
        w->lst = nb_xmalloc((size_t)P * sizeof *w->lst);
        w->tmp = nb_xmalloc((size_t)P * sizeof *w->tmp);
        w->sel = nb_xmalloc((size_t)P * sizeof *w->sel);
    }
    /* One OpenBLAS thread per sgemm in every case: our workers are the parallelism, and a
     * fixed kernel path keeps the scores (hence the sets) identical for any n_threads. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (nt == 1) {
        cg_worker_run(&ws[0]);
    } else {
        int started = 0;
        for (int t = 0; t < nt; t++) {
            if (pthread_create(&th[t], NULL, cg_worker_run, &ws[t]) != 0) break;
            started++;
        }
        /* a thread that could not start: run its share here */
        for (int t = started; t < nt; t++) cg_worker_run(&ws[t]);
        for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    }
    openblas_set_num_threads(blas_threads);
    /* the workers' buffers joined in user order (user u is in the buffer of the worker that
     * ran its block) */
    c->off[0] = 0;
    for (int u = 0; u < nu; u++) c->off[u + 1] = c->off[u] + ulen[u];
    c->enc = nb_xmalloc((size_t)c->off[nu] + 1);
    for (int u = 0; u < nu; u++)
        memcpy(c->enc + c->off[u], ws[(u / TR_CG_BLOCK) % nt].buf + ustart[u], (size_t)ulen[u]);
    for (int t = 0; t < nt; t++) {
        cg_worker *w = &ws[t];
        free(w->buf);
        free(w->set);
        free(w->prof);
        free(w->scores);
        free(w->mark);
        free(w->bought);
        free(w->lst);
        free(w->tmp);
        free(w->sel);
    }
    goto done;
fail:
    tr_cands_free(c);
done:
    free(ws);
    free(th);
    free(ulen);
    free(ustart);
    free(pop);
    free(mark);
    free(nrm);
    free(end);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------- */

/* See candgen.h: checks that c was built from h, then storage writes the rows. */
int tr_cands_write(sqlite3 *db, int64_t model_id, const tr_cands *c, const st_history *h, char *err,
                   size_t errlen) {
    if (c->n_users != h->n_users || c->n_products != h->n_products)
        return nb_err(err, errlen, NB_EMISMATCH,
                      "candidates built for %d users x %d products, history has %d x %d",
                      c->n_users, c->n_products, h->n_users, h->n_products);
    return st_cands_write(db, model_id, c->n_users, h->user_ids, c->count, c->off, c->enc, err,
                          errlen);
}

/* ---- recall ------------------------------------------------------------------------------ */

/* Distinct products of items[n] into *n_distinct; returns how many are in cand[n_cand]. */
static int cg_hits(const int32_t *cand, int n_cand, const int32_t *items, int n_items,
                   int *n_distinct) {
    int hits = 0, nd = 0;
    for (int i = 0; i < n_items; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = items[j] == items[i];
        if (dup) continue;
        nd++;
        int lo = 0, hi = n_cand;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (cand[mid] < items[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        hits += lo < n_cand && cand[lo] == items[i];
    }
    if (n_distinct) *n_distinct = nd;
    return hits;
}

int tr_cands_recall(const tr_cands *c, const st_history *h, const int64_t *target,
                    tr_cand_recall *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (c->n_users != h->n_users || c->n_products != h->n_products)
        return nb_err(err, errlen, NB_EMISMATCH,
                      "candidates built for %d users x %d products, history has %d x %d",
                      c->n_users, c->n_products, h->n_users, h->n_products);
    double macro = 0, size = 0;
    int rc = NB_OK;
    int32_t *buf = nb_xmalloc(((size_t)c->max_count + 1) * sizeof *buf);
    for (int u = 0; u < h->n_users && rc == NB_OK; u++) {
        int64_t t = -1;
        if (target) {
            t = target[u];
        } else {
            for (int64_t o = h->user_order_off[u]; o < h->user_order_off[u + 1]; o++)
                if (h->eval_set[o] == ST_TRAIN) {
                    t = o;
                    break;
                }
        }
        if (t < 0) continue;
        if (t < h->user_order_off[u] || t >= h->user_order_off[u + 1]) {
            rc = nb_err(err, errlen, NB_EINVAL,
                        "recall: target order %lld of user %d outside its orders", (long long)t,
                        (int)h->user_ids[u]);
            break;
        }
        int64_t i0 = h->order_item_off[t], i1 = h->order_item_off[t + 1];
        if (i0 == i1) continue;
        int n, nd;
        const int32_t *set = tr_cands_user(c, u, buf, &n);
        int hits = cg_hits(set, n, h->items + i0, (int)(i1 - i0), &nd);
        r->n_users++;
        r->n_targets += nd;
        r->n_hits += hits;
        macro += (double)hits / nd;
        size += n;
    }
    free(buf);
    if (rc != NB_OK) return rc;
    if (r->n_users) {
        r->micro = (double)r->n_hits / (double)r->n_targets;
        r->macro = macro / r->n_users;
        r->mean_size = size / r->n_users;
    }
    return NB_OK;
}
