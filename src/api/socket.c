/* The public API (include/sdp/sdp.h) over one or more engines.
 *
 * Peers: the socket keeps the one authoritative peer table, and installs
 * every peer in every engine's core in the same order (all engine locks
 * taken in index order), so a peer has the same index everywhere.
 *
 * RPC ids: one counter per peer, shared by all threads, hands out client
 * ids in order; the id picks the engine that owns the RPC with the same
 * function the kernel's steering program uses, so the response comes back
 * to that engine.  One counter per peer is also what keeps every nonce
 * under the peer's key unique across engines.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api_int.h"
#include "core/core_ext.h"
#include "crypto/aead_kshim.h"
#include "crypto/keymem.h"
#include "crypto/record.h"
#include "crypto/keysched.h"
#include "engine/engine.h"
#include "engine/steer.h"
#include "sdp/sdp.h"

#define MTU_AUTO_MAX 9000u    /* jumbo frames; engines hand datagrams of up to 9,216 bytes to each other */
#define MTU_FALLBACK 1500u
#define GRANT_WINDOW 400000u  /* bytes in flight per message beyond what arrived */
#define MAX_INCOMING 2000000u /* ... and for all messages an engine receives */

void sdp_config_default(struct sdp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->engines = 0;
    cfg->cipher = SDP_CIPHER_AES128GCM;
    cfg->mtu = 0; /* the route's, at most MTU_AUTO_MAX */
    cfg->max_message = 64u << 20;
    cfg->max_peers = 1024;
    cfg->max_rpcs = 16384;
    cfg->mem_limit = 1ull << 30;
    cfg->unsched_bytes = 60000;
    cfg->rpc_timeout_ms = 1000;
    cfg->busy_poll_us = 0;
}

static int check_config(const struct sdp_config *c)
{
    if (c->engines > SDP_STEER_MAX_ENGINES || (c->mtu != 0 && c->mtu < 1280) || c->mtu > 65535 || c->max_peers == 0 ||
        c->max_rpcs == 0 || c->max_message == 0 || c->rpc_timeout_ms == 0 || c->busy_poll_us > 1000000)
        return SDP_EINVAL;
    if (c->cipher == SDP_CIPHER_NULL_INSECURE && !c->allow_insecure)
        return SDP_EINSECURE;
    if ((unsigned)c->kernel_crypto > SDP_KERNEL_CRYPTO_PREFER)
        return SDP_EINVAL;
    return 0;
}

/* ---- delivery queue ---- */

/* Grows only while warming up: every entry holds core memory that the
 * cores already bound, so the queue cannot grow without bound. */
static int queue_grow_locked(sdp_socket *s)
{
    uint32_t ncap = s->q_cap ? s->q_cap * 2 : 256;
    struct sdp_msg *n = malloc((size_t)ncap * sizeof(*n));
    if (!n)
        return SDP_ENOMEM;
    for (uint32_t i = 0; i < s->q_n; i++)
        n[i] = s->q[(s->q_head + i) % s->q_cap];
    free(s->q);
    s->q = n;
    s->q_cap = ncap;
    s->q_head = 0;
    return 0;
}

static int queue_insert(sdp_socket *s, const struct sdp_msg *m, int front)
{
    pthread_mutex_lock(&s->q_lock);
    if (s->q_n == s->q_cap && queue_grow_locked(s) != 0) {
        pthread_mutex_unlock(&s->q_lock);
        return SDP_ENOMEM;
    }
    if (front) {
        s->q_head = (s->q_head + s->q_cap - 1) % s->q_cap;
        s->q[s->q_head] = *m;
    } else {
        s->q[(s->q_head + s->q_n) % s->q_cap] = *m;
    }
    __atomic_store_n(&s->q_n, s->q_n + 1, __ATOMIC_RELEASE);
    /* Threaded: the eventfd signals every message.  Inline: sdp_fd is the
     * ring's fd (see sdp_api_kick for messages a send's round took in). */
    if (s->threaded) {
        uint64_t one = 1;
        ssize_t w = write(s->q_fd, &one, sizeof(one));
        (void)w;
    }
    pthread_cond_signal(&s->q_cond);
    pthread_mutex_unlock(&s->q_lock);
    return 0;
}

static int queue_push(sdp_socket *s, const struct sdp_msg *m)
{
    return queue_insert(s, m, 0);
}

/* Put a message back at the head (an io_uring RECV that raced with
 * delivery found it after all). */
int sdp_api_queue_push_front(sdp_socket *s, const struct sdp_msg *m)
{
    return queue_insert(s, m, 1);
}

