#ifndef TLSC_REDIS_H
#define TLSC_REDIS_H

/*
 * This file's one job: a non-blocking Redis client on a libuv loop that owns its timeouts.
 * Commands are written in RESP here (with one write per loop iteration); hiredis is used only
 * to parse replies (redisReader), which works the same on hiredis 0.14 and 1.x. Resolving,
 * connecting and the backoff between attempts are a tlsc_dial_t's (dial.h); every timer and
 * every decision about the link is in this client.
 *
 * - One connection per client (a worker has one), commands pipelined in order; rediss://
 *   runs TLS on it with OpenSSL on memory BIOs (verifying the chain and the host name).
 * - Connect, AUTH (user+password or password), SELECT, then ready; on any failure reconnect
 *   with jittered backoff (50 ms doubling to 2 s), logged once per state change, not per try.
 *   A refusal only an operator can fix (WRONGPASS, NOAUTH, NOPERM, a db Redis does not have)
 *   is logged as an error that names what to change in --redis, and retried every few
 *   seconds (permanent_backoff_ms).
 * - Every request has a deadline; when it passes the callback gets UV_ETIMEDOUT at once and
 *   the reply, when it comes, is read and dropped (the pipeline stays in step).
 * - While the link is down, or a reply is overdue (a paused Redis), new requests fail at once
 *   with UV_ENOTCONN / UV_EAGAIN instead of queueing; a bounded number in flight
 *   (max_inflight) gives UV_ENOBUFS past it. A link whose oldest reply is more than
 *   `stall_ms` late is closed and reconnected.
 * - Garbage from Redis (a protocol error) closes the link and fails its requests with
 *   UV_EPROTO; it never crashes.
 * - "Ready" means Redis answered on this link: the handshake is AUTH and/or SELECT, or a
 *   PING when the URL asks for neither (a paused Redis still accepts TCP connections).
 * - Commands are written just before the loop polls again (a uv_prepare), so every request
 *   made during one loop iteration goes out in one write.
 *
 * Statuses a callback gets: UV_ETIMEDOUT (its deadline passed, or the link stalled),
 * UV_ENOTCONN (the link was lost or a write failed), UV_EPROTO (garbage from Redis).
 * Callbacks never run from inside tlsc_redis_send; a callback may send, cancel or close.
 */

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "redis_url.h"

typedef struct tlsc_redis_s tlsc_redis_t;
typedef struct tlsc_redis_req_s tlsc_redis_req_t;

typedef struct {
    const tlsc_redis_url_t *url;   /* copied */
    unsigned connect_timeout_ms;   /* default 1000 */
    unsigned max_inflight;         /* default 1024 */
    unsigned stall_ms;             /* default 1000 */
    unsigned permanent_backoff_ms; /* retry delay after a refusal only an operator can fix; default 5000 */
    const char *tls_ca_file;       /* rediss://: the CA that signed Redis's certificate (required) */
    const char *tls_cert_file;     /* rediss://: a client certificate chain, or NULL ... */
    const char *tls_key_file;      /* ... and its key */
    SSL_CTX *tls_ctx;              /* or a context made already (tlsc_redis_tls_ctx_new), shared: the files are not read */
    const char *tls_name;          /* the name the certificate must show when not the URL's host (a cluster node's), or NULL */
    const char *tls_name_from;     /* where tls_name (or the host) came from, for log lines; NULL: "the host in --redis" */
    const char *label;             /* said after the address in log lines, e.g. "store+WAIT link"; or NULL */
} tlsc_redis_options_t;

/**
 * Called once per request: status 0 with the last reply of the request (valid only during
 * the call; it may be a REDIS_REPLY_ERROR, which the caller judges; when the last reply is
 * EXEC's EXECABORT and an earlier one was an error, the callback gets the first such error, the
 * cause: a MOVED or ASK to a command inside MULTI), or a negative UV_E*
 * code with reply NULL. Not called after tlsc_redis_cancel or once tlsc_redis_close began.
 */
typedef void (*tlsc_redis_cb)(int status, const redisReply *reply, void *data);

/**
 * Creates a client and starts connecting; it is not ready before the loop ran its handshake.
 * Returns 0, or UV_EINVAL / UV_ENOMEM with a reason in `err`.
 */
int tlsc_redis_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_redis_t **out, char *err, size_t errlen);

