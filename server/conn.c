/*
 * This file's one job: a client connection's bytes and states — accept, read into OpenSSL,
 * drive the handshake, hand plaintext to the handler, write (or hold back) what OpenSSL
 * produced, close. Read it in firing order: on_connection, on_read, conn_drive,
 * conn_handshake, conn_read_app, conn_flush, on_write, conn_close, on_close.
 */

#include "conn.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"
#include "proxyhdr.h"
#include "util.h"

#define REQUEST_TIMEOUT_MS 10000
#define MAX_WAITING        16 /* listeners that may each hold one client while at max_conns */

struct tlsc_conn_s {
    tlsc_conns_t *set;
    tlsc_conn_t *prev, *next; /* the set's list, for drain and the deadline sweep */
    uv_tcp_t tcp;
    SSL *ssl;
    BIO *rbio, *wbio;
    tlsc_conn_state_t state;
    uint64_t deadline_ms;
    unsigned writes_pending;
    unsigned held : 1;        /* a new session's store is in flight: send nothing */
    unsigned ending : 1;      /* close once everything written is on the wire */
    unsigned counted : 1;     /* the handshake's outcome was counted */
    unsigned hello_seen : 1;  /* the ClientHello was read: the version label means something */
    uint64_t accepted_us;     /* for the handshake latency histogram */
    unsigned paused : 1;      /* the handler asked to stop reading (backpressure) */
    unsigned peer_closed : 1; /* the client's close_notify came; it sends nothing more */
    unsigned driving : 1;     /* inside conn_drive, which flushes on its way out */
    void *app;                /* the handler's state: while OPEN, or from the ClientHello (handler->hello) */
    unsigned char *pp;        /* --accept-proxy: the header so far (TLSC_PROXYHDR_IN_MAX), until it is whole */
    size_t pp_len;
    int pp_wait;                /* the PROXY header has not been read yet */
    tlsc_proxyhdr_addrs_t peer; /* what it said (family 0: use the socket's own) */
    tlsc_session_hs_t hs;
    /* What the access log says about the connection. */
    struct sockaddr_storage sock_peer; /* the socket's peer, taken at accept (with --access-log only) */
    uint64_t hs_us;                    /* accept to handshake done */
    uint64_t bytes_in, bytes_out;      /* plaintext, client to us and us to client */
    const char *session_from;          /* "full", "local", "redis", "ticket"; NULL until the handshake is done */
    const char *backend, *proxy_end;   /* tlsc_conn_note_proxy */
};

struct tlsc_conns_s {
    tlsc_conns_options_t o;
    tlsc_conn_t *list;
    size_t count;
    int draining;
    uv_stream_t *waiting[MAX_WAITING]; /* listeners holding a client we did not accept yet */
    size_t n_waiting;
    char readbuf[65536]; /* socket reads: consumed (into the read BIO) before the next read */
    char appbuf[16384];  /* plaintext: consumed by the handler before the next SSL_read */
};

typedef struct {
    uv_write_t req;
    tlsc_conn_t *conn;
    char data[];
} write_req_t;

static void conn_drive(tlsc_conn_t *c);
static void conn_flush(tlsc_conn_t *c);
static void conn_close(tlsc_conn_t *c, tlsc_close_cause_t cause);

/* ------------------------------------------------------------------------------------------ */
/* What the session hooks ask of a connection                                                 */

static void on_hello(void *conn, int parked)
{
    tlsc_conn_t *c = conn;

    c->hello_seen = 1;
    c->state = parked ? TLSC_CONN_LOOKUP : TLSC_CONN_HANDSHAKE;
    if (c->set->o.handler->hello != NULL && c->app == NULL)
        c->app = c->set->o.handler->hello(c->set->o.handler->hdata, c); /* e.g. the backend connect, overlapping the rest */
}

static void on_resume(void *conn)
{
    tlsc_conn_t *c = conn;

    c->state = TLSC_CONN_HANDSHAKE;
    conn_drive(c);
}

/* Holds back everything OpenSSL writes until release: the store must have the session first. */
static void on_hold(void *conn)
{
    ((tlsc_conn_t *)conn)->held = 1;
}

static void on_release(void *conn)
{
    tlsc_conn_t *c = conn;

    c->held = 0;
    conn_drive(c);
}

static const tlsc_session_io_t session_io = {on_hello, on_resume, on_hold, on_release};

/* ------------------------------------------------------------------------------------------ */
/* Accept and read                                                                              */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tlsc_conn_t *c = h->data;

    *buf = uv_buf_init(c->set->readbuf, sizeof(c->set->readbuf));
}

