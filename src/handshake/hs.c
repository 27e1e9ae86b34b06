/* The handshake protocol: attempts, reliable in-order handshake streams,
 * retry tokens, anti-amplification.  docs/PROTOCOL.md section 8 is the
 * specification; docs/HANDSHAKE.md explains the choices. */
#include "handshake/hs.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/keymem.h"
#include "wire/wire.h"

#define HS_HDR 28
#define HS_STREAM_MAX 16384 /* our handshake bytes per attempt (certificate chains fit) */
#define TOKEN_LEN 25        /* version, expiry, 16-byte MAC */
#define TOKEN_VERSION 1
#define TOKEN_CACHE 64      /* servers whose retry token a client remembers */
#define FAIL_SENDS 2        /* times a failed attempt sends its alert */
#define TICKET_DELAY_NS 1000000ull /* tickets wait this long after the keys: the first RPCs go first */

enum att_state { ATT_FREE = 0, ATT_ACTIVE, ATT_DONE, ATT_FAILED };

struct attempt {
    uint8_t state;
    uint8_t role;             /* SDP_TLS_CLIENT / SDP_TLS_SERVER */
    uint8_t validated;        /* server: the client proved it receives at addr */
    uint8_t ack_pending;
    uint8_t fail_sends;
    uint8_t hold;             /* server, done: silent until sdp_hs_release (keys installed) */
    uint8_t installing;       /* done, keys not yet installed by the caller: still "busy" */
    uint8_t early_sent;       /* an EARLY event went out for this attempt */
    uint8_t tickets_due;      /* server: keys installed, tickets still to be made ... */
    uint64_t tickets_at;      /* ... at this time (0: set at the next timer pass) */
    int error;
    struct sdp_core_addr addr;
    uint64_t conn_id;
    struct sdp_tls *tls;
    uint8_t *sbuf;            /* our handshake stream from offset 0 */
    uint32_t slen, snd_una, snd_nxt;
    uint32_t rcv_off;         /* peer's stream bytes received in order */
    uint64_t bytes_in, bytes_out; /* for the 3x limit before validation */
    uint64_t rto_at, rto, deadline;
    uint8_t token[TOKEN_LEN]; /* client: echoed in CLIENT packets */
    uint8_t token_len;
    uint8_t retries;          /* RETRYs accepted */
    char name[256];
};

struct token_entry {
    struct sdp_core_addr addr;
    uint8_t token[TOKEN_LEN];
    uint8_t used;
};

struct pending_reply {
    struct sdp_core_addr to;
    uint8_t kind;
    uint64_t conn_id;
    uint8_t token[TOKEN_LEN];
    uint8_t token_len;
};

struct sdp_hs {
    struct sdp_hs_config cfg;
    struct attempt *att;
    uint8_t *token_key;        /* locked memory, 32 bytes */
    struct token_entry *tokens;
    uint32_t token_next;
    struct sdp_hs_event *ev;   /* locked memory ring */
    uint32_t ev_head, ev_n, ev_cap;
    struct pending_reply *rep; /* RETRY / CLOSE replies not yet sent */
    uint32_t rep_head, rep_n, rep_cap;
    uint64_t budget_ms;        /* the millisecond the reply budget is for */
    uint32_t budget_used;
    uint32_t out_cursor;       /* round-robin over attempts in sdp_hs_output */
    uint8_t flight_big;        /* our first flight once exceeded 3x a ClientHello: RETRY first contacts */
    struct sdp_hs_stats st;
};

void sdp_hs_config_default(struct sdp_hs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_attempts = 256;
    cfg->rto_ns = 30000000ull;
    cfg->rto_max_ns = 1000000000ull;
    cfg->timeout_ns = 5000000000ull;
    cfg->linger_ns = 2000000000ull;
    cfg->token_life_ns = 600000000000ull;
    cfg->replies_per_ms = 64;
    cfg->unvalidated_max = 32;
}

