/*
 * tlscache-daemon: makes ticket keys, rotates them, and pushes the window to every worker.
 * Keys live only in this process's memory (locked, not dumpable, wiped when dropped).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "addr.h"
#include "daemon.h"
#include "daemon_admin.h"
#include "keyproto.h"
#include "log.h"
#include "opts.h"

extern char **environ;

#define WEEK_SEC     (7u * 86400u) /* RFC 8446 §4.6.1: no ticket is used longer than 7 days */
#define MAX_PATH_LEN 4096

/* ---------------------------------------------------------------- the flags */

/* What the flags fill in; 0 means "not given" for the numbers whose default derives from --rotate. */
typedef struct {
    tlsc_daemon_options_t o;
    const char *secret_file;
    const char *admin; /* NULL: off */
    tlsc_log_level_t level;
    tlsc_log_format_t format;
    int have_grace;
    /* Copies of the text values: a value from the environment lives only during the parse. */
    char listen_buf[MAX_PATH_LEN + 1], unix_buf[MAX_PATH_LEN + 1], secret_buf[MAX_PATH_LEN + 1], node_buf[65];
    char admin_buf[MAX_PATH_LEN + 1];
} cli_t;

/* Keeps a checked value (at most MAX_PATH_LEN bytes) in `buf`, which `*out` then points to. */
static void keep(const char *value, char *buf, size_t buflen, const char **out)
{
    snprintf(buf, buflen, "%s", value);
    *out = buf;
}

static int set_text(const char *label, const char *value, char *buf, size_t buflen, const char **out, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (*value == '\0')
        return tlsc_opts_fail(err, errlen, label, "the value is empty");
    if (strlen(value) > MAX_PATH_LEN)
        return tlsc_opts_fail(err, errlen, label, "%s is longer than %d bytes", tlsc_opts_quote(q, value), MAX_PATH_LEN);
    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return tlsc_opts_fail(err, errlen, label, "%s contains a control character", tlsc_opts_quote(q, value));
    keep(value, buf, buflen, out);
    return 0;
}

static int apply_listen(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], why[128];
    tlsc_addr_t a;

    if (tlsc_addr_parse_str(value, TLSC_ADDR_ALLOW_ANY, &a, why, sizeof(why)) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s: %s", tlsc_opts_quote(q, value), why);
    if (strlen(value) > MAX_PATH_LEN)
        return tlsc_opts_fail(err, errlen, label, "%s is longer than %d bytes", tlsc_opts_quote(q, value), MAX_PATH_LEN);
    keep(value, ((cli_t *)ctx)->listen_buf, sizeof(((cli_t *)ctx)->listen_buf), &((cli_t *)ctx)->o.listen);
    return 0;
}

static int apply_unix(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];
    cli_t *c = ctx;

    if (strlen(value) > TLSC_ADDR_PATH_MAX)
        return tlsc_opts_fail(err, errlen, label, "%s is longer than %d bytes", tlsc_opts_quote(q, value), TLSC_ADDR_PATH_MAX);
    return set_text(label, value, c->unix_buf, sizeof(c->unix_buf), &c->o.unix_path, err, errlen);
}

static int apply_secret_file(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    cli_t *c = ctx;

    return set_text(label, value, c->secret_buf, sizeof(c->secret_buf), &c->secret_file, err, errlen);
}

static int apply_rotate(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, WEEK_SEC, &((cli_t *)ctx)->o.rotate_sec, err, errlen);
}

static int apply_lifetime(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, WEEK_SEC, &((cli_t *)ctx)->o.ticket_lifetime_sec, err, errlen);
}

static int apply_lead(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, WEEK_SEC, &((cli_t *)ctx)->o.lead_sec, err, errlen);
}

static int apply_grace(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    ((cli_t *)ctx)->have_grace = 1;
    return tlsc_opts_uint(label, value, 0, 600000, &((cli_t *)ctx)->o.grace_ms, err, errlen);
}

/* The budget of links that have not authenticated yet (docs/keys.md, "Unauthenticated connections"). */
#define PREAUTH_MAX_LIMIT     4096
#define PREAUTH_TIMEOUT_LIMIT 60

static int apply_preauth_max(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, PREAUTH_MAX_LIMIT, &((cli_t *)ctx)->o.max_pending, err, errlen);
}

