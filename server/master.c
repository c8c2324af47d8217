/*
 * The master process: binds, forks, supervises. It runs no event loop: signals are blocked
 * and read from a signalfd, polled together with one socketpair per worker, which keeps the
 * control flow in one place and leaves nothing of a loop for the children to inherit.
 *
 * The socketpairs carry ticket key sets up from the workers (each worker has its own link to
 * tlscache-daemon): the master keeps the newest set, so a respawned worker starts with it —
 * fork hands the child the master's copy — even while the daemon is unreachable.
 */

#include "master.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
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

#include "keyproto.h"
#include "log.h"
#include "tickets.h"
#include "util.h"
#include "worker.h"

#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000
#define STABLE_AFTER_MS 2000

typedef struct {
    pid_t pid;
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* 0 = not waiting */
    unsigned backoff_ms;
    int *fds; /* this slot's listening sockets */
    int link; /* master's end of the worker's socketpair, or -1 */
    tlsc_keyproto_reader_t *reader;
} slot_t;

typedef struct {
    const tlsc_config_t *cfg;
    tlsc_tls_t *tls;
    slot_t *slots;
    tlsc_tickets_t *keys; /* NULL without --keyd */
    sigset_t oldmask;
    int sfd;
} master_t;

static int bind_one(const tlsc_listen_t *l, int *out, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res, *ai;
    const char *host = (l->host[0] == '\0' || strcmp(l->host, "*") == 0) ? NULL : l->host;
    int fd = -1, one = 1, rc, saved = 0;

    if ((rc = getaddrinfo(host, l->port, &hints, &res)) != 0) {
        snprintf(err, errlen, "--listen %s:%s: %s", l->host, l->port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "--listen %s:%s: %s", l->host, l->port, strerror(saved));
        return -1;
    }
    *out = fd;
    return 0;
}

