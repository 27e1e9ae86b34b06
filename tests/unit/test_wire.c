/* The wire codec against docs/PROTOCOL.md sections 2-4: exact bytes of one
 * packet per type, round trips at the boundaries, a table of malformed
 * packets (one fault each, every decoder error code), truncations, wrong
 * types, encoder argument checks and the record layout helpers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

typedef int (*decoder_fn)(const uint8_t *buf, size_t len, struct sdp_pkt *out);

static const decoder_fn decoder_of[16] = {
    [SDP_PKT_DATA] = sdp_wire_decode_data,         [SDP_PKT_GRANT] = sdp_wire_decode_grant,
    [SDP_PKT_RESEND] = sdp_wire_decode_resend,     [SDP_PKT_UNKNOWN] = sdp_wire_decode_unknown,
    [SDP_PKT_BUSY] = sdp_wire_decode_busy,         [SDP_PKT_NEED_ACK] = sdp_wire_decode_need_ack,
    [SDP_PKT_ACK] = sdp_wire_decode_ack,           [SDP_PKT_CUTOFFS] = sdp_wire_decode_cutoffs,
    [SDP_PKT_HANDSHAKE] = sdp_wire_decode_handshake,
};

/* ---- one valid sample packet per type ---- */

enum base { B_DATA, B_GRANT, B_RESEND, B_UNKNOWN, B_BUSY, B_NEED_ACK, B_ACK, B_CUTOFFS, B_HS, B_COUNT };

static const uint8_t base_type[B_COUNT] = {
    SDP_PKT_DATA, SDP_PKT_GRANT, SDP_PKT_RESEND, SDP_PKT_UNKNOWN, SDP_PKT_BUSY,
    SDP_PKT_NEED_ACK, SDP_PKT_ACK, SDP_PKT_CUTOFFS, SDP_PKT_HANDSHAKE,
};

#define BASE_CAP 512
#define TAG_FILL 0xa5

/* DATA sample: msg_len 100, rec_size 64 -> 2 records, wire_len 132; the
 * payload is the last 32 wire bytes, so one more byte is out of range. */
static size_t build(enum base b, uint8_t *buf, size_t cap, int fill_tag)
{
    uint8_t pl[32];
    for (int i = 0; i < 32; i++)
        pl[i] = (uint8_t)(i * 7 + 1);
    memset(buf, 0, cap);
    int n = -1;
    switch (b) {
    case B_DATA: {
        struct sdp_hdr h = {SDP_PKT_DATA, SDP_F_KEY_PHASE, UINT64_C(0x123456789abc)};
        struct sdp_data d = {.msg_len = 100, .offset = 100, .unsched = 132, .rec_size = 64,
                             .payload = pl, .payload_len = 32};
        n = sdp_wire_encode_data(buf, cap, &h, &d);
        break;
    }
    case B_GRANT: {
        struct sdp_hdr h = {SDP_PKT_GRANT, 0, UINT64_C(0xdeadbeef)};
        struct sdp_grant g = {.offset = 5000, .priority = 5};
        n = sdp_wire_encode_grant(buf, cap, &h, &g, UINT64_C(0x0102030405060708));
        break;
    }
    case B_RESEND: {
        struct sdp_hdr h = {SDP_PKT_RESEND, 0, UINT64_C(0x2468ace)};
        struct sdp_resend r = {.offset = 1000, .length = 1448, .priority = 3};
        n = sdp_wire_encode_resend(buf, cap, &h, &r, 77);
        break;
    }
    case B_UNKNOWN: {
        struct sdp_hdr h = {SDP_PKT_UNKNOWN, 0, 0x42};
        n = sdp_wire_encode_unknown(buf, cap, &h, 1);
        break;
    }
    case B_BUSY: {
        struct sdp_hdr h = {SDP_PKT_BUSY, SDP_F_KEY_PHASE, 0x43};
        n = sdp_wire_encode_busy(buf, cap, &h, 2);
        break;
    }
    case B_NEED_ACK: {
        struct sdp_hdr h = {SDP_PKT_NEED_ACK, 0, 0x45};
        n = sdp_wire_encode_need_ack(buf, cap, &h, 3);
        break;
    }
    case B_ACK: {
        struct sdp_hdr h = {SDP_PKT_ACK, 0, 0};
        struct sdp_ack a = {.count = 2, .ids = {2, UINT64_C(0xfffffffffffe)}};
        n = sdp_wire_encode_ack(buf, cap, &h, &a, 9);
        break;
    }
    case B_CUTOFFS: {
        struct sdp_hdr h = {SDP_PKT_CUTOFFS, SDP_F_KEY_PHASE, 0};
        struct sdp_cutoffs c = {.count = 3, .cutoff = {100, 1000, 10000}};
        n = sdp_wire_encode_cutoffs(buf, cap, &h, &c, 10);
        break;
    }
    case B_HS: {
        struct sdp_hdr h = {SDP_PKT_HANDSHAKE, 0, 0};
        struct sdp_handshake hs = {.kind = SDP_HS_CLIENT, .conn_id = UINT64_C(0x1122334455667788),
                                   .stream_offset = 0, .ack_offset = 7,
                                   .token = (const uint8_t *)"TOKN", .token_len = 4,
                                   .payload = (const uint8_t *)"0123456789", .payload_len = 10};
        n = sdp_wire_encode_handshake(buf, cap, &h, &hs);
        break;
    }
    default:
        break;
    }
    cr_assert_gt(n, 0, "sample %d did not encode: %d", (int)b, n);
    if (fill_tag && sdp_pkt_is_ctl(base_type[b]))
        memset(buf + n - SDP_TAG_LEN, TAG_FILL, SDP_TAG_LEN);
    return (size_t)n;
}

/* A heap copy of exactly len bytes, so that ASan sees any over-read. */
static uint8_t *exact_copy(const uint8_t *src, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    if (len)
        memcpy(p, src, len);
    return p;
}

/* ---- exact bytes: the layout of section 3, byte for byte ---- */

