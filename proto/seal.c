#include "seal.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Feeds the AAD to a GCM context: the header, then each bound field with its length. */
/* Fetched once: EVP_aes_256_gcm() would make OpenSSL 3 look the cipher up on every record. */
static const EVP_CIPHER *gcm(void)
{
    static EVP_CIPHER *fetched; /* process-wide, never freed */

    if (fetched == NULL)
        fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    return fetched;
}

static int add_aad(EVP_CIPHER_CTX *ctx, const unsigned char *header, const tlsc_seal_aad_t *aad)
{
    const char *fields[2] = {aad->redis_key ? aad->redis_key : "", aad->sni ? aad->sni : ""};
    unsigned char b[2];
    int n;

    if (EVP_CipherUpdate(ctx, NULL, &n, header, TLSC_SEAL_HEADER) != 1)
        return -1;
    for (int i = 0; i < 2; i++) {
        size_t len = strlen(fields[i]);
        if (len > 0xffff)
            return -1;
        b[0] = (unsigned char)(len >> 8);
        b[1] = (unsigned char)len;
        if (EVP_CipherUpdate(ctx, NULL, &n, b, 2) != 1 ||
            (len > 0 && EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)fields[i], (int)len) != 1))
            return -1;
    }
    b[0] = (unsigned char)(aad->tls_version >> 8);
    b[1] = (unsigned char)aad->tls_version;
    return EVP_CipherUpdate(ctx, NULL, &n, b, 2) == 1 ? 0 : -1;
}

static int aad_ok(const tlsc_seal_aad_t *aad)
{
    return aad != NULL && (aad->redis_key == NULL || strlen(aad->redis_key) <= 0xffff) &&
           (aad->sni == NULL || strlen(aad->sni) <= 0xffff);
}

int tlsc_seal(const unsigned char key[TLSC_SEAL_KEY_LEN], const unsigned char name[TLSC_SEAL_NAME_LEN], const tlsc_seal_aad_t *aad,
              const unsigned char *plain, size_t plain_len, unsigned char *out, size_t cap, size_t *out_len)
{
    EVP_CIPHER_CTX *ctx;
    unsigned char *nonce = out + 1 + TLSC_SEAL_NAME_LEN;
    int n, rc = TLSC_SEAL_ECRYPTO;

    if (!aad_ok(aad) || plain_len > TLSC_SEAL_MAX_PLAIN)
        return TLSC_SEAL_EINVAL;
    if (cap < plain_len + TLSC_SEAL_OVERHEAD)
        return TLSC_SEAL_ENOBUFS;
    out[0] = TLSC_SEAL_VERSION;
    memcpy(out + 1, name, TLSC_SEAL_NAME_LEN);
    if (RAND_bytes(nonce, TLSC_SEAL_NONCE_LEN) != 1)
        return TLSC_SEAL_ECRYPTO;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        return TLSC_SEAL_ECRYPTO;
    if (EVP_EncryptInit_ex2(ctx, gcm(), key, nonce, NULL) != 1 || add_aad(ctx, out, aad) != 0)
        goto done;
    if (plain_len > 0 && EVP_EncryptUpdate(ctx, out + TLSC_SEAL_HEADER, &n, plain, (int)plain_len) != 1)
        goto done;
    if (EVP_EncryptFinal_ex(ctx, out + TLSC_SEAL_HEADER + plain_len, &n) != 1)
        goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TLSC_SEAL_TAG_LEN, out + TLSC_SEAL_HEADER + plain_len) != 1)
        goto done;
    *out_len = plain_len + TLSC_SEAL_OVERHEAD;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int tlsc_seal_key_name(const unsigned char *rec, size_t len, unsigned char name[TLSC_SEAL_NAME_LEN])
{
    if (len < TLSC_SEAL_OVERHEAD || rec[0] != TLSC_SEAL_VERSION)
        return TLSC_SEAL_EFORMAT;
    memcpy(name, rec + 1, TLSC_SEAL_NAME_LEN);
    return 0;
}

int tlsc_unseal(const unsigned char key[TLSC_SEAL_KEY_LEN], const tlsc_seal_aad_t *aad, const unsigned char *rec, size_t len,
                unsigned char *out, size_t cap, size_t *out_len)
{
    EVP_CIPHER_CTX *ctx;
    const unsigned char *nonce = rec + 1 + TLSC_SEAL_NAME_LEN;
    size_t clen;
    int n, rc = TLSC_SEAL_EAUTH;

    if (!aad_ok(aad))
        return TLSC_SEAL_EINVAL;
    if (len < TLSC_SEAL_OVERHEAD || rec[0] != TLSC_SEAL_VERSION || len - TLSC_SEAL_OVERHEAD > TLSC_SEAL_MAX_PLAIN)
        return TLSC_SEAL_EFORMAT;
    clen = len - TLSC_SEAL_OVERHEAD;
    if (cap < clen)
        return TLSC_SEAL_ENOBUFS;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        return TLSC_SEAL_ECRYPTO;
    if (EVP_DecryptInit_ex2(ctx, gcm(), key, nonce, NULL) != 1 || add_aad(ctx, rec, aad) != 0) {
        rc = TLSC_SEAL_ECRYPTO;
        goto done;
    }
    if (clen > 0 && EVP_DecryptUpdate(ctx, out, &n, rec + TLSC_SEAL_HEADER, (int)clen) != 1)
        goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TLSC_SEAL_TAG_LEN, (void *)(rec + TLSC_SEAL_HEADER + clen)) != 1)
        goto done;
    if (EVP_DecryptFinal_ex(ctx, out + clen, &n) != 1)
        goto done;
    *out_len = clen;
    rc = 0;
done:
    if (rc != 0 && clen > 0)
        OPENSSL_cleanse(out, clen);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}
