#ifndef TLSC_RESPONDER_H
#define TLSC_RESPONDER_H

/*
 * The built-in responder: answers the first HTTP/1.x request on a connection with one JSON
 * line that tells who answered and how (node, worker, pid, protocol, cipher, group, SNI,
 * ALPN, resumed), then closes with close_notify. It is what the demo, the bench and the tests
 * talk to; a --backend proxy is another tlsc_handler_t beside it.
 */

#include "conn.h"

typedef struct {
    const char *node;
    unsigned worker;
    int pid;
} tlsc_responder_t;

/** The handler; `r` must outlive every connection it serves. */
void tlsc_responder_handler(tlsc_responder_t *r, tlsc_handler_t *out);

/** Escapes `len` bytes of `s` as the inside of a JSON string into `out` (always NUL-terminated); returns its length. */
size_t tlsc_responder_json_escape(char *out, size_t cap, const char *s, size_t len);

#endif
