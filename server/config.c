/* This file's one job: the server's flags and TLSCACHE_* variables, one table for parsing, defaults and --help. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/tls1.h>

#include "addr.h"
#include "l1.h"
#include "log.h"
#include "opts.h"
#include "util.h"

/*
 * The flags live in one table (name, metavar, flags, apply, default, help) that common/opts.c
 * reads both to parse argv and the TLSCACHE_* variables and to print --help, so a default is
 * written once. Every error is one line that starts with the flag (and the variable, when the
 * value came from one) and quotes the value with control bytes escaped, so a hostile value
 * cannot forge a second log line.
 */

#define MAX_PATH_LEN   4096 /* file names */
#define MAX_NAME_LEN   64   /* --node, --cluster, --redis-prefix */
#define MAX_LIST_LEN   4096 /* --alpn, --groups, --ciphers, --ciphersuites */
#define QUOTE_MAX      TLSC_OPTS_QUOTE_MAX
#define ENV_PREFIX     "TLSCACHE_"
#define ENV_PFX_PASS   ENV_PREFIX "PFX_PASS"
#define ENV_REDIS_PASS ENV_PREFIX "REDIS_PASS"
#define ENV_SENT_PASS  ENV_PREFIX "REDIS_SENTINEL_PASS"
#define REDIS_PASS_MAX 1024 /* as the URL parser's bound */
#define DEFAULT_LISTEN "0.0.0.0:8443"
#define DEFAULT_REDIS  "redis://127.0.0.1:6379"

/* What the apply functions write to: the config, and where --redis came from. */
typedef struct {
    tlsc_config_t *cfg;
    char redis_label[192];
} ctx_t;

#define quote tlsc_opts_quote
#define fail  tlsc_opts_fail

/* ---------------------------------------------------------------- small helpers */

static int set_uint(const char *label, const char *value, unsigned min, unsigned max, unsigned *out, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, min, max, out, err, errlen);
}

static int set_string(const char *label, const char *value, size_t max, char **out, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    if (*value == '\0')
        return fail(err, errlen, label, "the value is empty");
    if (strlen(value) > max)
        return fail(err, errlen, label, "%s is longer than %zu bytes", quote(q, value), max);
    free(*out);
    if ((*out = strdup(value)) == NULL)
        return fail(err, errlen, label, "out of memory");
    return 0;
}

/* A file name: non-empty, bounded, no control bytes. Nothing is opened here. */
static int set_path(const char *label, const char *value, char **out, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail(err, errlen, label, "%s contains a control character", quote(q, value));
    return set_string(label, value, MAX_PATH_LEN, out, err, errlen);
}

static int is_name_char(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c) != NULL;
}

/* A name from [A-Za-z0-9] plus `extra`, 1..MAX_NAME_LEN bytes. */
static int set_name(const char *label, const char *value, const char *extra, char **out, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    if (*value == '\0')
        return fail(err, errlen, label, "the value is empty");
    if (strlen(value) > MAX_NAME_LEN)
        return fail(err, errlen, label, "%s is longer than %d bytes", quote(q, value), MAX_NAME_LEN);
    for (const char *p = value; *p != '\0'; p++)
        if (!is_name_char(*p, extra))
            return fail(err, errlen, label, "%s may only contain A-Z a-z 0-9 and \"%s\"", quote(q, value), extra);
    return set_string(label, value, MAX_NAME_LEN, out, err, errlen);
}

/*
 * HOST:PORT or [V6]:PORT through the common parser; with `allow_any` the host may be empty
 * or "*". The host is stored without brackets and the port in canonical decimal.
 */
static int parse_hostport(const char *label, const char *value, int allow_any, char **host, char **port, char *err, size_t errlen)
{
    char q[QUOTE_MAX], why[128];
    tlsc_addr_t a;

    if (tlsc_addr_parse_str(value, allow_any ? TLSC_ADDR_ALLOW_ANY : 0, &a, why, sizeof(why)) != 0)
        return fail(err, errlen, label, "%s: %s", quote(q, value), why);
    if ((*host = strdup(a.host)) == NULL || (*port = strdup(a.port_str)) == NULL) {
        free(*host);
        *host = NULL;
        return fail(err, errlen, label, "out of memory");
    }
    return 0;
}

/* ---------------------------------------------------------------- one function per flag */

static int apply_listen(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    tlsc_listen_t *l;

    if ((l = realloc(cfg->listen, (cfg->n_listen + 1) * sizeof(*l))) == NULL)
        return fail(err, errlen, label, "out of memory");
    cfg->listen = l;
    l += cfg->n_listen;
    l->host = l->port = NULL;
    if (parse_hostport(label, value, 1, &l->host, &l->port, err, errlen) != 0)
        return -EINVAL;
    cfg->n_listen++;
    return 0;
}

static int apply_workers(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 256, &cfg->workers, err, errlen);
}

static int apply_node(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_name(label, value, "._-", &cfg->node, err, errlen);
}

static int apply_cluster(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_name(label, value, "._-", &cfg->cluster, err, errlen);
}

/* --cert values arrive first (table order), each starting a pair; --key values fill them in order. */
static int apply_cert(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    tlsc_cert_pair_t *c;

    if ((c = realloc(cfg->certs, (cfg->n_certs + 1) * sizeof(*c))) == NULL)
        return fail(err, errlen, label, "out of memory");
    cfg->certs = c;
    c += cfg->n_certs;
    c->cert_file = c->key_file = NULL;
    if (set_path(label, value, &c->cert_file, err, errlen) != 0)
        return -EINVAL;
    cfg->n_certs++;
    return 0;
}

static int apply_key(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];
    size_t i;

    for (i = 0; i < cfg->n_certs && cfg->certs[i].key_file != NULL; i++)
        ;
    if (i == cfg->n_certs)
        return fail(err, errlen, label, "%s has no matching --cert (give them in pairs: --cert FILE --key FILE)", quote(q, value));
    return set_path(label, value, &cfg->certs[i].key_file, err, errlen);
}

/*
 * --ocsp pairs by position with the certificates as they are served: the --cert pairs in
 * order, then --pfx. "none" holds a place for a certificate without a response.
 */
