#include <openssl/tls1.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "test.h"

/*
 * tlsc_config_parse against every flag, both spellings, env variables, and hostile values.
 * Every error must be one line that starts with the flag it is about.
 */

static tlsc_config_t cfg;
static char err[512];

/* Parses argv (a NULL-terminated list after the program name) with `env` as the environment. */
static int parse_v(const char **env, const char *first, va_list ap)
{
    const char *argv[160];
    int argc = 0;

    argv[argc++] = "tlscache-server";
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        ASSERT(argc < 159);
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    tlsc_config_free(&cfg);
    memset(err, 'X', sizeof(err));
    return tlsc_config_parse(&cfg, argc, (char **)argv, (char **)env, err, sizeof(err));
}

static int parse_env(const char **env, const char *first, ...)
{
    va_list ap;
    int rc;

    va_start(ap, first);
    rc = parse_v(env, first, ap);
    va_end(ap);
    return rc;
}

static int parse(const char *first, ...)
{
    static const char *no_env[] = {NULL};
    va_list ap;
    int rc;

    va_start(ap, first);
    rc = parse_v(no_env, first, ap);
    va_end(ap);
    return rc;
}

/* A certificate, and the secret that seals session records (required with the cache). */
#define CERT "--cert", "c.pem", "--key", "k.pem", "--seal-secret-file", "seal.secret"

/* The error is one line, starts with `prefix`, and contains `part` (when not NULL). */
static void expect_error(int rc, const char *prefix, const char *part)
{
    if (rc >= 0 || strncmp(err, prefix, strlen(prefix)) != 0 || (part != NULL && strstr(err, part) == NULL) ||
        strchr(err, '\n') != NULL) {
        fprintf(stderr, "\n    rc=%d, error \"%s\", wanted prefix \"%s\" and \"%s\"\n", rc, err, prefix, part ? part : "");
        ASSERT(0);
    }
}

TEST(records_are_sealed_unless_plain_is_asked_for_in_as_many_words)
{
    expect_error(parse("--cert", "c.pem", "--key", "k.pem", NULL), "--seal-secret-file: ", "--insecure-plain-records");
    expect_error(parse("--cert", "c.pem", "--key", "k.pem", "--resumption", "both", NULL), "--resumption: ", "--keyd");
    ASSERT_EQ(parse("--cert", "c.pem", "--key", "k.pem", "--insecure-plain-records", NULL), 0);
    ASSERT_EQ(cfg.insecure_plain_records, 1);
    ASSERT_EQ(parse("--cert", "c.pem", "--key", "k.pem", "--keyd", "127.0.0.1:9", "--keyd-secret-file", "k.secret", NULL), 0);
    ASSERT_EQ(cfg.seal_secret_file == NULL, 1); /* the link's secret serves */
    expect_error(parse(CERT, "--insecure-plain-records", NULL), "--insecure-plain-records: ", "--seal-secret-file");
    ASSERT_EQ(parse("--cert", "c.pem", "--key", "k.pem", "--resumption", "tickets", "--keyd", "127.0.0.1:9", "--keyd-secret-file",
                    "k.secret", NULL),
              0); /* no records stored: nothing to seal, but the link's secret is there anyway */
}

TEST(check_and_its_alias_and_user)
{
    ASSERT_EQ(parse(CERT, "--check", NULL), 0);
    ASSERT_EQ(cfg.check, 1);
    ASSERT_EQ(parse(CERT, "-t", NULL), 0);
    ASSERT_EQ(cfg.check, 1);
    expect_error(parse(CERT, "-x", NULL), "\"-x\": ", "unexpected argument");
    ASSERT_EQ(parse(CERT, "--user", "root", NULL), 0);
    ASSERT_EQ(cfg.run_uid, 0);
    ASSERT_STREQ(cfg.user, "root");
    ASSERT_EQ(parse(CERT, "--user", "root:root", NULL), 0);
    ASSERT_EQ(cfg.run_gid, 0);
    expect_error(parse(CERT, "--user", "no-such-user-here", NULL), "--user: ", "no such user");
    expect_error(parse(CERT, "--user", "root:no-such-group", NULL), "--user: ", "no such group");
    expect_error(parse(CERT, "--user", "root:", NULL), "--user: ", "NAME:GROUP");
}

TEST(defaults_with_only_a_certificate)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    ASSERT_EQ(parse(CERT, NULL), 0);
    ASSERT_EQ(cfg.n_listen, 1);
    ASSERT_STREQ(cfg.listen[0].host, "0.0.0.0");
    ASSERT_STREQ(cfg.listen[0].port, "8443");
    ASSERT_EQ(cfg.workers, cores < 1 ? 1 : cores > 256 ? 256 : cores);
    ASSERT(cfg.node != NULL && cfg.node[0] != '\0' && strlen(cfg.node) <= 64);
    ASSERT_STREQ(cfg.cluster, "tlscache");
    ASSERT_EQ(cfg.n_certs, 1);
    ASSERT_STREQ(cfg.certs[0].cert_file, "c.pem");
    ASSERT_STREQ(cfg.certs[0].key_file, "k.pem");
    ASSERT(cfg.pfx_file == NULL && cfg.pfx_pass_file == NULL && cfg.pfx_pass == NULL);
    ASSERT(cfg.alpn == NULL && cfg.groups == NULL && cfg.dhparam_file == NULL);
    ASSERT(cfg.ciphers == NULL && cfg.ciphersuites == NULL);
    ASSERT_EQ(cfg.min_tls, TLS1_2_VERSION);
    ASSERT_EQ(cfg.max_tls, TLS1_3_VERSION);
    ASSERT_EQ(cfg.session_timeout, 300);
    ASSERT_STREQ(cfg.redis_url_str, "redis://127.0.0.1:6379");
    ASSERT_STREQ(cfg.redis.host, "127.0.0.1");
    ASSERT_EQ(cfg.redis.port, 6379);
    ASSERT_STREQ(cfg.redis_prefix, "tlscache");
    ASSERT_EQ(cfg.lookup_timeout_ms, 10);
    ASSERT_EQ(cfg.store_timeout_ms, 50);
    ASSERT_EQ(cfg.resumption, TLSC_RESUME_CACHE);
    ASSERT_EQ(cfg.log_level, TLSC_LOG_INFO);
    ASSERT_EQ(cfg.drain_timeout_sec, 10);
    ASSERT(cfg.keyd == NULL && cfg.keyd_secret_file == NULL);
}

