/* rkfeat.c -- ranking candidates and features (see rkfeat.h for every definition). */
#include "rkfeat.h"
#include "nb_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const tr_rk_feat_names[TR_RK_NF] = {
    "share",    "dshare90",  "dshare70",  "dshare50",    "last1",
    "last3",    "last5",     "count",     "since",       "days_since",
    "gap",      "due",       "gap_days",  "due_days",    "share_since_first",
    "u_orders", "u_basket",  "u_reorder", "u_distinct",  "u_days",
    "p_pop",    "p_reorder", "p_rebuy",   "aisle_share", "dept_share",
    "tifu_own", "tifu_nbr",  "src_own",   "src_nbr",     "src_cos",
    "model",    "tifu",      "tifu_rank"};

void tr_rk_tifu_defaults(tr_rk_tifu *t) {
    /* must equal baselines.c's tr_tifu_defaults (tests/test_ranker.c checks it) */
    *t = (tr_rk_tifu){.m = 3, .k = 300, .r_b = 0.9, .r_g = 0.7, .alpha = 0.9};
}

/* Per-product accumulators of one user, indexed by slot (order of first purchase). */
typedef struct {
    int32_t first, last, cnt, l3, l5;
    double d90, d70, d50, tifu, day_first, day_last;
} acc_t;

typedef struct {
    int32_t *slot;      /* [P] slot of a product during a call, else -1 */
    acc_t *acc;         /* [cap_acc] */
    int32_t *slot_prod; /* [cap_acc] product of each slot */
    int cap_acc;
    int32_t *aisle_of, *dept_of; /* [P] dense aisle / department index */
    int n_aisles, n_depts;
    int32_t *aisle_cnt, *aisle_seen, *dept_cnt, *dept_seen; /* [n_aisles] / [n_depts] */
    float *nbrv;    /* [P] neighbour part scattered, 0 elsewhere */
    uint8_t *taken; /* [P] already a candidate */
    int64_t *ord;   /* [cap_ord] orders with items */
    double *dpos;   /* [cap_ord] cumulative day of each such order */
    int cap_ord;
    struct pick {
        float v;
        int32_t p;
    } * pick; /* [P] selection scratch */
} priv_t;

void tr_rk_pstats_free(tr_rk_pstats *s) {
    free(s->pop);
    free(s->reorder);
    free(s->rebuy);
    memset(s, 0, sizeof *s);
}

int tr_rk_counts_init(tr_rk_counts *c, int n_products, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (n_products <= 0)
        return nb_err(err, errlen, NB_EINVAL, "ranker counts: %d products", n_products);
    c->n_products = n_products;
    c->orders_with = nb_xcalloc((size_t)n_products, sizeof(int64_t));
    c->items = nb_xcalloc((size_t)n_products, sizeof(int64_t));
    c->reorders = nb_xcalloc((size_t)n_products, sizeof(int64_t));
    c->buyers = nb_xcalloc((size_t)n_products, sizeof(int64_t));
    c->rebuyers = nb_xcalloc((size_t)n_products, sizeof(int64_t));
    return NB_OK;
}

void tr_rk_counts_free(tr_rk_counts *c) {
    free(c->orders_with);
    free(c->items);
    free(c->reorders);
    free(c->buyers);
    free(c->rebuyers);
    memset(c, 0, sizeof *c);
}

void tr_rk_counts_add_user(tr_rk_counts *c, const st_history *h, int u, int64_t end, uint8_t *mark,
                           int32_t *cnt) {
    int64_t o0 = h->user_order_off[u];
    int32_t *touched = NULL;
    int nt = 0, capt = 0;
    for (int64_t o = o0; o < end; o++) {
        int64_t a = h->order_item_off[o], b = h->order_item_off[o + 1];
        if (a == b) continue;
        c->n_orders++;
        for (int64_t e = a; e < b; e++) {
            int32_t p = h->items[e];
            if (mark[p]) continue; /* a product twice in one order counts once */
            mark[p] = 1;
            c->orders_with[p]++;
            c->items[p]++;
            if (cnt[p] > 0) c->reorders[p]++;
            if (cnt[p] == 0) {
                if (nt == capt) {
                    capt = capt ? 2 * capt : 64;
                    touched = nb_xrealloc(touched, (size_t)capt * sizeof *touched);
                }
                touched[nt++] = p;
            }
            cnt[p]++;
        }
        for (int64_t e = a; e < b; e++) mark[h->items[e]] = 0;
    }
    for (int i = 0; i < nt; i++) {
        int32_t p = touched[i];
        c->buyers[p]++;
        if (cnt[p] >= 2) c->rebuyers[p]++;
        cnt[p] = 0;
    }
    free(touched);
}

