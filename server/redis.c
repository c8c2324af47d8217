/* This file's one job: a pipelined Redis client on a libuv loop that owns its timeouts. */
#include "redis.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dial.h"
#include "log.h"
#include "sentinel.h"
#include "util.h"

/*
 * One connection (kept up by a tlsc_dial_t), one FIFO of requests, one timer, one prepare
 * handle:
 *
 *   DIALING --on_dial_connect--> HANDSHAKE --> READY
 *     ^                                          |
 *     +---- link_fail (error, EOF, garbage, stall, an error reply to the handshake)
 *
 * The dial resolves, connects, backs off and logs the link's state changes; link_fail hands
 * it the reason, and whether retrying can help before an operator fixes the URL.
 *
 * Every request, the handshake's AUTH / SELECT / PING included, sits in the FIFO until its
 * last reply has been read, even after it timed out or was cancelled: Redis answers in
 * order, so the FIFO head always owns the next reply. A request that gave up is a zombie
 * whose callback is NULL; its replies are read and dropped.
 *
 * `timer` fires at the earliest deadline of a live request, or when the oldest pending reply
 * becomes stall_ms overdue, whichever is first; it is moved only when a new request has an
 * earlier deadline, so a steady stream of requests with one timeout costs no timer work.
 * `flusher` (a uv_prepare) writes everything requested during one loop iteration with one
 * write just before the loop polls again, so a burst of handshakes costs one syscall.
 */

#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define DEFAULT_MAX_INFLIGHT       1024
#define DEFAULT_STALL_MS           1000
#define DEFAULT_TIMEOUT_MS         1000
#define BACKOFF_MIN_MS             50
#define BACKOFF_MAX_MS             2000
#define DEFAULT_PERMANENT_MS       5000 /* after WRONGPASS, NOPERM, a bad db: an operator has to act */
#define READ_BUF_SIZE              (64 * 1024)
#define REPLY_MAX_BYTES            ((size_t)8 << 20) /* an unfinished reply larger than this is garbage */
#define REPLY_MAX_ARRAY            1024              /* elements one array of a reply may announce */
#define REPLY_MAX_ELEMENTS         16384             /* values one reply may hold, nested ones included */
#define REPLY_MAX_DEPTH            4                 /* arrays in arrays: CLUSTER SHARDS, the deepest we ask for, has 4 */
#define REQUEST_MAX_BYTES          ((size_t)64 << 20)
#define REQUEST_MAX_CMDS           4096
#define UNWRITTEN_MAX_BYTES        ((size_t)256 << 20) /* past this, new requests get UV_ENOBUFS */
#define BUF_KEEP                   ((size_t)256 << 10) /* larger write buffers are freed once drained */

typedef enum {
    LINK_DIALING,   /* no stream: the dial resolves, connects or backs off */
    LINK_TLS,       /* rediss://: the TLS handshake runs on the stream */
    LINK_HANDSHAKE, /* AUTH / SELECT / PING sent, their replies pending */
    LINK_READY,
} link_state_t;

struct tlsc_redis_req_s {
    tlsc_redis_req_t *next; /* FIFO order, or the free list */
    tlsc_redis_cb cb;       /* NULL once delivered, timed out or cancelled: a zombie */
    void *data;
    uint64_t deadline; /* loop time, ms */
    unsigned replies_left;
    int internal;      /* part of the handshake: never failed to a user */
    redisReply *cause; /* the first error reply before the last one (MOVED before EXECABORT), or NULL */
};

typedef struct {
    char *base;
    size_t len, cap;
} buf_t;

struct tlsc_redis_s {
    uv_loop_t *loop;
    tlsc_redis_url_t url;
    char desc[300]; /* the URL without credentials, for logs */
    unsigned connect_timeout_ms, max_inflight, stall_ms, permanent_backoff_ms;

    link_state_t state;
    uint64_t connects; /* times the link became ready */
    uint64_t requests; /* requests queued (one or more commands each), the handshake's included */
    uint64_t commands; /* their commands */
    uint64_t writes;   /* writes to the socket begun (uv_try_write, uv_write), one per flush or two */
    int closing;       /* tlsc_redis_close began */
    unsigned pending_closes;
    tlsc_dial_t *dial;
    uv_stream_t *stream; /* the dial's, from on_dial_connect until link_fail */
    redisReader *reader; /* a new one per connection, bounded (tlsc_redis_reader_new) */

    uv_timer_t timer;
    uint64_t timer_due; /* 0 when stopped */
    uv_prepare_t flusher;
    int flush_scheduled;

    unsigned handshake_left;

    buf_t out;  /* commands not yet written */
    buf_t wbuf; /* the bytes of the uv_write in flight */
    uv_write_t write_req;
    int writing;

    tlsc_redis_req_t *head, *tail, *free_reqs;
    unsigned inflight;
    char rbuf[READ_BUF_SIZE];

