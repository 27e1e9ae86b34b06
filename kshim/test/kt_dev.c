/* Device tests: key errors, Wycheproof, interop with OpenSSL through the
 * library's record layer, io_uring batches, killed callers, fuzzing. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <linux/tls.h>
#include <netinet/in.h>

#include "crypto/aead.h"
#include "crypto/keysched.h"
#include "crypto/record.h"
#include "sdp/sdp.h"
#include "kt.h"
#include "wire/wire.h"

static int add_raw(int fd, uint32_t id, uint32_t dir, const void *info, uint32_t len)
{
    struct sdp_kshim_key k = {.key_id = id, .direction = dir, .info_len = len,
                              .info = (uintptr_t)info};
    return ioctl(fd, SDP_KSHIM_IOC_ADD_KEY, &k);
}

static int del_key(int fd, uint32_t id)
{
    struct sdp_kshim_keyref r = {.key_id = id};
    return ioctl(fd, SDP_KSHIM_IOC_DEL_KEY, &r);
}

static int attach(int dev, int fd)
{
    struct sdp_kshim_attach a = {.fd = fd};
    return ioctl(dev, SDP_KSHIM_IOC_ATTACH, &a);
}

/* sendmsg of len bytes with ndesc copies of d (cmsg length adjusted by
 * lenfix) and a UDP_SEGMENT of gso when non-zero. */
static ssize_t send_desc(int fd, const struct sockaddr_in6 *dst, const struct sdp_kshim_txdesc *d,
                         size_t len, int flags, uint16_t gso, int ndesc, int lenfix)
{
    static uint8_t pkt[2000];
    union { char b[CMSG_SPACE(2) + 2 * CMSG_SPACE(sizeof(*d))]; struct cmsghdr a; } cb;
    struct iovec iov = {.iov_base = pkt, .iov_len = len};
    struct msghdr m = {.msg_name = (void *)dst, .msg_namelen = sizeof(*dst), .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = cb.b};
    size_t used = 0;
    memset(&cb, 0, sizeof(cb));
    if (gso) {
        struct cmsghdr *c = (struct cmsghdr *)cb.b;
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = 103; /* UDP_SEGMENT */
        c->cmsg_len = CMSG_LEN(2);
        memcpy(CMSG_DATA(c), &gso, 2);
        used += CMSG_SPACE(2);
    }
    for (int i = 0; i < ndesc; i++) {
        struct cmsghdr *c = (struct cmsghdr *)(cb.b + used);
        c->cmsg_level = SOL_SDP_KSHIM;
        c->cmsg_type = SDP_KSHIM_CMSG_TX;
        c->cmsg_len = CMSG_LEN(sizeof(*d)) + lenfix;
        memcpy(CMSG_DATA(c), d, sizeof(*d));
        used += CMSG_SPACE(sizeof(*d));
    }
    m.msg_controllen = used;
    return sendmsg(fd, &m, flags);
}

