/* Key lifecycle in the core, two cores back to back: key phase on the
 * wire, requested and automatic updates, forged other-phase packets,
 * old receive keys wiped once drained, 0-RTT keys, and replacing and
 * removing a peer's session. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/core.h"
#include "core/core_ext.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#define MS UINT64_C(1000000)

static struct sdp_core *a, *b;
static uint32_t a_peer, b_peer;
static struct sdp_core_addr addr_a = {.len = 1, .bytes = {1}}, addr_b = {.len = 1, .bytes = {2}};
static uint8_t seg[65536];
static uint64_t now;

/* The last DATA packet a sent and control packet b sent, for forgeries. */
static uint8_t last_a[2048], last_b_ctl[256];
static size_t last_a_len, last_b_ctl_len;

static void peer_cfg(struct sdp_core_peer_cfg *pc, const struct sdp_core_addr *to, uint8_t tx, uint8_t rx)
{
    memset(pc, 0, sizeof(*pc));
    pc->suite = SDP_SUITE_AES128GCM;
    pc->mtu = 1500;
    pc->ip_hdr_len = 20;
    memset(pc->tx_secret, tx, SDP_SECRET_LEN);
    memset(pc->rx_secret, rx, SDP_SECRET_LEN);
    pc->addr = *to;
}

static void setup_with(uint64_t update_after)
{
    struct sdp_core_config cfg;
    sdp_core_config_default(&cfg);
    cfg.key_update_after = update_after;
    cr_assert_eq(sdp_core_new(&cfg, &a), 0);
    cr_assert_eq(sdp_core_new(&cfg, &b), 0);
    struct sdp_core_peer_cfg pc;
    peer_cfg(&pc, &addr_b, 1, 2);
    cr_assert_eq(sdp_core_peer_add(a, &pc, &a_peer), 0);
    peer_cfg(&pc, &addr_a, 2, 1);
    cr_assert_eq(sdp_core_peer_add(b, &pc, &b_peer), 0);
    now = 0;
}

static void setup(void)
{
    setup_with(0);
}

static void teardown(void)
{
    sdp_core_free(a);
    sdp_core_free(b);
}

TestSuite(keys, .init = setup, .fini = teardown);

/* Move every packet both ways until neither has anything to send. */
static void pump(void)
{
    for (int moved = 1; moved;) {
        moved = 0;
        struct sdp_core_seg_desc d;
        int n;
        while ((n = sdp_core_output(a, now, seg, sizeof(seg), &d)) > 0) {
            moved = 1;
            for (int off = 0; off < n; off += (int)d.seg_size) {
                size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
                if (seg[off] == (SDP_WIRE_VERSION << 4 | SDP_PKT_DATA) && len <= sizeof(last_a)) {
                    memcpy(last_a, seg + off, len);
                    last_a_len = len;
                }
                sdp_core_input(b, &addr_a, seg + off, len, now);
            }
        }
        while ((n = sdp_core_output(b, now, seg, sizeof(seg), &d)) > 0) {
            moved = 1;
            for (int off = 0; off < n; off += (int)d.seg_size) {
                size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
                if (seg[off] != (SDP_WIRE_VERSION << 4 | SDP_PKT_DATA) && len <= sizeof(last_b_ctl)) {
                    memcpy(last_b_ctl, seg + off, len);
                    last_b_ctl_len = len;
                }
                sdp_core_input(a, &addr_b, seg + off, len, now);
            }
        }
    }
}

/* Let time pass: ticks fire, their packets move. */
static void run_ms(unsigned ms)
{
    for (unsigned i = 0; i < ms; i++) {
        now += MS;
        sdp_core_handle_expiry(a, now);
        sdp_core_handle_expiry(b, now);
        pump();
    }
}

/* b answers every request with the request's bytes; returns how many
 * responses a got, and counts FAILED events by error in *failed. */
