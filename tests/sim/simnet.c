#include "simnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t sim_splitmix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed += UINT64_C(0x9e3779b97f4a7c15);
        r->s[i] = sim_splitmix(seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double sim_rng_double(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    return n ? sim_rng_next(r) % n : 0;
}

uint64_t sim_seed(uint64_t def)
{
    const char *e = getenv("SDP_SIM_SEED");
    return e && *e ? strtoull(e, NULL, 0) : def;
}

double sim_scale(void)
{
    const char *e = getenv("SDP_SIM_SCALE");
    double s = e && *e ? strtod(e, NULL) : 1.0;
    return s > 0 ? s : 1.0;
}

void sim_link_default(struct sim_link_cfg *l)
{
    memset(l, 0, sizeof(*l));
    l->gbps = 25;
    l->delay_ns = 1000;
    l->queue_bytes = 2u << 20;
    l->reorder_ns = 20000;
}

int simnet_init(struct simnet *n, uint32_t nhosts, const struct sim_link_cfg *cfg, uint64_t seed,
                sim_host_fn fn, void *ctx)
{
    memset(n, 0, sizeof(*n));
    n->cfg = *cfg;
    n->nhosts = nhosts;
    sim_rng_seed(&n->rng, seed);
    n->ports = calloc(nhosts, sizeof(*n->ports));
    n->uplink_free = calloc(nhosts, sizeof(*n->uplink_free));
    n->down = calloc(nhosts, 1);
    n->capheap = 1024;
    n->heap = malloc(n->capheap * sizeof(*n->heap));
    n->on_host = fn;
    n->ctx = ctx;
    if (!n->ports || !n->uplink_free || !n->down || !n->heap)
        return -1;
    for (uint32_t h = 0; h < nhosts; h++)
        simnet_set_link(n, h, cfg->gbps, cfg->delay_ns, cfg->queue_bytes);
    return 0;
}

void simnet_set_link(struct simnet *n, uint32_t host, double gbps, uint64_t delay_ns, uint64_t queue_bytes)
{
    n->ports[host].gbps = gbps;
    n->ports[host].delay_ns = delay_ns;
    n->ports[host].queue_bytes = queue_bytes;
}

static void free_pkt_list(struct sim_pkt *p)
{
    while (p) {
        struct sim_pkt *nx = p->next;
        free(p);
        p = nx;
    }
}

void simnet_fini(struct simnet *n)
{
    for (size_t i = 0; i < n->nheap; i++)
        free(n->heap[i].pkt);
    for (uint32_t h = 0; h < n->nhosts && n->ports; h++)
        for (int q = 0; q < 8; q++)
            free_pkt_list(n->ports[h].head[q]);
    free(n->heap);
    free(n->ports);
    free(n->uplink_free);
    free(n->down);
    memset(n, 0, sizeof(*n));
}

static int ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(struct simnet *n, struct sim_ev ev)
{
    if (n->nheap == n->capheap) {
        n->capheap *= 2;
        struct sim_ev *h = realloc(n->heap, n->capheap * sizeof(*h));
        if (!h) {
            fprintf(stderr, "simnet: out of memory\n");
            abort();
        }
        n->heap = h;
    }
    ev.seq = n->seq++;
    size_t i = n->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&ev, &n->heap[p]))
            break;
        n->heap[i] = n->heap[p];
        i = p;
    }
    n->heap[i] = ev;
}

static struct sim_ev pop(struct simnet *n)
{
    struct sim_ev top = n->heap[0], last = n->heap[--n->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_ev *best = &last;
        if (l < n->nheap && ev_less(&n->heap[l], best)) {
            m = l;
            best = &n->heap[l];
        }
        if (r < n->nheap && ev_less(&n->heap[r], best))
            m = r;
        if (m == i)
            break;
        n->heap[i] = n->heap[m];
        i = m;
    }
    if (n->nheap)
        n->heap[i] = last;
    return top;
}

void simnet_schedule(struct simnet *n, uint64_t t, uint32_t kind, uint32_t host, uint64_t arg)
{
    push(n, (struct sim_ev){.t = t, .kind = kind, .host = host, .arg = arg});
}

static uint64_t tx_ns(const struct simnet *n, uint32_t host, size_t bytes)
{
    /* Ethernet + IP + UDP framing: about 66 bytes per datagram. */
    return (uint64_t)((double)(bytes + 66) * 8.0 / n->ports[host].gbps);
}

static struct sim_pkt *pkt_new(uint32_t src, uint32_t dst, const uint8_t *b, size_t len, uint8_t prio)
{
    struct sim_pkt *p = malloc(sizeof(*p) + len);
    if (!p) {
        fprintf(stderr, "simnet: out of memory\n");
        abort();
    }
    p->next = NULL;
    p->src = src;
    p->dst = dst;
    p->len = (uint32_t)len;
    p->prio = prio;
    memcpy(p->data, b, len);
    return p;
}

