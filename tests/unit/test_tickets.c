/*
 * The ticket key holder and callback with real OpenSSL handshakes over memory BIOs: two
 * "nodes" (two SSL_CTXs, two holders) fed the same key set resume each other's tickets.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "keyd.h"
#include "test.h"
#include "tickets.h"

static uint64_t fake_now = 100000;
static uint64_t clock_fn(void *data)
{
    return fake_now;
}

static EVP_PKEY *pkey;
static X509 *cert;

static void make_cert(void)
{
    pkey = EVP_EC_gen("P-256");
    ASSERT(pkey != NULL);
    cert = X509_new();
    ASSERT_EQ(X509_set_version(cert, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_set_pubkey(cert, pkey);
    ASSERT(X509_sign(cert, pkey, EVP_sha256()) > 0);
}

static SSL_CTX *server_ctx(tlsc_tickets_t *t)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ASSERT(ctx != NULL);
    ASSERT_EQ(SSL_CTX_use_certificate(ctx, cert), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(ctx, pkey), 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tlsc", 4);
    ASSERT_EQ(tlsc_tickets_install(t, ctx), 0);
    return ctx;
}

/*
 * One handshake of a fresh client against `sctx`, offering `offer` (may be NULL). Returns
 * whether the session was resumed; `*got` receives the client's new session (may be NULL).
 */
static int handshake(SSL_CTX *sctx, int version, SSL_SESSION *offer, SSL_SESSION **got)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c, *s;
    BIO *cb, *sb;
    int cdone = 0, sdone = 0, reused;
    unsigned char tmp[16];

    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);
    /* No client cache: freeing a context flushes its cache and marks those sessions dead. */
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
    c = SSL_new(cctx);
    s = SSL_new(sctx);
    ASSERT_EQ(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (offer)
        ASSERT_EQ(SSL_set_session(c, offer), 1);
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone)
            cdone = SSL_do_handshake(c) == 1;
        if (!sdone)
            sdone = SSL_do_handshake(s) == 1;
    }
    ASSERT(cdone && sdone);
    /* Let the client read TLS 1.3 NewSessionTicket messages. */
    for (int i = 0; i < 4; i++) {
        size_t n;
        SSL_read_ex(c, tmp, sizeof(tmp), &n);
        SSL_read_ex(s, tmp, sizeof(tmp), &n);
    }
    reused = SSL_session_reused(c);
    if (got) {
        SSL_SESSION *sess = SSL_get1_session(c);
        *got = sess && SSL_SESSION_has_ticket(sess) ? sess : NULL;
        if (sess && *got == NULL)
            SSL_SESSION_free(sess);
    }
    /* A clean close: OpenSSL marks a session not resumable when its connection just vanishes. */
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return reused;
}

static void make_key(tlsc_keyproto_key_t *k, uint64_t nb, uint64_t na)
{
    RAND_bytes(k->name, 16);
    RAND_bytes(k->secret, 32);
    k->secret[0] |= 1;
    k->role = TLSC_KEYPROTO_ROLE_CURRENT;
    k->not_before = nb;
    k->not_after = na;
}

static void window(tlsc_keyproto_keyset_t *set, uint64_t epoch)
{
    memset(set, 0, sizeof(*set));
    set->epoch = epoch;
    set->count = 2;
    make_key(&set->keys[0], fake_now - 10, fake_now + 100); /* current */
    make_key(&set->keys[1], fake_now + 50, fake_now + 200); /* next */
}

static const int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};