int sdp_hs_new(const struct sdp_hs_config *cfg, struct sdp_hs **out)
{
    if (!cfg || !out || !cfg->tls || cfg->max_attempts == 0 || cfg->max_attempts > 65536 || cfg->rto_ns == 0 ||
        (!cfg->client && !cfg->server))
        return SDP_EINVAL;
    if (sodium_init() < 0)
        return SDP_ECRYPTO;
    struct sdp_hs *hs = calloc(1, sizeof(*hs));
    if (!hs)
        return SDP_ENOMEM;
    hs->cfg = *cfg;
    hs->att = calloc(cfg->max_attempts, sizeof(*hs->att));
    hs->tokens = calloc(TOKEN_CACHE, sizeof(*hs->tokens));
    hs->ev_cap = 3 * cfg->max_attempts + 16; /* EARLY, DONE, FAILED */
    hs->ev = sdp_keymem_alloc((size_t)hs->ev_cap * sizeof(*hs->ev));
    hs->rep_cap = 256;
    hs->rep = calloc(hs->rep_cap, sizeof(*hs->rep));
    hs->token_key = sdp_keymem_alloc(32);
    if (!hs->att || !hs->tokens || !hs->ev || !hs->rep || !hs->token_key) {
        sdp_hs_free(hs);
        return SDP_ENOMEM;
    }
    randombytes_buf(hs->token_key, 32);
    *out = hs;
    return 0;
}

static void att_clear(struct attempt *a)
{
    sdp_tls_free(a->tls);
    free(a->sbuf);
    memset(a, 0, sizeof(*a));
}

void sdp_hs_free(struct sdp_hs *hs)
{
    if (!hs)
        return;
    if (hs->att)
        for (uint32_t i = 0; i < hs->cfg.max_attempts; i++)
            att_clear(&hs->att[i]);
    free(hs->att);
    free(hs->tokens);
    free(hs->rep);
    sdp_keymem_free(hs->ev);
    sdp_keymem_free(hs->token_key);
    free(hs);
}

/* ---- helpers ---- */

static int addr_eq(const struct sdp_core_addr *a, const struct sdp_core_addr *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static struct attempt *find(struct sdp_hs *hs, const struct sdp_core_addr *addr, uint64_t conn_id)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        struct attempt *a = &hs->att[i];
        if (a->state != ATT_FREE && a->conn_id == conn_id && addr_eq(&a->addr, addr))
            return a;
    }
    return NULL;
}

static struct attempt *find_active(struct sdp_hs *hs, const struct sdp_core_addr *addr, int role)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        struct attempt *a = &hs->att[i];
        if (a->state == ATT_ACTIVE && (role == 0 || a->role == role) && addr_eq(&a->addr, addr))
            return a;
    }
    return NULL;
}

/* A free slot, or the oldest lingering finished one. */
static struct attempt *alloc_attempt(struct sdp_hs *hs)
{
    struct attempt *victim = NULL;
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        struct attempt *a = &hs->att[i];
        if (a->state == ATT_FREE)
            return a;
        if (a->state != ATT_ACTIVE && (!victim || a->deadline < victim->deadline))
            victim = a;
    }
    if (victim)
        att_clear(victim);
    return victim;
}

/* The ring's next slot, zeroed, to fill in place (its secrets never sit
 * outside locked memory, and no allocation is on the handshake's path);
 * NULL when full.  ev_commit makes it an event, ev_abandon wipes it. */
static struct sdp_hs_event *ev_slot(struct sdp_hs *hs)
{
    if (hs->ev_n == hs->ev_cap)
        return NULL;
    struct sdp_hs_event *slot = &hs->ev[(hs->ev_head + hs->ev_n) % hs->ev_cap];
    memset(slot, 0, sizeof(*slot));
    return slot;
}

static void ev_commit(struct sdp_hs *hs)
{
    hs->ev_n++;
}

static void ev_abandon(struct sdp_hs_event *ev)
{
    sodium_memzero(ev, sizeof(*ev));
}

static void push_event(struct sdp_hs *hs, const struct sdp_hs_event *ev)
{
    if (hs->ev_n == hs->ev_cap)
        return; /* cannot happen: the ring holds three per attempt */
    struct sdp_hs_event *slot = &hs->ev[(hs->ev_head + hs->ev_n) % hs->ev_cap];
    *slot = *ev;
    hs->ev_n++;
}

static void fail(struct sdp_hs *hs, struct attempt *a, int err, uint64_t now)
{
    if (a->state != ATT_ACTIVE)
        return;
    a->state = ATT_FAILED;
    a->error = err;
    a->fail_sends = FAIL_SENDS;
    a->deadline = now + hs->cfg.linger_ns / 4;
    a->rto_at = now;
    hs->st.failed++;
    if (err == SDP_ETIMEDOUT)
        hs->st.timeouts++;
    struct sdp_hs_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SDP_HS_EV_FAILED;
    ev.role = a->role;
    ev.error = err;
    ev.addr = a->addr;
    push_event(hs, &ev);
}

