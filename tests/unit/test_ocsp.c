#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "ocsp.h"
#include "test.h"

/*
 * tlsc_ocsp_check against responses built here with chosen status, dates, signer and CertID
 * hash: a throwaway CA, two leaves, a delegated responder, a responder without the
 * OCSP-signing purpose and a stranger's CA. Nothing touches the disk or the network.
 */

static EVP_PKEY *ca_key, *resp_key, *noeku_key, *rogue_key;
static X509 *ca, *leaf, *other, *resp_cert, *noeku_cert, *rogue;
static STACK_OF(X509) * chain;
static time_t now;

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ASSERT(k != NULL);
    return k;
}

/* A certificate for `key` named `cn`, signed by `issuer`/`ikey` (itself when NULL), with extensions. */
static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long serial, const char *const *exts)
{
    X509 *x = X509_new();
    X509V3_CTX v3;

    ASSERT(x != NULL);
    ASSERT(X509_set_version(x, 2) == 1);
    ASSERT(ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1);
    ASSERT(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) == 1);
    ASSERT(X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)) == 1);
    ASSERT(X509_gmtime_adj(X509_getm_notBefore(x), -86400) != NULL);
    ASSERT(X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400) != NULL);
    ASSERT(X509_set_pubkey(x, key) == 1);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    for (int i = 0; exts != NULL && exts[i] != NULL; i += 2) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i], exts[i + 1]);
        ASSERT(e != NULL);
        ASSERT(X509_add_ext(x, e, -1) == 1);
        X509_EXTENSION_free(e);
    }
    ASSERT(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
    return x;
}

enum { NO_NEXT = 1 << 30 };

typedef struct {
    X509 *about; /* the certificate the CertID names (default: leaf) */
    const EVP_MD *id_md;
    int status;              /* V_OCSP_CERTSTATUS_* */
    long this_off, next_off; /* seconds from now; next_off NO_NEXT = no nextUpdate */
    X509 *signer;            /* default: the CA */
    EVP_PKEY *signer_key;
    int resp_status; /* OCSP_RESPONSE_STATUS_*; non-successful has no body */
    int nocerts;     /* leave the signer's certificate out */
} spec_t;

/* Builds the DER response `s` describes; *len gets its size. The caller frees it with OPENSSL_free. */
static unsigned char *build(spec_t s, int *len)
{
    OCSP_BASICRESP *bs;
    OCSP_RESPONSE *r;
    OCSP_CERTID *id;
    ASN1_TIME *thisupd, *nextupd = NULL, *rev = NULL;
    unsigned char *der = NULL;

    if (s.resp_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        ASSERT((r = OCSP_response_create(s.resp_status, NULL)) != NULL);
    } else {
        ASSERT((bs = OCSP_BASICRESP_new()) != NULL);
        ASSERT((id = OCSP_cert_to_id(s.id_md ? s.id_md : EVP_sha1(), s.about ? s.about : leaf, ca)) != NULL);
        ASSERT((thisupd = X509_gmtime_adj(NULL, s.this_off)) != NULL);
        if (s.next_off != NO_NEXT)
            ASSERT((nextupd = X509_gmtime_adj(NULL, s.next_off)) != NULL);
        if (s.status == V_OCSP_CERTSTATUS_REVOKED)
            ASSERT((rev = X509_gmtime_adj(NULL, -7200)) != NULL);
        ASSERT(OCSP_basic_add1_status(bs, id, s.status,
                                      s.status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0, rev, thisupd,
                                      nextupd) != NULL);
        ASSERT(OCSP_basic_sign(bs, s.signer ? s.signer : ca, s.signer_key ? s.signer_key : ca_key, EVP_sha256(), NULL,
                               s.nocerts ? OCSP_NOCERTS : 0) == 1);
        ASSERT((r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) != NULL);
        OCSP_CERTID_free(id);
        ASN1_TIME_free(thisupd);
        ASN1_TIME_free(nextupd);
        ASN1_TIME_free(rev);
        OCSP_BASICRESP_free(bs);
    }
    ASSERT((*len = i2d_OCSP_RESPONSE(r, &der)) > 0);
    OCSP_RESPONSE_free(r);
    return der;
}

/* Checks the response `s` describes and asserts the verdict and a part of its detail. */
static tlsc_ocsp_result_t expect(spec_t s, tlsc_ocsp_verdict_t v, const char *part)
{
    tlsc_ocsp_result_t res;
    int len;
    unsigned char *der = build(s, &len);

    if (tlsc_ocsp_check(der, (size_t)len, leaf, chain, now, &res) != v || res.verdict != v ||
        (part != NULL && strstr(res.why, part) == NULL)) {
        fprintf(stderr, "\n    verdict %s (%s), wanted %s with \"%s\"\n", tlsc_ocsp_verdict_name(res.verdict), res.why,
                tlsc_ocsp_verdict_name(v), part ? part : "");
        ASSERT(0);
    }
    ASSERT_EQ(ERR_peek_error(), 0);
    OPENSSL_free(der);
    return res;
}

