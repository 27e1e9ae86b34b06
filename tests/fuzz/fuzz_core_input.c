/* libFuzzer target for the transport core: arbitrary packets, mixed with
 * genuine traffic from a second core whose packets the input may drop,
 * duplicate, truncate or flip, go into a core with keys installed.
 * Invariants checked after every step: no crash (sanitizers), memory and
 * unauthenticated state within the configured bounds, every delivered
 * message byte-identical to one the genuine peer sent, and once the input
 * ends and timers run out, no state left. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sdp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                                   \
    do {                                                                                                           \
        if (!(x))                                                                                                  \
            __builtin_trap();                                                                                      \
    } while (0)

#define MAX_SENT 64

struct fz {
    struct sdp_core *a, *b; /* a: genuine client, b: the core under test */
    uint32_t a_peer, b_peer;
    struct sdp_core_addr addr_a, addr_b, addr_x;
    struct sdp_core_config cfg;
    uint64_t now;
    uint32_t sent_len[MAX_SENT]; /* request length by a's id / 2 */
    uint8_t seg[65536];
    uint8_t msg[70000];
};

static uint8_t pattern(uint64_t id, size_t k)
{
    return (uint8_t)(id * 131 + k * 7 + (k >> 8));
}

static void setup(struct fz *f)
{
    memset(f, 0, sizeof(*f));
    sdp_core_config_default(&f->cfg);
    f->cfg.max_peers = 4;
    f->cfg.max_rpcs = 64;
    f->cfg.max_rpcs_per_peer = 32;
    f->cfg.mem_limit = 4u << 20;
    f->cfg.peer_mem_limit = 2u << 20;
    f->cfg.max_msg_len = 1u << 20;
    f->cfg.unauth_per_peer = 4;
    f->cfg.unauth_total = 8;
    f->cfg.unauth_bytes_per_peer = 64u << 10;
    f->cfg.unauth_bytes_total = 96u << 10;
    f->cfg.ctlq_cap = 64;
    CHECK(sdp_core_new(&f->cfg, &f->a) == 0);
    CHECK(sdp_core_new(&f->cfg, &f->b) == 0);
    f->addr_a.len = 4;
    memcpy(f->addr_a.bytes, "\x0a\0\0\x01", 4);
    f->addr_b.len = 4;
    memcpy(f->addr_b.bytes, "\x0a\0\0\x02", 4);
    f->addr_x.len = 4;
    memcpy(f->addr_x.bytes, "\x0a\0\0\x03", 4);
    struct sdp_core_peer_cfg pc;
    memset(&pc, 0, sizeof(pc));
    pc.suite = SDP_SUITE_AES128GCM;
    pc.mtu = 1500;
    pc.ip_hdr_len = 20;
    memset(pc.tx_secret, 0x11, sizeof(pc.tx_secret));
    memset(pc.rx_secret, 0x22, sizeof(pc.rx_secret));
    pc.addr = f->addr_b;
    CHECK(sdp_core_peer_add(f->a, &pc, &f->a_peer) == 0);
    memset(pc.tx_secret, 0x22, sizeof(pc.tx_secret));
    memset(pc.rx_secret, 0x11, sizeof(pc.rx_secret));
    pc.addr = f->addr_a;
    CHECK(sdp_core_peer_add(f->b, &pc, &f->b_peer) == 0);
}

static void check_bounds(struct fz *f)
{
    struct sdp_core_stats st;
    sdp_core_get_stats(f->b, &st);
    CHECK(st.mem_used <= f->cfg.mem_limit);
    CHECK(st.unauth_bytes <= f->cfg.unauth_bytes_total);
    CHECK(st.unauth_msgs <= f->cfg.unauth_total);
    CHECK(st.incoming <= f->cfg.max_incoming);
    CHECK(st.rpcs_active <= f->cfg.max_rpcs);
}

/* Events of b: only genuine requests may appear, each answered at once. */
static void drain_b(struct fz *f)
{
    struct sdp_core_event ev;
    while (sdp_core_next_event(f->b, &ev)) {
        CHECK(ev.type == SDP_CORE_EV_REQUEST);
        CHECK(ev.peer == f->b_peer);
        uint64_t cid = ev.rpc_id ^ 1;
        CHECK(cid / 2 < MAX_SENT && f->sent_len[cid / 2] != 0);
        CHECK(ev.len == f->sent_len[cid / 2] - 1);
        for (size_t k = 0; k < ev.len; k++)
            CHECK(ev.data[k] == pattern(cid, k));
        f->sent_len[cid / 2] = UINT32_MAX; /* delivered: never again */
        sdp_core_release(f->b, ev.data);
        (void)sdp_core_send_response(f->b, ev.peer, ev.rpc_id, NULL, 0, f->now);
    }
    struct sdp_core_event ea;
    while (sdp_core_next_event(f->a, &ea))
        sdp_core_release(f->a, ea.data);
}

