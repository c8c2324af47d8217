#ifndef TLSC_BUF_H
#define TLSC_BUF_H

/*
 * A growable text buffer with a hard cap, for replies built in pieces (a metrics scrape).
 * Past the cap (or out of memory) it stops growing and remembers the failure: the caller
 * checks `failed` once at the end instead of after every append.
 */

#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap, max;
    int failed;
} tlsc_buf_t;

/** An empty buffer that may grow to `max` bytes. */
void tlsc_buf_init(tlsc_buf_t *b, size_t max);
/** Appends formatted text; on overflow marks the buffer failed. */
void tlsc_buf_printf(tlsc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends `len` bytes. */
void tlsc_buf_append(tlsc_buf_t *b, const char *s, size_t len);
/** Frees the data (the struct may be reused after tlsc_buf_init). */
void tlsc_buf_free(tlsc_buf_t *b);

#endif