int kt_keys(int argc, char **argv)
{
    (void)argc, (void)argv;
    struct sdp_kshim_stats st0, st;
    kt_stats(&st0);
    int fd = kt_dev_open();
    struct tls12_crypto_info_aes_gcm_128 g, b;
    struct tls12_crypto_info_aes_gcm_256 g256;
    struct tls12_crypto_info_chacha20_poly1305 cc;

    memset(&g, 0, sizeof(g));
    g.info.version = TLS_1_3_VERSION;
    g.info.cipher_type = TLS_CIPHER_AES_GCM_128;
    kt_fill(g.key, 16);
    KT_CHECK(add_raw(fd, 1, SDP_KSHIM_DIR_TX, &g, sizeof(g)) == 0, "valid key: %s", strerror(errno));
    KT_ERRNO(add_raw(fd, 1, SDP_KSHIM_DIR_RX, &g, sizeof(g)), EEXIST, "duplicate key id");
    b = g, b.info.version = TLS_1_2_VERSION;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &b, sizeof(b)), EINVAL, "TLS 1.2 version");
    b = g, b.info.version = 0x1234;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &b, sizeof(b)), EINVAL, "bad version");
    memset(&cc, 0, sizeof(cc));
    cc.info.version = TLS_1_3_VERSION;
    cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &cc, sizeof(cc)), EOPNOTSUPP, "chacha cipher");
    b = g, b.info.cipher_type = 99;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &b, sizeof(b)), EINVAL, "unknown cipher");
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &g, sizeof(g) - 1), EINVAL, "short length");
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &g, 2), EINVAL, "header-short length");
    memset(&g256, 0, sizeof(g256));
    g256.info = g.info;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &g256, sizeof(g256)), EINVAL,
             "AES-128 info with the AES-256 length");
    g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &g256, sizeof(g)), EINVAL,
             "AES-256 info with the AES-128 length");
    KT_CHECK(add_raw(fd, 3, SDP_KSHIM_DIR_RX, &g256, sizeof(g256)) == 0, "AES-256 key");
    b = g, b.rec_seq[7] = 1;
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, &b, sizeof(b)), EINVAL, "non-zero rec_seq");
    KT_ERRNO(add_raw(fd, 2, 3, &g, sizeof(g)), EINVAL, "bad direction");
    KT_ERRNO(add_raw(fd, 0, SDP_KSHIM_DIR_TX, &g, sizeof(g)), EINVAL, "key id 0");
    KT_ERRNO(add_raw(fd, 2, SDP_KSHIM_DIR_TX, (void *)16, sizeof(g)), EFAULT, "bad info pointer");
    KT_ERRNO(del_key(fd, 99), ENOKEY, "delete unknown key");
    KT_ERRNO(ioctl(fd, _IO(SDP_KSHIM_IOC_MAGIC, 77)), ENOTTY, "unknown ioctl");

    /* Ops: unknown key, wrong direction. */
    uint8_t buf[64] = {0}, tag[16];
    struct sdp_kshim_op op[3];
    kt_op_record(&op[0], 42, 2, 64, 64, 0, 0, buf, buf, tag, 64);
    kt_op_record(&op[1], 3, 2, 64, 64, 0, 0, buf, buf, tag, 64);  /* RX key */
    kt_op_record(&op[2], 1, 2, 64, 64, 0, 0, buf, buf, tag, 64);
    KT_CHECK(kt_batch(fd, 1, op, 3) == 3, "batch");
    KT_CHECK(op[0].status == -ENOKEY, "unknown key status %d", op[0].status);
    KT_CHECK(op[1].status == -EKEYREJECTED, "seal with an RX key: %d", op[1].status);
    KT_CHECK(op[2].status == 0, "good op %d", op[2].status);
    kt_op_record(&op[0], 1, 2, 64, 64, 0, 0, buf, buf, tag, 64);
    KT_CHECK(kt_batch(fd, 0, op, 1) == 1 && op[0].status == -EKEYREJECTED,
             "open with a TX key: %d", op[0].status);
    static const struct { const char *what; int field; uint64_t v; } bad_ops[] = {
        {"index past the last record", 0, 1}, {"length not the record's", 1, 63},
        {"record mode with an AAD", 2, 8},   {"undefined op flag", 3, 2},
        {"message id 0", 4, 0},              {"record size above 16384", 5, 16385},
        {"raw AAD above the limit", 6, SDP_KSHIM_AAD_MAX + 1},
        {"length above the limit", 7, SDP_KSHIM_LEN_MAX + 1},
    };
    for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++) {
        kt_op_record(&op[0], 1, 2, 64, 64, 0, 0, buf, buf, tag, 64);
        switch (bad_ops[i].field) {
        case 0: op[0].idx = (uint32_t)bad_ops[i].v; break;
        case 1: op[0].len = (uint32_t)bad_ops[i].v; break;
        case 2: op[0].aad_len = (uint32_t)bad_ops[i].v; break;
        case 3: op[0].flags |= (uint32_t)bad_ops[i].v; break;
        case 4: op[0].msg_id = bad_ops[i].v; break;
        case 5: op[0].rec_size = (uint16_t)bad_ops[i].v, op[0].msg_len = 16385; break;
        case 6: op[0].flags = 0, op[0].msg_id = 0, op[0].msg_len = 0, op[0].rec_size = 0,
                op[0].aad_len = (uint32_t)bad_ops[i].v, op[0].aad = (uintptr_t)buf; break;
        default: op[0].flags = 0, op[0].msg_id = 0, op[0].msg_len = 0, op[0].rec_size = 0,
                 op[0].len = (uint32_t)bad_ops[i].v; break;
        }
        KT_CHECK(kt_batch(fd, 1, op, 1) == 1 && op[0].status == -EINVAL, "%s: status %d",
                 bad_ops[i].what, op[0].status);
    }
    struct sdp_kshim_batch bb = {.ops = (uintptr_t)op, .count = 0};
    KT_ERRNO(ioctl(fd, SDP_KSHIM_IOC_SEAL, &bb), EINVAL, "empty batch");
    bb.count = SDP_KSHIM_BATCH_MAX + 1;
    KT_ERRNO(ioctl(fd, SDP_KSHIM_IOC_SEAL, &bb), EINVAL, "batch above the limit");
    bb.count = 1, bb.flags = 1;
    KT_ERRNO(ioctl(fd, SDP_KSHIM_IOC_SEAL, &bb), EINVAL, "batch flags");
    bb.flags = 0, bb.ops = 8;
    KT_ERRNO(ioctl(fd, SDP_KSHIM_IOC_SEAL, &bb), EFAULT, "batch at a bad address");

    /* Attach: wrong socket types and descriptors. */
    int tcp = socket(AF_INET, SOCK_STREAM, 0), unx = socket(AF_UNIX, SOCK_DGRAM, 0);
    int udp = socket(AF_INET6, SOCK_DGRAM, 0), raw = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
    KT_ERRNO(attach(fd, tcp), EPROTONOSUPPORT, "attach TCP");
    KT_ERRNO(attach(fd, unx), EPROTONOSUPPORT, "attach unix");
    KT_ERRNO(attach(fd, raw), EPROTONOSUPPORT, "attach raw IP with protocol UDP");
    KT_ERRNO(attach(fd, fd), ENOTSOCK, "attach the device itself");
    KT_ERRNO(attach(fd, 999), EBADF, "attach a closed fd");
    KT_CHECK(attach(fd, udp) == 0, "attach UDP: %s", strerror(errno));
    KT_ERRNO(attach(fd, udp), EBUSY, "attach twice");
    int one = 1;
    KT_ERRNO(setsockopt(udp, IPPROTO_IPV6, IPV6_ADDRFORM, &one, sizeof(one)), EBUSY,
             "IPV6_ADDRFORM on an attached socket");
    kt_stats(&st);
    KT_CHECK(st.attached == st0.attached + 1, "attached %llu", (unsigned long long)st.attached);

    /* Send-path errors: keys, then malformed descriptors. */
    struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_port = htons(9),
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    const struct sdp_kshim_txdesc good = {.key_id = 1, .seg_size = 100, .hdr_len = 24,
                                          .msg_id = 2, .msg_len = 60, .rec_size = 60};
    struct sdp_kshim_txdesc d = good;
    d.key_id = 42;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), ENOKEY, "send with an unknown key");
    d.key_id = 3;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EKEYREJECTED, "send with an RX key");
    KT_CHECK(send_desc(udp, &dst, &good, 100, 0, 0, 1, 0) == 100, "good send: %s",
             strerror(errno));
    d = good, d.msg_len = 100, d.rec_size = 50;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "partial record");
    d = good, d.wire_off = 76;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "beyond the message");
    KT_ERRNO(send_desc(udp, &dst, &good, 101, 0, 0, 1, 0), EINVAL, "longer than the message");
    KT_ERRNO(send_desc(udp, &dst, &good, 100, MSG_MORE, 0, 1, 0), EINVAL, "MSG_MORE");
    KT_ERRNO(send_desc(udp, &dst, &good, 100, MSG_ZEROCOPY, 0, 1, 0), EINVAL, "MSG_ZEROCOPY");
    KT_ERRNO(send_desc(udp, &dst, &good, 100, 0, 50, 1, 0), EINVAL, "GSO size disagrees");
    KT_ERRNO(send_desc(udp, &dst, &good, 100, 0, 0, 2, 0), EINVAL, "two descriptors");
    KT_ERRNO(send_desc(udp, &dst, &good, 100, 0, 0, 1, -1), EINVAL, "short control message");
    d = good, d.aad_flags = 1;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "undefined AAD flag");
    d = good, d.reserved[4] = 1;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "reserved byte");
    d = good, d.msg_id = 0;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "message id 0");
    d = good, d.msg_id = 1ull << 48;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "message id above 48 bits");
    d = good, d.hdr_len = 100;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "header fills the datagram");
    d = good, d.rec_size = 0;
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EINVAL, "record size 0");

    KT_CHECK(del_key(fd, 1) == 0, "delete key");
    KT_ERRNO(del_key(fd, 1), ENOKEY, "delete twice");
    KT_ERRNO(send_desc(udp, &dst, &good, 100, 0, 0, 1, 0), ENOKEY, "send with a deleted key");
    kt_stats(&st);
    KT_CHECK(st.live_keys == st0.live_keys + 1, "keys after delete %llu",
             (unsigned long long)st.live_keys);
    close(fd);
    kt_stats(&st);
    /* The attached socket keeps the context (and its key 3) alive. */
    KT_CHECK(st.live_keys == st0.live_keys + 1, "keys with the socket open %llu",
             (unsigned long long)st.live_keys);
    close(udp);
    close(tcp);
    close(unx);
    close(raw);
    kt_stats(&st);
    KT_CHECK(st.live_keys == st0.live_keys && st.attached == st0.attached &&
                 st.live_ctx == st0.live_ctx,
             "everything released: keys %llu attached %llu ctx %llu",
             (unsigned long long)st.live_keys, (unsigned long long)st.attached,
             (unsigned long long)st.live_ctx);
    return 0;
}