static pid_t spawn(master_t *m, unsigned id)
{
    const tlsc_config_t *cfg = m->cfg;
    slot_t *slot = &m->slots[id - 1];
    tlsc_keyproto_keyset_t *held = NULL;
    int sv[2] = {-1, -1};
    pid_t pid;

    if (m->keys != NULL && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
        tlsc_log_warn("worker %u: socketpair: %s (its key sets will not reach the master)", id, strerror(errno));
    if ((pid = fork()) != 0) {
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
    /* Child: keep only this slot's sockets, take signals the normal way again. */
    if (sv[0] >= 0)
        close(sv[0]);
    close(m->sfd);
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
    sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
    _exit(tlsc_worker_run(cfg, m->tls, id, slot->fds, cfg->n_listen, held, sv[1]));
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

static void describe_exit(int status, char *out, size_t outlen)
{
    if (WIFSIGNALED(status))
        snprintf(out, outlen, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
}

int tlsc_master_run(const tlsc_config_t *cfg, tlsc_tls_t *tls)
{
    master_t m = {.cfg = cfg, .tls = tls};
    slot_t *slots;
    sigset_t set;
    struct pollfd *pfds;
    char err[512];
    int stopping = 0, rc = 0, sfd;
    uint64_t stop_deadline = 0;

    if ((slots = calloc(cfg->workers, sizeof(*slots))) == NULL || (pfds = calloc(cfg->workers + 1, sizeof(*pfds))) == NULL)
        return 1;
    m.slots = slots;
    if (cfg->keyd != NULL && (m.keys = tlsc_tickets_new(NULL, NULL)) == NULL) {
        fprintf(stderr, "tlscache-server: cannot allocate the ticket key store\n");
        return 1;
    }
    for (unsigned i = 0; i < cfg->workers; i++) {
        slots[i].link = -1;
        if ((slots[i].fds = calloc(cfg->n_listen, sizeof(int))) == NULL)
            return 1;
        for (size_t j = 0; j < cfg->n_listen; j++) {
            if (bind_one(&cfg->listen[j], &slots[i].fds[j], err, sizeof(err)) != 0) {
                fprintf(stderr, "tlscache-server: %s\n", err);
                return 1;
            }
        }
    }

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &m.oldmask);
    signal(SIGPIPE, SIG_IGN);
    if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        fprintf(stderr, "tlscache-server: signalfd: %s\n", strerror(errno));
        return 1;
    }
    m.sfd = sfd;

    for (unsigned i = 0; i < cfg->workers; i++) {
        slots[i].pid = spawn(&m, i + 1);
        slots[i].started_ms = tlsc_now_ms();
        slots[i].backoff_ms = BACKOFF_MIN_MS;
    }
    for (size_t j = 0; j < cfg->n_listen; j++)
        tlsc_log_info("listening on %s:%s with %u worker(s), cluster \"%s\"", cfg->listen[j].host, cfg->listen[j].port,
                      cfg->workers, cfg->cluster);

    for (;;) {
        struct signalfd_siginfo info;
        nfds_t npfds = 1;
        int sig = 0;
        uint64_t now;
        unsigned alive = 0;

        pfds[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (unsigned i = 0; i < cfg->workers; i++) {
            if (slots[i].link >= 0)
                pfds[npfds++] = (struct pollfd){.fd = slots[i].link, .events = POLLIN};
        }
        if (poll(pfds, npfds, 100) > 0) {
            for (nfds_t k = 1; k < npfds; k++) {
                if (pfds[k].revents == 0)
                    continue;
                for (unsigned i = 0; i < cfg->workers; i++) {
                    if (slots[i].link == pfds[k].fd)
                        read_link(&m, &slots[i]);
                }
            }
            if ((pfds[0].revents & POLLIN) && read(sfd, &info, sizeof(info)) == (ssize_t)sizeof(info))
                sig = (int)info.ssi_signo;
        }
        now = tlsc_now_ms();

        if (sig == SIGCHLD) {
            pid_t pid;
            int status;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (unsigned i = 0; i < cfg->workers; i++) {
                    if (slots[i].pid != pid)
                        continue;
                    slots[i].pid = 0;
                    if (stopping)
                        break;
                    describe_exit(status, err, sizeof(err));
                    /* A worker that dies young waits longer each time; a stable one comes back at once. */
                    if (now - slots[i].started_ms >= STABLE_AFTER_MS)
                        slots[i].backoff_ms = BACKOFF_MIN_MS;
                    slots[i].respawn_at_ms = now + slots[i].backoff_ms;
                    tlsc_log_warn("worker %u (pid %d) %s; respawning in %u ms", i + 1, (int)pid, err, slots[i].backoff_ms);
                    slots[i].backoff_ms = slots[i].backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : slots[i].backoff_ms * 2;
                    break;
                }
            }
        } else if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            stopping = 1;
            stop_deadline = now + (uint64_t)cfg->drain_timeout_sec * 1000 + 2000;
            tlsc_log_info("%s: stopping workers (drain deadline %us)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                          cfg->drain_timeout_sec);
            for (unsigned i = 0; i < cfg->workers; i++) {
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP && !stopping) {
            tlsc_tls_t *check;
            /* Validate here first, so a broken file is reported once and no worker tries it. */
            if (tlsc_tls_new(cfg, &check, err, sizeof(err)) != 0) {
                tlsc_log_error("SIGHUP: reload refused, keeping the current certificates: %s", err);
            } else {
                tlsc_tls_free(check);
                tlsc_log_info("SIGHUP: reloading certificates in %u worker(s)", cfg->workers);
                for (unsigned i = 0; i < cfg->workers; i++) {
                    if (slots[i].pid > 0)
                        kill(slots[i].pid, SIGHUP);
                }
            }
        }

        for (unsigned i = 0; i < cfg->workers; i++) {
            if (!stopping && slots[i].pid == 0 && slots[i].respawn_at_ms != 0 && now >= slots[i].respawn_at_ms) {
                slots[i].respawn_at_ms = 0;
                slots[i].started_ms = now;
                slots[i].pid = spawn(&m, i + 1);
                if (slots[i].pid < 0) {
                    tlsc_log_error("fork for worker %u: %s", i + 1, strerror(errno));
                    slots[i].pid = 0;
                    slots[i].respawn_at_ms = now + slots[i].backoff_ms;
                }
            }
            if (slots[i].pid > 0)
                alive++;
        }
        if (stopping) {
            if (alive == 0)
                break;
            if (now >= stop_deadline) {
                for (unsigned i = 0; i < cfg->workers; i++) {
                    if (slots[i].pid > 0) {
                        tlsc_log_warn("worker %u (pid %d) missed the drain deadline: SIGKILL", i + 1, (int)slots[i].pid);
                        kill(slots[i].pid, SIGKILL);
                    }
                }
                stop_deadline = now + 60000;
                rc = 1;
            }
        }
    }
    tlsc_log_info("all workers stopped");
    for (unsigned i = 0; i < cfg->workers; i++) {
        for (size_t j = 0; j < cfg->n_listen; j++)
            close(slots[i].fds[j]);
        if (slots[i].link >= 0)
            close(slots[i].link);
        tlsc_keyproto_reader_free(slots[i].reader);
        free(slots[i].fds);
    }
    close(sfd);
    tlsc_tickets_free(m.keys);
    free(pfds);
    free(slots);
    return rc;
}
