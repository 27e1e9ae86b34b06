/* The engine side of the sdp_kshim module: attach, send descriptors, and
 * receive batches (see kshim.h and docs/KSHIM.md). */
#include "engine/kshim.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../../kshim/uapi/sdp_kshim.h"
#include "core/core_ext.h"
#include "crypto/aead_kshim.h"
#include "crypto/record.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#define KSHIM_RX_BYTES 65536 /* a receive buffer's payload at most */
#define KSHIM_CARRY_MAX (SDP_REC_SIZE_MAX + SDP_TAG_LEN)

/* A run of consecutive datagrams carrying contiguous bytes of one message. */
struct run {
    uint32_t key_id;
    uint64_t id;
    uint32_t msg_len, start, end, base; /* wire range [start, end), copied at ct + base */
    uint16_t rec_size;
};

struct sdp_kshim_eng {
    int dev;
    int ring_ok;
    struct io_uring ring;          /* open batches: one SQE per burst */
    uint8_t *ct, *pt;              /* a burst's records: ciphertext copies, plaintext */
    struct sdp_kshim_op *ops;
    struct sdp_aead_kshim_opened *recs;
    uint32_t nops, used;
    /* The record a burst ended inside: its bytes so far, joined to the
     * next burst when that one continues it (GRO cuts where it likes). */
    struct run carry;
    struct sdp_core_addr carry_from;
    uint8_t *carry_bytes;
};

int sdp_kshim_eng_new(int sock_fd, struct sdp_kshim_eng **out)
{
    *out = NULL;
    int rc = sdp_aead_kshim_attach(sock_fd);
    if (rc != 0)
        return rc;
    struct sdp_kshim_eng *k = calloc(1, sizeof(*k));
    if (!k)
        return SDP_ENOMEM;
    k->dev = sdp_aead_kshim_dev_fd();
    k->ct = malloc(KSHIM_RX_BYTES + KSHIM_CARRY_MAX);
    k->carry_bytes = malloc(KSHIM_CARRY_MAX);
    k->pt = malloc(KSHIM_RX_BYTES + KSHIM_CARRY_MAX);
    k->ops = calloc(SDP_KSHIM_BATCH_MAX, sizeof(*k->ops));
    k->recs = calloc(SDP_KSHIM_BATCH_MAX, sizeof(*k->recs));
    if (!k->ct || !k->pt || !k->ops || !k->recs || !k->carry_bytes) {
        sdp_kshim_eng_free(k);
        return SDP_ENOMEM;
    }
    /* Without a ring (io_uring refused) the batch goes through the ioctl. */
    k->ring_ok = io_uring_queue_init(4, &k->ring, 0) == 0;
    *out = k;
    return 0;
}

void sdp_kshim_eng_free(struct sdp_kshim_eng *k)
{
    if (!k)
        return;
    if (k->ring_ok)
        io_uring_queue_exit(&k->ring);
    free(k->ct);
    free(k->pt);
    free(k->ops);
    free(k->recs);
    free(k->carry_bytes);
    free(k);
}

int sdp_kshim_eng_tx(struct sdp_udp_tx *tx, const struct sdp_core_seg_desc *d, size_t len)
{
    struct sdp_kshim_txdesc td;
    uint32_t id = sdp_aead_kshim_tx_id(d->seal_key);
    size_t used = tx->msg.msg_controllen;
    if (id == 0 || used + CMSG_SPACE(sizeof(td)) > sizeof(tx->ctl.buf))
        return SDP_EINVAL;
    memset(&td, 0, sizeof(td));
    td.key_id = id;
    /* The size UDP cuts at: gso_size, or the whole buffer when it is one datagram. */
    td.seg_size = (uint16_t)(len > d->seg_size ? d->seg_size : len);
    td.hdr_len = SDP_DATA_HDR_LEN;
    td.msg_id = d->msg_id;
    td.msg_len = d->msg_len;
    td.wire_off = d->wire_off;
    td.rec_size = d->rec_size;
    td.aad_flags = d->aad_flags;
    tx->msg.msg_control = tx->ctl.buf;
    tx->msg.msg_controllen = used + CMSG_SPACE(sizeof(td));
    struct cmsghdr *c = (struct cmsghdr *)(void *)(tx->ctl.buf + used);
    memset(c, 0, CMSG_SPACE(sizeof(td)));
    c->cmsg_level = SOL_SDP_KSHIM;
    c->cmsg_type = SDP_KSHIM_CMSG_TX;
    c->cmsg_len = CMSG_LEN(sizeof(td));
    memcpy(CMSG_DATA(c), &td, sizeof(td));
    sdp_aead_kshim_count_tx();
    return 0;
}

/* An op for every record wholly inside the run. */
static void run_flush(struct sdp_kshim_eng *k, const struct run *r)
{
    if (r->key_id == 0 || r->end <= r->start)
        return;
    uint32_t rw = (uint32_t)r->rec_size + SDP_TAG_LEN, nrec = sdp_msg_nrec(r->msg_len, r->rec_size);
    for (uint32_t i = (r->start + rw - 1) / rw; i < nrec && k->nops < SDP_KSHIM_BATCH_MAX; i++) {
        uint64_t off = sdp_rec_wire_off(r->rec_size, i);
        uint32_t rl = sdp_rec_len(r->msg_len, r->rec_size, i);
        if (off + rl + SDP_TAG_LEN > r->end)
            break;
        uint32_t at = r->base + (uint32_t)(off - r->start);
        struct sdp_kshim_op *o = &k->ops[k->nops++];
        memset(o, 0, sizeof(*o));
        o->key_id = r->key_id;
        o->flags = SDP_KSHIM_OP_RECORD;
        o->len = rl;
        o->in = (uintptr_t)(k->ct + at);
        o->out = (uintptr_t)(k->pt + at);
        o->tag = (uintptr_t)(k->ct + at + rl);
        o->msg_id = r->id;
        o->msg_len = r->msg_len;
        o->rec_size = r->rec_size;
        o->idx = i;
    }
}

