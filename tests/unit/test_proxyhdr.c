#include <stdio.h>
#include <string.h>

#include "proxyhdr.h"
#include "test.h"

/*
 * PROXY protocol headers as a backend reads them: the v1 line, and the v2 binary header with
 * its addresses and TLVs byte for byte; strings too long for a TLV and buffers too small are
 * refused rather than cut.
 */

static const tlsc_proxyhdr_addrs_t v4 = {4, {192, 0, 2, 1}, {127, 0, 0, 1}, 51000, 8443};

TEST(v1_lines)
{
    char out[TLSC_PROXYHDR_V1_MAX];
    tlsc_proxyhdr_addrs_t v6 = {6, {0}, {0}, 1, 65535}, none = {0};

    ASSERT_EQ(tlsc_proxyhdr_v1(&v4, out, sizeof(out)), (int)strlen("PROXY TCP4 192.0.2.1 127.0.0.1 51000 8443\r\n"));
    ASSERT_STREQ(out, "PROXY TCP4 192.0.2.1 127.0.0.1 51000 8443\r\n");
    v6.src[15] = 1;
    v6.dst[0] = 0x20, v6.dst[1] = 0x01, v6.dst[2] = 0x0d, v6.dst[3] = 0xb8;
    ASSERT(tlsc_proxyhdr_v1(&v6, out, sizeof(out)) > 0);
    ASSERT_STREQ(out, "PROXY TCP6 ::1 2001:db8:: 1 65535\r\n");
    ASSERT(tlsc_proxyhdr_v1(&none, out, sizeof(out)) > 0);
    ASSERT_STREQ(out, "PROXY UNKNOWN\r\n");
    ASSERT_EQ(tlsc_proxyhdr_v1(&v4, out, 10), -1);
}

TEST(v2_header_and_tlvs_byte_for_byte)
{
    unsigned char out[TLSC_PROXYHDR_V2_MAX];
    tlsc_proxyhdr_tls_t t = {.version = "TLSv1.3",
                             .cipher = "X",
                             .sni = "a.example",
                             .alpn = (const unsigned char *)"h2",
                             .alpn_len = 2,
                             .resumed = 1,
                             .origin_node = "A"};
    static const unsigned char want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* signature */
        0x21, 0x11, 0x00, 56,                                                   /* v2 PROXY, TCP4, length */
        192,  0,    2,    1,    127,  0,    0,    1,    0xC7, 0x38, 0x20, 0xFB, /* addresses, ports */
        0x01, 0x00, 0x02, 'h',  '2',                                            /* ALPN */
        0x02, 0x00, 0x09, 'a',  '.',  'e',  'x',  'a',  'm',  'p',  'l',  'e',  /* AUTHORITY */
        0x20, 0x00, 19,   0x01, 0,    0,    0,    1,                            /* SSL: client, verify */
        0x21, 0x00, 0x07, 'T',  'L',  'S',  'v',  '1',  '.',  '3',              /* SSL_VERSION */
        0x23, 0x00, 0x01, 'X',                                                  /* SSL_CIPHER */
        0xE0, 0x00, 0x02, 0x01, 'A',                                            /* tlscache: resumed, origin */
    };
    int n = tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out));

    ASSERT_EQ(n, (int)sizeof(want));
    ASSERT(memcmp(out, want, sizeof(want)) == 0);
    /* Every byte is needed: one short is refused. */
    ASSERT_EQ(tlsc_proxyhdr_v2(&v4, &t, out, sizeof(want) - 1), -1);
}

TEST(v2_without_optional_facts_and_without_addresses)
{
    unsigned char out[TLSC_PROXYHDR_V2_MAX];
    tlsc_proxyhdr_addrs_t none = {0};
    tlsc_proxyhdr_tls_t t = {.version = "TLSv1.2", .cipher = "C"};
    int n = tlsc_proxyhdr_v2(&none, &t, out, sizeof(out));

    ASSERT(n > 16);
    ASSERT_EQ(out[12], 0x20); /* LOCAL */
    ASSERT_EQ(out[13], 0x00);
    ASSERT_EQ((out[14] << 8 | out[15]) + 16, n);
    ASSERT_EQ(out[16], 0x20); /* straight to PP2_TYPE_SSL: no ALPN, no AUTHORITY */
    ASSERT_EQ(out[n - 4], 0xE0);
    ASSERT_EQ(out[n - 1], 0x00); /* full handshake, origin not given */
}

