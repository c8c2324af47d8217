/*
 * libFuzzer target for the Redis reply path: our own client (server/redis.c, with the dial
 * under it) against a fake Redis that answers with the fuzz input. No seam in the client is
 * needed: the fake server is a unix socket on the client's own libuv loop, so one input is
 * one connect, one handshake, a few requests and the fuzz bytes as the replies, all in this
 * process and bounded (the server shuts its side down after the last byte, so the client
 * always ends on EOF or on garbage).
 *
 * Input:  h0 h1 h2 h3 | bytes the fake Redis sends
 *   h0 bit 0: the bytes answer the handshake too (else the server answers it with +OK);
 *      bits 1-2: the URL: no credentials (PING), a password (AUTH), user + password, password + db 3
 *   h1 bits 0-1: 1..4 requests; bits 2-5: request i has 3 commands (MULTI-like) instead of 1
 *   h2 bits 0-2: cancel request k-1 right after sending it (0: none);
 *      bits 3-5: close the client from inside the callback of request k-1 (0: none)
 *   h3 the server writes in chunks of h3 bytes, one per loop iteration (0: all at once)
 *
 * Properties:
 * - no crash, no leak, no hang (libFuzzer's -timeout), the loop closes with nothing left;
 * - every request gets exactly one callback (none once cancelled, none after the client was
 *   closed), with status 0 and a reply, or UV_EPROTO / UV_ENOTCONN and no reply;
 * - when the server answers the handshake itself, the outcome is exactly what hiredis's own
 *   reader makes of the bytes, fed at once: requests in order take their replies (the last
 *   one's value is compared), then garbage fails the rest with UV_EPROTO, and bytes that end
 *   inside a reply fail them with UV_ENOTCONN (the link closed).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "log.h"
#include "redis.h"
#include "redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_REQS    4
#define PAYLOAD_MAX 65536
#define NOT_CALLED  1 /* no UV_E* code is positive */

static char sock_dir[] = "/tmp/tlsc-fuzz-redis-XXXXXX";
static char sock_path[64];

typedef struct harness_s harness_t;

typedef struct {
    harness_t *h;
    int sent, cancelled, calls, status;
    size_t ncmds;
    uint64_t reply_hash;
} req_t;

struct harness_s {
    uv_loop_t loop;
    uv_pipe_t listener, conn, redial[8];
    size_t redials;
    uv_idle_t feeder;
    uv_check_t starter;
    uv_shutdown_t shutdown_req;
    int conn_open, server_eof, feeding, closed_by_cb;
    redisReader *cmds; /* parses what the client sends */
    size_t cmds_seen, handshake_cmds;
    int fuzz_handshake;
    const unsigned char *payload;
    size_t payload_len, written, chunk;

    tlsc_redis_t *client;
    int client_closed, requests_sent;
    size_t nreqs, cancel_at, close_at;
    req_t reqs[MAX_REQS];
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (mkdtemp(sock_dir) == NULL)
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/redis.sock", sock_dir);
    signal(SIGPIPE, SIG_IGN);           /* as the server does: a write to a closed peer is an error, not a kill */
    tlsc_log_set_level(TLSC_LOG_ERROR); /* a link going up and down per input is the normal case here */
    return 0;
}

/* A hash of a reply tree: its type, value and elements. */
static uint64_t hash_reply(const redisReply *r, uint64_t h)
{
    h = (h ^ (uint64_t)r->type) * 1099511628211u;
    h = (h ^ (uint64_t)r->integer) * 1099511628211u;
    h = (h ^ (uint64_t)r->len) * 1099511628211u;
    for (size_t i = 0; r->str != NULL && i < r->len; i++)
        h = (h ^ (unsigned char)r->str[i]) * 1099511628211u;
    h = (h ^ (uint64_t)r->elements) * 1099511628211u;
    for (size_t i = 0; i < r->elements; i++)
        h = hash_reply(r->element[i], h);
    return h;
}

/* ================================ the fake Redis ================================ */

static void on_server_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536];

    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
}

