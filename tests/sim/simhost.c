#include "simhost.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdp/sdp.h"

void sim_cfg_default(struct sim_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->nhosts = 8;
    sim_link_default(&c->link);
    sdp_core_config_default(&c->core);
    c->mtu = 1500;
    c->seed = 1;
    c->rpcs = 1000;
    c->concurrency = 4;
    c->req_len = 1000;
    c->resp_len = 1000;
}

static struct sdp_core_addr host_addr(uint32_t h)
{
    struct sdp_core_addr a = {.len = 4};
    a.bytes[0] = (uint8_t)(h >> 24);
    a.bytes[1] = (uint8_t)(h >> 16);
    a.bytes[2] = (uint8_t)(h >> 8);
    a.bytes[3] = (uint8_t)h;
    return a;
}

static uint32_t addr_host(const struct sdp_core_addr *a)
{
    return (uint32_t)a->bytes[0] << 24 | (uint32_t)a->bytes[1] << 16 | (uint32_t)a->bytes[2] << 8 | a->bytes[3];
}

static void secret(uint64_t seed, uint32_t from, uint32_t to, uint8_t out[SDP_SECRET_LEN])
{
    for (int i = 0; i < 4; i++) {
        uint64_t x = sim_splitmix(seed ^ ((uint64_t)from << 20) ^ ((uint64_t)to << 40) ^ (uint64_t)i << 60);
        memcpy(out + 8 * i, &x, 8);
    }
}

void sim_error(struct sim *s, const char *fmt, ...)
{
    if (s->errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->first_error, sizeof(s->first_error), fmt, ap);
        va_end(ap);
    }
}

const char *sim_replay_hint(const struct sim *s)
{
    static char b[160];
    snprintf(b, sizeof(b), "seed=0x%llx (replay: SDP_SIM_SEED=0x%llx)", (unsigned long long)s->cfg.seed,
             (unsigned long long)s->cfg.seed);
    return b;
}

static uint64_t pattern_base(const struct sim *s, uint64_t i, int kind)
{
    return sim_splitmix(s->cfg.seed ^ (i * UINT64_C(0x100000001b3)) ^ ((uint64_t)kind << 56));
}

void sim_fill(const struct sim *s, uint64_t i, int kind, uint8_t *p, size_t len)
{
    uint64_t b = pattern_base(s, i, kind);
    size_t j = 0;
    for (; j + 8 <= len; j += 8) {
        uint64_t x = sim_splitmix(b + j);
        memcpy(p + j, &x, 8);
    }
    if (j < len) {
        uint64_t x = sim_splitmix(b + j);
        memcpy(p + j, &x, len - j);
    }
}

int sim_check(const struct sim *s, uint64_t i, int kind, const uint8_t *p, size_t len)
{
    uint64_t b = pattern_base(s, i, kind);
    size_t j = 0;
    for (; j + 8 <= len; j += 8) {
        uint64_t x = sim_splitmix(b + j), y;
        memcpy(&y, p + j, 8);
        if (x != y)
            return -1;
    }
    if (j < len) {
        uint64_t x = sim_splitmix(b + j);
        if (memcmp(p + j, &x, len - j) != 0)
            return -1;
    }
    return 0;
}

static uint8_t *scratch(struct sim *s, size_t len)
{
    if (len > s->scratch_cap) {
        free(s->scratch);
        s->scratch_cap = len + 4096;
        s->scratch = malloc(s->scratch_cap);
        if (!s->scratch)
            abort();
    }
    return s->scratch;
}

void sim_stats(const struct sim *s, uint32_t host, struct sdp_core_stats *st)
{
    sdp_core_get_stats(s->hosts[host].core, st);
}

static void pump(struct sim *s, struct sim_host *h)
{
    if (h->tx_busy)
        return;
    struct sdp_core_seg_desc d;
    int n = sdp_core_output(h->core, s->net.now, s->buf, 65536, &d);
    if (n <= 0)
        return;
    uint32_t dst = h->host_of[d.peer];
    uint64_t t = simnet_send(&s->net, h->id, dst, s->buf, (size_t)n, d.seg_size, d.priority);
    h->tx_busy = 1;
    simnet_schedule(&s->net, t, SIM_EV_HOST_TX, h->id, 0);
}

static void arm(struct sim *s, struct sim_host *h)
{
    uint64_t next = sdp_core_next_expiry(h->core);
    if (next == UINT64_MAX || next >= h->timer_at)
        return;
    if (next < s->net.now)
        next = s->net.now;
    h->timer_at = next;
    simnet_schedule(&s->net, next, SIM_EV_HOST_TIMER, h->id, 0);
}

