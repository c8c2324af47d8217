/* This file's one job: keep one outgoing stream connected (resolve, connect, back off, log). */
#include "dial.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/rand.h>

#include "log.h"

#define DEFAULT_TIMEOUT_MS   1000
#define DEFAULT_BACKOFF_MIN  50
#define DEFAULT_BACKOFF_MAX  2000
#define DEFAULT_PERMANENT_MS 10000
#define MAX_ADDRS            8
#define LOG_BURST            6     /* state-change lines logged back to back ... */
#define LOG_REFILL_MS        10000 /* ... then one per this interval */

typedef enum {
    DIAL_WAITING,    /* backoff: `timer` starts the next attempt */
    DIAL_RESOLVING,  /* uv_getaddrinfo in flight; `timer` is the attempt's timeout */
    DIAL_CONNECTING, /* a connect in flight; `timer` is the attempt's timeout */
    DIAL_CONNECTED,  /* the caller's handshake runs on the stream */
    DIAL_UP,
    DIAL_CLOSED,
} dial_state_t;

/* One attempt's handle. It outlives a failed attempt until libuv has closed it. */
typedef struct {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t req;
    tlsc_dial_t *d; /* always set: counts this handle */
} sock_t;

/* A name lookup in the thread pool, abandoned (d = NULL) on timeout or close. */
typedef struct {
    uv_getaddrinfo_t req;
    tlsc_dial_t *d;
} resolve_t;

struct tlsc_dial_s {
    uv_loop_t *loop;
    tlsc_dial_options_t o;
    char *name, *host, *path;
    dial_state_t state;
    uv_timer_t timer;
    sock_t *sock;
    resolve_t *resolving;
    struct sockaddr_storage addrs[MAX_ADDRS];
    size_t naddrs, next_addr;
    unsigned backoff_ms, failures; /* failures: since the link was last up */
    uint64_t failures_total;
    int ever_up;
    int restarting; /* tlsc_dial_restart: the next "up" is not news */
    char last_reason[400];
    unsigned tokens, suppressed;
    uint64_t tokens_at;
    uv_timer_t quiet; /* after lines were left out: says the state the link ended in */
    unsigned pending; /* handles not yet closed */
    tlsc_dial_closed_cb closed_cb;
    void *closed_data;
};

static void attempt_start(tlsc_dial_t *d);
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
static void try_next_addr(tlsc_dial_t *d, const char *why);
static void on_connect(uv_connect_t *req, int status);
static void on_timer(uv_timer_t *t);
static void on_sock_closed(uv_handle_t *h);
static void on_timer_closed(uv_handle_t *h);
static void on_quiet(uv_timer_t *t);

/* ================================ logging ================================ */

/*
 * A state-change line may go out now: a burst of LOG_BURST, then one per LOG_REFILL_MS.
 * Lines left out are counted and the count rides on the next line that goes out; if none
 * does within LOG_REFILL_MS, on_quiet says the state the link is in by then, so the last line
 * about a link is never stale.
 */
static int log_allowed(tlsc_dial_t *d)
{
    uint64_t now = uv_now(d->loop);

    if (d->tokens_at == 0) {
        d->tokens = LOG_BURST;
        d->tokens_at = now;
    }
    while (d->tokens < LOG_BURST && now - d->tokens_at >= LOG_REFILL_MS) {
        d->tokens++;
        d->tokens_at += LOG_REFILL_MS;
    }
    if (d->tokens == LOG_BURST)
        d->tokens_at = now;
    if (d->tokens == 0) {
        if (d->suppressed++ == 0)
            uv_timer_start(&d->quiet, on_quiet, LOG_REFILL_MS, 0);
        return 0;
    }
    d->tokens--;
    return 1;
}

static void emit(tlsc_dial_t *d, tlsc_log_level_t level, const char *line)
{
    if (d->suppressed > 0)
        tlsc_log(level, "%s: %s (%u earlier change%s of this link not logged)", d->name, line, d->suppressed,
                 d->suppressed == 1 ? "" : "s");
    else
        tlsc_log(level, "%s: %s", d->name, line);
    d->suppressed = 0;
    uv_timer_stop(&d->quiet);
}

