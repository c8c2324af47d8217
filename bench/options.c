#include "options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "addr.h"
#include "opts.h"
#include "redis_stats.h"
#include "redis_url.h"

const char *tlsc_bench_mode_name(tlsc_bench_mode_t m)
{
    switch (m) {
    case TLSC_BENCH_MODE_FULL:
        return "full";
    case TLSC_BENCH_MODE_ID:
        return "id";
    case TLSC_BENCH_MODE_TICKET:
        return "ticket";
    }
    return "?";
}

int tlsc_bench_target_parse(const char *s, tlsc_bench_target_t *t, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], why[128];
    tlsc_addr_t a;

    memset(t, 0, sizeof(*t));
    if (tlsc_addr_parse_str(s, 0, &a, why, sizeof(why)) != 0) {
        tlsc_opts_fail(err, errlen, "--target", "%s: %s", tlsc_opts_quote(q, s), why);
        return -1;
    }
    snprintf(t->host, sizeof(t->host), "%s", a.host);
    t->port = a.port;
    tlsc_addr_format(&a, t->label, sizeof(t->label));
    return 0;
}

int tlsc_bench_alpn_wire(const char *list, unsigned char *out, size_t cap)
{
    size_t len = 0;
    const char *p = list;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);

        if (n == 0 || n > 255 || len + 1 + n > cap)
            return -1;
        out[len++] = (unsigned char)n;
        memcpy(out + len, p, n);
        len += n;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return (int)len;
}

/* ---------------------------------------------------------------- one function per flag */

/* What the flags fill in, and what the cross-checks after the parse need to know. */
typedef struct {
    tlsc_bench_options_t *o;
    int have_connections, have_duration;
    int redis_tls; /* --redis is a URL with TLS (rediss://, or a TLS form of sentinel or cluster) */
} ctx_t;

#define Q(v) tlsc_opts_quote(q, (v))

static int apply_target(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_bench_options_t *o = ((ctx_t *)ctx)->o;
    char q[TLSC_OPTS_QUOTE_MAX];

    if (o->ntargets == TLSC_BENCH_MAX_TARGETS)
        return tlsc_opts_fail(err, errlen, label, "%s: at most %d targets", Q(value), TLSC_BENCH_MAX_TARGETS);
    if (tlsc_bench_target_parse(value, &o->targets[o->ntargets], err, errlen) != 0)
        return -EINVAL;
    o->ntargets++;
    return 0;
}

static int apply_balance(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_bench_options_t *o = ((ctx_t *)ctx)->o;
    char q[TLSC_OPTS_QUOTE_MAX];

    if (strcmp(value, "rr") == 0)
        o->balance = TLSC_BENCH_BALANCE_RR;
    else if (strcmp(value, "random") == 0)
        o->balance = TLSC_BENCH_BALANCE_RANDOM;
    else
        return tlsc_opts_fail(err, errlen, label, "%s is not rr or random", Q(value));
    return 0;
}

static int apply_connections(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (tlsc_parse_uint(value, 1, UINT64_C(1) << 40, &((ctx_t *)ctx)->o->connections) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not a number in 1..%llu", Q(value), 1ULL << 40);
    ((ctx_t *)ctx)->have_connections = 1;
    return 0;
}

static int apply_duration(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], *end;
    double d;

    errno = 0;
    d = strtod(value, &end);
    if (*value == '\0' || *end != '\0' || errno != 0 || !(d > 0) || d > 86400 * 7)
        return tlsc_opts_fail(err, errlen, label, "%s is not seconds, more than 0 and at most a week", Q(value));
    ((ctx_t *)ctx)->o->duration_sec = d;
    ((ctx_t *)ctx)->have_duration = 1;
    return 0;
}

static int apply_concurrency(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, 100000, &((ctx_t *)ctx)->o->concurrency, err, errlen);
}