static int pair_put(struct sim *s, uint32_t c, uint32_t sv, uint64_t id, uint32_t idx)
{
    size_t k = (size_t)c * s->cfg.nhosts + sv, j = id / 2 - 1;
    if (j >= s->pair_cap[k]) {
        uint32_t ncap = s->pair_cap[k] ? s->pair_cap[k] * 2 : 64;
        while (ncap <= j)
            ncap *= 2;
        uint32_t *a = realloc(s->pair_ids[k], ncap * sizeof(*a));
        if (!a)
            return -1;
        memset(a + s->pair_cap[k], 0xff, (ncap - s->pair_cap[k]) * sizeof(*a));
        s->pair_ids[k] = a;
        s->pair_cap[k] = ncap;
    }
    s->pair_ids[k][j] = idx;
    return 0;
}

static int64_t pair_get(const struct sim *s, uint32_t c, uint32_t sv, uint64_t id)
{
    size_t k = (size_t)c * s->cfg.nhosts + sv, j = id / 2 - 1;
    if (id < 2 || (id & 1) || j >= s->pair_cap[k] || s->pair_ids[k][j] == UINT32_MAX)
        return -1;
    return s->pair_ids[k][j];
}

int sim_issue(struct sim *s, uint32_t client, uint32_t server, uint32_t req_len, uint32_t resp_len)
{
    struct sim_host *h = &s->hosts[client];
    if (h->peer_of[server] == UINT32_MAX)
        return SDP_EINVAL;
    if (s->nrpcs == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        struct sim_rpc *r = realloc(s->rpcs, s->cap * sizeof(*r));
        if (!r)
            abort();
        s->rpcs = r;
    }
    uint64_t i = s->nrpcs;
    struct sim_rpc *r = &s->rpcs[i];
    memset(r, 0, sizeof(*r));
    r->client = client;
    r->server = server;
    r->req_len = req_len;
    r->resp_len = resp_len;
    r->t_start = s->net.now;
    uint8_t *b = scratch(s, req_len);
    sim_fill(s, i, 'q', b, req_len);
    int rc = sdp_core_send_request(h->core, h->peer_of[server], b, req_len, i, s->net.now, &r->id);
    if (rc != 0)
        return rc;
    if (pair_put(s, client, server, r->id, (uint32_t)i) != 0)
        abort();
    r->state = SIM_RPC_OUT;
    s->nrpcs++;
    s->issued++;
    h->outstanding++;
    return 0;
}

static void next_rpc(struct sim *s, struct sim_host *h)
{
    while (h->is_client && h->outstanding < s->cfg.concurrency && s->issued < s->cfg.rpcs) {
        uint32_t server, rq = s->cfg.req_len, rs = s->cfg.resp_len;
        if (s->cfg.star || s->cfg.nhosts < 2)
            server = 0;
        else
            server = (h->id + 1 + (uint32_t)sim_rng_below(&s->app, s->cfg.nhosts - 1)) % s->cfg.nhosts;
        if (s->cfg.req_dist)
            rq = sim_dist_draw(s->cfg.req_dist, &s->app);
        if (s->cfg.resp_dist)
            rs = sim_dist_draw(s->cfg.resp_dist, &s->app);
        if (s->cfg.next_rpc)
            s->cfg.next_rpc(s, h->id, &server, &rq, &rs);
        int rc = sim_issue(s, h->id, server, rq, rs);
        if (rc != 0) {
            sim_error(s, "host %u: send_request to %u (%u B) failed: %s", h->id, server, rq, sdp_strerror(rc));
            return;
        }
    }
}

static void on_request(struct sim *s, struct sim_host *h, const struct sdp_core_event *ev)
{
    uint32_t client = h->host_of[ev->peer];
    int64_t i = pair_get(s, client, h->id, ev->rpc_id ^ 1);
    if (i < 0) {
        sim_error(s, "host %u: request %llu from %u was never sent", h->id, (unsigned long long)ev->rpc_id, client);
        return;
    }
    struct sim_rpc *r = &s->rpcs[i];
    if (r->req_seen++)
        sim_error(s, "rpc %lld: request delivered twice", (long long)i);
    if (ev->len != r->req_len || sim_check(s, (uint64_t)i, 'q', ev->data, ev->len) != 0)
        sim_error(s, "rpc %lld: request corrupted (len %zu, want %u)", (long long)i, ev->len, r->req_len);
    uint8_t *b = scratch(s, r->resp_len);
    sim_fill(s, (uint64_t)i, 'r', b, r->resp_len);
    int rc = sdp_core_send_response(h->core, ev->peer, ev->rpc_id, b, r->resp_len, s->net.now);
    if (rc != 0)
        sim_error(s, "rpc %lld: send_response failed: %s", (long long)i, sdp_strerror(rc));
}

