/* The public API on real loopback sockets, in inline and threaded mode:
 * round trips at the sizes where segmentation changes, content verified;
 * many RPCs in flight from one socket; many clients on one server; keys
 * missing; bad arguments. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdp/sdp.h"

static const uint8_t SECRET_C2S[SDP_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t SECRET_S2C[SDP_SECRET_LEN] = {9, 10, 11, 12, 13, 14, 15, 16};

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

struct server {
    sdp_socket *s;
    pthread_t thread;
    atomic_int stop;
    atomic_long served;
    atomic_int reply_errors; /* checked on the test's thread: Criterion asserts belong there */
    struct sockaddr_in addr;
};

/* Echo server: answers every request with its own bytes. */
static void *server_main(void *arg)
{
    struct server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct sdp_msg m;
        if (sdp_recv(sv->s, &m, 50) != 0)
            continue;
        if (m.kind == SDP_MSG_REQUEST) {
            if (sdp_reply(sv->s, &m, m.data, m.len) != 0)
                atomic_fetch_add(&sv->reply_errors, 1);
            atomic_fetch_add(&sv->served, 1);
        }
        sdp_release(sv->s, &m);
    }
    return NULL;
}

static uint32_t open_mtu; /* sdp_config.mtu of the sockets tests open (0: the default) */

static sdp_socket *open_sock(unsigned engines, struct sockaddr_in *bound)
{
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = engines;
    if (open_mtu)
        cfg.mtu = open_mtu;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sdp_socket *s;
    int rc = sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s);
    cr_assert_eq(rc, 0, "sdp_open: %s", sdp_strerror(rc));
    struct sockaddr_storage ss;
    socklen_t l;
    cr_assert_eq(sdp_local_addr(s, &ss, &l), 0);
    memcpy(bound, &ss, sizeof(*bound));
    return s;
}

