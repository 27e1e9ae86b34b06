/* Incoming-message reassembly: placement in any order, duplicates and
 * overlaps, the record-0 staging bound before authentication, a record
 * that fails to open and its repair, and opened records never rewritten. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/msgin.h"
#include "core/msgout.h"
#include "crypto/keysched.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

static struct sdp_rec_key tx, rx;
static struct sdp_mem mem;
static struct sdp_rec_streams streams;

static void keys(void)
{
    const struct sdp_aead_provider *p;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    uint8_t secret[SDP_SECRET_LEN];
    memset(secret, 0x5a, sizeof(secret));
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_not_null(tk);
    cr_assert_eq(sdp_keysched_derive(SDP_SUITE_AES128GCM, secret, tk), 0);
    cr_assert_eq(sdp_rec_key_init(&tx, p, tk, 0, 0), 0);
    cr_assert_eq(sdp_rec_key_init(&rx, p, tk, 0, 0), 0);
    sdp_traffic_keys_free(tk);
    sdp_mem_init(&mem, NULL, UINT64_C(1) << 30);
}

static void unkeys(void)
{
    sdp_rec_key_clear(&tx);
    sdp_rec_key_clear(&rx);
    for (unsigned i = 0; i < SDP_REC_STREAMS; i++)
        cr_assert_eq(streams.s[i].busy, 0, "stream %u still held", i);
    sdp_rec_streams_fini(&streams);
    cr_assert_eq(mem.used, 0, "leaked %llu bytes", (unsigned long long)mem.used);
}

TestSuite(msgin, .init = keys, .fini = unkeys);

#define ID 42
#define LEN 50000u /* 4 records of 16 KB */

static uint8_t pt[LEN];

static void seal(struct sdp_msgout *o)
{
    for (uint32_t i = 0; i < LEN; i++)
        pt[i] = (uint8_t)(i * 7 + (i >> 9));
    cr_assert_eq(sdp_msgout_init(o, &mem, &tx, ID, pt, LEN, SDP_REC_SIZE_MAX, 60000), 0);
}

static void place(struct sdp_msgin *m, const struct sdp_msgout *o, uint32_t off, uint32_t len,
                  struct sdp_msgin_res *r)
{
    sdp_msgin_place(m, &mem, &rx, &streams, off, o->wire + off, len, SIZE_MAX, r);
}

/* Ask for what is missing until complete, as RESENDs would. */
static void repair(struct sdp_msgin *m, const struct sdp_msgout *o)
{
    struct sdp_msgin_res r = {0};
    for (int i = 0; i < 1000 && m->nopened < m->nrec; i++) {
        uint32_t off, len;
        cr_assert(sdp_msgin_missing(m, m->wire_len, &off, &len));
        if (len > 1448)
            len = 1448;
        place(m, o, off, len, &r);
    }
    cr_assert_eq(m->nopened, m->nrec);
    cr_assert_eq(memcmp(m->buf, pt, LEN), 0);
    cr_assert_eq(m->received, m->wire_len);
}

Test(msgin, reverse_order_stays_staged_until_record0)
{
    struct sdp_msgout o;
    seal(&o);
    struct sdp_msgin m;
    cr_assert_eq(sdp_msgin_init(&m, &mem, ID, LEN, SDP_REC_SIZE_MAX, 60000), 0);
    cr_assert(m.staged);
    size_t staged = m.alloc;
    cr_assert_leq(staged, (size_t)SDP_REC_SIZE_MAX + 64, "unauthenticated state is one record");
    struct sdp_msgin_res r;
    uint32_t offs[64], n = 0;
    for (uint32_t off = 0; off < o.wire_len; off += 1448)
        offs[n++] = off;
    for (uint32_t k = n; k-- > 0;) {
        uint32_t len = o.wire_len - offs[k] < 1448 ? o.wire_len - offs[k] : 1448;
        place(&m, &o, offs[k], len, &r);
        if (!m.authed)
            cr_assert_eq(m.alloc, staged, "grew before authentication");
    }
    cr_assert(m.authed);
    cr_assert_eq(m.nopened, 1, "only record 0 could be kept while staged");
    repair(&m, &o);
    sdp_msgin_fini(&m, &mem);
    sdp_msgout_fini(&o, &mem);
}

Test(msgin, overlaps_and_duplicates)
{
    struct sdp_msgout o;
    seal(&o);
    struct sdp_msgin m;
    cr_assert_eq(sdp_msgin_init(&m, &mem, ID, LEN, SDP_REC_SIZE_MAX, 60000), 0);
    struct sdp_msgin_res r;
    uint32_t x = 99;
    for (int i = 0; i < 3000 && m.nopened < m.nrec; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t off = (x >> 8) % o.wire_len;
        x = x * 1103515245u + 12345u;
        uint32_t len = 1 + (x >> 8) % 3000;
        if (len > o.wire_len - off)
            len = o.wire_len - off;
        place(&m, &o, off, len, &r);
        cr_assert_eq(r.nfailed, 0);
        cr_assert_leq(m.received, m.wire_len);
    }
    repair(&m, &o);
    sdp_msgin_fini(&m, &mem);
    sdp_msgout_fini(&o, &mem);
}

