/*
 * The resumption hooks (Node's newSession / resumeSession, done with OpenSSL callbacks):
 *
 * - on_client_hello runs before OpenSSL looks for a session. It binds the connection to its
 *   certificate and to a session ID context derived from the cluster name and the SNI (so a
 *   session made for one name never resumes under another), finds the ID the client offers
 *   (TLS 1.2 session ID, or TLS 1.3 PSK identity of a stateful ticket), starts one Redis read
 *   and parks the handshake with SSL_CLIENT_HELLO_RETRY. The loop keeps serving others.
 * - on_lookup_done decodes the record and resumes the handshake; on_get_session then hands
 *   OpenSSL the fetched session. Miss, timeout, Redis down or a bad record: full handshake.
 * - on_new_session writes a new session to Redis in one MULTI/EXEC and marks the connection
 *   so worker.c holds back the bytes that would let the client offer it (TLS 1.2 Finished,
 *   TLS 1.3 NewSessionTicket) until Redis acknowledges or the store timeout passes.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/tls1.h>

#include "internal.h"
#include "log.h"
#include "record.h"
#include "seal.h"
#include "util.h"

#define KEY_MAX (sizeof(((tlsc_worker_t *)0)->sess_prefix) + 2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1)

static void make_key(const tlsc_worker_t *w, const unsigned char *id, size_t id_len, char *key, size_t *key_len)
{
    size_t n = strlen(w->sess_prefix);

    memcpy(key, w->sess_prefix, n);
    tlsc_hex_encode(key + n, id, id_len);
    *key_len = n + 2 * id_len;
}

/* SHA-256 of the cluster name and the SNI: one context per (cluster, name). */
static void derive_sid_ctx(const tlsc_worker_t *w, const char *sni, unsigned char out[SSL_MAX_SID_CTX_LENGTH])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, "tlscache-sid-ctx", 17) != 1 ||
        EVP_DigestUpdate(md, w->cfg->cluster, strlen(w->cfg->cluster) + 1) != 1 || EVP_DigestUpdate(md, sni, strlen(sni)) != 1 ||
        EVP_DigestFinal_ex(md, out, &n) != 1) {
        /* Only allocation can fail here; fall back to a context that matches nothing stored. */
        memset(out, 0xff, SSL_MAX_SID_CTX_LENGTH);
    }
    EVP_MD_CTX_free(md);
}

/* derive_sid_ctx through a small direct-mapped cache: the same few names come again and again. */
static void sid_ctx_for(tlsc_worker_t *w, const char *sni, unsigned char out[SSL_MAX_SID_CTX_LENGTH])
{
    uint32_t h = 2166136261u;
    size_t slot;

    for (const char *p = sni; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    slot = h % (sizeof(w->sid_cache) / sizeof(w->sid_cache[0]));
    if (strcmp(w->sid_cache[slot].sni, sni) != 0) {
        derive_sid_ctx(w, sni, w->sid_cache[slot].sid_ctx);
        snprintf(w->sid_cache[slot].sni, sizeof(w->sid_cache[slot].sni), "%s", sni);
    }
    memcpy(out, w->sid_cache[slot].sid_ctx, SSL_MAX_SID_CTX_LENGTH);
}

/* Does the client offer TLS 1.3, and may we negotiate it? */
static int will_be_tls13(SSL *ssl, const tlsc_config_t *cfg)
{
    const unsigned char *p;
    size_t len;

    if (cfg->max_tls != 0 && cfg->max_tls < TLS1_3_VERSION)
        return 0;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) || len < 1 || p[0] != len - 1)
        return 0;
    for (size_t i = 1; i + 1 < len; i += 2) {
        if (p[i] == 0x03 && p[i + 1] == 0x04)
            return 1;
    }
    return 0;
}

static void on_lookup_done(int status, const redisReply *reply, void *data);

