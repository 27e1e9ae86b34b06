/* The SDP wire format (docs/PROTOCOL.md sections 2-4).
 *
 * Every decoder follows the same order so that a packet with one fault
 * always gets the same code: the exact length for the type (given its
 * count fields), then version, type, flags, reserved fields, ids, and the
 * type's ranges.  Nothing here allocates or keeps state.
 */
#include "wire/wire.h"

#include <string.h>

#include "common/bytes.h"

#define GRANT_LEN 40     /* header, offset, priority, reserved, trailer */
#define RESEND_LEN 44    /* header, offset, length, priority, reserved, trailer */
#define EMPTY_CTL_LEN 32 /* UNKNOWN, BUSY, NEED_ACK: header and trailer */
#define LIST_HDR_LEN 16  /* ACK, CUTOFFS: header, count, 7 reserved bytes */
#define LIST_RSV_LEN 7
#define ACK_ID_LEN 6
#define CUTOFF_LEN 4
#define HS_HDR_LEN 28
#define PRIO_MAX (SDP_PRIO_LEVELS - 1)

/* ---- layout of a message's wire bytes (section 4) ---- */

/* Invalid layouts (rec_size 0) give 0 here; callers check
 * sdp_msg_layout_ok() first. */
uint32_t sdp_msg_nrec(uint32_t msg_len, uint16_t rec_size)
{
    if (rec_size == 0)
        return 0;
    uint32_t n = msg_len / rec_size + (msg_len % rec_size != 0);
    return n ? n : 1;
}

uint64_t sdp_msg_wire_len(uint32_t msg_len, uint16_t rec_size)
{
    if (rec_size == 0)
        return 0;
    return (uint64_t)msg_len + (uint64_t)SDP_TAG_LEN * sdp_msg_nrec(msg_len, rec_size);
}

uint32_t sdp_rec_len(uint32_t msg_len, uint16_t rec_size, uint32_t idx)
{
    if (idx >= sdp_msg_nrec(msg_len, rec_size))
        return 0;
    uint32_t rest = msg_len - idx * (uint32_t)rec_size; /* idx < nrec: no wrap */
    return rest < rec_size ? rest : rec_size;
}

uint64_t sdp_rec_wire_off(uint16_t rec_size, uint32_t idx)
{
    return (uint64_t)idx * ((uint64_t)rec_size + SDP_TAG_LEN);
}

int sdp_msg_layout_ok(uint32_t msg_len, uint16_t rec_size)
{
    if (rec_size == 0 || rec_size > SDP_REC_SIZE_MAX)
        return SDP_WIRE_ERECSIZE;
    if (msg_len > SDP_MSG_LEN_MAX || sdp_msg_nrec(msg_len, rec_size) > SDP_REC_COUNT_MAX)
        return SDP_WIRE_EMSGLEN;
    return 0;
}

/* ---- per-type rules shared by decoders and encoders ---- */

int sdp_pkt_is_ctl(uint8_t type)
{
    return type >= SDP_PKT_GRANT && type <= SDP_PKT_CUTOFFS;
}

static int type_known(uint8_t type)
{
    return type >= SDP_PKT_DATA && type <= SDP_PKT_HANDSHAKE;
}

static uint8_t flags_allowed(uint8_t type)
{
    if (type == SDP_PKT_DATA)
        return SDP_F_DEFINED;
    if (type == SDP_PKT_HANDSHAKE)
        return 0;
    return SDP_F_KEY_PHASE;
}

