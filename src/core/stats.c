#include "core/core_int.h"

#include <string.h>

static const char *const drop_names[SDP_DROP__COUNT] = {
    [SDP_DROP_NO_PEER] = "no_peer",
    [SDP_DROP_DECODE] = "decode",
    [SDP_DROP_KEY_PHASE] = "key_phase",
    [SDP_DROP_UNSUPPORTED] = "unsupported",
    [SDP_DROP_CTL_AUTH] = "ctl_auth",
    [SDP_DROP_CTL_REPLAY] = "ctl_replay",
    [SDP_DROP_REPLAY] = "replay",
    [SDP_DROP_NO_RPC] = "no_rpc",
    [SDP_DROP_STALE] = "stale",
    [SDP_DROP_MISMATCH] = "mismatch",
    [SDP_DROP_TOO_BIG] = "too_big",
    [SDP_DROP_LIMIT_RPC] = "limit_rpc",
    [SDP_DROP_LIMIT_UNAUTH] = "limit_unauth",
    [SDP_DROP_LIMIT_MEM] = "limit_mem",
    [SDP_DROP_REC_AUTH] = "rec_auth",
    [SDP_DROP_GAPS] = "gaps",
    [SDP_DROP_CTLQ_FULL] = "ctlq_full",
    [SDP_DROP_EARLY] = "early",
};

const char *sdp_core_drop_name(int reason)
{
    if (reason < 0 || reason >= SDP_DROP__COUNT || !drop_names[reason])
        return "?";
    return drop_names[reason];
}

void sdp_core_get_stats(const struct sdp_core *c, struct sdp_core_stats *st)
{
    *st = c->st;
    st->mem_used = c->mem.used;
    st->mem_peak = c->mem.peak;
    st->table_bytes = c->mem.table_bytes;
    st->rpcs_active = sdp_rpc_count(&c->rpcs);
    st->peers = c->peers_live;
    for (uint32_t i = 0; i < c->npeers; i++) {
        const struct sdp_peer *p = &c->peers[i];
        if (!p->in_use)
            continue;
        st->rx_old_keys += sdp_keys_rx_old(&p->keys);
        if (p->keys.tx.generation > st->tx_gen_max)
            st->tx_gen_max = p->keys.tx.generation;
        if (p->keys.rx_cur > st->rx_gen_max)
            st->rx_gen_max = p->keys.rx_cur;
    }
    st->unauth_msgs = c->unauth_msgs;
    st->unauth_bytes = c->unauth_bytes;
    st->incoming = c->grant.incoming;
    st->incoming_peak = c->grant.incoming_peak;
    st->events_pending = c->ev_n;
    st->ctlq_len = c->ctlq_n;
    st->rx_streams_busy = c->rx_streams.exhausted;
}
