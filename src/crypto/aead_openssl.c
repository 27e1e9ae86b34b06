/* AES-GCM on OpenSSL 3.
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
 * Small records: OpenSSL 3.0's EVP layer asks the context for its IV
 * length through the parameter interface on every EVP_CipherInit (eight
 * name lookups with strcmp), and checks more around each update; for a
 * 64-byte record that was a third of the cost.  So the contexts are the
 * cipher implementation's own, driven through the functions its provider
 * publishes for the cipher (OSSL_PROVIDER_query_operation, the same table
 * EVP fetched from); EVP_CIPHER_CTX remains the fallback should a provider
 * not list the cipher under its name.
 *
 * Streaming open: a stream state is one more decrypt context, keyed from
 * the key object's bytes the first time it serves that key; while it keeps
 * serving the same key (the common case: one busy peer) a record sets only
 * the IV, as above.  Key objects carry a process-unique id for that test,
 * so a freed key's address reused by a new key never matches. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "crypto/aead.h"
#include "crypto/aead_impl.h"
#include "crypto/gcm_small.h"
#include "crypto/keymem.h"
#include "sdp/sdp.h"

/* One AES-GCM implementation: the EVP cipher, and its provider functions
 * when found (newctx NULL: use EVP). */
struct ossl_impl {
    EVP_CIPHER *evp;
    void *provctx;
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_encrypt_init_fn *einit;
    OSSL_FUNC_cipher_decrypt_init_fn *dinit;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_get_ctx_params_fn *get_params;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_params;
};

/* A cipher context: the implementation's (alg) or EVP's. */
struct ossl_ctx {
    const struct ossl_impl *im;
    void *alg;
    EVP_CIPHER_CTX *evp;
};

struct sdp_aead_key {
    struct ossl_ctx enc; /* made and keyed by the first seal; empty while idle */
    struct ossl_ctx dec; /* made and keyed by the first open; empty while idle */
    /* Short AES-128 records (gcm_small.h): the expanded key, locked, made
     * by the first short record and freed while idle like the contexts. */
    struct sdp_gcm_small *small;
    const struct ossl_impl *im;
    uint64_t id;
    uint8_t iv[SDP_AEAD_IV_LEN];
    uint8_t key_len;
    uint8_t key[]; /* key_len bytes, locked like the rest: contexts and streams key themselves from it */
};

struct sdp_aead_stream {
    struct ossl_ctx ctx;
    size_t key_len;
    uint64_t key_id; /* key the context holds, 0 for none */
};

static _Atomic uint64_t ossl_next_key_id = 1;

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static struct ossl_impl ossl_aes128gcm;
static struct ossl_impl ossl_aes256gcm;

/* Does the colon-separated list hold name? */
static int names_have(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ':');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == n && strncasecmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static void impl_find(struct ossl_impl *im, const char *name)
{
    im->evp = EVP_CIPHER_fetch(NULL, name, NULL);
    if (!im->evp)
        return;
    const OSSL_PROVIDER *prov = EVP_CIPHER_get0_provider(im->evp);
    int no_cache = 0;
    const OSSL_ALGORITHM *a = prov ? OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache) : NULL;
    const OSSL_ALGORITHM *first = a;
    struct ossl_impl f = {.evp = im->evp};
    for (; a && a->algorithm_names; a++) {
        if (!names_have(a->algorithm_names, name))
            continue;
        for (const OSSL_DISPATCH *d = a->implementation; d->function_id; d++) {
            switch (d->function_id) {
            case OSSL_FUNC_CIPHER_NEWCTX: f.newctx = OSSL_FUNC_cipher_newctx(d); break;
            case OSSL_FUNC_CIPHER_FREECTX: f.freectx = OSSL_FUNC_cipher_freectx(d); break;
            case OSSL_FUNC_CIPHER_ENCRYPT_INIT: f.einit = OSSL_FUNC_cipher_encrypt_init(d); break;
            case OSSL_FUNC_CIPHER_DECRYPT_INIT: f.dinit = OSSL_FUNC_cipher_decrypt_init(d); break;
            case OSSL_FUNC_CIPHER_UPDATE: f.update = OSSL_FUNC_cipher_update(d); break;
            case OSSL_FUNC_CIPHER_FINAL: f.final = OSSL_FUNC_cipher_final(d); break;
            case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: f.get_params = OSSL_FUNC_cipher_get_ctx_params(d); break;
            case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: f.set_params = OSSL_FUNC_cipher_set_ctx_params(d); break;
            default: break;
            }
        }
        break;
    }
    if (first)
        OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, first);
    if (f.newctx && f.freectx && f.einit && f.dinit && f.update && f.final && f.get_params && f.set_params) {
        f.provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
        *im = f;
    }
}

