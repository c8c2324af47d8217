/*
 * This file's one job: session records — encode and seal, open and decode — and the choice of
 * the sealing key (the daemon's, or the day's fallback key derived from the cluster secret).
 */

#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "keyproto.h"
#include "record.h"
#include "util.h"

/*
 * The fallback keys, one per UTC day: HKDF(ikm = the link PSK of the cluster secret, salt = the
 * key's name, "tlscache fallback seal v2"). A record sealed under one carries its name,
 * "tlsc:fb:" and the day number (8 bytes, big-endian), which no daemon key can have by chance
 * (daemon names are random), so a reader knows which key opens it (docs/protocol.md). A leaked
 * day key opens that day's records only; a record lives at most a day (--session-timeout), so
 * keys of the two days before today and of tomorrow (clock skew) still open.
 */
#define FALLBACK_TAG     "tlsc:fb:"
#define FALLBACK_TAG_LEN 8
#define FALLBACK_INFO    "tlscache fallback seal v2"
#define DAY_SEC          86400
#define FALLBACK_PAST    2
#define FALLBACK_FUTURE  1
#define FALLBACK_CACHE   4 /* derived day keys kept */

/* Lives in one locked, non-dumpable mapping: it holds the PSK and keys derived from it. */
struct tlsc_records_s {
    tlsc_tickets_t *tickets; /* may be NULL */
    int sealed;
    uint64_t (*now)(void *);
    void *now_data;
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    struct {
        uint64_t day; /* 0 = empty */
        unsigned char key[TLSC_SEAL_KEY_LEN];
    } day_keys[FALLBACK_CACHE];
    tlsc_seal_cache_t sealer, opener; /* the last key's cipher contexts, one per direction */
};

static uint64_t wall_now(void *unused)
{
    return tlsc_wall_sec();
}