/* Packets about no single RPC carry id 0; all others a non-zero id. */
static int id_ok(uint8_t type, uint64_t id)
{
    if (id > SDP_ID_MAX)
        return 0;
    if (type == SDP_PKT_ACK || type == SDP_PKT_CUTOFFS || type == SDP_PKT_HANDSHAKE)
        return id == 0;
    return id != 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Offsets and lengths of a DATA packet against its message's wire bytes. */
static int data_range(const struct sdp_data *d, uint64_t payload_len)
{
    uint64_t wire = sdp_msg_wire_len(d->msg_len, d->rec_size);
    if (d->offset > wire || payload_len > wire - d->offset)
        return SDP_WIRE_ERANGE;
    if (d->unsched > wire)
        return SDP_WIRE_ERANGE;
    return 0;
}

/* RESEND asks for [offset, offset+length), which must be non-empty and
 * expressible as a 32-bit wire offset. */
static int resend_range(uint32_t offset, uint32_t length)
{
    if (length == 0 || length > UINT32_MAX - offset)
        return SDP_WIRE_ERANGE;
    return 0;
}

/* ---- decoders ---- */

/* Version, type and flags of a buffer known to hold at least the common
 * header.  want is the expected type, or 0 for any known type. */
static int check_hdr(const uint8_t *buf, size_t len, uint8_t want, struct sdp_hdr *h)
{
    const uint8_t *end = buf + len;
    uint8_t vt = 0, flags = 0;
    uint64_t id = 0;
    const uint8_t *p = sdp_get_u8(buf, end, &vt);
    p = sdp_get_u8(p, end, &flags);
    p = sdp_get_u48be(p, end, &id);
    if (p == NULL)
        return SDP_WIRE_ESHORT;
    if (vt >> 4 != SDP_WIRE_VERSION)
        return SDP_WIRE_EVERSION;
    uint8_t type = vt & 0x0f;
    if (want ? type != want : !type_known(type))
        return SDP_WIRE_ETYPE;
    if (flags & ~flags_allowed(type))
        return SDP_WIRE_EFLAGS;
    h->type = type;
    h->flags = flags;
    h->rpc_id = id;
    return 0;
}

static void read_ctl(const uint8_t *buf, size_t len, struct sdp_ctl_trailer *ctl)
{
    const uint8_t *t = buf + len - SDP_CTL_TRAILER_LEN;
    ctl->seq = 0;
    sdp_get_u64be(t, buf + len, &ctl->seq);
    ctl->tag = t + 8;
    ctl->aad_len = len - SDP_TAG_LEN;
}

static void clear_ctl(struct sdp_ctl_trailer *ctl)
{
    ctl->seq = 0;
    ctl->tag = NULL;
    ctl->aad_len = 0;
}

int sdp_wire_decode_hdr(const uint8_t *buf, size_t len, struct sdp_hdr *out)
{
    if (len < SDP_HDR_LEN)
        return SDP_WIRE_ESHORT;
    int rc = check_hdr(buf, len, 0, out);
    if (rc)
        return rc;
    if (!id_ok(out->type, out->rpc_id))
        return SDP_WIRE_EID;
    return 0;
}

int sdp_wire_decode_data(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    if (len < SDP_DATA_HDR_LEN)
        return SDP_WIRE_ESHORT;
    if (len == SDP_DATA_HDR_LEN)
        return SDP_WIRE_ELENGTH; /* the payload is at least one byte */
    int rc = check_hdr(buf, len, SDP_PKT_DATA, &out->hdr);
    if (rc)
        return rc;

    const uint8_t *end = buf + len, *p = buf + SDP_HDR_LEN;
    struct sdp_data *d = &out->u.data;
    uint16_t rsv = 0;
    p = sdp_get_u32be(p, end, &d->msg_len);
    p = sdp_get_u32be(p, end, &d->offset);
    p = sdp_get_u32be(p, end, &d->unsched);
    p = sdp_get_u16be(p, end, &d->rec_size);
    p = sdp_get_u16be(p, end, &rsv);
    if (p == NULL)
        return SDP_WIRE_ESHORT;
    if (rsv != 0)
        return SDP_WIRE_ERESERVED;
    if (!id_ok(SDP_PKT_DATA, out->hdr.rpc_id))
        return SDP_WIRE_EID;
    rc = sdp_msg_layout_ok(d->msg_len, d->rec_size);
    if (rc)
        return rc;
    size_t plen = len - SDP_DATA_HDR_LEN;
    rc = data_range(d, plen);
    if (rc)
        return rc;
    d->payload = p;
    d->payload_len = (uint32_t)plen; /* bounded by the wire length above */
    clear_ctl(&out->ctl);
    return 0;
}

int sdp_wire_decode_grant(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    if (len < GRANT_LEN)
        return SDP_WIRE_ESHORT;
    if (len != GRANT_LEN)
        return SDP_WIRE_ELENGTH;
    int rc = check_hdr(buf, len, SDP_PKT_GRANT, &out->hdr);
    if (rc)
        return rc;

    const uint8_t *end = buf + len, *p = buf + SDP_HDR_LEN;
    struct sdp_grant *g = &out->u.grant;
    p = sdp_get_u32be(p, end, &g->offset);
    p = sdp_get_u8(p, end, &g->priority);
    if (p == NULL)
        return SDP_WIRE_ESHORT;
    if (!all_zero(p, 3))
        return SDP_WIRE_ERESERVED;
    if (!id_ok(SDP_PKT_GRANT, out->hdr.rpc_id))
        return SDP_WIRE_EID;
    if (g->priority > PRIO_MAX)
        return SDP_WIRE_EPRIO;
    read_ctl(buf, len, &out->ctl);
    return 0;
}

int sdp_wire_decode_resend(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    if (len < RESEND_LEN)
        return SDP_WIRE_ESHORT;
    if (len != RESEND_LEN)
        return SDP_WIRE_ELENGTH;
    int rc = check_hdr(buf, len, SDP_PKT_RESEND, &out->hdr);
    if (rc)
        return rc;

    const uint8_t *end = buf + len, *p = buf + SDP_HDR_LEN;
    struct sdp_resend *r = &out->u.resend;
    p = sdp_get_u32be(p, end, &r->offset);
    p = sdp_get_u32be(p, end, &r->length);
    p = sdp_get_u8(p, end, &r->priority);
    if (p == NULL)
        return SDP_WIRE_ESHORT;
    if (!all_zero(p, 3))
        return SDP_WIRE_ERESERVED;
    if (!id_ok(SDP_PKT_RESEND, out->hdr.rpc_id))
        return SDP_WIRE_EID;
    rc = resend_range(r->offset, r->length);
    if (rc)
        return rc;
    if (r->priority > PRIO_MAX)
        return SDP_WIRE_EPRIO;
    read_ctl(buf, len, &out->ctl);
    return 0;
}

static int decode_empty_ctl(const uint8_t *buf, size_t len, struct sdp_pkt *out, uint8_t type)
{
    if (len < EMPTY_CTL_LEN)
        return SDP_WIRE_ESHORT;
    if (len != EMPTY_CTL_LEN)
        return SDP_WIRE_ELENGTH;
    int rc = check_hdr(buf, len, type, &out->hdr);
    if (rc)
        return rc;
    if (!id_ok(type, out->hdr.rpc_id))
        return SDP_WIRE_EID;
    read_ctl(buf, len, &out->ctl);
    return 0;
}

int sdp_wire_decode_unknown(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    return decode_empty_ctl(buf, len, out, SDP_PKT_UNKNOWN);
}

int sdp_wire_decode_busy(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    return decode_empty_ctl(buf, len, out, SDP_PKT_BUSY);
}

int sdp_wire_decode_need_ack(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    return decode_empty_ctl(buf, len, out, SDP_PKT_NEED_ACK);
}

/* ACK and CUTOFFS: a count at offset 8, 7 reserved bytes, count items of
 * item_len bytes, the trailer.  Checks everything up to the items. */
static int decode_list_head(const uint8_t *buf, size_t len, struct sdp_pkt *out, uint8_t type,
                            size_t item_len, uint8_t max, uint8_t *count)
{
    if (len < LIST_HDR_LEN + SDP_CTL_TRAILER_LEN)
        return SDP_WIRE_ESHORT;
    if (sdp_get_u8(buf + SDP_HDR_LEN, buf + len, count) == NULL)
        return SDP_WIRE_ESHORT;
    if (len != LIST_HDR_LEN + item_len * *count + SDP_CTL_TRAILER_LEN)
        return SDP_WIRE_ELENGTH;
    int rc = check_hdr(buf, len, type, &out->hdr);
    if (rc)
        return rc;
    if (!all_zero(buf + SDP_HDR_LEN + 1, LIST_RSV_LEN))
        return SDP_WIRE_ERESERVED;
    if (!id_ok(type, out->hdr.rpc_id))
        return SDP_WIRE_EID;
    if (*count == 0 || *count > max)
        return SDP_WIRE_ECOUNT;
    return 0;
}

int sdp_wire_decode_ack(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    uint8_t n = 0;
    int rc = decode_list_head(buf, len, out, SDP_PKT_ACK, ACK_ID_LEN, SDP_ACK_MAX, &n);
    if (rc)
        return rc;
    struct sdp_ack *a = &out->u.ack;
    const uint8_t *end = buf + len, *p = buf + LIST_HDR_LEN;
    memset(a->ids, 0, sizeof a->ids);
    for (uint8_t i = 0; i < n; i++) {
        p = sdp_get_u48be(p, end, &a->ids[i]);
        if (p == NULL)
            return SDP_WIRE_ESHORT;
        /* Only clients acknowledge, so every id is a client's: even. */
        if (a->ids[i] == 0 || (a->ids[i] & 1))
            return SDP_WIRE_EID;
    }
    a->count = n;
    read_ctl(buf, len, &out->ctl);
    return 0;
}

int sdp_wire_decode_cutoffs(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    uint8_t n = 0;
    int rc = decode_list_head(buf, len, out, SDP_PKT_CUTOFFS, CUTOFF_LEN, SDP_CUTOFFS_MAX, &n);
    if (rc)
        return rc;
    struct sdp_cutoffs *c = &out->u.cutoffs;
    const uint8_t *end = buf + len, *p = buf + LIST_HDR_LEN;
    memset(c->cutoff, 0, sizeof c->cutoff);
    for (uint8_t i = 0; i < n; i++) {
        p = sdp_get_u32be(p, end, &c->cutoff[i]);
        if (p == NULL)
            return SDP_WIRE_ESHORT;
        if (i > 0 && c->cutoff[i] <= c->cutoff[i - 1])
            return SDP_WIRE_EORDER;
    }
    c->count = n;
    read_ctl(buf, len, &out->ctl);
    return 0;
}

int sdp_wire_decode_handshake(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    if (len < HS_HDR_LEN)
        return SDP_WIRE_ESHORT;
    const uint8_t *end = buf + len;
    struct sdp_handshake *hs = &out->u.hs;
    const uint8_t *p = sdp_get_u8(buf + SDP_HDR_LEN, end, &hs->kind);
    p = sdp_get_u8(p, end, &hs->token_len);
    p = sdp_get_u16be(p, end, &hs->payload_len);
    p = sdp_get_u64be(p, end, &hs->conn_id);
    p = sdp_get_u32be(p, end, &hs->stream_offset);
    p = sdp_get_u32be(p, end, &hs->ack_offset);
    if (p == NULL)
        return SDP_WIRE_ESHORT;
    /* CLIENT packets may be padded with zeros (so that a server may answer
     * a first contact with its whole flight within 3x, PROTOCOL.md 8.2);
     * every other kind has its exact length. */
    size_t exact = (size_t)HS_HDR_LEN + hs->token_len + hs->payload_len;
    hs->pad_to = 0;
    if (len != exact) {
        if (len < exact || len > UINT16_MAX || hs->kind != SDP_HS_CLIENT)
            return SDP_WIRE_ELENGTH;
        for (size_t i = exact; i < len; i++)
            if (buf[i] != 0)
                return SDP_WIRE_ELENGTH; /* not padding: the lengths disagree */
        hs->pad_to = (uint16_t)len;
    }
    int rc = check_hdr(buf, len, SDP_PKT_HANDSHAKE, &out->hdr);
    if (rc)
        return rc;
    if (!id_ok(SDP_PKT_HANDSHAKE, out->hdr.rpc_id))
        return SDP_WIRE_EID;
    if (hs->kind < SDP_HS_CLIENT || hs->kind > SDP_HS_CLOSE)
        return SDP_WIRE_EKIND;
    if (hs->token_len > SDP_HS_TOKEN_MAX)
        return SDP_WIRE_ECOUNT;
    hs->token = p;
    hs->payload = p + hs->token_len;
    clear_ctl(&out->ctl);
    return 0;
}

int sdp_wire_decode(const uint8_t *buf, size_t len, struct sdp_pkt *out)
{
    if (len < SDP_HDR_LEN)
        return SDP_WIRE_ESHORT;
    /* Dispatch on the type nibble alone, so that a packet of a known type
     * gets exactly the code its own decoder gives. */
    switch (buf[0] & 0x0f) {
    case SDP_PKT_DATA: return sdp_wire_decode_data(buf, len, out);
    case SDP_PKT_GRANT: return sdp_wire_decode_grant(buf, len, out);
    case SDP_PKT_RESEND: return sdp_wire_decode_resend(buf, len, out);
    case SDP_PKT_UNKNOWN: return sdp_wire_decode_unknown(buf, len, out);
    case SDP_PKT_BUSY: return sdp_wire_decode_busy(buf, len, out);
    case SDP_PKT_NEED_ACK: return sdp_wire_decode_need_ack(buf, len, out);
    case SDP_PKT_ACK: return sdp_wire_decode_ack(buf, len, out);
    case SDP_PKT_CUTOFFS: return sdp_wire_decode_cutoffs(buf, len, out);
    case SDP_PKT_HANDSHAKE: return sdp_wire_decode_handshake(buf, len, out);
    default:
        return buf[0] >> 4 != SDP_WIRE_VERSION ? SDP_WIRE_EVERSION : SDP_WIRE_ETYPE;
    }
}

/* ---- encoders ---- */

/* h->type may be left 0; if set it must name the encoder's type. */
static int hdr_ok(const struct sdp_hdr *h, uint8_t type)
{
    if (h == NULL || (h->type != 0 && h->type != type))
        return 0;
    if (h->flags & ~flags_allowed(type))
        return 0;
    return id_ok(type, h->rpc_id);
}

static uint8_t *put_hdr(uint8_t *p, const uint8_t *end, uint8_t type, const struct sdp_hdr *h)
{
    p = sdp_put_u8(p, end, (uint8_t)(SDP_WIRE_VERSION << 4 | type));
    p = sdp_put_u8(p, end, h->flags);
    return sdp_put_u48be(p, end, h->rpc_id);
}

/* The sequence number and a zeroed tag, which the caller seals in place. */
static uint8_t *put_ctl(uint8_t *p, const uint8_t *end, uint64_t seq)
{
    p = sdp_put_u64be(p, end, seq);
    return sdp_put_zero(p, end, SDP_TAG_LEN);
}

/* Common entry checks: arguments valid, then room for total bytes. */
static int enc_begin(const uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint8_t type,
                     size_t total)
{
    if (buf == NULL || !hdr_ok(h, type))
        return SDP_WIRE_EINVAL;
    if (cap < total)
        return SDP_WIRE_ENOSPACE;
    return 0;
}

static int data_ok(const struct sdp_data *d)
{
    if (d == NULL || d->payload_len == 0)
        return 0;
    return sdp_msg_layout_ok(d->msg_len, d->rec_size) == 0 && data_range(d, d->payload_len) == 0;
}

int sdp_wire_encode_data_hdr(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_data *d)
{
    if (!data_ok(d))
        return SDP_WIRE_EINVAL;
    int rc = enc_begin(buf, cap, h, SDP_PKT_DATA, SDP_DATA_HDR_LEN);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, SDP_PKT_DATA, h);
    p = sdp_put_u32be(p, end, d->msg_len);
    p = sdp_put_u32be(p, end, d->offset);
    p = sdp_put_u32be(p, end, d->unsched);
    p = sdp_put_u16be(p, end, d->rec_size);
    p = sdp_put_u16be(p, end, 0);
    return p ? SDP_DATA_HDR_LEN : SDP_WIRE_ENOSPACE;
}

