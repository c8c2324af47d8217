/*
 * This file's one job: send a request for a key to the Redis node that holds it — one node, or
 * the master of the key's hash slot in a Redis Cluster, following MOVED and ASK and re-reading
 * the slot map.
 */
#include "redis_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/*
 * One-node mode is a pass-through: a request is the tlsc_redis_t's own request, cast, so the
 * store costs nothing more than before. Cluster mode wraps each request (tlsc_redis_cluster_req_s)
 * with a copy of its commands, so that it can be sent again to another node:
 *
 *   send --> node's link --reply--> deliver
 *                 |  MOVED: slot -> that node, refresh soon, send there
 *                 |  ASK:   send there once, after ASKING
 *                 +  link failed / CLUSTERDOWN: refresh soon, deliver
 *
 * A durable write (--store-replicas, tlsc_redis_cluster_send_wait) is wrapped in both modes: it
 * goes to the node's wait link with WAIT right after it, and ends when WAIT answers; a redirect
 * drops that WAIT and sends the write and a new WAIT to the node named.
 *
 * Nodes are kept in a small table; a node that left the map has its link closed at the next
 * map once no request is in flight on it (closing a link drops its callbacks, so a request on
 * it would never complete).
 */

#define NODES_MAX       (TLSC_REDIS_CLUSTER_NODES_MAX + TLSC_REDIS_URL_SEEDS_MAX)
#define CMDS_MAX        8 /* commands one request may carry, ASKING included */
#define REFRESH_TIMEOUT 1000
#define NO_NODE         0xFF

/*
 * --store-replicas: a node's second link, for durable writes and their WAITs only. WAIT blocks
 * the connection it is sent on and counts that connection's writes, so the write and its WAIT
 * share this link and lookups, on the request link, never queue behind a WAIT. A short WAIT
 * (this node's replicas are behind) keeps this node's writes off WAIT for WAIT_OFF_MS.
 */
typedef struct {
    tlsc_redis_t *link; /* NULL when --store-replicas is off, or the link could not be set up */
    uint64_t off_until; /* loop time (ms) before which writes here skip WAIT */
    int off;            /* the last WAIT here came back short: logged once per change */
} wait_side_t;

typedef struct node_s {
    char host[TLSC_REDIS_CLUSTER_HOST_MAX + 1];
    unsigned port;
    char name[TLSC_REDIS_CLUSTER_HOST_MAX + 1]; /* TLS: the map's hostname its certificate must show, or "": the host */
    const char *from; /* TLS, without a name: where the host came from, for the log (a static string), or NULL */
    tlsc_redis_t *link;
    wait_side_t wait;
    unsigned inflight; /* cluster requests whose current send is on this link */
    int in_map;        /* a master of the current map */
} node_t;

struct tlsc_redis_cluster_req_s {
    tlsc_redis_cluster_t *c;
    node_t *node;
    tlsc_redis_req_t *inner;
    tlsc_redis_cb cb;
    void *data;
    uint64_t deadline;
    unsigned redirects;
    int asked;
    unsigned slot;
    /* tlsc_redis_cluster_send_wait: the write's WAIT, on the same wait link, and how it went */
    tlsc_redis_cluster_wait_cb wcb;
    tlsc_redis_req_t *wait_inner;
    int waited;   /* the current send went to a wait link, WAIT after it */
    size_t ncmds; /* without ASKING */
    int argc[CMDS_MAX];
    const char **argv[CMDS_MAX];
    size_t *argvlen[CMDS_MAX];
    tlsc_redis_cluster_req_t *prev, *next; /* the live list */
    /* followed by the argument pointers, lengths and bytes (one allocation) */
};

struct tlsc_redis_cluster_s {
    uv_loop_t *loop;
    tlsc_redis_t *single; /* one-node mode: the link; the rest is unused but `live` and the wait fields */

    unsigned wait_replicas;  /* --store-replicas N, 0 when off */
    const char *wait_label;  /* the wait links' label in logs */
    wait_side_t single_wait; /* one-node mode's wait link */

    tlsc_redis_options_t o; /* url points at `url` */
    tlsc_redis_url_t url;   /* the seeds and the credentials (owned, wiped) */
    SSL_CTX *tls_ctx;       /* rediss-cluster://: the one context every node's link shares, else NULL */
    node_t *nodes[NODES_MAX];
    size_t nnodes;
    node_t *slot[TLSC_REDIS_CLUSTER_SLOTS];
    int have_map, use_slots, closing;
    size_t covered;       /* slots that have a node */
    uint64_t map_version; /* bumped whenever `slot` may have changed */
    tlsc_redis_cluster_map_t *scratch;

    uv_timer_t timer;
    tlsc_redis_req_t *refresh_req;
    node_t *refresh_node;
    size_t refresh_next; /* where the next refresh starts looking for a node that answers */
    uint64_t last_refresh_ms;
    int refresh_wanted;
    char last_map_err[160]; /* logged once per change */

    tlsc_redis_cluster_req_t *live;
    tlsc_redis_cluster_stats_t st;
    uint64_t closed_connects; /* connects of links closed since */
    uint64_t closed_io[3];    /* requests, commands, writes of links closed since */
    int refused_logged;
};

/* ================================ hashing ================================ */

unsigned tlsc_redis_cluster_crc16(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    unsigned crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xFFFF : (crc << 1) & 0xFFFF;
    }
    return crc;
}

unsigned tlsc_redis_cluster_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;

    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;

        close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return tlsc_redis_cluster_crc16(open + 1, (size_t)(close - open - 1)) & (TLSC_REDIS_CLUSTER_SLOTS - 1);
    }
    return tlsc_redis_cluster_crc16(key, len) & (TLSC_REDIS_CLUSTER_SLOTS - 1);
}

static int arg_is(const char *const *argv, const size_t *argvlen, int i, const char *name)
{
    size_t n = argvlen != NULL ? argvlen[i] : strlen(argv[i]);

    return n == strlen(name) && strncasecmp(argv[i], name, n) == 0;
}

/*
 * Where a command's keys are: first..first+count-1; count 0 = none, -1 = unknown command. The
 * single-key commands a store could use, the multi-key ones whose every argument is a key, and
 * the keyless ones a request may wrap around them. WAIT is not here: see is_wait.
 */
