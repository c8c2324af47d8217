/*
 * This file's one job: a client connection's bytes and states — accept, read into OpenSSL,
 * drive the handshake, hand plaintext to the handler, write (or hold back) what OpenSSL
 * produced, close. Read it in firing order: on_connection, on_read, conn_drive,
 * conn_handshake, conn_read_app, conn_flush, on_write, conn_close, on_close.
 */

#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"
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
    unsigned held : 1;   /* a new session's store is in flight: send nothing */
    unsigned ending : 1; /* close once everything written is on the wire */
    void *app;           /* the handler's state while OPEN */
    tlsc_session_hs_t hs;
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

/* ------------------------------------------------------------------------------------------ */
/* What the session hooks ask of a connection                                                 */

static void on_hello(void *conn, int parked)
{
    tlsc_conn_t *c = conn;

    c->state = parked ? TLSC_CONN_LOOKUP : TLSC_CONN_HANDSHAKE;
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

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_conn_t *c = s->data;

    if (nread < 0) {
        tlsc_conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    size_t cap = c->state == TLSC_CONN_OPEN ? TLSC_CONN_RBIO_OPEN : TLSC_CONN_RBIO_HANDSHAKE;
    if (BIO_ctrl_pending(c->rbio) + (size_t)nread > cap || BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
        tlsc_conn_close(c);
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
    uv_tcp_init(cs->o.loop, &c->tcp);
    c->tcp.data = c;
    c->next = cs->list;
    if (cs->list != NULL)
        cs->list->prev = c;
    cs->list = c;
    cs->count++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || conn_tls_new(c) != 0) {
        ERR_clear_error();
        tlsc_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->deadline_ms = tlsc_now_ms() + cs->o.handshake_timeout_ms;
    cs->o.stats->connections++;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        tlsc_conn_close(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Drive: handshake, then the handler                                                           */

static void handshake_failed(tlsc_conn_t *c)
{
    c->set->o.stats->handshake_errors++;
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
    if (SSL_session_reused(c->ssl))
        cs->o.stats->handshakes_resumed++;
    else
        cs->o.stats->handshakes_full++;
    c->state = TLSC_CONN_OPEN;
    c->deadline_ms = tlsc_now_ms() + REQUEST_TIMEOUT_MS;
    if ((c->app = cs->o.handler->open(cs->o.handler->hdata, c)) == NULL) {
        tlsc_conn_close(c);
        return 0;
    }
    return 1;
}

/* Hands decrypted bytes to the handler until OpenSSL wants more from the socket. */
static void conn_read_app(tlsc_conn_t *c)
{
    tlsc_conns_t *cs = c->set;
    int r;

    while (c->state == TLSC_CONN_OPEN && !c->ending) {
        r = SSL_read(c->ssl, cs->appbuf, sizeof(cs->appbuf));
        if (r <= 0) {
            int err = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (err == SSL_ERROR_SSL)
                c->ending = 1; /* a bad record: the fatal alert OpenSSL wrote goes out, then close */
            else if (err != SSL_ERROR_WANT_READ)
                tlsc_conn_close(c);
            return;
        }
        cs->o.handler->data(c->app, c, cs->appbuf, (size_t)r);
    }
}

static void conn_drive(tlsc_conn_t *c)
{
    if (c->state == TLSC_CONN_CLOSING || c->state == TLSC_CONN_LOOKUP)
        return;
    if (c->state != TLSC_CONN_OPEN && !c->ending && !conn_handshake(c)) {
        conn_flush(c);
        return;
    }
    conn_read_app(c);
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
        tlsc_conn_close(c);
    else if (c->ending && c->writes_pending == 0 && !c->held && BIO_ctrl_pending(c->wbio) == 0)
        tlsc_conn_close(c);
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
            tlsc_conn_close(c);
            return;
        }
        if (n < 0)
            n = 0;
        if (n < len && conn_queue(c, data + n, (size_t)(len - n)) != 0) {
            tlsc_conn_close(c);
            return;
        }
        (void)BIO_reset(c->wbio);
    }
    if (c->ending && c->writes_pending == 0)
        tlsc_conn_close(c);
}

int tlsc_conn_write(tlsc_conn_t *c, const void *buf, size_t len)
{
    if (c->state != TLSC_CONN_OPEN || len > INT32_MAX || (len > 0 && SSL_write(c->ssl, buf, (int)len) <= 0)) {
        ERR_clear_error();
        tlsc_conn_close(c);
        return -1;
    }
    return 0;
}

void tlsc_conn_end(tlsc_conn_t *c)
{
    if (c->state == TLSC_CONN_CLOSING)
        return;
    SSL_shutdown(c->ssl); /* close_notify goes out with what was written */
    ERR_clear_error();
    c->ending = 1;
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
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
    if (cs->draining && cs->count == 0)
        cs->o.on_drained(cs->o.data);
    else if (!cs->draining && cs->n_waiting > 0 && cs->count < cs->o.max_conns)
        on_connection(cs->waiting[--cs->n_waiting], 0); /* the client that waited is accepted now */
}

void tlsc_conn_close(tlsc_conn_t *c)
{
    tlsc_conns_t *cs = c->set;

    if (c->state == TLSC_CONN_CLOSING)
        return;
    if (c->state == TLSC_CONN_OPEN && c->app != NULL)
        cs->o.handler->close(c->app);
    c->app = NULL;
    c->state = TLSC_CONN_CLOSING;
    tlsc_session_detach(&c->hs);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

SSL *tlsc_conn_ssl(const tlsc_conn_t *c)
{
    return c->ssl;
}

const char *tlsc_conn_sni(const tlsc_conn_t *c)
{
    return tlsc_session_sni(&c->hs);
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
        if (now_ms >= c->deadline_ms || (drain_deadline_ms != 0 && now_ms >= drain_deadline_ms))
            tlsc_conn_close(c);
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
        tlsc_conn_close(c);
}

size_t tlsc_conns_count(const tlsc_conns_t *cs)
{
    return cs->count;
}