static int apply_ocsp(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char **o;

    if ((o = realloc(cfg->ocsp_files, (cfg->n_ocsp + 1) * sizeof(*o))) == NULL)
        return fail(err, errlen, label, "out of memory");
    cfg->ocsp_files = o;
    o[cfg->n_ocsp] = NULL;
    if (strcmp(value, "none") != 0 && set_path(label, value, &o[cfg->n_ocsp], err, errlen) != 0)
        return -EINVAL;
    cfg->n_ocsp++;
    return 0;
}

static int apply_ocsp_fetch(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->cfg->ocsp_fetch = 1;
    return 0;
}

static int apply_pfx(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->pfx_file, err, errlen);
}

static int apply_pfx_pass_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->pfx_pass_file, err, errlen);
}

/* ALPN protocol names: 1..255 printable bytes each, as they go on the wire. */
static int apply_alpn(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];
    const char *p = value;

    if (*value == '\0')
        return fail(err, errlen, label, "the value is empty");
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 255)
            return fail(err, errlen, label, "%s: each protocol must be 1..255 bytes", quote(q, value));
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
                return fail(err, errlen, label, "%s: protocol names must be printable ASCII", quote(q, value));
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    return set_string(label, value, MAX_LIST_LEN, &cfg->alpn, err, errlen);
}

static int set_list(const char *label, const char *value, char **out, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail(err, errlen, label, "%s contains a control character", quote(q, value));
    return set_string(label, value, MAX_LIST_LEN, out, err, errlen);
}

static int apply_groups(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_list(label, value, &cfg->groups, err, errlen);
}

static int apply_dhparam(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->dhparam_file, err, errlen);
}

static int parse_tls_version(const char *label, const char *value, int *out, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    if (strcmp(value, "1.2") == 0 || strcmp(value, "TLSv1.2") == 0)
        *out = TLS1_2_VERSION;
    else if (strcmp(value, "1.3") == 0 || strcmp(value, "TLSv1.3") == 0)
        *out = TLS1_3_VERSION;
    else
        return fail(err, errlen, label, "%s is not 1.2 or 1.3", quote(q, value));
    return 0;
}

static int apply_min_tls(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return parse_tls_version(label, value, &cfg->min_tls, err, errlen);
}

static int apply_max_tls(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return parse_tls_version(label, value, &cfg->max_tls, err, errlen);
}

static int apply_ciphers(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_list(label, value, &cfg->ciphers, err, errlen);
}

static int apply_ciphersuites(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_list(label, value, &cfg->ciphersuites, err, errlen);
}

static int apply_session_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 86400, &cfg->session_timeout, err, errlen);
}

static int apply_redis(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    /* Kept as given; parsed once defaults are in, by parse_redis(). */
    snprintf(((ctx_t *)ctx)->redis_label, sizeof(((ctx_t *)ctx)->redis_label), "%s", label);
    return set_string(label, value, MAX_PATH_LEN, &cfg->redis_url_str, err, errlen);
}

static int apply_redis_pass_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->redis_pass_file, err, errlen);
}

static int apply_redis_sentinel_pass_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->redis_sentinel_pass_file, err, errlen);
}

/* An ACL user name as AUTH takes it: printable, no space, at most as long as the URL's. */
static int apply_redis_sentinel_user(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;

    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(err, errlen, label, "the user name holds a space or a control character");
    return set_string(label, value, 255, &cfg->redis_sentinel_user, err, errlen);
}

static int apply_redis_ca(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->redis_ca_file, err, errlen);
}

static int apply_redis_cert(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->redis_cert_file, err, errlen);
}

static int apply_redis_key(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->redis_key_file, err, errlen);
}

static int apply_redis_prefix(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_name(label, value, "._:-", &cfg->redis_prefix, err, errlen);
}

static int apply_lookup_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 10000, &cfg->lookup_timeout_ms, err, errlen);
}

static int apply_store_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 10000, &cfg->store_timeout_ms, err, errlen);
}

static int apply_store_replicas(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 0, 8, &cfg->store_replicas, err, errlen);
}

static int apply_local_cache(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];

    if (tlsc_l1_parse_size(value, &cfg->local_cache_bytes) != 0)
        return fail(err, errlen, label, "%s is not a size: 0 (off), or 1m..16g as bytes or with a k, m or g suffix",
                    quote(q, value));
    return 0;
}

static int apply_resumption(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];

    if (strcmp(value, "cache") == 0)
        cfg->resumption = TLSC_RESUME_CACHE;
    else if (strcmp(value, "tickets") == 0)
        cfg->resumption = TLSC_RESUME_TICKETS;
    else if (strcmp(value, "both") == 0)
        cfg->resumption = TLSC_RESUME_BOTH;
    else
        return fail(err, errlen, label, "%s is not cache, tickets or both", quote(q, value));
    return 0;
}

static int apply_log_level(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];
    tlsc_log_level_t level;

    if (tlsc_log_parse_level(value, &level) != 0)
        return fail(err, errlen, label, "%s is not error, warn, info or debug", quote(q, value));
    cfg->log_level = (int)level;
    return 0;
}

static int apply_log_format(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];
    tlsc_log_format_t format;

    if (tlsc_log_parse_format(value, &format) != 0)
        return fail(err, errlen, label, "%s is not text or json", quote(q, value));
    cfg->log_format = (int)format;
    return 0;
}

/* HOST:PORT or [V6]:PORT for the plain-HTTP admin endpoint, or "off". Bound by the master. */
static int apply_admin(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX], why[128];
    tlsc_addr_t a;

    free(cfg->admin);
    cfg->admin = NULL;
    if (strcmp(value, "off") == 0)
        return 0;
    if (tlsc_addr_parse_str(value, TLSC_ADDR_ALLOW_ANY, &a, why, sizeof(why)) != 0)
        return fail(err, errlen, label, "%s: %s (or \"off\")", quote(q, value), why);
    return set_string(label, value, MAX_NAME_LEN * 5, &cfg->admin, err, errlen);
}

static int apply_handshake_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 3600, &cfg->handshake_timeout_sec, err, errlen);
}

static int apply_max_conns(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 10000000, &cfg->max_conns, err, errlen);
}

static int apply_drain_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 0, 3600, &cfg->drain_timeout_sec, err, errlen);
}

