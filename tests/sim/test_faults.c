/* Hostile and broken networks: a host that vanishes, replayed packets and
 * messages, and a flood of random and forged packets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdp/sdp.h"
#include "simtest.h"
#include "wire/wire.h"

#define MS UINT64_C(1000000)

static void mixed(struct sim *s, uint32_t client, uint32_t *server, uint32_t *rq, uint32_t *rs)
{
    (void)client;
    (void)server;
    static const uint32_t sizes[] = {0, 1, 100, 1400, 16384, 16385, 50000, 70000, 300000, 1500000};
    *rq = sizes[sim_rng_below(&s->app, 10)];
    *rs = sizes[sim_rng_below(&s->app, 10)];
}

static uint64_t vanish_at;

static void stop_issuing(struct sim *s, uint32_t host, uint64_t arg)
{
    (void)host;
    if (arg == 1) {
        vanish_at = s->net.now;
        sim_host_down(s, 2);
    } else {
        s->cfg.rpcs = s->issued; /* no new RPCs from here on */
    }
}

Test(faults, peer_vanishes, .timeout = 300)
{
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 3;
    cfg.concurrency = 6;
    cfg.rpcs = 1000000;
    cfg.next_rpc = mixed;
    cfg.on_app = stop_issuing;
    cfg.seed = sim_seed(0x3001);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    /* Host 2 (client of and server to both others) disappears mid-run; a
     * little later the others stop starting RPCs. */
    simnet_schedule(&s.net, 5 * MS, SIM_EV_APP, 0, 1);
    simnet_schedule(&s.net, 15 * MS, SIM_EV_APP, 0, 2);
    uint64_t tick = cfg.core.tick_ns, limit = (cfg.core.timeout_ticks + 2) * tick;
    sim_run_until(&s, 15 * MS + 3 * limit);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    uint64_t failed = 0, to_gone = 0;
    for (uint64_t i = 0; i < s.nrpcs; i++) {
        struct sim_rpc *r = &s.rpcs[i];
        if (r->client == 2)
            continue; /* died with its host */
        /* Done before, or by packets already on the wire when it vanished. */
        if (r->server == 2 && r->t_start < vanish_at && r->state == SIM_RPC_DONE && r->t_end <= vanish_at + MS)
            continue;
        if (r->server == 2) {
            to_gone++;
            cr_assert_eq(r->state, SIM_RPC_FAILED, "rpc %llu to the vanished host: state %d; %s",
                         (unsigned long long)i, r->state, sim_replay_hint(&s));
            SIM_CHECK(&s, r->error == SDP_ETIMEDOUT);
            uint64_t from = r->t_start > vanish_at ? r->t_start : vanish_at;
            cr_assert_leq(r->t_end - from, limit, "rpc %llu failed %.3f ms after its peer vanished; %s",
                          (unsigned long long)i, (double)(r->t_end - from) / 1e6, sim_replay_hint(&s));
            failed++;
        } else {
            cr_assert_eq(r->state, SIM_RPC_DONE, "rpc %llu between live hosts: state %d; %s",
                         (unsigned long long)i, r->state, sim_replay_hint(&s));
        }
    }
    cr_assert_gt(to_gone, 5, "nothing was outstanding to the vanished host; %s", sim_replay_hint(&s));
    SIM_CHECK(&s, failed == to_gone);
    for (uint32_t h = 0; h < 2; h++) {
        struct sdp_core_stats st;
        sim_stats(&s, h, &st);
        cr_assert_eq(st.rpcs_active, 0, "host %u: %llu RPCs left; %s", h, (unsigned long long)st.rpcs_active,
                     sim_replay_hint(&s));
        cr_assert_eq(st.mem_used, 0, "host %u: %llu bytes left; %s", h, (unsigned long long)st.mem_used,
                     sim_replay_hint(&s));
        SIM_CHECK(&s, st.incoming == 0);
        SIM_CHECK(&s, st.unauth_msgs == 0);
        SIM_CHECK(&s, st.events_pending == 0);
        SIM_CHECK(&s, st.client_timeouts > 0);
        SIM_CHECK(&s, st.server_timeouts + st.server_acked > 0);
    }
    sim_free(&s);
}

