/*
 * The master process: binds, forks, supervises. It runs no event loop; signals are blocked
 * and taken synchronously with sigtimedwait(), which keeps the control flow in one place and
 * leaves nothing of a loop for the children to inherit.
 */

#include "master.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
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
} slot_t;

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

static pid_t spawn(const tlsc_config_t *cfg, tlsc_tls_t *tls, slot_t *slots, unsigned id, const sigset_t *oldmask)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* Child: keep only this slot's sockets, take signals the normal way again. */
    for (unsigned i = 0; i < cfg->workers; i++) {
        if (i + 1 == id)
            continue;
        for (size_t j = 0; j < cfg->n_listen; j++)
            close(slots[i].fds[j]);
    }
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    _exit(tlsc_worker_run(cfg, tls, id, slots[id - 1].fds, cfg->n_listen));
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
    slot_t *slots;
    sigset_t set, oldmask;
    char err[512];
    int stopping = 0, rc = 0;
    uint64_t stop_deadline = 0;

    if ((slots = calloc(cfg->workers, sizeof(*slots))) == NULL)
        return 1;
    for (unsigned i = 0; i < cfg->workers; i++) {
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
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    signal(SIGPIPE, SIG_IGN);

    for (unsigned i = 0; i < cfg->workers; i++) {
        slots[i].pid = spawn(cfg, tls, slots, i + 1, &oldmask);
        slots[i].started_ms = tlsc_now_ms();
        slots[i].backoff_ms = BACKOFF_MIN_MS;
    }
    for (size_t j = 0; j < cfg->n_listen; j++)
        tlsc_log_info("listening on %s:%s with %u worker(s), cluster \"%s\"", cfg->listen[j].host, cfg->listen[j].port,
                      cfg->workers, cfg->cluster);

    for (;;) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);
        uint64_t now = tlsc_now_ms();
        unsigned alive = 0;

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
                slots[i].pid = spawn(cfg, tls, slots, i + 1, &oldmask);
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
        free(slots[i].fds);
    }
    free(slots);
    return rc;
}
