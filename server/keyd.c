/* This file's one job: a worker's client link to tlscache-daemon (HELLO, KEYSETs, ACKs, pings). */
#include "keyd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "dial.h"
#include "keylink.h"
#include "log.h"
#include "tickets.h"
#include "util.h"

#define TICK_MS              100
#define PERMANENT_BACKOFF_MS 30000 /* after a wrong --keyd-secret-file: an operator has to act */

/*
 * The link is a tlsc_dial_t (resolve, connect, backoff, logs of each state change) with a
 * tlsc_keylink_t (TLS 1.3 PSK + frames) on its stream:
 *
 *   DIALING --on_dial_connect--> HANDSHAKE --HELLO answered--> OPEN
 *      ^                             |                           |
 *      +------- disconnect (timeout, EOF, bad frame, 3 pings unanswered, ERROR) ---+
 */
typedef enum {
    KEYD_DIALING,   /* the dial resolves, connects or backs off */
    KEYD_HANDSHAKE, /* TLS + HELLO exchange; `deadline_ms` bounds it */
    KEYD_OPEN,      /* HELLO answered: KEYSETs flow */
    KEYD_CLOSED,    /* tlsc_keyd_close() called */
} keyd_state_t;

struct tlsc_keyd_s {
    uv_loop_t *loop;
    uv_timer_t timer;
    tlsc_keyd_options_t o;
    char *address, *node, *host, *port, *path; /* path != NULL: Unix socket */
    tlsc_keyproto_link_t *link;
    keyd_state_t state;
    tlsc_dial_t *dial;
    tlsc_keylink_t *kl; /* on the dial's stream, from connect to disconnect */
    uint64_t deadline_ms, next_ping_ms;
    unsigned pings_out;
    uint64_t ping_nonce;
    tlsc_keyd_stats_t stats;
    int in_callback, pending_handles;
};

static void on_dial_connect(tlsc_dial_t *d, uv_stream_t *stream, void *data);
static void on_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data);
static void on_link_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data);
static void on_tick(uv_timer_t *t);
static void on_timer_closed(uv_handle_t *h);
static void on_dial_closed(void *data);

/* ================================================================ setup */

