#ifndef TLSC_TICKETS_H
#define TLSC_TICKETS_H

/*
 * The ticket keys a worker (or the master) holds, and OpenSSL's ticket key callback on top.
 *
 * A holder receives key sets from tlscache-daemon (server/keyd.c) and merges them by key name;
 * a key leaves only when its not_after passes. The key that encrypts is chosen by clock — the
 * one with the latest not_before <= now that has not expired — so every worker switches at the
 * same moment without a message (docs/keys.md explains why every worker already holds it).
 * No usable key → no ticket is issued (never an expired key); resumption goes on through the
 * Redis cache.
 *
 * Keys live in one locked, non-dumpable allocation and are wiped when dropped. Not thread-safe:
 * one holder per event loop.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "keyproto.h"

typedef struct tlsc_tickets_s tlsc_tickets_t;

#define TLSC_TICKETS_MAX 128 /* keys held at once; the oldest-expiring go first */

/*
 * The longest a key may live (not_after - not_before), unless tlsc_tickets_set_max_life()
 * says otherwise: the daemon's own hard cap on --rotate + --ticket-lifetime (7 days, RFC 8446
 * §4.6.1). A key may also start at most that long (plus clock skew) after now.
 */
#define TLSC_TICKETS_MAX_LIFE_DEFAULT 604800u
#define TLSC_TICKETS_SKEW_SEC         300u

#define TLSC_TICKETS_ESTALE (-1) /* a pushed set's epoch is not above the last one applied */
#define TLSC_TICKETS_EINVAL (-2) /* an invalid set, or a known name with a different secret */
#define TLSC_TICKETS_ENOENT (-3) /* no such key / no current key */
#define TLSC_TICKETS_ENOMEM (-4)

typedef struct {
    uint64_t issued;      /* tickets encrypted (new and renewed) */
    uint64_t decrypted;   /* tickets opened with a held key */
    uint64_t renewed;     /* ... of which were under a key that no longer encrypts */
    uint64_t unknown_key; /* tickets naming a key not held (or expired): full handshake */
    uint64_t no_key;      /* tickets not issued because no key was usable */
} tlsc_tickets_stats_t;

/** Returns a new, empty holder or NULL. `now` is a wall-clock source (NULL: time(2)). */
tlsc_tickets_t *tlsc_tickets_new(uint64_t (*now)(void *), void *now_data);

/** Wipes every key and frees the holder (NULL is fine). Uninstall from contexts first. */
void tlsc_tickets_free(tlsc_tickets_t *t);

/**
 * Bounds the keys this holder accepts: a key living longer than `sec` (the daemon's --rotate +
 * --ticket-lifetime), or starting more than `sec` + TLSC_TICKETS_SKEW_SEC after now, makes
 * tlsc_tickets_apply() refuse its whole set; keys already held outside the bound are dropped.
 * 0 restores TLSC_TICKETS_MAX_LIFE_DEFAULT.
 */
void tlsc_tickets_set_max_life(tlsc_tickets_t *t, unsigned sec);

/**
 * Applies a key set atomically: all keys merged or none. A `pushed` set (a KEYSET from the
 * daemon) must have an epoch above the last pushed one (else TLSC_TICKETS_ESTALE, nothing
 * changes); a set that is not pushed (the master's copy handed to a new worker) merges whatever
 * its epoch. Keys already expired are skipped; a key outside the bounds of
 * tlsc_tickets_set_max_life() refuses the set (TLSC_TICKETS_EINVAL). Returns 0 or a negative
 * TLSC_TICKETS_E* code.
 */
int tlsc_tickets_apply(tlsc_tickets_t *t, const tlsc_keyproto_keyset_t *set, int pushed);

/** Drops keys whose not_after has passed; returns how many are left. Called by apply/encrypt. */
size_t tlsc_tickets_expire(tlsc_tickets_t *t);

/**
 * Copies the unexpired keys (roles as of now) and the last epoch into `out`, for a HELLO to the
 * daemon or for the master to hand to a worker. At most TLSC_KEYPROTO_MAX_KEYS, the latest
 * not_after first. `out` then holds secrets: wipe it with OPENSSL_cleanse.
 */
void tlsc_tickets_export(tlsc_tickets_t *t, tlsc_keyproto_keyset_t *out);

/** Number of unexpired keys held; 0 means no tickets are issued. */
size_t tlsc_tickets_count(tlsc_tickets_t *t);
/** Epoch of the last pushed set applied (0 before any). */
uint64_t tlsc_tickets_epoch(const tlsc_tickets_t *t);
/** The current (encrypting) key's not_before and not_after, never its bytes; TLSC_TICKETS_ENOENT if none. */
int tlsc_tickets_current_window(tlsc_tickets_t *t, uint64_t *not_before, uint64_t *not_after);
/** Copies the counters. */
void tlsc_tickets_stats(const tlsc_tickets_t *t, tlsc_tickets_stats_t *out);

/**
 * Installs the ticket key callback on `ctx` (call for every SSL_CTX a connection can switch to
 * by SNI). The holder must outlive the context's use; tlsc_tickets_uninstall() detaches it.
 */
int tlsc_tickets_install(tlsc_tickets_t *t, SSL_CTX *ctx);
/** Detaches the holder: the context then issues no tickets and accepts none. */
void tlsc_tickets_uninstall(SSL_CTX *ctx);

/**
 * The sealing key for session records under key `name` (docs/protocol.md: HKDF with
 * "tlscache session seal v1"). Returns 0, or TLSC_TICKETS_ENOENT when that key is not held or
 * has expired — a record sealed under it is then a miss.
 */
int tlsc_tickets_seal_key(tlsc_tickets_t *t, const unsigned char name[TLSC_KEYPROTO_NAME_LEN], unsigned char key[32]);

/** The current key's name and sealing key, for sealing a new record; TLSC_TICKETS_ENOENT if none. */
int tlsc_tickets_current_seal_key(tlsc_tickets_t *t, unsigned char name[TLSC_KEYPROTO_NAME_LEN], unsigned char key[32]);

/**
 * The callback itself, exposed for tests: OpenSSL's SSL_CTX_set_tlsext_ticket_key_evp_cb
 * contract (enc: 1 = ticket made, 0 = no ticket; decrypt: 1 = ok, 2 = ok and renew, 0 = unknown
 * key, -1 = error).
 */
int tlsc_tickets_key_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc);

#endif
