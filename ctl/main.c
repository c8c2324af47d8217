/*
 * tlscache-ctl: the operator's tool. Sessions in Redis (list, show, revoke), the cluster's
 * counters (stats), and the daemon's key window (keys status, keys rotate). It takes the
 * server's own --redis, --redis-prefix, --keyd and --keyd-secret-file and their TLSCACHE_*
 * variables, so it runs with the same environment file as the nodes.
 *
 * This file's one job: the flags (one table for parsing and --help), the subcommand words,
 * and which flags each subcommand takes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "ctl.h"
#include "opts.h"
#include "redis_url.h"

extern char **environ;

#define MAX_ARGS     256
#define NAME_MAX_LEN 64   /* --redis-prefix, --node: as the server */
#define PATH_MAX_LEN 4096 /* --keyd-secret-file, --redis */
#define SNI_MAX      255

/* ---------------------------------------------------------------- the flags */

/*
 * Values are copied: one that came from a variable lives in the parser's buffer, which is gone
 * when tlsc_opts_parse returns.
 */
static int own(const char *label, const char *value, char **out, char *err, size_t errlen)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return tlsc_opts_fail(err, errlen, label, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

static int set_text(const char *label, const char *value, size_t max, char **out, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (*value == '\0')
        return tlsc_opts_fail(err, errlen, label, "the value is empty");
    if (strlen(value) > max)
        return tlsc_opts_fail(err, errlen, label, "%s is longer than %zu bytes", tlsc_opts_quote(q, value), max);
    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return tlsc_opts_fail(err, errlen, label, "%s contains a control character", tlsc_opts_quote(q, value));
    return own(label, value, out, err, errlen);
}

/* A name as the server takes it: 1..64 of [A-Za-z0-9] and `extra`. */
static int set_name(const char *label, const char *value, const char *extra, char **out, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];
    size_t n = strlen(value);

    if (n == 0 || n > NAME_MAX_LEN)
        return tlsc_opts_fail(err, errlen, label, "%s must be 1..%d characters", tlsc_opts_quote(q, value), NAME_MAX_LEN);
    for (const char *p = value; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(extra, *p) != NULL))
            return tlsc_opts_fail(err, errlen, label, "%s: only letters, digits and \"%s\"", tlsc_opts_quote(q, value), extra);
    return own(label, value, out, err, errlen);
}

/*
 * Parsed when used; only looked at here for a password, which argv may not carry (every local
 * user sees argv in `ps`). The same URL in TLSCACHE_REDIS may, as the server's.
 */
static int apply_redis(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_redis_url_t u;
    char why[256];
    int has_password;

    if (strcmp(label, "--redis") == 0 && tlsc_redis_url_parse(value, &u, why, sizeof(why)) == 0) {
        has_password = u.password != NULL;
        tlsc_redis_url_free(&u);
        if (has_password)
            return tlsc_opts_fail(err, errlen, label, TLSC_REDIS_ARGV_PASSWORD ", or put the whole URL in TLSCACHE_REDIS");
    }
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->redis_url, err, errlen);
}

static int apply_redis_pass_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->redis_pass_file, err, errlen);
}

static int apply_redis_sentinel_pass_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->redis_sentinel_pass_file, err, errlen);
}

static int apply_redis_sentinel_user(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, 255, &((tlsc_ctl_t *)ctx)->redis_sentinel_user, err, errlen);
}

static int apply_redis_ca(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->redis_ca, err, errlen);
}

static int apply_redis_cert(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->redis_cert, err, errlen);
}

static int apply_redis_key(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->redis_key, err, errlen);
}

static int apply_redis_prefix(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_name(label, value, "._:-", &((tlsc_ctl_t *)ctx)->prefix, err, errlen);
}

static int apply_keyd(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], why[128];
    tlsc_addr_t a;

    if (tlsc_addr_parse_str(value, TLSC_ADDR_ALLOW_UNIX, &a, why, sizeof(why)) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s: %s", tlsc_opts_quote(q, value), why);
    return own(label, value, &((tlsc_ctl_t *)ctx)->keyd, err, errlen);
}

static int apply_keyd_secret_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_text(label, value, PATH_MAX_LEN, &((tlsc_ctl_t *)ctx)->keyd_secret_file, err, errlen);
}

static int apply_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, 600000, &((tlsc_ctl_t *)ctx)->timeout_ms, err, errlen);
}