/* HOST:PORT, [V6]:PORT or unix:PATH, through the common address parser (common/addr.h). */
static int parse_address(tlsc_keyd_t *kd, const char *a, char *err, size_t errlen)
{
    char why[128];
    tlsc_addr_t addr;

    if (tlsc_addr_parse_str(a, TLSC_ADDR_ALLOW_UNIX, &addr, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--keyd %s: %s", a, why);
        return UV_EINVAL;
    }
    if (addr.kind == TLSC_ADDR_UNIX)
        return (kd->path = strdup(addr.path)) != NULL ? 0 : UV_ENOMEM;
    if ((kd->host = strdup(addr.host)) == NULL || (kd->port = strdup(addr.port_str)) == NULL)
        return UV_ENOMEM;
    return 0;
}

static void free_strings(tlsc_keyd_t *kd)
{
    free(kd->address);
    free(kd->node);
    free(kd->host);
    free(kd->port);
    free(kd->path);
}

int tlsc_keyd_new(uv_loop_t *loop, const tlsc_keyd_options_t *o, tlsc_keyd_t **out, char *err, size_t errlen)
{
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    tlsc_dial_options_t dopt = {0};
    char name[600];
    tlsc_keyd_t *kd;
    int rc;

    if (o->address == NULL || o->secret_file == NULL || o->on_keyset == NULL) {
        snprintf(err, errlen, "--keyd and --keyd-secret-file are both needed");
        return UV_EINVAL;
    }
    if ((kd = calloc(1, sizeof(*kd))) == NULL)
        return UV_ENOMEM;
    kd->loop = loop;
    kd->o = *o;
    if (kd->o.backoff_min_ms == 0)
        kd->o.backoff_min_ms = 100;
    if (kd->o.backoff_max_ms < kd->o.backoff_min_ms)
        kd->o.backoff_max_ms = kd->o.backoff_min_ms > 5000 ? kd->o.backoff_min_ms : 5000;
    if (kd->o.ping_interval_ms == 0)
        kd->o.ping_interval_ms = 15000;
    if (kd->o.connect_timeout_ms == 0)
        kd->o.connect_timeout_ms = 5000;
    snprintf(name, sizeof(name), "keyd %s", o->address);
    kd->address = strdup(o->address);
    kd->node = strdup(o->node && o->node[0] ? o->node : "worker");
    if (kd->address == NULL || kd->node == NULL) {
        rc = UV_ENOMEM;
        goto fail;
    }
    kd->o.address = kd->address;
    kd->o.node = kd->node;
    kd->o.secret_file = NULL; /* not needed after this */
    if ((rc = parse_address(kd, o->address, err, errlen)) != 0)
        goto fail;
    if (tlsc_keyproto_psk_load(o->secret_file, psk, err, errlen) != 0) {
        rc = UV_EINVAL;
        goto fail;
    }
    rc = tlsc_keyproto_link_new(0, psk, &kd->link, err, errlen);
    OPENSSL_cleanse(psk, sizeof(psk));
    if (rc != 0) {
        rc = UV_EINVAL;
        goto fail;
    }
    dopt.name = name;
    dopt.host = kd->host;
    dopt.port = kd->port != NULL ? (unsigned)strtoul(kd->port, NULL, 10) : 0;
    dopt.path = kd->path;
    dopt.timeout_ms = kd->o.connect_timeout_ms;
    dopt.backoff_min_ms = kd->o.backoff_min_ms;
    dopt.backoff_max_ms = kd->o.backoff_max_ms;
    dopt.permanent_backoff_ms = PERMANENT_BACKOFF_MS;
    dopt.on_connect = on_dial_connect;
    dopt.data = kd;
    if ((rc = tlsc_dial_new(loop, &dopt, &kd->dial)) != 0)
        goto fail_link;
    uv_timer_init(loop, &kd->timer); /* cannot fail on unix */
    kd->timer.data = kd;
    kd->pending_handles = 2; /* the timer and the dial */
    kd->state = KEYD_DIALING;
    uv_timer_start(&kd->timer, on_tick, TICK_MS, TICK_MS);
    *out = kd;
    return 0;

fail_link:
    tlsc_keyproto_link_free(kd->link);
fail:
    free_strings(kd);
    free(kd);
    return rc;
}

/* ================================================================ connection */

static void maybe_free(tlsc_keyd_t *kd)
{
    if (kd->state != KEYD_CLOSED || kd->pending_handles > 0 || kd->in_callback)
        return;
    tlsc_keyproto_link_free(kd->link);
    free_strings(kd);
    free(kd);
}

/*
 * Drops the current link: the dial logs `why` if it is news (with the address), closes the
 * stream and tries again after its jittered backoff.
 */
static void disconnect(tlsc_keyd_t *kd, tlsc_dial_fault_t fault, const char *why)
{
    if (kd->kl != NULL) {
        tlsc_keylink_free(kd->kl);
        kd->kl = NULL;
    }
    if (kd->state == KEYD_CLOSED || kd->state == KEYD_DIALING)
        return;
    kd->stats.connected = 0;
    kd->state = KEYD_DIALING;
    tlsc_dial_fail(kd->dial, fault, "%s", why);
}

static void send_msg(tlsc_keyd_t *kd, const tlsc_keyproto_msg_t *m)
{
    int rc;

    if (kd->kl != NULL && (rc = tlsc_keylink_send(kd->kl, m)) != 0)
        disconnect(kd, TLSC_DIAL_TRANSIENT, rc == UV_EINVAL ? "cannot encode a message" : uv_strerror(rc));
}

/* Connected: start TLS; the HELLO waits in the session until the handshake completes. */
static void on_dial_connect(tlsc_dial_t *d, uv_stream_t *stream, void *data)
{
    tlsc_keyd_t *kd = data;
    tlsc_keyproto_msg_t *hello;
    int rc;

    kd->state = KEYD_HANDSHAKE;
    kd->deadline_ms = tlsc_now_ms() + kd->o.connect_timeout_ms;
    if ((kd->kl = tlsc_keylink_start(stream, kd->link, on_msg, on_link_fail, kd)) == NULL) {
        disconnect(kd, TLSC_DIAL_TRANSIENT, "cannot start TLS (out of memory?)");
        return;
    }
    if ((hello = calloc(1, sizeof(*hello))) == NULL) {
        disconnect(kd, TLSC_DIAL_TRANSIENT, "out of memory");
        return;
    }
    hello->type = TLSC_KEYPROTO_HELLO;
    hello->u.hello.version_min = TLSC_KEYPROTO_VERSION_MIN;
    hello->u.hello.version_max = TLSC_KEYPROTO_VERSION;
    hello->u.hello.worker = kd->o.worker;
    snprintf(hello->u.hello.node, sizeof(hello->u.hello.node), "%s", kd->node);
    if (kd->o.get_held != NULL)
        kd->o.get_held(kd, &hello->u.hello.held, kd->o.data);
    rc = tlsc_keylink_send(kd->kl, hello);
    tlsc_keyproto_msg_wipe(hello);
    free(hello);
    if (rc != 0)
        disconnect(kd, TLSC_DIAL_TRANSIENT, rc == UV_EINVAL ? "cannot encode HELLO (held key set invalid?)" : uv_strerror(rc));
}

/* A wrong secret is the operator's to fix: said at error level, retried slowly. */
static void on_link_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data)
{
    tlsc_keyd_t *kd = data;
    char why[300];

    if (where == TLSC_KEYLINK_TLS && code == TLSC_KEYPROTO_EAUTH) {
        snprintf(why, sizeof(why), "TLS handshake failed: is --keyd-secret-file the daemon's --secret-file? (%s)",
                 tlsc_keylink_reason(kl));
        disconnect(kd, TLSC_DIAL_PERMANENT, why);
        return;
    }
    if (where == TLSC_KEYLINK_READ && code == UV_EOF)
        snprintf(why, sizeof(why), "closed by the daemon%s", kd->state == KEYD_HANDSHAKE ? " during the handshake" : "");
    else if (where == TLSC_KEYLINK_FRAME)
        snprintf(why, sizeof(why), "bad frame from the daemon: %s", tlsc_keylink_strerror(where, code));
    else
        snprintf(why, sizeof(why), "%s", tlsc_keylink_strerror(where, code));
    disconnect(kd, TLSC_DIAL_TRANSIENT, why);
}

