/* This file's one job: know where a Sentinel-watched master is, and follow it when it moves. */
#include "sentinel.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/read.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "dial.h"
#include "log.h"
#include "redis.h"
#include "util.h"

/*
 *   DOWN --on_connect--> [TLS --handshake-->] [AUTH --OK-->] ASKED --address--> SUBSCRIBING
 *     ^                                                        |                   |
 *     |                                          SUBSCRIBED <--+--- confirmed -----+
 *     +---- tlsc_dial_fail (garbage, no answer, unknown master, refused, stale, silent)
 *
 * With rediss-sentinel:// the link runs TLS on memory BIOs (redis.h's tlsc_redis_tls_new),
 * verifying the sentinel's certificate against the host the URL names it by; with a sentinel
 * password the question is preceded by AUTH, in the same write. A refused AUTH, a missing
 * password (NOAUTH) or a certificate that does not verify is an operator's to fix: the dial
 * logs it once as an error, without the sentinel's address so that every sentinel saying the
 * same costs no new line, and retries slowly.
 *
 * The dial picks the next sentinel of the list at every attempt, so a dead or confused
 * sentinel costs one attempt. The master's address is kept across link failures: a sentinel
 * going away does not move the master; only tlsc_sentinel_stale forgets it.
 */

#define DEFAULT_TIMEOUT_MS 1000
#define TICK_MS            250
#define PING_EVERY_MS      1000
#define PING_TIMEOUT_MS    2000
#define STALE_MIN_MS       200
#define HOST_MAX           253
#define READ_BUF           4096
#define PERMANENT_MS       5000 /* retry delay after a refusal only an operator can fix */

typedef enum { S_DOWN, S_TLS, S_AUTH, S_ASKED, S_SUBSCRIBING, S_SUBSCRIBED } link_state_t;

struct tlsc_sentinel_s {
    uv_loop_t *loop;
    tlsc_redis_url_t url; /* the sentinels and the master's name */
    tlsc_sentinel_options_t o;
    unsigned timeout_ms;
    tlsc_dial_t *dial;
    uv_stream_t *stream;
    redisReader *reader;
    link_state_t state;
    size_t next;                /* the sentinel the next attempt goes to */
    char at[HOST_MAX + 16];     /* the sentinel of the current attempt, for logs */
    const char *at_host;        /* its host as the URL names it: what its certificate must show */
    SSL_CTX *tls_ctx;           /* rediss-sentinel://, else NULL */
    SSL *ssl;                   /* this connection's TLS, or NULL */
    uint64_t asked_at, ping_at; /* ping_at: 0 = no PING outstanding */
    uint64_t last_ping, last_stale;
    uv_timer_t tick;
    char host[HOST_MAX + 1]; /* the master, when known */
    unsigned port;
    int known;
    int doubted; /* told stale: the next answer is passed on even when it names the same address */
    uint64_t switches;
    int closing;
    unsigned pending;
    char rbuf[READ_BUF];
};

static void on_tick(uv_timer_t *t);
static void link_lost(tlsc_sentinel_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void link_refused(tlsc_sentinel_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_question(tlsc_sentinel_t *s);

/* ================================ what sentinels say ================================ */

/* A host as a sentinel names it: an IP address or a name, nothing a log or a dial could trip on. */
static int host_ok(const char *s, size_t n)
{
    if (n == 0 || n > HOST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == ':' || c == '-' ||
              c == '_'))
            return 0;
    }
    return 1;
}

static int port_ok(const char *s, size_t n, unsigned *port)
{
    uint64_t v;

    if (tlsc_parse_uint_n(s, n, 1, 65535, &v) != 0)
        return 0;
    *port = (unsigned)v;
    return 1;
}

