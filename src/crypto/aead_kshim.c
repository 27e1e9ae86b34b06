/* AES-GCM through the sdp_kshim kernel module (kshim/, docs/KSHIM.md).
 *
 * The process shares one file on /dev/sdp_kshim, so that one attached UDP
 * socket can send under every key the process installs (data and control
 * keys, every generation).  Each key object installs its key twice there,
 * kTLS-style, as a TX key (seal) and an RX key (open) with ids of its own.
 * The module builds nonces from the installed IV, so this file never sees
 * one.  Batches go to the kernel in one ioctl.
 *
 * Chosen by name only ("kshim-aes128gcm", "kshim-aes256gcm"): it comes
 * after OpenSSL in the registry.  When the device is absent, available()
 * is 0 and key_new says why on stderr, unless SDP_KSHIM_FALLBACK=openssl
 * asks for OpenSSL in its place (also announced). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/tls.h>

#include "../../kshim/uapi/sdp_kshim.h"
#include "crypto/aead.h"
#include "crypto/aead_impl.h"
#include "crypto/aead_kshim.h"
#include "crypto/keymem.h"
#include "sdp/sdp.h"

struct sdp_aead_key {
    uint32_t tx_id, rx_id;               /* 0 when fb is used */
    const struct sdp_aead_provider *fbp; /* OpenSSL fallback provider */
    struct sdp_aead_key *fb;
};

static pthread_mutex_t kshim_dev_lock = PTHREAD_MUTEX_INITIALIZER;
static int kshim_devfd = -1;
static _Atomic uint32_t kshim_next_id;

/* Opened on first use and kept (it pins the module while the process
 * runs); retried while the module is not loaded. */
int sdp_aead_kshim_dev_fd(void)
{
    pthread_mutex_lock(&kshim_dev_lock);
    if (kshim_devfd < 0)
        kshim_devfd = open(SDP_KSHIM_DEV, O_RDWR | O_CLOEXEC);
    int fd = kshim_devfd;
    pthread_mutex_unlock(&kshim_dev_lock);
    return fd;
}

int sdp_aead_kshim_attach(int sock_fd)
{
    int dev = sdp_aead_kshim_dev_fd();
    if (dev < 0)
        return SDP_EUNAVAIL;
    struct sdp_kshim_attach a = {.fd = sock_fd};
    return ioctl(dev, SDP_KSHIM_IOC_ATTACH, &a) == 0 ? 0 : SDP_EINVAL;
}

uint32_t sdp_aead_kshim_tx_id(const struct sdp_aead_key *k)
{
    return k != NULL ? k->tx_id : 0;
}

uint32_t sdp_aead_kshim_rx_id(const struct sdp_aead_key *k)
{
    return k != NULL ? k->rx_id : 0;
}

static _Thread_local const struct sdp_aead_kshim_opened *kshim_opened;
static _Thread_local size_t kshim_nopened, kshim_opened_next;
static _Atomic uint64_t kshim_c_tx, kshim_c_batches, kshim_c_records, kshim_c_hits, kshim_c_misses;

void sdp_aead_kshim_opened_set(const struct sdp_aead_kshim_opened *recs, size_t n)
{
    kshim_opened = n ? recs : NULL;
    kshim_nopened = n;
    kshim_opened_next = 0;
}

void sdp_aead_kshim_counters(struct sdp_aead_kshim_counters *out)
{
    out->tx_sends = atomic_load(&kshim_c_tx);
    out->rx_batches = atomic_load(&kshim_c_batches);
    out->rx_records = atomic_load(&kshim_c_records);
    out->rx_hits = atomic_load(&kshim_c_hits);
    out->rx_misses = atomic_load(&kshim_c_misses);
}

void sdp_aead_kshim_count_tx(void)
{
    atomic_fetch_add_explicit(&kshim_c_tx, 1, memory_order_relaxed);
}

void sdp_aead_kshim_count_rx_batch(uint32_t records)
{
    atomic_fetch_add_explicit(&kshim_c_batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&kshim_c_records, records, memory_order_relaxed);
}

/* An opened record with exactly these inputs: the core reads records in
 * the order they arrived, so the search starts after the last hit. */
