/* Received packets: decode, authenticate (control packets) or route to a
 * message (DATA), and drive the RPC state machines of docs/PROTOCOL.md
 * section 9.  Nothing is trusted before its tag verifies: until a record of
 * a message opens, the message holds at most one record's bytes and counts
 * against the unauthenticated-message limits. */
#include "core/core_int.h"

#include "sdp/sdp.h"
#include "wire/wire.h"

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* Unauthenticated incoming request: may it hold `bytes` more? */
static int unauth_room(const struct sdp_core *c, const struct sdp_peer *p, uint64_t bytes)
{
    return p->unauth_msgs < c->cfg.unauth_per_peer && c->unauth_msgs < c->cfg.unauth_total &&
           p->unauth_bytes + bytes <= c->cfg.unauth_bytes_per_peer &&
           c->unauth_bytes + bytes <= c->cfg.unauth_bytes_total;
}

static void unauth_set(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r)
{
    r->unauth = 1;
    r->unauth_bytes = r->in.alloc;
    p->unauth_msgs++;
    p->unauth_bytes += r->unauth_bytes;
    c->unauth_msgs++;
    c->unauth_bytes += r->unauth_bytes;
}

static int msgin_start(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r, uint64_t mid,
                       const struct sdp_data *d, uint8_t kf)
{
    r->in_flags = kf;
    r->in_try = 0;
    int rc = sdp_msgin_init(&r->in, &c->mem, mid, d->msg_len, d->rec_size,
                            min_u32(d->unsched, (uint32_t)sdp_msg_wire_len(d->msg_len, d->rec_size)));
    if (rc != 0)
        return rc;
    p->mem += r->in.alloc;
    return 0;
}

static void msgin_stop(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r)
{
    sdp_grant_remove(&c->grant, &r->in.g);
    sdp_core_unauth_clear(c, r);
    sdp_core_rx_end(c, r);
    p->mem -= r->in.alloc;
    sdp_msgin_fini(&r->in, &c->mem);
}

static void deliver(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r)
{
    struct sdp_msgin *m = &r->in;
    sdp_grant_remove(&c->grant, &m->g);
    p->mem -= m->alloc; /* now the event's (still in the core's budget) */
    struct sdp_core_event ev = {.peer = r->peer, .rpc_id = r->id, .len = m->msg_len, .session = p->session};
    ev.data = sdp_msgin_take(m);
    sdp_core_rx_end(c, r);
    if (r->state == SDP_RPC_CLIENT) {
        ev.type = SDP_CORE_EV_RESPONSE;
        ev.cookie = r->cookie;
        c->st.responses_delivered++;
        sdp_core_ctl_ack_add(c, p, r->id, ev.len);
        sdp_core_rpc_free(c, r);
    } else {
        ev.type = SDP_CORE_EV_REQUEST;
        ev.early = (r->in_flags & SDP_F_EARLY) != 0;
        c->st.early_delivered += ev.early;
        c->st.requests_delivered++;
        r->state = SDP_RPC_SRV_SERVICE;
        sdp_rpc_heard(r, c->now);
    }
    if (sdp_core_push_event(c, &ev) != 0) {
        sdp_core_release(c, ev.data);
        sdp_core_drop(c, SDP_DROP_LIMIT_MEM, 0);
    }
}

