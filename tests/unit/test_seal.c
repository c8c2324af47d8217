/* Sealed session records: roundtrip; a flipped bit, another Redis key or SNI, a truncation fail. */
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "seal.h"
#include "test.h"

static unsigned char key[32], name[16], plain[1000];
static const tlsc_seal_aad_t aad = {"tlscache:sess:00aa", "a.example", TLS1_3_VERSION};

static size_t seal_one(unsigned char *rec, size_t cap)
{
    size_t len = 0;

    RAND_bytes(key, 32);
    RAND_bytes(name, 16);
    RAND_bytes(plain, sizeof(plain));
    ASSERT_EQ(tlsc_seal(key, name, &aad, plain, sizeof(plain), rec, cap, &len), 0);
    ASSERT_EQ(len, sizeof(plain) + TLSC_SEAL_OVERHEAD);
    return len;
}

TEST(sealed_record_roundtrips)
{
    unsigned char rec[2000], out[2000], n[16];
    size_t len = seal_one(rec, sizeof(rec)), olen = 0;

    ASSERT_EQ(tlsc_seal_key_name(rec, len, n), 0);
    ASSERT(memcmp(n, name, 16) == 0);
    ASSERT(memmem(rec, len, plain, 16) == NULL); /* not in the clear */
    ASSERT_EQ(tlsc_unseal(key, &aad, rec, len, out, sizeof(out), &olen), 0);
    ASSERT_EQ(olen, sizeof(plain));
    ASSERT(memcmp(out, plain, olen) == 0);
}

TEST(any_flipped_bit_fails)
{
    unsigned char rec[2000], out[2000];
    size_t len = seal_one(rec, sizeof(rec)), olen;

    for (size_t i = 0; i < len; i += 7) {
        rec[i] ^= 0x10;
        ASSERT(tlsc_unseal(key, &aad, rec, len, out, sizeof(out), &olen) < 0);
        rec[i] ^= 0x10;
    }
    ASSERT_EQ(tlsc_unseal(key, &aad, rec, len, out, sizeof(out), &olen), 0);
}

TEST(record_moved_to_another_key_or_name_or_version_fails)
{
    unsigned char rec[2000], out[2000], other[32];
    size_t len = seal_one(rec, sizeof(rec)), olen;
    tlsc_seal_aad_t moved = aad;

    moved.redis_key = "tlscache:sess:00ab";
    ASSERT_EQ(tlsc_unseal(key, &moved, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    moved = aad;
    moved.sni = "b.example";
    ASSERT_EQ(tlsc_unseal(key, &moved, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    moved = aad;
    moved.sni = NULL;
    ASSERT_EQ(tlsc_unseal(key, &moved, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    moved = aad;
    moved.tls_version = TLS1_2_VERSION;
    ASSERT_EQ(tlsc_unseal(key, &moved, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    /* Field boundaries are length-prefixed: shifting a byte between key and SNI fails too. */
    moved.redis_key = "tlscache:sess:00aaa";
    moved.sni = ".example";
    moved.tls_version = TLS1_3_VERSION;
    ASSERT_EQ(tlsc_unseal(key, &moved, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    memcpy(other, key, 32);
    other[31] ^= 1;
    ASSERT_EQ(tlsc_unseal(other, &aad, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
}

TEST(truncated_or_unknown_version_fails)
{
    unsigned char rec[2000], out[2000], n[16];
    size_t len = seal_one(rec, sizeof(rec)), olen;

    for (size_t cut = 0; cut < len; cut += 13)
        ASSERT(tlsc_unseal(key, &aad, rec, cut, out, sizeof(out), &olen) < 0);
    ASSERT(tlsc_unseal(key, &aad, rec, len - 1, out, sizeof(out), &olen) < 0);
    ASSERT_EQ(tlsc_seal_key_name(rec, 10, n), TLSC_SEAL_EFORMAT);
    rec[0] = 2;
    ASSERT_EQ(tlsc_unseal(key, &aad, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EFORMAT);
    ASSERT_EQ(tlsc_unseal(key, &aad, rec, len, out, 10, &olen), TLSC_SEAL_EFORMAT);
}

TEST(small_output_buffers_are_refused)
{
    unsigned char rec[2000], out[2000];
    size_t len = seal_one(rec, sizeof(rec)), olen;

    ASSERT_EQ(tlsc_seal(key, name, &aad, plain, sizeof(plain), rec, sizeof(plain) + TLSC_SEAL_OVERHEAD - 1, &olen),
              TLSC_SEAL_ENOBUFS);
    len = seal_one(rec, sizeof(rec));
    ASSERT_EQ(tlsc_unseal(key, &aad, rec, len, out, sizeof(plain) - 1, &olen), TLSC_SEAL_ENOBUFS);
    /* An empty plaintext still seals and authenticates. */
    ASSERT_EQ(tlsc_seal(key, name, &aad, plain, 0, rec, sizeof(rec), &len), 0);
    ASSERT_EQ(tlsc_unseal(key, &aad, rec, len, out, sizeof(out), &olen), 0);
    ASSERT_EQ(olen, 0);
}

int main(void)
{
    RUN(sealed_record_roundtrips);
    RUN(any_flipped_bit_fails);
    RUN(record_moved_to_another_key_or_name_or_version_fails);
    RUN(truncated_or_unknown_version_fails);
    RUN(small_output_buffers_are_refused);
    TEST_DONE();
}
