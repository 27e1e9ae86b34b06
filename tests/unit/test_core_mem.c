/* Memory per idle peer, counted rather than timed: every byte the core
 * allocates (its allocator hooks), the locked key memory (keymem stats) and
 * OpenSSL's heap (its memory hooks, installed before OpenSSL allocates
 * anything).  The target (issue 6) is 2 KiB per idle peer per engine, of
 * which the API's own peer table takes about 160 B: the core and its keys
 * get the rest. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"
#include "core/replay.h"
#include "crypto/keymem.h"
#include "crypto/gcm_small.h"
#include "sdp/sdp.h"

#define NPEERS 1000
#define IDLE_BOUND (2048 - 160) /* bytes per idle peer: core tables, peer state, key memory */

/* ---- OpenSSL's heap ---- */

static long long ossl_bytes;
static int ossl_hooked;

static void *om(size_t n, const char *f, int l)
{
    (void)f, (void)l;
    void *p = malloc(n);
    if (p)
        __atomic_add_fetch(&ossl_bytes, (long long)malloc_usable_size(p), __ATOMIC_RELAXED);
    return p;
}

static void of(void *p, const char *f, int l)
{
    (void)f, (void)l;
    if (p)
        __atomic_sub_fetch(&ossl_bytes, (long long)malloc_usable_size(p), __ATOMIC_RELAXED);
    free(p);
}

static void *orl(void *p, size_t n, const char *f, int l)
{
    (void)f, (void)l;
    long long old = p ? (long long)malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q)
        __atomic_add_fetch(&ossl_bytes, (long long)malloc_usable_size(q) - old, __ATOMIC_RELAXED);
    else if (n == 0 && p)
        __atomic_sub_fetch(&ossl_bytes, old, __ATOMIC_RELAXED);
    return q;
}

__attribute__((constructor)) static void hook_openssl(void)
{
    ossl_hooked = CRYPTO_set_mem_functions(om, orl, of);
}

/* ---- the core's allocator ---- */

static long long core_bytes;

static void *ca(void *ctx, size_t len)
{
    (void)ctx;
    void *p = malloc(len);
    if (p)
        core_bytes += (long long)len;
    return p;
}

static void cf(void *ctx, void *p, size_t len)
{
    (void)ctx;
    core_bytes -= (long long)len;
    free(p);
}

static struct sdp_core *core_for(uint32_t max_peers)
{
    struct sdp_core_config cfg;
    sdp_core_config_default(&cfg);
    cfg.max_peers = max_peers;
    /* The API's sizing: a window for 16,384 requests, the worst case. */
    cfg.max_rpcs = 16384;
    cfg.max_rpcs_per_peer = 16384;
    cfg.allocator = (struct sdp_core_allocator){.alloc = ca, .free = cf};
    struct sdp_core *c = NULL;
    cr_assert_eq(sdp_core_new(&cfg, &c), 0);
    return c;
}

static struct sdp_core_addr addr_of(uint32_t i)
{
    struct sdp_core_addr a = {.len = 3, .bytes = {7, (uint8_t)(i >> 8), (uint8_t)i}};
    return a;
}

/* Peer i: side 0 sends with secret (i, 0) and receives with (i, 1); side 1
 * the other way round. */
static void add_peers(struct sdp_core *c, int side)
{
    struct sdp_core_peer_cfg pc;
    for (uint32_t i = 0; i < NPEERS; i++) {
        memset(&pc, 0, sizeof(pc));
        pc.suite = SDP_SUITE_AES128GCM;
        pc.mtu = 1500;
        pc.ip_hdr_len = 20;
        pc.addr = addr_of(i);
        memcpy(pc.tx_secret, &i, sizeof(i));
        memcpy(pc.rx_secret, &i, sizeof(i));
        pc.tx_secret[31] = (uint8_t)side;
        pc.rx_secret[31] = (uint8_t)!side;
        uint32_t idx;
        cr_assert_eq(sdp_core_peer_add(c, &pc, &idx), 0);
        cr_assert_eq(idx, i);
    }
}

