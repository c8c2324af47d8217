#include "bench.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

/* ------------------------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------------------------ */

typedef enum {
    CONN_IDLE,        /* slot unused: nothing left to start */
    CONN_CONNECTING,  /* TCP connect in flight */
    CONN_HANDSHAKE,   /* ClientHello sent, driving SSL_do_handshake */
    CONN_REQUEST,     /* --request: GET sent, reading the reply to its end */
    CONN_TICKET_WAIT, /* TLS 1.3: handshake done, waiting for a NewSessionTicket */
    CONN_CLOSING,     /* uv_close called; the slot restarts in on_tcp_close */
} conn_state_t;

typedef struct bench_s bench_t;

typedef struct {
    bench_t *b;
    conn_state_t state;
    uv_tcp_t tcp;
    uv_timer_t timer; /* lives as long as the slot; bounds each connection */
    uv_connect_t connect_req;
    SSL *ssl;
    BIO *rbio; /* bytes from the socket, read by OpenSSL; the write BIO is SSL_get_wbio */
    size_t target, issuer;
    SSL_SESSION *offered;          /* a reference to the session we offer, or NULL */
    SSL_SESSION *received;         /* the newest session the server gave us, or NULL */
    uint64_t t_start, t_connected; /* uv_hrtime() */
    int handshake_done, resumed, ticket_timer;
} conn_t;

typedef struct {
    SSL_SESSION *sess;
    size_t issuer;
} pooled_t;

struct bench_s {
    const tlsc_bench_options_t *o;
    tlsc_bench_result_t *r;
    uv_loop_t loop;
    SSL_CTX *ctx;
    struct sockaddr_storage addrs[TLSC_BENCH_MAX_TARGETS];
    const char *sni[TLSC_BENCH_MAX_TARGETS];
    conn_t *conns;
    size_t nconns, active;
    /* Sessions waiting to be offered, a ring: the freshest is at (head + len - 1). */
    pooled_t *pool;
    size_t pool_head, pool_len, pool_cap;
    uint64_t started, t0, end_ns;
    uint64_t rng;
    int stopping, progress, handles_closing;
    uv_timer_t tick, deadline;
    uv_signal_t sigint;
    uint64_t last_done;
    /*
     * TLS 1.3 servers may send no ticket at all, or none after a resumption: after two waits
     * in vain and no ticket ever, stop waiting for that target (after full resp. resumed handshakes).
     */
    uint64_t tickets_seen[TLSC_BENCH_MAX_TARGETS][2];
    unsigned ticket_misses[TLSC_BENCH_MAX_TARGETS][2];
};

