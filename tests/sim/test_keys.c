/* Key lifecycle under load: key updates (automatic and asked for) with a
 * thousand RPCs in flight through loss and reordering, forged packets of
 * the other phase, and a session replaced mid-traffic. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sdp/sdp.h"
#include "simtest.h"
#include "wire/wire.h"

#define MS UINT64_C(1000000)

static void sizes(struct sim *s, uint32_t client, uint32_t *server, uint32_t *rq, uint32_t *rs)
{
    (void)client;
    (void)server;
    static const uint32_t sz[] = {0, 100, 1400, 3000, 16384, 16385, 40000, 70000};
    *rq = sz[sim_rng_below(&s->app, 8)];
    *rs = sz[sim_rng_below(&s->app, 8)];
}

/* Two hosts, each client and server of the other, 1,000 RPCs in flight in
 * all.  Messages under a generation must finish before the one after next
 * (PROTOCOL.md 7.1), so with this many in flight, long messages waiting
 * behind short ones under SRPT pace the updates. */
static void busy_pair(struct sim_cfg *cfg, uint64_t seed)
{
    sim_cfg_default(cfg);
    cfg->nhosts = 2;
    cfg->concurrency = 500;
    cfg->rpcs = (uint64_t)(20000 * sim_scale());
    if (cfg->rpcs < 4000)
        cfg->rpcs = 4000;
    cfg->next_rpc = sizes;
    cfg->core.max_rpcs = 8192;
    cfg->core.max_rpcs_per_peer = 4096;
    /* Room for the burst of new requests a peer starts at once. */
    cfg->core.unauth_per_peer = 1024;
    cfg->core.unauth_total = 4096;
    cfg->core.unauth_bytes_per_peer = UINT64_C(64) << 20;
    cfg->core.unauth_bytes_total = UINT64_C(256) << 20;
    cfg->core.timeout_ticks = 1000; /* the API's default: 1 s */
    cfg->seed = sim_seed(seed);
}

/* lossy: RPCs may fail by timeout (the core does so under impairments at
 * this load without key updates too), but only that way, and never twice. */
static void settle_and_check(struct sim *s, uint64_t min_updates, int lossy)
{
    cr_assert_eq(s->errors, 0, "%s; %s", s->first_error, sim_replay_hint(s));
    SIM_CHECK(s, s->done + s->failed == s->cfg.rpcs);
    if (!lossy)
        SIM_CHECK(s, s->failed == 0);
    SIM_CHECK(s, s->failed * 100 <= s->cfg.rpcs);
    for (uint64_t i = 0; i < s->nrpcs; i++)
        cr_assert(s->rpcs[i].state == SIM_RPC_DONE || s->rpcs[i].error == SDP_ETIMEDOUT, "rpc %llu: %d; %s",
                  (unsigned long long)i, s->rpcs[i].error, sim_replay_hint(s));
    /* ACKs, and the older receive generations' few ticks of grace. */
    sim_run_until(s, s->net.now + 1500 * MS);
    for (uint32_t h = 0; h < 2; h++) {
        struct sdp_core_stats st;
        sim_stats(s, h, &st);
        printf("keys host %u: %llu updates (gen %llu), followed %llu (gen %llu), %llu old keys wiped, "
               "%llu key-phase drops, %llu records failed, %llu RPCs failed\n",
               h, (unsigned long long)st.key_updates, (unsigned long long)st.tx_gen_max,
               (unsigned long long)st.rx_key_updates, (unsigned long long)st.rx_gen_max,
               (unsigned long long)st.rx_keys_wiped, (unsigned long long)st.drops[SDP_DROP_KEY_PHASE],
               (unsigned long long)st.drops[SDP_DROP_REC_AUTH], (unsigned long long)s->failed);
        cr_assert_geq(st.key_updates, min_updates, "host %u: %llu updates; %s", h,
                      (unsigned long long)st.key_updates, sim_replay_hint(s));
        /* The peer's last update may have come after its last message. */
        cr_assert_geq(st.rx_key_updates + 1, min_updates, "host %u followed %llu; %s", h,
                      (unsigned long long)st.rx_key_updates, sim_replay_hint(s));
        /* All but the previous generation are gone. */
        cr_assert_eq(st.rx_keys_wiped + (st.rx_key_updates > 0), st.rx_key_updates, "host %u; %s", h,
                     sim_replay_hint(s));
        SIM_CHECK(s, st.rx_old_keys == 0);
        SIM_CHECK(s, st.rpcs_active == 0);
        SIM_CHECK(s, st.mem_used == 0);
    }
    /* Each side adopted every generation the other sealed anything under. */
    struct sdp_core_stats s0, s1;
    sim_stats(s, 0, &s0);
    sim_stats(s, 1, &s1);
    SIM_CHECK(s, s0.tx_gen_max - s1.rx_gen_max <= 1 && s1.tx_gen_max - s0.rx_gen_max <= 1);
}

Test(keys, automatic_updates_with_1000_rpcs_in_flight, .timeout = 300)
{
    struct sim_cfg cfg;
    busy_pair(&cfg, 0x7001);
    cfg.core.key_update_after = 100;
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, 60000 * MS);
    settle_and_check(&s, 2, 0);
    sim_free(&s);
}

Test(keys, automatic_updates_under_loss_and_reordering, .timeout = 300)
{
    struct sim_cfg cfg;
    busy_pair(&cfg, 0x7005);
    cfg.concurrency = 50;
    cfg.rpcs = (uint64_t)(10000 * sim_scale()) + 2000;
    cfg.link.loss = 0.01;
    cfg.link.reorder = 0.05;
    cfg.link.reorder_ns = 20000;
    cfg.core.key_update_after = 100;
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, 60000 * MS);
    settle_and_check(&s, 2, 1);
    sim_free(&s);
}

