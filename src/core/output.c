/* What goes out: sealed control packets from a ring (first, they are small
 * and carry grants), then DATA of the outgoing message with the fewest
 * bytes left (SRPT on the sender side too), one GSO segment per call. */
#include "core/core_int.h"

#include <string.h>

#include "sdp/sdp.h"
#include "wire/wire.h"

static uint8_t *ctl_slot(struct sdp_core *c, struct sdp_peer *p)
{
    if (p->keys_pending)
        return NULL; /* no control key yet: the probes start once it is installed */
    if (c->ctlq_n == c->cfg.ctlq_cap) {
        sdp_core_drop(c, SDP_DROP_CTLQ_FULL, 0);
        return NULL;
    }
    uint32_t i = (c->ctlq_head + c->ctlq_n) % c->cfg.ctlq_cap;
    c->ctlq_peer[i] = p->idx;
    return c->ctlq + (size_t)i * SDP_CTL_SLOT;
}

static uint64_t ctl_seq_next(struct sdp_core *c)
{
    /* Disjoint per engine: top 8 bits are the engine index (PROTOCOL.md 6.3). */
    uint64_t s = ((uint64_t)c->cfg.engine_index << 56) | (++c->ctl_seq & ((UINT64_C(1) << 56) - 1));
    return s;
}

/* Seal the encoded packet (rc bytes, or a negative encoder error) and commit it. */
static void ctl_commit(struct sdp_core *c, struct sdp_peer *p, uint8_t *slot, int rc, uint64_t seq)
{
    /* The header's KEY_PHASE was set from the same key: no update between. */
    if (rc < 0 || sdp_ctl_seal(&p->keys.tx, slot, (size_t)rc, seq) != 0)
        return;
    sdp_core_tx_sealed(c, p);
    uint32_t i = (c->ctlq_head + c->ctlq_n) % c->cfg.ctlq_cap;
    c->ctlq_len[i] = (uint16_t)rc;
    c->ctlq_n++;
    c->st.out_by_type[slot[0] & 15]++;
}

void sdp_core_ctl_grant(struct sdp_core *c, struct sdp_peer *p, uint64_t id, uint32_t offset, uint8_t prio)
{
    uint8_t *s = ctl_slot(c, p);
    if (!s)
        return;
    uint64_t seq = ctl_seq_next(c);
    struct sdp_hdr h = {.type = SDP_PKT_GRANT, .flags = sdp_keys_tx_phase(&p->keys), .rpc_id = id};
    struct sdp_grant g = {.offset = offset, .priority = prio};
    ctl_commit(c, p, s, sdp_wire_encode_grant(s, SDP_CTL_SLOT, &h, &g, seq), seq);
    c->st.grants_sent++;
}

void sdp_core_ctl_resend(struct sdp_core *c, struct sdp_peer *p, uint64_t id, uint32_t off, uint32_t len,
                         uint8_t prio)
{
    uint8_t *s = ctl_slot(c, p);
    if (!s || len == 0)
        return;
    uint64_t seq = ctl_seq_next(c);
    struct sdp_hdr h = {.type = SDP_PKT_RESEND, .flags = sdp_keys_tx_phase(&p->keys), .rpc_id = id};
    struct sdp_resend r = {.offset = off, .length = len, .priority = prio};
    ctl_commit(c, p, s, sdp_wire_encode_resend(s, SDP_CTL_SLOT, &h, &r, seq), seq);
    c->st.resends_sent++;
}

void sdp_core_ctl_simple(struct sdp_core *c, struct sdp_peer *p, uint8_t type, uint64_t id)
{
    uint8_t *s = ctl_slot(c, p);
    if (!s)
        return;
    uint64_t seq = ctl_seq_next(c);
    struct sdp_hdr h = {.type = type, .flags = sdp_keys_tx_phase(&p->keys), .rpc_id = id};
    int rc;
    switch (type) {
    case SDP_PKT_UNKNOWN:
        rc = sdp_wire_encode_unknown(s, SDP_CTL_SLOT, &h, seq);
        c->st.unknown_sent++;
        break;
    case SDP_PKT_BUSY:
        rc = sdp_wire_encode_busy(s, SDP_CTL_SLOT, &h, seq);
        c->st.busy_sent++;
        break;
    default:
        rc = sdp_wire_encode_need_ack(s, SDP_CTL_SLOT, &h, seq);
        c->st.need_ack_sent++;
        break;
    }
    ctl_commit(c, p, s, rc, seq);
}

void sdp_core_ctl_ack_flush(struct sdp_core *c, struct sdp_peer *p)
{
    if (p->nacks == 0)
        return;
    uint8_t *s = ctl_slot(c, p);
    if (!s)
        return;
    uint64_t seq = ctl_seq_next(c);
    struct sdp_hdr h = {.type = SDP_PKT_ACK, .flags = sdp_keys_tx_phase(&p->keys), .rpc_id = 0};
    struct sdp_ack a = {.count = p->nacks};
    memcpy(a.ids, p->acks, sizeof(a.ids));
    ctl_commit(c, p, s, sdp_wire_encode_ack(s, SDP_CTL_SLOT, &h, &a, seq), seq);
    p->nacks = 0;
    p->ack_now = 0;
    c->st.acks_sent++;
}

/* ACKs wait (docs/CORE.md "Delayed ACKs"): a full packet's worth leaves at
 * once, a big response's ACK at the next tick (the server holds its bytes),
 * the rest after ack_delay_ticks, so a client with one RPC at a time sends
 * one ACK per several responses instead of one per response. */