static int command_keys(int argc, const char *const *argv, const size_t *argvlen, int *first)
{
    static const char *const one_key[] = {"GET",   "SET",  "GETDEL",  "GETEX",  "HGET",    "HMGET", "HSET",
                                          "HMSET", "HDEL", "HGETALL", "EXPIRE", "PEXPIRE", "TTL",   "PTTL"};
    static const char *const all_keys[] = {"DEL", "UNLINK", "EXISTS"};
    static const char *const no_key[] = {"MULTI", "EXEC", "ASKING", "PING"};

    for (size_t i = 0; i < sizeof(no_key) / sizeof(no_key[0]); i++)
        if (arg_is(argv, argvlen, 0, no_key[i]))
            return 0;
    for (size_t i = 0; i < sizeof(one_key) / sizeof(one_key[0]); i++)
        if (arg_is(argv, argvlen, 0, one_key[i])) {
            *first = 1;
            return argc >= 2 ? 1 : -1;
        }
    for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++)
        if (arg_is(argv, argvlen, 0, all_keys[i])) {
            *first = 1;
            return argc >= 2 ? argc - 1 : -1;
        }
    if ((arg_is(argv, argvlen, 0, "EVAL") || arg_is(argv, argvlen, 0, "EVALSHA")) && argc >= 3) {
        char num[8];
        size_t n = argvlen != NULL ? argvlen[2] : strlen(argv[2]);
        long k;
        char *end;

        if (n == 0 || n >= sizeof(num))
            return -1;
        memcpy(num, argv[2], n);
        num[n] = '\0';
        k = strtol(num, &end, 10);
        if (*end != '\0' || k < 0 || k > argc - 3)
            return -1;
        *first = 3;
        return (int)k;
    }
    return -1;
}

/*
 * WAIT (or WAITAOF) waits for the writes its connection made before it, on whichever node it
 * reaches: it belongs to a request only as the last command, right after the EXEC of the write
 * it is about, so that it goes where that write goes. Anywhere else it is refused.
 */
static int is_wait(int argc, const char *const *argv, const size_t *argvlen)
{
    return argc > 0 && (arg_is(argv, argvlen, 0, "WAIT") || arg_is(argv, argvlen, 0, "WAITAOF"));
}

int tlsc_redis_cluster_request_slot(size_t ncmds, const int *argc, const char *const *const *argv, const size_t *const *argvlen)
{
    int slot = -2;

    for (size_t c = 0; c < ncmds; c++) {
        const size_t *lens = argvlen != NULL ? argvlen[c] : NULL;
        int first = 0, n;

        if (argc[c] > 0 && is_wait(argc[c], argv[c], lens)) {
            const size_t *prev = c > 0 && argvlen != NULL ? argvlen[c - 1] : NULL;

            if (c + 1 != ncmds || c == 0 || argc[c - 1] != 1 || !arg_is(argv[c - 1], prev, 0, "EXEC"))
                return -1;
            continue;
        }
        if (argc[c] <= 0 || (n = command_keys(argc[c], argv[c], lens, &first)) < 0)
            return -1;
        for (int k = first; k < first + n; k++) {
            int s = (int)tlsc_redis_cluster_keyslot(argv[c][k], lens != NULL ? lens[k] : strlen(argv[c][k]));

            if (slot != -2 && s != slot)
                return -1;
            slot = s;
        }
    }
    return slot;
}

/* ================================ replies from Redis ================================ */

/* A host as Redis may name one: bounded, [A-Za-z0-9.:_-] only (names, IPv4, IPv6). */
static int host_ok(const char *s, size_t n)
{
    if (n == 0 || n > TLSC_REDIS_CLUSTER_HOST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == ':' ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

static int parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned long v = 0;

    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int tlsc_redis_cluster_redirect_parse(const char *text, size_t len, unsigned *slot, char *host, size_t hostlen, unsigned *port)
{
    const char *p, *sp, *colon, *end = text + len;
    int kind;

    if (len > 6 && memcmp(text, "MOVED ", 6) == 0)
        kind = 1, p = text + 6;
    else if (len > 4 && memcmp(text, "ASK ", 4) == 0)
        kind = 2, p = text + 4;
    else
        return 0;
    if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL ||
        parse_uint(p, (size_t)(sp - p), TLSC_REDIS_CLUSTER_SLOTS - 1, slot) != 0)
        return 0;
    p = sp + 1;
    /* The port follows the last ':' (an IPv6 address has others). */
    for (colon = end; colon > p && colon[-1] != ':'; colon--)
        ;
    if (colon == p || parse_uint(colon, (size_t)(end - colon), 65535, port) != 0 || *port == 0)
        return 0;
    colon--; /* at the ':' */
    if (colon - p >= 2 && p[0] == '[' && colon[-1] == ']')
        p++, colon--;
    if (!host_ok(p, (size_t)(colon - p)) || (size_t)(colon - p) >= hostlen)
        return 0;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    return kind;
}

static int is_str(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static int str_eq(const redisReply *r, const char *s)
{
    return is_str(r) && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* A node of the map by address: its index, added when new; -1 when the map is full. */
static int map_node(tlsc_redis_cluster_map_t *map, const char *host, size_t hlen, unsigned port)
{
    for (size_t i = 0; i < map->nnodes; i++)
        if (map->node[i].port == port && strlen(map->node[i].host) == hlen && memcmp(map->node[i].host, host, hlen) == 0)
            return (int)i;
    if (map->nnodes >= TLSC_REDIS_CLUSTER_NODES_MAX)
        return -1;
    memcpy(map->node[map->nnodes].host, host, hlen);
    map->node[map->nnodes].host[hlen] = '\0';
    map->node[map->nnodes].port = port;
    map->node[map->nnodes].name[0] = '\0';
    return (int)map->nnodes++;
}

static int set_range(tlsc_redis_cluster_map_t *map, long long lo, long long hi, int node, char *why, size_t whylen)
{
    if (lo < 0 || hi < lo || hi >= TLSC_REDIS_CLUSTER_SLOTS) {
        snprintf(why, whylen, "a slot range %lld-%lld out of 0-16383", lo, hi);
        return -1;
    }
    memset(map->slot + lo, node, (size_t)(hi - lo + 1));
    return 0;
}

/* The address of a node: `host` (an empty one, or "?", means the node queried), bounded. */
static int node_addr(const char *host, size_t hlen, const char *queried, long long port, tlsc_redis_cluster_map_t *map, int *idx,
                     char *why, size_t whylen)
{

    if (hlen == 0 || (hlen == 1 && host[0] == '?')) {
        host = queried;
        hlen = strlen(queried);
    }
    if (!host_ok(host, hlen)) {
        snprintf(why, whylen, "a node address that is no host name or IP address");
        return -1;
    }
    if (port <= 0 || port > 65535) {
        snprintf(why, whylen, "a node port %lld out of 1-65535", port);
        return -1;
    }
    if ((*idx = map_node(map, host, hlen, (unsigned)port)) < 0) {
        snprintf(why, whylen, "more than %d masters", TLSC_REDIS_CLUSTER_NODES_MAX);
        return -1;
    }
    return 0;
}

/* CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]; the first node is the master. */
static int parse_slots(const redisReply *reply, const char *queried, tlsc_redis_cluster_map_t *map, char *why, size_t whylen)
{
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i], *m;
        int idx;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || (m = e->element[2])->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            !is_str(m->element[0]) || m->element[1]->type != REDIS_REPLY_INTEGER) {
            snprintf(why, whylen, "a CLUSTER SLOTS entry of the wrong shape");
            return -1;
        }
        if (node_addr(m->element[0]->str, m->element[0]->len, queried, m->element[1]->integer, map, &idx, why, whylen) != 0 ||
            set_range(map, e->element[0]->integer, e->element[1]->integer, idx, why, whylen) != 0)
            return -1;
    }
    return 0;
}

