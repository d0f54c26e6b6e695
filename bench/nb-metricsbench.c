/* nb-metricsbench -- what a request's metrics accounting costs (server/srv_metrics.c):
 *
 *   nb-metricsbench [--threads 2] [--requests 5000000]
 *
 * Each thread calls srv_metrics_begin + srv_metrics_end (what srv_http.c does per request)
 * --requests times on the same endpoint and status, the worst case for the shared cache
 * lines; prints the wall time per request per thread in ns, and the time one /metrics
 * exposition takes. Compare with the server CPU per /recommend (bench/serve.sh). */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "nb_err.h"
#include "nb_flags.h"
#include "srv_metrics.h"

typedef struct {
    int threads, requests;
} mb_flags;

#define O(field) offsetof(mb_flags, field)
static const nb_flag FLAGS[] = {
    {"threads", NB_F_INT, O(threads), 1, 64, "N", "2", "threads accounting at once", 0, NULL, NULL},
    {"requests", NB_F_INT, O(requests), 1, 1000000000, "N", "5000000", "requests per thread", 0,
     NULL, NULL},
};
#undef O

static int n_req;

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < n_req; i++) {
        srv_metrics_begin();
        srv_metrics_end(SRV_EP_RECOMMEND, 200, 0.002);
    }
    return NULL;
}

int main(int argc, char **argv) {
    mb_flags f = {2, 5000000};
    int ex = nb_flags_main("nb-metricsbench", "usage: nb-metricsbench [--threads N] [--requests N]\n",
                           FLAGS, NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    n_req = f.requests;
    pthread_t *t = nb_xcalloc((size_t)f.threads, sizeof *t);
    double t0 = nb_now();
    for (int i = 0; i < f.threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < f.threads; i++) pthread_join(t[i], NULL);
    double wall = nb_now() - t0;
    srv_metrics_model("214ece40", 1.7e9);
    size_t len = 0;
    int reps = 1000;
    double t1 = nb_now();
    for (int i = 0; i < reps; i++) free(srv_metrics_render(&len));
    double render = (nb_now() - t1) / reps;
    printf("%d threads x %d requests: %.1f ns per request's accounting (begin + end, wall time "
           "per thread); /metrics exposition %.1f us (%zu bytes)\n",
           f.threads, f.requests, wall * 1e9 / f.requests, render * 1e6, len);
    free(t);
    return 0;
}
