#include "keyd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "tickets.h"
#include "util.h"

#define TICK_MS 100

typedef enum {
    KEYD_WAITING,    /* backoff timer running */
    KEYD_RESOLVING,  /* uv_getaddrinfo in flight */
    KEYD_CONNECTING, /* TCP/Unix connect in flight */
    KEYD_HANDSHAKE,  /* TLS + HELLO exchange */
    KEYD_OPEN,       /* HELLO answered: KEYSETs flow */
    KEYD_CLOSED,     /* tlsc_keyd_close() called */
} keyd_state_t;

typedef struct conn_s {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t connect_req;
    tlsc_keyd_t *owner; /* always set: counts this handle */
    tlsc_keyd_t *kd;    /* NULL once detached from the client */
    tlsc_keyproto_conn_t *tls;
} conn_t;

struct tlsc_keyd_s {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int gai_pending;
    tlsc_keyd_options_t o;
    char *address, *node, *host, *port, *path; /* path != NULL: Unix socket */
    tlsc_keyproto_link_t *link;
    keyd_state_t state;
    conn_t *conn;
    uint64_t deadline_ms, next_ping_ms;
    unsigned backoff_ms, pings_out;
    uint64_t ping_nonce;
    tlsc_keyd_stats_t stats;
    int in_callback, close_requested, pending_handles;
    unsigned char rbuf[TLSC_KEYPROTO_CONN_RECV_MAX];
};

static void start_connect(tlsc_keyd_t *kd);
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
static void open_conn(tlsc_keyd_t *kd, const struct sockaddr *sa);
static void on_connected(uv_connect_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_conn_closed(uv_handle_t *h);
static void on_tick(uv_timer_t *t);
static void on_timer_closed(uv_handle_t *h);

/* ================================================================ setup */

static int parse_address(tlsc_keyd_t *kd, const char *a, char *err, size_t errlen)
{
    const char *colon;

    if (strncmp(a, "unix:", 5) == 0) {
        if (a[5] == '\0' || strlen(a + 5) >= 108)
            goto bad;
        kd->path = strdup(a + 5);
        return kd->path ? 0 : UV_ENOMEM;
    }
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (close == NULL || close[1] != ':' || close == a + 1)
            goto bad;
        kd->host = strndup(a + 1, (size_t)(close - a - 1));
        colon = close + 1;
    } else {
        if ((colon = strrchr(a, ':')) == NULL || colon == a)
            goto bad;
        kd->host = strndup(a, (size_t)(colon - a));
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535 || kd->host == NULL)
        goto bad;
    kd->port = strdup(colon + 1);
    return kd->port ? 0 : UV_ENOMEM;
bad:
    snprintf(err, errlen, "--keyd %s: expected HOST:PORT, [V6]:PORT or unix:PATH", a);
    return UV_EINVAL;
}

static void free_strings(tlsc_keyd_t *kd)
{
    free(kd->address);
    free(kd->node);
    free(kd->host);
    free(kd->port);
    free(kd->path);
}