/* Run with the module loaded as "insmod sdp_kshim.ko seal_limit=N". */
int kt_limit(int argc, char **argv)
{
    uint32_t lim = argc > 1 ? (uint32_t)atoi(argv[1]) : 50;
    int fd = kt_dev_open(), udp = socket(AF_INET6, SOCK_DGRAM, 0);
    uint8_t key[16] = {5}, iv[12] = {6}, buf[64] = {0}, tag[16];
    struct sdp_kshim_op o;
    struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_port = htons(9),
                               .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    const struct sdp_kshim_txdesc d = {.key_id = 1, .seg_size = 100, .hdr_len = 24, .msg_id = 2,
                                       .msg_len = 60, .rec_size = 60};

    KT_CHECK(kt_add_key(fd, 1, SDP_KSHIM_DIR_TX, key, 16, iv) == 0, "key");
    KT_CHECK(kt_add_key(fd, 2, SDP_KSHIM_DIR_TX, key, 16, iv) == 0, "key");
    KT_CHECK(attach(fd, udp) == 0, "attach");
    for (uint32_t i = 0; i + 1 < lim; i++) {
        kt_op_record(&o, 1, 2 + 2 * i, 64, 64, 0, 0, buf, buf, tag, 64);
        KT_CHECK(kt_batch(fd, 1, &o, 1) == 1 && o.status == 0, "seal %u: %d", i, o.status);
    }
    KT_CHECK(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0) == 100, "the last allowed seal (send)");
    KT_ERRNO(send_desc(udp, &dst, &d, 100, 0, 0, 1, 0), EKEYEXPIRED, "send past the limit");
    kt_op_record(&o, 1, 4, 64, 64, 0, 0, buf, buf, tag, 64);
    KT_CHECK(kt_batch(fd, 1, &o, 1) == 1 && o.status == -EKEYEXPIRED, "seal past the limit: %d",
             o.status);
    kt_op_record(&o, 2, 4, 64, 64, 0, 0, buf, buf, tag, 64);
    KT_CHECK(kt_batch(fd, 1, &o, 1) == 1 && o.status == 0, "another key still seals: %d",
             o.status);
    close(udp);
    close(fd);
    printf("KT   limit: key refused after %u seals (batch and send path)\n", lim);
    return 0;
}

/* ---- Wycheproof: lines "id result key iv aad msg ct tag" in hex, '-' empty */

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    for (; s[0] && s[1] && n < max; s += 2)
        sscanf(s, "%2hhx", &out[n++]);
    return n;
}

