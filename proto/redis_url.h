#ifndef TLSC_REDIS_URL_H
#define TLSC_REDIS_URL_H

/*
 * redis://[user[:pass]@]host[:port][/db][?db=N] (host may be [v6]) and unix:///path[?db=N]
 * (also unix:/path and unix://[user[:pass]@]/path), parsed into owned strings. A user without
 * a password gets one from elsewhere (the server's --redis-pass-file). rediss:// is
 * redis:// over TLS (`tls` set). Percent-escapes in user and password are decoded; a decoded
 * NUL or control byte is refused. Bounds: host 253 bytes (common/addr.h parses host and port), path 107 (sun_path), user
 * 255, password 1024, port 1..65535, db 0..65535, whole URL 4096. The password is a secret:
 * tlsc_redis_url_free wipes it, and neither error messages nor tlsc_redis_url_describe
 * print it (nor the user name).
 *
 * redis-sentinel://[user[:pass]@]h1[:26379],h2[:26379],.../MASTERNAME[/db][?db=N] names up to
 * 16 sentinels (port 26379 by default) and the master they watch (1..64 bytes of
 * [A-Za-z0-9._-]); host and path are NULL then, and the credentials are the data nodes'.
 *
 * redis-cluster://[user[:pass]@]h1[:p1],h2[:p2],... names the seed nodes of a Redis Cluster
 * (at most TLSC_REDIS_URL_SEEDS_MAX; `cluster` set, host/port are the first seed's, db is 0,
 * the only one a cluster has). Every seed is parsed like a redis:// host.
 *
 * rediss-sentinel:// and rediss-cluster:// are the same over TLS (`tls` set): with Sentinel,
 * both the sentinels and the data nodes are spoken to over TLS.
 *
 * A sentinel's own credentials (Sentinel's requirepass / ACL users) never come from the URL,
 * whose credentials are the data nodes': sentinel_user and sentinel_password are set from
 * elsewhere (the server's --redis-sentinel-user and --redis-sentinel-pass-file), and are
 * copied, wiped and kept out of messages like the others.
 */

#include <stddef.h>

#define TLSC_REDIS_SENTINELS_MAX   16
#define TLSC_REDIS_MASTER_NAME_MAX 64
#define TLSC_REDIS_URL_SEEDS_MAX   32 /* seed nodes one redis-cluster:// URL may name */

/** A sentinel's address, or a cluster seed's. */
typedef struct {
    char *host;
    unsigned port; /* default 26379 */
} tlsc_redis_node_t;

typedef struct {
    char *host;                   /* NULL for unix sockets and redis-sentinel:// */
    unsigned port;                /* default 6379 */
    char *path;                   /* unix socket path, or NULL */
    char *user;                   /* ACL user, or NULL */
    char *password;               /* or NULL */
    unsigned db;                  /* SELECT db, default 0 */
    int tls;                      /* rediss:// */
    tlsc_redis_node_t *sentinels; /* redis-sentinel://: 1..TLSC_REDIS_SENTINELS_MAX of them, else NULL */
    size_t nsentinels;
    char *master_name;        /* redis-sentinel://: the master the sentinels watch */
    int cluster;              /* redis-cluster:// */
    tlsc_redis_node_t *seeds; /* redis-cluster://: 1..TLSC_REDIS_URL_SEEDS_MAX of them, else NULL */
    size_t nseeds;
    char *sentinel_user;     /* the sentinels' ACL user, or NULL (never from the URL) */
    char *sentinel_password; /* the sentinels' password, or NULL (never from the URL) */
} tlsc_redis_url_t;

/**
 * Parses `url`; returns 0 or -1 with a reason naming the bad part in `err` ("redis URL: bad
 * port \"abc\" (1..65535)"). `out` is zeroed first and holds nothing after a failure.
 */
int tlsc_redis_url_parse(const char *url, tlsc_redis_url_t *out, char *err, size_t errlen);
/**
 * Checks a password that comes from elsewhere than a URL (a file, the environment) by the
 * URL's rules: 1..1024 bytes, no control byte. Returns 0, or -1 with a reason in `why` that
 * never quotes it.
 */
int tlsc_redis_password_check(const char *pw, char *why, size_t whylen);
/**
 * A password from `file` (read as a secret: mode 0600 or a systemd credential, bounded, one
 * trailing newline dropped), else from `env` (when set and not empty): *out is a heap copy the
 * caller wipes (tlsc_secure_free), or NULL when neither gives one. -1 with one line in `err`
 * naming `file_flag` or `env_name` (never the password) when it cannot be read or is not a
 * password Redis would take.
 */
int tlsc_redis_password_take(const char *file, const char *file_flag, const char *env, const char *env_name, char **out, char *err,
                             size_t errlen);

/**
 * For the tools (tlscache-ctl, tlscache-bench): gives `u` the password its URL does not hold,
 * from `pass_file` (a secret file, 0600, one line) or else `env_pass` (the value of
 * TLSCACHE_REDIS_PASS; NULL or "" = none), the file first. A URL with a password of its own
 * and another source, or a user with no password anywhere, is refused. Returns 0, or -1 with
 * one line in `err` naming the flag or file, never the password.
 */
int tlsc_redis_url_take_password(tlsc_redis_url_t *u, const char *pass_file, const char *env_pass, char *err, size_t errlen);
/** The line a tool prints when a password comes on its command line (argv is in every `ps`). */
#define TLSC_REDIS_ARGV_PASSWORD                                                                                                   \
    "a password on the command line is visible to every local user (ps); give it with --redis-pass-file FILE or "                  \
    "TLSCACHE_REDIS_PASS"
/** Frees and wipes. Safe on a zeroed struct. */
void tlsc_redis_url_free(tlsc_redis_url_t *u);
/** Copies `src` into `dst` (zeroed first, and zeroed again on failure). Returns 0 or -1 (out of memory). */
int tlsc_redis_url_copy(tlsc_redis_url_t *dst, const tlsc_redis_url_t *src);
/**
 * Writes "host:port/db", "[v6]:port/db" (with "rediss://" before them over TLS),
 * "unix:/path?db=N", "sentinel:NAME/db" ("rediss-sentinel:NAME/db" over TLS) or
 * "redis-cluster://h1:p1,h2:p2" ("rediss-cluster://...") with no credentials, for logs.
 */
void tlsc_redis_url_describe(const tlsc_redis_url_t *u, char *out, size_t outlen);

#endif
