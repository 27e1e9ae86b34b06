/* The handshake through the public API on loopback: requests sent before
 * any keys exist wait for the handshake and then go; failures name their
 * cause; nothing is sent in the clear; restarts handshake again. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sdp/sdp.h"

static const uint8_t PSK[32] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

struct server {
    sdp_socket *s;
    pthread_t thread;
    atomic_int stop;
    atomic_long served, early;
    struct sockaddr_in addr;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct sdp_msg m;
        if (sdp_recv(sv->s, &m, 20) != 0)
            continue;
        if (m.kind == SDP_MSG_REQUEST) {
            sdp_reply(sv->s, &m, m.data, m.len);
            atomic_fetch_add(&sv->served, 1);
            if (m.early)
                atomic_fetch_add(&sv->early, 1);
        }
        sdp_release(sv->s, &m);
    }
    return NULL;
}

static void open_port(sdp_socket **s, struct sockaddr_in *addr, unsigned engines, uint16_t port)
{
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = engines;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = port};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, s), 0);
    struct sockaddr_storage la;
    socklen_t ll;
    cr_assert_eq(sdp_local_addr(*s, &la, &ll), 0);
    memcpy(addr, &la, sizeof(*addr));
}

static void open_sock(sdp_socket **s, struct sockaddr_in *addr, unsigned engines)
{
    open_port(s, addr, engines, 0);
}

static void server_start_port(struct server *sv, const struct sdp_tls_options *o, unsigned engines, uint16_t port)
{
    memset(sv, 0, sizeof(*sv));
    open_port(&sv->s, &sv->addr, engines, port);
    cr_assert_eq(sdp_set_tls(sv->s, o), 0);
    cr_assert_eq(pthread_create(&sv->thread, NULL, serve, sv), 0);
}

static void server_start(struct server *sv, const struct sdp_tls_options *o, unsigned engines)
{
    server_start_port(sv, o, engines, 0);
}

static void server_stop(struct server *sv)
{
    atomic_store(&sv->stop, 1);
    pthread_join(sv->thread, NULL);
    sdp_close(sv->s);
}

/* Send n requests at once (before any keys), collect every answer. */
static void burst(sdp_socket *c, const struct sockaddr_in *to, int n, int expect_error)
{
    uint8_t buf[1000];
    for (int i = 0; i < n; i++) {
        memset(buf, i & 0xff, sizeof(buf));
        size_t len = (size_t)(i * 37) % sizeof(buf);
        uint64_t id;
        int rc = sdp_send(c, (const struct sockaddr *)to, sizeof(*to), buf, len, (uint64_t)i, &id);
        cr_assert_eq(rc, 0, "send %d: %s", i, sdp_strerror(rc));
    }
    char *seen = calloc((size_t)n, 1);
    int got = 0;
    for (int spins = 0; got < n && spins < 2000; spins++) {
        struct sdp_msg m;
        if (sdp_recv(c, &m, 10) != 0)
            continue;
        cr_assert_lt(m.cookie, (uint64_t)n);
        cr_assert_eq(seen[m.cookie], 0, "cookie %llu twice", (unsigned long long)m.cookie);
        seen[m.cookie] = 1;
        if (expect_error) {
            cr_assert_eq(m.kind, SDP_MSG_FAILED);
            cr_assert_eq(m.error, expect_error, "got %s, want %s", sdp_strerror(m.error),
                         sdp_strerror(expect_error));
        } else {
            cr_assert_eq(m.kind, SDP_MSG_RESPONSE, "kind %d error %s", m.kind, sdp_strerror(m.error));
            size_t want = (size_t)(m.cookie * 37) % 1000;
            cr_assert_eq(m.len, want);
            for (size_t k = 0; k < m.len; k++)
                cr_assert_eq(((uint8_t *)m.data)[k], (uint8_t)(m.cookie & 0xff));
        }
        sdp_release(c, &m);
        got++;
    }
    cr_assert_eq(got, n, "%d of %d answered", got, n);
    free(seen);
}

static void pin_run(unsigned engines_server, unsigned engines_client)
{
    struct server sv;
    struct sdp_tls_options so = {.ephemeral_cert = 1};
    server_start(&sv, &so, engines_server);
    char fp[65];
    cr_assert_eq(sdp_tls_fingerprint(sv.s, fp), 0);
    cr_assert_eq(strlen(fp), 64);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, engines_client);
    struct sdp_tls_options co = {.pin_sha256_hex = fp};
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    burst(c, &sv.addr, 200, 0);
    burst(c, &sv.addr, 50, 0); /* with keys now */
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.handshakes_done, 1);
    cr_assert_eq(st.handshakes_failed, 0);
    cr_assert_eq(st.waiting_for_keys, 0);
    cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
    cr_assert_eq(st.handshakes_done, 1);
    sdp_close(c);
    server_stop(&sv);
}

