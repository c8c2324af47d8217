#include "redis_cluster.h"
#include "test.h"

/*
 * The Redis Cluster router's pure parts: the hash slot of a key (against values Redis 7.0's
 * CLUSTER KEYSLOT gives), the one-slot rule on every command shape the store sends, MOVED /
 * ASK parsing, and slot maps (CLUSTER SHARDS and CLUSTER SLOTS) from hostile replies.
 */

static redisReply *parse_resp(const char *resp)
{
    redisReader *rd = tlsc_redis_reader_new();
    void *reply = NULL;

    ASSERT(rd != NULL);
    ASSERT_EQ(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    ASSERT_EQ(redisReaderGetReply(rd, &reply), REDIS_OK);
    ASSERT(reply != NULL);
    tlsc_redis_reader_free(rd);
    return reply;
}

TEST(crc16_xmodem_check_value)
{
    ASSERT_EQ(tlsc_redis_cluster_crc16("123456789", 9), 0x31C3);
    ASSERT_EQ(tlsc_redis_cluster_crc16("", 0), 0);
}

TEST(keyslot_matches_redis_cluster_keyslot)
{
    /* redis-cli -p PORT CLUSTER KEYSLOT KEY, Redis 7.0.15 */
    static const struct {
        const char *key;
        unsigned slot;
    } known[] = {
        {"123456789", 12739},
        {"foo", 12182},
        {"bar", 5061},
        {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443},
        {"foo{}{bar}", 8363},    /* an empty tag: the whole key */
        {"foo{{bar}}zap", 4015}, /* the tag is "{bar" */
        {"foo{bar}{zap}", 5061}, /* the first tag only: "bar" */
        {"{}", 15257},
        {"tlscache:sess:00ff", 156},
        {"a{b", 13340}, /* no closing brace: the whole key */
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        unsigned got = tlsc_redis_cluster_keyslot(known[i].key, strlen(known[i].key));
        if (got != known[i].slot) {
            fprintf(stderr, "keyslot(%s) = %u, Redis says %u\n", known[i].key, got, known[i].slot);
            abort();
        }
    }
}

/*
 * The shapes server/store_redis.c sends (HGET, the conditional take's script, the take's MULTI
 * HGET DEL EXEC, MULTI HSET EXPIRE EXEC, DEL): each within one slot.
 */
TEST(every_store_command_shape_stays_in_one_slot)
{
    const char *key = "tlscache:sess:0a1b2c";
    const char *hget[] = {"HGET", key, "der"};
    const char *eval[] = {"EVAL", "local v = ...", "1", key, "der", "proto", "13"};
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *hset[] = {"HSET", key, "der", "x", "proto", "13", "sni", "a.example"};
    const char *expire[] = {"EXPIRE", key, "300"};
    const char *del[] = {"DEL", key};
    int slot = (int)tlsc_redis_cluster_keyslot(key, strlen(key));

    {
        int argc[] = {3};
        const char *const *argv[] = {hget};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), slot);
    }
    {
        int argc[] = {7};
        const char *const *argv[] = {eval};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), slot);
    }
    {
        const char *take_del[] = {"DEL", key};
        int argc[] = {1, 3, 2, 1};
        const char *const *argv[] = {multi, hget, take_del, exec};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, NULL), slot);
    }
    {
        int argc[] = {1, 8, 3, 1};
        const char *const *argv[] = {multi, hset, expire, exec};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, NULL), slot);
    }
    {
        int argc[] = {2};
        const char *const *argv[] = {del};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), slot);
    }
    {
        /*
         * A durable write (--store-replicas): the put's transaction, then WAIT on the same link
         * (tlsc_redis_cluster_send_wait checks this shape); after an ASK, ASKING leads it.
         */
        const char *wait[] = {"WAIT", "1", "50"}, *asking[] = {"ASKING"};
        int argc[] = {1, 8, 3, 1, 3}, argc_ask[] = {1, 1, 8, 3, 1, 3};
        const char *const *argv[] = {multi, hset, expire, exec, wait}, *const *
                                                                           argv_ask[] = {asking, multi, hset, expire, exec, wait};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(5, argc, argv, NULL), slot);
        ASSERT_EQ(tlsc_redis_cluster_request_slot(6, argc_ask, argv_ask, NULL), slot);
    }
    {
        size_t l1[] = {4, strlen(key), 3};
        const size_t *lens[] = {l1};
        int argc[] = {3};
        const char *const *argv[] = {hget};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, lens), slot);
    }
}

