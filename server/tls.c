/* This file's one job: build the SSL_CTX set — certificates by SNI, PKCS#12, ALPN, groups, DH, versions. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "ocsp.h"
#include "util.h"

/*
 * Every context is built the same way (configure_ctx), then given its certificate from a
 * PEM pair or the PKCS#12 file. Each certificate's DNS names go into one table that
 * tlsc_tls_select searches: exact names over all certificates first, then wildcards, so a
 * later certificate for "www.a.example" beats an earlier "*.a.example".
 */

#define MAX_PASS_FILE 4096

typedef struct {
    char *name; /* lowercase; for a wildcard, the suffix after "*" (".w.example") */
    int wildcard;
    SSL_CTX *ctx; /* not owned: one of tls->ctxs */
} sni_name_t;

#define OCSP_NOTE_LEN 384

typedef struct {
    int has_file; /* an --ocsp FILE was given */
    int stapled;
    time_t this_update, next_update;
} ocsp_state_t;

struct tlsc_tls_s {
    SSL_CTX **ctxs;
    char (*ocsp)[OCSP_NOTE_LEN]; /* per context: what its --ocsp response came to, "" without one */
    int *ocsp_warn;              /* per context: its response is not stapled */
    ocsp_state_t *ocsp_state;    /* per context: what --ocsp-fetch needs to know */
    size_t n_ctxs;
    sni_name_t *names;
    size_t n_names;
};

/*
 * TLS 1.2 without --ciphers: ECDHE with AEAD only, and DHE with AEAD when --dhparam is given
 * (the widely used "intermediate" server profile): no CBC suite, so no Lucky13 findings.
 */
#define DEFAULT_CIPHERS                                                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define DEFAULT_DHE_CIPHERS "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* The ALPN list in wire format, hung on each SSL_CTX so it lives exactly as long as the context. */
typedef struct {
    int proxied; /* --backend given: the backends speak what the operator listed */
    size_t len;
    unsigned char wire[];
} alpn_list_t;

static int alpn_index = -1;
static CRYPTO_ONCE alpn_once = CRYPTO_ONCE_STATIC_INIT;

/* ---------------------------------------------------------------- errors */

/* Formats "label: message (openssl detail)" and empties OpenSSL's error queue. */
__attribute__((format(printf, 3, 4))) static int tls_fail(char *err, size_t errlen, const char *fmt, ...)
{
    char detail[256];
    unsigned long e = ERR_peek_error();
    va_list ap;
    int n;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (e != 0 && n >= 0 && (size_t)n < errlen) {
            ERR_error_string_n(e, detail, sizeof(detail));
            snprintf(err + n, errlen - (size_t)n, " (%s)", detail);
        }
    }
    ERR_clear_error();
    return -EINVAL;
}

/*
 * Checks that `path` is a regular file this process can open, so "missing" and "permission
 * denied" read as such rather than as an OpenSSL parse error.
 */
static int check_file(const char *flag, const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return tls_fail(err, errlen, "%s: cannot read \"%s\": %s", flag, path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tls_fail(err, errlen, "%s: cannot read \"%s\": not a regular file", flag, path);
    }
    close(fd);
    return 0;
}

/* ---------------------------------------------------------------- ALPN */

static void free_alpn(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void init_alpn_index(void)
{
    alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_alpn);
}

/*
 * Can what runs after the handshake speak `proto`? The built-in responder speaks HTTP/1.x
 * only: agreeing to h2 would make an h2 client (curl) send a preface it cannot answer. With
 * --backend the backends speak whatever --alpn lists (an alpn:PROTO route, or a backend that
 * speaks it): the operator's list is taken as it is.
 */
static int handler_speaks(const alpn_list_t *a, const unsigned char *proto, size_t len)
{
    return a->proxied || (len == 8 && memcmp(proto, "http/1.1", 8) == 0) || (len == 8 && memcmp(proto, "http/1.0", 8) == 0);
}

