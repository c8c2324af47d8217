/*
 * This file's one job: the master process — bind, fork, supervise. It runs no event loop:
 * signals are blocked and read from a signalfd, polled together with one socketpair per
 * worker, which keeps the control flow in one place and leaves nothing of a loop for the
 * children to inherit.
 *
 * The socketpairs carry ticket key sets up from the workers (each worker has its own link to
 * tlscache-daemon): the master keeps the newest set, so a respawned worker starts with it —
 * fork hands the child the master's copy — even while the daemon is unreachable.
 */

#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin.h"
#include "keyproto.h"
#include "l1.h"
#include "revoke.h"
#include "log.h"
#include "metrics.h"
#include "tickets.h"
#include "util.h"
#include "worker.h"

#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000
#define STABLE_AFTER_MS 2000
#define LISTEN_BACKLOG  1024

typedef struct {
    pid_t pid;
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* 0 = not waiting */
    unsigned backoff_ms;
    int *fds; /* this slot's listening sockets */
    int link; /* master's end of the worker's socketpair, or -1 */
    tlsc_keyproto_reader_t *reader;
    uint64_t restarts; /* workers started in this slot after the first */
} slot_t;

typedef struct {
    const tlsc_config_t *cfg; /* &live */
    tlsc_config_t live;       /* the configuration as run: a copy whose routes a SIGHUP may replace (--backends-file) */
    tlsc_routes_t reloaded;   /* the routes a SIGHUP read, owned here (the first ones are the caller's) */
    tlsc_tls_t *tls;
    slot_t *slots;
    struct pollfd *pfds;
    tlsc_tickets_t *keys;  /* NULL without --keyd */
    tlsc_l1_t *l1;         /* the node-local session cache every worker maps; NULL = off */
    tlsc_revoke_t *revoke; /* its revocation feed; NULL without an L1 */
    sigset_t oldmask;
    int sfd;
    int stopping;
    uint64_t stop_deadline_ms;
    unsigned crashed; /* workers that ended abnormally while stopping */
    int rc;
    pid_t *retired; /* workers replaced by a reload, still draining */
    size_t n_retired;
    time_t *ocsp_tried; /* --ocsp-fetch: per certificate, the last attempt (a retry waits OCSP_RETRY_SEC) */
    time_t ocsp_checked;
    tlsc_metrics_t *metrics; /* the workers' counters, shared */
    tlsc_admin_t *admin;     /* NULL with --admin off */
} master_t;

#define OCSP_RETRY_SEC 60

/* ------------------------------------------------------------------------------------------ */
/* Binding                                                                                      */

/*
 * Is the address free for us? Every slot binds with SO_REUSEPORT, which would let a second
 * tlscache-server (another certificate, another version) silently take part of the traffic.
 * A probe without SO_REUSEPORT fails with EADDRINUSE when anyone listens there already.
 */
static int probe_free(const struct addrinfo *ai)
{
    int fd, one = 1, rc = 0;

    if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
        return errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        rc = errno;
    close(fd);
    return rc;
}

/* A listening SO_REUSEPORT socket on `ai`, or -1 with errno in *saved. */
static int listen_on(const struct addrinfo *ai, int *saved)
{
    int fd, one = 1;

    if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
        *saved = errno;
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
        return fd;
    *saved = errno;
    close(fd);
    return -1;
}

