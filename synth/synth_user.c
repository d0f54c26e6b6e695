/* synth_user.c -- one synthetic user: habits, orders, baskets.
 *
 * A user has (all drawn from the user's own RNG stream, so users are independent):
 *   - a number of orders (4-100, Weibull-shaped: median 10, mean 16.6) and a typical interval
 *     between orders that is shorter for frequent shoppers; some shop on a weekly rhythm;
 *     occasional same-day top-ups and long breaks (days_since is capped at 30 when written);
 *   - a preferred hour of day and a typical basket size;
 *   - 1-3 favourite departments and a handful of favourite co-purchase clusters there;
 *   - staples: products bought with a product-specific period (1-4 typical intervals), a
 *     purchase probability that rises with the days since the last purchase, some of them
 *     adopted late or dropped early -- so "what this user bought most often" is strong but
 *     recency and periodicity still carry signal;
 *   - a propensity to re-buy other past items (recency-weighted: mostly from the last few
 *     orders), growing with history.
 * Constants were tuned so that the statistics match Instacart's (see tests/synth.sh).
 * The rest of a basket is new items: from the cluster of an item already in the basket
 * (co-purchase), from a favourite cluster, or from global popularity.
 * reordered = 1 exactly when the user bought the product in an earlier order.
 */
#include "synth.h"

#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STAPLES 32
#define MAX_FAV 40
#define TRAIN_SHARE (131209.0 / 206209.0)  /* Instacart: users whose last order is `train` */

typedef struct {
    int32_t p;
    double period, q;      /* in typical intervals; purchase probability when due */
    int start, end;        /* active for order numbers in [start, end) */
} staple;

struct sy_gen {
    const sy_model *m;
    uint64_t seed;
    sy_out *orders, *prior, *train;
    sy_stats *st;
    /* per product, one cache line per lookup: owner == the current user means bought in an
     * earlier order (on last_day); in_basket == stamp means already in the basket being
     * built (stamps count baskets and staple sets: < 2^32 since users <= 20M) */
    struct { uint32_t owner, last_day, in_basket; } *prod;
    uint32_t stamp;
    int32_t *events;         /* the user's past purchases, oldest first */
    size_t n_events, cap_events;
    staple staples[MAX_STAPLES];
    int n_staples;
    int32_t fav[MAX_FAV];
    double fav_cum[MAX_FAV];
    int n_fav;
    int32_t basket[SY_MAX_BASKET];
    uint8_t re[SY_MAX_BASKET];
    double key[SY_MAX_BASKET];
};

/* Day-of-week weights of a grocery service (weekend-heavy), used to nudge order days. */
static const double dow_w[7] = {0.19, 0.175, 0.13, 0.12, 0.115, 0.13, 0.14};

/* A day of the week drawn from dow_w. */
static int draw_dow(nb_rng *r) {
    double x = nb_rng_uniform(r), s = 0;
    for (int d = 0; d < 6; d++)
        if (x < (s += dow_w[d])) return d;
    return 6;
}

static void user_rng(nb_rng *r, uint64_t seed, int64_t u, uint64_t stream) {
    nb_rng_seed(r, nb_hash64(seed * 0x9E3779B97F4A7C15ull ^ nb_hash64((uint64_t)u * 4 + stream)));
}

int sy_user_orders(uint64_t seed, int64_t u, int *is_train) {
    nb_rng r;
    user_rng(&r, seed, u, 0);
    /* Weibull(shape 0.7, scale 10.15) + 0.5: fitted to Instacart's orders per user (mean
     * 16.6, median 10, 11.6% with 4 orders, 0.7% with 100) */
    double x = 10.15 * pow(-log(1.0 - nb_rng_uniform(&r)), 1.0 / 0.7) + 0.5;
    int n = x > 200 ? 200 : 3 + (int)ceil(x);
    if (n < SY_MIN_ORDERS) n = SY_MIN_ORDERS;
    if (n > SY_MAX_ORDERS) n = SY_MAX_ORDERS;
    *is_train = nb_rng_uniform(&r) < TRAIN_SHARE;
    return n;
}

