/* SPDX-License-Identifier: GPL-2.0 */
/* Internal interfaces of the sdp_kshim module. */
#ifndef SDP_KSHIM_INTERNAL_H
#define SDP_KSHIM_INTERNAL_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <crypto/aead.h>

#include "sdp_kshim.h"

#define SDPK_IV_LEN 12
#define SDPK_REC_AAD_LEN 16
#define SDPK_KEYS_MAX 4096

struct sdpk_key {
	struct kref ref;
	u32 id;
	u32 dir;
	struct crypto_aead *tfm;
	atomic64_t sealed; /* AEAD invocations, against sdpk_seal_limit */
	u8 iv[SDPK_IV_LEN];
};

/* Keys of one open device file; attached sockets hold a reference too, so
 * the keys outlive the file while a socket still sends with them. */
struct sdpk_ctx {
	struct kref ref;
	struct mutex lock;
	struct xarray keys;
	unsigned int nkeys;
};

struct sdpk_stats {
	atomic64_t live_ctx, live_keys, live_bufs, attached;
	atomic64_t sealed, opened, open_failed, tx_segments, tx_refused;
};
extern struct sdpk_stats sdpk_stats;
extern char sdpk_driver[64];
extern unsigned long long sdpk_seal_limit;

struct sdpk_ctx *sdpk_ctx_new(void);
void sdpk_ctx_get(struct sdpk_ctx *ctx);
void sdpk_ctx_put(struct sdpk_ctx *ctx);

int sdpk_key_add(struct sdpk_ctx *ctx, const struct sdp_kshim_key *uk);
int sdpk_key_del(struct sdpk_ctx *ctx, u32 id);
/* A referenced key of the wanted direction, or ERR_PTR(-ENOKEY / -EKEYREJECTED). */
struct sdpk_key *sdpk_key_get(struct sdpk_ctx *ctx, u32 id, u32 dir);
void sdpk_key_put(struct sdpk_key *k);

void *sdpk_buf_alloc(size_t len);
void sdpk_buf_free(void *p, size_t len);

/* Record layout (docs/PROTOCOL.md 4 and 6): plaintext length of record idx,
 * or -EINVAL when the id, flags, layout or index are out of range. */
long sdpk_rec_len(u64 msg_id, u32 msg_len, u32 rec_size, u32 idx, u32 aad_flags);
u32 sdpk_msg_nrec(u32 msg_len, u32 rec_size);
void sdpk_rec_aad(u8 *aad, u64 msg_id, u32 idx, u32 msg_len, u32 rec_len, u8 aad_flags);

/* AEAD over sg = AAD (aad_len) || text (len) || tag (16), in place,
 * nonce = key IV XOR seq.  Open returns -EBADMSG on a bad tag. */
int sdpk_aead(struct sdpk_key *k, bool seal, u64 seq, struct scatterlist *sg,
	      unsigned int aad_len, unsigned int len);

int sdpk_batch(struct sdpk_ctx *ctx, bool seal, const struct sdp_kshim_batch *b);

int sdpk_attach(struct sdpk_ctx *ctx, int fd);

#endif
