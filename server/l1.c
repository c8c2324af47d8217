/*
 * This file's one job: the node-local session cache (L1) in shared memory — map it, find,
 * store, take and drop entries, and survive a worker that dies inside it.
 *
 * Layout of the region (all offsets fixed at creation, nothing in it is a pointer):
 *
 *   header   magic, set count, the generation, node-wide counters
 *   locks    one robust process-shared mutex per set
 *   sets     TLSC_L1_WAYS slots of SLOT_BYTES each (a set is one 4 KiB page)
 *
 * Locking: a set's mutex is taken with trylock and held only across memcmp/memcpy of that one
 * set — no allocation, no system call, nothing that can fail. A worker never waits for another
 * process: a busy set is a miss (the lookup goes to Redis) or a skipped insert. A worker can
 * still be killed while it holds a set's lock; the mutex is robust, so the next taker gets
 * EOWNERDEAD, wipes that one set (its slots may be half written) and marks the mutex
 * consistent. Losing eight cached sessions costs eight full handshakes at worst.
 *
 * Dropping everything (a revocation of '*', a lost link to Redis) takes no lock: every slot
 * carries the generation it was written in, and bumping the header's generation makes every
 * older slot invisible at once.
 */

#include "l1.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "util.h"

#define L1_MAGIC   0x746c7363314c3031ull /* "tlsc1L01" */
#define SLOT_BYTES 512

typedef struct {
    unsigned char id[TLSC_L1_ID_MAX];
    uint64_t expires;   /* Unix seconds */
    uint64_t last_used; /* a per-set tick: LRU order within the set */
    uint64_t gen;       /* valid only while equal to the header's generation */
    uint16_t version;   /* TLS1_2_VERSION / TLS1_3_VERSION */
    uint16_t len;       /* of value */
    uint8_t id_len;
    uint8_t used;
    uint8_t pad[2];
    unsigned char value[TLSC_L1_VALUE_MAX];
} slot_t;

_Static_assert(sizeof(slot_t) == SLOT_BYTES, "an L1 slot is 512 bytes");

typedef struct {
    slot_t slot[TLSC_L1_WAYS];
} set_t;

typedef struct {
    uint64_t magic;
    uint64_t nsets;
    _Atomic uint64_t gen;
    _Atomic uint64_t evictions, recovered, flushes;
    _Atomic uint64_t epoch; /* bumped by every removal and clear, before it takes effect */
    _Atomic int serving;    /* 0: every lookup misses (the revocation feed is lost) */
} header_t;

struct tlsc_l1_s {
    void *base; /* the mapping */
    size_t map_len;
    header_t *hdr;
    pthread_mutex_t *locks;
    set_t *sets;
    uint64_t nsets;
    uint64_t (*now)(void);
};

/* ------------------------------------------------------------------------------------------ */
/* Size                                                                                         */

int tlsc_l1_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mult = 1;
    size_t n = 0;

    if (s == NULL)
        return -1;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n >= 12) /* more digits than any size we take */
            return -1;
        v = v * 10 + (uint64_t)(s[n] - '0');
    }
    if (n == 0)
        return -1;
    switch (s[n]) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = 1ull << 10;
        break;
    case 'm':
    case 'M':
        mult = 1ull << 20;
        break;
    case 'g':
    case 'G':
        mult = 1ull << 30;
        break;
    default:
        return -1;
    }
    if (s[n] != '\0' && s[n + 1] != '\0')
        return -1;
    if (v > TLSC_L1_MAX_BYTES / mult)
        return -1;
    v *= mult;
    if (v != 0 && (v < TLSC_L1_MIN_BYTES || v > TLSC_L1_MAX_BYTES))
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                        */

static uint64_t wall_now(void)
{
    return tlsc_wall_sec();
}