/*
 * --accept-proxy: collects the PROXY header (bounded) and hands what follows it to TLS. Returns
 * the offset in `buf` where TLS bytes start, `nread` when everything was header, or -1 when
 * the header is malformed (the connection is closed and counted).
 */
static ssize_t take_proxy_header(tlsc_conn_t *c, const char *buf, ssize_t nread)
{
    size_t take;
    int r;

    if (c->pp == NULL && (c->pp = malloc(TLSC_PROXYHDR_IN_MAX)) == NULL) {
        conn_close(c, TLSC_CLOSE_ERROR);
        return -1;
    }
    take = TLSC_PROXYHDR_IN_MAX - c->pp_len < (size_t)nread ? TLSC_PROXYHDR_IN_MAX - c->pp_len : (size_t)nread;
    memcpy(c->pp + c->pp_len, buf, take);
    c->pp_len += take;
    r = tlsc_proxyhdr_parse(c->pp, c->pp_len, &c->peer);
    if (r < 0 || (r == 0 && c->pp_len == TLSC_PROXYHDR_IN_MAX)) {
        tlsc_stat_inc(&c->set->o.stats->proxy_header_bad);
        tlsc_log_debug("malformed PROXY header from a load balancer: connection closed");
        conn_close(c, TLSC_CLOSE_PEER);
        return -1;
    }
    if (r == 0)
        return nread;
    c->pp_wait = 0;
    /* What came after the header in this read is TLS: it is in pp from r on, and in buf past take. */
    if ((size_t)r < c->pp_len && BIO_write(c->rbio, c->pp + r, (int)(c->pp_len - (size_t)r)) != (int)(c->pp_len - (size_t)r)) {
        conn_close(c, TLSC_CLOSE_ERROR);
        return -1;
    }
    free(c->pp);
    c->pp = NULL;
    return (ssize_t)take;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_conn_t *c = s->data;
    ssize_t off = 0;

    if (nread < 0) {
        /* A TCP FIN after close_notify is the client's half-close: it may still read. */
        if (nread == UV_EOF && c->peer_closed)
            uv_read_stop(s);
        else
            conn_close(c, TLSC_CLOSE_PEER);
        return;
    }
    if (nread == 0 || c->peer_closed)
        return;
    if (c->pp_wait && (off = take_proxy_header(c, buf->base, nread)) < 0)
        return;
    nread -= off;
    if (nread == 0) {
        if (!c->pp_wait)
            conn_drive(c); /* the header's read also carried TLS bytes */
        return;
    }
    size_t cap = c->state == TLSC_CONN_OPEN ? TLSC_CONN_RBIO_OPEN : TLSC_CONN_RBIO_HANDSHAKE;
    if (BIO_ctrl_pending(c->rbio) + (size_t)nread > cap) {
        conn_close(c, TLSC_CLOSE_LIMIT);
        return;
    }
    if (BIO_write(c->rbio, buf->base + off, (int)nread) != (int)nread) {
        conn_close(c, TLSC_CLOSE_ERROR);
        return;
    }
    conn_drive(c);
}

/* A fresh SSL over two memory BIOs, bound to the session hooks. 0 = ok. */
static int conn_tls_new(tlsc_conn_t *c)
{
    tlsc_conns_t *cs = c->set;

    if ((c->ssl = SSL_new(tlsc_tls_default_ctx(cs->o.tls))) == NULL)
        return -1;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        return -1;
    }
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    return tlsc_session_attach(cs->o.session, &c->hs, c->ssl, &session_io, c);
}