/* Says once per process which --alpn protocols are never selected, and why. */
static void warn_unspoken(const alpn_list_t *a)
{
    static int warned;

    for (size_t i = 0; !warned && i < a->len; i += 1 + (size_t)a->wire[i]) {
        if (!handler_speaks(a, a->wire + i + 1, a->wire[i])) {
            tlsc_log_warn("--alpn: \"%.*s\" is never selected: the built-in responder speaks HTTP/1.x only", (int)a->wire[i],
                          (const char *)a->wire + i + 1);
            warned = 1;
        }
    }
}

/*
 * Server preference: the first of our protocols the client offers, and that the handler
 * speaks, wins; none means no ALPN.
 */
static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned int inlen,
                          void *arg)
{
    const alpn_list_t *ours = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), alpn_index);

    if (ours == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < ours->len; i += 1 + (size_t)ours->wire[i]) {
        const unsigned char *proto = ours->wire + i + 1;
        size_t plen = ours->wire[i];
        if (!handler_speaks(ours, proto, plen))
            continue;
        for (unsigned int j = 0; j < inlen;) {
            unsigned int clen = in[j];
            if (clen == 0 || clen > inlen - j - 1) /* malformed: OpenSSL checks too, but do not trust */
                return SSL_TLSEXT_ERR_NOACK;
            if (clen == plen && memcmp(in + j + 1, proto, plen) == 0) {
                *out = in + j + 1;
                *outlen = (unsigned char)clen;
                return SSL_TLSEXT_ERR_OK;
            }
            j += 1 + clen;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* Builds the wire list from "h2,http/1.1"; NULL on a bad list. */
static alpn_list_t *make_alpn(const char *list, int proxied)
{
    size_t n = strlen(list), o = 0;
    alpn_list_t *a;
    const char *p = list;

    if ((a = malloc(sizeof(*a) + n + 1)) == NULL)
        return NULL;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > 255) {
            free(a);
            return NULL;
        }
        a->wire[o++] = (unsigned char)len;
        memcpy(a->wire + o, p, len);
        o += len;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    a->len = o;
    a->proxied = proxied;
    return a;
}

/* ---------------------------------------------------------------- shared settings */

static int set_groups(SSL_CTX *ctx, const char *groups, char *err, size_t errlen)
{
    char *copy, *tok, *save = NULL;

    if (SSL_CTX_set1_groups_list(ctx, groups) == 1)
        return 0;
    /* Find the name OpenSSL did not know, for the message. */
    ERR_clear_error();
    if ((copy = strdup(groups)) == NULL)
        return tls_fail(err, errlen, "--groups: out of memory");
    for (tok = strtok_r(copy, ":,", &save); tok != NULL; tok = strtok_r(NULL, ":,", &save)) {
        if (SSL_CTX_set1_groups_list(ctx, tok) != 1) {
            tls_fail(err, errlen, "--groups: unknown group \"%s\" in \"%s\"", tok, groups);
            free(copy);
            return -EINVAL;
        }
    }
    free(copy);
    return tls_fail(err, errlen, "--groups: \"%s\" is not a valid group list", groups);
}

/* Reads a PEM "DH PARAMETERS" file; one key object is shared (up-ref'd) by every context. */
static int load_dhparam(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    EVP_PKEY *dh;
    BIO *bio;

    if (check_file("--dhparam", path, err, errlen) != 0)
        return -EINVAL;
    if ((bio = BIO_new_file(path, "r")) == NULL)
        return tls_fail(err, errlen, "--dhparam: cannot read \"%s\"", path);
    dh = PEM_read_bio_Parameters(bio, NULL);
    BIO_free(bio);
    if (dh == NULL)
        return tls_fail(err, errlen, "--dhparam: \"%s\" is not PEM DH parameters", path);
    if (!EVP_PKEY_is_a(dh, "DH")) {
        tls_fail(err, errlen, "--dhparam: \"%s\" holds %s parameters, not DH", path, EVP_PKEY_get0_type_name(dh));
        EVP_PKEY_free(dh);
        return -EINVAL;
    }
    *out = dh;
    return 0;
}

/* Applies every setting that is the same for all certificates. */
static int configure_ctx(SSL_CTX *ctx, const tlsc_config_t *cfg, EVP_PKEY *dh, char *err, size_t errlen)
{
    alpn_list_t *alpn;

    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_min_proto_version(ctx, cfg->min_tls ? cfg->min_tls : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, cfg->max_tls ? cfg->max_tls : TLS1_3_VERSION) != 1)
        return tls_fail(err, errlen, "--min-tls/--max-tls: unsupported TLS version");
    if (cfg->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1)
        return tls_fail(err, errlen, "--ciphers: no usable TLS 1.2 cipher in \"%s\"", cfg->ciphers);
    if (cfg->ciphers == NULL &&
        SSL_CTX_set_cipher_list(ctx, dh != NULL ? DEFAULT_CIPHERS ":" DEFAULT_DHE_CIPHERS : DEFAULT_CIPHERS) != 1)
        return tls_fail(err, errlen, "--ciphers: the default TLS 1.2 list was refused");
    if (cfg->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)
        return tls_fail(err, errlen, "--ciphersuites: \"%s\" is not a valid TLS 1.3 ciphersuite list", cfg->ciphersuites);
    if (cfg->groups != NULL && set_groups(ctx, cfg->groups, err, errlen) != 0)
        return -EINVAL;
    if (dh != NULL) {
        if (!EVP_PKEY_up_ref(dh))
            return tls_fail(err, errlen, "--dhparam: out of memory");
        if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
            EVP_PKEY_free(dh);
            return tls_fail(err, errlen, "--dhparam: \"%s\" was refused (too small for the security level?)", cfg->dhparam_file);
        }
    }
    if (cfg->alpn != NULL) {
        if ((alpn = make_alpn(cfg->alpn, cfg->routes.n > 0)) == NULL)
            return tls_fail(err, errlen, "--alpn: \"%s\" is not a list of 1..255-byte names", cfg->alpn);
        warn_unspoken(alpn);
        if (SSL_CTX_set_ex_data(ctx, alpn_index, alpn) != 1) {
            free(alpn);
            return tls_fail(err, errlen, "--alpn: out of memory");
        }
        SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    }
    SSL_CTX_set_timeout(ctx, cfg->session_timeout ? (long)cfg->session_timeout : 300);
    return 0;
}