/* A field of a RESP2 map (a flat array of names and values), or NULL. */
static const redisReply *field(const redisReply *m, const char *name)
{
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (str_eq(m->element[i], name))
            return m->element[i + 1];
    return NULL;
}

/*
 * CLUSTER SHARDS: [["slots", [start, end, ...], "nodes", [[name, value, ...], ...]], ...]. The
 * shard's master is its node whose role is "master"; a shard without one (or without slots)
 * maps nothing. Its address is "endpoint" unless empty or "?", then "ip".
 */
static int parse_shards(const redisReply *reply, int tls, const char *queried, tlsc_redis_cluster_map_t *map, char *why,
                        size_t whylen)
{
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *sh = reply->element[i], *slots, *nodes, *master = NULL;
        int idx;

        if (sh->type != REDIS_REPLY_ARRAY || (slots = field(sh, "slots")) == NULL || slots->type != REDIS_REPLY_ARRAY ||
            slots->elements % 2 != 0 || (nodes = field(sh, "nodes")) == NULL || nodes->type != REDIS_REPLY_ARRAY) {
            snprintf(why, whylen, "a CLUSTER SHARDS entry of the wrong shape");
            return -1;
        }
        for (size_t n = 0; n < nodes->elements && master == NULL; n++) {
            const redisReply *nd = nodes->element[n];

            if (nd->type == REDIS_REPLY_ARRAY && str_eq(field(nd, "role"), "master"))
                master = nd;
        }
        if (master == NULL || slots->elements == 0)
            continue;
        const redisReply *ep = field(master, "endpoint"), *ip = field(master, "ip"), *port = field(master, "port");
        const redisReply *addr = is_str(ep) && ep->len > 0 && !(ep->len == 1 && ep->str[0] == '?') ? ep : ip;
        const redisReply *tls_port = tls ? field(master, "tls-port") : NULL, *name = field(master, "hostname");

        if (tls_port != NULL && tls_port->type == REDIS_REPLY_INTEGER)
            port = tls_port;
        if (!is_str(addr) || port == NULL || port->type != REDIS_REPLY_INTEGER) {
            snprintf(why, whylen, "a CLUSTER SHARDS master without an address");
            return -1;
        }
        if (node_addr(addr->str, addr->len, queried, port->integer, map, &idx, why, whylen) != 0)
            return -1;
        if (is_str(name) && name->len > 0) { /* what a TLS link verifies the node's certificate against */
            if (!host_ok(name->str, name->len)) {
                snprintf(why, whylen, "a node hostname that is no host name");
                return -1;
            }
            memcpy(map->node[idx].name, name->str, name->len);
            map->node[idx].name[name->len] = '\0';
        }
        for (size_t s = 0; s < slots->elements; s += 2) {
            if (slots->element[s]->type != REDIS_REPLY_INTEGER || slots->element[s + 1]->type != REDIS_REPLY_INTEGER) {
                snprintf(why, whylen, "a CLUSTER SHARDS slot that is not a number");
                return -1;
            }
            if (set_range(map, slots->element[s]->integer, slots->element[s + 1]->integer, idx, why, whylen) != 0)
                return -1;
        }
    }
    return 0;
}

int tlsc_redis_cluster_map_parse(const redisReply *reply, int flags, const char *queried, tlsc_redis_cluster_map_t *map, char *why,
                                 size_t whylen)
{
    map->nnodes = 0;
    memset(map->slot, NO_NODE, sizeof(map->slot));
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        snprintf(why, whylen, "not an array");
        return -1;
    }
    return (flags & TLSC_REDIS_CLUSTER_MAP_SHARDS)
               ? parse_shards(reply, (flags & TLSC_REDIS_CLUSTER_MAP_TLS) != 0, queried, map, why, whylen)
               : parse_slots(reply, queried, map, why, whylen);
}

/* ================================ nodes ================================ */

/* The node at host:port; over TLS with the certificate name `name` too, unless `name` is NULL (any will do). */
static node_t *node_find(tlsc_redis_cluster_t *c, const char *host, unsigned port, const char *name)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->port == port && strcmp(c->nodes[i]->host, host) == 0 &&
            (name == NULL || !c->url.tls || strcmp(c->nodes[i]->name, name) == 0))
            return c->nodes[i];
    return NULL;
}

/* A link to node `n` (the request link, or with `label` its wait link); 0 or a negative UV_E* code, logged. */
static int node_link(tlsc_redis_cluster_t *c, node_t *n, const char *label, tlsc_redis_t **out)
{
    tlsc_redis_url_t u = {0};
    tlsc_redis_options_t o = c->o;
    char err[256];
    int rc;

    u.host = n->host;
    u.port = n->port;
    u.user = c->url.user;
    u.password = c->url.password;
    u.tls = c->url.tls;
    o.url = &u; /* copied by tlsc_redis_new */
    o.tls_name = n->name[0] != '\0' ? n->name : NULL;
    o.tls_name_from = n->name[0] != '\0' ? "the hostname in the cluster's slot map" : n->from;
    if (label != NULL)
        o.label = label;
    if ((rc = tlsc_redis_new(c->loop, &o, out, err, sizeof(err))) != 0)
        tlsc_log_error("redis cluster: cannot open a %slink to %s:%u: %s", label != NULL ? "wait " : "", n->host, n->port, err);
    return rc;
}

/*
 * The node at host:port with its link (and its wait link under --store-replicas), opened when
 * new. Over TLS its certificate must show `name` when the slot map gave one (the node's
 * hostname), else the host it is reached at, as with rediss:// (an IP address then: the
 * certificate must name it); `from` says where that host came from, for the log. A seed or a
 * redirect passes NULL: any link to that address will do. NULL when the table is full or out
 * of memory. A node without a wait link stores without WAIT.
 */
