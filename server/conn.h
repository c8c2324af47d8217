#ifndef TLSC_CONN_H
#define TLSC_CONN_H

/*
 * A worker's client connections: accept, read, TLS over memory BIOs, write, close. OpenSSL
 * writes into a memory BIO and this module decides when those bytes reach the socket, which is
 * what lets a new session's last flight be held back until the store has it (hold / release,
 * asked for by the session hooks). After the handshake a handler (the built-in responder, or
 * a proxy) gets the plaintext; it never touches handshake state.
 *
 * States, in firing order:
 *   HELLO     accepted; the ClientHello has not been read in full
 *   LOOKUP    a store read is in flight, the handshake parked (only when a session was offered)
 *   HANDSHAKE OpenSSL drives the rest of the handshake
 *   OPEN      the handler has the connection
 *   CLOSING   closed or closing; nothing runs any more
 * so a connection goes HELLO → (LOOKUP) → HANDSHAKE → OPEN → CLOSING, and may jump to CLOSING
 * from any state.
 *
 * Bounds: at most max_conns connections per worker (past it the worker leaves new clients in
 * the kernel's accept queue, one held per listener); a handshake must finish within
 * handshake_timeout_ms; a peer may have at most TLSC_CONN_RBIO_HANDSHAKE bytes unread before the
 * handshake is done and TLSC_CONN_RBIO_OPEN after. docs/design.md adds up what one connection
 * may hold.
 */

#define TLSC_CONN_RBIO_HANDSHAKE (64 * 1024)
#define TLSC_CONN_RBIO_OPEN      (256 * 1024)

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "accesslog.h"
#include "session.h"
#include "stats.h"
#include "tls.h"

typedef struct tlsc_conns_s tlsc_conns_t;
typedef struct tlsc_conn_s tlsc_conn_t;

typedef enum {
    TLSC_CONN_HELLO,
    TLSC_CONN_LOOKUP,
    TLSC_CONN_HANDSHAKE,
    TLSC_CONN_OPEN,
    TLSC_CONN_CLOSING,
} tlsc_conn_state_t;

/** What runs once the handshake is done (and, optionally, from the ClientHello on). */
typedef struct {
    /**
     * Optional: the ClientHello was read (the SNI is known; nothing is selected yet). May start
     * work that overlaps the handshake and return its state, or return NULL. That state goes to
     * `open`, or to `close` if the connection closes before its handshake is done (handshake
     * timeout, failure, drain), so nothing started here outlives --handshake-timeout.
     */
    void *(*hello)(void *hdata, tlsc_conn_t *c);
    /**
     * Handshake done: returns the connection's handler state, or NULL to close it. `early` is
     * what `hello` returned (NULL without one); when open returns NULL it has disposed of it.
     */
    void *(*open)(void *hdata, tlsc_conn_t *c, void *early);
    /** Plaintext from the client (valid only during the call). */
    void (*data)(void *state, tlsc_conn_t *c, const char *buf, size_t len);
    /** The connection is going away (open, or before it with `hello`'s state): free `state`. */
    void (*close)(void *state, tlsc_close_cause_t why);
    /**
     * Optional: the client sent close_notify (it sends nothing more; it may still read). NULL:
     * the connection closes at once.
     */
    void (*eof)(void *state, tlsc_conn_t *c);
    /** Optional: what was queued for the client fell to TLSC_CONN_LOW_WATER bytes or below. */
    void (*writable)(void *state, tlsc_conn_t *c);
    void *hdata;
} tlsc_handler_t;

#define TLSC_CONN_LOW_WATER (64 * 1024) /* tlsc_conn_queued() at or below this calls writable */

typedef struct {
    uv_loop_t *loop;
    tlsc_session_t *session;
    tlsc_tls_t *tls; /* the contexts new connections start with */
    tlsc_stats_t *stats;
    const tlsc_handler_t *handler;
    unsigned handshake_timeout_ms; /* a handshake not done by then is closed */
    size_t max_conns;              /* at this many, accept nothing until one closes */
    int accept_proxy;              /* --accept-proxy: a PROXY v1/v2 header comes before the TLS bytes */
    tlsc_accesslog_t *access_log;  /* --access-log: one line per connection as it closes; NULL: none */
    /** Called when draining and the last connection has closed. */
    void (*on_drained)(void *data);
    void *data;
} tlsc_conns_options_t;

/** A worker's connection set (copies the options). NULL when out of memory. */
tlsc_conns_t *tlsc_conns_new(const tlsc_conns_options_t *o);
/** Frees the set; every connection must have closed (tlsc_conns_count() == 0). */
void tlsc_conns_free(tlsc_conns_t *cs);
/** Starts accepting on a listening socket the worker owns. Returns 0 or a UV_E* code. */
int tlsc_conns_listen(tlsc_conns_t *cs, uv_tcp_t *listener, int backlog);
/** Closes connections whose deadline passed (handshake, request) or all once `drain_deadline_ms` passed (0: none). */
void tlsc_conns_sweep(tlsc_conns_t *cs, uint64_t now_ms, uint64_t drain_deadline_ms);
/** Accepts nothing more; on_drained runs once the last connection closed (at once if none). */
void tlsc_conns_drain(tlsc_conns_t *cs);
/** Closes every connection now (the loop must run on for their handles to close). */
void tlsc_conns_close_all(tlsc_conns_t *cs);
/** Open connections. */
size_t tlsc_conns_count(const tlsc_conns_t *cs);

/* For handlers. */

/** Encrypts and sends `len` bytes. Returns 0, or -1 when the connection failed (it is closing). */
int tlsc_conn_write(tlsc_conn_t *c, const void *buf, size_t len);
/** Sends close_notify after what was written, then closes once everything is on the wire. */
void tlsc_conn_end(tlsc_conn_t *c);
/** Closes now. */
void tlsc_conn_close(tlsc_conn_t *c);
/** Sends close_notify after what was written but keeps reading (the client may still send, in TLS 1.3). */
void tlsc_conn_shutdown(tlsc_conn_t *c);
/** Stops (1) or resumes (0) reading and decrypting the client's bytes: the handler's backpressure. */
void tlsc_conn_pause(tlsc_conn_t *c, int paused);
/** Bytes encrypted for the client and not yet taken by the kernel. */
size_t tlsc_conn_queued(const tlsc_conn_t *c);
/** Closes the connection (TLSC_CLOSE_TIMEOUT) unless something resets this within `ms`. */
void tlsc_conn_set_timeout(tlsc_conn_t *c, uint64_t ms);
/**
 * The client's address and the address it connected to: from the PROXY header with
 * --accept-proxy (when it carried TCP addresses), else `getpeername` / `getsockname`. 0 or a UV_E* code.
 */
int tlsc_conn_addrs(const tlsc_conn_t *c, struct sockaddr_storage *peer, struct sockaddr_storage *local);
/** The connection's TLS object (for what the handshake negotiated). */
SSL *tlsc_conn_ssl(const tlsc_conn_t *c);
/** The SNI the client sent, "" for none. */
const char *tlsc_conn_sni(const tlsc_conn_t *c);
/**
 * For the access log: the backend a proxied connection went to and how the proxy saw it end.
 * Both strings must live as long as the connection (static names, the routes' backends).
 */
void tlsc_conn_note_proxy(tlsc_conn_t *c, const char *backend, const char *end);

#endif
