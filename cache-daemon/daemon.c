/* This file's one job: the daemon's key window, its rotation, and pushing it to every worker. */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "addr.h"
#include "keylink.h"
#include "log.h"
#include "util.h"

#define TICK_MS  250
#define HISTORY  256  /* fingerprints of past keys, to refuse a repeat */
#define BACKLOG  1024 /* a burst of connections waits in the kernel rather than being dropped */
#define ADDR_LEN 48   /* an IPv6 address as text, or "unix" */

/* Restart grace period: key sets reported by workers, grouped by lineage (docs/keys.md). */
#define MAX_CANDIDATES    8  /* distinct lineages remembered */
#define MAX_WITNESSES     32 /* distinct source addresses remembered per lineage */
#define LINEAGES_PER_ADDR 2  /* one address can put forward at most this many lineages */

typedef enum {
    CONN_HANDSHAKE, /* TLS handshake, then the worker's HELLO */
    CONN_OPEN,
    CONN_CLOSING,
} conn_state_t;

typedef struct conn_s {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct conn_s *next, *prev;
    tlsc_daemon_t *d;
    tlsc_keylink_t *kl; /* TLS + frames on h (which is first: the close callback finds us by it) */
    conn_state_t state;
    uint64_t deadline_ms; /* handshake deadline, then idle deadline */
    uint64_t since_ms;    /* accepted at */
    uint64_t acked_epoch;
    uint32_t worker;
    int answered_control; /* a control link (tlscache-ctl) gets one answer, then only its close */
    char node[TLSC_KEYPROTO_MAX_NODE + 1];
    char peer[64];
    char addr[ADDR_LEN]; /* the source's bucket (tlsc_addr_bucket), no port: the unit of fairness and of witness */
} conn_t;

/* One lineage offered during the grace period: a key set and who reported it. */
typedef struct {
    tlsc_keyproto_keyset_t set; /* the highest-epoch report of this lineage, filtered */
    unsigned char lineage[32];  /* SHA-256 of its anchor key's name and secret */
    char addrs[MAX_WITNESSES][ADDR_LEN];
    size_t naddrs;  /* distinct source addresses that reported it */
    unsigned links; /* HELLOs that reported it */
} candidate_t;

/* Keys and their history live in one locked, non-dumpable mapping. */
typedef struct {
    tlsc_keyproto_keyset_t window; /* roles are recomputed when sent */
    tlsc_keyproto_keyset_t scratch;
    candidate_t cand[MAX_CANDIDATES];
    size_t ncand;
    unsigned char seen[HISTORY][32]; /* SHA-256 of past secrets and names */
    size_t seen_count, seen_next;
} vault_t;

typedef struct {
    uint64_t last_ms;
    unsigned suppressed;
} ratelimit_t;

struct tlsc_daemon_s {
    uv_loop_t *loop;
    tlsc_daemon_options_t o;
    char *node;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    int have_tcp, have_pipe;
    uv_timer_t timer;
    tlsc_keyproto_link_t *link;
    vault_t *vault;
    conn_t *conns;
    size_t nconns;   /* all links */
    size_t npending; /* ... of which not authenticated yet (TLS handshake, then HELLO) */
    size_t window_max;
    uint64_t grace_max_epoch; /* highest acceptable epoch reported during the grace period */
    int pending_handles, closing;
    uint64_t grace_until_ms; /* 0 once the window is decided */
    uint64_t epoch;
    tlsc_daemon_stats_t stats;
    ratelimit_t rl_auth, rl_proto, rl_evict, rl_refused, rl_bounds;
    char *unix_path;
};

static void on_tick(uv_timer_t *t);
static void on_connection(uv_stream_t *server, int status);
static void on_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data);
static void on_link_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data);
static void on_conn_closed(uv_handle_t *h);
static void on_handle_closed(uv_handle_t *h);

/* ================================================================ helpers */

/* Returns non-zero when a line may be logged now; counts the rest. One line a second at most. */
static int ratelimit(ratelimit_t *rl, unsigned *suppressed)
{
    uint64_t now = tlsc_now_ms();

    if (now - rl->last_ms < 1000 && rl->last_ms != 0) {
        rl->suppressed++;
        return 0;
    }
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->last_ms = now;
    return 1;
}

static void fingerprint(const unsigned char *p, size_t len, unsigned char out[32])
{
    unsigned int n = 0;

    EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

static int seen_before(const vault_t *v, const unsigned char fp[32])
{
    for (size_t i = 0; i < v->seen_count; i++)
        if (CRYPTO_memcmp(v->seen[i], fp, 32) == 0)
            return 1;
    return 0;
}

static void remember(vault_t *v, const unsigned char fp[32])
{
    memcpy(v->seen[v->seen_next], fp, 32);
    v->seen_next = (v->seen_next + 1) % HISTORY;
    if (v->seen_count < HISTORY)
        v->seen_count++;
}

int tlsc_daemon_fresh_bytes(unsigned char out[32], const unsigned char (*seen)[32], size_t n)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        int bad = 0;
        if (RAND_priv_bytes(out, 32) != 1)
            return -1;
        unsigned char acc = 0;
        for (int i = 0; i < 32; i++)
            acc |= out[i];
        bad = acc == 0;
        for (size_t i = 0; i < n && !bad; i++)
            bad = CRYPTO_memcmp(seen[i], out, 32) == 0;
        if (!bad)
            return 0;
        tlsc_log_error("CSPRNG returned a zero or repeated key; retrying");
    }
    OPENSSL_cleanse(out, 32);
    return -1;
}

/* A new key: name and secret from the CSPRNG, checked against everything seen before. */
static int make_key(tlsc_daemon_t *d, uint64_t not_before, tlsc_keyproto_key_t *k)
{
    vault_t *v = d->vault;
    unsigned char fp[32], tmp[32];

    for (int attempt = 0; attempt < 4; attempt++) {
        if (tlsc_daemon_fresh_bytes(k->secret, NULL, 0) != 0 || tlsc_daemon_fresh_bytes(tmp, NULL, 0) != 0)
            break;
        memcpy(k->name, tmp, TLSC_KEYPROTO_NAME_LEN);
        OPENSSL_cleanse(tmp, sizeof(tmp));
        int repeat = 0;
        fingerprint(k->secret, sizeof(k->secret), fp);
        repeat |= seen_before(v, fp);
        unsigned char fpn[32];
        fingerprint(k->name, sizeof(k->name), fpn);
        repeat |= seen_before(v, fpn);
        for (size_t i = 0; i < v->window.count; i++)
            repeat |= memcmp(v->window.keys[i].name, k->name, TLSC_KEYPROTO_NAME_LEN) == 0;
        if (repeat) {
            tlsc_log_error("refusing a repeated key from the CSPRNG; retrying");
            continue;
        }
        remember(v, fp);
        remember(v, fpn);
        k->not_before = not_before;
        k->not_after = not_before + d->o.rotate_sec + d->o.ticket_lifetime_sec;
        k->role = TLSC_KEYPROTO_ROLE_NEXT;
        return 0;
    }
    OPENSSL_cleanse(k, sizeof(*k));
    return -1;
}

