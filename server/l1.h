#ifndef TLSC_L1_H
#define TLSC_L1_H

/*
 * The node-local session cache (L1): one shared memory region mapped by the master before it
 * forks, so every worker of a node (and every worker it respawns) sees the same entries. It sits
 * in front of the store (Redis, the L2) and is read synchronously inside the ClientHello
 * callback. It holds session records exactly as the store does (sealed: no readable master
 * secret), keyed by session ID, each with the TLS version it was made for and its expiry.
 *
 * The region is a set-associative table: an ID hashes to one set of TLSC_L1_WAYS slots, each
 * set has its own robust process-shared mutex, taken with trylock only (a worker never waits
 * for another process: a busy set is a miss, or a skipped insert), and held only across
 * memcmp/memcpy of one set. Eviction is LRU within the set. docs/design.md ("The node-local
 * cache") says why.
 */

#include <stddef.h>
#include <stdint.h>

typedef struct tlsc_l1_s tlsc_l1_t;

#define TLSC_L1_ID_MAX    32  /* the session IDs (and TLS 1.3 identities) we issue */
#define TLSC_L1_VALUE_MAX 448 /* the longest record a slot holds; a longer one lives only in the store */
#define TLSC_L1_WAYS      8
#define TLSC_L1_MIN_BYTES (1u << 20)
#define TLSC_L1_MAX_BYTES (16ull << 30)
#define TLSC_L1_DEFAULT   "64m"

/** Counters kept in the shared region, for the whole node. */
typedef struct {
    uint64_t entries_max; /* slots */
    uint64_t evictions;   /* live entries pushed out by newer ones */
    uint64_t recovered;   /* sets wiped because a worker died holding their lock */
    uint64_t flushes;     /* drop-everything events */
} tlsc_l1_stats_t;

/**
 * Parses a --local-cache SIZE: decimal bytes with an optional k, m or g suffix (powers of 1024),
 * nothing else. 0 means off; otherwise TLSC_L1_MIN_BYTES..TLSC_L1_MAX_BYTES. 0 = ok.
 */
int tlsc_l1_parse_size(const char *s, uint64_t *out);

/**
 * Maps a region of about `bytes` (shared, anonymous: it dies with the last process that maps
 * it) and initializes its locks. Call in the master before fork. 0, or -1 with `err` filled.
 */
int tlsc_l1_new(uint64_t bytes, tlsc_l1_t **out, char *err, size_t errlen);

/**
 * Maps every page of the region into this process now (a worker calls it at start). A forked
 * process does not inherit the page table entries of a shared mapping, so without it each
 * worker takes one page fault per page on first use, inside handshakes (the profile in
 * docs/benchmarks.md). Best effort: on a kernel without MADV_POPULATE_WRITE pages fault as used.
 */
void tlsc_l1_prefault(tlsc_l1_t *l1);

/**
 * Reads one byte of up to `pages` more pages, from byte offset *cursor (start at 0) on, which a
 * VM that shadows page tables per process needs before the first use is cheap (l1.c says why).
 * A worker calls it once per loop iteration until it returns 1 (done: the first 256 MiB read).
 */
int tlsc_l1_warm(tlsc_l1_t *l1, size_t *cursor, size_t pages);

/** Unmaps (NULL is fine). Other processes keep their own mapping. */
void tlsc_l1_free(tlsc_l1_t *l1);

/**
 * Stores `rec` for session `id` of protocol `version`, valid until `expires` (Unix seconds).
 * Replaces an entry with the same ID; evicts the least recently used entry of the set when
 * full. A non-zero `epoch` (from tlsc_l1_epoch before the record was read from the store)
 * makes the put a no-op when anything was removed or cleared since, so a copy read just
 * before a revocation cannot come back after it. 0 = stored; -1 = not stored (too long, bad
 * ID, the set was busy, or the epoch moved).
 */
int tlsc_l1_put(tlsc_l1_t *l1, const unsigned char *id, size_t id_len, int version, const unsigned char *rec, size_t len,
                uint64_t expires, uint64_t epoch);

/** The removal epoch: changes with every tlsc_l1_remove and tlsc_l1_clear. Never 0. */
uint64_t tlsc_l1_epoch(const tlsc_l1_t *l1);

/**
 * Looks session `id` of protocol `version` up and copies its record into `out` (room for
 * TLSC_L1_VALUE_MAX bytes). With `take`, a hit also removes the entry (single use on this
 * node). An entry of another version is a miss and is left alone. 1 = hit, 0 = miss (or busy).
 */
int tlsc_l1_get(tlsc_l1_t *l1, const unsigned char *id, size_t id_len, int version, int take, unsigned char out[TLSC_L1_VALUE_MAX],
                size_t *len);

/** Removes session `id` (any version). 1 = it was there, 0 = it was not, -1 = its set stayed busy. */
int tlsc_l1_remove(tlsc_l1_t *l1, const unsigned char *id, size_t id_len);

/** Drops every entry at once (one atomic generation bump; no lock taken). */
void tlsc_l1_clear(tlsc_l1_t *l1);

/** Turns lookups off (every one misses) or on again; stores go on either way. Starts on. */
void tlsc_l1_set_serving(tlsc_l1_t *l1, int on);
int tlsc_l1_serving(const tlsc_l1_t *l1);

/** The node-wide counters. */
void tlsc_l1_stats(const tlsc_l1_t *l1, tlsc_l1_stats_t *out);

/** Takes the lock of `id`'s set and keeps it (a test's child then dies holding it). 0 = taken. */
int tlsc_l1_test_hold_lock(tlsc_l1_t *l1, const unsigned char *id, size_t id_len);

/** Replaces the wall clock (Unix seconds) used for expiry; for tests. */
void tlsc_l1_set_clock(tlsc_l1_t *l1, uint64_t (*now)(void));

#endif
