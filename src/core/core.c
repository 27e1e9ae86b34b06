/* The endpoint: configuration, tables, peers, the send calls, events and
 * the helpers the other core files share. */
#include "core/core_int.h"
#include "core/core_ext.h"

#include <stddef.h>
#include <string.h>

#include "crypto/keysched.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#define SDP_CORE_UNSCHED_LEVELS 4 /* priorities 7..4 unscheduled, 3..0 scheduled */

void sdp_core_config_default(struct sdp_core_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_peers = 64;
    cfg->max_rpcs = 4096;
    cfg->max_rpcs_per_peer = 1024;
    cfg->mem_limit = UINT64_C(1) << 30;
    cfg->peer_mem_limit = UINT64_C(256) << 20;
    cfg->max_msg_len = 64u << 20;
    cfg->rec_size = SDP_REC_SIZE_MAX;
    cfg->unsched_bytes = 60000;
    cfg->grant_window = 60000;
    cfg->grant_increment = 10000;
    cfg->max_incoming = 400000;
    cfg->overcommit = 8;
    cfg->fifo_grant_pct = 5;
    cfg->unauth_per_peer = 16;
    cfg->unauth_total = 256;
    cfg->unauth_bytes_per_peer = UINT64_C(1) << 20;
    cfg->unauth_bytes_total = UINT64_C(8) << 20;
    cfg->tick_ns = 1000000;
    cfg->resend_ticks = 5;
    cfg->timeout_ticks = 100;
    cfg->max_probes = 5;
    cfg->probe_budget = 16;
    cfg->ack_delay_ticks = 10;
    cfg->ack_wait_ticks = 30;
    cfg->gso_max = 65000;
    cfg->cutoffs[0] = 200;
    cfg->cutoffs[1] = 2800;
    cfg->cutoffs[2] = 15000;
    cfg->cutoffs[3] = 1000000;
    cfg->ctlq_cap = 4096;
    cfg->replay_window = (SDP_REPLAY_WORDS - 1) * 64;
}

static int config_ok(const struct sdp_core_config *cfg)
{
    return cfg->max_peers >= 1 && cfg->max_peers <= (1u << 20) && cfg->max_rpcs >= 1 &&
           cfg->max_rpcs <= (1u << 24) && cfg->max_rpcs_per_peer >= 1 && cfg->rec_size >= 1 &&
           cfg->rec_size <= SDP_REC_SIZE_MAX && cfg->max_msg_len <= SDP_MSG_LEN_MAX &&
           sdp_msg_layout_ok(cfg->max_msg_len, cfg->rec_size) == 0 && cfg->tick_ns > 0 &&
           cfg->resend_ticks >= 1 && cfg->timeout_ticks > cfg->resend_ticks && cfg->max_probes >= 1 &&
           cfg->probe_budget >= 1 && cfg->gso_max >= 1500 && cfg->ack_delay_ticks >= 1 &&
           cfg->ack_delay_ticks <= 200 && cfg->ack_wait_ticks >= cfg->resend_ticks &&
           cfg->ctlq_cap >= 16 && cfg->overcommit >= 1 && cfg->grant_window >= 1;
}

