#include "redis.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "log.h"

/*
 * One connection, one FIFO of requests, two timers, one prepare handle:
 *
 *   DOWN --conn_timer--> RESOLVING --> CONNECTING --> HANDSHAKE --> READY
 *     ^                                                               |
 *     +------- CLOSING <------ link_fail (error, EOF, garbage, stall) -+
 *
 * Every request, the handshake's AUTH / SELECT / PING included, sits in the FIFO until its
 * last reply has been read, even after it timed out or was cancelled: Redis answers in
 * order, so the FIFO head always owns the next reply. A request that gave up is a zombie
 * whose callback is NULL; its replies are read and dropped.
 *
 * `timer` fires at the earliest deadline of a live request, or when the oldest pending reply
 * becomes stall_ms overdue, whichever is first; it is moved only when a new request has an
 * earlier deadline, so a steady stream of requests with one timeout costs no timer work.
 * `conn_timer` counts down the backoff between attempts and then the connect timeout.
 * `flusher` (a uv_prepare) writes everything requested during one loop iteration with one
 * write just before the loop polls again, so a burst of handshakes costs one syscall.
 */

#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define DEFAULT_MAX_INFLIGHT       1024
#define DEFAULT_STALL_MS           1000
#define DEFAULT_TIMEOUT_MS         1000
#define BACKOFF_MIN_MS             50
#define BACKOFF_MAX_MS             2000
#define READ_BUF_SIZE              (64 * 1024)
#define REPLY_MAX_BYTES            ((size_t)8 << 20) /* an unfinished reply larger than this is garbage */
#define REQUEST_MAX_BYTES          ((size_t)64 << 20)
#define REQUEST_MAX_CMDS           4096
#define UNWRITTEN_MAX_BYTES        ((size_t)256 << 20) /* past this, new requests get UV_ENOBUFS */
#define BUF_KEEP                   ((size_t)256 << 10) /* larger write buffers are freed once drained */

typedef enum {
    LINK_DOWN,       /* no stream; conn_timer counts down the backoff */
    LINK_RESOLVING,  /* uv_getaddrinfo in flight; conn_timer is the connect timeout */
    LINK_CONNECTING, /* connect in flight; conn_timer is the connect timeout */
    LINK_HANDSHAKE,  /* AUTH / SELECT / PING sent, their replies pending */
    LINK_READY,
    LINK_CLOSING, /* the stream is closing; on_link_closed starts the backoff */
} link_state_t;

struct tlsc_redis_req_s {
    tlsc_redis_req_t *next; /* FIFO order, or the free list */
    tlsc_redis_cb cb;       /* NULL once delivered, timed out or cancelled: a zombie */
    void *data;
    uint64_t deadline; /* loop time, ms */
    unsigned replies_left;
    int internal; /* part of the handshake: never failed to a user */
};

typedef struct {
    char *base;
    size_t len, cap;
} buf_t;

/* A name lookup in the thread pool. Abandoned on timeout or close by clearing `r`. */
typedef struct {
    uv_getaddrinfo_t req;
    tlsc_redis_t *r;
} resolve_t;

struct tlsc_redis_s {
    uv_loop_t *loop;
    tlsc_redis_url_t url;
    char desc[300]; /* the URL without credentials, for logs */
    unsigned connect_timeout_ms, max_inflight, stall_ms;

    link_state_t state;
    int closing; /* tlsc_redis_close began */
    unsigned pending_closes;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } link;
    int link_open; /* link initialized and its close callback not yet run */
    uv_connect_t connect_req;
    resolve_t *resolving;
    redisReader *reader; /* a new one per connection */

    uv_timer_t timer;
    uint64_t timer_due; /* 0 when stopped */
    uv_timer_t conn_timer;
    uv_prepare_t flusher;
    int flush_scheduled;

    unsigned backoff_ms, failed_attempts, handshake_left;
    char last_reason[128]; /* the last failure logged; repeats are not logged again */

    buf_t out;  /* commands not yet written */
    buf_t wbuf; /* the bytes of the uv_write in flight */
    uv_write_t write_req;
    int writing;

    tlsc_redis_req_t *head, *tail, *free_reqs;
    unsigned inflight;
    char rbuf[READ_BUF_SIZE];
};

