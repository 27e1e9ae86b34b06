/* The transport core: Homa-style RPCs over AES-GCM records, as a pure state
 * machine.  Packets and the current time go in; packets to send (one GSO
 * segment per call), the next timer deadline and events come out.  No
 * sockets, clocks or threads: time is an argument of every call, and all
 * memory comes from tables sized at sdp_core_new plus message buffers charged
 * against the configured byte budget.  docs/CORE.md describes the design,
 * docs/PROTOCOL.md (sections 9 on) the state machines, timers and defaults.
 *
 * Result convention: 0 (or a count where stated) on success, a negative
 * SDP_E* code (include/sdp/sdp.h) on failure.
 */
#ifndef SDP_CORE_CORE_H
#define SDP_CORE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"
#include "crypto/keysched.h"

struct sdp_core;

/* Peer address: opaque bytes (e.g. a sockaddr_storage copy), compared with
 * memcmp over len bytes. */
#define SDP_CORE_ADDR_MAX 128
struct sdp_core_addr {
    uint32_t len;
    uint8_t bytes[SDP_CORE_ADDR_MAX];
};

/* Allocator hooks: every byte the core holds goes through these. */
struct sdp_core_allocator {
    void *(*alloc)(void *ctx, size_t len); /* NULL on failure */
    void (*free)(void *ctx, void *p, size_t len);
    void *ctx;
    /* Optional pair for the tables (RPC slots, peers): len zeroed bytes and
     * their release.  Tables are sized for the worst case and mostly never
     * touched: fresh zero pages keep opening a socket cheap. */
    void *(*zalloc)(void *ctx, size_t len);
    void (*zfree)(void *ctx, void *p, size_t len);
};

struct sdp_core_config {
    uint8_t engine_index;        /* top 8 bits of every ctl_seq we send */
    uint32_t max_peers;          /* peer table size (64) */
    uint32_t max_rpcs;           /* RPC table size, both roles (4096) */
    uint32_t max_rpcs_per_peer;  /* (1024) */
    uint64_t mem_limit;          /* message buffers, all peers, incl. undelivered events (1 GiB) */
    uint64_t peer_mem_limit;     /* message buffers of one peer (256 MiB) */
    uint32_t max_msg_len;        /* plaintext bytes per message (64 MiB) */
    uint16_t rec_size;           /* plaintext bytes per record we send (16384) */
    uint32_t unsched_bytes;      /* wire bytes sent before any grant (60000) */
    uint32_t grant_window;       /* granted-not-received bytes per message (= unsched_bytes) */
    uint32_t grant_increment;    /* smallest grant step worth a packet (10000) */
    uint32_t max_incoming;       /* bound on granted-not-received bytes (400000) */
    uint32_t overcommit;         /* messages granted at once (8) */
    uint32_t fifo_grant_pct;     /* share of grants for the oldest message (5) */
    int grant_fifo;              /* 1: grant in arrival order instead of SRPT (for tests) */
    uint32_t unauth_per_peer;    /* not-yet-authenticated incoming messages per peer (16) */
    uint32_t unauth_total;       /* ... in all (256) */
    uint64_t unauth_bytes_per_peer; /* bytes they may buffer, per peer (1 MiB) */
    uint64_t unauth_bytes_total;    /* ... in all (8 MiB) */
    uint64_t tick_ns;            /* timer granularity (1 ms) */
    uint32_t resend_ticks;       /* silence before RESEND / NEED_ACK (5) */
    uint32_t timeout_ticks;      /* silence before an RPC fails (100) ... */
    uint32_t max_probes;         /* ... once this many probes went unanswered (5) */
    uint32_t probe_budget;       /* RESEND/NEED_ACK probes per peer per tick (16) */
    uint32_t ack_delay_ticks;    /* a client ACKs a finished response within this (10) ... */
    uint32_t ack_wait_ticks;     /* ... a server asks (NEED_ACK) after this much silence (30) */
    uint32_t gso_max;            /* bytes per output segment (65000) */
    int replay_window_off;       /* 1 disables the request-id replay window */
    uint32_t replay_window;      /* request ids it covers per peer (4032; raised to max_rpcs_per_peer) */
    uint32_t cutoffs[4];         /* default unscheduled cutoffs, prio 7..4 (Homa's) */
    uint32_t ctlq_cap;           /* queued control packets (4096, at least 2 per RPC) */
    uint64_t key_update_after;   /* seals per transmit key before an automatic key update (0:
                                    half the AEAD limit, 2^22 for AES-GCM); engines sending to
                                    the same peer each take their share (PROTOCOL.md 7) */
    /* Provider family for peer keys ("kshim" picks kshim-aes128gcm /
     * kshim-aes256gcm); NULL: the suite's default provider. */
    const char *aead_family;
    /* 1: keep outgoing messages as plaintext and let the layer below seal
     * them (the kshim module on the send path): DATA segments leave
     * sdp_core_output unsealed, cover whole records, and their descriptor
     * names the records (docs/KSHIM.md).  Control packets stay sealed. */
    int plain_records;
    struct sdp_core_allocator allocator; /* malloc/free when alloc is NULL */
};

