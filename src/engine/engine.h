/* An engine: one transport core driven by one io_uring over one UDP socket.
 *
 * The engine is where packets meet the network and the clock: it receives
 * with multishot recvmsg into a provided-buffer ring (GRO on), feeds the
 * core, sends the core's GSO segments with one sendmsg each, and sleeps on
 * the ring until a completion, a wake-up or the core's next deadline.
 *
 * Threading: the core is guarded by the engine's lock.  The driving thread
 * (an engine thread, or the application's own in inline mode) holds it
 * while it works and drops it while it sleeps; other threads take it to
 * start RPCs or answer them, then wake the driver to send.  Only the
 * driving thread touches the ring (so it may be single-issuer).
 */
#ifndef SDP_ENGINE_ENGINE_H
#define SDP_ENGINE_ENGINE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"

struct sdp_engine;

/* Called with the engine lock held for every core event; the callee owns
 * ev->data from then on (release it with sdp_engine_release). */
typedef void (*sdp_engine_deliver_fn)(void *ctx, struct sdp_engine *e, const struct sdp_core_event *ev);
/* Called with the engine lock held when a packet comes from an address the
 * core does not know; returns 0 once the peer is installed (the packet is
 * then fed again).  It may drop and retake the engine lock. */
typedef int (*sdp_engine_unknown_fn)(void *ctx, struct sdp_engine *e, const struct sdp_core_addr *addr);

/* A HANDSHAKE datagram this engine received (len bytes of data), or with
 * no_session set, a note that a packet of len bytes came from an address
 * without keys (the handshake may answer it). */
#define SDP_ENGINE_HS_PKT_MAX 1500
struct sdp_engine_hs_pkt {
    struct sdp_core_addr addr;
    uint32_t len;
    int no_session; /* 1: from an address without a session (a hint may answer);
                     * 2: a peer's packet none of its keys opened; both are
                     * fed again after the handshake ran */
    uint32_t session;   /* the address's session that could not open it (0: none) */
    uint8_t data[SDP_ENGINE_HS_PKT_MAX];
};

struct sdp_engine_cfg {
    unsigned index;       /* position in the reuseport group */
    unsigned count;       /* engines in the group */
    const struct sockaddr *addr;
    socklen_t addr_len;
    struct sdp_core_config core;
    unsigned ring_entries; /* 1024 */
    unsigned recv_bufs;    /* provided buffers of 64 KiB: 128 */
    unsigned tx_slots;     /* GSO segments in flight: 64 */
    /* Inline mode: a step that would sleep first polls the ring this long
     * (0: never), which saves a sleep and a wake-up when the answer comes
     * back within it. */
    uint32_t busy_poll_ns;
    sdp_engine_deliver_fn deliver;
    sdp_engine_unknown_fn unknown_peer; /* may be NULL */
    /* An operation another ring sent with sdp_engine_ring_fd() as target
     * (MSG_RING, len SDP_ENGINE_MSG_MAGIC, data = op): handed over while
     * reaping, lock held; after_step runs once per round, lock released,
     * on the driver thread, and returns nonzero when it queued work (the
     * round then sends it).  Both may be NULL. */
    void (*uring_op)(void *ctx, struct sdp_engine *e, void *op);
    int (*after_step)(void *ctx, struct sdp_engine *e);
    /* The handshake lives outside the core.  hs_run gets what this round
     * received for it, runs on the driver thread without the engine lock,
     * and returns its next deadline (engine 0 sleeps no longer than that);
     * pkts NULL only asks for the deadline and runs nothing; hs_output, called with the lock held, yields datagrams to send (0:
     * none).  Both NULL when the socket has no handshake. */
    uint64_t (*hs_run)(void *ctx, struct sdp_engine *e, const struct sdp_engine_hs_pkt *pkts, unsigned n,
                       uint64_t now);
    size_t (*hs_output)(void *ctx, uint64_t now, uint8_t *buf, size_t cap, struct sdp_core_addr *to);
    void *deliver_ctx;                  /* context of the callbacks */
    /* 1: record crypto in the kernel through the sdp_kshim module
     * (engine/kshim.h); sdp_engine_new then fails with SDP_EUNAVAIL when
     * the module is not loaded. */
    int kshim;
};

/* Make the socket and core (call in group order: the socket joins the
 * reuseport group as member `index`).  Errors: SDP_ESYSTEM, SDP_ENOMEM,
 * SDP_EINVAL, SDP_EUNAVAIL (kshim without the module). */
