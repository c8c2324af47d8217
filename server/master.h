#ifndef TLSC_MASTER_H
#define TLSC_MASTER_H

#include "config.h"
#include "tls.h"

/**
 * Binds every --listen address (one SO_REUSEPORT socket per worker slot, so the kernel
 * spreads connections and a respawned worker finds its queue intact; a port someone else
 * listens on is refused unless --reuseport-share), forks the workers and supervises them:
 * respawn with backoff, SIGHUP reload (new contexts, workers replaced one slot at a time),
 * SIGTERM/SIGINT graceful drain. Takes `tls` and frees it. Returns the process exit code;
 * binding errors are reported to stderr and return 1 before any worker starts.
 */
int tlsc_master_run(const tlsc_config_t *cfg, tlsc_tls_t *tls);

#endif
