/* libsodium providers: ChaCha20-Poly1305-IETF everywhere, and AES-256-GCM
 * where the CPU has AES-NI and PCLMUL (libsodium 1.0.18 has no portable
 * AES).  libsodium takes the raw key per call, so the key bytes (or the
 * expanded AES state) live in the locked key object.
 *
 * Streaming open (ChaCha20-Poly1305 only; libsodium has no incremental
 * AES-GCM) is composed from the primitives the one-shot call is built of,
 * as RFC 8439 section 2.8 defines the AEAD: the Poly1305 key is the first
 * 32 bytes of keystream block 0, the ciphertext is XORed with blocks 1 on,
 * and the tag covers AAD, padding, ciphertext, padding and both lengths. */
#include <stddef.h>
#include <string.h>

#include <sodium.h>

#include "crypto/aead.h"
#include "crypto/aead_impl.h"
#include "crypto/keymem.h"
#include "sdp/sdp.h"

struct sdp_aead_key {
    uint8_t key[SDP_AEAD_KEY_MAX]; /* ChaCha20 key */
    uint8_t iv[SDP_AEAD_IV_LEN];
    /* AES keys only: a ChaCha20 key object stops before it (48 bytes, not
     * 560).  Key memory is 16-byte aligned, as the state needs. */
    _Alignas(16) crypto_aead_aes256gcm_state aes;
};

static int chacha_avail(void)
{
    return sdp_keymem_init() == 0;
}

static int aes_avail(void)
{
    return sdp_keymem_init() == 0 && crypto_aead_aes256gcm_is_available();
}

static void na_key_free(struct sdp_aead_key *k)
{
    sdp_keymem_free(k); /* wipes */
}

static int na_key_alloc(size_t size, const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                        struct sdp_aead_key **out)
{
    if (out == NULL)
        return SDP_EINVAL;
    *out = NULL;
    if (key == NULL || iv == NULL || key_len != 32)
        return SDP_EINVAL;
    if (sdp_keymem_init() != 0)
        return SDP_ECRYPTO;
    struct sdp_aead_key *k = sdp_keymem_alloc(size);
    if (k == NULL)
        return SDP_ENOMEM;
    memcpy(k->iv, iv, SDP_AEAD_IV_LEN);
    *out = k;
    return 0;
}

static int chacha_key_new(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                          struct sdp_aead_key **out)
{
    int rc = na_key_alloc(offsetof(struct sdp_aead_key, aes), key, key_len, iv, out);
    if (rc == 0)
        memcpy((*out)->key, key, key_len);
    return rc;
}

static int aes_key_new(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                       struct sdp_aead_key **out)
{
    if (!aes_avail())
        return SDP_EUNAVAIL;
    int rc = na_key_alloc(sizeof(struct sdp_aead_key), key, key_len, iv, out);
    if (rc == 0 && crypto_aead_aes256gcm_beforenm(&(*out)->aes, key) != 0) {
        na_key_free(*out);
        *out = NULL;
        rc = SDP_ECRYPTO;
    }
    return rc;
}

struct sdp_aead_stream {
    crypto_onetimeauth_poly1305_state mac; /* first: libsodium wants it aligned */
    uint8_t key[SDP_AEAD_KEY_MAX];
    uint8_t nonce[SDP_AEAD_IV_LEN];
    uint8_t ks[512];    /* keystream blocks ctr-8 .. ctr-1 */
    uint32_t ks_used;   /* bytes of ks already used (512: none left) */
    uint32_t ctr;       /* next keystream block */
    uint64_t aad_len, ct_len;
};

static const uint8_t na_zero[512];

static int chacha_stream_new(struct sdp_aead_stream **out)
{
    *out = NULL;
    if (sdp_keymem_init() != 0)
        return SDP_ECRYPTO;
    *out = sdp_keymem_alloc(sizeof(**out)); /* it holds a key copy */
    return *out ? 0 : SDP_ENOMEM;
}

static void chacha_stream_free(struct sdp_aead_stream *s)
{
    sdp_keymem_free(s);
}

