/* AES-128-GCM for short records, straight on the CPU's AES and carry-less
 * multiply instructions (x86-64: AES-NI, PCLMULQDQ).
 *
 * Why: through OpenSSL 3's provider interface a 64-byte record costs about
 * 2,000 instructions (parameter plumbing for the IV and the tag, three
 * update/final calls), ten times the cipher work itself; small RPCs seal and
 * open two to four such records each.  Records up to SDP_GCM_SMALL_MAX bytes
 * take this path (aead_openssl.c); larger ones stay with OpenSSL, whose
 * interleaved assembly is faster per byte.  The two compute the same
 * function (NIST SP 800-38D, 96-bit IV, 128-bit tag): the known-answer
 * vectors and a differential test against EVP check this path
 * (tests/unit/test_aead.c), and fuzz_gcm_small compares them on any input.
 *
 * Constant time: AES rounds and GHASH use only the instructions above and
 * fixed-length integer operations; the tag check does not stop at the
 * first difference. */
#ifndef SDP_CRYPTO_GCM_SMALL_H
#define SDP_CRYPTO_GCM_SMALL_H

#include <stddef.h>
#include <stdint.h>

#define SDP_GCM_SMALL_MAX 96u /* record bytes: above this OpenSSL is faster (sdp-bench-crypto, docs/CORE.md) */

/* Expanded key: lives in locked memory (sdp_keymem_alloc), wiped on free. */
struct sdp_gcm_small {
    uint8_t rk[11][16]; /* AES-128 round keys */
    uint64_t h_hi, h_lo; /* GHASH key H = E(K, 0^128), bit-reflected (see gcm_small.c) */
};

/* 1 when this CPU has the instructions (and the build targets x86-64). */
int sdp_gcm_small_available(void);
/* Expand a 16-byte key.  0, or SDP_EUNAVAIL without the instructions. */
int sdp_gcm_small_init(struct sdp_gcm_small *g, const uint8_t key[16]);
/* len and aad_len at most SDP_GCM_SMALL_MAX (else SDP_EINVAL); ct may equal pt. */
int sdp_gcm_small_seal(const struct sdp_gcm_small *g, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[16]);
/* 0, or SDP_EBADMSG (pt then zeroed).  pt may equal ct. */
int sdp_gcm_small_open(const struct sdp_gcm_small *g, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                       const uint8_t *ct, size_t len, const uint8_t tag[16], uint8_t *pt);

#endif
