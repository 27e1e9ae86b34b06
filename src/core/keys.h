/* A peer's key lifecycle (docs/PROTOCOL.md section 7): the transmit
 * generation and its update, the receive generations (the current one,
 * older ones kept while messages begun under them are unfinished, the next
 * one derived on demand and adopted only once something authenticates
 * under it) and the 0-RTT keys.  Traffic secrets live in locked memory and
 * every key and secret is wiped when its generation is left behind. */
#ifndef SDP_CORE_KEYS_H
#define SDP_CORE_KEYS_H

#include <stdint.h>

#include "core/core.h"
#include "crypto/record.h"

/* Receive generations held at once, in slots gen % SDP_RX_GENS: the
 * current one, up to two older ones and the next. */
#define SDP_RX_GENS 4u

struct sdp_peer_secrets {
    uint8_t tx[SDP_SECRET_LEN];               /* the transmit generation's */
    uint8_t rx[SDP_RX_GENS][SDP_SECRET_LEN];  /* each receive slot's */
};

/* Keys few peers hold, kept apart (in key memory, made when first needed
 * and freed when empty) so that a peer's state stays small: the previous
 * transmit generation (plain_records mode only: keep_tx_prev), kept while
 * our messages under it are unfinished, since the sealer seals their
 * retransmissions again; and the 0-RTT keys, installed when .prov != NULL. */
struct sdp_peer_keys_rare {
    struct sdp_rec_key tx_prev;
    struct sdp_rec_key early_tx, early_rx;
};

struct sdp_peer_keys {
    const struct sdp_aead_provider *prov;
    struct sdp_peer_secrets *sec;             /* locked memory */
    struct sdp_peer_keys_rare *rare;          /* NULL while it would be empty */
    uint64_t update_after;                    /* records per transmit key (0: half the limit) */
    uint64_t used_at;                         /* when a key was last seen used (sdp_keys_idle_tick) */
    struct sdp_rec_key tx;
    struct sdp_rec_key rx[SDP_RX_GENS];       /* installed when .prov != NULL */
    enum sdp_suite suite;
    uint32_t tx_live[SDP_RX_GENS];            /* our unfinished messages per generation (gen % 4) */
    uint32_t tx_confirmed;                    /* 1 + highest generation the peer authenticated (0: none) */
    uint32_t tx_want;                         /* generation asked for by sdp_core_key_update */
    uint32_t rx_live[SDP_RX_GENS];            /* messages authenticated under it, unfinished */
    uint32_t rx_cur;                          /* highest generation authenticated */
    uint32_t early_live;                      /* early messages authenticated, unfinished */
    uint8_t rx_idle[SDP_RX_GENS];             /* ticks an older generation has had none */
    uint8_t keep_tx_prev;
    uint8_t early_open;                       /* early_rx accepts new messages */
};

/* The rarely held keys, NULL when not installed. */
static inline struct sdp_rec_key *sdp_keys_tx_prev(const struct sdp_peer_keys *k)
{
    return k->rare && k->rare->tx_prev.prov ? &k->rare->tx_prev : NULL;
}
static inline struct sdp_rec_key *sdp_keys_early_tx(const struct sdp_peer_keys *k)
{
    return k->rare && k->rare->early_tx.prov ? &k->rare->early_tx : NULL;
}
static inline struct sdp_rec_key *sdp_keys_early_rx(const struct sdp_peer_keys *k)
{
    return k->rare && k->rare->early_rx.prov ? &k->rare->early_rx : NULL;
}

/* Generation 0 from the installed secrets, with prov (NULL: the suite's
 * default provider).  Errors: SDP_ENOMEM,
 * SDP_EUNAVAIL / SDP_EINSECURE (suite), SDP_ECRYPTO. */
int sdp_keys_init(struct sdp_peer_keys *k, const struct sdp_core_peer_cfg *pc, const struct sdp_aead_provider *prov,
                  uint64_t update_after);
/* Wipe every key and secret; safe on a zeroed struct. */
void sdp_keys_fini(struct sdp_peer_keys *k);
/* Generation 0 again from pc's secrets (a pending session's agreed keys),
 * keeping the 0-RTT keys and their counts.  Errors as sdp_keys_init; on an
 * error the old keys stay. */
