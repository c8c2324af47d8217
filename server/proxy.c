/*
 * This file's one job: the proxy handler — join a client connection to a backend and move
 * bytes both ways with bounded queues, half-close and passive health. Read it in firing
 * order: on_hello (the early connect, when the ClientHello already tells the route), on_open,
 * connect_next, on_connect (or on_connect_timeout / backend_failed), on_data and
 * on_backend_read, on_client_eof and the backend's EOF, on_close, on_handle_closed.
 */

#include "proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "proxyhdr.h"
#include "util.h"

typedef struct {
    const tlsc_addr_t *addr;
    struct sockaddr_storage sa; /* resolved once, at start (TCP) */
    uint64_t down_until_ms;
    int down;
    char name[TLSC_ADDR_HOST_MAX + TLSC_ADDR_PATH_MAX + 16];
} backend_t;

typedef struct {
    backend_t *b;
    size_t n;
    size_t next; /* round-robin position */
} group_t;

struct tlsc_proxy_s {
    tlsc_proxy_options_t o;
    group_t *groups;     /* one per route, in the routes' order */
    size_t live;         /* proxied connections not yet freed */
    char readbuf[65536]; /* backend reads: handed to OpenSSL (which copies) before the next read */
};

/* How a proxied connection ended: the first cause that is known wins. */
typedef enum {
    END_NONE,
    END_DONE,
    END_CLIENT_GONE,
    END_BACKEND_REFUSED,
    END_BACKEND_TIMEOUT,
    END_BACKEND_RESET,
    END_IDLE,
    END_DRAIN,
} end_t;

typedef struct {
    tlsc_proxy_t *px;
    tlsc_conn_t *conn; /* NULL once the client side went away */
    group_t *g;
    backend_t *be; /* the backend tried or joined */
    size_t tries;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uv_connect_t creq;
    uv_shutdown_t sreq;
    uv_timer_t timer; /* the connect timeout; open from on_open to the end, so `p` is freed only in a close callback */
    unsigned handles; /* open libuv handles (timer, stream): freed when both closed */
    unsigned stream_open : 1, connected : 1, client_eof : 1, backend_eof : 1, backend_paused : 1, client_paused : 1, retry : 1;
    unsigned opened : 1;  /* the handshake is done (on_open ran): before it, nothing is sent or read */
    unsigned gave_up : 1; /* every backend failed before the handshake was done: on_open tries again */
    end_t end;
} pconn_t;

typedef struct {
    uv_write_t req;
    char data[];
} bwrite_t;

static void connect_next(pconn_t *p);
static void start_reading(pconn_t *p);

#define STREAM(p) ((uv_stream_t *)&(p)->u)

/* ------------------------------------------------------------------------------------------ */
/* Passive health                                                                               */

static void mark_down(tlsc_proxy_t *px, backend_t *b, const char *why)
{
    if (!b->down)
        tlsc_log_warn("backend %s down (%s): skipped for %d s", b->name, why, TLSC_PROXY_HOLD_MS / 1000);
    b->down = 1;
    b->down_until_ms = tlsc_now_ms() + TLSC_PROXY_HOLD_MS;
    (void)px;
}

static void mark_up(backend_t *b)
{
    if (b->down)
        tlsc_log_info("backend %s up", b->name);
    b->down = 0;
}

/* The next backend in turn that is not held down; when all are, the next in turn anyway. */
static backend_t *pick(group_t *g)
{
    uint64_t now = tlsc_now_ms();
    size_t start = g->next, chosen = start;

    for (size_t i = 0; i < g->n; i++) {
        size_t k = (start + i) % g->n;
        if (!g->b[k].down || now >= g->b[k].down_until_ms) {
            chosen = k;
            break;
        }
    }
    g->next = (chosen + 1) % g->n;
    return &g->b[chosen];
}

/* ------------------------------------------------------------------------------------------ */
/* Connect                                                                                      */

static void on_handle_closed(uv_handle_t *h);