/* Fetched once and kept for the life of the process (the provider stays
 * loaded with them): fetching per key would take OpenSSL's global provider
 * lock. */
static void ossl_fetch(void)
{
    impl_find(&ossl_aes128gcm, "AES-128-GCM");
    impl_find(&ossl_aes256gcm, "AES-256-GCM");
}

static const struct ossl_impl *ossl_cipher(size_t key_len)
{
    pthread_once(&ossl_once, ossl_fetch);
    const struct ossl_impl *im = key_len == 16 ? &ossl_aes128gcm : key_len == 32 ? &ossl_aes256gcm : NULL;
    return im && im->evp ? im : NULL;
}

static int ossl_avail128(void)
{
    return ossl_cipher(16) != NULL;
}

static int ossl_avail256(void)
{
    return ossl_cipher(32) != NULL;
}

/* ---- the context operations, on either kind of context ---- */

static int ctx_new(struct ossl_ctx *c, const struct ossl_impl *im)
{
    c->im = im;
    if (im->newctx)
        c->alg = im->newctx(im->provctx);
    else
        c->evp = EVP_CIPHER_CTX_new();
    return c->alg || c->evp ? 0 : SDP_ENOMEM;
}

static void ctx_free(struct ossl_ctx *c)
{
    if (c->alg)
        c->im->freectx(c->alg); /* the implementation wipes its key schedule */
    EVP_CIPHER_CTX_free(c->evp);
    c->alg = NULL;
    c->evp = NULL;
}

/* Key (key may be NULL: keep the key) and set the nonce (may be NULL). */
static int ctx_init(struct ossl_ctx *c, int enc, const uint8_t *key, size_t key_len, const uint8_t *nonce)
{
    if (c->alg) {
        size_t kl = key ? key_len : 0, nl = nonce ? SDP_AEAD_IV_LEN : 0;
        return (enc ? c->im->einit : c->im->dinit)(c->alg, key, kl, nonce, nl, NULL) == 1 ? 0 : SDP_ECRYPTO;
    }
    /* GCM's default IV length is 12, which is ours. */
    const EVP_CIPHER *ci = EVP_CIPHER_CTX_get0_cipher(c->evp) ? NULL : c->im->evp;
    return EVP_CipherInit_ex2(c->evp, ci, key, nonce, enc, NULL) == 1 ? 0 : SDP_ECRYPTO;
}

/* out NULL: in is additional data. */
static int ctx_update(struct ossl_ctx *c, uint8_t *out, const uint8_t *in, size_t len)
{
    if (!len)
        return 0; /* empty inputs are skipped rather than passed as NULL */
    if (c->alg) {
        size_t outl;
        return c->im->update(c->alg, out, &outl, len, in, len) == 1 ? 0 : SDP_ECRYPTO;
    }
    int outl;
    return EVP_CipherUpdate(c->evp, out, &outl, in, (int)len) == 1 ? 0 : SDP_ECRYPTO;
}

/* Finish; an open's tag mismatch gives SDP_EBADMSG. */
static int ctx_final(struct ossl_ctx *c, int enc)
{
    uint8_t fin[SDP_AEAD_TAG_LEN]; /* GCM writes nothing here */
    int bad = enc ? SDP_ECRYPTO : SDP_EBADMSG;
    if (c->alg) {
        size_t outl;
        return c->im->final(c->alg, fin, &outl, sizeof(fin)) == 1 ? 0 : bad;
    }
    int outl;
    return EVP_CipherFinal_ex(c->evp, fin, &outl) == 1 ? 0 : bad;
}