static void server_start(struct server *sv, unsigned engines)
{
    memset(sv, 0, sizeof(*sv));
    sv->s = open_sock(engines, &sv->addr);
    cr_assert_eq(sdp_set_default_keys(sv->s, SDP_CIPHER_AES128GCM, SECRET_S2C, SECRET_C2S), 0);
    cr_assert_eq(pthread_create(&sv->thread, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
    atomic_store(&sv->stop, 1);
    pthread_join(sv->thread, NULL);
    cr_assert_eq(atomic_load(&sv->reply_errors), 0, "the server failed to reply %d times",
                 atomic_load(&sv->reply_errors));
    sdp_close(sv->s);
}

static sdp_socket *client_open(unsigned engines)
{
    struct sockaddr_in a;
    sdp_socket *c = open_sock(engines, &a);
    cr_assert_eq(sdp_set_default_keys(c, SDP_CIPHER_AES128GCM, SECRET_C2S, SECRET_S2C), 0);
    return c;
}

/* Send one request and wait for its echo; verify every byte. */
static void roundtrip(sdp_socket *c, const struct sockaddr_in *to, size_t len, uint64_t seed)
{
    uint8_t *buf = malloc(len ? len : 1);
    cr_assert_not_null(buf);
    fill(buf, len, seed);
    uint64_t id;
    int rc = sdp_send(c, (const struct sockaddr *)to, sizeof(*to), buf, len, seed, &id);
    cr_assert_eq(rc, 0, "send %zu bytes: %s", len, sdp_strerror(rc));
    struct sdp_msg m;
    rc = sdp_recv(c, &m, 20000);
    cr_assert_eq(rc, 0, "no response to %zu bytes: %s", len, sdp_strerror(rc));
    cr_assert_eq(m.kind, SDP_MSG_RESPONSE, "size %zu: kind %d error %s", len, m.kind, sdp_strerror(m.error));
    cr_assert_eq(m.rpc_id, id);
    cr_assert_eq(m.cookie, seed);
    cr_assert_eq(m.len, len, "response of %zu bytes to %zu", m.len, len);
    cr_assert(len == 0 || memcmp(m.data, buf, len) == 0, "content differs at size %zu", len);
    sdp_release(c, &m);
    free(buf);
}

static const size_t sizes[] = {0, 1, 1447, 1448, 1449, 65535, 65536, 65537, 1 << 20};

/* At 1,500 bytes: the sizes around one datagram's payload (1,448). */
static void sizes_test(unsigned server_engines, unsigned client_engines)
{
    open_mtu = 1500;
    struct server sv;
    server_start(&sv, server_engines);
    sdp_socket *c = client_open(client_engines);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        roundtrip(c, &sv.addr, sizes[i], i + 1);
    sdp_close(c);
    server_stop(&sv);
}

Test(api, sizes_inline, .timeout = 60) { sizes_test(0, 0); }
Test(api, sizes_threaded, .timeout = 60) { sizes_test(2, 2); }

/* mtu 0 (the default) takes the route's: loopback's 64 KiB, capped at
 * 9,000, so a 30,000-byte request is 4 datagrams (21 at 1,500), and the
 * sizes around one datagram's payload (8,948 wire bytes: 8,932 of data
 * plus a tag) go through, inline and threaded. */
static void route_mtu_test(unsigned engines)
{
    open_mtu = 0;
    struct server sv;
    server_start(&sv, engines);
    sdp_socket *c = client_open(engines);
    roundtrip(c, &sv.addr, 100, 1); /* installs the peer */
    struct sdp_stats a, b;
    cr_assert_eq(sdp_get_stats(c, &a), 0);
    roundtrip(c, &sv.addr, 30000, 2);
    cr_assert_eq(sdp_get_stats(c, &b), 0);
    /* 4 datagrams at 9,000 (21 at 1,500), and room for an ACK or two. */
    cr_assert_leq(b.pkts_out - a.pkts_out, 6, "a 30,000-byte request took %llu datagrams",
                  (unsigned long long)(b.pkts_out - a.pkts_out));
    cr_assert_geq(b.pkts_out - a.pkts_out, 4);
    static const size_t around[] = {8931, 8932, 8933, 9000, 65537, 1 << 20};
    for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++)
        roundtrip(c, &sv.addr, around[i], i + 3);
    sdp_close(c);
    server_stop(&sv);
}

Test(api, route_mtu_inline, .timeout = 60) { route_mtu_test(0); }
Test(api, route_mtu_threaded, .timeout = 60) { route_mtu_test(2); }

Test(api, sixty_four_mib, .timeout = 120)
{
    struct server sv;
    server_start(&sv, 1);
    sdp_socket *c = client_open(0);
    roundtrip(c, &sv.addr, 64u << 20, 99);
    sdp_close(c);
    server_stop(&sv);
}

static void many_in_flight(unsigned server_engines, unsigned client_engines, int count)
{
    struct server sv;
    server_start(&sv, server_engines);
    sdp_socket *c = client_open(client_engines);
    uint8_t *seen = calloc((size_t)count, 1);
    int sent = 0, done = 0;
    uint8_t buf[200];
    for (int guard = 0; done < count && guard < 2000000; guard++) {
        /* Keep up to 10,000 outstanding; the core may push back. */
        while (sent < count) {
            fill(buf, 100 + (size_t)(sent % 100), (uint64_t)sent);
            int rc = sdp_send(c, (struct sockaddr *)&sv.addr, sizeof(sv.addr), buf, 100 + (size_t)(sent % 100),
                              (uint64_t)sent, NULL);
            if (rc == SDP_ELIMIT || rc == SDP_ENOMEM)
                break;
            cr_assert_eq(rc, 0, "send: %s", sdp_strerror(rc));
            sent++;
        }
        struct sdp_msg m;
        int rc = sdp_recv(c, &m, 1000);
        if (rc == SDP_EAGAIN)
            continue;
        cr_assert_eq(rc, 0);
        cr_assert_eq(m.kind, SDP_MSG_RESPONSE, "RPC %llu failed: %s", (unsigned long long)m.cookie,
                     sdp_strerror(m.error));
        cr_assert(m.cookie < (uint64_t)count);
        cr_assert_eq(seen[m.cookie], 0, "RPC %llu answered twice", (unsigned long long)m.cookie);
        seen[m.cookie] = 1;
        fill(buf, m.len, m.cookie);
        cr_assert_eq(m.len, 100 + m.cookie % 100);
        cr_assert_eq(memcmp(m.data, buf, m.len), 0);
        sdp_release(c, &m);
        done++;
    }
    cr_assert_eq(done, count, "%d of %d RPCs completed", done, count);
    free(seen);
    sdp_close(c);
    server_stop(&sv);
}

Test(api, ten_thousand_concurrent_inline, .timeout = 120) { many_in_flight(0, 0, 10000); }
Test(api, ten_thousand_concurrent_threaded, .timeout = 120) { many_in_flight(2, 2, 10000); }

struct client_arg {
    struct sockaddr_in to;
    int rounds;
    int ok;
};

static void *client_main(void *arg)
{
    struct client_arg *ca = arg;
    sdp_socket *c = client_open(0);
    uint8_t buf[3000];
    for (int i = 0; i < ca->rounds; i++) {
        size_t len = (size_t)(i * 37) % sizeof(buf);
        fill(buf, len, (uint64_t)i);
        if (sdp_send(c, (struct sockaddr *)&ca->to, sizeof(ca->to), buf, len, (uint64_t)i, NULL) != 0)
            break;
        struct sdp_msg m;
        if (sdp_recv(c, &m, 10000) != 0)
            break;
        int good = m.kind == SDP_MSG_RESPONSE && m.len == len && memcmp(m.data, buf, len) == 0;
        sdp_release(c, &m);
        if (!good)
            break;
        ca->ok++;
    }
    sdp_close(c);
    return NULL;
}

Test(api, many_clients_one_server, .timeout = 120)
{
    struct server sv;
    server_start(&sv, 2);
    enum { NCLIENTS = 16, ROUNDS = 200 };
    pthread_t t[NCLIENTS];
    struct client_arg ca[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        ca[i] = (struct client_arg){.to = sv.addr, .rounds = ROUNDS};
        cr_assert_eq(pthread_create(&t[i], NULL, client_main, &ca[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(ca[i].ok, ROUNDS, "client %d: %d of %d", i, ca[i].ok, ROUNDS);
    }
    cr_assert_eq(atomic_load(&sv.served), NCLIENTS * ROUNDS);
    /* Responses are acknowledged whichever engine owns their RPC (ACKs
     * carry id 0 and reach engine 0 first). */
    struct sdp_stats st = {0};
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
        if (st.rpcs_active == 0)
            break;
        usleep(10000);
    }
    cr_assert_eq(st.rpcs_active, 0, "%llu server RPCs still wait for ACKs", (unsigned long long)st.rpcs_active);
    /* Closing clients send their pending ACKs; misrouted ACKs used to leave
     * about half of the server's RPCs to time out. */
    cr_assert_eq(st.timeouts, 0, "%llu server RPCs were freed by timeout, not by ACK",
                 (unsigned long long)st.timeouts);
    server_stop(&sv);
}

Test(api, key_update_in_every_engine, .timeout = 60)
{
    struct server sv;
    server_start(&sv, 2);
    sdp_socket *c = client_open(2);
    struct sockaddr_in nobody = sv.addr;
    nobody.sin_port = htons(1);
    cr_assert_eq(sdp_key_update(c, (struct sockaddr *)&nobody, sizeof(nobody)), SDP_ENOKEY);
    for (uint64_t i = 0; i < 20; i++)
        roundtrip(c, &sv.addr, 3000, i);
    /* Both engines had traffic: each moves on at once. */
    cr_assert_eq(sdp_key_update(c, (struct sockaddr *)&sv.addr, sizeof(sv.addr)), 0);
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.key_updates, 2);
    for (uint64_t i = 20; i < 60; i++)
        roundtrip(c, &sv.addr, 70000, i);
    cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
    cr_assert_eq(st.peer_key_updates, 2, "the server followed in both engines");
    cr_assert_eq(st.drops_auth, 0);
    sdp_close(c);
    server_stop(&sv);
}

Test(api, no_keys_no_send)
{
    struct sockaddr_in a;
    sdp_socket *c = open_sock(0, &a);
    uint8_t b[10] = {0};
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&a, sizeof(a), b, sizeof(b), 0, NULL), SDP_ENOKEY);
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.pkts_out, 0, "nothing may leave without keys");
    sdp_close(c);
}

