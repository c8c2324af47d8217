#include <openssl/err.h>
#include <openssl/ssl.h>

#include "record.h"
#include "test.h"

static SSL_SESSION *make_session(const unsigned char *id, unsigned id_len, int version)
{
    SSL_SESSION *s = SSL_SESSION_new();
    unsigned char master[48];

    memset(master, 0x42, sizeof(master));
    ASSERT(s != NULL);
    ASSERT(SSL_SESSION_set1_id(s, id, id_len) == 1);
    ASSERT(SSL_SESSION_set1_master_key(s, master, sizeof(master)) == 1);
    ASSERT(SSL_SESSION_set_protocol_version(s, version) == 1);
    /* A cipher is needed for i2d: take TLS_AES_128_GCM_SHA256 / ECDHE-ECDSA-AES128-GCM-SHA256. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL *ssl = SSL_new(ctx);
    STACK_OF(SSL_CIPHER) *ciphers = SSL_get_ciphers(ssl);
    ASSERT(SSL_SESSION_set_cipher(s, sk_SSL_CIPHER_value(ciphers, 0)) == 1);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return s;
}

TEST(plain_record_roundtrip_checks_id_and_version)
{
    unsigned char id[32], other[32];
    unsigned char *rec;
    size_t len;

    memset(id, 7, sizeof(id));
    memset(other, 8, sizeof(other));
    SSL_SESSION *s = make_session(id, sizeof(id), TLS1_2_VERSION);
    ASSERT_EQ(tlsc_record_encode_plain(s, &rec, &len), 0);
    ASSERT_EQ(rec[0], TLSC_RECORD_PLAIN);

    SSL_SESSION *back = tlsc_record_decode_der(rec + 1, len - 1, id, sizeof(id), TLS1_2_VERSION);
    ASSERT(back != NULL);
    SSL_SESSION_free(back);
    /* Moved to another key (another ID): refused. */
    ASSERT(tlsc_record_decode_der(rec + 1, len - 1, other, sizeof(other), TLS1_2_VERSION) == NULL);
    /* Looked up as TLS 1.3 while it is a TLS 1.2 session: refused. */
    ASSERT(tlsc_record_decode_der(rec + 1, len - 1, id, sizeof(id), TLS1_3_VERSION) == NULL);
    free(rec);
    SSL_SESSION_free(s);
    ERR_clear_error();
}

TEST(truncated_extended_and_garbage_records_are_refused)
{
    unsigned char id[16], *rec, garbage[512];
    size_t len;

    memset(id, 1, sizeof(id));
    SSL_SESSION *s = make_session(id, sizeof(id), TLS1_3_VERSION);
    ASSERT_EQ(tlsc_record_encode_plain(s, &rec, &len), 0);
    for (size_t n = 0; n < len - 1; n++)
        ASSERT(tlsc_record_decode_der(rec + 1, n, id, sizeof(id), 0) == NULL);

    unsigned char *longer = malloc(len + 3);
    memcpy(longer, rec, len);
    memcpy(longer + len, "xyz", 3);
    ASSERT(tlsc_record_decode_der(longer + 1, len + 2, id, sizeof(id), 0) == NULL);
    free(longer);

    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (unsigned char)(i * 131 + 7);
    ASSERT(tlsc_record_decode_der(garbage, sizeof(garbage), id, sizeof(id), 0) == NULL);
    ASSERT(tlsc_record_decode_der(garbage, TLSC_RECORD_MAX + 1, id, sizeof(id), 0) == NULL);

    /* Every single-byte flip either fails to decode or still carries the right ID. */
    for (size_t i = 1; i < len; i++) {
        rec[i] ^= 0x01;
        SSL_SESSION *x = tlsc_record_decode_der(rec + 1, len - 1, id, sizeof(id), 0);
        if (x != NULL) {
            unsigned int n;
            const unsigned char *sid = SSL_SESSION_get_id(x, &n);
            ASSERT(n == sizeof(id) && memcmp(sid, id, n) == 0);
            SSL_SESSION_free(x);
        }
        rec[i] ^= 0x01;
    }
    free(rec);
    SSL_SESSION_free(s);
    ERR_clear_error();
}

int main(void)
{
    RUN(plain_record_roundtrip_checks_id_and_version);
    RUN(truncated_extended_and_garbage_records_are_refused);
    TEST_DONE();
}
