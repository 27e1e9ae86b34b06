#include "core/peer.h"

uint32_t sdp_peer_addr_hash(const struct sdp_core_addr *a)
{
    /* FNV-1a: addresses are installed by the application, not chosen by
     * the network, so a keyed hash buys nothing here. */
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < a->len && i < SDP_CORE_ADDR_MAX; i++)
        h = (h ^ a->bytes[i]) * 16777619u;
    return h;
}