static void set_roles(tlsc_keyproto_keyset_t *set, uint64_t now)
{
    tlsc_keyproto_key_t *cur = NULL;

    for (size_t i = 0; i < set->count; i++) {
        tlsc_keyproto_key_t *k = &set->keys[i];
        if (k->not_before <= now && (cur == NULL || k->not_before > cur->not_before))
            cur = k;
    }
    for (size_t i = 0; i < set->count; i++) {
        tlsc_keyproto_key_t *k = &set->keys[i];
        k->role = k == cur              ? TLSC_KEYPROTO_ROLE_CURRENT
                  : k->not_before > now ? TLSC_KEYPROTO_ROLE_NEXT
                                        : TLSC_KEYPROTO_ROLE_PREVIOUS;
    }
}

/* ================================================================ window */

/*
 * Brings the window up to date: expired keys leave, and there is always a *next* key whose
 * not_before is at least the lead time away, so it reaches every worker before any worker
 * encrypts with it. Returns non-zero when the window changed.
 */
static int maintain_window(tlsc_daemon_t *d, uint64_t now)
{
    tlsc_keyproto_keyset_t *w = &d->vault->window;
    int changed = 0;

    for (size_t i = 0; i < w->count;) {
        if (w->keys[i].not_after <= now) {
            char tag[9];
            tlsc_keyproto_name_tag(w->keys[i].name, tag);
            tlsc_log_info("key %s expired", tag);
            OPENSSL_cleanse(&w->keys[i], sizeof(w->keys[i]));
            memmove(&w->keys[i], &w->keys[i + 1], (w->count - i - 1) * sizeof(w->keys[0]));
            OPENSSL_cleanse(&w->keys[w->count - 1], sizeof(w->keys[0]));
            w->count--;
            changed = 1;
        } else {
            i++;
        }
    }
    if (w->count == 0) {
        /* Nothing to inherit: the first key encrypts at once (no worker holds anything yet). */
        if (make_key(d, now, &w->keys[0]) != 0)
            return changed;
        w->count = 1;
        changed = 1;
    }
    /*
     * Rotation always proceeds: when the window is at its maximum (lifetime / rotate + a
     * margin), the key that expires first makes room, never the current one. Bounded: one
     * pass makes a next key, the second sees it.
     */
    for (int round = 0; round < 4; round++) {
        size_t li = 0;
        for (size_t i = 1; i < w->count; i++)
            if (w->keys[i].not_before > w->keys[li].not_before)
                li = i;
        if (w->keys[li].not_before > now)
            break; /* a next key exists */
        if (w->count >= d->window_max) {
            size_t oi = li == 0 ? 1 : 0;
            for (size_t i = 0; i < w->count; i++)
                if (i != li && w->keys[i].not_after < w->keys[oi].not_after)
                    oi = i;
            char tag[9];
            tlsc_keyproto_name_tag(w->keys[oi].name, tag);
            tlsc_log_warn("window full (%zu keys, max %zu): key %s dropped before it expired so rotation goes on", w->count,
                          d->window_max, tag);
            OPENSSL_cleanse(&w->keys[oi], sizeof(w->keys[oi]));
            memmove(&w->keys[oi], &w->keys[oi + 1], (w->count - oi - 1) * sizeof(w->keys[0]));
            OPENSSL_cleanse(&w->keys[w->count - 1], sizeof(w->keys[0]));
            w->count--;
            if (li > oi)
                li--;
            changed = 1;
        }
        const tlsc_keyproto_key_t *latest = &w->keys[li];
        uint64_t nb = latest->not_before + d->o.rotate_sec;
        if (nb < now + d->o.lead_sec)
            nb = now + d->o.lead_sec;
        if (make_key(d, nb, &w->keys[w->count]) != 0)
            break;
        char tag[9], cur[9];
        tlsc_keyproto_name_tag(w->keys[w->count].name, tag);
        tlsc_keyproto_name_tag(latest->name, cur);
        w->count++;
        d->stats.rotations++;
        tlsc_log_info("rotation: key %s current, key %s next in %llus", cur, tag, (unsigned long long)(nb - now));
        changed = 1;
    }
    return changed;
}

/* Frees the daemon once it is closing and libuv has closed its last handle. */
static void maybe_free(tlsc_daemon_t *d)
{
    if (!d->closing || d->pending_handles > 0)
        return;
    tlsc_keyproto_link_free(d->link);
    OPENSSL_cleanse(d->vault, sizeof(*d->vault));
    munlock(d->vault, sizeof(*d->vault));
    munmap(d->vault, sizeof(*d->vault));
    free(d->node);
    free(d->unix_path);
    free(d);
}

/* ================================================================ sending */

static void close_conn(conn_t *c)
{
    tlsc_daemon_t *d = c->d;

    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_HANDSHAKE)
        d->npending--;
    c->state = CONN_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    tlsc_keylink_free(c->kl); /* deferred when inside its callback */
    c->kl = NULL;
    uv_close(&c->h.handle, on_conn_closed);
}

static void send_msg(conn_t *c, const tlsc_keyproto_msg_t *m)
{
    if (c->state == CONN_CLOSING)
        return;
    if (tlsc_keylink_send(c->kl, m) != 0)
        close_conn(c);
}

static void send_error(conn_t *c, uint16_t code, const char *text)
{
    tlsc_keyproto_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_ERROR;
    m.u.error.code = code;
    snprintf(m.u.error.text, sizeof(m.u.error.text), "%s", text);
    send_msg(c, &m);
}

static void send_keyset(tlsc_daemon_t *d, conn_t *c)
{
    tlsc_keyproto_msg_t *m = malloc(sizeof(*m));

    if (m == NULL) {
        close_conn(c);
        return;
    }
    memset(m, 0, sizeof(*m));
    m->type = TLSC_KEYPROTO_KEYSET;
    m->u.keyset = d->vault->window;
    m->u.keyset.epoch = d->epoch;
    set_roles(&m->u.keyset, tlsc_wall_sec());
    send_msg(c, m);
    tlsc_keyproto_msg_wipe(m);
    free(m);
    d->stats.pushes++;
}