/* ---------------------------------------------------------------- certificates */

static int no_password(char *buf, int size, int rwflag, void *u)
{
    return -1; /* never prompt on a terminal; an encrypted PEM key is an error */
}

static int load_pem_pair(SSL_CTX *ctx, const tlsc_cert_pair_t *pair, char *err, size_t errlen)
{
    EVP_PKEY *pkey;
    X509 *leaf;
    BIO *bio;

    if (check_file("--cert", pair->cert_file, err, errlen) != 0 || check_file("--key", pair->key_file, err, errlen) != 0)
        return -EINVAL;
    if (SSL_CTX_use_certificate_chain_file(ctx, pair->cert_file) != 1)
        return tls_fail(err, errlen, "--cert: \"%s\" is not a PEM certificate chain", pair->cert_file);
    if ((bio = BIO_new_file(pair->key_file, "r")) == NULL)
        return tls_fail(err, errlen, "--key: cannot read \"%s\"", pair->key_file);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return tls_fail(err, errlen, "--key: \"%s\" is not an unencrypted PEM private key", pair->key_file);
    /* Check the pair ourselves: OpenSSL would take a key of another type into another slot. */
    leaf = SSL_CTX_get0_certificate(ctx);
    if (leaf == NULL || X509_check_private_key(leaf, pkey) != 1) {
        EVP_PKEY_free(pkey);
        return tls_fail(err, errlen, "--key: \"%s\" does not match --cert \"%s\"", pair->key_file, pair->cert_file);
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        EVP_PKEY_free(pkey);
        return tls_fail(err, errlen, "--key: \"%s\" does not match --cert \"%s\"", pair->key_file, pair->cert_file);
    }
    EVP_PKEY_free(pkey);
    return 0;
}

/*
 * Reads the passphrase (the file wins over TLSCACHE_PFX_PASS), checks it against the MAC
 * first so a wrong one is reported as such, and loads key, certificate and chain. The
 * passphrase is wiped before returning.
 */