static void check_every_flag_set(void)
{
    ASSERT_EQ(cfg.n_listen, 2);
    ASSERT_STREQ(cfg.listen[0].host, "127.0.0.1");
    ASSERT_STREQ(cfg.listen[0].port, "9443");
    ASSERT_STREQ(cfg.listen[1].host, "::1");
    ASSERT_STREQ(cfg.listen[1].port, "9444");
    ASSERT_EQ(cfg.workers, 3);
    ASSERT_STREQ(cfg.node, "node-a.1_x");
    ASSERT_STREQ(cfg.cluster, "blue");
    ASSERT_EQ(cfg.n_certs, 2);
    ASSERT_STREQ(cfg.certs[0].cert_file, "a.pem");
    ASSERT_STREQ(cfg.certs[0].key_file, "a.key");
    ASSERT_STREQ(cfg.certs[1].cert_file, "b.pem");
    ASSERT_STREQ(cfg.certs[1].key_file, "b.key");
    ASSERT_STREQ(cfg.pfx_file, "p.pfx");
    ASSERT_STREQ(cfg.pfx_pass_file, "p.pass");
    ASSERT_STREQ(cfg.alpn, "h2,http/1.1");
    ASSERT_STREQ(cfg.groups, "X25519:P-256");
    ASSERT_STREQ(cfg.dhparam_file, "dh.pem");
    ASSERT_EQ(cfg.min_tls, TLS1_3_VERSION);
    ASSERT_EQ(cfg.max_tls, TLS1_3_VERSION);
    ASSERT_STREQ(cfg.ciphers, "ECDHE+AESGCM");
    ASSERT_STREQ(cfg.ciphersuites, "TLS_AES_128_GCM_SHA256");
    ASSERT_EQ(cfg.session_timeout, 86400);
    ASSERT_STREQ(cfg.redis.host, "redis.example");
    ASSERT_EQ(cfg.redis.port, 7000);
    ASSERT_EQ(cfg.redis.db, 2);
    ASSERT_STREQ(cfg.redis_prefix, "tc:blue");
    ASSERT_EQ(cfg.lookup_timeout_ms, 10000);
    ASSERT_EQ(cfg.store_timeout_ms, 1);
    ASSERT_EQ(cfg.resumption, TLSC_RESUME_BOTH);
    ASSERT_EQ(cfg.log_level, TLSC_LOG_DEBUG);
    ASSERT_EQ(cfg.drain_timeout_sec, 0);
    ASSERT_STREQ(cfg.keyd, "unix:/run/tlscache/keyd.sock");
    ASSERT_STREQ(cfg.keyd_secret_file, "keyd.secret");
}

TEST(every_flag_with_separate_value)
{
    int rc = parse("--listen", "127.0.0.1:9443", "--listen", "[::1]:9444", "--workers", "3", "--node", "node-a.1_x", "--cluster",
                   "blue", "--cert", "a.pem", "--key", "a.key", "--cert", "b.pem", "--key", "b.key", "--pfx", "p.pfx",
                   "--pfx-pass-file", "p.pass", "--alpn", "h2,http/1.1", "--groups", "X25519:P-256", "--dhparam", "dh.pem",
                   "--min-tls", "1.3", "--max-tls", "1.3", "--ciphers", "ECDHE+AESGCM", "--ciphersuites", "TLS_AES_128_GCM_SHA256",
                   "--session-timeout", "86400", "--redis", "redis://redis.example:7000/2", "--redis-prefix", "tc:blue",
                   "--lookup-timeout", "10000", "--store-timeout", "1", "--resumption", "both", "--log-level", "debug",
                   "--drain-timeout", "0", "--keyd", "unix:/run/tlscache/keyd.sock", "--keyd-secret-file", "keyd.secret", NULL);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    ASSERT_EQ(rc, 0);
    check_every_flag_set();
}

TEST(every_flag_with_equals_value)
{
    int rc = parse("--listen=127.0.0.1:9443", "--listen=[::1]:9444", "--workers=3", "--node=node-a.1_x", "--cluster=blue",
                   "--cert=a.pem", "--cert=b.pem", "--key=a.key", "--key=b.key", "--pfx=p.pfx", "--pfx-pass-file=p.pass",
                   "--alpn=h2,http/1.1", "--groups=X25519:P-256", "--dhparam=dh.pem", "--min-tls=1.3", "--max-tls=1.3",
                   "--ciphers=ECDHE+AESGCM", "--ciphersuites=TLS_AES_128_GCM_SHA256", "--session-timeout=86400",
                   "--redis=redis://redis.example:7000/2", "--redis-prefix=tc:blue", "--lookup-timeout=10000", "--store-timeout=1",
                   "--resumption=both", "--log-level=debug", "--drain-timeout=0", "--keyd=unix:/run/tlscache/keyd.sock",
                   "--keyd-secret-file=keyd.secret", NULL);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    ASSERT_EQ(rc, 0);
    check_every_flag_set();
}