TEST(a_request_across_slots_or_of_unknown_keys_is_refused)
{
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *hset[] = {"HSET", "foo", "f", "v"}, *expire[] = {"EXPIRE", "bar", "300"};
    const char *eval2[] = {"EVAL", "s", "2", "foo", "bar"}, *evalbad[] = {"EVAL", "s", "3", "foo"};
    const char *evaltag[] = {"EVAL", "s", "2", "{u}a", "{u}b"};
    const char *keys[] = {"KEYS", "*"}, *ping[] = {"PING"}, *del2[] = {"DEL", "foo", "bar"}, *del2tag[] = {"DEL", "{x}1", "{x}2"};

    {
        int argc[] = {1, 4, 3, 1};
        const char *const *argv[] = {multi, hset, expire, exec};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, NULL), -1);
    }
    {
        int argc[] = {5};
        const char *const *argv[] = {eval2};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), -1);
        argv[0] = evalbad;
        argc[0] = 4;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), -1);
        argv[0] = evaltag;
        argc[0] = 5;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), (int)tlsc_redis_cluster_keyslot("u", 1));
    }
    {
        int argc[] = {2};
        const char *const *argv[] = {keys};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), -1);
        argv[0] = ping;
        argc[0] = 1;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), -2);
        argv[0] = del2;
        argc[0] = 3;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), -1);
        argv[0] = del2tag;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), (int)tlsc_redis_cluster_keyslot("x", 1));
    }
}

/*
 * WAIT waits for whatever its connection wrote last, on whichever node it reaches: it is
 * accepted only right after the EXEC of the write it is about, as the last command.
 */
TEST(wait_is_refused_anywhere_but_after_exec)
{
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"}, *wait[] = {"WAIT", "1", "50"}, *waitaof[] = {"WAITAOF", "1", "0", "50"};
    const char *hset[] = {"HSET", "k", "f", "v"}, *hget[] = {"HGET", "k", "f"}, *del[] = {"DEL", "k"};
    size_t exec_len[] = {4}, wait_len[] = {4, 1, 2};

    {
        int argc[] = {3}; /* alone */
        const char *const *argv[] = {wait};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(1, argc, argv, NULL), -1);
    }
    {
        int argc[] = {3, 3}; /* after a command that is not EXEC */
        const char *const *argv[] = {hget, wait};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(2, argc, argv, NULL), -1);
        argv[0] = del;
        argc[0] = 2;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(2, argc, argv, NULL), -1);
    }
    {
        int argc[] = {1, 4, 3, 1}; /* inside the transaction */
        const char *const *argv[] = {multi, hset, wait, exec};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, NULL), -1);
    }
    {
        int argc[] = {1, 4, 1, 3, 3}; /* after EXEC, but not last */
        const char *const *argv[] = {multi, hset, exec, wait, hget};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(5, argc, argv, NULL), -1);
    }
    {
        int argc[] = {3, 1, 4, 1}; /* before the transaction */
        const char *const *argv[] = {wait, multi, hset, exec};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, NULL), -1);
    }
    {
        int argc[] = {1, 4, 1, 4}; /* WAITAOF in the same place is the same */
        const char *const *argv[] = {multi, hset, exec, waitaof};
        const size_t *lens[] = {NULL, NULL, exec_len, NULL};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, lens), (int)tlsc_redis_cluster_keyslot("k", 1));
        argv[2] = hget;
        argc[2] = 3;
        lens[2] = NULL;
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, lens), -1);
    }
    {
        int argc[] = {1, 4, 1, 3}; /* with lengths given */
        const char *const *argv[] = {multi, hset, exec, wait};
        const size_t *lens[] = {NULL, NULL, exec_len, wait_len};
        ASSERT_EQ(tlsc_redis_cluster_request_slot(4, argc, argv, lens), (int)tlsc_redis_cluster_keyslot("k", 1));
    }
}

