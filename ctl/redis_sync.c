/*
 * This file's one job: the tools' blocking Redis client (redis_sync.h). A link is a socket of
 * our own, TLS on it when the URL says so, RESP written here and read through the server's
 * bounded reader; above the links, finding the master (Sentinel) or every master (Cluster).
 */
#include "redis_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "ctl.h"
#include "redis.h"
#include "redis_cluster.h"
#include "redis_url.h"
#include "util.h"

#define TIMEOUT_DEFAULT_MS 5000
#define READ_CHUNK         16384
#define LINKS_MAX          (TLSC_REDIS_CLUSTER_NODES_MAX * 2) /* masters, and nodes a redirect named */
#define ARGS_MAX           (1 << 20)                          /* arguments of one command we send */
#define SCAN_COUNT         "500"                              /* keys per SCAN step: a hint to Redis, which may return a few more */
#define SCAN_STEP_MAX      1024                               /* the bounded reader's largest array (server/redis.h) */

struct tlsc_ctlredis_s {
    tlsc_ctlredis_t *top; /* the handle tlsc_ctlredis_connect returned; itself for that one */
    int fd;               /* -1 on a cluster's handle, which has no link of its own */
    SSL *ssl;             /* rediss:// */
    redisReader *reader;  /* bounded (tlsc_redis_reader_new) */
    char *out;            /* commands appended, not yet written */
    size_t outlen, outcap;
    int failed; /* the link is unusable (a timeout or an error mid-reply); said in `why` */
    char why[320];
    char host[TLSC_CTLREDIS_HOST_MAX + 1]; /* the node's address, to find it again after a redirect */
    unsigned port;
    char where[320];

    /* The handle's own (top) fields. */
    tlsc_redis_url_t url; /* with its password taken: wiped at the end */
    SSL_CTX *tls_ctx;
    unsigned timeout_ms;
    tlsc_redis_cluster_map_t *map;     /* redis-cluster:// */
    tlsc_ctlredis_t *links[LINKS_MAX]; /* redis-cluster://: the map's masters first, in its order */
    size_t nlinks, nmasters;
};

/* ================================ one link: socket, TLS, RESP ================================ */

static void set_failed(tlsc_ctlredis_t *l, const char *what, const char *detail)
{
    l->failed = 1;
    snprintf(l->why, sizeof(l->why), "%s%s", what, detail);
}