Test(msgin, corrupted_record_is_discarded_and_repaired)
{
    struct sdp_msgout o;
    seal(&o);
    struct sdp_msgin m;
    cr_assert_eq(sdp_msgin_init(&m, &mem, ID, LEN, SDP_REC_SIZE_MAX, 60000), 0);
    struct sdp_msgin_res r;
    uint32_t r2, r2len;
    sdp_msgin_rec_range(&m, 2, &r2, &r2len);
    uint8_t *bad = malloc(o.wire_len);
    memcpy(bad, o.wire, o.wire_len);
    bad[r2 + 100] ^= 1;
    uint32_t failed = 0;
    for (uint32_t off = 0; off < o.wire_len; off += 1448) {
        uint32_t len = o.wire_len - off < 1448 ? o.wire_len - off : 1448;
        sdp_msgin_place(&m, &mem, &rx, &streams, off, bad + off, len, SIZE_MAX, &r);
        if (r.nfailed) {
            cr_assert_eq(r.failed[0], 2);
            failed += r.nfailed;
        }
    }
    cr_assert_eq(failed, 1);
    cr_assert_eq(m.nopened, m.nrec - 1);
    uint32_t off, len;
    cr_assert(sdp_msgin_missing(&m, m.wire_len, &off, &len));
    cr_assert_eq(off, r2, "the failed record is asked for again");
    cr_assert_eq(len, r2len);
    free(bad);
    repair(&m, &o);
    sdp_msgin_fini(&m, &mem);
    sdp_msgout_fini(&o, &mem);
}

Test(msgin, opened_record_never_rewritten)
{
    struct sdp_msgout o;
    seal(&o);
    struct sdp_msgin m;
    cr_assert_eq(sdp_msgin_init(&m, &mem, ID, LEN, SDP_REC_SIZE_MAX, 60000), 0);
    struct sdp_msgin_res r;
    uint32_t r0, r0len;
    sdp_msgin_rec_range(&m, 0, &r0, &r0len);
    for (uint32_t off = 0; off < r0len; off += 1448)
        place(&m, &o, off, r0len - off < 1448 ? r0len - off : 1448, &r);
    cr_assert_eq(m.nopened, 1);
    cr_assert_eq(memcmp(m.buf, pt, SDP_REC_SIZE_MAX), 0);
    /* Lose track of record 0's bytes (a failed neighbour widening a gap
     * does this): new garbage for them must not touch the plaintext. */
    m.gaps[0].s = 0;
    m.gaps[0].e = 100;
    m.ngaps = 1;
    m.received -= 100;
    uint8_t junk[100];
    memset(junk, 0xee, sizeof(junk));
    sdp_msgin_place(&m, &mem, &rx, &streams, 0, junk, sizeof(junk), SIZE_MAX, &r);
    cr_assert_eq(memcmp(m.buf, pt, SDP_REC_SIZE_MAX), 0);
    repair(&m, &o);
    sdp_msgin_fini(&m, &mem);
    sdp_msgout_fini(&o, &mem);
}

Test(msgin, zero_length_message)
{
    struct sdp_msgout o;
    static const uint8_t none[1];
    cr_assert_eq(sdp_msgout_init(&o, &mem, &tx, ID, none, 0, SDP_REC_SIZE_MAX, 60000), 0);
    cr_assert_eq(o.wire_len, SDP_TAG_LEN);
    struct sdp_msgin m;
    cr_assert_eq(sdp_msgin_init(&m, &mem, ID, 0, SDP_REC_SIZE_MAX, SDP_TAG_LEN), 0);
    struct sdp_msgin_res r;
    place(&m, &o, 0, SDP_TAG_LEN, &r);
    cr_assert(r.complete);
    cr_assert(r.authed_now);
    uint8_t *d = sdp_msgin_take(&m);
    sdp_msgin_release(&mem, d);
    sdp_msgout_fini(&o, &mem);
}

/* Sealing from an iovec gives exactly the wire bytes of sealing the same
 * bytes from one buffer, whether records lie inside one element or
 * straddle several (including empty elements). */
