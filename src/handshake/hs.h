/* The in-band handshake protocol (docs/PROTOCOL.md section 8): TLS 1.3
 * (tls.h) carried reliably and in order in HANDSHAKE packets on the data
 * port, with stateless retry tokens and anti-amplification on the server.
 *
 * Like the core it is pure: datagrams and the current time go in,
 * datagrams to send, a deadline and events come out.  One sdp_hs serves a
 * whole socket, both roles; the caller serialises calls (the API holds a
 * lock around it).  Events hand over the per-direction traffic secrets of
 * every completed handshake; the caller installs them in the core.
 */
#ifndef SDP_HANDSHAKE_HS_H
#define SDP_HANDSHAKE_HS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "handshake/tls.h"

#define SDP_HS_DGRAM_MAX 1200 /* fits any path (IPv6 minimum MTU) */

struct sdp_hs;

struct sdp_hs_config {
    struct sdp_tls_ctx *tls;   /* borrowed; outlives the sdp_hs */
    int client;                /* may start handshakes (has a way to authenticate servers) */
    int server;                /* accepts handshakes (has a certificate or a PSK) */
    uint32_t max_attempts;     /* attempts held at once, both roles (256) */
    uint64_t rto_ns;           /* first retransmission timeout (30 ms), doubling ... */
    uint64_t rto_max_ns;       /* ... up to this (1 s) */
    uint64_t timeout_ns;       /* an attempt that has not finished by then fails (5 s) */
    uint64_t linger_ns;        /* a finished attempt stays to re-acknowledge (2 s) */
    uint64_t token_life_ns;    /* retry tokens accepted for this long (10 min) */
    uint32_t replies_per_ms;   /* RETRY / no-session replies budget (64 per ms) */
    int always_retry;          /* server: RETRY every first contact without a token (0) ... */
    uint32_t unvalidated_max;  /* ... else only beyond this many attempts with unproven
                                * addresses at once (32); docs/PROTOCOL.md 8.2 */
};

void sdp_hs_config_default(struct sdp_hs_config *cfg);
/* Errors: SDP_EINVAL, SDP_ENOMEM. */
int sdp_hs_new(const struct sdp_hs_config *cfg, struct sdp_hs **out);
void sdp_hs_free(struct sdp_hs *hs);

/* Start a client handshake with addr (name: what its certificate must
 * carry, NULL for its IP address).  0: started; 1: one is already under
 * way with addr; SDP_EINVAL (no client role), SDP_ELIMIT (table full),
 * SDP_ENOMEM, SDP_ECRYPTO. */
int sdp_hs_connect(struct sdp_hs *hs, const struct sdp_core_addr *addr, const char *name, uint64_t now);
/* 1 while a handshake with addr (either role) is under way, or done but
 * not yet released (sdp_hs_release). */
int sdp_hs_busy(const struct sdp_hs *hs, const struct sdp_core_addr *addr);

/* A HANDSHAKE datagram from addr.  0 when used, else the negative reason
 * it was dropped (counted). */
int sdp_hs_input(struct sdp_hs *hs, const struct sdp_core_addr *from, const uint8_t *pkt, size_t len,
                 uint64_t now);
/* A packet of another type came from an address without a session: may
 * queue a "no session" CLOSE (rate-limited, never larger than len). */
void sdp_hs_no_session(struct sdp_hs *hs, const struct sdp_core_addr *from, size_t len, uint64_t now);

/* Next datagram to send: its length (0 when none), *to its destination.
 * cap must be at least SDP_HS_DGRAM_MAX. */
size_t sdp_hs_output(struct sdp_hs *hs, uint64_t now, uint8_t *buf, size_t cap, struct sdp_core_addr *to);
/* 1 when sdp_hs_output or sdp_hs_next_event has something. */
int sdp_hs_pending(const struct sdp_hs *hs);

uint64_t sdp_hs_next_expiry(const struct sdp_hs *hs);
void sdp_hs_handle_expiry(struct sdp_hs *hs, uint64_t now);

enum sdp_hs_event_type {
    SDP_HS_EV_DONE = 1,       /* keys agreed with addr */
    SDP_HS_EV_FAILED = 2,     /* our attempt with addr failed: error */
    SDP_HS_EV_NO_SESSION = 3, /* addr says it has no session with us (unauthenticated hint) */
    SDP_HS_EV_EARLY = 4,      /* 0-RTT keys for addr (see below), before DONE */
};
/* Lives in locked memory (the caller allocates it with sdp_keymem_alloc). */
struct sdp_hs_event {
    int type;
    int role;                  /* SDP_TLS_CLIENT or SDP_TLS_SERVER */
    int error;
    struct sdp_core_addr addr;
    enum sdp_cipher suite;
    uint8_t tx[SDP_SECRET_LEN];
    uint8_t rx[SDP_SECRET_LEN];
    char identity[128];        /* the peer's authenticated identity */
    /* EARLY, client: at the start of a resumption that offers 0-RTT; suite
     * (the ticket's) and early, the 0-RTT transmit secret.
     * EARLY, server: the client's 0-RTT was accepted; early is the 0-RTT
     * receive secret and suite/tx/rx are the 1-RTT ones (0.5-RTT: install
     * them now, so early requests are answered at once; DONE follows when
     * the client's Finished arrives).
     * DONE: early_state is, for a client, 1 when the server accepted its
     * 0-RTT, -1 when it refused it (resend early requests under tx), 0
     * without 0-RTT; for a server, 1 when an EARLY event already carried
     * these keys. */
    uint8_t early[SDP_SECRET_LEN];
    int early_state;
};
/* 1 and *ev filled, or 0. */
int sdp_hs_next_event(struct sdp_hs *hs, struct sdp_hs_event *ev);
/* The caller has installed the keys of addr's DONE.  Until then
 * sdp_hs_connect joins that attempt instead of starting another session,
 * and a server's DONE withholds its final acknowledgement: a mutual-TLS
 * client waits for it before its first request, which then finds the
 * server's keys installed. */
void sdp_hs_release(struct sdp_hs *hs, const struct sdp_core_addr *addr);
/* 1 while an attempt with addr is under way or finished within the linger
 * time (2 s): a "no session" hint from addr then is stale. */
int sdp_hs_recent(const struct sdp_hs *hs, const struct sdp_core_addr *addr);
/* 1 while a client attempt with addr is under way that has offered 0-RTT
 * (its EARLY event was emitted and DONE or FAILED has not followed). */
int sdp_hs_early(const struct sdp_hs *hs, const struct sdp_core_addr *addr);

struct sdp_hs_stats {
    uint64_t started, accepted, completed, failed, timeouts, retries_sent, tokens_bad, retransmits;
    uint64_t dropped, amp_limited, replies_limited, no_session_sent, superseded;
    uint64_t early; /* EARLY events: 0-RTT offered (client) or accepted (server) */
    uint64_t unvalidated; /* server: first contacts taken without a RETRY */
    uint64_t retries_load; /* ... of retries_sent: those only because unvalidated_max was reached */
    uint64_t retries_flight; /* ... those because our first flight exceeds 3x a ClientHello */
    uint64_t attempts; /* gauge */
};
void sdp_hs_get_stats(const struct sdp_hs *hs, struct sdp_hs_stats *st);

#endif
