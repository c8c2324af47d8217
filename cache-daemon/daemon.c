/* This file's one job: the daemon's key window, its rotation, and pushing it to every worker. */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "addr.h"
#include "keylink.h"
#include "log.h"
#include "util.h"

#define TICK_MS 250
#define HISTORY 256 /* fingerprints of past keys, to refuse a repeat */
#define BACKLOG 128

typedef enum {
    CONN_HANDSHAKE, /* TLS handshake, then the worker's HELLO */
    CONN_OPEN,
    CONN_CLOSING,
} conn_state_t;

typedef struct conn_s {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct conn_s *next, *prev;
    tlsc_daemon_t *d;
    tlsc_keylink_t *kl; /* TLS + frames on h (which is first: the close callback finds us by it) */
    conn_state_t state;
    uint64_t deadline_ms; /* handshake deadline, then idle deadline */
    uint64_t acked_epoch;
    uint32_t worker;
    char node[TLSC_KEYPROTO_MAX_NODE + 1];
    char peer[64];
} conn_t;

/* Keys and their history live in one locked, non-dumpable mapping. */
typedef struct {
    tlsc_keyproto_keyset_t window;    /* roles are recomputed when sent */
    tlsc_keyproto_keyset_t candidate; /* newest key set reported by a worker during the grace period */
    int have_candidate;
    unsigned char seen[HISTORY][32]; /* SHA-256 of past secrets and names */
    size_t seen_count, seen_next;
} vault_t;

typedef struct {
    uint64_t last_ms;
    unsigned suppressed;
} ratelimit_t;

struct tlsc_daemon_s {
    uv_loop_t *loop;
    tlsc_daemon_options_t o;
    char *node;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    int have_tcp, have_pipe;
    uv_timer_t timer;
    tlsc_keyproto_link_t *link;
    vault_t *vault;
    conn_t *conns;
    size_t nconns;
    int pending_handles, closing;
    uint64_t grace_until_ms; /* 0 once the window is decided */
    uint64_t epoch;
    tlsc_daemon_stats_t stats;
    ratelimit_t rl_auth, rl_proto;
    char *unix_path;
};

static void on_tick(uv_timer_t *t);
static void on_connection(uv_stream_t *server, int status);
static void on_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data);
static void on_link_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data);
static void on_conn_closed(uv_handle_t *h);
static void on_handle_closed(uv_handle_t *h);

/* ================================================================ helpers */

/* Returns non-zero when a line may be logged now; counts the rest. One line a second at most. */
static int ratelimit(ratelimit_t *rl, unsigned *suppressed)
{
    uint64_t now = tlsc_now_ms();

    if (now - rl->last_ms < 1000 && rl->last_ms != 0) {
        rl->suppressed++;
        return 0;
    }
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->last_ms = now;
    return 1;
}

static void fingerprint(const unsigned char *p, size_t len, unsigned char out[32])
{
    unsigned int n = 0;

    EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

static int seen_before(const vault_t *v, const unsigned char fp[32])
{
    for (size_t i = 0; i < v->seen_count; i++)
        if (CRYPTO_memcmp(v->seen[i], fp, 32) == 0)
            return 1;
    return 0;
}

static void remember(vault_t *v, const unsigned char fp[32])
{
    memcpy(v->seen[v->seen_next], fp, 32);
    v->seen_next = (v->seen_next + 1) % HISTORY;
    if (v->seen_count < HISTORY)
        v->seen_count++;
}

int tlsc_daemon_fresh_bytes(unsigned char out[32], const unsigned char (*seen)[32], size_t n)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        int bad = 0;
        if (RAND_priv_bytes(out, 32) != 1)
            return -1;
        unsigned char acc = 0;
        for (int i = 0; i < 32; i++)
            acc |= out[i];
        bad = acc == 0;
        for (size_t i = 0; i < n && !bad; i++)
            bad = CRYPTO_memcmp(seen[i], out, 32) == 0;
        if (!bad)
            return 0;
        tlsc_log_error("CSPRNG returned a zero or repeated key; retrying");
    }
    OPENSSL_cleanse(out, 32);
    return -1;
}