static node_t *node_get(tlsc_redis_cluster_t *c, const char *host, unsigned port, const char *name, const char *from)
{
    node_t *n;

    if ((n = node_find(c, host, port, name)) != NULL)
        return n;
    if (c->nnodes >= NODES_MAX || strlen(host) > TLSC_REDIS_CLUSTER_HOST_MAX || (n = calloc(1, sizeof(*n))) == NULL)
        return NULL;
    snprintf(n->host, sizeof(n->host), "%s", host);
    snprintf(n->name, sizeof(n->name), "%s", name != NULL ? name : "");
    n->port = port;
    n->from = from;
    if (node_link(c, n, NULL, &n->link) != 0) {
        free(n);
        return NULL;
    }
    if (c->wait_replicas > 0)
        (void)node_link(c, n, c->wait_label, &n->wait.link);
    c->st.links++;
    c->nodes[c->nnodes++] = n;
    return n;
}

static void node_drop(tlsc_redis_cluster_t *c, size_t i)
{
    node_t *n = c->nodes[i];

    c->closed_connects += tlsc_redis_connects(n->link);
    {
        uint64_t io[3];

        tlsc_redis_io(n->link, &io[0], &io[1], &io[2]);
        for (size_t k = 0; k < 3; k++)
            c->closed_io[k] += io[k];
    }
    tlsc_redis_close(n->link);
    tlsc_redis_close(n->wait.link);
    free(n);
    c->nodes[i] = c->nodes[--c->nnodes];
}

/* ================================ the slot map ================================ */

static void on_refresh_reply(int status, const redisReply *reply, void *data);
static void on_timer(uv_timer_t *t);

/*
 * Moves the timer earlier, never later. At least 1 ms: libuv runs a timer re-armed with 0 from
 * its own callback again in the same pass, for ever.
 */
static void arm(tlsc_redis_cluster_t *c, uint64_t delay_ms)
{
    if (delay_ms == 0)
        delay_ms = 1;
    if (c->closing || (uv_is_active((uv_handle_t *)&c->timer) && uv_timer_get_due_in(&c->timer) <= delay_ms))
        return;
    uv_timer_start(&c->timer, on_timer, delay_ms, 0);
}

/* Asks for a new map as soon as the minimum interval allows. */
static void refresh_soon(tlsc_redis_cluster_t *c)
{
    uint64_t now = uv_now(c->loop), at = c->last_refresh_ms + TLSC_REDIS_CLUSTER_REFRESH_MIN_MS;

    if (c->single != NULL) /* one node: no map (a durable write's wrapper comes through here) */
        return;
    c->refresh_wanted = 1;
    if (c->refresh_req == NULL)
        arm(c, at > now ? at - now : 0);
}

/*
 * Sends CLUSTER SHARDS (or SLOTS) to a node that answers, masters first, starting after the one
 * asked last so that one bad node does not answer every time. With none (the start, every
 * master gone), the seeds get links and the next tick tries again.
 */
static void refresh_start(tlsc_redis_cluster_t *c)
{
    static const char *const shards[] = {"CLUSTER", "SHARDS"}, *const slots[] = {"CLUSTER", "SLOTS"};
    node_t *pick = NULL;
    int status;

    for (int pass = 0; pass < 2 && pick == NULL; pass++)
        for (size_t k = 0; k < c->nnodes && pick == NULL; k++) {
            node_t *n = c->nodes[(c->refresh_next + k) % c->nnodes];

            if ((pass == 1 || n->in_map) && tlsc_redis_ready(n->link)) {
                pick = n;
                c->refresh_next = (c->refresh_next + k + 1) % c->nnodes;
            }
        }
    if (pick == NULL) {
        for (size_t i = 0; i < c->url.nseeds; i++)
            (void)node_get(c, c->url.seeds[i].host, c->url.seeds[i].port, NULL, NULL);
        c->refresh_wanted = 1;
        arm(c, TLSC_REDIS_CLUSTER_REFRESH_MIN_MS); /* the links need a moment to connect */
        return;
    }
    c->refresh_req =
        tlsc_redis_command(pick->link, 2, c->use_slots ? slots : shards, NULL, REFRESH_TIMEOUT, on_refresh_reply, c, &status);
    if (c->refresh_req == NULL) {
        refresh_soon(c);
        return;
    }
    c->refresh_node = pick;
    c->refresh_wanted = 0;
}

static void map_error(tlsc_redis_cluster_t *c, const char *what, const char *detail, const char *hint)
{
    char line[sizeof(c->last_map_err)];

    c->st.refresh_fails++;
    snprintf(line, sizeof(line), "%s: %s%s", what, detail, hint);
    if (strcmp(line, c->last_map_err) != 0) /* once per change, not per try */
        tlsc_log_warn("redis cluster: %s", line);
    snprintf(c->last_map_err, sizeof(c->last_map_err), "%s", line);
}

/* Points every slot at its master's node (links opened for new ones) and closes idle links the map no longer names. */
static void map_apply(tlsc_redis_cluster_t *c, const tlsc_redis_cluster_map_t *map)
{
    node_t *byidx[TLSC_REDIS_CLUSTER_NODES_MAX];
    size_t covered = 0;
    unsigned before = c->st.masters;

    for (size_t i = 0; i < c->nnodes; i++)
        c->nodes[i]->in_map = 0;
    for (size_t i = 0; i < map->nnodes; i++) {
        /* The table holds the map's masters plus the seeds: there is room unless links linger. */
        if ((byidx[i] = node_get(c, map->node[i].host, map->node[i].port, map->node[i].name,
                                 "the address in the cluster's slot map")) != NULL)
            byidx[i]->in_map = 1;
    }
    for (size_t s = 0; s < TLSC_REDIS_CLUSTER_SLOTS; s++) {
        c->slot[s] = map->slot[s] != NO_NODE ? byidx[map->slot[s]] : NULL;
        covered += c->slot[s] != NULL;
    }
    c->covered = covered;
    for (size_t i = c->nnodes; i > 0; i--)
        if (!c->nodes[i - 1]->in_map && c->nodes[i - 1]->inflight == 0 && c->nodes[i - 1] != c->refresh_node)
            node_drop(c, i - 1);
    c->st.masters = (unsigned)map->nnodes;
    c->st.refreshes++;
    if (!c->have_map || before != c->st.masters || covered != TLSC_REDIS_CLUSTER_SLOTS || c->last_map_err[0] != '\0')
        tlsc_log_info("redis cluster: %zu masters, %zu of %d slots covered", map->nnodes, covered, TLSC_REDIS_CLUSTER_SLOTS);
    c->last_map_err[0] = '\0';
    c->have_map = 1;
    c->map_version++;
}