static void log_change(tlsc_dial_t *d, tlsc_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_change(tlsc_dial_t *d, tlsc_log_level_t level, const char *fmt, ...)
{
    char line[640];
    va_list ap;

    if (!log_allowed(d))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    emit(d, level, line);
}

/* Lines were left out and none went out since: say where the link stands now. */
static void on_quiet(uv_timer_t *t)
{
    tlsc_dial_t *d = t->data;
    char line[sizeof(d->last_reason) + 16];

    if (d->suppressed == 0 || d->state == DIAL_CLOSED)
        return;
    snprintf(line, sizeof(line), "%s%s", d->state == DIAL_UP ? "up" : "down: ",
             d->state == DIAL_UP         ? ""
             : d->last_reason[0] != '\0' ? d->last_reason
                                         : "connecting");
    emit(d, d->state == DIAL_UP ? TLSC_LOG_INFO : TLSC_LOG_WARN, line);
}

/* ================================ attempts ================================ */

static unsigned jittered(unsigned ms)
{
    unsigned r = 0;

    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (unsigned)uv_hrtime();
    return ms / 2 + r % (ms / 2 + 1);
}

static void abandon_resolve(tlsc_dial_t *d)
{
    if (d->resolving != NULL) {
        d->resolving->d = NULL;
        uv_cancel((uv_req_t *)&d->resolving->req);
        d->resolving = NULL;
    }
}

/* Closes the attempt's handle; a connect still in flight ends with UV_ECANCELED. */
static void drop_sock(tlsc_dial_t *d)
{
    sock_t *s = d->sock;

    if (s != NULL) {
        d->sock = NULL;
        uv_close(&s->h.handle, on_sock_closed);
    }
}

/* One handle fewer; the last one of a closed dial frees it. */
static void release(tlsc_dial_t *d)
{
    if (--d->pending == 0 && d->state == DIAL_CLOSED) {
        if (d->closed_cb != NULL)
            d->closed_cb(d->closed_data);
        free(d->name);
        free(d->host);
        free(d->path);
        free(d);
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_t *s = (sock_t *)h;
    tlsc_dial_t *d = s->d;

    free(s);
    release(d);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void schedule_retry(tlsc_dial_t *d, tlsc_dial_fault_t fault)
{
    unsigned delay;

    d->state = DIAL_WAITING;
    if (fault == TLSC_DIAL_PERMANENT) {
        delay = jittered(d->o.permanent_backoff_ms);
        d->backoff_ms = d->o.backoff_max_ms;
    } else {
        delay = jittered(d->backoff_ms);
        d->backoff_ms = d->backoff_ms * 2 > d->o.backoff_max_ms ? d->o.backoff_max_ms : d->backoff_ms * 2;
    }
    uv_timer_start(&d->timer, on_timer, delay, 0);
}

static void fail(tlsc_dial_t *d, tlsc_dial_fault_t fault, const char *reason)
{
    dial_state_t was = d->state;

    if (was == DIAL_CLOSED || was == DIAL_WAITING)
        return;
    d->restarting = 0;
    uv_timer_stop(&d->timer);
    abandon_resolve(d);
    drop_sock(d);
    d->failures++;
    d->failures_total++;
    if (was == DIAL_UP) {
        log_change(d, fault == TLSC_DIAL_PERMANENT ? TLSC_LOG_ERROR : TLSC_LOG_WARN, "connection lost: %s", reason);
    } else if (strcmp(reason, d->last_reason) != 0) {
        /* The link is down already (lost, or never up): a new reason is news, not a new state. */
        if (fault == TLSC_DIAL_PERMANENT)
            log_change(d, TLSC_LOG_ERROR, "%s; retrying every %u s", reason, (d->o.permanent_backoff_ms + 999) / 1000);
        else if (d->failures == 1)
            log_change(d, TLSC_LOG_WARN, "cannot connect: %s; retrying with backoff", reason);
        else
            log_change(d, TLSC_LOG_INFO, "still down: %s", reason);
    } else {
        tlsc_log_debug("%s: attempt %u failed: %s", d->name, d->failures, reason);
    }
    snprintf(d->last_reason, sizeof(d->last_reason), "%s", reason);
    schedule_retry(d, fault);
}

static void open_sock(tlsc_dial_t *d, const struct sockaddr *sa)
{
    sock_t *s;
    int err;

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        fail(d, TLSC_DIAL_TRANSIENT, "out of memory");
        return;
    }
    s->d = d;
    err = sa != NULL ? uv_tcp_init(d->loop, &s->h.tcp) : uv_pipe_init(d->loop, &s->h.pipe, 0);
    if (err != 0) {
        free(s);
        fail(d, TLSC_DIAL_TRANSIENT, uv_strerror(err));
        return;
    }
    d->pending++;
    d->sock = s;
    d->state = DIAL_CONNECTING;
    if (sa == NULL) {
        uv_pipe_connect(&s->req, &s->h.pipe, d->path, on_connect); /* errors come to on_connect */
        return;
    }
    uv_tcp_nodelay(&s->h.tcp, 1);
    uv_tcp_keepalive(&s->h.tcp, 1, 30);
    if ((err = uv_tcp_connect(&s->req, &s->h.tcp, sa, on_connect)) != 0)
        try_next_addr(d, uv_strerror(err));
}

static void addr_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip, ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
    } else {
        uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip, ntohs(((const struct sockaddr_in *)ss)->sin_port));
    }
}

