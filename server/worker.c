/*
 * A TLS worker: one libuv loop, the master's listening sockets, one Redis link.
 *
 * Each connection runs OpenSSL over memory BIOs, so this file decides when bytes reach the
 * socket. That is what lets a new session's last flight wait for Redis (see session.c):
 * conn_flush() writes nothing while a store is in flight.
 */

#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <openssl/err.h>

#include "internal.h"
#include "log.h"
#include "util.h"

#define HANDSHAKE_TIMEOUT_MS 10000
#define REQUEST_TIMEOUT_MS   10000
#define RBIO_MAX             (256 * 1024) /* bytes a peer may queue before we read them */
#define STATS_TTL_SEC        10
#define WARMUP_MAX_MS        500

typedef struct {
    uv_write_t req;
    tlsc_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static void conn_close(tlsc_conn_t *c);
static void conn_flush(tlsc_conn_t *c);

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                  */

static void on_close(uv_handle_t *h)
{
    tlsc_conn_t *c = h->data;
    tlsc_worker_t *w = c->worker;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c);
    if (w->draining && w->n_conns == 0)
        uv_stop(&w->loop);
}

static void conn_close(tlsc_conn_t *c)
{
    if (c->state == TLSC_CONN_CLOSING)
        return;
    c->state = TLSC_CONN_CLOSING;
    tlsc__session_conn_release(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *wr = (write_req_t *)req;
    tlsc_conn_t *c = wr->conn;

    free(wr);
    c->writes_pending--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->reply_sent && c->writes_pending == 0 && BIO_ctrl_pending(c->wbio) == 0)
        conn_close(c);
}

/* Sends what OpenSSL wrote, unless a new session's store is still in flight. */
static void conn_flush(tlsc_conn_t *c)
{
    char *data;
    long len;
    int n;

    if (c->state == TLSC_CONN_CLOSING || c->stores_pending > 0)
        return;
    len = BIO_get_mem_data(c->wbio, &data);
    if (len > 0) {
        uv_buf_t buf = uv_buf_init(data, (unsigned int)len);

        n = c->writes_pending == 0 ? uv_try_write((uv_stream_t *)&c->tcp, &buf, 1) : UV_EAGAIN;
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        if (n < 0)
            n = 0;
        if (n < len) {
            write_req_t *wr = malloc(sizeof(*wr) + (size_t)(len - n));
            if (wr == NULL) {
                conn_close(c);
                return;
            }
            wr->conn = c;
            wr->len = (size_t)(len - n);
            memcpy(wr->data, data + n, wr->len);
            buf = uv_buf_init(wr->data, (unsigned int)wr->len);
            if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
                free(wr);
                conn_close(c);
                return;
            }
            c->writes_pending++;
        }
        (void)BIO_reset(c->wbio);
    }
    if (c->reply_sent && c->writes_pending == 0)
        conn_close(c);
}

static size_t json_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

/* The built-in responder: one JSON line that tells who answered and how. */
static void conn_reply(tlsc_conn_t *c, int status)
{
    tlsc_worker_t *w = c->worker;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    char body[768], head[256], alpn_js[300], sni_js[300];
    const char *group = NULL;
    int blen, hlen;

    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    json_escape(alpn_js, sizeof(alpn_js), (const char *)alpn, alpn_len);
    json_escape(sni_js, sizeof(sni_js), c->sni, strlen(c->sni));
    int nid = SSL_get_negotiated_group(c->ssl);
    if (nid != NID_undef)
        group = SSL_group_to_name(c->ssl, nid);
    blen = snprintf(body, sizeof(body),
                    "{\"node\":\"%s\",\"worker\":%u,\"pid\":%d,\"protocol\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\","
                    "\"sni\":\"%s\",\"alpn\":\"%s\",\"resumed\":%s}\n",
                    w->cfg->node, w->id, w->pid, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), group ? group : "", sni_js,
                    alpn_js, SSL_session_reused(c->ssl) ? "true" : "false");
    hlen = snprintf(head, sizeof(head),
                    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status,
                    status == 200 ? "OK" : "Request Header Fields Too Large", blen);
    if (SSL_write(c->ssl, head, hlen) <= 0 || SSL_write(c->ssl, body, blen) <= 0) {
        ERR_clear_error();
        conn_close(c);
        return;
    }
    SSL_shutdown(c->ssl); /* close_notify goes out with the reply */
    c->reply_sent = 1;
}