static void conn_start(conn_t *c);
static void on_connect(uv_connect_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_drive(conn_t *c);
static int on_new_session(SSL *ssl, SSL_SESSION *sess);
static void on_write(uv_write_t *req, int status);
static void on_timeout(uv_timer_t *t);
static void conn_finish(conn_t *c, int kind, const char *detail);
static void on_tcp_close(uv_handle_t *h);

/* One read buffer for every connection: libuv hands it back before the next alloc. */
static char read_buf[64 * 1024];

/* ------------------------------------------------------------------------------------------
 * Session pool
 * ------------------------------------------------------------------------------------------ */

/* Takes ownership of one reference; the oldest session is dropped when the pool is full. */
static void pool_push(bench_t *b, SSL_SESSION *sess, size_t issuer)
{
    pooled_t *slot;

    if (b->pool_len == b->pool_cap) {
        SSL_SESSION_free(b->pool[b->pool_head].sess);
        b->pool_head = (b->pool_head + 1) % b->pool_cap;
        b->pool_len--;
    }
    slot = &b->pool[(b->pool_head + b->pool_len) % b->pool_cap];
    slot->sess = sess;
    slot->issuer = issuer;
    b->pool_len++;
}

/* Returns the freshest session with its reference, or NULL. */
static SSL_SESSION *pool_pop(bench_t *b, size_t *issuer)
{
    pooled_t *slot;

    if (b->pool_len == 0)
        return NULL;
    slot = &b->pool[(b->pool_head + b->pool_len - 1) % b->pool_cap];
    b->pool_len--;
    *issuer = slot->issuer;
    return slot->sess;
}

/* ------------------------------------------------------------------------------------------
 * Recording
 * ------------------------------------------------------------------------------------------ */

static size_t second_now(bench_t *b)
{
    return (size_t)((uv_hrtime() - b->t0) / 1000000000u);
}

static void record_error(bench_t *b, conn_t *c, int kind, const char *detail)
{
    tlsc_bench_result_t *r = b->r;

    r->errors[kind]++;
    r->per_target[c->target].errors[kind]++;
    if (r->first_error[kind][0] == '\0')
        snprintf(r->first_error[kind], sizeof(r->first_error[kind]), "%.60s: %.96s", b->o->targets[c->target].label, detail);
    if (c->handshake_done)
        r->errors_after_handshake++;
    else
        tlsc_bench_result_tick(r, second_now(b), 0, 1);
}

static void record_handshake(bench_t *b, conn_t *c)
{
    tlsc_bench_result_t *r = b->r;
    tlsc_bench_target_stats_t *t = &r->per_target[c->target];
    uint64_t us = (uv_hrtime() - c->t_connected) / 1000;
    const char *group = "none";
    char groupbuf[32];
    int nid;

    c->handshake_done = 1;
    c->resumed = SSL_session_reused(c->ssl);
    if (c->offered != NULL) {
        r->offered++;
        t->offered++;
        r->matrix_offered[c->issuer * r->ntargets + c->target]++;
        if (c->resumed)
            r->matrix_resumed[c->issuer * r->ntargets + c->target]++;
        else
            r->offered_full++;
    }
    if (c->resumed) {
        r->resumed++;
        t->resumed++;
        tlsc_hist_add(r->lat_resumed, us);
    } else {
        r->full++;
        t->full++;
        tlsc_hist_add(r->lat_full, us);
    }
    tlsc_bench_result_tick(r, second_now(b), c->resumed, 0);

    /* A resumed TLS 1.2 handshake has no key exchange, hence no group. */
    nid = SSL_get_negotiated_group(c->ssl);
    if (nid > 0 && (nid & TLSEXT_nid_unknown) == 0 && OBJ_nid2sn(nid) != NULL) {
        group = OBJ_nid2sn(nid);
    } else if (nid > 0) {
        snprintf(groupbuf, sizeof(groupbuf), "0x%04x", (unsigned)(nid & 0xffff));
        group = groupbuf;
    }
    tlsc_bench_result_negotiated(r, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), group);
}

/* ------------------------------------------------------------------------------------------
 * Connection life: start -> connect -> handshake -> (request | ticket wait) -> close
 * ------------------------------------------------------------------------------------------ */

static int more_to_start(bench_t *b)
{
    if (b->stopping)
        return 0;
    if (b->o->connections != 0)
        return b->started < b->o->connections;
    return uv_hrtime() < b->end_ns;
}

static size_t pick_target(bench_t *b, uint64_t seq)
{
    uint64_t x;

    if (b->o->balance == TLSC_BENCH_BALANCE_RR)
        return (size_t)(seq % b->o->ntargets);
    /* splitmix64: good enough to spread connections, and reproducible with --seed. */
    x = (b->rng += UINT64_C(0x9e3779b97f4a7c15));
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return (size_t)(x % b->o->ntargets);
}

static void close_loop_handles(bench_t *b);

