/*
 * libFuzzer target for session records: the DER decoder (proto/record.c), the sealed envelope
 * (proto/seal.c: tlsc_seal_key_name, tlsc_unseal under a fixed key) and the policy on top that
 * the server runs on every value read back from Redis (server/records.c, tlsc_records_decode),
 * for a sealing node (cluster secret set, fixed here) and a plain one.
 *
 * Input:  flags u8 | id_len u8 | id | sni_len u8 | sni | record (as stored: format byte, payload)
 *         flags bit 0: the sealing node, else the plain one; bits 1-2: the TLS version asked
 *         for (any, 1.2, 1.3, 1.1); bits 3-7: where the tamper check flips a bit.
 *
 * Properties:
 * - decoding never crashes or leaks, and returns 0 with a session or a negative code without;
 * - a session that decodes carries the ID and version asked for;
 * - round trip: whatever decodes, encoded again by either node, decodes again on that node
 *   to the same session (same DER); whatever seals (any plaintext, any SNI) unseals, and with
 *   one bit flipped, or under another SNI, does not.
 * The seed corpus (corpus/fuzz_records/) holds plain and sealed records of real TLS 1.2 and
 * 1.3 server sessions, made by this file (see write_seeds) with its secret.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "record.h"
#include "records.h"
#include "seal.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
static void write_seeds(const char *dir);

/* The cluster secret the fuzzer's sealing node has (gen_corpus.c seals with the same). */
#define FUZZ_SECRET_HEX "8d3f0e2a71c94b5d6e1f203a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e"

static tlsc_records_t *nodes[2]; /* [0] plain, [1] sealing */
static const unsigned char fixed_key[TLSC_SEAL_KEY_LEN] = "fuzz: a fixed 32-byte seal key!";
static const unsigned char fixed_name[TLSC_SEAL_NAME_LEN] = "fuzz-key-name-01";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/tlsc-fuzz-records-XXXXXX", path[64], err[256];
    FILE *f;

    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/secret", dir);
    if ((f = fopen(path, "w")) == NULL || fputs(FUZZ_SECRET_HEX "\n", f) < 0 || fclose(f) != 0 || chmod(path, 0600) != 0)
        abort();
    if (tlsc_records_new(NULL, NULL, &nodes[0], err, sizeof(err)) != 0 ||
        tlsc_records_new(NULL, path, &nodes[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_records: %s\n", err);
        abort();
    }
    unlink(path);
    rmdir(dir);
    if (getenv("TLSC_FUZZ_RECORDS_SEEDS") != NULL) {
        write_seeds(getenv("TLSC_FUZZ_RECORDS_SEEDS"));
        exit(0);
    }
    return 0;
}

/* ================================ seed generator ================================ */

/*
 * `TLSC_FUZZ_RECORDS_SEEDS=DIR fuzz_records` writes the seed corpus and exits: records of real
 * server-side sessions (an in-memory TLS 1.2 and TLS 1.3 handshake, SNI a.example), plain and
 * sealed under this file's secret, each in the input layout above.
 */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *n;

    if (x == NULL)
        abort();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"a.example", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (X509_sign(x, key, EVP_sha256()) == 0)
        abort();
    return x;
}

/* Runs one in-memory handshake at `version` and returns the server's session. */
static SSL_SESSION *server_session(int version)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = self_signed(key);
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    SSL *srv, *cli;
    BIO *a, *b;
    SSL_SESSION *sess;

    SSL_CTX_use_certificate(sctx, cert);
    SSL_CTX_use_PrivateKey(sctx, key);
    SSL_CTX_set_session_id_context(sctx, (const unsigned char *)"tlscache", 8);
    SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET); /* stateful: the server keeps a session ID */
    SSL_CTX_set_min_proto_version(sctx, version);
    SSL_CTX_set_max_proto_version(sctx, version);
    srv = SSL_new(sctx);
    cli = SSL_new(cctx);
    SSL_set_tlsext_host_name(cli, "a.example");
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(srv, a, a);
    SSL_set_bio(cli, b, b);
    SSL_set_accept_state(srv);
    SSL_set_connect_state(cli);
    for (int i = 0; i < 20; i++) {
        char buf[64];
        SSL_do_handshake(cli);
        SSL_do_handshake(srv);
        SSL_read(cli, buf, sizeof(buf)); /* takes TLS 1.3 tickets */
    }
    if ((sess = SSL_get1_session(srv)) == NULL)
        abort();
    SSL_free(srv);
    SSL_free(cli);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return sess;
}