static void on_refresh_reply(int status, const redisReply *reply, void *data)
{
    tlsc_redis_cluster_t *c = data;
    char why[120], host[TLSC_REDIS_CLUSTER_HOST_MAX + 1];

    snprintf(host, sizeof(host), "%s", c->refresh_node->host);
    c->refresh_req = NULL;
    c->refresh_node = NULL;
    c->last_refresh_ms = uv_now(c->loop);
    if (status != 0) {
        map_error(c, "reading the slot map", uv_strerror(status), "");
        refresh_soon(c);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!c->use_slots && (strstr(reply->str, "nknown") != NULL || strstr(reply->str, "nrecognized") != NULL)) {
            c->use_slots = 1; /* before Redis 7: CLUSTER SLOTS */
            refresh_soon(c);
            return;
        }
        snprintf(why, sizeof(why), "%.*s", (int)(reply->len < 80 ? reply->len : 80), reply->str);
        for (char *p = why; *p != '\0'; p++)
            if (*p < 0x20 || *p >= 0x7f)
                *p = '?';
        map_error(c, "reading the slot map", why, " (is --redis a Redis Cluster?)");
        refresh_soon(c);
        return;
    }
    if (tlsc_redis_cluster_map_parse(
            reply, (c->use_slots ? 0 : TLSC_REDIS_CLUSTER_MAP_SHARDS) | (c->url.tls ? TLSC_REDIS_CLUSTER_MAP_TLS : 0), host,
            c->scratch, why, sizeof(why)) != 0) {
        map_error(c, "a slot map refused", why, "");
        refresh_soon(c);
        return;
    }
    map_apply(c, c->scratch);
    if (c->refresh_wanted)
        refresh_soon(c);
}

/*
 * The timer: a refresh when one is wanted or due, then again in TLSC_REDIS_CLUSTER_REFRESH_MS;
 * sooner (the minimum interval) while there is no map or a master does not answer, so a
 * failover is found within about one cluster-node-timeout.
 */
static void on_timer(uv_timer_t *t)
{
    tlsc_redis_cluster_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    int degraded = !tlsc_redis_cluster_ready(c);

    if (c->refresh_req == NULL && (c->refresh_wanted || degraded || now >= c->last_refresh_ms + TLSC_REDIS_CLUSTER_REFRESH_MS))
        refresh_start(c);
    if (!uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, on_timer, degraded ? 4 * TLSC_REDIS_CLUSTER_REFRESH_MIN_MS : TLSC_REDIS_CLUSTER_REFRESH_MS, 0);
}

/* ================================ requests ================================ */

static void on_inner_reply(int status, const redisReply *reply, void *data);

static void req_free(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req)
{
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        c->live = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    if (req->node != NULL)
        req->node->inflight--;
    free(req);
}

static void on_wait_reply(int status, const redisReply *reply, void *data);

/* The wait side of node `n`, or of the one node (n NULL). */
static wait_side_t *wait_side(tlsc_redis_cluster_t *c, node_t *n)
{
    return n != NULL ? &n->wait : &c->single_wait;
}

/*
 * A durable write's WAIT N <ms> after its commands on wait link `w`, in the same pipeline (one
 * flush carries both). WAIT's own timeout is 4/5 of what is left of the request's, so that its
 * answer, fewer replicas than asked, normally comes before the request's deadline.
 */
static tlsc_redis_req_t *send_wait_cmd(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req, tlsc_redis_t *w, unsigned left_ms)
{
    char n[16], ms[16];
    const char *wait[] = {"WAIT", n, ms};
    int status;

    snprintf(n, sizeof(n), "%u", c->wait_replicas);
    snprintf(ms, sizeof(ms), "%u", left_ms * 4 / 5 > 0 ? left_ms * 4 / 5 : 1);
    return tlsc_redis_command(w, 3, wait, NULL, left_ms, on_wait_reply, req, &status);
}

/*
 * Sends the request's commands to `n` (NULL: the one node) after ASKING when asked; 0 or a
 * negative UV_E* code. A durable write goes to the node's wait link with its WAIT after it,
 * unless that link is down or the node's replicas are behind: then to the request link, no WAIT.
 */
static int req_send(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req, node_t *n, int asking)
{
    static const char *const asking_argv[] = {"ASKING"};
    static const size_t asking_len[] = {6};
    int argc[CMDS_MAX + 1];
    const char *const *argv[CMDS_MAX + 1];
    const size_t *argvlen[CMDS_MAX + 1];
    size_t k = 0;
    uint64_t now = uv_now(c->loop);
    tlsc_redis_t *link;
    wait_side_t *w;
    int status;

    if (asking) {
        argc[k] = 1;
        argv[k] = asking_argv;
        argvlen[k++] = asking_len;
    }
    for (size_t i = 0; i < req->ncmds; i++, k++) {
        argc[k] = req->argc[i];
        argv[k] = req->argv[i];
        argvlen[k] = req->argvlen[i];
    }
    if (now >= req->deadline)
        return UV_ETIMEDOUT;
    link = n != NULL ? n->link : c->single;
    w = wait_side(c, n);
    req->waited = req->wcb != NULL && w->link != NULL && now >= w->off_until && tlsc_redis_ready(w->link);
    req->inner = tlsc_redis_send(req->waited ? w->link : link, k, argc, argv, argvlen, (unsigned)(req->deadline - now),
                                 on_inner_reply, req, &status);
    if (req->inner == NULL)
        return status;
    /* WAIT refused at once (its link's queue is full): the write stands, without WAIT. */
    if (req->waited && (req->wait_inner = send_wait_cmd(c, req, w->link, (unsigned)(req->deadline - now))) == NULL)
        req->waited = 0;
    if (req->node != NULL)
        req->node->inflight--;
    req->node = n;
    if (n != NULL)
        n->inflight++;
    return 0;
}

/* Delivers and frees (the callback may send, cancel or close: the request is gone first). */
static void deliver(tlsc_redis_cluster_req_t *req, int status, const redisReply *reply)
{
    tlsc_redis_cluster_t *c = req->c;
    tlsc_redis_cb cb = req->cb;
    void *data = req->data;

    req_free(c, req);
    cb(status, reply, data);
}

/* A durable write's end, freed first as in deliver; its WAIT, if still pending, is dropped. */
static void deliver_wait(tlsc_redis_cluster_req_t *req, int status, tlsc_redis_wait_t waited)
{
    tlsc_redis_cluster_t *c = req->c;
    tlsc_redis_cluster_wait_cb cb = req->wcb;
    void *data = req->data;

    tlsc_redis_cancel(req->wait_inner);
    tlsc_redis_cancel(req->inner);
    req_free(c, req);
    cb(status, waited, data);
}

