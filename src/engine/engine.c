#define _GNU_SOURCE
#include "engine/engine.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "core/core_ext.h"
#include "engine/bufpool.h"
#include "engine/kshim.h"
#include "engine/steer.h"
#include "wire/wire.h"
#include "engine/udp.h"
#include "engine/uring_check.h"
#include "engine/uring.h"
#include "sdp/sdp.h"

#define TAG_RECV 1ull
#define TAG_WAKE 2ull
#define TAG_POST 3ull /* completions we post to other rings (failures only) */
#define TAG_NOTE 4ull /* a no-op whose completion makes the ring's fd readable */
#define TAG_CANCEL 4ull
#define TAG_TIMER 5ull     /* inline mode: a timeout at the next deadline (makes the fd readable) */
#define TAG_TIMER_UPD 6ull /* moving that timeout earlier */
#define TAG_SEND_BASE 16ull /* + slot index */

#define RECV_BUF_SIZE 65536
#define TX_BUF_SIZE 65536
#define HANDOFF_SLOTS 64
#define HANDOFF_PKT_MAX 9216
#define HS_INBOX 16 /* handshake datagrams kept per round; more wait for retransmission */
/* Packets from an address without keys are kept this long (at most
 * KEYLESS_MAX of them) in case a handshake brings the keys: a client's first
 * requests follow its Finished closely, and another engine may be the one
 * that reads the Finished. */
#define KEYLESS_MAX 16
#define KEYLESS_NS 5000000ull
/* DATA segments with at least this many payload bytes are sent gathered
 * from the messages' sealed bytes instead of copied into a send slot. */
#define GATHER_MIN 16384

struct tx_slot {
    struct sdp_udp_tx tx;
    uint8_t *buf;
    uint32_t next_free;
};

struct handoff_pkt {
    struct sdp_core_addr addr;
    uint32_t len;
    uint8_t data[HANDOFF_PKT_MAX];
};

struct sdp_engine {
    struct sdp_engine_cfg cfg;
    pthread_mutex_t lock;
    struct sdp_core *core;
    int fd;
    int gro;
    int wake_fd;
    atomic_int wake_pending;

    int ring_ready;
    int note_pending;           /* a TAG_NOTE no-op is in flight (sdp_engine_note_once) */
    int threaded;
    struct io_uring ring;
    struct sdp_uring_caps caps;
    struct sdp_bufring br;
    struct msghdr recv_tmpl;
    int recv_armed;
    pthread_t armer; /* inline mode: the thread whose requests the ring holds */
    int wake_armed;
    uint64_t wake_buf;
    int timer_armed;                 /* inline mode: TAG_TIMER is in the kernel ... */
    uint64_t timer_at;               /* ... and fires then (CLOCK_MONOTONIC ns) */
    struct __kernel_timespec timer_ts;

    struct tx_slot *tx;
    uint8_t *tx_mem;
    uint32_t tx_free; /* head of the free list, UINT32_MAX if empty */
    uint32_t tx_busy;
    /* Submit-and-wait (sdp_engine_step): sends prepared but not yet
     * submitted, each of which will post a completion, and whether this
     * pass leaves its submit to the wait that follows it. */
    unsigned sq_sends;
    int defer_submit;

    struct sdp_engine **group; /* all engines of the socket, for hand-off */
    pthread_mutex_t ho_lock;
    struct handoff_pkt *ho;
    uint32_t ho_head, ho_n;

    struct sdp_engine_hs_pkt *hs_in; /* driver thread only */
    unsigned hs_n;
    uint64_t hs_exp;
    int hs_again;       /* run hs_run next pass: its deadline may have moved */
    atomic_int hs_poke; /* set by sdp_engine_hs_poke (any thread) */
    struct sdp_engine_hs_pkt *keyless; /* driver thread only; KEYLESS_MAX */
    uint64_t keyless_at[KEYLESS_MAX];
    unsigned keyless_n;

    struct sdp_bufpool *pool; /* the core's message buffers */

    pthread_t thread;
    int thread_running;
    atomic_int stop;
    int cpu;
    int thread_rc;

    struct sdp_kshim_eng *kshim; /* kernel record crypto, or NULL */
    struct iovec gather_iov[2 * SDP_UDP_GSO_MAX_SEGS]; /* header and payload of each packet */

    struct sdp_engine_stats st;
};

uint64_t sdp_engine_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int sdp_engine_addr(const struct sockaddr *sa, socklen_t len, struct sdp_core_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        struct sockaddr_in c = {.sin_family = AF_INET, .sin_port = in->sin_port, .sin_addr = in->sin_addr};
        memcpy(out->bytes, &c, sizeof(c));
        out->len = sizeof(c);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        struct sockaddr_in6 c = {.sin6_family = AF_INET6,
                                 .sin6_port = in6->sin6_port,
                                 .sin6_addr = in6->sin6_addr,
                                 .sin6_scope_id = in6->sin6_scope_id};
        memcpy(out->bytes, &c, sizeof(c));
        out->len = sizeof(c);
        return 0;
    }
    return SDP_EINVAL;
}

