/* This file's one job: prove server/redis.c (and the dial under it) against a real redis-server. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis.h"
#include "redis_url.h"
#include "test.h"

/*
 * The libuv Redis client against a real redis-server that each test starts on a free
 * loopback port (and ends by PID), plus a fake server that answers garbage. Every test runs
 * under an alarm() watchdog that kills the servers and fails the program if it hangs.
 */

#define REDIS_SERVER "/usr/bin/redis-server"
#define WATCHDOG_SEC 30

/* ================================ child processes ================================ */

static pid_t children[4];

static void children_kill(void)
{
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            kill(children[i], SIGCONT);
        }
    }
}

static void child_add(pid_t pid)
{
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
        if (children[i] <= 0) {
            children[i] = pid;
            return;
        }
    }
    ASSERT(!"too many children");
}

/* Kills and reaps one child; waitpid cannot hang after SIGKILL (and the watchdog runs). */
static void child_end(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    kill(pid, SIGCONT);
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
        if (children[i] == pid)
            children[i] = 0;
}

static void on_watchdog(int sig)
{
    static const char msg[] = "test_redis: watchdog fired, test hung\n";

    children_kill();
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(3);
    _exit(2);
}

static void on_abort(int sig)
{
    children_kill();
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

/* In a forked child: die with the test program, whatever kills it. */
static void child_setup(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    signal(SIGALRM, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
}

static unsigned free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ASSERT(fd >= 0);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/*
 * Sends raw bytes to 127.0.0.1:port and reads until `nlines` CRLF-terminated lines came
 * back (simple replies only), at most 2 s. Used to set Redis up behind the client's back.
 */
static int sync_cmd(unsigned port, const char *cmd, int nlines, char *out, size_t outlen)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    size_t got = 0;
    int fd, lines = 0, rc = -1;

    out[0] = '\0';
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
        goto done;
    for (int i = 0; i < 100 && lines < nlines && got + 1 < outlen; i++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&pfd, 1, 20) <= 0)
            continue;
        if ((n = read(fd, out + got, outlen - 1 - got)) <= 0)
            break;
        for (ssize_t k = 0; k < n; k++)
            if (out[got + (size_t)k] == '\n')
                lines++;
        got += (size_t)n;
    }
    out[got] = '\0';
    rc = lines >= nlines ? 0 : -1;
done:
    close(fd);
    return rc;
}

/* ================================ redis-server ================================ */

typedef struct {
    pid_t pid;
    unsigned port;
    char dir[64];
    char sock[128];
} redis_srv_t;

/* Starts redis-server on s->port (picked when 0) with `extra` arguments; waits for PING. */
static void redis_start(redis_srv_t *s, const char *const *extra)
{
    const char *argv[40];
    char port[8], out[128];
    pid_t parent = getpid();
    int n = 0, up = 0;

    if (s->port == 0)
        s->port = free_port();
    if (s->dir[0] == '\0') {
        strcpy(s->dir, "/tmp/tlsc-redis-XXXXXX");
        ASSERT(mkdtemp(s->dir) != NULL);
        snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
    }
    snprintf(port, sizeof(port), "%u", s->port);
    argv[n++] = REDIS_SERVER;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--loglevel";
    argv[n++] = "warning";
    for (; extra != NULL && *extra != NULL && n < 38; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;

    s->pid = fork();
    ASSERT(s->pid >= 0);
    if (s->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        child_setup(parent);
        dup2(devnull, 1);
        execv(REDIS_SERVER, (char *const *)argv);
        _exit(127);
    }
    child_add(s->pid);
    for (int i = 0; i < 200 && !up; i++) {
        up = sync_cmd(s->port, "PING\r\n", 1, out, sizeof(out)) == 0;
        if (!up)
            usleep(25 * 1000);
    }
    ASSERT(up);
}

static void redis_stop(redis_srv_t *s)
{
    if (s->pid > 0)
        child_end(s->pid);
    s->pid = 0;
}

static void redis_cleanup(redis_srv_t *s)
{
    char path[128];

    redis_stop(s);
    unlink(s->sock);
    snprintf(path, sizeof(path), "%s/dump.rdb", s->dir);
    unlink(path);
    rmdir(s->dir);
}

/* ================================ the client under test ================================ */

typedef struct {
    int done, status, type;
    long long integer;
    char str[512];
    size_t elements;
    int elem_type[4];
    long long elem_int[4];
} result_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick;
    tlsc_redis_t *r;
} client_t;

static void on_result(int status, const redisReply *reply, void *data)
{
    result_t *res = data;

    ASSERT(!res->done); /* called once */
    res->done = 1;
    res->status = status;
    if (reply == NULL)
        return;
    ASSERT_EQ(status, 0);
    res->type = reply->type;
    res->integer = reply->integer;
    if (reply->str != NULL)
        snprintf(res->str, sizeof(res->str), "%.*s", (int)reply->len, reply->str);
    res->elements = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
    for (size_t i = 0; i < res->elements && i < 4; i++) {
        res->elem_type[i] = reply->element[i]->type;
        res->elem_int[i] = reply->element[i]->integer;
    }
}

static void on_tick(uv_timer_t *t)
{
}

