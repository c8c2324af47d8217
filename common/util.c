#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "log.h"

void tlsc_hex_encode(char *out, const unsigned char *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int tlsc_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tlsc_hex_decode(unsigned char *out, size_t cap, const char *hex, size_t hexlen)
{
    if (hexlen % 2 != 0 || hexlen / 2 > cap)
        return -1;
    for (size_t i = 0; i < hexlen / 2; i++) {
        int hi = tlsc_hex_digit(hex[2 * i]), lo = tlsc_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return (int)(hexlen / 2);
}

uint64_t tlsc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t tlsc_wall_sec(void)
{
    return (uint64_t)time(NULL);
}

/*
 * A POSIX ACL as Linux stores it in the system.posix_acl_access attribute: a little-endian
 * version (2), then entries {le16 tag, le16 perm, le32 id}.
 */
enum { ACL_TAG_USER_OBJ = 1, ACL_TAG_USER = 2, ACL_TAG_GROUP_OBJ = 4, ACL_TAG_GROUP = 8, ACL_TAG_MASK = 16, ACL_TAG_OTHER = 32 };
#define ACL_ENTRY_LEN   8
#define ACL_MAX_ENTRIES 32

static unsigned le16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/*
 * 1 when the file's ACL lets nobody but its owner and this process's user read it: no group
 * entry and no "other" with a permission, no named user but us. systemd's LoadCredential=
 * hands a credential over that way when the credentials file system has ACLs (tmpfs): a
 * root-owned 0400 file plus "user:<service user>:r", which ls shows as mode 0440 (the group
 * bits of an ACL'd file are its mask). 0 for anything else: no ACL, an unreadable or odd one.
 */
static int acl_private(const char *path, int fd)
{
    unsigned char acl[4 + ACL_MAX_ENTRIES * ACL_ENTRY_LEN];
    unsigned mask = 7;
    ssize_t n = fd >= 0 ? fgetxattr(fd, "system.posix_acl_access", acl, sizeof(acl))
                        : getxattr(path, "system.posix_acl_access", acl, sizeof(acl));

    if (n < 4 || (n - 4) % ACL_ENTRY_LEN != 0 || le16(acl) != 2 || le16(acl + 2) != 0)
        return 0;
    for (ssize_t off = 4; off < n; off += ACL_ENTRY_LEN)
        if (le16(acl + off) == ACL_TAG_MASK)
            mask = le16(acl + off + 2) & 7;
    for (ssize_t off = 4; off < n; off += ACL_ENTRY_LEN) {
        const unsigned char *e = acl + off;
        unsigned tag = le16(e), perm = le16(e + 2) & 7;
        uint32_t id = (uint32_t)e[4] | (uint32_t)e[5] << 8 | (uint32_t)e[6] << 16 | (uint32_t)e[7] << 24;

        if (tag == ACL_TAG_USER && (perm & mask) != 0 && id != (uint32_t)geteuid())
            return 0;
        if ((tag == ACL_TAG_GROUP_OBJ || tag == ACL_TAG_GROUP) && (perm & mask) != 0)
            return 0;
        if (tag == ACL_TAG_OTHER && perm != 0)
            return 0;
    }
    return 1;
}

/*
 * The mode test shared by the two entry points: what ssh calls "permissions too open". An
 * ACL that grants read to this process's user alone passes (a systemd credential, see
 * acl_private); `fd` is the open file, or -1 to look at `path`.
 */
static int secret_mode_ok(const char *path, int fd, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -EINVAL;
    }
    if ((st->st_mode & 077) != 0 && !((st->st_mode & 007) == 0 && acl_private(path, fd))) {
        snprintf(err, errlen, "%s: mode %04o is too open for a secret (group or others may access it); run: chmod 600 %s", path,
                 (unsigned)(st->st_mode & 07777), path);
        return -EPERM;
    }
    return 0;
}

int tlsc_secret_file_check(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    return secret_mode_ok(path, -1, &st, err, errlen);
}

static int read_fd(int fd, const struct stat *st, size_t max, char **out, size_t *len);

int tlsc_read_secret_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    } else if ((rc = secret_mode_ok(path, fd, &st, err, errlen)) == 0) {
        if ((rc = read_fd(fd, &st, max, out, len)) != 0)
            snprintf(err, errlen, "%s: %s", path, rc == -EFBIG ? "too large for a secret file" : strerror(-rc));
    }
    close(fd);
    return rc;
}

int tlsc_read_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    int fd, err;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        err = -errno;
    else
        err = read_fd(fd, &st, max, out, len);
    close(fd);
    return err;
}

/* Reads a whole regular file of at most `max` bytes from `fd` (which stays open). */
static int read_fd(int fd, const struct stat *stp, size_t max, char **out, size_t *len)
{
    const struct stat st = *stp;
    char *buf;
    size_t got = 0;
    int err;

    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((size_t)st.st_size > max)
        return -EFBIG;
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        return -ENOMEM;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? -errno : -EIO;
            goto fail_buf;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;

fail_buf:
    tlsc_secure_free(buf, (size_t)st.st_size + 1);
    return err;
}

void tlsc_secure_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

/*
 * LeakSanitizer does not look into mappings of our own: a heap pointer kept only in a locked
 * region (the records module's cipher contexts) would look leaked. Sanitizer builds register
 * each region as a root to scan.
 */
#if defined(__SANITIZE_ADDRESS__)
#define TLSC_LSAN_ROOTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLSC_LSAN_ROOTS 1
#endif
#endif
#ifdef TLSC_LSAN_ROOTS
#include <sanitizer/lsan_interface.h>
#define lsan_root_add(p, len)    __lsan_register_root_region((p), (len))
#define lsan_root_remove(p, len) __lsan_unregister_root_region((p), (len))
#else
#define lsan_root_add(p, len)    ((void)0)
#define lsan_root_remove(p, len) ((void)0)
#endif

void *tlsc_locked_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
    /* Best effort both: the secret is still wiped when dropped. An anonymous mapping is zeroed. */
    if (mlock(p, len) != 0)
        tlsc_log_debug("mlock of %zu bytes of secrets failed (%s); they may reach swap", len, strerror(errno));
    if (madvise(p, len, MADV_DONTDUMP) != 0)
        tlsc_log_debug("MADV_DONTDUMP on %zu bytes of secrets failed (%s)", len, strerror(errno));
    lsan_root_add(p, len);
    return p;
}

void tlsc_locked_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    lsan_root_remove(p, len);
    (void)munlock(p, len);
    (void)munmap(p, len);
}

size_t tlsc_rstrip(char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return len;
}

const char *tlsc_openssl_reason(char *out, size_t outlen, const char *fallback)
{
    unsigned long e = ERR_get_error();

    if (e == 0)
        snprintf(out, outlen, "%s", fallback);
    else
        ERR_error_string_n(e, out, outlen);
    ERR_clear_error();
    return out;
}
