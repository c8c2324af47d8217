/*
 * This file's one job: keep the node-local cache no fresher than Redis — the master's
 * subscriber to revocations (with its lost-link bound), and a worker's flush watch.
 *
 * The subscriber is a small blocking-free RESP client for one purpose, driven by the master's
 * poll loop: connect (TCP or unix socket), TLS with rediss:// (OpenSSL on the non-blocking
 * socket, the workers' context and host check: redis.h), AUTH when the URL has a password,
 * SUBSCRIBE, then read messages and answer-less PINGs. In RESP2 a subscribed connection may only (un)subscribe
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
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#define PING_EVERY_MS  1000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define REFUSED_MS     5000 /* the retry delay after a refusal only an operator can fix (a certificate) */
#define OUT_MAX        4096 /* AUTH (user, password up to 1024) and SUBSCRIBE */
#define CHANNEL_MAX    (64 + 16)
#define WATCH_TTL_SEC  86400
#define WATCH_TIMEOUT  1000

typedef enum {                 /* in the order they come: a state past SUB_TLS may send */
               SUB_IDLE,       /* not connected; retry at retry_at_ms */
               SUB_CONNECTING, /* non-blocking connect in progress */
               SUB_TLS,        /* rediss://: the TLS handshake; AUTH / SUBSCRIBE wait in `out` */
               SUB_WAITING,    /* AUTH / SUBSCRIBE sent, confirmation pending */
               SUB_SUBSCRIBED,
} sub_state_t;