/* One chunk per loop iteration, so the client reads them one by one; then half-close. */
static void on_feed(uv_idle_t *idle)
{
    harness_t *h = idle->data;
    size_t n = h->payload_len - h->written;
    uv_buf_t b;
    int w;

    if (!h->conn_open) {
        uv_idle_stop(idle);
        return;
    }
    if (h->chunk != 0 && n > h->chunk)
        n = h->chunk;
    if (n > 0) {
        b = uv_buf_init((char *)h->payload + h->written, (unsigned)n);
        w = uv_try_write((uv_stream_t *)&h->conn, &b, 1);
        if (w == UV_EAGAIN)
            return; /* the client has not read yet */
        if (w < 0) {
            uv_idle_stop(idle);
            return; /* the client went away: its EOF comes to on_server_read */
        }
        h->written += (size_t)w;
    }
    if (h->written == h->payload_len) {
        uv_idle_stop(idle);
        uv_shutdown(&h->shutdown_req, (uv_stream_t *)&h->conn, on_shutdown);
    }
}

static void on_server_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    harness_t *h = s->data;
    void *cmd;

    if (nread < 0) {
        h->server_eof = 1;
        uv_read_stop(s);
        return;
    }
    if (nread == 0 || h->cmds == NULL)
        return;
    if (redisReaderFeed(h->cmds, buf->base, (size_t)nread) != REDIS_OK)
        abort();
    while (redisReaderGetReply(h->cmds, &cmd) == REDIS_OK && cmd != NULL) {
        freeReplyObject(cmd);
        if (++h->cmds_seen == h->handshake_cmds && !h->fuzz_handshake) {
            static const char ok[] = "+OK\r\n+OK\r\n";
            uv_buf_t b = uv_buf_init((char *)ok, (unsigned)(5 * h->handshake_cmds));
            if (uv_try_write(s, &b, 1) != (int)b.len)
                abort(); /* 10 bytes fit any socket buffer */
        }
        /* The payload answers the handshake, or the requests once the first one came. */
        if (!h->feeding && h->cmds_seen == h->handshake_cmds + (h->fuzz_handshake ? 0 : 1)) {
            h->feeding = 1;
            uv_idle_start(&h->feeder, on_feed);
        }
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    harness_t *h = l->data;

    if (status != 0)
        abort();
    if (h->conn_open) {
        /* The client redials at once after a link it had up failed: turned away, closed. */
        if (h->redials == sizeof(h->redial) / sizeof(h->redial[0]))
            abort(); /* a redial storm */
        uv_pipe_init(&h->loop, &h->redial[h->redials], 0);
        if (uv_accept(l, (uv_stream_t *)&h->redial[h->redials]) != 0)
            abort();
        uv_close((uv_handle_t *)&h->redial[h->redials++], NULL);
        return;
    }
    uv_pipe_init(&h->loop, &h->conn, 0);
    h->conn.data = h;
    if (uv_accept(l, (uv_stream_t *)&h->conn) != 0)
        abort();
    h->conn_open = 1;
    uv_read_start((uv_stream_t *)&h->conn, on_server_alloc, on_server_read);
}

/* ================================ the client's side ================================ */

static void on_reply(int status, const redisReply *reply, void *data);

static void close_client(harness_t *h)
{
    if (!h->client_closed) {
        h->client_closed = 1;
        tlsc_redis_close(h->client);
    }
}

static void on_reply(int status, const redisReply *reply, void *data)
{
    req_t *q = data;
    harness_t *h = q->h;

    if (h == NULL || h->client_closed || q->cancelled || q->calls++ != 0)
        abort(); /* a callback after close or cancel, or a second one */
    if ((status == 0) != (reply != NULL) || (status != 0 && status != UV_EPROTO && status != UV_ENOTCONN)) {
        fprintf(stderr, "fuzz_redis_reply: status %d (%s), reply %p\n", status, uv_err_name(status), (void *)reply);
        abort();
    }
    q->status = status;
    if (reply != NULL)
        q->reply_hash = hash_reply(reply, 14695981039346656037u);
    if (h->close_at != 0 && h->close_at <= h->nreqs && &h->reqs[h->close_at - 1] == q) {
        h->closed_by_cb = 1;
        close_client(h); /* a callback may close the client */
    }
}

