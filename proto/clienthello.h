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

/*
 * Why a parser refused its input, so that the caller sends the alert RFC 8446 §6.2 asks for:
 * a length that does not fit its container, a vector shorter than its minimum or an odd length
 * where pairs are required is a decode_error; a value that parses but cannot be used (a byte
 * that cannot be in a host name, a name longer than any DNS name) is an illegal_parameter.
 */
#define TLSC_CH_DECODE_ERROR      (-1) /* -> SSL_AD_DECODE_ERROR (50) */
#define TLSC_CH_ILLEGAL_PARAMETER (-2) /* -> SSL_AD_ILLEGAL_PARAMETER (47) */

/**
 * Extracts the host_name from a server_name extension body into `out` (NUL-terminated,
 * lowercased). Returns 0; TLSC_CH_DECODE_ERROR when a length is inconsistent (the list
 * against the body, a name against the list) or a vector is empty; TLSC_CH_ILLEGAL_PARAMETER
 * when the list has no host_name, or the name is longer than TLSC_SNI_MAX or holds a NUL or a
 * byte that cannot be in a host name.
 */
int tlsc_clienthello_sni(const unsigned char *ext, size_t len, char out[TLSC_SNI_MAX + 1]);

/**
 * Reads a supported_versions extension body (RFC 8446 §4.2.1: ProtocolVersion
 * versions<2..254>). Returns 1 when it lists TLS 1.3 (0x0304), 0 when not, or
 * TLSC_CH_DECODE_ERROR when the length byte disagrees with the body, is odd or is below 2.
 */
int tlsc_clienthello_offers_tls13(const unsigned char *ext, size_t len);

/**
 * Points `*id`/`*id_len` at the first PSK identity of a pre_shared_key extension body (inside
 * `ext`, no copy). Returns 0, or -1 when the body is malformed or holds no identity.
 */
int tlsc_clienthello_psk_identity(const unsigned char *ext, size_t len, const unsigned char **id, size_t *id_len);

#endif