static int load_pfx(SSL_CTX *ctx, const tlsc_config_t *cfg, char *err, size_t errlen)
{
    char *pass = NULL;
    size_t pass_len = 0, pass_cap = 0;
    const char *use_pass;
    PKCS12 *p12 = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    BIO *bio;
    int rc = -EINVAL, r, mac_ok;

    if (check_file("--pfx", cfg->pfx_file, err, errlen) != 0)
        return -EINVAL;
    if (cfg->pfx_pass_file != NULL) {
        if ((r = tlsc_read_file(cfg->pfx_pass_file, MAX_PASS_FILE, &pass, &pass_len)) != 0)
            return tls_fail(err, errlen, "--pfx-pass-file: cannot read \"%s\": %s", cfg->pfx_pass_file,
                            r == -EFBIG    ? "larger than 4096 bytes"
                            : r == -EINVAL ? "not a regular file"
                                           : strerror(-r));
        pass_cap = pass_len + 1;
        pass_len = tlsc_rstrip(pass, pass_len); /* "echo secret > file" leaves a newline */
    } else if (cfg->pfx_pass != NULL) {
        pass_len = strlen(cfg->pfx_pass);
        pass_cap = pass_len + 1;
        if ((pass = malloc(pass_cap)) == NULL)
            return tls_fail(err, errlen, "--pfx: out of memory");
        memcpy(pass, cfg->pfx_pass, pass_cap);
    }

    if ((bio = BIO_new_file(cfg->pfx_file, "rb")) == NULL) {
        tls_fail(err, errlen, "--pfx: cannot read \"%s\"", cfg->pfx_file);
        goto done;
    }
    p12 = d2i_PKCS12_bio(bio, NULL);
    BIO_free(bio);
    if (p12 == NULL) {
        tls_fail(err, errlen, "--pfx: \"%s\" is not a PKCS#12 file", cfg->pfx_file);
        goto done;
    }
    /* Without a passphrase, try what PKCS#12 writers use for "none": NULL and "". */
    use_pass = pass;
    if (PKCS12_mac_present(p12)) {
        if (pass != NULL)
            mac_ok = PKCS12_verify_mac(p12, pass, -1) == 1;
        else if ((mac_ok = PKCS12_verify_mac(p12, NULL, 0) == 1) == 0)
            mac_ok = PKCS12_verify_mac(p12, (use_pass = ""), 0) == 1;
        if (!mac_ok) {
            if (pass == NULL)
                tls_fail(err, errlen, "--pfx: \"%s\" needs a passphrase: give --pfx-pass-file or set TLSCACHE_PFX_PASS",
                         cfg->pfx_file);
            else
                tls_fail(err, errlen, "--pfx: wrong passphrase for \"%s\" (from %s)", cfg->pfx_file,
                         cfg->pfx_pass_file != NULL ? "--pfx-pass-file" : "TLSCACHE_PFX_PASS");
            goto done;
        }
    }
    if (PKCS12_parse(p12, use_pass, &pkey, &cert, &ca) != 1 || pkey == NULL || cert == NULL) {
        tls_fail(err, errlen, "--pfx: cannot decrypt \"%s\" (a wrong passphrase, or an unsupported algorithm)", cfg->pfx_file);
        goto done;
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        tls_fail(err, errlen, "--pfx: the key in \"%s\" does not match its certificate", cfg->pfx_file);
        goto done;
    }
    if (ca != NULL && sk_X509_num(ca) > 0 && SSL_CTX_set1_chain(ctx, ca) != 1) {
        tls_fail(err, errlen, "--pfx: cannot use the chain in \"%s\"", cfg->pfx_file);
        goto done;
    }
    rc = 0;

done:
    sk_X509_pop_free(ca, X509_free);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    PKCS12_free(p12);
    tlsc_secure_free(pass, pass_cap);
    return rc;
}

/* ---------------------------------------------------------------- OCSP */

/*
 * Reads and judges the --ocsp response of context `i` (see tlsc_ocsp_check; the issuer comes
 * from the certificate's chain). A good one is stapled. A stale or unknown one is not, with a
 * warning, and the server still starts: the certificate itself is fine, clients just fetch
 * the status themselves. A revoked or invalid one is an error, like a key that does not
 * match: a start refuses to run and a reload keeps what it has.
 */
