/* The handshake protocol (src/handshake/hs.c) between two in-memory hosts
 * over a seeded channel that drops, duplicates, reorders and corrupts:
 * keys agree, retry tokens keep the server stateless until the client
 * proves its address, replies never amplify, simultaneous starts settle on
 * one session, tampering and silence fail with the right cause. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keymem.h"
#include "handshake/hs.h"
#include "handshake/tls.h"
#include "wire/wire.h"

struct host {
    struct sdp_core_addr addr;
    struct sdp_tls_ctx *tls;
    struct sdp_hs *hs;
    struct sdp_hs_event *ev;
    int done, failed, error, role;
    uint8_t tx[SDP_SECRET_LEN], rx[SDP_SECRET_LEN];
    int early, early_state; /* EARLY events; the last DONE's early_state */
    uint8_t early_secret[SDP_SECRET_LEN], half_tx[SDP_SECRET_LEN], half_rx[SDP_SECRET_LEN];
    uint64_t bytes_out_to_unvalidated;
};

struct chan {
    uint64_t rng;
    unsigned drop_pct, dup_pct, reorder_pct, corrupt_pct;
    /* datagrams in flight: simple array, delivered next step (or later when reordered) */
    struct dg {
        int to; /* host index */
        struct sdp_core_addr from;
        size_t len;
        uint8_t b[SDP_HS_DGRAM_MAX];
        int delay;
    } q[512];
    unsigned n;
    uint64_t sent_bytes[2], recv_bytes[2];
};

static uint32_t rnd(struct chan *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (uint32_t)c->rng;
}

static void mkaddr(struct sdp_core_addr *a, uint16_t port)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    in.sin_addr.s_addr = htonl(0x7f000001);
    memset(a, 0, sizeof(*a));
    memcpy(a->bytes, &in, sizeof(in));
    a->len = sizeof(in);
}

/* Servers made by host_init answer every first contact with a RETRY. */
static int always_retry;

static void host_init(struct host *h, uint16_t port, const struct sdp_tls_config *tc, int client, int server)
{
    memset(h, 0, sizeof(*h));
    cr_assert_eq(sdp_keymem_init(), 0);
    mkaddr(&h->addr, port);
    cr_assert_eq(sdp_tls_ctx_new(tc, &h->tls), 0);
    struct sdp_hs_config hc;
    sdp_hs_config_default(&hc);
    hc.tls = h->tls;
    hc.client = client;
    hc.server = server;
    hc.always_retry = always_retry;
    cr_assert_eq(sdp_hs_new(&hc, &h->hs), 0);
    h->ev = sdp_keymem_alloc(sizeof(*h->ev));
    cr_assert_not_null(h->ev);
}

static void host_free(struct host *h)
{
    sdp_hs_free(h->hs);
    sdp_tls_ctx_free(h->tls);
    sdp_keymem_free(h->ev);
}

static void drain_events(struct host *h)
{
    while (sdp_hs_next_event(h->hs, h->ev)) {
        if (h->ev->type == SDP_HS_EV_DONE) {
            h->done++;
            h->role = h->ev->role;
            sdp_hs_release(h->hs, &h->ev->addr); /* "keys installed" */
            memcpy(h->tx, h->ev->tx, SDP_SECRET_LEN);
            memcpy(h->rx, h->ev->rx, SDP_SECRET_LEN);
            h->early_state = h->ev->early_state;
        } else if (h->ev->type == SDP_HS_EV_EARLY) {
            h->early++;
            memcpy(h->early_secret, h->ev->early, SDP_SECRET_LEN);
            memcpy(h->half_tx, h->ev->tx, SDP_SECRET_LEN);
            memcpy(h->half_rx, h->ev->rx, SDP_SECRET_LEN);
        } else if (h->ev->type == SDP_HS_EV_FAILED) {
            h->failed++;
            h->error = h->ev->error;
        }
    }
}

/* One millisecond: every host sends what it has into the channel, the
 * channel delivers what is due, timers run. */
