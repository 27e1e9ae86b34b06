/* Load spreading across engines: all packets of one RPC reach the engine
 * that owns it; different RPCs, even of one peer, spread across engines.
 *
 * Each engine has its own UDP socket in one SO_REUSEPORT group.  A classic
 * BPF program attached to the group picks the socket from bytes of our
 * header (docs/PROTOCOL.md section 2): the low 32 bits of the RPC id with
 * bit 0 ignored, so a request and its response land on the same engine;
 * handshake packets (id 0) spread by their connection id instead. */
#ifndef SDP_ENGINE_STEER_H
#define SDP_ENGINE_STEER_H

#include <stddef.h>
#include <stdint.h>

#define SDP_STEER_MAX_ENGINES 64

/* The engine index the kernel program computes for a packet (the same
 * function in C, for the engines' own checks and for tests). */
unsigned sdp_steer_engine(const uint8_t *pkt, size_t len, unsigned n_engines);

/* Attach the steering program to a socket of the reuseport group (one is
 * enough: the program belongs to the group).  Returns 0 or SDP_ESYSTEM
 * (errno kept), SDP_EINVAL for n_engines outside 1..SDP_STEER_MAX_ENGINES. */
int sdp_steer_attach(int fd, unsigned n_engines);

#endif