    /* rediss://: OpenSSL on memory BIOs; the stream carries what wbio holds, rbio gets what it reads. */
    SSL_CTX *tls_ctx; /* NULL for redis:// and unix: */
    SSL *ssl;         /* one per connection */
    BIO *rbio, *wbio; /* the SSL's */
    uint64_t tls_deadline;
    char pbuf[16384]; /* plaintext out of SSL_read */

    /* redis-sentinel://: the sentinels say where the master is; the dial asks at every attempt. */
    tlsc_sentinel_t *sentinel;
    char *tls_name;      /* the name the certificate must show when not url.host (options' tls_name), or NULL */
    char *tls_name_from; /* where it came from, for logs, or NULL */
    char at_host[256];   /* the master the current attempt went to */
    unsigned at_port;
    int located;            /* the last attempt had an address to go to */
    uint64_t failures_seen; /* the dial's failures when it last asked */
};

static void on_dial_connect(tlsc_dial_t *d, uv_stream_t *stream, void *data);
static void on_auth_reply(int status, const redisReply *reply, void *data);
static void on_select_reply(int status, const redisReply *reply, void *data);
static void on_ping_reply(int status, const redisReply *reply, void *data);
static void on_flush(uv_prepare_t *p);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void link_fail(tlsc_redis_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void link_down(tlsc_redis_t *r, int status, tlsc_dial_fault_t fault, const char *reason);
static void on_closed(uv_handle_t *h);
static void on_dial_closed(void *data);
static void start_handshake(tlsc_redis_t *r);
static void read_plain(tlsc_redis_t *r, const char *data, size_t len);
static void tls_start(tlsc_redis_t *r);
static void on_role_reply(int status, const redisReply *reply, void *data);

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
    if (req->cause != NULL)
        freeReplyObject(req->cause);
    req->cause = NULL;
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
    r->requests++;
    r->commands += ncmds;
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
 * hiredis allocates what a reply announces before it arrives: "*2000000000" alone would make
 * it allocate 16 GB. Every value it creates goes through these wrappers first, which refuse an
 * array past REPLY_MAX_ARRAY elements or nested past REPLY_MAX_DEPTH arrays, and a reply past
 * REPLY_MAX_ELEMENTS values or REPLY_MAX_BYTES of strings; hiredis then reports an error and
 * the link fails (UV_EPROTO). The depth is ours to bound: hiredis 1.x grows its task stack
 * for as deep a reply as the peer sends.
 */
struct reply_bounds {
    size_t elements, bytes; /* what the reply being parsed holds so far */
    int refused;            /* it went past a bound */
};

static redisReplyObjectFunctions bounded_fn, hiredis_fn;

static int bound(const redisReadTask *task, size_t elements, size_t bytes)
{
    struct reply_bounds *b = task->privdata;

    b->elements += elements;
    b->bytes += bytes;
    if (b->elements <= REPLY_MAX_ELEMENTS && b->bytes <= REPLY_MAX_BYTES)
        return 1;
    b->refused = 1;
    return 0;
}

/* How many arrays hold this one (0 at the top); stops counting past the bound. */
static int nesting(const redisReadTask *task)
{
    int depth = 0;

    for (const redisReadTask *t = task->parent; t != NULL && depth <= REPLY_MAX_DEPTH; t = t->parent)
        depth++;
    return depth;
}

static void *bounded_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > REPLY_MAX_ARRAY || nesting(task) >= REPLY_MAX_DEPTH) {
        ((struct reply_bounds *)task->privdata)->refused = 1;
        return NULL;
    }
    return bound(task, (size_t)elements + 1, 0) ? hiredis_fn.createArray(task, elements) : NULL;
}

static void *bounded_string(const redisReadTask *task, char *str, size_t len)
{
    return bound(task, 1, len) ? hiredis_fn.createString(task, str, len) : NULL;
}

static void *bounded_integer(const redisReadTask *task, long long value)
{
    return bound(task, 1, 0) ? hiredis_fn.createInteger(task, value) : NULL;
}

static void *bounded_nil(const redisReadTask *task)
{
    return bound(task, 1, 0) ? hiredis_fn.createNil(task) : NULL;
}

redisReader *tlsc_redis_reader_new(void)
{
    redisReader *reader = redisReaderCreate();
    struct reply_bounds *b = calloc(1, sizeof(*b));

    if (reader == NULL || b == NULL) {
        if (reader != NULL)
            redisReaderFree(reader);
        free(b);
        return NULL;
    }
    if (bounded_fn.createArray == NULL) { /* once: hiredis's own table, wrapped */
        hiredis_fn = *reader->fn;
        bounded_fn = hiredis_fn;
        bounded_fn.createArray = bounded_array;
        bounded_fn.createString = bounded_string;
        bounded_fn.createInteger = bounded_integer;
        bounded_fn.createNil = bounded_nil;
    }
    reader->fn = &bounded_fn;
    reader->privdata = b;
    return reader;
}

void tlsc_redis_reader_next(redisReader *reader)
{
    memset(reader->privdata, 0, sizeof(struct reply_bounds));
}