static void broadcast(tlsc_daemon_t *d)
{
    conn_t *c, *next;

    for (c = d->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_OPEN)
            send_keyset(d, c);
    }
}

/* The window changed: a new epoch, pushed to every open link. The epoch never wraps. */
static void publish(tlsc_daemon_t *d)
{
    if (d->epoch == UINT64_MAX) {
        tlsc_log_error("epoch %llu is the last one: not publishing (restart the daemon and its workers)",
                       (unsigned long long)d->epoch);
        return;
    }
    d->epoch++;
    d->stats.epoch = d->epoch;
    d->stats.keys = d->vault->window.count;
    broadcast(d);
}

/* ================================================================ bounds */

/*
 * The highest epoch a worker may report: one day of epochs above `wall-clock seconds x 1000`
 * (where every daemon starts), or our own epoch if that is higher. A HELLO above it comes from
 * a broken clock or from someone holding the cluster secret; following it would let one link
 * move the cluster's epoch anywhere, up to a wrap to 0.
 */
static uint64_t epoch_limit(const tlsc_daemon_t *d)
{
    uint64_t limit = tlsc_wall_sec() * 1000 + TLSC_DAEMON_EPOCH_AHEAD_MAX;

    return limit > d->epoch ? limit : d->epoch;
}

/*
 * Copies into `out` the unexpired keys of `in` that fit our window: alive at most rotate +
 * lifetime, and pushed at most one rotation (plus clock skew) before they encrypt. Returns how
 * many keys were refused.
 */
static size_t filter_keys(const tlsc_daemon_t *d, const tlsc_keyproto_keyset_t *in, uint64_t now, tlsc_keyproto_keyset_t *out)
{
    uint64_t life = (uint64_t)d->o.rotate_sec + d->o.ticket_lifetime_sec;
    uint64_t ahead = (uint64_t)d->o.rotate_sec + TLSC_DAEMON_SKEW_SEC;
    size_t refused = 0;

    memset(out, 0, sizeof(*out));
    out->epoch = in->epoch;
    for (size_t i = 0; i < in->count && i < TLSC_KEYPROTO_MAX_KEYS; i++) {
        const tlsc_keyproto_key_t *k = &in->keys[i];
        if (k->not_after <= now)
            continue;
        if (!tlsc_keyproto_key_bounded(k, now, life, ahead)) {
            refused++;
            continue;
        }
        out->keys[out->count++] = *k;
    }
    return refused;
}

/* ================================================================ restart grace */

/* A lineage is named by its anchor: the current key (latest not_before <= now), else the first next one. */
static void lineage_of(const tlsc_keyproto_keyset_t *set, uint64_t now, unsigned char out[32])
{
    const tlsc_keyproto_key_t *a = NULL;
    unsigned char buf[TLSC_KEYPROTO_NAME_LEN + TLSC_KEYPROTO_SECRET_LEN];

    for (size_t i = 0; i < set->count; i++) {
        const tlsc_keyproto_key_t *k = &set->keys[i];
        if (k->not_before <= now && (a == NULL || a->not_before > now || k->not_before > a->not_before))
            a = k;
        else if (k->not_before > now && (a == NULL || (a->not_before > now && k->not_before < a->not_before)))
            a = k;
    }
    memcpy(buf, a->name, TLSC_KEYPROTO_NAME_LEN);
    memcpy(buf + TLSC_KEYPROTO_NAME_LEN, a->secret, TLSC_KEYPROTO_SECRET_LEN);
    fingerprint(buf, sizeof(buf), out);
    OPENSSL_cleanse(buf, sizeof(buf));
}

static int witnessed(const candidate_t *cand, const char *addr)
{
    for (size_t i = 0; i < cand->naddrs; i++)
        if (strcmp(cand->addrs[i], addr) == 0)
            return 1;
    return 0;
}

/*
 * During the grace period after a start, workers' HELLOs carry the window of the daemon that
 * ran before us. Each report is filtered to the window's bounds and counted as a vote for its
 * lineage, one vote per source address: a node (or an attacker on it) opening many links does
 * not outvote the rest of the cluster, and one address can put forward at most two lineages.
 */
static void offer_candidate(tlsc_daemon_t *d, const conn_t *c, const tlsc_keyproto_keyset_t *held, uint64_t now)
{
    vault_t *v = d->vault;
    tlsc_keyproto_keyset_t *set = &v->scratch;
    candidate_t *cand = NULL;
    unsigned char fp[32];
    size_t refused = filter_keys(d, held, now, set);
    unsigned supp;

    if (refused > 0) {
        d->stats.keys_refused += refused;
        if (ratelimit(&d->rl_bounds, &supp))
            tlsc_log_warn("%s: worker %s/%u offered %zu keys outside the window's bounds (alive over --rotate + "
                          "--ticket-lifetime = %us, or starting over %us ahead); not adopted (%u similar suppressed)",
                          c->peer, c->node, (unsigned)c->worker, refused, d->o.rotate_sec + d->o.ticket_lifetime_sec,
                          d->o.rotate_sec + TLSC_DAEMON_SKEW_SEC, supp);
    }
    if (set->count == 0)
        goto out;
    lineage_of(set, now, fp);
    for (size_t i = 0; i < v->ncand && cand == NULL; i++)
        if (memcmp(v->cand[i].lineage, fp, sizeof(fp)) == 0)
            cand = &v->cand[i];
    if (cand == NULL) {
        size_t by_addr = 0;
        for (size_t i = 0; i < v->ncand; i++)
            by_addr += witnessed(&v->cand[i], c->addr);
        if (by_addr >= LINEAGES_PER_ADDR || v->ncand == MAX_CANDIDATES) {
            if (ratelimit(&d->rl_bounds, &supp))
                tlsc_log_warn("%s: worker %s/%u offers yet another key set (%s); ignored (%u similar suppressed)", c->peer, c->node,
                              (unsigned)c->worker,
                              by_addr >= LINEAGES_PER_ADDR ? "its address already offered two" : "eight already offered", supp);
            goto out;
        }
        cand = &v->cand[v->ncand++];
        memset(cand, 0, sizeof(*cand));
        memcpy(cand->lineage, fp, sizeof(fp));
        cand->set = *set;
    } else if (set->epoch > cand->set.epoch) {
        OPENSSL_cleanse(&cand->set, sizeof(cand->set));
        cand->set = *set;
    }
    cand->links++;
    if (!witnessed(cand, c->addr) && cand->naddrs < MAX_WITNESSES)
        snprintf(cand->addrs[cand->naddrs++], ADDR_LEN, "%s", c->addr);
out:
    OPENSSL_cleanse(set, sizeof(*set));
}

