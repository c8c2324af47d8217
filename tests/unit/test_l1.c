/* The node-local session cache: sizes, hits, versions, takes, expiry, eviction, clear, and a
 * process that dies holding a set's lock. */

#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/tls1.h>

#include "l1.h"
#include "revoke.h"

static uint64_t fake_now = 1000;

static uint64_t clock_fn(void)
{
    return fake_now;
}

static tlsc_l1_t *make(uint64_t bytes)
{
    tlsc_l1_t *l1 = NULL;
    char err[256];

    ASSERT_EQ(tlsc_l1_new(bytes, &l1, err, sizeof(err)), 0);
    tlsc_l1_set_clock(l1, clock_fn);
    return l1;
}

static void id_of(unsigned n, unsigned char id[32])
{
    memset(id, 0, 32);
    for (unsigned i = 0; i < 32; i++)
        id[i] = (unsigned char)(n * 31u + i * 7u + (n >> 8));
    memcpy(id, &n, sizeof(n));
}

TEST(size_is_parsed_strictly)
{
    uint64_t v = 7;

    ASSERT_EQ(tlsc_l1_parse_size("0", &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(tlsc_l1_parse_size("64m", &v), 0);
    ASSERT_EQ(v, 64ull << 20);
    ASSERT_EQ(tlsc_l1_parse_size("1G", &v), 0);
    ASSERT_EQ(v, 1ull << 30);
    ASSERT_EQ(tlsc_l1_parse_size("2048k", &v), 0);
    ASSERT_EQ(v, 2ull << 20);
    ASSERT_EQ(tlsc_l1_parse_size("1048576", &v), 0);
    ASSERT_EQ(tlsc_l1_parse_size("", &v), -1);
    ASSERT_EQ(tlsc_l1_parse_size("m", &v), -1);
    ASSERT_EQ(tlsc_l1_parse_size("64mb", &v), -1);
    ASSERT_EQ(tlsc_l1_parse_size(" 64m", &v), -1);
    ASSERT_EQ(tlsc_l1_parse_size("-1", &v), -1);
    ASSERT_EQ(tlsc_l1_parse_size("1k", &v), -1);  /* below the minimum */
    ASSERT_EQ(tlsc_l1_parse_size("17g", &v), -1); /* above the maximum */
    ASSERT_EQ(tlsc_l1_parse_size("99999999999999999999", &v), -1);
    ASSERT_EQ(tlsc_l1_parse_size("18446744073709551617k", &v), -1);
}

TEST(put_then_get_hits_only_the_same_version)
{
    tlsc_l1_t *l1 = make(1 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    size_t len = 0;

    id_of(1, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"record", 6, fake_now + 10, 0), 0);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1);
    ASSERT_EQ(len, 6);
    ASSERT(memcmp(out, "record", 6) == 0);
    /* A TLS 1.2 session offered as a TLS 1.3 identity: a miss, and a take leaves it alone. */
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_3_VERSION, 1, out, &len), 0);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1);
    id[0] ^= 1;
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 0);
    tlsc_l1_free(l1);
}

TEST(take_is_single_use)
{
    tlsc_l1_t *l1 = make(1 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    size_t len;

    id_of(2, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_3_VERSION, (const unsigned char *)"t13", 3, fake_now + 10, 0), 0);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_3_VERSION, 1, out, &len), 1);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_3_VERSION, 1, out, &len), 0);
    tlsc_l1_free(l1);
}

TEST(entries_expire_and_bounds_hold)
{
    tlsc_l1_t *l1 = make(1 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX], big[TLSC_L1_VALUE_MAX + 1] = {0};
    size_t len;

    id_of(3, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"x", 1, fake_now + 5, 0), 0);
    fake_now += 5;
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 0);
    fake_now -= 5;
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, big, sizeof(big), fake_now + 5, 0), -1);
    ASSERT_EQ(tlsc_l1_put(l1, id, 33, TLS1_2_VERSION, big, 1, fake_now + 5, 0), -1);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, big, 1, fake_now, 0), -1); /* already expired */
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, big, TLSC_L1_VALUE_MAX, fake_now + 5, 0), 0);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1);
    ASSERT_EQ(len, TLSC_L1_VALUE_MAX);
    tlsc_l1_free(l1);
}

