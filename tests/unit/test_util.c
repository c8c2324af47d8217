#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Writes `text` to a new file in a fresh temp dir with `mode`; returns its path (static). */
static const char *secret_file(mode_t mode, const char *text)
{
    static char dir[64], path[128];
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/tlsc-util.XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/secret", dir);
    ASSERT((f = fopen(path, "w")) != NULL);
    fputs(text, f);
    ASSERT(fclose(f) == 0);
    ASSERT(chmod(path, mode) == 0);
    return path;
}

static void remove_secret(const char *path)
{
    char dir[128];

    unlink(path);
    snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(path, '/') - path), path);
    rmdir(dir);
}

TEST(secret_file_0600_is_read)
{
    static const mode_t ok[] = {0600, 0400, 0700};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *path = secret_file(ok[i], "s3cret\n");
        char *data = NULL, why[512] = "";
        size_t len = 0;

        ASSERT_EQ(tlsc_secret_file_check(path, why, sizeof(why)), 0);
        ASSERT_EQ(tlsc_read_secret_file(path, 4096, &data, &len, why, sizeof(why)), 0);
        ASSERT_EQ(len, 7);
        ASSERT_STREQ(data, "s3cret\n");
        tlsc_secure_free(data, len + 1);
        remove_secret(path);
    }
}

TEST(secret_file_group_or_other_access_is_refused_with_the_chmod)
{
    static const mode_t bad[] = {0640, 0604, 0644, 0660, 0620, 0602, 0610, 0601, 0777};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path = secret_file(bad[i], "s3cret\n");
        char *data = NULL, why[512] = "", want[256], mode[16];
        size_t len = 0;

        snprintf(want, sizeof(want), "run: chmod 600 %s", path);
        snprintf(mode, sizeof(mode), "mode %04o", (unsigned)bad[i]);
        ASSERT_EQ(tlsc_read_secret_file(path, 4096, &data, &len, why, sizeof(why)), -EPERM);
        ASSERT(data == NULL);
        if (strstr(why, want) == NULL || strstr(why, mode) == NULL || strchr(why, '\n') != NULL || strstr(why, "s3cret") != NULL) {
            fprintf(stderr, "\n    mode %04o: \"%s\"\n", (unsigned)bad[i], why);
            ASSERT(0);
        }
        why[0] = '\0';
        ASSERT_EQ(tlsc_secret_file_check(path, why, sizeof(why)), -EPERM);
        ASSERT(strstr(why, want) != NULL);
        remove_secret(path);
    }
}

TEST(secret_file_missing_or_not_regular)
{
    char *data = NULL, why[512] = "";
    size_t len = 0;

    ASSERT_EQ(tlsc_read_secret_file("/nonexistent/tlsc-secret", 4096, &data, &len, why, sizeof(why)), -ENOENT);
    ASSERT(strstr(why, "/nonexistent/tlsc-secret") != NULL);
    ASSERT_EQ(tlsc_secret_file_check("/", why, sizeof(why)), -EINVAL);
    ASSERT(strstr(why, "not a regular file") != NULL);
}

TEST(locked_alloc_is_zeroed_undumpable_and_locked)
{
    unsigned char *p = tlsc_locked_alloc(100);
    char flags[256];
    long locked_kb = 0;
    struct rlimit rl;

    ASSERT(p != NULL);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(p[i], 0);
    memset(p, 0xA5, 100);
    ASSERT_EQ(tlsc_test_vmflags(p, flags, sizeof(flags), &locked_kb), 0);
    ASSERT(tlsc_test_has_flag(flags, "dd"));
    if (TLSC_TEST_MLOCK_WORKS && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= (1 << 20)) {
        ASSERT(tlsc_test_has_flag(flags, "lo"));
        ASSERT(locked_kb > 0);
    }
    tlsc_locked_free(p, 100);
    /* Unmapped: no mapping holds it any more. */
    ASSERT_EQ(tlsc_test_vmflags(p, flags, sizeof(flags), &locked_kb), -1);
    tlsc_locked_free(NULL, 100);
}

int main(void)
{
    RUN(hex_roundtrip);
    RUN(hex_decode_rejects_bad_input);
    RUN(secret_file_0600_is_read);
    RUN(secret_file_group_or_other_access_is_refused_with_the_chmod);
    RUN(secret_file_missing_or_not_regular);
    RUN(locked_alloc_is_zeroed_undumpable_and_locked);
    TEST_DONE();
}
