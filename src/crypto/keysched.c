/* Key schedule over OpenSSL's TLS13-KDF: no HKDF is written by hand. */
#include "crypto/keysched.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto/keymem.h"
#include "sdp/sdp.h"

static pthread_once_t ks_once = PTHREAD_ONCE_INIT;
static EVP_KDF *ks_kdf;

static void ks_fetch(void)
{
    ks_kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
}

int sdp_hkdf_expand_label(const char *digest, const uint8_t *secret, size_t secret_len,
                          const char *label, const uint8_t *context, size_t context_len,
                          uint8_t *out, size_t out_len)
{
    static const char prefix[] = "tls13 ";
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;

    if (digest == NULL || secret == NULL || secret_len == 0 || label == NULL || out == NULL ||
        out_len == 0 || (context == NULL && context_len != 0))
        return SDP_EINVAL;
    /* HkdfLabel: u16 length, label<7..255> with the prefix, context<0..255>. */
    size_t label_len = strlen(label);
    if (out_len > 0xffff || label_len + sizeof(prefix) - 1 > 255 || context_len > 255)
        return SDP_EINVAL;
    pthread_once(&ks_once, ks_fetch);
    if (ks_kdf == NULL)
        return SDP_ECRYPTO;

    OSSL_PARAM params[7];
    size_t n = 0;
    params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
                                                    sizeof(prefix) - 1);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, label_len);
    /* An absent context is the empty one; OpenSSL rejects a NULL octet string. */
    if (context_len)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, (void *)context,
                                                        context_len);
    params[n] = OSSL_PARAM_construct_end();

    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(ks_kdf);
    if (ctx == NULL)
        return SDP_ENOMEM;
    int ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx); /* clears the copy of the secret it held */
    return ok ? 0 : SDP_ECRYPTO;
}

static int ks_expand(const uint8_t secret[SDP_SECRET_LEN], const char *label, uint8_t *out,
                     size_t out_len)
{
    return sdp_hkdf_expand_label("SHA256", secret, SDP_SECRET_LEN, label, NULL, 0, out, out_len);
}

/* The four keys and IVs of one secret through one KDF context: the key,
 * digest and prefix are set once and each further derive passes only its
 * label (OpenSSL keeps the rest), which saves a context and a digest fetch
 * per label: a peer's keys are eight of these. */
static int ks_expand4(const uint8_t secret[SDP_SECRET_LEN], const char *const labels[4], uint8_t *const outs[4],
                      const size_t lens[4])
{
    static const char prefix[] = "tls13 ";
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    pthread_once(&ks_once, ks_fetch);
    if (ks_kdf == NULL)
        return SDP_ECRYPTO;
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(ks_kdf);
    if (ctx == NULL)
        return SDP_ENOMEM;
    int ok = 1;
    for (int i = 0; i < 4 && ok; i++) {
        OSSL_PARAM params[6];
        size_t n = 0;
        if (i == 0) {
            params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
            params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
            params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, SDP_SECRET_LEN);
            params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
                                                            sizeof(prefix) - 1);
        }
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)labels[i], strlen(labels[i]));
        params[n] = OSSL_PARAM_construct_end();
        ok = EVP_KDF_derive(ctx, outs[i], lens[i], params) == 1;
    }
    EVP_KDF_CTX_free(ctx); /* clears the copy of the secret it held */
    return ok ? 0 : SDP_ECRYPTO;
}

int sdp_keysched_derive(enum sdp_suite suite, const uint8_t secret[SDP_SECRET_LEN],
                        struct sdp_traffic_keys *out)
{
    if (secret == NULL || out == NULL)
        return SDP_EINVAL;
    size_t key_len = sdp_suite_key_len(suite);
    if (key_len == 0)
        return SDP_EINVAL;
    sdp_keymem_wipe(out, sizeof(*out));
    out->suite = suite;
    out->key_len = key_len;
    static const char *const labels[4] = {SDP_LABEL_KEY, SDP_LABEL_IV, SDP_LABEL_CTL_KEY, SDP_LABEL_CTL_IV};
    uint8_t *const outs[4] = {out->key, out->iv, out->ctl_key, out->ctl_iv};
    const size_t lens[4] = {key_len, SDP_AEAD_IV_LEN, key_len, SDP_AEAD_IV_LEN};
    int rc = ks_expand4(secret, labels, outs, lens);
    if (rc != 0)
        sdp_keymem_wipe(out, sizeof(*out));
    return rc;
}

int sdp_keysched_next(const uint8_t secret[SDP_SECRET_LEN], uint8_t next[SDP_SECRET_LEN])
{
    uint8_t tmp[SDP_SECRET_LEN];

    if (secret == NULL || next == NULL)
        return SDP_EINVAL;
    /* Through a temporary so next may alias secret. */
    int rc = ks_expand(secret, SDP_LABEL_KU, tmp, sizeof(tmp));
    if (rc == 0)
        memcpy(next, tmp, sizeof(tmp));
    sdp_keymem_wipe(tmp, sizeof(tmp));
    return rc;
}

struct sdp_traffic_keys *sdp_traffic_keys_new(void)
{
    return sdp_keymem_alloc(sizeof(struct sdp_traffic_keys));
}

void sdp_traffic_keys_free(struct sdp_traffic_keys *k)
{
    sdp_keymem_free(k);
}
