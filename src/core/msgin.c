#include "core/msgin.h"

#include <string.h>

#include "sdp/sdp.h"
#include "wire/wire.h"

struct blk_hdr {
    uint64_t size;
    uint64_t magic;
};
#define BLK_MAGIC UINT64_C(0x5344504d5347494e)

static void streams_stop(struct sdp_msgin *m);

static size_t blk_size(uint32_t pt_len, uint32_t nrec)
{
    return SDP_MSGIN_BLK_HDR + (size_t)pt_len + (size_t)SDP_TAG_LEN * nrec + (nrec + 7) / 8;
}

static int blk_new(struct sdp_msgin *m, struct sdp_mem *mem, uint32_t pt_len, uint32_t nrec)
{
    size_t sz = blk_size(pt_len, nrec);
    uint8_t *b = sdp_mem_alloc(mem, sz);
    if (!b)
        return SDP_ENOMEM;
    struct blk_hdr h = {.size = sz, .magic = BLK_MAGIC};
    memcpy(b, &h, sizeof(h));
    m->blk = b;
    m->alloc = sz;
    m->buf = b + SDP_MSGIN_BLK_HDR;
    m->tags = m->buf + pt_len;
    m->opened = m->tags + (size_t)SDP_TAG_LEN * nrec;
    memset(m->opened, 0, (nrec + 7) / 8);
    return 0;
}

int sdp_msgin_init(struct sdp_msgin *m, struct sdp_mem *mem, uint64_t id, uint32_t msg_len, uint16_t rec_size,
                   uint32_t unsched)
{
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->msg_len = msg_len;
    m->rec_size = rec_size;
    m->nrec = sdp_msg_nrec(msg_len, rec_size);
    m->wire_len = (uint32_t)sdp_msg_wire_len(msg_len, rec_size);
    m->unsched = unsched;
    /* Record 0 alone until something authenticates the sender's claims. */
    m->staged = m->nrec > 1;
    return m->staged ? blk_new(m, mem, rec_size, 1) : blk_new(m, mem, msg_len, 1);
}

void sdp_msgin_fini(struct sdp_msgin *m, struct sdp_mem *mem)
{
    streams_stop(m);
    if (m->blk)
        sdp_mem_free(mem, m->blk, m->alloc);
    m->blk = NULL;
    m->alloc = 0;
}

static int is_open(const struct sdp_msgin *m, uint32_t i)
{
    return (m->opened[i / 8] >> (i % 8)) & 1;
}

static uint32_t rec_len(const struct sdp_msgin *m, uint32_t i)
{
    return sdp_rec_len(m->msg_len, m->rec_size, i);
}

void sdp_msgin_rec_range(const struct sdp_msgin *m, uint32_t i, uint32_t *off, uint32_t *len)
{
    *off = (uint32_t)sdp_rec_wire_off(m->rec_size, i);
    *len = rec_len(m, i) + SDP_TAG_LEN;
}

static void gap_del(struct sdp_msgin *m, unsigned g)
{
    memmove(&m->gaps[g], &m->gaps[g + 1], (size_t)(m->ngaps - g - 1) * sizeof(m->gaps[0]));
    m->ngaps--;
}

/* The new wire ranges of one placement, ascending: one per gap filled and
 * one above recv_high at most. */
struct new_ranges {
    unsigned n;
    struct {
        uint32_t s, e;
    } r[SDP_MSGIN_GAPS + 1];
};

static void new_add(struct new_ranges *nr, uint32_t s, uint32_t e)
{
    nr->r[nr->n].s = s;
    nr->r[nr->n].e = e;
    nr->n++;
}

/* Count the bytes of [s, e) not held yet as held, listing them in nr. */
static void accept_range(struct sdp_msgin *m, uint32_t s, uint32_t e, struct new_ranges *nr, struct sdp_msgin_res *r)
{
    for (unsigned g = 0; g < m->ngaps && m->gaps[g].s < e;) {
        uint32_t gs = m->gaps[g].s, ge = m->gaps[g].e;
        if (ge <= s) {
            g++;
            continue;
        }
        uint32_t os = gs > s ? gs : s, oe = ge < e ? ge : e;
        if (os > gs && oe < ge) {
            if (m->ngaps == SDP_MSGIN_GAPS) {
                r->gapdrop = 1; /* cannot split: keep the gap, ask again later */
                g++;
                continue;
            }
            memmove(&m->gaps[g + 2], &m->gaps[g + 1], (size_t)(m->ngaps - g - 1) * sizeof(m->gaps[0]));
            m->ngaps++;
            m->gaps[g + 1].s = oe;
            m->gaps[g + 1].e = ge;
            m->gaps[g].e = os;
            g += 2;
        } else if (os == gs && oe == ge) {
            gap_del(m, g);
        } else if (os == gs) {
            m->gaps[g].s = oe;
            g++;
        } else {
            m->gaps[g].e = os;
            g++;
        }
        new_add(nr, os, oe);
        m->received += oe - os;
        r->new_bytes += oe - os;
    }
    if (e > m->recv_high) {
        uint32_t s2 = s > m->recv_high ? s : m->recv_high;
        if (s2 > m->recv_high) {
            if (m->ngaps == SDP_MSGIN_GAPS) {
                r->gapdrop = 1;
                return;
            }
            m->gaps[m->ngaps].s = m->recv_high;
            m->gaps[m->ngaps].e = s2;
            m->ngaps++;
        }
        new_add(nr, s2, e);
        m->received += e - s2;
        r->new_bytes += e - s2;
        m->recv_high = e;
    }
}

