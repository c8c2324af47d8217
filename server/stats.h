#ifndef TLSC_STATS_H
#define TLSC_STATS_H

/*
 * Per-worker counters, and their writer. A worker's tlsc_stats_t lives in the master's shared
 * metrics region (server/metrics.c), one cell per worker process: the worker is its only
 * writer (each word a relaxed atomic store, so the master reads 64-bit values that never tear,
 * without a lock and without ever waiting on the worker), and the master reads it for
 * /metrics. The same values are written to <prefix>:stats:<node>:<worker> about once a second
 * (one atomic store put: HSET + EXPIRE) so a person can read them with redis-cli and
 * tlscache-bench can compare its own view with ours.
 *
 * Everything before `g` is a counter that only grows; `g` holds gauges (the worker's state
 * now). When a worker ends, the master adds its counters to its slot's running total.
 */

#include <stdint.h>

#include "store.h"

#define TLSC_STATS_FIELDS(X)                                                                                                       \
    X(connections)                                                                                                                 \
    X(handshakes_full)                                                                                                             \
    X(handshakes_resumed)                                                                                                          \
    X(handshake_errors)                                                                                                            \
    X(lookups_hit)                                                                                                                 \
    X(lookups_l1_hit)                                                                                                              \
    X(lookups_miss)                                                                                                                \
    X(lookups_timeout)                                                                                                             \
    X(lookups_error)                                                                                                               \
    X(lookups_skipped)                                                                                                             \
    X(records_bad)                                                                                                                 \
    X(stores_ok)                                                                                                                   \
    X(stores_error)                                                                                                                \
    X(stores_timeout)                                                                                                              \
    X(stores_skipped)                                                                                                              \
    X(store_waits_acked)                                                                                                           \
    X(store_waits_short)                                                                                                           \
    X(store_waits_skipped)                                                                                                         \
    X(l1_stores)                                                                                                                   \
    X(l1_fills)                                                                                                                    \
    X(l1_taken_elsewhere)                                                                                                          \
    X(l1_flushes_seen)                                                                                                             \
    X(tickets_issued)                                                                                                              \
    X(tickets_decrypted)                                                                                                           \
    X(tickets_renewed)                                                                                                             \
    X(tickets_unknown_key)                                                                                                         \
    X(sni_rejected)                                                                                                                \
    X(proxy_opened)                                                                                                                \
    X(proxy_early_connects)                                                                                                        \
    X(proxy_early_abandoned)                                                                                                       \
    X(proxy_end_done)                                                                                                              \
    X(proxy_end_client_gone)                                                                                                       \
    X(proxy_end_backend_refused)                                                                                                   \
    X(proxy_end_backend_timeout)                                                                                                   \
    X(proxy_end_backend_reset)                                                                                                     \
    X(proxy_end_idle)                                                                                                              \
    X(proxy_end_drain)                                                                                                             \
    X(proxy_end_no_route)                                                                                                          \
    X(proxy_header_bad)                                                                                                            \
    X(access_log_dropped)

/* The TLS version of a handshake, as a label. */
typedef enum {
    TLSC_TLSV_UNKNOWN, /* failed before a version was chosen */
    TLSC_TLSV_12,
    TLSC_TLSV_13,
    TLSC_TLSV_N,
} tlsc_tlsv_t;

/* How a handshake ended. */
typedef enum {
    TLSC_OUT_FULL,
    TLSC_OUT_RESUMED_ID,     /* from the store: a TLS 1.2 session ID or a TLS 1.3 stateful ticket */
    TLSC_OUT_RESUMED_TICKET, /* a stateless ticket under a key from tlscache-daemon */
    TLSC_OUT_FAILED_TIMEOUT, /* --handshake-timeout passed */
    TLSC_OUT_FAILED_CLOSED,  /* the connection closed first (the peer left, or a drain ended it) */
    TLSC_OUT_FAILED_SNI,     /* an SNI that cannot be a host name */
    TLSC_OUT_FAILED_VERSION, /* no TLS version in common */
    TLSC_OUT_FAILED_CIPHER,  /* no cipher, group or signature algorithm in common */
    TLSC_OUT_FAILED_NOT_TLS, /* the bytes were not TLS (plain HTTP, garbage) */
    TLSC_OUT_FAILED_ALERT,   /* the peer sent a fatal alert (e.g. it did not trust the certificate) */
    TLSC_OUT_FAILED_ERROR,   /* any other protocol error */
    TLSC_OUT_N,
} tlsc_hs_outcome_t;

