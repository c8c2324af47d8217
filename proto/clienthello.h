#ifndef TLSC_CLIENTHELLO_H
#define TLSC_CLIENTHELLO_H

/*
 * Pure parsers for the two ClientHello extensions the resumption path reads before OpenSSL
 * decides: server_name (RFC 6066 §3) and pre_shared_key (RFC 8446 §4.2.11). Input is the
 * extension body as SSL_client_hello_get0_ext() returns it; every length is checked against
 * the bytes that remain before it is used.
 */

#include <stddef.h>

#define TLSC_SNI_MAX 255 /* a DNS name is at most 253 octets; the field allows 2^16 */

/**
 * Extracts the host_name from a server_name extension body into `out` (NUL-terminated,
 * lowercased). Returns 0, or -1 when the body is malformed, has no host_name, is longer than
 * TLSC_SNI_MAX, or holds a NUL or a byte that cannot be in a host name.
 */
int tlsc_clienthello_sni(const unsigned char *ext, size_t len, char out[TLSC_SNI_MAX + 1]);

/**
 * Points `*id`/`*id_len` at the first PSK identity of a pre_shared_key extension body (inside
 * `ext`, no copy). Returns 0, or -1 when the body is malformed or holds no identity.
 */
int tlsc_clienthello_psk_identity(const unsigned char *ext, size_t len, const unsigned char **id, size_t *id_len);

#endif