Test(api, bad_arguments)
{
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sdp_socket *s;
    cfg.cipher = SDP_CIPHER_NULL_INSECURE;
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s), SDP_EINSECURE);
    sdp_config_default(&cfg);
    cfg.mtu = 100;
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s), SDP_EINVAL);
    struct sockaddr_in b;
    s = open_sock(0, &b);
    uint8_t k[SDP_SECRET_LEN] = {0};
    cr_assert_eq(sdp_set_peer_keys(s, (struct sockaddr *)&b, sizeof(b), SDP_CIPHER_NULL_INSECURE, k, k),
                 SDP_EINSECURE);
    cr_assert_eq(sdp_set_peer_keys(s, (struct sockaddr *)&b, sizeof(b), SDP_CIPHER_AES128GCM, k, k), 0);
    cr_assert_eq(sdp_set_peer_keys(s, (struct sockaddr *)&b, sizeof(b), SDP_CIPHER_AES128GCM, k, k), SDP_EINVAL,
                 "a peer's keys are installed once");
    struct sdp_msg m;
    memset(&m, 0, sizeof(m));
    cr_assert_eq(sdp_recv(s, &m, 0), SDP_EAGAIN);
    cr_assert_eq(sdp_reply(s, &m, NULL, 0), SDP_EINVAL);
    cr_assert_eq(sdp_send(s, (struct sockaddr *)&b, sizeof(b), k, (size_t)cfg.max_message + 1, 0, NULL),
                 SDP_ETOOBIG);
    sdp_close(s);
    /* A wildcard bind cannot use default keys (the derivation needs our address). */
    struct sockaddr_in any = {.sin_family = AF_INET};
    cr_assert_eq(sdp_open((struct sockaddr *)&any, sizeof(any), NULL, &s), 0);
    cr_assert_eq(sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, k, k), SDP_EINVAL);
    sdp_close(s);
    cr_assert_str_neq(sdp_strerror(SDP_ENOKEY), "unknown error");
}

