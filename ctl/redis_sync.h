#ifndef TLSC_CTLREDIS_H
#define TLSC_CTLREDIS_H

/*
 * The blocking Redis client of the tools (tlscache-ctl, and tlscache-bench's stats reader),
 * on every Redis form the server takes (proto/redis_url.h):
 *
 * - redis://, unix: — one link; rediss:// runs TLS on it (OpenSSL on the socket, the chain
 *   verified against --redis-ca and the host name or IP address of the URL, an optional client
 *   certificate), built with the server's own TLS context builder (tlsc_redis_tls_ctx_new);
 * - redis-sentinel:// — the sentinels are asked in order (SENTINEL get-master-addr-by-name),
 *   the answer is bound-checked, and the node it names must say `ROLE` master;
 * - redis-cluster:// — the slot map is read from the first seed that answers (CLUSTER SHARDS,
 *   or CLUSTER SLOTS on 7.0) and every master gets a link; a command for a key goes to its
 *   slot's master, and MOVED and ASK are followed (at most 3 hops).
 *
 * A link is a socket of our own with a deadline on every wait (connect, TLS handshake, each
 * reply), AUTH and SELECT as the URL says, and replies read through the server's bounded reader
 * (server/redis.h), so a hostile Redis cannot make the tool allocate what a reply announces.
 * Whether a link speaks TLS follows the parsed URL (`tls`), whatever its form. TLS writes go
 * through write(2): the process must ignore SIGPIPE (both tools do, in main).
 */

#include <stddef.h>

#include <hiredis/hiredis.h>

typedef struct tlsc_ctlredis_s tlsc_ctlredis_t;

typedef struct {
    const char *url;       /* as the server's --redis */
    const char *pass_file; /* --redis-pass-file, or NULL */
    const char *env_pass;  /* TLSCACHE_REDIS_PASS, or NULL */
    /* redis-sentinel://: the sentinels' own credentials (their requirepass / ACL user), never
     * from the URL: --redis-sentinel-pass-file, else TLSCACHE_REDIS_SENTINEL_PASS; a user needs one. */
    const char *sentinel_pass_file;
    const char *env_sentinel_pass;
    const char *sentinel_user;
    const char *ca_file;   /* --redis-ca: required for TLS */
    const char *cert_file; /* --redis-cert and --redis-key: a client certificate, or NULL */
    const char *key_file;
    unsigned timeout_ms; /* each connect, handshake and reply; 0 means 5000 */
} tlsc_ctlredis_options_t;

/**
 * Connects to the Redis `o->url` names (every master of a cluster) and authenticates, with the
 * password of the URL, else of `pass_file`, else `env_pass` (tlsc_redis_url_take_password).
 * Returns 0, or -1 with one line in `err` naming the address (never the password).
 */
int tlsc_ctlredis_connect(const tlsc_ctlredis_options_t *o, tlsc_ctlredis_t **out, char *err, size_t errlen);

/**
 * Runs one command (binary-safe arguments). Returns the reply, which the caller frees with
 * freeReplyObject, or NULL with one line in `err`: the link failed, the reply was past the
 * reader's bounds, or Redis answered an error (its text, made printable). On the handle of a
 * cluster, a command goes to the first master: use it for commands without a key (PUBLISH).
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

/** How many masters the handle reaches: the masters of the slot map for a cluster, else 1. */
size_t tlsc_ctlredis_masters(const tlsc_ctlredis_t *r);

/** The link to master `i` (< tlsc_ctlredis_masters): `r` itself unless it is a cluster's. */
tlsc_ctlredis_t *tlsc_ctlredis_master(tlsc_ctlredis_t *r, size_t i);

/**
 * `reply` answered the command argv on some link of `r`'s handle: when it is a cluster's MOVED
 * or ASK (a slot that moved since the map or the SCAN), the command goes to the node it names
 * (after ASKING for an ASK) and that reply replaces it, for at most 3 hops (a slot in migration
 * takes two: MOVED from the importing node, then ASK); any other reply is returned as it is. NULL with `err` when the link to that
 * node failed (`reply` is freed then).
 */
redisReply *tlsc_ctlredis_follow(tlsc_ctlredis_t *r, redisReply *reply, int argc, const char **argv, const size_t *lens, char *err,
                                 size_t errlen);

/** The link to the node that holds `key`: its slot's master by the map in a cluster, else `r`. */
tlsc_ctlredis_t *tlsc_ctlredis_for_key(tlsc_ctlredis_t *r, const char *key, size_t keylen);

/**
 * Runs one command about `key` on the node that holds it (the key's slot master in a cluster,
 * following MOVED and ASK as tlsc_ctlredis_follow does). The reply is returned as it is, an error reply included; NULL
 * only when a link failed or a reply was past the bounds, with `err`.
 */
redisReply *tlsc_ctlredis_key_command(tlsc_ctlredis_t *r, const char *key, size_t keylen, int argc, const char **argv,
                                      const size_t *lens, char *err, size_t errlen);

/**
 * Called once per SCAN step with the step's keys (an array of at most 1024 replies, whose
 * elements the callee checks) and the link of the master they are on: 0 to go on, 1 to stop
 * the whole scan, -1 on an error (with its line in the callee's own buffer).
 */
typedef int (*tlsc_ctlredis_scan_fn)(tlsc_ctlredis_t *node, const redisReply *keys, void *data);

/**
 * SCAN MATCH `pattern` on every master in turn (never KEYS). Returns 0 when every master was
 * walked, 1 when `fn` stopped it, -1 on an error (a link, a malformed SCAN reply: `err` says;
 * or `fn`'s -1, when `err` is left alone).
 */
int tlsc_ctlredis_scan(tlsc_ctlredis_t *r, const char *pattern, tlsc_ctlredis_scan_fn fn, void *data, char *err, size_t errlen);

/** The address as the logs show it ("127.0.0.1:6379/0"), without credentials. */
const char *tlsc_ctlredis_describe(const tlsc_ctlredis_t *r);

/** Closes and frees every link of the handle (NULL is fine). */
void tlsc_ctlredis_free(tlsc_ctlredis_t *r);

/* ------------------------------------------------------------------------------------------ */
/* The pure part, unit-tested alone                                                            */

#define TLSC_CTLREDIS_HOST_MAX 253

/**
 * Reads a sentinel's answer to SENTINEL get-master-addr-by-name: an array of two strings, a
 * host (1..253 bytes of [A-Za-z0-9._-], or an IPv6 address) and a port 1..65535, judged by
 * common/addr.h's parser. Returns 1 with `host`
 * (hostlen > TLSC_CTLREDIS_HOST_MAX) and `port`, 0 for a nil (the sentinel does not know the
 * master), -1 for anything else.
 */
int tlsc_ctlredis_master_addr(const redisReply *reply, char *host, size_t hostlen, unsigned *port);

#endif