TEST(full_cache_evicts_least_recently_used)
{
    tlsc_l1_t *l1 = make(1 << 20);
    tlsc_l1_stats_t st;
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    size_t len;
    unsigned n, hits = 0;

    tlsc_l1_stats(l1, &st);
    n = (unsigned)st.entries_max * 3;
    /* Keep session 0 in use while three times the capacity goes through: it must survive. */
    for (unsigned k = 0; k < n; k++) {
        id_of(k, id);
        ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)&k, sizeof(k), fake_now + 100, 0), 0);
        id_of(0, id);
        ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1);
    }
    for (unsigned k = 0; k < n; k++) {
        id_of(k, id);
        hits += (unsigned)tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len);
    }
    tlsc_l1_stats(l1, &st);
    ASSERT(hits <= st.entries_max);
    ASSERT(st.evictions >= n - st.entries_max);
    tlsc_l1_free(l1);
}

TEST(clear_and_remove_drop_entries_and_stop_stale_fills)
{
    tlsc_l1_t *l1 = make(1 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    size_t len;
    uint64_t epoch;

    id_of(5, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"a", 1, fake_now + 10, 0), 0);
    ASSERT_EQ(tlsc_l1_remove(l1, id, 32), 1);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 0);
    ASSERT_EQ(tlsc_l1_remove(l1, id, 32), 0);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"a", 1, fake_now + 10, 0), 0);
    tlsc_l1_clear(l1);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 0);
    /* A fill read before a removal is refused after it; one read after it goes in. */
    epoch = tlsc_l1_epoch(l1);
    tlsc_l1_remove(l1, id, 32);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"a", 1, fake_now + 10, epoch), -1);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"a", 1, fake_now + 10, tlsc_l1_epoch(l1)), 0);
    tlsc_l1_free(l1);
}

/* A child that takes a set's lock and dies: the parent's next operation recovers that set. */
TEST(worker_dying_with_a_lock_costs_only_its_set)
{
    tlsc_l1_t *l1 = make(1 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    tlsc_l1_stats_t st;
    size_t len;
    int status;
    pid_t pid;

    id_of(9, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"a", 1, fake_now + 10, 0), 0);
    if ((pid = fork()) == 0) {
        tlsc_l1_test_hold_lock(l1, id, 32); /* takes the set's lock and never releases it */
        _exit(0);
    }
    ASSERT(pid > 0);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    /* The set is wiped (the entry was possibly half written), everything else still works. */
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 0);
    tlsc_l1_stats(l1, &st);
    ASSERT_EQ(st.recovered, 1);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"b", 1, fake_now + 10, 0), 0);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1);
    tlsc_l1_free(l1);
}

TEST(revocation_messages_are_parsed_strictly)
{
    unsigned char id[TLSC_L1_ID_MAX];
    size_t len = 0;
    const char *p = "tlscache:sess:";

    ASSERT_EQ(tlsc_revoke_parse(p, "*", 1, id, &len), 1);
    ASSERT_EQ(tlsc_revoke_parse(p, "tlscache:sess:00ff", 18, id, &len), 0);
    ASSERT_EQ(len, 2);
    ASSERT_EQ(id[0], 0);
    ASSERT_EQ(id[1], 0xff);
    ASSERT_EQ(tlsc_revoke_parse(p, "tlscache:sess:0", 15, id, &len), -1);  /* odd */
    ASSERT_EQ(tlsc_revoke_parse(p, "tlscache:sess:zz", 16, id, &len), -1); /* not hex */
    ASSERT_EQ(tlsc_revoke_parse(p, "tlscache:sess:", 14, id, &len), -1);   /* empty */
    ASSERT_EQ(tlsc_revoke_parse(p, "other:sess:00ff", 15, id, &len), -1);  /* another prefix */
    ASSERT_EQ(tlsc_revoke_parse(p, "**", 2, id, &len), -1);
    char big[14 + 2 * TLSC_L1_ID_MAX + 3];
    memset(big, 'a', sizeof(big));
    memcpy(big, p, 14);
    ASSERT_EQ(tlsc_revoke_parse(p, big, 14 + 2 * TLSC_L1_ID_MAX, id, &len), 0);
    ASSERT_EQ(tlsc_revoke_parse(p, big, 14 + 2 * TLSC_L1_ID_MAX + 2, id, &len), -1); /* too long */
}