static int apply_tls(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (strcmp(value, "1.2") == 0)
        ((ctx_t *)ctx)->o->tls_version = TLS1_2_VERSION;
    else if (strcmp(value, "1.3") == 0)
        ((ctx_t *)ctx)->o->tls_version = TLS1_3_VERSION;
    else
        return tlsc_opts_fail(err, errlen, label, "%s is not 1.2 or 1.3", Q(value));
    return 0;
}

static int apply_mode(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_bench_options_t *o = ((ctx_t *)ctx)->o;
    char q[TLSC_OPTS_QUOTE_MAX];

    if (strcmp(value, "full") == 0)
        o->mode = TLSC_BENCH_MODE_FULL;
    else if (strcmp(value, "id") == 0)
        o->mode = TLSC_BENCH_MODE_ID;
    else if (strcmp(value, "ticket") == 0)
        o->mode = TLSC_BENCH_MODE_TICKET;
    else
        return tlsc_opts_fail(err, errlen, label, "%s is not full, id or ticket", Q(value));
    return 0;
}

static int apply_new_session_every(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (tlsc_parse_uint(value, 1, UINT64_MAX, &((ctx_t *)ctx)->o->new_session_every) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not a whole number from 1", Q(value));
    return 0;
}

static int apply_sni(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (*value == '\0' || strlen(value) > 255)
        return tlsc_opts_fail(err, errlen, label, "%s is not a host name of 1 to 255 characters", Q(value));
    ((ctx_t *)ctx)->o->sni = value;
    return 0;
}

static int apply_no_sni(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->o->no_sni = 1;
    return 0;
}

static int apply_alpn(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];
    unsigned char wire[1024];

    if (tlsc_bench_alpn_wire(value, wire, sizeof(wire)) < 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not comma-separated names of 1 to 255 bytes", Q(value));
    ((ctx_t *)ctx)->o->alpn = value;
    return 0;
}

/* --request alone asks for "/"; a path, when given, starts with '/' and has no spaces. */
static int apply_request(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_bench_options_t *o = ((ctx_t *)ctx)->o;
    char q[TLSC_OPTS_QUOTE_MAX];

    o->request = 1;
    if (value == NULL)
        return 0;
    if (value[0] != '/' || strpbrk(value, " \r\n") != NULL)
        return tlsc_opts_fail(err, errlen, label, "%s is not a path starting with / and without spaces", Q(value));
    o->request_path = value;
    return 0;
}

#define APPLY_STRING(fn, field)                                                                                                    \
    static int fn(void *ctx, const char *label, const char *value, char *err, size_t errlen)                                       \
    {                                                                                                                              \
        if (*value == '\0')                                                                                                        \
            return tlsc_opts_fail(err, errlen, label, "the value is empty");                                                       \
        ((ctx_t *)ctx)->o->field = value;                                                                                          \
        return 0;                                                                                                                  \
    }

APPLY_STRING(apply_json, json_file)
APPLY_STRING(apply_csv, csv_file)
APPLY_STRING(apply_plot, plot_file)
APPLY_STRING(apply_redis_pass_file, redis_pass_file)

APPLY_STRING(apply_redis_sentinel_pass_file, redis_sentinel_pass_file)
APPLY_STRING(apply_redis_sentinel_user, redis_sentinel_user)
APPLY_STRING(apply_redis_ca, redis_ca_file)
APPLY_STRING(apply_redis_cert, redis_cert_file)
APPLY_STRING(apply_redis_key, redis_key_file)

/* Any form the server takes (ctl/redis_sync.h reads them all); but a password in argv is in every `ps` listing. */
static int apply_redis(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_redis_url_t u;
    char why[256];
    int has_password;

    if (tlsc_redis_url_parse(value, &u, why, sizeof(why)) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s", why);
    has_password = u.password != NULL;
    ((ctx_t *)ctx)->redis_tls = u.tls;
    tlsc_redis_url_free(&u);
    if (has_password)
        return tlsc_opts_fail(err, errlen, label, TLSC_REDIS_ARGV_PASSWORD);
    ((ctx_t *)ctx)->o->redis_url = value;
    return 0;
}
APPLY_STRING(apply_cafile, cafile)
APPLY_STRING(apply_groups, groups)
APPLY_STRING(apply_ciphers, ciphers)
APPLY_STRING(apply_ciphersuites, ciphersuites)
APPLY_STRING(apply_label, label)

static int apply_redis_prefix(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (*value == '\0' || strpbrk(value, "*?[]\\ ") != NULL)
        return tlsc_opts_fail(err, errlen, label, "%s is not a non-empty prefix without glob characters or spaces", Q(value));
    ((ctx_t *)ctx)->o->redis_prefix = value;
    return 0;
}

static int apply_redis_settle(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 0, 60000, &((ctx_t *)ctx)->o->redis_settle_ms, err, errlen);
}

static int apply_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, 3600000, &((ctx_t *)ctx)->o->timeout_ms, err, errlen);
}

