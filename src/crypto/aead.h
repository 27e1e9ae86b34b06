/* AEAD providers: a function table per cipher implementation.
 *
 * A provider seals and opens with a key object made once per key; per
 * record only the 64-bit sequence number changes (nonce = IV XOR seq,
 * TLS 1.3 style).  Batch calls exist so that a provider may complete work
 * asynchronously (the kernel shim will); the synchronous providers complete
 * every op before returning.
 *
 * A key object is used by one thread at a time.  Engines make one key
 * object per thread from the same key bytes.
 */
#ifndef SDP_CRYPTO_AEAD_H
#define SDP_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define SDP_AEAD_TAG_LEN 16
#define SDP_AEAD_IV_LEN 12
#define SDP_AEAD_KEY_MAX 32

enum sdp_suite {
    SDP_SUITE_AES128GCM = 1,
    SDP_SUITE_AES256GCM = 2,
    SDP_SUITE_CHACHA20POLY1305 = 3,
    /* No confidentiality, no integrity: for measuring what crypto costs.
     * Refused unless SDP_AEAD_ALLOW_INSECURE is passed. */
    SDP_SUITE_NULL_INSECURE = 0xff,
};

#define SDP_AEAD_F_ASYNC 0x1u    /* batch calls may return before completion */
#define SDP_AEAD_F_INSECURE 0x2u /* provides no protection at all */

#define SDP_AEAD_ALLOW_INSECURE 0x1u /* flag for sdp_aead_find() */

struct sdp_aead_key;    /* provider-specific, opaque */
struct sdp_aead_stream; /* provider-specific streaming-open state, opaque */

struct sdp_aead_op {
    uint64_t seq;
    const uint8_t *aad;
    size_t aad_len;
    const uint8_t *in;
    uint8_t *out; /* may equal in (in place) */
    size_t len;
    uint8_t *tag; /* seal: written; open: read */
    int status;   /* 0, SDP_EBADMSG, SDP_ECRYPTO, or SDP_EINPROGRESS */
    void *user;
};

struct sdp_aead_provider {
    const char *name;
    enum sdp_suite suite;
    size_t key_len;
    unsigned flags; /* SDP_AEAD_F_* */
    /* 1 when usable on this machine, 0 otherwise. */
    int (*available)(void);
    /* Make a key object; the key bytes are copied into locked memory. */
    int (*key_new)(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                   struct sdp_aead_key **out);
    /* Wipe and free; NULL is accepted. */
    void (*key_free)(struct sdp_aead_key *k);
    /* Optional (NULL: nothing to release).  Free what the key object made
     * for speed on first use (cipher contexts), keeping the key; the next
     * seal or open makes it again.  For keys of idle peers. */
    void (*key_idle)(struct sdp_aead_key *k);
    int (*seal)(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[SDP_AEAD_TAG_LEN]);
    /* Returns SDP_EBADMSG when the tag does not verify; out is then zeroed. */
    int (*open)(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt);
    /* Process n ops; returns how many completed now (each op's status set),
     * or a negative code.  Ops not completed have status SDP_EINPROGRESS and
     * are returned later by poll. */
    int (*seal_batch)(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n);
    int (*open_batch)(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n);
    /* Async providers only (NULL otherwise): collect up to max completed ops. */
    int (*poll)(struct sdp_aead_key *k, struct sdp_aead_op **done, size_t max);

    /* Streaming open, optional (all NULL when the provider has none; the
     * record layer then opens whole records in one call).  It lets a
     * receiver decrypt each piece of a record straight from the packet into
     * its final place as the pieces arrive in order.  A stream state is made
     * once and reused for many records under any key of this provider;
     * open_init starts a record (nonce from seq, then the AAD), open_update
     * takes ciphertext in order in pieces of any length (out may equal in),
     * open_final checks the tag: 0 or SDP_EBADMSG.  Plaintext written
     * before open_final returned 0 is unauthenticated: the caller must wipe
     * it on failure and never use it before.  open_final (either result)
     * or a new open_init ends a record. */
    int (*stream_new)(struct sdp_aead_stream **out);
    void (*stream_free)(struct sdp_aead_stream *s); /* wipes; NULL is accepted */
    int (*open_init)(struct sdp_aead_stream *s, struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad,
                     size_t aad_len);
    int (*open_update)(struct sdp_aead_stream *s, const uint8_t *in, size_t len, uint8_t *out);
    int (*open_final)(struct sdp_aead_stream *s, const uint8_t tag[SDP_AEAD_TAG_LEN]);
};

/* The provider for a suite, or by name when name is non-NULL.
 * Errors: SDP_EUNAVAIL (unknown or unusable here), SDP_EINSECURE (the null
 * provider without SDP_AEAD_ALLOW_INSECURE). */
int sdp_aead_find(enum sdp_suite suite, const char *name, unsigned flags,
                  const struct sdp_aead_provider **out);

/* All compiled-in providers, NULL-terminated (available or not). */
const struct sdp_aead_provider *const *sdp_aead_all(void);

/* Key length for a suite, 0 if unknown. */
size_t sdp_suite_key_len(enum sdp_suite suite);
const char *sdp_suite_name(enum sdp_suite suite);

/* Generic batch loops for synchronous providers. */
int sdp_aead_seal_batch_sync(const struct sdp_aead_provider *p, struct sdp_aead_key *k,
                             struct sdp_aead_op *ops, size_t n);
int sdp_aead_open_batch_sync(const struct sdp_aead_provider *p, struct sdp_aead_key *k,
                             struct sdp_aead_op *ops, size_t n);

/* Nonce = iv XOR (0^32 || seq big-endian). */
void sdp_aead_nonce(uint8_t nonce[SDP_AEAD_IV_LEN], const uint8_t iv[SDP_AEAD_IV_LEN], uint64_t seq);

#endif
