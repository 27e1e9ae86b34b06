#include "core/pool.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *ctx, size_t len)
{
    (void)ctx;
    return malloc(len);
}

static void default_free(void *ctx, void *p, size_t len)
{
    (void)ctx;
    (void)len;
    free(p);
}

void sdp_mem_init(struct sdp_mem *m, const struct sdp_core_allocator *a, uint64_t limit)
{
    memset(m, 0, sizeof(*m));
    if (a && a->alloc && a->free) {
        m->a = *a;
    } else {
        m->a.alloc = default_alloc;
        m->a.free = default_free;
    }
    m->limit = limit;
}

void *sdp_mem_alloc(struct sdp_mem *m, size_t len)
{
    if (len == 0 || len > m->limit - m->used)
        return NULL;
    void *p = m->a.alloc(m->a.ctx, len);
    if (!p)
        return NULL;
    m->used += len;
    if (m->used > m->peak)
        m->peak = m->used;
    return p;
}

void sdp_mem_free(struct sdp_mem *m, void *p, size_t len)
{
    if (!p)
        return;
    m->used -= len;
    m->a.free(m->a.ctx, p, len);
}

void *sdp_mem_table(struct sdp_mem *m, size_t n, size_t size)
{
    if (n == 0 || size > SIZE_MAX / n)
        return NULL;
    /* calloc gets large tables as fresh zero pages: memory the tables are
     * sized for but never use (most RPC slots, most peers) stays untouched,
     * and opening a socket no longer writes tens of megabytes. */
    void *p;
    if (m->a.alloc == default_alloc)
        p = calloc(n, size);
    else if (m->a.zalloc && m->a.zfree)
        p = m->a.zalloc(m->a.ctx, n * size);
    else if ((p = m->a.alloc(m->a.ctx, n * size)) != NULL)
        memset(p, 0, n * size);
    if (!p)
        return NULL;
    m->table_bytes += n * size;
    return p;
}

void sdp_mem_table_free(struct sdp_mem *m, void *p, size_t n, size_t size)
{
    if (!p)
        return;
    m->table_bytes -= n * size;
    if (m->a.alloc != default_alloc && m->a.zalloc && m->a.zfree)
        m->a.zfree(m->a.ctx, p, n * size);
    else
        m->a.free(m->a.ctx, p, n * size);
}

int sdp_pool_init(struct sdp_pool *p, struct sdp_mem *m, size_t size, uint32_t cap)
{
    memset(p, 0, sizeof(*p));
    p->size = size;
    p->cap = cap;
    p->base = sdp_mem_table(m, cap, size);
    p->free = sdp_mem_table(m, cap, sizeof(uint32_t));
    if (!p->base || !p->free) {
        sdp_pool_fini(p, m);
        return -1;
    }
    /* Lowest index handed out first: keeps the working set compact. */
    for (uint32_t i = 0; i < cap; i++)
        p->free[i] = cap - 1 - i;
    p->nfree = cap;
    return 0;
}

void sdp_pool_fini(struct sdp_pool *p, struct sdp_mem *m)
{
    if (p->cap == 0)
        return;
    sdp_mem_table_free(m, p->base, p->cap, p->size);
    sdp_mem_table_free(m, p->free, p->cap, sizeof(uint32_t));
    memset(p, 0, sizeof(*p));
}

void *sdp_pool_get(struct sdp_pool *p)
{
    if (p->nfree == 0)
        return NULL;
    void *obj = sdp_pool_at(p, p->free[--p->nfree]);
    memset(obj, 0, p->size);
    p->used++;
    return obj;
}

void sdp_pool_put(struct sdp_pool *p, void *obj)
{
    p->free[p->nfree++] = sdp_pool_index(p, obj);
    p->used--;
}