static const uint8_t gold_data_hdr[24] = {
    0x11, 0x01, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 132, 0x00, 0x40, 0, 0,
};
static const uint8_t gold_grant[40] = {
    0x12, 0x00, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0x13, 0x88, 5, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
};
static const uint8_t gold_resend[44] = {
    0x13, 0x00, 0, 0, 0x02, 0x46, 0x8a, 0xce, 0, 0, 0x03, 0xe8, 0, 0, 0x05, 0xa8, 3, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 77,
};
static const uint8_t gold_unknown[32] = {0x14, 0, 0, 0, 0, 0, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t gold_busy[32] = {0x15, 0x01, 0, 0, 0, 0, 0, 0x43, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t gold_need_ack[32] = {0x16, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 3};
static const uint8_t gold_ack[52] = {
    0x17, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 9,
};
static const uint8_t gold_cutoffs[52] = {
    0x18, 0x01, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 100, 0, 0, 0x03, 0xe8, 0, 0, 0x27, 0x10, 0, 0, 0, 0, 0, 0, 0, 10,
};
static const uint8_t gold_hs[42] = {
    0x19, 0, 0, 0, 0, 0, 0, 0, 1, 4, 0, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    0, 0, 0, 0, 0, 0, 0, 7, 'T', 'O', 'K', 'N', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
};

Test(wire_golden, every_type_matches_spec_bytes)
{
    static const struct {
        enum base b;
        const uint8_t *bytes;
        size_t len;
    } gold[] = {
        {B_GRANT, gold_grant, sizeof gold_grant},       {B_RESEND, gold_resend, sizeof gold_resend},
        {B_UNKNOWN, gold_unknown, sizeof gold_unknown}, {B_BUSY, gold_busy, sizeof gold_busy},
        {B_NEED_ACK, gold_need_ack, sizeof gold_need_ack}, {B_ACK, gold_ack, sizeof gold_ack},
        {B_CUTOFFS, gold_cutoffs, sizeof gold_cutoffs}, {B_HS, gold_hs, sizeof gold_hs},
    };
    uint8_t buf[BASE_CAP];
    for (size_t i = 0; i < sizeof gold / sizeof gold[0]; i++) {
        size_t n = build(gold[i].b, buf, sizeof buf, 0);
        cr_assert_eq(n, gold[i].len, "type %d: length %zu", base_type[gold[i].b], n);
        cr_assert_arr_eq(buf, gold[i].bytes, n, "type %d bytes differ", base_type[gold[i].b]);
    }
    size_t n = build(B_DATA, buf, sizeof buf, 0);
    cr_assert_eq(n, 56);
    cr_assert_arr_eq(buf, gold_data_hdr, 24);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(buf[24 + i], (uint8_t)(i * 7 + 1));
}

Test(wire_golden, decode_gives_the_encoded_fields)
{
    uint8_t buf[BASE_CAP];
    struct sdp_pkt p;
    size_t n = build(B_DATA, buf, sizeof buf, 1);
    cr_assert_eq(sdp_wire_decode(buf, n, &p), 0);
    cr_assert_eq(p.hdr.type, SDP_PKT_DATA);
    cr_assert_eq(p.hdr.flags, SDP_F_KEY_PHASE);
    cr_assert_eq(p.hdr.rpc_id, UINT64_C(0x123456789abc));
    cr_assert_eq(p.u.data.msg_len, 100);
    cr_assert_eq(p.u.data.offset, 100);
    cr_assert_eq(p.u.data.unsched, 132);
    cr_assert_eq(p.u.data.rec_size, 64);
    cr_assert_eq(p.u.data.payload, buf + 24);
    cr_assert_eq(p.u.data.payload_len, 32);

    n = build(B_RESEND, buf, sizeof buf, 1);
    cr_assert_eq(sdp_wire_decode(buf, n, &p), 0);
    cr_assert_eq(p.hdr.rpc_id, UINT64_C(0x2468ace));
    cr_assert_eq(p.u.resend.offset, 1000);
    cr_assert_eq(p.u.resend.length, 1448);
    cr_assert_eq(p.u.resend.priority, 3);
    cr_assert_eq(p.ctl.seq, 77);
    cr_assert_eq(p.ctl.tag, buf + 28);
    cr_assert_eq(p.ctl.aad_len, 28);
    cr_assert_eq(p.ctl.tag[0], TAG_FILL);

    n = build(B_HS, buf, sizeof buf, 1);
    cr_assert_eq(sdp_wire_decode(buf, n, &p), 0);
    cr_assert_eq(p.u.hs.kind, SDP_HS_CLIENT);
    cr_assert_eq(p.u.hs.conn_id, UINT64_C(0x1122334455667788));
    cr_assert_eq(p.u.hs.ack_offset, 7);
    cr_assert_eq(p.u.hs.token, buf + 28);
    cr_assert_eq(p.u.hs.token_len, 4);
    cr_assert_eq(p.u.hs.payload, buf + 32);
    cr_assert_eq(p.u.hs.payload_len, 10);
    cr_assert_eq(p.ctl.tag, NULL);
}

/* ---- round trips at the boundaries ---- */

static uint8_t big_a[70000], big_b[70000];

/* Re-encode a decoded packet; the control tag comes back zeroed. */
static int reencode(const struct sdp_pkt *p, uint8_t *out, size_t cap)
{
    switch (p->hdr.type) {
    case SDP_PKT_DATA: return sdp_wire_encode_data(out, cap, &p->hdr, &p->u.data);
    case SDP_PKT_GRANT: return sdp_wire_encode_grant(out, cap, &p->hdr, &p->u.grant, p->ctl.seq);
    case SDP_PKT_RESEND: return sdp_wire_encode_resend(out, cap, &p->hdr, &p->u.resend, p->ctl.seq);
    case SDP_PKT_UNKNOWN: return sdp_wire_encode_unknown(out, cap, &p->hdr, p->ctl.seq);
    case SDP_PKT_BUSY: return sdp_wire_encode_busy(out, cap, &p->hdr, p->ctl.seq);
    case SDP_PKT_NEED_ACK: return sdp_wire_encode_need_ack(out, cap, &p->hdr, p->ctl.seq);
    case SDP_PKT_ACK: return sdp_wire_encode_ack(out, cap, &p->hdr, &p->u.ack, p->ctl.seq);
    case SDP_PKT_CUTOFFS: return sdp_wire_encode_cutoffs(out, cap, &p->hdr, &p->u.cutoffs, p->ctl.seq);
    case SDP_PKT_HANDSHAKE: return sdp_wire_encode_handshake(out, cap, &p->hdr, &p->u.hs);
    default: return -1;
    }
}

/* Decode what an encoder wrote (tag filled in), with the generic and the
 * type's own decoder, check they agree, and that it re-encodes to the
 * same bytes.  Returns the decoded packet. */
static struct sdp_pkt roundtrip(uint8_t *buf, int n, uint8_t type)
{
    cr_assert_gt(n, 0, "type %d: encode failed: %d", type, n);
    size_t len = (size_t)n;
    if (sdp_pkt_is_ctl(type)) {
        for (size_t i = len - SDP_TAG_LEN; i < len; i++)
            cr_assert_eq(buf[i], 0, "type %d: tag byte %zu not zeroed", type, i);
        memset(buf + len - SDP_TAG_LEN, TAG_FILL, SDP_TAG_LEN);
    }
    struct sdp_pkt p, q;
    memset(&p, 0, sizeof p);
    memset(&q, 0xcc, sizeof q);
    cr_assert_eq(sdp_wire_decode(buf, len, &p), 0, "type %d: decode failed", type);
    cr_assert_eq(decoder_of[type](buf, len, &q), 0);
    cr_assert_eq(p.hdr.type, type);
    cr_assert_eq(q.hdr.rpc_id, p.hdr.rpc_id);
    struct sdp_hdr h;
    cr_assert_eq(sdp_wire_decode_hdr(buf, len, &h), 0);
    cr_assert_eq(h.type, type);
    cr_assert_eq(h.flags, p.hdr.flags);
    cr_assert_eq(h.rpc_id, p.hdr.rpc_id);
    if (sdp_pkt_is_ctl(type)) {
        cr_assert_eq(p.ctl.tag, buf + len - SDP_TAG_LEN);
        cr_assert_eq(p.ctl.aad_len, len - SDP_TAG_LEN);
        cr_assert_eq(q.ctl.seq, p.ctl.seq);
    }
    int m = reencode(&p, big_b, sizeof big_b);
    cr_assert_eq(m, n, "type %d: re-encoded length %d, want %d", type, m, n);
    size_t cmp = sdp_pkt_is_ctl(type) ? len - SDP_TAG_LEN : len;
    cr_assert_arr_eq(big_b, buf, cmp, "type %d: re-encoding differs", type);
    return p;
}

Test(wire_roundtrip, data_boundaries)
{
    static const struct {
        uint64_t id;
        uint8_t flags;
        uint32_t msg_len;
        uint16_t rec_size;
        uint64_t wire_len; /* expected */
        int at_end;        /* payload ends at wire_len, else starts at 0 */
        uint32_t plen;
    } c[] = {
        {1, 0, 0, 1, 16, 1, 16},                               /* empty message: one empty record */
        {SDP_ID_MAX, SDP_F_DEFINED, 0, 16384, 16, 0, 1},
        {SDP_ID_MAX - 1, SDP_F_RETRANSMIT, 1, 1, 17, 1, 17},
        {2, SDP_F_EARLY, 16384, 16384, 16400, 1, 1448},
        {3, 0, 16385, 16384, 16417, 0, 8948},
        {4, 0, 65536, 1, 65536 * 17, 1, 1},                    /* the most records, smallest size */
        {5, SDP_F_KEY_PHASE, SDP_MSG_LEN_MAX, 16384, (1u << 30) + (1u << 20), 1, 1},
        {6, 0, SDP_MSG_LEN_MAX, 16384, (1u << 30) + (1u << 20), 0, 60000},
    };
    static uint8_t pl[60000];
    for (size_t i = 0; i < sizeof pl; i++)
        pl[i] = (uint8_t)(i * 31 + 5);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        cr_assert_eq(sdp_msg_wire_len(c[i].msg_len, c[i].rec_size), c[i].wire_len, "case %zu", i);
        uint32_t off = c[i].at_end ? (uint32_t)(c[i].wire_len - c[i].plen) : 0;
        struct sdp_hdr h = {SDP_PKT_DATA, c[i].flags, c[i].id};
        struct sdp_data d = {.msg_len = c[i].msg_len, .offset = off, .unsched = (uint32_t)c[i].wire_len,
                             .rec_size = c[i].rec_size, .payload = pl, .payload_len = c[i].plen};
        int n = sdp_wire_encode_data(big_a, sizeof big_a, &h, &d);
        cr_assert_eq(n, 24 + (int)c[i].plen, "case %zu: %d", i, n);
        struct sdp_pkt p = roundtrip(big_a, n, SDP_PKT_DATA);
        cr_assert_eq(p.hdr.rpc_id, c[i].id);
        cr_assert_eq(p.hdr.flags, c[i].flags);
        cr_assert_eq(p.u.data.msg_len, c[i].msg_len);
        cr_assert_eq(p.u.data.rec_size, c[i].rec_size);
        cr_assert_eq(p.u.data.offset, off);
        cr_assert_eq(p.u.data.unsched, (uint32_t)c[i].wire_len);
        cr_assert_eq(p.u.data.payload_len, c[i].plen);
        cr_assert_arr_eq(p.u.data.payload, pl, c[i].plen);
        /* An unsched of 0 is legal too (everything scheduled). */
        d.unsched = 0;
        n = sdp_wire_encode_data(big_a, sizeof big_a, &h, &d);
        p = roundtrip(big_a, n, SDP_PKT_DATA);
        cr_assert_eq(p.u.data.unsched, 0);
    }
}

Test(wire_roundtrip, data_header_only_encoder)
{
    uint8_t full[64], hdr[24];
    uint8_t pl[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct sdp_hdr h = {0, SDP_F_EARLY, 0x10};
    struct sdp_data d = {.msg_len = 8, .offset = 0, .unsched = 24, .rec_size = 16384,
                         .payload = pl, .payload_len = 8};
    cr_assert_eq(sdp_wire_encode_data(full, sizeof full, &h, &d), 32);
    cr_assert_eq(sdp_wire_encode_data_hdr(hdr, sizeof hdr, &h, &d), 24);
    cr_assert_arr_eq(hdr, full, 24);
    cr_assert_eq(sdp_wire_encode_data_hdr(hdr, 23, &h, &d), SDP_WIRE_ENOSPACE);
    /* The payload may already sit in place, written there by the sealer. */
    uint8_t inplace[32] = {0};
    memcpy(inplace + 24, pl, 8);
    d.payload = inplace + 24;
    cr_assert_eq(sdp_wire_encode_data(inplace, sizeof inplace, &h, &d), 32);
    cr_assert_arr_eq(inplace, full, 32);
    /* h.type 0 means "the encoder's type". */
    cr_assert_eq(full[0], 0x11);
}

Test(wire_roundtrip, grant_resend_boundaries)
{
    static const uint64_t ids[] = {1, 2, SDP_ID_MAX - 1, SDP_ID_MAX};
    static const uint64_t seqs[] = {0, 1, UINT64_MAX};
    static const uint32_t offs[] = {0, 1, 0x7fffffff, UINT32_MAX};
    uint8_t buf[64];
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++)
            for (uint8_t prio = 0; prio < SDP_PRIO_LEVELS; prio += 7) {
                uint64_t seq = seqs[(i + j) % 3];
                struct sdp_hdr h = {SDP_PKT_GRANT, (uint8_t)(j & 1), ids[i]};
                struct sdp_grant g = {offs[j], prio};
                struct sdp_pkt p = roundtrip(buf, sdp_wire_encode_grant(buf, sizeof buf, &h, &g, seq), SDP_PKT_GRANT);
                cr_assert_eq(p.hdr.rpc_id, ids[i]);
                cr_assert_eq(p.hdr.flags, j & 1);
                cr_assert_eq(p.u.grant.offset, offs[j]);
                cr_assert_eq(p.u.grant.priority, prio);
                cr_assert_eq(p.ctl.seq, seq);
            }
    static const struct {
        uint32_t off, len;
    } r[] = {{0, 1}, {0, UINT32_MAX}, {UINT32_MAX - 1, 1}, {1, UINT32_MAX - 1}, {12345, 1448}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
        struct sdp_hdr h = {SDP_PKT_RESEND, SDP_F_KEY_PHASE, ids[i % 4]};
        struct sdp_resend rs = {r[i].off, r[i].len, (uint8_t)(i % 8)};
        struct sdp_pkt p = roundtrip(buf, sdp_wire_encode_resend(buf, sizeof buf, &h, &rs, UINT64_MAX - i),
                                     SDP_PKT_RESEND);
        cr_assert_eq(p.u.resend.offset, r[i].off);
        cr_assert_eq(p.u.resend.length, r[i].len);
        cr_assert_eq(p.u.resend.priority, i % 8);
        cr_assert_eq(p.ctl.seq, UINT64_MAX - i);
    }
}

Test(wire_roundtrip, empty_control_types)
{
    typedef int (*enc_fn)(uint8_t *, size_t, const struct sdp_hdr *, uint64_t);
    static const struct {
        uint8_t type;
        enc_fn enc;
    } t[] = {
        {SDP_PKT_UNKNOWN, sdp_wire_encode_unknown},
        {SDP_PKT_BUSY, sdp_wire_encode_busy},
        {SDP_PKT_NEED_ACK, sdp_wire_encode_need_ack},
    };
    static const uint64_t ids[] = {1, 2, SDP_ID_MAX};
    uint8_t buf[64];
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++) {
            struct sdp_hdr h = {t[i].type, (uint8_t)(j == 1), ids[j]};
            int n = t[i].enc(buf, sizeof buf, &h, UINT64_MAX - j);
            cr_assert_eq(n, 32);
            struct sdp_pkt p = roundtrip(buf, n, t[i].type);
            cr_assert_eq(p.hdr.rpc_id, ids[j]);
            cr_assert_eq(p.hdr.flags, j == 1);
            cr_assert_eq(p.ctl.seq, UINT64_MAX - j);
        }
}

