#ifndef TLSC_SESSION_H
#define TLSC_SESSION_H

/*
 * The resumption hooks (Node's newSession / resumeSession, done with OpenSSL callbacks) on a
 * session store (store.h). A worker makes one tlsc_session_t; each connection embeds a
 * tlsc_session_hs_t and tells the hooks, through tlsc_session_io_t, how to park, resume and
 * hold back its bytes. The hooks never see the connection's socket or buffers.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "clienthello.h"
#include "config.h"
#include "l1.h"
#include "records.h"
#include "stats.h"
#include "store.h"
#include "tickets.h"
#include "tls.h"

typedef struct tlsc_session_s tlsc_session_t;

#define TLSC_SESSION_MAX_STORES 4 /* new-session writes one connection may have in flight */

/** What the hooks ask of the connection that owns a handshake. `conn` is what attach was given. */
typedef struct {
    /** The ClientHello was read: `parked` non-zero means a lookup is in flight, handshake parked. */
    void (*hello)(void *conn, int parked);
    /** The lookup ended (hit, miss or failure): drive the handshake on. */
    void (*resume)(void *conn);
    /** A new session is being stored: hold back the bytes that would reveal it. */
    void (*hold)(void *conn);
    /** The store ended (or timed out): what was held may go. */
    void (*release)(void *conn);
} tlsc_session_io_t;

typedef enum {
    TLSC_HS_FRESH,   /* the ClientHello callback has not run */
    TLSC_HS_LOOKING, /* a lookup is in flight; the callback answers RETRY */
    TLSC_HS_DECIDED, /* the callback's work is done */
} tlsc_session_phase_t;

/** One handshake's resumption state. Embedded in a connection; its fields belong to session.c. */
typedef struct {
    tlsc_session_t *owner;
    const tlsc_session_io_t *io;
    void *conn;
    tlsc_session_phase_t phase;
    tlsc_store_req_t *lookup;                          /* a store read, or the store take that confirms an L1 hit */
    tlsc_store_req_t *stores[TLSC_SESSION_MAX_STORES]; /* in send order: stores[0] is the oldest */
    unsigned n_stores;
    SSL_SESSION *fetched; /* what the lookup found, handed to OpenSSL by the get-session callback */
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    size_t id_len;
    int version;                                      /* TLS1_2_VERSION or TLS1_3_VERSION: what the looked-up ID is */
    unsigned client_tickets : 1;                      /* the ClientHello carried a session_ticket extension */
    unsigned from_l1 : 1;                             /* the session came from the node-local cache (for the access log) */
    uint64_t lookup_start_us;                         /* for the lookup latency histogram */
    uint64_t store_start_us[TLSC_SESSION_MAX_STORES]; /* parallel to stores[] */
    uint64_t l1_epoch;                                /* the L1's removal epoch when the store read started (for the fill) */
    char sni[TLSC_SNI_MAX + 1];
} tlsc_session_hs_t;

typedef struct {
    const tlsc_config_t *cfg;
    unsigned worker_id;
    tlsc_store_t *store;
    tlsc_records_t *records;
    tlsc_tickets_t *tickets; /* NULL without --keyd */
    tlsc_stats_t *stats;     /* counters to bump */
    tlsc_l1_t *l1;           /* the node-local cache in front of the store; NULL = off */
} tlsc_session_options_t;

/** Creates the hooks' shared state (copies the options). NULL when out of memory. */
tlsc_session_t *tlsc_session_new(const tlsc_session_options_t *o);
void tlsc_session_free(tlsc_session_t *s);

/** Installs the hooks on every context of `tls` (once, at start: a reload replaces the worker). */
void tlsc_session_install(tlsc_session_t *s, tlsc_tls_t *tls);

/**
 * Binds a new connection's `ssl` to `hs` (SSL app data) before its first byte is read. Returns
 * 0, or -1 when OpenSSL refused.
 */
int tlsc_session_attach(tlsc_session_t *s, tlsc_session_hs_t *hs, SSL *ssl, const tlsc_session_io_t *io, void *conn);

/** Cancels the handshake's store requests and frees what a lookup fetched; the io is not called again. */
void tlsc_session_detach(tlsc_session_hs_t *hs);

/** Non-zero when the handshake resumed (or will) a session the store returned, not a ticket. */
static inline int tlsc_session_from_store(const tlsc_session_hs_t *hs)
{
    return hs->fetched != NULL;
}

/** Non-zero when the stored session was found in the node-local cache (--local-cache), not read from Redis. */
static inline int tlsc_session_from_l1(const tlsc_session_hs_t *hs)
{
    return hs->from_l1;
}

/** The SNI the client sent ("" for none), once the ClientHello was read. */
static inline const char *tlsc_session_sni(const tlsc_session_hs_t *hs)
{
    return hs->sni;
}

#endif
