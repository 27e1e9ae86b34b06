/* The core's plain_records mode (the kshim send path, docs/KSHIM.md): DATA
 * segments leave unsealed and cover whole records, and their descriptors
 * name the records.  A reference sealer here does what the module does on
 * the send path; the result must be the bytes an ordinary core sends, and
 * a peer must open it, retransmissions included. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "crypto/keysched.h"
#include "crypto/record.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

static struct sdp_core *plain, *ref, *b;
static uint32_t plain_peer, ref_peer, b_peer;
static struct sdp_core_addr addr_a = {.len = 1, .bytes = {1}}, addr_b = {.len = 1, .bytes = {2}};
static const struct sdp_aead_provider *prov;
static uint64_t update_after; /* plain's key_update_after (0: default) */
static int skip_ref;          /* the reference core does not update keys */
static uint8_t seg[65536];

static void make_core(int plain_mode, struct sdp_core **c, uint32_t *peer, uint32_t mtu, uint32_t gso_max, int is_b)
{
    struct sdp_core_config cfg;
    sdp_core_config_default(&cfg);
    cfg.plain_records = plain_mode;
    cfg.gso_max = gso_max;
    if (plain_mode)
        cfg.key_update_after = update_after;
    cr_assert_eq(sdp_core_new(&cfg, c), 0);
    struct sdp_core_peer_cfg pc;
    memset(&pc, 0, sizeof(pc));
    pc.suite = SDP_SUITE_AES128GCM;
    pc.mtu = mtu;
    pc.ip_hdr_len = 20;
    memset(pc.tx_secret, is_b ? 2 : 1, SDP_SECRET_LEN);
    memset(pc.rx_secret, is_b ? 1 : 2, SDP_SECRET_LEN);
    pc.addr = is_b ? addr_a : addr_b;
    cr_assert_eq(sdp_core_peer_add(*c, &pc, peer), 0);
}

static void setup_mtu(uint32_t mtu, uint32_t gso_max)
{
    make_core(1, &plain, &plain_peer, mtu, gso_max, 0);
    make_core(0, &ref, &ref_peer, mtu, gso_max, 0);
    make_core(0, &b, &b_peer, mtu, gso_max, 1);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &prov), 0);
}

static void setup(void)
{
    setup_mtu(1500, 65000);
}

static void teardown(void)
{
    sdp_core_free(plain);
    sdp_core_free(ref);
    sdp_core_free(b);
}

TestSuite(core_plain, .init = setup, .fini = teardown);

/* What the module does with a descriptor: the slice must cover whole
 * records; each is sealed in place across the datagram headers under the
 * key object the descriptor names.  Returns the records sealed. */
static unsigned seal_segment(uint8_t *buf, size_t n, const struct sdp_core_seg_desc *d)
{
    cr_assert(d->plain);
    cr_assert_not_null(d->seal_key, "no key for the message's generation");
    struct sdp_rec_key sealer = {.prov = prov, .data = (struct sdp_aead_key *)(uintptr_t)d->seal_key,
                                 .seal_limit = UINT64_MAX, .aad_flags = d->aad_flags};
    static uint8_t wire[65536];
    size_t w = 0;
    for (size_t off = 0; off < n; off += d->seg_size) {
        size_t l = n - off < d->seg_size ? n - off : d->seg_size;
        cr_assert_gt(l, SDP_DATA_HDR_LEN, "a datagram without payload");
        memcpy(wire + w, buf + off + SDP_DATA_HDR_LEN, l - SDP_DATA_HDR_LEN);
        w += l - SDP_DATA_HDR_LEN;
    }
    uint32_t rw = (uint32_t)d->rec_size + SDP_TAG_LEN;
    uint64_t wire_len = sdp_msg_wire_len(d->msg_len, d->rec_size);
    cr_assert_eq(d->wire_off % rw, 0, "slice starts mid-record at %u", d->wire_off);
    cr_assert(d->wire_off + w == wire_len || (d->wire_off + w) % rw == 0, "slice ends mid-record");
    unsigned nrec = 0;
    for (uint32_t at = 0; at < w; nrec++) {
        uint32_t idx = (d->wire_off + at) / rw, rl = sdp_rec_len(d->msg_len, d->rec_size, idx);
        cr_assert_eq(sdp_rec_seal(&sealer, d->msg_id, d->msg_len, d->rec_size, idx, 0, wire + at, wire + at,
                                  wire + at + rl),
                     0);
        at += rl + SDP_TAG_LEN;
    }
    w = 0;
    for (size_t off = 0; off < n; off += d->seg_size) {
        size_t l = n - off < d->seg_size ? n - off : d->seg_size;
        memcpy(buf + off + SDP_DATA_HDR_LEN, wire + w, l - SDP_DATA_HDR_LEN);
        w += l - SDP_DATA_HDR_LEN;
    }
    return nrec;
}

