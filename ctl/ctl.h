#ifndef TLSC_CTL_H
#define TLSC_CTL_H

/*
 * tlscache-ctl's shared pieces: what the flags fill in, and one entry point per subcommand.
 * Each returns a tlsc_opts_exit_t (0 ok, 1 a failure at run time, 2 bad usage) after printing
 * its result on stdout and any error, one line, on stderr. Nothing here prints key bytes,
 * sealed session bytes or secrets: sessions show their readable fields, keys their tags.
 */

#include <stddef.h>
#include <stdint.h>

#include "redis_sync.h"

#define TLSC_CTL_LIMIT_DEFAULT 100
#define TLSC_CTL_LIMIT_MAX     1000000

typedef struct {
    /* Every string is owned (main.c frees them). */
    char *redis_url;                         /* --redis */
    char *redis_pass_file;                   /* --redis-pass-file */
    const char *redis_pass_env;              /* TLSCACHE_REDIS_PASS, or NULL: the environment's, not owned */
    char *redis_sentinel_pass_file;          /* --redis-sentinel-pass-file */
    char *redis_sentinel_user;               /* --redis-sentinel-user */
    const char *redis_sentinel_pass_env;     /* TLSCACHE_REDIS_SENTINEL_PASS, or NULL: not owned */
    char *redis_ca, *redis_cert, *redis_key; /* --redis-ca, --redis-cert, --redis-key (TLS) */
    char *prefix;                            /* --redis-prefix */
    char *keyd;                              /* --keyd HOST:PORT or unix:PATH */
    char *keyd_secret_file;                  /* --keyd-secret-file */
    unsigned timeout_ms;                     /* --timeout: connect and each request */
    char *sni, *node;                        /* filters (--sni, --node) */
    unsigned limit;                          /* --limit: sessions listed */
    int have_limit, all, dry_run;
    const char *id; /* the ID of `sessions show|revoke ID` */
} tlsc_ctl_t;

/** `sessions list`: SCAN <prefix>:sess:*, print readable fields and TTL of up to --limit records. */
int tlsc_ctl_sessions_list(const tlsc_ctl_t *c);
/** `sessions show ID`. */
int tlsc_ctl_sessions_show(const tlsc_ctl_t *c);
/** `sessions revoke ID | --sni | --node | --all [--dry-run]`: delete, count, PUBLISH <prefix>:revoked. */
int tlsc_ctl_sessions_revoke(const tlsc_ctl_t *c);
/** `stats`: cluster-wide and per-node figures from the <prefix>:stats:<node>:<worker> hashes. */
int tlsc_ctl_stats(const tlsc_ctl_t *c);
/** `keys status` (rotate == 0) and `keys rotate` (rotate != 0), through the daemon's link. */
int tlsc_ctl_keys(const tlsc_ctl_t *c, int rotate);

/** The Redis link options of the flags; `o` points into `c`. */
void tlsc_ctl_redis_options(const tlsc_ctl_t *c, tlsc_ctlredis_options_t *o);
/** tlsc_ctlredis_connect with the flags' options; prints the error line (tlscache-ctl: ...) itself. Returns 0 or -1. */
int tlsc_ctl_redis_connect(const tlsc_ctl_t *c, tlsc_ctlredis_t **r);

/** Writes `len` bytes of an untrusted value printable: control and non-ASCII bytes as \xNN, cut after `max` bytes. */
void tlsc_ctl_printable(char *out, size_t outlen, const char *s, size_t len, size_t max);
/** tlsc_ctl_printable keeping spaces: for a message Redis sent (an error reply), shown on one line. */
void tlsc_ctl_printable_text(char *out, size_t outlen, const char *s, size_t len, size_t max);
/** Writes "2026-12-02T01:02:03Z" for `t` seconds since the epoch. */
void tlsc_ctl_time(char *out, size_t outlen, uint64_t t);

#endif
