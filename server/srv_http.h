/* srv_http.h -- the HTTP layer of nb-serve on libmicrohttpd: routing, request state, body
 * reading with a size cap, content-type and method checks, JSON error responses, the access
 * log and a graceful stop. It knows nothing about models: /recommend and /health are
 * answered by the handlers it is given, which run concurrently on MHD's worker threads.
 *
 * Routes:  POST /recommend  -> handlers.recommend (after srv_parse_request)
 *          GET|HEAD /health -> handlers.health
 * Errors decided here: 400 (srv_parse_request), 404 (path), 405 + Allow (method), 413 (body
 * over opts.body_max: from Content-Length before reading, or as soon as a chunked body
 * passes it), 415 (Content-Type not JSON), 500 (a handler failed to produce a body).
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "srv_json.h"

#define SRV_BODY_MAX (64 * 1024)

typedef struct {
    /* Each returns an HTTP status and puts a malloc'd JSON body in *body (*len bytes); the
     * HTTP layer frees it. Called from several threads at once. */
    int (*recommend)(void *ctx, const srv_request *rq, char **body, size_t *len);
    int (*health)(void *ctx, char **body, size_t *len);
    void *ctx;
    int default_basket_mode;   /* SRV_BASKET_* when the request names none */
} srv_handlers;

typedef struct {
    const char *bind;       /* numeric address or host name; default "127.0.0.1" */
    int port;               /* 0 = any free port (see srv_http_port) */
    int threads;            /* worker threads (MHD thread pool), >= 1 */
    int quiet;              /* no access log */
    unsigned conn_limit;    /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned timeout_s;     /* MHD_OPTION_CONNECTION_TIMEOUT */
    size_t conn_memory;     /* MHD_OPTION_CONNECTION_MEMORY_LIMIT (bytes) */
    size_t body_max;        /* request body cap, SRV_BODY_MAX by default */
} srv_http_opts;

/* Sets the defaults: 127.0.0.1:8080, 2 threads, 1024 connections, 30 s, 64 KiB. */
void srv_http_opts_default(srv_http_opts *o);

typedef struct srv_http srv_http;

/* Starts listening (the caller must have blocked SIGTERM/SIGINT/SIGPIPE in this thread
 * first if it wants the workers to inherit that mask). hd is copied. Returns NB_OK and *h,
 * or NB_EINVAL (bad address) / NB_EIO (cannot bind: message names address and port). */
int srv_http_start(srv_http **h, const srv_http_opts *o, const srv_handlers *hd, char *err,
                   size_t errlen);
/* The port actually bound. */
int srv_http_port(const srv_http *h);
/* Graceful stop: stop accepting, wait up to grace_s for the requests in flight to complete,
 * then close every connection, join the workers and free h. */
void srv_http_stop(srv_http *h, double grace_s);

#endif