/* Waits until the socket can do `events` or the deadline passes: 0, or -1 (timeout or poll error). */
static int wait_io(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        uint64_t now = tlsc_now_ms();
        int n;

        if (now >= deadline)
            return -1;
        n = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* A non-blocking socket connected to the link's address within the deadline, or -1 with `err`. */
static int dial(const char *host, unsigned port, const char *path, uint64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    int fd = -1, rc, soerr = 0;
    socklen_t slen = sizeof(soerr);

    if (path != NULL) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sun.sun_path) || (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
            snprintf(err, errlen, "cannot connect: %s", strlen(path) >= sizeof(sun.sun_path) ? "path too long" : strerror(errno));
            return -1;
        }
        memcpy(sun.sun_path, path, strlen(path) + 1);
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno != EINPROGRESS) {
            snprintf(err, errlen, "cannot connect: %s", strerror(errno));
            close(fd);
            return -1;
        }
        return fd; /* a unix socket connects at once or not at all */
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%u", port);
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        snprintf(err, errlen, "cannot resolve: %s", gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "cannot connect: no address");
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_io(fd, POLLOUT, deadline) == 0 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0)) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            break;
        }
        snprintf(err, errlen, "cannot connect: %s",
                 soerr != 0             ? strerror(soerr)
                 : errno == EINPROGRESS ? "timed out"
                                        : strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* The TLS handshake on the link's socket, the certificate checked against --redis-ca and the host. */
static int tls_handshake(tlsc_ctlredis_t *l, uint64_t deadline, char *err, size_t errlen)
{
    char why[200];
    int n;

    ERR_clear_error();
    /* The host in the URL (or the map, or a redirect) is what the certificate must show. */
    if ((l->ssl = SSL_new(l->top->tls_ctx)) == NULL || SSL_set_fd(l->ssl, l->fd) != 1 ||
        tlsc_redis_tls_expect_host(l->ssl, l->host) != 0) {
        snprintf(err, errlen, "TLS: %s", tlsc_openssl_reason(why, sizeof(why), "out of memory"));
        return -1;
    }
    while ((n = SSL_connect(l->ssl)) != 1) {
        int e = SSL_get_error(l->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            (void)tlsc_redis_tls_failure(l->ssl, "Redis's", l->host, "the host in --redis", err, errlen);
            return -1;
        }
        if (wait_io(l->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != 0) {
            snprintf(err, errlen, "TLS handshake failed: timed out");
            return -1;
        }
    }
    return 0;
}

/* Writes all of `len` bytes at `p` before the deadline: 0, or -1 with the link failed. */
static int write_all(tlsc_ctlredis_t *l, const char *p, size_t len, uint64_t deadline)
{
    char why[200];

    while (len > 0) {
        ssize_t n;
        if (l->ssl != NULL) {
            int m = SSL_write(l->ssl, p, (int)(len > INT32_MAX ? INT32_MAX : len)), e;
            if (m > 0) {
                p += m, len -= (size_t)m;
                continue;
            }
            e = SSL_get_error(l->ssl, m);
            if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
                wait_io(l->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == 0)
                continue;
            set_failed(l, "write failed: ", tlsc_openssl_reason(why, sizeof(why), "timed out or closed"));
            return -1;
        }
        if ((n = send(l->fd, p, len, MSG_NOSIGNAL)) > 0) {
            p += n, len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait_io(l->fd, POLLOUT, deadline) == 0)
            continue;
        set_failed(l, "write failed: ", n < 0 && errno != EAGAIN ? strerror(errno) : "timed out");
        return -1;
    }
    return 0;
}

/* Reads what is there (waiting until the deadline) into the reader: 0, or -1 with the link failed. */
static int read_some(tlsc_ctlredis_t *l, uint64_t deadline)
{
    char buf[READ_CHUNK], why[200];

    for (;;) {
        ssize_t n;
        if (l->ssl != NULL) {
            int m = SSL_read(l->ssl, buf, sizeof(buf)), e;
            if (m > 0) {
                n = m;
            } else {
                e = SSL_get_error(l->ssl, m);
                if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
                    wait_io(l->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == 0)
                    continue;
                set_failed(l, "",
                           e == SSL_ERROR_ZERO_RETURN ? "closed by the server"
                           : e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE
                               ? "timed out waiting for a reply"
                               : tlsc_openssl_reason(why, sizeof(why), "closed"));
                return -1;
            }
        } else if ((n = recv(l->fd, buf, sizeof(buf), 0)) <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait_io(l->fd, POLLIN, deadline) == 0)
                continue;
            set_failed(l, "",
                       n == 0            ? "closed by the server"
                       : errno == EAGAIN ? "timed out waiting for a reply"
                                         : strerror(errno));
            return -1;
        }
        if (redisReaderFeed(l->reader, buf, (size_t)n) != REDIS_OK) {
            set_failed(l, "", "out of memory");
            return -1;
        }
        OPENSSL_cleanse(buf, (size_t)n);
        return 0;
    }
}

/* RESP for one command, appended to the link's output. */
static int append_resp(tlsc_ctlredis_t *l, int argc, const char **argv, const size_t *lens)
{
    size_t need = 16;

    if (argc <= 0 || argc > ARGS_MAX)
        return -1;
    for (int i = 0; i < argc; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(argv[i]);
        if (n > ((size_t)1 << 30))
            return -1;
        need += n + 32;
    }
    if (l->outlen + need > l->outcap) {
        size_t cap = l->outcap ? l->outcap : 4096;
        char *p;
        while (cap < l->outlen + need)
            cap *= 2;
        if ((p = malloc(cap)) == NULL)
            return -1;
        if (l->outlen > 0)
            memcpy(p, l->out, l->outlen);
        if (l->out != NULL)
            OPENSSL_cleanse(l->out, l->outcap); /* it may hold an AUTH password */
        free(l->out);
        l->out = p;
        l->outcap = cap;
    }
    l->outlen += (size_t)snprintf(l->out + l->outlen, l->outcap - l->outlen, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t n = lens != NULL ? lens[i] : strlen(argv[i]);
        l->outlen += (size_t)snprintf(l->out + l->outlen, l->outcap - l->outlen, "$%zu\r\n", n);
        memcpy(l->out + l->outlen, argv[i], n);
        memcpy(l->out + l->outlen + n, "\r\n", 2);
        l->outlen += n + 2;
    }
    return 0;
}

/* The link a command without a key goes on: the handle's own, or a cluster's first master. */
static tlsc_ctlredis_t *self_link(tlsc_ctlredis_t *r)
{
    return r->map != NULL ? r->links[0] : r;
}

int tlsc_ctlredis_append(tlsc_ctlredis_t *r, int argc, const char **argv, const size_t *lens, char *err, size_t errlen)
{
    tlsc_ctlredis_t *l = self_link(r);

    if (l->failed) {
        snprintf(err, errlen, "redis %s: %s", l->where, l->why);
        return -1;
    }
    if (append_resp(l, argc, argv, lens) != 0) {
        snprintf(err, errlen, "redis %s: out of memory", l->where);
        return -1;
    }
    return 0;
}

redisReply *tlsc_ctlredis_reply(tlsc_ctlredis_t *r, char *err, size_t errlen)
{
    tlsc_ctlredis_t *l = self_link(r);
    uint64_t deadline = tlsc_now_ms() + l->top->timeout_ms;
    void *reply = NULL;

    if (!l->failed && l->outlen > 0) {
        int w = write_all(l, l->out, l->outlen, deadline);
        OPENSSL_cleanse(l->out, l->outlen);
        l->outlen = 0;
        if (w != 0)
            goto fail;
    }
    tlsc_redis_reader_next(l->reader); /* each reply is bounded on its own */
    while (!l->failed) {
        if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
            /* The stream is out of step after a refused or malformed reply: the link is done. */
            set_failed(l, "",
                       tlsc_redis_reader_refused(l->reader) ? "a reply past the bounds (1024 elements, 8 MiB); refused"
                                                            : "a malformed reply (protocol error)");
            break;
        }
        if (reply != NULL)
            return reply;
        if (read_some(l, deadline) != 0)
            break;
    }
fail:
    snprintf(err, errlen, "redis %s: %s", l->where, l->why);
    return NULL;
}