static int serve_and_collect(int *failed, int *early_seen)
{
    struct sdp_core_event ev;
    int got = 0;
    for (int round = 0; round < 12; round++) {
        run_ms(1); /* ticks: records asked for again arrive */
        while (sdp_core_next_event(b, &ev)) {
            cr_assert_eq(ev.type, SDP_CORE_EV_REQUEST);
            if (early_seen && ev.early)
                (*early_seen)++;
            cr_assert_eq(sdp_core_send_response(b, ev.peer, ev.rpc_id, ev.data, ev.len, now), 0);
            sdp_core_release(b, ev.data);
        }
        pump();
        while (sdp_core_next_event(a, &ev)) {
            if (ev.type == SDP_CORE_EV_RESPONSE) {
                got++;
            } else {
                cr_assert_eq(ev.type, SDP_CORE_EV_FAILED);
                if (failed)
                    failed[-ev.error]++;
            }
            sdp_core_release(a, ev.data);
        }
    }
    return got;
}

static int one_rpc(size_t len)
{
    static uint8_t msg[100000];
    uint64_t id;
    memset(msg, 0x5a, len);
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, len, 7, now, &id), 0);
    pump();
    return serve_and_collect(NULL, NULL);
}

static void gens(struct sdp_core *c, uint32_t peer, uint32_t *tx, uint32_t *rx)
{
    cr_assert_eq(sdp_core_key_generation(c, peer, tx, rx), 0);
}

Test(keys, requested_update_sets_the_phase_and_the_peer_follows)
{
    uint32_t tx, rx;
    /* Nothing has been authenticated by b yet: the update waits for it. */
    cr_assert_eq(sdp_core_key_update(a, a_peer), 0);
    gens(a, a_peer, &tx, &rx);
    cr_assert_eq(tx, 0, "the first update waits until the peer authenticated generation 0");
    cr_assert_eq(one_rpc(3000), 1);
    gens(a, a_peer, &tx, &rx);
    cr_assert_eq(tx, 1, "the asked-for update happens once the peer has generation 0");
    cr_assert_eq(one_rpc(3000), 1);
    cr_assert(last_a_len > 0 && (last_a[1] & SDP_F_KEY_PHASE), "a's packets carry phase 1");
    gens(b, b_peer, &tx, &rx);
    cr_assert_eq(rx, 1, "b adopted a's generation 1");
    cr_assert_eq(tx, 0, "b's own direction is independent");
    for (uint32_t g = 2; g <= 5; g++) {
        cr_assert_eq(sdp_core_key_update(a, a_peer), 0);
        cr_assert_eq(one_rpc(40000), 1);
        gens(b, b_peer, NULL, &rx);
        cr_assert_eq(rx, g);
        cr_assert_eq(!!(last_a[1] & SDP_F_KEY_PHASE), g & 1);
    }
    struct sdp_core_stats st;
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.key_updates, 5);
    cr_assert_eq(st.tx_gen_max, 5);
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.rx_key_updates, 5);
    cr_assert_eq(st.rx_gen_max, 5);
    /* Generations before the previous one go within a few ticks once
     * nothing is open under them; the previous one stays for messages the
     * sender began before it moved on. */
    run_ms(5);
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.rx_old_keys, 0);
    cr_assert_eq(st.rx_keys_wiped, 4);
    cr_assert_eq(st.drops[SDP_DROP_KEY_PHASE], 0);
    /* The first message of a generation is taken for a late one of the
     * previous generation when its first record spans packets: one wrong
     * guess per generation at most. */
    cr_assert_leq(st.drops[SDP_DROP_REC_AUTH], 5);
}