/* Every packet any host receives, kept for replaying later. */
struct capture {
    struct {
        uint32_t src, dst, len;
        uint8_t *b;
    } *p;
    size_t n, cap;
    int dup_now; /* also re-inject each packet right away, a little later */
};

static void capture_rx(struct sim *s, uint32_t host, uint32_t src, const uint8_t *pkt, size_t len)
{
    struct capture *c = s->cfg.user;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4096;
        c->p = realloc(c->p, c->cap * sizeof(*c->p));
        cr_assert_not_null(c->p);
    }
    c->p[c->n].src = src;
    c->p[c->n].dst = host;
    c->p[c->n].len = (uint32_t)len;
    c->p[c->n].b = malloc(len);
    memcpy(c->p[c->n].b, pkt, len);
    c->n++;
}

static void replay_run(int window_off, uint64_t *redelivered_errors)
{
    struct capture cap = {0};
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 2;
    cfg.concurrency = 4;
    cfg.rpcs = 200;
    cfg.next_rpc = mixed;
    cfg.on_rx = capture_rx;
    cfg.user = &cap;
    cfg.core.replay_window_off = window_off;
    cfg.seed = sim_seed(0x3002);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, 10000 * MS);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    SIM_CHECK(&s, s.done == cfg.rpcs);
    /* Let ACKs free the servers' state, then replay everything, twice:
     * in order, and shuffled. */
    sim_run_until(&s, s.net.now + 50 * MS);
    s.cfg.on_rx = NULL;
    struct sdp_core_stats before[2];
    sim_stats(&s, 0, &before[0]);
    sim_stats(&s, 1, &before[1]);
    uint64_t t = s.net.now + MS;
    for (size_t i = 0; i < cap.n; i++)
        simnet_inject(&s.net, t + i * 100, cap.p[i].src, cap.p[i].dst, cap.p[i].b, cap.p[i].len);
    t += cap.n * 100 + MS;
    for (size_t i = 0; i < cap.n; i++) {
        size_t j = (size_t)sim_rng_below(&s.app, cap.n);
        simnet_inject(&s.net, t + i * 100, cap.p[j].src, cap.p[j].dst, cap.p[j].b, cap.p[j].len);
    }
    sim_run_until(&s, t + cap.n * 100 + 500 * MS);
    *redelivered_errors = s.errors;
    if (!window_off) {
        cr_assert_eq(s.errors, 0, "replayed packets delivered something: %s; %s", s.first_error,
                     sim_replay_hint(&s));
        uint64_t dropped = 0;
        for (uint32_t h = 0; h < 2; h++) {
            struct sdp_core_stats st;
            sim_stats(&s, h, &st);
            SIM_CHECK(&s, st.requests_delivered == before[h].requests_delivered);
            SIM_CHECK(&s, st.responses_delivered == before[h].responses_delivered);
            cr_assert_gt(st.drops[SDP_DROP_REPLAY], before[h].drops[SDP_DROP_REPLAY],
                         "host %u: the replay window never fired; %s", h, sim_replay_hint(&s));
            dropped += st.drops_total - before[h].drops_total;
            cr_assert_eq(st.rpcs_active, 0, "host %u: replays left state behind; %s", h, sim_replay_hint(&s));
            SIM_CHECK(&s, st.mem_used == 0);
        }
        cr_assert_gt(dropped, cap.n, "most of %zu replayed packets should be dropped and counted; %s", 2 * cap.n,
                     sim_replay_hint(&s));
    }
    for (size_t i = 0; i < cap.n; i++)
        free(cap.p[i].b);
    free(cap.p);
    sim_free(&s);
}

Test(faults, replays_never_deliver_twice, .timeout = 300)
{
    uint64_t errs;
    replay_run(0, &errs);
    cr_assert_eq(errs, 0, "seed=0x%llx (replay: SDP_SIM_SEED=0x%llx)", (unsigned long long)sim_seed(0x3002),
                 (unsigned long long)sim_seed(0x3002));
}

Test(faults, replay_window_is_what_protects, .timeout = 300)
{
    /* Control experiment: with the window off, old requests do execute again
     * (the test above would then fail), so the test above is not vacuous. */
    uint64_t errs;
    replay_run(1, &errs);
    cr_assert_gt(errs, 0, "seed=0x%llx (replay: SDP_SIM_SEED=0x%llx)", (unsigned long long)sim_seed(0x3002),
                 (unsigned long long)sim_seed(0x3002));
}

