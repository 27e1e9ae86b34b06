// SPDX-License-Identifier: GPL-2.0
/* Keys and batch AEAD operations on the kernel crypto API (gcm(aes)). */
#include <linux/err.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tls.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#include "kshim.h"

struct sdpk_stats sdpk_stats;

/* RFC 9001 6.6: at most 2^23 AES-GCM seals per key (docs/PROTOCOL.md 6.5);
 * a module parameter only so the guest test can reach it. */
unsigned long long sdpk_seal_limit = 1ULL << 23;
module_param_named(seal_limit, sdpk_seal_limit, ullong, 0444);
MODULE_PARM_DESC(seal_limit, "seals per key before it is refused (default 2^23)");

struct sdpk_ctx *sdpk_ctx_new(void)
{
	struct sdpk_ctx *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);

	if (!ctx)
		return NULL;
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	xa_init(&ctx->keys);
	atomic64_inc(&sdpk_stats.live_ctx);
	return ctx;
}

void sdpk_ctx_get(struct sdpk_ctx *ctx)
{
	kref_get(&ctx->ref);
}

static void sdpk_ctx_release(struct kref *ref)
{
	struct sdpk_ctx *ctx = container_of(ref, struct sdpk_ctx, ref);
	struct sdpk_key *k;
	unsigned long id;

	xa_for_each(&ctx->keys, id, k) {
		xa_erase(&ctx->keys, id);
		sdpk_key_put(k);
	}
	xa_destroy(&ctx->keys);
	mutex_destroy(&ctx->lock);
	kfree(ctx);
	atomic64_dec(&sdpk_stats.live_ctx);
}

void sdpk_ctx_put(struct sdpk_ctx *ctx)
{
	kref_put(&ctx->ref, sdpk_ctx_release);
}

static void sdpk_key_release(struct kref *ref)
{
	struct sdpk_key *k = container_of(ref, struct sdpk_key, ref);

	/* crypto_free_aead wipes the expanded key (kfree_sensitive of the tfm). */
	crypto_free_aead(k->tfm);
	kfree_sensitive(k);
	atomic64_dec(&sdpk_stats.live_keys);
}

void sdpk_key_put(struct sdpk_key *k)
{
	kref_put(&k->ref, sdpk_key_release);
}

union sdpk_crypto_info {
	struct tls_crypto_info hdr;
	struct tls12_crypto_info_aes_gcm_128 g128;
	struct tls12_crypto_info_aes_gcm_256 g256;
};

/* The checks kTLS's setsockopt(SOL_TLS) makes, in its order: header size,
 * version, cipher, exact struct size.  Only TLS 1.3 nonces are ours. */
static int sdpk_info_check(const struct tls_crypto_info *hdr, u32 info_len, size_t *want)
{
	if (hdr->version != TLS_1_3_VERSION)
		return -EINVAL;
	switch (hdr->cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		*want = sizeof(struct tls12_crypto_info_aes_gcm_128);
		break;
	case TLS_CIPHER_AES_GCM_256:
		*want = sizeof(struct tls12_crypto_info_aes_gcm_256);
		break;
	case TLS_CIPHER_AES_CCM_128:
	case TLS_CIPHER_CHACHA20_POLY1305:
	case TLS_CIPHER_SM4_GCM:
	case TLS_CIPHER_SM4_CCM:
		return -EOPNOTSUPP;
	default:
		return -EINVAL;
	}
	return info_len == *want ? 0 : -EINVAL;
}