int sdp_api_queue_pop(sdp_socket *s, struct sdp_msg *m)
{
    int got = 0;
    /* Most calls find nothing (an inline loop polls between packets): say
     * so without the lock.  A message inserted meanwhile is the next call's,
     * as if this one had come a moment earlier; the eventfd (threaded) was
     * drained by the pop that emptied the queue. */
    if (__atomic_load_n(&s->q_n, __ATOMIC_ACQUIRE) == 0)
        return 0;
    pthread_mutex_lock(&s->q_lock);
    if (s->q_n) {
        *m = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        __atomic_store_n(&s->q_n, s->q_n - 1, __ATOMIC_RELEASE);
        got = 1;
    }
    if (s->threaded && s->q_n == 0) {
        uint64_t v;
        while (read(s->q_fd, &v, sizeof(v)) == sizeof(v))
            ;
    }
    pthread_mutex_unlock(&s->q_lock);
    return got;
}

/* Called by an engine, its lock held, for every core event. */
static void deliver(void *ctx, struct sdp_engine *e, const struct sdp_core_event *ev)
{
    sdp_socket *s = ctx;
    struct sdp_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = ev->type == SDP_CORE_EV_REQUEST ? SDP_MSG_REQUEST
             : ev->type == SDP_CORE_EV_RESPONSE ? SDP_MSG_RESPONSE
                                                : SDP_MSG_FAILED;
    m.error = ev->error;
    m.rpc_id = ev->rpc_id;
    m.cookie = ev->cookie;
    m.data = ev->data;
    m.len = ev->len;
    m.priv_engine = sdp_engine_index(e);
    m.priv_peer = ev->peer;
    m.priv_session = ev->session;
    m.early = ev->early;
    pthread_mutex_lock(&s->peers_lock);
    if (ev->peer < s->npeers) {
        memcpy(&m.peer, s->peers[ev->peer].addr.bytes, s->peers[ev->peer].addr.len);
        m.peer_len = s->peers[ev->peer].addr.len;
    }
    pthread_mutex_unlock(&s->peers_lock);
    sdp_api_deliver_msg(s, e, &m);
}

void sdp_api_deliver_msg(sdp_socket *s, struct sdp_engine *e, const struct sdp_msg *m)
{
    if (s->app_ring_fd >= 0 && sdp_api_uop_deliver(s, e, m))
        return;
    if (queue_push(s, m) != 0) {
        /* Out of memory for the queue: the message is lost, its buffer
         * returned; the client's RPC times out. Counted. */
        if (m->data)
            sdp_engine_release(e, m->data);
        atomic_fetch_add(&s->lost_events, 1);
    }
}

/* ---- peers ---- */

static uint32_t addr_hash(const struct sdp_core_addr *a)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < a->len; i++)
        h = (h ^ a->bytes[i]) * 16777619u;
    return h;
}

/* With peers_lock held. */
static int peer_find_locked(sdp_socket *s, const struct sdp_core_addr *a)
{
    for (int i = s->peer_hash[addr_hash(a) & s->peer_hmask]; i >= 0; i = s->peers[i].hnext)
        if (s->peers[i].addr.len == a->len && !memcmp(s->peers[i].addr.bytes, a->bytes, a->len))
            return i;
    return -1;
}

static void lock_all(sdp_socket *s)
{
    for (unsigned i = 0; i < s->n; i++)
        sdp_engine_lock(s->eng[i]);
}

static void unlock_all(sdp_socket *s)
{
    for (unsigned i = s->n; i-- > 0;)
        sdp_engine_unlock(s->eng[i]);
}

/* mtu 0: the MTU the kernel knows for the route towards a (IP_MTU of a
 * connected UDP socket: the device's, or a path MTU it learnt), so that a
 * loopback or jumbo-frame path is not cut into 1,500-byte datagrams, each
 * of which costs both ends a header, a lookup and an AEAD call. */
static uint32_t route_mtu(const struct sdp_core_addr *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, a->bytes, a->len < sizeof(ss) ? a->len : sizeof(ss));
    int v6 = ss.ss_family == AF_INET6;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int mtu = 0;
    socklen_t ml = sizeof(mtu);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, (socklen_t)a->len) == 0 &&
        getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &ml) != 0)
        mtu = 0;
    if (fd >= 0)
        close(fd);
    if (mtu < 1280)
        return MTU_FALLBACK;
    return (uint32_t)mtu < MTU_AUTO_MAX ? (uint32_t)mtu : MTU_AUTO_MAX;
}

