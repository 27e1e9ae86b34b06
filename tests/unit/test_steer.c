/* The reuseport steering program, run by the real kernel: packets of one
 * RPC (both parities of its id) reach one socket, different RPCs spread,
 * and the kernel's choice equals sdp_steer_engine(). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/steer.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#define N 4

static void fill_hdr(uint8_t *p, uint8_t type, uint64_t id)
{
    memset(p, 0, 32);
    p[0] = (uint8_t)(SDP_WIRE_VERSION << 4 | type);
    for (int i = 0; i < 6; i++)
        p[2 + i] = (uint8_t)(id >> (8 * (5 - i)));
}

Test(steer, c_function_matches_layout)
{
    uint8_t p[32];
    fill_hdr(p, SDP_PKT_DATA, 0x123456789aULL);
    cr_assert_eq(sdp_steer_engine(p, sizeof(p), 4), (0x3456789aU >> 1) % 4);
    fill_hdr(p, SDP_PKT_DATA, 0x123456789bULL); /* the response id: same engine */
    cr_assert_eq(sdp_steer_engine(p, sizeof(p), 4), (0x3456789aU >> 1) % 4);
    cr_assert_eq(sdp_steer_engine(p, 7, 4), 0, "too short: engine 0");
    cr_assert_eq(sdp_steer_engine(p, sizeof(p), 1), 0);
    fill_hdr(p, SDP_PKT_HANDSHAKE, 0);
    p[16] = 0; p[17] = 0; p[18] = 0; p[19] = 6; /* conn id low word 6 -> 3 % 4 */
    cr_assert_eq(sdp_steer_engine(p, sizeof(p), 4), 3);
    cr_assert_eq(sdp_steer_attach(-1, 0), SDP_EINVAL);
    cr_assert_eq(sdp_steer_attach(-1, SDP_STEER_MAX_ENGINES + 1), SDP_EINVAL);
}

Test(steer, kernel_steers_by_rpc_id)
{
    int fds[N];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        cr_assert(fds[i] >= 0);
        int one = 1;
        cr_assert_eq(setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        cr_assert_eq(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
        if (i == 0)
            cr_assert_eq(getsockname(fds[0], (struct sockaddr *)&a, &alen), 0);
    }
    int rc = sdp_steer_attach(fds[0], N);
    if (rc != 0)
        cr_skip_test("SO_ATTACH_REUSEPORT_CBPF unavailable: %s", strerror(errno));

    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert(tx >= 0);
    int sent_to[N] = {0};
    uint8_t p[32];
    for (uint64_t id = 2; id < 2 + 2 * 64; id++) {
        fill_hdr(p, SDP_PKT_DATA, id << 20 | id);
        cr_assert_eq(sendto(tx, p, sizeof(p), 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)sizeof(p));
        sent_to[sdp_steer_engine(p, sizeof(p), N)]++;
    }
    fill_hdr(p, SDP_PKT_HANDSHAKE, 0);
    p[19] = 5; /* conn id low word 5 -> (5 >> 1) % 4 = 2 */
    cr_assert_eq(sendto(tx, p, sizeof(p), 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)sizeof(p));
    sent_to[2]++;

    int got[N] = {0};
    for (int round = 0; round < 50; round++) {
        struct pollfd pf[N];
        for (int i = 0; i < N; i++)
            pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        if (poll(pf, N, 20) <= 0)
            continue;
        for (int i = 0; i < N; i++) {
            uint8_t b[64];
            ssize_t n;
            while ((n = recv(fds[i], b, sizeof(b), 0)) > 0) {
                cr_assert_eq(sdp_steer_engine(b, (size_t)n, N), (unsigned)i,
                             "kernel put a packet on socket %d that the C function maps elsewhere", i);
                got[i]++;
            }
        }
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(got[i], sent_to[i], "socket %d: got %d, expected %d", i, got[i], sent_to[i]);
        cr_assert(got[i] > 0, "every engine gets some RPCs");
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    close(tx);
}
