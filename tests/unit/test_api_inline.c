/* Inline mode under an event loop (the Redis integration's contract): sdp_fd
 * stays readable while sdp_recv has a message, even when a send or reply
 * drained it; and a request the server holds far beyond the RPC timeout
 * stays alive (BUSY keep-alive) until it is answered.  Both ends run on
 * this one thread, each call driving its own engine. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "sdp/sdp.h"

static const uint8_t C2S[SDP_SECRET_LEN] = {21, 22, 23};
static const uint8_t S2C[SDP_SECRET_LEN] = {31, 32, 33};

static int batch_next; /* open_inline: set sdp_config.batch_sends on the next socket */

static sdp_socket *open_inline(uint32_t rpc_timeout_ms, struct sockaddr_in *bound, int server)
{
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 0;
    cfg.batch_sends = batch_next;
    batch_next = 0;
    if (rpc_timeout_ms)
        cfg.rpc_timeout_ms = rpc_timeout_ms;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sdp_socket *s;
    int rc = sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s);
    cr_assert_eq(rc, 0, "sdp_open: %s", sdp_strerror(rc));
    struct sockaddr_storage ss;
    socklen_t l;
    cr_assert_eq(sdp_local_addr(s, &ss, &l), 0);
    memcpy(bound, &ss, sizeof(*bound));
    cr_assert_eq(server ? sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, S2C, C2S)
                        : sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, C2S, S2C), 0);
    return s;
}

static int readable(sdp_socket *s, int timeout_ms)
{
    struct pollfd p = {.fd = sdp_fd(s), .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait the way an event loop does: poll the fd, then process and receive. */
static int loop_recv(sdp_socket *s, struct sdp_msg *m, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (!readable(s, 10))
            continue;
        sdp_process(s, 0);
        if (sdp_recv(s, m, 0) == 0)
            return 0;
    }
    return SDP_EAGAIN;
}

/* A request's arrival alone must make sdp_fd readable for a thread that
 * sleeps in poll (no timer, no other fd to wake it). */
Test(api_inline, arrival_wakes_a_sleeping_poll, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    sdp_socket *sv = open_inline(0, &sa, 1);
    sdp_socket *c = open_inline(0, &ca, 0);
    for (int i = 0; i < 20; i++) {
        sdp_process(sv, 0); /* drains the fd: the next poll has to sleep */
        cr_assert(!readable(sv, 0), "round %d: readable with nothing sent", i);
        uint64_t id;
        cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "x", 1, 1, &id), 0);
        long long t0 = now_ms();
        cr_assert(readable(sv, 2000), "round %d: the request arrived but poll slept through it", i);
        cr_assert(now_ms() - t0 < 1000, "round %d: woke only after %lld ms", i, now_ms() - t0);
        struct sdp_msg m;
        sdp_process(sv, 0);
        cr_assert_eq(sdp_recv(sv, &m, 0), 0);
        cr_assert_eq(sdp_reply(sv, &m, "y", 1), 0);
        sdp_release(sv, &m);
        int rc = SDP_EAGAIN;
        for (int k = 0; k < 400 && rc == SDP_EAGAIN; k++)
            rc = sdp_recv(c, &m, 5);
        cr_assert_eq(rc, 0);
        sdp_release(c, &m);
    }
    sdp_close(c);
    sdp_close(sv);
}

Test(api_inline, fd_stays_readable_after_a_reply_drained_it, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    sdp_socket *sv = open_inline(0, &sa, 1);
    sdp_socket *c = open_inline(0, &ca, 0);
    uint64_t ida, idb;
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "A", 1, 1, &ida), 0);
    struct sdp_msg a, b;
    cr_assert_eq(loop_recv(sv, &a, 5000), 0);
    cr_assert_eq(a.len, 1);
    /* B reaches the server's socket (its completion makes the fd readable)
     * before the server answers A; the reply's own round takes B in. */
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "B", 1, 2, &idb), 0);
    cr_assert(readable(sv, 5000), "B never signalled the fd");
    cr_assert_eq(sdp_reply(sv, &a, "a", 1), 0);
    sdp_release(sv, &a);
    cr_assert(readable(sv, 0), "a message waits for sdp_recv but sdp_fd is not readable");
    sdp_process(sv, 0);
    cr_assert_eq(sdp_recv(sv, &b, 0), 0);
    cr_assert_eq(b.len, 1);
    cr_assert_eq(((const char *)b.data)[0], 'B');
    sdp_release(sv, &b);
    sdp_close(c);
    sdp_close(sv);
}

/* A blocking command (Redis BLPOP): the server holds the request for six
 * RPC timeouts while both ends keep running; the client neither fails nor
 * resends the request, and gets the late response. */
