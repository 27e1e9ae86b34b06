/* Smallest end-to-end checks: one RPC each way of a few sizes, no loss. */
#include <criterion/criterion.h>

#include "sdp/sdp.h"
#include "simtest.h"

static void run_fixed_n(uint32_t req, uint32_t resp, uint32_t mtu, uint64_t n);
static void run_fixed(uint32_t req, uint32_t resp, uint32_t mtu)
{
    run_fixed_n(req, resp, mtu, 20);
}

static void run_fixed_n(uint32_t req, uint32_t resp, uint32_t mtu, uint64_t n)
{
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 2;
    cfg.rpcs = n;
    cfg.concurrency = 2;
    cfg.req_len = req;
    cfg.resp_len = resp;
    cfg.mtu = mtu;
    cfg.seed = sim_seed(42);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, UINT64_C(10) * 1000000000);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    cr_assert_eq(s.done, cfg.rpcs, "done %llu of %llu, failed %llu; %s", (unsigned long long)s.done,
                 (unsigned long long)cfg.rpcs, (unsigned long long)s.failed, sim_replay_hint(&s));
    sim_free(&s);
}

Test(smoke, empty) { run_fixed(0, 0, 1500); }
Test(smoke, small) { run_fixed(100, 1, 1500); }
Test(smoke, one_record) { run_fixed(16384, 16383, 1500); }
Test(smoke, records) { run_fixed(100000, 40000, 1500); }
Test(smoke, jumbo) { run_fixed(1000000, 300000, 9000); }
Test(smoke, largest_default, .timeout = 300) { run_fixed_n(64u << 20, 1, 9000, 2); }

Test(smoke, too_big_refused)
{
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 2;
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    static uint8_t one;
    uint64_t id;
    /* The length is checked before the data is touched. */
    cr_assert_eq(sdp_core_send_request(s.hosts[0].core, s.hosts[0].peer_of[1], &one, (64u << 20) + 1, 0, 0, &id),
                 SDP_ETOOBIG);
    cr_assert_eq(sdp_core_send_request(s.hosts[0].core, 7, &one, 1, 0, 0, &id), SDP_EINVAL);
    sim_free(&s);
}

Test(smoke, per_link_parameters)
{
    /* Host 1 sits behind a slow, long link: everything still completes,
     * and no RPC can beat that link's round trip. */
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 3;
    cfg.star = 1;
    cfg.rpcs = 40;
    cfg.concurrency = 2;
    cfg.req_len = 20000;
    cfg.resp_len = 100;
    cfg.seed = sim_seed(43);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    simnet_set_link(&s.net, 1, 1.0, 50000, 1u << 20);
    sim_start(&s);
    sim_run(&s, UINT64_C(10) * 1000000000);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    cr_assert_eq(s.done, cfg.rpcs, "%s", sim_replay_hint(&s));
    uint64_t slow_min = UINT64_MAX, fast_max = 0;
    for (uint64_t i = 0; i < s.nrpcs; i++) {
        uint64_t rtt = s.rpcs[i].t_end - s.rpcs[i].t_start;
        if (s.rpcs[i].client == 1 && rtt < slow_min)
            slow_min = rtt;
        if (s.rpcs[i].client == 2 && rtt > fast_max)
            fast_max = rtt;
    }
    /* Its link twice (up with the request, down with the response): 2 x 50 us
     * of delay, plus 20 KB serialised at 1 Gbps (160 us). */
    cr_assert_geq(slow_min, 260000, "slow link RTT %llu ns; %s", (unsigned long long)slow_min, sim_replay_hint(&s));
    cr_assert_lt(fast_max, slow_min, "the fast host is not slowed by the other's link; %s", sim_replay_hint(&s));
    sim_free(&s);
}