sy_gen *sy_gen_new(const sy_model *m, uint64_t seed, sy_out *orders, sy_out *prior,
                   sy_out *train, sy_stats *st) {
    int np = m->cat->n_products;
    sy_gen *g = nb_xcalloc(1, sizeof *g);
    g->m = m;
    g->seed = seed;
    g->orders = orders;
    g->prior = prior;
    g->train = train;
    g->st = st;
    g->prod = nb_xcalloc((size_t)np, sizeof *g->prod);
    g->cap_events = 1024;
    g->events = nb_xmalloc(sizeof(int32_t) * g->cap_events);
    return g;
}

void sy_gen_free(sy_gen *g) {
    if (!g) return;
    free(g->prod);
    free(g->events);
    free(g);
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* A product from one of the user's favourite clusters (by the user's cluster weights, then
 * by popularity within the cluster). */
static int32_t draw_fav(sy_gen *g, nb_rng *r) {
    double x = nb_rng_uniform(r) * g->fav_cum[g->n_fav - 1];
    int i = 0;
    while (i < g->n_fav - 1 && g->fav_cum[i] <= x) i++;
    return sy_table_draw(&g->m->cl_table[g->fav[i]], r);
}

/* A product the user has not necessarily bought: co-purchase with the basket, favourite
 * cluster, or global popularity. */
static int32_t draw_new(sy_gen *g, nb_rng *r, int nb) {
    double x = nb_rng_uniform(r);
    if (nb > 0 && x < 0.30) {
        int32_t q = g->basket[nb_rng_below(r, (uint64_t)nb)];
        return sy_table_draw(&g->m->cl_table[g->m->prod_cluster[q]], r);
    }
    if (x < 0.78) return draw_fav(g, r);
    return sy_table_draw(&g->m->global, r);
}

/* A past purchase, recency-weighted: an exponential offset back from the latest event. */
static int32_t draw_past(sy_gen *g, nb_rng *r) {
    size_t e = g->n_events;
    double lam = clampd(e * 0.25, 6, 60);
    double off = -log(1.0 - nb_rng_uniform(r)) * lam;
    size_t i = off < (double)e ? e - 1 - (size_t)off : (size_t)nb_rng_below(r, e);
    return g->events[i];
}

/* Draws the user's favourite clusters and staples. */
static void user_habits(sy_gen *g, nb_rng *r, int n_orders, double mu_basket) {
    const sy_model *m = g->m;
    int nd = 1 + (int)nb_rng_below(r, 3), fd[3];
    for (int i = 0; i < nd; i++) fd[i] = sy_table_draw(&m->dept_table, r);
    g->n_fav = 3 + (int)(-log(1.0 - nb_rng_uniform(r)) * 6.0);
    if (g->n_fav > MAX_FAV) g->n_fav = MAX_FAV;
    double s = 0;
    for (int i = 0; i < g->n_fav; i++) {
        if (nb_rng_uniform(r) < 0.75)
            g->fav[i] = sy_table_draw(&m->dept_clusters[fd[nb_rng_below(r, (uint64_t)nd)]], r);
        else
            g->fav[i] = sy_table_draw(&m->all_clusters, r);
        s += -log(1.0 - nb_rng_uniform(r)) + 0.05;
        g->fav_cum[i] = s;
    }
    int ns = (int)lround(mu_basket * (0.2 + 0.6 * nb_rng_uniform(r)));
    ns = ns < 1 ? 1 : ns > MAX_STAPLES ? MAX_STAPLES : ns;
    g->n_staples = 0;
    g->stamp++;   /* use in_basket to deduplicate staples */
    for (int i = 0; i < ns; i++) {
        int32_t p = -1;
        for (int t = 0; t < 6 && p < 0; t++) {
            int32_t c = nb_rng_uniform(r) < 0.65 ? draw_fav(g, r) : sy_table_draw(&m->global, r);
            if (g->prod[c].in_basket != g->stamp) p = c;
        }
        if (p < 0) continue;
        g->prod[p].in_basket = g->stamp;
        staple *st = &g->staples[g->n_staples++];
        double x = nb_rng_uniform(r);
        int mult = x < 0.3 ? 1 : x < 0.65 ? 2 : x < 0.85 ? 3 : 4;
        st->p = p;
        st->period = mult * exp(0.15 * nb_rng_normal(r));   /* in typical intervals */
        st->q = 0.6 + 0.35 * nb_rng_uniform(r);
        st->start = nb_rng_uniform(r) < 0.65 ? 1 : 2 + (int)nb_rng_below(r, (uint64_t)(n_orders - 2));
        st->end = nb_rng_uniform(r) < 0.65
                      ? n_orders + 1
                      : st->start + 2 + (int)nb_rng_below(r, (uint64_t)(n_orders - st->start > 0 ? n_orders - st->start : 1));
    }
}