/* An ae/epoll-style server: it sleeps in poll() on sdp_fd and only then
 * asks the socket for work, in inline and threaded mode. */
struct poll_server {
    sdp_socket *s;
    atomic_int stop;
    atomic_int served;
    atomic_int wakeups;
};

static void *poll_server_main(void *arg)
{
    struct poll_server *ps = arg;
    int fd = sdp_fd(ps->s);
    while (!atomic_load(&ps->stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        atomic_fetch_add(&ps->wakeups, 1);
        sdp_process(ps->s, 0);
        struct sdp_msg m;
        while (sdp_recv(ps->s, &m, 0) == 0) {
            if (m.kind == SDP_MSG_REQUEST && sdp_reply(ps->s, &m, m.data, m.len) == 0)
                atomic_fetch_add(&ps->served, 1);
            sdp_release(ps->s, &m);
        }
    }
    return NULL;
}

static void pollable_fd(unsigned engines)
{
    struct poll_server ps = {0};
    struct sockaddr_in sa;
    ps.s = open_sock(engines, &sa);
    cr_assert_eq(sdp_set_default_keys(ps.s, SDP_CIPHER_AES128GCM, SECRET_S2C, SECRET_C2S), 0);
    cr_assert(sdp_fd(ps.s) >= 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, poll_server_main, &ps), 0);
    sdp_socket *c = client_open(0);
    for (int i = 0; i < 200; i++)
        roundtrip(c, &sa, (size_t)(i * 997) % 20000, (uint64_t)i + 1);
    atomic_store(&ps.stop, 1);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&ps.served), 200);
    cr_assert(atomic_load(&ps.wakeups) > 0);
    sdp_close(c);
    sdp_close(ps.s);
}

Test(api, pollable_fd_inline, .timeout = 60) { pollable_fd(0); }
Test(api, pollable_fd_threaded, .timeout = 60) { pollable_fd(2); }

/* One client, one server, two engines each: the RPCs of this single peer
 * pair spread over both engines on both sides (steering by RPC id), and
 * every response comes back to the engine that sent its request. */
