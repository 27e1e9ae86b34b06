/* sdp-bench: the transports under test behind one small function table, and
 * the message format every transport carries so that no transport can win by
 * skipping work: each request says how long its response must be, and both
 * sides check the length and sampled content of what they receive. */
#ifndef SDPBENCH_TRANSPORT_H
#define SDPBENCH_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Every message starts with this header (16 bytes), so the smallest message
 * is 16 bytes; the rest of it is pattern bytes chosen by the tag. */
#define MSG_HDR 16
#define MSG_MAX (32u << 20) /* W5 reaches 29.4 MB */
#define MAGIC_REQ 0x53445042u  /* request */
#define MAGIC_RESP 0x53445052u /* response to a request that checked out */
#define MAGIC_BAD 0x53445058u  /* response to a request whose content was wrong */

struct msg_hdr {
    uint32_t magic;
    uint32_t resp_len; /* request: the response length asked for; response: its own length */
    uint64_t tag;
};

/* A completed RPC as seen by the client. */
struct tr_done {
    uint64_t tag;
    int ok; /* response arrived with the right length and content */
};

struct tr_server;
struct tr_conn;

struct transport {
    const char *name;  /* row label: sdp, sdp-null, udp, tcp, tls, ktls */
    const char *label; /* one-line description */
    /* NULL when usable here, else why not (written to why). */
    const char *(*unavailable)(char *why, size_t n);
    /* Listen on host:port (port 0 picks one) with a server thread pinned to
     * cpu (-1: not pinned).  NULL with err filled on failure. */
    struct tr_server *(*server_start)(const char *host, uint16_t port, int cpu, char *err, size_t n);
    uint16_t (*server_port)(struct tr_server *s);
    void (*server_stop)(struct tr_server *s);
    struct tr_conn *(*connect)(const char *host, uint16_t port, char *err, size_t n);
    /* Queue one request; 0 queued, 1 flow-controlled (poll, then retry),
     * -1 failed (tr_conn.err says why).  Never blocks for long. */
    int (*send)(struct tr_conn *c, size_t req_len, size_t resp_len, uint64_t tag);
    /* Make progress for at most timeout_us; returns completions written to
     * out (up to max), or -1 when the connection failed. */
    int (*poll)(struct tr_conn *c, struct tr_done *out, int max, int64_t timeout_us);
    void (*close)(struct tr_conn *c);
    /* Optional: one full connection setup (including any handshake), its
     * time in *us, then teardown; NULL when there is nothing to time. */
    int (*handshake)(const char *host, uint16_t port, double *us, char *err, size_t n);
    const char *no_handshake; /* what to print instead, when handshake is NULL */
    /* Optional: from connecting to a response to one 64 B request, in *us.
     * resumed: back to a server talked to before, by the transport's
     * fastest way (sdp: 0-RTT); -1 with err when it cannot.  resumed -1:
     * release what resumed runs kept (us unused).  NULL: measured
     * through connect, send, poll and close when the transport has
     * connections worth timing (stream transports), else n/a. */
    int (*first_rpc)(const char *host, uint16_t port, int resumed, double *us, char *err, size_t n);
    /* A transport without flow control (raw UDP): the most request bytes a
     * window may hold outstanding, its receiver's socket buffer; a bulk
     * cell asking for more is reported n/a, as it can only overrun the
     * buffer and lose datagrams nothing recovers.  0: no limit. */
    size_t window_bytes_max;
};

/* Common head of every transport's connection. */
struct tr_conn {
    const struct transport *t;
    char err[160];
};

extern const struct transport tr_sdp, tr_sdp_null, tr_udp, tr_tcp, tr_tls, tr_ktls;

/* common.c: pattern bytes, headers, checks, time, threads, sockets. */
void pattern_init(void);
const uint8_t *pattern_for(uint64_t tag, int response);
void hdr_put(uint8_t *p, uint32_t magic, uint32_t resp_len, uint64_t tag);
void hdr_get(const uint8_t *p, struct msg_hdr *h);
/* Fill iov[0..1] with a message of len bytes: the header in hdrbuf, then
 * the pattern in place; returns the iovec count. */
int msg_iov(struct iovec *iov, uint8_t hdrbuf[MSG_HDR], size_t len, uint32_t magic, uint32_t resp_len,
            uint64_t tag, int response);
/* Sampled content check of a whole received message (header included). */
int msg_check(const uint8_t *p, size_t len, uint64_t tag, int response);
/* Server side: check a request, then say what to answer (magic, length). */
uint32_t msg_serve(const uint8_t *req, size_t len, uint64_t *tag, uint32_t *resp_len);
/* Client side: check a response to the request tagged tag of resp_len. */
int msg_response_ok(const uint8_t *p, size_t len, size_t resp_len, uint64_t *tag);

int64_t now_us(void);
double now_s(void);
int pin_self(int cpu);
int set_nonblock(int fd, int on);
/* Resolve host:port for IPv4 (dotted or name). */
int addr4(const char *host, uint16_t port, void *sockaddr_in_out);
/* Local IPv4 address the kernel would use to reach host (for sdp's keys). */
int local_addr_towards(const char *host, char *out, size_t n);

#endif
