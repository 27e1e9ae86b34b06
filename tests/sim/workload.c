#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sim_dist_load(struct sim_dist *d, const char *path, uint32_t max_len)
{
    memset(d, 0, sizeof(*d));
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t cap = 64;
    d->len = malloc(cap * sizeof(*d->len));
    d->cdf = malloc(cap * sizeof(*d->cdf));
    char line[256];
    double total = 0, sum = 0;
    while (d->len && d->cdf && fgets(line, sizeof(line), f)) {
        unsigned long len;
        double w;
        if (line[0] == '#' || sscanf(line, "%lu,%lf", &len, &w) != 2 || len == 0 || len > max_len || w <= 0)
            continue;
        if (d->n == cap) {
            cap *= 2;
            uint32_t *l2 = realloc(d->len, cap * sizeof(*l2));
            double *c2 = l2 ? realloc(d->cdf, cap * sizeof(*c2)) : NULL;
            if (l2)
                d->len = l2;
            if (!c2)
                break;
            d->cdf = c2;
        }
        total += w;
        sum += w * (double)len;
        d->len[d->n] = (uint32_t)len;
        d->cdf[d->n] = total;
        d->n++;
    }
    fclose(f);
    if (d->n == 0) {
        sim_dist_fini(d);
        return -1;
    }
    for (uint32_t i = 0; i < d->n; i++)
        d->cdf[i] /= total;
    d->mean = sum / total;
    return 0;
}

int sim_dist_load_w3(struct sim_dist *d, const char *srcdir, uint32_t max_len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/../shared/workloads/w3.csv", srcdir);
    if (sim_dist_load(d, path, max_len) == 0)
        return 0;
    snprintf(path, sizeof(path), "%s/tests/sim/w3.csv", srcdir);
    return sim_dist_load(d, path, max_len);
}

void sim_dist_fini(struct sim_dist *d)
{
    free(d->len);
    free(d->cdf);
    memset(d, 0, sizeof(*d));
}

uint32_t sim_dist_draw(const struct sim_dist *d, struct sim_rng *r)
{
    double u = sim_rng_double(r);
    uint32_t lo = 0, hi = d->n - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (d->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Uniform between neighbouring points: every length from 1 B up occurs. */
    uint32_t below = lo ? d->len[lo - 1] : 0;
    return below + 1 + (uint32_t)sim_rng_below(r, d->len[lo] - below);
}