/*
 * The answer to the request's commands, not a redirect: a plain request ends here; a durable
 * write judges it (an error or nil, as EXEC answers an aborted transaction, is a failed write)
 * and, when WAIT follows it, waits for WAIT's answer.
 */
static void finish(tlsc_redis_cluster_req_t *req, int status, const redisReply *reply)
{
    if (req->wcb == NULL) {
        deliver(req, status, reply);
        return;
    }
    if (status == 0 && (reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_NIL))
        status = UV_EPROTO;
    if (status == 0 && req->waited)
        return; /* the write succeeded: WAIT's answer ends the request (on_wait_reply) */
    deliver_wait(req, status, req->waited ? TLSC_REDIS_WAIT_NONE : TLSC_REDIS_WAIT_SKIPPED);
}

static int error_is(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);

    return r->type == REDIS_REPLY_ERROR && r->len >= n && memcmp(r->str, prefix, n) == 0;
}

static void on_inner_reply(int status, const redisReply *reply, void *data)
{
    tlsc_redis_cluster_req_t *req = data;
    tlsc_redis_cluster_t *c = req->c;
    char host[TLSC_REDIS_CLUSTER_HOST_MAX + 1];
    unsigned slot, port;
    node_t *n;
    int kind, rc;

    req->inner = NULL;
    if (status != 0) {
        refresh_soon(c); /* a master lost: maybe failed over */
        finish(req, status, NULL);
        return;
    }
    if (error_is(reply, "CLUSTERDOWN") || error_is(reply, "TRYAGAIN"))
        refresh_soon(c);
    if (c->single != NULL || reply->type != REDIS_REPLY_ERROR ||
        (kind = tlsc_redis_cluster_redirect_parse(reply->str, reply->len, &slot, host, sizeof(host), &port)) == 0) {
        finish(req, 0, reply);
        return;
    }
    if (kind == 1)
        c->st.moved++;
    else
        c->st.ask++;
    if (req->redirects >= TLSC_REDIS_CLUSTER_REDIRECTS_MAX || slot != req->slot || (kind == 2 && req->asked) ||
        (n = node_get(c, host, port, NULL, "the address in a MOVED or ASK")) == NULL) {
        refresh_soon(c);
        finish(req, 0, reply); /* an error reply: the caller counts a failure */
        return;
    }
    req->redirects++;
    if (kind == 1) {
        c->covered += c->slot[slot] == NULL;
        c->slot[slot] = n; /* MOVED: the slot is there now; the map follows */
        n->in_map = 1;
        c->map_version++;
        refresh_soon(c);
    } else {
        req->asked = 1;
    }
    /* A durable write's WAIT went where the write did not land: it goes again with the write. */
    tlsc_redis_cancel(req->wait_inner);
    req->wait_inner = NULL;
    if ((rc = req_send(c, req, n, kind == 2)) != 0) {
        refresh_soon(c);
        finish(req, rc, NULL);
    }
}

#define WAIT_OFF_MS 1000 /* after a short WAIT, a node's writes skip WAIT this long, then one tries again */

/* A WAIT answered `got` replicas (-1: no answer) on node `n`: its writes go on without WAIT for a while when short. */
static int wait_judged(tlsc_redis_cluster_t *c, node_t *n, long long got)
{
    wait_side_t *w = wait_side(c, n);
    char where[TLSC_REDIS_CLUSTER_HOST_MAX + 32] = "";
    int acked = got >= (long long)c->wait_replicas;

    if (n != NULL)
        snprintf(where, sizeof(where), " cluster %s:%u", n->host, n->port);
    if (acked && w->off) {
        w->off = 0;
        tlsc_log_info("redis%s (--store-replicas %u): the replicas caught up; new sessions wait for them again", where,
                      c->wait_replicas);
    } else if (!acked) {
        w->off_until = uv_now(c->loop) + WAIT_OFF_MS;
        if (!w->off)
            tlsc_log_warn("redis%s (--store-replicas %u): WAIT answered %lld%s; new sessions are stored without waiting "
                          "for replicas, trying again every %d ms",
                          where, c->wait_replicas, got, got < 0 ? " (no answer)" : " replicas", WAIT_OFF_MS);
        w->off = 1;
    }
    return acked;
}

/* WAIT's answer, after the write's (Redis answers in order): the durable write ends here. */
static void on_wait_reply(int status, const redisReply *reply, void *data)
{
    tlsc_redis_cluster_req_t *req = data;
    long long got = status == 0 && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    req->wait_inner = NULL;
    if (req->inner != NULL) { /* WAIT failed before the write answered (both timed out) */
        deliver_wait(req, status != 0 ? status : UV_EPROTO, TLSC_REDIS_WAIT_NONE);
        return;
    }
    if (wait_judged(req->c, req->node, got))
        deliver_wait(req, 0, TLSC_REDIS_WAIT_ACKED);
    else
        deliver_wait(req, status != 0 ? status : got >= 0 ? 0 : UV_EPROTO, TLSC_REDIS_WAIT_SHORT);
}

/* Copies the commands into one allocation after the request. NULL when out of memory. */
static tlsc_redis_cluster_req_t *req_new(size_t ncmds, const int *argc, const char *const *const *argv,
                                         const size_t *const *argvlen)
{
    size_t nargs = 0, bytes = 0, size;
    tlsc_redis_cluster_req_t *req;
    const char **ap;
    size_t *lp;
    char *bp;

    for (size_t i = 0; i < ncmds; i++)
        for (int k = 0; k < argc[i]; k++) {
            nargs++;
            bytes += argvlen != NULL && argvlen[i] != NULL ? argvlen[i][k] : strlen(argv[i][k]);
        }
    size = sizeof(*req) + nargs * (sizeof(char *) + sizeof(size_t)) + bytes + 1;
    if ((req = calloc(1, size)) == NULL)
        return NULL;
    ap = (const char **)(req + 1);
    lp = (size_t *)(ap + nargs);
    bp = (char *)(lp + nargs);
    req->ncmds = ncmds;
    for (size_t i = 0; i < ncmds; i++) {
        req->argc[i] = argc[i];
        req->argv[i] = ap;
        req->argvlen[i] = lp;
        for (int k = 0; k < argc[i]; k++) {
            size_t n = argvlen != NULL && argvlen[i] != NULL ? argvlen[i][k] : strlen(argv[i][k]);

            if (n > 0)
                memcpy(bp, argv[i][k], n);
            *ap++ = bp;
            *lp++ = n;
            bp += n;
        }
    }
    return req;
}