/* Sorts the basket by key (insertion sort: at most SY_MAX_BASKET items). */
static void sort_basket(sy_gen *g, int nb) {
    for (int i = 1; i < nb; i++) {
        double k = g->key[i];
        int32_t p = g->basket[i];
        uint8_t re = g->re[i];
        int j = i - 1;
        while (j >= 0 && g->key[j] > k) {
            g->key[j + 1] = g->key[j];
            g->basket[j + 1] = g->basket[j];
            g->re[j + 1] = g->re[j];
            j--;
        }
        g->key[j + 1] = k;
        g->basket[j + 1] = p;
        g->re[j + 1] = re;
    }
}

/* Builds the basket of order k (1-based) on `day`; returns its size. */
static int make_basket(sy_gen *g, nb_rng *r, int64_t u, int k, int day, double T, double mu_b,
                       double rho) {
    int B = (int)lround(mu_b * exp(0.45 * nb_rng_normal(r)));
    B = B < 1 ? 1 : B > SY_MAX_BASKET ? SY_MAX_BASKET : B;
    int nb = 0;
    g->stamp++;
    /* staples, from a random starting point so that truncation favours none */
    int off = g->n_staples ? (int)nb_rng_below(r, (uint64_t)g->n_staples) : 0;
    for (int i = 0; i < g->n_staples && nb < B; i++) {
        staple *s = &g->staples[(off + i) % g->n_staples];
        if (k < s->start || k >= s->end) continue;
        double p = s->q;
        if (g->prod[s->p].owner == (uint32_t)u) {
            double t = (day - (int)g->prod[s->p].last_day) / (s->period * T);
            p *= 1.0 / (1.0 + exp(-8.0 * (t - 0.85)));
        }
        if (nb_rng_uniform(r) < p) {
            g->basket[nb++] = s->p;
            g->prod[s->p].in_basket = g->stamp;
        }
    }
    /* the rest: past items (more likely as the history grows) or new ones */
    double rho_k = rho * (1.0 - pow(0.55, k - 1));
    while (nb < B) {
        int32_t p = -1;
        for (int t = 0; t < 8 && p < 0; t++) {
            int32_t c = g->n_events && nb_rng_uniform(r) < rho_k ? draw_past(g, r) : draw_new(g, r, nb);
            if (g->prod[c].in_basket != g->stamp) p = c;
        }
        if (p < 0) break;   /* everything tried was in the basket already: a smaller one */
        g->basket[nb++] = p;
        g->prod[p].in_basket = g->stamp;
    }
    /* reordered flags; reorders tend to be added to the cart first */
    for (int i = 0; i < nb; i++) {
        g->re[i] = g->prod[g->basket[i]].owner == (uint32_t)u;
        g->key[i] = g->re[i] ? 0.6 * nb_rng_uniform(r) : 0.3 + 0.7 * nb_rng_uniform(r);
    }
    sort_basket(g, nb);
    return nb;
}