static int apply_ticket_wait(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 0, 3600000, &((ctx_t *)ctx)->o->ticket_wait_ms, err, errlen);
}

static int apply_seed(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (tlsc_parse_uint(value, 0, UINT64_MAX, &((ctx_t *)ctx)->o->seed) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not a whole number", Q(value));
    ((ctx_t *)ctx)->o->seed_set = 1;
    return 0;
}

static int apply_quiet(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    (void)label, (void)value, (void)err, (void)errlen;
    ((ctx_t *)ctx)->o->quiet = 1;
    return 0;
}

/* ---------------------------------------------------------------- the table */

/* One table for parsing and --help; TLSC_OPT_DEFAULT values are also what tlsc_bench_options_init sets. */
static const tlsc_opt_t options[] = {
    {"target", "HOST:PORT", TLSC_OPT_REPEAT, apply_target, NULL, "a server to connect to; repeat for several ([v6]:port for IPv6)",
     0},
    {"balance", "rr|random", TLSC_OPT_DEFAULT, apply_balance, "rr", "how connections are spread over targets", 0},
    {"connections", "N", 0, apply_connections, "1000", "run N connections ...", 0},
    {"duration", "SEC", 0, apply_duration, NULL, "... or start connections for SEC seconds", 0},
    {"concurrency", "C", TLSC_OPT_DEFAULT, apply_concurrency, "8", "connections in flight at once", 0},
    {"tls", "1.2|1.3", 0, apply_tls, "negotiate 1.2 or 1.3", "pin the protocol version", 0},
    {"mode", "full|id|ticket", TLSC_OPT_DEFAULT, apply_mode, "id",
     "full: never offer a session; id: TLS 1.2 session IDs (no ticket extension); ticket: stateless tickets.\n"
     "                               In TLS 1.3 the server decides between stateful and stateless tickets",
     0},
    {"new-session-every", "K", 0, apply_new_session_every, "only when none is at hand",
     "every K-th connection offers no session (a mix of full and resumed handshakes)", 0},
    {"sni", "NAME", 0, apply_sni, "the target's host unless it is an IP address", "server name to send", 0},
    {"no-sni", NULL, TLSC_OPT_NOARG, apply_no_sni, NULL, "send no server name", 0},
    {"alpn", "LIST", 0, apply_alpn, NULL, "offer ALPN protocols, e.g. h2,http/1.1", 0},
    {"request", "PATH", TLSC_OPT_OPTARG, apply_request, "/",
     "after the handshake send GET PATH with \"Connection: close\" and read the reply to its end", 0},
    {"cafile", "FILE", 0, apply_cafile, "no verification, reported as such", "verify the server certificate and name against FILE",
     0},
    {"groups", "LIST", 0, apply_groups, NULL, "key exchange groups, e.g. X25519:P-256", 0},
    {"ciphers", "LIST", 0, apply_ciphers, NULL, "TLS 1.2 cipher list", 0},
    {"ciphersuites", "LIST", 0, apply_ciphersuites, NULL, "TLS 1.3 suites", 0},
    {"timeout", "MS", TLSC_OPT_DEFAULT, apply_timeout, "5000", "bound on each connection, connect to close", 0},
    {"ticket-wait", "MS", TLSC_OPT_DEFAULT, apply_ticket_wait, "1000",
     "TLS 1.3: how long to wait for a NewSessionTicket after the handshake before closing without one", 0},
    {"json", "FILE", 0, apply_json, NULL, "write the full report as JSON", 0},
    {"csv", "FILE", 0, apply_csv, NULL, "append one summary row (header when the file is new)", 0},
    {"plot", "FILE.png", 0, apply_plot, NULL, "latency distribution and throughput over time (gnuplot)", 0},
    {"redis", "URL", 0, apply_redis, NULL,
     "read the servers' <prefix>:stats:* counters before and after, as the server's --redis: redis://[user@]host[:port][/db], "
     "rediss://..., unix:///path, redis-sentinel://h1:p1,h2:p2/MASTER or redis-cluster://h1:p1,h2:p2 (every master)",
     0},
    {"redis-pass-file", "FILE", 0, apply_redis_pass_file, NULL,
     "file holding the Redis password, mode 0600 (else env TLSCACHE_REDIS_PASS; never on the command line)", 0},
    {"redis-sentinel-pass-file", "FILE", 0, apply_redis_sentinel_pass_file, NULL,
     "redis-sentinel:// for --redis: file holding the sentinels' own password, mode 0600 (else env "
     "TLSCACHE_REDIS_SENTINEL_PASS)",
     0},
    {"redis-sentinel-user", "NAME", 0, apply_redis_sentinel_user, NULL, "redis-sentinel:// for --redis: the sentinels' ACL user",
     0},
    {"redis-ca", "FILE", 0, apply_redis_ca, NULL, "TLS to Redis: the CA that signed Redis's certificate (required for TLS)", 0},
    {"redis-cert", "FILE", 0, apply_redis_cert, NULL, "TLS to Redis: PEM client certificate chain, with --redis-key", 0},
    {"redis-key", "FILE", 0, apply_redis_key, NULL, "TLS to Redis: PEM key of --redis-cert", 0},
    {"redis-prefix", "P", TLSC_OPT_DEFAULT, apply_redis_prefix, "tlscache", "key prefix", 0},
    {"redis-settle", "MS", TLSC_OPT_DEFAULT, apply_redis_settle, "1500",
     "wait before the final stats read, as servers publish about once a second", 0},
    {"seed", "N", 0, apply_seed, "from the clock", "seed for --balance random", 0},
    {"label", "NAME", 0, apply_label, NULL, "names the run in the JSON and CSV output", 0},
    {"quiet", NULL, TLSC_OPT_NOARG, apply_quiet, NULL, "no progress line and no report on stdout", 0},
    {"help", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print this help and exit", 0},
    {"version", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print the version and exit", 0},
};

static const tlsc_opt_refused_t REFUSED[] = {
    {"redis-pass", "passwords are not accepted on the command line; use --redis-pass-file or TLSCACHE_REDIS_PASS"},
    {NULL, NULL},
};

static const tlsc_opts_spec_t spec = {
    .prog = "tlscache-bench",
    .version = TLSC_VERSION,
    .summary = "TLS handshake and session resumption benchmark",
    .man_section = 1,
    .see_also = "tlscache-server(8), tlscache-daemon(8)",
    .env_prefix = NULL, /* the bench reads no environment: a run is its command line */
    .usage = "usage: tlscache-bench --target HOST:PORT [--target HOST:PORT ...] [options]\n"
             "\n"
             "Opens TLS connections to one or more targets, offers sessions from earlier connections\n"
             "and reports full vs resumed handshakes, the resumption rate per (issuing target ->\n"
             "offered target), latency percentiles, errors and the client's own CPU.\n"
             "\n",
    .footer = "\n  env TLSCACHE_REDIS_PASS          the Redis password for --redis, when --redis-pass-file is not given\n"
              "  env TLSCACHE_REDIS_SENTINEL_PASS the sentinels' password, when --redis-sentinel-pass-file is not given\n"
              "\n"
              "A run in which no handshake succeeds, or whose report cannot be written, exits 1.\n"
              "\n"
              "Handshake latency is measured from the first ClientHello byte (TCP connected) to the\n"
              "end of the handshake; TCP connect time is reported separately. Every run ends by itself:\n"
              "at most --duration plus --timeout, and each connection within --timeout.\n",
    .opts = options,
    .n_opts = sizeof(options) / sizeof(options[0]),
    .refused = REFUSED,
};

/* TLS to Redis needs the CA to verify it with; the TLS files mean nothing without TLS. As the server's checks. */
static int check_redis_tls(const ctx_t *ctx, char *err, size_t errlen)
{
    const tlsc_bench_options_t *o = ctx->o;

    if (ctx->redis_tls && o->redis_ca_file == NULL)
        return tlsc_opts_fail(err, errlen, "--redis", "a TLS URL needs --redis-ca FILE (the CA that signed Redis's certificate)");
    if (!ctx->redis_tls && (o->redis_ca_file != NULL || o->redis_cert_file != NULL || o->redis_key_file != NULL))
        return tlsc_opts_fail(err, errlen,
                              o->redis_ca_file     ? "--redis-ca"
                              : o->redis_cert_file ? "--redis-cert"
                                                   : "--redis-key",
                              "given, but --redis is not a TLS URL (rediss://)");
    if ((o->redis_cert_file == NULL) != (o->redis_key_file == NULL))
        return tlsc_opts_fail(err, errlen, o->redis_cert_file ? "--redis-cert" : "--redis-key",
                              "needs %s (a client certificate and its key go together)",
                              o->redis_cert_file ? "--redis-key" : "--redis-cert");
    return 0;
}

void tlsc_bench_options_init(tlsc_bench_options_t *o)
{
    ctx_t ctx = {o, 0, 0, 0};
    char err[256];

    memset(o, 0, sizeof(*o));
    o->request_path = "/"; /* what --request asks for when it names no path */
    /* The literal defaults are in the table, applied by the flags' own functions. */
    tlsc_opts_defaults(&spec, &ctx, err, sizeof(err));
}

void tlsc_bench_usage(FILE *out)
{
    tlsc_opts_help(&spec, out);
}

int tlsc_bench_options_parse(tlsc_bench_options_t *o, int argc, char **argv, char *err, size_t errlen)
{
    ctx_t ctx = {o, 0, 0, 0};
    int rc;

    if ((rc = tlsc_opts_parse(&spec, &ctx, argc, argv, NULL, err, errlen)) != 0)
        return rc > 0 ? 1 : -1;
    if (o->ntargets == 0) {
        tlsc_opts_fail(err, errlen, "--target", "at least one --target HOST:PORT is required");
        return -1;
    }
    if (ctx.have_connections && ctx.have_duration) {
        tlsc_opts_fail(err, errlen, "--connections", "--connections and --duration exclude each other");
        return -1;
    }
    if (!ctx.have_connections && !ctx.have_duration)
        o->connections = 1000;
    if (o->sni != NULL && o->no_sni) {
        tlsc_opts_fail(err, errlen, "--no-sni", "--sni and --no-sni exclude each other");
        return -1;
    }
    if (o->mode == TLSC_BENCH_MODE_FULL && o->new_session_every != 0) {
        tlsc_opts_fail(err, errlen, "--new-session-every", "needs --mode id or ticket");
        return -1;
    }
    return check_redis_tls(&ctx, err, errlen);
}