int sdp_engine_new(const struct sdp_engine_cfg *cfg, struct sdp_engine **out)
{
    if (!cfg || !cfg->addr || cfg->count == 0 || cfg->index >= cfg->count || cfg->count > SDP_STEER_MAX_ENGINES)
        return SDP_EINVAL;
    struct sdp_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return SDP_ENOMEM;
    e->cfg = *cfg;
    if (!e->cfg.ring_entries)
        e->cfg.ring_entries = 1024;
    if (!e->cfg.recv_bufs)
        e->cfg.recv_bufs = 128;
    if (!e->cfg.tx_slots)
        e->cfg.tx_slots = 64;
    e->fd = e->wake_fd = -1;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->ho_lock, NULL);
    e->cfg.core.engine_index = (uint8_t)cfg->index;
    if (cfg->kshim) {
        e->cfg.core.aead_family = "kshim";
        e->cfg.core.plain_records = 1;
    }
    int rc = 0;
    /* A cache beyond what the core may hold would only keep memory idle. */
    size_t cache = e->cfg.core.mem_limit < SDP_BUFPOOL_CACHE_DEFAULT ? (size_t)e->cfg.core.mem_limit
                                                                      : SDP_BUFPOOL_CACHE_DEFAULT;
    if (!e->cfg.core.allocator.alloc && (rc = sdp_bufpool_new(cache, &e->pool)) == 0)
        sdp_bufpool_allocator(e->pool, &e->cfg.core.allocator);
    if (rc == 0)
        rc = sdp_core_new(&e->cfg.core, &e->core);
    if (rc)
        goto fail;
    rc = SDP_ENOMEM;
    e->tx = calloc(e->cfg.tx_slots, sizeof(*e->tx));
    e->tx_mem = aligned_alloc(4096, (size_t)e->cfg.tx_slots * TX_BUF_SIZE);
    e->ho = cfg->count > 1 ? calloc(HANDOFF_SLOTS, sizeof(*e->ho)) : NULL;
    e->hs_in = cfg->hs_run ? calloc(HS_INBOX, sizeof(*e->hs_in)) : NULL;
    e->keyless = cfg->hs_run ? calloc(KEYLESS_MAX, sizeof(*e->keyless)) : NULL;
    e->hs_exp = UINT64_MAX;
    if (!e->tx || !e->tx_mem || (cfg->count > 1 && !e->ho) || (cfg->hs_run && (!e->hs_in || !e->keyless)))
        goto fail;
    for (uint32_t i = 0; i < e->cfg.tx_slots; i++) {
        e->tx[i].buf = e->tx_mem + (size_t)i * TX_BUF_SIZE;
        e->tx[i].next_free = i + 1 < e->cfg.tx_slots ? i + 1 : UINT32_MAX;
    }
    e->tx_free = 0;
    struct sdp_udp_opts uo = {.reuseport = 1, .gro = 1, .rcvbuf = 8 << 20, .sndbuf = 8 << 20};
    rc = sdp_udp_open(cfg->addr, cfg->addr_len, &uo, &e->fd, &e->gro);
    if (rc)
        goto fail;
    if (cfg->count > 1 && cfg->index == 0 && (rc = sdp_steer_attach(e->fd, cfg->count)) != 0)
        goto fail;
    if (cfg->kshim && (rc = sdp_kshim_eng_new(e->fd, &e->kshim)) != 0)
        goto fail;
    e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->wake_fd < 0) {
        rc = SDP_ESYSTEM;
        goto fail;
    }
    *out = e;
    return 0;
fail:
    sdp_engine_free(e);
    return rc;
}

void sdp_engine_set_group(struct sdp_engine *e, struct sdp_engine **group)
{
    e->group = group;
}

static void submit(struct sdp_engine *e)
{
    sdp_uring_check_sqes(&e->ring);
    io_uring_submit(&e->ring);
    e->sq_sends = 0;
}

static void arm_recv(struct sdp_engine *e)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe)
        return; /* retried on the next round */
    io_uring_prep_recvmsg_multishot(sqe, e->fd, &e->recv_tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = e->br.bgid;
    io_uring_sqe_set_data64(sqe, TAG_RECV);
    e->recv_armed = 1;
}

static void arm_wake(struct sdp_engine *e)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe)
        return;
    io_uring_prep_poll_multishot(sqe, e->wake_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, TAG_WAKE);
    e->wake_armed = 1;
}

/* Inline mode has no thread of its own to sleep until the next deadline:
 * the application sleeps in its event loop on sdp_fd (the ring's fd) and
 * only calls in when the fd is readable.  A timeout request in the ring at
 * the next deadline makes the fd readable then, so retransmissions and
 * handshake retries run even when no packet arrives.  One timeout at a time:
 * a later deadline leaves it (it fires early, the round re-arms), an earlier
 * one moves it. */
static void arm_timer(struct sdp_engine *e, uint64_t at)
{
    if (e->threaded || at == UINT64_MAX || (e->timer_armed && e->timer_at <= at))
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe)
        return; /* retried on the next round */
    /* The kernel copies the time when the request is submitted, which is
     * within this round. */
    e->timer_ts.tv_sec = (long long)(at / 1000000000ull);
    e->timer_ts.tv_nsec = (long long)(at % 1000000000ull);
    if (e->timer_armed) {
        io_uring_prep_timeout_update(sqe, &e->timer_ts, TAG_TIMER, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, TAG_TIMER_UPD);
    } else {
        io_uring_prep_timeout(sqe, &e->timer_ts, 0, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, TAG_TIMER);
        e->timer_armed = 1;
    }
    e->timer_at = at;
}

