#include "keyproto.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/ssl.h>

#include "util.h"

/* Encoded sizes. */
#define KEY_WIRE_LEN    (TLSC_KEYPROTO_NAME_LEN + TLSC_KEYPROTO_SECRET_LEN + 1 + 8 + 8)
#define KEYSET_MIN_LEN  (8 + 1)
#define READER_CAP      (TLSC_KEYPROTO_HEADER_LEN + TLSC_KEYPROTO_MAX_FRAME + TLSC_KEYPROTO_READER_FEED_MAX)
#define PSK_IDENTITY    "tlscache-keyd/1"
#define LINK_SUITE      "TLS_AES_256_GCM_SHA384"
#define PLAIN_QUEUE_MAX (4 * TLSC_KEYPROTO_ENCODE_MAX)
#define PAIR_SIZE       65536

const char *tlsc_keyproto_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case TLSC_KEYPROTO_EFRAME:
        return "frame length out of range";
    case TLSC_KEYPROTO_ETYPE:
        return "unknown message type";
    case TLSC_KEYPROTO_EMSG:
        return "malformed message";
    case TLSC_KEYPROTO_ENOBUFS:
        return "buffer full";
    case TLSC_KEYPROTO_ENOMEM:
        return "out of memory";
    case TLSC_KEYPROTO_EAUTH:
        return "TLS handshake failed";
    case TLSC_KEYPROTO_ETLS:
        return "TLS error";
    case TLSC_KEYPROTO_ECLOSED:
        return "closed by peer";
    case TLSC_KEYPROTO_EINVAL:
        return "invalid argument";
    default:
        return "unknown error";
    }
}

/* ================================================================ byte cursor */

/*
 * Reading goes through a cursor whose every take checks the remaining length first, so no
 * decoder line can read past the body whatever the lengths inside it claim.
 */
typedef struct {
    const unsigned char *p;
    size_t left;
    int bad;
} cursor_t;

