#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tlsc_json_init(tlsc_json_t *j, int pretty)
{
    memset(j, 0, sizeof(*j));
    j->pretty = pretty;
}

void tlsc_json_free(tlsc_json_t *j)
{
    free(j->buf);
    j->buf = NULL;
    j->len = j->cap = 0;
}

static void put(tlsc_json_t *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        char *p;

        while (j->len + n + 1 > cap)
            cap *= 2;
        if ((p = realloc(j->buf, cap)) == NULL) {
            j->failed = 1;
            return;
        }
        j->buf = p;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(tlsc_json_t *j, const char *s)
{
    put(j, s, strlen(s));
}

static void putf(tlsc_json_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(tlsc_json_t *j, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        j->failed = 1;
        return;
    }
    put(j, tmp, (size_t)n);
}

static void put_escaped(tlsc_json_t *j, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    put(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            puts_(j, "\\\"");
            break;
        case '\\':
            puts_(j, "\\\\");
            break;
        case '\n':
            puts_(j, "\\n");
            break;
        case '\r':
            puts_(j, "\\r");
            break;
        case '\t':
            puts_(j, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
                put(j, u, sizeof(u));
            } else {
                put(j, (const char *)p, 1);
            }
        }
    }
    put(j, "\"", 1);
}

static void newline(tlsc_json_t *j)
{
    if (!j->pretty)
        return;
    put(j, "\n", 1);
    for (int i = 0; i < j->depth; i++)
        put(j, "  ", 2);
}

/* Writes the comma, the indentation and the key that come before any value. */
static void prefix(tlsc_json_t *j, const char *key)
{
    if (j->depth > 0) {
        if (j->need_comma[j->depth - 1])
            put(j, ",", 1);
        j->need_comma[j->depth - 1] = 1;
        newline(j);
    } else if (j->len > 0) {
        j->failed = 1; /* a second top-level value */
    }
    if (key != NULL) {
        put_escaped(j, key);
        put(j, j->pretty ? ": " : ":", j->pretty ? 2 : 1);
    }
}

static void open_(tlsc_json_t *j, const char *key, const char *bracket)
{
    prefix(j, key);
    puts_(j, bracket);
    if (j->depth >= TLSC_JSON_MAX_DEPTH) {
        j->failed = 1;
        return;
    }
    j->need_comma[j->depth++] = 0;
}

static void close_(tlsc_json_t *j, const char *bracket)
{
    int had_items;

    if (j->depth == 0) {
        j->failed = 1;
        return;
    }
    had_items = j->need_comma[--j->depth];
    if (had_items)
        newline(j);
    puts_(j, bracket);
    if (j->depth == 0 && j->pretty)
        put(j, "\n", 1);
}

void tlsc_json_object_begin(tlsc_json_t *j, const char *key)
{
    open_(j, key, "{");
}

void tlsc_json_object_end(tlsc_json_t *j)
{
    close_(j, "}");
}

void tlsc_json_array_begin(tlsc_json_t *j, const char *key)
{
    open_(j, key, "[");
}

void tlsc_json_array_end(tlsc_json_t *j)
{
    close_(j, "]");
}

void tlsc_json_string(tlsc_json_t *j, const char *key, const char *value)
{
    prefix(j, key);
    if (value == NULL)
        puts_(j, "null");
    else
        put_escaped(j, value);
}

void tlsc_json_int(tlsc_json_t *j, const char *key, int64_t value)
{
    prefix(j, key);
    putf(j, "%lld", (long long)value);
}

void tlsc_json_uint(tlsc_json_t *j, const char *key, uint64_t value)
{
    prefix(j, key);
    putf(j, "%llu", (unsigned long long)value);
}

void tlsc_json_double(tlsc_json_t *j, const char *key, double value, int digits)
{
    prefix(j, key);
    if (isnan(value) || isinf(value)) {
        puts_(j, "null");
        return;
    }
    if (digits < 0)
        digits = 0;
    if (digits > 9)
        digits = 9;
    if (fabs(value) >= 1e15) {
        putf(j, "%.17g", value);
        return;
    }
    putf(j, "%.*f", digits, value);
}

void tlsc_json_bool(tlsc_json_t *j, const char *key, int value)
{
    prefix(j, key);
    puts_(j, value ? "true" : "false");
}

void tlsc_json_null(tlsc_json_t *j, const char *key)
{
    prefix(j, key);
    puts_(j, "null");
}

const char *tlsc_json_result(const tlsc_json_t *j)
{
    if (j->failed || j->depth != 0 || j->buf == NULL)
        return NULL;
    return j->buf;
}
