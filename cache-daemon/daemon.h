#ifndef TLSC_DAEMON_H
#define TLSC_DAEMON_H

/*
 * This file's one job: the interface of tlscache-daemon's core — the key window (next /
 * current / previous), its rotation, and the listeners that push it to every connected
 * worker over the PSK-authenticated link (docs/protocol.md, docs/keys.md). Runs on a libuv
 * loop; each link is a tlsc_keylink_t (common/keylink.h).
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "keyproto.h"

typedef struct tlsc_daemon_s tlsc_daemon_t;

typedef struct {
    const char *listen;            /* HOST:PORT (numeric or a name), or NULL */
    const char *unix_path;         /* or NULL; at least one of the two */
    const char *node;              /* our name in HELLO */
    unsigned rotate_sec;           /* a key encrypts for this long; default 3600 */
    unsigned ticket_lifetime_sec;  /* a retired key decrypts for this long; default = rotate_sec */
    unsigned lead_sec;             /* minimum pre-distribution time of a next key; default rotate_sec / 2 (>= 1) */
    unsigned grace_ms;             /* after start, wait this long for workers' key sets; default 2000 */
    unsigned max_conns;            /* authenticated worker links; default 1024 */
    unsigned max_pending;          /* links still in the TLS handshake / before HELLO; default 64 (--preauth-max) */
    unsigned max_pending_per_addr; /* ... from one bucket (tlsc_addr_bucket; all Unix peers are one); default 16 */
    unsigned handshake_timeout_ms; /* TLS + HELLO, default 2000 (--preauth-timeout) */
    unsigned idle_timeout_ms;      /* no frame for this long drops the link; default 60000 */
} tlsc_daemon_options_t;

typedef struct {
    uint64_t accepted, auth_failed, protocol_errors, rotations, pushes, acks;
    uint64_t refused_by_workers; /* ERROR STALE / REFUSED answers to our KEYSETs */
    uint64_t epochs_refused;     /* HELLOs reporting an epoch far ahead of ours */
    uint64_t keys_refused;       /* offered keys outside the window's bounds */
    uint64_t evicted;            /* unauthenticated links closed to make room */
    uint64_t epoch;
    size_t keys, conns, pending;
    int adopted; /* the window came from workers' HELLOs after a restart */
} tlsc_daemon_stats_t;

/** A reported epoch may be at most this far above `wall-clock seconds x 1000` (one day). */
#define TLSC_DAEMON_EPOCH_AHEAD_MAX (86400ull * 1000)
/** Clock skew tolerated between the daemon that made a key and the one that checks it, seconds. */
#define TLSC_DAEMON_SKEW_SEC 300

/**
 * Checks the options, binds the listeners and starts the restart grace period. `psk` is
 * copied. Returns 0 or a negative UV_E* code with a message naming the flag in `err`.
 */
int tlsc_daemon_new(uv_loop_t *loop, const tlsc_daemon_options_t *o, const unsigned char psk[TLSC_KEYPROTO_PSK_LEN],
                    tlsc_daemon_t **out, char *err, size_t errlen);

/** Closes listeners and links and wipes the keys; memory is freed once the loop runs the closes. */
void tlsc_daemon_close(tlsc_daemon_t *d);

/** Copies the counters. */
void tlsc_daemon_stats(const tlsc_daemon_t *d, tlsc_daemon_stats_t *out);

/** One key of the window as the admin endpoint shows it: its role and times, never its name or secret. */
typedef struct {
    uint8_t role; /* tlsc_keyproto_role_t as of now */
    uint64_t not_before, not_after;
} tlsc_daemon_key_info_t;

/** The window's keys (at most `max`), in window order. Returns how many. */
size_t tlsc_daemon_keys(const tlsc_daemon_t *d, tlsc_daemon_key_info_t *out, size_t max);

/**
 * Authenticated worker links: how many are open, how many have not acknowledged the current
 * epoch yet, and the most epochs any that acked before is behind (0 when all acked).
 */
void tlsc_daemon_workers(const tlsc_daemon_t *d, size_t *open, size_t *behind, uint64_t *max_lag);

/** Non-zero while the restart grace period runs (the window is not decided yet). */
int tlsc_daemon_in_grace(const tlsc_daemon_t *d);

/**
 * Fills `out` with 32 bytes from RAND_priv_bytes that are not all zero and differ from every
 * entry of `seen` (n entries of 32 bytes); retries a few times. Returns 0 or -1. Exposed for tests.
 */
int tlsc_daemon_fresh_bytes(unsigned char out[32], const unsigned char (*seen)[32], size_t n);

#endif
