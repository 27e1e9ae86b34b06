/* Two cores wired back to back, no simulator: control-packet protection,
 * drop accounting by reason, ctl_seq engine ranges, segmentation and
 * priorities. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "core/core.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

static struct sdp_core *a, *b;
static uint32_t a_peer, b_peer;
static struct sdp_core_addr addr_a = {.len = 1, .bytes = {1}}, addr_b = {.len = 1, .bytes = {2}};
static uint8_t seg[65536];

static void setup_cfg(uint32_t mtu, uint32_t unsched)
{
    struct sdp_core_config cfg;
    sdp_core_config_default(&cfg);
    if (unsched)
        cfg.unsched_bytes = unsched;
    cfg.engine_index = 3;
    cr_assert_eq(sdp_core_new(&cfg, &a), 0);
    cfg.engine_index = 5;
    cr_assert_eq(sdp_core_new(&cfg, &b), 0);
    struct sdp_core_peer_cfg pc;
    memset(&pc, 0, sizeof(pc));
    pc.suite = SDP_SUITE_AES128GCM;
    pc.mtu = mtu;
    pc.ip_hdr_len = 20;
    memset(pc.tx_secret, 1, SDP_SECRET_LEN);
    memset(pc.rx_secret, 2, SDP_SECRET_LEN);
    pc.addr = addr_b;
    cr_assert_eq(sdp_core_peer_add(a, &pc, &a_peer), 0);
    memset(pc.tx_secret, 2, SDP_SECRET_LEN);
    memset(pc.rx_secret, 1, SDP_SECRET_LEN);
    pc.addr = addr_a;
    cr_assert_eq(sdp_core_peer_add(b, &pc, &b_peer), 0);
}

static void setup_mtu(uint32_t mtu)
{
    setup_cfg(mtu, 0);
}

static void setup(void)
{
    setup_mtu(1500);
}

static void teardown(void)
{
    sdp_core_free(a);
    sdp_core_free(b);
}

TestSuite(core, .init = setup, .fini = teardown);

/* Next segment of src; 0 when none. */
static int next_seg(struct sdp_core *src, struct sdp_core_seg_desc *d)
{
    return sdp_core_output(src, 0, seg, sizeof(seg), d);
}

static void deliver(struct sdp_core *dst, const struct sdp_core_addr *from, int n, const struct sdp_core_seg_desc *d)
{
    for (int off = 0; off < n; off += (int)d->seg_size) {
        size_t len = (size_t)n - (size_t)off < d->seg_size ? (size_t)n - (size_t)off : d->seg_size;
        sdp_core_input(dst, from, seg + off, len, 0);
    }
}

Test(core, unknown_source_and_garbage_are_counted)
{
    struct sdp_core_addr x = {.len = 1, .bytes = {9}};
    uint8_t junk[40] = {0x12};
    cr_assert_eq(sdp_core_input(b, &x, junk, sizeof(junk), 0), SDP_ENOKEY);
    cr_assert_eq(sdp_core_input(b, &addr_a, junk, 3, 0), SDP_EPROTO);
    struct sdp_core_stats st;
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.drops[SDP_DROP_NO_PEER], 1);
    cr_assert_eq(st.drops[SDP_DROP_DECODE], 1);
    cr_assert_eq(st.drops_total, 2);
}