static const unsigned char *take(cursor_t *c, size_t n)
{
    const unsigned char *p;

    if (c->bad || n > c->left) {
        c->bad = 1;
        return NULL;
    }
    p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint64_t take_be(cursor_t *c, size_t n)
{
    const unsigned char *p = take(c, n);
    uint64_t v = 0;

    if (p == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

typedef struct {
    unsigned char *p;
    size_t left;
    int bad;
} writer_t;

static void put(writer_t *w, const void *src, size_t n)
{
    if (w->bad || n > w->left) {
        w->bad = 1;
        return;
    }
    memcpy(w->p, src, n);
    w->p += n;
    w->left -= n;
}

static void put_be(writer_t *w, uint64_t v, size_t n)
{
    unsigned char b[8];

    for (size_t i = 0; i < n; i++)
        b[n - 1 - i] = (unsigned char)(v >> (8 * i));
    put(w, b, n);
}

/* ================================================================ validation */

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int tlsc_keyproto_keyset_validate(const tlsc_keyproto_keyset_t *set)
{
    if (set->count > TLSC_KEYPROTO_MAX_KEYS)
        return TLSC_KEYPROTO_EMSG;
    for (size_t i = 0; i < set->count; i++) {
        const tlsc_keyproto_key_t *k = &set->keys[i];
        if (k->role < TLSC_KEYPROTO_ROLE_NEXT || k->role > TLSC_KEYPROTO_ROLE_PREVIOUS)
            return TLSC_KEYPROTO_EMSG;
        if (k->not_before >= k->not_after)
            return TLSC_KEYPROTO_EMSG;
        if (all_zero(k->secret, sizeof(k->secret)))
            return TLSC_KEYPROTO_EMSG;
        for (size_t j = 0; j < i; j++)
            if (memcmp(set->keys[j].name, k->name, TLSC_KEYPROTO_NAME_LEN) == 0)
                return TLSC_KEYPROTO_EMSG;
    }
    return 0;
}

int tlsc_keyproto_key_bounded(const tlsc_keyproto_key_t *k, uint64_t now, uint64_t max_life, uint64_t max_ahead)
{
    return k->not_before < k->not_after && k->not_after - k->not_before <= max_life && k->not_before <= now + max_ahead;
}

/* A node name is 1..64 characters of [A-Za-z0-9._:-]: it ends up in logs and Redis keys. */
static int node_valid(const char *s, size_t len)
{
    if (len == 0 || len > TLSC_KEYPROTO_MAX_NODE)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return 1;
}

static int text_valid(const char *s, size_t len)
{
    if (len > TLSC_KEYPROTO_MAX_ERROR_TEXT)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* A window the daemon could run (docs/keys.md): 1 <= lead <= rotate, lifetime >= 1, rotate + lifetime <= 7 days. */
static int window_valid(const tlsc_keyproto_msg_t *m)
{
    uint64_t r = m->u.window.rotate_sec, l = m->u.window.lifetime_sec, lead = m->u.window.lead_sec;

    return r >= 1 && l >= 1 && lead >= 1 && lead <= r && r + l <= 604800;
}

/* A STATUS the daemon could send: known flags, bounded counts, valid roles, times and nodes. */
static int status_valid(const tlsc_keyproto_status_t *st)
{
    uint64_t r = st->rotate_sec, l = st->lifetime_sec, lead = st->lead_sec;

    if (!(r >= 1 && l >= 1 && lead >= 1 && lead <= r && r + l <= 604800))
        return 0;
    if ((st->flags & ~(TLSC_KEYPROTO_STATUS_GRACE | TLSC_KEYPROTO_STATUS_ROTATED)) != 0)
        return 0;
    if (st->nkeys > TLSC_KEYPROTO_MAX_KEYS || st->nworkers > TLSC_KEYPROTO_STATUS_WORKERS || st->nworkers > st->workers_total)
        return 0;
    for (size_t i = 0; i < st->nkeys; i++) {
        const tlsc_keyproto_status_key_t *k = &st->keys[i];
        if (k->role < TLSC_KEYPROTO_ROLE_NEXT || k->role > TLSC_KEYPROTO_ROLE_PREVIOUS || k->not_before >= k->not_after)
            return 0;
    }
    for (size_t i = 0; i < st->nworkers; i++)
        if (!node_valid(st->workers[i].node, strnlen(st->workers[i].node, sizeof(st->workers[i].node))))
            return 0;
    return 1;
}

/* ================================================================ encode */

static void put_status(writer_t *w, const tlsc_keyproto_status_t *st)
{
    put_be(w, st->epoch, 8);
    put_be(w, st->now, 8);
    put_be(w, st->rotate_sec, 4);
    put_be(w, st->lifetime_sec, 4);
    put_be(w, st->lead_sec, 4);
    put_be(w, st->flags, 1);
    put_be(w, st->nkeys, 1);
    for (size_t i = 0; i < st->nkeys; i++) {
        put(w, st->keys[i].tag, TLSC_KEYPROTO_TAG_LEN);
        put_be(w, st->keys[i].role, 1);
        put_be(w, st->keys[i].not_before, 8);
        put_be(w, st->keys[i].not_after, 8);
    }
    put_be(w, st->workers_total, 4);
    put_be(w, st->nworkers, 1);
    for (size_t i = 0; i < st->nworkers; i++) {
        size_t n = strnlen(st->workers[i].node, sizeof(st->workers[i].node));
        put_be(w, n, 1);
        put(w, st->workers[i].node, n);
        put_be(w, st->workers[i].worker, 4);
        put_be(w, st->workers[i].acked_epoch, 8);
    }
}

static void put_keyset(writer_t *w, const tlsc_keyproto_keyset_t *set)
{
    put_be(w, set->epoch, 8);
    put_be(w, set->count, 1);
    for (size_t i = 0; i < set->count; i++) {
        const tlsc_keyproto_key_t *k = &set->keys[i];
        put(w, k->name, sizeof(k->name));
        put(w, k->secret, sizeof(k->secret));
        put_be(w, k->role, 1);
        put_be(w, k->not_before, 8);
        put_be(w, k->not_after, 8);
    }
}

int tlsc_keyproto_encode(const tlsc_keyproto_msg_t *msg, unsigned char *out, size_t cap, size_t *len)
{
    writer_t w = {out, cap, 0};
    size_t n;

    if (cap < TLSC_KEYPROTO_HEADER_LEN + 1)
        return TLSC_KEYPROTO_ENOBUFS;
    w.p += TLSC_KEYPROTO_HEADER_LEN;
    w.left -= TLSC_KEYPROTO_HEADER_LEN;
    put_be(&w, msg->type, 1);
    switch (msg->type) {
    case TLSC_KEYPROTO_HELLO:
        n = strnlen(msg->u.hello.node, sizeof(msg->u.hello.node));
        if (!node_valid(msg->u.hello.node, n) || msg->u.hello.version_min > msg->u.hello.version_max ||
            msg->u.hello.version_min == 0 || tlsc_keyproto_keyset_validate(&msg->u.hello.held) != 0)
            return TLSC_KEYPROTO_EMSG;
        put_be(&w, msg->u.hello.version_min, 2);
        put_be(&w, msg->u.hello.version_max, 2);
        put_be(&w, msg->u.hello.worker, 4);
        put_be(&w, n, 1);
        put(&w, msg->u.hello.node, n);
        put_keyset(&w, &msg->u.hello.held);
        break;
    case TLSC_KEYPROTO_KEYSET:
        if (tlsc_keyproto_keyset_validate(&msg->u.keyset) != 0)
            return TLSC_KEYPROTO_EMSG;
        put_keyset(&w, &msg->u.keyset);
        break;
    case TLSC_KEYPROTO_ACK:
        put_be(&w, msg->u.epoch, 8);
        break;
    case TLSC_KEYPROTO_PING:
    case TLSC_KEYPROTO_PONG:
        put_be(&w, msg->u.nonce, 8);
        break;
    case TLSC_KEYPROTO_WINDOW:
        if (!window_valid(msg))
            return TLSC_KEYPROTO_EMSG;
        put_be(&w, msg->u.window.rotate_sec, 4);
        put_be(&w, msg->u.window.lifetime_sec, 4);
        put_be(&w, msg->u.window.lead_sec, 4);
        break;
    case TLSC_KEYPROTO_ERROR:
        n = strnlen(msg->u.error.text, sizeof(msg->u.error.text));
        if (!text_valid(msg->u.error.text, n))
            return TLSC_KEYPROTO_EMSG;
        put_be(&w, msg->u.error.code, 2);
        put_be(&w, n, 1);
        put(&w, msg->u.error.text, n);
        break;
    case TLSC_KEYPROTO_CONTROL:
        if (msg->u.op != TLSC_KEYPROTO_OP_STATUS && msg->u.op != TLSC_KEYPROTO_OP_ROTATE)
            return TLSC_KEYPROTO_EMSG;
        put_be(&w, msg->u.op, 1);
        break;
    case TLSC_KEYPROTO_STATUS:
        if (!status_valid(&msg->u.status))
            return TLSC_KEYPROTO_EMSG;
        put_status(&w, &msg->u.status);
        break;
    default:
        return TLSC_KEYPROTO_ETYPE;
    }
    if (w.bad)
        return TLSC_KEYPROTO_ENOBUFS;
    n = cap - w.left; /* whole frame */
    writer_t h = {out, TLSC_KEYPROTO_HEADER_LEN, 0};
    put_be(&h, n - TLSC_KEYPROTO_HEADER_LEN, 4);
    *len = n;
    return 0;
}

/* ================================================================ decode */

static void take_keyset(cursor_t *c, tlsc_keyproto_keyset_t *set)
{
    const unsigned char *p;

    set->epoch = take_be(c, 8);
    set->count = (size_t)take_be(c, 1);
    if (set->count > TLSC_KEYPROTO_MAX_KEYS) {
        c->bad = 1;
        return;
    }
    for (size_t i = 0; i < set->count && !c->bad; i++) {
        tlsc_keyproto_key_t *k = &set->keys[i];
        if ((p = take(c, sizeof(k->name))) == NULL)
            return;
        memcpy(k->name, p, sizeof(k->name));
        if ((p = take(c, sizeof(k->secret))) == NULL)
            return;
        memcpy(k->secret, p, sizeof(k->secret));
        k->role = (uint8_t)take_be(c, 1);
        k->not_before = take_be(c, 8);
        k->not_after = take_be(c, 8);
    }
    if (!c->bad && tlsc_keyproto_keyset_validate(set) != 0)
        c->bad = 1;
}

static void take_status(cursor_t *c, tlsc_keyproto_status_t *st)
{
    const unsigned char *p;
    size_t n;

    st->epoch = take_be(c, 8);
    st->now = take_be(c, 8);
    st->rotate_sec = (uint32_t)take_be(c, 4);
    st->lifetime_sec = (uint32_t)take_be(c, 4);
    st->lead_sec = (uint32_t)take_be(c, 4);
    st->flags = (uint8_t)take_be(c, 1);
    st->nkeys = (size_t)take_be(c, 1);
    if (st->nkeys > TLSC_KEYPROTO_MAX_KEYS) {
        c->bad = 1;
        return;
    }
    for (size_t i = 0; i < st->nkeys && !c->bad; i++) {
        if ((p = take(c, TLSC_KEYPROTO_TAG_LEN)) == NULL)
            return;
        memcpy(st->keys[i].tag, p, TLSC_KEYPROTO_TAG_LEN);
        st->keys[i].role = (uint8_t)take_be(c, 1);
        st->keys[i].not_before = take_be(c, 8);
        st->keys[i].not_after = take_be(c, 8);
    }
    st->workers_total = (uint32_t)take_be(c, 4);
    st->nworkers = (size_t)take_be(c, 1);
    if (st->nworkers > TLSC_KEYPROTO_STATUS_WORKERS) {
        c->bad = 1;
        return;
    }
    for (size_t i = 0; i < st->nworkers && !c->bad; i++) {
        n = (size_t)take_be(c, 1);
        if ((p = take(c, n)) == NULL || !node_valid((const char *)p, n)) {
            c->bad = 1;
            return;
        }
        memcpy(st->workers[i].node, p, n);
        st->workers[i].worker = (uint32_t)take_be(c, 4);
        st->workers[i].acked_epoch = take_be(c, 8);
    }
    if (!c->bad && !status_valid(st))
        c->bad = 1;
}

int tlsc_keyproto_decode(const unsigned char *body, size_t len, tlsc_keyproto_msg_t *msg)
{
    cursor_t c = {body, len, 0};
    const unsigned char *p;
    size_t n;
    int type;

    memset(msg, 0, sizeof(*msg));
    if (len < 1 || len > TLSC_KEYPROTO_MAX_FRAME)
        return TLSC_KEYPROTO_EFRAME;
    type = (int)take_be(&c, 1);
    msg->type = (tlsc_keyproto_type_t)type;
    switch (type) {
    case TLSC_KEYPROTO_HELLO:
        msg->u.hello.version_min = (uint16_t)take_be(&c, 2);
        msg->u.hello.version_max = (uint16_t)take_be(&c, 2);
        msg->u.hello.worker = (uint32_t)take_be(&c, 4);
        n = (size_t)take_be(&c, 1);
        if ((p = take(&c, n)) == NULL || !node_valid((const char *)p, n))
            goto bad;
        memcpy(msg->u.hello.node, p, n);
        if (msg->u.hello.version_min == 0 || msg->u.hello.version_min > msg->u.hello.version_max)
            goto bad;
        take_keyset(&c, &msg->u.hello.held);
        break;
    case TLSC_KEYPROTO_KEYSET:
        take_keyset(&c, &msg->u.keyset);
        break;
    case TLSC_KEYPROTO_ACK:
        msg->u.epoch = take_be(&c, 8);
        break;
    case TLSC_KEYPROTO_PING:
    case TLSC_KEYPROTO_PONG:
        msg->u.nonce = take_be(&c, 8);
        break;
    case TLSC_KEYPROTO_WINDOW:
        msg->u.window.rotate_sec = (uint32_t)take_be(&c, 4);
        msg->u.window.lifetime_sec = (uint32_t)take_be(&c, 4);
        msg->u.window.lead_sec = (uint32_t)take_be(&c, 4);
        if (!window_valid(msg))
            goto bad;
        break;
    case TLSC_KEYPROTO_ERROR:
        msg->u.error.code = (uint16_t)take_be(&c, 2);
        n = (size_t)take_be(&c, 1);
        if ((p = take(&c, n)) == NULL || !text_valid((const char *)p, n))
            goto bad;
        memcpy(msg->u.error.text, p, n);
        break;
    case TLSC_KEYPROTO_CONTROL:
        msg->u.op = (uint8_t)take_be(&c, 1);
        if (msg->u.op != TLSC_KEYPROTO_OP_STATUS && msg->u.op != TLSC_KEYPROTO_OP_ROTATE)
            goto bad;
        break;
    case TLSC_KEYPROTO_STATUS:
        take_status(&c, &msg->u.status);
        break;
    default:
        tlsc_keyproto_msg_wipe(msg);
        return TLSC_KEYPROTO_ETYPE;
    }
    if (c.bad || c.left != 0)
        goto bad;
    return 0;

bad:
    tlsc_keyproto_msg_wipe(msg);
    return TLSC_KEYPROTO_EMSG;
}

void tlsc_keyproto_msg_wipe(tlsc_keyproto_msg_t *msg)
{
    OPENSSL_cleanse(msg, sizeof(*msg));
}

/* ================================================================ reader */

struct tlsc_keyproto_reader_s {
    unsigned char *buf; /* READER_CAP bytes */
    size_t len;         /* buffered */
    int err;            /* sticky */
};

tlsc_keyproto_reader_t *tlsc_keyproto_reader_new(void)
{
    tlsc_keyproto_reader_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if ((r->buf = malloc(READER_CAP)) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void tlsc_keyproto_reader_free(tlsc_keyproto_reader_t *r)
{
    if (r == NULL)
        return;
    tlsc_secure_free(r->buf, READER_CAP);
    free(r);
}

int tlsc_keyproto_reader_feed(tlsc_keyproto_reader_t *r, const void *buf, size_t len)
{
    if (r->err)
        return r->err;
    if (len > READER_CAP - r->len)
        return r->err = TLSC_KEYPROTO_ENOBUFS;
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
    return 0;
}

int tlsc_keyproto_reader_next(tlsc_keyproto_reader_t *r, tlsc_keyproto_msg_t *msg)
{
    size_t flen, total;
    int rc;

    if (r->err)
        return r->err;
    if (r->len < TLSC_KEYPROTO_HEADER_LEN)
        return 0;
    /* The length is judged before any of the body is waited for. */
    flen = (size_t)r->buf[0] << 24 | (size_t)r->buf[1] << 16 | (size_t)r->buf[2] << 8 | r->buf[3];
    if (flen < 1 || flen > TLSC_KEYPROTO_MAX_FRAME)
        return r->err = TLSC_KEYPROTO_EFRAME;
    total = TLSC_KEYPROTO_HEADER_LEN + flen;
    if (r->len < total)
        return 0;
    if ((rc = tlsc_keyproto_decode(r->buf + TLSC_KEYPROTO_HEADER_LEN, flen, msg)) != 0)
        return r->err = rc;
    /* Consumed bytes may be key secrets: slide the rest down and wipe the tail. */
    memmove(r->buf, r->buf + total, r->len - total);
    OPENSSL_cleanse(r->buf + (r->len - total), total);
    r->len -= total;
    return 1;
}

/* ================================================================ keys */

static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt, size_t salt_len, const char *info,
                unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx;
    OSSL_PARAM params[5], *p = params;
    int ok;

    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
        return TLSC_KEYPROTO_EINVAL;
    kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (kctx == NULL)
        return TLSC_KEYPROTO_ENOMEM;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
    EVP_KDF_CTX_free(kctx);
    return ok ? 0 : TLSC_KEYPROTO_EINVAL;
}

int tlsc_keyproto_derive(const unsigned char secret[TLSC_KEYPROTO_SECRET_LEN], const unsigned char name[TLSC_KEYPROTO_NAME_LEN],
                         const char *info, unsigned char *out, size_t outlen)
{
    return hkdf(secret, TLSC_KEYPROTO_SECRET_LEN, name, TLSC_KEYPROTO_NAME_LEN, info, out, outlen);
}

void tlsc_keyproto_name_tag_raw(const unsigned char name[TLSC_KEYPROTO_NAME_LEN], unsigned char out[TLSC_KEYPROTO_TAG_LEN])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(name, TLSC_KEYPROTO_NAME_LEN, md, &mdlen, EVP_sha256(), NULL) != 1)
        memset(md, 0, sizeof(md));
    memcpy(out, md, TLSC_KEYPROTO_TAG_LEN);
}

void tlsc_keyproto_name_tag(const unsigned char name[TLSC_KEYPROTO_NAME_LEN], char out[9])
{
    unsigned char tag[TLSC_KEYPROTO_TAG_LEN];

    tlsc_keyproto_name_tag_raw(name, tag);
    tlsc_hex_encode(out, tag, TLSC_KEYPROTO_TAG_LEN);
}

/*
 * A secret that is not random hex is refused, with the one command that makes a good one: a
 * passphrase (or any text) would let one recorded link handshake be brute-forced offline.
 * Random bytes are recognised by what text never is: 32 random bytes are all printable with
 * probability (95/256)^32 < 10^-13, and show fewer than 16 distinct values far less often.
 */
#define SECRET_HOWTO "make one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE; chmod 600 FILE"

static int looks_random(const unsigned char *p, size_t len)
{
    unsigned char seen[256] = {0};
    size_t distinct = 0, printable = 0;

    for (size_t i = 0; i < len; i++) {
        distinct += !seen[p[i]];
        seen[p[i]] = 1;
        printable += p[i] >= 0x20 && p[i] <= 0x7e;
    }
    return distinct >= 16 && printable < len;
}

int tlsc_keyproto_psk_load(const char *path, unsigned char psk[TLSC_KEYPROTO_PSK_LEN], char *err, size_t errlen)
{
    char *data = NULL, why[512];
    unsigned char *raw = NULL;
    size_t len = 0, stripped, rawlen;
    int rc, n;

    /* Refuses a file group or others may read, with the chmod to run, as ssh does. */
    if (tlsc_read_secret_file(path, 4096, &data, &len, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "secret file %s", why);
        return TLSC_KEYPROTO_EINVAL;
    }
    /* Hex digits only, one trailing newline (LF or CRLF) allowed: what docs tell users to make. */
    stripped = len;
    if (stripped > 0 && data[stripped - 1] == '\n')
        stripped--;
    if (stripped > 0 && data[stripped - 1] == '\r')
        stripped--;
    if ((raw = malloc(len + 1)) == NULL) {
        tlsc_secure_free(data, len + 1);
        snprintf(err, errlen, "secret file %s: out of memory", path);
        return TLSC_KEYPROTO_ENOMEM;
    }
    n = tlsc_hex_decode(raw, len, data, stripped);
    tlsc_secure_free(data, len + 1);
    rawlen = n > 0 ? (size_t)n : 0;
    if (n < 0 || rawlen < 32 || !looks_random(raw, rawlen)) {
        tlsc_secure_free(raw, len + 1);
        snprintf(err, errlen, "secret file %s: %s; it must hold at least 32 random bytes as hex (64+ digits); " SECRET_HOWTO, path,
                 n < 0         ? "not hex digits"
                 : rawlen < 32 ? "too short"
                               : "does not look random");
        return TLSC_KEYPROTO_EINVAL;
    }
    rc = hkdf(raw, rawlen, NULL, 0, "tlscache keyd link psk v1", psk, TLSC_KEYPROTO_PSK_LEN);
    tlsc_secure_free(raw, len + 1);
    if (rc != 0)
        snprintf(err, errlen, "secret file %s: key derivation failed", path);
    return rc;
}

/* ================================================================ link */

struct tlsc_keyproto_link_s {
    SSL_CTX *ctx;
    int is_server;
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
};

struct tlsc_keyproto_conn_s {
    SSL *ssl;
    BIO *net; /* our end of the BIO pair: ciphertext to/from the socket */
    tlsc_keyproto_reader_t *reader;
    unsigned char *queue; /* plaintext written before the handshake completed */
    size_t queued;
    int established, err;
    char reason[128];
};

static int link_index = -1;

static SSL_SESSION *psk_session(SSL *ssl, const tlsc_keyproto_link_t *link)
{
    static const unsigned char suite[2] = {0x13, 0x02}; /* TLS_AES_256_GCM_SHA384 */
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, suite);
    SSL_SESSION *sess;

    if (cipher == NULL || (sess = SSL_SESSION_new()) == NULL)
        return NULL;
    if (SSL_SESSION_set1_master_key(sess, link->psk, sizeof(link->psk)) != 1 || SSL_SESSION_set_cipher(sess, cipher) != 1 ||
        SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION) != 1) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

static int on_psk_find(SSL *ssl, const unsigned char *identity, size_t identity_len, SSL_SESSION **sess)
{
    const tlsc_keyproto_link_t *link = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), link_index);

    *sess = NULL;
    /* An unknown identity continues without a PSK; with no certificate that fails the handshake. */
    if (link == NULL || identity_len != strlen(PSK_IDENTITY) || memcmp(identity, PSK_IDENTITY, identity_len) != 0)
        return 1;
    *sess = psk_session(ssl, link);
    return *sess != NULL;
}

