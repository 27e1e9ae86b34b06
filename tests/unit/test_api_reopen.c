/* Inline sockets driven only by an event loop (the Redis integration's
 * contract): the application calls sdp_process/sdp_recv when sdp_fd polls
 * readable and at no other time, so every deadline (retransmission,
 * handshake retry, RPC time-out) must make the fd readable by itself.
 * redis-benchmark stalled on exactly this: forty clients opening at once
 * overflow the server's per-round handshake inbox, the dropped ClientHellos
 * are retransmitted only when the clients' timers run, and nothing woke the
 * clients for them.  Here many clients handshake at once, are closed and
 * reopened on the same ports (the server replaces each peer's session), and
 * every request must be answered. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sdp/sdp.h"

#define NCLI 40
#define ROUNDS 3

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sdp_socket *open_at(uint16_t port, uint32_t rpc_timeout_ms, struct sockaddr_in *bound)
{
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 0;
    cfg.max_peers = 4;
    if (rpc_timeout_ms)
        cfg.rpc_timeout_ms = rpc_timeout_ms;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sdp_socket *s;
    int rc = sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s);
    cr_assert_eq(rc, 0, "sdp_open on port %u: %s", port, sdp_strerror(rc));
    struct sockaddr_storage ss;
    socklen_t l;
    cr_assert_eq(sdp_local_addr(s, &ss, &l), 0);
    memcpy(bound, &ss, sizeof(*bound));
    return s;
}

/* A request to an address where nobody answers: only the client's own
 * timers can end it, and the client never calls in unless its fd wakes. */
Test(api_reopen, deadline_wakes_a_sleeping_poll, .timeout = 30)
{
    struct sockaddr_in ca, dead;
    sdp_socket *c = open_at(0, 300, &ca);
    sdp_socket *gone = open_at(0, 0, &dead);
    sdp_close(gone); /* its port now swallows (or refuses) every datagram */
    static const uint8_t k1[SDP_SECRET_LEN] = {1}, k2[SDP_SECRET_LEN] = {2};
    cr_assert_eq(sdp_set_default_keys(c, SDP_CIPHER_AES128GCM, k1, k2), 0);
    uint64_t id;
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&dead, sizeof(dead), "x", 1, 7, &id), 0);
    long long t0 = now_ms();
    struct sdp_msg m;
    int got = 0, wakes = 0;
    while (!got && now_ms() - t0 < 15000) {
        struct pollfd p = {.fd = sdp_fd(c), .events = POLLIN};
        if (poll(&p, 1, 100) != 1)
            continue;
        wakes++;
        sdp_process(c, 0);
        got = sdp_recv(c, &m, 0) == 0;
    }
    cr_assert(got, "the request neither failed nor was answered in 15 s: the fd never woke for its timers "
                   "(%d wakes)", wakes);
    cr_assert_eq(m.kind, SDP_MSG_FAILED);
    cr_assert_eq(m.error, SDP_ETIMEDOUT, "%s", sdp_strerror(m.error));
    cr_assert_eq(m.cookie, 7);
    sdp_release(c, &m);
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_gt(st.timer_wakes, 0);
    cr_assert_eq(st.timeouts, 1);
    sdp_close(c);
}

struct cli {
    sdp_socket *s;
    uint16_t port;
    int answered;
};

Test(api_reopen, clients_reopened_on_their_ports_are_all_answered, .timeout = 120)
{
    struct sockaddr_in sa;
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 0;
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sdp_socket *sv;
    cr_assert_eq(sdp_open((struct sockaddr *)&any, sizeof(any), &cfg, &sv), 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    cr_assert_eq(sdp_local_addr(sv, &ss, &sl), 0);
    memcpy(&sa, &ss, sizeof(sa));
    struct sdp_tls_options so = {.ephemeral_cert = 1};
    cr_assert_eq(sdp_set_tls(sv, &so), 0);
    char fp[65];
    cr_assert_eq(sdp_tls_fingerprint(sv, fp), 0);

    static struct cli cl[NCLI];
    memset(cl, 0, sizeof(cl));
    for (int round = 0; round < ROUNDS; round++) {
        /* Round 0 lets the kernel pick ports; later rounds reuse them, as a
         * restarted client process would. */
        for (int i = 0; i < NCLI; i++) {
            struct sockaddr_in b;
            cl[i].s = open_at(cl[i].port, 0, &b);
            cl[i].port = ntohs(b.sin_port);
            cl[i].answered = 0;
            struct sdp_tls_options co = {.pin_sha256_hex = fp};
            cr_assert_eq(sdp_set_tls(cl[i].s, &co), 0);
        }
        /* All requests leave before the server runs once: more
         * ClientHellos than it takes in per round. */
        for (int i = 0; i < NCLI; i++) {
            char req[16];
            int n = snprintf(req, sizeof(req), "r%d c%d", round, i);
            cr_assert_eq(sdp_send(cl[i].s, (struct sockaddr *)&sa, sizeof(sa), req, (size_t)n, (uint64_t)i, NULL), 0);
        }
        int left = NCLI;
        long long t0 = now_ms();
        while (left && now_ms() - t0 < 30000) {
            struct pollfd p[NCLI + 1];
            p[0] = (struct pollfd){.fd = sdp_fd(sv), .events = POLLIN};
            for (int i = 0; i < NCLI; i++)
                p[i + 1] = (struct pollfd){.fd = sdp_fd(cl[i].s), .events = POLLIN};
            if (poll(p, NCLI + 1, 100) <= 0)
                continue;
            struct sdp_msg m;
            if (p[0].revents & POLLIN) {
                sdp_process(sv, 0);
                while (sdp_recv(sv, &m, 0) == 0) {
                    cr_assert_eq(m.kind, SDP_MSG_REQUEST);
                    cr_assert_eq(sdp_reply(sv, &m, m.data, m.len), 0);
                    sdp_release(sv, &m);
                }
            }
            for (int i = 0; i < NCLI; i++) {
                if (!(p[i + 1].revents & POLLIN))
                    continue;
                sdp_process(cl[i].s, 0);
                while (sdp_recv(cl[i].s, &m, 0) == 0) {
                    cr_assert_eq(m.kind, SDP_MSG_RESPONSE, "round %d client %d: %s", round, i,
                                 m.kind == SDP_MSG_FAILED ? sdp_strerror(m.error) : "not a response");
                    char want[16];
                    int n = snprintf(want, sizeof(want), "r%d c%d", round, i);
                    cr_assert_eq(m.len, (size_t)n);
                    cr_assert_eq(memcmp(m.data, want, (size_t)n), 0);
                    cr_assert_eq(cl[i].answered, 0);
                    cl[i].answered = 1;
                    left--;
                    sdp_release(cl[i].s, &m);
                }
            }
        }
        struct sdp_stats st;
        cr_assert_eq(sdp_get_stats(sv, &st), 0);
        if (round == 0)
            cr_assert_gt(st.hs_dropped, 0, "the server took every ClientHello in one round: the test lost its point");
        cr_assert_eq(left, 0, "round %d: %d of %d requests never answered nor failed (server: %llu handshakes, "
                              "%llu dropped ClientHellos)",
                     round, left, NCLI, (unsigned long long)st.handshakes_done, (unsigned long long)st.hs_dropped);
        cr_assert_eq(st.handshakes_done, (uint64_t)NCLI * (uint64_t)(round + 1));
        for (int i = 0; i < NCLI; i++)
            sdp_close(cl[i].s);
    }
    sdp_close(sv);
}
