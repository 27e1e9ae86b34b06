/* Loopback UDP between peer A (this module: plaintext in, sealed by the
 * kernel on the send path; received records opened by kernel batches) and
 * peer B (OpenSSL through the library's record layer), with GSO. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "crypto/aead.h"
#include "crypto/aead_kshim.h"
#include "crypto/keysched.h"
#include "crypto/record.h"
#include "kt.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define HDR 24

struct peer {
    int fd;
    struct sockaddr_storage addr;
    socklen_t alen;
};

struct msg {
    uint64_t id;
    uint32_t msg_len;
    uint16_t rs;
    uint8_t early;
    uint64_t wire_len;
    uint8_t *pt;   /* msg_len plaintext bytes */
    uint8_t *wire; /* expected wire bytes (OpenSSL) */
    uint8_t *got;  /* received wire bytes */
    uint64_t have;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)), put16(p + 2, (uint16_t)v); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static void data_hdr(uint8_t *h, const struct msg *m, uint32_t off)
{
    memset(h, 0, HDR);
    h[0] = SDP_WIRE_VERSION << 4 | 1; /* DATA */
    h[1] = m->early ? SDP_F_EARLY : 0;
    for (int i = 0; i < 6; i++)
        h[2 + i] = (uint8_t)(m->id >> (40 - 8 * i));
    put32(h + 8, m->msg_len);
    put32(h + 12, off);
    put32(h + 16, (uint32_t)m->wire_len);
    put16(h + 20, m->rs);
}

static void msg_new(struct msg *m, uint64_t id, struct sdp_rec_key *sealer)
{
    static const uint16_t sizes[] = {1, 100, 1000, 1400, 4096, 16384};
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->rs = kt_rand() % 4 ? sizes[kt_rand() % 6] : (uint16_t)(1 + kt_rand() % 16384);
    if (m->rs < 64 && kt_rand() % 2)
        m->rs = 64;
    uint32_t cap = m->rs < 100 ? 3000 : 150000;
    m->msg_len = kt_rand() % 10 == 0 ? 0 : (uint32_t)(kt_rand() % cap);
    m->early = kt_rand() % 4 == 0;
    m->wire_len = sdp_msg_wire_len(m->msg_len, m->rs);
    m->pt = malloc(m->msg_len + 1);
    m->wire = calloc(1, m->wire_len);
    m->got = calloc(1, m->wire_len);
    kt_fill(m->pt, m->msg_len);
    uint32_t n = sdp_msg_nrec(m->msg_len, m->rs);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t w = sdp_rec_wire_off(m->rs, i);
        uint32_t rl = sdp_rec_len(m->msg_len, m->rs, i);
        int rc = sdp_rec_seal(sealer, m->id, m->msg_len, m->rs, i, m->early ? SDP_F_EARLY : 0,
                              m->pt + (size_t)i * m->rs, m->wire + w, m->wire + w + rl);
        KT_CHECK(rc == 0, "OpenSSL seal %d", rc);
    }
}

static void msg_free(struct msg *m)
{
    free(m->pt);
    free(m->wire);
    free(m->got);
}

static void place(struct msg *m, const uint8_t *d, size_t n)
{
    KT_CHECK(n > HDR && d[0] == (SDP_WIRE_VERSION << 4 | 1), "odd datagram of %zu", n);
    if (n <= HDR)
        return;
    uint32_t off = get32(d + 12);
    KT_CHECK(off + (uint64_t)(n - HDR) <= m->wire_len, "datagram beyond the message");
    if (off + (uint64_t)(n - HDR) > m->wire_len)
        return;
    memcpy(m->got + off, d + HDR, n - HDR);
    m->have += n - HDR;
}

int kt_gro_bursts;

/* Take every datagram waiting on fd (blocking up to wait_ms for the first);
 * a GRO burst is split at the gso_size its control message gives. */
