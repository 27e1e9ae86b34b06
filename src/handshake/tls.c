/* TLS 1.3 over memory BIOs (see tls.h).  OpenSSL runs the protocol; this
 * file configures it, keeps the client's ticket cache, and turns OpenSSL's
 * failures and the peer's alerts into SDP error codes.
 *
 * Failure causes reach the peer through the alert OpenSSL sends.  Our
 * certificate check rewrites the X.509 error before OpenSSL picks the
 * alert, so that each cause has its own alert (docs/HANDSHAKE.md):
 *   untrusted -> unknown_ca, expired -> certificate_expired,
 *   name -> bad_certificate, pin -> certificate_unknown,
 *   PSK -> decrypt_error (binder failure), anything else -> handshake_failure. */
#include "handshake/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/keymem.h"

#define CACHE_MAX 256          /* client sessions kept per ctx */
#define CACHE_PER_KEY 4        /* per server: the two tickets of the last two handshakes */
#define TICKET_KEY_MAX 64      /* bytes of a ticket_key (addresses fit) */
#define NAME_MAX_LEN 255       /* peer_name */
#define IDENT_LEN 256          /* identity strings, NUL included */
#define PSK_ID_MAX 128
#define EARLY_MAX 16           /* 0-RTT bytes a client may send: only our marker */
#define EARLY_RECV_MAX 1024    /* what a server reads or skips of rejected early data */
#define INPUT_MAX (1u << 20)   /* unconsumed peer bytes we hold */
#define CERT_LIST_MAX (64 * 1024)
#define SERVER_CACHE_MAX 8192  /* server sessions kept for 0-RTT anti-replay */
#define EPHEMERAL_DAYS 1       /* pins ignore validity; nothing else can trust it */

/* The one byte of TLS early data a 0-RTT client sends: OpenSSL only puts
 * the early_data extension into a ClientHello that carries early data.
 * SDP's own early requests travel under the early exporter secret. */
static const uint8_t early_marker = 0x53;

struct cache_ent {
    SSL_SESSION *sess;
    uint64_t seq;
    size_t key_len;
    uint8_t key[TICKET_KEY_MAX];
    char name[NAME_MAX_LEN + 1];
};

struct sdp_tls_ctx {
    SSL_CTX *cctx; /* client role, NULL when the config cannot be a client */
    SSL_CTX *sctx; /* server role, likewise */
    uint8_t *psk;  /* locked memory */
    size_t psk_len;
    char psk_id[PSK_ID_MAX + 1];
    int have_pin, insecure, early, has_ca, has_cert;
    uint8_t pin[32];
    int have_fp;
    uint8_t fp[32];
    enum sdp_cipher cipher;
    pthread_mutex_t lock; /* the cache below */
    size_t ncache;
    uint64_t seq;
    struct cache_ent cache[CACHE_MAX];
};

struct sdp_tls {
    struct sdp_tls_ctx *c;
    SSL *ssl;
    BIO *rbio, *wbio;
    int server, done, err;
    int verify_err;       /* cause our certificate check found */
    int alert_in;         /* fatal alert from the peer, -1 none */
    int alert_out;        /* alert we sent, -1 none */
    int psk_matched;      /* server: the client's identity is ours */
    int psk_unknown;      /* server: an identity we do not know */
    int early_offered;    /* client: our ClientHello carries early data */
    int hello_done;       /* ServerHello written (server: 0-RTT decided) or read */
    int confirmed;        /* client: a ticket came, so the server finished too */
    int early_end;        /* server: early data phase over */
    size_t tkey_len;
    uint8_t tkey[TICKET_KEY_MAX];
    char name[NAME_MAX_LEN + 1];
    char ident[IDENT_LEN];
    char detail[256];
    char vdetail[160];
};

static _Thread_local char ctx_error[256];

const char *sdp_tls_ctx_last_error(void)
{
    return ctx_error;
}

/* ------------------------------------------------------------------ */
/* Suites                                                               */
/* ------------------------------------------------------------------ */

static const char *suite_name(enum sdp_cipher c)
{
    switch (c) {
    case SDP_CIPHER_AES256GCM: return "TLS_AES_256_GCM_SHA384";
    case SDP_CIPHER_CHACHA20POLY1305: return "TLS_CHACHA20_POLY1305_SHA256";
    default: return "TLS_AES_128_GCM_SHA256";
    }
}

static const uint8_t *suite_id(enum sdp_cipher c)
{
    static const uint8_t ids[3][2] = {{0x13, 0x01}, {0x13, 0x02}, {0x13, 0x03}};
    switch (c) {
    case SDP_CIPHER_AES256GCM: return ids[1];
    case SDP_CIPHER_CHACHA20POLY1305: return ids[2];
    default: return ids[0];
    }
}

static int cipher_of(const SSL_CIPHER *sc, enum sdp_cipher *out)
{
    if (sc == NULL)
        return SDP_ECRYPTO;
    switch (SSL_CIPHER_get_protocol_id(sc)) {
    case 0x1301: *out = SDP_CIPHER_AES128GCM; return 0;
    case 0x1302: *out = SDP_CIPHER_AES256GCM; return 0;
    case 0x1303: *out = SDP_CIPHER_CHACHA20POLY1305; return 0;
    default: return SDP_ECRYPTO;
    }
}

/* ------------------------------------------------------------------ */
/* Failure causes                                                       */
/* ------------------------------------------------------------------ */

static struct sdp_tls *tls_of(const SSL *ssl)
{
    return SSL_get_app_data(ssl);
}