int sdp_core_new(const struct sdp_core_config *cfg, struct sdp_core **out)
{
    if (!cfg || !out || !config_ok(cfg))
        return SDP_EINVAL;
    struct sdp_mem mem;
    sdp_mem_init(&mem, &cfg->allocator, cfg->mem_limit);
    struct sdp_core *c = sdp_mem_table(&mem, 1, sizeof(*c));
    if (!c)
        return SDP_ENOMEM;
    c->mem = mem;
    c->mem.table_bytes = sizeof(*c);
    c->cfg = *cfg;
    /* Room for a control packet or two per RPC: a tick may ask about all. */
    if (c->cfg.ctlq_cap < 2 * cfg->max_rpcs)
        c->cfg.ctlq_cap = 2 * cfg->max_rpcs;
    uint32_t hn = 16;
    while (hn < 2 * cfg->max_peers)
        hn *= 2;
    c->peers = sdp_mem_table(&c->mem, cfg->max_peers, sizeof(*c->peers));
    c->peer_hash = sdp_mem_table(&c->mem, hn, sizeof(*c->peer_hash));
    c->peer_hmask = hn - 1;
    c->ctlq = sdp_mem_table(&c->mem, c->cfg.ctlq_cap, SDP_CTL_SLOT);
    c->ctlq_peer = sdp_mem_table(&c->mem, c->cfg.ctlq_cap, sizeof(uint32_t));
    c->ctlq_len = sdp_mem_table(&c->mem, c->cfg.ctlq_cap, sizeof(uint16_t));
    /* The window must cover every request a peer may have outstanding, or
     * a slow one would be refused as too old. */
    uint64_t want = cfg->replay_window > cfg->max_rpcs_per_peer ? cfg->replay_window : cfg->max_rpcs_per_peer;
    c->replay_words = sdp_replay_words_for(want);
    c->trial = sdp_mem_table(&c->mem, SDP_TRIAL_MAX, 1);
    c->ev_cap = 64;
    c->ev = sdp_mem_table(&c->mem, c->ev_cap, sizeof(*c->ev));
    if (!c->peers || !c->peer_hash || !c->trial || !c->ctlq || !c->ctlq_peer || !c->ctlq_len || !c->ev ||
        sdp_rpc_table_init(&c->rpcs, &c->mem, cfg->max_rpcs) != 0 ||
        sdp_sendq_init(&c->sendq, &c->mem, cfg->max_rpcs) != 0) {
        sdp_core_free(c);
        return SDP_ENOMEM;
    }
    sdp_grant_init(&c->grant, cfg->overcommit, cfg->max_incoming, cfg->grant_window, cfg->grant_increment,
                   cfg->fifo_grant_pct, cfg->grant_fifo, SDP_PRIO_LEVELS - SDP_CORE_UNSCHED_LEVELS);
    c->next_tick = UINT64_MAX;
    *out = c;
    return 0;
}

void sdp_core_free(struct sdp_core *c)
{
    if (!c)
        return;
    if (c->rpcs.hash) {
        while (c->rpcs.active)
            sdp_core_rpc_free(c, c->rpcs.active);
    }
    sdp_rpc_table_fini(&c->rpcs, &c->mem);
    sdp_sendq_fini(&c->sendq, &c->mem);
    sdp_rec_streams_fini(&c->rx_streams);
    struct sdp_core_event ev;
    while (c->ev && sdp_core_next_event(c, &ev))
        sdp_core_release(c, ev.data);
    if (c->peers) {
        for (uint32_t i = 0; i < c->npeers; i++) {
            sdp_keys_fini(&c->peers[i].keys);
            sdp_core_replay_free(c, &c->peers[i]);
        }
    }
    struct sdp_mem mem = c->mem;
    sdp_mem_table_free(&mem, c->peers, c->cfg.max_peers, sizeof(*c->peers));
    sdp_mem_table_free(&mem, c->peer_hash, (size_t)c->peer_hmask + 1, sizeof(*c->peer_hash));
    sdp_mem_table_free(&mem, c->ctlq, c->cfg.ctlq_cap, SDP_CTL_SLOT);
    sdp_mem_table_free(&mem, c->ctlq_peer, c->cfg.ctlq_cap, sizeof(uint32_t));
    sdp_mem_table_free(&mem, c->ctlq_len, c->cfg.ctlq_cap, sizeof(uint16_t));
    sdp_mem_table_free(&mem, c->ev, c->ev_cap, sizeof(*c->ev));
    sdp_mem_table_free(&mem, c->trial, SDP_TRIAL_MAX, 1);
    mem.a.free(mem.a.ctx, c, sizeof(*c));
}

static struct sdp_peer *peer_lookup(const struct sdp_core *c, const struct sdp_core_addr *a)
{
    for (struct sdp_peer *p = c->peer_hash[sdp_peer_addr_hash(a) & c->peer_hmask]; p; p = p->hnext)
        if (sdp_peer_addr_eq(&p->addr, a))
            return p;
    return NULL;
}

struct sdp_peer *sdp_core_peer_find(const struct sdp_core *c, const struct sdp_core_addr *a)
{
    if (!a || a->len > SDP_CORE_ADDR_MAX)
        return NULL;
    return peer_lookup(c, a);
}

