#ifndef TLSC_STATS_H
#define TLSC_STATS_H

/*
 * Per-worker counters, and their writer. They are plain integers bumped on the loop thread and
 * written to <prefix>:stats:<node>:<worker> about once a second (one atomic store put: HSET +
 * EXPIRE) so a person can read them with redis-cli and tlscache-bench can compare its own view
 * with ours.
 */

#include <stdint.h>

#include "store.h"

#define TLSC_STATS_FIELDS(X)                                                                                                       \
    X(connections)                                                                                                                 \
    X(handshakes_full)                                                                                                             \
    X(handshakes_resumed)                                                                                                          \
    X(handshake_errors)                                                                                                            \
    X(lookups_hit)                                                                                                                 \
    X(lookups_miss)                                                                                                                \
    X(lookups_timeout)                                                                                                             \
    X(lookups_error)                                                                                                               \
    X(lookups_skipped)                                                                                                             \
    X(records_bad)                                                                                                                 \
    X(stores_ok)                                                                                                                   \
    X(stores_error)                                                                                                                \
    X(stores_skipped)                                                                                                              \
    X(tickets_issued)                                                                                                              \
    X(tickets_decrypted)                                                                                                           \
    X(tickets_renewed)                                                                                                             \
    X(tickets_unknown_key)                                                                                                         \
    X(sni_rejected)

typedef struct {
#define TLSC_STATS_DECLARE(name) uint64_t name;
    TLSC_STATS_FIELDS(TLSC_STATS_DECLARE)
#undef TLSC_STATS_DECLARE
} tlsc_stats_t;

typedef struct tlsc_stats_writer_s tlsc_stats_writer_t;

/** A writer for worker `worker` of `node`, keys under `prefix`. NULL when out of memory or the key is too long. */
tlsc_stats_writer_t *tlsc_stats_writer_new(tlsc_store_t *store, const char *prefix, const char *node, unsigned worker);
/** Writes the counters with pid and wall-clock time, unless the last write is still in flight or the store is down. */
void tlsc_stats_writer_write(tlsc_stats_writer_t *w, const tlsc_stats_t *st);
/** Cancels a write in flight and frees (NULL is fine). Call before the store closes. */
void tlsc_stats_writer_free(tlsc_stats_writer_t *w);

#endif
