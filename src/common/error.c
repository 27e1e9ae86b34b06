#include "sdp/sdp.h"

const char *sdp_strerror(int err)
{
    switch (err) {
    case SDP_OK: return "success";
    case SDP_EINVAL: return "invalid argument";
    case SDP_ENOMEM: return "out of memory or pool exhausted";
    case SDP_EBADMSG: return "authentication failed (forged, corrupted or wrong key)";
    case SDP_ECRYPTO: return "crypto library failure";
    case SDP_EUNAVAIL: return "provider or feature not available here";
    case SDP_EINSECURE: return "insecure null provider refused (not explicitly allowed)";
    case SDP_EKEYLIMIT: return "key usage limit reached: update the key";
    case SDP_EREPLAY: return "replayed or too-old message id";
    case SDP_EINPROGRESS: return "operation in progress";
    case SDP_ETOOBIG: return "message too big";
    case SDP_ENOKEY: return "no keys installed for peer";
    case SDP_ETIMEDOUT: return "timed out";
    case SDP_EAGAIN: return "try again";
    case SDP_EPROTO: return "malformed packet";
    case SDP_ELIMIT: return "configured limit reached";
    case SDP_EUNKNOWN: return "peer does not know this RPC";
    case SDP_ESYSTEM: return "operating-system call failed";
    case SDP_EHANDSHAKE: return "handshake failed";
    case SDP_ECERTUNTRUSTED: return "peer certificate not trusted (unknown CA)";
    case SDP_ECERTEXPIRED: return "peer certificate expired or not yet valid";
    case SDP_ECERTNAME: return "peer certificate name mismatch";
    case SDP_EPIN: return "peer certificate does not match the pinned fingerprint";
    case SDP_EPSK: return "pre-shared key mismatch";
    default: return "unknown error";
    }
}
