#ifndef TLSC_KEYLINK_H
#define TLSC_KEYLINK_H

/*
 * This file's one job: run the key protocol's TLS 1.3 PSK link (proto/keyproto.h, I/O-free)
 * over a connected libuv stream, for both ends — the daemon's accepted links and the worker's
 * client link.
 *
 * It reads ciphertext from the stream into the TLS session, writes whatever the session has
 * to send (handshake flights, alerts, encrypted frames), and hands each decoded message to a
 * callback. It does not own the stream: the caller made it (accept, tlsc_dial) and closes it
 * after tlsc_keylink_free(). stream->data belongs to the link while it is attached.
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "keyproto.h"

typedef struct tlsc_keylink_s tlsc_keylink_t;

/** Where a link failed; the code's meaning depends on it. */
typedef enum {
    TLSC_KEYLINK_READ,  /* the stream: a UV_E* code, UV_EOF when the peer closed */
    TLSC_KEYLINK_WRITE, /* the stream: a UV_E* code */
    TLSC_KEYLINK_TLS,   /* the TLS session: a TLSC_KEYPROTO_E* code (EAUTH: wrong PSK or not our protocol) */
    TLSC_KEYLINK_FRAME, /* the frames inside: a TLSC_KEYPROTO_E* code */
} tlsc_keylink_where_t;

/** A decoded message; it is wiped after the callback returns (copy what you keep). */
typedef void (*tlsc_keylink_msg_cb)(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data);
/**
 * The link failed; no message callback runs after this one. The caller frees the link and
 * closes the stream (an alert, if any, is already written).
 */
typedef void (*tlsc_keylink_fail_cb)(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data);

/**
 * Attaches a new TLS session from `link` to a connected stream and starts reading; a client
 * sends its first handshake flight at once, a server makes its session only when the peer
 * first speaks (an idle connection holds no TLS state). Returns NULL when out of memory or when reading
 * cannot start (the callbacks do not run then).
 */
tlsc_keylink_t *tlsc_keylink_start(uv_stream_t *stream, tlsc_keyproto_link_t *link, tlsc_keylink_msg_cb on_msg,
                                   tlsc_keylink_fail_cb on_fail, void *data);

/**
 * Encrypts a message (queued in the session until the handshake is done) and writes what is
 * ready; after a failure of the frames (TLSC_KEYLINK_FRAME) it may still carry an ERROR that
 * says why. Returns 0, or a negative UV_E* code (UV_EINVAL: the message cannot be encoded) —
 * then the link is unusable; the fail callback is not called for it.
 */
int tlsc_keylink_send(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m);

/** Non-zero once the TLS handshake has completed. */
int tlsc_keylink_established(const tlsc_keylink_t *kl);

/** Ciphertext bytes read from the peer so far (0: it has said nothing yet). */
uint64_t tlsc_keylink_bytes_in(const tlsc_keylink_t *kl);

/** OpenSSL's reason for a TLS failure, for logs (never contains secrets). */
const char *tlsc_keylink_reason(const tlsc_keylink_t *kl);

/** A short text for a failure reported to the fail callback. */
const char *tlsc_keylink_strerror(tlsc_keylink_where_t where, int code);

/**
 * Stops reading, wipes and frees the session; safe from inside either callback (freed on the
 * way out). Writes already queued still go out unless the caller closes the stream.
 */
void tlsc_keylink_free(tlsc_keylink_t *kl);

#endif
