/* libFuzzer target for the record layer's open paths.
 *
 * Input byte 0 picks a mode; the rest is split into the parameters.
 *   0: open arbitrary (msg_id, idx, msg_len, rec_size, flags, tag, ct)
 *   1: seal a record from the input, flip one input-chosen byte of ct||tag,
 *      open: it must open exactly when nothing was flipped
 *   2: open an arbitrary control packet
 * Each runs under AES-128-GCM, ChaCha20-Poly1305 and the null provider
 * (whose zero tag lets random input open).  Whenever an open succeeds,
 * sealing the plaintext again must give back the same ciphertext and tag. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keysched.h"
#include "crypto/record.h"
#include "sdp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPROV 3
static struct sdp_rec_key keys[NPROV];
static int ready;

/* The key objects hold OpenSSL contexts from locked (mmap'd) memory, which
 * LeakSanitizer does not scan: release them at exit. */
static void teardown(void)
{
    for (int i = 0; i < NPROV; i++)
        sdp_rec_key_clear(&keys[i]);
}

static void setup(void)
{
    static const enum sdp_suite suites[NPROV] = {SDP_SUITE_AES128GCM, SDP_SUITE_CHACHA20POLY1305,
                                                 SDP_SUITE_NULL_INSECURE};
    uint8_t secret[SDP_SECRET_LEN];
    for (int i = 0; i < SDP_SECRET_LEN; i++)
        secret[i] = (uint8_t)(0x40 + i);
    for (int i = 0; i < NPROV; i++) {
        const struct sdp_aead_provider *p;
        struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
        if (tk == NULL || sdp_aead_find(suites[i], NULL, SDP_AEAD_ALLOW_INSECURE, &p) != 0 ||
            sdp_keysched_derive(suites[i], secret, tk) != 0 ||
            sdp_rec_key_init(&keys[i], p, tk, 0, 0) != 0)
            abort();
        sdp_traffic_keys_free(tk);
    }
    atexit(teardown);
    ready = 1;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Record length per the protocol, or -1 when the layout is invalid (the
 * record layer must then refuse with SDP_EINVAL). */
static int64_t layout(uint64_t id, uint32_t msg_len, uint16_t rec_size, uint32_t idx, uint8_t flags)
{
    if (id == 0 || id >> 48 || rec_size == 0 || rec_size > 16384 || msg_len > (1u << 30) ||
        (flags & ~0x04u))
        return -1;
    uint64_t n = msg_len == 0 ? 1 : ((uint64_t)msg_len + rec_size - 1) / rec_size;
    if (n > 65536 || idx >= n)
        return -1;
    uint64_t left = msg_len - (uint64_t)idx * rec_size;
    return (int64_t)(left < rec_size ? left : rec_size);
}

static void reseal_check(struct sdp_rec_key *rk, uint64_t id, uint32_t msg_len, uint16_t rec_size,
                         uint32_t idx, uint8_t flags, const uint8_t *pt, const uint8_t *ct,
                         const uint8_t *tag, size_t len)
{
    uint8_t *ct2 = malloc(len + 1), tag2[16];
    rk->data_sealed = 0; /* the fuzzer seals far more than a key may */
    if (sdp_rec_seal(rk, id, msg_len, rec_size, idx, flags, pt, ct2, tag2) != 0 ||
        memcmp(ct2, ct, len) != 0 || memcmp(tag2, tag, 16) != 0)
        abort();
    free(ct2);
}

static void mode_open(struct sdp_rec_key *rk, const uint8_t *d, size_t n)
{
    if (n < 31)
        return;
    uint64_t id = be(d, 6);
    uint32_t idx = (uint32_t)be(d + 6, 2);
    uint32_t msg_len = (uint32_t)be(d + 8, 4);
    uint16_t rec_size = (uint16_t)be(d + 12, 2);
    uint8_t flags = d[14];
    const uint8_t *tag = d + 15;
    d += 31, n -= 31;
    int64_t len = layout(id, msg_len, rec_size, idx, flags);
    /* Exact-size heap copies so ASan sees any read past the record. */
    size_t cap = len > 0 ? (size_t)len : 0;
    uint8_t *ct = malloc(cap + 1), *pt = malloc(cap + 1);
    memset(ct, 0, cap);
    memcpy(ct, d, n < cap ? n : cap);
    rk->open_failed = 0;
    int rc = sdp_rec_open(rk, id, msg_len, rec_size, idx, flags, cap ? ct : NULL, tag,
                          cap ? pt : NULL);
    if (len < 0 && rc != SDP_EINVAL)
        abort();
    if (rc == 0)
        reseal_check(rk, id, msg_len, rec_size, idx, flags, pt, ct, tag, cap);
    else if (rc == SDP_EBADMSG)
        for (size_t i = 0; i < cap; i++)
            if (pt[i] != 0)
                abort(); /* unauthenticated plaintext left behind */
    free(ct);
    free(pt);
}

static void mode_tamper(struct sdp_rec_key *rk, int insecure, const uint8_t *d, size_t n)
{
    if (n < 12)
        return;
    /* Keep the layout valid so the seal goes through. */
    uint64_t id = be(d, 6) | 1;
    uint16_t rec_size = (uint16_t)(be(d + 6, 2) % 2048 + 1);
    uint16_t pos = (uint16_t)be(d + 8, 2);
    uint8_t mask = d[10], flags = d[11] & 0x04;
    d += 12, n -= 12;
    uint32_t msg_len = (uint32_t)n;
    uint32_t nrec = msg_len == 0 ? 1 : (msg_len + rec_size - 1) / rec_size;
    uint32_t idx = (uint32_t)(pos % nrec);
    size_t len = (size_t)layout(id, msg_len, rec_size, idx, flags);
    uint8_t *buf = malloc(len + 16), *pt = malloc(len + 1);
    const uint8_t *src = d + (size_t)idx * rec_size;
    rk->data_sealed = 0;
    if (sdp_rec_seal(rk, id, msg_len, rec_size, idx, flags, len ? src : NULL, buf, buf + len) != 0)
        abort();
    size_t at = (size_t)mask * 131 % (len + 16);
    uint8_t x = (uint8_t)(pos >> 8);
    buf[at] ^= x;
    rk->open_failed = 0;
    int rc = sdp_rec_open(rk, id, msg_len, rec_size, idx, flags, len ? buf : NULL, buf + len,
                          len ? pt : NULL);
    int expect_ok = x == 0 || (insecure && at < len);
    if (expect_ok ? rc != 0 : rc != SDP_EBADMSG)
        abort();
    if (rc == 0 && x == 0 && len && memcmp(pt, src, len) != 0)
        abort();
    free(buf);
    free(pt);
}

static void mode_ctl(struct sdp_rec_key *rk, const uint8_t *d, size_t n)
{
    uint64_t seq = n >= 24 ? be(d + n - 24, 8) : 0;
    uint8_t *pkt = malloc(n + 1);
    memcpy(pkt, d, n);
    rk->open_failed = 0;
    int rc = sdp_ctl_open(rk, n ? pkt : NULL, n, seq);
    if (rc == 0) {
        uint8_t *copy = malloc(n);
        memcpy(copy, pkt, n);
        memset(copy + n - 16, 0, 16);
        rk->ctl_sealed = 0;
        if (sdp_ctl_seal(rk, copy, n, seq) != 0 || memcmp(copy, pkt, n) != 0)
            abort();
        free(copy);
    }
    free(pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    for (int i = 0; i < NPROV; i++) {
        switch (data[0] % 3) {
        case 0: mode_open(&keys[i], data + 1, size - 1); break;
        case 1: mode_tamper(&keys[i], i == NPROV - 1, data + 1, size - 1); break;
        default: mode_ctl(&keys[i], data + 1, size - 1); break;
        }
    }
    return 0;
}
