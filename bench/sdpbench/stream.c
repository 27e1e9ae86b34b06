/* sdp-bench: framed RPCs over a byte stream.  The client is non-blocking and
 * always reads while it writes, so large pipelined requests cannot deadlock
 * against the server's responses; the server is a thread per connection
 * with blocking I/O, the way most TCP and TLS servers are written. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"

#define QMAX 4096
#define MAX_CONNS 512

static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void frame_hdr(uint8_t *h, uint32_t msg_len, uint32_t magic, uint32_t resp_len, uint64_t tag)
{
    for (int i = 0; i < 4; i++)
        h[i] = (uint8_t)(msg_len >> (8 * i));
    hdr_put(h + 4, magic, resp_len, tag);
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 65536;
    while (c < need)
        c *= 2;
    uint8_t *b = realloc(*buf, c);
    if (!b)
        return -1;
    *buf = b;
    *cap = c;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Server                                                               */

struct sconn {
    struct stream_server *srv;
    int fd;
    pthread_t th;
    atomic_int done;
    int used;
};

struct stream_server {
    const struct stream_io *io;
    void *ctx;
    int lfd, cpu;
    uint16_t port;
    atomic_int stop;
    pthread_t th;
    pthread_mutex_t lock;
    struct sconn conns[MAX_CONNS];
};

static int send_all(const struct stream_io *io, void *ctx, int fd, const uint8_t *hdr, const uint8_t *body,
                    size_t body_len)
{
    size_t off = 0, total = FRAME_HDR + body_len;
    while (off < total) {
        ssize_t w = io->send_frame(ctx, hdr, body, body_len, off);
        if (w < 0)
            return -1;
        if (w == 0) {
            struct pollfd p = {.fd = fd, .events = POLLOUT | POLLIN};
            if (poll(&p, 1, 1000) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        off += (size_t)w;
    }
    return 0;
}

static void *conn_main(void *arg)
{
    struct sconn *sc = arg;
    struct stream_server *s = sc->srv;
    pin_self(s->cpu);
    void *ctx = s->io->accept(s->ctx, sc->fd);
    uint8_t *rx = NULL;
    size_t have = 0, cap = 0;
    while (ctx && !atomic_load(&s->stop) && grow(&rx, &cap, 65536) == 0) {
        ssize_t r = s->io->recv(ctx, rx + have, cap - have);
        if (r < 0)
            break;
        if (r == 0) {
            struct pollfd p = {.fd = sc->fd, .events = POLLIN};
            poll(&p, 1, 100);
            continue;
        }
        have += (size_t)r;
        int bad = 0;
        while (have >= 4) {
            uint32_t flen = get32le(rx);
            if (flen < MSG_HDR || flen > MSG_MAX) {
                bad = 1;
                break;
            }
            if (have < 4 + (size_t)flen) {
                if (grow(&rx, &cap, 4 + (size_t)flen) != 0)
                    bad = 1;
                break;
            }
            uint64_t tag;
            uint32_t rlen;
            uint32_t magic = msg_serve(rx + 4, flen, &tag, &rlen);
            uint8_t h[FRAME_HDR];
            frame_hdr(h, rlen, magic, rlen, tag);
            if (send_all(s->io, ctx, sc->fd, h, pattern_for(tag, 1), rlen - MSG_HDR) != 0) {
                bad = 1;
                break;
            }
            memmove(rx, rx + 4 + flen, have - 4 - flen);
            have -= 4 + (size_t)flen;
        }
        if (bad)
            break;
    }
    free(rx);
    if (ctx)
        s->io->free(ctx);
    shutdown(sc->fd, SHUT_RDWR);
    atomic_store(&sc->done, 1);
    return NULL;
}

static void reap(struct stream_server *s, int all)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        struct sconn *c = &s->conns[i];
        if (!c->used)
            continue;
        if (all)
            shutdown(c->fd, SHUT_RDWR);
        if (all || atomic_load(&c->done)) {
            pthread_join(c->th, NULL);
            close(c->fd);
            c->used = 0;
        }
    }
}

static void *accept_main(void *arg)
{
    struct stream_server *s = arg;
    pin_self(s->cpu);
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&s->lock);
        reap(s, 0);
        struct sconn *c = NULL;
        for (int i = 0; i < MAX_CONNS && !c; i++)
            if (!s->conns[i].used)
                c = &s->conns[i];
        if (c) {
            c->srv = s;
            c->fd = fd;
            atomic_store(&c->done, 0);
            c->used = pthread_create(&c->th, NULL, conn_main, c) == 0;
        }
        if (!c || !c->used)
            close(fd);
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct stream_server *stream_server_start(const struct stream_io *io, void *server_ctx, const char *host,
                                          uint16_t port, int cpu, char *err, size_t n)
{
    struct sockaddr_in a;
    if (addr4(host, port, &a) != 0) {
        snprintf(err, n, "bad address %s", host);
        return NULL;
    }
    struct stream_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    s->io = io;
    s->ctx = server_ctx;
    s->cpu = cpu;
    pthread_mutex_init(&s->lock, NULL);
    int one = 1;
    socklen_t l = sizeof(a);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 1024) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &l) != 0) {
        snprintf(err, n, "listen on %s:%u: %s", host, port, strerror(errno));
        goto fail;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, accept_main, s) != 0) {
        snprintf(err, n, "thread: %s", strerror(errno));
        goto fail;
    }
    return s;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    free(s);
    return NULL;
}

uint16_t stream_server_port(struct stream_server *s) { return s->port; }