static void client_open_opts(client_t *c, const char *url, const tlsc_redis_options_t *opts)
{
    tlsc_redis_options_t o = *opts;
    tlsc_redis_url_t u;
    char err[256];

    ASSERT_EQ(uv_loop_init(&c->loop), 0);
    /* A 10 ms tick so that run_until re-checks its condition even when nothing happens. */
    uv_timer_init(&c->loop, &c->tick);
    uv_timer_start(&c->tick, on_tick, 10, 10);
    ASSERT_EQ(tlsc_redis_url_parse(url, &u, err, sizeof(err)), 0);
    o.url = &u;
    ASSERT_EQ(tlsc_redis_new(&c->loop, &o, &c->r, err, sizeof(err)), 0);
    tlsc_redis_url_free(&u); /* the client copied it */
}

static void client_open(client_t *c, const char *url)
{
    tlsc_redis_options_t o = {0};

    client_open_opts(c, url, &o);
}

/* Runs the loop until done(arg) or `ms` passed; returns done(arg). */
static int run_until(client_t *c, int (*done)(const void *), const void *arg, unsigned ms)
{
    uint64_t until;

    uv_update_time(&c->loop);
    until = uv_now(&c->loop) + ms;
    while (!done(arg) && uv_now(&c->loop) < until)
        uv_run(&c->loop, UV_RUN_ONCE);
    return done(arg);
}

static int is_ready(const void *r)
{
    return tlsc_redis_ready(r);
}

static int is_done(const void *res)
{
    return ((const result_t *)res)->done;
}

static int never(const void *unused)
{
    return 0;
}

static void client_close(client_t *c)
{
    if (c->r != NULL)
        tlsc_redis_close(c->r);
    c->r = NULL;
    uv_close((uv_handle_t *)&c->tick, NULL);
    ASSERT_EQ(uv_run(&c->loop, UV_RUN_DEFAULT), 0); /* bounded: no handle is left */
    ASSERT_EQ(uv_loop_close(&c->loop), 0);
}

/* Splits "SET k v" at spaces (arguments without spaces only). */
static int split(char *line, const char **argv, int max)
{
    int n = 0;

    for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok != NULL && n < max; tok = strtok_r(NULL, " ", &save))
        argv[n++] = tok;
    return n;
}

/* Sends one command; returns its immediate status (0 when queued). */
static int send_cmd(client_t *c, const char *cmd, unsigned timeout_ms, result_t *res)
{
    char line[512];
    const char *argv[16];
    int argc, status = 1;

    snprintf(line, sizeof(line), "%s", cmd);
    argc = split(line, argv, 16);
    memset(res, 0, sizeof(*res));
    if (tlsc_redis_command(c->r, argc, argv, NULL, timeout_ms, on_result, res, &status) == NULL)
        ASSERT(status < 0);
    else
        ASSERT_EQ(status, 0);
    return status;
}

/* Sends one command and runs the loop until its callback ran. */
static void cmd(client_t *c, const char *command, result_t *res)
{
    ASSERT_EQ(send_cmd(c, command, 2000, res), 0);
    ASSERT(run_until(c, is_done, res, 5000));
}

static void assert_ok(client_t *c, const char *command)
{
    result_t res;

    cmd(c, command, &res);
    ASSERT_EQ(res.status, 0);
    if (res.type != REDIS_REPLY_STATUS && res.type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "%s: unexpected reply type %d \"%s\"\n", command, res.type, res.str);
        abort();
    }
}

/*
 * Retries `command` until it succeeds, at most `ms`: for recovery after an outage, when the
 * client comes back by itself at a time the test does not know.
 */
static int eventually_ok(client_t *c, const char *command, unsigned ms)
{
    uint64_t until;

    uv_update_time(&c->loop);
    until = uv_now(&c->loop) + ms;
    while (uv_now(&c->loop) < until) {
        result_t res;

        if (tlsc_redis_ready(c->r) && send_cmd(c, command, 500, &res) == 0 && run_until(c, is_done, &res, 2000) &&
            res.status == 0 && res.type != REDIS_REPLY_ERROR)
            return 1;
        run_until(c, never, NULL, 20);
    }
    return 0;
}

static void url_for(char *url, size_t len, const char *userinfo, const redis_srv_t *s, const char *tail)
{
    snprintf(url, len, "redis://%s127.0.0.1:%u%s", userinfo, s->port, tail);
}

/* ================================ tests ================================ */

TEST(set_get_roundtrip)
{
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));

    assert_ok(&c, "SET tlsc:k hello");
    cmd(&c, "GET tlsc:k", &res);
    ASSERT_EQ(res.type, REDIS_REPLY_STRING);
    ASSERT_STREQ(res.str, "hello");
    cmd(&c, "GET tlsc:missing", &res);
    ASSERT_EQ(res.type, REDIS_REPLY_NIL);

    /* Binary values go through argvlen untouched. */
    {
        static const char value[] = {'a', '\0', '\r', '\n', 'b'};
        const char *argv[] = {"SET", "tlsc:bin", value};
        const size_t argvlen[] = {3, 8, sizeof(value)};
        const char *get[] = {"STRLEN", "tlsc:bin"};

        memset(&res, 0, sizeof(res));
        ASSERT(tlsc_redis_command(c.r, 3, argv, argvlen, 1000, on_result, &res, NULL) != NULL);
        ASSERT(run_until(&c, is_done, &res, 3000));
        ASSERT_EQ(res.type, REDIS_REPLY_STATUS);
        memset(&res, 0, sizeof(res));
        ASSERT(tlsc_redis_command(c.r, 2, get, NULL, 1000, on_result, &res, NULL) != NULL);
        ASSERT(run_until(&c, is_done, &res, 3000));
        ASSERT_EQ(res.integer, sizeof(value));
    }
    /* An error reply is a reply: status 0, the caller judges it. */
    cmd(&c, "NOSUCHCOMMAND x", &res);
    ASSERT_EQ(res.status, 0);
    ASSERT_EQ(res.type, REDIS_REPLY_ERROR);

    client_close(&c);
    redis_cleanup(&s);
}