int tlsc_redis_reader_refused(const redisReader *reader)
{
    return ((const struct reply_bounds *)reader->privdata)->refused;
}

void tlsc_redis_reader_free(redisReader *reader)
{
    if (reader == NULL)
        return;
    free(reader->privdata);
    reader->privdata = NULL;
    redisReaderFree(reader);
}

/* ================================ TLS (rediss://) ================================ */

/*
 * The client owns its socket, so TLS runs on memory BIOs: bytes read from the stream go into
 * rbio and come out of SSL_read as plaintext for the reader; the commands a loop iteration
 * made go through one SSL_write into wbio, whose bytes on_flush writes as it writes plain
 * commands. OpenSSL never touches the socket, so libuv stays the only one reading it.
 */

int tlsc_redis_tls_ctx_new(const char *ca_file, const char *cert_file, const char *key_file, SSL_CTX **out, char *err,
                           size_t errlen)
{
    char why[256];
    SSL_CTX *ctx;

    *out = NULL;
    if (ca_file == NULL || (cert_file == NULL) != (key_file == NULL)) {
        snprintf(err, errlen, "--redis-ca is required for rediss://, and --redis-cert and --redis-key go together");
        return UV_EINVAL;
    }
    ERR_clear_error();
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        snprintf(err, errlen, "--redis-ca: %s", tlsc_openssl_reason(why, sizeof(why), "cannot make a TLS context"));
        return UV_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        snprintf(err, errlen, "--redis-ca: cannot load CA certificates from %s: %s", ca_file,
                 tlsc_openssl_reason(why, sizeof(why), "no certificate"));
        goto fail;
    }
    if (cert_file != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errlen, "--redis-cert: cannot load %s: %s", cert_file,
                 tlsc_openssl_reason(why, sizeof(why), "no certificate"));
        goto fail;
    }
    if (key_file != NULL &&
        (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)) {
        snprintf(err, errlen, "--redis-key: cannot use %s with --redis-cert %s: %s", key_file, cert_file,
                 tlsc_openssl_reason(why, sizeof(why), "no key"));
        goto fail;
    }
    *out = ctx;
    return 0;

fail:
    SSL_CTX_free(ctx);
    return UV_EINVAL;
}

static void tls_drop(tlsc_redis_t *r)
{
    if (r->ssl != NULL)
        SSL_free(r->ssl); /* and its BIOs */
    r->ssl = NULL;
    r->rbio = r->wbio = NULL;
}

int tlsc_redis_tls_expect_host(SSL *ssl, const char *host)
{
    struct in6_addr a6;
    int ip = inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1;

    if (ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
    return SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1 ? 0 : -1;
}

int tlsc_redis_tls_failure(SSL *ssl, const char *peer, const char *name, const char *from, char *out, size_t outlen)
{
    char why[256];
    long v = SSL_get_verify_result(ssl);

    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        ERR_clear_error();
        snprintf(out, outlen, "TLS handshake failed: %s certificate does not name %s (%s)", peer, name, from);
        return 1;
    }
    if (v != X509_V_OK) {
        ERR_clear_error();
        snprintf(out, outlen, "TLS handshake failed: %s certificate: %s (is --redis-ca the CA that signed it?)", peer,
                 X509_verify_cert_error_string(v));
        return 1;
    }
    snprintf(out, outlen, "TLS handshake failed: %s", tlsc_openssl_reason(why, sizeof(why), "the peer closed or sent garbage"));
    return 0;
}

