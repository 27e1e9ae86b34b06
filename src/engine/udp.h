/* UDP sockets for the engines: GRO in, GSO out, DSCP per send.
 *
 * With UDP_GRO the kernel hands over several datagrams of one flow in one
 * buffer plus their size in a control message; with UDP_SEGMENT one send
 * of back-to-back equal-size datagrams leaves as that many datagrams.  Every
 * SDP packet carries its own header, so both are invisible on the wire. */
#ifndef SDP_ENGINE_UDP_H
#define SDP_ENGINE_UDP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SDP_UDP_GSO_MAX_BYTES 65000 /* payload bytes per GSO send, under 64 KB with headers */
#define SDP_UDP_GSO_MAX_SEGS 64     /* UDP_MAX_SEGMENTS on older kernels */

struct sdp_udp_opts {
    int reuseport; /* join a SO_REUSEPORT group (one socket per engine) */
    int gro;       /* ask for coalesced receives */
    int rcvbuf;    /* bytes, 0 = system default */
    int sndbuf;
};

/* Open and bind a non-blocking UDP socket.  *fd_out is set on success.
 * Returns 0 or SDP_ESYSTEM (errno kept). GRO is best effort: *gro_on says
 * whether the kernel took it. */
int sdp_udp_open(const struct sockaddr *addr, socklen_t addr_len, const struct sdp_udp_opts *o,
                 int *fd_out, int *gro_on);

/* A send descriptor: owns the msghdr, iovec and control buffer for one
 * sendmsg, so many can be queued in an io_uring at once. */
struct sdp_udp_tx {
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage to;
    union {
        /* Room for UDP_SEGMENT, IP_TOS and a kshim record descriptor,
         * aligned like struct cmsghdr (whose flexible array member clang
         * refuses inside a struct). */
        char buf[128];
        size_t align;
    } ctl;
};

/* Fill tx for sending len bytes of buf to `to`: a GSO send of seg_size-byte
 * datagrams when len > seg_size (seg_size 0: a single datagram), with the
 * traffic class tos (IP_TOS or IPV6_TCLASS by the address family; -1 for
 * none).  Returns 0 or SDP_EINVAL (more than SDP_UDP_GSO_MAX_SEGS datagrams,
 * or too many bytes). */
int sdp_udp_tx_prep(struct sdp_udp_tx *tx, const struct sockaddr *to, socklen_t to_len, const void *buf,
                    size_t len, uint16_t seg_size, int tos);

/* The datagram size of a coalesced receive (0 when the buffer is a single
 * datagram). */
uint16_t sdp_udp_rx_seg_size(const struct msghdr *msg);

/* Traffic-class byte for SDP priority 0..7 (DSCP CS0..CS7 style). */
int sdp_udp_tos_for_prio(unsigned prio);

#endif
