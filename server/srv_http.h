/* srv_http.h -- the HTTP layer of nb-serve on libmicrohttpd: routing, request state, body
 * reading with a size cap, content-type and method checks, JSON error responses, the access
 * log and a graceful stop. It knows nothing about models: /recommend and /health are
 * answered by the handlers it is given, which run concurrently on MHD's worker threads.
 *
 * Routes:  POST /recommend  -> handlers.recommend (after srv_parse_request)
 *          GET|HEAD /health -> handlers.health
 *          GET|HEAD /metrics -> srv_metrics_render (not with srv_metrics_enable(0))
 *          GET|HEAD /openapi.json -> srv_openapi_json (docs/openapi.json)
 *          POST /orders     -> handlers.orders (the raw body), token-protected
 *          POST /admin/reload -> handlers.reload (the raw body, may be empty: then no
 *                              Content-Type is needed), token-protected
 * Token-protected routes exist only when handlers.auth is set (nb-serve --admin-token-file):
 * without it they answer 404 like any unknown path. With it, after the method (405) and
 * before anything else about the request (content type, body): 401 + WWW-Authenticate when the Authorization header is missing
 * or not "Bearer <token>", 403 for another token (srv_auth_check). No header value is ever
 * logged (the access log has method, path, status and time only).
 * Errors decided here: 400 (srv_parse_request; two Content-Length headers; Content-Length
 * with Transfer-Encoding), 404 (path), 405 + Allow (method), 413 (body over opts.body_max:
 * from Content-Length before reading, or as soon as a chunked body passes it), 415
 * (Content-Type not JSON), 501 (a Transfer-Encoding other than chunked), 500 (a handler
 * failed to produce a body).
 *
 * Slow clients: a connection must deliver a request's headers within header_timeout_s of
 * its accept (or of the end of its previous request: idle keep-alive time counts) and the
 * body within body_timeout_s of the headers, or it is shut down; at most per_ip_limit
 * connections per client address; and when more than conn_limit - reserve connections are
 * open, each new connection evicts the oldest connection that has waited at least 0.5 s for
 * request headers, so that /health and new clients are answered during a slowloris.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "srv_auth.h"
#include "srv_json.h"

#define SRV_BODY_MAX (64 * 1024)

typedef struct {
    /* Each returns an HTTP status and puts a malloc'd JSON body in *body (*len bytes); the
     * HTTP layer frees it. Called from several threads at once. */
    int (*recommend)(void *ctx, const srv_request *rq, char **body, size_t *len);
    int (*health)(void *ctx, char **body, size_t *len);
    void *ctx;
    int default_basket_mode; /* SRV_BASKET_* when the request names none */
    /* POST /orders (server/srv_orders.h): the raw body in, status and body out as above,
     * called with orders_ctx. */
    int (*orders)(void *ctx, const char *body, size_t len, char **out, size_t *outlen);
    void *orders_ctx;
    /* POST /admin/reload (server/srv_admin.h), called with ctx like recommend and health. */
    int (*reload)(void *ctx, const char *body, size_t len, char **out, size_t *outlen);
    const srv_auth *auth; /* the admin token (borrowed); NULL: token-protected routes off */
} srv_handlers;

typedef struct {
    const char *bind;        /* numeric address or host name; default "127.0.0.1" */
    int port;                /* 0 = any free port (see srv_http_port) */
    int threads;             /* worker threads (MHD thread pool), >= 1 */
    int quiet;               /* no access log */
    unsigned conn_limit;     /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned timeout_s;      /* MHD_OPTION_CONNECTION_TIMEOUT */
    size_t conn_memory;      /* MHD_OPTION_CONNECTION_MEMORY_LIMIT (bytes) */
    size_t body_max;         /* request body cap, SRV_BODY_MAX by default */
    unsigned per_ip_limit;   /* MHD_OPTION_PER_IP_CONNECTION_LIMIT (0: none) */
    unsigned reserve;        /* connections kept free by evicting slow header senders */
    double header_timeout_s; /* headers complete within this (0: no deadline) */
    double body_timeout_s;   /* body complete within this of the headers (0: none) */
} srv_http_opts;

/* Sets the defaults: 127.0.0.1:8080, 2 threads, 1024 connections (64 of them a reserve, 128
 * per client address), 30 s idle timeout, 10 s for the headers, 30 s for the body, 64 KiB. */
void srv_http_opts_default(srv_http_opts *o);

typedef struct srv_http srv_http;

/* Starts listening (the caller must have blocked SIGTERM/SIGINT/SIGPIPE in this thread
 * first if it wants the workers to inherit that mask). hd is copied. Returns NB_OK and *h,
 * or NB_EINVAL (bad address) / NB_EIO (cannot bind: message names address and port). */
int srv_http_start(srv_http **h, const srv_http_opts *o, const srv_handlers *hd, char *err,
                   size_t errlen);
/* The port actually bound. */
int srv_http_port(const srv_http *h);
/* Connections shut down so far for a missed header / body deadline, and evicted to keep the
 * reserve (for tests and the stop line). */
void srv_http_counters(srv_http *h, long *header_timeouts, long *body_timeouts, long *evicted);
/* Graceful stop: every response from now on carries "Connection: close"; stop accepting
 * (connections already waiting in the kernel's queue are still taken and served); wait up to
 * grace_s until no request is in flight and no connection has unread bytes; then close
 * every connection, join the workers and free h. */
void srv_http_stop(srv_http *h, double grace_s);

#endif