static void mac_pad16(struct sdp_aead_stream *s, uint64_t len)
{
    if (len % 16)
        crypto_onetimeauth_poly1305_update(&s->mac, na_zero, 16 - len % 16);
}

static int chacha_open_init(struct sdp_aead_stream *s, struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad,
                            size_t aad_len)
{
    uint8_t block0[64];

    if (s == NULL || k == NULL || (aad_len && aad == NULL))
        return SDP_EINVAL;
    memcpy(s->key, k->key, sizeof(s->key));
    sdp_aead_nonce(s->nonce, k->iv, seq);
    crypto_stream_chacha20_ietf(block0, sizeof(block0), s->nonce, s->key);
    crypto_onetimeauth_poly1305_init(&s->mac, block0);
    sodium_memzero(block0, sizeof(block0));
    if (aad_len)
        crypto_onetimeauth_poly1305_update(&s->mac, aad, aad_len);
    mac_pad16(s, aad_len);
    s->aad_len = aad_len;
    s->ct_len = 0;
    s->ctr = 1;
    s->ks_used = sizeof(s->ks);
    return 0;
}

static void xor_bytes(uint8_t *out, const uint8_t *in, const uint8_t *ks, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t a, b;
        memcpy(&a, in + i, 8);
        memcpy(&b, ks + i, 8);
        a ^= b;
        memcpy(out + i, &a, 8);
    }
    for (; i < n; i++)
        out[i] = in[i] ^ ks[i];
}

/* Keystream is made 512 bytes (8 blocks) at a time, straight over the
 * data where a piece covers whole chunks and into ks otherwise: libsodium's
 * vector code works in 8-block units, and packets rarely end on one. */
static int chacha_open_update(struct sdp_aead_stream *s, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len == 0)
        return 0;
    /* RFC 8439 caps a message at 2^32 - 1 blocks of 64 bytes. */
    if ((uint64_t)len > (UINT64_C(64) << 32) - 64 * 9 - s->ct_len)
        return SDP_EINVAL;
    /* MAC first: out may be in (in place). */
    crypto_onetimeauth_poly1305_update(&s->mac, in, len);
    s->ct_len += len;
    size_t left = sizeof(s->ks) - s->ks_used, n = len < left ? len : left;
    if (n) {
        xor_bytes(out, in, s->ks + s->ks_used, n);
        s->ks_used += (uint32_t)n;
        in += n;
        out += n;
        len -= n;
    }
    size_t whole = len & ~(sizeof(s->ks) - 1);
    if (whole) {
        crypto_stream_chacha20_ietf_xor_ic(out, in, whole, s->nonce, s->ctr, s->key);
        s->ctr += (uint32_t)(whole / 64);
        in += whole;
        out += whole;
        len -= whole;
    }
    if (len) {
        crypto_stream_chacha20_ietf_xor_ic(s->ks, na_zero, sizeof(s->ks), s->nonce, s->ctr, s->key);
        s->ctr += sizeof(s->ks) / 64;
        xor_bytes(out, in, s->ks, len);
        s->ks_used = (uint32_t)len;
    }
    return 0;
}

static int chacha_open_final(struct sdp_aead_stream *s, const uint8_t tag[SDP_AEAD_TAG_LEN])
{
    uint8_t lens[16];
    uint8_t mine[SDP_AEAD_TAG_LEN];

    mac_pad16(s, s->ct_len);
    for (int i = 0; i < 8; i++) {
        lens[i] = (uint8_t)(s->aad_len >> (8 * i)); /* little-endian, as RFC 8439 says */
        lens[8 + i] = (uint8_t)(s->ct_len >> (8 * i));
    }
    crypto_onetimeauth_poly1305_update(&s->mac, lens, sizeof(lens));
    crypto_onetimeauth_poly1305_final(&s->mac, mine);
    int rc = crypto_verify_16(mine, tag) == 0 ? 0 : SDP_EBADMSG;
    sodium_memzero(mine, sizeof(mine));
    sodium_memzero(s->ks, sizeof(s->ks));
    return rc;
}

/* libsodium declares its buffers nonnull even for empty messages. */
static uint8_t na_empty[1];

