/*
 * This file's one job: a tiny, bounded HTTP/1.x server for the admin endpoints, driven through
 * one epoll descriptor so any loop can host it (see http.h for the bounds and why).
 */
#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"

#define LISTENER_ID    UINT32_MAX
#define MAX_PATH       256
#define ACCEPT_PER_RUN 64

typedef struct {
    int fd;        /* -1: free */
    int writing;   /* the reply is going out */
    int lingering; /* the reply is out: reading until the peer closes, so unread bytes cause no reset */
    uint64_t deadline_ms, seq;
    size_t rlen;
    char req[TLSC_HTTP_MAX_REQUEST];
    tlsc_buf_t out;
    size_t out_off;
} client_t;

struct tlsc_http_s {
    int ep, lfd;
    tlsc_http_handler handler;
    void *data;
    uint64_t seq;
    client_t clients[TLSC_HTTP_MAX_CLIENTS];
};

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                        */

/* A listening socket on the first address of `a` that binds. -1 with errno in *saved. */
static int bind_listener(const tlsc_addr_t *a, int *saved)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res, *ai;
    int fd = -1, one = 1, rc;

    if ((rc = getaddrinfo(a->host[0] ? a->host : NULL, a->port_str, &hints, &res)) != 0) {
        *saved = rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
            *saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* not REUSEPORT: a busy port is an error */
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            *saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

tlsc_http_t *tlsc_http_new(const char *label, const char *addr, tlsc_http_handler handler, void *data, char *err, size_t errlen)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = LISTENER_ID};
    tlsc_http_t *h;
    tlsc_addr_t a;
    char why[128];
    int saved = 0;

    if (tlsc_addr_parse_str(addr, TLSC_ADDR_ALLOW_ANY, &a, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s %s: %s", label, addr, why);
        return NULL;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        snprintf(err, errlen, "%s: out of memory", label);
        return NULL;
    }
    h->handler = handler;
    h->data = data;
    for (size_t i = 0; i < TLSC_HTTP_MAX_CLIENTS; i++)
        h->clients[i].fd = -1;
    if ((h->lfd = bind_listener(&a, &saved)) < 0) {
        snprintf(err, errlen, "%s %s: %s", label, addr,
                 saved == EADDRINUSE ? "address already in use (another process listens there)" : strerror(saved));
        goto fail;
    }
    if ((h->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->lfd, &ev) != 0) {
        snprintf(err, errlen, "%s %s: epoll: %s", label, addr, strerror(errno));
        goto fail_lfd;
    }
    return h;

fail_lfd:
    if (h->ep >= 0)
        close(h->ep);
    close(h->lfd);
fail:
    free(h);
    return NULL;
}

int tlsc_http_fd(const tlsc_http_t *h)
{
    return h->ep;
}

/* ------------------------------------------------------------------------------------------ */
/* Connections: accept, read the head, answer, close                                           */

static void client_close(tlsc_http_t *h, client_t *c)
{
    if (c->fd < 0)
        return;
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    tlsc_buf_free(&c->out);
}

/* A free slot, or the oldest client still sending its request (evicted), or NULL. */
static client_t *take_slot(tlsc_http_t *h)
{
    client_t *oldest = NULL;

    for (size_t i = 0; i < TLSC_HTTP_MAX_CLIENTS; i++) {
        client_t *c = &h->clients[i];
        if (c->fd < 0)
            return c;
        if ((!c->writing || c->lingering) && (oldest == NULL || c->seq < oldest->seq))
            oldest = c;
    }
    if (oldest != NULL)
        client_close(h, oldest);
    return oldest;
}

static void accept_all(tlsc_http_t *h, uint64_t now)
{
    for (int i = 0; i < ACCEPT_PER_RUN; i++) {
        int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        client_t *c;

        if (fd < 0)
            return; /* EAGAIN, or an error the next run retries (EMFILE: the backlog waits) */
        if ((c = take_slot(h)) == NULL) {
            close(fd);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - h->clients)};
        if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->writing = c->lingering = 0;
        c->rlen = 0;
        c->seq = ++h->seq;
        c->deadline_ms = now + TLSC_HTTP_TIMEOUT_MS;
        c->out_off = 0;
        tlsc_buf_init(&c->out, TLSC_HTTP_MAX_REPLY + 1024);
    }
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/*
 * The reply is out: close our side, and read (and drop) what the peer still sends until it
 * closes or the deadline passes. Closing at once with unread bytes (a request head too large,
 * say) would make the kernel send a reset that can destroy the reply before it is read.
 */
static void client_linger(tlsc_http_t *h, client_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - h->clients)};

    shutdown(c->fd, SHUT_WR);
    c->lingering = 1;
    tlsc_buf_free(&c->out);
    epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_drain(tlsc_http_t *h, client_t *c)
{
    char scratch[4096];
    ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        client_close(h, c);
}

/* Writes what is left of the reply; then lingers. */
static void client_flush(tlsc_http_t *h, client_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - h->clients)};
            epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (n <= 0) {
            client_close(h, c); /* the peer is gone */
            return;
        }
        c->out_off += (size_t)n;
    }
    client_linger(h, c);
}

