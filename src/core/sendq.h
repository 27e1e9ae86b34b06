/* The sender's queue: RPCs whose outgoing message has bytes it may send
 * now, in a binary heap keyed repairs first, then fewest bytes left (SRPT),
 * so picking the next message costs O(1) and every change O(log n) even
 * with thousands of messages in flight. */
#ifndef SDP_CORE_SENDQ_H
#define SDP_CORE_SENDQ_H

#include <stdint.h>

#include "core/pool.h"
#include "core/rpc.h"

struct sdp_sendq {
    struct sdp_rpc **h;
    uint32_t n, cap;
};

int sdp_sendq_init(struct sdp_sendq *q, struct sdp_mem *mem, uint32_t cap);
void sdp_sendq_fini(struct sdp_sendq *q, struct sdp_mem *mem);
/* Insert, move or remove r according to its message's readiness and key. */
void sdp_sendq_update(struct sdp_sendq *q, struct sdp_rpc *r);
static inline struct sdp_rpc *sdp_sendq_top(const struct sdp_sendq *q)
{
    return q->n ? q->h[0] : NULL;
}

#endif