static void drain(struct sim *s, struct sim_host *h)
{
    struct sdp_core_event ev;
    while (sdp_core_next_event(h->core, &ev)) {
        if (ev.type == SDP_CORE_EV_REQUEST) {
            on_request(s, h, &ev);
        } else if (ev.cookie >= s->nrpcs || s->rpcs[ev.cookie].client != h->id) {
            sim_error(s, "host %u: event for unknown rpc cookie %llu", h->id, (unsigned long long)ev.cookie);
        } else {
            struct sim_rpc *r = &s->rpcs[ev.cookie];
            if (r->state != SIM_RPC_OUT) {
                sim_error(s, "rpc %llu: second completion (type %d)", (unsigned long long)ev.cookie, ev.type);
            } else if (ev.type == SDP_CORE_EV_RESPONSE) {
                if (ev.len != r->resp_len || sim_check(s, ev.cookie, 'r', ev.data, ev.len) != 0)
                    sim_error(s, "rpc %llu: response corrupted (len %zu, want %u)", (unsigned long long)ev.cookie,
                              ev.len, r->resp_len);
                r->state = SIM_RPC_DONE;
                s->done++;
            } else {
                r->state = SIM_RPC_FAILED;
                r->error = ev.error;
                s->failed++;
            }
            r->t_end = s->net.now;
            h->outstanding--;
        }
        sdp_core_release(h->core, ev.data);
    }
    next_rpc(s, h);
}

static void after_core(struct sim *s, struct sim_host *h)
{
    drain(s, h);
    struct sdp_core_stats st;
    sdp_core_get_stats(h->core, &st);
    if (st.incoming > h->incoming_max)
        h->incoming_max = st.incoming;
    if (st.unauth_bytes > h->unauth_max)
        h->unauth_max = st.unauth_bytes;
    if (st.mem_used > h->mem_max)
        h->mem_max = st.mem_used;
    if (st.incoming > s->cfg.core.max_incoming)
        sim_error(s, "host %u: incoming %llu above bound", h->id, (unsigned long long)st.incoming);
    if (st.unauth_bytes > s->cfg.core.unauth_bytes_total || st.unauth_msgs > s->cfg.core.unauth_total)
        sim_error(s, "host %u: unauthenticated state above bound", h->id);
    pump(s, h);
    arm(s, h);
}

static void on_host(void *ctx, const struct sim_ev *ev)
{
    struct sim *s = ctx;
    struct sim_host *h = &s->hosts[ev->host];
    switch (ev->kind) {
    case SIM_EV_HOST_RX: {
        if (s->cfg.on_rx)
            s->cfg.on_rx(s, h->id, ev->pkt->src, ev->pkt->data, ev->pkt->len);
        struct sdp_core_addr from = host_addr(ev->pkt->src);
        (void)sdp_core_input(h->core, &from, ev->pkt->data, ev->pkt->len, s->net.now);
        break;
    }
    case SIM_EV_HOST_TX:
        h->tx_busy = 0;
        break;
    case SIM_EV_HOST_TIMER:
        if (ev->t != h->timer_at)
            return;
        h->timer_at = UINT64_MAX;
        sdp_core_handle_expiry(h->core, s->net.now);
        break;
    case SIM_EV_APP:
        if (s->cfg.on_app)
            s->cfg.on_app(s, h->id, ev->arg);
        break;
    default:
        return;
    }
    after_core(s, h);
}

