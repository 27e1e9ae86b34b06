/* A discrete-event datacenter network for the core: N hosts on one switch,
 * each with its own link: an uplink (rate, delay) and a switch egress port
 * toward it (same rate and delay, eight strict-priority queues sharing a
 * byte limit).
 * Impairments are drawn from one seeded PRNG: loss, duplication,
 * reordering (extra delay) and corruption (one byte flipped), applied per
 * packet on the uplink.  Same seed, same run. */
#ifndef SDP_SIM_SIMNET_H
#define SDP_SIM_SIMNET_H

#include <stddef.h>
#include <stdint.h>

struct sim_rng {
    uint64_t s[4];
};
void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_double(struct sim_rng *r); /* [0, 1) */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
uint64_t sim_splitmix(uint64_t x);

/* The seed for a test: SDP_SIM_SEED from the environment, else def. */
uint64_t sim_seed(uint64_t def);
/* Scale factor for counts: SDP_SIM_SCALE (default 1.0). */
double sim_scale(void);

struct sim_link_cfg {
    double gbps;          /* every link */
    uint64_t delay_ns;    /* per hop */
    uint64_t queue_bytes; /* per switch egress port */
    double loss, dup, reorder, corrupt;
    uint64_t reorder_ns;  /* a reordered packet is held up to this long */
};
void sim_link_default(struct sim_link_cfg *l);

struct sim_pkt {
    struct sim_pkt *next;
    uint32_t src, dst;
    uint32_t len;
    uint8_t prio;
    uint8_t data[];
};

enum sim_ev_kind {
    SIM_EV_SWITCH_IN = 1,
    SIM_EV_PORT_DONE,
    SIM_EV_HOST_RX,   /* a packet reached host */
    SIM_EV_HOST_TX,   /* host's uplink is free */
    SIM_EV_HOST_TIMER,
    SIM_EV_APP,       /* application callback, arg chosen by the scheduler */
};

struct sim_ev {
    uint64_t t;
    uint64_t seq;
    uint32_t kind;
    uint32_t host;
    uint64_t arg;
    struct sim_pkt *pkt;
};

struct sim_port {
    struct sim_pkt *head[8], *tail[8];
    uint64_t queued;
    int busy;
    double gbps;          /* this host's link: its uplink and the switch port toward it */
    uint64_t delay_ns;
    uint64_t queue_bytes;
};

struct sim_net_stats {
    uint64_t pkts, bytes, lost, dup, reordered, corrupted, queue_drops, down_drops;
    uint64_t max_queued;
};

/* Host-side handler: the simulator owns pkt and frees it afterwards. */
typedef void (*sim_host_fn)(void *ctx, const struct sim_ev *ev);

struct simnet {
    struct sim_link_cfg cfg;
    uint32_t nhosts;
    struct sim_rng rng;
    uint64_t now;
    uint64_t seq;
    struct sim_ev *heap;
    size_t nheap, capheap;
    struct sim_port *ports;
    uint64_t *uplink_free;
    uint8_t *down;
    sim_host_fn on_host;
    void *ctx;
    struct sim_net_stats st;
};

int simnet_init(struct simnet *n, uint32_t nhosts, const struct sim_link_cfg *cfg, uint64_t seed,
                sim_host_fn fn, void *ctx);
void simnet_fini(struct simnet *n);
void simnet_schedule(struct simnet *n, uint64_t t, uint32_t kind, uint32_t host, uint64_t arg);
/* Give one host's link its own rate, delay and switch queue limit. */
void simnet_set_link(struct simnet *n, uint32_t host, double gbps, uint64_t delay_ns, uint64_t queue_bytes);
/* Put one GSO segment of host on its uplink starting now: seg_size-byte
 * datagrams back to back.  Returns when the uplink is free again. */
uint64_t simnet_send(struct simnet *n, uint32_t host, uint32_t dst, const uint8_t *buf, size_t len,
                     uint32_t seg_size, uint8_t prio);
/* Inject a packet straight to dst's NIC at time t (forgeries, replays). */
void simnet_inject(struct simnet *n, uint64_t t, uint32_t src, uint32_t dst, const uint8_t *buf, size_t len);
/* Process one event; 0 when the queue is empty. */
int simnet_step(struct simnet *n);
static inline uint64_t simnet_next_time(const struct simnet *n)
{
    return n->nheap ? n->heap[0].t : UINT64_MAX;
}

#endif
