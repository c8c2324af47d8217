/*
 * tlscache-bench: the resumption benchmark. Parses the command line, reads the servers' Redis
 * stats (optional), runs the timed part, reads the stats again and writes the reports.
 * Exit codes as every binary (common/opts.h): 0 at least one handshake succeeded (or --help),
 * 1 a failure at run time (no handshake succeeded, a report not written), 2 bad usage.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bench.h"
#include "log.h"
#include "opts.h"
#include "report.h"

static int write_file(const char *flag, const char *path, const char *data, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(data, f) == EOF || fclose(f) != 0) {
        snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
        return -1;
    }
    return 0;
}

static int append_csv(const tlsc_bench_options_t *o, const tlsc_bench_result_t *r, char *err, size_t errlen)
{
    struct stat st;
    int fresh = stat(o->csv_file, &st) != 0 || st.st_size == 0;
    FILE *f = fopen(o->csv_file, "a");

    if (f == NULL) {
        snprintf(err, errlen, "--csv %s: %s", o->csv_file, strerror(errno));
        return -1;
    }
    if (fresh)
        fputs(tlsc_bench_csv_header(), f);
    tlsc_bench_report_csv(f, o, r);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "--csv %s: %s", o->csv_file, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tlsc_bench_options_t o;
    tlsc_bench_result_t r;
    tlsc_bench_rs_snapshot_t before = {0}, after = {0}, diff = {0};
    tlsc_bench_server_view_t sv = {0};
    char err[512], rs_err[512] = "";
    int rv, have_before = 0, status = 0;

    signal(SIGPIPE, SIG_IGN); /* the stats reader's TLS writes (ctl/redis_sync.h) report a closed Redis, never die of it */

    tlsc_log_set_tag("tlscache-bench");
    tlsc_bench_options_init(&o);
    rv = tlsc_bench_options_parse(&o, argc, argv, err, sizeof(err));
    if (rv == 1)
        return TLSC_EXIT_OK; /* --help or --version, printed */
    if (rv != 0) {
        fprintf(stderr, "tlscache-bench: %s\n", err);
        return TLSC_EXIT_USAGE;
    }
    if (tlsc_bench_result_init(&r, o.ntargets) != 0) {
        fprintf(stderr, "tlscache-bench: out of memory\n");
        return TLSC_EXIT_FAILURE;
    }

    /* The servers' counters are read outside the timed part, before and after. */
    tlsc_ctlredis_options_t ro = {.url = o.redis_url,
                                  .pass_file = o.redis_pass_file,
                                  .env_pass = getenv("TLSCACHE_REDIS_PASS"),
                                  .sentinel_pass_file = o.redis_sentinel_pass_file,
                                  .env_sentinel_pass = getenv("TLSCACHE_REDIS_SENTINEL_PASS"),
                                  .sentinel_user = o.redis_sentinel_user,
                                  .ca_file = o.redis_ca_file,
                                  .cert_file = o.redis_cert_file,
                                  .key_file = o.redis_key_file,
                                  .timeout_ms = 2000};
    if (o.redis_url != NULL) {
        if (tlsc_bench_rs_read(&ro, o.redis_prefix, &before, rs_err, sizeof(rs_err)) == 0)
            have_before = 1;
        else
            tlsc_log_warn("%s", rs_err);
    }

    if ((rv = tlsc_bench_run(&o, &r, err, sizeof(err))) != 0) {
        fprintf(stderr, "tlscache-bench: %s\n", err);
        tlsc_bench_rs_free(&before);
        tlsc_bench_result_free(&r);
        return TLSC_EXIT_FAILURE;
    }

    if (have_before) {
        /* Workers publish about once a second: let the last second of the run reach Redis. */
        usleep(o.redis_settle_ms * 1000u);
        if (tlsc_bench_rs_read(&ro, o.redis_prefix, &after, rs_err, sizeof(rs_err)) == 0 &&
            tlsc_bench_rs_diff(&before, &after, &diff) == 0)
            sv.diff = &diff;
        else
            tlsc_log_warn("%s", rs_err);
    }
    if (o.redis_url != NULL && sv.diff == NULL)
        sv.error = rs_err[0] ? rs_err : "could not read the stats";

    if (!o.quiet)
        tlsc_bench_report_text(stdout, &o, &r, &sv);
    fflush(stdout);

    if (o.json_file != NULL) {
        tlsc_json_t j;
        const char *doc;

        tlsc_json_init(&j, 1);
        tlsc_bench_report_json(&j, &o, &r, &sv);
        if ((doc = tlsc_json_result(&j)) == NULL) {
            fprintf(stderr, "tlscache-bench: --json %s: could not build the document\n", o.json_file);
            status = TLSC_EXIT_FAILURE;
        } else if (write_file("--json", o.json_file, doc, err, sizeof(err)) != 0) {
            fprintf(stderr, "tlscache-bench: %s\n", err);
            status = TLSC_EXIT_FAILURE;
        }
        tlsc_json_free(&j);
    }
    if (o.csv_file != NULL && append_csv(&o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-bench: %s\n", err);
        status = TLSC_EXIT_FAILURE;
    }
    if (o.plot_file != NULL && tlsc_bench_plot(o.plot_file, &o, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-bench: %s\n", err);
        status = TLSC_EXIT_FAILURE;
    }
    if (status == 0 && r.full + r.resumed == 0)
        status = TLSC_EXIT_FAILURE; /* nothing was measured */

    tlsc_bench_rs_free(&before);
    tlsc_bench_rs_free(&after);
    tlsc_bench_rs_free(&diff);
    tlsc_bench_result_free(&r);
    return status;
}