static void client_answer(tlsc_http_t *h, client_t *c, int status, const char *ctype, const tlsc_buf_t *body, int head_only)
{
    static const char fallback[] = "reply too large\n";
    const char *data = body != NULL ? body->data : NULL;
    size_t len = body != NULL ? body->len : 0;

    if (body != NULL && body->failed) {
        status = 500;
        ctype = "text/plain; charset=utf-8";
        data = fallback;
        len = sizeof(fallback) - 1;
    }
    c->writing = 1;
    tlsc_buf_printf(&c->out,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                    "Connection: close\r\n%s\r\n",
                    status, status_text(status), ctype, len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head_only && len > 0)
        tlsc_buf_append(&c->out, data, len);
    if (c->out.failed) {
        client_close(h, c);
        return;
    }
    struct epoll_event ev = {.events = 0, .data.u32 = (uint32_t)(c - h->clients)};
    epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev); /* nothing more is read */
    client_flush(h, c);
}

static void client_error(tlsc_http_t *h, client_t *c, int status, const char *text)
{
    tlsc_buf_t b;

    tlsc_buf_init(&b, 256);
    tlsc_buf_printf(&b, "%s\n", text);
    client_answer(h, c, status, "text/plain; charset=utf-8", &b, 0);
    tlsc_buf_free(&b);
}

/* The request head is complete in c->req: parse the request line and answer it. */
static void client_request(tlsc_http_t *h, client_t *c)
{
    char path[MAX_PATH];
    const char *p = c->req, *end = memchr(c->req, '\n', c->rlen), *sp1, *sp2;
    int head_only;

    if (end == NULL || (sp1 = memchr(p, ' ', (size_t)(end - p))) == NULL ||
        (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL || end - sp2 < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        client_error(h, c, 400, "bad request line");
        return;
    }
    if (sp1 - p == 3 && memcmp(p, "GET", 3) == 0)
        head_only = 0;
    else if (sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0)
        head_only = 1;
    else {
        client_error(h, c, 405, "only GET and HEAD");
        return;
    }
    size_t plen = (size_t)(sp2 - sp1 - 1);
    const char *q = memchr(sp1 + 1, '?', plen);
    if (q != NULL)
        plen = (size_t)(q - sp1 - 1);
    if (plen == 0 || sp1[1] != '/') {
        client_error(h, c, 400, "bad request target");
        return;
    }
    if (plen >= sizeof(path)) {
        client_error(h, c, 414, "request target too long");
        return;
    }
    memcpy(path, sp1 + 1, plen);
    path[plen] = '\0';
    for (size_t i = 0; i < plen; i++) {
        if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f) {
            client_error(h, c, 400, "bad request target");
            return;
        }
    }

    tlsc_http_reply_t reply = {.status = 404, .content_type = "text/plain; charset=utf-8"};
    tlsc_buf_init(&reply.body, TLSC_HTTP_MAX_REPLY);
    h->handler(h->data, path, &reply);
    client_answer(h, c, reply.status, reply.content_type, &reply.body, head_only);
    tlsc_buf_free(&reply.body);
}

/* The end of the request head: an empty line (CRLF CRLF, or LF LF from a hand-typed request). */
static int head_complete(const client_t *c)
{
    for (size_t i = 1; i < c->rlen; i++) {
        if (c->req[i] == '\n' && (c->req[i - 1] == '\n' || (i >= 2 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n')))
            return 1;
    }
    return 0;
}

static void client_read(tlsc_http_t *h, client_t *c)
{
    ssize_t n = recv(c->fd, c->req + c->rlen, sizeof(c->req) - c->rlen, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        client_close(h, c);
        return;
    }
    c->rlen += (size_t)n;
    if (head_complete(c))
        client_request(h, c);
    else if (c->rlen == sizeof(c->req))
        client_error(h, c, 431, "request head too large");
}

void tlsc_http_run(tlsc_http_t *h, uint64_t now_ms)
{
    struct epoll_event ev[32];
    int n = epoll_wait(h->ep, ev, 32, 0);

    for (int i = 0; i < n; i++) {
        if (ev[i].data.u32 == LISTENER_ID) {
            accept_all(h, now_ms);
            continue;
        }
        if (ev[i].data.u32 >= TLSC_HTTP_MAX_CLIENTS)
            continue;
        client_t *c = &h->clients[ev[i].data.u32];
        if (c->fd < 0)
            continue; /* closed earlier in this batch */
        if (c->lingering)
            client_drain(h, c);
        else if (c->writing)
            client_flush(h, c);
        else
            client_read(h, c);
    }
    for (size_t i = 0; i < TLSC_HTTP_MAX_CLIENTS; i++) {
        if (h->clients[i].fd >= 0 && now_ms >= h->clients[i].deadline_ms)
            client_close(h, &h->clients[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown                                                                                     */

void tlsc_http_free(tlsc_http_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < TLSC_HTTP_MAX_CLIENTS; i++)
        client_close(h, &h->clients[i]);
    close(h->lfd);
    close(h->ep);
    free(h);
}

void tlsc_http_forget(tlsc_http_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < TLSC_HTTP_MAX_CLIENTS; i++) {
        if (h->clients[i].fd >= 0)
            close(h->clients[i].fd); /* no EPOLL_CTL_DEL: the epoll instance is the parent's too */
        tlsc_buf_free(&h->clients[i].out);
    }
    close(h->lfd);
    close(h->ep);
    free(h);
}