static int load_ocsp(tlsc_tls_t *tls, size_t i, const char *path, int fetch, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls->ctxs[i];
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    tlsc_ocsp_result_t res;
    char *der = NULL, subject[256];
    size_t len = 0;
    int r;

    tls->ocsp_state[i].has_file = 1;
    if (fetch && access(path, F_OK) != 0 && errno == ENOENT) {
        tlsc_log_warn("--ocsp: \"%s\" for certificate %zu does not exist yet; --ocsp-fetch will fetch it", path, i + 1);
        snprintf(tls->ocsp[i], OCSP_NOTE_LEN, "OCSP none yet, NOT stapled: --ocsp-fetch will write \"%s\"", path);
        tls->ocsp_warn[i] = 1;
        return 0;
    }
    if (check_file("--ocsp", path, err, errlen) != 0)
        return -EINVAL;
    if ((r = tlsc_read_file(path, TLSC_OCSP_MAX_LEN, &der, &len)) != 0)
        return tls_fail(err, errlen, "--ocsp: cannot read \"%s\": %s", path,
                        r == -EFBIG ? "larger than a response can be (64 KB)" : strerror(-r));
    if (leaf == NULL) {
        tlsc_secure_free(der, len);
        return tls_fail(err, errlen, "--ocsp: \"%s\": certificate %zu has no certificate loaded", path, i + 1);
    }
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
    SSL_CTX_get0_chain_certs(ctx, &chain);
    r = 0;
    switch (tlsc_ocsp_check((const unsigned char *)der, len, leaf, chain, time(NULL), &res)) {
    case TLSC_OCSP_GOOD:
        if (tlsc_ocsp_staple(ctx, (const unsigned char *)der, len, res.next_update) != 0) {
            r = tls_fail(err, errlen, "--ocsp: out of memory");
            break;
        }
        snprintf(tls->ocsp[i], OCSP_NOTE_LEN, "OCSP %s, stapled", res.why);
        tls->ocsp_state[i].stapled = 1;
        tls->ocsp_state[i].this_update = res.this_update;
        tls->ocsp_state[i].next_update = res.next_update;
        break;
    case TLSC_OCSP_STALE:
    case TLSC_OCSP_UNKNOWN:
        tlsc_log_warn("--ocsp: \"%s\" for certificate %zu (%s) is not stapled: %s", path, i + 1, subject, res.why);
        snprintf(tls->ocsp[i], OCSP_NOTE_LEN, "OCSP %s, NOT stapled: %s", tlsc_ocsp_verdict_name(res.verdict), res.why);
        tls->ocsp_warn[i] = 1;
        break;
    case TLSC_OCSP_REVOKED:
    case TLSC_OCSP_INVALID:
        r = tls_fail(err, errlen, "--ocsp: \"%s\" for certificate %zu (%s) is refused: %s", path, i + 1, subject, res.why);
        break;
    }
    tlsc_secure_free(der, len);
    return r;
}

time_t tlsc_tls_ocsp_refresh_at(const tlsc_tls_t *tls, size_t i, time_t now)
{
    const ocsp_state_t *st = i < tls->n_ctxs ? &tls->ocsp_state[i] : NULL;

    if (st == NULL || !st->has_file)
        return 0;
    if (!st->stapled)
        return now;
    return st->this_update + (st->next_update - st->this_update) / 2;
}

