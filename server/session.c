/*
 * This file's one job: the resumption hooks — find the session a ClientHello offers in the
 * store, and store each new session before the client can offer it.
 *
 * In firing order:
 * - on_client_hello runs before OpenSSL looks for a session. Its first pass binds the
 *   connection to its certificate and to a session ID context derived from the cluster name and
 *   the SNI (so a session made for one name never resumes under another), finds the ID the
 *   client offers (TLS 1.2 session ID, or TLS 1.3 PSK identity of a stateful ticket), starts one
 *   store read and parks the handshake (SSL_CLIENT_HELLO_RETRY). The loop keeps serving others.
 *   OpenSSL calls it again when the handshake is driven on; the phase says which pass it is.
 * - on_lookup_done decodes the record and resumes the handshake; on_get_session then hands
 *   OpenSSL the fetched session. Miss, timeout, store down or a bad record: full handshake.
 * - on_new_session writes a new session in one atomic put and asks the connection to hold back
 *   the bytes that would let the client offer it (TLS 1.2 Finished, TLS 1.3 NewSessionTicket)
 *   until the store acknowledges or the store timeout passes.
 */

#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/tls1.h>
#include <uv.h>

#include "log.h"
#include "util.h"

#define PREFIX_MAX        96
#define KEY_MAX           (PREFIX_MAX + 2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1)
#define SID_CACHE_SLOTS   32
#define BAD_LOG_PERIOD_MS 10000 /* at most one line about refused records per period */
#define TLS13_TAG_LEN     4

/* How every TLS 1.3 identity we issue begins, and no TLS 1.2 session ID we issue: hex 13131313. */
static const unsigned char tls13_tag[TLS13_TAG_LEN] = {0x13, 0x13, 0x13, 0x13};

struct tlsc_session_s {
    tlsc_session_options_t o;
    tlsc_tls_t *tls;         /* the contexts SNI selects from */
    char prefix[PREFIX_MAX]; /* "<redis prefix>:sess:" */
    size_t prefix_len;
    unsigned char sid_ctx_default[SSL_MAX_SID_CTX_LENGTH];
    struct {
        char sni[TLSC_SNI_MAX + 1]; /* "" = empty slot */
        unsigned char sid_ctx[SSL_MAX_SID_CTX_LENGTH];
    } sid_cache[SID_CACHE_SLOTS]; /* SNI -> session ID context, so a handshake rarely hashes */
    struct {
        uint64_t count, last_ms;
        int last_reason;
    } bad; /* refused records since the last line about them */
};

/* ------------------------------------------------------------------------------------------ */
/* Names and contexts                                                                          */

/* "<prefix>:sess:<lowercase hex id>", NUL-terminated (the seal binds records to it). */
static size_t make_key(const tlsc_session_t *s, const unsigned char *id, size_t id_len, char key[KEY_MAX])
{
    memcpy(key, s->prefix, s->prefix_len);
    tlsc_hex_encode(key + s->prefix_len, id, id_len);
    key[s->prefix_len + 2 * id_len] = '\0';
    return s->prefix_len + 2 * id_len;
}

/* SHA-256 of the cluster name and the SNI: one context per (cluster, name). 0 = ok. */
static int derive_sid_ctx(const tlsc_session_t *s, const char *sni, unsigned char out[SSL_MAX_SID_CTX_LENGTH])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const char *cluster = s->o.cfg->cluster;
    unsigned int n = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, "tlscache-sid-ctx", 17) == 1 &&
             EVP_DigestUpdate(md, cluster, strlen(cluster) + 1) == 1 && EVP_DigestUpdate(md, sni, strlen(sni)) == 1 &&
             EVP_DigestFinal_ex(md, out, &n) == 1 && n == SSL_MAX_SID_CTX_LENGTH;

    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/*
 * derive_sid_ctx through a small direct-mapped cache: the same few names come again and again.
 * NULL when it cannot be computed (out of memory): the handshake then fails rather than share
 * a context with another name.
 */