/* A new key: name and secret from the CSPRNG, checked against everything seen before. */
static int make_key(tlsc_daemon_t *d, uint64_t not_before, tlsc_keyproto_key_t *k)
{
    vault_t *v = d->vault;
    unsigned char fp[32], tmp[32];

    for (int attempt = 0; attempt < 4; attempt++) {
        if (tlsc_daemon_fresh_bytes(k->secret, NULL, 0) != 0 || tlsc_daemon_fresh_bytes(tmp, NULL, 0) != 0)
            break;
        memcpy(k->name, tmp, TLSC_KEYPROTO_NAME_LEN);
        OPENSSL_cleanse(tmp, sizeof(tmp));
        int repeat = 0;
        fingerprint(k->secret, sizeof(k->secret), fp);
        repeat |= seen_before(v, fp);
        unsigned char fpn[32];
        fingerprint(k->name, sizeof(k->name), fpn);
        repeat |= seen_before(v, fpn);
        for (size_t i = 0; i < v->window.count; i++)
            repeat |= memcmp(v->window.keys[i].name, k->name, TLSC_KEYPROTO_NAME_LEN) == 0;
        if (repeat) {
            tlsc_log_error("refusing a repeated key from the CSPRNG; retrying");
            continue;
        }
        remember(v, fp);
        remember(v, fpn);
        k->not_before = not_before;
        k->not_after = not_before + d->o.rotate_sec + d->o.ticket_lifetime_sec;
        k->role = TLSC_KEYPROTO_ROLE_NEXT;
        return 0;
    }
    OPENSSL_cleanse(k, sizeof(*k));
    return -1;
}

static void set_roles(tlsc_keyproto_keyset_t *set, uint64_t now)
{
    tlsc_keyproto_key_t *cur = NULL;

    for (size_t i = 0; i < set->count; i++) {
        tlsc_keyproto_key_t *k = &set->keys[i];
        if (k->not_before <= now && (cur == NULL || k->not_before > cur->not_before))
            cur = k;
    }
    for (size_t i = 0; i < set->count; i++) {
        tlsc_keyproto_key_t *k = &set->keys[i];
        k->role = k == cur              ? TLSC_KEYPROTO_ROLE_CURRENT
                  : k->not_before > now ? TLSC_KEYPROTO_ROLE_NEXT
                                        : TLSC_KEYPROTO_ROLE_PREVIOUS;
    }
}

/* ================================================================ window */

/*
 * Brings the window up to date: expired keys leave, and there is always a *next* key whose
 * not_before is at least the lead time away, so it reaches every worker before any worker
 * encrypts with it. Returns non-zero when the window changed.
 */
static int maintain_window(tlsc_daemon_t *d, uint64_t now)
{
    tlsc_keyproto_keyset_t *w = &d->vault->window;
    int changed = 0;

    for (size_t i = 0; i < w->count;) {
        if (w->keys[i].not_after <= now) {
            char tag[9];
            tlsc_keyproto_name_tag(w->keys[i].name, tag);
            tlsc_log_info("key %s expired", tag);
            OPENSSL_cleanse(&w->keys[i], sizeof(w->keys[i]));
            memmove(&w->keys[i], &w->keys[i + 1], (w->count - i - 1) * sizeof(w->keys[0]));
            OPENSSL_cleanse(&w->keys[w->count - 1], sizeof(w->keys[0]));
            w->count--;
            changed = 1;
        } else {
            i++;
        }
    }
    if (w->count == 0) {
        /* Nothing to inherit: the first key encrypts at once (no worker holds anything yet). */
        if (make_key(d, now, &w->keys[0]) != 0)
            return changed;
        w->count = 1;
        changed = 1;
    }
    /* Bounded by the window's capacity. */
    while (w->count < TLSC_KEYPROTO_MAX_KEYS) {
        const tlsc_keyproto_key_t *latest = &w->keys[0];
        for (size_t i = 1; i < w->count; i++)
            if (w->keys[i].not_before > latest->not_before)
                latest = &w->keys[i];
        if (latest->not_before > now)
            break; /* a next key exists */
        uint64_t nb = latest->not_before + d->o.rotate_sec;
        if (nb < now + d->o.lead_sec)
            nb = now + d->o.lead_sec;
        if (make_key(d, nb, &w->keys[w->count]) != 0)
            break;
        char tag[9], cur[9];
        tlsc_keyproto_name_tag(w->keys[w->count].name, tag);
        tlsc_keyproto_name_tag(latest->name, cur);
        w->count++;
        d->stats.rotations++;
        tlsc_log_info("rotation: key %s current, key %s next in %llus", cur, tag, (unsigned long long)(nb - now));
        changed = 1;
    }
    return changed;
}