TEST(moved_and_ask_are_parsed_and_bounded)
{
    char host[TLSC_REDIS_CLUSTER_HOST_MAX + 1], longer[400];
    unsigned slot = 0, port = 0;
    const char *m = "MOVED 3999 127.0.0.1:6381", *a = "ASK 16383 [::1]:7000", *n = "MOVED 1 redis-2.example:7001";

    ASSERT_EQ(tlsc_redis_cluster_redirect_parse(m, strlen(m), &slot, host, sizeof(host), &port), 1);
    ASSERT_EQ(slot, 3999);
    ASSERT_STREQ(host, "127.0.0.1");
    ASSERT_EQ(port, 6381);
    ASSERT_EQ(tlsc_redis_cluster_redirect_parse(a, strlen(a), &slot, host, sizeof(host), &port), 2);
    ASSERT_EQ(slot, 16383);
    ASSERT_STREQ(host, "::1");
    ASSERT_EQ(port, 7000);
    ASSERT_EQ(tlsc_redis_cluster_redirect_parse(n, strlen(n), &slot, host, sizeof(host), &port), 1);
    ASSERT_STREQ(host, "redis-2.example");

    static const char *const bad[] = {
        "MOVED 16384 127.0.0.1:6381", "MOVED -1 h:1", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h:", "MOVED 1 :6379",
        "MOVED 1 h\n:6379",           "MOVED 1 h",    "MOVED  h:1",  "ASK 1",           "ERR x",      "MOVED 99999999999 h:1",
        "MOVED 1 h/x:6379",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(tlsc_redis_cluster_redirect_parse(bad[i], strlen(bad[i]), &slot, host, sizeof(host), &port), 0);
    memset(longer, 'a', sizeof(longer));
    memcpy(longer, "MOVED 1 ", 8);
    memcpy(longer + sizeof(longer) - 5, ":123", 4);
    ASSERT_EQ(tlsc_redis_cluster_redirect_parse(longer, sizeof(longer) - 1, &slot, host, sizeof(host), &port), 0);
}

/* A CLUSTER SHARDS reply of Redis 7.0 (RESP2), three shards, one with two ranges and a failed old master. */
static const char shards_resp[] =
    "*3\r\n"
    "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n"
    "*14\r\n$2\r\nid\r\n$2\r\naa\r\n$4\r\nport\r\n:7000\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n"
    "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*14\r\n$2\r\nid\r\n$2\r\nbb\r\n$4\r\nport\r\n:7003\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n"
    "$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*4\r\n$5\r\nslots\r\n*4\r\n:5461\r\n:10922\r\n:16000\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"
    "*14\r\n$2\r\nid\r\n$2\r\ncc\r\n$4\r\nport\r\n:7001\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n"
    "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*4\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:15999\r\n$5\r\nnodes\r\n*1\r\n"
    "*14\r\n$2\r\nid\r\n$2\r\ndd\r\n$4\r\nport\r\n:7002\r\n$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$0\r\n\r\n"
    "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

TEST(cluster_shards_map)
{
    tlsc_redis_cluster_map_t *map = malloc(sizeof(*map));
    redisReply *r = parse_resp(shards_resp);
    char why[160] = "";

    ASSERT_EQ(tlsc_redis_cluster_map_parse(r, 1, "10.9.9.9", map, why, sizeof(why)), 0);
    ASSERT_EQ(map->nnodes, 3);
    ASSERT_STREQ(map->node[map->slot[0]].host, "127.0.0.1");
    ASSERT_EQ(map->node[map->slot[0]].port, 7000);
    ASSERT_EQ(map->node[map->slot[5460]].port, 7000);
    ASSERT_EQ(map->node[map->slot[5461]].port, 7001);
    ASSERT_EQ(map->node[map->slot[16383]].port, 7001);
    ASSERT_EQ(map->node[map->slot[12000]].port, 7002);
    ASSERT_STREQ(map->node[map->slot[12000]].host, "10.9.9.9"); /* no ip, no endpoint: the node asked */
    freeReplyObject(r);
    free(map);
}

/* A TLS-only Redis 7.0 node's CLUSTER SHARDS: "tls-port" and no "port"; one master announces a hostname. */
TEST(cluster_shards_map_over_tls_takes_the_tls_port_and_the_hostname)
{
    static const char resp[] =
        "*2\r\n"
        "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n*1\r\n"
        "*14\r\n$2\r\nid\r\n$2\r\naa\r\n$8\r\ntls-port\r\n:7100\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n"
        "$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
        "*4\r\n$5\r\nslots\r\n*2\r\n:8192\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"
        "*18\r\n$2\r\nid\r\n$2\r\nbb\r\n$4\r\nport\r\n:7001\r\n$8\r\ntls-port\r\n:7101\r\n$2\r\nip\r\n$9\r\n127.0.0.2\r\n"
        "$8\r\nendpoint\r\n$9\r\n127.0.0.2\r\n$8\r\nhostname\r\n$13\r\nnode2.example\r\n"
        "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:1\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
    tlsc_redis_cluster_map_t *map = malloc(sizeof(*map));
    redisReply *r = parse_resp(resp);
    char why[160] = "";

    ASSERT_EQ(tlsc_redis_cluster_map_parse(r, TLSC_REDIS_CLUSTER_MAP_SHARDS | TLSC_REDIS_CLUSTER_MAP_TLS, "127.0.0.1", map, why,
                                           sizeof(why)),
              0);
    ASSERT_EQ(map->nnodes, 2);
    ASSERT_EQ(map->node[map->slot[0]].port, 7100);
    ASSERT_STREQ(map->node[map->slot[0]].name, "");
    ASSERT_EQ(map->node[map->slot[16383]].port, 7101); /* both ports named: TLS takes tls-port */
    ASSERT_STREQ(map->node[map->slot[16383]].host, "127.0.0.2");
    ASSERT_STREQ(map->node[map->slot[16383]].name, "node2.example");
    /* Without TLS the plain port; a TLS-only node has none, and the map is refused. */
    ASSERT_EQ(tlsc_redis_cluster_map_parse(r, TLSC_REDIS_CLUSTER_MAP_SHARDS, "127.0.0.1", map, why, sizeof(why)), -1);
    ASSERT(strstr(why, "without an address") != NULL);
    freeReplyObject(r);
    free(map);
}

TEST(cluster_slots_map)
{
    static const char resp[] =
        "*2\r\n"
        "*4\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\naa\r\n*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nbb\r\n"
        "*3\r\n:8192\r\n:16383\r\n*2\r\n$0\r\n\r\n:7001\r\n";
    tlsc_redis_cluster_map_t *map = malloc(sizeof(*map));
    redisReply *r = parse_resp(resp);
    char why[160] = "";

    ASSERT_EQ(tlsc_redis_cluster_map_parse(r, 0, "127.0.0.2", map, why, sizeof(why)), 0);
    ASSERT_EQ(map->nnodes, 2);
    ASSERT_EQ(map->node[map->slot[8191]].port, 7000);
    ASSERT_EQ(map->node[map->slot[8192]].port, 7001);
    ASSERT_STREQ(map->node[map->slot[8192]].host, "127.0.0.2");
    freeReplyObject(r);
    free(map);
}

static void assert_map_refused(const char *resp, int shards, const char *why_part)
{
    tlsc_redis_cluster_map_t *map = malloc(sizeof(*map));
    redisReply *r = parse_resp(resp);
    char why[160] = "";

    ASSERT_EQ(tlsc_redis_cluster_map_parse(r, shards, "127.0.0.1", map, why, sizeof(why)), -1);
    if (strstr(why, why_part) == NULL) {
        fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", why, why_part);
        abort();
    }
    freeReplyObject(r);
    free(map);
}

TEST(hostile_slot_maps_are_refused)
{
    assert_map_refused("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:7000\r\n", 0, "out of 0-16383");
    assert_map_refused("*1\r\n*3\r\n:-1\r\n:5\r\n*2\r\n$1\r\nh\r\n:7000\r\n", 0, "out of 0-16383");
    assert_map_refused("*1\r\n*3\r\n:9\r\n:5\r\n*2\r\n$1\r\nh\r\n:7000\r\n", 0, "out of 0-16383");
    assert_map_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:0\r\n", 0, "port 0");
    assert_map_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:65536\r\n", 0, "port 65536");
    assert_map_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$3\r\nh\nx\r\n:7000\r\n", 0, "no host name");
    assert_map_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n:1\r\n:7000\r\n", 0, "wrong shape");
    assert_map_refused("*1\r\n:1\r\n", 0, "wrong shape");
    assert_map_refused("*1\r\n*2\r\n$5\r\nslots\r\n*1\r\n:0\r\n", 1, "wrong shape");
    assert_map_refused("$2\r\nno\r\n", 1, "not an array");

    /* More masters than a map may hold: 129 ranges on 129 ports. */
    char *resp = malloc(129 * 64 + 16);
    size_t pos = (size_t)sprintf(resp, "*129\r\n");
    for (int i = 0; i < 129; i++)
        pos += (size_t)sprintf(resp + pos, "*3\r\n:%d\r\n:%d\r\n*2\r\n$1\r\nh\r\n:%d\r\n", i, i, 7000 + i);
    assert_map_refused(resp, 0, "more than 128 masters");
    free(resp);

    /* A host past 253 bytes. */
    char *big = malloc(600);
    pos = (size_t)sprintf(big, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$300\r\n");
    memset(big + pos, 'a', 300);
    pos += 300;
    sprintf(big + pos, "\r\n:7000\r\n");
    assert_map_refused(big, 0, "no host name");
    free(big);
}

int main(void)
{
    RUN(crc16_xmodem_check_value);
    RUN(keyslot_matches_redis_cluster_keyslot);
    RUN(every_store_command_shape_stays_in_one_slot);
    RUN(a_request_across_slots_or_of_unknown_keys_is_refused);
    RUN(wait_is_refused_anywhere_but_after_exec);
    RUN(moved_and_ask_are_parsed_and_bounded);
    RUN(cluster_shards_map);
    RUN(cluster_shards_map_over_tls_takes_the_tls_port_and_the_hostname);
    RUN(cluster_slots_map);
    RUN(hostile_slot_maps_are_refused);
    TEST_DONE();
}
