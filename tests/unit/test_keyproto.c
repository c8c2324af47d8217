/*
 * The key protocol codec, reader and PSK link: roundtrips, hostile inputs, wrong secrets; and
 * the same link carried over libuv streams by common/keylink.c.
 */
#include <ctype.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <uv.h>

#include "keylink.h"
#include "keyproto.h"
#include "test.h"

static void make_keyset(tlsc_keyproto_keyset_t *set, uint64_t epoch, size_t count)
{
    memset(set, 0, sizeof(*set));
    set->epoch = epoch;
    set->count = count;
    for (size_t i = 0; i < count; i++) {
        RAND_bytes(set->keys[i].name, TLSC_KEYPROTO_NAME_LEN);
        RAND_bytes(set->keys[i].secret, TLSC_KEYPROTO_SECRET_LEN);
        set->keys[i].secret[0] |= 1;
        set->keys[i].role = (uint8_t)(1 + i % 3);
        set->keys[i].not_before = 1000 + i;
        set->keys[i].not_after = 5000 + i;
    }
}

static size_t encode(const tlsc_keyproto_msg_t *m, unsigned char *out)
{
    size_t len = 0;

    ASSERT_EQ(tlsc_keyproto_encode(m, out, TLSC_KEYPROTO_ENCODE_MAX, &len), 0);
    return len;
}

TEST(every_message_roundtrips)
{
    tlsc_keyproto_msg_t in, out;
    unsigned char buf[TLSC_KEYPROTO_ENCODE_MAX];
    size_t len;

    memset(&in, 0, sizeof(in));
    in.type = TLSC_KEYPROTO_HELLO;
    in.u.hello.version_min = 1;
    in.u.hello.version_max = 3;
    in.u.hello.worker = 7;
    strcpy(in.u.hello.node, "node-a.example:1");
    make_keyset(&in.u.hello.held, 42, TLSC_KEYPROTO_MAX_KEYS);
    len = encode(&in, buf);
    ASSERT(len <= TLSC_KEYPROTO_ENCODE_MAX);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), 0);
    ASSERT_EQ(out.type, TLSC_KEYPROTO_HELLO);
    ASSERT_EQ(out.u.hello.worker, 7);
    ASSERT_EQ(out.u.hello.version_max, 3);
    ASSERT_STREQ(out.u.hello.node, "node-a.example:1");
    ASSERT(memcmp(&in.u.hello.held, &out.u.hello.held, sizeof(in.u.hello.held)) == 0);

    memset(&in, 0, sizeof(in));
    in.type = TLSC_KEYPROTO_KEYSET;
    make_keyset(&in.u.keyset, 9, 3);
    len = encode(&in, buf);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), 0);
    ASSERT(memcmp(&in.u.keyset, &out.u.keyset, sizeof(in.u.keyset)) == 0);

    int types[3] = {TLSC_KEYPROTO_ACK, TLSC_KEYPROTO_PING, TLSC_KEYPROTO_PONG};
    for (int i = 0; i < 3; i++) {
        memset(&in, 0, sizeof(in));
        in.type = (tlsc_keyproto_type_t)types[i];
        in.u.nonce = 0x0102030405060708ull;
        len = encode(&in, buf);
        ASSERT_EQ(len, 4 + 1 + 8);
        ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), 0);
        ASSERT_EQ(out.u.nonce, 0x0102030405060708ull);
    }

    memset(&in, 0, sizeof(in));
    in.type = TLSC_KEYPROTO_ERROR;
    in.u.error.code = TLSC_KEYPROTO_ERR_VERSION;
    strcpy(in.u.error.text, "no common version");
    len = encode(&in, buf);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), 0);
    ASSERT_EQ(out.u.error.code, TLSC_KEYPROTO_ERR_VERSION);
    ASSERT_STREQ(out.u.error.text, "no common version");
}

