/* TLS 1.3 over memory buffers: the handshake SDP carries in-band in its
 * HANDSHAKE packets (docs/PROTOCOL.md section 8).  No sockets and no
 * clocks of our own: bytes from the peer go in with sdp_tls_input, bytes
 * for the peer come out of sdp_tls_output, and once the handshake is done
 * the per-direction SDP traffic secrets come out of the TLS exporter.
 * OpenSSL 3 does all of TLS; this file only configures it and maps its
 * failures to SDP error codes (include/sdp/sdp.h).
 *
 * Threading: an sdp_tls_ctx is immutable after creation except for its
 * ticket cache (internally locked), so any thread may create sessions from
 * it; one sdp_tls is used by one thread at a time. */
#ifndef SDP_HANDSHAKE_TLS_H
#define SDP_HANDSHAKE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keysched.h"
#include "sdp/sdp.h"

/* Exporter labels (RFC 8446 7.5), 32 bytes each, context empty: OpenSSL is
 * called with use_context = 1 and a zero-length context (in TLS 1.3 that
 * equals "no context"; the early exporter always takes this form). */
#define SDP_EXPORTER_CLIENT "EXPORTER-sdp client traffic"
#define SDP_EXPORTER_SERVER "EXPORTER-sdp server traffic"
#define SDP_EXPORTER_EARLY "EXPORTER-sdp client early"

struct sdp_tls_ctx;
struct sdp_tls;

enum sdp_tls_role { SDP_TLS_CLIENT = 1, SDP_TLS_SERVER = 2 };

struct sdp_tls_config {
    const char *cert_file;      /* PEM chain we present (server; client for mutual TLS) */
    const char *key_file;       /* PEM private key of cert_file */
    const char *ca_file;        /* PEM CAs that sign the certificates we accept */
    int verify_clients;         /* server: require and verify a client certificate */
    int ephemeral_cert;         /* no cert_file: generate a self-signed one at ctx creation */
    const uint8_t *psk;         /* TLS 1.3 external PSK (16..64 bytes) ... */
    size_t psk_len;
    const char *psk_identity;   /* ... and its identity (1..128 bytes) */
    int have_pin;               /* client: accept exactly the server certificate ... */
    uint8_t pin[32];            /* ... whose DER encoding has this SHA-256 */
    int insecure;               /* client: no authentication of the server at all */
    int early_data;             /* 0-RTT: clients resume and export early keys; servers accept */
    enum sdp_cipher cipher;     /* preferred suite (TLS_AES_128_GCM_SHA256, ...) */
};
/* Which settings apply:
 * - A ctx serves both roles it can: a server needs a certificate
 *   (cert_file or ephemeral_cert) or a PSK; a client needs ca_file, a pin,
 *   a PSK or insecure.
 * - Client checks, first that applies: insecure (nothing); pin (exactly
 *   that certificate, no CA, no name, no validity check); ca_file (chain,
 *   validity, and peer_name when given).  A client with only a PSK fails
 *   with SDP_EPSK when the server answers with a certificate instead.
 * - cipher is offered first by clients; servers follow the client's order.
 *   0 means SDP_CIPHER_AES128GCM; the null cipher is refused (SDP_EINVAL).
 * - A server with a PSK accepts that identity; with a certificate too it
 *   still serves clients that offer no PSK.  An unknown identity fails
 *   like a wrong key (SDP_EPSK on both sides).
 * - A server's early_data lets its tickets carry 0-RTT; a client's lets
 *   it use them.  Servers issue two tickets after a full handshake, one
 *   after a resumption or an external-PSK handshake. */

/* Errors: SDP_EINVAL (inconsistent config, e.g. one that can neither
 * serve nor authenticate a server, or a bad PSK length), SDP_ESYSTEM (a
 * file cannot be read or parsed; sdp_tls_ctx_last_error says which),
 * SDP_ENOMEM, SDP_ECRYPTO. */
int sdp_tls_ctx_new(const struct sdp_tls_config *cfg, struct sdp_tls_ctx **out);
/* Why this thread's last sdp_tls_ctx_new failed ("" after a success). */
const char *sdp_tls_ctx_last_error(void);
void sdp_tls_ctx_free(struct sdp_tls_ctx *c);
/* SHA-256 of our certificate's DER (what a client pins).  SDP_EINVAL when
 * the ctx has no certificate.  An ephemeral certificate is a P-256 key,
 * CN "sdp-ephemeral", valid for one day (pins ignore validity). */
int sdp_tls_ctx_fingerprint(const struct sdp_tls_ctx *c, uint8_t out[32]);