int tr_rk_pstats_from(tr_rk_pstats *s, const tr_rk_counts *all, const tr_rk_counts *minus,
                      char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (minus && minus->n_products != all->n_products)
        return nb_err(err, errlen, NB_EMISMATCH, "ranker counts: %d vs %d products",
                      all->n_products, minus->n_products);
    int P = all->n_products;
    s->n_products = P;
    s->pop = nb_xmalloc((size_t)P * sizeof(float));
    s->reorder = nb_xmalloc((size_t)P * sizeof(float));
    s->rebuy = nb_xmalloc((size_t)P * sizeof(float));
    int64_t no = all->n_orders - (minus ? minus->n_orders : 0);
    for (int p = 0; p < P; p++) {
        int64_t ow = all->orders_with[p] - (minus ? minus->orders_with[p] : 0);
        int64_t it = all->items[p] - (minus ? minus->items[p] : 0);
        int64_t ro = all->reorders[p] - (minus ? minus->reorders[p] : 0);
        int64_t bu = all->buyers[p] - (minus ? minus->buyers[p] : 0);
        int64_t rb = all->rebuyers[p] - (minus ? minus->rebuyers[p] : 0);
        s->pop[p] = no > 0 ? (float)((double)ow / (double)no) : 0.0f;
        s->reorder[p] = it > 0 ? (float)((double)ro / (double)it) : 0.0f;
        s->rebuy[p] = bu > 0 ? (float)((double)rb / (double)bu) : 0.0f;
    }
    return NB_OK;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Dense indices of ids[P] (sorted distinct values -> 0..n-1) into out; returns n. */
static int densify(const int32_t *ids, int P, int32_t *out) {
    int32_t *s = nb_xmalloc((size_t)P * sizeof *s);
    memcpy(s, ids, (size_t)P * sizeof *s);
    qsort(s, (size_t)P, sizeof *s, cmp_i32);
    int n = 0;
    for (int i = 0; i < P; i++)
        if (i == 0 || s[i] != s[n - 1]) s[n++] = s[i];
    for (int p = 0; p < P; p++) {
        int lo = 0, hi = n;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (s[mid] < ids[p])
                lo = mid + 1;
            else
                hi = mid;
        }
        out[p] = lo;
    }
    free(s);
    return n;
}

int tr_rk_user_init(tr_rk_user *r, const st_history *h, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    int P = h->n_products;
    if (P <= 0) return nb_err(err, errlen, NB_EINVAL, "ranker features: the catalogue is empty");
    priv_t *v = nb_xcalloc(1, sizeof *v);
    r->priv = v;
    r->P = P;
    v->slot = nb_xmalloc((size_t)P * sizeof(int32_t));
    for (int p = 0; p < P; p++) v->slot[p] = -1;
    v->aisle_of = nb_xmalloc((size_t)P * sizeof(int32_t));
    v->dept_of = nb_xmalloc((size_t)P * sizeof(int32_t));
    v->n_aisles = densify(h->product_aisle, P, v->aisle_of);
    v->n_depts = densify(h->product_dept, P, v->dept_of);
    v->aisle_cnt = nb_xcalloc((size_t)v->n_aisles, sizeof(int32_t));
    v->aisle_seen = nb_xmalloc((size_t)v->n_aisles * sizeof(int32_t));
    v->dept_cnt = nb_xcalloc((size_t)v->n_depts, sizeof(int32_t));
    v->dept_seen = nb_xmalloc((size_t)v->n_depts * sizeof(int32_t));
    for (int a = 0; a < v->n_aisles; a++) v->aisle_seen[a] = -1;
    for (int a = 0; a < v->n_depts; a++) v->dept_seen[a] = -1;
    v->nbrv = nb_xcalloc((size_t)P, sizeof(float));
    v->taken = nb_xcalloc((size_t)P, 1);
    v->pick = nb_xmalloc((size_t)P * sizeof *v->pick);
    tr_rk_tifu_defaults(&r->tifu);
    return NB_OK;
}