Test(core, grant_replay_and_forgery_dropped)
{
    static uint8_t msg[200000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 7, 0, &id), 0);
    cr_assert_eq(id, 2);
    struct sdp_core_seg_desc d;
    int n;
    while ((n = next_seg(a, &d)) > 0)
        deliver(b, &addr_a, n, &d);
    /* b has the unscheduled bytes and grants: take its first control packet. */
    n = next_seg(b, &d);
    cr_assert_gt(n, 0);
    cr_assert_eq(seg[0] & 15, SDP_PKT_GRANT);
    cr_assert_eq(d.priority, 7);
    uint8_t grant[64];
    size_t glen = d.seg_size;
    memcpy(grant, seg, glen);
    struct sdp_pkt pk;
    cr_assert_geq(sdp_wire_decode(grant, glen, &pk), 0);
    cr_assert_eq(pk.ctl.seq >> 56, 5, "ctl_seq carries the engine index");
    cr_assert_eq(pk.hdr.rpc_id, 3, "the grant carries the server's id");
    cr_assert_eq(sdp_core_input(a, &addr_b, grant, glen, 0), 0);
    cr_assert_eq(sdp_core_input(a, &addr_b, grant, glen, 0), SDP_EREPLAY);
    grant[glen - 1] ^= 1;
    cr_assert_eq(sdp_core_input(a, &addr_b, grant, glen, 0), SDP_EBADMSG);
    grant[glen - 1] ^= 1;
    grant[1] |= SDP_F_KEY_PHASE;
    cr_assert_eq(sdp_core_input(a, &addr_b, grant, glen, 0), SDP_EBADMSG);
    struct sdp_core_stats st;
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.drops[SDP_DROP_CTL_REPLAY], 1);
    cr_assert_eq(st.drops[SDP_DROP_CTL_AUTH], 1);
    cr_assert_eq(st.drops[SDP_DROP_KEY_PHASE], 1);
    /* The accepted grant let a send scheduled bytes, at the grant's priority. */
    n = next_seg(a, &d);
    cr_assert_gt(n, 0);
    cr_assert_eq(d.priority, pk.u.grant.priority);
}

Test(core, segments_and_unscheduled_priorities)
{
    static uint8_t msg[100000];
    static const struct {
        uint32_t len;
        uint8_t prio;
    } t[] = {{0, 7}, {200, 7}, {201, 6}, {2800, 6}, {15000, 5}, {100000, 4}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint64_t id;
        cr_assert_eq(sdp_core_send_request(a, a_peer, msg, t[i].len, 0, 0, &id), 0);
        struct sdp_core_seg_desc d;
        int n = next_seg(a, &d);
        cr_assert_gt(n, 0);
        cr_assert_eq(d.priority, t[i].prio, "length %u: priority %u", t[i].len, d.priority);
        cr_assert_leq(n, 65000);
        cr_assert_leq(d.seg_size, 1472u, "an IPv4 datagram within MTU 1500");
        cr_assert_gt((uint32_t)n, d.seg_size * (d.npkts - 1));
        cr_assert_leq((uint32_t)n, d.seg_size * d.npkts);
        if (t[i].len >= 100000) {
            cr_assert_eq(d.seg_size, 1472u);
            cr_assert_eq(d.npkts, 42u, "60000 unscheduled bytes in 1448-byte payloads");
            cr_assert_eq(n, 41 * 1472 + 24 + (60000 - 41 * 1448), "only the last datagram is short");
        }
        while (next_seg(a, &d) > 0)
            ;
    }
}

Test(core, small_mtu_caps_datagrams_per_segment)
{
    teardown();
    setup_mtu(576);
    static uint8_t msg[60000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 0, 0, &id), 0);
    struct sdp_core_seg_desc d;
    int n = next_seg(a, &d);
    cr_assert_eq(d.seg_size, 548u);
    cr_assert_eq(d.npkts, 64u, "at most 64 datagrams per GSO send");
    cr_assert_eq(n, 64 * 548);
}

Test(core, jumbo_mtu)
{
    teardown();
    setup_mtu(9000);
    static uint8_t msg[60000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 0, 0, &id), 0);
    struct sdp_core_seg_desc d;
    int n = next_seg(a, &d);
    cr_assert_eq(d.seg_size, 8972u);
    cr_assert_eq(d.npkts, 7u, "64 KB segments of 8,972-byte datagrams");
    cr_assert_leq(n, 65000);
}

/* Loopback's MTU is 64 KiB: a datagram is capped at one segment (65,000
 * bytes), or none could be built once more than that may go at once (here
 * unscheduled; grants do the same) and the message would never leave. */
Test(core, mtu_beyond_a_segment)
{
    teardown();
    setup_cfg(65535, 200000);
    static uint8_t msg[150000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 0, 0, &id), 0);
    struct sdp_core_seg_desc d;
    int n, segs = 0;
    while ((n = next_seg(a, &d)) > 0) {
        cr_assert_leq(n, 65000);
        cr_assert_leq(d.seg_size, 65000u);
        deliver(b, &addr_a, n, &d);
        segs++;
    }
    cr_assert_eq(segs, 3, "two full 65,000-byte datagrams and the rest");
    struct sdp_core_event ev;
    cr_assert(sdp_core_next_event(b, &ev));
    cr_assert_eq(ev.len, sizeof(msg));
    sdp_core_release(b, ev.data);
}