/* Why a connection closed. */
typedef enum {
    TLSC_CLOSE_DONE,     /* the handler finished (after the reply, close_notify) */
    TLSC_CLOSE_PEER,     /* the peer closed or reset it */
    TLSC_CLOSE_TIMEOUT,  /* a handshake or request deadline passed */
    TLSC_CLOSE_HS_FAIL,  /* the handshake failed (the alert went out first) */
    TLSC_CLOSE_LIMIT,    /* the peer sent more than a connection may hold */
    TLSC_CLOSE_ERROR,    /* a local failure: accept, memory, a write */
    TLSC_CLOSE_DRAIN,    /* still open at the drain deadline */
    TLSC_CLOSE_SHUTDOWN, /* the worker went away */
    TLSC_CLOSE_N,
} tlsc_close_cause_t;

/** Each cause's name, in metrics and the access log: "done", "peer", "timeout", "handshake_failed", ... */
extern const char *const tlsc_close_cause_names[TLSC_CLOSE_N];

/* Latency histograms: fixed bounds (TLSC_HIST_BOUNDS_SEC), counts not cumulative, the last one past every bound. */
#define TLSC_HIST_N 16
typedef struct {
    uint64_t counts[TLSC_HIST_N + 1];
    uint64_t sum_us;
} tlsc_hist_t;

/** The bucket bounds in seconds, 100 µs to 10 s. */
extern const double tlsc_hist_bounds_sec[TLSC_HIST_N];

typedef struct {
#define TLSC_STATS_DECLARE(name) uint64_t name;
    TLSC_STATS_FIELDS(TLSC_STATS_DECLARE)
#undef TLSC_STATS_DECLARE
    uint64_t handshakes[TLSC_TLSV_N][TLSC_OUT_N];
    uint64_t closed[TLSC_CLOSE_N];
    uint64_t redis_reconnects;
    uint64_t redis_moved, redis_ask, redis_map_refreshes;  /* Redis Cluster: redirects followed, slot maps read */
    uint64_t redis_requests, redis_commands, redis_writes; /* the link's requests, commands and socket writes (tlsc_redis_io) */
    tlsc_hist_t lookup_us, store_us, handshake_us;
    struct {
        uint64_t heartbeat_ms;  /* tlsc_now_ms() at the worker's last tick (a system-wide monotonic clock) */
        uint64_t accepting;     /* 1 while the worker accepts connections */
        uint64_t conns;         /* open connections */
        uint64_t redis_up;      /* 1 while the Redis link answers (a Cluster: every master's link) */
        uint64_t redis_masters; /* masters the worker routes to (1 for one Redis) */
        uint64_t redis_masters_up;
        uint64_t keys;           /* ticket keys held */
        uint64_t key_epoch;      /* epoch of the last key set applied */
        uint64_t key_not_before; /* the current (encrypting) key's window, wall-clock seconds; 0: none */
        uint64_t key_not_after;
    } g;
} tlsc_stats_t;

_Static_assert(sizeof(tlsc_stats_t) % sizeof(uint64_t) == 0, "tlsc_stats_t is made of 64-bit words");

/* The worker writes, the master reads: each word a relaxed atomic, so it never tears. */
static inline uint64_t tlsc_stat_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}
static inline void tlsc_stat_set(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, v, __ATOMIC_RELAXED);
}
/* One writer per word: a load and a store, no locked instruction. */
static inline void tlsc_stat_add(uint64_t *c, uint64_t n)
{
    tlsc_stat_set(c, tlsc_stat_get(c) + n);
}
static inline void tlsc_stat_inc(uint64_t *c)
{
    tlsc_stat_add(c, 1);
}

/** Counts one observation of `us` microseconds. */
void tlsc_hist_observe(tlsc_hist_t *h, uint64_t us);
/** Copies `src` word by word with atomic loads (a consistent-enough snapshot of a live cell). */
void tlsc_stats_snapshot(const tlsc_stats_t *src, tlsc_stats_t *dst);
/** Adds the counters of `src` (not its gauges) to `dst`. */
void tlsc_stats_add_counters(tlsc_stats_t *dst, const tlsc_stats_t *src);
/** Microseconds from a monotonic clock. */
uint64_t tlsc_stats_now_us(void);

typedef struct tlsc_stats_writer_s tlsc_stats_writer_t;

/** A writer for worker `worker` of `node`, keys under `prefix`. NULL when out of memory or the key is too long. */
tlsc_stats_writer_t *tlsc_stats_writer_new(tlsc_store_t *store, const char *prefix, const char *node, unsigned worker);
/** Writes the counters with pid and wall-clock time, unless the last write is still in flight or the store is down. */
void tlsc_stats_writer_write(tlsc_stats_writer_t *w, const tlsc_stats_t *st);
/** Cancels a write in flight and frees (NULL is fine). Call before the store closes. */
void tlsc_stats_writer_free(tlsc_stats_writer_t *w);

#endif