/* HOST:PORT, [V6]:PORT or unix:PATH; only checked here, the daemon client resolves it. */
static int apply_keyd(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX], why[128];
    tlsc_addr_t a;

    if (tlsc_addr_parse_str(value, TLSC_ADDR_ALLOW_UNIX, &a, why, sizeof(why)) != 0)
        return fail(err, errlen, label, "%s: %s", quote(q, value), why);
    return set_path(label, value, &cfg->keyd, err, errlen);
}

/* [sni:NAME=|alpn:PROTO=]ADDR; parsed into the routes now, so a bad one is a usage error. */
static int apply_backend(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX], why[160];

    if (strlen(value) > MAX_PATH_LEN)
        return fail(err, errlen, label, "%s is longer than %d bytes", quote(q, value), MAX_PATH_LEN);
    if (tlsc_routes_add(&cfg->routes, value, why, sizeof(why)) != 0)
        return fail(err, errlen, label, "%s: %s", quote(q, value), why);
    return 0;
}

static int apply_backends_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_path(label, value, &((ctx_t *)ctx)->cfg->backends_file, err, errlen);
}

int tlsc_config_read_backends(const char *path, tlsc_routes_t *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf, why[160];
    size_t len;
    unsigned line = 0;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((buf = malloc(TLSC_CONFIG_BACKENDS_FILE_MAX + 1)) == NULL) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    len = fread(buf, 1, TLSC_CONFIG_BACKENDS_FILE_MAX + 1, f);
    if (ferror(f) || len > TLSC_CONFIG_BACKENDS_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, ferror(f) ? "read error" : "longer than 256 KiB");
        goto fail;
    }
    buf[len] = '\0';
    for (char *p = buf, *next; *p != '\0'; p = next) {
        char *end;

        line++;
        next = p + strcspn(p, "\n");
        if (*next == '\n')
            *next++ = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        for (const char *q = p; *q != '\0'; q++) {
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                snprintf(err, errlen, "%s:%u: a control character", path, line);
                goto fail;
            }
        }
        if (end - p > MAX_PATH_LEN || tlsc_routes_add(out, p, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%u: %s", path, line, end - p > MAX_PATH_LEN ? "line too long" : why);
            goto fail;
        }
    }
    if (out->n == 0) {
        snprintf(err, errlen, "%s: no route in it", path);
        goto fail;
    }
    free(buf);
    fclose(f);
    return 0;

fail:
    tlsc_routes_free(out);
    memset(out, 0, sizeof(*out));
    free(buf);
    fclose(f);
    return -1;
}

static int apply_backend_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 600000, &cfg->backend_timeout_ms, err, errlen);
}

static int apply_idle_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_uint(label, value, 1, 86400, &cfg->idle_timeout_sec, err, errlen);
}

static int apply_proxy_protocol(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX];

    if (strcmp(value, "v1") == 0)
        cfg->proxy_protocol = 1;
    else if (strcmp(value, "v2") == 0)
        cfg->proxy_protocol = 2;
    else
        return fail(err, errlen, label, "%s is not v1 or v2", quote(q, value));
    return 0;
}

static int apply_accept_proxy(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->cfg->accept_proxy = 1;
    return 0;
}

/* A switch: given (or its variable set to 1/true/yes), this node joins a port already in use. */
static int apply_reuseport_share(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->cfg->reuseport_share = 1;
    return 0;
}

static int apply_keyd_secret_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->keyd_secret_file, err, errlen);
}

static int apply_access_log(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->access_log, err, errlen);
}

static int apply_seal_secret_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    return set_path(label, value, &cfg->seal_secret_file, err, errlen);
}

static int apply_insecure_plain_records(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->cfg->insecure_plain_records = 1;
    return 0;
}

static int apply_check(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->cfg->check = 1;
    return 0;
}

/* NAME or NAME:GROUP, resolved now: an unknown user is a usage error, not a worker that dies. */
static int apply_user(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ((ctx_t *)ctx)->cfg;
    char q[QUOTE_MAX], name[256];
    const char *colon = strchr(value, ':');
    size_t nlen = colon ? (size_t)(colon - value) : strlen(value);
    struct passwd *pw;
    struct group *gr;

    if (nlen == 0 || nlen >= sizeof(name) || (colon != NULL && colon[1] == '\0'))
        return fail(err, errlen, label, "%s is not NAME or NAME:GROUP", quote(q, value));
    memcpy(name, value, nlen);
    name[nlen] = '\0';
    if ((pw = getpwnam(name)) == NULL)
        return fail(err, errlen, label, "no such user %s", quote(q, name));
    cfg->run_uid = (unsigned)pw->pw_uid;
    cfg->run_gid = (unsigned)pw->pw_gid;
    if (colon != NULL) {
        if ((gr = getgrnam(colon + 1)) == NULL)
            return fail(err, errlen, label, "no such group %s", quote(q, colon + 1));
        cfg->run_gid = (unsigned)gr->gr_gid;
    }
    return set_path(label, value, &cfg->user, err, errlen);
}

/* ---------------------------------------------------------------- the table */

enum {
    IDX_LISTEN,
    IDX_WORKERS,
    IDX_NODE,
    IDX_CLUSTER,
    IDX_CERT,
    IDX_KEY,
    IDX_PFX,
    IDX_PFX_PASS_FILE,
    IDX_OCSP,
    IDX_OCSP_FETCH,
    IDX_ALPN,
    IDX_GROUPS,
    IDX_DHPARAM,
    IDX_MIN_TLS,
    IDX_MAX_TLS,
    IDX_CIPHERS,
    IDX_CIPHERSUITES,
    IDX_SESSION_TIMEOUT,
    IDX_REDIS,
    IDX_REDIS_PASS_FILE,
    IDX_REDIS_SENTINEL_USER,
    IDX_REDIS_SENTINEL_PASS_FILE,
    IDX_REDIS_CA,
    IDX_REDIS_CERT,
    IDX_REDIS_KEY,
    IDX_REDIS_PREFIX,
    IDX_LOOKUP_TIMEOUT,
    IDX_STORE_TIMEOUT,
    IDX_STORE_REPLICAS,
    IDX_LOCAL_CACHE,
    IDX_RESUMPTION,
    IDX_LOG_LEVEL,
    IDX_LOG_FORMAT,
    IDX_ACCESS_LOG,
    IDX_ADMIN,
    IDX_DRAIN_TIMEOUT,
    IDX_HANDSHAKE_TIMEOUT,
    IDX_MAX_CONNS,
    IDX_KEYD,
    IDX_KEYD_SECRET_FILE,
    IDX_REUSEPORT_SHARE,
    IDX_SEAL_SECRET_FILE,
    IDX_INSECURE_PLAIN_RECORDS,
    IDX_USER,
    IDX_BACKEND,
    IDX_BACKENDS_FILE,
    IDX_BACKEND_TIMEOUT,
    IDX_IDLE_TIMEOUT,
    IDX_PROXY_PROTOCOL,
    IDX_ACCEPT_PROXY,
    IDX_CHECK,
    IDX_HELP,
    IDX_VERSION,
    N_OPTIONS
};

