/* Bounded big-endian get/put helpers for the wire format.
 *
 * Every getter takes the end of the readable buffer and returns the advanced
 * pointer, or NULL when fewer bytes remain than the field needs; on NULL the
 * output is left untouched.  Every putter does the same with the end of the
 * writable buffer.  Packet memory is never cast to a struct.
 */
#ifndef SDP_COMMON_BYTES_H
#define SDP_COMMON_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline int sdp_bytes_left(const uint8_t *p, const uint8_t *end, size_t n)
{
    return p != NULL && p <= end && (size_t)(end - p) >= n;
}

static inline const uint8_t *sdp_get_u8(const uint8_t *p, const uint8_t *end, uint8_t *v)
{
    if (!sdp_bytes_left(p, end, 1))
        return NULL;
    *v = p[0];
    return p + 1;
}

static inline const uint8_t *sdp_get_u16be(const uint8_t *p, const uint8_t *end, uint16_t *v)
{
    if (!sdp_bytes_left(p, end, 2))
        return NULL;
    *v = (uint16_t)((uint16_t)p[0] << 8 | p[1]);
    return p + 2;
}

static inline const uint8_t *sdp_get_u32be(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    if (!sdp_bytes_left(p, end, 4))
        return NULL;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return p + 4;
}

/* 48-bit quantities (message ids) travel in six bytes. */
static inline const uint8_t *sdp_get_u48be(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (!sdp_bytes_left(p, end, 6))
        return NULL;
    uint64_t x = 0;
    for (int i = 0; i < 6; i++)
        x = x << 8 | p[i];
    *v = x;
    return p + 6;
}

static inline const uint8_t *sdp_get_u64be(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (!sdp_bytes_left(p, end, 8))
        return NULL;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    *v = x;
    return p + 8;
}

static inline const uint8_t *sdp_get_bytes(const uint8_t *p, const uint8_t *end, uint8_t *dst, size_t n)
{
    if (!sdp_bytes_left(p, end, n))
        return NULL;
    if (n)
        memcpy(dst, p, n);
    return p + n;
}

static inline uint8_t *sdp_put_u8(uint8_t *p, const uint8_t *end, uint8_t v)
{
    if (!sdp_bytes_left(p, end, 1))
        return NULL;
    p[0] = v;
    return p + 1;
}

static inline uint8_t *sdp_put_u16be(uint8_t *p, const uint8_t *end, uint16_t v)
{
    if (!sdp_bytes_left(p, end, 2))
        return NULL;
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *sdp_put_u32be(uint8_t *p, const uint8_t *end, uint32_t v)
{
    if (!sdp_bytes_left(p, end, 4))
        return NULL;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static inline uint8_t *sdp_put_u48be(uint8_t *p, const uint8_t *end, uint64_t v)
{
    if (!sdp_bytes_left(p, end, 6))
        return NULL;
    for (int i = 5; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
    return p + 6;
}

static inline uint8_t *sdp_put_u64be(uint8_t *p, const uint8_t *end, uint64_t v)
{
    if (!sdp_bytes_left(p, end, 8))
        return NULL;
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
    return p + 8;
}

static inline uint8_t *sdp_put_bytes(uint8_t *p, const uint8_t *end, const uint8_t *src, size_t n)
{
    if (!sdp_bytes_left(p, end, n))
        return NULL;
    if (n)
        memcpy(p, src, n);
    return p + n;
}

static inline uint8_t *sdp_put_zero(uint8_t *p, const uint8_t *end, size_t n)
{
    if (!sdp_bytes_left(p, end, n))
        return NULL;
    if (n)
        memset(p, 0, n);
    return p + n;
}

#endif