static void drain(int fd, struct msg *m, int wait_ms)
{
    static uint8_t d[70000];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (m->have < m->wire_len && poll(&p, 1, wait_ms) == 1) {
        union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
        struct iovec iov = {.iov_base = d, .iov_len = sizeof(d)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
                            .msg_controllen = sizeof(cb.b)};
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (n < 0)
            break;
        wait_ms = 0;
        size_t seg = (size_t)n;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                int g;
                memcpy(&g, CMSG_DATA(c), sizeof(g));
                seg = (size_t)g;
                kt_gro_bursts += (size_t)n > seg;
            }
        for (size_t o = 0; o < (size_t)n; o += seg)
            place(m, d + o, (size_t)n - o < seg ? (size_t)n - o : seg);
    }
}

/* Send a message's wire image (plaintext records for the kernel to seal
 * when desc is set, or sealed bytes) in GSO segments of whole records. */
static int send_msg(struct peer *from, struct peer *to, struct msg *m, const uint8_t *img,
                    uint32_t key_id, int kernel_seals, int recv_fd)
{
    static uint8_t seg[65536];
    uint32_t stride = (uint32_t)m->rs + 16, nrec = sdp_msg_nrec(m->msg_len, m->rs);
    uint32_t minpay = (stride + 59) / 60;
    uint32_t pay = minpay < 64 ? 64 : minpay;
    pay += (uint32_t)(kt_rand() % (1448 - pay + 1));
    int segs = 0;
    uint32_t r = 0;
    while (r < nrec) {
        /* As many whole records as fit in 64 datagrams and 65,000 bytes. */
        uint64_t s = sdp_rec_wire_off(m->rs, r), e = s;
        uint32_t q = r;
        while (q < nrec) {
            uint64_t ne = q + 1 == nrec ? m->wire_len : sdp_rec_wire_off(m->rs, q + 1);
            uint64_t p = ne - s, nd = (p + pay - 1) / pay;
            if (nd > 64 || p + nd * HDR > 65000)
                break;
            e = ne, q++;
        }
        if (q == r) {
            KT_CHECK(0, "record does not fit a segment (rs %u pay %u)", m->rs, pay);
            return -1;
        }
        size_t len = 0;
        uint32_t nd = 0;
        for (uint64_t w = s; w < e || (s == e && nd == 0); w += pay, nd++) {
            uint32_t take = (uint32_t)(e - w < pay ? e - w : pay);
            data_hdr(seg + len, m, (uint32_t)w);
            memcpy(seg + len + HDR, img + w, take);
            len += HDR + take;
        }
        union { char b[CMSG_SPACE(2) + CMSG_SPACE(sizeof(struct sdp_kshim_txdesc))]; struct cmsghdr a; } cb;
        memset(&cb, 0, sizeof(cb));
        struct iovec iov = {.iov_base = seg, .iov_len = len};
        struct msghdr mh = {.msg_name = &to->addr, .msg_namelen = to->alen, .msg_iov = &iov,
                            .msg_iovlen = 1, .msg_control = cb.b};
        size_t cl = 0;
        struct cmsghdr *c = (struct cmsghdr *)cb.b;
        if (nd > 1) {
            uint16_t g = (uint16_t)(HDR + pay);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(2);
            memcpy(CMSG_DATA(c), &g, 2);
            cl += CMSG_SPACE(2);
        }
        if (kernel_seals) {
            struct sdp_kshim_txdesc d = {.key_id = key_id, .seg_size = (uint16_t)(HDR + pay),
                                         .hdr_len = HDR, .msg_id = m->id, .msg_len = m->msg_len,
                                         .wire_off = (uint32_t)s, .rec_size = m->rs,
                                         .aad_flags = m->early ? SDP_F_EARLY : 0};
            c = (struct cmsghdr *)(cb.b + cl);
            c->cmsg_level = SOL_SDP_KSHIM;
            c->cmsg_type = SDP_KSHIM_CMSG_TX;
            c->cmsg_len = CMSG_LEN(sizeof(d));
            memcpy(CMSG_DATA(c), &d, sizeof(d));
            cl += CMSG_SPACE(sizeof(d));
        }
        mh.msg_controllen = cl;
        if (cl == 0)
            mh.msg_control = NULL;
        ssize_t n = sendmsg(from->fd, &mh, 0);
        KT_CHECK(n == (ssize_t)len, "sendmsg %zd of %zu: %s (msg %llu rs %u pay %u)", n, len,
                 strerror(errno), (unsigned long long)m->id, m->rs, pay);
        drain(recv_fd, m, 0);
        segs++;
        r = q;
    }
    return segs;
}

