#ifndef TLSC_ROUTES_H
#define TLSC_ROUTES_H

/*
 * Proxy routes: which backends a connection goes to, from `--backend [MATCH=]ADDR` values.
 * MATCH is `sni:NAME` (a name, or `*.example.com` matching exactly one more label, as a
 * certificate's wildcard does; case-insensitive) or `alpn:PROTO` (the protocol the handshake
 * selected); no MATCH is the default route. Values with the same MATCH make one route whose
 * addresses are used in turn. A connection takes the first of: an exact SNI route, a
 * wildcard SNI route, an ALPN route, the default route. Pure: no sockets, no resolution.
 */

#include <stddef.h>

#include "addr.h"

#define TLSC_ROUTES_MAX       64  /* distinct MATCHes */
#define TLSC_ROUTES_ADDRS_MAX 64  /* addresses of one MATCH */
#define TLSC_ROUTES_MATCH_MAX 255 /* an SNI name or ALPN protocol */

typedef enum {
    TLSC_ROUTE_DEFAULT,
    TLSC_ROUTE_SNI,
    TLSC_ROUTE_ALPN,
} tlsc_route_kind_t;

typedef struct {
    tlsc_route_kind_t kind;
    char match[TLSC_ROUTES_MATCH_MAX + 1]; /* SNI name or pattern (lower case), or ALPN protocol */
    tlsc_addr_t *addrs;
    size_t n_addrs;
} tlsc_route_t;

typedef struct {
    tlsc_route_t *routes;
    size_t n;
} tlsc_routes_t;

/** Adds one `--backend` value. Returns 0, or -1 with a reason in `err` that does not repeat the input. */
int tlsc_routes_add(tlsc_routes_t *rs, const char *spec, char *err, size_t errlen);

/** The route for a connection (`sni` "" for none, `alpn` of `alpn_len` bytes, may be NULL); NULL when none matches. */
const tlsc_route_t *tlsc_routes_pick(const tlsc_routes_t *rs, const char *sni, const unsigned char *alpn, size_t alpn_len);

/**
 * The route for a connection whose ALPN is not selected yet (from its ClientHello), when the
 * choice cannot depend on it: an SNI route, or the default route when no ALPN route exists.
 * NULL otherwise (the route is known only after the handshake).
 */
const tlsc_route_t *tlsc_routes_pick_early(const tlsc_routes_t *rs, const char *sni);

/** Whether `name` matches the SNI `pattern` (exact, or `*.` standing for exactly one label), ignoring case. */
int tlsc_routes_sni_match(const char *pattern, const char *name);

/** Writes a route's MATCH as given ("sni:NAME", "alpn:PROTO" or "default"). */
void tlsc_routes_describe(const tlsc_route_t *r, char *out, size_t outlen);

/** Frees every route (the struct itself is the caller's). */
void tlsc_routes_free(tlsc_routes_t *rs);

#endif
