#include "core/msgout.h"

#include <string.h>

#include "sdp/sdp.h"
#include "wire/wire.h"

int sdp_msgout_init(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, uint64_t id,
                    const uint8_t *data, uint32_t len, uint16_t rec_size, uint32_t unsched)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return sdp_msgout_initv(m, mem, tx, id, &iov, 1, len, rec_size, unsched);
}

/* Where record plaintext comes from: a cursor over the iovec. */
struct iov_cursor {
    const struct iovec *iov;
    int n, i;
    size_t off;
};

/* Plaintext of the next rl bytes: a pointer into one element when they lie
 * within it, else the bytes copied into dst (which is then returned). */
static const uint8_t *iov_take(struct iov_cursor *c, uint32_t rl, uint8_t *dst)
{
    while (c->i < c->n && c->off == c->iov[c->i].iov_len) {
        c->i++;
        c->off = 0;
    }
    if (rl == 0)
        return dst;
    if (c->iov[c->i].iov_len - c->off >= rl) {
        const uint8_t *p = (const uint8_t *)c->iov[c->i].iov_base + c->off;
        c->off += rl;
        return p;
    }
    for (uint32_t got = 0; got < rl;) {
        size_t avail = c->iov[c->i].iov_len - c->off;
        size_t take = avail < rl - got ? avail : rl - got;
        if (take)
            memcpy(dst + got, (const uint8_t *)c->iov[c->i].iov_base + c->off, take);
        got += (uint32_t)take;
        c->off += take;
        if (c->off == c->iov[c->i].iov_len) {
            c->i++;
            c->off = 0;
        }
    }
    return dst;
}

/* plain: copy each record's plaintext into place instead of sealing it. */
static int msgout_fill(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, int plain, uint64_t id,
                       const struct iovec *iov, int iovcnt, uint32_t len, uint16_t rec_size, uint32_t unsched)
{
    memset(m, 0, sizeof(*m));
    if (!tx)
        return SDP_EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (iovcnt < 0 || total != len)
        return SDP_EINVAL;
    if (sdp_msg_layout_ok(len, rec_size) != 0)
        return SDP_ETOOBIG;
    uint64_t wl = sdp_msg_wire_len(len, rec_size);
    uint8_t *w = sdp_mem_alloc(mem, (size_t)wl);
    if (!w)
        return SDP_ENOMEM;
    uint32_t nrec = sdp_msg_nrec(len, rec_size);
    struct iov_cursor cur = {.iov = iov, .n = iovcnt};
    for (uint32_t i = 0; i < nrec; i++) {
        uint32_t rl = sdp_rec_len(len, rec_size, i);
        uint8_t *ct = w + sdp_rec_wire_off(rec_size, i);
        /* A gathered record is sealed in place (the providers allow it). */
        const uint8_t *pt = iov_take(&cur, rl, ct);
        int rc = 0;
        if (plain) {
            if (pt != ct && rl)
                memcpy(ct, pt, rl);
            memset(ct + rl, 0, SDP_TAG_LEN);
        } else {
            rc = sdp_rec_seal(tx, id, len, rec_size, i, 0, pt, ct, ct + rl);
        }
        if (rc != 0) {
            sdp_mem_free(mem, w, (size_t)wl);
            return rc;
        }
    }
    m->wire = w;
    m->alloc = (size_t)wl;
    m->id = id;
    m->msg_len = len;
    m->wire_len = (uint32_t)wl;
    m->rec_size = rec_size;
    m->plain = (uint8_t)plain;
    /* Sealed whole under one generation: every packet, retransmissions too,
     * names it. */
    m->gen = tx->generation;
    m->hdr_flags = (tx->aad_flags & SDP_F_EARLY) ? SDP_F_EARLY : (tx->generation & 1u) ? SDP_F_KEY_PHASE : 0;
    m->unsched = unsched < m->wire_len ? unsched : m->wire_len;
    m->granted = m->unsched;
    return 0;
}

int sdp_msgout_initv(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, uint64_t id,
                     const struct iovec *iov, int iovcnt, uint32_t len, uint16_t rec_size, uint32_t unsched)
{
    return msgout_fill(m, mem, tx, 0, id, iov, iovcnt, len, rec_size, unsched);
}

