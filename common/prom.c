/* This file's one job: write the Prometheus text format (0.0.4) for the admin endpoints. */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void tlsc_prom_family(tlsc_buf_t *b, const char *name, const char *type, const char *help)
{
    tlsc_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void open_labels(tlsc_buf_t *b, const char *name, const char *labels)
{
    if (labels != NULL && labels[0] != '\0')
        tlsc_buf_printf(b, "%s{%s} ", name, labels);
    else
        tlsc_buf_printf(b, "%s ", name);
}

void tlsc_prom_u64(tlsc_buf_t *b, const char *name, const char *labels, uint64_t v)
{
    open_labels(b, name, labels);
    tlsc_buf_printf(b, "%llu\n", (unsigned long long)v);
}

void tlsc_prom_double(tlsc_buf_t *b, const char *name, const char *labels, double v)
{
    open_labels(b, name, labels);
    if (isnan(v))
        tlsc_buf_printf(b, "NaN\n");
    else if (isinf(v))
        tlsc_buf_printf(b, "%s\n", v > 0 ? "+Inf" : "-Inf");
    else
        tlsc_buf_printf(b, "%.9g\n", v);
}

void tlsc_prom_histogram(tlsc_buf_t *b, const char *name, const char *labels, const double *bounds, const uint64_t *counts,
                         size_t n, double sum)
{
    const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
    uint64_t total = 0;

    for (size_t i = 0; i <= n; i++) {
        total += counts[i];
        if (i < n)
            tlsc_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels ? labels : "", sep, bounds[i],
                            (unsigned long long)total);
        else
            tlsc_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels ? labels : "", sep, (unsigned long long)total);
    }
    char suffixed[160];
    snprintf(suffixed, sizeof(suffixed), "%s_sum", name);
    tlsc_prom_double(b, suffixed, labels, sum);
    snprintf(suffixed, sizeof(suffixed), "%s_count", name);
    tlsc_prom_u64(b, suffixed, labels, total);
}

const char *tlsc_prom_escape(char *out, size_t outlen, const char *v)
{
    size_t n = 0;

    for (; *v != '\0' && n + 3 < outlen; v++) {
        if (*v == '\\' || *v == '"') {
            out[n++] = '\\';
            out[n++] = *v;
        } else if (*v == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *v;
        }
    }
    out[n] = '\0';
    return out;
}
