#include "core/core_ext.h"

#include "core/core_int.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

/* Total length of iov, or a negative code. */
static int64_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return SDP_EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return SDP_EINVAL;
        if (iov[i].iov_len > SDP_MSG_LEN_MAX - total)
            return SDP_ETOOBIG;
        total += iov[i].iov_len;
    }
    return (int64_t)total;
}

int sdp_core_send_request_id(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov,
                             int iovcnt, uint64_t cookie, uint64_t now)
{
    if (!c || !sdp_core_peer_at(c, peer) || id == 0 || (id & 1) || id > SDP_ID_MAX - 1 ||
        sdp_rpc_find(&c->rpcs, peer, id))
        return SDP_EINVAL;
    int64_t len = iov_total(iov, iovcnt);
    if (len < 0)
        return (int)len;
    uint64_t got = 0;
    return sdp_core_send_request_v(c, peer, id, iov, iovcnt, (size_t)len, cookie, now, &got);
}

int sdp_core_send_request_flags(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov,
                                int iovcnt, uint64_t cookie, uint64_t now, unsigned flags, uint64_t *rpc_id)
{
    if (!c || !sdp_core_peer_at(c, peer) || (id & 1) || id > SDP_ID_MAX - 1 ||
        (id != 0 && sdp_rpc_find(&c->rpcs, peer, id)))
        return SDP_EINVAL;
    int64_t len = iov_total(iov, iovcnt);
    if (len < 0)
        return (int)len;
    uint64_t got = 0;
    int rc = sdp_core_send_request_fv(c, peer, id, iov, iovcnt, (size_t)len, cookie, now, flags, &got);
    if (rc == 0 && rpc_id)
        *rpc_id = got;
    return rc;
}

void sdp_core_flush_acks(struct sdp_core *c)
{
    for (uint32_t i = 0; c && i < c->npeers; i++)
        if (c->peers[i].nacks)
            sdp_core_ctl_ack_flush(c, &c->peers[i]);
}

int sdp_core_send_response_iov(struct sdp_core *c, uint32_t peer, uint64_t rpc_id, const struct iovec *iov,
                               int iovcnt, uint64_t now)
{
    int64_t len = iov_total(iov, iovcnt);
    if (len < 0)
        return (int)len;
    return sdp_core_send_response_v(c, peer, rpc_id, iov, iovcnt, (size_t)len, now);
}

int sdp_core_peer_ready(const struct sdp_core *c, const struct sdp_core_addr *addr)
{
    const struct sdp_peer *p = sdp_core_peer_find(c, addr);
    return p && !p->keys_pending;
}

uint32_t sdp_core_addr_session(const struct sdp_core *c, const struct sdp_core_addr *addr)
{
    const struct sdp_peer *p = sdp_core_peer_find(c, addr);
    return p && !p->keys_pending ? p->session : 0;
}

const struct sdp_aead_key *sdp_core_peer_rx_key(const struct sdp_core *c, const struct sdp_core_addr *addr,
                                                unsigned phase)
{
    const struct sdp_peer *p = sdp_core_peer_find(c, addr);
    if (!p || p->keys_pending)
        return NULL;
    /* The most likely generation held for this phase; never derives one. */
    uint32_t gens[3];
    unsigned n = sdp_keys_rx_candidates(&p->keys, phase & 1u, 0, gens);
    for (unsigned i = 0; i < n; i++) {
        const struct sdp_rec_key *rk = &p->keys.rx[gens[i] % SDP_RX_GENS];
        if (rk->prov && rk->generation == gens[i])
            return rk->data;
    }
    return NULL;
}