void stream_server_stop(struct stream_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    pthread_mutex_lock(&s->lock);
    reap(s, 1);
    pthread_mutex_unlock(&s->lock);
    close(s->lfd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Client                                                               */

struct sreq {
    uint64_t tag;
    uint32_t req_len, resp_len;
};

struct stream_conn {
    struct tr_conn base;
    const struct stream_io *io;
    void *ctx;
    int fd;
    struct sreq q[QMAX]; /* [head, sent): awaiting responses; [sent, tail): to write */
    unsigned head, sent, tail;
    size_t woff;
    uint8_t whdr[FRAME_HDR];
    uint8_t *rx;
    size_t have, cap;
};

int tcp_dial(const char *host, uint16_t port, char *err, size_t n)
{
    struct sockaddr_in a;
    if (addr4(host, port, &a) != 0) {
        snprintf(err, n, "bad address %s", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        snprintf(err, n, "connect %s:%u: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

struct tr_conn *stream_connect(const struct transport *t, const struct stream_io *io, void *client_ctx,
                               const char *host, uint16_t port, char *err, size_t n)
{
    int fd = tcp_dial(host, port, err, n);
    if (fd < 0)
        return NULL;
    void *ctx = io->connect(client_ctx, fd, err, n);
    struct stream_conn *c = ctx ? calloc(1, sizeof(*c)) : NULL;
    if (!c || set_nonblock(fd, 1) != 0 || grow(&c->rx, &c->cap, 262144) != 0) {
        if (ctx && !c)
            snprintf(err, n, "out of memory");
        if (ctx)
            io->free(ctx);
        if (c)
            free(c->rx);
        free(c);
        close(fd);
        return NULL;
    }
    c->base.t = t;
    c->io = io;
    c->ctx = ctx;
    c->fd = fd;
    return &c->base;
}

static int fail(struct stream_conn *c, const char *what)
{
    if (!c->base.err[0])
        snprintf(c->base.err, sizeof(c->base.err), "%s", what);
    return -1;
}

static int flush(struct stream_conn *c)
{
    while (c->sent != c->tail) {
        const struct sreq *e = &c->q[c->sent % QMAX];
        if (c->woff == 0)
            frame_hdr(c->whdr, e->req_len, MAGIC_REQ, e->resp_len, e->tag);
        ssize_t w = c->io->send_frame(c->ctx, c->whdr, pattern_for(e->tag, 0), e->req_len - MSG_HDR, c->woff);
        if (w < 0)
            return fail(c, "write failed (connection lost)");
        if (w == 0)
            return 0;
        c->woff += (size_t)w;
        if (c->woff == 4 + (size_t)e->req_len) {
            c->sent++;
            c->woff = 0;
        }
    }
    return 0;
}

static int parse(struct stream_conn *c, struct tr_done *out, int max)
{
    int n = 0;
    while (n < max && c->have >= 4) {
        uint32_t flen = get32le(c->rx);
        if (flen < MSG_HDR || flen > MSG_MAX)
            return fail(c, "bad frame length");
        if (c->have < 4 + (size_t)flen) {
            if (grow(&c->rx, &c->cap, 4 + (size_t)flen) != 0)
                return fail(c, "out of memory");
            break;
        }
        if (c->head == c->sent)
            return fail(c, "response to no request");
        const struct sreq *e = &c->q[c->head++ % QMAX];
        uint64_t tag;
        int ok = msg_response_ok(c->rx + 4, flen, e->resp_len, &tag) && tag == e->tag;
        out[n++] = (struct tr_done){e->tag, ok};
        memmove(c->rx, c->rx + 4 + flen, c->have - 4 - flen);
        c->have -= 4 + (size_t)flen;
    }
    return n;
}

int stream_send(struct tr_conn *tc, size_t req_len, size_t resp_len, uint64_t tag)
{
    struct stream_conn *c = (struct stream_conn *)tc;
    if (req_len < MSG_HDR || resp_len < MSG_HDR || req_len > MSG_MAX || resp_len > MSG_MAX)
        return fail(c, "bad message length");
    if (c->tail - c->head >= QMAX)
        return 1;
    c->q[c->tail++ % QMAX] = (struct sreq){tag, (uint32_t)req_len, (uint32_t)resp_len};
    return flush(c);
}

int stream_poll(struct tr_conn *tc, struct tr_done *out, int max, int64_t timeout_us)
{
    struct stream_conn *c = (struct stream_conn *)tc;
    int64_t deadline = now_us() + timeout_us;
    int n = 0;
    for (;;) {
        if (flush(c) < 0)
            return -1;
        while (n < max) {
            int k = parse(c, out + n, max - n);
            if (k < 0)
                return -1;
            n += k;
            if (n >= max)
                break;
            ssize_t r = c->io->recv(c->ctx, c->rx + c->have, c->cap - c->have);
            if (r < 0)
                return fail(c, "read failed (connection lost)");
            if (r == 0)
                break;
            c->have += (size_t)r;
        }
        if (n > 0)
            return n;
        int64_t left = deadline - now_us();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = c->fd, .events = POLLIN | (c->sent != c->tail ? POLLOUT : 0)};
        struct timespec ts = {left / 1000000, (left % 1000000) * 1000};
        if (ppoll(&p, 1, &ts, NULL) < 0 && errno != EINTR)
            return fail(c, "poll failed");
    }
}

void stream_close(struct tr_conn *tc)
{
    struct stream_conn *c = (struct stream_conn *)tc;
    if (!c)
        return;
    c->io->free(c->ctx);
    close(c->fd);
    free(c->rx);
    free(c);
}
