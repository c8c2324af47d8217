/*
 * This file's one job: a worker process's life — set up its loop, store, keys, session hooks
 * and connections; wait for the store before accepting (warm-up); tick once a second
 * (deadlines, counters); drain on SIGTERM/SIGINT; tear down. (A reload replaces the worker.)
 */

#include "worker.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "accesslog.h"
#include "conn.h"
#include "keyring.h"
#include "log.h"
#include "proxy.h"
#include "records.h"
#include "responder.h"
#include "session.h"
#include "revoke.h"
#include "stats.h"
#include "store_redis.h"
#include "util.h"

#define WARMUP_MAX_MS 500
#define BACKLOG       1024
#define FD_RESERVE    64 /* descriptors a worker keeps for its own links, listeners and logs */

typedef struct {
    uv_loop_t loop;
    const tlsc_config_t *cfg;
    tlsc_tls_t *tls;
    unsigned id;
    uv_tcp_t *listeners;
    size_t n_listeners;
    uv_signal_t sig_term, sig_int, sig_usr1;
    tlsc_accesslog_t *access_log; /* --access-log; NULL: none */
    uv_timer_t tick;              /* once a second: deadlines, counters */
    uv_timer_t warmup;            /* until the store answers (bounded): accept nothing yet */
    uint64_t warmup_until_ms;
    int draining;
    uint64_t drain_deadline_ms;
    tlsc_store_t *store;
    tlsc_keyring_t *keyring; /* NULL without --keyd */
    tlsc_records_t *records;
    tlsc_session_t *session;
    tlsc_conns_t *conns;
    tlsc_stats_writer_t *stats_writer;
    tlsc_responder_t responder;
    tlsc_proxy_t *proxy; /* with --backend: the handler, instead of the responder */
    tlsc_handler_t handler;
    tlsc_stats_t *st;              /* this worker's cell in the master's shared metrics region */
    tlsc_l1_t *l1;                 /* the master's mapping, inherited; NULL = off */
    tlsc_revoke_watch_t *l1_watch; /* drops the L1 when Redis was flushed; NULL without an L1 */
    uv_idle_t l1_warm;             /* reads the L1's pages a slice per loop iteration, then stops */
    size_t l1_warm_at;
} worker_t;

/* ------------------------------------------------------------------------------------------ */
/* Running                                                                                      */

static void begin_drain(worker_t *w, const char *why);

/* What the master's /metrics and /readyz read from this worker's cell besides the counters. */
static void publish_gauges(worker_t *w)
{
    tlsc_stats_t *st = w->st;
    tlsc_redis_cluster_stats_t rs;

    tlsc_store_redis_stats(w->store, &rs);
    tlsc_stat_set(&st->g.heartbeat_ms, tlsc_now_ms());
    tlsc_stat_set(&st->g.redis_up, (uint64_t)(tlsc_store_ready(w->store) != 0));
    tlsc_stat_set(&st->redis_reconnects,
                  rs.connects > rs.links ? rs.connects - rs.links : 0); /* each link's first connect is none */
    tlsc_stat_set(&st->redis_moved, rs.moved);
    tlsc_stat_set(&st->redis_ask, rs.ask);
    tlsc_stat_set(&st->redis_map_refreshes, rs.refreshes);
    tlsc_stat_set(&st->g.redis_masters, rs.masters);
    tlsc_stat_set(&st->g.redis_masters_up, rs.masters_up);
    tlsc_stat_set(&st->redis_requests, rs.requests);
    tlsc_stat_set(&st->redis_commands, rs.commands);
    tlsc_stat_set(&st->redis_writes, rs.writes);
    if (w->keyring != NULL) {
        tlsc_tickets_t *t = tlsc_keyring_tickets(w->keyring);
        tlsc_tickets_stats_t ts;
        uint64_t nb = 0, na = 0;

        tlsc_tickets_stats(t, &ts);
        tlsc_stat_set(&st->tickets_issued, ts.issued);
        tlsc_stat_set(&st->tickets_decrypted, ts.decrypted);
        tlsc_stat_set(&st->tickets_renewed, ts.renewed);
        tlsc_stat_set(&st->tickets_unknown_key, ts.unknown_key);
        tlsc_stat_set(&st->g.keys, tlsc_tickets_count(t));
        tlsc_stat_set(&st->g.key_epoch, tlsc_tickets_epoch(t));
        if (tlsc_tickets_current_window(t, &nb, &na) != 0)
            nb = na = 0;
        tlsc_stat_set(&st->g.key_not_before, nb);
        tlsc_stat_set(&st->g.key_not_after, na);
    }
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;

    tlsc_conns_sweep(w->conns, tlsc_now_ms(), w->draining ? w->drain_deadline_ms : 0);
    if (w->keyring != NULL)
        tlsc_keyring_tick(w->keyring);
    publish_gauges(w);
    if (w->l1_watch != NULL)
        tlsc_revoke_watch_tick(w->l1_watch);
    tlsc_stats_writer_write(w->stats_writer, w->st);
}

