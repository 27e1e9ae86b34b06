/* Inline 64 B ping-pong for instruction counts and syscall counts: the
 * same send/poll pattern as sdp-bench's sdp row (client on the main
 * thread, sdp_recv(0) then ppoll on sdp_fd), except that the server thread
 * also polls sdp_fd instead of blocking in sdp_recv: valgrind does not
 * release its big lock in io_uring_enter, so a thread blocked there would
 * starve the other one.  Counting starts after 200 warm-up RPCs.
 *
 * Usage: sdp-bench-pingpong [RPCS [OUTSTANDING [null]]]   (default 2000 1)
 *   valgrind --tool=callgrind ./build/bin/sdp-bench-pingpong 2000
 *     -> callgrind.out.PID.1 holds the measured interval (totals / RPCS)
 *   strace -f -c ./build/bin/sdp-bench-pingpong 20000
 * SDP_PINGPONG_STATS=1 prints packets and records per RPC for each side.
 * SDP_PINGPONG_TLS=1 also configures an (idle) handshake on the server,
 * as sdp-bench's server has. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_ZERO_STATS
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS
#endif

#include "sdp/sdp.h"

static const uint8_t K1[SDP_SECRET_LEN] = "k1 client to server";
static const uint8_t K2[SDP_SECRET_LEN] = "k2 server to client";
static atomic_int stop;
static int client_block; /* SDP_PINGPONG_CLIENT_BLOCK=1: the client sleeps in sdp_recv, not in ppoll */
static sdp_socket *srv;

static sdp_socket *open_at(int server, int cipher)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.cipher = cipher;
    cfg.allow_insecure = 1;
    const char *bs = getenv("SDPBENCH_BATCH_SENDS"); /* sdp_config.batch_sends, as in sdp-bench */
    cfg.batch_sends = bs && atoi(bs) > 0;
    sdp_socket *s;
    if (sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s) ||
        sdp_set_default_keys(s, cipher, server ? K2 : K1, server ? K1 : K2)) {
        fprintf(stderr, "open\n");
        exit(1);
    }
    if (server && getenv("SDP_PINGPONG_TLS")) {
        struct sdp_tls_options to = {.ephemeral_cert = 1};
        if (sdp_set_tls(s, &to))
            exit(2);
    }
    return s;
}

static void *server_main(void *arg)
{
    (void)arg;
    /* SDP_PINGPONG_BLOCK=1: block in sdp_recv as sdp-bench's server does
     * (strace and perf only: see above about valgrind). */
    const char *blk = getenv("SDP_PINGPONG_BLOCK");
    int block = blk && atoi(blk) > 0;
    while (!atomic_load(&stop)) {
        struct sdp_msg m;
        if (block) {
            if (sdp_recv(srv, &m, 50) != 0)
                continue;
        } else if (sdp_recv(srv, &m, 0) != 0) {
            struct pollfd p = {.fd = sdp_fd(srv), .events = POLLIN};
            poll(&p, 1, 1);
            continue;
        }
        if (m.kind == SDP_MSG_REQUEST)
            sdp_reply(srv, &m, m.data, m.len);
        sdp_release(srv, &m);
    }
    return NULL;
}

/* outstanding RPCs at a time */
static void run(sdp_socket *c, struct sockaddr_in *peer, int n, int window, size_t len)
{
    uint8_t buf[256];
    memset(buf, 7, sizeof(buf));
    int sent = 0, done = 0, out = 0;
    while (done < n) {
        while (out < window && sent < n) {
            if (sdp_send(c, (struct sockaddr *)peer, sizeof(*peer), buf, len, (uint64_t)sent, NULL) != 0) {
                fprintf(stderr, "send\n");
                exit(1);
            }
            sent++;
            out++;
        }
        struct sdp_msg m;
        if (client_block) {
            if (sdp_recv(c, &m, 1) != 0)
                continue;
        } else if (sdp_recv(c, &m, 0) != 0) {
            struct pollfd p = {.fd = sdp_fd(c), .events = POLLIN};
            struct timespec ts = {0, 1000000};
            ppoll(&p, 1, &ts, NULL);
            continue;
        }
        if (m.kind != SDP_MSG_RESPONSE) {
            fprintf(stderr, "kind %d err %d\n", m.kind, m.error);
            exit(1);
        }
        done++;
        out--;
        sdp_release(c, &m);
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int window = argc > 2 ? atoi(argv[2]) : 1;
    int cipher = argc > 3 && !strcmp(argv[3], "null") ? SDP_CIPHER_NULL_INSECURE : SDP_CIPHER_AES128GCM;
    const char *cb = getenv("SDP_PINGPONG_CLIENT_BLOCK");
    client_block = cb && atoi(cb) > 0;
    srv = open_at(1, cipher);
    sdp_socket *c = open_at(0, cipher);
    struct sockaddr_storage ss;
    socklen_t l;
    sdp_local_addr(srv, &ss, &l);
    struct sockaddr_in peer;
    memcpy(&peer, &ss, sizeof(peer));
    pthread_t th;
    pthread_create(&th, NULL, server_main, NULL);
    run(c, &peer, 200, window, 64);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CALLGRIND_ZERO_STATS;
    run(c, &peer, n, window, 64);
    CALLGRIND_DUMP_STATS;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3;
    printf("%d RPCs window %d: %.2f us/RPC\n", n, window, us / n);
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    /* Per-RPC packet and record counts (warm-up included): what each RPC
     * costs beyond its request and response. */
    const char *st = getenv("SDP_PINGPONG_STATS");
    if (st && atoi(st) > 0) {
        double total = n + 200;
        for (int i = 0; i < 2; i++) {
            struct sdp_stats s;
            if (sdp_get_stats(i ? srv : c, &s) != 0)
                continue;
            printf("%s: per RPC pkts in %.3f out %.3f, records sealed %.3f opened %.3f, gso sends %.3f, "
                   "timer wakes %.3f\n",
                   i ? "server" : "client", s.pkts_in / total, s.pkts_out / total, s.records_sealed / total,
                   s.records_opened / total, s.gso_sends / total, s.timer_wakes / total);
        }
    }
    sdp_close(c);
    sdp_close(srv);
    return 0;
}