int tlsc_records_new(tlsc_tickets_t *tickets, const char *secret_file, tlsc_records_t **out, char *err, size_t errlen)
{
    tlsc_records_t *r;

    if ((r = tlsc_locked_alloc(sizeof(*r))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->tickets = tickets;
    r->now = wall_now;
    if (secret_file != NULL) {
        if (tlsc_keyproto_psk_load(secret_file, r->psk, err, errlen) != 0) {
            tlsc_records_free(r);
            return -1;
        }
        r->sealed = 1;
    }
    *out = r;
    return 0;
}

void tlsc_records_set_clock(tlsc_records_t *r, uint64_t (*now)(void *), void *data)
{
    r->now = now != NULL ? now : wall_now;
    r->now_data = data;
}

void tlsc_records_free(tlsc_records_t *r)
{
    if (r == NULL)
        return;
    tlsc_seal_cache_clear(&r->sealer);
    tlsc_seal_cache_clear(&r->opener);
    tlsc_locked_free(r, sizeof(*r));
}

static void day_name(uint64_t day, unsigned char name[TLSC_SEAL_NAME_LEN])
{
    memcpy(name, FALLBACK_TAG, FALLBACK_TAG_LEN);
    for (int i = 0; i < 8; i++)
        name[FALLBACK_TAG_LEN + i] = (unsigned char)(day >> (56 - 8 * i));
}

/* The fallback key of `day`, derived once and cached. 0 = ok. */
static int day_key(tlsc_records_t *r, uint64_t day, unsigned char key[TLSC_SEAL_KEY_LEN])
{
    unsigned char name[TLSC_SEAL_NAME_LEN];
    size_t slot = (size_t)(day % FALLBACK_CACHE);

    if (r->day_keys[slot].day != day) {
        day_name(day, name);
        r->day_keys[slot].day = 0;
        if (tlsc_keyproto_derive(r->psk, name, FALLBACK_INFO, r->day_keys[slot].key, TLSC_SEAL_KEY_LEN) != 0)
            return -1;
        r->day_keys[slot].day = day;
    }
    memcpy(key, r->day_keys[slot].key, TLSC_SEAL_KEY_LEN);
    return 0;
}

/* Is `name` a fallback key's name? Then *day is its day. */
static int is_fallback(const unsigned char name[TLSC_SEAL_NAME_LEN], uint64_t *day)
{
    if (memcmp(name, FALLBACK_TAG, FALLBACK_TAG_LEN) != 0)
        return 0;
    *day = 0;
    for (int i = 0; i < 8; i++)
        *day = *day << 8 | name[FALLBACK_TAG_LEN + i];
    return 1;
}

int tlsc_records_sealed(const tlsc_records_t *r)
{
    return r->sealed;
}

/* The key that opens records named `name`: a fallback day key still in its window, or a daemon key held. */
static int key_for(tlsc_records_t *r, const unsigned char name[TLSC_SEAL_NAME_LEN], unsigned char key[TLSC_SEAL_KEY_LEN])
{
    uint64_t day, today = r->now(r->now_data) / DAY_SEC;

    if (is_fallback(name, &day)) {
        if (day + FALLBACK_PAST < today || day > today + FALLBACK_FUTURE)
            return -1;
        return day_key(r, day, key);
    }
    if (r->tickets == NULL)
        return -1;
    return tlsc_tickets_seal_key(r->tickets, name, key);
}

/* The key that seals a new record: the daemon's current one, else today's fallback key. */
static int current_key(tlsc_records_t *r, unsigned char name[TLSC_SEAL_NAME_LEN], unsigned char key[TLSC_SEAL_KEY_LEN])
{
    uint64_t today = r->now(r->now_data) / DAY_SEC;

    if (r->tickets != NULL && tlsc_tickets_current_seal_key(r->tickets, name, key) == 0)
        return 0;
    day_name(today, name);
    return day_key(r, today, key);
}

int tlsc_records_encode(tlsc_records_t *r, SSL_SESSION *sess, tlsc_seal_aad_t *aad, unsigned char **out, size_t *outlen)
{
    unsigned char name[TLSC_SEAL_NAME_LEN], key[TLSC_SEAL_KEY_LEN], *plain, *rec;
    size_t plain_len, sealed_len;
    int rc = TLSC_RECORDS_ENOMEM;

    if (tlsc_record_encode_plain(sess, &plain, &plain_len) != 0)
        return TLSC_RECORDS_EDECODE;
    if (!r->sealed) {
        *out = plain;
        *outlen = plain_len;
        return 0;
    }
    if (current_key(r, name, key) != 0)
        goto done;
    if ((rec = malloc(plain_len + TLSC_SEAL_OVERHEAD)) == NULL)
        goto done;
    rec[0] = TLSC_RECORD_SEALED;
    aad->tls_version = (uint16_t)SSL_SESSION_get_protocol_version(sess);
    if (tlsc_seal_cached(&r->sealer, key, name, aad, plain + 1, plain_len - 1, rec + 1, plain_len - 1 + TLSC_SEAL_OVERHEAD,
                         &sealed_len) != 0) {
        free(rec);
        goto done;
    }
    *out = rec;
    *outlen = 1 + sealed_len;
    rc = 0;
done:
    OPENSSL_cleanse(key, sizeof(key));
    tlsc_secure_free(plain, plain_len);
    return rc;
}

static int decode_sealed(tlsc_records_t *r, const unsigned char *rec, size_t len, const tlsc_seal_aad_t *aad,
                         const unsigned char *id, size_t id_len, int version, SSL_SESSION **out)
{
    unsigned char name[TLSC_SEAL_NAME_LEN], key[TLSC_SEAL_KEY_LEN], der[TLSC_RECORD_MAX];
    size_t der_len;
    int rc;

    if (len < 1 || rec[0] != TLSC_SEAL_VERSION)
        return TLSC_RECORDS_EVERSION;
    if (len > TLSC_RECORD_MAX + TLSC_SEAL_OVERHEAD || tlsc_seal_key_name(rec, len, name) != 0)
        return TLSC_RECORDS_EDECODE;
    if (key_for(r, name, key) != 0)
        return TLSC_RECORDS_EUNKNOWN_KEY;
    if (tlsc_unseal_cached(&r->opener, key, aad, rec, len, der, sizeof(der), &der_len) != 0) {
        uint64_t day;
        rc = is_fallback(name, &day) ? TLSC_RECORDS_EFOREIGN : TLSC_RECORDS_EAUTH;
    } else {
        *out = tlsc_record_decode_der(der, der_len, id, id_len, version);
        rc = *out != NULL ? 0 : TLSC_RECORDS_EDECODE;
        OPENSSL_cleanse(der, der_len);
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int tlsc_records_decode(tlsc_records_t *r, const unsigned char *rec, size_t len, const tlsc_seal_aad_t *aad,
                        const unsigned char *id, size_t id_len, int version, SSL_SESSION **out)
{
    int rc;

    *out = NULL;
    if (len < 2)
        rc = TLSC_RECORDS_EDECODE;
    else if (rec[0] == TLSC_RECORD_SEALED)
        rc = r->sealed ? decode_sealed(r, rec + 1, len - 1, aad, id, id_len, version, out) : TLSC_RECORDS_ESEALED;
    else if (rec[0] != TLSC_RECORD_PLAIN)
        rc = TLSC_RECORDS_EVERSION;
    else if (r->sealed)
        rc = TLSC_RECORDS_EPLAIN;
    else
        rc = (*out = tlsc_record_decode_der(rec + 1, len - 1, id, id_len, version)) != NULL ? 0 : TLSC_RECORDS_EDECODE;
    ERR_clear_error();
    return rc;
}

const char *tlsc_records_strerror(int code)
{
    switch (code) {
    case TLSC_RECORDS_OK:
        return "ok";
    case TLSC_RECORDS_EUNKNOWN_KEY:
        return "sealed under a key this node does not hold (expired, or another cluster secret)";
    case TLSC_RECORDS_EPLAIN:
        return "plain record, but this node seals (one node without the cluster secret?)";
    case TLSC_RECORDS_ESEALED:
        return "sealed record, but this node has no cluster secret (one node with --keyd, one without?)";
    case TLSC_RECORDS_EVERSION:
        return "unknown record format version";
    case TLSC_RECORDS_EAUTH:
        return "does not open: tampered, or bound to another key, SNI or TLS version";
    case TLSC_RECORDS_EDECODE:
        return "opens but is not the session asked for";
    case TLSC_RECORDS_EFOREIGN:
        return "sealed under another cluster secret (--seal-secret-file differs between nodes?), or tampered";
    default:
        return "out of memory";
    }
}