int sdp_engine_attach_ring(struct sdp_engine *e, int threaded)
{
    /* Inline mode: the application may open in one thread and drive in
     * another (one at a time), so the ring cannot be single-issuer. */
    int rc = sdp_uring_init(&e->ring, e->cfg.ring_entries, threaded, &e->caps);
    if (rc)
        return SDP_EUNAVAIL;
    e->threaded = threaded;
    rc = sdp_bufring_setup(&e->ring, &e->br, 1, e->cfg.recv_bufs, RECV_BUF_SIZE);
    if (rc) {
        io_uring_queue_exit(&e->ring);
        return rc;
    }
    memset(&e->recv_tmpl, 0, sizeof(e->recv_tmpl));
    e->recv_tmpl.msg_namelen = sizeof(struct sockaddr_storage);
    e->recv_tmpl.msg_controllen = CMSG_SPACE(sizeof(int)) * 2;
    e->ring_ready = 1;
    /* The ring watches the eventfd for wake-ups from other threads.  In
     * inline mode the ring's own fd is the application's pollable fd: it
     * reads ready while completions wait, with no eventfd to drain. */
    e->armer = pthread_self();
    arm_recv(e);
    arm_wake(e);
    submit(e);
    return 0;
}

static void handoff(struct sdp_engine *e, unsigned owner, const struct sdp_core_addr *addr, const uint8_t *p,
                    size_t len)
{
    struct sdp_engine *t = e->group[owner];
    if (len > HANDOFF_PKT_MAX)
        return;
    pthread_mutex_lock(&t->ho_lock);
    int ok = t->ho_n < HANDOFF_SLOTS;
    if (ok) {
        struct handoff_pkt *h = &t->ho[(t->ho_head + t->ho_n) % HANDOFF_SLOTS];
        h->addr = *addr;
        h->len = (uint32_t)len;
        memcpy(h->data, p, len);
        t->ho_n++;
    }
    pthread_mutex_unlock(&t->ho_lock);
    if (ok) {
        e->st.handed_off++;
        sdp_engine_wake(t);
    }
}

static void drain_handoff(struct sdp_engine *e, uint64_t now)
{
    if (!e->ho)
        return;
    for (;;) {
        pthread_mutex_lock(&e->ho_lock);
        if (!e->ho_n) {
            pthread_mutex_unlock(&e->ho_lock);
            return;
        }
        /* Input under the hand-off lock keeps the slot stable; the core call
         * does not touch other engines, so no lock-order cycle. */
        struct handoff_pkt *h = &e->ho[e->ho_head];
        sdp_core_input(e->core, &h->addr, h->data, h->len, now);
        e->ho_head = (e->ho_head + 1) % HANDOFF_SLOTS;
        e->ho_n--;
        pthread_mutex_unlock(&e->ho_lock);
    }
}

/* Keep a datagram (or a no-session note) for this round's hs_run. */
static void hs_keep(struct sdp_engine *e, const struct sdp_core_addr *addr, const uint8_t *p, size_t l,
                    int no_session)
{
    if (!e->hs_in || e->hs_n == HS_INBOX || (!no_session && l > SDP_ENGINE_HS_PKT_MAX)) {
        e->st.hs_dropped++;
        return;
    }
    struct sdp_engine_hs_pkt *h = &e->hs_in[e->hs_n++];
    h->addr = *addr;
    h->len = (uint32_t)l;
    h->no_session = no_session;
    h->session = sdp_core_addr_session(e->core, addr);
    /* A packet without keys is kept too: the handshake this round may
     * bring them (0-RTT data that overtook its ClientHello, a response
     * that overtook the server's Finished), and it is tried again then. */
    if (l <= SDP_ENGINE_HS_PKT_MAX)
        memcpy(h->data, p, l);
}

/* After the handshake ran: the packets that found no keys, again; those
 * still without keep waiting a little (KEYLESS_NS, KEYLESS_MAX of them). */
static int keyless_try(struct sdp_engine *e, struct sdp_engine_hs_pkt *h, uint64_t now)
{
    /* Only a session the packet has not met yet can open it. */
    uint32_t cur = sdp_core_addr_session(e->core, &h->addr);
    if (cur == 0 || cur == h->session)
        return SDP_ENOKEY;
    h->session = cur;
    int rc = sdp_core_input(e->core, &h->addr, h->data, h->len, now);
    if (rc == 0)
        e->st.keyless_retried++;
    return rc;
}

static void retry_keyless(struct sdp_engine *e, unsigned n, uint64_t now)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < e->keyless_n; i++) {
        struct sdp_engine_hs_pkt *h = &e->keyless[i];
        if (keyless_try(e, h, now) == SDP_ENOKEY && now - e->keyless_at[i] < KEYLESS_NS) {
            if (kept != i) {
                memcpy(&e->keyless[kept], h, sizeof(*h));
                e->keyless_at[kept] = e->keyless_at[i];
            }
            kept++;
        }
    }
    e->keyless_n = kept;
    for (unsigned i = 0; i < n; i++) {
        struct sdp_engine_hs_pkt *h = &e->hs_in[i];
        if (!h->no_session || h->len > SDP_ENGINE_HS_PKT_MAX)
            continue;
        if (keyless_try(e, h, now) == SDP_ENOKEY && e->keyless_n < KEYLESS_MAX) {
            memcpy(&e->keyless[e->keyless_n], h, sizeof(*h));
            e->keyless_at[e->keyless_n++] = now;
        }
    }
}

