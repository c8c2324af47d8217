#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/tls1.h>

#include "log.h"
#include "util.h"

/*
 * Parsing runs in two passes. The first collects raw strings: every value given on the
 * command line, then the TLSCACHE_* variables. The second applies them option by option in
 * table order, taking the command-line values of an option when there are any and its env
 * values otherwise, so a flag always wins over its variable. Every error is one line that
 * starts with the flag (and the variable, when the value came from one) and quotes the value
 * with control bytes escaped, so a hostile value cannot forge a second log line.
 */

#define MAX_REPEAT     64   /* values of one repeatable flag */
#define MAX_PATH_LEN   4096 /* file names */
#define MAX_NAME_LEN   64   /* --node, --cluster, --redis-prefix */
#define MAX_LIST_LEN   4096 /* --alpn, --groups, --ciphers, --ciphersuites */
#define MAX_HOST_LEN   253
#define QUOTE_MAX      96 /* a quoted value in an error: at most 60 source bytes, escaped */
#define ENV_PREFIX     "TLSCACHE_"
#define ENV_PFX_PASS   ENV_PREFIX "PFX_PASS"
#define DEFAULT_LISTEN "0.0.0.0:8443"
#define DEFAULT_REDIS  "redis://127.0.0.1:6379"

typedef int (*apply_fn)(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen);

enum {
    OPT_REPEAT = 1, /* may be given several times; its variable is a comma list */
    OPT_NOARG = 2,  /* takes no value */
    OPT_NOENV = 4,  /* has no TLSCACHE_* variable */
};

typedef struct {
    const char *name; /* without the leading "--" */
    const char *metavar;
    unsigned flags;
    apply_fn apply;
    const char *defval; /* shown by --help; NULL when there is none */
    const char *help;
} option_t;

/* The raw values of one option, before they are checked. */
typedef struct {
    const char *argv_vals[MAX_REPEAT]; /* point into argv */
    size_t n_argv;
    const char *env_vals[MAX_REPEAT]; /* point into env_buf */
    size_t n_env;
    char *env_buf; /* a copy of the variable, split at commas for repeatable options */
} slot_t;

/* ---------------------------------------------------------------- errors and small helpers */

/* Writes `v` in double quotes, escaping anything but printable ASCII and cutting it short. */
static const char *quote(char *out, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;

    out[o++] = '"';
    for (i = 0; v[i] != '\0' && i < 60; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o++] = '"';
    if (v[i] != '\0') {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, const char *label, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || errlen == 0)
        return -EINVAL;
    n = snprintf(err, errlen, "%s: ", label);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Parses a plain decimal number in min..max: no sign, no spaces, no trailing bytes. */
static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max) /* also stops any overflow: max is far below ULONG_MAX / 10 */
            return -1;
    }
    if (v < min)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int set_uint(const char *label, const char *value, unsigned min, unsigned max, unsigned *out, char *err, size_t errlen)
{
    char q[QUOTE_MAX];

    if (parse_uint(value, min, max, out) != 0)
        return fail(err, errlen, label, "%s is not a number in %u..%u", quote(q, value), min, max);
    return 0;
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
 * Splits HOST:PORT. The host may be [IPv6], a name, an IPv4 address, or (when `allow_any`)
 * empty or "*". The port is 1..65535 and is stored in canonical decimal.
 */
static int parse_hostport(const char *label, const char *value, int allow_any, char **host, char **port, char *err, size_t errlen)
{
    char q[QUOTE_MAX], hostbuf[MAX_HOST_LEN + 1], portbuf[8];
    const char *colon, *h = value;
    size_t hlen;
    unsigned pnum;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        struct in6_addr a6;
        if (close == NULL || close[1] != ':')
            return fail(err, errlen, label, "%s is not [IPV6]:PORT", quote(q, value));
        h = value + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0 || hlen > MAX_HOST_LEN)
            return fail(err, errlen, label, "%s has no valid IPv6 address in brackets", quote(q, value));
        memcpy(hostbuf, h, hlen);
        hostbuf[hlen] = '\0';
        if (inet_pton(AF_INET6, hostbuf, &a6) != 1)
            return fail(err, errlen, label, "%s has no valid IPv6 address in brackets", quote(q, value));
    } else {
        if ((colon = strrchr(value, ':')) == NULL)
            return fail(err, errlen, label, "%s is not HOST:PORT", quote(q, value));
        hlen = (size_t)(colon - value);
        if (memchr(value, ':', hlen) != NULL)
            return fail(err, errlen, label, "%s: put an IPv6 address in brackets, e.g. [::1]:8443", quote(q, value));
        if (hlen > MAX_HOST_LEN)
            return fail(err, errlen, label, "%s has a host longer than %d bytes", quote(q, value), MAX_HOST_LEN);
        memcpy(hostbuf, value, hlen);
        hostbuf[hlen] = '\0';
        if (hlen == 0 || strcmp(hostbuf, "*") == 0) {
            if (!allow_any)
                return fail(err, errlen, label, "%s has no host", quote(q, value));
        } else {
            for (size_t i = 0; i < hlen; i++)
                if (!is_name_char(hostbuf[i], ".-_"))
                    return fail(err, errlen, label, "%s has an invalid host name", quote(q, value));
        }
    }
    if (parse_uint(colon + 1, 1, 65535, &pnum) != 0)
        return fail(err, errlen, label, "%s has no port in 1..65535", quote(q, value));
    snprintf(portbuf, sizeof(portbuf), "%u", pnum);
    if ((*host = strdup(hostbuf)) == NULL || (*port = strdup(portbuf)) == NULL) {
        free(*host);
        *host = NULL;
        return fail(err, errlen, label, "out of memory");
    }
    return 0;
}

