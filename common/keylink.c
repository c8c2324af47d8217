/* This file's one job: carry the key protocol's TLS link over a libuv stream, for both ends. */
#include "keylink.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct tlsc_keylink_s {
    uv_stream_t *stream;
    tlsc_keyproto_link_t *link;
    tlsc_keyproto_conn_t *tls; /* server side: made when the peer first speaks */
    tlsc_keylink_msg_cb on_msg;
    tlsc_keylink_fail_cb on_fail;
    void *data;
    unsigned in_cb; /* inside on_read: tlsc_keylink_free defers the free to the way out */
    int failed;     /* the fail callback ran: nothing else will */
    int dead;       /* tlsc_keylink_free was called */
    uint64_t bytes_in;
};

/*
 * Ciphertext is read into one buffer per thread: each read is fed to its session and wiped
 * before on_read returns, so the links of one loop can share it (the daemon may hold a
 * thousand links; a buffer each would be 16 MiB).
 */
static _Thread_local unsigned char rbuf[TLSC_KEYPROTO_CONN_RECV_MAX];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);

static void destroy(tlsc_keylink_t *kl)
{
    tlsc_keyproto_conn_free(kl->tls); /* wipes the session and its reader */
    free(kl);
}

/*
 * The TLS session (an SSL, a frame reader, buffers: a few hundred KiB) is made only once it is
 * needed: at start for a client, which speaks first, and at the peer's first bytes for a
 * server, so a connection that never speaks costs the daemon almost nothing.
 */
static int ensure_tls(tlsc_keylink_t *kl)
{
    if (kl->tls == NULL && (kl->tls = tlsc_keyproto_conn_new(kl->link)) == NULL)
        return UV_ENOMEM;
    return 0;
}

/* Writes whatever ciphertext the session has ready: handshake flights, alerts, frames. */
static int flush(tlsc_keylink_t *kl)
{
    size_t n;

    if (kl->tls == NULL)
        return 0;
    /* Bounded: each pass drains up to 64 KiB of a pair that holds at most 64 KiB. */
    for (int i = 0; i < 4 && (n = tlsc_keyproto_conn_pending(kl->tls)) > 0; i++) {
        uv_write_t *req = malloc(sizeof(*req) + n);
        unsigned char *bytes;
        uv_buf_t buf;
        int rc;

        if (req == NULL)
            return UV_ENOMEM;
        bytes = (unsigned char *)(req + 1);
        buf = uv_buf_init((char *)bytes, (unsigned)tlsc_keyproto_conn_take(kl->tls, bytes, n));
        if ((rc = uv_write(req, kl->stream, &buf, 1, on_write)) != 0) {
            free(req);
            return rc;
        }
    }
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    free(req); /* ciphertext only: nothing to wipe; a failed write shows on the read side too */
}

static void fail(tlsc_keylink_t *kl, tlsc_keylink_where_t where, int code)
{
    if (kl->failed || kl->dead)
        return;
    kl->failed = 1;
    uv_read_stop(kl->stream);
    kl->on_fail(kl, where, code, kl->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init((char *)rbuf, sizeof(rbuf));
}

/* Ciphertext in: advance the handshake, answer it, then hand out every whole message. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tlsc_keylink_t *kl = s->data;
    tlsc_keyproto_msg_t *m;
    int rc, wrc;

    if (kl == NULL || kl->dead || kl->failed || nread == 0)
        return;
    kl->in_cb++;
    if (nread < 0) {
        fail(kl, TLSC_KEYLINK_READ, (int)nread);
        goto out;
    }
    kl->bytes_in += (uint64_t)nread;
    if (ensure_tls(kl) != 0) {
        OPENSSL_cleanse(buf->base, (size_t)nread);
        fail(kl, TLSC_KEYLINK_TLS, TLSC_KEYPROTO_ENOMEM);
        goto out;
    }
    rc = tlsc_keyproto_conn_recv(kl->tls, buf->base, (size_t)nread);
    OPENSSL_cleanse(buf->base, (size_t)nread);
    wrc = flush(kl); /* handshake replies, or the alert that says why we hang up */
    if (rc != 0) {
        fail(kl, TLSC_KEYLINK_TLS, rc);
        goto out;
    }
    if (wrc != 0) {
        fail(kl, TLSC_KEYLINK_WRITE, wrc);
        goto out;
    }
    if ((m = malloc(sizeof(*m))) == NULL) {
        fail(kl, TLSC_KEYLINK_FRAME, TLSC_KEYPROTO_ENOMEM);
        goto out;
    }
    /* Bounded by the bytes just fed; stops as soon as a callback gives up on the link. */
    while (!kl->dead && !kl->failed && (rc = tlsc_keyproto_conn_next(kl->tls, m)) == 1) {
        kl->on_msg(kl, m, kl->data);
        tlsc_keyproto_msg_wipe(m);
    }
    tlsc_keyproto_msg_wipe(m);
    free(m);
    if (rc < 0)
        fail(kl, TLSC_KEYLINK_FRAME, rc);
out:
    if (--kl->in_cb == 0 && kl->dead)
        destroy(kl);
}