Test(core, state_freed_after_rpc)
{
    static uint8_t msg[300000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 11, 0, &id), 0);
    struct sdp_core_event ev;
    int got = 0;
    for (int round = 0; round < 1000 && !got; round++) {
        struct sdp_core_seg_desc d;
        int n;
        while ((n = next_seg(a, &d)) > 0)
            deliver(b, &addr_a, n, &d);
        while (sdp_core_next_event(b, &ev)) {
            cr_assert_eq(ev.type, SDP_CORE_EV_REQUEST);
            cr_assert_eq(ev.len, sizeof(msg));
            cr_assert_eq(sdp_core_send_response(b, ev.peer, ev.rpc_id, ev.data, 10, 0), 0);
            sdp_core_release(b, ev.data);
        }
        while ((n = next_seg(b, &d)) > 0)
            deliver(a, &addr_b, n, &d);
        while (sdp_core_next_event(a, &ev)) {
            cr_assert_eq(ev.type, SDP_CORE_EV_RESPONSE);
            cr_assert_eq(ev.cookie, 11);
            cr_assert_eq(ev.len, 10);
            sdp_core_release(a, ev.data);
            got = 1;
        }
    }
    cr_assert(got);
    /* A small response's ACK waits ack_delay_ticks (10 ms) for company,
     * then goes out and frees the server's state. */
    struct sdp_core_seg_desc d;
    int n;
    struct sdp_core_stats sa, sb;
    for (int pass = 0; pass < 10; pass++) {
        uint64_t t = sdp_core_next_expiry(a);
        cr_assert_leq(t, 10000000, "the timer is due by the ACK's time");
        sdp_core_handle_expiry(a, t);
        sdp_core_get_stats(a, &sa);
        cr_assert_eq(sa.acks_sent, t == 10000000, "at %llu ns: %llu ACKs", (unsigned long long)t,
                     (unsigned long long)sa.acks_sent);
        if (sa.acks_sent)
            break;
    }
    cr_assert_eq(sa.acks_sent, 1);
    while ((n = next_seg(a, &d)) > 0)
        deliver(b, &addr_a, n, &d);
    sdp_core_get_stats(a, &sa);
    sdp_core_get_stats(b, &sb);
    cr_assert_eq(sa.rpcs_active + sb.rpcs_active, 0);
    cr_assert_eq(sa.mem_used + sb.mem_used, 0);
    cr_assert_eq(sb.server_acked, 1);
    cr_assert_gt(sb.grants_sent, 0);
}

Test(core, retransmission_is_byte_identical)
{
    static uint8_t msg[3000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 13);
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 0, 0, &id), 0);
    struct sdp_core_seg_desc d;
    int n = next_seg(a, &d);
    cr_assert_eq(d.npkts, 3);
    static uint8_t orig[4000];
    int orig_n = n;
    uint32_t orig_seg = d.seg_size;
    memcpy(orig, seg, (size_t)n);
    /* The first datagram is lost; the others arrive. */
    for (int off = (int)d.seg_size; off < n; off += (int)d.seg_size) {
        size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
        sdp_core_input(b, &addr_a, seg + off, len, 0);
    }
    /* b's silence timer asks again (an unauthenticated message from its
     * start), resend_ticks (5 ms) after the packets came; a answers from the
     * bytes it sealed once. */
    struct sdp_core_stats sb;
    uint64_t t = 0;
    for (int i = 0; i < 6; i++) {
        t = sdp_core_next_expiry(b);
        cr_assert_neq(t, UINT64_MAX);
        sdp_core_handle_expiry(b, t);
        sdp_core_get_stats(b, &sb);
        if (sb.resends_sent)
            break;
    }
    cr_assert_eq(sb.resends_sent, 1);
    cr_assert_eq(t, 5000000, "asked at %llu ns", (unsigned long long)t);
    int got_resend = 0;
    while ((n = next_seg(b, &d)) > 0) {
        got_resend |= (seg[0] & 15) == SDP_PKT_RESEND;
        deliver(a, &addr_b, n, &d);
    }
    cr_assert(got_resend);
    n = next_seg(a, &d);
    cr_assert_eq(n, orig_n);
    cr_assert_eq(d.seg_size, orig_seg);
    for (int off = 0; off < n; off += (int)d.seg_size) {
        cr_assert_eq(seg[off + 1], orig[off + 1] | SDP_F_RETRANSMIT, "only the RETRANSMIT flag differs");
        seg[off + 1] = orig[off + 1];
    }
    cr_assert_eq(memcmp(seg, orig, (size_t)n), 0, "same ciphertext under the same nonce");
    struct sdp_core_stats st;
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.rtx_pkts, 3);
    cr_assert_eq(st.records_sealed, 1, "never sealed again");
    deliver(b, &addr_a, n, &d);
    struct sdp_core_event ev;
    cr_assert(sdp_core_next_event(b, &ev));
    cr_assert_eq(ev.type, SDP_CORE_EV_REQUEST);
    cr_assert_eq(ev.len, sizeof(msg));
    cr_assert_eq(memcmp(ev.data, msg, sizeof(msg)), 0);
    sdp_core_release(b, ev.data);
}

