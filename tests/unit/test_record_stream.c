/* Streaming record open against the one-call open: for random layouts,
 * random splits into pieces, in place or from another buffer, and a bit
 * flipped in the ciphertext, the tag or nowhere, both give the same
 * plaintext and fail exactly together, and a failed stream leaves no
 * plaintext behind.  Every provider that streams is checked; the stream
 * pool hands out and recycles its states per provider. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keymem.h"
#include "crypto/record.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(next() % n) : 0;
}

static void keys_for(const struct sdp_aead_provider *p, struct sdp_rec_key *tx, struct sdp_rec_key *rx1,
                     struct sdp_rec_key *rx2)
{
    uint8_t secret[32];
    sdp_random_bytes(secret, sizeof(secret));
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_not_null(tk);
    cr_assert_eq(sdp_keysched_derive(p->suite, secret, tk), 0);
    cr_assert_eq(sdp_rec_key_init(tx, p, tk, 0, 0), 0);
    cr_assert_eq(sdp_rec_key_init(rx1, p, tk, 0, 0), 0);
    cr_assert_eq(sdp_rec_key_init(rx2, p, tk, 0, 0), 0);
    sdp_traffic_keys_free(tk);
}

static int streams_checked;

/* One provider: ITERS random records through both paths. */
static void prop_stream_equals_oneshot(const struct sdp_aead_provider *p)
{
    enum { ITERS = 1500 };
    struct sdp_rec_key tx, rx1, rx2;
    struct sdp_rec_streams pool;
    memset(&pool, 0, sizeof(pool));
    keys_for(p, &tx, &rx1, &rx2);
    uint8_t *pt = malloc(SDP_REC_SIZE_MAX), *ct = malloc(SDP_REC_SIZE_MAX), *out1 = malloc(SDP_REC_SIZE_MAX),
            *out2 = malloc(SDP_REC_SIZE_MAX);
    cr_assert(pt && ct && out1 && out2);
    uint32_t fails = 0;
    for (int it = 0; it < ITERS; it++) {
        /* Small records often, so splits hit block boundaries and empty pieces. */
        uint16_t rec_size = (uint16_t)(it % 3 == 0 ? 1 + below(200) : 1 + below(SDP_REC_SIZE_MAX));
        uint32_t msg_len = below(3u * rec_size + 1);
        uint32_t nrec = sdp_msg_nrec(msg_len, rec_size);
        uint32_t idx = below(nrec);
        uint64_t id = 1 + (next() & ((UINT64_C(1) << 47) - 1));
        uint32_t rl = sdp_rec_len(msg_len, rec_size, idx);
        for (uint32_t i = 0; i < rl; i++)
            pt[i] = (uint8_t)next();
        uint8_t tag[SDP_TAG_LEN];
        cr_assert_eq(sdp_rec_seal(&tx, id, msg_len, rec_size, idx, 0, pt, ct, tag), 0);
        int flip = (int)below(3); /* 0 none, 1 ciphertext, 2 tag */
        if (flip == 1 && rl)
            ct[below(rl)] ^= (uint8_t)(1u << below(8));
        else if (flip == 2)
            tag[below(SDP_TAG_LEN)] ^= (uint8_t)(1u << below(8));
        int bad = (flip == 1 && rl) || flip == 2;

        int rc1 = sdp_rec_open(&rx1, id, msg_len, rec_size, idx, 0, ct, tag, out1);

        struct sdp_rec_stream *s = sdp_rec_stream_get(&pool, &rx2);
        cr_assert_not_null(s, "%s streams but the pool gave none", p->name);
        cr_assert_eq(sdp_rec_stream_begin(&rx2, s, id, msg_len, rec_size, idx, 0), 0);
        int inplace = below(2);
        memset(out2, 0xa5, rl);
        if (inplace)
            memcpy(out2, ct, rl);
        for (uint32_t o = 0; o < rl;) {
            uint32_t piece = below(4) == 0 ? 0 : 1 + below(below(2) ? 70 : rl - o);
            if (piece > rl - o)
                piece = rl - o;
            cr_assert_eq(sdp_rec_stream_update(s, inplace ? out2 + o : ct + o, piece, out2 + o), 0);
            o += piece;
        }
        cr_assert_eq(sdp_rec_stream_update(s, ct, 1, out2), SDP_EINVAL,
                     "a byte past the record is refused");
        int rc2 = sdp_rec_stream_end(&rx2, s, tag, out2);
        sdp_rec_stream_put(s);

        cr_assert_eq(rc1, bad ? SDP_EBADMSG : 0, "%s: one-call open of a %s record gave %d", p->name,
                     bad ? "corrupted" : "genuine", rc1);
        cr_assert_eq(rc2, rc1, "%s: stream gave %d, one call %d (rl %u, flip %d)", p->name, rc2, rc1, rl, flip);
        if (rc1 == 0) {
            cr_assert_eq(memcmp(out2, pt, rl), 0, "%s: stream plaintext differs (rl %u)", p->name, rl);
            cr_assert_eq(memcmp(out1, pt, rl), 0);
        } else {
            for (uint32_t i = 0; i < rl; i++)
                cr_assert_eq(out2[i], 0, "%s: plaintext of a failed stream left at %u", p->name, i);
            fails++;
        }
        cr_assert_eq(rx1.open_failed, rx2.open_failed, "both count failures toward the limit");
    }
    cr_assert_gt(fails, ITERS / 3, "corruption was exercised");
    /* A stream ended early (bytes missing) is refused, not verified. */
    struct sdp_rec_stream *s = sdp_rec_stream_get(&pool, &rx2);
    cr_assert_eq(sdp_rec_stream_begin(&rx2, s, 7, 100, 100, 0, 0), 0);
    uint8_t tag[SDP_TAG_LEN] = {0};
    cr_assert_eq(sdp_rec_stream_update(s, ct, 99, out2), 0);
    cr_assert_eq(sdp_rec_stream_end(&rx2, s, tag, out2), SDP_EINVAL);
    /* Layout rules are the one-call open's. */
    cr_assert_eq(sdp_rec_stream_begin(&rx2, s, 0, 100, 100, 0, 0), SDP_EINVAL, "id 0");
    cr_assert_eq(sdp_rec_stream_begin(&rx2, s, 7, 100, 100, 1, 0), SDP_EINVAL, "index past the end");
    cr_assert_eq(sdp_rec_stream_begin(&rx2, s, 7, 100, 100, 0, 0x80), SDP_EINVAL, "unknown AAD flag");
    rx2.open_failed = rx2.fail_limit;
    cr_assert_eq(sdp_rec_stream_begin(&rx2, s, 7, 100, 100, 0, 0), SDP_EKEYLIMIT, "integrity limit");
    sdp_rec_stream_put(s);
    sdp_rec_streams_fini(&pool);
    free(pt);
    free(ct);
    free(out1);
    free(out2);
    sdp_rec_key_clear(&tx);
    sdp_rec_key_clear(&rx1);
    sdp_rec_key_clear(&rx2);
    streams_checked++;
}