static int is_string(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static int str_is(const redisReply *r, const char *s)
{
    return is_string(r) && r->len == strlen(s) && strncasecmp(r->str, s, r->len) == 0;
}

/* The sentinels name the master at host:port: remember it and tell the owner if it moved. */
static void set_master(tlsc_sentinel_t *s, const char *host, size_t hlen, unsigned port, const char *how)
{
    char was[HOST_MAX + 16] = "none";

    if (s->known && strlen(s->host) == hlen && memcmp(s->host, host, hlen) == 0 && s->port == port) {
        if (s->doubted) { /* asked again and told the same: the owner may try it again now */
            s->doubted = 0;
            tlsc_log_debug("redis sentinel:%s: %s still names %s:%u as the master", s->url.master_name, s->at, s->host, s->port);
            s->o.on_master(s->host, s->port, s->o.data);
        }
        return;
    }
    s->doubted = 0;
    if (s->known)
        snprintf(was, sizeof(was), "%s:%u", s->host, s->port);
    memcpy(s->host, host, hlen);
    s->host[hlen] = '\0';
    s->port = port;
    s->known = 1;
    s->switches++;
    tlsc_log_info("redis sentinel:%s: %s names %s:%u as the master (%s; was %s)", s->url.master_name, s->at, s->host, s->port, how,
                  was);
    s->o.on_master(s->host, s->port, s->o.data);
}

/* An error reply's text, bounded and printable, for a log line (no trailing '.': a hint may follow). */
static const char *error_text(char *text, size_t size, const redisReply *r)
{
    size_t n = r->len < size - 1 ? r->len : size - 1;

    for (size_t i = 0; i < n; i++)
        text[i] = r->str[i] >= 0x20 && r->str[i] < 0x7f ? r->str[i] : '?';
    while (n > 0 && (text[n - 1] == '.' || text[n - 1] == ' '))
        n--;
    text[n] = '\0';
    return text;
}

/* The sentinel's answer to AUTH: +OK, or a refusal only an operator can fix. */
static int on_auth(tlsc_sentinel_t *s, const redisReply *r)
{
    char text[120];

    if (r->type == REDIS_REPLY_STATUS) {
        s->state = S_ASKED;
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR && strncasecmp(r->str, "ERR AUTH", 8) == 0)
        link_refused(s,
                     "a sentinel refused AUTH: %s: this sentinel has no password; drop --redis-sentinel-pass-file and "
                     "TLSCACHE_REDIS_SENTINEL_PASS",
                     error_text(text, sizeof(text), r));
    else if (r->type == REDIS_REPLY_ERROR)
        link_refused(s,
                     "a sentinel refused AUTH: %s: check --redis-sentinel-user and the password (--redis-sentinel-pass-file or "
                     "TLSCACHE_REDIS_SENTINEL_PASS)",
                     error_text(text, sizeof(text), r));
    else
        link_lost(s, "an unexpected reply to AUTH");
    return -1;
}

/* The answer to SENTINEL get-master-addr-by-name: [host, port], or nil for a name it does not watch. */
static int on_address(tlsc_sentinel_t *s, const redisReply *r)
{
    unsigned port;
    char text[120];

    if (r->type == REDIS_REPLY_NIL) {
        link_lost(s, "it watches no master called %s (check the name in --redis)", s->url.master_name);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR && strncasecmp(r->str, "NOAUTH", 6) == 0) {
        link_refused(s, "a sentinel requires a password: give it with --redis-sentinel-pass-file FILE or "
                        "TLSCACHE_REDIS_SENTINEL_PASS");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        link_lost(s, "SENTINEL get-master-addr-by-name answered: %s", error_text(text, sizeof(text), r));
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_string(r->element[0]) || !is_string(r->element[1]) ||
        !host_ok(r->element[0]->str, r->element[0]->len) || !port_ok(r->element[1]->str, r->element[1]->len, &port)) {
        link_lost(s, "a master address of the wrong shape");
        return -1;
    }
    s->state = S_SUBSCRIBING;
    set_master(s, r->element[0]->str, r->element[0]->len, port, "asked");
    if (s->closing || s->state != S_SUBSCRIBING)
        return -1;
    tlsc_dial_up(s->dial);
    return 0;
}

/* "+switch-master" says "<name> <old-ip> <old-port> <new-ip> <new-port>"; other masters' switches are not ours. */
static int on_switch(tlsc_sentinel_t *s, const char *msg, size_t len)
{
    const char *tok[5];
    size_t tlen[5], n = 0, i = 0;
    unsigned port;

    while (i < len && n < 5) {
        size_t start = i;
        while (i < len && msg[i] != ' ')
            i++;
        tok[n] = msg + start;
        tlen[n++] = i - start;
        if (i < len)
            i++;
    }
    if (n != 5 || i != len) {
        link_lost(s, "a +switch-master message of the wrong shape");
        return -1;
    }
    if (tlen[0] != strlen(s->url.master_name) || memcmp(tok[0], s->url.master_name, tlen[0]) != 0)
        return 0;
    if (!host_ok(tok[3], tlen[3]) || !port_ok(tok[4], tlen[4], &port)) {
        link_lost(s, "a +switch-master address of the wrong shape");
        return -1;
    }
    set_master(s, tok[3], tlen[3], port, "+switch-master");
    return 0;
}

/* One whole reply; -1 when it failed the link (or the owner closed us). */
static int on_reply(tlsc_sentinel_t *s, const redisReply *r)
{
    switch (s->state) {
    case S_AUTH:
        return on_auth(s, r);
    case S_ASKED:
        return on_address(s, r);
    case S_SUBSCRIBING:
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && str_is(r->element[0], "subscribe") &&
            str_is(r->element[1], "+switch-master")) {
            s->state = S_SUBSCRIBED;
            return 0;
        }
        break;
    case S_SUBSCRIBED:
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && str_is(r->element[0], "pong")) {
            s->ping_at = 0;
            return 0;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && str_is(r->element[0], "message") &&
            str_is(r->element[1], "+switch-master") && is_string(r->element[2]))
            return on_switch(s, r->element[2]->str, r->element[2]->len);
        break;
    case S_DOWN:
    case S_TLS:
        return -1;
    }
    link_lost(s, "an unexpected reply");
    return -1;
}