TEST(ticket_from_node_a_resumes_on_node_b)
{
    for (int v = 0; v < 2; v++) {
        tlsc_tickets_t *ta = tlsc_tickets_new(clock_fn, NULL), *tb = tlsc_tickets_new(clock_fn, NULL);
        tlsc_keyproto_keyset_t set;
        SSL_SESSION *sess = NULL;
        tlsc_tickets_stats_t st;

        window(&set, 1);
        ASSERT_EQ(tlsc_tickets_apply(ta, &set, 1), 0);
        ASSERT_EQ(tlsc_tickets_apply(tb, &set, 1), 0);
        SSL_CTX *a = server_ctx(ta), *b = server_ctx(tb);
        ASSERT_EQ(handshake(a, versions[v], NULL, &sess), 0);
        ASSERT(sess != NULL);
        ASSERT_EQ(handshake(b, versions[v], sess, NULL), 1);
        tlsc_tickets_stats(tb, &st);
        ASSERT_EQ(st.decrypted, 1);
        ASSERT_EQ(st.renewed, 0);
        SSL_SESSION_free(sess);
        SSL_CTX_free(a);
        SSL_CTX_free(b);
        tlsc_tickets_free(ta);
        tlsc_tickets_free(tb);
    }
}

TEST(ticket_from_old_key_is_renewed_and_expired_key_is_full_handshake)
{
    for (int v = 0; v < 2; v++) {
        tlsc_tickets_t *t = tlsc_tickets_new(clock_fn, NULL);
        tlsc_keyproto_keyset_t set;
        SSL_SESSION *sess = NULL, *fresh = NULL;
        tlsc_tickets_stats_t st;
        uint64_t start = fake_now;

        window(&set, 1);
        ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), 0);
        SSL_CTX *ctx = server_ctx(t);
        ASSERT_EQ(handshake(ctx, versions[v], NULL, &sess), 0);
        tlsc_tickets_stats(t, &st);
        uint64_t issued = st.issued;
        /* The next key takes over by clock: the old ticket still opens and is renewed. */
        fake_now = start + 60;
        ASSERT_EQ(handshake(ctx, versions[v], sess, &fresh), 1);
        tlsc_tickets_stats(t, &st);
        ASSERT_EQ(st.renewed, 1);
        ASSERT(st.issued > issued); /* a fresh ticket under the new key */
        ASSERT(fresh != NULL);
        /* Past the first key's not_after its ticket is unknown; the renewed one still resumes. */
        fake_now = start + 150;
        ASSERT_EQ(handshake(ctx, versions[v], sess, NULL), 0);
        tlsc_tickets_stats(t, &st);
        ASSERT_EQ(st.unknown_key, 1);
        ASSERT_EQ(handshake(ctx, versions[v], fresh, NULL), 1);
        fake_now = start;
        SSL_SESSION_free(sess);
        SSL_SESSION_free(fresh);
        SSL_CTX_free(ctx);
        tlsc_tickets_free(t);
    }
}

TEST(no_key_held_issues_no_ticket_and_handshake_succeeds)
{
    for (int v = 0; v < 2; v++) {
        tlsc_tickets_t *t = tlsc_tickets_new(clock_fn, NULL);
        tlsc_keyproto_keyset_t set;
        SSL_SESSION *sess = NULL;
        tlsc_tickets_stats_t st;
        SSL_CTX *ctx = server_ctx(t);

        ASSERT_EQ(handshake(ctx, versions[v], NULL, &sess), 0);
        ASSERT(sess == NULL);
        tlsc_tickets_stats(t, &st);
        ASSERT_EQ(st.issued, 0);
        ASSERT(st.no_key >= 1);
        /* Only expired keys: still no ticket. */
        memset(&set, 0, sizeof(set));
        set.epoch = 1;
        set.count = 1;
        make_key(&set.keys[0], fake_now - 100, fake_now - 1);
        ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), 0);
        ASSERT_EQ(tlsc_tickets_count(t), 0);
        ASSERT_EQ(handshake(ctx, versions[v], NULL, &sess), 0);
        ASSERT(sess == NULL);
        SSL_CTX_free(ctx);
        tlsc_tickets_free(t);
    }
}

