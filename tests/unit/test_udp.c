/* GSO out and GRO in on loopback: one send of back-to-back datagrams
 * arrives either coalesced with its segment size or one by one, and either
 * way splits back into the original datagrams; DSCP reaches the receiver. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "engine/udp.h"
#include "sdp/sdp.h"

static int open_pair(int family, int *rx, int *tx, struct sockaddr_storage *ra, socklen_t *rlen, int *gro)
{
    struct sockaddr_storage a = {0};
    socklen_t alen;
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&a;
        s->sin_family = AF_INET;
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        alen = sizeof(*s);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a;
        s->sin6_family = AF_INET6;
        s->sin6_addr = in6addr_loopback;
        alen = sizeof(*s);
    }
    struct sdp_udp_opts o = {.gro = 1, .rcvbuf = 1 << 22};
    if (sdp_udp_open((struct sockaddr *)&a, alen, &o, rx, gro) != 0)
        return -1;
    struct sdp_udp_opts t = {0};
    if (sdp_udp_open((struct sockaddr *)&a, alen, &t, tx, NULL) != 0)
        return -1;
    *rlen = sizeof(*ra);
    getsockname(*rx, (struct sockaddr *)ra, rlen);
    int on = 1;
    if (family == AF_INET)
        setsockopt(*rx, IPPROTO_IP, IP_RECVTOS, &on, sizeof(on));
    else
        setsockopt(*rx, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof(on));
    return 0;
}

static void gso_roundtrip(int family)
{
    int rx, tx, gro;
    struct sockaddr_storage ra;
    socklen_t rlen;
    if (open_pair(family, &rx, &tx, &ra, &rlen, &gro) != 0)
        cr_skip_test("no socket for family %d: %s", family, strerror(errno));
    enum { SEG = 1200, COUNT = 20, LAST = 333 };
    static uint8_t buf[SEG * (COUNT - 1) + LAST];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i / SEG * 7 + i);
    struct sdp_udp_tx d;
    cr_assert_eq(sdp_udp_tx_prep(&d, (struct sockaddr *)&ra, rlen, buf, sizeof(buf), SEG, sdp_udp_tos_for_prio(5)), 0);
    ssize_t n = sendmsg(tx, &d.msg, 0);
    cr_assert_eq(n, (ssize_t)sizeof(buf), "sendmsg with UDP_SEGMENT: %s", strerror(errno));

    static uint8_t got[sizeof(buf)];
    size_t have = 0;
    int datagrams = 0, tos_seen = -1;
    for (int tries = 0; tries < 100 && have < sizeof(buf); tries++) {
        struct pollfd p = {.fd = rx, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        uint8_t rbuf[65536];
        union { char b[256]; struct cmsghdr a; } ctl;
        struct iovec iov = {rbuf, sizeof(rbuf)};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
        ssize_t r = recvmsg(rx, &m, 0);
        if (r <= 0)
            continue;
        uint16_t seg = sdp_udp_rx_seg_size(&m);
        size_t step = seg ? seg : (size_t)r;
        for (size_t off = 0; off < (size_t)r; off += step) {
            size_t l = (size_t)r - off < step ? (size_t)r - off : step;
            cr_assert(have + l <= sizeof(buf));
            memcpy(got + have, rbuf + off, l);
            have += l;
            datagrams++;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
            if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) ||
                (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS))
                tos_seen = c->cmsg_type == IP_TOS ? *(uint8_t *)CMSG_DATA(c) : *(int *)CMSG_DATA(c);
    }
    cr_assert_eq(have, sizeof(buf));
    cr_assert_eq(datagrams, COUNT, "split into %d datagrams", datagrams);
    cr_assert_eq(memcmp(got, buf, sizeof(buf)), 0);
    cr_assert_eq(tos_seen, sdp_udp_tos_for_prio(5), "traffic class %d", tos_seen);
    close(rx);
    close(tx);
}

Test(udp, gso_gro_ipv4) { gso_roundtrip(AF_INET); }
Test(udp, gso_gro_ipv6) { gso_roundtrip(AF_INET6); }

Test(udp, prep_limits)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct sdp_udp_tx d;
    static uint8_t b[SDP_UDP_GSO_MAX_BYTES + 1];
    cr_assert_eq(sdp_udp_tx_prep(&d, (struct sockaddr *)&a, sizeof(a), b, sizeof(b), 1400, -1), SDP_EINVAL);
    cr_assert_eq(sdp_udp_tx_prep(&d, (struct sockaddr *)&a, sizeof(a), b, 65 * 100, 100, -1), SDP_EINVAL);
    cr_assert_eq(sdp_udp_tx_prep(&d, (struct sockaddr *)&a, sizeof(a), b, 64 * 100, 100, -1), 0);
    cr_assert_eq(d.msg.msg_controllen, CMSG_SPACE(sizeof(uint16_t)));
    cr_assert_eq(sdp_udp_tx_prep(&d, (struct sockaddr *)&a, sizeof(a), b, 100, 100, -1), 0);
    cr_assert_null(d.msg.msg_control, "a single datagram needs no control message");
    cr_assert_eq(sdp_udp_tos_for_prio(0), 0);
    cr_assert_eq(sdp_udp_tos_for_prio(7), 0xe0);
    cr_assert_eq(sdp_udp_tos_for_prio(9), 0xe0);
}
