#include <sys/stat.h>
#include <unistd.h>

#include "redis_url.h"
#include "test.h"

/*
 * The Redis URL parser: every form the config accepts, and hostile input that must be
 * refused with a reason naming the bad part, never echoing the credentials.
 */

static tlsc_redis_url_t parse_ok(const char *url)
{
    tlsc_redis_url_t u;
    char err[256] = "";

    if (tlsc_redis_url_parse(url, &u, err, sizeof(err)) != 0) {
        fprintf(stderr, "unexpected failure on %s: %s\n", url, err);
        abort();
    }
    return u;
}

/* Asserts that `url` is refused with a reason containing `why` and leaks nothing. */
static void assert_rejected(const char *url, const char *why)
{
    tlsc_redis_url_t u;
    char err[256] = "";

    ASSERT_EQ(tlsc_redis_url_parse(url, &u, err, sizeof(err)), -1);
    if (strstr(err, why) == NULL) {
        fprintf(stderr, "on %s: reason \"%s\" lacks \"%s\"\n", url, err, why);
        abort();
    }
    ASSERT(strstr(err, "redis URL: ") == err);
    ASSERT(u.host == NULL && u.path == NULL && u.user == NULL && u.password == NULL);
    tlsc_redis_url_free(&u);
}

TEST(host_port_db)
{
    tlsc_redis_url_t u = parse_ok("redis://cache.example:6380/3");

    ASSERT_STREQ(u.host, "cache.example");
    ASSERT_EQ(u.port, 6380);
    ASSERT_EQ(u.db, 3);
    ASSERT(u.path == NULL && u.user == NULL && u.password == NULL);
    tlsc_redis_url_free(&u);
    ASSERT(u.host == NULL);
    tlsc_redis_url_free(&u); /* twice is fine: the struct is zeroed */
}

TEST(defaults_are_port_6379_db_0)
{
    tlsc_redis_url_t u = parse_ok("redis://redis");

    ASSERT_STREQ(u.host, "redis");
    ASSERT_EQ(u.port, 6379);
    ASSERT_EQ(u.db, 0);
    tlsc_redis_url_free(&u);

    u = parse_ok("REDIS://127.0.0.1/");
    ASSERT_STREQ(u.host, "127.0.0.1");
    ASSERT_EQ(u.port, 6379);
    ASSERT_EQ(u.db, 0);
    tlsc_redis_url_free(&u);
}

TEST(ipv6_in_brackets)
{
    tlsc_redis_url_t u = parse_ok("redis://[::1]:6390/2");
    char d[128];

    ASSERT_STREQ(u.host, "::1");
    ASSERT_EQ(u.port, 6390);
    ASSERT_EQ(u.db, 2);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "[::1]:6390/2");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://[2001:db8::7]");
    ASSERT_STREQ(u.host, "2001:db8::7");
    ASSERT_EQ(u.port, 6379);
    tlsc_redis_url_free(&u);
}

TEST(password_only_and_user_password)
{
    tlsc_redis_url_t u = parse_ok("redis://:s3cret@h:1");

    ASSERT(u.user == NULL);
    ASSERT_STREQ(u.password, "s3cret");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://app:pw@h:1/0");
    ASSERT_STREQ(u.user, "app");
    ASSERT_STREQ(u.password, "pw");
    tlsc_redis_url_free(&u);
}

TEST(credentials_are_percent_decoded)
{
    /* "p@ss:w/rd%" and a user "a:b" that needs escaping; a raw '@' in the password works too. */
    tlsc_redis_url_t u = parse_ok("redis://a%3Ab:p%40ss%3aw%2Frd%25@h");

    ASSERT_STREQ(u.user, "a:b");
    ASSERT_STREQ(u.password, "p@ss:w/rd%");
    ASSERT_STREQ(u.host, "h");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://:a@b@h:7");
    ASSERT_STREQ(u.password, "a@b");
    ASSERT_STREQ(u.host, "h");
    ASSERT_EQ(u.port, 7);
    tlsc_redis_url_free(&u);
}