static int apply_preauth_per_addr(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    return tlsc_opts_uint(label, value, 1, PREAUTH_MAX_LIMIT, &((cli_t *)ctx)->o.max_pending_per_addr, err, errlen);
}

static int apply_preauth_timeout(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    unsigned sec;

    if (tlsc_opts_uint(label, value, 1, PREAUTH_TIMEOUT_LIMIT, &sec, err, errlen) != 0)
        return -1;
    ((cli_t *)ctx)->o.handshake_timeout_ms = sec * 1000;
    return 0;
}

/* HELLO names: [A-Za-z0-9._:-], 1..64 bytes. */
static int apply_node(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];
    size_t n = strlen(value);

    if (n == 0 || n > 64)
        return tlsc_opts_fail(err, errlen, label, "%s must be 1..64 bytes", tlsc_opts_quote(q, value));
    for (const char *p = value; *p != '\0'; p++)
        if (!(*p == '.' || *p == '_' || *p == ':' || *p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return tlsc_opts_fail(err, errlen, label, "%s may only contain A-Z a-z 0-9 and \"._:-\"", tlsc_opts_quote(q, value));
    keep(value, ((cli_t *)ctx)->node_buf, sizeof(((cli_t *)ctx)->node_buf), &((cli_t *)ctx)->o.node);
    return 0;
}

static int apply_log_level(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (tlsc_log_parse_level(value, &((cli_t *)ctx)->level) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not error, warn, info or debug", tlsc_opts_quote(q, value));
    return 0;
}

static int apply_log_format(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (tlsc_log_parse_format(value, &((cli_t *)ctx)->format) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not text or json", tlsc_opts_quote(q, value));
    return 0;
}

/* The plain-HTTP admin endpoint: HOST:PORT, or "off". */
static int apply_admin(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], why[128];
    tlsc_addr_t a;

    ((cli_t *)ctx)->admin = NULL;
    if (strcmp(value, "off") == 0)
        return 0;
    if (tlsc_addr_parse_str(value, TLSC_ADDR_ALLOW_ANY, &a, why, sizeof(why)) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s: %s (or \"off\")", tlsc_opts_quote(q, value), why);
    if (strlen(value) > MAX_PATH_LEN)
        return tlsc_opts_fail(err, errlen, label, "%s is longer than %d bytes", tlsc_opts_quote(q, value), MAX_PATH_LEN);
    keep(value, ((cli_t *)ctx)->admin_buf, sizeof(((cli_t *)ctx)->admin_buf), &((cli_t *)ctx)->admin);
    return 0;
}

static const tlsc_opt_t options[] = {
    {"listen", "HOST:PORT", 0, apply_listen, NULL, "TCP address for workers (TLS 1.3, cluster PSK); [::]:9443 for IPv6", 0},
    {"unix", "PATH", 0, apply_unix, NULL, "Unix socket for workers on this host (same TLS); one of the two is needed", 0},
    {"secret-file", "FILE", 0, apply_secret_file, NULL,
     "cluster secret: >= 32 random bytes as hex (head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'); mode 0600 (required)", 0},
    {"rotate", "SEC", TLSC_OPT_DEFAULT, apply_rotate, "3600", "a key encrypts new tickets for SEC seconds, 1..604800", 0},
    {"ticket-lifetime", "SEC", 0, apply_lifetime, "--rotate", "a retired key still opens tickets for SEC seconds", 0},
    {"lead", "SEC", 0, apply_lead, "--rotate / 2", "a next key is pushed at least SEC before it encrypts, 1..--rotate", 0},
    {"grace-ms", "MS", TLSC_OPT_DEFAULT, apply_grace, "2000", "after a start, wait MS for workers to report their keys, 0..600000",
     0},
    {"preauth-max", "N", TLSC_OPT_DEFAULT, apply_preauth_max, "64",
     "links still authenticating (TLS handshake + HELLO) at once, 1..4096; beyond it one makes room", 0},
    {"preauth-per-addr", "N", TLSC_OPT_DEFAULT, apply_preauth_per_addr, "16",
     "... of them from one source address (an IPv6 /64 counts as one; all Unix peers are one), 1..--preauth-max", 0},
    {"preauth-timeout", "SEC", TLSC_OPT_DEFAULT, apply_preauth_timeout, "2", "a link must authenticate within SEC seconds, 1..60",
     0},
    {"node", "NAME", 0, apply_node, "the host name", "name in logs and HELLO ([A-Za-z0-9._:-], <= 64)", 0},
    {"log-level", "LEVEL", TLSC_OPT_DEFAULT, apply_log_level, "info", "error, warn, info or debug", 0},
    {"log-format", "FORMAT", TLSC_OPT_DEFAULT, apply_log_format, "text",
     "text, or json (one object per line: ts, level, tag, pid, worker, msg)", 0},
    {"admin", "ADDR", TLSC_OPT_DEFAULT, apply_admin, "127.0.0.1:9721",
     "plain-HTTP admin endpoint (/metrics, /healthz, /readyz), HOST:PORT or off", 0},
    {"help", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print this help and exit", 0},
    {"version", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print the version and exit", 0},
};

static const tlsc_opts_spec_t spec = {
    .prog = "tlscache-daemon",
    .version = TLSC_VERSION,
    .summary = "ticket-key rotation daemon for tlscache servers",
    .man_section = 8,
    .see_also = "tlscache-server(8), tlscache-bench(1); /usr/share/doc/tlscache/keys.md",
    .env_prefix = "TLSCACHE_DAEMON_",
    .usage = "usage: tlscache-daemon --secret-file FILE (--listen HOST:PORT | --unix PATH) [options]\n\n"
             "Every flag can also be set with its TLSCACHE_DAEMON_* variable; a flag on the command line\n"
             "wins; an empty variable counts as unset.\n\n",
    .footer = "\nWindow rules (docs/keys.md): --lead <= --rotate; --ticket-lifetime <= 61 x --rotate (the\n"
              "window holds 64 keys); --rotate + --ticket-lifetime <= 604800 (7 days, RFC 8446).\n",
    .opts = options,
    .n_opts = sizeof(options) / sizeof(options[0]),
    .refused = NULL,
};

/*
 * Fills the derived defaults and checks the window against the rules of docs/keys.md, each
 * refusal one line naming the flags. The daemon re-checks what it depends on; these are the
 * operator's rules, stated where the operator reads them.
 */
static int check_window(tlsc_daemon_options_t *o, char *err, size_t errlen)
{
    if (o->ticket_lifetime_sec == 0)
        o->ticket_lifetime_sec = o->rotate_sec;
    if (o->lead_sec == 0)
        o->lead_sec = o->rotate_sec / 2 ? o->rotate_sec / 2 : 1;
    /* A next key is pushed when its predecessor starts to encrypt, rotate seconds ahead: a
     * longer lead would stretch every key's turn to the lead and make --rotate a lie. */
    if (o->lead_sec > o->rotate_sec)
        return tlsc_opts_fail(err, errlen, "--lead", "%u is larger than --rotate %u; a key is pushed at most one rotation ahead",
                              o->lead_sec, o->rotate_sec);
    /* The window holds every key still decrypting plus one current and one next. */
    if ((uint64_t)o->ticket_lifetime_sec > (uint64_t)(TLSC_KEYPROTO_MAX_KEYS - 3) * o->rotate_sec)
        return tlsc_opts_fail(err, errlen, "--ticket-lifetime", "%u is more than %u x --rotate %u (the window holds %u keys)",
                              o->ticket_lifetime_sec, TLSC_KEYPROTO_MAX_KEYS - 3, o->rotate_sec, TLSC_KEYPROTO_MAX_KEYS);
    /* A ticket opens up to rotate + lifetime after it was made. */
    if ((uint64_t)o->rotate_sec + o->ticket_lifetime_sec > WEEK_SEC)
        return tlsc_opts_fail(err, errlen, "--ticket-lifetime", "%u plus --rotate %u is more than 604800 s (7 days, RFC 8446)",
                              o->ticket_lifetime_sec, o->rotate_sec);
    return 0;
}

/* Parses and checks everything that needs no file or socket. */
static int parse_cli(cli_t *c, int argc, char **argv, char *err, size_t errlen)
{
    int rc;

    memset(c, 0, sizeof(*c)); /* the literal defaults come from the table */
    if ((rc = tlsc_opts_parse(&spec, c, argc, argv, environ, err, errlen)) != 0)
        return rc;
    if (c->secret_file == NULL)
        return tlsc_opts_fail(err, errlen, "--secret-file", "is required (see --help)");
    if (c->o.listen == NULL && c->o.unix_path == NULL)
        return tlsc_opts_fail(err, errlen, "--listen or --unix", "give at least one (see --help)");
    if (c->o.max_pending_per_addr > c->o.max_pending)
        return tlsc_opts_fail(err, errlen, "--preauth-per-addr", "%u is more than --preauth-max %u", c->o.max_pending_per_addr,
                              c->o.max_pending);
    return check_window(&c->o, err, errlen);
}

/* Keeps keys out of core dumps and away from ptrace by other users. */
static void harden_process(void)
{
    struct rlimit no_core = {0, 0};

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        tlsc_log_warn("prctl(PR_SET_DUMPABLE, 0) failed");
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        tlsc_log_warn("setrlimit(RLIMIT_CORE, 0) failed");
}

static tlsc_daemon_t *daemon_;
static tlsc_daemon_admin_t *admin_;
static uv_signal_t sig_term, sig_int, sig_hup;

static void on_signal(uv_signal_t *s, int signum)
{
    tlsc_log_info("signal %d: shutting down", signum);
    tlsc_daemon_admin_close(admin_);
    tlsc_daemon_close(daemon_);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
}

/* `systemctl reload` sends SIGHUP (the units' ExecReload): its default action would kill the
 * daemon and with it the key window. Nothing is reloadable: flags change with a restart. */
static void on_hup(uv_signal_t *s, int signum)
{
    tlsc_log_info("SIGHUP: nothing to reload (flags and the secret change with a restart)");
}

int main(int argc, char **argv)
{
    cli_t c;
    tlsc_daemon_options_t *o = &c.o;
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    char err[1024], host[65] = "daemon", tag[128];
    int rc;

    harden_process();
    if ((rc = parse_cli(&c, argc, argv, err, sizeof(err))) != 0) {
        if (rc < 0)
            fprintf(stderr, "tlscache-daemon: %s\n", err);
        return rc < 0 ? TLSC_EXIT_USAGE : TLSC_EXIT_OK;
    }
    if (o->node == NULL) {
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "daemon");
        /* HELLO names allow [A-Za-z0-9._:-]: map anything else to '-'. */
        for (char *p = host; *p; p++)
            if (!(*p == '.' || *p == '_' || *p == ':' || *p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z')))
                *p = '-';
        o->node = host;
    }
    snprintf(tag, sizeof(tag), "tlscache-daemon[%s]", o->node);
    tlsc_log_set_tag(tag);
    tlsc_log_set_worker("daemon");
    tlsc_log_set_level(c.level);
    tlsc_log_set_format(c.format);
    if (tlsc_keyproto_psk_load(c.secret_file, psk, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-daemon: --secret-file: %s\n", err);
        return TLSC_EXIT_FAILURE;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    rc = tlsc_daemon_new(loop, o, psk, &daemon_, err, sizeof(err));
    OPENSSL_cleanse(psk, sizeof(psk));
    if (rc != 0) {
        fprintf(stderr, "tlscache-daemon: %s\n", err);
        return TLSC_EXIT_FAILURE;
    }
    if (c.admin != NULL && (admin_ = tlsc_daemon_admin_start(loop, c.admin, daemon_, err, sizeof(err))) == NULL) {
        fprintf(stderr, "tlscache-daemon: %s\n", err);
        tlsc_daemon_close(daemon_);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
        return TLSC_EXIT_FAILURE;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_hup, on_hup, SIGHUP);
    tlsc_log_info("listening%s%s%s%s; rotate %us, ticket lifetime %us, lead %us, grace %ums; unauthenticated links: at most "
                  "%u, %u per address, %us each",
                  o->listen ? " on " : "", o->listen ? o->listen : "", o->unix_path ? " and unix:" : "",
                  o->unix_path ? o->unix_path : "", o->rotate_sec, o->ticket_lifetime_sec, o->lead_sec, o->grace_ms, o->max_pending,
                  o->max_pending_per_addr, o->handshake_timeout_ms / 1000);
    if (c.admin != NULL)
        tlsc_log_info("admin endpoint on http://%s (/metrics, /healthz, /readyz)", c.admin);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return TLSC_EXIT_OK;
}
