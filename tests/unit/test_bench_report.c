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

/* Writes the text report of `r` into a malloc'd string. */
static char *text_of(const tlsc_bench_options_t *o, const tlsc_bench_result_t *r, const tlsc_bench_server_view_t *sv)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ASSERT(f != NULL);
    tlsc_bench_report_text(f, o, r, sv);
    fclose(f);
    return buf;
}

static char *json_of(const tlsc_bench_options_t *o, const tlsc_bench_result_t *r, const tlsc_bench_server_view_t *sv)
{
    tlsc_json_t j;
    char *doc;

    tlsc_json_init(&j, 0);
    tlsc_bench_report_json(&j, o, r, sv);
    ASSERT(tlsc_json_result(&j) != NULL);
    doc = strdup(tlsc_json_result(&j));
    tlsc_json_free(&j);
    return doc;
}

static char *plot_of(const tlsc_bench_options_t *o, const tlsc_bench_result_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ASSERT(f != NULL);
    tlsc_bench_plot_script(f, "x.png", o, r);
    fclose(f);
    return buf;
}

/* A dead target: 30000 refused connections in one second at full client CPU. */
TEST(report_dead_target_rates_count_only_successful_handshakes)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char err[256], *txt, *doc;
    char *argv[] = {(char *)"x", (char *)"--target", (char *)"127.0.0.1:1", NULL};

    tlsc_bench_options_init(&o);
    ASSERT_EQ(tlsc_bench_options_parse(&o, 3, argv, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_bench_result_init(&r, 1), 0);
    r.connections = 30000;
    r.per_target[0].connections = 30000;
    r.errors[TLSC_BENCH_ERR_CONNECT] = 30000;
    r.per_target[0].errors[TLSC_BENCH_ERR_CONNECT] = 30000;
    snprintf(r.first_error[TLSC_BENCH_ERR_CONNECT], sizeof(r.first_error[0]), "127.0.0.1:1: connection refused");
    r.elapsed_sec = 1.0;
    r.cpu_user_sec = 0.7;
    r.cpu_sys_sec = 0.29;

    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "30000.0") == NULL); /* no rate counts the failures */
    ASSERT(strstr(txt, "  30000 connections in 1.000 s: 0 succeeded (0.0 handshakes/s), 30000 failed, ") != NULL);
    ASSERT(strstr(txt, "client-bound") == NULL);
    free(txt);
    doc = json_of(&o, &r, NULL);
    ASSERT(strstr(doc, "\"connections\":30000,\"connections_succeeded\":0,\"connections_failed\":30000,") != NULL);
    free(doc);

    /* Mixed: 10 handshakes and 2 that failed after it, 5 that never got one. */
    r.connections = 15;
    r.errors[TLSC_BENCH_ERR_CONNECT] = 5;
    r.errors[TLSC_BENCH_ERR_READ] = 2;
    r.errors_after_handshake = 2;
    r.full = 10;
    r.cpu_user_sec = r.cpu_sys_sec = 0.1;
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "  15 connections in 1.000 s: 10 succeeded (10.0 handshakes/s), 5 failed, 2 errored after the handshake") !=
           NULL);
    free(txt);
    tlsc_bench_result_free(&r);
}

TEST(report_certificate_is_not_called_verified_when_every_verification_failed)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char *txt, *doc;

    make_result(&o, &r);
    r.verified = 1; /* --cafile given */
    r.full = r.resumed = r.offered = 0;
    r.connections = 10;
    r.errors[TLSC_BENCH_ERR_CONNECT] = 0;
    r.errors[TLSC_BENCH_ERR_VERIFY] = 10;
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "certificate verified") == NULL);
    ASSERT(strstr(txt, "certificate REJECTED") != NULL);
    free(txt);
    doc = json_of(&o, &r, NULL);
    ASSERT(strstr(doc, "\"certificate\":{\"checked\":true,\"verified\":0,\"rejected\":10}") != NULL);
    free(doc);

    r.full = 6;
    r.connections = 16;
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "certificate verified (--cafile) on 6 handshakes, REJECTED on 10") != NULL);
    free(txt);

    r.errors[TLSC_BENCH_ERR_VERIFY] = 0;
    r.connections = 6;
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "certificate verified (--cafile) on 6 handshakes\n") != NULL);
    free(txt);
    tlsc_bench_result_free(&r);
}

