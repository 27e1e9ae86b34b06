/* libsdp: a secure datagram transport for datacenters.
 *
 * Result convention, used by every function of this API that returns int:
 * 0 (or a non-negative count where stated) on success, a negative SDP_E*
 * code on failure.  Each code below says what the caller should do about it.
 */
#ifndef SDP_SDP_H
#define SDP_SDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SDP_VERSION_MAJOR 0
#define SDP_VERSION_MINOR 1

enum sdp_error {
    SDP_OK = 0,
    /* An argument is out of range or inconsistent. A programming error:
     * fix the call; retrying the same call fails the same way. */
    SDP_EINVAL = -1,
    /* Memory (or a configured pool) is exhausted. Free buffers or raise
     * the configured limit; the call may succeed later. */
    SDP_ENOMEM = -2,
    /* Authentication failed: the record or packet was forged, corrupted
     * or sealed under another key. Drop it; it has been counted. Never
     * use its contents. */
    SDP_EBADMSG = -3,
    /* The crypto library failed internally (not an authentication
     * failure). Treat the key as unusable: tear down and re-key. */
    SDP_ECRYPTO = -4,
    /* The requested provider or feature is not available on this machine
     * (e.g. AES-GCM in libsodium without AES-NI). Pick another provider. */
    SDP_EUNAVAIL = -5,
    /* The insecure null provider was requested without explicitly allowing
     * it. Only benchmarks that measure crypto cost should allow it. */
    SDP_EINSECURE = -6,
    /* The key reached its AEAD usage limit. Update the key (or re-run the
     * handshake) before sealing or opening more. */
    SDP_EKEYLIMIT = -7,
    /* A replayed or too-old message id. Drop it; it has been counted. */
    SDP_EREPLAY = -8,
    /* An asynchronous operation was queued and completes later; poll for
     * its completion. Not an error. */
    SDP_EINPROGRESS = -9,
    /* The message exceeds the configured or protocol size limit. Split it
     * or raise the limit. */
    SDP_ETOOBIG = -10,
    /* No keys are installed for the peer. Install keys or run the
     * handshake first; nothing was sent. */
    SDP_ENOKEY = -11,
    /* The operation did not complete in time (e.g. an RPC's peer stopped
     * answering). The RPC's state is freed; retry if the request is
     * idempotent. */
    SDP_ETIMEDOUT = -12,
    /* Nothing is ready now. Wait for readiness and retry. */
    SDP_EAGAIN = -13,
    /* A wire packet is malformed. Drop it; it has been counted. */
    SDP_EPROTO = -14,
    /* A configured limit (peers, messages, bytes) would be exceeded. Back
     * off and retry later, or raise the limit. */
    SDP_ELIMIT = -15,
    /* The peer does not know this RPC (it restarted or forgot it). The RPC
     * failed; retry if the request is idempotent. */
    SDP_EUNKNOWN = -16,
    /* An operating-system call failed; errno-style detail is in the log or
     * the statistics. Check the system (ports, permissions, limits). */
    SDP_ESYSTEM = -17,
    /* The handshake with the peer failed for a reason below none of the
     * specific codes (protocol error, no common cipher, an alert from the
     * peer).  Check both sides' configuration and logs; retrying the same
     * configuration fails the same way. */
    SDP_EHANDSHAKE = -18,
    /* The peer's certificate does not chain to a CA we trust (or it is
     * self-signed and not pinned).  Give the right CA file or pin. */
    SDP_ECERTUNTRUSTED = -19,
    /* The peer's certificate has expired or is not valid yet.  Renew it
     * (or fix the clock). */
    SDP_ECERTEXPIRED = -20,
    /* The peer's certificate does not carry the name we expected.  Check
     * the name given for the peer, or the certificate's SANs. */
    SDP_ECERTNAME = -21,
    /* The peer's certificate is not the pinned one (SHA-256 fingerprint
     * mismatch).  Check the pin; the peer may be an impostor. */
    SDP_EPIN = -22,
    /* The pre-shared key or its identity does not match the peer's.
     * Check that both sides use the same PSK. */
    SDP_EPSK = -23,
};

/* ------------------------------------------------------------------ */
/* Sockets                                                              */
/* ------------------------------------------------------------------ */