static int on_data(struct sdp_core *c, struct sdp_peer *p, const struct sdp_pkt *pk, uint64_t now)
{
    const struct sdp_data *d = &pk->u.data;
    uint64_t mid = pk->hdr.rpc_id;
    uint8_t kf = pk->hdr.flags & (SDP_F_KEY_PHASE | SDP_F_EARLY);
    if (d->msg_len > c->cfg.max_msg_len)
        return sdp_core_drop(c, SDP_DROP_TOO_BIG, SDP_ETOOBIG);
    struct sdp_rpc *r = sdp_rpc_find(&c->rpcs, p->idx, mid ^ 1);
    int is_req = (mid & 1) == 0, created = 0;
    /* 0-RTT data: requests only, phase 0, and only while the early key
     * accepts new messages (those it already opened may finish). */
    if ((kf & SDP_F_EARLY) && (!is_req || (kf & SDP_F_KEY_PHASE)))
        return sdp_core_drop(c, SDP_DROP_EARLY, SDP_EPROTO);
    if ((kf & SDP_F_EARLY) && !p->keys.early_open && !(r && r->in_counted && (r->in_flags & SDP_F_EARLY)))
        return sdp_core_drop(c, SDP_DROP_EARLY, SDP_ENOKEY); /* maybe 0-RTT of a new session, ahead of its keys */
    if (is_req) {
        if (!r) {
            /* SDP_ENOKEY, not SDP_EREPLAY: a new session of the peer (it
             * closed its old one and counts ids from the start again) may
             * have sealed it, and its keys may be coming. */
            if (!c->cfg.replay_window_off && sdp_replay_check(&p->replay, sdp_replay_ctr(mid)) != 0)
                return sdp_core_drop(c, SDP_DROP_REPLAY, SDP_ENOKEY);
            /* The peer's first request: its replay ring, small (it grows
             * with what the peer keeps outstanding).  Made before opening
             * anything, so an authenticated request can always be recorded. */
            if (!c->cfg.replay_window_off && !p->replay.bits &&
                sdp_core_replay_grow(c, p, sdp_replay_grow_words(&p->replay, 1)) != 0)
                return sdp_core_drop(c, SDP_DROP_LIMIT_MEM, SDP_ENOMEM);
            if (p->nrpcs >= c->cfg.max_rpcs_per_peer || sdp_rpc_count(&c->rpcs) >= c->cfg.max_rpcs)
                return sdp_core_drop(c, SDP_DROP_LIMIT_RPC, SDP_ELIMIT);
            uint64_t need = SDP_MSGIN_BLK_HDR + min_u32(d->msg_len, d->rec_size) + SDP_TAG_LEN + 1;
            if (!unauth_room(c, p, need))
                return sdp_core_drop(c, SDP_DROP_LIMIT_UNAUTH, SDP_ELIMIT);
            if (p->mem + need > c->cfg.peer_mem_limit)
                return sdp_core_drop(c, SDP_DROP_LIMIT_MEM, SDP_ENOMEM);
            r = sdp_rpc_new(&c->rpcs, p->idx, mid ^ 1, c->now);
            if (!r)
                return sdp_core_drop(c, SDP_DROP_LIMIT_RPC, SDP_ELIMIT);
            if (msgin_start(c, p, r, mid, d, kf) != 0) {
                sdp_rpc_put(&c->rpcs, r);
                return sdp_core_drop(c, SDP_DROP_LIMIT_MEM, SDP_ENOMEM);
            }
            created = 1;
            r->state = SDP_RPC_SRV_INCOMING;
            if (p->nrpcs++ == 0)
                p->heard_at = c->now; /* silence counts while it has RPCs */
            unauth_set(c, p, r);
            sdp_core_arm(c, c->now + (uint64_t)c->cfg.tick_ns * c->cfg.resend_ticks); /* its first probe */
        } else if (r->state != SDP_RPC_SRV_INCOMING) {
            return sdp_core_drop(c, SDP_DROP_STALE, SDP_EREPLAY);
        }
    } else {
        /* Responses only for requests we have outstanding. */
        if (!r || r->state != SDP_RPC_CLIENT)
            return sdp_core_drop(c, SDP_DROP_NO_RPC, SDP_EUNKNOWN);
        if (!sdp_msgin_live(&r->in)) {
            uint64_t need = SDP_MSGIN_BLK_HDR + min_u32(d->msg_len, d->rec_size) + SDP_TAG_LEN + 1;
            if (p->mem + need > c->cfg.peer_mem_limit || msgin_start(c, p, r, mid, d, kf) != 0)
                return sdp_core_drop(c, SDP_DROP_LIMIT_MEM, SDP_ENOMEM);
        }
    }

    struct sdp_msgin *m = &r->in;
    uint32_t unsched = min_u32(d->unsched, (uint32_t)sdp_msg_wire_len(d->msg_len, d->rec_size));
    if (d->msg_len != m->msg_len || d->rec_size != m->rec_size || unsched != m->unsched) {
        if (m->authed)
            return sdp_core_drop(c, SDP_DROP_MISMATCH, SDP_EPROTO);
        /* Nothing authenticated yet: the latest claim wins, so that one
         * corrupted or forged first packet cannot wedge the message. */
        int was_unauth = r->unauth;
        msgin_stop(c, p, r);
        if (msgin_start(c, p, r, mid, d, kf) != 0) {
            sdp_core_drop(c, SDP_DROP_LIMIT_MEM, SDP_ENOMEM);
            if (is_req)
                sdp_core_rpc_free(c, r);
            return SDP_ENOMEM;
        }
        if (was_unauth)
            unauth_set(c, p, r);
    }

    /* The key: a message is sealed whole under one generation, so once a
     * record opened the message keeps it; before that the header's flags
     * (not authenticated) narrow it down to one or two candidates
     * (PROTOCOL.md 7.2). */
    if (kf != r->in_flags) {
        if (m->authed)
            return sdp_core_drop(c, SDP_DROP_MISMATCH, SDP_EPROTO);
        r->in_flags = kf;
    }
    struct sdp_rec_key *rk = NULL;
    uint32_t gen = r->in_gen;
    unsigned ncand = 1; /* keys a new message may be under */
    if (kf & SDP_F_EARLY) {
        rk = sdp_keys_early_rx(&p->keys);
    } else if (m->authed) {
        rk = sdp_keys_rx_key(&p->keys, gen, &c->st);
    } else {
        uint32_t gens[3];
        unsigned n = sdp_keys_rx_candidates(&p->keys, kf & SDP_F_KEY_PHASE, 1, gens);
        ncand = n;
        /* A first record whole in this packet (short messages) is tried
         * under each candidate aside, so a wrong guess costs no round trip. */
        uint32_t rl0 = sdp_rec_len(d->msg_len, d->rec_size, 0);
        if (n > 1 && d->offset == 0 && rl0 <= SDP_TRIAL_MAX && d->payload_len >= rl0 + SDP_TAG_LEN) {
            for (unsigned i = 0; i < n; i++) {
                struct sdp_rec_key *tk = sdp_keys_rx_key(&p->keys, gens[i], &c->st);
                if (tk && sdp_rec_open(tk, mid, d->msg_len, d->rec_size, 0, 0, d->payload, d->payload + rl0,
                                       c->trial) == 0) {
                    r->in_try = (uint8_t)i;
                    break;
                }
            }
        }
        /* Each failed first record (asked for again at once) tries the
         * next candidate: the phase bit alone cannot tell them apart. */
        for (unsigned i = 0; i < n && !rk; i++) {
            gen = gens[(r->in_try + i) % n];
            rk = sdp_keys_rx_key(&p->keys, gen, &c->st);
        }
        r->in_gen = gen;
    }
    if (!rk) {
        if (created)
            sdp_core_rpc_free(c, r);
        return sdp_core_drop(c, SDP_DROP_KEY_PHASE, SDP_EBADMSG);
    }

    uint64_t room = c->cfg.peer_mem_limit > p->mem ? c->cfg.peer_mem_limit - p->mem : 0;
    size_t before = m->alloc;
    struct sdp_msgin_res res;
    sdp_msgin_place(m, &c->mem, rk, &c->rx_streams, d->offset, d->payload, d->payload_len,
                    (size_t)(room + before), &res);
    p->mem = p->mem - before + m->alloc;
    c->st.records_opened += res.opened;
    c->st.rx_bytes_direct += res.direct;
    c->st.rx_bytes_inplace += res.inplace;
    if (res.opened)
        sdp_peer_heard(p, c->now);
    if (res.new_bytes)
        sdp_rpc_heard(r, c->now);
    if (res.gapdrop)
        sdp_core_drop(c, SDP_DROP_GAPS, 0);
    if (created && res.nfailed && !m->authed && ncand <= 1) {
        /* The first packet of a new message opened under no key we hold,
         * and no other key could do better: most likely a new session of
         * the peer (its handshake is ending here) that this packet overtook.
         * Keep nothing of it; SDP_ENOKEY lets the caller try it again once
         * that handshake is through. */
        sdp_core_rpc_free(c, r);
        return sdp_core_drop(c, SDP_DROP_REC_AUTH, SDP_ENOKEY);
    }
    if (res.nfailed && !m->authed)
        r->in_try++;
    for (uint32_t i = 0; i < res.nfailed; i++) {
        sdp_core_drop(c, SDP_DROP_REC_AUTH, 0);
        if (i < 4) {
            uint32_t off, len;
            sdp_msgin_rec_range(m, res.failed[i], &off, &len);
            sdp_core_ctl_resend(c, p, r->id, off, len, SDP_PRIO_LEVELS - 1);
        }
    }
    if (res.nomem) {
        sdp_core_drop(c, SDP_DROP_LIMIT_MEM, 0);
        if (is_req)
            sdp_core_rpc_free(c, r);
        else
            sdp_core_rpc_fail(c, r, SDP_ENOMEM);
        return SDP_ENOMEM;
    }
    if (res.authed_now) {
        if (kf & SDP_F_EARLY) {
            p->keys.early_live++;
        } else {
            sdp_keys_rx_begin(&p->keys, gen);
            if (sdp_keys_rx_authed(&p->keys, gen, &c->st))
                sdp_core_arm(c, c->now + c->cfg.tick_ns); /* the tick wipes the old generation */
        }
        r->in_counted = 1;
        if (is_req) {
            sdp_core_unauth_clear(c, r);
            if (!c->cfg.replay_window_off) {
                uint64_t ctr = sdp_replay_ctr(mid);
                uint32_t words = sdp_replay_grow_words(&p->replay, ctr);
                /* Without memory the ring slides as it is: a delayed
                 * request may then be refused as too old, never accepted twice. */
                if (words)
                    (void)sdp_core_replay_grow(c, p, words);
                sdp_replay_update(&p->replay, ctr);
            }
        } else if (sdp_msgout_live(&r->out)) {
            /* The server has all of the request: its bytes can go. */
            sdp_core_tx_confirm(c, r);
            sdp_core_tx_end(c, r);
            p->mem -= r->out.alloc;
            sdp_msgout_fini(&r->out, &c->mem);
            sdp_core_send_update(c, r);
        }
        if (m->wire_len > m->unsched)
            sdp_grant_add(&c->grant, &m->g, m->wire_len, m->unsched, m->received);
        /* Opened at a second guess of its generation: what came meanwhile
         * beyond its first record was dropped, ask for it now rather than
         * wait for a probe (rationed under load). */
        uint32_t moff, mlen;
        if (r->in_try && !res.complete && sdp_msgin_missing(m, m->unsched, &moff, &mlen))
            sdp_core_ctl_resend(c, p, r->id, moff, mlen, SDP_PRIO_LEVELS - 1);
    }
    if (res.complete) {
        deliver(c, p, r);
    } else if (m->g.tracked) {
        sdp_grant_received(&c->grant, &m->g, m->received);
    }
    c->grants_due = 1; /* run once per batch, by the next sdp_core_output */
    return res.nfailed ? SDP_EBADMSG : 0;
}

