/* The kshim provider's hooks for the engine (docs/KSHIM.md): the engine
 * attaches its UDP socket to the process's device file, names a key object's
 * TX key in the send descriptor (struct sdp_kshim_txdesc), and submits
 * record batches on the device file with IORING_OP_URING_CMD. */
#ifndef SDP_CRYPTO_AEAD_KSHIM_H
#define SDP_CRYPTO_AEAD_KSHIM_H

#include <stdint.h>

#include "crypto/aead.h"

/* The process's /dev/sdp_kshim file, opened on first use; -1 (errno set)
 * when the module is not loaded. */
int sdp_aead_kshim_dev_fd(void);
/* Whether the module is loaded (the device opens).  When it is not, says
 * so once on stderr, with what happens instead: OpenSSL when fallback is 1,
 * else the caller's refusal (SDP_EUNAVAIL). */
int sdp_aead_kshim_probe(int fallback);
/* Attach a UDP socket to it.  0, SDP_EUNAVAIL (no module) or SDP_EINVAL
 * (errno from the module: EPROTONOSUPPORT not UDP, EBUSY already attached). */
int sdp_aead_kshim_attach(int sock_fd);
/* Key ids of a kshim key object in that file; 0 for NULL or a key running
 * on the OpenSSL fallback (which the kernel cannot use). */
uint32_t sdp_aead_kshim_tx_id(const struct sdp_aead_key *k);
uint32_t sdp_aead_kshim_rx_id(const struct sdp_aead_key *k);

/* Records the engine opened in a kernel batch before the core asks for
 * them: while set (on this thread), an open of exactly these inputs (key,
 * sequence number, AAD, ciphertext and tag all equal) is answered with the
 * kernel's plaintext instead of another system call.  AES-GCM is
 * deterministic, so the answer is the one the kernel would give again. */
struct sdp_aead_kshim_opened {
    uint32_t rx_id;
    uint32_t len;
    uint64_t seq;
    uint8_t aad[16];
    const uint8_t *ct, *tag, *pt;
};
void sdp_aead_kshim_opened_set(const struct sdp_aead_kshim_opened *recs, size_t n);

/* Process-wide counters of the engine paths (tests and --stats). */
struct sdp_aead_kshim_counters {
    uint64_t tx_sends;      /* sendmsg calls with a record descriptor */
    uint64_t rx_batches;    /* IORING_OP_URING_CMD open batches */
    uint64_t rx_records;    /* records those batches opened */
    uint64_t rx_hits;       /* core opens answered from a batch */
    uint64_t rx_misses;     /* core opens that went to the kernel alone */
};
void sdp_aead_kshim_counters(struct sdp_aead_kshim_counters *out);
void sdp_aead_kshim_count_tx(void);
void sdp_aead_kshim_count_rx_batch(uint32_t records);

#endif
