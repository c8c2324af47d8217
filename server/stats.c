/*
 * This file's one job: publish a worker's counters to the store about once a second, as the
 * hash <prefix>:stats:<node>:<worker> with a short TTL, so dead workers vanish.
 */

#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define STATS_TTL_SEC    10
#define STATS_TIMEOUT_MS 1000
#define COUNT_ONE(name)  +1
#define NCOUNTERS        (0 TLSC_STATS_FIELDS(COUNT_ONE))
#define NFIELDS          (2 + NCOUNTERS) /* pid, updated, the counters */

_Static_assert(NFIELDS <= TLSC_STORE_MAX_FIELDS, "more counters than one store put carries");

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
#define ADD_COUNTER(name) ADD_FIELD(#name, st->name)
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
