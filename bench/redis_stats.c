#include "redis_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "redis_url.h"

/* The hash fields the workers publish (server/stats.h), in the order of the enum. */
static const char *const fields[TLSC_BENCH_RS_FIELDS] = {
    "handshakes_full", "handshakes_resumed", "lookups_hit",     "lookups_l1_hit",      "lookups_miss",
    "lookups_timeout", "lookups_error",      "stores_ok",       "stores_error",        "records_bad",
    "tickets_issued",  "tickets_decrypted",  "tickets_renewed", "tickets_unknown_key",
};

const char *tlsc_bench_rs_field(int i)
{
    return i >= 0 && i < TLSC_BENCH_RS_FIELDS ? fields[i] : "?";
}

int tlsc_bench_rs_node_of(const char *key, const char *prefix, char *node, size_t nodelen)
{
    size_t plen = strlen(prefix);
    const char *rest, *last;

    if (strncmp(key, prefix, plen) != 0 || strncmp(key + plen, ":stats:", 7) != 0)
        return -1;
    rest = key + plen + 7;
    last = strrchr(rest, ':');
    if (last == NULL || last == rest || last[1] == '\0' || (size_t)(last - rest) >= nodelen)
        return -1;
    memcpy(node, rest, (size_t)(last - rest));
    node[last - rest] = '\0';
    return 0;
}

static tlsc_bench_rs_node_t *find_node(tlsc_bench_rs_snapshot_t *s, const char *node, int create)
{
    tlsc_bench_rs_node_t *p;

    for (size_t i = 0; i < s->nnodes; i++)
        if (strcmp(s->nodes[i].node, node) == 0)
            return &s->nodes[i];
    if (!create)
        return NULL;
    if ((p = realloc(s->nodes, (s->nnodes + 1) * sizeof(*p))) == NULL)
        return NULL;
    s->nodes = p;
    p = &s->nodes[s->nnodes++];
    memset(p, 0, sizeof(*p));
    snprintf(p->node, sizeof(p->node), "%s", node);
    return p;
}

int tlsc_bench_rs_add(tlsc_bench_rs_snapshot_t *s, const char *node, const int64_t v[TLSC_BENCH_RS_FIELDS])
{
    tlsc_bench_rs_node_t *n = find_node(s, node, 1);

    if (n == NULL)
        return -1;
    n->workers++;
    for (int i = 0; i < TLSC_BENCH_RS_FIELDS; i++)
        n->v[i] += v[i];
    return 0;
}

int tlsc_bench_rs_diff(const tlsc_bench_rs_snapshot_t *before, const tlsc_bench_rs_snapshot_t *after, tlsc_bench_rs_snapshot_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < after->nnodes; i++) {
        const tlsc_bench_rs_node_t *a = &after->nodes[i], *b = NULL;
        tlsc_bench_rs_node_t *d;

        for (size_t k = 0; k < before->nnodes; k++)
            if (strcmp(before->nodes[k].node, a->node) == 0)
                b = &before->nodes[k];
        if ((d = find_node(out, a->node, 1)) == NULL)
            return -1;
        d->workers = a->workers;
        for (int f = 0; f < TLSC_BENCH_RS_FIELDS; f++)
            d->v[f] = a->v[f] - (b ? b->v[f] : 0);
    }
    return 0;
}

void tlsc_bench_rs_free(tlsc_bench_rs_snapshot_t *s)
{
    free(s->nodes);
    s->nodes = NULL;
    s->nnodes = 0;
}

static int reply_error(redisContext *rc, redisReply *rep, const char *what, char *err, size_t errlen)
{
    if (rep == NULL)
        snprintf(err, errlen, "redis %s: %s", what, rc->errstr[0] ? rc->errstr : "no reply");
    else if (rep->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "redis %s: %s", what, rep->str);
    else
        snprintf(err, errlen, "redis %s: unexpected reply type %d", what, rep->type);
    return -1;
}

