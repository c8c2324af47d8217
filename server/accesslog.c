/*
 * This file's one job: the access log — format one line per connection, buffer it (bounded),
 * write it with one uv_fs_write in flight, reopen on request. Read in firing order:
 * tlsc_accesslog_write (format, append, kick), kick, on_written, on_opened.
 */

#include "accesslog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

_Static_assert(TLSC_ACCESSLOG_LINE_MAX <= PIPE_BUF, "a line fits one atomic pipe write");

struct tlsc_accesslog_s {
    uv_loop_t *loop;
    char *path; /* NULL: standard output */
    tlsc_log_format_t format;
    uint64_t *dropped;
    uv_file fd;
    int is_pipe;       /* not a regular file: each write at most PIPE_BUF bytes */
    int reopen_wanted; /* SIGUSR1 came: reopen once the write in flight is done */
    int writing;       /* wreq is in flight, over buf[0..wlen) */
    int opening;       /* oreq is in flight */
    int failing;       /* the last write failed (logged once per change) */
    uv_fs_t wreq, oreq;
    size_t wlen; /* bytes of buf the write in flight covers */
    size_t len;  /* bytes in buf */
    char buf[TLSC_ACCESSLOG_BUF];
};

/* ------------------------------------------------------------------------------------------ */
/* Formatting                                                                                   */

typedef struct {
    char *out;
    size_t cap, n;
    tlsc_log_format_t format;
    int first;
} line_t;

static void put_raw(line_t *l, const char *s, size_t len)
{
    if (l->n + len >= l->cap)
        len = l->cap - l->n - 1;
    memcpy(l->out + l->n, s, len);
    l->n += len;
    l->out[l->n] = '\0';
}

static void put_key(line_t *l, const char *key)
{
    if (l->format == TLSC_LOG_JSON) {
        put_raw(l, l->first ? "\"" : ",\"", l->first ? 1 : 2);
        put_raw(l, key, strlen(key));
        put_raw(l, "\":", 2);
    } else {
        put_raw(l, " ", 1);
        put_raw(l, key, strlen(key));
        put_raw(l, "=", 1);
    }
    l->first = 0;
}

/* A string value; NULL or empty is null in JSON and "-" in text. Text keeps each value one token. */
static void put_str(line_t *l, const char *key, const char *s, size_t len)
{
    put_key(l, key);
    if (s == NULL || len == 0) {
        put_raw(l, l->format == TLSC_LOG_JSON ? "null" : "-", l->format == TLSC_LOG_JSON ? 4 : 1);
        return;
    }
    if (l->format == TLSC_LOG_JSON) {
        put_raw(l, "\"", 1);
        l->n = tlsc_log_json_escape(l->out, l->cap - 1, l->n, s, len); /* room for the closing quote */
        put_raw(l, "\"", 1);
        return;
    }
    for (size_t i = 0; i < len && l->n + 1 < l->cap; i++) {
        unsigned char c = (unsigned char)s[i];
        l->out[l->n++] = c == ' ' ? '_' : (c < 0x21 || c > 0x7e || c == '"' || c == '=') ? '?' : (char)c;
    }
    l->out[l->n] = '\0';
}

static void put_u64(line_t *l, const char *key, uint64_t v)
{
    char num[24];

    put_key(l, key);
    put_raw(l, num, (size_t)snprintf(num, sizeof(num), "%llu", (unsigned long long)v));
}

/* Microseconds as milliseconds with three decimals. */
static void put_ms(line_t *l, const char *key, uint64_t us)
{
    char num[32];

    put_key(l, key);
    put_raw(l, num,
            (size_t)snprintf(num, sizeof(num), "%llu.%03llu", (unsigned long long)(us / 1000), (unsigned long long)(us % 1000)));
}

static void format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];

    out[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)) != NULL)
            snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)) != NULL)
            snprintf(out, outlen, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
}

