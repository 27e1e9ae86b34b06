/* Record layer properties: unique nonces, every authenticated input bound,
 * records pinned to their message, position and direction, control tags,
 * usage limits and layout checks.  Every property runs under every
 * available real provider. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keymem.h"
#include "crypto/record.h"
#include "sdp/sdp.h"

#define ID_MAX ((UINT64_C(1) << 48) - 1)

/* Layout computed here, independently of the code under test. */
static uint32_t t_nrec(uint32_t msg_len, uint32_t rec_size)
{
    return msg_len == 0 ? 1 : (msg_len + rec_size - 1) / rec_size;
}

static uint32_t t_rec_len(uint32_t msg_len, uint32_t rec_size, uint32_t idx)
{
    uint64_t off = (uint64_t)idx * rec_size;
    return msg_len - off < rec_size ? (uint32_t)(msg_len - off) : rec_size;
}

static void rk_from_secret(struct sdp_rec_key *rk, const struct sdp_aead_provider *p,
                           const uint8_t secret[32], uint64_t update_after)
{
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_not_null(tk);
    cr_assert_eq(sdp_keysched_derive(p->suite, secret, tk), 0);
    cr_assert_eq(sdp_rec_key_init(rk, p, tk, 0, update_after), 0);
    sdp_traffic_keys_free(tk);
}

static void rk_random(struct sdp_rec_key *rk, const struct sdp_aead_provider *p)
{
    uint8_t secret[32];
    sdp_random_bytes(secret, sizeof(secret));
    rk_from_secret(rk, p, secret, 0);
}

typedef void (*prop_fn)(const struct sdp_aead_provider *p);