Test(msgin, iovec_seal_matches_contiguous)
{
    struct sdp_msgout whole, parts;
    seal(&whole);
    static const size_t cuts[] = {0, 1, 16383, 16384, 16385, 20000, 20000, 49999, LEN};
    struct iovec iov[8];
    for (int i = 0; i < 8; i++)
        iov[i] = (struct iovec){.iov_base = pt + cuts[i], .iov_len = cuts[i + 1] - cuts[i]};
    /* The tx key has sealed ID once already: same id, same bytes, same
     * nonce is exactly a byte-identical retransmission, nothing new. */
    cr_assert_eq(sdp_msgout_initv(&parts, &mem, &tx, ID, iov, 8, LEN, SDP_REC_SIZE_MAX, 60000), 0);
    cr_assert_eq(parts.wire_len, whole.wire_len);
    cr_assert_eq(memcmp(parts.wire, whole.wire, whole.wire_len), 0, "iovec sealing changed the wire bytes");
    sdp_msgout_fini(&parts, &mem);
    cr_assert_eq(sdp_msgout_initv(&parts, &mem, &tx, ID, iov, 8, LEN - 1, SDP_REC_SIZE_MAX, 60000), SDP_EINVAL,
                 "lengths that disagree are refused");
    sdp_msgout_fini(&whole, &mem);
}

/* ---- the streaming path against the copy-and-open-in-place path ---- */

static uint64_t prng = 0x243f6a8885a308d3ull;

static uint32_t rnd(uint32_t n)
{
    prng ^= prng << 13;
    prng ^= prng >> 7;
    prng ^= prng << 17;
    return n ? (uint32_t)(prng % n) : 0;
}

static void same_result(const struct sdp_msgin_res *a, const struct sdp_msgin_res *b, int it, int step)
{
    cr_assert_eq(a->new_bytes, b->new_bytes, "iteration %d step %d", it, step);
    cr_assert_eq(a->opened, b->opened, "iteration %d step %d: opened %u vs %u", it, step, a->opened, b->opened);
    cr_assert_eq(a->authed_now, b->authed_now, "iteration %d step %d", it, step);
    cr_assert_eq(a->complete, b->complete, "iteration %d step %d", it, step);
    cr_assert_eq(a->nfailed, b->nfailed, "iteration %d step %d: failed %u vs %u", it, step, a->nfailed, b->nfailed);
    for (uint32_t k = 0; k < a->nfailed && k < 4; k++)
        cr_assert_eq(a->failed[k], b->failed[k], "iteration %d step %d", it, step);
}

/* Random messages cut into random pieces, delivered in order, shuffled, or
 * in order with duplicates and swaps, some pieces with a flipped bit: the
 * message with streams (A) and the one without (B) open and fail exactly
 * the same records at the same steps, and end with the same plaintext.  In
 * order and clean, A decrypts every byte straight from the packets. */