/* Retry policy: by default a first contact needs no RETRY round trip;
 * SDP_TLS_RETRY_ALWAYS sends exactly one.  Either way the keys agree. */
static void retry_policy_run(int always, uint64_t retries)
{
    struct server sv;
    struct sdp_tls_options so = {.ephemeral_cert = 1, .always_retry = always};
    server_start(&sv, &so, 0);
    char fp[65];
    cr_assert_eq(sdp_tls_fingerprint(sv.s, fp), 0);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    struct sdp_tls_options co = {.pin_sha256_hex = fp};
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    burst(c, &sv.addr, 20, 0);
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
    cr_assert_eq(st.handshakes_done, 1);
    cr_assert_eq(st.handshake_retries, retries, "always_retry %d: %llu RETRYs", always,
                 (unsigned long long)st.handshake_retries);
    sdp_close(c);
    server_stop(&sv);
}

Test(api_tls, first_contact_without_retry_by_default) { retry_policy_run(0, 0); }
Test(api_tls, retry_always_policy_sends_one) { retry_policy_run(1, 1); }

Test(api_tls, pinned_ephemeral_inline) { pin_run(0, 0); }
Test(api_tls, pinned_ephemeral_threaded) { pin_run(2, 2); }

Test(api_tls, psk_both_ways)
{
    struct server sv;
    struct sdp_tls_options o = {.psk = PSK, .psk_len = sizeof(PSK), .psk_identity = "client-1"};
    server_start(&sv, &o, 0);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    cr_assert_eq(sdp_set_tls(c, &o), 0);
    burst(c, &sv.addr, 20, 0);
    sdp_close(c);
    server_stop(&sv);
}

Test(api_tls, wrong_pin_fails_every_waiting_rpc_with_epin)
{
    struct server sv;
    struct sdp_tls_options so = {.ephemeral_cert = 1};
    server_start(&sv, &so, 0);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    struct sdp_tls_options co = {.pin_sha256_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    burst(c, &sv.addr, 10, SDP_EPIN);
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
    cr_assert_eq(st.requests_received, 0, "nothing reached the server's application");
    sdp_close(c);
    server_stop(&sv);
}

Test(api_tls, psk_mismatch_fails_with_epsk)
{
    struct server sv;
    struct sdp_tls_options so = {.psk = PSK, .psk_len = sizeof(PSK), .psk_identity = "client-1"};
    server_start(&sv, &so, 0);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    uint8_t other[32];
    memcpy(other, PSK, sizeof(other));
    other[5] ^= 0x80;
    struct sdp_tls_options co = {.psk = other, .psk_len = sizeof(other), .psk_identity = "client-1"};
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    burst(c, &sv.addr, 5, SDP_EPSK);
    sdp_close(c);
    server_stop(&sv);
}

Test(api_tls, no_server_times_out)
{
    /* A port nobody answers on: the waiting RPCs fail with a time-out, not
     * silently, and within the handshake's bound. */
    sdp_socket *c, *dead;
    struct sockaddr_in ca, da;
    open_sock(&dead, &da, 0);
    sdp_close(dead); /* the port is now closed */
    open_sock(&c, &ca, 0);
    struct sdp_tls_options co = {.insecure = 1};
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    burst(c, &da, 3, SDP_ETIMEDOUT);
    sdp_close(c);
}

Test(api_tls, no_credentials_is_refused)
{
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    struct sdp_tls_options none = {0};
    cr_assert_eq(sdp_set_tls(c, &none), SDP_EINVAL);
    struct sdp_tls_options badpin = {.pin_sha256_hex = "abc"};
    cr_assert_eq(sdp_set_tls(c, &badpin), SDP_EINVAL);
    struct sdp_tls_options nofile = {.cert_file = "/nonexistent.pem", .key_file = "/nonexistent.pem"};
    cr_assert_eq(sdp_set_tls(c, &nofile), SDP_ESYSTEM);
    /* A server-only socket cannot start handshakes: sends still say ENOKEY. */
    struct sdp_tls_options srv = {.ephemeral_cert = 1};
    cr_assert_eq(sdp_set_tls(c, &srv), 0);
    cr_assert_eq(sdp_set_tls(c, &srv), SDP_EINVAL, "only once");
    struct sockaddr_in to = ca;
    to.sin_port = htons(9);
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&to, sizeof(to), "x", 1, 0, NULL), SDP_ENOKEY);
    sdp_close(c);
}