int sdp_msgout_initv_plain(struct sdp_msgout *m, struct sdp_mem *mem, struct sdp_rec_key *tx, uint64_t id,
                           const struct iovec *iov, int iovcnt, uint32_t len, uint16_t rec_size, uint32_t unsched)
{
    return msgout_fill(m, mem, tx, 1, id, iov, iovcnt, len, rec_size, unsched);
}

void sdp_msgout_fini(struct sdp_msgout *m, struct sdp_mem *mem)
{
    if (m->wire)
        sdp_mem_free(mem, m->wire, m->alloc);
    m->wire = NULL;
    m->alloc = 0;
    m->nrtx = 0;
}

void sdp_msgout_grant(struct sdp_msgout *m, uint32_t offset, uint8_t prio)
{
    if (offset > m->wire_len)
        offset = m->wire_len;
    if (offset > m->granted) {
        m->granted = offset;
        m->sched_prio = prio;
    }
}

/* Plaintext mode: record boundaries around wire offsets (the message end
 * is one too). */
static uint32_t rec_floor(const struct sdp_msgout *m, uint32_t x)
{
    uint32_t rw = (uint32_t)m->rec_size + SDP_TAG_LEN;
    return x >= m->wire_len ? m->wire_len : x / rw * rw;
}

static uint32_t rec_ceil(const struct sdp_msgout *m, uint64_t x)
{
    uint64_t rw = (uint64_t)m->rec_size + SDP_TAG_LEN;
    uint64_t c = (x + rw - 1) / rw * rw;
    return c >= m->wire_len ? m->wire_len : (uint32_t)c;
}

int sdp_msgout_resend(struct sdp_msgout *m, uint32_t off, uint32_t len, uint8_t prio)
{
    if (!m->wire)
        return 0;
    uint64_t end = (uint64_t)off + len;
    /* A RESEND also authorises the bytes it names (a lost GRANT). */
    sdp_msgout_grant(m, end > m->wire_len ? m->wire_len : (uint32_t)end, prio > m->sched_prio ? prio : m->sched_prio);
    if (m->plain) {
        off = rec_floor(m, off);
        end = rec_ceil(m, end);
    }
    if (end > m->next_off)
        end = m->next_off;
    if (off >= end)
        return 0;
    for (unsigned i = 0; i < m->nrtx; i++) {
        /* Merge with an overlapping queued range. */
        if (off <= m->rtx[i].end && end >= m->rtx[i].off) {
            if (off < m->rtx[i].off)
                m->rtx[i].off = off;
            if (end > m->rtx[i].end)
                m->rtx[i].end = (uint32_t)end;
            return 1;
        }
    }
    if (m->nrtx == SDP_MSGOUT_RTX_MAX)
        return 0; /* the receiver asks again after its next silence */
    m->rtx[m->nrtx].off = off;
    m->rtx[m->nrtx].end = (uint32_t)end;
    m->rtx[m->nrtx].prio = prio;
    m->nrtx++;
    return 1;
}

void sdp_msgout_restart(struct sdp_msgout *m)
{
    m->next_off = 0;
    m->nrtx = 0;
}

uint8_t sdp_msgout_unsched_prio(const uint32_t *cutoffs, unsigned n, uint32_t msg_len)
{
    for (unsigned i = 0; i < n; i++)
        if (msg_len <= cutoffs[i])
            return (uint8_t)(SDP_PRIO_LEVELS - 1 - i);
    return (uint8_t)(n < SDP_PRIO_LEVELS ? SDP_PRIO_LEVELS - n : 1);
}

void sdp_msgout_flatten(uint8_t *buf, const uint8_t *payload, uint32_t npkts, uint32_t seg_size, size_t total)
{
    /* Last packet first: a packet's place never overlaps a header that has
     * not moved yet (packet i starts at i * seg_size >= i * header). */
    uint32_t pl = seg_size - SDP_DATA_HDR_LEN;
    for (uint32_t i = npkts; i-- > 0;) {
        uint8_t *pkt = buf + (size_t)i * seg_size;
        size_t len = i + 1 < npkts ? pl : total - (size_t)i * seg_size - SDP_DATA_HDR_LEN;
        memmove(pkt, buf + (size_t)i * SDP_DATA_HDR_LEN, SDP_DATA_HDR_LEN);
        memcpy(pkt + SDP_DATA_HDR_LEN, payload + (size_t)i * pl, len);
    }
}

