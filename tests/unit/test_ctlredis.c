#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis.h"
#include "redis_sync.h"
#include "test.h"

/*
 * The tools' blocking Redis client (ctl/redis_sync.h): a sentinel's answer is read only when it
 * is an array of a bounded host and a port in range; a link refuses a reply past the bounded
 * reader's limits, and a Redis that never answers costs the timeout, not a hang.
 */

/* Parses `resp` with the bounded reader; NULL when it refuses it. */
static redisReply *parse(const char *resp)
{
    redisReader *rd = tlsc_redis_reader_new();
    void *reply = NULL;

    ASSERT(rd != NULL);
    ASSERT(redisReaderFeed(rd, resp, strlen(resp)) == REDIS_OK);
    if (redisReaderGetReply(rd, &reply) != REDIS_OK)
        reply = NULL;
    tlsc_redis_reader_free(rd);
    return reply;
}

static int addr_of(const char *resp, char *host, size_t hostlen, unsigned *port)
{
    redisReply *r = parse(resp);
    int rc;

    ASSERT(r != NULL);
    rc = tlsc_ctlredis_master_addr(r, host, hostlen, port);
    freeReplyObject(r);
    return rc;
}

TEST(master_addr_reads_a_host_and_a_port)
{
    char host[TLSC_CTLREDIS_HOST_MAX + 1];
    unsigned port = 0;

    ASSERT_EQ(addr_of("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n", host, sizeof(host), &port), 1);
    ASSERT_STREQ(host, "127.0.0.1");
    ASSERT_EQ(port, 6380);
    ASSERT_EQ(addr_of("*2\r\n$11\r\n2001:db8::1\r\n$5\r\n65535\r\n", host, sizeof(host), &port), 1);
    ASSERT_STREQ(host, "2001:db8::1");
    ASSERT_EQ(port, 65535);
    ASSERT_EQ(addr_of("*2\r\n$14\r\nredis-1.site_a\r\n$1\r\n1\r\n", host, sizeof(host), &port), 1);
    ASSERT_STREQ(host, "redis-1.site_a");
}

TEST(master_addr_nil_is_an_unknown_master)
{
    char host[TLSC_CTLREDIS_HOST_MAX + 1];
    unsigned port;

    ASSERT_EQ(addr_of("*-1\r\n", host, sizeof(host), &port), 0);
    ASSERT_EQ(addr_of("$-1\r\n", host, sizeof(host), &port), 0);
}

TEST(master_addr_refuses_hostile_answers)
{
    static const char *const bad[] = {
        "*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n",       /* port 0 */
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n65536\r\n",   /* port past 65535 */
        "*2\r\n$9\r\n127.0.0.1\r\n$2\r\n-1\r\n",      /* a sign */
        "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n6379x\r\n",   /* trailing bytes */
        "*2\r\n$9\r\n127.0.0.1\r\n$0\r\n\r\n",        /* no port */
        "*2\r\n$9\r\n127.0.0.1\r\n:6379\r\n",         /* a port as an integer */
        "*2\r\n$0\r\n\r\n$4\r\n6379\r\n",             /* no host */
        "*2\r\n$9\r\n127 0.0.1\r\n$4\r\n6379\r\n",    /* a space */
        "*2\r\n$9\r\nevil\nhost\r\n$4\r\n6379\r\n",   /* a newline */
        "*2\r\n$9\r\nevil/host\r\n$4\r\n6379\r\n",    /* a slash */
        "*2\r\n$8\r\n2001:db8\r\n$4\r\n6379\r\n",     /* colons, but not an IPv6 address */
        "*2\r\n$10\r\n[::1]:6379\r\n$4\r\n6379\r\n",  /* brackets and a port in the host */
        "*2\r\n$9\r\n127.0.0.1\r\n$6\r\n006379\r\n",  /* six digits */
        "*3\r\n$1\r\na\r\n$4\r\n6379\r\n$1\r\nx\r\n", /* three elements */
        "*1\r\n$1\r\na\r\n",                          /* one */
        "*2\r\n*1\r\n$1\r\na\r\n$4\r\n6379\r\n",      /* a nested array */
        "-ERR no such master\r\n",
        ":1\r\n",
        "+OK\r\n",
    };
    char host[TLSC_CTLREDIS_HOST_MAX + 1];
    unsigned port;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (addr_of(bad[i], host, sizeof(host), &port) != -1) {
            fprintf(stderr, "answer %zu was taken\n", i);
            ASSERT(0);
        }
    }
    ASSERT_EQ(tlsc_ctlredis_master_addr(NULL, host, sizeof(host), &port), -1);
}

