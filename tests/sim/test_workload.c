/* 100,000 RPCs (SDP_SIM_SCALE scales the count) with request and response
 * sizes from Homa's W3 distribution cut at 8 MiB, between 8 hosts on 25 Gbps
 * links, under loss, duplication, reordering and corruption: every RPC must
 * complete exactly once with intact bytes, and afterwards every host must be
 * back to zero state. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <time.h>

#include "simtest.h"

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void run_w3(const char *name, double loss, double dup, double reorder, double corrupt, uint64_t seed)
{
    struct sim_dist dist;
    cr_assert_eq(sim_dist_load_w3(&dist, SDP_SOURCE_DIR, 8u << 20), 0, "cannot read w3.csv");
    struct sim_cfg cfg;
    sim_cfg_default(&cfg);
    cfg.nhosts = 8;
    cfg.rpcs = (uint64_t)(100000 * sim_scale());
    cfg.concurrency = 8;
    cfg.req_dist = &dist;
    cfg.resp_dist = &dist;
    cfg.link.loss = loss;
    cfg.link.dup = dup;
    cfg.link.reorder = reorder;
    cfg.link.corrupt = corrupt;
    cfg.seed = sim_seed(seed);
    struct sim s;
    cr_assert_eq(sim_new(&s, &cfg), 0);
    double t0 = wall();
    sim_start(&s);
    sim_run(&s, UINT64_C(3600) * 1000000000);
    double dt = wall() - t0;
    uint64_t sim_ns = s.net.now;
    cr_assert_eq(s.errors, 0, "%s: %s; %s", name, s.first_error, sim_replay_hint(&s));
    int64_t first_failed = -1;
    for (uint64_t i = 0; i < s.nrpcs && first_failed < 0; i++)
        if (s.rpcs[i].state != SIM_RPC_DONE)
            first_failed = (int64_t)i;
    cr_assert_eq(s.done, cfg.rpcs,
                 "%s: done %llu of %llu, failed %llu, first not done: rpc %lld (state %d, error %d, %u B -> %u B, "
                 "started %.6f s, ended %.6f s), now %.6f s; %s",
                 name, (unsigned long long)s.done, (unsigned long long)cfg.rpcs, (unsigned long long)s.failed,
                 (long long)first_failed, first_failed >= 0 ? s.rpcs[first_failed].state : 0,
                 first_failed >= 0 ? s.rpcs[first_failed].error : 0,
                 first_failed >= 0 ? s.rpcs[first_failed].req_len : 0,
                 first_failed >= 0 ? s.rpcs[first_failed].resp_len : 0,
                 first_failed >= 0 ? (double)s.rpcs[first_failed].t_start * 1e-9 : 0.0,
                 first_failed >= 0 ? (double)s.rpcs[first_failed].t_end * 1e-9 : 0.0, (double)s.net.now * 1e-9,
                 sim_replay_hint(&s));
    /* Let ACKs and timers run out, then every host must hold nothing. */
    sim_run_until(&s, s.net.now + UINT64_C(300) * 1000000);
    uint64_t rtx = 0, rec_fail = 0, resends = 0, replay = 0, direct = 0, inplace = 0, busy = 0;
    for (uint32_t h = 0; h < cfg.nhosts; h++) {
        struct sdp_core_stats st;
        sim_stats(&s, h, &st);
        cr_assert_eq(st.rpcs_active, 0, "%s: host %u still has %llu RPCs; %s", name, h,
                     (unsigned long long)st.rpcs_active, sim_replay_hint(&s));
        cr_assert_eq(st.mem_used, 0, "%s: host %u still holds %llu bytes; %s", name, h,
                     (unsigned long long)st.mem_used, sim_replay_hint(&s));
        SIM_CHECK(&s, st.incoming == 0);
        SIM_CHECK(&s, st.unauth_msgs == 0);
        rtx += st.rtx_pkts;
        rec_fail += st.drops[SDP_DROP_REC_AUTH];
        resends += st.resends_sent;
        replay += st.drops[SDP_DROP_REPLAY] + st.drops[SDP_DROP_STALE];
        direct += st.rx_bytes_direct;
        inplace += st.rx_bytes_inplace;
        busy += st.rx_streams_busy;
    }
    cr_assert_eq(s.errors, 0, "%s: %s; %s", name, s.first_error, sim_replay_hint(&s));
    if (loss > 0)
        cr_assert_gt(rtx, 0, "%s: loss without retransmissions? %s", name, sim_replay_hint(&s));
    if (corrupt > 0)
        SIM_CHECK(&s, s.net.st.corrupted > 0);
    /* Without impairments packets of a message arrive in order but for the
     * switch's priority queues: nearly every byte is decrypted straight
     * from its packet (msgin.c). */
    if (loss == 0 && dup == 0 && reorder == 0 && corrupt == 0)
        cr_assert_gt(direct, 20 * inplace, "%s: %llu bytes direct, %llu in place", name,
                     (unsigned long long)direct, (unsigned long long)inplace);
    fprintf(stderr,
            "sim %-10s %llu RPCs in %.2f s wall (%.0f RPC/s), %.3f s simulated; net: %llu pkts, %llu lost, %llu dup, "
            "%llu reordered, %llu corrupted, %llu queue drops; core: %llu rtx pkts, %llu resends, %llu bad records, "
            "%llu replays dropped; rx bytes %.1f%% direct, %llu records found no stream\n",
            name, (unsigned long long)s.done, dt, (double)s.done / dt, (double)sim_ns * 1e-9,
            (unsigned long long)s.net.st.pkts, (unsigned long long)s.net.st.lost, (unsigned long long)s.net.st.dup,
            (unsigned long long)s.net.st.reordered, (unsigned long long)s.net.st.corrupted,
            (unsigned long long)s.net.st.queue_drops, (unsigned long long)rtx, (unsigned long long)resends,
            (unsigned long long)rec_fail, (unsigned long long)replay,
            direct + inplace ? 100.0 * (double)direct / (double)(direct + inplace) : 0.0, (unsigned long long)busy);
    sim_free(&s);
    sim_dist_fini(&dist);
}

Test(workload, w3_clean, .timeout = 600) { run_w3("clean", 0, 0, 0, 0, 0x1001); }
Test(workload, w3_loss1, .timeout = 600) { run_w3("loss1%", 0.01, 0, 0, 0, 0x1002); }
Test(workload, w3_loss10, .timeout = 600) { run_w3("loss10%", 0.10, 0, 0, 0, 0x1003); }
Test(workload, w3_dup_reorder_corrupt, .timeout = 600) { run_w3("dup+reord+corrupt", 0, 0.05, 0.05, 0.01, 0x1004); }