Test(wire_roundtrip, ack_counts_1_to_8)
{
    uint8_t buf[128];
    for (uint8_t n = 1; n <= SDP_ACK_MAX; n++) {
        struct sdp_hdr h = {SDP_PKT_ACK, (uint8_t)(n & 1), 0};
        struct sdp_ack a = {.count = n};
        for (uint8_t i = 0; i < n; i++)
            a.ids[i] = i == 0 ? SDP_ID_MAX - 1 : (uint64_t)2 * i;
        int len = sdp_wire_encode_ack(buf, sizeof buf, &h, &a, n);
        cr_assert_eq(len, 16 + 6 * n + 24);
        struct sdp_pkt p = roundtrip(buf, len, SDP_PKT_ACK);
        cr_assert_eq(p.hdr.rpc_id, 0);
        cr_assert_eq(p.u.ack.count, n);
        for (uint8_t i = 0; i < SDP_ACK_MAX; i++)
            cr_assert_eq(p.u.ack.ids[i], i < n ? a.ids[i] : 0, "count %u id %u", n, i);
        cr_assert_eq(p.ctl.seq, n);
    }
}

Test(wire_roundtrip, cutoffs_counts_1_to_8)
{
    uint8_t buf[128];
    for (uint8_t n = 1; n <= SDP_CUTOFFS_MAX; n++) {
        struct sdp_hdr h = {SDP_PKT_CUTOFFS, 0, 0};
        struct sdp_cutoffs c = {.count = n};
        for (uint8_t i = 0; i < n; i++)
            c.cutoff[i] = i + 1 == n ? UINT32_MAX : (uint32_t)i * 1000;
        int len = sdp_wire_encode_cutoffs(buf, sizeof buf, &h, &c, 1000 + n);
        cr_assert_eq(len, 16 + 4 * n + 24);
        struct sdp_pkt p = roundtrip(buf, len, SDP_PKT_CUTOFFS);
        cr_assert_eq(p.u.cutoffs.count, n);
        for (uint8_t i = 0; i < n; i++)
            cr_assert_eq(p.u.cutoffs.cutoff[i], c.cutoff[i]);
        cr_assert_eq(p.ctl.seq, 1000u + n);
    }
}