/* Per-RPC ordering of GRANT, RESEND, BUSY, NEED_ACK (PROTOCOL.md 6.3), per
 * key generation: one engine sends them all, and its generation only grows. */
static int ctl_fresh(struct sdp_core *c, struct sdp_rpc *r, uint64_t seq, uint32_t gen)
{
    if (gen < r->last_ctl_gen || (gen == r->last_ctl_gen && seq <= r->last_ctl_seq && r->last_ctl_seq != 0))
        return sdp_core_drop(c, SDP_DROP_CTL_REPLAY, SDP_EREPLAY);
    r->last_ctl_seq = seq;
    r->last_ctl_gen = gen;
    return 0;
}

static int on_grant(struct sdp_core *c, struct sdp_rpc *r, const struct sdp_pkt *pk, uint32_t gen)
{
    if (!r)
        return sdp_core_drop(c, SDP_DROP_NO_RPC, SDP_EUNKNOWN);
    int rc = ctl_fresh(c, r, pk->ctl.seq, gen);
    if (rc)
        return rc;
    sdp_rpc_heard(r, c->now);
    if (sdp_msgout_live(&r->out)) {
        sdp_core_tx_confirm(c, r); /* grants go only to authenticated messages */
        sdp_msgout_grant(&r->out, pk->u.grant.offset, pk->u.grant.priority);
        sdp_core_send_update(c, r);
    }
    return 0;
}