/* The lineage most addresses reported wins; then most links; then the highest epoch. */
static candidate_t *best_candidate(vault_t *v)
{
    candidate_t *best = NULL;

    for (size_t i = 0; i < v->ncand; i++) {
        candidate_t *c = &v->cand[i];
        if (best == NULL || c->naddrs > best->naddrs || (c->naddrs == best->naddrs && c->links > best->links) ||
            (c->naddrs == best->naddrs && c->links == best->links && c->set.epoch > best->set.epoch))
            best = c;
    }
    return best;
}

static void end_grace(tlsc_daemon_t *d)
{
    vault_t *v = d->vault;
    uint64_t now = tlsc_wall_sec();
    candidate_t *best = best_candidate(v);

    d->grace_until_ms = 0;
    if (best != NULL) {
        tlsc_keyproto_keyset_t *set = &best->set;
        /* At most the window's maximum, less one for a next key: the keys expiring first go. */
        while (set->count > 0 && set->count > d->window_max - 1) {
            size_t oi = 0;
            for (size_t i = 1; i < set->count; i++)
                if (set->keys[i].not_after < set->keys[oi].not_after)
                    oi = i;
            set->keys[oi] = set->keys[set->count - 1];
            OPENSSL_cleanse(&set->keys[set->count - 1], sizeof(set->keys[0]));
            set->count--;
        }
        for (size_t i = 0; i < set->count; i++) {
            const tlsc_keyproto_key_t *k = &set->keys[i];
            unsigned char fp[32];
            v->window.keys[v->window.count++] = *k;
            fingerprint(k->secret, sizeof(k->secret), fp);
            remember(v, fp);
            fingerprint(k->name, sizeof(k->name), fp);
            remember(v, fp);
        }
        if (set->epoch >= d->epoch)
            d->epoch = set->epoch;
        d->stats.adopted = 1;
        tlsc_log_info("adopted %zu keys (epoch %llu) reported by %zu addresses over %u links; %zu other key sets not adopted",
                      v->window.count, (unsigned long long)set->epoch, best->naddrs, best->links, v->ncand - 1);
        for (size_t i = 0; i < v->ncand; i++)
            if (&v->cand[i] != best)
                tlsc_log_warn("not adopted: a key set (epoch %llu, %zu keys) reported by %zu addresses (first %s) over %u links",
                              (unsigned long long)v->cand[i].set.epoch, v->cand[i].set.count, v->cand[i].naddrs,
                              v->cand[i].addrs[0], v->cand[i].links);
    } else {
        tlsc_log_info("no worker offered keys within the grace period: making fresh keys");
    }
    OPENSSL_cleanse(v->cand, sizeof(v->cand));
    v->ncand = 0;
    /* Every epoch a worker reported (and we accepted) is passed, so no push of ours is stale. */
    if (d->grace_max_epoch > d->epoch)
        d->epoch = d->grace_max_epoch;
    maintain_window(d, now);
    publish(d);
}

/* ================================================================ control (tlscache-ctl) */

/*
 * Brings the next rotation forward: the key that would become current next (pushed to every
 * worker when its predecessor became current) now starts at now + lead instead, so the new
 * times reach every worker at least the lead time before any worker encrypts with it: the
 * usual pre-distribution. Workers update a known key's times by name (server/tickets.c).
 * Returns 1 when the window changed, 0 when the next key already starts within the lead time.
 */
static int rotate_now(tlsc_daemon_t *d, uint64_t now)
{
    tlsc_keyproto_keyset_t *w = &d->vault->window;
    tlsc_keyproto_key_t *next = NULL;
    uint64_t nb = now + d->o.lead_sec;
    char tag[9];

    for (size_t i = 0; i < w->count; i++)
        if (w->keys[i].not_before > now && (next == NULL || w->keys[i].not_before < next->not_before))
            next = &w->keys[i];
    if (next == NULL || next->not_before <= nb)
        return 0;
    tlsc_keyproto_name_tag(next->name, tag);
    tlsc_log_info("control: rotation brought forward: key %s current in %us instead of %llus", tag, d->o.lead_sec,
                  (unsigned long long)(next->not_before - now));
    next->not_before = nb;
    next->not_after = nb + d->o.rotate_sec + d->o.ticket_lifetime_sec;
    return 1;
}

/* The window as tlscache-ctl shows it: key tags, never names or secrets; the first worker links. */
static void fill_status(const tlsc_daemon_t *d, tlsc_keyproto_status_t *st, uint8_t flags)
{
    const tlsc_keyproto_keyset_t *w = &d->vault->window;
    uint64_t now = tlsc_wall_sec();
    size_t cur = SIZE_MAX;

    memset(st, 0, sizeof(*st));
    st->epoch = d->epoch;
    st->now = now;
    st->rotate_sec = d->o.rotate_sec;
    st->lifetime_sec = d->o.ticket_lifetime_sec;
    st->lead_sec = d->o.lead_sec;
    st->flags = flags | (d->grace_until_ms != 0 ? TLSC_KEYPROTO_STATUS_GRACE : 0);
    if (d->grace_until_ms == 0) {
        for (size_t i = 0; i < w->count; i++)
            if (w->keys[i].not_before <= now && (cur == SIZE_MAX || w->keys[i].not_before > w->keys[cur].not_before))
                cur = i;
        for (size_t i = 0; i < w->count && i < TLSC_KEYPROTO_MAX_KEYS; i++) {
            tlsc_keyproto_status_key_t *k = &st->keys[st->nkeys++];
            tlsc_keyproto_name_tag_raw(w->keys[i].name, k->tag);
            k->role = i == cur                      ? TLSC_KEYPROTO_ROLE_CURRENT
                      : w->keys[i].not_before > now ? TLSC_KEYPROTO_ROLE_NEXT
                                                    : TLSC_KEYPROTO_ROLE_PREVIOUS;
            k->not_before = w->keys[i].not_before;
            k->not_after = w->keys[i].not_after;
        }
    }
    for (const conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c->state != CONN_OPEN)
            continue;
        if (st->nworkers < TLSC_KEYPROTO_STATUS_WORKERS) {
            tlsc_keyproto_status_worker_t *sw = &st->workers[st->nworkers++];
            snprintf(sw->node, sizeof(sw->node), "%s", c->node);
            sw->worker = c->worker;
            sw->acked_epoch = c->acked_epoch;
        }
        if (st->workers_total < UINT32_MAX)
            st->workers_total++;
    }
}