/* Move what TLS has to send into our stream buffer. */
static void pull_tls(struct sdp_hs *hs, struct attempt *a, uint64_t now)
{
    for (;;) {
        if (a->slen == HS_STREAM_MAX) {
            uint8_t probe;
            if (sdp_tls_output(a->tls, &probe, 1) > 0)
                fail(hs, a, SDP_EHANDSHAKE, now); /* a flight beyond our bound */
            return;
        }
        size_t n = sdp_tls_output(a->tls, a->sbuf + a->slen, HS_STREAM_MAX - a->slen);
        if (n == 0)
            return;
        a->slen += (uint32_t)n;
    }
}

static void complete(struct sdp_hs *hs, struct attempt *a, uint64_t now)
{
    struct sdp_hs_event *ev = ev_slot(hs);
    if (!ev) {
        fail(hs, a, SDP_ELIMIT, now); /* cannot happen: the ring holds three per attempt */
        return;
    }
    int rc = sdp_tls_export(a->tls, &ev->suite, ev->tx, ev->rx);
    if (rc) {
        ev_abandon(ev);
        fail(hs, a, rc == SDP_EAGAIN ? SDP_EHANDSHAKE : rc, now);
        return;
    }
    ev->type = SDP_HS_EV_DONE;
    ev->role = a->role;
    ev->addr = a->addr;
    ev->early_state = a->role == SDP_TLS_CLIENT ? sdp_tls_early_accepted(a->tls) : a->early_sent;
    const char *id = sdp_tls_peer_identity(a->tls);
    if (id) {
        strncpy(ev->identity, id, sizeof(ev->identity) - 1);
    }
    a->state = ATT_DONE;
    a->validated = 1; /* TLS accepted the client's Finished, keyed by our flight: it receives at addr */
    a->hold = a->role == SDP_TLS_SERVER;
    a->installing = 1;
    a->deadline = now + hs->cfg.linger_ns;
    hs->st.completed++;
    ev_commit(hs);
}

/* Feed the peer's bytes at stream_offset to TLS, in order. */
static void take_payload(struct sdp_hs *hs, struct attempt *a, uint32_t off, const uint8_t *p, uint16_t len,
                         uint64_t now)
{
    if (len == 0)
        return;
    a->ack_pending = 1; /* new or duplicate: either way the peer wants to know */
    if (off > a->rcv_off || (uint64_t)off + len <= a->rcv_off)
        return; /* a gap (asked for again by our ack) or old bytes */
    uint32_t skip = a->rcv_off - off;
    int rc = sdp_tls_input(a->tls, p + skip, (size_t)len - skip);
    a->rcv_off += (uint32_t)len - skip;
    pull_tls(hs, a, now);
    if (rc < 0)
        fail(hs, a, rc, now);
}

/* 0-RTT keys: a resuming client's at once; a server's once its TLS
 * accepted the client's early data, with the 1-RTT keys (0.5-RTT). */
static void check_early(struct sdp_hs *hs, struct attempt *a, uint64_t now)
{
    if (a->state != ATT_ACTIVE || a->early_sent)
        return;
    int server = a->role == SDP_TLS_SERVER;
    if (server && sdp_tls_early_accepted(a->tls) != 1)
        return;
    struct sdp_hs_event *ev = ev_slot(hs);
    if (!ev) {
        fail(hs, a, SDP_ELIMIT, now);
        return;
    }
    enum sdp_cipher esuite;
    int rc = sdp_tls_early_export(a->tls, &esuite, ev->early);
    if (rc == 0) {
        ev->suite = esuite;
        if (server)
            rc = sdp_tls_export(a->tls, &ev->suite, ev->tx, ev->rx);
    }
    if (rc == 0 && ev->suite == esuite) {
        ev->type = SDP_HS_EV_EARLY;
        ev->role = a->role;
        ev->addr = a->addr;
        a->early_sent = 1;
        hs->st.early++;
        ev_commit(hs);
        return;
    }
    ev_abandon(ev);
    if (server && rc != SDP_EUNAVAIL)
        fail(hs, a, rc ? rc : SDP_EHANDSHAKE, now); /* accepted 0-RTT yet no keys: cannot go on */
}

/* A server is done when its TLS is; so is a client, whose Finished goes
 * out just before its first requests (a server that has not read the
 * Finished yet keeps those for a moment, see the engine).  With mutual TLS
 * the client waits until the server has acknowledged its whole stream:
 * TLS 1.3 finishes the client first, and only then has the server judged
 * the client's certificate, so a refused client never believes it has a
 * session.  (After an accepted 0-RTT there is no client certificate.) */
