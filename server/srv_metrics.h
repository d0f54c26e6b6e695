/* srv_metrics.h -- nb-serve's metrics, served at GET /metrics in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * One set per process (nb-serve runs one server): the HTTP layer, the reload code and the
 * order ingestion call these functions from any thread without passing a handle around.
 * Everything a request touches is a C11 atomic with relaxed ordering (a counter needs no
 * ordering against other memory): no lock on the request path, so /recommend throughput
 * does not notice them (bench/RESULTS.md, "Metrics cost"). Only the model's info labels,
 * written at a (re)load and read by /metrics, are under a mutex.
 *
 * Names (docs in README.md):
 *   nb_http_requests_total{endpoint,code}            counter; code "none": no response
 *   nb_http_request_duration_seconds{endpoint}       histogram, first callback to completion
 *   nb_http_requests_in_flight                       gauge
 *   nb_model_info{checksum,loaded_at}                1 for the model being served
 *   nb_model_loaded_timestamp_seconds                gauge, Unix time of that load
 *   nb_model_reloads_total, nb_model_reload_failures_total   counters
 *   nb_orders_ingested_total                         counter
 *   nb_recommendations_total{ranking}                counter; ranking "precomputed" (read
 *                                                    from user_rankings) or "live"
 *   process_resident_memory_bytes, process_virtual_memory_bytes   gauges (/proc/self/statm)
 * endpoint is the request path when it is one the server knows (SRV_EP_*), else "other",
 * so that the label set stays bounded whatever paths clients send.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

enum {
    SRV_EP_RECOMMEND,
    SRV_EP_HEALTH,
    SRV_EP_METRICS,
    SRV_EP_OPENAPI,
    SRV_EP_ORDERS,
    SRV_EP_RELOAD,
    SRV_EP_OTHER,
    SRV_EP_N
};

/* Turns the accounting on (the default) or off (nb-serve --no-metrics: begin/end return at
 * once and /metrics is not routed). Call before the HTTP layer starts its threads. */
void srv_metrics_enable(int on);
/* 1 when on. */
int srv_metrics_enabled(void);

/* SRV_EP_* of a request path ("/recommend" -> SRV_EP_RECOMMEND; unknown -> SRV_EP_OTHER). */
int srv_metrics_endpoint(const char *path);
/* The label of SRV_EP_* ep ("/recommend", ..., "other"). */
const char *srv_metrics_endpoint_name(int ep);

/* A request started (in flight + 1). */
void srv_metrics_begin(void);
/* The request that srv_metrics_begin counted ended: in flight - 1, one more request of
 * endpoint ep with HTTP status (0: ended without a response) taking seconds. */
void srv_metrics_end(int ep, int status, double seconds);

/* The model being served from now on: checksum ("%08x", copied, cut at 15 bytes) loaded at
 * Unix time loaded_at. Called at start-up and by every successful reload. */
void srv_metrics_model(const char *checksum, double loaded_at);
/* One reload attempt: ok 1 succeeded (the reload code calls srv_metrics_model too), 0 was
 * refused (the old model keeps serving). */
void srv_metrics_reload(int ok);
/* One order ingested (written to the store) by POST /orders; an idempotent retry that wrote
 * nothing is not counted. */
void srv_metrics_order(void);
/* One /recommend answered (200) from a precomputed ranking (precomputed 1) or ranked live. */
void srv_metrics_ranking(int precomputed);

/* The whole exposition as a malloc'd NUL-terminated text (the caller frees it; *len its
 * length). Never NULL (an allocation failure aborts, as the JSON writer does). */
char *srv_metrics_render(size_t *len);

/* Back to zero (counters, histograms, model info): for tests only, with no request in
 * flight. */
void srv_metrics_reset(void);

#endif