/*
 * A CONTROL request, which a link sends instead of HELLO. It is authenticated as every link
 * is, by the cluster secret (the PSK handshake is over before any message is read); a link
 * that said HELLO is a worker and may never send one (handle_msg refuses it). One request per
 * link: the answer is a STATUS, then the link waits for its peer's close (or the handshake
 * deadline).
 */
static void handle_control(tlsc_daemon_t *d, conn_t *c, const tlsc_keyproto_msg_t *m)
{
    tlsc_keyproto_msg_t *reply;
    uint8_t flags = 0;

    if (c->answered_control) {
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "one control request per link");
        close_conn(c);
        return;
    }
    c->answered_control = 1;
    if (m->u.op == TLSC_KEYPROTO_OP_ROTATE) {
        if (d->grace_until_ms != 0) {
            tlsc_log_warn("%s: control: rotate refused: still in the restart grace period", c->peer);
        } else {
            uint64_t now = tlsc_wall_sec();
            int changed = maintain_window(d, now);
            if (rotate_now(d, now)) {
                flags |= TLSC_KEYPROTO_STATUS_ROTATED;
                changed = 1;
            } else {
                tlsc_log_info("%s: control: rotate: the next key already starts within the lead time; nothing to do", c->peer);
            }
            if (changed)
                publish(d); /* a new epoch, pushed to every worker before the answer is built */
        }
    } else {
        tlsc_log_debug("%s: control: status", c->peer);
    }
    if ((reply = malloc(sizeof(*reply))) == NULL) {
        close_conn(c);
        return;
    }
    memset(reply, 0, sizeof(*reply));
    reply->type = TLSC_KEYPROTO_STATUS;
    fill_status(d, &reply->u.status, flags);
    send_msg(c, reply);
    free(reply);
}

/* ================================================================ messages */

static void handle_msg(tlsc_daemon_t *d, conn_t *c, const tlsc_keyproto_msg_t *m)
{
    tlsc_keyproto_msg_t reply;
    unsigned supp;

    memset(&reply, 0, sizeof(reply));
    if (m->type == TLSC_KEYPROTO_CONTROL) {
        if (c->state == CONN_HANDSHAKE) {
            handle_control(d, c, m);
            return;
        }
        /* A worker link is not a control link, whatever secret it holds. */
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: worker %s/%u sent a control request; dropped (%u similar suppressed)", c->peer, c->node,
                          (unsigned)c->worker, supp);
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "workers do not send control requests");
        close_conn(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE && c->answered_control) {
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "a control link does not become a worker");
        close_conn(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE && m->type != TLSC_KEYPROTO_HELLO) {
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "HELLO first");
        close_conn(c);
        return;
    }
    switch (m->type) {
    case TLSC_KEYPROTO_HELLO: {
        if (c->state != CONN_HANDSHAKE) {
            send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "HELLO twice");
            close_conn(c);
            return;
        }
        unsigned v = m->u.hello.version_max < TLSC_KEYPROTO_VERSION ? m->u.hello.version_max : TLSC_KEYPROTO_VERSION;
        if (v < m->u.hello.version_min || v < TLSC_KEYPROTO_VERSION_MIN) {
            if (ratelimit(&d->rl_proto, &supp))
                tlsc_log_warn("%s: no common protocol version (%u..%u)", c->peer, (unsigned)m->u.hello.version_min,
                              (unsigned)m->u.hello.version_max);
            send_error(c, TLSC_KEYPROTO_ERR_VERSION, "no common protocol version");
            close_conn(c);
            return;
        }
        uint64_t reported = m->u.hello.held.epoch;
        if (reported > epoch_limit(d)) {
            d->stats.epochs_refused++;
            if (ratelimit(&d->rl_proto, &supp))
                tlsc_log_warn("%s: worker %s/%u reports epoch %llu, more than a day ahead of ours (%llu); refused (%u similar "
                              "suppressed)",
                              c->peer, m->u.hello.node, (unsigned)m->u.hello.worker, (unsigned long long)reported,
                              (unsigned long long)d->epoch, supp);
            send_error(c, TLSC_KEYPROTO_ERR_LIMIT, "reported epoch is far ahead of the daemon's; refused");
            close_conn(c);
            return;
        }
        if (d->nconns - d->npending >= d->o.max_conns) {
            if (ratelimit(&d->rl_proto, &supp))
                tlsc_log_warn("%s: refused: %zu worker links open (max %u) (%u similar suppressed)", c->peer,
                              d->nconns - d->npending, d->o.max_conns, supp);
            send_error(c, TLSC_KEYPROTO_ERR_LIMIT, "too many worker links");
            close_conn(c);
            return;
        }
        c->state = CONN_OPEN;
        d->npending--;
        c->worker = m->u.hello.worker;
        snprintf(c->node, sizeof(c->node), "%s", m->u.hello.node);
        c->deadline_ms = tlsc_now_ms() + d->o.idle_timeout_ms;
        tlsc_log_info("%s: worker %s/%u connected, holds %zu keys (epoch %llu)", c->peer, c->node, (unsigned)c->worker,
                      m->u.hello.held.count, (unsigned long long)m->u.hello.held.epoch);
        reply.type = TLSC_KEYPROTO_HELLO;
        reply.u.hello.version_min = reply.u.hello.version_max = (uint16_t)v;
        snprintf(reply.u.hello.node, sizeof(reply.u.hello.node), "%s", d->node);
        send_msg(c, &reply);
        if (v >= 2) {
            /* Protocol 2: tell the worker our window, so it can bound the keys it accepts. */
            memset(&reply, 0, sizeof(reply));
            reply.type = TLSC_KEYPROTO_WINDOW;
            reply.u.window.rotate_sec = d->o.rotate_sec;
            reply.u.window.lifetime_sec = d->o.ticket_lifetime_sec;
            reply.u.window.lead_sec = d->o.lead_sec;
            send_msg(c, &reply);
        }
        if (d->grace_until_ms != 0) {
            if (reported > d->grace_max_epoch)
                d->grace_max_epoch = reported;
            offer_candidate(d, c, &m->u.hello.held, tlsc_wall_sec());
            return; /* the window is pushed when the grace period ends */
        }
        if (reported >= d->epoch) {
            /* A worker that saw a later epoch than ours (within bounds): move past it so our pushes count. */
            tlsc_log_info("%s: worker %s/%u applied epoch %llu, ours is %llu: moving past it", c->peer, c->node,
                          (unsigned)c->worker, (unsigned long long)reported, (unsigned long long)d->epoch);
            d->epoch = reported;
            publish(d);
            return;
        }
        send_keyset(d, c);
        return;
    }
    case TLSC_KEYPROTO_ACK:
        if (m->u.epoch > d->epoch) {
            send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "ACK of an epoch never sent");
            close_conn(c);
            return;
        }
        c->acked_epoch = m->u.epoch;
        d->stats.acks++;
        return;
    case TLSC_KEYPROTO_PING:
        reply.type = TLSC_KEYPROTO_PONG;
        reply.u.nonce = m->u.nonce;
        send_msg(c, &reply);
        return;
    case TLSC_KEYPROTO_PONG:
        return;
    case TLSC_KEYPROTO_ERROR:
        /* A worker that will not apply our push says so (it used to ACK a stale one silently). */
        if (m->u.error.code == TLSC_KEYPROTO_ERR_STALE || m->u.error.code == TLSC_KEYPROTO_ERR_REFUSED) {
            d->stats.refused_by_workers++;
            if (ratelimit(&d->rl_refused, &supp))
                tlsc_log_warn("%s: worker %s/%u refused our key set (epoch %llu) as %s: %s (%u similar suppressed)", c->peer,
                              c->node, (unsigned)c->worker, (unsigned long long)d->epoch,
                              m->u.error.code == TLSC_KEYPROTO_ERR_STALE ? "stale" : "invalid", m->u.error.text, supp);
        } else {
            tlsc_log_warn("%s: worker %s/%u says error %u: %s", c->peer, c->node, (unsigned)c->worker, (unsigned)m->u.error.code,
                          m->u.error.text);
        }
        close_conn(c);
        return;
    default: /* a KEYSET or a WINDOW: workers push nothing */
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: unexpected message type %d from a worker; dropped (%u similar suppressed)", c->peer, (int)m->type,
                          supp);
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, "workers do not push keys");
        close_conn(c);
        return;
    }
}

