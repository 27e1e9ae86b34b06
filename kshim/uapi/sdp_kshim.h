/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/* The interface of the sdp_kshim module (/dev/sdp_kshim), shared by the
 * module and userspace.  See docs/KSHIM.md.
 *
 * Keys are installed kTLS-style: the caller passes a
 * struct tls12_crypto_info_aes_gcm_{128,256} (from <linux/tls.h>) with
 * version TLS_1_3_VERSION, a direction and a key id of its choosing.  The
 * 12-byte IV is salt || iv; rec_seq must be zero (our sequence numbers come
 * from message ids, docs/PROTOCOL.md 6.1).  Keys belong to the open device
 * file and to the sockets attached through it; they are wiped when the last
 * of those goes away or on SDP_KSHIM_IOC_DEL_KEY. */
#ifndef SDP_KSHIM_UAPI_H
#define SDP_KSHIM_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SDP_KSHIM_DEV "/dev/sdp_kshim"

#define SDP_KSHIM_DIR_TX 1u /* seal only */
#define SDP_KSHIM_DIR_RX 2u /* open only */

struct sdp_kshim_key {
	__u32 key_id;    /* non-zero, unique within the device file */
	__u32 direction; /* SDP_KSHIM_DIR_TX or SDP_KSHIM_DIR_RX */
	__u32 info_len;  /* sizeof the crypto_info struct, like setsockopt's optlen */
	__u32 reserved;  /* 0 */
	__u64 info;      /* user pointer to struct tls12_crypto_info_aes_gcm_{128,256} */
};

struct sdp_kshim_keyref {
	__u32 key_id;
	__u32 reserved; /* 0 */
};

/* One AEAD operation of a batch.
 * Raw mode (flags 0): nonce = IV XOR seq, AAD = aad[0..aad_len).
 * Record mode (SDP_KSHIM_OP_RECORD): the module checks the message layout
 * and builds seq = msg_id << 16 | idx and the 16-byte record AAD itself;
 * len must be the record's plaintext length, seq/aad/aad_len must be 0. */
#define SDP_KSHIM_OP_RECORD 0x1u

#define SDP_KSHIM_AAD_MAX 1024u
#define SDP_KSHIM_LEN_MAX 65536u
#define SDP_KSHIM_BATCH_MAX 1024u
#define SDP_KSHIM_TAG_LEN 16u

struct sdp_kshim_op {
	__u32 key_id;
	__u32 flags;   /* SDP_KSHIM_OP_* */
	__u64 seq;     /* raw mode */
	__u64 aad;     /* raw mode: user pointer */
	__u32 aad_len; /* raw mode: at most SDP_KSHIM_AAD_MAX */
	__u32 len;     /* plaintext (= ciphertext) bytes, at most SDP_KSHIM_LEN_MAX */
	__u64 in;      /* user pointers; out may equal in */
	__u64 out;
	__u64 tag;     /* seal: written, open: read (16 bytes) */
	__u64 msg_id;  /* record mode */
	__u32 msg_len;
	__u16 rec_size;
	__u8 aad_flags; /* only bit 2 (EARLY) may be set */
	__u8 reserved;  /* 0 */
	__u32 idx;
	__s32 status;   /* written: 0, -EBADMSG (tag mismatch, out zeroed), -EINVAL,
	                 * -ENOKEY, -EKEYREJECTED (wrong direction), -EKEYEXPIRED
	                 * (the key's seal limit, 2^23, is reached), -EFAULT, -ENOMEM */
};

/* The batch argument of the ioctls and, as the 16 bytes of the SQE's cmd
 * area, of IORING_OP_URING_CMD.  The result is the number of ops processed
 * (their statuses are written back), or -errno for the batch as a whole. */
struct sdp_kshim_batch {
	__u64 ops;   /* user pointer to count struct sdp_kshim_op */
	__u32 count; /* 1 .. SDP_KSHIM_BATCH_MAX */
	__u32 flags; /* 0 */
};

struct sdp_kshim_attach {
	__s32 fd;       /* a UDP socket (IPv4 or IPv6) */
	__u32 reserved; /* 0 */
};

/* Module-wide counters (all live objects return to 0 when nothing is open). */
struct sdp_kshim_stats {
	__u64 live_ctx;      /* device contexts (open files and attached sockets) */
	__u64 live_keys;     /* installed keys */
	__u64 live_bufs;     /* in-flight kernel buffers */
	__u64 attached;      /* attached sockets */
	__u64 sealed;        /* records and raw seals */
	__u64 opened;
	__u64 open_failed;   /* tag mismatches */
	__u64 tx_segments;   /* sendmsg calls sealed on the send path */
	__u64 tx_refused;    /* sendmsg calls refused for a bad descriptor */
	char aead_driver[64]; /* the crypto driver behind gcm(aes) */
};

#define SDP_KSHIM_IOC_MAGIC 0xE5
#define SDP_KSHIM_IOC_ADD_KEY _IOW(SDP_KSHIM_IOC_MAGIC, 1, struct sdp_kshim_key)
#define SDP_KSHIM_IOC_DEL_KEY _IOW(SDP_KSHIM_IOC_MAGIC, 2, struct sdp_kshim_keyref)
#define SDP_KSHIM_IOC_SEAL _IOW(SDP_KSHIM_IOC_MAGIC, 3, struct sdp_kshim_batch)
#define SDP_KSHIM_IOC_OPEN _IOW(SDP_KSHIM_IOC_MAGIC, 4, struct sdp_kshim_batch)
#define SDP_KSHIM_IOC_ATTACH _IOW(SDP_KSHIM_IOC_MAGIC, 5, struct sdp_kshim_attach)
#define SDP_KSHIM_IOC_STATS _IOR(SDP_KSHIM_IOC_MAGIC, 6, struct sdp_kshim_stats)

/* cmd_op values of IORING_OP_URING_CMD on the device. */
#define SDP_KSHIM_CMD_SEAL 1u
#define SDP_KSHIM_CMD_OPEN 2u

/* Transmit: on an attached socket, sendmsg with one control message of
 * level SOL_SDP_KSHIM, type SDP_KSHIM_CMSG_TX and this payload makes the
 * kernel seal the records in the buffer before UDP sends it.  The buffer is
 * back-to-back datagrams of seg_size bytes (the UDP_SEGMENT size; the last
 * may be shorter), each hdr_len bytes of cleartext header followed by a
 * slice of the message's wire bytes in which every record's ciphertext
 * place holds its plaintext and its tag place is reserved.  The slices
 * must cover whole records.  Without this control message sendmsg sends
 * the bytes unchanged (packets sealed elsewhere, handshake packets). */
#define SOL_SDP_KSHIM 0x5344
#define SDP_KSHIM_CMSG_TX 1

struct sdp_kshim_txdesc {
	__u32 key_id;    /* a TX key of the device file the socket was attached through */
	__u16 seg_size;  /* datagram size: UDP_SEGMENT's gso_size, or the buffer length */
	__u16 hdr_len;   /* cleartext bytes at the start of every datagram */
	__u64 msg_id;
	__u32 msg_len;
	__u32 wire_off;  /* wire offset of the first slice byte, on a record boundary */
	__u16 rec_size;
	__u8 aad_flags;
	__u8 reserved[5]; /* 0 */
};

#endif
