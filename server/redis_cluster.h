#ifndef TLSC_REDIS_CLUSTER_H
#define TLSC_REDIS_CLUSTER_H

/*
 * This file's one job: send a request for a key to the Redis that holds it — the one node of
 * redis:// / rediss:// / unix:, or the master of the key's hash slot in a Redis Cluster
 * (redis-cluster://). The store (store_redis.c) sees only "send for key"; which node that is,
 * and following the cluster as it moves slots and fails over, is this module's.
 *
 * Cluster mode:
 * - the slot map is read with CLUSTER SHARDS (Redis 7), or CLUSTER SLOTS where SHARDS is
 *   unknown, from any node that answers (the seeds of the URL at first); it is read again
 *   after a MOVED, a CLUSTERDOWN, a failed link, and every TLSC_REDIS_CLUSTER_REFRESH_MS, with
 *   at most one read in flight and at least TLSC_REDIS_CLUSTER_REFRESH_MIN_MS between two;
 * - one pipelined link (redis.c) per master, AUTH as the URL says; under --store-replicas a
 *   second one per master for durable writes and their WAITs (see tlsc_redis_cluster_send_wait);
 * - a key's slot is CRC16-XMODEM of the key (or of its {hash tag}) mod 16384;
 * - MOVED points the slot at the named node and resends there; ASK resends once to the named
 *   node after ASKING (inside the same pipeline, so MULTI...EXEC stays whole); a request is
 *   redirected at most TLSC_REDIS_CLUSTER_REDIRECTS_MAX times, within its first deadline;
 * - every key of every command of a request must hash to the key's slot: a request that does
 *   not is refused (UV_EINVAL, logged, counted), never sent;
 * - ready means a map covers all 16384 slots and every master's link answers.
 *
 * A slot map is a reply from Redis and is hostile: slots are 0..16383, at most
 * TLSC_REDIS_CLUSTER_NODES_MAX masters, a host at most 253 bytes of [A-Za-z0-9.:_-], a port
 * 1..65535; a map past a bound is refused whole (the old one stays).
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "redis.h"

#define TLSC_REDIS_CLUSTER_SLOTS          16384
#define TLSC_REDIS_CLUSTER_NODES_MAX      128 /* masters one slot map may name */
#define TLSC_REDIS_CLUSTER_HOST_MAX       253
#define TLSC_REDIS_CLUSTER_REDIRECTS_MAX  3
#define TLSC_REDIS_CLUSTER_REFRESH_MS     5000
#define TLSC_REDIS_CLUSTER_REFRESH_MIN_MS 100

typedef struct tlsc_redis_cluster_s tlsc_redis_cluster_t;
typedef struct tlsc_redis_cluster_req_s tlsc_redis_cluster_req_t;

/** What the router counted, for metrics. Single-node mode fills connects and masters (1). */
typedef struct {
    uint64_t connects;                   /* times a link became ready, all links (first connects included) */
    uint64_t links;                      /* links ever opened */
    uint64_t moved, ask;                 /* redirects followed */
    uint64_t refreshes;                  /* slot maps read and applied */
    uint64_t refresh_fails;              /* reads that failed or gave a map past the bounds */
    uint64_t refused;                    /* requests refused because their keys span slots */
    uint64_t requests, commands, writes; /* every link's (tlsc_redis_io), closed links' included */
    unsigned masters;                    /* masters in the current map */
    unsigned masters_up;                 /* of those, links that answer */
} tlsc_redis_cluster_stats_t;

/**
 * Opens the link(s) for o->url: one tlsc_redis_t for a one-node URL, the seeds and then the
 * masters for redis-cluster://. Returns 0, or a negative UV_E* code with a reason in `err`.
 */
int tlsc_redis_cluster_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_redis_cluster_t **out, char *err, size_t errlen);

/**
 * Sends `ncmds` commands as one pipelined request to the node that holds `key` (the contract
 * of tlsc_redis_send: the callback gets the last reply, or an error that caused a
 * transaction's abort, or a negative UV_E* status; NULL with *status_out on an immediate
 * failure, and then no callback). A MOVED or ASK is followed here, not shown to the callback.
 */