/* The wire offset a DATA datagram carries. */
static uint32_t data_off(const uint8_t *p, size_t l)
{
    struct sdp_pkt pk;
    return sdp_wire_decode(p, l, &pk) >= 0 && pk.hdr.type == SDP_PKT_DATA ? pk.u.data.offset : 0;
}

/* Record every DATA payload byte at its wire offset. */
static void collect(uint8_t *wire, const uint8_t *buf, size_t n, uint32_t seg_size)
{
    for (size_t off = 0; off < n; off += seg_size) {
        size_t l = n - off < seg_size ? n - off : seg_size;
        struct sdp_pkt pk;
        if (sdp_wire_decode(buf + off, l, &pk) >= 0 && pk.hdr.type == SDP_PKT_DATA)
            memcpy(wire + pk.u.data.offset, pk.u.data.payload, pk.u.data.payload_len);
    }
}

/* Move everything between plain and b until b delivered the request and
 * plain got b's answer, dropping plain's datagrams whose number is in drop[] (counted from 0) and
 * advancing time a tick per round so RESENDs happen.  Returns the request's
 * length (copied into out), SIZE_MAX if it never came. */
static int rounds_max = 400, answers_want = 1, answers;
static unsigned loss_pct; /* of plain's datagrams, seeded */
static uint64_t loss_state = 0x9e3779b97f4a7c15u;

static size_t exchange(const unsigned *drop, unsigned ndrop, uint8_t *wire, uint8_t *out, size_t cap,
                       unsigned *sealed_again)
{
    static uint64_t now; /* never goes back, across calls */
    struct sdp_core_seg_desc d;
    unsigned dgram = 0;
    size_t got = SIZE_MAX;
    answers = 0;
    for (int round = 0; round < rounds_max && answers < answers_want; round++) {
        int n;
        while ((n = sdp_core_output(plain, now, seg, sizeof(seg), &d)) > 0) {
            if (!d.plain) {
                cr_assert_null(d.seal_key);
                cr_assert_neq(seg[0] & 15, SDP_PKT_DATA, "DATA without a descriptor");
            } else {
                cr_assert_eq(seg[0] & 15, SDP_PKT_DATA);
                unsigned k = seal_segment(seg, (size_t)n, &d);
                if (seg[1] & SDP_F_RETRANSMIT)
                    *sealed_again += k;
            }
            collect(wire, seg, (size_t)n, d.seg_size);
            for (int off = 0; off < n; off += (int)d.seg_size, dgram++) {
                size_t l = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
                int skip = 0;
                for (unsigned i = 0; i < ndrop; i++)
                    skip |= drop[i] == dgram;
                /* Random loss spares record 0: a message the peer has not
                 * authenticated when it adopts a newer generation is refused
                 * (a limit of the key-update pacing, not of this mode). */
                loss_state = loss_state * 6364136223846793005u + 1442695040888963407u;
                skip |= (unsigned)(loss_state >> 33) % 100 < loss_pct && d.plain &&
                        data_off(seg + off, l) >= (uint32_t)d.rec_size + SDP_TAG_LEN;
                if (!skip)
                    sdp_core_input(b, &addr_a, seg + off, l, now);
            }
        }
        while ((n = sdp_core_output(b, now, seg, sizeof(seg), &d)) > 0)
            for (int off = 0; off < n; off += (int)d.seg_size) {
                size_t l = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
                sdp_core_input(plain, &addr_b, seg + off, l, now);
            }
        struct sdp_core_event ev;
        while (sdp_core_next_event(b, &ev) == 1) {
            cr_assert_eq(ev.type, SDP_CORE_EV_REQUEST);
            cr_assert_leq(ev.len, cap);
            if (out)
                memcpy(out, ev.data, ev.len);
            got = ev.len;
            sdp_core_release(b, ev.data);
            /* Answer, so the request finishes and its generation drains. */
            cr_assert_eq(sdp_core_send_response(b, ev.peer, ev.rpc_id, "k", 1, now), 0);
        }
        while (sdp_core_next_event(plain, &ev) == 1) {
            cr_assert_eq(ev.type, SDP_CORE_EV_RESPONSE);
            answers++;
            sdp_core_release(plain, ev.data);
        }
        now += 1000000;
        sdp_core_handle_expiry(plain, now);
        sdp_core_handle_expiry(b, now);
    }
    return got;
}