TEST(every_flag_from_env)
{
    const char *env[] = {"PATH=/usr/bin",
                         "TLSCACHE_LISTEN=127.0.0.1:9443,[::1]:9444",
                         "TLSCACHE_WORKERS=3",
                         "TLSCACHE_NODE=node-a.1_x",
                         "TLSCACHE_CLUSTER=blue",
                         "TLSCACHE_CERT=a.pem,b.pem",
                         "TLSCACHE_KEY=a.key,b.key",
                         "TLSCACHE_PFX=p.pfx",
                         "TLSCACHE_PFX_PASS_FILE=p.pass",
                         "TLSCACHE_ALPN=h2,http/1.1",
                         "TLSCACHE_GROUPS=X25519:P-256",
                         "TLSCACHE_DHPARAM=dh.pem",
                         "TLSCACHE_MIN_TLS=1.3",
                         "TLSCACHE_MAX_TLS=1.3",
                         "TLSCACHE_CIPHERS=ECDHE+AESGCM",
                         "TLSCACHE_CIPHERSUITES=TLS_AES_128_GCM_SHA256",
                         "TLSCACHE_SESSION_TIMEOUT=86400",
                         "TLSCACHE_REDIS=redis://redis.example:7000/2",
                         "TLSCACHE_REDIS_PREFIX=tc:blue",
                         "TLSCACHE_LOOKUP_TIMEOUT=10000",
                         "TLSCACHE_STORE_TIMEOUT=1",
                         "TLSCACHE_RESUMPTION=both",
                         "TLSCACHE_LOG_LEVEL=debug",
                         "TLSCACHE_DRAIN_TIMEOUT=0",
                         "TLSCACHE_KEYD=unix:/run/tlscache/keyd.sock",
                         "TLSCACHE_KEYD_SECRET_FILE=keyd.secret",
                         "TLSCACHE_SOMETHING_ELSE=ignored",
                         NULL};
    int rc = parse_env(env, NULL);

    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    ASSERT_EQ(rc, 0);
    check_every_flag_set();
}

TEST(flag_wins_over_env)
{
    const char *env[] = {"TLSCACHE_SESSION_TIMEOUT=100",
                         "TLSCACHE_LISTEN=10.0.0.1:1,10.0.0.2:2",
                         "TLSCACHE_CERT=e1.pem,e2.pem",
                         "TLSCACHE_KEY=e1.key,e2.key",
                         "TLSCACHE_NODE=from-env",
                         "TLSCACHE_SEAL_SECRET_FILE=s",
                         NULL};

    ASSERT_EQ(parse_env(env, "--session-timeout", "200", "--listen", "*:8000", "--cert", "f.pem", "--key", "f.key",
                        "--seal-secret-file", "s", NULL),
              0);
    ASSERT_EQ(cfg.session_timeout, 200);
    ASSERT_EQ(cfg.n_listen, 1);
    ASSERT_STREQ(cfg.listen[0].host, ""); /* any: "*" and "" mean the same */
    ASSERT_STREQ(cfg.listen[0].port, "8000");
    ASSERT_EQ(cfg.n_certs, 1); /* the env pairs are not mixed in */
    ASSERT_STREQ(cfg.certs[0].cert_file, "f.pem");
    ASSERT_STREQ(cfg.node, "from-env"); /* not given as a flag: env still counts */

    /* Without flags, the env values are used. */
    ASSERT_EQ(parse_env(env, NULL), 0);
    ASSERT_EQ(cfg.session_timeout, 100);
    ASSERT_EQ(cfg.n_listen, 2);
    ASSERT_STREQ(cfg.listen[1].host, "10.0.0.2");
    ASSERT_EQ(cfg.n_certs, 2);
    ASSERT_STREQ(cfg.certs[1].key_file, "e2.key");
}

TEST(empty_env_counts_as_unset)
{
    const char *env[] = {"TLSCACHE_SESSION_TIMEOUT=", "TLSCACHE_LISTEN=", "TLSCACHE_NODE=", NULL};

    ASSERT_EQ(parse_env(env, CERT, NULL), 0);
    ASSERT_EQ(cfg.session_timeout, 300);
    ASSERT_STREQ(cfg.listen[0].port, "8443");
}

TEST(env_errors_name_flag_and_variable)
{
    const char *env1[] = {"TLSCACHE_SESSION_TIMEOUT=abc", NULL};
    const char *env2[] = {"TLSCACHE_LISTEN=127.0.0.1:1,,127.0.0.1:2", NULL};
    const char *env3[] = {"TLSCACHE_CERT=a.pem,b.pem", "TLSCACHE_KEY=a.key", NULL};

    expect_error(parse_env(env1, CERT, NULL), "--session-timeout (from TLSCACHE_SESSION_TIMEOUT): ", "\"abc\"");
    expect_error(parse_env(env2, CERT, NULL), "--listen (from TLSCACHE_LISTEN): ", NULL);
    expect_error(parse_env(env3, NULL), "--cert: ", "\"b.pem\" has no matching --key");
}

TEST(listen_forms)
{
    ASSERT_EQ(parse(CERT, "--listen", "[::1]:443", "--listen", "*:8443", "--listen", ":9000", "--listen", "localhost:1", "--listen",
                    "0.0.0.0:00080", NULL),
              0);
    ASSERT_EQ(cfg.n_listen, 5);
    ASSERT_STREQ(cfg.listen[0].host, "::1");
    ASSERT_STREQ(cfg.listen[0].port, "443");
    ASSERT_STREQ(cfg.listen[1].host, "");
    ASSERT_STREQ(cfg.listen[2].host, "");
    ASSERT_STREQ(cfg.listen[2].port, "9000");
    ASSERT_STREQ(cfg.listen[3].host, "localhost");
    ASSERT_STREQ(cfg.listen[4].port, "80"); /* canonical decimal */
}

typedef struct {
    const char *flag, *value, *part;
} bad_t;