static void peer_cfg(sdp_socket *s, struct sdp_core_peer_cfg *pc, const struct sdp_core_addr *a,
                     enum sdp_cipher cipher, const uint8_t *tx, const uint8_t *rx)
{
    memset(pc, 0, sizeof(*pc));
    pc->addr = *a;
    pc->suite = (enum sdp_suite)cipher;
    memcpy(pc->tx_secret, tx, SDP_SECRET_LEN);
    memcpy(pc->rx_secret, rx, SDP_SECRET_LEN);
    pc->mtu = s->cfg.mtu ? s->cfg.mtu : route_mtu(a);
    pc->ip_hdr_len = s->family == AF_INET6 ? 40 : 20;
    pc->aead_flags = s->cfg.allow_insecure ? SDP_AEAD_ALLOW_INSECURE : 0;
}

/* Add a peer to every core: every core hands out the same index (the
 * lowest free one: they all see the same adds and removals, in order, under
 * all engine locks).  Returns it, or a negative code with no core holding
 * the peer. */
static int core_add_all(sdp_socket *s, const struct sdp_core_peer_cfg *pc)
{
    uint32_t idx = 0;
    int rc = 0;
    unsigned i;
    for (i = 0; i < s->n && rc == 0; i++) {
        uint32_t got;
        rc = sdp_core_peer_add(sdp_engine_core(s->eng[i]), pc, &got);
        if (rc == 0 && i == 0)
            idx = got;
        else if (rc == 0 && got != idx)
            rc = SDP_EINVAL; /* cannot happen (see above) */
    }
    if (rc != 0) {
        for (unsigned k = 0; k + 1 < i; k++)
            sdp_core_peer_remove(sdp_engine_core(s->eng[k]), idx);
        return rc;
    }
    return (int)idx;
}

/* The API's entry for a peer the cores hold at idx.  peers_lock held. */
static void peer_slot_fill_locked(sdp_socket *s, int idx, const struct sdp_core_addr *a, uint64_t next_id)
{
    struct api_peer *p = &s->peers[idx];
    memset(p, 0, sizeof(*p));
    p->addr = *a;
    atomic_store(&p->next_id, next_id > 2 ? next_id : 2);
    uint32_t h = addr_hash(a) & s->peer_hmask;
    p->hnext = s->peer_hash[h];
    s->peer_hash[h] = idx;
    if ((uint32_t)idx >= s->npeers)
        s->npeers = (uint32_t)idx + 1;
}

/* Forget the API's entry at idx (its slot may be reused).  peers_lock held. */
static void peer_slot_clear_locked(sdp_socket *s, int idx)
{
    int *pp = &s->peer_hash[addr_hash(&s->peers[idx].addr) & s->peer_hmask];
    while (*pp >= 0 && *pp != idx)
        pp = &s->peers[*pp].hnext;
    if (*pp == idx)
        *pp = s->peers[idx].hnext;
    memset(&s->peers[idx].addr, 0, sizeof(s->peers[idx].addr));
    s->peers[idx].hnext = -1;
}

/* Install a peer in every core.  Caller holds peers_lock and every engine
 * lock.  Returns the peer index or a negative code. */
static int peer_install_locked(sdp_socket *s, const struct sdp_core_addr *a, enum sdp_cipher cipher,
                               const uint8_t *tx, const uint8_t *rx)
{
    struct sdp_core_peer_cfg pc;
    peer_cfg(s, &pc, a, cipher, tx, rx);
    int idx = core_add_all(s, &pc);
    sdp_keymem_wipe(&pc, sizeof(pc));
    if (idx >= 0)
        peer_slot_fill_locked(s, idx, a, 2);
    return idx;
}

/* Per-peer secrets from the default ones: HKDF-Expand-Label(default,
 * "sdp peer", sender address || receiver address), so no two peers share a
 * key even though every host holds the same defaults. */
static int derive_peer_secret(const uint8_t *dflt, const struct sdp_core_addr *from, const struct sdp_core_addr *to,
                              uint8_t out[SDP_SECRET_LEN])
{
    uint8_t ctx[2 * SDP_CORE_ADDR_MAX];
    size_t n = 0;
    memcpy(ctx + n, from->bytes, from->len);
    n += from->len;
    memcpy(ctx + n, to->bytes, to->len);
    n += to->len;
    return sdp_hkdf_expand_label("SHA256", dflt, SDP_SECRET_LEN, "sdp peer", ctx, n, out, SDP_SECRET_LEN);
}

/* Install a peer from the default keys.  Caller holds peers_lock and all
 * engine locks. */