static void for_each_provider(prop_fn fn)
{
    int n = 0;
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++) {
        if (!(*pp)->available() || ((*pp)->flags & SDP_AEAD_F_INSECURE))
            continue;
        fn(*pp);
        n++;
    }
    cr_assert_geq(n, 3);
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int cmp12(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

/* No two records under one key share a nonce: across 400 messages of 50
 * records, both id parities, and the extreme id and index.  Checked twice:
 * the nonces themselves, and black-box through the ciphertext of an all-zero
 * block (a repeated nonce would repeat the keystream). */
static void prop_unique_nonces(const struct sdp_aead_provider *p)
{
    enum { MSGS = 400, RECS = 50, N = MSGS * RECS + 2 };
    struct sdp_rec_key rk;
    uint8_t secret[32];
    sdp_random_bytes(secret, sizeof(secret));
    rk_from_secret(&rk, p, secret, 0);
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_eq(sdp_keysched_derive(p->suite, secret, tk), 0);

    uint8_t(*nonces)[12] = calloc(N, 12);
    uint8_t(*streams)[16] = calloc(N, 16);
    uint8_t zero[16] = {0}, tag[16];
    size_t n = 0;
    for (uint64_t m = 0; m < MSGS; m++) {
        /* Client ids 2, 4, ... and the server's odd ones, interleaved. */
        uint64_t id = 2 + m;
        for (uint32_t i = 0; i < RECS; i++, n++) {
            sdp_aead_nonce(nonces[n], tk->iv, sdp_rec_seq(id, i));
            cr_assert_eq(sdp_rec_seal(&rk, id, RECS * 16, 16, i, 0, zero, streams[n], tag), 0);
        }
    }
    /* The largest id with the largest index of the largest message. */
    uint64_t big[2][2] = {{ID_MAX, 65535}, {ID_MAX - 1, 0}};
    for (int j = 0; j < 2; j++, n++) {
        sdp_aead_nonce(nonces[n], tk->iv, sdp_rec_seq(big[j][0], (uint32_t)big[j][1]));
        cr_assert_eq(sdp_rec_seal(&rk, big[j][0], 65536u * 16, 16, (uint32_t)big[j][1], 0, zero,
                                  streams[n], tag), 0);
    }
    cr_assert_eq(n, N);
    qsort(nonces, N, 12, cmp12);
    qsort(streams, N, 16, cmp16);
    for (size_t i = 1; i < N; i++) {
        cr_assert(memcmp(nonces[i - 1], nonces[i], 12) != 0, "%s: nonce repeated", p->name);
        cr_assert(memcmp(streams[i - 1], streams[i], 16) != 0, "%s: keystream repeated", p->name);
    }
    cr_assert_eq(rk.data_sealed, (uint64_t)N);
    free(nonces);
    free(streams);
    sdp_traffic_keys_free(tk);
    sdp_rec_key_clear(&rk);
}

Test(record, unique_nonces)
{
    for_each_provider(prop_unique_nonces);
}

/* The seq packs id and index without overlap. */
Test(record, seq_layout)
{
    cr_assert_eq(sdp_rec_seq(1, 0), UINT64_C(0x10000));
    cr_assert_eq(sdp_rec_seq(ID_MAX, 65535), UINT64_MAX);
    cr_assert_eq(sdp_rec_seq(2, 3), UINT64_C(0x20003));
    uint8_t aad[16];
    sdp_rec_aad(aad, UINT64_C(0x0102030405aa), 0x0708, 0x090a0b0c, 0x0d0e, 0x04);
    static const uint8_t want[16] = {1, 4, 1, 2, 3, 4, 5, 0xaa, 7, 8, 9, 10, 11, 12, 13, 14};
    cr_assert(memcmp(aad, want, 16) == 0);
}

struct msg {
    uint64_t id;
    uint32_t len;
    uint16_t rec_size;
    uint8_t flags;
    uint8_t *pt, *wire; /* wire: records back to back, ct || tag */
};

static void msg_seal(struct sdp_rec_key *rk, struct msg *m)
{
    uint32_t n = t_nrec(m->len, m->rec_size);
    m->pt = malloc(m->len + 1);
    m->wire = malloc((size_t)m->len + 16u * n);
    for (uint32_t i = 0; i < m->len; i++)
        m->pt[i] = (uint8_t)(i * 31 + 7);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *w = m->wire + (size_t)i * (m->rec_size + 16u);
        uint32_t rl = t_rec_len(m->len, m->rec_size, i);
        cr_assert_eq(sdp_rec_seal(rk, m->id, m->len, m->rec_size, i, m->flags,
                                  m->pt + (size_t)i * m->rec_size, w, w + rl), 0);
    }
}

static void msg_free(struct msg *m)
{
    free(m->pt);
    free(m->wire);
}

/* Opens record idx of m's wire bytes under the given (possibly altered)
 * parameters; returns the record layer's result. */
static int open_as(struct sdp_rec_key *rk, const struct msg *m, uint32_t idx, uint64_t id,
                   uint32_t len, uint16_t rec_size, uint32_t as_idx, uint8_t flags)
{
    static uint8_t out[65536 + 16], rec[65536 + 32];
    const uint8_t *w = m->wire + (size_t)idx * (m->rec_size + 16u);
    uint32_t rl = t_rec_len(m->len, m->rec_size, idx);
    /* Altered parameters can make the record layer read a longer record
     * than the one sealed: give it a buffer that long (zeros after the
     * record and its tag), so a wrong length is refused, not over-read. */
    memset(rec, 0, sizeof(rec));
    memcpy(rec, w, rl + 16u);
    return sdp_rec_open(rk, id, len, rec_size, as_idx, flags, rec, rec + rl, out);
}

/* Flipping any bit of the ciphertext or tag, or of any AAD input (message
 * id, index, message length, record size hence record length, flags),
 * makes the open fail. */