static void on_connection(uv_stream_t *server, int status)
{
    tlsc_conns_t *cs = server->data;
    tlsc_conn_t *c;

    if (status < 0 || cs->draining)
        return;
    /*
     * At the limit, leave the client unaccepted: libuv stops watching this listener until
     * uv_accept, so the rest wait in the kernel's queue. on_close takes it when one closes.
     */
    if (cs->count >= cs->o.max_conns && cs->n_waiting < MAX_WAITING) {
        for (size_t i = 0; i < cs->n_waiting; i++)
            if (cs->waiting[i] == server)
                return;
        cs->waiting[cs->n_waiting++] = server;
        return;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->set = cs;
    c->state = TLSC_CONN_HELLO;
    c->pp_wait = cs->o.accept_proxy;
    uv_tcp_init(cs->o.loop, &c->tcp);
    c->tcp.data = c;
    c->next = cs->list;
    if (cs->list != NULL)
        cs->list->prev = c;
    cs->list = c;
    cs->count++;
    tlsc_stat_set(&cs->o.stats->g.conns, cs->count);
    c->counted = 1; /* not a handshake until it is accepted */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || conn_tls_new(c) != 0) {
        ERR_clear_error();
        conn_close(c, TLSC_CLOSE_ERROR);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (cs->o.access_log != NULL) {
        int len = sizeof(c->sock_peer);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->sock_peer, &len) != 0)
            c->sock_peer.ss_family = AF_UNSPEC;
    }
    c->deadline_ms = tlsc_now_ms() + cs->o.handshake_timeout_ms;
    c->accepted_us = tlsc_stats_now_us();
    c->counted = 0;
    tlsc_stat_inc(&cs->o.stats->connections);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c, TLSC_CLOSE_ERROR);
}

/* ------------------------------------------------------------------------------------------ */
/* Drive: handshake, then the handler                                                           */

/* The version OpenSSL chose; before the ClientHello was read it reports its highest, not a choice. */
static tlsc_tlsv_t conn_version(const tlsc_conn_t *c)
{
    if (!c->hello_seen)
        return TLSC_TLSV_UNKNOWN;
    switch (SSL_version(c->ssl)) {
    case TLS1_2_VERSION:
        return TLSC_TLSV_12;
    case TLS1_3_VERSION:
        return TLSC_TLSV_13;
    default:
        return TLSC_TLSV_UNKNOWN;
    }
}

/* Counts the handshake's outcome, once. */
static void count_outcome(tlsc_conn_t *c, tlsc_hs_outcome_t outcome)
{
    if (c->counted)
        return;
    c->counted = 1;
    tlsc_stat_inc(&c->set->o.stats->handshakes[conn_version(c)][outcome]);
}

/* Why OpenSSL failed a handshake, from its error queue's last reason. */
static tlsc_hs_outcome_t failure_cause(unsigned long e)
{
    int reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;

    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
        return TLSC_OUT_FAILED_ALERT; /* an alert the peer sent */
    switch (reason) {
    case SSL_R_CALLBACK_FAILED:
        return TLSC_OUT_FAILED_SNI; /* the ClientHello callback refuses only a bad SNI */
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
        return TLSC_OUT_FAILED_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return TLSC_OUT_FAILED_CIPHER;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
        return TLSC_OUT_FAILED_NOT_TLS;
    default:
        return TLSC_OUT_FAILED_ERROR;
    }
}

static void handshake_failed(tlsc_conn_t *c)
{
    tlsc_stat_inc(&c->set->o.stats->handshake_errors);
    count_outcome(c, failure_cause(ERR_peek_last_error()));
    if (tlsc_log_enabled(TLSC_LOG_DEBUG)) {
        char msg[256];
        ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
        tlsc_log_debug("handshake failed: %s", msg);
    }
    ERR_clear_error();
    c->ending = 1; /* the alert goes out, then the connection closes */
}

/* Runs the handshake on; returns 1 once it is done and the handler has the connection. */
static int conn_handshake(tlsc_conn_t *c)
{
    tlsc_conns_t *cs = c->set;
    int r = SSL_do_handshake(c->ssl);
    void *early;

    if (r != 1) {
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            return 0;
        case SSL_ERROR_WANT_CLIENT_HELLO_CB:
            return 0; /* parked for a lookup (state LOOKUP); on_resume drives again */
        default:
            handshake_failed(c);
            return 0;
        }
    }
    if (SSL_session_reused(c->ssl)) {
        int from_store = tlsc_session_from_store(&c->hs);
        tlsc_stat_inc(&cs->o.stats->handshakes_resumed);
        count_outcome(c, from_store ? TLSC_OUT_RESUMED_ID : TLSC_OUT_RESUMED_TICKET);
        c->session_from = !from_store ? "ticket" : tlsc_session_from_l1(&c->hs) ? "local" : "redis";
    } else {
        tlsc_stat_inc(&cs->o.stats->handshakes_full);
        count_outcome(c, TLSC_OUT_FULL);
        c->session_from = "full";
    }
    c->hs_us = tlsc_stats_now_us() - c->accepted_us;
    tlsc_hist_observe(&cs->o.stats->handshake_us, c->hs_us);
    c->state = TLSC_CONN_OPEN;
    c->deadline_ms = tlsc_now_ms() + REQUEST_TIMEOUT_MS;
    early = c->app;
    c->app = NULL;
    if ((c->app = cs->o.handler->open(cs->o.handler->hdata, c, early)) == NULL) {
        conn_close(c, TLSC_CLOSE_ERROR);
        return 0;
    }
    return 1;
}