static void write_seed(const char *dir, const char *name, unsigned flags, SSL_SESSION *sess, tlsc_records_t *node)
{
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    char hex[65], redis_key[80], path[512];
    tlsc_seal_aad_t aad = {redis_key, "a.example", 0};
    unsigned char *rec;
    size_t len;
    FILE *f;

    tlsc_hex_encode(hex, id, id_len);
    snprintf(redis_key, sizeof(redis_key), "tlscache:sess:%s", hex);
    if (tlsc_records_encode(node, sess, &aad, &rec, &len) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "wb")) == NULL)
        abort();
    fputc((int)flags, f);
    fputc((int)id_len, f);
    fwrite(id, 1, id_len, f);
    fputc(9, f);
    fputs("a.example", f);
    fwrite(rec, 1, len, f);
    fclose(f);
    tlsc_secure_free(rec, len);
}

static void write_seeds(const char *dir)
{
    SSL_SESSION *s12 = server_session(TLS1_2_VERSION), *s13 = server_session(TLS1_3_VERSION);

    write_seed(dir, "plain_tls12", 0 | 1 << 1, s12, nodes[0]);
    write_seed(dir, "plain_tls13", 0 | 2 << 1, s13, nodes[0]);
    write_seed(dir, "sealed_tls12", 1 | 1 << 1, s12, nodes[1]);
    write_seed(dir, "sealed_tls13", 1 | 2 << 1, s13, nodes[1]);
    write_seed(dir, "sealed_tls13_any_version", 1, s13, nodes[1]);
    write_seed(dir, "sealed_on_plain_node", 0 | 2 << 1, s13, nodes[1]);
    SSL_SESSION_free(s12);
    SSL_SESSION_free(s13);
}

static int versions[4] = {0, TLS1_2_VERSION, TLS1_3_VERSION, TLS1_1_VERSION};

static void check_same_session(SSL_SESSION *a, SSL_SESSION *b)
{
    unsigned char *da = NULL, *db = NULL;
    int na = i2d_SSL_SESSION(a, &da), nb = i2d_SSL_SESSION(b, &db);

    if (na <= 0 || na != nb || memcmp(da, db, (size_t)na) != 0) {
        fprintf(stderr, "round trip: the session changed (%d vs %d bytes)\n", na, nb);
        abort();
    }
    OPENSSL_free(da);
    OPENSSL_free(db);
}

/* Encodes `sess` on `node` and decodes it back there: it must be the same session. */
static void check_records_roundtrip(tlsc_records_t *node, SSL_SESSION *sess, const char *redis_key, const char *sni,
                                    const unsigned char *id, size_t id_len)
{
    tlsc_seal_aad_t aad = {redis_key, sni, 0};
    unsigned char *rec;
    size_t len;
    SSL_SESSION *again;
    int rc, version = SSL_SESSION_get_protocol_version(sess);

    if ((rc = tlsc_records_encode(node, sess, &aad, &rec, &len)) != 0) {
        /* Only a session too large for a record may fail to encode. */
        if (i2d_SSL_SESSION(sess, NULL) + 1 > TLSC_RECORD_MAX)
            return;
        fprintf(stderr, "round trip: encode failed: %s\n", tlsc_records_strerror(rc));
        abort();
    }
    if ((rc = tlsc_records_decode(node, rec, len, &aad, id, id_len, version, &again)) != 0) {
        fprintf(stderr, "round trip: what was encoded does not decode: %s\n", tlsc_records_strerror(rc));
        abort();
    }
    check_same_session(sess, again);
    SSL_SESSION_free(again);
    /* Offered for another name, a sealed record must not open. */
    if (tlsc_records_sealed(node)) {
        tlsc_seal_aad_t other = {redis_key, sni[0] == 'x' ? "y" : "x", 0};
        if ((rc = tlsc_records_decode(node, rec, len, &other, id, id_len, version, &again)) == 0 || again != NULL) {
            fprintf(stderr, "round trip: opened for another SNI: %s\n", tlsc_records_strerror(rc));
            abort();
        }
    }
    tlsc_secure_free(rec, len);
}