int kt_wycheproof(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char line[8192], fld[8][4096];
    static uint8_t key[32], iv[12], aad[2048], msg[2048], ct[2048], tag[16], out[2048], otag[16];
    int fd = kt_dev_open();
    unsigned valid = 0, invalid = 0, n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%4095s %4095s %4095s %4095s %4095s %4095s %4095s %4095s", fld[0], fld[1],
                   fld[2], fld[3], fld[4], fld[5], fld[6], fld[7]) != 8)
            continue;
        size_t kl = unhex(fld[2], key, 32), il = unhex(fld[3], iv, 12);
        size_t al = unhex(fld[4], aad, sizeof(aad)), ml = unhex(fld[5], msg, sizeof(msg));
        size_t cl = unhex(fld[6], ct, sizeof(ct)), tl = unhex(fld[7], tag, 16);
        int is_valid = strcmp(fld[1], "valid") == 0;
        n++;
        if (il != 12 || tl != 16 || cl != ml) {
            KT_CHECK(0, "vector %s malformed", fld[0]);
            continue;
        }
        KT_CHECK(kt_add_key(fd, 1, SDP_KSHIM_DIR_TX, key, kl, iv) == 0, "tc %s key", fld[0]);
        KT_CHECK(kt_add_key(fd, 2, SDP_KSHIM_DIR_RX, key, kl, iv) == 0, "tc %s key", fld[0]);
        struct sdp_kshim_op o = {.key_id = 2, .aad = (uintptr_t)aad, .aad_len = (uint32_t)al,
                                 .in = (uintptr_t)ct, .out = (uintptr_t)out, .len = (uint32_t)ml,
                                 .tag = (uintptr_t)tag, .status = 1};
        memset(out, 0xaa, sizeof(out));
        KT_CHECK(kt_batch(fd, 0, &o, 1) == 1, "tc %s open ioctl", fld[0]);
        if (is_valid) {
            KT_CHECK(o.status == 0 && memcmp(out, msg, ml) == 0, "tc %s open: %d", fld[0], o.status);
            o.key_id = 1, o.in = (uintptr_t)msg, o.tag = (uintptr_t)otag, o.status = 1;
            KT_CHECK(kt_batch(fd, 1, &o, 1) == 1 && o.status == 0, "tc %s seal", fld[0]);
            KT_CHECK(memcmp(out, ct, ml) == 0 && memcmp(otag, tag, 16) == 0, "tc %s seal bytes",
                     fld[0]);
            valid++;
        } else {
            uint8_t zero[2048] = {0};
            KT_CHECK(o.status == -EBADMSG, "tc %s invalid vector opened: %d", fld[0], o.status);
            KT_CHECK(memcmp(out, zero, ml) == 0, "tc %s output not zeroed", fld[0]);
            invalid++;
        }
        del_key(fd, 1);
        del_key(fd, 2);
    }
    fclose(f);
    close(fd);
    printf("KT   wycheproof: %u vectors, %u valid sealed+opened, %u invalid refused\n", n, valid,
           invalid);
    KT_CHECK(n > 100, "too few vectors (%u)", n);
    return 0;
}

/* ---- interop with OpenSSL through the library's record layer */

static const struct sdp_aead_provider *prov(const char *name)
{
    const struct sdp_aead_provider *p = NULL;
    int rc = sdp_aead_find(0, name, 0, &p);
    KT_CHECK(rc == 0, "provider %s: %d", name, rc);
    return p;
}

static void rand_layout(uint32_t *msg_len, uint16_t *rec_size)
{
    static const uint16_t sizes[] = {1, 16, 1000, 1400, 4096, 16383, 16384};
    *rec_size = kt_rand() % 3 ? sizes[kt_rand() % 7] : (uint16_t)(1 + kt_rand() % 16384);
    uint32_t nrec = 1 + (uint32_t)(kt_rand() % 6);
    *msg_len = kt_rand() % 8 == 0 ? 0 : (uint32_t)(kt_rand() % ((uint64_t)nrec * *rec_size + 1));
}