static void link_start(tlsc_redis_t *r);
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
static void on_connect(uv_connect_t *req, int status);
static void on_conn_timer(uv_timer_t *t);
static void on_auth_reply(int status, const redisReply *reply, void *data);
static void on_select_reply(int status, const redisReply *reply, void *data);
static void on_ping_reply(int status, const redisReply *reply, void *data);
static void on_flush(uv_prepare_t *p);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void link_fail(tlsc_redis_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void on_link_closed(uv_handle_t *h);
static void on_closed(uv_handle_t *h);

/* ================================ buffers and RESP ================================ */

static int buf_reserve(buf_t *b, size_t extra)
{
    size_t cap;
    char *p;

    if (b->cap - b->len >= extra)
        return 0;
    cap = b->cap < 4096 ? 4096 : b->cap;
    while (cap - b->len < extra)
        cap *= 2; /* bounded: len + extra <= UNWRITTEN_MAX_BYTES + REQUEST_MAX_BYTES */
    if ((p = realloc(b->base, cap)) == NULL)
        return UV_ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

/* Drops a drained buffer's memory when a burst made it large; it may hold an AUTH password. */
static void buf_drained(buf_t *b)
{
    b->len = 0;
    if (b->cap > BUF_KEEP) {
        OPENSSL_cleanse(b->base, b->cap);
        free(b->base);
        b->base = NULL;
        b->cap = 0;
    }
}

static void buf_free(buf_t *b)
{
    if (b->base != NULL)
        OPENSSL_cleanse(b->base, b->cap);
    free(b->base);
    memset(b, 0, sizeof(*b));
}

static size_t digits(size_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static char *put_header(char *p, char type, size_t v)
{
    size_t n = digits(v);

    *p++ = type;
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* An argument's length: argvlen[i], or strlen when the command has no argvlen. */
static size_t arg_len(const char *const *argv, const size_t *argvlen, int i)
{
    return argvlen != NULL ? argvlen[i] : strlen(argv[i]);
}

/*
 * Appends `ncmds` commands to `b` in RESP ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"). The size is
 * computed and bounded first so that one reserve suffices and nothing is half-written.
 */
static int append_commands(buf_t *b, size_t ncmds, const int *argc, const char *const *const *argv, const size_t *const *argvlen)
{
    size_t total = 0;
    char *p;
    int err;

    if (ncmds == 0 || ncmds > REQUEST_MAX_CMDS || argc == NULL || argv == NULL)
        return UV_EINVAL;
    for (size_t c = 0; c < ncmds; c++) {
        if (argc[c] <= 0 || argv[c] == NULL)
            return UV_EINVAL;
        total += 3 + digits((size_t)argc[c]);
        for (int i = 0; i < argc[c]; i++) {
            size_t n;

            if (argv[c][i] == NULL)
                return UV_EINVAL;
            n = arg_len(argv[c], argvlen != NULL ? argvlen[c] : NULL, i);
            if (n > REQUEST_MAX_BYTES || (total += 5 + digits(n) + n) > REQUEST_MAX_BYTES)
                return UV_E2BIG;
        }
    }
    if ((err = buf_reserve(b, total)) != 0)
        return err;
    p = b->base + b->len;
    for (size_t c = 0; c < ncmds; c++) {
        p = put_header(p, '*', (size_t)argc[c]);
        for (int i = 0; i < argc[c]; i++) {
            size_t n = arg_len(argv[c], argvlen != NULL ? argvlen[c] : NULL, i);
            p = put_header(p, '$', n);
            if (n > 0)
                memcpy(p, argv[c][i], n);
            p += n;
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    b->len += total;
    return 0;
}

/* Copies text from Redis or hiredis for a log line: bounded, control bytes replaced. */
static const char *printable(char *out, size_t outlen, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n && i + 1 < outlen; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
    return out;
}

/* ================================ the request FIFO ================================ */

static tlsc_redis_req_t *req_get(tlsc_redis_t *r)
{
    tlsc_redis_req_t *req = r->free_reqs;

    if (req != NULL)
        r->free_reqs = req->next;
    else if ((req = malloc(sizeof(*req))) == NULL)
        return NULL;
    memset(req, 0, sizeof(*req));
    return req;
}

static void req_release(tlsc_redis_t *r, tlsc_redis_req_t *req)
{
    req->cb = NULL;
    req->next = r->free_reqs;
    r->free_reqs = req;
}

static void arm_timer(tlsc_redis_t *r, uint64_t due)
{
    uint64_t now = uv_now(r->loop);

    if (r->timer_due != 0 && r->timer_due <= due)
        return;
    r->timer_due = due;
    uv_timer_start(&r->timer, on_timer, due > now ? due - now : 0, 0);
}

static void schedule_flush(tlsc_redis_t *r)
{
    if (!r->flush_scheduled) {
        r->flush_scheduled = 1;
        uv_prepare_start(&r->flusher, on_flush);
    }
}

/*
 * Queues the commands and a request for their replies. Returns the request or NULL with a
 * negative code in *status; nothing is queued then.
 */
static tlsc_redis_req_t *enqueue(tlsc_redis_t *r, size_t ncmds, const int *argc, const char *const *const *argv,
                                 const size_t *const *argvlen, unsigned timeout_ms, tlsc_redis_cb cb, void *data, int *status)
{
    tlsc_redis_req_t *req;

    if ((req = req_get(r)) == NULL) {
        *status = UV_ENOMEM;
        return NULL;
    }
    if ((*status = append_commands(&r->out, ncmds, argc, argv, argvlen)) != 0) {
        req_release(r, req);
        return NULL;
    }
    req->cb = cb;
    req->data = data;
    req->deadline = uv_now(r->loop) + (timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    req->replies_left = (unsigned)ncmds;
    if (r->tail != NULL)
        r->tail->next = req;
    else
        r->head = req;
    r->tail = req;
    r->inflight++;
    arm_timer(r, req->deadline);
    schedule_flush(r);
    return req;
}

/*
 * Fails every queued request with `status`. The FIFO is detached first, so a callback that
 * sends anew (and fails, as the link is down) or closes the client sees a consistent state;
 * once tlsc_redis_close began, the remaining callbacks are skipped.
 */
static void fail_all(tlsc_redis_t *r, int status)
{
    tlsc_redis_req_t *req = r->head, *next;

    r->head = r->tail = NULL;
    r->inflight = 0;
    r->timer_due = 0;
    uv_timer_stop(&r->timer);
    for (; req != NULL; req = next) {
        tlsc_redis_cb cb = req->cb;

        next = req->next;
        req->cb = NULL;
        if (cb != NULL && !req->internal && !r->closing)
            cb(status, NULL, req->data);
        req_release(r, req);
    }
}

/* ================================ connecting ================================ */

static void schedule_backoff(tlsc_redis_t *r)
{
    r->state = LINK_DOWN;
    uv_timer_start(&r->conn_timer, on_conn_timer, r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void abandon_resolve(tlsc_redis_t *r)
{
    if (r->resolving != NULL) {
        r->resolving->r = NULL;
        uv_cancel((uv_req_t *)&r->resolving->req);
        r->resolving = NULL;
    }
}

static void connect_tcp(tlsc_redis_t *r, const struct sockaddr *sa)
{
    int err;

    r->state = LINK_CONNECTING;
    if ((err = uv_tcp_init(r->loop, &r->link.tcp)) != 0) {
        link_fail(r, UV_ENOTCONN, "socket: %s", uv_strerror(err));
        return;
    }
    r->link.handle.data = r;
    r->link_open = 1;
    uv_tcp_nodelay(&r->link.tcp, 1);
    uv_tcp_keepalive(&r->link.tcp, 1, 30);
    if ((err = uv_tcp_connect(&r->connect_req, &r->link.tcp, sa, on_connect)) != 0)
        link_fail(r, UV_ENOTCONN, "connect: %s", uv_strerror(err));
}

/* Starts one attempt: a new reader, then a unix socket, a numeric address or a name lookup. */
static void link_start(tlsc_redis_t *r)
{
    struct sockaddr_storage ss;
    struct addrinfo hints;
    resolve_t *rs;
    int err;

    r->state = LINK_CONNECTING;
    uv_timer_start(&r->conn_timer, on_conn_timer, r->connect_timeout_ms, 0);
    if (r->reader != NULL)
        redisReaderFree(r->reader);
    if ((r->reader = redisReaderCreate()) == NULL) {
        link_fail(r, UV_ENOMEM, "out of memory");
        return;
    }
    if (r->url.path != NULL) {
        if ((err = uv_pipe_init(r->loop, &r->link.pipe, 0)) != 0) {
            link_fail(r, UV_ENOTCONN, "socket: %s", uv_strerror(err));
            return;
        }
        r->link.handle.data = r;
        r->link_open = 1;
        uv_pipe_connect(&r->connect_req, &r->link.pipe, r->url.path, on_connect);
        return;
    }
    if (uv_ip4_addr(r->url.host, (int)r->url.port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(r->url.host, (int)r->url.port, (struct sockaddr_in6 *)&ss) == 0) {
        connect_tcp(r, (struct sockaddr *)&ss);
        return;
    }
    r->state = LINK_RESOLVING;
    if ((rs = malloc(sizeof(*rs))) == NULL) {
        link_fail(r, UV_ENOMEM, "out of memory");
        return;
    }
    rs->r = r;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((err = uv_getaddrinfo(r->loop, &rs->req, on_resolved, r->url.host, NULL, &hints)) != 0) {
        free(rs);
        link_fail(r, UV_ENOTCONN, "cannot resolve %s: %s", r->url.host, uv_strerror(err));
        return;
    }
    r->resolving = rs;
}

/* Takes the first IPv4 address, else the first IPv6 one: one address, no happy eyeballs. */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *rs = (resolve_t *)req;
    tlsc_redis_t *r = rs->r;
    const struct addrinfo *ai, *pick = NULL;
    struct sockaddr_storage ss;

    free(rs);
    if (r == NULL) { /* abandoned */
        uv_freeaddrinfo(res);
        return;
    }
    r->resolving = NULL;
    for (ai = status == 0 ? res : NULL; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET && (pick == NULL || pick->ai_family != AF_INET)) ||
            (ai->ai_family == AF_INET6 && pick == NULL))
            pick = ai;
    }
    if (pick == NULL || pick->ai_addrlen > sizeof(ss)) {
        uv_freeaddrinfo(res);
        link_fail(r, UV_ENOTCONN, "cannot resolve %s: %s", r->url.host, status != 0 ? uv_strerror(status) : "no address");
        return;
    }
    memcpy(&ss, pick->ai_addr, pick->ai_addrlen);
    uv_freeaddrinfo(res);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)r->url.port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)r->url.port);
    connect_tcp(r, (struct sockaddr *)&ss);
}

static tlsc_redis_req_t *enqueue_internal(tlsc_redis_t *r, int argc, const char *const *argv, tlsc_redis_cb cb)
{
    tlsc_redis_req_t *req;
    int status;

    req = enqueue(r, 1, &argc, &argv, NULL, r->connect_timeout_ms, cb, r, &status);
    if (req != NULL) {
        req->internal = 1;
        r->handshake_left++;
    }
    return req;
}

/*
 * Connected: AUTH and SELECT as the URL asks, or a PING, so that "ready" always means Redis
 * answered on this link (a paused Redis still completes TCP handshakes from its backlog).
 */
static void on_connect(uv_connect_t *req, int status)
{
    tlsc_redis_t *r = req->handle->data;
    char db[16];
    int ok = 1;

    if (status == UV_ECANCELED || r->state != LINK_CONNECTING)
        return;
    if (status < 0) {
        link_fail(r, UV_ENOTCONN, "%s", uv_strerror(status));
        return;
    }
    uv_timer_stop(&r->conn_timer);
    if ((status = uv_read_start(&r->link.stream, on_alloc, on_read)) != 0) {
        link_fail(r, UV_ENOTCONN, "read: %s", uv_strerror(status));
        return;
    }
    r->state = LINK_HANDSHAKE;
    r->handshake_left = 0;
    if (r->url.password != NULL) {
        const char *auth[] = {"AUTH", r->url.user, r->url.password};

        if (r->url.user != NULL)
            ok = enqueue_internal(r, 3, auth, on_auth_reply) != NULL;
        else
            ok = enqueue_internal(r, 2, (const char *const[]){"AUTH", r->url.password}, on_auth_reply) != NULL;
    }
    if (ok && r->url.db != 0) {
        snprintf(db, sizeof(db), "%u", r->url.db);
        ok = enqueue_internal(r, 2, (const char *const[]){"SELECT", db}, on_select_reply) != NULL;
    }
    if (ok && r->handshake_left == 0)
        ok = enqueue_internal(r, 1, (const char *const[]){"PING"}, on_ping_reply) != NULL;
    if (!ok)
        link_fail(r, UV_ENOMEM, "out of memory");
}

/* Backoff over: try again. During an attempt: it took longer than connect_timeout_ms. */
static void on_conn_timer(uv_timer_t *t)
{
    tlsc_redis_t *r = t->data;

    if (r->state == LINK_DOWN)
        link_start(r);
    else if (r->state == LINK_RESOLVING || r->state == LINK_CONNECTING)
        link_fail(r, UV_ETIMEDOUT, "connect timed out after %u ms", r->connect_timeout_ms);
}

static void become_ready(tlsc_redis_t *r)
{
    r->state = LINK_READY;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->last_reason[0] != '\0' && r->failed_attempts > 0)
        tlsc_log_info("redis %s: connected again after %u failed attempt%s", r->desc, r->failed_attempts,
                      r->failed_attempts == 1 ? "" : "s");
    else if (r->last_reason[0] != '\0')
        tlsc_log_info("redis %s: connected again", r->desc);
    else
        tlsc_log_info("redis %s: connected", r->desc);
    r->last_reason[0] = '\0';
    r->failed_attempts = 0;
}

/* A handshake reply: an error reply (wrong password, no such db) fails the attempt. */
static void handshake_reply(tlsc_redis_t *r, int status, const redisReply *reply, const char *what)
{
    char text[120];

    if (status < 0 || r->state != LINK_HANDSHAKE)
        return; /* timeouts and lost links are handled where they happen */
    if (reply->type == REDIS_REPLY_ERROR) {
        link_fail(r, UV_ENOTCONN, "%s failed: %s", what, printable(text, sizeof(text), reply->str, reply->len));
        return;
    }
    if (--r->handshake_left == 0)
        become_ready(r);
}

static void on_auth_reply(int status, const redisReply *reply, void *data)
{
    handshake_reply(data, status, reply, "AUTH");
}

static void on_select_reply(int status, const redisReply *reply, void *data)
{
    handshake_reply(data, status, reply, "SELECT");
}

static void on_ping_reply(int status, const redisReply *reply, void *data)
{
    handshake_reply(data, status, reply, "PING");
}

/* ================================ writing ================================ */

static void on_flush(uv_prepare_t *p)
{
    tlsc_redis_t *r = p->data;
    uv_buf_t b;
    buf_t tmp;
    int n;

    uv_prepare_stop(p);
    r->flush_scheduled = 0;
    if (r->writing || r->out.len == 0 || (r->state != LINK_HANDSHAKE && r->state != LINK_READY))
        return;
    /* Most batches fit the socket buffer: write them now and skip uv_write's callback. */
    b = uv_buf_init(r->out.base, (unsigned)r->out.len);
    n = uv_try_write(&r->link.stream, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        link_fail(r, UV_ENOTCONN, "write: %s", uv_strerror(n));
        return;
    }
    if ((size_t)n == r->out.len) {
        buf_drained(&r->out);
        return;
    }
    /* The rest goes to uv_write from wbuf; new commands pile up in the other buffer. */
    tmp = r->wbuf;
    r->wbuf = r->out;
    r->out = tmp;
    r->out.len = 0;
    b = uv_buf_init(r->wbuf.base + n, (unsigned)(r->wbuf.len - (size_t)n));
    r->write_req.data = r;
    if ((n = uv_write(&r->write_req, &r->link.stream, &b, 1, on_write)) != 0) {
        r->wbuf.len = 0;
        link_fail(r, UV_ENOTCONN, "write: %s", uv_strerror(n));
        return;
    }
    r->writing = 1;
}

static void on_write(uv_write_t *req, int status)
{
    tlsc_redis_t *r = req->data;

    r->writing = 0;
    buf_drained(&r->wbuf);
    if (status == UV_ECANCELED)
        return; /* the link is closing */
    if (status < 0) {
        link_fail(r, UV_ENOTCONN, "write: %s", uv_strerror(status));
        return;
    }
    if (r->out.len > 0)
        schedule_flush(r);
}

/* ================================ reading ================================ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tlsc_redis_t *r = h->data;

    *buf = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

/* The FIFO head owns the reply; its callback runs after its last reply. */
static void on_reply(tlsc_redis_t *r, redisReply *reply)
{
    tlsc_redis_req_t *req = r->head;
    tlsc_redis_cb cb;

    if (req == NULL) {
        freeReplyObject(reply);
        link_fail(r, UV_EPROTO, "a reply with no request pending");
        return;
    }
    if (--req->replies_left > 0) {
        freeReplyObject(reply);
        return;
    }
    if ((r->head = req->next) == NULL) {
        r->tail = NULL;
        r->timer_due = 0;
        uv_timer_stop(&r->timer);
    }
    r->inflight--;
    cb = req->cb;
    req->cb = NULL;
    if (cb != NULL)
        cb(0, reply, req->data);
    freeReplyObject(reply);
    req_release(r, req);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_redis_t *r = s->data;
    char text[120];

    if (nread == 0)
        return;
    if (nread < 0) {
        link_fail(r, UV_ENOTCONN, "%s", nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (redisReaderFeed(r->reader, buf->base, (size_t)nread) != REDIS_OK) {
        link_fail(r, UV_EPROTO, "reader: %s", printable(text, sizeof(text), r->reader->errstr, strlen(r->reader->errstr)));
        return;
    }
    /* Each pass consumes bytes just fed, so the loop ends with the input. */
    for (;;) {
        void *reply = NULL;

        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
            link_fail(r, UV_EPROTO, "protocol error: %s",
                      printable(text, sizeof(text), r->reader->errstr, strlen(r->reader->errstr)));
            return;
        }
        if (reply == NULL)
            break;
        on_reply(r, reply);
        if (r->closing || (r->state != LINK_HANDSHAKE && r->state != LINK_READY))
            return; /* a callback closed the client, or the reply failed the link */
    }
    if (r->reader->len - r->reader->pos > REPLY_MAX_BYTES)
        link_fail(r, UV_EPROTO, "a reply larger than %zu bytes", REPLY_MAX_BYTES);
}

/* ================================ deadlines and stalls ================================ */

/*
 * Fails every live request whose deadline passed (in FIFO order; each stays queued as a
 * zombie), then closes a link whose oldest pending reply is stall_ms overdue, else rearms
 * for the next deadline. A handshake reply that is late fails the attempt.
 */
/*
 * libuv runs timers before it polls for I/O, so after a busy loop iteration a deadline can
 * pass while its reply already sits in the socket. Read what is there first: a request only
 * times out when Redis really has not answered.
 */
static void read_ready_replies(tlsc_redis_t *r)
{
    uv_os_fd_t fd;

    if (!r->link_open || (r->state != LINK_HANDSHAKE && r->state != LINK_READY) || uv_fileno(&r->link.handle, &fd) != 0)
        return;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, r->rbuf, sizeof(r->rbuf), MSG_DONTWAIT);
        link_state_t before = r->state;

        if (n <= 0)
            return; /* nothing more, or EOF/error: libuv's read path reports those */
        uv_buf_t buf = uv_buf_init(r->rbuf, (unsigned int)n);
        on_read(&r->link.stream, n, &buf);
        if (r->closing || r->state != before || (size_t)n < sizeof(r->rbuf))
            return;
    }
}

static void on_timer(uv_timer_t *t)
{
    tlsc_redis_t *r = t->data;
    uint64_t now, next = UINT64_MAX, stall_due;

    read_ready_replies(r);
    if (r->closing)
        return;
    now = uv_now(r->loop);
    r->timer_due = 0;
    for (tlsc_redis_req_t *req = r->head; req != NULL; req = req->next) {
        tlsc_redis_cb cb = req->cb;

        if (cb == NULL)
            continue;
        if (req->deadline > now) {
            if (req->deadline < next)
                next = req->deadline;
            continue;
        }
        if (req->internal) {
            link_fail(r, UV_ETIMEDOUT, "no reply to the handshake within %u ms", r->connect_timeout_ms);
            return;
        }
        req->cb = NULL;
        cb(UV_ETIMEDOUT, NULL, req->data);
        if (r->closing)
            return;
    }
    if (r->head == NULL)
        return;
    stall_due = r->head->deadline + r->stall_ms;
    if (now >= stall_due) {
        link_fail(r, UV_ETIMEDOUT, "stalled: a reply is %u ms overdue", (unsigned)(now - r->head->deadline));
        return;
    }
    arm_timer(r, next < stall_due ? next : stall_due);
}

/* ================================ failing and closing ================================ */

/*
 * Every failure of an attempt or a link ends here: log it if it is news, close the stream,
 * fail the queued requests, and let on_link_closed (or the backoff timer) try again.
 */
static void link_fail(tlsc_redis_t *r, int status, const char *fmt, ...)
{
    char reason[sizeof(r->last_reason)];
    link_state_t was = r->state;
    va_list ap;

    if (r->closing || was == LINK_DOWN || was == LINK_CLOSING)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (was == LINK_READY) {
        tlsc_log_warn("redis %s: connection lost: %s", r->desc, reason);
        snprintf(r->last_reason, sizeof(r->last_reason), "%s", reason);
    } else {
        r->failed_attempts++;
        if (strcmp(reason, r->last_reason) != 0) {
            tlsc_log_warn("redis %s: cannot connect: %s; retrying with backoff", r->desc, reason);
            snprintf(r->last_reason, sizeof(r->last_reason), "%s", reason);
        } else {
            tlsc_log_debug("redis %s: attempt %u failed: %s", r->desc, r->failed_attempts, reason);
        }
    }
    uv_timer_stop(&r->conn_timer);
    abandon_resolve(r);
    r->out.len = 0;
    r->handshake_left = 0;
    if (r->link_open) {
        r->state = LINK_CLOSING;
        uv_close(&r->link.handle, on_link_closed);
    } else {
        schedule_backoff(r);
    }
    fail_all(r, status);
}

static void destroy(tlsc_redis_t *r)
{
    tlsc_redis_req_t *req, *next;

    for (req = r->head; req != NULL; req = next) {
        next = req->next;
        free(req);
    }
    for (req = r->free_reqs; req != NULL; req = next) {
        next = req->next;
        free(req);
    }
    if (r->reader != NULL)
        redisReaderFree(r->reader);
    buf_free(&r->out);
    buf_free(&r->wbuf);
    tlsc_redis_url_free(&r->url);
    free(r);
}

static void on_closed(uv_handle_t *h)
{
    tlsc_redis_t *r = h->data;

    if (--r->pending_closes == 0)
        destroy(r);
}

static void on_link_closed(uv_handle_t *h)
{
    tlsc_redis_t *r = h->data;

    r->link_open = 0;
    if (r->closing)
        on_closed(h);
    else
        schedule_backoff(r);
}

/* ================================ API ================================ */

static int copy_field(char **dst, const char *src)
{
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst != NULL ? 0 : -1;
}

int tlsc_redis_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_redis_t **out, char *err, size_t errlen)
{
    tlsc_redis_t *r;

    *out = NULL;
    if (o == NULL || o->url == NULL || (o->url->host == NULL && o->url->path == NULL)) {
        snprintf(err, errlen, "redis: no host or socket path to connect to");
        return UV_EINVAL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        goto fail;
    if (copy_field(&r->url.host, o->url->host) != 0 || copy_field(&r->url.path, o->url->path) != 0 ||
        copy_field(&r->url.user, o->url->user) != 0 || copy_field(&r->url.password, o->url->password) != 0)
        goto fail_url;
    r->url.port = o->url->port;
    r->url.db = o->url->db;
    tlsc_redis_url_describe(&r->url, r->desc, sizeof(r->desc));
    r->loop = loop;
    r->connect_timeout_ms = o->connect_timeout_ms != 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->max_inflight = o->max_inflight != 0 ? o->max_inflight : DEFAULT_MAX_INFLIGHT;
    r->stall_ms = o->stall_ms != 0 ? o->stall_ms : DEFAULT_STALL_MS;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &r->timer);
    uv_timer_init(loop, &r->conn_timer);
    uv_prepare_init(loop, &r->flusher);
    r->timer.data = r->conn_timer.data = r->flusher.data = r;
    link_start(r);
    *out = r;
    return 0;

fail_url:
    tlsc_redis_url_free(&r->url);
    free(r);
fail:
    snprintf(err, errlen, "redis: out of memory");
    return UV_ENOMEM;
}

tlsc_redis_req_t *tlsc_redis_send(tlsc_redis_t *r, size_t ncmds, const int *argc, const char *const *const *argv,
                                  const size_t *const *argvlen, unsigned timeout_ms, tlsc_redis_cb cb, void *data, int *status_out)
{
    tlsc_redis_req_t *req = NULL;
    int status;

    if (r->closing || r->state != LINK_READY)
        status = UV_ENOTCONN;
    else if (r->head != NULL && r->head->deadline <= uv_now(r->loop))
        status = UV_EAGAIN; /* the oldest reply is overdue: Redis is paused or slow */
    else if (r->inflight >= r->max_inflight || r->out.len > UNWRITTEN_MAX_BYTES)
        status = UV_ENOBUFS;
    else if (cb == NULL)
        status = UV_EINVAL;
    else
        req = enqueue(r, ncmds, argc, argv, argvlen, timeout_ms, cb, data, &status);
    if (status_out != NULL)
        *status_out = req != NULL ? 0 : status;
    return req;
}

tlsc_redis_req_t *tlsc_redis_command(tlsc_redis_t *r, int argc, const char *const *argv, const size_t *argvlen, unsigned timeout_ms,
                                     tlsc_redis_cb cb, void *data, int *status_out)
{
    return tlsc_redis_send(r, 1, &argc, &argv, &argvlen, timeout_ms, cb, data, status_out);
}

void tlsc_redis_cancel(tlsc_redis_req_t *req)
{
    if (req != NULL)
        req->cb = NULL;
}

int tlsc_redis_ready(const tlsc_redis_t *r)
{
    return r != NULL && !r->closing && r->state == LINK_READY && (r->head == NULL || r->head->deadline > uv_now(r->loop));
}

void tlsc_redis_close(tlsc_redis_t *r)
{
    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    for (tlsc_redis_req_t *req = r->head; req != NULL; req = req->next)
        req->cb = NULL;
    abandon_resolve(r);
    r->pending_closes = 3;
    uv_close((uv_handle_t *)&r->timer, on_closed);
    uv_close((uv_handle_t *)&r->conn_timer, on_closed);
    uv_close((uv_handle_t *)&r->flusher, on_closed);
    if (r->link_open) {
        r->pending_closes++;
        if (!uv_is_closing(&r->link.handle))
            uv_close(&r->link.handle, on_link_closed);
    }
}