static int ctx_tag(struct ossl_ctx *c, uint8_t tag[SDP_AEAD_TAG_LEN], int set)
{
    OSSL_PARAM p[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, SDP_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end(),
    };
    int ok = c->alg ? (set ? c->im->set_params(c->alg, p) : c->im->get_params(c->alg, p))
                    : (set ? EVP_CIPHER_CTX_set_params(c->evp, p) : EVP_CIPHER_CTX_get_params(c->evp, p));
    return ok == 1 ? 0 : SDP_ECRYPTO;
}

static void ossl_key_idle(struct sdp_aead_key *k)
{
    if (k == NULL)
        return;
    ctx_free(&k->enc);
    ctx_free(&k->dec);
    sdp_keymem_free(k->small); /* wipes the schedule */
    k->small = NULL;
}

static int small_ok = -1; /* the CPU can take the short-record path: probed once */

/* The short-record path for this record, or NULL (OpenSSL serves it). */
static const struct sdp_gcm_small *ossl_small(struct sdp_aead_key *k, size_t aad_len, size_t len)
{
    if (len > SDP_GCM_SMALL_MAX || aad_len > SDP_GCM_SMALL_MAX || k->key_len != 16)
        return NULL;
    if (k->small)
        return k->small;
    int ok = __atomic_load_n(&small_ok, __ATOMIC_RELAXED);
    if (ok < 0) {
        ok = sdp_gcm_small_available() && !getenv("SDP_NO_GCM_SMALL");
        __atomic_store_n(&small_ok, ok, __ATOMIC_RELAXED);
    }
    if (!ok)
        return NULL;
    struct sdp_gcm_small *g = sdp_keymem_alloc(sizeof(*g));
    if (g == NULL)
        return NULL;
    if (sdp_gcm_small_init(g, k->key) != 0) {
        sdp_keymem_free(g);
        return NULL;
    }
    k->small = g;
    return g;
}

static void ossl_key_free(struct sdp_aead_key *k)
{
    if (k == NULL)
        return;
    ossl_key_idle(k);
    sdp_keymem_free(k);
}

/* The context of one direction, made and keyed on first use. */
static struct ossl_ctx *ossl_kctx(struct sdp_aead_key *k, int enc)
{
    struct ossl_ctx *c = enc ? &k->enc : &k->dec;
    if (c->alg || c->evp)
        return c;
    if (ctx_new(c, k->im) != 0)
        return NULL;
    if (ctx_init(c, enc, k->key, k->key_len, NULL) != 0) {
        ctx_free(c);
        return NULL;
    }
    return c;
}

static int ossl_key_new_len(size_t want, const uint8_t *key, size_t key_len,
                            const uint8_t iv[SDP_AEAD_IV_LEN], struct sdp_aead_key **out)
{
    if (out == NULL)
        return SDP_EINVAL;
    *out = NULL;
    if (key == NULL || iv == NULL || key_len != want)
        return SDP_EINVAL;
    const struct ossl_impl *im = ossl_cipher(key_len);
    if (im == NULL)
        return SDP_EUNAVAIL;
    /* Only the key's own length: an AES-128 key object fits 64 bytes. */
    struct sdp_aead_key *k = sdp_keymem_alloc(sizeof(*k) + key_len);
    if (k == NULL)
        return SDP_ENOMEM;
    memcpy(k->iv, iv, SDP_AEAD_IV_LEN);
    memcpy(k->key, key, key_len);
    k->key_len = (uint8_t)key_len;
    k->id = atomic_fetch_add(&ossl_next_key_id, 1);
    k->im = im;
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

    if (k == NULL || len > INT_MAX || aad_len > INT_MAX)
        return SDP_EINVAL;
    sdp_aead_nonce(nonce, k->iv, seq);
    const struct sdp_gcm_small *g = ossl_small(k, aad_len, len);
    if (g)
        return sdp_gcm_small_seal(g, nonce, aad, aad_len, pt, len, ct, tag) == 0 ? 0 : SDP_ECRYPTO;
    struct ossl_ctx *c = ossl_kctx(k, 1);
    if (c == NULL || ctx_init(c, 1, NULL, 0, nonce) != 0 || ctx_update(c, NULL, aad, aad_len) != 0 ||
        ctx_update(c, ct, pt, len) != 0 || ctx_final(c, 1) != 0 || ctx_tag(c, tag, 0) != 0)
        return SDP_ECRYPTO;
    return 0;
}

