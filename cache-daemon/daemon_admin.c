/* This file's one job: tlscache-daemon's admin endpoint — its metrics and health over plain HTTP. */
#include "daemon_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "keyproto.h"
#include "prom.h"
#include "util.h"

struct tlsc_daemon_admin_s {
    tlsc_daemon_t *d;
    tlsc_http_t *http;
    uv_poll_t poll;
    uv_timer_t timer; /* once a second: the HTTP deadlines */
    int pending_closes;
    uint64_t started_sec;
};

static const char *role_name(uint8_t role)
{
    return role == TLSC_KEYPROTO_ROLE_CURRENT ? "current" : role == TLSC_KEYPROTO_ROLE_NEXT ? "next" : "previous";
}

static void counter(tlsc_buf_t *b, const char *name, const char *help, uint64_t v)
{
    tlsc_prom_family(b, name, "counter", help);
    tlsc_prom_u64(b, name, "", v);
}

static void gauge(tlsc_buf_t *b, const char *name, const char *help, uint64_t v)
{
    tlsc_prom_family(b, name, "gauge", help);
    tlsc_prom_u64(b, name, "", v);
}

static void render(tlsc_daemon_admin_t *a, tlsc_buf_t *b)
{
    tlsc_daemon_key_info_t keys[TLSC_KEYPROTO_MAX_KEYS];
    size_t nkeys = tlsc_daemon_keys(a->d, keys, TLSC_KEYPROTO_MAX_KEYS), open, behind;
    uint64_t now = tlsc_wall_sec(), lag;
    tlsc_daemon_stats_t st;
    char labels[512];

    tlsc_daemon_stats(a->d, &st);
    tlsc_daemon_workers(a->d, &open, &behind, &lag);
    snprintf(labels, sizeof(labels), "version=\"%s\"", TLSC_VERSION);
    tlsc_prom_family(b, "tlscache_daemon_build_info", "gauge", "the build");
    tlsc_prom_u64(b, "tlscache_daemon_build_info", labels, 1);
    gauge(b, "tlscache_daemon_start_time_seconds", "when the daemon started, Unix time", a->started_sec);
    gauge(b, "tlscache_daemon_epoch", "epoch of the key window (it grows with every change)", st.epoch);
    gauge(b, "tlscache_daemon_grace", "1 during the restart grace period (collecting the workers' key sets)",
          (uint64_t)tlsc_daemon_in_grace(a->d));
    tlsc_prom_family(b, "tlscache_daemon_keys", "gauge", "keys in the window by role");
    static const uint8_t roles[] = {TLSC_KEYPROTO_ROLE_NEXT, TLSC_KEYPROTO_ROLE_CURRENT, TLSC_KEYPROTO_ROLE_PREVIOUS};
    for (size_t r = 0; r < 3; r++) {
        uint64_t n = 0;
        for (size_t i = 0; i < nkeys; i++)
            n += keys[i].role == roles[r];
        snprintf(labels, sizeof(labels), "role=\"%s\"", role_name(roles[r]));
        tlsc_prom_u64(b, "tlscache_daemon_keys", labels, n);
    }
    /* Keys are told apart by their place in the window, never by name. */
    tlsc_prom_family(b, "tlscache_daemon_key_age_seconds", "gauge",
                     "seconds since a key started to encrypt (negative: a next key, not started yet)");
    for (size_t i = 0; i < nkeys; i++) {
        snprintf(labels, sizeof(labels), "key=\"%zu\",role=\"%s\"", i, role_name(keys[i].role));
        tlsc_prom_double(b, "tlscache_daemon_key_age_seconds", labels, (double)now - (double)keys[i].not_before);
    }
    tlsc_prom_family(b, "tlscache_daemon_key_expires_in_seconds", "gauge", "seconds until a key stops opening tickets");
    for (size_t i = 0; i < nkeys; i++) {
        snprintf(labels, sizeof(labels), "key=\"%zu\",role=\"%s\"", i, role_name(keys[i].role));
        tlsc_prom_double(b, "tlscache_daemon_key_expires_in_seconds", labels, (double)keys[i].not_after - (double)now);
    }
    gauge(b, "tlscache_daemon_workers_connected", "authenticated worker links", open);
    gauge(b, "tlscache_daemon_workers_behind", "worker links that have not acknowledged the current epoch", behind);
    gauge(b, "tlscache_daemon_acks_behind_max_epochs", "the most epochs an acknowledging worker is behind", lag);
    gauge(b, "tlscache_daemon_links_pending", "links in the TLS handshake or before HELLO", st.pending);
    counter(b, "tlscache_daemon_links_accepted_total", "links accepted", st.accepted);
    counter(b, "tlscache_daemon_auth_failures_total", "links that failed the PSK handshake", st.auth_failed);
    counter(b, "tlscache_daemon_protocol_errors_total", "links closed for a protocol error", st.protocol_errors);
    counter(b, "tlscache_daemon_links_evicted_total", "unauthenticated links closed to make room", st.evicted);
    counter(b, "tlscache_daemon_rotations_total", "key rotations", st.rotations);
    counter(b, "tlscache_daemon_pushes_total", "key sets pushed to workers", st.pushes);
    counter(b, "tlscache_daemon_acks_total", "acknowledgements received", st.acks);
    counter(b, "tlscache_daemon_keysets_refused_by_workers_total", "key sets workers refused (stale or out of bounds)",
            st.refused_by_workers);
    counter(b, "tlscache_daemon_epochs_refused_total", "HELLOs reporting an epoch far ahead of ours", st.epochs_refused);
    counter(b, "tlscache_daemon_keys_refused_total", "keys offered by workers outside the window's bounds", st.keys_refused);
}

