#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <unistd.h>

#include "config.h"
#include "test.h"
#include "tls.h"

/*
 * tlsc_tls_new against a throwaway PKI made by tests/lib/certs.sh: SNI selection, PKCS#12,
 * DHE, ALPN and every bad-input error. Handshakes run in memory (BIO pairs), no sockets.
 */

static char pki[256];
static char err[512];
static tlsc_config_t cfg;
static tlsc_tls_t *tls;

static const char *f(const char *name)
{
    static char paths[32][512];
    static int next;
    char *p = paths[next++ % 32];

    snprintf(p, 512, "%s/%s", pki, name);
    return p;
}

/* Parses the flags (NULL-terminated) with `env`, then builds the contexts. */
static int load_env(const char **env, const char *first, ...)
{
    const char *argv[64];
    int argc = 0;
    va_list ap;

    argv[argc++] = "tlscache-server";
    argv[argc++] = "--insecure-plain-records"; /* session records are not what these tests are about */
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    tlsc_tls_free(tls);
    tls = NULL;
    tlsc_config_free(&cfg);
    if (tlsc_config_parse(&cfg, argc, (char **)argv, (char **)env, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        ASSERT(0);
    }
    memset(err, 'X', sizeof(err));
    return tlsc_tls_new(&cfg, &tls, err, sizeof(err));
}

static const char *no_env[] = {NULL};
#define load(...) load_env(no_env, __VA_ARGS__)

static void expect_error(int rc, const char *prefix, const char *part)
{
    if (rc >= 0 || tls != NULL || strncmp(err, prefix, strlen(prefix)) != 0 || (part != NULL && strstr(err, part) == NULL) ||
        strchr(err, '\n') != NULL) {
        fprintf(stderr, "\n    rc=%d, error \"%s\", wanted prefix \"%s\" and \"%s\"\n", rc, err, prefix, part ? part : "");
        ASSERT(0);
    }
    ASSERT_EQ(ERR_peek_error(), 0); /* the queue is left empty for the next caller */
}

/* ---------------------------------------------------------------- in-memory handshakes */

static int on_servername(SSL *ssl, int *al, void *arg)
{
    SSL_set_SSL_CTX(ssl, tlsc_tls_select(tls, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)));
    return SSL_TLSEXT_ERR_OK;
}

typedef struct {
    int ok;
    char alpn[32];
    char cipher[64];
    X509 *peer;   /* the certificate the server sent */
    long stapled; /* length of the OCSP response the server stapled, -1 for none */
} result_t;

static int ask_status; /* the client sends status_request */

