/* sdp-bench: libsdp, in inline mode on both sides (the server on a thread
 * of its own, the client on the caller's thread).  The data workloads use
 * pre-shared secrets (sdp_set_default_keys), so no handshake is inside
 * their numbers; the handshake row runs the real in-band TLS 1.3 handshake
 * against the same server.  Two variants: AES-128-GCM (the default) and
 * the insecure null provider, whose difference is what crypto costs. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdp/sdp.h"
#include "transport.h"

/* Fixed benchmark secrets so that --server and --client processes agree.
 * Not a secret anything should rely on. */
static const uint8_t SECRET_C2S[SDP_SECRET_LEN] = "sdp-bench client to server key";
static const uint8_t SECRET_S2C[SDP_SECRET_LEN] = "sdp-bench server to client key";

static int sdp_open_at(const char *host, uint16_t port, enum sdp_cipher cipher, int server, sdp_socket **out,
                       char *err, size_t n)
{
    struct sockaddr_in a;
    if (addr4(host, port, &a) != 0) {
        snprintf(err, n, "bad address %s", host);
        return -1;
    }
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 0;
    cfg.cipher = cipher;
    cfg.allow_insecure = cipher == SDP_CIPHER_NULL_INSECURE;
    /* SDPBENCH_BATCH_SENDS=1: the opt-in one-submit-per-burst sending
     * (sdp_config.batch_sends); both loops here call sdp_recv before they
     * sleep, as it requires. */
    const char *bs = getenv("SDPBENCH_BATCH_SENDS");
    cfg.batch_sends = bs && atoi(bs) > 0;
    int rc = sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, out);
    if (rc == 0)
        rc = sdp_set_default_keys(*out, cipher, server ? SECRET_S2C : SECRET_C2S, server ? SECRET_C2S : SECRET_S2C);
    if (rc != 0) {
        snprintf(err, n, "sdp on %s:%u: %s", host, port, sdp_strerror(rc));
        if (*out)
            sdp_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

struct sdp_server {
    sdp_socket *s;
    int cpu;
    uint16_t port;
    atomic_int stop;
    pthread_t th;
};

static void *sdp_server_main(void *arg)
{
    struct sdp_server *sv = arg;
    pin_self(sv->cpu);
    while (!atomic_load(&sv->stop)) {
        struct sdp_msg m;
        if (sdp_recv(sv->s, &m, 50) != 0)
            continue;
        if (m.kind == SDP_MSG_REQUEST) {
            uint64_t tag;
            uint32_t rlen;
            uint32_t magic = msg_serve(m.data, m.len, &tag, &rlen);
            uint8_t h[MSG_HDR];
            struct iovec iov[2];
            int cnt = msg_iov(iov, h, rlen, magic, rlen, tag, 1);
            sdp_replyv(sv->s, &m, iov, cnt); /* a failure shows up as the client's timeout */
        }
        sdp_release(sv->s, &m);
    }
    return NULL;
}

static struct tr_server *server_start(enum sdp_cipher cipher, const char *host, uint16_t port, int cpu, char *err,
                                      size_t n)
{
    struct sdp_server *sv = calloc(1, sizeof(*sv));
    if (!sv) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    sv->cpu = cpu;
    if (sdp_open_at(host, port, cipher, 1, &sv->s, err, n) != 0) {
        free(sv);
        return NULL;
    }
    /* The AES server also answers handshakes, with an ephemeral P-256
     * certificate like the TLS baseline's. */
    struct sdp_tls_options to = {.ephemeral_cert = 1, .early_data = 1};
    int rc = cipher == SDP_CIPHER_NULL_INSECURE ? 0 : sdp_set_tls(sv->s, &to);
    if (rc != 0) {
        snprintf(err, n, "sdp_set_tls: %s", sdp_strerror(rc));
        sdp_close(sv->s);
        free(sv);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t l;
    sdp_local_addr(sv->s, &ss, &l);
    sv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (pthread_create(&sv->th, NULL, sdp_server_main, sv) != 0) {
        snprintf(err, n, "thread failed");
        sdp_close(sv->s);
        free(sv);
        return NULL;
    }
    return (struct tr_server *)sv;
}

static struct tr_server *aes_server_start(const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    return server_start(SDP_CIPHER_AES128GCM, host, port, cpu, err, n);
}

static struct tr_server *null_server_start(const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    return server_start(SDP_CIPHER_NULL_INSECURE, host, port, cpu, err, n);
}

static uint16_t sdp_server_port(struct tr_server *ts) { return ((struct sdp_server *)ts)->port; }

static void sdp_server_stop(struct tr_server *ts)
{
    struct sdp_server *sv = (struct sdp_server *)ts;
    if (!sv)
        return;
    atomic_store(&sv->stop, 1);
    pthread_join(sv->th, NULL);
    sdp_close(sv->s);
    free(sv);
}

/* ------------------------------------------------------------------ */

#define OUTMAX 4096

struct sdp_conn {
    struct tr_conn base;
    sdp_socket *s;
    struct sockaddr_in peer;
    uint64_t otag[OUTMAX]; /* outstanding by tag % OUTMAX (tags are sequential) */
    uint32_t olen[OUTMAX];
};

static struct tr_conn *conn_open(const struct transport *t, enum sdp_cipher cipher, const char *host,
                                 uint16_t port, char *err, size_t n)
{
    char local[64];
    struct sdp_conn *c = calloc(1, sizeof(*c));
    if (!c || addr4(host, port, &c->peer) != 0 || local_addr_towards(host, local, sizeof(local)) != 0) {
        snprintf(err, n, "bad address %s", host);
        free(c);
        return NULL;
    }
    /* Default keys need a specific local address: the one towards host. */
    if (sdp_open_at(local, 0, cipher, 0, &c->s, err, n) != 0) {
        free(c);
        return NULL;
    }
    c->base.t = t;
    return &c->base;
}

static struct tr_conn *aes_connect(const char *host, uint16_t port, char *err, size_t n)
{
    return conn_open(&tr_sdp, SDP_CIPHER_AES128GCM, host, port, err, n);
}

static struct tr_conn *null_connect(const char *host, uint16_t port, char *err, size_t n)
{
    return conn_open(&tr_sdp_null, SDP_CIPHER_NULL_INSECURE, host, port, err, n);
}

static int sdp_bench_send(struct tr_conn *tc, size_t req_len, size_t resp_len, uint64_t tag)
{
    struct sdp_conn *c = (struct sdp_conn *)tc;
    unsigned i = (unsigned)(tag % OUTMAX);
    if (c->olen[i])
        return 1;
    uint8_t h[MSG_HDR];
    struct iovec iov[2];
    int cnt = msg_iov(iov, h, req_len, MAGIC_REQ, (uint32_t)resp_len, tag, 0);
    int rc = sdp_sendv(c->s, (struct sockaddr *)&c->peer, sizeof(c->peer), iov, cnt, tag, NULL);
    if (rc == SDP_ELIMIT || rc == SDP_ENOMEM)
        return 1;
    if (rc != 0) {
        snprintf(c->base.err, sizeof(c->base.err), "sdp_send: %s", sdp_strerror(rc));
        return -1;
    }
    c->otag[i] = tag;
    c->olen[i] = (uint32_t)resp_len;
    return 0;
}

static uint32_t take(struct sdp_conn *c, uint64_t tag)
{
    unsigned i = (unsigned)(tag % OUTMAX);
    if (!c->olen[i] || c->otag[i] != tag)
        return 0;
    uint32_t len = c->olen[i];
    c->olen[i] = 0;
    return len;
}

static int sdp_bench_poll(struct tr_conn *tc, struct tr_done *out, int max, int64_t timeout_us)
{
    struct sdp_conn *c = (struct sdp_conn *)tc;
    int64_t deadline = now_us() + timeout_us;
    int n = 0;
    while (n < max) {
        struct sdp_msg m;
        if (sdp_recv(c->s, &m, 0) != 0) {
            int64_t left = deadline - now_us();
            if (n > 0 || left <= 0)
                break;
            /* Wake at least every millisecond: the library's timers run
             * only inside our calls in inline mode. */
            if (left > 1000)
                left = 1000;
            struct pollfd p = {.fd = sdp_fd(c->s), .events = POLLIN};
            struct timespec ts = {0, left * 1000};
            ppoll(&p, 1, &ts, NULL);
            continue;
        }
        uint32_t want = m.kind == SDP_MSG_REQUEST ? 0 : take(c, m.cookie);
        if (want) {
            uint64_t tag;
            int ok = m.kind == SDP_MSG_RESPONSE && msg_response_ok(m.data, m.len, want, &tag) && tag == m.cookie;
            if (m.kind == SDP_MSG_FAILED)
                snprintf(c->base.err, sizeof(c->base.err), "RPC failed: %s", sdp_strerror(m.error));
            out[n++] = (struct tr_done){m.cookie, ok};
        }
        sdp_release(c->s, &m);
    }
    return n;
}

static void sdp_bench_close(struct tr_conn *tc)
{
    struct sdp_conn *c = (struct sdp_conn *)tc;
    if (!c)
        return;
    struct sdp_stats st;
    /* SDPBENCH_STATS=1: the client socket's counters, to see why a cell
     * was slow (resends, timeouts, drops). */
    if (getenv("SDPBENCH_STATS") && sdp_get_stats(c->s, &st) == 0)
        fprintf(stderr,
                "\n%s client: requests %llu responses %llu pkts out %llu in %llu retransmitted %llu resends %llu "
                "grants %llu timeouts %llu failed %llu drops %llu (auth %llu replay %llu limit %llu)\n",
                c->base.t->name, (unsigned long long)st.requests_sent, (unsigned long long)st.responses_received,
                (unsigned long long)st.pkts_out, (unsigned long long)st.pkts_in,
                (unsigned long long)st.retransmitted_pkts, (unsigned long long)st.resends_sent,
                (unsigned long long)st.grants_sent, (unsigned long long)st.timeouts, (unsigned long long)st.rpcs_failed,
                (unsigned long long)st.drops_total, (unsigned long long)st.drops_auth,
                (unsigned long long)st.drops_replay, (unsigned long long)st.drops_limit);
    sdp_close(c->s);
    free(c);
}

/* One request from client socket s to peer, sent at t0: *keys_us when the
 * client held keys (a full handshake's end), *resp_us when the response
 * was in.  0, or -1 with err. */
static int first_exchange(sdp_socket *s, const struct sockaddr_in *peer, double *keys_us, double *resp_us, char *err,
                          size_t n)
{
    uint8_t h[MSG_HDR];
    struct iovec iov[2];
    int cnt = msg_iov(iov, h, MSG_HDR, MAGIC_REQ, MSG_HDR, 1, 0);
    struct sdp_stats st0 = {0}, st = {0};
    sdp_get_stats(s, &st0);
    double t0 = now_s();
    int rc = sdp_sendv(s, (const struct sockaddr *)peer, sizeof(*peer), iov, cnt, 1, NULL);
    if (rc != 0) {
        snprintf(err, n, "sdp_sendv: %s", sdp_strerror(rc));
        return -1;
    }
    int got = 0;
    *keys_us = *resp_us = -1;
    while (!got && now_s() - t0 < 5) {
        struct sdp_msg m;
        if (keys_us && *keys_us < 0) {
            sdp_get_stats(s, &st);
            if (st.handshakes_done > st0.handshakes_done)
                *keys_us = (now_s() - t0) * 1e6;
            if (st.handshakes_failed > st0.handshakes_failed) {
                snprintf(err, n, "handshake failed");
                return -1;
            }
        }
        if (sdp_recv(s, &m, *keys_us < 0 ? 0 : 1) != 0) {
            if (*keys_us < 0)
                sdp_process(s, 1);
            continue;
        }
        got = 1;
        *resp_us = (now_s() - t0) * 1e6;
        if (m.kind != SDP_MSG_RESPONSE) {
            snprintf(err, n, "first RPC failed: %s", sdp_strerror(m.error));
            got = -1;
        }
        sdp_release(s, &m);
    }
    if (got == 0)
        snprintf(err, n, "no response within 5 s");
    if (got == 1 && *keys_us < 0)
        *keys_us = *resp_us; /* the keys were there by the response at the latest */
    return got == 1 ? 0 : -1;
}

static int client_socket(int early, sdp_socket **out, char *err, size_t n)
{
    struct sockaddr_in any = {.sin_family = AF_INET};
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    int rc = sdp_open((struct sockaddr *)&any, sizeof(any), &cfg, out);
    struct sdp_tls_options to = {.insecure = 1, .early_data = early};
    if (rc == 0 && (rc = sdp_set_tls(*out, &to)) != 0)
        sdp_close(*out);
    if (rc != 0)
        snprintf(err, n, "sdp client: %s", sdp_strerror(rc));
    return rc ? -1 : 0;
}

/* A fresh client socket's handshake with the server: from sdp_send of the
 * first request until the client holds keys (the point where the request
 * leaves), like the TLS row's connect + handshake until the client has the
 * server's Finished.  A first contact takes one round trip (the server
 * sends a RETRY only under load).  The client does not check the
 * certificate, as the TLS row does not (it is made fresh each run). */
static int sdp_handshake(const char *host, uint16_t port, double *us, char *err, size_t n)
{
    struct sockaddr_in peer;
    if (addr4(host, port, &peer) != 0) {
        snprintf(err, n, "bad address %s", host);
        return -1;
    }
    sdp_socket *s;
    if (client_socket(0, &s, err, n) != 0)
        return -1;
    double resp;
    int rc = first_exchange(s, &peer, us, &resp, err, n);
    sdp_close(s);
    return rc;
}

/* Time to the first response.  Full: a fresh socket (first contact, no
 * RETRY unless the server is loaded).  Resumed: one socket that closes
 * its session before each measurement and comes back with a ticket:
 * 0-RTT, the request rides with the ClientHello. */
static int sdp_first_rpc(const char *host, uint16_t port, int resumed, double *us, char *err, size_t n)
{
    static sdp_socket *rs;
    static uint16_t rs_port;
    struct sockaddr_in peer;
    double keys;
    if (resumed < 0) {
        if (rs)
            sdp_close(rs);
        rs = NULL;
        return 0;
    }
    if (addr4(host, port, &peer) != 0) {
        snprintf(err, n, "bad address %s", host);
        return -1;
    }
    if (!resumed) {
        sdp_socket *s;
        if (client_socket(0, &s, err, n) != 0)
            return -1;
        int rc = first_exchange(s, &peer, &keys, us, err, n);
        sdp_close(s);
        return rc;
    }
    if (rs && rs_port != port) {
        sdp_close(rs);
        rs = NULL;
    }
    if (!rs) {
        if (client_socket(1, &rs, err, n) != 0)
            return -1;
        rs_port = port;
        if (first_exchange(rs, &peer, &keys, us, err, n) != 0) /* the first ticket */
            return -1;
    }
    for (int i = 0; i < 20; i++)
        sdp_process(rs, 1); /* the last handshake's ticket arrives */
    sdp_peer_close(rs, (const struct sockaddr *)&peer, sizeof(peer));
    for (struct sdp_msg m; sdp_recv(rs, &m, 0) == 0;)
        sdp_release(rs, &m);
    struct sdp_stats st0, st;
    sdp_get_stats(rs, &st0);
    if (first_exchange(rs, &peer, &keys, us, err, n) != 0)
        return -1;
    sdp_get_stats(rs, &st);
    if (st.early_sent == st0.early_sent) {
        snprintf(err, n, "no 0-RTT: the resumption did not offer early data");
        return -1;
    }
    if (st.early_resent != st0.early_resent) {
        snprintf(err, n, "the server refused 0-RTT");
        return -1;
    }
    return 0;
}

const struct transport tr_sdp = {
    .name = "sdp",
    .label = "libsdp, AES-128-GCM, inline mode (data rows: pre-shared keys; handshake row: in-band TLS 1.3)",
    .server_start = aes_server_start,
    .server_port = sdp_server_port,
    .server_stop = sdp_server_stop,
    .connect = aes_connect,
    .send = sdp_bench_send,
    .poll = sdp_bench_poll,
    .close = sdp_bench_close,
    .handshake = sdp_handshake,
    .first_rpc = sdp_first_rpc,
};

const struct transport tr_sdp_null = {
    .name = "sdp-null",
    .label = "libsdp, null cipher (insecure: measures what crypto costs)",
    .server_start = null_server_start,
    .server_port = sdp_server_port,
    .server_stop = sdp_server_stop,
    .connect = null_connect,
    .send = sdp_bench_send,
    .poll = sdp_bench_poll,
    .close = sdp_bench_close,
    .no_handshake = "n/a: the null cipher is never negotiated",
};
