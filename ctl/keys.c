/*
 * This file's one job: tlscache-ctl `keys status` and `keys rotate`. It dials the daemon
 * (--keyd), authenticates with the cluster secret (--keyd-secret-file) through the link's own
 * TLS 1.3 PSK session (proto/keyproto.h, driven here by a blocking socket), sends one CONTROL
 * request instead of a worker's HELLO and prints the STATUS answer: key tags, roles and times,
 * and which worker links acknowledged the daemon's epoch. No key name or secret is ever on
 * this link in either direction (docs/keys.md § Control requests).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "ctl.h"
#include "keyproto.h"
#include "opts.h"
#include "util.h"

/* Waits until `fd` is ready for `events` or the deadline passes: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = tlsc_now_ms();
        struct pollfd p = {fd, events, 0};
        int n;

        if (now >= deadline)
            return 0;
        n = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* A non-blocking socket connected to `a` before the deadline; -1 with `err` set. */
static int dial(const tlsc_addr_t *a, uint64_t deadline, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc, soerr = 0;
    socklen_t slen = sizeof(soerr);

    if (a->kind == TLSC_ADDR_UNIX) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, a->path, strlen(a->path) + 1); /* bounded by TLSC_ADDR_PATH_MAX */
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            snprintf(err, errlen, "cannot connect: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(a->host, a->port_str, &hints, &res)) != 0) {
        snprintf(err, errlen, "cannot resolve: %s", gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "cannot connect: no address");
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0))
            break;
        snprintf(err, errlen, "cannot connect: %s", soerr ? strerror(soerr) : errno == EINPROGRESS ? "timed out" : strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Writes all pending ciphertext before the deadline; 0 or -1. */
static int flush(int fd, tlsc_keyproto_conn_t *kc, uint64_t deadline)
{
    unsigned char buf[16384];
    size_t n, off;

    while ((n = tlsc_keyproto_conn_take(kc, buf, sizeof(buf))) > 0)
        for (off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, n - off);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLOUT, deadline) == 1)
                continue;
            else
                return -1;
        }
    return 0;
}

/*
 * One control exchange: connect, TLS (PSK), CONTROL(op), STATUS. Returns 0 with the answer in
 * `st`, or -1 with one line in `err`.
 */
static int request(const tlsc_ctl_t *c, uint8_t op, tlsc_keyproto_status_t *st, char *err, size_t errlen)
{
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN], buf[TLSC_KEYPROTO_CONN_RECV_MAX];
    tlsc_keyproto_link_t *link = NULL;
    tlsc_keyproto_conn_t *kc = NULL;
    tlsc_keyproto_msg_t *m = calloc(1, sizeof(*m));
    uint64_t deadline = tlsc_now_ms() + c->timeout_ms;
    char why[512];
    tlsc_addr_t a;
    int fd = -1, rc = -1, got;

    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (tlsc_addr_parse_str(c->keyd, TLSC_ADDR_ALLOW_UNIX, &a, why, sizeof(why)) != 0) { /* checked by the flag too */
        snprintf(err, errlen, "--keyd: %s", why);
        goto done;
    }
    if (tlsc_keyproto_psk_load(c->keyd_secret_file, psk, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--keyd-secret-file: %s", why);
        goto done;
    }
    rc = tlsc_keyproto_link_new(0, psk, &link, why, sizeof(why));
    OPENSSL_cleanse(psk, sizeof(psk));
    if (rc != 0) {
        rc = -1;
        snprintf(err, errlen, "key link: %s", why);
        goto done;
    }
    rc = -1;
    if ((kc = tlsc_keyproto_conn_new(link)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if ((fd = dial(&a, deadline, why, sizeof(why))) < 0) {
        snprintf(err, errlen, "daemon %s: %s", c->keyd, why);
        goto done;
    }
    m->type = TLSC_KEYPROTO_CONTROL;
    m->u.op = op;
    if (tlsc_keyproto_conn_send(kc, m) != 0 || flush(fd, kc, deadline) != 0) {
        snprintf(err, errlen, "daemon %s: cannot send the request", c->keyd);
        goto done;
    }
    for (;;) {
        ssize_t n;
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) {
            snprintf(err, errlen, "daemon %s: %s", c->keyd, w == 0 ? "no answer in time (--timeout)" : strerror(errno));
            goto done;
        }
        if ((n = read(fd, buf, sizeof(buf))) < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "daemon %s: closed the link before answering%s", c->keyd,
                     tlsc_keyproto_conn_established(kc) ? "" : " (is --keyd-secret-file the daemon's --secret-file?)");
            goto done;
        }
        if ((got = tlsc_keyproto_conn_recv(kc, buf, (size_t)n)) != 0) {
            if (got == TLSC_KEYPROTO_EAUTH)
                snprintf(err, errlen, "daemon %s: TLS handshake failed: is --keyd-secret-file the daemon's --secret-file? (%s)",
                         c->keyd, tlsc_keyproto_conn_reason(kc));
            else
                snprintf(err, errlen, "daemon %s: %s", c->keyd, tlsc_keyproto_strerror(got));
            goto done;
        }
        if (flush(fd, kc, deadline) != 0) {
            snprintf(err, errlen, "daemon %s: write failed", c->keyd);
            goto done;
        }
        while ((got = tlsc_keyproto_conn_next(kc, m)) == 1) {
            if (m->type == TLSC_KEYPROTO_STATUS) {
                *st = m->u.status;
                rc = 0;
                goto done;
            }
            if (m->type == TLSC_KEYPROTO_ERROR) {
                snprintf(err, errlen, "daemon %s refused the request: %s (a daemon older than this tool?)", c->keyd,
                         m->u.error.text);
                goto done;
            }
            snprintf(err, errlen, "daemon %s: unexpected message type %d", c->keyd, (int)m->type);
            goto done;
        }
        if (got < 0) {
            snprintf(err, errlen, "daemon %s: bad answer: %s", c->keyd, tlsc_keyproto_strerror(got));
            goto done;
        }
    }

done:
    OPENSSL_cleanse(psk, sizeof(psk));
    if (fd >= 0)
        close(fd);
    tlsc_keyproto_conn_free(kc);
    tlsc_keyproto_link_free(link);
    tlsc_keyproto_msg_wipe(m);
    free(m);
    return rc;
}

