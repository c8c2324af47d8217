#include "redis_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define KEY_MAX   512                 /* a stats key: prefix (<= 64) + ":stats:" + node (<= 64) + worker */
#define KEYS_MAX  100000              /* workers' keys one read takes */
#define VALUE_MAX ((uint64_t)1 << 62) /* a counter past this is garbage, not traffic */

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

/* What one read of the stats gathers: every worker's key, from every master, deduplicated before reading. */
typedef struct {
    const char *prefix;
    char **keys;
    size_t nkeys;
    char err[512];
} collect_t;

/* One SCAN step on one master: keep the keys that name a worker's stats hash (bounded: KEY_MAX bytes, KEYS_MAX of them). */
static int collect(tlsc_ctlredis_t *node, const redisReply *keys, void *data)
{
    collect_t *c = data;
    char name[128];

    (void)node;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        char **p;

        if (k->type != REDIS_REPLY_STRING || k->len >= KEY_MAX || memchr(k->str, '\0', k->len) != NULL ||
            tlsc_bench_rs_node_of(k->str, c->prefix, name, sizeof(name)) != 0)
            continue;
        if (c->nkeys == KEYS_MAX) {
            snprintf(c->err, sizeof(c->err), "more than %d stats keys under %s:stats:", KEYS_MAX, c->prefix);
            return -1;
        }
        if ((p = realloc(c->keys, (c->nkeys + 1) * sizeof(*p))) == NULL || (p[c->nkeys] = strdup(k->str)) == NULL) {
            if (p != NULL)
                c->keys = p;
            snprintf(c->err, sizeof(c->err), "out of memory");
            return -1;
        }
        c->keys = p;
        c->nkeys++;
    }
    return 0;
}

/* Reads one worker hash (on the node that holds it) and adds it to its node; a key gone or not a hash is skipped. */
static int read_worker(tlsc_ctlredis_t *r, const char *key, const char *prefix, tlsc_bench_rs_snapshot_t *out, char *err,
                       size_t errlen)
{
    const char *argv[2 + TLSC_BENCH_RS_FIELDS];
    int64_t v[TLSC_BENCH_RS_FIELDS] = {0};
    char node[128];
    redisReply *rep;

    if (tlsc_bench_rs_node_of(key, prefix, node, sizeof(node)) != 0)
        return 0;
    argv[0] = "HMGET";
    argv[1] = key;
    for (int i = 0; i < TLSC_BENCH_RS_FIELDS; i++)
        argv[2 + i] = fields[i];
    if ((rep = tlsc_ctlredis_key_command(r, key, strlen(key), 2 + TLSC_BENCH_RS_FIELDS, argv, NULL, err, errlen)) == NULL)
        return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != TLSC_BENCH_RS_FIELDS) {
        freeReplyObject(rep); /* WRONGTYPE, or a key that expired between SCAN and HMGET */
        return 0;
    }
    for (int i = 0; i < TLSC_BENCH_RS_FIELDS; i++) {
        const redisReply *e = rep->element[i];
        uint64_t n;
        if (e->type == REDIS_REPLY_STRING && tlsc_parse_uint_n(e->str, e->len, 0, VALUE_MAX, &n) == 0)
            v[i] = (int64_t)n; /* anything else is not a counter: it counts as 0 */
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

int tlsc_bench_rs_read(const tlsc_ctlredis_options_t *o, const char *prefix, tlsc_bench_rs_snapshot_t *out, char *err,
                       size_t errlen)
{
    tlsc_ctlredis_t *r;
    collect_t c = {.prefix = prefix};
    char pattern[KEY_MAX], why[512];
    int rv = -1;

    memset(out, 0, sizeof(*out));
    if (tlsc_ctlredis_connect(o, &r, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--redis: %s", why);
        return -1;
    }
    snprintf(pattern, sizeof(pattern), "%s:stats:*", prefix);
    /* SCAN may return a key twice (and a key moving between masters, on both): sort and skip duplicates so no worker counts twice.
     */
    if (tlsc_ctlredis_scan(r, pattern, collect, &c, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--redis: %s", c.err[0] ? c.err : why);
        goto done;
    }
    if (c.nkeys > 1)
        qsort(c.keys, c.nkeys, sizeof(*c.keys), cmp_str);
    for (size_t i = 0; i < c.nkeys; i++)
        if ((i == 0 || strcmp(c.keys[i], c.keys[i - 1]) != 0) && read_worker(r, c.keys[i], prefix, out, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--redis: %s", why);
            goto done;
        }
    rv = 0;

done:
    for (size_t i = 0; i < c.nkeys; i++)
        free(c.keys[i]);
    free(c.keys);
    tlsc_ctlredis_free(r);
    if (rv != 0)
        tlsc_bench_rs_free(out);
    return rv;
}