TEST(multi_exec_pipeline_returns_the_exec_array)
{
    static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"};
    const char *hset[] = {"HSET", "tlsc:sess:ab", "der", "xyz", "sni", "a.example"};
    const char *expire[] = {"EXPIRE", "tlsc:sess:ab", "60"};
    const int argc[] = {1, 6, 3, 1};
    const char *const *argv[] = {multi, hset, expire, exec};
    redis_srv_t s = {0};
    client_t c;
    result_t res = {0};
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));

    ASSERT(tlsc_redis_send(c.r, 4, argc, argv, NULL, 1000, on_result, &res, NULL) != NULL);
    ASSERT(run_until(&c, is_done, &res, 3000));
    ASSERT_EQ(res.status, 0);
    ASSERT_EQ(res.type, REDIS_REPLY_ARRAY);
    ASSERT_EQ(res.elements, 2);
    ASSERT_EQ(res.elem_type[0], REDIS_REPLY_INTEGER);
    ASSERT_EQ(res.elem_int[0], 2); /* two new fields */
    ASSERT_EQ(res.elem_int[1], 1); /* the TTL was set */
    cmd(&c, "HGET tlsc:sess:ab sni", &res);
    ASSERT_STREQ(res.str, "a.example");
    cmd(&c, "TTL tlsc:sess:ab", &res);
    ASSERT(res.integer > 0 && res.integer <= 60);

    client_close(&c);
    redis_cleanup(&s);
}

typedef struct {
    int calls;
    long long last;
    int in_order;
} order_t;

static void on_incr(int status, const redisReply *reply, void *data)
{
    order_t *o = data;

    ASSERT_EQ(status, 0);
    if (reply->integer != o->last + 1)
        o->in_order = 0;
    o->last = reply->integer;
    o->calls++;
}

static int hundred_calls(const void *o)
{
    return ((const order_t *)o)->calls == 100;
}

TEST(pipelined_requests_complete_in_order)
{
    const char *incr[] = {"INCR", "tlsc:counter"};
    redis_srv_t s = {0};
    client_t c;
    order_t o = {.in_order = 1};
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    /* All issued in one loop iteration: they go out in one write and come back in order. */
    for (int i = 0; i < 100; i++)
        ASSERT(tlsc_redis_command(c.r, 2, incr, NULL, 2000, on_incr, &o, NULL) != NULL);
    ASSERT(run_until(&c, hundred_calls, &o, 5000));
    ASSERT(o.in_order);
    ASSERT_EQ(o.last, 100);

    client_close(&c);
    redis_cleanup(&s);
}

