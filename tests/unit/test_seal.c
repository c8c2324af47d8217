/* Sealed session records: roundtrip; a flipped bit, another Redis key or SNI, a truncation fail. */
#include <stdio.h>

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

/*
 * The cached contexts: records sealed and opened through them equal the one-shot ones; a key
 * change re-keys (the old key's record no longer opens); a failed open (tampered record, other
 * AAD) leaves the cache usable for the next good record; nonces stay fresh per record.
 */
TEST(cached_contexts_match_one_shot_and_follow_the_key)
{
    tlsc_seal_cache_t sealer = {0}, opener = {0};
    unsigned char rec[2000], rec2[2000], out[2000], key2[32];
    size_t len = seal_one(rec, sizeof(rec)), len2 = 0, olen = 0;
    tlsc_seal_aad_t moved = aad;

    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(tlsc_seal_cached(&sealer, key, name, &aad, plain, sizeof(plain), rec2, sizeof(rec2), &len2), 0);
        ASSERT(memcmp(rec2 + 1 + TLSC_SEAL_NAME_LEN, rec + 1 + TLSC_SEAL_NAME_LEN, TLSC_SEAL_NONCE_LEN) != 0);
        ASSERT_EQ(tlsc_unseal(key, &aad, rec2, len2, out, sizeof(out), &olen), 0); /* one-shot opens the cached */
        ASSERT(olen == sizeof(plain) && memcmp(out, plain, olen) == 0);
        ASSERT_EQ(tlsc_unseal_cached(&opener, key, &aad, rec, len, out, sizeof(out), &olen), 0); /* and back */
        ASSERT(olen == sizeof(plain) && memcmp(out, plain, olen) == 0);
        memcpy(rec, rec2, len2);
    }
    rec[len - 1] ^= 1;
    ASSERT_EQ(tlsc_unseal_cached(&opener, key, &aad, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    rec[len - 1] ^= 1;
    moved.sni = "b.example";
    ASSERT_EQ(tlsc_unseal_cached(&opener, key, &moved, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    ASSERT_EQ(tlsc_unseal_cached(&opener, key, &aad, rec, len, out, sizeof(out), &olen), 0);
    memcpy(key2, key, 32);
    key2[0] ^= 0x80;
    ASSERT_EQ(tlsc_unseal_cached(&opener, key2, &aad, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    ASSERT_EQ(tlsc_seal_cached(&sealer, key2, name, &aad, plain, 10, rec2, sizeof(rec2), &len2), 0);
    ASSERT_EQ(tlsc_unseal_cached(&opener, key2, &aad, rec2, len2, out, sizeof(out), &olen), 0);
    ASSERT_EQ(tlsc_unseal(key, &aad, rec2, len2, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
    ASSERT_EQ(tlsc_unseal_cached(&opener, key, &aad, rec, len, out, sizeof(out), &olen), 0);
    tlsc_seal_cache_clear(&sealer);
    tlsc_seal_cache_clear(&opener);
    ASSERT(sealer.ctx == NULL && opener.ctx == NULL);
    tlsc_seal_cache_clear(&opener); /* twice is harmless */
}

/*
 * A record sealed by the build before the AAD went in one update (key 00..1f, name a0..af):
 * records already in Redis keep opening, whatever way the AAD is fed.
 */
TEST(a_record_from_the_previous_build_opens)
{
    static const char hex[] = "01a0a1a2a3a4a5a6a7a8a9aaabacadaeaf9d7ec7028e23c7e00f96da66b3c5658eedd54ca42a4988fef0c729ee1a5cb"
                              "1594d5a6ea044ac61c1";
    unsigned char k[32], rec[sizeof(hex) / 2], out[64];
    size_t olen = 0;

    for (int i = 0; i < 32; i++)
        k[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof(rec); i++)
        sscanf(hex + 2 * i, "%2hhx", &rec[i]);
    ASSERT_EQ(tlsc_unseal(k, &aad, rec, sizeof(rec), out, sizeof(out), &olen), 0);
    ASSERT(olen == 12 && memcmp(out, "known answer", 12) == 0);
}

/* An AAD too long for the one-update buffer (a 600-byte SNI) still binds: roundtrip, and another SNI fails. */
TEST(an_outsized_aad_still_binds)
{
    char sni[601];
    unsigned char rec[200], out[64];
    size_t len = 0, olen = 0;
    tlsc_seal_aad_t big = aad;

    memset(sni, 'a', 600);
    sni[600] = '\0';
    big.sni = sni;
    ASSERT_EQ(tlsc_seal(key, name, &big, plain, 20, rec, sizeof(rec), &len), 0);
    ASSERT_EQ(tlsc_unseal(key, &big, rec, len, out, sizeof(out), &olen), 0);
    sni[599] = 'b';
    ASSERT_EQ(tlsc_unseal(key, &big, rec, len, out, sizeof(out), &olen), TLSC_SEAL_EAUTH);
}

int main(void)
{
    RUN(sealed_record_roundtrips);
    RUN(any_flipped_bit_fails);
    RUN(record_moved_to_another_key_or_name_or_version_fails);
    RUN(truncated_or_unknown_version_fails);
    RUN(small_output_buffers_are_refused);
    RUN(cached_contexts_match_one_shot_and_follow_the_key);
    RUN(a_record_from_the_previous_build_opens);
    RUN(an_outsized_aad_still_binds);
    TEST_DONE();
}