/* Once the client is ready, send the requests (all in one loop iteration). */
static void on_start(uv_check_t *c)
{
    harness_t *h = c->data;
    static const char *const get[] = {"GET", "tlscache:sess:00"};
    static const char *const multi[] = {"MULTI"}, *const hset[] = {"HSET", "k", "der", "x"}, *const exec_[] = {"EXEC"};
    static const char *const *const three[] = {multi, hset, exec_};
    static const int three_argc[] = {1, 4, 1};

    if (h->client_closed || !tlsc_redis_ready(h->client))
        return;
    uv_check_stop(c);
    h->requests_sent = 1;
    for (size_t i = 0; i < h->nreqs && !h->client_closed; i++) {
        req_t *q = &h->reqs[i];
        tlsc_redis_req_t *req;
        int status;

        if (q->ncmds == 1)
            req = tlsc_redis_command(h->client, 2, get, NULL, 10000, on_reply, q, &status);
        else
            req = tlsc_redis_send(h->client, 3, three_argc, three, NULL, 10000, on_reply, q, &status);
        if (req == NULL) {
            if (status != UV_ENOTCONN && status != UV_EAGAIN)
                abort();
            continue;
        }
        q->sent = 1;
        if (h->cancel_at == i + 1) {
            tlsc_redis_cancel(req);
            q->cancelled = 1;
        }
    }
}

/* ================================ the oracle ================================ */

/*
 * What each request must get when the server answered the handshake: hiredis's reader over
 * the whole payload at once gives the replies, and whether garbage follows them.
 */
static void check_against_reader(harness_t *h)
{
    redisReader *rd = tlsc_redis_reader_new(); /* with the client's own bounds */
    uint64_t hashes[3 * MAX_REQS];
    unsigned char is_error[3 * MAX_REQS], is_execabort[3 * MAX_REQS];
    size_t nreplies = 0, next = 0;
    int garbage = 0;
    void *reply;

    if (rd == NULL)
        abort();
    if (redisReaderFeed(rd, (const char *)h->payload, h->payload_len) != REDIS_OK)
        abort();
    while (nreplies < 3 * MAX_REQS) {
        if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
            garbage = 1;
            break;
        }
        if (reply == NULL)
            break;
        {
            const redisReply *rr = reply;

            is_error[nreplies] = rr->type == REDIS_REPLY_ERROR;
            is_execabort[nreplies] = is_error[nreplies] && rr->len >= 9 && memcmp(rr->str, "EXECABORT", 9) == 0;
        }
        hashes[nreplies++] = hash_reply(reply, 14695981039346656037u);
        freeReplyObject(reply);
        tlsc_redis_reader_next(rd);
    }
    tlsc_redis_reader_free(rd);
    for (size_t i = 0; i < h->nreqs; i++) {
        req_t *q = &h->reqs[i];
        int want_status;

        if (!q->sent)
            continue;
        next += q->ncmds;
        want_status = next <= nreplies ? 0 : garbage ? UV_EPROTO : UV_ENOTCONN;
        if (q->cancelled || (h->closed_by_cb && i + 1 > h->close_at)) {
            if (q->calls != 0)
                abort();
            continue;
        }
        /* The reply the callback gets: the last, or for an EXECABORT the first error before it. */
        size_t want = next - 1;
        if (want_status == 0 && is_execabort[next - 1])
            for (size_t k = next - q->ncmds; k + 1 < next; k++)
                if (is_error[k]) {
                    want = k;
                    break;
                }
        if (q->calls != 1 || q->status != want_status || (want_status == 0 && q->reply_hash != hashes[want])) {
            fprintf(stderr, "fuzz_redis_reply: request %zu (%zu commands): %d calls, status %s, want %s%s\n", i, q->ncmds, q->calls,
                    q->calls ? uv_err_name(q->status) : "-", want_status ? uv_err_name(want_status) : "0",
                    want_status == 0 && q->calls && q->status == 0 ? " (another reply)" : "");
            abort();
        }
    }
}