/*
 * The one-slot rule on what goes on the wire: the commands, and a durable write's WAIT after
 * them (placed as tlsc_redis_cluster_request_slot allows it: last, after EXEC).
 */
static int wire_slot(size_t ncmds, const int *argc, const char *const *const *argv, const size_t *const *argvlen, int with_wait)
{
    static const char *const wait[] = {"WAIT", "1", "1"};
    int wargc[CMDS_MAX];
    const char *const *wargv[CMDS_MAX];
    const size_t *wlen[CMDS_MAX];

    if (!with_wait)
        return tlsc_redis_cluster_request_slot(ncmds, argc, argv, argvlen);
    for (size_t i = 0; i < ncmds; i++) {
        wargc[i] = argc[i];
        wargv[i] = argv[i];
        wlen[i] = argvlen != NULL ? argvlen[i] : NULL;
    }
    wargc[ncmds] = 3;
    wargv[ncmds] = wait;
    wlen[ncmds] = NULL;
    return tlsc_redis_cluster_request_slot(ncmds + 1, wargc, wargv, wlen);
}

/* The node a cluster request for `key` goes to; 0, or UV_EINVAL (keys span slots, counted) / UV_ENOTCONN. */
static int route(tlsc_redis_cluster_t *c, const char *key, size_t key_len, size_t ncmds, const int *argc,
                 const char *const *const *argv, const size_t *const *argvlen, int with_wait, unsigned *slot, node_t **out)
{
    int rslot;

    *slot = tlsc_redis_cluster_keyslot(key, key_len);
    /* Every key the request names must live where `key` lives: checked on every request, it costs a few CRCs. */
    if ((rslot = wire_slot(ncmds, argc, argv, argvlen, with_wait)) == -1 || (rslot >= 0 && (unsigned)rslot != *slot)) {
        c->st.refused++;
        if (!c->refused_logged)
            tlsc_log_error("redis cluster: a request whose keys are not all in the slot of its key (a bug; refused, not sent)");
        c->refused_logged = 1;
        return UV_EINVAL;
    }
    if ((*out = c->slot[*slot]) == NULL || !tlsc_redis_ready((*out)->link)) {
        refresh_soon(c);
        return UV_ENOTCONN;
    }
    return 0;
}

/* A wrapped request (every cluster request, and a durable write on one node): copied, routed, sent, kept in `live`. */
static tlsc_redis_cluster_req_t *send_wrapped(tlsc_redis_cluster_t *c, const char *key, size_t key_len, size_t ncmds,
                                              const int *argc, const char *const *const *argv, const size_t *const *argvlen,
                                              unsigned timeout_ms, tlsc_redis_cb cb, tlsc_redis_cluster_wait_cb wcb, void *data,
                                              int *status_out)
{
    tlsc_redis_cluster_req_t *req;
    unsigned slot = 0;
    node_t *n = NULL;
    int status, ignored;

    if (status_out == NULL)
        status_out = &ignored;
    if (ncmds == 0 || ncmds > CMDS_MAX - 1 || (cb == NULL && wcb == NULL)) {
        *status_out = UV_EINVAL;
        return NULL;
    }
    if (c->single == NULL && (status = route(c, key, key_len, ncmds, argc, argv, argvlen, wcb != NULL, &slot, &n)) != 0) {
        *status_out = status;
        return NULL;
    }
    if ((req = req_new(ncmds, argc, argv, argvlen)) == NULL) {
        *status_out = UV_ENOMEM;
        return NULL;
    }
    req->c = c;
    req->cb = cb;
    req->wcb = wcb;
    req->data = data;
    req->slot = slot;
    req->deadline = uv_now(c->loop) + (timeout_ms != 0 ? timeout_ms : 1000);
    if ((status = req_send(c, req, n, 0)) != 0) {
        free(req);
        *status_out = status;
        return NULL;
    }
    req->next = c->live;
    if (c->live != NULL)
        c->live->prev = req;
    c->live = req;
    *status_out = 0;
    return req;
}

tlsc_redis_cluster_req_t *tlsc_redis_cluster_send(tlsc_redis_cluster_t *c, const char *key, size_t key_len, size_t ncmds,
                                                  const int *argc, const char *const *const *argv, const size_t *const *argvlen,
                                                  unsigned timeout_ms, tlsc_redis_cb cb, void *data, int *status_out)
{
    if (c->single != NULL)
        return (tlsc_redis_cluster_req_t *)tlsc_redis_send(c->single, ncmds, argc, argv, argvlen, timeout_ms, cb, data, status_out);
    if (cb == NULL) {
        if (status_out != NULL)
            *status_out = UV_EINVAL;
        return NULL;
    }
    return send_wrapped(c, key, key_len, ncmds, argc, argv, argvlen, timeout_ms, cb, NULL, data, status_out);
}

tlsc_redis_cluster_req_t *tlsc_redis_cluster_send_wait(tlsc_redis_cluster_t *c, const char *key, size_t key_len, size_t ncmds,
                                                       const int *argc, const char *const *const *argv,
                                                       const size_t *const *argvlen, unsigned timeout_ms,
                                                       tlsc_redis_cluster_wait_cb cb, void *data, int *status_out)
{
    if (cb == NULL || c->wait_replicas == 0) {
        if (status_out != NULL)
            *status_out = UV_EINVAL;
        return NULL;
    }
    return send_wrapped(c, key, key_len, ncmds, argc, argv, argvlen, timeout_ms, NULL, cb, data, status_out);
}

static void cancel_wrapped(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req)
{
    tlsc_redis_cancel(req->inner);
    tlsc_redis_cancel(req->wait_inner);
    req_free(c, req);
}

void tlsc_redis_cluster_cancel(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req)
{
    if (req == NULL)
        return;
    if (c->single != NULL) {
        tlsc_redis_cancel((tlsc_redis_req_t *)req);
        return;
    }
    cancel_wrapped(c, req);
}

void tlsc_redis_cluster_cancel_wait(tlsc_redis_cluster_t *c, tlsc_redis_cluster_req_t *req)
{
    if (req != NULL)
        cancel_wrapped(c, req);
}

