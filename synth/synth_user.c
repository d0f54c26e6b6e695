/* synth_user.c -- one synthetic user: habits, orders, baskets.
 *
 * A user has (all drawn from the user's own RNG stream, so users are independent):
 *   - a number of orders (4-100, Weibull-shaped: median 10, mean 16.6) and a typical interval
 *     between orders that is shorter for frequent shoppers; some shop on a weekly rhythm;
 *     occasional same-day top-ups and long breaks (days_since is capped at 30 when written);
 *   - a preferred hour of day and a typical basket size;
 *   - 1-3 favourite departments and a handful of favourite co-purchase clusters there;
 *   - a loyalty (how readily a tried product becomes a habit) and an appetite for new
 *     products (the share of a basket spent exploring).
 *
 * Repeat purchases come from per-(user, product) habits -- a small hidden state per product
 * the user has bought, stepped before every order:
 *   - the first purchase of a product draws its habit strength w from a Beta distribution
 *     (most products stay one-offs, a few become staples), stronger for loyal users (loyalty
 *     grows with the user's number of orders: frequent shoppers are creatures of habit) and
 *     weaker when the user's repertoire is already full (saturation);
 *   - the habit is active or lapsed: before each order an active habit lapses with a
 *     probability that is small for strong habits and larger for weak ones, a lapsed one comes
 *     back with a small probability; any purchase makes it active again;
 *   - an active habit is bought with probability w times: the order's habit factor (stock-up
 *     vs top-up orders), a recency factor that decays with the orders since its last purchase,
 *     and a stock-up factor (the need for a product bought every 1/w orders grows with the
 *     orders since the last purchase: a pack of towels bought last order is not due yet);
 *     w fades slowly (tastes wane).
 * So the chance of a repeat depends on the product's share of the user's orders AND falls
 * with the orders since its last purchase -- the shape of real Instacart users' next orders
 * (issue 10's table; bench/repeat_curve.py prints it, tests/synth_curve.sh checks it).
 * The rest of a basket explores: new products from the cluster of an item already in it
 * (co-purchase), from a favourite cluster, or from global popularity. A basket is at least
 * the user's typical size (the habits bought, then exploring), and explores at least the
 * user's exploring share.
 * reordered = 1 exactly when the user bought the product in an earlier order.
 */
#include "synth.h"

#include "nb_err.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAV 40
#define TRAIN_SHARE (131209.0 / 206209.0) /* Instacart: users whose last order is `train` */

/* One product the user has bought, with its habit (see the header). */
typedef struct {
    int32_t p;
    float w;     /* purchase probability per order while active */
    float lapse; /* probability that an active habit lapses before an order */
    int active;
    int since; /* orders since the last purchase (0: bought in the latest order) */
} habit;

struct sy_gen {
    const sy_model *m;
    uint64_t seed;
    sy_out *orders, *prior, *train;
    sy_stats *st;
    /* per product, one cache line per lookup: owner == the current user means bought in an
     * earlier order, its habit being pool[slot]; in_basket == stamp means already in the
     * basket being built (stamps count baskets: < 2^32 since users <= 20M) */
    struct {
        uint32_t owner, slot, in_basket, pad;
    } * prod;
    uint32_t stamp;
    habit *pool; /* the user's products, in order of first purchase */
    size_t n_pool, cap_pool;
    int32_t fav[MAX_FAV];
    double fav_cum[MAX_FAV];
    int n_fav;
    double mass; /* expected habit purchases per order (sum of w of active habits) */
    int32_t basket[SY_MAX_BASKET];
    uint8_t re[SY_MAX_BASKET];
    double key[SY_MAX_BASKET];
};

/* Habit constants, fitted to issue 10's table of real Instacart users (bench/repeat_curve.py;
 * tests/synth_curve.sh) and to Instacart's basket size, reorder share and new-item share. */
/* w of a new product: Beta(W_A, W_B) -- most products are one-offs, a few become staples */
#define W_A 0.4251
#define W_B 0.6621
/* lapse probability per order of a habit with w = 1 ... */
#define LAPSE_STRONG 0.0258
/* ... and with w = 0 (linear in between: strong habits last) */
#define LAPSE_WEAK 0.114
/* probability per order that a lapsed habit comes back */
#define REVIVAL 0.0669
/* share of a basket spent exploring: uniform in [LO, LO + SPAN] per user */
#define EXPLORE_LO 0.2086
#define EXPLORE_SPAN 0.2352
/* sd of the log of a user's loyalty */
#define LOYAL_SD 0.5392
/* median typical basket size */
#define BASKET_MEDIAN 6.194
/* w of a habit is multiplied by this before each order: tastes wane, so a product's past share
 * overstates its next-order chance (real Instacart: next ~0.65-0.7 x share at since 0) */