TEST(requirepass_with_an_escaped_password)
{
    static const char *const args[] = {"--requirepass", "p@ss:w/rd", NULL};
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[128];

    redis_start(&s, args);
    url_for(url, sizeof(url), ":p%40ss%3Aw%2Frd@", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    assert_ok(&c, "SET tlsc:a 1");
    cmd(&c, "GET tlsc:a", &res);
    ASSERT_STREQ(res.str, "1");

    client_close(&c);
    redis_cleanup(&s);
}

TEST(wrong_password_is_retried_until_redis_accepts_it)
{
    static const char *const args[] = {"--requirepass", "right", NULL};
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[128], out[256];

    redis_start(&s, args);
    url_for(url, sizeof(url), ":wrong@", &s, "");
    client_open(&c, url);
    run_until(&c, never, NULL, 300);
    ASSERT(!tlsc_redis_ready(c.r));
    ASSERT_EQ(send_cmd(&c, "GET x", 100, &res), UV_ENOTCONN);

    /* The operator changes the password to the one the client has: it gets in by itself. */
    ASSERT_EQ(sync_cmd(s.port, "AUTH right\r\nCONFIG SET requirepass wrong\r\n", 2, out, sizeof(out)), 0);
    ASSERT(strstr(out, "+OK\r\n+OK\r\n") != NULL);
    ASSERT(run_until(&c, is_ready, c.r, 8000));
    assert_ok(&c, "SET tlsc:b 2");

    client_close(&c);
    redis_cleanup(&s);
}

TEST(acl_user_from_the_url)
{
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[128], out[256];

    redis_start(&s, NULL);
    ASSERT_EQ(sync_cmd(s.port, "ACL SETUSER tlsc on >tlscpw ~* &* +@all\r\n", 1, out, sizeof(out)), 0);
    ASSERT_STREQ(out, "+OK\r\n");
    url_for(url, sizeof(url), "tlsc:tlscpw@", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    cmd(&c, "ACL WHOAMI", &res);
    ASSERT_STREQ(res.str, "tlsc");
    client_close(&c);

    /* The right password for another user does not get in. */
    url_for(url, sizeof(url), "nobody:tlscpw@", &s, "");
    client_open(&c, url);
    run_until(&c, never, NULL, 300);
    ASSERT(!tlsc_redis_ready(c.r));
    client_close(&c);
    redis_cleanup(&s);
}

TEST(select_db_from_the_url)
{
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "/3");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    cmd(&c, "CLIENT INFO", &res);
    ASSERT(strstr(res.str, " db=3 ") != NULL);
    client_close(&c);

    /* A database Redis does not have fails the handshake: never ready. */
    url_for(url, sizeof(url), "", &s, "/999");
    client_open(&c, url);
    run_until(&c, never, NULL, 300);
    ASSERT(!tlsc_redis_ready(c.r));
    client_close(&c);
    redis_cleanup(&s);
}

TEST(unix_socket_url)
{
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[200];
    const char *args[] = {"--unixsocket", NULL, "--unixsocketperm", "700", NULL};

    strcpy(s.dir, "/tmp/tlsc-redis-XXXXXX");
    ASSERT(mkdtemp(s.dir) != NULL);
    snprintf(s.sock, sizeof(s.sock), "%s/redis.sock", s.dir);
    args[1] = s.sock;
    redis_start(&s, args);
    snprintf(url, sizeof(url), "unix:%s?db=2", s.sock);
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    assert_ok(&c, "SET tlsc:u 1");
    cmd(&c, "CLIENT INFO", &res);
    ASSERT(strstr(res.str, " db=2 ") != NULL);
    ASSERT(strstr(res.str, "laddr=/") != NULL || strstr(res.str, "addr=/") != NULL);

    client_close(&c);
    redis_cleanup(&s);
}

TEST(paused_redis_times_requests_out_then_recovers)
{
    tlsc_redis_options_t o = {.connect_timeout_ms = 300, .stall_ms = 300};
    redis_srv_t s = {0};
    client_t c;
    result_t res[3], late;
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open_opts(&c, url, &o);
    ASSERT(run_until(&c, is_ready, c.r, 3000));

    ASSERT_EQ(kill(s.pid, SIGSTOP), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(send_cmd(&c, "GET tlsc:p", 200, &res[i]), 0);
    ASSERT(run_until(&c, is_done, &res[2], 5000));
    for (int i = 0; i < 3; i++) {
        ASSERT(res[i].done);
        ASSERT_EQ(res[i].status, UV_ETIMEDOUT);
    }
    /* A reply is overdue: new requests fail at once instead of queueing behind it. */
    ASSERT(!tlsc_redis_ready(c.r));
    ASSERT_EQ(send_cmd(&c, "GET tlsc:p", 200, &late), UV_EAGAIN);

    /* Still paused: the link is dropped as stalled and attempts fail; the loop keeps running. */
    run_until(&c, never, NULL, 1000);
    ASSERT(!tlsc_redis_ready(c.r));
    ASSERT(send_cmd(&c, "GET tlsc:p", 200, &late) < 0);

    ASSERT_EQ(kill(s.pid, SIGCONT), 0);
    ASSERT(eventually_ok(&c, "SET tlsc:p back", 10000));

    client_close(&c);
    redis_cleanup(&s);
}

TEST(killed_redis_fails_requests_and_is_reconnected_after_restart)
{
    redis_srv_t s = {0};
    client_t c;
    result_t res;
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));

    /* Paused first, so the request is surely unanswered when Redis dies. */
    ASSERT_EQ(kill(s.pid, SIGSTOP), 0);
    ASSERT_EQ(send_cmd(&c, "GET tlsc:k", 5000, &res), 0);
    run_until(&c, never, NULL, 50);
    redis_stop(&s);
    ASSERT(run_until(&c, is_done, &res, 3000));
    ASSERT_EQ(res.status, UV_ENOTCONN);
    ASSERT(!tlsc_redis_ready(c.r));
    ASSERT_EQ(send_cmd(&c, "GET tlsc:k", 100, &res), UV_ENOTCONN);
    run_until(&c, never, NULL, 300); /* a few refused attempts */

    redis_start(&s, NULL); /* same port */
    ASSERT(eventually_ok(&c, "SET tlsc:k again", 10000));

    client_close(&c);
    redis_cleanup(&s);
}

/*
 * A fake Redis on a listening socket in a child: it answers the client's PING, then meets
 * the next request with the garbage for this connection (cycling through `garbage`). The
 * last kind announces a 1 GB string and streams 9 MiB of it: more than a reply may hold (8 MiB).
 */
static const char *const garbage[] = {
    "HTTP/1.1 400 Bad Request\r\n\r\n",
    "*2\r\n:1\r\n@not a type byte\r\n",
    "+PONG\r\n+unsolicited\r\n",
    "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", /* arrays nested 5 deep */
    "*2000000000\r\n",                      /* hiredis would allocate 16 GB for it before a single element came */
    "$1000000000\r\n",
};
#define NGARBAGE (sizeof(garbage) / sizeof(garbage[0]))

static void flood(int fd)
{
    static char chunk[64 * 1024];

    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 9 * 16; i++)
        if (write(fd, chunk, sizeof(chunk)) < 0)
            return; /* the client gave up, as it should */
}