/* Send n echo requests and keep going until every one came back once;
 * requests that fail with SDP_EUNKNOWN (their session was replaced) are
 * sent again, as an application with idempotent requests would.  Returns
 * how many had to be sent again. */
static int burst_retry(sdp_socket *c, const struct sockaddr_in *to, int n)
{
    uint8_t buf[100];
    int resent = 0, got = 0;
    char *seen = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) {
        memset(buf, i & 0xff, sizeof(buf));
        cr_assert_eq(sdp_send(c, (const struct sockaddr *)to, sizeof(*to), buf, sizeof(buf), (uint64_t)i, NULL), 0);
    }
    for (int spins = 0; got < n && spins < 3000; spins++) {
        struct sdp_msg m;
        if (sdp_recv(c, &m, 10) != 0)
            continue;
        cr_assert_lt(m.cookie, (uint64_t)n);
        if (m.kind == SDP_MSG_FAILED) {
            cr_assert(m.error == SDP_EUNKNOWN || m.error == SDP_ETIMEDOUT, "failed: %s", sdp_strerror(m.error));
            memset(buf, (int)(m.cookie & 0xff), sizeof(buf));
            cr_assert_eq(sdp_send(c, (const struct sockaddr *)to, sizeof(*to), buf, sizeof(buf), m.cookie, NULL), 0);
            resent++;
            continue;
        }
        cr_assert_eq(m.kind, SDP_MSG_RESPONSE);
        cr_assert_eq(seen[m.cookie], 0, "cookie %llu answered twice", (unsigned long long)m.cookie);
        seen[m.cookie] = 1;
        cr_assert_eq(m.len, sizeof(buf));
        cr_assert_eq(((uint8_t *)m.data)[0], (uint8_t)(m.cookie & 0xff));
        sdp_release(c, &m);
        got++;
    }
    cr_assert_eq(got, n, "%d of %d answered", got, n);
    free(seen);
    return resent;
}

static const struct sdp_tls_options PSK_OPTS = {.psk = PSK, .psk_len = sizeof(PSK), .psk_identity = "c"};

Test(api_tls, server_restart_mid_traffic)
{
    struct server sv;
    server_start(&sv, &PSK_OPTS, 0);
    uint16_t port = sv.addr.sin_port;
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    cr_assert_eq(sdp_set_tls(c, &PSK_OPTS), 0);
    cr_assert_eq(burst_retry(c, &sv.addr, 50), 0);
    /* The server restarts on the same port with no memory of us. */
    server_stop(&sv);
    server_start_port(&sv, &PSK_OPTS, 0, port);
    burst_retry(c, &sv.addr, 100); /* old-session requests fail and are sent again */
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.handshakes_done, 2, "the client handshook again (%llu)", (unsigned long long)st.handshakes_done);
    /* The new session loses nothing. */
    cr_assert_eq(burst_retry(c, &sv.addr, 200), 0);
    sdp_close(c);
    server_stop(&sv);
}

Test(api_tls, client_restart_mid_traffic)
{
    struct server sv;
    server_start(&sv, &PSK_OPTS, 0);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 0);
    uint16_t cport = ca.sin_port;
    cr_assert_eq(sdp_set_tls(c, &PSK_OPTS), 0);
    cr_assert_eq(burst_retry(c, &sv.addr, 50), 0);
    sdp_close(c);
    /* Same address and port, fresh process state. */
    open_port(&c, &ca, 0, cport);
    cr_assert_eq(sdp_set_tls(c, &PSK_OPTS), 0);
    cr_assert_eq(burst_retry(c, &sv.addr, 200), 0, "the new session loses nothing");
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
    cr_assert_eq(st.handshakes_done, 2);
    sdp_close(c);
    server_stop(&sv);
}

/* ---- 0-RTT ---- */

/* A UDP relay between one client and the server that can record what the
 * client sends and replay it later, from the same address. */
struct relay {
    int fd;
    struct sockaddr_in addr, server, client;
    int have_client;
    atomic_int stop, recording, nrec;
    uint8_t rec[64][2048];
    size_t rec_len[64];
    pthread_t thread;
};