/* Restarts the idle timeout; not before the handshake is done (the handshake timeout runs then). */
static void touch(pconn_t *p)
{
    if (p->conn != NULL && p->opened)
        tlsc_conn_set_timeout(p->conn, p->px->o.idle_timeout_ms);
}

/* The backend failed to connect: hold it down, close its stream, and try the next (on_handle_closed). */
static void backend_failed(pconn_t *p, int status, int timed_out)
{
    mark_down(p->px, p->be, timed_out ? "connect timed out" : uv_strerror(status));
    p->end = timed_out ? END_BACKEND_TIMEOUT : END_BACKEND_REFUSED;
    p->retry = 1;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->u, on_handle_closed);
}

static void on_backend_write(uv_write_t *req, int status);
static void backend_reset(pconn_t *p);

static void fill_addr(const struct sockaddr_storage *ss, unsigned char ip[16], uint16_t *port, int *family)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(ip, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        *family = 4;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(ip, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        *family = 6;
    } else {
        *family = 0;
    }
}

/*
 * The node that made the session: this one for a full handshake; for a resumed one what the
 * session carries (session.c puts it there), "" when it carries nothing usable.
 */
static void origin_node(SSL *ssl, const char *self, char out[TLSC_PROXYHDR_STR_MAX + 1])
{
    void *data = NULL;
    size_t len = 0;

    out[0] = '\0';
    if (!SSL_session_reused(ssl)) {
        snprintf(out, TLSC_PROXYHDR_STR_MAX + 1, "%s", self);
        return;
    }
    if (SSL_SESSION_get0_ticket_appdata(SSL_get0_session(ssl), &data, &len) != 1 || len == 0 || len > 64)
        return;
    for (size_t i = 0; i < len; i++) {
        char ch = ((const char *)data)[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            return; /* a node name is [A-Za-z0-9._-]; anything else is not passed on */
    }
    memcpy(out, data, len);
    out[len] = '\0';
}

/* Queues the PROXY header (--proxy-protocol) ahead of anything the client sends. 0 = ok. */
static int send_proxy_header(pconn_t *p)
{
    struct sockaddr_storage peer, local;
    tlsc_proxyhdr_addrs_t a = {0};
    SSL *ssl = tlsc_conn_ssl(p->conn);
    char node[TLSC_PROXYHDR_STR_MAX + 1];
    int fam_l = 0, n;
    bwrite_t *w = malloc(sizeof(*w) + TLSC_PROXYHDR_V2_MAX);
    uv_buf_t b;

    if (w == NULL)
        return -1;
    if (tlsc_conn_addrs(p->conn, &peer, &local) == 0) {
        fill_addr(&peer, a.src, &a.sport, &a.family);
        fill_addr(&local, a.dst, &a.dport, &fam_l);
        if (fam_l != a.family)
            a.family = 0;
    }
    if (p->px->o.proxy_protocol == 1) {
        n = tlsc_proxyhdr_v1(&a, w->data, TLSC_PROXYHDR_V2_MAX);
    } else {
        tlsc_proxyhdr_tls_t t = {
            .version = SSL_get_version(ssl), .cipher = SSL_get_cipher_name(ssl), .sni = tlsc_conn_sni(p->conn)};
        unsigned int alpn_len = 0;

        SSL_get0_alpn_selected(ssl, &t.alpn, &alpn_len);
        t.alpn_len = alpn_len;
        t.resumed = SSL_session_reused(ssl);
        origin_node(ssl, p->px->o.node, node);
        t.origin_node = node;
        n = tlsc_proxyhdr_v2(&a, &t, (unsigned char *)w->data, TLSC_PROXYHDR_V2_MAX);
    }
    b = uv_buf_init(w->data, n > 0 ? (unsigned int)n : 0);
    if (n <= 0 || uv_write(&w->req, STREAM(p), &b, 1, on_backend_write) != 0) {
        free(w);
        return -1;
    }
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    pconn_t *p = req->data;

    if (status == UV_ECANCELED || p->conn == NULL)
        return; /* the stream is closing (timed out, or the client went away) */
    if (status < 0) {
        backend_failed(p, status, 0);
        return;
    }
    uv_timer_stop(&p->timer);
    mark_up(p->be);
    p->connected = 1;
    p->end = END_NONE;
    if (p->be->addr->kind == TLSC_ADDR_TCP)
        uv_tcp_nodelay(&p->u.tcp, 1);
    if (!p->opened)
        return; /* an early connect: the PROXY header needs the handshake's facts; on_open goes on */
    touch(p);
    if (p->px->o.proxy_protocol != 0 && send_proxy_header(p) != 0) {
        backend_reset(p);
        return;
    }
    start_reading(p);
}

static void on_connect_timeout(uv_timer_t *t)
{
    pconn_t *p = t->data;

    if (p->stream_open && !p->connected && !uv_is_closing((uv_handle_t *)&p->u))
        backend_failed(p, UV_ETIMEDOUT, 1);
}

/* Every backend of the route was tried once: the client gets close_notify (and nothing else). */
static void give_up(pconn_t *p)
{
    if (!p->opened) {
        p->gave_up = 1; /* an early connect: the client hears of it once its handshake is done */
        return;
    }
    tlsc_log_debug("proxied connection ends: %s failed", p->g->n == 1 ? p->be->name : "every backend of its route");
    if (p->conn != NULL)
        tlsc_conn_end(p->conn);
}

static void connect_next(pconn_t *p)
{
    int r = 0;

    if (p->conn == NULL)
        return;
    if (p->tries >= p->g->n) {
        give_up(p);
        return;
    }
    p->tries++;
    p->be = pick(p->g);
    p->creq.data = p;
    if (p->be->addr->kind == TLSC_ADDR_UNIX) {
        uv_pipe_init(p->px->o.loop, &p->u.pipe, 0);
        p->u.pipe.data = p;
        uv_pipe_connect(&p->creq, &p->u.pipe, p->be->addr->path, on_connect);
    } else {
        uv_tcp_init(p->px->o.loop, &p->u.tcp);
        p->u.tcp.data = p;
        r = uv_tcp_connect(&p->creq, &p->u.tcp, (const struct sockaddr *)&p->be->sa, on_connect);
    }
    p->handles++;
    p->stream_open = 1;
    if (r != 0) {
        backend_failed(p, r, 0);
        return;
    }
    uv_timer_start(&p->timer, on_connect_timeout, p->px->o.connect_timeout_ms, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Bytes: client → backend                                                                      */

static void backend_reset(pconn_t *p)
{
    if (p->end == END_NONE || p->end == END_DONE)
        p->end = END_BACKEND_RESET;
    if (p->conn != NULL)
        tlsc_conn_close(p->conn); /* no close_notify: the client must see the stream was cut */
}

static void on_backend_write(uv_write_t *req, int status)
{
    pconn_t *p = req->handle->data;

    free(req);
    if (status == UV_ECANCELED || p->conn == NULL)
        return;
    if (status < 0) {
        backend_reset(p);
        return;
    }
    if (p->client_paused && uv_stream_get_write_queue_size(STREAM(p)) <= TLSC_PROXY_LOW_WATER) {
        p->client_paused = 0;
        tlsc_conn_pause(p->conn, 0);
    }
}

static void on_data(void *state, tlsc_conn_t *c, const char *buf, size_t len)
{
    pconn_t *p = state;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned int)len);
    int n = 0;

    if (!p->connected || p->client_eof) {
        backend_reset(p);
        return;
    }
    touch(p);
    if (uv_stream_get_write_queue_size(STREAM(p)) == 0) {
        n = uv_try_write(STREAM(p), &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            backend_reset(p);
            return;
        }
        if (n < 0)
            n = 0;
    }
    if ((size_t)n < len) {
        bwrite_t *w = malloc(sizeof(*w) + len - (size_t)n);

        if (w == NULL) {
            backend_reset(p);
            return;
        }
        memcpy(w->data, buf + n, len - (size_t)n);
        b = uv_buf_init(w->data, (unsigned int)(len - (size_t)n));
        if (uv_write(&w->req, STREAM(p), &b, 1, on_backend_write) != 0) {
            free(w);
            backend_reset(p);
            return;
        }
    }
    if (uv_stream_get_write_queue_size(STREAM(p)) > TLSC_PROXY_HIGH_WATER) {
        p->client_paused = 1;
        tlsc_conn_pause(c, 1);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    pconn_t *p = req->data;

    if (status < 0 && status != UV_ECANCELED && p->conn != NULL)
        backend_reset(p);
}

/* The client's close_notify: the backend gets a FIN once what the client sent is written. */
static void on_client_eof(void *state, tlsc_conn_t *c)
{
    pconn_t *p = state;

    p->client_eof = 1;
    touch(p);
    if (!p->connected) {
        p->end = END_DONE;
        tlsc_conn_end(c);
        return;
    }
    p->sreq.data = p;
    if (uv_shutdown(&p->sreq, STREAM(p), on_shutdown) != 0) {
        backend_reset(p);
        return;
    }
    if (p->backend_eof) {
        p->end = END_DONE;
        tlsc_conn_end(c);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Bytes: backend → client                                                                      */

static void on_backend_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pconn_t *p = h->data;

    (void)suggested;
    *buf = uv_buf_init(p->px->readbuf, sizeof(p->px->readbuf));
}

/*
 * libuv reports EOF without another read when the kernel says "hang-up" after a short read,
 * which is also what a reset looks like: the socket's pending error tells them apart, so a
 * reset never reaches the client as a clean close_notify.
 */
static int pending_error(uv_stream_t *s)
{
    uv_os_fd_t fd;
    int e = 0;
    socklen_t len = sizeof(e);

    return uv_fileno((uv_handle_t *)s, &fd) == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0;
}

static void on_backend_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pconn_t *p = s->data;

    if (p->conn == NULL || nread == 0)
        return;
    if (nread == UV_EOF && pending_error(s)) {
        backend_reset(p);
        return;
    }
    if (nread == UV_EOF) {
        /* The backend is done sending: close_notify, and the connection ends once the client is done too. */
        p->backend_eof = 1;
        uv_read_stop(s);
        touch(p);
        if (p->client_eof) {
            p->end = END_DONE;
            tlsc_conn_end(p->conn);
        } else {
            tlsc_conn_shutdown(p->conn);
        }
        return;
    }
    if (nread < 0) {
        backend_reset(p);
        return;
    }
    touch(p);
    if (tlsc_conn_write(p->conn, buf->base, (size_t)nread) != 0)
        return; /* the client is gone; on_close ran */
    if (tlsc_conn_queued(p->conn) > TLSC_PROXY_HIGH_WATER) {
        p->backend_paused = 1;
        uv_read_stop(s);
    }
}

static void start_reading(pconn_t *p)
{
    if (uv_read_start(STREAM(p), on_backend_alloc, on_backend_read) != 0) {
        backend_reset(p);
        return;
    }
    tlsc_conn_pause(p->conn, 0); /* may hand over what the client sent during the connect */
}

static void on_writable(void *state, tlsc_conn_t *c)
{
    pconn_t *p = state;

    (void)c;
    if (p->backend_paused && p->connected && !p->backend_eof) {
        p->backend_paused = 0;
        if (uv_read_start(STREAM(p), on_backend_alloc, on_backend_read) != 0)
            backend_reset(p);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Open and close                                                                               */

static pconn_t *pconn_new(tlsc_proxy_t *px, tlsc_conn_t *c, const tlsc_route_t *r)
{
    pconn_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->px = px;
    p->conn = c;
    p->g = &px->groups[r - px->o.routes->routes];
    uv_timer_init(px->o.loop, &p->timer);
    p->timer.data = p;
    p->handles = 1;
    px->live++;
    return p;
}

static void drop(pconn_t *p);
static void count_end(tlsc_stats_t *st, end_t end);

/*
 * The ClientHello was read: when it tells the route (an SNI route, or the default route with no
 * ALPN route to compete), the backend connect starts now and overlaps the rest of the handshake.
 * Nothing is sent to the backend before on_open. A handshake that never finishes closes the
 * connection at --handshake-timeout, and on_close closes the backend side with it.
 */
static void *on_hello(void *hdata, tlsc_conn_t *c)
{
    tlsc_proxy_t *px = hdata;
    const tlsc_route_t *r = tlsc_routes_pick_early(px->o.routes, tlsc_conn_sni(c));
    pconn_t *p;

    if (r == NULL || (p = pconn_new(px, c, r)) == NULL)
        return NULL; /* on_open connects, after the handshake */
    tlsc_stat_inc(&px->o.stats->proxy_early_connects);
    connect_next(p);
    return p;
}

static void *on_open(void *hdata, tlsc_conn_t *c, void *early)
{
    tlsc_proxy_t *px = hdata;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    const tlsc_route_t *r;
    pconn_t *p = early;

    SSL_get0_alpn_selected(tlsc_conn_ssl(c), &alpn, &alpn_len);
    r = tlsc_routes_pick(px->o.routes, tlsc_conn_sni(c), alpn, alpn_len);
    if (p != NULL && (r == NULL || p->g != &px->groups[r - px->o.routes->routes])) {
        drop(p); /* not the route the early connect took (tlsc_routes_pick_early rules this out) */
        p = NULL;
    }
    if (r == NULL) {
        tlsc_stat_inc(&px->o.stats->proxy_end_no_route);
        return NULL;
    }
    if (p == NULL && (p = pconn_new(px, c, r)) == NULL)
        return NULL;
    p->opened = 1;
    tlsc_stat_inc(&px->o.stats->proxy_opened);
    touch(p);
    if (p->connected) {
        /* The early connect is done: the header, then the client's bytes (read once open returns). */
        if ((px->o.proxy_protocol != 0 && send_proxy_header(p) != 0) ||
            uv_read_start(STREAM(p), on_backend_alloc, on_backend_read) != 0) {
            count_end(px->o.stats, END_BACKEND_RESET);
            drop(p);
            return NULL;
        }
        return p;
    }
    tlsc_conn_pause(c, 1); /* nothing is read from the client until a backend takes it */
    if (p->gave_up) {
        p->gave_up = 0; /* every backend failed during the handshake: one more round, now it counts */
        p->tries = 0;
        connect_next(p);
    } else if (!p->stream_open) {
        connect_next(p);
    } /* else the early connect (or its retry, from on_handle_closed) is under way */
    return p;
}

static void on_handle_closed(uv_handle_t *h)
{
    pconn_t *p = h->data;

    p->handles--;
    if (h == (uv_handle_t *)&p->u) {
        p->stream_open = 0;
        p->connected = 0;
        if (p->retry) {
            p->retry = 0;
            connect_next(p);
        }
    }
    if (p->handles == 0 && p->conn == NULL) {
        p->px->live--;
        free(p);
    }
}

static const char *const end_names[] = {"done",          "done", "client gone", "backend refused", "backend timeout",
                                        "backend reset", "idle", "drain"};

static void count_end(tlsc_stats_t *st, end_t end)
{
    switch (end) {
    case END_NONE:
    case END_DONE:
        tlsc_stat_inc(&st->proxy_end_done);
        break;
    case END_CLIENT_GONE:
        tlsc_stat_inc(&st->proxy_end_client_gone);
        break;
    case END_BACKEND_REFUSED:
        tlsc_stat_inc(&st->proxy_end_backend_refused);
        break;
    case END_BACKEND_TIMEOUT:
        tlsc_stat_inc(&st->proxy_end_backend_timeout);
        break;
    case END_BACKEND_RESET:
        tlsc_stat_inc(&st->proxy_end_backend_reset);
        break;
    case END_IDLE:
        tlsc_stat_inc(&st->proxy_end_idle);
        break;
    case END_DRAIN:
        tlsc_stat_inc(&st->proxy_end_drain);
        break;
    }
}

/* The client side is gone or never was ours: close the backend side; `p` is freed once its handles closed. */
static void drop(pconn_t *p)
{
    p->conn = NULL;
    p->retry = 0;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    if (p->stream_open && !uv_is_closing((uv_handle_t *)&p->u))
        uv_close((uv_handle_t *)&p->u, on_handle_closed);
}

/* The client connection is going away (for `why`): count the end, close the backend side. */
static void on_close(void *state, tlsc_close_cause_t why)
{
    pconn_t *p = state;

    if (!p->opened) {
        /* An early connect whose handshake never finished (timed out, failed, drained). */
        tlsc_stat_inc(&p->px->o.stats->proxy_early_abandoned);
        tlsc_log_debug("early backend connect to %s dropped: the handshake did not finish (%d)", p->be != NULL ? p->be->name : "-",
                       (int)why);
        drop(p);
        return;
    }
    /* A cause the proxy saw first (a backend failure) wins over how the client side closed. */
    if (p->end == END_NONE || p->end == END_DONE) {
        if (why == TLSC_CLOSE_PEER || why == TLSC_CLOSE_LIMIT)
            p->end = END_CLIENT_GONE;
        else if (why == TLSC_CLOSE_TIMEOUT)
            p->end = END_IDLE;
        else if (why == TLSC_CLOSE_DRAIN || why == TLSC_CLOSE_SHUTDOWN)
            p->end = END_DRAIN;
    }
    count_end(p->px->o.stats, p->end);
    tlsc_conn_note_proxy(p->conn, p->be != NULL ? p->be->name : NULL, end_names[p->end]);
    tlsc_log_debug("proxied connection to %s ends: %s (client side: %d)", p->be != NULL ? p->be->name : "-", end_names[p->end],
                   (int)why);
    drop(p);
}

/* ------------------------------------------------------------------------------------------ */
/* The proxy                                                                                    */

static int resolve(backend_t *b, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    int r;

    if ((r = getaddrinfo(b->addr->host, b->addr->port_str, &hints, &res)) != 0) {
        snprintf(err, errlen, "--backend %s: cannot resolve: %s", b->name, gai_strerror(r));
        return -1;
    }
    memcpy(&b->sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int tlsc_proxy_new(const tlsc_proxy_options_t *o, tlsc_proxy_t **out, char *err, size_t errlen)
{
    tlsc_proxy_t *px = calloc(1, sizeof(*px));

    if (px == NULL || (px->groups = calloc(o->routes->n, sizeof(*px->groups))) == NULL) {
        free(px);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    px->o = *o;
    for (size_t i = 0; i < o->routes->n; i++) {
        const tlsc_route_t *r = &o->routes->routes[i];
        group_t *g = &px->groups[i];

        if ((g->b = calloc(r->n_addrs, sizeof(*g->b))) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        g->n = r->n_addrs;
        for (size_t k = 0; k < g->n; k++) {
            g->b[k].addr = &r->addrs[k];
            tlsc_addr_format(&r->addrs[k], g->b[k].name, sizeof(g->b[k].name));
            if (r->addrs[k].kind == TLSC_ADDR_TCP && resolve(&g->b[k], err, errlen) != 0)
                goto fail;
        }
    }
    *out = px;
    return 0;

fail:
    tlsc_proxy_free(px);
    return -1;
}

void tlsc_proxy_handler(tlsc_proxy_t *px, tlsc_handler_t *out)
{
    *out = (tlsc_handler_t){.hello = on_hello,
                            .open = on_open,
                            .data = on_data,
                            .close = on_close,
                            .eof = on_client_eof,
                            .writable = on_writable,
                            .hdata = px};
}

void tlsc_proxy_free(tlsc_proxy_t *px)
{
    if (px == NULL)
        return;
    if (px->live != 0)
        tlsc_log_warn("proxy freed with %zu connection(s) still open", px->live);
    for (size_t i = 0; i < px->o.routes->n; i++)
        free(px->groups[i].b);
    free(px->groups);
    free(px);
}