/* Writes `der` to `path` through "path.tmp" and a rename. Returns 0 or a negative errno. */
static int write_atomically(const char *path, const unsigned char *der, size_t len)
{
    char tmp[4200];
    int fd, rc = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -errno;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t n = write(fd, der + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int tlsc_tls_ocsp_fetch(const tlsc_tls_t *tls, size_t i, const char *path, char *msg, size_t msglen)
{
    SSL_CTX *ctx = tls->ctxs[i];
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    unsigned char *der = NULL;
    size_t len = 0;
    char url[512], why[256];
    tlsc_ocsp_result_t res;
    int rc;

    if (leaf == NULL) {
        snprintf(msg, msglen, "certificate %zu: no certificate loaded", i + 1);
        return -EINVAL;
    }
    SSL_CTX_get0_chain_certs(ctx, &chain);
    if ((rc = tlsc_ocsp_fetch(leaf, chain, TLSC_OCSP_FETCH_TIMEOUT_SEC, &der, &len, url, sizeof(url), why, sizeof(why))) != 0) {
        snprintf(msg, msglen, "certificate %zu: %s", i + 1, why);
        return rc;
    }
    if (tlsc_ocsp_check(der, len, leaf, chain, time(NULL), &res) != TLSC_OCSP_GOOD) {
        snprintf(msg, msglen, "certificate %zu: the answer from %s is %s, not written to \"%s\": %s", i + 1, url,
                 tlsc_ocsp_verdict_name(res.verdict), path, res.why);
        OPENSSL_free(der);
        return -EINVAL;
    }
    rc = write_atomically(path, der, len);
    OPENSSL_free(der);
    if (rc != 0)
        snprintf(msg, msglen, "certificate %zu: cannot write \"%s\": %s", i + 1, path, strerror(-rc));
    else
        snprintf(msg, msglen, "certificate %zu: fetched from %s: %s; written to \"%s\"", i + 1, url, res.why, path);
    return rc;
}

/* ---------------------------------------------------------------- names for SNI */

static int add_name(tlsc_tls_t *tls, SSL_CTX *ctx, const unsigned char *data, int len)
{
    sni_name_t *n;
    char *name;

    if (len <= 0 || memchr(data, '\0', (size_t)len) != NULL) /* embedded NUL: never a usable name */
        return 0;
    if ((name = strndup((const char *)data, (size_t)len)) == NULL)
        return -ENOMEM;
    for (char *p = name; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (name[0] == '*' && name[1] != '.') { /* partial wildcards ("w*.example") are not served */
        free(name);
        return 0;
    }
    if ((n = realloc(tls->names, (tls->n_names + 1) * sizeof(*n))) == NULL) {
        free(name);
        return -ENOMEM;
    }
    tls->names = n;
    n += tls->n_names++;
    n->wildcard = name[0] == '*';
    if (n->wildcard)
        memmove(name, name + 1, strlen(name)); /* keep ".w.example" */
    n->name = name;
    n->ctx = ctx;
    return 0;
}

/* The certificate's DNS subjectAltNames, or its last CN when it has none. */
static int add_cert_names(tlsc_tls_t *tls, SSL_CTX *ctx)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    GENERAL_NAMES *sans;
    size_t before = tls->n_names;
    int rc = 0;

    if (x == NULL)
        return 0;
    if ((sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL)) != NULL) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans) && rc == 0; i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS)
                rc = add_name(tls, ctx, ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
        }
        GENERAL_NAMES_free(sans);
    }
    if (rc == 0 && tls->n_names == before) {
        const X509_NAME *subj = X509_get_subject_name(x);
        int idx = -1, last = -1;
        while ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0)
            last = idx;
        if (last >= 0) {
            unsigned char *utf8 = NULL;
            int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last)));
            if (len > 0)
                rc = add_name(tls, ctx, utf8, len);
            OPENSSL_free(utf8);
        }
    }
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- the entry points */

static int add_ctx(tlsc_tls_t *tls, SSL_CTX *ctx)
{
    SSL_CTX **c;
    char(*o)[OCSP_NOTE_LEN];
    ocsp_state_t *st;
    int *w;

    if ((o = realloc(tls->ocsp, (tls->n_ctxs + 1) * sizeof(*o))) == NULL)
        return -ENOMEM;
    tls->ocsp = o;
    o[tls->n_ctxs][0] = '\0';
    if ((w = realloc(tls->ocsp_warn, (tls->n_ctxs + 1) * sizeof(*w))) == NULL)
        return -ENOMEM;
    tls->ocsp_warn = w;
    w[tls->n_ctxs] = 0;
    if ((st = realloc(tls->ocsp_state, (tls->n_ctxs + 1) * sizeof(*st))) == NULL)
        return -ENOMEM;
    tls->ocsp_state = st;
    memset(&st[tls->n_ctxs], 0, sizeof(*st));
    if ((c = realloc(tls->ctxs, (tls->n_ctxs + 1) * sizeof(*c))) == NULL)
        return -ENOMEM;
    tls->ctxs = c;
    tls->ctxs[tls->n_ctxs++] = ctx;
    return 0;
}

