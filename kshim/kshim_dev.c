// SPDX-License-Identifier: GPL-2.0
/* sdp_kshim: the control device /dev/sdp_kshim (keys, batch seal/open by
 * ioctl and io_uring command, socket attach) and module setup. */
#include <linux/fs.h>
#include <linux/version.h>
#include <linux/io_uring.h>
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
#include <linux/io_uring/cmd.h>
#endif
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "kshim.h"

char sdpk_driver[64];

static int sdpk_open(struct inode *inode, struct file *file)
{
	struct sdpk_ctx *ctx = sdpk_ctx_new();

	if (!ctx)
		return -ENOMEM;
	file->private_data = ctx;
	return nonseekable_open(inode, file);
}

static int sdpk_release(struct inode *inode, struct file *file)
{
	sdpk_ctx_put(file->private_data);
	return 0;
}

static long sdpk_stats_get(void __user *arg)
{
	struct sdp_kshim_stats st;

	memset(&st, 0, sizeof(st));
	st.live_ctx = atomic64_read(&sdpk_stats.live_ctx);
	st.live_keys = atomic64_read(&sdpk_stats.live_keys);
	st.live_bufs = atomic64_read(&sdpk_stats.live_bufs);
	st.attached = atomic64_read(&sdpk_stats.attached);
	st.sealed = atomic64_read(&sdpk_stats.sealed);
	st.opened = atomic64_read(&sdpk_stats.opened);
	st.open_failed = atomic64_read(&sdpk_stats.open_failed);
	st.tx_segments = atomic64_read(&sdpk_stats.tx_segments);
	st.tx_refused = atomic64_read(&sdpk_stats.tx_refused);
	strscpy(st.aead_driver, sdpk_driver, sizeof(st.aead_driver));
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static long sdpk_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct sdpk_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;
	union {
		struct sdp_kshim_key key;
		struct sdp_kshim_keyref ref;
		struct sdp_kshim_batch batch;
		struct sdp_kshim_attach att;
	} u;

	if (_IOC_TYPE(cmd) != SDP_KSHIM_IOC_MAGIC)
		return -ENOTTY;
	if ((_IOC_DIR(cmd) & _IOC_WRITE) &&
	    (_IOC_SIZE(cmd) > sizeof(u) || copy_from_user(&u, uarg, _IOC_SIZE(cmd))))
		return -EFAULT;
	switch (cmd) {
	case SDP_KSHIM_IOC_ADD_KEY:
		return sdpk_key_add(ctx, &u.key);
	case SDP_KSHIM_IOC_DEL_KEY:
		return u.ref.reserved ? -EINVAL : sdpk_key_del(ctx, u.ref.key_id);
	case SDP_KSHIM_IOC_SEAL:
		return sdpk_batch(ctx, true, &u.batch);
	case SDP_KSHIM_IOC_OPEN:
		return sdpk_batch(ctx, false, &u.batch);
	case SDP_KSHIM_IOC_ATTACH:
		return u.att.reserved ? -EINVAL : sdpk_attach(ctx, u.att.fd);
	case SDP_KSHIM_IOC_STATS:
		return sdpk_stats_get(uarg);
	}
	return -ENOTTY;
}

static const void *sdpk_cmd_area(struct io_uring_cmd *cmd)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	return io_uring_sqe_cmd(cmd->sqe);
#else
	return cmd->cmd;
#endif
}

/* The batch runs synchronously, so from the submitting task's inline
 * (non-blocking) attempt it asks io_uring to retry it in a worker, where it
 * may sleep in copy_from_user and the crypto API.  It completes the command
 * itself, as ublk does: 6.1 does not post a positive result returned from
 * ->uring_cmd. */
static int sdpk_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct sdpk_ctx *ctx = cmd->file->private_data;
	struct sdp_kshim_batch b;
	int ret;

	if (cmd->cmd_op != SDP_KSHIM_CMD_SEAL && cmd->cmd_op != SDP_KSHIM_CMD_OPEN)
		return -EINVAL;
	if (issue_flags & IO_URING_F_NONBLOCK)
		return -EAGAIN;
	memcpy(&b, sdpk_cmd_area(cmd), sizeof(b));
	ret = sdpk_batch(ctx, cmd->cmd_op == SDP_KSHIM_CMD_SEAL, &b);
#ifdef SDPK_CMD_DONE_4ARG
	io_uring_cmd_done(cmd, ret, 0, issue_flags);
#else
	io_uring_cmd_done(cmd, ret, 0);
#endif
	return -EIOCBQUEUED;
}

static const struct file_operations sdpk_fops = {
	.owner = THIS_MODULE,
	.open = sdpk_open,
	.release = sdpk_release,
	.unlocked_ioctl = sdpk_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.uring_cmd = sdpk_uring_cmd,
	/* no llseek: nonseekable_open() makes lseek fail with ESPIPE */
};

static struct miscdevice sdpk_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "sdp_kshim",
	.fops = &sdpk_fops,
	.mode = 0600,
};

static int __init sdpk_init(void)
{
	struct crypto_aead *tfm = crypto_alloc_aead("gcm(aes)", 0, 0);

	/* Fail the load, not the first key, when gcm(aes) cannot be had. */
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	strscpy(sdpk_driver, crypto_tfm_alg_driver_name(crypto_aead_tfm(tfm)), sizeof(sdpk_driver));
	crypto_free_aead(tfm);
	pr_info("sdp_kshim: gcm(aes) is %s\n", sdpk_driver);
	return misc_register(&sdpk_misc);
}

static void __exit sdpk_exit(void)
{
	misc_deregister(&sdpk_misc);
}

module_init(sdpk_init);
module_exit(sdpk_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("SDP record sealing on the kernel crypto API, kTLS-style, for UDP");
MODULE_SOFTDEP("pre: gcm aesni-intel");
