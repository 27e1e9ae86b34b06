/* The record layer: seals and opens the records of a message and the
 * tags of control packets, with the sequence numbers, nonces, AADs and
 * usage limits that docs/PROTOCOL.md specifies.
 *
 * One struct sdp_rec_key holds one direction's keys for one generation:
 * a data key for records and a control key for control packets. */
#ifndef SDP_CRYPTO_RECORD_H
#define SDP_CRYPTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/aead.h"
#include "crypto/keysched.h"

#define SDP_REC_AAD_LEN 16

/* RFC 9001 6.6 usage limits, counted per key. */
#define SDP_AESGCM_SEAL_LIMIT (UINT64_C(1) << 23)
#define SDP_AESGCM_FAIL_LIMIT (UINT64_C(1) << 52)
#define SDP_CHACHA_SEAL_LIMIT (UINT64_C(1) << 62)
#define SDP_CHACHA_FAIL_LIMIT (UINT64_C(1) << 36)

struct sdp_rec_key {
    const struct sdp_aead_provider *prov;
    struct sdp_aead_key *data;
    struct sdp_aead_key *ctl;
    uint64_t data_sealed;  /* AEAD invocations under the data key */
    uint64_t ctl_sealed;   /* ... under the control key */
    uint64_t open_failed;  /* failed opens, both keys */
    uint64_t seal_limit;   /* hard: sealing beyond fails with SDP_EKEYLIMIT */
    uint64_t update_after; /* soft: sdp_rec_key_needs_update() turns true */
    uint64_t fail_limit;   /* opening beyond fails with SDP_EKEYLIMIT */
    uint32_t generation;   /* key phase bit = generation & 1 */
    uint8_t aad_flags;     /* bound into every record's AAD (SDP_F_EARLY for 0-RTT keys) */
    uint8_t used;          /* sealed or opened with since the owner last cleared it */
    uint8_t warm;          /* used since the last sdp_rec_key_idle: may hold cipher contexts */
};

/* Set up from derived traffic keys (copied into the provider's locked key
 * objects; tk may be freed afterwards).  update_after 0 picks half the
 * suite's seal limit. Errors: SDP_EINVAL, SDP_ENOMEM, SDP_ECRYPTO. */
int sdp_rec_key_init(struct sdp_rec_key *rk, const struct sdp_aead_provider *p,
                     const struct sdp_traffic_keys *tk, uint32_t generation, uint64_t update_after);
/* Wipe and release; safe on a zeroed or already-cleared struct. */
void sdp_rec_key_clear(struct sdp_rec_key *rk);
/* Release what the keys made for speed (cipher contexts) while they are
 * idle; the next seal or open makes it again. */
void sdp_rec_key_idle(struct sdp_rec_key *rk);
/* True once either key has sealed update_after times (or hit seal_limit). */
int sdp_rec_key_needs_update(const struct sdp_rec_key *rk);

static inline uint64_t sdp_rec_seq(uint64_t msg_id, uint32_t idx)
{
    return (msg_id << 16) | (idx & 0xffffu);
}

/* AAD of a record: version, flags, message id, record index, message
 * length, record length (docs/PROTOCOL.md "Record format"). */
void sdp_rec_aad(uint8_t out[SDP_REC_AAD_LEN], uint64_t msg_id, uint32_t idx, uint32_t msg_len,
                 uint32_t rec_len, uint8_t aad_flags);

/* Seal record idx of a message: pt holds sdp_rec_len(msg_len, rec_size, idx)
 * bytes; ct receives as many, tag 16.  Errors: SDP_EINVAL (layout, id),
 * SDP_EKEYLIMIT, SDP_ECRYPTO. */
int sdp_rec_seal(struct sdp_rec_key *rk, uint64_t msg_id, uint32_t msg_len, uint16_t rec_size,
                 uint32_t idx, uint8_t aad_flags, const uint8_t *pt, uint8_t *ct, uint8_t *tag);
/* Open it; pt may equal ct.  Errors: SDP_EBADMSG (counted toward the
 * integrity limit; pt zeroed), SDP_EINVAL, SDP_EKEYLIMIT, SDP_ECRYPTO. */
int sdp_rec_open(struct sdp_rec_key *rk, uint64_t msg_id, uint32_t msg_len, uint16_t rec_size,
                 uint32_t idx, uint8_t aad_flags, const uint8_t *ct, const uint8_t *tag, uint8_t *pt);

/* Streaming open of one record: begin when its first ciphertext bytes
 * arrive, update with the rest in order (pieces of any length, straight
 * from packets or in place), end with the tag.  The same layout checks,
 * nonce, AAD and integrity-limit counting as sdp_rec_open, which the result
 * equals.  A stream state is made once per provider and reused; a core
 * keeps a small pool of them (struct sdp_rec_streams) and opens records in
 * one call when the pool is empty or the provider cannot stream. */
struct sdp_rec_stream {
    const struct sdp_aead_provider *prov;
    struct sdp_aead_stream *st;
    uint32_t len;  /* ciphertext bytes of the record in progress */
    uint32_t done; /* ... fed so far */
    uint8_t busy;  /* handed out by sdp_rec_stream_get */
};

#define SDP_REC_STREAMS 32
struct sdp_rec_streams {
    struct sdp_rec_stream s[SDP_REC_STREAMS];
    uint64_t exhausted; /* requests refused because every stream was busy */
};

/* A free stream for rk's provider (its state made on first use), or NULL
 * when the provider cannot stream, all are busy, or memory is short. */
struct sdp_rec_stream *sdp_rec_stream_get(struct sdp_rec_streams *pool, const struct sdp_rec_key *rk);
void sdp_rec_stream_put(struct sdp_rec_stream *s); /* NULL is accepted */
void sdp_rec_streams_fini(struct sdp_rec_streams *pool);

/* Errors: SDP_EINVAL (layout, id), SDP_EKEYLIMIT, SDP_ECRYPTO. */
int sdp_rec_stream_begin(struct sdp_rec_key *rk, struct sdp_rec_stream *s, uint64_t msg_id, uint32_t msg_len,
                         uint16_t rec_size, uint32_t idx, uint8_t aad_flags);
/* Errors: SDP_EINVAL (more bytes than the record has), SDP_ECRYPTO. */
int sdp_rec_stream_update(struct sdp_rec_stream *s, const uint8_t *ct, uint32_t len, uint8_t *pt);
/* All bytes fed: check the tag.  pt is the start of the record's plaintext,
 * wiped on failure.  Errors: SDP_EBADMSG (counted toward the integrity
 * limit), SDP_EINVAL (bytes missing), SDP_ECRYPTO. */
int sdp_rec_stream_end(struct sdp_rec_key *rk, struct sdp_rec_stream *s, const uint8_t *tag, uint8_t *pt);

/* Control packets: pkt is the encoded packet of len bytes (at least 32)
 * whose last 16 are the tag and the 8 before it the control sequence number
 * seq; a seq that differs from those 8 bytes is SDP_EINVAL.  Seal counts
 * toward seal_limit on the control key; a failed open returns SDP_EBADMSG
 * and counts toward fail_limit. */
int sdp_ctl_seal(struct sdp_rec_key *rk, uint8_t *pkt, size_t len, uint64_t seq);
int sdp_ctl_open(struct sdp_rec_key *rk, const uint8_t *pkt, size_t len, uint64_t seq);

#endif