static void check_done(struct sdp_hs *hs, struct attempt *a, int close_pkt, uint64_t now)
{
    if (a->role == SDP_TLS_SERVER && !a->early_sent && sdp_tls_early_accepted(a->tls) == 1)
        check_early(hs, a, now); /* a client's comes at the start (sdp_hs_connect) */
    if (a->state != ATT_ACTIVE || !sdp_tls_done(a->tls))
        return;
    if (a->role == SDP_TLS_CLIENT &&
        (close_pkt || (a->snd_una < a->slen && sdp_tls_cert_requested(a->tls))))
        return;
    complete(hs, a, now);
}

static void take_ack(struct attempt *a, uint32_t ack)
{
    if (ack > a->snd_nxt)
        return; /* acknowledges bytes we never sent: ignore */
    if (ack > a->snd_una)
        a->snd_una = ack; /* proves no address: our flight's length is predictable */
}

/* ---- tokens ---- */

static void token_mac(const struct sdp_hs *hs, const struct sdp_core_addr *addr, uint64_t expiry, uint8_t mac[16])
{
    uint8_t msg[8 + SDP_CORE_ADDR_MAX] = {0};
    uint8_t full[crypto_auth_hmacsha256_BYTES];
    uint32_t alen = addr->len < SDP_CORE_ADDR_MAX ? addr->len : SDP_CORE_ADDR_MAX;
    sdp_put_u64be(msg, msg + 8, expiry);
    memcpy(msg + 8, addr->bytes, alen);
    crypto_auth_hmacsha256(full, msg, 8 + alen, hs->token_key);
    memcpy(mac, full, 16);
}

static void token_make(const struct sdp_hs *hs, const struct sdp_core_addr *addr, uint64_t now, uint8_t t[TOKEN_LEN])
{
    uint64_t expiry = now + hs->cfg.token_life_ns;
    t[0] = TOKEN_VERSION;
    sdp_put_u64be(t + 1, t + 9, expiry);
    token_mac(hs, addr, expiry, t + 9);
}

static int token_ok(const struct sdp_hs *hs, const struct sdp_core_addr *addr, const uint8_t *t, size_t len,
                    uint64_t now)
{
    uint64_t expiry;
    uint8_t mac[16];
    if (len != TOKEN_LEN || t[0] != TOKEN_VERSION || !sdp_get_u64be(t + 1, t + len, &expiry))
        return 0;
    if (expiry < now || expiry - now > hs->cfg.token_life_ns)
        return 0;
    token_mac(hs, addr, expiry, mac);
    return sodium_memcmp(mac, t + 9, 16) == 0;
}

static struct token_entry *token_lookup(struct sdp_hs *hs, const struct sdp_core_addr *addr)
{
    for (uint32_t i = 0; i < TOKEN_CACHE; i++)
        if (hs->tokens[i].used && addr_eq(&hs->tokens[i].addr, addr))
            return &hs->tokens[i];
    return NULL;
}

static void token_store(struct sdp_hs *hs, const struct sdp_core_addr *addr, const uint8_t *t)
{
    struct token_entry *e = token_lookup(hs, addr);
    if (!e) {
        e = &hs->tokens[hs->token_next];
        hs->token_next = (hs->token_next + 1) % TOKEN_CACHE;
    }
    e->used = 1;
    e->addr = *addr;
    memcpy(e->token, t, TOKEN_LEN);
}

/* Stateless replies (RETRY, CLOSE): budgeted, and never more bytes than
 * the packet that caused them. */
static void queue_reply(struct sdp_hs *hs, const struct sdp_core_addr *to, uint8_t kind, uint64_t conn_id,
                        const uint8_t *token, uint8_t token_len, size_t in_len, uint64_t now)
{
    if ((size_t)HS_HDR + token_len > 3 * in_len) {
        hs->st.amp_limited++;
        return;
    }
    uint64_t ms = now / 1000000;
    if (ms != hs->budget_ms) {
        hs->budget_ms = ms;
        hs->budget_used = 0;
    }
    if (hs->budget_used >= hs->cfg.replies_per_ms || hs->rep_n == hs->rep_cap) {
        hs->st.replies_limited++;
        return;
    }
    hs->budget_used++;
    struct pending_reply *r = &hs->rep[(hs->rep_head + hs->rep_n) % hs->rep_cap];
    r->to = *to;
    r->kind = kind;
    r->conn_id = conn_id;
    r->token_len = token_len;
    if (token_len)
        memcpy(r->token, token, token_len);
    hs->rep_n++;
}

/* ---- starting attempts ---- */