static void input_one(struct sdp_engine *e, const struct sdp_core_addr *addr, const uint8_t *p, size_t l,
                      uint64_t now)
{
    int rc = sdp_core_input(e->core, addr, p, l, now);
    if (rc != SDP_ENOKEY)
        return;
    /* A peer whose keys do not open it (its new session's, coming with a
     * handshake?) is no occasion for a "no session" hint: 2 keeps it quietly. */
    int ready = sdp_core_peer_ready(e->core, addr);
    if (!ready && e->cfg.unknown_peer && e->cfg.unknown_peer(e->cfg.deliver_ctx, e, addr) == 0)
        sdp_core_input(e->core, addr, p, l, now);
    else if (e->hs_in)
        hs_keep(e, addr, p, l, ready ? 2 : 1);
}

/* An ACK carries RPC id 0 (it lists up to 8 finished RPCs), so the kernel
 * steers every ACK to engine 0; give a copy to each engine that owns one of
 * the listed RPCs (ACKs are idempotent, and each core authenticates it). */
static void input_ack(struct sdp_engine *e, const struct sdp_core_addr *addr, const uint8_t *p, size_t l,
                      uint64_t now)
{
    uint64_t owners = 0;
    uint8_t count = 0;
    const uint8_t *end = p + l;
    sdp_get_u8(p + 8, end, &count); /* callers pass at least a common header */
    for (unsigned i = 0; i < count && i < SDP_ACK_MAX; i++) {
        uint64_t id;
        if (!sdp_get_u48be(p + 16 + 6 * i, end, &id))
            break;
        owners |= UINT64_C(1) << (((uint32_t)id >> 1) % e->cfg.count);
    }
    if (!owners)
        owners = UINT64_C(1) << e->cfg.index; /* malformed: our core counts the drop */
    for (unsigned o = 0; o < e->cfg.count; o++) {
        if (!(owners & (UINT64_C(1) << o)))
            continue;
        if (o == e->cfg.index)
            input_one(e, addr, p, l, now);
        else
            handoff(e, o, addr, p, l);
    }
}

static void input_buffer(struct sdp_engine *e, const struct sdp_core_addr *addr, const uint8_t *p, size_t len,
                         uint16_t seg, uint64_t now)
{
    size_t step = seg ? seg : len;
    if (seg && len > seg)
        e->st.gro_batches++;
    for (size_t off = 0; off < len; off += step) {
        size_t l = len - off < step ? len - off : step;
        e->st.recv_pkts++;
        if (l >= SDP_HDR_LEN && (p[off] & 0x0f) == SDP_PKT_HANDSHAKE) {
            hs_keep(e, addr, p + off, l, 0); /* the socket's handshake, not the core, takes these */
            continue;
        }
        if (e->cfg.count > 1 && e->group && l >= SDP_HDR_LEN && (p[off] & 0x0f) == SDP_PKT_ACK) {
            input_ack(e, addr, p + off, l, now);
            continue;
        }
        if (e->cfg.count > 1 && e->group) {
            unsigned owner = sdp_steer_engine(p + off, l, e->cfg.count);
            if (owner != e->cfg.index) {
                e->st.misdirected++;
                handoff(e, owner, addr, p + off, l);
                continue;
            }
        }
        input_one(e, addr, p + off, l, now);
    }
}

static void on_recv(struct sdp_engine *e, struct io_uring_cqe *cqe, uint64_t now)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        e->recv_armed = 0;
    if (cqe->res < 0) {
        if (cqe->res == -ENOBUFS)
            e->st.enobufs++;
        return;
    }
    int bid = sdp_cqe_bid(cqe);
    if (bid < 0)
        return;
    e->st.recv_calls++;
    uint8_t *buf = sdp_bufring_buf(&e->br, (unsigned)bid);
    struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &e->recv_tmpl);
    if (o && !(o->flags & MSG_TRUNC)) {
        struct sdp_core_addr addr;
        struct msghdr view = {.msg_control = io_uring_recvmsg_cmsg_firsthdr(o, &e->recv_tmpl),
                              .msg_controllen = o->controllen};
        uint16_t seg = view.msg_control ? sdp_udp_rx_seg_size(&view) : 0;
        uint8_t *p = io_uring_recvmsg_payload(o, &e->recv_tmpl);
        size_t len = io_uring_recvmsg_payload_length(o, cqe->res, &e->recv_tmpl);
        if (sdp_engine_addr(io_uring_recvmsg_name(o), o->namelen, &addr) == 0) {
            if (e->kshim)
                sdp_kshim_eng_rx_begin(e->kshim, e->core, &addr, p, len, seg);
            input_buffer(e, &addr, p, len, seg, now);
            if (e->kshim)
                sdp_kshim_eng_rx_end(e->kshim);
        }
    }
    sdp_bufring_recycle(&e->br, (unsigned)bid);
}

static void on_send(struct sdp_engine *e, uint32_t slot, int res)
{
    if (res < 0)
        e->st.send_errors++;
    e->tx[slot].next_free = e->tx_free;
    e->tx_free = slot;
    e->tx_busy--;
}

/* Submit the prepared free slot at the head of the list: -1 when the
 * ring has no SQE (the slot stays free). */
static int send_slot(struct sdp_engine *e, uint32_t slot)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe) {
        e->st.send_errors++;
        return -1;
    }
    e->tx_free = e->tx[slot].next_free;
    e->tx_busy++;
    io_uring_prep_sendmsg(sqe, e->fd, &e->tx[slot].tx.msg, 0);
    io_uring_sqe_set_data64(sqe, TAG_SEND_BASE + slot);
    e->sq_sends++;
    e->st.send_calls++;
    return 0;
}