/* Frees the daemon once it is closing and libuv has closed its last handle. */
static void maybe_free(tlsc_daemon_t *d)
{
    if (!d->closing || d->pending_handles > 0)
        return;
    tlsc_keyproto_link_free(d->link);
    OPENSSL_cleanse(d->vault, sizeof(*d->vault));
    munlock(d->vault, sizeof(*d->vault));
    munmap(d->vault, sizeof(*d->vault));
    free(d->node);
    free(d->unix_path);
    free(d);
}

/* ================================================================ sending */

static void close_conn(conn_t *c)
{
    tlsc_daemon_t *d = c->d;

    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    tlsc_keylink_free(c->kl); /* deferred when inside its callback */
    c->kl = NULL;
    uv_close(&c->h.handle, on_conn_closed);
}

static void send_msg(conn_t *c, const tlsc_keyproto_msg_t *m)
{
    if (c->state == CONN_CLOSING)
        return;
    if (tlsc_keylink_send(c->kl, m) != 0)
        close_conn(c);
}

static void send_error(conn_t *c, uint16_t code, const char *text)
{
    tlsc_keyproto_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_ERROR;
    m.u.error.code = code;
    snprintf(m.u.error.text, sizeof(m.u.error.text), "%s", text);
    send_msg(c, &m);
}

static void send_keyset(tlsc_daemon_t *d, conn_t *c)
{
    tlsc_keyproto_msg_t *m = malloc(sizeof(*m));

    if (m == NULL) {
        close_conn(c);
        return;
    }
    memset(m, 0, sizeof(*m));
    m->type = TLSC_KEYPROTO_KEYSET;
    m->u.keyset = d->vault->window;
    m->u.keyset.epoch = d->epoch;
    set_roles(&m->u.keyset, tlsc_wall_sec());
    send_msg(c, m);
    tlsc_keyproto_msg_wipe(m);
    free(m);
    d->stats.pushes++;
}

static void broadcast(tlsc_daemon_t *d)
{
    conn_t *c, *next;

    for (c = d->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_OPEN)
            send_keyset(d, c);
    }
}

/* The window changed: a new epoch, pushed to every open link. */
static void publish(tlsc_daemon_t *d)
{
    d->epoch++;
    d->stats.epoch = d->epoch;
    d->stats.keys = d->vault->window.count;
    broadcast(d);
}

/* ================================================================ restart grace */

/*
 * During the grace period after a start, a worker's HELLO may carry the window of the daemon
 * that ran before us; the newest (highest epoch) set with a key still valid wins.
 */
static void offer_candidate(tlsc_daemon_t *d, const tlsc_keyproto_keyset_t *held, uint64_t now)
{
    vault_t *v = d->vault;
    int useful = 0;

    for (size_t i = 0; i < held->count; i++)
        useful |= held->keys[i].not_after > now;
    if (!useful || (v->have_candidate && held->epoch <= v->candidate.epoch))
        return;
    OPENSSL_cleanse(&v->candidate, sizeof(v->candidate));
    v->candidate = *held;
    v->have_candidate = 1;
}

