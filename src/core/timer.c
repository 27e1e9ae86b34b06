/* The timer walks every live RPC when something can be due (whole ticks of
 * 1 ms by default).  Silence
 * (no new bytes or control packets for the RPC) triggers a probe (RESEND
 * or NEED_ACK) every resend_ticks.  Probes are rationed per peer and pass,
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

static uint64_t ticks(const struct sdp_core *c, uint32_t n)
{
    return (uint64_t)c->cfg.tick_ns * n;
}

/* Silence before a probe: a response sent in full only waits for its
 * client's ACK, which may be delayed by up to the client's ack_delay_ticks;
 * a lost response packet is the client's to ask for (RESEND), so NEED_ACK
 * is only the server's way to free state whose ACK was lost: it waits
 * longer. */
static uint64_t probe_wait(const struct sdp_core *c, const struct sdp_rpc *r)
{
    int acked_only = r->state == SDP_RPC_SRV_OUTGOING && sdp_msgout_all_sent(&r->out);
    return ticks(c, acked_only ? c->cfg.ack_wait_ticks : c->cfg.resend_ticks);
}

/* When a probe for r is due: after probe_wait of silence and of quiet from us. */
static uint64_t probe_at(const struct sdp_core *c, const struct sdp_rpc *r)
{
    uint64_t last = r->heard_at > r->probed_at ? r->heard_at : r->probed_at;
    return last + probe_wait(c, r);
}

void sdp_core_set_backlog(struct sdp_core *c, int backlog)
{
    c->rx_backlog = backlog != 0;
}

/* A receiver that has not read all its input yet cannot tell a lost packet
 * from one waiting in its own queue: when it is busy (many senders at once,
 * each with unscheduled bytes) that queue can hold more than a probe's
 * wait, and probing then only brings copies of bytes already here.  So
 * while input is queued a due probe waits up to this many more probe
 * waits; then it goes anyway, in case the queue never empties.  Kept
 * below the 4 waits after which an unauthenticated request is forgotten,
 * so that one is still asked for once. */
#define SDP_CORE_BACKLOG_WAITS 2

static int peer_dead(const struct sdp_core *c, const struct sdp_peer *p, uint64_t now)
{
    return now - p->heard_at >= ticks(c, c->cfg.timeout_ticks) && p->unanswered >= c->cfg.max_probes;
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

static void at_least(uint64_t *next, uint64_t t)
{
    if (t < *next)
        *next = t;
}

/* The timer runs when something can be due, not every tick: each pass
 * computes the earliest probe, BUSY, time-out, ACK or key deadline of
 * everything live (docs/CORE.md "Timer").  Silence is measured from
 * timestamps the input sets, so a pass that comes late or after a long
 * sleep counts exactly.  Deadlines are rounded up to whole ticks so that
 * RPCs due at nearly the same time share a pass. */
void sdp_core_handle_expiry(struct sdp_core *c, uint64_t now)
{
    if (now < c->next_tick)
        return;
    sdp_core_time(c, now);
    now = c->now;
    unsigned old_keys = 0;
    int warm_keys = 0;
    uint64_t idle_ns = ticks(c, SDP_CORE_KEY_IDLE_TICKS);
    uint64_t next = UINT64_MAX, soon = now + c->cfg.tick_ns;
    for (uint32_t i = 0; i < c->npeers; i++) {
        struct sdp_peer *pp = &c->peers[i];
        pp->probes_tick = 0;
        if (pp->in_use) {
            old_keys += sdp_keys_rx_tick(&pp->keys, &c->st);
            warm_keys |= sdp_keys_idle_tick(&pp->keys, now, idle_ns);
        }
    }
    uint64_t rt = ticks(c, c->cfg.resend_ticks);
    struct sdp_rpc *r = c->rpcs.active, *nx;
    for (; r; r = nx) {
        nx = r->anext;
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
            r->heard_at = now;
            if (now - r->busy_at >= rt) {
                sdp_core_ctl_simple(c, p, SDP_PKT_BUSY, r->id);
                r->busy_at = now;
            }
            at_least(&next, r->busy_at + rt);
        } else {
            r->busy_at = now;
        }
        uint64_t limit = ticks(c, c->cfg.timeout_ticks);
        /* An RPC we have nothing to probe for waits on a peer that would
         * talk (grants, BUSY) if it were alive: silence alone decides. */
        int probing = r->state == SDP_RPC_CLIENT || r->state == SDP_RPC_SRV_INCOMING ||
                      (r->state == SDP_RPC_SRV_OUTGOING && sdp_msgout_all_sent(&r->out));
        int gone = !probing || r->probes >= c->cfg.max_probes || peer_dead(c, p, now);
        if (r->unauth && limit > 4 * rt) {
            limit = 4 * rt;
            gone = 1;
        }
        if (now - r->heard_at >= limit && gone) {
            if (r->state == SDP_RPC_CLIENT) {
                c->st.client_timeouts++;
                sdp_core_rpc_fail(c, r, SDP_ETIMEDOUT);
            } else {
                c->st.server_timeouts++;
                sdp_core_rpc_free(c, r);
            }
            continue;
        }
        /* Checked again then (a probing RPC may be gone by then). */
        at_least(&next, r->heard_at + limit);
        if (!probing)
            continue;
        uint64_t due = probe_at(c, r);
        if (now < due) {
            at_least(&next, due);
            continue;
        }
        if (c->rx_backlog && now - due < SDP_CORE_BACKLOG_WAITS * probe_wait(c, r)) {
            /* Looked at again next tick: by then the queue may be read. */
            c->st.probes_deferred++;
            at_least(&next, soon);
            continue;
        }
        if (p->probes_tick >= c->cfg.probe_budget) {
            at_least(&next, soon); /* over budget: still due, probed on a later tick */
            continue;
        }
        int probed = 0;
        switch (r->state) {
        case SDP_RPC_CLIENT:
        case SDP_RPC_SRV_INCOMING:
            probed = ask(c, p, r);
            break;
        case SDP_RPC_SRV_OUTGOING:
            sdp_core_ctl_simple(c, p, SDP_PKT_NEED_ACK, r->id);
            probed = 1;
            break;
        default:
            break;
        }
        if (probed) {
            r->probed_at = now;
            r->probes++;
            p->unanswered++;
            p->probes_tick++;
        }
        at_least(&next, probe_at(c, r));
    }
    uint64_t ack_delay = ticks(c, c->cfg.ack_delay_ticks);
    for (uint32_t i = 0; i < c->npeers; i++) {
        struct sdp_peer *pp = &c->peers[i];
        if (!pp->nacks)
            continue;
        if (pp->ack_now || now - pp->ack_since >= ack_delay) {
            sdp_core_ctl_ack_flush(c, pp);
            /* One more pass: it sees the ACK's seal and dates the key's
             * last use right (sdp_keys_idle_tick). */
            at_least(&next, soon);
        } else {
            at_least(&next, pp->ack_since + ack_delay);
        }
    }
    sdp_core_run_grants(c);
    /* Older key generations waiting to be wiped keep the timer ticking;
     * keys holding cipher contexts need one more visit, when they may have
     * become idle. */
    if (old_keys)
        at_least(&next, soon);
    if (warm_keys)
        at_least(&next, now + idle_ns);
    if (next != UINT64_MAX) {
        if (next <= now)
            next = soon;
        uint64_t t = c->cfg.tick_ns;
        next = next / t * t + (next % t ? t : 0); /* share passes: whole ticks */
    }
    c->next_tick = next;
}