int tlsc_keyd_new(uv_loop_t *loop, const tlsc_keyd_options_t *o, tlsc_keyd_t **out, char *err, size_t errlen)
{
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    tlsc_keyd_t *kd;
    int rc;

    if (o->address == NULL || o->secret_file == NULL || o->on_keyset == NULL) {
        snprintf(err, errlen, "--keyd and --keyd-secret-file are both needed");
        return UV_EINVAL;
    }
    if ((kd = calloc(1, sizeof(*kd))) == NULL)
        return UV_ENOMEM;
    kd->loop = loop;
    kd->o = *o;
    if (kd->o.backoff_min_ms == 0)
        kd->o.backoff_min_ms = 100;
    if (kd->o.backoff_max_ms < kd->o.backoff_min_ms)
        kd->o.backoff_max_ms = kd->o.backoff_min_ms > 5000 ? kd->o.backoff_min_ms : 5000;
    if (kd->o.ping_interval_ms == 0)
        kd->o.ping_interval_ms = 15000;
    if (kd->o.connect_timeout_ms == 0)
        kd->o.connect_timeout_ms = 5000;
    kd->address = strdup(o->address);
    kd->node = strdup(o->node && o->node[0] ? o->node : "worker");
    if (kd->address == NULL || kd->node == NULL) {
        rc = UV_ENOMEM;
        goto fail;
    }
    kd->o.address = kd->address;
    kd->o.node = kd->node;
    kd->o.secret_file = NULL; /* not needed after this */
    if ((rc = parse_address(kd, o->address, err, errlen)) != 0)
        goto fail;
    if (tlsc_keyproto_psk_load(o->secret_file, psk, err, errlen) != 0) {
        rc = UV_EINVAL;
        goto fail;
    }
    rc = tlsc_keyproto_link_new(0, psk, &kd->link, err, errlen);
    OPENSSL_cleanse(psk, sizeof(psk));
    if (rc != 0) {
        rc = UV_EINVAL;
        goto fail;
    }
    if ((rc = uv_timer_init(loop, &kd->timer)) != 0)
        goto fail_link;
    kd->timer.data = kd;
    kd->pending_handles = 1;
    uv_timer_start(&kd->timer, on_tick, TICK_MS, TICK_MS);
    kd->backoff_ms = kd->o.backoff_min_ms;
    start_connect(kd);
    *out = kd;
    return 0;

fail_link:
    tlsc_keyproto_link_free(kd->link);
fail:
    free_strings(kd);
    free(kd);
    return rc;
}

/* ================================================================ connection */

static void maybe_free(tlsc_keyd_t *kd)
{
    if (kd->state != KEYD_CLOSED || kd->pending_handles > 0 || kd->gai_pending || kd->in_callback)
        return;
    tlsc_keyproto_link_free(kd->link);
    free_strings(kd);
    OPENSSL_cleanse(kd->rbuf, sizeof(kd->rbuf));
    free(kd);
}

/* Drops the current link (if any) and schedules the next attempt with jittered backoff. */
static void disconnect(tlsc_keyd_t *kd, const char *why)
{
    conn_t *c = kd->conn;
    unsigned jitter;

    if (c != NULL) {
        kd->conn = NULL;
        c->kd = NULL;
        if (!uv_is_closing(&c->h.handle))
            uv_close(&c->h.handle, on_conn_closed);
    }
    if (kd->state == KEYD_CLOSED)
        return;
    if (why != NULL) {
        if (kd->state == KEYD_OPEN)
            tlsc_log_warn("keyd %s: link lost: %s", kd->address, why);
        else
            tlsc_log_debug("keyd %s: %s", kd->address, why);
        kd->stats.failures++;
    }
    kd->stats.connected = 0;
    kd->state = KEYD_WAITING;
    RAND_bytes((unsigned char *)&jitter, sizeof(jitter));
    kd->deadline_ms = tlsc_now_ms() + kd->backoff_ms / 2 + jitter % (kd->backoff_ms / 2 + 1);
    kd->backoff_ms = kd->backoff_ms * 2 > kd->o.backoff_max_ms ? kd->o.backoff_max_ms : kd->backoff_ms * 2;
}