int sdp_wire_encode_data(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_data *d)
{
    if (!data_ok(d) || d->payload == NULL)
        return SDP_WIRE_EINVAL;
    size_t total = (size_t)SDP_DATA_HDR_LEN + d->payload_len;
    int rc = enc_begin(buf, cap, h, SDP_PKT_DATA, total);
    if (rc)
        return rc;
    rc = sdp_wire_encode_data_hdr(buf, cap, h, d);
    if (rc < 0)
        return rc;
    /* A payload already in place (sealed straight into the packet) stays. */
    if (d->payload != buf + SDP_DATA_HDR_LEN)
        memcpy(buf + SDP_DATA_HDR_LEN, d->payload, d->payload_len);
    return (int)total;
}

int sdp_wire_encode_grant(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_grant *g,
                          uint64_t ctl_seq)
{
    if (g == NULL || g->priority > PRIO_MAX)
        return SDP_WIRE_EINVAL;
    int rc = enc_begin(buf, cap, h, SDP_PKT_GRANT, GRANT_LEN);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, SDP_PKT_GRANT, h);
    p = sdp_put_u32be(p, end, g->offset);
    p = sdp_put_u8(p, end, g->priority);
    p = sdp_put_zero(p, end, 3);
    p = put_ctl(p, end, ctl_seq);
    return p ? GRANT_LEN : SDP_WIRE_ENOSPACE;
}