static const unsigned char *sid_ctx_for(tlsc_session_t *s, const char *sni)
{
    uint32_t h = 2166136261u;
    size_t slot;

    for (const char *p = sni; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    slot = h % SID_CACHE_SLOTS;
    if (strcmp(s->sid_cache[slot].sni, sni) != 0) {
        s->sid_cache[slot].sni[0] = '\0';
        if (derive_sid_ctx(s, sni, s->sid_cache[slot].sid_ctx) != 0)
            return NULL;
        snprintf(s->sid_cache[slot].sni, sizeof(s->sid_cache[slot].sni), "%s", sni);
    }
    return s->sid_cache[slot].sid_ctx;
}

/* ------------------------------------------------------------------------------------------ */
/* resumeSession: the ClientHello callback and the lookup                                     */

/*
 * Does the client offer TLS 1.3, and may we negotiate it? 1 or 0, or -1 when its
 * supported_versions is malformed (*al is then decode_error; OpenSSL itself would answer a
 * malformed list with protocol_version, which RFC 8446 §6.2 keeps for a version refused).
 */
static int will_be_tls13(SSL *ssl, const tlsc_config_t *cfg, int *al)
{
    const unsigned char *p;
    size_t len;
    int rc;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len))
        return 0;
    if ((rc = tlsc_clienthello_offers_tls13(p, len)) < 0) {
        *al = SSL_AD_DECODE_ERROR;
        return -1;
    }
    return rc == 1 && (cfg->max_tls == 0 || cfg->max_tls >= TLS1_3_VERSION);
}

/* Reads the SNI, switches to its certificate and sets the session ID context. 1 = ok. */
static int bind_name(tlsc_session_hs_t *hs, SSL *ssl, int *al)
{
    tlsc_session_t *s = hs->owner;
    const unsigned char *p;
    size_t len;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len)) {
        SSL_set_session_id_context(ssl, s->sid_ctx_default, sizeof(s->sid_ctx_default));
        return 1;
    }
    int rc = tlsc_clienthello_sni(p, len, hs->sni);
    if (rc != 0) {
        tlsc_stat_inc(&s->o.stats->sni_rejected);
        *al = rc == TLSC_CH_DECODE_ERROR ? SSL_AD_DECODE_ERROR : SSL_AD_ILLEGAL_PARAMETER;
        return 0;
    }
    SSL_CTX *ctx = tlsc_tls_select(s->tls, hs->sni);
    if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
        *al = SSL_AD_INTERNAL_ERROR;
        return 0;
    }
    const unsigned char *sid_ctx = sid_ctx_for(s, hs->sni);
    if (sid_ctx == NULL) {
        *al = SSL_AD_INTERNAL_ERROR;
        return 0;
    }
    SSL_set_session_id_context(ssl, sid_ctx, SSL_MAX_SID_CTX_LENGTH);
    return 1;
}

/*
 * Which ID will OpenSSL look up? Copies it into hs->id and returns 1, or 0 for none. With TLS
 * 1.3 the legacy session ID is a random middlebox-compatibility value: only the PSK identity of
 * a stateful ticket counts, and only when stateless tickets are off (else the identity is a
 * ticket, not an ID). With TLS 1.2, a client that sends a non-empty ticket while tickets are on
 * is resumed (or not) by the ticket; its session ID is then only the RFC 5077 echo value.
 */
static int find_offered_id(tlsc_session_hs_t *hs, SSL *ssl, int tls13, size_t ticket_len)
{
    const unsigned char *p, *id = NULL;
    size_t len, id_len = 0;
    int tickets_on = !(SSL_get_options(ssl) & SSL_OP_NO_TICKET);

    if (tls13) {
        if (tickets_on || !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &p, &len) ||
            tlsc_clienthello_psk_identity(p, len, &id, &id_len) != 0)
            return 0;
        hs->version = TLS1_3_VERSION;
    } else {
        id_len = SSL_client_hello_get0_session_id(ssl, &p);
        if (tickets_on && ticket_len > 0)
            return 0;
        id = p;
        hs->version = TLS1_2_VERSION;
    }
    /* Only what OpenSSL could resume: the IDs (and TLS 1.3 identities) we issue are 32 bytes. */
    if (id_len != SSL_MAX_SSL_SESSION_ID_LENGTH)
        return 0;
    memcpy(hs->id, id, id_len);
    hs->id_len = id_len;
    return 1;
}