static int on_resend(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r, const struct sdp_pkt *pk,
                     uint32_t gen)
{
    c->st.resends_recv++;
    if (!r) {
        /* We do not know it: tell the sender so it can fail or forget. */
        sdp_core_ctl_simple(c, p, SDP_PKT_UNKNOWN, pk->hdr.rpc_id ^ 1);
        return 0;
    }
    int rc = ctl_fresh(c, r, pk->ctl.seq, gen);
    if (rc)
        return rc;
    const struct sdp_resend *rs = &pk->u.resend;
    if (r->state == SDP_RPC_SRV_INCOMING || r->state == SDP_RPC_SRV_SERVICE) {
        /* The client asks about the response.  This says nothing about the
         * request's progress, so our silence timer keeps running: two
         * waiting ends must not keep each other alive forever. */
        sdp_core_ctl_simple(c, p, SDP_PKT_BUSY, r->id);
        return 0;
    }
    sdp_rpc_heard(r, c->now);
    if (!sdp_msgout_live(&r->out))
        return 0; /* client whose request is complete at the server */
    sdp_msgout_resend(&r->out, rs->offset, rs->length, rs->priority);
    sdp_core_send_update(c, r);
    /* BUSY only while bytes are still to come: a message sent in full has
     * nothing to be busy with, and answering a request for bytes it never
     * had would keep a confused receiver alive forever. */
    if (!r->sendq_pos && !sdp_msgout_all_sent(&r->out))
        sdp_core_ctl_simple(c, p, SDP_PKT_BUSY, r->id);
    return 0;
}

