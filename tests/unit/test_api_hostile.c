/* Hostile input at a live server.  An on-path forwarder between a client
 * and the server passes the real traffic and adds, both ways: truncated and
 * bit-flipped copies of real packets, replays of captured packets (whole
 * earlier RPCs included), and random datagrams; a stranger socket sprays
 * more of the same.  The server must keep serving, deliver no request
 * twice, and keep its memory bounded; every bad packet is counted. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdp/sdp.h"

static const uint8_t C2S[SDP_SECRET_LEN] = {0xa1};
static const uint8_t S2C[SDP_SECRET_LEN] = {0xb2};

#define CAPTURE 512
#define COUNT 3000

struct fwd {
    int down, up, stranger;
    struct sockaddr_in server, client;
    int have_client;
    atomic_int stop;
    uint64_t rng;
    uint8_t cap[CAPTURE][2048];
    uint16_t cap_len[CAPTURE];
    int cap_n;
    long injected;
};

static uint64_t rnd(struct fwd *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static void mischief(struct fwd *f, int fd, const struct sockaddr_in *to, const uint8_t *p, size_t n)
{
    uint8_t b[2048];
    if (n > sizeof(b))
        return;
    switch (rnd(f) % 6) {
    case 0: /* truncated copy */
        memcpy(b, p, n);
        sendto(fd, b, rnd(f) % n, 0, (const struct sockaddr *)to, sizeof(*to));
        break;
    case 1: /* one flipped bit */
        memcpy(b, p, n);
        b[rnd(f) % n] ^= (uint8_t)(1u << (rnd(f) % 8));
        sendto(fd, b, n, 0, (const struct sockaddr *)to, sizeof(*to));
        break;
    case 2: /* replay of a captured packet */
        if (f->cap_n) {
            int i = (int)(rnd(f) % (uint64_t)(f->cap_n < CAPTURE ? f->cap_n : CAPTURE));
            sendto(fd, f->cap[i], f->cap_len[i], 0, (const struct sockaddr *)to, sizeof(*to));
        }
        break;
    case 3: { /* random bytes, sometimes with a plausible first byte */
        size_t len = 1 + rnd(f) % 1500;
        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)rnd(f);
        if (rnd(f) & 1)
            b[0] = (uint8_t)(0x10 | (rnd(f) % 10));
        sendto(fd, b, len, 0, (const struct sockaddr *)to, sizeof(*to));
        break;
    }
    case 4: /* the same packet again at once */
        sendto(fd, p, n, 0, (const struct sockaddr *)to, sizeof(*to));
        break;
    default: /* a stranger replays it from another address */
        sendto(f->stranger, p, n, 0, (const struct sockaddr *)to, sizeof(*to));
        break;
    }
    f->injected++;
}

static void *forward(void *arg)
{
    struct fwd *f = arg;
    uint8_t buf[65536];
    while (!atomic_load(&f->stop)) {
        struct pollfd p[2] = {{.fd = f->down, .events = POLLIN}, {.fd = f->up, .events = POLLIN}};
        if (poll(p, 2, 20) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            socklen_t l = sizeof(f->client);
            ssize_t n = recvfrom(f->down, buf, sizeof(buf), 0, (struct sockaddr *)&f->client, &l);
            if (n > 0) {
                f->have_client = 1;
                sendto(f->up, buf, (size_t)n, 0, (struct sockaddr *)&f->server, sizeof(f->server));
                if ((size_t)n <= sizeof(f->cap[0]) && rnd(f) % 4 == 0) {
                    int i = f->cap_n++ % CAPTURE;
                    memcpy(f->cap[i], buf, (size_t)n);
                    f->cap_len[i] = (uint16_t)n;
                }
                if (rnd(f) % 3 == 0)
                    mischief(f, f->up, &f->server, buf, (size_t)n);
            }
        }
        if ((p[1].revents & POLLIN) && f->have_client) {
            ssize_t n = recv(f->up, buf, sizeof(buf), 0);
            if (n > 0) {
                sendto(f->down, buf, (size_t)n, 0, (struct sockaddr *)&f->client, sizeof(f->client));
                if (rnd(f) % 5 == 0)
                    mischief(f, f->down, &f->client, buf, (size_t)n);
            }
        }
    }
    return NULL;
}

static int bind_lo(uint16_t port, struct sockaddr_in *out)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    socklen_t l = sizeof(*out);
    getsockname(fd, (struct sockaddr *)out, &l);
    return fd;
}

struct server {
    sdp_socket *s;
    atomic_int stop;
    uint8_t seen[COUNT];
    atomic_int dup, served;
    atomic_ullong mem_peak;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct sdp_msg m;
        if (sdp_recv(sv->s, &m, 20) == 0) {
            if (m.kind == SDP_MSG_REQUEST && m.len >= 4) {
                uint32_t k;
                memcpy(&k, m.data, 4);
                if (k < COUNT && sv->seen[k]++)
                    atomic_fetch_add(&sv->dup, 1);
                sdp_reply(sv->s, &m, m.data, m.len);
                atomic_fetch_add(&sv->served, 1);
            }
            sdp_release(sv->s, &m);
        }
        struct sdp_stats st;
        sdp_get_stats(sv->s, &st);
        if (st.mem_used > atomic_load(&sv->mem_peak))
            atomic_store(&sv->mem_peak, st.mem_used);
    }
    return NULL;
}