/* Mark [s, e) (all currently held) missing again. */
static void discard_range(struct sdp_msgin *m, uint32_t s, uint32_t e)
{
    unsigned g = 0;
    while (g < m->ngaps && m->gaps[g].e < s)
        g++;
    /* Touching a neighbour: widen it. */
    if (g < m->ngaps && m->gaps[g].e == s) {
        m->gaps[g].e = e;
        m->received -= e - s;
        if (g + 1 < m->ngaps && m->gaps[g + 1].s == e) {
            m->gaps[g].e = m->gaps[g + 1].e;
            gap_del(m, g + 1);
        }
        return;
    }
    if (g < m->ngaps && m->gaps[g].s == e) {
        m->gaps[g].s = s;
        m->received -= e - s;
        return;
    }
    if (m->ngaps < SDP_MSGIN_GAPS) {
        memmove(&m->gaps[g + 1], &m->gaps[g], (size_t)(m->ngaps - g) * sizeof(m->gaps[0]));
        m->gaps[g].s = s;
        m->gaps[g].e = e;
        m->ngaps++;
        m->received -= e - s;
        return;
    }
    /* Full: stretch the previous gap over the held bytes in between (they are
     * asked for again; opened records are never overwritten). */
    if (g > 0) {
        m->received -= e - m->gaps[g - 1].e;
        m->gaps[g - 1].e = e;
    } else {
        m->received -= m->gaps[0].s - s;
        m->gaps[0].s = s;
    }
}

static int rec_complete(const struct sdp_msgin *m, uint32_t i)
{
    uint32_t rs, rl;
    sdp_msgin_rec_range(m, i, &rs, &rl);
    uint32_t re = rs + rl;
    if (re > m->recv_high)
        return 0;
    for (unsigned g = 0; g < m->ngaps && m->gaps[g].s < re; g++)
        if (m->gaps[g].e > rs)
            return 0;
    return 1;
}

/* End of the run of held bytes starting at wire offset w (w when missing). */
static uint32_t held_end(const struct sdp_msgin *m, uint32_t w)
{
    if (w >= m->recv_high)
        return w;
    for (unsigned g = 0; g < m->ngaps; g++)
        if (m->gaps[g].e > w)
            return m->gaps[g].s <= w ? w : m->gaps[g].s;
    return m->recv_high;
}

static uint8_t *rec_pt(const struct sdp_msgin *m, uint32_t i)
{
    return m->buf + (size_t)i * m->rec_size;
}

/* A record's open finished with rc: mark it opened, or discard its bytes
 * (the caller has wiped any plaintext) so that they are asked for again. */
static void rec_result(struct sdp_msgin *m, uint32_t i, int rc, struct sdp_msgin_res *r)
{
    if (rc == 0) {
        m->opened[i / 8] |= (uint8_t)(1u << (i % 8));
        m->nopened++;
        r->opened++;
        if (!m->authed) {
            m->authed = 1;
            r->authed_now = 1;
        }
        return;
    }
    uint32_t rs, rl;
    sdp_msgin_rec_range(m, i, &rs, &rl);
    discard_range(m, rs, rs + rl);
    if (r->nfailed < 4)
        r->failed[r->nfailed] = i;
    r->nfailed++;
}

static void stream_stop(struct sdp_msgin *m, unsigned k)
{
    sdp_rec_stream_put(m->st[k]);
    m->nst--;
    m->st[k] = m->st[m->nst];
    m->st_rec[k] = m->st_rec[m->nst];
    m->st[m->nst] = NULL;
}

static void streams_stop(struct sdp_msgin *m)
{
    while (m->nst)
        stream_stop(m, m->nst - 1);
}

/* The stream opening record i, or -1. */
static int stream_of(const struct sdp_msgin *m, uint32_t i)
{
    for (unsigned k = 0; k < m->nst; k++)
        if (m->st_rec[k] == i)
            return (int)k;
    return -1;
}

/* A provider error mid-record (not expected): wipe what the stream wrote
 * and let the record go the in-place way, where those bytes (zeros now, not
 * ciphertext) fail once the record is complete and are asked for again. */
