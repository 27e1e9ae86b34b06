/* sdp-bench: raw UDP, the floor.  A message goes out as back-to-back
 * datagrams of up to CHUNK bytes, each with a 16-byte chunk header; there is
 * no encryption, no flow control and no loss recovery, so a lost datagram
 * fails its RPC (reported, never retried). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

#define CHUNK 65000 /* message bytes per datagram; fits loopback's 64 KiB MTU */
#define CHDR 16
#define SOCKBUF (4 << 20)
#define MAX_SENDERS 64

struct chunk_hdr {
    uint32_t msg_len, off;
    uint64_t tag;
};

static void chdr_put(uint8_t *p, uint32_t msg_len, uint32_t off, uint64_t tag)
{
    /* The message header codec is little-endian too; reuse its layout. */
    hdr_put(p, msg_len, off, tag);
}

static void chdr_get(const uint8_t *p, struct chunk_hdr *c)
{
    struct msg_hdr h;
    hdr_get(p, &h);
    *c = (struct chunk_hdr){h.magic, h.resp_len, h.tag};
}

static int udp_socket(int nonblock)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    int sz = SOCKBUF;
    if (fd >= 0) {
        /* Loopback delivers a whole window at once; the default buffers
         * would drop most of a 1 MiB message. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    }
    return fd;
}

/* Send the message hdr+body (len bytes in all) as chunks. */
static int send_msg(int fd, const struct sockaddr *to, socklen_t to_len, const uint8_t *mhdr, const uint8_t *body,
                    size_t len, uint64_t tag)
{
    for (size_t off = 0; off < len || off == 0; off += CHUNK) {
        size_t end = off + CHUNK < len ? off + CHUNK : len;
        uint8_t ch[CHDR];
        chdr_put(ch, (uint32_t)len, (uint32_t)off, tag);
        struct iovec iov[3];
        int n = 0;
        iov[n++] = (struct iovec){ch, CHDR};
        if (off < MSG_HDR)
            iov[n++] = (struct iovec){(void *)(mhdr + off), MSG_HDR - off};
        size_t b0 = off > MSG_HDR ? off - MSG_HDR : 0, b1 = end - MSG_HDR;
        if (b1 > b0)
            iov[n++] = (struct iovec){(void *)(body + b0), b1 - b0};
        struct msghdr m = {.msg_name = (void *)to, .msg_namelen = to_len, .msg_iov = iov, .msg_iovlen = (size_t)n};
        while (sendmsg(fd, &m, MSG_NOSIGNAL) < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
                return -1;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 10);
        }
        if (end == len)
            break;
    }
    return 0;
}

/* Reassembly of one message at a time per sender: a sender's chunks arrive
 * in order on one path, so a gap means a lost datagram. */
struct reasm {
    uint64_t tag;
    uint32_t len, got;
    uint8_t *buf;
    size_t cap;
};

/* Feeds one datagram; returns 1 with *msg, *len set when a message is
 * whole.  *lost_tag is set and *lost to 1 when a message in progress was
 * abandoned because of a gap. */
static int reasm_feed(struct reasm *r, const uint8_t *dg, size_t n, const uint8_t **msg, size_t *len, int *lost,
                      uint64_t *lost_tag)
{
    *lost = 0;
    if (n < CHDR)
        return 0;
    struct chunk_hdr c;
    chdr_get(dg, &c);
    size_t data = n - CHDR;
    if (c.msg_len > MSG_MAX || (size_t)c.off + data > c.msg_len)
        return 0;
    if (r->got && (c.tag != r->tag || c.off != r->got)) {
        *lost_tag = r->tag;
        *lost = 1;
        r->got = 0;
    }
    if (c.off == 0 && data == c.msg_len) { /* a whole message in one datagram */
        *msg = dg + CHDR;
        *len = data;
        return 1;
    }
    if (c.off != r->got) /* the rest of a message whose start was lost */
        return 0;
    if (c.off == 0) {
        if (r->cap < c.msg_len) {
            uint8_t *b = realloc(r->buf, c.msg_len);
            if (!b)
                return 0;
            r->buf = b;
            r->cap = c.msg_len;
        }
        r->tag = c.tag;
        r->len = c.msg_len;
    }
    memcpy(r->buf + c.off, dg + CHDR, data);
    r->got += (uint32_t)data;
    if (r->got < r->len)
        return 0;
    r->got = 0;
    *msg = r->buf;
    *len = r->len;
    return 1;
}

/* ------------------------------------------------------------------ */

struct udp_server {
    int fd, cpu;
    uint16_t port;
    atomic_int stop;
    pthread_t th;
    struct sockaddr_in peer[MAX_SENDERS];
    struct reasm r[MAX_SENDERS];
    uint64_t last_use[MAX_SENDERS], clock;
};

static struct reasm *sender(struct udp_server *s, const struct sockaddr_in *from)
{
    int oldest = 0;
    for (int i = 0; i < MAX_SENDERS; i++) {
        if (s->last_use[i] && s->peer[i].sin_port == from->sin_port &&
            s->peer[i].sin_addr.s_addr == from->sin_addr.s_addr) {
            s->last_use[i] = ++s->clock;
            return &s->r[i];
        }
        if (s->last_use[i] < s->last_use[oldest])
            oldest = i;
    }
    s->peer[oldest] = *from;
    s->r[oldest].got = 0;
    s->last_use[oldest] = ++s->clock;
    return &s->r[oldest];
}

