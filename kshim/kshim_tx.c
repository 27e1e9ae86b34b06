// SPDX-License-Identifier: GPL-2.0
/* Transmit path: a UDP socket attached through the device gets a copy of
 * its proto whose sendmsg seals the records a SOL_SDP_KSHIM control message
 * describes, then hands the sealed datagrams to the original UDP sendmsg
 * (GSO included).  The original proto is restored before the base close. */
#include <linux/file.h>
#include <linux/in6.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <linux/udp.h>
#include <linux/uio.h>
#include <linux/version.h>
#include <net/sock.h>
#include <net/udp.h>

#include "kshim.h"

struct sdpk_sock {
	struct sdpk_ctx *ctx;
	struct proto *base;
};

enum { SDPK_V4, SDPK_V6, SDPK_NFAM };
static struct proto sdpk_prot[SDPK_NFAM];
static struct proto *sdpk_base[SDPK_NFAM];
static DEFINE_MUTEX(sdpk_prot_lock);

#ifndef ITER_SOURCE
#define ITER_SOURCE WRITE
#endif

/* Valid while the socket is open: only close frees it. */
static struct sdpk_sock *sdpk_sk(const struct sock *sk)
{
	return (struct sdpk_sock *)((uintptr_t)rcu_dereference_raw(sk->sk_user_data) &
				    SK_USER_DATA_PTRMASK);
}

struct sdpk_layout {
	u32 len, seg, hdr, pay, ndgram;
	u32 first, last; /* records sealed: [first, last] */
};

/* Every check before any byte is touched: sizes, GSO agreement, whole
 * records inside the message's wire bytes. */
static int sdpk_tx_layout(const struct sdp_kshim_txdesc *d, size_t len, int gso,
			  struct sdpk_layout *l)
{
	u64 wire_len, end, rstride, payload;
	u32 nrec, lastlen;

	if (d->aad_flags & ~0x04u || memchr_inv(d->reserved, 0, sizeof(d->reserved)))
		return -EINVAL;
	if (sdpk_rec_len(d->msg_id, d->msg_len, d->rec_size, 0, d->aad_flags) < 0)
		return -EINVAL;
	if (len == 0 || len > 65535)
		return -EMSGSIZE;
	if (d->seg_size <= d->hdr_len)
		return -EINVAL;
	/* Our datagram boundaries must be the ones UDP will cut. */
	if (gso && len > gso ? gso != d->seg_size : len > d->seg_size)
		return -EINVAL;
	l->len = len;
	l->seg = d->seg_size;
	l->hdr = d->hdr_len;
	l->pay = l->seg - l->hdr;
	l->ndgram = DIV_ROUND_UP(len, l->seg);
	lastlen = len - (l->ndgram - 1) * l->seg;
	if (lastlen <= l->hdr)
		return -EINVAL;
	payload = len - (u64)l->ndgram * l->hdr;
	nrec = sdpk_msg_nrec(d->msg_len, d->rec_size);
	rstride = (u64)d->rec_size + SDP_KSHIM_TAG_LEN;
	wire_len = (u64)d->msg_len + (u64)nrec * SDP_KSHIM_TAG_LEN;
	end = (u64)d->wire_off + payload;
	if (end > wire_len || d->wire_off % rstride || (end != wire_len && end % rstride))
		return -EINVAL;
	l->first = d->wire_off / rstride;
	l->last = end == wire_len ? nrec - 1 : (u32)(end / rstride) - 1;
	return 0;
}

