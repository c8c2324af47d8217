/*
 * The report writers on a hand-made result: the CSV row has as many fields as its header,
 * the JSON carries the same counts as the result, and the server view sums workers per node.
 */
#include "bench.h"
#include "redis_stats.h"
#include "report.h"
#include "test.h"

static size_t count_fields(const char *line)
{
    size_t n = 1;
    int quoted = 0;

    for (; *line && *line != '\n'; line++) {
        if (*line == '"')
            quoted = !quoted;
        else if (*line == ',' && !quoted)
            n++;
    }
    return n;
}

static void make_result(tlsc_bench_options_t *o, tlsc_bench_result_t *r)
{
    char err[256];
    char *argv[] = {(char *)"x",           (char *)"--target", (char *)"127.0.0.1:1", (char *)"--target",
                    (char *)"127.0.0.1:2", (char *)"--label",  (char *)"a,\"b\"",     NULL};

    tlsc_bench_options_init(o);
    ASSERT_EQ(tlsc_bench_options_parse(o, 7, argv, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_bench_result_init(r, 2), 0);
    r->connections = 10;
    r->full = 3;
    r->resumed = 6;
    r->offered = 7;
    r->errors[TLSC_BENCH_ERR_CONNECT] = 1;
    snprintf(r->first_error[TLSC_BENCH_ERR_CONNECT], sizeof(r->first_error[0]), "127.0.0.1:2: connection \"refused\"");
    r->matrix_offered[0] = 4;
    r->matrix_resumed[0] = 4;
    r->matrix_offered[1] = 3;
    r->matrix_resumed[1] = 2;
    r->elapsed_sec = 2.0;
    for (int i = 0; i < 3; i++)
        tlsc_hist_add(r->lat_full, 2000);
    for (int i = 0; i < 6; i++)
        tlsc_hist_add(r->lat_resumed, 500);
    tlsc_bench_result_negotiated(r, "TLSv1.3", "TLS_AES_128_GCM_SHA256", "X25519");
    tlsc_bench_result_negotiated(r, "TLSv1.3", "TLS_AES_128_GCM_SHA256", "X25519");
    ASSERT_EQ(tlsc_bench_result_tick(r, 1000, 1, 0), 0);
    ASSERT_EQ(r->nseconds, 1001);
}

TEST(report_csv_row_matches_header)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    make_result(&o, &r);
    f = open_memstream(&buf, &len);
    tlsc_bench_report_csv(f, &o, &r);
    fclose(f);
    ASSERT_EQ(count_fields(buf), count_fields(tlsc_bench_csv_header()));
    ASSERT(strncmp(buf, "\"a,\"\"b\"\"\",", 10) == 0); /* the label, quoted */
    ASSERT(strstr(buf, ",0.857143,") != NULL);         /* 6 resumed / 7 offered */
    free(buf);
    tlsc_bench_result_free(&r);
}

TEST(report_json_carries_the_counts)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    tlsc_json_t j;
    const char *doc;

    make_result(&o, &r);
    tlsc_json_init(&j, 0);
    tlsc_bench_report_json(&j, &o, &r, NULL);
    doc = tlsc_json_result(&j);
    ASSERT(doc != NULL);
    ASSERT(strstr(doc, "\"handshakes\":{\"full\":3,\"resumed\":6,\"total\":9,") != NULL);
    ASSERT(strstr(doc, "\"offered\":7,\"resumed\":6,") != NULL);
    ASSERT(strstr(doc, "\"rate\":0.857143") != NULL);
    ASSERT(strstr(doc, "{\"issuer\":\"127.0.0.1:1\",\"target\":\"127.0.0.1:2\",\"offered\":3,\"resumed\":2}") != NULL);
    ASSERT(strstr(doc, "\"connect\":\"127.0.0.1:2: connection \\\"refused\\\"\"") != NULL);
    ASSERT(strstr(doc, "\"count\":2}") != NULL); /* negotiated, counted twice */
    ASSERT(strstr(doc, "\"second\":1000,\"full\":0,\"resumed\":1,\"errors\":0") != NULL);
    ASSERT(strstr(doc, "\"server\"") == NULL);
    tlsc_json_free(&j);
    tlsc_bench_result_free(&r);
}