int sim_new(struct sim *s, const struct sim_cfg *cfg)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    uint32_t n = cfg->nhosts;
    if (simnet_init(&s->net, n, &cfg->link, cfg->seed, on_host, s) != 0)
        return SDP_ENOMEM;
    sim_rng_seed(&s->app, sim_splitmix(cfg->seed + 7));
    s->hosts = calloc(n, sizeof(*s->hosts));
    s->pair_ids = calloc((size_t)n * n, sizeof(*s->pair_ids));
    s->pair_len = calloc((size_t)n * n, sizeof(uint32_t));
    s->pair_cap = calloc((size_t)n * n, sizeof(uint32_t));
    s->buf = malloc(65536);
    if (!s->hosts || !s->pair_ids || !s->pair_len || !s->pair_cap || !s->buf)
        return SDP_ENOMEM;
    for (uint32_t a = 0; a < n; a++) {
        struct sim_host *h = &s->hosts[a];
        h->id = a;
        h->timer_at = UINT64_MAX;
        h->is_client = cfg->star ? a != 0 : 1;
        h->peer_of = malloc(n * sizeof(uint32_t));
        h->host_of = malloc(n * sizeof(uint32_t));
        if (!h->peer_of || !h->host_of)
            return SDP_ENOMEM;
        memset(h->peer_of, 0xff, n * sizeof(uint32_t));
        int rc = sdp_core_new(&cfg->core, &h->core);
        if (rc != 0)
            return rc;
    }
    for (uint32_t a = 0; a < n; a++) {
        for (uint32_t b = 0; b < n; b++) {
            if (a == b || (cfg->star && a != 0 && b != 0))
                continue;
            struct sdp_core_peer_cfg pc;
            memset(&pc, 0, sizeof(pc));
            pc.addr = host_addr(b);
            pc.suite = SDP_SUITE_AES128GCM;
            secret(cfg->seed, a, b, pc.tx_secret);
            secret(cfg->seed, b, a, pc.rx_secret);
            pc.mtu = cfg->mtu;
            pc.ip_hdr_len = 20;
            uint32_t idx;
            int rc = sdp_core_peer_add(s->hosts[a].core, &pc, &idx);
            if (rc != 0)
                return rc;
            s->hosts[a].peer_of[b] = idx;
            s->hosts[a].host_of[idx] = addr_host(&pc.addr);
        }
    }
    return 0;
}

void sim_free(struct sim *s)
{
    for (uint32_t a = 0; s->hosts && a < s->cfg.nhosts; a++) {
        sdp_core_free(s->hosts[a].core);
        free(s->hosts[a].peer_of);
        free(s->hosts[a].host_of);
    }
    for (size_t k = 0; s->pair_ids && k < (size_t)s->cfg.nhosts * s->cfg.nhosts; k++)
        free(s->pair_ids[k]);
    free(s->pair_ids);
    free(s->pair_len);
    free(s->pair_cap);
    free(s->hosts);
    free(s->rpcs);
    free(s->buf);
    free(s->scratch);
    simnet_fini(&s->net);
    memset(s, 0, sizeof(*s));
}

void sim_start(struct sim *s)
{
    for (uint32_t a = 0; a < s->cfg.nhosts; a++) {
        next_rpc(s, &s->hosts[a]);
        pump(s, &s->hosts[a]);
        arm(s, &s->hosts[a]);
    }
}

void sim_run(struct sim *s, uint64_t t_end)
{
    while (!(s->issued >= s->cfg.rpcs && s->done + s->failed == s->issued) && s->net.now <= t_end &&
           simnet_step(&s->net))
        ;
}

void sim_run_until(struct sim *s, uint64_t t)
{
    while (simnet_next_time(&s->net) <= t && simnet_step(&s->net))
        ;
    if (s->net.now < t)
        s->net.now = t;
}

int sim_replace_session(struct sim *s, uint32_t a, uint32_t b, uint64_t epoch)
{
    uint32_t h[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        uint32_t me = h[k], other = h[1 - k];
        struct sdp_core_peer_cfg pc;
        memset(&pc, 0, sizeof(pc));
        pc.addr = host_addr(other);
        pc.suite = SDP_SUITE_AES128GCM;
        secret(s->cfg.seed ^ epoch, me, other, pc.tx_secret);
        secret(s->cfg.seed ^ epoch, other, me, pc.rx_secret);
        pc.mtu = s->cfg.mtu;
        pc.ip_hdr_len = 20;
        int rc = sdp_core_peer_replace(s->hosts[me].core, s->hosts[me].peer_of[other], &pc);
        if (rc != 0)
            return rc;
        size_t pk = (size_t)me * s->cfg.nhosts + other;
        if (s->pair_ids[pk])
            memset(s->pair_ids[pk], 0xff, s->pair_cap[pk] * sizeof(uint32_t));
    }
    return 0;
}

void sim_host_down(struct sim *s, uint32_t host)
{
    s->net.down[host] = 1;
}