/* The wire bytes of the same message from an ordinary core. */
static void ref_wire(const uint8_t *msg, size_t len, uint8_t *wire)
{
    uint64_t id;
    struct sdp_core_seg_desc d;
    int n;
    cr_assert_eq(sdp_core_send_request(ref, ref_peer, msg, len, 0, 0, &id), 0);
    while ((n = sdp_core_output(ref, 0, seg, sizeof(seg), &d)) > 0) {
        cr_assert_null(d.seal_key);
        collect(wire, seg, (size_t)n, d.seg_size);
    }
}

static void run_case(size_t len, const unsigned *drop, unsigned ndrop, unsigned *sealed_again)
{
    size_t cap = len + 1;
    uint8_t *msg = malloc(cap), *out = malloc(cap);
    uint8_t *wire = calloc(1, 2 * len + 65536), *rwire = calloc(1, 2 * len + 65536);
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(i * 131 + len);
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(plain, plain_peer, msg, len, 0, 0, &id), 0);
    size_t got = exchange(drop, ndrop, wire, out, cap, sealed_again);
    cr_assert_eq(got, len, "message of %zu bytes not delivered", len);
    cr_assert_eq(memcmp(msg, out, len), 0);
    /* Same bytes as an ordinary core's, as far as the reference sent without grants. */
    if (skip_ref)
        goto out;
    ref_wire(msg, len, rwire);
    uint32_t unsched = 60000;
    uint64_t wl = sdp_msg_wire_len((uint32_t)len, SDP_REC_SIZE_MAX);
    uint32_t cmp = wl < unsched ? (uint32_t)wl : unsched;
    /* Only whole records: the plain core may stop before a record that straddles unsched. */
    uint32_t rw = SDP_REC_SIZE_MAX + SDP_TAG_LEN;
    if (cmp < wl)
        cmp = cmp / rw * rw;
    cr_assert_eq(memcmp(wire, rwire, cmp), 0, "kernel-style sealing differs from the core's own");
out:
    free(msg);
    free(out);
    free(wire);
    free(rwire);
}

Test(core_plain, sealed_below_equals_sealed_in_core)
{
    const size_t sizes[] = {0, 1, 1448, 16384, 16385, 50000, 70000, 300000};
    unsigned again = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        run_case(sizes[i], NULL, 0, &again);
    cr_assert_eq(again, 0);
}

Test(core_plain, retransmissions_reseal_whole_records)
{
    /* Lose datagrams in the middle of records, at the unscheduled edge and
     * in the granted part: the RESENDs name byte ranges, the core resends
     * the whole records around them, and the peer opens them. */
    const unsigned drop[] = {3, 12, 40, 41, 60};
    unsigned again = 0;
    run_case(200000, drop, sizeof(drop) / sizeof(drop[0]), &again);
    cr_assert_gt(again, 0, "nothing was retransmitted");
}

Test(core_plain, data_leaves_unsealed)
{
    uint8_t msg[3000];
    memset(msg, 0x5a, sizeof(msg));
    uint64_t id;
    struct sdp_core_seg_desc d;
    cr_assert_eq(sdp_core_send_request(plain, plain_peer, msg, sizeof(msg), 0, 0, &id), 0);
    int n = sdp_core_output(plain, 0, seg, sizeof(seg), &d);
    cr_assert_gt(n, 0);
    cr_assert_not_null(d.seal_key);
    cr_assert_eq(d.msg_id, id);
    cr_assert_eq(d.msg_len, sizeof(msg));
    cr_assert_eq(d.wire_off, 0);
    cr_assert_eq(d.npkts, 3);
    cr_assert_eq(memcmp(seg + SDP_DATA_HDR_LEN, msg, 100), 0, "plaintext in the record's place");
}

