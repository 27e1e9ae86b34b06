/* sdp_send / sdp_reply / sdp_recv: starting, answering and receiving RPCs. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "core/core_ext.h"
#include "engine/steer.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

/* The engine that owns an RPC: the same function as the kernel's steering
 * program applies to the id in our header. */
unsigned sdp_api_owner_engine(const sdp_socket *s, uint64_t id)
{
    return s->n > 1 ? (unsigned)(((uint32_t)id >> 1) % s->n) : 0;
}

static int queue_len(sdp_socket *s)
{
    return (int)__atomic_load_n(&s->q_n, __ATOMIC_ACQUIRE); /* written under q_lock, read without */
}

/* Send what is queued now (inline): one submit. */
static void api_flush(sdp_socket *s, struct sdp_engine *e)
{
    /* Sending delivered an event (rare) that no completion announces; the
     * application's poll on sdp_fd (the ring's fd) must still wake for it. */
    if (sdp_engine_flush(e) > 0 && queue_len(s) > 0)
        sdp_engine_note(e);
}

/* After work was queued on an engine: threaded, wake its thread; inline,
 * send now.  Inline, only the output goes: taking in what arrived meanwhile
 * is the application's next pass's job (its completions keep sdp_fd
 * readable), so a send or reply costs one submit and no no-op completion. */
void sdp_api_kick(sdp_socket *s, struct sdp_engine *e)
{
    if (s->threaded) {
        sdp_engine_wake(e);
        return;
    }
    if (s->corked) {
        s->cork_pending = 1; /* sdp_cork(s, 0) sends all of them at once */
        return;
    }
    /* Opt-in batching: the caller's next sdp_recv / sdp_process round
     * submits these with whatever else it queued; the cap bounds how long
     * a burst's first reply waits for its last. */
    if (s->cfg.batch_sends && ++s->batched < SDP_API_BATCH_MAX)
        return;
    s->batched = 0;
    api_flush(s, e);
}

int sdp_cork(sdp_socket *s, int on)
{
    if (!s)
        return SDP_EINVAL;
    if (s->threaded)
        return 0; /* the engine threads send as soon as they are woken */
    s->corked = on != 0;
    if (!s->corked && (s->cork_pending || s->batched)) {
        s->cork_pending = 0;
        s->batched = 0;
        api_flush(s, s->eng[0]);
    }
    return 0;
}

void sdp_notify(sdp_socket *s)
{
    if (!s)
        return;
    if (s->threaded) {
        uint64_t one = 1;
        ssize_t w = write(s->q_fd, &one, sizeof(one));
        (void)w;
        return;
    }
    sdp_engine_note(s->eng[0]);
}

static int check_iov(const struct iovec *iov, int iovcnt, size_t *total)
{
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return SDP_EINVAL;
    size_t t = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return SDP_EINVAL;
        if (iov[i].iov_len > SDP_MSG_LEN_MAX || t + iov[i].iov_len > SDP_MSG_LEN_MAX)
            return SDP_ETOOBIG;
        t += iov[i].iov_len;
    }
    *total = t;
    return 0;
}

int sdp_sendv(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len, const struct iovec *iov, int iovcnt,
              uint64_t cookie, uint64_t *rpc_id)
{
    struct sdp_core_addr a;
    size_t total;
    if (!s || !peer || sdp_engine_addr(peer, peer_len, &a) != 0 || peer->sa_family != s->family)
        return SDP_EINVAL;
    int rc = check_iov(iov, iovcnt, &total);
    if (rc)
        return rc;
    if (total > s->cfg.max_message)
        return SDP_ETOOBIG;
    int idx = sdp_api_peer_get(s, &a);
    if (idx == SDP_ENOKEY || (idx >= 0 && atomic_load_explicit(&s->peers[idx].keys, memory_order_acquire))) {
        /* No keys yet: the handshake gets them while the message waits. */
        rc = sdp_api_hs_send(s, &a, iov, iovcnt, total, cookie, rpc_id);
        if (rc != SDP_EAGAIN)
            return rc;
        idx = sdp_api_peer_get(s, &a);
    }
    if (idx < 0)
        return idx;
    uint64_t id = atomic_fetch_add(&s->peers[idx].next_id, 2);
    if (id > SDP_ID_MAX - 1)
        return SDP_ELIMIT; /* the id space of this key is spent: re-key */
    struct sdp_engine *e = s->eng[sdp_api_owner_engine(s, id)];
    sdp_engine_lock(e);
    rc = sdp_core_send_request_id(sdp_engine_core(e), (uint32_t)idx, id, iov, iovcnt, cookie, sdp_engine_now());
    sdp_engine_unlock(e);
    if (rc)
        return rc;
    if (rpc_id)
        *rpc_id = id;
    sdp_api_kick(s, e);
    return 0;
}