static int on_client_hello(SSL *ssl, int *al, void *arg)
{
    tlsc_conn_t *c = SSL_get_app_data(ssl);
    tlsc_worker_t *w = c->worker;
    const unsigned char *p, *id = NULL;
    unsigned char sid_ctx[SSL_MAX_SID_CTX_LENGTH];
    size_t len, id_len = 0;
    int tls13;

    if (c->state == TLSC_CONN_LOOKUP)
        return SSL_CLIENT_HELLO_RETRY;
    if (c->hello_done)
        return SSL_CLIENT_HELLO_SUCCESS;
    c->hello_done = 1;
    /* The session_ticket extension is looked at once: present = the client takes tickets. */
    size_t ticket_len = 0;
    c->client_tickets = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &p, &ticket_len) == 1;

    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len)) {
        if (tlsc_clienthello_sni(p, len, c->sni) != 0) {
            w->stats.sni_rejected++;
            *al = SSL_AD_ILLEGAL_PARAMETER;
            return SSL_CLIENT_HELLO_ERROR;
        }
        SSL_CTX *ctx = tlsc_tls_select(w->tls, c->sni);
        if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
            *al = SSL_AD_INTERNAL_ERROR;
            return SSL_CLIENT_HELLO_ERROR;
        }
        sid_ctx_for(w, c->sni, sid_ctx);
        SSL_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx));
    } else {
        SSL_set_session_id_context(ssl, w->sid_ctx_default, sizeof(w->sid_ctx_default));
    }

    if (!(w->cfg->resumption & TLSC_RESUME_CACHE))
        return SSL_CLIENT_HELLO_SUCCESS;

    /*
     * Which ID will OpenSSL look up? With TLS 1.3 the legacy session ID is a random
     * middlebox-compatibility value: only the PSK identity of a stateful ticket counts, and
     * only when stateless tickets are off (else the identity is a ticket, not an ID).
     */
    tls13 = will_be_tls13(ssl, w->cfg);
    if (tls13) {
        if ((SSL_get_options(ssl) & SSL_OP_NO_TICKET) && SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &p, &len) &&
            tlsc_clienthello_psk_identity(p, len, &id, &id_len) == 0 && id_len <= SSL_MAX_SSL_SESSION_ID_LENGTH) {
            c->lookup_version = TLS1_3_VERSION;
        } else {
            id = NULL;
        }
    } else {
        len = SSL_client_hello_get0_session_id(ssl, &p);
        /*
         * A client that sends a non-empty ticket while tickets are on is resumed (or not) by the
         * ticket; its session ID is then only the RFC 5077 echo value, not worth a lookup.
         */
        int ticket_offered = !(SSL_get_options(ssl) & SSL_OP_NO_TICKET) && ticket_len > 0;
        if (len > 0 && len <= SSL_MAX_SSL_SESSION_ID_LENGTH && !ticket_offered) {
            id = p;
            id_len = len;
            c->lookup_version = TLS1_2_VERSION;
        }
    }
    if (id == NULL || id_len == 0)
        return SSL_CLIENT_HELLO_SUCCESS;

    memcpy(c->lookup_id, id, id_len);
    c->lookup_id_len = id_len;
    if (!tlsc_redis_ready(w->redis)) {
        w->stats.lookups_skipped++;
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    char key[KEY_MAX];
    size_t key_len;
    int status = 0;
    make_key(w, id, id_len, key, &key_len);
    if (c->lookup_version == TLS1_3_VERSION) {
        /* Stateful TLS 1.3 tickets are single use, cluster-wide: read and delete at once. */
        static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"};
        static const size_t multi_len[] = {5}, exec_len[] = {4};
        const char *hget[] = {"HGET", key, "der"}, *del[] = {"DEL", key};
        size_t hget_len[] = {4, key_len, 3}, del_len[] = {3, key_len};
        const int argc[] = {1, 3, 2, 1};
        const char *const *argv[] = {multi, hget, del, exec};
        const size_t *const argvlen[] = {multi_len, hget_len, del_len, exec_len};
        c->lookup_req = tlsc_redis_send(w->redis, 4, argc, argv, argvlen, w->cfg->lookup_timeout_ms, on_lookup_done, c, &status);
    } else {
        const char *hget[] = {"HGET", key, "der"};
        size_t hget_len[] = {4, key_len, 3};
        c->lookup_req = tlsc_redis_command(w->redis, 3, hget, hget_len, w->cfg->lookup_timeout_ms, on_lookup_done, c, &status);
    }
    if (c->lookup_req == NULL) {
        if (status == UV_ETIMEDOUT || status == UV_EAGAIN)
            w->stats.lookups_timeout++;
        else
            w->stats.lookups_error++;
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    c->state = TLSC_CONN_LOOKUP;
    return SSL_CLIENT_HELLO_RETRY;
}

/*
 * With ticket keys from the daemon every record is sealed, and only sealed records are
 * accepted: a plain one planted in Redis is refused. Without a daemon records are plain DER.
 */
/* The key name that marks a record sealed under the fallback key (not a daemon key name). */
static const unsigned char fallback_name[TLSC_SEAL_NAME_LEN] = "tlscache-psk-v1";

static int seal_key_for(tlsc_worker_t *w, const unsigned char name[TLSC_SEAL_NAME_LEN], unsigned char key[TLSC_SEAL_KEY_LEN])
{
    if (memcmp(name, fallback_name, TLSC_SEAL_NAME_LEN) == 0) {
        memcpy(key, w->fallback_seal_key, TLSC_SEAL_KEY_LEN);
        return 0;
    }
    return tlsc_tickets_seal_key(w->tickets, name, key);
}

static SSL_SESSION *decode_record(tlsc_conn_t *c, const redisReply *val)
{
    tlsc_worker_t *w = c->worker;
    const unsigned char *rec = (const unsigned char *)val->str;
    size_t len = val->len;
    SSL_SESSION *sess = NULL;

    if (w->tickets == NULL) {
        if (len >= 2 && rec[0] == TLSC_RECORD_PLAIN)
            sess = tlsc_record_decode_der(rec + 1, len - 1, c->lookup_id, c->lookup_id_len, c->lookup_version);
    } else if (len >= 2 && rec[0] == TLSC_RECORD_SEALED && len - 1 <= TLSC_RECORD_MAX + TLSC_SEAL_OVERHEAD) {
        unsigned char name[TLSC_SEAL_NAME_LEN], key[TLSC_SEAL_KEY_LEN], der[TLSC_RECORD_MAX];
        char rkey[KEY_MAX];
        size_t rkey_len, der_len;

        make_key(w, c->lookup_id, c->lookup_id_len, rkey, &rkey_len);
        rkey[rkey_len] = '\0';
        tlsc_seal_aad_t aad = {.redis_key = rkey, .sni = c->sni, .tls_version = (uint16_t)c->lookup_version};
        if (tlsc_seal_key_name(rec + 1, len - 1, name) == 0 && seal_key_for(w, name, key) == 0 &&
            tlsc_unseal(key, &aad, rec + 1, len - 1, der, sizeof(der), &der_len) == 0) {
            sess = tlsc_record_decode_der(der, der_len, c->lookup_id, c->lookup_id_len, c->lookup_version);
            OPENSSL_cleanse(der, der_len);
        }
        OPENSSL_cleanse(key, sizeof(key));
    }
    ERR_clear_error();
    return sess;
}

/* Serializes `sess` into a record: sealed under the current key with a daemon, else plain. */
static int encode_record(tlsc_conn_t *c, SSL_SESSION *sess, const char *rkey, unsigned char **out, size_t *outlen)
{
    tlsc_worker_t *w = c->worker;
    unsigned char name[TLSC_SEAL_NAME_LEN], key[TLSC_SEAL_KEY_LEN], *plain, *rec;
    size_t plain_len, sealed_len;
    int rc = -1;

    if (tlsc_record_encode_plain(sess, &plain, &plain_len) != 0)
        return -1;
    if (w->tickets == NULL) {
        *out = plain;
        *outlen = plain_len;
        return 0;
    }
    /* No current key (daemon not reached yet, or all expired): the cluster-secret fallback. */
    if (tlsc_tickets_current_seal_key(w->tickets, name, key) != 0) {
        memcpy(name, fallback_name, sizeof(name));
        memcpy(key, w->fallback_seal_key, sizeof(key));
    }
    if ((rec = malloc(plain_len + TLSC_SEAL_OVERHEAD)) == NULL)
        goto done;
    rec[0] = TLSC_RECORD_SEALED;
    tlsc_seal_aad_t aad = {.redis_key = rkey, .sni = c->sni, .tls_version = (uint16_t)SSL_SESSION_get_protocol_version(sess)};
    if (tlsc_seal(key, name, &aad, plain + 1, plain_len - 1, rec + 1, plain_len - 1 + TLSC_SEAL_OVERHEAD, &sealed_len) != 0) {
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

static void on_lookup_done(int status, const redisReply *reply, void *data)
{
    tlsc_conn_t *c = data;
    tlsc_worker_t *w = c->worker;
    const redisReply *val = reply;

    c->lookup_req = NULL;
    if (status == UV_ETIMEDOUT) {
        w->stats.lookups_timeout++;
    } else if (status < 0) {
        w->stats.lookups_error++;
    } else {
        if (c->lookup_version == TLS1_3_VERSION)
            val = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 ? reply->element[0] : NULL;
        if (val == NULL || (val->type != REDIS_REPLY_NIL && val->type != REDIS_REPLY_STRING)) {
            w->stats.lookups_error++;
        } else if (val->type == REDIS_REPLY_NIL) {
            w->stats.lookups_miss++;
        } else if ((c->fetched = decode_record(c, val)) != NULL) {
            w->stats.lookups_hit++;
        } else {
            w->stats.records_bad++;
            w->stats.lookups_miss++;
            tlsc_log_debug("session record for a %zu-byte ID does not decode: full handshake", c->lookup_id_len);
        }
    }
    c->state = TLSC_CONN_HANDSHAKE;
    tlsc__conn_drive(c);
}

static SSL_SESSION *on_get_session(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    tlsc_conn_t *c = SSL_get_app_data(ssl);
    SSL_SESSION *sess = c->fetched;

    *copy = 0; /* OpenSSL takes over our reference */
    if (sess == NULL || (size_t)id_len != c->lookup_id_len || memcmp(id, c->lookup_id, c->lookup_id_len) != 0)
        return NULL;
    c->fetched = NULL;
    return sess;
}

static void on_store_done(int status, const redisReply *reply, void *data);

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    tlsc_conn_t *c = SSL_get_app_data(ssl);
    tlsc_worker_t *w = c->worker;
    const unsigned char *sid, *alpn = NULL;
    unsigned int sid_len, alpn_len = 0;
    unsigned char *rec;
    size_t rec_len, slot;
    char key[KEY_MAX], created[24], worker_id[12];
    size_t key_len;
    int status = 0;

    /*
     * A session that travels in a stateless ticket needs no copy in Redis: nobody will look it
     * up by ID. That is every TLS 1.3 session while tickets are on, and a TLS 1.2 one when the
     * client takes tickets.
     */
    if (!(SSL_get_options(ssl) & SSL_OP_NO_TICKET) && (SSL_version(ssl) == TLS1_3_VERSION || c->client_tickets))
        return 0;
    sid = SSL_SESSION_get_id(sess, &sid_len);
    if (sid_len == 0 || !tlsc_redis_ready(w->redis)) {
        w->stats.stores_skipped++;
        return 0;
    }
    /* store_reqs[] is kept in send order: the oldest store is always store_reqs[0]. */
    slot = c->stores_pending;
    make_key(w, sid, sid_len, key, &key_len);
    key[key_len] = '\0';
    if (slot == TLSC_MAX_STORES || encode_record(c, sess, key, &rec, &rec_len) != 0) {
        w->stats.stores_skipped++;
        return 0;
    }
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    const char *proto = SSL_get_version(ssl);
    const char *cipher = SSL_CIPHER_get_name(SSL_SESSION_get0_cipher(sess));
    const char *node = w->cfg->node;
    snprintf(created, sizeof(created), "%llu", (unsigned long long)tlsc_wall_sec());
    snprintf(worker_id, sizeof(worker_id), "%u", w->id);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", w->cfg->session_timeout);

    static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"};
    static const size_t multi_len[] = {5}, exec_len[] = {4};
    const char *hset[] = {"HSET",    key,      "der",    (const char *)rec,
                          "proto",   proto,    "cipher", cipher,
                          "sni",     c->sni,   "alpn",   alpn ? (const char *)alpn : "",
                          "created", created,  "node",   node,
                          "worker",  worker_id};
    size_t hset_len[] = {4, key_len,  3, rec_len,         5, strlen(proto), 6, strlen(cipher),   3, strlen(c->sni),
                         4, alpn_len, 7, strlen(created), 4, strlen(node),  6, strlen(worker_id)};
    const char *expire[] = {"EXPIRE", key, ttl};
    size_t expire_len[] = {6, key_len, strlen(ttl)};
    const int argc[] = {1, 18, 3, 1};
    const char *const *argv[] = {multi, hset, expire, exec};
    const size_t *const argvlen[] = {multi_len, hset_len, expire_len, exec_len};

    c->store_reqs[slot] = tlsc_redis_send(w->redis, 4, argc, argv, argvlen, w->cfg->store_timeout_ms, on_store_done, c, &status);
    tlsc_secure_free(rec, rec_len);
    if (c->store_reqs[slot] == NULL) {
        w->stats.stores_error++;
        return 0;
    }
    c->stores_pending++;
    return 0; /* we keep no reference to `sess` */
}

static void on_store_done(int status, const redisReply *reply, void *data)
{
    tlsc_conn_t *c = data;
    tlsc_worker_t *w = c->worker;

    /* One Redis link answers (and times out) in send order: this is store_reqs[0]. */
    memmove(&c->store_reqs[0], &c->store_reqs[1], (TLSC_MAX_STORES - 1) * sizeof(c->store_reqs[0]));
    c->store_reqs[TLSC_MAX_STORES - 1] = NULL;
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY)
        w->stats.stores_ok++;
    else
        w->stats.stores_error++;
    if (--c->stores_pending == 0)
        tlsc__conn_drive(c);
}

void tlsc__session_install(tlsc_worker_t *w, tlsc_tls_t *tls)
{
    derive_sid_ctx(w, "", w->sid_ctx_default);
    for (size_t i = 0; i < tlsc_tls_count(tls); i++) {
        SSL_CTX *ctx = tlsc_tls_ctx_at(tls, i);

        SSL_CTX_set_client_hello_cb(ctx, on_client_hello, w);
        SSL_CTX_set_session_id_context(ctx, w->sid_ctx_default, sizeof(w->sid_ctx_default));
        SSL_CTX_set_num_tickets(ctx, 1);
        if (w->cfg->resumption & TLSC_RESUME_CACHE) {
            /* Redis is the only cache: OpenSSL keeps nothing in process memory. */
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
            SSL_CTX_sess_set_new_cb(ctx, on_new_session);
            SSL_CTX_sess_set_get_cb(ctx, on_get_session);
        } else {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        }
        if (!(w->cfg->resumption & TLSC_RESUME_TICKETS))
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        else if (w->tickets != NULL && tlsc_tickets_install(w->tickets, ctx) != 0)
            tlsc_log_error("cannot install the ticket key callback: tickets disabled");
    }
}

void tlsc__session_conn_release(tlsc_conn_t *c)
{
    if (c->lookup_req != NULL) {
        tlsc_redis_cancel(c->lookup_req);
        c->lookup_req = NULL;
    }
    for (size_t i = 0; i < TLSC_MAX_STORES; i++) {
        if (c->store_reqs[i] != NULL) {
            tlsc_redis_cancel(c->store_reqs[i]);
            c->store_reqs[i] = NULL;
        }
    }
    c->stores_pending = 0;
    SSL_SESSION_free(c->fetched);
    c->fetched = NULL;
}