/* One handshake attempt.  Client: peer_name is the name the server's
 * certificate must carry (DNS name, or an IP literal matched against IP
 * SANs); NULL skips the name check (pins, PSK, insecure).  ticket_key
 * names the server in the ctx's ticket cache (e.g. its address bytes) for
 * resumption and 0-RTT; NULL disables both.  Server: both are ignored.
 * The cache holds up to 256 sessions (4 per ticket_key and peer_name,
 * oldest evicted); each is taken out when used, so a ticket serves once.
 * Errors: SDP_ENOMEM, SDP_ECRYPTO, SDP_EINVAL (the ctx cannot take this
 * role, ticket_key over 64 bytes, peer_name empty or over 255). */
int sdp_tls_new(struct sdp_tls_ctx *c, enum sdp_tls_role role, const char *peer_name,
                const void *ticket_key, size_t ticket_key_len, struct sdp_tls **out);
void sdp_tls_free(struct sdp_tls *t); /* wipes secrets; NULL is fine */

/* Bytes of the peer's handshake stream, in order.  Returns 0, or the
 * negative cause once the handshake failed (then sdp_tls_error returns it
 * too, and sdp_tls_output may still hold an alert to send).  Keep feeding
 * after done: a client receives its tickets then, and with a client
 * certificate the server's verdict on it (TLS 1.3 finishes the client's
 * side first), so a client can fail after done.  More than 1 MiB of
 * unprocessed input fails the handshake. */
int sdp_tls_input(struct sdp_tls *t, const uint8_t *buf, size_t len);
/* Move up to cap bytes of our handshake stream into buf; returns how many
 * (0 when nothing is waiting).  A client has its first flight ready right
 * after sdp_tls_new; a server may have bytes after it is done (tickets). */
size_t sdp_tls_output(struct sdp_tls *t, uint8_t *buf, size_t cap);

/* 1 once the handshake completed (keys may be exported), else 0; back to
 * 0 if it fails afterwards (see sdp_tls_input). */
int sdp_tls_done(const struct sdp_tls *t);
/* 1 once done and the peer is known to be done too: a server at done; a
 * client once the server's first ticket arrived (servers always send one
 * after accepting the client's Finished and certificate).  A client that
 * must not act on a handshake the server may still refuse (mutual TLS)
 * waits for this instead of done. */
int sdp_tls_confirmed(const struct sdp_tls *t);
/* 0 while not failed; else SDP_ECERTUNTRUSTED, SDP_ECERTEXPIRED,
 * SDP_ECERTNAME, SDP_EPIN, SDP_EPSK, SDP_EHANDSHAKE (anything else,
 * including an alert from the peer that maps to none of those).  The peer
 * learns the same code from our alert (docs/HANDSHAKE.md); a client that
 * sent no certificate to a server requiring one: SDP_ECERTUNTRUSTED. */
int sdp_tls_error(const struct sdp_tls *t);
/* A human-readable detail for logs (OpenSSL's reason, the alert). */
const char *sdp_tls_last_error(const struct sdp_tls *t);

/* After done: the negotiated suite and the two traffic secrets, tx being
 * what this side sends with (client: SDP_EXPORTER_CLIENT).  A server that
 * accepted 0-RTT may export them as soon as it answered the ClientHello
 * (0.5-RTT: the client has not proven itself beyond holding the ticket).
 * SDP_EAGAIN before that, the failure's code after a failure. */
int sdp_tls_export(struct sdp_tls *t, enum sdp_cipher *suite, uint8_t tx[SDP_SECRET_LEN],
                   uint8_t rx[SDP_SECRET_LEN]);
/* 0-RTT: the client's early secret (SDP_EXPORTER_EARLY via
 * SSL_export_keying_material_early).  Client: available right after
 * sdp_tls_new when it resumes with early data allowed.  Server: once the
 * client's early data was accepted (replays of a ticket are refused by
 * OpenSSL's anti-replay, so an early secret is exported at most once per
 * ticket).  SDP_EUNAVAIL when there is no 0-RTT on this attempt,
 * SDP_EAGAIN when it is not decided yet (a server whose handshake failed:
 * SDP_EUNAVAIL).  The suite is the ticket's.  A
 * client's early secret stays exportable whether or not the server
 * accepts; sdp_tls_early_accepted says whether it may be used. */
int sdp_tls_early_export(struct sdp_tls *t, enum sdp_cipher *suite, uint8_t secret[SDP_SECRET_LEN]);
/* 1: the server accepted our (its client's) early data; 0: not (yet);
 * -1: rejected (the client must resend early requests under 1-RTT keys).
 * A client knows at done (or -1 at failure); a server once it answered
 * the ClientHello (0 there when none was offered, -1 for a replay). */
int sdp_tls_early_accepted(const struct sdp_tls *t);

/* The peer's authenticated identity after done: certificate subject CN or,
 * without one, the first DNS/IP SAN; or the PSK identity; "" when
 * unauthenticated (insecure, or a server not verifying clients).
 * Resumed sessions keep the identity of the handshake that made them. */
const char *sdp_tls_peer_identity(const struct sdp_tls *t);

#endif