int kt_interop(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 300;
    static uint8_t pt[16384], a[16384], b[16384], back[16384];
    uint8_t ta[16], tb[16];
    unsigned recs = 0, ctls = 0, batches = 0;
    struct sdp_kshim_stats st0, st;
    kt_stats(&st0);
    int dev = kt_dev_open();

    for (int r = 0; r < rounds; r++) {
        int big = kt_rand() & 1;
        const struct sdp_aead_provider *po = prov(big ? "openssl-aes256gcm" : "openssl-aes128gcm");
        const struct sdp_aead_provider *pk = prov(big ? "kshim-aes256gcm" : "kshim-aes128gcm");
        if (!po || !pk)
            return 1;
        struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
        tk->suite = po->suite;
        tk->key_len = po->key_len;
        kt_fill(tk->key, sizeof(tk->key));
        kt_fill(tk->iv, 12);
        kt_fill(tk->ctl_key, sizeof(tk->ctl_key));
        kt_fill(tk->ctl_iv, 12);
        struct sdp_rec_key ro, rk;
        KT_CHECK(sdp_rec_key_init(&ro, po, tk, 0, 0) == 0, "openssl key");
        KT_CHECK(sdp_rec_key_init(&rk, pk, tk, 0, 0) == 0, "kshim key");
        /* The same key on the raw device, for record-mode ops. */
        KT_CHECK(kt_add_key(dev, 10, SDP_KSHIM_DIR_TX, tk->key, tk->key_len, tk->iv) == 0, "tx");
        KT_CHECK(kt_add_key(dev, 11, SDP_KSHIM_DIR_RX, tk->key, tk->key_len, tk->iv) == 0, "rx");

        for (int m = 0; m < 4; m++) {
            uint32_t msg_len;
            uint16_t rs;
            rand_layout(&msg_len, &rs);
            uint64_t id = 1 + kt_rand() % SDP_ID_MAX;
            uint8_t fl = kt_rand() & 1 ? SDP_F_EARLY : 0;
            uint32_t idx = (uint32_t)(kt_rand() % sdp_msg_nrec(msg_len, rs));
            uint32_t len = sdp_rec_len(msg_len, rs, idx);
            kt_fill(pt, len);
            /* OpenSSL seals, the kernel opens (in place), and the reverse. */
            KT_CHECK(sdp_rec_seal(&ro, id, msg_len, rs, idx, fl, pt, a, ta) == 0, "ossl seal");
            KT_CHECK(sdp_rec_seal(&rk, id, msg_len, rs, idx, fl, pt, b, tb) == 0, "kshim seal");
            KT_CHECK(memcmp(a, b, len) == 0 && memcmp(ta, tb, 16) == 0,
                     "records differ: id %llu len %u rs %u idx %u", (unsigned long long)id, msg_len,
                     rs, idx);
            memcpy(back, a, len);
            KT_CHECK(sdp_rec_open(&rk, id, msg_len, rs, idx, fl, back, ta, back) == 0 &&
                         memcmp(back, pt, len) == 0, "kernel open of an OpenSSL record");
            KT_CHECK(sdp_rec_open(&ro, id, msg_len, rs, idx, fl, b, tb, back) == 0 &&
                         memcmp(back, pt, len) == 0, "OpenSSL open of a kernel record");
            /* Record mode: the module builds the AAD and nonce itself. */
            struct sdp_kshim_op o;
            uint8_t tc[16];
            kt_op_record(&o, 10, id, msg_len, rs, idx, fl, pt, back, tc, len);
            KT_CHECK(kt_batch(dev, 1, &o, 1) == 1 && o.status == 0, "record seal %d", o.status);
            KT_CHECK(memcmp(back, a, len) == 0 && memcmp(tc, ta, 16) == 0, "record-mode bytes");
            kt_op_record(&o, 11, id, msg_len, rs, idx, fl, a, back, ta, len);
            KT_CHECK(kt_batch(dev, 0, &o, 1) == 1 && o.status == 0 && memcmp(back, pt, len) == 0,
                     "record open %d", o.status);
            /* Tampering: any flipped bit fails in the kernel and zeroes. */
            size_t bit = kt_rand() % ((len + 16) * 8);
            if (bit / 8 < len)
                a[bit / 8] ^= (uint8_t)(1 << bit % 8);
            else
                ta[bit / 8 - len] ^= (uint8_t)(1 << bit % 8);
            memset(back, 0x55, len);
            KT_CHECK(sdp_rec_open(&rk, id, msg_len, rs, idx, fl, a, ta, back) == SDP_EBADMSG,
                     "tampered record opened");
            KT_CHECK(len == 0 || (back[0] == 0 && back[len - 1] == 0), "not zeroed");
            /* Same record under a different index or length must fail. */
            if (sdp_msg_nrec(msg_len, rs) > 1 && sdp_rec_len(msg_len, rs, idx ^ 1) == len)
                KT_CHECK(sdp_rec_open(&rk, id, msg_len, rs, idx ^ 1, fl, b, tb, back) ==
                             SDP_EBADMSG, "moved record opened");
            recs++;
        }
        /* Control packets (empty plaintext, AAD = the packet). */
        uint8_t pk1[40], pk2[40];
        kt_fill(pk1, 40);
        uint64_t seq = kt_rand();
        for (int i = 0; i < 8; i++)
            pk1[16 + i] = (uint8_t)(seq >> (56 - 8 * i));
        memcpy(pk2, pk1, 40);
        KT_CHECK(sdp_ctl_seal(&ro, pk1, 40, seq) == 0 && sdp_ctl_seal(&rk, pk2, 40, seq) == 0,
                 "ctl seal");
        KT_CHECK(memcmp(pk1, pk2, 40) == 0, "control tags differ");
        KT_CHECK(sdp_ctl_open(&rk, pk1, 40, seq) == 0, "kernel opens an OpenSSL control tag");
        pk1[3] ^= 1;
        KT_CHECK(sdp_ctl_open(&rk, pk1, 40, seq) == SDP_EBADMSG, "tampered control packet");
        ctls++;
        /* A provider batch of random raw ops against OpenSSL's batch. */
        struct sdp_aead_op ops[8], oo[8];
        static uint8_t bin[8][2000], bo1[8][2000], bo2[8][2000], bt1[8][16], bt2[8][16], ad[8][40];
        for (int i = 0; i < 8; i++) {
            size_t l = kt_rand() % 2000;
            kt_fill(bin[i], l);
            kt_fill(ad[i], 40);
            ops[i] = (struct sdp_aead_op){.seq = kt_rand(), .aad = ad[i], .aad_len = kt_rand() % 41,
                                          .in = bin[i], .out = bo1[i], .len = l, .tag = bt1[i]};
            oo[i] = ops[i], oo[i].out = bo2[i], oo[i].tag = bt2[i];
        }
        KT_CHECK(pk->seal_batch(rk.data, ops, 8) == 8 && po->seal_batch(ro.data, oo, 8) == 8,
                 "batches");
        for (int i = 0; i < 8; i++)
            KT_CHECK(ops[i].status == 0 && memcmp(bo1[i], bo2[i], ops[i].len) == 0 &&
                         memcmp(bt1[i], bt2[i], 16) == 0, "batch op %d differs", i);
        for (int i = 0; i < 8; i++)
            ops[i].in = bo2[i], ops[i].out = bo1[i], ops[i].tag = bt2[i];
        KT_CHECK(pk->open_batch(rk.data, ops, 8) == 8, "open batch");
        for (int i = 0; i < 8; i++)
            KT_CHECK(ops[i].status == 0 && memcmp(bo1[i], bin[i], ops[i].len) == 0,
                     "batch open %d", i);
        batches++;
        del_key(dev, 10);
        del_key(dev, 11);
        sdp_rec_key_clear(&ro);
        sdp_rec_key_clear(&rk);
        sdp_traffic_keys_free(tk);
    }
    close(dev);
    kt_stats(&st);
    KT_CHECK(st.live_keys == st0.live_keys, "freed key objects left %lld keys installed",
             (long long)(st.live_keys - st0.live_keys));
    printf("KT   interop: %u records (both directions, record mode, tampering), %u control tags, "
           "%u provider batches\n", recs, ctls, batches);
    return 0;
}