static int peer_install_default_locked(sdp_socket *s, const struct sdp_core_addr *a)
{
    if (!s->dflt)
        return SDP_ENOKEY;
    uint8_t *tx = s->dflt->scratch, *rx = s->dflt->scratch + SDP_SECRET_LEN;
    int rc = derive_peer_secret(s->dflt->tx, &s->local_addr, a, tx);
    if (rc == 0)
        rc = derive_peer_secret(s->dflt->rx, a, &s->local_addr, rx);
    if (rc == 0)
        rc = peer_install_locked(s, a, s->dflt->cipher, tx, rx);
    sdp_keymem_wipe(s->dflt->scratch, sizeof(s->dflt->scratch));
    return rc;
}

/* Find a peer, installing it from the default keys when there are some.
 * Takes the locks itself; the caller holds none of them. */
int sdp_api_peer_get(sdp_socket *s, const struct sdp_core_addr *a)
{
    pthread_mutex_lock(&s->peers_lock);
    int idx = peer_find_locked(s, a);
    pthread_mutex_unlock(&s->peers_lock);
    if (idx >= 0 || !s->dflt)
        return idx >= 0 ? idx : SDP_ENOKEY;
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    idx = peer_find_locked(s, a);
    if (idx < 0)
        idx = peer_install_default_locked(s, a);
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    return idx;
}

int sdp_api_peer_find(sdp_socket *s, const struct sdp_core_addr *a)
{
    pthread_mutex_lock(&s->peers_lock);
    int idx = peer_find_locked(s, a);
    pthread_mutex_unlock(&s->peers_lock);
    return idx;
}

int sdp_api_peer_set_keys(sdp_socket *s, const struct sdp_core_addr *a, enum sdp_cipher cipher,
                          const uint8_t *tx, const uint8_t *rx, uint64_t next_id)
{
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    int idx = peer_find_locked(s, a);
    if (idx >= 0) {
        /* The peer handshook again (it restarted): a new session replaces
         * the old one in every core.  Our client ids keep counting up, so
         * nothing of the old session can be mistaken for the new one. */
        struct sdp_core_peer_cfg pc;
        peer_cfg(s, &pc, a, cipher, tx, rx);
        int rc = 0;
        for (unsigned i = 0; i < s->n && rc == 0; i++)
            rc = sdp_core_peer_replace(sdp_engine_core(s->eng[i]), (uint32_t)idx, &pc);
        sdp_keymem_wipe(&pc, sizeof(pc));
        if (rc)
            idx = rc;
    } else {
        idx = peer_install_locked(s, a, cipher, tx, rx);
        if (idx >= 0 && next_id > 2)
            atomic_store(&s->peers[idx].next_id, next_id);
    }
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    return idx;
}

int sdp_api_peer_set_early(sdp_socket *s, const struct sdp_core_addr *a, enum sdp_cipher cipher,
                           const uint8_t *tx, const uint8_t *rx, const uint8_t *early, uint64_t next_id)
{
    int client = tx == NULL;
    uint8_t *ph = NULL;
    if (client) {
        /* Placeholders nobody knows: the core refuses to use them anyway. */
        if (!(ph = sdp_keymem_alloc(2 * SDP_SECRET_LEN)))
            return SDP_ENOMEM;
        sdp_random_bytes(ph, 2 * SDP_SECRET_LEN);
        tx = ph;
        rx = ph + SDP_SECRET_LEN;
    }
    struct sdp_core_peer_cfg pc;
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    int idx = peer_find_locked(s, a), rc = 0;
    peer_cfg(s, &pc, a, cipher, tx, rx);
    pc.keys_pending = (uint8_t)client;
    if (idx >= 0) {
        for (unsigned i = 0; i < s->n && rc == 0; i++)
            rc = sdp_core_peer_replace(sdp_engine_core(s->eng[i]), (uint32_t)idx, &pc);
    } else {
        idx = core_add_all(s, &pc);
        if (idx >= 0)
            peer_slot_fill_locked(s, idx, a, next_id);
        else
            rc = idx;
    }
    for (unsigned i = 0; i < s->n && rc == 0; i++)
        rc = sdp_core_peer_set_early(sdp_engine_core(s->eng[i]), (uint32_t)idx, (enum sdp_suite)cipher, early,
                                     client ? SDP_CORE_KEY_TX : SDP_CORE_KEY_RX);
    if (rc == 0)
        atomic_store(&s->peers[idx].keys, client ? API_KEYS_EARLY : API_KEYS_READY);
    else if (idx >= 0)
        atomic_store(&s->peers[idx].keys, API_KEYS_PENDING); /* no early keys everywhere: send nothing early */
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    sdp_keymem_wipe(&pc, sizeof(pc));
    sdp_keymem_free(ph);
    return rc ? rc : idx;
}