/* The address just tried failed with `why`: the next one, or the attempt fails. */
static void try_next_addr(tlsc_dial_t *d, const char *why)
{
    char reason[sizeof(d->last_reason)], where[64];

    drop_sock(d);
    if (d->next_addr < d->naddrs) {
        open_sock(d, (const struct sockaddr *)&d->addrs[d->next_addr++]);
        return;
    }
    if (d->naddrs > 1) {
        addr_name(&d->addrs[d->naddrs - 1], where, sizeof(where));
        snprintf(reason, sizeof(reason), "%s (%s, the last of %zu addresses)", why, where, d->naddrs);
    } else if (d->o.locate != NULL) {
        snprintf(reason, sizeof(reason), "%s (%s%s%s:%u)", why, strchr(d->host, ':') != NULL ? "[" : "", d->host,
                 strchr(d->host, ':') != NULL ? "]" : "", d->o.port);
    } else {
        snprintf(reason, sizeof(reason), "%s", why);
    }
    fail(d, TLSC_DIAL_TRANSIENT, reason);
}

/* A located attempt: ask where to go, then go there. Returns 0, or -1 after failing the attempt. */
static int locate(tlsc_dial_t *d)
{
    char why[sizeof(d->last_reason)] = "no address yet";
    const char *host = NULL;
    unsigned port = 0;
    char *copy;

    if (d->o.locate(d, &host, &port, why, sizeof(why), d->o.data) != 0 || host == NULL || port == 0 || port > 65535) {
        fail(d, TLSC_DIAL_TRANSIENT, why);
        return -1;
    }
    if ((copy = strdup(host)) == NULL) {
        fail(d, TLSC_DIAL_TRANSIENT, "out of memory");
        return -1;
    }
    free(d->host);
    d->host = copy;
    d->o.port = port;
    return 0;
}

