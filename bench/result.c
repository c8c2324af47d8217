#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

int tlsc_bench_result_init(tlsc_bench_result_t *r, size_t ntargets)
{
    memset(r, 0, sizeof(*r));
    r->ntargets = ntargets;
    r->per_target = calloc(ntargets, sizeof(*r->per_target));
    r->matrix_offered = calloc(ntargets * ntargets, sizeof(uint64_t));
    r->matrix_resumed = calloc(ntargets * ntargets, sizeof(uint64_t));
    r->lat_full = malloc(sizeof(tlsc_hist_t));
    r->lat_resumed = malloc(sizeof(tlsc_hist_t));
    r->lat_connect = malloc(sizeof(tlsc_hist_t));
    if (r->per_target == NULL || r->matrix_offered == NULL || r->matrix_resumed == NULL || r->lat_full == NULL ||
        r->lat_resumed == NULL || r->lat_connect == NULL) {
        tlsc_bench_result_free(r);
        return UV_ENOMEM;
    }
    tlsc_hist_init(r->lat_full);
    tlsc_hist_init(r->lat_resumed);
    tlsc_hist_init(r->lat_connect);
    return 0;
}

void tlsc_bench_result_free(tlsc_bench_result_t *r)
{
    free(r->per_target);
    free(r->matrix_offered);
    free(r->matrix_resumed);
    free(r->lat_full);
    free(r->lat_resumed);
    free(r->lat_connect);
    free(r->timeline);
    memset(r, 0, sizeof(*r));
}

const char *tlsc_bench_err_name(tlsc_bench_err_t e)
{
    static const char *const names[TLSC_BENCH_ERR_KINDS] = {"connect", "timeout", "handshake", "verify", "read"};

    return (unsigned)e < TLSC_BENCH_ERR_KINDS ? names[e] : "?";
}

void tlsc_bench_result_negotiated(tlsc_bench_result_t *r, const char *version, const char *cipher, const char *group)
{
    tlsc_bench_negotiated_t *n;

    for (size_t i = 0; i < r->nnegotiated; i++) {
        n = &r->negotiated[i];
        if (strcmp(n->version, version) == 0 && strcmp(n->cipher, cipher) == 0 && strcmp(n->group, group) == 0) {
            n->count++;
            return;
        }
    }
    if (r->nnegotiated == TLSC_BENCH_MAX_NEGOTIATED) {
        r->negotiated_other++;
        return;
    }
    n = &r->negotiated[r->nnegotiated++];
    snprintf(n->version, sizeof(n->version), "%s", version);
    snprintf(n->cipher, sizeof(n->cipher), "%s", cipher);
    snprintf(n->group, sizeof(n->group), "%s", group);
    n->count = 1;
}

int tlsc_bench_result_tick(tlsc_bench_result_t *r, size_t second, int resumed, int error)
{
    tlsc_bench_second_t *s;

    if (second >= r->cap_seconds) {
        size_t cap = r->cap_seconds ? r->cap_seconds : 64;
        tlsc_bench_second_t *p;

        while (cap <= second)
            cap *= 2;
        if ((p = realloc(r->timeline, cap * sizeof(*p))) == NULL)
            return UV_ENOMEM;
        memset(p + r->cap_seconds, 0, (cap - r->cap_seconds) * sizeof(*p));
        r->timeline = p;
        r->cap_seconds = cap;
    }
    if (second >= r->nseconds)
        r->nseconds = second + 1;
    s = &r->timeline[second];
    if (error)
        s->errors++;
    else if (resumed)
        s->resumed++;
    else
        s->full++;
    return 0;
}

uint64_t tlsc_bench_result_errors(const tlsc_bench_result_t *r)
{
    uint64_t n = 0;

    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        n += r->errors[k];
    return n;
}

uint64_t tlsc_bench_result_failed(const tlsc_bench_result_t *r)
{
    uint64_t hs = r->full + r->resumed;

    return r->connections > hs ? r->connections - hs : 0;
}