__attribute__((format(printf, 3, 4))) static void set_fail(struct sdp_tls *t, int code,
                                                          const char *fmt, ...)
{
    if (t->err)
        return;
    t->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof t->detail, fmt, ap);
    va_end(ap);
}

/* The peer's alert to our code.  Only libsdp's own alert choices (top of
 * file) are precise.  A PSK mismatch shows as decrypt_error from a client,
 * and as OpenSSL's illegal_parameter (or decrypt_error) from a server
 * that has not sent its ServerHello yet; only where a PSK is in play. */
static int alert_code(const struct sdp_tls *t, int desc)
{
    switch (desc) {
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_CERTIFICATE_REQUIRED: return SDP_ECERTUNTRUSTED;
    case SSL_AD_CERTIFICATE_EXPIRED: return SDP_ECERTEXPIRED;
    case SSL_AD_BAD_CERTIFICATE: return SDP_ECERTNAME;
    case SSL_AD_CERTIFICATE_UNKNOWN: return SDP_EPIN;
    case SSL_AD_UNKNOWN_PSK_IDENTITY: return SDP_EPSK;
    case SSL_AD_DECRYPT_ERROR:
        if (t->server)
            return t->c->psk != NULL ? SDP_EPSK : SDP_EHANDSHAKE;
        /* fall through */
    case SSL_AD_ILLEGAL_PARAMETER:
        return !t->server && t->c->psk != NULL && !t->hello_done ? SDP_EPSK : SDP_EHANDSHAKE;
    default: return SDP_EHANDSHAKE;
    }
}

static const char *alert_meaning(int code)
{
    switch (code) {
    case SDP_ECERTUNTRUSTED: return "peer does not trust our certificate, or wanted one";
    case SDP_ECERTEXPIRED: return "peer finds our certificate expired or not yet valid";
    case SDP_ECERTNAME: return "our certificate lacks the name the peer expected";
    case SDP_EPIN: return "our certificate is not the one the peer pinned";
    case SDP_EPSK: return "peer reports a PSK mismatch";
    default: return "peer aborted the handshake";
    }
}

/* An OpenSSL call failed (r <= 0): 0 when it only wants more input,
 * else the failure's code, recorded once. */
static int ssl_failed(struct sdp_tls *t, int r)
{
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ && !t->err) {
        ERR_clear_error();
        return 0;
    }
    int binder = 0, nocert = 0;
    char first[160] = "";
    unsigned long ec;
    while ((ec = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(ec) == ERR_LIB_SSL && ERR_GET_REASON(ec) == SSL_R_BINDER_DOES_NOT_VERIFY)
            binder = 1;
        if (ERR_GET_LIB(ec) == ERR_LIB_SSL &&
            ERR_GET_REASON(ec) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
            nocert = 1;
        if (first[0] == '\0')
            ERR_error_string_n(ec, first, sizeof first);
    }
    if (t->err)
        return t->err;
    if (t->verify_err)
        set_fail(t, t->verify_err, "%s", t->vdetail);
    else if (t->alert_in >= 0)
        set_fail(t, alert_code(t, t->alert_in), "%s (peer sent alert: %s)",
                 alert_meaning(alert_code(t, t->alert_in)), SSL_alert_desc_string_long(t->alert_in));
    else if (binder && t->psk_unknown)
        set_fail(t, SDP_EPSK, "%s", "client offered a PSK identity we do not know");
    else if (binder)
        set_fail(t, SDP_EPSK, "%s", "PSK binder does not verify (the keys differ)");
    else if (nocert)
        set_fail(t, SDP_ECERTUNTRUSTED, "%s", "client sent no certificate");
    else if (e == SSL_ERROR_ZERO_RETURN)
        set_fail(t, SDP_EHANDSHAKE, "%s", "peer closed the connection");
    else
        set_fail(t, SDP_EHANDSHAKE, "%s", first[0] ? first : "TLS handshake failed");
    if (t->alert_in < 0 && t->alert_out >= 0) {
        size_t n = strlen(t->detail);
        snprintf(t->detail + n, sizeof t->detail - n, " (we sent alert: %s)",
                 SSL_alert_desc_string_long(t->alert_out));
    }
    return t->err;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    struct sdp_tls *t = tls_of(ssl);
    if (t == NULL || !(where & SSL_CB_ALERT))
        return;
    int desc = ret & 0xff;
    if (where & SSL_CB_READ) {
        if (desc != SSL_AD_CLOSE_NOTIFY && t->alert_in < 0)
            t->alert_in = desc;
    } else if (t->alert_out < 0) {
        t->alert_out = desc;
    }
}

/* A server has decided 0-RTT once its ServerHello is written; a client
 * knows the server took its ClientHello once it reads one, and that the
 * server completed once it reads a ticket. */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    struct sdp_tls *t = tls_of(ssl);
    if (t == NULL || content_type != SSL3_RT_HANDSHAKE || len == 0)
        return;
    uint8_t type = ((const uint8_t *)buf)[0];
    if (write_p == t->server && type == SSL3_MT_SERVER_HELLO)
        t->hello_done = 1;
    /* Tickets are sent under the application keys once the server checked
     * our Finished (and certificate): decrypted here, so authentic. */
    if (!write_p && !t->server && type == SSL3_MT_NEWSESSION_TICKET)
        t->confirmed = 1;
}

/* ------------------------------------------------------------------ */
/* Certificate check                                                    */
/* ------------------------------------------------------------------ */

static int classify_x509(int e)
{
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD: return SDP_ECERTEXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return SDP_ECERTNAME;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED: return SDP_ECERTUNTRUSTED;
    default: return SDP_EHANDSHAKE;
    }
}

