/* sdp_wire_decode_data: anything accepted re-encodes to the same bytes. */
#include "fuzz_wire_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_wire_run(sdp_wire_decode_data, SDP_PKT_DATA, data, size);
    return 0;
}
