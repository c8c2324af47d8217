#include <stdio.h>
#include <string.h>

#include "routes.h"
#include "test.h"

/*
 * --backend values into routes, and which route a connection takes: exact SNI before a
 * wildcard, SNI before ALPN, ALPN before the default; a wildcard stands for one label only;
 * hostile values are refused without a half-built route.
 */

static char err[256];

TEST(values_with_one_match_make_one_route)
{
    tlsc_routes_t rs = {0};

    ASSERT_EQ(tlsc_routes_add(&rs, "127.0.0.1:8080", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "127.0.0.1:8081", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:API.example=unix:/run/api.sock", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:api.example=[::1]:9000", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "alpn:h2=127.0.0.1:8082", err, sizeof(err)), 0);
    ASSERT_EQ(rs.n, 3);
    ASSERT_EQ(rs.routes[0].kind, TLSC_ROUTE_DEFAULT);
    ASSERT_EQ(rs.routes[0].n_addrs, 2);
    ASSERT_EQ(rs.routes[1].kind, TLSC_ROUTE_SNI);
    ASSERT_STREQ(rs.routes[1].match, "api.example"); /* lower-cased */
    ASSERT_EQ(rs.routes[1].n_addrs, 2);
    ASSERT_EQ(rs.routes[1].addrs[0].kind, TLSC_ADDR_UNIX);
    ASSERT_STREQ(rs.routes[1].addrs[0].path, "/run/api.sock");
    ASSERT_EQ(rs.routes[2].kind, TLSC_ROUTE_ALPN);
    ASSERT_STREQ(rs.routes[2].match, "h2");
    tlsc_routes_free(&rs);
    ASSERT_EQ(rs.n, 0);
}

TEST(an_equals_sign_in_a_unix_path_is_not_a_match)
{
    tlsc_routes_t rs = {0};

    ASSERT_EQ(tlsc_routes_add(&rs, "unix:/run/a=b.sock", err, sizeof(err)), 0);
    ASSERT_EQ(rs.routes[0].kind, TLSC_ROUTE_DEFAULT);
    ASSERT_STREQ(rs.routes[0].addrs[0].path, "/run/a=b.sock");
    tlsc_routes_free(&rs);
}

TEST(wildcards_stand_for_one_label)
{
    ASSERT(tlsc_routes_sni_match("*.example.com", "a.example.com"));
    ASSERT(tlsc_routes_sni_match("*.example.com", "A.EXAMPLE.com"));
    ASSERT(!tlsc_routes_sni_match("*.example.com", "example.com"));
    ASSERT(!tlsc_routes_sni_match("*.example.com", "a.b.example.com"));
    ASSERT(!tlsc_routes_sni_match("*.example.com", ".example.com"));
    ASSERT(!tlsc_routes_sni_match("*.example.com", "aexample.com"));
    ASSERT(tlsc_routes_sni_match("a.example.com", "A.example.COM"));
    ASSERT(!tlsc_routes_sni_match("a.example.com", "b.example.com"));
}

