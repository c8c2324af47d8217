#include "record.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int tlsc_record_encode_plain(SSL_SESSION *sess, unsigned char **out, size_t *outlen)
{
    unsigned char *buf, *p;
    int n;

    n = i2d_SSL_SESSION(sess, NULL);
    if (n <= 0 || (size_t)n + 1 > TLSC_RECORD_MAX)
        return -1;
    if ((buf = malloc((size_t)n + 1)) == NULL)
        return -1;
    buf[0] = TLSC_RECORD_PLAIN;
    p = buf + 1;
    if (i2d_SSL_SESSION(sess, &p) != n) {
        OPENSSL_cleanse(buf, (size_t)n + 1);
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = (size_t)n + 1;
    return 0;
}

SSL_SESSION *tlsc_record_decode_der(const unsigned char *der, size_t len, const unsigned char *id, size_t id_len, int version)
{
    const unsigned char *p = der, *sid;
    unsigned int sid_len;
    SSL_SESSION *sess;

    if (len == 0 || len > TLSC_RECORD_MAX)
        return NULL;
    if ((sess = d2i_SSL_SESSION(NULL, &p, (long)len)) == NULL)
        return NULL;
    /* Trailing bytes mean the value is not what we wrote. */
    if (p != der + len)
        goto fail;
    sid = SSL_SESSION_get_id(sess, &sid_len);
    if (sid_len != id_len || memcmp(sid, id, id_len) != 0)
        goto fail;
    if (version != 0 && SSL_SESSION_get_protocol_version(sess) != version)
        goto fail;
    return sess;

fail:
    SSL_SESSION_free(sess);
    return NULL;
}