#define FADE 0.9681
/* sd of the log of an order's habit factor (stock-up vs top-up orders) */
#define ORDER_SD 0.5107
/* recency: propensity factor FLOOR + (1 - FLOOR) * DECAY^(orders since purchase) */
#define RECENCY_DECAY 0.5436
#define RECENCY_FLOOR 0.4647
/* loyalty grows as (orders / 10)^this: frequent shoppers are creatures of habit */
#define LOYAL_ORDERS_EXP 0.2945
/* weight of the stock-up effect: the need for a habit with w grows as (since + 1) * w */
#define REGULARITY 0.3935
/* habit odds fall as 1 / (1 + active habit mass / (this * basket)): a full repertoire */
#define SATURATION 0.6978


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

sy_gen *sy_gen_new(const sy_model *m, uint64_t seed, sy_out *orders, sy_out *prior, sy_out *train,
                   sy_stats *st) {
    int np = m->cat->n_products;
    sy_gen *g = nb_xcalloc(1, sizeof *g);
    g->m = m;
    g->seed = seed;
    g->orders = orders;
    g->prior = prior;
    g->train = train;
    g->st = st;
    g->prod = nb_xcalloc((size_t)np, sizeof *g->prod);
    g->cap_pool = 1024;
    g->pool = nb_xmalloc(sizeof(habit) * g->cap_pool);
    return g;
}

