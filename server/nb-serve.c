/* nb-serve -- the HTTP inference daemon.
 *
 *   nb-serve --db FILE --model FILE [--port 8080] [--bind 127.0.0.1] [--threads N] [--quiet]
 *            [--basket threshold|expected-f1]
 *
 * Loads and checks everything first (store, weight file, catalogue match, model record),
 * then listens; POST /recommend and GET /health (server/srv_http.h). SIGTERM or SIGINT:
 * stop accepting, let the requests in flight finish, exit 0. Exit status 1 when start-up
 * fails (the message says which check), 2 for a usage error.
 */
#include <cblas.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nb_err.h"
#include "srv_engine.h"
#include "srv_http.h"

#define GRACE_S 10.0   /* how long a stop waits for requests in flight */

static void usage(FILE *f) {
    fprintf(f, "usage: nb-serve --db FILE --model FILE [--port 8080] [--bind 127.0.0.1]\n"
               "                [--threads N] [--quiet] [--basket threshold|expected-f1]\n"
               "  --port 0 picks a free port (the log line 'listening on' names it)\n"
               "  --threads defaults to the number of cores\n");
}

/* Parses a whole decimal integer in [lo, hi]. Returns 0 and *out, or -1. */
static int parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* OpenBLAS must not spawn its own threads under our worker threads: one BLAS thread per
 * request thread. The OpenMP build cannot be made to behave that way reliably, so it is
 * refused. Returns 0, or -1 with a message on stderr. */
static int blas_setup(void) {
    openblas_set_num_threads(1);
    int par = openblas_get_parallel();
    const char *kind = par == 0 ? "sequential" : par == 1 ? "pthreads" : par == 2 ? "OpenMP"
                     : "unknown";
    fprintf(stderr, "nb-serve: OpenBLAS %s (%s build), 1 thread per request\n",
            openblas_get_config(), kind);
    if (par == 2) {
        fprintf(stderr, "nb-serve: refusing the OpenMP build of OpenBLAS: its thread pool "
                        "conflicts with the server's worker threads; select the pthread or "
                        "serial variant (update-alternatives --config libopenblas.so.0-"
                        "x86_64-linux-gnu)\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *db = NULL, *model = NULL;
    srv_http_opts o;
    srv_http_opts_default(&o);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cores > 0 ? (int)cores : 1;
    int basket = SRV_BASKET_THRESHOLD;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "nb-serve: %s: missing value or unknown flag\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--db")) db = v;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--bind")) o.bind = v;
        else if (!strcmp(a, "--port")) {
            if (parse_int(v, 0, 65535, &o.port)) {
                fprintf(stderr, "nb-serve: --port %s: must be an integer in 0..65535\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 1, 256, &o.threads)) {
                fprintf(stderr, "nb-serve: --threads %s: must be an integer in 1..256\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--basket")) {
            basket = srv_basket_mode_parse(v);
            if (basket < 0) {
                fprintf(stderr, "nb-serve: --basket %s: must be threshold or expected-f1\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "nb-serve: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!db || !model) {
        fprintf(stderr, "nb-serve: --db and --model are required\n");
        usage(stderr);
        return 2;
    }
    if (blas_setup()) return 1;

    /* Block the stop signals before any thread exists, so that every MHD worker inherits
     * the mask and only sigwait below ever sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[NB_ERRLEN];
    srv_engine *e = NULL;
    double t0 = nb_now();
    if (srv_engine_open(&e, db, model, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-serve: %s\n", err);
        return 1;
    }
    fprintf(stderr, "nb-serve: model %s, %d users, %d products, threshold %.3g, basket %s, "
            "loaded in %.2f s\n", srv_engine_model_name(e), srv_engine_n_users(e),
            srv_engine_n_products(e), srv_engine_threshold(e), srv_basket_mode_name(basket),
            nb_now() - t0);

    srv_handlers hd = {srv_engine_recommend, srv_engine_health, e, basket};
    srv_http *h = NULL;
    if (srv_http_start(&h, &o, &hd, err, sizeof err) != NB_OK) {
        fprintf(stderr, "nb-serve: %s\n", err);
        srv_engine_free(e);
        return 1;
    }
    fprintf(stderr, "nb-serve: listening on %s:%d with %d threads\n", o.bind, srv_http_port(h),
            o.threads);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {}
    fprintf(stderr, "nb-serve: %s received, finishing requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    srv_http_stop(h, GRACE_S);
    srv_engine_free(e);
    fprintf(stderr, "nb-serve: stopped, peak RSS %.1f MiB\n", nb_peak_rss() / 1048576.0);
    return 0;
}