tlsc_keylink_t *tlsc_keylink_start(uv_stream_t *stream, tlsc_keyproto_link_t *link, tlsc_keylink_msg_cb on_msg,
                                   tlsc_keylink_fail_cb on_fail, void *data)
{
    tlsc_keylink_t *kl;

    if (on_msg == NULL || on_fail == NULL || (kl = calloc(1, sizeof(*kl))) == NULL)
        return NULL;
    kl->link = link;
    if (!tlsc_keyproto_link_is_server(link) && ensure_tls(kl) != 0)
        goto fail;
    kl->stream = stream;
    kl->on_msg = on_msg;
    kl->on_fail = on_fail;
    kl->data = data;
    stream->data = kl;
    if (uv_read_start(stream, on_alloc, on_read) != 0 || flush(kl) != 0)
        goto fail_stream;
    return kl;

fail_stream:
    uv_read_stop(stream);
    stream->data = NULL;
    tlsc_keyproto_conn_free(kl->tls);
fail:
    free(kl);
    return NULL;
}

int tlsc_keylink_send(tlsc_keylink_t *kl, const tlsc_keyproto_msg_t *m)
{
    int rc;

    if (kl->dead)
        return UV_ENOTCONN; /* after a failure it still may say why (an ERROR frame) */
    if ((rc = ensure_tls(kl)) != 0)
        return rc;
    if ((rc = tlsc_keyproto_conn_send(kl->tls, m)) != 0)
        return rc == TLSC_KEYPROTO_ENOMEM ? UV_ENOMEM : UV_EINVAL;
    return flush(kl);
}

int tlsc_keylink_established(const tlsc_keylink_t *kl)
{
    return kl->tls != NULL && tlsc_keyproto_conn_established(kl->tls);
}

uint64_t tlsc_keylink_bytes_in(const tlsc_keylink_t *kl)
{
    return kl->bytes_in;
}

const char *tlsc_keylink_reason(const tlsc_keylink_t *kl)
{
    return kl->tls != NULL ? tlsc_keyproto_conn_reason(kl->tls) : "nothing received";
}

const char *tlsc_keylink_strerror(tlsc_keylink_where_t where, int code)
{
    switch (where) {
    case TLSC_KEYLINK_READ:
        return code == UV_EOF ? "closed by the peer" : uv_strerror(code);
    case TLSC_KEYLINK_WRITE:
        return uv_strerror(code);
    case TLSC_KEYLINK_TLS:
    case TLSC_KEYLINK_FRAME:
        return tlsc_keyproto_strerror(code);
    }
    return "unknown failure";
}

void tlsc_keylink_free(tlsc_keylink_t *kl)
{
    if (kl == NULL || kl->dead)
        return;
    kl->dead = 1;
    uv_read_stop(kl->stream);
    kl->stream->data = NULL;
    if (kl->in_cb == 0)
        destroy(kl);
}
