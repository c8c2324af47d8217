#include "hist.h"

#include <string.h>

/*
 * Bucket layout: values 0..127 have a bucket each. Above, a value whose highest set bit is m
 * (m >= 7) is shifted right by s = m - 6 so its top 7 bits are 64..127; each shift s owns 64
 * buckets after the first 128.
 */

void tlsc_hist_init(tlsc_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

size_t tlsc_hist_index(uint64_t v)
{
    unsigned m, s;
    size_t idx;

    if (v < 128)
        return (size_t)v;
    m = 63u - (unsigned)__builtin_clzll(v);
    s = m - 6;
    idx = 128 + (size_t)(s - 1) * 64 + (size_t)((v >> s) - 64);
    return idx < TLSC_HIST_BUCKETS ? idx : TLSC_HIST_BUCKETS - 1;
}

void tlsc_hist_bounds(size_t idx, uint64_t *lo, uint64_t *hi)
{
    uint64_t s, top;

    if (idx < 128) {
        *lo = *hi = idx;
        return;
    }
    s = (idx - 128) / 64 + 1;
    top = (idx - 128) % 64 + 64;
    *lo = top << s;
    *hi = ((top + 1) << s) - 1;
}

void tlsc_hist_add(tlsc_hist_t *h, uint64_t v)
{
    h->counts[tlsc_hist_index(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
}

void tlsc_hist_merge(tlsc_hist_t *dst, const tlsc_hist_t *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < TLSC_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
}

uint64_t tlsc_hist_percentile(const tlsc_hist_t *h, double q)
{
    uint64_t rank, seen = 0, lo, hi;

    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    if (q < 0)
        q = 0;
    /* The rank is computed in floating point and rounded up; rank 0 means the minimum. */
    rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank == 0)
        return h->min;
    for (size_t i = 0; i < TLSC_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            tlsc_hist_bounds(i, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            if (hi < h->min)
                hi = h->min;
            return hi;
        }
    }
    return h->max;
}

double tlsc_hist_mean(const tlsc_hist_t *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