static void conn_start(conn_t *c)
{
    bench_t *b = c->b;
    const tlsc_bench_options_t *o = b->o;
    uint64_t seq;
    int rv;

    if (!more_to_start(b)) {
        c->state = CONN_IDLE;
        if (--b->active == 0)
            close_loop_handles(b);
        return;
    }
    seq = b->started++;
    c->target = pick_target(b, seq);
    c->offered = c->received = NULL;
    c->handshake_done = c->resumed = c->ticket_timer = 0;
    c->ssl = NULL;
    c->rbio = NULL;
    if (o->mode != TLSC_BENCH_MODE_FULL && (o->new_session_every == 0 || seq % o->new_session_every != 0))
        c->offered = pool_pop(b, &c->issuer);

    uv_tcp_init(&b->loop, &c->tcp);
    c->tcp.data = c;
    c->connect_req.data = c;
    c->state = CONN_CONNECTING;
    c->t_start = uv_hrtime();
    uv_timer_start(&c->timer, on_timeout, o->timeout_ms, 0);
    rv = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&b->addrs[c->target], on_connect);
    if (rv < 0)
        conn_finish(c, TLSC_BENCH_ERR_CONNECT, uv_strerror(rv));
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    bench_t *b = c->b;
    const char *sni = b->sni[c->target];
    BIO *wbio;

    if (c->state != CONN_CONNECTING)
        return; /* timed out or interrupted: already closing */
    if (status < 0) {
        conn_finish(c, TLSC_BENCH_ERR_CONNECT, uv_strerror(status));
        return;
    }
    c->t_connected = uv_hrtime();
    tlsc_hist_add(b->r->lat_connect, (c->t_connected - c->t_start) / 1000);
    uv_tcp_nodelay(&c->tcp, 1);

    if ((c->ssl = SSL_new(b->ctx)) == NULL || (c->rbio = BIO_new(BIO_s_mem())) == NULL || (wbio = BIO_new(BIO_s_mem())) == NULL) {
        BIO_free(c->rbio);
        c->rbio = NULL;
        conn_finish(c, TLSC_BENCH_ERR_HANDSHAKE, "out of memory creating the TLS connection");
        return;
    }
    SSL_set_bio(c->ssl, c->rbio, wbio); /* the SSL owns both BIOs now */
    SSL_set_app_data(c->ssl, c);
    SSL_set_connect_state(c->ssl);
    if (sni != NULL)
        SSL_set_tlsext_host_name(c->ssl, sni);
    if (b->o->cafile != NULL)
        SSL_set1_host(c->ssl, sni != NULL ? sni : b->o->targets[c->target].host);
    if (c->offered != NULL) {
        /*
         * Offer a copy: a TLS 1.3 client changes the session object it resumed with, so the
         * original would not resume a second time when it goes back to the pool.
         */
        SSL_SESSION *copy = SSL_SESSION_dup(c->offered);

        SSL_set_session(c->ssl, copy != NULL ? copy : c->offered);
        SSL_SESSION_free(copy);
    }

    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->state = CONN_HANDSHAKE;
    conn_drive(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = read_buf;
    buf->len = sizeof(read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;

    if (c->state == CONN_CLOSING)
        return;
    if (nread > 0) {
        c->b->r->bytes_read += (uint64_t)nread;
        BIO_write(c->rbio, buf->base, (int)nread);
        conn_drive(c);
        return;
    }
    if (nread == 0)
        return;
    /* The peer closed or the connection broke; what it means depends on how far we got. */
    if (nread == UV_EOF && c->state == CONN_REQUEST) {
        c->b->r->requests_ok++;
        conn_finish(c, -1, NULL);
    } else if (nread == UV_EOF && c->state == CONN_TICKET_WAIT) {
        c->b->r->no_session++;
        conn_finish(c, -1, NULL);
    } else if (nread == UV_EOF) {
        conn_finish(c, TLSC_BENCH_ERR_READ, "connection closed during the handshake");
    } else {
        conn_finish(c, TLSC_BENCH_ERR_READ, uv_strerror((int)nread));
    }
}

typedef struct {
    uv_write_t req;
    char data[];
} write_req_t;

/* Sends whatever OpenSSL queued in the write BIO. Returns 0 or a libuv error. */
static int flush_out(conn_t *c)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    size_t pending;

    while ((pending = BIO_ctrl_pending(wbio)) > 0) {
        write_req_t *w = malloc(sizeof(*w) + pending);
        uv_buf_t buf;
        int n, rv;

        if (w == NULL)
            return UV_ENOMEM;
        n = BIO_read(wbio, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            return UV_EIO;
        }
        buf = uv_buf_init(w->data, (unsigned)n);
        w->req.data = c;
        if ((rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write)) < 0) {
            free(w);
            return rv;
        }
    }
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;

    free(req); /* req is the first member of write_req_t */
    if (status < 0 && status != UV_ECANCELED && c->state != CONN_CLOSING)
        conn_finish(c, TLSC_BENCH_ERR_READ, uv_strerror(status));
}