/* Reads one worker hash and adds it to its node. */
static int read_worker(redisContext *rc, const char *key, const char *prefix, tlsc_bench_rs_snapshot_t *out, char *err,
                       size_t errlen)
{
    const char *argv[2 + TLSC_BENCH_RS_FIELDS];
    int64_t v[TLSC_BENCH_RS_FIELDS] = {0};
    char node[128];
    redisReply *rep;

    if (tlsc_bench_rs_node_of(key, prefix, node, sizeof(node)) != 0)
        return 0; /* not a worker's stats hash */
    argv[0] = "HMGET";
    argv[1] = key;
    for (int i = 0; i < TLSC_BENCH_RS_FIELDS; i++)
        argv[2 + i] = fields[i];
    rep = redisCommandArgv(rc, 2 + TLSC_BENCH_RS_FIELDS, argv, NULL);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != TLSC_BENCH_RS_FIELDS) {
        /* A key that expired or is not a hash between SCAN and HMGET is simply skipped. */
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "WRONGTYPE", 9) == 0) {
            freeReplyObject(rep);
            return 0;
        }
        reply_error(rc, rep, "HMGET", err, errlen);
        freeReplyObject(rep);
        return -1;
    }
    for (int i = 0; i < TLSC_BENCH_RS_FIELDS; i++) {
        redisReply *e = rep->element[i];
        if (e->type == REDIS_REPLY_STRING)
            v[i] = strtoll(e->str, NULL, 10);
        else if (e->type == REDIS_REPLY_INTEGER)
            v[i] = e->integer;
    }
    freeReplyObject(rep);
    if (tlsc_bench_rs_add(out, node, v) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int tlsc_bench_rs_read(const char *url, const char *pass_file, const char *env_pass, const char *prefix, unsigned timeout_ms,
                       tlsc_bench_rs_snapshot_t *out, char *err, size_t errlen)
{
    tlsc_redis_url_t u;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *rc;
    redisReply *rep;
    char pattern[300], cursor[32] = "0", desc[300];
    char uerr[200];
    char **keys = NULL;
    size_t nkeys = 0;
    int rv = -1;

    memset(out, 0, sizeof(*out));
    if (tlsc_redis_url_parse(url, &u, uerr, sizeof(uerr)) != 0) {
        snprintf(err, errlen, "--redis: %s", uerr);
        return -1;
    }
    if (u.tls) { /* hiredis 0.14 (Debian 12) speaks plain TCP only: it would send AUTH in the clear */
        snprintf(err, errlen, "--redis: " TLSC_BENCH_RS_NO_TLS);
        tlsc_redis_url_free(&u);
        return -1;
    }
    if (tlsc_redis_url_take_password(&u, pass_file, env_pass, err, errlen) != 0) {
        tlsc_redis_url_free(&u);
        return -1;
    }
    if (u.cluster) { /* the stats hashes are spread over the masters: one node's SCAN would undercount */
        snprintf(err, errlen, "--redis: redis-cluster:// is not supported by the bench's stats reader; leave --redis out");
        tlsc_redis_url_free(&u);
        return -1;
    }
    tlsc_redis_url_describe(&u, desc, sizeof(desc));
    rc = u.path != NULL ? redisConnectUnixWithTimeout(u.path, tv) : redisConnectWithTimeout(u.host, (int)u.port, tv);
    if (rc == NULL || rc->err) {
        snprintf(err, errlen, "--redis %s: %s", desc, rc ? rc->errstr : "out of memory");
        goto fail_ctx;
    }
    redisSetTimeout(rc, tv);
    if (u.password != NULL) {
        rep = u.user != NULL ? redisCommand(rc, "AUTH %s %s", u.user, u.password) : redisCommand(rc, "AUTH %s", u.password);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            reply_error(rc, rep, "AUTH", err, errlen);
            freeReplyObject(rep);
            goto fail_ctx;
        }
        freeReplyObject(rep);
    }
    if (u.db != 0) {
        rep = redisCommand(rc, "SELECT %u", u.db);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            reply_error(rc, rep, "SELECT", err, errlen);
            freeReplyObject(rep);
            goto fail_ctx;
        }
        freeReplyObject(rep);
    }
    snprintf(pattern, sizeof(pattern), "%s:stats:*", prefix);
    /* SCAN may return a key twice; collect, sort and skip duplicates so no worker counts twice. */
    do {
        rep = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            reply_error(rc, rep, "SCAN", err, errlen);
            freeReplyObject(rep);
            goto fail_keys;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            redisReply *k = rep->element[1]->element[i];
            char **p;

            if (k->type != REDIS_REPLY_STRING)
                continue;
            if ((p = realloc(keys, (nkeys + 1) * sizeof(*keys))) == NULL || (p[nkeys] = strdup(k->str)) == NULL) {
                if (p != NULL)
                    keys = p;
                snprintf(err, errlen, "out of memory");
                freeReplyObject(rep);
                goto fail_keys;
            }
            keys = p;
            nkeys++;
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    if (nkeys > 1)
        qsort(keys, nkeys, sizeof(*keys), cmp_str);
    for (size_t i = 0; i < nkeys; i++)
        if ((i == 0 || strcmp(keys[i], keys[i - 1]) != 0) && read_worker(rc, keys[i], prefix, out, err, errlen) != 0)
            goto fail_keys;
    rv = 0;

fail_keys:
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
fail_ctx:
    if (rc != NULL)
        redisFree(rc);
    tlsc_redis_url_free(&u);
    if (rv != 0)
        tlsc_bench_rs_free(out);
    return rv;
}