Test(keys, forged_other_phase_packets_advance_nothing)
{
    cr_assert_eq(one_rpc(100000), 1); /* b grants: a control packet to forge */
    cr_assert_eq(one_rpc(100), 1);    /* a whole message in one DATA packet */
    cr_assert_gt(last_b_ctl_len, 0);
    struct sdp_core_stats st0, st;
    sdp_core_get_stats(a, &st0);
    /* A genuine control packet of b with the phase bit flipped: the tag
     * covers the header, so it opens under no generation. */
    uint8_t pkt[256];
    memcpy(pkt, last_b_ctl, last_b_ctl_len);
    pkt[1] ^= SDP_F_KEY_PHASE;
    cr_assert_eq(sdp_core_input(a, &addr_b, pkt, last_b_ctl_len, now), SDP_EBADMSG);
    /* A DATA packet claiming generation 1 for a new message: its record
     * opens under no key, and the next generation stays a candidate. */
    uint8_t data[2048];
    memcpy(data, last_a, last_a_len);
    data[1] |= SDP_F_KEY_PHASE;
    data[7] ^= 0x40; /* another request id */
    sdp_core_input(b, &addr_a, data, last_a_len, now);
    uint32_t rx;
    gens(a, a_peer, NULL, &rx);
    cr_assert_eq(rx, 0);
    gens(b, b_peer, NULL, &rx);
    cr_assert_eq(rx, 0);
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.rx_key_updates, 0);
    cr_assert_eq(st.drops[SDP_DROP_KEY_PHASE], st0.drops[SDP_DROP_KEY_PHASE] + 1);
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.rx_key_updates, 0);
    cr_assert_geq(st.drops[SDP_DROP_REC_AUTH], 1);
    /* And genuine traffic under the next generation still goes through. */
    cr_assert_eq(sdp_core_key_update(a, a_peer), 0);
    cr_assert_eq(one_rpc(100), 1);
    gens(b, b_peer, NULL, &rx);
    cr_assert_eq(rx, 1);
}

/* One segment from src to dst. */
static void step(struct sdp_core *src, struct sdp_core *dst, const struct sdp_core_addr *from)
{
    struct sdp_core_seg_desc d;
    int n = sdp_core_output(src, now, seg, sizeof(seg), &d);
    cr_assert_gt(n, 0);
    for (int off = 0; off < n; off += (int)d.seg_size) {
        size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
        sdp_core_input(dst, from, seg + off, len, now);
    }
}

Test(keys, update_waits_for_the_previous_generation_then_old_keys_go)
{
    static uint8_t big[200000];
    uint8_t small[10] = {0};
    uint64_t id;
    uint32_t tx, rx;
    cr_assert_eq(one_rpc(10), 1);
    /* A long request begins under generation 0: b authenticates it. */
    cr_assert_eq(sdp_core_send_request(a, a_peer, big, sizeof(big), 1, now, &id), 0);
    step(a, b, &addr_a);
    /* a moves on (b has authenticated generation 0), and a short request
     * under generation 1 reaches b before the rest of the long one. */
    cr_assert_eq(sdp_core_key_update(a, a_peer), 0);
    gens(a, a_peer, &tx, NULL);
    cr_assert_eq(tx, 1);
    cr_assert_eq(sdp_core_send_request(a, a_peer, small, sizeof(small), 2, now, &id), 0);
    step(a, b, &addr_a);
    gens(b, b_peer, NULL, &rx);
    cr_assert_eq(rx, 1);
    /* Generation 2 must wait: a message under 0 is unfinished, and b could
     * not tell its new messages from late ones under 0. */
    cr_assert_eq(sdp_core_key_update(a, a_peer), 0);
    gens(a, a_peer, &tx, NULL);
    cr_assert_eq(tx, 1);
    pump();
    cr_assert_eq(serve_and_collect(NULL, NULL), 2);
    struct sdp_core_stats st;
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.requests_delivered, 3, "the long one finished under the old key");
    cr_assert_eq(st.drops[SDP_DROP_REC_AUTH], 0, "a one-packet first record is tried aside");
    gens(a, a_peer, &tx, NULL);
    cr_assert_eq(tx, 2, "taken once the long request finished");
    cr_assert_eq(one_rpc(10), 1);
    gens(b, b_peer, NULL, &rx);
    cr_assert_eq(rx, 2);
    run_ms(5);
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.rx_old_keys, 0, "generation 0 wiped");
    cr_assert_eq(st.rx_keys_wiped, 1);
}

