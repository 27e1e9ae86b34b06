/* The endpoint's internal state, shared by core.c (API, events), input.c
 * (packet dispatch), output.c (control queue, segments) and timer.c. */
#ifndef SDP_CORE_CORE_INT_H
#define SDP_CORE_CORE_INT_H

#include <stdint.h>
#include <sys/uio.h>

#include "core/core.h"
#include "core/grant.h"
#include "core/peer.h"
#include "core/pool.h"
#include "core/rpc.h"
#include "core/sendq.h"

#define SDP_CTL_SLOT 96 /* largest control packet: ACK of 8 ids, 88 bytes */
/* A peer whose keys sealed and opened nothing for this many ticks (1 s at
 * the default tick) frees their cipher contexts (docs/CORE.md "Key memory"). */
#define SDP_CORE_KEY_IDLE_TICKS 1000u

/* A response at least this long is ACKed at the next tick, not after
 * ack_delay_ticks: its server holds all of it until then. */
#define SDP_ACK_NOW_BYTES 65536u
#define SDP_TRIAL_MAX 9000 /* records up to this size are tried whole from one packet */

struct sdp_core {
    struct sdp_core_config cfg;
    struct sdp_mem mem;
    struct sdp_peer *peers;
    uint32_t npeers;                /* slots ever used; those not in_use are free */
    uint32_t peers_live;
    uint32_t sessions;              /* last session number handed out */
    struct sdp_peer **peer_hash;
    uint32_t peer_hmask;
    uint32_t replay_words;          /* a peer's replay window; rings grow to it on demand */
    struct sdp_rpc_table rpcs;
    struct sdp_sendq sendq;         /* RPCs whose outgoing message has bytes ready */
    struct sdp_grant_sched grant;
    uint8_t *ctlq;                  /* ring of sealed control packets */
    uint32_t *ctlq_peer;
    uint16_t *ctlq_len;
    uint32_t ctlq_head, ctlq_n;
    struct sdp_core_event *ev;      /* ring of events, grown on demand */
    uint32_t ev_cap, ev_head, ev_n;
    uint64_t ctl_seq;               /* low 56 bits of our next ctl_seq */
    uint64_t next_tick;             /* UINT64_MAX when nothing needs a timer */
    int rx_backlog;                 /* the driver's input queue was not empty (sdp_core_set_backlog) */
    uint64_t now;                   /* the latest time any entry point was given */
    int grants_due;                 /* input changed what grants owe; run before output */
    uint32_t unauth_msgs;
    uint64_t unauth_bytes;
    struct sdp_rec_streams rx_streams; /* streaming opens of incoming records (msgin.c) */
    uint8_t *trial;                 /* a record's plaintext when trying generations (SDP_TRIAL_MAX) */
    struct sdp_core_stats st;
};

static inline struct sdp_peer *sdp_core_peer_at(const struct sdp_core *c, uint32_t peer)
{
    return peer < c->npeers && c->peers[peer].in_use ? &c->peers[peer] : NULL;
}

/* core.c: the sends, gathering from an iovec of len bytes in all. */
/* id 0: take the next id from the peer's counter; else the caller's id. */
int sdp_core_send_request_v(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov, int iovcnt,
                            size_t len,
                            uint64_t cookie, uint64_t now, uint64_t *rpc_id);
int sdp_core_send_request_fv(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov, int iovcnt,
                             size_t len, uint64_t cookie, uint64_t now, unsigned flags, uint64_t *rpc_id);
int sdp_core_send_response_v(struct sdp_core *c, uint32_t peer, uint64_t rpc_id, const struct iovec *iov,
                             int iovcnt, size_t len, uint64_t now);
struct sdp_peer *sdp_core_peer_find(const struct sdp_core *c, const struct sdp_core_addr *a);
/* session.c: install a peer's session into slot p (not hashed yet). */
int sdp_core_peer_setup(struct sdp_core *c, struct sdp_peer *p, uint32_t idx, const struct sdp_core_peer_cfg *pc);
void sdp_core_peer_hash(struct sdp_core *c, struct sdp_peer *p);
/* The peer's replay ring moved into one of `words` words (SDP_ENOMEM: it
 * stays as it was); freed when its session ends. */
int sdp_core_replay_grow(struct sdp_core *c, struct sdp_peer *p, uint32_t words);
void sdp_core_replay_free(struct sdp_core *c, struct sdp_peer *p);
int sdp_core_drop(struct sdp_core *c, int reason, int code);
/* Bring the timer forward to at (it runs only when something can be due). */
void sdp_core_arm(struct sdp_core *c, uint64_t at);
int sdp_core_push_event(struct sdp_core *c, const struct sdp_core_event *ev);
void sdp_core_rpc_free(struct sdp_core *c, struct sdp_rpc *r);
void sdp_core_rpc_fail(struct sdp_core *c, struct sdp_rpc *r, int err);
void sdp_core_send_update(struct sdp_core *c, struct sdp_rpc *r);
void sdp_core_unauth_clear(struct sdp_core *c, struct sdp_rpc *r);
void sdp_core_run_grants(struct sdp_core *c);
/* The incoming message of r is finished (delivered or dropped): it no
 * longer holds its key generation. */
void sdp_core_rx_end(struct sdp_core *c, struct sdp_rpc *r);
/* Automatic or asked-for key update, when allowed (PROTOCOL.md 7): after
 * sealing, and whenever what allows it changes. */
void sdp_core_tx_sealed(struct sdp_core *c, struct sdp_peer *p);
/* r's outgoing message was sealed / is going away / the peer authenticated it. */
void sdp_core_tx_begin(struct sdp_core *c, struct sdp_rpc *r);
void sdp_core_tx_end(struct sdp_core *c, struct sdp_rpc *r);
void sdp_core_tx_confirm(struct sdp_core *c, struct sdp_rpc *r);
static inline uint64_t sdp_rpc_bytes(const struct sdp_rpc *r)
{
    return (uint64_t)r->out.alloc + r->in.alloc;
}

/* output.c: queue a sealed control packet (counted when the queue is full). */
void sdp_core_ctl_grant(struct sdp_core *c, struct sdp_peer *p, uint64_t id, uint32_t offset, uint8_t prio);
void sdp_core_ctl_resend(struct sdp_core *c, struct sdp_peer *p, uint64_t id, uint32_t off, uint32_t len,
                         uint8_t prio);
void sdp_core_ctl_simple(struct sdp_core *c, struct sdp_peer *p, uint8_t type, uint64_t id);
void sdp_core_ctl_ack_flush(struct sdp_core *c, struct sdp_peer *p);
void sdp_core_ctl_ack_add(struct sdp_core *c, struct sdp_peer *p, uint64_t client_id, uint32_t len);

/* Entry points that are given the time keep the latest (the clock is the
 * caller's: it only has to be monotonic). */
static inline void sdp_core_time(struct sdp_core *c, uint64_t now)
{
    if (now > c->now)
        c->now = now;
}

#endif
