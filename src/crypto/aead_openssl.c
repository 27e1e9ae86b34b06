/* AES-GCM on OpenSSL 3 EVP.
 *
 * A key object holds the key bytes (locked) and, made on first use, an
 * encrypt or a decrypt context keyed once; a record then sets only the IV.
 * That skips the key schedule and the provider lookup a fresh context
 * costs on every record (about a third of the time of a 64-byte record,
 * docs/CORE.md "Key memory").  A context is about 1.2 KB of heap, so a key
 * makes only the direction it is used in (a transmit key never opens), and
 * key_idle frees them again while the key's peer is idle: idle peers hold
 * their key bytes and nothing else.  The expanded key schedule lives inside
 * OpenSSL's context, which OpenSSL wipes when the context is freed.
 *
 * Streaming open: a stream state is one more decrypt context, keyed from
 * the key object's bytes the first time it serves that key; while it keeps
 * serving the same key (the common case: one busy peer) a record sets only
 * the IV, as above.  Key objects carry a process-unique id for that test,
 * so a freed key's address reused by a new key never matches. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto/aead.h"
#include "crypto/aead_impl.h"
#include "crypto/keymem.h"
#include "sdp/sdp.h"

struct sdp_aead_key {
    EVP_CIPHER_CTX *enc; /* made by the first seal, NULL while idle */
    EVP_CIPHER_CTX *dec; /* made by the first open, NULL while idle */
    uint64_t id;
    uint8_t iv[SDP_AEAD_IV_LEN];
    uint8_t key_len;
    uint8_t key[]; /* key_len bytes, locked like the rest: contexts and streams key themselves from it */
};

struct sdp_aead_stream {
    EVP_CIPHER_CTX *ctx;
    size_t key_len;
    uint64_t key_id; /* key the context holds, 0 for none */
};

static _Atomic uint64_t ossl_next_key_id = 1;

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *ossl_aes128gcm;
static EVP_CIPHER *ossl_aes256gcm;

/* Fetched once and kept for the life of the process: fetching per key
 * would take OpenSSL's global provider lock. */
static void ossl_fetch(void)
{
    ossl_aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    ossl_aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *ossl_cipher(size_t key_len)
{
    pthread_once(&ossl_once, ossl_fetch);
    return key_len == 16 ? ossl_aes128gcm : key_len == 32 ? ossl_aes256gcm : NULL;
}

static int ossl_avail128(void)
{
    return ossl_cipher(16) != NULL;
}

static int ossl_avail256(void)
{
    return ossl_cipher(32) != NULL;
}

static void ossl_key_idle(struct sdp_aead_key *k)
{
    if (k == NULL)
        return;
    EVP_CIPHER_CTX_free(k->enc);
    EVP_CIPHER_CTX_free(k->dec);
    k->enc = k->dec = NULL;
}

static void ossl_key_free(struct sdp_aead_key *k)
{
    ossl_key_idle(k);
    sdp_keymem_free(k);
}

/* The context of one direction, made and keyed on first use. */
static EVP_CIPHER_CTX *ossl_ctx(struct sdp_aead_key *k, int enc)
{
    EVP_CIPHER_CTX **slot = enc ? &k->enc : &k->dec;
    if (*slot != NULL)
        return *slot;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    /* GCM's default IV length is 12, which is ours. */
    if (c == NULL || EVP_CipherInit_ex2(c, ossl_cipher(k->key_len), k->key, NULL, enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(c);
        return NULL;
    }
    return *slot = c;
}

static int ossl_key_new_len(size_t want, const uint8_t *key, size_t key_len,
                            const uint8_t iv[SDP_AEAD_IV_LEN], struct sdp_aead_key **out)
{
    if (out == NULL)
        return SDP_EINVAL;
    *out = NULL;
    if (key == NULL || iv == NULL || key_len != want)
        return SDP_EINVAL;
    const EVP_CIPHER *c = ossl_cipher(key_len);
    if (c == NULL)
        return SDP_EUNAVAIL;
    /* Only the key's own length: an AES-128 key object fits 64 bytes. */
    struct sdp_aead_key *k = sdp_keymem_alloc(sizeof(*k) + key_len);
    if (k == NULL)
        return SDP_ENOMEM;
    memcpy(k->iv, iv, SDP_AEAD_IV_LEN);
    memcpy(k->key, key, key_len);
    k->key_len = (uint8_t)key_len;
    k->id = atomic_fetch_add(&ossl_next_key_id, 1);
    *out = k;
    return 0;
}

static int ossl_key_new128(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                           struct sdp_aead_key **out)
{
    return ossl_key_new_len(16, key, key_len, iv, out);
}

static int ossl_key_new256(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                           struct sdp_aead_key **out)
{
    return ossl_key_new_len(32, key, key_len, iv, out);
}

static int ossl_seal(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                     const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[SDP_AEAD_TAG_LEN])
{
    uint8_t nonce[SDP_AEAD_IV_LEN];
    uint8_t fin[SDP_AEAD_TAG_LEN];
    int outl;

    if (k == NULL || len > INT_MAX || aad_len > INT_MAX)
        return SDP_EINVAL;
    EVP_CIPHER_CTX *c = ossl_ctx(k, 1);
    if (c == NULL)
        return SDP_ECRYPTO;
    sdp_aead_nonce(nonce, k->iv, seq);
    /* EVP_EncryptUpdate with a NULL output takes AAD, so empty inputs are
     * skipped rather than passed as NULL. */
    if (EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) != 1 ||
        (aad_len && EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1) ||
        (len && EVP_EncryptUpdate(c, ct, &outl, pt, (int)len) != 1) ||
        EVP_EncryptFinal_ex(c, fin, &outl) != 1) /* GCM writes nothing here */
        return SDP_ECRYPTO;
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, SDP_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_CIPHER_CTX_get_params(c, p) != 1)
        return SDP_ECRYPTO;
    return 0;
}