/* A gathered DATA segment (headers in buf, payloads in the message's wire
 * bytes) goes out at once with one sendmsg: the core may free those bytes
 * on its next call, so they cannot wait in the ring.  0 when sent (or
 * failed for good: counted), -1 when the socket is full: the caller copies
 * the segment into its slot and queues it in the ring, which waits. */
static int send_gathered(struct sdp_engine *e, struct sdp_udp_tx *tx, uint8_t *buf,
                         const struct sdp_core_seg_desc *d, size_t n)
{
    size_t pl = d->seg_size - SDP_DATA_HDR_LEN, left = n - (size_t)d->npkts * SDP_DATA_HDR_LEN;
    for (uint32_t i = 0; i < d->npkts; i++) {
        size_t len = left < pl ? left : pl;
        e->gather_iov[2 * i] = (struct iovec){buf + (size_t)i * SDP_DATA_HDR_LEN, SDP_DATA_HDR_LEN};
        e->gather_iov[2 * i + 1] = (struct iovec){(void *)(d->payload + (size_t)i * pl), len};
        left -= len;
    }
    tx->msg.msg_iov = e->gather_iov;
    tx->msg.msg_iovlen = 2 * d->npkts;
    /* Queued sends (grants, replies) first, as they would have gone. */
    if (io_uring_sq_ready(&e->ring))
        submit(e);
    ssize_t r = sendmsg(e->fd, &tx->msg, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
        return -1;
    e->st.send_calls++;
    if (r < 0)
        e->st.send_errors++;
    return 0;
}

/* Turn the core's pending output into sends: big DATA segments gathered
 * straight from the messages' sealed bytes, the rest copied into a slot and
 * submitted through the ring.  The kernel-sealing mode copies everything:
 * its module seals the slot's plaintext records. */
static void flush_output(struct sdp_engine *e, uint64_t now)
{
    while (e->tx_free != UINT32_MAX) {
        if (io_uring_sq_space_left(&e->ring) < 1)
            submit(e);
        uint32_t slot = e->tx_free;
        uint8_t *buf = e->tx[slot].buf;
        struct sdp_core_seg_desc d;
        int n = e->kshim ? sdp_core_output(e->core, now, buf, TX_BUF_SIZE, &d)
                         : sdp_core_output_gather(e->core, now, buf, TX_BUF_SIZE, GATHER_MIN, &d);
        if (n <= 0)
            break;
        if (sdp_udp_tx_prep(&e->tx[slot].tx, (const struct sockaddr *)d.addr->bytes, d.addr->len, buf, (size_t)n,
                            (uint16_t)d.seg_size, sdp_udp_tos_for_prio(d.priority)) != 0 ||
            (d.plain && (!d.seal_key || !e->kshim || sdp_kshim_eng_tx(&e->tx[slot].tx, &d, (size_t)n) != 0))) {
            /* Never plaintext without the module's descriptor. */
            e->st.send_errors++;
            continue;
        }
        if (d.payload) {
            if (send_gathered(e, &e->tx[slot].tx, buf, &d, (size_t)n) == 0)
                continue;
            /* The socket is full: copy, and let the ring wait for room. */
            sdp_core_seg_flatten(buf, &d, (size_t)n);
            e->tx[slot].tx.iov = (struct iovec){buf, (size_t)n};
            e->tx[slot].tx.msg.msg_iov = &e->tx[slot].tx.iov;
            e->tx[slot].tx.msg.msg_iovlen = 1;
        }
        if (send_slot(e, slot) != 0)
            break;
    }
}

/* The handshake's datagrams: one slot each, highest priority. */
static void flush_hs_output(struct sdp_engine *e, uint64_t now)
{
    while (e->tx_free != UINT32_MAX) {
        if (io_uring_sq_space_left(&e->ring) < 1)
            submit(e);
        uint32_t slot = e->tx_free;
        struct sdp_core_addr to;
        size_t n = e->cfg.hs_output(e->cfg.deliver_ctx, now, e->tx[slot].buf, TX_BUF_SIZE, &to);
        if (n == 0)
            break;
        if (sdp_udp_tx_prep(&e->tx[slot].tx, (const struct sockaddr *)to.bytes, to.len, e->tx[slot].buf, n,
                            (uint16_t)n, sdp_udp_tos_for_prio(SDP_PRIO_LEVELS - 1)) != 0) {
            e->st.send_errors++;
            continue;
        }
        if (send_slot(e, slot) != 0)
            break;
    }
}

static unsigned deliver_events(struct sdp_engine *e)
{
    struct sdp_core_event ev;
    unsigned n = 0;
    while (sdp_core_next_event(e->core, &ev) == 1) {
        e->cfg.deliver(e->cfg.deliver_ctx, e, &ev);
        n++;
    }
    return n;
}

static unsigned reap(struct sdp_engine *e, uint64_t now)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&e->ring, head, cqe) {
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        n++;
        if (tag == TAG_RECV) {
            on_recv(e, cqe, now);
        } else if (tag == TAG_WAKE) {
            if (!(cqe->flags & IORING_CQE_F_MORE))
                e->wake_armed = 0;
            uint64_t v; /* one read resets the counter */
            ssize_t r = read(e->wake_fd, &v, sizeof(v));
            (void)r;
        } else if (tag == TAG_NOTE) {
            e->note_pending = 0;
        } else if (tag == TAG_TIMER) {
            /* Fired (-ETIME) or cancelled: the round's end arms the next. */
            e->timer_armed = 0;
            e->st.timer_wakes += cqe->res == -ETIME;
        } else if (tag >= TAG_SEND_BASE && tag < TAG_SEND_BASE + e->cfg.tx_slots) {
            on_send(e, (uint32_t)(tag - TAG_SEND_BASE), cqe->res);
        } else if (cqe->res == (int)SDP_ENGINE_MSG_MAGIC && tag >= 4096 && e->cfg.uring_op) {
            e->cfg.uring_op(e->cfg.deliver_ctx, e, (void *)(uintptr_t)tag);
        }
    }
    io_uring_cq_advance(&e->ring, n);
    sdp_bufring_flush(&e->br);
    return n;
}