static const tlsc_opt_t options[N_OPTIONS] = {
    [IDX_LISTEN] = {"listen", "HOST:PORT", TLSC_OPT_REPEAT | TLSC_OPT_DEFAULT, apply_listen, DEFAULT_LISTEN,
                    "address to accept TLS on; repeatable; [::1]:443, *:8443", 0},
    [IDX_WORKERS] = {"workers", "N", 0, apply_workers, "number of online cores", "worker processes, 1..256", 0},
    [IDX_NODE] = {"node", "NAME", 0, apply_node, "the host name", "this node's name in Redis and logs ([A-Za-z0-9._-], <= 64)", 0},
    [IDX_CLUSTER] = {"cluster", "NAME", TLSC_OPT_DEFAULT, apply_cluster, "tlscache",
                     "cluster name; sessions resume on every node of one cluster", 0},
    [IDX_CERT] = {"cert", "FILE", TLSC_OPT_REPEAT, apply_cert, NULL,
                  "PEM certificate chain; repeatable, paired in order with --key; the first is the default", 1},
    [IDX_KEY] = {"key", "FILE", TLSC_OPT_REPEAT, apply_key, NULL, "PEM private key of the --cert at the same position", 1},
    [IDX_PFX] = {"pfx", "FILE", 0, apply_pfx, NULL, "PKCS#12 (.pfx/.p12) certificate and key", 0},
    [IDX_PFX_PASS_FILE] = {"pfx-pass-file", "FILE", 0, apply_pfx_pass_file, NULL,
                           "file holding the --pfx passphrase, mode 0600 (else env " ENV_PFX_PASS "; never on the command line)",
                           0},
    [IDX_OCSP] = {"ocsp", "FILE", TLSC_OPT_REPEAT, apply_ocsp, "none",
                  "DER OCSP response to staple; repeatable, paired in order with the certificates (--cert pairs, then --pfx); "
                  "\"none\" skips one",
                  1},
    [IDX_OCSP_FETCH] = {"ocsp-fetch", NULL, TLSC_OPT_NOARG, apply_ocsp_fetch, "off",
                        "the master keeps each --ocsp FILE fresh from its certificate's http:// OCSP responder", 0},
    [IDX_ALPN] = {"alpn", "LIST", 0, apply_alpn, "none", "ALPN protocols in server preference order, e.g. h2,http/1.1", 0},
    [IDX_GROUPS] = {"groups", "LIST", 0, apply_groups, "OpenSSL's default", "ECDHE groups, e.g. X25519:P-256", 0},
    [IDX_DHPARAM] = {"dhparam", "FILE", 0, apply_dhparam, "none (no DHE)", "PEM DH parameters, enables DHE", 0},
    [IDX_MIN_TLS] = {"min-tls", "1.2|1.3", TLSC_OPT_DEFAULT, apply_min_tls, "1.2", "lowest TLS version", 0},
    [IDX_MAX_TLS] = {"max-tls", "1.2|1.3", TLSC_OPT_DEFAULT, apply_max_tls, "1.3", "highest TLS version", 0},
    [IDX_CIPHERS] = {"ciphers", "LIST", 0, apply_ciphers, "ECDHE (+DHE) with AEAD only", "TLS 1.2 cipher list", 0},
    [IDX_CIPHERSUITES] = {"ciphersuites", "LIST", 0, apply_ciphersuites, "OpenSSL's default", "TLS 1.3 ciphersuites", 0},
    [IDX_SESSION_TIMEOUT] = {"session-timeout", "SEC", TLSC_OPT_DEFAULT, apply_session_timeout, "300",
                             "session lifetime, also the Redis TTL, 1..86400", 0},
    [IDX_REDIS] = {"redis", "URL", TLSC_OPT_DEFAULT, apply_redis, DEFAULT_REDIS,
                   "redis://[user@]host:port[/db], rediss://... (TLS), redis-sentinel://h1:26379,h2:26379/MASTER[/db], "
                   "redis-cluster://h1:p1,h2:p2,..., rediss-sentinel:// and rediss-cluster:// (TLS) or unix:///path; a "
                   "password only from the environment",
                   0},
    [IDX_REDIS_PASS_FILE] = {"redis-pass-file", "FILE", 0, apply_redis_pass_file, NULL,
                             "file holding the Redis password, mode 0600 (else env " ENV_REDIS_PASS "; never on the command line)",
                             0},
    [IDX_REDIS_SENTINEL_USER] = {"redis-sentinel-user", "NAME", 0, apply_redis_sentinel_user, NULL,
                                 "redis-sentinel:// and rediss-sentinel://: the ACL user the sentinels know us by (needs a "
                                 "sentinel password)",
                                 0},
    [IDX_REDIS_SENTINEL_PASS_FILE] = {"redis-sentinel-pass-file", "FILE", 0, apply_redis_sentinel_pass_file, NULL,
                                      "file holding the sentinels' password (their requirepass), mode 0600 (else env " ENV_SENT_PASS
                                      "; never on the command line)",
                                      0},
    [IDX_REDIS_CA] = {"redis-ca", "FILE", 0, apply_redis_ca, NULL,
                      "rediss://, rediss-sentinel://, rediss-cluster://: PEM CA certificates that every Redis node's (and "
                      "sentinel's) certificate must chain to (its host name or IP address is checked too)",
                      0},
    [IDX_REDIS_CERT] = {"redis-cert", "FILE", 0, apply_redis_cert, NULL,
                        "rediss://: PEM client certificate chain, with --redis-key", 0},
    [IDX_REDIS_KEY] = {"redis-key", "FILE", 0, apply_redis_key, NULL, "rediss://: PEM key of --redis-cert", 0},
    [IDX_REDIS_PREFIX] = {"redis-prefix", "P", TLSC_OPT_DEFAULT, apply_redis_prefix, "tlscache",
                          "prefix of every Redis key ([A-Za-z0-9._:-], <= 64)", 0},
    [IDX_LOOKUP_TIMEOUT] = {"lookup-timeout", "MS", TLSC_OPT_DEFAULT, apply_lookup_timeout, "10",
                            "how long a handshake waits for a Redis lookup, 1..10000", 0},
    [IDX_STORE_TIMEOUT] = {"store-timeout", "MS", TLSC_OPT_DEFAULT, apply_store_timeout, "50",
                           "how long a new session's bytes wait for the Redis write, 1..10000", 0},
    [IDX_STORE_REPLICAS] = {"store-replicas", "N", TLSC_OPT_DEFAULT, apply_store_replicas, "0",
                            "after each store, WAIT for N Redis replicas (0..8) on a second link (per master) before the session's "
                            "last flight goes out; fails open at the store timeout",
                            0},
    [IDX_LOCAL_CACHE] = {"local-cache", "SIZE", TLSC_OPT_DEFAULT, apply_local_cache, TLSC_L1_DEFAULT,
                         "node-local shared session cache in front of Redis (k/m/g suffix); 0 = off", 0},
    [IDX_RESUMPTION] = {"resumption", "MODE", TLSC_OPT_DEFAULT, apply_resumption, "cache",
                        "cache, tickets or both; tickets need --keyd", 0},
    [IDX_LOG_LEVEL] = {"log-level", "LEVEL", TLSC_OPT_DEFAULT, apply_log_level, "info", "error, warn, info or debug", 0},
    [IDX_LOG_FORMAT] = {"log-format", "FORMAT", TLSC_OPT_DEFAULT, apply_log_format, "text",
                        "text, or json (one object per line: ts, level, tag, pid, worker, msg); also the access log's", 0},
    [IDX_ACCESS_LOG] = {"access-log", "FILE|-", 0, apply_access_log, "none",
                        "one line per connection (client, SNI, ALPN, TLS, resumed from where, bytes, backend, end), "
                        "appended to FILE or - (stdout); reopened on SIGUSR1",
                        0},
    [IDX_ADMIN] = {"admin", "ADDR", TLSC_OPT_DEFAULT, apply_admin, "127.0.0.1:9720",
                   "plain-HTTP admin endpoint (/metrics, /healthz, /readyz) served by the master, HOST:PORT or off", 0},
    [IDX_DRAIN_TIMEOUT] = {"drain-timeout", "SEC", TLSC_OPT_DEFAULT, apply_drain_timeout, "10",
                           "how long SIGTERM waits for open connections, 0..3600", 0},
    [IDX_HANDSHAKE_TIMEOUT] = {"handshake-timeout", "SEC", TLSC_OPT_DEFAULT, apply_handshake_timeout, "10",
                               "a connection that has not finished its handshake by then is closed, 1..3600", 0},
    [IDX_MAX_CONNS] = {"max-conns", "N", 0, apply_max_conns, "the fd limit less a reserve",
                       "connections per worker; at the limit new clients wait in the kernel's queue", 0},
    [IDX_KEYD] = {"keyd", "ADDR", 0, apply_keyd, "none", "ticket-key daemon, HOST:PORT or unix:PATH", 0},
    [IDX_KEYD_SECRET_FILE] = {"keyd-secret-file", "FILE", 0, apply_keyd_secret_file, NULL,
                              "file holding the cluster secret for the --keyd link, mode 0600", 0},
    [IDX_REUSEPORT_SHARE] = {"reuseport-share", NULL, TLSC_OPT_NOARG, apply_reuseport_share, "off",
                             "join a --listen port another process already listens on (blue/green hand-over)", 0},
    [IDX_SEAL_SECRET_FILE] = {"seal-secret-file", "FILE", 0, apply_seal_secret_file, "--keyd-secret-file",
                              "cluster secret that seals session records in Redis (32+ random bytes as hex, mode 0600)", 0},
    [IDX_INSECURE_PLAIN_RECORDS] = {"insecure-plain-records", NULL, TLSC_OPT_NOARG, apply_insecure_plain_records, "off",
                                    "store sessions readable in Redis (their master secrets too); every start warns", 0},
    [IDX_USER] = {"user", "NAME[:GROUP]", 0, apply_user, "stay", "workers drop to this user after reading their files", 0},
    [IDX_BACKEND] = {"backend", "[MATCH=]ADDR", TLSC_OPT_REPEAT, apply_backend, "none (the built-in JSON responder)",
                     "proxy to ADDR (HOST:PORT or unix:PATH); MATCH is sni:NAME (*.domain allowed) or alpn:PROTO; repeatable, "
                     "several ADDRs of one MATCH are used in turn",
                     0},
    [IDX_BACKENDS_FILE] = {"backends-file", "FILE", 0, apply_backends_file, "none",
                           "the routes, one --backend value a line (# comments); read again on SIGHUP: new connections take "
                           "the new routes, open ones keep theirs; not with --backend",
                           0},
    [IDX_BACKEND_TIMEOUT] = {"backend-timeout", "MS", TLSC_OPT_DEFAULT, apply_backend_timeout, "3000",
                             "a backend connect not done by then counts as down (the next one is tried), 1..600000", 0},
    [IDX_IDLE_TIMEOUT] = {"idle-timeout", "SEC", TLSC_OPT_DEFAULT, apply_idle_timeout, "300",
                          "a proxied connection silent both ways for this long is closed, 1..86400", 0},
    [IDX_PROXY_PROTOCOL] = {"proxy-protocol", "v1|v2", 0, apply_proxy_protocol, "none",
                            "send a PROXY protocol header to each backend first (v2 adds TLS facts as TLVs)", 0},
    [IDX_ACCEPT_PROXY] = {"accept-proxy", NULL, TLSC_OPT_NOARG, apply_accept_proxy, "off",
                          "every connection starts with a PROXY v1/v2 header from a load balancer (malformed: closed, counted)", 0},
    [IDX_CHECK] = {"check", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, apply_check, NULL,
                   "validate everything a start would, bind and connect nothing, print what would be served, exit 0 or 1", 0},
    [IDX_HELP] = {"help", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print this help and exit", 0},
    [IDX_VERSION] = {"version", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print the version and exit", 0},
};

static const tlsc_opt_refused_t refused[] = {
    {"pfx-pass", "passphrases are not accepted on the command line; use --pfx-pass-file or " ENV_PFX_PASS},
    {"redis-pass", "passwords are not accepted on the command line; use --redis-pass-file or " ENV_REDIS_PASS},
    {"redis-sentinel-pass", "passwords are not accepted on the command line; use --redis-sentinel-pass-file or " ENV_SENT_PASS},
    {NULL, NULL},
};

static const tlsc_opt_alias_t aliases[] = {
    {'t', "check"}, /* nginx -t */
    {0, NULL},
};

static const tlsc_opts_spec_t spec = {
    .prog = "tlscache-server",
    .version = TLSC_VERSION,
    .summary = "clustered TLS session cache server",
    .man_section = 8,
    .see_also = "tlscache-daemon(8), tlscache-bench(1), systemd.exec(5); /usr/share/doc/tlscache/operations.md",
    .env_prefix = ENV_PREFIX,
    .usage = "usage: tlscache-server --cert FILE --key FILE [--cert FILE --key FILE ...] [options]\n"
             "       tlscache-server --pfx FILE [--pfx-pass-file FILE] [options]\n\n"
             "Every flag can also be set with its TLSCACHE_* variable; a flag on the command line wins.\n"
             "Repeatable flags take a comma list in their variable (TLSCACHE_LISTEN=\"a:1,b:2\").\n"
             "An empty variable counts as unset.\n\n",
    .footer = "\n  env " ENV_PFX_PASS "            the --pfx passphrase, when --pfx-pass-file is not given\n"
              "  env " ENV_REDIS_PASS "          the Redis password, when --redis-pass-file is not given\n"
              "  env " ENV_SENT_PASS " the sentinels' password, when --redis-sentinel-pass-file is not given\n"
              "  Secret files (--keyd-secret-file, --seal-secret-file, --pfx-pass-file, --redis-pass-file,\n"
              "  --redis-sentinel-pass-file) must not be readable by group or others.\n",
    .opts = options,
    .n_opts = N_OPTIONS,
    .refused = refused,
    .aliases = aliases,
};

/* TLSCACHE_PFX_PASS, TLSCACHE_REDIS_PASS and TLSCACHE_REDIS_SENTINEL_PASS are secrets, not flags: picked up alone, never echoed. */
static int collect_secret_env(const char *name, char **out, char **envp, char *err, size_t errlen)
{
    size_t n = strlen(name);

    for (char **e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, name, n) != 0 || (*e)[n] != '=' || (*e)[n + 1] == '\0')
            continue;
        tlsc_secure_free(*out, *out ? strlen(*out) : 0);
        if ((*out = strdup(*e + n + 1)) == NULL)
            return fail(err, errlen, name, "out of memory");
    }
    return 0;
}