TEST(master_addr_bounds_the_host)
{
    char resp[600], host[TLSC_CTLREDIS_HOST_MAX + 1], name[300];
    unsigned port;

    memset(name, 'a', sizeof(name));
    name[253] = '\0';
    snprintf(resp, sizeof(resp), "*2\r\n$253\r\n%s\r\n$4\r\n6379\r\n", name);
    ASSERT_EQ(addr_of(resp, host, sizeof(host), &port), 1); /* 253 bytes: a DNS name's most */
    ASSERT_EQ(strlen(host), 253);
    ASSERT_EQ(addr_of(resp, host, 100, &port), -1); /* and never past the caller's buffer */
    name[253] = 'a';
    name[254] = '\0';
    snprintf(resp, sizeof(resp), "*2\r\n$254\r\n%s\r\n$4\r\n6379\r\n", name);
    ASSERT_EQ(addr_of(resp, host, sizeof(host), &port), -1);
}

/* ---------------------------------------------------------------- a fake Redis on a unix socket */

/* Serves one connection: for each command read, writes `reply` (NULL: never answers). */
static pid_t fake_redis(const char *path, const char *reply)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    pid_t pid;

    ASSERT(lfd >= 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    unlink(path);
    ASSERT(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    ASSERT(listen(lfd, 4) == 0);
    if ((pid = fork()) == 0) {
        char buf[4096];
        int fd = accept(lfd, NULL, NULL);
        alarm(20); /* the test never leaves it behind */
        while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
            if (reply != NULL && write(fd, reply, strlen(reply)) < 0)
                break;
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void end(pid_t pid, const char *path)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(path);
}

/* Connects to a fake that answers every command with `reply`, runs PING; returns the error line. */
static int ping_fake(const char *reply, unsigned timeout_ms, char *err, size_t errlen)
{
    char path[64], url[80];
    tlsc_ctlredis_options_t o = {.url = url, .timeout_ms = timeout_ms};
    tlsc_ctlredis_t *r;
    const char *argv[1] = {"PING"};
    redisReply *rep;
    pid_t pid;
    int rc = -1;

    snprintf(path, sizeof(path), "/tmp/tlsc-ctlredis-%d.sock", (int)getpid());
    snprintf(url, sizeof(url), "unix://%s", path);
    pid = fake_redis(path, reply);
    ASSERT(tlsc_ctlredis_connect(&o, &r, err, errlen) == 0); /* no AUTH, no SELECT: nothing asked yet */
    ASSERT_EQ(tlsc_ctlredis_masters(r), 1);
    if ((rep = tlsc_ctlredis_command(r, 1, argv, NULL, err, errlen)) != NULL) {
        freeReplyObject(rep);
        rc = 0;
    }
    tlsc_ctlredis_free(r);
    end(pid, path);
    return rc;
}

TEST(link_reads_a_good_reply)
{
    char err[256];

    ASSERT_EQ(ping_fake("+PONG\r\n", 2000, err, sizeof(err)), 0);
}

TEST(link_refuses_a_reply_past_the_bounds)
{
    char err[256];

    ASSERT_EQ(ping_fake("*2000000000\r\n", 2000, err, sizeof(err)), -1);
    ASSERT(strstr(err, "past the bounds") != NULL);
    ASSERT_EQ(ping_fake("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 2000, err, sizeof(err)), -1); /* nested 5 deep */
    ASSERT(strstr(err, "past the bounds") != NULL);
}

TEST(link_refuses_garbage)
{
    char err[256];

    ASSERT_EQ(ping_fake("!garbage\r\n", 2000, err, sizeof(err)), -1);
    ASSERT(strstr(err, "protocol error") != NULL);
}

TEST(link_times_out_on_a_silent_redis)
{
    char err[256];
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_EQ(ping_fake(NULL, 300, err, sizeof(err)), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ASSERT(strstr(err, "timed out") != NULL);
    ASSERT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(master_addr_reads_a_host_and_a_port);
    RUN(master_addr_nil_is_an_unknown_master);
    RUN(master_addr_refuses_hostile_answers);
    RUN(master_addr_bounds_the_host);
    RUN(link_reads_a_good_reply);
    RUN(link_refuses_a_reply_past_the_bounds);
    RUN(link_refuses_garbage);
    RUN(link_times_out_on_a_silent_redis);
    TEST_DONE();
}