/* Classifies a failed handshake: verification, an alert or another protocol error. */
static void handshake_failed(conn_t *c, int sslerr)
{
    char detail[160];
    unsigned long e = ERR_peek_last_error();
    long vr = SSL_get_verify_result(c->ssl);

    if (c->b->o->cafile != NULL && vr != X509_V_OK) {
        snprintf(detail, sizeof(detail), "certificate verify failed: %s", X509_verify_cert_error_string(vr));
        conn_finish(c, TLSC_BENCH_ERR_VERIFY, detail);
        return;
    }
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof(detail));
    else if (sslerr == SSL_ERROR_ZERO_RETURN)
        snprintf(detail, sizeof(detail), "close_notify during the handshake");
    else
        snprintf(detail, sizeof(detail), "handshake failed (SSL_get_error %d)", sslerr);
    ERR_clear_error();
    conn_finish(c, TLSC_BENCH_ERR_HANDSHAKE, detail);
}

static void send_request(conn_t *c)
{
    const tlsc_bench_target_t *t = &c->b->o->targets[c->target];
    const char *host = c->b->sni[c->target] != NULL ? c->b->sni[c->target] : t->host;
    char req[512];
    int n;

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlscache-bench/" TLSC_VERSION "\r\nConnection: close\r\n\r\n",
                 c->b->o->request_path, host);
    if (n < 0 || (size_t)n >= sizeof(req) || SSL_write(c->ssl, req, n) != n) {
        ERR_clear_error();
        conn_finish(c, TLSC_BENCH_ERR_READ, "could not write the request");
    }
}

/* The handshake just completed: count it, then decide what else this connection waits for. */
static void handshake_done(conn_t *c)
{
    bench_t *b = c->b;
    uint64_t elapsed_ms, remaining_ms;

    record_handshake(b, c);
    if (b->o->request) {
        c->state = CONN_REQUEST;
        send_request(c);
        return;
    }
    if (b->o->mode == TLSC_BENCH_MODE_FULL || c->received != NULL || SSL_version(c->ssl) != TLS1_3_VERSION) {
        conn_finish(c, -1, NULL);
        return;
    }
    if (b->tickets_seen[c->target][c->resumed] == 0 && b->ticket_misses[c->target][c->resumed] >= 2) {
        b->r->no_session++;
        b->r->ticket_wait_skipped = 1;
        conn_finish(c, -1, NULL);
        return;
    }
    /* TLS 1.3 sends the session after the handshake: wait for it, a bounded time. */
    c->state = CONN_TICKET_WAIT;
    elapsed_ms = (uv_hrtime() - c->t_start) / 1000000;
    remaining_ms = b->o->timeout_ms > elapsed_ms ? b->o->timeout_ms - elapsed_ms : 0;
    if (b->o->ticket_wait_ms < remaining_ms) {
        uv_timer_start(&c->timer, on_timeout, b->o->ticket_wait_ms, 0);
        c->ticket_timer = 1;
    }
}

