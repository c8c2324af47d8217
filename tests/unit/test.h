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