/* ================================ the link ================================ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tlsc_sentinel_t *s = h->data;

    (void)suggested;
    *buf = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

/* ================================ TLS (rediss-sentinel://) ================================ */

static void tls_drop(tlsc_sentinel_t *s)
{
    if (s->ssl != NULL)
        SSL_free(s->ssl); /* and its BIOs */
    s->ssl = NULL;
}

/* One write and the copy of its bytes, which may hold an AUTH password in the clear. */
typedef struct {
    uv_write_t req;
    size_t len;
    char bytes[];
} write_t;

static void on_written(uv_write_t *req, int status)
{
    write_t *w = (write_t *)req;

    (void)status; /* a failed write shows as a read error or a missing answer */
    OPENSSL_cleanse(w->bytes, w->len);
    free(w);
}

/* Writes `len` bytes as one uv_write; the copy lives with the request and is wiped after. */
static int write_raw(tlsc_sentinel_t *s, const void *bytes, size_t len)
{
    write_t *w = malloc(sizeof(*w) + len);
    uv_buf_t b;

    if (w == NULL)
        return UV_ENOMEM;
    memcpy(w->bytes, bytes, len);
    w->len = len;
    b = uv_buf_init(w->bytes, (unsigned)len);
    if (uv_write(&w->req, s->stream, &b, 1, on_written) != 0) {
        OPENSSL_cleanse(w->bytes, len);
        free(w);
        return UV_EPIPE;
    }
    return 0;
}

/* What OpenSSL has for the sentinel (a handshake message, records) goes out in one write. */
static int tls_flush(tlsc_sentinel_t *s)
{
    BIO *wbio = SSL_get_wbio(s->ssl);
    size_t pending = BIO_ctrl_pending(wbio);
    char *buf;
    int rc;

    if (pending == 0)
        return 0;
    if ((buf = malloc(pending)) == NULL)
        return UV_ENOMEM;
    rc = BIO_read(wbio, buf, (int)pending) == (int)pending ? write_raw(s, buf, pending) : UV_EPROTO;
    free(buf);
    return rc;
}

/* Writes `text` (plain RESP), sealed when the link runs TLS. */
static int send_text(tlsc_sentinel_t *s, const char *text, size_t len)
{
    if (s->ssl == NULL)
        return write_raw(s, text, len);
    if (SSL_write(s->ssl, text, (int)len) != (int)len) /* a memory BIO takes everything, unless memory runs out */
        return UV_ENOMEM;
    return tls_flush(s);
}

/* The TLS handshake failed: a certificate is an operator's to fix, anything else the next sentinel may not do. */
static void tls_failed(tlsc_sentinel_t *s)
{
    char reason[400];

    if (tlsc_redis_tls_failure(s->ssl, "the sentinel's", s->at_host, "the host in --redis", reason, sizeof(reason)))
        link_refused(s, "%s", reason);
    else
        link_lost(s, "%s", reason);
}