static void on_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data)
{
    conn_t *c = data;

    if (c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_OPEN)
        c->deadline_ms = tlsc_now_ms() + c->d->o.idle_timeout_ms;
    handle_msg(c->d, c, m);
}

/* A peer without the secret, or with garbage, is counted, logged at a rate limit and dropped. */
static void on_link_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data)
{
    conn_t *c = data;
    tlsc_daemon_t *d = c->d;
    unsigned supp;

    if (c->state == CONN_CLOSING)
        return;
    switch (where) {
    case TLSC_KEYLINK_READ:
        if (c->state == CONN_OPEN)
            tlsc_log_info("%s: worker %s/%u disconnected%s%s", c->peer, c->node, (unsigned)c->worker, code == UV_EOF ? "" : ": ",
                          code == UV_EOF ? "" : uv_strerror(code));
        break;
    case TLSC_KEYLINK_WRITE:
        break;
    case TLSC_KEYLINK_TLS:
        if (code == TLSC_KEYPROTO_EAUTH) {
            d->stats.auth_failed++;
            if (ratelimit(&d->rl_auth, &supp))
                tlsc_log_warn("%s: TLS handshake failed (wrong secret or not our protocol): %s; dropped (%u similar suppressed)",
                              c->peer, tlsc_keylink_reason(kl), supp);
            break;
        }
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: %s; dropped (%u similar suppressed)", c->peer, tlsc_keylink_strerror(where, code), supp);
        break;
    case TLSC_KEYLINK_FRAME:
        d->stats.protocol_errors++;
        if (ratelimit(&d->rl_proto, &supp))
            tlsc_log_warn("%s: bad frame: %s; dropped (%u similar suppressed)", c->peer, tlsc_keylink_strerror(where, code), supp);
        send_error(c, TLSC_KEYPROTO_ERR_PROTOCOL, tlsc_keylink_strerror(where, code));
        break;
    }
    close_conn(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = (conn_t *)h;
    tlsc_daemon_t *d = c->d;

    free(c);
    d->pending_handles--;
    maybe_free(d);
}

static void peer_name(conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[46];

    if (c->h.handle.type == UV_NAMED_PIPE) {
        snprintf(c->peer, sizeof(c->peer), "unix peer");
        snprintf(c->addr, sizeof(c->addr), "unix");
        return;
    }
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(c->peer, sizeof(c->peer), "tcp peer");
        snprintf(c->addr, sizeof(c->addr), "tcp");
        return;
    }
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    /* Fairness and witness go by bucket: an IPv6 /64 is one peer, a mapped IPv4 address is IPv4. */
    if (tlsc_addr_bucket((struct sockaddr *)&ss, c->addr, sizeof(c->addr)) != 0)
        snprintf(c->addr, sizeof(c->addr), "%s", host);
}

/* ================================================================ unauthenticated links */

/* Unauthenticated links from `addr`, not counting `except`. */
static size_t pending_from(const tlsc_daemon_t *d, const char *addr, const conn_t *except)
{
    size_t n = 0;

    for (const conn_t *c = d->conns; c != NULL; c = c->next)
        n += c != except && c->state == CONN_HANDSHAKE && strcmp(c->addr, addr) == 0;
    return n;
}

/* The source address with the most unauthenticated links (a scan of at most max_pending links). */
static const char *heaviest_addr(const tlsc_daemon_t *d, const conn_t *except)
{
    const char *best = NULL;
    size_t best_n = 0;

    for (const conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c == except || c->state != CONN_HANDSHAKE)
            continue;
        size_t n = pending_from(d, c->addr, except);
        if (n > best_n) {
            best = c->addr;
            best_n = n;
        }
    }
    return best;
}

/*
 * Whether a link has sent anything: bytes read already, or waiting in the socket (a worker
 * sends its ClientHello at once, so it has spoken by the time a burst of accepts reaches it).
 */
static int has_spoken(const conn_t *c)
{
    uv_os_fd_t fd;
    char b;

    if (c->kl != NULL && tlsc_keylink_bytes_in(c->kl) > 0)
        return 1;
    if (uv_fileno(&c->h.handle, &fd) != 0)
        return 0;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Among unauthenticated links from `addr`: one that has sent nothing yet, else the oldest. */
static conn_t *pick_victim(tlsc_daemon_t *d, const char *addr, const conn_t *except)
{
    conn_t *best = NULL;
    int best_idle = 0;

    for (conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c == except || c->state != CONN_HANDSHAKE || strcmp(c->addr, addr) != 0)
            continue;
        int idle = !has_spoken(c);
        if (best == NULL || idle > best_idle || (idle == best_idle && c->since_ms < best->since_ms)) {
            best = c;
            best_idle = idle;
        }
    }
    return best;
}

