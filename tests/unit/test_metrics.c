/* The pure parts of the admin endpoint: JSON log escaping, the Prometheus writer, the capped buffer, the metrics fold. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "prom.h"
#include "test.h"

TEST(json_escape_quotes_controls_and_bad_utf8)
{
    char out[128];
    const char in[] = "a\"b\\c\n\x01 \xc3\xa9 \xff \xe2\x82";
    size_t n = tlsc_log_json_escape(out, sizeof(out), 0, in, sizeof(in) - 1);

    ASSERT_STREQ(out, "a\\\"b\\\\c\\u000a\\u0001 \xc3\xa9 ? ??");
    ASSERT_EQ(n, strlen(out));
}

TEST(json_escape_stops_before_a_character_that_does_not_fit)
{
    char out[8];
    size_t n = tlsc_log_json_escape(out, sizeof(out), 0, "abc\"\"\"", 6);

    ASSERT_STREQ(out, "abc\\\"\\\""); /* 7 bytes and the NUL; the third quote would not fit whole */
    ASSERT_EQ(n, 7);
}

TEST(log_format_names)
{
    tlsc_log_format_t f;

    ASSERT_EQ(tlsc_log_parse_format("json", &f), 0);
    ASSERT_EQ(f, TLSC_LOG_JSON);
    ASSERT_EQ(tlsc_log_parse_format("text", &f), 0);
    ASSERT_EQ(f, TLSC_LOG_TEXT);
    ASSERT_EQ(tlsc_log_parse_format("JSON ", &f), -1);
}

TEST(prom_histogram_is_cumulative_and_count_is_inf)
{
    const double bounds[] = {0.001, 0.01};
    const uint64_t counts[] = {2, 0, 3};
    tlsc_buf_t b;

    tlsc_buf_init(&b, 4096);
    tlsc_prom_histogram(&b, "x_seconds", "worker=\"1\"", bounds, counts, 2, 0.5);
    ASSERT(!b.failed);
    ASSERT_STREQ(b.data, "x_seconds_bucket{worker=\"1\",le=\"0.001\"} 2\n"
                         "x_seconds_bucket{worker=\"1\",le=\"0.01\"} 2\n"
                         "x_seconds_bucket{worker=\"1\",le=\"+Inf\"} 5\n"
                         "x_seconds_sum{worker=\"1\"} 0.5\n"
                         "x_seconds_count{worker=\"1\"} 5\n");
    tlsc_buf_free(&b);
}

TEST(prom_label_escape)
{
    char out[32];

    ASSERT_STREQ(tlsc_prom_escape(out, sizeof(out), "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(buf_refuses_to_grow_past_its_cap)
{
    tlsc_buf_t b;

    tlsc_buf_init(&b, 16);
    tlsc_buf_printf(&b, "%s", "0123456789");
    ASSERT(!b.failed);
    tlsc_buf_printf(&b, "%s", "0123456789");
    ASSERT(b.failed);
    ASSERT_EQ(b.len, 10);
    tlsc_buf_free(&b);
}

TEST(hist_buckets_by_bound)
{
    tlsc_hist_t h;

    memset(&h, 0, sizeof(h));
    tlsc_hist_observe(&h, 100);      /* 100 µs: the first bucket (le 0.0001) */
    tlsc_hist_observe(&h, 101);      /* just above: the second */
    tlsc_hist_observe(&h, 20000000); /* 20 s: past every bound */
    ASSERT_EQ(h.counts[0], 1);
    ASSERT_EQ(h.counts[1], 1);
    ASSERT_EQ(h.counts[TLSC_HIST_N], 1);
    ASSERT_EQ(h.sum_us, 20000201);
}

/* A slot's counters never go backwards: an ended worker's are folded into the slot's total. */
TEST(metrics_fold_ended_workers_into_their_slot)
{
    tlsc_metrics_t *m = tlsc_metrics_new(2);
    tlsc_stats_t *a, *b, *c, view;

    ASSERT(m != NULL);
    ASSERT((a = tlsc_metrics_claim(m, 1)) != NULL);
    tlsc_metrics_bind(m, a, 100);
    tlsc_stat_add(&a->handshakes_full, 5);
    tlsc_stat_set(&a->g.conns, 3);
    ASSERT((b = tlsc_metrics_claim(m, 2)) != NULL);
    tlsc_metrics_bind(m, b, 200);
    tlsc_stat_add(&b->handshakes_full, 7);

    /* Slot 1's worker is replaced (a reload): the new one counts apart, the old one drains. */
    ASSERT((c = tlsc_metrics_claim(m, 1)) != NULL);
    ASSERT(c != a);
    tlsc_metrics_bind(m, c, 101);
    tlsc_stat_add(&c->handshakes_full, 1);
    tlsc_stat_set(&c->g.conns, 1);
    tlsc_metrics_slot(m, 1, 101, &view);
    ASSERT_EQ(view.handshakes_full, 6);
    ASSERT_EQ(view.g.conns, 4); /* the draining worker's connections are still open */

    ASSERT_EQ(tlsc_metrics_release(m, 100), 1);
    ASSERT_EQ(tlsc_metrics_release(m, 100), 0);
    tlsc_metrics_slot(m, 1, 101, &view);
    ASSERT_EQ(view.handshakes_full, 6);
    ASSERT_EQ(view.g.conns, 1);
    tlsc_metrics_slot(m, 2, 200, &view);
    ASSERT_EQ(view.handshakes_full, 7);

    /* A fork that failed gives its cell back. */
    ASSERT((a = tlsc_metrics_claim(m, 2)) != NULL);
    tlsc_metrics_bind(m, a, -1);
    tlsc_metrics_slot(m, 2, 200, &view);
    ASSERT_EQ(view.handshakes_full, 7);
    ASSERT(tlsc_metrics_claim(m, 3) == NULL); /* no such slot */
    tlsc_metrics_free(m);
}

int main(void)
{
    RUN(json_escape_quotes_controls_and_bad_utf8);
    RUN(json_escape_stops_before_a_character_that_does_not_fit);
    RUN(log_format_names);
    RUN(prom_histogram_is_cumulative_and_count_is_inf);
    RUN(prom_label_escape);
    RUN(buf_refuses_to_grow_past_its_cap);
    RUN(hist_buckets_by_bound);
    RUN(metrics_fold_ended_workers_into_their_slot);
    TEST_DONE();
}
