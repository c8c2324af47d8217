/* This file's one job: a growable, capped text buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tlsc_buf_init(tlsc_buf_t *b, size_t max)
{
    *b = (tlsc_buf_t){.max = max};
}

/* Room for `more` bytes plus a NUL. 0 = ok. */
static int reserve(tlsc_buf_t *b, size_t more)
{
    size_t want = b->len + more + 1, cap = b->cap ? b->cap : 4096;
    char *p;

    if (b->failed || want > b->max) {
        b->failed = 1;
        return -1;
    }
    if (want <= b->cap)
        return 0;
    while (cap < want)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    if ((p = realloc(b->data, cap)) == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void tlsc_buf_append(tlsc_buf_t *b, const char *s, size_t len)
{
    if (reserve(b, len) != 0)
        return;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void tlsc_buf_printf(tlsc_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) != 0) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tlsc_buf_free(tlsc_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