static void stream_fail(struct sdp_msgin *m, unsigned k)
{
    memset(rec_pt(m, m->st_rec[k]), 0, m->st[k]->done);
    stream_stop(m, k);
}

static int stream_start(struct sdp_msgin *m, struct sdp_rec_key *rk, struct sdp_rec_streams *rs, uint32_t i)
{
    if (!rs || m->nst == SDP_MSGIN_STREAMS)
        return -1;
    struct sdp_rec_stream *st = sdp_rec_stream_get(rs, rk);
    if (!st)
        return -1;
    if (sdp_rec_stream_begin(rk, st, m->id, m->msg_len, m->rec_size, i, 0) != 0) {
        sdp_rec_stream_put(st);
        return -1;
    }
    m->st[m->nst] = st;
    m->st_rec[m->nst] = i;
    return m->nst++;
}

/* Move stream k on over the ciphertext held after it (copied there out of
 * order), and end it once its record's bytes and tag are all in.  Only
 * called when every new byte up to the record's end has been written. */
static void stream_advance(struct sdp_msgin *m, unsigned k, struct sdp_rec_key *rk, struct sdp_msgin_res *r)
{
    struct sdp_rec_stream *st = m->st[k];
    uint32_t i = m->st_rec[k], rl = rec_len(m, i);
    uint32_t rs = (uint32_t)sdp_rec_wire_off(m->rec_size, i);
    uint8_t *pt = rec_pt(m, i);
    uint32_t he = held_end(m, rs + st->done);
    uint32_t n = (he < rs + rl ? he : rs + rl) - (rs + st->done);
    if (n) {
        if (sdp_rec_stream_update(st, pt + st->done, n, pt + st->done) != 0) {
            stream_fail(m, k);
            return;
        }
        r->inplace += n;
    }
    if (st->done != rl || !rec_complete(m, i))
        return;
    int rc = sdp_rec_stream_end(rk, st, m->tags + (size_t)i * SDP_TAG_LEN, pt);
    stream_stop(m, k);
    rec_result(m, i, rc, r);
}

/* Bring in the new wire bytes [s, e), src holding byte s.  Ciphertext is
 * decrypted straight into place when it continues the message's stream, or
 * starts a record (a stream, or one call when the whole record is here);
 * otherwise it is copied there to be opened in place later.  Nothing is
 * written over an opened record, nor over bytes the stream has taken. */
static void take_new(struct sdp_msgin *m, struct sdp_rec_key *rk, struct sdp_rec_streams *rs, uint32_t s,
                     uint32_t e, const uint8_t *src, struct sdp_msgin_res *r)
{
    uint32_t rw = (uint32_t)m->rec_size + SDP_TAG_LEN;
    while (s < e) {
        uint32_t n = e - s, i = s / rw, o = s % rw, rl = rec_len(m, i), take;
        uint8_t *pt = rec_pt(m, i);
        /* Past a stream's record, all of its new bytes are in: finish it
         * now, so that this record (often in the same packet) can stream. */
        for (unsigned k = m->nst; k-- > 0;)
            if (m->st_rec[k] < i)
                stream_advance(m, k, rk, r);
        int k = stream_of(m, i);
        if (o >= rl) {
            take = n < rl + SDP_TAG_LEN - o ? n : rl + SDP_TAG_LEN - o;
            if (!is_open(m, i))
                memcpy(m->tags + (size_t)i * SDP_TAG_LEN + (o - rl), src, take);
            s += take;
            src += take;
            continue;
        }
        take = n < rl - o ? n : rl - o;
        if (is_open(m, i)) {
            /* a duplicate of an opened record (its range was marked missing again) */
        } else if (k >= 0 && o < m->st[k]->done) {
            /* ... or of bytes the stream took: keep what it took */
            take = take < m->st[k]->done - o ? take : m->st[k]->done - o;
        } else if (o == 0 && n >= rl + SDP_TAG_LEN && k < 0) {
            /* The whole record, tag included, is in this packet. */
            int rc = sdp_rec_open(rk, m->id, m->msg_len, m->rec_size, i, 0, src, src + rl, pt);
            r->direct += rl;
            rec_result(m, i, rc, r);
            take = rl + SDP_TAG_LEN;
        } else if (k >= 0 ? o == m->st[k]->done : o == 0 && (k = stream_start(m, rk, rs, i)) >= 0) {
            if (sdp_rec_stream_update(m->st[k], src, take, pt + o) != 0) {
                stream_fail(m, (unsigned)k);
            } else {
                r->direct += take;
            }
        } else {
            memcpy(pt + o, src, take);
        }
        s += take;
        src += take;
    }
}

/* After new bytes in [s, e): move each stream on over the ciphertext held
 * after it, and finish every record touching [s, e) whose bytes are all in,
 * by its stream or in place. */
