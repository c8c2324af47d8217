/*
 * This file's one job: tlscache-ctl's `sessions` subcommands on the session records in Redis
 * (<prefix>:sess:<hex id>, docs/protocol.md § Session records): list with SCAN (never KEYS),
 * show one, revoke by ID, SNI, node or all, and announce each revocation on <prefix>:revoked.
 * Only the readable fields are read for listing; the sealed `der` field is never printed (show
 * reads its first bytes to name the key that sealed it, and wipes the copy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "ctl.h"
#include "keyproto.h"
#include "opts.h"
#include "redis_sync.h"
#include "util.h"

#define SCAN_BATCH_MAX 1024 /* keys of one SCAN step: the bounded reader's largest array (server/redis.h) */
#define KEY_MAX        512  /* prefix (<= 64) + ":sess:" + 64 hex digits, with room */
#define ID_HEX_MAX     64   /* SSL_MAX_SSL_SESSION_ID_LENGTH (32) bytes as hex */
#define FIELD_SHOW     80   /* bytes of a field shown before it is cut */
#define REVOKED        ":revoked"
#define FALLBACK_TAG   "tlsc:fb:" /* a fallback day key's name starts so (docs/protocol.md) */

/* The readable fields, in the order list and show print them. */
static const char *const FIELDS[] = {"proto", "cipher", "sni", "alpn", "node", "worker", "created"};
#define NFIELDS (sizeof(FIELDS) / sizeof(FIELDS[0]))

typedef struct {
    char vals[NFIELDS][FIELD_SHOW * 4 + 8]; /* printable, "-" when absent */
    int have[NFIELDS];
    long long ttl; /* -1 no expiry, -2 gone */
} record_t;

/* A session ID as the user typed it: 2..64 hex digits, even; lowercased into `out`. */
static int parse_id(const char *id, char out[ID_HEX_MAX + 1])
{
    size_t n = strlen(id);

    if (n < 2 || n > ID_HEX_MAX || n % 2 != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int d = tlsc_hex_digit(id[i]);
        if (d < 0)
            return -1;
        out[i] = "0123456789abcdef"[d];
    }
    out[n] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- reading one record */

/* HMGET of the readable fields of `key` (argv[1] is the key). */
static void hmget_args(const char *key, const char *argv[2 + NFIELDS], size_t lens[2 + NFIELDS])
{
    argv[0] = "HMGET";
    lens[0] = 5;
    argv[1] = key;
    lens[1] = strlen(key);
    for (size_t i = 0; i < NFIELDS; i++) {
        argv[2 + i] = FIELDS[i];
        lens[2 + i] = strlen(FIELDS[i]);
    }
}

/* Queues HMGET of the readable fields and TTL of `key`. */
static int ask_record(tlsc_ctlredis_t *r, const char *key, char *err, size_t errlen)
{
    const char *argv[2 + NFIELDS], *targv[2] = {"TTL", key};
    size_t lens[2 + NFIELDS], tlens[2] = {3, strlen(key)};

    hmget_args(key, argv, lens);
    if (tlsc_ctlredis_append(r, (int)(2 + NFIELDS), argv, lens, err, errlen) != 0)
        return -1;
    return tlsc_ctlredis_append(r, 2, targv, tlens, err, errlen);
}

/*
 * Reads the two replies ask_record queued for `key`, taken already (`fields`, `ttl`; both freed
 * here). In a cluster, a slot that moved since is followed, which may reuse any link: so every
 * reply of a pipeline is taken before the first of them is read here. Returns 1 with `rec`
 * filled, 0 when the key is not a session record (gone since the SCAN, or not a hash: someone
 * else's key), -1 when a link failed.
 */
static int parse_record(tlsc_ctlredis_t *r, const char *key, redisReply *fields, redisReply *ttl, record_t *rec, char *err,
                        size_t errlen)
{
    const char *argv[2 + NFIELDS], *targv[2] = {"TTL", key};
    size_t lens[2 + NFIELDS], tlens[2] = {3, strlen(key)};
    int any = 0;

    hmget_args(key, argv, lens);
    if ((fields = tlsc_ctlredis_follow(r, fields, (int)(2 + NFIELDS), argv, lens, err, errlen)) == NULL) {
        freeReplyObject(ttl);
        return -1;
    }
    if ((ttl = tlsc_ctlredis_follow(r, ttl, 2, targv, tlens, err, errlen)) == NULL) {
        freeReplyObject(fields);
        return -1;
    }
    memset(rec, 0, sizeof(*rec));
    rec->ttl = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -2;
    if (fields->type == REDIS_REPLY_ARRAY && fields->elements == NFIELDS) {
        for (size_t i = 0; i < NFIELDS; i++) {
            const redisReply *v = fields->element[i];
            if (v->type == REDIS_REPLY_STRING && v->len > 0) {
                tlsc_ctl_printable(rec->vals[i], sizeof(rec->vals[i]), v->str, v->len, FIELD_SHOW);
                rec->have[i] = 1;
                any = 1;
            } else {
                snprintf(rec->vals[i], sizeof(rec->vals[i]), "-");
            }
        }
    } else {
        rec->ttl = -2; /* WRONGTYPE: not a record */
    }
    freeReplyObject(fields);
    freeReplyObject(ttl);
    return any && rec->ttl != -2;
}

/* Takes the two replies ask_record queued, as they are: 0, or -1 when the link failed. */
static int take_replies(tlsc_ctlredis_t *r, redisReply **fields, redisReply **ttl, char *err, size_t errlen)
{
    if ((*fields = tlsc_ctlredis_reply(r, err, errlen)) == NULL)
        return -1;
    if ((*ttl = tlsc_ctlredis_reply(r, err, errlen)) == NULL) {
        freeReplyObject(*fields);
        *fields = NULL;
        return -1;
    }
    return 0;
}

/* The readable fields and TTL of `key`, on the node that holds it: 1, 0 when it is not a session record, -1 on error. */
static int read_record(tlsc_ctlredis_t *r, const char *key, record_t *rec, char *err, size_t errlen)
{
    tlsc_ctlredis_t *node = tlsc_ctlredis_for_key(r, key, strlen(key));

    redisReply *fields, *ttl;

    if (ask_record(node, key, err, errlen) != 0 || take_replies(node, &fields, &ttl, err, errlen) != 0)
        return -1;
    return parse_record(node, key, fields, ttl, rec, err, errlen);
}

static const char *field(const record_t *rec, const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(FIELDS[i], name) == 0)
            return rec->have[i] ? rec->vals[i] : NULL;
    return NULL;
}