static const struct sdp_aead_kshim_opened *kshim_opened_find(uint32_t id, uint64_t seq, const uint8_t *aad,
                                                             size_t aad_len, const uint8_t *ct, size_t len,
                                                             const uint8_t *tag)
{
    for (size_t k = 0; k < kshim_nopened; k++) {
        size_t i = (kshim_opened_next + k) % kshim_nopened;
        const struct sdp_aead_kshim_opened *o = &kshim_opened[i];
        if (o->rx_id != id || o->seq != seq || o->len != len || aad_len != sizeof(o->aad) ||
            memcmp(o->aad, aad, sizeof(o->aad)) != 0 || memcmp(o->tag, tag, SDP_AEAD_TAG_LEN) != 0 ||
            (len && memcmp(o->ct, ct, len) != 0))
            continue;
        kshim_opened_next = i + 1;
        return o;
    }
    return NULL;
}

static int kshim_fallback_wanted(void)
{
    const char *v = getenv("SDP_KSHIM_FALLBACK");
    return v != NULL && strcmp(v, "openssl") == 0;
}

static int kshim_dev_present(void)
{
    return access(SDP_KSHIM_DEV, R_OK | W_OK) == 0;
}

static pthread_once_t kshim_note_once = PTHREAD_ONCE_INIT;

static void kshim_note(void)
{
    const char *why = access(SDP_KSHIM_DEV, F_OK) == 0 ? "is not accessible"
                                                       : "is absent (module sdp_kshim not loaded)";
    if (kshim_fallback_wanted())
        fprintf(stderr, "sdp: kshim: %s %s: using OpenSSL (SDP_KSHIM_FALLBACK=openssl)\n",
                SDP_KSHIM_DEV, why);
    else
        fprintf(stderr, "sdp: kshim: %s %s: provider unavailable; set "
                        "SDP_KSHIM_FALLBACK=openssl to fall back\n", SDP_KSHIM_DEV, why);
}

int sdp_aead_kshim_probe(int fallback)
{
    static atomic_int said;
    if (sdp_aead_kshim_dev_fd() >= 0)
        return 1;
    if (!atomic_exchange(&said, 1))
        fprintf(stderr, "sdp: kernel crypto: %s %s: %s\n", SDP_KSHIM_DEV,
                errno == ENOENT ? "is absent (module sdp_kshim not loaded)" : strerror(errno),
                fallback ? "using OpenSSL (fallback configured)"
                         : "refused (SDP_EUNAVAIL); load the module or allow the OpenSSL fallback");
    return 0;
}

static int kshim_available(void)
{
    return kshim_dev_present() || kshim_fallback_wanted();
}

static void kshim_del(uint32_t id)
{
    struct sdp_kshim_keyref r = {.key_id = id};
    if (id != 0)
        ioctl(kshim_devfd, SDP_KSHIM_IOC_DEL_KEY, &r); /* the module wipes it */
}

static void kshim_key_free(struct sdp_aead_key *k)
{
    if (k == NULL)
        return;
    kshim_del(k->tx_id);
    kshim_del(k->rx_id);
    if (k->fbp != NULL)
        k->fbp->key_free(k->fb);
    sdp_keymem_free(k);
}

static void kshim_key_idle(struct sdp_aead_key *k)
{
    if (k != NULL && k->fbp != NULL && k->fbp->key_idle != NULL)
        k->fbp->key_idle(k->fb);
}

static int kshim_install(int fd, uint32_t id, uint32_t dir, const uint8_t *key, size_t key_len,
                         const uint8_t iv[SDP_AEAD_IV_LEN])
{
    struct tls12_crypto_info_aes_gcm_256 g256;
    struct tls12_crypto_info_aes_gcm_128 g128;
    struct sdp_kshim_key req = {.key_id = id, .direction = dir};
    int rc;

    /* IV = salt (4 bytes) || iv (8 bytes); rec_seq stays 0. */
    if (key_len == 16) {
        memset(&g128, 0, sizeof(g128));
        g128.info.version = TLS_1_3_VERSION;
        g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
        memcpy(g128.key, key, 16);
        memcpy(g128.salt, iv, 4);
        memcpy(g128.iv, iv + 4, 8);
        req.info = (uintptr_t)&g128;
        req.info_len = sizeof(g128);
    } else {
        memset(&g256, 0, sizeof(g256));
        g256.info.version = TLS_1_3_VERSION;
        g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
        memcpy(g256.key, key, 32);
        memcpy(g256.salt, iv, 4);
        memcpy(g256.iv, iv + 4, 8);
        req.info = (uintptr_t)&g256;
        req.info_len = sizeof(g256);
    }
    rc = ioctl(fd, SDP_KSHIM_IOC_ADD_KEY, &req);
    sdp_keymem_wipe(&g128, sizeof(g128));
    sdp_keymem_wipe(&g256, sizeof(g256));
    return rc;
}

