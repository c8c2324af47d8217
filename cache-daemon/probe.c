/*
 * This file's one job: tlscache-keyd-probe, a test-only client of tlscache-daemon that plays a
 * worker (through server/keyd.c) or a hostile peer (blocking, straight on proto/keyproto).
 *
 *   --hold SEC        behave as a worker for SEC seconds (server/keyd.c into a ticket key
 *                     holder, reconnecting as needed) and print a line per key set applied
 *   --once            connect, HELLO, print the first KEYSET, exit 0 (3 if none came)
 *   --garbage         send random bytes instead of a TLS handshake; exit 0 if the daemon hangs up
 *   --oversize        after the handshake, announce a 2 GiB frame; exit 0 if the daemon hangs up
 *   --bad-frame       after the handshake, send a frame of unknown type; exit 0 if it hangs up
 *   --worker-control  after its HELLO, send a control request (keys rotate) as tlscache-ctl
 *                     does; exit 0 if the daemon hangs up (a worker link may not control)
 *
 * Hostile HELLOs (with --once): --hello-epoch N reports epoch N; --offer-keys K offers K
 * random keys, key i starting at now - 1 - i x --offer-spread SEC (default 1) and living
 * --offer-life SEC (default 120) or until --offer-not-after T; --bind IP picks the source
 * address (127.0.0.2 plays another host). With --hold, --hide-epoch N makes the worker hold
 * epoch N already but offer nothing in its HELLO, so the daemon's pushes are stale to it.
 *
 * Prints only key name tags (hashes), never key bytes. Exit 2 means the TLS handshake failed.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <uv.h>

#include "addr.h"
#include "keyd.h"
#include "keyproto.h"
#include "log.h"
#include "tickets.h"
#include "util.h"

static const char *address, *secret_file, *node = "probe";
static unsigned timeout_ms = 5000;
static int print_secrets; /* test only: the leak tests need the bytes they scan for */
static const char *bind_ip;
static uint64_t hello_epoch, offer_not_after, hide_epoch;
static unsigned offer_keys, offer_life = 120, offer_spread = 1;

