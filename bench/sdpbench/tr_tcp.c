/* sdp-bench: plain TCP with TCP_NODELAY, 4-byte length framing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"

struct tcp_ctx {
    int fd;
};

static ssize_t tcp_send_frame(void *ctx, const uint8_t *hdr, const uint8_t *body, size_t body_len, size_t off)
{
    struct tcp_ctx *t = ctx;
    struct iovec iov[2];
    int n = 0;
    if (off < FRAME_HDR)
        iov[n++] = (struct iovec){(void *)(hdr + off), FRAME_HDR - off};
    size_t boff = off > FRAME_HDR ? off - FRAME_HDR : 0;
    if (boff < body_len)
        iov[n++] = (struct iovec){(void *)(body + boff), body_len - boff};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(t->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    return w;
}

static ssize_t tcp_recv(void *ctx, uint8_t *buf, size_t n)
{
    struct tcp_ctx *t = ctx;
    ssize_t r = recv(t->fd, buf, n, MSG_DONTWAIT);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    return r == 0 ? -1 : r;
}

static void tcp_free(void *ctx) { free(ctx); }

static void *tcp_wrap(int fd)
{
    struct tcp_ctx *t = malloc(sizeof(*t));
    if (t)
        t->fd = fd;
    return t;
}

static void *tcp_accept(void *server_ctx, int fd) { return tcp_wrap(fd); }

static void *tcp_connect_io(void *client_ctx, int fd, char *err, size_t n)
{
    void *t = tcp_wrap(fd);
    if (!t)
        snprintf(err, n, "out of memory");
    return t;
}

static const struct stream_io tcp_io = {tcp_send_frame, tcp_recv, tcp_free, tcp_accept, tcp_connect_io};

static struct tr_server *tcp_server_start(const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    return (struct tr_server *)stream_server_start(&tcp_io, NULL, host, port, cpu, err, n);
}

static uint16_t tcp_server_port(struct tr_server *s) { return stream_server_port((struct stream_server *)s); }
static void tcp_server_stop(struct tr_server *s) { stream_server_stop((struct stream_server *)s); }

static struct tr_conn *tcp_connect(const char *host, uint16_t port, char *err, size_t n)
{
    return stream_connect(&tr_tcp, &tcp_io, NULL, host, port, err, n);
}

/* The TCP handshake alone: connect() returns after the SYN-ACK. */
static int tcp_handshake(const char *host, uint16_t port, double *us, char *err, size_t n)
{
    double t0 = now_s();
    int fd = tcp_dial(host, port, err, n);
    if (fd < 0)
        return -1;
    *us = (now_s() - t0) * 1e6;
    close(fd);
    return 0;
}

const struct transport tr_tcp = {
    .name = "tcp",
    .label = "TCP, TCP_NODELAY, no encryption",
    .server_start = tcp_server_start,
    .server_port = tcp_server_port,
    .server_stop = tcp_server_stop,
    .connect = tcp_connect,
    .send = stream_send,
    .poll = stream_poll,
    .close = stream_close,
    .handshake = tcp_handshake,
};