int sdp_wire_encode_resend(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_resend *r,
                           uint64_t ctl_seq)
{
    if (r == NULL || r->priority > PRIO_MAX || resend_range(r->offset, r->length) != 0)
        return SDP_WIRE_EINVAL;
    int rc = enc_begin(buf, cap, h, SDP_PKT_RESEND, RESEND_LEN);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, SDP_PKT_RESEND, h);
    p = sdp_put_u32be(p, end, r->offset);
    p = sdp_put_u32be(p, end, r->length);
    p = sdp_put_u8(p, end, r->priority);
    p = sdp_put_zero(p, end, 3);
    p = put_ctl(p, end, ctl_seq);
    return p ? RESEND_LEN : SDP_WIRE_ENOSPACE;
}

static int encode_empty_ctl(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq,
                            uint8_t type)
{
    int rc = enc_begin(buf, cap, h, type, EMPTY_CTL_LEN);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, type, h);
    p = put_ctl(p, end, ctl_seq);
    return p ? EMPTY_CTL_LEN : SDP_WIRE_ENOSPACE;
}

int sdp_wire_encode_unknown(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq)
{
    return encode_empty_ctl(buf, cap, h, ctl_seq, SDP_PKT_UNKNOWN);
}

int sdp_wire_encode_busy(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq)
{
    return encode_empty_ctl(buf, cap, h, ctl_seq, SDP_PKT_BUSY);
}