static void conn_drive(conn_t *c)
{
    int rv, err;

    if (c->state == CONN_HANDSHAKE) {
        ERR_clear_error();
        rv = SSL_do_handshake(c->ssl);
        if (rv != 1) {
            err = SSL_get_error(c->ssl, rv);
            flush_out(c); /* an alert we send goes out too */
            if (err == SSL_ERROR_WANT_READ)
                return;
            handshake_failed(c, err);
            return;
        }
        handshake_done(c);
    }
    while (c->state == CONN_REQUEST || c->state == CONN_TICKET_WAIT) {
        rv = SSL_read(c->ssl, read_buf, sizeof(read_buf));
        if (rv > 0)
            continue;
        err = SSL_get_error(c->ssl, rv);
        if (err == SSL_ERROR_WANT_READ) {
            if (c->state == CONN_TICKET_WAIT && c->received != NULL)
                conn_finish(c, -1, NULL);
            break;
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
            if (c->state == CONN_REQUEST)
                c->b->r->requests_ok++;
            else if (c->received == NULL)
                c->b->r->no_session++;
            conn_finish(c, -1, NULL);
        } else {
            char detail[160];
            unsigned long e = ERR_peek_last_error();

            if (e != 0)
                ERR_error_string_n(e, detail, sizeof(detail));
            else
                snprintf(detail, sizeof(detail), "TLS read failed (SSL_get_error %d)", err);
            ERR_clear_error();
            conn_finish(c, TLSC_BENCH_ERR_READ, detail);
        }
        break;
    }
    if (c->state != CONN_CLOSING && flush_out(c) != 0)
        conn_finish(c, TLSC_BENCH_ERR_READ, "write failed");
}

/* OpenSSL hands us a session: at the end of a TLS 1.2 handshake, or per NewSessionTicket. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    conn_t *c = SSL_get_app_data(ssl);

    if (c == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    if (c->received != NULL)
        SSL_SESSION_free(c->received);
    c->received = sess;
    c->b->r->sessions_received++;
    c->b->tickets_seen[c->target][c->handshake_done ? c->resumed : 0]++;
    return 1; /* we keep the reference */
}

static void on_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    char detail[96];

    if (c->state == CONN_TICKET_WAIT) {
        c->b->r->no_session++;
        c->b->ticket_misses[c->target][c->resumed]++;
        conn_finish(c, -1, NULL);
        return;
    }
    snprintf(detail, sizeof(detail), "no %s within %u ms",
             c->state == CONN_CONNECTING  ? "TCP connection"
             : c->state == CONN_HANDSHAKE ? "handshake"
                                          : "end of reply",
             c->b->o->timeout_ms);
    conn_finish(c, TLSC_BENCH_ERR_TIMEOUT, detail);
}

/*
 * Ends a connection: kind -1 is success, otherwise an error kind (or -2: abandoned on
 * interrupt, not counted). The session it leaves behind goes back to the pool: the one it
 * received, else the one it offered if that one is still good (never tried, or resumed and
 * reusable: TLS 1.2).
 */
/*
 * A TLS 1.3 session that resumed is spent: a stateful ticket is single use (the server deleted
 * it), and RFC 8446 §C.4 asks clients not to reuse any ticket. Offered again (when its
 * connection ended before the fresh ticket came, e.g. the reply first under load), it would be
 * counted as a server miss.
 */
static int single_use(const SSL_SESSION *sess)
{
    return SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION;
}

static void conn_finish(conn_t *c, int kind, const char *detail)
{
    bench_t *b = c->b;

    if (c->state == CONN_CLOSING || c->state == CONN_IDLE)
        return;
    b->r->connections++;
    b->r->per_target[c->target].connections++;
    if (kind >= 0)
        record_error(b, c, kind, detail);
    if (kind == -2) {
        b->r->connections--;
        b->r->per_target[c->target].connections--;
    }

    if (c->received != NULL) {
        pool_push(b, c->received, c->target);
        c->received = NULL;
        if (c->offered != NULL)
            SSL_SESSION_free(c->offered);
    } else if (c->offered != NULL && (!c->handshake_done || (c->resumed && !single_use(c->offered)))) {
        pool_push(b, c->offered, c->issuer);
    } else if (c->offered != NULL) {
        SSL_SESSION_free(c->offered);
    }
    c->offered = NULL;

    if (c->ssl != NULL && c->handshake_done && kind == -1) {
        SSL_shutdown(c->ssl); /* close_notify; we do not wait for the peer's */
        ERR_clear_error();
        flush_out(c);
    }
    uv_timer_stop(&c->timer);
    c->state = CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_tcp_close);
}

static void on_tcp_close(uv_handle_t *h)
{
    conn_t *c = h->data;

    SSL_free(c->ssl);
    c->ssl = NULL;
    c->rbio = NULL;
    conn_start(c);
}