/* ---------------------------------------------------------------- defaults and cross-checks */

static int set_defaults(ctx_t *ctx, char *err, size_t errlen)
{
    tlsc_config_t *cfg = ctx->cfg;
    char host[256];

    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
    }
    if (cfg->node == NULL) {
        /* The host name, made to fit the node-name rules rather than refused: it was not typed. */
        size_t i;
        if (gethostname(host, sizeof(host)) != 0)
            host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        host[MAX_NAME_LEN] = '\0';
        for (i = 0; host[i] != '\0'; i++)
            if (!is_name_char(host[i], "._-"))
                host[i] = '-';
        if (i == 0)
            snprintf(host, sizeof(host), "node");
        if ((cfg->node = strdup(host)) == NULL)
            return fail(err, errlen, "--node", "out of memory");
    }
    return 0;
}

/*
 * Writes `url` with any password replaced by "***", for an error message. The password is
 * what sits between the first ':' of the userinfo and the last '@' before the path.
 */
static void mask_url(char *out, size_t outlen, const char *url)
{
    const char *auth = strstr(url, "://"), *end, *at = NULL, *colon;

    auth = auth ? auth + 3 : url;
    end = auth + strcspn(auth, "/?#");
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at != NULL && (colon = memchr(auth, ':', (size_t)(at - auth))) != NULL)
        snprintf(out, outlen, "%.*s***%s", (int)(colon + 1 - url), url, at);
    else
        snprintf(out, outlen, "%s", url);
}

