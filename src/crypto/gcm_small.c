/* AES-128-GCM for short records (see gcm_small.h for why).
 *
 * GHASH representation.  GCM reads a block's bits b0..b127 (b0 the top bit
 * of byte 0) as the polynomial sum(b_i x^i) over GF(2), modulo
 * P = x^128 + x^7 + x^2 + x + 1.  Here a block is held as two 64-bit
 * integers (hi, lo) = (bytes 0-7, bytes 8-15) read big-endian, so bit j of
 * the 128-bit value is b_(127-j): "bit-reflected".  The carry-less product
 * of two such values has bit t = c_(254-t), c the coefficients of the
 * product polynomial; shifted left by one, its upper 128 bits are the
 * reflected low half (x^0..x^127) and its lower 128 bits D the reflected
 * high half (x^128..x^255, as D' * x^128).  Since x^128 = x^7 + x^2 + x + 1
 * mod P, the high half folds in as D' * (1 + x + x^2 + x^7): multiplying
 * by x^k is a right shift by k in this representation, and the bits that
 * shift out (degrees >= 128) are F = D << 127 ^ D << 126 ^ D << 121
 * (truncated to 128 bits), which fold once more without overflowing.  So
 *     result = L ^ G ^ G >> 1 ^ G >> 2 ^ G >> 7,   G = D ^ F.
 * The known-answer vectors and the differential tests against OpenSSL
 * check this; it needs no table, so it has no key-dependent memory access. */
#include "crypto/gcm_small.h"

#include <string.h>

#include "crypto/keymem.h"
#include "sdp/sdp.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define GS_TARGET __attribute__((target("aes,pclmul,sse4.1")))

int sdp_gcm_small_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("sse4.1");
}

static inline uint64_t ld_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline void st_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

GS_TARGET static inline __m128i rk_ld(const struct sdp_gcm_small *g, int r)
{
    return _mm_loadu_si128((const __m128i *)(const void *)g->rk[r]);
}

/* One AES-128 key-schedule step: t from AESKEYGENASSIST on the previous
 * round key (its top word, rotated and substituted, with the round
 * constant). */
GS_TARGET static __m128i kx(__m128i k, __m128i t)
{
    t = _mm_shuffle_epi32(t, 0xff);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, t);
}

GS_TARGET static __m128i aes(const struct sdp_gcm_small *g, __m128i x)
{
    x = _mm_xor_si128(x, rk_ld(g, 0));
    for (int r = 1; r < 10; r++)
        x = _mm_aesenc_si128(x, rk_ld(g, r));
    return _mm_aesenclast_si128(x, rk_ld(g, 10));
}

/* Four blocks at once: independent chains keep the AES unit busy. */
GS_TARGET static void aes4(const struct sdp_gcm_small *g, __m128i x[4])
{
    __m128i k = rk_ld(g, 0);
    for (int i = 0; i < 4; i++)
        x[i] = _mm_xor_si128(x[i], k);
    for (int r = 1; r < 10; r++) {
        k = rk_ld(g, r);
        for (int i = 0; i < 4; i++)
            x[i] = _mm_aesenc_si128(x[i], k);
    }
    k = rk_ld(g, 10);
    for (int i = 0; i < 4; i++)
        x[i] = _mm_aesenclast_si128(x[i], k);
}

GS_TARGET int sdp_gcm_small_init(struct sdp_gcm_small *g, const uint8_t key[16])
{
    if (!sdp_gcm_small_available())
        return SDP_EUNAVAIL;
    __m128i rk[11];
    rk[0] = _mm_loadu_si128((const __m128i *)(const void *)key);
#define KX(i, rc) rk[i] = kx(rk[(i) - 1], _mm_aeskeygenassist_si128(rk[(i) - 1], rc))
    KX(1, 0x01);
    KX(2, 0x02);
    KX(3, 0x04);
    KX(4, 0x08);
    KX(5, 0x10);
    KX(6, 0x20);
    KX(7, 0x40);
    KX(8, 0x80);
    KX(9, 0x1b);
    KX(10, 0x36);
#undef KX
    for (int i = 0; i < 11; i++)
        _mm_storeu_si128((__m128i *)(void *)g->rk[i], rk[i]);
    uint8_t h[16];
    _mm_storeu_si128((__m128i *)(void *)h, aes(g, _mm_setzero_si128()));
    g->h_hi = ld_be64(h);
    g->h_lo = ld_be64(h + 8);
    /* g is locked key memory; these stack copies are the schedule too. */
    sdp_keymem_wipe(h, sizeof(h));
    sdp_keymem_wipe(rk, sizeof(rk));
    return 0;
}

struct ghash {
    uint64_t hi, lo;
};

/* y = (y ^ (xh, xl)) * H in GF(2^128), reflected as described above. */
GS_TARGET static void gmul(struct ghash *y, uint64_t xh, uint64_t xl, const struct sdp_gcm_small *g)
{
    __m128i a = _mm_set_epi64x((long long)(y->hi ^ xh), (long long)(y->lo ^ xl));
    __m128i b = _mm_set_epi64x((long long)g->h_hi, (long long)g->h_lo);
    __m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
    __m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
    __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));
    lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
    hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
    uint64_t q0 = (uint64_t)_mm_cvtsi128_si64(lo), q1 = (uint64_t)_mm_extract_epi64(lo, 1);
    uint64_t q2 = (uint64_t)_mm_cvtsi128_si64(hi), q3 = (uint64_t)_mm_extract_epi64(hi, 1);
    /* the 255-bit product, shifted left by one */
    q3 = (q3 << 1) | (q2 >> 63);
    q2 = (q2 << 1) | (q1 >> 63);
    q1 = (q1 << 1) | (q0 >> 63);
    q0 <<= 1;
    uint64_t gh = q1 ^ (q0 << 63) ^ (q0 << 62) ^ (q0 << 57), gl = q0;
    y->hi = q3 ^ gh ^ (gh >> 1) ^ (gh >> 2) ^ (gh >> 7);
    y->lo = q2 ^ gl ^ ((gl >> 1) | (gh << 63)) ^ ((gl >> 2) | (gh << 62)) ^ ((gl >> 7) | (gh << 57));
}

