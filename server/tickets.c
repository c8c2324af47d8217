/* This file's one job: hold the ticket keys and answer OpenSSL's ticket key callback with them. */
#include "tickets.h"

#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "log.h"
#include "util.h"

typedef struct {
    tlsc_keyproto_key_t key;
    unsigned char aes[32], hmac[32], seal[32];
    int used;
} slot_t;

/* The whole holder lives in one mmap'd region so it can be locked and kept out of core dumps. */
struct tlsc_tickets_s {
    slot_t live[TLSC_TICKETS_MAX];
    slot_t staging[TLSC_TICKETS_MAX]; /* apply() builds here, then commits in one copy */
    uint64_t epoch;
    uint64_t max_life; /* tlsc_tickets_set_max_life() */
    uint64_t (*now)(void *);
    void *now_data;
    tlsc_tickets_stats_t stats;
};

static int holder_index = -1;
static EVP_CIPHER *ticket_cipher; /* process-wide, never freed */

static uint64_t wall_now(void *data)
{
    return (uint64_t)time(NULL);
}

tlsc_tickets_t *tlsc_tickets_new(uint64_t (*now)(void *), void *now_data)
{
    tlsc_tickets_t *t;

    if (holder_index < 0 && (holder_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
        return NULL;
    /* Fetched once: EVP_aes_256_cbc() would make OpenSSL 3 look the cipher up on every ticket. */
    if (ticket_cipher == NULL && (ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL)
        return NULL;
    if ((t = tlsc_locked_alloc(sizeof(*t))) == NULL)
        return NULL;
    t->now = now ? now : wall_now;
    t->now_data = now_data;
    t->max_life = TLSC_TICKETS_MAX_LIFE_DEFAULT;
    return t;
}

void tlsc_tickets_free(tlsc_tickets_t *t)
{
    if (t == NULL)
        return;
    tlsc_locked_free(t, sizeof(*t));
}

static void drop(slot_t *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

size_t tlsc_tickets_expire(tlsc_tickets_t *t)
{
    uint64_t now = t->now(t->now_data);
    size_t n = 0;

    for (size_t i = 0; i < TLSC_TICKETS_MAX; i++) {
        if (!t->live[i].used)
            continue;
        if (t->live[i].key.not_after <= now)
            drop(&t->live[i]);
        else
            n++;
    }
    return n;
}

static slot_t *find(slot_t *slots, const unsigned char *name)
{
    for (size_t i = 0; i < TLSC_TICKETS_MAX; i++)
        if (slots[i].used && CRYPTO_memcmp(slots[i].key.name, name, TLSC_KEYPROTO_NAME_LEN) == 0)
            return &slots[i];
    return NULL;
}

/* A free slot, or the one expiring first if it expires before `not_after`; NULL if none. */
static slot_t *free_slot(slot_t *slots, uint64_t not_after)
{
    slot_t *victim = NULL;

    for (size_t i = 0; i < TLSC_TICKETS_MAX; i++) {
        if (!slots[i].used)
            return &slots[i];
        if (victim == NULL || slots[i].key.not_after < victim->key.not_after)
            victim = &slots[i];
    }
    if (victim->key.not_after >= not_after)
        return NULL;
    drop(victim);
    return victim;
}

static int bounded(const tlsc_tickets_t *t, const tlsc_keyproto_key_t *k, uint64_t now)
{
    return tlsc_keyproto_key_bounded(k, now, t->max_life, t->max_life + TLSC_TICKETS_SKEW_SEC);
}

void tlsc_tickets_set_max_life(tlsc_tickets_t *t, unsigned sec)
{
    uint64_t now = t->now(t->now_data);

    t->max_life = sec != 0 ? sec : TLSC_TICKETS_MAX_LIFE_DEFAULT;
    for (size_t i = 0; i < TLSC_TICKETS_MAX; i++)
        if (t->live[i].used && !bounded(t, &t->live[i].key, now))
            drop(&t->live[i]);
}

int tlsc_tickets_apply(tlsc_tickets_t *t, const tlsc_keyproto_keyset_t *set, int pushed)
{
    uint64_t now = t->now(t->now_data);
    int rc = TLSC_TICKETS_EINVAL;

    if (tlsc_keyproto_keyset_validate(set) != 0)
        return TLSC_TICKETS_EINVAL;
    /*
     * A key that would open tickets longer than any window allows (or start far in the future)
     * comes from a broken or hostile peer: refusing the whole set keeps it out of this holder,
     * and so out of the HELLO that would offer it to a restarted daemon.
     */
    for (size_t i = 0; i < set->count; i++)
        if (set->keys[i].not_after > now && !bounded(t, &set->keys[i], now)) {
            char tag[9];
            tlsc_keyproto_name_tag(set->keys[i].name, tag);
            tlsc_log_warn("tickets: key %s refused: lives %llus (max %llus) or starts too far ahead; key set epoch %llu not "
                          "applied",
                          tag, (unsigned long long)(set->keys[i].not_after - set->keys[i].not_before),
                          (unsigned long long)t->max_life, (unsigned long long)set->epoch);
            return TLSC_TICKETS_EINVAL;
        }
    if (pushed && set->epoch <= t->epoch)
        return TLSC_TICKETS_ESTALE;
    tlsc_tickets_expire(t);
    memcpy(t->staging, t->live, sizeof(t->live));
    for (size_t i = 0; i < set->count; i++) {
        const tlsc_keyproto_key_t *k = &set->keys[i];
        slot_t *s;
        if (k->not_after <= now)
            continue;
        if ((s = find(t->staging, k->name)) != NULL) {
            /* The same name with another secret is a bug or an attack: refuse the whole set. */
            if (CRYPTO_memcmp(s->key.secret, k->secret, sizeof(k->secret)) != 0)
                goto fail;
            s->key.role = k->role;
            s->key.not_before = k->not_before;
            s->key.not_after = k->not_after;
            continue;
        }
        if ((s = free_slot(t->staging, k->not_after)) == NULL)
            continue;
        s->key = *k;
        if (tlsc_keyproto_derive(k->secret, k->name, TLSC_KEYPROTO_INFO_TICKET_AES, s->aes, 32) != 0 ||
            tlsc_keyproto_derive(k->secret, k->name, TLSC_KEYPROTO_INFO_TICKET_HMAC, s->hmac, 32) != 0 ||
            tlsc_keyproto_derive(k->secret, k->name, TLSC_KEYPROTO_INFO_SEAL, s->seal, 32) != 0)
            goto fail;
        s->used = 1;
    }
    memcpy(t->live, t->staging, sizeof(t->live));
    if (pushed)
        t->epoch = set->epoch;
    rc = 0;
fail:
    OPENSSL_cleanse(t->staging, sizeof(t->staging));
    return rc;
}

/* The encrypting key: the latest not_before <= now among the unexpired. */
static slot_t *current(tlsc_tickets_t *t, uint64_t now)
{
    slot_t *best = NULL;

    for (size_t i = 0; i < TLSC_TICKETS_MAX; i++) {
        slot_t *s = &t->live[i];
        if (!s->used || s->key.not_after <= now || s->key.not_before > now)
            continue;
        if (best == NULL || s->key.not_before > best->key.not_before ||
            (s->key.not_before == best->key.not_before && s->key.not_after > best->key.not_after))
            best = s;
    }
    return best;
}

int tlsc_tickets_current_window(tlsc_tickets_t *t, uint64_t *not_before, uint64_t *not_after)
{
    slot_t *cur = current(t, t->now(t->now_data));

    if (cur == NULL)
        return TLSC_TICKETS_ENOENT;
    *not_before = cur->key.not_before;
    *not_after = cur->key.not_after;
    return 0;
}

void tlsc_tickets_export(tlsc_tickets_t *t, tlsc_keyproto_keyset_t *out)
{
    uint64_t now = t->now(t->now_data);
    slot_t *cur = current(t, now);
    int taken[TLSC_TICKETS_MAX] = {0};

    memset(out, 0, sizeof(*out));
    out->epoch = t->epoch;
    tlsc_tickets_expire(t);
    /* Selection by latest not_after, bounded by the slot count. */
    while (out->count < TLSC_KEYPROTO_MAX_KEYS) {
        int best = -1;
        for (int i = 0; i < TLSC_TICKETS_MAX; i++)
            if (t->live[i].used && !taken[i] && (best < 0 || t->live[i].key.not_after > t->live[best].key.not_after))
                best = i;
        if (best < 0)
            break;
        taken[best] = 1;
        tlsc_keyproto_key_t *k = &out->keys[out->count++];
        *k = t->live[best].key;
        k->role = &t->live[best] == cur                ? TLSC_KEYPROTO_ROLE_CURRENT
                  : t->live[best].key.not_before > now ? TLSC_KEYPROTO_ROLE_NEXT
                                                       : TLSC_KEYPROTO_ROLE_PREVIOUS;
    }
}

size_t tlsc_tickets_count(tlsc_tickets_t *t)
{
    return tlsc_tickets_expire(t);
}

uint64_t tlsc_tickets_epoch(const tlsc_tickets_t *t)
{
    return t->epoch;
}

void tlsc_tickets_stats(const tlsc_tickets_t *t, tlsc_tickets_stats_t *out)
{
    *out = t->stats;
}

int tlsc_tickets_install(tlsc_tickets_t *t, SSL_CTX *ctx)
{
    if (SSL_CTX_set_ex_data(ctx, holder_index, t) != 1)
        return TLSC_TICKETS_ENOMEM;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tlsc_tickets_key_cb) == 1 ? 0 : TLSC_TICKETS_EINVAL;
}

void tlsc_tickets_uninstall(SSL_CTX *ctx)
{
    if (holder_index >= 0)
        SSL_CTX_set_ex_data(ctx, holder_index, NULL);
}

int tlsc_tickets_seal_key(tlsc_tickets_t *t, const unsigned char name[TLSC_KEYPROTO_NAME_LEN], unsigned char key[32])
{
    slot_t *s = find(t->live, name);

    if (s == NULL || s->key.not_after <= t->now(t->now_data))
        return TLSC_TICKETS_ENOENT;
    memcpy(key, s->seal, 32);
    return 0;
}

int tlsc_tickets_current_seal_key(tlsc_tickets_t *t, unsigned char name[TLSC_KEYPROTO_NAME_LEN], unsigned char key[32])
{
    slot_t *s = current(t, t->now(t->now_data));

    if (s == NULL)
        return TLSC_TICKETS_ENOENT;
    memcpy(name, s->key.name, TLSC_KEYPROTO_NAME_LEN);
    memcpy(key, s->seal, 32);
    return 0;
}

static int set_mac(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

int tlsc_tickets_key_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    tlsc_tickets_t *t = holder_index >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), holder_index) : NULL;
    uint64_t now;
    slot_t *k, *cur;

    if (t == NULL)
        return 0;
    now = t->now(t->now_data);
    cur = current(t, now);
    if (enc) {
        if (cur == NULL) {
            t->stats.no_key++;
            return 0;
        }
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
        memcpy(key_name, cur->key.name, 16);
        if (EVP_EncryptInit_ex(ctx, ticket_cipher, NULL, cur->aes, iv) != 1 || set_mac(hctx, cur->hmac) != 1)
            return -1;
        t->stats.issued++;
        return 1;
    }
    if ((k = find(t->live, key_name)) == NULL || k->key.not_after <= now) {
        t->stats.unknown_key++;
        return 0;
    }
    if (set_mac(hctx, k->hmac) != 1 || EVP_DecryptInit_ex(ctx, ticket_cipher, NULL, k->aes, iv) != 1)
        return -1;
    t->stats.decrypted++;
    if (k != cur) {
        t->stats.renewed++;
        return 2;
    }
    /*
     * OpenSSL sends a TLS 1.3 client a new ticket after resumption only when asked to renew.
     * Ask: clients should not reuse a ticket (RFC 8446 §C.4, it links their connections), and
     * they can only avoid it if every resumption hands them a fresh one.
     */
    return SSL_version(s) == TLS1_3_VERSION ? 2 : 1;
}
