/*
 * This file's one job: tlscache-ctl `stats`: the cluster-wide resumption rate and per-node
 * figures, summed from the hashes every worker writes about once a second,
 * <prefix>:stats:<node>:<worker> (server/stats.c; they expire 10 s after a worker stops).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "ctl.h"
#include "opts.h"
#include "redis_sync.h"
#include "util.h"

#define MAX_NODES 256 /* nodes shown; more are summed into the cluster line only */
#define KEY_MAX   512
#define NODE_MAX  64
#define VALUE_MAX ((uint64_t)1 << 62) /* a counter past this is garbage, not traffic */

/* The counters `stats` shows, by their field names in the hash. */
#define CTL_COUNTERS(X)                                                                                                            \
    X(connections)                                                                                                                 \
    X(handshakes_full)                                                                                                             \
    X(handshakes_resumed)                                                                                                          \
    X(handshake_errors)                                                                                                            \
    X(lookups_hit)                                                                                                                 \
    X(lookups_miss)                                                                                                                \
    X(lookups_timeout)                                                                                                             \
    X(lookups_error)                                                                                                               \
    X(stores_ok)                                                                                                                   \
    X(stores_error)                                                                                                                \
    X(records_bad)                                                                                                                 \
    X(tickets_decrypted)                                                                                                           \
    X(tickets_unknown_key)

typedef struct {
    char node[NODE_MAX * 4 + 1]; /* printable */
    unsigned workers;
    uint64_t updated; /* the newest `updated` of its workers */
#define DECLARE(name) uint64_t name;
    CTL_COUNTERS(DECLARE)
#undef DECLARE
} node_t;

static void add(node_t *to, const node_t *from)
{
    to->workers += from->workers;
    if (from->updated > to->updated)
        to->updated = from->updated;
#define SUM(name) to->name += from->name;
    CTL_COUNTERS(SUM)
#undef SUM
}

/* Fills `w` from one HGETALL reply; unknown fields are ignored, a bad number is refused. */
static int parse_hash(const redisReply *h, node_t *w)
{
    if (h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        uint64_t n;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -1;
        if (tlsc_parse_uint_n(v->str, v->len, 0, VALUE_MAX, &n) != 0)
            continue; /* not a counter we know how to read */
        if (f->len == 7 && memcmp(f->str, "updated", 7) == 0)
            w->updated = n;
#define FIELD(name) else if (f->len == sizeof(#name) - 1 && memcmp(f->str, #name, f->len) == 0) w->name = n;
        CTL_COUNTERS(FIELD)
#undef FIELD
    }
    w->workers = 1;
    return 0;
}

static void print_row(const char *name, const node_t *n, uint64_t now)
{
    uint64_t hs = n->handshakes_full + n->handshakes_resumed;
    uint64_t lookups = n->lookups_hit + n->lookups_miss + n->lookups_timeout + n->lookups_error;
    char rate[16], hit[16], age[24];

    if (hs > 0)
        snprintf(rate, sizeof(rate), "%.1f%%", 100.0 * (double)n->handshakes_resumed / (double)hs);
    else
        snprintf(rate, sizeof(rate), "-");
    if (lookups > 0)
        snprintf(hit, sizeof(hit), "%.1f%%", 100.0 * (double)n->lookups_hit / (double)lookups);
    else
        snprintf(hit, sizeof(hit), "-");
    if (n->updated > 0 && n->updated <= now)
        snprintf(age, sizeof(age), "%llus", (unsigned long long)(now - n->updated));
    else
        snprintf(age, sizeof(age), "-");
    printf("%-16s %7u %11llu %10llu %10llu %9s %8llu %11s %11llu %9llu %8llu %8llu %7s\n", name, n->workers,
           (unsigned long long)n->connections, (unsigned long long)n->handshakes_full, (unsigned long long)n->handshakes_resumed,
           rate, (unsigned long long)n->handshake_errors, hit, (unsigned long long)(n->lookups_timeout + n->lookups_error),
           (unsigned long long)n->stores_error, (unsigned long long)n->records_bad, (unsigned long long)n->tickets_unknown_key,
           age);
}