TEST(pick_order_exact_wildcard_alpn_default)
{
    tlsc_routes_t rs = {0};
    const unsigned char h2[] = "h2";

    ASSERT_EQ(tlsc_routes_add(&rs, "127.0.0.1:1", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "alpn:h2=127.0.0.1:2", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:*.example=127.0.0.1:3", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:a.example=127.0.0.1:4", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_pick(&rs, "a.example", h2, 2)->addrs[0].port, 4);
    ASSERT_EQ(tlsc_routes_pick(&rs, "b.example", h2, 2)->addrs[0].port, 3);
    ASSERT_EQ(tlsc_routes_pick(&rs, "other", h2, 2)->addrs[0].port, 2);
    ASSERT_EQ(tlsc_routes_pick(&rs, "", NULL, 0)->addrs[0].port, 1);
    ASSERT_EQ(tlsc_routes_pick(&rs, "other", (const unsigned char *)"h2c", 3)->addrs[0].port, 1);
    tlsc_routes_free(&rs);

    /* Without a default route a connection that matches nothing has none. */
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:a.example=127.0.0.1:4", err, sizeof(err)), 0);
    ASSERT(tlsc_routes_pick(&rs, "b.example", NULL, 0) == NULL);
    tlsc_routes_free(&rs);
}

TEST(pick_early_only_when_alpn_cannot_change_the_route)
{
    tlsc_routes_t rs = {0};

    /* No ALPN route: the default route is known from the ClientHello. */
    ASSERT_EQ(tlsc_routes_add(&rs, "127.0.0.1:1", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:a.example=127.0.0.1:4", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_pick_early(&rs, "other")->addrs[0].port, 1);
    ASSERT_EQ(tlsc_routes_pick_early(&rs, "")->addrs[0].port, 1);
    ASSERT_EQ(tlsc_routes_pick_early(&rs, "A.example")->addrs[0].port, 4);
    /* With one, only an SNI route (which beats any ALPN route) is known that early. */
    ASSERT_EQ(tlsc_routes_add(&rs, "alpn:h2=127.0.0.1:2", err, sizeof(err)), 0);
    ASSERT(tlsc_routes_pick_early(&rs, "other") == NULL);
    ASSERT_EQ(tlsc_routes_pick_early(&rs, "a.example")->addrs[0].port, 4);
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:*.w.example=127.0.0.1:3", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_pick_early(&rs, "x.w.example")->addrs[0].port, 3);
    tlsc_routes_free(&rs);

    /* No route at all for this name: nothing early. */
    ASSERT_EQ(tlsc_routes_add(&rs, "sni:a.example=127.0.0.1:4", err, sizeof(err)), 0);
    ASSERT(tlsc_routes_pick_early(&rs, "b.example") == NULL);
    tlsc_routes_free(&rs);
}

TEST(hostile_values_are_refused)
{
    tlsc_routes_t rs = {0};
    char big[600];
    const char *bad[] = {"",
                         "sni:a.example",
                         "sni:=127.0.0.1:1",
                         "sni:a b=127.0.0.1:1",
                         "sni:*=127.0.0.1:1",
                         "sni:a.*.example=127.0.0.1:1",
                         "alpn:=127.0.0.1:1",
                         "alpn:h 2=127.0.0.1:1",
                         "alpn:h2=",
                         "127.0.0.1",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "unix:",
                         "tcp:127.0.0.1:1=127.0.0.1:2",
                         NULL};

    for (size_t i = 0; bad[i] != NULL; i++) {
        if (tlsc_routes_add(&rs, bad[i], err, sizeof(err)) != -1) {
            fprintf(stderr, "\n    accepted \"%s\"\n", bad[i]);
            ASSERT(0);
        }
        ASSERT(strchr(err, '\n') == NULL);
    }
    ASSERT_EQ(rs.n, 0);
    memset(big, 'a', sizeof(big));
    memcpy(big, "sni:", 4);
    strcpy(big + 300, "=127.0.0.1:1");
    ASSERT_EQ(tlsc_routes_add(&rs, big, err, sizeof(err)), -1);
    for (unsigned i = 0; i < TLSC_ROUTES_ADDRS_MAX; i++)
        ASSERT_EQ(tlsc_routes_add(&rs, "127.0.0.1:1", err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_routes_add(&rs, "127.0.0.1:1", err, sizeof(err)), -1);
    tlsc_routes_free(&rs);
    for (unsigned i = 0; i < TLSC_ROUTES_MAX; i++) {
        char v[64];
        snprintf(v, sizeof(v), "alpn:p%u=127.0.0.1:1", i);
        ASSERT_EQ(tlsc_routes_add(&rs, v, err, sizeof(err)), 0);
    }
    ASSERT_EQ(tlsc_routes_add(&rs, "alpn:one-more=127.0.0.1:1", err, sizeof(err)), -1);
    tlsc_routes_free(&rs);
}

int main(void)
{
    RUN(values_with_one_match_make_one_route);
    RUN(an_equals_sign_in_a_unix_path_is_not_a_match);
    RUN(wildcards_stand_for_one_label);
    RUN(pick_order_exact_wildcard_alpn_default);
    RUN(pick_early_only_when_alpn_cannot_change_the_route);
    RUN(hostile_values_are_refused);
    TEST_DONE();
}
