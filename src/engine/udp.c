#define _GNU_SOURCE
#include <errno.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#include "engine/udp.h"
#include "sdp/sdp.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

int sdp_udp_open(const struct sockaddr *addr, socklen_t addr_len, const struct sdp_udp_opts *o,
                 int *fd_out, int *gro_on)
{
    int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SDP_ESYSTEM;
    int one = 1;
    if (o && o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (addr->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* SO_RCVBUF is capped by net.core.rmem_max (about 200 KB by default),
     * far below a burst of unscheduled bytes from many peers; the FORCE
     * variants go past the cap where we have CAP_NET_ADMIN. */
    if (o && o->rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o->rcvbuf, sizeof(o->rcvbuf)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
    if (o && o->sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &o->sndbuf, sizeof(o->sndbuf)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(o->sndbuf));
    if (bind(fd, addr, addr_len) < 0)
        goto fail;
    int gro = 0;
    if (o && o->gro)
        gro = setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) == 0;
    if (gro_on)
        *gro_on = gro;
    *fd_out = fd;
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return SDP_ESYSTEM;
}

int sdp_udp_tx_prep(struct sdp_udp_tx *tx, const struct sockaddr *to, socklen_t to_len, const void *buf,
                    size_t len, uint16_t seg_size, int tos)
{
    if (to_len > sizeof(tx->to) || len > SDP_UDP_GSO_MAX_BYTES ||
        CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(int)) > sizeof(tx->ctl.buf))
        return SDP_EINVAL;
    int gso = seg_size && len > seg_size;
    if (gso && (len + seg_size - 1) / seg_size > SDP_UDP_GSO_MAX_SEGS)
        return SDP_EINVAL;
    memset(tx, 0, sizeof(*tx));
    memcpy(&tx->to, to, to_len);
    tx->iov.iov_base = (void *)buf;
    tx->iov.iov_len = len;
    tx->msg.msg_name = &tx->to;
    tx->msg.msg_namelen = to_len;
    tx->msg.msg_iov = &tx->iov;
    tx->msg.msg_iovlen = 1;
    tx->msg.msg_control = tx->ctl.buf;
    tx->msg.msg_controllen = sizeof(tx->ctl.buf);
    size_t used = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&tx->msg);
    if (gso) {
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &seg_size, sizeof(seg_size));
        used += CMSG_SPACE(sizeof(uint16_t));
        c = CMSG_NXTHDR(&tx->msg, c);
    }
    if (tos >= 0) {
        c->cmsg_level = to->sa_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
        c->cmsg_type = to->sa_family == AF_INET6 ? IPV6_TCLASS : IP_TOS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &tos, sizeof(tos));
        used += CMSG_SPACE(sizeof(int));
    }
    tx->msg.msg_controllen = used;
    if (!used)
        tx->msg.msg_control = NULL;
    return 0;
}

uint16_t sdp_udp_rx_seg_size(const struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            return v > 0 && v <= 65535 ? (uint16_t)v : 0;
        }
    }
    return 0;
}

int sdp_udp_tos_for_prio(unsigned prio)
{
    if (prio > 7)
        prio = 7;
    return (int)(prio << 5); /* class selector: DSCP = prio << 3, shifted into the TOS byte */
}