static int ossl_open(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                     const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt)
{
    uint8_t nonce[SDP_AEAD_IV_LEN];
    uint8_t tagcopy[SDP_AEAD_TAG_LEN];
    uint8_t fin[SDP_AEAD_TAG_LEN];
    int outl;

    if (k == NULL || len > INT_MAX || aad_len > INT_MAX)
        return SDP_EINVAL;
    sdp_aead_nonce(nonce, k->iv, seq);
    /* The tag is copied first: pt may overlap the caller's tag buffer. */
    memcpy(tagcopy, tag, SDP_AEAD_TAG_LEN);
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tagcopy, SDP_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end(),
    };
    EVP_CIPHER_CTX *c = ossl_ctx(k, 0);
    if (c == NULL ||
        EVP_DecryptInit_ex2(c, NULL, NULL, nonce, NULL) != 1 ||
        EVP_CIPHER_CTX_set_params(c, p) != 1 ||
        (aad_len && EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) != 1) ||
        (len && EVP_DecryptUpdate(c, pt, &outl, ct, (int)len) != 1)) {
        if (len)
            memset(pt, 0, len);
        return SDP_ECRYPTO;
    }
    if (EVP_DecryptFinal_ex(c, fin, &outl) != 1) {
        /* Never hand out unauthenticated plaintext. */
        if (len)
            memset(pt, 0, len);
        return SDP_EBADMSG;
    }
    return 0;
}

static void ossl_stream_free(struct sdp_aead_stream *s)
{
    if (s == NULL)
        return;
    EVP_CIPHER_CTX_free(s->ctx);
    sdp_keymem_free(s);
}

static int ossl_stream_new_len(size_t key_len, struct sdp_aead_stream **out)
{
    const EVP_CIPHER *c = ossl_cipher(key_len);
    *out = NULL;
    if (c == NULL)
        return SDP_EUNAVAIL;
    struct sdp_aead_stream *s = sdp_keymem_alloc(sizeof(*s));
    if (s == NULL)
        return SDP_ENOMEM;
    s->key_len = key_len;
    s->ctx = EVP_CIPHER_CTX_new();
    /* Bind the cipher now, so that keying later reuses the context. */
    if (s->ctx == NULL || EVP_DecryptInit_ex2(s->ctx, c, NULL, NULL, NULL) != 1) {
        ossl_stream_free(s);
        return SDP_ENOMEM;
    }
    *out = s;
    return 0;
}