static void step(struct chan *c, struct host *h[2], uint64_t now)
{
    for (int i = 0; i < 2; i++) {
        uint8_t buf[SDP_HS_DGRAM_MAX];
        struct sdp_core_addr to;
        size_t n;
        while ((n = sdp_hs_output(h[i]->hs, now, buf, sizeof(buf), &to)) > 0) {
            cr_assert(n <= SDP_HS_DGRAM_MAX);
            c->sent_bytes[i] += n;
            if (rnd(c) % 100 < c->drop_pct)
                continue;
            int copies = rnd(c) % 100 < c->dup_pct ? 2 : 1;
            for (int k = 0; k < copies && c->n < 512; k++) {
                struct dg *d = &c->q[c->n++];
                d->to = 1 - i;
                d->from = h[i]->addr;
                d->len = n;
                memcpy(d->b, buf, n);
                d->delay = rnd(c) % 100 < c->reorder_pct ? 1 + (int)(rnd(c) % 5) : 0;
                if (rnd(c) % 100 < c->corrupt_pct)
                    d->b[rnd(c) % n] ^= (uint8_t)(1u << (rnd(c) % 8));
            }
        }
    }
    unsigned keep = 0;
    for (unsigned k = 0; k < c->n; k++) {
        struct dg *d = &c->q[k];
        if (d->delay-- > 0) {
            c->q[keep++] = *d;
            continue;
        }
        c->recv_bytes[d->to] += d->len;
        sdp_hs_input(h[d->to]->hs, &d->from, d->b, d->len, now);
    }
    c->n = keep;
    for (int i = 0; i < 2; i++) {
        if (sdp_hs_next_expiry(h[i]->hs) <= now)
            sdp_hs_handle_expiry(h[i]->hs, now);
        drain_events(h[i]);
    }
}

static uint64_t run(struct chan *c, struct host *h[2], uint64_t now, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t++) {
        step(c, h, now);
        now += 1000000;
        if ((h[0]->done || h[0]->failed) && (h[1]->done || h[1]->failed) && c->n == 0 &&
            !sdp_hs_pending(h[0]->hs) && !sdp_hs_pending(h[1]->hs))
            break;
    }
    return now;
}

static struct sdp_tls_config server_cfg(void)
{
    struct sdp_tls_config tc;
    memset(&tc, 0, sizeof(tc));
    tc.ephemeral_cert = 1;
    tc.cipher = SDP_CIPHER_AES128GCM;
    return tc;
}

static struct sdp_tls_config client_cfg(const struct host *server)
{
    struct sdp_tls_config tc;
    memset(&tc, 0, sizeof(tc));
    tc.have_pin = 1;
    cr_assert_eq(sdp_tls_ctx_fingerprint(server->tls, tc.pin), 0);
    tc.cipher = SDP_CIPHER_AES128GCM;
    return tc;
}

static void pair(struct host *cl, struct host *sv)
{
    struct sdp_tls_config s = server_cfg();
    host_init(sv, 2000, &s, 0, 1);
    struct sdp_tls_config c = client_cfg(sv);
    host_init(cl, 1000, &c, 1, 0);
}

static void assert_agreed(struct host *cl, struct host *sv)
{
    cr_assert_eq(cl->done, 1, "client done %d failed %d (%s)", cl->done, cl->failed, sdp_strerror(cl->error));
    cr_assert_eq(sv->done, 1, "server done %d failed %d (%s)", sv->done, sv->failed, sdp_strerror(sv->error));
    cr_assert_eq(cl->role, SDP_TLS_CLIENT);
    cr_assert_eq(sv->role, SDP_TLS_SERVER);
    cr_assert_arr_eq(cl->tx, sv->rx, SDP_SECRET_LEN);
    cr_assert_arr_eq(cl->rx, sv->tx, SDP_SECRET_LEN);
    cr_assert(memcmp(cl->tx, cl->rx, SDP_SECRET_LEN) != 0);
}

Test(hs, clean_channel_retry_then_keys)
{
    struct host cl, sv;
    always_retry = 1;
    pair(&cl, &sv);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 1};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 1, "a second connect joins the first");
    cr_assert(sdp_hs_busy(cl.hs, &sv.addr));
    run(&c, h, 0, 1000);
    assert_agreed(&cl, &sv);
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.retries_sent, 1, "the first contact is answered with a retry token");
    cr_assert_eq(st.accepted, 1);
    /* A second handshake reuses the token: no retry. */
    cl.done = sv.done = 0;
    uint64_t now = 10ull * 1000000000;
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, now), 0);
    run(&c, h, now, 1000);
    assert_agreed(&cl, &sv);
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.retries_sent, 1, "a remembered token skips the retry");
    host_free(&cl);
    host_free(&sv);
}

