/* An incoming message: wire bytes are taken as they come (any order,
 * duplicates ignored) into the buffer the application will get, each
 * record at its plaintext offset and its tag aside.  A record whose bytes
 * arrive in order is decrypted straight from the packets into its place
 * (a streaming open, or one call when a packet holds the whole record);
 * bytes that arrive out of order are copied there as ciphertext and
 * decrypted in place once the bytes before them are in (docs/CORE.md).
 * Until one record has opened the message is unauthenticated and holds a
 * buffer for record 0 only (bounded state per forged packet); then the full
 * buffer is allocated and the message is delivered, buffer and all, once
 * every record has opened. */
#ifndef SDP_CORE_MSGIN_H
#define SDP_CORE_MSGIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/grant.h"
#include "core/pool.h"
#include "crypto/record.h"

#define SDP_MSGIN_GAPS 32
#define SDP_MSGIN_STREAMS 4 /* records of one message open at once by streams */
#define SDP_MSGIN_BLK_HDR 16 /* block header before the plaintext */

struct sdp_msgin {
    uint8_t *blk;        /* [header][plaintext][tags][opened bits], NULL when none */
    size_t alloc;
    uint8_t *buf;
    uint8_t *tags;
    uint8_t *opened;     /* one bit per record */
    uint64_t id;         /* message id (the sender's id) */
    uint32_t msg_len, wire_len, unsched, nrec;
    uint16_t rec_size;
    uint8_t staged;      /* buffer holds record 0 only (not yet authenticated) */
    uint8_t authed;      /* a record opened: msg_len and rec_size are genuine */
    uint32_t recv_high;  /* end of the highest byte received */
    uint32_t received;   /* distinct wire bytes held */
    uint32_t nopened;
    uint8_t ngaps;
    uint8_t nst;                                  /* streams held, ... */
    struct sdp_rec_stream *st[SDP_MSGIN_STREAMS]; /* ... each opening ... */
    uint32_t st_rec[SDP_MSGIN_STREAMS];           /* ... this record */
    struct {
        uint32_t s, e;
    } gaps[SDP_MSGIN_GAPS]; /* missing ranges below recv_high, ascending */
    struct sdp_grant_entry g;
};

struct sdp_msgin_res {
    uint32_t new_bytes;
    uint32_t opened;
    uint8_t authed_now;  /* the first record just opened */
    uint8_t complete;    /* every record has opened */
    uint8_t nomem;       /* could not grow to the full buffer */
    uint8_t gapdrop;     /* bytes dropped: too many gaps */
    uint32_t nfailed;    /* records that failed to open (bytes discarded) */
    uint32_t failed[4];  /* the first few of them */
    uint32_t direct;     /* ciphertext bytes decrypted straight from the packet */
    uint32_t inplace;    /* ... decrypted in place after being copied (fallback) */
};

/* Errors: SDP_ENOMEM. */
int sdp_msgin_init(struct sdp_msgin *m, struct sdp_mem *mem, uint64_t id, uint32_t msg_len, uint16_t rec_size,
                   uint32_t unsched);
void sdp_msgin_fini(struct sdp_msgin *m, struct sdp_mem *mem);
static inline int sdp_msgin_live(const struct sdp_msgin *m)
{
    return m->blk != NULL;
}
/* Take payload bytes at wire offset off (validated against wire_len by
 * the decoder).  Growing to the full buffer is refused above max_alloc.
 * Streams for in-order records come from rs (NULL: copy and open in place). */
void sdp_msgin_place(struct sdp_msgin *m, struct sdp_mem *mem, struct sdp_rec_key *rk, struct sdp_rec_streams *rs,
                     uint32_t off, const uint8_t *p, uint32_t len, size_t max_alloc, struct sdp_msgin_res *r);
/* First missing range below limit: 1 with *off and *len set, or 0. */
int sdp_msgin_missing(const struct sdp_msgin *m, uint32_t limit, uint32_t *off, uint32_t *len);
/* Wire range of record i. */
void sdp_msgin_rec_range(const struct sdp_msgin *m, uint32_t i, uint32_t *off, uint32_t *len);
/* Hand the plaintext over (complete messages); the block is then the
 * caller's, released with sdp_msgin_release. */
uint8_t *sdp_msgin_take(struct sdp_msgin *m);
void sdp_msgin_release(struct sdp_mem *mem, uint8_t *data);

#endif