/* The X.509 error OpenSSL turns into the alert we want the peer to see. */
static int x509_for(int code)
{
    switch (code) {
    case SDP_ECERTUNTRUSTED: return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY; /* unknown_ca */
    case SDP_ECERTEXPIRED: return X509_V_ERR_CERT_HAS_EXPIRED;    /* certificate_expired */
    case SDP_ECERTNAME: return X509_V_ERR_HOSTNAME_MISMATCH;      /* bad_certificate */
    case SDP_EPIN: return X509_V_ERR_NO_EXPLICIT_POLICY;          /* unlisted: certificate_unknown */
    case SDP_EPSK: return X509_V_ERR_CERT_SIGNATURE_FAILURE;      /* decrypt_error */
    default: return X509_V_ERR_APPLICATION_VERIFICATION;          /* handshake_failure */
    }
}

static int reject_cert(struct sdp_tls *t, X509_STORE_CTX *x, int code, const char *why)
{
    t->verify_err = code;
    snprintf(t->vdetail, sizeof t->vdetail, "%s", why);
    X509_STORE_CTX_set_error(x, x509_for(code));
    return 0;
}

/* Replaces OpenSSL's chain check: insecure, pin, PSK-only, or the CA with
 * the host name (set on the SSL's verify parameters) checked inside. */
static int verify_cb(X509_STORE_CTX *x, void *arg)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct sdp_tls *t = ssl != NULL ? tls_of(ssl) : NULL;
    if (t == NULL)
        return 0;
    struct sdp_tls_ctx *c = t->c;
    if (!t->server) {
        if (c->insecure)
            return 1;
        if (c->have_pin) {
            uint8_t md[32];
            unsigned int n = 0;
            X509 *leaf = X509_STORE_CTX_get0_cert(x);
            if (leaf == NULL || !X509_digest(leaf, EVP_sha256(), md, &n) || n != 32)
                return reject_cert(t, x, SDP_EHANDSHAKE, "cannot hash the server certificate");
            if (CRYPTO_memcmp(md, c->pin, 32) != 0)
                return reject_cert(t, x, SDP_EPIN, "server certificate does not match the pin");
            return 1;
        }
        if (!c->has_ca)
            return reject_cert(t, x, SDP_EPSK,
                               "server did not accept our PSK (it sent a certificate)");
    }
    if (X509_verify_cert(x) > 0)
        return 1;
    int e = X509_STORE_CTX_get_error(x);
    char why[160];
    snprintf(why, sizeof why, "certificate at depth %d: %s", X509_STORE_CTX_get_error_depth(x),
             X509_verify_cert_error_string(e));
    return reject_cert(t, x, classify_x509(e), why);
}

/* ------------------------------------------------------------------ */
/* PSK                                                                  */
/* ------------------------------------------------------------------ */

static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key, size_t len, const SSL_CIPHER *sc)
{
    SSL_SESSION *s = SSL_SESSION_new();
    if (s == NULL || sc == NULL || !SSL_SESSION_set1_master_key(s, key, len) ||
        !SSL_SESSION_set_cipher(s, sc) || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                      SSL_SESSION **sess)
{
    struct sdp_tls *t = tls_of(ssl);
    struct sdp_tls_ctx *c = t->c;
    *sess = NULL;
    /* The binder's hash is the suite's: offer the PSK for our preferred
     * suite, or after a HelloRetryRequest for one with the chosen hash. */
    enum sdp_cipher want = c->cipher;
    if (md != NULL) {
        if (EVP_MD_is_a(md, "SHA384"))
            want = SDP_CIPHER_AES256GCM;
        else if (want == SDP_CIPHER_AES256GCM)
            want = SDP_CIPHER_AES128GCM;
    }
    SSL_SESSION *s = psk_session(ssl, c->psk, c->psk_len, SSL_CIPHER_find(ssl, suite_id(want)));
    if (s == NULL)
        return 0;
    *sess = s;
    *id = (const unsigned char *)c->psk_id;
    *idlen = strlen(c->psk_id);
    return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    struct sdp_tls *t = tls_of(ssl);
    struct sdp_tls_ctx *c = t->c;
    *sess = NULL;
    /* Longer identities are tickets (OpenSSL's are well over 128 bytes):
     * leave them to OpenSSL. */
    if (idlen > PSK_ID_MAX)
        return 1;
    const SSL_CIPHER *sc = SSL_get_pending_cipher(ssl);
    if (sc == NULL)
        sc = SSL_CIPHER_find(ssl, suite_id(SDP_CIPHER_AES128GCM));
    uint8_t junk[32];
    const uint8_t *key = c->psk;
    size_t len = c->psk_len;
    if (idlen != strlen(c->psk_id) || CRYPTO_memcmp(id, c->psk_id, idlen) != 0) {
        /* An identity we do not know gets a random key: its binder fails
         * like a wrong key's, so the client learns SDP_EPSK from the same
         * decrypt_error alert, and nobody learns which identities exist. */
        if (RAND_bytes(junk, sizeof junk) != 1)
            return 0;
        key = junk, len = sizeof junk;
        t->psk_unknown = 1;
    } else {
        t->psk_matched = 1;
    }
    *sess = psk_session(ssl, key, len, sc);
    OPENSSL_cleanse(junk, sizeof junk);
    return *sess != NULL;
}

/* A server with a PSK and no certificate can only run PSK handshakes:
 * refuse a ClientHello without one up front, with an alert that names it. */
static int hello_cb(SSL *ssl, int *al, void *arg)
{
    const unsigned char *p;
    size_t n;
    struct sdp_tls *t = tls_of(ssl);
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &p, &n))
        return SSL_CLIENT_HELLO_SUCCESS;
    t->verify_err = SDP_EPSK;
    snprintf(t->vdetail, sizeof t->vdetail, "client offered no PSK (we have no certificate)");
    *al = SSL_AD_UNKNOWN_PSK_IDENTITY;
    return SSL_CLIENT_HELLO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Identities                                                           */
