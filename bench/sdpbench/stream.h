/* sdp-bench: RPCs over a byte stream (TCP, TLS, kTLS).  Each message is a
 * frame: a 4-byte little-endian length, then the message.  One connection
 * per client, so responses come back in request order: head-of-line
 * blocking is part of what a stream transport costs. */
#ifndef SDPBENCH_STREAM_H
#define SDPBENCH_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport.h"

#define FRAME_HDR (4 + MSG_HDR)

/* Byte I/O of one connection.  send_frame writes from offset off of the
 * frame made of hdr (FRAME_HDR bytes) then body; both return bytes moved,
 * 0 when the call would block, -1 on error or end of stream. */
struct stream_io {
    ssize_t (*send_frame)(void *ctx, const uint8_t *hdr, const uint8_t *body, size_t body_len, size_t off);
    ssize_t (*recv)(void *ctx, uint8_t *buf, size_t n);
    void (*free)(void *ctx);
    /* Server: wrap an accepted socket (e.g. run the TLS handshake);
     * NULL refuses it. */
    void *(*accept)(void *server_ctx, int fd);
    /* Client: wrap a connected socket, blocking; NULL with err on failure. */
    void *(*connect)(void *client_ctx, int fd, char *err, size_t n);
};

struct stream_server;
struct stream_server *stream_server_start(const struct stream_io *io, void *server_ctx, const char *host,
                                          uint16_t port, int cpu, char *err, size_t n);
uint16_t stream_server_port(struct stream_server *s);
void stream_server_stop(struct stream_server *s);

struct tr_conn *stream_connect(const struct transport *t, const struct stream_io *io, void *client_ctx,
                               const char *host, uint16_t port, char *err, size_t n);
int stream_send(struct tr_conn *c, size_t req_len, size_t resp_len, uint64_t tag);
int stream_poll(struct tr_conn *c, struct tr_done *out, int max, int64_t timeout_us);
void stream_close(struct tr_conn *c);
/* Open a TCP connection with TCP_NODELAY, blocking; -1 with err. */
int tcp_dial(const char *host, uint16_t port, char *err, size_t n);

#endif
