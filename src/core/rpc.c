#include "core/rpc.h"

#include <stddef.h>

static uint32_t slot(const struct sdp_rpc_table *t, uint32_t peer, uint64_t id)
{
    uint64_t k = (id ^ ((uint64_t)peer << 48)) * UINT64_C(0x9e3779b97f4a7c15);
    return (uint32_t)(k >> 32) & t->hmask;
}

int sdp_rpc_table_init(struct sdp_rpc_table *t, struct sdp_mem *mem, uint32_t cap)
{
    *t = (struct sdp_rpc_table){0};
    uint32_t n = 16;
    while (n < 2 * cap)
        n *= 2;
    if (sdp_pool_init(&t->pool, mem, sizeof(struct sdp_rpc), cap) != 0)
        return -1;
    t->hash = sdp_mem_table(mem, n, sizeof(*t->hash));
    if (!t->hash) {
        sdp_pool_fini(&t->pool, mem);
        return -1;
    }
    t->hmask = n - 1;
    return 0;
}

void sdp_rpc_table_fini(struct sdp_rpc_table *t, struct sdp_mem *mem)
{
    if (t->hash)
        sdp_mem_table_free(mem, t->hash, (size_t)t->hmask + 1, sizeof(*t->hash));
    sdp_pool_fini(&t->pool, mem);
    *t = (struct sdp_rpc_table){0};
}

struct sdp_rpc *sdp_rpc_find(const struct sdp_rpc_table *t, uint32_t peer, uint64_t id)
{
    for (struct sdp_rpc *r = t->hash[slot(t, peer, id)]; r; r = r->hnext)
        if (r->id == id && r->peer == peer)
            return r;
    return NULL;
}

struct sdp_rpc *sdp_rpc_new(struct sdp_rpc_table *t, uint32_t peer, uint64_t id, uint64_t now)
{
    struct sdp_rpc *r = sdp_pool_get(&t->pool);
    if (!r)
        return NULL;
    r->id = id;
    r->peer = peer;
    r->heard_at = r->probed_at = r->busy_at = now;
    uint32_t s = slot(t, peer, id);
    r->hnext = t->hash[s];
    t->hash[s] = r;
    r->anext = t->active;
    if (t->active)
        t->active->aprev = r;
    t->active = r;
    return r;
}

void sdp_rpc_put(struct sdp_rpc_table *t, struct sdp_rpc *r)
{
    struct sdp_rpc **pp = &t->hash[slot(t, r->peer, r->id)];
    while (*pp && *pp != r)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = r->hnext;
    if (r->aprev)
        r->aprev->anext = r->anext;
    else
        t->active = r->anext;
    if (r->anext)
        r->anext->aprev = r->aprev;
    r->state = SDP_RPC_FREE;
    sdp_pool_put(&t->pool, r);
}