/* One-to-many socket: one UDP port, any number of peers, both roles. */
typedef struct sdp_socket sdp_socket;

#define SDP_SECRET_LEN 32

enum sdp_cipher {
    SDP_CIPHER_AES128GCM = 1, /* the default */
    SDP_CIPHER_AES256GCM = 2,
    SDP_CIPHER_CHACHA20POLY1305 = 3,
    /* No encryption and no integrity, for measuring what crypto costs.
     * Refused unless allow_insecure is set. */
    SDP_CIPHER_NULL_INSECURE = 0xff,
};

enum sdp_kernel_crypto {
    SDP_KERNEL_CRYPTO_OFF = 0,     /* userspace crypto (OpenSSL): the default */
    /* The module or nothing: sdp_open fails with SDP_EUNAVAIL (and says so
     * on stderr) when /dev/sdp_kshim is absent, i.e. the module is not loaded. */
    SDP_KERNEL_CRYPTO_REQUIRE = 1,
    /* The module when it is loaded, else OpenSSL (said once on stderr). */
    SDP_KERNEL_CRYPTO_PREFER = 2,
};

struct sdp_config {
    /* 0: inline mode, no threads: the caller's thread drives the socket
     * inside sdp_recv / sdp_process (lowest latency, single-threaded
     * servers).  N >= 1: N engine threads, each with its own io_uring and
     * UDP socket; RPCs spread across them. */
    unsigned engines;
    int pin_engines;          /* pin engine i to CPU i (threaded mode) */
    /* The cipher this socket is meant to run (keys name theirs when they
     * are installed; the handshake will negotiate from this).  Checked at
     * open: the null cipher without allow_insecure is refused there. */
    enum sdp_cipher cipher;
    int allow_insecure;       /* must be 1 for SDP_CIPHER_NULL_INSECURE */
    uint32_t mtu;             /* path MTU towards peers, 1280-65535; 0 (default): the route's as the
                                 kernel knows it when the peer is installed (1,500 on Ethernet,
                                 loopback's 64 KiB...), at most 9,000; 1,500 if it cannot tell */
    uint32_t max_message;     /* bytes per message: 64 MiB */
    uint32_t max_peers;       /* 1024 */
    uint32_t max_rpcs;        /* concurrent RPCs per engine, both roles: 16384 */
    uint64_t mem_limit;       /* message buffer bytes per engine: 1 GiB */
    uint32_t unsched_bytes;   /* sent before any grant: 60000 */
    uint32_t rpc_timeout_ms;  /* silence before an RPC fails, once its probes went unanswered: 1000 ms */
    /* Record crypto in the kernel through the sdp_kshim module
     * (docs/KSHIM.md): the kernel seals DATA on the send path, kTLS-style,
     * and opens received records in batches.  AES-GCM ciphers only.  The
     * peer needs nothing special: the records are the same bytes. */
    enum sdp_kernel_crypto kernel_crypto; /* SDP_KERNEL_CRYPTO_OFF */
    /* Inline mode: a blocking sdp_recv / sdp_process polls for this long
     * before it sleeps, saving a sleep and a wake-up when the next packet
     * comes within it (it costs that much CPU when none does, and hurts
     * on a machine with fewer free cores than spinning threads).  Default 0:
     * never spin. */
    uint32_t busy_poll_us;
    /* Inline mode: sdp_send and sdp_reply seal and queue their packets but
     * do not enter the kernel; everything queued goes out in one system
     * call at the next sdp_recv or sdp_process that runs an engine round
     * (one that finds no message already waiting), at sdp_cork(s, 0), or
     * once 64 are queued.  For servers and pipelining clients that answer
     * a burst per event-loop pass: one submit per burst instead of one per
     * message.  The price: a message waits in the socket until that call,
     * so the application must call sdp_recv (until SDP_EAGAIN) or
     * sdp_process before it sleeps on sdp_fd, or its sends sit unsent.
     * Default 0: every send and reply enters the kernel before it returns.
     * No effect in threaded mode (engine threads send when woken). */
    int batch_sends;
};

/* Fill cfg with the defaults documented above. */
void sdp_config_default(struct sdp_config *cfg);

