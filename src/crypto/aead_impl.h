/* Private to src/crypto: the compiled-in provider tables. */
#ifndef SDP_CRYPTO_AEAD_IMPL_H
#define SDP_CRYPTO_AEAD_IMPL_H

#include "crypto/aead.h"

extern const struct sdp_aead_provider sdp_aead_openssl_aes128gcm;
extern const struct sdp_aead_provider sdp_aead_openssl_aes256gcm;
extern const struct sdp_aead_provider sdp_aead_sodium_chacha20poly1305;
extern const struct sdp_aead_provider sdp_aead_sodium_aes256gcm;
extern const struct sdp_aead_provider sdp_aead_kshim_aes128gcm;
extern const struct sdp_aead_provider sdp_aead_kshim_aes256gcm;
extern const struct sdp_aead_provider sdp_aead_null;

#endif
