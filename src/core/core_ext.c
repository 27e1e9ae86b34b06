#include "core/core_ext.h"

#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

/* Gathers iov into one buffer when it has more than one element.  The
 * core seals from contiguous plaintext; *tmp is freed by the caller. */
static int gather(const struct iovec *iov, int iovcnt, const void **data, size_t *len, void **tmp)
{
    size_t total = 0;
    *tmp = NULL;
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return SDP_EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SDP_MSG_LEN_MAX - total)
            return SDP_ETOOBIG;
        total += iov[i].iov_len;
    }
    if (iovcnt <= 1) {
        *data = iovcnt ? iov[0].iov_base : NULL;
        *len = total;
        return 0;
    }
    uint8_t *b = malloc(total ? total : 1);
    if (!b)
        return SDP_ENOMEM;
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(b + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    *data = b;
    *len = total;
    *tmp = b;
    return 0;
}

int sdp_core_send_request_id(struct sdp_core *c, uint32_t peer, uint64_t id, const struct iovec *iov,
                             int iovcnt, uint64_t cookie, uint64_t now)
{
    if (!c || peer >= c->npeers || id == 0 || (id & 1) || id > SDP_ID_MAX - 1 ||
        sdp_rpc_find(&c->rpcs, peer, id))
        return SDP_EINVAL;
    const void *data;
    size_t len;
    void *tmp;
    int rc = gather(iov, iovcnt, &data, &len, &tmp);
    if (rc)
        return rc;
    /* The core allocates from the peer's counter: point it at our id. */
    c->peers[peer].next_id = id;
    uint64_t got = 0;
    rc = sdp_core_send_request(c, peer, data, len, cookie, now, &got);
    free(tmp);
    return rc;
}

int sdp_core_send_response_iov(struct sdp_core *c, uint32_t peer, uint64_t rpc_id, const struct iovec *iov,
                               int iovcnt, uint64_t now)
{
    const void *data;
    size_t len;
    void *tmp;
    int rc = gather(iov, iovcnt, &data, &len, &tmp);
    if (rc)
        return rc;
    rc = sdp_core_send_response(c, peer, rpc_id, data, len, now);
    free(tmp);
    return rc;
}