static int new_attempt(struct sdp_hs *hs, int role, const struct sdp_core_addr *addr, uint64_t conn_id,
                       const char *name, uint64_t now, struct attempt **out)
{
    struct attempt *a = alloc_attempt(hs);
    if (!a)
        return SDP_ELIMIT;
    a->sbuf = malloc(HS_STREAM_MAX);
    if (!a->sbuf)
        return SDP_ENOMEM;
    if (name)
        strncpy(a->name, name, sizeof(a->name) - 1);
    int rc = sdp_tls_new(hs->cfg.tls, role, name, addr->bytes, addr->len, &a->tls);
    if (rc) {
        att_clear(a);
        return rc;
    }
    a->state = ATT_ACTIVE;
    a->role = (uint8_t)role;
    a->addr = *addr;
    a->conn_id = conn_id;
    a->rto = hs->cfg.rto_ns;
    a->rto_at = now + a->rto;
    a->deadline = now + hs->cfg.timeout_ns;
    *out = a;
    return 0;
}

/* Under way, or done with keys the caller has not installed yet (a send
 * racing with the install must join it, not start another session). */
int sdp_hs_busy(const struct sdp_hs *hs, const struct sdp_core_addr *addr)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        const struct attempt *a = &hs->att[i];
        if ((a->state == ATT_ACTIVE || (a->state == ATT_DONE && a->installing)) && addr_eq(&a->addr, addr))
            return 1;
    }
    return 0;
}

int sdp_hs_connect(struct sdp_hs *hs, const struct sdp_core_addr *addr, const char *name, uint64_t now)
{
    if (!hs || !addr || !hs->cfg.client)
        return SDP_EINVAL;
    if (sdp_hs_busy(hs, addr))
        return 1;
    uint64_t conn_id;
    do
        randombytes_buf(&conn_id, sizeof(conn_id));
    while (conn_id == 0);
    struct attempt *a;
    int rc = new_attempt(hs, SDP_TLS_CLIENT, addr, conn_id, name, now, &a);
    if (rc)
        return rc;
    struct token_entry *t = token_lookup(hs, addr);
    if (t) {
        memcpy(a->token, t->token, TOKEN_LEN);
        a->token_len = TOKEN_LEN;
    }
    a->validated = 1; /* the 3x rule binds servers only */
    pull_tls(hs, a, now);
    hs->st.started++;
    check_early(hs, a, now);
    return 0;
}

/* ---- input ---- */

/* Bytes on the wire for a stream of n bytes in full-size datagrams. */
static uint64_t flight_bytes(uint32_t n)
{
    uint32_t room = SDP_HS_DGRAM_MAX - HS_HDR, pkts = (n + room - 1) / room;
    return (uint64_t)n + (uint64_t)pkts * HS_HDR;
}

/* A first contact without a valid token may start an attempt at once (one
 * round trip less than a RETRY) when it is padded to a full datagram, so
 * that 3x its size carries our whole first flight, and while few attempts
 * wait for their address to be proven: a spoofed-source flood holds at
 * most unvalidated_max of them (each until it times out) and everything
 * beyond gets the stateless RETRY, as every contact does with
 * always_retry. */
static int may_take_unproven(struct sdp_hs *hs, const struct sdp_core_addr *from, const struct sdp_handshake *h,
                             size_t len)
{
    if (hs->cfg.always_retry || hs->flight_big || h->token_len || len < SDP_HS_DGRAM_MAX)
        return 0;
    /* A spoofed first contact must not replace a real client's attempt. */
    if (find_active(hs, from, SDP_TLS_SERVER))
        return 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        const struct attempt *a = &hs->att[i];
        if (a->state == ATT_ACTIVE && a->role == SDP_TLS_SERVER && !a->validated)
            n++;
    }
    if (n < hs->cfg.unvalidated_max)
        return 1;
    hs->st.retries_load++;
    return 0;
}

