#ifndef TLSC_SENTINEL_H
#define TLSC_SENTINEL_H

/*
 * This file's one job: know where a Sentinel-watched master is — ask the sentinels
 * (SENTINEL get-master-addr-by-name), follow +switch-master on a subscribed link to one of
 * them, and ask again when told the address is wrong.
 *
 * One link to one sentinel at a time (a tlsc_dial_t that goes through the list in turn, one
 * sentinel per attempt): on connect it sends the question and SUBSCRIBE +switch-master in one
 * write; the answer names the master, the subscription then reports every switch. In RESP2 a
 * subscribed link can ask nothing more, so asking again (tlsc_sentinel_stale) reconnects,
 * quietly, to the next sentinel. A PING a second keeps a silent sentinel from holding us: no answer
 * within 2 s and the link goes to the next one.
 *
 * With url->tls the link runs TLS (each sentinel's certificate verified against its host in
 * the URL), and with url->sentinel_password it says AUTH [sentinel_user] first.
 *
 * Everything a sentinel says is hostile: replies go through the bounded reader (redis.h),
 * and an address must be 1..253 bytes of [A-Za-z0-9.:_-] with a port in 1..65535.
 */

#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "redis_url.h"

typedef struct tlsc_sentinel_s tlsc_sentinel_t;

/** The sentinels named the master's address, first or anew; `host` is valid during the call. */
typedef void (*tlsc_sentinel_cb)(const char *host, unsigned port, void *data);

typedef struct {
    const tlsc_redis_url_t *url; /* its sentinels, master_name, tls and sentinel_user/sentinel_password (copied) */
    SSL_CTX *tls_ctx;            /* rediss-sentinel://: the context (tlsc_redis_tls_ctx_new), shared; required with url->tls */
    unsigned timeout_ms;         /* connect and answer timeout; default 1000 */
    tlsc_sentinel_cb on_master;
    void *data;
} tlsc_sentinel_options_t;

/** Starts asking. Returns 0, UV_EINVAL (no sentinels or master name, or TLS without a context) or UV_ENOMEM. */
int tlsc_sentinel_new(uv_loop_t *loop, const tlsc_sentinel_options_t *o, tlsc_sentinel_t **out);

/** The master's address the sentinels named last: 0 with *host (valid until the next loop turn) and *port, or -1. */
int tlsc_sentinel_master(const tlsc_sentinel_t *s, const char **host, unsigned *port);

/**
 * The address named is wrong for `why` (unreachable, a replica by ROLE, a READONLY reply):
 * ask again (a quiet reconnect to the next sentinel), and pass the answer on even when it names
 * the same address. The address stays the answer until the sentinels name another. At most one
 * new question per 200 ms.
 */
void tlsc_sentinel_stale(tlsc_sentinel_t *s, const char *why);

/** Times the sentinels named a master other than the one before (the first answer included). */
uint64_t tlsc_sentinel_switches(const tlsc_sentinel_t *s);

/** Stops; no callback runs after this. The memory goes once the loop closed the handles. */
void tlsc_sentinel_close(tlsc_sentinel_t *s);

#endif
