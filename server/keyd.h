#ifndef TLSC_KEYD_H
#define TLSC_KEYD_H

/*
 * This file's one job: a worker's client link to tlscache-daemon, on the worker's libuv loop.
 * It connects to HOST:PORT or unix:PATH (a tlsc_dial_t: resolve, connect, jittered
 * exponential backoff, each state change of the link logged with the address and the reason),
 * authenticates with the cluster PSK over TLS 1.3 (a tlsc_keylink_t), sends HELLO with the key
 * set already held (so a restarted daemon re-learns it), hands every KEYSET to a callback and
 * ACKs it, and pings. Nothing here blocks the loop. A wrong --keyd-secret-file is an error
 * that says so, retried every 30 s.
 *
 * Wiring: every worker runs its own client (server/keyring.c) into its own tlsc_tickets_t,
 * with callbacks like tlsc_keyd_tickets_apply / tlsc_keyd_tickets_held, and relays each
 * applied set to the master over its socketpair as a KEYSET frame (tlsc_keyproto_encode). The
 * master runs no client: it reads those frames (server/master.c, read_link) into its own
 * holder, so that a worker respawned while the daemon is away starts with the master's
 * tlsc_tickets_export().
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "keyproto.h"

typedef struct tlsc_keyd_s tlsc_keyd_t;

/**
 * A pushed key set; return 0 once applied (the epoch is then ACKed) or a negative code: then
 * the daemon gets ERROR STALE (for TLSC_TICKETS_ESTALE) or REFUSED, and the link is made again
 * so that the HELLO tells the daemon the epoch held.
 */
typedef int (*tlsc_keyd_keyset_cb)(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *data);
/** Protocol 2: the daemon's window (its --rotate, --ticket-lifetime, --lead), before any KEYSET. */
typedef void (*tlsc_keyd_window_cb)(tlsc_keyd_t *kd, uint32_t rotate_sec, uint32_t lifetime_sec, uint32_t lead_sec, void *data);
/** Fills the key set to offer in HELLO (leave `out` empty for none). */
typedef void (*tlsc_keyd_held_cb)(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *data);

typedef struct {
    const char *address;     /* HOST:PORT, [V6]:PORT or unix:PATH */
    const char *secret_file; /* --keyd-secret-file */
    const char *node;        /* [A-Za-z0-9._:-]{1,64} */
    uint32_t worker;
    unsigned backoff_min_ms;     /* default 100 */
    unsigned backoff_max_ms;     /* default 5000 */
    unsigned ping_interval_ms;   /* default 15000; 3 unanswered pings drop the link */
    unsigned connect_timeout_ms; /* resolve + connect, then again TLS handshake + HELLO; default 5000 */
    tlsc_keyd_keyset_cb on_keyset;
    tlsc_keyd_held_cb get_held;    /* may be NULL */
    tlsc_keyd_window_cb on_window; /* may be NULL */
    void *data;
} tlsc_keyd_options_t;

typedef struct {
    uint64_t connects;   /* links that reached HELLO */
    uint64_t failures;   /* connect, handshake or protocol failures, and links lost */
    uint64_t keysets;    /* KEYSETs applied */
    uint64_t rejected;   /* KEYSETs the callback refused */
    int connected;       /* non-zero while a link is open */
    uint64_t last_epoch; /* last epoch ACKed */
} tlsc_keyd_stats_t;

/**
 * Reads the secret, checks the address and starts connecting (asynchronously). Returns 0 or a
 * negative UV_E* code with a message naming the option in `err`. Copies what it keeps.
 */
int tlsc_keyd_new(uv_loop_t *loop, const tlsc_keyd_options_t *o, tlsc_keyd_t **out, char *err, size_t errlen);

/**
 * Stops: no callback runs after this returns; the memory is freed once libuv has closed the
 * handles (the loop must run on). Safe to call from inside the keyset callback.
 */
void tlsc_keyd_close(tlsc_keyd_t *kd);

/** Copies the counters. */
void tlsc_keyd_stats(const tlsc_keyd_t *kd, tlsc_keyd_stats_t *out);

/**
 * Ready-made callbacks for a `tlsc_tickets_t *` passed as `data`. The apply callback treats a
 * re-sent epoch equal to the one applied as a replay (0) and a lower one as stale.
 */
int tlsc_keyd_tickets_apply(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *tickets);
void tlsc_keyd_tickets_held(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *tickets);
/** Bounds the holder's keys by the announced window: tlsc_tickets_set_max_life(rotate + lifetime). */
void tlsc_keyd_tickets_window(tlsc_keyd_t *kd, uint32_t rotate_sec, uint32_t lifetime_sec, uint32_t lead_sec, void *tickets);

#endif
