/* This file's one job: the shared counters region — cells for workers, folded into slot totals when they end. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define EXTRA_CELLS 16 /* beyond 2 per slot: reloads in a row while replaced workers drain */

typedef struct {
    tlsc_stats_t st; /* the worker's; first, so it is page- and 64-bit aligned */
    /* The master's alone: */
    pid_t pid;
    unsigned slot; /* 1..N; 0 = free */
} cell_t;

struct tlsc_metrics_s {
    unsigned workers;
    size_t n_cells, map_len;
    cell_t *cells;      /* shared */
    tlsc_stats_t *base; /* per slot: the counters of its ended workers (private) */
};

tlsc_metrics_t *tlsc_metrics_new(unsigned workers)
{
    tlsc_metrics_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->workers = workers;
    m->n_cells = (size_t)workers * 2 + EXTRA_CELLS;
    m->map_len = m->n_cells * sizeof(cell_t);
    if ((m->base = calloc(workers, sizeof(*m->base))) == NULL)
        goto fail;
    m->cells = mmap(NULL, m->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->cells == MAP_FAILED)
        goto fail_base;
    return m; /* an anonymous mapping starts zeroed: every cell free */

fail_base:
    free(m->base);
fail:
    free(m);
    return NULL;
}

void tlsc_metrics_free(tlsc_metrics_t *m)
{
    if (m == NULL)
        return;
    munmap(m->cells, m->map_len);
    free(m->base);
    free(m);
}

tlsc_stats_t *tlsc_metrics_claim(tlsc_metrics_t *m, unsigned slot)
{
    if (slot < 1 || slot > m->workers)
        return NULL;
    for (size_t i = 0; i < m->n_cells; i++) {
        cell_t *c = &m->cells[i];
        if (c->slot != 0)
            continue;
        memset(&c->st, 0, sizeof(c->st)); /* no worker writes a free cell */
        c->slot = slot;
        c->pid = 0;
        return &c->st;
    }
    return NULL;
}

void tlsc_metrics_bind(tlsc_metrics_t *m, tlsc_stats_t *cell, pid_t pid)
{
    cell_t *c = (cell_t *)cell;

    if (cell == NULL)
        return;
    if (pid <= 0) {
        c->slot = 0;
        return;
    }
    c->pid = pid;
}

int tlsc_metrics_release(tlsc_metrics_t *m, pid_t pid)
{
    tlsc_stats_t snap;

    for (size_t i = 0; i < m->n_cells; i++) {
        cell_t *c = &m->cells[i];
        if (c->slot == 0 || c->pid != pid)
            continue;
        tlsc_stats_snapshot(&c->st, &snap);
        tlsc_stats_add_counters(&m->base[c->slot - 1], &snap);
        c->slot = 0;
        c->pid = 0;
        return 1;
    }
    return 0;
}

void tlsc_metrics_slot(const tlsc_metrics_t *m, unsigned slot, pid_t current, tlsc_stats_t *out)
{
    tlsc_stats_t snap;
    uint64_t conns = 0;

    memset(out, 0, sizeof(*out));
    if (slot < 1 || slot > m->workers)
        return;
    tlsc_stats_add_counters(out, &m->base[slot - 1]);
    for (size_t i = 0; i < m->n_cells; i++) {
        const cell_t *c = &m->cells[i];
        if (c->slot != slot || c->pid <= 0)
            continue;
        tlsc_stats_snapshot(&c->st, &snap);
        tlsc_stats_add_counters(out, &snap);
        conns += snap.g.conns;
        if (c->pid == current)
            out->g = snap.g;
    }
    out->g.conns = conns;
}
