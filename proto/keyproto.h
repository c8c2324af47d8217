#ifndef TLSC_KEYPROTO_H
#define TLSC_KEYPROTO_H

/*
 * The key-distribution protocol between tlscache-daemon and the workers (docs/protocol.md).
 *
 * Three layers, all pure (bytes in, bytes or values out, no sockets, no event loop):
 *   - the message codec: tlsc_keyproto_encode() and a reader fed bytes as they arrive
 *     (tlsc_keyproto_reader_feed / _next, like hiredis's reader);
 *   - key derivation: the per-key HKDF labels both ends agree on, and the link PSK;
 *   - the link: a TLS 1.3 external-PSK session over memory BIOs with a reader on top
 *     (tlsc_keyproto_conn_*), so the daemon and the worker drive it from any event loop by
 *     moving ciphertext between it and their socket.
 *
 * Decoded messages may hold key secrets: wipe them with tlsc_keyproto_msg_wipe().
 */

#include <stddef.h>
#include <stdint.h>

#define TLSC_KEYPROTO_VERSION        2 /* 2: the daemon announces its window (WINDOW) */
#define TLSC_KEYPROTO_VERSION_MIN    1
#define TLSC_KEYPROTO_HEADER_LEN     4
#define TLSC_KEYPROTO_MAX_FRAME      65536 /* type byte + body */
#define TLSC_KEYPROTO_MAX_KEYS       64
#define TLSC_KEYPROTO_NAME_LEN       16
#define TLSC_KEYPROTO_SECRET_LEN     32
#define TLSC_KEYPROTO_MAX_NODE       64
#define TLSC_KEYPROTO_MAX_ERROR_TEXT 200
#define TLSC_KEYPROTO_PSK_LEN        32
/** Largest frame tlsc_keyproto_encode() can produce (a HELLO with a full key set), rounded up. */
#define TLSC_KEYPROTO_ENCODE_MAX 4608

/* HKDF info labels for the keys derived from one key secret (salt = key name). */
#define TLSC_KEYPROTO_INFO_TICKET_AES  "tlscache ticket aes v1"
#define TLSC_KEYPROTO_INFO_TICKET_HMAC "tlscache ticket hmac v1"
#define TLSC_KEYPROTO_INFO_SEAL        "tlscache session seal v1"

/* Error codes: all negative. */
#define TLSC_KEYPROTO_EFRAME  (-1) /* frame length out of range */
#define TLSC_KEYPROTO_ETYPE   (-2) /* unknown message type */
#define TLSC_KEYPROTO_EMSG    (-3) /* body malformed or a field out of range */
#define TLSC_KEYPROTO_ENOBUFS (-4) /* more bytes fed than the reader buffers, or output too small */
#define TLSC_KEYPROTO_ENOMEM  (-5)
#define TLSC_KEYPROTO_EAUTH   (-6) /* TLS handshake failed (wrong PSK, not TLS ...) */
#define TLSC_KEYPROTO_ETLS    (-7) /* TLS failure after the handshake */
#define TLSC_KEYPROTO_ECLOSED (-8) /* peer sent close_notify */
#define TLSC_KEYPROTO_EINVAL  (-9) /* bad argument or unreadable secret */

typedef enum {
    TLSC_KEYPROTO_HELLO = 1,
    TLSC_KEYPROTO_KEYSET = 2,
    TLSC_KEYPROTO_ACK = 3,
    TLSC_KEYPROTO_PING = 4,
    TLSC_KEYPROTO_PONG = 5,
    TLSC_KEYPROTO_ERROR = 6,
    TLSC_KEYPROTO_WINDOW = 7,  /* protocol 2: daemon -> worker after its HELLO */
    TLSC_KEYPROTO_CONTROL = 8, /* tlscache-ctl -> daemon, instead of HELLO: a control request */
    TLSC_KEYPROTO_STATUS = 9,  /* daemon -> tlscache-ctl: the answer to a CONTROL */
} tlsc_keyproto_type_t;

/* The request in a CONTROL message. */
typedef enum {
    TLSC_KEYPROTO_OP_STATUS = 1, /* describe the window */
    TLSC_KEYPROTO_OP_ROTATE = 2, /* bring the next rotation forward to now + lead, then describe */
} tlsc_keyproto_op_t;