Test(core_plain, key_updates_keep_the_generation_of_each_message)
{
    /* Updates every 8 records: messages straddle generations, and their
     * retransmissions need the previous generation's key. */
    teardown();
    update_after = 8;
    setup_mtu(1500, 65000);
    update_after = 0;
    skip_ref = 1;
    const unsigned drop[] = {5, 30, 61, 90};
    unsigned again = 0;
    for (int i = 0; i < 6; i++)
        run_case(120000, i == 0 ? drop : NULL, i == 0 ? 4 : 0, &again);
    struct sdp_core_stats st;
    sdp_core_get_stats(plain, &st);
    cr_assert_gt(st.key_updates, 2, "only %llu key updates", (unsigned long long)st.key_updates);
    cr_assert_gt(again, 0);
    skip_ref = 0;
}

Test(core_plain, retransmission_after_a_key_update_uses_the_old_generation)
{
    /* M1 goes out under generation 0 with losses; B authenticates part of
     * it, so M2 starts generation 1; M1's retransmissions must still be
     * sealed with generation 0's key. */
    teardown();
    update_after = 4;
    setup_mtu(1500, 65000);
    update_after = 0;
    static uint8_t m1[200000], m2[50000], wire[400000];
    memset(m1, 1, sizeof(m1));
    memset(m2, 2, sizeof(m2));
    uint64_t id;
    unsigned again = 0;
    const unsigned drop[] = {15, 30}; /* in records 1 and 2: record 0 opens, B grants */
    cr_assert_eq(sdp_core_send_request(plain, plain_peer, m1, sizeof(m1), 0, 0, &id), 0);
    rounds_max = 1;
    exchange(drop, 2, wire, NULL, sizeof(m1), &again);
    cr_assert_eq(again, 0, "no retransmission yet");
    cr_assert_eq(sdp_core_send_request(plain, plain_peer, m2, sizeof(m2), 0, 0, &id), 0);
    struct sdp_core_stats st;
    sdp_core_get_stats(plain, &st);
    cr_assert_eq(st.key_updates, 1, "B's grant confirmed generation 0: M2 is under 1 (%llu updates)",
                 (unsigned long long)st.key_updates);
    rounds_max = 400;
    answers_want = 2;
    exchange(NULL, 0, wire, NULL, sizeof(m1), &again);
    answers_want = 1;
    cr_assert_eq(answers, 2, "both answered");
    cr_assert_gt(again, 0, "M1 was retransmitted");
}

Test(core_plain, small_mtu_shrinks_records_to_fit_a_segment)
{
    teardown();
    setup_mtu(576, 1500); /* two 524-byte payloads per segment: 1,032-byte records */
    unsigned again = 0;
    size_t len = 150000;
    uint8_t *msg = malloc(len), *out = malloc(len + 1), *wire = calloc(1, 2 * len);
    for (size_t i = 0; i < len; i++)
        msg[i] = (uint8_t)(i * 7);
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(plain, plain_peer, msg, len, 0, 0, &id), 0);
    cr_assert_eq(exchange(NULL, 0, wire, out, len + 1, &again), len);
    cr_assert_eq(memcmp(msg, out, len), 0);
    struct sdp_core_stats st;
    sdp_core_get_stats(plain, &st);
    cr_assert_eq(st.records_sealed, sdp_msg_nrec((uint32_t)len, 1032));
    free(msg);
    free(out);
    free(wire);
}

Test(core_plain, many_messages_key_updates_and_loss)
{
    /* The guest's rtx test without the kernel: 16 messages at once, 10%
     * loss of what plain sends after each record 0, a key update every 48
     * records. */
    teardown();
    update_after = 48;
    setup_mtu(1500, 65000);
    update_after = 0;
    static uint8_t msg[16][100000], wire[400000];
    uint64_t id;
    unsigned again = 0;
    for (int i = 0; i < 16; i++) {
        memset(msg[i], i, sizeof(msg[i]));
        cr_assert_eq(sdp_core_send_request(plain, plain_peer, msg[i], sizeof(msg[i]) - (size_t)i * 5000, 0, 0, &id), 0);
    }
    loss_pct = 10;
    rounds_max = 3000;
    answers_want = 16;
    exchange(NULL, 0, wire, NULL, sizeof(msg[0]), &again);
    loss_pct = 0;
    rounds_max = 400;
    answers_want = 1;
    struct sdp_core_stats st;
    sdp_core_get_stats(plain, &st);
    cr_assert_eq(answers, 16, "%d of 16 answered (%llu key updates)", answers, (unsigned long long)st.key_updates);
    cr_assert_gt(st.key_updates, 0);
    cr_assert_gt(again, 0);
}