/* Bytes per peer of the tables sized by max_peers: cores for N and 2N. */
static double table_bytes_per_peer(void)
{
    /* One-time set-up first (OpenSSL's provider tables, the KDF and
     * cipher fetched once), so it is not counted against the peers. */
    struct sdp_core *w = core_for(1);
    struct sdp_core_peer_cfg pc = {.suite = SDP_SUITE_AES128GCM, .mtu = 1500, .addr = addr_of(1)};
    uint32_t idx;
    cr_assert_eq(sdp_core_peer_add(w, &pc, &idx), 0);
    sdp_core_free(w);
    long long b0 = core_bytes;
    struct sdp_core *one = core_for(NPEERS);
    long long b1 = core_bytes;
    struct sdp_core *two = core_for(2 * NPEERS);
    long long b2 = core_bytes;
    sdp_core_free(one);
    sdp_core_free(two);
    cr_assert_eq(core_bytes, b0, "the core returns what it took");
    return (double)((b2 - b1) - (b1 - b0)) / NPEERS;
}

Test(core_mem, idle_peers_fit_the_bound)
{
    cr_assert(ossl_hooked, "OpenSSL's memory hooks must be in before it allocates");
    double tables = table_bytes_per_peer();
    struct sdp_core *c = core_for(NPEERS);
    struct sdp_keymem_stats k0, k1;
    sdp_keymem_stats(&k0);
    long long o0 = ossl_bytes, c0 = core_bytes;
    add_peers(c, 0);
    sdp_keymem_stats(&k1);
    double keymem = (double)(k1.slab_bytes - k0.slab_bytes) / NPEERS;
    double ossl = (double)(ossl_bytes - o0) / NPEERS, core = (double)(core_bytes - c0) / NPEERS;
    double total = tables + keymem + ossl + core;
    cr_log_info("per idle peer: tables %.0f B, key memory %.0f B (slots %.0f B), OpenSSL %.0f B, core %.0f B: %.0f B",
                tables, keymem, (double)(k1.slot_bytes - k0.slot_bytes) / NPEERS, ossl, core, total);
    cr_assert_lt(ossl, 64, "no cipher contexts before a key is used (%.0f B per peer)", ossl);
    cr_assert_leq(total, IDLE_BOUND, "%.0f B per idle peer (tables %.0f, key memory %.0f, OpenSSL %.0f, core %.0f)",
                  total, tables, keymem, ossl, core);
    sdp_core_free(c);
}

/* ---- two cores with NPEERS peers each, wired back to back ---- */

static uint8_t seg[65536];

/* Move every segment of src into dst; returns how many segments moved. */
static int pump_one(struct sdp_core *src, struct sdp_core *dst, uint64_t now)
{
    struct sdp_core_seg_desc d;
    int n, moved = 0;
    while ((n = sdp_core_output(src, now, seg, sizeof(seg), &d)) > 0) {
        struct sdp_core_addr from = addr_of(d.peer);
        for (int off = 0; off < n; off += (int)d.seg_size) {
            size_t len = (size_t)n - (size_t)off < d.seg_size ? (size_t)n - (size_t)off : d.seg_size;
            (void)sdp_core_input(dst, &from, seg + off, len, now);
        }
        moved++;
    }
    return moved;
}

static void pump(struct sdp_core *a, struct sdp_core *b, uint64_t now)
{
    while (pump_one(a, b, now) + pump_one(b, a, now) > 0)
        ;
}

/* After each peer exchanged a request and a response, and they all went
 * quiet: the cipher contexts their keys made are freed again, and what is
 * left per peer is the idle state plus a small replay ring. */
