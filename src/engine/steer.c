#include <errno.h>
#include <linux/filter.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/bytes.h"
#include "engine/steer.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

/* Offsets in the UDP payload (docs/PROTOCOL.md sections 2 and 3.7). */
#define STEER_OFF_TYPE 0
#define STEER_OFF_ID_LOW32 4
#define STEER_OFF_CONN_LOW32 16

unsigned sdp_steer_engine(const uint8_t *pkt, size_t len, unsigned n_engines)
{
    const uint8_t *end = pkt + len;
    uint8_t vt;
    uint32_t key = 0;
    if (n_engines <= 1 || !sdp_get_u8(pkt, end, &vt))
        return 0;
    unsigned off = (vt & 0x0f) == SDP_PKT_HANDSHAKE ? STEER_OFF_CONN_LOW32 : STEER_OFF_ID_LOW32;
    /* Too short for the load: the kernel program's load fails and it
     * returns 0, so do the same. */
    if (len < (size_t)off + 4)
        return 0;
    sdp_get_u32be(pkt + off, end, &key);
    return (key >> 1) % n_engines;
}

int sdp_steer_attach(int fd, unsigned n_engines)
{
    if (n_engines < 1 || n_engines > SDP_STEER_MAX_ENGINES)
        return SDP_EINVAL;
    /* A = type nibble; pick the key's offset; A = key >> 1; return A % n.
     * A failed load (short packet) ends the program with 0. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, STEER_OFF_TYPE),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x0f),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SDP_PKT_HANDSHAKE, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, STEER_OFF_CONN_LOW32),
        BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, STEER_OFF_ID_LOW32),
        BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 1),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n_engines),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
        return SDP_ESYSTEM;
    return 0;
}
