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
/* Attach a UDP socket to it.  0, SDP_EUNAVAIL (no module) or SDP_EINVAL
 * (errno from the module: EPROTONOSUPPORT not UDP, EBUSY already attached). */
int sdp_aead_kshim_attach(int sock_fd);
/* Key ids of a kshim key object in that file; 0 for NULL or a key running
 * on the OpenSSL fallback (which the kernel cannot use). */
uint32_t sdp_aead_kshim_tx_id(const struct sdp_aead_key *k);
uint32_t sdp_aead_kshim_rx_id(const struct sdp_aead_key *k);

#endif