int sdp_send(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len, const void *buf, size_t len,
             uint64_t cookie, uint64_t *rpc_id)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return sdp_sendv(s, peer, peer_len, &iov, 1, cookie, rpc_id);
}

int sdp_replyv(sdp_socket *s, const struct sdp_msg *req, const struct iovec *iov, int iovcnt)
{
    size_t total;
    if (!s || !req || req->kind != SDP_MSG_REQUEST || req->priv_engine >= s->n)
        return SDP_EINVAL;
    int rc = check_iov(iov, iovcnt, &total);
    if (rc)
        return rc;
    if (total > s->cfg.max_message)
        return SDP_ETOOBIG;
    struct sdp_engine *e = s->eng[req->priv_engine];
    sdp_engine_lock(e);
    /* A request of a session that was replaced since (the peer handshook
     * again) must not be answered: the new session may reuse its id. */
    if (sdp_core_peer_session(sdp_engine_core(e), req->priv_peer) != req->priv_session)
        rc = SDP_EUNKNOWN;
    else
        rc = sdp_core_send_response_iov(sdp_engine_core(e), req->priv_peer, req->rpc_id, iov, iovcnt,
                                    sdp_engine_now());
    sdp_engine_unlock(e);
    if (rc == 0)
        sdp_api_kick(s, e);
    return rc;
}

int sdp_reply(sdp_socket *s, const struct sdp_msg *req, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return sdp_replyv(s, req, &iov, 1);
}

void sdp_release(sdp_socket *s, struct sdp_msg *msg)
{
    if (!s || !msg || !msg->data || msg->priv_engine >= s->n)
        return;
    struct sdp_engine *e = s->eng[msg->priv_engine];
    sdp_engine_lock(e);
    sdp_engine_release(e, msg->data);
    sdp_engine_unlock(e);
    msg->data = NULL;
    msg->len = 0;
}

int sdp_process(sdp_socket *s, int timeout_ms)
{
    if (!s)
        return SDP_EINVAL;
    if (!s->threaded) {
        s->batched = 0; /* the round sends them */
        sdp_engine_step(s->eng[0], timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000);
    }
    return queue_len(s);
}

static int recv_inline(sdp_socket *s, struct sdp_msg *msg, int timeout_ms)
{
    if (timeout_ms == 0) {
        /* A poll: what is queued, else one round without sleeping (no
         * deadline, so no clock reads of our own). */
        if (sdp_api_queue_pop(s, msg))
            return 0;
        s->batched = 0; /* the round sends them */
        sdp_engine_step(s->eng[0], 0);
        return sdp_api_queue_pop(s, msg) ? 0 : SDP_EAGAIN;
    }
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : sdp_engine_now() + (uint64_t)timeout_ms * 1000000;
    for (;;) {
        if (sdp_api_queue_pop(s, msg))
            return 0;
        uint64_t now = sdp_engine_now();
        if (now >= deadline)
            return SDP_EAGAIN;
        s->batched = 0; /* the round sends them */
        sdp_engine_step(s->eng[0], deadline == UINT64_MAX ? -1 : (int64_t)(deadline - now));
    }
}

static int recv_threaded(sdp_socket *s, struct sdp_msg *msg, int timeout_ms)
{
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : sdp_engine_now() + (uint64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&s->q_lock);
    while (s->q_n == 0) {
        if (timeout_ms == 0) {
            pthread_mutex_unlock(&s->q_lock);
            return SDP_EAGAIN;
        }
        if (deadline == UINT64_MAX) {
            pthread_cond_wait(&s->q_cond, &s->q_lock);
            continue;
        }
        /* The condition variable runs on CLOCK_REALTIME; convert. */
        uint64_t now = sdp_engine_now();
        if (now >= deadline) {
            pthread_mutex_unlock(&s->q_lock);
            return SDP_EAGAIN;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = deadline - now;
        ts.tv_sec += (time_t)(left / 1000000000);
        ts.tv_nsec += (long)(left % 1000000000);
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->q_cond, &s->q_lock, &ts);
    }
    pthread_mutex_unlock(&s->q_lock);
    return sdp_api_queue_pop(s, msg) ? 0 : recv_threaded(s, msg, 0);
}

int sdp_recv(sdp_socket *s, struct sdp_msg *msg, int timeout_ms)
{
    if (!s || !msg)
        return SDP_EINVAL;
    if (s->threaded)
        return recv_threaded(s, msg, timeout_ms);
    int rc = recv_inline(s, msg, timeout_ms);
    /* sdp_fd reads ready while messages wait (sdp.h): an event loop that
     * takes one message per readable event must come back for the rest
     * even when no packet or deadline would wake it. */
    if (rc == 0 && queue_len(s) > 0)
        sdp_engine_note_once(s->eng[0]);
    return rc;
}