/* The suite's provider of the configured family ("<family>-<suite>"), or
 * its default provider. */
static int find_provider(const struct sdp_core *c, const struct sdp_core_peer_cfg *pc,
                         const struct sdp_aead_provider **prov)
{
    const char *fam = c->cfg.aead_family;
    if (!fam)
        return sdp_aead_find(pc->suite, NULL, pc->aead_flags, prov);
    size_t n = strlen(fam);
    for (const struct sdp_aead_provider *const *a = sdp_aead_all(); *a; a++)
        if ((*a)->suite == pc->suite && strncmp((*a)->name, fam, n) == 0 && (*a)->name[n] == '-')
            return sdp_aead_find(pc->suite, (*a)->name, pc->aead_flags, prov);
    return SDP_EUNAVAIL;
}

int sdp_core_peer_add(struct sdp_core *c, const struct sdp_core_peer_cfg *pc, uint32_t *peer)
{
    if (!c || !pc || pc->addr.len == 0 || pc->addr.len > SDP_CORE_ADDR_MAX || pc->mtu < 576 ||
        pc->mtu > 65535 || pc->ip_hdr_len > 60 || peer_lookup(c, &pc->addr))
        return SDP_EINVAL;
    /* The lowest free slot: a removed peer's index is reused. */
    uint32_t idx = 0;
    while (idx < c->npeers && c->peers[idx].in_use)
        idx++;
    if (idx >= c->cfg.max_peers)
        return SDP_ELIMIT;
    int rc = sdp_core_peer_setup(c, &c->peers[idx], idx, pc);
    if (rc != 0)
        return rc;
    sdp_core_peer_hash(c, &c->peers[idx]);
    if (idx == c->npeers)
        c->npeers++;
    c->peers_live++;
    *peer = idx;
    return 0;
}

/* Everything a new session of a peer starts with (slot p, index idx). */
int sdp_core_peer_setup(struct sdp_core *c, struct sdp_peer *p, uint32_t idx, const struct sdp_core_peer_cfg *pc)
{
    memset(p, 0, sizeof(*p));
    const struct sdp_aead_provider *prov;
    int rc = find_provider(c, pc, &prov);
    if (rc == 0)
        rc = sdp_keys_init(&p->keys, pc, prov, c->cfg.key_update_after);
    if (rc != 0)
        return rc;
    p->keys.keep_tx_prev = (uint8_t)(c->cfg.plain_records != 0);
    p->keys_pending = pc->keys_pending != 0;
    p->addr = pc->addr;
    p->idx = idx;
    p->in_use = 1;
    if (++c->sessions == 0)
        c->sessions = 1; /* 0 means "no session" */
    p->session = c->sessions;
    p->mtu = pc->mtu;
    p->max_payload = pc->mtu - pc->ip_hdr_len - 8 - SDP_DATA_HDR_LEN;
    /* A datagram must fit one segment (loopback's MTU is 64 KiB): a bigger
     * one could never be built, and the message would stall. */
    if (p->max_payload > c->cfg.gso_max - SDP_DATA_HDR_LEN)
        p->max_payload = (uint32_t)(c->cfg.gso_max - SDP_DATA_HDR_LEN);
    p->next_id = 2;
    sdp_replay_init_lazy(&p->replay, c->replay_words); /* a ring at its first request */
    p->ncutoffs = SDP_CORE_UNSCHED_LEVELS;
    memcpy(p->cutoffs, c->cfg.cutoffs, sizeof(c->cfg.cutoffs));
    return 0;
}

int sdp_core_replay_grow(struct sdp_core *c, struct sdp_peer *p, uint32_t words)
{
    uint64_t *bits = sdp_mem_table(&c->mem, words, sizeof(uint64_t));
    if (!bits)
        return SDP_ENOMEM;
    uint64_t *old = p->replay.bits;
    uint32_t n = p->replay.nwords;
    sdp_replay_move(&p->replay, bits, words);
    sdp_mem_table_free(&c->mem, old, n, sizeof(uint64_t));
    return 0;
}