/* ------------------------------------------------------------------------------------------
 * Run control: progress, the hard deadline, ^C
 * ------------------------------------------------------------------------------------------ */

static void abandon_all(bench_t *b, int kind, const char *detail)
{
    b->stopping = 1;
    for (size_t i = 0; i < b->nconns; i++)
        if (b->conns[i].state != CONN_IDLE && b->conns[i].state != CONN_CLOSING)
            conn_finish(&b->conns[i], kind, detail);
}

static void on_deadline(uv_timer_t *t)
{
    bench_t *b = t->data;

    b->r->deadline_hit = 1;
    abandon_all(b, TLSC_BENCH_ERR_TIMEOUT, "still open at the run's hard deadline");
}

static void on_sigint(uv_signal_t *s, int signum)
{
    bench_t *b = s->data;

    b->r->interrupted = 1;
    abandon_all(b, -2, NULL);
}

static void on_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    tlsc_bench_result_t *r = b->r;
    double secs = (double)(uv_hrtime() - b->t0) / 1e9;
    uint64_t done = r->full + r->resumed;

    if (b->progress && secs >= 1.9) {
        fprintf(stderr, "\r%7.1f s  %10llu conns  %9.0f hs/s  resumed %5.1f %%  errors %llu\033[K", secs,
                (unsigned long long)r->connections, (double)(done - b->last_done),
                r->offered ? 100.0 * (double)r->resumed / (double)r->offered : 0.0,
                (unsigned long long)tlsc_bench_result_errors(r));
        fflush(stderr);
    }
    b->last_done = done;
}

static void close_loop_handles(bench_t *b)
{
    if (b->handles_closing)
        return;
    b->handles_closing = 1;
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->deadline, NULL);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    for (size_t i = 0; i < b->nconns; i++)
        uv_close((uv_handle_t *)&b->conns[i].timer, NULL);
}

/* ------------------------------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------------------------------ */

static int openssl_fail(char *err, size_t errlen, const char *what)
{
    char e[200] = "";

    ERR_error_string_n(ERR_get_error(), e, sizeof(e));
    snprintf(err, errlen, "%s: %s", what, e);
    ERR_clear_error();
    return UV_EINVAL;
}

static int make_ctx(const tlsc_bench_options_t *o, SSL_CTX **out, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    char what[600];

    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        return openssl_fail(err, errlen, "SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, o->tls_version ? o->tls_version : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, o->tls_version ? o->tls_version : TLS1_3_VERSION);
    if (o->mode != TLSC_BENCH_MODE_TICKET)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* TLS 1.2: no ticket extension, IDs only */
    if (o->mode == TLSC_BENCH_MODE_FULL) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    }
    if (o->cafile != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
            snprintf(what, sizeof(what), "--cafile %s", o->cafile);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->groups != NULL && SSL_CTX_set1_groups_list(ctx, o->groups) != 1) {
        snprintf(what, sizeof(what), "--groups %s", o->groups);
        goto fail;
    }
    if (o->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        snprintf(what, sizeof(what), "--ciphers %s", o->ciphers);
        goto fail;
    }
    if (o->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
        snprintf(what, sizeof(what), "--ciphersuites %s", o->ciphersuites);
        goto fail;
    }
    if (o->alpn != NULL) {
        unsigned char wire[1024];
        int n = tlsc_bench_alpn_wire(o->alpn, wire, sizeof(wire));

        if (n < 0 || SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n) != 0) { /* 0 is success here */
            snprintf(what, sizeof(what), "--alpn %s", o->alpn);
            goto fail;
        }
    }
    *out = ctx;
    return 0;

fail:
    SSL_CTX_free(ctx);
    return openssl_fail(err, errlen, what);
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[16];

    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