/* ------------------------------------------------------------------ */

static void cert_ident(X509 *x, char *out, size_t cap)
{
    out[0] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap) > 0)
        return;
    out[0] = '\0';
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !out[0]; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const ASN1_STRING *s = g->d.dNSName;
            int len = ASN1_STRING_length(s);
            if (len > 0 && (size_t)len < cap && memchr(ASN1_STRING_get0_data(s), 0, (size_t)len) == NULL) {
                memcpy(out, ASN1_STRING_get0_data(s), (size_t)len);
                out[len] = '\0';
            }
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *s = g->d.iPAddress;
            int len = ASN1_STRING_length(s);
            if (len == 4 || len == 16)
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), out, (socklen_t)cap);
        }
    }
    GENERAL_NAMES_free(gens);
}

/* Who the peer proved to be.  Sessions resumed from tickets keep the peer
 * certificate; a server also keeps the PSK identity in its tickets. */
static void compute_ident(struct sdp_tls *t)
{
    struct sdp_tls_ctx *c = t->c;
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    t->ident[0] = '\0';
    if (t->server) {
        if (t->psk_matched) {
            snprintf(t->ident, sizeof t->ident, "%s", c->psk_id);
        } else if (peer != NULL) {
            cert_ident(peer, t->ident, sizeof t->ident);
        } else if (SSL_session_reused(t->ssl)) {
            void *d;
            size_t n;
            if (SSL_SESSION_get0_ticket_appdata(SSL_get_session(t->ssl), (void **)&d, &n) &&
                n > 1 && n < sizeof t->ident && ((const char *)d)[0] == 'P') {
                memcpy(t->ident, (const char *)d + 1, n - 1);
                t->ident[n - 1] = '\0';
            }
        }
    } else if (peer != NULL) {
        if (!c->insecure)
            cert_ident(peer, t->ident, sizeof t->ident);
    } else if (c->psk != NULL && SSL_session_reused(t->ssl)) {
        /* No certificate in a resumed session: it came from a PSK handshake. */
        snprintf(t->ident, sizeof t->ident, "%s", c->psk_id);
    }
}

static int ticket_gen_cb(SSL *ssl, void *arg)
{
    struct sdp_tls *t = tls_of(ssl);
    char buf[PSK_ID_MAX + 2];
    compute_ident(t);
    if (!t->psk_matched && !(SSL_session_reused(ssl) && SSL_get0_peer_certificate(ssl) == NULL &&
                             t->ident[0]))
        return 1;
    int n = snprintf(buf, sizeof buf, "P%s", t->ident);
    if (n < 0 || (size_t)n >= sizeof buf)
        return 1;
    return SSL_SESSION_set1_ticket_appdata(SSL_get_session(ssl), buf, (size_t)n);
}

static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname,
                                       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    switch (status) {
    case SSL_TICKET_SUCCESS: return SSL_TICKET_RETURN_USE;
    case SSL_TICKET_SUCCESS_RENEW: return SSL_TICKET_RETURN_USE_RENEW;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT: return SSL_TICKET_RETURN_IGNORE_RENEW;
    default: return SSL_TICKET_RETURN_ABORT;
    }
}

/* ------------------------------------------------------------------ */
/* Client ticket cache                                                  */
/* ------------------------------------------------------------------ */

static int sess_fresh(SSL_SESSION *s)
{
    long age = (long)time(NULL) - SSL_SESSION_get_time(s);
    unsigned long life = SSL_SESSION_get_ticket_lifetime_hint(s);
    long tmo = SSL_SESSION_get_timeout(s);
    if (tmo > 0 && (unsigned long)tmo < life)
        life = (unsigned long)tmo;
    /* A margin, so the ticket is not stale when the server checks it. */
    return SSL_SESSION_is_resumable(s) && age >= 0 && (unsigned long)age + 10 < life;
}

static void cache_drop(struct sdp_tls_ctx *c, size_t i)
{
    SSL_SESSION_free(c->cache[i].sess);
    c->cache[i] = c->cache[--c->ncache];
    memset(&c->cache[c->ncache], 0, sizeof c->cache[0]);
}

static int ent_match(const struct cache_ent *e, const uint8_t *key, size_t key_len, const char *name)
{
    return e->key_len == key_len && memcmp(e->key, key, key_len) == 0 && strcmp(e->name, name) == 0;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct sdp_tls *t = tls_of(ssl);
    struct sdp_tls_ctx *c = t->c;
    if (t->tkey_len == 0 || !SSL_SESSION_is_resumable(sess))
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t same = 0, oldest = SIZE_MAX, oldest_same = SIZE_MAX;
    for (size_t i = 0; i < c->ncache; i++) {
        if (oldest == SIZE_MAX || c->cache[i].seq < c->cache[oldest].seq)
            oldest = i;
        if (ent_match(&c->cache[i], t->tkey, t->tkey_len, t->name)) {
            same++;
            if (oldest_same == SIZE_MAX || c->cache[i].seq < c->cache[oldest_same].seq)
                oldest_same = i;
        }
    }
    if (same >= CACHE_PER_KEY)
        cache_drop(c, oldest_same);
    else if (c->ncache == CACHE_MAX)
        cache_drop(c, oldest);
    struct cache_ent *e = &c->cache[c->ncache++];
    e->sess = sess;
    e->seq = ++c->seq;
    e->key_len = t->tkey_len;
    memcpy(e->key, t->tkey, t->tkey_len);
    snprintf(e->name, sizeof e->name, "%s", t->name);
    pthread_mutex_unlock(&c->lock);
    return 1; /* we keep the reference */
}