/* GOOD(.field = value): the defaults of a good response, some overridden (later designators win). */
#pragma GCC diagnostic ignored "-Woverride-init"
#define GOOD(...) ((spec_t){.status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600, __VA_ARGS__})

TEST(good_response_signed_by_the_issuer_is_good_until_next_update)
{
    tlsc_ocsp_result_t r = expect(GOOD(), TLSC_OCSP_GOOD, "good, valid until");

    ASSERT(r.next_update >= now + 3590 && r.next_update <= now + 3610);
    ASSERT(r.this_update >= now - 70 && r.this_update <= now - 50);
}

TEST(good_response_from_a_delegated_responder_is_good)
{
    expect(GOOD(.signer = resp_cert, .signer_key = resp_key), TLSC_OCSP_GOOD, NULL);
}

TEST(certid_with_sha256_matches_too)
{
    expect(GOOD(.id_md = EVP_sha256()), TLSC_OCSP_GOOD, NULL);
}

TEST(revoked_response_is_revoked_with_its_reason)
{
    expect(GOOD(.status = V_OCSP_CERTSTATUS_REVOKED), TLSC_OCSP_REVOKED, "keyCompromise");
    /* Revoked stays revoked however old the response. */
    expect(GOOD(.status = V_OCSP_CERTSTATUS_REVOKED, .this_off = -3 * 86400, .next_off = -2 * 86400), TLSC_OCSP_REVOKED, NULL);
}

TEST(unknown_status_is_not_good)
{
    expect(GOOD(.status = V_OCSP_CERTSTATUS_UNKNOWN), TLSC_OCSP_UNKNOWN, "unknown");
}

TEST(past_next_update_missing_next_update_or_future_this_update_is_stale)
{
    expect(GOOD(.this_off = -2 * 86400, .next_off = -86400), TLSC_OCSP_STALE, "has passed");
    expect(GOOD(.this_off = -2 * 86400, .next_off = -60), TLSC_OCSP_STALE, "has passed");
    expect(GOOD(.next_off = NO_NEXT), TLSC_OCSP_STALE, "no nextUpdate");
    expect(GOOD(.this_off = 3600, .next_off = 7200), TLSC_OCSP_STALE, "in the future");
    /* A little clock skew between us and the responder is fine. */
    expect(GOOD(.this_off = TLSC_OCSP_SKEW_SEC - 10), TLSC_OCSP_GOOD, NULL);
}

TEST(response_about_another_certificate_is_invalid)
{
    expect(GOOD(.about = other), TLSC_OCSP_INVALID, "another certificate");
}

TEST(bad_signers_are_invalid)
{
    /* A stranger's key, its certificate included so that the signer is found. */
    expect(GOOD(.signer = rogue, .signer_key = rogue_key), TLSC_OCSP_INVALID, "signature");
    /* Issued by our CA, but not for OCSP signing. */
    expect(GOOD(.signer = noeku_cert, .signer_key = noeku_key), TLSC_OCSP_INVALID, "signature");
    /* Our CA's signature with one bit flipped (no certificates follow it: it ends the DER). */
    tlsc_ocsp_result_t res;
    int len;
    unsigned char *der = build(GOOD(.nocerts = 1), &len);

    ASSERT_EQ(tlsc_ocsp_check(der, (size_t)len, leaf, chain, now, &res), TLSC_OCSP_GOOD);
    der[len - 1] ^= 1;
    ASSERT_EQ(tlsc_ocsp_check(der, (size_t)len, leaf, chain, now, &res), TLSC_OCSP_INVALID);
    ASSERT(strstr(res.why, "signature") != NULL);
    OPENSSL_free(der);
}

TEST(unsuccessful_or_malformed_bytes_are_invalid)
{
    tlsc_ocsp_result_t res;
    unsigned char *der, *big;
    int len;

    expect((spec_t){.resp_status = OCSP_RESPONSE_STATUS_TRYLATER}, TLSC_OCSP_INVALID, "trylater");
    expect((spec_t){.resp_status = OCSP_RESPONSE_STATUS_UNAUTHORIZED}, TLSC_OCSP_INVALID, "not successful");

    der = build(GOOD(), &len);
    ASSERT_EQ(tlsc_ocsp_check(der, (size_t)len - 1, leaf, chain, now, &res), TLSC_OCSP_INVALID); /* truncated */
    ASSERT(strstr(res.why, "not a DER OCSP response") != NULL);
    ASSERT((big = malloc((size_t)len + 1)) != NULL);
    memcpy(big, der, (size_t)len);
    big[len] = 0;
    ASSERT_EQ(tlsc_ocsp_check(big, (size_t)len + 1, leaf, chain, now, &res), TLSC_OCSP_INVALID); /* trailing byte */
    ASSERT_EQ(tlsc_ocsp_check(der, 0, leaf, chain, now, &res), TLSC_OCSP_INVALID);
    ASSERT_EQ(tlsc_ocsp_check(der, TLSC_OCSP_MAX_LEN + 1, leaf, chain, now, &res), TLSC_OCSP_INVALID); /* over the cap, not read */
    ASSERT_EQ(tlsc_ocsp_check((const unsigned char *)"\x30\x03\x0a\x01\x00", 5, leaf, chain, now, &res), TLSC_OCSP_INVALID);
    ASSERT_EQ(ERR_peek_error(), 0);
    free(big);
    OPENSSL_free(der);
}

