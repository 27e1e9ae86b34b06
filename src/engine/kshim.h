/* An engine's kernel record crypto through the sdp_kshim module
 * (docs/KSHIM.md), kTLS-style.
 *
 * Transmit: the engine's UDP socket is attached to the module, the core
 * runs in plain_records mode, and each DATA segment goes out as plaintext
 * with one SOL_SDP_KSHIM control message naming its records; the kernel
 * seals them on the send path.  Receive: before the core reads a GRO burst,
 * the records wholly inside it are opened in one IORING_OP_URING_CMD batch
 * on the device, and the provider answers the core's opens from that batch.
 */
#ifndef SDP_ENGINE_KSHIM_H
#define SDP_ENGINE_KSHIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "engine/udp.h"

struct sdp_kshim_eng;

/* Attach sock_fd to the module and set up the batch ring.  Errors:
 * SDP_EUNAVAIL (the module is not loaded: /dev/sdp_kshim is absent),
 * SDP_EINVAL (the module refused the socket), SDP_ENOMEM. */
int sdp_kshim_eng_new(int sock_fd, struct sdp_kshim_eng **out);
void sdp_kshim_eng_free(struct sdp_kshim_eng *k);

/* Add the record descriptor of a plaintext DATA segment (d->seal_key set)
 * to tx, prepared by sdp_udp_tx_prep for len bytes.  Errors: SDP_EINVAL
 * (a key the module does not hold, or no room). */
int sdp_kshim_eng_tx(struct sdp_udp_tx *tx, const struct sdp_core_seg_desc *d, size_t len);

/* Open the records wholly inside a received buffer (datagrams of seg
 * bytes, or one) in one kernel batch and offer them to this thread's core
 * opens, until sdp_kshim_eng_rx_end. */
void sdp_kshim_eng_rx_begin(struct sdp_kshim_eng *k, const struct sdp_core *core, const struct sdp_core_addr *from,
                            const uint8_t *buf, size_t len, uint16_t seg);
void sdp_kshim_eng_rx_end(struct sdp_kshim_eng *k);

#endif