/* Resolves every target once, before the clock starts. */
static int resolve_targets(bench_t *b, char *err, size_t errlen)
{
    const tlsc_bench_options_t *o = b->o;

    for (size_t i = 0; i < o->ntargets; i++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
        char port[8];
        int rv;

        snprintf(port, sizeof(port), "%u", o->targets[i].port);
        if ((rv = getaddrinfo(o->targets[i].host, port, &hints, &res)) != 0) {
            snprintf(err, errlen, "--target %s: %s", o->targets[i].label, gai_strerror(rv));
            return UV_EINVAL;
        }
        memcpy(&b->addrs[i], res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
        if (o->no_sni)
            b->sni[i] = NULL;
        else if (o->sni != NULL)
            b->sni[i] = o->sni;
        else
            b->sni[i] = is_ip_literal(o->targets[i].host) ? NULL : o->targets[i].host;
    }
    return 0;
}

static double tv_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int tlsc_bench_run(const tlsc_bench_options_t *o, tlsc_bench_result_t *r, char *err, size_t errlen)
{
    bench_t b;
    struct rusage ru0, ru1;
    struct timespec wall;
    size_t nconns = o->concurrency;
    int rv;

    memset(&b, 0, sizeof(b));
    b.o = o;
    b.r = r;
    r->verified = o->cafile != NULL;
    r->seed = o->seed_set ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    b.rng = r->seed;
    if (o->connections != 0 && o->connections < nconns)
        nconns = (size_t)o->connections;

    if ((rv = resolve_targets(&b, err, errlen)) != 0)
        goto fail;
    if ((rv = make_ctx(o, &b.ctx, err, errlen)) != 0)
        goto fail;
    b.pool_cap = nconns * 4 + 64;
    b.pool = calloc(b.pool_cap, sizeof(*b.pool));
    b.conns = calloc(nconns, sizeof(*b.conns));
    if (b.pool == NULL || b.conns == NULL) {
        snprintf(err, errlen, "out of memory for %zu connection slots", nconns);
        rv = UV_ENOMEM;
        goto fail_mem;
    }
    if ((rv = uv_loop_init(&b.loop)) != 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rv));
        goto fail_mem;
    }
    b.nconns = nconns;
    b.progress = !o->quiet && isatty(STDERR_FILENO);

    uv_timer_init(&b.loop, &b.tick);
    uv_timer_init(&b.loop, &b.deadline);
    uv_signal_init(&b.loop, &b.sigint);
    b.tick.data = b.deadline.data = b.sigint.data = &b;
    uv_signal_start(&b.sigint, on_sigint, SIGINT);
    uv_unref((uv_handle_t *)&b.sigint);

    clock_gettime(CLOCK_REALTIME, &wall);
    r->start_wall = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
    getrusage(RUSAGE_SELF, &ru0);
    b.t0 = uv_hrtime();
    if (o->duration_sec > 0) {
        b.end_ns = b.t0 + (uint64_t)(o->duration_sec * 1e9);
        /* Connections started before the end get --timeout to finish; then everything stops. */
        uv_timer_start(&b.deadline, on_deadline, (uint64_t)(o->duration_sec * 1000) + o->timeout_ms + 500, 0);
    }
    uv_timer_start(&b.tick, on_tick, 1000, 1000);

    b.active = nconns;
    for (size_t i = 0; i < nconns; i++) {
        conn_t *c = &b.conns[i];

        c->b = &b;
        uv_timer_init(&b.loop, &c->timer);
        c->timer.data = c;
    }
    for (size_t i = 0; i < nconns; i++)
        conn_start(&b.conns[i]);
    uv_run(&b.loop, UV_RUN_DEFAULT);

    r->elapsed_sec = (double)(uv_hrtime() - b.t0) / 1e9;
    getrusage(RUSAGE_SELF, &ru1);
    r->cpu_user_sec = tv_sec(ru1.ru_utime) - tv_sec(ru0.ru_utime);
    r->cpu_sys_sec = tv_sec(ru1.ru_stime) - tv_sec(ru0.ru_stime);
    if (b.progress)
        fputs("\r\033[K", stderr);

    uv_loop_close(&b.loop);
    rv = 0;
fail_mem:
    while (b.pool != NULL && b.pool_len > 0) {
        size_t issuer;
        SSL_SESSION_free(pool_pop(&b, &issuer));
    }
    free(b.pool);
    free(b.conns);
    SSL_CTX_free(b.ctx);
fail:
    return rv;
}
