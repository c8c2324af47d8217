#ifndef TLSC_RECORDS_H
#define TLSC_RECORDS_H

/*
 * Session records: the one place that turns an SSL_SESSION into what the store holds and back,
 * and that chooses the sealing key (docs/protocol.md, "Session records").
 *
 * - With a key secret (--keyd-secret-file) every record is sealed (AES-256-GCM, proto/seal.c):
 *   under the daemon's current key when one is held, else under today's fallback key derived
 *   from the cluster secret (one key per UTC day; a record opens for two days after). Only sealed records are accepted then; a
 * plain one planted in the store is refused.
 * - Without one, records are plain DER (proto/record.c) and only plain ones are accepted.
 *
 * The pure codecs stay in proto/ (fuzzable, shared with tests); this module holds the policy.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "seal.h"
#include "tickets.h"

typedef struct tlsc_records_s tlsc_records_t;

/** Why a record did not decode (0 = it did). */
typedef enum {
    TLSC_RECORDS_OK = 0,
    TLSC_RECORDS_EUNKNOWN_KEY = -1, /* sealed under a key this worker does not hold (expired, or another cluster) */
    TLSC_RECORDS_EPLAIN = -2,       /* plain, while this worker seals: refused */
    TLSC_RECORDS_ESEALED = -3,      /* sealed, while this worker has no key secret */
    TLSC_RECORDS_EVERSION = -4,     /* an unknown record or seal format version */
    TLSC_RECORDS_EAUTH = -5,        /* does not open: tampered, or bound to another key/SNI/version */
    TLSC_RECORDS_EDECODE = -6,      /* opens, but is not the session asked for */
    TLSC_RECORDS_ENOMEM = -7,
    TLSC_RECORDS_EFOREIGN = -8, /* under the fallback key, but does not open: another cluster secret, or tampered */
} tlsc_records_err_t;

/**
 * Creates the record codec. `tickets` (may be NULL) holds the daemon's keys; `secret_file`
 * (NULL: records are plain) is the cluster secret the fallback sealing key is derived from.
 * Returns 0, or -1 with a message naming the file in `err`.
 */
int tlsc_records_new(tlsc_tickets_t *tickets, const char *secret_file, tlsc_records_t **out, char *err, size_t errlen);

/** Replaces the wall clock (seconds since the epoch) that picks the fallback day key; for tests. */
void tlsc_records_set_clock(tlsc_records_t *r, uint64_t (*now)(void *), void *data);

/** Wipes the keys and frees (NULL is fine). */
void tlsc_records_free(tlsc_records_t *r);

/** Non-zero when records are sealed. */
int tlsc_records_sealed(const tlsc_records_t *r);

/**
 * Serializes `sess` into a record bound to `aad` (its tls_version is taken from the session).
 * Returns 0 with a malloc'ed record in *out (free with tlsc_secure_free), or a negative code.
 */
int tlsc_records_encode(tlsc_records_t *r, SSL_SESSION *sess, tlsc_seal_aad_t *aad, unsigned char **out, size_t *outlen);

/**
 * Opens a record read back for session `id` of protocol `version` (bound to `aad`). Returns 0
 * with the session in *out (the caller owns it), or a negative TLSC_RECORDS_E* code.
 */
int tlsc_records_decode(tlsc_records_t *r, const unsigned char *rec, size_t len, const tlsc_seal_aad_t *aad,
                        const unsigned char *id, size_t id_len, int version, SSL_SESSION **out);

/** A short text for a TLSC_RECORDS_E* code. */
const char *tlsc_records_strerror(int code);

#endif
