/* RPC state, both roles.  A client RPC holds its request (until the
 * response authenticates) and the response being received; a server RPC
 * goes INCOMING (request arriving) -> IN_SERVICE (delivered to the app) ->
 * OUTGOING (response sent, waiting for the client's ACK).  RPCs live in a
 * fixed pool, found by (peer, our id) through a hash of chains. */
#ifndef SDP_CORE_RPC_H
#define SDP_CORE_RPC_H

#include <stdint.h>

#include "core/msgin.h"
#include "core/msgout.h"

enum sdp_rpc_state {
    SDP_RPC_FREE = 0,
    SDP_RPC_CLIENT,       /* request out, response not yet complete */
    SDP_RPC_SRV_INCOMING,
    SDP_RPC_SRV_SERVICE,
    SDP_RPC_SRV_OUTGOING,
};

struct sdp_rpc {
    uint64_t id;            /* our id: even as client, odd as server */
    uint64_t cookie;
    uint32_t peer;
    uint8_t state;
    uint8_t unauth;         /* counted in the unauthenticated-message limits */
    uint8_t restarts;       /* UNKNOWN answers that made us start the request over */
    struct sdp_rpc *hnext;
    struct sdp_rpc *aprev, *anext; /* all live RPCs (timer walk) */
    uint32_t sendq_pos;     /* 1 + index in the sender's heap, 0 when not in it */
    uint64_t last_ctl_seq;  /* highest accepted ctl_seq from the peer for this RPC ... */
    uint32_t last_ctl_gen;  /* ... under this key generation */
    uint32_t in_gen;        /* generation the incoming message opened (or is tried) under */
    uint8_t in_flags;       /* its KEY_PHASE and EARLY header flags */
    uint8_t in_counted;     /* counted live under in_gen (or the early key) */
    uint8_t in_try;         /* failed first-record opens: picks the next candidate generation */
    uint64_t heard_at;      /* when we last heard about it (or made it) */
    uint64_t probed_at;     /* our last RESEND/NEED_ACK for it (or when made) */
    uint64_t busy_at;       /* since when our incoming message waits for our grants,
                             * or our last BUSY about it */
    uint32_t probes;        /* probes for it since we last heard about it */
    uint64_t unauth_bytes;
    struct sdp_msgout out;
    struct sdp_msgin in;
};

struct sdp_rpc_table {
    struct sdp_pool pool;
    struct sdp_rpc **hash;
    uint32_t hmask;
    struct sdp_rpc *active;
};

int sdp_rpc_table_init(struct sdp_rpc_table *t, struct sdp_mem *mem, uint32_t cap);
void sdp_rpc_table_fini(struct sdp_rpc_table *t, struct sdp_mem *mem);
struct sdp_rpc *sdp_rpc_find(const struct sdp_rpc_table *t, uint32_t peer, uint64_t id);
/* A zeroed RPC, hashed and on the active list; NULL when the pool is empty. */
struct sdp_rpc *sdp_rpc_new(struct sdp_rpc_table *t, uint32_t peer, uint64_t id, uint64_t now);
/* Unhash and return to the pool (buffers must already be released). */
void sdp_rpc_put(struct sdp_rpc_table *t, struct sdp_rpc *r);
/* We heard about the RPC: its silence, and its unanswered probes, end. */
static inline void sdp_rpc_heard(struct sdp_rpc *r, uint64_t now)
{
    r->heard_at = now;
    r->probes = 0;
}

static inline uint32_t sdp_rpc_count(const struct sdp_rpc_table *t)
{
    return t->pool.used;
}

#endif