static void *relay_run(void *arg)
{
    struct relay *r = arg;
    static __thread uint8_t buf[65536];
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        if (poll(&pfd, 1, 10) <= 0)
            continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(r->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        if (from.sin_port == r->server.sin_port) {
            if (r->have_client)
                sendto(r->fd, buf, (size_t)n, 0, (struct sockaddr *)&r->client, sizeof(r->client));
            continue;
        }
        r->client = from;
        r->have_client = 1;
        int k = atomic_load(&r->nrec);
        if (atomic_load(&r->recording) && k < 64 && (size_t)n <= sizeof(r->rec[0])) {
            memcpy(r->rec[k], buf, (size_t)n);
            r->rec_len[k] = (size_t)n;
            atomic_store(&r->nrec, k + 1);
        }
        sendto(r->fd, buf, (size_t)n, 0, (struct sockaddr *)&r->server, sizeof(r->server));
    }
    return NULL;
}

static void relay_start(struct relay *r, const struct sockaddr_in *server)
{
    memset(r, 0, sizeof(*r));
    r->server = *server;
    r->fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq(r->fd, 0);
    r->addr.sin_family = AF_INET;
    r->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(r->fd, (struct sockaddr *)&r->addr, sizeof(r->addr)), 0);
    socklen_t l = sizeof(r->addr);
    cr_assert_eq(getsockname(r->fd, (struct sockaddr *)&r->addr, &l), 0);
    cr_assert_eq(pthread_create(&r->thread, NULL, relay_run, r), 0);
}

static void relay_replay(struct relay *r)
{
    for (int i = 0; i < atomic_load(&r->nrec); i++)
        sendto(r->fd, r->rec[i], r->rec_len[i], 0, (struct sockaddr *)&r->server, sizeof(r->server));
}

static void relay_stop(struct relay *r)
{
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

static void zero_rtt_run(unsigned engines_server, unsigned engines_client)
{
    struct server sv;
    struct sdp_tls_options so = {.ephemeral_cert = 1, .early_data = 1};
    server_start(&sv, &so, engines_server);
    char fp[65];
    cr_assert_eq(sdp_tls_fingerprint(sv.s, fp), 0);
    struct relay r;
    relay_start(&r, &sv.addr);
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, engines_client);
    struct sdp_tls_options co = {.pin_sha256_hex = fp, .early_data = 1};
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    const struct sockaddr *to = (const struct sockaddr *)&r.addr;

    /* A full handshake leaves a ticket (it follows the server's first
     * packets: give it a moment to arrive). */
    burst(c, &r.addr, 1, 0);
    for (int i = 0; i < 20; i++)
        sdp_process(c, 10); /* inline: the client must run to take the ticket in */
    usleep(100000);
    struct sdp_stats st, sst;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.handshakes_done, 1);
    cr_assert_eq(st.early_sent, 0);
    /* Closing the session makes the next send resume: its requests go
     * as 0-RTT data with the ClientHello. */
    cr_assert_eq(sdp_peer_close(c, to, sizeof(r.addr)), 0);
    cr_assert_eq(sdp_peer_close(c, (const struct sockaddr *)&ca, sizeof(ca)), SDP_EINVAL);
    atomic_store(&r.recording, 1);
    burst(c, &r.addr, 3, 0);
    atomic_store(&r.recording, 0);
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.handshakes_done, 2);
    /* Inline, each send runs a round: on loopback the handshake may be
     * over before the last ones, which then go under 1-RTT keys. */
    long early = (long)st.early_sent;
    cr_assert(early >= 1 && early <= 3, "early_sent %ld", early);
    cr_assert_eq(st.early_resent, 0);
    for (int i = 0; i < 200 && atomic_load(&sv.early) < early; i++)
        usleep(5000); /* the server counts after it replied */
    cr_assert_eq(atomic_load(&sv.early), early, "the server saw %ld early requests", atomic_load(&sv.early));
    cr_assert_eq(sdp_get_stats(sv.s, &sst), 0);
    cr_assert_eq(sst.early_received, (uint64_t)early);
    cr_assert_gt(atomic_load(&r.nrec), 1);

    /* The recorded flight again, while the server still opens 0-RTT data
     * of that session, and after it forgot its 0-RTT key: never delivered
     * a second time. */
    for (int i = 0; i < 200 && atomic_load(&sv.served) < 4; i++)
        usleep(5000); /* the server counts after it replied */
    long served = atomic_load(&sv.served);
    cr_assert_eq(served, 4);
    for (int round = 0; round < 2; round++) {
        relay_replay(&r);
        usleep(400000);
        cr_assert_eq(atomic_load(&sv.served), served, "replay round %d was served", round);
        if (round == 0)
            usleep(2000000);
    }
    cr_assert_eq(sdp_get_stats(sv.s, &sst), 0);
    cr_assert_eq(sst.early_received, (uint64_t)early);
    cr_assert_gt(sst.drops_total, 0, "the replayed packets were dropped and counted");
    /* The session goes on, no longer early. */
    burst(c, &r.addr, 5, 0);
    cr_assert_eq(atomic_load(&sv.early), early);
    sdp_close(c);
    relay_stop(&r);
    server_stop(&sv);
}