Test(hs, server_keeps_no_state_and_never_amplifies_before_validation)
{
    struct host cl, sv;
    always_retry = 1;
    pair(&cl, &sv);
    /* The client's first flight reaches the server; the server's answer is
     * one RETRY no larger than three times what it got, and no attempt. */
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint8_t buf[SDP_HS_DGRAM_MAX], out[SDP_HS_DGRAM_MAX];
    struct sdp_core_addr to;
    size_t n = sdp_hs_output(cl.hs, 0, buf, sizeof(buf), &to);
    cr_assert_gt(n, 0);
    for (int i = 0; i < 50; i++) { /* a flood of the same packet (spoofed source) */
        cr_assert_eq(sdp_hs_input(sv.hs, &cl.addr, buf, n, 0), 0);
        struct sdp_hs_stats st;
        sdp_hs_get_stats(sv.hs, &st);
        cr_assert_eq(st.attempts, 0, "no state before the token comes back");
    }
    size_t total = 0, m;
    while ((m = sdp_hs_output(sv.hs, 0, out, sizeof(out), &to)) > 0) {
        cr_assert(m <= 3 * n);
        struct sdp_pkt p;
        cr_assert_eq(sdp_wire_decode(out, m, &p), 0);
        cr_assert_eq(p.u.hs.kind, SDP_HS_RETRY);
        total += m;
    }
    cr_assert(total <= 50 * 3 * n);
    /* A tiny packet cannot get a larger reply. */
    uint8_t tiny[28];
    memcpy(tiny, buf, 12);
    memset(tiny + 12, 0, 16);
    tiny[9] = 0, tiny[10] = 0, tiny[11] = 0; /* no token, no payload */
    tiny[12] = 1;                            /* some conn id */
    struct sdp_hs_stats before, after;
    sdp_hs_get_stats(sv.hs, &before);
    sdp_hs_input(sv.hs, &cl.addr, tiny, sizeof(tiny), 5000000);
    sdp_hs_get_stats(sv.hs, &after);
    m = sdp_hs_output(sv.hs, 5000000, out, sizeof(out), &to);
    cr_assert(m <= 3 * sizeof(tiny));
    /* A forged token is refused (and answered with a fresh retry, not state). */
    uint8_t forged[SDP_HS_DGRAM_MAX];
    struct sdp_pkt p;
    cr_assert_eq(sdp_wire_decode(buf, n, &p), 0);
    uint8_t tok[25] = {1};
    struct sdp_hdr hdr = {.type = SDP_PKT_HANDSHAKE};
    struct sdp_handshake hh = p.u.hs;
    hh.token = tok;
    hh.token_len = sizeof(tok);
    int fl = sdp_wire_encode_handshake(forged, sizeof(forged), &hdr, &hh);
    cr_assert_gt(fl, 0);
    sdp_hs_input(sv.hs, &cl.addr, forged, (size_t)fl, 6000000);
    sdp_hs_get_stats(sv.hs, &after);
    cr_assert_eq(after.attempts, 0);
    cr_assert_geq(after.tokens_bad, 1);
    host_free(&cl);
    host_free(&sv);
}

static void lossy(uint64_t seed, unsigned drop, unsigned dup, unsigned reorder, unsigned corrupt)
{
    struct host cl, sv;
    pair(&cl, &sv);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = seed, .drop_pct = drop, .dup_pct = dup, .reorder_pct = reorder, .corrupt_pct = corrupt};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    run(&c, h, 0, 20000);
    assert_agreed(&cl, &sv);
    host_free(&cl);
    host_free(&sv);
}

Test(hs, ten_percent_loss_many_seeds)
{
    for (uint64_t seed = 1; seed <= 20; seed++)
        lossy(seed * 7919, 10, 0, 0, 0);
}

Test(hs, loss_duplication_reordering)
{
    for (uint64_t seed = 1; seed <= 20; seed++)
        lossy(seed * 104729, 10, 10, 20, 0);
}

Test(hs, one_altered_byte_fails_cleanly)
{
    /* Every datagram after the retry has one bit flipped: TLS (not us)
     * notices, both sides fail, nothing is agreed. */
    struct host cl, sv;
    always_retry = 1;
    pair(&cl, &sv);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 99};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint64_t now = run(&c, h, 0, 3); /* retry round trip, clean */
    c.corrupt_pct = 100;
    run(&c, h, now, 20000);
    cr_assert_eq(cl.done, 0);
    cr_assert_eq(cl.failed, 1);
    cr_assert_neq(cl.error, 0);
    host_free(&cl);
    host_free(&sv);
}