TEST(unix_socket_forms)
{
    tlsc_redis_url_t u = parse_ok("unix:///run/redis/redis.sock");
    char d[128];

    ASSERT(u.host == NULL);
    ASSERT_STREQ(u.path, "/run/redis/redis.sock");
    ASSERT_EQ(u.db, 0);
    tlsc_redis_url_free(&u);

    u = parse_ok("unix:/tmp/r.sock?db=5");
    ASSERT_STREQ(u.path, "/tmp/r.sock");
    ASSERT_EQ(u.db, 5);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "unix:/tmp/r.sock?db=5");
    tlsc_redis_url_free(&u);

    u = parse_ok("unix://:pw%21@/tmp/r.sock?db=1");
    ASSERT_STREQ(u.password, "pw!");
    ASSERT_STREQ(u.path, "/tmp/r.sock");
    ASSERT_EQ(u.db, 1);
    tlsc_redis_url_free(&u);
}

TEST(host_named_unix_is_tcp)
{
    /* redis://unix:6379 names a TCP host called unix; only unix:/ and unix:/// are sockets. */
    tlsc_redis_url_t u = parse_ok("redis://unix:6379/2");
    char d[128];

    ASSERT_STREQ(u.host, "unix");
    ASSERT_EQ(u.port, 6379);
    ASSERT_EQ(u.db, 2);
    ASSERT(u.path == NULL);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "unix:6379/2");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://:pw@unix:6380");
    ASSERT_STREQ(u.host, "unix");
    ASSERT_EQ(u.port, 6380);
    ASSERT(u.path == NULL);
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://unix");
    ASSERT_STREQ(u.host, "unix");
    ASSERT_EQ(u.port, 6379);
    tlsc_redis_url_free(&u);
    assert_rejected("redis://unix:/tmp/r.sock", "unix socket is not accepted");
    assert_rejected("unix:6379", "must be absolute");
}

TEST(query_db_on_tcp_url)
{
    tlsc_redis_url_t u = parse_ok("redis://h:1?db=9");

    ASSERT_EQ(u.db, 9);
    tlsc_redis_url_free(&u);
    u = parse_ok("redis://h:1/9?db=9");
    ASSERT_EQ(u.db, 9);
    tlsc_redis_url_free(&u);
    assert_rejected("redis://h:1/9?db=8", "two different databases");
}

TEST(bounds_on_port_and_db)
{
    tlsc_redis_url_t u = parse_ok("redis://h:65535/65535");

    ASSERT_EQ(u.port, 65535);
    ASSERT_EQ(u.db, 65535);
    tlsc_redis_url_free(&u);
    u = parse_ok("redis://h:1");
    ASSERT_EQ(u.port, 1);
    tlsc_redis_url_free(&u);

    assert_rejected("redis://h:0", "bad port (1..65535) in \"h:0\"");
    assert_rejected("redis://h:65536", "bad port (1..65535) in \"h:65536\"");
    assert_rejected("redis://h:abc", "bad port (1..65535) in \"h:abc\"");
    assert_rejected("redis://h:", "bad port (1..65535) in \"h:\"");
    assert_rejected("redis://h:-1", "bad port");
    assert_rejected("redis://h:+80", "bad port");
    assert_rejected("redis://h:99999999999999999999", "bad port");
    assert_rejected("redis://h:1/65536", "bad database \"65536\"");
    assert_rejected("redis://h:1/x", "bad database \"x\"");
    assert_rejected("redis://h:1/-1", "bad database");
    assert_rejected("unix:/tmp/s?db=abc", "bad database \"abc\"");
}

TEST(rediss_is_redis_over_tls)
{
    tlsc_redis_url_t u = parse_ok("rediss://:pw@redis.example:6380/2");
    char d[128];

    ASSERT_EQ(u.tls, 1);
    ASSERT_STREQ(u.host, "redis.example");
    ASSERT_EQ(u.port, 6380);
    ASSERT_EQ(u.db, 2);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "rediss://redis.example:6380/2");
    tlsc_redis_url_free(&u);
    u = parse_ok("redis://h");
    ASSERT_EQ(u.tls, 0);
    tlsc_redis_url_free(&u);
    assert_rejected("rediss://h:99999", "bad port");
}