static int on_psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess)
{
    const tlsc_keyproto_link_t *link = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), link_index);

    if (link == NULL || (*sess = psk_session(ssl, link)) == NULL)
        return 0;
    *id = (const unsigned char *)PSK_IDENTITY;
    *idlen = strlen(PSK_IDENTITY);
    return 1;
}

int tlsc_keyproto_link_new(int is_server, const unsigned char psk[TLSC_KEYPROTO_PSK_LEN], tlsc_keyproto_link_t **out, char *err,
                           size_t errlen)
{
    tlsc_keyproto_link_t *link;
    SSL_CTX *ctx;

    if (link_index < 0 && (link_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
        goto fail;
    /* The PSK opens the cluster's key link: locked, out of core dumps, wiped when dropped. */
    if ((link = tlsc_locked_alloc(sizeof(*link))) == NULL)
        goto fail;
    if ((ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method())) == NULL)
        goto fail_link;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, LINK_SUITE) != 1 || SSL_CTX_set_num_tickets(ctx, 0) != 1)
        goto fail_ctx;
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (is_server)
        SSL_CTX_set_psk_find_session_callback(ctx, on_psk_find);
    else
        SSL_CTX_set_psk_use_session_callback(ctx, on_psk_use);
    SSL_CTX_set_ex_data(ctx, link_index, link);
    memcpy(link->psk, psk, sizeof(link->psk));
    link->ctx = ctx;
    link->is_server = is_server;
    *out = link;
    return 0;

