/* nb-serve -- the HTTP inference daemon.
 *
 *   nb-serve --db FILE --model FILE [--port 8080] [--bind 127.0.0.1] [--threads N] [--quiet]
 *            [--basket threshold|expected-f1] [--max-connections N] [--per-ip-limit N]
 *            [--header-timeout S] [--body-timeout S] [--idle-timeout S] [--no-metrics]
 *            [--admin-token-file FILE]
 *
 * Loads and checks everything first (store, weight file, catalogue match, model record,
 * admin token), then listens; POST /recommend, GET /health, /metrics, /openapi.json
 * (server/srv_http.h), and with --admin-token-file the token-protected POST /orders
 * (server/srv_orders.h) and POST /admin/reload. SIGHUP: reload the newest registered model
 * (srv_engine_reload). SIGTERM or SIGINT:
 * every response from then on closes its connection, no new connection is accepted, every
 * request already received (in flight, or sent and not yet read) is answered, exit 0. Exit status 1 when start-up
 * fails (the message says which check), 2 for a usage error.
 */
#include <cblas.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nb_err.h"
#include "nb_flags.h"
#include "srv_admin.h"
#include "srv_auth.h"
#include "srv_engine.h"
#include "srv_http.h"
#include "srv_orders.h"
#include "srv_metrics.h"

#define GRACE_S 10.0 /* how long a stop waits for requests in flight */

typedef struct {
    const char *db, *model, *bind, *token_file;
    int port, threads, basket, quiet, max_conn, per_ip, no_metrics;
    double header_to, body_to, idle_to;
} serve_flags;

static const char *const baskets[] = {"threshold", "expected-f1", NULL}; /* SRV_BASKET_* */

#define O(field) offsetof(serve_flags, field)
static const nb_flag FLAGS[] = {
    {"db", NB_F_STR, O(db), 0, 0, "FILE", "", "the store", NB_F_REQUIRED, NULL, NULL},
    {"model", NB_F_STR, O(model), 0, 0, "FILE", "",
     "the weight file (registered in the store by nb-train)", NB_F_REQUIRED, NULL, NULL},
    {"port", NB_F_INT, O(port), 0, 65535, "N", "8080",
     "0 picks a free port (the log line 'listening on' names it)", 0, NULL, NULL},
    {"bind", NB_F_STR, O(bind), 0, 0, "ADDR", "127.0.0.1", "address to listen on", 0, NULL, NULL},
    {"threads", NB_F_INT, O(threads), 1, 256, "N", "cores", "worker threads", 0, NULL, NULL},
    {"basket", NB_F_CHOICE, O(basket), 0, 0, "MODE", "threshold", "threshold | expected-f1", 0,
     baskets, NULL},
    {"quiet", NB_F_BOOL, O(quiet), 0, 0, NULL, "", "no request log, no library error lines", 0,
     NULL, NULL},
    {"no-metrics", NB_F_BOOL, O(no_metrics), 0, 0, NULL, "",
     "no GET /metrics and no request accounting (to measure what the metrics cost)", 0, NULL,
     NULL},
    {"max-connections", NB_F_INT, O(max_conn), 16, 65536, "N", "1024",
     "open connections at most (1/16 of them a reserve: past the rest, a new connection evicts the "
     "oldest one waiting >= 0.5 s for request headers)",
     0, NULL, NULL},
    {"per-ip-limit", NB_F_INT, O(per_ip), 0, 65536, "N", "128",
     "connections per client address (0: no limit)", 0, NULL, NULL},
    {"header-timeout", NB_F_DBL, O(header_to), 0, 3600, "S", "10",
     "a request's headers must arrive within S seconds of the accept or of the previous response "
     "(0: no deadline)",
     0, NULL, NULL},
    {"body-timeout", NB_F_DBL, O(body_to), 0, 3600, "S", "30",
     "a request's body must arrive within S seconds of its headers (0: no deadline)", 0, NULL,
     NULL},
    {"idle-timeout", NB_F_DBL, O(idle_to), 1, 3600, "S", "30",
     "a connection silent for S seconds is closed (libmicrohttpd's timeout)", 0, NULL, NULL},
    {"admin-token-file", NB_F_STR, O(token_file), 0, 0, "FILE", "",
     "turns on the writing endpoints (POST /orders), which then need the header "
     "'Authorization: Bearer <the token in FILE>'; without it they answer 404",
     0, NULL, NULL},
};
#undef O
#define USAGE                                                                         \
    "usage: nb-serve --db FILE --model FILE [--port 8080] [--bind 127.0.0.1]\n"       \
    "                [--threads N] [--quiet] [--basket threshold|expected-f1]\n"      \
    "                [--max-connections N] [--per-ip-limit N] [--header-timeout S]\n" \
    "                [--body-timeout S] [--idle-timeout S] [--no-metrics]\n"      \
    "                [--admin-token-file FILE]\n"

/* OpenBLAS must not spawn its own threads under our worker threads: one BLAS thread per
 * request thread. The OpenMP build cannot be made to behave that way reliably, so it is
 * refused. Returns 0, or -1 with a message on stderr. */
static int blas_setup(void) {
    openblas_set_num_threads(1);
    int par = openblas_get_parallel();
    const char *kind = par == 0 ? "sequential"
        : par == 1              ? "pthreads"
        : par == 2              ? "OpenMP"
                                : "unknown";
    fprintf(stderr, "nb-serve: OpenBLAS %s (%s build), 1 thread per request\n",
            openblas_get_config(), kind);
    if (par == 2) {
        fprintf(stderr,
                "nb-serve: refusing the OpenMP build of OpenBLAS: its thread pool "
                "conflicts with the server's worker threads; select the pthread or "
                "serial variant (update-alternatives --config libopenblas.so.0-"
                "x86_64-linux-gnu)\n");
        return -1;
    }
    return 0;
}