void tr_rk_user_free(tr_rk_user *r) {
    priv_t *v = r->priv;
    if (v) {
        free(v->slot);
        free(v->acc);
        free(v->slot_prod);
        free(v->aisle_of);
        free(v->dept_of);
        free(v->aisle_cnt);
        free(v->aisle_seen);
        free(v->dept_cnt);
        free(v->dept_seen);
        free(v->nbrv);
        free(v->taken);
        free(v->ord);
        free(v->dpos);
        free(v->pick);
        free(v);
    }
    free(r->cand);
    free(r->src);
    free(r->x);
    memset(r, 0, sizeof *r);
}

/* Higher value first, then lower product index: a total order, so selection is
 * deterministic. */
static int cmp_pick(const void *a, const void *b) {
    const struct pick *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->p > y->p) - (x->p < y->p);
}

/* Moves the min(n, k) best entries of pick[0..n) (cmp_pick order) to its front, in that
 * order, and returns min(n, k). The same entries and order as qsort with cmp_pick (a total
 * order) would put there, without sorting all n: the cosine set has thousands of entries
 * and only the best k are used. */
static int top_picks(struct pick *pick, int n, int k) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        struct pick x = pick[i];
        if (m == k && (k == 0 || cmp_pick(&x, &pick[k - 1]) >= 0)) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && cmp_pick(&x, &pick[j - 1]) < 0) pick[j] = pick[j - 1], j--;
        pick[j] = x;
    }
    return m;
}

/* qsort order of picks: higher v first, then lower p (a total order: deterministic). */
static int cmp_pick_desc(const void *a, const void *b) {
    const struct pick *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->p > y->p) - (x->p < y->p);
}

/* Appends candidate p with source bits src; grows the arrays. */
static void push(tr_rk_user *r, int32_t p, uint8_t src) {
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->cand = nb_xrealloc(r->cand, (size_t)r->cap * sizeof *r->cand);
        r->src = nb_xrealloc(r->src, (size_t)r->cap);
        r->x = nb_xrealloc(r->x, (size_t)r->cap * TR_RK_NF * sizeof *r->x);
    }
    r->cand[r->n] = p;
    r->src[r->n] = src;
    r->n++;
}