void sdp_core_config_default(struct sdp_core_config *cfg);

/* Errors: SDP_EINVAL (inconsistent config), SDP_ENOMEM. */
int sdp_core_new(const struct sdp_core_config *cfg, struct sdp_core **out);
/* Frees everything, including undelivered events' buffers; NULL is fine. */
void sdp_core_free(struct sdp_core *core);

/* Install a peer and its keys (generation 0), kTLS-style.  mtu is the path
 * MTU (576..65535) and ip_hdr_len the IP header length (20 or 40).
 * Errors: SDP_EINVAL, SDP_ELIMIT (peer table full), SDP_EUNAVAIL /
 * SDP_EINSECURE (suite), SDP_ECRYPTO, SDP_ENOMEM. */
struct sdp_core_peer_cfg {
    struct sdp_core_addr addr;
    enum sdp_suite suite;
    uint8_t tx_secret[SDP_SECRET_LEN];
    uint8_t rx_secret[SDP_SECRET_LEN];
    uint32_t mtu;
    uint32_t ip_hdr_len;
    unsigned aead_flags;         /* SDP_AEAD_ALLOW_INSECURE for the null suite */
    /* The session's keys are not agreed yet (a 0-RTT client, or one whose
     * session was closed): the secrets are placeholders (random, so that a
     * bug can never seal under a known key).  Until sdp_core_peer_install
     * the peer sends only 0-RTT requests, sends no control packets, and
     * every packet from it is refused with SDP_ENOKEY (the caller may keep
     * it for after the install). */
    uint8_t keys_pending;
};
int sdp_core_peer_add(struct sdp_core *core, const struct sdp_core_peer_cfg *pc, uint32_t *peer);

/* Key lifecycle (docs/PROTOCOL.md section 7).
 *
 * Key update: our transmit keys advance one generation (the next secret is
 * HKDF-Expand-Label(secret, "sdp ku")) here, and by themselves once a key
 * has sealed key_update_after times.  Messages already sealed keep their
 * generation.  The peer's generations are followed as they authenticate.
 * Errors: SDP_EINVAL (peer), SDP_ENOMEM, SDP_ECRYPTO (the old key stays). */
int sdp_core_key_update(struct sdp_core *core, uint32_t peer);
/* Current transmit and receive generations of a peer.  SDP_EINVAL (peer). */
int sdp_core_key_generation(const struct sdp_core *core, uint32_t peer, uint32_t *tx, uint32_t *rx);

/* A new session with the same peer (it handshook again, e.g. after a
 * restart): fresh generation-0 keys from pc (whose address may differ from
 * the old one, but not be another peer's); our client RPCs to it fail
 * with SDP_EUNKNOWN (FAILED events), its server RPCs and queued control
 * packets are dropped, its replay window, client ids, 0-RTT keys and byte
 * accounting start over.  Events already queued keep their old session
 * number (struct sdp_core_event), so a caller can tell stale ones.
 * Errors as sdp_core_peer_add (the old session is gone even then: the
 * peer is removed). */