Test(core, authenticated_gap_asks_only_the_gap)
{
    /* Once a record has opened, the receiver asks for exactly what it
     * misses, and the repair is byte-identical to the lost datagram. */
    static uint8_t msg[40000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 29);
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 0, 0, &id), 0);
    struct sdp_core_seg_desc d;
    int n = next_seg(a, &d);
    cr_assert_gt(d.npkts, 20);
    /* Lose datagram 15 (inside record 1; record 0 opens). */
    static uint8_t lost[2000];
    uint32_t lost_off = 15 * d.seg_size, lost_len = d.seg_size;
    memcpy(lost, seg + lost_off, lost_len);
    for (uint32_t off = 0; off < (uint32_t)n; off += d.seg_size) {
        size_t len = (size_t)n - off < d.seg_size ? (size_t)n - off : d.seg_size;
        if (off != lost_off)
            sdp_core_input(b, &addr_a, seg + off, len, 0);
    }
    for (int i = 0; i < 6; i++)
        sdp_core_handle_expiry(b, sdp_core_next_expiry(b));
    while ((n = next_seg(b, &d)) > 0)
        deliver(a, &addr_b, n, &d);
    n = next_seg(a, &d);
    cr_assert_eq(d.npkts, 1, "only the lost datagram");
    cr_assert_eq((uint32_t)n, lost_len);
    cr_assert_eq(seg[1], lost[1] | SDP_F_RETRANSMIT);
    seg[1] = lost[1];
    cr_assert_eq(memcmp(seg, lost, lost_len), 0);
    seg[1] |= SDP_F_RETRANSMIT;
    deliver(b, &addr_a, n, &d);
    struct sdp_core_event ev;
    cr_assert(sdp_core_next_event(b, &ev));
    cr_assert_eq(ev.len, sizeof(msg));
    cr_assert_eq(memcmp(ev.data, msg, sizeof(msg)), 0);
    sdp_core_release(b, ev.data);
}

/* sdp_core_output_gather: a big DATA segment comes as headers plus a
 * pointer into the sealed message; laid out as packets it is byte for byte
 * what sdp_core_output writes (a twin sender with the same keys and ids
 * copies), smaller ones come whole, and the receiver gets the message. */
