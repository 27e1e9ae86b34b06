#include "engine/uring_check.h"

#ifdef SDP_SANITIZE
#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static void need(const void *p, size_t len, const char *what, unsigned op)
{
    if (!p || !len)
        return;
    const void *bad = __asan_region_is_poisoned((void *)p, len);
    if (bad) {
        fprintf(stderr, "sdp: io_uring op %u hands the kernel unaddressable memory (%s at %p, %zu bytes; first bad %p)\n",
                op, what, p, len, bad);
        abort();
    }
}

static void check_msghdr(const struct msghdr *m, unsigned op, int with_iov)
{
    need(m, sizeof(*m), "msghdr", op);
    need(m->msg_name, m->msg_namelen, "msg_name", op);
    need(m->msg_control, m->msg_controllen, "msg_control", op);
    if (!with_iov)
        return;
    need(m->msg_iov, m->msg_iovlen * sizeof(struct iovec), "msg_iov", op);
    for (size_t i = 0; i < m->msg_iovlen; i++)
        need(m->msg_iov[i].iov_base, m->msg_iov[i].iov_len, "iov_base", op);
}

void sdp_uring_check_sqes(struct io_uring *ring)
{
    struct io_uring_sq *sq = &ring->sq;
    for (unsigned i = sq->sqe_head; i != sq->sqe_tail; i++) {
        const struct io_uring_sqe *sqe = &sq->sqes[i & *sq->kring_mask];
        const void *addr = (const void *)(uintptr_t)sqe->addr;
        switch (sqe->opcode) {
        case IORING_OP_SENDMSG:
            check_msghdr(addr, sqe->opcode, 1);
            break;
        case IORING_OP_RECVMSG:
            /* Buffer-select receives take their data buffer from the ring. */
            check_msghdr(addr, sqe->opcode, !(sqe->flags & IOSQE_BUFFER_SELECT));
            break;
        case IORING_OP_SEND:
        case IORING_OP_RECV:
        case IORING_OP_READ:
        case IORING_OP_WRITE:
            if (!(sqe->flags & IOSQE_BUFFER_SELECT))
                need(addr, sqe->len, "buffer", sqe->opcode);
            break;
        default:
            break; /* poll, msg_ring, timeouts: no user memory */
        }
    }
}
#endif
