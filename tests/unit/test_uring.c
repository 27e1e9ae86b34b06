/* The engine's io_uring plumbing on loopback: GSO sends through the ring,
 * multishot recvmsg into a provided-buffer ring with GRO, buffer recycling,
 * and recovery when the buffers run out (-ENOBUFS ends the multishot). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "engine/udp.h"
#include "engine/uring.h"
#include "sdp/sdp.h"

#define TAG_RECV 1
#define TAG_SEND 2

struct rig {
    struct io_uring ring;
    struct sdp_uring_caps caps;
    struct sdp_bufring br;
    int rx, tx;
    struct sockaddr_in ra;
    struct msghdr tmpl; /* multishot recvmsg template: name and control sizes */
};

static void rig_open(struct rig *r, unsigned nbufs)
{
    cr_assert_eq(sdp_uring_init(&r->ring, 256, 1, &r->caps), 0, "io_uring: %s", strerror(errno));
    cr_assert_eq(sdp_bufring_setup(&r->ring, &r->br, 7, nbufs, 65536), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sdp_udp_opts o = {.gro = 1, .rcvbuf = 1 << 22};
    cr_assert_eq(sdp_udp_open((struct sockaddr *)&a, sizeof(a), &o, &r->rx, NULL), 0);
    struct sdp_udp_opts t = {0};
    cr_assert_eq(sdp_udp_open((struct sockaddr *)&a, sizeof(a), &t, &r->tx, NULL), 0);
    socklen_t l = sizeof(r->ra);
    getsockname(r->rx, (struct sockaddr *)&r->ra, &l);
    memset(&r->tmpl, 0, sizeof(r->tmpl));
    r->tmpl.msg_namelen = sizeof(struct sockaddr_storage);
    r->tmpl.msg_controllen = 64;
}

static void arm_recv(struct rig *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    cr_assert_not_null(sqe);
    io_uring_prep_recvmsg_multishot(sqe, r->rx, &r->tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = r->br.bgid;
    io_uring_sqe_set_data64(sqe, TAG_RECV);
}

static void send_gso(struct rig *r, struct sdp_udp_tx *d, const uint8_t *buf, size_t len, uint16_t seg)
{
    cr_assert_eq(sdp_udp_tx_prep(d, (struct sockaddr *)&r->ra, sizeof(r->ra), buf, len, seg, -1), 0);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    cr_assert_not_null(sqe);
    io_uring_prep_sendmsg(sqe, r->tx, &d->msg, 0);
    io_uring_sqe_set_data64(sqe, TAG_SEND);
}

/* Reap completions until `want` payload bytes arrived (counted in *have);
 * returns datagrams seen. Without recycling it stops at the first ENOBUFS. */
static int reap(struct rig *r, uint8_t *out, size_t want, int recycle, int *enobufs, size_t *have_io)
{
    size_t have = *have_io;
    int dgrams = 0;
    for (int spins = 0; spins < 200 && have < want; spins++) {
        struct __kernel_timespec ts = {.tv_nsec = 10 * 1000 * 1000};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
        unsigned head, n = 0;
        io_uring_for_each_cqe(&r->ring, head, cqe) {
            n++;
            if (io_uring_cqe_get_data64(cqe) == TAG_SEND) {
                cr_assert(cqe->res > 0, "send: %s", strerror(-cqe->res));
                continue;
            }
            if (cqe->res == -ENOBUFS) {
                (*enobufs)++;
            } else {
                cr_assert(cqe->res >= 0, "recv: %s", strerror(-cqe->res));
                int bid = sdp_cqe_bid(cqe);
                cr_assert(bid >= 0);
                struct io_uring_recvmsg_out *o =
                    io_uring_recvmsg_validate(sdp_bufring_buf(&r->br, (unsigned)bid), cqe->res, &r->tmpl);
                cr_assert_not_null(o);
                uint8_t *p = io_uring_recvmsg_payload(o, &r->tmpl);
                size_t len = io_uring_recvmsg_payload_length(o, cqe->res, &r->tmpl);
                /* GRO's segment size arrives as a control message here too. */
                struct msghdr view = {.msg_control = io_uring_recvmsg_cmsg_firsthdr(o, &r->tmpl),
                                      .msg_controllen = o->controllen};
                uint16_t seg = view.msg_control ? sdp_udp_rx_seg_size(&view) : 0;
                size_t step = seg ? seg : len;
                for (size_t off = 0; off < len; off += step)
                    dgrams++;
                cr_assert(have + len <= want);
                memcpy(out + have, p, len);
                have += len;
                if (recycle)
                    sdp_bufring_recycle(&r->br, (unsigned)bid);
            }
            if (!(cqe->flags & IORING_CQE_F_MORE) && io_uring_cqe_get_data64(cqe) == TAG_RECV)
                arm_recv(r); /* the multishot ended (e.g. ENOBUFS): re-arm */
        }
        io_uring_cq_advance(&r->ring, n);
        sdp_bufring_flush(&r->br);
        if (!recycle && *enobufs)
            break;
    }
    *have_io = have;
    return dgrams;
}

Test(uring, gso_send_multishot_gro_receive)
{
    struct rig r;
    rig_open(&r, 64);
    arm_recv(&r);
    enum { SEG = 1400, COUNT = 40 };
    static uint8_t buf[SEG * COUNT], got[SEG * COUNT];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 31 + i / SEG);
    struct sdp_udp_tx d1, d2;
    size_t half = SEG * (COUNT / 2);
    send_gso(&r, &d1, buf, half, SEG);
    send_gso(&r, &d2, buf + half, half, SEG);
    int enobufs = 0;
    size_t have = 0;
    int dgrams = reap(&r, got, sizeof(buf), 1, &enobufs, &have);
    cr_assert_eq(have, sizeof(buf));
    cr_assert_eq(dgrams, COUNT, "datagrams: %d", dgrams);
    cr_assert_eq(memcmp(buf, got, sizeof(buf)), 0);
    sdp_bufring_free(&r.ring, &r.br);
    io_uring_queue_exit(&r.ring);
    close(r.rx);
    close(r.tx);
}

Test(uring, runs_out_of_buffers_and_recovers)
{
    struct rig r;
    rig_open(&r, 2);
    arm_recv(&r);
    static uint8_t buf[100 * 6], got[100 * 6];
    memset(buf, 0xab, sizeof(buf));
    struct sdp_udp_tx d[6];
    for (int i = 0; i < 6; i++) /* six separate datagrams: GRO may not merge them all */
        send_gso(&r, &d[i], buf + i * 100, 100, 0);
    int enobufs = 0;
    size_t have = 0;
    reap(&r, got, sizeof(buf), 0, &enobufs, &have);
    /* Two buffers cannot hold six datagrams unless GRO merged them. */
    cr_assert(have == sizeof(buf) || enobufs > 0, "have %zu, enobufs %d", have, enobufs);
    cr_assert(have <= 2 * 100 || have == sizeof(buf));
    /* Give the buffers back: the re-armed multishot reads the rest, because
     * the kernel kept the datagrams queued on the socket. */
    for (unsigned i = 0; i < r.br.nbufs; i++)
        sdp_bufring_recycle(&r.br, i);
    sdp_bufring_flush(&r.br);
    reap(&r, got, sizeof(buf), 1, &enobufs, &have);
    cr_assert_eq(have, sizeof(buf), "after recycling: %zu of %zu bytes", have, sizeof(buf));
    cr_assert_eq(memcmp(buf, got, sizeof(buf)), 0);
    sdp_bufring_free(&r.ring, &r.br);
    io_uring_queue_exit(&r.ring);
    close(r.rx);
    close(r.tx);
}

Test(uring, bufring_rejects_bad_sizes)
{
    struct io_uring ring;
    cr_assert_eq(sdp_uring_init(&ring, 8, 0, NULL), 0);
    struct sdp_bufring b;
    cr_assert_eq(sdp_bufring_setup(&ring, &b, 1, 3, 100), SDP_EINVAL);
    cr_assert_eq(sdp_bufring_setup(&ring, &b, 1, 0, 100), SDP_EINVAL);
    cr_assert_eq(sdp_bufring_setup(&ring, &b, 1, 4, 0), SDP_EINVAL);
    io_uring_queue_exit(&ring);
}