static void on_request(void *data, const char *path, tlsc_http_reply_t *reply)
{
    tlsc_daemon_admin_t *a = data;

    if (strcmp(path, "/metrics") == 0) {
        reply->status = 200;
        reply->content_type = TLSC_PROM_CONTENT_TYPE;
        render(a, &reply->body);
    } else if (strcmp(path, "/healthz") == 0) {
        reply->status = 200;
        tlsc_buf_printf(&reply->body, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        tlsc_daemon_key_info_t keys[TLSC_KEYPROTO_MAX_KEYS];
        size_t n = tlsc_daemon_keys(a->d, keys, TLSC_KEYPROTO_MAX_KEYS), current = 0;

        for (size_t i = 0; i < n; i++)
            current += keys[i].role == TLSC_KEYPROTO_ROLE_CURRENT;
        reply->status = 503;
        if (tlsc_daemon_in_grace(a->d))
            tlsc_buf_printf(&reply->body, "restart grace period: collecting the workers' key sets\n");
        else if (current == 0)
            tlsc_buf_printf(&reply->body, "no current key in the window\n");
        else {
            reply->status = 200;
            tlsc_buf_printf(&reply->body, "ready\n");
        }
    } else if (strcmp(path, "/") == 0) {
        reply->status = 200;
        tlsc_buf_printf(&reply->body, "tlscache-daemon admin: /metrics /healthz /readyz\n");
    } else {
        tlsc_buf_printf(&reply->body, "not found: /metrics /healthz /readyz\n");
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    tlsc_daemon_admin_t *a = p->data;

    tlsc_http_run(a->http, tlsc_now_ms());
}

static void on_timer(uv_timer_t *t)
{
    tlsc_daemon_admin_t *a = t->data;

    tlsc_http_run(a->http, tlsc_now_ms());
}

tlsc_daemon_admin_t *tlsc_daemon_admin_start(uv_loop_t *loop, const char *addr, tlsc_daemon_t *d, char *err, size_t errlen)
{
    tlsc_daemon_admin_t *a = calloc(1, sizeof(*a));
    int rc;

    if (a == NULL) {
        snprintf(err, errlen, "--admin: out of memory");
        return NULL;
    }
    a->d = d;
    a->started_sec = tlsc_wall_sec();
    if ((a->http = tlsc_http_new("--admin", addr, on_request, a, err, errlen)) == NULL) {
        free(a);
        return NULL;
    }
    if ((rc = uv_poll_init(loop, &a->poll, tlsc_http_fd(a->http))) != 0) {
        snprintf(err, errlen, "--admin: %s", uv_strerror(rc));
        tlsc_http_free(a->http);
        free(a);
        return NULL;
    }
    a->poll.data = a->timer.data = a;
    uv_timer_init(loop, &a->timer);
    uv_poll_start(&a->poll, UV_READABLE, on_poll);
    uv_timer_start(&a->timer, on_timer, 1000, 1000);
    return a;
}

static void on_closed(uv_handle_t *h)
{
    tlsc_daemon_admin_t *a = h->data;

    if (--a->pending_closes == 0) {
        tlsc_http_free(a->http);
        free(a);
    }
}

void tlsc_daemon_admin_close(tlsc_daemon_admin_t *a)
{
    if (a == NULL || a->pending_closes != 0)
        return;
    a->pending_closes = 2;
    uv_close((uv_handle_t *)&a->poll, on_closed);
    uv_close((uv_handle_t *)&a->timer, on_closed);
}