TEST(bad_values_name_the_flag_and_value)
{
    char long_name[80], long_alpn[300], overlong[5000];
    static bad_t bad[64];
    size_t n = 0;

    memset(long_name, 'n', 65);
    long_name[65] = '\0';
    memset(long_alpn, 'p', 259);
    memcpy(long_alpn, "h2,", 3);
    long_alpn[259] = '\0';
    memset(overlong, 'c', sizeof(overlong) - 1);
    overlong[sizeof(overlong) - 1] = '\0';

#define BAD(f, v, p) bad[n++] = (bad_t){f, v, p}
    BAD("--session-timeout", "abc", "\"abc\" is not a number in 1..86400");
    BAD("--session-timeout", "0", "\"0\"");
    BAD("--session-timeout", "86401", "\"86401\"");
    BAD("--session-timeout", "10x", "\"10x\"");
    BAD("--session-timeout", " 10", "\" 10\"");
    BAD("--session-timeout", "+10", "\"+10\"");
    BAD("--session-timeout", "-1", "\"-1\"");
    BAD("--session-timeout", "1e3", "\"1e3\"");
    BAD("--session-timeout", "", "\"\"");
    BAD("--session-timeout", "99999999999999999999999999", "\"99999999999999999999999999\"");
    BAD("--session-timeout", "4294967596", "\"4294967596\""); /* 300 + 2^32: no wrap-around */
    BAD("--workers", "0", "1..256");
    BAD("--workers", "257", "\"257\"");
    BAD("--lookup-timeout", "0", "1..10000");
    BAD("--lookup-timeout", "10001", "\"10001\"");
    BAD("--store-timeout", "abc", "\"abc\"");
    BAD("--drain-timeout", "3601", "\"3601\"");
    BAD("--node", "bad name", "\"bad name\"");
    BAD("--node", "a/b", "\"a/b\"");
    BAD("--node", long_name, "longer than 64");
    BAD("--node", "", "empty");
    BAD("--cluster", "x:y", "\"x:y\"");
    BAD("--redis-prefix", "a b", "\"a b\"");
    BAD("--redis-prefix", long_name, "longer than 64");
    BAD("--listen", "nohost", "\"nohost\": missing port; expected HOST:PORT");
    BAD("--listen", "::1:443", "brackets");
    BAD("--listen", "[::1]443", "\"[::1]443\"");
    BAD("--listen", "[zz]:1", "IPv6");
    BAD("--listen", "h:0", "1..65535");
    BAD("--listen", "h:65536", "1..65535");
    BAD("--listen", "h:", "1..65535");
    BAD("--listen", "h:80x", "1..65535");
    BAD("--listen", "bad host:80", "host");
    BAD("--alpn", "", "empty");
    BAD("--alpn", "h2,,http/1.1", "1..255 bytes");
    BAD("--alpn", "h2,", "1..255 bytes");
    BAD("--alpn", long_alpn, "1..255 bytes");
    BAD("--alpn", "h2 ,x", "printable");
    BAD("--min-tls", "1.1", "\"1.1\" is not 1.2 or 1.3");
    BAD("--min-tls", "tls1.3", "\"tls1.3\"");
    BAD("--max-tls", "2", "\"2\"");
    BAD("--resumption", "sometimes", "\"sometimes\" is not cache, tickets or both");
    BAD("--log-level", "loud", "\"loud\"");
    BAD("--keyd", "nohost", "\"nohost\"");
    BAD("--keyd", "unix:", "unix socket path");
    BAD("--keyd", ":7000", "missing host");
    BAD("--redis", "http://x:1", "bad URL \"http://x:1\"");
    BAD("--redis", "redis://h:0", "bad URL");
    BAD("--redis", "", "empty");
    BAD("--ciphers", overlong, "longer than 4096 bytes");
    BAD("--ciphers", "", "empty");
    BAD("--groups", "", "empty");
    BAD("--dhparam", "", "empty");
    BAD("--pfx", "a\tb", "control character");
#undef BAD

    for (size_t i = 0; i < n; i++) {
        char arg[6000];
        snprintf(arg, sizeof(arg), "%s=%s", bad[i].flag, bad[i].value);
        expect_error(parse(CERT, arg, NULL), bad[i].flag, bad[i].part);
        ASSERT(strlen(err) < 300); /* the value is quoted short, never whole */
        /* The same with the value as the next argument, where that is possible. */
        if (bad[i].value[0] != '\0' && strncmp(bad[i].value, "--", 2) != 0)
            expect_error(parse(CERT, bad[i].flag, bad[i].value, NULL), bad[i].flag, bad[i].part);
    }
}

TEST(switch_from_flag_or_env)
{
    const char *on[] = {"TLSCACHE_REUSEPORT_SHARE=yes", NULL};
    const char *off[] = {"TLSCACHE_REUSEPORT_SHARE=0", NULL};
    const char *bad[] = {"TLSCACHE_REUSEPORT_SHARE=maybe", NULL};

    ASSERT_EQ(parse(CERT, NULL), 0);
    ASSERT_EQ(cfg.reuseport_share, 0);
    ASSERT_EQ(parse(CERT, "--reuseport-share", NULL), 0);
    ASSERT_EQ(cfg.reuseport_share, 1);
    ASSERT_EQ(parse_env(on, CERT, NULL), 0);
    ASSERT_EQ(cfg.reuseport_share, 1);
    ASSERT_EQ(parse_env(off, CERT, NULL), 0);
    ASSERT_EQ(cfg.reuseport_share, 0);
    expect_error(parse_env(bad, CERT, NULL), "--reuseport-share (from TLSCACHE_REUSEPORT_SHARE): ", "\"maybe\"");
    expect_error(parse(CERT, "--reuseport-share=1", NULL), "--reuseport-share: ", "takes no value");
}

TEST(cross_checks)
{
    expect_error(parse(CERT, "--min-tls", "1.3", "--max-tls", "1.2", NULL), "--min-tls: ", "above --max-tls 1.2");
    expect_error(parse("--cert", "a.pem", NULL), "--cert: ", "\"a.pem\" has no matching --key");
    expect_error(parse("--cert", "a.pem", "--key", "a.key", "--cert", "b.pem", NULL), "--cert: ", "\"b.pem\"");
    expect_error(parse("--key", "a.key", NULL), "--key: ", "\"a.key\" has no matching --cert");
    expect_error(parse(NULL), "--cert/--key or --pfx: ", "required");
    expect_error(parse("--listen", "*:1", NULL), "--cert/--key or --pfx: ", NULL);
    expect_error(parse(CERT, "--pfx-pass-file", "p.pass", NULL), "--pfx-pass-file: ", "without --pfx");
    expect_error(parse(CERT, "--keyd-secret-file", "s", NULL), "--keyd-secret-file: ", "without --keyd");
    expect_error(parse(CERT, "--resumption", "tickets", NULL), "--resumption: ", "needs --keyd");
    expect_error(parse(CERT, "--resumption", "both", NULL), "--resumption: ", "needs --keyd");
    ASSERT_EQ(parse(CERT, "--resumption", "tickets", "--keyd", "127.0.0.1:7000", NULL), 0);
    ASSERT_EQ(cfg.resumption, TLSC_RESUME_TICKETS);
    ASSERT_EQ(parse("--pfx", "p.pfx", "--seal-secret-file", "s", NULL), 0); /* a PKCS#12 alone is enough */
    ASSERT_EQ(cfg.n_certs, 0);
    /* Pairs are matched in order even when all --cert come first. */
    ASSERT_EQ(parse("--cert", "a.pem", "--cert", "b.pem", "--key", "a.key", "--key", "b.key", "--insecure-plain-records", NULL), 0);
    ASSERT_STREQ(cfg.certs[1].key_file, "b.key");
}