Test(wire_roundtrip, handshake_boundaries)
{
    static uint8_t token[SDP_HS_TOKEN_MAX], payload[UINT16_MAX];
    for (size_t i = 0; i < sizeof token; i++)
        token[i] = (uint8_t)(0x80 + i);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ (i >> 8));
    static const struct {
        uint8_t kind, token_len;
        uint16_t payload_len;
        uint64_t conn_id;
        uint32_t so, ao;
    } c[] = {
        {SDP_HS_CLIENT, 0, 0, 0, 0, 0},
        {SDP_HS_SERVER, SDP_HS_TOKEN_MAX, UINT16_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX},
        {SDP_HS_RETRY, 32, 0, 1, 0, 0},
        {SDP_HS_CLOSE, 0, 1, 42, 1000, 2000},
        {SDP_HS_CLIENT, 1, 1200, 0x0123456789abcdefULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct sdp_hdr h = {0, 0, 0};
        struct sdp_handshake hs = {c[i].kind, c[i].conn_id, c[i].so, c[i].ao, token, c[i].token_len,
                                   payload, c[i].payload_len, 0};
        int n = sdp_wire_encode_handshake(big_a, sizeof big_a, &h, &hs);
        cr_assert_eq(n, 28 + c[i].token_len + c[i].payload_len, "case %zu: %d", i, n);
        struct sdp_pkt p = roundtrip(big_a, n, SDP_PKT_HANDSHAKE);
        cr_assert_eq(p.u.hs.kind, c[i].kind);
        cr_assert_eq(p.u.hs.conn_id, c[i].conn_id);
        cr_assert_eq(p.u.hs.stream_offset, c[i].so);
        cr_assert_eq(p.u.hs.ack_offset, c[i].ao);
        cr_assert_eq(p.u.hs.token_len, c[i].token_len);
        cr_assert_eq(p.u.hs.payload_len, c[i].payload_len);
        cr_assert_eq(p.u.hs.token, big_a + 28);
        cr_assert_eq(p.u.hs.payload, big_a + 28 + c[i].token_len);
        cr_assert_arr_eq(p.u.hs.token, token, c[i].token_len);
        cr_assert_arr_eq(p.u.hs.payload, payload, c[i].payload_len);
    }
}

/* ---- malformed packets: one fault per row ---- */

struct patch {
    int16_t off;
    uint8_t val;
};

struct bad_row {
    const char *what;
    enum base base;
    int len_delta; /* bytes cut (negative) or zero bytes appended */
    int exp;       /* from the type's own decoder */
    int exp_any;   /* from sdp_wire_decode, or SAME */
    size_t npatch;
    struct patch p[8];
};

#define SAME 1
#define P(o, v) {(o), (uint8_t)(v)}
#define U32(o, v) P(o, (uint32_t)(v) >> 24), P((o) + 1, (uint32_t)(v) >> 16), P((o) + 2, (uint32_t)(v) >> 8), P((o) + 3, (v))
#define NOP P(-1, 0)
#define ROW(w, b, d, e, ea, ...) \
    {w, b, d, e, ea, sizeof((struct patch[]){__VA_ARGS__}) / sizeof(struct patch), {__VA_ARGS__}}

