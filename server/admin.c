/*
 * This file's one job: the server's admin endpoint — /metrics from the shared counters,
 * /healthz and /readyz from the master's view of its workers — on the master's poll loop.
 */
#include "admin.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "http.h"
#include "log.h"
#include "prom.h"
#include "util.h"

#define HEARTBEAT_STALE_MS 5000 /* a worker ticks every second; five missed ticks: it is stuck */

struct tlsc_admin_s {
    tlsc_admin_options_t o;
    tlsc_http_t *http;
    uint64_t started_sec;
    tlsc_stats_t *view; /* scratch: one per slot, then the sum at [workers] */
    pid_t *pids;
    uint64_t *restarts;
};

static const char *const version_names[TLSC_TLSV_N] = {"unknown", "1.2", "1.3"};
static const char *const outcome_names[TLSC_OUT_N] = {
    "full",           "resumed_id",    "resumed_ticket", "failed_timeout", "failed_closed", "failed_sni",
    "failed_version", "failed_cipher", "failed_not_tls", "failed_alert",   "failed_error",
};
static const char *const mode_names[] = {"none", "cache", "tickets", "both"};

void tlsc_admin_build_labels(char *out, size_t outlen)
{
    char hiredis[32];

    snprintf(hiredis, sizeof(hiredis), "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    snprintf(out, outlen, "version=\"%s\",openssl=\"%s\",libuv=\"%s\",hiredis=\"%s\"", TLSC_VERSION,
             OpenSSL_version(OPENSSL_VERSION_STRING), uv_version_string(), hiredis);
}

/* ------------------------------------------------------------------------------------------ */
/* The view: every slot, and their sum                                                          */

