/* sdp_wire_decode_resend: anything accepted re-encodes to the same bytes. */
#include "fuzz_wire_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_wire_run(sdp_wire_decode_resend, SDP_PKT_RESEND, data, size);
    return 0;
}