static void to_switch(struct simnet *n, uint64_t t, struct sim_pkt *p)
{
    push(n, (struct sim_ev){.t = t, .kind = SIM_EV_SWITCH_IN, .host = p->dst, .pkt = p});
}

uint64_t simnet_send(struct simnet *n, uint32_t host, uint32_t dst, const uint8_t *buf, size_t len,
                     uint32_t seg_size, uint8_t prio)
{
    uint64_t t = n->uplink_free[host] > n->now ? n->uplink_free[host] : n->now;
    for (size_t off = 0; off < len; off += seg_size) {
        size_t pl = len - off < seg_size ? len - off : seg_size;
        t += tx_ns(n, host, pl);
        n->st.pkts++;
        n->st.bytes += pl;
        if (n->down[host] || n->down[dst]) {
            n->st.down_drops++;
            continue;
        }
        const struct sim_link_cfg *c = &n->cfg;
        if (c->loss > 0 && sim_rng_double(&n->rng) < c->loss) {
            n->st.lost++;
            continue;
        }
        struct sim_pkt *p = pkt_new(host, dst, buf + off, pl, prio);
        if (c->corrupt > 0 && sim_rng_double(&n->rng) < c->corrupt) {
            p->data[sim_rng_below(&n->rng, pl)] ^= (uint8_t)(1 + sim_rng_below(&n->rng, 255));
            n->st.corrupted++;
        }
        uint64_t at = t + n->ports[host].delay_ns;
        if (c->reorder > 0 && sim_rng_double(&n->rng) < c->reorder) {
            at += 1 + sim_rng_below(&n->rng, c->reorder_ns);
            n->st.reordered++;
        }
        if (c->dup > 0 && sim_rng_double(&n->rng) < c->dup) {
            to_switch(n, at + 1 + sim_rng_below(&n->rng, c->reorder_ns + 1), pkt_new(host, dst, p->data, pl, prio));
            n->st.dup++;
        }
        to_switch(n, at, p);
    }
    n->uplink_free[host] = t;
    return t;
}

void simnet_inject(struct simnet *n, uint64_t t, uint32_t src, uint32_t dst, const uint8_t *buf, size_t len)
{
    struct sim_pkt *p = pkt_new(src, dst, buf, len, 0);
    push(n, (struct sim_ev){.t = t, .kind = SIM_EV_HOST_RX, .host = dst, .pkt = p});
}

static void port_start(struct simnet *n, uint32_t h)
{
    struct sim_port *pt = &n->ports[h];
    for (int q = 7; q >= 0; q--) {
        struct sim_pkt *p = pt->head[q];
        if (!p)
            continue;
        pt->head[q] = p->next;
        if (!pt->head[q])
            pt->tail[q] = NULL;
        p->next = NULL;
        pt->queued -= p->len;
        pt->busy = 1;
        push(n, (struct sim_ev){.t = n->now + tx_ns(n, h, p->len), .kind = SIM_EV_PORT_DONE, .host = h, .pkt = p});
        return;
    }
    pt->busy = 0;
}

int simnet_step(struct simnet *n)
{
    if (n->nheap == 0)
        return 0;
    struct sim_ev ev = pop(n);
    n->now = ev.t;
    switch (ev.kind) {
    case SIM_EV_SWITCH_IN: {
        struct sim_port *pt = &n->ports[ev.host];
        struct sim_pkt *p = ev.pkt;
        if (pt->queued + p->len > pt->queue_bytes) {
            n->st.queue_drops++;
            free(p);
            break;
        }
        int q = p->prio & 7;
        if (pt->tail[q])
            pt->tail[q]->next = p;
        else
            pt->head[q] = p;
        pt->tail[q] = p;
        pt->queued += p->len;
        if (pt->queued > n->st.max_queued)
            n->st.max_queued = pt->queued;
        if (!pt->busy)
            port_start(n, ev.host);
        break;
    }
    case SIM_EV_PORT_DONE:
        push(n, (struct sim_ev){.t = n->now + n->ports[ev.host].delay_ns, .kind = SIM_EV_HOST_RX, .host = ev.host,
                                .pkt = ev.pkt});
        port_start(n, ev.host);
        break;
    case SIM_EV_HOST_RX:
        if (n->down[ev.host])
            n->st.down_drops++;
        else
            n->on_host(n->ctx, &ev);
        free(ev.pkt);
        break;
    default:
        if (!n->down[ev.host])
            n->on_host(n->ctx, &ev);
        break;
    }
    return 1;
}
