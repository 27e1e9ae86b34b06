/* Key schedule: HKDF-Expand-Label (RFC 8446 7.1) over OpenSSL's TLS13-KDF,
 * used QUIC-style to turn a per-direction traffic secret into keys and IVs,
 * and to step a secret to the next generation for key update.
 * Labels are documented in docs/PROTOCOL.md ("Key schedule"). */
#ifndef SDP_CRYPTO_KEYSCHED_H
#define SDP_CRYPTO_KEYSCHED_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"

#define SDP_SECRET_LEN 32 /* SHA-256 output: every suite uses SHA-256 */

#define SDP_LABEL_KEY "sdp key"
#define SDP_LABEL_IV "sdp iv"
#define SDP_LABEL_CTL_KEY "sdp ctl key"
#define SDP_LABEL_CTL_IV "sdp ctl iv"
#define SDP_LABEL_KU "sdp ku"

/* HKDF-Expand-Label(secret, label, context, out_len) with the "tls13 "
 * prefix; digest is an OpenSSL digest name ("SHA256", "SHA384").
 * Returns 0, SDP_EINVAL (lengths), or SDP_ECRYPTO. */
int sdp_hkdf_expand_label(const char *digest, const uint8_t *secret, size_t secret_len,
                          const char *label, const uint8_t *context, size_t context_len,
                          uint8_t *out, size_t out_len);

/* Keys of one direction and generation.  Allocate with
 * sdp_traffic_keys_new (locked memory), release with _free (wiped). */
struct sdp_traffic_keys {
    enum sdp_suite suite;
    size_t key_len;
    uint8_t key[SDP_AEAD_KEY_MAX];
    uint8_t iv[SDP_AEAD_IV_LEN];
    uint8_t ctl_key[SDP_AEAD_KEY_MAX];
    uint8_t ctl_iv[SDP_AEAD_IV_LEN];
};

struct sdp_traffic_keys *sdp_traffic_keys_new(void);
void sdp_traffic_keys_free(struct sdp_traffic_keys *k);

/* Derive data and control keys and IVs from a traffic secret.
 * The null suite derives like AES-128-GCM (its keys are unused). */
int sdp_keysched_derive(enum sdp_suite suite, const uint8_t secret[SDP_SECRET_LEN],
                        struct sdp_traffic_keys *out);

/* next = HKDF-Expand-Label(secret, "sdp ku", "", 32); next may alias secret. */
int sdp_keysched_next(const uint8_t secret[SDP_SECRET_LEN], uint8_t next[SDP_SECRET_LEN]);

#endif