static int server_input(struct sdp_hs *hs, const struct sdp_core_addr *from, const struct sdp_handshake *h,
                        size_t len, uint64_t now)
{
    if (!hs->cfg.server)
        return SDP_EINVAL;
    if (h->stream_offset != 0 || h->ack_offset != 0) {
        hs->st.dropped++; /* the middle of an attempt we do not hold */
        return SDP_EUNKNOWN;
    }
    /* Both sides started at once: the larger connection id goes on, the
     * other side's attempt gives way (it then completes as our server). */
    struct attempt *mine = find_active(hs, from, SDP_TLS_CLIENT);
    if (mine) {
        if (mine->conn_id > h->conn_id) {
            hs->st.dropped++;
            return SDP_EINPROGRESS;
        }
        att_clear(mine);
        hs->st.superseded++;
    }
    int proven = token_ok(hs, from, h->token, h->token_len, now);
    if (!proven && h->token_len)
        hs->st.tokens_bad++;
    if (!proven && !may_take_unproven(hs, from, h, len)) {
        uint8_t t[TOKEN_LEN];
        token_make(hs, from, now, t);
        queue_reply(hs, from, SDP_HS_RETRY, h->conn_id, t, TOKEN_LEN, len, now);
        hs->st.retries_sent++;
        return 0;
    }
    /* One attempt per peer: a newer one replaces an unfinished older one. */
    struct attempt *old = find_active(hs, from, SDP_TLS_SERVER);
    if (old)
        att_clear(old);
    struct attempt *a;
    int rc = new_attempt(hs, SDP_TLS_SERVER, from, h->conn_id, NULL, now, &a);
    if (rc) {
        hs->st.dropped++;
        return rc;
    }
    hs->st.accepted++;
    /* A token proves the client receives at this address; without one, TLS
     * accepting its Finished does (complete), and until then we send at
     * most 3x what came from it (attempt_output). */
    a->validated = (uint8_t)proven;
    a->bytes_in = len;
    take_payload(hs, a, h->stream_offset, h->payload, h->payload_len, now);
    if (!proven && a->state == ATT_ACTIVE && flight_bytes(a->slen) > 3 * len) {
        /* Our first flight (a long certificate chain) would stall on the 3x
         * limit: ask for the address proof first, now and from now on. */
        att_clear(a);
        hs->flight_big = 1;
        hs->st.accepted--;
        hs->st.retries_flight++;
        uint8_t t[TOKEN_LEN];
        token_make(hs, from, now, t);
        queue_reply(hs, from, SDP_HS_RETRY, h->conn_id, t, TOKEN_LEN, len, now);
        hs->st.retries_sent++;
        return 0;
    }
    hs->st.unvalidated += !proven;
    check_done(hs, a, 0, now);
    return 0;
}

int sdp_hs_input(struct sdp_hs *hs, const struct sdp_core_addr *from, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct sdp_pkt p;
    int rc = sdp_wire_decode_handshake(pkt, len, &p);
    if (rc) {
        hs->st.dropped++;
        return SDP_EPROTO;
    }
    const struct sdp_handshake *h = &p.u.hs;
    if (h->kind == SDP_HS_CLOSE && h->conn_id == 0) {
        /* Unauthenticated: only a hint that makes the caller handshake again. */
        if (hs->ev_n < hs->ev_cap / 2) {
            struct sdp_hs_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.type = SDP_HS_EV_NO_SESSION;
            ev.addr = *from;
            push_event(hs, &ev);
        }
        return 0;
    }
    struct attempt *a = find(hs, from, h->conn_id);
    if (!a) {
        if (h->kind == SDP_HS_CLIENT)
            return server_input(hs, from, h, len, now);
        hs->st.dropped++;
        return SDP_EUNKNOWN;
    }
    int want = a->role == SDP_TLS_CLIENT ? SDP_HS_SERVER : SDP_HS_CLIENT;
    if (h->kind == SDP_HS_RETRY) {
        /* Only before the server sent anything, and at most twice. */
        if (a->role != SDP_TLS_CLIENT || a->state != ATT_ACTIVE || a->rcv_off != 0 || a->retries >= 2 ||
            h->token_len != TOKEN_LEN || h->payload_len != 0) {
            hs->st.dropped++;
            return SDP_EPROTO;
        }
        a->retries++;
        memcpy(a->token, h->token, TOKEN_LEN);
        a->token_len = TOKEN_LEN;
        token_store(hs, from, h->token);
        a->snd_nxt = a->snd_una; /* send the first flight again, now with the token */
        a->rto_at = now;
        return 0;
    }
    if (h->kind != want && h->kind != SDP_HS_CLOSE) {
        hs->st.dropped++;
        return SDP_EPROTO;
    }
    a->bytes_in += len;
    take_ack(a, h->ack_offset);
    if (a->state == ATT_ACTIVE || a->state == ATT_DONE)
        take_payload(hs, a, h->stream_offset, h->payload, h->payload_len, now);
    check_done(hs, a, h->kind == SDP_HS_CLOSE, now);
    if (h->kind == SDP_HS_CLOSE && a->state == ATT_ACTIVE) {
        /* The payload carried the peer's alert (take_payload failed us with
         * its cause); without one it simply gave up. */
        fail(hs, a, SDP_EHANDSHAKE, now);
    }
    return 0;
}

