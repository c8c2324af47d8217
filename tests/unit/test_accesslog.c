#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "accesslog.h"
#include "test.h"

/*
 * Access-log lines: hostile values stay inside their field (JSON escaped, text one token), a
 * cut line still ends well; the writer never holds more than its buffer, counts what it drops,
 * and what it keeps reaches the file whole.
 */

static tlsc_accesslog_entry_t entry(const char *alpn)
{
    static struct sockaddr_in sa;
    tlsc_accesslog_entry_t e = {0};

    sa.sin_family = AF_INET;
    sa.sin_port = htons(4433);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    e.client = (const struct sockaddr *)&sa;
    e.sni = "a.example";
    e.alpn = (const unsigned char *)alpn;
    e.alpn_len = alpn != NULL ? strlen(alpn) : 0;
    e.protocol = "TLSv1.3";
    e.cipher = "TLS_AES_128_GCM_SHA256";
    e.session = "ticket";
    e.handshake_us = 1234;
    e.bytes_in = 10;
    e.bytes_out = 20;
    e.duration_us = 5000;
    e.backend = "127.0.0.1:8080";
    e.close = "done";
    e.end = "client gone";
    return e;
}

static size_t count(const char *s, char c)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == c;
    return n;
}

TEST(json_escapes_hostile_values)
{
    tlsc_accesslog_entry_t e = entry("h\"2\\\n\xff");
    char line[TLSC_ACCESSLOG_LINE_MAX];
    size_t n = tlsc_accesslog_format(TLSC_LOG_JSON, &e, line, sizeof(line));

    ASSERT_EQ(n, strlen(line));
    ASSERT_EQ(count(line, '\n'), 1);
    ASSERT(line[0] == '{' && line[n - 2] == '}' && line[n - 1] == '\n');
    ASSERT(strstr(line, "\"alpn\":\"h\\\"2\\\\\\u000a?\"") != NULL);
    ASSERT(strstr(line, "\"client\":\"127.0.0.1:4433\"") != NULL);
    ASSERT(strstr(line, "\"resumed\":true,\"session\":\"ticket\",\"handshake_ms\":1.234") != NULL);
    ASSERT(strstr(line, "\"bytes_in\":10,\"bytes_out\":20,\"duration_ms\":5.000") != NULL);
    ASSERT(strstr(line, "\"end\":\"client gone\"}") != NULL);
}

TEST(text_keeps_each_value_one_token)
{
    tlsc_accesslog_entry_t e = entry("a b\"c\n=");
    char line[TLSC_ACCESSLOG_LINE_MAX];

    tlsc_accesslog_format(TLSC_LOG_TEXT, &e, line, sizeof(line));
    ASSERT_EQ(count(line, '\n'), 1);
    ASSERT(strstr(line, " alpn=a_b?c?? ") != NULL);
    ASSERT(strstr(line, " resumed=yes session=ticket ") != NULL);
    ASSERT(strstr(line, " end=client_gone\n") != NULL);
    e.session = e.protocol = NULL; /* no handshake finished */
    e.backend = e.end = NULL;
    tlsc_accesslog_format(TLSC_LOG_TEXT, &e, line, sizeof(line));
    ASSERT(strstr(line, " protocol=- cipher=- resumed=- session=- handshake_ms=- ") != NULL);
    ASSERT(strstr(line, " backend=- close=done end=-\n") != NULL);
}

TEST(a_cut_line_still_ends_well)
{
    tlsc_accesslog_entry_t e = entry("h2");
    char line[80];
    size_t n = tlsc_accesslog_format(TLSC_LOG_JSON, &e, line, sizeof(line));

    ASSERT(n < sizeof(line));
    ASSERT_EQ(count(line, '\n'), 1);
    ASSERT(line[n - 2] == '}' && line[n - 1] == '\n');
}

TEST(a_full_buffer_drops_and_counts_and_the_rest_is_written_whole)
{
    char path[] = "/tmp/tlsc-accesslog-XXXXXX", err[256], buf[512];
    tlsc_accesslog_entry_t e = entry("http/1.1");
    tlsc_accesslog_t *al = NULL;
    uint64_t dropped = 0;
    size_t lines = 0, total = 3000;
    uv_loop_t loop;
    FILE *f;
    int fd = mkstemp(path);

    ASSERT(fd >= 0);
    close(fd);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT_EQ(tlsc_accesslog_open(&loop, path, TLSC_LOG_JSON, &dropped, &al, err, sizeof(err)), 0);
    /* The loop does not run: one write is in flight and the buffer fills up behind it. */
    for (size_t i = 0; i < total; i++)
        tlsc_accesslog_write(al, &e);
    ASSERT(dropped > 0);
    ASSERT(dropped < total);
    uv_run(&loop, UV_RUN_DEFAULT); /* every write done */
    ASSERT(!tlsc_accesslog_busy(al));
    tlsc_accesslog_free(al);
    ASSERT_EQ(uv_loop_close(&loop), 0);
    ASSERT((f = fopen(path, "r")) != NULL);
    while (fgets(buf, sizeof(buf), f) != NULL) {
        ASSERT(buf[0] == '{' && strstr(buf, "}\n") != NULL); /* whole lines only */
        lines++;
    }
    fclose(f);
    unlink(path);
    ASSERT_EQ(lines + dropped, total);
}

TEST(an_unopenable_path_is_an_error_with_a_message)
{
    tlsc_accesslog_t *al = NULL;
    uint64_t dropped = 0;
    char err[256] = "";
    uv_loop_t loop;

    ASSERT_EQ(uv_loop_init(&loop), 0);
    ASSERT(tlsc_accesslog_open(&loop, "/nonexistent-dir/x.log", TLSC_LOG_TEXT, &dropped, &al, err, sizeof(err)) < 0);
    ASSERT(al == NULL);
    ASSERT(strstr(err, "/nonexistent-dir/x.log") != NULL);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    RUN(json_escapes_hostile_values);
    RUN(text_keeps_each_value_one_token);
    RUN(a_cut_line_still_ends_well);
    RUN(a_full_buffer_drops_and_counts_and_the_rest_is_written_whole);
    RUN(an_unopenable_path_is_an_error_with_a_message);
    TEST_DONE();
}