int sdp_keys_install0(struct sdp_peer_keys *k, const struct sdp_core_peer_cfg *pc, uint64_t update_after);

/* Transmit: advance one generation now (the old key is wiped at once: a
 * message is sealed whole when it is sent, so nothing seals under it
 * again).  Errors: SDP_ECRYPTO, SDP_ENOMEM (the old key stays). */
int sdp_keys_tx_update(struct sdp_peer_keys *k, struct sdp_core_stats *st);
/* Advance if it is wanted (update_after seals, or asked for) and allowed:
 * the peer authenticated something under the current generation, and none
 * of our messages under the previous one is unfinished (so a message the
 * peer has not seen yet is at most one generation older than the peer's
 * current one, and it needs at most four receive slots, PROTOCOL.md 7.1).
 * A key that could not seal `more` records more advances regardless.
 * 0 or an error as above. */
int sdp_keys_tx_maybe_update(struct sdp_peer_keys *k, uint64_t more, struct sdp_core_stats *st);
/* Our message sealed under gen begins / finishes; the peer authenticated
 * something we sealed under gen. */
void sdp_keys_tx_begin(struct sdp_peer_keys *k, uint32_t gen);
void sdp_keys_tx_end(struct sdp_peer_keys *k, uint32_t gen);
void sdp_keys_tx_confirm(struct sdp_peer_keys *k, uint32_t gen);
static inline uint8_t sdp_keys_tx_phase(const struct sdp_peer_keys *k)
{
    return (k->tx.generation & 1u) ? 0x01u /* SDP_F_KEY_PHASE */ : 0;
}

/* Receive: the generations a packet with KEY_PHASE = phase may be under,
 * the most likely first.  new_msg: a message not yet authenticated, which
 * only the previous, current or next generation can have sealed.  Returns
 * how many (0 to 3). */
unsigned sdp_keys_rx_candidates(const struct sdp_peer_keys *k, unsigned phase, int new_msg, uint32_t gens[3]);
/* The key of a candidate generation, deriving the next one (into its free
 * slot, nothing else changes) on first use; NULL when it cannot be had. */
struct sdp_rec_key *sdp_keys_rx_key(struct sdp_peer_keys *k, uint32_t gen, struct sdp_core_stats *st);
/* Something authenticated under gen: the next generation becomes the
 * current one.  Returns 1 when the receive generation advanced. */
int sdp_keys_rx_authed(struct sdp_peer_keys *k, uint32_t gen, struct sdp_core_stats *st);
/* A message authenticated under gen begins / finishes. */
void sdp_keys_rx_begin(struct sdp_peer_keys *k, uint32_t gen);
void sdp_keys_rx_end(struct sdp_peer_keys *k, uint32_t gen);
/* Per tick: wipe generations older than the previous one that have had
 * nothing live for two ticks (the grace lets control packets the network
 * reordered behind a newer generation's still open).  Returns the
 * generations older than the previous one still held. */
unsigned sdp_keys_rx_tick(struct sdp_peer_keys *k, struct sdp_core_stats *st);
/* Per tick: a peer none of whose keys sealed or opened anything for
 * idle_ns releases its keys' cipher contexts (sdp_rec_key_idle): an idle
 * peer holds its key bytes only.  Returns 1 while some key may still hold
 * contexts (the caller's timer must come back), else 0. */
int sdp_keys_idle_tick(struct sdp_peer_keys *k, uint64_t now, uint64_t idle_ns);
/* Receive generations older than the previous one held now. */
unsigned sdp_keys_rx_old(const struct sdp_peer_keys *k);

/* 0-RTT.  dir: SDP_CORE_KEY_TX or SDP_CORE_KEY_RX. */
int sdp_keys_set_early(struct sdp_peer_keys *k, enum sdp_suite suite, const uint8_t secret[SDP_SECRET_LEN],
                       int dir);
/* Wipe the transmit key; refuse new early messages, wiping the receive key
 * once the early messages already begun have finished. */
void sdp_keys_drop_early(struct sdp_peer_keys *k);
void sdp_keys_early_end(struct sdp_peer_keys *k);

#endif
