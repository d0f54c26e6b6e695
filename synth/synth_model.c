/* synth_model.c -- the latent structure behind the synthetic orders.
 *
 * Popularity: a random rank per product (biased toward popular aisles), weight
 * 1/(rank + ZIPF_OFFSET)^ZIPF_S: a Zipf-like head (a "bananas" product near 1.5% of all
 * rows) and a long tail.
 * Co-purchase: products are grouped into clusters of ~CLUSTER_SIZE products spanning one
 * primary aisle and up to two secondary aisles (pasta, sauce and parmesan; tortillas, salsa
 * and beans). Users favour a few clusters, and a basket's new items are often drawn from the
 * cluster of an item already in it, so products of one cluster are bought together.
 */
#include "synth.h"

#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ZIPF_S 1.0
#define ZIPF_OFFSET 4.0
#define CLUSTER_SIZE 40
#define PRIMARY_SHARE 0.75 /* share of an aisle's products in clusters it is primary of */

int32_t sy_table_draw(const sy_table *t, nb_rng *r) {
    assert(t->n > 0 && t->cum[t->n - 1] > 0);
    double x = nb_rng_uniform(r) * t->cum[t->n - 1];
    int lo = 0, hi = t->n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return t->item ? t->item[lo] : lo;
}

/* Fills t with n items (item may be NULL: indices) weighted by w[item or index]. */
static void table_init(sy_table *t, int n, const int32_t *item, const double *w) {
    t->n = n;
    t->item = item;
    t->cum = nb_xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    double s = 0;
    for (int i = 0; i < n; i++) {
        s += w[item ? item[i] : i];
        t->cum[i] = s;
    }
}

typedef struct {
    double key;
    int32_t p;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->p - y->p; /* ties by index: qsort order never matters */
}