static const struct bad_row bad_rows[] = {
    /* length, checked first */
    ROW("empty buffer", B_GRANT, -40, SDP_WIRE_ESHORT, SAME, NOP),
    ROW("7 bytes", B_UNKNOWN, -25, SDP_WIRE_ESHORT, SAME, NOP),
    ROW("DATA header only", B_DATA, -32, SDP_WIRE_ELENGTH, SAME, NOP),
    ROW("DATA 23 bytes", B_DATA, -33, SDP_WIRE_ESHORT, SAME, NOP),
    ROW("GRANT one byte short", B_GRANT, -1, SDP_WIRE_ESHORT, SAME, NOP),
    ROW("GRANT one byte long", B_GRANT, 1, SDP_WIRE_ELENGTH, SAME, NOP),
    ROW("RESEND one byte long", B_RESEND, 1, SDP_WIRE_ELENGTH, SAME, NOP),
    ROW("UNKNOWN one byte long", B_UNKNOWN, 1, SDP_WIRE_ELENGTH, SAME, NOP),
    ROW("ACK count 3 with 2 ids", B_ACK, 0, SDP_WIRE_ELENGTH, SAME, P(8, 3)),
    ROW("ACK count 1 with 2 ids", B_ACK, 0, SDP_WIRE_ELENGTH, SAME, P(8, 1)),
    ROW("ACK below fixed part", B_ACK, -13, SDP_WIRE_ESHORT, SAME, NOP),
    ROW("CUTOFFS count 2 with 3 values", B_CUTOFFS, 0, SDP_WIRE_ELENGTH, SAME, P(8, 2)),
    ROW("HANDSHAKE payload_len one more", B_HS, 0, SDP_WIRE_ELENGTH, SAME, P(11, 11)),
    ROW("HANDSHAKE token_len one less", B_HS, 0, SDP_WIRE_ELENGTH, SAME, P(9, 3)),
    ROW("HANDSHAKE payload_len high byte", B_HS, 0, SDP_WIRE_ELENGTH, SAME, P(10, 1)),
    ROW("HANDSHAKE 27 bytes", B_HS, -15, SDP_WIRE_ESHORT, SAME, NOP),
    /* version */
    ROW("version 0", B_DATA, 0, SDP_WIRE_EVERSION, SAME, P(0, 0x01)),
    ROW("version 2", B_GRANT, 0, SDP_WIRE_EVERSION, SAME, P(0, 0x22)),
    ROW("version 15 on ACK", B_ACK, 0, SDP_WIRE_EVERSION, SAME, P(0, 0xf7)),
    ROW("version 2 on HANDSHAKE", B_HS, 0, SDP_WIRE_EVERSION, SAME, P(0, 0x29)),
    ROW("version 2, reserved type 0", B_BUSY, 0, SDP_WIRE_EVERSION, SAME, P(0, 0x20)),
    /* type */
    ROW("reserved type 0", B_BUSY, 0, SDP_WIRE_ETYPE, SAME, P(0, 0x10)),
    ROW("reserved type 10", B_GRANT, 0, SDP_WIRE_ETYPE, SAME, P(0, 0x1a)),
    ROW("reserved type 15", B_DATA, 0, SDP_WIRE_ETYPE, SAME, P(0, 0x1f)),
    ROW("BUSY relabelled UNKNOWN", B_BUSY, 0, SDP_WIRE_ETYPE, 0, P(0, 0x14)),
    ROW("GRANT relabelled RESEND", B_GRANT, 0, SDP_WIRE_ETYPE, SDP_WIRE_ESHORT, P(0, 0x13)),
    ROW("CUTOFFS relabelled ACK", B_CUTOFFS, 0, SDP_WIRE_ETYPE, SDP_WIRE_ELENGTH, P(0, 0x17)),
    /* flags */
    ROW("DATA flag bit 3", B_DATA, 0, SDP_WIRE_EFLAGS, SAME, P(1, 0x09)),
    ROW("DATA flag bit 7", B_DATA, 0, SDP_WIRE_EFLAGS, SAME, P(1, 0x80)),
    ROW("GRANT RETRANSMIT", B_GRANT, 0, SDP_WIRE_EFLAGS, SAME, P(1, SDP_F_RETRANSMIT)),
    ROW("RESEND EARLY", B_RESEND, 0, SDP_WIRE_EFLAGS, SAME, P(1, SDP_F_EARLY)),
    ROW("UNKNOWN bit 4", B_UNKNOWN, 0, SDP_WIRE_EFLAGS, SAME, P(1, 0x10)),
    ROW("ACK RETRANSMIT", B_ACK, 0, SDP_WIRE_EFLAGS, SAME, P(1, SDP_F_RETRANSMIT)),
    ROW("CUTOFFS EARLY", B_CUTOFFS, 0, SDP_WIRE_EFLAGS, SAME, P(1, SDP_F_EARLY | SDP_F_KEY_PHASE)),
    ROW("HANDSHAKE KEY_PHASE", B_HS, 0, SDP_WIRE_EFLAGS, SAME, P(1, SDP_F_KEY_PHASE)),
    ROW("ok: DATA with every defined flag", B_DATA, 0, 0, SAME, P(1, SDP_F_DEFINED)),
    ROW("ok: NEED_ACK KEY_PHASE", B_NEED_ACK, 0, 0, SAME, P(1, SDP_F_KEY_PHASE)),
    /* reserved fields */
    ROW("DATA reserved high", B_DATA, 0, SDP_WIRE_ERESERVED, SAME, P(22, 0x80)),
    ROW("DATA reserved low", B_DATA, 0, SDP_WIRE_ERESERVED, SAME, P(23, 1)),
    ROW("GRANT reserved 13", B_GRANT, 0, SDP_WIRE_ERESERVED, SAME, P(13, 1)),
    ROW("GRANT reserved 15", B_GRANT, 0, SDP_WIRE_ERESERVED, SAME, P(15, 0xff)),
    ROW("RESEND reserved 17", B_RESEND, 0, SDP_WIRE_ERESERVED, SAME, P(17, 1)),
    ROW("RESEND reserved 19", B_RESEND, 0, SDP_WIRE_ERESERVED, SAME, P(19, 2)),
    ROW("ACK reserved 9", B_ACK, 0, SDP_WIRE_ERESERVED, SAME, P(9, 1)),
    ROW("ACK reserved 15", B_ACK, 0, SDP_WIRE_ERESERVED, SAME, P(15, 1)),
    ROW("CUTOFFS reserved 12", B_CUTOFFS, 0, SDP_WIRE_ERESERVED, SAME, P(12, 0x40)),
    /* ids */
    ROW("DATA id 0", B_DATA, 0, SDP_WIRE_EID, SAME, P(2, 0), P(3, 0), P(4, 0), P(5, 0), P(6, 0), P(7, 0)),
    ROW("GRANT id 0", B_GRANT, 0, SDP_WIRE_EID, SAME, P(4, 0), P(5, 0), P(6, 0), P(7, 0)),
    ROW("RESEND id 0", B_RESEND, 0, SDP_WIRE_EID, SAME, P(4, 0), P(5, 0), P(6, 0), P(7, 0)),
    ROW("UNKNOWN id 0", B_UNKNOWN, 0, SDP_WIRE_EID, SAME, P(7, 0)),
    ROW("BUSY id 0", B_BUSY, 0, SDP_WIRE_EID, SAME, P(7, 0)),
    ROW("NEED_ACK id 0", B_NEED_ACK, 0, SDP_WIRE_EID, SAME, P(7, 0)),
    ROW("ACK header id 1", B_ACK, 0, SDP_WIRE_EID, SAME, P(7, 1)),
    ROW("CUTOFFS header id 2^47", B_CUTOFFS, 0, SDP_WIRE_EID, SAME, P(2, 0x80)),
    ROW("HANDSHAKE id 2", B_HS, 0, SDP_WIRE_EID, SAME, P(7, 2)),
    ROW("ACK first id odd", B_ACK, 0, SDP_WIRE_EID, SAME, P(21, 3)),
    ROW("ACK first id 0", B_ACK, 0, SDP_WIRE_EID, SAME, P(21, 0)),
    ROW("ACK last id odd", B_ACK, 0, SDP_WIRE_EID, SAME, P(27, 0xff)),
    ROW("ok: UNKNOWN largest id", B_UNKNOWN, 0, 0, SAME, P(2, 0xff), P(3, 0xff), P(4, 0xff), P(5, 0xff),
        P(6, 0xff), P(7, 0xff)),
    /* record size */
    ROW("rec_size 0", B_DATA, 0, SDP_WIRE_ERECSIZE, SAME, P(20, 0), P(21, 0)),
    ROW("rec_size 16385", B_DATA, 0, SDP_WIRE_ERECSIZE, SAME, P(20, 0x40), P(21, 1)),
    ROW("rec_size 65535", B_DATA, 0, SDP_WIRE_ERECSIZE, SAME, P(20, 0xff), P(21, 0xff)),
    /* message length and record count */
    ROW("msg_len 2^30 + 1", B_DATA, 0, SDP_WIRE_EMSGLEN, SAME, U32(8, (1u << 30) + 1)),
    ROW("msg_len 2^32 - 1", B_DATA, 0, SDP_WIRE_EMSGLEN, SAME, U32(8, UINT32_MAX)),
    ROW("65537 records of 1 byte", B_DATA, 0, SDP_WIRE_EMSGLEN, SAME, U32(8, 65537), P(20, 0), P(21, 1)),
    ROW("2^30 bytes in 16383-byte records", B_DATA, 0, SDP_WIRE_EMSGLEN, SAME, U32(8, 1u << 30),
        P(20, 0x3f), P(21, 0xff)),
    ROW("ok: 65536 records of 1 byte", B_DATA, 0, 0, SAME, U32(8, 65536), P(20, 0), P(21, 1)),
    ROW("ok: 2^30 bytes in 16384-byte records", B_DATA, 0, 0, SAME, U32(8, 1u << 30), P(20, 0x40), P(21, 0)),
    /* ranges */
    ROW("DATA payload past wire end", B_DATA, 0, SDP_WIRE_ERANGE, SAME, U32(12, 101)),
    ROW("DATA offset 2^32 - 1", B_DATA, 0, SDP_WIRE_ERANGE, SAME, U32(12, UINT32_MAX)),
    ROW("DATA unsched past wire end", B_DATA, 0, SDP_WIRE_ERANGE, SAME, U32(16, 133)),
    ROW("DATA msg_len shrunk under payload", B_DATA, 0, SDP_WIRE_ERANGE, SAME, U32(8, 99)),
    ROW("DATA one record, same payload", B_DATA, 0, SDP_WIRE_ERANGE, SAME, P(20, 0x40), P(21, 0)),
    ROW("DATA extra payload byte", B_DATA, 1, SDP_WIRE_ERANGE, SAME, NOP),
    ROW("ok: DATA payload ends before wire end", B_DATA, 0, 0, SAME, U32(12, 99)),
    ROW("RESEND length 0", B_RESEND, 0, SDP_WIRE_ERANGE, SAME, U32(12, 0)),
    ROW("RESEND offset 2^32-1 length 1", B_RESEND, 0, SDP_WIRE_ERANGE, SAME, U32(8, UINT32_MAX), U32(12, 1)),
    ROW("RESEND offset 1 length 2^32-1", B_RESEND, 0, SDP_WIRE_ERANGE, SAME, U32(8, 1), U32(12, UINT32_MAX)),
    ROW("ok: RESEND offset 2^32-2 length 1", B_RESEND, 0, 0, SAME, U32(8, UINT32_MAX - 1), U32(12, 1)),
    /* counts */
    ROW("ACK count 0", B_ACK, -12, SDP_WIRE_ECOUNT, SAME, P(8, 0)),
    ROW("ACK count 9", B_ACK, 42, SDP_WIRE_ECOUNT, SAME, P(8, 9)),
    ROW("CUTOFFS count 0", B_CUTOFFS, -12, SDP_WIRE_ECOUNT, SAME, P(8, 0)),
    ROW("CUTOFFS count 9", B_CUTOFFS, 24, SDP_WIRE_ECOUNT, SAME, P(8, 9)),
    ROW("HANDSHAKE token_len 129", B_HS, 125, SDP_WIRE_ECOUNT, SAME, P(9, 129)),
    ROW("HANDSHAKE token_len 255", B_HS, 251, SDP_WIRE_ECOUNT, SAME, P(9, 255)),
    ROW("ok: HANDSHAKE token_len 128", B_HS, 124, 0, SAME, P(9, 128)),
    /* priorities */
    ROW("GRANT priority 8", B_GRANT, 0, SDP_WIRE_EPRIO, SAME, P(12, 8)),
    ROW("GRANT priority 255", B_GRANT, 0, SDP_WIRE_EPRIO, SAME, P(12, 255)),
    ROW("RESEND priority 8", B_RESEND, 0, SDP_WIRE_EPRIO, SAME, P(16, 8)),
    ROW("ok: GRANT priority 7", B_GRANT, 0, 0, SAME, P(12, 7)),
    /* cutoff order */
    ROW("CUTOFFS equal neighbours", B_CUTOFFS, 0, SDP_WIRE_EORDER, SAME, U32(20, 100)),
    ROW("CUTOFFS decreasing", B_CUTOFFS, 0, SDP_WIRE_EORDER, SAME, U32(24, 999)),
    ROW("ok: CUTOFFS starting at 0", B_CUTOFFS, 0, 0, SAME, U32(16, 0)),
    /* handshake kind */
    ROW("HANDSHAKE kind 0", B_HS, 0, SDP_WIRE_EKIND, SAME, P(8, 0)),
    ROW("HANDSHAKE kind 5", B_HS, 0, SDP_WIRE_EKIND, SAME, P(8, 5)),
    ROW("HANDSHAKE kind 255", B_HS, 0, SDP_WIRE_EKIND, SAME, P(8, 255)),
    ROW("ok: HANDSHAKE kind CLOSE", B_HS, 0, 0, SAME, P(8, SDP_HS_CLOSE)),
};

