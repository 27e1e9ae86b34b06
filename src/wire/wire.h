/* The SDP wire format: encode and decode every packet type.
 *
 * docs/PROTOCOL.md is the specification; this file follows it field for
 * field.  Decoders check the length and every field before returning and
 * give a distinct negative SDP_WIRE_E* code per kind of failure; on failure
 * the output is unspecified and must not be used.  Encoders write into a
 * caller buffer and return the number of bytes written, or a negative code.
 */
#ifndef SDP_WIRE_WIRE_H
#define SDP_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define SDP_WIRE_VERSION 1

#define SDP_HDR_LEN 8          /* common header */
#define SDP_DATA_HDR_LEN 24    /* common header + DATA fields */
#define SDP_TAG_LEN 16         /* AEAD tag of a record or control packet */
#define SDP_CTL_TRAILER_LEN 24 /* control sequence number + tag */
#define SDP_REC_SIZE_MAX 16384 /* plaintext bytes per record (TLS 1.3's 2^14) */
#define SDP_REC_COUNT_MAX 65536u
#define SDP_MSG_LEN_MAX (1u << 30)
#define SDP_ID_MAX ((UINT64_C(1) << 48) - 1)
#define SDP_ACK_MAX 8
#define SDP_CUTOFFS_MAX 8
#define SDP_PRIO_LEVELS 8
#define SDP_HS_TOKEN_MAX 128

enum sdp_pkt_type {
    SDP_PKT_DATA = 1,
    SDP_PKT_GRANT = 2,
    SDP_PKT_RESEND = 3,
    SDP_PKT_UNKNOWN = 4,
    SDP_PKT_BUSY = 5,
    SDP_PKT_NEED_ACK = 6,
    SDP_PKT_ACK = 7,
    SDP_PKT_CUTOFFS = 8,
    SDP_PKT_HANDSHAKE = 9,
};

/* Common-header flags. Undefined bits must be zero. */
#define SDP_F_KEY_PHASE 0x01u  /* key generation parity */
#define SDP_F_RETRANSMIT 0x02u /* DATA only: this is a retransmission */
#define SDP_F_EARLY 0x04u      /* DATA only: sealed under 0-RTT keys */
#define SDP_F_DEFINED (SDP_F_KEY_PHASE | SDP_F_RETRANSMIT | SDP_F_EARLY)

enum sdp_wire_err {
    SDP_WIRE_ESHORT = -101,    /* buffer shorter than the type's fixed part */
    SDP_WIRE_EVERSION = -102,  /* version nibble is not SDP_WIRE_VERSION */
    SDP_WIRE_ETYPE = -103,     /* unknown packet type */
    SDP_WIRE_EFLAGS = -104,    /* undefined flag set, or flag not allowed on type */
    SDP_WIRE_ELENGTH = -105,   /* total length wrong for the type */
    SDP_WIRE_ERESERVED = -106, /* a reserved field is not zero */
    SDP_WIRE_EID = -107,       /* id zero where one is needed, or non-zero where none is */
    SDP_WIRE_ERECSIZE = -108,  /* record size 0 or above SDP_REC_SIZE_MAX */
    SDP_WIRE_EMSGLEN = -109,   /* message length above limit or too many records */
    SDP_WIRE_ERANGE = -110,    /* offset/length outside the message's wire bytes */
    SDP_WIRE_ECOUNT = -111,    /* count field zero or above its maximum */
    SDP_WIRE_EPRIO = -112,     /* priority above SDP_PRIO_LEVELS - 1 */
    SDP_WIRE_EORDER = -113,    /* cutoffs not strictly increasing */
    SDP_WIRE_EKIND = -114,     /* unknown handshake kind */
    SDP_WIRE_ENOSPACE = -115,  /* encoder: output buffer too small */
    SDP_WIRE_EINVAL = -116,    /* encoder: field out of range */
};

const char *sdp_wire_strerror(int err);

struct sdp_hdr {
    uint8_t type;    /* enum sdp_pkt_type */
    uint8_t flags;   /* SDP_F_* */
    uint64_t rpc_id; /* the sender's id for the RPC (48 bits) */
};

struct sdp_data {
    uint32_t msg_len;  /* plaintext bytes in the whole message */
    uint32_t offset;   /* wire offset of payload[0] */
    uint32_t unsched;  /* wire bytes the sender sends without a grant */
    uint16_t rec_size; /* plaintext bytes per record except the last */
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t payload_len;
};