int sdp_core_peer_replace(struct sdp_core *core, uint32_t peer, const struct sdp_core_peer_cfg *pc);
/* The same, and the slot is freed: its index may be handed out again by
 * sdp_core_peer_add (with a new session number).  SDP_EINVAL (peer). */
int sdp_core_peer_remove(struct sdp_core *core, uint32_t peer);
/* The peer's session number: changes at every replace and reuse of the
 * slot.  0 for a slot not in use. */
uint32_t sdp_core_peer_session(const struct sdp_core *core, uint32_t peer);

/* 0-RTT keys of the peer's session, from an early traffic secret.  A
 * client installs SDP_CORE_KEY_TX and sends requests with
 * SDP_CORE_SEND_EARLY (core_ext.h): sealed under it, EARLY in header and
 * record AAD.  A server installs SDP_CORE_KEY_RX: it opens early data and
 * delivers it with event.early = 1 (the application may refuse requests
 * that are not idempotent); responses always go under the normal keys.
 * suite must be the peer's.  Errors: SDP_EINVAL (peer, suite, dir, or an
 * RX key replaced while early messages are arriving), SDP_ENOMEM,
 * SDP_ECRYPTO. */
#define SDP_CORE_KEY_TX 1
#define SDP_CORE_KEY_RX 2
int sdp_core_peer_set_early(struct sdp_core *core, uint32_t peer, enum sdp_suite suite,
                            const uint8_t secret[SDP_SECRET_LEN], int dir);
/* Forget the 0-RTT keys (the handshake completed or refused 0-RTT): early
 * data is refused from now on (dropped, counted as SDP_DROP_EARLY); early
 * messages already authenticated finish under the key, then it is wiped.
 * Early requests already sent keep their sealed bytes.  SDP_EINVAL (peer). */
int sdp_core_peer_drop_early(struct sdp_core *core, uint32_t peer);
/* The keys of a peer added with keys_pending are agreed: generation 0
 * from pc's secrets (pc's suite must be the peer's), keeping its RPCs, its
 * 0-RTT keys and everything else of the session.  Errors: SDP_EINVAL (peer,
 * not pending, suite), SDP_ENOMEM, SDP_ECRYPTO (the peer stays pending). */
int sdp_core_peer_install(struct sdp_core *core, uint32_t peer, const struct sdp_core_peer_cfg *pc);
/* Forget our 0-RTT request id to peer without an event (the server refused
 * 0-RTT: the caller sends it again under the 1-RTT keys, same id, which no
 * key has sealed before).  SDP_EUNKNOWN when there is no such early
 * request (it finished or failed meanwhile: its event was or will be
 * delivered), SDP_EINVAL (peer). */
int sdp_core_forget_request(struct sdp_core *core, uint32_t peer, uint64_t id);

/* Start an RPC: copies and seals data now (the core never re-seals).
 * *rpc_id receives the client id (even).  cookie comes back in the
 * RESPONSE or FAILED event.  Errors: SDP_EINVAL (peer), SDP_ETOOBIG,
 * SDP_ELIMIT (RPC limits, or the peer's 48-bit id space is used up: re-key),
 * SDP_ENOMEM (byte budget), SDP_EKEYLIMIT. */
int sdp_core_send_request(struct sdp_core *core, uint32_t peer, const void *data, size_t len,
                          uint64_t cookie, uint64_t now, uint64_t *rpc_id);
/* Answer the request delivered with rpc_id (the server id from the event).
 * Errors: SDP_EUNKNOWN (no such RPC awaiting a response), SDP_ETOOBIG,
 * SDP_ENOMEM, SDP_EKEYLIMIT. */
int sdp_core_send_response(struct sdp_core *core, uint32_t peer, uint64_t rpc_id, const void *data,
                           size_t len, uint64_t now);

/* Feed one received datagram.  Returns 0 when it was used, or the negative
 * reason it was dropped (SDP_EPROTO, SDP_EBADMSG, SDP_EREPLAY, SDP_ELIMIT,
 * SDP_ENOMEM, SDP_EUNKNOWN ...); every drop is counted by reason.
 * SDP_ENOKEY: no keys open it yet (no such peer, a pending session, the
 * first packet of a new message that opens under none of the peer's keys
 * or whose id the session has seen, or 0-RTT data without an open early
 * key); nothing of it was kept, and
 * the caller may feed it again once a handshake with the peer is through
 * (the peer's new session may be what sealed it). */