SSL *tlsc_redis_tls_new(SSL_CTX *ctx, const char *name)
{
    BIO *rbio = NULL, *wbio = NULL;
    SSL *ssl;

    ERR_clear_error();
    if ((ssl = SSL_new(ctx)) == NULL)
        return NULL;
    if ((rbio = BIO_new(BIO_s_mem())) == NULL || (wbio = BIO_new(BIO_s_mem())) == NULL)
        goto fail;
    SSL_set_bio(ssl, rbio, wbio); /* the SSL owns them now */
    rbio = wbio = NULL;
    SSL_set_connect_state(ssl);
    if (tlsc_redis_tls_expect_host(ssl, name) != 0)
        goto fail;
    return ssl;

fail:
    BIO_free(rbio);
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

/* The name the certificate must show: the cluster map's, the master the sentinels named, or the host in --redis. */
static const char *verify_name(const tlsc_redis_t *r)
{
    return r->tls_name != NULL ? r->tls_name : r->sentinel != NULL ? r->at_host : r->url.host;
}

/*
 * Why the TLS handshake failed, for the log line. A certificate Redis shows that --redis-ca
 * does not vouch for, or that names another host, is for an operator to fix: permanent.
 */
static void tls_handshake_failed(tlsc_redis_t *r)
{
    char reason[400];
    const char *from = r->tls_name_from != NULL ? r->tls_name_from
                       : r->sentinel != NULL    ? "the address the sentinels named"
                                                : "the host in --redis";

    if (tlsc_redis_tls_failure(r->ssl, "Redis's", verify_name(r), from, reason, sizeof(reason)))
        link_down(r, UV_ENOTCONN, TLSC_DIAL_PERMANENT, reason);
    else
        link_fail(r, UV_ENOTCONN, "%s", reason);
}

/* A new connection: an SSL on memory BIOs, the ClientHello on its way, a deadline. */
static void tls_start(tlsc_redis_t *r)
{
    tls_drop(r);
    r->state = LINK_TLS;
    if ((r->ssl = tlsc_redis_tls_new(r->tls_ctx, verify_name(r))) == NULL) {
        link_fail(r, UV_ENOMEM, "cannot start TLS (out of memory, or a name that cannot be verified)");
        return;
    }
    r->rbio = SSL_get_rbio(r->ssl);
    r->wbio = SSL_get_wbio(r->ssl);
    r->tls_deadline = uv_now(r->loop) + r->connect_timeout_ms;
    arm_timer(r, r->tls_deadline);
    if (SSL_do_handshake(r->ssl) != 1 && SSL_get_error(r->ssl, -1) != SSL_ERROR_WANT_READ) {
        tls_handshake_failed(r);
        return;
    }
    schedule_flush(r); /* the ClientHello */
}

/* Ciphertext from the stream: the handshake goes on, or plaintext goes to the reader. */
static void tls_read(tlsc_redis_t *r, const char *data, size_t len)
{
    char why[256];
    int n;

    if (BIO_write(r->rbio, data, (int)len) != (int)len) {
        link_fail(r, UV_ENOMEM, "out of memory");
        return;
    }
    if (r->state == LINK_TLS) {
        ERR_clear_error();
        if ((n = SSL_do_handshake(r->ssl)) != 1) {
            if (SSL_get_error(r->ssl, n) == SSL_ERROR_WANT_READ)
                schedule_flush(r);
            else
                tls_handshake_failed(r);
            return;
        }
        schedule_flush(r); /* the Finished */
        start_handshake(r);
        if (r->state != LINK_HANDSHAKE)
            return;
    }
    for (;;) {
        link_state_t before = r->state;

        ERR_clear_error();
        n = SSL_read(r->ssl, r->pbuf, sizeof(r->pbuf));
        if (n <= 0) {
            int e = SSL_get_error(r->ssl, n);

            if (e == SSL_ERROR_WANT_READ)
                break;
            if (e == SSL_ERROR_ZERO_RETURN)
                link_fail(r, UV_ENOTCONN, "closed by the server (TLS close_notify)");
            else
                link_fail(r, UV_EPROTO, "TLS: %s", tlsc_openssl_reason(why, sizeof(why), "a record that does not decrypt"));
            return;
        }
        read_plain(r, r->pbuf, (size_t)n);
        if (r->closing || r->state != before)
            return;
    }
    if (BIO_ctrl_pending(r->wbio) > 0)
        schedule_flush(r); /* e.g. a KeyUpdate answer */
}

/* Before a write: the plaintext in `out` goes through SSL_write, and `out` gets wbio's bytes. */
static int tls_seal(tlsc_redis_t *r)
{
    size_t pending;

    if (r->out.len > 0 && r->state != LINK_TLS) {
        ERR_clear_error();
        if (SSL_write(r->ssl, r->out.base, (int)r->out.len) != (int)r->out.len)
            return -1;                            /* a memory BIO takes everything, unless memory runs out */
        OPENSSL_cleanse(r->out.base, r->out.len); /* it may hold an AUTH password */
        r->out.len = 0;
    } else if (r->state == LINK_TLS) {
        r->out.len = 0; /* nothing is sent in the clear before the handshake is over */
    }
    if ((pending = BIO_ctrl_pending(r->wbio)) == 0)
        return 0;
    if (buf_reserve(&r->out, pending) != 0 || BIO_read(r->wbio, r->out.base + r->out.len, (int)pending) != (int)pending)
        return -1;
    r->out.len += pending;
    return 0;
}

/*
 * Connected: AUTH and SELECT as the URL asks, or a PING, so that "ready" always means Redis
 * answered on this link (a paused Redis still completes TCP handshakes from its backlog).
 */
/* The stream (or the TLS on it) is up: AUTH and SELECT as the URL asks, or a PING. */
static void start_handshake(tlsc_redis_t *r)
{
    char db[16];
    int ok = 1;

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
    if (ok && r->sentinel != NULL) /* the sentinels may lag: the node itself must say it is the master */
        ok = enqueue_internal(r, 1, (const char *const[]){"ROLE"}, on_role_reply) != NULL;
    if (ok && r->handshake_left == 0)
        ok = enqueue_internal(r, 1, (const char *const[]){"PING"}, on_ping_reply) != NULL;
    if (!ok)
        link_fail(r, UV_ENOMEM, "out of memory");
}

static void on_dial_connect(tlsc_dial_t *d, uv_stream_t *stream, void *data)
{
    tlsc_redis_t *r = data;
    int err;

    r->stream = stream;
    stream->data = r;
    r->state = LINK_HANDSHAKE;
    if (r->reader != NULL)
        tlsc_redis_reader_free(r->reader);
    if ((r->reader = tlsc_redis_reader_new()) == NULL) {
        link_fail(r, UV_ENOTCONN, "out of memory");
        return;
    }
    if ((err = uv_read_start(stream, on_alloc, on_read)) != 0) {
        link_fail(r, UV_ENOTCONN, "read: %s", uv_strerror(err));
        return;
    }
    if (r->tls_ctx != NULL)
        tls_start(r);
    else
        start_handshake(r);
}

static void become_ready(tlsc_redis_t *r)
{
    r->state = LINK_READY;
    r->connects++;
    tlsc_dial_up(r->dial); /* logs "connected" or "connected again" */
}

/*
 * What an operator has to fix when Redis refuses the handshake for good, or NULL when the
 * error may pass by itself (e.g. LOADING while Redis reads its dump).
 */
const char *tlsc_redis_error_hint(const char *reply, size_t len)
{
    static const struct {
        const char *prefix, *hint;
    } hints[] = {
        {"WRONGPASS", "check the user in --redis and the password (--redis-pass-file, TLSCACHE_REDIS_PASS or the URL)"},
        {"ERR invalid password", "check the password (--redis-pass-file, TLSCACHE_REDIS_PASS or the --redis URL)"},
        {"ERR invalid username-password pair",
         "check the user in --redis and the password (--redis-pass-file, TLSCACHE_REDIS_PASS or the URL)"},
        {"NOAUTH", "Redis requires a password: give it with --redis-pass-file or TLSCACHE_REDIS_PASS"},
        {"ERR AUTH <password> called without any password configured",
         "this Redis has no password for the default user: give no password, or name a user in --redis"},
        {"ERR Client sent AUTH, but no password is set",
         "this Redis has no password: drop --redis-pass-file, TLSCACHE_REDIS_PASS or the password in --redis"},
        {"NOPERM", "the --redis user lacks a permission for this command: fix the user's ACL in Redis, or use another user"},
        {"ERR DB index is out of range", "the db in --redis (redis://host:port/N) is beyond this Redis's `databases` setting"},
        {"ERR invalid DB index", "the db in --redis (redis://host:port/N) is not a database this Redis has"},
        {"ERR SELECT is not allowed in cluster mode", "this Redis is a cluster node: use db 0 in --redis"},
    };

    for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
        size_t n = strlen(hints[i].prefix);

        if (len >= n && strncasecmp(reply, hints[i].prefix, n) == 0)
            return hints[i].hint;
    }
    return NULL;
}