/* Starts one attempt: a unix socket, a numeric address, or a name lookup first. */
static void attempt_start(tlsc_dial_t *d)
{
    struct addrinfo hints;
    resolve_t *rs;
    int err;

    d->naddrs = d->next_addr = 0;
    d->state = DIAL_CONNECTING;
    uv_timer_start(&d->timer, on_timer, d->o.timeout_ms, 0);
    if (d->path != NULL) {
        open_sock(d, NULL);
        return;
    }
    if (d->o.locate != NULL && locate(d) != 0)
        return;
    if (uv_ip4_addr(d->host, (int)d->o.port, (struct sockaddr_in *)&d->addrs[0]) == 0 ||
        uv_ip6_addr(d->host, (int)d->o.port, (struct sockaddr_in6 *)&d->addrs[0]) == 0) {
        d->naddrs = d->next_addr = 1;
        open_sock(d, (const struct sockaddr *)&d->addrs[0]);
        return;
    }
    d->state = DIAL_RESOLVING;
    if ((rs = malloc(sizeof(*rs))) == NULL) {
        fail(d, TLSC_DIAL_TRANSIENT, "out of memory");
        return;
    }
    rs->d = d;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((err = uv_getaddrinfo(d->loop, &rs->req, on_resolved, d->host, NULL, &hints)) != 0) {
        char reason[sizeof(d->last_reason)];

        free(rs);
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", d->host, uv_strerror(err));
        fail(d, TLSC_DIAL_TRANSIENT, reason);
        return;
    }
    d->resolving = rs;
}

/* Keeps up to MAX_ADDRS addresses, IPv4 ones first (as before: most servers listen there). */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *rs = (resolve_t *)req;
    tlsc_dial_t *d = rs->d;
    char reason[200];

    free(rs);
    if (d == NULL) { /* abandoned */
        uv_freeaddrinfo(res);
        return;
    }
    d->resolving = NULL;
    for (int family = 0; family < 2; family++) {
        for (const struct addrinfo *ai = status == 0 ? res : NULL; ai != NULL && d->naddrs < MAX_ADDRS; ai = ai->ai_next) {
            if (ai->ai_family != (family == 0 ? AF_INET : AF_INET6) || ai->ai_addrlen > sizeof(d->addrs[0]))
                continue;
            memcpy(&d->addrs[d->naddrs], ai->ai_addr, ai->ai_addrlen);
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)&d->addrs[d->naddrs])->sin_port = htons((uint16_t)d->o.port);
            else
                ((struct sockaddr_in6 *)&d->addrs[d->naddrs])->sin6_port = htons((uint16_t)d->o.port);
            d->naddrs++;
        }
    }
    uv_freeaddrinfo(res);
    if (d->naddrs == 0) {
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", d->host, status != 0 ? uv_strerror(status) : "no address");
        fail(d, TLSC_DIAL_TRANSIENT, reason);
        return;
    }
    d->next_addr = 1;
    open_sock(d, (const struct sockaddr *)&d->addrs[0]);
}

static void on_connect(uv_connect_t *req, int status)
{
    sock_t *s = (sock_t *)((char *)req - offsetof(sock_t, req));
    tlsc_dial_t *d = s->d;

    if (status == UV_ECANCELED || d->sock != s || d->state != DIAL_CONNECTING)
        return; /* an abandoned attempt */
    if (status < 0) {
        try_next_addr(d, uv_strerror(status));
        return;
    }
    uv_timer_stop(&d->timer);
    d->state = DIAL_CONNECTED;
    d->o.on_connect(d, &s->h.stream, d->o.data);
}

/* Backoff over: try again. During an attempt: resolve + connect took longer than timeout_ms. */
static void on_timer(uv_timer_t *t)
{
    tlsc_dial_t *d = t->data;
    char reason[64];

    if (d->state == DIAL_WAITING) {
        attempt_start(d);
    } else if (d->state == DIAL_RESOLVING || d->state == DIAL_CONNECTING) {
        snprintf(reason, sizeof(reason), "connect timed out after %u ms", d->o.timeout_ms);
        fail(d, TLSC_DIAL_TRANSIENT, reason);
    }
}

/* ================================ API ================================ */