struct flood {
    uint64_t sent;
    uint64_t per_tick;
    uint64_t until;
};

static void forge(struct sim *s, uint8_t *b, size_t *len)
{
    struct sim_rng *r = &s->app;
    uint64_t kind = sim_rng_below(r, 4);
    if (kind == 0) {
        /* Random bytes, sometimes with a plausible first byte. */
        *len = 1 + (size_t)sim_rng_below(r, 1500);
        for (size_t i = 0; i < *len; i++)
            b[i] = (uint8_t)sim_rng_next(r);
        if (sim_rng_below(r, 2))
            b[0] = (uint8_t)(0x10 | (1 + sim_rng_below(r, 9)));
        return;
    }
    struct sdp_hdr h = {.type = SDP_PKT_DATA, .rpc_id = (2 + 2 * sim_rng_below(r, 5000)) & SDP_ID_MAX};
    if (kind == 1) {
        /* DATA of a new request claiming to be huge: must stay one record. */
        uint8_t pay[1400];
        for (size_t i = 0; i < sizeof(pay); i++)
            pay[i] = (uint8_t)sim_rng_next(r);
        struct sdp_data d = {.msg_len = 1 + (uint32_t)sim_rng_below(r, 64u << 20), .rec_size = 16384,
                             .unsched = 60000, .payload = pay};
        if (sim_rng_below(r, 3) == 0)
            d.msg_len = (uint32_t)sim_rng_below(r, sizeof(pay) - 16); /* one whole record: gets opened */
        uint64_t wl = sdp_msg_wire_len(d.msg_len, d.rec_size);
        if (d.unsched > wl)
            d.unsched = (uint32_t)wl;
        d.payload_len = (uint32_t)(wl < sizeof(pay) ? wl : sizeof(pay));
        d.offset = (uint32_t)sim_rng_below(r, wl - d.payload_len + 1);
        if (sim_rng_below(r, 2))
            d.offset = 0;
        int n = sdp_wire_encode_data(b, 2000, &h, &d);
        *len = n > 0 ? (size_t)n : 0;
        return;
    }
    /* Control packets with good structure and a random tag. */
    uint64_t seq = sim_rng_next(r);
    h.rpc_id |= sim_rng_below(r, 2);
    int n;
    if (kind == 2) {
        h.type = SDP_PKT_GRANT;
        struct sdp_grant g = {.offset = (uint32_t)sim_rng_below(r, 1u << 24), .priority = 3};
        n = sdp_wire_encode_grant(b, 2000, &h, &g, seq);
    } else {
        h.type = SDP_PKT_RESEND;
        struct sdp_resend rs = {.offset = 0, .length = 1 + (uint32_t)sim_rng_below(r, 100000)};
        n = sdp_wire_encode_resend(b, 2000, &h, &rs, seq);
    }
    if (n > 16)
        for (int i = n - 16; i < n; i++)
            b[i] = (uint8_t)sim_rng_next(r);
    *len = n > 0 ? (size_t)n : 0;
}

static void flood_tick(struct sim *s, uint32_t host, uint64_t arg)
{
    (void)host;
    (void)arg;
    struct flood *f = s->cfg.user;
    uint8_t b[2048];
    for (uint64_t i = 0; i < f->per_tick; i++) {
        size_t len = 0;
        forge(s, b, &len);
        if (len == 0)
            continue;
        /* Spoofed: claims to come from client host 1 (or, for host 1, from 0). */
        uint32_t dst = sim_rng_below(&s->app, 4) == 0 ? 1 : 0;
        simnet_inject(&s->net, s->net.now + i * 100, dst == 0 ? 1 : 0, dst, b, len);
        f->sent++;
    }
    if (s->net.now < f->until)
        simnet_schedule(&s->net, s->net.now + f->per_tick * 100, SIM_EV_APP, 0, 0);
}

