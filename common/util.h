#ifndef TLSC_UTIL_H
#define TLSC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/** Writes 2*len lowercase hex digits and a NUL to `out` (size >= 2*len+1). */
void tlsc_hex_encode(char *out, const unsigned char *in, size_t len);
/** Decodes exactly `hexlen` hex digits into `out` (cap bytes); returns bytes written or -1. */
int tlsc_hex_decode(unsigned char *out, size_t cap, const char *hex, size_t hexlen);
/** The value of one hex digit (either case), or -1. */
int tlsc_hex_digit(char c);
/** Milliseconds from a monotonic clock. */
uint64_t tlsc_now_ms(void);
/** Seconds since the epoch, wall clock. */
uint64_t tlsc_wall_sec(void);
/**
 * Reads a whole small file (at most `max` bytes) into a new NUL-terminated buffer the caller
 * frees with tlsc_secure_free(). Returns 0 or a negative errno-style code (-EFBIG if larger).
 */
int tlsc_read_file(const char *path, size_t max, char **out, size_t *len);
/**
 * Checks that a secret file (a cluster secret, a passphrase) is a regular file that neither
 * its group nor others may access, as ssh does with private keys. Returns 0, or -EPERM with
 * one line in `err` naming the file, its mode and the `chmod 600 FILE` to run (or another
 * negative errno-style code with the reason).
 */
int tlsc_secret_file_check(const char *path, char *err, size_t errlen);
/**
 * tlsc_read_file for a secret: refuses a file group or others may access (the same check and
 * message as tlsc_secret_file_check, made on the opened file so it cannot be swapped in
 * between). `err` gets one line naming the file.
 */
int tlsc_read_secret_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);
/** Wipes `len` bytes then frees `p` (NULL is fine). */
void tlsc_secure_free(void *p, size_t len);
/**
 * Memory for secrets (keys, PSKs): `len` zeroed bytes in their own anonymous mapping, locked
 * against swap (best effort: RLIMIT_MEMLOCK may refuse, and a debug line says so) and marked
 * MADV_DONTDUMP so a core dump leaves them out. NULL when the mapping fails. Give it back with
 * tlsc_locked_free(), which wipes it first.
 */
void *tlsc_locked_alloc(size_t len);
/** Wipes, unlocks and unmaps what tlsc_locked_alloc(len) returned (NULL is fine). */
void tlsc_locked_free(void *p, size_t len);
/** OpenSSL's first queued error as text in `out`, or `fallback` when none is queued; the queue is cleared. Returns `out`. */
const char *tlsc_openssl_reason(char *out, size_t outlen, const char *fallback);
/** Strips trailing CR/LF/space from a NUL-terminated buffer; returns the new length. */
size_t tlsc_rstrip(char *s, size_t len);

#endif
