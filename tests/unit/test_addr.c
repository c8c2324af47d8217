#include <arpa/inet.h>
#include <stdint.h>

#include "addr.h"
#include "opts.h"
#include "test.h"

/*
 * The one address parser (HOST:PORT, [V6]:PORT, unix:PATH) and the one unsigned parser that
 * every binary's flags go through, against good forms and hostile ones: no input may be
 * accepted half-way, overflow, or write past a bound.
 */

static char err[256];

static int parse(const char *s, unsigned flags, tlsc_addr_t *a)
{
    memset(err, 'X', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    return tlsc_addr_parse_str(s, flags, a, err, sizeof(err));
}

/* Refused, with a reason that contains `why`, is one line and does not repeat the input. */
static void refused(const char *s, unsigned flags, const char *why)
{
    tlsc_addr_t a;

    if (parse(s, flags, &a) != -1 || strstr(err, why) == NULL || strchr(err, '\n') != NULL) {
        fprintf(stderr, "\n    on \"%s\": reason \"%s\", wanted \"%s\"\n", s, err, why);
        ASSERT(0);
    }
}

TEST(host_port_forms)
{
    tlsc_addr_t a;

    ASSERT_EQ(parse("127.0.0.1:8443", 0, &a), 0);
    ASSERT_EQ(a.kind, TLSC_ADDR_TCP);
    ASSERT_STREQ(a.host, "127.0.0.1");
    ASSERT_EQ(a.port, 8443);
    ASSERT_STREQ(a.port_str, "8443");
    ASSERT_EQ(parse("cache-1.example_x:1", 0, &a), 0);
    ASSERT_STREQ(a.host, "cache-1.example_x");
    ASSERT_EQ(parse("[2001:db8::7]:65535", 0, &a), 0);
    ASSERT_STREQ(a.host, "2001:db8::7");
    ASSERT(a.is_v6);
    ASSERT_EQ(a.port, 65535);
    ASSERT_EQ(parse("h:00080", 0, &a), 0); /* leading zeros: canonical decimal out */
    ASSERT_STREQ(a.port_str, "80");
}

TEST(any_host_only_when_allowed)
{
    tlsc_addr_t a;

    ASSERT_EQ(parse("*:8443", TLSC_ADDR_ALLOW_ANY, &a), 0);
    ASSERT_STREQ(a.host, "");
    ASSERT_EQ(parse(":8443", TLSC_ADDR_ALLOW_ANY, &a), 0);
    ASSERT_STREQ(a.host, "");
    refused(":8443", 0, "missing host");
    refused("*:8443", 0, "missing host");
}

TEST(unix_only_when_allowed)
{
    tlsc_addr_t a;
    char path[200];

    ASSERT_EQ(parse("unix:/run/k.sock", TLSC_ADDR_ALLOW_UNIX, &a), 0);
    ASSERT_EQ(a.kind, TLSC_ADDR_UNIX);
    ASSERT_STREQ(a.path, "/run/k.sock");
    refused("unix:/run/k.sock", 0, "unix socket is not accepted");
    refused("unix:", TLSC_ADDR_ALLOW_UNIX, "1..107 bytes");
    refused("unix:/a\nb", TLSC_ADDR_ALLOW_UNIX, "control character");
    /* 107 bytes fit sun_path, 108 do not. */
    memcpy(path, "unix:", 5);
    memset(path + 5, 'p', 107);
    path[112] = '\0';
    ASSERT_EQ(parse(path, TLSC_ADDR_ALLOW_UNIX, &a), 0);
    ASSERT_EQ(strlen(a.path), 107);
    path[112] = 'p';
    path[113] = '\0';
    refused(path, TLSC_ADDR_ALLOW_UNIX, "1..107 bytes");
}

TEST(host_named_unix_with_a_port_is_tcp)
{
    tlsc_addr_t a;

    /* With or without unix sockets allowed, "unix:6379" is HOST:PORT, not a socket "6379". */
    ASSERT_EQ(parse("unix:6379", TLSC_ADDR_ALLOW_UNIX, &a), 0);
    ASSERT_EQ(a.kind, TLSC_ADDR_TCP);
    ASSERT_STREQ(a.host, "unix");
    ASSERT_EQ(a.port, 6379);
    ASSERT_EQ(parse("unix:6379", 0, &a), 0);
    ASSERT_EQ(a.kind, TLSC_ADDR_TCP);
    ASSERT_STREQ(a.host, "unix");
    refused("unix:99999", TLSC_ADDR_ALLOW_UNIX, "bad port");
    /* Anything else after "unix:" is still a path. */
    ASSERT_EQ(parse("unix:/run/6379", TLSC_ADDR_ALLOW_UNIX, &a), 0);
    ASSERT_EQ(a.kind, TLSC_ADDR_UNIX);
    ASSERT_STREQ(a.path, "/run/6379");
    ASSERT_EQ(parse("unix:k.sock", TLSC_ADDR_ALLOW_UNIX, &a), 0);
    ASSERT_EQ(a.kind, TLSC_ADDR_UNIX);
}

/* The bucket of a textual address (v4 or v6), as the daemon computes it from getpeername(). */
static const char *bucket_of(const char *ip)
{
    static char out[TLSC_ADDR_BUCKET_LEN];
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        ss.ss_family = AF_INET6;
        ASSERT_EQ(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    } else {
        ss.ss_family = AF_INET;
        ASSERT_EQ(inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr), 1);
    }
    ASSERT_EQ(tlsc_addr_bucket((struct sockaddr *)&ss, out, sizeof(out)), 0);
    return out;
}

