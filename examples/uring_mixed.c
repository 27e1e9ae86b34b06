/* File I/O and SDP RPCs on one io_uring.
 *
 * Reads FILE in 64 KiB chunks with io_uring reads, sends each chunk as an
 * SDP request (sdp_uring_prep, SEND) to an echo server, receives the echoes
 * (RECV ops) and checks them, all from completions on this one ring.
 * Usage: uring_mixed FILE ADDR PORT SECRET_HEX */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdp/sdp.h"
#include "sdp/sdp_uring.h"

#define CHUNK 65536
#define DEPTH 8 /* chunks in flight */

enum { K_READ = 1, K_SEND, K_RECV };

struct slot {
    int kind;
    int idx;
    uint8_t buf[CHUNK];
    size_t len;
    struct iovec iov;
    struct sdp_uring_op op;
};

static int hex32(const char *h, uint8_t out[32])
{
    for (int i = 0; i < 32; i++)
        if (sscanf(h + 2 * i, "%2hhx", &out[i]) != 1)
            return -1;
    return strlen(h) == 64 ? 0 : -1;
}

static uint64_t tag(int kind, int idx)
{
    return (uint64_t)kind << 32 | (uint32_t)idx;
}

int main(int argc, char **argv)
{
    uint8_t secret[32];
    if (argc != 5 || hex32(argv[4], secret) != 0) {
        fprintf(stderr, "usage: %s FILE ADDR PORT SECRET_HEX\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &srv.sin_addr);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr = srv.sin_addr};
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = 1; /* io_uring submission needs an engine thread */
    sdp_socket *s;
    struct io_uring ring;
    int rc = sdp_open((struct sockaddr *)&local, sizeof(local), &cfg, &s);
    if (rc == 0)
        rc = sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, secret, secret);
    if (rc == 0 && io_uring_queue_init(64, &ring, 0) != 0)
        rc = SDP_ESYSTEM;
    if (rc == 0)
        rc = sdp_uring_register(s, &ring);
    if (rc != 0) {
        fprintf(stderr, "uring_mixed: %s\n", sdp_strerror(rc));
        return 1;
    }
    static struct slot slots[DEPTH];
    struct sdp_uring_op recvs[DEPTH];
    off_t file_off = 0;
    int eof = 0, inflight = 0, chunks = 0, good = 0;
    size_t bytes = 0;
    /* One read per slot to start; each slot then cycles read -> send -> echo. */
    for (int i = 0; i < DEPTH; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_read(sqe, fd, slots[i].buf, CHUNK, (uint64_t)file_off);
        slots[i].idx = i;
        file_off += CHUNK;
        io_uring_sqe_set_data64(sqe, tag(K_READ, i));
        memset(&recvs[i], 0, sizeof(recvs[i]));
        recvs[i].opcode = SDP_UOP_RECV;
        recvs[i].user_data = tag(K_RECV, i);
        sdp_uring_prep(io_uring_get_sqe(&ring), s, &recvs[i]);
        inflight++;
    }
    while (inflight > 0) {
        io_uring_submit(&ring);
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&ring, &cqe) != 0)
            break;
        uint64_t t = cqe->user_data;
        int kind = (int)(t >> 32), idx = (int)(uint32_t)t, res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (kind == K_READ) {
            struct slot *sl = &slots[idx];
            if (res <= 0) { /* end of file (or error): this slot is done */
                eof = 1;
                inflight--;
                continue;
            }
            sl->len = (size_t)res;
            sl->iov = (struct iovec){sl->buf, sl->len};
            memset(&sl->op, 0, sizeof(sl->op));
            sl->op.opcode = SDP_UOP_SEND;
            sl->op.user_data = tag(K_SEND, idx);
            sl->op.peer = (struct sockaddr *)&srv;
            sl->op.peer_len = sizeof(srv);
            sl->op.iov = &sl->iov;
            sl->op.iovcnt = 1;
            sl->op.cookie = (uint64_t)idx;
            sdp_uring_prep(io_uring_get_sqe(&ring), s, &sl->op);
        } else if (kind == K_SEND) {
            if (res < 0) {
                fprintf(stderr, "uring_mixed: send: %s\n", sdp_strerror(res));
                inflight--;
            }
        } else if (kind == K_RECV) {
            struct sdp_msg *m = &recvs[idx].msg;
            if (res >= 0 && m->kind == SDP_MSG_RESPONSE) {
                struct slot *sl = &slots[m->cookie];
                chunks++;
                bytes += m->len;
                good += m->len == sl->len && memcmp(m->data, sl->buf, sl->len) == 0;
                sdp_release(s, m);
                if (!eof) { /* next chunk into the same slot */
                    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                    io_uring_prep_read(sqe, fd, sl->buf, CHUNK, (uint64_t)file_off);
                    file_off += CHUNK;
                    io_uring_sqe_set_data64(sqe, tag(K_READ, sl->idx));
                } else {
                    inflight--;
                }
            } else {
                fprintf(stderr, "uring_mixed: receive: %s\n", sdp_strerror(res < 0 ? res : m->error));
                if (res >= 0)
                    sdp_release(s, m);
                inflight--;
            }
            memset(&recvs[idx], 0, sizeof(recvs[idx]));
            recvs[idx].opcode = SDP_UOP_RECV;
            recvs[idx].user_data = tag(K_RECV, idx);
            if (inflight > 0)
                sdp_uring_prep(io_uring_get_sqe(&ring), s, &recvs[idx]);
        }
    }
    printf("uring_mixed: %d chunks, %zu bytes echoed, %d intact\n", chunks, bytes, good);
    sdp_close(s);
    io_uring_queue_exit(&ring);
    close(fd);
    return chunks > 0 && good == chunks ? 0 : 1;
}
