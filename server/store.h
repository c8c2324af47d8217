#ifndef TLSC_STORE_H
#define TLSC_STORE_H

/*
 * The session store: where a worker's session records and counters live, seen as hashes
 * under string keys, read and written asynchronously. The session module and the stats writer
 * see only this interface; Redis is one implementation (store_redis.c), a Redis Cluster /
 * Sentinel client or a node-local cache can be others, and unit tests use a fake one.
 *
 * Every request either fails at once (the call returns NULL, the callback never runs, and
 * *status says why) or completes exactly once through its callback, unless cancelled first.
 * Callbacks never run from inside the call that made the request.
 *
 * Statuses: 0, or a negative UV_E* code: UV_ETIMEDOUT (the deadline passed), UV_EAGAIN (the
 * store is overdue, asked to back off), UV_ENOTCONN (not connected), UV_EPROTO (an answer
 * of the wrong shape), UV_ENOBUFS (too much in flight), UV_EINVAL.
 */

#include <stddef.h>

#define TLSC_STORE_MAX_FIELDS 48 /* the most fields one put may carry */

typedef struct tlsc_store_s tlsc_store_t;
typedef struct tlsc_store_req_s tlsc_store_req_t;

/** One field of a hash: a name and a binary-safe value. */
typedef struct {
    const char *name;
    const void *value;
    size_t len;
} tlsc_store_field_t;

/** A condition on a field of a hash: "field equals value". */
typedef struct {
    const char *field;
    const char *value;
} tlsc_store_match_t;

/**
 * A read completed: status 0 with `value` NULL is a miss, status 0 with a value is a hit
 * (`value` is valid only during the call); a negative status is a failure.
 */
typedef void (*tlsc_store_get_cb)(int status, const unsigned char *value, size_t len, void *data);
/** A write completed: 0, or a negative UV_E* code. */
typedef void (*tlsc_store_done_cb)(int status, void *data);
/** A delete completed: status 0 with `existed` non-zero when the key was there, or a negative UV_E* code. */
typedef void (*tlsc_store_del_cb)(int status, int existed, void *data);

typedef struct {
    int (*ready)(const tlsc_store_t *st);
    tlsc_store_req_t *(*get)(tlsc_store_t *st, const char *key, size_t key_len, const char *field,
                             const tlsc_store_match_t *take_if, unsigned timeout_ms, tlsc_store_get_cb cb, void *data, int *status);
    tlsc_store_req_t *(*take)(tlsc_store_t *st, const char *key, size_t key_len, const char *field, unsigned timeout_ms,
                              tlsc_store_get_cb cb, void *data, int *status);
    tlsc_store_req_t *(*put)(tlsc_store_t *st, const char *key, size_t key_len, const tlsc_store_field_t *fields, size_t nfields,
                             unsigned ttl_sec, unsigned timeout_ms, tlsc_store_done_cb cb, void *data, int *status);
    tlsc_store_req_t *(*del)(tlsc_store_t *st, const char *key, size_t key_len, unsigned timeout_ms, tlsc_store_del_cb cb,
                             void *data, int *status);
    void (*cancel)(tlsc_store_t *st, tlsc_store_req_t *req);
    void (*close)(tlsc_store_t *st);
} tlsc_store_ops_t;

/** Every implementation begins its struct with this. */
struct tlsc_store_s {
    const tlsc_store_ops_t *ops;
};

/** Non-zero when the store answers now; requests made while it does not fail at once. */
static inline int tlsc_store_ready(const tlsc_store_t *st)
{
    return st->ops->ready(st);
}

/**
 * Reads `field` of the hash at `key`. With `take_if`, the read is a take: when the hash's
 * take_if->field equals take_if->value, the hash is deleted in the same atomic step, so that at
 * most one reader across the cluster ever gets it (TLS 1.3 single-use tickets); when it does
 * not, nothing is deleted and the answer is a miss (a TLS 1.2 session offered as a TLS 1.3
 * identity must not be voidable by whoever saw its ID).
 */
static inline tlsc_store_req_t *tlsc_store_get(tlsc_store_t *st, const char *key, size_t key_len, const char *field,
                                               const tlsc_store_match_t *take_if, unsigned timeout_ms, tlsc_store_get_cb cb,
                                               void *data, int *status)
{
    return st->ops->get(st, key, key_len, field, take_if, timeout_ms, cb, data, status);
}

/**
 * Takes the hash at `key` unconditionally: reads `field` and deletes the hash in the same atomic
 * step, so that at most one reader across the cluster ever gets it. Cheaper than a get with
 * `take_if` (no condition to check on the server), and only for keys that can hold nothing but
 * a single-use record: a TLS 1.3 ticket under an identity no TLS 1.2 session ID can have.
 * The answer is a get's: a value is a hit, NULL a miss (the key was gone, or had no `field`).
 */
static inline tlsc_store_req_t *tlsc_store_take(tlsc_store_t *st, const char *key, size_t key_len, const char *field,
                                                unsigned timeout_ms, tlsc_store_get_cb cb, void *data, int *status)
{
    return st->ops->take(st, key, key_len, field, timeout_ms, cb, data, status);
}

/** Writes the fields of the hash at `key` and sets its lifetime to `ttl_sec`, atomically. */
static inline tlsc_store_req_t *tlsc_store_put(tlsc_store_t *st, const char *key, size_t key_len, const tlsc_store_field_t *fields,
                                               size_t nfields, unsigned ttl_sec, unsigned timeout_ms, tlsc_store_done_cb cb,
                                               void *data, int *status)
{
    return st->ops->put(st, key, key_len, fields, nfields, ttl_sec, timeout_ms, cb, data, status);
}

/**
 * Deletes the hash at `key`; the callback says whether it existed (a missing key is not an
 * error). Whoever gets `existed` was the one that removed it: a take when the caller already
 * holds the value (a TLS 1.3 ticket found in the node-local cache).
 */
static inline tlsc_store_req_t *tlsc_store_del(tlsc_store_t *st, const char *key, size_t key_len, unsigned timeout_ms,
                                               tlsc_store_del_cb cb, void *data, int *status)
{
    return st->ops->del(st, key, key_len, timeout_ms, cb, data, status);
}

/** Detaches a request's callback: it will not run. */
static inline void tlsc_store_cancel(tlsc_store_t *st, tlsc_store_req_t *req)
{
    st->ops->cancel(st, req);
}

/** Closes the store; pending callbacks do not run. Its memory goes once the loop let go of it. */
static inline void tlsc_store_close(tlsc_store_t *st)
{
    st->ops->close(st);
}

#endif
