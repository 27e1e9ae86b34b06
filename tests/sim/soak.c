/* Soak: many simulated runs with random seeds and random impairments, each
 * checking exactly-once delivery, intact bytes and zero state afterwards.
 * Not part of CI.  Usage:
 *   sdp-sim-soak [runs] [rpcs-per-run] [w3.csv]
 * SDP_SIM_SEED=... replays one run exactly (runs then defaults to 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simhost.h"

static int load_w3(struct sim_dist *d, const char *path)
{
    const char *tries[] = {path, "../shared/workloads/w3.csv", "tests/sim/w3.csv", "../tests/sim/w3.csv",
                           "../../tests/sim/w3.csv"};
    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++)
        if (tries[i] && sim_dist_load(d, tries[i], 8u << 20) == 0)
            return 0;
    return -1;
}

static int one_run(uint64_t seed, uint64_t rpcs, const struct sim_dist *dist)
{
    struct sim_rng r;
    sim_rng_seed(&r, seed ^ UINT64_C(0x50a4));
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.seed = seed;
    cfg.nhosts = 2 + (uint32_t)sim_rng_below(&r, 15);
    cfg.concurrency = 1 + (uint32_t)sim_rng_below(&r, 16);
    cfg.rpcs = rpcs;
    cfg.req_dist = dist;
    cfg.resp_dist = dist;
    cfg.mtu = sim_rng_below(&r, 2) ? 9000 : 1500;
    cfg.link.gbps = sim_rng_below(&r, 2) ? 100 : 25;
    cfg.link.loss = sim_rng_double(&r) * 0.10;
    cfg.link.dup = sim_rng_double(&r) * 0.05;
    cfg.link.reorder = sim_rng_double(&r) * 0.05;
    cfg.link.corrupt = sim_rng_double(&r) * 0.01;
    cfg.core.grant_fifo = sim_rng_below(&r, 8) == 0;
    struct sim s;
    if (sim_new(&s, &cfg) != 0) {
        fprintf(stderr, "soak: setup failed\n");
        return -1;
    }
    time_t t0 = time(NULL);
    sim_start(&s);
    sim_run(&s, UINT64_C(36000) * 1000000000);
    sim_run_until(&s, s.net.now + UINT64_C(300) * 1000000);
    int bad = s.errors != 0 || s.done != cfg.rpcs;
    for (uint32_t h = 0; h < cfg.nhosts && !bad; h++) {
        struct sdp_core_stats st;
        sim_stats(&s, h, &st);
        if (st.rpcs_active || st.mem_used || st.unauth_msgs || st.incoming) {
            fprintf(stderr, "soak: host %u kept state (%llu RPCs, %llu bytes)\n", h,
                    (unsigned long long)st.rpcs_active, (unsigned long long)st.mem_used);
            bad = 1;
        }
    }
    printf("%s hosts=%u conc=%u mtu=%u %.0fG loss=%.3f dup=%.3f reorder=%.3f corrupt=%.4f%s: %llu done, %llu "
           "failed, %.3f s simulated, %ld s wall; %s\n",
           bad ? "FAIL" : "ok  ", cfg.nhosts, cfg.concurrency, cfg.mtu, cfg.link.gbps, cfg.link.loss, cfg.link.dup,
           cfg.link.reorder, cfg.link.corrupt, cfg.core.grant_fifo ? " fifo" : "", (unsigned long long)s.done,
           (unsigned long long)s.failed, (double)s.net.now * 1e-9, (long)(time(NULL) - t0), sim_replay_hint(&s));
    if (s.errors)
        printf("     first error: %s\n", s.first_error);
    for (uint64_t i = 0; i < s.nrpcs; i++) {
        const struct sim_rpc *x = &s.rpcs[i];
        if (x->state != SIM_RPC_DONE) {
            printf("     rpc %llu (%u -> %u, id %llu, %u B / %u B): state %d error %d, %.6f s to %.6f s\n",
                   (unsigned long long)i, x->client, x->server, (unsigned long long)x->id, x->req_len, x->resp_len,
                   x->state, x->error, (double)x->t_start * 1e-9, (double)x->t_end * 1e-9);
            break;
        }
    }
    fflush(stdout);
    sim_free(&s);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *fixed = getenv("SDP_SIM_SEED");
    long runs = argc > 1 ? atol(argv[1]) : (fixed && *fixed ? 1 : 20);
    uint64_t rpcs = argc > 2 ? strtoull(argv[2], NULL, 0) : 200000;
    struct sim_dist dist;
    if (load_w3(&dist, argc > 3 ? argv[3] : NULL) != 0) {
        fprintf(stderr, "soak: cannot find w3.csv (pass its path as the third argument)\n");
        return 2;
    }
    uint64_t seed = sim_seed((uint64_t)time(NULL) * 2654435761u ^ (uint64_t)clock());
    int fails = 0;
    for (long i = 0; i < runs; i++) {
        if (one_run(seed, rpcs, &dist) != 0)
            fails++;
        seed = sim_splitmix(seed);
    }
    sim_dist_fini(&dist);
    printf("soak: %ld runs, %d failed\n", runs, fails);
    return fails ? 1 : 0;
}