tlsc_redis_cluster_req_t *tlsc_redis_cluster_send(tlsc_redis_cluster_t *c, const char *key, size_t key_len, size_t ncmds,
                                                  const int *argc, const char *const *const *argv, const size_t *const *argvlen,
                                                  unsigned timeout_ms, tlsc_redis_cb cb, void *data, int *status_out);

/** Detaches the callback: it will not run. */
void tlsc_redis_cluster_cancel(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req);

/*
 * Durable writes (--store-replicas N): a write and WAIT N after it, on a second link to the
 * node that takes the write ("wait link", one per master, opened with the request link), so
 * that WAIT, which blocks its connection and counts that connection's writes, never holds up
 * the lookups on the request link. A MOVED or ASK to the write is followed as for any request,
 * and WAIT goes again with it: after ASKING + the write in the same pipeline on the ASK target,
 * or with the write to the MOVED target. One node (redis://, rediss://, redis-sentinel://)
 * has one wait link the same way.
 *
 * A WAIT that answers fewer than N replicas (or none: a timeout, an error) means that node's
 * replicas are behind: for the next second that node's writes go on its request link without
 * WAIT (TLSC_REDIS_WAIT_SKIPPED), then one tries WAIT again. The back-off is per master, so
 * one shard's lagging replica costs the other shards nothing. Likewise while a wait link is
 * down.
 */
typedef enum {
    TLSC_REDIS_WAIT_ACKED,   /* WAIT said >= N replicas hold the write */
    TLSC_REDIS_WAIT_SHORT,   /* fewer within WAIT's timeout, or no answer (the write itself succeeded) */
    TLSC_REDIS_WAIT_SKIPPED, /* sent without WAIT: the node's replicas were behind, or its wait link down */
    TLSC_REDIS_WAIT_NONE,    /* the write failed before WAIT could tell anything */
} tlsc_redis_wait_t;

/**
 * A durable write's end: status 0 when the write succeeded (its last reply neither an error nor
 * nil) and WAIT answered a number, else a negative UV_E* code (UV_EPROTO: an error reply).
 */
typedef void (*tlsc_redis_cluster_wait_cb)(int status, tlsc_redis_wait_t waited, void *data);

/**
 * Turns durable writes on: wait links with `o` (its label names them in logs) for the one node
 * or every master, WAIT `replicas` after each write. Returns 0 or a negative UV_E* code with `err`.
 */
int tlsc_redis_cluster_wait_enable(tlsc_redis_cluster_t *c, const tlsc_redis_options_t *o, unsigned replicas, char *err,
                                   size_t errlen);

/**
 * Like tlsc_redis_cluster_send, for a write (e.g. MULTI HSET EXPIRE EXEC) followed by WAIT N
 * with 4/5 of the time left as its timeout; `cb` runs once, after WAIT answered (see above).
 * The commands with WAIT after them must pass the one-slot rule. Cancel with
 * tlsc_redis_cluster_cancel_wait.
 */
tlsc_redis_cluster_req_t *tlsc_redis_cluster_send_wait(tlsc_redis_cluster_t *c, const char *key, size_t key_len, size_t ncmds,
                                                       const int *argc, const char *const *const *argv,
                                                       const size_t *const *argvlen, unsigned timeout_ms,
                                                       tlsc_redis_cluster_wait_cb cb, void *data, int *status_out);

/** Detaches the callback of a tlsc_redis_cluster_send_wait request: it will not run. */
void tlsc_redis_cluster_cancel_wait(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req);

/** Non-zero when every node a key may go to answers now. */
int tlsc_redis_cluster_ready(const tlsc_redis_cluster_t *c);

/** Fills `st` (see tlsc_redis_cluster_stats_t). */
void tlsc_redis_cluster_stats(const tlsc_redis_cluster_t *c, tlsc_redis_cluster_stats_t *st);

