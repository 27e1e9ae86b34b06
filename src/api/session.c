/* The handshake behind the API: sdp_set_tls, messages that wait for a
 * peer's keys, and installing the keys of every completed handshake in all
 * engines' cores.
 *
 * Locks: hs_lock guards the handshake state machine and is never held
 * while taking another lock; pend_lock guards the waiting messages and
 * comes before the engine locks and peers_lock (so a peer's id counter is
 * set from its waiting messages before anyone else can send to it).
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "api/api_int.h"
#include "core/core_ext.h"
#include "crypto/keymem.h"
#include "handshake/hs.h"
#include "handshake/tls.h"
#include "wire/wire.h"

#define CONNS_MAX 64               /* peers handshaking with messages waiting */
#define PEND_PER_PEER 256          /* waiting messages per peer ... */
#define PEND_TOTAL 1024            /* ... in all ... */
#define PEND_BYTES (64ull << 20)   /* ... and their bytes */
#define PEND_GRACE_NS 1000000000ull /* beyond the handshake timeout, before they fail */
#define REKEY_GAP_NS 1000000000ull /* at most one "no session" re-handshake per peer per second */

struct api_pend {
    struct api_pend *next;
    struct sdp_core_addr addr;
    uint64_t id, cookie, deadline;
    size_t len;
    uint8_t early;                 /* sent as 0-RTT; kept to send again if the server refuses it */
    uint8_t data[];
};

/* A server's 0-RTT receive key stays a while after the handshake: early
 * requests the network delayed or lost still arrive (or are sent again). */
#define EARLY_KEEP_NS 2000000000ull
#define EARLY_DROPS 64
struct api_early_drop {
    int peer;                      /* -1: free */
    uint64_t at;
};

struct api_conn {
    struct sdp_core_addr addr;
    uint64_t next_id;
    uint32_t npend;
    uint8_t used;
};

struct api_hs {
    pthread_mutex_t hs_lock;
    struct sdp_tls_ctx *tls;
    struct sdp_hs *hs;
    char *server_name;
    uint64_t pend_life_ns;         /* the handshake's own time-out plus PEND_GRACE_NS */
    _Atomic uint64_t next_exp;
    _Atomic uint64_t aux_exp;      /* ours: waiting messages' and early keys' deadlines */
    atomic_int out_ready;
    pthread_mutex_t ev_lock;       /* one thread handles events at a time */
    struct sdp_hs_event *ev;       /* locked memory */
    pthread_mutex_t pend_lock;
    struct api_pend *pend_head, *pend_tail;
    uint32_t npend;
    uint64_t pend_bytes;
    struct api_conn conns[CONNS_MAX];
    struct api_early_drop drops[EARLY_DROPS]; /* under pend_lock */
    _Atomic uint64_t done, failed, early_sent, early_resent;
};

static struct api_hs *hsx(sdp_socket *s)
{
    return atomic_load_explicit(&s->hsx, memory_order_acquire);
}