static int on_unknown(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r, uint64_t seq, uint32_t gen)
{
    if (!r)
        return sdp_core_drop(c, SDP_DROP_NO_RPC, SDP_EUNKNOWN);
    if (r->state != SDP_RPC_CLIENT) {
        sdp_core_rpc_free(c, r);
        return 0;
    }
    /* It restarts a request, so it is not idempotent for a client: a late
     * copy must not hit the restarted RPC (PROTOCOL.md 6.3, 9.3). */
    int rc = ctl_fresh(c, r, seq, gen);
    if (rc)
        return rc;
    /* A response is arriving, so the server has the request: this answers
     * a RESEND sent before a restart (one the network duplicated).  If the
     * server really forgot the RPC, the silence timeout fails it. */
    if (!sdp_msgout_live(&r->out) || (r->in.authed && sdp_msgin_live(&r->in)))
        return sdp_core_drop(c, SDP_DROP_STALE, SDP_EREPLAY);
    /* The server lost the request (or never got it): start over with the
     * same sealed bytes.  This is not progress, so the silence timeout still
     * bounds how long we keep trying. */
    if (sdp_msgin_live(&r->in))
        msgin_stop(c, p, r);
    r->restarts++;
    c->st.restarts++;
    sdp_msgout_restart(&r->out);
    sdp_core_send_update(c, r);
    return 0;
}

static int on_need_ack(struct sdp_core *c, struct sdp_peer *p, struct sdp_rpc *r, const struct sdp_pkt *pk,
                       uint32_t gen)
{
    uint64_t ours = pk->hdr.rpc_id ^ 1;
    if ((ours & 1) != 0)
        return sdp_core_drop(c, SDP_DROP_NO_RPC, SDP_EPROTO);
    if (r)
        return ctl_fresh(c, r, pk->ctl.seq, gen); /* still waiting for the response */
    sdp_core_ctl_ack_add(c, p, ours, 0);
    sdp_core_ctl_ack_flush(c, p);
    return 0;
}

