#ifndef TLSC_BENCH_OPTIONS_H
#define TLSC_BENCH_OPTIONS_H

/*
 * The command line of tlscache-bench, parsed into one struct. Parsing is pure (no sockets, no
 * name resolution, no files opened) so every flag can be unit-tested; names are resolved
 * and files read when the run starts.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TLSC_BENCH_MAX_TARGETS 64

typedef enum {
    TLSC_BENCH_MODE_FULL = 0, /* never offer a session */
    TLSC_BENCH_MODE_ID,       /* TLS 1.2 session IDs (no ticket extension); TLS 1.3 whatever the server issues */
    TLSC_BENCH_MODE_TICKET,   /* TLS 1.2 stateless tickets; TLS 1.3 whatever the server issues */
} tlsc_bench_mode_t;

typedef enum {
    TLSC_BENCH_BALANCE_RR = 0,
    TLSC_BENCH_BALANCE_RANDOM,
} tlsc_bench_balance_t;

typedef struct {
    char host[256]; /* without brackets for IPv6 */
    unsigned port;
    char label[272]; /* "host:port" or "[v6]:port", as printed in reports */
} tlsc_bench_target_t;

typedef struct {
    tlsc_bench_target_t targets[TLSC_BENCH_MAX_TARGETS];
    size_t ntargets;
    tlsc_bench_balance_t balance;
    uint64_t connections; /* 0 when --duration is used */
    double duration_sec;  /* 0 when --connections is used */
    unsigned concurrency;
    int tls_version; /* 0 (1.2 or 1.3, as negotiated), TLS1_2_VERSION or TLS1_3_VERSION */
    tlsc_bench_mode_t mode;
    uint64_t new_session_every; /* 0: only when no session is at hand */
    const char *sni;            /* NULL: the target's host when it is a name, none for IP literals */
    int no_sni;
    const char *alpn; /* "h2,http/1.1" */
    int request;
    const char *request_path;
    const char *json_file, *csv_file, *plot_file;
    const char *redis_url, *redis_prefix;
    const char *redis_pass_file;          /* --redis-pass-file; else TLSCACHE_REDIS_PASS; never in argv */
    const char *redis_sentinel_pass_file; /* --redis-sentinel-pass-file; else TLSCACHE_REDIS_SENTINEL_PASS */
    const char *redis_sentinel_user;      /* --redis-sentinel-user */
    const char *redis_ca_file, *redis_cert_file, *redis_key_file; /* --redis-ca, --redis-cert, --redis-key (TLS) */
    unsigned redis_settle_ms;
    const char *cafile;
    const char *groups, *ciphers, *ciphersuites;
    unsigned timeout_ms;
    unsigned ticket_wait_ms;
    uint64_t seed;
    int seed_set;
    const char *label; /* a name for this run in JSON and CSV, e.g. the peer under test */
    int quiet;
} tlsc_bench_options_t;

/** Fills the defaults (one target is still required). */
void tlsc_bench_options_init(tlsc_bench_options_t *o);
/**
 * Parses argv[1..argc-1] ("--flag value" or "--flag=value") with the common option parser
 * (common/opts.h); strings point into argv. Returns 0; 1 after printing --help or --version
 * to stdout (nothing else checked; exit 0); or -1 with one line naming the flag and the value
 * in `err` (exit 2, bad usage).
 */
int tlsc_bench_options_parse(tlsc_bench_options_t *o, int argc, char **argv, char *err, size_t errlen);
/** Parses "host:port", "[v6]:port" (common/addr.h); returns 0 or -1 with a reason in `err`. */
int tlsc_bench_target_parse(const char *s, tlsc_bench_target_t *t, char *err, size_t errlen);
/** Turns "h2,http/1.1" into ALPN wire format; returns the length or -1 if a name is empty or too long. */
int tlsc_bench_alpn_wire(const char *list, unsigned char *out, size_t cap);
/** The name printed for a mode: "full", "id", "ticket". */
const char *tlsc_bench_mode_name(tlsc_bench_mode_t m);
/** Writes the --help text, made from the same table as the parser. */
void tlsc_bench_usage(FILE *out);

#endif
