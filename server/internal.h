#ifndef TLSC_SERVER_INTERNAL_H
#define TLSC_SERVER_INTERNAL_H

/*
 * Structures shared by the worker's files (worker.c: loop, sockets, HTTP; session.c: the
 * resumption hooks). Not a public API.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "clienthello.h"
#include "config.h"
#include "keyd.h"
#include "redis.h"
#include "stats.h"
#include "tickets.h"
#include "tls.h"

typedef struct tlsc_worker_s tlsc_worker_t;
typedef struct tlsc_conn_s tlsc_conn_t;

typedef enum {
    TLSC_CONN_HELLO,     /* waiting for / parsing the ClientHello */
    TLSC_CONN_LOOKUP,    /* Redis read in flight, handshake parked */
    TLSC_CONN_HANDSHAKE, /* OpenSSL drives the rest of the handshake */
    TLSC_CONN_OPEN,      /* reading the HTTP request, writing the reply */
    TLSC_CONN_CLOSING,
} tlsc_conn_state_t;

#define TLSC_MAX_STORES 4 /* new-session writes one connection may have in flight */
#define TLSC_HTTP_MAX   8192

struct tlsc_conn_s {
    tlsc_worker_t *worker;
    tlsc_conn_t *prev, *next; /* worker's list, for drain and the deadline sweep */
    uv_tcp_t tcp;
    SSL *ssl;
    BIO *rbio, *wbio;
    tlsc_conn_state_t state;
    uint64_t deadline_ms;
    unsigned writes_pending;
    unsigned stores_pending;
    tlsc_redis_req_t *lookup_req;
    tlsc_redis_req_t *store_reqs[TLSC_MAX_STORES];
    SSL_SESSION *fetched; /* the session a lookup returned, handed to OpenSSL by on_get_session */
    unsigned char lookup_id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    size_t lookup_id_len;
    int lookup_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
    unsigned hello_done : 1;
    unsigned reply_sent : 1;
    unsigned client_tickets : 1; /* the ClientHello carried a session_ticket extension */
    char sni[TLSC_SNI_MAX + 1];
    size_t req_len;
    char req[TLSC_HTTP_MAX];
};

struct tlsc_worker_s {
    uv_loop_t loop;
    const tlsc_config_t *cfg;
    tlsc_tls_t *tls;
    unsigned id;
    int pid; /* cached: the reply names it on every request */
    uv_tcp_t *listeners;
    size_t n_listeners;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick;   /* once a second: stats, deadlines */
    uv_timer_t warmup; /* until Redis is reached (bounded): accept nothing yet */
    uint64_t warmup_until_ms;
    tlsc_redis_t *redis;
    tlsc_tickets_t *tickets; /* ticket keys and record sealing keys; NULL without --keyd */
    tlsc_keyd_t *keyd;
    int master_link; /* relays applied key sets to the master, or -1 */
    /*
     * Seals records while no daemon key is held (daemon not reached yet): derived from the
     * cluster secret, so Redis never holds a readable session even then.
     */
    unsigned char fallback_seal_key[32];
    tlsc_conn_t *conns;
    size_t n_conns;
    int draining;
    uint64_t drain_deadline_ms;
    tlsc_stats_t stats;
    int stats_inflight;
    unsigned char sid_ctx_default[SSL_MAX_SID_CTX_LENGTH];
    struct {
        char sni[TLSC_SNI_MAX + 1]; /* "" = empty slot */
        unsigned char sid_ctx[SSL_MAX_SID_CTX_LENGTH];
    } sid_cache[32];      /* SNI -> session ID context, so a handshake rarely hashes */
    char sess_prefix[96]; /* "<prefix>:sess:" */
    char readbuf[65536];
};

/** Installs the resumption hooks on every context of `tls` for worker `w`. */
void tlsc__session_install(tlsc_worker_t *w, tlsc_tls_t *tls);
/** Detaches the connection's Redis requests and frees its fetched session (before freeing it). */
void tlsc__session_conn_release(tlsc_conn_t *c);
/** Continues a connection's TLS work (defined in worker.c; called when a lookup or store ends). */
void tlsc__conn_drive(tlsc_conn_t *c);

#endif
