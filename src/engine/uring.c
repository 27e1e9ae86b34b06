#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/uring.h"
#include "sdp/sdp.h"

int sdp_uring_init(struct io_uring *ring, unsigned entries, int single_issuer, struct sdp_uring_caps *caps)
{
    /* TASKRUN_FLAG makes pending task work (a packet the kernel has not yet
     * turned into a completion) visible in the ring's flags, so a busy poll
     * can tell when entering the kernel would produce a completion. */
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    unsigned got = 0;
    for (size_t i = single_issuer ? 0 : 1; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = tries[i];
        rc = io_uring_queue_init_params(entries, ring, &p);
        if (rc == 0) {
            got = tries[i];
            break;
        }
        if (rc != -EINVAL)
            break; /* ENOMEM, EPERM...: a smaller flag set will not help */
    }
    if (rc < 0) {
        errno = -rc;
        return SDP_ESYSTEM;
    }
    if (caps) {
        memset(caps, 0, sizeof(*caps));
        caps->setup_flags = got;
        struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
        if (probe) {
            caps->send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
            io_uring_free_probe(probe);
        }
        /* Multishot recvmsg and buffer rings both came with 6.0 / 5.19; the
         * engine confirms multishot on its first completion and falls back
         * to re-arming single shots on -EINVAL. */
        caps->recvmsg_multishot = 1;
        caps->buf_ring = 1;
    }
    return 0;
}

int sdp_bufring_setup(struct io_uring *ring, struct sdp_bufring *b, uint16_t bgid, unsigned nbufs,
                      unsigned buf_size)
{
    if (nbufs == 0 || (nbufs & (nbufs - 1)) || nbufs > 32768 || buf_size == 0)
        return SDP_EINVAL;
    memset(b, 0, sizeof(*b));
    size_t ring_len = (size_t)nbufs * sizeof(struct io_uring_buf);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    ring_len = (ring_len + page - 1) / page * page;
    size_t len = ring_len + (size_t)nbufs * buf_size;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return SDP_ENOMEM;
    b->br = mem;
    b->bufs = (uint8_t *)mem + ring_len;
    b->map_len = len;
    b->nbufs = nbufs;
    b->buf_size = buf_size;
    b->mask = (unsigned)io_uring_buf_ring_mask(nbufs);
    b->bgid = bgid;
    io_uring_buf_ring_init(b->br);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)b->br, .ring_entries = nbufs, .bgid = bgid};
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        munmap(mem, len);
        memset(b, 0, sizeof(*b));
        errno = -rc;
        return SDP_ESYSTEM;
    }
    for (unsigned i = 0; i < nbufs; i++)
        sdp_bufring_recycle(b, i);
    sdp_bufring_flush(b);
    return 0;
}

void sdp_bufring_free(struct io_uring *ring, struct sdp_bufring *b)
{
    if (!b->br)
        return;
    io_uring_unregister_buf_ring(ring, b->bgid);
    munmap(b->br, b->map_len);
    memset(b, 0, sizeof(*b));
}