static void finish_range(struct sdp_msgin *m, struct sdp_rec_key *rk, uint32_t s, uint32_t e,
                         struct sdp_msgin_res *r)
{
    if (s >= e)
        return;
    uint32_t rw = (uint32_t)m->rec_size + SDP_TAG_LEN;
    uint32_t last = (e - 1) / rw;
    if (m->staged && last > 0)
        last = 0;
    for (uint32_t i = s / rw; i <= last && i < m->nrec; i++) {
        if (is_open(m, i))
            continue;
        uint8_t *pt = rec_pt(m, i);
        int k = stream_of(m, i);
        if (k >= 0) {
            stream_advance(m, (unsigned)k, rk, r);
        } else if (rec_complete(m, i)) {
            int rc = sdp_rec_open(rk, m->id, m->msg_len, m->rec_size, i, 0, pt, m->tags + (size_t)i * SDP_TAG_LEN, pt);
            r->inplace += rec_len(m, i);
            rec_result(m, i, rc, r);
        }
    }
}

/* Take wire bytes [s, e), p holding byte s. */
static void take_range(struct sdp_msgin *m, struct sdp_rec_key *rk, struct sdp_rec_streams *rs, uint32_t s,
                       uint32_t e, const uint8_t *p, struct sdp_msgin_res *r)
{
    struct new_ranges nr;
    nr.n = 0;
    accept_range(m, s, e, &nr, r);
    for (unsigned k = 0; k < nr.n; k++)
        take_new(m, rk, rs, nr.r[k].s, nr.r[k].e, p + (nr.r[k].s - s), r);
    finish_range(m, rk, s, e, r);
}

/* Record 0 opened: move to the full buffer. */
static int upgrade(struct sdp_msgin *m, struct sdp_mem *mem, size_t max_alloc)
{
    if (blk_size(m->msg_len, m->nrec) > max_alloc)
        return SDP_ENOMEM;
    uint8_t *old = m->blk, *old_buf = m->buf;
    size_t old_alloc = m->alloc;
    if (blk_new(m, mem, m->msg_len, m->nrec) != 0) {
        m->blk = old;
        m->alloc = old_alloc;
        m->buf = old_buf;
        m->tags = old_buf + m->rec_size;
        m->opened = m->tags + SDP_TAG_LEN;
        return SDP_ENOMEM;
    }
    memcpy(m->buf, old_buf, m->rec_size);
    m->opened[0] = 1;
    sdp_mem_free(mem, old, old_alloc);
    m->staged = 0;
    return 0;
}

void sdp_msgin_place(struct sdp_msgin *m, struct sdp_mem *mem, struct sdp_rec_key *rk, struct sdp_rec_streams *rs,
                     uint32_t off, const uint8_t *p, uint32_t len, size_t max_alloc, struct sdp_msgin_res *r)
{
    memset(r, 0, sizeof(*r));
    uint32_t end = off + len;
    if (m->staged) {
        uint32_t lim = (uint32_t)m->rec_size + SDP_TAG_LEN;
        if (off < lim)
            take_range(m, rk, rs, off, end < lim ? end : lim, p, r);
        if (!m->authed)
            return;
        if (upgrade(m, mem, max_alloc) != 0) {
            r->nomem = 1;
            return;
        }
    }
    take_range(m, rk, rs, off, end, p, r);
    r->complete = m->nopened == m->nrec;
}

int sdp_msgin_missing(const struct sdp_msgin *m, uint32_t limit, uint32_t *off, uint32_t *len)
{
    if (m->staged && limit > (uint32_t)m->rec_size + SDP_TAG_LEN)
        limit = (uint32_t)m->rec_size + SDP_TAG_LEN;
    if (m->ngaps > 0 && m->gaps[0].s < limit) {
        *off = m->gaps[0].s;
        *len = (m->gaps[0].e < limit ? m->gaps[0].e : limit) - *off;
        return 1;
    }
    if (m->recv_high < limit) {
        *off = m->recv_high;
        *len = limit - m->recv_high;
        return 1;
    }
    return 0;
}

uint8_t *sdp_msgin_take(struct sdp_msgin *m)
{
    streams_stop(m); /* none is left once every record opened */
    uint8_t *d = m->buf;
    m->blk = NULL;
    m->alloc = 0;
    return d;
}

void sdp_msgin_release(struct sdp_mem *mem, uint8_t *data)
{
    if (!data)
        return;
    uint8_t *b = data - SDP_MSGIN_BLK_HDR;
    struct blk_hdr h;
    memcpy(&h, b, sizeof(h));
    if (h.magic != BLK_MAGIC)
        return; /* not ours: refuse rather than corrupt the heap */
    memset(b, 0, sizeof(h));
    sdp_mem_free(mem, b, (size_t)h.size);
}