void tlsc__conn_drive(tlsc_conn_t *c)
{
    tlsc_worker_t *w = c->worker;
    int r;

    if (c->state == TLSC_CONN_CLOSING || c->state == TLSC_CONN_LOOKUP)
        return;
    if (c->state == TLSC_CONN_HELLO || c->state == TLSC_CONN_HANDSHAKE) {
        r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_READ:
                conn_flush(c);
                return;
            case SSL_ERROR_WANT_CLIENT_HELLO_CB:
                return; /* session.c parked us; on_lookup_done drives again */
            default:
                w->stats.handshake_errors++;
                if (tlsc_log_enabled(TLSC_LOG_DEBUG)) {
                    char msg[256];
                    ERR_error_string_n(ERR_peek_last_error(), msg, sizeof(msg));
                    tlsc_log_debug("handshake failed: %s", msg);
                }
                ERR_clear_error();
                c->reply_sent = 1; /* flush the alert, then close */
                conn_flush(c);
                if (c->stores_pending > 0 || c->writes_pending > 0)
                    return;
                conn_close(c);
                return;
            }
        }
        c->state = TLSC_CONN_OPEN;
        c->deadline_ms = tlsc_now_ms() + REQUEST_TIMEOUT_MS;
        if (SSL_session_reused(c->ssl))
            w->stats.handshakes_resumed++;
        else
            w->stats.handshakes_full++;
    }
    while (!c->reply_sent) {
        r = SSL_read(c->ssl, c->req + c->req_len, (int)(sizeof(c->req) - 1 - c->req_len));
        if (r <= 0) {
            int err = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (err != SSL_ERROR_WANT_READ) {
                conn_close(c);
                return;
            }
            break;
        }
        c->req_len += (size_t)r;
        c->req[c->req_len] = '\0';
        if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL)
            conn_reply(c, 200);
        else if (c->req_len == sizeof(c->req) - 1)
            conn_reply(c, 431);
        if (c->state == TLSC_CONN_CLOSING)
            return;
    }
    conn_flush(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tlsc_conn_t *c = h->data;

    /* One read at a time per loop: the worker's buffer is consumed before the next read. */
    *buf = uv_buf_init(c->worker->readbuf, sizeof(c->worker->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_conn_t *c = s->data;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (BIO_ctrl_pending(c->rbio) + (size_t)nread > RBIO_MAX || BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
        conn_close(c);
        return;
    }
    tlsc__conn_drive(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    tlsc_worker_t *w = server->data;
    tlsc_conn_t *c;

    if (status < 0 || w->draining)
        return;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->worker = w;
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0)
        goto fail;
    uv_tcp_nodelay(&c->tcp, 1);
    if ((c->ssl = SSL_new(tlsc_tls_default_ctx(w->tls))) == NULL)
        goto fail;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        goto fail;
    }
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    /*
     * With both modes and no ticket key held yet (daemon not reached, or every key expired),
     * TLS 1.3 falls back to stateful tickets through Redis instead of issuing none.
     */
    if (w->cfg->resumption == TLSC_RESUME_BOTH && w->tickets != NULL && tlsc_tickets_count(w->tickets) == 0)
        SSL_set_options(c->ssl, SSL_OP_NO_TICKET);
    SSL_set_app_data(c->ssl, c);
    SSL_set_accept_state(c->ssl);
    c->deadline_ms = tlsc_now_ms() + HANDSHAKE_TIMEOUT_MS;
    w->stats.connections++;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        goto fail;
    return;

fail:
    ERR_clear_error();
    c->state = TLSC_CONN_HELLO;
    conn_close(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Stats, deadlines, signals                                                                   */

static void on_stats_written(int status, const redisReply *reply, void *data)
{
    tlsc_worker_t *w = data;

    w->stats_inflight = 0;
}

static void stats_write(tlsc_worker_t *w)
{
    enum { NFIELDS = 2 + 18 };
    char key[160], ttl[8], values[NFIELDS][24];
    const char *argv[2 + 2 * NFIELDS];
    size_t argvlen[2 + 2 * NFIELDS];
    int argc = 0, nv = 0;

    if (w->stats_inflight || !tlsc_redis_ready(w->redis))
        return;
    if (w->tickets != NULL) {
        tlsc_tickets_stats_t ts;
        tlsc_tickets_stats(w->tickets, &ts);
        w->stats.tickets_issued = ts.issued;
        w->stats.tickets_decrypted = ts.decrypted;
        w->stats.tickets_renewed = ts.renewed;
        w->stats.tickets_unknown_key = ts.unknown_key;
    }
    snprintf(key, sizeof(key), "%s:stats:%s:%u", w->cfg->redis_prefix, w->cfg->node, w->id);
    argv[argc++] = "HSET";
    argv[argc++] = key;
#define ADD_FIELD(name, value)                                                                                                     \
    do {                                                                                                                           \
        snprintf(values[nv], sizeof(values[nv]), "%llu", (unsigned long long)(value));                                             \
        argv[argc++] = name;                                                                                                       \
        argv[argc++] = values[nv++];                                                                                               \
    } while (0)
#define ADD_STAT(name) ADD_FIELD(#name, w->stats.name);
    ADD_FIELD("pid", getpid());
    ADD_FIELD("updated", tlsc_wall_sec());
    TLSC_STATS_FIELDS(ADD_STAT)
#undef ADD_STAT
#undef ADD_FIELD
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    snprintf(ttl, sizeof(ttl), "%d", STATS_TTL_SEC);

    static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"};
    static const size_t multi_len[] = {5}, exec_len[] = {4};
    const char *expire[] = {"EXPIRE", key, ttl};
    size_t expire_len[] = {6, strlen(key), strlen(ttl)};
    const int cmd_argc[] = {1, argc, 3, 1};
    const char *const *cmd_argv[] = {multi, argv, expire, exec};
    const size_t *const cmd_len[] = {multi_len, argvlen, expire_len, exec_len};
    if (tlsc_redis_send(w->redis, 4, cmd_argc, cmd_argv, cmd_len, 1000, on_stats_written, w, NULL) != NULL)
        w->stats_inflight = 1;
}

static void on_tick(uv_timer_t *t)
{
    tlsc_worker_t *w = t->data;
    uint64_t now = tlsc_now_ms();
    tlsc_conn_t *c, *next;

    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (now >= c->deadline_ms || (w->draining && now >= w->drain_deadline_ms))
            conn_close(c);
    }
    stats_write(w);
}

static void begin_drain(tlsc_worker_t *w, const char *why);

static void on_warmup(uv_timer_t *t)
{
    tlsc_worker_t *w = t->data;

    if (!tlsc_redis_ready(w->redis) && tlsc_now_ms() < w->warmup_until_ms)
        return;
    uv_timer_stop(t);
    if (w->draining)
        return;
    if (!tlsc_redis_ready(w->redis))
        tlsc_log_warn("Redis not reached within %d ms: serving with full handshakes until it is", WARMUP_MAX_MS);
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (uv_listen((uv_stream_t *)&w->listeners[i], 1024, on_connection) != 0) {
            tlsc_log_error("cannot listen on inherited socket %zu", i);
            begin_drain(w, "listen failed");
            return;
        }
    }
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void begin_drain(tlsc_worker_t *w, const char *why)
{
    if (w->draining)
        return;
    w->draining = 1;
    w->drain_deadline_ms = tlsc_now_ms() + (uint64_t)w->cfg->drain_timeout_sec * 1000;
    tlsc_log_info("%s: draining %zu connection(s), deadline %us", why, w->n_conns, w->cfg->drain_timeout_sec);
    for (size_t i = 0; i < w->n_listeners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], NULL);
    if (w->n_conns == 0)
        uv_stop(&w->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    tlsc_worker_t *w = s->data;
    char err[512];
    tlsc_tls_t *fresh;

    if (signum != SIGHUP) {
        begin_drain(w, signum == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
    if (tlsc_tls_new(w->cfg, &fresh, err, sizeof(err)) != 0) {
        tlsc_log_error("SIGHUP: keeping the current certificates: %s", err);
        return;
    }
    tlsc__session_install(w, fresh);
    tlsc_tls_free(w->tls); /* connections still using the old contexts hold references */
    w->tls = fresh;
    tlsc_log_info("SIGHUP: certificates reloaded (%zu context(s))", tlsc_tls_count(fresh));
}

/* ------------------------------------------------------------------------------------------ */
/* Ticket keys from tlscache-daemon                                                             */

static tlsc_keyproto_msg_t relay_msg; /* big, and holds secrets: static, wiped after use */
static unsigned char relay_buf[TLSC_KEYPROTO_ENCODE_MAX];

static int on_keyset(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *data)
{
    tlsc_worker_t *w = data;
    size_t len;
    int rc;

    if ((rc = tlsc_keyd_tickets_apply(kd, set, w->tickets)) != 0)
        return rc;
    /* Tell the master, so a worker respawned while the daemon is away starts with these keys. */
    if (w->master_link >= 0) {
        relay_msg.type = TLSC_KEYPROTO_KEYSET;
        relay_msg.u.keyset = *set;
        if (tlsc_keyproto_encode(&relay_msg, relay_buf, sizeof(relay_buf), &len) == 0 &&
            send(w->master_link, relay_buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
            tlsc_log_warn("could not hand key set epoch %llu to the master", (unsigned long long)set->epoch);
        tlsc_keyproto_msg_wipe(&relay_msg);
        OPENSSL_cleanse(relay_buf, sizeof(relay_buf));
    }
    return 0;
}

static void on_held(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *data)
{
    tlsc_worker_t *w = data;

    tlsc_tickets_export(w->tickets, out);
}

static int keys_start(tlsc_worker_t *w, tlsc_keyproto_keyset_t *held)
{
    char err[512];
    int rc = 0;

    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    static const unsigned char fallback_salt[TLSC_KEYPROTO_NAME_LEN] = "tlscache-psk-v1";
    if ((w->tickets = tlsc_tickets_new(NULL, NULL)) == NULL ||
        tlsc_keyproto_psk_load(w->cfg->keyd_secret_file, psk, err, sizeof(err)) != 0 ||
        tlsc_keyproto_derive(psk, fallback_salt, "tlscache fallback seal v1", w->fallback_seal_key, sizeof(w->fallback_seal_key)) !=
            0) {
        OPENSSL_cleanse(psk, sizeof(psk));
        tlsc_log_error("--keyd-secret-file: cannot set up sealing keys");
        rc = -1;
        goto done;
    }
    OPENSSL_cleanse(psk, sizeof(psk));
    if (held != NULL && held->count > 0 && tlsc_tickets_apply(w->tickets, held, 0) != 0)
        tlsc_log_warn("the master's ticket keys were refused; waiting for the daemon");
    tlsc_keyd_options_t ko = {
        .address = w->cfg->keyd,
        .secret_file = w->cfg->keyd_secret_file,
        .node = w->cfg->node,
        .worker = w->id,
        .on_keyset = on_keyset,
        .get_held = on_held,
        .data = w,
    };
    if (tlsc_keyd_new(&w->loop, &ko, &w->keyd, err, sizeof(err)) != 0) {
        tlsc_log_error("--keyd %s: %s", w->cfg->keyd, err);
        rc = -1;
    }
done:
    if (held != NULL) {
        OPENSSL_cleanse(held, sizeof(*held));
        free(held);
    }
    return rc;
}

int tlsc_worker_run(const tlsc_config_t *cfg, tlsc_tls_t *tls, unsigned id, const int *fds, size_t nfds,
                    tlsc_keyproto_keyset_t *held, int master_link)
{
    tlsc_worker_t *w;
    char tag[160], err[512];
    int rc = 1;

    snprintf(tag, sizeof(tag), "tlscache-server[%s/w%u]", cfg->node, id);
    tlsc_log_set_tag(tag);
    /* A worker never outlives its master. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGPIPE, SIG_IGN);

    if ((w = calloc(1, sizeof(*w))) == NULL)
        return 1;
    w->cfg = cfg;
    w->tls = tls;
    w->id = id;
    w->master_link = master_link;
    w->pid = (int)getpid();
    snprintf(w->sess_prefix, sizeof(w->sess_prefix), "%s:sess:", cfg->redis_prefix);
    if (uv_loop_init(&w->loop) != 0)
        goto fail_w;
    if (cfg->keyd != NULL && keys_start(w, held) != 0)
        goto fail_loop;
    held = NULL;

    tlsc_redis_options_t ro = {.url = &cfg->redis, .connect_timeout_ms = 1000, .max_inflight = 4096, .stall_ms = 1000};
    if (tlsc_redis_new(&w->loop, &ro, &w->redis, err, sizeof(err)) != 0) {
        tlsc_log_error("redis client: %s", err);
        goto fail_loop;
    }
    tlsc__session_install(w, tls);

    w->listeners = calloc(nfds, sizeof(*w->listeners));
    if (w->listeners == NULL)
        goto fail_redis;
    for (size_t i = 0; i < nfds; i++) {
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = w;
        w->n_listeners++;
        if (uv_tcp_open(&w->listeners[i], fds[i]) != 0) {
            tlsc_log_error("cannot use inherited socket %d", fds[i]);
            goto fail_listeners;
        }
    }
    /*
     * Accept once the Redis link is up (at most WARMUP_MAX_MS): the sockets are the master's and
     * already listening, so clients wait in the accept queue instead of getting full handshakes
     * from a worker that cannot look their sessions up yet.
     */
    uv_timer_init(&w->loop, &w->warmup);
    w->warmup.data = w;
    w->warmup_until_ms = tlsc_now_ms() + WARMUP_MAX_MS;
    uv_timer_start(&w->warmup, on_warmup, 0, 5);
    uv_signal_init(&w->loop, &w->sig_term);
    uv_signal_init(&w->loop, &w->sig_int);
    uv_signal_init(&w->loop, &w->sig_hup);
    w->sig_term.data = w->sig_int.data = w->sig_hup.data = w;
    uv_signal_start(&w->sig_term, on_signal, SIGTERM);
    uv_signal_start(&w->sig_int, on_signal, SIGINT);
    uv_signal_start(&w->sig_hup, on_signal, SIGHUP);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 1000, 1000);

    tlsc_log_debug("worker %u serving %zu socket(s)", id, nfds);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    rc = 0;

fail_listeners:
    /* Close everything that is left (connections past the deadline, timers, signals). */
    for (tlsc_conn_t *c = w->conns; c != NULL; c = c->next)
        conn_close(c);
fail_redis:
    tlsc_redis_close(w->redis);
    uv_walk(&w->loop, walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    free(w->listeners);
fail_loop:
    if (w->keyd != NULL)
        tlsc_keyd_close(w->keyd);
    uv_walk(&w->loop, walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        tlsc_log_warn("loop closed with handles still open");
    if (w->tickets != NULL) {
        for (size_t i = 0; i < tlsc_tls_count(w->tls); i++)
            tlsc_tickets_uninstall(tlsc_tls_ctx_at(w->tls, i));
        tlsc_tickets_free(w->tickets);
    }
fail_w:
    OPENSSL_cleanse(w->fallback_seal_key, sizeof(w->fallback_seal_key));
    if (held != NULL) {
        OPENSSL_cleanse(held, sizeof(*held));
        free(held);
    }
    free(w);
    return rc;
}