/* Open a socket bound to addr (IPv4 or IPv6; port 0 picks one).
 * cfg NULL means defaults.  Errors: SDP_EINVAL (config), SDP_ESYSTEM
 * (bind failed: address in use or not local; errno is kept),
 * SDP_EUNAVAIL (io_uring unavailable, or kernel_crypto REQUIRE without the
 * sdp_kshim module: load it or choose PREFER/OFF), SDP_ENOMEM. */
int sdp_open(const struct sockaddr *addr, socklen_t addr_len, const struct sdp_config *cfg,
             sdp_socket **out);

/* Stop the engines and free everything; RPCs in flight are abandoned and
 * undelivered messages freed.  NULL is accepted. */
void sdp_close(sdp_socket *s);

/* The bound address (to learn the port after binding port 0). */
int sdp_local_addr(sdp_socket *s, struct sockaddr_storage *addr, socklen_t *addr_len);

/* Install traffic secrets for a peer, kTLS-style: tx protects what we send
 * to it, rx what it sends us (the peer installs them swapped).  Until the
 * handshake exists, both sides get them out of band.  Sending to a peer
 * without keys fails with SDP_ENOKEY; packets from it are dropped.
 * Errors: SDP_EINVAL, SDP_ELIMIT (max_peers), SDP_EINSECURE, SDP_EUNAVAIL. */
int sdp_set_peer_keys(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len, enum sdp_cipher cipher,
                      const uint8_t tx_secret[SDP_SECRET_LEN], const uint8_t rx_secret[SDP_SECRET_LEN]);

/* Move our keys for a peer to the next generation (docs/PROTOCOL.md 7), in
 * every engine: as soon as the peer can follow (it has authenticated
 * something under the current keys and nothing we sent under the previous
 * ones is still in flight), which may be later than this call.  Keys also
 * update by themselves well before the AEAD usage limits; this is for
 * applications with their own policy.  RPCs in flight are unaffected.
 * Errors: SDP_EINVAL (address), SDP_ENOKEY (no such peer: install its keys
 * first), SDP_ENOMEM or SDP_ECRYPTO (the current keys stay; try again). */
int sdp_key_update(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len);

/* End our session with peer (an idle one, say): its keys are wiped and
 * its slot in the peer table freed for another peer.  Our RPCs with it
 * fail (SDP_MSG_FAILED, SDP_EUNKNOWN, queued before this returns) and its
 * requests can no longer be answered.  With sdp_set_tls, the next send to
 * it handshakes again, resuming with a ticket (and 0-RTT when early_data
 * allows); without it, install keys again with sdp_set_peer_keys.  The
 * peer learns from its next packet ("no session").  Errors: SDP_EINVAL
 * (not a peer of ours). */
int sdp_peer_close(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len);

/* Default secrets for every peer that has none: each peer's secrets are
 * derived from them and from both addresses (docs/API.md), so no two peers
 * share a key.  The socket must be bound to a specific address (not a
 * wildcard).  Errors as sdp_set_peer_keys. */
int sdp_set_default_keys(sdp_socket *s, enum sdp_cipher cipher, const uint8_t tx_secret[SDP_SECRET_LEN],
                         const uint8_t rx_secret[SDP_SECRET_LEN]);

/* The handshake: TLS 1.3 carried in-band on the socket's own port
 * (docs/HANDSHAKE.md).  Once set, sending to a peer without keys starts a
 * handshake with it and the message waits (in a bounded queue) for the
 * keys; a failed handshake fails the waiting RPCs with the cause
 * (SDP_ECERTUNTRUSTED, SDP_ECERTEXPIRED, SDP_ECERTNAME, SDP_EPIN, SDP_EPSK,
 * SDP_EHANDSHAKE, SDP_ETIMEDOUT).  Peers that handshake with us are
 * accepted when we can act as a server (a certificate or a PSK).  Files
 * are read now; strings need not outlive the call. */