/*
 * Accept once the store answers (at most WARMUP_MAX_MS): the sockets are the master's and
 * already listening, so clients wait in the accept queue instead of getting full handshakes
 * from a worker that cannot look their sessions up yet.
 */
static void on_warmup(uv_timer_t *t)
{
    worker_t *w = t->data;

    if (!tlsc_store_ready(w->store) && tlsc_now_ms() < w->warmup_until_ms)
        return;
    uv_timer_stop(t);
    if (w->draining)
        return;
    if (!tlsc_store_ready(w->store))
        tlsc_log_warn("Redis not reached within %d ms: serving with full handshakes until it is", WARMUP_MAX_MS);
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (tlsc_conns_listen(w->conns, &w->listeners[i], BACKLOG) != 0) {
            tlsc_log_error("cannot listen on inherited socket %zu", i);
            begin_drain(w, "listen failed");
            return;
        }
    }
    publish_gauges(w);
    tlsc_stat_set(&w->st->g.accepting, 1);
}

/* One slice of the L1's pages per loop iteration (tlsc_l1_warm): a few ms, never a stalled start. */
static void on_l1_warm(uv_idle_t *h)
{
    worker_t *w = h->data;

    if (tlsc_l1_warm(w->l1, &w->l1_warm_at, 256))
        uv_idle_stop(h);
}

static void on_drained(void *data)
{
    worker_t *w = data;

    uv_stop(&w->loop);
}

static void begin_drain(worker_t *w, const char *why)
{
    if (w->draining)
        return;
    w->draining = 1;
    tlsc_stat_set(&w->st->g.accepting, 0);
    w->drain_deadline_ms = tlsc_now_ms() + (uint64_t)w->cfg->drain_timeout_sec * 1000;
    tlsc_log_info("%s: draining %zu connection(s), deadline %us", why, tlsc_conns_count(w->conns), w->cfg->drain_timeout_sec);
    for (size_t i = 0; i < w->n_listeners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], NULL);
    tlsc_conns_drain(w->conns);
}