TEST(plot_does_not_draw_the_partial_last_second_as_a_drop)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char *plot;

    make_result(&o, &r);
    tlsc_bench_result_free(&r);
    ASSERT_EQ(tlsc_bench_result_init(&r, 2), 0);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 100; i++)
            ASSERT_EQ(tlsc_bench_result_tick(&r, (size_t)s, 0, 0), 0);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(tlsc_bench_result_tick(&r, 3, 0, 0), 0);
    r.full = 305;
    tlsc_hist_add(r.lat_full, 1500);

    /* 5 handshakes in the last 0.05 s: too short to scale, left out. */
    r.elapsed_sec = 3.05;
    plot = plot_of(&o, &r);
    ASSERT(strstr(plot, "$tl << EOD\n0 100 0 0\n1 100 0 0\n2 100 0 0\nEOD\n") != NULL);
    free(plot);

    /* 80 in the last 0.8 s: drawn at its rate, 100/s. */
    for (int i = 0; i < 75; i++)
        ASSERT_EQ(tlsc_bench_result_tick(&r, 3, 0, 0), 0);
    r.elapsed_sec = 3.8;
    plot = plot_of(&o, &r);
    ASSERT(strstr(plot, "\n3 100 0 0\nEOD\n") != NULL);
    ASSERT(strstr(plot, "no handshake completed") == NULL); /* latencies to draw: gnuplot picks the axis */
    free(plot);

    /* A run shorter than a second keeps its only point, scaled. */
    tlsc_bench_result_free(&r);
    ASSERT_EQ(tlsc_bench_result_init(&r, 2), 0);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(tlsc_bench_result_tick(&r, 0, 1, 0), 0);
    r.elapsed_sec = 0.1;
    plot = plot_of(&o, &r);
    ASSERT(strstr(plot, "$tl << EOD\n0 0 100 0\nEOD\n") != NULL);
    free(plot);
    tlsc_bench_result_free(&r);
}

/* A run where nothing completed (a dead target) still gets its plot: gnuplot fails on an empty log axis. */
TEST(plot_of_a_run_without_handshakes_has_a_latency_axis)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char *plot;

    make_result(&o, &r);
    tlsc_bench_result_free(&r);
    ASSERT_EQ(tlsc_bench_result_init(&r, 2), 0);
    r.connections = 40;
    r.errors[TLSC_BENCH_ERR_CONNECT] = 40;
    ASSERT_EQ(tlsc_bench_result_tick(&r, 0, 0, 1), 0);
    r.elapsed_sec = 1.0;
    plot = plot_of(&o, &r);
    ASSERT(strstr(plot, "set xrange [0.1:100]\nset label 1 'no handshake completed'") != NULL);
    free(plot);
    tlsc_bench_result_free(&r);
}