int tr_rk_user_build(tr_rk_user *r, const st_history *h, int u, int64_t hist_end,
                     const tr_rk_pstats *ps, const int32_t *nbr_idx, const float *nbr_val,
                     int n_nbr, const int32_t *cos, int n_cos, const float *prob, int with_unseen,
                     char *err, size_t errlen) {
    priv_t *v = r->priv;
    int P = r->P;
    r->n = r->n_own = 0;
    if (u < 0 || u >= h->n_users)
        return nb_err(err, errlen, NB_EINVAL, "ranker features: user index %d out of range", u);
    int64_t o0 = h->user_order_off[u], o1 = h->user_order_off[u + 1];
    if (hist_end < o0 || hist_end > o1)
        return nb_err(err, errlen, NB_EINVAL,
                      "ranker features: history end %lld outside user %d's orders",
                      (long long)hist_end, h->user_ids[u]);
    if (h->n_products != P || ps->n_products != P)
        return nb_err(err, errlen, NB_EINVAL,
                      "ranker features: catalogue sizes differ (history %d, stats %d, scratch %d)",
                      h->n_products, ps->n_products, P);
    for (int i = 0; i < n_nbr; i++)
        if (nbr_idx[i] < 0 || nbr_idx[i] >= P)
            return nb_err(err, errlen, NB_EINVAL,
                          "ranker features: neighbour product %d out of range", nbr_idx[i]);
    for (int i = 0; i < n_cos; i++)
        if (cos[i] < 0 || cos[i] >= P)
            return nb_err(err, errlen, NB_EINVAL,
                          "ranker features: cosine candidate %d out of range", cos[i]);
    const int TIFU_M = r->tifu.m;
    const double TIFU_RB = r->tifu.r_b, TIFU_RG = r->tifu.r_g;
    if (TIFU_M < 1 || !(TIFU_RB > 0 && TIFU_RB <= 1) || !(TIFU_RG > 0 && TIFU_RG <= 1))
        return nb_err(err, errlen, NB_EINVAL,
                      "ranker features: TIFU-KNN parameters m %d r_b %g r_g %g out of range",
                      TIFU_M, TIFU_RB, TIFU_RG);
    /* the orders with items, and each one's day position (cumulative days_since_prior) */
    int64_t no = hist_end - o0;
    if (no > v->cap_ord) {
        v->cap_ord = (int)no;
        v->ord = nb_xrealloc(v->ord, (size_t)no * sizeof *v->ord);
        v->dpos = nb_xrealloc(v->dpos, (size_t)no * sizeof *v->dpos);
    }
    int n = 0, days_ok = 1;
    double day = 0;
    for (int64_t o = o0; o < hist_end; o++) {
        if (o > o0) {
            if (h->days_since[o] < 0)
                days_ok = 0;
            else
                day += h->days_since[o];
        }
        if (h->order_item_off[o + 1] > h->order_item_off[o]) v->ord[n] = o, v->dpos[n] = day, n++;
    }
    if (n == 0) return NB_OK;
    double day_end = v->dpos[n - 1];
    /* one pass over the history: per-product accumulators (a product counts once per order) */
    int ns = 0;
    int64_t n_items = 0, n_reorders = 0;
    int G = (n + TIFU_M - 1) / TIFU_M;
    for (int i = 0; i < n; i++) {
        int64_t o = v->ord[i];
        int e = n - 1 - i, gj = e / TIFU_M;
        int gsize = gj < G - 1 ? TIFU_M : n - TIFU_M * (G - 1);
        double wt = pow(TIFU_RB, e % TIFU_M) / gsize * pow(TIFU_RG, gj) / G;
        double w90 = pow(0.9, e), w70 = pow(0.7, e), w50 = pow(0.5, e);
        for (int64_t k = h->order_item_off[o]; k < h->order_item_off[o + 1]; k++) {
            int32_t p = h->items[k];
            int s = v->slot[p];
            if (s < 0) {
                if (ns == v->cap_acc) {
                    v->cap_acc = v->cap_acc ? 2 * v->cap_acc : 256;
                    v->acc = nb_xrealloc(v->acc, (size_t)v->cap_acc * sizeof *v->acc);
                    v->slot_prod = nb_xrealloc(v->slot_prod, (size_t)v->cap_acc * sizeof(int32_t));
                }
                s = v->slot[p] = ns++;
                v->slot_prod[s] = p;
                memset(&v->acc[s], 0, sizeof v->acc[s]);
                v->acc[s].first = i;
                v->acc[s].last = -1;
                v->acc[s].day_first = v->dpos[i];
            }
            acc_t *a = &v->acc[s];
            if (a->last == i) continue; /* repeated within the order */
            n_items++;
            if (a->cnt > 0) n_reorders++;
            a->cnt++;
            a->last = i;
            a->day_last = v->dpos[i];
            a->d90 += w90, a->d70 += w70, a->d50 += w50;
            a->tifu += wt;
            if (e < 3) a->l3++;
            if (e < 5) a->l5++;
            int ai = v->aisle_of[p], di = v->dept_of[p];
            if (v->aisle_seen[ai] != i) v->aisle_seen[ai] = i, v->aisle_cnt[ai]++;
            if (v->dept_seen[di] != i) v->dept_seen[di] = i, v->dept_cnt[di]++;
        }
    }
    double s90 = 0, s70 = 0, s50 = 0;
    for (int e = 0; e < n; e++) s90 += pow(0.9, e), s70 += pow(0.7, e), s50 += pow(0.5, e);
    /* candidates: own (ascending index), then neighbours, then the model's cosine picks */
    {
        int32_t *tmp = nb_xmalloc((size_t)ns * sizeof *tmp);
        for (int s = 0; s < ns; s++) tmp[s] = v->slot_prod[s];
        qsort(tmp, (size_t)ns, sizeof *tmp, cmp_i32);
        for (int s = 0; s < ns; s++) push(r, tmp[s], TR_RK_SRC_OWN), v->taken[tmp[s]] = 1;
        free(tmp);
    }
    r->n_own = ns;
    for (int i = 0; i < n_nbr; i++) v->nbrv[nbr_idx[i]] = nbr_val[i];
    if (with_unseen) {
        int np = 0;
        for (int i = 0; i < n_nbr; i++)
            if (nbr_val[i] > 0 && !v->taken[nbr_idx[i]])
                v->pick[np++] = (struct pick){nbr_val[i], nbr_idx[i]};
        np = top_picks(v->pick, np, TR_RK_NBR_TOP);
        for (int i = 0; i < np; i++)
            push(r, v->pick[i].p, TR_RK_SRC_NBR), v->taken[v->pick[i].p] = 1;
        if (prob) {
            np = 0;
            for (int i = 0; i < n_cos; i++)
                if (!v->taken[cos[i]]) v->pick[np++] = (struct pick){prob[cos[i]], cos[i]};
            np = top_picks(v->pick, np, TR_RK_COS_TOP);
            for (int i = 0; i < np; i++)
                push(r, v->pick[i].p, TR_RK_SRC_COS), v->taken[v->pick[i].p] = 1;
        }
    }
    /* user-level values */
    double u_basket = (double)n_items / n;
    double u_reorder = n_items ? (double)n_reorders / (double)n_items : 0;
    double u_days = days_ok && n > 1 ? day_end / (n - 1) : NAN;
    const float nanf_ = NAN;
    for (int c = 0; c < r->n; c++) {
        int32_t p = r->cand[c];
        float *x = r->x + (size_t)c * TR_RK_NF;
        int s = v->slot[p];
        if (s >= 0) {
            const acc_t *a = &v->acc[s];
            int since = n - 1 - a->last;
            x[TR_RK_SHARE] = (float)((double)a->cnt / n);
            x[TR_RK_DSHARE90] = (float)(a->d90 / s90);
            x[TR_RK_DSHARE70] = (float)(a->d70 / s70);
            x[TR_RK_DSHARE50] = (float)(a->d50 / s50);
            x[TR_RK_LAST1] = a->last == n - 1 ? 1.0f : 0.0f;
            x[TR_RK_LAST3] = (float)a->l3;
            x[TR_RK_LAST5] = (float)a->l5;
            x[TR_RK_COUNT] = (float)a->cnt;
            x[TR_RK_SINCE] = (float)since;
            x[TR_RK_DAYS_SINCE] = days_ok ? (float)(day_end - a->day_last) : nanf_;
            double gap = a->cnt >= 2 ? (double)(a->last - a->first) / (a->cnt - 1) : NAN;
            x[TR_RK_GAP] = (float)gap;
            x[TR_RK_DUE] = gap > 0 ? (float)(since / gap) : nanf_;
            double gd = days_ok && a->cnt >= 2 ? (a->day_last - a->day_first) / (a->cnt - 1) : NAN;
            x[TR_RK_GAP_DAYS] = (float)gd;
            x[TR_RK_DUE_DAYS] = gd > 0 ? (float)((day_end - a->day_last) / gd) : nanf_;
            x[TR_RK_SHARE_SINCE_FIRST] = (float)((double)a->cnt / (n - a->first));
            x[TR_RK_TIFU_OWN] = (float)a->tifu;
        } else {
            for (int f = TR_RK_SHARE; f <= TR_RK_COUNT; f++) x[f] = 0.0f;
            for (int f = TR_RK_SINCE; f <= TR_RK_SHARE_SINCE_FIRST; f++) x[f] = nanf_;
            x[TR_RK_TIFU_OWN] = 0.0f;
        }
        x[TR_RK_U_ORDERS] = (float)n;
        x[TR_RK_U_BASKET] = (float)u_basket;
        x[TR_RK_U_REORDER] = (float)u_reorder;
        x[TR_RK_U_DISTINCT] = (float)ns;
        x[TR_RK_U_DAYS] = (float)u_days;
        x[TR_RK_P_POP] = ps->pop[p];
        x[TR_RK_P_REORDER] = ps->reorder[p];
        x[TR_RK_P_REBUY] = ps->rebuy[p];
        x[TR_RK_AISLE_SHARE] = (float)((double)v->aisle_cnt[v->aisle_of[p]] / n);
        x[TR_RK_DEPT_SHARE] = (float)((double)v->dept_cnt[v->dept_of[p]] / n);
        x[TR_RK_TIFU_NBR] = v->nbrv[p];
        x[TR_RK_SRC_OWN_F] = r->src[c] & TR_RK_SRC_OWN ? 1.0f : 0.0f;
        x[TR_RK_SRC_NBR_F] = r->src[c] & TR_RK_SRC_NBR ? 1.0f : 0.0f;
        x[TR_RK_SRC_COS_F] = r->src[c] & TR_RK_SRC_COS ? 1.0f : 0.0f;
        x[TR_RK_MODEL] = prob ? prob[p] : nanf_;
    }
    /* TIFU-KNN's own score (its two parts weighed by alpha) and its rank among the user's
     * candidates: what the strongest baseline says, as one value rather than a sum the trees
     * would have to rebuild from axis-aligned splits */
    double al = r->tifu.alpha;
    for (int c = 0; c < r->n; c++) {
        float *x = r->x + (size_t)c * TR_RK_NF;
        x[TR_RK_TIFU] = (float)(al * x[TR_RK_TIFU_OWN] + (1.0 - al) * x[TR_RK_TIFU_NBR]);
        v->pick[c] = (struct pick){x[TR_RK_TIFU], c};
    }
    qsort(v->pick, (size_t)r->n, sizeof *v->pick, cmp_pick_desc);
    for (int i = 0; i < r->n; i++) r->x[(size_t)v->pick[i].p * TR_RK_NF + TR_RK_TIFU_RANK] = (float)i;
    /* reset the scratch for the next call: O(touched) */
    for (int c = 0; c < r->n; c++) v->taken[r->cand[c]] = 0;
    for (int i = 0; i < n_nbr; i++) v->nbrv[nbr_idx[i]] = 0;
    for (int s = 0; s < ns; s++) {
        int32_t p = v->slot_prod[s];
        v->slot[p] = -1;
        v->aisle_cnt[v->aisle_of[p]] = 0, v->aisle_seen[v->aisle_of[p]] = -1;
        v->dept_cnt[v->dept_of[p]] = 0, v->dept_seen[v->dept_of[p]] = -1;
    }
    return NB_OK;
}

int tr_rk_model_products(tr_rk_user *r, const st_history *h, int u, int64_t hist_end,
                         const int32_t *nbr_idx, int n_nbr, const int32_t *cos, int n_cos,
                         int32_t *out) {
    priv_t *v = r->priv;
    int n = 0;
    int64_t o0 = h->user_order_off[u];
    for (int64_t e = h->order_item_off[o0]; e < h->order_item_off[hist_end]; e++)
        if (!v->taken[h->items[e]]) v->taken[h->items[e]] = 1, out[n++] = h->items[e];
    for (int i = 0; i < n_nbr; i++)
        if (!v->taken[nbr_idx[i]]) v->taken[nbr_idx[i]] = 1, out[n++] = nbr_idx[i];
    for (int i = 0; i < n_cos; i++)
        if (!v->taken[cos[i]]) v->taken[cos[i]] = 1, out[n++] = cos[i];
    for (int i = 0; i < n; i++) v->taken[out[i]] = 0;
    return n;
}