int sdpk_key_add(struct sdpk_ctx *ctx, const struct sdp_kshim_key *uk)
{
	union sdpk_crypto_info *ci;
	const u8 *key, *salt, *iv, *rec_seq;
	struct crypto_aead *tfm;
	struct sdpk_key *k = NULL;
	unsigned int key_len;
	size_t want = 0;
	int err;

	if (uk->key_id == 0 || uk->reserved ||
	    (uk->direction != SDP_KSHIM_DIR_TX && uk->direction != SDP_KSHIM_DIR_RX))
		return -EINVAL;
	if (uk->info_len < sizeof(struct tls_crypto_info))
		return -EINVAL;
	ci = kzalloc(sizeof(*ci), GFP_KERNEL);
	if (!ci)
		return -ENOMEM;
	err = -EFAULT;
	if (copy_from_user(&ci->hdr, u64_to_user_ptr(uk->info), sizeof(ci->hdr)))
		goto out;
	err = sdpk_info_check(&ci->hdr, uk->info_len, &want);
	if (err)
		goto out;
	err = -EFAULT;
	if (copy_from_user(ci, u64_to_user_ptr(uk->info), want))
		goto out;
	if (ci->hdr.cipher_type == TLS_CIPHER_AES_GCM_128) {
		key = ci->g128.key, key_len = sizeof(ci->g128.key);
		salt = ci->g128.salt, iv = ci->g128.iv, rec_seq = ci->g128.rec_seq;
	} else {
		key = ci->g256.key, key_len = sizeof(ci->g256.key);
		salt = ci->g256.salt, iv = ci->g256.iv, rec_seq = ci->g256.rec_seq;
	}
	err = -EINVAL;
	if (memchr_inv(rec_seq, 0, TLS_CIPHER_AES_GCM_128_REC_SEQ_SIZE))
		goto out;

	tfm = crypto_alloc_aead("gcm(aes)", 0, 0);
	if (IS_ERR(tfm)) {
		err = PTR_ERR(tfm);
		goto out;
	}
	err = crypto_aead_setkey(tfm, key, key_len);
	if (!err)
		err = crypto_aead_setauthsize(tfm, SDP_KSHIM_TAG_LEN);
	if (err) {
		crypto_free_aead(tfm);
		goto out;
	}
	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k) {
		crypto_free_aead(tfm);
		err = -ENOMEM;
		goto out;
	}
	kref_init(&k->ref);
	k->id = uk->key_id;
	k->dir = uk->direction;
	k->tfm = tfm;
	memcpy(k->iv, salt, TLS_CIPHER_AES_GCM_128_SALT_SIZE);
	memcpy(k->iv + TLS_CIPHER_AES_GCM_128_SALT_SIZE, iv, TLS_CIPHER_AES_GCM_128_IV_SIZE);
	atomic64_inc(&sdpk_stats.live_keys);

	mutex_lock(&ctx->lock);
	if (xa_load(&ctx->keys, k->id))
		err = -EEXIST;
	else if (ctx->nkeys >= SDPK_KEYS_MAX)
		err = -ENOSPC;
	else
		err = xa_err(xa_store(&ctx->keys, k->id, k, GFP_KERNEL));
	if (!err)
		ctx->nkeys++;
	mutex_unlock(&ctx->lock);
	if (err)
		sdpk_key_put(k);
out:
	kfree_sensitive(ci);
	return err;
}

int sdpk_key_del(struct sdpk_ctx *ctx, u32 id)
{
	struct sdpk_key *k;

	mutex_lock(&ctx->lock);
	k = id ? xa_erase(&ctx->keys, id) : NULL;
	if (k)
		ctx->nkeys--;
	mutex_unlock(&ctx->lock);
	if (!k)
		return -ENOKEY;
	sdpk_key_put(k); /* in-flight operations hold their own references */
	return 0;
}

struct sdpk_key *sdpk_key_get(struct sdpk_ctx *ctx, u32 id, u32 dir)
{
	struct sdpk_key *k;

	mutex_lock(&ctx->lock);
	k = id ? xa_load(&ctx->keys, id) : NULL;
	if (k)
		kref_get(&k->ref);
	mutex_unlock(&ctx->lock);
	if (!k)
		return ERR_PTR(-ENOKEY);
	if (k->dir != dir) {
		sdpk_key_put(k);
		return ERR_PTR(-EKEYREJECTED);
	}
	return k;
}