Test(keys, automatic_update_after_a_few_seals)
{
    teardown();
    setup_with(8);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(one_rpc((size_t)(i % 5) * 9000), 1, "rpc %d", i);
    run_ms(5);
    struct sdp_core_stats sa, sb;
    sdp_core_get_stats(a, &sa);
    sdp_core_get_stats(b, &sb);
    cr_assert_geq(sa.key_updates, 5, "a updated %llu times", (unsigned long long)sa.key_updates);
    cr_assert_geq(sb.key_updates, 5, "b updated %llu times", (unsigned long long)sb.key_updates);
    /* The last update may have come after the last packet sealed. */
    cr_assert(sa.tx_gen_max - sb.rx_gen_max <= 1, "b follows a");
    cr_assert(sb.tx_gen_max - sa.rx_gen_max <= 1, "a follows b");
    cr_assert_geq(sb.rx_key_updates, 4);
    cr_assert_eq(sa.rx_old_keys + sb.rx_old_keys, 0);
    cr_assert_eq(sa.drops_total + sb.drops_total, 0);
    cr_assert_eq(sa.mem_used + sb.mem_used, 0);
}

Test(keys, early_data_only_with_an_early_key)
{
    uint8_t es[SDP_SECRET_LEN], req[3000];
    memset(es, 9, sizeof(es));
    memset(req, 1, sizeof(req));
    struct iovec iov = {.iov_base = req, .iov_len = sizeof(req)};
    uint64_t id;
    cr_assert_eq(sdp_core_send_request_flags(a, a_peer, 0, &iov, 1, 1, now, SDP_CORE_SEND_EARLY, &id), SDP_ENOKEY);
    cr_assert_eq(sdp_core_peer_set_early(a, a_peer, SDP_SUITE_AES128GCM, es, SDP_CORE_KEY_TX), 0);
    cr_assert_eq(sdp_core_peer_set_early(a, a_peer, SDP_SUITE_AES256GCM, es, SDP_CORE_KEY_TX), SDP_EINVAL);
    /* b has no early key: refused and counted. */
    cr_assert_eq(sdp_core_send_request_flags(a, a_peer, 0, &iov, 1, 1, now, SDP_CORE_SEND_EARLY, &id), 0);
    pump();
    cr_assert(last_a[1] & SDP_F_EARLY);
    struct sdp_core_stats st;
    sdp_core_get_stats(b, &st);
    cr_assert_gt(st.drops[SDP_DROP_EARLY], 0);
    cr_assert_eq(st.requests_delivered, 0);
    /* With it, the same request (resent) is delivered, marked early. */
    cr_assert_eq(sdp_core_peer_set_early(b, b_peer, SDP_SUITE_AES128GCM, es, SDP_CORE_KEY_RX), 0);
    run_ms(12);
    int early = 0;
    cr_assert_eq(serve_and_collect(NULL, &early), 1);
    cr_assert_eq(early, 1);
    /* Ordinary requests are not early. */
    early = 0;
    cr_assert_eq(sdp_core_send_request(a, a_peer, req, sizeof(req), 2, now, &id), 0);
    pump();
    cr_assert_eq(serve_and_collect(NULL, &early), 1);
    cr_assert_eq(early, 0);
    /* Early data sealed under another early secret does not open. */
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.early_delivered, 1);
    /* Dropped early key: refused again. */
    cr_assert_eq(sdp_core_peer_drop_early(b, b_peer), 0);
    uint64_t before = st.drops[SDP_DROP_EARLY];
    cr_assert_eq(sdp_core_send_request_flags(a, a_peer, 0, &iov, 1, 3, now, SDP_CORE_SEND_EARLY, &id), 0);
    pump();
    sdp_core_get_stats(b, &st);
    cr_assert_gt(st.drops[SDP_DROP_EARLY], before);
    cr_assert_eq(st.early_delivered, 1);
    cr_assert_eq(sdp_core_peer_drop_early(a, a_peer), 0);
    cr_assert_eq(sdp_core_send_request_flags(a, a_peer, 0, &iov, 1, 1, now, SDP_CORE_SEND_EARLY, &id), SDP_ENOKEY);
}