size_t tlsc_accesslog_format(tlsc_log_format_t format, const tlsc_accesslog_entry_t *e, char *out, size_t outlen)
{
    line_t l = {.out = out, .cap = outlen - 1, .format = format, .first = 1}; /* cap leaves room for '\n' */
    char ts[40], addr[INET6_ADDRSTRLEN + 16];
    struct timespec tv;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &tv);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", tv.tv_nsec / 1000000);
    format_addr(e->client, addr, sizeof(addr));

    out[0] = '\0';
    if (format == TLSC_LOG_JSON) {
        put_raw(&l, "{", 1);
        put_str(&l, "ts", ts, strlen(ts));
    } else {
        put_raw(&l, ts, strlen(ts));
        l.first = 0;
    }
    put_str(&l, "client", addr, strlen(addr));
    put_str(&l, "sni", e->sni, e->sni != NULL ? strlen(e->sni) : 0);
    put_str(&l, "alpn", (const char *)e->alpn, e->alpn_len);
    put_str(&l, "protocol", e->protocol, e->protocol != NULL ? strlen(e->protocol) : 0);
    put_str(&l, "cipher", e->protocol != NULL ? e->cipher : NULL, e->protocol != NULL && e->cipher != NULL ? strlen(e->cipher) : 0);
    if (e->session == NULL) {
        put_str(&l, "resumed", NULL, 0);
    } else {
        int resumed = strcmp(e->session, "full") != 0;
        if (format == TLSC_LOG_JSON) {
            put_key(&l, "resumed");
            put_raw(&l, resumed ? "true" : "false", resumed ? 4 : 5);
        } else {
            put_str(&l, "resumed", resumed ? "yes" : "no", resumed ? 3 : 2);
        }
    }
    put_str(&l, "session", e->session, e->session != NULL ? strlen(e->session) : 0);
    if (e->session != NULL)
        put_ms(&l, "handshake_ms", e->handshake_us);
    else
        put_str(&l, "handshake_ms", NULL, 0);
    put_u64(&l, "bytes_in", e->bytes_in);
    put_u64(&l, "bytes_out", e->bytes_out);
    put_ms(&l, "duration_ms", e->duration_us);
    put_str(&l, "backend", e->backend, e->backend != NULL ? strlen(e->backend) : 0);
    put_str(&l, "close", e->close, e->close != NULL ? strlen(e->close) : 0);
    put_str(&l, "end", e->end, e->end != NULL ? strlen(e->end) : 0);
    if (format == TLSC_LOG_JSON) {
        if (l.n + 2 >= l.cap) /* cut: the object still closes */
            l.n = l.cap - 2;
        put_raw(&l, "}", 1);
    }
    out[l.n++] = '\n';
    out[l.n] = '\0';
    return l.n;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                      */

static void kick(tlsc_accesslog_t *al);

