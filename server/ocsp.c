/* This file's one job: judge an OCSP response against its certificate, and staple the good ones. */
#include "ocsp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "log.h"

/*
 * The response is judged in the order a client would: it must be a successful, signed
 * answer about this very certificate before its status or dates mean anything. Anything that
 * fails there is INVALID (a wrong file, not a fact about the certificate); then REVOKED and
 * UNKNOWN come from the certificate status, and last the dates decide GOOD or STALE.
 */

/* The stapled response, hung on its SSL_CTX as ex_data so it lives exactly as long. */
typedef struct {
    time_t next_update;
    int warned; /* this process said once that the response went stale */
    size_t len;
    unsigned char der[];
} staple_t;

static int staple_index = -1;
static CRYPTO_ONCE staple_once = CRYPTO_ONCE_STATIC_INIT;

/* ---------------------------------------------------------------- the check */

__attribute__((format(printf, 3, 4))) static tlsc_ocsp_verdict_t verdict(tlsc_ocsp_result_t *res, tlsc_ocsp_verdict_t v,
                                                                         const char *fmt, ...)
{
    va_list ap;

    res->verdict = v;
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof(res->why), fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return v;
}

/* An ASN1_TIME as seconds since the epoch, through its distance from `now`; 0 on failure. */
static time_t to_time(const ASN1_TIME *t, time_t now)
{
    ASN1_TIME *n = ASN1_TIME_set(NULL, now);
    int days = 0, secs = 0, ok = n != NULL && ASN1_TIME_diff(&days, &secs, n, t) == 1;

    ASN1_TIME_free(n);
    return ok ? now + (time_t)days * 86400 + secs : 0;
}

static const char *fmt_time(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "(time %lld)", (long long)t);
    return buf;
}

/* The certificate in `chain` that issued `leaf`, or NULL. */
static X509 *find_issuer(X509 *leaf, STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        if (X509_check_issued(c, leaf) == X509_V_OK)
            return c;
    }
    return NULL;
}

/* The SingleResponse about `leaf`, whichever hash its CertID uses; NULL when none is. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer)
{
    int n = OCSP_resp_count(bs);

    for (int i = 0; i < n; i++) {
        OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
        ASN1_OBJECT *md_oid = NULL;
        const EVP_MD *md;
        OCSP_CERTID *ours;
        int same;

        if (single == NULL || OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(single)) != 1)
            continue;
        if ((md = EVP_get_digestbyobj(md_oid)) == NULL || (ours = OCSP_cert_to_id(md, leaf, issuer)) == NULL)
            continue;
        same = OCSP_id_cmp(ours, OCSP_SINGLERESP_get0_id(single)) == 0;
        OCSP_CERTID_free(ours);
        if (same)
            return single;
    }
    return NULL;
}

/*
 * The signature, by the issuer itself or by a responder certificate it issued with the
 * OCSP-signing purpose (OCSP_basic_verify checks both: the signer's chain to the issuer, then
 * OCSP_check_issuer). The issuer is the only trust anchor, so a partial chain is allowed.
 */
static int signature_ok(OCSP_BASICRESP *bs, X509 *issuer, STACK_OF(X509) * chain, time_t now)
{
    X509_STORE *store = X509_STORE_new();
    int ok = 0;

    if (store != NULL && X509_STORE_add_cert(store, issuer) == 1) {
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
        X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), now);
        ok = OCSP_basic_verify(bs, chain, store, 0) == 1;
    }
    X509_STORE_free(store);
    return ok;
}