/* Does the record pass --sni and --node? Compared exactly, on the printable form (names are ASCII). */
static int matches(const tlsc_ctl_t *c, const record_t *rec)
{
    const char *sni = field(rec, "sni"), *node = field(rec, "node");

    if (c->sni != NULL && (sni == NULL || strcmp(sni, c->sni) != 0))
        return 0;
    if (c->node != NULL && (node == NULL || strcmp(node, c->node) != 0))
        return 0;
    return 1;
}

/* ---------------------------------------------------------------- walking the keys */

/*
 * `r` is the link of the master the key was found on; `rec` is NULL when the walk was asked not
 * to read records; `key` lives until the step's flush.
 */
typedef int (*visit_fn)(tlsc_ctlredis_t *r, const tlsc_ctl_t *c, const char *key, const char *id, const record_t *rec, void *data);
/* Called once after the visits of each SCAN step, with that master's link (0 or -1). */
typedef int (*flush_fn)(tlsc_ctlredis_t *r, const tlsc_ctl_t *c, void *data);

/* The session ID of a key under <prefix>:sess: that is ours (lowercase hex), or -1. */
static int key_id(const redisReply *k, size_t plen, char id[ID_HEX_MAX + 1])
{
    if (k->type != REDIS_REPLY_STRING || k->len <= plen || k->len >= KEY_MAX || memchr(k->str, '\0', k->len) != NULL)
        return -1;
    if (parse_id(k->str + plen, id) != 0 || strcmp(id, k->str + plen) != 0)
        return -1;
    return 0;
}

