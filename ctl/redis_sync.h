#ifndef TLSC_CTLREDIS_H
#define TLSC_CTLREDIS_H

/*
 * A blocking Redis link for tlscache-ctl: hiredis's synchronous context, configured from the
 * server's --redis URL (proto/redis_url.h: AUTH and SELECT as the server does) and reading
 * through the server's bounded reader (server/redis.h), so a hostile Redis cannot make the
 * tool allocate what a reply announces. One command at a time, each under the timeout.
 */

#include <stddef.h>

#include <hiredis/hiredis.h>

typedef struct tlsc_ctlredis_s tlsc_ctlredis_t;

/**
 * Connects to `url` within `timeout_ms` and authenticates, with the password of the URL, else of
 * `pass_file`, else `env_pass` (tlsc_redis_url_take_password). Returns 0, or -1 with one line in
 * `err` naming the address (never the password). rediss:// is refused: hiredis 0.14 has no TLS.
 */
int tlsc_ctlredis_connect(const char *url, const char *pass_file, const char *env_pass, unsigned timeout_ms, tlsc_ctlredis_t **out,
                          char *err, size_t errlen);

/**
 * Runs one command (binary-safe arguments). Returns the reply, which the caller frees with
 * freeReplyObject, or NULL with one line in `err`: the link failed, the reply was past the
 * reader's bounds, or Redis answered an error (its text, made printable).
 */
redisReply *tlsc_ctlredis_command(tlsc_ctlredis_t *r, int argc, const char **argv, const size_t *lens, char *err, size_t errlen);

/**
 * Pipelining: queues one command without waiting (0, or -1 with `err`); tlsc_ctlredis_reply
 * then takes the replies in order. A reply is returned as it is, an error reply included (the
 * caller decides what a WRONGTYPE means); NULL only when the link failed or a reply was past
 * the bounds, with one line in `err`.
 */
int tlsc_ctlredis_append(tlsc_ctlredis_t *r, int argc, const char **argv, const size_t *lens, char *err, size_t errlen);
redisReply *tlsc_ctlredis_reply(tlsc_ctlredis_t *r, char *err, size_t errlen);

/** The address as the logs show it ("127.0.0.1:6379/0"), without credentials. */
const char *tlsc_ctlredis_describe(const tlsc_ctlredis_t *r);

/** Closes and frees (NULL is fine). */
void tlsc_ctlredis_free(tlsc_ctlredis_t *r);

#endif