static int on_ack(struct sdp_core *c, struct sdp_peer *p, const struct sdp_pkt *pk)
{
    for (unsigned i = 0; i < pk->u.ack.count; i++) {
        struct sdp_rpc *r = sdp_rpc_find(&c->rpcs, p->idx, pk->u.ack.ids[i] ^ 1);
        if (r && r->state == SDP_RPC_SRV_OUTGOING) {
            c->st.server_acked++;
            sdp_core_tx_confirm(c, r);
            sdp_core_rpc_free(c, r);
        }
    }
    return 0;
}

int sdp_core_input(struct sdp_core *c, const struct sdp_core_addr *from, const uint8_t *pkt, size_t len,
                   uint64_t now)
{
    sdp_core_time(c, now);
    c->st.pkts_in++;
    c->st.bytes_in += len;
    struct sdp_peer *p = sdp_core_peer_find(c, from);
    if (!p || p->keys_pending)
        return sdp_core_drop(c, SDP_DROP_NO_PEER, SDP_ENOKEY);
    struct sdp_pkt pk;
    if (!pkt || sdp_wire_decode(pkt, len, &pk) < 0)
        return sdp_core_drop(c, SDP_DROP_DECODE, SDP_EPROTO);
    c->st.in_by_type[pk.hdr.type & 15]++;
    if (pk.hdr.type == SDP_PKT_DATA)
        return on_data(c, p, &pk, now);
    if (!sdp_pkt_is_ctl(pk.hdr.type))
        return sdp_core_drop(c, SDP_DROP_UNSUPPORTED, SDP_EPROTO);
    /* Trial: the generations the phase bit allows, until the tag verifies.
     * Only a verified tag under the next generation adopts it. */
    unsigned phase = pk.hdr.flags & SDP_F_KEY_PHASE;
    uint32_t gens[3], gen = 0;
    unsigned n = sdp_keys_rx_candidates(&p->keys, phase, 0, gens), k;
    for (k = 0; k < n; k++) {
        struct sdp_rec_key *rk = sdp_keys_rx_key(&p->keys, gens[k], &c->st);
        if (rk && sdp_ctl_open(rk, pkt, len, pk.ctl.seq) == 0)
            break;
    }
    if (k == n)
        return phase == (p->keys.rx_cur & 1u) ? sdp_core_drop(c, SDP_DROP_CTL_AUTH, SDP_EBADMSG)
                                              : sdp_core_drop(c, SDP_DROP_KEY_PHASE, SDP_EBADMSG);
    gen = gens[k];
    if (sdp_keys_rx_authed(&p->keys, gen, &c->st))
        sdp_core_arm(c, c->now + c->cfg.tick_ns); /* the tick wipes the old generation once it drains */
    sdp_peer_heard(p, c->now);
    struct sdp_rpc *r = NULL;
    if (pk.hdr.rpc_id != 0)
        r = sdp_rpc_find(&c->rpcs, p->idx, pk.hdr.rpc_id ^ 1);
    int rc = 0;
    switch (pk.hdr.type) {
    case SDP_PKT_GRANT:
        rc = on_grant(c, r, &pk, gen);
        break;
    case SDP_PKT_RESEND:
        rc = on_resend(c, p, r, &pk, gen);
        break;
    case SDP_PKT_UNKNOWN:
        rc = on_unknown(c, p, r, pk.ctl.seq, gen);
        break;
    case SDP_PKT_BUSY:
        if (!r)
            return sdp_core_drop(c, SDP_DROP_NO_RPC, SDP_EUNKNOWN);
        rc = ctl_fresh(c, r, pk.ctl.seq, gen);
        if (rc == 0)
            sdp_rpc_heard(r, c->now);
        break;
    case SDP_PKT_NEED_ACK:
        rc = on_need_ack(c, p, r, &pk, gen);
        break;
    case SDP_PKT_ACK:
        rc = on_ack(c, p, &pk);
        break;
    case SDP_PKT_CUTOFFS:
        p->ncutoffs = pk.u.cutoffs.count;
        for (unsigned i = 0; i < pk.u.cutoffs.count; i++)
            p->cutoffs[i] = pk.u.cutoffs.cutoff[i];
        break;
    default:
        rc = sdp_core_drop(c, SDP_DROP_UNSUPPORTED, SDP_EPROTO);
    }
    c->grants_due = 1; /* run once per batch, by the next sdp_core_output */
    return rc;
}