static void handle_msg(tlsc_keyd_t *kd, const tlsc_keyproto_msg_t *m)
{
    tlsc_keyproto_msg_t reply;
    int rc;

    memset(&reply, 0, sizeof(reply));
    switch (m->type) {
    case TLSC_KEYPROTO_HELLO:
        if (kd->state != KEYD_HANDSHAKE || m->u.hello.version_min != m->u.hello.version_max ||
            m->u.hello.version_max > TLSC_KEYPROTO_VERSION || m->u.hello.version_min < TLSC_KEYPROTO_VERSION_MIN) {
            disconnect(kd, TLSC_DIAL_TRANSIENT, "unexpected HELLO");
            return;
        }
        kd->state = KEYD_OPEN;
        kd->stats.connects++;
        kd->stats.connected = 1;
        kd->next_ping_ms = tlsc_now_ms() + kd->o.ping_interval_ms;
        kd->pings_out = 0;
        tlsc_dial_up(kd->dial); /* logs "connected" or "connected again" */
        tlsc_log_debug("keyd %s: daemon %s, protocol v%u", kd->address, m->u.hello.node, (unsigned)m->u.hello.version_max);
        return;
    case TLSC_KEYPROTO_KEYSET:
        if (kd->state != KEYD_OPEN) {
            disconnect(kd, TLSC_DIAL_TRANSIENT, "KEYSET before HELLO");
            return;
        }
        kd->in_callback++;
        rc = kd->o.on_keyset(kd, &m->u.keyset, kd->o.data);
        kd->in_callback--;
        if (kd->state == KEYD_CLOSED) {
            maybe_free(kd);
            return;
        }
        if (rc != 0) {
            /*
             * Never a silent ACK: the daemon hears why (ERROR STALE or REFUSED, which it logs)
             * and we reconnect, so our HELLO tells it the epoch we hold and it can move past it.
             */
            char why[TLSC_KEYPROTO_MAX_ERROR_TEXT + 1];
            kd->stats.rejected++;
            snprintf(why, sizeof(why), "key set epoch %llu %s", (unsigned long long)m->u.keyset.epoch,
                     rc == TLSC_TICKETS_ESTALE ? "is below the epoch this worker applied"
                                               : "refused (a key out of bounds or invalid)");
            reply.type = TLSC_KEYPROTO_ERROR;
            reply.u.error.code = rc == TLSC_TICKETS_ESTALE ? TLSC_KEYPROTO_ERR_STALE : TLSC_KEYPROTO_ERR_REFUSED;
            snprintf(reply.u.error.text, sizeof(reply.u.error.text), "%s", why);
            send_msg(kd, &reply);
            disconnect(kd, TLSC_DIAL_TRANSIENT, why);
            return;
        }
        kd->stats.keysets++;
        kd->stats.last_epoch = m->u.keyset.epoch;
        reply.type = TLSC_KEYPROTO_ACK;
        reply.u.epoch = m->u.keyset.epoch;
        send_msg(kd, &reply);
        return;
    case TLSC_KEYPROTO_WINDOW:
        if (kd->state != KEYD_OPEN) {
            disconnect(kd, TLSC_DIAL_TRANSIENT, "WINDOW before HELLO");
            return;
        }
        tlsc_log_debug("keyd %s: daemon window: rotate %us, ticket lifetime %us, lead %us", kd->address,
                       (unsigned)m->u.window.rotate_sec, (unsigned)m->u.window.lifetime_sec, (unsigned)m->u.window.lead_sec);
        if (kd->o.on_window != NULL) {
            kd->in_callback++;
            kd->o.on_window(kd, m->u.window.rotate_sec, m->u.window.lifetime_sec, m->u.window.lead_sec, kd->o.data);
            kd->in_callback--;
            if (kd->state == KEYD_CLOSED)
                maybe_free(kd);
        }
        return;
    case TLSC_KEYPROTO_PING:
        reply.type = TLSC_KEYPROTO_PONG;
        reply.u.nonce = m->u.nonce;
        send_msg(kd, &reply);
        return;
    case TLSC_KEYPROTO_PONG:
        if (m->u.nonce == kd->ping_nonce)
            kd->pings_out = 0;
        return;
    case TLSC_KEYPROTO_ERROR: {
        char why[TLSC_KEYPROTO_MAX_ERROR_TEXT + 64];

        snprintf(why, sizeof(why), "the daemon says error %u: %s", (unsigned)m->u.error.code, m->u.error.text);
        disconnect(kd, TLSC_DIAL_TRANSIENT, why);
        return;
    }
    default:
        disconnect(kd, TLSC_DIAL_TRANSIENT, "unexpected message");
        return;
    }
}

