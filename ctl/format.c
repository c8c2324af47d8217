/* This file's one job: how tlscache-ctl prints what it reads from Redis and the daemon. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* Control, non-ASCII and '\\' bytes as \xNN, and the space too unless `keep_space`. */
static void escape(char *out, size_t outlen, const char *s, size_t len, size_t max, int keep_space)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (outlen == 0)
        return;
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 5 >= outlen)
            break;
        if ((c > 0x20 || (keep_space && c == 0x20)) && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (len > max && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

void tlsc_ctl_printable(char *out, size_t outlen, const char *s, size_t len, size_t max)
{
    escape(out, outlen, s, len, max, 0);
}

void tlsc_ctl_printable_text(char *out, size_t outlen, const char *s, size_t len, size_t max)
{
    escape(out, outlen, s, len, max, 1);
}

void tlsc_ctl_time(char *out, size_t outlen, uint64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t > 253402300799ull || gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%llu", (unsigned long long)t);
}