Test(wire_malformed, table)
{
    uint8_t buf[BASE_CAP];
    int hits[32] = {0}; /* by -(code) - 100 */
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        const struct bad_row *r = &bad_rows[i];
        size_t len = build(r->base, buf, sizeof buf, 1);
        len = (size_t)((long)len + r->len_delta);
        for (size_t k = 0; k < r->npatch; k++)
            if (r->p[k].off >= 0)
                buf[r->p[k].off] = r->p[k].val;
        uint8_t *pkt = exact_copy(buf, len);
        struct sdp_pkt out;
        int rc = decoder_of[base_type[r->base]](pkt, len, &out);
        cr_assert_eq(rc, r->exp, "row %zu (%s): own decoder gave %d (%s), want %d", i, r->what, rc,
                     sdp_wire_strerror(rc), r->exp);
        int want_any = r->exp_any == SAME ? r->exp : r->exp_any;
        rc = sdp_wire_decode(pkt, len, &out);
        cr_assert_eq(rc, want_any, "row %zu (%s): sdp_wire_decode gave %d, want %d", i, r->what, rc, want_any);
        if (r->exp < 0)
            hits[-r->exp - 100]++;
        free(pkt);
    }
    for (int code = SDP_WIRE_ESHORT; code >= SDP_WIRE_EKIND; code--)
        cr_assert_gt(hits[-code - 100], 0, "no row hits %d (%s)", code, sdp_wire_strerror(code));
}

Test(wire_malformed, every_truncation_rejected)
{
    uint8_t buf[BASE_CAP];
    struct sdp_pkt out;
    for (int b = 0; b < B_COUNT; b++) {
        size_t len = build((enum base)b, buf, sizeof buf, 1);
        uint8_t t = base_type[b];
        for (size_t l = 0; l < len; l++) {
            uint8_t *pkt = exact_copy(buf, l);
            int rc = decoder_of[t](pkt, l, &out);
            int rc_any = sdp_wire_decode(pkt, l, &out);
            free(pkt);
            if (t == SDP_PKT_DATA && l > SDP_DATA_HDR_LEN) {
                /* A shorter payload is still a valid DATA packet. */
                cr_assert_eq(rc, 0, "DATA cut to %zu: %d", l, rc);
                cr_assert_eq(rc_any, 0);
                cr_assert_eq(out.u.data.payload_len, l - SDP_DATA_HDR_LEN);
                continue;
            }
            cr_assert(rc == SDP_WIRE_ESHORT || rc == SDP_WIRE_ELENGTH, "type %u cut to %zu of %zu: %d", t, l, len,
                      rc);
            cr_assert_eq(rc_any, rc, "type %u cut to %zu: generic %d, own %d", t, l, rc_any, rc);
        }
        /* One trailing byte; for DATA it runs past the message's wire end.
         * Not zero: zeros after a CLIENT handshake packet are padding
         * (wire::handshake_client_padding). */
        uint8_t *pkt = exact_copy(buf, len + 1);
        pkt[len] = 0xa5;
        int want = t == SDP_PKT_DATA ? SDP_WIRE_ERANGE : SDP_WIRE_ELENGTH;
        cr_assert_eq(decoder_of[t](pkt, len + 1, &out), want, "type %u + 1 byte", t);
        cr_assert_eq(sdp_wire_decode(pkt, len + 1, &out), want);
        free(pkt);
    }
}

Test(wire_malformed, decoders_reject_other_types)
{
    uint8_t buf[BASE_CAP];
    struct sdp_pkt out;
    for (int b = 0; b < B_COUNT; b++) {
        size_t len = build((enum base)b, buf, sizeof buf, 1);
        for (uint8_t t = SDP_PKT_DATA; t <= SDP_PKT_HANDSHAKE; t++) {
            int rc = decoder_of[t](buf, len, &out);
            if (t == base_type[b]) {
                cr_assert_eq(rc, 0);
                continue;
            }
            /* Length comes first, so a wrong length may be what is seen. */
            cr_assert(rc == SDP_WIRE_ETYPE || rc == SDP_WIRE_ELENGTH || rc == SDP_WIRE_ESHORT,
                      "decoder %u on type %u: %d", t, base_type[b], rc);
        }
        /* With the length right for the decoder, only the type nibble differs. */
        for (uint8_t nib = 0; nib < 16; nib++) {
            if (nib == base_type[b])
                continue;
            uint8_t save = buf[0];
            buf[0] = (uint8_t)(SDP_WIRE_VERSION << 4 | nib);
            cr_assert_eq(decoder_of[base_type[b]](buf, len, &out), SDP_WIRE_ETYPE, "type %u as %u",
                         base_type[b], nib);
            buf[0] = save;
        }
    }
}

/* Random byte flips of valid packets: whatever decodes must re-encode to
 * the same bytes, and the generic decoder must agree with the type's. */
Test(wire_malformed, random_mutations_are_canonical)
{
    uint64_t seed = 0x5d9e1f0a3c7b2468u, x = seed;
    uint8_t buf[BASE_CAP];
    int accepted = 0;
    for (int it = 0; it < 200000; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        enum base b = (enum base)(x % B_COUNT);
        size_t len = build(b, buf, sizeof buf, 1);
        int nflip = 1 + (int)((x >> 8) % 3);
        for (int k = 0; k < nflip; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[(x >> 16) % len] = (uint8_t)(x >> 40);
        }
        struct sdp_pkt p, q;
        int rc = sdp_wire_decode(buf, len, &p);
        uint8_t t = buf[0] & 0x0f;
        if (decoder_of[t])
            cr_assert_eq(decoder_of[t](buf, len, &q), rc, "seed %#llx iteration %d", (unsigned long long)seed, it);
        if (rc != 0)
            continue;
        accepted++;
        int m = reencode(&p, big_b, sizeof big_b);
        cr_assert_eq(m, (int)len, "seed %#llx iteration %d", (unsigned long long)seed, it);
        size_t cmp = sdp_pkt_is_ctl(t) ? len - SDP_TAG_LEN : len;
        cr_assert_arr_eq(big_b, buf, cmp, "seed %#llx iteration %d", (unsigned long long)seed, it);
    }
    /* Flipping tag, payload or seq bytes keeps packets valid: some must pass. */
    cr_assert_gt(accepted, 1000);
}

/* ---- encoders: argument checks and capacity ---- */

Test(wire_encode, invalid_arguments)
{
    uint8_t buf[BASE_CAP], pl[4] = {0};
    const struct sdp_hdr data_h = {SDP_PKT_DATA, 0, 2};
    const struct sdp_data ok_d = {.msg_len = 4, .offset = 0, .unsched = 0, .rec_size = 4, .payload = pl,
                                  .payload_len = 4};
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &data_h, &ok_d), 28);
    struct sdp_data d;
    struct sdp_hdr h;
#define BAD_DATA(field, value)                                                                      \
    do {                                                                                            \
        d = ok_d;                                                                                   \
        d.field = value;                                                                            \
        cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &data_h, &d), SDP_WIRE_EINVAL, #field); \
        cr_assert_eq(sdp_wire_encode_data_hdr(buf, sizeof buf, &data_h, &d), SDP_WIRE_EINVAL);     \
    } while (0)
    BAD_DATA(rec_size, 0);
    BAD_DATA(rec_size, SDP_REC_SIZE_MAX + 1);
    BAD_DATA(msg_len, SDP_MSG_LEN_MAX + 1);
    BAD_DATA(payload_len, 0);
    BAD_DATA(payload_len, 21); /* wire_len is 4 + 16 = 20 */
    BAD_DATA(offset, 17);
    BAD_DATA(unsched, 21);