Test(core_mem, peers_are_small_again_after_traffic)
{
    cr_assert(ossl_hooked, "OpenSSL's memory hooks must be in before it allocates");
    (void)table_bytes_per_peer(); /* the one-time set-up */
    struct sdp_core *srv = core_for(NPEERS), *cli = core_for(NPEERS);
    add_peers(srv, 0);
    add_peers(cli, 1);
    long long o0 = ossl_bytes, c0 = core_bytes;
    struct sdp_keymem_stats k0, k1;
    sdp_keymem_stats(&k0);
    uint64_t now = 1000000, tick = 1000000;
    static const uint8_t msg[64] = "ping";
    for (uint32_t i = 0; i < NPEERS; i++) {
        uint64_t id;
        cr_assert_eq(sdp_core_send_request(cli, i, msg, sizeof(msg), i, now, &id), 0);
    }
    pump(cli, srv, now);
    struct sdp_core_event ev;
    unsigned requests = 0, responses = 0;
    while (sdp_core_next_event(srv, &ev)) {
        cr_assert_eq(ev.type, SDP_CORE_EV_REQUEST);
        cr_assert_eq(sdp_core_send_response(srv, ev.peer, ev.rpc_id, ev.data, ev.len, now), 0);
        sdp_core_release(srv, ev.data);
        requests++;
    }
    cr_assert_eq(requests, NPEERS);
    pump(cli, srv, now);
    while (sdp_core_next_event(cli, &ev)) {
        cr_assert_eq(ev.type, SDP_CORE_EV_RESPONSE);
        sdp_core_release(cli, ev.data);
        responses++;
    }
    cr_assert_eq(responses, NPEERS);
    long long busy = ossl_bytes - o0;
    /* 64-byte records take the short-record path where the CPU has it: its
     * expanded key is a key-memory slot (192 B) instead of an OpenSSL
     * context (about 1.2 KB).  Either way each side's keys made state. */
    struct sdp_keymem_stats kb;
    sdp_keymem_stats(&kb);
    long long sched = (long long)(kb.slot_bytes - k0.slot_bytes);
    cr_log_info("while busy: cipher contexts %.0f B, key schedules %.0f B per peer (both cores)",
                (double)busy / NPEERS, (double)sched / NPEERS);
    cr_assert(sched >= (long long)NPEERS * 2 * (long long)sizeof(struct sdp_gcm_small) ||
                  busy > (long long)NPEERS * 2 * 1000,
              "each side's keys made schedules or contexts to seal and open");
    /* Ticks until the ACKs are through and nothing is left, then quiet
     * long enough for the keys to count as idle. */
    for (int t = 0; t < 50; t++) {
        now += tick;
        sdp_core_handle_expiry(srv, now);
        sdp_core_handle_expiry(cli, now);
        pump(cli, srv, now);
    }
    struct sdp_keymem_stats kq;
    sdp_keymem_stats(&kq);
    cr_assert_gt(ossl_bytes - o0 + (long long)(kq.slot_bytes - k0.slot_bytes), (busy + sched) / 2,
                 "a second of quiet has not passed yet: contexts and schedules stay");
    now += 1000 * tick;
    cr_assert_leq(sdp_core_next_expiry(srv), now, "the timer comes back to idle the keys");
    sdp_core_handle_expiry(srv, now);
    sdp_core_handle_expiry(cli, now);
    cr_assert_eq(sdp_core_next_expiry(srv), UINT64_MAX, "nothing left to wait for");
    long long left = ossl_bytes - o0;
    sdp_keymem_stats(&k1);
    double ring = (double)(core_bytes - c0) / (2 * NPEERS);
    cr_log_info("after going idle: OpenSSL %.0f B per peer, core %.0f B per peer and core, key memory %+lld slots",
                (double)left / NPEERS, ring, (long long)(k1.slots - k0.slots));
    cr_assert_lt(left, (long long)NPEERS * 64, "contexts of idle keys are freed (%lld B left)", left);
    cr_assert_eq(k1.slots, k0.slots, "no key memory held beyond the idle peers' keys");
    /* All that stays: the server's replay rings (first size: nobody had
     * more than one request outstanding) and the event rings each core grew
     * (64 -> 1024) to hold a thousand events at once. */
    long long allowed = (long long)NPEERS * SDP_REPLAY_WORDS_FIRST * 8 +
                        2 * (1024 - 64) * (long long)sizeof(struct sdp_core_event);
    cr_assert_leq(core_bytes - c0, allowed, "%lld B more than when idle before (%lld allowed)", core_bytes - c0,
                  allowed);
    sdp_core_free(srv);
    sdp_core_free(cli);
}
