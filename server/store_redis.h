#ifndef TLSC_STORE_REDIS_H
#define TLSC_STORE_REDIS_H

/*
 * The session store on one Redis (server/redis.c): a hash per key, HGET for a read,
 * MULTI HGET DEL EXEC for a read that takes, MULTI HSET EXPIRE EXEC for a write, DEL.
 * Every command touches a single key, so each request stays within one Redis Cluster slot.
 */

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "redis.h"
#include "store.h"

/** Opens a Redis link on `loop` and wraps it as a store. Returns 0 or a negative UV_E* code with `err`. */
int tlsc_store_redis_new(uv_loop_t *loop, const tlsc_redis_options_t *o, tlsc_store_t **out, char *err, size_t errlen);

/** How many times a store made by tlsc_store_redis_new connected to Redis (first connect included). */
uint64_t tlsc_store_redis_connects(const tlsc_store_t *st);

#endif
