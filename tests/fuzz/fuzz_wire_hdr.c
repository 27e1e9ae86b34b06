/* sdp_wire_decode_hdr: an accepted header re-serialises to the input's
 * first 8 bytes, and it agrees with the full decoder, which may only
 * accept what the header decoder accepts. */
#include "common/bytes.h"
#include "fuzz_wire_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sdp_hdr h;
    struct sdp_pkt p;
    int rc = sdp_wire_decode_hdr(data, size, &h);
    int full = sdp_wire_decode(data, size, &p);
    if (rc != 0) {
        if (full == 0)
            abort();
        return 0;
    }
    uint8_t out[SDP_HDR_LEN];
    const uint8_t *end = out + sizeof out;
    uint8_t *q = sdp_put_u8(out, end, (uint8_t)(SDP_WIRE_VERSION << 4 | h.type));
    q = sdp_put_u8(q, end, h.flags);
    q = sdp_put_u48be(q, end, h.rpc_id);
    if (q != end || memcmp(out, data, sizeof out) != 0)
        abort();
    if (full == 0) {
        if (p.hdr.type != h.type || p.hdr.flags != h.flags || p.hdr.rpc_id != h.rpc_id)
            abort();
        fuzz_wire_check(data, size, &p);
    }
    return 0;
}