TEST(v2_refuses_strings_too_long)
{
    unsigned char out[TLSC_PROXYHDR_V2_MAX];
    char big[TLSC_PROXYHDR_STR_MAX + 2];
    tlsc_proxyhdr_tls_t t = {.version = "TLSv1.3", .cipher = "C"};

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    t.sni = big;
    ASSERT_EQ(tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out)), -1);
    t.sni = NULL;
    t.origin_node = big;
    ASSERT_EQ(tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out)), -1);
    t.origin_node = NULL;
    t.alpn = (const unsigned char *)big;
    t.alpn_len = sizeof(big) - 1;
    ASSERT_EQ(tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out)), -1);
    big[TLSC_PROXYHDR_STR_MAX] = '\0'; /* exactly the most allowed, everywhere at once: fits */
    t.alpn_len = TLSC_PROXYHDR_STR_MAX;
    t.sni = t.origin_node = t.cipher = t.version = big;
    ASSERT(tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out)) > 0);
}

static int parse(const char *s, size_t len, tlsc_proxyhdr_addrs_t *a)
{
    return tlsc_proxyhdr_parse((const unsigned char *)s, len, a);
}

#define PARSE(lit, a) parse(lit, sizeof(lit) - 1, a)

TEST(parse_v1_good_and_every_prefix_wants_more)
{
    static const char line[] = "PROXY TCP4 192.0.2.1 127.0.0.1 51000 8443\r\nTLS";
    tlsc_proxyhdr_addrs_t a;
    size_t hl = sizeof(line) - 1 - 3;

    ASSERT_EQ(parse(line, sizeof(line) - 1, &a), (int)hl);
    ASSERT_EQ(a.family, 4);
    ASSERT(memcmp(a.src, v4.src, 4) == 0 && memcmp(a.dst, v4.dst, 4) == 0);
    ASSERT_EQ(a.sport, 51000);
    ASSERT_EQ(a.dport, 8443);
    for (size_t n = 0; n < hl; n++)
        ASSERT_EQ(parse(line, n, &a), 0);
    ASSERT(PARSE("PROXY TCP6 ::1 2001:db8::2 0 65535\r\n", &a) > 0);
    ASSERT_EQ(a.family, 6);
    ASSERT_EQ(a.sport, 0);
    ASSERT(PARSE("PROXY UNKNOWN\r\n", &a) > 0);
    ASSERT_EQ(a.family, 0);
    ASSERT(PARSE("PROXY UNKNOWN ffff::1 ::1 1 2\r\n", &a) > 0);
    ASSERT_EQ(a.family, 0);
}

TEST(parse_v1_strict)
{
    tlsc_proxyhdr_addrs_t a;
    const char *bad[] = {"GET / HTTP/1.1\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 51000 8443\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 51000 8443 \r\n",
                         "PROXY TCP4  192.0.2.1 127.0.0.1 51000 8443\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 51000\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 51000 8443 1\r\n",
                         "PROXY TCP4 ::1 127.0.0.1 1 2\r\n",
                         "PROXY TCP6 192.0.2.1 ::1 1 2\r\n",
                         "PROXY TCP4 192.0.2.256 127.0.0.1 1 2\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 65536 2\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 01 2\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 -1 2\r\n",
                         "PROXY UDP4 192.0.2.1 127.0.0.1 1 2\r\n",
                         "PROXY UNKNOWNX\r\n",
                         "PROXY TCP4 192.0.2.1 127.0.0.1 1 2\rX",
                         "proxy TCP4 192.0.2.1 127.0.0.1 1 2\r\n",
                         NULL};
    char longline[200];

    for (size_t i = 0; bad[i] != NULL; i++) {
        if (parse(bad[i], strlen(bad[i]), &a) != -1) {
            fprintf(stderr, "\n    accepted \"%s\"\n", bad[i]);
            ASSERT(0);
        }
    }
    ASSERT_EQ(parse("PROXY TCP4 1\0", 13, &a), -1);
    /* No CRLF within 107 bytes is refused, whatever follows. */
    memcpy(longline, "PROXY UNKNOWN ", 14);
    memset(longline + 14, 'x', sizeof(longline) - 14);
    ASSERT_EQ(parse(longline, 106, &a), 0);
    ASSERT_EQ(parse(longline, 107, &a), -1);
    ASSERT_EQ(parse(longline, sizeof(longline), &a), -1);
    memcpy(longline + 105, "\r\n", 2);
    ASSERT_EQ(parse(longline, sizeof(longline), &a), 107);
}

