/* This file's one job: tlscache-ctl's blocking Redis link (connect, authenticate, bounded commands). */
#include "redis_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ctl.h"
#include "redis.h"
#include "redis_url.h"

struct tlsc_ctlredis_s {
    redisContext *ctx;
    char where[320];
};

/* The context's own reader is swapped for the bounded one; it must be freed the same way. */
static void drop_context(redisContext *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->reader != NULL && ctx->reader->privdata != NULL) {
        tlsc_redis_reader_free(ctx->reader);
        ctx->reader = redisReaderCreate(); /* redisFree frees a reader; NULL here only costs a check in newer hiredis */
    }
    redisFree(ctx);
}

/* Runs AUTH or SELECT during the connect; 0 or -1 with `err` naming the step, never its arguments. */
static int handshake_step(tlsc_ctlredis_t *r, const char *step, int argc, const char **argv, const size_t *lens, char *err,
                          size_t errlen)
{
    char why[256];
    redisReply *reply = tlsc_ctlredis_command(r, argc, argv, lens, why, sizeof(why));
    const char *hint;

    if (reply == NULL) {
        hint = tlsc_redis_error_hint(why, strlen(why));
        snprintf(err, errlen, "redis %s: %s failed: %s%s%s", r->where, step, why, hint ? "; " : "", hint ? hint : "");
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}

int tlsc_ctlredis_connect(const char *url, const char *pass_file, const char *env_pass, unsigned timeout_ms, tlsc_ctlredis_t **out,
                          char *err, size_t errlen)
{
    tlsc_redis_url_t u;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    tlsc_ctlredis_t *r;
    char db[16];

    if (tlsc_redis_url_parse(url, &u, err, errlen) != 0)
        return -1;
    if (u.tls) { /* hiredis 0.14 (Debian 12) speaks plain TCP only: it would send AUTH in the clear */
        snprintf(err, errlen,
                 "rediss:// (TLS) is not supported by tlscache-ctl: Debian 12's hiredis 0.14 has no TLS; run it where redis:// "
                 "or unix: reaches Redis (on the Redis host)");
        tlsc_redis_url_free(&u);
        return -1;
    }
    if (u.master_name != NULL) { /* a NULL host would make hiredis connect to localhost */
        snprintf(err, errlen,
                 "redis-sentinel:// is not supported by tlscache-ctl yet; give the master as redis://HOST:PORT "
                 "(redis-cli -p 26379 SENTINEL get-master-addr-by-name %s)",
                 u.master_name);
        tlsc_redis_url_free(&u);
        return -1;
    }
    if (u.cluster) { /* one SCAN would see one master's share of the sessions and say nothing */
        snprintf(err, errlen,
                 "redis-cluster:// is not supported by tlscache-ctl yet: run it once per master with redis://HOST:PORT (README: "
                 "Looking at sessions with redis-cli)");
        tlsc_redis_url_free(&u);
        return -1;
    }
    if (tlsc_redis_url_take_password(&u, pass_file, env_pass, err, errlen) != 0) {
        tlsc_redis_url_free(&u);
        return -1;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail_url;
    }
    tlsc_redis_url_describe(&u, r->where, sizeof(r->where));
    r->ctx = u.path != NULL ? redisConnectUnixWithTimeout(u.path, tv) : redisConnectWithTimeout(u.host, (int)u.port, tv);
    if (r->ctx == NULL || r->ctx->err != 0) {
        snprintf(err, errlen, "redis %s: cannot connect: %s", r->where, r->ctx ? r->ctx->errstr : "out of memory");
        goto fail_r;
    }
    if (redisSetTimeout(r->ctx, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s: cannot set the timeout", r->where);
        goto fail_r;
    }
    redisReaderFree(r->ctx->reader);
    if ((r->ctx->reader = tlsc_redis_reader_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail_r;
    }
    if (u.password != NULL) {
        const char *argv[3] = {"AUTH", u.user ? u.user : u.password, u.password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(u.password)};
        if (handshake_step(r, "AUTH", u.user ? 3 : 2, argv, lens, err, errlen) != 0)
            goto fail_r;
    }
    if (u.db != 0) {
        snprintf(db, sizeof(db), "%u", u.db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        if (handshake_step(r, "SELECT", 2, argv, lens, err, errlen) != 0)
            goto fail_r;
    }
    tlsc_redis_url_free(&u);
    *out = r;
    return 0;

fail_r:
    tlsc_ctlredis_free(r);
fail_url:
    tlsc_redis_url_free(&u);
    return -1;
}

redisReply *tlsc_ctlredis_command(tlsc_ctlredis_t *r, int argc, const char **argv, const size_t *lens, char *err, size_t errlen)
{
    redisReply *reply;

    if (r->ctx->err != 0) {
        snprintf(err, errlen, "redis %s: link failed: %s", r->where, r->ctx->errstr);
        return NULL;
    }
    tlsc_redis_reader_next(r->ctx->reader);
    if ((reply = redisCommandArgv(r->ctx, argc, argv, lens)) == NULL) {
        if (tlsc_redis_reader_refused(r->ctx->reader))
            snprintf(err, errlen, "redis %s: a reply past the bounds (1024 elements, 8 MiB); refused", r->where);
        else
            snprintf(err, errlen, "redis %s: %s", r->where, r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char text[200];
        tlsc_ctl_printable(text, sizeof(text), reply->str, reply->len, 120);
        snprintf(err, errlen, "%s", text);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

int tlsc_ctlredis_append(tlsc_ctlredis_t *r, int argc, const char **argv, const size_t *lens, char *err, size_t errlen)
{
    if (r->ctx->err != 0 || redisAppendCommandArgv(r->ctx, argc, argv, lens) != REDIS_OK) {
        snprintf(err, errlen, "redis %s: %s", r->where, r->ctx->err ? r->ctx->errstr : "out of memory");
        return -1;
    }
    return 0;
}

redisReply *tlsc_ctlredis_reply(tlsc_ctlredis_t *r, char *err, size_t errlen)
{
    void *reply = NULL;

    if (r->ctx->err != 0) {
        snprintf(err, errlen, "redis %s: link failed: %s", r->where, r->ctx->errstr);
        return NULL;
    }
    tlsc_redis_reader_next(r->ctx->reader); /* each reply is bounded on its own */
    if (redisGetReply(r->ctx, &reply) != REDIS_OK || reply == NULL) {
        if (tlsc_redis_reader_refused(r->ctx->reader))
            snprintf(err, errlen, "redis %s: a reply past the bounds (1024 elements, 8 MiB); refused", r->where);
        else
            snprintf(err, errlen, "redis %s: %s", r->where, r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
        return NULL;
    }
    return reply;
}

const char *tlsc_ctlredis_describe(const tlsc_ctlredis_t *r)
{
    return r->where;
}

void tlsc_ctlredis_free(tlsc_ctlredis_t *r)
{
    if (r == NULL)
        return;
    drop_context(r->ctx);
    free(r);
}