Test(api_inline, held_request_outlives_the_rpc_timeout, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    sdp_socket *sv = open_inline(0, &sa, 1);
    sdp_socket *c = open_inline(200, &ca, 0);
    uint64_t id;
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "BLPOP", 5, 7, &id), 0);
    struct sdp_msg req, m;
    cr_assert_eq(loop_recv(sv, &req, 5000), 0);
    long long until = now_ms() + 1200;
    while (now_ms() < until) {
        sdp_process(sv, 0);
        int rc = sdp_recv(c, &m, 5);
        cr_assert_eq(rc, SDP_EAGAIN, "the client got kind %d (%s) while the server held the request",
                     rc == 0 ? (int)m.kind : -1, rc == 0 ? sdp_strerror(m.error) : sdp_strerror(rc));
    }
    struct sdp_stats st;
    cr_assert_eq(sdp_get_stats(sv, &st), 0);
    cr_assert_eq(st.requests_received, 1, "the request was delivered twice");
    cr_assert_eq(sdp_reply(sv, &req, "late", 4), 0);
    sdp_release(sv, &req);
    int rc = SDP_EAGAIN;
    for (int i = 0; i < 1000 && rc == SDP_EAGAIN; i++) {
        sdp_process(sv, 0);
        rc = sdp_recv(c, &m, 5);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(m.kind, SDP_MSG_RESPONSE, "kind %d: %s", m.kind, sdp_strerror(m.error));
    cr_assert_eq(m.rpc_id, id);
    cr_assert_eq(m.len, 4);
    cr_assert_eq(memcmp(m.data, "late", 4), 0);
    sdp_release(c, &m);
    sdp_close(c);
    sdp_close(sv);
}

Test(api_inline, notify_makes_the_fd_ready_once, .timeout = 30)
{
    struct sockaddr_in sa;
    sdp_socket *s = open_inline(0, &sa, 1);
    /* Settle: nothing pending, the fd is quiet. */
    for (int i = 0; i < 5; i++)
        sdp_process(s, 0);
    cr_assert_not(readable(s, 0), "an idle socket's fd reads ready");
    sdp_notify(s);
    cr_assert(readable(s, 1000), "sdp_notify did not make the fd ready");
    sdp_process(s, 0); /* the round takes the notification in */
    sdp_process(s, 0);
    cr_assert_not(readable(s, 0), "the notification fires once, then the fd is quiet again");
    sdp_close(s);
}

/* Corked, replies wait in the server (no round runs, nothing reaches the
 * client); uncorking sends them all in one round. */
Test(api_inline, cork_holds_replies_until_uncorked, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    sdp_socket *sv = open_inline(0, &sa, 1);
    sdp_socket *c = open_inline(0, &ca, 0);
    enum { N = 20 };
    struct sdp_msg req[N], m;
    for (int i = 0; i < N; i++)
        cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "q", 1, (uint64_t)i, NULL), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(loop_recv(sv, &req[i], 5000), 0, "request %d", i);
    struct sdp_stats before, after;
    cr_assert_eq(sdp_get_stats(sv, &before), 0);
    cr_assert_eq(sdp_cork(sv, 1), 0);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(sdp_reply(sv, &req[i], "a", 1), 0);
        sdp_release(sv, &req[i]);
    }
    cr_assert_eq(sdp_get_stats(sv, &after), 0);
    cr_assert_eq(after.pkts_out, before.pkts_out, "a corked reply ran a round and sent");
    cr_assert_eq(sdp_recv(c, &m, 100), SDP_EAGAIN, "a reply got out while corked");
    cr_assert_eq(sdp_cork(sv, 0), 0);
    cr_assert_eq(sdp_get_stats(sv, &after), 0);
    cr_assert_eq(after.responses_sent - before.responses_sent, N);
    cr_assert_geq(after.pkts_out - before.pkts_out, 1);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(sdp_recv(c, &m, 2000), 0, "response %d of %d", i, N);
        cr_assert_eq(m.kind, SDP_MSG_RESPONSE);
        sdp_release(c, &m);
    }
    sdp_close(c);
    sdp_close(sv);
}

/* batch_sends: replies wait in the socket (nothing sent) until the
 * server's next round, which sends them all; the 64th forces them out. */
