/* kshim-test SUBCOMMAND [args]: one guest test per subcommand. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/tls.h>

#include "kt.h"

int kt_failures;
static uint64_t kt_state = 0x9e3779b97f4a7c15u;

void kt_seed(uint64_t s)
{
    kt_state = s ? s : 1;
}

uint64_t kt_rand(void) /* xorshift64*: repeatable from the printed seed */
{
    kt_state ^= kt_state >> 12;
    kt_state ^= kt_state << 25;
    kt_state ^= kt_state >> 27;
    return kt_state * 0x2545f4914f6cdd1du;
}

void kt_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)kt_rand();
}

int kt_dev_open(void)
{
    int fd = open(SDP_KSHIM_DEV, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror("open " SDP_KSHIM_DEV);
        exit(2);
    }
    return fd;
}

int kt_add_key(int fd, uint32_t id, uint32_t dir, const uint8_t *key, size_t key_len,
               const uint8_t iv[12])
{
    struct tls12_crypto_info_aes_gcm_128 g128;
    struct tls12_crypto_info_aes_gcm_256 g256;
    struct sdp_kshim_key k = {.key_id = id, .direction = dir};

    memset(&g128, 0, sizeof(g128));
    memset(&g256, 0, sizeof(g256));
    if (key_len == 16) {
        g128.info.version = TLS_1_3_VERSION;
        g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
        memcpy(g128.key, key, 16);
        memcpy(g128.salt, iv, 4);
        memcpy(g128.iv, iv + 4, 8);
        k.info = (uintptr_t)&g128;
        k.info_len = sizeof(g128);
    } else {
        g256.info.version = TLS_1_3_VERSION;
        g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
        memcpy(g256.key, key, 32);
        memcpy(g256.salt, iv, 4);
        memcpy(g256.iv, iv + 4, 8);
        k.info = (uintptr_t)&g256;
        k.info_len = sizeof(g256);
    }
    return ioctl(fd, SDP_KSHIM_IOC_ADD_KEY, &k);
}

int kt_batch(int fd, int seal, struct sdp_kshim_op *ops, uint32_t n)
{
    struct sdp_kshim_batch b = {.ops = (uintptr_t)ops, .count = n};
    return ioctl(fd, seal ? SDP_KSHIM_IOC_SEAL : SDP_KSHIM_IOC_OPEN, &b);
}

void kt_op_record(struct sdp_kshim_op *o, uint32_t key, uint64_t msg_id, uint32_t msg_len,
                  uint16_t rec_size, uint32_t idx, uint8_t flags, const uint8_t *in, uint8_t *out,
                  uint8_t *tag, uint32_t len)
{
    memset(o, 0, sizeof(*o));
    o->key_id = key;
    o->flags = SDP_KSHIM_OP_RECORD;
    o->msg_id = msg_id;
    o->msg_len = msg_len;
    o->rec_size = rec_size;
    o->idx = idx;
    o->aad_flags = flags;
    o->in = (uintptr_t)in;
    o->out = (uintptr_t)out;
    o->tag = (uintptr_t)tag;
    o->len = len;
    o->status = 1;
}

int kt_stats(struct sdp_kshim_stats *st)
{
    int fd = kt_dev_open();
    int rc = ioctl(fd, SDP_KSHIM_IOC_STATS, st);
    close(fd);
    return rc;
}

int kt_statscmd(int argc, char **argv)
{
    struct sdp_kshim_stats st;
    (void)argc, (void)argv;
    if (kt_stats(&st) != 0)
        return 1;
    printf("KT stats: driver %s ctx %llu keys %llu bufs %llu attached %llu sealed %llu opened "
           "%llu failed %llu tx %llu refused %llu\n",
           st.aead_driver, (unsigned long long)st.live_ctx, (unsigned long long)st.live_keys,
           (unsigned long long)st.live_bufs, (unsigned long long)st.attached,
           (unsigned long long)st.sealed, (unsigned long long)st.opened,
           (unsigned long long)st.open_failed, (unsigned long long)st.tx_segments,
           (unsigned long long)st.tx_refused);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} cmds[] = {
    {"keys", kt_keys},         {"limit", kt_limit},         {"wycheproof", kt_wycheproof}, {"interop", kt_interop},
    {"uring", kt_uring},       {"killbatch", kt_killbatch},   {"fuzz", kt_fuzz},
    {"udp", kt_udp},           {"hold", kt_hold},             {"stats", kt_statscmd},
    {"rtx", kt_rtx},           {"rxcache", kt_rxcache},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kshim-test CMD [args]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    const char *s = getenv("KT_SEED");
    if (s)
        seed = strtoull(s, NULL, 0);
    kt_seed(seed);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        int rc = cmds[i].fn(argc - 1, argv + 1);
        const char *label = argc > 2 && strcmp(argv[1], "udp") == 0 ? argv[2] : argv[1];
        if (strcmp(argv[1], "hold") == 0 || strcmp(argv[1], "stats") == 0)
            return rc;
        if (rc == 0 && kt_failures == 0)
            printf("KT PASS %s%s\n", argv[1], strcmp(label, argv[1]) ? label : "");
        else
            printf("KT FAIL %s%s (seed KT_SEED=0x%llx, %d failed checks)\n", argv[1],
                   strcmp(label, argv[1]) ? label : "", (unsigned long long)seed, kt_failures);
        return rc == 0 && kt_failures == 0 ? 0 : 1;
    }
    fprintf(stderr, "unknown command %s\n", argv[1]);
    return 2;
}