Test(api, one_peer_spreads_over_engines, .timeout = 60)
{
    struct server sv;
    server_start(&sv, 2);
    sdp_socket *c = client_open(2);
    cr_assert_eq(sdp_engines(c), 2);
    for (int i = 0; i < 400; i++)
        roundtrip(c, &sv.addr, 64 + (size_t)i, (uint64_t)i + 1);
    struct sdp_stats cs[2], ss[2];
    for (unsigned e = 0; e < 2; e++) {
        cr_assert_eq(sdp_get_engine_stats(c, e, &cs[e]), 0);
        cr_assert_eq(sdp_get_engine_stats(sv.s, e, &ss[e]), 0);
        cr_assert(cs[e].requests_sent >= 120, "client engine %u started only %llu of 400", e,
                  (unsigned long long)cs[e].requests_sent);
        cr_assert_eq(cs[e].responses_received, cs[e].requests_sent, "responses return to the sending engine");
        cr_assert(ss[e].requests_received >= 120, "server engine %u served only %llu of 400", e,
                  (unsigned long long)ss[e].requests_received);
    }
    cr_assert_eq(sdp_get_engine_stats(c, 2, &cs[0]), SDP_EINVAL);
    sdp_close(c);
    server_stop(&sv);
}

/* Gathered sends and replies: records straddle iovec elements (and empty
 * elements appear); the peer sees exactly the concatenation. */
Test(api, iovec_send_and_reply, .timeout = 60)
{
    /* Both ends inline on this one thread: each call drives its own engine. */
    struct sockaddr_in sa;
    sdp_socket *sv = open_sock(0, &sa);
    cr_assert_eq(sdp_set_default_keys(sv, SDP_CIPHER_AES128GCM, SECRET_S2C, SECRET_C2S), 0);
    sdp_socket *c = client_open(0);
    static uint8_t a[7000], b[30000], d[5];
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    fill(d, sizeof(d), 3);
    struct iovec iov[4] = {{a, sizeof(a)}, {NULL, 0}, {b, sizeof(b)}, {d, sizeof(d)}};
    uint64_t id;
    cr_assert_eq(sdp_sendv(c, (struct sockaddr *)&sa, sizeof(sa), iov, 4, 9, &id), 0);
    struct sdp_msg req, m;
    int rc = SDP_EAGAIN;
    for (int i = 0; i < 2000 && rc == SDP_EAGAIN; i++) {
        sdp_process(c, 0); /* lets the client's engine answer grants */
        rc = sdp_recv(sv, &req, 5);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(req.kind, SDP_MSG_REQUEST);
    cr_assert_eq(req.len, sizeof(a) + sizeof(b) + sizeof(d));
    const uint8_t *p = req.data;
    cr_assert_eq(memcmp(p, a, sizeof(a)), 0);
    cr_assert_eq(memcmp(p + sizeof(a), b, sizeof(b)), 0);
    cr_assert_eq(memcmp(p + sizeof(a) + sizeof(b), d, sizeof(d)), 0);
    /* The reply gathers the pieces in another order. */
    struct iovec back[3] = {{d, sizeof(d)}, {b, sizeof(b)}, {a, sizeof(a)}};
    cr_assert_eq(sdp_replyv(sv, &req, back, 3), 0);
    sdp_release(sv, &req);
    rc = SDP_EAGAIN;
    for (int i = 0; i < 2000 && rc == SDP_EAGAIN; i++) {
        sdp_process(sv, 0);
        rc = sdp_recv(c, &m, 5);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(m.kind, SDP_MSG_RESPONSE);
    cr_assert_eq(m.rpc_id, id);
    cr_assert_eq(m.len, sizeof(a) + sizeof(b) + sizeof(d));
    p = m.data;
    cr_assert_eq(memcmp(p, d, sizeof(d)), 0);
    cr_assert_eq(memcmp(p + sizeof(d), b, sizeof(b)), 0);
    cr_assert_eq(memcmp(p + sizeof(d) + sizeof(b), a, sizeof(a)), 0);
    sdp_release(c, &m);
    struct iovec bad = {NULL, 10};
    cr_assert_eq(sdp_sendv(c, (struct sockaddr *)&sa, sizeof(sa), &bad, 1, 0, NULL), SDP_EINVAL);
    sdp_close(c);
    sdp_close(sv);
}
