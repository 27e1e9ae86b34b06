/* The socket object behind include/sdp/sdp.h, shared by socket.c (open,
 * peers, keys, statistics) and rpc.c (send, reply, receive). */
#ifndef SDP_API_API_INT_H
#define SDP_API_API_INT_H

/* cfg.batch_sends: sends queued before one is forced out (sdp.h). */
#define SDP_API_BATCH_MAX 64

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/core.h"
#include "engine/engine.h"
#include "sdp/sdp.h"

/* Where a peer's keys stand (api_peer.keys). */
enum { API_KEYS_READY = 0, API_KEYS_PENDING = 1, API_KEYS_EARLY = 2 };

struct api_peer {
    struct sdp_core_addr addr;
    int hnext;
    _Atomic uint64_t next_id; /* next client id: shared by every thread and engine */
    _Atomic int keys;         /* API_KEYS_*: sends to a peer not READY go to session.c */
    _Atomic uint64_t last_rekey; /* when a "no session" hint last made us handshake (session.c) */
};

/* Locked memory: the default secrets and the scratch space for deriving. */
struct api_default_keys {
    enum sdp_cipher cipher;
    uint8_t tx[SDP_SECRET_LEN];
    uint8_t rx[SDP_SECRET_LEN];
    uint8_t scratch[2 * SDP_SECRET_LEN];
};

struct sdp_socket {
    struct sdp_config cfg;
    int family;
    int threaded;
    int corked, cork_pending; /* inline mode: sdp_cork holds the rounds sends would run */
    unsigned batched; /* inline, cfg.batch_sends: sends queued since the last round */
    unsigned n;
    struct sdp_engine **eng;
    struct sockaddr_storage local;
    socklen_t local_len;
    struct sdp_core_addr local_addr;
    int local_wildcard;

    pthread_mutex_t peers_lock; /* after the engine locks in lock order */
    struct api_peer *peers;
    uint32_t npeers;
    int *peer_hash;
    uint32_t peer_hmask;
    struct api_default_keys *dflt;

    pthread_mutex_t q_lock; /* delivered messages; innermost lock */
    pthread_cond_t q_cond;
    struct sdp_msg *q;
    uint32_t q_head, q_cap;
    uint32_t q_n; /* changed under q_lock with __atomic stores; may be read with an __atomic load alone */
    int q_fd; /* threaded mode: readable while q_n > 0 */
    _Atomic uint64_t lost_events;

    /* Operations from the application's io_uring (uring_ops.c). */
    int app_ring_fd; /* -1 until sdp_uring_register */
    pthread_mutex_t uop_lock;
    struct sdp_uring_op *uop_head, *uop_tail;     /* submitted, not yet run */
    struct sdp_uring_op *urecv_head, *urecv_tail; /* RECVs waiting for a message */

    _Atomic(struct api_hs *) hsx; /* the handshake (session.c), NULL until sdp_set_tls */
};

struct sdp_uring_op;

struct api_hs;

/* socket.c */
int sdp_api_peer_find(sdp_socket *s, const struct sdp_core_addr *a); /* index or -1 */
/* Install keys a handshake agreed for a peer in every core (replacing the
 * session of a peer that handshook again); next_id (0: default) starts its
 * client ids.  Returns the peer index or a negative code. */
int sdp_api_peer_set_keys(sdp_socket *s, const struct sdp_core_addr *a, enum sdp_cipher cipher,
                          const uint8_t *tx, const uint8_t *rx, uint64_t next_id);
/* 0-RTT (session.c holds pend_lock): a client's session whose keys are
 * still being agreed, with its early transmit key (tx/rx are NULL: random
 * placeholders), or a server's session with its 0.5-RTT keys and early
 * receive key.  Returns the peer index or a negative code. */
int sdp_api_peer_set_early(sdp_socket *s, const struct sdp_core_addr *a, enum sdp_cipher cipher,
                           const uint8_t *tx, const uint8_t *rx, const uint8_t *early, uint64_t next_id);
/* The agreed keys of a client's pending session (keeps its RPCs). */
int sdp_api_peer_complete(sdp_socket *s, int idx, enum sdp_cipher cipher, const uint8_t *tx, const uint8_t *rx);
/* 1 while a handshake with a is under way (session.c). */
int sdp_api_hs_busy(sdp_socket *s, const struct sdp_core_addr *a);
/* Forget the peer's 0-RTT keys in every core. */
void sdp_api_peer_drop_early(sdp_socket *s, int idx);
/* Hand a message to the application (queue or io_uring RECV). */
void sdp_api_deliver_msg(sdp_socket *s, struct sdp_engine *e, const struct sdp_msg *m);
int sdp_api_peer_get(sdp_socket *s, const struct sdp_core_addr *a);
int sdp_api_queue_pop(sdp_socket *s, struct sdp_msg *m);
int sdp_api_queue_push_front(sdp_socket *s, const struct sdp_msg *m);

/* rpc.c */
unsigned sdp_api_owner_engine(const sdp_socket *s, uint64_t id);
void sdp_api_kick(sdp_socket *s, struct sdp_engine *e);

/* session.c */
int sdp_api_hs_send(sdp_socket *s, const struct sdp_core_addr *a, const struct iovec *iov, int iovcnt,
                    size_t total, uint64_t cookie, uint64_t *rpc_id);
uint64_t sdp_api_hs_run(void *ctx, struct sdp_engine *e, const struct sdp_engine_hs_pkt *pkts, unsigned n,
                        uint64_t now);
size_t sdp_api_hs_output(void *ctx, uint64_t now, uint8_t *buf, size_t cap, struct sdp_core_addr *to);
void sdp_api_hs_stats(sdp_socket *s, struct sdp_stats *st);
void sdp_api_hs_free(sdp_socket *s);

/* uring_ops.c */
void sdp_api_uop_intake(void *ctx, struct sdp_engine *e, void *op);
int sdp_api_uop_run(void *ctx, struct sdp_engine *e);
int sdp_api_uop_deliver(sdp_socket *s, struct sdp_engine *e, const struct sdp_msg *m);

#endif