TEST(missing_or_bad_host)
{
    assert_rejected("redis://", "missing host");
    assert_rejected("redis://:6379", "missing host");
    assert_rejected("redis://:pw@:6379", "missing host");
    assert_rejected("redis://:pw@/0", "missing host");
    assert_rejected("redis://ho st:1", "bad character in host");
    assert_rejected("redis://h\x01:1", "bad character in host (allowed: A-Z a-z 0-9 . - _) in \"h?:1\"");
    assert_rejected("redis://::1:6379", "in brackets");
    assert_rejected("redis://[::1:6379", "without ']'");
    assert_rejected("redis://[]:1", "bad IPv6");
    assert_rejected("redis://[zz::1]:1", "bad IPv6");
    assert_rejected("redis://[::1]x", "garbage after the IPv6");
    assert_rejected("redis://[::1]:0", "bad port");
}

TEST(overlong_parts)
{
    char url[6000], *p;

    /* A 254-byte host, one past the bound of a DNS name (the common address parser's). */
    p = url + sprintf(url, "redis://");
    memset(p, 'a', 254);
    strcpy(p + 254, ":1");
    assert_rejected(url, "host longer than 253");
    /* 253 is fine. */
    strcpy(p + 253, ":1");
    {
        tlsc_redis_url_t u = parse_ok(url);
        ASSERT_EQ(strlen(u.host), 253);
        tlsc_redis_url_free(&u);
    }

    /* A 108-byte socket path does not fit sun_path. */
    p = url + sprintf(url, "unix:/");
    memset(p, 'x', 107);
    p[107] = '\0';
    assert_rejected(url, "path longer than 107");

    /* A 1025-byte password, and a whole URL over 4096 bytes. */
    p = url + sprintf(url, "redis://:");
    memset(p, 'p', 1025);
    strcpy(p + 1025, "@h");
    assert_rejected(url, "password is longer than 1024");
    p = url + sprintf(url, "redis://h/");
    memset(p, '1', 5000);
    p[5000] = '\0';
    assert_rejected(url, "longer than 4096");
}

TEST(bad_escapes_and_nul_in_credentials)
{
    assert_rejected("redis://:pw%@h", "bad percent-escape in the password");
    assert_rejected("redis://:pw%4@h", "bad percent-escape in the password");
    assert_rejected("redis://:pw%zz@h", "bad percent-escape in the password");
    assert_rejected("redis://us%g0:pw@h", "bad percent-escape in the user name");
    assert_rejected("redis://:pw%00x@h", "NUL byte (%00)");
    assert_rejected("redis://u%00:pw@h", "user name holds a NUL");
    assert_rejected("redis://:pw%0A@h", "control character");
    assert_rejected("redis://:pw\t@h", "control character");
}