static void *udp_server_main(void *arg)
{
    struct udp_server *s = arg;
    pin_self(s->cpu);
    uint8_t *dg = malloc(65536);
    while (dg && !atomic_load(&s->stop)) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(s->fd, dg, 65536, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            struct pollfd p = {.fd = s->fd, .events = POLLIN};
            poll(&p, 1, 100);
            continue;
        }
        const uint8_t *msg;
        size_t len;
        uint64_t lost_tag;
        int lost;
        if (reasm_feed(sender(s, &from), dg, (size_t)n, &msg, &len, &lost, &lost_tag) != 1)
            continue;
        uint64_t tag;
        uint32_t rlen;
        uint32_t magic = msg_serve(msg, len, &tag, &rlen);
        uint8_t h[MSG_HDR];
        hdr_put(h, magic, rlen, tag);
        send_msg(s->fd, (struct sockaddr *)&from, fl, h, pattern_for(tag, 1), rlen, tag);
    }
    free(dg);
    return NULL;
}

static struct tr_server *udp_server_start(const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    struct udp_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    if (!s || addr4(host, port, &a) != 0) {
        snprintf(err, n, "bad address %s", host);
        free(s);
        return NULL;
    }
    s->cpu = cpu;
    s->fd = udp_socket(0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &l) != 0 || pthread_create(&s->th, NULL, udp_server_main, s) != 0) {
        snprintf(err, n, "udp bind %s:%u: %s", host, port, strerror(errno));
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    return (struct tr_server *)s;
}

static uint16_t udp_server_port(struct tr_server *ts) { return ((struct udp_server *)ts)->port; }

static void udp_server_stop(struct tr_server *ts)
{
    struct udp_server *s = (struct udp_server *)ts;
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->fd);
    for (int i = 0; i < MAX_SENDERS; i++)
        free(s->r[i].buf);
    free(s);
}

/* ------------------------------------------------------------------ */

#define OUTMAX 4096

struct udp_conn {
    struct tr_conn base;
    int fd;
    struct reasm r;
    uint8_t dg[65536];
    /* Outstanding requests by tag % OUTMAX (tags are sequential per
     * connection): the response length expected, 0 when free. */
    uint64_t otag[OUTMAX];
    uint32_t olen[OUTMAX];
};

static struct tr_conn *udp_connect(const char *host, uint16_t port, char *err, size_t n)
{
    struct sockaddr_in a;
    struct udp_conn *c = calloc(1, sizeof(*c));
    if (!c || addr4(host, port, &a) != 0) {
        snprintf(err, n, "bad address %s", host);
        free(c);
        return NULL;
    }
    c->base.t = &tr_udp;
    c->fd = udp_socket(0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        snprintf(err, n, "udp connect: %s", strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    return &c->base;
}

static int udp_send(struct tr_conn *tc, size_t req_len, size_t resp_len, uint64_t tag)
{
    struct udp_conn *c = (struct udp_conn *)tc;
    unsigned i = (unsigned)(tag % OUTMAX);
    if (c->olen[i])
        return 1;
    c->otag[i] = tag;
    c->olen[i] = (uint32_t)resp_len;
    uint8_t h[MSG_HDR];
    hdr_put(h, MAGIC_REQ, (uint32_t)resp_len, tag);
    if (send_msg(c->fd, NULL, 0, h, pattern_for(tag, 0), req_len, tag) != 0) {
        snprintf(c->base.err, sizeof(c->base.err), "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Removes tag from the outstanding set; its expected length, or 0. */
static uint32_t take(struct udp_conn *c, uint64_t tag)
{
    unsigned i = (unsigned)(tag % OUTMAX);
    if (!c->olen[i] || c->otag[i] != tag)
        return 0;
    uint32_t len = c->olen[i];
    c->olen[i] = 0;
    return len;
}

static int udp_poll(struct tr_conn *tc, struct tr_done *out, int max, int64_t timeout_us)
{
    struct udp_conn *c = (struct udp_conn *)tc;
    int64_t deadline = now_us() + timeout_us;
    int n = 0;
    while (n + 2 <= max) { /* a datagram may end two RPCs: a lost one and its own */
        ssize_t r = recv(c->fd, c->dg, sizeof(c->dg), MSG_DONTWAIT);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(c->base.err, sizeof(c->base.err), "recv: %s", strerror(errno));
                return -1;
            }
            int64_t left = deadline - now_us();
            if (n > 0 || left <= 0)
                break;
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            struct timespec ts = {left / 1000000, (left % 1000000) * 1000};
            ppoll(&p, 1, &ts, NULL);
            continue;
        }
        const uint8_t *msg;
        size_t len;
        uint64_t lost_tag, tag;
        int lost;
        int k = reasm_feed(&c->r, c->dg, (size_t)r, &msg, &len, &lost, &lost_tag);
        if (lost && take(c, lost_tag))
            out[n++] = (struct tr_done){lost_tag, 0};
        struct msg_hdr h;
        if (k != 1 || len < MSG_HDR)
            continue;
        hdr_get(msg, &h);
        uint32_t want = take(c, h.tag);
        if (want)
            out[n++] = (struct tr_done){h.tag, msg_response_ok(msg, len, want, &tag)};
    }
    return n;
}

static void udp_close(struct tr_conn *tc)
{
    struct udp_conn *c = (struct udp_conn *)tc;
    if (!c)
        return;
    close(c->fd);
    free(c->r.buf);
    free(c);
}

const struct transport tr_udp = {
    .name = "udp",
    .label = "raw UDP: no encryption, no flow control, no loss recovery (the floor)",
    .server_start = udp_server_start,
    .server_port = udp_server_port,
    .server_stop = udp_server_stop,
    .connect = udp_connect,
    .send = udp_send,
    .poll = udp_poll,
    .close = udp_close,
    .no_handshake = "n/a: connectionless",
    .window_bytes_max = SOCKBUF,
};
