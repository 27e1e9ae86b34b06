/* Memory: every allocation of the core goes through the configured
 * allocator and is counted, so tests can assert that state returns to zero.
 * Message buffers are charged against a byte budget (sdp_mem_*); the fixed
 * tables made at sdp_core_new are counted apart (table bytes).  A fixed
 * pool hands out equal-size objects from one array through a free list. */
#ifndef SDP_CORE_POOL_H
#define SDP_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct sdp_mem {
    struct sdp_core_allocator a;
    uint64_t used;  /* budgeted bytes outstanding */
    uint64_t limit;
    uint64_t peak;
    uint64_t table_bytes; /* fixed tables, not budgeted */
};

void sdp_mem_init(struct sdp_mem *m, const struct sdp_core_allocator *a, uint64_t limit);
/* Budgeted: NULL when the budget or the allocator refuses. */
void *sdp_mem_alloc(struct sdp_mem *m, size_t len);
void sdp_mem_free(struct sdp_mem *m, void *p, size_t len);
/* Tables: zeroed, counted in table_bytes. */
void *sdp_mem_table(struct sdp_mem *m, size_t n, size_t size);
void sdp_mem_table_free(struct sdp_mem *m, void *p, size_t n, size_t size);

struct sdp_pool {
    uint8_t *base;
    size_t size;     /* bytes per object */
    uint32_t cap;
    uint32_t used;
    uint32_t *free;  /* stack of free indices */
    uint32_t nfree;
};

int sdp_pool_init(struct sdp_pool *p, struct sdp_mem *m, size_t size, uint32_t cap);
void sdp_pool_fini(struct sdp_pool *p, struct sdp_mem *m);
void *sdp_pool_get(struct sdp_pool *p); /* zeroed object, NULL when empty */
void sdp_pool_put(struct sdp_pool *p, void *obj);
static inline uint32_t sdp_pool_index(const struct sdp_pool *p, const void *obj)
{
    return (uint32_t)(((const uint8_t *)obj - p->base) / p->size);
}
static inline void *sdp_pool_at(const struct sdp_pool *p, uint32_t i)
{
    return p->base + (size_t)i * p->size;
}

#endif