static void end_grace(tlsc_daemon_t *d)
{
    vault_t *v = d->vault;
    uint64_t now = tlsc_wall_sec();

    d->grace_until_ms = 0;
    if (v->have_candidate) {
        for (size_t i = 0; i < v->candidate.count; i++) {
            const tlsc_keyproto_key_t *k = &v->candidate.keys[i];
            unsigned char fp[32];
            if (k->not_after <= now)
                continue;
            v->window.keys[v->window.count++] = *k;
            fingerprint(k->secret, sizeof(k->secret), fp);
            remember(v, fp);
            fingerprint(k->name, sizeof(k->name), fp);
            remember(v, fp);
        }
        if (v->candidate.epoch >= d->epoch)
            d->epoch = v->candidate.epoch;
        d->stats.adopted = 1;
        tlsc_log_info("adopted %zu keys (epoch %llu) from a reconnecting worker", v->window.count,
                      (unsigned long long)v->candidate.epoch);
        OPENSSL_cleanse(&v->candidate, sizeof(v->candidate));
        v->have_candidate = 0;
    } else {
        tlsc_log_info("no worker offered keys within the grace period: making fresh keys");
    }
    maintain_window(d, now);
    publish(d);
}

/* ================================================================ messages */

static void handle_msg(tlsc_daemon_t *d, conn_t *c, const tlsc_keyproto_msg_t *m)
{
    tlsc_keyproto_msg_t reply;
    unsigned supp;

    memset(&reply, 0, sizeof(reply));
    if (c->state == CONN_HANDSHAKE && m->type != TLSC_KEYPROTO_HELLO) {
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "HELLO first");
        close_conn(c);
        return;
    }
    switch (m->type) {
    case TLSC_KEYPROTO_HELLO: {
        if (c->state != CONN_HANDSHAKE) {
            send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "HELLO twice");
            close_conn(c);
            return;
        }
        unsigned v = m->u.hello.version_max < TLSC_KEYPROTO_VERSION ? m->u.hello.version_max : TLSC_KEYPROTO_VERSION;
        if (v < m->u.hello.version_min || v < TLSC_KEYPROTO_VERSION_MIN) {
            if (ratelimit(&d->rl_proto, &supp))
                tlsc_log_warn("%s: no common protocol version (%u..%u)", c->peer, (unsigned)m->u.hello.version_min,
                              (unsigned)m->u.hello.version_max);
            send_error(c, TLSC_KEYPROTO_ERR_VERSION, "no common protocol version");
            close_conn(c);
            return;
        }
        c->state = CONN_OPEN;
        c->worker = m->u.hello.worker;
        snprintf(c->node, sizeof(c->node), "%s", m->u.hello.node);
        c->deadline_ms = tlsc_now_ms() + d->o.idle_timeout_ms;
        tlsc_log_info("%s: worker %s/%u connected, holds %zu keys (epoch %llu)", c->peer, c->node, (unsigned)c->worker,
                      m->u.hello.held.count, (unsigned long long)m->u.hello.held.epoch);
        reply.type = TLSC_KEYPROTO_HELLO;
        reply.u.hello.version_min = reply.u.hello.version_max = (uint16_t)v;
        snprintf(reply.u.hello.node, sizeof(reply.u.hello.node), "%s", d->node);
        send_msg(c, &reply);
        if (d->grace_until_ms != 0) {
            offer_candidate(d, &m->u.hello.held, tlsc_wall_sec());
            return; /* the window is pushed when the grace period ends */
        }
        if (m->u.hello.held.epoch >= d->epoch) {
            /* A worker that saw a later epoch than ours: move past it so our pushes count. */
            d->epoch = m->u.hello.held.epoch;
            publish(d);
            return;
        }
        send_keyset(d, c);
        return;
    }
    case TLSC_KEYPROTO_ACK:
        if (m->u.epoch > d->epoch) {
            send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "ACK of an epoch never sent");
            close_conn(c);
            return;
        }
        c->acked_epoch = m->u.epoch;
        d->stats.acks++;
        return;
    case TLSC_KEYPROTO_PING:
        reply.type = TLSC_KEYPROTO_PONG;
        reply.u.nonce = m->u.nonce;
        send_msg(c, &reply);
        return;
    case TLSC_KEYPROTO_PONG:
        return;
    case TLSC_KEYPROTO_ERROR:
        tlsc_log_warn("%s: worker %s/%u says error %u: %s", c->peer, c->node, (unsigned)c->worker, (unsigned)m->u.error.code,
                      m->u.error.text);
        close_conn(c);
        return;
    default: /* a KEYSET: workers push nothing */
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: unexpected message type %d from a worker; dropped (%u similar suppressed)", c->peer, (int)m->type,
                          supp);
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "workers do not push keys");
        close_conn(c);
        return;
    }
}