static int kshim_key_new_len(const struct sdp_aead_provider *fbp, size_t want, const uint8_t *key,
                             size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                             struct sdp_aead_key **out)
{
    if (out == NULL)
        return SDP_EINVAL;
    *out = NULL;
    if (key == NULL || iv == NULL || key_len != want)
        return SDP_EINVAL;
    struct sdp_aead_key *k = sdp_keymem_alloc(sizeof(*k));
    if (k == NULL)
        return SDP_ENOMEM;
    int dev = sdp_aead_kshim_dev_fd();
    if (dev < 0) {
        pthread_once(&kshim_note_once, kshim_note);
        if (!kshim_fallback_wanted()) {
            sdp_keymem_free(k);
            return SDP_EUNAVAIL;
        }
        k->fbp = fbp;
        int rc = fbp->key_new(key, key_len, iv, &k->fb);
        if (rc != 0) {
            sdp_keymem_free(k);
            return rc;
        }
        *out = k;
        return 0;
    }
    /* Ids are never reused within the process (2^31 key objects). */
    uint32_t base = atomic_fetch_add(&kshim_next_id, 2);
    if (base > UINT32_MAX - 2) {
        sdp_keymem_free(k);
        return SDP_ELIMIT;
    }
    if (kshim_install(dev, base + 1, SDP_KSHIM_DIR_TX, key, key_len, iv) == 0)
        k->tx_id = base + 1;
    if (k->tx_id == 0 || kshim_install(dev, base + 2, SDP_KSHIM_DIR_RX, key, key_len, iv) != 0) {
        int e = errno;
        kshim_key_free(k);
        return e == ENOMEM ? SDP_ENOMEM : e == ENOENT || e == ENODEV ? SDP_EUNAVAIL : SDP_ECRYPTO;
    }
    k->rx_id = base + 2;
    *out = k;
    return 0;
}

static int kshim_key_new128(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                            struct sdp_aead_key **out)
{
    return kshim_key_new_len(&sdp_aead_openssl_aes128gcm, 16, key, key_len, iv, out);
}

static int kshim_key_new256(const uint8_t *key, size_t key_len, const uint8_t iv[SDP_AEAD_IV_LEN],
                            struct sdp_aead_key **out)
{
    return kshim_key_new_len(&sdp_aead_openssl_aes256gcm, 32, key, key_len, iv, out);
}

static int kshim_status(int st)
{
    switch (st) {
    case 0: return 0;
    case -EBADMSG: return SDP_EBADMSG;
    case -EINVAL: return SDP_EINVAL;
    case -ENOMEM: return SDP_ENOMEM;
    case -EKEYEXPIRED: return SDP_EKEYLIMIT;
    }
    return SDP_ECRYPTO;
}

static void kshim_op_fill(struct sdp_kshim_op *o, uint32_t id, uint64_t seq, const uint8_t *aad,
                          size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    memset(o, 0, sizeof(*o));
    o->key_id = id;
    o->seq = seq;
    o->aad = (uintptr_t)aad;
    o->aad_len = (uint32_t)aad_len;
    o->in = (uintptr_t)in;
    o->out = (uintptr_t)out;
    o->len = (uint32_t)len;
    o->tag = (uintptr_t)tag;
}

/* One ioctl for n ops (n at most SDP_KSHIM_BATCH_MAX); statuses into ops. */
static int kshim_run(struct sdp_aead_key *k, int seal, struct sdp_kshim_op *kops, uint32_t n)
{
    struct sdp_kshim_batch b = {.ops = (uintptr_t)kops, .count = n};
    (void)k;
    int rc = ioctl(kshim_devfd, seal ? SDP_KSHIM_IOC_SEAL : SDP_KSHIM_IOC_OPEN, &b);
    if (rc < 0)
        return errno == ENOMEM ? SDP_ENOMEM : SDP_ECRYPTO;
    for (uint32_t i = (uint32_t)rc; i < n; i++)
        kops[i].status = -EINTR; /* not processed */
    return 0;
}

static int kshim_seal(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                      const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[SDP_AEAD_TAG_LEN])
{
    struct sdp_kshim_op o;

    if (k == NULL)
        return SDP_EINVAL;
    if (k->fbp != NULL)
        return k->fbp->seal(k->fb, seq, aad, aad_len, pt, len, ct, tag);
    if (len > SDP_KSHIM_LEN_MAX || aad_len > SDP_KSHIM_AAD_MAX)
        return SDP_EINVAL;
    kshim_op_fill(&o, k->tx_id, seq, aad, aad_len, pt, len, ct, tag);
    int rc = kshim_run(k, 1, &o, 1);
    return rc != 0 ? rc : kshim_status(o.status);
}

