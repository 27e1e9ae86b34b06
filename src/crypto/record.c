/* The record layer (docs/PROTOCOL.md sections 4 and 6). */
#include "crypto/record.h"

#include <string.h>

#include "common/bytes.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#define REC_VERSION SDP_WIRE_VERSION
#define REC_FLAG_EARLY SDP_F_EARLY /* the only flag bound into the AAD */
#define REC_ID_MAX SDP_ID_MAX
#define CTL_TRAILER_LEN SDP_CTL_TRAILER_LEN

static void rec_limits(enum sdp_suite suite, uint64_t *seal_limit, uint64_t *fail_limit)
{
    if (suite == SDP_SUITE_CHACHA20POLY1305) {
        *seal_limit = SDP_CHACHA_SEAL_LIMIT;
        *fail_limit = SDP_CHACHA_FAIL_LIMIT;
    } else {
        /* AES-GCM, and the null suite measured as if it were AES-GCM. */
        *seal_limit = SDP_AESGCM_SEAL_LIMIT;
        *fail_limit = SDP_AESGCM_FAIL_LIMIT;
    }
}

int sdp_rec_key_init(struct sdp_rec_key *rk, const struct sdp_aead_provider *p,
                     const struct sdp_traffic_keys *tk, uint32_t generation, uint64_t update_after)
{
    if (rk == NULL)
        return SDP_EINVAL;
    memset(rk, 0, sizeof(*rk));
    if (p == NULL || tk == NULL || tk->suite != p->suite || tk->key_len != p->key_len ||
        tk->key_len > SDP_AEAD_KEY_MAX)
        return SDP_EINVAL;
    int rc = p->key_new(tk->key, tk->key_len, tk->iv, &rk->data);
    if (rc == 0)
        rc = p->key_new(tk->ctl_key, tk->key_len, tk->ctl_iv, &rk->ctl);
    if (rc != 0) {
        p->key_free(rk->data);
        p->key_free(rk->ctl);
        memset(rk, 0, sizeof(*rk));
        return rc;
    }
    rk->prov = p;
    rk->generation = generation;
    rec_limits(p->suite, &rk->seal_limit, &rk->fail_limit);
    rk->update_after = update_after ? update_after : rk->seal_limit / 2;
    if (rk->update_after > rk->seal_limit)
        rk->update_after = rk->seal_limit;
    return 0;
}

void sdp_rec_key_clear(struct sdp_rec_key *rk)
{
    if (rk == NULL)
        return;
    if (rk->prov != NULL) {
        rk->prov->key_free(rk->data);
        rk->prov->key_free(rk->ctl);
    }
    memset(rk, 0, sizeof(*rk));
}

void sdp_rec_key_idle(struct sdp_rec_key *rk)
{
    if (rk->prov != NULL && rk->prov->key_idle != NULL) {
        rk->prov->key_idle(rk->data);
        rk->prov->key_idle(rk->ctl);
    }
    rk->warm = 0;
}

int sdp_rec_key_needs_update(const struct sdp_rec_key *rk)
{
    uint64_t soft = rk->update_after < rk->seal_limit ? rk->update_after : rk->seal_limit;
    return rk->data_sealed >= soft || rk->ctl_sealed >= soft;
}

void sdp_rec_aad(uint8_t out[SDP_REC_AAD_LEN], uint64_t msg_id, uint32_t idx, uint32_t msg_len,
                 uint32_t rec_len, uint8_t aad_flags)
{
    const uint8_t *end = out + SDP_REC_AAD_LEN;
    uint8_t *p = sdp_put_u8(out, end, REC_VERSION);
    p = sdp_put_u8(p, end, aad_flags);
    p = sdp_put_u48be(p, end, msg_id);
    p = sdp_put_u16be(p, end, (uint16_t)idx);
    p = sdp_put_u32be(p, end, msg_len);
    sdp_put_u16be(p, end, (uint16_t)rec_len);
}

/* The plaintext length of record idx, or -1 if the message layout, the id,
 * the flags or the index are out of the protocol's range. */
static int64_t rec_layout(uint64_t msg_id, uint32_t msg_len, uint16_t rec_size, uint32_t idx,
                          uint8_t aad_flags)
{
    if (msg_id == 0 || msg_id > REC_ID_MAX || (aad_flags & ~REC_FLAG_EARLY) != 0 ||
        sdp_msg_layout_ok(msg_len, rec_size) != 0 || idx >= sdp_msg_nrec(msg_len, rec_size))
        return -1;
    return sdp_rec_len(msg_len, rec_size, idx);
}

