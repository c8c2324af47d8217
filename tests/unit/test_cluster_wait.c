#include "redis_cluster.h"
#include "test.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/*
 * The router's durable writes (tlsc_redis_cluster_send_wait) against a fake two-master cluster
 * in a thread: slots 0..8191 on A, the rest on B. A answers a write to a key named "moved:…"
 * with MOVED to B, "ask:…" with ASK to B (the transaction then aborts there, as Redis does);
 * B's WAIT answers 0 after a write to "short:…", else 1. Every command each node reads is
 * logged with its connection, so the test sees where the write and its WAIT went.
 */

#define MAX_CONNS 32
#define LOG_MAX   4096

typedef struct {
    char node; /* 'A' or 'B' */
    int conn;
    char cmd[16];
    char key[32];
} entry_t;

static struct {
    int lfd[2];
    unsigned port[2];
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    entry_t log[LOG_MAX];
    size_t nlog;
} fake;

typedef struct {
    int fd, node, id;
    char buf[8192];
    size_t len;
    int dirty;         /* a queued command was refused: EXEC aborts */
    char last_key[32]; /* the last HSET's key: what a WAIT is about */
} conn_t;

static void say(int fd, const char *s)
{
    size_t n = strlen(s);

    ASSERT(write(fd, s, n) == (ssize_t)n);
}

/* One command, RESP array of bulk strings, out of c->buf: its arguments, or 0 when incomplete. */
static int parse(conn_t *c, char argv[8][64], size_t *used)
{
    char *p = c->buf, *end = c->buf + c->len, *nl;
    int argc;

    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
        return 0;
    ASSERT(*p == '*');
    argc = atoi(p + 1);
    ASSERT(argc > 0 && argc <= 8);
    p = nl + 1;
    for (int i = 0; i < argc; i++) {
        long n;

        if (p >= end || (nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
            return 0;
        n = atol(p + 1);
        p = nl + 1;
        if (end - p < n + 2)
            return 0;
        snprintf(argv[i], 64, "%.*s", (int)(n < 63 ? n : 63), p);
        p += n + 2;
    }
    *used = (size_t)(p - c->buf);
    return argc;
}

static void answer(conn_t *c, int argc, char argv[8][64])
{
    char out[256];
    int a = c->node == 0;
    unsigned slot = argc >= 2 ? tlsc_redis_cluster_keyslot(argv[1], strlen(argv[1])) : 0;

    pthread_mutex_lock(&fake.mu);
    if (fake.nlog < LOG_MAX) {
        entry_t *e = &fake.log[fake.nlog++];
        e->node = a ? 'A' : 'B';
        e->conn = c->id;
        snprintf(e->cmd, sizeof(e->cmd), "%.15s", argv[0]);
        snprintf(e->key, sizeof(e->key), "%.31s", argc >= 2 ? argv[1] : "");
    }
    pthread_mutex_unlock(&fake.mu);
    if (strcasecmp(argv[0], "PING") == 0) {
        say(c->fd, "+PONG\r\n");
    } else if (strcasecmp(argv[0], "CLUSTER") == 0 && strcasecmp(argv[1], "SHARDS") == 0) {
        say(c->fd, "-ERR unknown subcommand 'SHARDS'\r\n");
    } else if (strcasecmp(argv[0], "CLUSTER") == 0) {
        snprintf(
            out, sizeof(out),
            "*2\r\n*3\r\n:0\r\n:8191\r\n*2\r\n$9\r\n127.0.0.1\r\n:%u\r\n*3\r\n:8192\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:%u\r\n",
            fake.port[0], fake.port[1]);
        say(c->fd, out);
    } else if (strcasecmp(argv[0], "MULTI") == 0 || strcasecmp(argv[0], "ASKING") == 0) {
        if (strcasecmp(argv[0], "MULTI") == 0)
            c->dirty = 0;
        say(c->fd, "+OK\r\n");
    } else if (strcasecmp(argv[0], "HSET") == 0 || strcasecmp(argv[0], "EXPIRE") == 0) {
        if (a && (strncmp(argv[1], "moved:", 6) == 0 || strncmp(argv[1], "ask:", 4) == 0)) {
            snprintf(out, sizeof(out), "-%s %u 127.0.0.1:%u\r\n", argv[1][0] == 'm' ? "MOVED" : "ASK", slot, fake.port[1]);
            c->dirty = 1;
            say(c->fd, out);
        } else {
            snprintf(c->last_key, sizeof(c->last_key), "%.31s", argv[1]);
            say(c->fd, "+QUEUED\r\n");
        }
    } else if (strcasecmp(argv[0], "EXEC") == 0) {
        say(c->fd, c->dirty ? "-EXECABORT Transaction discarded because of previous errors.\r\n" : "*2\r\n:1\r\n:1\r\n");
        if (c->dirty)
            c->last_key[0] = '\0';
    } else if (strcasecmp(argv[0], "WAIT") == 0) {
        say(c->fd, !a && strncmp(c->last_key, "short:", 6) == 0 ? ":0\r\n" : c->last_key[0] != '\0' ? ":1\r\n" : ":0\r\n");
    } else {
        say(c->fd, "-ERR unknown command\r\n");
    }
}

static void *serve(void *arg)
{
    conn_t conns[MAX_CONNS];
    int nconns = 0;

    (void)arg;
    while (!atomic_load(&fake.stop)) {
        struct pollfd pfd[2 + MAX_CONNS];

        for (int i = 0; i < 2; i++)
            pfd[i] = (struct pollfd){.fd = fake.lfd[i], .events = POLLIN};
        for (int i = 0; i < nconns; i++)
            pfd[2 + i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)(2 + nconns), 20) <= 0)
            continue;
        for (int i = 0; i < 2; i++)
            if ((pfd[i].revents & POLLIN) && nconns < MAX_CONNS) {
                conn_t *c = &conns[nconns];

                memset(c, 0, sizeof(*c));
                c->fd = accept(fake.lfd[i], NULL, NULL);
                c->node = i;
                c->id = nconns++;
            }
        for (int i = 0; i < nconns; i++) {
            conn_t *c = &conns[i];
            char argv[8][64];
            size_t used;
            ssize_t n;
            int argc;

            if (c->fd < 0 || !(pfd[2 + i].revents & (POLLIN | POLLHUP)))
                continue;
            if ((n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len)) <= 0) {
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->len += (size_t)n;
            while ((argc = parse(c, argv, &used)) > 0) {
                answer(c, argc, argv);
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
            }
        }
    }
    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    return NULL;
}

