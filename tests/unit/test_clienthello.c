#include "clienthello.h"
#include "test.h"

TEST(sni_extracts_and_lowercases_host_name)
{
    /* list_len=14, type 0, len 11, "A.Example.c" */
    const unsigned char ext[] = {0, 14, 0, 0, 11, 'A', '.', 'E', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c'};
    char out[TLSC_SNI_MAX + 1];

    ASSERT_EQ(tlsc_clienthello_sni(ext, sizeof(ext), out), 0);
    ASSERT_STREQ(out, "a.example.c");
}

TEST(sni_skips_unknown_name_types)
{
    const unsigned char ext[] = {0, 10, 7, 0, 2, 'x', 'y', 0, 0, 2, 'o', 'k'};
    char out[TLSC_SNI_MAX + 1];

    ASSERT_EQ(tlsc_clienthello_sni(ext, sizeof(ext), out), 0);
    ASSERT_STREQ(out, "ok");
}

TEST(sni_rejects_embedded_nul_and_control_bytes)
{
    const unsigned char nul[] = {0, 6, 0, 0, 3, 'a', 0, 'b'};
    const unsigned char ctl[] = {0, 6, 0, 0, 3, 'a', '\n', 'b'};
    const unsigned char slash[] = {0, 6, 0, 0, 3, 'a', '/', 'b'};
    char out[TLSC_SNI_MAX + 1];

    /* Well formed, unusable value: illegal_parameter. */
    ASSERT_EQ(tlsc_clienthello_sni(nul, sizeof(nul), out), TLSC_CH_ILLEGAL_PARAMETER);
    ASSERT_EQ(tlsc_clienthello_sni(ctl, sizeof(ctl), out), TLSC_CH_ILLEGAL_PARAMETER);
    ASSERT_EQ(tlsc_clienthello_sni(slash, sizeof(slash), out), TLSC_CH_ILLEGAL_PARAMETER);
}

TEST(sni_rejects_truncated_and_inconsistent_lengths)
{
    const unsigned char short_list[] = {0, 20, 0, 0, 3, 'a', 'b', 'c'};
    const unsigned char name_past_end[] = {0, 6, 0, 0, 9, 'a', 'b', 'c'};
    const unsigned char empty_name[] = {0, 3, 0, 0, 0};
    const unsigned char tiny[] = {0};
    const unsigned char list_short[] = {0, 4, 0, 0, 3, 'a', 'b', 'c'};
    const unsigned char empty_list[] = {0, 0};
    const unsigned char half_entry[] = {0, 2, 0, 0};
    /* A bad second entry is a decode_error even after a good host_name. */
    const unsigned char bad_second[] = {0, 9, 0, 0, 1, 'a', 7, 0, 9, 'x', 'y'};
    char out[TLSC_SNI_MAX + 1];

    /* Every length that does not fit is a decode_error (RFC 8446 §6.2), never illegal_parameter. */
    ASSERT_EQ(tlsc_clienthello_sni(short_list, sizeof(short_list), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(name_past_end, sizeof(name_past_end), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(empty_name, sizeof(empty_name), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(tiny, sizeof(tiny), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(tiny, 0, out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(list_short, sizeof(list_short), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(empty_list, sizeof(empty_list), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(half_entry, sizeof(half_entry), out), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_sni(bad_second, sizeof(bad_second), out), TLSC_CH_DECODE_ERROR);
}

TEST(sni_without_host_name_is_illegal_parameter)
{
    const unsigned char ext[] = {0, 5, 7, 0, 2, 'x', 'y'};
    char out[TLSC_SNI_MAX + 1];

    ASSERT_EQ(tlsc_clienthello_sni(ext, sizeof(ext), out), TLSC_CH_ILLEGAL_PARAMETER);
}

TEST(versions_finds_tls13_and_refuses_bad_lengths)
{
    const unsigned char both[] = {4, 3, 4, 3, 3};
    const unsigned char only12[] = {2, 3, 3};
    const unsigned char odd[] = {3, 3, 4, 3};
    const unsigned char past[] = {6, 3, 4, 3, 3};
    const unsigned char short_len[] = {2, 3, 4, 3, 3};
    const unsigned char empty[] = {0};

    ASSERT_EQ(tlsc_clienthello_offers_tls13(both, sizeof(both)), 1);
    ASSERT_EQ(tlsc_clienthello_offers_tls13(only12, sizeof(only12)), 0);
    ASSERT_EQ(tlsc_clienthello_offers_tls13(odd, sizeof(odd)), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_offers_tls13(past, sizeof(past)), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_offers_tls13(short_len, sizeof(short_len)), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_offers_tls13(empty, sizeof(empty)), TLSC_CH_DECODE_ERROR);
    ASSERT_EQ(tlsc_clienthello_offers_tls13(empty, 0), TLSC_CH_DECODE_ERROR);
}

TEST(sni_rejects_overlong_name)
{
    unsigned char ext[5 + 300];
    char out[TLSC_SNI_MAX + 1];

    memset(ext, 'a', sizeof(ext));
    ext[0] = (303 >> 8) & 0xff;
    ext[1] = 303 & 0xff;
    ext[2] = 0;
    ext[3] = (300 >> 8) & 0xff;
    ext[4] = 300 & 0xff;
    ASSERT_EQ(tlsc_clienthello_sni(ext, sizeof(ext), out), TLSC_CH_ILLEGAL_PARAMETER);
    /* 255 is the most we accept. */
    ext[0] = (3 + 255) >> 8;
    ext[1] = (3 + 255) & 0xff;
    ext[3] = 0;
    ext[4] = 255;
    ASSERT_EQ(tlsc_clienthello_sni(ext, 5 + 255, out), 0);
    ASSERT_EQ(strlen(out), 255);
}

TEST(psk_identity_points_at_first_identity)
{
    /* identities_len=12: id_len=2 "hi" age(4) + id_len=0?? no: second identity "z" */
    const unsigned char ext[] = {0, 15, 0, 2, 'h', 'i', 1, 2, 3, 4, 0, 1, 'z', 9, 9, 9, 9, 0, 33};
    const unsigned char *id;
    size_t len;

    ASSERT_EQ(tlsc_clienthello_psk_identity(ext, sizeof(ext), &id, &len), 0);
    ASSERT_EQ(len, 2);
    ASSERT(memcmp(id, "hi", 2) == 0);
}

TEST(psk_identity_rejects_hostile_lengths)
{
    const unsigned char *id;
    size_t len;
    const unsigned char id_past_list[] = {0, 8, 0, 9, 'a', 'b', 1, 2, 3, 4, 0, 0};
    const unsigned char list_past_ext[] = {0, 40, 0, 2, 'h', 'i', 1, 2, 3, 4};
    const unsigned char zero_id[] = {0, 7, 0, 0, 1, 2, 3, 4, 0, 0, 0};
    const unsigned char no_binders[] = {0, 8, 0, 2, 'h', 'i', 1, 2, 3, 4};
    const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff};

    ASSERT_EQ(tlsc_clienthello_psk_identity(id_past_list, sizeof(id_past_list), &id, &len), -1);
    ASSERT_EQ(tlsc_clienthello_psk_identity(list_past_ext, sizeof(list_past_ext), &id, &len), -1);
    ASSERT_EQ(tlsc_clienthello_psk_identity(zero_id, sizeof(zero_id), &id, &len), -1);
    ASSERT_EQ(tlsc_clienthello_psk_identity(no_binders, sizeof(no_binders), &id, &len), -1);
    ASSERT_EQ(tlsc_clienthello_psk_identity(huge, sizeof(huge), &id, &len), -1);
    ASSERT_EQ(tlsc_clienthello_psk_identity(huge, 1, &id, &len), -1);
}

TEST(psk_identity_survives_every_truncation)
{
    const unsigned char ext[] = {0, 8, 0, 2, 'h', 'i', 1, 2, 3, 4, 0, 33, 32};
    const unsigned char *id;
    size_t len;

    /* Every prefix shorter than the identities plus the binders' length field must fail. */
    for (size_t n = 0; n < 12; n++)
        ASSERT_EQ(tlsc_clienthello_psk_identity(ext, n, &id, &len), -1);
    ASSERT_EQ(tlsc_clienthello_psk_identity(ext, 12, &id, &len), 0);
}

int main(void)
{
    RUN(sni_extracts_and_lowercases_host_name);
    RUN(sni_skips_unknown_name_types);
    RUN(sni_rejects_embedded_nul_and_control_bytes);
    RUN(sni_rejects_truncated_and_inconsistent_lengths);
    RUN(sni_rejects_overlong_name);
    RUN(sni_without_host_name_is_illegal_parameter);
    RUN(versions_finds_tls13_and_refuses_bad_lengths);
    RUN(psk_identity_points_at_first_identity);
    RUN(psk_identity_rejects_hostile_lengths);
    RUN(psk_identity_survives_every_truncation);
    TEST_DONE();
}
