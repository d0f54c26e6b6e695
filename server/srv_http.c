/* srv_http.c -- the HTTP layer (see srv_http.h).
 *
 * Structure as in libmicrohttpd's largepost.c example: the access handler is called first
 * with only the headers (we create the per-request state and make every decision that the
 * headers allow), then once per body chunk (appended to the state's buffer, or refused past
 * the cap), then a final time with no data (parse, dispatch, queue the response). The state
 * is freed by the completion callback, which also writes the access-log line.
 *
 * Beside MHD's connections we keep our own list (MHD_OPTION_NOTIFY_CONNECTION): each
 * connection's socket, phase and deadline. MHD 0.9.75 has only an idle timeout, which every
 * byte resets, so a watchdog thread enforces the header and body deadlines and the reserve
 * by shutdown(2) of the socket: MHD then reads EOF and closes the connection itself (the
 * descriptor stays MHD's, so it is never closed under it; the list lock is held from the
 * check to the shutdown, and the CLOSED notification, which removes the entry, takes it
 * too, before MHD closes the descriptor).
 */
#include "srv_http.h"

#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nb_err.h"
#include "srv_metrics.h"
#include "srv_openapi.h"

/* After a chunked body passes the cap we keep reading (MHD cannot answer mid-body) but
 * drop the connection once this much more has arrived: enough that a body of a few MB
 * still gets its 413, bounded so that nobody streams forever (the body deadline bounds the
 * time as well). */
#define SRV_DISCARD_MAX (4 * 1024 * 1024)
#define SRV_WATCH_PERIOD_S 0.1 /* how often the watchdog looks at the deadlines */
#define SRV_EVICT_MIN_S 0.5    /* a connection younger than this is never evicted */

enum {
    ROUTE_NONE,
    ROUTE_RECOMMEND,
    ROUTE_HEALTH,
    ROUTE_ORDERS,
    ROUTE_RELOAD,
    ROUTE_METRICS,
    ROUTE_OPENAPI
};
enum { PH_HEADERS, PH_BODY, PH_ANSWERED, PH_SHUT };

/* One open connection (its entry in the list, created and freed by on_connection). */
typedef struct srv_conn {
    struct srv_conn *prev, *next;
    int fd;
    int phase;       /* PH_*, under the list lock */
    int why_shut;    /* 1 header deadline, 2 body deadline, 3 evicted */
    double since;    /* start of the phase */
    double deadline; /* shut down when passed (0: none) */
} srv_conn;

struct srv_http {
    struct MHD_Daemon *d;
    srv_handlers hd;
    srv_http_opts o;
    int port;
    atomic_int in_flight;  /* requests between first callback and completion */
    atomic_int stopping;   /* set by srv_http_stop: every response closes its connection */
    pthread_mutex_t lock;  /* guards the connection list, the counters and quit */
    pthread_cond_t wake;   /* ends the watchdog's sleep at stop */
    srv_conn *head, *tail; /* oldest first */
    unsigned n_conns;
    long n_header_to, n_body_to, n_evicted;
    int quit, have_watchdog;
    pthread_t watchdog;
};

/* Per-request state, created on the first callback, freed in request_completed. */
typedef struct {
    double t0;
    int route;
    int status; /* the status we queued (0: none yet) */
    int early;  /* an error decided from the headers: status, code, message */
    const char *ecode;
    char emsg[224];
    const char *allow; /* Allow header for a 405 */
    char *body;        /* the request body so far (owned) */
    size_t discarded;  /* bytes dropped after the cap was passed */
    size_t len, cap;
    srv_http *h;
    srv_conn *conn;  /* the connection's entry (NULL if MHD gave none) */
    char method[16]; /* escaped (srv_escape_bytes): safe in a log line */
    char path[128];
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
    o->per_ip_limit = 128;
    o->reserve = 64;
    o->header_timeout_s = 10;
    o->body_timeout_s = 30;
}

/* ---- connections, deadlines, the reserve ------------------------------------------ */

/* Shuts conn's socket down (MHD then closes the connection); why: 1 header deadline, 2 body
 * deadline, 3 evicted. Caller holds h->lock. */
static void conn_shut(srv_http *h, srv_conn *cn, int why) {
    shutdown(cn->fd, SHUT_RDWR);
    cn->phase = PH_SHUT;
    cn->why_shut = why;
    cn->deadline = 0;
    if (why == 1)
        h->n_header_to++;
    else if (why == 2)
        h->n_body_to++;
    else
        h->n_evicted++;
}

