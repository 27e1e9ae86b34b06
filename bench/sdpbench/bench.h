/* sdp-bench: options and results shared by the orchestration (main.c) and
 * the report (report.c: tables, JSON, targets, plots). */
#ifndef SDPBENCH_BENCH_H
#define SDPBENCH_BENCH_H

#include <stdio.h>

#include "stats.h"
#include "transport.h"
#include "workload.h"

#define MAXT 6
#define MAXSIZES 16
#define MAXREPS 101
#define NBUCKETS 6
#define NBULK 2

enum cell_state { CELL_NONE, CELL_OK, CELL_FAIL, CELL_NA };

struct cell {
    enum cell_state state;
    char note[256];
    double v[8];
    int reps;
};

struct opts {
    double scale; /* every measured time is multiplied by this */
    int reps, quick, json, pin, window, rate_window, incast_clients;
    size_t sizes[MAXSIZES];
    int nsizes;
    size_t bulk_sizes[NBULK];
    size_t rate_size, incast_size, pois_resp;
    double load_gbps, max_rate;
    char workload[8];
    const char *plot_dir, *only, *tests;
    const char *server_host, *client_host;
    unsigned port_base;
    unsigned long long seed;
    double soak_s;        /* --soak: run the soak instead */
    unsigned idle_peers;  /* --idle-peers: measure instead */
};

/* Poisson per-bucket values in cell.v */
enum { PB_N, PB_P50, PB_P99, PB_P999, PB_S50, PB_S99, PB_S999 };
/* incast values */
enum { IC_GBPS, IC_P50, IC_P99, IC_P999 };

struct results {
    int nt;
    const struct transport *t[MAXT];
    char status[MAXT][256]; /* "" when usable, else why not */
    struct cell rtt[MAXT][MAXSIZES]; /* v: P50 (median over reps), P99, P99.9 (pooled), samples */
    struct cell bulk[MAXT][NBULK];   /* v: Gbps median, min, max */
    struct cell rate[MAXT];          /* v: kRPC/s median, min, max */
    struct cell pois[MAXT][NBUCKETS];
    struct cell pois_load[MAXT];     /* v: offered/s, completed/s, overflow, achieved Gbps */
    struct cell incast[MAXT];
    struct cell hs[MAXT];            /* v: P50 us, P99 us, count */
    struct cell first[MAXT];         /* v: full P50 us, resumed P50 us (NaN: n/a), count */
    double evp_gbps;                 /* single-core AES-128-GCM at 16 KB, this run */
    double pois_rate, pois_mean; /* offered RPC/s; mean request bytes */
    double elapsed_s;
    char machine[256];
    int ran_rtt, ran_bulk, ran_rate, ran_pois, ran_incast, ran_hs;
    int reps_used[6];
};

extern const char *const bucket_names[NBUCKETS];
int bucket_of(size_t size);

/* soak.c: memory checks, outside the comparison (exit status 0 or 1). */
int run_soak(double seconds, unsigned long long seed);
int run_idle_peers(unsigned n);

void report_text(FILE *f, const struct opts *o, struct results *r);
void report_json(FILE *f, const struct opts *o, struct results *r);
void report_plots(const struct opts *o, struct results *r);

#endif