Test(api_inline, batch_sends_go_out_at_the_next_round, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    batch_next = 1;
    sdp_socket *sv = open_inline(0, &sa, 1);
    sdp_socket *c = open_inline(0, &ca, 0);
    enum { N = 70 };
    static struct sdp_msg req[N];
    struct sdp_msg m;
    for (int i = 0; i < N; i++)
        cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "q", 1, (uint64_t)i, NULL), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(loop_recv(sv, &req[i], 5000), 0, "request %d", i);
    struct sdp_stats before, after;
    cr_assert_eq(sdp_get_stats(sv, &before), 0);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(sdp_reply(sv, &req[i], "a", 1), 0);
        sdp_release(sv, &req[i]);
    }
    cr_assert_eq(sdp_get_stats(sv, &after), 0);
    cr_assert_eq(after.pkts_out, before.pkts_out, "a batched reply entered the kernel at once");
    cr_assert_eq(sdp_recv(c, &m, 100), SDP_EAGAIN, "a batched reply got out before the next round");
    cr_assert_eq(sdp_recv(sv, &m, 0), SDP_EAGAIN); /* the round: sends the ten */
    cr_assert_eq(sdp_get_stats(sv, &after), 0);
    cr_assert_geq(after.pkts_out - before.pkts_out, 1);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(sdp_recv(c, &m, 2000), 0, "response %d", i);
        cr_assert_eq(m.kind, SDP_MSG_RESPONSE);
        sdp_release(c, &m);
    }
    /* The other 60: the round reset the count, so all 60 wait (under the
     * cap of 64); sdp_cork(s, 0) sends them. */
    cr_assert_eq(sdp_get_stats(sv, &before), 0);
    for (int i = 10; i < N; i++) {
        cr_assert_eq(sdp_reply(sv, &req[i], "a", 1), 0);
        sdp_release(sv, &req[i]);
    }
    cr_assert_eq(sdp_get_stats(sv, &after), 0);
    cr_assert_eq(after.pkts_out, before.pkts_out, "fewer than 64 batched replies were sent");
    cr_assert_eq(sdp_cork(sv, 0), 0); /* sends what the batch holds */
    cr_assert_eq(sdp_get_stats(sv, &after), 0);
    cr_assert_geq(after.pkts_out - before.pkts_out, 1);
    for (int i = 10; i < N; i++) {
        cr_assert_eq(sdp_recv(c, &m, 2000), 0, "response %d", i);
        sdp_release(c, &m);
    }
    sdp_close(c);
    sdp_close(sv);
}

/* The cap: the 64th batched send forces the batch out without a round. */
Test(api_inline, batch_sends_cap_forces_a_submit, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    batch_next = 1;
    sdp_socket *c = open_inline(0, &ca, 0);
    sdp_socket *sv = open_inline(0, &sa, 1);
    struct sdp_stats before, after;
    cr_assert_eq(sdp_get_stats(c, &before), 0);
    for (int i = 0; i < 63; i++)
        cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "q", 1, (uint64_t)i, NULL), 0);
    cr_assert_eq(sdp_get_stats(c, &after), 0);
    cr_assert_eq(after.pkts_out, before.pkts_out, "a batched request was sent before the cap");
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "q", 1, 63, NULL), 0);
    cr_assert_eq(sdp_get_stats(c, &after), 0);
    cr_assert_geq(after.pkts_out - before.pkts_out, 64, "the 64th send did not flush the batch");
    struct sdp_msg m;
    for (int i = 0; i < 64; i++) {
        cr_assert_eq(loop_recv(sv, &m, 5000), 0, "request %d", i);
        sdp_release(sv, &m);
    }
    sdp_close(c);
    sdp_close(sv);
}

struct waiter {
    sdp_socket *c;
    int rc;
    long long at;
};

static void *wait_response(void *arg)
{
    struct waiter *w = arg;
    struct sdp_msg m;
    w->rc = sdp_recv(w->c, &m, 3000);
    w->at = now_ms();
    if (w->rc == 0)
        sdp_release(w->c, &m);
    return NULL;
}

/* A batched reply goes out in the enter that starts a blocking
 * sdp_recv's sleep, not when the sleep ends. */
Test(api_inline, batched_reply_goes_out_as_recv_sleeps, .timeout = 30)
{
    struct sockaddr_in sa, ca;
    batch_next = 1;
    sdp_socket *sv = open_inline(0, &sa, 1);
    sdp_socket *c = open_inline(0, &ca, 0);
    struct sdp_msg req, m;
    cr_assert_eq(sdp_send(c, (struct sockaddr *)&sa, sizeof(sa), "q", 1, 1, NULL), 0);
    cr_assert_eq(sdp_recv(c, &m, 0), SDP_EAGAIN); /* the client's round sends it */
    cr_assert_eq(loop_recv(sv, &req, 5000), 0);
    cr_assert_eq(sdp_reply(sv, &req, "a", 1), 0);
    sdp_release(sv, &req);
    struct waiter w = {.c = c};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, wait_response, &w), 0);
    long long t0 = now_ms();
    cr_assert_eq(sdp_recv(sv, &m, 1000), SDP_EAGAIN);
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, 0, "no response");
    cr_assert_lt(w.at - t0, 700, "the reply waited for the server's sleep to end (%lld ms)", w.at - t0);
    sdp_close(c);
    sdp_close(sv);
}