TEST(parse_v2_round_trips_what_we_send)
{
    unsigned char out[TLSC_PROXYHDR_V2_MAX];
    tlsc_proxyhdr_tls_t t = {.version = "TLSv1.3", .cipher = "C", .sni = "a.example", .resumed = 1, .origin_node = "A"};
    tlsc_proxyhdr_addrs_t a, v6 = {6, {0x20, 0x01, 0x0d, 0xb8}, {0}, 1, 2};
    int n = tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out));

    ASSERT_EQ(tlsc_proxyhdr_parse(out, (size_t)n, &a), n);
    ASSERT(memcmp(&a, &v4, sizeof(a)) == 0);
    for (int k = 0; k < n; k++)
        ASSERT_EQ(tlsc_proxyhdr_parse(out, (size_t)k, &a), 0);
    n = tlsc_proxyhdr_v2(&v6, &t, out, sizeof(out));
    ASSERT_EQ(tlsc_proxyhdr_parse(out, (size_t)n, &a), n);
    ASSERT(memcmp(&a, &v6, sizeof(a)) == 0);
}

TEST(parse_v2_strict)
{
    unsigned char out[TLSC_PROXYHDR_V2_MAX], copy[TLSC_PROXYHDR_V2_MAX];
    tlsc_proxyhdr_tls_t t = {.version = "TLSv1.3", .cipher = "C"};
    tlsc_proxyhdr_addrs_t a, none = {0};
    int n = tlsc_proxyhdr_v2(&v4, &t, out, sizeof(out));

#define MUTATED(i, v) (memcpy(copy, out, (size_t)n), copy[i] = (unsigned char)(v), tlsc_proxyhdr_parse(copy, (size_t)n, &a))
    ASSERT_EQ(MUTATED(12, 0x11), -1);        /* version 1 */
    ASSERT_EQ(MUTATED(12, 0x22), -1);        /* command 2 */
    ASSERT_EQ(MUTATED(13, 0x41), -1);        /* family 4 */
    ASSERT_EQ(MUTATED(13, 0x00), -1);        /* PROXY without a family */
    ASSERT_EQ(MUTATED(15, out[15] - 1), -1); /* the TLVs no longer tile the rest */
    ASSERT_EQ(MUTATED(29, 0xFF), -1);        /* a TLV longer than what is left */
    ASSERT_EQ(MUTATED(11, 0x0B), -1);        /* signature */
    /* A length that would need more than TLSC_PROXYHDR_IN_MAX is refused before waiting for it. */
    ASSERT_EQ((memcpy(copy, out, 16), copy[14] = 0xFF, tlsc_proxyhdr_parse(copy, 16, &a)), -1);
    /* Addresses longer than the header. */
    ASSERT_EQ((memcpy(copy, out, 16), copy[14] = 0, copy[15] = 11, tlsc_proxyhdr_parse(copy, 27, &a)), -1);
    /* LOCAL (a health check): no addresses to use. */
    n = tlsc_proxyhdr_v2(&none, &t, out, sizeof(out));
    ASSERT_EQ(tlsc_proxyhdr_parse(out, (size_t)n, &a), n);
    ASSERT_EQ(a.family, 0);
    ASSERT_EQ(tlsc_proxyhdr_parse((const unsigned char *)"\x16\x03\x01", 3, &a), -1); /* a bare ClientHello */
}

int main(void)
{
    RUN(v1_lines);
    RUN(v2_header_and_tlvs_byte_for_byte);
    RUN(v2_without_optional_facts_and_without_addresses);
    RUN(v2_refuses_strings_too_long);
    RUN(parse_v1_good_and_every_prefix_wants_more);
    RUN(parse_v1_strict);
    RUN(parse_v2_round_trips_what_we_send);
    RUN(parse_v2_strict);
    TEST_DONE();
}
