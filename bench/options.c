#include "options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

void tlsc_bench_options_init(tlsc_bench_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->balance = TLSC_BENCH_BALANCE_RR;
    o->concurrency = 8;
    o->mode = TLSC_BENCH_MODE_ID;
    o->request_path = "/";
    o->redis_prefix = "tlscache";
    o->redis_settle_ms = 1500;
    o->timeout_ms = 5000;
    o->ticket_wait_ms = 1000;
}

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

void tlsc_bench_usage(FILE *out)
{
    fputs("usage: tlscache-bench --target HOST:PORT [--target HOST:PORT ...] [options]\n"
          "\n"
          "Opens TLS connections to one or more targets, offers sessions from earlier connections\n"
          "and reports full vs resumed handshakes, the resumption rate per (issuing target ->\n"
          "offered target), latency percentiles, errors and the client's own CPU.\n"
          "\n"
          "  --target HOST:PORT      a server to connect to; repeat for several ([v6]:port for IPv6)\n"
          "  --balance rr|random     how connections are spread over targets (default rr)\n"
          "  --connections N         run N connections (default 1000) ...\n"
          "  --duration SEC          ... or start connections for SEC seconds\n"
          "  --concurrency C         connections in flight at once (default 8)\n"
          "  --tls 1.2|1.3           pin the protocol version (default: negotiate 1.2 or 1.3)\n"
          "  --mode full|id|ticket   full: never offer a session; id: TLS 1.2 session IDs (no ticket\n"
          "                          extension); ticket: stateless tickets. In TLS 1.3 the server\n"
          "                          decides between stateful and stateless tickets (default id)\n"
          "  --new-session-every K   every K-th connection offers no session (a mix of full and\n"
          "                          resumed handshakes; default: only when none is at hand)\n"
          "  --sni NAME              server name to send (default: the target's host unless it is an\n"
          "                          IP address); --no-sni sends none\n"
          "  --alpn LIST             offer ALPN protocols, e.g. h2,http/1.1\n"
          "  --request [PATH]        after the handshake send GET PATH (default /) with\n"
          "                          \"Connection: close\" and read the reply to its end\n"
          "  --cafile FILE           verify the server certificate and name against FILE\n"
          "                          (default: no verification, reported as such)\n"
          "  --groups LIST           key exchange groups, e.g. X25519:P-256\n"
          "  --ciphers LIST          TLS 1.2 cipher list;  --ciphersuites LIST  TLS 1.3 suites\n"
          "  --timeout MS            bound on each connection, connect to close (default 5000)\n"
          "  --ticket-wait MS        TLS 1.3: how long to wait for a NewSessionTicket after the\n"
          "                          handshake before closing without one (default 1000)\n"
          "  --json FILE             write the full report as JSON\n"
          "  --csv FILE              append one summary row (header when the file is new)\n"
          "  --plot FILE.png         latency distribution and throughput over time (gnuplot)\n"
          "  --redis URL             read the servers' <prefix>:stats:* counters before and after\n"
          "  --redis-prefix P        key prefix (default tlscache)\n"
          "  --redis-settle MS       wait before the final stats read, as servers publish about\n"
          "                          once a second (default 1500)\n"
          "  --seed N                seed for --balance random (default: from the clock)\n"
          "  --label NAME            names the run in the JSON and CSV output\n"
          "  --quiet                 no progress line and no report on stdout\n"
          "  --help, --version\n"
          "\n"
          "Handshake latency is measured from the first ClientHello byte (TCP connected) to the\n"
          "end of the handshake; TCP connect time is reported separately. Every run ends by itself:\n"
          "at most --duration plus --timeout, and each connection within --timeout.\n"
          "Exit status: 0 when at least one handshake succeeded, 1 on a usage error, 2 otherwise.\n",
          out);
}

int tlsc_bench_target_parse(const char *s, tlsc_bench_target_t *t, char *err, size_t errlen)
{
    const char *colon, *host = s;
    size_t hostlen;
    char *end;
    unsigned long port;

    memset(t, 0, sizeof(*t));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') {
            snprintf(err, errlen, "--target %s: expected [ADDRESS]:PORT", s);
            return -1;
        }
        host = s + 1;
        hostlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) {
            snprintf(err, errlen, "--target %s: expected HOST:PORT", s);
            return -1;
        }
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen >= sizeof(t->host)) {
        snprintf(err, errlen, "--target %s: empty or too long host", s);
        return -1;
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port == 0 || port > 65535 || colon[1] == '-' || colon[1] == '+') {
        snprintf(err, errlen, "--target %s: port must be 1..65535", s);
        return -1;
    }
    memcpy(t->host, host, hostlen);
    t->host[hostlen] = '\0';
    t->port = (unsigned)port;
    if (s[0] == '[')
        snprintf(t->label, sizeof(t->label), "[%s]:%u", t->host, t->port);
    else
        snprintf(t->label, sizeof(t->label), "%s:%u", t->host, t->port);
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