/* Advances the handshake; once done the question goes out. Returns 0 while all is well, -1 after failing the link. */
static int tls_handshake(tlsc_sentinel_t *s)
{
    int n = SSL_do_handshake(s->ssl);

    if (n == 1) {
        if (tls_flush(s) != 0) {
            link_lost(s, "cannot write");
            return -1;
        }
        send_question(s);
        return s->state == S_DOWN ? -1 : 0;
    }
    if (SSL_get_error(s->ssl, n) != SSL_ERROR_WANT_READ) {
        tls_failed(s);
        return -1;
    }
    if (tls_flush(s) != 0) {
        link_lost(s, "cannot write");
        return -1;
    }
    return 0;
}

/*
 * The link failed for `reason`: the dial logs it if it is news and tries the next sentinel. A
 * transient failure names the sentinel; a permanent one (only an operator can fix it) does
 * not, since every sentinel would say the same, and is retried slowly.
 */
static void link_down(tlsc_sentinel_t *s, tlsc_dial_fault_t fault, const char *reason)
{
    s->state = S_DOWN;
    s->stream = NULL;
    tls_drop(s);
    if (fault == TLSC_DIAL_PERMANENT)
        tlsc_dial_fail(s->dial, fault, "%s", reason);
    else
        tlsc_dial_fail(s->dial, fault, "%s: %s", s->at, reason);
}