TEST(a_user_alone_has_no_password_here_and_an_empty_one_is_refused)
{
    tlsc_redis_url_t u = parse_ok("redis://just%40user@h");
    char why[128];

    ASSERT_STREQ(u.user, "just@user"); /* its password comes from --redis-pass-file or the environment */
    ASSERT(u.password == NULL);
    tlsc_redis_url_free(&u);
    assert_rejected("redis://@h", "empty credentials");
    assert_rejected("redis://user:@h", "empty password");
    assert_rejected("redis://:@h", "empty password");

    /* A password from a file or the environment meets the URL's rules. */
    ASSERT_EQ(tlsc_redis_password_check("s3cret pass", why, sizeof(why)), 0);
    ASSERT_EQ(tlsc_redis_password_check("", why, sizeof(why)), -1);
    ASSERT(strstr(why, "empty") != NULL);
    ASSERT_EQ(tlsc_redis_password_check("hunter2\x1b[2J", why, sizeof(why)), -1);
    ASSERT(strstr(why, "control") != NULL && strstr(why, "hunter2") == NULL);
    {
        char big[1100];
        memset(big, 'p', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ASSERT_EQ(tlsc_redis_password_check(big, why, sizeof(why)), -1);
        ASSERT(strstr(why, "1024") != NULL);
        big[1024] = '\0';
        ASSERT_EQ(tlsc_redis_password_check(big, why, sizeof(why)), 0);
    }
}

TEST(trailing_garbage_and_unknown_parts)
{
    assert_rejected("redis://h:1/0/extra", "bad database \"0/extra\"");
    assert_rejected("redis://h:1#frag", "bad port (1..65535) in \"h:1#frag\"");
    assert_rejected("redis://h:1?timeout=3", "unknown parameter \"timeout\"");
    assert_rejected("redis://h:1?db", "without a value");
    assert_rejected("redis://h:1?db=1&", "trailing '&'");
    assert_rejected("unix:/tmp/s?db=1&password=hunter2", "unknown parameter \"password\"");
    assert_rejected("unix:relative.sock", "must be absolute");
    assert_rejected("unix://", "must be absolute");
    assert_rejected("unix://host/tmp/s", "names no host");
    assert_rejected("unix:/tmp/a#b", "bad character in the unix socket path");
    assert_rejected("http://h:1", "must start with");
    assert_rejected("", "empty");
    assert_rejected(NULL, "empty");
}

TEST(errors_and_describe_never_show_credentials)
{
    static const char *const urls[] = {
        "redis://hunter2user:hunter2pw@h:0",     "redis://hunter2user:hunter2pw@h:1/x",   "redis://hunter2user:hunter2pw%@h",
        "redis://hunter2user:hunter2pw@h:1?a=b", "redis://hunter2user:hunter2pw@h\x7f:1", "unix://hunter2user:hunter2pw@host/x",
        "redis://hunter2user%zz:hunter2pw@h",    "http://hunter2user:hunter2pw@h",
    };
    char err[256], d[256];
    tlsc_redis_url_t u;

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        ASSERT_EQ(tlsc_redis_url_parse(urls[i], &u, err, sizeof(err)), -1);
        ASSERT(strstr(err, "hunter2") == NULL);
    }
    u = parse_ok("redis://hunter2user:hunter2pw@h:6379/1");
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "h:6379/1");
    tlsc_redis_url_free(&u);
    u = parse_ok("unix://hunter2user:hunter2pw@/tmp/s");
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "unix:/tmp/s?db=0");
    tlsc_redis_url_free(&u);
}

TEST(tiny_error_buffer_is_safe)
{
    tlsc_redis_url_t u;
    char err[8];

    ASSERT_EQ(tlsc_redis_url_parse("redis://h:0", &u, err, sizeof(err)), -1);
    ASSERT_EQ(strlen(err), 7);
    ASSERT_EQ(tlsc_redis_url_parse("redis://h:0", &u, NULL, 0), -1);
}

TEST(sentinel_list_master_name_and_db)
{
    tlsc_redis_url_t u = parse_ok("redis-sentinel://10.0.0.1:26380,sen2,[::1]:26381/mymaster/2"), c;
    char d[128];

    ASSERT(u.host == NULL && u.path == NULL);
    ASSERT_EQ(u.nsentinels, 3);
    ASSERT_STREQ(u.sentinels[0].host, "10.0.0.1");
    ASSERT_EQ(u.sentinels[0].port, 26380);
    ASSERT_STREQ(u.sentinels[1].host, "sen2");
    ASSERT_EQ(u.sentinels[1].port, 26379);
    ASSERT_STREQ(u.sentinels[2].host, "::1");
    ASSERT_EQ(u.sentinels[2].port, 26381);
    ASSERT_STREQ(u.master_name, "mymaster");
    ASSERT_EQ(u.db, 2);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "sentinel:mymaster/2");
    ASSERT_EQ(tlsc_redis_url_copy(&c, &u), 0);
    tlsc_redis_url_free(&u);
    ASSERT_EQ(c.nsentinels, 3);
    ASSERT_STREQ(c.sentinels[2].host, "::1");
    ASSERT_STREQ(c.master_name, "mymaster");
    tlsc_redis_url_free(&c);

    u = parse_ok("REDIS-SENTINEL://app:s3cret@h1/m-1.x_y?db=5");
    ASSERT_EQ(u.nsentinels, 1);
    ASSERT_STREQ(u.user, "app");
    ASSERT_STREQ(u.password, "s3cret");
    ASSERT_EQ(u.db, 5);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT(strstr(d, "s3cret") == NULL && strstr(d, "app") == NULL);
    tlsc_redis_url_free(&u);
}