static void on_lookup_done(int status, const unsigned char *value, size_t len, void *data);
static void on_confirm_done(int status, int existed, void *data);
static int open_record(tlsc_session_hs_t *hs, const unsigned char *value, size_t len);

/*
 * Stateful TLS 1.3 tickets are single use, cluster-wide: a take reads and deletes at once. An
 * identity that starts with tls13_tag is taken unconditionally: no TLS 1.2 session ID we issue
 * starts with it (on_generate_id). One without the tag (issued by a version before the tag) is
 * taken only when its record is TLS 1.3: a TLS 1.2 session ID crosses the wire in clear, and
 * offered as a TLS 1.3 identity it must not delete that session.
 */
static const tlsc_store_match_t tls13_only = {"proto", "TLSv1.3"};

static tlsc_store_req_t *send_lookup(tlsc_session_hs_t *hs, const char *key, size_t key_len, int *status)
{
    tlsc_session_t *s = hs->owner;
    unsigned timeout_ms = s->o.cfg->lookup_timeout_ms;

    if (hs->version != TLS1_3_VERSION)
        return tlsc_store_get(s->o.store, key, key_len, "der", NULL, timeout_ms, on_lookup_done, hs, status);
    if (memcmp(hs->id, tls13_tag, TLS13_TAG_LEN) == 0)
        return tlsc_store_take(s->o.store, key, key_len, "der", timeout_ms, on_lookup_done, hs, status);
    return tlsc_store_get(s->o.store, key, key_len, "der", &tls13_only, timeout_ms, on_lookup_done, hs, status);
}

/* Counts a store request that could not be sent. */
static void count_send_failure(tlsc_session_t *s, int status)
{
    if (status == UV_ETIMEDOUT || status == UV_EAGAIN)
        tlsc_stat_inc(&s->o.stats->lookups_timeout);
    else
        tlsc_stat_inc(&s->o.stats->lookups_error);
}

/*
 * An L1 hit for a TLS 1.3 ticket was taken from this node's cache; the store must confirm that
 * no other node took it first (docs/design.md, "TLS 1.3 tickets and the L1"): a plain DEL, and
 * whoever removed the key owns the ticket. No condition on the record is needed here (unlike
 * the take by the lookup path): the L1 entry opened as a TLS 1.3 session under this very key,
 * so the key holds that ticket or nothing. One round trip, no record on the wire, no script.
 * 1 = in flight (park).
 */
static int start_confirm(tlsc_session_hs_t *hs, const char *key, size_t key_len)
{
    tlsc_session_t *s = hs->owner;
    int status = 0;

    if (tlsc_store_ready(s->o.store)) {
        hs->lookup = tlsc_store_del(s->o.store, key, key_len, s->o.cfg->lookup_timeout_ms, on_confirm_done, hs, &status);
        if (hs->lookup != NULL)
            return 1;
        count_send_failure(s, status);
    } else {
        tlsc_stat_inc(&s->o.stats->lookups_skipped);
    }
    SSL_SESSION_free(hs->fetched); /* unconfirmed: a full handshake */
    hs->fetched = NULL;
    return 0;
}

/*
 * Looks hs->id up in the node-local cache. A TLS 1.2 hit is decided here, synchronously (0);
 * a TLS 1.3 hit parks for the store's confirmation (1); a miss (or a record that does not
 * open) goes on to the store (-1).
 */
static int try_l1(tlsc_session_hs_t *hs, const char *key, size_t key_len)
{
    tlsc_session_t *s = hs->owner;
    unsigned char rec[TLSC_L1_VALUE_MAX];
    size_t len = 0;
    int tls13 = hs->version == TLS1_3_VERSION;

    if (!tlsc_l1_get(s->o.l1, hs->id, hs->id_len, hs->version, tls13, rec, &len))
        return -1;
    if (open_record(hs, rec, len) != 0) {
        if (!tls13)
            tlsc_l1_remove(s->o.l1, hs->id, hs->id_len);
        return -1;
    }
    OPENSSL_cleanse(rec, len);
    if (!tls13) {
        tlsc_stat_inc(&s->o.stats->lookups_l1_hit);
        hs->from_l1 = 1;
        return 0;
    }
    return start_confirm(hs, key, key_len);
}