static const char *role_name(uint8_t role)
{
    return role == TLSC_KEYPROTO_ROLE_CURRENT ? "current" : role == TLSC_KEYPROTO_ROLE_NEXT ? "next" : "previous";
}

/* "in 30s" / "12s ago" from the daemon's clock. */
static void relative(char *out, size_t outlen, uint64_t t, uint64_t now)
{
    if (t >= now)
        snprintf(out, outlen, "in %llus", (unsigned long long)(t - now));
    else
        snprintf(out, outlen, "%llus ago", (unsigned long long)(now - t));
}

static void print_status(const tlsc_keyproto_status_t *st)
{
    char tag[2 * TLSC_KEYPROTO_TAG_LEN + 1], nb[32], na[32], rnb[32], rna[32];
    size_t acked = 0;

    printf("epoch %llu  rotate %us  ticket-lifetime %us  lead %us%s\n", (unsigned long long)st->epoch, st->rotate_sec,
           st->lifetime_sec, st->lead_sec,
           (st->flags & TLSC_KEYPROTO_STATUS_GRACE) ? "  (restart grace period: no window yet)" : "");
    printf("%-8s  %-8s  %-20s  %-14s  %-20s  %s\n", "KEY", "ROLE", "NOT_BEFORE", "", "NOT_AFTER", "");
    for (size_t i = 0; i < st->nkeys; i++) {
        const tlsc_keyproto_status_key_t *k = &st->keys[i];
        tlsc_hex_encode(tag, k->tag, TLSC_KEYPROTO_TAG_LEN);
        tlsc_ctl_time(nb, sizeof(nb), k->not_before);
        tlsc_ctl_time(na, sizeof(na), k->not_after);
        relative(rnb, sizeof(rnb), k->not_before, st->now);
        relative(rna, sizeof(rna), k->not_after, st->now);
        printf("%-8s  %-8s  %-20s  %-14s  %-20s  %s\n", tag, role_name(k->role), nb, rnb, na, rna);
    }
    for (size_t i = 0; i < st->nworkers; i++)
        acked += st->workers[i].acked_epoch == st->epoch;
    printf("workers: %u connected; %zu of the %zu listed acked epoch %llu\n", st->workers_total, acked, st->nworkers,
           (unsigned long long)st->epoch);
    for (size_t i = 0; i < st->nworkers; i++) {
        const tlsc_keyproto_status_worker_t *w = &st->workers[i];
        printf("worker %s/%u acked %llu%s\n", w->node, w->worker, (unsigned long long)w->acked_epoch,
               w->acked_epoch == st->epoch ? " (current)" : " (behind)");
    }
}

int tlsc_ctl_keys(const tlsc_ctl_t *c, int rotate)
{
    tlsc_keyproto_status_t *st = calloc(1, sizeof(*st));
    char err[1024];
    int rc = TLSC_EXIT_FAILURE;

    if (st == NULL) {
        fprintf(stderr, "tlscache-ctl: out of memory\n");
        return TLSC_EXIT_FAILURE;
    }
    if (request(c, rotate ? TLSC_KEYPROTO_OP_ROTATE : TLSC_KEYPROTO_OP_STATUS, st, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-ctl: keys %s: %s\n", rotate ? "rotate" : "status", err);
    } else if (rotate && (st->flags & TLSC_KEYPROTO_STATUS_GRACE)) {
        fprintf(stderr, "tlscache-ctl: keys rotate: the daemon is in its restart grace period; nothing rotated, try again\n");
    } else {
        if (rotate)
            printf("%s\n", (st->flags & TLSC_KEYPROTO_STATUS_ROTATED)
                               ? "rotation brought forward: the next key becomes current after the lead time"
                               : "nothing to do: the next key already becomes current within the lead time");
        print_status(st);
        rc = TLSC_EXIT_OK;
    }
    free(st);
    return rc;
}
