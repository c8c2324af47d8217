#include "options.h"
#include "test.h"

#include <openssl/ssl.h>

static char err[512];

/* Parses a NULL-terminated list of arguments (argv[0] is added). */
static int parse(tlsc_bench_options_t *o, const char *const *args)
{
    char *argv[64];
    int argc = 0;

    argv[argc++] = (char *)"tlscache-bench";
    while (*args != NULL && argc < 63)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    tlsc_bench_options_init(o);
    err[0] = '\0';
    return tlsc_bench_options_parse(o, argc, argv, err, sizeof(err));
}

TEST(options_defaults_with_one_target)
{
    tlsc_bench_options_t o;
    const char *a[] = {"--target", "127.0.0.1:8443", NULL};

    ASSERT_EQ(parse(&o, a), 0);
    ASSERT_EQ(o.ntargets, 1);
    ASSERT_STREQ(o.targets[0].host, "127.0.0.1");
    ASSERT_EQ(o.targets[0].port, 8443);
    ASSERT_STREQ(o.targets[0].label, "127.0.0.1:8443");
    ASSERT_EQ(o.connections, 1000);
    ASSERT(o.duration_sec == 0);
    ASSERT_EQ(o.concurrency, 8);
    ASSERT_EQ(o.mode, TLSC_BENCH_MODE_ID);
    ASSERT_EQ(o.tls_version, 0);
    ASSERT_EQ(o.timeout_ms, 5000);
    ASSERT_EQ(o.balance, TLSC_BENCH_BALANCE_RR);
    ASSERT_STREQ(o.redis_prefix, "tlscache");
    ASSERT(o.sni == NULL && !o.request && !o.quiet);
}

TEST(options_every_flag)
{
    tlsc_bench_options_t o;
    const char *a[] = {"--target",
                       "a.example:443",
                       "--target=[::1]:8443",
                       "--balance",
                       "random",
                       "--duration=2.5",
                       "--concurrency",
                       "64",
                       "--tls",
                       "1.2",
                       "--mode",
                       "ticket",
                       "--new-session-every",
                       "10",
                       "--sni",
                       "www.example",
                       "--alpn",
                       "h2,http/1.1",
                       "--request",
                       "/x",
                       "--json",
                       "o.json",
                       "--csv",
                       "o.csv",
                       "--plot",
                       "o.png",
                       "--redis",
                       "redis://127.0.0.1:6379/2",
                       "--redis-prefix",
                       "tc",
                       "--quiet",
                       "--timeout",
                       "250",
                       "--cafile",
                       "ca.pem",
                       "--seed",
                       "42",
                       "--label",
                       "nginx",
                       "--ticket-wait=0",
                       NULL};

    ASSERT_EQ(parse(&o, a), 0);
    ASSERT_EQ(o.ntargets, 2);
    ASSERT_STREQ(o.targets[1].host, "::1");
    ASSERT_EQ(o.targets[1].port, 8443);
    ASSERT_STREQ(o.targets[1].label, "[::1]:8443");
    ASSERT_EQ(o.balance, TLSC_BENCH_BALANCE_RANDOM);
    ASSERT_EQ(o.connections, 0);
    ASSERT(o.duration_sec == 2.5);
    ASSERT_EQ(o.concurrency, 64);
    ASSERT_EQ(o.tls_version, TLS1_2_VERSION);
    ASSERT_EQ(o.mode, TLSC_BENCH_MODE_TICKET);
    ASSERT_EQ(o.new_session_every, 10);
    ASSERT_STREQ(o.sni, "www.example");
    ASSERT_STREQ(o.alpn, "h2,http/1.1");
    ASSERT(o.request);
    ASSERT_STREQ(o.request_path, "/x");
    ASSERT_STREQ(o.json_file, "o.json");
    ASSERT_STREQ(o.csv_file, "o.csv");
    ASSERT_STREQ(o.plot_file, "o.png");
    ASSERT_STREQ(o.redis_url, "redis://127.0.0.1:6379/2");
    ASSERT_STREQ(o.redis_prefix, "tc");
    ASSERT(o.quiet);
    ASSERT_EQ(o.timeout_ms, 250);
    ASSERT_STREQ(o.cafile, "ca.pem");
    ASSERT(o.seed_set && o.seed == 42);
    ASSERT_STREQ(o.label, "nginx");
    ASSERT_EQ(o.ticket_wait_ms, 0);
}

