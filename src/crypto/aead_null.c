/* The null provider: no confidentiality, no integrity.  It exists so the
 * benchmark can show what the crypto costs; sdp_aead_find refuses it unless
 * the caller passes SDP_AEAD_ALLOW_INSECURE, and nothing picks it by
 * default.  Its tag is 16 zero bytes and open checks it, so tests that
 * corrupt a tag still see a failure. */
#include <string.h>

#include "crypto/aead.h"
#include "crypto/aead_impl.h"
#include "crypto/keymem.h"
#include "sdp/sdp.h"

struct sdp_aead_key {
    uint8_t unused;
};

static int null_avail(void)
{
    return 1;
}

static int null_key_new(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                        struct sdp_aead_key **out)
{
    if (out == NULL)
        return SDP_EINVAL;
    *out = NULL;
    if (key == NULL || iv == NULL || key_len == 0 || key_len > SDP_AEAD_KEY_MAX)
        return SDP_EINVAL;
    *out = sdp_keymem_alloc(sizeof(**out));
    return *out != NULL ? 0 : SDP_ENOMEM;
}

static void null_key_free(struct sdp_aead_key *k)
{
    sdp_keymem_free(k);
}

static int null_seal(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                     const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[SDP_AEAD_TAG_LEN])
{
    if (k == NULL || tag == NULL)
        return SDP_EINVAL;
    if (len && ct != pt)
        memmove(ct, pt, len);
    memset(tag, 0, SDP_AEAD_TAG_LEN);
    return 0;
}

static int null_open(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                     const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt)
{
    uint8_t acc = 0;

    if (k == NULL || tag == NULL)
        return SDP_EINVAL;
    for (int i = 0; i < SDP_AEAD_TAG_LEN; i++)
        acc |= tag[i];
    if (acc != 0) {
        if (len)
            memset(pt, 0, len);
        return SDP_EBADMSG;
    }
    if (len && ct != pt)
        memmove(pt, ct, len);
    return 0;
}

static int null_seal_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_seal_batch_sync(&sdp_aead_null, k, ops, n);
}

static int null_open_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_open_batch_sync(&sdp_aead_null, k, ops, n);
}

const struct sdp_aead_provider sdp_aead_null = {
    .name = "null-INSECURE-no-encryption",
    .suite = SDP_SUITE_NULL_INSECURE,
    .key_len = 16,
    .flags = SDP_AEAD_F_INSECURE,
    .available = null_avail,
    .key_new = null_key_new,
    .key_free = null_key_free,
    .seal = null_seal,
    .open = null_open,
    .seal_batch = null_seal_batch,
    .open_batch = null_open_batch,
    .poll = NULL,
};
