#ifndef TLSC_PROXY_H
#define TLSC_PROXY_H

/*
 * The proxy handler (`--backend`): after the handshake, a connection is joined to a backend
 * picked by its route (routes.h), and bytes flow both ways until both sides are done.
 *
 * - The connect starts from the ClientHello when that already tells the route
 *   (tlsc_routes_pick_early), overlapping the handshake; nothing is sent before the handshake
 *   is done, and a handshake that never finishes drops it with the client connection (at
 *   --handshake-timeout at the latest). Otherwise it starts once the handshake is done.
 *
 * - Backends of one route are used in turn; one that refuses or does not connect within
 *   --backend-timeout is skipped for TLSC_PROXY_HOLD_MS (each worker keeps its own view) and
 *   the next is tried, each address at most once per connection; a change between up and down
 *   is logged once. When every backend failed the client gets close_notify.
 * - Half-close: the client's close_notify becomes shutdown(SHUT_WR) towards the backend; the
 *   backend's FIN becomes close_notify towards the client (in TLS 1.2 OpenSSL drops what the
 *   client sends after that; TLS 1.3 carries it). The connection closes when both are done.
 * - Backpressure: reading one side stops while the other side's write queue is above
 *   TLSC_PROXY_HIGH_WATER and starts again at or below the low-water mark, so what one proxied
 *   connection holds is bounded whatever the peers do (docs/design.md adds it up).
 * - A connection silent both ways for --idle-timeout is closed; every end is counted in the
 *   stats by cause (proxy_end_*).
 */

#include <stdint.h>

#include <uv.h>

#include "conn.h"
#include "routes.h"
#include "stats.h"

#define TLSC_PROXY_HIGH_WATER (128 * 1024) /* a write queue above this stops reading the other side */
#define TLSC_PROXY_LOW_WATER  (64 * 1024)  /* ... and at or below this reading starts again */
#define TLSC_PROXY_HOLD_MS    10000        /* a backend that failed is skipped this long */

typedef struct tlsc_proxy_s tlsc_proxy_t;

typedef struct {
    uv_loop_t *loop;
    const tlsc_routes_t *routes; /* must outlive the proxy */
    tlsc_stats_t *stats;
    unsigned connect_timeout_ms;
    unsigned idle_timeout_ms;
    int proxy_protocol; /* 1 or 2: a PROXY header goes to each backend first; 0: none */
    const char *node;   /* this node's name, for the v2 TLV of a session made here */
} tlsc_proxy_options_t;

/** A worker's proxy: resolves every TCP backend now. Returns 0, or -1 with a reason in `err`. */
int tlsc_proxy_new(const tlsc_proxy_options_t *o, tlsc_proxy_t **out, char *err, size_t errlen);
/** The connection handler for tlsc_conns_options_t; `px` must outlive every connection. */
void tlsc_proxy_handler(tlsc_proxy_t *px, tlsc_handler_t *out);
/** Frees the proxy; every proxied connection must have closed and the loop run their close callbacks. */
void tlsc_proxy_free(tlsc_proxy_t *px);

#endif
