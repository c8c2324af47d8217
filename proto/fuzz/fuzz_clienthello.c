/*
 * libFuzzer target for the ClientHello pre-parser (proto/clienthello.c). The input is read two
 * ways:
 * - as one extension body, handed to both parsers as is;
 * - as a TLS record holding a ClientHello (the seed corpus has real ones from openssl
 *   s_client): the harness walks it to its extensions, as OpenSSL does before our callback,
 *   and hands each server_name and pre_shared_key body to the parsers in a buffer of exactly
 *   its size, so that AddressSanitizer sees any read past it.
 * Properties: every refusal is TLSC_CH_DECODE_ERROR or TLSC_CH_ILLEGAL_PARAMETER (the alert
 * the worker sends follows from it); a name found is 1..TLSC_SNI_MAX bytes of [a-z0-9._*-] (lowercased); an identity
 * found is non-empty and lies inside the extension, with room for its ticket age.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EXT_SERVER_NAME 0
#define EXT_PSK         41
#define EXT_VERSIONS    43

static void check_sni(const unsigned char *ext, size_t len)
{
    char out[TLSC_SNI_MAX + 2];
    size_t n;

    int rc;

    out[TLSC_SNI_MAX + 1] = 'x';
    if ((rc = tlsc_clienthello_sni(ext, len, out)) != 0) {
        if (rc != TLSC_CH_DECODE_ERROR && rc != TLSC_CH_ILLEGAL_PARAMETER)
            abort();
        return;
    }
    if (out[TLSC_SNI_MAX + 1] != 'x')
        abort(); /* wrote past the documented buffer */
    n = strnlen(out, TLSC_SNI_MAX + 1);
    if (n == 0 || n > TLSC_SNI_MAX || n + 5 > len)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = out[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '*'))
            abort();
    }
}

static void check_psk(const unsigned char *ext, size_t len)
{
    const unsigned char *id = NULL;
    size_t id_len = 0;

    if (tlsc_clienthello_psk_identity(ext, len, &id, &id_len) != 0)
        return;
    /* identities<7..> starts at 2, the identity at 4; its obfuscated_ticket_age follows. */
    if (id != ext + 4 || id_len == 0 || id_len + 4 + 4 > len)
        abort();
    volatile unsigned char sink = id[0] ^ id[id_len - 1]; /* ASan: both ends are readable */
    (void)sink;
}

static void check_versions(const unsigned char *ext, size_t len)
{
    int rc = tlsc_clienthello_offers_tls13(ext, len);

    /* 1 or 0 only for a list of pairs that fills the body exactly. */
    if (rc != TLSC_CH_DECODE_ERROR && (rc < 0 || rc > 1 || len < 3 || ext[0] != len - 1 || len % 2 != 1))
        abort();
}

/* Hands an extension body to the parsers in a heap buffer of exactly its size. */
static void check_ext(unsigned type, const unsigned char *body, size_t len)
{
    unsigned char *copy = malloc(len ? len : 1);

    if (copy == NULL)
        return;
    memcpy(copy, body, len);
    if (type == EXT_SERVER_NAME)
        check_sni(copy, len);
    else if (type == EXT_PSK)
        check_psk(copy, len);
    else if (type == EXT_VERSIONS)
        check_versions(copy, len);
    free(copy);
}

/* A bounded reader over the input: every take fails once the bytes run out. */
typedef struct {
    const unsigned char *p;
    size_t left;
} cursor_t;

static int take(cursor_t *c, size_t n, const unsigned char **out)
{
    if (n > c->left)
        return -1;
    if (out != NULL)
        *out = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

static int take_len(cursor_t *c, size_t width, size_t *n)
{
    const unsigned char *p;

    if (take(c, width, &p) != 0)
        return -1;
    *n = 0;
    for (size_t i = 0; i < width; i++)
        *n = *n << 8 | p[i];
    return 0;
}

/* record header (optional) | handshake header | ClientHello up to its extensions. */
static void walk_client_hello(const unsigned char *data, size_t size)
{
    cursor_t c = {data, size}, ext;
    size_t n;

    if (size >= 5 && data[0] == 0x16 && data[1] == 0x03)
        take(&c, 5, NULL); /* one record; a hello split over records is OpenSSL's business */
    if (c.left < 4 || c.p[0] != 1)
        return;
    take(&c, 1, NULL);
    if (take_len(&c, 3, &n) != 0 || n > c.left)
        return;
    c.left = n;
    if (take(&c, 2 + 32, NULL) != 0 || take_len(&c, 1, &n) != 0 || take(&c, n, NULL) != 0 || take_len(&c, 2, &n) != 0 ||
        take(&c, n, NULL) != 0 || take_len(&c, 1, &n) != 0 || take(&c, n, NULL) != 0 || take_len(&c, 2, &n) != 0 || n > c.left)
        return;
    ext.p = c.p;
    ext.left = n;
    while (ext.left >= 4) {
        const unsigned char *body;
        size_t type, len;

        take_len(&ext, 2, &type);
        take_len(&ext, 2, &len);
        if (take(&ext, len, &body) != 0)
            return;
        check_ext((unsigned)type, body, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536 + 16)
        return 0;
    check_sni(data, size);
    check_psk(data, size);
    check_versions(data, size);
    walk_client_hello(data, size);
    return 0;
}