TEST(sentinel_bounds_and_hostile_parts)
{
    char url[1024];
    size_t pos;

    assert_rejected("redis-sentinel://h1,h2", "no master name");
    assert_rejected("redis-sentinel://h1/", "bad master name");
    assert_rejected("redis-sentinel://h1/a b", "bad master name");
    assert_rejected("redis-sentinel://h1/a%20b", "bad master name");
    assert_rejected("redis-sentinel://h1/0123456789012345678901234567890123456789012345678901234567890123456789",
                    "bad master name");
    assert_rejected("redis-sentinel://h1,,h2/m", "empty sentinel");
    assert_rejected("redis-sentinel://,h2/m", "empty sentinel");
    assert_rejected("redis-sentinel:///m", "empty sentinel");
    assert_rejected("redis-sentinel://h1,h2:0/m", "sentinel 2");
    assert_rejected("redis-sentinel://h1,h2:65536/m", "sentinel 2");
    assert_rejected("redis-sentinel://h1/m/70000", "bad database");
    assert_rejected("redis-sentinel://h1/m/1?db=2", "two different databases");
    assert_rejected("redis-sentinel://user:hunter2pw@h1,h2:x/m", "sentinel 2");
    pos = (size_t)snprintf(url, sizeof(url), "redis-sentinel://");
    for (int i = 0; i < 17; i++)
        pos += (size_t)snprintf(url + pos, sizeof(url) - pos, "h%d:26379,", i);
    snprintf(url + pos - 1, sizeof(url) - pos + 1, "/m");
    assert_rejected(url, "more than 16 sentinels");
    {
        tlsc_redis_url_t u;
        char err[256] = "";

        ASSERT_EQ(tlsc_redis_url_parse("redis-sentinel://user:hunter2pw@h1,h2:x/m", &u, err, sizeof(err)), -1);
        ASSERT(strstr(err, "hunter2pw") == NULL);
    }
}

TEST(cluster_seeds)
{
    tlsc_redis_url_t u = parse_ok("redis-cluster://app@10.0.0.1:7000,[::1]:7001,cache.example");
    char d[256];

    ASSERT(u.cluster && !u.tls);
    ASSERT_EQ(u.nseeds, 3);
    ASSERT_STREQ(u.seeds[0].host, "10.0.0.1");
    ASSERT_EQ(u.seeds[0].port, 7000);
    ASSERT_STREQ(u.seeds[1].host, "::1");
    ASSERT_EQ(u.seeds[1].port, 7001);
    ASSERT_STREQ(u.seeds[2].host, "cache.example");
    ASSERT_EQ(u.seeds[2].port, 6379);
    ASSERT_STREQ(u.host, "10.0.0.1"); /* the first seed, for whoever wants one node */
    ASSERT_EQ(u.port, 7000);
    ASSERT_STREQ(u.user, "app");
    ASSERT(u.password == NULL);
    ASSERT_EQ(u.db, 0);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "redis-cluster://10.0.0.1:7000,[::1]:7001,cache.example:6379");
    tlsc_redis_url_free(&u);
    ASSERT(u.seeds == NULL && u.nseeds == 0);

    u = parse_ok("REDIS-CLUSTER://h:1/0");
    ASSERT_EQ(u.nseeds, 1);
    ASSERT_EQ(u.port, 1);
    tlsc_redis_url_free(&u);
}