Test(hs, silence_times_out)
{
    struct host cl, sv;
    pair(&cl, &sv);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 5, .drop_pct = 100};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    run(&c, h, 0, 10000);
    cr_assert_eq(cl.failed, 1);
    cr_assert_eq(cl.error, SDP_ETIMEDOUT);
    struct sdp_hs_stats st;
    sdp_hs_get_stats(cl.hs, &st);
    cr_assert_gt(st.retransmits, 3, "it kept trying, with backoff");
    cr_assert_lt(st.retransmits, 20, "with backoff, not every millisecond");
    host_free(&cl);
    host_free(&sv);
}

Test(hs, wrong_pin_fails_with_epin)
{
    struct host cl, sv;
    struct sdp_tls_config s = server_cfg();
    host_init(&sv, 2000, &s, 0, 1);
    struct sdp_tls_config cc = client_cfg(&sv);
    cc.pin[0] ^= 1;
    host_init(&cl, 1000, &cc, 1, 0);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 3};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    run(&c, h, 0, 10000);
    cr_assert_eq(cl.failed, 1);
    cr_assert_eq(cl.error, SDP_EPIN, "got %s", sdp_strerror(cl.error));
    cr_assert_eq(sv.done, 0, "the server never completes with an unauthenticated client");
    host_free(&cl);
    host_free(&sv);
}

Test(hs, simultaneous_start_settles_on_one_session)
{
    /* Both hosts can be client and server (PSK), and both start at once. */
    static const uint8_t psk[32] = {7, 7, 7};
    struct sdp_tls_config tc;
    memset(&tc, 0, sizeof(tc));
    tc.psk = psk;
    tc.psk_len = sizeof(psk);
    tc.psk_identity = "test";
    tc.cipher = SDP_CIPHER_AES128GCM;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        struct host a, b;
        host_init(&a, 1000, &tc, 1, 1);
        host_init(&b, 2000, &tc, 1, 1);
        struct host *h[2] = {&a, &b};
        struct chan c = {.rng = seed};
        cr_assert_eq(sdp_hs_connect(a.hs, &b.addr, NULL, 0), 0);
        cr_assert_eq(sdp_hs_connect(b.hs, &a.addr, NULL, 0), 0);
        run(&c, h, 0, 10000);
        cr_assert_eq(a.done, 1, "a: done %d failed %d", a.done, a.failed);
        cr_assert_eq(b.done, 1, "b: done %d failed %d", b.done, b.failed);
        cr_assert_neq(a.role, b.role, "one client, one server");
        cr_assert_arr_eq(a.tx, b.rx, SDP_SECRET_LEN);
        cr_assert_arr_eq(a.rx, b.tx, SDP_SECRET_LEN);
        cr_assert_eq(a.failed + b.failed, 0, "the attempt that gave way is not a failure");
        host_free(&a);
        host_free(&b);
    }
}

Test(hs, garbage_is_dropped)
{
    struct host cl, sv;
    pair(&cl, &sv);
    struct chan c = {.rng = 77};
    uint8_t buf[SDP_HS_DGRAM_MAX];
    for (int i = 0; i < 20000; i++) {
        size_t n = rnd(&c) % sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd(&c);
        if (n > 0)
            buf[0] = 0x19; /* version 1, HANDSHAKE */
        sdp_hs_input(sv.hs, &cl.addr, buf, n, (uint64_t)i * 1000);
        sdp_hs_input(cl.hs, &sv.addr, buf, n, (uint64_t)i * 1000);
    }
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.attempts, 0);
    cr_assert_eq(st.completed, 0);
    host_free(&cl);
    host_free(&sv);
}

Test(hs, psk_mismatch_fails_with_epsk_on_both_sides)
{
    static const uint8_t k1[32] = {1}, k2[32] = {2};
    struct sdp_tls_config a = {.psk = k1, .psk_len = 32, .psk_identity = "id", .cipher = SDP_CIPHER_AES128GCM};
    struct sdp_tls_config b = a;
    b.psk = k2;
    struct host cl, sv;
    host_init(&sv, 2000, &a, 0, 1);
    host_init(&cl, 1000, &b, 1, 0);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 11};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    run(&c, h, 0, 10000);
    cr_assert_eq(sv.failed, 1);
    cr_assert_eq(sv.error, SDP_EPSK, "server: %s", sdp_strerror(sv.error));
    cr_assert_eq(cl.failed, 1);
    cr_assert_eq(cl.error, SDP_EPSK, "client: %s", sdp_strerror(cl.error));
    host_free(&cl);
    host_free(&sv);
}