fail_ctx:
    SSL_CTX_free(ctx);
fail_link:
    tlsc_locked_free(link, sizeof(*link));
fail:
    snprintf(err, errlen, "key link TLS context: %s", ERR_reason_error_string(ERR_peek_last_error()));
    ERR_clear_error();
    return TLSC_KEYPROTO_EINVAL;
}

int tlsc_keyproto_link_is_server(const tlsc_keyproto_link_t *link)
{
    return link->is_server;
}

void tlsc_keyproto_link_free(tlsc_keyproto_link_t *link)
{
    if (link == NULL)
        return;
    /* Connections hold a reference on the SSL_CTX, not on `link`; they never need the PSK again
     * once their handshake is done, and the ex_data is cleared so a late callback finds none. */
    SSL_CTX_set_ex_data(link->ctx, link_index, NULL);
    SSL_CTX_free(link->ctx);
    tlsc_locked_free(link, sizeof(*link));
}

static void set_reason(tlsc_keyproto_conn_t *c, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    snprintf(c->reason, sizeof(c->reason), "%s%s%s", what, r ? ": " : "", r ? r : "");
    ERR_clear_error();
}

tlsc_keyproto_conn_t *tlsc_keyproto_conn_new(tlsc_keyproto_link_t *link)
{
    tlsc_keyproto_conn_t *c;
    BIO *inner = NULL;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    if ((c->reader = tlsc_keyproto_reader_new()) == NULL || (c->queue = malloc(PLAIN_QUEUE_MAX)) == NULL)
        goto fail;
    if ((c->ssl = SSL_new(link->ctx)) == NULL)
        goto fail;
    if (BIO_new_bio_pair(&inner, PAIR_SIZE, &c->net, PAIR_SIZE) != 1)
        goto fail;
    SSL_set_bio(c->ssl, inner, inner);
    if (link->is_server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
        SSL_do_handshake(c->ssl); /* writes the ClientHello into the pair */
        ERR_clear_error();
    }
    return c;

fail:
    ERR_clear_error();
    tlsc_keyproto_conn_free(c);
    return NULL;
}