Test(faults, forged_flood_stays_bounded, .timeout = 300)
{
    struct flood f = {.per_tick = 100, .until = 50 * MS};
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 2;
    cfg.star = 1;
    cfg.concurrency = 4;
    cfg.rpcs = (uint64_t)(300 * sim_scale());
    cfg.next_rpc = mixed;
    cfg.on_app = flood_tick;
    cfg.user = &f;
    cfg.core.mem_limit = 64u << 20;
    cfg.core.unauth_per_peer = 16;
    cfg.core.unauth_total = 32;
    cfg.core.unauth_bytes_per_peer = 256u << 10;
    cfg.core.unauth_bytes_total = 512u << 10;
    cfg.seed = sim_seed(0x3003);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    simnet_schedule(&s.net, 0, SIM_EV_APP, 0, 0);
    sim_run(&s, 10000 * MS);
    /* Any forged request or response delivered would be an error here: the
     * simulator knows every RPC it started. */
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    /* A spoofed flood that fills a peer's unauthenticated slots refuses that
     * peer's new requests for as long as it lasts (bounded state has that
     * price); each such RPC must then fail cleanly, most must get through. */
    cr_assert_eq(s.done + s.failed, cfg.rpcs, "%s", sim_replay_hint(&s));
    cr_assert_geq(s.done * 10, cfg.rpcs * 9, "legitimate RPCs: done %llu failed %llu of %llu; %s",
                  (unsigned long long)s.done, (unsigned long long)s.failed, (unsigned long long)cfg.rpcs,
                  sim_replay_hint(&s));
    for (uint64_t i = 0; i < s.nrpcs; i++)
        if (s.rpcs[i].state == SIM_RPC_FAILED)
            SIM_CHECK(&s, s.rpcs[i].error == SDP_ETIMEDOUT || s.rpcs[i].error == SDP_EUNKNOWN);
    sim_run_until(&s, (s.net.now > f.until ? s.net.now : f.until) + 300 * MS);
    cr_assert_gt(f.sent, 100000, "flood too small to mean anything (%llu); %s", (unsigned long long)f.sent,
                 sim_replay_hint(&s));
    for (uint32_t h = 0; h < 2; h++) {
        struct sdp_core_stats st;
        sim_stats(&s, h, &st);
        SIM_CHECK(&s, s.hosts[h].unauth_max <= cfg.core.unauth_bytes_total);
        SIM_CHECK(&s, s.hosts[h].mem_max <= cfg.core.mem_limit);
        cr_assert_eq(st.rpcs_active, 0, "host %u: forged state left: %llu RPCs; %s", h,
                     (unsigned long long)st.rpcs_active, sim_replay_hint(&s));
        SIM_CHECK(&s, st.mem_used == 0);
        SIM_CHECK(&s, st.unauth_msgs == 0);
        SIM_CHECK(&s, st.drops[SDP_DROP_DECODE] > 0);
        SIM_CHECK(&s, st.drops[SDP_DROP_CTL_AUTH] > 0);
    }
    struct sdp_core_stats st0;
    sim_stats(&s, 0, &st0);
    cr_assert_gt(s.hosts[0].unauth_max, 0, "no forged message was ever held: the test proves nothing; %s",
                 sim_replay_hint(&s));
    cr_assert_gt(st0.drops[SDP_DROP_LIMIT_UNAUTH], 0, "the unauthenticated limits never engaged; %s",
                 sim_replay_hint(&s));
    SIM_CHECK(&s, st0.drops[SDP_DROP_REC_AUTH] > 0);
    fprintf(stderr,
            "flood: %llu forged packets, %llu of %llu legitimate RPCs failed; server unauth peak %llu B (bound %llu), memory peak %llu B; drops: decode "
            "%llu, ctl_auth %llu, limit_unauth %llu, rec_auth %llu, replay %llu\n",
            (unsigned long long)f.sent, (unsigned long long)s.failed, (unsigned long long)cfg.rpcs,
            (unsigned long long)s.hosts[0].unauth_max,
            (unsigned long long)cfg.core.unauth_bytes_total, (unsigned long long)s.hosts[0].mem_max,
            (unsigned long long)st0.drops[SDP_DROP_DECODE], (unsigned long long)st0.drops[SDP_DROP_CTL_AUTH],
            (unsigned long long)st0.drops[SDP_DROP_LIMIT_UNAUTH], (unsigned long long)st0.drops[SDP_DROP_REC_AUTH],
            (unsigned long long)st0.drops[SDP_DROP_REPLAY]);
    sim_free(&s);
}