static void on_signal(uv_signal_t *s, int signum)
{
    worker_t *w = s->data;

    begin_drain(w, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_usr1(uv_signal_t *s, int signum)
{
    worker_t *w = s->data;

    (void)signum;
    tlsc_accesslog_reopen(w->access_log);
}

/* ------------------------------------------------------------------------------------------ */
/* Setup and teardown                                                                           */

/* --max-conns, or what the fd limit leaves after a reserve for links, listeners and logs. */
static size_t max_conns(const tlsc_config_t *cfg)
{
    struct rlimit rl;

    if (cfg->max_conns != 0)
        return cfg->max_conns;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 65536;
    return rl.rlim_cur > FD_RESERVE + 16 ? (size_t)(rl.rlim_cur - FD_RESERVE) : 16;
}

/* The store, the records, the session hooks, the connection set. 0 = ok (logged otherwise). */
static int setup_parts(worker_t *w, tlsc_keyproto_keyset_t *held, int master_link)
{
    const tlsc_config_t *cfg = w->cfg;
    tlsc_tickets_t *tickets = NULL;
    char err[512];

    if (cfg->keyd != NULL) {
        if (tlsc_keyring_start(&w->loop, cfg, w->id, held, master_link, &w->keyring) != 0)
            return -1;
        tickets = tlsc_keyring_tickets(w->keyring);
    }
    /* --seal-secret-file, else the --keyd link's secret; neither: --insecure-plain-records. */
    const char *seal_secret = cfg->seal_secret_file != NULL ? cfg->seal_secret_file : cfg->keyd_secret_file;
    if (tlsc_records_new(tickets, seal_secret, &w->records, err, sizeof(err)) != 0) {
        tlsc_log_error("%s: cannot set up sealing keys: %s",
                       cfg->seal_secret_file != NULL ? "--seal-secret-file" : "--keyd-secret-file", err);
        return -1;
    }
    tlsc_redis_options_t ro = {.url = &cfg->redis,
                               .connect_timeout_ms = 1000,
                               .max_inflight = 4096,
                               .stall_ms = 1000,
                               .tls_ca_file = cfg->redis_ca_file,
                               .tls_cert_file = cfg->redis_cert_file,
                               .tls_key_file = cfg->redis_key_file};
    if (tlsc_store_redis_new(&w->loop, &ro, &w->store, err, sizeof(err)) != 0) {
        tlsc_log_error("redis client: %s", err);
        return -1;
    }
    if (cfg->store_replicas > 0) {
        tlsc_store_wait_counters_t wc = {
            .acked = &w->st->store_waits_acked, .short_ = &w->st->store_waits_short, .skipped = &w->st->store_waits_skipped};
        tlsc_redis_options_t wo = ro;

        wo.label = "stores+WAIT";

        if (tlsc_store_redis_wait_link(w->store, &wo, cfg->store_replicas, &wc, err, sizeof(err)) != 0) {
            tlsc_log_error("redis client (--store-replicas link): %s", err);
            return -1;
        }
    }
    tlsc_session_options_t so = {
        .cfg = cfg, .worker_id = w->id, .store = w->store, .records = w->records, .tickets = tickets, .stats = w->st, .l1 = w->l1};
    w->responder = (tlsc_responder_t){.node = cfg->node, .worker = w->id, .pid = (int)getpid()};
    if (cfg->routes.n == 0) {
        tlsc_responder_handler(&w->responder, &w->handler);
    } else {
        tlsc_proxy_options_t po = {.loop = &w->loop,
                                   .routes = &cfg->routes,
                                   .stats = w->st,
                                   .connect_timeout_ms = cfg->backend_timeout_ms,
                                   .idle_timeout_ms = cfg->idle_timeout_sec * 1000,
                                   .proxy_protocol = cfg->proxy_protocol,
                                   .node = cfg->node};
        if (tlsc_proxy_new(&po, &w->proxy, err, sizeof(err)) != 0) {
            tlsc_log_error("proxy: %s", err);
            return -1;
        }
        tlsc_proxy_handler(w->proxy, &w->handler);
    }
    /* Opened before --user drops privileges; a reopen (SIGUSR1) runs as the user. */
    if (cfg->access_log != NULL && tlsc_accesslog_open(&w->loop, cfg->access_log, (tlsc_log_format_t)cfg->log_format,
                                                       &w->st->access_log_dropped, &w->access_log, err, sizeof(err)) != 0) {
        tlsc_log_error("--access-log: %s", err);
        return -1;
    }
    tlsc_conns_options_t co = {.loop = &w->loop,
                               .tls = w->tls,
                               .stats = w->st,
                               .handler = &w->handler,
                               .handshake_timeout_ms = cfg->handshake_timeout_sec * 1000,
                               .max_conns = max_conns(cfg),
                               .accept_proxy = cfg->accept_proxy,
                               .access_log = w->access_log,
                               .on_drained = on_drained,
                               .data = w};
    if ((co.session = w->session = tlsc_session_new(&so)) == NULL || (w->conns = tlsc_conns_new(&co)) == NULL ||
        (w->stats_writer = tlsc_stats_writer_new(w->store, cfg->redis_prefix, cfg->node, w->id)) == NULL ||
        (w->l1 != NULL && (w->l1_watch = tlsc_revoke_watch_new(cfg, tlsc_store_redis_router(w->store), w->l1, w->st)) == NULL)) {
        tlsc_log_error("out of memory setting up worker %u", w->id);
        return -1;
    }
    tlsc_session_install(w->session, w->tls);
    return 0;
}

/* Adopts the master's listening sockets. 0 = ok. */
static int setup_listeners(worker_t *w, const int *fds, size_t nfds)
{
    if ((w->listeners = calloc(nfds, sizeof(*w->listeners))) == NULL)
        return -1;
    for (size_t i = 0; i < nfds; i++) {
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = w;
        w->n_listeners++;
        if (uv_tcp_open(&w->listeners[i], fds[i]) != 0) {
            tlsc_log_error("cannot use inherited socket %d", fds[i]);
            return -1;
        }
    }
    return 0;
}

/*
 * --user: what needs privileges is done (the secret files are read; the listening sockets are
 * the master's), so drop for good before serving. The store and daemon links connect later,
 * as the user. A credential change clears the parent-death signal, so it is set again.
 */
static int drop_privileges(const tlsc_config_t *cfg)
{
    gid_t gid = (gid_t)cfg->run_gid;

    if (cfg->user == NULL)
        return 0;
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid((uid_t)cfg->run_uid) != 0) {
        tlsc_log_error("--user %s: cannot switch to uid %u gid %u: %s", cfg->user, cfg->run_uid, cfg->run_gid, strerror(errno));
        return -1;
    }
    if (cfg->run_uid != 0 && setuid(0) == 0) {
        tlsc_log_error("--user %s: could regain root after dropping it", cfg->user);
        return -1;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    return 0;
}

static void setup_timers_and_signals(worker_t *w)
{
    uv_timer_init(&w->loop, &w->warmup);
    w->warmup.data = w;
    w->warmup_until_ms = tlsc_now_ms() + WARMUP_MAX_MS;
    uv_timer_start(&w->warmup, on_warmup, 0, 5);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 1000, 1000);
    if (w->l1 != NULL) {
        uv_idle_init(&w->loop, &w->l1_warm);
        w->l1_warm.data = w;
        uv_idle_start(&w->l1_warm, on_l1_warm);
    }
    uv_signal_init(&w->loop, &w->sig_term);
    uv_signal_init(&w->loop, &w->sig_int);
    w->sig_term.data = w->sig_int.data = w;
    uv_signal_start(&w->sig_term, on_signal, SIGTERM);
    uv_signal_start(&w->sig_int, on_signal, SIGINT);
    if (w->access_log != NULL) {
        uv_signal_init(&w->loop, &w->sig_usr1);
        w->sig_usr1.data = w;
        uv_signal_start(&w->sig_usr1, on_usr1, SIGUSR1);
    }
}

/*
 * SIGTERM and SIGINT, blocked or let through (`how`: SIG_BLOCK / SIG_UNBLOCK). The master forks
 * workers with them blocked, until the handlers are in (a pending one then runs its drain at the
 * loop's first turn); teardown blocks them again.
 */
static void mask_stop_signals(int how)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(how, &set, NULL);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/*
 * Every part that owns handles closes them itself first (connections, the store's link, the
 * daemon link); then whatever is left (timers, signals, listeners) is closed by walking the
 * loop, which runs until every close callback ran. Only then is memory freed.
 */
static void teardown(worker_t *w)
{
    /* Stopping already: a second SIGTERM (the master forwards one, and systemd signals the whole
     * cgroup) must not find the default action once the loop's signal handles are closed. */
    mask_stop_signals(SIG_BLOCK);
    if (w->conns != NULL)
        tlsc_conns_close_all(w->conns);
    tlsc_stats_writer_free(w->stats_writer);
    tlsc_revoke_watch_free(w->l1_watch);
    if (w->store != NULL)
        tlsc_store_close(w->store);
    tlsc_keyring_close(w->keyring);
    uv_walk(&w->loop, walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        tlsc_log_warn("loop closed with handles still open");
    if (w->keyring != NULL) {
        for (size_t i = 0; i < tlsc_tls_count(w->tls); i++)
            tlsc_tickets_uninstall(tlsc_tls_ctx_at(w->tls, i));
    }
    tlsc_conns_free(w->conns);
    tlsc_accesslog_free(w->access_log); /* the loop ran out: no write is in flight */
    tlsc_proxy_free(w->proxy);
    tlsc_session_free(w->session);
    tlsc_records_free(w->records);
    tlsc_keyring_free(w->keyring);
    free(w->listeners);
}

int tlsc_worker_run(const tlsc_config_t *cfg, tlsc_tls_t *tls, unsigned id, const int *fds, size_t nfds,
                    tlsc_keyproto_keyset_t *held, int master_link, tlsc_stats_t *st, tlsc_l1_t *l1)
{
    static tlsc_stats_t private_stats; /* without a shared cell (tests) the counters stay here */
    worker_t *w;
    char tag[160], num[16];
    int rc = 1;

    snprintf(tag, sizeof(tag), "tlscache-server[%s/w%u]", cfg->node, id);
    tlsc_log_set_tag(tag);
    snprintf(num, sizeof(num), "%u", id);
    tlsc_log_set_worker(num);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a worker never outlives its master */
    prctl(PR_SET_DUMPABLE, 0);        /* it holds secrets: no core dump, no ptrace by its user */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);  /* reloads are the master's: it replaces the workers */
    signal(SIGUSR1, SIG_IGN); /* until the access log's handler is in (none without --access-log) */

    if ((w = calloc(1, sizeof(*w))) == NULL || uv_loop_init(&w->loop) != 0) {
        free(w);
        if (held != NULL) {
            OPENSSL_cleanse(held, sizeof(*held));
            free(held);
        }
        return 1;
    }
    w->cfg = cfg;
    w->tls = tls;
    w->id = id;
    w->st = st != NULL ? st : &private_stats;
    tlsc_stat_set(&w->st->g.heartbeat_ms, tlsc_now_ms());
    w->l1 = l1;
    if (l1 != NULL)
        tlsc_l1_prefault(l1);
    if (setup_parts(w, held, master_link) == 0 && setup_listeners(w, fds, nfds) == 0 && drop_privileges(cfg) == 0) {
        setup_timers_and_signals(w);
        mask_stop_signals(SIG_UNBLOCK);
        tlsc_log_debug("worker %u serving %zu socket(s)", id, nfds);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        rc = 0;
    }
    teardown(w);
    free(w);
    return rc;
}