static int na_seal(int aes, struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad,
                   size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
                   uint8_t tag[SDP_AEAD_TAG_LEN])
{
    uint8_t nonce[SDP_AEAD_IV_LEN];
    int rc;

    if (k == NULL || tag == NULL)
        return SDP_EINVAL;
    if (len == 0)
        pt = ct = na_empty;
    sdp_aead_nonce(nonce, k->iv, seq);
    if (aes)
        rc = crypto_aead_aes256gcm_encrypt_detached_afternm(ct, tag, NULL, pt, len, aad, aad_len,
                                                            NULL, nonce, &k->aes);
    else
        rc = crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, tag, NULL, pt, len, aad,
                                                                aad_len, NULL, nonce, k->key);
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

static int na_open(int aes, struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad,
                   size_t aad_len, const uint8_t *ct, size_t len,
                   const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt)
{
    uint8_t nonce[SDP_AEAD_IV_LEN];
    uint8_t tagcopy[SDP_AEAD_TAG_LEN];
    int rc;

    if (k == NULL || tag == NULL)
        return SDP_EINVAL;
    if (len == 0)
        pt = (uint8_t *)(ct = na_empty);
    memcpy(tagcopy, tag, SDP_AEAD_TAG_LEN);
    sdp_aead_nonce(nonce, k->iv, seq);
    if (aes)
        rc = crypto_aead_aes256gcm_decrypt_detached_afternm(pt, NULL, ct, len, tagcopy, aad,
                                                            aad_len, nonce, &k->aes);
    else
        rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(pt, NULL, ct, len, tagcopy, aad,
                                                                aad_len, nonce, k->key);
    if (rc != 0) {
        if (len)
            memset(pt, 0, len);
        return SDP_EBADMSG;
    }
    return 0;
}

static int chacha_seal(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[SDP_AEAD_TAG_LEN])
{
    return na_seal(0, k, seq, aad, aad_len, pt, len, ct, tag);
}

static int chacha_open(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                       const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN],
                       uint8_t *pt)
{
    return na_open(0, k, seq, aad, aad_len, ct, len, tag, pt);
}

static int aes_seal(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                    const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[SDP_AEAD_TAG_LEN])
{
    return na_seal(1, k, seq, aad, aad_len, pt, len, ct, tag);
}

static int aes_open(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                    const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt)
{
    return na_open(1, k, seq, aad, aad_len, ct, len, tag, pt);
}

static int chacha_seal_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_seal_batch_sync(&sdp_aead_sodium_chacha20poly1305, k, ops, n);
}

static int chacha_open_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_open_batch_sync(&sdp_aead_sodium_chacha20poly1305, k, ops, n);
}

static int aes_seal_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_seal_batch_sync(&sdp_aead_sodium_aes256gcm, k, ops, n);
}

static int aes_open_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_open_batch_sync(&sdp_aead_sodium_aes256gcm, k, ops, n);
}

const struct sdp_aead_provider sdp_aead_sodium_chacha20poly1305 = {
    .name = "sodium-chacha20poly1305",
    .suite = SDP_SUITE_CHACHA20POLY1305,
    .key_len = 32,
    .flags = 0,
    .available = chacha_avail,
    .key_new = chacha_key_new,
    .key_free = na_key_free,
    .seal = chacha_seal,
    .open = chacha_open,
    .seal_batch = chacha_seal_batch,
    .open_batch = chacha_open_batch,
    .poll = NULL,
    .stream_new = chacha_stream_new,
    .stream_free = chacha_stream_free,
    .open_init = chacha_open_init,
    .open_update = chacha_open_update,
    .open_final = chacha_open_final,
};

const struct sdp_aead_provider sdp_aead_sodium_aes256gcm = {
    .name = "sodium-aes256gcm",
    .suite = SDP_SUITE_AES256GCM,
    .key_len = 32,
    .flags = 0,
    .available = aes_avail,
    .key_new = aes_key_new,
    .key_free = na_key_free,
    .seal = aes_seal,
    .open = aes_open,
    .seal_batch = aes_seal_batch,
    .open_batch = aes_open_batch,
    .poll = NULL,
};