/* Finds hs->id: in the L1, else by a store read. 1 = in flight (park), 0 = go on without. */
static int start_lookup(tlsc_session_hs_t *hs)
{
    tlsc_session_t *s = hs->owner;
    char key[KEY_MAX];
    size_t key_len;
    int status = 0, rc;

    key_len = make_key(s, hs->id, hs->id_len, key);
    if (s->o.l1 != NULL) {
        hs->l1_epoch = tlsc_l1_epoch(s->o.l1);
        if ((rc = try_l1(hs, key, key_len)) >= 0)
            return rc;
    }
    if (!tlsc_store_ready(s->o.store)) {
        tlsc_stat_inc(&s->o.stats->lookups_skipped);
        return 0;
    }
    hs->lookup_start_us = tlsc_stats_now_us();
    hs->lookup = send_lookup(hs, key, key_len, &status);
    if (hs->lookup != NULL)
        return 1;
    count_send_failure(s, status);
    return 0;
}

/* The first pass of the ClientHello callback. */
static int hello_first_pass(tlsc_session_hs_t *hs, SSL *ssl, int *al)
{
    const unsigned char *p;
    size_t ticket_len = 0;
    int parked, tls13;

    hs->phase = TLSC_HS_DECIDED;
    /* The session_ticket extension is looked at once: present = the client takes tickets. */
    hs->client_tickets = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &p, &ticket_len) == 1;
    if (!bind_name(hs, ssl, al))
        return SSL_CLIENT_HELLO_ERROR;
    if ((tls13 = will_be_tls13(ssl, hs->owner->o.cfg, al)) < 0)
        return SSL_CLIENT_HELLO_ERROR;
    parked = (hs->owner->o.cfg->resumption & TLSC_RESUME_CACHE) && find_offered_id(hs, ssl, tls13, ticket_len) && start_lookup(hs);
    if (parked)
        hs->phase = TLSC_HS_LOOKING;
    hs->io->hello(hs->conn, parked);
    return parked ? SSL_CLIENT_HELLO_RETRY : SSL_CLIENT_HELLO_SUCCESS;
}

static int on_client_hello(SSL *ssl, int *al, void *arg)
{
    tlsc_session_hs_t *hs = SSL_get_app_data(ssl);

    switch (hs->phase) {
    case TLSC_HS_FRESH:
        return hello_first_pass(hs, ssl, al);
    case TLSC_HS_LOOKING:
        return SSL_CLIENT_HELLO_RETRY;
    default:
        return SSL_CLIENT_HELLO_SUCCESS;
    }
}

/* Counts a refused record and says why, at most once per BAD_LOG_PERIOD_MS. */
static void note_bad_record(tlsc_session_t *s, int reason)
{
    uint64_t now = tlsc_now_ms();

    tlsc_stat_inc(&s->o.stats->records_bad);
    s->bad.count++;
    s->bad.last_reason = reason;
    if (now - s->bad.last_ms < BAD_LOG_PERIOD_MS)
        return;
    tlsc_log_warn("%llu session record(s) refused (full handshakes instead), the last one: %s", (unsigned long long)s->bad.count,
                  tlsc_records_strerror(s->bad.last_reason));
    s->bad.count = 0;
    s->bad.last_ms = now;
}

/* Opens a record found for hs->id into hs->fetched. 0 = ok; else counted and logged (rate-limited). */
static int open_record(tlsc_session_hs_t *hs, const unsigned char *value, size_t len)
{
    tlsc_session_t *s = hs->owner;
    char key[KEY_MAX];
    int rc;

    make_key(s, hs->id, hs->id_len, key);
    tlsc_seal_aad_t aad = {.redis_key = key, .sni = hs->sni, .tls_version = (uint16_t)hs->version};
    rc = tlsc_records_decode(s->o.records, value, len, &aad, hs->id, hs->id_len, hs->version, &hs->fetched);
    if (rc != 0)
        note_bad_record(s, rc);
    return rc;
}