static void prop_bitflips(const struct sdp_aead_provider *p)
{
    struct sdp_rec_key rk;
    rk_random(&rk, p);
    struct msg m = {.id = 0x123456789abc, .len = 100, .rec_size = 64, .flags = 0};
    msg_seal(&rk, &m);
    uint8_t out[64];
    for (uint32_t idx = 0; idx < 2; idx++) {
        uint8_t *w = m.wire + idx * (64 + 16);
        uint32_t rl = t_rec_len(m.len, 64, idx);
        cr_assert_eq(open_as(&rk, &m, idx, m.id, m.len, 64, idx, 0), 0);
        cr_assert_eq(sdp_rec_open(&rk, m.id, m.len, 64, idx, 0, w, w + rl, out), 0);
        cr_assert(memcmp(out, m.pt + idx * 64, rl) == 0);
        for (uint32_t bit = 0; bit < (rl + 16) * 8; bit++) {
            w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            memset(out, 0xee, sizeof(out));
            cr_assert_eq(sdp_rec_open(&rk, m.id, m.len, 64, idx, 0, w, w + rl, out), SDP_EBADMSG,
                         "%s: flipped bit %u of record %u opened", p->name, bit, idx);
            for (uint32_t i = 0; i < rl; i++)
                cr_assert_eq(out[i], 0, "plaintext left after failed open");
            w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        for (int bit = 0; bit < 48; bit++)
            cr_assert_neq(open_as(&rk, &m, idx, m.id ^ (UINT64_C(1) << bit), m.len, 64, idx, 0), 0);
        for (int bit = 0; bit < 16; bit++)
            cr_assert_neq(open_as(&rk, &m, idx, m.id, m.len, 64, idx ^ (1u << bit), 0), 0);
        for (int bit = 0; bit < 32; bit++)
            cr_assert_neq(open_as(&rk, &m, idx, m.id, m.len ^ (1u << bit), 64, idx, 0), 0);
        for (int bit = 0; bit < 16; bit++)
            cr_assert_neq(open_as(&rk, &m, idx, m.id, m.len, (uint16_t)(64 ^ (1u << bit)), idx, 0), 0);
        for (int bit = 0; bit < 8; bit++)
            cr_assert_neq(open_as(&rk, &m, idx, m.id, m.len, 64, idx, (uint8_t)(1u << bit)), 0);
    }
    /* Same layout, so these fail on the tag alone (not a layout check): */
    cr_assert_eq(open_as(&rk, &m, 0, m.id, 101, 64, 0, 0), SDP_EBADMSG);          /* msg_len */
    cr_assert_eq(open_as(&rk, &m, 0, m.id, m.len, 64, 0, 0x04), SDP_EBADMSG);     /* EARLY */
    cr_assert_eq(open_as(&rk, &m, 0, m.id + 2, m.len, 64, 0, 0), SDP_EBADMSG);    /* id */

    /* Each of the 128 AAD bits matters to the AEAD itself. */
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    struct sdp_aead_key *k;
    uint8_t secret[32], aad[16], ct[36], tag[16];
    sdp_random_bytes(secret, 32);
    sdp_keysched_derive(p->suite, secret, tk);
    cr_assert_eq(p->key_new(tk->key, tk->key_len, tk->iv, &k), 0);
    sdp_rec_aad(aad, m.id, 1, m.len, 36, 0);
    cr_assert_eq(p->seal(k, sdp_rec_seq(m.id, 1), aad, 16, m.pt + 64, 36, ct, tag), 0);
    for (int bit = 0; bit < 128; bit++) {
        aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(p->open(k, sdp_rec_seq(m.id, 1), aad, 16, ct, 36, tag, out), SDP_EBADMSG);
        aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    p->key_free(k);
    sdp_traffic_keys_free(tk);

    /* A full 16 KB record: a spread of bits. */
    struct msg big = {.id = 8, .len = 40000, .rec_size = 16384};
    msg_seal(&rk, &big);
    uint8_t *w = big.wire + 16400;
    for (uint32_t bit = 0; bit < (16384 + 16) * 8; bit += 97) {
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(open_as(&rk, &big, 1, big.id, big.len, 16384, 1, 0), SDP_EBADMSG);
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    cr_assert_eq(open_as(&rk, &big, 1, big.id, big.len, 16384, 1, 0), 0);
    msg_free(&big);
    msg_free(&m);
    sdp_rec_key_clear(&rk);
}

Test(record, every_bit_is_authenticated)
{
    for_each_provider(prop_bitflips);
}

/* Records cannot be moved: to another message id, another index of the same
 * length, or into a message of another length where the index exists. */
static void prop_moves(const struct sdp_aead_provider *p)
{
    struct sdp_rec_key rk;
    rk_random(&rk, p);
    struct msg a = {.id = 10, .len = 5 * 1000, .rec_size = 1000};
    struct msg b = {.id = 12, .len = 5 * 1000, .rec_size = 1000};
    msg_seal(&rk, &a);
    msg_seal(&rk, &b);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(open_as(&rk, &a, i, a.id, a.len, 1000, i, 0), 0);
        cr_assert_eq(open_as(&rk, &a, i, b.id, b.len, 1000, i, 0), SDP_EBADMSG); /* other msg */
        cr_assert_eq(open_as(&rk, &a, i, a.id ^ 1, a.len, 1000, i, 0), SDP_EBADMSG); /* response */
        for (uint32_t j = 0; j < 5; j++)
            if (j != i)
                cr_assert_eq(open_as(&rk, &a, i, a.id, a.len, 1000, j, 0), SDP_EBADMSG);
        cr_assert_eq(open_as(&rk, &a, i, a.id, a.len + 1000, 1000, i, 0), SDP_EBADMSG); /* longer */
    }
    /* Truncation: record 3 of 5 presented as the last of a 4-record message. */
    cr_assert_eq(open_as(&rk, &a, 3, a.id, 4000, 1000, 3, 0), SDP_EBADMSG);
    /* Identical plaintext in the same slot of two messages: different bytes. */
    cr_assert(memcmp(a.wire, b.wire, 1016) != 0);
    msg_free(&a);
    msg_free(&b);
    sdp_rec_key_clear(&rk);
}

Test(record, records_cannot_move)
{
    for_each_provider(prop_moves);
}

/* A's sending keys are not B's; nor are the next generation's. */
static void prop_directions(const struct sdp_aead_provider *p)
{
    uint8_t sa[32], sb[32], sn[32];
    struct sdp_rec_key a, b, n;
    sdp_random_bytes(sa, 32);
    sdp_random_bytes(sb, 32);
    cr_assert_eq(sdp_keysched_next(sa, sn), 0);
    rk_from_secret(&a, p, sa, 0);
    rk_from_secret(&b, p, sb, 0);
    rk_from_secret(&n, p, sn, 0);
    struct msg m = {.id = 40, .len = 3000, .rec_size = 1400};
    msg_seal(&a, &m);
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(open_as(&a, &m, i, m.id, m.len, 1400, i, 0), 0);
        cr_assert_eq(open_as(&b, &m, i, m.id, m.len, 1400, i, 0), SDP_EBADMSG);
        cr_assert_eq(open_as(&n, &m, i, m.id, m.len, 1400, i, 0), SDP_EBADMSG);
    }
    cr_assert_eq(b.open_failed, 3);
    /* Control tags do not cross directions either. */
    uint8_t pkt[32] = {0x15, 0, 0, 0, 0, 0, 0, 41};
    pkt[15] = 9; /* ctl_seq in bytes 8..15 */
    cr_assert_eq(sdp_ctl_seal(&a, pkt, sizeof(pkt), 9), 0);
    cr_assert_eq(sdp_ctl_open(&a, pkt, sizeof(pkt), 9), 0);
    cr_assert_eq(sdp_ctl_open(&b, pkt, sizeof(pkt), 9), SDP_EBADMSG);
    msg_free(&m);
    sdp_rec_key_clear(&a);
    sdp_rec_key_clear(&b);
    sdp_rec_key_clear(&n);
}

Test(record, directions_and_generations_are_separate)
{
    for_each_provider(prop_directions);
}

/* A GRANT-shaped packet: header, fields, ctl_seq, tag. */
static void make_grant(uint8_t pkt[40], uint64_t seq)
{
    memset(pkt, 0, 40);
    pkt[0] = 0x12; /* version 1, GRANT */
    pkt[7] = 43;   /* rpc id */
    pkt[10] = 0x40; /* offset */
    pkt[12] = 6;   /* priority */
    for (int i = 0; i < 8; i++)
        pkt[16 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

static void prop_control(const struct sdp_aead_provider *p)
{
    struct sdp_rec_key rk;
    uint8_t pkt[40], copy[40];
    uint64_t seq = UINT64_C(0x0300000000000007); /* engine 3, counter 7 */
    rk_random(&rk, p);
    make_grant(pkt, seq);
    cr_assert_eq(sdp_ctl_seal(&rk, pkt, 40, seq), 0);
    cr_assert_eq(rk.ctl_sealed, 1);
    cr_assert_eq(rk.data_sealed, 0);
    cr_assert_eq(sdp_ctl_open(&rk, pkt, 40, seq), 0);
    for (int bit = 0; bit < 40 * 8; bit++) {
        memcpy(copy, pkt, 40);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_neq(sdp_ctl_open(&rk, copy, 40, seq), 0, "%s: ctl bit %d", p->name, bit);
        if (bit >= 128 && bit < 192) {
            /* The seq field, with the caller passing what it decoded: the
             * nonce and the AAD both change, and the tag catches it. */
            uint64_t s2 = seq ^ (UINT64_C(1) << ((23 - bit / 8) * 8 + bit % 8));
            cr_assert_eq(sdp_ctl_open(&rk, copy, 40, s2), SDP_EBADMSG);
        }
    }
    /* Seq argument disagreeing with the packet: a caller bug, not a forgery. */
    cr_assert_eq(sdp_ctl_open(&rk, pkt, 40, seq + 1), SDP_EINVAL);
    cr_assert_eq(sdp_ctl_seal(&rk, pkt, 40, seq + 1), SDP_EINVAL);
    /* Truncated or extended packets fail. */
    cr_assert_neq(sdp_ctl_open(&rk, pkt, 39, seq), 0);
    cr_assert_eq(sdp_ctl_open(&rk, pkt, 31, seq), SDP_EINVAL);
    /* A control tag is not a data tag: the keys differ. */
    uint8_t zero[1], tag[16];
    cr_assert_eq(sdp_rec_seal(&rk, 43, 0, 16384, 0, 0, zero, zero, tag), 0);
    cr_assert(memcmp(tag, pkt + 24, 16) != 0);
    sdp_rec_key_clear(&rk);
}

Test(record, control_packets)
{
    for_each_provider(prop_control);
}

static void prop_limits(const struct sdp_aead_provider *p)
{
    struct sdp_rec_key rk;
    uint8_t secret[32], pt[100] = {1}, ct[100], tag[16], out[100], pkt[40];
    sdp_random_bytes(secret, 32);
    rk_from_secret(&rk, p, secret, 3);
    cr_assert_eq(rk.update_after, 3);
    if (p->suite == SDP_SUITE_CHACHA20POLY1305) {
        cr_assert_eq(rk.seal_limit, SDP_CHACHA_SEAL_LIMIT);
        cr_assert_eq(rk.fail_limit, SDP_CHACHA_FAIL_LIMIT);
    } else {
        cr_assert_eq(rk.seal_limit, SDP_AESGCM_SEAL_LIMIT);
        cr_assert_eq(rk.fail_limit, SDP_AESGCM_FAIL_LIMIT);
    }
    rk.seal_limit = 5;
    rk.fail_limit = 2;
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(sdp_rec_key_needs_update(&rk), i >= 3);
        cr_assert_eq(sdp_rec_seal(&rk, 2, 500, 100, i, 0, pt, ct, tag), 0);
    }
    cr_assert(sdp_rec_key_needs_update(&rk));
    cr_assert_eq(sdp_rec_seal(&rk, 4, 100, 100, 0, 0, pt, ct, tag), SDP_EKEYLIMIT);
    cr_assert_eq(rk.data_sealed, 5);
    /* The last record sealed still opens; then two forgeries use up the
     * integrity budget and even a genuine record is refused. */
    cr_assert_eq(sdp_rec_open(&rk, 2, 500, 100, 4, 0, ct, tag, out), 0);
    tag[0] ^= 1;
    cr_assert_eq(sdp_rec_open(&rk, 2, 500, 100, 4, 0, ct, tag, out), SDP_EBADMSG);
    make_grant(pkt, 1);
    cr_assert_eq(sdp_ctl_open(&rk, pkt, 40, 1), SDP_EBADMSG); /* counted too */
    cr_assert_eq(rk.open_failed, 2);
    tag[0] ^= 1;
    cr_assert_eq(sdp_rec_open(&rk, 2, 500, 100, 4, 0, ct, tag, out), SDP_EKEYLIMIT);
    cr_assert_eq(sdp_ctl_open(&rk, pkt, 40, 1), SDP_EKEYLIMIT);
    sdp_rec_key_clear(&rk);

    /* Control key: its own counter and the same hard limit. */
    rk_from_secret(&rk, p, secret, 0);
    cr_assert_eq(rk.update_after, rk.seal_limit / 2);
    rk.seal_limit = 2;
    for (uint64_t s = 1; s <= 2; s++) {
        make_grant(pkt, s);
        cr_assert_eq(sdp_ctl_seal(&rk, pkt, 40, s), 0);
    }
    make_grant(pkt, 3);
    cr_assert_eq(sdp_ctl_seal(&rk, pkt, 40, 3), SDP_EKEYLIMIT);
    cr_assert(sdp_rec_key_needs_update(&rk));
    cr_assert_eq(rk.data_sealed, 0);
    sdp_rec_key_clear(&rk);
    sdp_rec_key_clear(&rk); /* twice is fine */
}

Test(record, usage_limits)
{
    for_each_provider(prop_limits);
}

static void prop_empty(const struct sdp_aead_provider *p)
{
    struct sdp_rec_key rk;
    uint8_t tag[16];
    rk_random(&rk, p);
    cr_assert_eq(sdp_rec_seal(&rk, 6, 0, 16384, 0, 0, NULL, NULL, tag), 0);
    cr_assert_eq(sdp_rec_open(&rk, 6, 0, 16384, 0, 0, NULL, tag, NULL), 0);
    cr_assert_eq(sdp_rec_open(&rk, 6, 0, 1, 0, 0, NULL, tag, NULL), 0); /* rec_size not in AAD */
    cr_assert_eq(sdp_rec_open(&rk, 8, 0, 16384, 0, 0, NULL, tag, NULL), SDP_EBADMSG);
    cr_assert_eq(sdp_rec_open(&rk, 6, 0, 16384, 1, 0, NULL, tag, NULL), SDP_EINVAL);
    tag[7] ^= 0x80;
    cr_assert_eq(sdp_rec_open(&rk, 6, 0, 16384, 0, 0, NULL, tag, NULL), SDP_EBADMSG);
    sdp_rec_key_clear(&rk);
}

Test(record, zero_length_message)
{
    for_each_provider(prop_empty);
}

static void prop_layout(const struct sdp_aead_provider *p)
{
    struct sdp_rec_key rk;
    uint8_t buf[16400], tag[16];
    memset(buf, 3, sizeof(buf));
    rk_random(&rk, p);
    cr_assert_eq(sdp_rec_seal(&rk, 0, 10, 10, 0, 0, buf, buf, tag), SDP_EINVAL);
    cr_assert_eq(sdp_rec_seal(&rk, ID_MAX + 1, 10, 10, 0, 0, buf, buf, tag), SDP_EINVAL);
    cr_assert_eq(sdp_rec_seal(&rk, ID_MAX, 10, 10, 0, 0, buf, buf, tag), 0);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 10, 0, 0, 0, buf, buf, tag), SDP_EINVAL);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 20000, 16385, 0, 0, buf, buf, tag), SDP_EINVAL);
    cr_assert_eq(sdp_rec_seal(&rk, 2, (1u << 30) + 1, 16384, 0, 0, buf, buf, tag), SDP_EINVAL);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 1u << 30, 16384, 65535, 0, buf, buf, tag), 0);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 65537, 1, 0, 0, buf, buf, tag), SDP_EINVAL); /* 65,537 recs */
    cr_assert_eq(sdp_rec_seal(&rk, 2, 65536, 1, 65535, 0, buf, buf, tag), 0);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 100, 10, 10, 0, buf, buf, tag), SDP_EINVAL); /* idx = nrec */
    cr_assert_eq(sdp_rec_seal(&rk, 2, 100, 10, 9, 0x01, buf, buf, tag), SDP_EINVAL); /* flag */
    cr_assert_eq(sdp_rec_seal(&rk, 2, 100, 10, 9, 0x04, buf, buf, tag), 0);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 100, 10, 9, 0, NULL, buf, tag), SDP_EINVAL);
    cr_assert_eq(sdp_rec_seal(NULL, 2, 100, 10, 9, 0, buf, buf, tag), SDP_EINVAL);
    /* In-place open, and the last short record. */
    uint8_t pt[7] = {1, 2, 3, 4, 5, 6, 7};
    memcpy(buf, pt, 7);
    cr_assert_eq(sdp_rec_seal(&rk, 2, 16384 + 7, 16384, 1, 0, buf, buf, tag), 0);
    cr_assert(memcmp(buf, pt, 7) != 0);
    cr_assert_eq(sdp_rec_open(&rk, 2, 16384 + 7, 16384, 1, 0, buf, tag, buf), 0);
    cr_assert(memcmp(buf, pt, 7) == 0);
    struct sdp_rec_key zero;
    memset(&zero, 0, sizeof(zero));
    sdp_rec_key_clear(&zero);
    sdp_rec_key_clear(&rk);
}

