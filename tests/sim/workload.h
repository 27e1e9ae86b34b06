/* Message-size distributions for the simulator: a CSV of
 * `length,relative_frequency` rows (Homa's W1-W5), truncated at a maximum
 * length and sampled through its CDF. */
#ifndef SDP_SIM_WORKLOAD_H
#define SDP_SIM_WORKLOAD_H

#include <stdint.h>

#include "simnet.h"

struct sim_dist {
    uint32_t n;
    uint32_t *len;
    double *cdf;
    double mean;
};

int sim_dist_load(struct sim_dist *d, const char *path, uint32_t max_len);
/* W3 from ../shared/workloads (relative to srcdir) or the copy in tests/sim. */
int sim_dist_load_w3(struct sim_dist *d, const char *srcdir, uint32_t max_len);
void sim_dist_fini(struct sim_dist *d);
uint32_t sim_dist_draw(const struct sim_dist *d, struct sim_rng *r);

#endif