typedef struct {
    const tlsc_ctl_t *c;
    int read;
    visit_fn visit;
    flush_fn flush;
    void *data;
    size_t plen;
    record_t *recs; /* SCAN_BATCH_MAX of them, with `read` */
    int got[SCAN_BATCH_MAX];
    redisReply *raw[SCAN_BATCH_MAX][2]; /* a step's HMGET and TTL replies, taken before any is read */
    char *err;
    size_t errlen;
} walk_t;

/*
 * One SCAN step on one master. With `read`, the step's records are read in one pipeline (HMGET
 * + TTL per key, one round trip for the batch) and every reply is taken before the first visit,
 * so a visit's own commands (DEL, PUBLISH) never meet a queued read's reply.
 */
static int walk_step(tlsc_ctlredis_t *r, const redisReply *keys, void *data)
{
    walk_t *w = data;
    char id[ID_HEX_MAX + 1];
    int rc = 0;
    size_t i;

    for (i = 0; w->read && i < keys->elements && rc == 0; i++)
        if (key_id(keys->element[i], w->plen, id) == 0)
            rc = ask_record(r, keys->element[i]->str, w->err, w->errlen);
    memset(w->raw, 0, sizeof(w->raw));
    for (i = 0; w->read && i < keys->elements && rc == 0; i++)
        if (key_id(keys->element[i], w->plen, id) == 0)
            rc = take_replies(r, &w->raw[i][0], &w->raw[i][1], w->err, w->errlen);
    for (i = 0; w->read && i < keys->elements; i++) {
        w->got[i] = 0;
        if (rc == 0 && w->raw[i][0] != NULL &&
            (w->got[i] = parse_record(r, keys->element[i]->str, w->raw[i][0], w->raw[i][1], &w->recs[i], w->err, w->errlen)) < 0)
            rc = -1;
        else if (rc != 0) { /* a link failed: drop what was taken */
            freeReplyObject(w->raw[i][0]);
            freeReplyObject(w->raw[i][1]);
        }
    }
    for (i = 0; i < keys->elements && rc == 0; i++)
        if (key_id(keys->element[i], w->plen, id) == 0 && (!w->read || w->got[i] == 1))
            rc = w->visit(r, w->c, keys->element[i]->str, id, w->read ? &w->recs[i] : NULL, w->data);
    if (rc >= 0 && w->flush != NULL && w->flush(r, w->c, w->data) != 0)
        rc = -1;
    return rc;
}

/*
 * SCANs <prefix>:sess:* on every master and calls `visit` for each key whose ID is lowercase
 * hex (anything else under the prefix is not ours and is skipped); with `read`, keys that are
 * not session records are skipped too. `visit` returns 0 to go on, 1 to stop, -1 on error.
 * Redis may return a key twice during a SCAN; callers count what they did, not what they saw.
 */
