#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "sentinel.h"
#include "test.h"

/*
 * The Sentinel locator against a fake sentinel that answers each connection with one kind of
 * hostile or good reply: an address of the wrong shape, an unknown master, a port out of range,
 * a host with a space, a huge array, a malformed +switch-master. Only good addresses ever reach
 * the owner; a +switch-master for our master moves it, one for another master does not.
 */

#define SUB_OK       "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"
#define GOOD         "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n" SUB_OK
#define MSG(n, text) "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$" #n "\r\n" text "\r\n"

static const char *const answers[] = {
    "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n" SUB_OK,    /* port out of range */
    "*-1\r\n",                                            /* a master it does not watch */
    "*2\r\n$9\r\n127 0.0.1\r\n$4\r\n6380\r\n" SUB_OK,     /* a space in the host */
    "*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n$1\r\nx\r\n", /* three elements */
    "*2000000000\r\n",                                    /* more than the reader allows */
    "-ERR no such command\r\n",
    /* Good; another master's switch is ignored; a switch of the wrong shape ends the link. */
    GOOD MSG(35, "other 127.0.0.1 6380 127.0.0.1 7000") MSG(28, "mymaster 127.0.0.1 6380 10.0"),
    /* Good again (the same address: no news), then our master moves. */
    GOOD MSG(38, "mymaster 127.0.0.1 6380 127.0.0.1 6381"),
};
#define NANSWERS (sizeof(answers) / sizeof(answers[0]))

static void fake_sentinel(int lfd)
{
    alarm(30);
    for (size_t conn = 0; conn < NANSWERS; conn++) {
        int fd = accept(lfd, NULL, NULL);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char buf[4096];

        if (fd < 0)
            _exit(1);
        if (poll(&pfd, 1, 5000) <= 0 || read(fd, buf, sizeof(buf)) <= 0) {
            close(fd);
            continue;
        }
        if (write(fd, answers[conn], strlen(answers[conn])) < 0) {
            close(fd);
            continue;
        }
        while (poll(&pfd, 1, conn + 1 == NANSWERS ? 20000 : 2000) > 0 && read(fd, buf, sizeof(buf)) > 0)
            ; /* PINGs, or the client closing */
        close(fd);
    }
    _exit(0);
}

typedef struct {
    unsigned ports[8];
    size_t n;
    char hosts[8][64];
} seen_t;

static void on_master(const char *host, unsigned port, void *data)
{
    seen_t *s = data;

    if (s->n < 8) {
        snprintf(s->hosts[s->n], sizeof(s->hosts[0]), "%s", host);
        s->ports[s->n++] = port;
    }
}

static void on_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_check(uv_timer_t *t)
{
    seen_t *s = t->data;

    if (s->n >= 2)
        uv_stop(t->loop);
}

TEST(only_good_addresses_reach_the_owner_and_a_switch_moves_the_master)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    char local[] = "127.0.0.1", name[] = "mymaster";
    tlsc_redis_node_t node = {.host = local};
    tlsc_redis_url_t url = {.sentinels = &node, .nsentinels = 1, .master_name = name};
    tlsc_sentinel_options_t o = {.url = &url, .timeout_ms = 1000, .on_master = on_master};
    tlsc_sentinel_t *s;
    uv_timer_t deadline, check;
    const char *host;
    unsigned port;
    seen_t seen = {0};
    uv_loop_t loop;
    int lfd, status;
    pid_t pid;

    ASSERT((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    ASSERT_EQ(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ASSERT_EQ(listen(lfd, 16), 0);
    ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    ASSERT((pid = fork()) >= 0);
    if (pid == 0)
        fake_sentinel(lfd);
    close(lfd);
    node.port = ntohs(sin.sin_port);

    ASSERT_EQ(uv_loop_init(&loop), 0);
    o.data = &seen;
    ASSERT_EQ(tlsc_sentinel_new(&loop, &o, &s), 0);
    ASSERT_EQ(tlsc_sentinel_master(s, &host, &port), -1);
    uv_timer_init(&loop, &deadline);
    uv_timer_init(&loop, &check);
    check.data = &seen;
    uv_timer_start(&deadline, on_deadline, 20000, 0);
    uv_timer_start(&check, on_check, 20, 20);
    uv_run(&loop, UV_RUN_DEFAULT);

    ASSERT_EQ(seen.n, 2);
    ASSERT_STREQ(seen.hosts[0], "127.0.0.1");
    ASSERT_EQ(seen.ports[0], 6380);
    ASSERT_STREQ(seen.hosts[1], "127.0.0.1");
    ASSERT_EQ(seen.ports[1], 6381);
    ASSERT_EQ(tlsc_sentinel_master(s, &host, &port), 0);
    ASSERT_EQ(port, 6381);
    ASSERT_EQ(tlsc_sentinel_switches(s), 2);

    tlsc_sentinel_close(s);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&check, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

TEST(tls_without_a_context_is_refused)
{
    char local[] = "127.0.0.1", name[] = "mymaster";
    tlsc_redis_node_t node = {.host = local, .port = 26379};
    tlsc_redis_url_t url = {.sentinels = &node, .nsentinels = 1, .master_name = name, .tls = 1};
    tlsc_sentinel_options_t o = {.url = &url, .on_master = on_master};
    tlsc_sentinel_t *s = NULL;
    uv_loop_t loop;

    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(tlsc_sentinel_new(&loop, &o, &s), UV_EINVAL);
    ASSERT(s == NULL);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(only_good_addresses_reach_the_owner_and_a_switch_moves_the_master);
    RUN(tls_without_a_context_is_refused);
    TEST_DONE();
}
