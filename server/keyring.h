#ifndef TLSC_KEYRING_H
#define TLSC_KEYRING_H

/*
 * A worker's ticket keys with --keyd: the holder (tickets.h) fed by the worker's own link to
 * tlscache-daemon (keyd.h), every applied key set relayed up to the master (so a worker it
 * respawns while the daemon is away starts with the keys), and a log line whenever the worker
 * gains or loses a current key.
 */

#include <stddef.h>

#include <uv.h>

#include "config.h"
#include "keyproto.h"
#include "tickets.h"

typedef struct tlsc_keyring_s tlsc_keyring_t;

/**
 * Starts the keyring of worker `id` on `loop`: applies `held` (the master's copy; may be NULL;
 * wiped and freed here in every case), then connects to the daemon. `master_link` is the
 * socket to relay key sets on, or -1. Returns 0, or -1 after logging why.
 */
int tlsc_keyring_start(uv_loop_t *loop, const tlsc_config_t *cfg, unsigned id, tlsc_keyproto_keyset_t *held, int master_link,
                       tlsc_keyring_t **out);

/** The ticket key holder (owned by the keyring). */
tlsc_tickets_t *tlsc_keyring_tickets(tlsc_keyring_t *k);

/** Once a second: logs a change of "has a current key" (new clients get tickets or not). */
void tlsc_keyring_tick(tlsc_keyring_t *k);

/** Closes the daemon link (the loop must run on for its handles to close). Call once. */
void tlsc_keyring_close(tlsc_keyring_t *k);

/** Wipes the keys and frees; after tlsc_keyring_close and after the loop let go (NULL is fine). */
void tlsc_keyring_free(tlsc_keyring_t *k);

#endif
