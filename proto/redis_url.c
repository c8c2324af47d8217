#include "redis_url.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "util.h"

/*
 * The parser walks the URL once, left to right, and bounds every part before it copies it.
 * Error messages name the part that is wrong and may quote the host, port or database, which
 * are not secret, but never the user name or the password: a URL in a config file is often
 * the only place a Redis password lives, and error messages end up in logs.
 */

#define URL_MAX      4096 /* a whole URL, percent-escapes included */
#define USER_MAX     255
#define PASSWORD_MAX 1024
#define PATH_MAX_LEN 107 /* sizeof(sun_path) - 1 on Linux */
#define DB_MAX       65535u
#define QUOTE_MAX    32 /* how much of a bad value an error message quotes */

/* ================================ errors ================================ */

static int fail(tlsc_redis_url_t *out, char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(tlsc_redis_url_t *out, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n;

    tlsc_redis_url_free(out);
    if (err == NULL || errlen == 0)
        return -1;
    n = snprintf(err, errlen, "redis URL: ");
    if (n > 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * Copies at most QUOTE_MAX bytes of a non-secret part into `buf` for an error message, with
 * anything unprintable replaced by '?', so that a hostile URL cannot put control bytes into
 * a log line.
 */
static const char *quote(char *buf, size_t bufsize, const char *s, size_t n)
{
    size_t i, lim = bufsize - 4;

    for (i = 0; i < n && i < lim; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* ================================ parts ================================ */

/* A database number: the common unsigned parser, into an unsigned. */
static int parse_number(const char *s, size_t n, unsigned max, unsigned *out)
{
    uint64_t v;

    if (tlsc_parse_uint_n(s, n, 0, max, &v) != 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/*
 * Decodes %XX escapes of a user name or password into a new string. `what` names the part in
 * error messages; its bytes never appear there. A decoded NUL is refused because the value
 * goes on as a C string, and control bytes because no sane credential holds them.
 */
static int decode_secret(const char *s, size_t n, size_t max, const char *what, char **out, char *reason, size_t reasonlen)
{
    char *buf;
    size_t len = 0;

    if ((buf = malloc(n + 1)) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3 || (hi = tlsc_hex_digit(s[i + 1])) < 0 || (lo = tlsc_hex_digit(s[i + 2])) < 0) {
                snprintf(reason, reasonlen, "bad percent-escape in the %s", what);
                goto fail;
            }
            c = (unsigned char)(hi << 4 | lo);
            if (c == 0) {
                snprintf(reason, reasonlen, "the %s holds a NUL byte (%%00)", what);
                goto fail;
            }
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(reason, reasonlen, "the %s holds a control character", what);
            goto fail;
        }
        buf[len++] = (char)c;
    }
    if (len > max) {
        snprintf(reason, reasonlen, "the %s is longer than %zu bytes", what, max);
        goto fail;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;

fail:
    tlsc_secure_free(buf, n + 1);
    return -1;
}

/*
 * Splits "user:password", ":password" or a bare "user" (whose password comes from elsewhere,
 * e.g. --redis-pass-file) and decodes the parts into `out`.
 */
static int parse_userinfo(const char *s, size_t n, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen, plen;

    if (colon == NULL) {
        if (n == 0) {
            snprintf(reason, reasonlen, "empty credentials before '@'");
            return -1;
        }
        return decode_secret(s, n, USER_MAX, "user name", &out->user, reason, reasonlen);
    }
    ulen = (size_t)(colon - s);
    plen = n - ulen - 1;
    if (plen == 0) {
        snprintf(reason, reasonlen, "empty password");
        return -1;
    }
    if (ulen > 0 && decode_secret(s, ulen, USER_MAX, "user name", &out->user, reason, reasonlen) != 0)
        return -1;
    return decode_secret(colon + 1, plen, PASSWORD_MAX, "password", &out->password, reason, reasonlen);
}

static char *copy_string(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/*
 * Parses "?db=N", the one parameter there is. A database already given as "/N" must agree.
 * Unknown keys are named in the error (keys are not secret), their values are not.
 */
static int parse_query(const char *q, int *db_set, unsigned *db, char *reason, size_t reasonlen)
{
    char qb[QUOTE_MAX + 4];

    while (*q != '\0') {
        size_t n = strcspn(q, "&"), klen = strcspn(q, "=");
        unsigned v;

        if (klen >= n) {
            snprintf(reason, reasonlen, "parameter \"%s\" without a value", quote(qb, sizeof(qb), q, n));
            return -1;
        }
        if (klen == 2 && memcmp(q, "db", 2) == 0) {
            if (parse_number(q + 3, n - 3, DB_MAX, &v) != 0) {
                snprintf(reason, reasonlen, "bad database \"%s\" (0..%u)", quote(qb, sizeof(qb), q + 3, n - 3), DB_MAX);
                return -1;
            }
            if (*db_set && *db != v) {
                snprintf(reason, reasonlen, "two different databases given");
                return -1;
            }
            *db_set = 1;
            *db = v;
        } else {
            snprintf(reason, reasonlen, "unknown parameter \"%s\" (only db=N)", quote(qb, sizeof(qb), q, klen));
            return -1;
        }
        q += n;
        if (*q == '&' && *++q == '\0') {
            snprintf(reason, reasonlen, "trailing '&'");
            return -1;
        }
    }
    return 0;
}

/*
 * Everything after the authority: an optional "/db" (redis://) and an optional query. `p`
 * points at '/' or '?' or the end.
 */
static int parse_tail(const char *p, int allow_db_path, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    char qb[QUOTE_MAX + 4];
    int db_set = 0;

    if (allow_db_path && *p == '/') {
        size_t n = strcspn(++p, "?");
        if (n > 0) {
            if (parse_number(p, n, DB_MAX, &out->db) != 0) {
                snprintf(reason, reasonlen, "bad database \"%s\" (0..%u)", quote(qb, sizeof(qb), p, n), DB_MAX);
                return -1;
            }
            db_set = 1;
        }
        p += n;
    }
    if (*p == '?')
        return parse_query(p + 1, &db_set, &out->db, reason, reasonlen);
    if (*p != '\0') {
        snprintf(reason, reasonlen, "trailing garbage \"%s\"", quote(qb, sizeof(qb), p, strlen(p)));
        return -1;
    }
    return 0;
}

/* "host[:port]" or "[v6]:port", no credentials: the common address parser, port 6379 by default. */
static int parse_hostport(const char *s, size_t n, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    char qb[QUOTE_MAX + 4], why[128];
    tlsc_addr_t a;

    if (tlsc_addr_parse(s, n, TLSC_ADDR_PORT_OPTIONAL, 6379, &a, why, sizeof(why)) != 0) {
        snprintf(reason, reasonlen, "%s in \"%s\"", why, quote(qb, sizeof(qb), s, n));
        return -1;
    }
    if ((out->host = copy_string(a.host, strlen(a.host))) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    out->port = a.port;
    return 0;
}

/*
 * The credentials of an authority of `alen` bytes at `p`, if any: the last '@' ends them, so a
 * password may hold a raw '@'. Sets *hosts to what follows them (or `p`). Returns 0 or -1.
 */
static int take_userinfo(const char *p, size_t alen, tlsc_redis_url_t *out, const char **hosts, char *reason, size_t reasonlen)
{
    const char *at = NULL;

    for (size_t i = alen; i > 0 && at == NULL; i--)
        if (p[i - 1] == '@')
            at = p + i - 1;
    *hosts = at != NULL ? at + 1 : p;
    return at != NULL ? parse_userinfo(p, (size_t)(at - p), out, reason, reasonlen) : 0;
}

/* ================================ schemes ================================ */

/* redis://[user:pass@]host[:port][/db][?db=N] */
static int parse_tcp(const char *p, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    size_t alen = strcspn(p, "/?");
    const char *host;

    if (take_userinfo(p, alen, out, &host, reason, reasonlen) != 0 ||
        parse_hostport(host, (size_t)(p + alen - host), out, reason, reasonlen) != 0)
        return -1;
    return parse_tail(p + alen, 1, out, reason, reasonlen);
}

/* unix:/path[?db=N] and unix://[user:pass@]/path[?db=N] */
static int parse_unix(const char *p, int authority, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    size_t n;

    if (authority) {
        size_t alen = strcspn(p, "/");

        if (alen > 0) {
            if (p[alen - 1] != '@') {
                snprintf(reason, reasonlen, "a unix socket URL names no host (unix:///path or unix:/path)");
                return -1;
            }
            if (parse_userinfo(p, alen - 1, out, reason, reasonlen) != 0)
                return -1;
        }
        p += alen;
    }
    n = strcspn(p, "?");
    if (n == 0 || p[0] != '/') {
        snprintf(reason, reasonlen, "the unix socket path must be absolute");
        return -1;
    }
    if (n > PATH_MAX_LEN) {
        snprintf(reason, reasonlen, "unix socket path longer than %d bytes", PATH_MAX_LEN);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '#') {
            snprintf(reason, reasonlen, "bad character in the unix socket path");
            return -1;
        }
    }
    if ((out->path = copy_string(p, n)) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    return parse_tail(p + n, 0, out, reason, reasonlen);
}

/* The master's name: what SENTINEL get-master-addr-by-name takes and +switch-master says. */
static int master_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > TLSC_REDIS_MASTER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/*
 * redis-sentinel://[user:pass@]h1[:port],h2[:port],.../MASTERNAME[/db][?db=N]. The sentinel
 * list is split on ',' (a bracketed IPv6 address holds none); each one goes through the common
 * address parser with 26379 as the default port.
 */
static int parse_sentinel(const char *p, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    char qb[QUOTE_MAX + 4], why[128];
    size_t alen = strcspn(p, "/?"), n, count = 1;
    const char *list, *end;

    if (take_userinfo(p, alen, out, &list, reason, reasonlen) != 0)
        return -1;
    end = p + alen;
    for (const char *c = list; c < end; c++)
        count += *c == ',';
    if (count > TLSC_REDIS_SENTINELS_MAX) {
        snprintf(reason, reasonlen, "more than %d sentinels", TLSC_REDIS_SENTINELS_MAX);
        return -1;
    }
    if ((out->sentinels = calloc(count, sizeof(*out->sentinels))) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    while (out->nsentinels < count) {
        const char *comma = memchr(list, ',', (size_t)(end - list));
        size_t len = comma != NULL ? (size_t)(comma - list) : (size_t)(end - list);
        tlsc_redis_node_t *node = &out->sentinels[out->nsentinels];
        tlsc_addr_t a;

        if (len == 0) {
            snprintf(reason, reasonlen, "an empty sentinel address");
            return -1;
        }
        if (tlsc_addr_parse(list, len, TLSC_ADDR_PORT_OPTIONAL, 26379, &a, why, sizeof(why)) != 0) {
            snprintf(reason, reasonlen, "sentinel %zu: %s in \"%s\"", out->nsentinels + 1, why, quote(qb, sizeof(qb), list, len));
            return -1;
        }
        if ((node->host = copy_string(a.host, strlen(a.host))) == NULL) {
            snprintf(reason, reasonlen, "out of memory");
            return -1;
        }
        node->port = a.port;
        out->nsentinels++;
        list += len + 1;
    }
    if (*end != '/') {
        snprintf(reason, reasonlen, "no master name (redis-sentinel://h1:26379,h2:26379/MASTERNAME)");
        return -1;
    }
    n = strcspn(++end, "/?");
    if (!master_name_ok(end, n)) {
        snprintf(reason, reasonlen, "bad master name \"%s\" (1..%d of A-Z a-z 0-9 . _ -)", quote(qb, sizeof(qb), end, n),
                 TLSC_REDIS_MASTER_NAME_MAX);
        return -1;
    }
    if ((out->master_name = copy_string(end, n)) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    return parse_tail(end + n, 1, out, reason, reasonlen);
}

/*
 * redis-cluster://[user:pass@]h1[:p1],h2[:p2],...[/0][?db=0]: the seeds, each a host[:port]
 * as in redis://. A cluster has only database 0, so any other is refused here rather than
 * by every node at SELECT.
 */
static int parse_cluster(const char *p, tlsc_redis_url_t *out, char *reason, size_t reasonlen)
{
    size_t alen = strcspn(p, "/?"), n;
    const char *s, *end = p + alen;

    if (take_userinfo(p, alen, out, &s, reason, reasonlen) != 0)
        return -1;
    n = 1;
    for (const char *c = s; c < end; c++)
        n += *c == ',';
    if (n > TLSC_REDIS_URL_SEEDS_MAX) {
        snprintf(reason, reasonlen, "more than %d cluster seed nodes", TLSC_REDIS_URL_SEEDS_MAX);
        return -1;
    }
    if ((out->seeds = calloc(n, sizeof(*out->seeds))) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    out->nseeds = n;
    for (size_t i = 0; i < n; i++) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        size_t len = comma != NULL ? (size_t)(comma - s) : (size_t)(end - s);

        if (len == 0) {
            snprintf(reason, reasonlen, "an empty cluster seed (h1:p1,h2:p2,...)");
            return -1;
        }
        if (parse_hostport(s, len, out, reason, reasonlen) != 0)
            return -1;
        out->seeds[i].host = out->host; /* parse_hostport fills host/port; the seed takes them */
        out->seeds[i].port = out->port;
        out->host = NULL;
        s += len + 1;
    }
    if ((out->host = copy_string(out->seeds[0].host, strlen(out->seeds[0].host))) == NULL) {
        snprintf(reason, reasonlen, "out of memory");
        return -1;
    }
    out->port = out->seeds[0].port;
    if (parse_tail(end, 1, out, reason, reasonlen) != 0)
        return -1;
    if (out->db != 0) {
        snprintf(reason, reasonlen, "a Redis Cluster has only database 0");
        return -1;
    }
    return 0;
}

/* ================================ API ================================ */

int tlsc_redis_url_parse(const char *url, tlsc_redis_url_t *out, char *err, size_t errlen)
{
    char reason[160];
    int rc;

    memset(out, 0, sizeof(*out));
    reason[0] = '\0';
    if (url == NULL || *url == '\0')
        return fail(out, err, errlen, "empty");
    if (strnlen(url, URL_MAX + 1) > URL_MAX)
        return fail(out, err, errlen, "longer than %d bytes", URL_MAX);
    if (strncasecmp(url, "redis://", 8) == 0) {
        rc = parse_tcp(url + 8, out, reason, sizeof(reason));
    } else if (strncasecmp(url, "rediss://", 9) == 0) {
        out->tls = 1;
        rc = parse_tcp(url + 9, out, reason, sizeof(reason));
    } else if (strncasecmp(url, "redis-sentinel://", 17) == 0) {
        rc = parse_sentinel(url + 17, out, reason, sizeof(reason));
    } else if (strncasecmp(url, "rediss-sentinel://", 18) == 0) {
        out->tls = 1;
        rc = parse_sentinel(url + 18, out, reason, sizeof(reason));
    } else if (strncasecmp(url, "redis-cluster://", 16) == 0) {
        out->cluster = 1;
        rc = parse_cluster(url + 16, out, reason, sizeof(reason));
    } else if (strncasecmp(url, "rediss-cluster://", 17) == 0) {
        out->cluster = out->tls = 1;
        rc = parse_cluster(url + 17, out, reason, sizeof(reason));
    } else if (strncasecmp(url, "unix://", 7) == 0)
        rc = parse_unix(url + 7, 1, out, reason, sizeof(reason));
    else if (strncasecmp(url, "unix:", 5) == 0)
        rc = parse_unix(url + 5, 0, out, reason, sizeof(reason));
    else
        return fail(out, err, errlen,
                    "must start with redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster://, "
                    "rediss-cluster://, unix:// or unix:");
    if (rc != 0)
        return fail(out, err, errlen, "%s", reason);
    return 0;
}

int tlsc_redis_password_check(const char *pw, char *why, size_t whylen)
{
    size_t n = strnlen(pw, PASSWORD_MAX + 1);

    if (n == 0) {
        snprintf(why, whylen, "the password is empty");
        return -1;
    }
    if (n > PASSWORD_MAX) {
        snprintf(why, whylen, "the password is longer than %d bytes", PASSWORD_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f) {
            snprintf(why, whylen, "the password holds a control character");
            return -1;
        }
    }
    return 0;
}

int tlsc_redis_password_take(const char *file, const char *file_flag, const char *env, const char *env_name, char **out, char *err,
                             size_t errlen)
{
    char why[512], *pw;
    size_t size, len;

    *out = NULL;
    if (file != NULL) {
        if (tlsc_read_secret_file(file, PASSWORD_MAX + 2, &pw, &size, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: %s", file_flag, why);
            return -1;
        }
        len = tlsc_rstrip(pw, size); /* the newline an editor or echo leaves */
        if (strlen(pw) != len)
            snprintf(why, sizeof(why), "the password holds a NUL byte");
        if (strlen(pw) != len || tlsc_redis_password_check(pw, why, sizeof(why)) != 0) {
            tlsc_secure_free(pw, size);
            snprintf(err, errlen, "%s: %s: %s", file_flag, file, why);
            return -1;
        }
        *out = pw;
        return 0;
    }
    if (env != NULL && *env != '\0') {
        if (tlsc_redis_password_check(env, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: %s", env_name, why);
            return -1;
        }
        if ((*out = strdup(env)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

int tlsc_redis_url_take_password(tlsc_redis_url_t *u, const char *pass_file, const char *env_pass, char *err, size_t errlen)
{
    if (env_pass != NULL && *env_pass == '\0')
        env_pass = NULL;
    if (u->password != NULL && (pass_file != NULL || env_pass != NULL)) {
        snprintf(err, errlen, "--redis: the URL holds a password and %s gives another; give it in one place",
                 pass_file != NULL ? "--redis-pass-file" : "TLSCACHE_REDIS_PASS");
        return -1;
    }
    if (u->password != NULL)
        return 0;
    if (tlsc_redis_password_take(pass_file, "--redis-pass-file", env_pass, "TLSCACHE_REDIS_PASS", &u->password, err, errlen) != 0)
        return -1;
    if (u->password == NULL && u->user != NULL) {
        snprintf(err, errlen,
                 "--redis: the URL names a user but no password: give it with --redis-pass-file FILE or TLSCACHE_REDIS_PASS");
        return -1;
    }
    return 0;
}

void tlsc_redis_url_free(tlsc_redis_url_t *u)
{
    if (u->user != NULL)
        tlsc_secure_free(u->user, strlen(u->user));
    if (u->password != NULL)
        tlsc_secure_free(u->password, strlen(u->password));
    if (u->sentinel_user != NULL)
        tlsc_secure_free(u->sentinel_user, strlen(u->sentinel_user));
    if (u->sentinel_password != NULL)
        tlsc_secure_free(u->sentinel_password, strlen(u->sentinel_password));
    free(u->host);
    free(u->path);
    for (size_t i = 0; i < u->nsentinels; i++)
        free(u->sentinels[i].host);
    free(u->sentinels);
    free(u->master_name);
    for (size_t i = 0; u->seeds != NULL && i < u->nseeds; i++)
        free(u->seeds[i].host);
    free(u->seeds);
    memset(u, 0, sizeof(*u));
}

static int dup_field(char **dst, const char *src)
{
    if (src == NULL)
        return 0;
    return (*dst = copy_string(src, strlen(src))) != NULL ? 0 : -1;
}

int tlsc_redis_url_copy(tlsc_redis_url_t *dst, const tlsc_redis_url_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->port = src->port;
    dst->db = src->db;
    dst->tls = src->tls;
    if (dup_field(&dst->host, src->host) != 0 || dup_field(&dst->path, src->path) != 0 || dup_field(&dst->user, src->user) != 0 ||
        dup_field(&dst->password, src->password) != 0 || dup_field(&dst->master_name, src->master_name) != 0 ||
        dup_field(&dst->sentinel_user, src->sentinel_user) != 0 || dup_field(&dst->sentinel_password, src->sentinel_password) != 0)
        goto fail;
    if (src->nsentinels > 0) {
        if ((dst->sentinels = calloc(src->nsentinels, sizeof(*dst->sentinels))) == NULL)
            goto fail;
        for (; dst->nsentinels < src->nsentinels; dst->nsentinels++) {
            if (dup_field(&dst->sentinels[dst->nsentinels].host, src->sentinels[dst->nsentinels].host) != 0)
                goto fail;
            dst->sentinels[dst->nsentinels].port = src->sentinels[dst->nsentinels].port;
        }
    }
    dst->cluster = src->cluster;
    if (src->nseeds > 0) {
        if ((dst->seeds = calloc(src->nseeds, sizeof(*dst->seeds))) == NULL)
            goto fail;
        for (; dst->nseeds < src->nseeds; dst->nseeds++) {
            if (dup_field(&dst->seeds[dst->nseeds].host, src->seeds[dst->nseeds].host) != 0)
                goto fail;
            dst->seeds[dst->nseeds].port = src->seeds[dst->nseeds].port;
        }
    }
    return 0;

fail:
    tlsc_redis_url_free(dst);
    return -1;
}

/* "redis-cluster://h1:p1,h2:p2" (or rediss-cluster://), truncated to outlen. */
static void describe_seeds(const tlsc_redis_url_t *u, char *out, size_t outlen)
{
    size_t pos = (size_t)snprintf(out, outlen, "%s", u->tls ? "rediss-cluster://" : "redis-cluster://");

    for (size_t i = 0; i < u->nseeds && pos < outlen; i++) {
        const char *sep = i > 0 ? "," : "", *h = u->seeds[i].host;
        int n = strchr(h, ':') != NULL ? snprintf(out + pos, outlen - pos, "%s[%s]:%u", sep, h, u->seeds[i].port)
                                       : snprintf(out + pos, outlen - pos, "%s%s:%u", sep, h, u->seeds[i].port);

        if (n < 0)
            break;
        pos += (size_t)n;
    }
}

void tlsc_redis_url_describe(const tlsc_redis_url_t *u, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (u != NULL && u->master_name != NULL)
        snprintf(out, outlen, "%ssentinel:%s/%u", u->tls ? "rediss-" : "", u->master_name, u->db);
    else if (u == NULL || (u->host == NULL && u->path == NULL))
        snprintf(out, outlen, "(no redis)");
    else if (u->cluster && u->seeds != NULL)
        describe_seeds(u, out, outlen);
    else if (u->path != NULL)
        snprintf(out, outlen, "unix:%s?db=%u", u->path, u->db);
    else if (strchr(u->host, ':') != NULL)
        snprintf(out, outlen, "%s[%s]:%u/%u", u->tls ? "rediss://" : "", u->host, u->port, u->db);
    else
        snprintf(out, outlen, "%s%s:%u/%u", u->tls ? "rediss://" : "", u->host, u->port, u->db);
}