#undef BAD_DATA
    d = ok_d;
    d.msg_len = 65537, d.rec_size = 1, d.payload_len = 1;
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &data_h, &d), SDP_WIRE_EINVAL);
    d = ok_d;
    d.payload = NULL;
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &data_h, &d), SDP_WIRE_EINVAL);
    cr_assert_eq(sdp_wire_encode_data_hdr(buf, sizeof buf, &data_h, &d), 24); /* header only: no payload */
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &data_h, NULL), SDP_WIRE_EINVAL);
    cr_assert_eq(sdp_wire_encode_data(NULL, sizeof buf, &data_h, &ok_d), SDP_WIRE_EINVAL);
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, NULL, &ok_d), SDP_WIRE_EINVAL);

    /* Header rules, per type. */
    h = data_h, h.rpc_id = 0;
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &h, &ok_d), SDP_WIRE_EINVAL);
    h = data_h, h.rpc_id = SDP_ID_MAX + 1;
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &h, &ok_d), SDP_WIRE_EINVAL);
    h = data_h, h.flags = 0x08;
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &h, &ok_d), SDP_WIRE_EINVAL);
    h = data_h, h.type = SDP_PKT_GRANT;
    cr_assert_eq(sdp_wire_encode_data(buf, sizeof buf, &h, &ok_d), SDP_WIRE_EINVAL);

    struct sdp_grant g = {100, 8};
    h = (struct sdp_hdr){SDP_PKT_GRANT, 0, 3};
    cr_assert_eq(sdp_wire_encode_grant(buf, sizeof buf, &h, &g, 1), SDP_WIRE_EINVAL);
    g.priority = 7;
    cr_assert_eq(sdp_wire_encode_grant(buf, sizeof buf, &h, &g, 1), 40);
    h.flags = SDP_F_RETRANSMIT;
    cr_assert_eq(sdp_wire_encode_grant(buf, sizeof buf, &h, &g, 1), SDP_WIRE_EINVAL);
    h.flags = 0, h.rpc_id = 0;
    cr_assert_eq(sdp_wire_encode_grant(buf, sizeof buf, &h, &g, 1), SDP_WIRE_EINVAL);
    h.rpc_id = 3;
    cr_assert_eq(sdp_wire_encode_grant(buf, sizeof buf, &h, NULL, 1), SDP_WIRE_EINVAL);

    h = (struct sdp_hdr){SDP_PKT_RESEND, 0, 3};
    struct sdp_resend rs[] = {{0, 0, 0}, {UINT32_MAX, 1, 0}, {2, UINT32_MAX - 1, 0}, {0, 1, 8}};
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(sdp_wire_encode_resend(buf, sizeof buf, &h, &rs[i], 1), SDP_WIRE_EINVAL, "resend %zu", i);

    h = (struct sdp_hdr){SDP_PKT_UNKNOWN, SDP_F_EARLY, 3};
    cr_assert_eq(sdp_wire_encode_unknown(buf, sizeof buf, &h, 1), SDP_WIRE_EINVAL);
    h = (struct sdp_hdr){SDP_PKT_BUSY, 0, 0};
    cr_assert_eq(sdp_wire_encode_busy(buf, sizeof buf, &h, 1), SDP_WIRE_EINVAL);
    h = (struct sdp_hdr){SDP_PKT_BUSY, 0, 1};
    cr_assert_eq(sdp_wire_encode_need_ack(buf, sizeof buf, &h, 1), SDP_WIRE_EINVAL); /* type mismatch */
    h.type = 0;
    cr_assert_eq(sdp_wire_encode_need_ack(buf, sizeof buf, &h, 1), 32);
    cr_assert_eq(buf[0], 0x16);

    h = (struct sdp_hdr){SDP_PKT_ACK, 0, 0};
    struct sdp_ack a = {.count = 0};
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), SDP_WIRE_EINVAL);
    a.count = 9;
    for (int i = 0; i < SDP_ACK_MAX; i++)
        a.ids[i] = 2;
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), SDP_WIRE_EINVAL);
    a.count = 2;
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), 52);
    a.ids[1] = 3;
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), SDP_WIRE_EINVAL);
    a.ids[1] = 0;
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), SDP_WIRE_EINVAL);
    a.ids[1] = SDP_ID_MAX + 1; /* even, but 49 bits */
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), SDP_WIRE_EINVAL);
    a.ids[1] = 4, h.rpc_id = 2;
    cr_assert_eq(sdp_wire_encode_ack(buf, sizeof buf, &h, &a, 1), SDP_WIRE_EINVAL);

    h = (struct sdp_hdr){SDP_PKT_CUTOFFS, 0, 0};
    struct sdp_cutoffs c = {.count = 0};
    cr_assert_eq(sdp_wire_encode_cutoffs(buf, sizeof buf, &h, &c, 1), SDP_WIRE_EINVAL);
    c = (struct sdp_cutoffs){.count = 9, .cutoff = {1, 2, 3, 4, 5, 6, 7, 8}};
    cr_assert_eq(sdp_wire_encode_cutoffs(buf, sizeof buf, &h, &c, 1), SDP_WIRE_EINVAL);
    c.count = 8;
    cr_assert_eq(sdp_wire_encode_cutoffs(buf, sizeof buf, &h, &c, 1), 72);
    c.cutoff[7] = 7;
    cr_assert_eq(sdp_wire_encode_cutoffs(buf, sizeof buf, &h, &c, 1), SDP_WIRE_EINVAL);
    h.rpc_id = 4, c.cutoff[7] = 8;
    cr_assert_eq(sdp_wire_encode_cutoffs(buf, sizeof buf, &h, &c, 1), SDP_WIRE_EINVAL);

    h = (struct sdp_hdr){SDP_PKT_HANDSHAKE, 0, 0};
    struct sdp_handshake hs = {.kind = SDP_HS_RETRY, .token = pl, .token_len = 4, .payload = pl, .payload_len = 4};
    cr_assert_eq(sdp_wire_encode_handshake(buf, sizeof buf, &h, &hs), 36);
    struct sdp_handshake bad[5] = {hs, hs, hs, hs, hs};
    bad[0].kind = 0;
    bad[1].kind = 5;
    bad[2].token_len = SDP_HS_TOKEN_MAX + 1;
    bad[3].token = NULL;
    bad[4].payload = NULL;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sdp_wire_encode_handshake(buf, sizeof buf, &h, &bad[i]), SDP_WIRE_EINVAL, "hs %d", i);
    h.flags = SDP_F_KEY_PHASE;
    cr_assert_eq(sdp_wire_encode_handshake(buf, sizeof buf, &h, &hs), SDP_WIRE_EINVAL);
    h.flags = 0, h.rpc_id = 2;
    cr_assert_eq(sdp_wire_encode_handshake(buf, sizeof buf, &h, &hs), SDP_WIRE_EINVAL);
}

/* Every sample again through its encoder with too little room: ENOSPACE
 * and not a byte written; exactly enough room works. */
Test(wire_encode, capacity_checked_before_writing)
{
    uint8_t ref[BASE_CAP], buf[BASE_CAP], canary[BASE_CAP];
    memset(canary, 0xee, sizeof canary);
    for (int b = 0; b < B_COUNT; b++) {
        size_t len = build((enum base)b, ref, sizeof ref, 0);
        struct sdp_pkt p;
        cr_assert_eq(sdp_wire_decode(ref, len, &p), 0);
        for (size_t cap = 0; cap < len; cap++) {
            memset(buf, 0xee, sizeof buf);
            cr_assert_eq(reencode(&p, buf, cap), SDP_WIRE_ENOSPACE, "type %u cap %zu", base_type[b], cap);
            cr_assert_arr_eq(buf, canary, sizeof buf, "type %u cap %zu: buffer written", base_type[b], cap);
        }
        memset(buf, 0xff, sizeof buf);
        cr_assert_eq(reencode(&p, buf, len), (int)len);
        cr_assert_arr_eq(buf, ref, len);
        cr_assert_eq(buf[len], 0xff, "wrote past the packet");
    }
}

/* ---- layout helpers (section 4) ---- */

Test(wire_layout, record_counts_and_lengths)
{
    cr_assert_eq(sdp_msg_nrec(0, 16384), 1);
    cr_assert_eq(sdp_msg_nrec(0, 1), 1);
    cr_assert_eq(sdp_msg_nrec(1, 1), 1);
    cr_assert_eq(sdp_msg_nrec(16384, 16384), 1);
    cr_assert_eq(sdp_msg_nrec(16385, 16384), 2);
    cr_assert_eq(sdp_msg_nrec(SDP_MSG_LEN_MAX, 16384), 65536);
    cr_assert_eq(sdp_msg_nrec(UINT32_MAX, 1), UINT32_MAX);
    cr_assert_eq(sdp_msg_nrec(100, 0), 0);

    cr_assert_eq(sdp_msg_wire_len(0, 16384), 16);
    cr_assert_eq(sdp_msg_wire_len(0, 1), 16);
    cr_assert_eq(sdp_msg_wire_len(100, 64), 132);
    cr_assert_eq(sdp_msg_wire_len(SDP_MSG_LEN_MAX, 16384), UINT64_C(1074790400));
    cr_assert_eq(sdp_msg_wire_len(UINT32_MAX, 1), (uint64_t)UINT32_MAX * 17);

    cr_assert_eq(sdp_rec_len(0, 16384, 0), 0);
    cr_assert_eq(sdp_rec_len(100, 64, 0), 64);
    cr_assert_eq(sdp_rec_len(100, 64, 1), 36);
    cr_assert_eq(sdp_rec_len(100, 64, 2), 0);
    cr_assert_eq(sdp_rec_len(128, 64, 1), 64);
    cr_assert_eq(sdp_rec_len(SDP_MSG_LEN_MAX, 16384, 65535), 16384);
    cr_assert_eq(sdp_rec_len(SDP_MSG_LEN_MAX - 1, 16384, 65535), 16383);
    cr_assert_eq(sdp_rec_len(UINT32_MAX, 16384, 262143), 16383);

    cr_assert_eq(sdp_rec_wire_off(64, 0), 0);
    cr_assert_eq(sdp_rec_wire_off(64, 1), 80);
    cr_assert_eq(sdp_rec_wire_off(16384, 65535), UINT64_C(65535) * 16400);
    cr_assert_eq(sdp_rec_wire_off(UINT16_MAX, UINT32_MAX), (uint64_t)UINT32_MAX * (UINT16_MAX + 16));
}

