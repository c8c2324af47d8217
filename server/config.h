#ifndef TLSC_CONFIG_H
#define TLSC_CONFIG_H

/*
 * The server's configuration: command-line flags, each also readable from a TLSCACHE_* env
 * var (flag wins over env). Parsing validates values and names the flag in every error; it
 * does not open certificate files (tls.c does, so SIGHUP can reload them).
 *
 * Env: TLSCACHE_<FLAG> with '-' as '_' (TLSCACHE_SESSION_TIMEOUT); repeatable flags take a
 * comma list (TLSCACHE_LISTEN="a:1,b:2", TLSCACHE_CERT / TLSCACHE_KEY / TLSCACHE_OCSP paired
 * in order); an empty variable counts as unset; a --cert, --key or --ocsp on the command line
 * replaces all three variables. TLSCACHE_PFX_PASS carries the PFX passphrase and
 * TLSCACHE_REDIS_PASS the Redis password (TLSCACHE_REDIS_SENTINEL_PASS the sentinels'), which
 * are never read from argv (nor is a --redis URL with a password).
 */

#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"
#include "routes.h"

typedef enum {
    TLSC_RESUME_CACHE = 1,   /* session IDs + TLS 1.3 stateful tickets through Redis */
    TLSC_RESUME_TICKETS = 2, /* stateless tickets with keys from tlscache-daemon */
    TLSC_RESUME_BOTH = 3,
} tlsc_resumption_t;

typedef struct {
    char *host; /* numeric or name; "" or "*" means any; IPv6 without brackets */
    char *port; /* decimal, 1..65535 */
} tlsc_listen_t;

typedef struct {
    char *cert_file; /* PEM chain */
    char *key_file;  /* PEM key */
} tlsc_cert_pair_t;