/* kmalloc, never vmalloc or the stack: these buffers go into scatterlists. */
void *sdpk_buf_alloc(size_t len)
{
	void *p = kmalloc(len ? len : 1, GFP_KERNEL | __GFP_NOWARN);

	if (p)
		atomic64_inc(&sdpk_stats.live_bufs);
	return p;
}

void sdpk_buf_free(void *p, size_t len)
{
	if (!p)
		return;
	kfree_sensitive(p);
	atomic64_dec(&sdpk_stats.live_bufs);
}

u32 sdpk_msg_nrec(u32 msg_len, u32 rec_size)
{
	u32 n = msg_len / rec_size + (msg_len % rec_size != 0);

	return n ? n : 1;
}

long sdpk_rec_len(u64 msg_id, u32 msg_len, u32 rec_size, u32 idx, u32 aad_flags)
{
	u32 rest;

	if (msg_id == 0 || msg_id >= (1ULL << 48) || (aad_flags & ~0x04u) ||
	    rec_size == 0 || rec_size > 16384 || msg_len > (1u << 30) ||
	    sdpk_msg_nrec(msg_len, rec_size) > 65536 || idx >= sdpk_msg_nrec(msg_len, rec_size))
		return -EINVAL;
	rest = msg_len - idx * rec_size;
	return rest < rec_size ? rest : rec_size;
}

void sdpk_rec_aad(u8 *aad, u64 msg_id, u32 idx, u32 msg_len, u32 rec_len, u8 aad_flags)
{
	aad[0] = 1; /* protocol version */
	aad[1] = aad_flags;
	put_unaligned_be16((u16)(msg_id >> 32), aad + 2);
	put_unaligned_be32((u32)msg_id, aad + 4);
	put_unaligned_be16((u16)idx, aad + 8);
	put_unaligned_be32(msg_len, aad + 10);
	put_unaligned_be16((u16)rec_len, aad + 14);
}

int sdpk_aead(struct sdpk_key *k, bool seal, u64 seq, struct scatterlist *sg,
	      unsigned int aad_len, unsigned int len)
{
	DECLARE_CRYPTO_WAIT(wait);
	struct aead_request *req;
	u8 nonce[SDPK_IV_LEN];
	int i, err;

	/* Counted before sealing, like the library: a failed attempt may
	 * still have used the nonce. */
	if (seal && atomic64_inc_return(&k->sealed) > sdpk_seal_limit)
		return -EKEYEXPIRED;
	/* TLS 1.3 nonce, built here so no caller can hand in another one. */
	memcpy(nonce, k->iv, SDPK_IV_LEN);
	for (i = 0; i < 8; i++)
		nonce[SDPK_IV_LEN - 1 - i] ^= (u8)(seq >> (8 * i));
	req = aead_request_alloc(k->tfm, GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	aead_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG | CRYPTO_TFM_REQ_MAY_SLEEP,
				  crypto_req_done, &wait);
	aead_request_set_ad(req, aad_len);
	aead_request_set_crypt(req, sg, sg, seal ? len : len + SDP_KSHIM_TAG_LEN, nonce);
	err = crypto_wait_req(seal ? crypto_aead_encrypt(req) : crypto_aead_decrypt(req), &wait);
	aead_request_free(req);
	if (seal && !err)
		atomic64_inc(&sdpk_stats.sealed);
	else if (!seal && !err)
		atomic64_inc(&sdpk_stats.opened);
	else if (err == -EBADMSG)
		atomic64_inc(&sdpk_stats.open_failed);
	return err;
}