TEST(apply_is_atomic_merges_by_name_and_refuses_stale_epochs)
{
    tlsc_tickets_t *t = tlsc_tickets_new(clock_fn, NULL);
    tlsc_keyproto_keyset_t a, b, out;
    unsigned char k1[32], k2[32], name[16];

    window(&a, 5);
    ASSERT_EQ(tlsc_tickets_apply(t, &a, 1), 0);
    ASSERT_EQ(tlsc_tickets_epoch(t), 5);
    ASSERT_EQ(tlsc_tickets_apply(t, &a, 1), TLSC_TICKETS_ESTALE);
    /* A later push that omits a key does not remove it. */
    memset(&b, 0, sizeof(b));
    b.epoch = 6;
    b.count = 1;
    make_key(&b.keys[0], fake_now + 150, fake_now + 300);
    ASSERT_EQ(tlsc_tickets_apply(t, &b, 1), 0);
    ASSERT_EQ(tlsc_tickets_count(t), 3);
    /* A set reusing a held name with another secret is refused whole. */
    b.epoch = 7;
    b.count = 2;
    make_key(&b.keys[0], fake_now, fake_now + 400);
    b.keys[1] = a.keys[0];
    b.keys[1].secret[5] ^= 1;
    ASSERT_EQ(tlsc_tickets_apply(t, &b, 1), TLSC_TICKETS_EINVAL);
    ASSERT_EQ(tlsc_tickets_count(t), 3);
    ASSERT_EQ(tlsc_tickets_epoch(t), 6);
    /* An offer (not pushed) merges whatever its epoch. */
    b.keys[1] = a.keys[0];
    b.epoch = 1;
    ASSERT_EQ(tlsc_tickets_apply(t, &b, 0), 0);
    ASSERT_EQ(tlsc_tickets_count(t), 4);
    ASSERT_EQ(tlsc_tickets_epoch(t), 6);
    tlsc_tickets_export(t, &out);
    ASSERT_EQ(out.count, 4);
    ASSERT_EQ(out.epoch, 6);
    ASSERT_EQ(tlsc_keyproto_keyset_validate(&out), 0);
    /* The sealing key is the same on every holder and gone once its key expired. */
    ASSERT_EQ(tlsc_tickets_current_seal_key(t, name, k1), 0);
    tlsc_tickets_t *t2 = tlsc_tickets_new(clock_fn, NULL);
    ASSERT_EQ(tlsc_tickets_apply(t2, &out, 0), 0);
    ASSERT_EQ(tlsc_tickets_seal_key(t2, name, k2), 0);
    ASSERT(memcmp(k1, k2, 32) == 0);
    fake_now += 1000;
    ASSERT_EQ(tlsc_tickets_seal_key(t2, name, k2), TLSC_TICKETS_ENOENT);
    ASSERT_EQ(tlsc_tickets_current_seal_key(t2, name, k2), TLSC_TICKETS_ENOENT);
    fake_now -= 1000;
    tlsc_tickets_free(t);
    tlsc_tickets_free(t2);
}

/*
 * A key that would open tickets longer than any window allows is refused with its whole set:
 * 64 keys valid until 2^62 were once adopted and pushed, and every worker kept and re-offered
 * them at each restart.
 */
TEST(keys_outside_the_window_bounds_are_refused)
{
    tlsc_tickets_t *t = tlsc_tickets_new(clock_fn, NULL);
    tlsc_keyproto_keyset_t set;

    memset(&set, 0, sizeof(set));
    set.epoch = 1;
    set.count = 1;
    make_key(&set.keys[0], fake_now - 1, (uint64_t)1 << 62);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 0), TLSC_TICKETS_EINVAL); /* the master's copy too */
    ASSERT_EQ(tlsc_tickets_count(t), 0);
    ASSERT_EQ(tlsc_tickets_epoch(t), 0);
    /* The default bound is the daemon's own cap on --rotate + --ticket-lifetime: 7 days. */
    make_key(&set.keys[0], fake_now - 1, fake_now - 1 + TLSC_TICKETS_MAX_LIFE_DEFAULT + 1);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    make_key(&set.keys[0], fake_now - 1, fake_now - 1 + TLSC_TICKETS_MAX_LIFE_DEFAULT);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), 0);
    /* A key starting further ahead than a rotation can push it. */
    set.epoch = 2;
    make_key(&set.keys[0], fake_now + TLSC_TICKETS_MAX_LIFE_DEFAULT + TLSC_TICKETS_SKEW_SEC + 1,
             fake_now + TLSC_TICKETS_MAX_LIFE_DEFAULT + TLSC_TICKETS_SKEW_SEC + 100);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    /* One bad key refuses the whole set. */
    window(&set, 3);
    set.count = 3;
    make_key(&set.keys[2], fake_now - 1, (uint64_t)1 << 62);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    ASSERT_EQ(tlsc_tickets_count(t), 1);
    /* A tighter bound (rotate + lifetime = 2 h) drops what no longer fits, and refuses the same. */
    tlsc_tickets_set_max_life(t, 7200);
    ASSERT_EQ(tlsc_tickets_count(t), 0);
    window(&set, 4); /* keys living 110 and 150 s */
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), 0);
    set.epoch = 5;
    set.count = 1;
    make_key(&set.keys[0], fake_now - 1, fake_now - 1 + 7201);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    ASSERT_EQ(tlsc_tickets_count(t), 2);
    tlsc_tickets_free(t);
}

