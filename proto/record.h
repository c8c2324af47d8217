#ifndef TLSC_RECORD_H
#define TLSC_RECORD_H

/*
 * The `der` field of a session hash in Redis (<prefix>:sess:<hex id>):
 *
 *   byte 0      format: TLSC_RECORD_PLAIN (DER of the SSL_SESSION follows) or
 *               TLSC_RECORD_SEALED (a proto/seal.h envelope follows)
 *   bytes 1..   payload, at most TLSC_RECORD_MAX bytes in all
 *
 * Decoding never trusts Redis: the length is bounded, the DER must parse completely, and the
 * session inside must carry the ID it was looked up by and the expected TLS version, so a
 * record copied to another key, or planted garbage, is a miss and never a resumption.
 */

#include <stddef.h>

#include <openssl/ssl.h>

#define TLSC_RECORD_PLAIN  0x50 /* 'P' */
#define TLSC_RECORD_SEALED 0x53 /* 'S' */
#define TLSC_RECORD_MAX    16384

/** Serializes `sess` as a plain record into a new buffer (caller frees, wiping). Returns 0 or -1. */
int tlsc_record_encode_plain(SSL_SESSION *sess, unsigned char **out, size_t *outlen);

/**
 * Parses a plain DER payload (without the format byte) and checks that the session has ID
 * `id` and protocol version `version` (0 = any). Returns a new SSL_SESSION or NULL.
 */
SSL_SESSION *tlsc_record_decode_der(const unsigned char *der, size_t len, const unsigned char *id, size_t id_len, int version);

#endif