/*
 * A password from the variable `var` (*env, NULL when unset) moves into *dst, the URL's, which
 * wipes it; checked by the URL's rules first. With a file as well, the file wins (it is read
 * later) and the variable's copy is not kept around.
 */
static int take_env_password(const char *var, char **env, int file_given, char **dst, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    if (*env != NULL && !file_given && tlsc_redis_password_check(*env, q, sizeof(q)) != 0)
        return fail(err, errlen, var, "%s", q);
    if (*env != NULL && !file_given)
        *dst = *env;
    else if (*env != NULL)
        tlsc_secure_free(*env, strlen(*env));
    *env = NULL;
    return 0;
}

/*
 * A password in argv is in every `ps` listing, so --redis on the command line may not carry
 * one (its variable TLSCACHE_REDIS may); the password then comes from --redis-pass-file or
 * TLSCACHE_REDIS_PASS, and only from one place.
 */
static int check_redis_password(tlsc_config_t *cfg, const char *label, char *err, size_t errlen)
{
    const char *other = cfg->redis_pass_file != NULL ? "--redis-pass-file" : cfg->redis_pass != NULL ? ENV_REDIS_PASS : NULL;

    if (cfg->redis.password != NULL && strcmp(label, "--redis") == 0)
        return fail(err, errlen, label,
                    "a password on the command line is visible to every local user (ps); give it with --redis-pass-file "
                    "FILE or " ENV_REDIS_PASS ", or put the whole URL in TLSCACHE_REDIS");
    if (cfg->redis.password != NULL && other != NULL)
        return fail(err, errlen, label, "the URL holds a password and %s gives another; give it in one place", other);
    if (cfg->redis.user != NULL && cfg->redis.password == NULL && other == NULL)
        return fail(err, errlen, label,
                    "the URL names a user but no password: give it with --redis-pass-file FILE or " ENV_REDIS_PASS);
    return take_env_password(ENV_REDIS_PASS, &cfg->redis_pass, cfg->redis_pass_file != NULL, &cfg->redis.password, err, errlen);
}