int tlsc_redis_cluster_wait_enable(tlsc_redis_cluster_t *c, const tlsc_redis_options_t *o, unsigned replicas, char *err,
                                   size_t errlen)
{
    int rc;

    if (replicas == 0 || c->wait_replicas != 0) {
        snprintf(err, errlen, "bad wait link options");
        return UV_EINVAL;
    }
    c->wait_label = o->label;
    if (c->single != NULL) {
        if ((rc = tlsc_redis_new(c->loop, o, &c->single_wait.link, err, errlen)) != 0)
            return rc;
        c->wait_replicas = replicas;
        return 0;
    }
    c->wait_replicas = replicas; /* nodes found later get their wait link in node_get */
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->wait.link == NULL)
            (void)node_link(c, c->nodes[i], c->wait_label, &c->nodes[i]->wait.link);
    return 0;
}
/* ================================ state ================================ */

int tlsc_redis_cluster_ready(const tlsc_redis_cluster_t *c)
{
    if (c->single != NULL)
        return tlsc_redis_ready(c->single);
    if (!c->have_map || c->covered != TLSC_REDIS_CLUSTER_SLOTS)
        return 0;
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->in_map && !tlsc_redis_ready(c->nodes[i]->link))
            return 0;
    return 1;
}

void tlsc_redis_cluster_stats(const tlsc_redis_cluster_t *c, tlsc_redis_cluster_stats_t *st)
{
    if (c->single != NULL) {
        memset(st, 0, sizeof(*st));
        st->connects = tlsc_redis_connects(c->single);
        st->links = 1;
        st->masters = 1;
        st->masters_up = tlsc_redis_ready(c->single) != 0;
        tlsc_redis_io(c->single, &st->requests, &st->commands, &st->writes);
        return;
    }
    *st = c->st;
    st->connects = c->closed_connects;
    st->requests = c->closed_io[0];
    st->commands = c->closed_io[1];
    st->writes = c->closed_io[2];
    st->masters_up = 0;
    for (size_t i = 0; i < c->nnodes; i++) {
        uint64_t io[3];

        tlsc_redis_io(c->nodes[i]->link, &io[0], &io[1], &io[2]);
        st->requests += io[0];
        st->commands += io[1];
        st->writes += io[2];
        st->connects += tlsc_redis_connects(c->nodes[i]->link);
        st->masters_up += c->nodes[i]->in_map && tlsc_redis_ready(c->nodes[i]->link);
    }
}

uint64_t tlsc_redis_cluster_map_version(const tlsc_redis_cluster_t *c)
{
    return c->single != NULL ? 0 : c->map_version;
}

size_t tlsc_redis_cluster_partition(const tlsc_redis_cluster_t *c, uint8_t owner[TLSC_REDIS_CLUSTER_SLOTS])
{
    const node_t *seen[NODES_MAX];
    size_t n = 0, k = 0;

    memset(owner, NO_NODE, TLSC_REDIS_CLUSTER_SLOTS);
    if (c->single != NULL || !c->have_map)
        return 0;
    for (size_t s = 0; s < TLSC_REDIS_CLUSTER_SLOTS; s++) {
        const node_t *nd = c->slot[s];

        if (nd == NULL)
            continue;
        if (n == 0 || seen[k] != nd) { /* ranges are long: look only when the master changes */
            for (k = 0; k < n && seen[k] != nd; k++)
                ;
            if (k == n)
                seen[n++] = nd;
        }
        owner[s] = (uint8_t)k;
    }
    return n;
}

/* ================================ life ================================ */

int tlsc_redis_cluster_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_redis_cluster_t **out, char *err, size_t errlen)
{
    tlsc_redis_cluster_t *c;
    int rc;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    c->loop = loop;
    if (!o->url->cluster) {
        if ((rc = tlsc_redis_new(loop, o, &c->single, err, errlen)) != 0) {
            free(c);
            return rc;
        }
        *out = c;
        return 0;
    }
    c->o = *o;
    c->o.url = &c->url;
    c->url.cluster = 1;
    /* Over TLS every node's link shares one context: the files are read once, now, not when a node turns up. */
    if (o->url->tls && o->tls_ctx == NULL &&
        (rc = tlsc_redis_tls_ctx_new(o->tls_ca_file, o->tls_cert_file, o->tls_key_file, &c->tls_ctx, err, errlen)) != 0) {
        free(c);
        return rc;
    }
    if (o->url->tls && o->tls_ctx != NULL && SSL_CTX_up_ref(o->tls_ctx) == 1)
        c->tls_ctx = o->tls_ctx;
    c->url.tls = o->url->tls;
    c->o.tls_ctx = c->tls_ctx;
    c->url.nseeds = o->url->nseeds;
    if ((c->scratch = malloc(sizeof(*c->scratch))) == NULL ||
        (c->url.seeds = calloc(o->url->nseeds, sizeof(*c->url.seeds))) == NULL ||
        (o->url->user != NULL && (c->url.user = strdup(o->url->user)) == NULL) ||
        (o->url->password != NULL && (c->url.password = strdup(o->url->password)) == NULL))
        goto fail;
    for (size_t i = 0; i < o->url->nseeds; i++) {
        c->url.seeds[i].port = o->url->seeds[i].port;
        if ((c->url.seeds[i].host = strdup(o->url->seeds[i].host)) == NULL)
            goto fail;
    }
    for (size_t i = 0; i < c->url.nseeds; i++)
        (void)node_get(c, c->url.seeds[i].host, c->url.seeds[i].port, NULL, NULL);
    if (c->nnodes == 0) {
        snprintf(err, errlen, "redis cluster: no seed node could be set up");
        SSL_CTX_free(c->tls_ctx);
        tlsc_redis_url_free(&c->url);
        free(c->scratch);
        free(c);
        return UV_EINVAL;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timer, 0, 0);
    *out = c;
    return 0;

fail:
    SSL_CTX_free(c->tls_ctx);
    tlsc_redis_url_free(&c->url);
    free(c->scratch);
    free(c);
    snprintf(err, errlen, "out of memory");
    return UV_ENOMEM;
}

static void on_timer_closed(uv_handle_t *h)
{
    tlsc_redis_cluster_t *c = h->data;

    SSL_CTX_free(c->tls_ctx);
    tlsc_redis_url_free(&c->url);
    free(c->scratch);
    free(c);
}

void tlsc_redis_cluster_close(tlsc_redis_cluster_t *c)
{
    tlsc_redis_cluster_req_t *req;

    if (c == NULL)
        return;
    c->closing = 1;
    while ((req = c->live) != NULL) {
        c->live = req->next;
        free(req);
    }
    if (c->single != NULL) {
        tlsc_redis_close(c->single);
        tlsc_redis_close(c->single_wait.link);
        free(c);
        return;
    }
    while (c->nnodes > 0) {
        c->nodes[c->nnodes - 1]->inflight = 0;
        node_drop(c, c->nnodes - 1);
    }
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