int sdp_engine_new(const struct sdp_engine_cfg *cfg, struct sdp_engine **out);
void sdp_engine_free(struct sdp_engine *e);

/* Set up the ring in the thread that will drive the engine; threaded is 1
 * for an engine thread, 0 for inline mode (the application's thread). */
int sdp_engine_attach_ring(struct sdp_engine *e, int threaded);

/* Start/stop a dedicated thread that drives the engine (threaded mode). */
int sdp_engine_start(struct sdp_engine *e, int cpu);
void sdp_engine_stop(struct sdp_engine *e);

/* One round of work by the driving thread: reap completions, run timers,
 * deliver events, send what the core has, then sleep up to wait_ns
 * (0: do not sleep; negative: until something happens). */
int sdp_engine_step(struct sdp_engine *e, int64_t wait_ns);

/* Inline mode, driver thread, after the application queued output (a
 * send, a reply): send it now, and do nothing else.  Completions already
 * waiting (a receive's) stay in the ring, so its fd still reads ready and
 * the application's next pass takes them in (unless the send slots ran
 * out: then it runs a full pass).  Returns how much it did that no
 * completion announces (events delivered; normally 0), or SDP_EINVAL
 * without a ring. */
int sdp_engine_flush(struct sdp_engine *e);

/* Hand the events the core has queued to the deliver callback now
 * (engine lock held; e.g. before the peer they name is forgotten). */
void sdp_engine_deliver(struct sdp_engine *e);

/* Ask the driving thread to run a round soon (any thread). */
void sdp_engine_wake(struct sdp_engine *e);

/* The handshake has new work that no datagram or deadline announces (a
 * send started one): the next round runs hs_run (any thread; wake or step
 * the engine afterwards).  Idle rounds skip hs_run otherwise. */
void sdp_engine_hs_poke(struct sdp_engine *e);

void sdp_engine_lock(struct sdp_engine *e);
void sdp_engine_unlock(struct sdp_engine *e);
/* With the lock held. */
struct sdp_core *sdp_engine_core(struct sdp_engine *e);
void sdp_engine_release(struct sdp_engine *e, uint8_t *data);
unsigned sdp_engine_index(const struct sdp_engine *e);
int sdp_engine_fd(const struct sdp_engine *e);
/* Readable whenever the driver should run: in inline mode the ring's fd
 * (completions waiting, wake-ups included), else the wake-up eventfd. */
int sdp_engine_event_fd(const struct sdp_engine *e);

struct sdp_engine_stats {
    uint64_t recv_calls, recv_pkts, gro_batches, send_calls, send_errors, enobufs, misdirected, handed_off;
    uint64_t hs_dropped; /* handshake datagrams beyond a round's inbox (retransmitted later) */
    uint64_t keyless_retried; /* packets without keys that opened once the handshake brought them */
    uint64_t timer_wakes; /* inline mode: rounds the deadline timeout woke (no packet did) */
};
void sdp_engine_get_stats(struct sdp_engine *e, struct sdp_engine_stats *st);

/* Packets the kernel put on the wrong engine (GRO can merge datagrams of
 * different RPCs) go to their owner through this queue. */
void sdp_engine_set_group(struct sdp_engine *e, struct sdp_engine **group);

#define SDP_ENGINE_MSG_MAGIC 0x5d9a11u

/* Inline mode, driver thread: make the ring's fd read ready (a no-op's
 * completion), for work the application must pick up that no completion
 * announces (a message already taken in).  The next round reaps it. */
void sdp_engine_note(struct sdp_engine *e);
/* The same, unless a no-op from an earlier call is still unread: keeps
 * sdp_fd readable while delivered messages wait (inline mode). */
void sdp_engine_note_once(struct sdp_engine *e);

/* The engine's ring, as a MSG_RING target. */
int sdp_engine_ring_fd(const struct sdp_engine *e);
/* Post a completion (res, user_data) to another ring; driver thread only. */
int sdp_engine_post(struct sdp_engine *e, int ring_fd, int res, uint64_t user_data);

/* Monotonic time in ns: the clock the engines give their cores. */
uint64_t sdp_engine_now(void);

/* Canonical peer address bytes (family, port, address, v6 scope only), so
 * equal addresses compare equal with memcmp. */
int sdp_engine_addr(const struct sockaddr *sa, socklen_t len, struct sdp_core_addr *out);

#endif