void sdp_core_replay_free(struct sdp_core *c, struct sdp_peer *p)
{
    sdp_mem_table_free(&c->mem, p->replay.bits, p->replay.nwords, sizeof(uint64_t));
    sdp_replay_init_lazy(&p->replay, c->replay_words);
}

void sdp_core_peer_hash(struct sdp_core *c, struct sdp_peer *p)
{
    uint32_t h = sdp_peer_addr_hash(&p->addr) & c->peer_hmask;
    p->hnext = c->peer_hash[h];
    c->peer_hash[h] = p;
}

int sdp_core_drop(struct sdp_core *c, int reason, int code)
{
    c->st.drops[reason]++;
    c->st.drops_total++;
    return code;
}

void sdp_core_arm(struct sdp_core *c, uint64_t at)
{
    if (at < c->next_tick)
        c->next_tick = at;
}

/* A new RPC needs the timer no sooner than its first probe. */
static void arm_rpc(struct sdp_core *c)
{
    sdp_core_arm(c, c->now + (uint64_t)c->cfg.tick_ns * c->cfg.resend_ticks);
}

int sdp_core_push_event(struct sdp_core *c, const struct sdp_core_event *ev)
{
    if (c->ev_n == c->ev_cap) {
        uint32_t ncap = c->ev_cap * 2;
        struct sdp_core_event *n = sdp_mem_table(&c->mem, ncap, sizeof(*n));
        if (!n)
            return SDP_ENOMEM;
        for (uint32_t i = 0; i < c->ev_n; i++)
            n[i] = c->ev[(c->ev_head + i) % c->ev_cap];
        sdp_mem_table_free(&c->mem, c->ev, c->ev_cap, sizeof(*c->ev));
        c->ev = n;
        c->ev_cap = ncap;
        c->ev_head = 0;
    }
    c->ev[(c->ev_head + c->ev_n) % c->ev_cap] = *ev;
    c->ev_n++;
    return 0;
}

int sdp_core_next_event(struct sdp_core *c, struct sdp_core_event *ev)
{
    if (c->ev_n == 0)
        return 0;
    *ev = c->ev[c->ev_head];
    c->ev_head = (c->ev_head + 1) % c->ev_cap;
    c->ev_n--;
    return 1;
}

void sdp_core_release(struct sdp_core *c, uint8_t *data)
{
    sdp_msgin_release(&c->mem, data);
}

void sdp_core_send_update(struct sdp_core *c, struct sdp_rpc *r)
{
    sdp_sendq_update(&c->sendq, r);
}

void sdp_core_unauth_clear(struct sdp_core *c, struct sdp_rpc *r)
{
    if (!r->unauth)
        return;
    struct sdp_peer *p = &c->peers[r->peer];
    p->unauth_msgs--;
    p->unauth_bytes -= r->unauth_bytes;
    c->unauth_msgs--;
    c->unauth_bytes -= r->unauth_bytes;
    r->unauth = 0;
    r->unauth_bytes = 0;
}

void sdp_core_rpc_free(struct sdp_core *c, struct sdp_rpc *r)
{
    struct sdp_peer *p = &c->peers[r->peer];
    sdp_grant_remove(&c->grant, &r->in.g);
    sdp_core_unauth_clear(c, r);
    sdp_core_rx_end(c, r);
    sdp_core_tx_end(c, r);
    p->mem -= sdp_rpc_bytes(r);
    sdp_msgin_fini(&r->in, &c->mem);
    sdp_msgout_fini(&r->out, &c->mem);
    sdp_core_send_update(c, r);
    p->nrpcs--;
    sdp_rpc_put(&c->rpcs, r);
}

void sdp_core_rpc_fail(struct sdp_core *c, struct sdp_rpc *r, int err)
{
    if (r->state == SDP_RPC_CLIENT) {
        struct sdp_core_event ev = {.type = SDP_CORE_EV_FAILED, .peer = r->peer, .rpc_id = r->id,
                                    .cookie = r->cookie, .error = err, .session = c->peers[r->peer].session};
        (void)sdp_core_push_event(c, &ev);
        c->st.rpcs_failed++;
    }
    sdp_core_rpc_free(c, r);
}

