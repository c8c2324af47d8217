/*
 * This file's one job: a worker's counters — count (histograms, snapshots) and publish them to
 * the store about once a second, as the hash <prefix>:stats:<node>:<worker> with a short TTL,
 * so dead workers vanish.
 */

#include "stats.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define STATS_TTL_SEC    10
#define STATS_TIMEOUT_MS 1000
#define COUNT_ONE(name)  +1
#define NCOUNTERS        (0 TLSC_STATS_FIELDS(COUNT_ONE))
#define NFIELDS          (2 + NCOUNTERS) /* pid, updated, the counters */

_Static_assert(NFIELDS <= TLSC_STORE_MAX_FIELDS, "more counters than one store put carries");

const double tlsc_hist_bounds_sec[TLSC_HIST_N] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

void tlsc_hist_observe(tlsc_hist_t *h, uint64_t us)
{
    size_t i = 0;

    while (i < TLSC_HIST_N && (double)us > tlsc_hist_bounds_sec[i] * 1e6)
        i++;
    tlsc_stat_inc(&h->counts[i]);
    tlsc_stat_add(&h->sum_us, us);
}

#define N_WORDS    (sizeof(tlsc_stats_t) / sizeof(uint64_t))
#define N_COUNTERS (offsetof(tlsc_stats_t, g) / sizeof(uint64_t))

void tlsc_stats_snapshot(const tlsc_stats_t *src, tlsc_stats_t *dst)
{
    const uint64_t *s = (const uint64_t *)src;
    uint64_t *d = (uint64_t *)dst;

    for (size_t i = 0; i < N_WORDS; i++)
        d[i] = tlsc_stat_get(&s[i]);
}

void tlsc_stats_add_counters(tlsc_stats_t *dst, const tlsc_stats_t *src)
{
    const uint64_t *s = (const uint64_t *)src;
    uint64_t *d = (uint64_t *)dst;

    for (size_t i = 0; i < N_COUNTERS; i++)
        d[i] += s[i];
}

uint64_t tlsc_stats_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct tlsc_stats_writer_s {
    tlsc_store_t *store;
    tlsc_store_req_t *inflight;
    size_t key_len;
    char key[160];
};

tlsc_stats_writer_t *tlsc_stats_writer_new(tlsc_store_t *store, const char *prefix, const char *node, unsigned worker)
{
    tlsc_stats_writer_t *w = calloc(1, sizeof(*w));
    int n;

    if (w == NULL)
        return NULL;
    w->store = store;
    n = snprintf(w->key, sizeof(w->key), "%s:stats:%s:%u", prefix, node, worker);
    if (n < 0 || (size_t)n >= sizeof(w->key)) {
        free(w);
        return NULL;
    }
    w->key_len = (size_t)n;
    return w;
}

static void on_written(int status, void *data)
{
    tlsc_stats_writer_t *w = data;

    w->inflight = NULL;
}

void tlsc_stats_writer_write(tlsc_stats_writer_t *w, const tlsc_stats_t *st)
{
    char values[NFIELDS][24];
    tlsc_store_field_t fields[NFIELDS];
    size_t n = 0;
    int status;

    if (w->inflight != NULL || !tlsc_store_ready(w->store))
        return;
#define ADD_FIELD(fname, value)                                                                                                    \
    do {                                                                                                                           \
        int len_ = snprintf(values[n], sizeof(values[n]), "%llu", (unsigned long long)(value));                                    \
        fields[n] = (tlsc_store_field_t){fname, values[n], (size_t)len_};                                                          \
        n++;                                                                                                                       \
    } while (0);
#define ADD_COUNTER(name) ADD_FIELD(#name, tlsc_stat_get(&st->name))
    ADD_FIELD("pid", getpid())
    ADD_FIELD("updated", tlsc_wall_sec())
    TLSC_STATS_FIELDS(ADD_COUNTER)
#undef ADD_COUNTER
#undef ADD_FIELD
    w->inflight = tlsc_store_put(w->store, w->key, w->key_len, fields, n, STATS_TTL_SEC, STATS_TIMEOUT_MS, on_written, w, &status);
}

void tlsc_stats_writer_free(tlsc_stats_writer_t *w)
{
    if (w == NULL)
        return;
    if (w->inflight != NULL)
        tlsc_store_cancel(w->store, w->inflight);
    free(w);
}

const char *const tlsc_close_cause_names[TLSC_CLOSE_N] = {"done",  "peer",  "timeout", "handshake_failed",
                                                          "limit", "error", "drain",   "shutdown"};
