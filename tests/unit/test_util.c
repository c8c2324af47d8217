#include "test.h"
#include "util.h"

TEST(hex_roundtrip)
{
    unsigned char in[4] = {0x00, 0xab, 0x10, 0xff}, out[4];
    char hex[9];

    tlsc_hex_encode(hex, in, 4);
    ASSERT_STREQ(hex, "00ab10ff");
    ASSERT_EQ(tlsc_hex_decode(out, sizeof(out), hex, 8), 4);
    ASSERT(memcmp(in, out, 4) == 0);
}

TEST(hex_decode_rejects_bad_input)
{
    unsigned char out[2];

    ASSERT_EQ(tlsc_hex_decode(out, sizeof(out), "abc", 3), -1);    /* odd length */
    ASSERT_EQ(tlsc_hex_decode(out, sizeof(out), "zz", 2), -1);     /* not hex */
    ASSERT_EQ(tlsc_hex_decode(out, sizeof(out), "001122", 6), -1); /* too long for out */
}

int main(void)
{
    RUN(hex_roundtrip);
    RUN(hex_decode_rejects_bad_input);
    TEST_DONE();
}