static void emit_grant(void *ctx, struct sdp_grant_entry *e)
{
    struct sdp_core *c = ctx;
    struct sdp_msgin *m = (struct sdp_msgin *)((uint8_t *)e - offsetof(struct sdp_msgin, g));
    struct sdp_rpc *r = (struct sdp_rpc *)((uint8_t *)m - offsetof(struct sdp_rpc, in));
    sdp_core_ctl_grant(c, &c->peers[r->peer], r->id, e->granted, e->prio);
}

void sdp_core_run_grants(struct sdp_core *c)
{
    c->grants_due = 0;
    uint64_t before = c->grant.granted_bytes;
    sdp_grant_run(&c->grant, emit_grant, c);
    c->st.granted_bytes += c->grant.granted_bytes - before;
}

static const uint8_t empty_msg[1];

/* Plaintext mode: a record must fit one GSO segment (the sealer below takes
 * whole records per send), so records shrink on small-MTU paths. */
static uint16_t send_rec_size(const struct sdp_core *c, const struct sdp_peer *p)
{
    if (!c->cfg.plain_records)
        return c->cfg.rec_size;
    uint32_t pkts = c->cfg.gso_max / (SDP_DATA_HDR_LEN + p->max_payload);
    uint64_t room = (uint64_t)(pkts < SDP_MSGOUT_GSO_SEGS ? pkts : SDP_MSGOUT_GSO_SEGS) * p->max_payload;
    return room > SDP_TAG_LEN && room - SDP_TAG_LEN < c->cfg.rec_size ? (uint16_t)(room - SDP_TAG_LEN)
                                                                      : c->cfg.rec_size;
}

/* A new outgoing message under key tk: sealed now, or in plaintext mode
 * kept as plaintext for the sealer below, its records still counted
 * against the key's usage limits (the module enforces its own too). */
static int out_init(struct sdp_core *c, struct sdp_msgout *m, struct sdp_rec_key *tk, uint64_t id,
                    const struct iovec *iov, int iovcnt, size_t len, uint16_t rs)
{
    if (!c->cfg.plain_records)
        return sdp_msgout_initv(m, &c->mem, tk, id, iov, iovcnt, (uint32_t)len, rs, c->cfg.unsched_bytes);
    if (!tk)
        return SDP_EINVAL;
    if (tk->data_sealed + sdp_msg_nrec((uint32_t)len, rs) > tk->seal_limit)
        return SDP_EKEYLIMIT;
    int rc = sdp_msgout_initv_plain(m, &c->mem, tk, id, iov, iovcnt, (uint32_t)len, rs, c->cfg.unsched_bytes);
    if (rc == 0)
        tk->data_sealed += sdp_msg_nrec((uint32_t)len, rs);
    return rc;
}

static int check_send(struct sdp_core *c, struct sdp_peer *p, size_t len)
{
    if (len > c->cfg.max_msg_len)
        return SDP_ETOOBIG;
    uint64_t wl = sdp_msg_wire_len((uint32_t)len, c->cfg.rec_size);
    if (p->mem + wl > c->cfg.peer_mem_limit)
        return SDP_ENOMEM;
    return 0;
}

int sdp_core_send_request(struct sdp_core *c, uint32_t peer, const void *data, size_t len, uint64_t cookie,
                          uint64_t now, uint64_t *rpc_id)
{
    if (!data && len)
        return SDP_EINVAL;
    struct iovec iov = {.iov_base = (void *)(len ? data : empty_msg), .iov_len = len};
    return sdp_core_send_request_v(c, peer, 0, &iov, 1, len, cookie, now, rpc_id);
}

int sdp_core_send_request_v(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov, int iovcnt,
                            size_t len, uint64_t cookie, uint64_t now, uint64_t *rpc_id)
{
    return sdp_core_send_request_fv(c, peer, id, iov, iovcnt, len, cookie, now, 0, rpc_id);
}

/* The key a new message goes under: the early key, or the transmit key,
 * updated first if the message would not fit under it. */
static struct sdp_rec_key *seal_key(struct sdp_core *c, struct sdp_peer *p, size_t len, int early)
{
    if (early)
        return sdp_keys_early_tx(&p->keys);
    (void)sdp_keys_tx_maybe_update(&p->keys, sdp_msg_nrec((uint32_t)len, c->cfg.rec_size), &c->st);
    return &p->keys.tx;
}