TEST(command_line_shape_errors)
{
    char *many[140];
    const char *argv[140];
    int argc = 0;

    expect_error(parse(CERT, "--bogus", "1", NULL), "\"--bogus\": ", "unknown flag");
    expect_error(parse(CERT, "--bogus=1", NULL), "\"--bogus\": ", "unknown flag");
    expect_error(parse(CERT, "stray", NULL), "\"stray\": ", "unexpected argument");
    expect_error(parse(CERT, "-x", NULL), "\"-x\": ", "unexpected argument");
    expect_error(parse(CERT, "--", NULL), "\"--\": ", "unexpected argument");
    expect_error(parse(CERT, "--help=yes", NULL), "--help: ", "takes no value");
    expect_error(parse(CERT, "--workers", NULL), "--workers: ", "needs a value");
    expect_error(parse("--cert", "--key", "k.pem", NULL), "--cert: ", "needs a value");
    expect_error(parse(CERT, "--workers", "2", "--workers", "3", NULL), "--workers: ", "more than once");
    expect_error(parse(CERT, "--session-timeout=1", "--session-timeout", "2", NULL), "--session-timeout: ", "more than once");

    /* Repeatable flags are bounded. */
    argv[argc++] = "tlscache-server";
    for (int i = 0; i < 65; i++) {
        argv[argc++] = "--listen";
        argv[argc++] = "127.0.0.1:1";
    }
    argv[argc] = NULL;
    memcpy(many, argv, sizeof(argv));
    tlsc_config_free(&cfg);
    expect_error(tlsc_config_parse(&cfg, argc, many, NULL, err, sizeof(err)), "--listen: ", "more than 64");
}

TEST(passphrase_is_never_taken_or_echoed_from_argv)
{
    expect_error(parse(CERT, "--pfx-pass", "hunter2secret", NULL), "--pfx-pass: ", "not accepted on the command line");
    ASSERT(strstr(err, "hunter2secret") == NULL);
    expect_error(parse(CERT, "--pfx-pass=hunter2secret", NULL), "--pfx-pass: ", NULL);
    ASSERT(strstr(err, "hunter2secret") == NULL);
}

TEST(pfx_passphrase_from_env_unless_a_file_is_given)
{
    const char *env[] = {"TLSCACHE_PFX_PASS=s3cret pass", NULL};

    ASSERT_EQ(parse_env(env, "--pfx", "p.pfx", "--seal-secret-file", "s", NULL), 0);
    ASSERT_STREQ(cfg.pfx_pass, "s3cret pass");
    ASSERT_EQ(parse_env(env, "--pfx", "p.pfx", "--pfx-pass-file", "p.pass", "--seal-secret-file", "s", NULL), 0);
    ASSERT(cfg.pfx_pass == NULL);
    ASSERT_STREQ(cfg.pfx_pass_file, "p.pass");
}

TEST(redis_password_never_echoed)
{
    const char *env[] = {"TLSCACHE_REDIS=redis://u:envsecretpw@h:0", NULL};
    const char *good_env[] = {"TLSCACHE_REDIS=redis://alice:pw%40x@10.0.0.5:6380/3", NULL};

    expect_error(parse(CERT, "--redis", "redis://user:hunter2secret@host:0", NULL), "--redis: ", "bad URL");
    ASSERT(strstr(err, "hunter2secret") == NULL);
    ASSERT(strstr(err, "***") != NULL);
    expect_error(parse(CERT, "--redis", "redis://:hunter2secret@host:99999/0", NULL), "--redis: ", NULL);
    ASSERT(strstr(err, "hunter2secret") == NULL);
    expect_error(parse_env(env, CERT, NULL), "--redis (from TLSCACHE_REDIS): ", NULL);
    ASSERT(strstr(err, "envsecretpw") == NULL);

    ASSERT_EQ(parse_env(good_env, CERT, NULL), 0);
    ASSERT_STREQ(cfg.redis.user, "alice");
    ASSERT_STREQ(cfg.redis.password, "pw@x");
    ASSERT_EQ(cfg.redis.port, 6380);
    ASSERT_EQ(cfg.redis.db, 3);
    ASSERT_EQ(parse(CERT, "--redis", "unix:///run/redis.sock", NULL), 0);
    ASSERT_STREQ(cfg.redis.path, "/run/redis.sock");
}