TEST(report_text_and_plot_script_mention_the_numbers)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    make_result(&o, &r);
    f = open_memstream(&buf, &len);
    tlsc_bench_report_text(f, &o, &r, NULL);
    fclose(f);
    ASSERT(strstr(buf, "resumption: 6 resumed / 7 offered = 85.71 %") != NULL);
    ASSERT(strstr(buf, "4/4") != NULL && strstr(buf, "2/3") != NULL);
    ASSERT(strstr(buf, "first connect error: 127.0.0.1:2") != NULL);
    free(buf);

    buf = NULL;
    f = open_memstream(&buf, &len);
    tlsc_bench_plot_script(f, "it's.png", &o, &r);
    fclose(f);
    ASSERT(strstr(buf, "set output 'it''s.png'") != NULL);
    ASSERT(strstr(buf, "$full << EOD\n2.0000 100.000000\nEOD") != NULL);
    free(buf);
    tlsc_bench_result_free(&r);
}

TEST(redis_stats_key_to_node)
{
    char node[32];

    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:stats:node-a:3", "tlscache", node, sizeof(node)), 0);
    ASSERT_STREQ(node, "node-a");
    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:stats:host:1:w2", "tlscache", node, sizeof(node)), 0);
    ASSERT_STREQ(node, "host:1"); /* the worker is after the last colon */
    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:stats:node", "tlscache", node, sizeof(node)), -1);
    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:stats::1", "tlscache", node, sizeof(node)), -1);
    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:stats:n:", "tlscache", node, sizeof(node)), -1);
    ASSERT_EQ(tlsc_bench_rs_node_of("other:stats:n:1", "tlscache", node, sizeof(node)), -1);
    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:sess:n:1", "tlscache", node, sizeof(node)), -1);
    ASSERT_EQ(tlsc_bench_rs_node_of("tlscache:stats:a-very-long-node-name-well-beyond-32-bytes:1", "tlscache", node, sizeof(node)),
              -1);
}

TEST(redis_stats_sum_per_node_and_diff)
{
    tlsc_bench_rs_snapshot_t before = {0}, after = {0}, d = {0};
    int64_t w[TLSC_BENCH_RS_FIELDS] = {0};

    w[TLSC_BENCH_RS_HANDSHAKES_FULL] = 10;
    ASSERT_EQ(tlsc_bench_rs_add(&before, "a", w), 0);
    ASSERT_EQ(tlsc_bench_rs_add(&after, "a", w), 0);
    w[TLSC_BENCH_RS_HANDSHAKES_FULL] = 15;
    w[TLSC_BENCH_RS_LOOKUPS_HIT] = 7;
    ASSERT_EQ(tlsc_bench_rs_add(&after, "a", w), 0); /* a second worker of node a, new since before */
    ASSERT_EQ(tlsc_bench_rs_add(&after, "b", w), 0);
    ASSERT_EQ(after.nnodes, 2);
    ASSERT_EQ(after.nodes[0].workers, 2);
    ASSERT_EQ(tlsc_bench_rs_diff(&before, &after, &d), 0);
    ASSERT_EQ(d.nnodes, 2);
    ASSERT_STREQ(d.nodes[0].node, "a");
    ASSERT_EQ(d.nodes[0].v[TLSC_BENCH_RS_HANDSHAKES_FULL], 15);
    ASSERT_EQ(d.nodes[0].v[TLSC_BENCH_RS_LOOKUPS_HIT], 7);
    ASSERT_EQ(d.nodes[1].v[TLSC_BENCH_RS_HANDSHAKES_FULL], 15);
    ASSERT_STREQ(tlsc_bench_rs_field(TLSC_BENCH_RS_STORES_ERROR), "stores_error");
    tlsc_bench_rs_free(&before);
    tlsc_bench_rs_free(&after);
    tlsc_bench_rs_free(&d);
}

int main(void)
{
    RUN(report_csv_row_matches_header);
    RUN(report_json_carries_the_counts);
    RUN(report_text_and_plot_script_mention_the_numbers);
    RUN(redis_stats_key_to_node);
    RUN(redis_stats_sum_per_node_and_diff);
    TEST_DONE();
}
