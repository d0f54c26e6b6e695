/* srv_http.c -- the HTTP layer (see srv_http.h).
 *
 * Structure as in libmicrohttpd's largepost.c example: the access handler is called first
 * with only the headers (we create the per-request state and make every decision that the
 * headers allow), then once per body chunk (appended to the state's buffer, or refused past
 * the cap), then a final time with no data (parse, dispatch, queue the response). The state
 * is freed by the completion callback, which also writes the access-log line.
 */
#include "srv_http.h"

#include <assert.h>
#include <microhttpd.h>
#include <stdint.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nb_err.h"

/* After a chunked body passes the cap we keep reading (MHD cannot answer mid-body) but
 * drop the connection once this much more has arrived. */
#define SRV_DISCARD_MAX (1024 * 1024)

enum { ROUTE_NONE, ROUTE_RECOMMEND, ROUTE_HEALTH };

struct srv_http {
    struct MHD_Daemon *d;
    srv_handlers hd;
    srv_http_opts o;
    int port;
    atomic_int in_flight;   /* requests between first callback and completion */
};

/* Per-request state, created on the first callback, freed in request_completed. */
typedef struct {
    double t0;
    int route;
    int status;             /* the status we queued (0: none yet) */
    int early;              /* an error decided from the headers: status, code, message */
    const char *ecode;
    char emsg[160];
    const char *allow;      /* Allow header for a 405 */
    char *body;             /* the request body so far (owned) */
    size_t discarded;       /* bytes dropped after the cap was passed */
    size_t len, cap;
    char method[12];
    char path[96];
} req_state;

void srv_http_opts_default(srv_http_opts *o) {
    memset(o, 0, sizeof *o);
    o->bind = "127.0.0.1";
    o->port = 8080;
    o->threads = 2;
    o->conn_limit = 1024;
    o->timeout_s = 30;
    o->conn_memory = 64 * 1024;
    o->body_max = SRV_BODY_MAX;
}

/* Queues body[len] (ownership passes to MHD) with status and a JSON content type; extra
 * headers: Allow (allow != NULL) and "Connection: close" (close_conn). Returns MHD's result;
 * on failure the body is freed here. */
static enum MHD_Result send_json(struct MHD_Connection *c, req_state *st, int status,
                                 char *body, size_t len, const char *allow, int close_conn) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (close_conn) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) st->status = status;
    return ret;
}

/* Queues {"error": {code, message}} with status; see send_json for the rest. */
static enum MHD_Result send_error(struct MHD_Connection *c, req_state *st, int status,
                                  const char *code, const char *msg, const char *allow,
                                  int close_conn) {
    size_t len;
    char *body = srv_error_json(code, msg, &len);
    return send_json(c, st, status, body, len, allow, close_conn);
}

/* Records an error decided from the headers alone. */
static void set_early(req_state *st, int status, const char *code, const char *msg,
                      const char *allow) {
    st->early = status;
    st->ecode = code;
    snprintf(st->emsg, sizeof st->emsg, "%s", msg);
    st->allow = allow;
}

/* First callback: route, method, content type and declared length. */
static void classify(srv_http *h, struct MHD_Connection *c, req_state *st, const char *url,
                     const char *method) {
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                 strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, "/recommend") == 0) {
        st->route = ROUTE_RECOMMEND;
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            set_early(st, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                      "/recommend accepts POST only", "POST");
            return;
        }
    } else if (strcmp(url, "/health") == 0) {
        st->route = ROUTE_HEALTH;
        if (!is_get) {
            set_early(st, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                      "/health accepts GET and HEAD only", "GET, HEAD");
        }
        return;
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "no such path: %.100s (try POST /recommend, GET /health)",
                 url);
        set_early(st, MHD_HTTP_NOT_FOUND, "not_found", msg, NULL);
        return;
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!srv_content_type_is_json(ct)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Content-Type must be application/json, got %.80s",
                 ct ? ct : "none");
        set_early(st, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", msg, NULL);
        return;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > h->o.body_max) {
            char msg[160];
            snprintf(msg, sizeof msg, "body of %llu bytes exceeds the limit of %zu bytes", n,
                     h->o.body_max);
            set_early(st, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", msg, NULL);
        }
    }
}

/* 1 when the request announces a body (so an early answer should not wait for it). */
static int has_body(struct MHD_Connection *c) {
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > 0) return 1;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* Final callback of a valid request: parse and dispatch to the handlers. */
static enum MHD_Result dispatch(srv_http *h, struct MHD_Connection *c, req_state *st) {
    char *body = NULL;
    size_t len = 0;
    int status;
    if (st->route == ROUTE_HEALTH) {
        status = h->hd.health(h->hd.ctx, &body, &len);
    } else {
        srv_request rq;
        const char *code;
        char err[NB_ERRLEN];
        if (srv_parse_request(st->body ? st->body : "", st->len, h->hd.default_basket_mode,
                              &rq, &code, err, sizeof err) != NB_OK)
            return send_error(c, st, MHD_HTTP_BAD_REQUEST, code, err, NULL, 0);
        status = h->hd.recommend(h->hd.ctx, &rq, &body, &len);
    }
    if (!body) {
        fprintf(stderr, "nb-serve: internal error: %s %s produced no response body\n",
                st->method, st->path);
        return send_error(c, st, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                          "internal error (logged)", NULL, 0);
    }
    return send_json(c, st, status, body, len, NULL, 0);
}