Test(api_hostile, server_survives_forgeries_and_replays, .timeout = 120)
{
    static struct fwd f;
    static struct server sv;
    memset(&f, 0, sizeof(f));
    memset(&sv, 0, sizeof(sv));
    f.rng = 0x5eed;
    struct sockaddr_in down_a, up_a, str_a;
    f.down = bind_lo(0, &down_a);
    f.up = bind_lo(0, &up_a);
    f.stranger = bind_lo(0, &str_a);
    cr_assert(f.down >= 0 && f.up >= 0 && f.stranger >= 0);

    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 1;
    cfg.rpc_timeout_ms = 2000;
    cfg.mtu = 1500; /* messages of up to 6 KB in several datagrams each: that many to attack */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(sdp_open((struct sockaddr *)&sa, sizeof(sa), &cfg, &sv.s), 0);
    struct sockaddr_storage ss;
    socklen_t sl;
    sdp_local_addr(sv.s, &ss, &sl);
    memcpy(&f.server, &ss, sizeof(f.server));
    cr_assert_eq(sdp_set_peer_keys(sv.s, (struct sockaddr *)&up_a, sizeof(up_a), SDP_CIPHER_AES128GCM, S2C, C2S), 0);

    cfg.engines = 0;
    sdp_socket *c;
    cr_assert_eq(sdp_open((struct sockaddr *)&sa, sizeof(sa), &cfg, &c), 0);
    cr_assert_eq(sdp_set_peer_keys(c, (struct sockaddr *)&down_a, sizeof(down_a), SDP_CIPHER_AES128GCM, C2S, S2C), 0);

    pthread_t tf, ts;
    cr_assert_eq(pthread_create(&tf, NULL, forward, &f), 0);
    cr_assert_eq(pthread_create(&ts, NULL, serve, &sv), 0);

    uint8_t buf[6000];
    int done = 0, sent = 0, failed = 0;
    for (int guard = 0; done + failed < COUNT && guard < 200000; guard++) {
        while (sent < COUNT && sent - done - failed < 16) {
            size_t len = 4 + (size_t)(sent * 131) % (sizeof(buf) - 4);
            uint32_t k = (uint32_t)sent;
            memcpy(buf, &k, 4);
            memset(buf + 4, (int)(k & 0xff), len - 4);
            cr_assert_eq(sdp_send(c, (struct sockaddr *)&down_a, sizeof(down_a), buf, len, k, NULL), 0);
            sent++;
        }
        struct sdp_msg m;
        if (sdp_recv(c, &m, 500) != 0)
            continue;
        if (m.kind != SDP_MSG_RESPONSE) {
            failed++;
            continue;
        }
        size_t len = 4 + (size_t)(m.cookie * 131) % (sizeof(buf) - 4);
        uint32_t k;
        cr_assert_eq(m.len, len, "response %llu has %zu bytes, want %zu", (unsigned long long)m.cookie, m.len, len);
        memcpy(&k, m.data, 4);
        cr_assert_eq(k, m.cookie);
        for (size_t i = 4; i < len; i++)
            cr_assert_eq(((uint8_t *)m.data)[i], (uint8_t)(k & 0xff));
        sdp_release(c, &m);
        done++;
    }
    atomic_store(&f.stop, 1);
    pthread_join(tf, NULL);
    usleep(100000);
    atomic_store(&sv.stop, 1);
    pthread_join(ts, NULL);

    struct sdp_stats st;
    sdp_get_stats(sv.s, &st);
    fprintf(stderr,
            "hostile: %d done, %d failed, %ld injected; server drops %llu (malformed %llu, auth %llu, replay %llu, "
            "no peer %llu), memory peak %llu B\n",
            done, failed, f.injected, (unsigned long long)st.drops_total, (unsigned long long)st.drops_malformed,
            (unsigned long long)st.drops_auth, (unsigned long long)st.drops_replay,
            (unsigned long long)st.drops_no_peer, (unsigned long long)atomic_load(&sv.mem_peak));
    cr_assert_eq(atomic_load(&sv.dup), 0, "a request was delivered twice");
    cr_assert_eq(done, COUNT, "%d of %d RPCs completed (%d failed) under attack", done, COUNT, failed);
    cr_assert(f.injected > 1000, "the attack must actually have happened");
    cr_assert(st.drops_total > 0 && st.drops_no_peer > 0, "bad packets are counted");
    cr_assert(st.drops_replay > 0, "replays are recognised");
    /* 16 RPCs of < 6 KB in flight; forgeries may hold a bounded amount more. */
    cr_assert(atomic_load(&sv.mem_peak) < (32u << 20), "server memory peaked at %llu bytes",
              (unsigned long long)atomic_load(&sv.mem_peak));
    sdp_close(c);
    sdp_close(sv.s);
    close(f.down);
    close(f.up);
    close(f.stranger);
}