static void fake_redis(int lfd)
{
    alarm(WATCHDOG_SEC);
    for (int conn = 0; conn < 50; conn++) {
        int fd = accept(lfd, NULL, NULL);
        const char *bad = garbage[conn % NGARBAGE];
        char buf[4096];

        if (fd < 0)
            _exit(1);
        for (int reads = 0; reads < 2; reads++) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};

            if (poll(&pfd, 1, 5000) <= 0 || read(fd, buf, sizeof(buf)) <= 0)
                break;
            if (reads == 0 && write(fd, "+PONG\r\n", 7) != 7)
                break;
            if (reads == 1 && write(fd, bad, strlen(bad)) < 0)
                break;
            if (reads == 1 && conn % NGARBAGE == NGARBAGE - 1)
                flood(fd);
        }
        usleep(100 * 1000);
        close(fd);
    }
    _exit(0);
}

TEST(garbage_from_redis_fails_requests_with_eproto)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    pid_t parent = getpid(), pid;
    client_t c;
    char url[128];
    int lfd;

    ASSERT((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    ASSERT_EQ(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ASSERT_EQ(listen(lfd, 16), 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    ASSERT((pid = fork()) >= 0);
    if (pid == 0) {
        child_setup(parent);
        fake_redis(lfd);
    }
    child_add(pid);
    close(lfd);

    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", ntohs(sin.sin_port));
    client_open(&c, url);
    for (size_t i = 0; i < NGARBAGE; i++) {
        result_t res;

        ASSERT(run_until(&c, is_ready, c.r, 5000));
        ASSERT_EQ(send_cmd(&c, "GET tlsc:k", 5000, &res), 0);
        ASSERT(run_until(&c, is_done, &res, 6000));
        if (i != 2) {
            ASSERT_EQ(res.status, UV_EPROTO); /* garbage, too deep, an array too large, a string too large */
        } else {
            /* The request got its reply; the extra one after it is the protocol error. */
            ASSERT_EQ(res.status, 0);
            ASSERT_STREQ(res.str, "PONG");
            run_until(&c, never, NULL, 50);
            ASSERT(!tlsc_redis_ready(c.r));
        }
    }
    client_close(&c);
    child_end(pid);
}

/* Feeds `resp` to a bounded reader: 1 for a whole reply, 0 when refused, -1 for a hiredis error. */
static int read_one(const char *resp)
{
    redisReader *rd = tlsc_redis_reader_new();
    void *reply = NULL;
    int rc;

    ASSERT(rd != NULL);
    ASSERT_EQ(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    if (redisReaderGetReply(rd, &reply) == REDIS_OK)
        rc = reply != NULL;
    else
        rc = tlsc_redis_reader_refused(rd) ? 0 : -1;
    if (reply != NULL)
        freeReplyObject(reply);
    tlsc_redis_reader_free(rd);
    return rc;
}

TEST(reader_bounds_nesting_depth_and_counts)
{
    /* CLUSTER SHARDS, the deepest reply the server asks for, nests arrays 4 deep. */
    ASSERT_EQ(read_one("*1\r\n*1\r\n*1\r\n*2\r\n$2\r\nid\r\n:1\r\n"), 1);
    ASSERT_EQ(read_one("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"), 0);
    ASSERT_EQ(read_one("*2\r\n*1\r\n*1\r\n*1\r\n:1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"), 0); /* the second element */
    ASSERT_EQ(read_one("*1025\r\n"), 0);
}

/* A CA and a leaf for 127.0.0.1 in `dir` (ca.pem, r.pem, r.key), made with the openssl CLI. */
static void make_tls_files(const char *dir)
{
    char cmdline[1024];

    snprintf(cmdline, sizeof(cmdline),
             "(cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ca "
             "-keyout ca.key -out ca.pem && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=r "
             "-keyout r.key -out r.csr && openssl x509 -req -in r.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile ext -out r.pem) >/dev/null 2>&1",
             dir);
    {
        char ext[160];
        FILE *f;

        snprintf(ext, sizeof(ext), "%s/ext", dir);
        ASSERT((f = fopen(ext, "w")) != NULL);
        fputs("subjectAltName=IP:127.0.0.1\n", f);
        fclose(f);
    }
    ASSERT_EQ(system(cmdline), 0);
}

static void rm_tls_files(const char *dir)
{
    static const char *const names[] = {"ca.key", "ca.pem", "ca.srl", "r.key", "r.csr", "r.pem", "ext"};
    char path[160];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
}

/*
 * rediss:// against redis-server's TLS port: a value of 1 MiB each way (many TLS records, a
 * write larger than the socket buffer), a restart (a new SSL for the new connection), and a
 * CA that did not sign Redis's certificate (never ready).
 */
TEST(tls_link_carries_large_values_and_reconnects)
{
    redis_srv_t s = {0};
    client_t c;
    char ca[128], leaf[128], cert[128], key[128], tport[8], url[96];
    static char big[1 << 20];
    const char *set[] = {"SET", "tlsc:big", big};
    size_t set_len[] = {3, 8, sizeof(big)};
    result_t res = {0};
    unsigned port;
    int status;

    strcpy(s.dir, "/tmp/tlsc-redis-XXXXXX");
    ASSERT(mkdtemp(s.dir) != NULL);
    snprintf(s.sock, sizeof(s.sock), "%s/redis.sock", s.dir);
    make_tls_files(s.dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", s.dir);
    snprintf(cert, sizeof(cert), "%s/r.pem", s.dir);
    snprintf(key, sizeof(key), "%s/r.key", s.dir);
    snprintf(leaf, sizeof(leaf), "%s/r.pem", s.dir);
    port = free_port();
    snprintf(tport, sizeof(tport), "%u", port);
    const char *extra[] = {
        "--tls-port", tport, "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients",
        "no",         NULL};
    redis_start(&s, extra);
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%u", port);

    tlsc_redis_options_t o = {.tls_ca_file = ca};
    client_open_opts(&c, url, &o);
    ASSERT(run_until(&c, is_ready, c.r, 5000));
    memset(big, 'v', sizeof(big));
    ASSERT(tlsc_redis_command(c.r, 3, set, set_len, 5000, on_result, &res, &status) != NULL);
    ASSERT(run_until(&c, is_done, &res, 6000));
    ASSERT_EQ(res.status, 0);
    ASSERT_STREQ(res.str, "OK");
    cmd(&c, "STRLEN tlsc:big", &res);
    ASSERT_EQ(res.integer, (long long)sizeof(big));
    cmd(&c, "GETRANGE tlsc:big -3 -1", &res);
    ASSERT_STREQ(res.str, "vvv");

    redis_stop(&s);
    s.port = 0; /* the plain port may be taken by now; the TLS port is what the client knows */
    redis_start(&s, extra);
    ASSERT(eventually_ok(&c, "SET tlsc:k after-restart", 10000));
    client_close(&c);

    /* Redis's own leaf as the CA: the chain does not verify, so the link never becomes ready. */
    tlsc_redis_options_t wrong = {.tls_ca_file = leaf, .connect_timeout_ms = 300};
    client_open_opts(&c, url, &wrong);
    ASSERT(!run_until(&c, is_ready, c.r, 1000));
    client_close(&c);

    /* A TLS context needs a CA, and a client certificate its key. */
    {
        SSL_CTX *ctx = NULL;
        char err[256];

        ASSERT(tlsc_redis_tls_ctx_new(NULL, NULL, NULL, &ctx, err, sizeof(err)) < 0);
        ASSERT(strstr(err, "--redis-ca") != NULL);
        ASSERT(tlsc_redis_tls_ctx_new(ca, cert, NULL, &ctx, err, sizeof(err)) < 0);
        ASSERT(tlsc_redis_tls_ctx_new("/nonexistent/ca.pem", NULL, NULL, &ctx, err, sizeof(err)) < 0);
        ASSERT(strstr(err, "/nonexistent/ca.pem") != NULL);
        ASSERT(ctx == NULL);
        ASSERT_EQ(tlsc_redis_tls_ctx_new(ca, NULL, NULL, &ctx, err, sizeof(err)), 0);
        SSL_CTX_free(ctx);
    }
    rm_tls_files(s.dir);
    redis_cleanup(&s);
}

TEST(over_max_inflight_is_enobufs)
{
    tlsc_redis_options_t o = {.max_inflight = 4};
    redis_srv_t s = {0};
    client_t c;
    result_t res[5];
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open_opts(&c, url, &o);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(send_cmd(&c, "PING", 2000, &res[i]), 0);
    ASSERT_EQ(send_cmd(&c, "PING", 2000, &res[4]), UV_ENOBUFS);
    ASSERT(run_until(&c, is_done, &res[3], 3000));
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(res[i].status, 0);
        ASSERT_STREQ(res[i].str, "PONG");
    }
    ASSERT(!res[4].done);
    ASSERT_EQ(send_cmd(&c, "PING", 2000, &res[4]), 0); /* room again */
    ASSERT(run_until(&c, is_done, &res[4], 3000));

    client_close(&c);
    redis_cleanup(&s);
}

TEST(cancelled_request_keeps_the_pipeline_in_step)
{
    redis_srv_t s = {0};
    client_t c;
    result_t a, b;
    tlsc_redis_req_t *req;
    const char *get_a[] = {"GET", "tlsc:a"};
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    assert_ok(&c, "SET tlsc:a A");
    assert_ok(&c, "SET tlsc:b B");

    memset(&a, 0, sizeof(a));
    ASSERT((req = tlsc_redis_command(c.r, 2, get_a, NULL, 1000, on_result, &a, NULL)) != NULL);
    ASSERT_EQ(send_cmd(&c, "GET tlsc:b", 1000, &b), 0);
    tlsc_redis_cancel(req);
    ASSERT(run_until(&c, is_done, &b, 3000));
    ASSERT(!a.done);
    ASSERT_STREQ(b.str, "B"); /* not A's reply */

    client_close(&c);
    redis_cleanup(&s);
}

typedef struct {
    client_t *c;
    int calls;
} closer_t;

static void on_close_in_callback(int status, const redisReply *reply, void *data)
{
    closer_t *cl = data;

    cl->calls++;
    tlsc_redis_close(cl->c->r);
    cl->c->r = NULL;
}

static int closer_called(const void *cl)
{
    return ((const closer_t *)cl)->calls > 0;
}

TEST(close_drops_pending_callbacks_even_from_a_callback)
{
    redis_srv_t s = {0};
    client_t c;
    closer_t cl = {.c = &c};
    result_t res;
    const char *ping[] = {"PING"};
    char url[128];

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");

    /* Closed with requests in flight: their callbacks never run, nothing leaks. */
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    ASSERT_EQ(send_cmd(&c, "PING", 1000, &res), 0);
    client_close(&c);
    ASSERT(!res.done);

    /* Closed from inside the first of three callbacks: the other two never run. */
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    for (int i = 0; i < 3; i++)
        ASSERT(tlsc_redis_command(c.r, 1, ping, NULL, 1000, on_close_in_callback, &cl, NULL) != NULL);
    ASSERT(run_until(&c, closer_called, &cl, 3000));
    run_until(&c, never, NULL, 50);
    ASSERT_EQ(cl.calls, 1);
    client_close(&c);
    redis_cleanup(&s);
}

TEST(host_name_is_resolved)
{
    redis_srv_t s = {0};
    client_t c;
    char url[128];

    redis_start(&s, NULL);
    snprintf(url, sizeof(url), "redis://localhost:%u", s.port);
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 5000));
    assert_ok(&c, "SET tlsc:h 1");
    client_close(&c);
    redis_cleanup(&s);
}

TEST(nothing_listening_means_enotconn_and_a_clean_close)
{
    client_t c;
    result_t res;
    char url[128];

    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", free_port());
    client_open(&c, url);
    run_until(&c, never, NULL, 200);
    ASSERT(!tlsc_redis_ready(c.r));
    ASSERT_EQ(send_cmd(&c, "PING", 100, &res), UV_ENOTCONN);
    client_close(&c); /* in backoff: the timers close, nothing leaks */
}

/* ================================ what the link logs ================================ */

/* Sends the log lines (stderr) to a file until log_end; returns the saved stderr. */
static int log_begin(char *path, size_t len)
{
    int fd, saved;

    snprintf(path, len, "/tmp/tlsc-redis-log-XXXXXX");
    ASSERT((fd = mkstemp(path)) >= 0);
    fflush(stderr);
    ASSERT((saved = dup(STDERR_FILENO)) >= 0);
    ASSERT(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    return saved;
}

static void log_end(int saved)
{
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

/* Lines of the file holding every one of the needles (NULL-terminated). */
static int log_count(const char *path, const char *const *needles)
{
    char line[1200];
    int n = 0;
    FILE *f = fopen(path, "r");

    ASSERT(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL) {
        int all = 1;

        for (const char *const *k = needles; *k != NULL && all; k++)
            all = strstr(line, *k) != NULL;
        n += all;
    }
    fclose(f);
    return n;
}

#define LOG_COUNT(path, ...) log_count(path, (const char *const[]){__VA_ARGS__, NULL})

/* Redis's INFO field `name` (an integer), read behind the client's back; `auth` is "AUTH pw\r\n" or "". */
static long long info_field(unsigned port, const char *auth, const char *name)
{
    char out[8192], cmd[128], *p;

    snprintf(cmd, sizeof(cmd), "%sINFO stats\r\n", auth);
    sync_cmd(port, cmd, 8, out, sizeof(out));
    ASSERT((p = strstr(out, name)) != NULL);
    return atoll(p + strlen(name) + 1);
}

TEST(handshake_errors_only_an_operator_can_fix_name_the_flag)
{
    static const char *const fatal[] = {
        "WRONGPASS invalid username-password pair or user is disabled.",
        "NOAUTH Authentication required.",
        "NOPERM this user has no permissions to run the 'select' command",
        "ERR DB index is out of range",
        "ERR invalid DB index",
        "ERR invalid password",
    };

    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        const char *hint = tlsc_redis_error_hint(fatal[i], strlen(fatal[i]));

        ASSERT(hint != NULL);
        ASSERT(strstr(hint, "--redis") != NULL);
    }
    ASSERT(tlsc_redis_error_hint("LOADING Redis is loading the dataset in memory", 46) == NULL);
    ASSERT(tlsc_redis_error_hint("WRONG", 5) == NULL); /* a prefix of a prefix is not enough */
}

TEST(wrong_password_is_one_error_naming_wrongpass_and_the_flag)
{
    static const char *const args[] = {"--requirepass", "right", NULL};
    tlsc_redis_options_t o = {.permanent_backoff_ms = 60}; /* many attempts, one line */
    redis_srv_t s = {0};
    client_t c;
    char url[128], path[64];
    int saved;

    redis_start(&s, args);
    url_for(url, sizeof(url), ":wrong@", &s, "");
    saved = log_begin(path, sizeof(path));
    client_open_opts(&c, url, &o);
    run_until(&c, never, NULL, 500);
    client_close(&c);
    log_end(saved);
    ASSERT_EQ(LOG_COUNT(path, " error: redis ", "AUTH refused: WRONGPASS", "--redis"), 1);
    ASSERT_EQ(LOG_COUNT(path, "wrong"), 0); /* never the password */
    ASSERT_EQ(LOG_COUNT(path, "connected"), 0);
    ASSERT_EQ(LOG_COUNT(path, "cannot connect"), 0); /* not the "try again" of a passing fault */
    unlink(path);
    redis_cleanup(&s);
}

TEST(a_permanent_refusal_is_retried_slowly)
{
    static const char *const args[] = {"--requirepass", "right", NULL};
    redis_srv_t s = {0};
    client_t c;
    char url[128];
    long long before, after;

    redis_start(&s, args);
    url_for(url, sizeof(url), ":wrong@", &s, "");
    before = info_field(s.port, "AUTH right\r\n", "total_connections_received");
    client_open(&c, url); /* the default permanent backoff: 5 s, jittered down to 2.5 s at least */
    run_until(&c, never, NULL, 1500);
    after = info_field(s.port, "AUTH right\r\n", "total_connections_received");
    client_close(&c);
    /* Ours: one attempt and the INFO connection. A passing fault would have retried ~5 times. */
    ASSERT_EQ(after - before, 2);
    redis_cleanup(&s);
}

TEST(db_out_of_range_is_an_error_naming_the_db)
{
    redis_srv_t s = {0};
    client_t c;
    char url[128], path[64];
    int saved;

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "/99");
    saved = log_begin(path, sizeof(path));
    client_open(&c, url);
    run_until(&c, never, NULL, 300);
    ASSERT(!tlsc_redis_ready(c.r));
    client_close(&c);
    log_end(saved);
    ASSERT_EQ(LOG_COUNT(path, " error: redis ", "SELECT refused: ERR DB index is out of range", "--redis"), 1);
    unlink(path);
    redis_cleanup(&s);
}

TEST(first_connect_is_connected_and_a_restart_is_lost_then_connected_again)
{
    redis_srv_t s = {0};
    client_t c;
    char url[128], path[64];
    int saved;

    redis_start(&s, NULL);
    url_for(url, sizeof(url), "", &s, "");
    saved = log_begin(path, sizeof(path));
    client_open(&c, url);
    ASSERT(run_until(&c, is_ready, c.r, 3000));
    redis_stop(&s);
    run_until(&c, never, NULL, 300); /* lost, then a few refused attempts */
    redis_start(&s, NULL);           /* same port */
    ASSERT(run_until(&c, is_ready, c.r, 5000));
    client_close(&c);
    log_end(saved);
    ASSERT_EQ(LOG_COUNT(path, ": connected\n"), 1);
    ASSERT_EQ(LOG_COUNT(path, " warn: ", "connection lost"), 1);
    ASSERT_EQ(LOG_COUNT(path, " warn: "), 1); /* the refused attempts after it are not news */
    ASSERT_EQ(LOG_COUNT(path, "connected again"), 1);
    unlink(path);
    redis_cleanup(&s);
}

TEST(redis_down_at_start_is_connected_after_attempts_not_again)
{
    redis_srv_t s = {0};
    client_t c;
    char url[128], path[64];
    int saved;

    s.port = free_port();
    url_for(url, sizeof(url), "", &s, "");
    saved = log_begin(path, sizeof(path));
    client_open(&c, url);
    run_until(&c, never, NULL, 200);
    redis_start(&s, NULL);
    ASSERT(run_until(&c, is_ready, c.r, 5000));
    client_close(&c);
    log_end(saved);
    ASSERT_EQ(LOG_COUNT(path, " warn: ", "cannot connect: connection refused"), 1);
    ASSERT_EQ(LOG_COUNT(path, ": connected after "), 1);
    ASSERT_EQ(LOG_COUNT(path, "again"), 0);
    unlink(path);
    redis_cleanup(&s);
}

static void watched(void (*test)(void))
{
    alarm(WATCHDOG_SEC);
    test();
    alarm(0);
}

#define RUN_WATCHED(name)                                                                                                          \
    do {                                                                                                                           \
        fprintf(stderr, "  %s ... ", #name);                                                                                       \
        watched(test_##name);                                                                                                      \
        tlsc_test_count++;                                                                                                         \
        fprintf(stderr, "ok\n");                                                                                                   \
    } while (0)

int main(void)
{
    signal(SIGALRM, on_watchdog);
    signal(SIGABRT, on_abort);
    signal(SIGPIPE, SIG_IGN);
    if (access(REDIS_SERVER, X_OK) != 0) {
        fprintf(stderr, "test_redis: %s is missing (apt-get install redis-server)\n", REDIS_SERVER);
        return 1;
    }
    RUN_WATCHED(reader_bounds_nesting_depth_and_counts);
    RUN_WATCHED(set_get_roundtrip);
    RUN_WATCHED(tls_link_carries_large_values_and_reconnects);
    RUN_WATCHED(multi_exec_pipeline_returns_the_exec_array);
    RUN_WATCHED(pipelined_requests_complete_in_order);
    RUN_WATCHED(requirepass_with_an_escaped_password);
    RUN_WATCHED(wrong_password_is_retried_until_redis_accepts_it);
    RUN_WATCHED(acl_user_from_the_url);
    RUN_WATCHED(select_db_from_the_url);
    RUN_WATCHED(unix_socket_url);
    RUN_WATCHED(paused_redis_times_requests_out_then_recovers);
    RUN_WATCHED(killed_redis_fails_requests_and_is_reconnected_after_restart);
    RUN_WATCHED(garbage_from_redis_fails_requests_with_eproto);
    RUN_WATCHED(over_max_inflight_is_enobufs);
    RUN_WATCHED(cancelled_request_keeps_the_pipeline_in_step);
    RUN_WATCHED(close_drops_pending_callbacks_even_from_a_callback);
    RUN_WATCHED(host_name_is_resolved);
    RUN_WATCHED(nothing_listening_means_enotconn_and_a_clean_close);
    RUN_WATCHED(handshake_errors_only_an_operator_can_fix_name_the_flag);
    RUN_WATCHED(wrong_password_is_one_error_naming_wrongpass_and_the_flag);
    RUN_WATCHED(a_permanent_refusal_is_retried_slowly);
    RUN_WATCHED(db_out_of_range_is_an_error_naming_the_db);
    RUN_WATCHED(first_connect_is_connected_and_a_restart_is_lost_then_connected_again);
    RUN_WATCHED(redis_down_at_start_is_connected_after_attempts_not_again);
    TEST_DONE();
}
