#ifndef TLSC_TLS_H
#define TLSC_TLS_H

/*
 * The server's certificates and TLS parameters: one SSL_CTX per certificate (PEM pairs and
 * PKCS#12), all configured alike (versions, ciphers, groups, DHE, ALPN, options), and a
 * matcher from SNI to the right one (exact names first, then wildcards "*.example.com"
 * matching one label; the first certificate is the default for no or unknown SNI), each with
 * its checked --ocsp response stapled (ocsp.h).
 *
 * Session caching is not set here: the worker installs its hooks on the default context,
 * which stays the session context when a connection switches to another by SNI.
 */

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "config.h"

typedef struct tlsc_tls_s tlsc_tls_t;

/**
 * Loads every certificate and parameter file in `cfg` and builds the contexts. Returns 0, or
 * a negative code with a one-line message in `err` naming the flag and the file (missing,
 * unreadable, key mismatch, wrong PFX passphrase, malformed dhparam, bad cipher list ...).
 */
int tlsc_tls_new(const tlsc_config_t *cfg, tlsc_tls_t **out, char *err, size_t errlen);

/** Frees all contexts (OpenSSL refcounts keep them alive for connections still using them). */
void tlsc_tls_free(tlsc_tls_t *tls);

/** The context for connections with no SNI or an unknown one; also the session context. */
SSL_CTX *tlsc_tls_default_ctx(const tlsc_tls_t *tls);

/** Number of contexts and the i-th one, to apply per-worker settings to all of them. */
size_t tlsc_tls_count(const tlsc_tls_t *tls);
SSL_CTX *tlsc_tls_ctx_at(const tlsc_tls_t *tls, size_t i);

/** The context whose certificate matches `sni` (lowercase, no trailing dot), or the default. */
SSL_CTX *tlsc_tls_select(const tlsc_tls_t *tls, const char *sni);

/**
 * One line about context `i` for --check and reload logs: subject, SANs, key type, expiry, and
 * what its --ocsp response came to. *expiring (say: "log this as a warning") is set when the
 * certificate expires within 14 days (or has), or when its --ocsp response is not stapled.
 * Returns 0 or -1.
 */
int tlsc_tls_describe(const tlsc_tls_t *tls, char *out, size_t outlen, size_t i, int *expiring);

/**
 * When the master should fetch a fresh response for context `i` under --ocsp-fetch: half-way
 * between the loaded response's thisUpdate and nextUpdate; `now` when it has none that is
 * stapled (missing, stale, unknown); 0 when the context has no --ocsp file.
 */
time_t tlsc_tls_ocsp_refresh_at(const tlsc_tls_t *tls, size_t i, time_t now);

/**
 * Fetches context `i`'s response from its certificate's responder (tlsc_ocsp_fetch), judges
 * it, and when it is good writes it to `path` (a temporary file renamed over it, so a reader
 * never sees half). Returns 0 when written, or a negative code; `msg` gets one line either way.
 * A revoked answer is not written: the reload would refuse it anyway, and the message says so.
 */
int tlsc_tls_ocsp_fetch(const tlsc_tls_t *tls, size_t i, const char *path, char *msg, size_t msglen);

#endif