TEST(redis_password_on_the_command_line_is_refused_naming_the_alternatives)
{
    const char *url_env[] = {"TLSCACHE_REDIS=redis://:envpw@h:1", NULL};
    const char *pass_env[] = {"TLSCACHE_REDIS_PASS=envpass word", NULL};

    expect_error(parse(CERT, "--redis", "redis://alice:hunter2secret@10.0.0.5:6380/3", NULL), "--redis: ", "(ps)");
    ASSERT(strstr(err, "hunter2secret") == NULL);
    ASSERT(strstr(err, "--redis-pass-file") != NULL && strstr(err, "TLSCACHE_REDIS_PASS") != NULL);
    expect_error(parse(CERT, "--redis=unix://:hunter2secret@/run/r.sock", NULL), "--redis: ", "--redis-pass-file");
    ASSERT(strstr(err, "hunter2secret") == NULL);
    expect_error(parse(CERT, "--redis-pass", "hunter2secret", NULL), "--redis-pass: ", "not accepted on the command line");
    ASSERT(strstr(err, "hunter2secret") == NULL && strstr(err, "--redis-pass-file") != NULL);

    /* From the environment: in the URL, or alone for the URL's user. */
    ASSERT_EQ(parse_env(url_env, CERT, NULL), 0);
    ASSERT_STREQ(cfg.redis.password, "envpw");
    ASSERT_EQ(parse_env(pass_env, CERT, "--redis", "redis://alice@h:1/2", NULL), 0);
    ASSERT_STREQ(cfg.redis.user, "alice");
    ASSERT_STREQ(cfg.redis.password, "envpass word");
    ASSERT(cfg.redis_pass == NULL);

    /* In one place only; a user needs a password from somewhere. */
    const char *both_env[] = {"TLSCACHE_REDIS=redis://:envpw@h:1", "TLSCACHE_REDIS_PASS=xotherpw", NULL};
    expect_error(parse_env(both_env, CERT, NULL), "--redis (from TLSCACHE_REDIS): ", "in one place");
    ASSERT(strstr(err, "envpw") == NULL && strstr(err, "xotherpw") == NULL);
    expect_error(parse_env(url_env, CERT, "--redis-pass-file", "p", NULL), "--redis (from TLSCACHE_REDIS): ", "--redis-pass-file");
    expect_error(parse(CERT, "--redis", "redis://alice@h:1", NULL), "--redis: ", "names a user but no password");
    const char *ctl_env[] = {"TLSCACHE_REDIS_PASS=bad\x01pw", NULL};
    expect_error(parse_env(ctl_env, CERT, NULL), "TLSCACHE_REDIS_PASS: ", "control character");
    ASSERT(strstr(err, "bad") == NULL);
}

TEST(redis_cluster_url_takes_its_password_from_elsewhere_only)
{
    const char *pass_env[] = {"TLSCACHE_REDIS_PASS=clusterpw", NULL};

    expect_error(parse(CERT, "--redis", "redis-cluster://app:hunter2secret@10.0.0.1:7000,10.0.0.2:7001", NULL),
                 "--redis: ", "--redis-pass-file");
    ASSERT(strstr(err, "hunter2secret") == NULL);
    ASSERT_EQ(parse_env(pass_env, CERT, "--redis", "redis-cluster://app@10.0.0.1:7000,10.0.0.2:7001", NULL), 0);
    ASSERT(cfg.redis.cluster);
    ASSERT_EQ(cfg.redis.nseeds, 2);
    ASSERT_EQ(cfg.redis.seeds[1].port, 7001);
    ASSERT_STREQ(cfg.redis.user, "app");
    ASSERT_STREQ(cfg.redis.password, "clusterpw");
    expect_error(parse(CERT, "--redis", "redis-cluster://10.0.0.1:7000/2", NULL), "--redis: ", "only database 0");
}

TEST(store_replicas_works_with_every_redis_url)
{
    /* WAIT goes to the key's master on its wait link (redis_cluster.h), so a cluster URL takes it too. */
    ASSERT_EQ(parse(CERT, "--redis", "redis-cluster://10.0.0.1:7000,10.0.0.2:7001", "--store-replicas", "1", NULL), 0);
    ASSERT(cfg.redis.cluster);
    ASSERT_EQ(cfg.store_replicas, 1);
    ASSERT_EQ(parse(CERT, "--store-replicas", "2", "--redis", "redis-sentinel://10.0.0.1:26379/m", NULL), 0);
    ASSERT_EQ(cfg.store_replicas, 2);
    ASSERT_EQ(parse(CERT, "--redis", "redis://10.0.0.1:6379", "--store-replicas", "8", NULL), 0);
    ASSERT_EQ(cfg.store_replicas, 8);
    expect_error(parse(CERT, "--redis", "redis-cluster://10.0.0.1:7000", "--store-replicas", "9", NULL), "--store-replicas", NULL);
}

TEST(rediss_needs_redis_ca_and_tls_files_need_rediss)
{
    ASSERT_EQ(parse(CERT, "--redis", "rediss://redis.example:6380/1", "--redis-ca", "ca.pem", NULL), 0);
    ASSERT_EQ(cfg.redis.tls, 1);
    ASSERT_STREQ(cfg.redis_ca_file, "ca.pem");
    ASSERT_EQ(parse(CERT, "--redis", "rediss://h:1", "--redis-ca", "ca.pem", "--redis-cert", "c.pem", "--redis-key", "k.pem", NULL),
              0);
    ASSERT_STREQ(cfg.redis_cert_file, "c.pem");
    ASSERT_STREQ(cfg.redis_key_file, "k.pem");
    expect_error(parse(CERT, "--redis", "rediss://h:1", NULL), "--redis: ", "needs --redis-ca");
    expect_error(parse(CERT, "--redis-ca", "ca.pem", NULL), "--redis-ca: ", "not a rediss:// URL");
    expect_error(parse(CERT, "--redis", "rediss://h:1", "--redis-ca", "ca.pem", "--redis-cert", "c.pem", NULL),
                 "--redis-cert: ", "needs --redis-key");
    expect_error(parse(CERT, "--redis", "rediss://h:1", "--redis-ca", "ca.pem", "--redis-key", "k.pem", NULL),
                 "--redis-key: ", "needs --redis-cert");
}

