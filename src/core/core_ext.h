/* Calls the engines need on top of core.h: RPCs whose id the caller
 * allocates (one counter per peer shared by all engines keeps ids, and so
 * nonces, unique across engines), and gathered (iovec) messages. */
#ifndef SDP_CORE_CORE_EXT_H
#define SDP_CORE_CORE_EXT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/core.h"

/* As sdp_core_send_request, with the client id chosen by the caller: even,
 * non-zero, below 2^48, never used before with this peer's keys (the
 * caller guarantees it).  Errors as sdp_core_send_request, and SDP_EINVAL
 * for an odd id or one this core already holds. */
int sdp_core_send_request_id(struct sdp_core *core, uint32_t peer, uint64_t id, const struct iovec *iov,
                             int iovcnt, uint64_t cookie, uint64_t now);

/* As sdp_core_send_request_id (id 0: the peer's counter picks it, as
 * sdp_core_send_request), with flags: SDP_CORE_SEND_EARLY seals the
 * request under the 0-RTT transmit key (sdp_core_peer_set_early; SDP_ENOKEY
 * without one).  *rpc_id (may be NULL) receives the id. */
#define SDP_CORE_SEND_EARLY 1u
int sdp_core_send_request_flags(struct sdp_core *core, uint32_t peer, uint64_t id, const struct iovec *iov,
                                int iovcnt, uint64_t cookie, uint64_t now, unsigned flags, uint64_t *rpc_id);

/* As sdp_core_send_response, gathering the response from iov. */
int sdp_core_send_response_iov(struct sdp_core *core, uint32_t peer, uint64_t rpc_id, const struct iovec *iov,
                               int iovcnt, uint64_t now);

/* Queue the ACKs still waiting for the next tick (a socket about to close
 * sends them, so servers free those RPCs at once instead of by timeout). */
void sdp_core_flush_acks(struct sdp_core *core);

/* 1 when a peer with agreed keys has address addr (its packets can be
 * opened), else 0. */
int sdp_core_peer_ready(const struct sdp_core *core, const struct sdp_core_addr *addr);
/* The session number of the peer with agreed keys at addr, 0 when none. */
uint32_t sdp_core_addr_session(const struct sdp_core *core, const struct sdp_core_addr *addr);

/* The key object that opens records from the peer at addr sealed under the
 * key phase bit `phase` (SDP_F_KEY_PHASE of the header), or NULL: lets an
 * engine open a burst's records in one batch before the core reads them. */
const struct sdp_aead_key *sdp_core_peer_rx_key(const struct sdp_core *core, const struct sdp_core_addr *addr,
                                                unsigned phase);

#endif
