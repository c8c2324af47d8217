#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ================================================================ numbers */

int tlsc_parse_uint_n(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) /* v * 10 + d would wrap */
            return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int tlsc_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    return s == NULL ? -1 : tlsc_parse_uint_n(s, strlen(s), min, max, out);
}

int tlsc_parse_uint32(const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v;

    if (tlsc_parse_uint(s, min, max, &v) != 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* ================================================================ addresses */

static int reason(char *err, size_t errlen, const char *what)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", what);
    return -1;
}

static int is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int parse_port(const char *p, size_t plen, tlsc_addr_t *out, char *err, size_t errlen)
{
    uint64_t v;

    if (plen > 5 || tlsc_parse_uint_n(p, plen, 1, 65535, &v) != 0)
        return reason(err, errlen, "bad port (1..65535)");
    out->port = (unsigned)v;
    snprintf(out->port_str, sizeof(out->port_str), "%u", out->port);
    return 0;
}

/* How many of the first `n` bytes at `p` are in `set`. */
static size_t strspn_n(const char *p, size_t n, const char *set)
{
    size_t i = 0;

    while (i < n && p[i] != '\0' && strchr(set, p[i]) != NULL)
        i++;
    return i;
}

static int parse_unix(const char *p, size_t n, tlsc_addr_t *out, char *err, size_t errlen)
{
    if (n == 0 || n > TLSC_ADDR_PATH_MAX)
        return reason(err, errlen, "a unix socket path must be 1..107 bytes");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return reason(err, errlen, "the unix socket path contains a control character");
    out->kind = TLSC_ADDR_UNIX;
    memcpy(out->path, p, n);
    out->path[n] = '\0';
    return 0;
}

int tlsc_addr_parse(const char *s, size_t len, unsigned flags, unsigned default_port, tlsc_addr_t *out, char *err, size_t errlen)
{
    const char *host = s, *port = NULL, *end = s + len;
    size_t hlen, plen = 0;

    memset(out, 0, sizeof(*out));
    if (s == NULL || len == 0)
        return reason(err, errlen, "missing host; the address is empty");
    if (memchr(s, '\0', len) != NULL)
        return reason(err, errlen, "the address contains a NUL byte");
    /*
     * "unix:PATH" is a socket, but "unix:6379" is HOST:PORT with a host named unix: a rest of
     * digits only is a port (and is refused as one when out of range), never a path.
     */
    if (len >= 5 && memcmp(s, "unix:", 5) == 0 && (len == 5 || strspn_n(s + 5, len - 5, "0123456789") != len - 5)) {
        if (!(flags & TLSC_ADDR_ALLOW_UNIX))
            return reason(err, errlen, "a unix socket is not accepted here; expected HOST:PORT");
        return parse_unix(s + 5, len - 5, out, err, errlen);
    }
    out->kind = TLSC_ADDR_TCP;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        struct in6_addr a6;

        if (close == NULL)
            return reason(err, errlen, "an IPv6 address without ']'");
        host = s + 1;
        hlen = (size_t)(close - host);
        if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
            return reason(err, errlen, "bad IPv6 address in brackets");
        memcpy(out->host, host, hlen);
        out->host[hlen] = '\0';
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return reason(err, errlen, "bad IPv6 address in brackets");
        out->is_v6 = 1;
        if (close + 1 < end) {
            if (close[1] != ':')
                return reason(err, errlen, "garbage after the IPv6 address; expected [V6]:PORT");
            port = close + 2;
            plen = (size_t)(end - port);
        }
    } else {
        const char *colon = memchr(s, ':', len);

        hlen = colon != NULL ? (size_t)(colon - s) : len;
        if (colon != NULL) {
            port = colon + 1;
            plen = (size_t)(end - port);
            if (memchr(port, ':', plen) != NULL)
                return reason(err, errlen, "put an IPv6 address in brackets, e.g. [::1]:8443");
        }
        if (hlen > TLSC_ADDR_HOST_MAX)
            return reason(err, errlen, "host longer than 253 bytes");
        if (hlen == 0 || (hlen == 1 && s[0] == '*')) {
            if (!(flags & TLSC_ADDR_ALLOW_ANY))
                return reason(err, errlen, "missing host; expected HOST:PORT");
            hlen = 0;
        }
        for (size_t i = 0; i < hlen; i++)
            if (!is_host_char(s[i]))
                return reason(err, errlen, "bad character in host (allowed: A-Z a-z 0-9 . - _)");
        memcpy(out->host, s, hlen);
        out->host[hlen] = '\0';
    }
    if (port == NULL) {
        if (!(flags & TLSC_ADDR_PORT_OPTIONAL))
            return reason(err, errlen, "missing port; expected HOST:PORT");
        if (default_port < 1 || default_port > 65535)
            return reason(err, errlen, "no port");
        out->port = default_port;
        snprintf(out->port_str, sizeof(out->port_str), "%u", out->port);
        return 0;
    }
    return parse_port(port, plen, out, err, errlen);
}

int tlsc_addr_parse_str(const char *s, unsigned flags, tlsc_addr_t *out, char *err, size_t errlen)
{
    if (s == NULL) {
        memset(out, 0, sizeof(*out));
        return reason(err, errlen, "missing host; the address is empty");
    }
    return tlsc_addr_parse(s, strlen(s), flags, 0, out, err, errlen);
}

int tlsc_addr_bucket(const struct sockaddr *sa, char *out, size_t outlen)
{
    if (sa == NULL || outlen < TLSC_ADDR_BUCKET_LEN)
        return -1;
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen) != NULL ? 0 : -1;
    if (sa->sa_family != AF_INET6)
        return -1;
    struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a))
        return inet_ntop(AF_INET, &a.s6_addr[12], out, (socklen_t)outlen) != NULL ? 0 : -1;
    memset(&a.s6_addr[8], 0, 8);
    if (inet_ntop(AF_INET6, &a, out, (socklen_t)(outlen - 3)) == NULL)
        return -1;
    strcat(out, "/64");
    return 0;
}

void tlsc_addr_format(const tlsc_addr_t *a, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    if (a->kind == TLSC_ADDR_UNIX)
        snprintf(out, outlen, "unix:%s", a->path);
    else if (a->is_v6)
        snprintf(out, outlen, "[%s]:%u", a->host, a->port);
    else
        snprintf(out, outlen, "%s:%u", a->host[0] ? a->host : "*", a->port);
}
