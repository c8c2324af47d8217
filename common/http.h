#ifndef TLSC_HTTP_H
#define TLSC_HTTP_H

/*
 * A tiny plain-HTTP server for the admin endpoints (/metrics, /healthz, /readyz) that fits any
 * event loop: it owns an epoll instance and shows the host one descriptor to wait on
 * (tlsc_http_fd). When that descriptor is readable, or at least once a second for the
 * deadlines, the host calls tlsc_http_run, which never blocks. The master polls the descriptor
 * with its signalfd; the daemon watches it with a uv_poll_t.
 *
 * It is built to be harmless to the process that hosts it: GET and HEAD only, one request per
 * connection (Connection: close), a request head of at most TLSC_HTTP_MAX_REQUEST bytes, every
 * connection done within TLSC_HTTP_TIMEOUT_MS of its accept, at most TLSC_HTTP_MAX_CLIENTS at
 * once (a new one evicts the oldest that has not finished sending its request, so idle or slow
 * clients cannot lock a scraper out), and a reply capped at TLSC_HTTP_MAX_REPLY bytes.
 */

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TLSC_HTTP_MAX_REQUEST 4096
#define TLSC_HTTP_TIMEOUT_MS  5000
#define TLSC_HTTP_MAX_CLIENTS 16
#define TLSC_HTTP_MAX_REPLY   (16u << 20)

typedef struct tlsc_http_s tlsc_http_t;

/** What a handler fills in: the status, the content type (a static string) and the body. */
typedef struct {
    int status;
    const char *content_type;
    tlsc_buf_t body; /* initialised by the server, capped at TLSC_HTTP_MAX_REPLY */
} tlsc_http_reply_t;

/** Answers a GET or HEAD of `path` (without the query string). */
typedef void (*tlsc_http_handler)(void *data, const char *path, tlsc_http_reply_t *reply);

/**
 * Binds `addr` (HOST:PORT, [V6]:PORT; refusing a port someone already listens on) and returns
 * the server, or NULL with one line in `err` naming `label` (the flag) and the address.
 */
tlsc_http_t *tlsc_http_new(const char *label, const char *addr, tlsc_http_handler handler, void *data, char *err, size_t errlen);
/** The descriptor to wait on for readability. */
int tlsc_http_fd(const tlsc_http_t *h);
/** Accepts, reads, answers and times out whatever is due; never blocks. `now_ms` is tlsc_now_ms(). */
void tlsc_http_run(tlsc_http_t *h, uint64_t now_ms);
/** Closes everything and frees (NULL is fine). */
void tlsc_http_free(tlsc_http_t *h);
/**
 * In a child after fork: closes this process's copies of the descriptors without touching the
 * epoll instance the parent keeps using, and frees the memory (NULL is fine).
 */
void tlsc_http_forget(tlsc_http_t *h);

#endif