Test(wire_layout, layout_ok_limits)
{
    cr_assert_eq(sdp_msg_layout_ok(0, 1), 0);
    cr_assert_eq(sdp_msg_layout_ok(0, 16384), 0);
    cr_assert_eq(sdp_msg_layout_ok(SDP_MSG_LEN_MAX, 16384), 0);
    cr_assert_eq(sdp_msg_layout_ok(65536, 1), 0);
    cr_assert_eq(sdp_msg_layout_ok(0, 0), SDP_WIRE_ERECSIZE);
    cr_assert_eq(sdp_msg_layout_ok(1, 16385), SDP_WIRE_ERECSIZE);
    cr_assert_eq(sdp_msg_layout_ok(SDP_MSG_LEN_MAX + 1, 16384), SDP_WIRE_EMSGLEN);
    cr_assert_eq(sdp_msg_layout_ok(65537, 1), SDP_WIRE_EMSGLEN);
    cr_assert_eq(sdp_msg_layout_ok(SDP_MSG_LEN_MAX, 16383), SDP_WIRE_EMSGLEN);
    cr_assert_eq(sdp_msg_layout_ok(65536u * 16383, 16383), 0);
    cr_assert_eq(sdp_msg_layout_ok(65536u * 16383 + 1, 16383), SDP_WIRE_EMSGLEN);
}

/* Against the definitions: the records tile the message, and the last
 * record's tag ends exactly at wire_len. */
Test(wire_layout, records_tile_the_message)
{
    static const uint16_t sizes[] = {1, 2, 3, 7, 64, 1000, 1448, 16383, 16384};
    static const uint32_t lens[] = {0, 1, 2, 3, 63, 64, 65, 1000, 16383, 16384, 16385, 65536, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            uint16_t rs = sizes[i];
            uint32_t ml = lens[j];
            if (sdp_msg_layout_ok(ml, rs) != 0)
                continue;
            uint32_t n = sdp_msg_nrec(ml, rs);
            uint64_t sum = 0;
            for (uint32_t k = 0; k < n; k++) {
                uint32_t rl = sdp_rec_len(ml, rs, k);
                cr_assert(rl == rs || (k + 1 == n && rl <= rs), "ml %u rs %u rec %u len %u", ml, rs, k, rl);
                cr_assert_eq(sdp_rec_wire_off(rs, k), (uint64_t)k * rs + 16ull * k);
                sum += rl;
            }
            cr_assert_eq(sum, ml);
            cr_assert_eq(sdp_rec_wire_off(rs, n - 1) + sdp_rec_len(ml, rs, n - 1) + 16, sdp_msg_wire_len(ml, rs),
                         "ml %u rs %u", ml, rs);
        }
}

/* ---- the small things ---- */

Test(wire_misc, is_ctl)
{
    for (int t = 0; t < 256; t++)
        cr_assert_eq(sdp_pkt_is_ctl((uint8_t)t), t >= SDP_PKT_GRANT && t <= SDP_PKT_CUTOFFS, "type %d", t);
}

Test(wire_misc, strerror_distinct)
{
    const char *unknown = sdp_wire_strerror(-1);
    cr_assert_not_null(unknown);
    for (int a = SDP_WIRE_ESHORT; a >= SDP_WIRE_EINVAL; a--) {
        const char *sa = sdp_wire_strerror(a);
        cr_assert_not_null(sa);
        cr_assert_str_neq(sa, unknown, "code %d has no message", a);
        for (int b = a - 1; b >= SDP_WIRE_EINVAL; b--)
            cr_assert_str_neq(sa, sdp_wire_strerror(b), "codes %d and %d share a message", a, b);
    }
    cr_assert_str_eq(sdp_wire_strerror(SDP_WIRE_ESHORT - 100), unknown);
}

Test(wire_misc, decode_hdr_rules)
{
    uint8_t buf[BASE_CAP];
    struct sdp_hdr h;
    for (int b = 0; b < B_COUNT; b++) {
        size_t len = build((enum base)b, buf, sizeof buf, 1);
        cr_assert_eq(sdp_wire_decode_hdr(buf, len, &h), 0);
        cr_assert_eq(sdp_wire_decode_hdr(buf, SDP_HDR_LEN, &h), 0, "the header alone is enough");
        cr_assert_eq(h.type, base_type[b]);
        cr_assert_eq(sdp_wire_decode_hdr(buf, SDP_HDR_LEN - 1, &h), SDP_WIRE_ESHORT);
    }
    static const struct {
        uint8_t b[8];
        int exp;
    } c[] = {
        {{0x11, 0, 0, 0, 0, 0, 0, 1}, 0},
        {{0x11, 0, 0, 0, 0, 0, 0, 0}, SDP_WIRE_EID},
        {{0x17, 0, 0, 0, 0, 0, 0, 2}, SDP_WIRE_EID},
        {{0x18, 1, 0, 0, 0, 0, 0, 0}, 0},
        {{0x19, 0, 0, 0, 0, 0, 1, 0}, SDP_WIRE_EID},
        {{0x19, 1, 0, 0, 0, 0, 0, 0}, SDP_WIRE_EFLAGS},
        {{0x12, 2, 0, 0, 0, 0, 0, 1}, SDP_WIRE_EFLAGS},
        {{0x11, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0},
        {{0x1b, 0, 0, 0, 0, 0, 0, 1}, SDP_WIRE_ETYPE},
        {{0x10, 0, 0, 0, 0, 0, 0, 1}, SDP_WIRE_ETYPE},
        {{0x21, 0, 0, 0, 0, 0, 0, 1}, SDP_WIRE_EVERSION},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        cr_assert_eq(sdp_wire_decode_hdr(c[i].b, 8, &h), c[i].exp, "case %zu", i);
    cr_assert_eq(sdp_wire_decode_hdr(c[7].b, 8, &h), 0);
    cr_assert_eq(h.rpc_id, SDP_ID_MAX);
    cr_assert_eq(h.flags, SDP_F_DEFINED);
}

/* CLIENT packets may be zero-padded (PROTOCOL.md 8.2); other kinds may not,
 * and padding that is not zero is refused. */
Test(wire, handshake_client_padding)
{
    static uint8_t buf[2048];
    static const uint8_t payload[300] = {7};
    struct sdp_hdr h = {0, 0, 0};
    struct sdp_handshake hs = {.kind = SDP_HS_CLIENT, .conn_id = 9, .payload = payload, .payload_len = 300,
                               .pad_to = 1200};
    int n = sdp_wire_encode_handshake(buf, sizeof buf, &h, &hs);
    cr_assert_eq(n, 1200);
    for (int i = 28 + 300; i < n; i++)
        cr_assert_eq(buf[i], 0);
    struct sdp_pkt p;
    cr_assert_eq(sdp_wire_decode(buf, (size_t)n, &p), 0);
    cr_assert_eq(p.u.hs.payload_len, 300);
    cr_assert_eq(p.u.hs.pad_to, 1200);
    cr_assert_eq(memcmp(p.u.hs.payload, payload, 300), 0);
    buf[1199] = 1;
    cr_assert_eq(sdp_wire_decode(buf, (size_t)n, &p), SDP_WIRE_ELENGTH);
    buf[1199] = 0;
    cr_assert_eq(sdp_wire_encode_handshake(buf, 1199, &h, &hs), SDP_WIRE_ENOSPACE);
    /* Padding asked of a SERVER packet is not applied, and a padded SERVER
     * packet does not decode. */
    hs.kind = SDP_HS_SERVER;
    n = sdp_wire_encode_handshake(buf, sizeof buf, &h, &hs);
    cr_assert_eq(n, 28 + 300);
    memset(buf + n, 0, 100);
    cr_assert_eq(sdp_wire_decode(buf, (size_t)n + 100, &p), SDP_WIRE_ELENGTH);
    cr_assert_eq(sdp_wire_decode(buf, (size_t)n, &p), 0);
    cr_assert_eq(p.u.hs.pad_to, 0);
}