Test(api_tls, zero_rtt_accepted_once_refused_on_replay_threaded) { zero_rtt_run(1, 1); }
Test(api_tls, zero_rtt_accepted_once_refused_on_replay_inline) { zero_rtt_run(0, 0); }

/* A restarted server cannot read the old ticket: it refuses 0-RTT, and
 * the client sends the same requests again under the new session's keys.
 * Each is answered exactly once. */
Test(api_tls, zero_rtt_refused_by_restarted_server_is_sent_again)
{
    /* The restarted server makes a new ephemeral certificate: the client
     * runs without authentication here (insecure), which is not the point. */
    struct sdp_tls_options so = {.ephemeral_cert = 1, .early_data = 1};
    struct sdp_tls_options co = {.insecure = 1, .early_data = 1};
    struct server sv;
    server_start(&sv, &so, 1);
    uint16_t port = sv.addr.sin_port;
    sdp_socket *c;
    struct sockaddr_in ca;
    open_sock(&c, &ca, 1);
    cr_assert_eq(sdp_set_tls(c, &co), 0);
    burst(c, &sv.addr, 1, 0);
    usleep(200000); /* the ticket (threaded client) */
    server_stop(&sv);
    cr_assert_eq(sdp_peer_close(c, (const struct sockaddr *)&sv.addr, sizeof(sv.addr)), 0);
    server_start_port(&sv, &so, 1, port);
    burst(c, &sv.addr, 4, 0);
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(c, &st), 0);
    cr_assert_eq(st.handshakes_done, 2);
    /* A slow machine may finish the handshake before the last sends, which
     * then go under 1-RTT keys: at least the first went early. */
    cr_assert(st.early_sent >= 1 && st.early_sent <= 4, "the ticket offered 0-RTT: %llu",
              (unsigned long long)st.early_sent);
    cr_assert_eq(st.early_resent, st.early_sent, "every refused early request was sent again");
    for (int i = 0; i < 200 && atomic_load(&sv.served) < 4; i++)
        usleep(5000); /* the server counts after it replied */
    cr_assert_eq(atomic_load(&sv.early), 0);
    cr_assert_eq(atomic_load(&sv.served), 4);
    sdp_close(c);
    server_stop(&sv);
}

/* A full peer table takes a new peer once the server closes an old one:
 * the slot is reused, and the new peer is served. */
Test(api_tls, closed_peer_slot_is_reused)
{
    struct server sv;
    memset(&sv, 0, sizeof(sv));
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 1;
    cfg.max_peers = 2;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &sv.s), 0);
    struct sockaddr_storage la;
    socklen_t ll;
    cr_assert_eq(sdp_local_addr(sv.s, &la, &ll), 0);
    memcpy(&sv.addr, &la, sizeof(sv.addr));
    struct sdp_tls_options so = {.ephemeral_cert = 1};
    cr_assert_eq(sdp_set_tls(sv.s, &so), 0);
    cr_assert_eq(pthread_create(&sv.thread, NULL, serve, &sv), 0);
    char fp[65];
    cr_assert_eq(sdp_tls_fingerprint(sv.s, fp), 0);
    struct sdp_tls_options co = {.pin_sha256_hex = fp};
    sdp_socket *c[3];
    struct sockaddr_in ca[3];
    for (int i = 0; i < 3; i++) {
        open_sock(&c[i], &ca[i], 1);
        cr_assert_eq(sdp_set_tls(c[i], &co), 0);
    }
    burst(c[0], &sv.addr, 5, 0);
    burst(c[1], &sv.addr, 5, 0);
    cr_assert_eq(sdp_peer_close(sv.s, (const struct sockaddr *)&ca[0], sizeof(ca[0])), 0);
    cr_assert_eq(sdp_peer_close(sv.s, (const struct sockaddr *)&ca[0], sizeof(ca[0])), SDP_EINVAL, "gone already");
    burst(c[2], &sv.addr, 5, 0); /* would find the table full without the reuse */
    burst(c[1], &sv.addr, 5, 0); /* the other peer kept its session */
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(sv.s, &st), 0);
    cr_assert_eq(st.handshakes_done, 3);
    for (int i = 0; i < 3; i++)
        sdp_close(c[i]);
    server_stop(&sv);
}