int sdp_peer_close(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len)
{
    struct sdp_core_addr a;
    if (!s || !peer || sdp_engine_addr(peer, peer_len, &a) != 0)
        return SDP_EINVAL;
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    int idx = peer_find_locked(s, &a);
    pthread_mutex_unlock(&s->peers_lock);
    if (idx < 0) {
        unlock_all(s);
        return SDP_EINVAL;
    }
    for (unsigned i = 0; i < s->n; i++)
        sdp_core_peer_remove(sdp_engine_core(s->eng[i]), (uint32_t)idx);
    /* Its RPCs' failures (and anything else queued for it) go out now,
     * while the slot still names the peer: a later peer may reuse it. */
    for (unsigned i = 0; i < s->n; i++)
        sdp_engine_deliver(s->eng[i]);
    pthread_mutex_lock(&s->peers_lock);
    peer_slot_clear_locked(s, idx);
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    if (!s->threaded)
        sdp_engine_note(s->eng[0]); /* sdp_fd: messages may wait */
    return 0;
}

int sdp_api_peer_complete(sdp_socket *s, int idx, enum sdp_cipher cipher, const uint8_t *tx, const uint8_t *rx)
{
    struct sdp_core_peer_cfg pc;
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    peer_cfg(s, &pc, &s->peers[idx].addr, cipher, tx, rx);
    int rc = 0;
    for (unsigned i = 0; i < s->n && rc == 0; i++) {
        struct sdp_core *c = sdp_engine_core(s->eng[i]);
        rc = sdp_core_peer_install(c, (uint32_t)idx, &pc);
        if (rc == SDP_EINVAL) /* not pending there (cannot normally happen): start over */
            rc = sdp_core_peer_replace(c, (uint32_t)idx, &pc);
        if (rc == 0)
            sdp_core_peer_drop_early(c, (uint32_t)idx);
    }
    if (rc == 0)
        atomic_store(&s->peers[idx].keys, API_KEYS_READY);
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    sdp_keymem_wipe(&pc, sizeof(pc));
    return rc ? rc : idx;
}

void sdp_api_peer_drop_early(sdp_socket *s, int idx)
{
    for (unsigned i = 0; i < s->n; i++) {
        sdp_engine_lock(s->eng[i]);
        sdp_core_peer_drop_early(sdp_engine_core(s->eng[i]), (uint32_t)idx);
        sdp_engine_unlock(s->eng[i]);
    }
}

/* An engine met an unknown source address (its lock held). */
static int on_unknown_peer(void *ctx, struct sdp_engine *e, const struct sdp_core_addr *a)
{
    sdp_socket *s = ctx;
    /* An address we are handshaking with gets its keys from the handshake:
     * its packets that overtook them wait for those (engine.c). */
    if (!s->dflt || sdp_api_hs_busy(s, a))
        return SDP_ENOKEY;
    /* Taking every lock in order needs ours released first. */
    sdp_engine_unlock(e);
    int rc = sdp_api_peer_get(s, a);
    sdp_engine_lock(e);
    if (rc >= 0 && atomic_load(&s->peers[rc].keys) != API_KEYS_READY)
        return SDP_ENOKEY; /* a session whose keys are still to come */
    return rc < 0 ? rc : 0;
}

int sdp_set_peer_keys(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len, enum sdp_cipher cipher,
                      const uint8_t tx_secret[SDP_SECRET_LEN], const uint8_t rx_secret[SDP_SECRET_LEN])
{
    struct sdp_core_addr a;
    if (!s || !peer || !tx_secret || !rx_secret || sdp_engine_addr(peer, peer_len, &a) != 0)
        return SDP_EINVAL;
    if (peer->sa_family != s->family)
        return SDP_EINVAL;
    if (cipher == SDP_CIPHER_NULL_INSECURE && !s->cfg.allow_insecure)
        return SDP_EINSECURE;
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    int rc = peer_find_locked(s, &a) >= 0 ? SDP_EINVAL : peer_install_locked(s, &a, cipher, tx_secret, rx_secret);
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    return rc < 0 ? rc : 0;
}