static int sdpk_tx_seal(struct sdpk_key *k, const struct sdp_kshim_txdesc *d,
			const struct sdpk_layout *l, u8 *buf)
{
	unsigned int maxsg = min((d->rec_size + SDP_KSHIM_TAG_LEN) / l->pay, l->ndgram) + 3;
	struct scatterlist *sgl;
	u8 *aad;
	u32 i;
	int err = 0;

	sgl = kmalloc_array(maxsg, sizeof(*sgl), GFP_KERNEL);
	aad = sdpk_buf_alloc(SDPK_REC_AAD_LEN);
	if (!sgl || !aad) {
		err = -ENOMEM;
		goto out;
	}
	for (i = l->first; i <= l->last && !err; i++) {
		u32 rl = sdpk_rec_len(d->msg_id, d->msg_len, d->rec_size, i, d->aad_flags);
		u64 w = (u64)i * (d->rec_size + SDP_KSHIM_TAG_LEN) - d->wire_off;
		u32 left = rl + SDP_KSHIM_TAG_LEN;
		unsigned int n = 1;

		sg_init_table(sgl, maxsg);
		sdpk_rec_aad(aad, d->msg_id, i, d->msg_len, rl, d->aad_flags);
		sg_set_buf(&sgl[0], aad, SDPK_REC_AAD_LEN);
		/* The record's wire bytes, skipping each datagram's header. */
		while (left) {
			u32 dg = w / l->pay, r = w % l->pay;
			u32 take = min(left, l->pay - r);

			if (n >= maxsg) {
				err = -EINVAL;
				break;
			}
			sg_set_buf(&sgl[n++], buf + (size_t)dg * l->seg + l->hdr + r, take);
			w += take;
			left -= take;
		}
		if (err)
			break;
		sg_mark_end(&sgl[n - 1]);
		err = sdpk_aead(k, true, d->msg_id << 16 | i, sgl, SDPK_REC_AAD_LEN, rl);
	}
out:
	sdpk_buf_free(aad, SDPK_REC_AAD_LEN);
	kfree(sgl);
	return err;
}

static int sdpk_sendmsg(struct sock *sk, struct msghdr *msg, size_t len)
{
	struct sdpk_sock *s = sdpk_sk(sk);
	struct sdp_kshim_txdesc d;
	struct sdpk_layout l;
	struct cmsghdr *c;
	struct sdpk_key *k;
	struct kvec kv;
	int have = 0, gso = udp_sk(sk)->gso_size;
	u8 *buf;
	int err;

	/* sendmsg(2) and io_uring copy control messages into the kernel; a
	 * descriptor we cannot read must not turn into a plaintext send. */
	if (msg->msg_controllen && msg->msg_control_is_user)
		return -EOPNOTSUPP;
	if (msg->msg_controllen) {
		for_each_cmsghdr(c, msg) {
			if (!CMSG_OK(msg, c))
				return -EINVAL;
			if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT &&
			    c->cmsg_len == CMSG_LEN(sizeof(__u16)))
				gso = *(__u16 *)CMSG_DATA(c);
			if (c->cmsg_level != SOL_SDP_KSHIM)
				continue;
			if (have || c->cmsg_type != SDP_KSHIM_CMSG_TX ||
			    c->cmsg_len != CMSG_LEN(sizeof(d)))
				goto refuse;
			memcpy(&d, CMSG_DATA(c), sizeof(d));
			have = 1;
		}
	}
	if (!have)
		return s->base->sendmsg(sk, msg, len);
	err = -EINVAL;
	/* Corked data would shift our datagram boundaries; zero-copy would
	 * send from our buffer after it is freed. */
	if ((msg->msg_flags & (MSG_MORE | MSG_ZEROCOPY)) || READ_ONCE(udp_sk(sk)->pending))
		goto refuse_err;
	err = sdpk_tx_layout(&d, len, gso, &l);
	if (err)
		goto refuse_err;
	k = sdpk_key_get(s->ctx, d.key_id, SDP_KSHIM_DIR_TX);
	if (IS_ERR(k)) {
		err = PTR_ERR(k);
		goto refuse_err;
	}
	buf = sdpk_buf_alloc(len);
	err = -ENOMEM;
	if (!buf)
		goto out_key;
	err = -EFAULT;
	if (!copy_from_iter_full(buf, len, &msg->msg_iter))
		goto out_buf;
	err = sdpk_tx_seal(k, &d, &l, buf);
	if (err)
		goto out_buf;
	kv.iov_base = buf;
	kv.iov_len = len;
	iov_iter_kvec(&msg->msg_iter, ITER_SOURCE, &kv, 1, len);
#ifdef MSG_SPLICE_PAGES
	msg->msg_flags &= ~MSG_SPLICE_PAGES; /* our copy is not spliceable pages */
#endif
	err = s->base->sendmsg(sk, msg, len);
	atomic64_inc(&sdpk_stats.tx_segments);