int sdp_wire_encode_need_ack(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq)
{
    return encode_empty_ctl(buf, cap, h, ctl_seq, SDP_PKT_NEED_ACK);
}

int sdp_wire_encode_ack(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_ack *a,
                        uint64_t ctl_seq)
{
    if (a == NULL || a->count == 0 || a->count > SDP_ACK_MAX)
        return SDP_WIRE_EINVAL;
    for (uint8_t i = 0; i < a->count; i++)
        if (a->ids[i] == 0 || (a->ids[i] & 1) || a->ids[i] > SDP_ID_MAX)
            return SDP_WIRE_EINVAL;
    size_t total = LIST_HDR_LEN + (size_t)ACK_ID_LEN * a->count + SDP_CTL_TRAILER_LEN;
    int rc = enc_begin(buf, cap, h, SDP_PKT_ACK, total);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, SDP_PKT_ACK, h);
    p = sdp_put_u8(p, end, a->count);
    p = sdp_put_zero(p, end, LIST_RSV_LEN);
    for (uint8_t i = 0; i < a->count; i++)
        p = sdp_put_u48be(p, end, a->ids[i]);
    p = put_ctl(p, end, ctl_seq);
    return p ? (int)total : SDP_WIRE_ENOSPACE;
}

int sdp_wire_encode_cutoffs(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_cutoffs *c,
                            uint64_t ctl_seq)
{
    if (c == NULL || c->count == 0 || c->count > SDP_CUTOFFS_MAX)
        return SDP_WIRE_EINVAL;
    for (uint8_t i = 1; i < c->count; i++)
        if (c->cutoff[i] <= c->cutoff[i - 1])
            return SDP_WIRE_EINVAL;
    size_t total = LIST_HDR_LEN + (size_t)CUTOFF_LEN * c->count + SDP_CTL_TRAILER_LEN;
    int rc = enc_begin(buf, cap, h, SDP_PKT_CUTOFFS, total);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, SDP_PKT_CUTOFFS, h);
    p = sdp_put_u8(p, end, c->count);
    p = sdp_put_zero(p, end, LIST_RSV_LEN);
    for (uint8_t i = 0; i < c->count; i++)
        p = sdp_put_u32be(p, end, c->cutoff[i]);
    p = put_ctl(p, end, ctl_seq);
    return p ? (int)total : SDP_WIRE_ENOSPACE;
}

