#ifndef TLSC_BENCH_REDIS_STATS_H
#define TLSC_BENCH_REDIS_STATS_H

/*
 * The servers' own view of a run: tlscache workers publish counters in Redis hashes
 * `<prefix>:stats:<node>:<worker>` about once a second. tlscache-bench reads them all before
 * and after the timed part (never during the run), with the tools' blocking client
 * (ctl/redis_sync.h: any form of --redis the server takes, TLS included; every master of a
 * cluster), sums them per node and reports the difference.
 */

#include <stddef.h>
#include <stdint.h>

#include "redis_sync.h"

enum {
    TLSC_BENCH_RS_HANDSHAKES_FULL,
    TLSC_BENCH_RS_HANDSHAKES_RESUMED,
    TLSC_BENCH_RS_LOOKUPS_HIT,    /* found in Redis */
    TLSC_BENCH_RS_LOOKUPS_L1_HIT, /* found in the node-local cache */
    TLSC_BENCH_RS_LOOKUPS_MISS,
    TLSC_BENCH_RS_LOOKUPS_TIMEOUT,
    TLSC_BENCH_RS_LOOKUPS_ERROR,
    TLSC_BENCH_RS_STORES_OK,
    TLSC_BENCH_RS_STORES_ERROR,
    TLSC_BENCH_RS_RECORDS_BAD, /* records in Redis that failed to unseal or decode */
    TLSC_BENCH_RS_TICKETS_ISSUED,
    TLSC_BENCH_RS_TICKETS_DECRYPTED,
    TLSC_BENCH_RS_TICKETS_RENEWED,
    TLSC_BENCH_RS_TICKETS_UNKNOWN_KEY,
    TLSC_BENCH_RS_FIELDS
};

typedef struct {
    char node[128];
    unsigned workers;
    int64_t v[TLSC_BENCH_RS_FIELDS];
} tlsc_bench_rs_node_t;

typedef struct {
    tlsc_bench_rs_node_t *nodes;
    size_t nnodes;
} tlsc_bench_rs_snapshot_t;

/** The hash field name of counter `i`, e.g. "handshakes_full". */
const char *tlsc_bench_rs_field(int i);
/**
 * Extracts the node from a stats key "<prefix>:stats:<node>:<worker>" into `node`.
 * Returns 0, or -1 when the key does not have that shape.
 */
int tlsc_bench_rs_node_of(const char *key, const char *prefix, char *node, size_t nodelen);
/** Adds one worker's counters to the node's sums (creating the node). Returns 0 or -1 (memory). */
int tlsc_bench_rs_add(tlsc_bench_rs_snapshot_t *s, const char *node, const int64_t v[TLSC_BENCH_RS_FIELDS]);
/**
 * Connects as `o` says (tlsc_ctlredis_connect), SCANs `<prefix>:stats:*` on every master and
 * sums HMGET of the counters per node. Returns 0, or -1 with a message in `err`.
 */
int tlsc_bench_rs_read(const tlsc_ctlredis_options_t *o, const char *prefix, tlsc_bench_rs_snapshot_t *out, char *err,
                       size_t errlen);
/** after - before, per node (a node missing before counts from zero). Returns 0 or -1 (memory). */
int tlsc_bench_rs_diff(const tlsc_bench_rs_snapshot_t *before, const tlsc_bench_rs_snapshot_t *after,
                       tlsc_bench_rs_snapshot_t *out);
/** Frees the nodes. */
void tlsc_bench_rs_free(tlsc_bench_rs_snapshot_t *s);

#endif
