/* libsdp on the application's own io_uring: the SDP analogue of
 * io_uring_prep_sendto.
 *
 * The application prepares an SQE with sdp_uring_prep(); submitting it
 * hands the operation to the socket through the kernel (IORING_OP_MSG_RING),
 * and the operation's completion is posted back onto the application's ring
 * the same way.  So a program can wait on one ring for file I/O, sockets and
 * SDP RPCs alike, with no extra system call per operation.
 *
 * Needs a socket in threaded mode (engines >= 1), kernel 5.18 or later.
 */
#ifndef SDP_SDP_URING_H
#define SDP_SDP_URING_H

#include <liburing.h>

#include "sdp/sdp.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sdp_uring_opcode {
    SDP_UOP_SEND = 1,  /* start an RPC: peer, iov, cookie in; rpc_id out */
    SDP_UOP_REPLY = 2, /* answer req with iov */
    SDP_UOP_RECV = 3,  /* receive the next message into msg */
};

struct sdp_uring_op {
    /* Set by the application; must stay valid until the completion. */
    int opcode;
    uint64_t user_data; /* the completion's cqe->user_data */
    const struct sockaddr *peer;
    socklen_t peer_len;
    const struct iovec *iov;
    int iovcnt;
    const struct sdp_msg *req;
    uint64_t cookie;
    /* Set by libsdp before the completion is posted. */
    uint64_t rpc_id;
    struct sdp_msg msg; /* RECV: release it with sdp_release */
    /* Private. */
    struct sdp_uring_op *priv_next;
};

/* Post completions of this socket's operations to ring.  Call once, before
 * the first sdp_uring_prep.  Errors: SDP_EINVAL (inline-mode socket). */
int sdp_uring_register(sdp_socket *s, struct io_uring *ring);

/* Prepare sqe to submit op.  The completion arrives on the registered ring
 * with cqe->user_data = op->user_data and cqe->res: SEND and REPLY 0, RECV
 * the message length (op->msg filled), or a negative SDP_E* code from the
 * matching blocking call (sdp_sendv, sdp_replyv, sdp_recv).  The SQE itself
 * posts no completion of its own when it succeeds. */
void sdp_uring_prep(struct io_uring_sqe *sqe, sdp_socket *s, struct sdp_uring_op *op);

#ifdef __cplusplus
}
#endif

#endif