/* A push below the applied epoch is an error the daemon hears about; the same epoch re-sent is a replay. */
TEST(stale_push_is_refused_and_a_replay_is_not)
{
    tlsc_tickets_t *t = tlsc_tickets_new(clock_fn, NULL);
    tlsc_keyproto_keyset_t set;

    window(&set, 5);
    ASSERT_EQ(tlsc_keyd_tickets_apply(NULL, &set, t), 0);
    ASSERT_EQ(tlsc_keyd_tickets_apply(NULL, &set, t), 0);
    set.epoch = 4;
    ASSERT_EQ(tlsc_keyd_tickets_apply(NULL, &set, t), TLSC_TICKETS_ESTALE);
    set.epoch = 0; /* what a daemon whose epoch wrapped pushes */
    ASSERT_EQ(tlsc_keyd_tickets_apply(NULL, &set, t), TLSC_TICKETS_ESTALE);
    ASSERT_EQ(tlsc_tickets_epoch(t), 5);
    tlsc_tickets_free(t);
}

/* The window a daemon announces (protocol 2) bounds the keys a worker accepts to rotate + lifetime. */
TEST(announced_window_bounds_the_keys_a_worker_accepts)
{
    tlsc_tickets_t *t = tlsc_tickets_new(clock_fn, NULL);
    tlsc_keyproto_keyset_t set;

    memset(&set, 0, sizeof(set));
    set.epoch = 1;
    set.count = 1;
    make_key(&set.keys[0], fake_now - 1, fake_now - 1 + 7200);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), 0); /* fine under the 7-day default */
    tlsc_keyd_tickets_window(NULL, 1800, 1800, 900, t);
    ASSERT_EQ(tlsc_tickets_count(t), 0); /* dropped: lives longer than 3600 s */
    set.epoch = 2;
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    make_key(&set.keys[0], fake_now - 1, fake_now - 1 + 3600);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), 0);
    set.epoch = 3;
    make_key(&set.keys[0], fake_now + 3600 + TLSC_TICKETS_SKEW_SEC + 1, fake_now + 3600 + TLSC_TICKETS_SKEW_SEC + 2);
    ASSERT_EQ(tlsc_tickets_apply(t, &set, 1), TLSC_TICKETS_EINVAL);
    tlsc_tickets_free(t);
}

int main(void)
{
    make_cert();
    RUN(ticket_from_node_a_resumes_on_node_b);
    RUN(ticket_from_old_key_is_renewed_and_expired_key_is_full_handshake);
    RUN(no_key_held_issues_no_ticket_and_handshake_succeeds);
    RUN(apply_is_atomic_merges_by_name_and_refuses_stale_epochs);
    RUN(keys_outside_the_window_bounds_are_refused);
    RUN(stale_push_is_refused_and_a_replay_is_not);
    RUN(announced_window_bounds_the_keys_a_worker_accepts);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    TEST_DONE();
}
