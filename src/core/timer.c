/* The timer: one tick (1 ms by default) walks every live RPC.  Silence
 * (no new bytes or control packets for the RPC) triggers a probe (RESEND
 * or NEED_ACK) every resend_ticks.  Probes are rationed per peer and tick,
 * so thousands of RPCs waiting on one busy server cannot flood it (each
 * probe draws an answer).  An RPC fails (client) or is forgotten (server),
 * freeing all of its state, after timeout_ticks of silence once either its
 * own max_probes probes or, the peer being silent as a whole, the peer's
 * went unanswered: a live peer answers every probe, so only a dead peer or
 * a lost RPC gets there.  Unauthenticated requests are forgotten sooner:
 * they may be forgeries. */
#include "core/core_int.h"

#include "sdp/sdp.h"
#include "wire/wire.h"

uint64_t sdp_core_next_expiry(const struct sdp_core *c)
{
    return c->next_tick;
}

static int due(const struct sdp_core *c, const struct sdp_rpc *r)
{
    /* A response sent in full is only waiting for its client's ACK, which
     * may be delayed by up to the client's ack_delay_ticks; a lost response
     * packet is the client's to ask for (RESEND), so NEED_ACK is only the
     * server's way to free state whose ACK was lost: it waits longer. */
    uint32_t rt = r->state == SDP_RPC_SRV_OUTGOING && sdp_msgout_all_sent(&r->out) ? c->cfg.ack_wait_ticks
                                                                                   : c->cfg.resend_ticks;
    return r->silent_ticks >= rt && r->since_probe >= rt;
}

static int peer_dead(const struct sdp_core *c, const struct sdp_peer *p)
{
    return p->silent_ticks >= c->cfg.timeout_ticks && p->unanswered >= c->cfg.max_probes;
}

/* Ask for the first bytes we miss of an incoming message, or (client
 * without any response yet) for the start of the response. */
static int ask(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r)
{
    struct sdp_msgin *m = &r->in;
    uint32_t off = 0, len = c->cfg.grant_window;
    if (sdp_msgin_live(m) && m->authed) {
        uint32_t limit = m->g.tracked ? m->g.granted : m->unsched;
        if (limit < m->unsched)
            limit = m->unsched;
        if (!sdp_msgin_missing(m, limit, &off, &len))
            return 0;
    } else if (sdp_msgin_live(m)) {
        /* Unauthenticated: its length and layout may come from a corrupted
         * or forged packet, so gaps in that layout may not exist at the
         * sender.  Ask from the start; genuine packets replace the claim. */
        len = m->unsched ? m->unsched : 1;
    }
    sdp_core_ctl_resend(c, p, r->id, off, len, SDP_PRIO_LEVELS - 1);
    return 1;
}

void sdp_core_handle_expiry(struct sdp_core *c, uint64_t now)
{
    if (now < c->next_tick)
        return;
    unsigned old_keys = 0;
    int warm_keys = 0;
    uint64_t idle_ns = (uint64_t)c->cfg.tick_ns * SDP_CORE_KEY_IDLE_TICKS;
    for (uint32_t i = 0; i < c->npeers; i++) {
        struct sdp_peer *pp = &c->peers[i];
        pp->probes_tick = 0;
        if (pp->nrpcs)
            pp->silent_ticks++;
        if (pp->in_use) {
            old_keys += sdp_keys_rx_tick(&pp->keys, &c->st);
            warm_keys |= sdp_keys_idle_tick(&pp->keys, now, idle_ns);
        }
    }
    struct sdp_rpc *r = c->rpcs.active, *next;
    for (; r; r = next) {
        next = r->anext;
        struct sdp_peer *p = &c->peers[r->peer];
        if (r->state == SDP_RPC_SRV_SERVICE)
            continue; /* the application has it */
        /* A message that has all we granted it is waiting for us, not
         * silent (Homa: only expected bytes count).  Its sender hears
         * nothing meanwhile, so tell it we are alive, or it would give up
         * on a message we are merely slow to grant. */
        uint32_t o, l;
        if (sdp_msgin_live(&r->in) && r->in.authed && r->in.g.linked &&
            !sdp_msgin_missing(&r->in, r->in.g.granted, &o, &l)) {
            r->silent_ticks = 0;
            if (++r->wait_ticks % c->cfg.resend_ticks == 0)
                sdp_core_ctl_simple(c, p, SDP_PKT_BUSY, r->id);
        } else {
            r->wait_ticks = 0;
            r->silent_ticks++;
        }
        r->since_probe++;
        uint32_t limit = c->cfg.timeout_ticks;
        /* An RPC we have nothing to probe for waits on a peer that would
         * talk (grants, BUSY) if it were alive: silence alone decides. */
        int probing = r->state == SDP_RPC_CLIENT || r->state == SDP_RPC_SRV_INCOMING ||
                      (r->state == SDP_RPC_SRV_OUTGOING && sdp_msgout_all_sent(&r->out));
        int gone = !probing || r->probes >= c->cfg.max_probes || peer_dead(c, p);
        if (r->unauth && limit > 4 * c->cfg.resend_ticks) {
            limit = 4 * c->cfg.resend_ticks;
            gone = 1;
        }
        if (r->silent_ticks >= limit && gone) {
            if (r->state == SDP_RPC_CLIENT) {
                c->st.client_timeouts++;
                sdp_core_rpc_fail(c, r, SDP_ETIMEDOUT);
            } else {
                c->st.server_timeouts++;
                sdp_core_rpc_free(c, r);
            }
            continue;
        }
        if (!due(c, r) || p->probes_tick >= c->cfg.probe_budget)
            continue; /* over budget: still due, probed on a later tick */
        int probed = 0;
        switch (r->state) {
        case SDP_RPC_CLIENT:
        case SDP_RPC_SRV_INCOMING:
            probed = ask(c, p, r);
            break;
        case SDP_RPC_SRV_OUTGOING:
            if (sdp_msgout_all_sent(&r->out)) {
                sdp_core_ctl_simple(c, p, SDP_PKT_NEED_ACK, r->id);
                probed = 1;
            }
            break;
        default:
            break;
        }
        if (probed) {
            r->since_probe = 0;
            r->probes++;
            p->unanswered++;
            p->probes_tick++;
        }
    }
    int acks = 0;
    for (uint32_t i = 0; i < c->npeers; i++) {
        struct sdp_peer *pp = &c->peers[i];
        if (!pp->nacks)
            continue;
        /* Either way one more tick: after a flush, it sees the ACK's seal
         * and dates the key's last use right (sdp_keys_idle_tick). */
        if (pp->ack_now || ++pp->ack_age >= c->cfg.ack_delay_ticks)
            sdp_core_ctl_ack_flush(c, pp);
        acks = 1;
    }
    sdp_core_run_grants(c);
    /* Older key generations waiting to be wiped keep the timer going;
     * keys holding cipher contexts need one more visit, when they may have
     * become idle (sdp_core_arm brings the next tick forward again when
     * something starts before). */
    if (c->rpcs.active || acks || old_keys)
        c->next_tick = now + c->cfg.tick_ns;
    else
        c->next_tick = warm_keys ? now + idle_ns : UINT64_MAX;
}