Test(record_stream, equals_oneshot_every_streaming_provider)
{
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++) {
        const struct sdp_aead_provider *p = *pp;
        if (!p->available() || !p->stream_new)
            continue;
        cr_assert(p->stream_free && p->open_init && p->open_update && p->open_final, "%s: partial table",
                  p->name);
        prop_stream_equals_oneshot(p);
    }
    /* OpenSSL AES-128/256-GCM and libsodium ChaCha20-Poly1305 at least. */
    cr_assert_geq(streams_checked, 3);
}

/* A key object's state must not leak into a stream serving another key:
 * alternate two keys of one provider through the same pooled state. */
Test(record_stream, state_rekeys_between_keys)
{
    const struct sdp_aead_provider *p;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    struct sdp_rec_key txa, rxa, rxa2, txb, rxb, rxb2;
    keys_for(p, &txa, &rxa, &rxa2);
    keys_for(p, &txb, &rxb, &rxb2);
    struct sdp_rec_streams pool;
    memset(&pool, 0, sizeof(pool));
    uint8_t pt[300], ct[300], out[300], tag[SDP_TAG_LEN];
    for (int i = 0; i < 300; i++)
        pt[i] = (uint8_t)i;
    for (int round = 0; round < 6; round++) {
        struct sdp_rec_key *tx = round & 1 ? &txb : &txa, *rx = round & 1 ? &rxb : &rxa;
        cr_assert_eq(sdp_rec_seal(tx, 5 + round, 300, 300, 0, 0, pt, ct, tag), 0);
        struct sdp_rec_stream *s = sdp_rec_stream_get(&pool, rx);
        cr_assert_eq(s, &pool.s[0], "one free state is reused");
        cr_assert_eq(sdp_rec_stream_begin(rx, s, 5 + round, 300, 300, 0, 0), 0);
        cr_assert_eq(sdp_rec_stream_update(s, ct, 300, out), 0);
        cr_assert_eq(sdp_rec_stream_end(rx, s, tag, out), 0, "round %d", round);
        cr_assert_eq(memcmp(out, pt, 300), 0);
        sdp_rec_stream_put(s);
    }
    sdp_rec_streams_fini(&pool);
    sdp_rec_key_clear(&txa);
    sdp_rec_key_clear(&rxa);
    sdp_rec_key_clear(&rxa2);
    sdp_rec_key_clear(&txb);
    sdp_rec_key_clear(&rxb);
    sdp_rec_key_clear(&rxb2);
}

/* The pool is bounded: the 17th request finds none and is counted; a
 * provider without streaming gets none at all (callers fall back). */
Test(record_stream, pool_bounded_and_fallback)
{
    const struct sdp_aead_provider *p, *nul;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, SDP_AEAD_ALLOW_INSECURE, &nul), 0);
    cr_assert_null(nul->stream_new, "the null provider uses the fallback");
    struct sdp_rec_key tx, rx, rx2, ntx, nrx, nrx2;
    keys_for(p, &tx, &rx, &rx2);
    keys_for(nul, &ntx, &nrx, &nrx2);
    struct sdp_rec_streams pool;
    memset(&pool, 0, sizeof(pool));
    struct sdp_rec_stream *got[SDP_REC_STREAMS];
    for (int i = 0; i < SDP_REC_STREAMS; i++) {
        got[i] = sdp_rec_stream_get(&pool, &rx);
        cr_assert_not_null(got[i]);
    }
    cr_assert_null(sdp_rec_stream_get(&pool, &rx));
    cr_assert_eq(pool.exhausted, 1);
    cr_assert_null(sdp_rec_stream_get(&pool, &nrx));
    sdp_rec_stream_put(got[3]);
    cr_assert_eq(sdp_rec_stream_get(&pool, &rx), got[3]);
    for (int i = 0; i < SDP_REC_STREAMS; i++)
        sdp_rec_stream_put(got[i]);
    sdp_rec_streams_fini(&pool);
    sdp_rec_key_clear(&tx);
    sdp_rec_key_clear(&rx);
    sdp_rec_key_clear(&rx2);
    sdp_rec_key_clear(&ntx);
    sdp_rec_key_clear(&nrx);
    sdp_rec_key_clear(&nrx2);
}