TEST(server_view_shows_ticket_and_records_bad_counters)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    tlsc_bench_rs_snapshot_t d = {0};
    tlsc_bench_server_view_t sv = {.diff = &d};
    int64_t w[TLSC_BENCH_RS_FIELDS] = {0};
    char *txt, *doc;

    /* The names are the hash fields the workers publish (server/stats.h). */
    ASSERT_STREQ(tlsc_bench_rs_field(TLSC_BENCH_RS_RECORDS_BAD), "records_bad");
    ASSERT_STREQ(tlsc_bench_rs_field(TLSC_BENCH_RS_TICKETS_ISSUED), "tickets_issued");
    ASSERT_STREQ(tlsc_bench_rs_field(TLSC_BENCH_RS_TICKETS_DECRYPTED), "tickets_decrypted");
    ASSERT_STREQ(tlsc_bench_rs_field(TLSC_BENCH_RS_TICKETS_RENEWED), "tickets_renewed");
    ASSERT_STREQ(tlsc_bench_rs_field(TLSC_BENCH_RS_TICKETS_UNKNOWN_KEY), "tickets_unknown_key");

    make_result(&o, &r);
    w[TLSC_BENCH_RS_HANDSHAKES_FULL] = 3;
    w[TLSC_BENCH_RS_HANDSHAKES_RESUMED] = 6;
    w[TLSC_BENCH_RS_RECORDS_BAD] = 41;
    w[TLSC_BENCH_RS_TICKETS_ISSUED] = 42;
    w[TLSC_BENCH_RS_TICKETS_DECRYPTED] = 43;
    w[TLSC_BENCH_RS_TICKETS_RENEWED] = 44;
    w[TLSC_BENCH_RS_TICKETS_UNKNOWN_KEY] = 45;
    ASSERT_EQ(tlsc_bench_rs_add(&d, "node-a", w), 0);
    txt = text_of(&o, &r, &sv);
    /* Column heads, and the values under them (store_err 0, rec_bad 41; the four ticket counters). */
    ASSERT(strstr(txt, " store_err   rec_bad\n") != NULL);
    ASSERT(strstr(txt, "    issued decrypted   renewed unknown_key\n") != NULL);
    ASSERT(strstr(txt, "         0        41\n") != NULL);
    ASSERT(strstr(txt, "        42        43        44          45\n") != NULL);
    ASSERT(strstr(txt, "41 session records in Redis could not be unsealed or decoded") != NULL);
    ASSERT(strstr(txt, "servers counted full 3, resumed 6 (agree)") != NULL);
    free(txt);
    doc = json_of(&o, &r, &sv);
    ASSERT(strstr(doc, "\"records_bad\":41,\"tickets_issued\":42,\"tickets_decrypted\":43,\"tickets_renewed\":44,"
                       "\"tickets_unknown_key\":45}") != NULL);
    free(doc);
    tlsc_bench_rs_free(&d);
    tlsc_bench_result_free(&r);
}

TEST(report_hints_when_an_off_diagonal_cell_never_resumes)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    char *txt, *doc;

    make_result(&o, &r); /* 1 -> 2 resumed 2 of 3: shared, no hint */
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "do not share sessions") == NULL);
    free(txt);

    r.matrix_resumed[1] = 0; /* 127.0.0.1:1's sessions never resumed on 127.0.0.1:2 */
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "targets do not share sessions: check --cluster, --redis-prefix, --keyd") != NULL);
    ASSERT(strstr(txt, "127.0.0.1:1 -> 127.0.0.1:2 (0/3)") != NULL);
    free(txt);
    doc = json_of(&o, &r, NULL);
    ASSERT(strstr(doc, "\"unshared_pairs\":1") != NULL);
    free(doc);

    /* Nothing resumes anywhere, not even on the diagonal: a different hint. */
    r.matrix_resumed[0] = 0;
    r.resumed = 0;
    txt = text_of(&o, &r, NULL);
    ASSERT(strstr(txt, "do not share sessions") == NULL);
    ASSERT(strstr(txt, "hint: no target resumed any session, not even its own") != NULL);
    free(txt);
    tlsc_bench_result_free(&r);
}

int main(void)
{
    RUN(report_csv_row_matches_header);
    RUN(report_json_carries_the_counts);
    RUN(report_text_and_plot_script_mention_the_numbers);
    RUN(redis_stats_key_to_node);
    RUN(redis_stats_sum_per_node_and_diff);
    RUN(report_dead_target_rates_count_only_successful_handshakes);
    RUN(report_certificate_is_not_called_verified_when_every_verification_failed);
    RUN(plot_does_not_draw_the_partial_last_second_as_a_drop);
    RUN(plot_of_a_run_without_handshakes_has_a_latency_axis);
    RUN(server_view_shows_ticket_and_records_bad_counters);
    RUN(report_hints_when_an_off_diagonal_cell_never_resumes);
    TEST_DONE();
}