/* Binds one slot's socket for `l`; the first slot (`first`) also checks that nobody else listens. */
static int bind_one(const tlsc_listen_t *l, int first, int share, int *out, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res, *ai;
    const char *host = (l->host[0] == '\0' || strcmp(l->host, "*") == 0) ? NULL : l->host;
    int fd = -1, rc, saved = 0;

    if ((rc = getaddrinfo(host, l->port, &hints, &res)) != 0) {
        snprintf(err, errlen, "--listen %s:%s: %s", l->host, l->port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        if (first && !share && (saved = probe_free(ai)) != 0)
            continue;
        fd = listen_on(ai, &saved);
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        *out = fd;
        return 0;
    }
    if (saved == EADDRINUSE)
        snprintf(err, errlen,
                 "--listen %s:%s: address already in use (another process listens there; --reuseport-share joins it on purpose)",
                 l->host, l->port);
    else
        snprintf(err, errlen, "--listen %s:%s: %s", l->host, l->port, strerror(saved));
    return -1;
}

/* Every slot's sockets, before anything forks: a bad address is one line and exit 1. */
static int bind_all(master_t *m)
{
    const tlsc_config_t *cfg = m->cfg;
    char err[512];

    for (unsigned i = 0; i < cfg->workers; i++) {
        slot_t *slot = &m->slots[i];

        if ((slot->fds = malloc(cfg->n_listen * sizeof(int))) == NULL)
            return -1;
        for (size_t j = 0; j < cfg->n_listen; j++)
            slot->fds[j] = -1;
        for (size_t j = 0; j < cfg->n_listen; j++) {
            if (bind_one(&cfg->listen[j], i == 0, cfg->reuseport_share, &slot->fds[j], err, sizeof(err)) != 0) {
                fprintf(stderr, "tlscache-server: %s\n", err);
                return -1;
            }
        }
    }
    return 0;
}

/*
 * The node-local session cache: mapped here, before any fork, so every worker — and every one
 * respawned or replaced by a reload — shares the same entries. Only with the session cache on.
 */
static int setup_l1(master_t *m)
{
    char err[256];

    if (m->cfg->local_cache_bytes == 0 || !(m->cfg->resumption & TLSC_RESUME_CACHE))
        return 0;
    if (tlsc_l1_new(m->cfg->local_cache_bytes, &m->l1, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: --local-cache: %s\n", err);
        return -1;
    }
    if ((m->revoke = tlsc_revoke_new(m->cfg, m->l1)) == NULL) {
        fprintf(stderr, "tlscache-server: out of memory\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Workers                                                                                      */

/* In the child: keep only this slot's sockets, take signals the normal way again, run. */
static void run_child(master_t *m, unsigned id, int link, tlsc_stats_t *cell)
{
    const tlsc_config_t *cfg = m->cfg;
    tlsc_keyproto_keyset_t *held = NULL;

    close(m->sfd);
    tlsc_admin_forget(m->admin); /* the master's descriptors; the metrics mapping stays: the cell is in it */
    if (m->revoke != NULL && tlsc_revoke_pollfd(m->revoke).fd >= 0)
        close(tlsc_revoke_pollfd(m->revoke).fd); /* the master's subscription, not ours */
    for (unsigned i = 0; i < cfg->workers; i++) {
        if (m->slots[i].link >= 0)
            close(m->slots[i].link);
        if (i + 1 == id)
            continue;
        for (size_t j = 0; j < cfg->n_listen; j++)
            close(m->slots[i].fds[j]);
    }
    if (m->keys != NULL && (held = calloc(1, sizeof(*held))) != NULL)
        tlsc_tickets_export(m->keys, held);
    /* SIGTERM and SIGINT stay blocked until the worker's handlers are in (tlsc_worker_run): one
     * that arrives while the worker starts (a stop right after a reload) waits, instead of
     * killing it with the default action, which the master would count as a crash. */
    sigset_t mask = m->oldmask;
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    _exit(tlsc_worker_run(cfg, m->tls, id, m->slots[id - 1].fds, cfg->n_listen, held, link, cell, m->l1));
}

static pid_t spawn(master_t *m, unsigned id)
{
    slot_t *slot = &m->slots[id - 1];
    int sv[2] = {-1, -1};
    tlsc_stats_t *cell;
    pid_t pid;

    /* A fresh cell: the new worker's counters start at 0, the ended ones are in the slot's total. */
    if ((cell = tlsc_metrics_claim(m->metrics, id)) == NULL) {
        tlsc_log_error("worker %u: no free metrics cell (too many replaced workers still draining)", id);
        errno = EBUSY;
        return -1;
    }
    if (m->keys != NULL && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
        tlsc_log_warn("worker %u: socketpair: %s (its key sets will not reach the master)", id, strerror(errno));
    if ((pid = fork()) == 0) {
        if (sv[0] >= 0)
            close(sv[0]);
        run_child(m, id, sv[1], cell);
    }
    tlsc_metrics_bind(m->metrics, cell, pid);
    if (sv[1] >= 0)
        close(sv[1]);
    if (pid > 0 && sv[0] >= 0) {
        if (slot->link >= 0)
            close(slot->link);
        slot->link = sv[0];
        tlsc_keyproto_reader_free(slot->reader);
        slot->reader = tlsc_keyproto_reader_new();
    } else if (sv[0] >= 0) {
        close(sv[0]);
    }
    return pid;
}

/* Reads key sets a worker relayed; keeps the newest. A worker's garbage costs only its link. */
static void read_link(master_t *m, slot_t *slot)
{
    unsigned char buf[8192];
    tlsc_keyproto_msg_t *msg;
    ssize_t n;
    int rc;

    n = read(slot->link, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close(slot->link);
        slot->link = -1;
        return;
    }
    if ((msg = malloc(sizeof(*msg))) == NULL)
        return;
    rc = tlsc_keyproto_reader_feed(slot->reader, buf, (size_t)n);
    while (rc == 0 && (rc = tlsc_keyproto_reader_next(slot->reader, msg)) > 0) {
        if (msg->type == TLSC_KEYPROTO_KEYSET) {
            int arc = tlsc_tickets_apply(m->keys, &msg->u.keyset, 0);
            if (arc != 0)
                tlsc_log_warn("key set relayed by a worker refused (%d)", arc);
        }
        tlsc_keyproto_msg_wipe(msg);
        rc = 0;
    }
    free(msg);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc < 0) {
        tlsc_log_warn("worker link: %s; closing it", tlsc_keyproto_strerror(rc));
        close(slot->link);
        slot->link = -1;
    }
}

/* "exited with status 1", "exited on signal 6": nginx's words. */
static void describe_exit(int status, char *out, size_t outlen)
{
    if (WIFSIGNALED(status))
        snprintf(out, outlen, "exited on signal %d%s", WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
    else
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
}

/* A worker ended: while stopping, anything but a clean exit is a crash; else respawn it. */
static void on_worker_exit(master_t *m, unsigned i, pid_t pid, int status, uint64_t now)
{
    slot_t *slot = &m->slots[i];
    char what[128];

    slot->pid = 0;
    describe_exit(status, what, sizeof(what));
    if (m->stopping) {
        if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
            tlsc_log_error("worker %u (pid %d) %s while stopping", i + 1, (int)pid, what);
            m->crashed++;
        }
        return;
    }
    /* A worker that dies young waits longer each time; a stable one comes back at once. */
    if (now - slot->started_ms >= STABLE_AFTER_MS)
        slot->backoff_ms = BACKOFF_MIN_MS;
    slot->respawn_at_ms = now + slot->backoff_ms;
    tlsc_log_warn("worker %u (pid %d) %s; respawning in %u ms", i + 1, (int)pid, what, slot->backoff_ms);
    slot->backoff_ms = slot->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : slot->backoff_ms * 2;
}

static int reap_retired(master_t *m, pid_t pid, int status);

static void reap(master_t *m, uint64_t now)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        tlsc_metrics_release(m->metrics, pid); /* its counters join the slot's total */
        if (reap_retired(m, pid, status))
            continue;
        for (unsigned i = 0; i < m->cfg->workers; i++) {
            if (m->slots[i].pid == pid) {
                on_worker_exit(m, i, pid, status, now);
                break;
            }
        }
    }
}

static void signal_workers(master_t *m, int sig)
{
    for (unsigned i = 0; i < m->cfg->workers; i++) {
        if (m->slots[i].pid > 0)
            kill(m->slots[i].pid, sig);
    }
    for (size_t i = 0; i < m->n_retired; i++)
        kill(m->retired[i], sig);
}

/* SIGUSR1 (logrotate): each worker reopens its --access-log file; the master writes none. */
static void reopen_logs(master_t *m)
{
    if (m->cfg->access_log == NULL || strcmp(m->cfg->access_log, "-") == 0)
        return;
    tlsc_log_info("SIGUSR1: workers reopen the access log %s", m->cfg->access_log);
    signal_workers(m, SIGUSR1);
}

/* Opens --access-log once before anything forks, so a path no worker could open fails the start. 0 = ok. */
static int check_access_log(const tlsc_config_t *cfg)
{
    int fd;

    if (cfg->access_log == NULL || strcmp(cfg->access_log, "-") == 0)
        return 0;
    if ((fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "tlscache-server: --access-log: cannot open %s: %s\n", cfg->access_log, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static void begin_stop(master_t *m, int sig, uint64_t now)
{
    m->stopping = 1;
    m->stop_deadline_ms = now + (uint64_t)m->cfg->drain_timeout_sec * 1000 + 2000;
    tlsc_log_info("%s: stopping workers (drain deadline %us)", sig == SIGTERM ? "SIGTERM" : "SIGINT", m->cfg->drain_timeout_sec);
    signal_workers(m, SIGTERM);
}

/*
 * SIGHUP: the master loads the certificates (it can read what workers may not, with --user)
 * and, with --backends-file, the routes; then replaces the workers one slot at a time: a new
 * worker forks with the new contexts and routes, and the old one drains with its connections
 * (they keep the backends they have). The slot's sockets stay open throughout, so no
 * connection is refused. Anything that does not load refuses the whole reload.
 */
static void reload(master_t *m, const char *why)
{
    tlsc_tls_t *fresh;
    tlsc_routes_t routes = {0};
    char err[512];

    if (m->cfg->backends_file != NULL && tlsc_config_read_backends(m->cfg->backends_file, &routes, err, sizeof(err)) != 0) {
        tlsc_log_error("%s: reload refused, keeping the current certificates and routes: --backends-file %s", why, err);
        return;
    }
    if (tlsc_tls_new(m->cfg, &fresh, err, sizeof(err)) != 0) {
        tlsc_log_error("%s: reload refused, keeping the current certificates%s: %s", why,
                       m->cfg->backends_file != NULL ? " and routes" : "", err);
        tlsc_routes_free(&routes);
        return;
    }
    if (m->cfg->backends_file != NULL) {
        tlsc_routes_free(&m->reloaded); /* only this process looks at them: workers have their own copy */
        m->reloaded = routes;
        m->live.routes = routes;
        tlsc_log_info("%s: %zu route(s) from %s", why, routes.n, m->cfg->backends_file);
    }
    for (size_t i = 0; i < tlsc_tls_count(fresh); i++) {
        char line[1024];
        int expiring;

        tlsc_tls_describe(fresh, line, sizeof(line), i, &expiring);
        tlsc_log(expiring ? TLSC_LOG_WARN : TLSC_LOG_INFO, "%s: certificate %zu: %s", why, i + 1, line);
    }
    tlsc_tls_free(m->tls); /* workers forked before hold their own copy */
    m->tls = fresh;
    for (unsigned i = 0; i < m->cfg->workers; i++) {
        slot_t *slot = &m->slots[i];
        pid_t old = slot->pid, pid;
        pid_t *grown;

        if (old <= 0)
            continue; /* a slot waiting for its respawn gets the new contexts then */
        if ((grown = realloc(m->retired, (m->n_retired + 1) * sizeof(*grown))) == NULL || (pid = spawn(m, i + 1)) < 0) {
            tlsc_log_error("%s: cannot start a new worker %u: %s (it keeps the old certificates)", why, i + 1, strerror(errno));
            if (grown != NULL)
                m->retired = grown;
            continue;
        }
        m->retired = grown;
        m->retired[m->n_retired++] = old;
        slot->pid = pid;
        slot->restarts++;
        slot->started_ms = tlsc_now_ms();
        kill(old, SIGTERM);
    }
    tlsc_log_info("%s: certificates reloaded: %u worker(s) replaced, the old ones drain", why, m->cfg->workers);
}

/*
 * --ocsp-fetch, checked once a second: a certificate whose response is due (half-way through
 * its validity, or now when none is stapled) is asked for again, one request at a time, each
 * bounded (TLSC_OCSP_FETCH_TIMEOUT_SEC, TLSC_OCSP_MAX_LEN) and at most once a minute. A good
 * answer is written over its --ocsp file, and the workers get it the way they get a SIGHUP's
 * certificates: the master reloads everything and replaces them. The master blocks meanwhile
 * (it runs no event loop); the workers serve on, and a signal waits at most the timeout.
 */
static void ocsp_refresh(master_t *m)
{
    time_t now = time(NULL);
    int fetched = 0;
    char msg[1024];

    if (!m->cfg->ocsp_fetch || m->stopping || now == m->ocsp_checked)
        return;
    m->ocsp_checked = now;
    for (size_t i = 0; i < tlsc_tls_count(m->tls) && i < m->cfg->n_ocsp; i++) {
        time_t due = tlsc_tls_ocsp_refresh_at(m->tls, i, now);

        if (due == 0 || m->cfg->ocsp_files[i] == NULL || now < due || now < m->ocsp_tried[i] + OCSP_RETRY_SEC)
            continue;
        m->ocsp_tried[i] = now;
        if (tlsc_tls_ocsp_fetch(m->tls, i, m->cfg->ocsp_files[i], msg, sizeof(msg)) == 0) {
            tlsc_log_info("ocsp-fetch: %s", msg);
            fetched = 1;
        } else {
            tlsc_log_error("ocsp-fetch: %s; next try in %d s", msg, OCSP_RETRY_SEC);
        }
        now = time(NULL);
    }
    if (fetched)
        reload(m, "ocsp-fetch");
}

/* A worker replaced by a reload ended. Returns 1 when `pid` was one. */
static int reap_retired(master_t *m, pid_t pid, int status)
{
    char what[128];

    for (size_t i = 0; i < m->n_retired; i++) {
        if (m->retired[i] != pid)
            continue;
        m->retired[i] = m->retired[--m->n_retired];
        describe_exit(status, what, sizeof(what));
        if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0) {
            tlsc_log_error("replaced worker (pid %d) %s while draining", (int)pid, what);
            m->crashed += m->stopping != 0;
        } else {
            tlsc_log_info("replaced worker (pid %d) drained and %s", (int)pid, what);
        }
        return 1;
    }
    return 0;
}

/* Respawns the workers whose backoff passed; returns how many are alive. */
static unsigned respawn_due(master_t *m, uint64_t now)
{
    unsigned alive = 0;

    for (unsigned i = 0; i < m->cfg->workers; i++) {
        slot_t *slot = &m->slots[i];

        if (!m->stopping && slot->pid == 0 && slot->respawn_at_ms != 0 && now >= slot->respawn_at_ms) {
            slot->respawn_at_ms = 0;
            slot->started_ms = now;
            if ((slot->pid = spawn(m, i + 1)) < 0) {
                tlsc_log_error("fork for worker %u: %s", i + 1, strerror(errno));
                slot->pid = 0;
                slot->respawn_at_ms = now + slot->backoff_ms;
            } else {
                slot->restarts++;
            }
        }
        if (slot->pid > 0)
            alive++;
    }
    return alive + (unsigned)m->n_retired;
}

/* Past the drain deadline, stragglers are killed (and the exit code says so). */
static void enforce_deadline(master_t *m, uint64_t now)
{
    if (now < m->stop_deadline_ms)
        return;
    for (unsigned i = 0; i < m->cfg->workers; i++) {
        if (m->slots[i].pid > 0) {
            tlsc_log_warn("worker %u (pid %d) missed the drain deadline: SIGKILL", i + 1, (int)m->slots[i].pid);
            kill(m->slots[i].pid, SIGKILL);
        }
    }
    for (size_t i = 0; i < m->n_retired; i++) {
        tlsc_log_warn("replaced worker (pid %d) missed the drain deadline: SIGKILL", (int)m->retired[i]);
        kill(m->retired[i], SIGKILL);
    }
    m->stop_deadline_ms = now + 60000;
    m->rc = 1;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop                                                                                     */

/*
 * Waits up to 100 ms for a signal, a worker's key set or an admin request; returns the signal
 * or 0. The admin server runs on every pass (its deadlines), never blocking.
 */
static int wait_event(master_t *m)
{
    struct signalfd_siginfo info;
    nfds_t n = 1, first_link = 1;
    nfds_t sub = 0; /* the revocation feed's entry, 0 = none */
    int ready;

    m->pfds[0] = (struct pollfd){.fd = m->sfd, .events = POLLIN};
    if (m->admin != NULL) {
        m->pfds[n++] = (struct pollfd){.fd = tlsc_admin_fd(m->admin), .events = POLLIN};
        first_link = n;
    }
    for (unsigned i = 0; i < m->cfg->workers; i++) {
        if (m->slots[i].link >= 0)
            m->pfds[n++] = (struct pollfd){.fd = m->slots[i].link, .events = POLLIN};
    }
    if (m->revoke != NULL && (m->pfds[n] = tlsc_revoke_pollfd(m->revoke)).fd >= 0)
        sub = n++;
    ready = poll(m->pfds, n, 100);
    if (m->admin != NULL)
        tlsc_admin_run(m->admin);
    if (m->revoke != NULL)
        tlsc_revoke_run(m->revoke, ready > 0 && sub != 0 ? m->pfds[sub].revents : 0, tlsc_now_ms());
    if (ready <= 0)
        return 0;
    for (nfds_t k = first_link; k < n; k++) {
        for (unsigned i = 0; k != sub && m->pfds[k].revents != 0 && i < m->cfg->workers; i++) {
            if (m->slots[i].link == m->pfds[k].fd)
                read_link(m, &m->slots[i]);
        }
    }
    if ((m->pfds[0].revents & POLLIN) && read(m->sfd, &info, sizeof(info)) == (ssize_t)sizeof(info))
        return (int)info.ssi_signo;
    return 0;
}

static int setup_signals(master_t *m)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &m->oldmask);
    signal(SIGPIPE, SIG_IGN);
    if ((m->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        fprintf(stderr, "tlscache-server: signalfd: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static void supervise(master_t *m)
{
    for (;;) {
        int sig = wait_event(m);
        uint64_t now = tlsc_now_ms();

        if (sig == SIGCHLD)
            reap(m, now);
        else if ((sig == SIGTERM || sig == SIGINT) && !m->stopping)
            begin_stop(m, sig, now);
        else if (sig == SIGHUP && !m->stopping)
            reload(m, "SIGHUP");
        else if (sig == SIGUSR1)
            reopen_logs(m);
        ocsp_refresh(m);
        unsigned alive = respawn_due(m, now);
        if (m->stopping && alive == 0)
            return;
        if (m->stopping)
            enforce_deadline(m, now);
    }
}

static void master_free(master_t *m)
{
    tlsc_routes_free(&m->reloaded);
    for (unsigned i = 0; m->slots != NULL && i < m->cfg->workers; i++) {
        for (size_t j = 0; m->slots[i].fds != NULL && j < m->cfg->n_listen; j++) {
            if (m->slots[i].fds[j] >= 0)
                close(m->slots[i].fds[j]);
        }
        if (m->slots[i].link >= 0)
            close(m->slots[i].link);
        tlsc_keyproto_reader_free(m->slots[i].reader);
        free(m->slots[i].fds);
    }
    if (m->sfd >= 0)
        close(m->sfd);
    tlsc_tickets_free(m->keys);
    tlsc_admin_free(m->admin);
    tlsc_metrics_free(m->metrics);
    tlsc_revoke_free(m->revoke);
    tlsc_l1_free(m->l1);
    tlsc_tls_free(m->tls);
    free(m->retired);
    free(m->ocsp_tried);
    free(m->pfds);
    free(m->slots);
}

/* What the admin endpoint asks of the master: a slot's worker and restarts, and whether we stop. */
static void admin_slot_state(void *data, unsigned slot, pid_t *pid, uint64_t *restarts)
{
    const master_t *m = data;

    *pid = m->slots[slot - 1].pid;
    *restarts = m->slots[slot - 1].restarts;
}

static int admin_stopping(void *data)
{
    return ((const master_t *)data)->stopping;
}

/* The shared counters and the admin endpoint, before anything forks. 0 = ok (else stderr says why). */
static int setup_admin(master_t *m)
{
    char err[512];

    if ((m->metrics = tlsc_metrics_new(m->cfg->workers)) == NULL) {
        fprintf(stderr, "tlscache-server: cannot map the shared metrics region: %s\n", strerror(errno));
        return -1;
    }
    if (m->cfg->admin == NULL)
        return 0;
    tlsc_admin_options_t ao = {
        .cfg = m->cfg, .metrics = m->metrics, .slot_state = admin_slot_state, .stopping = admin_stopping, .data = m};
    if ((m->admin = tlsc_admin_new(&ao, err, sizeof(err))) == NULL) {
        fprintf(stderr, "tlscache-server: %s\n", err);
        return -1;
    }
    return 0;
}

int tlsc_master_run(const tlsc_config_t *cfg, tlsc_tls_t *tls)
{
    master_t m = {.tls = tls, .sfd = -1};

    m.live = *cfg; /* shallow: every pointer stays the caller's; only `routes` may be replaced */
    m.cfg = &m.live;

    if ((m.slots = calloc(cfg->workers, sizeof(*m.slots))) == NULL ||
        (m.pfds = calloc(cfg->workers + 3, sizeof(*m.pfds))) == NULL || /* signals, admin, links, revocations */
        (m.ocsp_tried = calloc(cfg->n_certs + 1, sizeof(*m.ocsp_tried))) == NULL ||
        (cfg->keyd != NULL && (m.keys = tlsc_tickets_new(NULL, NULL)) == NULL)) {
        fprintf(stderr, "tlscache-server: out of memory\n");
        master_free(&m);
        return 1;
    }
    for (unsigned i = 0; i < cfg->workers; i++)
        m.slots[i].link = -1;
    /* Signals first: once a port answers, a SIGHUP or SIGTERM must find the signalfd, not the
     * default action (mapping a large --local-cache takes a while after the bind). */
    if (setup_signals(&m) != 0 || check_access_log(cfg) != 0 || bind_all(&m) != 0 || setup_admin(&m) != 0 || setup_l1(&m) != 0) {
        master_free(&m);
        return 1;
    }
    for (unsigned i = 0; i < cfg->workers; i++) {
        m.slots[i].pid = spawn(&m, i + 1);
        m.slots[i].started_ms = tlsc_now_ms();
        m.slots[i].backoff_ms = BACKOFF_MIN_MS;
    }
    for (size_t j = 0; j < cfg->n_listen; j++)
        tlsc_log_info("listening on %s:%s with %u worker(s), cluster \"%s\"", cfg->listen[j].host, cfg->listen[j].port,
                      cfg->workers, cfg->cluster);
    if (cfg->admin != NULL)
        tlsc_log_info("admin endpoint on http://%s (/metrics, /healthz, /readyz)", cfg->admin);
    supervise(&m);
    if (m.crashed > 0) {
        tlsc_log_error("all workers stopped, %u of them abnormally", m.crashed);
        m.rc = 1;
    } else {
        tlsc_log_info("all workers stopped");
    }
    master_free(&m);
    return m.rc;
}