int tlsc_dial_new(uv_loop_t *loop, const tlsc_dial_options_t *o, tlsc_dial_t **out)
{
    tlsc_dial_t *d;

    *out = NULL;
    if (o == NULL || o->on_connect == NULL ||
        (o->path == NULL && o->locate == NULL && (o->host == NULL || o->port == 0 || o->port > 65535)))
        return UV_EINVAL;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return UV_ENOMEM;
    d->loop = loop;
    d->o = *o;
    d->name = strdup(o->name != NULL ? o->name : "link");
    d->host = o->host != NULL ? strdup(o->host) : NULL;
    d->path = o->path != NULL ? strdup(o->path) : NULL;
    if (d->name == NULL || (o->host != NULL && d->host == NULL) || (o->path != NULL && d->path == NULL)) {
        free(d->name);
        free(d->host);
        free(d->path);
        free(d);
        return UV_ENOMEM;
    }
    if (d->o.timeout_ms == 0)
        d->o.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (d->o.backoff_min_ms == 0)
        d->o.backoff_min_ms = DEFAULT_BACKOFF_MIN;
    if (d->o.backoff_max_ms < d->o.backoff_min_ms)
        d->o.backoff_max_ms = d->o.backoff_min_ms > DEFAULT_BACKOFF_MAX ? d->o.backoff_min_ms : DEFAULT_BACKOFF_MAX;
    if (d->o.permanent_backoff_ms == 0)
        d->o.permanent_backoff_ms = DEFAULT_PERMANENT_MS;
    d->backoff_ms = d->o.backoff_min_ms;
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->quiet);
    d->timer.data = d->quiet.data = d;
    d->pending = 2; /* the timers */
    attempt_start(d);
    *out = d;
    return 0;
}

void tlsc_dial_up(tlsc_dial_t *d)
{
    if (d->state != DIAL_CONNECTED)
        return;
    d->state = DIAL_UP;
    d->backoff_ms = d->o.backoff_min_ms;
    if (d->restarting)
        tlsc_log_debug("%s: connected again after a restart", d->name);
    else if (!d->ever_up && d->failures == 0)
        log_change(d, TLSC_LOG_INFO, "connected");
    else if (!d->ever_up)
        log_change(d, TLSC_LOG_INFO, "connected after %u failed attempt%s", d->failures, d->failures == 1 ? "" : "s");
    else if (d->failures > 1)
        log_change(d, TLSC_LOG_INFO, "connected again after %u failed attempt%s", d->failures - 1, d->failures == 2 ? "" : "s");
    else
        log_change(d, TLSC_LOG_INFO, "connected again");
    d->ever_up = 1;
    d->restarting = 0;
    d->failures = 0;
    d->last_reason[0] = '\0';
}

void tlsc_dial_fail(tlsc_dial_t *d, tlsc_dial_fault_t fault, const char *fmt, ...)
{
    char reason[sizeof(d->last_reason)];
    va_list ap;

    if (d == NULL || d->state == DIAL_CLOSED || d->state == DIAL_WAITING)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fail(d, fault, reason);
}

void tlsc_dial_restart(tlsc_dial_t *d)
{
    if (d == NULL || (d->state != DIAL_CONNECTED && d->state != DIAL_UP))
        return;
    uv_timer_stop(&d->timer);
    drop_sock(d);
    d->restarting = 1;
    attempt_start(d);
}

void tlsc_dial_kick(tlsc_dial_t *d)
{
    if (d != NULL && d->state == DIAL_WAITING) {
        uv_timer_stop(&d->timer);
        attempt_start(d);
    }
}

uv_stream_t *tlsc_dial_stream(const tlsc_dial_t *d)
{
    return d != NULL && (d->state == DIAL_CONNECTED || d->state == DIAL_UP) && d->sock != NULL ? &d->sock->h.stream : NULL;
}

int tlsc_dial_is_up(const tlsc_dial_t *d)
{
    return d != NULL && d->state == DIAL_UP;
}

uint64_t tlsc_dial_failures(const tlsc_dial_t *d)
{
    return d->failures_total;
}

void tlsc_dial_close(tlsc_dial_t *d, tlsc_dial_closed_cb cb, void *data)
{
    if (d == NULL || d->state == DIAL_CLOSED)
        return;
    d->state = DIAL_CLOSED;
    d->closed_cb = cb;
    d->closed_data = data;
    abandon_resolve(d);
    drop_sock(d);
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    uv_close((uv_handle_t *)&d->quiet, on_timer_closed);
}