TEST(issuer_missing_from_the_chain_is_invalid)
{
    tlsc_ocsp_result_t res;
    STACK_OF(X509) *empty = sk_X509_new_null();
    int len;
    unsigned char *der = build(GOOD(), &len);

    ASSERT_EQ(tlsc_ocsp_check(der, (size_t)len, leaf, empty, now, &res), TLSC_OCSP_INVALID);
    ASSERT(strstr(res.why, "issuer is not in its chain") != NULL);
    ASSERT_EQ(tlsc_ocsp_check(der, (size_t)len, leaf, NULL, now, &res), TLSC_OCSP_INVALID);
    sk_X509_free(empty);
    OPENSSL_free(der);
}

TEST(staple_hangs_a_copy_on_the_context)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int len;
    unsigned char *der = build(GOOD(), &len);

    ASSERT(ctx != NULL);
    ASSERT_EQ(tlsc_ocsp_stapled(ctx), 0);
    ASSERT_EQ(tlsc_ocsp_staple(ctx, der, (size_t)len, now + 3600), 0);
    ASSERT_EQ(tlsc_ocsp_stapled(ctx), 1);
    ASSERT_EQ(tlsc_ocsp_staple(ctx, der, (size_t)len, now + 3600), 0); /* replacing frees the old copy (ASan) */
    OPENSSL_free(der);
    SSL_CTX_free(ctx);
}

int main(void)
{
    static const char *const ca_ext[] = {"basicConstraints", "critical,CA:TRUE", "keyUsage", "critical,keyCertSign,cRLSign", NULL};
    static const char *const leaf_ext[] = {"basicConstraints", "CA:FALSE", "extendedKeyUsage", "serverAuth", NULL};
    static const char *const resp_ext[] = {"basicConstraints", "CA:FALSE", "extendedKeyUsage", "OCSPSigning", NULL};
    EVP_PKEY *leaf_key, *other_key;

    now = time(NULL);
    ca_key = new_key();
    ca = new_cert("test CA", ca_key, NULL, NULL, 1, ca_ext);
    leaf_key = new_key();
    leaf = new_cert("a.example", leaf_key, ca, ca_key, 2, leaf_ext);
    other_key = new_key();
    other = new_cert("b.example", other_key, ca, ca_key, 3, leaf_ext);
    resp_key = new_key();
    resp_cert = new_cert("test OCSP responder", resp_key, ca, ca_key, 4, resp_ext);
    noeku_key = new_key();
    noeku_cert = new_cert("not a responder", noeku_key, ca, ca_key, 5, leaf_ext);
    rogue_key = new_key();
    rogue = new_cert("test CA", rogue_key, NULL, NULL, 1, ca_ext); /* same name as ours, other key */
    ASSERT((chain = sk_X509_new_null()) != NULL);
    ASSERT(sk_X509_push(chain, ca) > 0);

    RUN(good_response_signed_by_the_issuer_is_good_until_next_update);
    RUN(good_response_from_a_delegated_responder_is_good);
    RUN(certid_with_sha256_matches_too);
    RUN(revoked_response_is_revoked_with_its_reason);
    RUN(unknown_status_is_not_good);
    RUN(past_next_update_missing_next_update_or_future_this_update_is_stale);
    RUN(response_about_another_certificate_is_invalid);
    RUN(bad_signers_are_invalid);
    RUN(unsuccessful_or_malformed_bytes_are_invalid);
    RUN(issuer_missing_from_the_chain_is_invalid);
    RUN(staple_hangs_a_copy_on_the_context);

    sk_X509_free(chain);
    X509_free(ca), X509_free(leaf), X509_free(other), X509_free(resp_cert), X509_free(noeku_cert), X509_free(rogue);
    EVP_PKEY_free(ca_key), EVP_PKEY_free(leaf_key), EVP_PKEY_free(other_key), EVP_PKEY_free(resp_key);
    EVP_PKEY_free(noeku_key), EVP_PKEY_free(rogue_key);
    TEST_DONE();
}