struct tlsc_revoke_s {
    const tlsc_config_t *cfg;
    tlsc_l1_t *l1;
    sub_state_t state;
    int fd;
    SSL *ssl;         /* rediss://: on fd; NULL in the clear */
    int tls_want_out; /* the last TLS call wants the socket writable */
    const char *peer; /* the host this attempt dials: the name Redis's certificate must show */
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
    int ever_lost;    /* logged once per outage */
    int refusal_said; /* a refusal only an operator can fix was logged since the last subscription */
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

/* Drops the connection, TLS first (no close_notify: the socket may not take it now). */
static void link_drop(tlsc_revoke_t *r)
{
    SSL_free(r->ssl);
    r->ssl = NULL;
    r->tls_want_out = 0;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/*
 * The attempt or the subscription failed: log it once per outage, and retry after the backoff.
 * A refusal only an operator can fix (`refused`: a certificate) is an error line, said once
 * until the next subscription, and retried every REFUSED_MS.
 */
static void link_fail(tlsc_revoke_t *r, uint64_t now, const char *why, int refused)
{
    r->have_node = 0; /* with Sentinel: ask again where to subscribe */
    link_drop(r);
    tlsc_redis_reader_free(r->reader);
    r->reader = NULL;
    OPENSSL_cleanse(r->out, sizeof(r->out)); /* it may have held the AUTH password */
    r->out_len = r->out_off = 0;
    r->ping_sent_ms = 0; /* a ping of this link is no business of the next one */
    if (refused && !r->refusal_said) {
        r->refusal_said = 1;
        tlsc_log_error("revocation feed %s: %s; retrying every %u s, the local cache stops answering after %u ms without it",
                       r->channel, why, REFUSED_MS / 1000, TLSC_REVOKE_BOUND_MS);
    } else if (!refused && (r->state == SUB_SUBSCRIBED || !r->ever_lost)) {
        tlsc_log_warn("revocation feed %s: %s; the local cache stops answering after %u ms without it", r->channel, why,
                      TLSC_REVOKE_BOUND_MS);
    }
    r->ever_lost = 1;
    r->state = SUB_IDLE;
    if (r->cfg->redis.cluster) /* a PUBLISH reaches every node of a cluster: any seed that answers will do */
        r->seed = (r->seed + 1) % r->cfg->redis.nseeds;
    r->retry_at_ms = now + (refused ? REFUSED_MS : r->backoff_ms);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void link_close(tlsc_revoke_t *r, uint64_t now, const char *why)
{
    link_fail(r, now, why, 0);
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
    r->peer = host;

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

/* ------------------------------------------------------------------------------------------ */
/* Bytes on the socket: in the clear, or through TLS with rediss://                             */

/*
 * Whether this attempt speaks TLS: when the URL says so (rediss://, rediss-cluster://, and
 * rediss-sentinel://, whose sentinels speak TLS too, as the workers' links expect).
 */
static int link_wants_tls(const tlsc_revoke_t *r)
{
    return r->cfg->redis.tls;
}

/* One TLS call did not finish: 0 when it waits for the socket (tls_want_out says which way), else -1. */
static int tls_wait(tlsc_revoke_t *r, int rc)
{
    switch (SSL_get_error(r->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        r->tls_want_out = 0;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        r->tls_want_out = 1;
        return 0;
    default:
        return -1;
    }
}

/* OpenSSL's reason for a failed call after the handshake, for the log; the queue is cleared. */
static const char *tls_reason(char *out, size_t outlen)
{
    char broke[96];

    snprintf(broke, sizeof(broke), "TLS: the connection broke (%s)", errno != 0 ? strerror(errno) : "closed");
    return tlsc_openssl_reason(out, outlen, broke);
}

/*
 * The TCP connection is up: start TLS on it with the workers' client context (--redis-ca,
 * --redis-cert, --redis-key; made again for every attempt, so a rotated file is read at the
 * next connection) and their host check. 0, or -1 after closing the link.
 */
static int tls_begin(tlsc_revoke_t *r, uint64_t now)
{
    const tlsc_config_t *cfg = r->cfg;
    char err[512];
    SSL_CTX *ctx;

    if (r->peer == NULL) { /* a unix socket: no host for a certificate to name */
        link_fail(r, now, "TLS needs a host name or IP address in --redis", 1);
        return -1;
    }
    if (tlsc_redis_tls_ctx_new(cfg->redis_ca_file, cfg->redis_cert_file, cfg->redis_key_file, &ctx, err, sizeof(err)) != 0) {
        link_fail(r, now, err, 1);
        return -1;
    }
    ERR_clear_error();
    r->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (r->ssl == NULL || SSL_set_fd(r->ssl, r->fd) != 1 || tlsc_redis_tls_expect_host(r->ssl, r->peer) != 0) {
        ERR_clear_error();
        link_close(r, now, "TLS: out of memory");
        return -1;
    }
    /* `out` gains a PING while a write may be pending: OpenSSL must take what it holds now. */
    SSL_set_mode(r->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_options(r->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF); /* Redis closes without close_notify: an EOF, not an error */
    SSL_set_connect_state(r->ssl);
    r->state = SUB_TLS;
    return 0;
}

/* Drives the handshake on a poll event; once it is over, AUTH and SUBSCRIBE go out (link_flush). */
static void tls_step(tlsc_revoke_t *r, uint64_t now)
{
    char why[400];
    int rc;

    ERR_clear_error();
    errno = 0;
    if ((rc = SSL_do_handshake(r->ssl)) == 1) {
        r->tls_want_out = 0;
        r->state = SUB_WAITING;
        return;
    }
    if (tls_wait(r, rc) == 0)
        return;
    const char *from = r->asking ? "the host in --redis" : r->have_node ? "the address the sentinels named" : "the host in --redis";
    link_fail(r, now, why,
              tlsc_redis_tls_failure(r->ssl, r->asking ? "the sentinel's" : "Redis's", r->peer, from, why, sizeof(why)));
}

/* Writes what is queued. 0 = ok (maybe partially), -1 = the link failed (`why` says why). */
static int link_flush(tlsc_revoke_t *r, char *why, size_t whylen)
{
    while (r->out_off < r->out_len) {
        size_t len = r->out_len - r->out_off;
        ssize_t n;

        if (r->ssl != NULL) {
            ERR_clear_error();
            errno = 0;
            if ((n = SSL_write(r->ssl, r->out + r->out_off, (int)len)) <= 0) {
                if (tls_wait(r, (int)n) == 0)
                    return 0;
                tls_reason(why, whylen);
                return -1;
            }
            r->tls_want_out = 0;
        } else if ((n = send(r->fd, r->out + r->out_off, len, MSG_NOSIGNAL)) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            snprintf(why, whylen, "%s", strerror(errno));
            return -1;
        }
        r->out_off += (size_t)n;
    }
    OPENSSL_cleanse(r->out, r->out_len);
    r->out_len = r->out_off = 0;
    return 0;
}

/* Reads what the socket (or TLS) has: > 0 bytes, 0 = Redis closed the link, -1 = nothing now, -2 = failed (`why`). */
static ssize_t link_recv(tlsc_revoke_t *r, char *buf, size_t len, char *why, size_t whylen)
{
    ssize_t n;

    if (r->ssl == NULL) {
        if ((n = recv(r->fd, buf, len, 0)) >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        snprintf(why, whylen, "%s", strerror(errno));
        return -2;
    }
    ERR_clear_error();
    errno = 0;
    if ((n = SSL_read(r->ssl, buf, (int)len)) > 0)
        return n;
    if (SSL_get_error(r->ssl, (int)n) == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (tls_wait(r, (int)n) == 0)
        return -1;
    tls_reason(why, whylen);
    return -2;
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
        r->refusal_said = 0;
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
    char buf[4096], err[256];
    const char *why = NULL;
    void *reply;
    ssize_t n;

    for (;;) {
        n = link_recv(r, buf, sizeof(buf), err, sizeof(err));
        if (n == 0) {
            link_close(r, now, "Redis closed the connection");
            return;
        }
        if (n < 0) {
            if (n == -2)
                link_close(r, now, err);
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
                link_drop(r);
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
    link_drop(r);
    tlsc_redis_reader_free(r->reader);
    OPENSSL_cleanse(r->out, sizeof(r->out));
    free(r);
}

struct pollfd tlsc_revoke_pollfd(const tlsc_revoke_t *r)
{
    struct pollfd p = {.fd = r->fd, .events = POLLIN};

    if (r->fd < 0)
        p.fd = -1;
    else if (r->ssl != NULL ? r->tls_want_out : r->state == SUB_CONNECTING || r->out_off < r->out_len)
        p.events |= POLLOUT;
    return p;
}

void tlsc_revoke_run(tlsc_revoke_t *r, short revents, uint64_t now)
{
    char why[256];

    if (r->state == SUB_IDLE && now >= r->retry_at_ms)
        link_open(r, now);
    if (r->fd >= 0 && r->state == SUB_CONNECTING && (revents & (POLLOUT | POLLERR | POLLHUP))) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
            link_close(r, now, strerror(soerr != 0 ? soerr : errno));
        else if (!link_wants_tls(r))
            r->state = SUB_WAITING;
        else if (tls_begin(r, now) == 0)
            revents |= POLLOUT; /* the ClientHello goes now */
    }
    if (r->fd >= 0 && r->state == SUB_TLS && revents != 0)
        tls_step(r, now);
    /* Nothing goes out before the TLS handshake is over: `out` may hold the AUTH password. */
    if (r->fd >= 0 && r->state >= SUB_WAITING && link_flush(r, why, sizeof(why)) != 0)
        link_close(r, now, why);
    /* TLS may want the socket writable to go on reading (a key update's answer). */
    if (r->fd >= 0 && r->state >= SUB_WAITING && ((revents & (POLLIN | POLLHUP | POLLERR)) || (r->ssl != NULL && revents != 0)))
        link_read(r, now);
    /* A subscription is alive while pings come back: one a second, overdue past the bound. */
    if (r->fd >= 0 && r->state == SUB_SUBSCRIBED) {
        if (r->ping_sent_ms != 0 && now - r->ping_sent_ms > TLSC_REVOKE_BOUND_MS) {
            link_close(r, now, "no answer to PING");
        } else if (r->ping_sent_ms == 0 && now - r->confirmed_ms >= PING_EVERY_MS) {
            const char *ping[] = {"PING"};

            if (append_cmd(r, 1, ping) == 0 && link_flush(r, why, sizeof(why)) == 0)
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

/*
 * The node's marker is one hash on one Redis, "<prefix>:l1:<node>"; with a Redis Cluster one per
 * master, "<prefix>:l1:<node>:{tag}" with a tag that hashes into that master's slots, so that a
 * FLUSHALL on any master, or its failover to an empty replica, is seen. Each marker is read once
 * a second with TTL (one key per request: the router's one-slot rule holds):
 *
 *   TTL -2 (gone) --> drop the L1, plant it (MULTI HSET EXPIRE EXEC) --> drop the L1 again
 *   TTL under half its life --> EXPIRE (a 0 answer: it went meanwhile, as -2)
 *
 * The second drop, once the plant is confirmed, closes a window: a session filled into the L1
 * after the first drop and gone in a second flush before the plant would outlive it. The TTL
 * is renewed, not left to run out: a marker that expired would drop a healthy L1. A new slot
 * map re-plans the tags; a marker of a new tag is missing, which drops the L1 once.
 */

#define MARKERS_MAX    (TLSC_REDIS_CLUSTER_NODES_MAX + TLSC_REDIS_URL_SEEDS_MAX) /* tlsc_redis_cluster_partition's bound */
#define MARKER_KEY_MAX 160

typedef enum { MARK_IDLE, MARK_CHECK, MARK_RENEW, MARK_PLANT } mark_state_t;

typedef struct {
    tlsc_revoke_watch_t *w;
    tlsc_redis_cluster_req_t *inflight;
    mark_state_t state; /* what `inflight` is */
    int used;
    unsigned tag; /* TLSC_REVOKE_NO_TAG: the one marker of one Redis */
    size_t key_len;
    char key[MARKER_KEY_MAX];
} marker_t;

struct tlsc_revoke_watch_s {
    tlsc_redis_cluster_t *router;
    tlsc_l1_t *l1;
    tlsc_stats_t *stats;
    int cluster;
    uint64_t map_version;           /* of the partition the markers follow */
    char base[MARKER_KEY_MAX - 16]; /* "<prefix>:l1:<node>" */
    uint8_t owner[TLSC_REDIS_CLUSTER_SLOTS];
    marker_t marker[MARKERS_MAX];
};

size_t tlsc_revoke_watch_tags(const uint8_t *owner, size_t n, unsigned *tags)
{
    size_t found = 0;
    char num[12];

    for (size_t i = 0; i < n; i++)
        tags[i] = TLSC_REVOKE_NO_TAG;
    for (unsigned t = 0; t < TLSC_REVOKE_TAG_SEARCH && found < n; t++) {
        int len = snprintf(num, sizeof(num), "%u", t);
        uint8_t o = owner[tlsc_redis_cluster_keyslot(num, (size_t)len)];

        if (o < n && tags[o] == TLSC_REVOKE_NO_TAG) {
            tags[o] = t;
            found++;
        }
    }
    return found;
}

static void on_marker_reply(int status, const redisReply *reply, void *data);

/* Sends the marker's next request; a request that cannot go now leaves it idle until the next tick. */
static void marker_send(marker_t *m, mark_state_t what)
{
    char ttl[16], since[24];
    const char *check[] = {"TTL", m->key}, *renew[] = {"EXPIRE", m->key, ttl}, *multi[] = {"MULTI"},
               *hset[] = {"HSET", m->key, "since", since}, *exec[] = {"EXEC"};
    const char *const *plant[] = {multi, hset, renew, exec};
    const int plant_argc[] = {1, 4, 3, 1}, check_argc[] = {2}, renew_argc[] = {3};
    const char *const *one[1];
    int status;

    snprintf(ttl, sizeof(ttl), "%u", WATCH_TTL_SEC);
    snprintf(since, sizeof(since), "%llu", (unsigned long long)tlsc_wall_sec());
    one[0] = what == MARK_CHECK ? check : renew;
    m->state = what;
    if (what == MARK_PLANT)
        m->inflight = tlsc_redis_cluster_send(m->w->router, m->key, m->key_len, 4, plant_argc, plant, NULL, WATCH_TIMEOUT,
                                              on_marker_reply, m, &status);
    else
        m->inflight = tlsc_redis_cluster_send(m->w->router, m->key, m->key_len, 1, what == MARK_CHECK ? check_argc : renew_argc,
                                              one, NULL, WATCH_TIMEOUT, on_marker_reply, m, &status);
    if (m->inflight == NULL)
        m->state = MARK_IDLE;
}

/* The marker is gone: Redis was flushed (or failed over to an empty replica, or this is a first start). */
static void marker_gone(marker_t *m)
{
    tlsc_l1_clear(m->w->l1); /* what it holds may be gone from Redis */
    tlsc_stat_inc(&m->w->stats->l1_flushes_seen);
    marker_send(m, MARK_PLANT);
}

static void on_marker_reply(int status, const redisReply *reply, void *data)
{
    marker_t *m = data;
    mark_state_t was = m->state;

    m->inflight = NULL;
    m->state = MARK_IDLE;
    if (status != 0 || reply == NULL) /* no answer: the next tick asks again */
        return;
    switch (was) {
    case MARK_CHECK:
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == -2)
            marker_gone(m);
        else if (reply->type == REDIS_REPLY_INTEGER && reply->integer < WATCH_TTL_SEC / 2) /* -1: someone made it persist */
            marker_send(m, MARK_RENEW);
        break;
    case MARK_RENEW:
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
            marker_gone(m);
        break;
    case MARK_PLANT:
        if (reply->type == REDIS_REPLY_ARRAY) /* EXEC ran: drop what was filled while the marker was away */
            tlsc_l1_clear(m->w->l1);
        break;
    case MARK_IDLE:
        break;
    }
}

static void marker_stop(tlsc_revoke_watch_t *w, marker_t *m)
{
    if (m->inflight != NULL)
        tlsc_redis_cluster_cancel(w->router, m->inflight);
    m->inflight = NULL;
    m->state = MARK_IDLE;
    m->used = 0;
}

/* A marker for `tag` in a free place. -1 when its key does not fit (it cannot: the names are bounded). */
static int marker_add(tlsc_revoke_watch_t *w, unsigned tag)
{
    for (size_t i = 0; i < MARKERS_MAX; i++) {
        marker_t *m = &w->marker[i];
        int n;

        if (m->used)
            continue;
        n = tag == TLSC_REVOKE_NO_TAG ? snprintf(m->key, sizeof(m->key), "%s", w->base)
                                      : snprintf(m->key, sizeof(m->key), "%s:{%u}", w->base, tag);
        if (n < 0 || (size_t)n >= sizeof(m->key))
            return -1;
        m->key_len = (size_t)n;
        m->tag = tag;
        m->w = w;
        m->used = 1;
        return 0;
    }
    return -1;
}

/*
 * Redis Cluster: one marker per master of the current map. The tags depend only on which slots
 * share a master, so a failover keeps them (and the promoted replica is checked at the same
 * key); a reshard may change some.
 */
static void watch_plan(tlsc_revoke_watch_t *w)
{
    unsigned tags[MARKERS_MAX];
    uint64_t v = tlsc_redis_cluster_map_version(w->router);
    size_t n;

    if (v == w->map_version)
        return;
    w->map_version = v;
    n = tlsc_redis_cluster_partition(w->router, w->owner);
    if (n > MARKERS_MAX)
        n = MARKERS_MAX;
    if (tlsc_revoke_watch_tags(w->owner, n, tags) < n)
        tlsc_log_warn("flush watch: a master holds no slot of any tag below %u; a flush there is not seen", TLSC_REVOKE_TAG_SEARCH);
    for (size_t i = 0; i < MARKERS_MAX; i++) {
        size_t k = 0;

        while (k < n && tags[k] != w->marker[i].tag)
            k++;
        if (w->marker[i].used && k == n)
            marker_stop(w, &w->marker[i]);
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = 0;

        while (i < MARKERS_MAX && !(w->marker[i].used && w->marker[i].tag == tags[k]))
            i++;
        if (i == MARKERS_MAX && tags[k] != TLSC_REVOKE_NO_TAG)
            (void)marker_add(w, tags[k]);
    }
}

tlsc_revoke_watch_t *tlsc_revoke_watch_new(const tlsc_config_t *cfg, tlsc_redis_cluster_t *router, tlsc_l1_t *l1,
                                           tlsc_stats_t *stats)
{
    tlsc_revoke_watch_t *w = calloc(1, sizeof(*w));
    int n;

    if (w == NULL)
        return NULL;
    n = snprintf(w->base, sizeof(w->base), "%s:l1:%s", cfg->redis_prefix, cfg->node);
    if (n < 0 || (size_t)n >= sizeof(w->base)) {
        free(w);
        return NULL;
    }
    w->router = router;
    w->l1 = l1;
    w->stats = stats;
    w->cluster = cfg->redis.cluster;
    if (!w->cluster && marker_add(w, TLSC_REVOKE_NO_TAG) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

void tlsc_revoke_watch_tick(tlsc_revoke_watch_t *w)
{
    if (w->cluster)
        watch_plan(w);
    for (size_t i = 0; i < MARKERS_MAX; i++)
        if (w->marker[i].used && w->marker[i].state == MARK_IDLE)
            marker_send(&w->marker[i], MARK_CHECK);
}

void tlsc_revoke_watch_free(tlsc_revoke_watch_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < MARKERS_MAX; i++)
        if (w->marker[i].used)
            marker_stop(w, &w->marker[i]);
    free(w);
}