void sy_gen_user(sy_gen *g, int64_t u, uint64_t first_index, const sy_ids *ids) {
    nb_rng r;
    int is_train;
    int n = sy_user_orders(g->seed, u, &is_train);
    user_rng(&r, g->seed, u, 1);
    sy_stats *st = g->st;

    double T = clampd(39.0 / sqrt((double)n) * exp(0.65 * nb_rng_normal(&r)), 1.5, 60.0);
    int weekly = nb_rng_uniform(&r) < 0.3;
    if (weekly) T = T < 10.5 ? 7 : 7 * lround(T / 7.0);
    double hour0 = clampd(13.0 + 3.3 * nb_rng_normal(&r), 6, 22);
    double mu_b = 8.1 * exp(0.5 * nb_rng_normal(&r));
    double rho = 0.05 + 0.62 * nb_rng_uniform(&r);
    int dow = draw_dow(&r);
    user_habits(g, &r, n, mu_b);
    g->n_events = 0;

    int day = 0;
    st->users++;
    st->orders_hist[n]++;
    for (int k = 1; k <= n; k++) {
        int ds = -1;
        if (k > 1) {
            double gap = weekly ? T + 1.5 * nb_rng_normal(&r) + (nb_rng_uniform(&r) < 0.1 ? 7 : 0)
                                : T * exp(0.55 * nb_rng_normal(&r));
            double x = nb_rng_uniform(&r);
            if (x < 0.07) gap *= 3.0;          /* a holiday, a busy month */
            else if (x < 0.09) gap = 0;        /* a top-up order the same day */
            int gi = gap < 0 ? 0 : (int)lround(gap);
            if (gi >= 2 && nb_rng_uniform(&r) < 0.2) {  /* shift a day toward a busier weekday */
                int d = (int)nb_rng_below(&r, 3) - 1;
                if (dow_w[(dow + gi + d) % 7] > dow_w[(dow + gi) % 7]) gi += d;
            }
            day += gi;
            dow = (dow + gi) % 7;
            ds = gi > 30 ? 30 : gi;
        }
        int hour = (int)lround(clampd(hour0 + 2.3 * nb_rng_normal(&r), 0, 23));
        if (nb_rng_uniform(&r) < 0.01) hour = (int)nb_rng_below(&r, 24);
        int last = k == n;
        const char *es = !last ? "prior" : is_train ? "train" : "test";
        uint64_t oid = sy_ids_map(ids, first_index + (uint64_t)(k - 1)) + 1;

        sy_out *o = g->orders;
        sy_out_reserve(o, 96);
        sy_out_u64(o, oid);
        sy_out_ch(o, ',');
        sy_out_u64(o, (uint64_t)u);
        sy_out_ch(o, ',');
        sy_out_str(o, es, strlen(es));
        sy_out_ch(o, ',');
        sy_out_u64(o, (uint64_t)k);
        sy_out_ch(o, ',');
        sy_out_u64(o, (uint64_t)dow);
        sy_out_ch(o, ',');
        sy_out_u64(o, (uint64_t)hour);
        sy_out_ch(o, ',');
        if (ds >= 0) { sy_out_u64(o, (uint64_t)ds); sy_out_str(o, ".0", 2); }
        sy_out_ch(o, '\n');
        st->orders++;
        if (!last) st->prior_orders++;
        else if (is_train) st->train_orders++;
        else { st->test_orders++; break; }   /* a test order's items are withheld */

        int nb = make_basket(g, &r, u, k, day, T, mu_b, rho);
        sy_out *io = last ? g->train : g->prior;
        for (int i = 0; i < nb; i++) {
            int32_t p = g->basket[i];
            sy_out_reserve(io, 64);
            sy_out_u64(io, oid);
            sy_out_ch(io, ',');
            sy_out_u64(io, (uint64_t)g->m->cat->product_id[p]);
            sy_out_ch(io, ',');
            sy_out_u64(io, (uint64_t)(i + 1));
            sy_out_ch(io, ',');
            sy_out_ch(io, g->re[i] ? '1' : '0');
            sy_out_ch(io, '\n');
            st->product_rows[p]++;
            st->reordered_rows += g->re[i];
        }
        st->item_rows += nb;
        /* the basket becomes history */
        if (g->n_events + (size_t)nb > g->cap_events) {
            while (g->n_events + (size_t)nb > g->cap_events) g->cap_events *= 2;
            g->events = nb_xrealloc(g->events, sizeof(int32_t) * g->cap_events);
        }
        for (int i = 0; i < nb; i++) {
            int32_t p = g->basket[i];
            g->prod[p].owner = (uint32_t)u;
            g->prod[p].last_day = (uint32_t)day;
            g->events[g->n_events++] = p;
        }
    }
}