Test(core, gathered_segments_match_copied_ones)
{
    struct sdp_core_config cfg;
    sdp_core_config_default(&cfg);
    cfg.engine_index = 3;
    struct sdp_core *twin;
    cr_assert_eq(sdp_core_new(&cfg, &twin), 0);
    struct sdp_core_peer_cfg pc;
    memset(&pc, 0, sizeof(pc));
    pc.suite = SDP_SUITE_AES128GCM;
    pc.mtu = 1500;
    pc.ip_hdr_len = 20;
    memset(pc.tx_secret, 1, SDP_SECRET_LEN);
    memset(pc.rx_secret, 2, SDP_SECRET_LEN);
    pc.addr = addr_b;
    uint32_t twin_peer;
    cr_assert_eq(sdp_core_peer_add(twin, &pc, &twin_peer), 0);
    static uint8_t msg[200000], hdrs[65536], flat[65536], copied[65536];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    uint64_t id, twin_id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 1, 0, &id), 0);
    cr_assert_eq(sdp_core_send_request(twin, twin_peer, msg, sizeof(msg), 1, 0, &twin_id), 0);
    cr_assert_eq(id, twin_id);
    int gathered = 0, whole = 0, got = 0;
    struct sdp_core_event ev;
    for (int round = 0; round < 1000 && !got; round++) {
        struct sdp_core_seg_desc d, td;
        int n;
        while ((n = sdp_core_output_gather(a, 0, hdrs, sizeof(hdrs), 30000, &d)) > 0) {
            int tn = sdp_core_output(twin, 0, copied, sizeof(copied), &td);
            cr_assert_eq(n, tn);
            cr_assert_eq(d.seg_size, td.seg_size);
            cr_assert_eq(d.npkts, td.npkts);
            cr_assert_null(td.payload);
            if (d.payload) {
                gathered++;
                cr_assert_geq((size_t)n - (size_t)d.npkts * SDP_DATA_HDR_LEN, 30000);
                cr_assert_eq(memcmp(hdrs, copied, SDP_DATA_HDR_LEN), 0, "first header in front");
                memcpy(flat, hdrs, (size_t)d.npkts * SDP_DATA_HDR_LEN);
                sdp_core_seg_flatten(flat, &d, (size_t)n);
            } else {
                whole++;
                memcpy(flat, hdrs, (size_t)n);
            }
            cr_assert_eq(memcmp(flat, copied, (size_t)n), 0, "the same packets either way");
            for (int off = 0; off < n; off += (int)d.seg_size) {
                size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
                sdp_core_input(b, &addr_a, flat + off, len, 0);
            }
        }
        /* b's grants reach both senders (same keys), so they stay in step. */
        while ((n = next_seg(b, &d)) > 0) {
            deliver(a, &addr_b, n, &d);
            deliver(twin, &addr_b, n, &d);
        }
        while (sdp_core_next_event(b, &ev)) {
            cr_assert_eq(ev.type, SDP_CORE_EV_REQUEST);
            cr_assert_eq(ev.len, sizeof(msg));
            cr_assert_eq(memcmp(ev.data, msg, sizeof(msg)), 0);
            sdp_core_release(b, ev.data);
            got = 1;
        }
    }
    cr_assert(got);
    cr_assert_gt(gathered, 0);
    cr_assert_gt(whole, 0);
    sdp_core_free(twin);
}

/* One request of qlen bytes answered with rlen bytes, no timer involved;
 * returns the client's RPC id. */
static uint64_t exchange(size_t qlen, size_t rlen)
{
    static uint8_t buf[200000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, buf, qlen, 7, 0, &id), 0);
    struct sdp_core_event ev;
    struct sdp_core_seg_desc d;
    int n, got = 0;
    for (int round = 0; round < 1000 && !got; round++) {
        while ((n = next_seg(a, &d)) > 0)
            deliver(b, &addr_a, n, &d);
        while (sdp_core_next_event(b, &ev)) {
            cr_assert_eq(sdp_core_send_response(b, ev.peer, ev.rpc_id, buf, rlen, 0), 0);
            sdp_core_release(b, ev.data);
        }
        while ((n = next_seg(b, &d)) > 0)
            deliver(a, &addr_b, n, &d);
        while (sdp_core_next_event(a, &ev)) {
            cr_assert_eq(ev.type, SDP_CORE_EV_RESPONSE);
            cr_assert_eq(ev.len, rlen);
            sdp_core_release(a, ev.data);
            got = 1;
        }
    }
    cr_assert(got);
    return id;
}

static uint64_t stat_of(struct sdp_core *c, size_t off)
{
    struct sdp_core_stats st;
    sdp_core_get_stats(c, &st);
    uint64_t v;
    memcpy(&v, (const uint8_t *)&st + off, sizeof(v));
    return v;
}
#define STAT(c, f) stat_of((c), offsetof(struct sdp_core_stats, f))

static void a_to_b(void)
{
    struct sdp_core_seg_desc d;
    int n;
    while ((n = next_seg(a, &d)) > 0)
        deliver(b, &addr_a, n, &d);
}

/* Eight finished responses fill one ACK packet, which leaves at once. */
Test(core, eight_acks_leave_together)
{
    for (int i = 0; i < SDP_ACK_MAX; i++) {
        exchange(64, 64);
        cr_assert_eq(STAT(a, acks_sent), i == SDP_ACK_MAX - 1, "after %d responses", i + 1);
    }
    a_to_b();
    cr_assert_eq(STAT(b, server_acked), SDP_ACK_MAX);
    cr_assert_eq(STAT(b, rpcs_active), 0);
}