/* ---- io_uring: IORING_OP_URING_CMD batches against the ioctl twin */

static void prep_cmd(struct io_uring_sqe *sqe, int fd, uint32_t op, struct sdp_kshim_op *ops,
                     uint32_t n, uint64_t ud)
{
    struct sdp_kshim_batch b = {.ops = (uintptr_t)ops, .count = n};
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
    sqe->cmd_op = op;
    memcpy(sqe->cmd, &b, sizeof(b));
    sqe->user_data = ud;
}

int kt_uring(int argc, char **argv)
{
    enum { NB = 8, NO = 16 };
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    struct io_uring ring;
    int fd = kt_dev_open(), rc = io_uring_queue_init(32, &ring, 0);
    static uint8_t pt[NB][NO][4096], c1[NB][NO][4096], c2[NB][NO][4096];
    static uint8_t t1[NB][NO][16], t2[NB][NO][16];
    static struct sdp_kshim_op ou[NB][NO], oi[NB][NO];
    uint8_t key[32], iv[12];
    unsigned done = 0;

    KT_CHECK(rc == 0, "io_uring_queue_init: %d", rc);
    if (rc)
        return 1;
    kt_fill(key, 32);
    kt_fill(iv, 12);
    KT_CHECK(kt_add_key(fd, 1, SDP_KSHIM_DIR_TX, key, 32, iv) == 0, "key");
    KT_CHECK(kt_add_key(fd, 2, SDP_KSHIM_DIR_RX, key, 32, iv) == 0, "key");
    for (int r = 0; r < rounds; r++) {
        for (int b = 0; b < NB; b++)
            for (int i = 0; i < NO; i++) {
                uint32_t ml = 1 + (uint32_t)(kt_rand() % 4096);
                uint64_t id = 2 + 2 * (kt_rand() % 1000000);
                kt_fill(pt[b][i], ml);
                kt_op_record(&ou[b][i], 1, id, ml, 4096, 0, 0, pt[b][i], c1[b][i], t1[b][i], ml);
                oi[b][i] = ou[b][i];
                oi[b][i].out = (uintptr_t)c2[b][i];
                oi[b][i].tag = (uintptr_t)t2[b][i];
            }
        for (int b = 0; b < NB; b++)
            prep_cmd(io_uring_get_sqe(&ring), fd, SDP_KSHIM_CMD_SEAL, ou[b], NO, (uint64_t)b);
        KT_CHECK(io_uring_submit(&ring) == NB, "submit");
        for (int b = 0; b < NB; b++) {
            struct io_uring_cqe *cqe;
            KT_CHECK(io_uring_wait_cqe(&ring, &cqe) == 0, "wait");
            KT_CHECK(cqe->res == NO, "batch %llu res %d", (unsigned long long)cqe->user_data,
                     cqe->res);
            io_uring_cqe_seen(&ring, cqe);
        }
        for (int b = 0; b < NB; b++) {
            KT_CHECK(kt_batch(fd, 1, oi[b], NO) == NO, "ioctl twin");
            for (int i = 0; i < NO; i++) {
                KT_CHECK(ou[b][i].status == 0 && oi[b][i].status == 0, "status");
                KT_CHECK(memcmp(c1[b][i], c2[b][i], ou[b][i].len) == 0 &&
                             memcmp(t1[b][i], t2[b][i], 16) == 0, "uring and ioctl differ");
                /* Now open the sealed copies through io_uring, in place. */
                ou[b][i].key_id = 2;
                ou[b][i].in = ou[b][i].out = (uintptr_t)c1[b][i];
                ou[b][i].status = 1;
            }
            prep_cmd(io_uring_get_sqe(&ring), fd, SDP_KSHIM_CMD_OPEN, ou[b], NO, 100u + b);
        }
        KT_CHECK(io_uring_submit(&ring) == NB, "submit open");
        for (int b = 0; b < NB; b++) {
            struct io_uring_cqe *cqe;
            KT_CHECK(io_uring_wait_cqe(&ring, &cqe) == 0, "wait");
            KT_CHECK(cqe->res == NO, "open res %d", cqe->res);
            io_uring_cqe_seen(&ring, cqe);
        }
        for (int b = 0; b < NB; b++)
            for (int i = 0; i < NO; i++)
                KT_CHECK(ou[b][i].status == 0 && memcmp(c1[b][i], pt[b][i], ou[b][i].len) == 0,
                         "uring open %d/%d: %d", b, i, ou[b][i].status);
        done += NB * NO;
    }
    /* Bad commands complete with an error, not a hang. */
    struct io_uring_cqe *cqe;
    prep_cmd(io_uring_get_sqe(&ring), fd, 77, ou[0], NO, 1);
    prep_cmd(io_uring_get_sqe(&ring), fd, SDP_KSHIM_CMD_SEAL, ou[0], 0, 2);
    prep_cmd(io_uring_get_sqe(&ring), fd, SDP_KSHIM_CMD_SEAL, (void *)8, 4, 3);
    io_uring_submit(&ring);
    for (int i = 0; i < 3; i++) {
        KT_CHECK(io_uring_wait_cqe(&ring, &cqe) == 0, "wait");
        int want = cqe->user_data == 3 ? -EFAULT : -EINVAL;
        KT_CHECK(cqe->res == want, "bad command %llu: res %d want %d",
                 (unsigned long long)cqe->user_data, cqe->res, want);
        io_uring_cqe_seen(&ring, cqe);
    }
    io_uring_queue_exit(&ring);
    close(fd);
    printf("KT   uring: %u records sealed and opened by IORING_OP_URING_CMD, identical to ioctl\n",
           done);
    return 0;
}

/* ---- a caller killed in the middle of big batches (ioctl and io_uring) */