/* The flush watch's hash tags (revoke.c): every master of a slot map gets one in its own slots. */
TEST(flush_watch_tags_land_one_on_every_master)
{
    static uint8_t owner[TLSC_REDIS_CLUSTER_SLOTS];
    unsigned tags[130];
    char num[12];

    /* Three masters as redis-cli --cluster create splits the slots. */
    for (unsigned s = 0; s < TLSC_REDIS_CLUSTER_SLOTS; s++)
        owner[s] = s <= 5460 ? 0 : s <= 10922 ? 1 : 2;
    ASSERT_EQ(tlsc_revoke_watch_tags(owner, 3, tags), 3);
    for (unsigned i = 0; i < 3; i++) {
        int n = snprintf(num, sizeof(num), "%u", tags[i]);

        ASSERT_EQ(owner[tlsc_redis_cluster_keyslot(num, (size_t)n)], i);
    }
    /* The same partition under other numbers gets the same tags: they follow the slots, not the order. */
    unsigned again[3];
    for (unsigned s = 0; s < TLSC_REDIS_CLUSTER_SLOTS; s++)
        owner[s] = (uint8_t)(2 - owner[s]);
    ASSERT_EQ(tlsc_revoke_watch_tags(owner, 3, again), 3);
    ASSERT_EQ(again[0], tags[2]);
    ASSERT_EQ(again[2], tags[0]);
    /* A master that holds one slot only, the last one, and 128 masters of 128 slots each. */
    memset(owner, 0, sizeof(owner));
    owner[TLSC_REDIS_CLUSTER_SLOTS - 1] = 1;
    ASSERT_EQ(tlsc_revoke_watch_tags(owner, 2, tags), 2);
    ASSERT(tags[1] < TLSC_REVOKE_TAG_SEARCH);
    for (unsigned s = 0; s < TLSC_REDIS_CLUSTER_SLOTS; s++)
        owner[s] = (uint8_t)(s / 128);
    ASSERT_EQ(tlsc_revoke_watch_tags(owner, 128, tags), 128);
    /* A master with no slot gets none; slots nobody holds are skipped. */
    memset(owner, 0xFF, sizeof(owner));
    owner[7] = 0;
    ASSERT_EQ(tlsc_revoke_watch_tags(owner, 2, tags), 1);
    ASSERT_EQ(tags[1], TLSC_REVOKE_NO_TAG);
}

/* TLSC_REVOKE_TAG_SEARCH is enough: the decimal numbers below it reach every slot. */
TEST(flush_watch_tag_search_reaches_every_slot)
{
    static uint8_t seen[TLSC_REDIS_CLUSTER_SLOTS];
    size_t count = 0;
    char num[12];

    for (unsigned t = 0; t < TLSC_REVOKE_TAG_SEARCH; t++) {
        int n = snprintf(num, sizeof(num), "%u", t);
        unsigned s = tlsc_redis_cluster_keyslot(num, (size_t)n);

        count += !seen[s];
        seen[s] = 1;
    }
    ASSERT_EQ(count, (size_t)TLSC_REDIS_CLUSTER_SLOTS);
}

TEST(a_cache_that_does_not_serve_misses)
{
    tlsc_l1_t *l1 = make(1 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    size_t len;

    id_of(11, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"a", 1, fake_now + 10, 0), 0);
    tlsc_l1_set_serving(l1, 0);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 0);
    tlsc_l1_set_serving(l1, 1);
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1);
    tlsc_l1_free(l1);
}

TEST(warming_reads_every_page_in_slices_and_ends)
{
    tlsc_l1_t *l1 = make(2 << 20);
    unsigned char id[32], out[TLSC_L1_VALUE_MAX];
    size_t at = 0, len, prev, calls = 0;

    id_of(12, id);
    ASSERT_EQ(tlsc_l1_put(l1, id, 32, TLS1_2_VERSION, (const unsigned char *)"b", 1, fake_now + 10, 0), 0);
    ASSERT_EQ(tlsc_l1_warm(l1, &at, 3), 0);
    ASSERT_EQ(at, (size_t)3 * 4096); /* a slice is the pages asked for, no more */
    do {
        prev = at;
        calls++;
        ASSERT(calls < 10000);
    } while (tlsc_l1_warm(l1, &at, 64) == 0 && at > prev);
    ASSERT(at >= (size_t)2 << 20);                                       /* the whole region (it is under the 256 MiB cap) */
    ASSERT_EQ(tlsc_l1_warm(l1, &at, 64), 1);                             /* done stays done */
    ASSERT_EQ(tlsc_l1_get(l1, id, 32, TLS1_2_VERSION, 0, out, &len), 1); /* reading changed nothing */
    tlsc_l1_free(l1);
}

int main(void)
{
    RUN(revocation_messages_are_parsed_strictly);
    RUN(a_cache_that_does_not_serve_misses);
    RUN(flush_watch_tags_land_one_on_every_master);
    RUN(flush_watch_tag_search_reaches_every_slot);
    RUN(size_is_parsed_strictly);
    RUN(put_then_get_hits_only_the_same_version);
    RUN(take_is_single_use);
    RUN(entries_expire_and_bounds_hold);
    RUN(full_cache_evicts_least_recently_used);
    RUN(clear_and_remove_drop_entries_and_stop_stale_fills);
    RUN(worker_dying_with_a_lock_costs_only_its_set);
    RUN(warming_reads_every_page_in_slices_and_ends);
    TEST_DONE();
}
