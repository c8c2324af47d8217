#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
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

/* Sets a POSIX ACL on `path`: owner rw (as chmod 0600 left it), `user_id`'s read when
 * user_perm, group `gperm`, a named group's read when named_group, mask r, other none. */
static int set_acl(const char *path, uint32_t user_id, unsigned user_perm, unsigned gperm, int named_group)
{
    unsigned char v[4 + 6 * 8], *p = v;
    const struct {
        unsigned tag, perm;
        uint32_t id;
        int on;
    } e[] = {{1, 6, 0xffffffffu, 1},    {2, user_perm, user_id, 1}, {4, gperm, 0xffffffffu, 1},
             {8, 4, 4242, named_group}, {16, 4, 0xffffffffu, 1},    {32, 0, 0xffffffffu, 1}};

    *p++ = 2, *p++ = 0, *p++ = 0, *p++ = 0;
    for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
        if (!e[i].on)
            continue;
        *p++ = (unsigned char)e[i].tag, *p++ = 0, *p++ = (unsigned char)e[i].perm, *p++ = 0;
        for (int b = 0; b < 32; b += 8)
            *p++ = (unsigned char)(e[i].id >> b);
    }
    return setxattr(path, "system.posix_acl_access", v, (size_t)(p - v), 0);
}

/*
 * systemd's LoadCredential= on a file system with ACLs leaves the credential owned by root,
 * 0400, plus "user:<service user>:r": the mode then reads 0440 (the mask). That passes when the
 * ACL's named user is this process and nobody else gets anything; any other grant fails.
 */
TEST(secret_file_readable_by_us_alone_through_an_acl_is_read)
{
    static const struct {
        int other_user, gperm, named_group, ok;
    } cases[] = {{0, 0, 0, 1}, {1, 0, 0, 0}, {0, 4, 0, 0}, {0, 0, 1, 0}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = secret_file(0600, "s3cret\n");
        char *data = NULL, why[512] = "";
        size_t len = 0;
        struct stat st;

        if (set_acl(path, (uint32_t)geteuid() + (uint32_t)cases[i].other_user, 4, (unsigned)cases[i].gperm, cases[i].named_group) !=
            0) {
            /* Only a file system without ACLs gets here; the test then has nothing to check. */
            fprintf(stderr, "\n    setxattr(system.posix_acl_access): %s: ACL cases not run\n", strerror(errno));
            ASSERT(errno == EOPNOTSUPP);
            remove_secret(path);
            return;
        }
        ASSERT(stat(path, &st) == 0);
        ASSERT((st.st_mode & 070) != 0); /* the mask shows as group bits: the plain check would refuse */
        if (cases[i].ok) {
            ASSERT_EQ(tlsc_secret_file_check(path, why, sizeof(why)), 0);
            ASSERT_EQ(tlsc_read_secret_file(path, 4096, &data, &len, why, sizeof(why)), 0);
            ASSERT_STREQ(data, "s3cret\n");
            tlsc_secure_free(data, len + 1);
        } else {
            ASSERT_EQ(tlsc_secret_file_check(path, why, sizeof(why)), -EPERM);
            ASSERT_EQ(tlsc_read_secret_file(path, 4096, &data, &len, why, sizeof(why)), -EPERM);
            ASSERT(data == NULL);
        }
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
    RUN(secret_file_readable_by_us_alone_through_an_acl_is_read);
    RUN(secret_file_0600_is_read);
    RUN(secret_file_group_or_other_access_is_refused_with_the_chmod);
    RUN(secret_file_missing_or_not_regular);
    RUN(locked_alloc_is_zeroed_undumpable_and_locked);
    TEST_DONE();
}
