/* Operations submitted through the application's io_uring (sdp_uring.h).
 *
 * An op reaches engine 0's ring as a MSG_RING completion; the engine hands
 * it over while reaping (uop_intake) and lets us run it once its lock is
 * released (uop_run), on its driver thread.  Completions go back with a
 * MSG_RING from the ring of whichever engine thread finishes the op. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "sdp/sdp_uring.h"

int sdp_uring_register(sdp_socket *s, struct io_uring *ring)
{
    if (!s || !ring || !s->threaded)
        return SDP_EINVAL;
    s->app_ring_fd = ring->ring_fd;
    return 0;
}

void sdp_uring_prep(struct io_uring_sqe *sqe, sdp_socket *s, struct sdp_uring_op *op)
{
    io_uring_prep_msg_ring(sqe, sdp_engine_ring_fd(s->eng[0]), SDP_ENGINE_MSG_MAGIC, (uint64_t)(uintptr_t)op, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void complete(sdp_socket *s, struct sdp_engine *e, struct sdp_uring_op *op, int res)
{
    sdp_engine_post(e, s->app_ring_fd, res, op->user_data);
}

/* Engine callback while reaping (engine lock held): just queue it. */
void sdp_api_uop_intake(void *ctx, struct sdp_engine *e, void *opp)
{
    sdp_socket *s = ctx;
    struct sdp_uring_op *op = opp;
    (void)e;
    pthread_mutex_lock(&s->uop_lock);
    op->priv_next = NULL;
    if (s->uop_tail)
        s->uop_tail->priv_next = op;
    else
        s->uop_head = op;
    s->uop_tail = op;
    pthread_mutex_unlock(&s->uop_lock);
}

/* A message arrived and an io_uring RECV is waiting: hand it over.
 * Called by deliver() on engine e's driver thread.  1 if taken. */
int sdp_api_uop_deliver(sdp_socket *s, struct sdp_engine *e, const struct sdp_msg *m)
{
    pthread_mutex_lock(&s->uop_lock);
    struct sdp_uring_op *op = s->urecv_head;
    if (op) {
        s->urecv_head = op->priv_next;
        if (!s->urecv_head)
            s->urecv_tail = NULL;
    }
    pthread_mutex_unlock(&s->uop_lock);
    if (!op)
        return 0;
    op->msg = *m;
    complete(s, e, op, (int)m->len);
    return 1;
}

/* Engine callback after a round, lock released, on its driver thread;
 * 1 when it ran operations (their packets go out in the same round). */
int sdp_api_uop_run(void *ctx, struct sdp_engine *e)
{
    sdp_socket *s = ctx;
    if (s->app_ring_fd < 0)
        return 0; /* no ring registered: nothing can be queued */
    pthread_mutex_lock(&s->uop_lock);
    struct sdp_uring_op *op = s->uop_head;
    s->uop_head = s->uop_tail = NULL;
    pthread_mutex_unlock(&s->uop_lock);
    int ran = op != NULL;
    while (op) {
        struct sdp_uring_op *next = op->priv_next;
        int rc;
        switch (op->opcode) {
        case SDP_UOP_SEND:
            rc = sdp_sendv(s, op->peer, op->peer_len, op->iov, op->iovcnt, op->cookie, &op->rpc_id);
            complete(s, e, op, rc);
            break;
        case SDP_UOP_REPLY:
            rc = op->req ? sdp_replyv(s, op->req, op->iov, op->iovcnt) : SDP_EINVAL;
            complete(s, e, op, rc);
            break;
        case SDP_UOP_RECV:
            if (sdp_api_queue_pop(s, &op->msg)) {
                complete(s, e, op, (int)op->msg.len);
            } else {
                /* Wait for the next message. A message may slip into the
                 * queue between the pop and the append; the re-check after
                 * appending catches it. */
                pthread_mutex_lock(&s->uop_lock);
                op->priv_next = NULL;
                if (s->urecv_tail)
                    s->urecv_tail->priv_next = op;
                else
                    s->urecv_head = op;
                s->urecv_tail = op;
                pthread_mutex_unlock(&s->uop_lock);
                struct sdp_msg m;
                if (sdp_api_queue_pop(s, &m) && !sdp_api_uop_deliver(s, e, &m) &&
                    sdp_api_queue_push_front(s, &m) != 0)
                    sdp_release(s, &m); /* no memory to keep it: the client's RPC times out */
            }
            break;
        default:
            complete(s, e, op, SDP_EINVAL);
        }
        op = next;
    }
    return ran;
}