out_buf:
	sdpk_buf_free(buf, len);
out_key:
	sdpk_key_put(k);
	return err;
refuse:
	err = -EINVAL;
refuse_err:
	atomic64_inc(&sdpk_stats.tx_refused);
	return err;
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
/* sendfile/splice would carry plaintext past the sealing code. */
static int sdpk_sendpage(struct sock *sk, struct page *page, int offset, size_t size, int flags)
{
	return -EOPNOTSUPP;
}
#endif

/* IPV6_ADDRFORM would swap the proto under us and skip our close. */
static int sdpk_setsockopt(struct sock *sk, int level, int optname, sockptr_t optval,
			   unsigned int optlen)
{
	if (level == SOL_IPV6 && optname == IPV6_ADDRFORM)
		return -EBUSY;
	return sdpk_sk(sk)->base->setsockopt(sk, level, optname, optval, optlen);
}

static void sdpk_close(struct sock *sk, long timeout)
{
	struct sdpk_sock *s;
	struct proto *base;

	lock_sock(sk);
	write_lock_bh(&sk->sk_callback_lock);
	s = sdpk_sk(sk);
	base = s->base;
	rcu_assign_sk_user_data(sk, NULL);
	WRITE_ONCE(sk->sk_prot, base);
	write_unlock_bh(&sk->sk_callback_lock);
	release_sock(sk);
	sdpk_ctx_put(s->ctx);
	kfree(s);
	atomic64_dec(&sdpk_stats.attached);
	base->close(sk, timeout);
	/* Last, so nothing of ours runs once the module may go (a tail call). */
	module_put(THIS_MODULE);
}

static int sdpk_proto_for(struct sock *sk, struct proto **out)
{
	int fam = sk->sk_family == AF_INET ? SDPK_V4 : SDPK_V6;
	int err = 0;

	mutex_lock(&sdpk_prot_lock);
	if (!sdpk_base[fam]) {
		sdpk_prot[fam] = *sk->sk_prot;
		sdpk_prot[fam].sendmsg = sdpk_sendmsg;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
		sdpk_prot[fam].sendpage = sdpk_sendpage;
#endif
		sdpk_prot[fam].setsockopt = sdpk_setsockopt;
		sdpk_prot[fam].close = sdpk_close;
		sdpk_base[fam] = sk->sk_prot;
	} else if (sdpk_base[fam] != sk->sk_prot) {
		err = -EPROTONOSUPPORT; /* UDP-Lite or another UDP flavour */
	}
	mutex_unlock(&sdpk_prot_lock);
	*out = &sdpk_prot[fam];
	return err;
}

int sdpk_attach(struct sdpk_ctx *ctx, int fd)
{
	struct sdpk_sock *s = NULL;
	struct socket *sock;
	struct proto *prot;
	struct sock *sk;
	int err;

	sock = sockfd_lookup(fd, &err);
	if (!sock)
		return err; /* -EBADF or -ENOTSOCK */
	sk = sock->sk;
	err = -EPROTONOSUPPORT;
	if (!sk || sk->sk_type != SOCK_DGRAM || sk->sk_protocol != IPPROTO_UDP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6))
		goto out_put;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	err = -ENOMEM;
	if (!s)
		goto out_put;
	lock_sock(sk);
	err = -EBUSY; /* attached already, or a tunnel or sockmap owns it */
	if (rcu_access_pointer(sk->sk_user_data) || udp_sk(sk)->encap_type)
		goto out_unlock;
	err = sdpk_proto_for(sk, &prot);
	if (err)
		goto out_unlock;
	err = -ENODEV;
	if (!try_module_get(THIS_MODULE))
		goto out_unlock;
	sdpk_ctx_get(ctx);
	s->ctx = ctx;
	s->base = sk->sk_prot;
	write_lock_bh(&sk->sk_callback_lock);
	rcu_assign_sk_user_data(sk, s);
	WRITE_ONCE(sk->sk_prot, prot);
	write_unlock_bh(&sk->sk_callback_lock);
	atomic64_inc(&sdpk_stats.attached);
	s = NULL;
	err = 0;
out_unlock:
	release_sock(sk);
	kfree(s);
out_put:
	sockfd_put(sock);
	return err;
}
