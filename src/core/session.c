/* A peer's session and keys over time: key update, 0-RTT keys, and the
 * replacement or removal of a session (docs/PROTOCOL.md section 7). */
#include "core/core_int.h"

#include <string.h>

#include "sdp/sdp.h"
#include "wire/wire.h"

void sdp_core_rx_end(struct sdp_core *c, struct sdp_rpc *r)
{
    if (!r->in_counted)
        return;
    struct sdp_peer *p = &c->peers[r->peer];
    if (r->in_flags & SDP_F_EARLY)
        sdp_keys_early_end(&p->keys);
    else
        sdp_keys_rx_end(&p->keys, r->in_gen);
    r->in_counted = 0;
}

void sdp_core_tx_sealed(struct sdp_core *c, struct sdp_peer *p)
{
    /* A failure leaves the old key in use; the next seal tries again and
     * the hard limit (SDP_EKEYLIMIT) still holds. */
    (void)sdp_keys_tx_maybe_update(&p->keys, 0, &c->st);
}

static int counted_out(const struct sdp_rpc *r)
{
    return sdp_msgout_live(&r->out) && !(r->out.hdr_flags & SDP_F_EARLY);
}

void sdp_core_tx_begin(struct sdp_core *c, struct sdp_rpc *r)
{
    if (counted_out(r))
        sdp_keys_tx_begin(&c->peers[r->peer].keys, r->out.gen);
}

void sdp_core_tx_end(struct sdp_core *c, struct sdp_rpc *r)
{
    if (!counted_out(r))
        return;
    struct sdp_peer *p = &c->peers[r->peer];
    sdp_keys_tx_end(&p->keys, r->out.gen);
    sdp_core_tx_sealed(c, p);
}

void sdp_core_tx_confirm(struct sdp_core *c, struct sdp_rpc *r)
{
    if (!counted_out(r))
        return;
    struct sdp_peer *p = &c->peers[r->peer];
    sdp_keys_tx_confirm(&p->keys, r->out.gen);
    sdp_core_tx_sealed(c, p);
}

int sdp_core_key_update(struct sdp_core *c, uint32_t peer)
{
    struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p)
        return SDP_EINVAL;
    /* Asked-for updates are paced like automatic ones: one generation
     * beyond the current, taken as soon as the peer can follow. */
    p->keys.tx_want = p->keys.tx.generation + 1;
    return sdp_keys_tx_maybe_update(&p->keys, 0, &c->st);
}

int sdp_core_key_generation(const struct sdp_core *c, uint32_t peer, uint32_t *tx, uint32_t *rx)
{
    const struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p)
        return SDP_EINVAL;
    if (tx)
        *tx = p->keys.tx.generation;
    if (rx)
        *rx = p->keys.rx_cur;
    return 0;
}

uint32_t sdp_core_peer_session(const struct sdp_core *c, uint32_t peer)
{
    const struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    return p ? p->session : 0;
}

/* Drop the control packets queued for a peer: they are sealed under keys
 * its new session does not have, and name RPCs that are gone. */
static void ctlq_purge(struct sdp_core *c, uint32_t peer)
{
    uint32_t cap = c->cfg.ctlq_cap, n = c->ctlq_n, kept = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t from = (c->ctlq_head + k) % cap;
        if (c->ctlq_peer[from] == peer)
            continue;
        uint32_t to = (c->ctlq_head + kept) % cap;
        if (to != from) {
            memcpy(c->ctlq + (size_t)to * SDP_CTL_SLOT, c->ctlq + (size_t)from * SDP_CTL_SLOT, SDP_CTL_SLOT);
            c->ctlq_peer[to] = c->ctlq_peer[from];
            c->ctlq_len[to] = c->ctlq_len[from];
        }
        kept++;
    }
    c->ctlq_n = kept;
}

static void peer_unhash(struct sdp_core *c, struct sdp_peer *p)
{
    struct sdp_peer **pp = &c->peer_hash[sdp_peer_addr_hash(&p->addr) & c->peer_hmask];
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = p->hnext;
    p->hnext = NULL;
}

/* End the peer's session: every RPC with it, its queued packets, keys. */
static void session_end(struct sdp_core *c, struct sdp_peer *p)
{
    struct sdp_rpc *r = c->rpcs.active, *next;
    for (; r; r = next) {
        next = r->anext;
        if (r->peer != p->idx)
            continue;
        /* The new session cannot answer these; the application may send
         * them again under it. */
        if (r->state == SDP_RPC_CLIENT)
            sdp_core_rpc_fail(c, r, SDP_EUNKNOWN);
        else
            sdp_core_rpc_free(c, r);
    }
    ctlq_purge(c, p->idx);
    sdp_keys_fini(&p->keys);
    sdp_core_replay_free(c, p);
    peer_unhash(c, p);
    p->in_use = 0;
    p->session = 0;
    c->peers_live--;
}

int sdp_core_peer_remove(struct sdp_core *c, uint32_t peer)
{
    struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p)
        return SDP_EINVAL;
    session_end(c, p);
    c->st.peers_removed++;
    return 0;
}

int sdp_core_peer_replace(struct sdp_core *c, uint32_t peer, const struct sdp_core_peer_cfg *pc)
{
    struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p || !pc || pc->addr.len == 0 || pc->addr.len > SDP_CORE_ADDR_MAX || pc->mtu < 576 ||
        pc->mtu > 65535 || pc->ip_hdr_len > 60)
        return SDP_EINVAL;
    struct sdp_peer *other = sdp_core_peer_find(c, &pc->addr);
    if (other && other != p)
        return SDP_EINVAL;
    session_end(c, p);
    int rc = sdp_core_peer_setup(c, p, peer, pc);
    if (rc != 0) {
        sdp_keys_fini(&p->keys);
        memset(p, 0, sizeof(*p));
        c->st.peers_removed++;
        return rc;
    }
    sdp_core_peer_hash(c, p);
    c->peers_live++;
    c->st.peers_replaced++;
    return 0;
}

int sdp_core_peer_set_early(struct sdp_core *c, uint32_t peer, enum sdp_suite suite,
                            const uint8_t secret[SDP_SECRET_LEN], int dir)
{
    struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p)
        return SDP_EINVAL;
    return sdp_keys_set_early(&p->keys, suite, secret, dir);
}

int sdp_core_peer_install(struct sdp_core *c, uint32_t peer, const struct sdp_core_peer_cfg *pc)
{
    struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p || !pc || !p->keys_pending || pc->suite != p->keys.suite)
        return SDP_EINVAL;
    int rc = sdp_keys_install0(&p->keys, pc, c->cfg.key_update_after);
    if (rc != 0)
        return rc;
    p->keys_pending = 0;
    sdp_peer_heard(p, c->now); /* its silence so far was ours to keep */
    c->grants_due = 1;
    return 0;
}

int sdp_core_forget_request(struct sdp_core *c, uint32_t peer, uint64_t id)
{
    if (!c || !sdp_core_peer_at(c, peer))
        return SDP_EINVAL;
    struct sdp_rpc *r = sdp_rpc_find(&c->rpcs, peer, id);
    if (!r || r->state != SDP_RPC_CLIENT || !(r->out.hdr_flags & SDP_F_EARLY))
        return SDP_EUNKNOWN;
    sdp_core_rpc_free(c, r);
    return 0;
}

int sdp_core_peer_drop_early(struct sdp_core *c, uint32_t peer)
{
    struct sdp_peer *p = c ? sdp_core_peer_at(c, peer) : NULL;
    if (!p)
        return SDP_EINVAL;
    sdp_keys_drop_early(&p->keys);
    return 0;
}