/* Move a's segments to b, shaped by one input byte per segment. */
static void pump(struct fz *f, const uint8_t **p, const uint8_t *end)
{
    struct sdp_core_seg_desc d;
    for (int rounds = 0; rounds < 64; rounds++) {
        int n = sdp_core_output(f->a, f->now, f->seg, sizeof(f->seg), &d);
        if (n <= 0)
            break;
        uint8_t how = *p < end ? *(*p)++ : 0;
        for (size_t off = 0; off < (size_t)n; off += d.seg_size) {
            size_t len = (size_t)n - off < d.seg_size ? (size_t)n - off : d.seg_size;
            uint8_t *pkt = f->seg + off;
            switch (how & 7) {
            case 1:
                continue; /* lost */
            case 2:
                (void)sdp_core_input(f->b, &f->addr_a, pkt, len, f->now); /* duplicated */
                break;
            case 3:
                pkt[(how >> 3) % len] ^= 0x40; /* flipped */
                break;
            case 4:
                len = len > 1 ? len - 1 - (how >> 3) % (len - 1) : len; /* truncated */
                break;
            default:
                break;
            }
            (void)sdp_core_input(f->b, &f->addr_a, pkt, len, f->now);
            check_bounds(f);
        }
    }
    for (int rounds = 0; rounds < 64; rounds++) {
        int n = sdp_core_output(f->b, f->now, f->seg, sizeof(f->seg), &d);
        if (n <= 0)
            break;
        for (size_t off = 0; off < (size_t)n; off += d.seg_size) {
            size_t len = (size_t)n - off < d.seg_size ? (size_t)n - off : d.seg_size;
            (void)sdp_core_input(f->a, &f->addr_b, f->seg + off, len, f->now);
        }
    }
    drain_b(f);
}

static void tick(struct fz *f, uint64_t ns)
{
    f->now += ns;
    if (sdp_core_next_expiry(f->a) <= f->now)
        sdp_core_handle_expiry(f->a, f->now);
    if (sdp_core_next_expiry(f->b) <= f->now)
        sdp_core_handle_expiry(f->b, f->now);
    check_bounds(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz *f;
    if (!f) {
        f = malloc(sizeof(*f));
        CHECK(f != NULL);
    }
    setup(f);
    const uint8_t *p = data, *end = data + size;
    while (p + 3 <= end) {
        uint8_t op = p[0];
        size_t len = (size_t)(p[1] | p[2] << 8);
        p += 3;
        if (len > (size_t)(end - p))
            len = (size_t)(end - p);
        switch (op % 5) {
        case 0: /* a raw packet from the genuine peer's address */
            (void)sdp_core_input(f->b, &f->addr_a, p, len, f->now);
            p += len;
            break;
        case 1: /* a raw packet from an unknown address */
            (void)sdp_core_input(f->b, &f->addr_x, p, len, f->now);
            p += len;
            break;
        case 2: { /* the genuine peer starts an RPC */
            uint32_t mlen = (uint32_t)(len * 37) % (uint32_t)sizeof(f->msg);
            uint64_t id;
            /* Content depends on the id: fill it for the id a uses next. */
            uint64_t next = 2;
            for (uint64_t i = 1; i < MAX_SENT; i++)
                if (f->sent_len[i])
                    next = 2 * i + 2;
            if (next / 2 >= MAX_SENT)
                break;
            for (uint32_t k = 0; k < mlen; k++)
                f->msg[k] = pattern(next, k);
            if (sdp_core_send_request(f->a, f->a_peer, f->msg, mlen, 0, f->now, &id) == 0) {
                CHECK(id == next);
                f->sent_len[id / 2] = mlen + 1;
            }
            break;
        }
        case 3: /* a's packets to b (shaped by the next bytes), b's back to a */
            pump(f, &p, end);
            break;
        default: /* time passes */
            tick(f, (uint64_t)len * 1000);
            break;
        }
        drain_b(f);
        check_bounds(f);
    }
    /* Let every timer run out: nothing may remain. */
    for (int i = 0; i < 400; i++) {
        pump(f, &p, end);
        tick(f, f->cfg.tick_ns);
    }
    drain_b(f);
    struct sdp_core_stats st;
    sdp_core_get_stats(f->b, &st);
    CHECK(st.rpcs_active == 0);
    CHECK(st.mem_used == 0);
    CHECK(st.unauth_msgs == 0 && st.unauth_bytes == 0);
    CHECK(st.incoming == 0);
    sdp_core_free(f->a);
    sdp_core_free(f->b);
    return 0;
}
