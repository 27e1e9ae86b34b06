/* sdp-bench-bulk: the bulk cell of sdp-bench on its own, for profiling.
 * A client on the main thread keeps a window of requests of one size
 * outstanding to a server on a second thread (both inline sockets, 16 B
 * responses), then prints goodput and both sides' counters.  The server
 * polls sdp_fd rather than blocking in sdp_recv so that it also runs under
 * valgrind (whose big lock a thread blocked in io_uring_enter keeps).
 *
 * It also prints each thread's CPU time per MiB (the figure that does not
 * depend on how busy the machine is) and how often a thread slept a whole
 * millisecond in poll with nothing to do (pipeline stalls).
 *
 *   sdp-bench-bulk [size [count [window [null]]]]   defaults 1048576 200 16
 *   SDPBULK_PIN=1: client on CPU 0, server on CPU 1; SDPBULK_MTU, SDPBULK_UNSCHED:
 *   sdp_config's mtu and unsched_bytes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdp/sdp.h"

static const uint8_t K1[SDP_SECRET_LEN] = "sdp-bench-bulk client to server";
static const uint8_t K2[SDP_SECRET_LEN] = "sdp-bench-bulk server to client";

static atomic_int stop;
static atomic_uint polls, poll_timeouts;
static double poll_s[2], cpu_s[2]; /* each written by one thread, read after the join */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sdp_socket *open_one(enum sdp_cipher cipher, int server)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.cipher = cipher;
    cfg.allow_insecure = cipher == SDP_CIPHER_NULL_INSECURE;
    /* Experiments: SDPBULK_MTU, SDPBULK_UNSCHED override the defaults. */
    if (getenv("SDPBULK_MTU"))
        cfg.mtu = (uint32_t)atoi(getenv("SDPBULK_MTU"));
    if (getenv("SDPBULK_UNSCHED"))
        cfg.unsched_bytes = (uint32_t)atoi(getenv("SDPBULK_UNSCHED"));
    sdp_socket *s = NULL;
    if (sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s) != 0 ||
        sdp_set_default_keys(s, cipher, server ? K2 : K1, server ? K1 : K2) != 0) {
        fprintf(stderr, "sdp_open failed\n");
        exit(1);
    }
    return s;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pin(int cpu)
{
    if (!getenv("SDPBULK_PIN"))
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *serve(void *arg)
{
    sdp_socket *s = arg;
    pin(1);
    double cpu0 = -1;
    uint8_t resp[16] = {0};
    while (!atomic_load(&stop)) {
        struct sdp_msg m;
        if (sdp_recv(s, &m, 0) != 0) {
            struct pollfd p = {.fd = sdp_fd(s), .events = POLLIN};
            atomic_fetch_add(&polls, 1);
            double pt = now_s();
            if (poll(&p, 1, 1) == 0)
                atomic_fetch_add(&poll_timeouts, 1);
            poll_s[1] += now_s() - pt;
            sdp_process(s, 0);
            continue;
        }
        if (cpu0 < 0)
            cpu0 = thread_cpu_s();
        if (m.kind == SDP_MSG_REQUEST)
            sdp_reply(s, &m, resp, sizeof(resp));
        sdp_release(s, &m);
    }
    cpu_s[1] = thread_cpu_s() - cpu0;
    return NULL;
}

static void print_stats(const char *who, sdp_socket *s)
{
    struct sdp_stats st;
    sdp_get_stats(s, &st);
    fprintf(stderr,
            "%s: pkts out %llu in %llu gso_sends %llu retransmitted %llu grants %llu resends %llu timeouts %llu "
            "drops %llu (auth %llu limit %llu) sealed %llu opened %llu rx direct %llu copied %llu\n",
            who, (unsigned long long)st.pkts_out, (unsigned long long)st.pkts_in, (unsigned long long)st.gso_sends,
            (unsigned long long)st.retransmitted_pkts, (unsigned long long)st.grants_sent,
            (unsigned long long)st.resends_sent, (unsigned long long)st.timeouts, (unsigned long long)st.drops_total,
            (unsigned long long)st.drops_auth, (unsigned long long)st.drops_limit,
            (unsigned long long)st.records_sealed, (unsigned long long)st.records_opened,
            (unsigned long long)st.rx_bytes_direct, (unsigned long long)st.rx_bytes_copied);
}

int main(int argc, char **argv)
{
    size_t size = argc > 1 ? strtoul(argv[1], NULL, 0) : 1048576;
    unsigned count = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 200;
    unsigned window = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 16;
    enum sdp_cipher cipher = argc > 4 && atoi(argv[4]) ? SDP_CIPHER_NULL_INSECURE : SDP_CIPHER_AES128GCM;
    uint8_t *data = malloc(size);
    if (!data || window == 0)
        return 1;
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 131 + 7);
    sdp_socket *srv = open_one(cipher, 1), *cli = open_one(cipher, 0);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    sdp_local_addr(srv, &sa, &sl);
    pthread_t th;
    pthread_create(&th, NULL, serve, srv);
    pin(0);
    unsigned sent = 0, done = 0, failed = 0;
    double t0 = now_s(), t_end = t0 + 30, cpu0 = thread_cpu_s();
    while (done < count && now_s() < t_end) {
        while (sent < count && sent - done < window) {
            if (sdp_send(cli, (struct sockaddr *)&sa, sl, data, size, sent, NULL) != 0)
                break;
            sent++;
        }
        struct sdp_msg m;
        if (sdp_recv(cli, &m, 0) != 0) {
            struct pollfd p = {.fd = sdp_fd(cli), .events = POLLIN};
            atomic_fetch_add(&polls, 1);
            double pt = now_s();
            if (poll(&p, 1, 1) == 0)
                atomic_fetch_add(&poll_timeouts, 1);
            poll_s[0] += now_s() - pt;
            sdp_process(cli, 0);
            continue;
        }
        done++;
        failed += m.kind != SDP_MSG_RESPONSE;
        sdp_release(cli, &m);
    }
    double dt = now_s() - t0;
    cpu_s[0] = thread_cpu_s() - cpu0;
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    double mib = (double)done * (double)size / 1048576.0;
    printf("%u x %zu B, window %u, %s: %.3f s, %.2f Gbit/s goodput, %u failed; cpu per MiB: client %.3f ms, server "
           "%.3f ms\n",
           done, size, window, cipher == SDP_CIPHER_NULL_INSECURE ? "null" : "aes-128-gcm", dt,
           (double)done * (double)size * 8 / dt / 1e9, failed, cpu_s[0] * 1e3 / mib, cpu_s[1] * 1e3 / mib);
    fprintf(stderr, "polls %u, timed out %u, in poll: client %.3f s server %.3f s; cpu: client %.3f s server %.3f s\n",
            atomic_load(&polls), atomic_load(&poll_timeouts), poll_s[0], poll_s[1], cpu_s[0], cpu_s[1]);
    print_stats("client", cli);
    print_stats("server", srv);
    sdp_close(cli);
    sdp_close(srv);
    free(data);
    return failed || done < count;
}
