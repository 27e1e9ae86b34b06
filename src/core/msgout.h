/* An outgoing message: sealed once into its wire bytes (records back to
 * back, each ciphertext then tag), kept until the peer is done with it so
 * that every retransmission is byte-identical, and cut into DATA packets. */
#ifndef SDP_CORE_MSGOUT_H
#define SDP_CORE_MSGOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/pool.h"
#include "crypto/record.h"

#define SDP_MSGOUT_RTX_MAX 8
#define SDP_MSGOUT_GSO_SEGS 64 /* datagrams per segment */

struct sdp_msgout {
    uint8_t *wire;       /* NULL when the message is gone */
    size_t alloc;        /* bytes charged for wire */
    uint64_t id;         /* message id (our id for the RPC) */
    uint32_t msg_len;
    uint32_t wire_len;
    uint32_t unsched;    /* wire bytes sent without a grant */
    uint32_t granted;    /* wire bytes the receiver authorised */
    uint32_t next_off;   /* first wire byte never sent */
    uint16_t rec_size;
    uint8_t sched_prio;  /* from the last GRANT */
    uint8_t nrtx;
    uint8_t hdr_flags;   /* KEY_PHASE or EARLY of the key that sealed it, on every packet */
    uint32_t gen;        /* generation of that key */
    uint8_t plain;       /* wire holds plaintext records: segments cover whole records */
    struct {
        uint32_t off, end;
        uint8_t prio;
    } rtx[SDP_MSGOUT_RTX_MAX]; /* ranges to send again, oldest first */
};

/* Seal data into a new wire buffer charged to mem.  Errors: SDP_ENOMEM,
 * SDP_EKEYLIMIT, SDP_ECRYPTO, SDP_EINVAL. */
int sdp_msgout_init(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, uint64_t id,
                    const uint8_t *data, uint32_t len, uint16_t rec_size, uint32_t unsched);
/* The same, gathering the len plaintext bytes from iov: a record that lies
 * within one element is sealed straight from it, one that straddles
 * elements is gathered into its place in the wire buffer and sealed there. */
int sdp_msgout_initv(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, uint64_t id,
                     const struct iovec *iov, int iovcnt, uint32_t len, uint16_t rec_size, uint32_t unsched);
/* As sdp_msgout_initv but nothing is sealed: each record's place holds
 * its plaintext (tags zeroed) for a sealer below us (the kshim module, on
 * the send path), tx only names the generation.  Segments then start and
 * end on record boundaries and retransmissions cover whole records, so a
 * record is sealed again under its own nonce from the same plaintext. */
int sdp_msgout_initv_plain(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, uint64_t id,
                           const struct iovec *iov, int iovcnt, uint32_t len, uint16_t rec_size, uint32_t unsched);
void sdp_msgout_fini(struct sdp_msgout *m, struct sdp_mem *mem);

static inline int sdp_msgout_live(const struct sdp_msgout *m)
{
    return m->wire != NULL;
}
/* Has bytes it may send now (new granted bytes or retransmissions). */
static inline int sdp_msgout_ready(const struct sdp_msgout *m)
{
    return m->wire && (m->nrtx > 0 || m->next_off < m->granted);
}
static inline int sdp_msgout_all_sent(const struct sdp_msgout *m)
{
    return m->next_off >= m->wire_len;
}

void sdp_msgout_grant(struct sdp_msgout *m, uint32_t offset, uint8_t prio);
/* Queue [off, off+len) again (clipped to what was sent); 1 if queued. */
int sdp_msgout_resend(struct sdp_msgout *m, uint32_t off, uint32_t len, uint8_t prio);
/* Start over from byte 0 (the receiver lost all state). */
void sdp_msgout_restart(struct sdp_msgout *m);

/* Unscheduled priority for a message of msg_len bytes given cutoffs for
 * priorities 7, 6, ... (n of them). */
uint8_t sdp_msgout_unsched_prio(const uint32_t *cutoffs, unsigned n, uint32_t msg_len);

/* Write DATA packets for one GSO segment into buf (at most cap bytes), each
 * carrying up to max_payload wire bytes.  Returns the segment's bytes and
 * sets *npkts, *seg_size, *prio, *rtx_bytes; 0 when nothing is ready.
 * gather_min > 0: a segment of at least gather_min payload bytes is not
 * copied: buf gets only its *npkts headers back to back and *payload points
 * at the packets' payloads, contiguous in m's wire bytes (smaller segments
 * come whole in buf, *payload NULL). */
size_t sdp_msgout_build(struct sdp_msgout *m, uint8_t *buf, size_t cap, uint32_t max_payload,
                        uint8_t unsched_prio, size_t gather_min, const uint8_t **payload, uint32_t *npkts,
                        uint32_t *seg_size, uint8_t *prio, uint32_t *rtx_bytes);
/* Lay out a gathered segment (npkts headers at the front of buf, payloads
 * contiguous at payload, total bytes in all) as whole packets in buf. */
void sdp_msgout_flatten(uint8_t *buf, const uint8_t *payload, uint32_t npkts, uint32_t seg_size, size_t total);

#endif