/* Hands decrypted bytes to the handler until OpenSSL wants more from the socket. */
static void conn_read_app(tlsc_conn_t *c)
{
    tlsc_conns_t *cs = c->set;
    int r;

    while (c->state == TLSC_CONN_OPEN && !c->ending && !c->paused && !c->peer_closed) {
        r = SSL_read(c->ssl, cs->appbuf, sizeof(cs->appbuf));
        if (r <= 0) {
            int err = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (err == SSL_ERROR_ZERO_RETURN && cs->o.handler->eof != NULL) {
                c->peer_closed = 1;
                cs->o.handler->eof(c->app, c);
            } else if (err == SSL_ERROR_SSL) {
                c->ending = 1; /* a bad record: the fatal alert OpenSSL wrote goes out, then close */
            } else if (err != SSL_ERROR_WANT_READ) {
                conn_close(c, TLSC_CLOSE_PEER); /* close_notify, or the peer went away */
            }
            return;
        }
        c->bytes_in += (uint64_t)r;
        cs->o.handler->data(c->app, c, cs->appbuf, (size_t)r);
    }
}

static void conn_drive(tlsc_conn_t *c)
{
    if (c->state == TLSC_CONN_CLOSING || c->state == TLSC_CONN_LOOKUP)
        return;
    c->driving = 1;
    if (c->state == TLSC_CONN_OPEN || c->ending || conn_handshake(c))
        conn_read_app(c);
    c->driving = 0;
    conn_flush(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Write                                                                                        */

static void on_write(uv_write_t *req, int status)
{
    write_req_t *wr = (write_req_t *)req;
    tlsc_conn_t *c = wr->conn;

    free(wr);
    c->writes_pending--;
    if (status < 0)
        conn_close(c, TLSC_CLOSE_PEER); /* a write to a peer that is gone */
    else if (c->ending && c->writes_pending == 0 && !c->held && BIO_ctrl_pending(c->wbio) == 0)
        conn_close(c, c->state == TLSC_CONN_OPEN ? TLSC_CLOSE_DONE : TLSC_CLOSE_HS_FAIL);
    else if (c->state == TLSC_CONN_OPEN && c->set->o.handler->writable != NULL && tlsc_conn_queued(c) <= TLSC_CONN_LOW_WATER)
        c->set->o.handler->writable(c->app, c);
}

/* Queues what the socket did not take at once. 0 = ok. */
static int conn_queue(tlsc_conn_t *c, const char *data, size_t len)
{
    write_req_t *wr = malloc(sizeof(*wr) + len);
    uv_buf_t buf;

    if (wr == NULL)
        return -1;
    wr->conn = c;
    memcpy(wr->data, data, len);
    buf = uv_buf_init(wr->data, (unsigned int)len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(wr);
        return -1;
    }
    c->writes_pending++;
    return 0;
}

/* Sends what OpenSSL wrote, unless it is held back for a store in flight. */
static void conn_flush(tlsc_conn_t *c)
{
    char *data;
    long len;
    int n;

    if (c->state == TLSC_CONN_CLOSING || c->held)
        return;
    len = BIO_get_mem_data(c->wbio, &data);
    if (len > 0) {
        uv_buf_t buf = uv_buf_init(data, (unsigned int)len);

        n = c->writes_pending == 0 ? uv_try_write((uv_stream_t *)&c->tcp, &buf, 1) : UV_EAGAIN;
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c, TLSC_CLOSE_PEER);
            return;
        }
        if (n < 0)
            n = 0;
        if (n < len && conn_queue(c, data + n, (size_t)(len - n)) != 0) {
            conn_close(c, TLSC_CLOSE_ERROR);
            return;
        }
        (void)BIO_reset(c->wbio);
    }
    if (c->ending && c->writes_pending == 0)
        conn_close(c, c->state == TLSC_CONN_OPEN ? TLSC_CLOSE_DONE : TLSC_CLOSE_HS_FAIL);
    /*
     * Bytes held back for a session store, then sent in one go by uv_try_write, complete no
     * write request: the handler hears here that the queue is low again, or it would wait forever.
     */
    else if (c->state == TLSC_CONN_OPEN && c->set->o.handler->writable != NULL && tlsc_conn_queued(c) <= TLSC_CONN_LOW_WATER)
        c->set->o.handler->writable(c->app, c);
}

