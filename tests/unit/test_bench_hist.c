#include "hist.h"
#include "test.h"

TEST(hist_index_is_exact_below_128_and_monotonic_above)
{
    uint64_t lo, hi;
    size_t prev = 0;

    for (uint64_t v = 0; v < 128; v++)
        ASSERT_EQ(tlsc_hist_index(v), v);
    for (uint64_t v = 1; v < (UINT64_C(1) << 40); v = v * 3 / 2 + 1) {
        size_t idx = tlsc_hist_index(v);

        ASSERT(idx >= prev);
        prev = idx;
        tlsc_hist_bounds(idx, &lo, &hi);
        ASSERT(lo <= v && v <= hi);
        /* Each bucket is at most 1/64 of its lower bound wide. */
        ASSERT((hi - lo) * 64 <= lo || lo < 128);
    }
}

TEST(hist_bounds_tile_the_range_without_gaps)
{
    uint64_t lo, hi, prev_hi;

    tlsc_hist_bounds(0, &lo, &prev_hi);
    for (size_t i = 1; i < TLSC_HIST_BUCKETS; i++) {
        tlsc_hist_bounds(i, &lo, &hi);
        ASSERT_EQ(lo, prev_hi + 1);
        ASSERT(hi >= lo);
        prev_hi = hi;
    }
}

TEST(hist_huge_values_land_in_the_last_bucket)
{
    tlsc_hist_t h;

    tlsc_hist_init(&h);
    tlsc_hist_add(&h, UINT64_MAX / 2);
    ASSERT_EQ(h.counts[TLSC_HIST_BUCKETS - 1], 1);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.5), UINT64_MAX / 2);
}

TEST(hist_percentiles_of_one_to_ten_thousand)
{
    static tlsc_hist_t h;
    uint64_t p;

    tlsc_hist_init(&h);
    for (uint64_t v = 1; v <= 10000; v++)
        tlsc_hist_add(&h, v);
    ASSERT_EQ(h.count, 10000);
    ASSERT_EQ(h.min, 1);
    ASSERT_EQ(h.max, 10000);
    /* The exact answers are 5000, 9000, 9900, 9990; buckets are within 1/64. */
    p = tlsc_hist_percentile(&h, 0.5);
    ASSERT(p >= 5000 && p <= 5000 + 5000 / 64);
    p = tlsc_hist_percentile(&h, 0.9);
    ASSERT(p >= 9000 && p <= 9000 + 9000 / 64);
    p = tlsc_hist_percentile(&h, 0.99);
    ASSERT(p >= 9900 && p <= 10000);
    p = tlsc_hist_percentile(&h, 0.999);
    ASSERT(p >= 9990 && p <= 10000);
    ASSERT_EQ(tlsc_hist_percentile(&h, 1.0), 10000);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.0), 1);
    ASSERT(tlsc_hist_mean(&h) > 5000.49 && tlsc_hist_mean(&h) < 5000.51);
}

TEST(hist_small_values_are_exact)
{
    tlsc_hist_t h;

    tlsc_hist_init(&h);
    for (int i = 0; i < 99; i++)
        tlsc_hist_add(&h, 10);
    tlsc_hist_add(&h, 100);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.5), 10);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.99), 10);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.999), 100);
}

TEST(hist_percentile_never_exceeds_max_nor_goes_below_min)
{
    tlsc_hist_t h;

    tlsc_hist_init(&h);
    tlsc_hist_add(&h, 1000); /* bucket [1000, 1007] */
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.5), 1000);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.999), 1000);
}

TEST(hist_empty_reports_zero)
{
    tlsc_hist_t h;

    tlsc_hist_init(&h);
    ASSERT_EQ(tlsc_hist_percentile(&h, 0.5), 0);
    ASSERT_EQ(tlsc_hist_percentile(&h, 1.0), 0);
    ASSERT(tlsc_hist_mean(&h) == 0.0);
}

TEST(hist_merge_equals_adding_everything_to_one)
{
    static tlsc_hist_t a, b, all;

    tlsc_hist_init(&a);
    tlsc_hist_init(&b);
    tlsc_hist_init(&all);
    for (uint64_t v = 0; v < 5000; v += 7) {
        tlsc_hist_add(v % 2 ? &a : &b, v * 13);
        tlsc_hist_add(&all, v * 13);
    }
    tlsc_hist_merge(&a, &b);
    ASSERT_EQ(a.count, all.count);
    ASSERT_EQ(a.sum, all.sum);
    ASSERT_EQ(a.min, all.min);
    ASSERT_EQ(a.max, all.max);
    ASSERT(memcmp(a.counts, all.counts, sizeof(a.counts)) == 0);
}

int main(void)
{
    RUN(hist_index_is_exact_below_128_and_monotonic_above);
    RUN(hist_bounds_tile_the_range_without_gaps);
    RUN(hist_huge_values_land_in_the_last_bucket);
    RUN(hist_percentiles_of_one_to_ten_thousand);
    RUN(hist_small_values_are_exact);
    RUN(hist_percentile_never_exceeds_max_nor_goes_below_min);
    RUN(hist_empty_reports_zero);
    RUN(hist_merge_equals_adding_everything_to_one);
    TEST_DONE();
}