/* Writes `content` to a new file of mode `mode` in a temp dir; returns its path (static). */
static const char *pass_file(const char *content, size_t len, mode_t mode)
{
    static char path[256];
    const char *dir = getenv("TMPDIR");
    int fd;

    snprintf(path, sizeof(path), "%s/test_config_pass.%d", dir != NULL ? dir : "/tmp", (int)getpid());
    unlink(path);
    ASSERT((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
    ASSERT_EQ(write(fd, content, len), (ssize_t)len);
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

TEST(redis_pass_file_is_read_stripped_and_checked)
{
    const char *pass_env[] = {"TLSCACHE_REDIS_PASS=from env", NULL};
    const char *path = pass_file("file pw\n", 8, 0600);

    /* The file wins over the variable, and gives the URL's user its password. */
    ASSERT_EQ(parse_env(pass_env, CERT, "--redis", "redis://bob@h:1", "--redis-pass-file", path, NULL), 0);
    ASSERT(cfg.redis.password == NULL && cfg.redis_pass == NULL);
    ASSERT_EQ(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), 0);
    ASSERT_STREQ(cfg.redis.password, "file pw");
    ASSERT_STREQ(cfg.redis.user, "bob");

    path = pass_file("file pw\n", 8, 0644);
    ASSERT_EQ(parse(CERT, "--redis-pass-file", path, NULL), 0);
    expect_error(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), "--redis-pass-file: ", "chmod 600");
    ASSERT(cfg.redis.password == NULL);
    path = pass_file("pw\0hidden\n", 10, 0600);
    ASSERT_EQ(parse(CERT, "--redis-pass-file", path, NULL), 0);
    expect_error(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), "--redis-pass-file: ", "NUL");
    path = pass_file("pw\x1bsecret\n", 10, 0600);
    ASSERT_EQ(parse(CERT, "--redis-pass-file", path, NULL), 0);
    expect_error(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), "--redis-pass-file: ", "control character");
    ASSERT(strstr(err, "secret") == NULL);
    path = pass_file("\n", 1, 0600);
    ASSERT_EQ(parse(CERT, "--redis-pass-file", path, NULL), 0);
    expect_error(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), "--redis-pass-file: ", "empty");
    unlink(path);
    ASSERT_EQ(parse(CERT, "--redis-pass-file", path, NULL), 0);
    expect_error(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), "--redis-pass-file: ", "No such file");
}

TEST(sentinel_password_and_user_come_from_their_own_file_or_variable)
{
    const char *env[] = {"TLSCACHE_REDIS_SENTINEL_PASS=sentinel env pw", "TLSCACHE_REDIS_SENTINEL_USER=watcher", NULL};
    const char *path = pass_file("sentinel file pw\n", 17, 0600);
    const char *url = "rediss-sentinel://10.0.0.1,10.0.0.2/mymaster";

    /* The variables: the user and the password move into the URL, apart from the data nodes'. */
    ASSERT_EQ(parse_env(env, CERT, "--redis", url, "--redis-ca", "ca.pem", NULL), 0);
    ASSERT(cfg.redis.tls && cfg.redis.master_name != NULL);
    ASSERT_STREQ(cfg.redis.sentinel_user, "watcher");
    ASSERT_STREQ(cfg.redis.sentinel_password, "sentinel env pw");
    ASSERT(cfg.redis.password == NULL && cfg.redis.user == NULL && cfg.redis_sentinel_pass == NULL);

    /* The file wins over the variable, read when the data password is. */
    ASSERT_EQ(parse_env(env, CERT, "--redis", url, "--redis-ca", "ca.pem", "--redis-sentinel-pass-file", path,
                        "--redis-sentinel-user", "other", NULL),
              0);
    ASSERT(cfg.redis.sentinel_password == NULL && cfg.redis_sentinel_pass == NULL);
    ASSERT_STREQ(cfg.redis.sentinel_user, "other");
    ASSERT_EQ(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), 0);
    ASSERT_STREQ(cfg.redis.sentinel_password, "sentinel file pw");
    ASSERT(cfg.redis.password == NULL);

    /* Never on the command line; only with a Sentinel URL; a user needs a password. */
    expect_error(parse(CERT, "--redis", url, "--redis-ca", "ca.pem", "--redis-sentinel-pass", "hunter2pw", NULL),
                 "--redis-sentinel-pass: ", "--redis-sentinel-pass-file or TLSCACHE_REDIS_SENTINEL_PASS");
    ASSERT(strstr(err, "hunter2pw") == NULL);
    expect_error(parse(CERT, "--redis", "redis://h:1", "--redis-sentinel-pass-file", path, NULL),
                 "--redis-sentinel-pass-file: ", "not a redis-sentinel://");
    expect_error(parse_env(env, CERT, "--redis", "redis-cluster://h:1", NULL),
                 "--redis-sentinel-user: ", "not a redis-sentinel://");
    expect_error(parse(CERT, "--redis", url, "--redis-ca", "ca.pem", "--redis-sentinel-user", "watcher", NULL),
                 "--redis-sentinel-user: ", "no password");
    expect_error(parse(CERT, "--redis", url, "--redis-ca", "ca.pem", "--redis-sentinel-user", "a b", NULL),
                 "--redis-sentinel-user: ", "space");
    const char *ctl_env[] = {"TLSCACHE_REDIS_SENTINEL_PASS=bad\x01pw", NULL};
    expect_error(parse_env(ctl_env, CERT, "--redis", url, "--redis-ca", "ca.pem", NULL),
                 "TLSCACHE_REDIS_SENTINEL_PASS: ", "control character");
    ASSERT(strstr(err, "bad") == NULL);
    expect_error(parse(CERT, "--redis", url, NULL), "--redis: ", "rediss-sentinel:// needs --redis-ca");
    expect_error(parse(CERT, "--redis", "rediss-cluster://h:1", NULL), "--redis: ", "rediss-cluster:// needs --redis-ca");

    path = pass_file("open pw\n", 8, 0644);
    ASSERT_EQ(parse(CERT, "--redis", "redis-sentinel://h/m", "--redis-sentinel-pass-file", path, NULL), 0);
    expect_error(tlsc_config_load_redis_pass(&cfg, err, sizeof(err)), "--redis-sentinel-pass-file: ", "chmod 600");
    ASSERT(cfg.redis.sentinel_password == NULL && strstr(err, "open pw") == NULL);
    unlink(path);
}

TEST(hostile_values_stay_on_one_line)
{
    char small[12];

    expect_error(parse(CERT, "--node", "a\nb\x1b[31m", NULL), "--node: ", "\"a\\x0ab\\x1b[31m\"");
    expect_error(parse(CERT, "--workers", "1\r\n", NULL), "--workers: ", "\"1\\x0d\\x0a\"");
    expect_error(parse(CERT, "--resumption", "x\"y", NULL), "--resumption: ", "\"x\\\"y\"");
    /* A tiny error buffer is filled, terminated, never overrun. */
    {
        const char *argv[] = {"tlscache-server", "--workers", "abcdefghijklmnop", NULL};
        tlsc_config_free(&cfg);
        memset(small, 'Z', sizeof(small));
        ASSERT(tlsc_config_parse(&cfg, 3, (char **)argv, NULL, small, sizeof(small)) < 0);
        ASSERT_EQ(strlen(small), sizeof(small) - 1);
        tlsc_config_free(&cfg);
        ASSERT(tlsc_config_parse(&cfg, 3, (char **)argv, NULL, NULL, 0) < 0);
    }
}

