#ifndef TLSC_ADMIN_H
#define TLSC_ADMIN_H

/*
 * The server's admin endpoint (--admin), served by the master on common/http.c:
 *   GET /metrics  Prometheus text, per worker (worker="N") and summed (worker="all"), read from
 *                 the shared metrics region: a scrape never waits on a worker, never asks Redis
 *   GET /healthz  200 while the master runs
 *   GET /readyz   200 when every worker runs, accepts, ticks, reaches Redis and (with tickets)
 *                 holds a current ticket key; else 503 with one reason per line
 * docs/operations.md lists every family.
 */

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "metrics.h"

typedef struct tlsc_admin_s tlsc_admin_t;

typedef struct {
    const tlsc_config_t *cfg; /* cfg->admin is the address */
    tlsc_metrics_t *metrics;
    /** The master's view of slot `slot` (1..N): its serving worker (0: none) and how often it was restarted. */
    void (*slot_state)(void *data, unsigned slot, pid_t *pid, uint64_t *restarts);
    /** Non-zero once the master is stopping (readyz says so). */
    int (*stopping)(void *data);
    void *data;
} tlsc_admin_options_t;

/** Binds cfg->admin. NULL with one line in `err` (the flag, the address, why). */
tlsc_admin_t *tlsc_admin_new(const tlsc_admin_options_t *o, char *err, size_t errlen);
/** The descriptor to poll for readability. */
int tlsc_admin_fd(const tlsc_admin_t *a);
/** Serves what is due without blocking (call when the fd is readable, and at least once a second). */
void tlsc_admin_run(tlsc_admin_t *a);
/** Closes and frees (NULL is fine). */
void tlsc_admin_free(tlsc_admin_t *a);
/** In a worker after fork: drops its copies of the descriptors (NULL is fine). */
void tlsc_admin_forget(tlsc_admin_t *a);

/** "version=...,openssl=...,libuv=...,hiredis=..." labels for tlscache_build_info, escaped. */
void tlsc_admin_build_labels(char *out, size_t outlen);

#endif