static int walk(tlsc_ctlredis_t *r, const tlsc_ctl_t *c, int read, visit_fn visit, flush_fn flush, void *data, char *err,
                size_t errlen)
{
    char pattern[KEY_MAX];
    walk_t w = {.c = c, .read = read, .visit = visit, .flush = flush, .data = data, .err = err, .errlen = errlen};
    int rc;

    if (read && (w.recs = calloc(SCAN_BATCH_MAX, sizeof(*w.recs))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w.plen = (size_t)snprintf(pattern, sizeof(pattern), "%s:sess:", c->prefix);
    snprintf(pattern + w.plen, sizeof(pattern) - w.plen, "*");
    rc = tlsc_ctlredis_scan(r, pattern, walk_step, &w, err, errlen);
    free(w.recs);
    return rc < 0 ? -1 : 0;
}

void tlsc_ctl_redis_options(const tlsc_ctl_t *c, tlsc_ctlredis_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->url = c->redis_url;
    o->pass_file = c->redis_pass_file;
    o->env_pass = c->redis_pass_env;
    o->sentinel_pass_file = c->redis_sentinel_pass_file;
    o->env_sentinel_pass = c->redis_sentinel_pass_env;
    o->sentinel_user = c->redis_sentinel_user;
    o->ca_file = c->redis_ca;
    o->cert_file = c->redis_cert;
    o->key_file = c->redis_key;
    o->timeout_ms = c->timeout_ms;
}

int tlsc_ctl_redis_connect(const tlsc_ctl_t *c, tlsc_ctlredis_t **r)
{
    tlsc_ctlredis_options_t o;
    char err[640];

    tlsc_ctl_redis_options(c, &o);
    if (tlsc_ctlredis_connect(&o, r, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-ctl: %s\n", err);
        return -1;
    }
    return 0;
}

static void print_ttl(char *out, size_t outlen, long long ttl)
{
    if (ttl >= 0)
        snprintf(out, outlen, "%lld", ttl);
    else
        snprintf(out, outlen, ttl == -1 ? "none" : "gone");
}

/* ---------------------------------------------------------------- list */

typedef struct {
    unsigned shown;
    char err[512];
} list_state_t;

static int list_one(tlsc_ctlredis_t *r, const tlsc_ctl_t *c, const char *key, const char *id, const record_t *rec, void *data)
{
    list_state_t *st = data;
    char ttl[24];

    if (!matches(c, rec))
        return 0;
    print_ttl(ttl, sizeof(ttl), rec->ttl);
    printf("%-64s %6s %-8s %-24s %-24s %-10s %-12s %6s %s\n", id, ttl, rec->vals[0], rec->vals[1], rec->vals[2], rec->vals[3],
           rec->vals[4], rec->vals[5], rec->vals[6]);
    return ++st->shown >= c->limit;
}

int tlsc_ctl_sessions_list(const tlsc_ctl_t *c)
{
    tlsc_ctlredis_t *r;
    list_state_t st = {0, ""};

    if (tlsc_ctl_redis_connect(c, &r) != 0)
        return TLSC_EXIT_FAILURE;
    printf("%-64s %6s %-8s %-24s %-24s %-10s %-12s %6s %s\n", "ID", "TTL", "PROTO", "CIPHER", "SNI", "ALPN", "NODE", "WORKER",
           "CREATED");
    if (walk(r, c, 1, list_one, NULL, &st, st.err, sizeof(st.err)) != 0) {
        fprintf(stderr, "tlscache-ctl: sessions list: %s\n", st.err);
        tlsc_ctlredis_free(r);
        return TLSC_EXIT_FAILURE;
    }
    printf("%u session%s shown%s\n", st.shown, st.shown == 1 ? "" : "s",
           st.shown >= c->limit ? " (--limit reached; there may be more)" : "");
    tlsc_ctlredis_free(r);
    return TLSC_EXIT_OK;
}

/* ---------------------------------------------------------------- show */

/*
 * What sealed the record, from the header of its `der` field (docs/protocol.md): 'S', version,
 * then the 16-byte key name, shown as the daemon's tag; or 'P' for a plain record. Only these
 * first bytes are looked at, and the copy of the field is wiped.
 */
static void describe_record(tlsc_ctlredis_t *r, const char *key, char *out, size_t outlen)
{
    const char *argv[3] = {"HGET", key, "der"};
    size_t lens[3] = {4, strlen(key), 3};
    char err[256], tag[9];
    redisReply *reply = tlsc_ctlredis_key_command(r, key, strlen(key), 3, argv, lens, err, sizeof(err));
    const unsigned char *p;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len < 1) {
        snprintf(out, outlen, "none");
    } else if ((p = (const unsigned char *)reply->str)[0] == 'P') {
        snprintf(out, outlen, "plain (%zu bytes)", reply->len);
    } else if (p[0] == 'S' && reply->len >= 2 + TLSC_KEYPROTO_NAME_LEN) {
        if (memcmp(p + 2, FALLBACK_TAG, strlen(FALLBACK_TAG)) == 0) {
            uint64_t day = 0;
            for (size_t i = strlen(FALLBACK_TAG); i < TLSC_KEYPROTO_NAME_LEN; i++)
                day = day << 8 | p[2 + i];
            snprintf(out, outlen, "sealed, version %u, under the fallback key of day %llu (%zu bytes)", (unsigned)p[1],
                     (unsigned long long)day, reply->len);
        } else {
            tlsc_keyproto_name_tag(p + 2, tag);
            snprintf(out, outlen, "sealed, version %u, under daemon key %s (%zu bytes)", (unsigned)p[1], tag, reply->len);
        }
    } else {
        snprintf(out, outlen, "unknown format (%zu bytes)", reply->len);
    }
    if (reply != NULL) {
        if (reply->type == REDIS_REPLY_STRING)
            OPENSSL_cleanse(reply->str, reply->len);
        freeReplyObject(reply);
    }
}

static int key_of(const tlsc_ctl_t *c, char key[KEY_MAX], char id[ID_HEX_MAX + 1])
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (parse_id(c->id, id) != 0) {
        fprintf(stderr, "tlscache-ctl: session ID %s: expected 2..64 hex digits (as `sessions list` shows)\n",
                tlsc_opts_quote(q, c->id));
        return -1;
    }
    snprintf(key, KEY_MAX, "%s:sess:%s", c->prefix, id);
    return 0;
}

int tlsc_ctl_sessions_show(const tlsc_ctl_t *c)
{
    char key[KEY_MAX], id[ID_HEX_MAX + 1], err[512], ttl[24], what[160], when[32];
    tlsc_ctlredis_t *r;
    record_t rec;
    int rc;

    if (key_of(c, key, id) != 0)
        return TLSC_EXIT_USAGE;
    if (tlsc_ctl_redis_connect(c, &r) != 0)
        return TLSC_EXIT_FAILURE;
    if ((rc = read_record(r, key, &rec, err, sizeof(err))) <= 0) {
        if (rc < 0)
            fprintf(stderr, "tlscache-ctl: sessions show: %s\n", err);
        else
            fprintf(stderr, "tlscache-ctl: sessions show: no session %s (key %s)\n", id, key);
        tlsc_ctlredis_free(r);
        return TLSC_EXIT_FAILURE;
    }
    print_ttl(ttl, sizeof(ttl), rec.ttl);
    describe_record(r, key, what, sizeof(what));
    printf("id        %s\nkey       %s\nttl       %s\n", id, key, ttl);
    for (size_t i = 0; i < NFIELDS; i++) {
        uint64_t t;
        if (strcmp(FIELDS[i], "created") == 0 && rec.have[i] && tlsc_parse_uint(rec.vals[i], 0, UINT32_MAX, &t) == 0) {
            tlsc_ctl_time(when, sizeof(when), t);
            printf("%-9s %s (%s)\n", FIELDS[i], rec.vals[i], when);
        } else {
            printf("%-9s %s\n", FIELDS[i], rec.vals[i]);
        }
    }
    printf("record    %s\n", what);
    tlsc_ctlredis_free(r);
    return TLSC_EXIT_OK;
}

/* ---------------------------------------------------------------- revoke */

typedef struct {
    unsigned long long matched, deleted;
    const char *pending[SCAN_BATCH_MAX]; /* matched keys of this SCAN step, in its reply */
    int gone[SCAN_BATCH_MAX];
    redisReply *dels[SCAN_BATCH_MAX]; /* a step's DEL replies, all taken before any redirect is followed */
    size_t npending;
    char channel[KEY_MAX];
    char err[512];
} revoke_state_t;

/*
 * Deletes the keys matched in one SCAN step on `r`, the master they were found on, and
 * announces each one DEL removed: one pipeline of DELs, then one of PUBLISHes, so a step costs
 * two round trips whatever its size. A PUBLISH in a cluster reaches every node, so each key is
 * published once, from where it was deleted. With --all nothing is published here (one "*"
 * follows the walk). Counts only what DEL removed.
 */
static int revoke_batch(tlsc_ctlredis_t *r, const tlsc_ctl_t *c, void *data)
{
    revoke_state_t *st = data;
    size_t n = st->npending, published = 0;
    int rc = 0;

    st->npending = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *argv[2] = {"DEL", st->pending[i]};
        size_t lens[2] = {3, strlen(st->pending[i])};
        rc = tlsc_ctlredis_append(r, 2, argv, lens, st->err, sizeof(st->err));
    }
    memset(st->dels, 0, sizeof(st->dels));
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((st->dels[i] = tlsc_ctlredis_reply(r, st->err, sizeof(st->err))) == NULL)
            rc = -1;
    for (size_t i = 0; i < n; i++) {
        const char *argv[2] = {"DEL", st->pending[i]};
        size_t lens[2] = {3, strlen(st->pending[i])};
        redisReply *reply = st->dels[i];
        /* In a cluster, a slot that moved since the SCAN: the DEL goes to the node that has it now. */
        if (rc != 0 || (reply = tlsc_ctlredis_follow(r, reply, 2, argv, lens, st->err, sizeof(st->err))) == NULL) {
            freeReplyObject(rc != 0 ? reply : NULL);
            rc = -1;
            continue;
        }
        st->gone[i] = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
        st->deleted += (unsigned long long)st->gone[i];
        freeReplyObject(reply);
    }
    for (size_t i = 0; i < n && rc == 0 && !c->all; i++) {
        if (!st->gone[i])
            continue;
        const char *argv[3] = {"PUBLISH", st->channel, st->pending[i]};
        size_t lens[3] = {7, strlen(st->channel), strlen(st->pending[i])};
        if ((rc = tlsc_ctlredis_append(r, 3, argv, lens, st->err, sizeof(st->err))) == 0)
            published++;
    }
    for (size_t i = 0; i < published && rc == 0; i++) {
        redisReply *reply = tlsc_ctlredis_reply(r, st->err, sizeof(st->err));
        if (reply == NULL)
            rc = -1;
        freeReplyObject(reply);
    }
    return rc;
}