/* The kernel runs a request's task work (here: every receive) on the
 * thread that submitted it, whenever that thread next enters the kernel.
 * An inline socket is often opened by one thread and driven by another;
 * left alone, its receives would be done by the opener (or wait for it).
 * So when a new thread drives the engine, cancel the long-lived requests;
 * their final completions make this thread arm them again.  Lock held. */
static void rehome(struct sdp_engine *e)
{
    pthread_t me = pthread_self();
    if (e->threaded || pthread_equal(me, e->armer))
        return;
    e->armer = me;
    uint64_t tags[3] = {e->recv_armed ? TAG_RECV : 0, e->wake_armed ? TAG_WAKE : 0,
                        e->timer_armed ? TAG_TIMER : 0};
    for (int i = 0; i < 3; i++) {
        struct io_uring_sqe *sqe = tags[i] ? io_uring_get_sqe(&e->ring) : NULL;
        if (!sqe)
            continue;
        io_uring_prep_cancel64(sqe, tags[i], 0);
        io_uring_sqe_set_data64(sqe, TAG_CANCEL);
    }
}

/* Reap only when every ready completion is a send's (the common case
 * right after a submit: loopback and most UDP sends complete inline),
 * recycling their slots: 1 if it took them all, 0 (nothing consumed) when
 * something else waits and a full round must run.  Tx slots and the ring
 * belong to the driving thread, so no lock. */
static int reap_sends(struct sdp_engine *e, unsigned *n)
{
    struct io_uring_cqe *cqe;
    unsigned head, k = 0;
    io_uring_for_each_cqe(&e->ring, head, cqe) {
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag < TAG_SEND_BASE || tag >= TAG_SEND_BASE + e->cfg.tx_slots)
            return 0;
        k++;
    }
    /* Exactly those k: the kernel may post more meanwhile. */
    unsigned i = 0;
    io_uring_for_each_cqe(&e->ring, head, cqe) {
        if (i++ == k)
            break;
        on_send(e, (uint32_t)(io_uring_cqe_get_data64(cqe) - TAG_SEND_BASE), cqe->res);
    }
    io_uring_cq_advance(&e->ring, k);
    *n += k;
    return 1;
}

/* The handshake's part of a pass.  hs_run is called only when it has
 * something to do: datagrams for it, a poke (a send started a handshake,
 * or another engine's hs_run moved the shared deadline), its deadline,
 * output left over for lack of send slots, or packets kept until keys come
 * (retried after it).  A socket with a handshake configured but idle so
 * pays a comparison per pass, not a lock round and an empty flush. */
static unsigned hs_pass(struct sdp_engine *e, uint64_t *exp)
{
    uint64_t now = sdp_engine_now();
    unsigned hn = e->hs_n;
    if (!hn && !e->hs_again && !e->keyless_n && now < e->hs_exp && !atomic_exchange(&e->hs_poke, 0))
        return 0;
    e->hs_n = 0;
    uint64_t hexp = e->cfg.hs_run(e->cfg.deliver_ctx, e, e->hs_in, hn, now);
    now = sdp_engine_now(); /* a handshake step can take a while */
    pthread_mutex_lock(&e->lock);
    retry_keyless(e, hn, now);
    uint64_t sends = e->st.send_calls;
    flush_hs_output(e, now);
    int sent = e->st.send_calls != sends;
    e->hs_again = e->tx_free == UINT32_MAX; /* out of slots: the rest next pass */
    unsigned n = hn + deliver_events(e); /* what keys that just arrived let go */
    flush_output(e, now);
    *exp = sdp_core_next_expiry(e->core);
    pthread_mutex_unlock(&e->lock);
    if (sent) /* sending armed its timers: ask again for the deadline (cheap) */
        hexp = e->cfg.hs_run(e->cfg.deliver_ctx, e, NULL, 0, now);
    if (e->cfg.index == 0)
        e->hs_exp = hexp;
    else if (e->group) /* engine 0 keeps the handshake's timers */
        atomic_store(&e->group[0]->hs_poke, 1);
    return n;
}

/* Does the kernel still hold datagrams for us?  Asked only when the core's
 * timer is due (one ioctl then): a busy receiver's own queue is not
 * silence (sdp_core_set_backlog).  Datagrams another engine holds for
 * this one's RPCs are not seen; the core's deferral is bounded anyway. */
static int rx_backlog(const struct sdp_engine *e)
{
    int n = 0;
    return ioctl(e->fd, SIOCINQ, &n) == 0 && n > 0;
}