tlsc_ocsp_verdict_t tlsc_ocsp_check(const unsigned char *der, size_t len, X509 *leaf, STACK_OF(X509) * chain, time_t now,
                                    tlsc_ocsp_result_t *res)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_SINGLERESP *single;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    X509 *issuer;
    char t1[48], t2[48];
    int status, reason = -1;
    tlsc_ocsp_verdict_t v;

    memset(res, 0, sizeof(*res));
    if (len == 0 || len > TLSC_OCSP_MAX_LEN)
        return verdict(res, TLSC_OCSP_INVALID, "%zu bytes: not an OCSP response (1..%d bytes)", len, TLSC_OCSP_MAX_LEN);
    if ((issuer = find_issuer(leaf, chain)) == NULL)
        return verdict(res, TLSC_OCSP_INVALID,
                       "the certificate's issuer is not in its chain file; it is needed to check the response");
    if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL || p != der + len) {
        v = verdict(res, TLSC_OCSP_INVALID, "not a DER OCSP response");
        goto done;
    }
    if ((status = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        v = verdict(res, TLSC_OCSP_INVALID, "response status is %s, not successful", OCSP_response_status_str(status));
        goto done;
    }
    if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
        v = verdict(res, TLSC_OCSP_INVALID, "not a basic OCSP response");
        goto done;
    }
    if ((single = find_single(bs, leaf, issuer)) == NULL) {
        v = verdict(res, TLSC_OCSP_INVALID, "the response is about another certificate (no CertID matches this one)");
        goto done;
    }
    if (!signature_ok(bs, issuer, chain, now)) {
        unsigned long e = ERR_peek_last_error();
        v = verdict(res, TLSC_OCSP_INVALID, "the signature does not verify against the issuer or a responder it delegated (%s)",
                    e != 0 ? ERR_reason_error_string(e) : "no detail");
        goto done;
    }

    status = OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
    res->this_update = thisupd != NULL ? to_time(thisupd, now) : 0;
    res->next_update = nextupd != NULL ? to_time(nextupd, now) : 0;
    if (status == V_OCSP_CERTSTATUS_REVOKED)
        v = verdict(res, TLSC_OCSP_REVOKED, "the certificate is REVOKED since %s, reason %s",
                    rev != NULL ? fmt_time(to_time(rev, now), t1, sizeof(t1)) : "(no time)",
                    reason >= 0 ? OCSP_crl_reason_str(reason) : "not given");
    else if (status != V_OCSP_CERTSTATUS_GOOD)
        v = verdict(res, TLSC_OCSP_UNKNOWN, "the responder does not know the certificate (status unknown)");
    else if (res->this_update == 0 || res->this_update > now + TLSC_OCSP_SKEW_SEC)
        v = verdict(res, TLSC_OCSP_STALE, "thisUpdate %s is in the future", fmt_time(res->this_update, t1, sizeof(t1)));
    else if (res->next_update == 0)
        v = verdict(res, TLSC_OCSP_STALE, "the response has no nextUpdate, so no end of validity to staple it until");
    else if (res->next_update <= now)
        v = verdict(res, TLSC_OCSP_STALE, "nextUpdate %s has passed (thisUpdate %s)", fmt_time(res->next_update, t1, sizeof(t1)),
                    fmt_time(res->this_update, t2, sizeof(t2)));
    else
        v = verdict(res, TLSC_OCSP_GOOD, "good, valid until %s", fmt_time(res->next_update, t1, sizeof(t1)));

done:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return v;
}

const char *tlsc_ocsp_verdict_name(tlsc_ocsp_verdict_t v)
{
    static const char *const names[] = {"good", "stale", "unknown", "revoked", "invalid"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "invalid";
}

/* ---------------------------------------------------------------- fetching */

/* The first http:// OCSP URL in the certificate's AIA, copied to `out`; 0 or -ENOENT. */
static int responder_url(X509 *leaf, char *out, size_t outlen)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(leaf);
    int rc = -ENOENT;

    out[0] = '\0';
    for (int i = 0; i < sk_OPENSSL_STRING_num(urls); i++) {
        const char *u = sk_OPENSSL_STRING_value(urls, i);
        if (strncmp(u, "http://", 7) == 0 && strlen(u) < outlen) {
            snprintf(out, outlen, "%s", u);
            rc = 0;
            break;
        }
    }
    X509_email_free(urls);
    return rc;
}

__attribute__((format(printf, 3, 4))) static int fetch_fail(char *err, size_t errlen, const char *fmt, ...)
{
    char detail[200];
    unsigned long e = ERR_peek_last_error();
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (e != 0 && n >= 0 && (size_t)n < errlen) {
        ERR_error_string_n(e, detail, sizeof(detail));
        snprintf(err + n, errlen - (size_t)n, " (%s)", detail);
    }
    ERR_clear_error();
    return -EIO;
}