/* The server holds a big response until its ACK: that one waits only for
 * the next tick. */
Test(core, big_response_acked_at_next_tick)
{
    exchange(64, 100000);
    cr_assert_eq(STAT(a, acks_sent), 0);
    sdp_core_handle_expiry(a, sdp_core_next_expiry(a));
    cr_assert_eq(STAT(a, acks_sent), 1);
    a_to_b();
    cr_assert_eq(STAT(b, server_acked), 1);
    cr_assert_eq(STAT(b, mem_used), 0);
}

/* A lost ACK: the server asks after ack_wait_ticks (not before, since the
 * client may still be batching), and the client answers at once. */
Test(core, lost_ack_is_asked_for_later)
{
    exchange(64, 64);
    uint64_t now = 0;
    for (int t = 0; t < 10; t++) {
        now += 1000000;
        sdp_core_handle_expiry(a, now);
    }
    cr_assert_eq(STAT(a, acks_sent), 1);
    struct sdp_core_seg_desc d;
    while (next_seg(a, &d) > 0)
        ; /* lost */
    now = 0;
    int asked_at = 0;
    for (int t = 1; t <= 40 && !asked_at; t++) {
        now += 1000000;
        sdp_core_handle_expiry(b, now);
        if (STAT(b, need_ack_sent))
            asked_at = t;
    }
    cr_assert_geq(asked_at, 30, "NEED_ACK at tick %d: before a delayed ACK was due", asked_at);
    cr_assert_leq(asked_at, 31);
    int n;
    while ((n = next_seg(b, &d)) > 0)
        deliver(a, &addr_b, n, &d);
    cr_assert_eq(STAT(a, acks_sent), 2, "NEED_ACK is answered without waiting");
    a_to_b();
    cr_assert_eq(STAT(b, server_acked), 1);
    cr_assert_eq(STAT(b, rpcs_active), 0);
}

/* A receiver whose driver still holds queued datagrams does not ask for
 * bytes that may be among them: the due RESEND waits while the backlog
 * lasts, goes out at the first pass without one, and goes out anyway once
 * the backlog has lasted SDP_CORE_BACKLOG_WAITS (2) more probe waits. */
static uint64_t first_resend_at(int backlog_until_ms)
{
    static uint8_t msg[3000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 0, 0, &id), 0);
    struct sdp_core_seg_desc d;
    int n = next_seg(a, &d);
    cr_assert_eq(d.npkts, 3);
    /* The first datagram is still queued at b; the others were read. */
    for (int off = (int)d.seg_size; off < n; off += (int)d.seg_size) {
        size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
        sdp_core_input(b, &addr_a, seg + off, len, 0);
    }
    struct sdp_core_stats sb;
    for (int i = 0; i < 40; i++) {
        uint64_t t = sdp_core_next_expiry(b);
        cr_assert_neq(t, UINT64_MAX);
        sdp_core_set_backlog(b, t < (uint64_t)backlog_until_ms * 1000000);
        sdp_core_handle_expiry(b, t);
        sdp_core_get_stats(b, &sb);
        if (sb.resends_sent) {
            cr_assert_eq(sb.resends_sent, 1);
            return t;
        }
    }
    cr_assert_fail("no RESEND");
    return 0;
}

Test(core, probe_waits_for_backlog_to_drain)
{
    uint64_t t = first_resend_at(8);
    cr_assert_eq(t, 8000000, "asked at %llu ns, when the queue was read", (unsigned long long)t);
    struct sdp_core_stats sb;
    sdp_core_get_stats(b, &sb);
    cr_assert_eq(sb.probes_deferred, 3, "deferred at 5, 6 and 7 ms");
}

Test(core, probe_goes_despite_endless_backlog)
{
    uint64_t t = first_resend_at(1000);
    cr_assert_eq(t, 15000000, "asked at %llu ns: 5 ms wait + 2 x 5 ms", (unsigned long long)t);
}

Test(core, probe_without_backlog_is_not_deferred)
{
    uint64_t t = first_resend_at(0);
    cr_assert_eq(t, 5000000);
    struct sdp_core_stats sb;
    sdp_core_get_stats(b, &sb);
    cr_assert_eq(sb.probes_deferred, 0);
}