/* STATUS flags. */
#define TLSC_KEYPROTO_STATUS_GRACE   1  /* the daemon is in its restart grace period: no window yet */
#define TLSC_KEYPROTO_STATUS_ROTATED 2  /* answers a ROTATE that moved the next key's start */
#define TLSC_KEYPROTO_TAG_LEN        4  /* the first bytes of SHA-256(key name): a key as logs show it */
#define TLSC_KEYPROTO_STATUS_WORKERS 32 /* worker links described in one STATUS (of workers_total) */

typedef enum {
    TLSC_KEYPROTO_ROLE_NEXT = 1,
    TLSC_KEYPROTO_ROLE_CURRENT = 2,
    TLSC_KEYPROTO_ROLE_PREVIOUS = 3,
} tlsc_keyproto_role_t;

typedef enum {
    TLSC_KEYPROTO_ERR_PROTOCOL = 1,
    TLSC_KEYPROTO_ERR_VERSION = 2,
    TLSC_KEYPROTO_ERR_INTERNAL = 3,
    TLSC_KEYPROTO_ERR_STALE = 4,   /* worker: a KEYSET's epoch is below the one it applied */
    TLSC_KEYPROTO_ERR_REFUSED = 5, /* worker: a KEYSET it will not apply (a key out of bounds ...) */
    TLSC_KEYPROTO_ERR_LIMIT = 6,   /* daemon: too many links, or an epoch far ahead of its own */
} tlsc_keyproto_errcode_t;

typedef struct {
    unsigned char name[TLSC_KEYPROTO_NAME_LEN];
    unsigned char secret[TLSC_KEYPROTO_SECRET_LEN];
    uint8_t role;        /* tlsc_keyproto_role_t, the sender's view */
    uint64_t not_before; /* starts encrypting, epoch seconds */
    uint64_t not_after;  /* stops decrypting, epoch seconds; > not_before */
} tlsc_keyproto_key_t;

typedef struct {
    uint64_t epoch;
    size_t count; /* <= TLSC_KEYPROTO_MAX_KEYS */
    tlsc_keyproto_key_t keys[TLSC_KEYPROTO_MAX_KEYS];
} tlsc_keyproto_keyset_t;

/*
 * STATUS: the daemon's window as tlscache-ctl shows it. It never carries a key's name or
 * secret: a key is its tag (the bytes tlsc_keyproto_name_tag() prints as hex).
 */
typedef struct {
    unsigned char tag[TLSC_KEYPROTO_TAG_LEN];
    uint8_t role; /* tlsc_keyproto_role_t */
    uint64_t not_before, not_after;
} tlsc_keyproto_status_key_t;

typedef struct {
    char node[TLSC_KEYPROTO_MAX_NODE + 1];
    uint32_t worker;
    uint64_t acked_epoch; /* the last epoch this link acknowledged (0: none yet) */
} tlsc_keyproto_status_worker_t;

typedef struct {
    uint64_t epoch, now;                         /* the daemon's epoch and wall clock */
    uint32_t rotate_sec, lifetime_sec, lead_sec; /* its --rotate, --ticket-lifetime, --lead */
    uint8_t flags;                               /* TLSC_KEYPROTO_STATUS_* */
    size_t nkeys;                                /* <= TLSC_KEYPROTO_MAX_KEYS */
    tlsc_keyproto_status_key_t keys[TLSC_KEYPROTO_MAX_KEYS];
    uint32_t workers_total; /* worker links open */
    size_t nworkers;        /* <= TLSC_KEYPROTO_STATUS_WORKERS and <= workers_total: the ones listed */
    tlsc_keyproto_status_worker_t workers[TLSC_KEYPROTO_STATUS_WORKERS];
} tlsc_keyproto_status_t;

typedef struct {
    tlsc_keyproto_type_t type;
    union {
        struct {
            uint16_t version_min, version_max;
            uint32_t worker;
            char node[TLSC_KEYPROTO_MAX_NODE + 1];
            tlsc_keyproto_keyset_t held;
        } hello;
        tlsc_keyproto_keyset_t keyset; /* KEYSET */
        uint64_t epoch;                /* ACK */
        uint64_t nonce;                /* PING, PONG */
        struct {
            uint32_t rotate_sec, lifetime_sec, lead_sec; /* the daemon's --rotate, --ticket-lifetime, --lead */
        } window;
        struct {
            uint16_t code;
            char text[TLSC_KEYPROTO_MAX_ERROR_TEXT + 1];
        } error;
        uint8_t op; /* CONTROL: tlsc_keyproto_op_t */
        tlsc_keyproto_status_t status;
    } u;
} tlsc_keyproto_msg_t;

