#ifndef TLSC_PROM_H
#define TLSC_PROM_H

/*
 * Prometheus text exposition format 0.0.4, written into a tlsc_buf_t. Labels are passed as one
 * preformatted string (`worker="1",outcome="full"`, or "" for none) whose values went through
 * tlsc_prom_escape; the writer adds the braces. Families are named tlscache_... by the callers.
 */

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TLSC_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void tlsc_prom_family(tlsc_buf_t *b, const char *name, const char *type, const char *help);
/** One sample of an integer value. */
void tlsc_prom_u64(tlsc_buf_t *b, const char *name, const char *labels, uint64_t v);
/** One sample of a floating-point value (written with %.9g; NaN and infinities as Prometheus spells them). */
void tlsc_prom_double(tlsc_buf_t *b, const char *name, const char *labels, double v);
/**
 * One histogram series: `counts` holds n + 1 non-cumulative bucket counts (the last one past
 * every bound), `bounds` the n upper bounds in the family's unit. Writes the cumulative
 * name_bucket{le=...} series, +Inf, name_sum and name_count (+Inf's value, so they agree).
 */
void tlsc_prom_histogram(tlsc_buf_t *b, const char *name, const char *labels, const double *bounds, const uint64_t *counts,
                         size_t n, double sum);
/** Escapes a label value (backslash, double quote, newline) into `out`; cuts it to fit. Returns `out`. */
const char *tlsc_prom_escape(char *out, size_t outlen, const char *v);

#endif