/* When a session stops being valid: its creation time plus its timeout (Unix seconds). */
static uint64_t session_expiry(const SSL_SESSION *sess)
{
    long t = SSL_SESSION_get_time(sess), timeout = SSL_SESSION_get_timeout(sess);

    return t > 0 && timeout > 0 ? (uint64_t)t + (uint64_t)timeout : 0;
}

static void decode_found(tlsc_session_hs_t *hs, const unsigned char *value, size_t len)
{
    tlsc_session_t *s = hs->owner;

    if (open_record(hs, value, len) != 0) {
        tlsc_stat_inc(&s->o.stats->lookups_miss);
        return;
    }
    tlsc_stat_inc(&s->o.stats->lookups_hit);
    /*
     * A TLS 1.2 session found in the store (made on another node, or evicted here) is kept in
     * the L1 for the next resumption — unless something was revoked since the read started. A
     * TLS 1.3 record was taken: it is gone everywhere.
     */
    if (s->o.l1 != NULL && hs->version == TLS1_2_VERSION &&
        tlsc_l1_put(s->o.l1, hs->id, hs->id_len, hs->version, value, len, session_expiry(hs->fetched), hs->l1_epoch) == 0)
        tlsc_stat_inc(&s->o.stats->l1_fills);
}

static void on_lookup_done(int status, const unsigned char *value, size_t len, void *data)
{
    tlsc_session_hs_t *hs = data;
    tlsc_stats_t *st = hs->owner->o.stats;

    hs->lookup = NULL;
    hs->phase = TLSC_HS_DECIDED;
    tlsc_hist_observe(&st->lookup_us, tlsc_stats_now_us() - hs->lookup_start_us);
    if (status == UV_ETIMEDOUT)
        tlsc_stat_inc(&st->lookups_timeout);
    else if (status < 0)
        tlsc_stat_inc(&st->lookups_error);
    else if (value == NULL)
        tlsc_stat_inc(&st->lookups_miss);
    else
        decode_found(hs, value, len);
    hs->io->resume(hs->conn);
}

/* The store's answer to the take that confirms a TLS 1.3 L1 hit: resume only when it existed. */
static void on_confirm_done(int status, int existed, void *data)
{
    tlsc_session_hs_t *hs = data;
    tlsc_stats_t *st = hs->owner->o.stats;

    hs->lookup = NULL;
    hs->phase = TLSC_HS_DECIDED;
    if (status == 0 && existed) {
        tlsc_stat_inc(&st->lookups_l1_hit);
        hs->from_l1 = 1;
    } else {
        if (status == UV_ETIMEDOUT)
            tlsc_stat_inc(&st->lookups_timeout);
        else if (status < 0)
            tlsc_stat_inc(&st->lookups_error);
        else
            tlsc_stat_inc(&st->l1_taken_elsewhere); /* another node (or a revocation) had it first */
        SSL_SESSION_free(hs->fetched);
        hs->fetched = NULL;
    }
    hs->io->resume(hs->conn);
}

/*
 * OpenSSL may ask twice in one handshake: after a HelloRetryRequest the second ClientHello is
 * looked up again, and a TLS 1.3 ticket was already taken from the store. So the fetched
 * session stays ours until the handshake ends (detach), and OpenSSL gets its own reference.
 */
static SSL_SESSION *on_get_session(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    tlsc_session_hs_t *hs = SSL_get_app_data(ssl);
    SSL_SESSION *sess = hs->fetched;

    *copy = 1; /* OpenSSL takes a reference of its own */
    if (sess == NULL || (size_t)id_len != hs->id_len || memcmp(id, hs->id, hs->id_len) != 0)
        return NULL;
    return sess;
}

/* ------------------------------------------------------------------------------------------ */
/* newSession: store, and hold the last flight until the store answers                        */

static void on_store_done(int status, void *data);

