/*
 * This file's one job: the store interface (store.h) on Redis (one node or a Cluster, through
 * redis_cluster.h's "send for key", or "send with WAIT" for a put under --store-replicas), with the one
 * MULTI/EXEC builder every write and take goes through, and the one script a conditional take runs.
 */

#include "store_redis.h"

#include "log.h"
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX   1024 /* request wrappers kept for reuse, so a handshake allocates none */
#define TX_MAX_CMD 4    /* MULTI, two commands, EXEC */

typedef enum { OP_GET, OP_TAKE, OP_PUT, OP_DEL } op_t;

typedef struct store_redis_s store_redis_t;

struct tlsc_store_req_s {
    store_redis_t *st;
    tlsc_redis_cluster_req_t *rreq; /* routed to the key's node */
    int waits;                      /* rreq is a durable write (tlsc_redis_cluster_send_wait) */
    op_t op;
    tlsc_store_get_cb get_cb;
    tlsc_store_done_cb done_cb;
    tlsc_store_del_cb del_cb;
    void *data;
    tlsc_store_req_t *prev, *next; /* the live list while in flight, the pool's list after */
};

struct store_redis_s {
    tlsc_store_t base;
    tlsc_redis_cluster_t *redis; /* one node, or the master of each key's slot */
    tlsc_store_req_t *live;      /* in flight: freed by close, whose callbacks never run */
    tlsc_store_req_t *pool;
    size_t pooled;
    unsigned replicas; /* --store-replicas: puts are durable writes, 0 when off */
    tlsc_store_wait_counters_t counters;
};

/* ---------------------------------------------------------------------------------------- */
/* One transaction builder: MULTI, the commands, EXEC, argument counts taken from the arrays. */

typedef struct {
    size_t n;
    int argc[TX_MAX_CMD];
    const char *const *argv[TX_MAX_CMD];
    const size_t *argvlen[TX_MAX_CMD];
} tx_t;

static const char *const multi_argv[] = {"MULTI"}, *const exec_argv[] = {"EXEC"};
static const size_t multi_len[] = {5}, exec_len[] = {4};

static void tx_add(tx_t *tx, int argc, const char *const *argv, const size_t *argvlen)
{
    tx->argc[tx->n] = argc;
    tx->argv[tx->n] = argv;
    tx->argvlen[tx->n] = argvlen;
    tx->n++;
}

static void tx_begin(tx_t *tx)
{
    tx->n = 0;
    tx_add(tx, 1, multi_argv, multi_len);
}

static void tx_end(tx_t *tx)
{
    tx_add(tx, 1, exec_argv, exec_len);
}

/* ---------------------------------------------------------------------------------------- */

static tlsc_store_req_t *req_get(store_redis_t *s)
{
    tlsc_store_req_t *req = s->pool;

    if (req != NULL) {
        s->pool = req->next;
        s->pooled--;
    } else if ((req = malloc(sizeof(*req))) == NULL) {
        return NULL;
    }
    memset(req, 0, sizeof(*req));
    req->st = s;
    req->next = s->live;
    if (s->live != NULL)
        s->live->prev = req;
    s->live = req;
    return req;
}

/* A request for `op` on behalf of `data`, from the pool; NULL with *status = UV_ENOMEM. */
static tlsc_store_req_t *req_start(store_redis_t *s, op_t op, void *data, int *status)
{
    tlsc_store_req_t *req = req_get(s);

    if (req == NULL) {
        *status = UV_ENOMEM;
        return NULL;
    }
    req->op = op;
    req->data = data;
    return req;
}

static void req_put(store_redis_t *s, tlsc_store_req_t *req)
{
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        s->live = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    if (s->pooled >= POOL_MAX) {
        free(req);
        return;
    }
    req->prev = NULL;
    req->next = s->pool;
    s->pool = req;
    s->pooled++;
}

/* The HGET (or take script) answer: a string is a hit, nil a miss, anything else a protocol error. */
static void on_get_reply(tlsc_store_req_t *req, int status, const redisReply *reply)
{
    const redisReply *val = reply;

    if (status != 0)
        req->get_cb(status, NULL, 0, req->data);
    else if (val != NULL && val->type == REDIS_REPLY_STRING)
        req->get_cb(0, (const unsigned char *)val->str, val->len, req->data);
    else if (val != NULL && val->type == REDIS_REPLY_NIL)
        req->get_cb(0, NULL, 0, req->data);
    else
        req->get_cb(UV_EPROTO, NULL, 0, req->data);
}