int sdp_key_update(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len)
{
    struct sdp_core_addr a;
    if (!s || !peer || sdp_engine_addr(peer, peer_len, &a) != 0)
        return SDP_EINVAL;
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    int idx = peer_find_locked(s, &a), rc = idx < 0 ? SDP_ENOKEY : 0;
    pthread_mutex_unlock(&s->peers_lock);
    /* Every engine's core: each follows its own pace (PROTOCOL.md 7.3). */
    for (unsigned i = 0; i < s->n && rc == 0; i++)
        rc = sdp_core_key_update(sdp_engine_core(s->eng[i]), (uint32_t)idx);
    unlock_all(s);
    for (unsigned i = 0; i < s->n; i++)
        sdp_engine_wake(s->eng[i]);
    return rc;
}

int sdp_set_default_keys(sdp_socket *s, enum sdp_cipher cipher, const uint8_t tx_secret[SDP_SECRET_LEN],
                         const uint8_t rx_secret[SDP_SECRET_LEN])
{
    if (!s || !tx_secret || !rx_secret)
        return SDP_EINVAL;
    if (s->local_wildcard)
        return SDP_EINVAL; /* the derivation needs our own address as peers see it */
    if (cipher == SDP_CIPHER_NULL_INSECURE && !s->cfg.allow_insecure)
        return SDP_EINSECURE;
    if (cipher != SDP_CIPHER_AES128GCM && cipher != SDP_CIPHER_AES256GCM &&
        cipher != SDP_CIPHER_CHACHA20POLY1305 && cipher != SDP_CIPHER_NULL_INSECURE)
        return SDP_EINVAL;
    struct api_default_keys *d = sdp_keymem_alloc(sizeof(*d));
    if (!d)
        return SDP_ENOMEM;
    d->cipher = cipher;
    memcpy(d->tx, tx_secret, SDP_SECRET_LEN);
    memcpy(d->rx, rx_secret, SDP_SECRET_LEN);
    lock_all(s);
    pthread_mutex_lock(&s->peers_lock);
    struct api_default_keys *old = s->dflt;
    s->dflt = d;
    pthread_mutex_unlock(&s->peers_lock);
    unlock_all(s);
    sdp_keymem_free(old);
    return 0;
}

/* ---- open / close ---- */

