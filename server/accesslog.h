#ifndef TLSC_ACCESSLOG_H
#define TLSC_ACCESSLOG_H

/*
 * The access log (--access-log FILE|-): one line per client connection, in the daemon log's
 * format (--log-format text|json), written by the worker that served it.
 *
 * A slow disk never blocks the loop: lines go into a bounded in-memory buffer
 * (TLSC_ACCESSLOG_BUF bytes per worker) and reach the file through uv_fs_write on libuv's
 * thread pool, one write in flight at a time; whatever came in meanwhile goes in the next one.
 * When the buffer is full a line is dropped and counted (the `dropped` counter the caller
 * passes, access_log_dropped in the stats). Every worker opens the file O_APPEND and writes
 * whole lines only, so lines of different workers never interleave (to a pipe, each write is
 * at most PIPE_BUF bytes for the same reason). tlsc_accesslog_reopen (the worker's SIGUSR1)
 * opens the path again once the write in flight is done, so logrotate can move the file away.
 */

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <uv.h>

#include "log.h"

#define TLSC_ACCESSLOG_BUF      (256 * 1024)
#define TLSC_ACCESSLOG_LINE_MAX 2048 /* a longer line is cut (every field is bounded well below) */

typedef struct tlsc_accesslog_s tlsc_accesslog_t;

/** One connection, as the line shows it. Strings may be NULL (absent); none needs to outlive the call. */
typedef struct {
    const struct sockaddr *client; /* after a PROXY header with --accept-proxy; NULL: unknown */
    const char *sni;
    const unsigned char *alpn; /* the protocol chosen, not NUL-terminated */
    size_t alpn_len;
    const char *protocol; /* "TLSv1.3"; NULL: no handshake finished */
    const char *cipher;
    const char *session;   /* "full", "local" (--local-cache), "redis" or "ticket"; NULL: no handshake finished */
    uint64_t handshake_us; /* accept to handshake done */
    uint64_t bytes_in;     /* plaintext from the client */
    uint64_t bytes_out;    /* plaintext to the client */
    uint64_t duration_us;  /* accept to close */
    const char *backend;   /* the backend tried or joined; NULL: none (the responder) */
    const char *close;     /* the close cause (tlsc_close_cause_t's name) */
    const char *end;       /* how a proxied connection ended; NULL: not proxied */
} tlsc_accesslog_entry_t;

/**
 * Opens `path` ("-": standard output) for appending, mode 0644. `dropped` is the counter that
 * lines lost to a full buffer or a failed write add to. Returns 0 or a negative UV_E* code
 * with a message in `err`.
 */
int tlsc_accesslog_open(uv_loop_t *loop, const char *path, tlsc_log_format_t format, uint64_t *dropped, tlsc_accesslog_t **out,
                        char *err, size_t errlen);
/** Formats one line into the buffer and starts a write unless one is in flight (never blocks). */
void tlsc_accesslog_write(tlsc_accesslog_t *al, const tlsc_accesslog_entry_t *e);
/** Opens the path again (after the write in flight); a failure is logged and the old file kept. */
void tlsc_accesslog_reopen(tlsc_accesslog_t *al);
/** Non-zero while a write or reopen is in flight (the loop must run on before tlsc_accesslog_free). */
int tlsc_accesslog_busy(const tlsc_accesslog_t *al);
/** Closes the file and frees (NULL is fine). Only when not busy: run the loop out first. */
void tlsc_accesslog_free(tlsc_accesslog_t *al);
/** Formats one line (with its '\n') into `out`; returns its length. For tests and the writer. */
size_t tlsc_accesslog_format(tlsc_log_format_t format, const tlsc_accesslog_entry_t *e, char *out, size_t outlen);

#endif
