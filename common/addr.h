#ifndef TLSC_ADDR_H
#define TLSC_ADDR_H

/*
 * The one parser for the addresses every binary takes (--listen, --keyd, --target, the host
 * part of a redis:// URL) and for unsigned numbers in flags. Both are pure: no name
 * resolution, no sockets, every length bounded before anything is copied. Error reasons
 * never quote the input, so the caller decides how (and whether) to show it.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TLSC_ADDR_HOST_MAX 253 /* a DNS name is at most 253 octets */
#define TLSC_ADDR_PATH_MAX 107 /* sizeof(sun_path) - 1 on Linux */

typedef enum {
    TLSC_ADDR_TCP = 1,
    TLSC_ADDR_UNIX = 2,
} tlsc_addr_kind_t;

enum {
    TLSC_ADDR_ALLOW_UNIX = 1,    /* "unix:PATH" is accepted */
    TLSC_ADDR_ALLOW_ANY = 2,     /* an empty host or "*" means any address (host becomes "") */
    TLSC_ADDR_PORT_OPTIONAL = 4, /* "HOST" alone takes `default_port` */
};

typedef struct {
    tlsc_addr_kind_t kind;
    char host[TLSC_ADDR_HOST_MAX + 1]; /* name, IPv4, or IPv6 without brackets; "" = any */
    int is_v6;                         /* host was given in brackets */
    unsigned port;                     /* 1..65535 */
    char port_str[6];                  /* the port in canonical decimal, for getaddrinfo */
    char path[TLSC_ADDR_PATH_MAX + 1]; /* for TLSC_ADDR_UNIX */
} tlsc_addr_t;

/**
 * Parses the `len` bytes at `s`: HOST:PORT, [V6]:PORT, or (with TLSC_ADDR_ALLOW_UNIX)
 * unix:PATH (but "unix:" and digits only is the TCP host "unix" with that port). A host is [A-Za-z0-9._-] up to 253 bytes; a
 * bracketed one must be an IPv6 address; the port is 1..65535 with no sign, spaces or trailing bytes. Returns 0, or -1 with a
 * reason in `err` that does not repeat the input.
 */
int tlsc_addr_parse(const char *s, size_t len, unsigned flags, unsigned default_port, tlsc_addr_t *out, char *err, size_t errlen);

/** tlsc_addr_parse on a NUL-terminated string. */
int tlsc_addr_parse_str(const char *s, unsigned flags, tlsc_addr_t *out, char *err, size_t errlen);

#define TLSC_ADDR_BUCKET_LEN 46 /* INET6_ADDRSTRLEN: room for any bucket's text */

/**
 * The fairness bucket of a peer address, as text: an IPv4 address is its own bucket
 * ("192.0.2.7"), and so is an IPv4-mapped IPv6 one ("::ffff:192.0.2.7" gives "192.0.2.7");
 * any other IPv6 address counts by its /64 ("2001:db8:1:2::/64"), the smallest block a site
 * is given, so one host cannot make itself many peers. Returns 0, or -1 for another family or
 * an `out` shorter than TLSC_ADDR_BUCKET_LEN.
 */
int tlsc_addr_bucket(const struct sockaddr *sa, char *out, size_t outlen);

/** Writes "host:port", "[v6]:port", "*:port" or "unix:PATH". */
void tlsc_addr_format(const tlsc_addr_t *a, char *out, size_t outlen);

/**
 * Parses the `len` bytes at `s` as a plain decimal number in min..max: digits only (no sign,
 * no spaces, no "0x"), at least one, overflow refused. Returns 0 or -1.
 */
int tlsc_parse_uint_n(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);

/** tlsc_parse_uint_n on a NUL-terminated string. */
int tlsc_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/** tlsc_parse_uint for an `unsigned` destination (max must fit). */
int tlsc_parse_uint32(const char *s, unsigned min, unsigned max, unsigned *out);

#endif