/* SIGHUP: srv_engine_reload of the newest registered model, logged either way. */
static void reload(srv_engine *e) {
    char err[NB_ERRLEN];
    srv_reload_result r;
    double t0 = nb_now();
    fprintf(stderr, "nb-serve: SIGHUP received, reloading the newest registered model\n");
    if (srv_engine_reload(e, NULL, 1, &r, err, sizeof err) == NB_OK)
        fprintf(stderr, "nb-serve: now serving model %s (was %s; loaded in %.2f s)\n", r.model,
                r.previous, nb_now() - t0);
    else
        fprintf(stderr, "nb-serve: reload refused, the previous model keeps serving: %s\n", err);
}

int main(int argc, char **argv) {
    srv_http_opts o;
    srv_http_opts_default(&o);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    serve_flags f = {.port = o.port,
                     .bind = o.bind,
                     .threads = cores > 0 ? (int)cores : 1,
                     .basket = SRV_BASKET_THRESHOLD,
                     .max_conn = (int)o.conn_limit,
                     .per_ip = (int)o.per_ip_limit,
                     .header_to = o.header_timeout_s,
                     .body_to = o.body_timeout_s,
                     .idle_to = o.timeout_s};
    int ex = nb_flags_main("nb-serve", USAGE, FLAGS, NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    const char *db = f.db, *model = f.model;
    o.port = f.port;
    o.bind = f.bind;
    o.threads = f.threads;
    o.quiet = f.quiet;
    o.conn_limit = (unsigned)f.max_conn;
    o.reserve = o.conn_limit / 16;
    o.per_ip_limit = (unsigned)f.per_ip;
    o.header_timeout_s = f.header_to;
    o.body_timeout_s = f.body_to;
    o.timeout_s = (unsigned)(f.idle_to + 0.5);
    int basket = f.basket;
    if (blas_setup()) return 1;

    /* Block the stop and reload signals before any thread exists, so that every MHD worker
     * inherits the mask and only sigwait below ever sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[NB_ERRLEN];
    srv_engine *e = NULL;
    srv_auth *auth = NULL;
    srv_orders *orders = NULL;
    if (f.token_file && *f.token_file) {
        char warn[NB_ERRLEN];
        if (srv_auth_load(&auth, f.token_file, warn, sizeof warn, err, sizeof err) != NB_OK) {
            fprintf(stderr, "nb-serve: %s\n", err);
            return 1;
        }
        if (warn[0]) fprintf(stderr, "nb-serve: warning: %s\n", warn);
    }
    double t0 = nb_now();
    if (srv_engine_open(&e, db, model, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-serve: %s\n", err);
        srv_auth_free(auth);
        return 1;
    }
    if (auth && srv_orders_open(&orders, db, e, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-serve: %s\n", err);
        srv_engine_free(e);
        srv_auth_free(auth);
        return 1;
    }
    srv_model_info mi;
    srv_engine_model_info(e, &mi);
    fprintf(stderr,
            "nb-serve: model %s, %d users, %d products, threshold %.3g, basket %s, "
            "loaded in %.2f s\n",
            mi.name, mi.n_users, mi.n_products, mi.threshold, srv_basket_mode_name(basket),
            nb_now() - t0);
    srv_metrics_enable(!f.no_metrics);
    srv_metrics_model(mi.name, mi.loaded_at);

    srv_handlers hd = {.recommend = srv_engine_recommend,
                       .health = srv_engine_health,
                       .ctx = e,
                       .default_basket_mode = basket,
                       .orders = srv_orders_post,
                       .orders_ctx = orders,
                       .reload = srv_admin_reload,
                       .auth = auth};
    srv_http *h = NULL;
    if (srv_http_start(&h, &o, &hd, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-serve: %s\n", err);
        srv_orders_free(orders);
        srv_engine_free(e);
        srv_auth_free(auth);
        return 1;
    }
    fprintf(stderr, "nb-serve: listening on %s:%d with %d threads; writing endpoints %s\n",
            o.bind, srv_http_port(h), o.threads,
            auth ? "on (POST /orders, admin token)" : "off (no --admin-token-file)");

    int sig = 0;
    for (;;) {
        if (sigwait(&stop, &sig) != 0) continue;
        if (sig != SIGHUP) break;
        reload(e); /* SIGHUP: the newest registered model, requests go on meanwhile */
    }
    fprintf(stderr, "nb-serve: %s received, finishing requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    long hto, bto, ev;
    srv_http_counters(h, &hto, &bto, &ev); /* before the stop frees h; slow clients so far */
    srv_http_stop(h, GRACE_S);
    if (orders) {
        srv_orders_stats os;
        srv_orders_stats_get(orders, &os);
        fprintf(stderr,
                "nb-serve: orders: %ld added, %ld retries answered, %ld conflicts, %ld with "
                "unknown products, %ld malformed, %ld store busy, %ld failed\n",
                os.added, os.replayed, os.conflicts, os.unknown_products, os.bad_requests, os.busy,
                os.failed);
    }
    srv_orders_free(orders);
    srv_engine_free(e);
    srv_auth_free(auth);
    fprintf(stderr,
            "nb-serve: stopped, peak RSS %.1f MiB; connections cut: %ld at the header "
            "deadline, %ld at the body deadline, %ld evicted for the reserve\n",
            nb_peak_rss() / 1048576.0, hto, bto, ev);
    return 0;
}