Test(record, layout_checks)
{
    for_each_provider(prop_layout);
}

Test(record, key_init_checks)
{
    const struct sdp_aead_provider *p, *chacha;
    struct sdp_rec_key rk;
    uint8_t secret[32] = {5};
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_CHACHA20POLY1305, NULL, 0, &chacha), 0);
    cr_assert_eq(sdp_keysched_derive(SDP_SUITE_AES128GCM, secret, tk), 0);
    cr_assert_eq(sdp_rec_key_init(&rk, chacha, tk, 0, 0), SDP_EINVAL); /* suite mismatch */
    cr_assert_null(rk.data);
    cr_assert_eq(sdp_rec_key_init(&rk, NULL, tk, 0, 0), SDP_EINVAL);
    cr_assert_eq(sdp_rec_key_init(&rk, p, tk, 7, 1ull << 40), 0);
    cr_assert_eq(rk.update_after, rk.seal_limit); /* clamped */
    cr_assert_eq(rk.generation, 7);
    sdp_rec_key_clear(&rk);
    cr_assert_null(rk.prov);
    sdp_traffic_keys_free(tk);
}

/* The null provider still goes through the record layer's checks, and a
 * corrupted tag is still seen. */
Test(record, null_provider)
{
    const struct sdp_aead_provider *p;
    struct sdp_rec_key rk;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, SDP_AEAD_ALLOW_INSECURE, &p), 0);
    rk_random(&rk, p);
    struct msg m = {.id = 2, .len = 3000, .rec_size = 1000};
    msg_seal(&rk, &m);
    cr_assert(memcmp(m.wire, m.pt, 1000) == 0);
    cr_assert_eq(open_as(&rk, &m, 1, m.id, m.len, 1000, 1, 0), 0);
    m.wire[1016 + 1000 + 3] = 1; /* tag of record 1 */
    cr_assert_eq(open_as(&rk, &m, 1, m.id, m.len, 1000, 1, 0), SDP_EBADMSG);
    msg_free(&m);
    sdp_rec_key_clear(&rk);
}