/* The newest fresh session for this server, taken out: a ticket is used
 * once (always for 0-RTT; for plain resumption it keeps handshakes unlinkable). */
static SSL_SESSION *cache_take(struct sdp_tls_ctx *c, const uint8_t *key, size_t key_len,
                               const char *name)
{
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < c->ncache; i++)
            if (ent_match(&c->cache[i], key, key_len, name) &&
                (best == SIZE_MAX || c->cache[i].seq > c->cache[best].seq))
                best = i;
        if (best == SIZE_MAX)
            break;
        SSL_SESSION *cand = c->cache[best].sess;
        int fresh = sess_fresh(cand);
        if (fresh)
            SSL_SESSION_up_ref(cand);
        cache_drop(c, best);
        if (fresh) {
            s = cand;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* ------------------------------------------------------------------ */
/* Context                                                              */
/* ------------------------------------------------------------------ */

static int ctx_fail(int code, const char *what, const char *arg)
{
    char ossl[120] = "";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, ossl, sizeof ossl);
    snprintf(ctx_error, sizeof ctx_error, "%s%s%s%s%s", what, arg ? " " : "", arg ? arg : "",
             ossl[0] ? ": " : "", ossl);
    ERR_clear_error();
    return code;
}

static int make_ephemeral(X509 **xo, EVP_PKEY **ko)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    uint64_t serial;
    int ok = k != NULL && x != NULL && RAND_bytes((unsigned char *)&serial, sizeof serial) == 1;
    ok = ok && X509_set_version(x, X509_VERSION_3) &&
         ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 86400L * EPHEMERAL_DAYS);
    X509_NAME *n = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"sdp-ephemeral",
                                          -1, -1, 0) &&
         X509_set_issuer_name(x, n) && X509_set_pubkey(x, k) && X509_sign(x, k, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(k);
        return SDP_ECRYPTO;
    }
    *xo = x;
    *ko = k;
    return 0;
}

static int suites_list(enum sdp_cipher first, char *out, size_t cap)
{
    static const enum sdp_cipher all[3] = {SDP_CIPHER_AES128GCM, SDP_CIPHER_AES256GCM,
                                           SDP_CIPHER_CHACHA20POLY1305};
    int n = snprintf(out, cap, "%s", suite_name(first));
    for (int i = 0; i < 3; i++)
        if (all[i] != first)
            n += snprintf(out + n, cap - (size_t)n, ":%s", suite_name(all[i]));
    return n;
}