int sdp_core_input(struct sdp_core *core, const struct sdp_core_addr *from, const uint8_t *pkt,
                   size_t len, uint64_t now);

/* One GSO segment: back-to-back datagrams of desc->seg_size bytes for one
 * peer (the last may be shorter).  Returns the bytes written, 0 if nothing
 * is ready to send.  cap should be at least 65536. */
struct sdp_core_seg_desc {
    uint32_t peer;
    const struct sdp_core_addr *addr;
    uint32_t seg_size;
    uint32_t npkts;
    uint8_t priority; /* 0-7, 7 highest: map to DSCP */
    /* plain_records mode, DATA segments (plain 1): the records to seal,
     * every datagram being SDP_DATA_HDR_LEN clear bytes then a slice of the
     * message's wire bytes starting at wire_off, under seal_key with
     * aad_flags.  seal_key NULL (its generation is gone): never send it. */
    uint8_t plain, aad_flags;
    const struct sdp_aead_key *seal_key;
    uint64_t msg_id;
    uint32_t msg_len, wire_off;
    uint16_t rec_size;
    /* sdp_core_output_gather only, else NULL: the DATA payloads (see there). */
    const uint8_t *payload;
};
int sdp_core_output(struct sdp_core *core, uint64_t now, uint8_t *buf, size_t cap,
                    struct sdp_core_seg_desc *desc);
/* The same without copying a big segment's payloads: a DATA segment of at
 * least gather_min payload bytes comes as its npkts headers back to back in
 * buf (SDP_DATA_HDR_LEN each) and desc->payload, the packets' payloads one
 * after the other in the message's sealed wire bytes (each seg_size -
 * SDP_DATA_HDR_LEN bytes, the last one the rest).  desc->payload stays
 * valid until the next call into the core, which may free those bytes:
 * send them before.  Everything else comes whole in buf, payload NULL.
 * Returns the segment's bytes on the wire, as sdp_core_output does. */
int sdp_core_output_gather(struct sdp_core *core, uint64_t now, uint8_t *buf, size_t cap, size_t gather_min,
                           struct sdp_core_seg_desc *desc);
/* Copy a gathered segment of n bytes into buf as whole packets, as
 * sdp_core_output would have written it (buf must hold n bytes). */
void sdp_core_seg_flatten(uint8_t *buf, const struct sdp_core_seg_desc *desc, size_t n);

/* Timer: the absolute time of the next deadline (UINT64_MAX for none),
 * and the call to make once it has passed. */
uint64_t sdp_core_next_expiry(const struct sdp_core *core);
void sdp_core_handle_expiry(struct sdp_core *core, uint64_t now);
/* The driver holds datagrams the core has not seen yet (its socket's
 * receive queue is not empty): tell the next expiry pass, which then
 * defers probes (docs/CORE.md "Silence behind a backlog").  Set before each
 * sdp_core_handle_expiry; a driver that cannot tell passes 0. */
void sdp_core_set_backlog(struct sdp_core *core, int backlog);

enum sdp_core_event_type {
    SDP_CORE_EV_REQUEST = 1,  /* a request arrived: answer with sdp_core_send_response */
    SDP_CORE_EV_RESPONSE = 2, /* the response to one of our requests */
    SDP_CORE_EV_FAILED = 3,   /* one of our requests failed: error says why */
};
struct sdp_core_event {
    int type;
    uint32_t peer;
    uint64_t rpc_id;  /* server id for REQUEST, client id otherwise */
    uint64_t cookie;  /* RESPONSE and FAILED */
    uint8_t *data;    /* REQUEST and RESPONSE: plaintext, owned by the app */
    size_t len;
    int error;        /* FAILED: SDP_ETIMEDOUT (peer silent), SDP_ENOMEM (budget),
                         SDP_EUNKNOWN (the peer's session was replaced or removed) */
    uint32_t session; /* the peer's session number when the event was queued */
    uint8_t early;    /* REQUEST: it came under 0-RTT keys (it may be a replay of a
                         flight another server also got: refuse what is not idempotent) */
};
/* 1 and *ev filled, or 0 when there is none.  Release ev->data (also for
 * 0-byte messages) with sdp_core_release. */