void sdp_hs_no_session(struct sdp_hs *hs, const struct sdp_core_addr *from, size_t len, uint64_t now)
{
    if (sdp_hs_recent(hs, from))
        return; /* a handshake is under way or just ended: its keys are coming or came */
    queue_reply(hs, from, SDP_HS_CLOSE, 0, NULL, 0, len, now);
    hs->st.no_session_sent++;
}

/* ---- output ---- */

static size_t encode(uint8_t *buf, size_t cap, uint8_t kind, uint64_t conn_id, uint32_t off, uint32_t ack,
                     const uint8_t *token, uint8_t token_len, const uint8_t *payload, uint16_t plen, uint16_t pad_to)
{
    struct sdp_hdr hdr = {.type = SDP_PKT_HANDSHAKE, .flags = 0, .rpc_id = 0};
    struct sdp_handshake h = {.kind = kind,
                              .conn_id = conn_id,
                              .stream_offset = off,
                              .ack_offset = ack,
                              .token = token,
                              .token_len = token_len,
                              .payload = payload,
                              .payload_len = plen,
                              .pad_to = pad_to};
    int n = sdp_wire_encode_handshake(buf, cap, &hdr, &h);
    return n > 0 ? (size_t)n : 0;
}

/* One datagram for attempt a, or 0. */
static size_t attempt_output(struct sdp_hs *hs, struct attempt *a, uint64_t now, uint8_t *buf, size_t cap)
{
    if (a->hold)
        return 0;
    uint8_t kind = a->role == SDP_TLS_CLIENT ? SDP_HS_CLIENT : SDP_HS_SERVER;
    uint8_t tlen = (a->role == SDP_TLS_CLIENT && a->rcv_off == 0) ? a->token_len : 0;
    if (a->state == ATT_FAILED) {
        if (!a->fail_sends || a->rto_at > now)
            return 0;
        a->fail_sends--;
        a->rto_at = now + a->rto;
        /* Whatever TLS left (its alert) goes out with CLOSE. */
        uint32_t from = a->snd_una, n = a->slen - from, room = (uint32_t)(SDP_HS_DGRAM_MAX - HS_HDR - tlen);
        if (n > room)
            n = room;
        if (!a->validated && a->bytes_out + HS_HDR + tlen + n > 3 * a->bytes_in) {
            hs->st.amp_limited++; /* the unacknowledged flight, again: within 3x too */
            return 0;
        }
        size_t len = encode(buf, cap, SDP_HS_CLOSE, a->conn_id, from, a->rcv_off, a->token, tlen,
                            a->sbuf + from, (uint16_t)n, 0);
        a->bytes_out += len;
        return len;
    }
    uint32_t room = (uint32_t)(SDP_HS_DGRAM_MAX - HS_HDR - tlen);
    uint32_t n = a->slen - a->snd_nxt;
    if (n > room)
        n = room;
    if (n == 0 && !a->ack_pending)
        return 0;
    if (!a->validated && a->bytes_out + HS_HDR + tlen + n > 3 * a->bytes_in) {
        hs->st.amp_limited++;
        return 0;
    }
    /* A client pads until the server has answered: its first flight is
     * what lets a server answer within 3x before the address is proven. */
    uint16_t pad = a->role == SDP_TLS_CLIENT && a->rcv_off == 0 ? SDP_HS_DGRAM_MAX : 0;
    size_t len = encode(buf, cap, kind, a->conn_id, a->snd_nxt, a->rcv_off, a->token, tlen, a->sbuf + a->snd_nxt,
                        (uint16_t)n, pad);
    if (len == 0)
        return 0;
    if (n && a->snd_una == a->snd_nxt)
        a->rto_at = now + a->rto; /* the timer runs while bytes are unacknowledged */
    a->snd_nxt += n;
    a->ack_pending = 0;
    a->bytes_out += len;
    return len;
}

size_t sdp_hs_output(struct sdp_hs *hs, uint64_t now, uint8_t *buf, size_t cap, struct sdp_core_addr *to)
{
    if (cap < SDP_HS_DGRAM_MAX)
        return 0;
    if (hs->rep_n) {
        struct pending_reply *r = &hs->rep[hs->rep_head];
        hs->rep_head = (hs->rep_head + 1) % hs->rep_cap;
        hs->rep_n--;
        *to = r->to;
        return encode(buf, cap, r->kind, r->conn_id, 0, 0, r->token, r->token_len, NULL, 0, 0);
    }
    for (uint32_t k = 0; k < hs->cfg.max_attempts; k++) {
        uint32_t i = (hs->out_cursor + k) % hs->cfg.max_attempts;
        struct attempt *a = &hs->att[i];
        if (a->state == ATT_FREE)
            continue;
        size_t n = attempt_output(hs, a, now, buf, cap);
        if (n) {
            hs->out_cursor = i; /* stay on it until its flight is out */
            *to = a->addr;
            return n;
        }
    }
    return 0;
}

