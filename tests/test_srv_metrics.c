/* test_srv_metrics.c -- server/srv_metrics.c on its own: exact counts from several threads
 * at once (the counters are lock-free atomics), the histogram's cumulative buckets, sum and
 * count, the "none" code, the endpoint label bound, the model info labels, the reload and
 * order counters, the memory gauges, and that --no-metrics (srv_metrics_enable(0)) counts
 * nothing. tests/metrics.sh checks the same text through a live nb-serve with a Prometheus
 * parser. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "srv_metrics.h"

#define N_THREADS 4
#define N_PER_THREAD 20000

/* The value of the sample line that starts with prefix (name and labels, up to the space),
 * or -1 when there is none. */
static double sample(const char *text, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return -1;
}

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < N_PER_THREAD; i++) {
        srv_metrics_begin();
        srv_metrics_end(SRV_EP_RECOMMEND, 200, 0.003);
    }
    return NULL;
}

static int test_endpoints(void) {
    T_ASSERT(srv_metrics_endpoint("/recommend") == SRV_EP_RECOMMEND, "recommend");
    T_ASSERT(srv_metrics_endpoint("/openapi.json") == SRV_EP_OPENAPI, "openapi");
    T_ASSERT(srv_metrics_endpoint("/admin/reload") == SRV_EP_RELOAD, "reload");
    T_ASSERT(srv_metrics_endpoint("/recommend/") == SRV_EP_OTHER, "a near miss is other");
    T_ASSERT(srv_metrics_endpoint("/x\\x0a") == SRV_EP_OTHER, "unknown path");
    T_ASSERT(strcmp(srv_metrics_endpoint_name(SRV_EP_OTHER), "other") == 0, "other's label");
    T_ASSERT(strcmp(srv_metrics_endpoint_name(99), "other") == 0, "out of range");
    return T_PASS;
}

static int test_concurrent_counts(void) {
    srv_metrics_reset();
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) srv_metrics_begin(); /* the last one stays in flight */
    srv_metrics_end(SRV_EP_OTHER, 404, 0.0001);
    srv_metrics_end(SRV_EP_HEALTH, 0, 20.0); /* no response, past the last bucket */
    size_t len;
    char *m = srv_metrics_render(&len);
    double want = N_THREADS * N_PER_THREAD;
    T_ASSERT(strlen(m) == len, "length %zu vs %zu", strlen(m), len);
    double got = sample(m, "nb_http_requests_total{endpoint=\"/recommend\",code=\"200\"}");
    T_ASSERT(got == want, "recommend 200: %g, want %g", got, want);
    T_ASSERT(sample(m, "nb_http_requests_total{endpoint=\"other\",code=\"404\"}") == 1, "404");
    T_ASSERT(sample(m, "nb_http_requests_total{endpoint=\"/health\",code=\"none\"}") == 1,
             "no response");
    T_ASSERT(sample(m, "nb_http_requests_in_flight") == 1, "in flight");
    const char *h = "nb_http_request_duration_seconds_bucket{endpoint=\"/recommend\",le=";
    char key[160];
    snprintf(key, sizeof key, "%s\"0.0025\"}", h);
    T_ASSERT(sample(m, key) == 0, "0.003 s is not <= 0.0025: %g", sample(m, key));
    snprintf(key, sizeof key, "%s\"0.005\"}", h);
    T_ASSERT(sample(m, key) == want, "<= 0.005: %g", sample(m, key));
    snprintf(key, sizeof key, "%s\"+Inf\"}", h);
    T_ASSERT(sample(m, key) == want, "+Inf: %g", sample(m, key));
    double sum = sample(m, "nb_http_request_duration_seconds_sum{endpoint=\"/recommend\"}");
    T_ASSERT(sum > want * 0.003 - 1e-6 && sum < want * 0.003 + 1e-6, "sum %g", sum);
    T_ASSERT(sample(m, "nb_http_request_duration_seconds_count{endpoint=\"/recommend\"}") == want,
             "count");
    T_ASSERT(sample(m, "nb_http_request_duration_seconds_bucket{endpoint=\"/health\",le=\"10\"}") ==
                     0 &&
                 sample(m, "nb_http_request_duration_seconds_bucket{endpoint=\"/health\",le="
                           "\"+Inf\"}") == 1,
             "a 20 s request is only in +Inf");
    T_ASSERT(!strstr(m, "endpoint=\"/metrics\""), "endpoints without requests are left out");
    T_ASSERT(strstr(m, "# TYPE nb_http_request_duration_seconds histogram\n"), "TYPE line");
    free(m);
    return T_PASS;
}

static int test_model_reload_orders_memory(void) {
    srv_metrics_reset();
    size_t len;
    char *m = srv_metrics_render(&len);
    T_ASSERT(!strstr(m, "nb_model_info"), "no info line before a model is set");
    free(m);
    srv_metrics_model("214ece40", 1700000000.25);
    srv_metrics_reload(1);
    srv_metrics_reload(0);
    srv_metrics_reload(0);
    for (int i = 0; i < 3; i++) srv_metrics_order();
    m = srv_metrics_render(&len);
    T_ASSERT(sample(m, "nb_model_info{checksum=\"214ece40\",loaded_at=\"2023-11-14T22:13:20Z\"}") ==
                 1,
             "info line: %s", strstr(m, "nb_model_info{") ? strstr(m, "nb_model_info{") : m);
    T_ASSERT(sample(m, "nb_model_loaded_timestamp_seconds") == 1700000000.25, "load time");
    T_ASSERT(sample(m, "nb_model_reloads_total") == 1, "reloads");
    T_ASSERT(sample(m, "nb_model_reload_failures_total") == 2, "failed reloads");
    T_ASSERT(sample(m, "nb_orders_ingested_total") == 3, "orders");
    double rss = sample(m, "process_resident_memory_bytes");
    double vsz = sample(m, "process_virtual_memory_bytes");
    T_ASSERT(rss > 1e5 && vsz >= rss, "rss %g, vsz %g", rss, vsz);
    free(m);
    return T_PASS;
}

static int test_disabled(void) {
    srv_metrics_reset();
    srv_metrics_enable(0);
    T_ASSERT(!srv_metrics_enabled(), "off");
    srv_metrics_begin();
    srv_metrics_end(SRV_EP_RECOMMEND, 200, 0.001);
    srv_metrics_enable(1);
    size_t len;
    char *m = srv_metrics_render(&len);
    T_ASSERT(sample(m, "nb_http_requests_total{endpoint=\"/recommend\",code=\"200\"}") == -1,
             "nothing counted while off");
    T_ASSERT(sample(m, "nb_http_requests_in_flight") == 0, "in flight");
    free(m);
    return T_PASS;
}

int main(void) {
    T_RUN(test_endpoints);
    T_RUN(test_concurrent_counts);
    T_RUN(test_model_reload_orders_memory);
    T_RUN(test_disabled);
    return t_summary();
}
