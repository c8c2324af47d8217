#ifndef TLSC_WORKER_H
#define TLSC_WORKER_H

/*
 * One TLS worker process: a libuv loop serving the listening sockets the master handed it,
 * a Redis client for the session cache, and the per-worker counters. Runs until SIGTERM
 * (graceful drain with a deadline); SIGHUP reloads the certificates.
 */

#include <stddef.h>

#include "config.h"
#include "keyproto.h"
#include "l1.h"
#include "stats.h"
#include "tls.h"

/**
 * Runs worker `id` (1..N) on the listening sockets `fds` until it is told to stop. `tls` is
 * the master's context set (inherited across fork); the worker may replace it on SIGHUP.
 * With --keyd, `held` is the master's copy of the ticket keys (the worker wipes and frees it)
 * and `master_link` the socket on which the worker relays every key set it applies.
 * `st` is the worker's cell in the master's shared metrics region (the worker is its only
 * writer; NULL: counters stay private). `l1` is the node-local session cache the master
 * mapped (NULL = off). Returns the process exit code.
 */
int tlsc_worker_run(const tlsc_config_t *cfg, tlsc_tls_t *tls, unsigned id, const int *fds, size_t nfds,
                    tlsc_keyproto_keyset_t *held, int master_link, tlsc_stats_t *st, tlsc_l1_t *l1);

#endif