TEST(cluster_bounds_and_refusals)
{
    char url[32 * 16 + 64];
    size_t pos = (size_t)sprintf(url, "redis-cluster://");
    tlsc_redis_url_t u;

    for (int i = 0; i < 32; i++)
        pos += (size_t)sprintf(url + pos, "%sh%d:%d", i > 0 ? "," : "", i, 7000 + i);
    u = parse_ok(url);
    ASSERT_EQ(u.nseeds, 32);
    ASSERT_EQ(u.seeds[31].port, 7031);
    tlsc_redis_url_free(&u);
    sprintf(url + pos, ",h32:7032");
    assert_rejected(url, "more than 32 cluster seed nodes");
    assert_rejected("redis-cluster://h1:7000,,h2:7001", "empty cluster seed");
    assert_rejected("redis-cluster://h1:7000,", "empty cluster seed");
    assert_rejected("redis-cluster://", "empty cluster seed");
    assert_rejected("redis-cluster://h1:7000,h2:99999", "h2:99999");
    assert_rejected("redis-cluster://h1:7000/1", "only database 0");
    assert_rejected("redis-cluster://h1:7000?db=2", "only database 0");
    assert_rejected("redis-cluster://u:s3cretpw@h1:7000,h2:x", "h2:x");
    ASSERT_EQ(tlsc_redis_url_parse("redis-cluster://u:s3cretpw@h1:7000,h2:x", &u, url, sizeof(url)), -1);
    ASSERT(strstr(url, "s3cretpw") == NULL);
}

TEST(rediss_sentinel_and_rediss_cluster_are_the_same_over_tls)
{
    tlsc_redis_url_t u = parse_ok("rediss-sentinel://app:s3cretpw@10.0.0.1:26380,[::1]/mymaster/2"), c;
    char d[256];

    ASSERT(u.tls && !u.cluster);
    ASSERT_EQ(u.nsentinels, 2);
    ASSERT_STREQ(u.sentinels[1].host, "::1");
    ASSERT_EQ(u.sentinels[1].port, 26379);
    ASSERT_STREQ(u.master_name, "mymaster");
    ASSERT_EQ(u.db, 2);
    ASSERT(u.host == NULL && u.path == NULL);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "rediss-sentinel:mymaster/2");
    /* The sentinels' own credentials come from elsewhere; a copy keeps them, free wipes them. */
    ASSERT(u.sentinel_user == NULL && u.sentinel_password == NULL);
    u.sentinel_user = strdup("watcher");
    u.sentinel_password = strdup("sentpw77");
    ASSERT_EQ(tlsc_redis_url_copy(&c, &u), 0);
    ASSERT(c.tls);
    ASSERT_STREQ(c.sentinel_user, "watcher");
    ASSERT_STREQ(c.sentinel_password, "sentpw77");
    tlsc_redis_url_describe(&c, d, sizeof(d));
    ASSERT(strstr(d, "sentpw77") == NULL && strstr(d, "watcher") == NULL);
    tlsc_redis_url_free(&c);
    ASSERT(c.sentinel_password == NULL);
    tlsc_redis_url_free(&u);

    u = parse_ok("REDISS-CLUSTER://app@10.0.0.1:7000,[::1]:7001,cache.example");
    ASSERT(u.tls && u.cluster);
    ASSERT_EQ(u.nseeds, 3);
    ASSERT_STREQ(u.host, "10.0.0.1");
    ASSERT_EQ(u.port, 7000);
    tlsc_redis_url_describe(&u, d, sizeof(d));
    ASSERT_STREQ(d, "rediss-cluster://10.0.0.1:7000,[::1]:7001,cache.example:6379");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis-cluster://h:1"); /* the plain forms stay plain */
    ASSERT(!u.tls);
    tlsc_redis_url_free(&u);
    u = parse_ok("redis-sentinel://h/m");
    ASSERT(!u.tls);
    tlsc_redis_url_free(&u);

    assert_rejected("rediss-cluster://h1:7000/1", "only database 0");
    assert_rejected("rediss-sentinel://h1,h2", "no master name");
    assert_rejected("rediss-sentinels://h1/m", "must start with");
    assert_rejected("rediss-sentinel://u:s3cretpw@h1,h2:x/m", "sentinel 2");
    ASSERT_EQ(tlsc_redis_url_parse("rediss-sentinel://u:s3cretpw@h1,h2:x/m", &u, d, sizeof(d)), -1);
    ASSERT(strstr(d, "s3cretpw") == NULL);
}