static void open_in_kernel(int dev, struct io_uring *ring, struct msg *m, uint32_t key_id,
                           int use_uring)
{
    uint32_t n = sdp_msg_nrec(m->msg_len, m->rs);
    struct sdp_kshim_op *ops = calloc(n, sizeof(*ops));
    for (uint32_t i = 0; i < n; i++) {
        uint64_t w = sdp_rec_wire_off(m->rs, i);
        uint32_t rl = sdp_rec_len(m->msg_len, m->rs, i);
        kt_op_record(&ops[i], key_id, m->id, m->msg_len, m->rs, i, m->early ? SDP_F_EARLY : 0,
                     m->got + w, m->got + w, m->got + w + rl, rl);
    }
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done > SDP_KSHIM_BATCH_MAX ? SDP_KSHIM_BATCH_MAX : n - done;
        int rc;
        if (use_uring) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            struct sdp_kshim_batch b = {.ops = (uintptr_t)(ops + done), .count = k};
            struct io_uring_cqe *cqe;
            io_uring_prep_rw(IORING_OP_URING_CMD, sqe, dev, NULL, 0, 0);
            sqe->cmd_op = SDP_KSHIM_CMD_OPEN;
            memcpy(sqe->cmd, &b, sizeof(b));
            io_uring_submit_and_wait(ring, 1);
            io_uring_wait_cqe(ring, &cqe);
            rc = cqe->res;
            io_uring_cqe_seen(ring, cqe);
        } else {
            rc = kt_batch(dev, 0, ops + done, k);
        }
        KT_CHECK(rc == (int)k, "open batch: %d", rc);
        done += k;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t rl = sdp_rec_len(m->msg_len, m->rs, i);
        KT_CHECK(ops[i].status == 0, "record %u of msg %llu: %d", i, (unsigned long long)m->id,
                 ops[i].status);
        KT_CHECK(memcmp(m->got + sdp_rec_wire_off(m->rs, i), m->pt + (size_t)i * m->rs, rl) == 0,
                 "record %u plaintext", i);
    }
    free(ops);
}

static void peer_open(struct peer *p, int fam)
{
    p->fd = socket(fam, SOCK_DGRAM, 0);
    memset(&p->addr, 0, sizeof(p->addr));
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&p->addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        p->alen = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&p->addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        p->alen = sizeof(*a);
    }
    int big = 16 << 20;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    KT_CHECK(bind(p->fd, (struct sockaddr *)&p->addr, p->alen) == 0, "bind: %s", strerror(errno));
    getsockname(p->fd, (struct sockaddr *)&p->addr, &p->alen);
}

static struct sdp_traffic_keys *rand_keys(enum sdp_suite suite)
{
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    tk->suite = suite;
    tk->key_len = sdp_suite_key_len(suite);
    kt_fill(tk->key, sizeof(tk->key));
    kt_fill(tk->iv, 12);
    kt_fill(tk->ctl_key, sizeof(tk->ctl_key));
    kt_fill(tk->ctl_iv, 12);
    return tk;
}

