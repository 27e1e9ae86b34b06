/* Guest test programs for sdp_kshim (run inside the qemu guest by
 * kshim/guest/init; each subcommand prints "KT PASS name" or "KT FAIL name"). */
#ifndef KT_H
#define KT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../uapi/sdp_kshim.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

extern int kt_failures;

#define KT_CHECK(cond, ...)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            kt_failures++;                                                   \
            printf("KT   check failed %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
            fflush(stdout);                                                  \
        }                                                                    \
    } while (0)

/* Expect call() to fail with errno e. */
#define KT_ERRNO(call, e, what)                                                          \
    do {                                                                                 \
        errno = 0;                                                                       \
        long r_ = (long)(call);                                                          \
        KT_CHECK(r_ < 0 && errno == (e), "%s: got %ld errno %d (%s), want %s", what, r_, \
                 errno, strerror(errno), #e);                                            \
    } while (0)

int kt_dev_open(void);
/* Install an AES-GCM key (16 or 32 bytes) with a 12-byte IV; returns
 * ioctl's result (errno set). */
int kt_add_key(int fd, uint32_t id, uint32_t dir, const uint8_t *key, size_t key_len,
               const uint8_t iv[12]);
int kt_batch(int fd, int seal, struct sdp_kshim_op *ops, uint32_t n);
int kt_stats(struct sdp_kshim_stats *st);
uint64_t kt_rand(void);
void kt_seed(uint64_t s);
void kt_fill(uint8_t *p, size_t n);
void kt_op_record(struct sdp_kshim_op *o, uint32_t key, uint64_t msg_id, uint32_t msg_len,
                  uint16_t rec_size, uint32_t idx, uint8_t flags, const uint8_t *in, uint8_t *out,
                  uint8_t *tag, uint32_t len);

int kt_keys(int argc, char **argv);
int kt_limit(int argc, char **argv);
int kt_wycheproof(int argc, char **argv);
int kt_interop(int argc, char **argv);
int kt_uring(int argc, char **argv);
int kt_killbatch(int argc, char **argv);
int kt_fuzz(int argc, char **argv);
int kt_udp(int argc, char **argv);
int kt_rtx(int argc, char **argv);
int kt_rxcache(int argc, char **argv);
int kt_hold(int argc, char **argv);
int kt_statscmd(int argc, char **argv);

#endif