static void on_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data)
{
    conn_t *c = data;

    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_OPEN)
        c->deadline_ms = tlsc_now_ms() + c->d->o.idle_timeout_ms;
    handle_msg(c->d, c, m);
}

/* A peer without the secret, or with garbage, is counted, logged at a rate limit and dropped. */
static void on_link_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data)
{
    conn_t *c = data;
    tlsc_daemon_t *d = c->d;
    unsigned supp;

    if (c->state == CONN_CLOSING)
        return;
    switch (where) {
    case TLSC_KEYLINK_READ:
        if (c->state == CONN_OPEN)
            tlsc_log_info("%s: worker %s/%u disconnected%s%s", c->peer, c->node, (unsigned)c->worker, code == UV_EOF ? "" : ": ",
                          code == UV_EOF ? "" : uv_strerror(code));
        break;
    case TLSC_KEYLINK_WRITE:
        break;
    case TLSC_KEYLINK_TLS:
        if (code == TLSC_KEYPROTO_EAUTH) {
            d->stats.auth_failed++;
            if (ratelimit(&d->rl_auth, &supp))
                tlsc_log_warn("%s: TLS handshake failed (wrong secret or not our protocol): %s; dropped (%u similar suppressed)",
                              c->peer, tlsc_keylink_reason(kl), supp);
            break;
        }
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: %s; dropped (%u similar suppressed)", c->peer, tlsc_keylink_strerror(where, code), supp);
        break;
    case TLSC_KEYLINK_FRAME:
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: bad frame: %s; dropped (%u similar suppressed)", c->peer, tlsc_keylink_strerror(where, code), supp);
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, tlsc_keylink_strerror(where, code));
        break;
    }
    close_conn(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = (conn_t *)h;
    tlsc_daemon_t *d = c->d;

    free(c);
    d->pending_handles--;
    maybe_free(d);
}