/* One handshake between a fresh client and the server contexts; `sni`, `alpn` (wire format), `cipher` optional. */
static result_t handshake(const char *sni, const char *alpn_wire, size_t alpn_len, const char *cipher, int max_version)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c, *s;
    BIO *cb, *sb;
    result_t r = {0};
    int cdone = 0, sdone = 0;

    ASSERT(cctx != NULL);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    if (max_version)
        SSL_CTX_set_max_proto_version(cctx, max_version);
    if (cipher != NULL)
        ASSERT(SSL_CTX_set_cipher_list(cctx, cipher) == 1);
    SSL_CTX_set_tlsext_servername_callback(tlsc_tls_default_ctx(tls), on_servername);
    c = SSL_new(cctx);
    s = SSL_new(tlsc_tls_default_ctx(tls));
    ASSERT(c != NULL && s != NULL);
    ASSERT(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (sni != NULL)
        SSL_set_tlsext_host_name(c, sni);
    if (ask_status)
        ASSERT(SSL_set_tlsext_status_type(c, TLSEXT_STATUSTYPE_ocsp) == 1);
    if (alpn_wire != NULL)
        ASSERT(SSL_set_alpn_protos(c, (const unsigned char *)alpn_wire, (unsigned)alpn_len) == 0);
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        int rc;
        if (!cdone && (rc = SSL_do_handshake(c)) != 1 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
            break;
        cdone = SSL_is_init_finished(c);
        if (!sdone && (rc = SSL_do_handshake(s)) != 1 && SSL_get_error(s, rc) != SSL_ERROR_WANT_READ)
            break;
        sdone = SSL_is_init_finished(s);
    }
    r.ok = cdone && sdone;
    if (r.ok) {
        const unsigned char *p;
        unsigned plen;
        SSL_get0_alpn_selected(c, &p, &plen);
        snprintf(r.alpn, sizeof(r.alpn), "%.*s", (int)plen, (const char *)p);
        snprintf(r.cipher, sizeof(r.cipher), "%s", SSL_get_cipher_name(c));
        r.peer = SSL_get1_peer_certificate(c);
        r.stapled = SSL_get_tlsext_status_ocsp_resp(c, &p);
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    return r;
}

/* True when the certificate is valid for `name` (SAN DNS, wildcards as browsers do). */
static int cert_for(X509 *x, const char *name)
{
    return x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1;
}

/* ---------------------------------------------------------------- tests */

TEST(every_certificate_loads_and_sni_picks_the_right_one)
{
    const char *env[] = {NULL};
    SSL_CTX *def, *a, *b, *wild, *p12;

    ASSERT_EQ(load_env(env, "--cert", f("default.pem"), "--key", f("default.key"), "--cert", f("a.pem"), "--key", f("a.key"),
                       "--cert", f("b.pem"), "--key", f("b.key"), "--cert", f("wild.pem"), "--key", f("wild.key"), "--pfx",
                       f("p12.pfx"), "--pfx-pass-file", f("p12.pass"), NULL),
              0);
    ASSERT_EQ(tlsc_tls_count(tls), 5);
    def = tlsc_tls_ctx_at(tls, 0);
    a = tlsc_tls_ctx_at(tls, 1);
    b = tlsc_tls_ctx_at(tls, 2);
    wild = tlsc_tls_ctx_at(tls, 3);
    p12 = tlsc_tls_ctx_at(tls, 4);
    ASSERT(tlsc_tls_ctx_at(tls, 5) == NULL);
    ASSERT(tlsc_tls_default_ctx(tls) == def);

    ASSERT(tlsc_tls_select(tls, "a.example") == a);
    ASSERT(tlsc_tls_select(tls, "www.a.example") == a);
    ASSERT(tlsc_tls_select(tls, "WWW.A.Example") == a);
    ASSERT(tlsc_tls_select(tls, "a.example.") == a);
    ASSERT(tlsc_tls_select(tls, "b.example") == b);
    ASSERT(tlsc_tls_select(tls, "p12.example") == p12);
    ASSERT(tlsc_tls_select(tls, "localhost") == def);
    /* A wildcard stands for exactly one label. */
    ASSERT(tlsc_tls_select(tls, "x.w.example") == wild);
    ASSERT(tlsc_tls_select(tls, "X-1.W.EXAMPLE") == wild);
    ASSERT(tlsc_tls_select(tls, "w.example") == def);
    ASSERT(tlsc_tls_select(tls, ".w.example") == def);
    ASSERT(tlsc_tls_select(tls, "a.b.w.example") == def);
    ASSERT(tlsc_tls_select(tls, "xw.example") == def);
    /* No or unknown name: the first certificate. */
    ASSERT(tlsc_tls_select(tls, NULL) == def);
    ASSERT(tlsc_tls_select(tls, "") == def);
    ASSERT(tlsc_tls_select(tls, "unknown.example") == def);
    ASSERT(tlsc_tls_select(tls, "example") == def);
    ASSERT(tlsc_tls_select(tls, "*.w.example") == def);
}

TEST(handshake_serves_the_certificate_for_the_sni_name)
{
    static const struct {
        const char *sni, *want;
    } cases[] = {{"a.example", "a.example"},
                 {"www.a.example", "a.example"},
                 {"b.example", "b.example"},
                 {"host.w.example", "host.w.example"},
                 {"p12.example", "p12.example"},
                 {"nobody.example", "localhost"},
                 {NULL, "localhost"}};

    ASSERT_EQ(load("--cert", f("default.pem"), "--key", f("default.key"), "--cert", f("a.pem"), "--key", f("a.key"), "--cert",
                   f("b.pem"), "--key", f("b.key"), "--cert", f("wild.pem"), "--key", f("wild.key"), "--pfx", f("p12.pfx"),
                   "--pfx-pass-file", f("p12.pass"), NULL),
              0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result_t r = handshake(cases[i].sni, NULL, 0, NULL, 0);
        ASSERT(r.ok);
        if (!cert_for(r.peer, cases[i].want)) {
            fprintf(stderr, "\n    sni %s: wrong certificate\n", cases[i].sni ? cases[i].sni : "(none)");
            ASSERT(0);
        }
        X509_free(r.peer);
    }
}

TEST(shared_settings_are_applied_to_every_context)
{
    ASSERT_EQ(load("--cert", f("a.pem"), "--key", f("a.key"), "--pfx", f("p12.pfx"), "--pfx-pass-file", f("p12.pass"),
                   "--session-timeout", "123", "--min-tls", "1.2", "--max-tls", "1.2", "--ciphers", "ECDHE+AESGCM",
                   "--ciphersuites", "TLS_AES_256_GCM_SHA384", "--groups", "P-256:X25519", NULL),
              0);
    for (size_t i = 0; i < tlsc_tls_count(tls); i++) {
        SSL_CTX *ctx = tlsc_tls_ctx_at(tls, i);
        ASSERT_EQ(SSL_CTX_get_timeout(ctx), 123);
        ASSERT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
        ASSERT_EQ(SSL_CTX_get_max_proto_version(ctx), TLS1_2_VERSION);
        ASSERT(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
        ASSERT(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
        ASSERT(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
    }
    {
        result_t r = handshake("a.example", NULL, 0, NULL, 0);
        ASSERT(r.ok);
        ASSERT_STREQ(r.cipher, "ECDHE-ECDSA-AES256-GCM-SHA384"); /* server preference, TLS 1.2 only */
        X509_free(r.peer);
    }
}

TEST(alpn_uses_server_preference_and_no_overlap_is_not_fatal)
{
    result_t r;

    ASSERT_EQ(load("--cert", f("a.pem"), "--key", f("a.key"), "--alpn", "http/1.0,http/1.1", NULL), 0);
    r = handshake("a.example", "\x08http/1.1\x08http/1.0", 18, NULL, 0);
    ASSERT(r.ok);
    ASSERT_STREQ(r.alpn, "http/1.0");
    X509_free(r.peer);
    ASSERT_EQ(load("--cert", f("a.pem"), "--key", f("a.key"), "--alpn", "h2,http/1.1", NULL), 0);
    r = handshake("a.example", "\x08http/1.1", 9, NULL, 0);
    ASSERT(r.ok);
    ASSERT_STREQ(r.alpn, "http/1.1");
    X509_free(r.peer);
    r = handshake("a.example", "\x04spdy", 5, NULL, 0);
    ASSERT(r.ok);
    ASSERT_STREQ(r.alpn, "");
    X509_free(r.peer);
    r = handshake("a.example", NULL, 0, NULL, 0);
    ASSERT(r.ok);
    ASSERT_STREQ(r.alpn, "");
    X509_free(r.peer);
}

TEST(alpn_never_selects_a_protocol_the_responder_cannot_speak)
{
    result_t r;

    /* The README's example: curl offers h2 first; agreeing to it gave curl an empty reply. */
    ASSERT_EQ(load("--cert", f("a.pem"), "--key", f("a.key"), "--alpn", "h2,http/1.1", NULL), 0);
    r = handshake("a.example", "\x02h2\x08http/1.1", 12, NULL, 0);
    ASSERT(r.ok);
    ASSERT_STREQ(r.alpn, "http/1.1");
    X509_free(r.peer);
    r = handshake("a.example", "\x02h2", 3, NULL, 0);
    ASSERT(r.ok);
    ASSERT_STREQ(r.alpn, "");
    X509_free(r.peer);
}

TEST(default_tls12_ciphers_are_aead_only)
{
    result_t r;

    ASSERT_EQ(load("--cert", f("b.pem"), "--key", f("b.key"), NULL), 0);
    r = handshake("b.example", NULL, 0, "ECDHE-RSA-AES128-SHA", TLS1_2_VERSION); /* CBC: refused */
    ASSERT(!r.ok);
    X509_free(r.peer);
    r = handshake("b.example", NULL, 0, "ECDHE-RSA-AES128-GCM-SHA256", TLS1_2_VERSION);
    ASSERT(r.ok);
    X509_free(r.peer);
    r = handshake("b.example", NULL, 0, "DHE-RSA-AES128-GCM-SHA256", TLS1_2_VERSION); /* no --dhparam: no DHE */
    ASSERT(!r.ok);
    X509_free(r.peer);
    ASSERT_EQ(load("--cert", f("b.pem"), "--key", f("b.key"), "--ciphers", "ECDHE-RSA-AES128-SHA", NULL), 0);
    r = handshake("b.example", NULL, 0, "ECDHE-RSA-AES128-SHA", TLS1_2_VERSION); /* --ciphers still overrides */
    ASSERT(r.ok);
    X509_free(r.peer);
    ERR_clear_error();
}

TEST(dhparam_enables_dhe)
{
    result_t r;

    ASSERT_EQ(load("--cert", f("b.pem"), "--key", f("b.key"), "--dhparam", f("dhparam.pem"), NULL), 0);
    r = handshake("b.example", NULL, 0, "DHE-RSA-AES128-GCM-SHA256", TLS1_2_VERSION);
    ASSERT(r.ok);
    ASSERT_STREQ(r.cipher, "DHE-RSA-AES128-GCM-SHA256");
    X509_free(r.peer);

    /* Without it, a DHE-only client finds no common cipher. */
    ASSERT_EQ(load("--cert", f("b.pem"), "--key", f("b.key"), NULL), 0);
    r = handshake("b.example", NULL, 0, "DHE-RSA-AES128-GCM-SHA256", TLS1_2_VERSION);
    ASSERT(!r.ok);
}

TEST(pfx_passphrase_from_file_or_env)
{
    const char *env_ok[] = {"TLSCACHE_PFX_PASS=correct horse battery staple", NULL};
    const char *env_bad[] = {"TLSCACHE_PFX_PASS=nope", NULL};

    ASSERT_EQ(load("--pfx", f("p12.pfx"), "--pfx-pass-file", f("p12.pass"), NULL), 0);
    ASSERT_EQ(tlsc_tls_count(tls), 1);
    ASSERT(tlsc_tls_select(tls, "p12.example") == tlsc_tls_default_ctx(tls));
    ASSERT(SSL_CTX_get0_certificate(tlsc_tls_default_ctx(tls)) != NULL);
    ASSERT_EQ(load_env(env_ok, "--pfx", f("p12.pfx"), NULL), 0);
    ASSERT_EQ(ERR_peek_error(), 0);

    expect_error(load("--pfx", f("p12.pfx"), "--pfx-pass-file", f("wrong.pass"), NULL), "--pfx: ", "wrong passphrase");
    ASSERT(strstr(err, "p12.pfx") != NULL && strstr(err, "--pfx-pass-file") != NULL);
    ASSERT(strstr(err, "not the passphrase") == NULL);
    expect_error(load_env(env_bad, "--pfx", f("p12.pfx"), NULL), "--pfx: ", "wrong passphrase");
    ASSERT(strstr(err, "TLSCACHE_PFX_PASS") != NULL);
    expect_error(load("--pfx", f("p12.pfx"), NULL), "--pfx: ", "needs a passphrase");
    expect_error(load("--pfx", f("p12.pfx"), "--pfx-pass-file", f("missing.pass"), NULL), "--pfx-pass-file: ", "No such file");
    expect_error(load("--pfx", f("a.pem"), "--pfx-pass-file", f("p12.pass"), NULL), "--pfx: ", "not a PKCS#12 file");
    expect_error(load("--pfx", f("missing.pfx"), NULL), "--pfx: ", "cannot read");
}

TEST(bad_certificate_files_name_flag_and_file)
{
    expect_error(load("--cert", f("missing.pem"), "--key", f("a.key"), NULL), "--cert: ", "No such file or directory");
    ASSERT(strstr(err, "missing.pem") != NULL);
    expect_error(load("--cert", pki, "--key", f("a.key"), NULL), "--cert: ", "not a regular file");
    expect_error(load("--cert", f("a.pem"), "--key", f("missing.key"), NULL), "--key: ", "missing.key");
    expect_error(load("--cert", f("garbage.pem"), "--key", f("a.key"), NULL), "--cert: ", "is not a PEM certificate");
    ASSERT(strstr(err, "garbage.pem") != NULL);
    expect_error(load("--cert", f("a.key"), "--key", f("a.key"), NULL), "--cert: ", "is not a PEM certificate");
    expect_error(load("--cert", f("a.pem"), "--key", f("a.pem"), NULL), "--key: ", "not an unencrypted PEM private key");
    /* A key that parses but belongs to another certificate: same type, and another type. */
    expect_error(load("--cert", f("a.pem"), "--key", f("mismatch.key"), NULL), "--key: ", "does not match --cert");
    ASSERT(strstr(err, "mismatch.key") != NULL && strstr(err, "a.pem") != NULL);
    expect_error(load("--cert", f("a.pem"), "--key", f("b.key"), NULL), "--key: ", "does not match --cert");
    /* The second pair is checked as well as the first. */
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--cert", f("b.pem"), "--key", f("a.key"), NULL),
                 "--key: ", "does not match --cert");
    ASSERT(strstr(err, "b.pem") != NULL);
}

TEST(bad_dhparam_names_flag_and_file)
{
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--dhparam", f("bad-dhparam.pem"), NULL),
                 "--dhparam: ", "is not PEM DH parameters");
    ASSERT(strstr(err, "bad-dhparam.pem") != NULL);
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--dhparam", f("notdh.pem"), NULL), "--dhparam: ", "not DH");
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--dhparam", f("garbage.pem"), NULL),
                 "--dhparam: ", "is not PEM DH parameters");
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--dhparam", f("nothere.pem"), NULL),
                 "--dhparam: ", "No such file");
}

