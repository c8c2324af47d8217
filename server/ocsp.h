#ifndef TLSC_OCSP_H
#define TLSC_OCSP_H

/*
 * OCSP stapling: an operator-supplied DER OCSP response is checked against its certificate
 * (tlsc_ocsp_check, pure: bytes and certificates in, a verdict out) and, when good, hung on
 * the certificate's SSL_CTX (tlsc_ocsp_staple) so that a client asking for status_request
 * gets it in the handshake. Only a GOOD response is ever stapled.
 */

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/** Largest response file accepted (a response with its responder certificate is a few KB). */
#define TLSC_OCSP_MAX_LEN (64 * 1024)

/** A thisUpdate this far in our future is still accepted (clock skew between us and the CA). */
#define TLSC_OCSP_SKEW_SEC 300

typedef enum {
    TLSC_OCSP_GOOD = 0, /* staple it */
    TLSC_OCSP_STALE,    /* nextUpdate passed, thisUpdate in the future, or no nextUpdate: not stapled */
    TLSC_OCSP_UNKNOWN,  /* the responder does not know the certificate: not stapled */
    TLSC_OCSP_REVOKED,  /* the certificate is revoked: refused */
    TLSC_OCSP_INVALID,  /* unparsable, unsuccessful, for another certificate, bad signature: refused */
} tlsc_ocsp_verdict_t;

typedef struct {
    tlsc_ocsp_verdict_t verdict;
    time_t this_update, next_update; /* 0 when absent or not reached */
    char why[256];                   /* one line: what was found (reason, dates, the failing check) */
} tlsc_ocsp_result_t;

/**
 * Checks the DER response `der` for certificate `leaf`, whose issuer must be in `chain` (the
 * certificates that follow the leaf in its chain file). It must parse, have status
 * successful, hold a SingleResponse whose CertID (with the hash that response uses) names
 * `leaf`, and be signed by the issuer or by a responder certificate the issuer signed for
 * OCSP signing; then its cert status and thisUpdate/nextUpdate are judged at `now`. Returns
 * the verdict, also stored in `res` with the detail.
 */
tlsc_ocsp_verdict_t tlsc_ocsp_check(const unsigned char *der, size_t len, X509 *leaf, STACK_OF(X509) * chain, time_t now,
                                    tlsc_ocsp_result_t *res);

/** The verdict's name: "good", "stale", "unknown", "revoked", "invalid". */
const char *tlsc_ocsp_verdict_name(tlsc_ocsp_verdict_t v);

/**
 * Staples `der` on `ctx`: a copy lives as long as the context, and every connection that
 * asks for status_request gets it until `next_update` (after that it is no longer sent, and
 * the worker says so once). Returns 0 or -ENOMEM.
 */
int tlsc_ocsp_staple(SSL_CTX *ctx, const unsigned char *der, size_t len, time_t next_update);

/** How long one --ocsp-fetch request may take, connect to last byte. */
#define TLSC_OCSP_FETCH_TIMEOUT_SEC 5

/**
 * Asks the certificate's responder (the first http:// OCSP URL of its Authority Information
 * Access; https is not used, as OCSP needs no TLS and a TLS responder would need its own OCSP)
 * about `leaf`, whose issuer must be in `chain`. Blocking, one request, at most `timeout_sec`
 * seconds and TLSC_OCSP_MAX_LEN bytes of response. On success *der (free with OPENSSL_free)
 * holds the raw response, not yet judged: pass it to tlsc_ocsp_check. `url` gets the URL
 * used (or "" when there is none). Returns 0, or a negative code with one line in `err`.
 */
int tlsc_ocsp_fetch(X509 *leaf, STACK_OF(X509) * chain, int timeout_sec, unsigned char **der, size_t *len, char *url, size_t urllen,
                    char *err, size_t errlen);

/** 1 when `ctx` has a response stapled. */
int tlsc_ocsp_stapled(const SSL_CTX *ctx);

#endif