/* Sets conn's phase and deadline (timeout_s 0: none) unless it was shut already. */
static void conn_phase(srv_http *h, srv_conn *cn, int phase, double timeout_s) {
    if (!cn) return;
    double now = nb_now();
    pthread_mutex_lock(&h->lock);
    if (cn->phase != PH_SHUT) {
        cn->phase = phase;
        cn->since = now;
        cn->deadline = timeout_s > 0 ? now + timeout_s : 0;
    }
    pthread_mutex_unlock(&h->lock);
}

/* MHD's connection notification: adds the connection to the list on start (evicting a slow
 * header sender when the reserve is reached), removes and frees it on close.
 * *socket_context owns the srv_conn. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    srv_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        srv_conn *cn = calloc(1, sizeof *cn);
        if (!cn || !ci) { /* untracked: MHD's idle timeout still applies */
            free(cn);
            return;
        }
        cn->fd = ci->connect_fd;
        cn->phase = PH_HEADERS;
        cn->since = nb_now();
        cn->deadline = h->o.header_timeout_s > 0 ? cn->since + h->o.header_timeout_s : 0;
        pthread_mutex_lock(&h->lock);
        cn->prev = h->tail;
        if (h->tail)
            h->tail->next = cn;
        else
            h->head = cn;
        h->tail = cn;
        h->n_conns++;
        unsigned soft = h->o.conn_limit > h->o.reserve ? h->o.conn_limit - h->o.reserve : 1;
        if (h->n_conns > soft) {
            /* the oldest connection (by accept) that has waited at least SRV_EVICT_MIN_S for
             * request headers: a slow sender, or an idle keep-alive client (it reconnects) */
            for (srv_conn *o = h->head; o && o != cn; o = o->next) {
                if (o->phase == PH_HEADERS && cn->since - o->since >= SRV_EVICT_MIN_S) {
                    conn_shut(h, o, 3);
                    break;
                }
            }
        }
        pthread_mutex_unlock(&h->lock);
        *socket_context = cn;
        return;
    }
    srv_conn *cn = *socket_context;
    if (!cn) return;
    pthread_mutex_lock(&h->lock);
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        h->head = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    else
        h->tail = cn->prev;
    h->n_conns--;
    pthread_mutex_unlock(&h->lock);
    free(cn);
    *socket_context = NULL;
}

/* The watchdog thread: every SRV_WATCH_PERIOD_S, shuts down the connections past their
 * deadline, until h->quit. Returns NULL. */
static void *watchdog_main(void *arg) {
    srv_http *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->quit) {
        double now = nb_now();
        for (srv_conn *cn = h->head; cn; cn = cn->next) {
            if (cn->deadline > 0 && now > cn->deadline)
                conn_shut(h, cn, cn->phase == PH_BODY ? 2 : 1);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(SRV_WATCH_PERIOD_S * 1e9);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&h->wake, &h->lock, &ts);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* See srv_http.h. */
void srv_http_counters(srv_http *h, long *header_timeouts, long *body_timeouts, long *evicted) {
    pthread_mutex_lock(&h->lock);
    *header_timeouts = h->n_header_to;
    *body_timeouts = h->n_body_to;
    *evicted = h->n_evicted;
    pthread_mutex_unlock(&h->lock);
}

/* MHD's own error lines (malformed requests, limits reached) go through here, so that
 * --quiet silences them like the access log. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    srv_http *h = cls;
    if (h->o.quiet) return;
    char line[512];
    int n = snprintf(line, sizeof line, "nb-serve: libmicrohttpd: ");
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0) return;
    size_t len = strnlen(line, sizeof line - 2);
    if (len == 0 || line[len - 1] != '\n') line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

/* Queues body[len] with status and Content-Type ctype; mode MHD_RESPMEM_MUST_FREE passes
 * the body's ownership to MHD (on failure it is freed here), MHD_RESPMEM_PERSISTENT sends
 * static text. Extra headers: Allow (allow != NULL) and "Connection: close" (close_conn).
 * Returns MHD's result. */
static enum MHD_Result send_body(struct MHD_Connection *c, req_state *st, int status, char *body,
                                 size_t len, enum MHD_ResponseMemoryMode mode, const char *ctype,
                                 const char *allow, int close_conn) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_UNAUTHORIZED) /* RFC 6750: the scheme the client must use */
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"nb-serve\"");
    if (close_conn || atomic_load_explicit(&st->h->stopping, memory_order_relaxed))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) st->status = status;
    return ret;
}