/*
 * The unconditional take's EXEC answer: [HGET's string or nil, DEL's count]. A hit is a string
 * with DEL's 1; nil is a miss whether or not DEL removed something (a hash without the field).
 * Anything else (an aborted or refused EXEC, an error inside, a string DEL did not remove,
 * another shape) is a protocol error.
 */
int tlsc_store_redis_take_answer(const redisReply *reply, const char **value, size_t *len)
{
    const redisReply *val, *del;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        return UV_EPROTO;
    val = reply->element[0];
    del = reply->element[1];
    if (del->type != REDIS_REPLY_INTEGER || del->integer < 0 || del->integer > 1)
        return UV_EPROTO;
    if (val->type == REDIS_REPLY_NIL)
        return 0;
    if (val->type != REDIS_REPLY_STRING || del->integer != 1)
        return UV_EPROTO;
    *value = val->str;
    *len = val->len;
    return 1;
}

static void on_take_reply(tlsc_store_req_t *req, int status, const redisReply *reply)
{
    const char *value = NULL;
    size_t len = 0;
    int rc = status != 0 ? status : tlsc_store_redis_take_answer(reply, &value, &len);

    if (rc < 0)
        req->get_cb(rc, NULL, 0, req->data);
    else
        req->get_cb(0, (const unsigned char *)value, len, req->data);
}

static void on_reply(int status, const redisReply *reply, void *data)
{
    tlsc_store_req_t *req = data;
    store_redis_t *s = req->st;

    switch (req->op) {
    case OP_GET:
        on_get_reply(req, status, reply);
        break;
    case OP_TAKE:
        on_take_reply(req, status, reply);
        break;
    case OP_PUT: /* EXEC answers an array; nil (aborted) or an error is a failed write */
        req->done_cb(status != 0 ? status : reply->type == REDIS_REPLY_ARRAY ? 0 : UV_EPROTO, req->data);
        break;
    case OP_DEL: /* DEL answers how many keys it removed */
        if (status != 0)
            req->del_cb(status, 0, req->data);
        else if (reply->type == REDIS_REPLY_INTEGER)
            req->del_cb(0, reply->integer > 0, req->data);
        else
            req->del_cb(UV_EPROTO, 0, req->data);
        break;
    }
    req_put(s, req);
}

/* ---------------------------------------------------------------------------------------- */
/*
 * --store-replicas: a put is a durable write of the router (redis_cluster.h): its transaction
 * and WAIT N on the key's master's wait link, the outcome counted here, per worker.
 */

static void on_put_waited(int status, tlsc_redis_wait_t waited, void *data)
{
    tlsc_store_req_t *req = data;
    store_redis_t *s = req->st;

    if (waited == TLSC_REDIS_WAIT_SKIPPED)
        tlsc_stat_inc(s->counters.skipped);
    else if (waited == TLSC_REDIS_WAIT_ACKED)
        tlsc_stat_inc(s->counters.acked);
    else if (waited == TLSC_REDIS_WAIT_SHORT)
        tlsc_stat_inc(s->counters.short_);
    req->done_cb(status, req->data);
    req_put(s, req);
}

