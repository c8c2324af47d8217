/*
 * Session records (server/records.c) without a daemon: sealed under the day's fallback key
 * derived from the cluster secret. A record opens for two days after the day it was sealed
 * (its lifetime is at most one), never later; a day's key is not the next day's; another
 * secret cannot open it and says so; plain and sealed records are each refused where the other
 * is expected.
 */
#include <stdint.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "records.h"
#include "test.h"
#include "util.h"

static char dir[64], secret_a[128], secret_b[128];
static uint64_t now_sec;

static uint64_t fake_clock(void *unused)
{
    return now_sec;
}

static void write_secret(const char *path)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' >'%s' && chmod 600 '%s'", path, path);
    ASSERT(system(cmd) == 0);
}

static SSL_SESSION *make_session(const unsigned char id[32])
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL *ssl = SSL_new(ctx);
    SSL_SESSION *s = SSL_SESSION_new();
    static const unsigned char suite[2] = {0xc0, 0x2f}, mk[48] = {1, 2, 3};

    ASSERT(SSL_SESSION_set1_id(s, id, 32) == 1);
    ASSERT(SSL_SESSION_set_protocol_version(s, TLS1_2_VERSION) == 1);
    ASSERT(SSL_SESSION_set1_master_key(s, mk, sizeof(mk)) == 1);
    ASSERT(SSL_SESSION_set_cipher(s, SSL_CIPHER_find(ssl, suite)) == 1);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return s;
}

static tlsc_records_t *open_records(const char *secret)
{
    tlsc_records_t *r;
    char err[256];

    ASSERT_EQ(tlsc_records_new(NULL, secret, &r, err, sizeof(err)), 0);
    tlsc_records_set_clock(r, fake_clock, NULL);
    return r;
}

static const unsigned char id[32] = {0xab, 0xcd, 0xef};
static tlsc_seal_aad_t aad = {.redis_key = "tlscache:sess:abcdef", .sni = "a.example"};

static int decode_at(tlsc_records_t *r, const unsigned char *rec, size_t len, uint64_t when)
{
    SSL_SESSION *s = NULL;
    int rc;

    now_sec = when;
    aad.tls_version = TLS1_2_VERSION;
    rc = tlsc_records_decode(r, rec, len, &aad, id, sizeof(id), TLS1_2_VERSION, &s);
    ASSERT((rc == 0) == (s != NULL));
    SSL_SESSION_free(s);
    return rc;
}

TEST(a_record_opens_for_two_days_after_the_day_it_was_sealed_and_never_later)
{
    tlsc_records_t *r = open_records(secret_a);
    SSL_SESSION *s = make_session(id);
    uint64_t day = 20000, t = day * 86400 + 86000; /* late in the day */
    unsigned char *rec;
    size_t len;

    now_sec = t;
    ASSERT_EQ(tlsc_records_encode(r, s, &aad, &rec, &len), 0);
    ASSERT_EQ(rec[0], 'S');
    ASSERT_EQ(decode_at(r, rec, len, t), 0);
    ASSERT_EQ(decode_at(r, rec, len, t + 86400), 0);
    ASSERT_EQ(decode_at(r, rec, len, t + 2 * 86400), 0);
    ASSERT_EQ(decode_at(r, rec, len, t + 3 * 86400), TLSC_RECORDS_EUNKNOWN_KEY);
    ASSERT_EQ(decode_at(r, rec, len, t - 2 * 86400), TLSC_RECORDS_EUNKNOWN_KEY); /* a clock far behind */
    tlsc_secure_free(rec, len);
    SSL_SESSION_free(s);
    tlsc_records_free(r);
}

TEST(each_day_seals_under_its_own_key)
{
    tlsc_records_t *r = open_records(secret_a);
    SSL_SESSION *s = make_session(id);
    unsigned char *rec1, *rec2;
    size_t len1, len2;

    now_sec = 20000ull * 86400;
    ASSERT_EQ(tlsc_records_encode(r, s, &aad, &rec1, &len1), 0);
    now_sec += 86400;
    ASSERT_EQ(tlsc_records_encode(r, s, &aad, &rec2, &len2), 0);
    /* 'S', version, then the 16-byte key name: "tlsc:fb:" and the day */
    ASSERT(memcmp(rec1 + 2, "tlsc:fb:", 8) == 0);
    ASSERT(memcmp(rec1 + 2, rec2 + 2, 16) != 0);
    tlsc_secure_free(rec1, len1);
    tlsc_secure_free(rec2, len2);
    SSL_SESSION_free(s);
    tlsc_records_free(r);
}

TEST(another_secret_cannot_open_and_plain_and_sealed_do_not_mix)
{
    tlsc_records_t *a = open_records(secret_a), *b = open_records(secret_b), *plain = open_records(NULL);
    SSL_SESSION *s = make_session(id);
    unsigned char *rec, *prec;
    size_t len, plen;

    now_sec = 20000ull * 86400;
    ASSERT_EQ(tlsc_records_encode(a, s, &aad, &rec, &len), 0);
    ASSERT_EQ(decode_at(b, rec, len, now_sec), TLSC_RECORDS_EFOREIGN);
    ASSERT_EQ(decode_at(plain, rec, len, now_sec), TLSC_RECORDS_ESEALED);
    ASSERT_EQ(tlsc_records_encode(plain, s, &aad, &prec, &plen), 0);
    ASSERT_EQ(prec[0], 'P');
    ASSERT_EQ(decode_at(a, prec, plen, now_sec), TLSC_RECORDS_EPLAIN);
    ASSERT_EQ(decode_at(plain, prec, plen, now_sec), 0);
    rec[len - 1] ^= 1;
    ASSERT_EQ(decode_at(a, rec, len, now_sec), TLSC_RECORDS_EFOREIGN); /* tampered: same answer, it cannot tell */
    tlsc_secure_free(rec, len);
    tlsc_secure_free(prec, plen);
    SSL_SESSION_free(s);
    tlsc_records_free(a);
    tlsc_records_free(b);
    tlsc_records_free(plain);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tlsc-unit-records-XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(secret_a, sizeof(secret_a), "%s/a.secret", dir);
    snprintf(secret_b, sizeof(secret_b), "%s/b.secret", dir);
    write_secret(secret_a);
    write_secret(secret_b);

    RUN(a_record_opens_for_two_days_after_the_day_it_was_sealed_and_never_later);
    RUN(each_day_seals_under_its_own_key);
    RUN(another_secret_cannot_open_and_plain_and_sealed_do_not_mix);

    unlink(secret_a);
    unlink(secret_b);
    rmdir(dir);
    TEST_DONE();
}