/* ================================ one input ================================ */

static void on_closed(uv_handle_t *handle)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const users[4] = {NULL, NULL, "app", NULL};
    static const char *const passwords[4] = {NULL, "pw", "pw", "pw"};
    static const unsigned dbs[4] = {0, 0, 0, 3};
    harness_t *h;
    tlsc_redis_url_t url = {0};
    tlsc_redis_options_t o = {0};
    char err[256];
    unsigned variant;
    unsigned long spins = 0;

    if (size < 4 || size - 4 > PAYLOAD_MAX)
        return 0;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return 0;
    h->fuzz_handshake = data[0] & 1;
    variant = (data[0] >> 1) & 3;
    h->handshake_cmds = (passwords[variant] != NULL) + (dbs[variant] != 0);
    if (h->handshake_cmds == 0)
        h->handshake_cmds = 1; /* PING */
    h->nreqs = 1 + (data[1] & 3);
    for (size_t i = 0; i < h->nreqs; i++) {
        h->reqs[i].ncmds = (data[1] >> (2 + i)) & 1 ? 3 : 1;
        h->reqs[i].status = NOT_CALLED;
        h->reqs[i].h = h;
    }
    h->cancel_at = data[2] & 7;
    h->close_at = (data[2] >> 3) & 7;
    h->chunk = data[3];
    h->payload = data + 4;
    h->payload_len = size - 4;

    if (uv_loop_init(&h->loop) != 0 || (h->cmds = redisReaderCreate()) == NULL)
        abort();
    unlink(sock_path);
    uv_pipe_init(&h->loop, &h->listener, 0);
    h->listener.data = h;
    if (uv_pipe_bind(&h->listener, sock_path) != 0 || uv_listen((uv_stream_t *)&h->listener, 4, on_connection) != 0)
        abort();
    uv_idle_init(&h->loop, &h->feeder);
    h->feeder.data = h;
    uv_check_init(&h->loop, &h->starter);
    h->starter.data = h;
    uv_check_start(&h->starter, on_start);

    url.path = sock_path;
    url.user = (char *)users[variant];
    url.password = (char *)passwords[variant];
    url.db = dbs[variant];
    o.url = &url;
    o.connect_timeout_ms = 10000;
    o.stall_ms = 10000;
    if (tlsc_redis_new(&h->loop, &o, &h->client, err, sizeof(err)) != 0)
        abort();

    /*
     * Until the client's link ended (the server read EOF) and every request was answered. A
     * failed link fails its requests before it closes the stream, so EOF comes last.
     */
    while (!h->server_eof && !h->client_closed) {
        uv_run(&h->loop, UV_RUN_ONCE);
        if (++spins > 1000000)
            abort(); /* a client that never ends its link */
    }
    if (!h->client_closed) {
        for (size_t i = 0; i < h->nreqs; i++)
            if (h->reqs[i].sent && !h->reqs[i].cancelled && h->reqs[i].calls != 1)
                abort(); /* the link ended, a request was never answered */
        if (!h->fuzz_handshake) {
            if (!h->requests_sent)
                abort(); /* the +OK handshake must make the client ready */
            check_against_reader(h);
        }
    } else if (!h->fuzz_handshake) {
        check_against_reader(h);
    }

    close_client(h);
    uv_close((uv_handle_t *)&h->listener, on_closed);
    uv_close((uv_handle_t *)&h->feeder, on_closed);
    uv_close((uv_handle_t *)&h->starter, on_closed);
    if (h->conn_open)
        uv_close((uv_handle_t *)&h->conn, on_closed);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&h->loop) != 0)
        abort(); /* a handle the client left open */
    redisReaderFree(h->cmds);
    unlink(sock_path);
    free(h);
    return 0;
}
