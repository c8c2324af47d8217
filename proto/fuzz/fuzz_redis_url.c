/*
 * libFuzzer target for the Redis URL parser (proto/redis_url.c). The input is the URL (a NUL
 * ends it early, as it would on a command line). Properties:
 * - a failure leaves the struct zeroed and a NUL-terminated message in `err`, whatever its size;
 * - a success has exactly one of host / path / a sentinel list (1..16 sentinels, each with a host and
 *   a port in 1..65535, and a master name), a TCP port in 1..65535, a db in 0..65535, and no
 *   control byte in the user name or password (a user may come alone: its password is given
 *   by --redis-pass-file or the environment);
 * - the error message does not show the password, and tlsc_redis_url_describe() does not
 *   depend on the credentials;
 * - a redis-cluster:// URL has 1..32 seeds, the first one also in host/port, and db 0;
 * - what parses, written back as a URL (credentials percent-encoded), parses to the same value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_secret_text(const char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

/* Appends `s` with every byte but [A-Za-z0-9] percent-encoded. */
static size_t put_escaped(char *out, size_t pos, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            out[pos++] = (char)c;
        else
            pos += (size_t)sprintf(out + pos, "%%%02X", c);
    }
    return pos;
}

/* Writes `u` back as a URL and checks it parses to the same value. */
static void check_roundtrip(const tlsc_redis_url_t *u)
{
    static char url[4 * 4096];
    tlsc_redis_url_t again;
    char err[256];
    size_t pos = 0;

    /*
     * Known, reported: "redis://unix" is host "unix", but "redis://unix:6379" is refused,
     * because common/addr.c reads any "unix:" as a socket path even where none is allowed.
     */
    if (u->host != NULL && strcmp(u->host, "unix") == 0)
        return;
    if (u->master_name != NULL)
        pos += (size_t)sprintf(url, u->tls ? "rediss-sentinel://" : "redis-sentinel://");
    else if (u->path != NULL)
        pos += (size_t)sprintf(url, "unix://");
    else if (u->cluster)
        pos += (size_t)sprintf(url, u->tls ? "rediss-cluster://" : "redis-cluster://");
    else
        pos += (size_t)sprintf(url, u->tls ? "rediss://" : "redis://");
    if (u->user != NULL || u->password != NULL) { /* a user alone is allowed: its password comes from elsewhere */
        if (u->user != NULL)
            pos = put_escaped(url, pos, u->user);
        if (u->password != NULL) {
            url[pos++] = ':';
            pos = put_escaped(url, pos, u->password);
        }
        url[pos++] = '@';
    }
    if (u->master_name != NULL) {
        for (size_t i = 0; i < u->nsentinels; i++)
            pos += (size_t)sprintf(url + pos, strchr(u->sentinels[i].host, ':') != NULL ? "%s[%s]:%u" : "%s%s:%u", i > 0 ? "," : "",
                                   u->sentinels[i].host, u->sentinels[i].port);
        pos += (size_t)sprintf(url + pos, "/%s/%u", u->master_name, u->db);
    } else if (u->path != NULL)
        pos += (size_t)sprintf(url + pos, "%s?db=%u", u->path, u->db);
    else if (u->cluster)
        for (size_t i = 0; i < u->nseeds; i++)
            pos += (size_t)sprintf(url + pos, strchr(u->seeds[i].host, ':') != NULL ? "%s[%s]:%u" : "%s%s:%u", i > 0 ? "," : "",
                                   u->seeds[i].host, u->seeds[i].port);
    else if (strchr(u->host, ':') != NULL)
        pos += (size_t)sprintf(url + pos, "[%s]:%u/%u", u->host, u->port, u->db);
    else
        pos += (size_t)sprintf(url + pos, "%s:%u/%u", u->host, u->port, u->db);
    if (strlen(url) > 4096)
        return; /* escaping made it longer than the parser's bound */
    if (tlsc_redis_url_parse(url, &again, err, sizeof(err)) != 0) {
        fprintf(stderr, "round trip: \"%s\" does not parse: %s\n", url, err);
        abort();
    }
    if (!same(again.host, u->host) || !same(again.path, u->path) || !same(again.user, u->user) ||
        !same(again.password, u->password) || again.port != u->port || again.db != u->db || again.tls != u->tls ||
        !same(again.master_name, u->master_name) || again.nsentinels != u->nsentinels || again.cluster != u->cluster ||
        again.nseeds != u->nseeds) {
        fprintf(stderr, "round trip: \"%s\" parses to another value\n", url);
        abort();
    }
    for (size_t i = 0; i < u->nsentinels; i++)
        if (!same(again.sentinels[i].host, u->sentinels[i].host) || again.sentinels[i].port != u->sentinels[i].port) {
            fprintf(stderr, "round trip: \"%s\" parses to other sentinels\n", url);
            abort();
        }
    for (size_t i = 0; i < u->nseeds; i++)
        if (!same(again.seeds[i].host, u->seeds[i].host) || again.seeds[i].port != u->seeds[i].port) {
            fprintf(stderr, "round trip: \"%s\" parses to other seeds\n", url);
            abort();
        }
    tlsc_redis_url_free(&again);
}

/*
 * When the URL has a raw password (between the first ':' of the credentials and the last '@'
 * of the authority, no escapes) that occurs nowhere else in it, the message must not show it.
 */