static int parse_pin(const char *hex, uint8_t pin[32])
{
    size_t n = 0;
    for (const char *p = hex; *p; p++) {
        if (*p == ':')
            continue;
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            return SDP_EINVAL;
        if (n >= 64)
            return SDP_EINVAL;
        if (n % 2 == 0)
            pin[n / 2] = (uint8_t)(v << 4);
        else
            pin[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 64 ? 0 : SDP_EINVAL;
}

void sdp_api_hs_free(sdp_socket *s)
{
    struct api_hs *h = hsx(s);
    if (!h)
        return;
    sdp_hs_free(h->hs);
    sdp_tls_ctx_free(h->tls);
    free(h->server_name);
    sdp_keymem_free(h->ev);
    for (struct api_pend *p = h->pend_head, *n; p; p = n) {
        n = p->next;
        sdp_keymem_wipe(p->data, p->len);
        free(p);
    }
    pthread_mutex_destroy(&h->hs_lock);
    pthread_mutex_destroy(&h->ev_lock);
    pthread_mutex_destroy(&h->pend_lock);
    free(h);
    atomic_store(&s->hsx, NULL);
}

int sdp_set_tls(sdp_socket *s, const struct sdp_tls_options *o)
{
    if (!s || !o || hsx(s))
        return SDP_EINVAL;
    struct sdp_tls_config tc;
    memset(&tc, 0, sizeof(tc));
    tc.cert_file = o->cert_file;
    tc.key_file = o->key_file;
    tc.ca_file = o->ca_file;
    tc.verify_clients = o->verify_clients;
    tc.ephemeral_cert = o->ephemeral_cert && !o->cert_file;
    tc.psk = o->psk;
    tc.psk_len = o->psk_len;
    tc.psk_identity = o->psk_identity;
    tc.insecure = o->insecure;
    tc.early_data = o->early_data;
    tc.cipher = s->cfg.cipher;
    if (tc.cipher == SDP_CIPHER_NULL_INSECURE)
        return SDP_EINVAL; /* never negotiated */
    if (o->pin_sha256_hex) {
        if (parse_pin(o->pin_sha256_hex, tc.pin) != 0)
            return SDP_EINVAL;
        tc.have_pin = 1;
    }
    struct sdp_hs_config hc;
    sdp_hs_config_default(&hc);
    hc.server = o->cert_file || tc.ephemeral_cert || o->psk;
    hc.always_retry = o->always_retry;
    hc.client = o->ca_file || tc.have_pin || o->psk || o->insecure;
    if (!hc.server && !hc.client)
        return SDP_EINVAL;
    struct api_hs *h = calloc(1, sizeof(*h));
    if (!h)
        return SDP_ENOMEM;
    pthread_mutex_init(&h->hs_lock, NULL);
    pthread_mutex_init(&h->ev_lock, NULL);
    pthread_mutex_init(&h->pend_lock, NULL);
    atomic_store(&h->next_exp, UINT64_MAX);
    atomic_store(&h->aux_exp, UINT64_MAX);
    for (unsigned i = 0; i < EARLY_DROPS; i++)
        h->drops[i].peer = -1;
    h->pend_life_ns = hc.timeout_ns + PEND_GRACE_NS;
    int rc = sdp_tls_ctx_new(&tc, &h->tls);
    sdp_keymem_wipe(&tc, sizeof(tc));
    if (rc == 0) {
        hc.tls = h->tls;
        rc = sdp_hs_new(&hc, &h->hs);
    }
    if (rc == 0 && o->server_name && !(h->server_name = strdup(o->server_name)))
        rc = SDP_ENOMEM;
    if (rc == 0 && !(h->ev = sdp_keymem_alloc(sizeof(*h->ev))))
        rc = SDP_ENOMEM;
    struct api_hs *expect = NULL;
    if (rc == 0 && !atomic_compare_exchange_strong(&s->hsx, &expect, h))
        rc = SDP_EINVAL;
    if (rc) {
        sdp_hs_free(h->hs);
        sdp_tls_ctx_free(h->tls);
        free(h->server_name);
        sdp_keymem_free(h->ev);
        free(h);
    }
    return rc;
}

int sdp_tls_fingerprint(sdp_socket *s, char hex[65])
{
    struct api_hs *h;
    uint8_t fp[32];
    if (!s || !hex || !(h = hsx(s)))
        return SDP_EINVAL;
    int rc = sdp_tls_ctx_fingerprint(h->tls, fp);
    if (rc)
        return rc;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", fp[i]);
    return 0;
}

/* ---- waiting messages ---- */

static struct api_conn *conn_find(struct api_hs *h, const struct sdp_core_addr *a, int create)
{
    struct api_conn *free_slot = NULL;
    for (unsigned i = 0; i < CONNS_MAX; i++) {
        struct api_conn *c = &h->conns[i];
        if (c->used && c->addr.len == a->len && !memcmp(c->addr.bytes, a->bytes, a->len))
            return c;
        if (!c->used && !free_slot)
            free_slot = c;
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = 1;
    free_slot->addr = *a;
    free_slot->next_id = 2;
    return free_slot;
}

/* Send a waiting message as 0-RTT data; its copy stays (early = 1) until
 * the handshake says whether the server took it.  pend_lock held. */
static void send_early(sdp_socket *s, struct api_hs *h, int idx, struct api_pend *p)
{
    struct sdp_engine *e = s->eng[sdp_api_owner_engine(s, p->id)];
    struct iovec iov = {.iov_base = p->data, .iov_len = p->len};
    sdp_engine_lock(e);
    int rc = sdp_core_send_request_flags(sdp_engine_core(e), (uint32_t)idx, p->id, &iov, 1, p->cookie,
                                         sdp_engine_now(), SDP_CORE_SEND_EARLY, NULL);
    sdp_engine_unlock(e);
    if (rc == 0) {
        p->early = 1;
        atomic_fetch_add(&h->early_sent, 1);
        if (s->threaded)
            sdp_engine_wake(e);
    }
    /* Otherwise it simply waits for the 1-RTT keys. */
}

/* Take a 0-RTT request back from the core (the server refused 0-RTT, or
 * the handshake failed): 1 when the core forgot it and its copy now
 * decides its fate, 0 when it already finished (its event went out). */
static int early_take_back(sdp_socket *s, int idx, const struct api_pend *p)
{
    struct sdp_engine *e = s->eng[sdp_api_owner_engine(s, p->id)];
    sdp_engine_lock(e);
    int rc = sdp_core_forget_request(sdp_engine_core(e), (uint32_t)idx, p->id);
    sdp_engine_unlock(e);
    return rc == 0;
}

int sdp_api_hs_busy(sdp_socket *s, const struct sdp_core_addr *a)
{
    struct api_hs *h = hsx(s);
    if (!h)
        return 0;
    pthread_mutex_lock(&h->hs_lock);
    int busy = sdp_hs_busy(h->hs, a);
    pthread_mutex_unlock(&h->hs_lock);
    return busy;
}

/* Called by sdp_sendv for a peer without keys.  SDP_EAGAIN: the peer got
 * its keys meanwhile, send normally. */
int sdp_api_hs_send(sdp_socket *s, const struct sdp_core_addr *a, const struct iovec *iov, int iovcnt,
                    size_t total, uint64_t cookie, uint64_t *rpc_id)
{
    struct api_hs *h = hsx(s);
    if (!h)
        return SDP_ENOKEY;
    uint64_t now = sdp_engine_now();
    /* Keys are installed under pend_lock: a peer without them here has
     * its attempt under way or done but not installed, which connect joins.
     * (Checked after connect, a handshake that completed in between would
     * look finished and a second one would start, replacing the session.) */
    pthread_mutex_lock(&h->pend_lock);
    int idx = sdp_api_peer_find(s, a);
    int keys = idx >= 0 ? atomic_load(&s->peers[idx].keys) : API_KEYS_PENDING;
    if (keys == API_KEYS_READY) {
        pthread_mutex_unlock(&h->pend_lock);
        return SDP_EAGAIN;
    }
    pthread_mutex_lock(&h->hs_lock);
    int rc = sdp_hs_connect(h->hs, a, h->server_name, now);
    if (rc >= 0)
        atomic_store(&h->out_ready, 1);
    pthread_mutex_unlock(&h->hs_lock);
    if (rc >= 0)
        sdp_engine_hs_poke(s->eng[0]); /* the engine's next round sends it */
    if (rc < 0) {
        pthread_mutex_unlock(&h->pend_lock);
        return rc == SDP_EINVAL ? SDP_ENOKEY /* no way to authenticate servers: keys come from elsewhere */
                                : rc;
    }
    rc = 0; /* started, or joined the attempt under way */
    struct api_conn *c = conn_find(h, a, 1);
    struct api_pend *p = NULL;
    if (!c || c->npend >= PEND_PER_PEER || h->npend >= PEND_TOTAL || h->pend_bytes + total > PEND_BYTES)
        rc = SDP_ELIMIT;
    else if (!(p = malloc(sizeof(*p) + total)))
        rc = SDP_ENOMEM;
    if (rc) {
        pthread_mutex_unlock(&h->pend_lock);
        return rc;
    }
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(p->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    p->next = NULL;
    p->addr = *a;
    p->len = total;
    p->cookie = cookie;
    /* A known peer (its session closed, or 0-RTT under way) keeps counting
     * its own ids; a new one counts here until it exists. */
    if (idx >= 0) {
        p->id = atomic_fetch_add(&s->peers[idx].next_id, 2);
    } else {
        p->id = c->next_id;
        c->next_id += 2;
    }
    p->deadline = now + h->pend_life_ns;
    p->early = 0;
    if (keys == API_KEYS_EARLY)
        send_early(s, h, idx, p);
    c->npend++;
    h->npend++;
    h->pend_bytes += total;
    if (h->pend_tail)
        h->pend_tail->next = p;
    else
        h->pend_head = p;
    h->pend_tail = p;
    if (rpc_id)
        *rpc_id = p->id;
    pthread_mutex_unlock(&h->pend_lock);
    sdp_api_kick(s, s->eng[0]);
    return 0;
}

/* Take addr's waiting messages (all of them when addr is NULL and
 * expired_before is 0, or those past expired_before).  pend_lock held. */
static struct api_pend *pend_take_locked(struct api_hs *h, const struct sdp_core_addr *a, uint64_t expired_before)
{
    struct api_pend *out = NULL, **tail = &out, **pp = &h->pend_head, *last = NULL;
    while (*pp) {
        struct api_pend *p = *pp;
        int take = a ? (p->addr.len == a->len && !memcmp(p->addr.bytes, a->bytes, a->len))
                     : (expired_before && p->deadline <= expired_before);
        if (!take) {
            last = p;
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = NULL;
        *tail = p;
        tail = &p->next;
        h->npend--;
        h->pend_bytes -= p->len;
        struct api_conn *c = conn_find(h, &p->addr, 0);
        if (c && c->npend)
            c->npend--;
    }
    h->pend_tail = last;
    return out;
}

/* Of a list of waiting messages, those whose fate is still ours: 0-RTT
 * requests that already finished in the core are dropped from it. */
static struct api_pend *settle_early(sdp_socket *s, int idx, struct api_pend *list)
{
    struct api_pend *keep = NULL, **tail = &keep;
    for (struct api_pend *p = list, *n; p; p = n) {
        n = p->next;
        p->next = NULL;
        if (!p->early || (idx >= 0 && early_take_back(s, idx, p))) {
            *tail = p;
            tail = &p->next;
        } else {
            sdp_keymem_wipe(p->data, p->len);
            free(p);
        }
    }
    return keep;
}

static void fail_list(sdp_socket *s, struct api_pend *p, int err)
{
    while (p) {
        struct api_pend *n = p->next;
        struct sdp_msg m;
        memset(&m, 0, sizeof(m));
        m.kind = SDP_MSG_FAILED;
        m.error = err;
        m.rpc_id = p->id;
        m.cookie = p->cookie;
        memcpy(&m.peer, p->addr.bytes, p->addr.len);
        m.peer_len = p->addr.len;
        m.priv_peer = UINT32_MAX;
        sdp_api_deliver_msg(s, s->eng[0], &m);
        sdp_keymem_wipe(p->data, p->len);
        free(p);
        p = n;
    }
}

static void send_list(sdp_socket *s, uint32_t peer, struct api_pend *p)
{
    while (p) {
        struct api_pend *n = p->next;
        struct sdp_engine *e = s->eng[sdp_api_owner_engine(s, p->id)];
        struct iovec iov = {.iov_base = p->data, .iov_len = p->len};
        sdp_engine_lock(e);
        int rc = sdp_core_send_request_id(sdp_engine_core(e), peer, p->id, &iov, 1, p->cookie, sdp_engine_now());
        sdp_engine_unlock(e);
        if (rc == 0) {
            if (s->threaded)
                sdp_engine_wake(e);
            sdp_keymem_wipe(p->data, p->len);
            free(p);
        } else {
            p->next = NULL;
            fail_list(s, p, rc);
        }
        p = n;
    }
}

/* ---- events ---- */

/* Forget a server's early key at `at` (now when the table is full). */
static void early_drop_later(sdp_socket *s, struct api_hs *h, int idx, uint64_t at)
{
    for (unsigned i = 0; i < EARLY_DROPS; i++)
        if (h->drops[i].peer < 0 || h->drops[i].peer == idx) {
            h->drops[i].peer = idx;
            h->drops[i].at = at;
            return;
        }
    sdp_api_peer_drop_early(s, idx);
}

static void early_drops_due(sdp_socket *s, struct api_hs *h, uint64_t now, uint64_t *next)
{
    for (unsigned i = 0; i < EARLY_DROPS; i++) {
        if (h->drops[i].peer < 0)
            continue;
        if (h->drops[i].at <= now) {
            sdp_api_peer_drop_early(s, h->drops[i].peer);
            h->drops[i].peer = -1;
        } else if (h->drops[i].at < *next) {
            *next = h->drops[i].at;
        }
    }
}

/* Keys just went in: every engine may hold packets that waited for them. */
static void wake_all(sdp_socket *s)
{
    for (unsigned i = 0; s->threaded && i < s->n; i++)
        sdp_engine_wake(s->eng[i]);
}

/* 0-RTT keys: a client sends what waits for the peer as early data at
 * once; a server installs its 0.5-RTT session, which opens early requests
 * and answers them. */
static void on_early(sdp_socket *s, struct api_hs *h, const struct sdp_hs_event *ev)
{
    pthread_mutex_lock(&h->pend_lock);
    struct api_conn *c = conn_find(h, &ev->addr, 0);
    int client = ev->role == SDP_TLS_CLIENT;
    int idx = sdp_api_peer_set_early(s, &ev->addr, ev->suite, client ? NULL : ev->tx, client ? NULL : ev->rx,
                                     ev->early, c ? c->next_id : 0);
    if (idx >= 0 && client) {
        for (struct api_pend *p = h->pend_head; p; p = p->next)
            if (!p->early && p->addr.len == ev->addr.len && !memcmp(p->addr.bytes, ev->addr.bytes, ev->addr.len))
                send_early(s, h, idx, p);
    }
    pthread_mutex_unlock(&h->pend_lock);
    wake_all(s);
}

static void on_done(sdp_socket *s, struct api_hs *h, const struct sdp_hs_event *ev, uint64_t now)
{
    pthread_mutex_lock(&h->pend_lock);
    struct api_conn *c = conn_find(h, &ev->addr, 0);
    int idx = sdp_api_peer_find(s, &ev->addr);
    if (ev->role == SDP_TLS_SERVER && ev->early_state == 1 && idx >= 0) {
        /* Installed at 0.5-RTT; early stragglers still open for a while. */
        early_drop_later(s, h, idx, now + EARLY_KEEP_NS);
    } else if (idx >= 0 && atomic_load(&s->peers[idx].keys) != API_KEYS_READY) {
        idx = sdp_api_peer_complete(s, idx, ev->suite, ev->tx, ev->rx);
    } else {
        idx = sdp_api_peer_set_keys(s, &ev->addr, ev->suite, ev->tx, ev->rx, c ? c->next_id : 0);
    }
    struct api_pend *list = pend_take_locked(h, &ev->addr, 0);
    if (c)
        c->used = 0;
    pthread_mutex_unlock(&h->pend_lock);
    wake_all(s);
    /* 0-RTT requests: taken (their copies go), or refused (sent again
     * under the 1-RTT keys, same ids: no key sealed those ids before). */
    struct api_pend *again = NULL, **tail = &again;
    for (struct api_pend *p = list, *n; p; p = n) {
        n = p->next;
        p->next = NULL;
        if (!p->early || (idx >= 0 && ev->early_state == -1 && early_take_back(s, idx, p))) {
            if (p->early)
                atomic_fetch_add(&h->early_resent, 1);
            *tail = p;
            tail = &p->next;
        } else {
            sdp_keymem_wipe(p->data, p->len);
            free(p);
        }
    }
    list = again;
    /* Only now may the server's last acknowledgement go (hs.h). */
    pthread_mutex_lock(&h->hs_lock);
    sdp_hs_release(h->hs, &ev->addr);
    atomic_store(&h->out_ready, 1);
    pthread_mutex_unlock(&h->hs_lock);
    atomic_fetch_add(&h->done, 1);
    if (idx < 0)
        fail_list(s, list, idx);
    else
        send_list(s, (uint32_t)idx, list);
}

static void on_failed(sdp_socket *s, struct api_hs *h, const struct sdp_hs_event *ev)
{
    int idx = sdp_api_peer_find(s, &ev->addr);
    atomic_fetch_add(&h->failed, 1);
    pthread_mutex_lock(&h->hs_lock);
    int busy = sdp_hs_busy(h->hs, &ev->addr);
    pthread_mutex_unlock(&h->hs_lock);
    if (busy)
        return; /* another attempt with the peer goes on: its messages wait for it */
    pthread_mutex_lock(&h->pend_lock);
    struct api_pend *list = pend_take_locked(h, &ev->addr, 0);
    struct api_conn *c = conn_find(h, &ev->addr, 0);
    if (c)
        c->used = 0;
    if (idx >= 0 && atomic_load(&s->peers[idx].keys) == API_KEYS_EARLY) {
        /* No session after all: nothing more goes out early. */
        atomic_store(&s->peers[idx].keys, API_KEYS_PENDING);
        sdp_api_peer_drop_early(s, idx);
    }
    pthread_mutex_unlock(&h->pend_lock);
    fail_list(s, settle_early(s, idx, list), ev->error);
}

/* The peer says it has no session with us (it restarted): handshake again,
 * at most once a second per peer since anyone can send that hint. */
static void on_no_session(sdp_socket *s, struct api_hs *h, const struct sdp_hs_event *ev, uint64_t now)
{
    int idx = sdp_api_peer_find(s, &ev->addr);
    if (idx < 0)
        return;
    /* The limit lives with the peer, not with the attempt (whose record
     * goes at its end): hints queued behind a completed re-handshake must
     * not start another one. */
    uint64_t last = atomic_load(&s->peers[idx].last_rekey);
    if ((last != 0 && now - last < REKEY_GAP_NS) ||
        !atomic_compare_exchange_strong(&s->peers[idx].last_rekey, &last, now))
        return;
    pthread_mutex_lock(&h->hs_lock);
    if (sdp_hs_connect(h->hs, &ev->addr, h->server_name, now) >= 0)
        atomic_store(&h->out_ready, 1);
    pthread_mutex_unlock(&h->hs_lock);
}

static void handle_events(sdp_socket *s, struct api_hs *h, uint64_t now)
{
    if (pthread_mutex_trylock(&h->ev_lock) != 0)
        return; /* another engine is at it and takes every event */
    for (;;) {
        pthread_mutex_lock(&h->hs_lock);
        int got = sdp_hs_next_event(h->hs, h->ev);
        pthread_mutex_unlock(&h->hs_lock);
        if (!got)
            break;
        if (h->ev->type == SDP_HS_EV_DONE)
            on_done(s, h, h->ev, now);
        else if (h->ev->type == SDP_HS_EV_EARLY)
            on_early(s, h, h->ev);
        else if (h->ev->type == SDP_HS_EV_FAILED)
            on_failed(s, h, h->ev);
        else if (h->ev->type == SDP_HS_EV_NO_SESSION)
            on_no_session(s, h, h->ev, now);
        sdp_keymem_wipe(h->ev, sizeof(*h->ev));
    }
    pthread_mutex_unlock(&h->ev_lock);
}

/* ---- engine hooks ---- */

uint64_t sdp_api_hs_run(void *ctx, struct sdp_engine *e, const struct sdp_engine_hs_pkt *pkts, unsigned n,
                        uint64_t now)
{
    (void)e;
    sdp_socket *s = ctx;
    struct api_hs *h = hsx(s);
    if (!h)
        return UINT64_MAX;
    if (!pkts) {
        /* Only the deadline (sending armed timers): nothing runs, so what a
         * due timer makes waits for a pass that also sends it. */
        pthread_mutex_lock(&h->hs_lock);
        uint64_t exp = sdp_hs_next_expiry(h->hs), aux = atomic_load(&h->aux_exp);
        pthread_mutex_unlock(&h->hs_lock);
        exp = aux < exp ? aux : exp;
        atomic_store(&h->next_exp, exp);
        return exp;
    }
    if (n == 0 && !atomic_load(&h->out_ready) && now < atomic_load(&h->next_exp))
        return atomic_load(&h->next_exp);
    pthread_mutex_lock(&h->hs_lock);
    for (unsigned i = 0; i < n; i++) {
        if (pkts[i].no_session == 1)
            sdp_hs_no_session(h->hs, &pkts[i].addr, pkts[i].len, now);
        else if (!pkts[i].no_session)
            sdp_hs_input(h->hs, &pkts[i].addr, pkts[i].data, pkts[i].len, now);
    }
    if (sdp_hs_next_expiry(h->hs) <= now)
        sdp_hs_handle_expiry(h->hs, now);
    pthread_mutex_unlock(&h->hs_lock);
    handle_events(s, h, now);

    /* Messages whose handshake never ended either way (cannot normally
     * happen: attempts time out first) fail rather than wait forever. */
    pthread_mutex_lock(&h->pend_lock);
    uint64_t pend_exp = h->pend_head ? h->pend_head->deadline : UINT64_MAX;
    struct api_pend *late = pend_exp <= now ? pend_take_locked(h, NULL, now) : NULL;
    early_drops_due(s, h, now, &pend_exp);
    pthread_mutex_unlock(&h->pend_lock);
    while (late) {
        /* One peer at a time: 0-RTT copies are settled against its core. */
        struct api_pend *same = NULL, **st = &same, *rest = NULL, **rt = &rest;
        for (struct api_pend *p = late, *nx; p; p = nx) {
            nx = p->next;
            p->next = NULL;
            int eq = p->addr.len == late->addr.len && !memcmp(p->addr.bytes, late->addr.bytes, p->addr.len);
            *(eq ? st : rt) = p;
            if (eq)
                st = &p->next;
            else
                rt = &p->next;
        }
        fail_list(s, settle_early(s, sdp_api_peer_find(s, &same->addr), same), SDP_ETIMEDOUT);
        late = rest;
    }

    pthread_mutex_lock(&h->hs_lock);
    uint64_t exp = sdp_hs_next_expiry(h->hs);
    if (sdp_hs_pending(h->hs))
        atomic_store(&h->out_ready, 1);
    atomic_store(&h->aux_exp, pend_exp);
    if (pend_exp < exp)
        exp = pend_exp;
    atomic_store(&h->next_exp, exp);
    pthread_mutex_unlock(&h->hs_lock);
    return exp;
}

size_t sdp_api_hs_output(void *ctx, uint64_t now, uint8_t *buf, size_t cap, struct sdp_core_addr *to)
{
    sdp_socket *s = ctx;
    struct api_hs *h = hsx(s);
    if (!h || !atomic_load(&h->out_ready))
        return 0;
    pthread_mutex_lock(&h->hs_lock);
    size_t n = sdp_hs_output(h->hs, now, buf, cap, to);
    if (n == 0) {
        atomic_store(&h->out_ready, 0);
        uint64_t exp = sdp_hs_next_expiry(h->hs), aux = atomic_load(&h->aux_exp);
        atomic_store(&h->next_exp, aux < exp ? aux : exp); /* sending armed timers */
    }
    pthread_mutex_unlock(&h->hs_lock);
    return n;
}

void sdp_api_hs_stats(sdp_socket *s, struct sdp_stats *st)
{
    struct api_hs *h = hsx(s);
    if (!h)
        return;
    struct sdp_hs_stats hst;
    pthread_mutex_lock(&h->hs_lock);
    sdp_hs_get_stats(h->hs, &hst);
    pthread_mutex_unlock(&h->hs_lock);
    st->handshakes_done = atomic_load(&h->done);
    st->handshakes_failed = atomic_load(&h->failed);
    st->handshake_retries = hst.retries_sent;
    st->early_sent = atomic_load(&h->early_sent);
    st->early_resent = atomic_load(&h->early_resent);
    pthread_mutex_lock(&h->pend_lock);
    st->waiting_for_keys = h->npend;
    pthread_mutex_unlock(&h->pend_lock);
}
