#ifndef TLSC_SEAL_H
#define TLSC_SEAL_H

/*
 * Sealed session records: a serialized SSL_SESSION encrypted with AES-256-GCM before it is
 * written to Redis, so a Redis dump alone never yields a master secret.
 *
 *   record = version u8 (1) | key name [16] | nonce [12] | ciphertext | tag [16]
 *   AAD    = version | key name | nonce | u16 len | redis key | u16 len | SNI | u16 TLS version
 *
 * The key name says which sealing key (derived per daemon key, see tlsc_tickets_seal_key) opens
 * the record, so rotation does not break records in flight. The AAD binds a record to the Redis
 * key it was written under, the SNI name and the protocol version: a record copied to another
 * key, or offered for another name, fails to open. Nonces are random (RAND_bytes); a sealing
 * key lives for one rotation period plus the ticket lifetime, far below 2^32 records.
 *
 * The caller supplies the key bytes (and, optionally, a cache for the cipher context).
 */

#include <stddef.h>
#include <stdint.h>

#define TLSC_SEAL_VERSION   1
#define TLSC_SEAL_KEY_LEN   32
#define TLSC_SEAL_NAME_LEN  16
#define TLSC_SEAL_NONCE_LEN 12
#define TLSC_SEAL_TAG_LEN   16
#define TLSC_SEAL_HEADER    (1 + TLSC_SEAL_NAME_LEN + TLSC_SEAL_NONCE_LEN)
/** Bytes a sealed record adds to the plaintext. */
#define TLSC_SEAL_OVERHEAD (TLSC_SEAL_HEADER + TLSC_SEAL_TAG_LEN)
/** Largest plaintext accepted (a serialized session is a few KiB at most). */
#define TLSC_SEAL_MAX_PLAIN 65536

#define TLSC_SEAL_EINVAL  (-1) /* bad argument, too large, or an AAD field over 65535 bytes */
#define TLSC_SEAL_ENOBUFS (-2) /* output too small */
#define TLSC_SEAL_EFORMAT (-3) /* truncated, or an unknown version */
#define TLSC_SEAL_EAUTH   (-4) /* tag mismatch: wrong key, wrong AAD, or tampered */
#define TLSC_SEAL_ECRYPTO (-5) /* OpenSSL failure */

/** What a record is bound to. `sni` may be NULL or "" for no SNI. */
typedef struct {
    const char *redis_key;
    const char *sni;
    uint16_t tls_version; /* e.g. TLS1_3_VERSION */
} tlsc_seal_aad_t;

/**
 * Seals `plain` under `key` (named `name`) into `out` (cap >= plain_len + TLSC_SEAL_OVERHEAD).
 * Returns 0 and sets `*out_len`, or a negative TLSC_SEAL_E* code.
 */
int tlsc_seal(const unsigned char key[TLSC_SEAL_KEY_LEN], const unsigned char name[TLSC_SEAL_NAME_LEN], const tlsc_seal_aad_t *aad,
              const unsigned char *plain, size_t plain_len, unsigned char *out, size_t cap, size_t *out_len);

/**
 * A cipher context kept between records (one per direction): while the key stays the same only
 * the nonce is set again, so a record costs no context allocation, key schedule or GHASH table.
 * It holds the key it was made for (to compare) and its schedule: keep it where the key itself
 * may live (the records module's locked memory) and clear it before that memory goes.
 * Zero-initialised = empty.
 */
typedef struct {
    void *ctx; /* EVP_CIPHER_CTX, NULL when empty */
    unsigned char key[TLSC_SEAL_KEY_LEN];
} tlsc_seal_cache_t;

/** tlsc_seal / tlsc_unseal through `cache` (NULL: a fresh context, as those two). */
int tlsc_seal_cached(tlsc_seal_cache_t *cache, const unsigned char key[TLSC_SEAL_KEY_LEN],
                     const unsigned char name[TLSC_SEAL_NAME_LEN], const tlsc_seal_aad_t *aad, const unsigned char *plain,
                     size_t plain_len, unsigned char *out, size_t cap, size_t *out_len);
int tlsc_unseal_cached(tlsc_seal_cache_t *cache, const unsigned char key[TLSC_SEAL_KEY_LEN], const tlsc_seal_aad_t *aad,
                       const unsigned char *rec, size_t len, unsigned char *out, size_t cap, size_t *out_len);

/** Frees the context and wipes the key copy; the cache is empty after. */
void tlsc_seal_cache_clear(tlsc_seal_cache_t *cache);

/** Reads the key name of a record without opening it; 0 or TLSC_SEAL_EFORMAT. */
int tlsc_seal_key_name(const unsigned char *rec, size_t len, unsigned char name[TLSC_SEAL_NAME_LEN]);

/**
 * Opens a record sealed under `key` into `out` (cap >= len - TLSC_SEAL_OVERHEAD). Returns 0 and
 * sets `*out_len`, or a negative code; on failure `out` holds nothing (wiped).
 */
int tlsc_unseal(const unsigned char key[TLSC_SEAL_KEY_LEN], const tlsc_seal_aad_t *aad, const unsigned char *rec, size_t len,
                unsigned char *out, size_t cap, size_t *out_len);

#endif