static void count_dropped(tlsc_accesslog_t *al, const char *p, size_t len)
{
    uint64_t lines = 0;

    for (const char *e = p + len; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        lines++;
    tlsc_stat_add(al->dropped, lines);
}

static void on_written(uv_fs_t *req)
{
    tlsc_accesslog_t *al = req->data;
    ssize_t r = req->result;
    size_t done;

    uv_fs_req_cleanup(req);
    al->writing = 0;
    if (r < 0) {
        /* This batch is lost (a full disk, an I/O error): count it, keep going with the next. */
        count_dropped(al, al->buf, al->wlen);
        if (!al->failing)
            tlsc_log_error("access log %s: write failed: %s (lines are dropped and counted until a write succeeds)",
                           al->path != NULL ? al->path : "-", uv_strerror((int)r));
        al->failing = 1;
        done = al->wlen;
    } else {
        if (al->failing)
            tlsc_log_info("access log %s: writing again", al->path != NULL ? al->path : "-");
        al->failing = 0;
        done = (size_t)r; /* a short write goes on from where it stopped */
    }
    memmove(al->buf, al->buf + done, al->len - done);
    al->len -= done;
    kick(al);
}

static void on_opened(uv_fs_t *req)
{
    tlsc_accesslog_t *al = req->data;
    ssize_t r = req->result;
    uv_fs_t close_req;

    uv_fs_req_cleanup(req);
    al->opening = 0;
    if (r < 0) {
        tlsc_log_error("access log %s: reopen failed: %s (still writing to the old file)", al->path, uv_strerror((int)r));
    } else {
        uv_fs_close(NULL, &close_req, al->fd, NULL); /* a close is quick: the data went out with each write */
        uv_fs_req_cleanup(&close_req);
        al->fd = (uv_file)r;
        tlsc_log_info("access log %s: reopened", al->path);
    }
    kick(al);
}

/* Starts the next reopen or write, unless one is in flight. */
static void kick(tlsc_accesslog_t *al)
{
    size_t n;

    if (al->writing || al->opening)
        return;
    if (al->reopen_wanted) {
        al->reopen_wanted = 0;
        al->oreq.data = al;
        if (uv_fs_open(al->loop, &al->oreq, al->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644, on_opened) == 0) {
            al->opening = 1;
            return;
        }
        tlsc_log_error("access log %s: cannot start a reopen", al->path);
    }
    if (al->len == 0)
        return;
    n = al->len;
    if (al->is_pipe && n > PIPE_BUF) {
        /* Whole lines only, at most PIPE_BUF bytes: a pipe keeps such a write in one piece. */
        n = PIPE_BUF;
        while (n > 0 && al->buf[n - 1] != '\n')
            n--;
        if (n == 0)
            n = PIPE_BUF; /* cannot happen: a line is shorter than PIPE_BUF */
    }
    uv_buf_t b = uv_buf_init(al->buf, (unsigned int)n);
    al->wreq.data = al;
    if (uv_fs_write(al->loop, &al->wreq, al->fd, &b, 1, -1, on_written) != 0) {
        count_dropped(al, al->buf, al->len);
        al->len = 0;
        return;
    }
    al->wlen = n;
    al->writing = 1;
}

void tlsc_accesslog_write(tlsc_accesslog_t *al, const tlsc_accesslog_entry_t *e)
{
    char line[TLSC_ACCESSLOG_LINE_MAX];
    size_t n = tlsc_accesslog_format(al->format, e, line, sizeof(line));

    if (al->len + n > sizeof(al->buf)) {
        tlsc_stat_inc(al->dropped); /* the disk is behind: a line lost, never a stalled loop */
        return;
    }
    memcpy(al->buf + al->len, line, n);
    al->len += n;
    kick(al);
}

void tlsc_accesslog_reopen(tlsc_accesslog_t *al)
{
    if (al->path == NULL)
        return; /* standard output is not ours to reopen */
    al->reopen_wanted = 1;
    kick(al);
}

int tlsc_accesslog_busy(const tlsc_accesslog_t *al)
{
    return al != NULL && (al->writing || al->opening);
}

int tlsc_accesslog_open(uv_loop_t *loop, const char *path, tlsc_log_format_t format, uint64_t *dropped, tlsc_accesslog_t **out,
                        char *err, size_t errlen)
{
    tlsc_accesslog_t *al = calloc(1, sizeof(*al));
    struct stat st;

    if (al == NULL || (strcmp(path, "-") != 0 && (al->path = strdup(path)) == NULL)) {
        free(al);
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    al->loop = loop;
    al->format = format;
    al->dropped = dropped;
    if (al->path == NULL) {
        al->fd = STDOUT_FILENO;
    } else if ((al->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        free(al->path);
        free(al);
        return uv_translate_sys_error(e);
    }
    al->is_pipe = fstat(al->fd, &st) != 0 || !S_ISREG(st.st_mode);
    *out = al;
    return 0;
}

void tlsc_accesslog_free(tlsc_accesslog_t *al)
{
    if (al == NULL)
        return;
    if (al->path != NULL)
        close(al->fd);
    free(al->path);
    free(al);
}