void sy_gen_free(sy_gen *g) {
    if (!g) return;
    free(g->prod);
    free(g->pool);
    free(g);
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Returns a Gamma(a, 1) draw, a > 0 (Marsaglia and Tsang; a < 1 through a + 1 and U^(1/a)). */
static double draw_gamma(nb_rng *r, double a) {
    if (a < 1.0) return draw_gamma(r, a + 1.0) * pow(1.0 - nb_rng_uniform(r), 1.0 / a);
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = nb_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = 1.0 - nb_rng_uniform(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

/* Returns a Beta(a, b) draw. */
static double draw_beta(nb_rng *r, double a, double b) {
    double x = draw_gamma(r, a), y = draw_gamma(r, b);
    return x + y > 0 ? x / (x + y) : 0.0;
}

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

/* Draws the user's favourite clusters. */
static void user_favourites(sy_gen *g, nb_rng *r) {
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
}

/* Draws the habit of product p, bought by user u for the first time, and appends it to the
 * pool (active). `loyal` scales the odds of a staple or phase habit. */
static void adopt(sy_gen *g, nb_rng *r, int64_t u, int32_t p, double loyal, double mu_b) {
    if (g->n_pool == g->cap_pool) {
        g->cap_pool *= 2;
        g->pool = nb_xrealloc(g->pool, sizeof(habit) * g->cap_pool);
    }
    habit *h = &g->pool[g->n_pool];
    double sat = 1.0 / (1.0 + g->mass / (SATURATION * mu_b));
    double w = 1.0 - pow(1.0 - draw_beta(r, W_A, W_B), loyal * sat);
    if (w > 0.98) w = 0.98;
    h->p = p;
    h->w = (float)w;
    h->lapse = (float)(LAPSE_STRONG + (LAPSE_WEAK - LAPSE_STRONG) * (1.0 - w));
    h->active = 1;
    h->since = 0;
    g->prod[p].owner = (uint32_t)u;
    g->prod[p].slot = (uint32_t)g->n_pool++;
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

/* Builds the basket of order k (1-based) of user u; returns its size. New products of the
 * basket are adopted into the pool once it is complete (so reordered flags refer to earlier
 * orders only). */
static int make_basket(sy_gen *g, nb_rng *r, int64_t u, double mu_b, double explore) {
    int B = (int)lround(mu_b * exp(0.45 * nb_rng_normal(r)));
    B = B < 1 ? 1 : B > SY_MAX_BASKET ? SY_MAX_BASKET : B;
    int nb = 0;
    g->stamp++;
    /* habits: every one steps its state (lapse or revival, fading); active ones are bought
     * with w times the order's factor f, the recency factor and the stock-up factor. A random
     * starting point, so that a full basket (SY_MAX_BASKET) favours none. f has mean 1. */
    size_t n = g->n_pool, off = n ? (size_t)nb_rng_below(r, n) : 0;
    double f = exp(ORDER_SD * nb_rng_normal(r) - 0.5 * ORDER_SD * ORDER_SD);
    g->mass = 0;
    for (size_t i = 0; i < n; i++) {
        habit *h = &g->pool[(off + i) % n];
        if (h->active)
            h->active = nb_rng_uniform(r) >= h->lapse;
        else
            h->active = nb_rng_uniform(r) < REVIVAL;
        h->w *= (float)FADE;
        double rec = RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * pow(RECENCY_DECAY, h->since);
        rec *= 1.0 - REGULARITY + REGULARITY * fmin(1.0, (h->since + 1) * h->w);
        h->since++;
        if (h->active) g->mass += h->w;
        if (h->active && nb_rng_uniform(r) < h->w * f * rec && nb < SY_MAX_BASKET) {
            g->basket[nb++] = h->p;
            g->prod[h->p].in_basket = g->stamp;
        }
    }
    /* exploring: at least a share `explore` of the basket, more when the habits leave room */
    int ne = (int)floor(explore * B + nb_rng_uniform(r));
    if (B - nb > ne) ne = B - nb;
    for (int j = 0; j < ne && nb < SY_MAX_BASKET; j++) {
        int32_t p = -1;
        for (int t = 0; t < 8 && p < 0; t++) { /* a product new to the user if one comes up */
            int32_t c = draw_new(g, r, nb);
            if (g->prod[c].in_basket != g->stamp && (g->prod[c].owner != (uint32_t)u || t == 7))
                p = c;
        }
        if (p < 0) break; /* everything tried was in the basket already: a smaller one */
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
    double mu_b = BASKET_MEDIAN * exp(0.5 * nb_rng_normal(&r));
    double loyal = exp(LOYAL_SD * nb_rng_normal(&r)) * pow(n / 10.0, LOYAL_ORDERS_EXP);
    double explore = EXPLORE_LO + EXPLORE_SPAN * nb_rng_uniform(&r);
    int dow = draw_dow(&r);
    user_favourites(g, &r);
    g->n_pool = 0;
    g->mass = 0;

    st->users++;
    st->orders_hist[n]++;
    for (int k = 1; k <= n; k++) {
        int ds = -1;
        if (k > 1) {
            double gap = weekly ? T + 1.5 * nb_rng_normal(&r) + (nb_rng_uniform(&r) < 0.1 ? 7 : 0)
                                : T * exp(0.55 * nb_rng_normal(&r));
            double x = nb_rng_uniform(&r);
            if (x < 0.07)
                gap *= 3.0; /* a holiday, a busy month */
            else if (x < 0.09)
                gap = 0; /* a top-up order the same day */
            int gi = gap < 0 ? 0 : (int)lround(gap);
            if (gi >= 2 && nb_rng_uniform(&r) < 0.2) { /* shift a day toward a busier weekday */
                int d = (int)nb_rng_below(&r, 3) - 1;
                if (dow_w[(dow + gi + d) % 7] > dow_w[(dow + gi) % 7]) gi += d;
            }
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
        if (ds >= 0) {
            sy_out_u64(o, (uint64_t)ds);
            sy_out_str(o, ".0", 2);
        }
        sy_out_ch(o, '\n');
        st->orders++;
        if (!last)
            st->prior_orders++;
        else if (is_train)
            st->train_orders++;
        else {
            st->test_orders++;
            break;
        } /* a test order's items are withheld */

        int nb = make_basket(g, &r, u, mu_b, explore);
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
        /* the basket becomes history: new products get their habit, bought ones are active */
        for (int i = 0; i < nb; i++) {
            int32_t p = g->basket[i];
            if (g->prod[p].owner != (uint32_t)u)
                adopt(g, &r, u, p, loyal, mu_b);
            else {
                g->pool[g->prod[p].slot].active = 1;
                g->pool[g->prod[p].slot].since = 0;
            }
        }
    }
}
