/* This file's one job: encode PROXY protocol v1 and v2 headers (pure, bounded). */
#include "proxyhdr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

int tlsc_proxyhdr_v1(const tlsc_proxyhdr_addrs_t *a, char *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    int af = a->family == 4 ? AF_INET : AF_INET6, n;

    if (a->family != 4 && a->family != 6)
        n = snprintf(out, cap, "PROXY UNKNOWN\r\n");
    else if (inet_ntop(af, a->src, s, sizeof(s)) == NULL || inet_ntop(af, a->dst, d, sizeof(d)) == NULL)
        return -1;
    else
        n = snprintf(out, cap, "PROXY TCP%d %s %s %u %u\r\n", a->family, s, d, (unsigned)a->sport, (unsigned)a->dport);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* A writer that refuses to go past the end; `bad` sticks. */
typedef struct {
    unsigned char *p;
    size_t len, cap;
    int bad;
} out_t;

static void put(out_t *o, const void *b, size_t n)
{
    if (o->bad || n > o->cap - o->len) {
        o->bad = 1;
        return;
    }
    memcpy(o->p + o->len, b, n);
    o->len += n;
}

static void put_u8(out_t *o, unsigned v)
{
    unsigned char b = (unsigned char)v;
    put(o, &b, 1);
}

static void put_u16(out_t *o, size_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(o, b, 2);
}

/* One TLV of `n` bytes (bounded by the caller); nothing when empty. */
static void put_tlv(out_t *o, unsigned type, const void *v, size_t n)
{
    if (n == 0)
        return;
    put_u8(o, type);
    put_u16(o, n);
    put(o, v, n);
}

static size_t bounded_len(const char *s, int *too_long)
{
    size_t n = s == NULL ? 0 : strnlen(s, TLSC_PROXYHDR_STR_MAX + 1);

    if (n > TLSC_PROXYHDR_STR_MAX)
        *too_long = 1;
    return n;
}

int tlsc_proxyhdr_v2(const tlsc_proxyhdr_addrs_t *a, const tlsc_proxyhdr_tls_t *t, unsigned char *out, size_t cap)
{
    out_t o = {out, 0, cap, 0};
    int too_long = 0;
    size_t vlen = bounded_len(t->version, &too_long), clen = bounded_len(t->cipher, &too_long);
    size_t slen = bounded_len(t->sni, &too_long), nlen = bounded_len(t->origin_node, &too_long);
    size_t len_at, ssl_at;
    unsigned char custom[1 + TLSC_PROXYHDR_STR_MAX];

    if (too_long || t->alpn_len > TLSC_PROXYHDR_STR_MAX)
        return -1;
    put(&o, v2_sig, sizeof(v2_sig));
    if (a->family == 4) {
        put_u8(&o, 0x21); /* version 2, PROXY */
        put_u8(&o, 0x11); /* TCP over IPv4 */
    } else if (a->family == 6) {
        put_u8(&o, 0x21);
        put_u8(&o, 0x21); /* TCP over IPv6 */
    } else {
        put_u8(&o, 0x20); /* version 2, LOCAL: no addresses */
        put_u8(&o, 0x00);
    }
    len_at = o.len;
    put_u16(&o, 0); /* filled in below */
    if (a->family == 4 || a->family == 6) {
        size_t alen = a->family == 4 ? 4 : 16;
        put(&o, a->src, alen);
        put(&o, a->dst, alen);
        put_u16(&o, a->sport);
        put_u16(&o, a->dport);
    }
    put_tlv(&o, 0x01, t->alpn, t->alpn_len);
    put_tlv(&o, 0x02, t->sni, slen);
    /* PP2_TYPE_SSL: client flags, verify, then its sub-TLVs; its length is filled in after. */
    put_u8(&o, 0x20);
    ssl_at = o.len;
    put_u16(&o, 0);
    put_u8(&o, 0x01);               /* PP2_CLIENT_SSL */
    put(&o, "\x00\x00\x00\x01", 4); /* verify: non-zero, no client certificate was verified */
    put_tlv(&o, 0x21, t->version, vlen);
    put_tlv(&o, 0x23, t->cipher, clen);
    if (!o.bad) {
        size_t n = o.len - ssl_at - 2;
        out[ssl_at] = (unsigned char)(n >> 8);
        out[ssl_at + 1] = (unsigned char)n;
    }
    custom[0] = t->resumed ? 1 : 0;
    if (nlen > 0)
        memcpy(custom + 1, t->origin_node, nlen);
    put_tlv(&o, TLSC_PROXYHDR_TLV_TLSCACHE, custom, 1 + nlen);
    if (o.bad || o.len - len_at - 2 > 0xFFFF)
        return -1;
    out[len_at] = (unsigned char)((o.len - len_at - 2) >> 8);
    out[len_at + 1] = (unsigned char)(o.len - len_at - 2);
    return (int)o.len;
}

/* ---------------------------------------------------------------- parsing (--accept-proxy) */

#define V1_MAX 107 /* the spec's longest line, CRLF included */

/* A port: 1..5 digits, no leading zero (but "0"), at most 65535. */
static int parse_port(const char *s, size_t n, uint16_t *out)
{
    unsigned v = 0;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* The next space-separated field of `line` (of `n` bytes) from `*at`; -1 when empty. */
static int field(const char *line, size_t n, size_t *at, const char **f, size_t *flen)
{
    size_t start = *at, i = start;

    while (i < n && line[i] != ' ')
        i++;
    if (i == start)
        return -1;
    *f = line + start;
    *flen = i - start;
    *at = i < n ? i + 1 : i; /* past the one space */
    return 0;
}

static int parse_v1(const unsigned char *buf, size_t len, tlsc_proxyhdr_addrs_t *out)
{
    const char *line = (const char *)buf, *f;
    size_t n, at = 6, flen;
    char tmp[INET6_ADDRSTRLEN + 1];
    tlsc_proxyhdr_addrs_t a = {0};

    /* The CRLF within V1_MAX bytes; before it, no CR, LF or NUL. */
    for (n = 0; n < len && n < V1_MAX; n++) {
        if (buf[n] == '\r')
            break;
        if (buf[n] == '\n' || buf[n] == 0)
            return -1;
    }
    if (n == len)
        return len >= V1_MAX ? -1 : 0;
    if (n == V1_MAX || n + 2 > V1_MAX)
        return -1;
    if (n + 1 == len)
        return 0;
    if (buf[n + 1] != '\n')
        return -1;
    if (n >= 13 && memcmp(line + 6, "UNKNOWN", 7) == 0 && (n == 13 || line[13] == ' ')) {
        *out = a;
        return (int)n + 2;
    }
    if (field(line, n, &at, &f, &flen) != 0 || flen != 4 || (memcmp(f, "TCP4", 4) != 0 && memcmp(f, "TCP6", 4) != 0))
        return -1;
    a.family = f[3] == '4' ? 4 : 6;
    for (int k = 0; k < 2; k++) {
        if (field(line, n, &at, &f, &flen) != 0 || flen >= sizeof(tmp))
            return -1;
        memcpy(tmp, f, flen);
        tmp[flen] = '\0';
        if (inet_pton(a.family == 4 ? AF_INET : AF_INET6, tmp, k == 0 ? a.src : a.dst) != 1)
            return -1;
    }
    if (field(line, n, &at, &f, &flen) != 0 || parse_port(f, flen, &a.sport) != 0)
        return -1;
    if (field(line, n, &at, &f, &flen) != 0 || parse_port(f, flen, &a.dport) != 0 || at != n || line[n - 1] == ' ')
        return -1;
    *out = a;
    return (int)n + 2;
}

static int parse_v2(const unsigned char *buf, size_t len, tlsc_proxyhdr_addrs_t *out)
{
    size_t total, alen, i;
    unsigned cmd, fam;
    tlsc_proxyhdr_addrs_t a = {0};

    if (len < 16)
        return 0;
    if ((buf[12] >> 4) != 2 || (cmd = buf[12] & 0x0F) > 1)
        return -1;
    fam = buf[13];
    total = 16 + ((size_t)buf[14] << 8 | buf[15]);
    if (total > TLSC_PROXYHDR_IN_MAX)
        return -1;
    switch (fam) {
    case 0x00:
        alen = 0;
        break;
    case 0x11:
    case 0x12:
        alen = 12;
        break;
    case 0x21:
    case 0x22:
        alen = 36;
        break;
    case 0x31:
    case 0x32:
        alen = 216;
        break;
    default:
        return -1;
    }
    if (cmd == 1 && fam == 0x00)
        return -1; /* PROXY must say which family */
    if (total - 16 < alen)
        return -1;
    if (len < total)
        return 0;
    /* The TLVs after the addresses must tile the rest exactly. */
    for (i = 16 + alen; i < total;) {
        size_t tlen;

        if (total - i < 3)
            return -1;
        tlen = (size_t)buf[i + 1] << 8 | buf[i + 2];
        if (tlen > total - i - 3)
            return -1;
        i += 3 + tlen;
    }
    if (cmd == 1 && (fam == 0x11 || fam == 0x21)) {
        size_t n = fam == 0x11 ? 4 : 16;
        a.family = fam == 0x11 ? 4 : 6;
        memcpy(a.src, buf + 16, n);
        memcpy(a.dst, buf + 16 + n, n);
        a.sport = (uint16_t)(buf[16 + 2 * n] << 8 | buf[17 + 2 * n]);
        a.dport = (uint16_t)(buf[18 + 2 * n] << 8 | buf[19 + 2 * n]);
    }
    *out = a;
    return (int)total;
}

int tlsc_proxyhdr_parse(const unsigned char *buf, size_t len, tlsc_proxyhdr_addrs_t *out)
{
    size_t k = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

    if (len == 0)
        return 0;
    if (memcmp(buf, v2_sig, k) == 0)
        return len < sizeof(v2_sig) ? 0 : parse_v2(buf, len, out);
    k = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", k) != 0)
        return -1;
    return len < 6 ? 0 : parse_v1(buf, len, out);
}