struct sdp_tls_options {
    const char *cert_file;      /* PEM certificate chain we present */
    const char *key_file;       /* PEM private key of cert_file */
    const char *ca_file;        /* PEM CAs that sign peers' certificates */
    int verify_clients;         /* as a server, require a client certificate (mutual TLS) */
    const uint8_t *psk;         /* TLS 1.3 external PSK, 16..64 bytes ... */
    size_t psk_len;
    const char *psk_identity;   /* ... and its identity */
    const char *pin_sha256_hex; /* accept exactly the server certificate with this SHA-256 (64 hex digits) */
    int insecure;               /* accept servers without authenticating them (say so loudly) */
    const char *server_name;    /* name servers' certificates must carry (NULL: their IP address) */
    int early_data;             /* allow 0-RTT (off by default) */
    int ephemeral_cert;         /* no cert_file: make a self-signed certificate (see sdp_tls_fingerprint) */
    /* As a server, answer every first contact without an address token with
     * a stateless RETRY (one more round trip for new clients).  Off: a new
     * client's padded first packet starts its handshake at once, and only
     * beyond 32 attempts from unproven addresses at a time (a spoofed-source
     * flood) do new clients get the RETRY; until a client has proven its
     * address we send it at most 3x what it sent (docs/PROTOCOL.md 8.2). */
    int always_retry;
};
/* Errors: SDP_EINVAL (inconsistent options, or set twice), SDP_ESYSTEM (a
 * file cannot be read or parsed: check paths and formats), SDP_ECRYPTO,
 * SDP_ENOMEM. */
int sdp_set_tls(sdp_socket *s, const struct sdp_tls_options *o);
/* Our certificate's SHA-256 fingerprint as 64 lowercase hex digits and a
 * NUL (what clients pin).  SDP_EINVAL when there is no certificate. */
int sdp_tls_fingerprint(sdp_socket *s, char hex[65]);

/* ------------------------------------------------------------------ */
/* RPCs                                                                 */
/* ------------------------------------------------------------------ */

/* Send a request to peer.  The bytes are copied and sealed before return
 * (or, while a handshake with the peer runs, copied and queued), so buf may
 * be reused at once.  *rpc_id (may be NULL) receives the RPC
 * id; cookie comes back with the response or failure.
 * Errors: SDP_ENOKEY (no keys for peer and no handshake configured:
 * nothing sent), SDP_ETOOBIG,
 * SDP_ELIMIT / SDP_ENOMEM (too many RPCs or bytes in flight: wait for
 * responses and retry), SDP_EKEYLIMIT, SDP_EINVAL. */
int sdp_send(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len, const void *buf, size_t len,
             uint64_t cookie, uint64_t *rpc_id);
int sdp_sendv(sdp_socket *s, const struct sockaddr *peer, socklen_t peer_len, const struct iovec *iov,
              int iovcnt, uint64_t cookie, uint64_t *rpc_id);

enum sdp_msg_kind {
    SDP_MSG_REQUEST = 1,  /* answer it with sdp_reply, then sdp_release it */
    SDP_MSG_RESPONSE = 2, /* the response to one of our requests */
    SDP_MSG_FAILED = 3,   /* one of our requests failed: error says why */
};

/* A received message.  data stays valid until sdp_release. */
struct sdp_msg {
    enum sdp_msg_kind kind;
    int error;          /* FAILED: SDP_ETIMEDOUT, SDP_EUNKNOWN, SDP_ENOMEM, or why the
                         * handshake failed (see sdp_set_tls) */
    uint64_t rpc_id;
    uint64_t cookie;    /* RESPONSE and FAILED */
    void *data;
    size_t len;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int early;          /* REQUEST: it came as 0-RTT data (sdp_tls_options.early_data):
                         * the sender has not yet proven it is not replaying a
                         * recorded flight to another server of the same
                         * ticket key; refuse what is not idempotent (reply
                         * with your own error) */
    uint32_t priv_engine; /* private: where the RPC lives */
    uint32_t priv_peer;
    uint32_t priv_session; /* private: the peer's session it belongs to */
};

/* Receive the next message.  timeout_ms: -1 blocks, 0 polls.
 * Returns 0 with *msg filled; SDP_EAGAIN when none arrived in time. */
int sdp_recv(sdp_socket *s, struct sdp_msg *msg, int timeout_ms);