/** A short static description of a TLSC_KEYPROTO_E* code. */
const char *tlsc_keyproto_strerror(int err);

/* ---------------------------------------------------------------- codec */

/**
 * Checks a key set the way the decoder does: count bounded, roles known, not_before <
 * not_after, no all-zero secret, names unique. Returns 0 or TLSC_KEYPROTO_EMSG.
 */
int tlsc_keyproto_keyset_validate(const tlsc_keyproto_keyset_t *set);

/**
 * Non-zero when key `k` fits a window whose keys open tickets for at most `max_life` seconds
 * (rotate + ticket lifetime) and are pushed at most `max_ahead` seconds before they encrypt:
 * not_after - not_before <= max_life and not_before <= now + max_ahead (so not_after is at most
 * now + max_ahead + max_life). docs/keys.md, "Bounds".
 */
int tlsc_keyproto_key_bounded(const tlsc_keyproto_key_t *k, uint64_t now, uint64_t max_life, uint64_t max_ahead);

/**
 * Encodes `msg` as one frame (header included) into `out`. Returns 0 and sets `*len`, or
 * TLSC_KEYPROTO_EMSG for a message that would not decode, TLSC_KEYPROTO_ENOBUFS when `cap` is
 * too small (TLSC_KEYPROTO_ENCODE_MAX always suffices). `out` then holds secrets: wipe it.
 */
int tlsc_keyproto_encode(const tlsc_keyproto_msg_t *msg, unsigned char *out, size_t cap, size_t *len);

/**
 * Decodes one frame body (the type byte and what follows, without the length header).
 * Returns 0 or a negative code; `msg` is wiped on error.
 */
int tlsc_keyproto_decode(const unsigned char *body, size_t len, tlsc_keyproto_msg_t *msg);

/** Wipes a message (it may carry key secrets). */
void tlsc_keyproto_msg_wipe(tlsc_keyproto_msg_t *msg);

typedef struct tlsc_keyproto_reader_s tlsc_keyproto_reader_t;

/** A reader buffering at most one partial frame plus one feed of up to this many bytes. */
#define TLSC_KEYPROTO_READER_FEED_MAX 65536

/** Returns a new reader or NULL when out of memory. */
tlsc_keyproto_reader_t *tlsc_keyproto_reader_new(void);
/** Wipes and frees the reader (NULL is fine). */
void tlsc_keyproto_reader_free(tlsc_keyproto_reader_t *r);
/**
 * Appends bytes. Call tlsc_keyproto_reader_next() until it returns 0 after every feed; then a
 * feed of up to TLSC_KEYPROTO_READER_FEED_MAX bytes always fits. Returns 0,
 * TLSC_KEYPROTO_ENOBUFS, or the reader's sticky error.
 */
int tlsc_keyproto_reader_feed(tlsc_keyproto_reader_t *r, const void *buf, size_t len);
/**
 * Takes the next complete message: returns 1 and fills `msg`, 0 when more bytes are needed, or
 * a negative code. Errors are sticky: the stream cannot be resynchronised, drop the peer.
 */
int tlsc_keyproto_reader_next(tlsc_keyproto_reader_t *r, tlsc_keyproto_msg_t *msg);

/* ---------------------------------------------------------------- keys */

/**
 * Derives `outlen` bytes from a key secret: HKDF-SHA256(ikm = secret, salt = name, info).
 * Returns 0 or TLSC_KEYPROTO_EINVAL.
 */
int tlsc_keyproto_derive(const unsigned char secret[TLSC_KEYPROTO_SECRET_LEN], const unsigned char name[TLSC_KEYPROTO_NAME_LEN],
                         const char *info, unsigned char *out, size_t outlen);