/* Queues `key` for revoke_batch (--dry-run only counts it). */
static int revoke_one(tlsc_ctlredis_t *r, const tlsc_ctl_t *c, const char *key, const char *id, const record_t *rec, void *data)
{
    revoke_state_t *st = data;

    if (rec != NULL && !matches(c, rec)) /* --all reads no record */
        return 0;
    st->matched++;
    if (!c->dry_run)
        st->pending[st->npending++] = key; /* at most one per key of the step: <= SCAN_BATCH_MAX */
    return 0;
}

int tlsc_ctl_sessions_revoke(const tlsc_ctl_t *c)
{
    char key[KEY_MAX], id[ID_HEX_MAX + 1];
    tlsc_ctlredis_t *r;
    revoke_state_t st;
    int rc;

    memset(&st, 0, sizeof(st));
    snprintf(st.channel, sizeof(st.channel), "%s" REVOKED, c->prefix);
    if (c->id != NULL && key_of(c, key, id) != 0)
        return TLSC_EXIT_USAGE;
    if (tlsc_ctl_redis_connect(c, &r) != 0)
        return TLSC_EXIT_FAILURE;
    if (c->id != NULL) {
        const char *argv[2] = {"EXISTS", key};
        size_t lens[2] = {6, strlen(key)};
        redisReply *reply = tlsc_ctlredis_key_command(r, key, strlen(key), 2, argv, lens, st.err, sizeof(st.err));
        rc = reply == NULL ? -1 : 0;
        if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
            st.matched = 1;
            if (!c->dry_run) {
                st.pending[st.npending++] = key;
                rc = revoke_batch(tlsc_ctlredis_for_key(r, key, strlen(key)), c, &st);
            }
        } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            tlsc_ctl_printable_text(st.err, sizeof(st.err), reply->str, reply->len, 120);
            rc = -1;
        }
        freeReplyObject(reply);
    } else {
        rc = walk(r, c, !c->all, revoke_one, revoke_batch, &st, st.err, sizeof(st.err));
    }
    if (rc == 0 && c->all && !c->dry_run) {
        const char *argv[3] = {"PUBLISH", st.channel, "*"};
        size_t lens[3] = {7, strlen(st.channel), 1};
        redisReply *reply = tlsc_ctlredis_command(r, 3, argv, lens, st.err, sizeof(st.err));
        rc = reply == NULL ? -1 : 0;
        freeReplyObject(reply);
    }
    if (c->dry_run)
        printf("%llu session%s would be revoked (dry run: nothing deleted)\n", st.matched, st.matched == 1 ? "" : "s");
    else
        printf("%llu session%s revoked\n", st.deleted, st.deleted == 1 ? "" : "s");
    if (rc != 0)
        fprintf(stderr, "tlscache-ctl: sessions revoke: %s (stopped; the count above is what was done)\n", st.err);
    tlsc_ctlredis_free(r);
    return rc == 0 ? TLSC_EXIT_OK : TLSC_EXIT_FAILURE;
}