int sdp_open(const struct sockaddr *addr, socklen_t addr_len, const struct sdp_config *cfg, sdp_socket **out)
{
    if (!addr || !out || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return SDP_EINVAL;
    struct sdp_config c;
    if (cfg)
        c = *cfg;
    else
        sdp_config_default(&c);
    int rc = check_config(&c);
    if (rc)
        return rc;
    if ((rc = sdp_keymem_init()) != 0)
        return rc;
    sdp_socket *s = calloc(1, sizeof(*s));
    if (!s)
        return SDP_ENOMEM;
    s->cfg = c;
    s->family = addr->sa_family;
    s->threaded = c.engines > 0;
    s->n = c.engines ? c.engines : 1;
    s->q_fd = -1;
    s->app_ring_fd = -1;
    pthread_mutex_init(&s->uop_lock, NULL);
    pthread_mutex_init(&s->q_lock, NULL);
    pthread_cond_init(&s->q_cond, NULL);
    pthread_mutex_init(&s->peers_lock, NULL);
    rc = SDP_ENOMEM;
    s->peers = calloc(c.max_peers, sizeof(*s->peers));
    s->peer_hmask = 1;
    while (s->peer_hmask < c.max_peers * 2)
        s->peer_hmask <<= 1;
    s->peer_hash = malloc(s->peer_hmask * sizeof(int));
    s->peer_hmask--;
    s->eng = calloc(s->n, sizeof(*s->eng));
    if (!s->peers || !s->peer_hash || !s->eng)
        goto fail;
    memset(s->peer_hash, 0xff, (s->peer_hmask + 1) * sizeof(int));

    int kshim = c.kernel_crypto != SDP_KERNEL_CRYPTO_OFF &&
                sdp_aead_kshim_probe(c.kernel_crypto == SDP_KERNEL_CRYPTO_PREFER);
    if (c.kernel_crypto == SDP_KERNEL_CRYPTO_REQUIRE && !kshim) {
        rc = SDP_EUNAVAIL;
        goto fail;
    }
    struct sockaddr_storage bind_addr;
    socklen_t bind_len = addr_len;
    memcpy(&bind_addr, addr, addr_len < sizeof(bind_addr) ? addr_len : sizeof(bind_addr));
    for (unsigned i = 0; i < s->n; i++) {
        struct sdp_engine_cfg ec;
        memset(&ec, 0, sizeof(ec));
        ec.index = i;
        ec.count = s->n;
        ec.addr = (const struct sockaddr *)&bind_addr;
        ec.addr_len = bind_len;
        sdp_core_config_default(&ec.core);
        ec.core.max_peers = c.max_peers;
        ec.core.max_rpcs = c.max_rpcs;
        ec.core.max_rpcs_per_peer = c.max_rpcs;
        ec.core.mem_limit = c.mem_limit;
        ec.core.peer_mem_limit = c.mem_limit;
        ec.core.max_msg_len = c.max_message;
        ec.core.unsched_bytes = c.unsched_bytes;
        /* A grant must cover the hosts' round trip, not only the wire's:
         * a wake-up and a batch of decryption take tens to hundreds of
         * microseconds (with Homa's 60 KB, bulk senders sat idle waiting for
         * grants).  Each grant costs its sender a wake-up and an AEAD open,
         * so they come in half-window steps.  docs/BENCHMARKS.md. */
        ec.core.grant_window = c.unsched_bytes > GRANT_WINDOW ? c.unsched_bytes : GRANT_WINDOW;
        ec.core.grant_increment = ec.core.grant_window / 2;
        ec.core.max_incoming = MAX_INCOMING > ec.core.grant_window ? MAX_INCOMING : ec.core.grant_window;
        ec.core.timeout_ticks = c.rpc_timeout_ms * 1000000ull / ec.core.tick_ns;
        /* Every engine seals under the peer's same keys: each takes its
         * share of the update threshold (docs/PROTOCOL.md 7.3). */
        ec.core.key_update_after = (SDP_AESGCM_SEAL_LIMIT / 2) / s->n;
        if (ec.core.timeout_ticks < 2 * ec.core.resend_ticks)
            ec.core.timeout_ticks = 2 * ec.core.resend_ticks;
        ec.busy_poll_ns = c.busy_poll_us * 1000u;
        ec.deliver = deliver;
        ec.deliver_ctx = s;
        ec.unknown_peer = on_unknown_peer;
        ec.uring_op = sdp_api_uop_intake;
        ec.after_step = sdp_api_uop_run;
        ec.kshim = kshim;
        ec.hs_run = sdp_api_hs_run;
        ec.hs_output = sdp_api_hs_output;
        if ((rc = sdp_engine_new(&ec, &s->eng[i])) != 0)
            goto fail;
        if (i == 0) {
            /* Later engines join the port the first one got. */
            socklen_t l = sizeof(bind_addr);
            getsockname(sdp_engine_fd(s->eng[0]), (struct sockaddr *)&bind_addr, &l);
            bind_len = l;
        }
    }
    memcpy(&s->local, &bind_addr, bind_len);
    s->local_len = bind_len;
    sdp_engine_addr((struct sockaddr *)&s->local, s->local_len, &s->local_addr);
    s->local_wildcard = s->family == AF_INET
                            ? ((struct sockaddr_in *)&s->local)->sin_addr.s_addr == htonl(INADDR_ANY)
                            : !memcmp(&((struct sockaddr_in6 *)&s->local)->sin6_addr, &in6addr_any,
                                      sizeof(struct in6_addr));
    for (unsigned i = 0; i < s->n; i++)
        sdp_engine_set_group(s->eng[i], s->eng);
    if (s->threaded) {
        s->q_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->q_fd < 0) {
            rc = SDP_ESYSTEM;
            goto fail;
        }
        for (unsigned i = 0; i < s->n; i++)
            if ((rc = sdp_engine_start(s->eng[i], c.pin_engines ? (int)i : -1)) != 0)
                goto fail;
    } else if ((rc = sdp_engine_attach_ring(s->eng[0], 0)) != 0) {
        goto fail;
    }
    *out = s;
    return 0;
fail:
    sdp_close(s);
    return rc;
}

void sdp_close(sdp_socket *s)
{
    if (!s)
        return;
    /* ACKs wait for the next tick; send them now so servers free our
     * finished RPCs at once rather than by timeout. */
    for (unsigned i = 0; s->eng && i < s->n; i++) {
        if (!s->eng[i])
            continue;
        sdp_engine_lock(s->eng[i]);
        sdp_core_flush_acks(sdp_engine_core(s->eng[i]));
        sdp_engine_unlock(s->eng[i]);
        if (!s->threaded)
            sdp_engine_step(s->eng[i], 0);
    }
    for (unsigned i = 0; s->eng && i < s->n; i++)
        if (s->eng[i])
            sdp_engine_stop(s->eng[i]);
    /* Messages nobody received (the closing round may take some in) hold
     * pool blocks the engines do not track: hand them back first. */
    struct sdp_msg m;
    while (s->eng && sdp_api_queue_pop(s, &m))
        sdp_release(s, &m);
    for (unsigned i = 0; s->eng && i < s->n; i++)
        sdp_engine_free(s->eng[i]);
    free(s->eng);
    sdp_api_hs_free(s);
    free(s->q);
    free(s->peers);
    free(s->peer_hash);
    sdp_keymem_free(s->dflt);
    if (s->q_fd >= 0)
        close(s->q_fd);

    pthread_mutex_destroy(&s->q_lock);
    pthread_cond_destroy(&s->q_cond);
    pthread_mutex_destroy(&s->peers_lock);
    pthread_mutex_destroy(&s->uop_lock);
    free(s);
}