/* Parses a whole decimal number within [min, max]. */
static int parse_u64(const char *flag, const char *v, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
    char *end;
    unsigned long long x;

    errno = 0;
    x = strtoull(v, &end, 10);
    if (*v == '\0' || *v == '-' || *v == '+' || *end != '\0' || errno != 0 || x < min || x > max) {
        snprintf(err, errlen, "%s %s: expected a whole number from %llu to %llu", flag, v, (unsigned long long)min,
                 (unsigned long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_uint(const char *flag, const char *v, unsigned min, unsigned max, unsigned *out, char *err, size_t errlen)
{
    uint64_t x;

    if (parse_u64(flag, v, min, max, &x, err, errlen) != 0)
        return -1;
    *out = (unsigned)x;
    return 0;
}

/* The flags that take a value; the others are switches. */
static const char *const valued[] = {
    "--target",
    "--balance",
    "--connections",
    "--duration",
    "--concurrency",
    "--tls",
    "--mode",
    "--new-session-every",
    "--sni",
    "--alpn",
    "--json",
    "--csv",
    "--plot",
    "--redis",
    "--redis-prefix",
    "--redis-settle",
    "--cafile",
    "--groups",
    "--ciphers",
    "--ciphersuites",
    "--timeout",
    "--ticket-wait",
    "--seed",
    "--label",
    NULL,
};

static int takes_value(const char *flag)
{
    for (size_t i = 0; valued[i] != NULL; i++)
        if (strcmp(flag, valued[i]) == 0)
            return 1;
    return 0;
}

int tlsc_bench_options_parse(tlsc_bench_options_t *o, int argc, char **argv, char *err, size_t errlen)
{
    int have_connections = 0, have_duration = 0;

    for (int i = 1; i < argc; i++) {
        char flag[64];
        const char *arg = argv[i], *v = NULL, *eq;

        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument %s (flags start with --)", arg);
            return -1;
        }
        if ((eq = strchr(arg, '=')) != NULL) {
            if ((size_t)(eq - arg) >= sizeof(flag)) {
                snprintf(err, errlen, "unknown flag %s", arg);
                return -1;
            }
            memcpy(flag, arg, (size_t)(eq - arg));
            flag[eq - arg] = '\0';
            v = eq + 1;
        } else {
            snprintf(flag, sizeof(flag), "%s", arg);
        }
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "--version") == 0)
            return 1;
        if (takes_value(flag) && v == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", flag);
                return -1;
            }
            v = argv[++i];
        }

        if (strcmp(flag, "--target") == 0) {
            if (o->ntargets == TLSC_BENCH_MAX_TARGETS) {
                snprintf(err, errlen, "--target %s: at most %d targets", v, TLSC_BENCH_MAX_TARGETS);
                return -1;
            }
            if (tlsc_bench_target_parse(v, &o->targets[o->ntargets], err, errlen) != 0)
                return -1;
            o->ntargets++;
        } else if (strcmp(flag, "--balance") == 0) {
            if (strcmp(v, "rr") == 0)
                o->balance = TLSC_BENCH_BALANCE_RR;
            else if (strcmp(v, "random") == 0)
                o->balance = TLSC_BENCH_BALANCE_RANDOM;
            else {
                snprintf(err, errlen, "--balance %s: expected rr or random", v);
                return -1;
            }
        } else if (strcmp(flag, "--connections") == 0) {
            if (parse_u64(flag, v, 1, UINT64_C(1) << 40, &o->connections, err, errlen) != 0)
                return -1;
            have_connections = 1;
        } else if (strcmp(flag, "--duration") == 0) {
            char *end;
            double d;

            errno = 0;
            d = strtod(v, &end);
            if (*v == '\0' || *end != '\0' || errno != 0 || !(d > 0) || d > 86400 * 7) {
                snprintf(err, errlen, "--duration %s: expected seconds, more than 0 and at most a week", v);
                return -1;
            }
            o->duration_sec = d;
            have_duration = 1;
        } else if (strcmp(flag, "--concurrency") == 0) {
            if (parse_uint(flag, v, 1, 100000, &o->concurrency, err, errlen) != 0)
                return -1;
        } else if (strcmp(flag, "--tls") == 0) {
            if (strcmp(v, "1.2") == 0)
                o->tls_version = TLS1_2_VERSION;
            else if (strcmp(v, "1.3") == 0)
                o->tls_version = TLS1_3_VERSION;
            else {
                snprintf(err, errlen, "--tls %s: expected 1.2 or 1.3", v);
                return -1;
            }
        } else if (strcmp(flag, "--mode") == 0) {
            if (strcmp(v, "full") == 0)
                o->mode = TLSC_BENCH_MODE_FULL;
            else if (strcmp(v, "id") == 0)
                o->mode = TLSC_BENCH_MODE_ID;
            else if (strcmp(v, "ticket") == 0)
                o->mode = TLSC_BENCH_MODE_TICKET;
            else {
                snprintf(err, errlen, "--mode %s: expected full, id or ticket", v);
                return -1;
            }
        } else if (strcmp(flag, "--new-session-every") == 0) {
            if (parse_u64(flag, v, 1, UINT64_MAX, &o->new_session_every, err, errlen) != 0)
                return -1;
        } else if (strcmp(flag, "--sni") == 0) {
            if (*v == '\0' || strlen(v) > 255) {
                snprintf(err, errlen, "--sni %s: expected a host name of 1 to 255 characters", v);
                return -1;
            }
            o->sni = v;
        } else if (strcmp(flag, "--no-sni") == 0) {
            o->no_sni = 1;
        } else if (strcmp(flag, "--alpn") == 0) {
            unsigned char wire[1024];

            if (tlsc_bench_alpn_wire(v, wire, sizeof(wire)) < 0) {
                snprintf(err, errlen, "--alpn %s: expected comma-separated names of 1 to 255 bytes", v);
                return -1;
            }
            o->alpn = v;
        } else if (strcmp(flag, "--request") == 0) {
            o->request = 1;
            /* An optional path: the next argument when it starts with '/'. */
            if (v != NULL)
                o->request_path = v;
            else if (i + 1 < argc && argv[i + 1][0] == '/')
                o->request_path = argv[++i];
            if (o->request_path[0] != '/' || strpbrk(o->request_path, " \r\n") != NULL) {
                snprintf(err, errlen, "--request %s: expected a path starting with / and without spaces", o->request_path);
                return -1;
            }
        } else if (strcmp(flag, "--json") == 0) {
            o->json_file = v;
        } else if (strcmp(flag, "--csv") == 0) {
            o->csv_file = v;
        } else if (strcmp(flag, "--plot") == 0) {
            o->plot_file = v;
        } else if (strcmp(flag, "--redis") == 0) {
            o->redis_url = v;
        } else if (strcmp(flag, "--redis-prefix") == 0) {
            if (*v == '\0' || strpbrk(v, "*?[]\\ ") != NULL) {
                snprintf(err, errlen, "--redis-prefix %s: expected a non-empty prefix without glob characters or spaces", v);
                return -1;
            }
            o->redis_prefix = v;
        } else if (strcmp(flag, "--redis-settle") == 0) {
            if (parse_uint(flag, v, 0, 60000, &o->redis_settle_ms, err, errlen) != 0)
                return -1;
        } else if (strcmp(flag, "--cafile") == 0) {
            o->cafile = v;
        } else if (strcmp(flag, "--groups") == 0) {
            o->groups = v;
        } else if (strcmp(flag, "--ciphers") == 0) {
            o->ciphers = v;
        } else if (strcmp(flag, "--ciphersuites") == 0) {
            o->ciphersuites = v;
        } else if (strcmp(flag, "--timeout") == 0) {
            if (parse_uint(flag, v, 1, 3600000, &o->timeout_ms, err, errlen) != 0)
                return -1;
        } else if (strcmp(flag, "--ticket-wait") == 0) {
            if (parse_uint(flag, v, 0, 3600000, &o->ticket_wait_ms, err, errlen) != 0)
                return -1;
        } else if (strcmp(flag, "--seed") == 0) {
            if (parse_u64(flag, v, 0, UINT64_MAX, &o->seed, err, errlen) != 0)
                return -1;
            o->seed_set = 1;
        } else if (strcmp(flag, "--label") == 0) {
            o->label = v;
        } else if (strcmp(flag, "--quiet") == 0) {
            o->quiet = 1;
        } else {
            snprintf(err, errlen, "unknown flag %s (see --help)", flag);
            return -1;
        }
        if (v != NULL && !takes_value(flag) && strcmp(flag, "--request") != 0) {
            snprintf(err, errlen, "%s takes no value", flag);
            return -1;
        }
    }

    if (o->ntargets == 0) {
        snprintf(err, errlen, "at least one --target HOST:PORT is required");
        return -1;
    }
    if (have_connections && have_duration) {
        snprintf(err, errlen, "--connections and --duration exclude each other");
        return -1;
    }
    if (!have_connections && !have_duration)
        o->connections = 1000;
    if (o->sni != NULL && o->no_sni) {
        snprintf(err, errlen, "--sni %s and --no-sni exclude each other", o->sni);
        return -1;
    }
    if (o->mode == TLSC_BENCH_MODE_FULL && o->new_session_every != 0) {
        snprintf(err, errlen, "--new-session-every needs --mode id or ticket");
        return -1;
    }
    return 0;
}