struct sdp_grant {
    uint32_t offset;  /* wire bytes [0, offset) are authorised */
    uint8_t priority; /* priority for the scheduled bytes */
};

struct sdp_resend {
    uint32_t offset;
    uint32_t length;
    uint8_t priority;
};

struct sdp_ack {
    uint8_t count;
    uint64_t ids[SDP_ACK_MAX]; /* the sender's (client's) ids of finished RPCs */
};

struct sdp_cutoffs {
    uint8_t count;
    uint32_t cutoff[SDP_CUTOFFS_MAX]; /* strictly increasing message lengths */
};

enum sdp_hs_kind {
    SDP_HS_CLIENT = 1,
    SDP_HS_SERVER = 2,
    SDP_HS_RETRY = 3,
    SDP_HS_CLOSE = 4,
};

struct sdp_handshake {
    uint8_t kind;
    uint64_t conn_id;      /* chosen at random by the client */
    uint32_t stream_offset;
    uint32_t ack_offset;   /* peer's stream bytes received in order */
    const uint8_t *token;
    uint8_t token_len;
    const uint8_t *payload;
    uint16_t payload_len;
    uint16_t pad_to;       /* encode: CLIENT packets are zero-padded to this many bytes;
                            * decode: the datagram's length when padded, else 0 */
};

/* Control packets (all types but DATA and HANDSHAKE) end with a 64-bit
 * control sequence number and a 16-byte tag; the tag authenticates every
 * byte before it. */
struct sdp_ctl_trailer {
    uint64_t seq;
    const uint8_t *tag; /* points into the decoded buffer */
    size_t aad_len;     /* bytes covered by the tag: from 0 through seq */
};

struct sdp_pkt {
    struct sdp_hdr hdr;
    union {
        struct sdp_data data;
        struct sdp_grant grant;
        struct sdp_resend resend;
        struct sdp_ack ack;
        struct sdp_cutoffs cutoffs;
        struct sdp_handshake hs;
    } u;
    struct sdp_ctl_trailer ctl; /* valid for control packets only */
};

/* Layout of a message's wire bytes: records back to back, each its
 * ciphertext followed by its tag.  A 0-byte message is one empty record. */
uint32_t sdp_msg_nrec(uint32_t msg_len, uint16_t rec_size);
uint64_t sdp_msg_wire_len(uint32_t msg_len, uint16_t rec_size);
uint32_t sdp_rec_len(uint32_t msg_len, uint16_t rec_size, uint32_t idx);
uint64_t sdp_rec_wire_off(uint16_t rec_size, uint32_t idx);
int sdp_msg_layout_ok(uint32_t msg_len, uint16_t rec_size); /* 0 or SDP_WIRE_E* */

/* True for types that carry the control trailer. */
int sdp_pkt_is_ctl(uint8_t type);

/* Decode any packet: checks the common header, then the type's decoder. */
int sdp_wire_decode(const uint8_t *buf, size_t len, struct sdp_pkt *out);

/* Per-type decoders (the common header is checked again by each). */
int sdp_wire_decode_hdr(const uint8_t *buf, size_t len, struct sdp_hdr *out);
int sdp_wire_decode_data(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_grant(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_resend(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_unknown(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_busy(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_need_ack(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_ack(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_cutoffs(const uint8_t *buf, size_t len, struct sdp_pkt *out);
int sdp_wire_decode_handshake(const uint8_t *buf, size_t len, struct sdp_pkt *out);

/* Encoders.  DATA: writes the header and copies payload_len bytes from
 * d->payload.  Control encoders write everything but the tag (the 16 bytes
 * after the sequence number are zeroed) and return the full packet length
 * including the tag; the caller seals the tag in place with the record
 * layer's control seal. */
int sdp_wire_encode_data(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_data *d);
int sdp_wire_encode_data_hdr(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_data *d);
int sdp_wire_encode_grant(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_grant *g, uint64_t ctl_seq);
int sdp_wire_encode_resend(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_resend *r, uint64_t ctl_seq);
int sdp_wire_encode_unknown(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq);
int sdp_wire_encode_busy(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq);
int sdp_wire_encode_need_ack(uint8_t *buf, size_t cap, const struct sdp_hdr *h, uint64_t ctl_seq);
int sdp_wire_encode_ack(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_ack *a, uint64_t ctl_seq);
int sdp_wire_encode_cutoffs(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_cutoffs *c, uint64_t ctl_seq);
int sdp_wire_encode_handshake(uint8_t *buf, size_t cap, const struct sdp_hdr *h, const struct sdp_handshake *hs);

#endif
