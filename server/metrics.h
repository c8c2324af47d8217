#ifndef TLSC_METRICS_H
#define TLSC_METRICS_H

/*
 * The shared-memory region that carries every worker's counters to the master: mapped
 * MAP_SHARED|MAP_ANONYMOUS by the master before it forks, one cell per worker process. A new
 * worker gets a zeroed cell (its counters start at 0); when a worker ends, the master adds its
 * counters to its slot's running total (kept in the master's private memory) and frees the
 * cell, so a slot's counters never go backwards across restarts and reloads. A worker replaced
 * by a reload keeps its own cell while it drains, so two processes never write one word.
 * A scrape reads the cells with atomic loads: it never waits on a worker.
 */

#include <sys/types.h>

#include "stats.h"

typedef struct tlsc_metrics_s tlsc_metrics_t;

/** Maps the region for `workers` slots (and the workers a reload leaves draining). NULL on failure. */
tlsc_metrics_t *tlsc_metrics_new(unsigned workers);
/** Unmaps (NULL is fine). In a worker, unmapping would take its cell away: only the master calls this. */
void tlsc_metrics_free(tlsc_metrics_t *m);
/** A zeroed cell for a new worker in slot `slot` (1..N), bound to pid 0 until tlsc_metrics_bind; NULL when all are taken. */
tlsc_stats_t *tlsc_metrics_claim(tlsc_metrics_t *m, unsigned slot);
/** After fork: the cell belongs to `pid`; pid <= 0 (the fork failed) frees it again. */
void tlsc_metrics_bind(tlsc_metrics_t *m, tlsc_stats_t *cell, pid_t pid);
/** Process `pid` ended: its counters go to its slot's total and its cell is freed. Returns 1 when it had a cell. */
int tlsc_metrics_release(tlsc_metrics_t *m, pid_t pid);
/**
 * A slot's view: counters = the total of its ended workers plus every live cell of the slot;
 * gauges = those of `current` (the slot's serving worker; 0: none), except `conns`, summed over
 * the slot's live cells (a draining worker's connections are still open).
 */
void tlsc_metrics_slot(const tlsc_metrics_t *m, unsigned slot, pid_t current, tlsc_stats_t *out);

#endif