void tlsc_keyproto_conn_free(tlsc_keyproto_conn_t *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl); /* frees the inner BIO */
    BIO_free(c->net);
    tlsc_keyproto_reader_free(c->reader);
    tlsc_secure_free(c->queue, PLAIN_QUEUE_MAX);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

static int write_plain(tlsc_keyproto_conn_t *c, const unsigned char *p, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t n = 0;
        if (SSL_write_ex(c->ssl, p + done, len - done, &n) != 1) {
            /* The BIO pair's buffer (17 KiB) is full: the caller must drain with take(). */
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                return TLSC_KEYPROTO_ENOBUFS;
            set_reason(c, "TLS write");
            return c->err = TLSC_KEYPROTO_ETLS;
        }
        done += n;
    }
    return 0;
}

static int flush_queue(tlsc_keyproto_conn_t *c)
{
    int rc;

    if (!c->established || c->queued == 0)
        return 0;
    rc = write_plain(c, c->queue, c->queued);
    OPENSSL_cleanse(c->queue, c->queued);
    c->queued = 0;
    return rc;
}

int tlsc_keyproto_conn_recv(tlsc_keyproto_conn_t *c, const void *buf, size_t len)
{
    unsigned char plain[4096];
    size_t n;
    int rc, e;

    if (c->err)
        return c->err;
    if (len > TLSC_KEYPROTO_CONN_RECV_MAX)
        return TLSC_KEYPROTO_EINVAL;
    /* OpenSSL drains the pair below down to less than one record, so this always fits. */
    if (len > 0 && BIO_write(c->net, buf, (int)len) != (int)len)
        return c->err = TLSC_KEYPROTO_ENOBUFS;
    if (!c->established) {
        int hs = SSL_do_handshake(c->ssl);
        if (hs != 1) {
            e = SSL_get_error(c->ssl, hs);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            set_reason(c, "TLS handshake");
            return c->err = TLSC_KEYPROTO_EAUTH;
        }
        c->established = 1;
        if ((rc = flush_queue(c)) != 0)
            return rc;
    }
    /* At most (pair size / plain) + 1 useful passes; the bound is a backstop. */
    for (int i = 0; i < 1024; i++) {
        if (SSL_read_ex(c->ssl, plain, sizeof(plain), &n) != 1) {
            e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            if (e == SSL_ERROR_ZERO_RETURN)
                return c->err = TLSC_KEYPROTO_ECLOSED;
            set_reason(c, "TLS read");
            return c->err = TLSC_KEYPROTO_ETLS;
        }
        rc = tlsc_keyproto_reader_feed(c->reader, plain, n);
        OPENSSL_cleanse(plain, n);
        if (rc != 0)
            return c->err = rc;
    }
    return 0;
}