size_t sdp_msgout_build(struct sdp_msgout *m, uint8_t *buf, size_t cap, uint32_t max_payload,
                        uint8_t unsched_prio, size_t gather_min, const uint8_t **payload, uint32_t *npkts,
                        uint32_t *seg_size, uint8_t *prio, uint32_t *rtx_bytes)
{
    uint32_t off, limit;
    int rtx = m->nrtx > 0;
    *npkts = 0;
    *rtx_bytes = 0;
    if (rtx) {
        off = m->rtx[0].off;
        limit = m->rtx[0].end;
        *prio = m->rtx[0].prio;
    } else {
        off = m->next_off;
        limit = m->granted;
        if (off < m->unsched) {
            /* Unscheduled and scheduled bytes go in separate segments:
             * they travel at different priorities. */
            if (limit > m->unsched)
                limit = m->unsched;
            *prio = unsched_prio;
        } else {
            *prio = m->sched_prio;
        }
    }
    if (off >= limit)
        return 0;
    if (m->plain) {
        /* Whole records per segment (off is on a boundary): cut at the last
         * boundary that fits, or send the one record that starts here so
         * that a grant ending mid-record cannot stall the message. */
        uint32_t pkts = (uint32_t)(cap / (SDP_DATA_HDR_LEN + (size_t)max_payload));
        uint64_t room = (uint64_t)(pkts < SDP_MSGOUT_GSO_SEGS ? pkts : SDP_MSGOUT_GSO_SEGS) * max_payload;
        uint32_t e = rec_floor(m, limit - off < room ? limit : (uint32_t)(off + room));
        if (e <= off)
            e = rec_ceil(m, (uint64_t)off + 1);
        if (e - off > room)
            return 0; /* a record larger than a segment: the sender picks rec_size so none is */
        limit = e;
    }
    struct sdp_hdr h = {.type = SDP_PKT_DATA, .flags = (uint8_t)(m->hdr_flags | (rtx ? SDP_F_RETRANSMIT : 0)), .rpc_id = m->id};
    struct sdp_data d = {.msg_len = m->msg_len, .unsched = m->unsched, .rec_size = m->rec_size};
    size_t w = 0;
    const uint32_t first = off;
    *seg_size = 0;
    *payload = NULL;
    /* UDP GSO takes at most 64 datagrams per send on older kernels. */
    while (off < limit && *npkts < SDP_MSGOUT_GSO_SEGS) {
        uint32_t n = limit - off < max_payload ? limit - off : max_payload;
        if (w + SDP_DATA_HDR_LEN + n > cap)
            break;
        d.offset = off;
        d.payload = m->wire + off;
        d.payload_len = n;
        /* Gathering: only the header, packed at the front of buf. */
        int rc = gather_min ? sdp_wire_encode_data_hdr(buf + (size_t)*npkts * SDP_DATA_HDR_LEN,
                                                       cap - (size_t)*npkts * SDP_DATA_HDR_LEN, &h, &d)
                            : sdp_wire_encode_data(buf + w, cap - w, &h, &d);
        if (rc < 0)
            break;
        if (*npkts == 0)
            *seg_size = SDP_DATA_HDR_LEN + n;
        w += SDP_DATA_HDR_LEN + (size_t)n;
        off += n;
        (*npkts)++;
        if (n < max_payload)
            break; /* only the last datagram of a segment may be short */
    }
    if (gather_min && *npkts) {
        /* Payloads are contiguous in the wire bytes; a small segment is
         * cheaper copied than gathered. */
        if (off - first >= gather_min)
            *payload = m->wire + first;
        else
            sdp_msgout_flatten(buf, m->wire + first, *npkts, *seg_size, w);
    }
    if (rtx) {
        *rtx_bytes = off - m->rtx[0].off;
        m->rtx[0].off = off;
        if (off >= m->rtx[0].end) {
            memmove(&m->rtx[0], &m->rtx[1], (size_t)(m->nrtx - 1) * sizeof(m->rtx[0]));
            m->nrtx--;
        }
    } else {
        m->next_off = off;
    }
    return w;
}
