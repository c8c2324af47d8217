/*
 * The store on Redis (server/store_redis.c): how the unconditional take (MULTI HGET DEL EXEC)
 * judges EXEC's answer, fed as RESP bytes through the bounded reader the links use. A hostile
 * or broken Redis gets a protocol error, never a hit it did not give.
 */
#include <string.h>

#include "redis.h"
#include "store_redis.h"
#include "test.h"

/* Parses one whole RESP reply from `resp` and judges it as a take's EXEC answer. */
static int judge(const char *resp, const char **value, size_t *len)
{
    redisReader *rd = tlsc_redis_reader_new();
    void *reply = NULL;
    int rc;

    ASSERT(rd != NULL);
    ASSERT_EQ(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    ASSERT_EQ(redisReaderGetReply(rd, &reply), REDIS_OK);
    ASSERT(reply != NULL);
    *value = NULL;
    *len = 0;
    rc = tlsc_store_redis_take_answer(reply, value, len);
    if (rc == 1) { /* copy out before the reply goes */
        static char keep[64];
        ASSERT(*len < sizeof(keep));
        memcpy(keep, *value, *len);
        *value = keep;
    }
    freeReplyObject(reply);
    tlsc_redis_reader_free(rd);
    return rc;
}

TEST(a_taken_record_is_a_hit_and_a_missing_one_a_miss)
{
    const char *v;
    size_t n;

    ASSERT_EQ(judge("*2\r\n$4\r\nS\r\n\xff\r\n:1\r\n", &v, &n), 1); /* binary-safe */
    ASSERT_EQ(n, 4);
    ASSERT_EQ(memcmp(v, "S\r\n\xff", 4), 0);
    ASSERT_EQ(judge("*2\r\n$-1\r\n:0\r\n", &v, &n), 0); /* no such key */
    ASSERT_EQ(judge("*2\r\n$-1\r\n:1\r\n", &v, &n), 0); /* a hash without the field: removed, a miss */
    ASSERT(v == NULL);
}

TEST(every_other_shape_is_a_protocol_error)
{
    static const char *const bad[] = {
        "*-1\r\n",                              /* EXEC aborted (a WATCH we never send) */
        "-EXECABORT Transaction discarded\r\n", /* refused */
        "*0\r\n",                               /* too few */
        "*1\r\n$3\r\nabc\r\n",                  /* too few */
        "*3\r\n$3\r\nabc\r\n:1\r\n:1\r\n",      /* too many */
        "*2\r\n$3\r\nabc\r\n:0\r\n",            /* a value DEL did not remove: not a take */
        "*2\r\n$3\r\nabc\r\n:2\r\n",            /* DEL of one key removed two */
        "*2\r\n$3\r\nabc\r\n:-1\r\n",           /* a negative count */
        "*2\r\n$3\r\nabc\r\n$1\r\n1\r\n",       /* DEL's count as a string */
        "*2\r\n-WRONGTYPE Operation\r\n:1\r\n", /* HGET on something not a hash */
        "*2\r\n:5\r\n:1\r\n",                   /* an integer for the value */
        "*2\r\n*1\r\n$3\r\nabc\r\n:1\r\n",      /* an array for the value */
        "+OK\r\n",                              /* a status */
        "$3\r\nabc\r\n",                        /* a bare string: the HGET shape, not EXEC's */
    };
    const char *v;
    size_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (judge(bad[i], &v, &n) != UV_EPROTO) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            ASSERT(0);
        }
    }
    ASSERT_EQ(tlsc_store_redis_take_answer(NULL, &v, &n), UV_EPROTO);
}

int main(void)
{
    RUN(a_taken_record_is_a_hit_and_a_missing_one_a_miss);
    RUN(every_other_shape_is_a_protocol_error);
    TEST_DONE();
}