/**
 * Sends `ncmds` commands as one pipelined request (e.g. MULTI, HSET, EXPIRE, EXEC); the
 * callback gets the reply to the last one, after all have arrived. cmds[i] has argc[i]
 * arguments in argv[i]/argvlen[i] (argvlen or argvlen[i] NULL: strlen). The arguments are
 * copied. timeout_ms 0 means 1000. Returns the request (for cancel; valid until its callback
 * ran or it was cancelled), or NULL on an immediate failure: then `cb` is not called and
 * *status_out (if not NULL) gets UV_ENOTCONN (link down or handshaking), UV_EAGAIN (the
 * oldest reply is overdue), UV_ENOBUFS (max_inflight reached), UV_EINVAL or UV_E2BIG.
 */
tlsc_redis_req_t *tlsc_redis_send(tlsc_redis_t *r, size_t ncmds, const int *argc, const char *const *const *argv,
                                  const size_t *const *argvlen, unsigned timeout_ms, tlsc_redis_cb cb, void *data, int *status_out);

/** Convenience for one command. Same contract as tlsc_redis_send. */
tlsc_redis_req_t *tlsc_redis_command(tlsc_redis_t *r, int argc, const char *const *argv, const size_t *argvlen, unsigned timeout_ms,
                                     tlsc_redis_cb cb, void *data, int *status_out);

/** Detaches the callback: it will not run. The reply, if it comes, is dropped. */
void tlsc_redis_cancel(tlsc_redis_req_t *req);

/** Non-zero when connected, authenticated and no reply is overdue. */
int tlsc_redis_ready(const tlsc_redis_t *r);

/** How many times the link became ready (the first connect and every reconnect). */
uint64_t tlsc_redis_connects(const tlsc_redis_t *r);

/**
 * How many requests (and commands) were queued and how many socket writes carried them, since
 * the client was made: requests / writes above 1 is the flusher batching one loop iteration's
 * requests into one write.
 */
void tlsc_redis_io(const tlsc_redis_t *r, uint64_t *requests, uint64_t *commands, uint64_t *writes);

/**
 * What to fix in --redis when Redis answers the handshake with this error reply (WRONGPASS,
 * NOAUTH, NOPERM, a db out of range), or NULL when the error is not a configuration error.
 */
const char *tlsc_redis_error_hint(const char *reply, size_t len);

/**
 * A hiredis reader whose replies are bounded: an array of at most 1024 elements, arrays nested
 * at most 4 deep, a reply of at most 16384 values and 8 MiB of strings. Past a bound redisReaderGetReply fails and
 * tlsc_redis_reader_refused() says so. Call tlsc_redis_reader_next() after each whole reply.
 * The client uses one per link; the reply fuzzer's oracle uses one too.
 */
redisReader *tlsc_redis_reader_new(void);
void tlsc_redis_reader_next(redisReader *reader);
int tlsc_redis_reader_refused(const redisReader *reader);
void tlsc_redis_reader_free(redisReader *reader);

/**
 * The TLS client context rediss:// uses: verify Redis's chain against `ca_file` (and, per
 * connection, the host name or IP address in the URL), TLS 1.2 or later, with a client
 * certificate when `cert_file` and `key_file` are given. Returns 0, or a negative UV_E* code
 * with one line naming the flag (--redis-ca, --redis-cert, --redis-key) and the file in `err`.
 * Also used at start-up so a bad file stops the server at once.
 */
int tlsc_redis_tls_ctx_new(const char *ca_file, const char *cert_file, const char *key_file, SSL_CTX **out, char *err,
                           size_t errlen);

/**
 * Makes `ssl` (a client's, before its handshake) check that Redis's certificate names `host`,
 * the host in the URL: a DNS name (also sent as SNI) or an IP address (an IP SAN). 0, or -1
 * when out of memory.
 */
int tlsc_redis_tls_expect_host(SSL *ssl, const char *host);

/**
 * A TLS client on memory BIOs, for a link that owns its socket: an SSL from `ctx` in connect
 * state whose peer must show `name` in its certificate (a DNS name, also sent as SNI, or an
 * IP address). Its BIOs are SSL_get_rbio (ciphertext read from the socket goes in) and
 * SSL_get_wbio (ciphertext to write comes out). Returns NULL when out of memory.
 */
SSL *tlsc_redis_tls_new(SSL_CTX *ctx, const char *name);

/**
 * Why the TLS handshake on `ssl` failed, as one line for the log: "TLS handshake failed:
 * PEER's certificate does not name NAME (FROM)", "... (is --redis-ca the CA that signed
 * it?)" or OpenSSL's reason. Returns 1 when only an operator can fix it (the certificate), 0
 * when retrying may help. Clears OpenSSL's error queue.
 */
int tlsc_redis_tls_failure(SSL *ssl, const char *peer, const char *name, const char *from, char *out, size_t outlen);

/** Closes the link and frees the client once its handles are closed; pending callbacks do not run. */
void tlsc_redis_close(tlsc_redis_t *r);

#endif
