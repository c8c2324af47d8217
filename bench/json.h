#ifndef TLSC_BENCH_JSON_H
#define TLSC_BENCH_JSON_H

/*
 * A small streaming JSON writer into a growing buffer. The caller opens and closes objects and
 * arrays in order; inside an object every value has a key, inside an array keys are NULL. The
 * writer places the commas and escapes strings, so its output is valid JSON whatever bytes
 * the strings hold (bytes >= 0x80 are passed through, control bytes become \u00XX).
 */

#include <stddef.h>
#include <stdint.h>

#define TLSC_JSON_MAX_DEPTH 32

typedef struct {
    char *buf;
    size_t len, cap;
    int depth;
    unsigned char need_comma[TLSC_JSON_MAX_DEPTH];
    int pretty;
    int failed; /* out of memory or nesting misuse; the buffer is then incomplete */
} tlsc_json_t;

/** Starts an empty document; `pretty` indents by two spaces per level. */
void tlsc_json_init(tlsc_json_t *j, int pretty);
/** Frees the buffer. */
void tlsc_json_free(tlsc_json_t *j);
/** Opens an object; `key` is NULL at the top level and inside arrays. */
void tlsc_json_object_begin(tlsc_json_t *j, const char *key);
/** Closes the innermost object. */
void tlsc_json_object_end(tlsc_json_t *j);
/** Opens an array. */
void tlsc_json_array_begin(tlsc_json_t *j, const char *key);
/** Closes the innermost array. */
void tlsc_json_array_end(tlsc_json_t *j);
/** Writes a string value; NULL writes null. */
void tlsc_json_string(tlsc_json_t *j, const char *key, const char *value);
/** Writes a signed integer. */
void tlsc_json_int(tlsc_json_t *j, const char *key, int64_t value);
/** Writes an unsigned integer. */
void tlsc_json_uint(tlsc_json_t *j, const char *key, uint64_t value);
/** Writes a number with up to `digits` decimals (trailing zeros kept); NaN and infinities become null. */
void tlsc_json_double(tlsc_json_t *j, const char *key, double value, int digits);
/** Writes true or false. */
void tlsc_json_bool(tlsc_json_t *j, const char *key, int value);
/** Writes null. */
void tlsc_json_null(tlsc_json_t *j, const char *key);
/** Returns the NUL-terminated document, or NULL if the writer failed or nesting is still open. */
const char *tlsc_json_result(const tlsc_json_t *j);

#endif