/* Writes `text` to a fresh temp file; returns its path (static). */
static const char *backends_file(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/tlsc-test-backends-XXXXXX");
    fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

TEST(backends_file_lines_comments_and_errors)
{
    tlsc_routes_t rs = {0};
    const char *p;

    p = backends_file("# routes\n\n  127.0.0.1:8080  \r\nsni:a.example=unix:/run/a.sock\n\talpn:h2=127.0.0.1:8081\n");
    ASSERT_EQ(tlsc_config_read_backends(p, &rs, err, sizeof(err)), 0);
    ASSERT_EQ(rs.n, 3);
    tlsc_routes_free(&rs);
    unlink(p);
    memset(&rs, 0, sizeof(rs));

    p = backends_file("127.0.0.1:8080\nsni:=127.0.0.1:1\n");
    ASSERT_EQ(tlsc_config_read_backends(p, &rs, err, sizeof(err)), -1);
    ASSERT(strstr(err, ":2: ") != NULL);
    ASSERT_EQ(rs.n, 0);
    unlink(p);

    p = backends_file("# nothing\n\n");
    ASSERT_EQ(tlsc_config_read_backends(p, &rs, err, sizeof(err)), -1);
    ASSERT(strstr(err, "no route") != NULL);
    unlink(p);

    p = backends_file("127.0.0.1:1\x01\n");
    ASSERT_EQ(tlsc_config_read_backends(p, &rs, err, sizeof(err)), -1);
    unlink(p);

    ASSERT_EQ(tlsc_config_read_backends("/nonexistent/backends", &rs, err, sizeof(err)), -1);
    ASSERT(strstr(err, "/nonexistent/backends") != NULL);
}

/* Runs the parser with stdout sent to a file and returns what was printed. */
static char *capture_stdout(const char *flag, int *rc)
{
    char path[] = "/tmp/tlsc-test-config-XXXXXX", *buf = malloc(65536);
    int fd = mkstemp(path), saved = dup(1);
    ssize_t n;

    ASSERT(fd >= 0 && saved >= 0 && buf != NULL);
    fflush(stdout);
    dup2(fd, 1);
    *rc = parse(flag, "--bogus-after-help", NULL); /* --help stops before later errors */
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, 65535);
    ASSERT(n > 0);
    buf[n] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

TEST(help_lists_every_flag_with_env_and_default)
{
    static const char *const flags[] = {
        "listen",       "workers",          "node",          "cluster",         "cert",      "key",
        "pfx",          "pfx-pass-file",    "alpn",          "groups",          "dhparam",   "min-tls",
        "max-tls",      "ciphers",          "ciphersuites",  "session-timeout", "redis",     "redis-pass-file",
        "redis-prefix", "lookup-timeout",   "store-timeout", "resumption",      "log-level", "drain-timeout",
        "keyd",         "keyd-secret-file", "help",          "version"};
    char needle[80];
    int rc;
    char *out = capture_stdout("--help", &rc);

    ASSERT_EQ(rc, 1);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        snprintf(needle, sizeof(needle), "--%s", flags[i]);
        ASSERT(strstr(out, needle) != NULL);
    }
    ASSERT(strstr(out, "TLSCACHE_SESSION_TIMEOUT") != NULL);
    ASSERT(strstr(out, "TLSCACHE_PFX_PASS") != NULL);
    ASSERT(strstr(out, "default: 300") != NULL);
    ASSERT(strstr(out, "default: 0.0.0.0:8443") != NULL);
    ASSERT(strstr(out, "default: redis://127.0.0.1:6379") != NULL);
    free(out);

    out = capture_stdout("--version", &rc);
    ASSERT_EQ(rc, 1);
    /* The version, then the libraries it runs with (tlsc_opts_version). */
    ASSERT(strncmp(out, "tlscache-server " TLSC_VERSION "\nOpenSSL ", strlen("tlscache-server " TLSC_VERSION "\nOpenSSL ")) == 0);
    ASSERT(strstr(out, "\nlibuv ") != NULL);
    ASSERT(strstr(out, "\nhiredis ") != NULL);
    free(out);
}

int main(void)
{
    RUN(records_are_sealed_unless_plain_is_asked_for_in_as_many_words);
    RUN(check_and_its_alias_and_user);
    RUN(defaults_with_only_a_certificate);
    RUN(every_flag_with_separate_value);
    RUN(every_flag_with_equals_value);
    RUN(every_flag_from_env);
    RUN(flag_wins_over_env);
    RUN(empty_env_counts_as_unset);
    RUN(env_errors_name_flag_and_variable);
    RUN(listen_forms);
    RUN(bad_values_name_the_flag_and_value);
    RUN(switch_from_flag_or_env);
    RUN(cross_checks);
    RUN(command_line_shape_errors);
    RUN(passphrase_is_never_taken_or_echoed_from_argv);
    RUN(pfx_passphrase_from_env_unless_a_file_is_given);
    RUN(redis_password_never_echoed);
    RUN(redis_password_on_the_command_line_is_refused_naming_the_alternatives);
    RUN(sentinel_password_and_user_come_from_their_own_file_or_variable);
    RUN(redis_pass_file_is_read_stripped_and_checked);
    RUN(redis_cluster_url_takes_its_password_from_elsewhere_only);
    RUN(store_replicas_works_with_every_redis_url);
    RUN(rediss_needs_redis_ca_and_tls_files_need_rediss);
    RUN(hostile_values_stay_on_one_line);
    RUN(help_lists_every_flag_with_env_and_default);
    RUN(backends_file_lines_comments_and_errors);
    tlsc_config_free(&cfg);
    TEST_DONE();
}