int tlsc_store_redis_wait_link(tlsc_store_t *st, const tlsc_redis_options_t *o, unsigned replicas,
                               const tlsc_store_wait_counters_t *counters, char *err, size_t errlen)
{
    store_redis_t *s = (store_redis_t *)st;
    int rc;

    if (replicas == 0 || s->replicas != 0 || counters == NULL || counters->acked == NULL || counters->short_ == NULL ||
        counters->skipped == NULL) {
        snprintf(err, errlen, "bad wait link options");
        return UV_EINVAL;
    }
    if ((rc = tlsc_redis_cluster_wait_enable(s->redis, o, replicas, err, errlen)) != 0)
        return rc;
    s->replicas = replicas;
    s->counters = *counters;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

/* Every request names one key: the router sends it to the node that holds the key. */
static tlsc_store_req_t *send_req(store_redis_t *s, tlsc_store_req_t *req, const char *key, size_t key_len, const tx_t *tx,
                                  unsigned timeout_ms, int *status)
{
    if (req->waits)
        req->rreq = tlsc_redis_cluster_send_wait(s->redis, key, key_len, tx->n, tx->argc, tx->argv, tx->argvlen, timeout_ms,
                                                 on_put_waited, req, status);
    else
        req->rreq = tlsc_redis_cluster_send(s->redis, key, key_len, tx->n, tx->argc, tx->argv, tx->argvlen, timeout_ms, on_reply,
                                            req, status);
    if (req->rreq == NULL) {
        req_put(s, req);
        return NULL;
    }
    return req;
}

/*
 * A conditional take: read the field and delete the hash only when the condition holds,
 * atomically on the server. One key, so it stays within one Redis Cluster slot. Only TLS 1.3
 * identities without the TLS 1.3 tag come here (issued by an older version, docs/protocol.md
 * § Session records); it costs Redis twice the CPU of redis_take's transaction.
 */
static const char take_script[] = "local v = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[2]) "
                                  "if v[1] and v[2] == ARGV[3] then redis.call('DEL', KEYS[1]) return v[1] end "
                                  "return false";

static tlsc_store_req_t *redis_get(tlsc_store_t *st, const char *key, size_t key_len, const char *field,
                                   const tlsc_store_match_t *take_if, unsigned timeout_ms, tlsc_store_get_cb cb, void *data,
                                   int *status)
{
    store_redis_t *s = (store_redis_t *)st;
    const char *hget[] = {"HGET", key, field};
    size_t hget_len[] = {4, key_len, strlen(field)};
    tlsc_store_req_t *req;
    tx_t tx = {0};

    if ((req = req_start(s, OP_GET, data, status)) == NULL)
        return NULL;
    req->get_cb = cb;
    if (take_if != NULL) {
        const char *eval[] = {"EVAL", take_script, "1", key, field, take_if->field, take_if->value};
        size_t eval_len[] = {4, sizeof(take_script) - 1, 1, key_len, strlen(field), strlen(take_if->field), strlen(take_if->value)};
        tx_add(&tx, 7, eval, eval_len);
        return send_req(s, req, key, key_len, &tx, timeout_ms, status); /* the arguments are copied */
    }
    tx_add(&tx, 3, hget, hget_len);
    return send_req(s, req, key, key_len, &tx, timeout_ms, status);
}

/*
 * An unconditional take: MULTI, HGET, DEL, EXEC on one key (one slot). The transaction makes
 * the read and the delete one step, so two nodes racing for a ticket cannot both read it.
 */
static tlsc_store_req_t *redis_take(tlsc_store_t *st, const char *key, size_t key_len, const char *field, unsigned timeout_ms,
                                    tlsc_store_get_cb cb, void *data, int *status)
{
    store_redis_t *s = (store_redis_t *)st;
    const char *hget[] = {"HGET", key, field}, *del[] = {"DEL", key};
    size_t hget_len[] = {4, key_len, strlen(field)}, del_len[] = {3, key_len};
    tlsc_store_req_t *req;
    tx_t tx;

    if ((req = req_start(s, OP_TAKE, data, status)) == NULL)
        return NULL;
    req->get_cb = cb;
    tx_begin(&tx);
    tx_add(&tx, 3, hget, hget_len);
    tx_add(&tx, 2, del, del_len);
    tx_end(&tx);
    return send_req(s, req, key, key_len, &tx, timeout_ms, status); /* the arguments are copied */
}

static tlsc_store_req_t *redis_put(tlsc_store_t *st, const char *key, size_t key_len, const tlsc_store_field_t *fields,
                                   size_t nfields, unsigned ttl_sec, unsigned timeout_ms, tlsc_store_done_cb cb, void *data,
                                   int *status)
{
    store_redis_t *s = (store_redis_t *)st;
    const char *hset[2 + 2 * TLSC_STORE_MAX_FIELDS];
    size_t hset_len[2 + 2 * TLSC_STORE_MAX_FIELDS];
    char ttl[16];
    const char *expire[] = {"EXPIRE", key, ttl};
    size_t expire_len[] = {6, key_len, 0};
    tlsc_store_req_t *req;
    size_t argc = 0;
    tx_t tx;

    if (nfields == 0 || nfields > TLSC_STORE_MAX_FIELDS) {
        *status = UV_EINVAL;
        return NULL;
    }
    hset[argc] = "HSET";
    hset_len[argc++] = 4;
    hset[argc] = key;
    hset_len[argc++] = key_len;
    for (size_t i = 0; i < nfields; i++) {
        hset[argc] = fields[i].name;
        hset_len[argc++] = strlen(fields[i].name);
        hset[argc] = fields[i].len > 0 ? fields[i].value : ""; /* an empty value may come as NULL */
        hset_len[argc++] = fields[i].len;
    }
    expire_len[2] = (size_t)snprintf(ttl, sizeof(ttl), "%u", ttl_sec);
    if ((req = req_start(s, OP_PUT, data, status)) == NULL)
        return NULL;
    req->done_cb = cb;
    tx_begin(&tx);
    tx_add(&tx, (int)argc, hset, hset_len);
    tx_add(&tx, 3, expire, expire_len);
    tx_end(&tx);
    req->waits = s->replicas > 0;
    return send_req(s, req, key, key_len, &tx, timeout_ms, status);
}

static tlsc_store_req_t *redis_del(tlsc_store_t *st, const char *key, size_t key_len, unsigned timeout_ms, tlsc_store_del_cb cb,
                                   void *data, int *status)
{
    store_redis_t *s = (store_redis_t *)st;
    const char *del[] = {"DEL", key};
    size_t del_len[] = {3, key_len};
    tlsc_store_req_t *req;
    tx_t tx = {0};

    if ((req = req_start(s, OP_DEL, data, status)) == NULL)
        return NULL;
    req->del_cb = cb;
    tx_add(&tx, 2, del, del_len);
    return send_req(s, req, key, key_len, &tx, timeout_ms, status);
}

static int redis_ready(const tlsc_store_t *st)
{
    return tlsc_redis_cluster_ready(((const store_redis_t *)st)->redis);
}

uint64_t tlsc_store_redis_connects(const tlsc_store_t *st)
{
    tlsc_redis_cluster_stats_t cs;

    tlsc_redis_cluster_stats(((const store_redis_t *)st)->redis, &cs);
    return cs.connects;
}

void tlsc_store_redis_stats(const tlsc_store_t *st, tlsc_redis_cluster_stats_t *out)
{
    tlsc_redis_cluster_stats(((const store_redis_t *)st)->redis, out);
}

static void redis_cancel(tlsc_store_t *st, tlsc_store_req_t *req)
{
    store_redis_t *s = (store_redis_t *)st;

    if (req->waits)
        tlsc_redis_cluster_cancel_wait(s->redis, req->rreq);
    else
        tlsc_redis_cluster_cancel(s->redis, req->rreq);
    req_put(s, req);
}

/* The Redis client frees itself once its handles closed; the wrapper can go now. */
static void redis_close(tlsc_store_t *st)
{
    store_redis_t *s = (store_redis_t *)st;
    tlsc_store_req_t *req;

    tlsc_redis_cluster_close(s->redis);
    while ((req = s->live) != NULL) {
        s->live = req->next;
        free(req);
    }
    while ((req = s->pool) != NULL) {
        s->pool = req->next;
        free(req);
    }
    free(s);
}

static const tlsc_store_ops_t redis_ops = {
    .ready = redis_ready,
    .get = redis_get,
    .take = redis_take,
    .put = redis_put,
    .del = redis_del,
    .cancel = redis_cancel,
    .close = redis_close,
};

tlsc_redis_cluster_t *tlsc_store_redis_router(tlsc_store_t *st)
{
    return ((store_redis_t *)st)->redis;
}

int tlsc_store_redis_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_store_t **out, char *err, size_t errlen)
{
    store_redis_t *s;
    int rc;

    if ((s = calloc(1, sizeof(*s))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    s->base.ops = &redis_ops;
    if ((rc = tlsc_redis_cluster_new(loop, o, &s->redis, err, errlen)) != 0) {
        free(s);
        return rc;
    }
    *out = &s->base;
    return 0;
}