static void ask_update(struct sim *s, uint32_t host, uint64_t arg)
{
    (void)host;
    for (uint32_t h = 0; h < 2; h++)
        cr_assert_eq(sdp_core_key_update(s->hosts[h].core, s->hosts[h].peer_of[1 - h]), 0);
    if (arg < 1000)
        simnet_schedule(&s->net, s->net.now + 2 * MS, SIM_EV_APP, 0, arg + 1);
}

Test(keys, requested_updates_with_1000_rpcs_in_flight, .timeout = 300)
{
    struct sim_cfg cfg;
    busy_pair(&cfg, 0x7002);
    cfg.on_app = ask_update;
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    simnet_schedule(&s.net, MS, SIM_EV_APP, 0, 0);
    sim_run(&s, 60000 * MS);
    settle_and_check(&s, 2, 0);
    sim_free(&s);
}

/* Every packet host 0 receives comes again, forged: KEY_PHASE flipped and a
 * byte of its tag (or last record) changed, a little later. */
static void forge(struct sim *s, uint32_t host, uint32_t src, const uint8_t *pkt, size_t len)
{
    /* No update runs here: genuine packets have phase 0, ours phase 1 (and
     * are not forged again when they arrive). */
    if (host != 0 || len < 40 || len > 9000 || (pkt[1] & SDP_F_KEY_PHASE))
        return;
    uint8_t b[9000];
    memcpy(b, pkt, len);
    b[1] ^= SDP_F_KEY_PHASE;
    b[len - 1] ^= 0x80;
    simnet_inject(&s->net, s->net.now + 3000, src, host, b, len);
}

Test(keys, forged_other_phase_packets_never_advance, .timeout = 300)
{
    struct sim_cfg cfg;
    busy_pair(&cfg, 0x7003);
    cfg.concurrency = 50;
    cfg.rpcs = 3000;
    cfg.on_rx = forge;
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, 60000 * MS);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    SIM_CHECK(&s, s.done == cfg.rpcs);
    struct sdp_core_stats st;
    sim_stats(&s, 0, &st);
    SIM_CHECK(&s, st.rx_gen_max == 0 && st.rx_key_updates == 0);
    /* Dropped as forged (key phase, record), or as not fitting the message
     * or RPC they claim (mismatch, stale, no RPC); duplicates of bytes held
     * are ignored. */
    cr_assert_gt(st.drops_total, 1000, "forgeries were not seen; %s", sim_replay_hint(&s));
    cr_assert_gt(st.drops[SDP_DROP_KEY_PHASE], 0, "%s", sim_replay_hint(&s));
    sim_free(&s);
}

static uint64_t replaced_at;

static void replace(struct sim *s, uint32_t host, uint64_t arg)
{
    (void)host;
    (void)arg;
    replaced_at = s->net.now;
    cr_assert_eq(sim_replace_session(s, 0, 1, 0xabcdef), 0);
}

Test(keys, replaced_session_mid_traffic, .timeout = 300)
{
    struct sim_cfg cfg;
    busy_pair(&cfg, 0x7004);
    cfg.rpcs = 8000;
    cfg.on_app = replace;
    cfg.core.key_update_after = 1000; /* some updates before: the new session starts at 0 */
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    simnet_schedule(&s.net, 20 * MS, SIM_EV_APP, 0, 0);
    sim_run(&s, 60000 * MS);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    SIM_CHECK(&s, replaced_at > 0 && s.issued == cfg.rpcs);
    uint64_t failed = 0, after = 0;
    for (uint64_t i = 0; i < s.nrpcs; i++) {
        struct sim_rpc *r = &s.rpcs[i];
        if (r->t_start >= replaced_at) {
            after++;
            cr_assert_eq(r->state, SIM_RPC_DONE, "rpc %llu of the new session: state %d error %d; %s",
                         (unsigned long long)i, r->state, r->error, sim_replay_hint(&s));
        } else if (r->state == SIM_RPC_FAILED) {
            cr_assert_eq(r->error, SDP_EUNKNOWN, "rpc %llu; %s", (unsigned long long)i, sim_replay_hint(&s));
            /* At once (the other host hears of it at its next event). */
            cr_assert_leq(r->t_end - replaced_at, MS, "rpc %llu; %s", (unsigned long long)i, sim_replay_hint(&s));
            failed++;
        } else {
            cr_assert_eq(r->state, SIM_RPC_DONE, "rpc %llu; %s", (unsigned long long)i, sim_replay_hint(&s));
            cr_assert_leq(r->t_end, replaced_at, "rpc %llu; %s", (unsigned long long)i, sim_replay_hint(&s));
        }
    }
    printf("replace: %llu RPCs failed with the old session, %llu ran in the new one\n", (unsigned long long)failed,
           (unsigned long long)after);
    cr_assert_geq(failed, 500, "the old session had RPCs in flight; %s", sim_replay_hint(&s));
    cr_assert_gt(after, 1000, "%s", sim_replay_hint(&s));
    sim_run_until(&s, s.net.now + 300 * MS);
    for (uint32_t h = 0; h < 2; h++) {
        struct sdp_core_stats st;
        sim_stats(&s, h, &st);
        SIM_CHECK(&s, st.peers_replaced == 1);
        SIM_CHECK(&s, st.rpcs_active == 0);
        SIM_CHECK(&s, st.mem_used == 0);
    }
    sim_free(&s);
}