static int ossl_stream_new128(struct sdp_aead_stream **out)
{
    return ossl_stream_new_len(16, out);
}

static int ossl_stream_new256(struct sdp_aead_stream **out)
{
    return ossl_stream_new_len(32, out);
}

static int ossl_open_init(struct sdp_aead_stream *s, struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad,
                          size_t aad_len)
{
    uint8_t nonce[SDP_AEAD_IV_LEN];
    int outl;

    if (s == NULL || k == NULL || k->key_len != s->key_len || aad_len > INT_MAX)
        return SDP_EINVAL;
    sdp_aead_nonce(nonce, k->iv, seq);
    const uint8_t *key = s->key_id == k->id ? NULL : k->key;
    s->key_id = 0; /* until keying has worked */
    if (EVP_DecryptInit_ex2(s->ctx, NULL, key, nonce, NULL) != 1)
        return SDP_ECRYPTO;
    s->key_id = k->id;
    if (aad_len && EVP_DecryptUpdate(s->ctx, NULL, &outl, aad, (int)aad_len) != 1)
        return SDP_ECRYPTO;
    return 0;
}

static int ossl_open_update(struct sdp_aead_stream *s, const uint8_t *in, size_t len, uint8_t *out)
{
    int outl;

    if (len > INT_MAX)
        return SDP_EINVAL;
    if (len && EVP_DecryptUpdate(s->ctx, out, &outl, in, (int)len) != 1)
        return SDP_ECRYPTO;
    return 0;
}

static int ossl_open_final(struct sdp_aead_stream *s, const uint8_t tag[SDP_AEAD_TAG_LEN])
{
    uint8_t tagcopy[SDP_AEAD_TAG_LEN];
    uint8_t fin[SDP_AEAD_TAG_LEN];
    int outl;

    memcpy(tagcopy, tag, SDP_AEAD_TAG_LEN);
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tagcopy, SDP_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_CIPHER_CTX_set_params(s->ctx, p) != 1)
        return SDP_ECRYPTO;
    return EVP_DecryptFinal_ex(s->ctx, fin, &outl) == 1 ? 0 : SDP_EBADMSG;
}

static int ossl_seal_batch128(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_seal_batch_sync(&sdp_aead_openssl_aes128gcm, k, ops, n);
}

static int ossl_open_batch128(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_open_batch_sync(&sdp_aead_openssl_aes128gcm, k, ops, n);
}

static int ossl_seal_batch256(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_seal_batch_sync(&sdp_aead_openssl_aes256gcm, k, ops, n);
}

static int ossl_open_batch256(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return sdp_aead_open_batch_sync(&sdp_aead_openssl_aes256gcm, k, ops, n);
}

const struct sdp_aead_provider sdp_aead_openssl_aes128gcm = {
    .name = "openssl-aes128gcm",
    .suite = SDP_SUITE_AES128GCM,
    .key_len = 16,
    .flags = 0,
    .available = ossl_avail128,
    .key_new = ossl_key_new128,
    .key_free = ossl_key_free,
    .key_idle = ossl_key_idle,
    .seal = ossl_seal,
    .open = ossl_open,
    .seal_batch = ossl_seal_batch128,
    .open_batch = ossl_open_batch128,
    .poll = NULL,
    .stream_new = ossl_stream_new128,
    .stream_free = ossl_stream_free,
    .open_init = ossl_open_init,
    .open_update = ossl_open_update,
    .open_final = ossl_open_final,
};

const struct sdp_aead_provider sdp_aead_openssl_aes256gcm = {
    .name = "openssl-aes256gcm",
    .suite = SDP_SUITE_AES256GCM,
    .key_len = 32,
    .flags = 0,
    .available = ossl_avail256,
    .key_new = ossl_key_new256,
    .key_free = ossl_key_free,
    .key_idle = ossl_key_idle,
    .seal = ossl_seal,
    .open = ossl_open,
    .seal_batch = ossl_seal_batch256,
    .open_batch = ossl_open_batch256,
    .poll = NULL,
    .stream_new = ossl_stream_new256,
    .stream_free = ossl_stream_free,
    .open_init = ossl_open_init,
    .open_update = ossl_open_update,
    .open_final = ossl_open_final,
};