/* MHD's access handler, called for the headers, each body chunk and the end of a request
 * (see the top of the file). Returns MHD_YES, or MHD_NO to drop the connection (allocation
 * failure, or a client streaming far past the body cap). *con_cls owns the req_state. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    srv_http *h = cls;
    req_state *st = *con_cls;
    (void)version;

    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        st->t0 = nb_now();
        snprintf(st->method, sizeof st->method, "%s", method);
        snprintf(st->path, sizeof st->path, "%s", url);
        atomic_fetch_add(&h->in_flight, 1);
        *con_cls = st;
        classify(h, c, st, url, method);
        /* A 413 must be answered before the body is read; any other header-decided error is
         * answered now too when a body follows, so that we do not read what we will ignore
         * (MHD then closes the connection after the response). */
        if (st->early && (st->early == MHD_HTTP_CONTENT_TOO_LARGE || has_body(c)))
            return send_error(c, st, st->early, st->ecode, st->emsg, st->allow, 1);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->early == MHD_HTTP_CONTENT_TOO_LARGE) {
            /* Past the cap already: discard, but not forever. */
            st->discarded += n;
            if (st->discarded > SRV_DISCARD_MAX) {
                fprintf(stderr, "nb-serve: %s %s: dropping the connection after %zu bytes "
                        "past the body limit\n", st->method, st->path, st->discarded);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (st->early) return MHD_YES;           /* a bodiless error answered at the end */
        if (st->len + n > h->o.body_max) {
            /* A chunked body past the cap: decided now, and the buffer is released at once.
             * MHD 0.9.75 accepts a response only after the headers or after the whole body
             * (MHD_queue_response checks the connection state), so the 413 is sent when the
             * client finishes its body; what arrives until then is counted and dropped, and a
             * client that keeps sending past SRV_DISCARD_MAX is disconnected. */
            char msg[160];
            snprintf(msg, sizeof msg, "body exceeds the limit of %zu bytes", h->o.body_max);
            set_early(st, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", msg, NULL);
            st->discarded = st->len + n;
            free(st->body);
            st->body = NULL;
            st->len = st->cap = 0;
            return MHD_YES;
        }
        if (st->len + n > st->cap) {
            size_t cap = st->cap ? st->cap : 1024;
            while (cap < st->len + n) cap *= 2;
            char *p = realloc(st->body, cap + 1);
            if (!p) return MHD_NO;
            st->body = p;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        return MHD_YES;
    }

    if (st->early)
        return send_error(c, st, st->early, st->ecode, st->emsg, st->allow,
                          st->early == MHD_HTTP_CONTENT_TOO_LARGE);
    return dispatch(h, c, st);
}

/* Completion callback: the access-log line, then the state is freed. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    srv_http *h = cls;
    req_state *st = *con_cls;
    (void)c;
    if (!st) return;
    if (!h->o.quiet) {
        char line[256];
        long long us = (long long)((nb_now() - st->t0) * 1e6);
        int n;
        if (st->status)
            n = snprintf(line, sizeof line, "%s %s %d %lldus%s\n", st->method, st->path,
                         st->status, us, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                         : " (connection closed early)");
        else
            n = snprintf(line, sizeof line, "%s %s - %lldus (no response: terminated, code %d)\n",
                         st->method, st->path, us, (int)toe);
        /* One write per line, so lines from different workers never interleave. */
        if (n > 0) {
            ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
            (void)w;
        }
    }
    free(st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&h->in_flight, 1);
}

/* See srv_http.h. On success *out owns the daemon and a copy of o and hd. */
int srv_http_start(srv_http **out, const srv_http_opts *o, const srv_handlers *hd, char *err,
                   size_t errlen) {
    int rc = NB_OK;
    struct addrinfo hints = {0}, *ai = NULL;
    srv_http *h = NULL;
    char portstr[16];

    *out = NULL;
    if (o->port < 0 || o->port > 65535) {
        rc = nb_err(err, errlen, NB_EINVAL, "--port %d: must be 0..65535", o->port);
        goto done;
    }
    if (o->threads < 1) {
        rc = nb_err(err, errlen, NB_EINVAL, "--threads %d: must be >= 1", o->threads);
        goto done;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", o->port);
    int gai = getaddrinfo(o->bind, portstr, &hints, &ai);
    if (gai != 0) {
        rc = nb_err(err, errlen, NB_EINVAL, "--bind %s: %s", o->bind, gai_strerror(gai));
        goto done;
    }
    h = nb_xcalloc(1, sizeof *h);
    h->hd = *hd;
    h->o = *o;
    atomic_init(&h->in_flight, 0);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* An option array, so that the pool size is passed only when there is a pool (MHD
     * warns about a pool size of 0 or 1). */
    struct MHD_OptionItem opts[8];
    int no = 0;
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    if (o->threads > 1)
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, o->threads, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, o->conn_limit, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                         (intptr_t)o->conn_memory, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                         (intptr_t)on_completed, h};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    assert(no <= (int)(sizeof opts / sizeof opts[0]));
    h->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, h,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->d) {
        rc = nb_err(err, errlen, NB_EIO, "cannot listen on %s port %d (in use, or not a local "
                    "address?)", o->bind, o->port);
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : o->port;
    *out = h;
    h = NULL;
done:
    if (ai) freeaddrinfo(ai);
    free(h);
    return rc;
}

int srv_http_port(const srv_http *h) { return h->port; }

/* See srv_http.h. in_flight counts requests from their first callback to their completion
 * callback, so a request whose body is still arriving is waited for too. */
void srv_http_stop(srv_http *h, double grace_s) {
    if (!h) return;
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    double t_end = nb_now() + grace_s;
    while (atomic_load(&h->in_flight) > 0 && nb_now() < t_end) usleep(10000);
    MHD_stop_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    free(h);
}