redisReply *tlsc_ctlredis_command(tlsc_ctlredis_t *r, int argc, const char **argv, const size_t *lens, char *err, size_t errlen)
{
    redisReply *reply;

    if (tlsc_ctlredis_append(r, argc, argv, lens, err, errlen) != 0 || (reply = tlsc_ctlredis_reply(r, err, errlen)) == NULL)
        return NULL;
    if (reply->type == REDIS_REPLY_ERROR) {
        char text[200];
        tlsc_ctl_printable_text(text, sizeof(text), reply->str, reply->len, 120);
        snprintf(err, errlen, "%s", text);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Runs AUTH or SELECT during the connect; 0 or -1 with `err` naming the step, never its arguments. */
static int handshake_step(tlsc_ctlredis_t *l, const char *step, int argc, const char **argv, const size_t *lens, char *err,
                          size_t errlen)
{
    char why[256];
    redisReply *reply = tlsc_ctlredis_command(l, argc, argv, lens, why, sizeof(why));
    const char *hint;

    if (reply == NULL && l->failed) { /* the link, not Redis's answer: `why` names the address already */
        snprintf(err, errlen, "%s (during %s)", why, step);
        return -1;
    }
    if (reply == NULL) {
        hint = tlsc_redis_error_hint(why, strlen(why));
        snprintf(err, errlen, "redis %s: %s failed: %s%s%s", l->where, step, why, hint ? "; " : "", hint ? hint : "");
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}

/* Closes the link and drops what it holds; the struct stays, ready for link_open again. */
static void link_close(tlsc_ctlredis_t *l)
{
    if (l->ssl != NULL)
        SSL_free(l->ssl);
    if (l->fd >= 0)
        close(l->fd);
    tlsc_redis_reader_free(l->reader);
    if (l->out != NULL)
        OPENSSL_cleanse(l->out, l->outcap);
    free(l->out);
    l->ssl = NULL, l->fd = -1, l->reader = NULL, l->out = NULL;
    l->outlen = l->outcap = 0;
    l->failed = 0;
}

/* Closes a link and frees it, unless it is the handle itself (tlsc_ctlredis_free frees that). */
static void link_free(tlsc_ctlredis_t *l)
{
    link_close(l);
    if (l != l->top)
        free(l);
}

/*
 * Opens a link of `top` to host:port (or the URL's unix path): TLS when the URL says so, then
 * AUTH and SELECT as the URL says when `data_node` (a sentinel gets neither). `l` is `top`
 * itself for a one-node URL, else a new link. 0, or -1 with `err` naming the address.
 */
static int link_open(tlsc_ctlredis_t *top, tlsc_ctlredis_t *l, const char *host, unsigned port, int data_node, char *err,
                     size_t errlen)
{
    const tlsc_redis_url_t *u = &top->url;
    uint64_t deadline = tlsc_now_ms() + top->timeout_ms;
    char why[512], db[16];

    l->top = top;
    l->fd = -1;
    if (host != NULL) {
        snprintf(l->host, sizeof(l->host), "%s", host);
        l->port = port;
        snprintf(l->where, sizeof(l->where), "%s%s%s%s:%u", u->tls ? "rediss://" : "", strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", port);
    } else {
        tlsc_redis_url_describe(u, l->where, sizeof(l->where));
    }
    if ((l->reader = tlsc_redis_reader_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((l->fd = dial(host, port, host == NULL ? u->path : NULL, deadline, why, sizeof(why))) < 0 ||
        (top->tls_ctx != NULL && tls_handshake(l, deadline, why, sizeof(why)) != 0)) {
        snprintf(err, errlen, "redis %s: %s", l->where, why);
        return -1;
    }
    /* A data node takes the URL's credentials, a sentinel its own (--redis-sentinel-pass-file). */
    const char *user = data_node ? u->user : u->sentinel_user, *pass = data_node ? u->password : u->sentinel_password;
    if (pass != NULL) {
        const char *argv[3] = {"AUTH", user ? user : pass, pass};
        size_t lens[3] = {4, strlen(argv[1]), strlen(pass)};
        if (handshake_step(l, data_node ? "AUTH" : "AUTH (the sentinels' password)", user ? 3 : 2, argv, lens, err, errlen) != 0)
            return -1;
    }
    if (data_node && u->db != 0) {
        snprintf(db, sizeof(db), "%u", u->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        if (handshake_step(l, "SELECT", 2, argv, lens, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* A new link of `top` to a node (a sentinel when !data_node); NULL with `err`. */
static tlsc_ctlredis_t *link_new(tlsc_ctlredis_t *top, const char *host, unsigned port, int data_node, char *err, size_t errlen)
{
    tlsc_ctlredis_t *l = calloc(1, sizeof(*l));

    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (link_open(top, l, host, port, data_node, err, errlen) != 0) {
        link_free(l);
        return NULL;
    }
    return l;
}

/* ================================ Sentinel ================================ */

int tlsc_ctlredis_master_addr(const redisReply *reply, char *host, size_t hostlen, unsigned *port)
{
    const redisReply *h, *p;
    char text[TLSC_CTLREDIS_HOST_MAX + 16], why[128];
    tlsc_addr_t a;
    int n;

    if (reply == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_NIL)
        return 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        return -1;
    h = reply->element[0];
    p = reply->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING || h->len == 0 || h->len > TLSC_CTLREDIS_HOST_MAX ||
        p->len > 5)
        return -1;
    /* The one address parser (common/addr.h) judges it: a name or IPv4, or an IPv6 address (given bare, as sentinels do). */
    n = snprintf(text, sizeof(text), memchr(h->str, ':', h->len) ? "[%.*s]:%.*s" : "%.*s:%.*s", (int)h->len, h->str, (int)p->len,
                 p->str);
    if (n < 0 || (size_t)n >= sizeof(text) || tlsc_addr_parse(text, (size_t)n, 0, 0, &a, why, sizeof(why)) != 0 ||
        a.kind != TLSC_ADDR_TCP || strlen(a.host) >= hostlen)
        return -1;
    memcpy(host, a.host, strlen(a.host) + 1);
    *port = a.port;
    return 1;
}

/* Is the node a master by its ROLE? 0, or -1 with why in `err`. */
static int check_role(tlsc_ctlredis_t *l, char *err, size_t errlen)
{
    const char *argv[1] = {"ROLE"};
    redisReply *reply = tlsc_ctlredis_command(l, 1, argv, NULL, err, errlen);
    const redisReply *role;
    char text[64];
    int ok;

    if (reply == NULL)
        return -1;
    role = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 ? reply->element[0] : NULL;
    ok = role != NULL && role->type == REDIS_REPLY_STRING && role->len == 6 && memcmp(role->str, "master", 6) == 0;
    if (!ok) {
        if (role != NULL && role->type == REDIS_REPLY_STRING)
            tlsc_ctl_printable(text, sizeof(text), role->str, role->len, 16);
        else
            snprintf(text, sizeof(text), "nothing readable");
        snprintf(err, errlen, "redis %s is not the master (ROLE says %s)", l->where, text);
    }
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

/*
 * Asks the sentinels in turn where the master is, and connects to it: the first sentinel that
 * answers with an address whose node says it is the master wins. The reason the last one failed
 * is what `err` says when none does.
 */
static int find_master(tlsc_ctlredis_t *top, char *err, size_t errlen)
{
    const tlsc_redis_url_t *u = &top->url;
    char why[1024] = "no sentinel", said[512], host[TLSC_CTLREDIS_HOST_MAX + 1];

    for (size_t i = 0; i < u->nsentinels; i++) {
        const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", u->master_name};
        tlsc_ctlredis_t *s = link_new(top, u->sentinels[i].host, u->sentinels[i].port, 0, why, sizeof(why));
        redisReply *reply;
        unsigned port = 0;
        int rc;

        if (s == NULL)
            continue;
        reply = tlsc_ctlredis_command(s, 3, argv, NULL, said, sizeof(said));
        rc = reply == NULL ? -2 : tlsc_ctlredis_master_addr(reply, host, sizeof(host), &port);
        if (rc == 0)
            snprintf(why, sizeof(why), "sentinel %s does not know master %s", s->where, u->master_name);
        else if (rc == -1)
            snprintf(why, sizeof(why), "sentinel %s: an answer that is not a host and a port", s->where);
        else if (rc == -2 && s->failed)
            snprintf(why, sizeof(why), "%s", said); /* names the address already */
        else if (rc == -2)
            snprintf(why, sizeof(why), "sentinel %s: %s", s->where, said);
        freeReplyObject(reply);
        link_free(s);
        if (rc != 1)
            continue;
        if (link_open(top, top, host, port, 1, why, sizeof(why)) == 0 && check_role(top, why, sizeof(why)) == 0)
            return 0;
        link_close(top); /* and on to the next sentinel */
    }
    snprintf(err, errlen, "redis-sentinel master %s: no sentinel named a master that answers: %s", u->master_name, why);
    return -1;
}

/* ================================ Cluster ================================ */

static tlsc_ctlredis_t *link_find(tlsc_ctlredis_t *top, const char *host, unsigned port)
{
    for (size_t i = 0; i < top->nlinks; i++)
        if (top->links[i]->port == port && strcmp(top->links[i]->host, host) == 0)
            return top->links[i];
    return NULL;
}

/* The link to a data node of the handle, opened when there is none yet: NULL with `err`. */
static tlsc_ctlredis_t *link_get(tlsc_ctlredis_t *top, const char *host, unsigned port, char *err, size_t errlen)
{
    tlsc_ctlredis_t *l = link_find(top, host, port);

    if (l != NULL)
        return l;
    if (top->nlinks == LINKS_MAX) {
        snprintf(err, errlen, "redis-cluster: more than %d nodes named", LINKS_MAX);
        return NULL;
    }
    if ((l = link_new(top, host, port, 1, err, errlen)) != NULL)
        top->links[top->nlinks++] = l;
    return l;
}

/* The slot map from one seed: CLUSTER SHARDS, or CLUSTER SLOTS where SHARDS is unknown (7.0). */
static int read_map(tlsc_ctlredis_t *seed, tlsc_redis_cluster_map_t *map, char *err, size_t errlen)
{
    const char *argv[2] = {"CLUSTER", "SHARDS"};
    char why[256];
    redisReply *reply;
    int shards = 1;

    if ((reply = tlsc_ctlredis_command(seed, 2, argv, NULL, why, sizeof(why))) == NULL && !seed->failed) {
        shards = 0;
        argv[1] = "SLOTS";
        reply = tlsc_ctlredis_command(seed, 2, argv, NULL, why, sizeof(why));
    }
    if (reply == NULL) {
        if (seed->failed)
            snprintf(err, errlen, "%s", why); /* names the address already */
        else
            snprintf(err, errlen, "redis %s: CLUSTER %s: %s", seed->where, argv[1], why);
        return -1;
    }
    if (tlsc_redis_cluster_map_parse(reply, shards, seed->host, map, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "redis %s: CLUSTER %s: %s", seed->where, argv[1], why);
        freeReplyObject(reply);
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}

/* Reads the map from the first seed that gives one, then links every master in the map's order. */
static int find_masters(tlsc_ctlredis_t *top, char *err, size_t errlen)
{
    const tlsc_redis_url_t *u = &top->url;
    char why[1024] = "no seed";
    size_t i;

    if ((top->map = calloc(1, sizeof(*top->map))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < u->nseeds; i++) {
        tlsc_ctlredis_t *seed = link_new(top, u->seeds[i].host, u->seeds[i].port, 1, why, sizeof(why));
        int rc = seed == NULL ? -1 : read_map(seed, top->map, why, sizeof(why));

        if (seed != NULL)
            link_free(seed);
        if (rc == 0)
            break;
    }
    if (i == u->nseeds) {
        snprintf(err, errlen, "redis-cluster: no seed gave a slot map: %s", why);
        return -1;
    }
    for (i = 0; i < top->map->nnodes; i++)
        if (link_get(top, top->map->node[i].host, top->map->node[i].port, err, errlen) == NULL)
            return -1;
    top->nmasters = top->map->nnodes;
    return 0;
}

size_t tlsc_ctlredis_masters(const tlsc_ctlredis_t *r)
{
    return r->map != NULL ? r->nmasters : 1;
}

tlsc_ctlredis_t *tlsc_ctlredis_master(tlsc_ctlredis_t *r, size_t i)
{
    return r->map != NULL ? r->links[i] : r;
}

redisReply *tlsc_ctlredis_follow(tlsc_ctlredis_t *r, redisReply *reply, int argc, const char **argv, const size_t *lens, char *err,
                                 size_t errlen)
{
    char host[TLSC_REDIS_CLUSTER_HOST_MAX + 1];
    unsigned slot, port;
    tlsc_ctlredis_t *to;
    int kind;

    /*
     * A slot being migrated can take two hops: the importing node says MOVED (no ASKING), the
     * migrating one then says ASK. Bounded as the server bounds it.
     */
    for (int hop = 0; hop < TLSC_REDIS_CLUSTER_REDIRECTS_MAX; hop++) {
        if (r->top->map == NULL || reply == NULL || reply->type != REDIS_REPLY_ERROR ||
            (kind = tlsc_redis_cluster_redirect_parse(reply->str, reply->len, &slot, host, sizeof(host), &port)) == 0)
            return reply;
        freeReplyObject(reply);
        if ((to = link_get(r->top, host, port, err, errlen)) == NULL)
            return NULL;
        if (kind == 2) { /* ASK: this one command, on the importing node, after ASKING */
            const char *asking[1] = {"ASKING"};
            redisReply *ok = tlsc_ctlredis_command(to, 1, asking, NULL, err, errlen);
            if (ok == NULL)
                return NULL;
            freeReplyObject(ok);
        }
        if (tlsc_ctlredis_append(to, argc, argv, lens, err, errlen) != 0 || (reply = tlsc_ctlredis_reply(to, err, errlen)) == NULL)
            return NULL;
    }
    return reply; /* still a redirect: the caller sees it as the error it is */
}

tlsc_ctlredis_t *tlsc_ctlredis_for_key(tlsc_ctlredis_t *r, const char *key, size_t keylen)
{
    tlsc_ctlredis_t *top = r->top;
    unsigned idx;

    if (top->map == NULL)
        return r;
    idx = top->map->slot[tlsc_redis_cluster_keyslot(key, keylen)];
    return idx < top->nmasters ? top->links[idx] : top->links[0]; /* a slot with no master: the node will say MOVED */
}

redisReply *tlsc_ctlredis_key_command(tlsc_ctlredis_t *r, const char *key, size_t keylen, int argc, const char **argv,
                                      const size_t *lens, char *err, size_t errlen)
{
    tlsc_ctlredis_t *l = tlsc_ctlredis_for_key(r, key, keylen);
    redisReply *reply;

    if (tlsc_ctlredis_append(l, argc, argv, lens, err, errlen) != 0 || (reply = tlsc_ctlredis_reply(l, err, errlen)) == NULL)
        return NULL;
    return tlsc_ctlredis_follow(l, reply, argc, argv, lens, err, errlen);
}

/*
 * The sentinels' own credentials for a redis-sentinel:// URL (the URL's are the data nodes'):
 * the password from o->sentinel_pass_file, else o->env_sentinel_pass, under the rules of the
 * data password (a 0600 file, bounded, never echoed); a user without a password, or either
 * flag with another URL form, is refused with one line naming the flag.
 */
static int take_sentinel_credentials(tlsc_redis_url_t *u, const tlsc_ctlredis_options_t *o, char *err, size_t errlen)
{
    const char *env = o->env_sentinel_pass != NULL && *o->env_sentinel_pass != '\0' ? o->env_sentinel_pass : NULL;
    char *pw = NULL;

    if (u->master_name == NULL) {
        if (o->sentinel_pass_file == NULL && o->sentinel_user == NULL)
            return 0; /* the variable alone is the environment's, for the server: not ours to judge */
        snprintf(err, errlen, "%s is for a redis-sentinel:// URL",
                 o->sentinel_pass_file != NULL ? "--redis-sentinel-pass-file" : "--redis-sentinel-user");
        return -1;
    }
    if (o->sentinel_pass_file == NULL && env == NULL) {
        if (o->sentinel_user == NULL)
            return 0;
        snprintf(err, errlen,
                 "--redis-sentinel-user needs the sentinels' password: --redis-sentinel-pass-file FILE or "
                 "TLSCACHE_REDIS_SENTINEL_PASS");
        return -1;
    }
    if (tlsc_redis_password_take(o->sentinel_pass_file, "--redis-sentinel-pass-file", env, "TLSCACHE_REDIS_SENTINEL_PASS", &pw, err,
                                 errlen) != 0)
        return -1;
    u->sentinel_password = pw;
    if (o->sentinel_user != NULL && (u->sentinel_user = strdup(o->sentinel_user)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ================================ the handle ================================ */

int tlsc_ctlredis_connect(const tlsc_ctlredis_options_t *o, tlsc_ctlredis_t **out, char *err, size_t errlen)
{
    tlsc_ctlredis_t *r;
    int rc;

    if ((r = calloc(1, sizeof(*r))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->top = r;
    r->fd = -1;
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : TIMEOUT_DEFAULT_MS;
    if (tlsc_redis_url_parse(o->url, &r->url, err, errlen) != 0 ||
        tlsc_redis_url_take_password(&r->url, o->pass_file, o->env_pass, err, errlen) != 0)
        goto fail;
    if (take_sentinel_credentials(&r->url, o, err, errlen) != 0)
        goto fail;
    tlsc_redis_url_describe(&r->url, r->where, sizeof(r->where));
    if (r->url.tls) {
        if (o->ca_file == NULL) {
            snprintf(err, errlen, "--redis %s: TLS needs --redis-ca FILE (the CA that signed Redis's certificate)", r->where);
            goto fail;
        }
        if (tlsc_redis_tls_ctx_new(o->ca_file, o->cert_file, o->key_file, &r->tls_ctx, err, errlen) != 0)
            goto fail;
    } else if (o->ca_file != NULL || o->cert_file != NULL || o->key_file != NULL) {
        snprintf(err, errlen, "%s given, but --redis %s does not use TLS",
                 o->ca_file     ? "--redis-ca"
                 : o->cert_file ? "--redis-cert"
                                : "--redis-key",
                 r->where);
        goto fail;
    }
    if (r->url.master_name != NULL)
        rc = find_master(r, err, errlen);
    else if (r->url.cluster)
        rc = find_masters(r, err, errlen);
    else
        rc = link_open(r, r, r->url.host, r->url.port, 1, err, errlen);
    if (rc != 0)
        goto fail;
    if (r->url.master_name == NULL && r->url.cluster == 0) /* the one link's name is the URL's, as the server logs it */
        tlsc_redis_url_describe(&r->url, r->where, sizeof(r->where));
    *out = r;
    return 0;

fail:
    tlsc_ctlredis_free(r);
    return -1;
}

int tlsc_ctlredis_scan(tlsc_ctlredis_t *r, const char *pattern, tlsc_ctlredis_scan_fn fn, void *data, char *err, size_t errlen)
{
    for (size_t m = 0; m < tlsc_ctlredis_masters(r); m++) {
        tlsc_ctlredis_t *node = tlsc_ctlredis_master(r, m);
        char cursor[32] = "0";

        do {
            const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
            redisReply *reply = tlsc_ctlredis_command(node, 6, argv, NULL, err, errlen);
            uint64_t next;
            int rc;

            if (reply == NULL)
                return -1;
            if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
                reply->element[1]->type != REDIS_REPLY_ARRAY || reply->element[1]->elements > SCAN_STEP_MAX ||
                tlsc_parse_uint_n(reply->element[0]->str, reply->element[0]->len, 0, UINT64_MAX, &next) != 0) {
                snprintf(err, errlen, "redis %s: SCAN: unexpected reply", node->where);
                freeReplyObject(reply);
                return -1;
            }
            snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long)next);
            rc = fn(node, reply->element[1], data);
            freeReplyObject(reply);
            if (rc != 0)
                return rc;
        } while (strcmp(cursor, "0") != 0);
    }
    return 0;
}

const char *tlsc_ctlredis_describe(const tlsc_ctlredis_t *r)
{
    return r->where;
}

void tlsc_ctlredis_free(tlsc_ctlredis_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nlinks; i++)
        link_free(r->links[i]);
    link_free(r);
    if (r->tls_ctx != NULL)
        SSL_CTX_free(r->tls_ctx);
    free(r->map);
    tlsc_redis_url_free(&r->url);
    free(r);
}
