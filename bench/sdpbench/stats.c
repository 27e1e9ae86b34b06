/* sdp-bench: samples, percentiles and medians. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

void samples_add(struct samples *s, double v, uint32_t size)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        double *nv = realloc(s->v, cap * sizeof(*nv));
        if (nv)
            s->v = nv;
        uint32_t *ns = nv ? realloc(s->size, cap * sizeof(*ns)) : NULL;
        if (!nv || !ns) {
            fprintf(stderr, "sdp-bench: out of memory for samples\n");
            exit(1);
        }
        s->size = ns;
        s->cap = cap;
    }
    s->v[s->n] = v;
    s->size[s->n++] = size;
    s->sorted = 0;
}

void samples_append(struct samples *dst, const struct samples *src)
{
    for (size_t i = 0; i < src->n; i++)
        samples_add(dst, src->v[i], src->size[i]);
}

void samples_clear(struct samples *s)
{
    s->n = 0;
    s->sorted = 0;
}

void samples_free(struct samples *s)
{
    free(s->v);
    free(s->size);
    memset(s, 0, sizeof(*s));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double samples_pct(struct samples *s, double p)
{
    if (s->n == 0)
        return NAN;
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof(double), cmp_double);
        s->sorted = 1;
    }
    size_t rank = (size_t)ceil(p / 100.0 * (double)s->n);
    return s->v[rank == 0 ? 0 : rank - 1];
}

double median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