int tlsc_keyproto_conn_next(tlsc_keyproto_conn_t *c, tlsc_keyproto_msg_t *msg)
{
    int rc = tlsc_keyproto_reader_next(c->reader, msg);

    if (rc < 0)
        c->err = rc;
    return rc;
}

int tlsc_keyproto_conn_send_raw(tlsc_keyproto_conn_t *c, const void *buf, size_t len)
{
    if (c->err)
        return c->err;
    if (!c->established) {
        if (len > PLAIN_QUEUE_MAX - c->queued)
            return TLSC_KEYPROTO_ENOBUFS;
        memcpy(c->queue + c->queued, buf, len);
        c->queued += len;
        return 0;
    }
    return write_plain(c, buf, len);
}

int tlsc_keyproto_conn_send(tlsc_keyproto_conn_t *c, const tlsc_keyproto_msg_t *msg)
{
    unsigned char frame[TLSC_KEYPROTO_ENCODE_MAX];
    size_t len;
    int rc;

    if ((rc = tlsc_keyproto_encode(msg, frame, sizeof(frame), &len)) == 0)
        rc = tlsc_keyproto_conn_send_raw(c, frame, len);
    OPENSSL_cleanse(frame, sizeof(frame));
    return rc;
}

size_t tlsc_keyproto_conn_pending(const tlsc_keyproto_conn_t *c)
{
    return BIO_ctrl_pending(c->net);
}

size_t tlsc_keyproto_conn_take(tlsc_keyproto_conn_t *c, void *out, size_t cap)
{
    int n;

    if (cap > 1 << 20)
        cap = 1 << 20;
    n = BIO_read(c->net, out, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

int tlsc_keyproto_conn_established(const tlsc_keyproto_conn_t *c)
{
    return c->established;
}

const char *tlsc_keyproto_conn_reason(const tlsc_keyproto_conn_t *c)
{
    return c->reason[0] ? c->reason : tlsc_keyproto_strerror(c->err);
}
