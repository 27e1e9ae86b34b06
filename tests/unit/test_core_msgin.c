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