/* One pass of work: completions, hand-offs, timers, events, output.
 * Returns how much happened (completions reaped plus events delivered) and
 * sets *exp to the core's next deadline. */
static unsigned work(struct sdp_engine *e, uint64_t *exp)
{
    unsigned n = 0;
    for (int round = 0; round < 2; round++) {
        /* Sends complete while they are submitted; reaping those keeps
         * the ring (inline mode's pollable fd) from reading as ready with
         * nothing for the application.  Only other completions need a
         * second full round. */
        if (round == 1 && reap_sends(e, &n))
            break;
        pthread_mutex_lock(&e->lock);
        atomic_store(&e->wake_pending, 0);
        rehome(e);
        uint64_t now = sdp_engine_now();
        n += reap(e, now);
        drain_handoff(e, now);
        if (sdp_core_next_expiry(e->core) <= now) {
            sdp_core_set_backlog(e->core, rx_backlog(e));
            sdp_core_handle_expiry(e->core, now);
        }
        n += deliver_events(e);
        flush_output(e, now);
        if (!e->recv_armed)
            arm_recv(e);
        if (!e->wake_armed)
            arm_wake(e);
        *exp = sdp_core_next_expiry(e->core);
        pthread_mutex_unlock(&e->lock);
        /* What those operations queued goes out in this pass. */
        if (e->cfg.after_step && e->cfg.after_step(e->cfg.deliver_ctx, e)) {
            pthread_mutex_lock(&e->lock);
            n += deliver_events(e);
            flush_output(e, sdp_engine_now());
            *exp = sdp_core_next_expiry(e->core);
            pthread_mutex_unlock(&e->lock);
        }
        if (e->cfg.hs_run)
            n += hs_pass(e, exp);
        arm_timer(e, e->hs_exp < *exp ? e->hs_exp : *exp);
        /* A pass that found nothing leaves its sends (a reply queued with
         * sdp_config.batch_sends) to the wait that follows: one enter. */
        if (n == 0 && e->defer_submit)
            break;
        submit(e);
        if (!io_uring_cq_ready(&e->ring))
            break;
    }
    if (e->hs_exp < *exp)
        *exp = e->hs_exp;
    return n;
}

void sdp_engine_deliver(struct sdp_engine *e)
{
    deliver_events(e);
}