static int kshim_open(struct sdp_aead_key *k, uint64_t seq, const uint8_t *aad, size_t aad_len,
                      const uint8_t *ct, size_t len, const uint8_t tag[SDP_AEAD_TAG_LEN], uint8_t *pt)
{
    struct sdp_kshim_op o;

    if (k == NULL)
        return SDP_EINVAL;
    if (k->fbp != NULL)
        return k->fbp->open(k->fb, seq, aad, aad_len, ct, len, tag, pt);
    if (len > SDP_KSHIM_LEN_MAX || aad_len > SDP_KSHIM_AAD_MAX)
        return SDP_EINVAL;
    if (kshim_opened != NULL) {
        const struct sdp_aead_kshim_opened *hit = kshim_opened_find(k->rx_id, seq, aad, aad_len, ct, len, tag);
        if (hit != NULL) {
            if (len)
                memmove(pt, hit->pt, len);
            atomic_fetch_add_explicit(&kshim_c_hits, 1, memory_order_relaxed);
            return 0;
        }
        atomic_fetch_add_explicit(&kshim_c_misses, 1, memory_order_relaxed);
    }
    kshim_op_fill(&o, k->rx_id, seq, aad, aad_len, ct, len, pt, (uint8_t *)(uintptr_t)tag);
    int rc = kshim_run(k, 0, &o, 1);
    if (rc == 0)
        rc = kshim_status(o.status);
    if (rc != 0 && rc != SDP_EBADMSG && len)
        memset(pt, 0, len); /* the kernel zeroes on SDP_EBADMSG itself */
    return rc;
}

static int kshim_batch(struct sdp_aead_key *k, int seal, struct sdp_aead_op *ops, size_t n)
{
    struct sdp_kshim_op kops[64];

    if (k == NULL || n > (size_t)INT32_MAX)
        return SDP_EINVAL;
    if (k->fbp != NULL)
        return seal ? sdp_aead_seal_batch_sync(k->fbp, k->fb, ops, n)
                    : sdp_aead_open_batch_sync(k->fbp, k->fb, ops, n);
    for (size_t done = 0; done < n;) {
        uint32_t m = n - done < 64 ? (uint32_t)(n - done) : 64;
        for (uint32_t i = 0; i < m; i++) {
            struct sdp_aead_op *op = &ops[done + i];
            kshim_op_fill(&kops[i], seal ? k->tx_id : k->rx_id, op->seq, op->aad,
                          op->aad_len, op->in, op->len, op->out, op->tag);
        }
        int rc = kshim_run(k, seal, kops, m);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < m; i++) {
            struct sdp_aead_op *op = &ops[done + i];
            op->status = kshim_status(kops[i].status);
            if (op->status != 0 && op->status != SDP_EBADMSG && !seal && op->len)
                memset(op->out, 0, op->len);
        }
        done += m;
    }
    return (int)n;
}

static int kshim_seal_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return kshim_batch(k, 1, ops, n);
}

static int kshim_open_batch(struct sdp_aead_key *k, struct sdp_aead_op *ops, size_t n)
{
    return kshim_batch(k, 0, ops, n);
}

const struct sdp_aead_provider sdp_aead_kshim_aes128gcm = {
    .name = "kshim-aes128gcm",
    .suite = SDP_SUITE_AES128GCM,
    .key_len = 16,
    .flags = 0,
    .available = kshim_available,
    .key_new = kshim_key_new128,
    .key_free = kshim_key_free,
    .key_idle = kshim_key_idle,
    .seal = kshim_seal,
    .open = kshim_open,
    .seal_batch = kshim_seal_batch,
    .open_batch = kshim_open_batch,
    .poll = NULL,
};

const struct sdp_aead_provider sdp_aead_kshim_aes256gcm = {
    .name = "kshim-aes256gcm",
    .suite = SDP_SUITE_AES256GCM,
    .key_len = 32,
    .flags = 0,
    .available = kshim_available,
    .key_new = kshim_key_new256,
    .key_free = kshim_key_free,
    .key_idle = kshim_key_idle,
    .seal = kshim_seal,
    .open = kshim_open,
    .seal_batch = kshim_seal_batch,
    .open_batch = kshim_open_batch,
    .poll = NULL,
};