/* send_body of a malloc'd JSON body (ownership passes to MHD). */
static enum MHD_Result send_json(struct MHD_Connection *c, req_state *st, int status, char *body,
                                 size_t len, const char *allow, int close_conn) {
    return send_body(c, st, status, body, len, MHD_RESPMEM_MUST_FREE,
                     "application/json; charset=utf-8", allow, close_conn);
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

/* MHD_get_connection_values iterator: counts the Content-Length headers. */
static enum MHD_Result count_cl(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
    (void)kind;
    (void)value;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) ++*(int *)cls;
    return MHD_YES;
}

/* Framing rules MHD 0.9.75 leaves to us (it uses the first Content-Length and reads any
 * Transfer-Encoding but chunked as a body up to the end of the connection). Returns 1 and
 * records the error when the request is refused. */
static int check_framing(struct MHD_Connection *c, req_state *st) {
    int n_cl = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_cl, &n_cl);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (n_cl > 1) { /* a request-smuggling vector behind a proxy that takes the other one */
        set_early(st, MHD_HTTP_BAD_REQUEST, "bad_request", "more than one Content-Length header",
                  NULL);
        return 1;
    }
    if (te && strcasecmp(te, "chunked") != 0) {
        char msg[160], v[64];
        srv_escape_bytes(v, sizeof v, te);
        snprintf(msg, sizeof msg, "Transfer-Encoding %s is not supported (only chunked)", v);
        set_early(st, MHD_HTTP_NOT_IMPLEMENTED, "unsupported_transfer_encoding", msg, NULL);
        return 1;
    }
    if (te && n_cl) {
        set_early(st, MHD_HTTP_BAD_REQUEST, "bad_request",
                  "both Content-Length and Transfer-Encoding", NULL);
        return 1;
    }
    return 0;
}

/* The gate of a token-protected route (see srv_http.h): 404 when they are off, else
 * srv_auth_check of the Authorization header: 401 / 403. Returns 1 when it set an error. */
static int admin_gate(srv_http *h, struct MHD_Connection *c, req_state *st) {
    char msg[224];
    if (!h->hd.auth) {
        snprintf(msg, sizeof msg,
                 "no such path: %s (the writing endpoints are off: nb-serve was started "
                 "without --admin-token-file)",
                 st->path);
        set_early(st, MHD_HTTP_NOT_FOUND, "not_found", msg, NULL);
        return 1;
    }
    int s = srv_auth_check(h->hd.auth, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                   MHD_HTTP_HEADER_AUTHORIZATION));
    if (s == MHD_HTTP_UNAUTHORIZED)
        set_early(st, s, "unauthorized",
                  "this endpoint needs the header Authorization: Bearer <admin token>", NULL);
    else if (s)
        set_early(st, MHD_HTTP_FORBIDDEN, "forbidden", "the bearer token is not the admin token",
                  NULL);
    return s != 0;
}

/* 1 when the request announces a body (so an early answer should not wait for it). */
static int has_body(struct MHD_Connection *c) {
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > 0) return 1;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
        NULL;
}