/* Makes a context with the shared settings and hands it to `tls`, which frees it on failure too. */
static SSL_CTX *new_ctx(tlsc_tls_t *tls, const tlsc_config_t *cfg, EVP_PKEY *dh, char *err, size_t errlen)
{
    SSL_CTX *ctx;

    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        tls_fail(err, errlen, "tls: cannot create an SSL_CTX");
        return NULL;
    }
    if (add_ctx(tls, ctx) != 0) {
        SSL_CTX_free(ctx);
        tls_fail(err, errlen, "tls: out of memory");
        return NULL;
    }
    if (configure_ctx(ctx, cfg, dh, err, errlen) != 0)
        return NULL;
    return ctx;
}

int tlsc_tls_new(const tlsc_config_t *cfg, tlsc_tls_t **out, char *err, size_t errlen)
{
    tlsc_tls_t *tls;
    EVP_PKEY *dh = NULL;
    SSL_CTX *ctx;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    ERR_clear_error();
    if (!CRYPTO_THREAD_run_once(&alpn_once, init_alpn_index) || alpn_index < 0)
        return tls_fail(err, errlen, "tls: cannot allocate SSL_CTX ex_data");
    if (cfg->n_certs == 0 && cfg->pfx_file == NULL)
        return tls_fail(err, errlen, "--cert/--key or --pfx: no certificate given; at least one is required");
    if ((tls = calloc(1, sizeof(*tls))) == NULL)
        return tls_fail(err, errlen, "tls: out of memory");
    if (cfg->dhparam_file != NULL && load_dhparam(cfg->dhparam_file, &dh, err, errlen) != 0)
        goto fail_tls;

    for (size_t i = 0; i < cfg->n_certs; i++) {
        if ((ctx = new_ctx(tls, cfg, dh, err, errlen)) == NULL || load_pem_pair(ctx, &cfg->certs[i], err, errlen) != 0)
            goto fail_dh;
        if (i < cfg->n_ocsp && cfg->ocsp_files[i] != NULL &&
            load_ocsp(tls, i, cfg->ocsp_files[i], cfg->ocsp_fetch, err, errlen) != 0)
            goto fail_dh;
        if (add_cert_names(tls, ctx) != 0) {
            tls_fail(err, errlen, "tls: out of memory");
            goto fail_dh;
        }
    }
    if (cfg->pfx_file != NULL) {
        if ((ctx = new_ctx(tls, cfg, dh, err, errlen)) == NULL || load_pfx(ctx, cfg, err, errlen) != 0)
            goto fail_dh;
        if (cfg->n_certs < cfg->n_ocsp && cfg->ocsp_files[cfg->n_certs] != NULL &&
            load_ocsp(tls, cfg->n_certs, cfg->ocsp_files[cfg->n_certs], cfg->ocsp_fetch, err, errlen) != 0)
            goto fail_dh;
        if (add_cert_names(tls, ctx) != 0) {
            tls_fail(err, errlen, "tls: out of memory");
            goto fail_dh;
        }
    }
    EVP_PKEY_free(dh); /* each context holds its own reference */
    ERR_clear_error(); /* probes such as PKCS12_verify_mac leave entries behind */
    *out = tls;
    return 0;

fail_dh:
    EVP_PKEY_free(dh);
fail_tls:
    tlsc_tls_free(tls);
    ERR_clear_error();
    return -EINVAL;
}

void tlsc_tls_free(tlsc_tls_t *tls)
{
    if (tls == NULL)
        return;
    for (size_t i = 0; i < tls->n_names; i++)
        free(tls->names[i].name);
    free(tls->names);
    for (size_t i = 0; i < tls->n_ctxs; i++)
        SSL_CTX_free(tls->ctxs[i]);
    free(tls->ctxs);
    free(tls->ocsp);
    free(tls->ocsp_warn);
    free(tls->ocsp_state);
    free(tls);
}

SSL_CTX *tlsc_tls_default_ctx(const tlsc_tls_t *tls)
{
    return tls->ctxs[0];
}