/* Answer a received request (the request may be released before or after).
 * Errors: SDP_EUNKNOWN (already answered, or the client gave up),
 * SDP_ETOOBIG, SDP_ENOMEM, SDP_EINVAL (not a request). */
int sdp_reply(sdp_socket *s, const struct sdp_msg *req, const void *buf, size_t len);
int sdp_replyv(sdp_socket *s, const struct sdp_msg *req, const struct iovec *iov, int iovcnt);

/* Hand a received message's buffer back. */
void sdp_release(sdp_socket *s, struct sdp_msg *msg);

/* A file descriptor that polls readable when sdp_recv may have a message
 * or (inline mode) when sdp_process has work, a timer's deadline included
 * (retransmissions, handshake retries): for epoll- or ae-style loops, which
 * need no timer of their own to drive the socket. */
int sdp_fd(sdp_socket *s);

/* Inline mode: with on = 1, sdp_send and sdp_reply queue their packets
 * without running an engine round each (a round is a system call or more);
 * sdp_cork(s, 0) runs one round that sends everything queued since.  For a
 * server answering many requests per event-loop iteration: cork, reply to
 * all, uncork.  Timers and other rounds (sdp_process, sdp_recv) still run
 * and send what is queued.  No effect in threaded mode.  Errors: SDP_EINVAL. */
int sdp_cork(sdp_socket *s, int on);

/* Make sdp_fd read ready once more, for an application that set received
 * messages aside and wants its event loop to come back for them.  Inline
 * mode: call it from the thread that drives the socket. */
void sdp_notify(sdp_socket *s);

/* Inline mode: do all pending work (receive, timers, send) without
 * blocking longer than timeout_ms (-1: until some work was done).
 * Returns the number of messages now waiting for sdp_recv.  In threaded
 * mode it only returns that number. */
int sdp_process(sdp_socket *s, int timeout_ms);

/* Counters, summed over engines. */
struct sdp_stats {
    uint64_t pkts_in, pkts_out, bytes_in, bytes_out, gso_sends;
    uint64_t requests_sent, responses_sent, requests_received, responses_received;
    uint64_t rpcs_failed, timeouts, retransmitted_pkts, grants_sent, resends_sent;
    uint64_t drops_total, drops_malformed, drops_auth, drops_replay, drops_no_peer, drops_limit;
    uint64_t records_sealed, records_opened;
    uint64_t mem_used, rpcs_active;
    uint64_t misdirected; /* datagrams the kernel put on the wrong engine (handed over) */
    uint64_t handshakes_done, handshakes_failed, handshake_retries; /* retries: RETRY tokens sent */
    uint64_t waiting_for_keys; /* messages queued until a handshake completes (gauge) */
    /* Received record bytes decrypted straight from the packets into the
     * buffer sdp_recv hands out, and those that arrived out of order and
     * were copied there first. */
    uint64_t rx_bytes_direct, rx_bytes_copied;
    uint64_t key_updates, peer_key_updates; /* generations we moved to / peers moved to (per engine) */
    /* 0-RTT (sdp_tls_options.early_data): requests we sent as early data,
     * those sent again under 1-RTT keys because the server refused 0-RTT,
     * and early requests we received; packets that arrived before their
     * keys and opened once the handshake brought them. */
    uint64_t early_sent, early_resent, early_received, keyless_retried;
    uint64_t hs_dropped;  /* handshake datagrams beyond what a round takes in (the sender retransmits) */
    uint64_t timer_wakes; /* inline mode: times sdp_fd woke for a deadline, not a packet */
    /* Probes (RESEND, NEED_ACK) that were due but waited because datagrams
     * were still queued for us: a busy receiver does not ask for bytes it
     * has not read yet. */
    uint64_t probes_deferred;
};
int sdp_get_stats(sdp_socket *s, struct sdp_stats *st);
/* The same counters for one engine (0 .. sdp_engines(s) - 1), to see how
 * RPCs spread.  Errors: SDP_EINVAL. */
int sdp_get_engine_stats(sdp_socket *s, unsigned engine, struct sdp_stats *st);
/* Number of engines (1 in inline mode). */
unsigned sdp_engines(sdp_socket *s);

/* A static, human-readable description of an SDP_E* code (never NULL). */
const char *sdp_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