int sdp_hs_pending(const struct sdp_hs *hs)
{
    if (hs->rep_n || hs->ev_n)
        return 1;
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        const struct attempt *a = &hs->att[i];
        if (a->state == ATT_FREE || a->hold)
            continue;
        if (a->ack_pending || (a->state != ATT_FAILED && a->snd_nxt < a->slen))
            return 1;
    }
    return 0;
}

/* ---- timers ---- */

uint64_t sdp_hs_next_expiry(const struct sdp_hs *hs)
{
    uint64_t t = UINT64_MAX;
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        const struct attempt *a = &hs->att[i];
        if (a->state == ATT_FREE)
            continue;
        if (a->deadline < t)
            t = a->deadline;
        if (a->tickets_due && a->tickets_at < t)
            t = a->tickets_at;
        int unacked = a->snd_una < a->slen || (a->state == ATT_FAILED && a->fail_sends);
        if (unacked && a->rto_at < t)
            t = a->rto_at;
    }
    return t;
}

void sdp_hs_handle_expiry(struct sdp_hs *hs, uint64_t now)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        struct attempt *a = &hs->att[i];
        if (a->state == ATT_FREE)
            continue;
        if (a->tickets_due && a->tickets_at == 0) {
            a->tickets_at = now + TICKET_DELAY_NS;
        } else if (a->tickets_due && a->tickets_at <= now) {
            a->tickets_due = 0;
            if (a->state == ATT_DONE && sdp_tls_issue_tickets(a->tls) == 0)
                pull_tls(hs, a, now);
        }
        if (a->deadline <= now) {
            if (a->state == ATT_ACTIVE)
                fail(hs, a, SDP_ETIMEDOUT, now);
            else
                att_clear(a);
            continue;
        }
        if (a->state != ATT_FAILED && a->snd_una < a->slen && a->rto_at <= now) {
            /* Go back to the first unacknowledged byte and back off. */
            a->snd_nxt = a->snd_una;
            a->rto = a->rto * 2 > hs->cfg.rto_max_ns ? hs->cfg.rto_max_ns : a->rto * 2;
            a->rto_at = now + a->rto;
            hs->st.retransmits++;
        }
    }
}

void sdp_hs_release(struct sdp_hs *hs, const struct sdp_core_addr *addr)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        struct attempt *a = &hs->att[i];
        if (a->state == ATT_DONE && addr_eq(&a->addr, addr)) {
            /* The tickets wait for the next timer pass: the client's first
             * requests, which may be waiting for these keys, go first. */
            a->tickets_due = a->role == SDP_TLS_SERVER && (a->hold || a->installing);
            a->tickets_at = 0;
            a->hold = a->installing = 0;
        }
    }
}

int sdp_hs_recent(const struct sdp_hs *hs, const struct sdp_core_addr *addr)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        const struct attempt *a = &hs->att[i];
        if ((a->state == ATT_ACTIVE || a->state == ATT_DONE) && addr_eq(&a->addr, addr))
            return 1;
    }
    return 0;
}

int sdp_hs_early(const struct sdp_hs *hs, const struct sdp_core_addr *addr)
{
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++) {
        const struct attempt *a = &hs->att[i];
        if (a->state == ATT_ACTIVE && a->role == SDP_TLS_CLIENT && a->early_sent && addr_eq(&a->addr, addr))
            return 1;
    }
    return 0;
}

int sdp_hs_next_event(struct sdp_hs *hs, struct sdp_hs_event *ev)
{
    if (!hs->ev_n)
        return 0;
    struct sdp_hs_event *slot = &hs->ev[hs->ev_head];
    *ev = *slot;
    sodium_memzero(slot, sizeof(*slot));
    hs->ev_head = (hs->ev_head + 1) % hs->ev_cap;
    hs->ev_n--;
    return 1;
}

void sdp_hs_get_stats(const struct sdp_hs *hs, struct sdp_hs_stats *st)
{
    *st = hs->st;
    st->attempts = 0;
    for (uint32_t i = 0; i < hs->cfg.max_attempts; i++)
        st->attempts += hs->att[i].state != ATT_FREE;
}