/*
 * A handshake reply: an error reply fails the attempt; a wrong password, a missing
 * permission or a bad db is a configuration error, logged as such and retried slowly.
 */
static void handshake_reply(tlsc_redis_t *r, int status, const redisReply *reply, const char *what)
{
    char text[120], reason[320];
    const char *hint;

    if (status < 0 || r->state != LINK_HANDSHAKE)
        return; /* timeouts and lost links are handled where they happen */
    if (reply->type == REDIS_REPLY_ERROR) {
        printable(text, sizeof(text), reply->str, reply->len);
        for (size_t n = strlen(text); n > 0 && (text[n - 1] == '.' || text[n - 1] == ' '); n--)
            text[n - 1] = '\0'; /* "...disabled." reads badly before our hint */
        if ((hint = tlsc_redis_error_hint(reply->str, reply->len)) != NULL) {
            snprintf(reason, sizeof(reason), "%s refused: %s: %s", what, text, hint);
            link_down(r, UV_ENOTCONN, TLSC_DIAL_PERMANENT, reason);
        } else {
            link_fail(r, UV_ENOTCONN, "%s failed: %s", what, text);
        }
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

/* ================================ Sentinel ================================ */

/*
 * With redis-sentinel:// the dial asks the sentinels (sentinel.c) where to connect at every
 * attempt, the handshake ends with ROLE, and a READONLY reply or a +switch-master ends the link:
 * the next attempt goes where the sentinels say the master is now. When an attempt or a link
 * failed since the last address was given, that address is reported stale first, so a dead
 * master is asked about again rather than retried for ever.
 */
static int locate_master(tlsc_dial_t *d, const char **host, unsigned *port, char *why, size_t whylen, void *data)
{
    tlsc_redis_t *r = data;
    uint64_t failures = tlsc_dial_failures(d);

    if (r->located && failures > r->failures_seen)
        tlsc_sentinel_stale(r->sentinel, "the last attempt failed");
    r->failures_seen = failures;
    r->located = tlsc_sentinel_master(r->sentinel, host, port) == 0;
    if (!r->located) {
        snprintf(why, whylen, "the sentinels have not named the master yet");
        return -1;
    }
    snprintf(r->at_host, sizeof(r->at_host), "%s", *host);
    r->at_port = *port;
    return 0;
}

static int at_master(const tlsc_redis_t *r, const char *host, unsigned port)
{
    return r->located && r->at_port == port && strcmp(r->at_host, host) == 0;
}

/* The sentinels named a master: go there now, unless that is where the link is or just failed. */
static void on_sentinel_master(const char *host, unsigned port, void *data)
{
    tlsc_redis_t *r = data;
    tlsc_dial_options_t dopt = {0};
    char name[320];

    if (r->closing)
        return;
    if (r->dial == NULL) { /* the first answer: start dialling */
        snprintf(name, sizeof(name), "redis %s", r->desc);
        dopt.name = name;
        dopt.locate = locate_master;
        dopt.timeout_ms = r->connect_timeout_ms;
        dopt.backoff_min_ms = BACKOFF_MIN_MS;
        dopt.backoff_max_ms = BACKOFF_MAX_MS;
        dopt.permanent_backoff_ms = r->permanent_backoff_ms;
        dopt.on_connect = on_dial_connect;
        dopt.data = r;
        if (tlsc_dial_new(r->loop, &dopt, &r->dial) != 0)
            tlsc_log_error("redis %s: cannot start connecting: out of memory", r->desc);
        return;
    }
    if (at_master(r, host, port))
        return;
    if (r->state != LINK_DIALING)
        link_fail(r, UV_ENOTCONN, "the sentinels moved the master to %s:%u", host, port);
    else
        tlsc_dial_kick(r->dial);
}

/* ROLE's first element says what the node is; anything but "master" sends us back to the sentinels. */
static void on_role_reply(int status, const redisReply *reply, void *data)
{
    tlsc_redis_t *r = data;
    const redisReply *role;
    char text[32], reason[340];

    if (status < 0 || r->state != LINK_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 && (role = reply->element[0])->type == REDIS_REPLY_STRING &&
        role->len == 6 && memcmp(role->str, "master", 6) == 0) {
        handshake_reply(r, status, reply, "ROLE");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        handshake_reply(r, status, reply, "ROLE");
        return;
    }
    role = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 ? reply->element[0] : NULL;
    snprintf(reason, sizeof(reason), "%s:%u is not the master (ROLE says %s)", r->at_host, r->at_port,
             role != NULL && role->type == REDIS_REPLY_STRING ? printable(text, sizeof(text), role->str, role->len)
                                                              : "something else");
    tlsc_sentinel_stale(r->sentinel, reason);
    link_fail(r, UV_ENOTCONN, "%s; asking the sentinels again", reason);
}

/* A write refused because the node is a replica now (a demoted master). */
static int is_readonly(const redisReply *reply)
{
    static const char what[] = "READONLY You can't write";

    return reply != NULL && reply->type == REDIS_REPLY_ERROR && reply->str != NULL &&
           memmem(reply->str, reply->len, what, sizeof(what) - 1) != NULL;
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
    if (r->writing || (r->state != LINK_TLS && r->state != LINK_HANDSHAKE && r->state != LINK_READY))
        return;
    if (r->ssl != NULL && tls_seal(r) != 0) {
        link_fail(r, UV_ENOMEM, "TLS: cannot encrypt (out of memory)");
        return;
    }
    if (r->out.len == 0)
        return;
    /* Most batches fit the socket buffer: write them now and skip uv_write's callback. */
    b = uv_buf_init(r->out.base, (unsigned)r->out.len);
    r->writes++;
    n = uv_try_write(r->stream, &b, 1);
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
    r->writes++;
    if ((n = uv_write(&r->write_req, r->stream, &b, 1, on_write)) != 0) {
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
    if (status == UV_ECANCELED || r->closing)
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

/* EXEC's answer to a transaction Redis refused to queue: the reason is an earlier reply. */
static int is_execabort(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 9 && memcmp(reply->str, "EXECABORT", 9) == 0;
}

/* The FIFO head owns the reply; its callback runs after its last reply. */
static void deliver(tlsc_redis_t *r, redisReply *reply)
{
    tlsc_redis_req_t *req = r->head;
    tlsc_redis_cb cb;

    if (req == NULL) {
        freeReplyObject(reply);
        link_fail(r, UV_EPROTO, "a reply with no request pending");
        return;
    }
    if (--req->replies_left > 0) {
        if (reply->type == REDIS_REPLY_ERROR && req->cause == NULL && req->cb != NULL)
            req->cause = reply; /* kept: it says why a transaction aborted */
        else
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
        cb(0, req->cause != NULL && is_execabort(reply) ? req->cause : reply, req->data);
    freeReplyObject(reply);
    req_release(r, req);
}

static void on_reply(tlsc_redis_t *r, redisReply *reply)
{
    if (r->sentinel != NULL && is_readonly(reply)) {
        char where[300];

        snprintf(where, sizeof(where), "%s:%u answered READONLY: demoted to a replica", r->at_host, r->at_port);
        deliver(r, reply);
        if (!r->closing && r->state == LINK_READY) {
            tlsc_sentinel_stale(r->sentinel, where);
            link_fail(r, UV_ENOTCONN, "%s; asking the sentinels again", where);
        }
        return;
    }
    deliver(r, reply);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_redis_t *r = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        if (r->state == LINK_TLS)
            link_fail(r, UV_ENOTCONN, "TLS handshake failed: %s (is Redis's TLS port the one in --redis?)",
                      nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        else
            link_fail(r, UV_ENOTCONN, "%s", nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (r->ssl != NULL)
        tls_read(r, buf->base, (size_t)nread);
    else
        read_plain(r, buf->base, (size_t)nread);
}

/* Bytes of RESP: each whole reply goes to the FIFO head. */
static void read_plain(tlsc_redis_t *r, const char *data, size_t len)
{
    char text[120];

    if (redisReaderFeed(r->reader, data, len) != REDIS_OK) {
        link_fail(r, UV_EPROTO, "reader: %s", printable(text, sizeof(text), r->reader->errstr, strlen(r->reader->errstr)));
        return;
    }
    /* Each pass consumes bytes just fed, so the loop ends with the input. */
    for (;;) {
        void *reply = NULL;

        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
            if (tlsc_redis_reader_refused(r->reader))
                link_fail(r, UV_EPROTO,
                          "a reply with an array over %d elements or nested over %d deep, or over %d values or %zu bytes in all",
                          REPLY_MAX_ARRAY, REPLY_MAX_DEPTH, REPLY_MAX_ELEMENTS, REPLY_MAX_BYTES);
            else
                link_fail(r, UV_EPROTO, "protocol error: %s",
                          printable(text, sizeof(text), r->reader->errstr, strlen(r->reader->errstr)));
            return;
        }
        if (reply == NULL)
            break;
        tlsc_redis_reader_next(r->reader); /* the next reply starts from zero */
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

    if (r->stream == NULL || (r->state != LINK_TLS && r->state != LINK_HANDSHAKE && r->state != LINK_READY) ||
        uv_fileno((uv_handle_t *)r->stream, &fd) != 0)
        return;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, r->rbuf, sizeof(r->rbuf), MSG_DONTWAIT);
        link_state_t before = r->state;

        if (n <= 0)
            return; /* nothing more, or EOF/error: libuv's read path reports those */
        uv_buf_t buf = uv_buf_init(r->rbuf, (unsigned int)n);
        on_read(r->stream, n, &buf);
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
    if (r->state == LINK_TLS) {
        if (now >= r->tls_deadline)
            link_fail(r, UV_ETIMEDOUT, "TLS handshake: no answer within %u ms", r->connect_timeout_ms);
        else
            arm_timer(r, r->tls_deadline);
        return;
    }
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
 * Every failure of a connected link ends here: the dial logs the reason if it is news,
 * closes the stream and tries again after its backoff; the queued requests fail.
 */
static void link_down(tlsc_redis_t *r, int status, tlsc_dial_fault_t fault, const char *reason)
{
    if (r->closing || r->state == LINK_DIALING)
        return;
    r->state = LINK_DIALING;
    r->stream = NULL;
    r->out.len = 0;
    r->handshake_left = 0;
    tls_drop(r);
    tlsc_dial_fail(r->dial, fault, "%s", reason);
    fail_all(r, status);
}

static void link_fail(tlsc_redis_t *r, int status, const char *fmt, ...)
{
    char reason[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    link_down(r, status, TLSC_DIAL_TRANSIENT, reason);
}

static void destroy(tlsc_redis_t *r)
{
    tlsc_redis_req_t *req, *next;

    for (req = r->head; req != NULL; req = next) {
        next = req->next;
        if (req->cause != NULL)
            freeReplyObject(req->cause);
        free(req);
    }
    for (req = r->free_reqs; req != NULL; req = next) {
        next = req->next;
        free(req);
    }
    if (r->reader != NULL)
        tlsc_redis_reader_free(r->reader);
    tls_drop(r);
    SSL_CTX_free(r->tls_ctx);
    free(r->tls_name);
    free(r->tls_name_from);
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

static void on_dial_closed(void *data)
{
    tlsc_redis_t *r = data;

    if (--r->pending_closes == 0)
        destroy(r);
}

/* ================================ API ================================ */

int tlsc_redis_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_redis_t **out, char *err, size_t errlen)
{
    tlsc_dial_options_t dopt = {0};
    char name[320];
    tlsc_redis_t *r;

    *out = NULL;
    if (o == NULL || o->url == NULL || (o->url->host == NULL && o->url->path == NULL && o->url->master_name == NULL)) {
        snprintf(err, errlen, "redis: no host or socket path to connect to");
        return UV_EINVAL;
    }
    if (o->url->user != NULL && o->url->password == NULL) {
        snprintf(err, errlen, "redis: a user name without a password");
        return UV_EINVAL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        goto fail;
    if (tlsc_redis_url_copy(&r->url, o->url) != 0)
        goto fail_url;
    if ((o->tls_name != NULL && (r->tls_name = strdup(o->tls_name)) == NULL) ||
        (o->tls_name_from != NULL && (r->tls_name_from = strdup(o->tls_name_from)) == NULL))
        goto fail_url;
    if (r->url.tls) {
        int rc = 0;

        if (r->url.host == NULL && r->url.master_name == NULL) {
            snprintf(err, errlen, "redis: rediss:// needs a host");
            rc = UV_EINVAL;
        } else if (o->tls_ctx != NULL) {
            SSL_CTX_up_ref(o->tls_ctx);
            r->tls_ctx = o->tls_ctx;
        } else {
            rc = tlsc_redis_tls_ctx_new(o->tls_ca_file, o->tls_cert_file, o->tls_key_file, &r->tls_ctx, err, errlen);
        }
        if (rc != 0) {
            free(r->tls_name);
            free(r->tls_name_from);
            tlsc_redis_url_free(&r->url);
            free(r);
            return rc;
        }
    }
    tlsc_redis_url_describe(&r->url, r->desc, sizeof(r->desc));
    if (o->label != NULL) {
        size_t n = strlen(r->desc);
        snprintf(r->desc + n, sizeof(r->desc) - n, " (%s)", o->label);
    }
    r->loop = loop;
    r->connect_timeout_ms = o->connect_timeout_ms != 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->max_inflight = o->max_inflight != 0 ? o->max_inflight : DEFAULT_MAX_INFLIGHT;
    r->stall_ms = o->stall_ms != 0 ? o->stall_ms : DEFAULT_STALL_MS;
    r->state = LINK_DIALING;
    r->permanent_backoff_ms = o->permanent_backoff_ms != 0 ? o->permanent_backoff_ms : DEFAULT_PERMANENT_MS;
    uv_timer_init(loop, &r->timer);
    uv_prepare_init(loop, &r->flusher);
    r->timer.data = r->flusher.data = r;
    if (r->url.master_name != NULL) { /* dial once the sentinels named the master */
        tlsc_sentinel_options_t so = {
            .url = &r->url, .timeout_ms = r->connect_timeout_ms, .tls_ctx = r->tls_ctx, .on_master = on_sentinel_master, .data = r};
        int rc;

        if ((rc = tlsc_sentinel_new(loop, &so, &r->sentinel)) != 0) {
            r->pending_closes = 2;
            r->closing = 1;
            uv_close((uv_handle_t *)&r->timer, on_closed);
            uv_close((uv_handle_t *)&r->flusher, on_closed); /* frees r */
            snprintf(err, errlen, "redis: cannot start asking the sentinels: %s", uv_strerror(rc));
            return rc;
        }
        *out = r;
        return 0;
    }
    snprintf(name, sizeof(name), "redis %s", r->desc);
    dopt.name = name;
    dopt.host = r->url.host;
    dopt.port = r->url.port;
    dopt.path = r->url.path;
    dopt.timeout_ms = r->connect_timeout_ms;
    dopt.backoff_min_ms = BACKOFF_MIN_MS;
    dopt.backoff_max_ms = BACKOFF_MAX_MS;
    dopt.permanent_backoff_ms = r->permanent_backoff_ms;
    dopt.on_connect = on_dial_connect;
    dopt.data = r;
    if (tlsc_dial_new(loop, &dopt, &r->dial) != 0) {
        r->pending_closes = 2;
        r->closing = 1;
        uv_close((uv_handle_t *)&r->timer, on_closed);
        uv_close((uv_handle_t *)&r->flusher, on_closed); /* frees r */
        snprintf(err, errlen, "redis: out of memory");
        return UV_ENOMEM;
    }
    *out = r;
    return 0;

fail_url:
    free(r->tls_name);
    free(r->tls_name_from);
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

uint64_t tlsc_redis_connects(const tlsc_redis_t *r)
{
    return r != NULL ? r->connects : 0;
}

void tlsc_redis_io(const tlsc_redis_t *r, uint64_t *requests, uint64_t *commands, uint64_t *writes)
{
    *requests = r != NULL ? r->requests : 0;
    *commands = r != NULL ? r->commands : 0;
    *writes = r != NULL ? r->writes : 0;
}

void tlsc_redis_close(tlsc_redis_t *r)
{
    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    for (tlsc_redis_req_t *req = r->head; req != NULL; req = req->next)
        req->cb = NULL;
    r->stream = NULL;
    r->pending_closes = r->dial != NULL ? 3 : 2;
    tlsc_sentinel_close(r->sentinel);
    r->sentinel = NULL;
    uv_close((uv_handle_t *)&r->timer, on_closed);
    uv_close((uv_handle_t *)&r->flusher, on_closed);
    if (r->dial != NULL)
        tlsc_dial_close(r->dial, on_dial_closed, r); /* cancels a write in flight, then frees */
}