/* Sends the put for `sess` (whose record is `rec`); returns the request or NULL. */
static tlsc_store_req_t *send_store(tlsc_session_hs_t *hs, SSL *ssl, SSL_SESSION *sess, const char *key, size_t key_len,
                                    const unsigned char *rec, size_t rec_len, int *status)
{
    tlsc_session_t *s = hs->owner;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    char created[24], worker_id[12];

    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    const char *proto = SSL_get_version(ssl);
    const char *cipher = SSL_CIPHER_get_name(SSL_SESSION_get0_cipher(sess));
    snprintf(created, sizeof(created), "%llu", (unsigned long long)tlsc_wall_sec());
    snprintf(worker_id, sizeof(worker_id), "%u", s->o.worker_id);
    const tlsc_store_field_t fields[] = {
        {"der", rec, rec_len},
        {"proto", proto, strlen(proto)},
        {"cipher", cipher, strlen(cipher)},
        {"sni", hs->sni, strlen(hs->sni)},
        {"alpn", alpn, alpn_len},
        {"created", created, strlen(created)},
        {"node", s->o.cfg->node, strlen(s->o.cfg->node)},
        {"worker", worker_id, strlen(worker_id)},
    };
    return tlsc_store_put(s->o.store, key, key_len, fields, sizeof(fields) / sizeof(fields[0]), s->o.cfg->session_timeout,
                          s->o.cfg->store_timeout_ms, on_store_done, hs, status);
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    tlsc_session_hs_t *hs = SSL_get_app_data(ssl);
    tlsc_session_t *s = hs->owner;
    const unsigned char *sid;
    unsigned int sid_len;
    unsigned char *rec;
    size_t rec_len, key_len;
    char key[KEY_MAX];
    int version = SSL_version(ssl), to_store, to_l1;

    /*
     * Which node made the session travels with it (the proxy's PROXY v2 TLV tells backends). A
     * TLS 1.3 resumption re-issues a copy of the resumed session, which keeps the first node's name.
     */
    void *origin = NULL;
    size_t origin_len = 0;
    if (SSL_SESSION_get0_ticket_appdata(sess, &origin, &origin_len) != 1 || origin_len == 0)
        SSL_SESSION_set1_ticket_appdata(sess, s->o.cfg->node, strlen(s->o.cfg->node));
    /*
     * A session that travels in a stateless ticket needs no copy in the store: nobody will look
     * it up by ID. That is every TLS 1.3 session while tickets are on, and a TLS 1.2 one when
     * the client takes tickets.
     */
    if (!(SSL_get_options(ssl) & SSL_OP_NO_TICKET) && (version == TLS1_3_VERSION || hs->client_tickets))
        return 0;
    sid = SSL_SESSION_get_id(sess, &sid_len);
    to_store = sid_len > 0 && hs->n_stores < TLSC_SESSION_MAX_STORES && tlsc_store_ready(s->o.store);
    /* A TLS 1.3 ticket resumes only once the store confirms it: without a store copy, no L1 copy. */
    to_l1 = sid_len > 0 && s->o.l1 != NULL && (version == TLS1_2_VERSION || to_store);
    if (!to_store && !to_l1) {
        tlsc_stat_inc(&s->o.stats->stores_skipped);
        return 0;
    }
    key_len = make_key(s, sid, sid_len, key);
    tlsc_seal_aad_t aad = {.redis_key = key, .sni = hs->sni};
    if (tlsc_records_encode(s->o.records, sess, &aad, &rec, &rec_len) != 0) {
        tlsc_stat_inc(&s->o.stats->stores_skipped);
        return 0;
    }
    /* The same sealed record as in the store; a longer one than a slot holds lives only there. */
    if (to_l1 && tlsc_l1_put(s->o.l1, sid, sid_len, version, rec, rec_len, session_expiry(sess), 0) == 0)
        tlsc_stat_inc(&s->o.stats->l1_stores);
    if (!to_store) {
        tlsc_secure_free(rec, rec_len);
        tlsc_stat_inc(&s->o.stats->stores_skipped);
        return 0;
    }
    int status = 0;
    hs->store_start_us[hs->n_stores] = tlsc_stats_now_us();
    hs->stores[hs->n_stores] = send_store(hs, ssl, sess, key, key_len, rec, rec_len, &status);
    tlsc_secure_free(rec, rec_len);
    if (hs->stores[hs->n_stores] == NULL) {
        if (status == UV_ETIMEDOUT || status == UV_EAGAIN)
            tlsc_stat_inc(&s->o.stats->stores_timeout);
        else
            tlsc_stat_inc(&s->o.stats->stores_error);
        return 0;
    }
    if (hs->n_stores++ == 0)
        hs->io->hold(hs->conn);
    return 0; /* we keep no reference to `sess` */
}