/* GHASH over p[0..n), the last block zero-padded. */
GS_TARGET static void ghash_bytes(struct ghash *y, const struct sdp_gcm_small *g, const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        gmul(y, ld_be64(p + i), ld_be64(p + i + 8), g);
    if (i < n) {
        uint8_t last[16] = {0};
        memcpy(last, p + i, n - i);
        gmul(y, ld_be64(last), ld_be64(last + 8), g);
    }
}

/* out = in ^ keystream, counter blocks nonce || ctr (ctr from 2). */
GS_TARGET static void ctr_xor(const struct sdp_gcm_small *g, __m128i j, const uint8_t *in, uint8_t *out, size_t n)
{
    uint32_t ctr = 2;
    size_t off = 0;
    while (off < n) {
        __m128i ks[4];
        for (int i = 0; i < 4; i++)
            ks[i] = _mm_insert_epi32(j, (int)__builtin_bswap32(ctr + (uint32_t)i), 3);
        aes4(g, ks);
        ctr += 4;
        for (int i = 0; i < 4 && off < n; i++, off += 16) {
            if (n - off >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + off));
                _mm_storeu_si128((__m128i *)(void *)(out + off), _mm_xor_si128(v, ks[i]));
            } else {
                uint8_t b[16];
                _mm_storeu_si128((__m128i *)(void *)b, ks[i]);
                for (size_t k = 0; k < n - off; k++)
                    out[off + k] = in[off + k] ^ b[k];
            }
        }
    }
}

/* The tag: E(K, J0) ^ GHASH(aad, ct, lengths). */
GS_TARGET static void tag_of(const struct sdp_gcm_small *g, __m128i j, const uint8_t *aad, size_t aad_len,
                             const uint8_t *ct, size_t len, uint8_t tag[16])
{
    struct ghash y = {0, 0};
    ghash_bytes(&y, g, aad, aad_len);
    ghash_bytes(&y, g, ct, len);
    gmul(&y, (uint64_t)aad_len * 8, (uint64_t)len * 8, g);
    uint8_t s[16];
    st_be64(s, y.hi);
    st_be64(s + 8, y.lo);
    __m128i t = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)s),
                              aes(g, _mm_insert_epi32(j, (int)__builtin_bswap32(1), 3)));
    _mm_storeu_si128((__m128i *)(void *)tag, t);
}

GS_TARGET static __m128i j_of(const uint8_t nonce[12])
{
    uint8_t b[16] = {0};
    memcpy(b, nonce, 12);
    return _mm_loadu_si128((const __m128i *)(const void *)b);
}

GS_TARGET int sdp_gcm_small_seal(const struct sdp_gcm_small *g, const uint8_t nonce[12], const uint8_t *aad,
                                 size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[16])
{
    if (len > SDP_GCM_SMALL_MAX || aad_len > SDP_GCM_SMALL_MAX)
        return SDP_EINVAL;
    __m128i j = j_of(nonce);
    ctr_xor(g, j, pt, ct, len);
    tag_of(g, j, aad, aad_len, ct, len, tag);
    return 0;
}

GS_TARGET int sdp_gcm_small_open(const struct sdp_gcm_small *g, const uint8_t nonce[12], const uint8_t *aad,
                                 size_t aad_len, const uint8_t *ct, size_t len, const uint8_t tag[16], uint8_t *pt)
{
    if (len > SDP_GCM_SMALL_MAX || aad_len > SDP_GCM_SMALL_MAX)
        return SDP_EINVAL;
    __m128i j = j_of(nonce);
    uint8_t want[16];
    tag_of(g, j, aad, aad_len, ct, len, want);
    /* Every byte compared, whatever the first difference. */
    uint8_t d = 0;
    for (int i = 0; i < 16; i++)
        d |= (uint8_t)(want[i] ^ tag[i]);
    if (d != 0) {
        if (len)
            memset(pt, 0, len); /* never hand out unauthenticated plaintext */
        return SDP_EBADMSG;
    }
    ctr_xor(g, j, ct, pt, len);
    return 0;
}

#else /* not x86-64: OpenSSL serves every record */

int sdp_gcm_small_available(void)
{
    return 0;
}

int sdp_gcm_small_init(struct sdp_gcm_small *g, const uint8_t key[16])
{
    (void)g;
    (void)key;
    return SDP_EUNAVAIL;
}

int sdp_gcm_small_seal(const struct sdp_gcm_small *g, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[16])
{
    (void)g, (void)nonce, (void)aad, (void)aad_len, (void)pt, (void)len, (void)ct, (void)tag;
    return SDP_EUNAVAIL;
}

int sdp_gcm_small_open(const struct sdp_gcm_small *g, const uint8_t nonce[12], const uint8_t *aad, size_t aad_len,
                       const uint8_t *ct, size_t len, const uint8_t tag[16], uint8_t *pt)
{
    (void)g, (void)nonce, (void)aad, (void)aad_len, (void)ct, (void)len, (void)tag, (void)pt;
    return SDP_EUNAVAIL;
}

#endif
