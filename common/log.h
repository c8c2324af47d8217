#ifndef TLSC_LOG_H
#define TLSC_LOG_H

/*
 * One-line logs on stderr: "2026-11-29T11:47:22.123Z tlscache-server[node/w1] info: message".
 * Never pass secrets (keys, PSKs, passphrases, session bytes) to these functions.
 */

typedef enum {
    TLSC_LOG_ERROR = 0,
    TLSC_LOG_WARN = 1,
    TLSC_LOG_INFO = 2,
    TLSC_LOG_DEBUG = 3,
} tlsc_log_level_t;

/** Sets the program tag printed on every line, e.g. "tlscache-server[node-a/w2]". */
void tlsc_log_set_tag(const char *tag);
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