/* First callback: framing, route, token, method, content type and declared length. */
static void classify(srv_http *h, struct MHD_Connection *c, req_state *st, const char *url,
                     const char *method) {
    if (check_framing(c, st)) return;
    int is_get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, "/recommend") == 0) {
        st->route = ROUTE_RECOMMEND;
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            set_early(st, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                      "/recommend accepts POST only", "POST");
            return;
        }
    } else if (strcmp(url, "/orders") == 0 || strcmp(url, "/admin/reload") == 0) {
        st->route = url[1] == 'o' ? ROUTE_ORDERS : ROUTE_RELOAD;
        if (!h->hd.auth) { /* off: not even the method is told */
            admin_gate(h, c, st);
            return;
        }
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s accepts POST only", url);
            set_early(st, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg, "POST");
            return;
        }
        if (admin_gate(h, c, st)) return;
        if (st->route == ROUTE_RELOAD && !has_body(c)) return; /* no body: no Content-Type */
    } else if (strcmp(url, "/health") == 0) {
        st->route = ROUTE_HEALTH;
        if (!is_get) {
            set_early(st, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                      "/health accepts GET and HEAD only", "GET, HEAD");
        }
        return;
    } else if ((strcmp(url, "/metrics") == 0 && srv_metrics_enabled()) ||
               strcmp(url, "/openapi.json") == 0) {
        st->route = url[1] == 'm' ? ROUTE_METRICS : ROUTE_OPENAPI;
        if (!is_get) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s accepts GET and HEAD only", url);
            set_early(st, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg, "GET, HEAD");
        }
        return;
    } else {
        /* st->path is the escaped path: raw bytes from the URL (%ff, %0a) never reach the
         * message */
        char msg[192];
        snprintf(msg, sizeof msg, "no such path: %s (GET /openapi.json lists the routes)",
                 st->path);
        set_early(st, MHD_HTTP_NOT_FOUND, "not_found", msg, NULL);
        return;
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!srv_content_type_is_json(ct)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Content-Type must be application/json, got %.80s",
                 ct ? ct : "none");
        set_early(st, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", msg, NULL);
        return;
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
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

/* Final callback of a valid request: parse and dispatch to the handlers. */
static enum MHD_Result dispatch(srv_http *h, struct MHD_Connection *c, req_state *st) {
    char *body = NULL;
    size_t len = 0;
    int status;
    if (st->route == ROUTE_METRICS) {
        body = srv_metrics_render(&len);
        return send_body(c, st, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE,
                         "text/plain; version=0.0.4; charset=utf-8", NULL, 0);
    }
    if (st->route == ROUTE_OPENAPI) {
        const char *doc = srv_openapi_json(&len);
        return send_body(c, st, MHD_HTTP_OK, (char *)doc, len, MHD_RESPMEM_PERSISTENT,
                         "application/json; charset=utf-8", NULL, 0);
    }
    if (st->route == ROUTE_HEALTH) {
        status = h->hd.health(h->hd.ctx, &body, &len);
    } else if (st->route == ROUTE_ORDERS) {
        status = h->hd.orders(h->hd.orders_ctx, st->body ? st->body : "", st->len, &body, &len);
    } else if (st->route == ROUTE_RELOAD) {
        status = h->hd.reload(h->hd.ctx, st->body ? st->body : "", st->len, &body, &len);
    } else {
        srv_request rq;
        const char *code;
        char err[NB_ERRLEN];
        if (srv_parse_request(st->body ? st->body : "", st->len, h->hd.default_basket_mode, &rq,
                              &code, err, sizeof err) != NB_OK)
            return send_error(c, st, MHD_HTTP_BAD_REQUEST, code, err, NULL, 0);
        status = h->hd.recommend(h->hd.ctx, &rq, &body, &len);
    }
    if (!body) {
        fprintf(stderr, "nb-serve: internal error: %s %s produced no response body\n", st->method,
                st->path);
        return send_error(c, st, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                          "internal error (logged)", NULL, 0);
    }
    return send_json(c, st, status, body, len, NULL, 0);
}

/* MHD's access handler, called for the headers, each body chunk and the end of a request
 * (see the top of the file). Returns MHD_YES, or MHD_NO to drop the connection (allocation
 * failure, or a client streaming far past the body cap). *con_cls owns the req_state. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    srv_http *h = cls;
    req_state *st = *con_cls;
    (void)version;

    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        st->t0 = nb_now();
        st->h = h;
        /* escaped once here: the log line and the 404 message carry no raw byte */
        srv_escape_bytes(st->method, sizeof st->method, method);
        srv_escape_bytes(st->path, sizeof st->path, url);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        st->conn = ci ? ci->socket_context : NULL;
        conn_phase(h, st->conn, PH_BODY, h->o.body_timeout_s);
        atomic_fetch_add(&h->in_flight, 1);
        srv_metrics_begin();
        *con_cls = st;
        classify(h, c, st, url, method);
        /* A 413 (and a framing error) must be answered before the body is read; any other
         * header-decided error is answered now too when a body follows, so that we do not
         * read what we will ignore (MHD then closes the connection after the response). */
        if (st->early &&
            (st->early == MHD_HTTP_CONTENT_TOO_LARGE || st->early == MHD_HTTP_NOT_IMPLEMENTED ||
             st->early == MHD_HTTP_BAD_REQUEST || has_body(c)))
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
                fprintf(stderr,
                        "nb-serve: %s %s: dropping the connection after %zu bytes "
                        "past the body limit\n",
                        st->method, st->path, st->discarded);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (st->early) return MHD_YES; /* a bodiless error answered at the end */
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

    /* the body is complete: no deadline while we compute and send */
    conn_phase(h, st->conn, PH_ANSWERED, 0);
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
    int why = 0;
    if (st->conn) {
        pthread_mutex_lock(&h->lock);
        why = st->conn->phase == PH_SHUT ? st->conn->why_shut : 0;
        pthread_mutex_unlock(&h->lock);
        /* the next request on this connection has header_timeout_s from now */
        conn_phase(h, st->conn, PH_HEADERS, h->o.header_timeout_s);
    }
    if (!h->o.quiet) {
        char line[384];
        long long us = (long long)((nb_now() - st->t0) * 1e6);
        int n;
        if (st->status)
            n = snprintf(
                line, sizeof line, "%s %s %d %lldus%s\n", st->method, st->path, st->status, us,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
        else if (why == 2)
            n = snprintf(line, sizeof line,
                         "%s %s - %lldus (no response: body not received "
                         "within %.0f s)\n",
                         st->method, st->path, us, h->o.body_timeout_s);
        else
            n = snprintf(line, sizeof line, "%s %s - %lldus (no response: terminated, code %d)\n",
                         st->method, st->path, us, (int)toe);
        /* One write per line, so lines from different workers never interleave. */
        if (n > 0) {
            ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
            (void)w;
        }
    }
    srv_metrics_end(srv_metrics_endpoint(st->path), st->status, nb_now() - st->t0);
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
    atomic_init(&h->stopping, 0);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
        MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* An option array, so that the pool size is passed only when there is a pool (MHD
     * warns about a pool size of 0 or 1). */
    struct MHD_OptionItem opts[12];
    int no = 0;
    /* first: MHD logs through its default logger until it has seen this option */
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, h};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    if (o->threads > 1)
        opts[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, o->threads, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, o->conn_limit, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_s, NULL};
    opts[no++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)o->conn_memory, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h};
    if (o->per_ip_limit > 0)
        opts[no++] =
            (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip_limit, NULL};
    opts[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    assert(no <= (int)(sizeof opts / sizeof opts[0]));
    h->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_ARRAY,
                            opts, MHD_OPTION_END);
    if (!h->d) {
        rc = nb_err(err, errlen, NB_EIO,
                    "cannot listen on %s port %d (in use, or not a local "
                    "address?)",
                    o->bind, o->port);
        goto done;
    }
    if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
        MHD_stop_daemon(h->d);
        rc = nb_err(err, errlen, NB_EIO, "cannot start the connection watchdog thread");
        goto done;
    }
    h->have_watchdog = 1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : o->port;
    *out = h;
    h = NULL;
