#ifndef TLSC_STORE_REDIS_H
#define TLSC_STORE_REDIS_H

/*
 * The session store on Redis, one node or a Cluster (server/redis_cluster.c): a hash per key, HGET for a read,
 * MULTI HGET DEL EXEC for a read that takes, MULTI HSET EXPIRE EXEC for a write, DEL.
 * Every command touches a single key, so each request stays within one Redis Cluster slot.
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "redis.h"
#include "redis_cluster.h"
#include "store.h"

/** Opens a Redis link on `loop` and wraps it as a store. Returns 0 or a negative UV_E* code with `err`. */
int tlsc_store_redis_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_store_t **out, char *err, size_t errlen);

/**
 * What --store-replicas counts: WAIT answers that reached the replicas asked for, those that did
 * not, and puts sent without WAIT because the replicas were behind.
 */
typedef struct {
    uint64_t *acked;   /* WAIT said >= N replicas hold the write */
    uint64_t *short_;  /* fewer than N within WAIT's timeout, or no answer (the store fails open) */
    uint64_t *skipped; /* the replicas were behind (a short WAIT in the last second): no WAIT */
} tlsc_store_wait_counters_t;

/**
 * --store-replicas N: from now on every put of `st` is a durable write of the router
 * (tlsc_redis_cluster_send_wait): its transaction and WAIT N (4/5 of the put's timeout) on a
 * second link to the key's node — the one node, or the slot's master of a Redis Cluster — opened
 * with `o` (its label names those links in logs); the put completes once WAIT answered. WAIT
 * blocks the connection it is sent on, so lookups, which stay on the first link, never queue
 * behind it. A WAIT that comes back short (or not at all) means that node's replicas are behind:
 * for the next second puts to that node go on its first link without WAIT (counted as skipped),
 * then one put tries WAIT again. So a replica that is down or re-syncing costs one slow put per
 * second, not a queue of puts blocked behind WAITs, and on a cluster only its own shard's puts
 * skip WAIT. Returns 0 or a negative UV_E* code with `err`.
 */
int tlsc_store_redis_wait_link(tlsc_store_t *st, const tlsc_redis_options_t *o, unsigned replicas,
                               const tlsc_store_wait_counters_t *counters, char *err, size_t errlen);

/**
 * Judges EXEC's answer to a take's transaction (HGET key field, DEL key): 1 = a hit, `*value` and
 * `*len` then point into `reply`; 0 = a miss; UV_EPROTO = any other shape. Exposed for its tests.
 */
int tlsc_store_redis_take_answer(const redisReply *reply, const char **value, size_t *len);

/**
 * The router under a store made by tlsc_store_redis_new (one node's link, or a Redis Cluster's
 * masters): for requests that are not the store's, the flush watch's markers (revoke.c).
 */
tlsc_redis_cluster_t *tlsc_store_redis_router(tlsc_store_t *st);

/** How many times a store made by tlsc_store_redis_new connected to Redis (first connect included). */
uint64_t tlsc_store_redis_connects(const tlsc_store_t *st);

/** The router's counters (links, redirects, slot-map reads, masters up) of a store made by tlsc_store_redis_new. */
void tlsc_store_redis_stats(const tlsc_store_t *st, tlsc_redis_cluster_stats_t *out);

#endif