/*
 * The sentinels' own password (Sentinel's requirepass) and ACL user, from their own flag or
 * variable like the data password: only with a Sentinel URL, a user never without a password.
 */
static int check_sentinel_password(tlsc_config_t *cfg, char *err, size_t errlen)
{
    int given = cfg->redis_sentinel_pass_file != NULL || cfg->redis_sentinel_pass != NULL;

    if (cfg->redis.master_name == NULL && (given || cfg->redis_sentinel_user != NULL))
        return fail(err, errlen,
                    cfg->redis_sentinel_user != NULL        ? "--redis-sentinel-user"
                    : cfg->redis_sentinel_pass_file != NULL ? "--redis-sentinel-pass-file"
                                                            : ENV_SENT_PASS,
                    "given, but --redis is not a redis-sentinel:// or rediss-sentinel:// URL");
    if (cfg->redis_sentinel_user != NULL && !given)
        return fail(err, errlen, "--redis-sentinel-user",
                    "names a user but no password: give it with --redis-sentinel-pass-file FILE or " ENV_SENT_PASS);
    cfg->redis.sentinel_user = cfg->redis_sentinel_user; /* the URL owns it from here */
    cfg->redis_sentinel_user = NULL;
    return take_env_password(ENV_SENT_PASS, &cfg->redis_sentinel_pass, cfg->redis_sentinel_pass_file != NULL,
                             &cfg->redis.sentinel_password, err, errlen);
}

/* rediss:// needs the CA to verify Redis with; the TLS files mean nothing without it. */
static int check_redis_tls(tlsc_config_t *cfg, const char *label, char *err, size_t errlen)
{
    if (cfg->redis.tls && cfg->redis_ca_file == NULL)
        return fail(err, errlen, label, "%s needs --redis-ca FILE (the CA that signed Redis's certificate)",
                    cfg->redis.master_name != NULL ? "rediss-sentinel://"
                    : cfg->redis.cluster           ? "rediss-cluster://"
                                                   : "rediss://");
    if (!cfg->redis.tls && (cfg->redis_ca_file != NULL || cfg->redis_cert_file != NULL))
        return fail(err, errlen, cfg->redis_ca_file != NULL ? "--redis-ca" : "--redis-cert",
                    "given, but --redis is not a rediss:// URL (nor rediss-sentinel:// or rediss-cluster://: TLS to Redis)");
    if ((cfg->redis_cert_file == NULL) != (cfg->redis_key_file == NULL))
        return fail(err, errlen, cfg->redis_cert_file != NULL ? "--redis-cert" : "--redis-key",
                    "needs %s (a client certificate and its key go together)",
                    cfg->redis_cert_file != NULL ? "--redis-key" : "--redis-cert");
    return 0;
}

static int parse_redis(tlsc_config_t *cfg, const char *label, char *err, size_t errlen)
{
    char reason[256], masked[MAX_PATH_LEN + 8], q[QUOTE_MAX];

    reason[0] = '\0';
    if (tlsc_redis_url_parse(cfg->redis_url_str, &cfg->redis, reason, sizeof(reason)) == 0) {
        if (check_redis_tls(cfg, label, err, errlen) != 0 || check_sentinel_password(cfg, err, errlen) != 0)
            return -EINVAL;
        return check_redis_password(cfg, label, err, errlen);
    }
    mask_url(masked, sizeof(masked), cfg->redis_url_str);
    if (strncmp(reason, "redis URL: ", 11) == 0) /* the parser's own prefix; the flag says it already */
        memmove(reason, reason + 11, strlen(reason + 11) + 1);
    /* A careless reason could quote the URL back; then it is left out rather than leak. */
    if (strcmp(masked, cfg->redis_url_str) != 0 && strstr(reason, "@") != NULL)
        reason[0] = '\0';
    return fail(err, errlen, label, "bad URL %s%s%s", quote(q, masked), reason[0] ? ": " : "", reason);
}

static int check_config(tlsc_config_t *cfg, const char *redis_label, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    for (size_t i = 0; i < cfg->n_certs; i++)
        if (cfg->certs[i].key_file == NULL)
            return fail(err, errlen, "--cert", "%s has no matching --key (give them in pairs: --cert FILE --key FILE)",
                        quote(q, cfg->certs[i].cert_file));
    if (cfg->n_certs == 0 && cfg->pfx_file == NULL)
        return fail(err, errlen, "--cert/--key or --pfx", "no certificate given; at least one is required");
    if (cfg->pfx_pass_file != NULL && cfg->pfx_file == NULL)
        return fail(err, errlen, "--pfx-pass-file", "given without --pfx");
    if (cfg->ocsp_fetch) {
        size_t files = 0;
        for (size_t i = 0; i < cfg->n_ocsp; i++)
            files += cfg->ocsp_files[i] != NULL;
        if (files == 0)
            return fail(err, errlen, "--ocsp-fetch",
                        "needs an --ocsp FILE for each certificate to fetch for (fetched responses are "
                        "written there)");
    }
    if (cfg->n_ocsp > cfg->n_certs + (cfg->pfx_file != NULL))
        return fail(err, errlen, "--ocsp", "%zu given for %zu certificate(s); they pair in order with the --cert pairs, then --pfx",
                    cfg->n_ocsp, cfg->n_certs + (cfg->pfx_file != NULL));
    if (cfg->backends_file != NULL) {
        char why[512];

        if (cfg->routes.n != 0)
            return fail(err, errlen, "--backends-file", "given with --backend: the routes come from one or the other");
        if (tlsc_config_read_backends(cfg->backends_file, &cfg->routes, why, sizeof(why)) != 0)
            return fail(err, errlen, "--backends-file", "%s", why);
    }
    if (cfg->proxy_protocol != 0 && cfg->routes.n == 0)
        return fail(err, errlen, "--proxy-protocol", "given without --backend");
    if (cfg->min_tls > cfg->max_tls)
        return fail(err, errlen, "--min-tls", "%s is above --max-tls %s", cfg->min_tls == TLS1_3_VERSION ? "1.3" : "1.2",
                    cfg->max_tls == TLS1_3_VERSION ? "1.3" : "1.2");
    if (cfg->keyd_secret_file != NULL && cfg->keyd == NULL)
        return fail(err, errlen, "--keyd-secret-file", "given without --keyd");
    /* Tickets whose keys no daemon shares would open on one worker and fail on the next. */
    if ((cfg->resumption & TLSC_RESUME_TICKETS) && cfg->keyd == NULL)
        return fail(err, errlen, "--resumption", "\"%s\" needs --keyd (ticket keys come from tlscache-daemon)",
                    cfg->resumption == TLSC_RESUME_BOTH ? "both" : "tickets");
    /* Redis never holds a readable master secret unless the operator says so in as many words. */
    if (cfg->insecure_plain_records && (cfg->seal_secret_file != NULL || cfg->keyd_secret_file != NULL))
        return fail(err, errlen, "--insecure-plain-records", "conflicts with %s (records are sealed with it)",
                    cfg->seal_secret_file != NULL ? "--seal-secret-file" : "--keyd-secret-file");
    if ((cfg->resumption & TLSC_RESUME_CACHE) && !cfg->insecure_plain_records && cfg->seal_secret_file == NULL &&
        cfg->keyd_secret_file == NULL)
        return fail(err, errlen, "--seal-secret-file",
                    "required with --resumption cache or both, so that Redis never holds a readable session: give the cluster "
                    "secret (openssl rand -hex 32 > FILE; chmod 600 FILE; --keyd-secret-file also serves), or "
                    "--insecure-plain-records");
    if (cfg->pfx_pass_file != NULL && cfg->pfx_pass != NULL) {
        /* The file wins; the variable's copy is not kept around. */
        tlsc_secure_free(cfg->pfx_pass, strlen(cfg->pfx_pass));
        cfg->pfx_pass = NULL;
    }
    return parse_redis(cfg, redis_label, err, errlen);
}

