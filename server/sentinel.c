/* This file's one job: know where a Sentinel-watched master is, and follow it when it moves. */
#include "sentinel.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/read.h>

#include "addr.h"
#include "dial.h"
#include "log.h"
#include "redis.h"
#include "util.h"

/*
 *   DOWN --on_connect: ask + subscribe--> ASKED --address--> SUBSCRIBING --confirmed--> SUBSCRIBED
 *     ^                                     |                   |                          |
 *     +------------ tlsc_dial_fail (garbage, no answer, unknown master, stale, silent) ---+
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

typedef enum { S_DOWN, S_ASKED, S_SUBSCRIBING, S_SUBSCRIBED } link_state_t;

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

/* The answer to SENTINEL get-master-addr-by-name: [host, port], or nil for a name it does not watch. */
static int on_address(tlsc_sentinel_t *s, const redisReply *r)
{
    unsigned port;

    if (r->type == REDIS_REPLY_NIL) {
        link_lost(s, "it watches no master called %s (check the name in --redis)", s->url.master_name);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char text[120];
        size_t n = r->len < sizeof(text) - 1 ? r->len : sizeof(text) - 1;

        for (size_t i = 0; i < n; i++)
            text[i] = r->str[i] >= 0x20 && r->str[i] < 0x7f ? r->str[i] : '?';
        text[n] = '\0';
        link_lost(s, "SENTINEL get-master-addr-by-name answered: %s", text);
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

/* Every failure of the link: the dial logs it if it is news and tries the next sentinel. */
static void link_lost(tlsc_sentinel_t *s, const char *fmt, ...)
{
    char reason[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    s->state = S_DOWN;
    s->stream = NULL;
    tlsc_dial_fail(s->dial, TLSC_DIAL_TRANSIENT, "%s: %s", s->at, reason);
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
    if (redisReaderFeed(s->reader, buf->base, (size_t)nread) != REDIS_OK) {
        link_lost(s, "protocol error");
        return;
    }
    for (;;) {
        void *reply = NULL;

        if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
            link_lost(s, "%s", tlsc_redis_reader_refused(s->reader) ? "a reply over the bounds" : "protocol error");
            return;
        }
        if (reply == NULL)
            break;
        tlsc_redis_reader_next(s->reader);
        int rc = on_reply(s, reply);
        freeReplyObject(reply);
        if (rc != 0 || s->closing || s->stream != st)
            return;
    }
    if (s->reader->len - s->reader->pos > 65536)
        link_lost(s, "a reply over 64 KiB");
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as a read error or a missing answer */
    free(req);
}

/* Writes `text` (plain RESP) as one uv_write; the copy lives with the request. */
static int send_text(tlsc_sentinel_t *s, const char *text, size_t len)
{
    uv_write_t *req = malloc(sizeof(*req) + len);
    uv_buf_t b;

    if (req == NULL)
        return UV_ENOMEM;
    memcpy(req + 1, text, len);
    b = uv_buf_init((char *)(req + 1), (unsigned)len);
    if (uv_write(req, s->stream, &b, 1, on_written) != 0) {
        free(req);
        return UV_EPIPE;
    }
    return 0;
}

/* Connected to one sentinel: ask for the master and subscribe to switches, in one write. */
static void on_connect(tlsc_dial_t *d, uv_stream_t *stream, void *data)
{
    tlsc_sentinel_t *s = data;
    char cmd[256];
    size_t nlen = strlen(s->url.master_name);
    int n;

    (void)d;
    s->stream = stream;
    stream->data = s;
    if (s->reader != NULL)
        tlsc_redis_reader_free(s->reader);
    if ((s->reader = tlsc_redis_reader_new()) == NULL) {
        link_lost(s, "out of memory");
        return;
    }
    n = snprintf(cmd, sizeof(cmd),
                 "*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$%zu\r\n%s\r\n"
                 "*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n",
                 nlen, s->url.master_name); /* the name is at most 64 bytes: it fits */
    s->state = S_ASKED;
    s->asked_at = uv_now(s->loop);
    s->ping_at = 0;
    s->last_ping = s->asked_at;
    if (uv_read_start(stream, on_alloc, on_read) != 0 || send_text(s, cmd, (size_t)n) != 0)
        link_lost(s, "cannot read or write");
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
    if ((s->state == S_ASKED || s->state == S_SUBSCRIBING) && now - s->asked_at > s->timeout_ms)
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
    s->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    s->next = (size_t)(uv_hrtime() / 1000) % s->url.nsentinels; /* the workers spread over the sentinels */
    snprintf(name, sizeof(name), "redis sentinels of %s", s->url.master_name);
    dopt.name = name;
    dopt.locate = locate;
    dopt.timeout_ms = s->timeout_ms;
    dopt.backoff_min_ms = 50;
    dopt.backoff_max_ms = 1000;
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