static void on_store_done(int status, void *data)
{
    tlsc_session_hs_t *hs = data;
    tlsc_stats_t *st = hs->owner->o.stats;

    /* One store answers (and times out) in send order: this is stores[0]. */
    tlsc_hist_observe(&st->store_us, tlsc_stats_now_us() - hs->store_start_us[0]);
    memmove(&hs->stores[0], &hs->stores[1], (TLSC_SESSION_MAX_STORES - 1) * sizeof(hs->stores[0]));
    memmove(&hs->store_start_us[0], &hs->store_start_us[1], (TLSC_SESSION_MAX_STORES - 1) * sizeof(hs->store_start_us[0]));
    hs->stores[TLSC_SESSION_MAX_STORES - 1] = NULL;
    if (status == 0)
        tlsc_stat_inc(&st->stores_ok);
    else if (status == UV_ETIMEDOUT)
        tlsc_stat_inc(&st->stores_timeout);
    else
        tlsc_stat_inc(&st->stores_error);
    if (--hs->n_stores == 0)
        hs->io->release(hs->conn);
}

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                        */

tlsc_session_t *tlsc_session_new(const tlsc_session_options_t *o)
{
    tlsc_session_t *s;

    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->o = *o;
    s->prefix_len = (size_t)snprintf(s->prefix, sizeof(s->prefix), "%s:sess:", o->cfg->redis_prefix);
    if (s->prefix_len >= sizeof(s->prefix) || derive_sid_ctx(s, "", s->sid_ctx_default) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void tlsc_session_free(tlsc_session_t *s)
{
    free(s);
}

/*
 * Every session ID and stateful ticket identity we issue: 32 random bytes, except that a TLS 1.3
 * identity starts with tls13_tag and a TLS 1.2 ID never does, so a TLS 1.3 identity can be taken
 * from the store unconditionally (a TLS 1.2 ID, seen in clear on the wire, never names one).
 * The length stays 32: OpenSSL 3.0 looks a stateful TLS 1.3 identity up only when it is exactly
 * SSL_MAX_SSL_SESSION_ID_LENGTH long (tls_get_stateful_ticket). OpenSSL asks once the version
 * is chosen (TLS 1.2: processing the ClientHello; TLS 1.3: building each stateful
 * NewSessionTicket; never for a stateless ticket), refuses a length of 0 or above what it
 * offered, and checks the ID against its own cache (empty here: the store is the cache).
 * 224 random bits in a TLS 1.3 identity stay unguessable.
 */
static int on_generate_id(SSL *ssl, unsigned char *id, unsigned int *id_len)
{
    if (*id_len < SSL_MAX_SSL_SESSION_ID_LENGTH || RAND_bytes(id, SSL_MAX_SSL_SESSION_ID_LENGTH) != 1)
        return 0;
    if (SSL_version(ssl) == TLS1_3_VERSION)
        memcpy(id, tls13_tag, TLS13_TAG_LEN);
    else if (memcmp(id, tls13_tag, TLS13_TAG_LEN) == 0)
        id[0] ^= 0x80; /* one TLS 1.2 ID in 2^32 would have started with the tag */
    *id_len = SSL_MAX_SSL_SESSION_ID_LENGTH;
    return 1;
}

/*
 * A TLS 1.3 stateful ticket is only worth sending when its store is sent too: while the store is
 * not ready (the Redis link overdue or down), on_new_session skips the store and the ticket
 * would resume nowhere, costing the client a wasted offer (and the cluster a counted miss). So
 * once the client's Finished is read, before OpenSSL decides how many tickets to send, a
 * handshake whose store is not ready sends none; the client makes a full handshake next time, as
 * it would have anyway. Counted as a skipped store. Stateless tickets need no store.
 */
static void on_state(const SSL *ssl, int where, int ret)
{
    const tlsc_session_hs_t *hs;

    (void)ret;
    if (!(where & SSL_CB_ACCEPT_LOOP) || SSL_get_state(ssl) != TLS_ST_SR_FINISHED || SSL_version(ssl) != TLS1_3_VERSION ||
        !(SSL_get_options(ssl) & SSL_OP_NO_TICKET) || (hs = SSL_get_app_data(ssl)) == NULL || tlsc_store_ready(hs->owner->o.store))
        return;
    /* The callback hands us our own connection's SSL as const; the ticket count is ours to set. */
    if (SSL_set_num_tickets((SSL *)ssl, 0) == 1)
        tlsc_stat_inc(&hs->owner->o.stats->stores_skipped);
}

void tlsc_session_install(tlsc_session_t *s, tlsc_tls_t *tls)
{
    const tlsc_config_t *cfg = s->o.cfg;

    s->tls = tls;
    for (size_t i = 0; i < tlsc_tls_count(tls); i++) {
        SSL_CTX *ctx = tlsc_tls_ctx_at(tls, i);

        SSL_CTX_set_client_hello_cb(ctx, on_client_hello, s);
        SSL_CTX_set_session_id_context(ctx, s->sid_ctx_default, sizeof(s->sid_ctx_default));
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_generate_session_id(ctx, on_generate_id);
        if (cfg->resumption & TLSC_RESUME_CACHE) {
            /* The store is the only cache: OpenSSL keeps nothing in process memory. */
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
            SSL_CTX_sess_set_new_cb(ctx, on_new_session);
            SSL_CTX_sess_set_get_cb(ctx, on_get_session);
            SSL_CTX_set_info_callback(ctx, on_state);
        } else {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        }
        if (!(cfg->resumption & TLSC_RESUME_TICKETS))
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        else if (s->o.tickets != NULL && tlsc_tickets_install(s->o.tickets, ctx) != 0)
            tlsc_log_error("cannot install the ticket key callback: tickets disabled");
    }
}

/* A key that encrypts tickets now (held keys may all be next ones, not current yet). */
static int has_current_key(tlsc_tickets_t *t)
{
    unsigned char name[TLSC_KEYPROTO_NAME_LEN], key[32];
    int rc = tlsc_tickets_current_seal_key(t, name, key);

    OPENSSL_cleanse(key, sizeof(key));
    return rc == 0;
}

int tlsc_session_attach(tlsc_session_t *s, tlsc_session_hs_t *hs, SSL *ssl, const tlsc_session_io_t *io, void *conn)
{
    memset(hs, 0, sizeof(*hs));
    hs->owner = s;
    hs->io = io;
    hs->conn = conn;
    /*
     * With both modes and no ticket key held yet (daemon not reached, or every key expired),
     * TLS 1.3 falls back to stateful tickets through the store instead of issuing none.
     */
    if (s->o.cfg->resumption == TLSC_RESUME_BOTH && s->o.tickets != NULL && !has_current_key(s->o.tickets))
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
    return SSL_set_app_data(ssl, hs) == 1 ? 0 : -1;
}

void tlsc_session_detach(tlsc_session_hs_t *hs)
{
    tlsc_store_t *store = hs->owner != NULL ? hs->owner->o.store : NULL;

    if (hs->lookup != NULL) {
        tlsc_store_cancel(store, hs->lookup);
        hs->lookup = NULL;
    }
    for (size_t i = 0; i < hs->n_stores; i++) {
        tlsc_store_cancel(store, hs->stores[i]);
        hs->stores[i] = NULL;
    }
    hs->n_stores = 0;
    SSL_SESSION_free(hs->fetched);
    hs->fetched = NULL;
}