/*
 * Links that have not authenticated yet have a budget of their own (max_pending, at most
 * max_pending_per_addr from one address) and a short deadline, so idle or slow connections
 * can never crowd out a worker. A newcomer beyond the budget makes room: at the per-address
 * limit its own address gives up a link, else the address holding the most; either way an
 * idle link (nothing received yet) before one mid-handshake, the oldest first. A flood from
 * one address thus only ever displaces itself, and a worker, which speaks at once, outlasts
 * idle connections even from the same address.
 */
static void make_room(tlsc_daemon_t *d, const conn_t *newcomer)
{
    const char *from = NULL;
    conn_t *victim;
    unsigned supp;

    /* npending counts the newcomer already. */
    if (pending_from(d, newcomer->addr, newcomer) >= d->o.max_pending_per_addr)
        from = newcomer->addr;
    else if (d->npending > d->o.max_pending)
        from = heaviest_addr(d, newcomer);
    if (from == NULL || (victim = pick_victim(d, from, newcomer)) == NULL)
        return;
    d->stats.evicted++;
    if (ratelimit(&d->rl_evict, &supp))
        tlsc_log_warn("%s: %zu unauthenticated links (max %u, %u per address): dropped one from %s to make room (%u similar "
                      "suppressed)",
                      newcomer->peer, d->npending, d->o.max_pending, d->o.max_pending_per_addr, from, supp);
    close_conn(victim);
}

