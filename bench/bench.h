#ifndef TLSC_BENCH_H
#define TLSC_BENCH_H

/*
 * The benchmark engine: one libuv loop, `concurrency` connection slots, OpenSSL driven through
 * memory BIOs so the loop never blocks. Each connection takes the freshest session from a
 * shared pool (unless it is a "new session" slot), records which target issued it and
 * whether the offered target resumed it, and gives back the session it received.
 */

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "options.h"

typedef enum {
    TLSC_BENCH_ERR_CONNECT = 0, /* TCP connect failed (refused, unreachable, name) */
    TLSC_BENCH_ERR_TIMEOUT,     /* the connection outlived --timeout, or the run's hard deadline */
    TLSC_BENCH_ERR_HANDSHAKE,   /* the handshake failed: an alert, a protocol error */
    TLSC_BENCH_ERR_VERIFY,      /* certificate verification failed (--cafile) */
    TLSC_BENCH_ERR_READ,        /* the connection broke after connect: reset, EOF mid-handshake, write error */
    TLSC_BENCH_ERR_KINDS
} tlsc_bench_err_t;

#define TLSC_BENCH_MAX_NEGOTIATED 8

typedef struct {
    char version[16], cipher[64], group[32];
    uint64_t count;
} tlsc_bench_negotiated_t;

typedef struct {
    uint64_t connections; /* finished, successfully or not */
    uint64_t full, resumed, offered;
    uint64_t errors[TLSC_BENCH_ERR_KINDS];
} tlsc_bench_target_stats_t;

typedef struct {
    uint64_t full, resumed, errors;
} tlsc_bench_second_t;

typedef struct {
    /* Totals over all targets. */
    uint64_t connections, full, resumed, offered;
    uint64_t offered_full; /* offered a session but got a full handshake */
    uint64_t sessions_received, no_session, requests_ok;
    uint64_t bytes_read;
    uint64_t errors_after_handshake; /* handshake counted, then the request or ticket wait failed */
    uint64_t errors[TLSC_BENCH_ERR_KINDS];
    char first_error[TLSC_BENCH_ERR_KINDS][160];
    int interrupted, deadline_hit;
    int ticket_wait_skipped; /* a TLS 1.3 target sent no ticket twice: later connections did not wait */

    tlsc_bench_target_stats_t *per_target;     /* ntargets */
    uint64_t *matrix_offered, *matrix_resumed; /* ntargets x ntargets, [issuer * n + offered] */
    size_t ntargets;

    tlsc_hist_t *lat_full, *lat_resumed, *lat_connect; /* microseconds */

    tlsc_bench_negotiated_t negotiated[TLSC_BENCH_MAX_NEGOTIATED];
    size_t nnegotiated;
    uint64_t negotiated_other;

    tlsc_bench_second_t *timeline; /* by completion second since start */
    size_t nseconds, cap_seconds;

    double elapsed_sec;
    double cpu_user_sec, cpu_sys_sec;
    int verified; /* --cafile given */
    uint64_t seed;
    double start_wall; /* epoch seconds, for the reports */
} tlsc_bench_result_t;

/** Allocates the per-target tables; returns 0 or UV_ENOMEM. */
int tlsc_bench_result_init(tlsc_bench_result_t *r, size_t ntargets);
/** Frees what tlsc_bench_result_init and the run allocated. */
void tlsc_bench_result_free(tlsc_bench_result_t *r);
/** The name of an error kind: "connect", "timeout", "handshake", "verify", "read". */
const char *tlsc_bench_err_name(tlsc_bench_err_t e);
/** Records one negotiated (version, cipher, group) combination. */
void tlsc_bench_result_negotiated(tlsc_bench_result_t *r, const char *version, const char *cipher, const char *group);
/** Counts one completion in the second it happened; returns 0 or UV_ENOMEM. */
int tlsc_bench_result_tick(tlsc_bench_result_t *r, size_t second, int resumed, int error);
/** Total errors of every kind. */
uint64_t tlsc_bench_result_errors(const tlsc_bench_result_t *r);
/** Connections that ended without a completed handshake (the rates leave them out). */
uint64_t tlsc_bench_result_failed(const tlsc_bench_result_t *r);

/**
 * Runs the benchmark described by `o` to its end and fills `r` (initialised by the caller).
 * Returns 0 when the run happened (even if every connection failed), or a negative UV_E*
 * code with a message in `err` when it could not start (bad --cafile, unresolvable target).
 */
int tlsc_bench_run(const tlsc_bench_options_t *o, tlsc_bench_result_t *r, char *err, size_t errlen);

#endif
