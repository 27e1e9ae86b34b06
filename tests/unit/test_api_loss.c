/* Loss on real sockets: 10,000 RPCs through sdp-relay dropping 5% of the
 * datagrams in each direction (plus some reordering and duplication) all
 * complete exactly once with intact bytes.  The relay's seed is printed so
 * a failure can be replayed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sdp/sdp.h"

static const uint8_t C2S[SDP_SECRET_LEN] = {0xc2, 0x5};
static const uint8_t S2C[SDP_SECRET_LEN] = {0x5, 0xc2};

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static struct sockaddr_in lo(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return a;
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 7;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

struct server {
    sdp_socket *s;
    atomic_int stop;
    atomic_long served;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct sdp_msg m;
        if (sdp_recv(sv->s, &m, 50) != 0)
            continue;
        if (m.kind == SDP_MSG_REQUEST && sdp_reply(sv->s, &m, m.data, m.len) == 0)
            atomic_fetch_add(&sv->served, 1);
        sdp_release(sv->s, &m);
    }
    return NULL;
}

Test(api_loss, ten_thousand_rpcs_through_five_percent_loss, .timeout = 240)
{
    uint16_t sport = free_port(), rport = free_port(), uport = free_port();
    char seed[32], listen_s[64], to_s[64], up_s[64];
    const char *env = getenv("SDP_RELAY_SEED");
    snprintf(seed, sizeof(seed), "%s", env ? env : "12345");
    snprintf(listen_s, sizeof(listen_s), "127.0.0.1:%u", rport);
    snprintf(to_s, sizeof(to_s), "127.0.0.1:%u", sport);
    snprintf(up_s, sizeof(up_s), "127.0.0.1:%u", uport);
    fprintf(stderr, "relay seed %s (replay with SDP_RELAY_SEED=%s)\n", seed, seed);
    pid_t relay = fork();
    cr_assert(relay >= 0);
    if (relay == 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s/bin/sdp-relay", SDP_BINARY_DIR);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(path, path, "--listen", listen_s, "--to", to_s, "--upstream", up_s, "--drop", "0.05", "--dup", "0.01",
              "--reorder", "0.01", "--seed", seed, "--duration", "200", (char *)NULL);
        _exit(127);
    }
    struct server sv = {0};
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 1;
    cfg.rpc_timeout_ms = 2000; /* losses cost retries, not failures */
    struct sockaddr_in sa = lo(sport), ra = lo(rport), ua = lo(uport);
    cr_assert_eq(sdp_open((struct sockaddr *)&sa, sizeof(sa), &cfg, &sv.s), 0);
    /* Through a relay the server sees the relay's upstream address. */
    cr_assert_eq(sdp_set_peer_keys(sv.s, (struct sockaddr *)&ua, sizeof(ua), SDP_CIPHER_AES128GCM, S2C, C2S), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, serve, &sv), 0);

    cfg.engines = 0;
    struct sockaddr_in ca = lo(0);
    sdp_socket *c;
    cr_assert_eq(sdp_open((struct sockaddr *)&ca, sizeof(ca), &cfg, &c), 0);
    cr_assert_eq(sdp_set_peer_keys(c, (struct sockaddr *)&ra, sizeof(ra), SDP_CIPHER_AES128GCM, C2S, S2C), 0);
    usleep(200000); /* the relay binds */

    enum { COUNT = 10000, WINDOW = 64 };
    uint8_t *seen = calloc(COUNT, 1);
    uint8_t buf[4000];
    int sent = 0, done = 0, failed = 0;
    time_t start = time(NULL);
    while (done + failed < COUNT && time(NULL) - start < 200) {
        while (sent < COUNT && sent - done - failed < WINDOW) {
            size_t len = 1 + (size_t)(sent * 7919) % sizeof(buf);
            fill(buf, len, (uint64_t)sent);
            int rc = sdp_send(c, (struct sockaddr *)&ra, sizeof(ra), buf, len, (uint64_t)sent, NULL);
            cr_assert_eq(rc, 0, "send: %s", sdp_strerror(rc));
            sent++;
        }
        struct sdp_msg m;
        if (sdp_recv(c, &m, 1000) != 0)
            continue;
        if (m.kind != SDP_MSG_RESPONSE) {
            failed++;
            cr_log_error("RPC %llu failed: %s", (unsigned long long)m.cookie, sdp_strerror(m.error));
            continue;
        }
        cr_assert(m.cookie < COUNT);
        cr_assert_eq(seen[m.cookie], 0, "RPC %llu delivered twice", (unsigned long long)m.cookie);
        seen[m.cookie] = 1;
        size_t len = 1 + (size_t)(m.cookie * 7919) % sizeof(buf);
        fill(buf, len, m.cookie);
        cr_assert_eq(m.len, len);
        cr_assert_eq(memcmp(m.data, buf, len), 0, "RPC %llu: bytes differ", (unsigned long long)m.cookie);
        sdp_release(c, &m);
        done++;
    }
    struct sdp_stats cs;
    sdp_get_stats(c, &cs);
    fprintf(stderr, "client: %llu done, %d failed, %llu resends sent, %llu retransmitted packets\n",
            (unsigned long long)done, failed, (unsigned long long)cs.resends_sent,
            (unsigned long long)cs.retransmitted_pkts);
    cr_assert_eq(done, COUNT, "%d of %d RPCs completed (%d failed); relay seed %s", done, COUNT, failed, seed);
    cr_assert(cs.resends_sent > 0, "5%% loss must have needed some resends");
    atomic_store(&sv.stop, 1);
    pthread_join(t, NULL);
    cr_assert(atomic_load(&sv.served) >= COUNT, "served %ld", atomic_load(&sv.served));
    sdp_close(c);
    sdp_close(sv.s);
    kill(relay, SIGTERM);
    waitpid(relay, NULL, 0);
    free(seen);
}