/* 0-RTT over the handshake protocol: a resumption gives the client its
 * early key at connect and the server the same one, with its 1-RTT keys,
 * as soon as it answers the ClientHello; both DONEs say 0-RTT was
 * accepted, and the client is done without waiting for the server's
 * acknowledgement.  A replay of that first flight to the server gives it
 * no keys. */
Test(hs, zero_rtt_keys_early_then_done_and_a_replay_gets_none)
{
    struct host cl, sv;
    struct sdp_tls_config s = server_cfg();
    s.early_data = 1;
    host_init(&sv, 2000, &s, 0, 1);
    struct sdp_tls_config c = client_cfg(&sv);
    c.early_data = 1;
    host_init(&cl, 1000, &c, 1, 0);
    struct host *h[2] = {&cl, &sv};
    struct chan ch = {.rng = 7};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint64_t now = run(&ch, h, 0, 1000);
    assert_agreed(&cl, &sv);
    cr_assert_eq(cl.early + sv.early, 0, "no ticket yet: no 0-RTT");
    for (int i = 0; i < 5; i++, now += 1000000)
        step(&ch, h, now); /* the server's tickets follow its keys by a millisecond */
    cr_assert_eq(cl.early_state, 0);
    /* Resume: the client's early key comes at once. */
    cl.done = sv.done = 0;
    now += 10ull * 1000000000;
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, now), 0);
    drain_events(&cl);
    cr_assert_eq(cl.early, 1);
    cr_assert(sdp_hs_early(cl.hs, &sv.addr));
    /* Keep the client's first flight for the replay. */
    uint8_t first[SDP_HS_DGRAM_MAX];
    struct sdp_core_addr to;
    size_t first_len = sdp_hs_output(cl.hs, now, first, sizeof(first), &to);
    cr_assert_gt(first_len, 0);
    sdp_hs_input(sv.hs, &cl.addr, first, first_len, now);
    drain_events(&sv);
    cr_assert_eq(sv.early, 1, "the server accepted 0-RTT");
    cr_assert_eq(sv.done, 0, "the client's Finished has not come yet");
    cr_assert_arr_eq(sv.early_secret, cl.early_secret, SDP_SECRET_LEN);
    run(&ch, h, now, 1000);
    assert_agreed(&cl, &sv);
    cr_assert_eq(cl.early_state, 1);
    cr_assert_eq(sv.early_state, 1, "the server's keys came with EARLY");
    cr_assert_arr_eq(sv.half_tx, sv.tx, SDP_SECRET_LEN);
    cr_assert_arr_eq(sv.half_rx, sv.rx, SDP_SECRET_LEN);
    cr_assert(!sdp_hs_early(cl.hs, &sv.addr));
    /* The same first flight again, from the same address, later: a new
     * attempt for the server, but OpenSSL's anti-replay refuses 0-RTT. */
    now += 3ull * 1000000000; /* past the linger of the finished attempt */
    sdp_hs_handle_expiry(sv.hs, now);
    sdp_hs_input(sv.hs, &cl.addr, first, first_len, now);
    drain_events(&sv);
    cr_assert_eq(sv.early, 1, "a replayed 0-RTT flight gets no keys");
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.early, 1);
    cr_assert_eq(st.accepted, 3, "the replay was taken up as a new attempt");
    host_free(&cl);
    host_free(&sv);
}

/* Without mutual TLS a client is done as soon as its TLS is: before the
 * server, which still needs the client's Finished (the server keeps the
 * requests that overtake it). */
Test(hs, client_done_before_the_server_without_mutual_tls)
{
    struct host cl, sv;
    pair(&cl, &sv);
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 3};
    uint64_t now = 0;
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, now), 0);
    int cl_step = -1, sv_step = -1;
    for (int i = 0; i < 200 && (cl_step < 0 || sv_step < 0); i++) {
        step(&c, h, now);
        now += 1000000;
        if (cl.done && cl_step < 0)
            cl_step = i;
        if (sv.done && sv_step < 0)
            sv_step = i;
    }
    assert_agreed(&cl, &sv);
    cr_assert_lt(cl_step, sv_step, "client done at step %d, server at %d", cl_step, sv_step);
    host_free(&cl);
    host_free(&sv);
}