int tlsc_conn_write(tlsc_conn_t *c, const void *buf, size_t len)
{
    if (c->state != TLSC_CONN_OPEN || len > INT32_MAX || (len > 0 && SSL_write(c->ssl, buf, (int)len) <= 0)) {
        ERR_clear_error();
        conn_close(c, TLSC_CLOSE_ERROR);
        return -1;
    }
    c->bytes_out += len;
    if (!c->driving)
        conn_flush(c); /* a handler writing from outside conn_drive (a backend's bytes) */
    return c->state == TLSC_CONN_CLOSING ? -1 : 0;
}

void tlsc_conn_end(tlsc_conn_t *c)
{
    if (c->state == TLSC_CONN_CLOSING)
        return;
    SSL_shutdown(c->ssl); /* close_notify goes out with what was written */
    ERR_clear_error();
    c->ending = 1;
    if (!c->driving)
        conn_flush(c);
}

void tlsc_conn_shutdown(tlsc_conn_t *c)
{
    if (c->state != TLSC_CONN_OPEN)
        return;
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    if (!c->driving)
        conn_flush(c);
}

void tlsc_conn_pause(tlsc_conn_t *c, int paused)
{
    if (c->state != TLSC_CONN_OPEN || c->paused == !!paused)
        return;
    c->paused = !!paused;
    if (paused) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        return;
    }
    if (!c->peer_closed && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c, TLSC_CLOSE_ERROR);
        return;
    }
    if (!c->driving)
        conn_drive(c); /* what the read BIO already holds */
}

size_t tlsc_conn_queued(const tlsc_conn_t *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) + BIO_ctrl_pending(c->wbio);
}

void tlsc_conn_set_timeout(tlsc_conn_t *c, uint64_t ms)
{
    c->deadline_ms = tlsc_now_ms() + ms;
}

/* ------------------------------------------------------------------------------------------ */
/* Close: one path for every end                                                                */

static void on_close(uv_handle_t *h)
{
    tlsc_conn_t *c = h->data;
    tlsc_conns_t *cs = c->set;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        cs->list = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    cs->count--;
    tlsc_stat_set(&cs->o.stats->g.conns, cs->count);
    SSL_free(c->ssl); /* frees both BIOs */
    free(c->pp);
    free(c);
    if (cs->draining && cs->count == 0)
        cs->o.on_drained(cs->o.data);
    else if (!cs->draining && cs->n_waiting > 0 && cs->count < cs->o.max_conns)
        on_connection(cs->waiting[--cs->n_waiting], 0); /* the client that waited is accepted now */
}

/* One access-log line for a connection that is closing (its socket and SSL are still there). */
static void log_access(tlsc_conn_t *c, tlsc_close_cause_t cause)
{
    struct sockaddr_storage peer, local;
    const struct sockaddr *client = NULL;
    tlsc_accesslog_entry_t e = {0};

    if (c->peer.family == 4 || c->peer.family == 6) {
        if (tlsc_conn_addrs(c, &peer, &local) == 0)
            client = (const struct sockaddr *)&peer; /* what the PROXY header said */
    } else if (c->sock_peer.ss_family != AF_UNSPEC) {
        client = (const struct sockaddr *)&c->sock_peer;
    }
    e.client = client;
    e.sni = tlsc_session_sni(&c->hs);
    if (c->session_from != NULL) {
        unsigned int alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &e.alpn, &alpn_len);
        e.alpn_len = alpn_len;
        e.protocol = SSL_get_version(c->ssl);
        e.cipher = SSL_get_cipher_name(c->ssl);
        e.session = c->session_from;
        e.handshake_us = c->hs_us;
    }
    e.bytes_in = c->bytes_in;
    e.bytes_out = c->bytes_out;
    e.duration_us = c->accepted_us != 0 ? tlsc_stats_now_us() - c->accepted_us : 0;
    e.backend = c->backend;
    e.close = tlsc_close_cause_names[cause];
    e.end = c->proxy_end;
    tlsc_accesslog_write(c->set->o.access_log, &e);
}

