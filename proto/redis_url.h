#ifndef TLSC_REDIS_URL_H
#define TLSC_REDIS_URL_H

/*
 * redis://[user:pass@]host:port[/db] and unix:///path[?db=N] (also unix:/path), parsed into
 * owned strings. Percent-escapes in user and password are decoded. The password is a secret:
 * tlsc_redis_url_free wipes it and tlsc_redis_url_describe never prints it.
 */

#include <stddef.h>

typedef struct {
    char *host;      /* NULL for unix sockets */
    unsigned port;   /* default 6379 */
    char *path;      /* unix socket path, or NULL */
    char *user;      /* ACL user, or NULL */
    char *password;  /* or NULL */
    unsigned db;     /* SELECT db, default 0 */
} tlsc_redis_url_t;

/** Parses `url`; returns 0 or -1 with a reason in `err`. `out` is zeroed first. */
int tlsc_redis_url_parse(const char *url, tlsc_redis_url_t *out, char *err, size_t errlen);
/** Frees and wipes. Safe on a zeroed struct. */
void tlsc_redis_url_free(tlsc_redis_url_t *u);
/** Writes "host:port/db" or "unix:/path/db" with no credentials, for logs. */
void tlsc_redis_url_describe(const tlsc_redis_url_t *u, char *out, size_t outlen);

#endif