/* Run the batch: one IORING_OP_URING_CMD on the device, waited for here
 * (the core reads the results next), or the ioctl twin without a ring. */
static int batch_run(struct sdp_kshim_eng *k)
{
    struct sdp_kshim_batch b = {.ops = (uintptr_t)k->ops, .count = k->nops};
    if (!k->ring_ok)
        return ioctl(k->dev, SDP_KSHIM_IOC_OPEN, &b) < 0 ? -errno : (int)k->nops;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&k->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, k->dev, NULL, 0, 0);
    sqe->cmd_op = SDP_KSHIM_CMD_OPEN;
    memcpy(sqe->cmd, &b, sizeof(b));
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait(&k->ring, 1);
    if (rc < 0)
        return rc;
    if ((rc = io_uring_wait_cqe(&k->ring, &cqe)) < 0)
        return rc;
    rc = cqe->res;
    io_uring_cqe_seen(&k->ring, cqe);
    return rc;
}

static int addr_same(const struct sdp_core_addr *a, const struct sdp_core_addr *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* Keep the bytes of the record the last run ended inside, from its start. */
static void keep_tail(struct sdp_kshim_eng *k, const struct run *r, const struct sdp_core_addr *from)
{
    uint32_t rw = (uint32_t)r->rec_size + SDP_TAG_LEN;
    k->carry.key_id = 0;
    if (r->key_id == 0 || r->end <= r->start)
        return;
    uint32_t s = r->end / rw * rw;
    if (s < r->start || s == r->end || (uint64_t)r->end >= sdp_msg_wire_len(r->msg_len, r->rec_size) ||
        r->end - s > KSHIM_CARRY_MAX)
        return; /* the record's start is not here, or the run ends on a boundary */
    memcpy(k->carry_bytes, k->ct + r->base + (s - r->start), r->end - s);
    k->carry = *r;
    k->carry.start = s;
    k->carry_from = *from;
}

void sdp_kshim_eng_rx_begin(struct sdp_kshim_eng *k, const struct sdp_core *core, const struct sdp_core_addr *from,
                            const uint8_t *buf, size_t len, uint16_t seg)
{
    struct run r = {0}, last = {0};
    size_t step = seg ? seg : len;
    k->nops = 0;
    k->used = 0;
    for (size_t off = 0; off < len && step; off += step) {
        size_t l = len - off < step ? len - off : step;
        struct sdp_pkt pk;
        if ((buf[off] & 0x0f) != SDP_PKT_DATA || sdp_wire_decode_data(buf + off, l, &pk) != 0 ||
            (pk.hdr.flags & SDP_F_EARLY)) {
            run_flush(k, &r);
            if (r.key_id)
                last = r; /* a control packet may close a burst after its data */
            r.key_id = 0;
            continue;
        }
        const struct sdp_data *d = &pk.u.data;
        if (k->used + d->payload_len > KSHIM_RX_BYTES + KSHIM_CARRY_MAX)
            break;
        if (!(r.key_id && r.id == pk.hdr.rpc_id && r.msg_len == d->msg_len && r.rec_size == d->rec_size &&
              r.end == d->offset)) {
            run_flush(k, &r);
            const struct sdp_aead_key *key =
                sdp_core_peer_rx_key(core, from, pk.hdr.flags & SDP_F_KEY_PHASE);
            r = (struct run){.key_id = sdp_aead_kshim_rx_id(key), .id = pk.hdr.rpc_id, .msg_len = d->msg_len,
                             .rec_size = d->rec_size, .start = d->offset, .end = d->offset, .base = k->used};
            const struct run *c = &k->carry;
            if (r.key_id && c->key_id == r.key_id && c->id == r.id && c->msg_len == r.msg_len &&
                c->rec_size == r.rec_size && c->end == r.start && addr_same(&k->carry_from, from)) {
                memcpy(k->ct + k->used, k->carry_bytes, c->end - c->start);
                k->used += c->end - c->start;
                r.start = c->start;
                k->carry.key_id = 0;
            }
        }
        memcpy(k->ct + k->used, d->payload, d->payload_len);
        k->used += d->payload_len;
        r.end += d->payload_len;
    }
    run_flush(k, &r);
    keep_tail(k, r.key_id ? &r : &last, from);
    if (k->nops == 0)
        return;
    int done = batch_run(k);
    if (done <= 0)
        return; /* the core opens each record by itself */
    sdp_aead_kshim_count_rx_batch((uint32_t)done);
    uint32_t n = 0;
    for (uint32_t i = 0; i < (uint32_t)done; i++) {
        const struct sdp_kshim_op *o = &k->ops[i];
        if (o->status != 0)
            continue; /* not offered: the core's own open fails and counts it */
        struct sdp_aead_kshim_opened *e = &k->recs[n++];
        e->rx_id = o->key_id;
        e->len = o->len;
        e->seq = sdp_rec_seq(o->msg_id, o->idx);
        sdp_rec_aad(e->aad, o->msg_id, o->idx, o->msg_len, o->len, 0);
        e->ct = (const uint8_t *)(uintptr_t)o->in;
        e->tag = (const uint8_t *)(uintptr_t)o->tag;
        e->pt = (const uint8_t *)(uintptr_t)o->out;
    }
    sdp_aead_kshim_opened_set(k->recs, n);
}

void sdp_kshim_eng_rx_end(struct sdp_kshim_eng *k)
{
    (void)k;
    sdp_aead_kshim_opened_set(NULL, 0);
}
