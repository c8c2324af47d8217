#ifndef TLSC_BENCH_HIST_H
#define TLSC_BENCH_HIST_H

/*
 * A latency histogram with log-linear buckets in the spirit of HdrHistogram: values are
 * microseconds, exact below 128 and within 1/64 (1.6 %) above, from 0 to 2^40 us. It costs a
 * fixed 18 KiB, adding is O(1) and a percentile walks the buckets once, so millions of
 * samples need no sorting and no memory growth.
 */

#include <stddef.h>
#include <stdint.h>

#define TLSC_HIST_SUB_BITS 7
#define TLSC_HIST_BUCKETS  (128 + 34 * 64)

typedef struct {
    uint64_t counts[TLSC_HIST_BUCKETS];
    uint64_t count, sum, min, max;
} tlsc_hist_t;

/** Empties `h`. */
void tlsc_hist_init(tlsc_hist_t *h);
/** Records one value (microseconds); values above the range land in the last bucket. */
void tlsc_hist_add(tlsc_hist_t *h, uint64_t v);
/** Adds every sample of `src` to `dst`. */
void tlsc_hist_merge(tlsc_hist_t *dst, const tlsc_hist_t *src);
/**
 * The value at quantile `q` (0..1): the highest value of the bucket holding the sample of rank
 * ceil(q * count), clamped to [min, max]. q >= 1 gives the exact max. 0 when empty.
 */
uint64_t tlsc_hist_percentile(const tlsc_hist_t *h, double q);
/** Mean of the recorded values, 0 when empty. */
double tlsc_hist_mean(const tlsc_hist_t *h);
/** The bucket index a value falls in. */
size_t tlsc_hist_index(uint64_t v);
/** The lowest and highest value of bucket `idx`. */
void tlsc_hist_bounds(size_t idx, uint64_t *lo, uint64_t *hi);

#endif
