/* Receiver-driven scheduling under load: a 32-to-1 incast stays within the
 * receiver's bound on incoming bytes, and SRPT grant order finishes short
 * messages measurably sooner than FIFO order. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "simtest.h"

static void incast_sizes(struct sim *s, uint32_t client, uint32_t *server, uint32_t *rq, uint32_t *rs)
{
    (void)client;
    *server = 0;
    *rq = 100000 + (uint32_t)sim_rng_below(&s->app, 900000);
    *rs = 100;
}

Test(load, incast_32_to_1, .timeout = 600)
{
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 33;
    cfg.star = 1;
    cfg.concurrency = 2;
    cfg.rpcs = (uint64_t)(32 * 12 * sim_scale());
    cfg.next_rpc = incast_sizes;
    cfg.link.queue_bytes = 8u << 20;
    cfg.seed = sim_seed(0x2001);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, UINT64_C(60) * 1000000000);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    cr_assert_eq(s.done, cfg.rpcs, "done %llu of %llu; %s", (unsigned long long)s.done,
                 (unsigned long long)cfg.rpcs, sim_replay_hint(&s));
    /* The bound is checked after every packet (sim_error otherwise); also make
     * sure the test came near it, or it proves nothing. */
    uint64_t bound = cfg.core.max_incoming, seen = s.hosts[0].incoming_max;
    cr_assert_leq(seen, bound, "incoming %llu above bound %llu; %s", (unsigned long long)seen,
                  (unsigned long long)bound, sim_replay_hint(&s));
    cr_assert_geq(seen, bound * 3 / 4, "incoming peaked at %llu only: no pressure; %s", (unsigned long long)seen,
                  sim_replay_hint(&s));
    struct sdp_core_stats st;
    sim_stats(&s, 0, &st);
    SIM_CHECK(&s, st.grants_sent > 1000);
    fprintf(stderr, "incast: %llu RPCs, %.3f s simulated, incoming peak %llu of %llu, switch queue peak %llu B, "
                    "%llu grants\n",
            (unsigned long long)s.done, (double)s.net.now * 1e-9, (unsigned long long)seen,
            (unsigned long long)bound, (unsigned long long)s.net.st.max_queued, (unsigned long long)st.grants_sent);
    sim_free(&s);
}

#define SHORT_MAX 200000u

static void mixed_sizes(struct sim *s, uint32_t client, uint32_t *server, uint32_t *rq, uint32_t *rs)
{
    (void)client;
    *server = 0;
    /* Short ones still need grants (above 60 KB unscheduled); long ones 10x more. */
    if (sim_rng_below(&s->app, 10) < 7)
        *rq = 100000 + (uint32_t)sim_rng_below(&s->app, SHORT_MAX - 100000);
    else
        *rq = 2000000 + (uint32_t)sim_rng_below(&s->app, 2000000);
    *rs = 100;
}

static double short_mean_rtt(int fifo, uint64_t seed, uint64_t *n_short)
{
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 17;
    cfg.star = 1;
    cfg.concurrency = 3;
    cfg.rpcs = (uint64_t)(16 * 25 * sim_scale());
    cfg.next_rpc = mixed_sizes;
    cfg.link.queue_bytes = 8u << 20;
    cfg.core.grant_fifo = fifo;
    cfg.seed = seed;
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    sim_start(&s);
    sim_run(&s, UINT64_C(60) * 1000000000);
    cr_assert_eq(s.errors, 0, "%s; %s", s.first_error, sim_replay_hint(&s));
    cr_assert_eq(s.done, cfg.rpcs, "%s: done %llu failed %llu of %llu at %.3f s; %s", fifo ? "fifo" : "srpt",
                 (unsigned long long)s.done, (unsigned long long)s.failed, (unsigned long long)cfg.rpcs,
                 (double)s.net.now * 1e-9, sim_replay_hint(&s));
    double sum = 0;
    uint64_t n = 0;
    for (uint64_t i = 0; i < s.nrpcs; i++) {
        if (s.rpcs[i].req_len <= SHORT_MAX) {
            sum += (double)(s.rpcs[i].t_end - s.rpcs[i].t_start);
            n++;
        }
    }
    sim_free(&s);
    *n_short = n;
    return n ? sum / (double)n : 0;
}

Test(load, srpt_beats_fifo, .timeout = 600)
{
    uint64_t seed = sim_seed(0x2002), ns, nf;
    double srpt = short_mean_rtt(0, seed, &ns);
    double fifo = short_mean_rtt(1, seed, &nf);
    fprintf(stderr, "srpt: short messages' mean RTT %.1f us under SRPT, %.1f us under FIFO grants (%llu samples)\n",
            srpt * 1e-3, fifo * 1e-3, (unsigned long long)ns);
    cr_assert_gt(ns, 100, "seed=0x%llx (replay: SDP_SIM_SEED=0x%llx)", (unsigned long long)seed,
                 (unsigned long long)seed);
    cr_assert_eq(ns, nf, "same seed, same workload; seed=0x%llx", (unsigned long long)seed);
    cr_assert_lt(srpt, 0.75 * fifo, "SRPT %.1f us vs FIFO %.1f us: not measurably sooner; seed=0x%llx (replay: "
                                    "SDP_SIM_SEED=0x%llx)",
                 srpt * 1e-3, fifo * 1e-3, (unsigned long long)seed, (unsigned long long)seed);
}