int sdp_core_send_request_fv(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov, int iovcnt,
                             size_t len, uint64_t cookie, uint64_t now, unsigned flags, uint64_t *rpc_id)
{
    if (!c || !sdp_core_peer_at(c, peer) || !rpc_id || iovcnt < 0 || (iovcnt > 0 && !iov) ||
        (flags & ~SDP_CORE_SEND_EARLY))
        return SDP_EINVAL;
    struct sdp_peer *p = &c->peers[peer];
    int early = (flags & SDP_CORE_SEND_EARLY) != 0;
    if ((early && !sdp_keys_early_tx(&p->keys)) || (!early && p->keys_pending))
        return SDP_ENOKEY;
    int rc = check_send(c, p, len);
    if (rc != 0)
        return rc;
    if (p->nrpcs >= c->cfg.max_rpcs_per_peer || sdp_rpc_count(&c->rpcs) >= c->cfg.max_rpcs)
        return SDP_ELIMIT;
    if (id == 0 && (id = sdp_peer_next_client_id(&p->next_id)) == 0)
        return SDP_ELIMIT;
    sdp_core_time(c, now);
    struct sdp_rpc *r = sdp_rpc_new(&c->rpcs, peer, id, c->now);
    if (!r)
        return SDP_ELIMIT;
    uint16_t rs = send_rec_size(c, p);
    rc = out_init(c, &r->out, seal_key(c, p, len, early), id, iov, iovcnt, len, rs);
    if (rc != 0) {
        sdp_rpc_put(&c->rpcs, r);
        return rc;
    }
    sdp_core_tx_begin(c, r);
    if (!early)
        sdp_core_tx_sealed(c, p);
    r->state = SDP_RPC_CLIENT;
    r->cookie = cookie;
    if (p->nrpcs++ == 0)
        p->heard_at = c->now; /* silence counts while it has RPCs */
    p->mem += r->out.alloc;
    c->st.records_sealed += sdp_msg_nrec((uint32_t)len, rs);
    c->st.requests_sent++;
    sdp_core_send_update(c, r);
    arm_rpc(c);
    *rpc_id = id;
    return 0;
}

int sdp_core_send_response(struct sdp_core *c, uint32_t peer, uint64_t rpc_id, const void *data, size_t len,
                           uint64_t now)
{
    if (!data && len)
        return SDP_EINVAL;
    struct iovec iov = {.iov_base = (void *)(len ? data : empty_msg), .iov_len = len};
    return sdp_core_send_response_v(c, peer, rpc_id, &iov, 1, len, now);
}

int sdp_core_send_response_v(struct sdp_core *c, uint32_t peer, uint64_t rpc_id, const struct iovec *iov,
                             int iovcnt, size_t len, uint64_t now)
{
    if (!c || !sdp_core_peer_at(c, peer) || iovcnt < 0 || (iovcnt > 0 && !iov))
        return SDP_EINVAL;
    sdp_core_time(c, now);
    struct sdp_rpc *r = sdp_rpc_find(&c->rpcs, peer, rpc_id);
    if (!r || r->state != SDP_RPC_SRV_SERVICE)
        return SDP_EUNKNOWN;
    struct sdp_peer *p = &c->peers[peer];
    if (p->keys_pending)
        return SDP_ENOKEY;
    int rc = check_send(c, p, len);
    if (rc != 0)
        return rc;
    uint16_t rs = send_rec_size(c, p);
    rc = out_init(c, &r->out, seal_key(c, p, len, 0), rpc_id, iov, iovcnt, len, rs);
    if (rc != 0)
        return rc;
    sdp_core_tx_begin(c, r);
    sdp_core_tx_sealed(c, p);
    p->mem += r->out.alloc;
    r->state = SDP_RPC_SRV_OUTGOING;
    sdp_rpc_heard(r, c->now);
    c->st.records_sealed += sdp_msg_nrec((uint32_t)len, rs);
    c->st.responses_sent++;
    sdp_core_send_update(c, r);
    arm_rpc(c);
    return 0;
}
