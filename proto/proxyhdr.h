#ifndef TLSC_PROXYHDR_H
#define TLSC_PROXYHDR_H

/*
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that tells a
 * backend who the client is. Pure encoders: bytes out, no sockets. Every string that goes into
 * a v2 TLV is bounded (TLSC_PROXYHDR_STR_MAX) before it is copied; the output buffer's size is
 * checked too.
 *
 * The v2 TLVs sent (type, value):
 *   0x01 PP2_TYPE_ALPN       the selected ALPN protocol (omitted without ALPN)
 *   0x02 PP2_TYPE_AUTHORITY  the SNI host name (omitted without SNI)
 *   0x20 PP2_TYPE_SSL        client = PP2_CLIENT_SSL (0x01), verify = 1 (no client
 *                            certificate was verified), then sub-TLVs
 *                            0x21 PP2_SUBTYPE_SSL_VERSION ("TLSv1.3") and
 *                            0x23 PP2_SUBTYPE_SSL_CIPHER (OpenSSL's name)
 *   0xE0 (custom range)      tlscache's resumption facts: one byte, 0x01 when the session
 *                            was resumed and 0x00 when the handshake was full, then the name
 *                            of the node that made the session (may be empty: not known)
 */

#include <stddef.h>
#include <stdint.h>

#define TLSC_PROXYHDR_V1_MAX       108  /* the longest v1 line, with its CRLF */
#define TLSC_PROXYHDR_V2_MAX       1536 /* every TLV string at its longest fits */
#define TLSC_PROXYHDR_STR_MAX      255  /* a TLV string (SNI, ALPN, version, cipher, node) */
#define TLSC_PROXYHDR_TLV_TLSCACHE 0xE0

/** Both ends of the client's TCP connection, as the proxy saw them. */
typedef struct {
    int family;                     /* 4, 6, or 0 when unknown (v1 "UNKNOWN", v2 LOCAL) */
    unsigned char src[16], dst[16]; /* network order; 4 bytes used for IPv4 */
    uint16_t sport, dport;          /* host order */
} tlsc_proxyhdr_addrs_t;

/** What the handshake negotiated, for the v2 TLVs. NULL or "" strings are left out. */
typedef struct {
    const char *version; /* "TLSv1.3" */
    const char *cipher;  /* "TLS_AES_128_GCM_SHA256" */
    const char *sni;
    const unsigned char *alpn;
    size_t alpn_len;
    int resumed;
    const char *origin_node; /* the node that made the session; NULL or "" when not known */
} tlsc_proxyhdr_tls_t;

#define TLSC_PROXYHDR_IN_MAX 4096 /* the longest header accepted from a load balancer (v2 TLVs included) */

/**
 * Parses a v1 or v2 header at the start of `buf` (`--accept-proxy`), strictly: v1 is
 * "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" with single spaces, addresses inet_pton accepts
 * for the family, ports 0..65535 without leading zeros, at most 107 bytes; or "PROXY UNKNOWN"
 * up to the CRLF. v2 must be version 2, command LOCAL or PROXY, a known family, long enough for
 * its addresses, with TLVs that tile the rest exactly, and at most TLSC_PROXYHDR_IN_MAX bytes.
 * A LOCAL header, UNKNOWN, or a family other than TCP gives `family` 0 (use the socket's own).
 * Returns the header's length (> 0), 0 when `buf` is a valid beginning that needs more bytes,
 * or -1 when it is not a valid header.
 */
int tlsc_proxyhdr_parse(const unsigned char *buf, size_t len, tlsc_proxyhdr_addrs_t *out);

/** Writes a v1 line into `out`. Returns its length, or -1 when `cap` is too small. */
int tlsc_proxyhdr_v1(const tlsc_proxyhdr_addrs_t *a, char *out, size_t cap);

/** Writes a v2 header with the TLVs above into `out`. Returns its length, or -1 when a string is too long or `cap` too small. */
int tlsc_proxyhdr_v2(const tlsc_proxyhdr_addrs_t *a, const tlsc_proxyhdr_tls_t *t, unsigned char *out, size_t cap);

#endif