static void peer_name(conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[46];

    if (c->h.handle.type == UV_NAMED_PIPE) {
        snprintf(c->peer, sizeof(c->peer), "unix peer");
        return;
    }
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(c->peer, sizeof(c->peer), "tcp peer");
        return;
    }
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    tlsc_daemon_t *d = server->data;
    conn_t *c;
    int rc;

    if (status != 0 || d->closing)
        return;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->d = d;
    rc = server->type == UV_TCP ? uv_tcp_init(d->loop, &c->h.tcp) : uv_pipe_init(d->loop, &c->h.pipe, 0);
    if (rc != 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    d->pending_handles++;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    c->state = CONN_HANDSHAKE;
    if (uv_accept(server, &c->h.stream) != 0) {
        close_conn(c);
        return;
    }
    peer_name(c);
    d->stats.accepted++;
    if (d->nconns > d->o.max_conns) {
        unsigned supp;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: refused: %zu links open (max %u)", c->peer, d->nconns, d->o.max_conns);
        close_conn(c);
        return;
    }
    c->deadline_ms = tlsc_now_ms() + d->o.handshake_timeout_ms;
    if (server->type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if ((c->kl = tlsc_keylink_start(&c->h.stream, d->link, on_msg, on_link_fail, c)) == NULL)
        close_conn(c);
}

static void on_tick(uv_timer_t *t)
{
    tlsc_daemon_t *d = t->data;
    uint64_t now_ms = tlsc_now_ms();
    conn_t *c, *next;

    for (c = d->conns; c != NULL; c = next) {
        next = c->next;
        if (now_ms >= c->deadline_ms) {
            if (c->state == CONN_HANDSHAKE) {
                unsigned supp;
                if (ratelimit(&d->rl_proto, &supp))
                    tlsc_log_warn("%s: no handshake/HELLO in time; dropped (%u similar suppressed)", c->peer, supp);
            } else {
                tlsc_log_warn("%s: worker %s/%u idle too long; dropped", c->peer, c->node, (unsigned)c->worker);
            }
            close_conn(c);
        }
    }
    if (d->grace_until_ms != 0) {
        if (now_ms >= d->grace_until_ms)
            end_grace(d);
        return;
    }
    if (maintain_window(d, tlsc_wall_sec()))
        publish(d);
    d->stats.conns = d->nconns;
}

/* ================================================================ setup */

static int bind_tcp(tlsc_daemon_t *d, const char *spec, char *err, size_t errlen)
{
    char why[128];
    tlsc_addr_t a;
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    int rc;

    if (tlsc_addr_parse_str(spec, TLSC_ADDR_ALLOW_ANY, &a, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, why);
        return UV_EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    /* Synchronous: this runs once at start-up, before the loop. */
    if ((rc = uv_getaddrinfo(d->loop, &req, NULL, a.host[0] ? a.host : NULL, a.port_str, &hints)) != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, uv_strerror(rc));
        return rc;
    }
    if ((rc = uv_tcp_init(d->loop, &d->tcp)) != 0) {
        uv_freeaddrinfo(req.addrinfo);
        goto fail;
    }
    d->tcp.data = d;
    d->have_tcp = 1;
    d->pending_handles++;
    rc = uv_tcp_bind(&d->tcp, req.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(req.addrinfo);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&d->tcp, BACKLOG, on_connection);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "--listen %s: %s", spec, uv_strerror(rc));
    return rc;
}

