#ifndef TLSC_DIAL_H
#define TLSC_DIAL_H

/*
 * This file's one job: keep one outgoing stream connected — resolve, connect, back off, retry,
 * and log each change of the link's state (not each attempt).
 *
 * The Redis client (redis.c) and the key-daemon client (keyd.c) both sit on one of these:
 *
 *   WAITING --timer--> RESOLVING --> CONNECTING --on_connect--> CONNECTED --tlsc_dial_up--> UP
 *      ^                   |              |                         |                       |
 *      +---- backoff <-----+--------------+------ tlsc_dial_fail ---+-----------------------+
 *
 * - HOST:PORT is resolved with uv_getaddrinfo (a numeric address skips it) and every address
 *   is tried in turn, IPv4 ones first, within one `timeout_ms`; unix:PATH is a uv_pipe.
 * - Backoff is jittered exponential (a delay in [b/2, b], b doubling from backoff_min_ms to
 *   backoff_max_ms, back to the minimum once the caller says the link is up). A failure the
 *   caller marks permanent (a wrong password, a wrong secret: retrying will not help until an
 *   operator fixes something) waits permanent_backoff_ms instead.
 * - Logs: "cannot connect: REASON" (warn), "connection lost: REASON" (warn), a permanent
 *   failure at error level, "connected" the first time and "connected again" after a loss
 *   (info). A failure with the reason last logged is a debug line. State-change lines are
 *   rate-limited: a flapping link logs a burst, then one line per interval with a count of
 *   what was left out, and a line with the state it ended in once it has been quiet.
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct tlsc_dial_s tlsc_dial_t;

typedef enum {
    TLSC_DIAL_TRANSIENT = 0, /* retry with the usual backoff */
    TLSC_DIAL_PERMANENT = 1, /* a configuration error: logged as an error, retried slowly */
} tlsc_dial_fault_t;

/**
 * The stream is connected; it stays the dial's (do not close it): read from it, write to it
 * and use stream->data freely until tlsc_dial_fail() or tlsc_dial_close().
 */
typedef void (*tlsc_dial_connect_cb)(tlsc_dial_t *d, uv_stream_t *stream, void *data);
/**
 * Asked at the start of every attempt where to connect, instead of a fixed host and port (a
 * Sentinel's "where is the master"): returns 0 with *host (copied) and *port, or -1 with a
 * reason in `why`, which fails the attempt (transient: it is asked again after the backoff).
 */
typedef int (*tlsc_dial_locate_cb)(tlsc_dial_t *d, const char **host, unsigned *port, char *why, size_t whylen, void *data);
/** Called once every handle of a closed dial is closed (writes on its stream cancelled). */
typedef void (*tlsc_dial_closed_cb)(void *data);

typedef struct {
    const char *name;              /* the prefix of every log line, e.g. "redis 10.0.0.5:6379/0" (copied) */
    const char *host;              /* a name or a numeric address (copied) ... */
    unsigned port;                 /* ... and a port 1..65535; or */
    const char *path;              /* a unix socket path (copied); or */
    tlsc_dial_locate_cb locate;    /* asked for host and port at every attempt */
    unsigned timeout_ms;           /* resolve + connect, all addresses; default 1000 */
    unsigned backoff_min_ms;       /* default 50 */
    unsigned backoff_max_ms;       /* default 2000 */
    unsigned permanent_backoff_ms; /* after a TLSC_DIAL_PERMANENT failure; default 10000 */
    tlsc_dial_connect_cb on_connect;
    void *data;
} tlsc_dial_options_t;

/** Copies the options and starts the first attempt. Returns 0, UV_EINVAL or UV_ENOMEM. */
int tlsc_dial_new(uv_loop_t *loop, const tlsc_dial_options_t *o, tlsc_dial_t **out);

/** The caller's handshake on the stream succeeded: logs "connected [again]", resets the backoff. */
void tlsc_dial_up(tlsc_dial_t *d);

/**
 * The current attempt or link failed for `reason` (said once in the logs, not per attempt):
 * the stream, if any, is closed at once and the next attempt waits for the backoff. A no-op
 * while no attempt is under way or after tlsc_dial_close.
 */
void tlsc_dial_fail(tlsc_dial_t *d, tlsc_dial_fault_t fault, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/**
 * Closes a connected or up stream and connects again at once, without counting a failure or
 * logging (e.g. a subscribed link that must ask something again). A no-op otherwise.
 */
void tlsc_dial_restart(tlsc_dial_t *d);

/** While waiting out a backoff: start the next attempt now (the caller knows the way is clear). */
void tlsc_dial_kick(tlsc_dial_t *d);

/** The connected stream (from on_connect until a failure), or NULL. */
uv_stream_t *tlsc_dial_stream(const tlsc_dial_t *d);

/** Non-zero between tlsc_dial_up() and the next failure. */
int tlsc_dial_is_up(const tlsc_dial_t *d);

/** Failed attempts and lost links since the start. */
uint64_t tlsc_dial_failures(const tlsc_dial_t *d);

/**
 * Stops; no callback but `cb` runs after this returns (it may be NULL). Safe from inside
 * on_connect. The memory is freed once the loop has closed the handles.
 */
void tlsc_dial_close(tlsc_dial_t *d, tlsc_dial_closed_cb cb, void *data);

#endif