static void batch_forever(int use_uring)
{
    enum { N = 1024, L = 16384 };
    int fd = kt_dev_open();
    uint8_t key[16] = {1}, iv[12] = {2};
    uint8_t *buf = malloc(L), *tag = malloc(16 * N);
    struct sdp_kshim_op *ops = calloc(N, sizeof(*ops));
    struct io_uring ring;

    kt_add_key(fd, 1, SDP_KSHIM_DIR_TX, key, 16, iv);
    for (int i = 0; i < N; i++)
        kt_op_record(&ops[i], 1, 2, L, L, 0, 0, buf, buf, tag + 16 * i, L);
    if (use_uring && io_uring_queue_init(8, &ring, 0) == 0) {
        for (;;) {
            for (int i = 0; i < 4; i++)
                prep_cmd(io_uring_get_sqe(&ring), fd, SDP_KSHIM_CMD_SEAL, ops, N, 0);
            io_uring_submit_and_wait(&ring, 4);
            io_uring_cq_advance(&ring, 4);
        }
    }
    for (;;)
        kt_batch(fd, 1, ops, N);
}

int kt_killbatch(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 8;
    struct sdp_kshim_stats st0, st;

    kt_stats(&st0);
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            batch_forever(r & 1);
            _exit(0);
        }
        struct timespec ts = {0, (long)(50 + kt_rand() % 400) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        KT_CHECK(WIFSIGNALED(status), "child %d was not killed", r);
    }
    /* io_uring tears a dead ring down in a worker: give it time. */
    for (int i = 0; i < 100; i++) {
        kt_stats(&st);
        if (st.live_bufs == 0 && st.live_keys == st0.live_keys && st.live_ctx == st0.live_ctx)
            break;
        usleep(100000);
    }
    KT_CHECK(st.live_bufs == 0 && st.live_keys == st0.live_keys && st.live_ctx == st0.live_ctx,
             "leak after killed callers: bufs %llu keys %llu ctx %llu",
             (unsigned long long)st.live_bufs, (unsigned long long)st.live_keys,
             (unsigned long long)st.live_ctx);
    printf("KT   killbatch: %d callers killed mid-batch (%llu records sealed), nothing left\n",
           rounds, (unsigned long long)(st.sealed - st0.sealed));
    return 0;
}

/* ---- fuzz: random descriptors, ops and control messages */

static uint64_t fuzz_ptr(uint8_t *good, size_t good_len)
{
    static const uint64_t bad[] = {0, 8, 0x1000, 0xffff888000000000u, 0x7fffffffe000u, ~0ull};
    switch (kt_rand() % 4) {
    case 0: return bad[kt_rand() % 6];
    case 1: return (uintptr_t)good + good_len - kt_rand() % 64; /* runs off the end */
    default: return (uintptr_t)good + kt_rand() % 64;
    }
}

static uint64_t fuzz_num(uint64_t max)
{
    switch (kt_rand() % 5) {
    case 0: return kt_rand();
    case 1: return max;
    case 2: return max + 1;
    case 3: return 0;
    default: return kt_rand() % (max + 1);
    }
}