int sdp_core_next_event(struct sdp_core *core, struct sdp_core_event *ev);
void sdp_core_release(struct sdp_core *core, uint8_t *data);

enum sdp_drop_reason {
    SDP_DROP_NO_PEER,      /* source address is not an installed peer */
    SDP_DROP_DECODE,       /* the wire decoder refused it */
    SDP_DROP_KEY_PHASE,    /* other key phase that opened under no generation we may use */
    SDP_DROP_UNSUPPORTED,  /* HANDSHAKE: not handled by the core */
    SDP_DROP_CTL_AUTH,     /* control tag did not verify */
    SDP_DROP_CTL_REPLAY,   /* ctl_seq not above the RPC's last */
    SDP_DROP_REPLAY,       /* request id seen or below the window */
    SDP_DROP_NO_RPC,       /* response/control for an RPC we do not have */
    SDP_DROP_STALE,        /* data for a message already complete */
    SDP_DROP_MISMATCH,     /* msg_len/rec_size/unsched differ from earlier packets */
    SDP_DROP_TOO_BIG,      /* message above max_msg_len */
    SDP_DROP_LIMIT_RPC,    /* RPC table or per-peer RPC limit */
    SDP_DROP_LIMIT_UNAUTH, /* unauthenticated-message limits */
    SDP_DROP_LIMIT_MEM,    /* byte budget */
    SDP_DROP_REC_AUTH,     /* a record failed to open (its bytes discarded) */
    SDP_DROP_GAPS,         /* too fragmented: bytes dropped, asked for later */
    SDP_DROP_CTLQ_FULL,    /* our control queue overflowed (outgoing) */
    SDP_DROP_EARLY,        /* EARLY data without an open 0-RTT receive key */
    SDP_DROP__COUNT
};
const char *sdp_core_drop_name(int reason);

struct sdp_core_stats {
    uint64_t pkts_in, bytes_in, pkts_out, bytes_out, segs_out;
    uint64_t in_by_type[16], out_by_type[16];
    uint64_t data_bytes_out, rtx_pkts, rtx_bytes;
    uint64_t grants_sent, granted_bytes, resends_sent, resends_recv;
    uint64_t probes_deferred; /* due probes held back because input was still queued */
    uint64_t busy_sent, unknown_sent, need_ack_sent, acks_sent;
    uint64_t records_sealed, records_opened;
    /* Record bytes decrypted straight from packets into the delivered
     * buffer, and those copied first and decrypted in place (out of order,
     * or no stream free); rx_streams_busy: records that found none free. */
    uint64_t rx_bytes_direct, rx_bytes_inplace, rx_streams_busy;
    uint64_t requests_sent, responses_sent, requests_delivered, responses_delivered;
    uint64_t rpcs_failed, client_timeouts, server_timeouts, restarts, server_acked;
    uint64_t key_updates;     /* our transmit generations advanced */
    uint64_t rx_key_updates;  /* peers' generations adopted on authentication */
    uint64_t rx_keys_wiped;   /* older receive generations wiped once drained */
    uint64_t early_delivered; /* requests delivered under 0-RTT keys */
    uint64_t peers_replaced, peers_removed;
    uint64_t drops[SDP_DROP__COUNT];
    uint64_t drops_total;
    /* gauges */
    uint64_t mem_used, mem_peak, table_bytes;
    uint64_t rpcs_active, peers, unauth_msgs, unauth_bytes;
    uint64_t incoming, incoming_peak, events_pending, ctlq_len;
    uint64_t rx_old_keys;     /* receive generations before the previous one still held
                                 (messages begun under them unfinished), all peers */
    uint64_t tx_gen_max, rx_gen_max; /* highest generation of any peer */
};
void sdp_core_get_stats(const struct sdp_core *core, struct sdp_core_stats *st);

#endif
