/* sdp-bench: the load generator behind every workload, and Homa's W1-W5
 * message-size distributions. */
#ifndef SDPBENCH_WORKLOAD_H
#define SDPBENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "transport.h"

struct endpoint {
    const struct transport *t;
    const char *host;
    uint16_t port;
};

struct dist {
    char name[8];
    int n;
    uint32_t *len;
    double *cdf;
    double mean;
    uint32_t max;
};

/* Loads wN.csv from the first directory that has it: $SDPBENCH_WORKLOADS,
 * the source tree's ../shared/workloads, then bench/sdpbench/workloads.
 * Lengths below the 16-byte message header are raised to 16. */
int dist_load(struct dist *d, const char *name, char *err, size_t n);
uint32_t dist_sample(const struct dist *d, uint64_t *rng);
void dist_free(struct dist *d);
double rng_uniform(uint64_t *rng); /* in (0, 1] */

/* One run of load on one connection.  Closed loop keeps `window` RPCs
 * outstanding; open loop (rate > 0) sends at Poisson arrivals and drops
 * (and counts) arrivals that find `window` already outstanding. */
struct load {
    int window;
    double rate;          /* RPCs per second, open loop; 0: closed loop */
    double warm_s;        /* warm-up time, not measured */
    int warm_n;           /* and at least this many completions */
    double dur_s;         /* measurement time */
    long max_count;       /* stop measuring after this many RPCs (0: no limit) */
    size_t req_size;      /* fixed request size, or */
    const struct dist *d; /* sizes drawn from d */
    size_t resp_size;
    uint64_t seed;
    struct samples *rtt; /* RTT in us of RPCs sent in the measured time (may be NULL) */
    int *ready, *go;     /* when set: count in *ready once connected, then wait for *go (incast) */
};

struct load_result {
    long done;          /* RPCs completed in the measured time */
    double req_bytes;   /* their request bytes */
    double secs;        /* length of the measured time */
    long overflow;      /* open loop: arrivals dropped because the window was full */
    long offered;       /* open loop: arrivals in the measured time */
};

/* 0 on success; -1 with why filled (the cell then says FAILED: why). */
int run_load(const struct endpoint *e, const struct load *l, struct load_result *r, char *why, size_t n);

/* N clients, each on its own thread and connection, closed loop with
 * window 1, all started together; rtt gathers every client's samples. */
int run_incast(const struct endpoint *e, int clients, int cpu, const struct load *l, struct load_result *r,
               char *why, size_t n);

/* count connection setups (capped at max_s seconds); us gets each one's time. */
int run_handshakes(const struct endpoint *e, int count, double max_s, struct samples *us, char *why, size_t n);
/* Time to the first response of a new connection (transport.first_rpc, or
 * connect + one 64 B RPC + close); resumed as in transport.first_rpc.
 * 1 when the transport has nothing to measure (why says so). */
int run_first_rpcs(const struct endpoint *e, int resumed, int count, double max_s, struct samples *us, char *why,
                   size_t n);

#endif