int sdp_rec_seal(struct sdp_rec_key *rk, uint64_t msg_id, uint32_t msg_len, uint16_t rec_size,
                 uint32_t idx, uint8_t aad_flags, const uint8_t *pt, uint8_t *ct, uint8_t *tag)
{
    uint8_t aad[SDP_REC_AAD_LEN];

    if (rk == NULL || rk->prov == NULL || tag == NULL)
        return SDP_EINVAL;
    aad_flags |= rk->aad_flags;
    int64_t len = rec_layout(msg_id, msg_len, rec_size, idx, aad_flags);
    if (len < 0 || (len > 0 && (pt == NULL || ct == NULL)))
        return SDP_EINVAL;
    if (rk->data_sealed >= rk->seal_limit)
        return SDP_EKEYLIMIT;
    /* Counted before sealing: an attempt that fails half-way may still have
     * used the nonce. */
    rk->data_sealed++;
    sdp_rec_aad(aad, msg_id, idx, msg_len, (uint32_t)len, aad_flags);
    rk->used = rk->warm = 1;
    int rc = rk->prov->seal(rk->data, sdp_rec_seq(msg_id, idx), aad, sizeof(aad), pt, (size_t)len,
                            ct, tag);
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

int sdp_rec_open(struct sdp_rec_key *rk, uint64_t msg_id, uint32_t msg_len, uint16_t rec_size,
                 uint32_t idx, uint8_t aad_flags, const uint8_t *ct, const uint8_t *tag, uint8_t *pt)
{
    uint8_t aad[SDP_REC_AAD_LEN];

    if (rk == NULL || rk->prov == NULL || tag == NULL)
        return SDP_EINVAL;
    aad_flags |= rk->aad_flags;
    int64_t len = rec_layout(msg_id, msg_len, rec_size, idx, aad_flags);
    if (len < 0 || (len > 0 && (pt == NULL || ct == NULL)))
        return SDP_EINVAL;
    if (rk->open_failed >= rk->fail_limit)
        return SDP_EKEYLIMIT;
    sdp_rec_aad(aad, msg_id, idx, msg_len, (uint32_t)len, aad_flags);
    rk->used = rk->warm = 1;
    int rc = rk->prov->open(rk->data, sdp_rec_seq(msg_id, idx), aad, sizeof(aad), ct, (size_t)len,
                            tag, pt);
    if (rc == SDP_EBADMSG) {
        rk->open_failed++;
        return SDP_EBADMSG;
    }
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

struct sdp_rec_stream *sdp_rec_stream_get(struct sdp_rec_streams *pool, const struct sdp_rec_key *rk)
{
    const struct sdp_aead_provider *p = rk ? rk->prov : NULL;
    if (p == NULL || p->stream_new == NULL)
        return NULL;
    /* Prefer a state of this provider, then an empty slot, then any. */
    struct sdp_rec_stream *empty = NULL, *other = NULL;
    for (unsigned i = 0; i < SDP_REC_STREAMS; i++) {
        struct sdp_rec_stream *s = &pool->s[i];
        if (s->busy)
            continue;
        if (s->st != NULL && s->prov == p) {
            s->busy = 1;
            return s;
        }
        if (s->st == NULL && !empty)
            empty = s;
        else if (s->st != NULL && !other)
            other = s;
    }
    struct sdp_rec_stream *s = empty ? empty : other;
    if (s == NULL) {
        pool->exhausted++;
        return NULL;
    }
    if (s->st != NULL) {
        s->prov->stream_free(s->st);
        s->st = NULL;
    }
    if (p->stream_new(&s->st) != 0) {
        s->st = NULL;
        return NULL;
    }
    s->prov = p;
    s->busy = 1;
    return s;
}

void sdp_rec_stream_put(struct sdp_rec_stream *s)
{
    if (s != NULL) {
        s->busy = 0;
        s->len = s->done = 0;
    }
}

void sdp_rec_streams_fini(struct sdp_rec_streams *pool)
{
    for (unsigned i = 0; i < SDP_REC_STREAMS; i++)
        if (pool->s[i].st != NULL)
            pool->s[i].prov->stream_free(pool->s[i].st);
    memset(pool, 0, sizeof(*pool));
}

int sdp_rec_stream_begin(struct sdp_rec_key *rk, struct sdp_rec_stream *s, uint64_t msg_id, uint32_t msg_len,
                         uint16_t rec_size, uint32_t idx, uint8_t aad_flags)
{
    uint8_t aad[SDP_REC_AAD_LEN];

    if (rk == NULL || rk->prov == NULL || s == NULL || s->st == NULL || s->prov != rk->prov)
        return SDP_EINVAL;
    aad_flags |= rk->aad_flags; /* 0-RTT keys bind EARLY, as in sdp_rec_open */
    int64_t len = rec_layout(msg_id, msg_len, rec_size, idx, aad_flags);
    if (len < 0)
        return SDP_EINVAL;
    if (rk->open_failed >= rk->fail_limit)
        return SDP_EKEYLIMIT;
    sdp_rec_aad(aad, msg_id, idx, msg_len, (uint32_t)len, aad_flags);
    s->len = (uint32_t)len;
    s->done = 0;
    int rc = rk->prov->open_init(s->st, rk->data, sdp_rec_seq(msg_id, idx), aad, sizeof(aad));
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

int sdp_rec_stream_update(struct sdp_rec_stream *s, const uint8_t *ct, uint32_t len, uint8_t *pt)
{
    if (len > s->len - s->done)
        return SDP_EINVAL;
    int rc = s->prov->open_update(s->st, ct, len, pt);
    s->done += len;
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

int sdp_rec_stream_end(struct sdp_rec_key *rk, struct sdp_rec_stream *s, const uint8_t *tag, uint8_t *pt)
{
    if (rk == NULL || s == NULL || tag == NULL || s->done != s->len)
        return SDP_EINVAL;
    int rc = s->prov->open_final(s->st, tag);
    if (rc != 0 && s->len)
        memset(pt, 0, s->len); /* never leave unauthenticated plaintext behind */
    if (rc == SDP_EBADMSG) {
        rk->open_failed++;
        return SDP_EBADMSG;
    }
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

/* The tag covers pkt[0 .. len-16), which ends with the sequence number; the
 * caller's seq must be the one in the packet, or the nonce would not be the
 * one the peer computes from the wire. */
static int ctl_check(const struct sdp_rec_key *rk, const uint8_t *pkt, size_t len, uint64_t seq)
{
    if (rk == NULL || rk->prov == NULL || pkt == NULL || len < CTL_TRAILER_LEN + 8)
        return SDP_EINVAL;
    uint64_t in_pkt = 0;
    sdp_get_u64be(pkt + len - CTL_TRAILER_LEN, pkt + len, &in_pkt);
    if (in_pkt != seq)
        return SDP_EINVAL;
    return 0;
}

int sdp_ctl_seal(struct sdp_rec_key *rk, uint8_t *pkt, size_t len, uint64_t seq)
{
    int rc = ctl_check(rk, pkt, len, seq);
    if (rc != 0)
        return rc;
    if (rk->ctl_sealed >= rk->seal_limit)
        return SDP_EKEYLIMIT;
    rk->ctl_sealed++;
    size_t aad_len = len - SDP_AEAD_TAG_LEN;
    rk->used = rk->warm = 1;
    rc = rk->prov->seal(rk->ctl, seq, pkt, aad_len, NULL, 0, NULL, pkt + aad_len);
    return rc == 0 ? 0 : SDP_ECRYPTO;
}

int sdp_ctl_open(struct sdp_rec_key *rk, const uint8_t *pkt, size_t len, uint64_t seq)
{
    int rc = ctl_check(rk, pkt, len, seq);
    if (rc != 0)
        return rc;
    if (rk->open_failed >= rk->fail_limit)
        return SDP_EKEYLIMIT;
    size_t aad_len = len - SDP_AEAD_TAG_LEN;
    rk->used = rk->warm = 1;
    rc = rk->prov->open(rk->ctl, seq, pkt, aad_len, NULL, 0, pkt + aad_len, NULL);
    if (rc == SDP_EBADMSG) {
        rk->open_failed++;
        return SDP_EBADMSG;
    }
    return rc == 0 ? 0 : SDP_ECRYPTO;
}