static void print_set(const char *what, const tlsc_keyproto_keyset_t *set)
{
    char tags[TLSC_KEYPROTO_MAX_KEYS * 12 + 1] = "", tag[9];
    const char *cur = "none";
    static char curtag[9];

    for (size_t i = 0; i < set->count; i++) {
        tlsc_keyproto_name_tag(set->keys[i].name, tag);
        strcat(tags, " ");
        strcat(tags, tag);
        if (set->keys[i].role == TLSC_KEYPROTO_ROLE_CURRENT) {
            memcpy(curtag, tag, 9);
            cur = curtag;
        }
    }
    printf("%s epoch=%llu count=%zu current=%s keys=%s\n", what, (unsigned long long)set->epoch, set->count, cur, tags);
    for (size_t i = 0; print_secrets && i < set->count; i++) {
        char name[2 * TLSC_KEYPROTO_NAME_LEN + 1], secret[2 * TLSC_KEYPROTO_SECRET_LEN + 1];
        tlsc_hex_encode(name, set->keys[i].name, TLSC_KEYPROTO_NAME_LEN);
        tlsc_hex_encode(secret, set->keys[i].secret, TLSC_KEYPROTO_SECRET_LEN);
        printf("secret name=%s secret=%s\n", name, secret);
        OPENSSL_cleanse(secret, sizeof(secret));
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------- blocking mode */

static int dial(void)
{
    struct addrinfo hints, *res;
    tlsc_addr_t a;
    char why[128];
    int fd;

    /* The common address parser, as every binary's flags use. */
    if (tlsc_addr_parse_str(address, TLSC_ADDR_ALLOW_UNIX, &a, why, sizeof(why)) != 0) {
        fprintf(stderr, "tlscache-keyd-probe: --connect %s: %s\n", address, why);
        return -1;
    }
    if (a.kind == TLSC_ADDR_UNIX) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a.path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            return -1;
        return fd;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(a.host, a.port_str, &hints, &res) != 0)
        return -1;
    fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && bind_ip != NULL) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        if (inet_pton(AF_INET, bind_ip, &src.sin_addr) != 1 || bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Writes pending ciphertext; returns -1 on a write error. */
static int push(int fd, tlsc_keyproto_conn_t *c)
{
    unsigned char buf[16384];
    size_t n;

    while ((n = tlsc_keyproto_conn_take(c, buf, sizeof(buf))) > 0)
        if (write(fd, buf, n) != (ssize_t)n)
            return -1;
    return 0;
}

/* Waits for bytes until the deadline: >0 read, 0 closed by peer, -1 error/reset, -2 timeout. */
static ssize_t wait_read(int fd, unsigned char *buf, size_t cap, uint64_t deadline)
{
    uint64_t now = tlsc_now_ms();
    struct pollfd p = {fd, POLLIN, 0};

    if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
        return -2;
    ssize_t n = read(fd, buf, cap);
    return n < 0 ? -1 : n;
}

static int run_blocking(const char *mode)
{
    unsigned char psk[32], buf[16384];
    char err[256];
    tlsc_keyproto_link_t *link;
    tlsc_keyproto_conn_t *c;
    tlsc_keyproto_msg_t m;
    uint64_t deadline = tlsc_now_ms() + timeout_ms;
    int fd, rc, result = 3;
    ssize_t n;

    if (strcmp(mode, "garbage") == 0) {
        if ((fd = dial()) < 0) {
            fprintf(stderr, "probe: cannot connect to %s: %s\n", address, strerror(errno));
            return 4;
        }
        RAND_bytes(buf, 4096);
        buf[0] = 0x16; /* looks like a TLS record at first glance */
        if (write(fd, buf, 4096) < 0) {
            close(fd);
            return 0;
        }
        for (int i = 0; i < 100; i++) {
            n = wait_read(fd, buf, sizeof(buf), deadline);
            if (n == 0 || n == -1) {
                close(fd);
                printf("closed by daemon\n");
                return 0;
            }
            if (n == -2)
                break;
        }
        close(fd);
        printf("daemon kept the connection\n");
        return 1;
    }
    /* TLS is ready before the connect, so the ClientHello follows it at once, as a worker's does. */
    if (tlsc_keyproto_psk_load(secret_file, psk, err, sizeof(err)) != 0 ||
        tlsc_keyproto_link_new(0, psk, &link, err, sizeof(err)) != 0) {
        fprintf(stderr, "probe: %s\n", err);
        return 4;
    }
    c = tlsc_keyproto_conn_new(link);
    if ((fd = dial()) < 0) {
        fprintf(stderr, "probe: cannot connect to %s: %s\n", address, strerror(errno));
        tlsc_keyproto_conn_free(c);
        tlsc_keyproto_link_free(link);
        return 4;
    }
    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_HELLO;
    m.u.hello.version_min = m.u.hello.version_max = TLSC_KEYPROTO_VERSION;
    snprintf(m.u.hello.node, sizeof(m.u.hello.node), "%s", node);
    m.u.hello.held.epoch = hello_epoch;
    for (unsigned i = 0; i < offer_keys && i < TLSC_KEYPROTO_MAX_KEYS; i++) {
        tlsc_keyproto_key_t *k = &m.u.hello.held.keys[m.u.hello.held.count++];
        RAND_bytes(k->name, sizeof(k->name));
        RAND_bytes(k->secret, sizeof(k->secret));
        k->secret[0] |= 1;
        k->not_before = tlsc_wall_sec() - 1 - (uint64_t)i * offer_spread;
        k->not_after = offer_not_after ? offer_not_after : k->not_before + offer_life;
        k->role = i == 0 ? TLSC_KEYPROTO_ROLE_CURRENT : TLSC_KEYPROTO_ROLE_PREVIOUS;
    }
    if (tlsc_keyproto_conn_send(c, &m) != 0)
        fprintf(stderr, "probe: cannot encode the HELLO\n");
    tlsc_keyproto_msg_wipe(&m);
    if (strcmp(mode, "oversize") == 0) {
        static const unsigned char big[5] = {0x7f, 0xff, 0xff, 0xff, TLSC_KEYPROTO_KEYSET};
        tlsc_keyproto_conn_send_raw(c, big, sizeof(big));
    } else if (strcmp(mode, "bad-frame") == 0) {
        static const unsigned char bad[7] = {0, 0, 0, 3, 99, 1, 2};
        tlsc_keyproto_conn_send_raw(c, bad, sizeof(bad));
    } else if (strcmp(mode, "worker-control") == 0) {
        memset(&m, 0, sizeof(m));
        m.type = TLSC_KEYPROTO_CONTROL;
        m.u.op = TLSC_KEYPROTO_OP_ROTATE;
        tlsc_keyproto_conn_send(c, &m);
    }
    push(fd, c);
    /* Bounded by the deadline and the loop count. */
    for (int i = 0; i < 1000; i++) {
        n = wait_read(fd, buf, sizeof(buf), deadline);
        if (n == -2) {
            printf("timed out\n");
            result = strcmp(mode, "once") == 0 ? 3 : 1;
            break;
        }
        if (n <= 0) {
            printf("closed by daemon%s\n", tlsc_keyproto_conn_established(c) ? "" : " during the handshake");
            result = strcmp(mode, "once") == 0 ? (tlsc_keyproto_conn_established(c) ? 3 : 2) : 0;
            break;
        }
        rc = tlsc_keyproto_conn_recv(c, buf, (size_t)n);
        push(fd, c);
        if (rc == TLSC_KEYPROTO_EAUTH) {
            printf("TLS handshake failed: %s\n", tlsc_keyproto_conn_reason(c));
            result = 2;
            break;
        }
        if (rc != 0) {
            printf("link error: %s\n", tlsc_keyproto_strerror(rc));
            result = strcmp(mode, "once") == 0 ? 3 : 0;
            break;
        }
        int done = 0;
        while ((rc = tlsc_keyproto_conn_next(c, &m)) == 1) {
            if (m.type == TLSC_KEYPROTO_KEYSET) {
                print_set("keyset", &m.u.keyset);
                if (strcmp(mode, "once") == 0) {
                    result = 0;
                    done = 1;
                }
            } else if (m.type == TLSC_KEYPROTO_WINDOW) {
                printf("window rotate=%u lifetime=%u lead=%u\n", (unsigned)m.u.window.rotate_sec, (unsigned)m.u.window.lifetime_sec,
                       (unsigned)m.u.window.lead_sec);
            } else if (m.type == TLSC_KEYPROTO_ERROR) {
                printf("error %u: %s\n", (unsigned)m.u.error.code, m.u.error.text);
            }
            tlsc_keyproto_msg_wipe(&m);
        }
        if (done)
            break;
    }
    tlsc_keyproto_conn_free(c);
    tlsc_keyproto_link_free(link);
    close(fd);
    return result;
}

/* ---------------------------------------------------------------- worker mode */

static tlsc_tickets_t *tickets;
static tlsc_keyd_t *keyd;
static uv_timer_t stop_timer;

static int on_keyset(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *data)
{
    tlsc_keyproto_keyset_t *held = malloc(sizeof(*held));
    int rc = tlsc_keyd_tickets_apply(kd, set, data);

    if (held != NULL) {
        tlsc_tickets_export(tickets, held);
        held->epoch = set->epoch;
        print_set(rc == 0 ? "applied" : "refused", held);
        OPENSSL_cleanse(held, sizeof(*held));
        free(held);
    }
    return rc;
}

static void on_window(tlsc_keyd_t *kd, uint32_t rotate_sec, uint32_t lifetime_sec, uint32_t lead_sec, void *data)
{
    printf("window rotate=%u lifetime=%u lead=%u\n", (unsigned)rotate_sec, (unsigned)lifetime_sec, (unsigned)lead_sec);
    fflush(stdout);
    tlsc_keyd_tickets_window(kd, rotate_sec, lifetime_sec, lead_sec, data);
}

static void on_stop(uv_timer_t *t)
{
    tlsc_keyd_close(keyd);
    uv_close((uv_handle_t *)t, NULL);
}

/* --hide-epoch: offer nothing, so the daemon cannot know which epoch this worker applied. */
static void held_hidden(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *data)
{
    memset(out, 0, sizeof(*out));
}

static int run_hold(unsigned sec)
{
    uv_loop_t *loop = uv_default_loop();
    tlsc_keyd_options_t o;
    char err[256];

    memset(&o, 0, sizeof(o));
    o.address = address;
    o.secret_file = secret_file;
    o.node = node;
    o.worker = 1;
    o.backoff_min_ms = 100;
    o.backoff_max_ms = 500;
    o.ping_interval_ms = 1000;
    o.on_keyset = on_keyset;
    o.get_held = tlsc_keyd_tickets_held;
    o.on_window = on_window;
    o.data = tickets = tlsc_tickets_new(NULL, NULL);
    if (hide_epoch != 0) {
        tlsc_keyproto_keyset_t *set = calloc(1, sizeof(*set));
        if (set == NULL)
            return 4;
        set->epoch = hide_epoch;
        set->count = 1;
        RAND_bytes(set->keys[0].name, TLSC_KEYPROTO_NAME_LEN);
        RAND_bytes(set->keys[0].secret, TLSC_KEYPROTO_SECRET_LEN);
        set->keys[0].secret[0] |= 1;
        set->keys[0].role = TLSC_KEYPROTO_ROLE_CURRENT;
        set->keys[0].not_before = tlsc_wall_sec() - 1;
        set->keys[0].not_after = tlsc_wall_sec() + 60;
        int rc = tlsc_tickets_apply(tickets, set, 1);
        OPENSSL_cleanse(set, sizeof(*set));
        free(set);
        if (rc != 0)
            return 4;
        o.get_held = held_hidden;
    }
    if (tlsc_keyd_new(loop, &o, &keyd, err, sizeof(err)) != 0) {
        fprintf(stderr, "probe: %s\n", err);
        return 4;
    }
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&stop_timer, on_stop, (uint64_t)sec * 1000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    tlsc_tickets_free(tickets);
    uv_loop_close(loop);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"secret-file", required_argument, NULL, 's'},
        {"node", required_argument, NULL, 'n'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"hold", required_argument, NULL, 'H'},
        {"once", no_argument, NULL, 'o'},
        {"garbage", no_argument, NULL, 'g'},
        {"oversize", no_argument, NULL, 'O'},
        {"bad-frame", no_argument, NULL, 'b'},
        {"worker-control", no_argument, NULL, 'W'},
        {"print-secrets", no_argument, NULL, 'P'},
        {"bind", required_argument, NULL, 'B'},
        {"hello-epoch", required_argument, NULL, 'E'},
        {"offer-keys", required_argument, NULL, 'K'},
        {"offer-life", required_argument, NULL, 'L'},
        {"offer-spread", required_argument, NULL, 'S'},
        {"offer-not-after", required_argument, NULL, 'A'},
        {"hide-epoch", required_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *mode = "once";
    unsigned hold = 0;
    int c;

    signal(SIGPIPE, SIG_IGN);
    tlsc_log_set_tag("tlscache-keyd-probe");
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            address = optarg;
            break;
        case 's':
            secret_file = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 't':
            if (tlsc_parse_uint32(optarg, 1, 600000, &timeout_ms) != 0) {
                fprintf(stderr, "tlscache-keyd-probe: --timeout-ms %s: expected 1..600000\n", optarg);
                return 2;
            }
            break;
        case 'H':
            if (tlsc_parse_uint32(optarg, 0, 86400, &hold) != 0) {
                fprintf(stderr, "tlscache-keyd-probe: --hold %s: expected 0..86400 seconds\n", optarg);
                return 2;
            }
            mode = "hold";
            break;
        case 'o':
            mode = "once";
            break;
        case 'g':
            mode = "garbage";
            break;
        case 'O':
            mode = "oversize";
            break;
        case 'b':
            mode = "bad-frame";
            break;
        case 'W':
            mode = "worker-control";
            break;
        case 'P':
            print_secrets = 1;
            break;
        case 'B':
            bind_ip = optarg;
            break;
        case 'E':
            hello_epoch = strtoull(optarg, NULL, 10);
            break;
        case 'K':
            offer_keys = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'L':
            offer_life = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            offer_spread = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'A':
            offer_not_after = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            hide_epoch = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: tlscache-keyd-probe --connect ADDR --secret-file F [--once [--print-secrets]|--hold "
                            "SEC|--garbage|--oversize|--bad-frame|--worker-control]\n");
            return 4;
        }
    }
    if (address == NULL || (secret_file == NULL && strcmp(mode, "garbage") != 0)) {
        fprintf(stderr, "probe: --connect and --secret-file are required\n");
        return 4;
    }
    if (strcmp(mode, "hold") == 0)
        return run_hold(hold);
    return run_blocking(mode);
}