done:
    if (ai) freeaddrinfo(ai);
    if (h) {
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        free(h);
    }
    return rc;
}

int srv_http_port(const srv_http *h) { return h->port; }

/* Hands the connections waiting in the kernel's accept queue of the quiesced listening
 * socket ls to MHD (they were sent before the stop: they get their answer, with
 * "Connection: close"), then shuts ls down so that later ones are refused at once instead
 * of waiting in the queue. Returns how many were taken. */
static int take_backlog(srv_http *h, MHD_socket ls) {
    int n = 0;
    if (ls == MHD_INVALID_SOCKET) return 0;
    for (int i = 0; i < 4096; i++) { /* bounded: the queue holds at most SOMAXCONN */
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(ls, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break; /* EAGAIN: the queue is empty */
        }
        if (MHD_add_connection(h->d, fd, (struct sockaddr *)&sa, sl) != MHD_YES) continue;
        n++; /* MHD_add_connection closed fd itself on failure */
    }
    shutdown(ls, SHUT_RDWR);
    return n;
}

/* 1 when some connection has bytes the server has not read yet (a request sent before
 * the stop that MHD has not seen), or is receiving a request body. */
static int unread_requests(srv_http *h) {
    int busy = 0;
    pthread_mutex_lock(&h->lock);
    for (srv_conn *cn = h->head; cn && !busy; cn = cn->next) {
        int pending = 0;
        if (cn->phase == PH_SHUT) continue;
        if (cn->phase == PH_BODY)
            busy = 1;
        else if (ioctl(cn->fd, FIONREAD, &pending) == 0 && pending > 0)
            busy = 1;
    }
    pthread_mutex_unlock(&h->lock);
    return busy;
}

/* See srv_http.h. in_flight counts requests from their first callback to their completion
 * callback, so a request whose body is still arriving is waited for too; unread_requests
 * covers requests MHD has not parsed yet. Two quiet looks 20 ms apart end the wait: a
 * response just sent may be followed by the client's next pipelined request. */
void srv_http_stop(srv_http *h, double grace_s) {
    if (!h) return;
    atomic_store(&h->stopping, 1);
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    double t_end = nb_now() + grace_s;
    take_backlog(h, ls);
    int quiet = 0;
    while (quiet < 2 && nb_now() < t_end) {
        if (atomic_load(&h->in_flight) > 0 || unread_requests(h))
            quiet = 0;
        else
            quiet++;
        usleep(quiet ? 20000 : 5000);
    }
    MHD_stop_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    if (h->have_watchdog) {
        pthread_mutex_lock(&h->lock);
        h->quit = 1;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->watchdog, NULL);
    }
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