static void start_connect(tlsc_keyd_t *kd)
{
    struct addrinfo hints;

    if (kd->gai_pending) { /* an abandoned lookup still owns kd->gai: try again shortly */
        kd->deadline_ms = tlsc_now_ms() + TICK_MS;
        return;
    }
    kd->deadline_ms = tlsc_now_ms() + kd->o.connect_timeout_ms;
    if (kd->path != NULL) {
        open_conn(kd, NULL);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    kd->gai.data = kd;
    kd->state = KEYD_RESOLVING;
    if (uv_getaddrinfo(kd->loop, &kd->gai, on_resolved, kd->host, kd->port, &hints) != 0) {
        disconnect(kd, "resolve failed");
        return;
    }
    kd->gai_pending = 1;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tlsc_keyd_t *kd = req->data;

    kd->gai_pending = 0;
    if (kd->state != KEYD_RESOLVING) { /* closed, or timed out meanwhile */
        uv_freeaddrinfo(res);
        maybe_free(kd);
        return;
    }
    if (status != 0 || res == NULL) {
        uv_freeaddrinfo(res);
        disconnect(kd, status ? uv_strerror(status) : "no address");
        return;
    }
    open_conn(kd, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* Sends whatever ciphertext the TLS session has ready. */
static int flush(tlsc_keyd_t *kd)
{
    conn_t *c = kd->conn;
    size_t n;

    if (c == NULL)
        return UV_ENOTCONN;
    /* Bounded: each pass drains up to 64 KiB of a pair that holds at most 64 KiB. */
    for (int i = 0; i < 4 && (n = tlsc_keyproto_conn_pending(c->tls)) > 0; i++) {
        uv_write_t *req = malloc(sizeof(*req) + n);
        if (req == NULL)
            return UV_ENOMEM;
        unsigned char *data = (unsigned char *)(req + 1);
        uv_buf_t buf = uv_buf_init((char *)data, (unsigned)tlsc_keyproto_conn_take(c->tls, data, n));
        req->data = (void *)(uintptr_t)buf.len;
        int rc = uv_write(req, &c->h.stream, &buf, 1, on_write);
        if (rc != 0) {
            free(req);
            return rc;
        }
    }
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    free(req); /* ciphertext only: nothing to wipe */
}

static void send_msg(tlsc_keyd_t *kd, const tlsc_keyproto_msg_t *m)
{
    int rc;

    if (kd->conn == NULL)
        return;
    if ((rc = tlsc_keyproto_conn_send(kd->conn->tls, m)) != 0) {
        disconnect(kd, tlsc_keyproto_strerror(rc));
        return;
    }
    if (flush(kd) != 0)
        disconnect(kd, "write failed");
}

static void open_conn(tlsc_keyd_t *kd, const struct sockaddr *sa)
{
    tlsc_keyproto_msg_t *hello;
    conn_t *c;
    int rc;

    if ((c = calloc(1, sizeof(*c))) == NULL || (c->tls = tlsc_keyproto_conn_new(kd->link)) == NULL) {
        free(c);
        disconnect(kd, "out of memory");
        return;
    }
    rc = sa ? uv_tcp_init(kd->loop, &c->h.tcp) : uv_pipe_init(kd->loop, &c->h.pipe, 0);
    if (rc != 0) {
        tlsc_keyproto_conn_free(c->tls);
        free(c);
        disconnect(kd, uv_strerror(rc));
        return;
    }
    c->h.handle.data = c;
    c->kd = c->owner = kd;
    kd->conn = c;
    kd->pending_handles++;
    kd->state = KEYD_CONNECTING;
    c->connect_req.data = c;
    if (sa) {
        uv_tcp_nodelay(&c->h.tcp, 1);
        rc = uv_tcp_connect(&c->connect_req, &c->h.tcp, sa, on_connected);
    } else {
        uv_pipe_connect(&c->connect_req, &c->h.pipe, kd->path, on_connected);
        rc = 0;
    }
    if (rc != 0) {
        disconnect(kd, uv_strerror(rc));
        return;
    }
    /* The HELLO waits in the TLS session until the handshake completes. */
    if ((hello = calloc(1, sizeof(*hello))) == NULL) {
        disconnect(kd, "out of memory");
        return;
    }
    hello->type = TLSC_KEYPROTO_HELLO;
    hello->u.hello.version_min = TLSC_KEYPROTO_VERSION_MIN;
    hello->u.hello.version_max = TLSC_KEYPROTO_VERSION;
    hello->u.hello.worker = kd->o.worker;
    snprintf(hello->u.hello.node, sizeof(hello->u.hello.node), "%s", kd->node);
    if (kd->o.get_held != NULL)
        kd->o.get_held(kd, &hello->u.hello.held, kd->o.data);
    rc = tlsc_keyproto_conn_send(c->tls, hello);
    tlsc_keyproto_msg_wipe(hello);
    free(hello);
    if (rc != 0)
        disconnect(kd, "cannot encode HELLO (held key set invalid?)");
}

static void on_connected(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    tlsc_keyd_t *kd = c->kd;

    if (kd == NULL) /* detached while connecting */
        return;
    if (status != 0) {
        disconnect(kd, uv_strerror(status));
        return;
    }
    kd->state = KEYD_HANDSHAKE;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0 || flush(kd) != 0)
        disconnect(kd, "cannot start reading");
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    tlsc_keyd_t *kd = c->owner;

    tlsc_keyproto_conn_free(c->tls);
    free(c);
    kd->pending_handles--;
    maybe_free(kd);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;

    if (c->kd == NULL) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->kd->rbuf;
    buf->len = sizeof(c->kd->rbuf);
}

static void handle_msg(tlsc_keyd_t *kd, tlsc_keyproto_msg_t *m)
{
    tlsc_keyproto_msg_t reply;
    int rc;

    memset(&reply, 0, sizeof(reply));
    switch (m->type) {
    case TLSC_KEYPROTO_HELLO:
        if (kd->state != KEYD_HANDSHAKE || m->u.hello.version_min != m->u.hello.version_max ||
            m->u.hello.version_max > TLSC_KEYPROTO_VERSION || m->u.hello.version_min < TLSC_KEYPROTO_VERSION_MIN) {
            disconnect(kd, "unexpected HELLO");
            return;
        }
        kd->state = KEYD_OPEN;
        kd->stats.connects++;
        kd->stats.connected = 1;
        kd->backoff_ms = kd->o.backoff_min_ms;
        kd->next_ping_ms = tlsc_now_ms() + kd->o.ping_interval_ms;
        kd->pings_out = 0;
        tlsc_log_info("keyd %s: connected (daemon %s, protocol v%u)", kd->address, m->u.hello.node,
                      (unsigned)m->u.hello.version_max);
        return;
    case TLSC_KEYPROTO_KEYSET:
        if (kd->state != KEYD_OPEN) {
            disconnect(kd, "KEYSET before HELLO");
            return;
        }
        kd->in_callback++;
        rc = kd->o.on_keyset(kd, &m->u.keyset, kd->o.data);
        kd->in_callback--;
        if (kd->state == KEYD_CLOSED)
            return;
        if (rc != 0) {
            kd->stats.rejected++;
            tlsc_log_warn("keyd %s: key set epoch %llu not applied (%d)", kd->address, (unsigned long long)m->u.keyset.epoch, rc);
            return;
        }
        kd->stats.keysets++;
        kd->stats.last_epoch = m->u.keyset.epoch;
        reply.type = TLSC_KEYPROTO_ACK;
        reply.u.epoch = m->u.keyset.epoch;
        send_msg(kd, &reply);
        return;
    case TLSC_KEYPROTO_PING:
        reply.type = TLSC_KEYPROTO_PONG;
        reply.u.nonce = m->u.nonce;
        send_msg(kd, &reply);
        return;
    case TLSC_KEYPROTO_PONG:
        if (m->u.nonce == kd->ping_nonce)
            kd->pings_out = 0;
        return;
    case TLSC_KEYPROTO_ERROR:
        tlsc_log_warn("keyd %s: daemon says error %u: %s", kd->address, (unsigned)m->u.error.code, m->u.error.text);
        disconnect(kd, "error from daemon");
        return;
    default:
        disconnect(kd, "unexpected message");
        return;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    tlsc_keyd_t *kd = c->kd;
    tlsc_keyproto_msg_t *m;
    int rc;

    if (kd == NULL)
        return;
    if (nread < 0) {
        disconnect(kd, nread == UV_EOF ? "closed by daemon" : uv_strerror((int)nread));
        return;
    }
    rc = tlsc_keyproto_conn_recv(c->tls, buf->base, (size_t)nread);
    OPENSSL_cleanse(buf->base, (size_t)nread);
    flush(kd); /* handshake replies, or an alert */
    if (rc != 0) {
        if (rc == TLSC_KEYPROTO_EAUTH)
            tlsc_log_error("keyd %s: TLS handshake failed (wrong --keyd-secret-file?): %s", kd->address,
                           tlsc_keyproto_conn_reason(c->tls));
        disconnect(kd, tlsc_keyproto_strerror(rc));
        return;
    }
    if ((m = malloc(sizeof(*m))) == NULL) {
        disconnect(kd, "out of memory");
        return;
    }
    /* Bounded by the bytes just fed; stops when the link drops. */
    while (kd->conn == c && (rc = tlsc_keyproto_conn_next(c->tls, m)) == 1) {
        handle_msg(kd, m);
        tlsc_keyproto_msg_wipe(m);
    }
    tlsc_keyproto_msg_wipe(m);
    free(m);
    if (kd->conn == c && rc < 0) {
        tlsc_log_warn("keyd %s: bad frame from daemon: %s", kd->address, tlsc_keyproto_strerror(rc));
        disconnect(kd, "protocol error");
    }
    if (kd->state == KEYD_CLOSED)
        maybe_free(kd);
}

static void on_tick(uv_timer_t *t)
{
    tlsc_keyd_t *kd = t->data;
    uint64_t now = tlsc_now_ms();
    tlsc_keyproto_msg_t ping;

    switch (kd->state) {
    case KEYD_WAITING:
        if (now >= kd->deadline_ms)
            start_connect(kd);
        break;
    case KEYD_RESOLVING:
    case KEYD_CONNECTING:
    case KEYD_HANDSHAKE:
        if (now >= kd->deadline_ms)
            disconnect(kd, "timed out");
        break;
    case KEYD_OPEN:
        if (now < kd->next_ping_ms)
            break;
        if (kd->pings_out >= 3) {
            disconnect(kd, "3 pings unanswered");
            break;
        }
        memset(&ping, 0, sizeof(ping));
        ping.type = TLSC_KEYPROTO_PING;
        ping.u.nonce = ++kd->ping_nonce;
        kd->pings_out++;
        kd->next_ping_ms = now + kd->o.ping_interval_ms;
        send_msg(kd, &ping);
        break;
    case KEYD_CLOSED:
        break;
    }
}

/* ================================================================ teardown */

static void on_timer_closed(uv_handle_t *h)
{
    tlsc_keyd_t *kd = h->data;

    kd->pending_handles--;
    maybe_free(kd);
}

void tlsc_keyd_close(tlsc_keyd_t *kd)
{
    if (kd == NULL || kd->state == KEYD_CLOSED)
        return;
    disconnect(kd, NULL);
    kd->state = KEYD_CLOSED;
    kd->stats.connected = 0;
    uv_close((uv_handle_t *)&kd->timer, on_timer_closed);
}

void tlsc_keyd_stats(const tlsc_keyd_t *kd, tlsc_keyd_stats_t *out)
{
    *out = kd->stats;
}

int tlsc_keyd_tickets_apply(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *tickets)
{
    int rc = tlsc_tickets_apply(tickets, set, 1);

    /* A replayed epoch (e.g. the daemon re-sending after a reconnect) is already applied. */
    return rc == TLSC_TICKETS_ESTALE ? 0 : rc;
}

void tlsc_keyd_tickets_held(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *tickets)
{
    tlsc_tickets_export(tickets, out);
}
