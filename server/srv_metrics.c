/* srv_metrics.c -- the counters behind GET /metrics (see srv_metrics.h).
 *
 * The request counter is a table [endpoint][status 0..599] of atomics: indexing by the
 * status itself needs no lookup on the request path, and 7 x 600 x 8 bytes is 33 KiB. The
 * histogram keeps per-bucket (not cumulative) counts, so a request increments one bucket;
 * the exposition adds them up. The latency sum is kept in whole microseconds (an atomic
 * integer: C11 has no portable atomic add for double).
 */
#include "srv_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nb_err.h"
#include "srv_json.h"

#define N_STATUS 600

static const char *const ep_names[SRV_EP_N] = {"/recommend",   "/health", "/metrics",
                                                "/openapi.json", "/orders", "/admin/reload",
                                                "other"};

/* Upper bounds of the latency buckets in seconds (+Inf is the last, implicit bucket): from
 * a /health answer (~0.1 ms) to a request stuck behind a slow store. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,   5,     10};
#define N_BUCKET ((int)(sizeof bucket_le / sizeof bucket_le[0]) + 1)

static struct {
    int off; /* set before any server thread exists (srv_metrics_enable) */
    atomic_long in_flight;
    atomic_ulong requests[SRV_EP_N][N_STATUS];
    atomic_ulong bucket[SRV_EP_N][N_BUCKET];
    atomic_ulong sum_us[SRV_EP_N];
    atomic_ulong reloads, reload_failures, orders;
    atomic_ulong ranked[2]; /* [0] live, [1] precomputed */
    pthread_mutex_t model_lock; /* guards checksum and loaded_at */
    char checksum[16];
    double loaded_at;
} M = {.model_lock = PTHREAD_MUTEX_INITIALIZER};

void srv_metrics_enable(int on) { M.off = !on; }
int srv_metrics_enabled(void) { return !M.off; }

int srv_metrics_endpoint(const char *path) {
    for (int i = 0; i < SRV_EP_OTHER; i++)
        if (strcmp(path, ep_names[i]) == 0) return i;
    return SRV_EP_OTHER;
}

const char *srv_metrics_endpoint_name(int ep) {
    return ep >= 0 && ep < SRV_EP_N ? ep_names[ep] : ep_names[SRV_EP_OTHER];
}

void srv_metrics_begin(void) {
    if (M.off) return;
    atomic_fetch_add_explicit(&M.in_flight, 1, memory_order_relaxed);
}

void srv_metrics_end(int ep, int status, double seconds) {
    if (M.off) return;
    if (ep < 0 || ep >= SRV_EP_N) ep = SRV_EP_OTHER;
    if (status < 100 || status >= N_STATUS) status = 0;
    int b = 0;
    while (b < N_BUCKET - 1 && seconds > bucket_le[b]) b++;
    unsigned long us = seconds > 0 ? (unsigned long)(seconds * 1e6 + 0.5) : 0;
    atomic_fetch_add_explicit(&M.requests[ep][status], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&M.bucket[ep][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&M.sum_us[ep], us, memory_order_relaxed);
    atomic_fetch_sub_explicit(&M.in_flight, 1, memory_order_relaxed);
}

void srv_metrics_model(const char *checksum, double loaded_at) {
    pthread_mutex_lock(&M.model_lock);
    snprintf(M.checksum, sizeof M.checksum, "%s", checksum);
    M.loaded_at = loaded_at;
    pthread_mutex_unlock(&M.model_lock);
}

void srv_metrics_reload(int ok) {
    atomic_fetch_add_explicit(ok ? &M.reloads : &M.reload_failures, 1, memory_order_relaxed);
}

void srv_metrics_order(void) { atomic_fetch_add_explicit(&M.orders, 1, memory_order_relaxed); }

void srv_metrics_ranking(int precomputed) {
    if (M.off) return;
    atomic_fetch_add_explicit(&M.ranked[precomputed != 0], 1, memory_order_relaxed);
}

/* Resident and virtual size from /proc/self/statm (pages). Returns 0 and both in bytes, or
 * -1 when the file cannot be read (not Linux): the gauges are then left out. */
static int statm(double *rss, double *vsz) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    unsigned long size = 0, res = 0;
    int n = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    if (n != 2) return -1;
    double page = (double)sysconf(_SC_PAGESIZE);
    *rss = (double)res * page;
    *vsz = (double)size * page;
    return 0;
}