TEST(bad_cipher_and_group_lists_name_the_flag)
{
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--groups", "X25519:nosuchgroup", NULL),
                 "--groups: ", "unknown group \"nosuchgroup\"");
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--ciphers", "NOSUCHCIPHER", NULL), "--ciphers: ", "NOSUCHCIPHER");
    expect_error(load("--cert", f("a.pem"), "--key", f("a.key"), "--ciphersuites", "TLS_NOSUCH_SUITE", NULL),
                 "--ciphersuites: ", "TLS_NOSUCH_SUITE");
}

/* Writes a good OCSP response for `leaf_file`, signed by the test CA, valid from -60 s to +3600 s. */
static void write_ocsp(const char *leaf_file, const char *out_file, time_t *this_update, time_t *next_update)
{
    FILE *fp;
    X509 *ca, *leaf;
    EVP_PKEY *key;
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_RESPONSE *r;
    OCSP_CERTID *id;
    ASN1_TIME *t1, *t2;
    unsigned char *der = NULL;
    int len;

    ASSERT((fp = fopen(f("ca.pem"), "r")) != NULL && (ca = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL && fclose(fp) == 0);
    ASSERT((fp = fopen(f("ca.key"), "r")) != NULL && (key = PEM_read_PrivateKey(fp, NULL, NULL, NULL)) != NULL && fclose(fp) == 0);
    ASSERT((fp = fopen(leaf_file, "r")) != NULL && (leaf = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL && fclose(fp) == 0);
    *this_update = time(NULL) - 60;
    *next_update = *this_update + 3660;
    ASSERT(bs != NULL && (id = OCSP_cert_to_id(NULL, leaf, ca)) != NULL);
    ASSERT((t1 = ASN1_TIME_set(NULL, *this_update)) != NULL && (t2 = ASN1_TIME_set(NULL, *next_update)) != NULL);
    ASSERT(OCSP_basic_add1_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0, NULL, t1, t2) != NULL);
    ASSERT(OCSP_basic_sign(bs, ca, key, EVP_sha256(), NULL, 0) == 1);
    ASSERT((r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) != NULL);
    ASSERT((len = i2d_OCSP_RESPONSE(r, &der)) > 0);
    ASSERT((fp = fopen(out_file, "wb")) != NULL && fwrite(der, 1, (size_t)len, fp) == (size_t)len && fclose(fp) == 0);
    OPENSSL_free(der);
    OCSP_RESPONSE_free(r);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

TEST(ocsp_response_is_stapled_for_its_certificate_only_when_asked)
{
    time_t this_update, next_update, now = time(NULL);
    result_t r;

    write_ocsp(f("a.pem"), f("a.ocsp"), &this_update, &next_update);
    ASSERT_EQ(load("--cert", f("default.pem"), "--key", f("default.key"), "--cert", f("a.pem"), "--key", f("a.key"), "--ocsp",
                   "none", "--ocsp", f("a.ocsp"), NULL),
              0);
    /* Half-way through its validity the master fetches a fresh one (--ocsp-fetch); never without a file. */
    ASSERT_EQ(tlsc_tls_ocsp_refresh_at(tls, 1, now), this_update + (next_update - this_update) / 2);
    ASSERT_EQ(tlsc_tls_ocsp_refresh_at(tls, 0, now), 0);
    ask_status = 1;
    for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
        r = handshake("a.example", NULL, 0, NULL, v); /* the SNI switch picks a's context and its response */
        ASSERT(r.ok && cert_for(r.peer, "a.example"));
        ASSERT(r.stapled > 0);
        X509_free(r.peer);
        r = handshake(NULL, NULL, 0, NULL, v); /* the default certificate has none */
        ASSERT(r.ok);
        ASSERT_EQ(r.stapled, -1);
        X509_free(r.peer);
    }
    ask_status = 0;
    r = handshake("a.example", NULL, 0, NULL, 0); /* not asked, not sent */
    ASSERT(r.ok);
    ASSERT_EQ(r.stapled, -1);
    X509_free(r.peer);

    /* After the --cert pairs comes --pfx: the second --ocsp here is the PKCS#12 certificate's. */
    write_ocsp(f("p12.pem"), f("p12.ocsp"), &this_update, &next_update);
    ASSERT_EQ(load("--cert", f("a.pem"), "--key", f("a.key"), "--pfx", f("p12.pfx"), "--pfx-pass-file", f("p12.pass"), "--ocsp",
                   "none", "--ocsp", f("p12.ocsp"), NULL),
              0);
    ask_status = 1;
    r = handshake("p12.example", NULL, 0, NULL, 0);
    ASSERT(r.ok && cert_for(r.peer, "p12.example"));
    ASSERT(r.stapled > 0);
    X509_free(r.peer);
    ask_status = 0;

    /* a's response given for the default certificate: refused. */
    expect_error(load("--cert", f("default.pem"), "--key", f("default.key"), "--ocsp", f("a.ocsp"), NULL),
                 "--ocsp: ", "another certificate");
}

int main(void)
{
    const char *src = getenv("TLSC_SOURCE_DIR");
    char cmd[1024];

    if (src == NULL)
        src = ".";
    snprintf(pki, sizeof(pki), "/tmp/tlsc-test-tls-XXXXXX");
    ASSERT(mkdtemp(pki) != NULL);
    snprintf(cmd, sizeof(cmd), "bash -c '. \"%s/tests/lib/certs.sh\" && make_test_pki \"%s\"'", src, pki);
    ASSERT(system(cmd) == 0);

    RUN(every_certificate_loads_and_sni_picks_the_right_one);
    RUN(handshake_serves_the_certificate_for_the_sni_name);
    RUN(shared_settings_are_applied_to_every_context);
    RUN(alpn_uses_server_preference_and_no_overlap_is_not_fatal);
    RUN(alpn_never_selects_a_protocol_the_responder_cannot_speak);
    RUN(default_tls12_ciphers_are_aead_only);
    RUN(dhparam_enables_dhe);
    RUN(pfx_passphrase_from_file_or_env);
    RUN(bad_certificate_files_name_flag_and_file);
    RUN(bad_dhparam_names_flag_and_file);
    RUN(bad_cipher_and_group_lists_name_the_flag);
    RUN(ocsp_response_is_stapled_for_its_certificate_only_when_asked);

    tlsc_tls_free(tls);
    tlsc_config_free(&cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf \"%s\"", pki);
    ASSERT(system(cmd) == 0);
    TEST_DONE();
}
