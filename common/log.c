/* This file's one job: one log line per call, as text or JSON, in one write. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char log_tag[96] = "tlscache";
static char log_worker[16] = "-";
static tlsc_log_level_t log_level = TLSC_LOG_INFO;
static tlsc_log_format_t log_format = TLSC_LOG_TEXT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tlsc_log_set_tag(const char *tag)
{
    snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

void tlsc_log_set_worker(const char *worker)
{
    snprintf(log_worker, sizeof(log_worker), "%s", worker);
}

void tlsc_log_set_format(tlsc_log_format_t format)
{
    log_format = format;
}

tlsc_log_format_t tlsc_log_format(void)
{
    return log_format;
}

int tlsc_log_parse_format(const char *name, tlsc_log_format_t *out)
{
    if (strcmp(name, "text") == 0)
        *out = TLSC_LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = TLSC_LOG_JSON;
    else
        return -1;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t tlsc_log_json_escape(char *out, size_t outlen, size_t used, const char *in, size_t inlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0;

    while (i < inlen) {
        char esc[8];
        const char *piece = esc;
        size_t plen, step = 1;

        if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\', esc[1] = (char)p[i], plen = 2;
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
        } else if ((step = utf8_len(p + i, inlen - i)) == 0) {
            esc[0] = '?', plen = 1, step = 1;
        } else {
            piece = in + i, plen = step;
        }
        if (used + plen + 1 > outlen)
            break;
        memcpy(out + used, piece, plen);
        used += plen;
        i += step;
    }
    out[used] = '\0';
    return used;
}

void tlsc_log_set_level(tlsc_log_level_t level)
{
    log_level = level;
}

int tlsc_log_parse_level(const char *name, tlsc_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (tlsc_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int tlsc_log_enabled(tlsc_log_level_t level)
{
    return level <= log_level;
}

void tlsc_log(tlsc_log_level_t level, const char *fmt, ...)
{
    char msg[1024], ts[40], line[8192];
    struct timespec tv;
    struct tm tm;
    size_t n, mlen;
    va_list ap;

    if (!tlsc_log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &tv);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", tv.tv_nsec / 1000000);
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mlen = m < 0 ? 0 : (size_t)m >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)m;

    if (log_format == TLSC_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"tag\":\"", ts, level_names[level]);
        n = tlsc_log_json_escape(line, sizeof(line), n, log_tag, strlen(log_tag));
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"pid\":%d,\"worker\":\"", (int)getpid());
        n = tlsc_log_json_escape(line, sizeof(line), n, log_worker, strlen(log_worker));
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"msg\":\"");
        n = tlsc_log_json_escape(line, sizeof(line) - 3, n, msg, mlen); /* room for the closing "}\n */
        memcpy(line + n, "\"}\n", 3);
        n += 3;
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %s pid=%d worker=%s %s: ", ts, log_tag, (int)getpid(), log_worker,
                             level_names[level]);
        if (n + mlen + 1 > sizeof(line))
            mlen = sizeof(line) - n - 1;
        memcpy(line + n, msg, mlen);
        /* Control characters from peers never reach the terminal raw. */
        for (size_t i = 0; i < n + mlen; i++) {
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
                line[i] = '?';
        }
        n += mlen;
        line[n++] = '\n';
    }
    /* One write per line, so lines from many workers do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
