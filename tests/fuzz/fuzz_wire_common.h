/* Shared by the wire fuzzers.  Whatever a decoder accepts must be in
 * canonical form: re-encoding the decoded packet gives back exactly the
 * input (the control tag excepted: encoders zero it for the sealer). */
#ifndef SDP_FUZZ_WIRE_COMMON_H
#define SDP_FUZZ_WIRE_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*fuzz_wire_decoder)(const uint8_t *buf, size_t len, struct sdp_pkt *out);

static inline int fuzz_wire_reencode(const struct sdp_pkt *p, uint8_t *out, size_t cap)
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
    default: abort(); /* a decoder returned success for a type it does not know */
    }
}

static inline int fuzz_wire_within(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
    return p >= data && p <= data + size && n <= (size_t)(data + size - p);
}

/* Re-encode into a fresh buffer of exactly size bytes (ASan sees any
 * overrun) and compare. */
static inline void fuzz_wire_check(const uint8_t *data, size_t size, const struct sdp_pkt *p)
{
    uint8_t *out = malloc(size ? size : 1);
    if (out == NULL)
        abort();
    memset(out, 0xa5, size);
    int n = fuzz_wire_reencode(p, out, size);
    if (n < 0 || (size_t)n != size)
        abort();
    int ctl = sdp_pkt_is_ctl(p->hdr.type);
    size_t cmp = ctl ? size - SDP_TAG_LEN : size;
    if (memcmp(out, data, cmp) != 0)
        abort();
    for (size_t i = cmp; i < size; i++)
        if (out[i] != 0)
            abort();
    free(out);

    /* Pointers handed out must stay inside the input. */
    if (ctl && (p->ctl.tag != data + size - SDP_TAG_LEN || p->ctl.aad_len != size - SDP_TAG_LEN))
        abort();
    if (p->hdr.type == SDP_PKT_DATA && !fuzz_wire_within(data, size, p->u.data.payload, p->u.data.payload_len))
        abort();
    if (p->hdr.type == SDP_PKT_HANDSHAKE &&
        (!fuzz_wire_within(data, size, p->u.hs.token, p->u.hs.token_len) ||
         !fuzz_wire_within(data, size, p->u.hs.payload, p->u.hs.payload_len)))
        abort();
}

/* want is the decoder's own type, or 0 for sdp_wire_decode. */
static inline void fuzz_wire_run(fuzz_wire_decoder dec, uint8_t want, const uint8_t *data, size_t size)
{
    struct sdp_pkt p;
    int rc = dec(data, size, &p);
    if (rc > 0 || (rc < 0 && (rc > SDP_WIRE_ESHORT || rc < SDP_WIRE_EKIND)))
        abort(); /* not a decoder's code */
    /* The generic decoder must give the same answer for this type. */
    if (want && size > 0 && (data[0] & 0x0f) == want) {
        struct sdp_pkt q;
        if (sdp_wire_decode(data, size, &q) != rc)
            abort();
    }
    if (rc != 0)
        return;
    if (want && p.hdr.type != want)
        abort();
    fuzz_wire_check(data, size, &p);
}

#endif