/* Without always_retry a padded first contact starts the attempt at once:
 * the server's whole first flight fits in 3x the client's one datagram, so
 * the client finishes from it (one round trip, no RETRY). */
Test(hs, first_contact_in_one_round_trip)
{
    struct host cl, sv;
    pair(&cl, &sv);
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint8_t buf[SDP_HS_DGRAM_MAX], out[SDP_HS_DGRAM_MAX];
    struct sdp_core_addr to;
    size_t n = sdp_hs_output(cl.hs, 0, buf, sizeof(buf), &to);
    cr_assert_eq(n, SDP_HS_DGRAM_MAX, "the first flight is padded to a full datagram");
    cr_assert_eq(sdp_hs_input(sv.hs, &cl.addr, buf, n, 0), 0);
    size_t total = 0, m;
    while ((m = sdp_hs_output(sv.hs, 0, out, sizeof(out), &to)) > 0) {
        struct sdp_pkt p;
        cr_assert_eq(sdp_wire_decode(out, m, &p), 0);
        cr_assert_eq(p.u.hs.kind, SDP_HS_SERVER, "no RETRY");
        total += m;
        cr_assert_eq(sdp_hs_input(cl.hs, &sv.addr, out, m, 0), 0);
    }
    cr_assert_leq(total, 3 * n, "%zu bytes answered %zu before the address was proven", total, n);
    drain_events(&cl);
    cr_assert_eq(cl.done, 1, "the client finished from the server's first flight (%zu bytes)", total);
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.retries_sent, 0);
    cr_assert_eq(st.unvalidated, 1);
    cr_assert_eq(st.amp_limited, 0);
    /* The client's Finished (its acknowledgement proves its address) ends it. */
    struct host *h[2] = {&cl, &sv};
    struct chan c = {.rng = 5};
    run(&c, h, 0, 1000);
    assert_agreed(&cl, &sv);
    host_free(&cl);
    host_free(&sv);
}

/* A flood of padded first contacts from spoofed addresses: at most
 * unvalidated_max (32) attempts, each answered with at most 3x its bytes;
 * beyond that every new address gets a stateless RETRY. */
Test(hs, unproven_flood_falls_back_to_retry)
{
    struct host cl, sv;
    pair(&cl, &sv);
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint8_t buf[SDP_HS_DGRAM_MAX], out[SDP_HS_DGRAM_MAX];
    struct sdp_core_addr to;
    size_t n = sdp_hs_output(cl.hs, 0, buf, sizeof(buf), &to);
    cr_assert_eq(n, SDP_HS_DGRAM_MAX);
    size_t sent_to[40] = {0};
    for (int i = 0; i < 40; i++) {
        struct sdp_core_addr spoof;
        mkaddr(&spoof, (uint16_t)(3000 + i));
        sdp_hs_input(sv.hs, &spoof, buf, n, 0);
        size_t m;
        while ((m = sdp_hs_output(sv.hs, 0, out, sizeof(out), &to)) > 0) {
            cr_assert_eq(to.len, spoof.len);
            cr_assert_eq(memcmp(to.bytes, spoof.bytes, spoof.len), 0, "only the newest contact has output");
            struct sdp_pkt p;
            cr_assert_eq(sdp_wire_decode(out, m, &p), 0);
            cr_assert_eq(p.u.hs.kind, i < 32 ? SDP_HS_SERVER : SDP_HS_RETRY, "contact %d", i);
            sent_to[i] += m;
        }
        cr_assert_leq(sent_to[i], 3 * n, "contact %d got %zu bytes for %zu", i, sent_to[i], n);
    }
    /* Their retransmission timers fire: still within 3x each. */
    for (uint64_t t = 1; t <= 1000; t++) {
        uint64_t now = t * 1000000;
        if (sdp_hs_next_expiry(sv.hs) <= now)
            sdp_hs_handle_expiry(sv.hs, now);
        size_t m;
        while ((m = sdp_hs_output(sv.hs, now, out, sizeof(out), &to)) > 0) {
            uint16_t port = (uint16_t)((to.bytes[2] << 8) | to.bytes[3]);
            cr_assert(port >= 3000 && port < 3040);
            sent_to[port - 3000] += m;
            cr_assert_leq(sent_to[port - 3000], 3 * n);
        }
    }
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.unvalidated, 32);
    cr_assert_eq(st.attempts, 32);
    cr_assert_eq(st.retries_sent, 8);
    cr_assert_eq(st.retries_load, 8);
    cr_assert_gt(st.amp_limited, 0, "retransmissions were held back");
    host_free(&cl);
    host_free(&sv);
}

