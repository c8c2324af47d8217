/*
 * libFuzzer target for the key protocol: the input is fed to a reader in chunks whose sizes
 * come from the input itself, every decoded message is re-encoded and must decode to the same
 * value, and the whole input is also decoded once as a bare body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const tlsc_keyproto_msg_t *m)
{
    static unsigned char buf[TLSC_KEYPROTO_ENCODE_MAX];
    tlsc_keyproto_msg_t again;
    size_t len = 0;

    if (tlsc_keyproto_encode(m, buf, sizeof(buf), &len) != 0)
        abort(); /* whatever decodes must encode */
    if (tlsc_keyproto_decode(buf + TLSC_KEYPROTO_HEADER_LEN, len - TLSC_KEYPROTO_HEADER_LEN, &again) != 0)
        abort();
    if (again.type != m->type)
        abort();
    if (m->type == TLSC_KEYPROTO_KEYSET && memcmp(&again.u.keyset, &m->u.keyset, sizeof(m->u.keyset)) != 0)
        abort();
    if (m->type == TLSC_KEYPROTO_STATUS && memcmp(&again.u.status, &m->u.status, sizeof(m->u.status)) != 0)
        abort();
    if (m->type == TLSC_KEYPROTO_CONTROL && again.u.op != m->u.op)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlsc_keyproto_reader_t *r = tlsc_keyproto_reader_new();
    tlsc_keyproto_msg_t m;
    size_t off = 0;
    int rc = 0;

    if (r == NULL)
        return 0;
    if (size > 0)
        (void)tlsc_keyproto_decode(data, size, &m);
    while (off < size && rc >= 0) {
        size_t chunk = 1 + data[off] % 97;
        if (chunk > size - off)
            chunk = size - off;
        if ((rc = tlsc_keyproto_reader_feed(r, data + off, chunk)) != 0)
            break;
        off += chunk;
        while ((rc = tlsc_keyproto_reader_next(r, &m)) == 1)
            check_roundtrip(&m);
    }
    tlsc_keyproto_reader_free(r);
    return 0;
}