/* Writes `text` to a fresh file of mode `mode` under $TMPDIR (or /tmp); returns its path (static). */
static const char *secret_file(const char *text, int mode)
{
    static char path[512];
    const char *dir = getenv("TMPDIR");
    FILE *f;

    snprintf(path, sizeof(path), "%s/test_redis_url.%d.pass", dir != NULL ? dir : "/tmp", (int)getpid());
    unlink(path);
    ASSERT((f = fopen(path, "w")) != NULL);
    fputs(text, f);
    fclose(f);
    ASSERT_EQ(chmod(path, (mode_t)mode), 0);
    return path;
}

TEST(tools_take_the_password_from_a_file_or_the_environment_in_one_place)
{
    tlsc_redis_url_t u;
    char err[512];
    const char *f = secret_file("file pw 7\n", 0600);

    u = parse_ok("redis://app@h:1");
    ASSERT_EQ(tlsc_redis_url_take_password(&u, f, "env pw", err, sizeof(err)), 0); /* the file first */
    ASSERT_STREQ(u.password, "file pw 7");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://h:1");
    ASSERT_EQ(tlsc_redis_url_take_password(&u, NULL, "env pw", err, sizeof(err)), 0);
    ASSERT_STREQ(u.password, "env pw");
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://h:1"); /* no password anywhere, no user: fine */
    ASSERT_EQ(tlsc_redis_url_take_password(&u, NULL, "", err, sizeof(err)), 0);
    ASSERT(u.password == NULL);
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://:urlpw9@h:1"); /* two places: refused, neither echoed */
    ASSERT_EQ(tlsc_redis_url_take_password(&u, NULL, "envpw8", err, sizeof(err)), -1);
    ASSERT(strstr(err, "TLSCACHE_REDIS_PASS") != NULL && strstr(err, "urlpw9") == NULL && strstr(err, "envpw8") == NULL);
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://app@h:1"); /* a user and no password */
    ASSERT_EQ(tlsc_redis_url_take_password(&u, NULL, NULL, err, sizeof(err)), -1);
    ASSERT(strstr(err, "--redis-pass-file FILE or TLSCACHE_REDIS_PASS") != NULL);
    tlsc_redis_url_free(&u);

    u = parse_ok("redis://h:1"); /* a control byte in the variable */
    ASSERT_EQ(tlsc_redis_url_take_password(&u, NULL, "bad\x01pw", err, sizeof(err)), -1);
    ASSERT(strstr(err, "TLSCACHE_REDIS_PASS") != NULL && strstr(err, "bad") == NULL);
    tlsc_redis_url_free(&u);

    f = secret_file("open pw 5\n", 0640); /* others may read it */
    u = parse_ok("redis://h:1");
    ASSERT_EQ(tlsc_redis_url_take_password(&u, f, NULL, err, sizeof(err)), -1);
    ASSERT(strstr(err, "--redis-pass-file") != NULL && strstr(err, "chmod 600") != NULL && strstr(err, "open pw") == NULL);
    ASSERT(u.password == NULL);
    tlsc_redis_url_free(&u);
    unlink(f);
}

int main(void)
{
    RUN(host_port_db);
    RUN(defaults_are_port_6379_db_0);
    RUN(ipv6_in_brackets);
    RUN(password_only_and_user_password);
    RUN(credentials_are_percent_decoded);
    RUN(unix_socket_forms);
    RUN(host_named_unix_is_tcp);
    RUN(query_db_on_tcp_url);
    RUN(bounds_on_port_and_db);
    RUN(rediss_is_redis_over_tls);
    RUN(missing_or_bad_host);
    RUN(overlong_parts);
    RUN(bad_escapes_and_nul_in_credentials);
    RUN(a_user_alone_has_no_password_here_and_an_empty_one_is_refused);
    RUN(trailing_garbage_and_unknown_parts);
    RUN(errors_and_describe_never_show_credentials);
    RUN(tiny_error_buffer_is_safe);
    RUN(sentinel_list_master_name_and_db);
    RUN(sentinel_bounds_and_hostile_parts);
    RUN(cluster_seeds);
    RUN(cluster_bounds_and_refusals);
    RUN(rediss_sentinel_and_rediss_cluster_are_the_same_over_tls);
    RUN(tools_take_the_password_from_a_file_or_the_environment_in_one_place);
    TEST_DONE();
}