/* ---------------------------------------------------------------- the entry points */

/* Reads the password file `path` (given as `flag`) into *dst, wiping what was there. A no-op without a file. */
static int load_pass_file(const char *flag, const char *path, char **dst, char *err, size_t errlen)
{
    char why[512], *pw;
    size_t size, len;

    if (path == NULL)
        return 0;
    if (tlsc_read_secret_file(path, REDIS_PASS_MAX + 2, &pw, &size, why, sizeof(why)) != 0)
        return fail(err, errlen, flag, "%s", why);
    len = tlsc_rstrip(pw, size); /* the newline an editor or echo leaves */
    if (strlen(pw) != len)
        snprintf(why, sizeof(why), "the password holds a NUL byte");
    if (strlen(pw) != len || tlsc_redis_password_check(pw, why, sizeof(why)) != 0) {
        tlsc_secure_free(pw, size);
        return fail(err, errlen, flag, "%s: %s", path, why);
    }
    if (*dst != NULL)
        tlsc_secure_free(*dst, strlen(*dst));
    *dst = pw;
    return 0;
}

int tlsc_config_load_redis_pass(tlsc_config_t *cfg, char *err, size_t errlen)
{
    int rc = load_pass_file("--redis-pass-file", cfg->redis_pass_file, &cfg->redis.password, err, errlen);

    return rc != 0 ? rc
                   : load_pass_file("--redis-sentinel-pass-file", cfg->redis_sentinel_pass_file, &cfg->redis.sentinel_password, err,
                                    errlen);
}

int tlsc_config_parse(tlsc_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    ctx_t ctx;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    /* Every literal default is in the table (TLSC_OPT_DEFAULT) and applied by the parser. */
    ctx.cfg = cfg;
    snprintf(ctx.redis_label, sizeof(ctx.redis_label), "--redis");

    if ((rc = tlsc_opts_parse(&spec, &ctx, argc, argv, envp, err, errlen)) != 0)
        return rc;
    if ((rc = collect_secret_env(ENV_PFX_PASS, &cfg->pfx_pass, envp, err, errlen)) != 0 ||
        (rc = collect_secret_env(ENV_REDIS_PASS, &cfg->redis_pass, envp, err, errlen)) != 0 ||
        (rc = collect_secret_env(ENV_SENT_PASS, &cfg->redis_sentinel_pass, envp, err, errlen)) != 0)
        return rc;
    if ((rc = set_defaults(&ctx, err, errlen)) != 0)
        return rc;
    return check_config(cfg, ctx.redis_label, err, errlen);
}

void tlsc_config_free(tlsc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        free(cfg->listen[i].host);
        free(cfg->listen[i].port);
    }
    free(cfg->listen);
    for (size_t i = 0; i < cfg->n_certs; i++) {
        free(cfg->certs[i].cert_file);
        free(cfg->certs[i].key_file);
    }
    free(cfg->certs);
    for (size_t i = 0; i < cfg->n_ocsp; i++)
        free(cfg->ocsp_files[i]);
    free(cfg->ocsp_files);
    free(cfg->node);
    free(cfg->cluster);
    free(cfg->pfx_file);
    free(cfg->pfx_pass_file);
    tlsc_secure_free(cfg->pfx_pass, cfg->pfx_pass ? strlen(cfg->pfx_pass) : 0);
    free(cfg->alpn);
    free(cfg->groups);
    free(cfg->dhparam_file);
    free(cfg->ciphers);
    free(cfg->ciphersuites);
    /* The URL string may hold the Redis password. */
    tlsc_secure_free(cfg->redis_url_str, cfg->redis_url_str ? strlen(cfg->redis_url_str) : 0);
    tlsc_redis_url_free(&cfg->redis);
    free(cfg->redis_prefix);
    free(cfg->redis_pass_file);
    free(cfg->redis_sentinel_pass_file);
    free(cfg->redis_sentinel_user);
    tlsc_secure_free(cfg->redis_sentinel_pass, cfg->redis_sentinel_pass ? strlen(cfg->redis_sentinel_pass) : 0);
    free(cfg->redis_ca_file);
    free(cfg->redis_cert_file);
    free(cfg->redis_key_file);
    tlsc_secure_free(cfg->redis_pass, cfg->redis_pass ? strlen(cfg->redis_pass) : 0);
    free(cfg->keyd);
    free(cfg->keyd_secret_file);
    free(cfg->seal_secret_file);
    free(cfg->user);
    free(cfg->admin);
    free(cfg->access_log);
    tlsc_routes_free(&cfg->routes);
    free(cfg->backends_file);
    memset(cfg, 0, sizeof(*cfg));
}
