/* libsdp: a secure datagram transport for datacenters.
 *
 * Result convention, used by every function of this API that returns int:
 * 0 (or a non-negative count where stated) on success, a negative SDP_E*
 * code on failure.  Each code below says what the caller should do about it.
 */
#ifndef SDP_SDP_H
#define SDP_SDP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SDP_VERSION_MAJOR 0
#define SDP_VERSION_MINOR 1

enum sdp_error {
    SDP_OK = 0,
    /* An argument is out of range or inconsistent. A programming error:
     * fix the call; retrying the same call fails the same way. */
    SDP_EINVAL = -1,
    /* Memory (or a configured pool) is exhausted. Free buffers or raise
     * the configured limit; the call may succeed later. */
    SDP_ENOMEM = -2,
    /* Authentication failed: the record or packet was forged, corrupted
     * or sealed under another key. Drop it; it has been counted. Never
     * use its contents. */
    SDP_EBADMSG = -3,
    /* The crypto library failed internally (not an authentication
     * failure). Treat the key as unusable: tear down and re-key. */
    SDP_ECRYPTO = -4,
    /* The requested provider or feature is not available on this machine
     * (e.g. AES-GCM in libsodium without AES-NI). Pick another provider. */
    SDP_EUNAVAIL = -5,
    /* The insecure null provider was requested without explicitly allowing
     * it. Only benchmarks that measure crypto cost should allow it. */
    SDP_EINSECURE = -6,
    /* The key reached its AEAD usage limit. Update the key (or re-run the
     * handshake) before sealing or opening more. */
    SDP_EKEYLIMIT = -7,
    /* A replayed or too-old message id. Drop it; it has been counted. */
    SDP_EREPLAY = -8,
    /* An asynchronous operation was queued and completes later; poll for
     * its completion. Not an error. */
    SDP_EINPROGRESS = -9,
    /* The message exceeds the configured or protocol size limit. Split it
     * or raise the limit. */
    SDP_ETOOBIG = -10,
    /* No keys are installed for the peer. Install keys or run the
     * handshake first; nothing was sent. */
    SDP_ENOKEY = -11,
    /* The operation did not complete in time (e.g. an RPC's peer stopped
     * answering). The RPC's state is freed; retry if the request is
     * idempotent. */
    SDP_ETIMEDOUT = -12,
    /* Nothing is ready now. Wait for readiness and retry. */
    SDP_EAGAIN = -13,
    /* A wire packet is malformed. Drop it; it has been counted. */
    SDP_EPROTO = -14,
    /* A configured limit (peers, messages, bytes) would be exceeded. Back
     * off and retry later, or raise the limit. */
    SDP_ELIMIT = -15,
    /* The peer does not know this RPC (it restarted or forgot it). The RPC
     * failed; retry if the request is idempotent. */
    SDP_EUNKNOWN = -16,
    /* An operating-system call failed; errno-style detail is in the log or
     * the statistics. Check the system (ports, permissions, limits). */
    SDP_ESYSTEM = -17,
};

/* A static, human-readable description of an SDP_E* code (never NULL). */
const char *sdp_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