int sdp_wire_encode_handshake(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_handshake *hs)
{
    if (hs == NULL || hs->kind < SDP_HS_CLIENT || hs->kind > SDP_HS_CLOSE)
        return SDP_WIRE_EINVAL;
    if (hs->token_len > SDP_HS_TOKEN_MAX || (hs->token_len && hs->token == NULL) ||
        (hs->payload_len && hs->payload == NULL))
        return SDP_WIRE_EINVAL;
    size_t total = (size_t)HS_HDR_LEN + hs->token_len + hs->payload_len;
    size_t body = total;
    if (hs->kind == SDP_HS_CLIENT && hs->pad_to > total)
        total = hs->pad_to;
    int rc = enc_begin(buf, cap, h, SDP_PKT_HANDSHAKE, total);
    if (rc)
        return rc;
    const uint8_t *end = buf + cap;
    uint8_t *p = put_hdr(buf, end, SDP_PKT_HANDSHAKE, h);
    p = sdp_put_u8(p, end, hs->kind);
    p = sdp_put_u8(p, end, hs->token_len);
    p = sdp_put_u16be(p, end, hs->payload_len);
    p = sdp_put_u64be(p, end, hs->conn_id);
    p = sdp_put_u32be(p, end, hs->stream_offset);
    p = sdp_put_u32be(p, end, hs->ack_offset);
    p = sdp_put_bytes(p, end, hs->token, hs->token_len);
    p = sdp_put_bytes(p, end, hs->payload, hs->payload_len);
    if (p && total > body) {
        memset(p, 0, total - body); /* enc_begin checked cap */
        p += total - body;
    }
    return p ? (int)total : SDP_WIRE_ENOSPACE;
}

