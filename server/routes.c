/* This file's one job: parse `--backend [MATCH=]ADDR` values into routes and pick a connection's route. */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void set_err(char *err, size_t errlen, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", why);
}

/* An SNI name or pattern: DNS characters only, optionally starting with "*." (one wildcard label). */
static int valid_sni(const char *s, size_t len)
{
    size_t i = 0;

    if (len >= 2 && s[0] == '*' && s[1] == '.')
        i = 2;
    if (i == len)
        return 0;
    for (; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* An ALPN protocol: printable ASCII, no '=' or ','. */
static int valid_alpn(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '=' || s[i] == ',')
            return 0;
    return 1;
}

static tlsc_route_t *find(tlsc_routes_t *rs, tlsc_route_kind_t kind, const char *match)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->routes[i].kind == kind && strcmp(rs->routes[i].match, match) == 0)
            return &rs->routes[i];
    return NULL;
}

int tlsc_routes_add(tlsc_routes_t *rs, const char *spec, char *err, size_t errlen)
{
    tlsc_route_kind_t kind = TLSC_ROUTE_DEFAULT;
    char match[TLSC_ROUTES_MATCH_MAX + 1] = "", why[128];
    const char *addr = spec, *eq;
    tlsc_route_t *r;
    tlsc_addr_t a, *grown;
    size_t mlen;

    /* Only a value that starts with a MATCH kind has one, so "unix:/run/a=b.sock" stays an address. */
    if (strncmp(spec, "sni:", 4) == 0 || strncmp(spec, "alpn:", 5) == 0) {
        kind = spec[0] == 's' ? TLSC_ROUTE_SNI : TLSC_ROUTE_ALPN;
        const char *m = spec + (kind == TLSC_ROUTE_SNI ? 4 : 5);
        if ((eq = strchr(m, '=')) == NULL) {
            set_err(err, errlen, "a MATCH (sni:NAME or alpn:PROTO) must be followed by =ADDR");
            return -1;
        }
        mlen = (size_t)(eq - m);
        if (mlen > TLSC_ROUTES_MATCH_MAX || !(kind == TLSC_ROUTE_SNI ? valid_sni(m, mlen) : valid_alpn(m, mlen))) {
            set_err(err, errlen,
                    kind == TLSC_ROUTE_SNI ? "sni:NAME wants a host name or *.domain (letters, digits, '-', '.')"
                                           : "alpn:PROTO wants 1..255 printable bytes");
            return -1;
        }
        memcpy(match, m, mlen);
        match[mlen] = '\0';
        if (kind == TLSC_ROUTE_SNI)
            for (char *p = match; *p != '\0'; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        addr = eq + 1;
    }
    if (tlsc_addr_parse_str(addr, TLSC_ADDR_ALLOW_UNIX, &a, why, sizeof(why)) != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "ADDR: %s", why);
        set_err(err, errlen, msg);
        return -1;
    }
    if ((r = find(rs, kind, match)) == NULL) {
        tlsc_route_t *more;

        if (rs->n >= TLSC_ROUTES_MAX) {
            set_err(err, errlen, "too many distinct MATCHes (at most 64)");
            return -1;
        }
        if ((more = realloc(rs->routes, (rs->n + 1) * sizeof(*more))) == NULL) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        rs->routes = more;
        r = &rs->routes[rs->n++];
        memset(r, 0, sizeof(*r));
        r->kind = kind;
        memcpy(r->match, match, sizeof(match));
    }
    if (r->n_addrs >= TLSC_ROUTES_ADDRS_MAX) {
        set_err(err, errlen, "too many addresses for one MATCH (at most 64)");
        return -1;
    }
    if ((grown = realloc(r->addrs, (r->n_addrs + 1) * sizeof(*grown))) == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    r->addrs = grown;
    r->addrs[r->n_addrs++] = a;
    return 0;
}

int tlsc_routes_sni_match(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        /* The wildcard stands for one non-empty label: not the bare domain, not two labels. */
        return dot != NULL && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

const tlsc_route_t *tlsc_routes_pick(const tlsc_routes_t *rs, const char *sni, const unsigned char *alpn, size_t alpn_len)
{
    const tlsc_route_t *wild = NULL, *by_alpn = NULL, *dflt = NULL;

    for (size_t i = 0; i < rs->n; i++) {
        const tlsc_route_t *r = &rs->routes[i];

        switch (r->kind) {
        case TLSC_ROUTE_SNI:
            if (sni == NULL || *sni == '\0' || !tlsc_routes_sni_match(r->match, sni))
                break;
            if (r->match[0] != '*')
                return r;
            if (wild == NULL)
                wild = r;
            break;
        case TLSC_ROUTE_ALPN:
            if (by_alpn == NULL && alpn != NULL && alpn_len == strlen(r->match) && memcmp(alpn, r->match, alpn_len) == 0)
                by_alpn = r;
            break;
        case TLSC_ROUTE_DEFAULT:
            dflt = r;
            break;
        }
    }
    return wild != NULL ? wild : by_alpn != NULL ? by_alpn : dflt;
}

const tlsc_route_t *tlsc_routes_pick_early(const tlsc_routes_t *rs, const char *sni)
{
    const tlsc_route_t *r = tlsc_routes_pick(rs, sni, NULL, 0);

    if (r == NULL || r->kind == TLSC_ROUTE_SNI)
        return r; /* an SNI route wins over any ALPN route */
    for (size_t i = 0; i < rs->n; i++)
        if (rs->routes[i].kind == TLSC_ROUTE_ALPN)
            return NULL; /* the selected protocol may still pick that route */
    return r;
}

void tlsc_routes_describe(const tlsc_route_t *r, char *out, size_t outlen)
{
    if (r->kind == TLSC_ROUTE_DEFAULT)
        snprintf(out, outlen, "default");
    else
        snprintf(out, outlen, "%s:%s", r->kind == TLSC_ROUTE_SNI ? "sni" : "alpn", r->match);
}

void tlsc_routes_free(tlsc_routes_t *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->routes[i].addrs);
    free(rs->routes);
    rs->routes = NULL;
    rs->n = 0;
}