/* Protocol 2's WINDOW carries the daemon's window; one the daemon could not run does not decode. */
TEST(window_roundtrips_and_an_impossible_window_is_refused)
{
    tlsc_keyproto_msg_t in, out;
    unsigned char buf[TLSC_KEYPROTO_ENCODE_MAX];
    size_t len;

    memset(&in, 0, sizeof(in));
    in.type = TLSC_KEYPROTO_WINDOW;
    in.u.window.rotate_sec = 3600;
    in.u.window.lifetime_sec = 7200;
    in.u.window.lead_sec = 1800;
    len = encode(&in, buf);
    ASSERT_EQ(len, 4 + 1 + 12);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), 0);
    ASSERT_EQ(out.type, TLSC_KEYPROTO_WINDOW);
    ASSERT_EQ(out.u.window.rotate_sec, 3600);
    ASSERT_EQ(out.u.window.lifetime_sec, 7200);
    ASSERT_EQ(out.u.window.lead_sec, 1800);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4 - 1, &out), TLSC_KEYPROTO_EMSG);
    buf[4 + 1 + 11] = 0x11; /* lead 0x0e11 = 3601 > rotate */
    buf[4 + 1 + 10] = 0x0e;
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), TLSC_KEYPROTO_EMSG);
    in.u.window.lifetime_sec = 604800; /* rotate + lifetime over 7 days */
    ASSERT_EQ(tlsc_keyproto_encode(&in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    in.u.window.lifetime_sec = 0;
    ASSERT_EQ(tlsc_keyproto_encode(&in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
}

/* tlscache-ctl's CONTROL and the daemon's STATUS: the largest STATUS fits one encode buffer. */
static void make_status(tlsc_keyproto_status_t *st)
{
    memset(st, 0, sizeof(*st));
    st->epoch = 1764000000123ull;
    st->now = 1764000000;
    st->rotate_sec = 3600;
    st->lifetime_sec = 3600;
    st->lead_sec = 1800;
    st->flags = TLSC_KEYPROTO_STATUS_ROTATED;
    st->nkeys = TLSC_KEYPROTO_MAX_KEYS;
    for (size_t i = 0; i < st->nkeys; i++) {
        RAND_bytes(st->keys[i].tag, TLSC_KEYPROTO_TAG_LEN);
        st->keys[i].role = (uint8_t)(1 + i % 3);
        st->keys[i].not_before = 1764000000 + i;
        st->keys[i].not_after = 1764007200 + i;
    }
    st->workers_total = 1000;
    st->nworkers = TLSC_KEYPROTO_STATUS_WORKERS;
    for (size_t i = 0; i < st->nworkers; i++) {
        memset(st->workers[i].node, 'n', TLSC_KEYPROTO_MAX_NODE); /* the longest name */
        st->workers[i].worker = (uint32_t)i;
        st->workers[i].acked_epoch = st->epoch - (i & 1);
    }
}

TEST(control_and_status_roundtrip_and_bounds_are_refused)
{
    tlsc_keyproto_msg_t *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
    unsigned char buf[TLSC_KEYPROTO_ENCODE_MAX];
    size_t len;

    ASSERT(in != NULL && out != NULL);
    in->type = TLSC_KEYPROTO_CONTROL;
    in->u.op = TLSC_KEYPROTO_OP_ROTATE;
    len = encode(in, buf);
    ASSERT_EQ(len, 4 + 1 + 1);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, out), 0);
    ASSERT_EQ(out->type, TLSC_KEYPROTO_CONTROL);
    ASSERT_EQ(out->u.op, TLSC_KEYPROTO_OP_ROTATE);
    buf[5] = 3; /* no such request */
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, out), TLSC_KEYPROTO_EMSG);
    in->u.op = 0;
    ASSERT_EQ(tlsc_keyproto_encode(in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);

    memset(in, 0, sizeof(*in));
    in->type = TLSC_KEYPROTO_STATUS;
    make_status(&in->u.status);
    len = encode(in, buf);
    ASSERT(len <= TLSC_KEYPROTO_ENCODE_MAX);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, out), 0);
    ASSERT_EQ(out->type, TLSC_KEYPROTO_STATUS);
    ASSERT_EQ(memcmp(&out->u.status, &in->u.status, sizeof(in->u.status)), 0);
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4 - 1, out), TLSC_KEYPROTO_EMSG); /* short */

    /* What the encoder refuses, the decoder would too. */
    in->u.status.nworkers = TLSC_KEYPROTO_STATUS_WORKERS + 1;
    ASSERT_EQ(tlsc_keyproto_encode(in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_status(&in->u.status);
    in->u.status.workers_total = 3; /* fewer than listed */
    ASSERT_EQ(tlsc_keyproto_encode(in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_status(&in->u.status);
    in->u.status.keys[5].not_after = in->u.status.keys[5].not_before;
    ASSERT_EQ(tlsc_keyproto_encode(in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_status(&in->u.status);
    in->u.status.flags = 0x80;
    ASSERT_EQ(tlsc_keyproto_encode(in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_status(&in->u.status);
    in->u.status.workers[0].node[3] = ' ';
    ASSERT_EQ(tlsc_keyproto_encode(in, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);

    /* A key count past 64 on the wire is refused before any key is read. */
    make_status(&in->u.status);
    in->u.status.nkeys = 0;
    in->u.status.nworkers = 0;
    len = encode(in, buf);
    buf[4 + 1 + 29] = TLSC_KEYPROTO_MAX_KEYS + 1;
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, out), TLSC_KEYPROTO_EMSG);
    free(in);
    free(out);
}

TEST(encoder_refuses_what_the_decoder_would)
{
    tlsc_keyproto_msg_t m;
    unsigned char buf[TLSC_KEYPROTO_ENCODE_MAX];
    size_t len;

    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_KEYSET;
    make_keyset(&m.u.keyset, 1, 2);
    memset(m.u.keyset.keys[1].secret, 0, TLSC_KEYPROTO_SECRET_LEN); /* zero key */
    ASSERT_EQ(tlsc_keyproto_encode(&m, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_keyset(&m.u.keyset, 1, 2);
    memcpy(m.u.keyset.keys[1].name, m.u.keyset.keys[0].name, 16); /* repeated name */
    ASSERT_EQ(tlsc_keyproto_encode(&m, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_keyset(&m.u.keyset, 1, 2);
    m.u.keyset.keys[0].not_after = m.u.keyset.keys[0].not_before; /* empty validity */
    ASSERT_EQ(tlsc_keyproto_encode(&m, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_keyset(&m.u.keyset, 1, 2);
    m.u.keyset.keys[0].role = 4;
    ASSERT_EQ(tlsc_keyproto_encode(&m, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
    make_keyset(&m.u.keyset, 1, 2);
    ASSERT_EQ(tlsc_keyproto_encode(&m, buf, 20, &len), TLSC_KEYPROTO_ENOBUFS);

    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_HELLO;
    m.u.hello.version_min = m.u.hello.version_max = 1;
    strcpy(m.u.hello.node, "bad node"); /* space */
    ASSERT_EQ(tlsc_keyproto_encode(&m, buf, sizeof(buf), &len), TLSC_KEYPROTO_EMSG);
}

TEST(decoder_rejects_hostile_bodies)
{
    tlsc_keyproto_msg_t in, out;
    unsigned char buf[TLSC_KEYPROTO_ENCODE_MAX];
    size_t len;

    memset(&in, 0, sizeof(in));
    in.type = TLSC_KEYPROTO_KEYSET;
    make_keyset(&in.u.keyset, 5, 4);
    len = encode(&in, buf);
    /* Every truncation fails, and so does one trailing byte. */
    for (size_t cut = 1; cut < len - 4; cut++)
        ASSERT(tlsc_keyproto_decode(buf + 4, cut, &out) < 0);
    buf[len] = 0;
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4 + 1, &out), TLSC_KEYPROTO_EMSG);
    /* A count above the maximum, and a count larger than the body. */
    buf[4 + 1 + 8] = TLSC_KEYPROTO_MAX_KEYS + 1;
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), TLSC_KEYPROTO_EMSG);
    buf[4 + 1 + 8] = 5;
    ASSERT_EQ(tlsc_keyproto_decode(buf + 4, len - 4, &out), TLSC_KEYPROTO_EMSG);
    /* Unknown type, empty body. */
    unsigned char t = 99;
    ASSERT_EQ(tlsc_keyproto_decode(&t, 1, &out), TLSC_KEYPROTO_ETYPE);
    ASSERT_EQ(tlsc_keyproto_decode(&t, 0, &out), TLSC_KEYPROTO_EFRAME);
    /* An ERROR whose text length runs past the body or holds control bytes. */
    unsigned char e1[] = {TLSC_KEYPROTO_ERROR, 0, 1, 10, 'a', 'b'};
    ASSERT_EQ(tlsc_keyproto_decode(e1, sizeof(e1), &out), TLSC_KEYPROTO_EMSG);
    unsigned char e2[] = {TLSC_KEYPROTO_ERROR, 0, 1, 2, 'a', '\n'};
    ASSERT_EQ(tlsc_keyproto_decode(e2, sizeof(e2), &out), TLSC_KEYPROTO_EMSG);
    /* A HELLO with an empty node or a reversed version range. */
    unsigned char h1[] = {TLSC_KEYPROTO_HELLO, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(tlsc_keyproto_decode(h1, sizeof(h1), &out), TLSC_KEYPROTO_EMSG);
    unsigned char h2[] = {TLSC_KEYPROTO_HELLO, 0, 2, 0, 1, 0, 0, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(tlsc_keyproto_decode(h2, sizeof(h2), &out), TLSC_KEYPROTO_EMSG);
    h2[2] = 1;
    ASSERT_EQ(tlsc_keyproto_decode(h2, sizeof(h2), &out), 0);
}

TEST(reader_handles_byte_at_a_time_and_many_frames)
{
    tlsc_keyproto_reader_t *r = tlsc_keyproto_reader_new();
    tlsc_keyproto_msg_t in, out;
    unsigned char buf[3 * TLSC_KEYPROTO_ENCODE_MAX];
    size_t len = 0;
    int got = 0;

    memset(&in, 0, sizeof(in));
    in.type = TLSC_KEYPROTO_KEYSET;
    make_keyset(&in.u.keyset, 77, 10);
    len += encode(&in, buf);
    in.type = TLSC_KEYPROTO_PING;
    in.u.nonce = 3;
    len += encode(&in, buf + len);
    for (size_t i = 0; i < len; i++) {
        ASSERT_EQ(tlsc_keyproto_reader_feed(r, buf + i, 1), 0);
        int rc;
        while ((rc = tlsc_keyproto_reader_next(r, &out)) == 1)
            got++;
        ASSERT_EQ(rc, 0);
    }
    ASSERT_EQ(got, 2);
    ASSERT_EQ(out.type, TLSC_KEYPROTO_PING);
    tlsc_keyproto_reader_free(r);
}

TEST(reader_rejects_oversized_frame_before_its_body)
{
    tlsc_keyproto_reader_t *r = tlsc_keyproto_reader_new();
    tlsc_keyproto_msg_t out;
    unsigned char big[4] = {0x00, 0x01, 0x00, 0x01}; /* 65537 */
    unsigned char zero[4] = {0, 0, 0, 0};

    ASSERT_EQ(tlsc_keyproto_reader_feed(r, big, 4), 0);
    ASSERT_EQ(tlsc_keyproto_reader_next(r, &out), TLSC_KEYPROTO_EFRAME);
    ASSERT_EQ(tlsc_keyproto_reader_next(r, &out), TLSC_KEYPROTO_EFRAME); /* sticky */
    ASSERT_EQ(tlsc_keyproto_reader_feed(r, zero, 4), TLSC_KEYPROTO_EFRAME);
    tlsc_keyproto_reader_free(r);

    r = tlsc_keyproto_reader_new();
    ASSERT_EQ(tlsc_keyproto_reader_feed(r, zero, 4), 0);
    ASSERT_EQ(tlsc_keyproto_reader_next(r, &out), TLSC_KEYPROTO_EFRAME);
    tlsc_keyproto_reader_free(r);

    /* A maximal frame is accepted up to the limit; overfeeding is refused, not overflowed. */
    r = tlsc_keyproto_reader_new();
    unsigned char *junk = calloc(1, 200000);
    ASSERT(tlsc_keyproto_reader_feed(r, junk, 200000) == TLSC_KEYPROTO_ENOBUFS);
    tlsc_keyproto_reader_free(r);
    free(junk);
}

TEST(derive_separates_uses_and_keys)
{
    unsigned char secret[32], name[16], a[32], b[32], c[32];
    char tag[9];

    RAND_bytes(secret, 32);
    RAND_bytes(name, 16);
    ASSERT_EQ(tlsc_keyproto_derive(secret, name, TLSC_KEYPROTO_INFO_TICKET_AES, a, 32), 0);
    ASSERT_EQ(tlsc_keyproto_derive(secret, name, TLSC_KEYPROTO_INFO_TICKET_HMAC, b, 32), 0);
    ASSERT(memcmp(a, b, 32) != 0);
    ASSERT_EQ(tlsc_keyproto_derive(secret, name, TLSC_KEYPROTO_INFO_TICKET_AES, c, 32), 0);
    ASSERT(memcmp(a, c, 32) == 0);
    name[0] ^= 1;
    ASSERT_EQ(tlsc_keyproto_derive(secret, name, TLSC_KEYPROTO_INFO_TICKET_AES, c, 32), 0);
    ASSERT(memcmp(a, c, 32) != 0);
    tlsc_keyproto_name_tag(name, tag);
    ASSERT_EQ(strlen(tag), 8);
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fwrite(data, 1, len, f);
    return fclose(f);
}

TEST(secret_file_hex_and_raw_and_too_short)
{
    char path[] = "/tmp/tlsc-keyproto-secret-XXXXXX", err[256];
    unsigned char raw[32], psk1[32], psk2[32];
    char hex[67], upper[67];
    int fd = mkstemp(path);

    ASSERT(fd >= 0);
    RAND_bytes(raw, 32);
    raw[0] = 0xff; /* not printable: a random secret is never all text */
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", raw[i]);
    for (int i = 0; i < 64; i++)
        upper[i] = (char)toupper((unsigned char)hex[i]);
    hex[64] = '\n';
    ASSERT_EQ(write_file(path, hex, 64), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk1, err, sizeof(err)), 0);
    ASSERT_EQ(write_file(path, hex, 65), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk2, err, sizeof(err)), 0);
    ASSERT(memcmp(psk1, psk2, 32) == 0); /* a trailing newline does not change the secret */
    upper[64] = '\r', upper[65] = '\n';
    ASSERT_EQ(write_file(path, upper, 66), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk2, err, sizeof(err)), 0);
    ASSERT(memcmp(psk1, psk2, 32) == 0);
    ASSERT_EQ(write_file(path, hex, 62), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk2, err, sizeof(err)), TLSC_KEYPROTO_EINVAL);
    ASSERT(strstr(err, path) != NULL);
    /* A secret others may read is refused, with the chmod to run (as ssh does with keys). */
    ASSERT_EQ(write_file(path, hex, 65), 0);
    ASSERT_EQ(chmod(path, 0644), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk2, err, sizeof(err)), TLSC_KEYPROTO_EINVAL);
    ASSERT(strstr(err, "chmod 600") != NULL && strstr(err, path) != NULL);
    ASSERT_EQ(chmod(path, 0600), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk2, err, sizeof(err)), 0);
    unlink(path);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk2, err, sizeof(err)), TLSC_KEYPROTO_EINVAL);
    close(fd);
}

/*
 * Only what the docs tell users to make opens the link: 32+ random bytes as hex. A passphrase
 * (which one recorded handshake would let anyone brute-force offline), raw bytes, hex of a
 * passphrase and hex with a low-entropy pattern are refused with one line saying how to make one.
 */
TEST(secret_file_that_is_not_random_hex_is_refused_with_how_to_make_one)
{
    char path[] = "/tmp/tlsc-keyproto-secret-XXXXXX", err[512], hex[2 * 48 + 2];
    static const char pass[] = "correct horse battery staple and then some more words\n";
    unsigned char raw[32], psk[32];
    int fd = mkstemp(path);

    ASSERT(fd >= 0);
    RAND_bytes(raw, 32);
    raw[0] = 0xff;
    const struct {
        const char *what;
        const void *data;
        size_t len;
    } bad[] = {
        {"passphrase", pass, sizeof(pass) - 1},
        {"raw random bytes", raw, sizeof(raw)},
        {"hex of a passphrase", "636f727265637420686f727365206261747465727920737461706c6520616e64207468656e\n", 75},
        {"repeated hex pattern", "00112233001122330011223300112233001122330011223300112233001122330011223300\n", 75},
        {"hex with inner space", "00 11", 5},
        {"empty", "", 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fprintf(stderr, "[%s] ", bad[i].what);
        ASSERT_EQ(write_file(path, bad[i].data, bad[i].len), 0);
        ASSERT_EQ(tlsc_keyproto_psk_load(path, psk, err, sizeof(err)), TLSC_KEYPROTO_EINVAL);
        ASSERT(strstr(err, path) != NULL);
        ASSERT(strstr(err, "head -c 32 /dev/urandom | od -An -tx1") != NULL);
        ASSERT(strchr(err, '\n') == NULL);
    }
    /* 48 random bytes as hex: longer is fine. */
    unsigned char more[48];
    RAND_bytes(more, sizeof(more));
    more[0] = 0x80;
    for (size_t i = 0; i < sizeof(more); i++)
        sprintf(hex + 2 * i, "%02x", more[i]);
    ASSERT_EQ(write_file(path, hex, 96), 0);
    ASSERT_EQ(tlsc_keyproto_psk_load(path, psk, err, sizeof(err)), 0);
    unlink(path);
    close(fd);
}

/* Moves ciphertext both ways until neither side has anything to say. */
static int pump(tlsc_keyproto_conn_t *a, tlsc_keyproto_conn_t *b)
{
    unsigned char buf[TLSC_KEYPROTO_CONN_RECV_MAX];
    int rc = 0;

    for (int i = 0; i < 100; i++) {
        size_t n1 = tlsc_keyproto_conn_take(a, buf, sizeof(buf));
        if (n1 > 0 && (rc = tlsc_keyproto_conn_recv(b, buf, n1)) != 0)
            return rc;
        size_t n2 = tlsc_keyproto_conn_take(b, buf, sizeof(buf));
        if (n2 > 0 && (rc = tlsc_keyproto_conn_recv(a, buf, n2)) != 0)
            return rc;
        if (n1 == 0 && n2 == 0)
            break;
    }
    return 0;
}

/* The link's PSK is held like every other secret: out of core dumps, locked when the limit allows. */
TEST(link_psk_lives_in_locked_undumpable_memory)
{
    unsigned char psk[32];
    char err[256], flags[256];
    tlsc_keyproto_link_t *links[2];
    struct rlimit rl;
    long locked_kb = 0;

    RAND_bytes(psk, 32);
    ASSERT_EQ(tlsc_keyproto_link_new(1, psk, &links[0], err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_keyproto_link_new(0, psk, &links[1], err, sizeof(err)), 0);
    for (int i = 0; i < 2; i++) {
        /* The opaque pointer is the start of the struct that holds the PSK. */
        ASSERT_EQ(tlsc_test_vmflags(links[i], flags, sizeof(flags), &locked_kb), 0);
        if (!tlsc_test_has_flag(flags, "dd"))
            fprintf(stderr, "\n    link %d VmFlags:%s", i, flags);
        ASSERT(tlsc_test_has_flag(flags, "dd"));
        if (TLSC_TEST_MLOCK_WORKS && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= (1 << 20)) {
            ASSERT(tlsc_test_has_flag(flags, "lo"));
            ASSERT(locked_kb > 0);
        }
    }
    tlsc_keyproto_link_free(links[0]);
    tlsc_keyproto_link_free(links[1]);
}

TEST(link_with_same_psk_carries_messages)
{
    unsigned char psk[32];
    char err[256];
    tlsc_keyproto_link_t *sl, *cl;
    tlsc_keyproto_msg_t m, out;

    RAND_bytes(psk, 32);
    ASSERT_EQ(tlsc_keyproto_link_new(1, psk, &sl, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_keyproto_link_new(0, psk, &cl, err, sizeof(err)), 0);
    tlsc_keyproto_conn_t *s = tlsc_keyproto_conn_new(sl), *c = tlsc_keyproto_conn_new(cl);
    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_KEYSET;
    make_keyset(&m.u.keyset, 3, TLSC_KEYPROTO_MAX_KEYS);
    ASSERT_EQ(tlsc_keyproto_conn_send(c, &m), 0); /* queued before the handshake */
    ASSERT_EQ(pump(c, s), 0);
    ASSERT(tlsc_keyproto_conn_established(s) && tlsc_keyproto_conn_established(c));
    ASSERT_EQ(tlsc_keyproto_conn_next(s, &out), 1);
    ASSERT(memcmp(&m.u.keyset, &out.u.keyset, sizeof(m.u.keyset)) == 0);
    /* Many frames in a row, drained as they come. */
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(tlsc_keyproto_conn_send(s, &m), 0);
        ASSERT_EQ(pump(s, c), 0);
        ASSERT_EQ(tlsc_keyproto_conn_next(c, &out), 1);
        ASSERT_EQ(tlsc_keyproto_conn_next(c, &out), 0);
    }
    tlsc_keyproto_conn_free(s);
    tlsc_keyproto_conn_free(c);
    tlsc_keyproto_link_free(sl);
    tlsc_keyproto_link_free(cl);
}

TEST(link_with_wrong_psk_fails_handshake_and_leaks_nothing)
{
    unsigned char psk1[32], psk2[32];
    char err[256];
    tlsc_keyproto_link_t *sl, *cl;
    tlsc_keyproto_msg_t m, out;

    RAND_bytes(psk1, 32);
    RAND_bytes(psk2, 32);
    ASSERT_EQ(tlsc_keyproto_link_new(1, psk1, &sl, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_keyproto_link_new(0, psk2, &cl, err, sizeof(err)), 0);
    tlsc_keyproto_conn_t *s = tlsc_keyproto_conn_new(sl), *c = tlsc_keyproto_conn_new(cl);
    memset(&m, 0, sizeof(m));
    m.type = TLSC_KEYPROTO_PING;
    ASSERT_EQ(tlsc_keyproto_conn_send(c, &m), 0);
    ASSERT(pump(c, s) == TLSC_KEYPROTO_EAUTH);
    ASSERT(!tlsc_keyproto_conn_established(s));
    ASSERT(tlsc_keyproto_conn_next(s, &out) <= 0);
    tlsc_keyproto_conn_free(s);
    tlsc_keyproto_conn_free(c);

    /* Plain garbage instead of a ClientHello fails the handshake too. */
    s = tlsc_keyproto_conn_new(sl);
    ASSERT_EQ(tlsc_keyproto_conn_recv(s, "GET / HTTP/1.1\r\n\r\n", 18), TLSC_KEYPROTO_EAUTH);
    tlsc_keyproto_conn_free(s);
    tlsc_keyproto_link_free(sl);
    tlsc_keyproto_link_free(cl);
}

/* ================================ keylink over a socketpair ================================ */

typedef struct {
    uv_pipe_t pipe;
    tlsc_keylink_t *kl;
    int msgs, last_type, fails, where, code;
    int free_on_msg; /* frees its link from inside the message callback */
} end_t;

static void on_end_msg(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m, void *data)
{
    end_t *e = data;
    tlsc_keyproto_msg_t ping;

    e->msgs++;
    e->last_type = (int)m->type;
    if (m->type == TLSC_KEYPROTO_HELLO) { /* the "daemon" answers with a PING */
        memset(&ping, 0, sizeof(ping));
        ping.type = TLSC_KEYPROTO_PING;
        ping.u.nonce = 42;
        ASSERT_EQ(tlsc_keylink_send(kl, &ping), 0);
    }
    if (e->free_on_msg) {
        tlsc_keylink_free(kl);
        e->kl = NULL;
    }
}

static void on_end_fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code, void *data)
{
    end_t *e = data;

    e->fails++;
    e->where = (int)where;
    e->code = code;
}

/* Two ends of a socketpair on one loop: `srv` with server_psk, `cli` with client_psk. */
static void pair_open(uv_loop_t *loop, end_t *srv, end_t *cli, const unsigned char *server_psk, const unsigned char *client_psk,
                      tlsc_keyproto_link_t **sl, tlsc_keyproto_link_t **cl)
{
    char err[256];
    int sv[2];

    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ASSERT_EQ(tlsc_keyproto_link_new(1, server_psk, sl, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_keyproto_link_new(0, client_psk, cl, err, sizeof(err)), 0);
    ASSERT_EQ(uv_pipe_init(loop, &srv->pipe, 0), 0);
    ASSERT_EQ(uv_pipe_init(loop, &cli->pipe, 0), 0);
    ASSERT_EQ(uv_pipe_open(&srv->pipe, sv[0]), 0);
    ASSERT_EQ(uv_pipe_open(&cli->pipe, sv[1]), 0);
    ASSERT((srv->kl = tlsc_keylink_start((uv_stream_t *)&srv->pipe, *sl, on_end_msg, on_end_fail, srv)) != NULL);
    ASSERT((cli->kl = tlsc_keylink_start((uv_stream_t *)&cli->pipe, *cl, on_end_msg, on_end_fail, cli)) != NULL);
}

/* Runs the loop until cond() or 3 s. */
static int run_until(uv_loop_t *loop, int (*cond)(const end_t *, const end_t *), const end_t *a, const end_t *b)
{
    uint64_t until;

    uv_update_time(loop);
    until = uv_now(loop) + 3000;
    while (!cond(a, b) && uv_now(loop) < until)
        uv_run(loop, UV_RUN_NOWAIT), usleep(1000), uv_update_time(loop);
    return cond(a, b);
}

static void pair_close(uv_loop_t *loop, end_t *srv, end_t *cli, tlsc_keyproto_link_t *sl, tlsc_keyproto_link_t *cl)
{
    tlsc_keylink_free(srv->kl);
    tlsc_keylink_free(cli->kl);
    uv_close((uv_handle_t *)&srv->pipe, NULL);
    uv_close((uv_handle_t *)&cli->pipe, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    tlsc_keyproto_link_free(sl);
    tlsc_keyproto_link_free(cl);
    ASSERT_EQ(uv_loop_close(loop), 0);
}

static int ping_arrived(const end_t *srv, const end_t *cli)
{
    return cli->last_type == TLSC_KEYPROTO_PING;
}

static int both_failed(const end_t *srv, const end_t *cli)
{
    return srv->fails > 0 && cli->fails > 0;
}

static int server_failed(const end_t *srv, const end_t *cli)
{
    return srv->fails > 0;
}

TEST(keylink_carries_messages_both_ways_and_frees_from_its_callback)
{
    uv_loop_t loop;
    end_t srv = {0}, cli = {0};
    tlsc_keyproto_link_t *sl, *cl;
    tlsc_keyproto_msg_t hello;
    unsigned char psk[32];

    RAND_bytes(psk, 32);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    pair_open(&loop, &srv, &cli, psk, psk, &sl, &cl);
    memset(&hello, 0, sizeof(hello));
    hello.type = TLSC_KEYPROTO_HELLO;
    hello.u.hello.version_min = hello.u.hello.version_max = 1;
    snprintf(hello.u.hello.node, sizeof(hello.u.hello.node), "w");
    ASSERT_EQ(tlsc_keylink_send(cli.kl, &hello), 0); /* queued until the handshake is done */
    cli.free_on_msg = 1;
    ASSERT(run_until(&loop, ping_arrived, &srv, &cli));
    ASSERT_EQ(srv.msgs, 1);
    ASSERT_EQ(cli.msgs, 1);
    ASSERT(cli.kl == NULL); /* freed inside its callback, after it returned */
    ASSERT(tlsc_keylink_established(srv.kl));
    ASSERT_EQ(srv.fails + cli.fails, 0);
    pair_close(&loop, &srv, &cli, sl, cl);
}

TEST(keylink_with_a_wrong_secret_fails_with_eauth_once_and_delivers_nothing)
{
    uv_loop_t loop;
    end_t srv = {0}, cli = {0};
    tlsc_keyproto_link_t *sl, *cl;
    tlsc_keyproto_msg_t hello;
    unsigned char psk1[32], psk2[32];

    RAND_bytes(psk1, 32);
    RAND_bytes(psk2, 32);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    pair_open(&loop, &srv, &cli, psk1, psk2, &sl, &cl);
    memset(&hello, 0, sizeof(hello));
    hello.type = TLSC_KEYPROTO_HELLO;
    hello.u.hello.version_min = hello.u.hello.version_max = 1;
    snprintf(hello.u.hello.node, sizeof(hello.u.hello.node), "w");
    ASSERT_EQ(tlsc_keylink_send(cli.kl, &hello), 0);
    ASSERT(run_until(&loop, both_failed, &srv, &cli));
    ASSERT_EQ(srv.where, TLSC_KEYLINK_TLS);
    ASSERT_EQ(srv.code, TLSC_KEYPROTO_EAUTH);
    ASSERT(tlsc_keylink_reason(srv.kl) != NULL);
    ASSERT_EQ(srv.msgs + cli.msgs, 0);
    ASSERT_EQ(srv.fails, 1);
    ASSERT_EQ(cli.fails, 1);
    pair_close(&loop, &srv, &cli, sl, cl);
}

TEST(keylink_peer_hanging_up_is_a_read_failure_with_eof)
{
    uv_loop_t loop;
    end_t srv = {0}, cli = {0};
    tlsc_keyproto_link_t *sl, *cl;
    unsigned char psk[32];

    RAND_bytes(psk, 32);
    ASSERT_EQ(uv_loop_init(&loop), 0);
    pair_open(&loop, &srv, &cli, psk, psk, &sl, &cl);
    tlsc_keylink_free(cli.kl);
    cli.kl = NULL;
    uv_close((uv_handle_t *)&cli.pipe, NULL);
    ASSERT(run_until(&loop, server_failed, &srv, &cli));
    ASSERT_EQ(srv.where, TLSC_KEYLINK_READ);
    ASSERT_EQ(srv.code, UV_EOF);
    ASSERT_STREQ(tlsc_keylink_strerror(TLSC_KEYLINK_READ, UV_EOF), "closed by the peer");
    tlsc_keylink_free(srv.kl);
    srv.kl = NULL;
    uv_close((uv_handle_t *)&srv.pipe, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    tlsc_keyproto_link_free(sl);
    tlsc_keyproto_link_free(cl);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as every program that writes to sockets: a hung-up peer is EPIPE */
    RUN(every_message_roundtrips);
    RUN(window_roundtrips_and_an_impossible_window_is_refused);
    RUN(control_and_status_roundtrip_and_bounds_are_refused);
    RUN(encoder_refuses_what_the_decoder_would);
    RUN(decoder_rejects_hostile_bodies);
    RUN(reader_handles_byte_at_a_time_and_many_frames);
    RUN(reader_rejects_oversized_frame_before_its_body);
    RUN(derive_separates_uses_and_keys);
    RUN(secret_file_hex_and_raw_and_too_short);
    RUN(secret_file_that_is_not_random_hex_is_refused_with_how_to_make_one);
    RUN(link_psk_lives_in_locked_undumpable_memory);
    RUN(link_with_same_psk_carries_messages);
    RUN(link_with_wrong_psk_fails_handshake_and_leaks_nothing);
    RUN(keylink_carries_messages_both_ways_and_frees_from_its_callback);
    RUN(keylink_with_a_wrong_secret_fails_with_eauth_once_and_delivers_nothing);
    RUN(keylink_peer_hanging_up_is_a_read_failure_with_eof);
    TEST_DONE();
}
