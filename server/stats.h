#ifndef TLSC_STATS_H
#define TLSC_STATS_H

/*
 * Per-worker counters. They are plain integers bumped on the loop thread and written to
 * <prefix>:stats:<node>:<worker> about once a second (HSET + EXPIRE in one MULTI/EXEC) so a
 * person can read them with redis-cli and tlscache-bench can compare its own view with ours.
 */

#include <stdint.h>

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

#endif