static void on_connection(uv_stream_t *server, int status)
{
    tlsc_daemon_t *d = server->data;
    conn_t *c;
    int rc;

    if (status != 0 || d->closing)
        return;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->d = d;
    rc = server->type == UV_TCP ? uv_tcp_init(d->loop, &c->h.tcp) : uv_pipe_init(d->loop, &c->h.pipe, 0);
    if (rc != 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    d->pending_handles++;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    d->npending++;
    c->state = CONN_HANDSHAKE;
    c->since_ms = tlsc_now_ms();
    if (uv_accept(server, &c->h.stream) != 0) {
        close_conn(c);
        return;
    }
    peer_name(c);
    d->stats.accepted++;
    make_room(d, c);
    c->deadline_ms = c->since_ms + d->o.handshake_timeout_ms;
    if (server->type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if ((c->kl = tlsc_keylink_start(&c->h.stream, d->link, on_msg, on_link_fail, c)) == NULL)
        close_conn(c);
}

static void on_tick(uv_timer_t *t)
{
    tlsc_daemon_t *d = t->data;
    uint64_t now_ms = tlsc_now_ms();
    conn_t *c, *next;

    for (c = d->conns; c != NULL; c = next) {
        next = c->next;
        if (now_ms >= c->deadline_ms) {
            if (c->state == CONN_HANDSHAKE) {
                unsigned supp;
                if (ratelimit(&d->rl_proto, &supp))
                    tlsc_log_warn("%s: no handshake/HELLO in time; dropped (%u similar suppressed)", c->peer, supp);
            } else {
                tlsc_log_warn("%s: worker %s/%u idle too long; dropped", c->peer, c->node, (unsigned)c->worker);
            }
            close_conn(c);
        }
    }
    if (d->grace_until_ms != 0) {
        if (now_ms >= d->grace_until_ms)
            end_grace(d);
        return;
    }
    if (maintain_window(d, tlsc_wall_sec()))
        publish(d);
    d->stats.conns = d->nconns;
}

/* ================================================================ setup */

static int bind_tcp(tlsc_daemon_t *d, const char *spec, char *err, size_t errlen)
{
    char why[128];
    tlsc_addr_t a;
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    int rc;

    if (tlsc_addr_parse_str(spec, TLSC_ADDR_ALLOW_ANY, &a, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, why);
        return UV_EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    /* Synchronous: this runs once at start-up, before the loop. */
    if ((rc = uv_getaddrinfo(d->loop, &req, NULL, a.host[0] ? a.host : NULL, a.port_str, &hints)) != 0) {
        snprintf(err, errlen, "--listen %s: %s", spec, uv_strerror(rc));
        return rc;
    }
    if ((rc = uv_tcp_init(d->loop, &d->tcp)) != 0) {
        uv_freeaddrinfo(req.addrinfo);
        goto fail;
    }
    d->tcp.data = d;
    d->have_tcp = 1;
    d->pending_handles++;
    rc = uv_tcp_bind(&d->tcp, req.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(req.addrinfo);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&d->tcp, BACKLOG, on_connection);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "--listen %s: %s", spec, uv_strerror(rc));
    return rc;
}

static int bind_unix(tlsc_daemon_t *d, const char *path, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    if (strlen(path) >= 108) {
        snprintf(err, errlen, "--unix %s: path too long", path);
        return UV_EINVAL;
    }
    /* A socket left by a killed daemon is replaced; any other file is an error. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "--unix %s: exists and is not a socket", path);
            return UV_EEXIST;
        }
        unlink(path);
    }
    if ((rc = uv_pipe_init(d->loop, &d->pipe, 0)) != 0)
        goto fail;
    d->pipe.data = d;
    d->have_pipe = 1;
    d->pending_handles++;
    mode_t old = umask(0077);
    rc = uv_pipe_bind(&d->pipe, path);
    umask(old);
    if (rc == 0 && chmod(path, 0600) != 0)
        rc = uv_translate_sys_error(errno);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&d->pipe, BACKLOG, on_connection);
    if (rc != 0)
        goto fail;
    d->unix_path = strdup(path);
    return 0;
fail:
    snprintf(err, errlen, "--unix %s: %s", path, uv_strerror(rc));
    return rc;
}

int tlsc_daemon_new(uv_loop_t *loop, const tlsc_daemon_options_t *o, const unsigned char psk[TLSC_KEYPROTO_PSK_LEN],
                    tlsc_daemon_t **out, char *err, size_t errlen)
{
    tlsc_daemon_t *d;
    int rc;

    if (o->listen == NULL && o->unix_path == NULL) {
        snprintf(err, errlen, "give --listen HOST:PORT and/or --unix PATH");
        return UV_EINVAL;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return UV_ENOMEM;
    d->loop = loop;
    d->o = *o;
    if (d->o.rotate_sec == 0)
        d->o.rotate_sec = 3600;
    if (d->o.ticket_lifetime_sec == 0)
        d->o.ticket_lifetime_sec = d->o.rotate_sec;
    if (d->o.lead_sec == 0)
        d->o.lead_sec = d->o.rotate_sec / 2 ? d->o.rotate_sec / 2 : 1;
    if (d->o.max_conns == 0)
        d->o.max_conns = 1024;
    if (d->o.max_pending == 0)
        d->o.max_pending = 64;
    if (d->o.max_pending_per_addr == 0)
        d->o.max_pending_per_addr = 16;
    if (d->o.handshake_timeout_ms == 0)
        d->o.handshake_timeout_ms = 2000;
    if (d->o.idle_timeout_ms == 0)
        d->o.idle_timeout_ms = 60000;
    /* The window holds every key still decrypting, one next and one current. */
    if ((uint64_t)d->o.ticket_lifetime_sec / d->o.rotate_sec + 3 > TLSC_KEYPROTO_MAX_KEYS) {
        snprintf(err, errlen, "--ticket-lifetime %u: at most %u times --rotate %u", d->o.ticket_lifetime_sec,
                 TLSC_KEYPROTO_MAX_KEYS - 4, d->o.rotate_sec);
        free(d);
        return UV_EINVAL;
    }
    /* Keys alive at once: those still decrypting, one current, one next, one spare. */
    d->window_max = d->o.ticket_lifetime_sec / d->o.rotate_sec + 4;
    if (d->window_max > TLSC_KEYPROTO_MAX_KEYS)
        d->window_max = TLSC_KEYPROTO_MAX_KEYS;
    d->node = strdup(o->node && o->node[0] ? o->node : "daemon");
    d->vault = mmap(NULL, sizeof(vault_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (d->node == NULL || d->vault == MAP_FAILED) {
        free(d->node);
        free(d);
        return UV_ENOMEM;
    }
    if (mlock(d->vault, sizeof(vault_t)) != 0)
        tlsc_log_warn("mlock of the key window failed (%s); keys may reach swap", strerror(errno));
    if (madvise(d->vault, sizeof(vault_t), MADV_DONTDUMP) != 0)
        tlsc_log_warn("MADV_DONTDUMP failed (%s)", strerror(errno));
    if (tlsc_keyproto_link_new(1, psk, &d->link, err, errlen) != 0) {
        rc = UV_EINVAL;
        goto fail;
    }
    d->epoch = tlsc_wall_sec() * 1000; /* a restarted daemon starts above its predecessor's epochs */
    if ((rc = uv_timer_init(loop, &d->timer)) != 0)
        goto fail;
    d->timer.data = d;
    d->pending_handles++;
    if (o->listen && (rc = bind_tcp(d, o->listen, err, errlen)) != 0)
        goto fail_handles;
    if (o->unix_path && (rc = bind_unix(d, o->unix_path, err, errlen)) != 0)
        goto fail_handles;
    d->grace_until_ms = tlsc_now_ms() + d->o.grace_ms;
    if (d->o.grace_ms == 0)
        d->grace_until_ms = 1; /* end at the first tick */
    uv_timer_start(&d->timer, on_tick, 0, TICK_MS);
    *out = d;
    return 0;

fail_handles:
    tlsc_daemon_close(d);
    return rc;
fail:
    tlsc_keyproto_link_free(d->link);
    munmap(d->vault, sizeof(vault_t));
    free(d->node);
    free(d);
    return rc;
}

static void on_handle_closed(uv_handle_t *h)
{
    tlsc_daemon_t *d = h->data;

    d->pending_handles--;
    maybe_free(d);
}

void tlsc_daemon_close(tlsc_daemon_t *d)
{
    conn_t *c, *next;

    if (d == NULL || d->closing)
        return;
    d->closing = 1;
    OPENSSL_cleanse(&d->vault->window, sizeof(d->vault->window));
    OPENSSL_cleanse(d->vault->cand, sizeof(d->vault->cand));
    OPENSSL_cleanse(&d->vault->scratch, sizeof(d->vault->scratch));
    if (d->unix_path)
        unlink(d->unix_path);
    for (c = d->conns; c != NULL; c = next) {
        next = c->next;
        close_conn(c);
    }
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    if (d->have_tcp)
        uv_close((uv_handle_t *)&d->tcp, on_handle_closed);
    if (d->have_pipe)
        uv_close((uv_handle_t *)&d->pipe, on_handle_closed);
}

size_t tlsc_daemon_keys(const tlsc_daemon_t *d, tlsc_daemon_key_info_t *out, size_t max)
{
    const tlsc_keyproto_keyset_t *w = &d->vault->window;
    uint64_t now = tlsc_wall_sec();
    const tlsc_keyproto_key_t *cur = NULL;
    size_t n = 0;

    for (size_t i = 0; i < w->count; i++) {
        const tlsc_keyproto_key_t *k = &w->keys[i];
        if (k->not_before <= now && (cur == NULL || k->not_before > cur->not_before))
            cur = k;
    }
    for (size_t i = 0; i < w->count && n < max; i++, n++) {
        const tlsc_keyproto_key_t *k = &w->keys[i];
        out[n].role = k == cur              ? TLSC_KEYPROTO_ROLE_CURRENT
                      : k->not_before > now ? TLSC_KEYPROTO_ROLE_NEXT
                                            : TLSC_KEYPROTO_ROLE_PREVIOUS;
        out[n].not_before = k->not_before;
        out[n].not_after = k->not_after;
    }
    return n;
}

void tlsc_daemon_workers(const tlsc_daemon_t *d, size_t *open, size_t *behind, uint64_t *max_lag)
{
    *open = *behind = 0;
    *max_lag = 0;
    for (const conn_t *c = d->conns; c != NULL; c = c->next) {
        if (c->state != CONN_OPEN)
            continue;
        (*open)++;
        if (c->acked_epoch < d->epoch) {
            (*behind)++;
            if (c->acked_epoch != 0 && d->epoch - c->acked_epoch > *max_lag) /* 0: none acked yet */
                *max_lag = d->epoch - c->acked_epoch;
        }
    }
}

int tlsc_daemon_in_grace(const tlsc_daemon_t *d)
{
    return d->grace_until_ms != 0;
}

void tlsc_daemon_stats(const tlsc_daemon_t *d, tlsc_daemon_stats_t *out)
{
    *out = d->stats;
    out->conns = d->nconns;
    out->pending = d->npending;
    out->keys = d->vault->window.count;
    out->epoch = d->epoch;
}
