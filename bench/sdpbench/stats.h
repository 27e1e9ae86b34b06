/* sdp-bench: samples, percentiles and medians. */
#ifndef SDPBENCH_STATS_H
#define SDPBENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Per-RPC samples: a value (microseconds) and the request size it belongs to. */
struct samples {
    double *v;
    uint32_t *size;
    size_t n, cap;
    int sorted;
};

void samples_add(struct samples *s, double v, uint32_t size);
void samples_append(struct samples *dst, const struct samples *src);
void samples_clear(struct samples *s);
void samples_free(struct samples *s);
/* Nearest-rank percentile (p in 0..100) of the values; NAN when empty.
 * Sorts the values (the sizes lose their pairing: take them first). */
double samples_pct(struct samples *s, double p);
/* Median of n values (reordered); NAN when n is 0. */
double median(double *v, int n);

#endif