/* What both roles share: version, suites, our certificate, trusted CAs. */
static int ctx_common(SSL_CTX *x, const struct sdp_tls_config *cfg, struct sdp_tls_ctx *c, X509 *eph,
                      EVP_PKEY *ephk)
{
    char suites[128];
    suites_list(c->cipher, suites, sizeof suites);
    if (!SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(x, TLS1_3_VERSION) || !SSL_CTX_set_ciphersuites(x, suites))
        return ctx_fail(SDP_ECRYPTO, "cannot configure TLS 1.3", NULL);
    /* The fake ChangeCipherSpec is for middleboxes on TCP; we have none. */
    SSL_CTX_clear_options(x, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
    SSL_CTX_set_options(x, SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_max_cert_list(x, CERT_LIST_MAX);
    SSL_CTX_set_info_callback(x, info_cb);
    SSL_CTX_set_cert_verify_callback(x, verify_cb, c);
    if (cfg->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(x, cfg->cert_file) != 1)
            return ctx_fail(SDP_ESYSTEM, "cannot load certificate", cfg->cert_file);
        if (SSL_CTX_use_PrivateKey_file(x, cfg->key_file, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(SDP_ESYSTEM, "cannot load private key", cfg->key_file);
        if (SSL_CTX_check_private_key(x) != 1)
            return ctx_fail(SDP_ESYSTEM, "private key does not match certificate", cfg->key_file);
    } else if (eph != NULL) {
        if (SSL_CTX_use_certificate(x, eph) != 1 || SSL_CTX_use_PrivateKey(x, ephk) != 1)
            return ctx_fail(SDP_ECRYPTO, "cannot use the ephemeral certificate", NULL);
    }
    if (cfg->ca_file != NULL && SSL_CTX_load_verify_locations(x, cfg->ca_file, NULL) != 1)
        return ctx_fail(SDP_ESYSTEM, "cannot load CA file", cfg->ca_file);
    return 0;
}

static int ctx_client(const struct sdp_tls_config *cfg, struct sdp_tls_ctx *c, X509 *eph, EVP_PKEY *ephk)
{
    SSL_CTX *x = c->cctx = SSL_CTX_new(TLS_client_method());
    if (x == NULL)
        return ctx_fail(SDP_ENOMEM, "SSL_CTX_new failed", NULL);
    int rc = ctx_common(x, cfg, c, eph, ephk);
    if (rc)
        return rc;
    SSL_CTX_set_verify(x, SSL_VERIFY_PEER, NULL);
    /* Our own cache (keyed by server) instead of OpenSSL's. */
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(x, new_session_cb);
    if (c->psk != NULL)
        SSL_CTX_set_psk_use_session_callback(x, psk_use_cb);
    return 0;
}

static int ctx_server(const struct sdp_tls_config *cfg, struct sdp_tls_ctx *c, X509 *eph, EVP_PKEY *ephk)
{
    static const unsigned char sid_ctx[] = "sdp";
    SSL_CTX *x = c->sctx = SSL_CTX_new(TLS_server_method());
    if (x == NULL)
        return ctx_fail(SDP_ENOMEM, "SSL_CTX_new failed", NULL);
    int rc = ctx_common(x, cfg, c, eph, ephk);
    if (rc)
        return rc;
    SSL_CTX_set_verify(x, cfg->verify_clients ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                              : SSL_VERIFY_NONE, NULL);
    /* OpenSSL's server cache holds each issued ticket's session only to
     * refuse a second 0-RTT use of it (anti-replay); bounded, and an
     * evicted ticket merely loses 0-RTT. */
    if (!SSL_CTX_set_session_id_context(x, sid_ctx, sizeof sid_ctx - 1) ||
        !SSL_CTX_set_num_tickets(x, 2) ||
        !SSL_CTX_set_session_ticket_cb(x, ticket_gen_cb, ticket_dec_cb, NULL))
        return ctx_fail(SDP_ECRYPTO, "cannot configure tickets", NULL);
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(x, SERVER_CACHE_MAX);
    if (!SSL_CTX_set_max_early_data(x, c->early ? EARLY_MAX : 0) ||
        !SSL_CTX_set_recv_max_early_data(x, EARLY_RECV_MAX))
        return ctx_fail(SDP_ECRYPTO, "cannot configure early data", NULL);
    if (c->psk != NULL) {
        SSL_CTX_set_psk_find_session_callback(x, psk_find_cb);
        if (!c->has_cert)
            SSL_CTX_set_client_hello_cb(x, hello_cb, NULL);
    }
    return 0;
}

static int check_config(const struct sdp_tls_config *cfg)
{
    if (cfg->psk != NULL || cfg->psk_len || cfg->psk_identity != NULL) {
        if (cfg->psk == NULL || cfg->psk_len < 16 || cfg->psk_len > 64 || cfg->psk_identity == NULL ||
            strlen(cfg->psk_identity) < 1 || strlen(cfg->psk_identity) > PSK_ID_MAX)
            return ctx_fail(SDP_EINVAL, "PSK must be 16..64 bytes with a 1..128 byte identity", NULL);
    }
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL))
        return ctx_fail(SDP_EINVAL, "cert_file and key_file go together", NULL);
    if (cfg->cert_file != NULL && cfg->ephemeral_cert)
        return ctx_fail(SDP_EINVAL, "ephemeral_cert is for configs without cert_file", NULL);
    if (cfg->verify_clients && cfg->ca_file == NULL)
        return ctx_fail(SDP_EINVAL, "verify_clients needs ca_file", NULL);
    switch ((int)cfg->cipher) {
    case 0:
    case SDP_CIPHER_AES128GCM:
    case SDP_CIPHER_AES256GCM:
    case SDP_CIPHER_CHACHA20POLY1305: break;
    default: return ctx_fail(SDP_EINVAL, "the handshake negotiates only AEAD suites", NULL);
    }
    int can_serve = cfg->cert_file != NULL || cfg->ephemeral_cert || cfg->psk != NULL;
    int can_connect = cfg->ca_file != NULL || cfg->have_pin || cfg->psk != NULL || cfg->insecure;
    if (!can_serve && !can_connect)
        return ctx_fail(SDP_EINVAL,
                        "config can neither serve (no certificate or PSK) nor connect "
                        "(no CA, pin, PSK or insecure)", NULL);
    return 0;
}

int sdp_tls_ctx_new(const struct sdp_tls_config *cfg, struct sdp_tls_ctx **out)
{
    *out = NULL;
    ctx_error[0] = '\0';
    if (cfg == NULL)
        return ctx_fail(SDP_EINVAL, "no config", NULL);
    int rc = check_config(cfg);
    if (rc)
        return rc;
    if (sdp_keymem_init() != 0)
        return ctx_fail(SDP_ECRYPTO, "libsodium init failed", NULL);
    struct sdp_tls_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ctx_fail(SDP_ENOMEM, "out of memory", NULL);
    pthread_mutex_init(&c->lock, NULL);
    c->cipher = cfg->cipher ? cfg->cipher : SDP_CIPHER_AES128GCM;
    c->have_pin = cfg->have_pin;
    memcpy(c->pin, cfg->pin, 32);
    c->insecure = cfg->insecure;
    c->early = cfg->early_data;
    c->has_ca = cfg->ca_file != NULL;
    c->has_cert = cfg->cert_file != NULL || cfg->ephemeral_cert;
    if (cfg->psk != NULL) {
        c->psk = sdp_keymem_alloc(cfg->psk_len);
        if (c->psk == NULL) {
            sdp_tls_ctx_free(c);
            return ctx_fail(SDP_ENOMEM, "no locked memory for the PSK", NULL);
        }
        memcpy(c->psk, cfg->psk, cfg->psk_len);
        c->psk_len = cfg->psk_len;
        snprintf(c->psk_id, sizeof c->psk_id, "%s", cfg->psk_identity);
    }
    X509 *eph = NULL;
    EVP_PKEY *ephk = NULL;
    if (cfg->ephemeral_cert && (rc = make_ephemeral(&eph, &ephk)) != 0) {
        sdp_tls_ctx_free(c);
        return ctx_fail(rc, "cannot make the ephemeral certificate", NULL);
    }
    int can_serve = c->has_cert || c->psk != NULL;
    int can_connect = c->has_ca || c->have_pin || c->psk != NULL || c->insecure;
    if (can_connect)
        rc = ctx_client(cfg, c, eph, ephk);
    if (rc == 0 && can_serve)
        rc = ctx_server(cfg, c, eph, ephk);
    if (rc == 0 && c->has_cert) {
        X509 *mine = SSL_CTX_get0_certificate(c->sctx != NULL ? c->sctx : c->cctx);
        unsigned int n = 0;
        if (mine == NULL || !X509_digest(mine, EVP_sha256(), c->fp, &n) || n != 32)
            rc = ctx_fail(SDP_ECRYPTO, "cannot hash our certificate", NULL);
        c->have_fp = rc == 0;
    }
    X509_free(eph);
    EVP_PKEY_free(ephk);
    if (rc) {
        sdp_tls_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sdp_tls_ctx_free(struct sdp_tls_ctx *c)
{
    if (c == NULL)
        return;
    while (c->ncache > 0)
        cache_drop(c, c->ncache - 1);
    SSL_CTX_free(c->cctx);
    SSL_CTX_free(c->sctx);
    sdp_keymem_free(c->psk);
    pthread_mutex_destroy(&c->lock);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

int sdp_tls_ctx_fingerprint(const struct sdp_tls_ctx *c, uint8_t out[32])
{
    if (c == NULL || !c->have_fp)
        return SDP_EINVAL;
    memcpy(out, c->fp, 32);
    return 0;
}

/* ------------------------------------------------------------------ */
/* One handshake                                                        */
/* ------------------------------------------------------------------ */

static int set_peer_name(struct sdp_tls *t, const char *name)
{
    X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
    unsigned char addr[16];
    snprintf(t->name, sizeof t->name, "%s", name);
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(p, name) == 1;
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(p, name, 0) == 1;
}

/* Client: resume from the cache, with 0-RTT when the ticket allows it. */
static int client_start(struct sdp_tls *t)
{
    struct sdp_tls_ctx *c = t->c;
    SSL_SESSION *s = t->tkey_len ? cache_take(c, t->tkey, t->tkey_len, t->name) : NULL;
    if (s != NULL) {
        int ok = SSL_set_session(t->ssl, s);
        int early = ok && c->early && SSL_SESSION_get_max_early_data(s) > 0;
        SSL_SESSION_free(s);
        if (!ok)
            return SDP_ECRYPTO;
        if (early) {
            size_t w = 0;
            if (SSL_write_early_data(t->ssl, &early_marker, 1, &w) != 1 || w != 1)
                return SDP_ECRYPTO;
            t->early_offered = 1;
            return 0;
        }
    }
    int r = SSL_do_handshake(t->ssl);
    if (r == 1 || ssl_failed(t, r) != 0)
        return SDP_ECRYPTO; /* a client cannot finish or fail before any input */
    return 0;
}

int sdp_tls_new(struct sdp_tls_ctx *c, enum sdp_tls_role role, const char *peer_name,
                const void *ticket_key, size_t ticket_key_len, struct sdp_tls **out)
{
    *out = NULL;
    int server = role == SDP_TLS_SERVER;
    if (c == NULL || (role != SDP_TLS_CLIENT && !server))
        return SDP_EINVAL;
    SSL_CTX *x = server ? c->sctx : c->cctx;
    if (x == NULL)
        return SDP_EINVAL;
    if (!server && ((ticket_key != NULL && (ticket_key_len == 0 || ticket_key_len > TICKET_KEY_MAX)) ||
                    (peer_name != NULL && (peer_name[0] == '\0' || strlen(peer_name) > NAME_MAX_LEN))))
        return SDP_EINVAL;
    struct sdp_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return SDP_ENOMEM;
    t->c = c;
    t->server = server;
    t->alert_in = t->alert_out = -1;
    ERR_clear_error();
    t->ssl = SSL_new(x);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return SDP_ENOMEM;
    }
    /* An empty input buffer means "wait", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    int rc = 0;
    SSL_set_msg_callback(t->ssl, msg_cb);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (peer_name != NULL && !set_peer_name(t, peer_name))
            rc = SDP_EINVAL;
        if (ticket_key != NULL) {
            memcpy(t->tkey, ticket_key, ticket_key_len);
            t->tkey_len = ticket_key_len;
        }
        if (rc == 0)
            rc = client_start(t);
    }
    if (rc) {
        sdp_tls_free(t);
        ERR_clear_error();
        return rc;
    }
    *out = t;
    return 0;
}

void sdp_tls_free(struct sdp_tls *t)
{
    if (t == NULL)
        return;
    /* Without a shutdown mark OpenSSL deems the last session bad on free:
     * it would spoil the ticket a client just cached and drop the one a
     * server keeps for 0-RTT anti-replay. */
    if (t->done && !t->err)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl); /* frees the BIOs; OpenSSL wipes its secrets */
    OPENSSL_cleanse(t, sizeof *t);
    free(t);
}

/* Run OpenSSL on whatever input is buffered. */
static int step(struct sdp_tls *t)
{
    ERR_clear_error();
    if (t->server && t->c->early && !t->early_end) {
        for (;;) {
            uint8_t junk[EARLY_MAX];
            size_t n = 0;
            int r = SSL_read_early_data(t->ssl, junk, sizeof junk, &n);
            if (r == SSL_READ_EARLY_DATA_FINISH)
                break;
            if (r != SSL_READ_EARLY_DATA_SUCCESS)
                return ssl_failed(t, -1);
            /* The marker only; its content means nothing. */
        }
        t->early_end = 1;
    }
    if (!t->done) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1)
            return ssl_failed(t, r);
        t->done = 1;
        compute_ident(t);
    }
    /* After the handshake: tickets (client), or a late alert such as the
     * server refusing our client certificate.  Application data is not
     * part of this stream. */
    uint8_t buf[64];
    int r = SSL_read(t->ssl, buf, sizeof buf);
    if (r > 0) {
        set_fail(t, SDP_EHANDSHAKE, "%s", "unexpected application data in the handshake stream");
        return t->err;
    }
    return ssl_failed(t, r);
}