int sdp_engine_flush(struct sdp_engine *e)
{
    if (!e->ring_ready)
        return SDP_EINVAL;
    pthread_mutex_lock(&e->lock);
    unsigned n = deliver_events(e);
    flush_output(e, sdp_engine_now());
    uint64_t exp = sdp_core_next_expiry(e->core);
    pthread_mutex_unlock(&e->lock);
    if (e->cfg.hs_run)
        n += hs_pass(e, &exp);
    /* What was sent armed timers: the fd must wake for them (inline). */
    arm_timer(e, e->hs_exp < exp ? e->hs_exp : exp);
    submit(e);
    unsigned sends = 0;
    reap_sends(e, &sends); /* only when nothing else waits: the rest is the next pass's */
    if (e->tx_free == UINT32_MAX) {
        /* Out of send slots (their completions wait behind others): a full
         * pass recycles them and sends the rest. */
        n += work(e, &exp);
    }
    return (int)n;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin until a completion is ready (or the kernel holds task work that
 * would make one), a wake-up, or the deadline: 1 if there is work. */
static int busy_poll(struct sdp_engine *e, uint64_t until)
{
    for (unsigned i = 1;; i++) {
        if (io_uring_cq_ready(&e->ring) || atomic_load_explicit(&e->wake_pending, memory_order_relaxed))
            return 1;
        if (IO_URING_READ_ONCE(*e->ring.sq.kflags) & IORING_SQ_TASKRUN) {
            io_uring_get_events(&e->ring);
            continue;
        }
        cpu_relax();
        if (i % 64 == 0 && sdp_engine_now() >= until)
            return 0;
    }
}

int sdp_engine_step(struct sdp_engine *e, int64_t wait_ns)
{
    if (!e->ring_ready)
        return SDP_EINVAL;
    uint64_t exp;
    e->defer_submit = wait_ns != 0;
    unsigned n = work(e, &exp);
    e->defer_submit = 0;
    /* Sleep only when this pass found nothing: a caller waiting for a
     * message must see the one just delivered, not a timer later. */
    if (n > 0 || wait_ns == 0 || atomic_load(&e->wake_pending)) {
        submit(e); /* what the pass left for the wait (no-op when nothing) */
        return (int)n;
    }
    uint64_t now = sdp_engine_now();
    int64_t wait = wait_ns;
    if (exp != UINT64_MAX) {
        int64_t until = exp > now ? (int64_t)(exp - now) : 0;
        if (wait < 0 || until < wait)
            wait = until;
    }
    if (wait != 0 && e->cfg.busy_poll_ns && !e->threaded) {
        submit(e);
        uint64_t spin = wait > 0 && (uint64_t)wait < e->cfg.busy_poll_ns ? (uint64_t)wait : e->cfg.busy_poll_ns;
        if (busy_poll(e, now + spin))
            return (int)work(e, &exp);
        if (wait > 0)
            wait = wait > (int64_t)spin ? wait - (int64_t)spin : 0;
    }
    if (wait != 0) {
        /* Submit what the pass left and sleep in the same enter.  Each
         * send posts a completion (loopback's at once), so wait for one
         * more than those: a packet, the timer, a wake-up.  A completion
         * counted wrongly only ends the sleep early; the caller loops. */
        struct io_uring_cqe *cqe;
        unsigned want = e->sq_sends + 1;
        sdp_uring_check_sqes(&e->ring);
        e->sq_sends = 0;
        if (wait < 0) {
            io_uring_submit_and_wait(&e->ring, want);
        } else {
            struct __kernel_timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
            io_uring_submit_and_wait_timeout(&e->ring, &cqe, want, &ts, NULL);
        }
    } else {
        submit(e);
    }
    return (int)work(e, &exp);
}

void sdp_engine_hs_poke(struct sdp_engine *e)
{
    atomic_store(&e->hs_poke, 1);
}

void sdp_engine_wake(struct sdp_engine *e)
{
    /* One eventfd write per round is enough; skip it when one is pending. */
    if (atomic_exchange(&e->wake_pending, 1))
        return;
    uint64_t one = 1;
    ssize_t w = write(e->wake_fd, &one, sizeof(one));
    (void)w;
}

static void *engine_thread(void *arg)
{
    struct sdp_engine *e = arg;
    if (e->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(e->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    while (!atomic_load(&e->stop))
        sdp_engine_step(e, 100 * 1000 * 1000);
    sdp_engine_step(e, 0); /* a last pass sends what closing queued */
    return NULL;
}

struct start_arg {
    struct sdp_engine *e;
    pthread_mutex_t m;
    pthread_cond_t c;
    int done, rc;
};

static void *engine_thread_start(void *arg)
{
    struct start_arg *sa = arg;
    struct sdp_engine *e = sa->e;
    int rc = sdp_engine_attach_ring(e, 1); /* the ring belongs to this thread */
    pthread_mutex_lock(&sa->m);
    sa->rc = rc;
    sa->done = 1;
    pthread_cond_signal(&sa->c);
    pthread_mutex_unlock(&sa->m);
    if (rc)
        return NULL;
    return engine_thread(e);
}

int sdp_engine_start(struct sdp_engine *e, int cpu)
{
    struct start_arg sa = {.e = e, .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};
    e->cpu = cpu;
    atomic_store(&e->stop, 0);
    if (pthread_create(&e->thread, NULL, engine_thread_start, &sa) != 0)
        return SDP_ESYSTEM;
    pthread_mutex_lock(&sa.m);
    while (!sa.done)
        pthread_cond_wait(&sa.c, &sa.m);
    pthread_mutex_unlock(&sa.m);
    if (sa.rc) {
        pthread_join(e->thread, NULL);
        return sa.rc;
    }
    e->thread_running = 1;
    return 0;
}

void sdp_engine_stop(struct sdp_engine *e)
{
    if (!e->thread_running)
        return;
    atomic_store(&e->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(e->wake_fd, &one, sizeof(one));
    (void)w;
    pthread_join(e->thread, NULL);
    e->thread_running = 0;
}

void sdp_engine_free(struct sdp_engine *e)
{
    if (!e)
        return;
    sdp_engine_stop(e);
    if (e->ring_ready) {
        sdp_bufring_free(&e->ring, &e->br);
        io_uring_queue_exit(&e->ring);
    }
    if (e->fd >= 0)
        close(e->fd);
    sdp_kshim_eng_free(e->kshim);
    if (e->wake_fd >= 0)
        close(e->wake_fd);
    sdp_core_free(e->core);
    sdp_bufpool_free(e->pool);
    free(e->tx);
    free(e->tx_mem);
    free(e->ho);
    free(e->hs_in);
    free(e->keyless);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->ho_lock);
    free(e);
}

void sdp_engine_note(struct sdp_engine *e)
{
    if (!e->ring_ready)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe) {
        submit(e);
        if (!(sqe = io_uring_get_sqe(&e->ring)))
            return;
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, TAG_NOTE);
    submit(e);
}

void sdp_engine_note_once(struct sdp_engine *e)
{
    if (e->note_pending)
        return;
    e->note_pending = 1;
    sdp_engine_note(e);
}

int sdp_engine_ring_fd(const struct sdp_engine *e)
{
    return e->ring.ring_fd;
}

int sdp_engine_post(struct sdp_engine *e, int ring_fd, int res, uint64_t user_data)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe) {
        submit(e);
        sqe = io_uring_get_sqe(&e->ring);
        if (!sqe)
            return SDP_EAGAIN;
    }
    io_uring_prep_msg_ring(sqe, ring_fd, (unsigned)res, user_data, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, TAG_POST);
    return 0;
}

void sdp_engine_lock(struct sdp_engine *e)
{
    pthread_mutex_lock(&e->lock);
}

void sdp_engine_unlock(struct sdp_engine *e)
{
    pthread_mutex_unlock(&e->lock);
}

struct sdp_core *sdp_engine_core(struct sdp_engine *e)
{
    return e->core;
}

void sdp_engine_release(struct sdp_engine *e, uint8_t *data)
{
    sdp_core_release(e->core, data);
}

unsigned sdp_engine_index(const struct sdp_engine *e)
{
    return e->cfg.index;
}

int sdp_engine_fd(const struct sdp_engine *e)
{
    return e->fd;
}

int sdp_engine_event_fd(const struct sdp_engine *e)
{
    return e->threaded || !e->ring_ready ? e->wake_fd : e->ring.ring_fd;
}

void sdp_engine_get_stats(struct sdp_engine *e, struct sdp_engine_stats *st)
{
    *st = e->st;
}