/**
 * A short tag safe to log for a key name: the first 4 bytes of SHA-256(name) in hex (8 digits
 * and a NUL). The name itself is not secret, but logging only a hash keeps logs free of
 * anything a ticket carries.
 */
void tlsc_keyproto_name_tag(const unsigned char name[TLSC_KEYPROTO_NAME_LEN], char out[9]);
/** The same tag as bytes (what a STATUS message carries). */
void tlsc_keyproto_name_tag_raw(const unsigned char name[TLSC_KEYPROTO_NAME_LEN], unsigned char out[TLSC_KEYPROTO_TAG_LEN]);

/**
 * Reads a cluster secret file — at least 32 random bytes as hex digits (64+), one trailing
 * newline allowed — and derives the link PSK from it. Anything else (raw bytes, a passphrase,
 * hex of text) is TLSC_KEYPROTO_EINVAL with one line in `err` naming the file and saying how
 * to make a good one. The file's bytes are wiped.
 */
int tlsc_keyproto_psk_load(const char *path, unsigned char psk[TLSC_KEYPROTO_PSK_LEN], char *err, size_t errlen);

/* ---------------------------------------------------------------- link */

typedef struct tlsc_keyproto_link_s tlsc_keyproto_link_t;
typedef struct tlsc_keyproto_conn_s tlsc_keyproto_conn_t;

/**
 * A TLS 1.3 context for the link, client or server side, authenticated by `psk` (copied and
 * wiped on free). Returns 0 or TLSC_KEYPROTO_EINVAL with OpenSSL's reason in `err`.
 */
int tlsc_keyproto_link_new(int is_server, const unsigned char psk[TLSC_KEYPROTO_PSK_LEN], tlsc_keyproto_link_t **out, char *err,
                           size_t errlen);
/** Non-zero for a server-side (daemon) context. */
int tlsc_keyproto_link_is_server(const tlsc_keyproto_link_t *link);
/** Frees the context; connections made from it keep working until freed. */
void tlsc_keyproto_link_free(tlsc_keyproto_link_t *link);

/** A new connection (TLS session + frame reader); a client starts its handshake at once. */
tlsc_keyproto_conn_t *tlsc_keyproto_conn_new(tlsc_keyproto_link_t *link);
/** Wipes and frees a connection (NULL is fine). */
void tlsc_keyproto_conn_free(tlsc_keyproto_conn_t *c);
/**
 * Feeds ciphertext read from the socket (at most TLSC_KEYPROTO_CONN_RECV_MAX bytes per call; drain
 * tlsc_keyproto_conn_next() after each): advances the handshake and decrypts into the reader.
 * Returns 0 or a negative code (TLSC_KEYPROTO_EAUTH for a failed handshake); on error,
 * flush what tlsc_keyproto_conn_take() still has (an alert) and close.
 */
int tlsc_keyproto_conn_recv(tlsc_keyproto_conn_t *c, const void *buf, size_t len);
#define TLSC_KEYPROTO_CONN_RECV_MAX 16384
/** Like tlsc_keyproto_reader_next() on the decrypted stream. */
int tlsc_keyproto_conn_next(tlsc_keyproto_conn_t *c, tlsc_keyproto_msg_t *msg);
/**
 * Encrypts one message (queued until the handshake completes). Returns 0 or a negative code.
 */
int tlsc_keyproto_conn_send(tlsc_keyproto_conn_t *c, const tlsc_keyproto_msg_t *msg);
/** Sends raw plaintext bytes as if they were frames: for tests that play a hostile peer. */
int tlsc_keyproto_conn_send_raw(tlsc_keyproto_conn_t *c, const void *buf, size_t len);
/** Ciphertext bytes waiting to be written to the socket. */
size_t tlsc_keyproto_conn_pending(const tlsc_keyproto_conn_t *c);
/** Moves up to `cap` bytes of waiting ciphertext into `out`; returns how many. */
size_t tlsc_keyproto_conn_take(tlsc_keyproto_conn_t *c, void *out, size_t cap);
/** Non-zero once the TLS handshake has completed. */
int tlsc_keyproto_conn_established(const tlsc_keyproto_conn_t *c);
/** OpenSSL's reason for the last failure, for logs (never contains secrets). */
const char *tlsc_keyproto_conn_reason(const tlsc_keyproto_conn_t *c);

#endif