/* A server name as clients send it: 1..255 of [A-Za-z0-9._-] (and '*' of a wildcard certificate's name). */
static int apply_sni(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (strlen(value) > SNI_MAX)
        return tlsc_opts_fail(err, errlen, label, "longer than %d bytes", SNI_MAX);
    for (const char *p = value; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._-*", *p) != NULL))
            return tlsc_opts_fail(err, errlen, label, "%s is not a server name", tlsc_opts_quote(q, value));
    return set_text(label, value, SNI_MAX, &((tlsc_ctl_t *)ctx)->sni, err, errlen);
}

static int apply_node(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return set_name(label, value, "._-", &((tlsc_ctl_t *)ctx)->node, err, errlen);
}

static int apply_limit(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    tlsc_ctl_t *c = ctx;

    c->have_limit = 1;
    return tlsc_opts_uint(label, value, 1, TLSC_CTL_LIMIT_MAX, &c->limit, err, errlen);
}

static int apply_all(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    ((tlsc_ctl_t *)ctx)->all = 1;
    return 0;
}

static int apply_dry_run(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    ((tlsc_ctl_t *)ctx)->dry_run = 1;
    return 0;
}

static const tlsc_opt_t OPTIONS[] = {
    {"redis", "URL", TLSC_OPT_DEFAULT, apply_redis, "redis://127.0.0.1:6379",
     "Redis, as the server's --redis: redis://[user@]host[:port][/db], rediss://... (TLS), unix:///path[?db=N], "
     "redis-sentinel://h1:26379,h2:26379/MASTER[/db] or redis-cluster://h1:p1,h2:p2 (every master is walked); a password "
     "only from --redis-pass-file or the environment",
     0},
    {"redis-pass-file", "FILE", 0, apply_redis_pass_file, NULL,
     "file holding the Redis password, mode 0600 (else env TLSCACHE_REDIS_PASS; never on the command line)", 0},
    {"redis-sentinel-pass-file", "FILE", 0, apply_redis_sentinel_pass_file, NULL,
     "redis-sentinel://: file holding the sentinels' own password (their requirepass), mode 0600 (else env "
     "TLSCACHE_REDIS_SENTINEL_PASS)",
     0},
    {"redis-sentinel-user", "NAME", 0, apply_redis_sentinel_user, NULL, "redis-sentinel://: the sentinels' ACL user", 0},
    {"redis-ca", "FILE", 0, apply_redis_ca, NULL, "TLS to Redis: the CA that signed Redis's certificate (required for TLS)", 0},
    {"redis-cert", "FILE", 0, apply_redis_cert, NULL, "TLS to Redis: PEM client certificate chain, with --redis-key", 0},
    {"redis-key", "FILE", 0, apply_redis_key, NULL, "TLS to Redis: PEM key of --redis-cert", 0},
    {"redis-prefix", "P", TLSC_OPT_DEFAULT, apply_redis_prefix, "tlscache", "key prefix, as the server's --redis-prefix", 0},
    {"keyd", "ADDR", 0, apply_keyd, NULL, "tlscache-daemon, HOST:PORT or unix:PATH (keys status|rotate)", 0},
    {"keyd-secret-file", "FILE", 0, apply_keyd_secret_file, NULL, "the cluster secret (mode 0600) that authenticates to the daemon",
     0},
    {"timeout", "MS", TLSC_OPT_DEFAULT | TLSC_OPT_NOENV, apply_timeout, "5000", "connect and request timeout", 0},
    {"sni", "NAME", TLSC_OPT_NOENV, apply_sni, NULL, "sessions list|revoke: only sessions for this server name", 0},
    {"node", "N", TLSC_OPT_NOENV, apply_node, NULL, "sessions list|revoke: only sessions made by this node", 0},
    {"limit", "K", TLSC_OPT_NOENV, apply_limit, "100", "sessions list: show at most K sessions (1..1000000)", 0},
    {"all", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, apply_all, NULL, "sessions revoke: every session", 0},
    {"dry-run", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, apply_dry_run, NULL, "sessions revoke: count, delete nothing", 0},
    {"help", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "this text", 0},
    {"version", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print the version", 0},
};

static const tlsc_opt_refused_t REFUSED[] = {
    {"redis-pass", "passwords are not accepted on the command line; use --redis-pass-file or TLSCACHE_REDIS_PASS"},
    {NULL, NULL},
};

static const tlsc_opts_spec_t SPEC = {
    .prog = "tlscache-ctl",
    .version = TLSC_VERSION,
    .summary = "inspect and revoke tlscache sessions, read stats, query and rotate the key window",
    .man_section = 8,
    .see_also = "tlscache-server(8), tlscache-daemon(8); /usr/share/doc/tlscache/operations.md",
    .env_prefix = "TLSCACHE_",
    .usage = "usage: tlscache-ctl COMMAND [FLAGS]\n"
             "\n"
             "Commands:\n"
             "  sessions list [--sni NAME] [--node N] [--limit K]   session records in Redis (SCAN), readable fields and TTL\n"
             "  sessions show ID                                    one session record\n"
             "  sessions revoke ID | --sni NAME | --node N | --all [--dry-run]\n"
             "                                                      delete sessions, print the count, PUBLISH each on\n"
             "                                                      <prefix>:revoked (the key name, or * for --all)\n"
             "  stats                                               resumption rate, per node and cluster-wide\n"
             "  keys status                                         the daemon's key window (tags, never key bytes)\n"
             "  keys rotate                                         bring the next rotation forward to now + --lead\n"
             "\n"
             "Flags (--redis*, --keyd and --keyd-secret-file read the server's TLSCACHE_* variables):\n",
    .footer = "\n  env TLSCACHE_REDIS_PASS          the Redis password, when --redis-pass-file is not given\n"
              "  env TLSCACHE_REDIS_SENTINEL_PASS the sentinels' password, when --redis-sentinel-pass-file is not given\n",
    .opts = OPTIONS,
    .n_opts = sizeof(OPTIONS) / sizeof(OPTIONS[0]),
    .refused = REFUSED,
};

/* ---------------------------------------------------------------- subcommands */

typedef enum {
    CMD_LIST,
    CMD_SHOW,
    CMD_REVOKE,
    CMD_STATS,
    CMD_KEYS_STATUS,
    CMD_KEYS_ROTATE,
} cmd_t;

/* Does the flag at argv[i] take the next argument as its value? */
static int takes_value(const char *arg)
{
    if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') != NULL)
        return 0;
    for (size_t i = 0; i < SPEC.n_opts; i++)
        if (strcmp(arg + 2, OPTIONS[i].name) == 0)
            return OPTIONS[i].apply != NULL && !(OPTIONS[i].flags & TLSC_OPT_NOARG);
    return 0;
}

/* One line on stderr, `what` (the user's word, if any) quoted with control bytes escaped; exit code 2. */
static int usage(const char *msg, const char *what)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    fprintf(stderr, "tlscache-ctl: %s%s%s (see tlscache-ctl --help)\n", msg, what ? " " : "", what ? tlsc_opts_quote(q, what) : "");
    return TLSC_EXIT_USAGE;
}

/* Which flags a command takes beyond the connection ones; a stray one is a usage error, not ignored. */
static int check_flags(cmd_t cmd, const tlsc_ctl_t *c, size_t npos)
{
    int filters = c->sni != NULL || c->node != NULL;

    switch (cmd) {
    case CMD_LIST:
        if (npos != 2 || c->all || c->dry_run)
            return usage("sessions list takes --sni, --node and --limit only", NULL);
        return 0;
    case CMD_SHOW:
        if (npos != 3 || filters || c->have_limit || c->all || c->dry_run)
            return usage("sessions show takes one ID and no filter", NULL);
        return 0;
    case CMD_REVOKE:
        if (c->have_limit || npos > 3)
            return usage("sessions revoke takes one ID, or --sni/--node, or --all; and --dry-run", NULL);
        if ((npos == 3) + (filters != 0) + (c->all != 0) != 1)
            return usage("sessions revoke needs exactly one of: ID, --sni/--node, --all", NULL);
        return 0;
    default:
        if (npos != (cmd == CMD_STATS ? 1u : 2u) || filters || c->have_limit || c->all || c->dry_run)
            return usage("this command takes no filter or argument", NULL);
        if (cmd != CMD_STATS && (c->keyd == NULL || c->keyd_secret_file == NULL))
            return usage("keys commands need --keyd and --keyd-secret-file (or TLSCACHE_KEYD, TLSCACHE_KEYD_SECRET_FILE)", NULL);
        return 0;
    }
}

static int parse_cmd(const char **pos, size_t npos, cmd_t *cmd)
{
    if (npos == 0)
        return usage("no command", NULL);
    if (strcmp(pos[0], "sessions") == 0 && npos >= 2) {
        if (strcmp(pos[1], "list") == 0)
            return *cmd = CMD_LIST, 0;
        if (strcmp(pos[1], "show") == 0)
            return *cmd = CMD_SHOW, 0;
        if (strcmp(pos[1], "revoke") == 0)
            return *cmd = CMD_REVOKE, 0;
        return usage("unknown command: sessions", pos[1]);
    }
    if (strcmp(pos[0], "keys") == 0 && npos >= 2) {
        if (strcmp(pos[1], "status") == 0)
            return *cmd = CMD_KEYS_STATUS, 0;
        if (strcmp(pos[1], "rotate") == 0)
            return *cmd = CMD_KEYS_ROTATE, 0;
        return usage("unknown command: keys", pos[1]);
    }
    if (strcmp(pos[0], "stats") == 0)
        return *cmd = CMD_STATS, 0;
    return usage("unknown command:", pos[0]);
}

static void ctl_free(tlsc_ctl_t *c)
{
    free(c->redis_url);
    free(c->redis_pass_file);
    free(c->redis_sentinel_pass_file);
    free(c->redis_sentinel_user);
    free(c->redis_ca);
    free(c->redis_cert);
    free(c->redis_key);
    free(c->prefix);
    free(c->keyd);
    free(c->keyd_secret_file);
    free(c->sni);
    free(c->node);
}

int main(int argc, char **argv)
{
    char *flags[MAX_ARGS + 1];
    const char *pos[4];
    size_t nflags = 0, npos = 0;
    char err[512];
    tlsc_ctl_t c;
    cmd_t cmd = CMD_STATS;
    int rc;

    memset(&c, 0, sizeof(c));
    signal(SIGPIPE, SIG_IGN); /* a TLS write to a Redis that closed is an error to report, not a death (redis_sync.h) */
    if (argc > MAX_ARGS)
        return usage("too many arguments", NULL);
    /* Words are the command (and an ID); everything that starts with "-" goes to the flag parser with its value. */
    flags[nflags++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            flags[nflags++] = argv[i];
            if (takes_value(argv[i]) && i + 1 < argc)
                flags[nflags++] = argv[++i];
        } else if (npos < sizeof(pos) / sizeof(pos[0])) {
            pos[npos++] = argv[i];
        } else {
            return usage("unexpected argument", argv[i]);
        }
    }
    flags[nflags] = NULL;
    rc = tlsc_opts_parse(&SPEC, &c, (int)nflags, flags, environ, err, sizeof(err));
    if (rc == TLSC_OPTS_HELP) {
        ctl_free(&c);
        return TLSC_EXIT_OK;
    }
    if (rc != 0) {
        fprintf(stderr, "tlscache-ctl: %s\n", err);
        ctl_free(&c);
        return TLSC_EXIT_USAGE;
    }
    if (!c.have_limit)
        c.limit = TLSC_CTL_LIMIT_DEFAULT;
    c.redis_pass_env = getenv("TLSCACHE_REDIS_PASS");
    c.redis_sentinel_pass_env = getenv("TLSCACHE_REDIS_SENTINEL_PASS");
    if ((rc = parse_cmd(pos, npos, &cmd)) != 0 || (rc = check_flags(cmd, &c, npos)) != 0) {
        ctl_free(&c);
        return rc;
    }
    if (cmd == CMD_SHOW || (cmd == CMD_REVOKE && npos == 3))
        c.id = pos[2];
    switch (cmd) {
    case CMD_LIST:
        rc = tlsc_ctl_sessions_list(&c);
        break;
    case CMD_SHOW:
        rc = tlsc_ctl_sessions_show(&c);
        break;
    case CMD_REVOKE:
        rc = tlsc_ctl_sessions_revoke(&c);
        break;
    case CMD_STATS:
        rc = tlsc_ctl_stats(&c);
        break;
    case CMD_KEYS_STATUS:
    case CMD_KEYS_ROTATE:
        rc = tlsc_ctl_keys(&c, cmd == CMD_KEYS_ROTATE);
        break;
    }
    ctl_free(&c);
    return rc;
}
