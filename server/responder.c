/*
 * This file's one job: the built-in HTTP responder that runs after the handshake and answers
 * one JSON line about the connection.
 */

#include "responder.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_MAX 8192 /* a request head larger than this gets 431 */

/*
 * A connection's request state: how much of the head came and its last bytes, not the head
 * itself (the reply does not depend on what was asked). Most connections close after the
 * handshake without a request, and each used to cost an 8 KiB buffer; this is a small
 * allocation from malloc's per-thread cache.
 */
typedef struct {
    const tlsc_responder_t *r;
    size_t len;      /* bytes of the head so far, at most REQUEST_MAX */
    uint32_t window; /* the last four bytes, the newest in the low byte */
} request_t;

#define END_CRLF 0x0d0a0d0au /* "\r\n\r\n" */
#define END_LF   0x0a0au     /* "\n\n" */

size_t tlsc_responder_json_escape(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len && n + 7 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

/* The whole reply in one buffer and one SSL_write: one TLS record, as clients expect. */
static void reply(const tlsc_responder_t *r, tlsc_conn_t *c, int status)
{
    SSL *ssl = tlsc_conn_ssl(c);
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    const char *sni = tlsc_conn_sni(c), *group = NULL;
    char body[1024], out[1400], alpn_js[300], sni_js[300];
    int blen, n, nid;

    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    tlsc_responder_json_escape(alpn_js, sizeof(alpn_js), (const char *)alpn, alpn_len);
    tlsc_responder_json_escape(sni_js, sizeof(sni_js), sni, strlen(sni));
    if ((nid = SSL_get_negotiated_group(ssl)) != NID_undef)
        group = SSL_group_to_name(ssl, nid);
    blen = snprintf(body, sizeof(body),
                    "{\"node\":\"%s\",\"worker\":%u,\"pid\":%d,\"protocol\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\","
                    "\"sni\":\"%s\",\"alpn\":\"%s\",\"resumed\":%s}\n",
                    r->node, r->worker, r->pid, SSL_get_version(ssl), SSL_get_cipher_name(ssl), group ? group : "", sni_js, alpn_js,
                    SSL_session_reused(ssl) ? "true" : "false");
    /* Every part is bounded (names escaped into 300 bytes, a node name is at most 64); still, check. */
    if (blen < 0 || (size_t)blen >= sizeof(body)) {
        tlsc_conn_close(c);
        return;
    }
    n = snprintf(out, sizeof(out),
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status,
                 status == 200 ? "OK" : "Request Header Fields Too Large", blen, body);
    if (n < 0 || (size_t)n >= sizeof(out)) {
        tlsc_conn_close(c);
        return;
    }
    if (tlsc_conn_write(c, out, (size_t)n) == 0)
        tlsc_conn_end(c);
}

static void *on_open(void *hdata, tlsc_conn_t *c, void *early)
{
    request_t *q = malloc(sizeof(*q));

    (void)c;
    (void)early; /* no hello hook: always NULL */
    if (q != NULL)
        *q = (request_t){.r = hdata};
    return q;
}

/* Scans the request head as it comes; answers once it is complete (or too large). */
static void on_data(void *state, tlsc_conn_t *c, const char *buf, size_t len)
{
    request_t *q = state;
    size_t take;

    if (q->len > REQUEST_MAX)
        return; /* answered already */
    take = len < REQUEST_MAX - q->len ? len : REQUEST_MAX - q->len;
    for (size_t i = 0; i < take; i++) {
        q->window = (q->window << 8) | (unsigned char)buf[i];
        if (q->window == END_CRLF || (q->window & 0xffffu) == END_LF) {
            q->len = REQUEST_MAX + 1; /* answered: anything after it is ignored */
            reply(q->r, c, 200);
            return;
        }
    }
    q->len += take;
    if (q->len == REQUEST_MAX) {
        q->len = REQUEST_MAX + 1;
        reply(q->r, c, 431);
    }
}

static void on_close(void *state, tlsc_close_cause_t why)
{
    (void)why;
    free(state);
}

void tlsc_responder_handler(tlsc_responder_t *r, tlsc_handler_t *out)
{
    *out = (tlsc_handler_t){.open = on_open, .data = on_data, .close = on_close, .hdata = r};
}
