#ifndef TLSC_REVOKE_H
#define TLSC_REVOKE_H

/*
 * Keeps the node-local cache (l1.h) no fresher than Redis allows (docs/protocol.md,
 * "Revocation"):
 *
 * - the master's subscriber: one Redis connection per node, subscribed to the channel
 *   "<prefix>:revoked". A message is a deleted session key ("<prefix>:sess:<hex id>": that entry
 *   is dropped) or "*" (everything is dropped). The link is pinged every second; when the
 *   subscription has not been confirmed for TLSC_REVOKE_BOUND_MS (link down, Redis stopped),
 *   the L1 stops answering until a new subscription is confirmed, which drops everything (the
 *   messages of the gap are lost).
 * - a worker's flush watch: once a second a worker reads the TTL of the node's marker hash
 *   "<prefix>:l1:<node>" (with a Redis Cluster, one marker per master:
 *   "<prefix>:l1:<node>:{tag}", the tag chosen so that the master holds its slot); when one is
 *   gone (FLUSHALL, FLUSHDB, a failover to an empty replica) the L1 is dropped and the marker
 *   written again; its TTL is renewed when under half a day, so that it never runs out.
 *
 * The subscriber runs in the master's poll loop (master.c): no event loop, no thread. With
 * rediss:// it speaks TLS (the workers' --redis-ca / --redis-cert / --redis-key, chain and host
 * name verified). With a Redis Cluster (redis-cluster://) it subscribes on one seed and moves
 * to the next seed after any failure: a PUBLISH reaches every node of a cluster, replicas
 * included.
 */

#include <poll.h>
#include <stdint.h>

#include "config.h"
#include "l1.h"
#include "redis_cluster.h"
#include "stats.h"

#define TLSC_REVOKE_BOUND_MS 3000 /* an L1 serves at most this long past a lost subscription */

typedef struct tlsc_revoke_s tlsc_revoke_t;

/** The master's subscriber for `l1` (which it suspends until the first subscription). NULL when out of memory. */
tlsc_revoke_t *tlsc_revoke_new(const tlsc_config_t *cfg, tlsc_l1_t *l1);
void tlsc_revoke_free(tlsc_revoke_t *r);

/** The descriptor to poll and its events; fd -1 when there is none now. */
struct pollfd tlsc_revoke_pollfd(const tlsc_revoke_t *r);

/** Drives the link: call after poll with the descriptor's revents (0 when it had none), and at least every 100 ms. */
void tlsc_revoke_run(tlsc_revoke_t *r, short revents, uint64_t now_ms);

/**
 * Parses one revocation message: "*" (1: drop all), or "<prefix>:sess:<hex id>" with an even
 * number of hex digits, up to TLSC_L1_ID_MAX bytes (0: the ID is in id/id_len). -1 = not one.
 */
int tlsc_revoke_parse(const char *prefix, const char *msg, size_t len, unsigned char *id, size_t *id_len);

typedef struct tlsc_revoke_watch_s tlsc_revoke_watch_t;

#define TLSC_REVOKE_NO_TAG     0xFFFFFFFFu
#define TLSC_REVOKE_TAG_SEARCH 131072 /* decimal tags below it hash to every one of the 16384 slots */

/** A worker's flush watch through `router` (the store's: tlsc_store_redis_router) for `l1`. NULL when out of memory. */
tlsc_revoke_watch_t *tlsc_revoke_watch_new(const tlsc_config_t *cfg, tlsc_redis_cluster_t *router, tlsc_l1_t *l1,
                                           tlsc_stats_t *stats);
/** Checks the markers (once a second, from the worker's tick); with a cluster, follows its slot map first. */
void tlsc_revoke_watch_tick(tlsc_revoke_watch_t *w);

/**
 * The flush watch's hash tags for a slot map: owner[s] is the number (0..n-1) of slot s's
 * master, or 0xFF (tlsc_redis_cluster_partition). tags[i] gets the smallest decimal number below
 * TLSC_REVOKE_TAG_SEARCH whose key slot master i holds, or TLSC_REVOKE_NO_TAG. Returns how many
 * masters got one (n, unless a master holds no slot at all).
 */
size_t tlsc_revoke_watch_tags(const uint8_t *owner, size_t n, unsigned *tags);

/** Cancels what is in flight and frees (NULL is fine). Call before the store closes. */
void tlsc_revoke_watch_free(tlsc_revoke_watch_t *w);

#endif