typedef struct tlsc_config_s {
    tlsc_listen_t *listen; /* --listen HOST:PORT, repeatable; default 0.0.0.0:8443 */
    size_t n_listen;
    unsigned workers;        /* --workers N, default: number of cores */
    char *node;              /* --node NAME, default: hostname */
    char *cluster;           /* --cluster NAME, default "tlscache" */
    tlsc_cert_pair_t *certs; /* --cert FILE --key FILE, repeatable pairs */
    size_t n_certs;
    char **ocsp_files; /* --ocsp FILE, repeatable: the i-th for the i-th certificate (--cert pairs, then --pfx); NULL = none */
    size_t n_ocsp;
    int ocsp_fetch;                 /* --ocsp-fetch: the master refreshes the --ocsp files from each certificate's responder */
    char *pfx_file;                 /* --pfx FILE */
    char *pfx_pass_file;            /* --pfx-pass-file FILE (or env TLSCACHE_PFX_PASS_FILE) */
    char *pfx_pass;                 /* env TLSCACHE_PFX_PASS, only when no pass file; secret, wiped by free */
    char *alpn;                     /* --alpn "h2,http/1.1"; NULL = no ALPN */
    char *groups;                   /* --groups "X25519:P-256"; NULL = OpenSSL default */
    char *dhparam_file;             /* --dhparam FILE */
    int min_tls, max_tls;           /* --min-tls / --max-tls: TLS1_2_VERSION or TLS1_3_VERSION */
    char *ciphers;                  /* --ciphers (TLS 1.2) */
    char *ciphersuites;             /* --ciphersuites (TLS 1.3) */
    unsigned session_timeout;       /* --session-timeout SEC, default 300 */
    char *redis_url_str;            /* --redis URL, default redis://127.0.0.1:6379 */
    tlsc_redis_url_t redis;         /* parsed from redis_url_str; the password from the URL, the env or the file */
    char *redis_pass_file;          /* --redis-pass-file FILE, read by tlsc_config_load_redis_pass */
    char *redis_pass;               /* env TLSCACHE_REDIS_PASS while parsing; moved into redis.password */
    char *redis_sentinel_pass_file; /* --redis-sentinel-pass-file FILE, read by tlsc_config_load_redis_pass */
    char *redis_sentinel_pass;      /* env TLSCACHE_REDIS_SENTINEL_PASS while parsing; moved into redis.sentinel_password */
    char *redis_sentinel_user;      /* --redis-sentinel-user NAME while parsing; moved into redis.sentinel_user */
    char *redis_ca_file;            /* --redis-ca FILE: required with rediss:// */
    char *redis_cert_file;          /* --redis-cert FILE, with --redis-key: a client certificate for rediss:// */
    char *redis_key_file;           /* --redis-key FILE */
    char *redis_prefix;             /* --redis-prefix P, default "tlscache" */
    unsigned lookup_timeout_ms;     /* --lookup-timeout MS, default 10 */
    unsigned store_timeout_ms;      /* --store-timeout MS, default 50: how long a new session's bytes wait */
    unsigned store_replicas;        /* --store-replicas N, default 0: WAIT for N replicas after each store */
    uint64_t local_cache_bytes;     /* --local-cache SIZE, default 64m; 0 = off */
    tlsc_resumption_t resumption;   /* --resumption, default cache */
    int log_level;                  /* --log-level error|warn|info|debug (tlsc_log_level_t) */
    int log_format;                 /* --log-format text|json (tlsc_log_format_t) */
    char *access_log;               /* --access-log FILE|-: one line per connection; NULL = none */
    char *admin;                    /* --admin HOST:PORT for /metrics, /healthz, /readyz; NULL = off */
    unsigned drain_timeout_sec;     /* --drain-timeout SEC, default 10 */
    unsigned handshake_timeout_sec; /* --handshake-timeout SEC, default 10 */
    unsigned max_conns;             /* --max-conns N per worker; 0 = from the fd limit */
    char *keyd;                     /* --keyd HOST:PORT|unix:PATH (daemon issue) */
    char *keyd_secret_file;         /* --keyd-secret-file FILE */
    int reuseport_share;            /* --reuseport-share: join a port another process already listens on */
    char *seal_secret_file;         /* --seal-secret-file FILE: seals session records without the daemon */
    int insecure_plain_records;     /* --insecure-plain-records: records readable in Redis (warned at every start) */
    char *user;                     /* --user NAME[:GROUP]: what workers run as; NULL = stay */
    unsigned run_uid, run_gid;      /* resolved from --user */
    int check;                      /* --check / -t: validate, print what would be served, exit */
    tlsc_routes_t routes;           /* --backend [MATCH=]ADDR, repeatable, or --backends-file; none = the built-in responder */
    char *backends_file;            /* --backends-file FILE: the routes, read at start and on SIGHUP */
    unsigned backend_timeout_ms;    /* --backend-timeout MS, default 3000: connecting to a backend */
    unsigned idle_timeout_sec;      /* --idle-timeout SEC, default 300: a proxied connection silent both ways */
    int proxy_protocol;             /* --proxy-protocol v1|v2: sent to backends first; 0 = none */
    int accept_proxy;               /* --accept-proxy: every client connection starts with a PROXY v1/v2 header */
} tlsc_config_t;

/**
 * Fills `cfg` from argv and envp. Returns 0 on success; 1 when --help or --version was
 * printed to stdout (exit 0); a negative code with a one-line message in `err` naming the
 * flag and value. `cfg` must be freed with tlsc_config_free in every case.
 */
int tlsc_config_parse(tlsc_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen);

/**
 * Reads --redis-pass-file (a secret file: mode 0600, at most 1024 bytes and a newline, no
 * control bytes) into cfg->redis.password, and --redis-sentinel-pass-file likewise into
 * cfg->redis.sentinel_password. A no-op without the flags. Returns 0, or a negative
 * code with one line naming the flag and the file (never the password) in `err`.
 */
int tlsc_config_load_redis_pass(tlsc_config_t *cfg, char *err, size_t errlen);

/**
 * Reads --backends-file: one `--backend` value a line; blank lines and lines starting with `#`
 * are skipped. At most TLSC_CONFIG_BACKENDS_FILE_MAX bytes, at least one route. Fills `out`
 * (empty on entry; freed on error). Returns 0, or -1 with "FILE:LINE: reason" in `err`.
 */
#define TLSC_CONFIG_BACKENDS_FILE_MAX (256 * 1024)
int tlsc_config_read_backends(const char *path, tlsc_routes_t *out, char *err, size_t errlen);

/** Frees everything tlsc_config_parse allocated; wipes secrets. */
void tlsc_config_free(tlsc_config_t *cfg);

#endif