int sdp_tls_input(struct sdp_tls *t, const uint8_t *buf, size_t len)
{
    if (t->err)
        return t->err;
    if (len > 0) {
        if (BIO_ctrl_pending(t->rbio) + len > INPUT_MAX || len > INT32_MAX) {
            set_fail(t, SDP_EHANDSHAKE, "%s", "too much unprocessed handshake data");
            return t->err;
        }
        if (BIO_write(t->rbio, buf, (int)len) != (int)len) {
            set_fail(t, SDP_EHANDSHAKE, "%s", "out of memory buffering handshake data");
            return t->err;
        }
    }
    return step(t);
}

size_t sdp_tls_output(struct sdp_tls *t, uint8_t *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    int n = BIO_read(t->wbio, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

int sdp_tls_done(const struct sdp_tls *t)
{
    return t->done && !t->err;
}

int sdp_tls_confirmed(const struct sdp_tls *t)
{
    return sdp_tls_done(t) && (t->server || t->confirmed);
}

int sdp_tls_error(const struct sdp_tls *t)
{
    return t->err;
}

const char *sdp_tls_last_error(const struct sdp_tls *t)
{
    return t->detail;
}

static int export_one(SSL *ssl, const char *label, uint8_t out[SDP_SECRET_LEN])
{
    /* use_context = 1 with an empty context: in TLS 1.3 the same value as
     * no context (RFC 8446 7.5), and the same shape as the early exporter. */
    static const unsigned char empty[1];
    return SSL_export_keying_material(ssl, out, SDP_SECRET_LEN, label, strlen(label), empty, 0, 1) == 1
               ? 0
               : SDP_ECRYPTO;
}

int sdp_tls_export(struct sdp_tls *t, enum sdp_cipher *suite, uint8_t tx[SDP_SECRET_LEN],
                   uint8_t rx[SDP_SECRET_LEN])
{
    if (t->err)
        return t->err;
    /* A server that accepted 0-RTT has written its Finished: the exporter
     * secret exists (0.5-RTT), and it answers early requests under these
     * keys instead of holding them until the client's Finished. */
    int half = t->server && t->hello_done && SSL_get_early_data_status(t->ssl) == SSL_EARLY_DATA_ACCEPTED;
    if (!t->done && !half)
        return SDP_EAGAIN;
    int rc = cipher_of(SSL_get_current_cipher(t->ssl), suite);
    if (rc == 0)
        rc = export_one(t->ssl, t->server ? SDP_EXPORTER_SERVER : SDP_EXPORTER_CLIENT, tx);
    if (rc == 0)
        rc = export_one(t->ssl, t->server ? SDP_EXPORTER_CLIENT : SDP_EXPORTER_SERVER, rx);
    if (rc) {
        OPENSSL_cleanse(tx, SDP_SECRET_LEN);
        OPENSSL_cleanse(rx, SDP_SECRET_LEN);
        ERR_clear_error();
    }
    return rc;
}

int sdp_tls_early_export(struct sdp_tls *t, enum sdp_cipher *suite, uint8_t secret[SDP_SECRET_LEN])
{
    if (t->server) {
        if (!t->c->early)
            return SDP_EUNAVAIL;
        if (t->err)
            return SDP_EUNAVAIL; /* a failed handshake's 0-RTT is not to be used */
        if (!t->hello_done)
            return SDP_EAGAIN;
        if (SSL_get_early_data_status(t->ssl) != SSL_EARLY_DATA_ACCEPTED)
            return SDP_EUNAVAIL;
    } else if (!t->early_offered) {
        return SDP_EUNAVAIL;
    }
    const SSL_SESSION *s = SSL_get0_session(t->ssl);
    int rc = cipher_of(s != NULL ? SSL_SESSION_get0_cipher(s) : NULL, suite);
    if (rc == 0 && SSL_export_keying_material_early(t->ssl, secret, SDP_SECRET_LEN, SDP_EXPORTER_EARLY,
                                                    strlen(SDP_EXPORTER_EARLY), NULL, 0) != 1)
        rc = SDP_ECRYPTO;
    if (rc) {
        OPENSSL_cleanse(secret, SDP_SECRET_LEN);
        ERR_clear_error();
    }
    return rc;
}

int sdp_tls_early_accepted(const struct sdp_tls *t)
{
    if (t->server) {
        if (!t->hello_done)
            return 0;
        switch (SSL_get_early_data_status(t->ssl)) {
        case SSL_EARLY_DATA_ACCEPTED: return 1;
        case SSL_EARLY_DATA_REJECTED: return -1;
        default: return 0;
        }
    }
    if (!t->early_offered)
        return 0;
    if (t->err)
        return -1;
    if (!t->done)
        return 0;
    return SSL_get_early_data_status(t->ssl) == SSL_EARLY_DATA_ACCEPTED ? 1 : -1;
}

const char *sdp_tls_peer_identity(const struct sdp_tls *t)
{
    return t->done && !t->err ? t->ident : "";
}