/* One spoofed padded first contact, then a forged CLIENT packet that
 * "acknowledges" one byte of our flight (offsets are predictable, so that
 * proves nothing): until the attempt is gone, retransmissions and the
 * time-out's CLOSE included, the victim gets at most 3x what came from it. */
Test(hs, forged_ack_proves_nothing_and_timeouts_stay_within_3x)
{
    struct host cl, sv;
    pair(&cl, &sv);
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint8_t ch[SDP_HS_DGRAM_MAX], out[SDP_HS_DGRAM_MAX];
    struct sdp_core_addr to, victim;
    mkaddr(&victim, 4000);
    size_t n = sdp_hs_output(cl.hs, 0, ch, sizeof(ch), &to);
    cr_assert_eq(n, SDP_HS_DGRAM_MAX);
    cr_assert_eq(sdp_hs_input(sv.hs, &victim, ch, n, 0), 0);
    struct sdp_pkt p;
    cr_assert_eq(sdp_wire_decode(ch, n, &p), 0);
    uint8_t ack[64];
    struct sdp_hdr hdr = {.type = SDP_PKT_HANDSHAKE};
    struct sdp_handshake f = {.kind = SDP_HS_CLIENT, .conn_id = p.u.hs.conn_id, .stream_offset = p.u.hs.payload_len,
                              .ack_offset = 1};
    int al = sdp_wire_encode_handshake(ack, sizeof(ack), &hdr, &f);
    cr_assert_gt(al, 0);
    uint64_t received = n, sent = 0;
    for (uint64_t now = 0; now <= 7000000000ull; now += 1000000) {
        if (now == 2000000) {
            cr_assert_eq(sdp_hs_input(sv.hs, &victim, ack, (size_t)al, now), 0);
            received += (uint64_t)al;
        }
        if (sdp_hs_next_expiry(sv.hs) <= now)
            sdp_hs_handle_expiry(sv.hs, now);
        size_t m;
        while ((m = sdp_hs_output(sv.hs, now, out, sizeof(out), &to)) > 0) {
            sent += m;
            cr_assert_leq(sent, 3 * received, "%llu bytes to an unproven address that sent %llu",
                          (unsigned long long)sent, (unsigned long long)received);
        }
        while (sdp_hs_next_event(sv.hs, sv.ev))
            ;
    }
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.attempts, 0, "timed out and forgotten");
    cr_assert_eq(st.timeouts, 1);
    cr_assert_gt(st.amp_limited, 0);
    host_free(&cl);
    host_free(&sv);
}

/* A second first contact (another conn_id) from an address with an
 * attempt under way could be forged to kill it: it gets a RETRY, and the
 * attempt goes on to completion. */
Test(hs, first_contact_does_not_replace_an_unproven_attempt)
{
    struct host cl, sv;
    pair(&cl, &sv);
    struct host *h[2] = {&cl, &sv};
    cr_assert_eq(sdp_hs_connect(cl.hs, &sv.addr, NULL, 0), 0);
    uint8_t ch[SDP_HS_DGRAM_MAX];
    struct sdp_core_addr to;
    size_t n = sdp_hs_output(cl.hs, 0, ch, sizeof(ch), &to);
    cr_assert_eq(sdp_hs_input(sv.hs, &cl.addr, ch, n, 0), 0);
    uint8_t forged[SDP_HS_DGRAM_MAX];
    memcpy(forged, ch, n);
    forged[SDP_HDR_LEN + 4] ^= 1; /* another conn_id */
    cr_assert_eq(sdp_hs_input(sv.hs, &cl.addr, forged, n, 0), 0);
    struct sdp_hs_stats st;
    sdp_hs_get_stats(sv.hs, &st);
    cr_assert_eq(st.attempts, 1);
    cr_assert_eq(st.retries_sent, 1);
    cr_assert_eq(st.unvalidated, 1);
    /* The RETRY (for the forged conn_id) is dropped by the real client. */
    struct chan c = {.rng = 11};
    run(&c, h, 0, 1000);
    assert_agreed(&cl, &sv);
    host_free(&cl);
    host_free(&sv);
}
