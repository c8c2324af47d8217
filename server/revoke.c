/*
 * This file's one job: keep the node-local cache no fresher than Redis — the master's
 * subscriber to revocations (with its lost-link bound), and a worker's flush watch.
 *
 * The subscriber is a small blocking-free RESP client for one purpose, driven by the master's
 * poll loop: connect (TCP or unix socket), AUTH when the URL has a password, SUBSCRIBE, then
 * read messages and answer-less PINGs. In RESP2 a subscribed connection may only (un)subscribe
 * and PING, so it cannot share the workers' request/reply client (redis.c), and a node needs
 * only one: the L1 is shared. Replies are parsed by the same bounded hiredis reader as the
 * workers' link uses; anything unexpected closes the link (and reconnecting drops the L1).
 * With redis-sentinel:// each attempt first asks one sentinel (the next of the list each time)
 * for the master and then subscribes there: a connection to a sentinel that sends one
 * question and is closed on its answer. A lost link asks again.
 */

#include "revoke.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hiredis/read.h>
#include <openssl/crypto.h>

#include "addr.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#define PING_EVERY_MS  1000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define OUT_MAX        4096 /* AUTH (user, password up to 1024) and SUBSCRIBE */
#define CHANNEL_MAX    (64 + 16)
#define WATCH_TTL_SEC  86400
#define WATCH_TIMEOUT  1000

typedef enum {
    SUB_IDLE,       /* not connected; retry at retry_at_ms */
    SUB_CONNECTING, /* non-blocking connect in progress */
    SUB_WAITING,    /* AUTH / SUBSCRIBE sent, confirmation pending */
    SUB_SUBSCRIBED,
} sub_state_t;