static void conn_close(tlsc_conn_t *c, tlsc_close_cause_t cause)
{
    tlsc_conns_t *cs = c->set;

    if (c->state == TLSC_CONN_CLOSING)
        return;
    tlsc_stat_inc(&cs->o.stats->closed[cause]);
    if (c->state != TLSC_CONN_OPEN)
        count_outcome(c, cause == TLSC_CLOSE_TIMEOUT ? TLSC_OUT_FAILED_TIMEOUT
                         : cause == TLSC_CLOSE_LIMIT ? TLSC_OUT_FAILED_ERROR
                                                     : TLSC_OUT_FAILED_CLOSED);
    if (c->app != NULL)
        cs->o.handler->close(c->app, cause); /* open, or the state hello started */
    c->app = NULL;
    if (cs->o.access_log != NULL && c->accepted_us != 0)
        log_access(c, cause); /* an accept that failed is no connection to log */
    c->state = TLSC_CONN_CLOSING;
    tlsc_session_detach(&c->hs);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void tlsc_conn_close(tlsc_conn_t *c)
{
    conn_close(c, TLSC_CLOSE_DONE);
}

int tlsc_conn_addrs(const tlsc_conn_t *c, struct sockaddr_storage *peer, struct sockaddr_storage *local)
{
    int plen = sizeof(*peer), llen = sizeof(*local), r;

    if (c->peer.family == 4 || c->peer.family == 6) {
        memset(peer, 0, sizeof(*peer));
        memset(local, 0, sizeof(*local));
        if (c->peer.family == 4) {
            struct sockaddr_in *p4 = (struct sockaddr_in *)peer, *l4 = (struct sockaddr_in *)local;
            p4->sin_family = l4->sin_family = AF_INET;
            memcpy(&p4->sin_addr, c->peer.src, 4);
            memcpy(&l4->sin_addr, c->peer.dst, 4);
            p4->sin_port = htons(c->peer.sport);
            l4->sin_port = htons(c->peer.dport);
        } else {
            struct sockaddr_in6 *p6 = (struct sockaddr_in6 *)peer, *l6 = (struct sockaddr_in6 *)local;
            p6->sin6_family = l6->sin6_family = AF_INET6;
            memcpy(&p6->sin6_addr, c->peer.src, 16);
            memcpy(&l6->sin6_addr, c->peer.dst, 16);
            p6->sin6_port = htons(c->peer.sport);
            l6->sin6_port = htons(c->peer.dport);
        }
        return 0;
    }
    if ((r = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)peer, &plen)) != 0)
        return r;
    return uv_tcp_getsockname(&c->tcp, (struct sockaddr *)local, &llen);
}

SSL *tlsc_conn_ssl(const tlsc_conn_t *c)
{
    return c->ssl;
}

const char *tlsc_conn_sni(const tlsc_conn_t *c)
{
    return tlsc_session_sni(&c->hs);
}

void tlsc_conn_note_proxy(tlsc_conn_t *c, const char *backend, const char *end)
{
    c->backend = backend;
    c->proxy_end = end;
}

/* ------------------------------------------------------------------------------------------ */
/* The set                                                                                      */

tlsc_conns_t *tlsc_conns_new(const tlsc_conns_options_t *o)
{
    tlsc_conns_t *cs = calloc(1, sizeof(*cs));

    if (cs != NULL)
        cs->o = *o;
    return cs;
}

void tlsc_conns_free(tlsc_conns_t *cs)
{
    free(cs);
}

int tlsc_conns_listen(tlsc_conns_t *cs, uv_tcp_t *listener, int backlog)
{
    listener->data = cs;
    return uv_listen((uv_stream_t *)listener, backlog, on_connection);
}

void tlsc_conns_sweep(tlsc_conns_t *cs, uint64_t now_ms, uint64_t drain_deadline_ms)
{
    tlsc_conn_t *c, *next;

    for (c = cs->list; c != NULL; c = next) {
        next = c->next;
        if (now_ms >= c->deadline_ms)
            conn_close(c, TLSC_CLOSE_TIMEOUT);
        else if (drain_deadline_ms != 0 && now_ms >= drain_deadline_ms)
            conn_close(c, TLSC_CLOSE_DRAIN);
    }
}

void tlsc_conns_drain(tlsc_conns_t *cs)
{
    cs->draining = 1;
    cs->n_waiting = 0; /* their listeners are closing */
    if (cs->count == 0)
        cs->o.on_drained(cs->o.data);
}

void tlsc_conns_close_all(tlsc_conns_t *cs)
{
    for (tlsc_conn_t *c = cs->list; c != NULL; c = c->next)
        conn_close(c, TLSC_CLOSE_SHUTDOWN);
}

size_t tlsc_conns_count(const tlsc_conns_t *cs)
{
    return cs->count;
}
