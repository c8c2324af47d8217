#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char log_tag[96] = "tlscache";
static tlsc_log_level_t log_level = TLSC_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tlsc_log_set_tag(const char *tag)
{
    snprintf(log_tag, sizeof(log_tag), "%s", tag);
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
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (!tlsc_log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000, log_tag, level_names[level]);
    if (n < sizeof(line)) {
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += (size_t)m;
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* Control characters from peers never reach the terminal raw. */
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    }
    line[n++] = '\n';
    /* One write per line, so lines from many workers do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