size_t tlsc_tls_count(const tlsc_tls_t *tls)
{
    return tls->n_ctxs;
}

SSL_CTX *tlsc_tls_ctx_at(const tlsc_tls_t *tls, size_t i)
{
    return i < tls->n_ctxs ? tls->ctxs[i] : NULL;
}

SSL_CTX *tlsc_tls_select(const tlsc_tls_t *tls, const char *sni)
{
    const char *dot;
    size_t len;

    if (sni == NULL || *sni == '\0')
        return tls->ctxs[0];
    len = strlen(sni);
    if (sni[len - 1] == '.') /* "a.example." is the same name */
        len--;
    for (size_t i = 0; i < tls->n_names; i++)
        if (!tls->names[i].wildcard && strlen(tls->names[i].name) == len && strncasecmp(tls->names[i].name, sni, len) == 0)
            return tls->names[i].ctx;
    /* "*.w.example" stands for exactly one non-empty label before ".w.example". */
    if ((dot = memchr(sni, '.', len)) != NULL && dot != sni && memchr(sni, '*', (size_t)(dot - sni)) == NULL) {
        size_t rest = len - (size_t)(dot - sni);
        for (size_t i = 0; i < tls->n_names; i++)
            if (tls->names[i].wildcard && strlen(tls->names[i].name) == rest && strncasecmp(tls->names[i].name, dot, rest) == 0)
                return tls->names[i].ctx;
    }
    return tls->ctxs[0];
}

/* ---------------------------------------------------------------- description */

/* "EC P-256", "RSA 2048", "ED25519" ... */
static void key_type(const X509 *x, char *out, size_t outlen)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char group[64];
    size_t glen = 0;

    if (pk == NULL) {
        snprintf(out, outlen, "unknown key");
    } else if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1) {
        snprintf(out, outlen, "%s %s", EVP_PKEY_get0_type_name(pk), group);
    } else {
        snprintf(out, outlen, "%s %d", EVP_PKEY_get0_type_name(pk), EVP_PKEY_get_bits(pk));
    }
    ERR_clear_error();
}

/* The DNS and IP SANs, comma-separated (truncated to fit). */
static void san_list(X509 *x, char *out, size_t outlen)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t n = 0;

    out[0] = '\0';
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && n + 1 < outlen; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        const unsigned char *d;
        int len;

        if (g->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(g->d.dNSName);
            len = ASN1_STRING_length(g->d.dNSName);
            n += (size_t)snprintf(out + n, outlen - n, "%s%.*s", n ? "," : "", len, (const char *)d);
        } else if (g->type == GEN_IPADD) {
            n += (size_t)snprintf(out + n, outlen - n, "%s(IP)", n ? "," : "");
        }
        if (n >= outlen)
            n = outlen - 1;
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
}

int tlsc_tls_describe(const tlsc_tls_t *tls, char *out, size_t outlen, size_t i, int *expiring)
{
    X509 *x = SSL_CTX_get0_certificate(tls->ctxs[i]);
    char subject[256], sans[512], key[96], until[64];
    int days = 0, secs = 0;
    BIO *b;

    *expiring = 0;
    if (x == NULL) {
        snprintf(out, outlen, "context %zu: no certificate", i);
        return -1;
    }
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    san_list(x, sans, sizeof(sans));
    key_type(x, key, sizeof(key));
    until[0] = '\0';
    if ((b = BIO_new(BIO_s_mem())) != NULL) {
        int n = ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1 ? BIO_read(b, until, sizeof(until) - 1) : 0;
        until[n > 0 ? n : 0] = '\0';
        BIO_free(b);
    }
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1)
        *expiring = days < 14;
    snprintf(out, outlen, "%s; SAN %s; %s; expires %s (%d day(s))%s%s%s", subject, sans[0] ? sans : "none", key, until, days,
             *expiring ? (days < 0 || secs < 0 ? " EXPIRED" : " WARNING: expires within 14 days") : "", tls->ocsp[i][0] ? "; " : "",
             tls->ocsp[i]);
    *expiring |= tls->ocsp_warn[i];
    ERR_clear_error();
    return 0;
}