int tlsc_ocsp_fetch(X509 *leaf, STACK_OF(X509) * chain, int timeout_sec, unsigned char **der, size_t *len, char *url, size_t urllen,
                    char *err, size_t errlen)
{
    X509 *issuer = find_issuer(leaf, chain);
    OCSP_REQUEST *req = NULL;
    OCSP_CERTID *id = NULL;
    unsigned char *reqder = NULL;
    char *host = NULL, *port = NULL, *path = NULL;
    BIO *reqbio = NULL, *resp = NULL;
    char *data;
    long n;
    int reqlen, use_ssl = 0, rc = -EIO;

    *der = NULL;
    *len = 0;
    if (responder_url(leaf, url, urllen) != 0)
        return fetch_fail(err, errlen, "the certificate names no http:// OCSP responder (Authority Information Access)");
    if (issuer == NULL)
        return fetch_fail(err, errlen, "the certificate's issuer is not in its chain file");
    if (OSSL_HTTP_parse_url(url, &use_ssl, NULL, &host, &port, NULL, &path, NULL, NULL) != 1 || use_ssl)
        return fetch_fail(err, errlen, "cannot use the responder URL %s", url);
    if ((req = OCSP_REQUEST_new()) == NULL || (id = OCSP_cert_to_id(NULL, leaf, issuer)) == NULL ||
        OCSP_request_add0_id(req, id) == NULL) {
        OCSP_CERTID_free(id);
        fetch_fail(err, errlen, "cannot build the OCSP request");
        goto done;
    }
    if ((reqlen = i2d_OCSP_REQUEST(req, &reqder)) <= 0 || (reqbio = BIO_new_mem_buf(reqder, reqlen)) == NULL) {
        fetch_fail(err, errlen, "cannot encode the OCSP request");
        goto done;
    }
    /* proxy "" = no proxy, whatever http_proxy says; the size cap and the deadline bound it all. */
    resp = OSSL_HTTP_transfer(NULL, host, port, path, 0, "", NULL, NULL, NULL, NULL, NULL, 0, NULL, "application/ocsp-request",
                              reqbio, "application/ocsp-response", 1, TLSC_OCSP_MAX_LEN, timeout_sec, 0);
    if (resp == NULL) {
        fetch_fail(err, errlen, "POST %s failed or timed out (%d s)", url, timeout_sec);
        goto done;
    }
    if ((n = BIO_get_mem_data(resp, &data)) <= 0 || n > TLSC_OCSP_MAX_LEN || (*der = OPENSSL_memdup(data, (size_t)n)) == NULL) {
        fetch_fail(err, errlen, "%s: empty, oversized or unreadable answer", url);
        goto done;
    }
    *len = (size_t)n;
    rc = 0;

done:
    BIO_free(resp);
    BIO_free(reqbio);
    OPENSSL_free(reqder);
    OCSP_REQUEST_free(req);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- stapling */

static void free_staple(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void init_staple_index(void)
{
    staple_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_staple);
}

/*
 * Called during the handshake with the context the connection ended on (after the SNI
 * switch), and by OpenSSL only when the client sent status_request. OpenSSL frees the copy.
 */
static int on_status_request(SSL *ssl, void *arg)
{
    staple_t *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), staple_index);
    unsigned char *copy;

    if (st == NULL || SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp)
        return SSL_TLSEXT_ERR_NOACK;
    if (time(NULL) >= st->next_update) {
        if (!st->warned)
            tlsc_log_warn("ocsp: a stapled response reached its nextUpdate; it is no longer sent (give a fresh --ocsp file and "
                          "SIGHUP)");
        st->warned = 1;
        return SSL_TLSEXT_ERR_NOACK;
    }
    if ((copy = OPENSSL_memdup(st->der, st->len)) == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)st->len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

int tlsc_ocsp_staple(SSL_CTX *ctx, const unsigned char *der, size_t len, time_t next_update)
{
    staple_t *st, *old;

    if (!CRYPTO_THREAD_run_once(&staple_once, init_staple_index) || staple_index < 0)
        return -ENOMEM;
    if ((st = malloc(sizeof(*st) + len)) == NULL)
        return -ENOMEM;
    st->next_update = next_update;
    st->warned = 0;
    st->len = len;
    memcpy(st->der, der, len);
    old = SSL_CTX_get_ex_data(ctx, staple_index);
    if (SSL_CTX_set_ex_data(ctx, staple_index, st) != 1) {
        free(st);
        return -ENOMEM;
    }
    free(old);
    SSL_CTX_set_tlsext_status_cb(ctx, on_status_request);
    return 0;
}

int tlsc_ocsp_stapled(const SSL_CTX *ctx)
{
    return staple_index >= 0 && SSL_CTX_get_ex_data(ctx, staple_index) != NULL;
}
