#ifndef TLSC_LOG_H
#define TLSC_LOG_H

/*
 * One-line logs on stderr, in one of two formats (--log-format):
 *   text  2026-11-29T11:47:22.123Z tlscache-server[node/w1] pid=4242 worker=1 info: message
 *   json  {"ts":"2026-11-29T11:47:22.123Z","level":"info","tag":"tlscache-server[node/w1]",
 *          "pid":4242,"worker":"1","msg":"message"}   (one object per line)
 * `worker` is the worker's number, or "master" / "daemon" (tlsc_log_set_worker).
 * Control bytes never reach the output raw (text: '?'; JSON: escaped), nor invalid UTF-8 in JSON.
 * Never pass secrets (keys, PSKs, passphrases, session bytes) to these functions.
 */

#include <stddef.h>

typedef enum {
    TLSC_LOG_ERROR = 0,
    TLSC_LOG_WARN = 1,
    TLSC_LOG_INFO = 2,
    TLSC_LOG_DEBUG = 3,
} tlsc_log_level_t;

/** Sets the program tag printed on every line, e.g. "tlscache-server[node-a/w2]". */
void tlsc_log_set_tag(const char *tag);
typedef enum {
    TLSC_LOG_TEXT = 0,
    TLSC_LOG_JSON = 1,
} tlsc_log_format_t;

/** Sets what the worker field says: a worker's number, "master" or "daemon" (default "-"). */
void tlsc_log_set_worker(const char *worker);
/** Sets the line format (the access log reuses it: tlsc_log_format()). */
void tlsc_log_set_format(tlsc_log_format_t format);
/** The line format in use. */
tlsc_log_format_t tlsc_log_format(void);
/** Parses "text|json"; returns 0 or -1 for an unknown name. */
int tlsc_log_parse_format(const char *name, tlsc_log_format_t *out);
/**
 * Appends `in` to `out` (size `outlen`, NUL-terminated) as the inside of a JSON string:
 * quotes, backslashes and control bytes escaped, bytes that are not valid UTF-8 as '?'.
 * Stops before a character that would not fit. Returns the new length of `out`.
 */
size_t tlsc_log_json_escape(char *out, size_t outlen, size_t used, const char *in, size_t inlen);
/** Sets the most verbose level that is printed. */
void tlsc_log_set_level(tlsc_log_level_t level);
/** Parses "error|warn|info|debug"; returns 0 or -1 for an unknown name. */
int tlsc_log_parse_level(const char *name, tlsc_log_level_t *out);
/** Returns non-zero when `level` would be printed. */
int tlsc_log_enabled(tlsc_log_level_t level);
/** Prints one line at `level`. */
void tlsc_log(tlsc_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tlsc_log_error(...) tlsc_log(TLSC_LOG_ERROR, __VA_ARGS__)
#define tlsc_log_warn(...)  tlsc_log(TLSC_LOG_WARN, __VA_ARGS__)
#define tlsc_log_info(...)  tlsc_log(TLSC_LOG_INFO, __VA_ARGS__)
#define tlsc_log_debug(...)                                                                                                        \
    do {                                                                                                                           \
        if (tlsc_log_enabled(TLSC_LOG_DEBUG))                                                                                      \
            tlsc_log(TLSC_LOG_DEBUG, __VA_ARGS__);                                                                                 \
    } while (0)

#endif