/* ---------------------------------------------------------------- one function per flag */

static int apply_listen(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
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

static int apply_workers(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_uint(label, value, 1, 256, &cfg->workers, err, errlen);
}

static int apply_node(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_name(label, value, "._-", &cfg->node, err, errlen);
}

static int apply_cluster(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_name(label, value, "._-", &cfg->cluster, err, errlen);
}

/* --cert values arrive first (table order), each starting a pair; --key values fill them in order. */
static int apply_cert(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
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

static int apply_key(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    char q[QUOTE_MAX];
    size_t i;

    for (i = 0; i < cfg->n_certs && cfg->certs[i].key_file != NULL; i++)
        ;
    if (i == cfg->n_certs)
        return fail(err, errlen, label, "%s has no matching --cert (give them in pairs: --cert FILE --key FILE)", quote(q, value));
    return set_path(label, value, &cfg->certs[i].key_file, err, errlen);
}

static int apply_pfx(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_path(label, value, &cfg->pfx_file, err, errlen);
}

static int apply_pfx_pass_file(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_path(label, value, &cfg->pfx_pass_file, err, errlen);
}

/* ALPN protocol names: 1..255 printable bytes each, as they go on the wire. */
static int apply_alpn(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
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

static int apply_groups(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_list(label, value, &cfg->groups, err, errlen);
}

static int apply_dhparam(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
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

static int apply_min_tls(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return parse_tls_version(label, value, &cfg->min_tls, err, errlen);
}

static int apply_max_tls(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return parse_tls_version(label, value, &cfg->max_tls, err, errlen);
}

static int apply_ciphers(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_list(label, value, &cfg->ciphers, err, errlen);
}

static int apply_ciphersuites(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_list(label, value, &cfg->ciphersuites, err, errlen);
}

static int apply_session_timeout(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_uint(label, value, 1, 86400, &cfg->session_timeout, err, errlen);
}

static int apply_redis(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    /* Kept as given; parsed once defaults are in, by parse_redis(). */
    return set_string(label, value, MAX_PATH_LEN, &cfg->redis_url_str, err, errlen);
}

static int apply_redis_prefix(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_name(label, value, "._:-", &cfg->redis_prefix, err, errlen);
}

static int apply_lookup_timeout(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_uint(label, value, 1, 10000, &cfg->lookup_timeout_ms, err, errlen);
}

static int apply_store_timeout(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_uint(label, value, 1, 10000, &cfg->store_timeout_ms, err, errlen);
}

static int apply_resumption(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
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

static int apply_log_level(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    char q[QUOTE_MAX];
    tlsc_log_level_t level;

    if (tlsc_log_parse_level(value, &level) != 0)
        return fail(err, errlen, label, "%s is not error, warn, info or debug", quote(q, value));
    cfg->log_level = (int)level;
    return 0;
}

static int apply_drain_timeout(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_uint(label, value, 0, 3600, &cfg->drain_timeout_sec, err, errlen);
}

/* HOST:PORT or unix:PATH; only checked here, the daemon client resolves it. */
static int apply_keyd(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    char q[QUOTE_MAX], *host = NULL, *port = NULL;

    if (strncmp(value, "unix:", 5) == 0) {
        if (value[5] == '\0' || strlen(value + 5) > 107) /* sizeof(sun_path) - 1 */
            return fail(err, errlen, label, "%s: a unix socket path must be 1..107 bytes", quote(q, value));
    } else {
        if (parse_hostport(label, value, 0, &host, &port, err, errlen) != 0)
            return -EINVAL;
        free(host);
        free(port);
    }
    return set_path(label, value, &cfg->keyd, err, errlen);
}

static int apply_keyd_secret_file(tlsc_config_t *cfg, const char *label, const char *value, char *err, size_t errlen)
{
    return set_path(label, value, &cfg->keyd_secret_file, err, errlen);
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
    IDX_ALPN,
    IDX_GROUPS,
    IDX_DHPARAM,
    IDX_MIN_TLS,
    IDX_MAX_TLS,
    IDX_CIPHERS,
    IDX_CIPHERSUITES,
    IDX_SESSION_TIMEOUT,
    IDX_REDIS,
    IDX_REDIS_PREFIX,
    IDX_LOOKUP_TIMEOUT,
    IDX_STORE_TIMEOUT,
    IDX_RESUMPTION,
    IDX_LOG_LEVEL,
    IDX_DRAIN_TIMEOUT,
    IDX_KEYD,
    IDX_KEYD_SECRET_FILE,
    IDX_HELP,
    IDX_VERSION,
    N_OPTIONS
};

static const option_t options[N_OPTIONS] = {
    [IDX_LISTEN] = {"listen", "HOST:PORT", OPT_REPEAT, apply_listen, DEFAULT_LISTEN,
                    "address to accept TLS on; repeatable; [::1]:443, *:8443"},
    [IDX_WORKERS] = {"workers", "N", 0, apply_workers, "number of online cores", "worker processes, 1..256"},
    [IDX_NODE] = {"node", "NAME", 0, apply_node, "the host name", "this node's name in Redis and logs ([A-Za-z0-9._-], <= 64)"},
    [IDX_CLUSTER] = {"cluster", "NAME", 0, apply_cluster, "tlscache", "cluster name; sessions resume on every node of one cluster"},
    [IDX_CERT] = {"cert", "FILE", OPT_REPEAT, apply_cert, NULL,
                  "PEM certificate chain; repeatable, paired in order with --key; the first is the default"},
    [IDX_KEY] = {"key", "FILE", OPT_REPEAT, apply_key, NULL, "PEM private key of the --cert at the same position"},
    [IDX_PFX] = {"pfx", "FILE", 0, apply_pfx, NULL, "PKCS#12 (.pfx/.p12) certificate and key"},
    [IDX_PFX_PASS_FILE] = {"pfx-pass-file", "FILE", 0, apply_pfx_pass_file, NULL,
                           "file holding the --pfx passphrase (else env " ENV_PFX_PASS "; never on the command line)"},
    [IDX_ALPN] = {"alpn", "LIST", 0, apply_alpn, "none", "ALPN protocols in server preference order, e.g. h2,http/1.1"},
    [IDX_GROUPS] = {"groups", "LIST", 0, apply_groups, "OpenSSL's default", "ECDHE groups, e.g. X25519:P-256"},
    [IDX_DHPARAM] = {"dhparam", "FILE", 0, apply_dhparam, "none (no DHE)", "PEM DH parameters, enables DHE"},
    [IDX_MIN_TLS] = {"min-tls", "1.2|1.3", 0, apply_min_tls, "1.2", "lowest TLS version"},
    [IDX_MAX_TLS] = {"max-tls", "1.2|1.3", 0, apply_max_tls, "1.3", "highest TLS version"},
    [IDX_CIPHERS] = {"ciphers", "LIST", 0, apply_ciphers, "OpenSSL's default", "TLS 1.2 cipher list"},
    [IDX_CIPHERSUITES] = {"ciphersuites", "LIST", 0, apply_ciphersuites, "OpenSSL's default", "TLS 1.3 ciphersuites"},
    [IDX_SESSION_TIMEOUT] = {"session-timeout", "SEC", 0, apply_session_timeout, "300",
                             "session lifetime, also the Redis TTL, 1..86400"},
    [IDX_REDIS] = {"redis", "URL", 0, apply_redis, DEFAULT_REDIS, "redis://[user:pass@]host:port[/db] or unix:///path"},
    [IDX_REDIS_PREFIX] = {"redis-prefix", "P", 0, apply_redis_prefix, "tlscache",
                          "prefix of every Redis key ([A-Za-z0-9._:-], <= 64)"},
    [IDX_LOOKUP_TIMEOUT] = {"lookup-timeout", "MS", 0, apply_lookup_timeout, "10",
                            "how long a handshake waits for a Redis lookup, 1..10000"},
    [IDX_STORE_TIMEOUT] = {"store-timeout", "MS", 0, apply_store_timeout, "50",
                           "how long a new session's bytes wait for the Redis write, 1..10000"},
    [IDX_RESUMPTION] = {"resumption", "MODE", 0, apply_resumption, "cache", "cache, tickets or both; tickets need --keyd"},
    [IDX_LOG_LEVEL] = {"log-level", "LEVEL", 0, apply_log_level, "info", "error, warn, info or debug"},
    [IDX_DRAIN_TIMEOUT] = {"drain-timeout", "SEC", 0, apply_drain_timeout, "10",
                           "how long SIGTERM waits for open connections, 0..3600"},
    [IDX_KEYD] = {"keyd", "ADDR", 0, apply_keyd, "none", "ticket-key daemon, HOST:PORT or unix:PATH"},
    [IDX_KEYD_SECRET_FILE] = {"keyd-secret-file", "FILE", 0, apply_keyd_secret_file, NULL,
                              "file holding the cluster secret for the --keyd link"},
    [IDX_HELP] = {"help", NULL, OPT_NOARG | OPT_NOENV, NULL, NULL, "print this help and exit"},
    [IDX_VERSION] = {"version", NULL, OPT_NOARG | OPT_NOENV, NULL, NULL, "print the version and exit"},
};

/* Writes "TLSCACHE_SESSION_TIMEOUT" for "session-timeout". */
static void env_name(char *out, size_t outlen, const char *name)
{
    size_t o = (size_t)snprintf(out, outlen, "%s", ENV_PREFIX);

    for (; *name != '\0' && o + 1 < outlen; name++)
        out[o++] = *name == '-' ? '_' : (char)(*name >= 'a' && *name <= 'z' ? *name - 'a' + 'A' : *name);
    out[o] = '\0';
}

static void print_help(FILE *f)
{
    char env[64], left[48];

    fputs("usage: tlscache-server --cert FILE --key FILE [--cert FILE --key FILE ...] [options]\n"
          "       tlscache-server --pfx FILE [--pfx-pass-file FILE] [options]\n\n"
          "Every flag can also be set with its TLSCACHE_* variable; a flag on the command line wins.\n"
          "Repeatable flags take a comma list in their variable (TLSCACHE_LISTEN=\"a:1,b:2\").\n"
          "An empty variable counts as unset.\n\n",
          f);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &options[i];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-28s %s\n", left, o->help);
        if (!(o->flags & OPT_NOENV)) {
            env_name(env, sizeof(env), o->name);
            fprintf(f, "  %-28s   default: %s; env %s\n", "", o->defval ? o->defval : "none", env);
        }
    }
    fprintf(f, "\n  %-28s the --pfx passphrase, when --pfx-pass-file is not given\n", "env " ENV_PFX_PASS);
}

/* ---------------------------------------------------------------- collecting raw values */

static int find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int add_value(slot_t *s, const char *label, const char *value, int from_env, char *err, size_t errlen)
{
    size_t *n = from_env ? &s->n_env : &s->n_argv;
    const char **vals = from_env ? s->env_vals : s->argv_vals;

    if (*n == MAX_REPEAT)
        return fail(err, errlen, label, "given more than %d times", MAX_REPEAT);
    vals[(*n)++] = value;
    return 0;
}

/*
 * Walks argv. Returns 0, 1 after printing --help or --version, or an error. Values stay
 * pointers into argv.
 */
static int collect_argv(slot_t *slots, int argc, char **argv, char *err, size_t errlen)
{
    char q[QUOTE_MAX], label[48];

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value = NULL;
        size_t len;
        int idx;

        if (strcmp(arg, "-h") == 0)
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return fail(err, errlen, quote(q, arg), "unexpected argument (flags start with --; see --help)");
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        if ((idx = find_option(name, len)) < 0) {
            if (len == 8 && memcmp(name, "pfx-pass", 8) == 0) /* never echo what follows: it is a secret */
                return fail(err, errlen, "--pfx-pass",
                            "passphrases are not accepted on the command line; use --pfx-pass-file or " ENV_PFX_PASS);
            if (eq != NULL) {
                char nq[QUOTE_MAX], *cut = strndup(arg, (size_t)(eq - arg));
                if (cut == NULL)
                    return fail(err, errlen, "tlscache-server", "out of memory");
                fail(err, errlen, quote(nq, cut), "unknown flag (see --help)");
                free(cut);
                return -EINVAL;
            }
            return fail(err, errlen, quote(q, arg), "unknown flag (see --help)");
        }
        snprintf(label, sizeof(label), "--%s", options[idx].name);
        if (options[idx].flags & OPT_NOARG) {
            if (eq != NULL)
                return fail(err, errlen, label, "takes no value");
            if (idx == IDX_HELP)
                print_help(stdout);
            else
                printf("tlscache-server %s\n", TLSC_VERSION);
            return 1;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else {
            /* A following "--flag" is a forgotten value, not a file name that starts with "--". */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return fail(err, errlen, label, "needs a value (%s)", options[idx].metavar);
            value = argv[++i];
        }
        if (!(options[idx].flags & OPT_REPEAT) && slots[idx].n_argv > 0)
            return fail(err, errlen, label, "given more than once");
        if (add_value(&slots[idx], label, value, 0, err, errlen) != 0)
            return -EINVAL;
    }
    return 0;
}

/* Picks up TLSCACHE_* variables. Unknown ones are left alone: other programs share the prefix. */
static int collect_env(tlsc_config_t *cfg, slot_t *slots, char **envp, char *err, size_t errlen)
{
    char name[64], label[96];

    for (char **e = envp; e != NULL && *e != NULL; e++) {
        const char *eq;

        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0 || (eq = strchr(*e, '=')) == NULL || eq[1] == '\0')
            continue;
        if ((size_t)(eq - *e) == strlen(ENV_PFX_PASS) && memcmp(*e, ENV_PFX_PASS, strlen(ENV_PFX_PASS)) == 0) {
            tlsc_secure_free(cfg->pfx_pass, cfg->pfx_pass ? strlen(cfg->pfx_pass) : 0);
            if ((cfg->pfx_pass = strdup(eq + 1)) == NULL)
                return fail(err, errlen, ENV_PFX_PASS, "out of memory");
            continue;
        }
        for (size_t i = 0; i < N_OPTIONS; i++) {
            slot_t *s = &slots[i];
            char *p;

            if (options[i].flags & OPT_NOENV)
                continue;
            env_name(name, sizeof(name), options[i].name);
            if ((size_t)(eq - *e) != strlen(name) || memcmp(*e, name, strlen(name)) != 0)
                continue;
            snprintf(label, sizeof(label), "--%s (from %s)", options[i].name, name);
            free(s->env_buf);
            s->n_env = 0;
            if ((s->env_buf = strdup(eq + 1)) == NULL)
                return fail(err, errlen, label, "out of memory");
            p = s->env_buf;
            for (;;) {
                char *comma = (options[i].flags & OPT_REPEAT) ? strchr(p, ',') : NULL;
                if (comma != NULL)
                    *comma = '\0';
                if (add_value(s, label, p, 1, err, errlen) != 0)
                    return -EINVAL;
                if (comma == NULL)
                    break;
                p = comma + 1;
            }
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- defaults and cross-checks */

static int set_defaults(tlsc_config_t *cfg, char *err, size_t errlen)
{
    char host[256];

    if (cfg->n_listen == 0 && apply_listen(cfg, "--listen", DEFAULT_LISTEN, err, errlen) != 0)
        return -EINVAL;
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
    if ((cfg->cluster == NULL && (cfg->cluster = strdup("tlscache")) == NULL) ||
        (cfg->redis_prefix == NULL && (cfg->redis_prefix = strdup("tlscache")) == NULL) ||
        (cfg->redis_url_str == NULL && (cfg->redis_url_str = strdup(DEFAULT_REDIS)) == NULL))
        return fail(err, errlen, "tlscache-server", "out of memory");
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

static int parse_redis(tlsc_config_t *cfg, const char *label, char *err, size_t errlen)
{
    char reason[256], masked[MAX_PATH_LEN + 8], q[QUOTE_MAX];

    reason[0] = '\0';
    if (tlsc_redis_url_parse(cfg->redis_url_str, &cfg->redis, reason, sizeof(reason)) == 0)
        return 0;
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
    if (cfg->min_tls > cfg->max_tls)
        return fail(err, errlen, "--min-tls", "%s is above --max-tls %s", cfg->min_tls == TLS1_3_VERSION ? "1.3" : "1.2",
                    cfg->max_tls == TLS1_3_VERSION ? "1.3" : "1.2");
    if (cfg->keyd_secret_file != NULL && cfg->keyd == NULL)
        return fail(err, errlen, "--keyd-secret-file", "given without --keyd");
    /* Tickets whose keys no daemon shares would open on one worker and fail on the next. */
    if ((cfg->resumption & TLSC_RESUME_TICKETS) && cfg->keyd == NULL)
        return fail(err, errlen, "--resumption", "\"%s\" needs --keyd (ticket keys come from tlscache-daemon)",
                    cfg->resumption == TLSC_RESUME_BOTH ? "both" : "tickets");
    if (cfg->pfx_pass_file != NULL && cfg->pfx_pass != NULL) {
        /* The file wins; the variable's copy is not kept around. */
        tlsc_secure_free(cfg->pfx_pass, strlen(cfg->pfx_pass));
        cfg->pfx_pass = NULL;
    }
    return parse_redis(cfg, redis_label, err, errlen);
}

/* ---------------------------------------------------------------- the entry points */

int tlsc_config_parse(tlsc_config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    slot_t *slots;
    char label[96], redis_label[96], name[64];
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    cfg->min_tls = TLS1_2_VERSION;
    cfg->max_tls = TLS1_3_VERSION;
    cfg->session_timeout = 300;
    cfg->lookup_timeout_ms = 10;
    cfg->store_timeout_ms = 50;
    cfg->resumption = TLSC_RESUME_CACHE;
    cfg->log_level = TLSC_LOG_INFO;
    cfg->drain_timeout_sec = 10;

    if ((slots = calloc(N_OPTIONS, sizeof(*slots))) == NULL)
        return fail(err, errlen, "tlscache-server", "out of memory");
    if ((rc = collect_argv(slots, argc, argv, err, errlen)) != 0)
        goto done;
    if ((rc = collect_env(cfg, slots, envp, err, errlen)) != 0)
        goto done;

    snprintf(redis_label, sizeof(redis_label), "--redis");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const slot_t *s = &slots[i];
        int use_argv = s->n_argv > 0;

        /* A certificate and its key come from the same place, so pairs never mix sources. */
        if (i == IDX_CERT || i == IDX_KEY)
            use_argv = slots[IDX_CERT].n_argv > 0 || slots[IDX_KEY].n_argv > 0;
        if (use_argv) {
            snprintf(label, sizeof(label), "--%s", options[i].name);
        } else {
            env_name(name, sizeof(name), options[i].name);
            snprintf(label, sizeof(label), "--%s (from %s)", options[i].name, name);
        }
        if (i == IDX_REDIS && (use_argv || s->n_env > 0))
            snprintf(redis_label, sizeof(redis_label), "%s", label);
        for (size_t j = 0; j < (use_argv ? s->n_argv : s->n_env); j++)
            if ((rc = options[i].apply(cfg, label, use_argv ? s->argv_vals[j] : s->env_vals[j], err, errlen)) != 0)
                goto done;
    }
    if ((rc = set_defaults(cfg, err, errlen)) != 0)
        goto done;
    rc = check_config(cfg, redis_label, err, errlen);

done:
    for (size_t i = 0; i < N_OPTIONS; i++)
        free(slots[i].env_buf);
    free(slots);
    return rc;
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
    free(cfg->keyd);
    free(cfg->keyd_secret_file);
    memset(cfg, 0, sizeof(*cfg));
}