/* The node part of "<prefix>:stats:<node>:<worker>": node names have no ':', the worker is a number. */
static int split_key(const char *key, size_t len, size_t plen, char *node, size_t nodelen)
{
    const char *colon;
    uint64_t worker;

    if (len <= plen)
        return -1;
    colon = memrchr(key + plen, ':', len - plen);
    if (colon == NULL || colon == key + plen || (size_t)(colon - (key + plen)) > NODE_MAX ||
        tlsc_parse_uint_n(colon + 1, len - (size_t)(colon + 1 - key), 0, UINT32_MAX, &worker) != 0)
        return -1;
    tlsc_ctl_printable(node, nodelen, key + plen, (size_t)(colon - (key + plen)), NODE_MAX);
    return 0;
}

typedef struct {
    node_t *nodes, total;
    size_t nnodes, plen;
    unsigned hidden;
    char err[512];
} stats_t;

/* One SCAN step on one master: HGETALL of each worker's hash, on the node that holds it (a WRONGTYPE is skipped). */
static int stats_step(tlsc_ctlredis_t *r, const redisReply *keys, void *data)
{
    stats_t *st = data;
    char node[NODE_MAX * 4 + 1];

    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        node_t w;
        size_t j;
        if (k->type != REDIS_REPLY_STRING || k->len >= KEY_MAX || split_key(k->str, k->len, st->plen, node, sizeof(node)) != 0)
            continue;
        const char *argv[2] = {"HGETALL", k->str};
        size_t lens[2] = {7, k->len};
        redisReply *h = tlsc_ctlredis_key_command(r, k->str, k->len, 2, argv, lens, st->err, sizeof(st->err));
        if (h == NULL)
            return -1;
        memset(&w, 0, sizeof(w));
        if (parse_hash(h, &w) != 0 || h->elements == 0) {
            freeReplyObject(h);
            continue; /* expired since the SCAN, or not a stats hash */
        }
        freeReplyObject(h);
        add(&st->total, &w);
        for (j = 0; j < st->nnodes && strcmp(st->nodes[j].node, node) != 0; j++)
            ;
        if (j == st->nnodes) {
            if (st->nnodes == MAX_NODES) {
                st->hidden++;
                continue;
            }
            snprintf(st->nodes[st->nnodes++].node, sizeof(st->nodes[0].node), "%s", node);
        }
        add(&st->nodes[j], &w);
    }
    return 0;
}

int tlsc_ctl_stats(const tlsc_ctl_t *c)
{
    char pattern[KEY_MAX];
    stats_t st;
    tlsc_ctlredis_t *r = NULL;
    int rc = TLSC_EXIT_FAILURE;

    memset(&st, 0, sizeof(st));
    if ((st.nodes = calloc(MAX_NODES, sizeof(*st.nodes))) == NULL) {
        fprintf(stderr, "tlscache-ctl: out of memory\n");
        return TLSC_EXIT_FAILURE;
    }
    if (tlsc_ctl_redis_connect(c, &r) != 0)
        goto done;
    st.plen = (size_t)snprintf(pattern, sizeof(pattern), "%s:stats:", c->prefix);
    snprintf(pattern + st.plen, sizeof(pattern) - st.plen, "*");
    if (tlsc_ctlredis_scan(r, pattern, stats_step, &st, st.err, sizeof(st.err)) != 0) {
        fprintf(stderr, "tlscache-ctl: stats: %s\n", st.err);
        goto done;
    }

    uint64_t now = tlsc_wall_sec();
    printf("%-16s %7s %11s %10s %10s %9s %8s %11s %11s %9s %8s %8s %7s\n", "NODE", "WORKERS", "CONNECTIONS", "FULL", "RESUMED",
           "RESUMED%", "HS_ERR", "LOOKUP_HIT%", "LOOKUP_FAIL", "STORE_ERR", "BAD_REC", "TKT_UNK", "AGE");
    for (size_t j = 0; j < st.nnodes; j++)
        print_row(st.nodes[j].node, &st.nodes[j], now);
    print_row("(cluster)", &st.total, now);
    if (st.hidden > 0)
        printf("(%u workers of nodes past the first %d are in the cluster line only)\n", st.hidden, MAX_NODES);
    if (st.total.workers == 0)
        printf("no stats hashes under %s:stats: (no worker running, or another --redis-prefix?)\n", c->prefix);
    rc = TLSC_EXIT_OK;

done:
    tlsc_ctlredis_free(r);
    free(st.nodes);
    return rc;
}
