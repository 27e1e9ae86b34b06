/* A peer: its address, installed keys, MTU, the client-id counter for the
 * RPCs we start, the replay window over the request ids it sends us, and
 * the byte and state accounting that bounds what it can make us hold. */
#ifndef SDP_CORE_PEER_H
#define SDP_CORE_PEER_H

#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "core/keys.h"
#include "core/replay.h"
#include "wire/wire.h"

/* Ordered by alignment so nothing is padding: a peer table holds one per
 * max_peers in every engine. */
struct sdp_peer {
    struct sdp_peer_keys keys;
    struct sdp_replay replay;
    struct sdp_peer *hnext;     /* address hash chain */
    uint64_t next_id;           /* next client id we hand out */
    uint64_t mem;               /* message buffers of this peer's RPCs */
    uint64_t unauth_bytes;
    uint64_t acks[SDP_ACK_MAX]; /* finished client ids to ACK */
    struct sdp_core_addr addr;
    uint32_t idx;
    uint32_t session;           /* changes at every replace and reuse of the slot */
    uint32_t mtu;
    uint32_t max_payload;       /* wire bytes per DATA packet */
    uint32_t nrpcs;
    uint32_t unauth_msgs;
    uint32_t cutoffs[SDP_CUTOFFS_MAX]; /* its CUTOFFS (or our defaults) */
    uint64_t heard_at;          /* last authenticated packet (or its first RPC) */
    uint64_t ack_since;         /* when the oldest of acks[] was added */
    uint32_t unanswered;        /* probes sent to it since then */
    uint32_t probes_tick;       /* probes sent to it in the current tick */
    uint8_t in_use;
    uint8_t keys_pending;       /* placeholder keys: see sdp_core_peer_cfg */
    uint8_t ncutoffs;
    uint8_t nacks;
    uint8_t ack_now;            /* flush acks[] at the next tick */
};

/* Client ids: start at 2, step 2, strictly increasing, never reaching 2^48.
 * 0 when the space is exhausted (the session must be re-keyed). */
static inline uint64_t sdp_peer_next_client_id(uint64_t *ctr)
{
    uint64_t id = *ctr;
    if (id == 0 || id > SDP_ID_MAX - 1)
        return 0;
    *ctr = id + 2;
    return id;
}

/* Something from the peer authenticated: it is alive. */
static inline void sdp_peer_heard(struct sdp_peer *p, uint64_t now)
{
    p->heard_at = now;
    p->unanswered = 0;
}

uint32_t sdp_peer_addr_hash(const struct sdp_core_addr *a);
static inline int sdp_peer_addr_eq(const struct sdp_core_addr *a, const struct sdp_core_addr *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

#endif