static void on_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data)
{
    handle_msg(data, m);
}

static void on_tick(uv_timer_t *t)
{
    tlsc_keyd_t *kd = t->data;
    uint64_t now = tlsc_now_ms();
    tlsc_keyproto_msg_t ping;

    switch (kd->state) {
    case KEYD_HANDSHAKE:
        if (now >= kd->deadline_ms)
            disconnect(kd, TLSC_DIAL_TRANSIENT, "no TLS handshake and HELLO within --keyd's connect timeout");
        break;
    case KEYD_OPEN:
        if (now < kd->next_ping_ms)
            break;
        if (kd->pings_out >= 3) {
            disconnect(kd, TLSC_DIAL_TRANSIENT, "3 pings unanswered");
            break;
        }
        memset(&ping, 0, sizeof(ping));
        ping.type = TLSC_KEYPROTO_PING;
        ping.u.nonce = ++kd->ping_nonce;
        kd->pings_out++;
        kd->next_ping_ms = now + kd->o.ping_interval_ms;
        send_msg(kd, &ping);
        break;
    case KEYD_DIALING:
    case KEYD_CLOSED:
        break;
    }
}

/* ================================================================ teardown */

static void on_timer_closed(uv_handle_t *h)
{
    on_dial_closed(h->data);
}

static void on_dial_closed(void *data)
{
    tlsc_keyd_t *kd = data;

    kd->pending_handles--;
    maybe_free(kd);
}

void tlsc_keyd_close(tlsc_keyd_t *kd)
{
    if (kd == NULL || kd->state == KEYD_CLOSED)
        return;
    if (kd->kl != NULL) {
        tlsc_keylink_free(kd->kl); /* freed on its way out when we are inside its callback */
        kd->kl = NULL;
    }
    kd->state = KEYD_CLOSED;
    kd->stats.connected = 0;
    tlsc_dial_close(kd->dial, on_dial_closed, kd);
    uv_close((uv_handle_t *)&kd->timer, on_timer_closed);
}

void tlsc_keyd_stats(const tlsc_keyd_t *kd, tlsc_keyd_stats_t *out)
{
    *out = kd->stats;
    out->failures = tlsc_dial_failures(kd->dial); /* it hears of every failure, ours included */
}

int tlsc_keyd_tickets_apply(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *tickets)
{
    int rc = tlsc_tickets_apply(tickets, set, 1);

    /* The epoch already applied, re-sent after a reconnect, is a replay; a lower one is stale. */
    return rc == TLSC_TICKETS_ESTALE && set->epoch == tlsc_tickets_epoch(tickets) ? 0 : rc;
}

void tlsc_keyd_tickets_held(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *tickets)
{
    tlsc_tickets_export(tickets, out);
}

void tlsc_keyd_tickets_window(tlsc_keyd_t *kd, uint32_t rotate_sec, uint32_t lifetime_sec, uint32_t lead_sec, void *tickets)
{
    tlsc_tickets_set_max_life(tickets, rotate_sec + lifetime_sec); /* the decoder bounded the sum to 7 days */
}