Test(keys, replace_fails_old_rpcs_and_new_ones_work)
{
    static uint8_t msg[100000];
    uint64_t id;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), (uint64_t)i, now, &id), 0);
    pump(); /* b has the requests, a waits for responses */
    struct sdp_core_event ev;
    int reqs = 0;
    uint32_t old_session = sdp_core_peer_session(b, b_peer);
    while (sdp_core_next_event(b, &ev)) {
        cr_assert_eq(ev.session, old_session);
        sdp_core_release(b, ev.data);
        reqs++;
    }
    cr_assert_eq(reqs, 5);
    uint8_t old_ctl[256];
    size_t old_ctl_len = last_b_ctl_len;
    memcpy(old_ctl, last_b_ctl, old_ctl_len);
    /* Both sides handshake again: new secrets. */
    struct sdp_core_peer_cfg pc;
    peer_cfg(&pc, &addr_b, 3, 4);
    cr_assert_eq(sdp_core_peer_replace(a, a_peer, &pc), 0);
    peer_cfg(&pc, &addr_a, 4, 3);
    cr_assert_eq(sdp_core_peer_replace(b, b_peer, &pc), 0);
    cr_assert_neq(sdp_core_peer_session(b, b_peer), old_session);
    /* b's answers to the old requests are refused: their RPCs are gone. */
    cr_assert_eq(sdp_core_send_response(b, b_peer, 3, msg, 10, now), SDP_EUNKNOWN);
    int failed[32] = {0};
    cr_assert_eq(serve_and_collect(failed, NULL), 0);
    cr_assert_eq(failed[-SDP_EUNKNOWN], 5);
    /* A packet of the old session is refused by the new one. */
    cr_assert_eq(sdp_core_input(a, &addr_b, old_ctl, old_ctl_len, now), SDP_EBADMSG);
    /* The new session works, ids start over, nothing is delivered twice. */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), (uint64_t)i, now, &id), 0);
    cr_assert_eq(id, 10);
    pump();
    cr_assert_eq(serve_and_collect(failed, NULL), 5);
    cr_assert_eq(failed[-SDP_EUNKNOWN], 5);
    run_ms(3);
    struct sdp_core_stats st;
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.peers_replaced, 1);
    cr_assert_eq(st.responses_delivered, 5);
    cr_assert_eq(st.rpcs_failed, 5);
    cr_assert_eq(st.rpcs_active, 0);
    cr_assert_eq(st.mem_used, 0);
    sdp_core_get_stats(b, &st);
    cr_assert_eq(st.requests_delivered, 10);
    cr_assert_eq(st.rpcs_active, 0);
    cr_assert_eq(st.mem_used, 0);
}

Test(keys, removed_peer_slot_is_reused_safely)
{
    static uint8_t msg[20000];
    uint64_t id;
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, sizeof(msg), 1, now, &id), 0);
    uint32_t s0 = sdp_core_peer_session(a, a_peer);
    cr_assert_eq(sdp_core_peer_remove(a, a_peer), 0);
    cr_assert_eq(sdp_core_peer_remove(a, a_peer), SDP_EINVAL);
    cr_assert_eq(sdp_core_peer_session(a, a_peer), 0);
    cr_assert_eq(sdp_core_send_request(a, a_peer, msg, 10, 1, now, &id), SDP_EINVAL);
    cr_assert_eq(sdp_core_key_update(a, a_peer), SDP_EINVAL);
    struct sdp_core_event ev;
    cr_assert_eq(sdp_core_next_event(a, &ev), 1);
    cr_assert_eq(ev.type, SDP_CORE_EV_FAILED);
    cr_assert_eq(ev.error, SDP_EUNKNOWN);
    cr_assert_eq(ev.session, s0);
    /* Nothing left to send to it, and its packets are unknown now. */
    struct sdp_core_seg_desc d;
    cr_assert_eq(sdp_core_output(a, now, seg, sizeof(seg), &d), 0);
    /* The slot comes back for the next peer, under a new session. */
    struct sdp_core_peer_cfg pc;
    struct sdp_core_addr addr_c = {.len = 1, .bytes = {3}};
    peer_cfg(&pc, &addr_c, 5, 6);
    uint32_t idx;
    cr_assert_eq(sdp_core_peer_add(a, &pc, &idx), 0);
    cr_assert_eq(idx, a_peer);
    cr_assert_neq(sdp_core_peer_session(a, idx), s0);
    struct sdp_core_stats st;
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.peers, 1);
    cr_assert_eq(st.peers_removed, 1);
    cr_assert_eq(st.mem_used, 0);
    cr_assert_eq(st.rpcs_active, 0);
}