static void gather(tlsc_admin_t *a)
{
    unsigned n = a->o.cfg->workers;
    tlsc_stats_t *sum = &a->view[n];

    memset(sum, 0, sizeof(*sum));
    for (unsigned i = 0; i < n; i++) {
        a->o.slot_state(a->o.data, i + 1, &a->pids[i], &a->restarts[i]);
        tlsc_metrics_slot(a->o.metrics, i + 1, a->pids[i], &a->view[i]);
        tlsc_stats_add_counters(sum, &a->view[i]);
        sum->g.conns += a->view[i].g.conns;
        sum->g.redis_up += a->view[i].g.redis_up;
        sum->g.redis_masters += a->view[i].g.redis_masters;
        sum->g.redis_masters_up += a->view[i].g.redis_masters_up;
        sum->g.accepting += a->view[i].g.accepting;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* /metrics                                                                                     */

/* `worker="N"` or `worker="all"` (i == workers). */
static void worker_label(const tlsc_admin_t *a, unsigned i, char *out, size_t outlen)
{
    if (i == a->o.cfg->workers)
        snprintf(out, outlen, "worker=\"all\"");
    else
        snprintf(out, outlen, "worker=\"%u\"", i + 1);
}

/* One family with one sample per worker and the sum, from a field picked by `get`. */
typedef uint64_t (*pick_fn)(const tlsc_stats_t *st, size_t k);

static void per_worker(tlsc_admin_t *a, tlsc_buf_t *b, const char *name, const char *type, const char *help, const char *lname,
                       const char *const *lvalues, size_t nvalues, pick_fn get)
{
    char wl[32], labels[192];

    tlsc_prom_family(b, name, type, help);
    for (unsigned i = 0; i <= a->o.cfg->workers; i++) {
        worker_label(a, i, wl, sizeof(wl));
        for (size_t k = 0; k < nvalues; k++) {
            if (lname != NULL)
                snprintf(labels, sizeof(labels), "%s,%s=\"%s\"", wl, lname, lvalues[k]);
            else
                snprintf(labels, sizeof(labels), "%s", wl);
            tlsc_prom_u64(b, name, labels, get(&a->view[i], k));
        }
    }
}

static uint64_t pick_lookups(const tlsc_stats_t *st, size_t k)
{
    const uint64_t v[] = {st->lookups_hit,   st->lookups_miss,    st->lookups_timeout,
                          st->lookups_error, st->lookups_skipped, st->lookups_l1_hit};
    return v[k];
}
static uint64_t pick_stores(const tlsc_stats_t *st, size_t k)
{
    const uint64_t v[] = {st->stores_ok, st->stores_error, st->stores_timeout, st->stores_skipped};
    return v[k];
}
static uint64_t pick_waits(const tlsc_stats_t *st, size_t k)
{
    const uint64_t v[] = {st->store_waits_acked, st->store_waits_short, st->store_waits_skipped};
    return v[k];
}
static uint64_t pick_tickets(const tlsc_stats_t *st, size_t k)
{
    const uint64_t v[] = {st->tickets_issued, st->tickets_decrypted, st->tickets_renewed, st->tickets_unknown_key};
    return v[k];
}
static uint64_t pick_closed(const tlsc_stats_t *st, size_t k)
{
    return st->closed[k];
}
static uint64_t pick_accepted(const tlsc_stats_t *st, size_t k)
{
    return st->connections;
}
static uint64_t pick_conns(const tlsc_stats_t *st, size_t k)
{
    return st->g.conns;
}
static uint64_t pick_records_bad(const tlsc_stats_t *st, size_t k)
{
    return st->records_bad;
}
static uint64_t pick_redis_up(const tlsc_stats_t *st, size_t k)
{
    return st->g.redis_up;
}
static uint64_t pick_reconnects(const tlsc_stats_t *st, size_t k)
{
    return st->redis_reconnects;
}
static uint64_t pick_redirects(const tlsc_stats_t *st, size_t k)
{
    return k == 0 ? st->redis_moved : st->redis_ask;
}
static uint64_t pick_map_refreshes(const tlsc_stats_t *st, size_t k)
{
    return st->redis_map_refreshes;
}
static uint64_t pick_masters(const tlsc_stats_t *st, size_t k)
{
    return k == 0 ? st->g.redis_masters : st->g.redis_masters_up;
}

static uint64_t pick_redis_requests(const tlsc_stats_t *st, size_t k)
{
    return st->redis_requests;
}
static uint64_t pick_redis_commands(const tlsc_stats_t *st, size_t k)
{
    return st->redis_commands;
}
static uint64_t pick_redis_writes(const tlsc_stats_t *st, size_t k)
{
    return st->redis_writes;
}

static void render_handshakes(tlsc_admin_t *a, tlsc_buf_t *b)
{
    const char *mode = mode_names[a->o.cfg->resumption & 3];
    char wl[32], labels[192];

    tlsc_prom_family(b, "tlscache_handshakes_total", "counter",
                     "TLS handshakes by version, resumption mode (--resumption) and outcome");
    for (unsigned i = 0; i <= a->o.cfg->workers; i++) {
        worker_label(a, i, wl, sizeof(wl));
        for (size_t v = 0; v < TLSC_TLSV_N; v++) {
            for (size_t k = 0; k < TLSC_OUT_N; k++) {
                /* A version is known only once the ClientHello was read: "unknown" has failures only. */
                if (v == TLSC_TLSV_UNKNOWN && k <= TLSC_OUT_RESUMED_TICKET)
                    continue;
                snprintf(labels, sizeof(labels), "%s,version=\"%s\",mode=\"%s\",outcome=\"%s\"", wl, version_names[v], mode,
                         outcome_names[k]);
                tlsc_prom_u64(b, "tlscache_handshakes_total", labels, a->view[i].handshakes[v][k]);
            }
        }
    }
    tlsc_prom_family(b, "tlscache_resumption_ratio", "gauge",
                     "resumed / (full + resumed) handshakes since the start (use rate() of tlscache_handshakes_total for now)");
    for (unsigned i = 0; i <= a->o.cfg->workers; i++) {
        uint64_t full = 0, resumed = 0;
        for (size_t v = 0; v < TLSC_TLSV_N; v++) {
            full += a->view[i].handshakes[v][TLSC_OUT_FULL];
            resumed += a->view[i].handshakes[v][TLSC_OUT_RESUMED_ID] + a->view[i].handshakes[v][TLSC_OUT_RESUMED_TICKET];
        }
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_double(b, "tlscache_resumption_ratio", wl, full + resumed ? (double)resumed / (double)(full + resumed) : 0);
    }
}

static void render_histogram(tlsc_admin_t *a, tlsc_buf_t *b, const char *name, const char *help, size_t offset)
{
    char wl[32];

    tlsc_prom_family(b, name, "histogram", help);
    for (unsigned i = 0; i <= a->o.cfg->workers; i++) {
        const tlsc_hist_t *h = (const tlsc_hist_t *)((const char *)&a->view[i] + offset);
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_histogram(b, name, wl, tlsc_hist_bounds_sec, h->counts, TLSC_HIST_N, (double)h->sum_us / 1e6);
    }
}

static void render_workers(tlsc_admin_t *a, tlsc_buf_t *b)
{
    unsigned n = a->o.cfg->workers;
    uint64_t restarts = 0;
    char wl[32];

    tlsc_prom_family(b, "tlscache_worker_up", "gauge", "1 while the slot's worker process runs");
    for (unsigned i = 0; i < n; i++) {
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_u64(b, "tlscache_worker_up", wl, a->pids[i] > 0);
    }
    tlsc_prom_family(b, "tlscache_worker_accepting", "gauge", "1 while the slot's worker accepts connections");
    for (unsigned i = 0; i < n; i++) {
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_u64(b, "tlscache_worker_accepting", wl, a->pids[i] > 0 && a->view[i].g.accepting);
    }
    tlsc_prom_family(b, "tlscache_worker_restarts_total", "counter",
                     "workers the master started again in this slot (after an exit or a crash, or by a reload)");
    for (unsigned i = 0; i <= n; i++) {
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_u64(b, "tlscache_worker_restarts_total", wl, i < n ? a->restarts[i] : restarts);
        if (i < n)
            restarts += a->restarts[i];
    }
}

/* The key window, per worker; never a key's bytes or name. */
static void render_keys(tlsc_admin_t *a, tlsc_buf_t *b)
{
    uint64_t now = tlsc_wall_sec();
    char wl[32];

    tlsc_prom_family(b, "tlscache_ticket_keys", "gauge", "ticket keys the worker holds (from tlscache-daemon)");
    for (unsigned i = 0; i < a->o.cfg->workers; i++) {
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_u64(b, "tlscache_ticket_keys", wl, a->view[i].g.keys);
    }
    tlsc_prom_family(b, "tlscache_ticket_key_epoch", "gauge", "epoch of the last key set the worker applied");
    for (unsigned i = 0; i < a->o.cfg->workers; i++) {
        worker_label(a, i, wl, sizeof(wl));
        tlsc_prom_u64(b, "tlscache_ticket_key_epoch", wl, a->view[i].g.key_epoch);
    }
    tlsc_prom_family(b, "tlscache_ticket_key_rotated_seconds_ago", "gauge",
                     "seconds since the current key started to encrypt (the last rotation); absent without a current key");
    for (unsigned i = 0; i < a->o.cfg->workers; i++) {
        const tlsc_stats_t *st = &a->view[i];
        worker_label(a, i, wl, sizeof(wl));
        if (st->g.key_not_before != 0)
            tlsc_prom_u64(b, "tlscache_ticket_key_rotated_seconds_ago", wl,
                          now > st->g.key_not_before ? now - st->g.key_not_before : 0);
    }
    tlsc_prom_family(b, "tlscache_ticket_key_expires_in_seconds", "gauge",
                     "seconds until the current key stops opening tickets; absent without a current key");
    for (unsigned i = 0; i < a->o.cfg->workers; i++) {
        const tlsc_stats_t *st = &a->view[i];
        worker_label(a, i, wl, sizeof(wl));
        if (st->g.key_not_before != 0)
            tlsc_prom_u64(b, "tlscache_ticket_key_expires_in_seconds", wl,
                          st->g.key_not_after > now ? st->g.key_not_after - now : 0);
    }
}

static void render_metrics(tlsc_admin_t *a, tlsc_buf_t *b)
{
    static const char *const lookups[] = {"hit", "miss", "timeout", "error", "skipped", "l1_hit"};
    static const char *const stores[] = {"ok", "error", "timeout", "skipped"};
    static const char *const tickets[] = {"issued", "decrypted", "renewed", "unknown_key"};
    static const char *const waits[] = {"acked", "short", "skipped"};
    static const char *const one[] = {""};
    char labels[512], node[160];

    tlsc_admin_build_labels(labels, sizeof(labels));
    tlsc_prom_family(b, "tlscache_build_info", "gauge", "the build: tlscache, OpenSSL, libuv and hiredis versions");
    tlsc_prom_u64(b, "tlscache_build_info", labels, 1);
    snprintf(labels, sizeof(labels), "node=\"%s\",cluster=\"%s\"", tlsc_prom_escape(node, sizeof(node), a->o.cfg->node),
             a->o.cfg->cluster); /* both [A-Za-z0-9._-] by the flag's rules */
    tlsc_prom_family(b, "tlscache_node_info", "gauge", "this node's --node and --cluster");
    tlsc_prom_u64(b, "tlscache_node_info", labels, 1);
    tlsc_prom_family(b, "tlscache_start_time_seconds", "gauge", "when the master started, Unix time");
    tlsc_prom_u64(b, "tlscache_start_time_seconds", "", a->started_sec);
    tlsc_prom_family(b, "tlscache_workers", "gauge", "worker slots (--workers)");
    tlsc_prom_u64(b, "tlscache_workers", "", a->o.cfg->workers);
    render_workers(a, b);
    render_handshakes(a, b);
    per_worker(a, b, "tlscache_lookups_total", "counter", "session lookups in Redis by outcome (skipped: Redis was down)",
               "outcome", lookups, 6, pick_lookups);
    per_worker(a, b, "tlscache_records_refused_total", "counter",
               "session records found but refused (sealed under an unknown key, tampered, wrong name or version)", NULL, one, 1,
               pick_records_bad);
    per_worker(a, b, "tlscache_stores_total", "counter", "new sessions written to Redis by outcome (skipped: Redis was down)",
               "outcome", stores, 4, pick_stores);
    if (a->o.cfg->store_replicas > 0)
        per_worker(
            a, b, "tlscache_store_waits_total", "counter",
            "--store-replicas: WAIT answers after a store (acked: the replicas asked for hold it; short: fewer, failed open; "
            "skipped: stored without WAIT while the replicas were behind)",
            "outcome", waits, 3, pick_waits);
    render_histogram(a, b, "tlscache_lookup_duration_seconds", "time from a lookup's request to its answer or timeout",
                     offsetof(tlsc_stats_t, lookup_us));
    render_histogram(a, b, "tlscache_store_duration_seconds", "time from a store's request to its answer or timeout",
                     offsetof(tlsc_stats_t, store_us));
    render_histogram(a, b, "tlscache_handshake_duration_seconds", "time from accept to a completed handshake",
                     offsetof(tlsc_stats_t, handshake_us));
    per_worker(a, b, "tlscache_connections", "gauge", "open client connections", NULL, one, 1, pick_conns);
    per_worker(a, b, "tlscache_connections_accepted_total", "counter", "client connections accepted", NULL, one, 1, pick_accepted);
    per_worker(a, b, "tlscache_connections_closed_total", "counter", "client connections closed, by cause", "cause",
               tlsc_close_cause_names, TLSC_CLOSE_N, pick_closed);
    per_worker(a, b, "tlscache_redis_up", "gauge", "1 while the worker's Redis link answers (all: how many do)", NULL, one, 1,
               pick_redis_up);
    per_worker(a, b, "tlscache_redis_reconnects_total", "counter", "times the worker's Redis link connected again after the first",
               NULL, one, 1, pick_reconnects);
    if (a->o.cfg->redis.cluster) {
        static const char *const kinds[] = {"moved", "ask"}, *const states[] = {"known", "up"};

        per_worker(a, b, "tlscache_redis_cluster_redirects_total", "counter", "MOVED and ASK redirects followed", "kind", kinds, 2,
                   pick_redirects);
        per_worker(a, b, "tlscache_redis_cluster_map_refreshes_total", "counter", "Redis Cluster slot maps read and applied", NULL,
                   one, 1, pick_map_refreshes);
        per_worker(a, b, "tlscache_redis_cluster_masters", "gauge",
                   "masters in the worker's slot map, and those whose link answers", "state", states, 2, pick_masters);
    }
    per_worker(a, b, "tlscache_redis_requests_total", "counter",
               "Redis requests the worker queued: a store, a lookup, a stats write (one or more commands each)", NULL, one, 1,
               pick_redis_requests);
    per_worker(a, b, "tlscache_redis_commands_total", "counter",
               "Redis commands the worker queued (MULTI and EXEC count as commands)", NULL, one, 1, pick_redis_commands);
    per_worker(a, b, "tlscache_redis_writes_total", "counter",
               "socket writes that carried them: requests / writes above 1 is one loop iteration's requests in one write", NULL,
               one, 1, pick_redis_writes);
    if (a->o.cfg->keyd != NULL) {
        per_worker(a, b, "tlscache_tickets_total", "counter", "stateless tickets by what happened to them", "outcome", tickets, 4,
                   pick_tickets);
        render_keys(a, b);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* /readyz                                                                                      */

/* Appends one line per reason the node is not ready; returns how many. */
static unsigned not_ready(tlsc_admin_t *a, tlsc_buf_t *b)
{
    uint64_t now = tlsc_now_ms();
    unsigned reasons = 0;

    if (a->o.stopping(a->o.data)) {
        tlsc_buf_printf(b, "stopping: workers drain\n");
        reasons++;
    }
    for (unsigned i = 0; i < a->o.cfg->workers; i++) {
        const tlsc_stats_t *st = &a->view[i];
        const char *why = NULL;
        char detail[96];

        if (a->pids[i] <= 0)
            why = "not running (waiting to be started again)";
        else if (!st->g.accepting)
            why = "not accepting yet";
        else if (st->g.heartbeat_ms + HEARTBEAT_STALE_MS < now) {
            snprintf(detail, sizeof(detail), "no heartbeat for %llu ms (stuck?)", (unsigned long long)(now - st->g.heartbeat_ms));
            why = detail;
        } else if (!st->g.redis_up && a->o.cfg->redis.cluster) {
            snprintf(detail, sizeof(detail), "Redis Cluster: %llu of %llu masters answer (or slots uncovered)",
                     (unsigned long long)st->g.redis_masters_up, (unsigned long long)st->g.redis_masters);
            why = detail;
        } else if (!st->g.redis_up)
            why = "Redis not reached";
        else if ((a->o.cfg->resumption & TLSC_RESUME_TICKETS) && st->g.key_not_before == 0)
            why = "no current ticket key (tlscache-daemon not reached?)";
        if (why != NULL) {
            tlsc_buf_printf(b, "worker %u: %s\n", i + 1, why);
            reasons++;
        }
    }
    return reasons;
}

/* ------------------------------------------------------------------------------------------ */
/* Routes                                                                                       */

static void on_request(void *data, const char *path, tlsc_http_reply_t *reply)
{
    tlsc_admin_t *a = data;

    if (strcmp(path, "/metrics") == 0) {
        gather(a);
        reply->status = 200;
        reply->content_type = TLSC_PROM_CONTENT_TYPE;
        render_metrics(a, &reply->body);
    } else if (strcmp(path, "/healthz") == 0) {
        reply->status = 200;
        tlsc_buf_printf(&reply->body, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        gather(a);
        reply->status = not_ready(a, &reply->body) ? 503 : 200;
        if (reply->status == 200)
            tlsc_buf_printf(&reply->body, "ready\n");
    } else if (strcmp(path, "/") == 0) {
        reply->status = 200;
        tlsc_buf_printf(&reply->body, "tlscache-server admin: /metrics /healthz /readyz\n");
    } else {
        tlsc_buf_printf(&reply->body, "not found: /metrics /healthz /readyz\n");
    }
}

tlsc_admin_t *tlsc_admin_new(const tlsc_admin_options_t *o, char *err, size_t errlen)
{
    tlsc_admin_t *a = calloc(1, sizeof(*a));
    unsigned n = o->cfg->workers;

    if (a == NULL || (a->view = calloc(n + 1, sizeof(*a->view))) == NULL || (a->pids = calloc(n, sizeof(*a->pids))) == NULL ||
        (a->restarts = calloc(n, sizeof(*a->restarts))) == NULL) {
        snprintf(err, errlen, "--admin: out of memory");
        goto fail;
    }
    a->o = *o;
    a->started_sec = tlsc_wall_sec();
    if ((a->http = tlsc_http_new("--admin", o->cfg->admin, on_request, a, err, errlen)) == NULL)
        goto fail;
    return a;

fail:
    if (a != NULL) {
        free(a->view);
        free(a->pids);
        free(a->restarts);
    }
    free(a);
    return NULL;
}

int tlsc_admin_fd(const tlsc_admin_t *a)
{
    return tlsc_http_fd(a->http);
}

void tlsc_admin_run(tlsc_admin_t *a)
{
    tlsc_http_run(a->http, tlsc_now_ms());
}

static void admin_free(tlsc_admin_t *a, int forget)
{
    if (a == NULL)
        return;
    if (forget)
        tlsc_http_forget(a->http);
    else
        tlsc_http_free(a->http);
    free(a->view);
    free(a->pids);
    free(a->restarts);
    free(a);
}

void tlsc_admin_free(tlsc_admin_t *a)
{
    admin_free(a, 0);
}

void tlsc_admin_forget(tlsc_admin_t *a)
{
    admin_free(a, 1);
}