static int ossl_open(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                     const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt)
{
    uint8_t nonce[SDP_AEAD_IV_LEN];
    uint8_t tagcopy[SDP_AEAD_TAG_LEN];

    if (k == NULL || len > INT_MAX || aad_len > INT_MAX)
        return SDP_EINVAL;
    sdp_aead_nonce(nonce, k->iv, seq);
    /* The tag is copied first: pt may overlap the caller's tag buffer. */
    memcpy(tagcopy, tag, SDP_AEAD_TAG_LEN);
    const struct sdp_gcm_small *g = ossl_small(k, aad_len, len);
    if (g)
        return sdp_gcm_small_open(g, nonce, aad, aad_len, ct, len, tagcopy, pt);
    struct ossl_ctx *c = ossl_kctx(k, 0);
    int rc = SDP_ECRYPTO;
    if (c != NULL && ctx_init(c, 0, NULL, 0, nonce) == 0 && ctx_tag(c, tagcopy, 1) == 0 &&
        ctx_update(c, NULL, aad, aad_len) == 0 && ctx_update(c, pt, ct, len) == 0)
        rc = ctx_final(c, 0);
    if (rc != 0 && len)
        memset(pt, 0, len); /* never hand out unauthenticated plaintext */
    return rc;
}

static void ossl_stream_free(struct sdp_aead_stream *s)
{
    if (s == NULL)
        return;
    ctx_free(&s->ctx);
    sdp_keymem_free(s);
}

static int ossl_stream_new_len(size_t key_len, struct sdp_aead_stream **out)
{
    const struct ossl_impl *im = ossl_cipher(key_len);
    *out = NULL;
    if (im == NULL)
        return SDP_EUNAVAIL;
    struct sdp_aead_stream *s = sdp_keymem_alloc(sizeof(*s));
    if (s == NULL)
        return SDP_ENOMEM;
    s->key_len = key_len;
    /* An EVP context binds the cipher now, so that keying later reuses it. */
    if (ctx_new(&s->ctx, im) != 0 || (s->ctx.evp && ctx_init(&s->ctx, 0, NULL, 0, NULL) != 0)) {
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

    if (s == NULL || k == NULL || k->key_len != s->key_len || aad_len > INT_MAX)
        return SDP_EINVAL;
    sdp_aead_nonce(nonce, k->iv, seq);
    const uint8_t *key = s->key_id == k->id ? NULL : k->key;
    s->key_id = 0; /* until keying has worked */
    if (ctx_init(&s->ctx, 0, key, k->key_len, nonce) != 0)
        return SDP_ECRYPTO;
    s->key_id = k->id;
    return ctx_update(&s->ctx, NULL, aad, aad_len);
}

static int ossl_open_update(struct sdp_aead_stream *s, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len > INT_MAX)
        return SDP_EINVAL;
    return ctx_update(&s->ctx, out, in, len);
}

static int ossl_open_final(struct sdp_aead_stream *s, const uint8_t tag[SDP_AEAD_TAG_LEN])
{
    uint8_t tagcopy[SDP_AEAD_TAG_LEN];

    memcpy(tagcopy, tag, SDP_AEAD_TAG_LEN);
    if (ctx_tag(&s->ctx, tagcopy, 1) != 0)
        return SDP_ECRYPTO;
    return ctx_final(&s->ctx, 0);
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
