#ifndef TLSC_TEST_H
#define TLSC_TEST_H

/*
 * A tiny test runner: each file lists TEST(name) functions and calls them from main() with
 * RUN(name). ASSERTs are never compiled out and abort the test program with file:line.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tlsc_test_failed;
static int tlsc_test_count;

#define TEST(name) static void test_##name(void)

#define ASSERT(cond)                                                                                                               \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);                                           \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

#define ASSERT_EQ(a, b)                                                                                                            \
    do {                                                                                                                           \
        long long tlsc_a_ = (long long)(a), tlsc_b_ = (long long)(b);                                                              \
        if (tlsc_a_ != tlsc_b_) {                                                                                                  \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, tlsc_a_, tlsc_b_);               \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

#define ASSERT_STREQ(a, b)                                                                                                         \
    do {                                                                                                                           \
        const char *tlsc_a_ = (a), *tlsc_b_ = (b);                                                                                 \
        if (tlsc_a_ == NULL || tlsc_b_ == NULL || strcmp(tlsc_a_, tlsc_b_) != 0) {                                                 \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b,                              \
                    tlsc_a_ ? tlsc_a_ : "(null)", tlsc_b_ ? tlsc_b_ : "(null)");                                                   \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

/*
 * The VmFlags line of the /proc/self/smaps mapping that holds `addr` (e.g. "rd wr mr mw me lo
 * ac dd"), with the mapping's "Locked:" kB in *locked_kb; 0, or -1 when no mapping holds it.
 */
static inline int tlsc_test_vmflags(const void *addr, char *flags, size_t flagslen, long *locked_kb)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, found = -1;
    unsigned long lo, hi, a = (unsigned long)addr;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
            continue;
        }
        if (!in)
            continue;
        if (strncmp(line, "Locked:", 7) == 0)
            *locked_kb = strtol(line + 7, NULL, 10);
        if (strncmp(line, "VmFlags:", 8) == 0) {
            size_t n = strlen(line + 8) < flagslen ? strlen(line + 8) : flagslen - 1;
            memcpy(flags, line + 8, n);
            flags[n] = '\0';
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* AddressSanitizer turns mlock() into a no-op that returns 0: "lo" can be checked only without it. */
#if defined(__SANITIZE_ADDRESS__)
#define TLSC_TEST_MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLSC_TEST_MLOCK_WORKS 0
#endif
#endif
#ifndef TLSC_TEST_MLOCK_WORKS
#define TLSC_TEST_MLOCK_WORKS 1
#endif

/* Does the VmFlags string hold the two-letter flag `f` ("dd", "lo")? */
static inline int tlsc_test_has_flag(const char *flags, const char *f)
{
    for (const char *p = flags; (p = strstr(p, f)) != NULL; p++)
        if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'))
            return 1;
    return 0;
}

#define RUN(name)                                                                                                                  \
    do {                                                                                                                           \
        fprintf(stderr, "  %s ... ", #name);                                                                                       \
        test_##name();                                                                                                             \
        tlsc_test_count++;                                                                                                         \
        fprintf(stderr, "ok\n");                                                                                                   \
    } while (0)

#define TEST_DONE()                                                                                                                \
    do {                                                                                                                           \
        fprintf(stderr, "%d tests ok\n", tlsc_test_count);                                                                         \
        return tlsc_test_failed;                                                                                                   \
    } while (0)

#endif
