/* Simulated hosts: one sdp_core each on the simnet, with an application
 * that runs a closed-loop RPC workload and checks every delivery: request
 * and response bytes are derived from the RPC's index and the seed, each
 * request must reach its server exactly once and each response its client
 * exactly once.  Any violation is recorded with the seed to replay it. */
#ifndef SDP_SIM_SIMHOST_H
#define SDP_SIM_SIMHOST_H

#include <stdint.h>

#include "core/core.h"
#include "simnet.h"
#include "workload.h"

struct sim;

struct sim_cfg {
    uint32_t nhosts;
    struct sim_link_cfg link;
    struct sdp_core_config core;
    uint32_t mtu;
    uint64_t seed;
    int star;                 /* 1: hosts 1..n-1 know only host 0 (and it them) */
    uint64_t rpcs;            /* how many RPCs to run */
    uint32_t concurrency;     /* outstanding RPCs per client host */
    const struct sim_dist *req_dist, *resp_dist; /* NULL: fixed sizes below */
    uint32_t req_len, resp_len;
    /* Optional: choose server and sizes for the next RPC of client. */
    void (*next_rpc)(struct sim *s, uint32_t client, uint32_t *server, uint32_t *req_len, uint32_t *resp_len);
    void (*on_rx)(struct sim *s, uint32_t host, uint32_t src, const uint8_t *pkt, size_t len);
    void (*on_app)(struct sim *s, uint32_t host, uint64_t arg);
    void *user;
};
void sim_cfg_default(struct sim_cfg *c);

enum sim_rpc_state { SIM_RPC_OUT = 1, SIM_RPC_DONE, SIM_RPC_FAILED };

struct sim_rpc {
    uint32_t client, server;
    uint32_t req_len, resp_len;
    uint64_t id;
    uint64_t t_start, t_end;
    uint8_t state;
    uint8_t req_seen;
    int error;
};

struct sim_host {
    uint32_t id;
    struct sdp_core *core;
    uint32_t *peer_of;   /* host -> peer index (UINT32_MAX: none) */
    uint32_t *host_of;   /* peer index -> host */
    uint64_t timer_at;
    int tx_busy;
    int is_client;
    uint32_t outstanding;
    uint64_t incoming_max;
    uint64_t unauth_max;
    uint64_t mem_max;
};

struct sim {
    struct sim_cfg cfg;
    struct simnet net;
    struct sim_host *hosts;
    struct sim_rng app;
    struct sim_rpc *rpcs;
    uint64_t nrpcs, cap;
    uint32_t **pair_ids;     /* [client * n + server][id / 2 - 1] -> rpc index */
    uint32_t *pair_len, *pair_cap;
    uint64_t issued, done, failed;
    uint64_t errors;
    char first_error[512];
    uint8_t *buf;
    uint8_t *scratch;
    size_t scratch_cap;
};

int sim_new(struct sim *s, const struct sim_cfg *cfg);
void sim_free(struct sim *s);
/* Start each client's closed loop. */
void sim_start(struct sim *s);
/* Run until every RPC resolved or the simulated time passes t_end. */
void sim_run(struct sim *s, uint64_t t_end);
/* Run until simulated time t (timers keep firing). */
void sim_run_until(struct sim *s, uint64_t t);
void sim_host_down(struct sim *s, uint32_t host);
/* Both hosts start a new session with each other now (as after a second
 * handshake): fresh secrets derived from epoch, sdp_core_peer_replace on
 * each side, and the RPC-id bookkeeping of the pair starts over. */
int sim_replace_session(struct sim *s, uint32_t a, uint32_t b, uint64_t epoch);
/* Start one RPC now from client to server. */
int sim_issue(struct sim *s, uint32_t client, uint32_t server, uint32_t req_len, uint32_t resp_len);
void sim_error(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fill / check the bytes of rpc index i (kind 'q' request, 'r' response). */
void sim_fill(const struct sim *s, uint64_t i, int kind, uint8_t *p, size_t len);
int sim_check(const struct sim *s, uint64_t i, int kind, const uint8_t *p, size_t len);
/* Sum of a core counter over all hosts, and per-host snapshots. */
void sim_stats(const struct sim *s, uint32_t host, struct sdp_core_stats *st);
/* A line to print on failure: the seed and how to replay it. */
const char *sim_replay_hint(const struct sim *s);

#endif