int kt_udp(int argc, char **argv)
{
    int fam = argc > 1 && strcmp(argv[1], "6") == 0 ? AF_INET6 : AF_INET;
    int nmsg = argc > 2 ? atoi(argv[2]) : 12;
    struct peer a, b;
    struct sdp_kshim_stats st0, st;
    struct io_uring ring;
    int dev = kt_dev_open();
    enum sdp_suite suite = kt_rand() & 1 ? SDP_SUITE_AES128GCM : SDP_SUITE_AES256GCM;
    const struct sdp_aead_provider *po = NULL;

    kt_stats(&st0);
    KT_CHECK(io_uring_queue_init(8, &ring, 0) == 0, "ring");
    KT_CHECK(sdp_aead_find(suite, suite == SDP_SUITE_AES128GCM ? "openssl-aes128gcm"
                                                                : "openssl-aes256gcm", 0, &po) == 0,
             "openssl");
    peer_open(&a, fam);
    peer_open(&b, fam);
    /* A reads with GRO, as the engine does; B datagram by datagram. */
    int one = 1;
    KT_CHECK(setsockopt(a.fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0, "UDP_GRO");
    /* A is the engine's side: library key objects on the kshim provider,
     * its socket attached to the provider's device file. */
    const struct sdp_aead_provider *pk = NULL;
    KT_CHECK(sdp_aead_find(suite, suite == SDP_SUITE_AES128GCM ? "kshim-aes128gcm"
                                                                : "kshim-aes256gcm", 0, &pk) == 0,
             "kshim provider");
    KT_CHECK(sdp_aead_kshim_attach(a.fd) == 0, "attach: %s", strerror(errno));
    struct sdp_traffic_keys *ab = rand_keys(suite), *ba = rand_keys(suite);
    struct sdp_rec_key rab, rba, kab, kba;
    KT_CHECK(sdp_rec_key_init(&rab, po, ab, 0, 0) == 0 && sdp_rec_key_init(&rba, po, ba, 0, 0) == 0,
             "OpenSSL keys");
    KT_CHECK(sdp_rec_key_init(&kab, pk, ab, 0, 0) == 0 && sdp_rec_key_init(&kba, pk, ba, 0, 0) == 0,
             "kshim keys");
    uint32_t tx_id = sdp_aead_kshim_tx_id(kab.data), rx_id = sdp_aead_kshim_rx_id(kba.data);
    int kdev = sdp_aead_kshim_dev_fd();
    KT_CHECK(tx_id != 0 && rx_id != 0 && kdev >= 0, "key ids %u %u, device %d", tx_id, rx_id, kdev);
    uint64_t bytes_ab = 0, bytes_ba = 0;
    int segs_ab = 0, segs_ba = 0;
    for (int i = 0; i < nmsg; i++) {
        struct msg m;
        if (i == nmsg / 2) {
            /* Key update half-way: the attached socket sends under the
             * next generation's key object at once. */
            sdp_rec_key_clear(&rab);
            sdp_rec_key_clear(&kab);
            sdp_traffic_keys_free(ab);
            ab = rand_keys(suite);
            KT_CHECK(sdp_rec_key_init(&rab, po, ab, 1, 0) == 0 &&
                         sdp_rec_key_init(&kab, pk, ab, 1, 0) == 0, "generation 1 keys");
            uint32_t next = sdp_aead_kshim_tx_id(kab.data);
            KT_CHECK(next != 0 && next != tx_id, "new TX id %u", next);
            tx_id = next;
        }
        /* A -> B: A hands plaintext; the kernel seals on the send path. */
        msg_new(&m, 2 + 2 * (uint64_t)i, &rab);
        uint8_t *img = calloc(1, m.wire_len + 1);
        uint32_t n = sdp_msg_nrec(m.msg_len, m.rs);
        for (uint32_t r = 0; r < n; r++)
            memcpy(img + sdp_rec_wire_off(m.rs, r), m.pt + (size_t)r * m.rs,
                   sdp_rec_len(m.msg_len, m.rs, r));
        segs_ab += send_msg(&a, &b, &m, img, tx_id, 1, b.fd);
        if (m.have < m.wire_len)
            drain(b.fd, &m, 2000);
        KT_CHECK(m.have == m.wire_len, "B got %llu of %llu wire bytes",
                 (unsigned long long)m.have, (unsigned long long)m.wire_len);
        KT_CHECK(memcmp(m.got, m.wire, m.wire_len) == 0,
                 "kernel-sealed bytes differ from OpenSSL's (msg %llu len %u rs %u)",
                 (unsigned long long)m.id, m.msg_len, m.rs);
        for (uint32_t r = 0; r < n; r++) {
            uint64_t w = sdp_rec_wire_off(m.rs, r);
            uint32_t rl = sdp_rec_len(m.msg_len, m.rs, r);
            static uint8_t out[16384];
            KT_CHECK(sdp_rec_open(&rab, m.id, m.msg_len, m.rs, r,
                                  m.early ? SDP_F_EARLY : 0, m.got + w, m.got + w + rl, out) == 0 &&
                         memcmp(out, m.pt + (size_t)r * m.rs, rl) == 0,
                     "B (OpenSSL) opens record %u", r);
        }
        bytes_ab += m.wire_len;
        free(img);
        msg_free(&m);

        /* B -> A: OpenSSL seals; A opens in the kernel (ioctl or io_uring). */
        msg_new(&m, 3 + 2 * (uint64_t)i, &rba);
        segs_ba += send_msg(&b, &a, &m, m.wire, 0, 0, a.fd);
        if (m.have < m.wire_len)
            drain(a.fd, &m, 2000);
        KT_CHECK(m.have == m.wire_len, "A got %llu of %llu", (unsigned long long)m.have,
                 (unsigned long long)m.wire_len);
        open_in_kernel(kdev, &ring, &m, rx_id, i & 1);
        bytes_ba += m.wire_len;
        msg_free(&m);
    }
    /* Without the control message an attached socket sends bytes unchanged. */
    uint8_t plain[100], back[200];
    kt_fill(plain, sizeof(plain));
    KT_CHECK(sendto(a.fd, plain, sizeof(plain), 0, (struct sockaddr *)&b.addr, b.alen) == 100,
             "plain send");
    struct pollfd p = {.fd = b.fd, .events = POLLIN};
    KT_CHECK(poll(&p, 1, 2000) == 1 && recv(b.fd, back, sizeof(back), 0) == 100 &&
                 memcmp(back, plain, 100) == 0, "plain datagram changed");
    kt_stats(&st);
    KT_CHECK(st.tx_segments - st0.tx_segments == (uint64_t)segs_ab, "tx segments %llu want %d",
             (unsigned long long)(st.tx_segments - st0.tx_segments), segs_ab);
    printf("KT   udp%s: A->B %d msgs (key update half-way) %llu wire bytes in %d GSO sends sealed by the kernel, "
           "identical to OpenSSL's; B->A %llu bytes in %d sends (%d GRO bursts) opened by the "
           "kernel\n", fam == AF_INET ? "4" : "6", nmsg, (unsigned long long)bytes_ab, segs_ab,
           (unsigned long long)bytes_ba, segs_ba, kt_gro_bursts);
    KT_CHECK(kt_gro_bursts > 0, "no GRO burst seen");
    close(a.fd);
    close(b.fd);
    close(dev);
    io_uring_queue_exit(&ring);
    sdp_rec_key_clear(&rab);
    sdp_rec_key_clear(&rba);
    sdp_rec_key_clear(&kab);
    sdp_rec_key_clear(&kba);
    sdp_traffic_keys_free(ab);
    sdp_traffic_keys_free(ba);
    return 0;
}

/* Attach a socket, close the device, and wait to be killed: the module
 * must refuse to unload meanwhile. */
int kt_hold(int argc, char **argv)
{
    int dev = kt_dev_open(), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sdp_kshim_attach at = {.fd = s};
    if (ioctl(dev, SDP_KSHIM_IOC_ATTACH, &at) != 0) {
        perror("attach");
        return 1;
    }
    close(dev);
    if (argc > 1)
        close(open(argv[1], O_CREAT | O_WRONLY, 0600));
    for (;;)
        pause();
}
