/* The provider registry and helpers shared by every provider. */
#include "crypto/aead.h"

#include <string.h>

#include "crypto/aead_impl.h"
#include "sdp/sdp.h"

/* Preference order: for a suite, the first available entry wins. */
static const struct sdp_aead_provider *const providers[] = {
    &sdp_aead_openssl_aes128gcm,
    &sdp_aead_openssl_aes256gcm,
    &sdp_aead_sodium_chacha20poly1305,
    &sdp_aead_sodium_aes256gcm,
    &sdp_aead_kshim_aes128gcm, /* after OpenSSL: picked by name only */
    &sdp_aead_kshim_aes256gcm,
    &sdp_aead_null,
    NULL,
};

const struct sdp_aead_provider *const *sdp_aead_all(void)
{
    return providers;
}

int sdp_aead_find(enum sdp_suite suite, const char *name, unsigned flags,
                  const struct sdp_aead_provider **out)
{
    int rc = SDP_EUNAVAIL;

    if (out == NULL)
        return SDP_EINVAL;
    *out = NULL;
    for (size_t i = 0; providers[i] != NULL; i++) {
        const struct sdp_aead_provider *p = providers[i];
        if (name != NULL ? strcmp(p->name, name) != 0 : p->suite != suite)
            continue;
        /* Refuse the null provider before anything else, so a caller that
         * forgot the flag learns why rather than getting "unavailable". */
        if ((p->flags & SDP_AEAD_F_INSECURE) && !(flags & SDP_AEAD_ALLOW_INSECURE)) {
            rc = SDP_EINSECURE;
            continue;
        }
        if (!p->available())
            continue;
        *out = p;
        return 0;
    }
    return rc;
}

size_t sdp_suite_key_len(enum sdp_suite suite)
{
    switch (suite) {
    case SDP_SUITE_AES128GCM: return 16;
    case SDP_SUITE_AES256GCM: return 32;
    case SDP_SUITE_CHACHA20POLY1305: return 32;
    case SDP_SUITE_NULL_INSECURE: return 16;
    }
    return 0;
}

const char *sdp_suite_name(enum sdp_suite suite)
{
    switch (suite) {
    case SDP_SUITE_AES128GCM: return "AES-128-GCM";
    case SDP_SUITE_AES256GCM: return "AES-256-GCM";
    case SDP_SUITE_CHACHA20POLY1305: return "ChaCha20-Poly1305";
    case SDP_SUITE_NULL_INSECURE: return "null-INSECURE";
    }
    return "unknown";
}

int sdp_aead_seal_batch_sync(const struct sdp_aead_provider *p, struct sdp_aead_key *k,
                             struct sdp_aead_op *ops, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return SDP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        struct sdp_aead_op *op = &ops[i];
        op->status = p->seal(k, op->seq, op->aad, op->aad_len, op->in, op->len, op->out, op->tag);
    }
    return (int)n;
}

int sdp_aead_open_batch_sync(const struct sdp_aead_provider *p, struct sdp_aead_key *k,
                             struct sdp_aead_op *ops, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return SDP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        struct sdp_aead_op *op = &ops[i];
        op->status = p->open(k, op->seq, op->aad, op->aad_len, op->in, op->len, op->tag, op->out);
    }
    return (int)n;
}

void sdp_aead_nonce(uint8_t nonce[SDP_AEAD_IV_LEN], const uint8_t iv[SDP_AEAD_IV_LEN], uint64_t seq)
{
    memcpy(nonce, iv, SDP_AEAD_IV_LEN);
    for (int i = 0; i < 8; i++)
        nonce[SDP_AEAD_IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}
