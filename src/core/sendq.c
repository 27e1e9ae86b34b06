#include "core/sendq.h"

static uint64_t key(const struct sdp_rpc *r)
{
    if (r->out.nrtx)
        return 0; /* a receiver is waiting on these */
    return (uint64_t)(r->out.wire_len - r->out.next_off) + 1;
}

static int less(const struct sdp_rpc *a, const struct sdp_rpc *b)
{
    uint64_t ka = key(a), kb = key(b);
    return ka < kb || (ka == kb && a->id < b->id);
}

static void put(struct sdp_sendq *q, uint32_t i, struct sdp_rpc *r)
{
    q->h[i] = r;
    r->sendq_pos = i + 1;
}

static void up(struct sdp_sendq *q, uint32_t i)
{
    struct sdp_rpc *r = q->h[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!less(r, q->h[p]))
            break;
        put(q, i, q->h[p]);
        i = p;
    }
    put(q, i, r);
}

static void down(struct sdp_sendq *q, uint32_t i)
{
    struct sdp_rpc *r = q->h[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        const struct sdp_rpc *best = r;
        if (l < q->n && less(q->h[l], best)) {
            m = l;
            best = q->h[l];
        }
        if (l + 1 < q->n && less(q->h[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        put(q, i, q->h[m]);
        i = m;
    }
    put(q, i, r);
}

int sdp_sendq_init(struct sdp_sendq *q, struct sdp_mem *mem, uint32_t cap)
{
    q->n = 0;
    q->cap = cap;
    q->h = sdp_mem_table(mem, cap, sizeof(*q->h));
    return q->h ? 0 : -1;
}

void sdp_sendq_fini(struct sdp_sendq *q, struct sdp_mem *mem)
{
    if (q->h)
        sdp_mem_table_free(mem, q->h, q->cap, sizeof(*q->h));
    q->h = NULL;
    q->n = q->cap = 0;
}

void sdp_sendq_update(struct sdp_sendq *q, struct sdp_rpc *r)
{
    int ready = sdp_msgout_ready(&r->out);
    if (!r->sendq_pos) {
        if (!ready || q->n == q->cap)
            return;
        put(q, q->n++, r);
        up(q, q->n - 1);
        return;
    }
    uint32_t i = r->sendq_pos - 1;
    if (!ready) {
        r->sendq_pos = 0;
        struct sdp_rpc *last = q->h[--q->n];
        if (i == q->n)
            return;
        put(q, i, last);
        up(q, i);
        down(q, last->sendq_pos - 1);
        return;
    }
    up(q, i);
    down(q, r->sendq_pos - 1);
}