/* A 0-RTT client: a session whose keys are still being agreed sends early
 * requests only, nothing else, and refuses everything from the peer; the
 * agreed keys then come in without disturbing those requests. */
Test(keys, pending_session_sends_early_only_then_installs)
{
    static uint8_t req[300000];
    uint8_t es[SDP_SECRET_LEN];
    memset(es, 9, sizeof(es));
    memset(req, 1, sizeof(req));
    struct iovec iov = {.iov_base = req, .iov_len = sizeof(req)};
    struct sdp_core_peer_cfg pc;
    peer_cfg(&pc, &addr_b, 0x77, 0x66); /* placeholders */
    pc.keys_pending = 1;
    cr_assert_eq(sdp_core_peer_replace(a, a_peer, &pc), 0);
    cr_assert_eq(sdp_core_peer_set_early(a, a_peer, SDP_SUITE_AES128GCM, es, SDP_CORE_KEY_TX), 0);
    cr_assert_eq(sdp_core_peer_set_early(b, b_peer, SDP_SUITE_AES128GCM, es, SDP_CORE_KEY_RX), 0);
    uint64_t id, id2;
    cr_assert_eq(sdp_core_send_request(a, a_peer, req, 10, 1, now, &id), SDP_ENOKEY);
    /* Beyond the unscheduled bytes, so b must grant the rest. */
    cr_assert_eq(sdp_core_send_request_flags(a, a_peer, 0, &iov, 1, 1, now, SDP_CORE_SEND_EARLY, &id), 0);
    cr_assert_eq(sdp_core_send_request_flags(a, a_peer, 0, &iov, 1, 2, now, SDP_CORE_SEND_EARLY, &id2), 0);
    pump();
    /* a's peer refuses b's packets (grants under keys a does not have yet). */
    struct sdp_core_stats st;
    sdp_core_get_stats(a, &st);
    cr_assert_gt(st.drops[SDP_DROP_NO_PEER], 0);
    cr_assert_eq(sdp_core_input(a, &addr_b, last_b_ctl, last_b_ctl_len, now), SDP_ENOKEY);
    uint64_t ctl_out = st.pkts_out;
    run_ms(20); /* silence: a pending peer sends no probes */
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.pkts_out, ctl_out);
    /* The agreed keys (those b has: tx 1, rx 2 from a's view). */
    peer_cfg(&pc, &addr_b, 1, 2);
    pc.suite = SDP_SUITE_AES256GCM;
    cr_assert_eq(sdp_core_peer_install(a, a_peer, &pc), SDP_EINVAL);
    pc.suite = SDP_SUITE_AES128GCM;
    cr_assert_eq(sdp_core_peer_install(a, a_peer, &pc), 0);
    cr_assert_eq(sdp_core_peer_install(a, a_peer, &pc), SDP_EINVAL); /* not pending any more */
    /* Forgetting: only early requests still held. */
    cr_assert_eq(sdp_core_forget_request(a, a_peer, id2), 0);
    cr_assert_eq(sdp_core_forget_request(a, a_peer, id2), SDP_EUNKNOWN);
    int failed[32] = {0}, early = 0;
    cr_assert_eq(serve_and_collect(failed, &early), 1);
    cr_assert_eq(early, 1, "the kept early request completes, the forgotten one cannot");
    for (int i = 0; i < 32; i++)
        cr_assert_eq(failed[i], 0);
    cr_assert_eq(sdp_core_forget_request(a, a_peer, id), SDP_EUNKNOWN);
    /* The session goes on under the installed keys. */
    cr_assert_eq(one_rpc(5000), 1);
    run_ms(5);
    sdp_core_get_stats(a, &st);
    cr_assert_eq(st.responses_delivered, 2);
    cr_assert_eq(st.rpcs_active, 0);
    cr_assert_eq(st.mem_used, 0);
}