const char *sdp_wire_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case SDP_WIRE_ESHORT: return "packet shorter than its type's fixed part";
    case SDP_WIRE_EVERSION: return "unsupported protocol version";
    case SDP_WIRE_ETYPE: return "unknown or unexpected packet type";
    case SDP_WIRE_EFLAGS: return "flag undefined or not allowed on this packet type";
    case SDP_WIRE_ELENGTH: return "packet length wrong for its type and counts";
    case SDP_WIRE_ERESERVED: return "reserved field not zero";
    case SDP_WIRE_EID: return "RPC id zero, odd or present where not allowed";
    case SDP_WIRE_ERECSIZE: return "record size zero or above 16384";
    case SDP_WIRE_EMSGLEN: return "message length or record count above limit";
    case SDP_WIRE_ERANGE: return "offset or length outside the message's wire bytes";
    case SDP_WIRE_ECOUNT: return "count out of range (list count 1-8, token length at most 128)";
    case SDP_WIRE_EPRIO: return "priority above 7";
    case SDP_WIRE_EORDER: return "cutoffs not strictly increasing";
    case SDP_WIRE_EKIND: return "unknown handshake kind";
    case SDP_WIRE_ENOSPACE: return "output buffer too small";
    case SDP_WIRE_EINVAL: return "field out of range for encoding";
    default: return "unknown wire error";
    }
}
