/* libFuzzer target: the short-record AES-128-GCM path (crypto/gcm_small.c)
 * against OpenSSL's EVP on any key, nonce, AAD and plaintext.
 *
 * Input: key (16) | nonce (12) | aad length (1) | flip (2) | rest split
 * into AAD and plaintext.  Sealing must equal EVP byte for byte; opening
 * must give the plaintext back; with one bit flipped (chosen by the input,
 * anywhere in tag, AAD or ciphertext) opening must fail and zero the
 * output.  Without the CPU instructions there is nothing to compare. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/gcm_small.h"
#include "sdp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t ct[SDP_GCM_SMALL_MAX], ref[SDP_GCM_SMALL_MAX + 16], back[SDP_GCM_SMALL_MAX];
    if (size < 31 || !sdp_gcm_small_available())
        return 0;
    const uint8_t *key = data, *nonce = data + 16;
    size_t aad_len = data[28] % (SDP_GCM_SMALL_MAX + 1);
    unsigned flip = (unsigned)data[29] << 8 | data[30];
    data += 31;
    size -= 31;
    if (aad_len > size)
        aad_len = size;
    uint8_t aad[256];
    memcpy(aad, data, aad_len);
    const uint8_t *pt = data + aad_len;
    size_t len = size - aad_len;
    if (len > SDP_GCM_SMALL_MAX)
        len = SDP_GCM_SMALL_MAX;

    struct sdp_gcm_small g;
    if (sdp_gcm_small_init(&g, key) != 0)
        abort();
    uint8_t tag[16], rtag[16];
    if (sdp_gcm_small_seal(&g, nonce, aad, aad_len, pt, len, ct, tag) != 0)
        abort();

    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n;
    if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) != 1 ||
        (aad_len && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
        (len && EVP_EncryptUpdate(c, ref, &n, pt, (int)len) != 1) || EVP_EncryptFinal_ex(c, ref + len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, rtag) != 1)
        abort();
    EVP_CIPHER_CTX_free(c);
    if (memcmp(ct, ref, len) != 0 || memcmp(tag, rtag, 16) != 0)
        abort(); /* differs from OpenSSL */

    if (sdp_gcm_small_open(&g, nonce, aad, aad_len, ct, len, tag, back) != 0 || memcmp(back, pt, len) != 0)
        abort();
    size_t where = flip % (16 + aad_len + len);
    uint8_t bit = (uint8_t)(1u << (flip >> 13));
    uint8_t *at = where < 16 ? tag + where : where < 16 + aad_len ? aad + (where - 16) : ct + (where - 16 - aad_len);
    *at ^= bit;
    memset(back, 0x5a, len);
    if (sdp_gcm_small_open(&g, nonce, aad, aad_len, ct, len, tag, back) != SDP_EBADMSG)
        abort(); /* a forgery opened */
    for (size_t i = 0; i < len; i++)
        if (back[i] != 0)
            abort();
    return 0;
}
