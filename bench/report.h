#ifndef TLSC_BENCH_REPORT_H
#define TLSC_BENCH_REPORT_H

/*
 * Everything a run prints or writes: the text report, the JSON document, the CSV summary row
 * and the gnuplot PNG. All read a finished tlsc_bench_result_t; none touches the network.
 */

#include <stdio.h>

#include "bench.h"
#include "json.h"
#include "redis_stats.h"

/** The servers' counters for the report: a difference, or the reason it is missing. */
typedef struct {
    const tlsc_bench_rs_snapshot_t *diff; /* NULL when --redis was not given or failed */
    const char *error;                    /* why it failed, or NULL */
} tlsc_bench_server_view_t;

/** Writes the human-readable report. */
void tlsc_bench_report_text(FILE *out, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r,
                            const tlsc_bench_server_view_t *sv);
/** Writes the whole report as one JSON object into `j`. */
void tlsc_bench_report_json(tlsc_json_t *j, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r,
                            const tlsc_bench_server_view_t *sv);
/** The CSV header line (with newline). */
const char *tlsc_bench_csv_header(void);
/** Writes one CSV summary row (with newline). */
void tlsc_bench_report_csv(FILE *out, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r);
/** Writes a gnuplot script that draws the run into `png`. */
void tlsc_bench_plot_script(FILE *out, const char *png, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r);
/** Runs gnuplot on that script; returns 0 or -1 with a message in `err`. */
int tlsc_bench_plot(const char *png, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r, char *err, size_t errlen);

#endif