/* Validate an op's fields for its mode; returns the AAD length. */
static int sdpk_op_check(const struct sdp_kshim_op *op, u64 *seq)
{
	long rl;

	if ((op->flags & ~SDP_KSHIM_OP_RECORD) || op->reserved || op->len > SDP_KSHIM_LEN_MAX)
		return -EINVAL;
	if (op->flags & SDP_KSHIM_OP_RECORD) {
		if (op->seq || op->aad || op->aad_len)
			return -EINVAL;
		rl = sdpk_rec_len(op->msg_id, op->msg_len, op->rec_size, op->idx, op->aad_flags);
		if (rl < 0 || rl != op->len)
			return -EINVAL;
		*seq = op->msg_id << 16 | op->idx;
		return SDPK_REC_AAD_LEN;
	}
	if (op->aad_len > SDP_KSHIM_AAD_MAX || op->msg_id || op->msg_len || op->rec_size ||
	    op->aad_flags || op->idx)
		return -EINVAL;
	*seq = op->seq;
	return op->aad_len;
}

static int sdpk_do_op(struct sdpk_ctx *ctx, bool seal, const struct sdp_kshim_op *op)
{
	struct scatterlist sg;
	struct sdpk_key *k;
	size_t total;
	u64 seq = 0;
	int aad_len, err;
	u8 *buf;

	aad_len = sdpk_op_check(op, &seq);
	if (aad_len < 0)
		return aad_len;
	k = sdpk_key_get(ctx, op->key_id, seal ? SDP_KSHIM_DIR_TX : SDP_KSHIM_DIR_RX);
	if (IS_ERR(k))
		return PTR_ERR(k);
	total = aad_len + op->len + SDP_KSHIM_TAG_LEN;
	buf = sdpk_buf_alloc(total);
	err = -ENOMEM;
	if (!buf)
		goto out;
	err = -EFAULT;
	if (op->flags & SDP_KSHIM_OP_RECORD)
		sdpk_rec_aad(buf, op->msg_id, op->idx, op->msg_len, op->len, op->aad_flags);
	else if (copy_from_user(buf, u64_to_user_ptr(op->aad), aad_len))
		goto out;
	if (copy_from_user(buf + aad_len, u64_to_user_ptr(op->in), op->len))
		goto out;
	if (!seal && copy_from_user(buf + aad_len + op->len, u64_to_user_ptr(op->tag),
				    SDP_KSHIM_TAG_LEN))
		goto out;
	sg_init_one(&sg, buf, total);
	err = sdpk_aead(k, seal, seq, &sg, aad_len, op->len);
	if (err == -EBADMSG) {
		/* Never hand out unauthenticated plaintext. */
		if (clear_user(u64_to_user_ptr(op->out), op->len))
			err = -EFAULT;
		goto out;
	}
	if (err)
		goto out;
	if (copy_to_user(u64_to_user_ptr(op->out), buf + aad_len, op->len) ||
	    (seal && copy_to_user(u64_to_user_ptr(op->tag), buf + aad_len + op->len,
				  SDP_KSHIM_TAG_LEN)))
		err = -EFAULT;
out:
	sdpk_buf_free(buf, total);
	sdpk_key_put(k);
	return err;
}

int sdpk_batch(struct sdpk_ctx *ctx, bool seal, const struct sdp_kshim_batch *b)
{
	struct sdp_kshim_op __user *uops = u64_to_user_ptr(b->ops);
	struct sdp_kshim_op op;
	u32 i;
	int st;

	if (b->flags || b->count == 0 || b->count > SDP_KSHIM_BATCH_MAX)
		return -EINVAL;
	for (i = 0; i < b->count; i++) {
		/* A killed caller stops between ops; everything is freed per op. */
		if (fatal_signal_pending(current))
			return i ? (int)i : -EINTR;
		if (copy_from_user(&op, &uops[i], sizeof(op)))
			return i ? (int)i : -EFAULT;
		st = sdpk_do_op(ctx, seal, &op);
		if (put_user(st, &uops[i].status))
			return i ? (int)i : -EFAULT;
		cond_resched();
	}
	return (int)b->count;
}