int kt_fuzz(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 3000;
    int fd = kt_dev_open();
    size_t glen = 3 * 65536;
    uint8_t *good = mmap(NULL, glen + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
    munmap(good + glen, 4096); /* a hole right after the buffer */
    uint8_t key[16] = {7}, iv[12] = {8};
    static struct sdp_kshim_op ops[64];
    unsigned refused = 0, accepted = 0, tx_ok = 0, tx_bad = 0;

    kt_fill(good, glen);
    kt_add_key(fd, 1, SDP_KSHIM_DIR_TX, key, 16, iv);
    kt_add_key(fd, 2, SDP_KSHIM_DIR_RX, key, 16, iv);
    for (int it = 0; it < iters; it++) {
        uint32_t n = 1 + (uint32_t)(kt_rand() % 8);
        for (uint32_t i = 0; i < n; i++) {
            struct sdp_kshim_op *o = &ops[i];
            memset(o, 0, sizeof(*o));
            o->key_id = (uint32_t)(kt_rand() % 4);
            o->flags = kt_rand() % 8 ? (uint32_t)(kt_rand() & 1) : (uint32_t)kt_rand();
            o->len = (uint32_t)fuzz_num(kt_rand() & 1 ? 16384 : 65536);
            o->in = fuzz_ptr(good, glen);
            o->out = fuzz_ptr(good, glen);
            o->tag = fuzz_ptr(good, glen);
            if (o->flags & SDP_KSHIM_OP_RECORD) {
                o->msg_id = fuzz_num(1ull << 48);
                o->msg_len = (uint32_t)fuzz_num(1u << 30);
                o->rec_size = (uint16_t)fuzz_num(16384);
                o->idx = (uint32_t)fuzz_num(65536);
                o->aad_flags = (uint8_t)(kt_rand() % 3 ? 0 : kt_rand());
            } else {
                o->seq = kt_rand();
                o->aad = fuzz_ptr(good, glen);
                o->aad_len = (uint32_t)fuzz_num(1024);
            }
            if (kt_rand() % 16 == 0)
                o->reserved = (uint8_t)kt_rand();
        }
        struct sdp_kshim_batch b = {.ops = kt_rand() % 16 ? (uintptr_t)ops : fuzz_ptr(good, glen),
                                    .count = kt_rand() % 16 ? n : (uint32_t)fuzz_num(2048),
                                    .flags = kt_rand() % 16 ? 0 : (uint32_t)kt_rand()};
        if (b.count > 64 && b.ops == (uintptr_t)ops)
            b.count = 64;
        int rc = ioctl(fd, kt_rand() & 1 ? SDP_KSHIM_IOC_SEAL : SDP_KSHIM_IOC_OPEN, &b);
        if (rc < 0)
            refused++;
        else
            accepted++;
    }

    /* Control messages on an attached socket sending to a closed port. */
    struct sdp_kshim_stats st0;
    kt_stats(&st0);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sdp_kshim_attach a = {.fd = s};
    KT_CHECK(ioctl(fd, SDP_KSHIM_IOC_ATTACH, &a) == 0, "attach");
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(9),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int it = 0; it < iters; it++) {
        union { char b[256]; struct cmsghdr a; } cb;
        /* A valid descriptor (whole message, GSO when it takes several
         * datagrams), then none, one or two mutations. */
        uint16_t rs = (uint16_t)(1 + kt_rand() % 3000), pay = (uint16_t)(100 + kt_rand() % 1300);
        uint32_t ml = (uint32_t)(kt_rand() % 3000);
        uint32_t wl = (uint32_t)sdp_msg_wire_len(ml, rs), nd = (wl + pay - 1) / pay;
        struct sdp_kshim_txdesc d = {.key_id = 1, .seg_size = (uint16_t)(pay + 24), .hdr_len = 24,
                                     .msg_id = 2 + kt_rand() % 1000, .msg_len = ml,
                                     .rec_size = rs};
        size_t len = wl + (size_t)nd * 24;
        uint16_t gso = nd > 1 ? d.seg_size : 0;
        int muts = (int)(kt_rand() % 3);
        for (int i = 0; i < muts; i++) {
            switch (kt_rand() % 11) {
            case 0: d.key_id = (uint32_t)(kt_rand() % 4); break;
            case 1: d.seg_size = (uint16_t)fuzz_num(1500); break;
            case 2: d.hdr_len = (uint16_t)fuzz_num(1500); break;
            case 3: d.msg_id = fuzz_num(1ull << 48); break;
            case 4: d.msg_len = (uint32_t)fuzz_num(1u << 30); break;
            case 5: d.wire_off = (uint32_t)fuzz_num(wl); break;
            case 6: d.rec_size = (uint16_t)fuzz_num(16384); break;
            case 7: d.aad_flags = (uint8_t)kt_rand(); break;
            case 8: d.reserved[kt_rand() % 5] = (uint8_t)(1 + kt_rand() % 255); break;
            case 9: len = kt_rand() % 2 ? len + 1 - kt_rand() % 3 : kt_rand() % 70000; break;
            default: gso = (uint16_t)fuzz_num(1500); break;
            }
        }
        if (len > glen)
            len = glen;
        struct iovec iov = {.iov_base = kt_rand() % 16 ? good : (void *)(uintptr_t)fuzz_ptr(good, glen),
                            .iov_len = len};
        struct msghdr m = {.msg_name = &dst, .msg_namelen = sizeof(dst), .msg_iov = &iov,
                           .msg_iovlen = 1, .msg_control = cb.b};
        struct cmsghdr *c;
        size_t used = 0;
        memset(cb.b, 0, sizeof(cb.b));
        if (gso || kt_rand() % 8 == 0) {
            c = (struct cmsghdr *)cb.b;
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = 103; /* UDP_SEGMENT */
            c->cmsg_len = CMSG_LEN(2);
            memcpy(CMSG_DATA(c), &gso, 2);
            used += CMSG_SPACE(2);
        }
        int nc = kt_rand() % 8 ? 1 : (int)(kt_rand() % 3);
        for (int i = 0; i < nc; i++) {
            c = (struct cmsghdr *)(cb.b + used);
            size_t dl = kt_rand() % 8 ? sizeof(d) : kt_rand() % 48;
            c->cmsg_len = CMSG_LEN(dl);
            c->cmsg_level = SOL_SDP_KSHIM;
            c->cmsg_type = kt_rand() % 16 ? SDP_KSHIM_CMSG_TX : (int)kt_rand();
            memcpy(CMSG_DATA(c), &d, dl < sizeof(d) ? dl : sizeof(d));
            if (kt_rand() % 32 == 0)
                c->cmsg_len = kt_rand() % 300;
            used += CMSG_SPACE(dl);
        }
        m.msg_controllen = used;
        ssize_t rc = sendmsg(s, &m, kt_rand() % 16 ? 0 : MSG_MORE);
        if (rc < 0)
            tx_bad++;
        else
            tx_ok++;
        if (kt_rand() % 64 == 0) { /* reset any corked state */
            close(s);
            s = socket(AF_INET, SOCK_DGRAM, 0);
            a.fd = s;
            ioctl(fd, SDP_KSHIM_IOC_ATTACH, &a);
        }
    }
    close(s);

    /* Still healthy: a good op works and nothing is left allocated. */
    uint8_t pt[100], ct[100], tg[16];
    struct sdp_kshim_op o;
    kt_fill(pt, 100);
    kt_op_record(&o, 1, 4, 100, 100, 0, 0, pt, ct, tg, 100);
    KT_CHECK(kt_batch(fd, 1, &o, 1) == 1 && o.status == 0, "seal after fuzz");
    kt_op_record(&o, 2, 4, 100, 100, 0, 0, ct, ct, tg, 100);
    KT_CHECK(kt_batch(fd, 0, &o, 1) == 1 && o.status == 0 && memcmp(ct, pt, 100) == 0,
             "open after fuzz");
    struct sdp_kshim_stats st;
    kt_stats(&st);
    KT_CHECK(st.live_bufs == 0, "buffers left: %llu", (unsigned long long)st.live_bufs);
    close(fd);
    printf("KT   fuzz: %d batches (%u refused, %u ran), %d sends (%u refused, %u sent, %llu of "
           "them sealed)\n", iters, refused, accepted, iters, tx_bad, tx_ok,
           (unsigned long long)(st.tx_segments - st0.tx_segments));
    KT_CHECK(st.tx_segments > st0.tx_segments && tx_bad > 0, "the fuzz loop missed a path");
    return 0;
}