/* Whatever seals under the fixed key unseals to the same bytes, and not once tampered with. */
static void check_seal_roundtrip(const unsigned char *plain, size_t len, const tlsc_seal_aad_t *aad, size_t flip)
{
    size_t cap = len + TLSC_SEAL_OVERHEAD, out_len = 0, back_len = 0;
    unsigned char *sealed = malloc(cap), *back = malloc(len ? len : 1), name[TLSC_SEAL_NAME_LEN];
    int rc;

    if (sealed == NULL || back == NULL)
        goto done;
    if ((rc = tlsc_seal(fixed_key, fixed_name, aad, plain, len, sealed, cap, &out_len)) != 0 || out_len != cap)
        abort();
    if (tlsc_seal_key_name(sealed, out_len, name) != 0 || memcmp(name, fixed_name, sizeof(name)) != 0)
        abort();
    if (tlsc_unseal(fixed_key, aad, sealed, out_len, back, len, &back_len) != 0 || back_len != len || memcmp(back, plain, len) != 0)
        abort();
    flip %= out_len * 8;
    sealed[flip / 8] ^= (unsigned char)(1u << (flip % 8));
    rc = tlsc_unseal(fixed_key, aad, sealed, out_len, back, len, &back_len);
    if (rc != (flip / 8 == 0 ? TLSC_SEAL_EFORMAT : TLSC_SEAL_EAUTH))
        abort();
done:
    free(sealed);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data, *id, *rec;
    size_t left = size, id_len, sni_len, len;
    char sni[40], redis_key[80];
    unsigned flags;
    tlsc_records_t *node;
    SSL_SESSION *sess = NULL;
    int version, rc;

    if (size < 3 || size > TLSC_RECORD_MAX + 1024)
        return 0;
    flags = p[0];
    id_len = p[1] % 33;
    p += 2;
    left -= 2;
    if (left < id_len + 1)
        return 0;
    id = p;
    p += id_len;
    left -= id_len;
    sni_len = p[0] % 32;
    p++;
    left--;
    if (left < sni_len)
        return 0;
    for (size_t i = 0; i < sni_len; i++)
        sni[i] = p[i] != 0 ? (char)p[i] : '.';
    sni[sni_len] = '\0';
    p += sni_len;
    left -= sni_len;
    rec = p;
    len = left;
    node = nodes[flags & 1];
    version = versions[(flags >> 1) & 3];
    {
        char hex[2 * 32 + 1];
        tlsc_hex_encode(hex, id, id_len);
        snprintf(redis_key, sizeof(redis_key), "tlscache:sess:%s", hex);
    }

    /* The copy of the record is exactly its size, so that ASan sees any read past it. */
    unsigned char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, rec, len);

    tlsc_seal_aad_t aad = {redis_key, sni, (uint16_t)version};
    rc = tlsc_records_decode(node, copy, len, &aad, id, id_len, version, &sess);
    if (rc > 0 || (rc == 0) != (sess != NULL))
        abort();
    if (sess != NULL) {
        unsigned int got_len;
        const unsigned char *got = SSL_SESSION_get_id(sess, &got_len);

        if (got_len != id_len || memcmp(got, id, id_len) != 0)
            abort();
        if (version != 0 && SSL_SESSION_get_protocol_version(sess) != version)
            abort();
        check_records_roundtrip(nodes[0], sess, redis_key, sni, id, id_len);
        check_records_roundtrip(nodes[1], sess, redis_key, sni, id, id_len);
        SSL_SESSION_free(sess);
    }

    /* The codecs alone: the payload as plain DER, as a sealed envelope under the fixed key. */
    if (len > 1) {
        unsigned char name[TLSC_SEAL_NAME_LEN], *out = malloc(len);
        size_t out_len = 0;

        if ((sess = tlsc_record_decode_der(copy + 1, len - 1, id, id_len, version)) != NULL)
            SSL_SESSION_free(sess);
        (void)tlsc_seal_key_name(copy + 1, len - 1, name);
        if (out != NULL && len - 1 >= TLSC_SEAL_OVERHEAD) {
            rc = tlsc_unseal(fixed_key, &aad, copy + 1, len - 1, out, len - 1 - TLSC_SEAL_OVERHEAD, &out_len);
            if (rc != TLSC_SEAL_EFORMAT && rc != TLSC_SEAL_EAUTH && rc != 0)
                abort();
        }
        free(out);
    }
    check_seal_roundtrip(copy, len, &aad, (size_t)(flags >> 3) * 131 + len);
    ERR_clear_error();
    free(copy);
    return 0;
}
