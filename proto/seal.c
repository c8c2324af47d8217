#include "seal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Fetched once: EVP_aes_256_gcm() would make OpenSSL 3 look the cipher up on every record. */
static const EVP_CIPHER *gcm(void)
{
    static EVP_CIPHER *fetched; /* process-wide, never freed */

    if (fetched == NULL)
        fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    return fetched;
}

/*
 * Feeds the AAD to a GCM context: the header, then each bound field with its length, in one
 * update (each update is a trip through the provider). A usual AAD is built on the stack; only
 * an outsized one (fields up to 64 KiB each are allowed) on the heap.
 */
static int add_aad(EVP_CIPHER_CTX *ctx, const unsigned char *header, const tlsc_seal_aad_t *aad)
{
    const char *fields[2] = {aad->redis_key ? aad->redis_key : "", aad->sni ? aad->sni : ""};
    size_t lens[2] = {strlen(fields[0]), strlen(fields[1])}, total, at = TLSC_SEAL_HEADER;
    unsigned char small[512], *buf = small;
    int n, rc;

    if (lens[0] > 0xffff || lens[1] > 0xffff)
        return -1;
    total = TLSC_SEAL_HEADER + 2 + lens[0] + 2 + lens[1] + 2;
    if (total > sizeof(small) && (buf = malloc(total)) == NULL)
        return -1;
    memcpy(buf, header, TLSC_SEAL_HEADER);
    for (int i = 0; i < 2; i++) {
        buf[at++] = (unsigned char)(lens[i] >> 8);
        buf[at++] = (unsigned char)lens[i];
        memcpy(buf + at, fields[i], lens[i]);
        at += lens[i];
    }
    buf[at++] = (unsigned char)(aad->tls_version >> 8);
    buf[at++] = (unsigned char)aad->tls_version;
    rc = EVP_CipherUpdate(ctx, NULL, &n, buf, (int)at) == 1 ? 0 : -1;
    if (buf != small)
        free(buf);
    return rc;
}

static int aad_ok(const tlsc_seal_aad_t *aad)
{
    return aad != NULL && (aad->redis_key == NULL || strlen(aad->redis_key) <= 0xffff) &&
           (aad->sni == NULL || strlen(aad->sni) <= 0xffff);
}

void tlsc_seal_cache_clear(tlsc_seal_cache_t *cache)
{
    EVP_CIPHER_CTX_free(cache->ctx);
    cache->ctx = NULL;
    OPENSSL_cleanse(cache->key, sizeof(cache->key));
}

/*
 * A context keyed with `key` for direction `enc`, its nonce set: the cache's own when it holds
 * this key (only the nonce is set again), else a new one (kept in the cache when there is one).
 * NULL on failure.
 */
static EVP_CIPHER_CTX *ctx_for(tlsc_seal_cache_t *cache, const unsigned char *key, const unsigned char *nonce, int enc)
{
    EVP_CIPHER_CTX *ctx;

    if (cache != NULL && cache->ctx != NULL && CRYPTO_memcmp(cache->key, key, TLSC_SEAL_KEY_LEN) == 0) {
        if (EVP_CipherInit_ex2(cache->ctx, NULL, NULL, nonce, enc, NULL) == 1)
            return cache->ctx;
        tlsc_seal_cache_clear(cache);
    }
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
        return NULL;
    if (EVP_CipherInit_ex2(ctx, gcm(), key, nonce, enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    if (cache != NULL) {
        tlsc_seal_cache_clear(cache);
        cache->ctx = ctx;
        memcpy(cache->key, key, TLSC_SEAL_KEY_LEN);
    }
    return ctx;
}

/* After a record: a one-shot context is freed; a cached one that failed is dropped (its state is unknown). */
static void ctx_done(tlsc_seal_cache_t *cache, EVP_CIPHER_CTX *ctx, int ok)
{
    if (cache == NULL)
        EVP_CIPHER_CTX_free(ctx);
    else if (!ok)
        tlsc_seal_cache_clear(cache);
}

int tlsc_seal(const unsigned char key[TLSC_SEAL_KEY_LEN], const unsigned char name[TLSC_SEAL_NAME_LEN], const tlsc_seal_aad_t *aad,
              const unsigned char *plain, size_t plain_len, unsigned char *out, size_t cap, size_t *out_len)
{
    return tlsc_seal_cached(NULL, key, name, aad, plain, plain_len, out, cap, out_len);
}

int tlsc_unseal(const unsigned char key[TLSC_SEAL_KEY_LEN], const tlsc_seal_aad_t *aad, const unsigned char *rec, size_t len,
                unsigned char *out, size_t cap, size_t *out_len)
{
    return tlsc_unseal_cached(NULL, key, aad, rec, len, out, cap, out_len);
}

int tlsc_seal_cached(tlsc_seal_cache_t *cache, const unsigned char key[TLSC_SEAL_KEY_LEN],
                     const unsigned char name[TLSC_SEAL_NAME_LEN], const tlsc_seal_aad_t *aad, const unsigned char *plain,
                     size_t plain_len, unsigned char *out, size_t cap, size_t *out_len)
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
    if ((ctx = ctx_for(cache, key, nonce, 1)) == NULL)
        return TLSC_SEAL_ECRYPTO;
    if (add_aad(ctx, out, aad) != 0)
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
    ctx_done(cache, ctx, rc == 0);
    return rc;
}

int tlsc_seal_key_name(const unsigned char *rec, size_t len, unsigned char name[TLSC_SEAL_NAME_LEN])
{
    if (len < TLSC_SEAL_OVERHEAD || rec[0] != TLSC_SEAL_VERSION)
        return TLSC_SEAL_EFORMAT;
    memcpy(name, rec + 1, TLSC_SEAL_NAME_LEN);
    return 0;
}

int tlsc_unseal_cached(tlsc_seal_cache_t *cache, const unsigned char key[TLSC_SEAL_KEY_LEN], const tlsc_seal_aad_t *aad,
                       const unsigned char *rec, size_t len, unsigned char *out, size_t cap, size_t *out_len)
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
    if ((ctx = ctx_for(cache, key, nonce, 0)) == NULL)
        return TLSC_SEAL_ECRYPTO;
    if (add_aad(ctx, rec, aad) != 0) {
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
    ctx_done(cache, ctx, rc == 0);
    return rc;
}