static void fake_start(void)
{
    memset(&fake, 0, sizeof(fake));
    pthread_mutex_init(&fake.mu, NULL);
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);

        ASSERT((fake.lfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        ASSERT_EQ(bind(fake.lfd[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
        ASSERT_EQ(listen(fake.lfd[i], 16), 0);
        ASSERT_EQ(getsockname(fake.lfd[i], (struct sockaddr *)&sin, &len), 0);
        fake.port[i] = ntohs(sin.sin_port);
    }
    ASSERT_EQ(pthread_create(&fake.thread, NULL, serve, NULL), 0);
}

static void fake_stop(void)
{
    atomic_store(&fake.stop, 1);
    pthread_join(fake.thread, NULL);
    close(fake.lfd[0]);
    close(fake.lfd[1]);
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int done, status;
    tlsc_redis_wait_t waited;
} result_t;

static void on_done(int status, tlsc_redis_wait_t waited, void *data)
{
    result_t *r = data;

    r->done = 1;
    r->status = status;
    r->waited = waited;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag or `ms` passed. */
static int run_until(uv_loop_t *loop, const int *flag, unsigned ms)
{
    uv_timer_t tick;
    uint64_t end;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    end = uv_now(loop) + ms;
    while (!*flag && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

/* A key "<prefix><n>" whose slot is on master `a` (1: A, 0: B). */
static void key_on(char *key, size_t len, const char *prefix, int a)
{
    for (int n = 0; n < 10000; n++) {
        snprintf(key, len, "%s%d", prefix, n);
        if ((tlsc_redis_cluster_keyslot(key, strlen(key)) < 8192) == a)
            return;
    }
    ASSERT(0);
}

/* One durable write of MULTI HSET key f v EXPIRE key 60 EXEC; its outcome. */
static result_t put(uv_loop_t *loop, tlsc_redis_cluster_t *c, const char *key)
{
    const char *multi[] = {"MULTI"}, *hset[] = {"HSET", key, "f", "v"}, *expire[] = {"EXPIRE", key, "60"}, *exec[] = {"EXEC"};
    int argc[] = {1, 4, 3, 1}, status;
    const char *const *argv[] = {multi, hset, expire, exec};
    result_t r = {0};

    ASSERT(tlsc_redis_cluster_send_wait(c, key, strlen(key), 4, argc, argv, NULL, 2000, on_done, &r, &status) != NULL);
    ASSERT(run_until(loop, &r.done, 3000));
    return r;
}

/* The commands node `node` read on connection `conn`, from log entry `from` on, space-separated. */
static void seq(char node, int conn, size_t from, char *out, size_t outlen)
{
    size_t n = 0;

    out[0] = '\0';
    pthread_mutex_lock(&fake.mu);
    for (size_t i = from; i < fake.nlog; i++)
        if (fake.log[i].node == node && fake.log[i].conn == conn)
            n += (size_t)snprintf(out + n, outlen - n, "%s%s", n > 0 ? " " : "", fake.log[i].cmd);
    pthread_mutex_unlock(&fake.mu);
}

/* The connection of node `node` that read the last HSET of `key` after log entry `from`; -1 if none. */
static int conn_of(char node, const char *key, size_t from)
{
    int conn = -1;

    pthread_mutex_lock(&fake.mu);
    for (size_t i = from; i < fake.nlog; i++)
        if (fake.log[i].node == node && strcmp(fake.log[i].cmd, "HSET") == 0 && strcmp(fake.log[i].key, key) == 0)
            conn = fake.log[i].conn;
    pthread_mutex_unlock(&fake.mu);
    return conn;
}

static size_t log_mark(void)
{
    size_t n;

    pthread_mutex_lock(&fake.mu);
    n = fake.nlog;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

TEST(durable_writes_follow_moved_and_ask_and_back_off_per_master)
{
    uv_loop_t loop;
    tlsc_redis_url_t url = {0};
    tlsc_redis_options_t o = {.url = &url, .connect_timeout_ms = 1000}, wo;
    tlsc_redis_cluster_t *c;
    char spec[128], err[256], ka[32], kb[32], key[32], got[256];
    result_t r = {.waited = TLSC_REDIS_WAIT_NONE};
    size_t mark;
    int conn;

    signal(SIGPIPE, SIG_IGN);
    fake_start();
    ASSERT_EQ(uv_loop_init(&loop), 0);
    snprintf(spec, sizeof(spec), "redis-cluster://127.0.0.1:%u", fake.port[0]);
    ASSERT_EQ(tlsc_redis_url_parse(spec, &url, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_redis_cluster_new(&loop, &o, &c, err, sizeof(err)), 0);
    wo = o;
    wo.label = "stores+WAIT";
    ASSERT_EQ(tlsc_redis_cluster_wait_enable(c, &wo, 1, err, sizeof(err)), 0);
    ASSERT(tlsc_redis_cluster_wait_enable(c, &wo, 1, err, sizeof(err)) < 0); /* once */

    /* Both masters known and their wait links up: a write to each waits (or is skipped until then). */
    key_on(ka, sizeof(ka), "probe:", 1);
    key_on(kb, sizeof(kb), "probe:", 0);
    for (int i = 0; i < 100 && (r.status != 0 || r.waited != TLSC_REDIS_WAIT_ACKED); i++) {
        int ready = 0;

        run_until(&loop, &ready, 20);
        if (tlsc_redis_cluster_ready(c)) {
            r = put(&loop, c, ka);
            if (r.waited == TLSC_REDIS_WAIT_ACKED)
                r = put(&loop, c, kb);
        }
    }
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.waited, TLSC_REDIS_WAIT_ACKED);
    conn = conn_of('B', kb, 0);
    seq('B', conn, 0, got, sizeof(got));
    ASSERT(strstr(got, "MULTI HSET EXPIRE EXEC WAIT") != NULL);

    /* MOVED: the write and a WAIT again on B's wait link; A got the write and a WAIT, refused. */
    key_on(key, sizeof(key), "moved:", 1);
    mark = log_mark();
    r = put(&loop, c, key);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.waited, TLSC_REDIS_WAIT_ACKED);
    seq('A', conn_of('A', key, mark), mark, got, sizeof(got));
    ASSERT_STREQ(got, "MULTI HSET EXPIRE EXEC WAIT");
    ASSERT_EQ(conn_of('B', key, mark), conn); /* B's wait link, the one of the probe */
    seq('B', conn, mark, got, sizeof(got));
    ASSERT_STREQ(got, "MULTI HSET EXPIRE EXEC WAIT");

    /* ASK: ASKING, the write and WAIT in one go on B's wait link. */
    key_on(key, sizeof(key), "ask:", 1);
    mark = log_mark();
    r = put(&loop, c, key);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.waited, TLSC_REDIS_WAIT_ACKED);
    ASSERT_EQ(conn_of('B', key, mark), conn);
    seq('B', conn, mark, got, sizeof(got));
    ASSERT_STREQ(got, "ASKING MULTI HSET EXPIRE EXEC WAIT");

    /* B's WAIT comes back short: B's next write skips WAIT, A's still waits. */
    key_on(key, sizeof(key), "short:", 0);
    r = put(&loop, c, key);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.waited, TLSC_REDIS_WAIT_SHORT);
    mark = log_mark();
    r = put(&loop, c, kb);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.waited, TLSC_REDIS_WAIT_SKIPPED);
    ASSERT(conn_of('B', kb, mark) != conn); /* on B's request link */
    seq('B', conn_of('B', kb, mark), mark, got, sizeof(got));
    ASSERT(strstr(got, "MULTI HSET EXPIRE EXEC") != NULL && strstr(got, "WAIT") == NULL); /* a map read may share it */
    r = put(&loop, c, ka);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.waited, TLSC_REDIS_WAIT_ACKED);

    /* A durable write must be a write WAIT may follow: WAIT inside it is refused, not sent. */
    {
        const char *multi[] = {"MULTI"}, *wait[] = {"WAIT", "1", "10"}, *exec[] = {"EXEC"};
        int argc[] = {1, 3, 1}, status = 0;
        const char *const *argv[] = {multi, wait, exec};

        ASSERT(tlsc_redis_cluster_send_wait(c, ka, strlen(ka), 3, argc, argv, NULL, 1000, on_done, &r, &status) == NULL);
        ASSERT_EQ(status, UV_EINVAL);
    }

    tlsc_redis_cluster_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    tlsc_redis_url_free(&url);
    fake_stop();
}

int main(void)
{
    RUN(durable_writes_follow_moved_and_ask_and_back_off_per_master);
    TEST_DONE();
}