Test(msgin, streaming_matches_copy_path)
{
    enum { ITERS = 400, MAXP = 24 };
    uint8_t *body = malloc(5 * 3000), *bad = malloc(5 * 3000 + 5 * SDP_TAG_LEN);
    cr_assert(body && bad);
    uint64_t direct_in_order = 0;
    for (int it = 0; it < ITERS; it++) {
        uint16_t rec_size = (uint16_t)(16 + rnd(2985));
        uint32_t len = rnd(5u * rec_size + 1);
        uint64_t id = 2 + 2 * (uint64_t)it;
        for (uint32_t i = 0; i < len; i++)
            body[i] = (uint8_t)rnd(256);
        struct sdp_msgout o;
        cr_assert_eq(sdp_msgout_init(&o, &mem, &tx, id, len ? body : bad, len, rec_size, 60000), 0);
        struct sdp_msgin a, b;
        cr_assert_eq(sdp_msgin_init(&a, &mem, id, len, rec_size, 60000), 0);
        cr_assert_eq(sdp_msgin_init(&b, &mem, id, len, rec_size, 60000), 0);
        /* Cut points: at most MAXP pieces, so the gap list never overflows. */
        uint32_t cuts[MAXP + 1], n = 0, minp = o.wire_len / MAXP + 1;
        for (uint32_t off = 0; off < o.wire_len && n < MAXP;) {
            cuts[n++] = off;
            off += minp + rnd(2 * minp);
        }
        cuts[n] = o.wire_len;
        uint32_t order[2 * MAXP], norder = 0;
        int mode = (int)rnd(3), corrupt = rnd(3) == 0;
        for (uint32_t k = 0; k < n; k++) {
            order[norder++] = k;
            if (mode == 2 && rnd(4) == 0)
                order[norder++] = k; /* duplicate */
        }
        if (mode == 1)
            for (uint32_t k = norder; k > 1; k--) {
                uint32_t j = rnd(k), t = order[k - 1];
                order[k - 1] = order[j];
                order[j] = t;
            }
        if (mode == 2 && norder > 2) {
            uint32_t j = rnd(norder - 1), t = order[j];
            order[j] = order[j + 1];
            order[j + 1] = t;
        }
        for (uint32_t st = 0; st < norder; st++) {
            uint32_t k = order[st];
            uint32_t off = cuts[k] > o.wire_len ? o.wire_len : cuts[k];
            uint32_t plen = (cuts[k + 1] > o.wire_len ? o.wire_len : cuts[k + 1]) - off;
            const uint8_t *src = o.wire + off;
            if (corrupt && rnd(3) == 0) {
                memcpy(bad, src, plen);
                bad[rnd(plen)] ^= (uint8_t)(1u << rnd(8));
                src = bad;
            }
            struct sdp_msgin_res ra, rb;
            sdp_msgin_place(&a, &mem, &rx, &streams, off, src, plen, SIZE_MAX, &ra);
            sdp_msgin_place(&b, &mem, &rx, NULL, off, src, plen, SIZE_MAX, &rb);
            same_result(&ra, &rb, it, (int)st);
            cr_assert_eq(ra.gapdrop, 0);
            if (mode == 0 && !corrupt)
                cr_assert_eq(ra.inplace, 0, "iteration %d: in-order bytes went the copy path", it);
            direct_in_order += mode == 0 && !corrupt ? ra.direct : 0;
        }
        /* Repair both from the pristine bytes, as RESENDs would. */
        for (int guard = 0; guard < 1000 && a.nopened < a.nrec; guard++) {
            uint32_t off, l;
            cr_assert(sdp_msgin_missing(&a, a.wire_len, &off, &l));
            uint32_t off2, l2;
            cr_assert(sdp_msgin_missing(&b, b.wire_len, &off2, &l2));
            cr_assert_eq(off, off2);
            cr_assert_eq(l, l2);
            if (l > 1448)
                l = 1448;
            struct sdp_msgin_res ra, rb;
            sdp_msgin_place(&a, &mem, &rx, &streams, off, o.wire + off, l, SIZE_MAX, &ra);
            sdp_msgin_place(&b, &mem, &rx, NULL, off, o.wire + off, l, SIZE_MAX, &rb);
            same_result(&ra, &rb, it, 1000 + guard);
        }
        cr_assert_eq(a.nopened, a.nrec, "iteration %d", it);
        cr_assert_eq(b.nopened, b.nrec);
        cr_assert_eq(a.nst, 0, "no stream held by a complete message");
        cr_assert(len == 0 || memcmp(a.buf, body, len) == 0, "iteration %d: streamed plaintext differs", it);
        cr_assert(len == 0 || memcmp(b.buf, body, len) == 0);
        sdp_msgin_fini(&a, &mem);
        sdp_msgin_fini(&b, &mem);
        sdp_msgout_fini(&o, &mem);
    }
    cr_assert_gt(direct_in_order, 0);
    free(body);
    free(bad);
}

/* A record whose stream fails at the tag: the plaintext it wrote is wiped
 * and not counted as data; the record is asked for again and repaired. */
Test(msgin, failed_stream_leaves_no_plaintext)
{
    struct sdp_msgout o;
    seal(&o);
    struct sdp_msgin m;
    cr_assert_eq(sdp_msgin_init(&m, &mem, ID, LEN, SDP_REC_SIZE_MAX, 60000), 0);
    uint32_t r1, r1len;
    sdp_msgin_rec_range(&m, 1, &r1, &r1len);
    uint8_t *bad = malloc(o.wire_len);
    memcpy(bad, o.wire, o.wire_len);
    bad[r1 + r1len - 1] ^= 0x40; /* record 1's tag */
    struct sdp_msgin_res r;
    uint32_t failed = 0;
    uint64_t direct = 0;
    for (uint32_t off = 0; off < r1 + r1len; off += 1448) {
        uint32_t end = off + 1448 < r1 + r1len ? off + 1448 : r1 + r1len;
        sdp_msgin_place(&m, &mem, &rx, &streams, off, bad + off, end - off, SIZE_MAX, &r);
        failed += r.nfailed;
        direct += r.direct;
        cr_assert_eq(r.inplace, 0);
        if (r.nfailed)
            cr_assert_eq(r.failed[0], 1);
    }
    cr_assert_eq(failed, 1);
    cr_assert_eq(direct, 2u * SDP_REC_SIZE_MAX, "both records went through the stream");
    cr_assert_eq(m.nopened, 1);
    for (uint32_t i = 0; i < SDP_REC_SIZE_MAX; i++)
        cr_assert_eq(m.buf[SDP_REC_SIZE_MAX + i], 0, "unauthenticated plaintext left at %u", i);
    uint32_t off, len;
    cr_assert(sdp_msgin_missing(&m, m.wire_len, &off, &len));
    cr_assert_eq(off, r1);
    cr_assert_eq(len, r1len);
    cr_assert_eq(m.received, r1, "the failed record's bytes are not held");
    free(bad);
    repair(&m, &o);
    sdp_msgin_fini(&m, &mem);
    sdp_msgout_fini(&o, &mem);
}