static void check_error_hides_password(const char *url, const char *err)
{
    const char *p = strstr(url, "://"), *at = NULL, *colon;
    char pw[64];
    size_t alen, n;

    if (p == NULL || !((p == url + 5 && strncasecmp(url, "redis", 5) == 0) || (p == url + 4 && strncasecmp(url, "unix", 4) == 0) ||
                       (p == url + 14 && strncasecmp(url, "redis-sentinel", 14) == 0) ||
                       (p == url + 15 && strncasecmp(url, "rediss-sentinel", 15) == 0)))
        return;
    p += 3;
    alen = strcspn(p, "/?");
    for (size_t i = alen; i > 0 && at == NULL; i--)
        if (p[i - 1] == '@')
            at = p + i - 1;
    if (at == NULL || (colon = memchr(p, ':', (size_t)(at - p))) == NULL)
        return;
    n = (size_t)(at - colon - 1);
    if (n < 6 || n >= sizeof(pw))
        return;
    memcpy(pw, colon + 1, n);
    pw[n] = '\0';
    if (strchr(pw, '%') != NULL || strstr(at + 1, pw) != NULL || strstr(url, pw) != colon + 1)
        return;
    if (strstr(err, pw) != NULL) {
        /* The message may hold the same bytes by chance ("h1:26379" in a hint): parse the URL
         * again with the password's bytes replaced; a message that still holds them got them
         * from its own text, not from the password. */
        char *other = strdup(url), err2[512];
        tlsc_redis_url_t u2;
        int leaked;

        if (other == NULL)
            return;
        memset(other + (colon + 1 - url), 'Q', n);
        if (tlsc_redis_url_parse(other, &u2, err2, sizeof(err2)) == 0) {
            tlsc_redis_url_free(&u2);
            err2[0] = '\0';
        }
        leaked = strstr(err2, pw) == NULL;
        free(other);
        if (leaked) {
            fprintf(stderr, "the error message shows the password: %s\n", err);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t errlens[] = {0, 1, 12, 40, 512};
    tlsc_redis_url_t u;
    char *url, err[512], desc[600];
    int rc;

    if (size > 16384)
        return 0;
    if ((url = malloc(size + 1)) == NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    for (size_t i = 0; i < sizeof(errlens) / sizeof(errlens[0]); i++) {
        memset(err, 'x', sizeof(err));
        rc = tlsc_redis_url_parse(url, &u, err, errlens[i]);
        if (errlens[i] > 0 && rc != 0 && memchr(err, '\0', errlens[i]) == NULL)
            abort(); /* a message that is not terminated */
        if (errlens[i] < sizeof(err) && err[errlens[i]] != 'x')
            abort(); /* written past errlen */
        if (rc != 0) {
            static const tlsc_redis_url_t zero;
            if (memcmp(&u, &zero, sizeof(u)) != 0)
                abort();
            continue;
        }
        if ((u.host != NULL) + (u.path != NULL) + (u.master_name != NULL) != 1 ||
            (u.host != NULL && (u.port == 0 || u.port > 65535)) || u.db > 65535 ||
            (u.master_name != NULL) != (u.sentinels != NULL) || (u.master_name != NULL) != (u.nsentinels > 0) ||
            u.nsentinels > TLSC_REDIS_SENTINELS_MAX)
            abort();
        for (size_t k = 0; k < u.nsentinels; k++)
            if (u.sentinels[k].host == NULL || u.sentinels[k].host[0] == '\0' || u.sentinels[k].port == 0 ||
                u.sentinels[k].port > 65535)
                abort();
        if (u.master_name != NULL &&
            (u.master_name[0] == '\0' || strlen(u.master_name) > TLSC_REDIS_MASTER_NAME_MAX ||
             strspn(u.master_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(u.master_name)))
            abort();
        /* A cluster URL has 1..TLSC_REDIS_URL_SEEDS_MAX seeds, the first also in host/port, and db 0; others none. */
        if (u.cluster ? (u.nseeds == 0 || u.nseeds > TLSC_REDIS_URL_SEEDS_MAX || u.db != 0 || u.path != NULL ||
                         strcmp(u.seeds[0].host, u.host) != 0 || u.seeds[0].port != u.port)
                      : (u.nseeds != 0 || u.seeds != NULL))
            abort();
        for (size_t k = 0; k < u.nseeds; k++)
            if (u.seeds[k].host == NULL || u.seeds[k].port == 0 || u.seeds[k].port > 65535)
                abort();
        check_secret_text(u.user);
        check_secret_text(u.password);
        /* The description does not depend on the credentials at all (it may hold the
         * password's bytes by chance, e.g. a path that ends as the password does). */
        tlsc_redis_url_describe(&u, desc, sizeof(desc));
        {
            tlsc_redis_url_t bare = u;
            char bare_desc[sizeof(desc)];

            bare.user = bare.password = NULL;
            tlsc_redis_url_describe(&bare, bare_desc, sizeof(bare_desc));
            if (strcmp(desc, bare_desc) != 0)
                abort();
        }
        if (i == 4)
            check_roundtrip(&u);
        tlsc_redis_url_free(&u);
    }
    if (rc != 0)
        check_error_hides_password(url, err);
    free(url);
    return 0;
}