/**
 * The current map's masters as a partition of the slots, for a caller that must reach every
 * shard (the node-local cache's flush watch, revoke.c): owner[s] is the number (0..n-1) of the
 * master that holds slot s, or 0xFF when none does. Returns n, at most
 * TLSC_REDIS_CLUSTER_NODES_MAX + TLSC_REDIS_URL_SEEDS_MAX; 0 without a map and in one-node mode.
 * The numbers follow no order: only which slots share a master means something.
 */
size_t tlsc_redis_cluster_partition(const tlsc_redis_cluster_t *c, uint8_t owner[TLSC_REDIS_CLUSTER_SLOTS]);

/** A number that changes whenever the partition may have (a map applied, a MOVED); 0 in one-node mode. */
uint64_t tlsc_redis_cluster_map_version(const tlsc_redis_cluster_t *c);

/** Closes every link; pending callbacks do not run. */
void tlsc_redis_cluster_close(tlsc_redis_cluster_t *c);

/* ------------------------------------------------------------------------------------------ */
/* The pure parts, unit-tested alone                                                           */

/** CRC16-XMODEM (poly 0x1021, init 0), the checksum Redis Cluster hashes keys with. */
unsigned tlsc_redis_cluster_crc16(const void *buf, size_t len);

/** The hash slot of a key: of the part between the first '{' and the next '}' when it is not empty, else of the whole key. */
unsigned tlsc_redis_cluster_keyslot(const char *key, size_t len);

/**
 * The one slot every key of a request hashes to, or -1 when a command's keys span slots or a
 * command is not one this module knows the keys of (single-key GET, SET, HGET, HSET, EXPIRE,
 * TTL and the like; DEL, UNLINK, EXISTS with every argument a key; EVAL/EVALSHA with their
 * numkeys; MULTI, EXEC, ASKING, PING have none; WAIT and WAITAOF have none and are allowed
 * only as the last command, right after EXEC). -2 when no command names a key.
 */
int tlsc_redis_cluster_request_slot(size_t ncmds, const int *argc, const char *const *const *argv, const size_t *const *argvlen);

/**
 * Parses "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" (an error reply's text).
 * Returns 1 for MOVED, 2 for ASK, 0 when it is neither or out of bounds; `host` gets the host
 * without brackets (hostlen >= TLSC_REDIS_CLUSTER_HOST_MAX + 1).
 */
int tlsc_redis_cluster_redirect_parse(const char *text, size_t len, unsigned *slot, char *host, size_t hostlen, unsigned *port);

/**
 * A slot map: masters and, for every slot, the index of its master (0xFF: none). A master's
 * `name` is the "hostname" CLUSTER SHARDS gives (cluster-announce-hostname), or "" when none:
 * over TLS its certificate must show that name, else the host it is reached at.
 */
typedef struct {
    size_t nnodes;
    struct {
        char host[TLSC_REDIS_CLUSTER_HOST_MAX + 1];
        unsigned port;
        char name[TLSC_REDIS_CLUSTER_HOST_MAX + 1];
    } node[TLSC_REDIS_CLUSTER_NODES_MAX];
    uint8_t slot[TLSC_REDIS_CLUSTER_SLOTS];
} tlsc_redis_cluster_map_t;

#define TLSC_REDIS_CLUSTER_MAP_SHARDS 1 /* the reply is CLUSTER SHARDS's, else CLUSTER SLOTS's */
#define TLSC_REDIS_CLUSTER_MAP_TLS    2 /* asked over TLS: a master's port is its "tls-port" (SHARDS) */

/**
 * Reads a CLUSTER SHARDS or CLUSTER SLOTS reply into `map` (`flags`: TLSC_REDIS_CLUSTER_MAP_*).
 * `queried` is the host the reply came from (an empty endpoint means that one). Over TLS a
 * SHARDS master's port is its "tls-port" (a TLS-only node has no "port"); CLUSTER SLOTS
 * already names the TLS port to a TLS client. Returns 0, or -1 with why in `why`; `map` is
 * undefined then.
 */
int tlsc_redis_cluster_map_parse(const redisReply *reply, int flags, const char *queried, tlsc_redis_cluster_map_t *map, char *why,
                                 size_t whylen);

#endif