static void link_lost(tlsc_sentinel_t *s, const char *fmt, ...)
{
    char reason[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    link_down(s, TLSC_DIAL_TRANSIENT, reason);
}

static void link_refused(tlsc_sentinel_t *s, const char *fmt, ...)
{
    char reason[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    link_down(s, TLSC_DIAL_PERMANENT, reason);
}

/* Plaintext from the sentinel: every whole reply goes to on_reply. Returns 0, or -1 once the link is gone. */
static int read_plain(tlsc_sentinel_t *s, uv_stream_t *st, const char *data, size_t len)
{
    if (redisReaderFeed(s->reader, data, len) != REDIS_OK) {
        link_lost(s, "protocol error");
        return -1;
    }
    for (;;) {
        void *reply = NULL;

        if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
            link_lost(s, "%s", tlsc_redis_reader_refused(s->reader) ? "a reply over the bounds" : "protocol error");
            return -1;
        }
        if (reply == NULL)
            break;
        tlsc_redis_reader_next(s->reader);
        int rc = on_reply(s, reply);
        freeReplyObject(reply);
        if (rc != 0 || s->closing || s->stream != st)
            return -1;
    }
    if (s->reader->len - s->reader->pos > 65536) {
        link_lost(s, "a reply over 64 KiB");
        return -1;
    }
    return 0;
}

/* Ciphertext from the sentinel: the handshake goes on, or records are opened and read. */
static void read_tls(tlsc_sentinel_t *s, uv_stream_t *st, const char *data, size_t len)
{
    char plain[READ_BUF];
    int n = 0;

    if (BIO_write(SSL_get_rbio(s->ssl), data, (int)len) != (int)len) {
        link_lost(s, "out of memory");
        return;
    }
    if (s->state == S_TLS && tls_handshake(s) != 0)
        return;
    while (s->state != S_TLS && (n = SSL_read(s->ssl, plain, sizeof(plain))) > 0)
        if (read_plain(s, st, plain, (size_t)n) != 0)
            return;
    if (s->state != S_TLS && SSL_get_error(s->ssl, n) != SSL_ERROR_WANT_READ) {
        link_lost(s, "%s",
                  SSL_get_error(s->ssl, n) == SSL_ERROR_ZERO_RETURN ? "closed by the sentinel (TLS close_notify)"
                                                                    : "TLS: a record that does not decrypt");
        return;
    }
    if (tls_flush(s) != 0) /* e.g. a KeyUpdate answer */
        link_lost(s, "cannot write");
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_sentinel_t *s = st->data;

    if (nread == 0 || s->closing || s->stream != st)
        return;
    if (nread < 0) {
        link_lost(s, "%s", nread == UV_EOF ? "closed by the sentinel" : uv_strerror((int)nread));
        return;
    }
    if (s->ssl != NULL)
        read_tls(s, st, buf->base, (size_t)nread);
    else
        (void)read_plain(s, st, buf->base, (size_t)nread);
}

/* Appends one RESP bulk string to `out` (room checked by the caller: at most len + 24 bytes). */
static size_t put_bulk(char *out, const char *arg)
{
    size_t len = strlen(arg);
    int n = sprintf(out, "$%zu\r\n", len);

    memcpy(out + n, arg, len);
    memcpy(out + n + len, "\r\n", 2);
    return (size_t)n + len + 2;
}

/*
 * The link is up (and TLS done): AUTH when the sentinels have a password, then the question
 * and SUBSCRIBE +switch-master, in one write. The buffer holds a password: it is wiped.
 */
static void send_question(tlsc_sentinel_t *s)
{
    char cmd[2 * 1024 + 512]; /* AUTH with a 255-byte user and a 1024-byte password, the question, SUBSCRIBE */
    const char *user = s->url.sentinel_user, *pw = s->url.sentinel_password;
    size_t n = 0;
    int rc;

    if (pw != NULL) {
        n += (size_t)sprintf(cmd, "*%d\r\n$4\r\nAUTH\r\n", user != NULL ? 3 : 2);
        if (user != NULL)
            n += put_bulk(cmd + n, user);
        n += put_bulk(cmd + n, pw);
    }
    n += (size_t)sprintf(cmd + n, "*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n");
    n += put_bulk(cmd + n, s->url.master_name); /* at most 64 bytes: it fits */
    n += (size_t)sprintf(cmd + n, "*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n");
    s->state = pw != NULL ? S_AUTH : S_ASKED;
    s->asked_at = uv_now(s->loop);
    rc = send_text(s, cmd, n);
    OPENSSL_cleanse(cmd, sizeof(cmd));
    if (rc != 0)
        link_lost(s, "cannot write");
}

/* Connected to one sentinel: TLS first when asked for, then the question. */
static void on_connect(tlsc_dial_t *d, uv_stream_t *stream, void *data)
{
    tlsc_sentinel_t *s = data;

    (void)d;
    s->stream = stream;
    stream->data = s;
    tls_drop(s);
    if (s->reader != NULL)
        tlsc_redis_reader_free(s->reader);
    if ((s->reader = tlsc_redis_reader_new()) == NULL) {
        link_lost(s, "out of memory");
        return;
    }
    s->asked_at = uv_now(s->loop);
    s->ping_at = 0;
    s->last_ping = s->asked_at;
    if (uv_read_start(stream, on_alloc, on_read) != 0) {
        link_lost(s, "cannot read");
        return;
    }
    if (s->tls_ctx == NULL) {
        send_question(s);
        return;
    }
    if ((s->ssl = tlsc_redis_tls_new(s->tls_ctx, s->at_host)) == NULL) {
        link_lost(s, "cannot start TLS (out of memory, or a name that cannot be verified)");
        return;
    }
    s->state = S_TLS;
    (void)tls_handshake(s); /* the ClientHello */
}

/* Each attempt goes to the next sentinel of the list. */
static int locate(tlsc_dial_t *d, const char **host, unsigned *port, char *why, size_t whylen, void *data)
{
    tlsc_sentinel_t *s = data;
    const tlsc_redis_node_t *n = &s->url.sentinels[s->next];

    (void)d;
    (void)why;
    (void)whylen;
    s->next = (s->next + 1) % s->url.nsentinels;
    s->state = S_DOWN;
    s->stream = NULL;
    s->at_host = n->host;
    tls_drop(s);
    snprintf(s->at, sizeof(s->at), strchr(n->host, ':') != NULL ? "sentinel [%s]:%u" : "sentinel %s:%u", n->host, n->port);
    *host = n->host;
    *port = n->port;
    return 0;
}

static void send_ping(tlsc_sentinel_t *s, uint64_t now)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";

    s->ping_at = s->last_ping = now;
    if (send_text(s, ping, sizeof(ping) - 1) != 0)
        link_lost(s, "cannot write");
}

static void on_tick(uv_timer_t *t)
{
    tlsc_sentinel_t *s = t->data;
    uint64_t now = uv_now(s->loop);

    if (s->closing || s->stream == NULL || tlsc_dial_stream(s->dial) != s->stream)
        return;
    if (s->state == S_TLS && now - s->asked_at > s->timeout_ms)
        link_lost(s, "no TLS handshake in time");
    else if ((s->state == S_AUTH || s->state == S_ASKED || s->state == S_SUBSCRIBING) && now - s->asked_at > s->timeout_ms)
        link_lost(s, "no answer to SENTINEL get-master-addr-by-name / SUBSCRIBE in time");
    else if (s->state == S_SUBSCRIBED && s->ping_at != 0 && now - s->ping_at > PING_TIMEOUT_MS)
        link_lost(s, "no answer to PING within 2 s");
    else if (s->state == S_SUBSCRIBED && s->ping_at == 0 && now - s->last_ping >= PING_EVERY_MS)
        send_ping(s, now);
}