void sy_model_build(sy_model *m, const sy_catalog *cat, uint64_t seed) {
    int np = cat->n_products, na = cat->n_aisles, nd = cat->n_depts;
    nb_rng r;
    nb_rng_seed(&r, nb_hash64(seed ^ 0x4D0DE1ull));
    memset(m, 0, sizeof *m);
    m->cat = cat;

    /* popularity: rank by an exponential key scaled by a lognormal aisle weight */
    double *aw = nb_xmalloc(sizeof(double) * (size_t)na);
    for (int a = 0; a < na; a++) aw[a] = exp(1.0 * nb_rng_normal(&r));
    keyed *k = nb_xmalloc(sizeof(keyed) * (size_t)np);
    for (int p = 0; p < np; p++) {
        k[p].key = -log(1.0 - nb_rng_uniform(&r)) / aw[cat->aisle[p]];
        k[p].p = p;
    }
    qsort(k, (size_t)np, sizeof *k, cmp_keyed);
    m->pop = nb_xmalloc(sizeof(double) * (size_t)np);
    for (int i = 0; i < np; i++) m->pop[k[i].p] = pow(i + ZIPF_OFFSET, -ZIPF_S);
    free(k);
    free(aw);
    table_init(&m->global, np, NULL, m->pop);

    /* products per aisle, the department of each aisle (that of its first product) */
    int *acount = nb_xcalloc((size_t)na, sizeof(int));
    int *adept = nb_xmalloc(sizeof(int) * (size_t)na);
    for (int a = 0; a < na; a++) adept[a] = -1;
    for (int p = 0; p < np; p++) {
        acount[cat->aisle[p]]++;
        if (adept[cat->aisle[p]] < 0) adept[cat->aisle[p]] = cat->dept[p];
    }
    /* clusters: ceil(count / CLUSTER_SIZE) per non-empty aisle, each with 0-2 secondary
     * aisles (half from the same department) */
    int nc = 0;
    for (int a = 0; a < na; a++) nc += (acount[a] + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
    m->n_clusters = nc;
    int32_t *cl_aisles = nb_xmalloc(sizeof(int32_t) * 3 * (size_t)nc); /* -1: none */
    int32_t *cl_primary = nb_xmalloc(sizeof(int32_t) * (size_t)nc);
    int *a_first = nb_xmalloc(sizeof(int) * (size_t)(na + 1));
    for (int a = 0, c = 0; a < na; a++) {
        a_first[a] = c;
        int kc = (acount[a] + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
        for (int j = 0; j < kc; j++, c++) {
            cl_primary[c] = a;
            cl_aisles[3 * c] = a;
            for (int s = 1; s < 3; s++) {
                int b = -1;
                if (nb_rng_uniform(&r) < 0.6) {
                    for (int t = 0; t < 20; t++) { /* a non-empty aisle, half same dept */
                        int cand = (int)nb_rng_below(&r, (uint64_t)na);
                        if (acount[cand] == 0 || cand == a) continue;
                        if (nb_rng_uniform(&r) < 0.5 && adept[cand] != adept[a] && t < 19) continue;
                        b = cand;
                        break;
                    }
                }
                cl_aisles[3 * c + s] = b;
            }
        }
    }
    a_first[na] = nc;
    /* secondary memberships per aisle: which clusters list aisle a as secondary */
    int *sec_n = nb_xcalloc((size_t)na + 1, sizeof(int));
    for (int c = 0; c < nc; c++)
        for (int s = 1; s < 3; s++)
            if (cl_aisles[3 * c + s] >= 0) sec_n[cl_aisles[3 * c + s] + 1]++;
    for (int a = 0; a < na; a++) sec_n[a + 1] += sec_n[a];
    int32_t *sec = nb_xmalloc(sizeof(int32_t) * (size_t)(sec_n[na] ? sec_n[na] : 1));
    int *fill = nb_xcalloc((size_t)na, sizeof(int));
    for (int c = 0; c < nc; c++)
        for (int s = 1; s < 3; s++) {
            int b = cl_aisles[3 * c + s];
            if (b >= 0) sec[sec_n[b] + fill[b]++] = c;
        }
    /* each product joins a primary cluster of its aisle, or (25%) a cluster that lists its
     * aisle as secondary */
    m->prod_cluster = nb_xmalloc(sizeof(int32_t) * (size_t)np);
    m->cl_off = nb_xcalloc((size_t)nc + 1, sizeof(int32_t));
    for (int p = 0; p < np; p++) {
        int a = cat->aisle[p], ns = sec_n[a + 1] - sec_n[a], c;
        if (ns > 0 && nb_rng_uniform(&r) >= PRIMARY_SHARE)
            c = sec[sec_n[a] + (int)nb_rng_below(&r, (uint64_t)ns)];
        else
            c = a_first[a] + (int)nb_rng_below(&r, (uint64_t)(a_first[a + 1] - a_first[a]));
        m->prod_cluster[p] = c;
        m->cl_off[c + 1]++;
    }
    for (int c = 0; c < nc; c++) m->cl_off[c + 1] += m->cl_off[c];
    m->cl_items = nb_xmalloc(sizeof(int32_t) * (size_t)np);
    int *cfill = nb_xcalloc((size_t)nc, sizeof(int));
    for (int p = 0; p < np; p++) {
        int c = m->prod_cluster[p];
        m->cl_items[m->cl_off[c] + cfill[c]++] = p;
    }
    m->cl_table = nb_xmalloc(sizeof(sy_table) * (size_t)nc);
    double *cw = nb_xcalloc((size_t)nc, sizeof(double));
    m->cl_dept = nb_xmalloc(sizeof(int32_t) * (size_t)nc);
    for (int c = 0; c < nc; c++) {
        int n = m->cl_off[c + 1] - m->cl_off[c];
        table_init(&m->cl_table[c], n, m->cl_items + m->cl_off[c], m->pop);
        cw[c] = n ? m->cl_table[c].cum[n - 1] : 0;
        m->cl_dept[c] = adept[cl_primary[c]];
    }
    /* clusters by department, departments by weight */
    table_init(&m->all_clusters, nc, NULL, cw);
    double *dw = nb_xcalloc((size_t)nd, sizeof(double));
    int32_t *dc_off = nb_xcalloc((size_t)nd + 1, sizeof(int32_t));
    for (int c = 0; c < nc; c++) {
        dw[m->cl_dept[c]] += cw[c];
        dc_off[m->cl_dept[c] + 1]++;
    }
    for (int d = 0; d < nd; d++) dc_off[d + 1] += dc_off[d];
    int32_t *dc_items = nb_xmalloc(sizeof(int32_t) * (size_t)(nc ? nc : 1));
    int *dfill = nb_xcalloc((size_t)nd, sizeof(int));
    for (int c = 0; c < nc; c++) dc_items[dc_off[m->cl_dept[c]] + dfill[m->cl_dept[c]]++] = c;
    m->dept_clusters = nb_xmalloc(sizeof(sy_table) * (size_t)nd);
    for (int d = 0; d < nd; d++)
        table_init(&m->dept_clusters[d], dc_off[d + 1] - dc_off[d], dc_items + dc_off[d], cw);
    table_init(&m->dept_table, nd, NULL, dw);
    m->dc_items = dc_items;

    free(dc_off);
    free(dfill);
    free(dw);
    free(cw);
    free(cfill);
    free(fill);
    free(sec);
    free(sec_n);
    free(a_first);
    free(cl_primary);
    free(cl_aisles);
    free(adept);
    free(acount);
}

void sy_model_free(sy_model *m) {
    free(m->pop);
    free(m->global.cum);
    free(m->prod_cluster);
    free(m->cl_off);
    free(m->cl_items);
    for (int c = 0; c < m->n_clusters; c++) free(m->cl_table[c].cum);
    free(m->cl_table);
    free(m->cl_dept);
    free(m->dept_table.cum);
    if (m->dept_clusters)
        for (int d = 0; d < m->cat->n_depts; d++) free(m->dept_clusters[d].cum);
    free(m->dept_clusters);
    free(m->dc_items);
    free(m->all_clusters.cum);
    memset(m, 0, sizeof *m);
}