int tlsc_l1_new(uint64_t bytes, tlsc_l1_t **out, char *err, size_t errlen)
{
    pthread_mutexattr_t attr;
    tlsc_l1_t *l1;
    uint64_t nsets;
    size_t locks_len, head_len;

    /* Each set costs its page plus its lock; the header and the lock array come first. */
    nsets = bytes / (sizeof(set_t) + sizeof(pthread_mutex_t));
    if (nsets == 0) {
        snprintf(err, errlen, "--local-cache %llu is too small", (unsigned long long)bytes);
        return -1;
    }
    locks_len = (size_t)nsets * sizeof(pthread_mutex_t);
    head_len = (sizeof(header_t) + locks_len + 4095) & ~(size_t)4095; /* sets start on a page */
    if ((l1 = calloc(1, sizeof(*l1))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l1->map_len = head_len + (size_t)nsets * sizeof(set_t);
    l1->base = mmap(NULL, l1->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (l1->base == MAP_FAILED) {
        snprintf(err, errlen, "mapping %zu bytes of shared memory: %s", l1->map_len, strerror(errno));
        free(l1);
        return -1;
    }
    /* A session cache holds secrets (sealed, but still): keep it out of core dumps. */
    (void)madvise(l1->base, l1->map_len, MADV_DONTDUMP);
    l1->hdr = l1->base;
    l1->locks = (pthread_mutex_t *)((char *)l1->base + sizeof(header_t));
    l1->sets = (set_t *)((char *)l1->base + head_len);
    l1->nsets = nsets;
    l1->now = wall_now;
    l1->hdr->magic = L1_MAGIC;
    l1->hdr->nsets = nsets;
    atomic_store(&l1->hdr->gen, 1);
    atomic_store(&l1->hdr->epoch, 1);
    atomic_store(&l1->hdr->serving, 1);
    if (pthread_mutexattr_init(&attr) != 0 || pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0) {
        snprintf(err, errlen, "robust process-shared mutexes are not supported");
        tlsc_l1_free(l1);
        return -1;
    }
    for (uint64_t i = 0; i < nsets; i++) {
        if (pthread_mutex_init(&l1->locks[i], &attr) != 0) {
            snprintf(err, errlen, "initializing the shared cache's locks failed");
            pthread_mutexattr_destroy(&attr);
            tlsc_l1_free(l1);
            return -1;
        }
    }
    pthread_mutexattr_destroy(&attr);
    *out = l1;
    return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL and pages fault as they are used */
#endif

void tlsc_l1_prefault(tlsc_l1_t *l1)
{
    (void)madvise(l1->base, l1->map_len, MADV_POPULATE_WRITE);
}

/*
 * Mapping the pages is not all: on a virtual machine that shadows each process's page tables
 * (this project's development VM, docs/benchmarks.md), the first access of a process to a page
 * still costs a trip to the hypervisor, 2-3 us, even after MADV_POPULATE_WRITE — and a TLS 1.3
 * stateful resumption touches two random sets, the ticket taken and the one issued. So each
 * worker reads one byte of every page once, a slice per loop iteration, up to
 * L1_WARM_MAX_BYTES; pages past it warm as handshakes use them. The read is an atomic relaxed
 * load: another worker may be writing that slot under its set's lock.
 */
#define L1_WARM_MAX_BYTES (256ull << 20)

static volatile unsigned warm_sink; /* the loads are the point: keep them */

int tlsc_l1_warm(tlsc_l1_t *l1, size_t *cursor, size_t pages)
{
    size_t end = l1->map_len < L1_WARM_MAX_BYTES ? l1->map_len : (size_t)L1_WARM_MAX_BYTES;
    unsigned sum = 0;

    for (; *cursor < end && pages > 0; *cursor += 4096, pages--)
        sum += __atomic_load_n((const unsigned char *)l1->base + *cursor, __ATOMIC_RELAXED);
    warm_sink = sum;
    return *cursor >= end;
}

void tlsc_l1_free(tlsc_l1_t *l1)
{
    if (l1 == NULL)
        return;
    munmap(l1->base, l1->map_len);
    free(l1);
}

void tlsc_l1_set_clock(tlsc_l1_t *l1, uint64_t (*now)(void))
{
    l1->now = now != NULL ? now : wall_now;
}

/* ------------------------------------------------------------------------------------------ */
/* One set                                                                                      */

/*
 * The set an ID lives in. The IDs that are stored are OpenSSL's random session IDs, so a plain
 * FNV-1a spreads them; a client chooses only the IDs it looks up, which insert nothing.
 */
static uint64_t set_of(const tlsc_l1_t *l1, const unsigned char *id, size_t id_len)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < id_len; i++)
        h = (h ^ id[i]) * 1099511628211ull;
    return h % l1->nsets;
}

/* Takes set `i`'s lock without waiting. 0 = held; -1 = busy (or unusable). */
static int lock_set(tlsc_l1_t *l1, uint64_t i)
{
    int rc = pthread_mutex_trylock(&l1->locks[i]);

    if (rc == 0)
        return 0;
    if (rc != EOWNERDEAD)
        return -1;
    /* Its last holder died inside: the set may be half written. Forget it, and go on. */
    memset(&l1->sets[i], 0, sizeof(set_t));
    atomic_fetch_add_explicit(&l1->hdr->recovered, 1, memory_order_relaxed);
    if (pthread_mutex_consistent(&l1->locks[i]) != 0) {
        pthread_mutex_unlock(&l1->locks[i]);
        return -1;
    }
    return 0;
}

static void unlock_set(tlsc_l1_t *l1, uint64_t i)
{
    pthread_mutex_unlock(&l1->locks[i]);
}

/* A slot that holds a live entry now. */
static int live(const slot_t *sl, uint64_t gen, uint64_t now)
{
    return sl->used && sl->gen == gen && sl->expires > now;
}

static slot_t *find(set_t *set, const unsigned char *id, size_t id_len, uint64_t gen, uint64_t now)
{
    for (size_t w = 0; w < TLSC_L1_WAYS; w++) {
        slot_t *sl = &set->slot[w];

        if (live(sl, gen, now) && sl->id_len == id_len && memcmp(sl->id, id, id_len) == 0)
            return sl;
    }
    return NULL;
}

/* The tick after the newest in the set: LRU order without a shared clock. */
static uint64_t next_tick(const set_t *set)
{
    uint64_t max = 0;

    for (size_t w = 0; w < TLSC_L1_WAYS; w++) {
        if (set->slot[w].last_used > max)
            max = set->slot[w].last_used;
    }
    return max + 1;
}

static void wipe(slot_t *sl)
{
    OPENSSL_cleanse(sl, sizeof(*sl));
}

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                   */

int tlsc_l1_put(tlsc_l1_t *l1, const unsigned char *id, size_t id_len, int version, const unsigned char *rec, size_t len,
                uint64_t expires, uint64_t epoch)
{
    uint64_t now = l1->now(), gen = atomic_load(&l1->hdr->gen);
    uint64_t i;
    slot_t *sl;
    set_t *set;

    if (id_len == 0 || id_len > TLSC_L1_ID_MAX || len > TLSC_L1_VALUE_MAX || expires <= now)
        return -1;
    i = set_of(l1, id, id_len);
    set = &l1->sets[i];
    if (lock_set(l1, i) != 0)
        return -1;
    /* A copy read before a revocation must not come back after it (the removal bumps first). */
    if (epoch != 0 && atomic_load(&l1->hdr->epoch) != epoch) {
        unlock_set(l1, i);
        return -1;
    }
    if ((sl = find(set, id, id_len, gen, now)) == NULL) {
        /* A free or dead slot, else the least recently used live one. */
        for (size_t w = 0; w < TLSC_L1_WAYS; w++) {
            slot_t *c = &set->slot[w];

            if (!live(c, gen, now)) {
                sl = c;
                break;
            }
            if (sl == NULL || c->last_used < sl->last_used)
                sl = c;
        }
        if (live(sl, gen, now))
            atomic_fetch_add_explicit(&l1->hdr->evictions, 1, memory_order_relaxed);
    }
    sl->last_used = next_tick(set);
    memcpy(sl->id, id, id_len);
    sl->id_len = (uint8_t)id_len;
    sl->version = (uint16_t)version;
    sl->expires = expires;
    sl->gen = gen;
    memcpy(sl->value, rec, len);
    if (len < TLSC_L1_VALUE_MAX)
        memset(sl->value + len, 0, TLSC_L1_VALUE_MAX - len); /* no tail of an older record stays */
    sl->len = (uint16_t)len;
    sl->used = 1;
    unlock_set(l1, i);
    return 0;
}

int tlsc_l1_get(tlsc_l1_t *l1, const unsigned char *id, size_t id_len, int version, int take, unsigned char out[TLSC_L1_VALUE_MAX],
                size_t *len)
{
    uint64_t now = l1->now(), gen = atomic_load(&l1->hdr->gen);
    uint64_t i;
    slot_t *sl;
    int hit = 0;

    if (id_len == 0 || id_len > TLSC_L1_ID_MAX || !atomic_load(&l1->hdr->serving))
        return 0;
    i = set_of(l1, id, id_len);
    if (lock_set(l1, i) != 0)
        return 0;
    if ((sl = find(&l1->sets[i], id, id_len, gen, now)) != NULL && sl->version == (uint16_t)version) {
        memcpy(out, sl->value, sl->len);
        *len = sl->len;
        hit = 1;
        if (take)
            wipe(sl);
        else
            sl->last_used = next_tick(&l1->sets[i]);
    }
    unlock_set(l1, i);
    return hit;
}

int tlsc_l1_remove(tlsc_l1_t *l1, const unsigned char *id, size_t id_len)
{
    uint64_t now = l1->now(), gen = atomic_load(&l1->hdr->gen);
    uint64_t i;
    slot_t *sl;
    int found = 0;

    if (id_len == 0 || id_len > TLSC_L1_ID_MAX)
        return 0;
    i = set_of(l1, id, id_len);
    atomic_fetch_add(&l1->hdr->epoch, 1);
    /*
     * A revocation must not be lost to a busy set: the holder is another process copying a few
     * hundred bytes, so retry a bounded number of times (a dead holder is recovered by trylock).
     */
    for (int tries = 0; lock_set(l1, i) != 0; tries++) {
        if (tries == 100000)
            return -1;
    }
    if ((sl = find(&l1->sets[i], id, id_len, gen, now)) != NULL) {
        wipe(sl);
        found = 1;
    }
    unlock_set(l1, i);
    return found;
}

void tlsc_l1_clear(tlsc_l1_t *l1)
{
    atomic_fetch_add(&l1->hdr->epoch, 1);
    atomic_fetch_add(&l1->hdr->gen, 1);
    atomic_fetch_add_explicit(&l1->hdr->flushes, 1, memory_order_relaxed);
}

void tlsc_l1_set_serving(tlsc_l1_t *l1, int on)
{
    atomic_store(&l1->hdr->serving, on != 0);
}

int tlsc_l1_serving(const tlsc_l1_t *l1)
{
    return atomic_load(&l1->hdr->serving);
}

uint64_t tlsc_l1_epoch(const tlsc_l1_t *l1)
{
    return atomic_load(&l1->hdr->epoch);
}

void tlsc_l1_stats(const tlsc_l1_t *l1, tlsc_l1_stats_t *out)
{
    out->entries_max = l1->nsets * TLSC_L1_WAYS;
    out->evictions = atomic_load_explicit(&l1->hdr->evictions, memory_order_relaxed);
    out->recovered = atomic_load_explicit(&l1->hdr->recovered, memory_order_relaxed);
    out->flushes = atomic_load_explicit(&l1->hdr->flushes, memory_order_relaxed);
}

int tlsc_l1_test_hold_lock(tlsc_l1_t *l1, const unsigned char *id, size_t id_len)
{
    uint64_t i = set_of(l1, id, id_len);

    /* Half a write, as a worker killed inside tlsc_l1_put would leave it. */
    if (lock_set(l1, i) != 0)
        return -1;
    l1->sets[i].slot[0].len = 0xffff;
    return 0;
}