TEST(options_request_path_is_optional)
{
    tlsc_bench_options_t o;
    const char *a[] = {"--request", "--target", "h:1", NULL};
    const char *b[] = {"--target", "h:1", "--request", NULL};

    ASSERT_EQ(parse(&o, a), 0);
    ASSERT(o.request);
    ASSERT_STREQ(o.request_path, "/");
    ASSERT_EQ(parse(&o, b), 0);
    ASSERT(o.request);
    ASSERT_STREQ(o.request_path, "/");
}

TEST(options_help_and_version_win)
{
    tlsc_bench_options_t o;
    const char *a[] = {"--bogus", NULL};
    const char *h[] = {"--help", "--bogus", NULL};
    const char *v[] = {"--version", NULL};

    ASSERT_EQ(parse(&o, a), -1);
    ASSERT_EQ(parse(&o, h), 1);
    ASSERT_EQ(parse(&o, v), 1);
}

/* Each bad command line fails with a message that names the flag (and the value). */
TEST(options_errors_name_the_flag_and_value)
{
    static const struct {
        const char *args[8];
        const char *expect;
    } cases[] = {
        {{"--concurrency", "8", NULL}, "--target"},
        {{"--target", "localhost", NULL}, "--target: \"localhost\": missing port"},
        {{"--target", "h:0", NULL}, "--target: \"h:0\": bad port"},
        {{"--target", "h:65536", NULL}, "--target: \"h:65536\": bad port"},
        {{"--target", "h:-1", NULL}, "--target: \"h:-1\": bad port"},
        {{"--target", ":443", NULL}, "--target: \":443\": missing host"},
        {{"--target", "::1:443", NULL}, "--target: \"::1:443\": put an IPv6 address in brackets"},
        {{"--target", "[::1]443", NULL}, "--target: \"[::1]443\": garbage after"},
        {{"--target", "h:1", "--concurrency", "0", NULL}, "--concurrency: \"0\" is not a number in 1..100000"},
        {{"--target", "h:1", "--concurrency", "x", NULL}, "--concurrency: \"x\""},
        {{"--target", "h:1", "--connections", "-5", NULL}, "--connections: \"-5\""},
        {{"--target", "h:1", "--duration", "0", NULL}, "--duration: \"0\""},
        {{"--target", "h:1", "--duration", "1", "--connections", "5", NULL}, "exclude"},
        {{"--target", "h:1", "--tls", "1.1", NULL}, "--tls: \"1.1\""},
        {{"--target", "h:1", "--mode", "psk", NULL}, "--mode: \"psk\""},
        {{"--target", "h:1", "--balance", "hash", NULL}, "--balance: \"hash\""},
        {{"--target", "h:1", "--alpn", "h2,,x", NULL}, "--alpn: \"h2,,x\""},
        {{"--target", "h:1", "--timeout", "0", NULL}, "--timeout: \"0\""},
        {{"--target", "h:1", "--timeout", NULL}, "--timeout: needs a value"},
        {{"--target", "h:1", "--mode", "full", "--new-session-every", "2", NULL}, "--new-session-every"},
        {{"--target", "h:1", "--redis-prefix", "a*", NULL}, "--redis-prefix: \"a*\""},
        {{"--target", "h:1", "--quiet=yes", NULL}, "--quiet: takes no value"},
        {{"--target", "h:1", "--request", "x", NULL}, "--request: \"x\" is not a path"},
        {{"--target", "h:1", "--sni", "a", "--no-sni", NULL}, "--no-sni"},
        {{"--target", "h:1", "--nope", NULL}, "\"--nope\": unknown flag"},
        {{"--target", "h:1", "stray", NULL}, "\"stray\": unexpected argument"},
        {{"--target", "h\n:1", NULL}, "\"h\\x0a:1\": bad character in host"},
        {{"--target", "h:1", "--timeout", "4294967297", NULL}, "--timeout: \"4294967297\""},
        {{"--target", "h:1", "--seed", "18446744073709551616", NULL}, "--seed: \"18446744073709551616\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tlsc_bench_options_t o;

        if (parse(&o, cases[i].args) != -1 || strstr(err, cases[i].expect) == NULL) {
            fprintf(stderr, "case %zu: err \"%s\", expected \"%s\"\n", i, err, cases[i].expect);
            ASSERT(0);
        }
    }
}

TEST(options_at_most_64_targets)
{
    tlsc_bench_options_t o;
    char *argv[2 * TLSC_BENCH_MAX_TARGETS + 4];
    int argc = 0;

    argv[argc++] = (char *)"x";
    for (int i = 0; i <= TLSC_BENCH_MAX_TARGETS; i++) {
        argv[argc++] = (char *)"--target";
        argv[argc++] = (char *)"h:1";
    }
    tlsc_bench_options_init(&o);
    ASSERT_EQ(tlsc_bench_options_parse(&o, argc, argv, err, sizeof(err)), -1);
    ASSERT(strstr(err, "--target: given more than 64 times") != NULL);
    tlsc_bench_options_init(&o);
    ASSERT_EQ(tlsc_bench_options_parse(&o, argc - 2, argv, err, sizeof(err)), 0);
    ASSERT_EQ(o.ntargets, TLSC_BENCH_MAX_TARGETS);
}

/* --help is printed from the parser's own table: every flag, its default, the exit codes. */
TEST(help_lists_every_flag_with_its_default_and_the_exit_codes)
{
    static const char *want[] = {"--target HOST:PORT ...", "--concurrency C", "default: 8",       "--timeout MS", "default: 5000",
                                 "--redis-settle MS",      "default: 1500",   "--request [PATH]", "--no-sni",     "2 bad usage"};
    tlsc_bench_options_t o;
    char buf[16384];
    size_t n;
    FILE *f = tmpfile();

    ASSERT(f != NULL);
    tlsc_bench_usage(f);
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(buf, want[i]) == NULL) {
            fprintf(stderr, "--help lacks \"%s\"\n", want[i]);
            ASSERT(0);
        }
    }
    /* The defaults the help shows are the ones a parse gives. */
    tlsc_bench_options_init(&o);
    ASSERT_EQ(o.concurrency, 8);
    ASSERT_EQ(o.timeout_ms, 5000);
    ASSERT_EQ(o.redis_settle_ms, 1500);
}

TEST(alpn_wire_format)
{
    unsigned char w[32];

    ASSERT_EQ(tlsc_bench_alpn_wire("h2,http/1.1", w, sizeof(w)), 12);
    ASSERT(memcmp(w, "\x02h2\x08http/1.1", 12) == 0);
    ASSERT_EQ(tlsc_bench_alpn_wire("", w, sizeof(w)), -1);
    ASSERT_EQ(tlsc_bench_alpn_wire("a,", w, sizeof(w)), -1);
    ASSERT_EQ(tlsc_bench_alpn_wire("abcdefghijklmnopqrstuvwxyz0123456789", w, sizeof(w)), -1); /* does not fit */
}

int main(void)
{
    RUN(options_defaults_with_one_target);
    RUN(options_every_flag);
    RUN(options_request_path_is_optional);
    RUN(options_help_and_version_win);
    RUN(options_errors_name_the_flag_and_value);
    RUN(options_at_most_64_targets);
    RUN(help_lists_every_flag_with_its_default_and_the_exit_codes);
    RUN(alpn_wire_format);
    TEST_DONE();
}