static int bind_unix(tlsc_daemon_t *d, const char *path, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    if (strlen(path) >= 108) {
        snprintf(err, errlen, "--unix %s: path too long", path);
        return UV_EINVAL;
    }
    /* A socket left by a killed daemon is replaced; any other file is an error. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "--unix %s: exists and is not a socket", path);
            return UV_EEXIST;
        }
        unlink(path);
    }
    if ((rc = uv_pipe_init(d->loop, &d->pipe, 0)) != 0)
        goto fail;
    d->pipe.data = d;
    d->have_pipe = 1;
    d->pending_handles++;
    mode_t old = umask(0077);
    rc = uv_pipe_bind(&d->pipe, path);
    umask(old);
    if (rc == 0 && chmod(path, 0600) != 0)
        rc = uv_translate_sys_error(errno);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&d->pipe, BACKLOG, on_connection);
    if (rc != 0)
        goto fail;
    d->unix_path = strdup(path);
    return 0;
fail:
    snprintf(err, errlen, "--unix %s: %s", path, uv_strerror(rc));
    return rc;
}

int tlsc_daemon_new(uv_loop_t *loop, const tlsc_daemon_options_t *o, const unsigned char psk[TLSC_KEYPROTO_PSK_LEN],
                    tlsc_daemon_t **out, char *err, size_t errlen)
{
    tlsc_daemon_t *d;
    int rc;

    if (o->listen == NULL && o->unix_path == NULL) {
        snprintf(err, errlen, "give --listen HOST:PORT and/or --unix PATH");
        return UV_EINVAL;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return UV_ENOMEM;
    d->loop = loop;
    d->o = *o;
    if (d->o.rotate_sec == 0)
        d->o.rotate_sec = 3600;
    if (d->o.ticket_lifetime_sec == 0)
        d->o.ticket_lifetime_sec = d->o.rotate_sec;
    if (d->o.lead_sec == 0)
        d->o.lead_sec = d->o.rotate_sec / 2 ? d->o.rotate_sec / 2 : 1;
    if (d->o.max_conns == 0)
        d->o.max_conns = 1024;
    if (d->o.handshake_timeout_ms == 0)
        d->o.handshake_timeout_ms = 5000;
    if (d->o.idle_timeout_ms == 0)
        d->o.idle_timeout_ms = 60000;
    /* The window holds every key still decrypting, one next and one current. */
    if ((uint64_t)d->o.ticket_lifetime_sec / d->o.rotate_sec + 3 > TLSC_KEYPROTO_MAX_KEYS) {
        snprintf(err, errlen, "--ticket-lifetime %u: at most %u times --rotate %u", d->o.ticket_lifetime_sec,
                 TLSC_KEYPROTO_MAX_KEYS - 4, d->o.rotate_sec);
        free(d);
        return UV_EINVAL;
    }
    d->node = strdup(o->node && o->node[0] ? o->node : "daemon");
    d->vault = mmap(NULL, sizeof(vault_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d->node == NULL || d->vault == MAP_FAILED) {
        free(d->node);
        free(d);
        return UV_ENOMEM;
    }
    if (mlock(d->vault, sizeof(vault_t)) != 0)
        tlsc_log_warn("mlock of the key window failed (%s); keys may reach swap", strerror(errno));
    if (madvise(d->vault, sizeof(vault_t), MADV_DONTDUMP) != 0)
        tlsc_log_warn("MADV_DONTDUMP failed (%s)", strerror(errno));
    if (tlsc_keyproto_link_new(1, psk, &d->link, err, errlen) != 0) {
        rc = UV_EINVAL;
        goto fail;
    }
    d->epoch = tlsc_wall_sec() * 1000; /* a restarted daemon starts above its predecessor's epochs */
    if ((rc = uv_timer_init(loop, &d->timer)) != 0)
        goto fail;
    d->timer.data = d;
    d->pending_handles++;
    if (o->listen && (rc = bind_tcp(d, o->listen, err, errlen)) != 0)
        goto fail_handles;
    if (o->unix_path && (rc = bind_unix(d, o->unix_path, err, errlen)) != 0)
        goto fail_handles;
    d->grace_until_ms = tlsc_now_ms() + d->o.grace_ms;
    if (d->o.grace_ms == 0)
        d->grace_until_ms = 1; /* end at the first tick */
    uv_timer_start(&d->timer, on_tick, 0, TICK_MS);
    *out = d;
    return 0;

fail_handles:
    tlsc_daemon_close(d);
    return rc;
fail:
    tlsc_keyproto_link_free(d->link);
    munmap(d->vault, sizeof(vault_t));
    free(d->node);
    free(d);
    return rc;
}

static void on_handle_closed(uv_handle_t *h)
{
    tlsc_daemon_t *d = h->data;

    d->pending_handles--;
    maybe_free(d);
}

void tlsc_daemon_close(tlsc_daemon_t *d)
{
    conn_t *c, *next;

    if (d == NULL || d->closing)
        return;
    d->closing = 1;
    OPENSSL_cleanse(&d->vault->window, sizeof(d->vault->window));
    OPENSSL_cleanse(&d->vault->candidate, sizeof(d->vault->candidate));
    if (d->unix_path)
        unlink(d->unix_path);
    for (c = d->conns; c != NULL; c = next) {
        next = c->next;
        close_conn(c);
    }
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    if (d->have_tcp)
        uv_close((uv_handle_t *)&d->tcp, on_handle_closed);
    if (d->have_pipe)
        uv_close((uv_handle_t *)&d->pipe, on_handle_closed);
}

void tlsc_daemon_stats(const tlsc_daemon_t *d, tlsc_daemon_stats_t *out)
{
    *out = d->stats;
    out->conns = d->nconns;
    out->keys = d->vault->window.count;
    out->epoch = d->epoch;
}