void sdp_core_ctl_ack_add(struct sdp_core *c, struct sdp_peer *p, uint64_t client_id, uint32_t len)
{
    if (p->nacks == SDP_ACK_MAX)
        sdp_core_ctl_ack_flush(c, p);
    if (p->nacks == 0)
        p->ack_since = c->now;
    if (p->nacks < SDP_ACK_MAX)
        p->acks[p->nacks++] = client_id;
    if (len >= SDP_ACK_NOW_BYTES)
        p->ack_now = 1;
    if (p->nacks == SDP_ACK_MAX)
        sdp_core_ctl_ack_flush(c, p);
    else
        sdp_core_arm(c, p->ack_now ? c->now + c->cfg.tick_ns
                                   : p->ack_since + (uint64_t)c->cfg.tick_ns * c->cfg.ack_delay_ticks);
}

/* Control packets: as many consecutive ones of one peer and size as fit. */
static int output_ctl(struct sdp_core *c, uint8_t *buf, size_t cap, struct sdp_core_seg_desc *desc)
{
    uint32_t i = c->ctlq_head;
    uint32_t peer = c->ctlq_peer[i], sz = c->ctlq_len[i];
    size_t w = 0;
    uint32_t n = 0;
    while (c->ctlq_n > 0 && n < SDP_MSGOUT_GSO_SEGS) {
        i = c->ctlq_head;
        if (c->ctlq_peer[i] != peer || c->ctlq_len[i] != sz || w + sz > cap)
            break;
        memcpy(buf + w, c->ctlq + (size_t)i * SDP_CTL_SLOT, sz);
        w += sz;
        n++;
        c->ctlq_head = (c->ctlq_head + 1) % c->cfg.ctlq_cap;
        c->ctlq_n--;
    }
    if (n == 0)
        return 0;
    desc->peer = peer;
    desc->addr = &c->peers[peer].addr;
    desc->seg_size = sz;
    desc->npkts = n;
    desc->priority = SDP_PRIO_LEVELS - 1;
    desc->plain = 0;
    desc->seal_key = NULL;
    c->st.pkts_out += n;
    c->st.bytes_out += w;
    c->st.segs_out++;
    return (int)w;
}

/* Plaintext mode: the key object of the generation a message is under. */
static const struct sdp_aead_key *plain_key(const struct sdp_peer_keys *k, const struct sdp_msgout *m)
{
    const struct sdp_rec_key *rk = (m->hdr_flags & SDP_F_EARLY) ? sdp_keys_early_tx(k)
                                   : k->tx.generation == m->gen ? &k->tx
                                                               : sdp_keys_tx_prev(k);
    return rk && rk->prov && rk->generation == m->gen ? rk->data : NULL;
}

static int output(struct sdp_core *c, uint8_t *buf, size_t cap, size_t gather_min, struct sdp_core_seg_desc *desc)
{
    if (!c || !buf || !desc)
        return SDP_EINVAL;
    desc->payload = NULL;
    if (cap > c->cfg.gso_max)
        cap = c->cfg.gso_max;
    /* Grants wait for the end of a batch of input: one grant per GRO batch
     * instead of one per increment of bytes, each sealed and sent. */
    if (c->grants_due) {
        c->grants_due = 0;
        sdp_core_run_grants(c);
    }
    if (c->ctlq_n > 0) {
        int n = output_ctl(c, buf, cap, desc);
        if (n > 0)
            return n;
    }
    {
        struct sdp_rpc *r = sdp_sendq_top(&c->sendq);
        if (!r)
            return 0;
        struct sdp_peer *p = &c->peers[r->peer];
        uint8_t uprio = sdp_msgout_unsched_prio(p->cutoffs, p->ncutoffs, r->out.msg_len);
        uint32_t npkts, seg, rtx;
        uint8_t prio;
        uint32_t start = r->out.nrtx ? r->out.rtx[0].off : r->out.next_off;
        const uint8_t *payload;
        size_t w = sdp_msgout_build(&r->out, buf, cap, p->max_payload, uprio, gather_min, &payload, &npkts, &seg,
                                    &prio, &rtx);
        sdp_core_send_update(c, r);
        if (w == 0)
            return 0; /* cap below one packet */
        desc->peer = r->peer;
        desc->addr = &p->addr;
        desc->seg_size = seg;
        desc->npkts = npkts;
        desc->priority = prio;
        desc->plain = r->out.plain;
        desc->aad_flags = r->out.hdr_flags & SDP_F_EARLY;
        desc->seal_key = r->out.plain ? plain_key(&p->keys, &r->out) : NULL;
        desc->msg_id = r->out.id;
        desc->msg_len = r->out.msg_len;
        desc->wire_off = start;
        desc->rec_size = r->out.rec_size;
        desc->payload = payload;
        c->st.pkts_out += npkts;
        c->st.out_by_type[SDP_PKT_DATA] += npkts;
        c->st.bytes_out += w;
        c->st.data_bytes_out += w - (size_t)npkts * SDP_DATA_HDR_LEN;
        c->st.segs_out++;
        if (rtx) {
            c->st.rtx_pkts += npkts;
            c->st.rtx_bytes += rtx;
        }
        return (int)w;
    }
}

int sdp_core_output(struct sdp_core *c, uint64_t now, uint8_t *buf, size_t cap, struct sdp_core_seg_desc *desc)
{
    sdp_core_time(c, now);
    return output(c, buf, cap, 0, desc);
}

int sdp_core_output_gather(struct sdp_core *c, uint64_t now, uint8_t *buf, size_t cap, size_t gather_min,
                           struct sdp_core_seg_desc *desc)
{
    sdp_core_time(c, now);
    return output(c, buf, cap, gather_min ? gather_min : 1, desc);
}

void sdp_core_seg_flatten(uint8_t *buf, const struct sdp_core_seg_desc *desc, size_t n)
{
    if (desc->payload)
        sdp_msgout_flatten(buf, desc->payload, desc->npkts, desc->seg_size, n);
}
