/* io_uring helpers beyond what Debian's liburing 2.3 offers, in one place:
 * ring setup that asks for the newest flags the kernel takes and falls back,
 * a provided-buffer ring we map ourselves (2.3 has no
 * io_uring_setup_buf_ring), and run-time capability checks. */
#ifndef SDP_ENGINE_URING_H
#define SDP_ENGINE_URING_H

#include <liburing.h>
#include <stddef.h>
#include <stdint.h>

struct sdp_uring_caps {
    unsigned setup_flags;    /* the IORING_SETUP_* flags the ring got */
    int recvmsg_multishot;   /* 1 when multishot recvmsg works (kernel 6.0+) */
    int send_zc;             /* 1 when IORING_OP_SEND_ZC is supported */
    int buf_ring;            /* 1 when provided-buffer rings register */
};

/* Create a ring: with single_issuer, single issuer and deferred task work
 * when available (for a ring only its creating thread will ever submit to),
 * else cooperative task work (flagged in the SQ ring's flags when pending),
 * else plain.  Returns 0 or SDP_ESYSTEM. */
int sdp_uring_init(struct io_uring *ring, unsigned entries, int single_issuer, struct sdp_uring_caps *caps);

/* A provided-buffer ring of nbufs (a power of two) buffers of buf_size
 * bytes, registered as buffer group bgid. */
struct sdp_bufring {
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    size_t map_len;
    unsigned nbufs;
    unsigned buf_size;
    unsigned mask;
    uint16_t bgid;
    unsigned pending; /* buffers added but not yet published */
};

int sdp_bufring_setup(struct io_uring *ring, struct sdp_bufring *b, uint16_t bgid, unsigned nbufs,
                      unsigned buf_size);
void sdp_bufring_free(struct io_uring *ring, struct sdp_bufring *b);

static inline uint8_t *sdp_bufring_buf(const struct sdp_bufring *b, unsigned bid)
{
    return b->bufs + (size_t)bid * b->buf_size;
}

/* Give buffer bid back to the kernel; published at the next _flush (so a
 * batch of completions costs one store-release). */
static inline void sdp_bufring_recycle(struct sdp_bufring *b, unsigned bid)
{
    io_uring_buf_ring_add(b->br, sdp_bufring_buf(b, bid), b->buf_size, (unsigned short)bid, b->mask,
                          (int)b->pending);
    b->pending++;
}

static inline void sdp_bufring_flush(struct sdp_bufring *b)
{
    if (b->pending) {
        io_uring_buf_ring_advance(b->br, (int)b->pending);
        b->pending = 0;
    }
}

/* Buffer id of a completion that selected a buffer, or -1. */
static inline int sdp_cqe_bid(const struct io_uring_cqe *cqe)
{
    return (cqe->flags & IORING_CQE_F_BUFFER) ? (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) : -1;
}

#endif