int sdp_local_addr(sdp_socket *s, struct sockaddr_storage *addr, socklen_t *addr_len)
{
    if (!s || !addr || !addr_len)
        return SDP_EINVAL;
    memcpy(addr, &s->local, s->local_len);
    *addr_len = s->local_len;
    return 0;
}

int sdp_fd(sdp_socket *s)
{
    if (!s)
        return SDP_EINVAL;
    return s->threaded ? s->q_fd : sdp_engine_event_fd(s->eng[0]);
}

static void add_engine_stats(sdp_socket *s, unsigned i, struct sdp_stats *st)
{
    struct sdp_core_stats cs;
    struct sdp_engine_stats es;
    sdp_engine_lock(s->eng[i]);
    sdp_core_get_stats(sdp_engine_core(s->eng[i]), &cs);
    sdp_engine_get_stats(s->eng[i], &es);
    sdp_engine_unlock(s->eng[i]);
    st->pkts_in += cs.pkts_in;
    st->pkts_out += cs.pkts_out;
    st->bytes_in += cs.bytes_in;
    st->bytes_out += cs.bytes_out;
    st->gso_sends += es.send_calls;
    st->requests_sent += cs.requests_sent;
    st->responses_sent += cs.responses_sent;
    st->requests_received += cs.requests_delivered;
    st->responses_received += cs.responses_delivered;
    st->rpcs_failed += cs.rpcs_failed;
    st->timeouts += cs.client_timeouts + cs.server_timeouts;
    st->retransmitted_pkts += cs.rtx_pkts;
    st->grants_sent += cs.grants_sent;
    st->key_updates += cs.key_updates;
    st->peer_key_updates += cs.rx_key_updates;
    st->resends_sent += cs.resends_sent;
    st->early_received += cs.early_delivered;
    st->keyless_retried += es.keyless_retried;
    st->drops_total += cs.drops_total;
    st->drops_malformed += cs.drops[SDP_DROP_DECODE] + cs.drops[SDP_DROP_MISMATCH];
    st->drops_auth += cs.drops[SDP_DROP_CTL_AUTH] + cs.drops[SDP_DROP_REC_AUTH];
    st->drops_replay += cs.drops[SDP_DROP_REPLAY] + cs.drops[SDP_DROP_CTL_REPLAY] + cs.drops[SDP_DROP_STALE];
    st->drops_no_peer += cs.drops[SDP_DROP_NO_PEER];
    st->drops_limit += cs.drops[SDP_DROP_LIMIT_RPC] + cs.drops[SDP_DROP_LIMIT_UNAUTH] + cs.drops[SDP_DROP_LIMIT_MEM] +
                       cs.drops[SDP_DROP_TOO_BIG];
    st->records_sealed += cs.records_sealed;
    st->records_opened += cs.records_opened;
    st->mem_used += cs.mem_used;
    st->rpcs_active += cs.rpcs_active;
    st->misdirected += es.misdirected;
    st->hs_dropped += es.hs_dropped;
    st->timer_wakes += es.timer_wakes;
    st->probes_deferred += cs.probes_deferred;
    st->rx_bytes_direct += cs.rx_bytes_direct;
    st->rx_bytes_copied += cs.rx_bytes_inplace;
}

int sdp_get_stats(sdp_socket *s, struct sdp_stats *st)
{
    if (!s || !st)
        return SDP_EINVAL;
    memset(st, 0, sizeof(*st));
    for (unsigned i = 0; i < s->n; i++)
        add_engine_stats(s, i, st);
    sdp_api_hs_stats(s, st);
    return 0;
}

int sdp_get_engine_stats(sdp_socket *s, unsigned engine, struct sdp_stats *st)
{
    if (!s || !st || engine >= s->n)
        return SDP_EINVAL;
    memset(st, 0, sizeof(*st));
    add_engine_stats(s, engine, st);
    return 0;
}

unsigned sdp_engines(sdp_socket *s)
{
    return s ? s->n : 0;
}