/* ================================ API ================================ */

static void release(tlsc_sentinel_t *s)
{
    if (--s->pending > 0)
        return;
    if (s->reader != NULL)
        tlsc_redis_reader_free(s->reader);
    tls_drop(s);
    SSL_CTX_free(s->tls_ctx);
    tlsc_redis_url_free(&s->url);
    free(s);
}

static void on_tick_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_dial_closed(void *data)
{
    release(data);
}

int tlsc_sentinel_new(uv_loop_t *loop, const tlsc_sentinel_options_t *o, tlsc_sentinel_t **out)
{
    tlsc_dial_options_t dopt = {0};
    char name[128];
    tlsc_sentinel_t *s;
    int rc;

    *out = NULL;
    if (o == NULL || o->url == NULL || o->url->nsentinels == 0 || o->url->master_name == NULL || o->on_master == NULL)
        return UV_EINVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return UV_ENOMEM;
    if (tlsc_redis_url_copy(&s->url, o->url) != 0) {
        free(s);
        return UV_ENOMEM;
    }
    /* The copy needs no credentials: they are the data nodes'. */
    if (s->url.user != NULL)
        tlsc_secure_free(s->url.user, strlen(s->url.user));
    if (s->url.password != NULL)
        tlsc_secure_free(s->url.password, strlen(s->url.password));
    s->url.user = s->url.password = NULL;
    s->loop = loop;
    s->o = *o;
    s->o.url = NULL;
    s->o.tls_ctx = NULL;
    if (s->url.tls && o->tls_ctx == NULL) {
        tlsc_redis_url_free(&s->url);
        free(s);
        return UV_EINVAL;
    }
    if (s->url.tls && SSL_CTX_up_ref(o->tls_ctx) == 1)
        s->tls_ctx = o->tls_ctx;
    s->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    s->next = (size_t)(uv_hrtime() / 1000) % s->url.nsentinels; /* the workers spread over the sentinels */
    snprintf(name, sizeof(name), "redis sentinels of %s", s->url.master_name);
    dopt.name = name;
    dopt.locate = locate;
    dopt.timeout_ms = s->timeout_ms;
    dopt.backoff_min_ms = 50;
    dopt.backoff_max_ms = 1000;
    dopt.permanent_backoff_ms = PERMANENT_MS;
    dopt.on_connect = on_connect;
    dopt.data = s;
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    s->pending = 1;
    if ((rc = tlsc_dial_new(loop, &dopt, &s->dial)) != 0) {
        uv_close((uv_handle_t *)&s->tick, on_tick_closed);
        return rc;
    }
    s->pending++;
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    *out = s;
    return 0;
}

int tlsc_sentinel_master(const tlsc_sentinel_t *s, const char **host, unsigned *port)
{
    if (s == NULL || !s->known)
        return -1;
    *host = s->host;
    *port = s->port;
    return 0;
}

void tlsc_sentinel_stale(tlsc_sentinel_t *s, const char *why)
{
    uint64_t now;

    if (s == NULL || s->closing || !s->known)
        return;
    now = uv_now(s->loop);
    if (s->last_stale != 0 && now - s->last_stale < STALE_MIN_MS)
        return;
    s->last_stale = now;
    s->doubted = 1;
    tlsc_log_debug("redis sentinel:%s: %s:%u is not the master (%s); asking the sentinels again", s->url.master_name, s->host,
                   s->port, why);
    if (s->state == S_SUBSCRIBING || s->state == S_SUBSCRIBED) { /* a subscribed link cannot ask: reconnect, quietly */
        s->state = S_DOWN;
        s->stream = NULL;
        tls_drop(s);
        tlsc_dial_restart(s->dial);
    }
}

uint64_t tlsc_sentinel_switches(const tlsc_sentinel_t *s)
{
    return s != NULL ? s->switches : 0;
}

void tlsc_sentinel_close(tlsc_sentinel_t *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = 1;
    s->stream = NULL;
    uv_close((uv_handle_t *)&s->tick, on_tick_closed);
    tlsc_dial_close(s->dial, on_dial_closed, s);
}