struct tlsc_revoke_s {
    const tlsc_config_t *cfg;
    tlsc_l1_t *l1;
    sub_state_t state;
    int fd;
    redisReader *reader;
    char out[OUT_MAX];
    size_t out_len, out_off;
    size_t auth_pending; /* AUTH replies still expected */
    char channel[CHANNEL_MAX];
    char sess_prefix[CHANNEL_MAX]; /* "<prefix>:sess:" */
    uint64_t confirmed_ms;         /* last proof the subscription is alive (subscribe, message, pong) */
    uint64_t ping_sent_ms;         /* 0 = none outstanding */
    uint64_t retry_at_ms;
    uint64_t attempt_ms; /* when this connection attempt started */
    unsigned backoff_ms;
    int ever_lost; /* logged once per outage */
    /* redis-sentinel://: ask a sentinel for the master first (any data node would do: PUBLISH
     * reaches every replica's subscribers too), then subscribe there. */
    int asking;           /* this connection is to a sentinel */
    int have_node;        /* node_host:node_port is where to subscribe */
    size_t next_sentinel; /* the sentinel the next question goes to */
    char node_host[254];  /* as the sentinel named it: [A-Za-z0-9.:_-], bounded */
    unsigned node_port;
    size_t seed; /* redis-cluster://: the seed this attempt uses; the next one after a failure */
};

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                     */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tlsc_revoke_parse(const char *prefix, const char *msg, size_t len, unsigned char *id, size_t *id_len)
{
    size_t plen = strlen(prefix), hex;

    if (len == 1 && msg[0] == '*')
        return 1;
    if (len <= plen || memcmp(msg, prefix, plen) != 0)
        return -1;
    hex = len - plen;
    if (hex % 2 != 0 || hex / 2 > TLSC_L1_ID_MAX)
        return -1;
    for (size_t i = 0; i < hex / 2; i++) {
        int hi = hexval(msg[plen + 2 * i]), lo = hexval(msg[plen + 2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    *id_len = hex / 2;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The link                                                                                     */

/* Appends one command in RESP to the output buffer. 0 = ok, -1 = it does not fit. */
static int append_cmd(tlsc_revoke_t *r, int argc, const char *const *argv)
{
    int n = snprintf(r->out + r->out_len, sizeof(r->out) - r->out_len, "*%d\r\n", argc);

    if (n < 0 || (size_t)n >= sizeof(r->out) - r->out_len)
        return -1;
    r->out_len += (size_t)n;
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);

        n = snprintf(r->out + r->out_len, sizeof(r->out) - r->out_len, "$%zu\r\n", len);
        if (n < 0 || (size_t)n + len + 2 >= sizeof(r->out) - r->out_len)
            return -1;
        r->out_len += (size_t)n;
        memcpy(r->out + r->out_len, argv[i], len);
        r->out_len += len;
        memcpy(r->out + r->out_len, "\r\n", 2);
        r->out_len += 2;
    }
    return 0;
}

static void link_close(tlsc_revoke_t *r, uint64_t now, const char *why)
{
    r->have_node = 0; /* with Sentinel: ask again where to subscribe */
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    tlsc_redis_reader_free(r->reader);
    r->reader = NULL;
    OPENSSL_cleanse(r->out, sizeof(r->out)); /* it may have held the AUTH password */
    r->out_len = r->out_off = 0;
    r->ping_sent_ms = 0; /* a ping of this link is no business of the next one */
    if (r->state == SUB_SUBSCRIBED || !r->ever_lost)
        tlsc_log_warn("revocation feed %s: %s; the local cache stops answering after %u ms without it", r->channel, why,
                      TLSC_REVOKE_BOUND_MS);
    r->ever_lost = 1;
    r->state = SUB_IDLE;
    if (r->cfg->redis.cluster) /* a PUBLISH reaches every node of a cluster: any seed that answers will do */
        r->seed = (r->seed + 1) % r->cfg->redis.nseeds;
    r->retry_at_ms = now + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Starts a non-blocking connect to --redis (with Sentinel: to a sentinel, or to the node it named). */
static void link_open(tlsc_revoke_t *r, uint64_t now)
{
    const tlsc_redis_url_t *u = &r->cfg->redis;
    const char *host = u->host;
    unsigned tcp_port = u->port;
    int fd = -1, rc;

    r->asking = 0;
    if (u->master_name != NULL && r->have_node) {
        host = r->node_host;
        tcp_port = r->node_port;
    } else if (u->master_name != NULL) {
        const tlsc_redis_node_t *s = &u->sentinels[r->next_sentinel++ % u->nsentinels];

        host = s->host;
        tcp_port = s->port;
        r->asking = 1;
    } else if (u->cluster) { /* a PUBLISH reaches every node of a cluster: any seed that answers will do */
        host = u->seeds[r->seed].host;
        tcp_port = u->seeds[r->seed].port;
    }

    if (u->path != NULL) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", u->path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
            goto fail;
        rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
        char port[8];

        snprintf(port, sizeof(port), "%u", tcp_port);
        if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
            errno = EHOSTUNREACH;
            goto fail;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -1 : connect(fd, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        if (fd < 0)
            goto fail;
    }
    if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN)
        goto fail;
    if ((r->reader = tlsc_redis_reader_new()) == NULL)
        goto fail;
    r->fd = fd;
    r->attempt_ms = now;
    r->state = SUB_CONNECTING;
    r->out_len = r->out_off = 0;
    r->auth_pending = 0;
    if (r->asking) {
        const char *ask[] = {"SENTINEL", "get-master-addr-by-name", u->master_name};
        const char *sauth_user[] = {"AUTH", u->sentinel_user != NULL ? u->sentinel_user : "", u->sentinel_password};
        const char *sauth[] = {"AUTH", u->sentinel_password};

        /* The sentinels' own password (--redis-sentinel-pass-file), not the data nodes'. */
        if (u->sentinel_password != NULL) {
            if (u->sentinel_user != NULL ? append_cmd(r, 3, sauth_user) : append_cmd(r, 2, sauth))
                goto fail;
            r->auth_pending = 1;
        }
        if (append_cmd(r, 3, ask) != 0)
            goto fail;
        return;
    }
    if (u->password != NULL) {
        const char *auth_user[] = {"AUTH", u->user != NULL ? u->user : "", u->password};
        const char *auth[] = {"AUTH", u->password};

        if (u->user != NULL ? append_cmd(r, 3, auth_user) : append_cmd(r, 2, auth))
            goto fail;
        r->auth_pending = 1;
    }
    const char *sub[] = {"SUBSCRIBE", r->channel};
    if (append_cmd(r, 2, sub) != 0)
        goto fail;
    return;

fail:
    if (fd >= 0)
        close(fd);
    r->fd = fd = -1;
    link_close(r, now, strerror(errno));
}

/* Writes what is queued. 0 = ok (maybe partially), -1 = the link failed. */
static int link_flush(tlsc_revoke_t *r)
{
    while (r->out_off < r->out_len) {
        ssize_t n = send(r->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);

        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        r->out_off += (size_t)n;
    }
    OPENSSL_cleanse(r->out, r->out_len);
    r->out_len = r->out_off = 0;
    return 0;
}

static int is_str(const redisReply *e, const char *s)
{
    return e != NULL && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) && e->len == strlen(s) &&
           strncasecmp(e->str, s, e->len) == 0;
}

/* A sentinel's [host, port] for the master: 1 = where to go now, -1 = not that shape. */
static int on_master_addr(tlsc_revoke_t *r, const redisReply *rep, const char **why)
{
    const redisReply *h, *p;
    uint64_t port;

    *why = "a sentinel gave no usable master address";
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || (h = rep->element[0])->type != REDIS_REPLY_STRING ||
        (p = rep->element[1])->type != REDIS_REPLY_STRING || h->len == 0 || h->len >= sizeof(r->node_host) ||
        strspn(h->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:_-") != h->len ||
        tlsc_parse_uint_n(p->str, p->len, 1, 65535, &port) != 0)
        return -1;
    memcpy(r->node_host, h->str, h->len);
    r->node_host[h->len] = '\0';
    r->node_port = (unsigned)port;
    r->have_node = 1;
    return 1;
}

/* One reply on the link. 0 = ok, 1 = a sentinel answered: go where it said, -1 = close it (`why` says why). */
static int on_reply(tlsc_revoke_t *r, const redisReply *rep, uint64_t now, const char **why)
{
    unsigned char id[TLSC_L1_ID_MAX];
    size_t id_len;

    if (r->auth_pending > 0) {
        r->auth_pending--;
        *why = r->asking ? "a sentinel refused AUTH (check --redis-sentinel-user and --redis-sentinel-pass-file)" : "AUTH refused";
        return rep->type == REDIS_REPLY_STATUS ? 0 : -1;
    }
    if (r->asking)
        return on_master_addr(r, rep, why);
    *why = "an unexpected reply";
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return -1;
    if (is_str(rep->element[0], "pong")) {
        r->ping_sent_ms = 0;
        r->confirmed_ms = now;
        return 0;
    }
    if (rep->elements != 3 || !is_str(rep->element[1], r->channel))
        return -1;
    if (is_str(rep->element[0], "subscribe")) {
        /* Every message of the gap is lost: start from nothing, and answer again. */
        tlsc_l1_clear(r->l1);
        tlsc_l1_set_serving(r->l1, 1);
        if (r->ever_lost)
            tlsc_log_info("revocation feed %s: subscribed again; the local cache was dropped and answers again", r->channel);
        r->ever_lost = 0;
        r->state = SUB_SUBSCRIBED;
        r->confirmed_ms = now;
        r->backoff_ms = BACKOFF_MIN_MS;
        return 0;
    }
    if (!is_str(rep->element[0], "message") || rep->element[2]->type != REDIS_REPLY_STRING)
        return -1;
    r->confirmed_ms = now;
    switch (tlsc_revoke_parse(r->sess_prefix, rep->element[2]->str, rep->element[2]->len, id, &id_len)) {
    case 1:
        tlsc_l1_clear(r->l1);
        tlsc_log_info("revocation feed: every cached session dropped");
        break;
    case 0:
        if (tlsc_l1_remove(r->l1, id, id_len) < 0) /* its set stayed busy: lose everything rather than it */
            tlsc_l1_clear(r->l1);
        break;
    default:
        tlsc_log_debug("revocation feed: a message that is no session key of this cluster, ignored");
        break;
    }
    return 0;
}

static void link_read(tlsc_revoke_t *r, uint64_t now)
{
    char buf[4096];
    const char *why = NULL;
    void *reply;
    ssize_t n;

    for (;;) {
        n = recv(r->fd, buf, sizeof(buf), 0);
        if (n == 0) {
            link_close(r, now, "Redis closed the connection");
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                link_close(r, now, strerror(errno));
            return;
        }
        if (redisReaderFeed(r->reader, buf, (size_t)n) != REDIS_OK) {
            link_close(r, now, "protocol error");
            return;
        }
        for (;;) {
            if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
                link_close(r, now, tlsc_redis_reader_refused(r->reader) ? "a reply over the bounds" : "protocol error");
                return;
            }
            if (reply == NULL)
                break;
            tlsc_redis_reader_next(r->reader);
            int rc = on_reply(r, reply, now, &why);
            freeReplyObject(reply);
            if (rc == 1) { /* the sentinel named the master: subscribe there now, quietly */
                close(r->fd);
                r->fd = -1;
                tlsc_redis_reader_free(r->reader);
                r->reader = NULL;
                r->out_len = r->out_off = 0;
                r->asking = 0;
                r->state = SUB_IDLE;
                r->retry_at_ms = now;
                return;
            }
            if (rc != 0) {
                link_close(r, now, why);
                return;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The master's side                                                                            */

tlsc_revoke_t *tlsc_revoke_new(const tlsc_config_t *cfg, tlsc_l1_t *l1)
{
    tlsc_revoke_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->l1 = l1;
    r->fd = -1;
    r->backoff_ms = BACKOFF_MIN_MS;
    snprintf(r->channel, sizeof(r->channel), "%s:revoked", cfg->redis_prefix);
    snprintf(r->sess_prefix, sizeof(r->sess_prefix), "%s:sess:", cfg->redis_prefix);
    /* Nothing was revoked before we listened that matters (the cache is empty), but answer only once we listen. */
    r->confirmed_ms = tlsc_now_ms();
    tlsc_l1_set_serving(l1, 0);
    return r;
}

void tlsc_revoke_free(tlsc_revoke_t *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    tlsc_redis_reader_free(r->reader);
    OPENSSL_cleanse(r->out, sizeof(r->out));
    free(r);
}

struct pollfd tlsc_revoke_pollfd(const tlsc_revoke_t *r)
{
    struct pollfd p = {.fd = r->fd, .events = POLLIN};

    if (r->fd < 0)
        p.fd = -1;
    else if (r->state == SUB_CONNECTING || r->out_off < r->out_len)
        p.events |= POLLOUT;
    return p;
}

void tlsc_revoke_run(tlsc_revoke_t *r, short revents, uint64_t now)
{
    if (r->state == SUB_IDLE && now >= r->retry_at_ms)
        link_open(r, now);
    if (r->fd >= 0 && r->state == SUB_CONNECTING && (revents & (POLLOUT | POLLERR | POLLHUP))) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            link_close(r, now, strerror(soerr != 0 ? soerr : errno));
        } else {
            r->state = SUB_WAITING;
        }
    }
    if (r->fd >= 0 && r->state != SUB_CONNECTING && link_flush(r) != 0)
        link_close(r, now, strerror(errno));
    if (r->fd >= 0 && r->state != SUB_CONNECTING && (revents & (POLLIN | POLLHUP | POLLERR)))
        link_read(r, now);
    /* A subscription is alive while pings come back: one a second, overdue past the bound. */
    if (r->fd >= 0 && r->state == SUB_SUBSCRIBED) {
        if (r->ping_sent_ms != 0 && now - r->ping_sent_ms > TLSC_REVOKE_BOUND_MS) {
            link_close(r, now, "no answer to PING");
        } else if (r->ping_sent_ms == 0 && now - r->confirmed_ms >= PING_EVERY_MS) {
            const char *ping[] = {"PING"};

            if (append_cmd(r, 1, ping) == 0 && link_flush(r) == 0)
                r->ping_sent_ms = now;
            else
                link_close(r, now, "cannot send PING");
        }
    } else if (r->fd >= 0 && now - r->attempt_ms > TLSC_REVOKE_BOUND_MS) {
        link_close(r, now, "no answer to SUBSCRIBE");
    }
    /* The bound: past it without a live subscription, the cache stops answering. */
    if (r->state != SUB_SUBSCRIBED && now - r->confirmed_ms >= TLSC_REVOKE_BOUND_MS && tlsc_l1_serving(r->l1))
        tlsc_l1_set_serving(r->l1, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* A worker's flush watch                                                                       */

struct tlsc_revoke_watch_s {
    tlsc_store_t *store;
    tlsc_l1_t *l1;
    tlsc_stats_t *stats;
    tlsc_store_req_t *inflight;
    size_t key_len;
    char key[160];
};

static void on_marker_written(int status, void *data)
{
    tlsc_revoke_watch_t *w = data;

    w->inflight = NULL;
}

static void on_marker(int status, const unsigned char *value, size_t len, void *data)
{
    tlsc_revoke_watch_t *w = data;
    int st = 0;

    w->inflight = NULL;
    if (status != 0 || value != NULL)
        return;
    /*
     * The marker is gone: Redis was flushed (or failed over to an empty replica, or this is a
     * first start). What the L1 holds may be gone from Redis: drop it, then mark again.
     */
    tlsc_l1_clear(w->l1);
    tlsc_stat_inc(&w->stats->l1_flushes_seen);
    const tlsc_store_field_t f = {"since", "1", 1};
    w->inflight = tlsc_store_put(w->store, w->key, w->key_len, &f, 1, WATCH_TTL_SEC, WATCH_TIMEOUT, on_marker_written, w, &st);
}

tlsc_revoke_watch_t *tlsc_revoke_watch_new(const tlsc_config_t *cfg, tlsc_store_t *store, tlsc_l1_t *l1, tlsc_stats_t *stats)
{
    tlsc_revoke_watch_t *w = calloc(1, sizeof(*w));
    int n;

    if (w == NULL)
        return NULL;
    n = snprintf(w->key, sizeof(w->key), "%s:l1:%s", cfg->redis_prefix, cfg->node);
    if (n < 0 || (size_t)n >= sizeof(w->key)) {
        free(w);
        return NULL;
    }
    w->key_len = (size_t)n;
    w->store = store;
    w->l1 = l1;
    w->stats = stats;
    return w;
}

void tlsc_revoke_watch_tick(tlsc_revoke_watch_t *w)
{
    int st = 0;

    if (w->inflight != NULL || !tlsc_store_ready(w->store))
        return;
    w->inflight = tlsc_store_get(w->store, w->key, w->key_len, "since", NULL, WATCH_TIMEOUT, on_marker, w, &st);
}

void tlsc_revoke_watch_free(tlsc_revoke_watch_t *w)
{
    if (w == NULL)
        return;
    if (w->inflight != NULL)
        tlsc_store_cancel(w->store, w->inflight);
    free(w);
}