/* Appends a HELP and a TYPE line. */
static void head(srv_buf *b, const char *name, const char *type, const char *help) {
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends the histogram of endpoint ep (nothing when it has no request yet). */
static void histogram(srv_buf *b, int ep) {
    unsigned long n[N_BUCKET], total = 0;
    for (int i = 0; i < N_BUCKET; i++)
        n[i] = atomic_load_explicit(&M.bucket[ep][i], memory_order_relaxed);
    for (int i = 0; i < N_BUCKET; i++) total += n[i];
    if (total == 0) return;
    const char *e = ep_names[ep];
    unsigned long cum = 0;
    for (int i = 0; i < N_BUCKET - 1; i++) {
        cum += n[i];
        srv_buf_printf(b, "nb_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %lu\n",
                       e, bucket_le[i], cum);
    }
    srv_buf_printf(b, "nb_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %lu\n",
                   e, total);
    srv_buf_printf(b, "nb_http_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", e,
                   atomic_load_explicit(&M.sum_us[ep], memory_order_relaxed) * 1e-6);
    srv_buf_printf(b, "nb_http_request_duration_seconds_count{endpoint=\"%s\"} %lu\n", e, total);
}

/* See srv_metrics.h. Counters are read one by one while requests go on: each value is
 * exact at the moment it is read; a histogram's _count is the sum of its buckets as read. */
char *srv_metrics_render(size_t *len) {
    srv_buf b = {0};
    head(&b, "nb_http_requests_total", "counter",
         "HTTP requests answered, by endpoint and status code (code \"none\": ended without a "
         "response).");
    for (int ep = 0; ep < SRV_EP_N; ep++) {
        for (int s = 0; s < N_STATUS; s++) {
            unsigned long v = atomic_load_explicit(&M.requests[ep][s], memory_order_relaxed);
            if (v == 0) continue;
            if (s == 0)
                srv_buf_printf(&b, "nb_http_requests_total{endpoint=\"%s\",code=\"none\"} %lu\n",
                               ep_names[ep], v);
            else
                srv_buf_printf(&b, "nb_http_requests_total{endpoint=\"%s\",code=\"%d\"} %lu\n",
                               ep_names[ep], s, v);
        }
    }
    head(&b, "nb_http_request_duration_seconds", "histogram",
         "Time from a request's headers to its completion, by endpoint.");
    for (int ep = 0; ep < SRV_EP_N; ep++) histogram(&b, ep);
    head(&b, "nb_http_requests_in_flight", "gauge",
         "Requests received and not yet completed (this one included).");
    srv_buf_printf(&b, "nb_http_requests_in_flight %ld\n",
                   atomic_load_explicit(&M.in_flight, memory_order_relaxed));

    char ck[16];
    double at;
    pthread_mutex_lock(&M.model_lock);
    memcpy(ck, M.checksum, sizeof ck);
    at = M.loaded_at;
    pthread_mutex_unlock(&M.model_lock);
    if (ck[0]) {
        char iso[32];
        time_t t = (time_t)at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        head(&b, "nb_model_info", "gauge",
             "The model being served: weight-file checksum and load time (UTC) as labels.");
        /* the checksum is hex and the time is digits: nothing to escape in the labels */
        srv_buf_printf(&b, "nb_model_info{checksum=\"%s\",loaded_at=\"%s\"} 1\n", ck, iso);
        head(&b, "nb_model_loaded_timestamp_seconds", "gauge",
             "Unix time at which the model being served was loaded.");
        srv_buf_printf(&b, "nb_model_loaded_timestamp_seconds %.3f\n", at);
    }
    head(&b, "nb_model_reloads_total", "counter", "Model reloads that swapped a new model in.");
    srv_buf_printf(&b, "nb_model_reloads_total %lu\n",
                   atomic_load_explicit(&M.reloads, memory_order_relaxed));
    head(&b, "nb_model_reload_failures_total", "counter",
         "Model reloads refused (validation failed; the old model kept serving).");
    srv_buf_printf(&b, "nb_model_reload_failures_total %lu\n",
                   atomic_load_explicit(&M.reload_failures, memory_order_relaxed));
    head(&b, "nb_orders_ingested_total", "counter", "Orders written to the store by POST /orders.");
    srv_buf_printf(&b, "nb_orders_ingested_total %lu\n",
                   atomic_load_explicit(&M.orders, memory_order_relaxed));
    head(&b, "nb_recommendations_total", "counter",
         "Recommendations answered, by how the ranking was obtained: precomputed by nb-train "
         "(user_rankings) or ranked live.");
    srv_buf_printf(&b, "nb_recommendations_total{ranking=\"precomputed\"} %lu\n",
                   atomic_load_explicit(&M.ranked[1], memory_order_relaxed));
    srv_buf_printf(&b, "nb_recommendations_total{ranking=\"live\"} %lu\n",
                   atomic_load_explicit(&M.ranked[0], memory_order_relaxed));

    double rss, vsz;
    if (statm(&rss, &vsz) == 0) {
        head(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        srv_buf_printf(&b, "process_resident_memory_bytes %.0f\n", rss);
        head(&b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        srv_buf_printf(&b, "process_virtual_memory_bytes %.0f\n", vsz);
    }
    return srv_buf_take(&b, len);
}

void srv_metrics_reset(void) {
    atomic_store(&M.in_flight, 0);
    for (int ep = 0; ep < SRV_EP_N; ep++) {
        for (int s = 0; s < N_STATUS; s++) atomic_store(&M.requests[ep][s], 0);
        for (int i = 0; i < N_BUCKET; i++) atomic_store(&M.bucket[ep][i], 0);
        atomic_store(&M.sum_us[ep], 0);
    }
    atomic_store(&M.reloads, 0);
    atomic_store(&M.reload_failures, 0);
    atomic_store(&M.orders, 0);
    atomic_store(&M.ranked[0], 0);
    atomic_store(&M.ranked[1], 0);
    pthread_mutex_lock(&M.model_lock);
    M.checksum[0] = 0;
    M.loaded_at = 0;
    pthread_mutex_unlock(&M.model_lock);
}