TEST(fairness_bucket_is_the_ipv4_address_or_the_ipv6_slash_64)
{
    struct sockaddr_storage ss;
    char small[TLSC_ADDR_BUCKET_LEN - 1];

    ASSERT_STREQ(bucket_of("192.0.2.7"), "192.0.2.7");
    ASSERT_STREQ(bucket_of("192.0.2.8"), "192.0.2.8");
    /* An IPv4-mapped IPv6 address (a dual-stack listener) is the IPv4 address. */
    ASSERT_STREQ(bucket_of("::ffff:192.0.2.7"), "192.0.2.7");
    /* Every address of one /64 is one bucket; the next /64 is another. */
    ASSERT_STREQ(bucket_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    ASSERT_STREQ(bucket_of("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    ASSERT_STREQ(bucket_of("2001:db8:1:3::1"), "2001:db8:1:3::/64");
    ASSERT_STREQ(bucket_of("::1"), "::/64");
    ASSERT_STREQ(bucket_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "ffff:ffff:ffff:ffff::/64");
    /* Another family, or no room: refused. */
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    ASSERT_EQ(tlsc_addr_bucket((struct sockaddr *)&ss, err, sizeof(err)), -1);
    ss.ss_family = AF_INET6;
    ASSERT_EQ(tlsc_addr_bucket((struct sockaddr *)&ss, small, sizeof(small)), -1);
    ASSERT_EQ(tlsc_addr_bucket(NULL, err, sizeof(err)), -1);
}

TEST(optional_port_takes_the_default)
{
    tlsc_addr_t a;
    const char *s = "redis";

    ASSERT_EQ(tlsc_addr_parse(s, strlen(s), TLSC_ADDR_PORT_OPTIONAL, 6379, &a, err, sizeof(err)), 0);
    ASSERT_EQ(a.port, 6379);
    ASSERT_EQ(tlsc_addr_parse("[::1]", 5, TLSC_ADDR_PORT_OPTIONAL, 6379, &a, err, sizeof(err)), 0);
    ASSERT_STREQ(a.host, "::1");
    ASSERT_EQ(a.port, 6379);
    refused("redis", 0, "missing port");
}

TEST(length_bounded_input_is_not_read_past)
{
    tlsc_addr_t a;

    /* Only the first 6 bytes count: "h:1234" and nothing after. */
    ASSERT_EQ(tlsc_addr_parse("h:12345678", 6, 0, 0, &a, err, sizeof(err)), 0);
    ASSERT_EQ(a.port, 1234);
    ASSERT_EQ(tlsc_addr_parse("h:1\0:2", 6, 0, 0, &a, err, sizeof(err)), -1); /* an embedded NUL */
    ASSERT_EQ(tlsc_addr_parse("", 0, 0, 0, &a, err, sizeof(err)), -1);
}

TEST(hostile_addresses_are_refused)
{
    char host[300];

    refused("nohost", 0, "missing port");
    refused("h:", 0, "bad port");
    refused("h:0", 0, "bad port");
    refused("h:65536", 0, "bad port");
    refused("h:-1", 0, "bad port");
    refused("h:+80", 0, "bad port");
    refused("h: 80", 0, "bad port");
    refused("h:80 ", 0, "bad port");
    refused("h:0x50", 0, "bad port");
    refused("h:1e3", 0, "bad port");
    refused("h:99999999999999999999999", 0, "bad port");
    refused("h:18446744073709551617", 0, "bad port"); /* 2^64 + 1: no wrap-around */
    refused("h:4294967376", 0, "bad port");           /* 80 + 2^32 */
    refused("::1:443", 0, "brackets");
    refused("[::1:443", 0, "without ']'");
    refused("[]:1", 0, "bad IPv6");
    refused("[zz::1]:1", 0, "bad IPv6");
    refused("[1.2.3.4]:1", 0, "bad IPv6");
    refused("[::1]443", 0, "garbage after");
    refused("[::1]:", 0, "bad port");
    refused("ho st:1", 0, "bad character in host");
    refused("h\n:1", 0, "bad character in host");
    refused("h\x1b[2J:1", 0, "bad character in host");
    refused("a/b:1", 0, "bad character in host");
    refused("user@h:1", 0, "bad character in host");
    /* A 253-byte name is the longest DNS name; 254 is refused, and a long one never overflows. */
    memset(host, 'a', 253);
    strcpy(host + 253, ":1");
    {
        tlsc_addr_t a;
        ASSERT_EQ(parse(host, 0, &a), 0);
        ASSERT_EQ(strlen(a.host), 253);
    }
    memset(host, 'a', 254);
    strcpy(host + 254, ":1");
    refused(host, 0, "longer than 253");
    memset(host, '[', 280);
    strcpy(host + 280, "]:1");
    refused(host, 0, "bad IPv6");
}

TEST(format_round_trips)
{
    static const char *forms[] = {"127.0.0.1:1", "[::1]:443", "*:8443", "unix:/s"};
    tlsc_addr_t a;
    char out[300];

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        ASSERT_EQ(parse(forms[i], TLSC_ADDR_ALLOW_ANY | TLSC_ADDR_ALLOW_UNIX, &a), 0);
        tlsc_addr_format(&a, out, sizeof(out));
        ASSERT_STREQ(out, forms[i]);
    }
}

TEST(unsigned_numbers)
{
    uint64_t v;
    unsigned u;

    ASSERT_EQ(tlsc_parse_uint("0", 0, 10, &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(tlsc_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
    ASSERT(v == UINT64_MAX);
    ASSERT_EQ(tlsc_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -1); /* 2^64 */
    ASSERT_EQ(tlsc_parse_uint("99999999999999999999999999", 0, UINT64_MAX, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint(NULL, 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("-1", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("+1", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint(" 1", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("1 ", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("0x1", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("11", 0, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint("4", 5, 10, &v), -1);
    ASSERT_EQ(tlsc_parse_uint32("4294967296", 0, 4294967295u, &u), -1); /* 2^32 does not fit */
    ASSERT_EQ(tlsc_parse_uint32("4294967595", 1, 86400, &u), -1);       /* 299 + 2^32: no wrap */
    ASSERT_EQ(tlsc_parse_uint32("300", 1, 86400, &u), 0);
    ASSERT_EQ(u, 300);
    ASSERT_EQ(tlsc_parse_uint_n("12abc", 2, 0, 100, &v), 0);
    ASSERT_EQ(v, 12);
}

TEST(quote_never_overflows_and_stays_one_line)
{
    char v[200], q[TLSC_OPTS_QUOTE_MAX];

    /* 60 control bytes become 240 bytes of \xNN: the worst case must fit the buffer. */
    memset(v, '\x01', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    tlsc_opts_quote(q, v);
    ASSERT(strlen(q) < sizeof(q));
    ASSERT(strchr(q, '\n') == NULL && strchr(q, '\x01') == NULL);
    ASSERT(strstr(q, "...") != NULL);
    tlsc_opts_quote(q, "a\"b\\c\nd");
    ASSERT_STREQ(q, "\"a\\\"b\\\\c\\x0ad\"");
}

int main(void)
{
    RUN(host_port_forms);
    RUN(any_host_only_when_allowed);
    RUN(unix_only_when_allowed);
    RUN(host_named_unix_with_a_port_is_tcp);
    RUN(fairness_bucket_is_the_ipv4_address_or_the_ipv6_slash_64);
    RUN(optional_port_takes_the_default);
    RUN(length_bounded_input_is_not_read_past);
    RUN(hostile_addresses_are_refused);
    RUN(format_round_trips);
    RUN(unsigned_numbers);
    RUN(quote_never_overflows_and_stays_one_line);
    TEST_DONE();
}
