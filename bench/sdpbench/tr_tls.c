/* sdp-bench: TLS 1.3 over TCP with OpenSSL in userspace, what people run
 * today: TLS_AES_128_GCM_SHA256 (the same AEAD as sdp's default), an ECDSA
 * P-256 certificate made in memory at start, TCP_NODELAY.  The kTLS variant
 * is the same code with SSL_OP_ENABLE_KTLS, refusing to run when OpenSSL did
 * not actually hand the records to the kernel. */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "stream.h"
#include "tr_tls.h"

#define STAGE 16384 /* one full TLS record */

struct tls_ctx {
    SSL *ssl;
    uint8_t stage[STAGE];
};

static SSL_CTX *srv_ctx[2], *cli_ctx[2];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char init_err[160];

static EVP_PKEY *make_key_and_cert(X509 **out)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!k || !x)
        goto fail;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) || !X509_gmtime_adj(X509_getm_notAfter(x), 86400) ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sdp-bench", -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, k) != 1 || X509_sign(x, k, EVP_sha256()) == 0)
        goto fail;
    *out = x;
    return k;
fail:
    EVP_PKEY_free(k);
    X509_free(x);
    return NULL;
}

static SSL_CTX *ctx_new(int server, int ktls, EVP_PKEY *k, X509 *x)
{
    SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!c)
        return NULL;
    int ok = SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) == 1 &&
             SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256") == 1;
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (ktls)
        SSL_CTX_set_options(c, SSL_OP_ENABLE_KTLS);
    if (server) {
        /* No session tickets: every handshake below is a full one, and no
         * post-handshake messages ride along with the first responses. */
        ok = ok && SSL_CTX_use_certificate(c, x) == 1 && SSL_CTX_use_PrivateKey(c, k) == 1 &&
             SSL_CTX_set_num_tickets(c, 0) == 1;
    } else {
        /* The certificate is made fresh each run: nothing to verify it against. */
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    }
    if (!ok) {
        SSL_CTX_free(c);
        return NULL;
    }
    return c;
}

static void init_once(void)
{
    X509 *x = NULL;
    EVP_PKEY *k = make_key_and_cert(&x);
    for (int v = 0; v < 2 && k; v++) {
        srv_ctx[v] = ctx_new(1, v, k, x);
        cli_ctx[v] = ctx_new(0, v, k, x);
    }
    if (!k || !srv_ctx[0] || !cli_ctx[0] || !srv_ctx[1] || !cli_ctx[1])
        snprintf(init_err, sizeof(init_err), "OpenSSL setup failed: %s",
                 ERR_reason_error_string(ERR_peek_last_error()) ? ERR_reason_error_string(ERR_peek_last_error())
                                                                : "unknown");
    EVP_PKEY_free(k);
    X509_free(x);
}

static int tls_init(char *err, size_t n)
{
    pthread_once(&once, init_once);
    if (init_err[0]) {
        snprintf(err, n, "%s", init_err);
        return -1;
    }
    return 0;
}

/* >0 bytes; 0 would block; -1 error or end of stream. */
static ssize_t ssl_result(SSL *ssl, int r)
{
    if (r > 0)
        return r;
    int e = SSL_get_error(ssl, r);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* The frame header and the first bytes of the body are staged into one
 * full-size record, so a message costs as many records as its bytes need
 * and the rest is written straight from the body. */
static ssize_t tls_send_frame(void *ctx, const uint8_t *hdr, const uint8_t *body, size_t body_len, size_t off)
{
    struct tls_ctx *t = ctx;
    size_t total = FRAME_HDR + body_len;
    size_t first = total < STAGE ? total : STAGE;
    const uint8_t *p;
    size_t len;
    if (off < first) {
        memcpy(t->stage, hdr, FRAME_HDR);
        memcpy(t->stage + FRAME_HDR, body, first - FRAME_HDR);
        p = t->stage + off;
        len = first - off;
    } else {
        p = body + (off - FRAME_HDR);
        len = total - off;
    }
    if (len > INT_MAX)
        len = INT_MAX;
    return ssl_result(t->ssl, SSL_write(t->ssl, p, (int)len));
}

static ssize_t tls_recv(void *ctx, uint8_t *buf, size_t n)
{
    struct tls_ctx *t = ctx;
    return ssl_result(t->ssl, SSL_read(t->ssl, buf, (int)(n > INT_MAX ? INT_MAX : n)));
}

static void tls_free(void *ctx)
{
    struct tls_ctx *t = ctx;
    if (t)
        SSL_free(t->ssl);
    free(t);
}

static struct tls_ctx *wrap(SSL_CTX *sc, int fd)
{
    struct tls_ctx *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ssl = SSL_new(sc);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        tls_free(t);
        return NULL;
    }
    return t;
}

static void *tls_accept(void *server_ctx, int fd)
{
    struct tls_ctx *t = wrap(server_ctx, fd);
    if (t && SSL_accept(t->ssl) != 1) {
        ERR_clear_error();
        tls_free(t);
        return NULL;
    }
    return t;
}

/* client_ctx: the SSL_CTX; for kTLS the records must really be in the kernel. */
static void *tls_connect_io(void *client_ctx, int fd, char *err, size_t n)
{
    struct tls_ctx *t = wrap(client_ctx, fd);
    if (!t) {
        snprintf(err, n, "SSL_new failed");
        return NULL;
    }
    if (SSL_connect(t->ssl) != 1) {
        unsigned long e = ERR_get_error();
        snprintf(err, n, "TLS handshake failed: %s", e ? ERR_reason_error_string(e) : "connection closed");
        ERR_clear_error();
        tls_free(t);
        return NULL;
    }
    if (client_ctx == cli_ctx[1] && !BIO_get_ktls_send(SSL_get_wbio(t->ssl))) {
        snprintf(err, n, "OpenSSL did not enable kTLS on this connection");
        tls_free(t);
        return NULL;
    }
    return t;
}

static const struct stream_io tls_io = {tls_send_frame, tls_recv, tls_free, tls_accept, tls_connect_io};

struct tr_server *tls_server_start_v(int ktls, const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    if (tls_init(err, n) != 0)
        return NULL;
    return (struct tr_server *)stream_server_start(&tls_io, srv_ctx[ktls], host, port, cpu, err, n);
}

uint16_t tls_server_port(struct tr_server *s) { return stream_server_port((struct stream_server *)s); }
void tls_server_stop(struct tr_server *s) { stream_server_stop((struct stream_server *)s); }

struct tr_conn *tls_connect_v(const struct transport *t, int ktls, const char *host, uint16_t port, char *err,
                              size_t n)
{
    if (tls_init(err, n) != 0)
        return NULL;
    return stream_connect(t, &tls_io, cli_ctx[ktls], host, port, err, n);
}

/* TCP connect plus a full TLS 1.3 handshake (no resumption), until the
 * client has the server's Finished: the point where it may send data. */
int tls_handshake_v(int ktls, const char *host, uint16_t port, double *us, char *err, size_t n)
{
    if (tls_init(err, n) != 0)
        return -1;
    double t0 = now_s();
    int fd = tcp_dial(host, port, err, n);
    if (fd < 0)
        return -1;
    void *t = tls_connect_io(cli_ctx[ktls], fd, err, n);
    *us = (now_s() - t0) * 1e6;
    tls_free(t);
    close(fd);
    return t ? 0 : -1;
}

static struct tr_server *tls_server_start(const char *host, uint16_t port, int cpu, char *err, size_t n)
{
    return tls_server_start_v(0, host, port, cpu, err, n);
}

static struct tr_conn *tls_connect(const char *host, uint16_t port, char *err, size_t n)
{
    return tls_connect_v(&tr_tls, 0, host, port, err, n);
}

static int tls_handshake(const char *host, uint16_t port, double *us, char *err, size_t n)
{
    return tls_handshake_v(0, host, port, us, err, n);
}

const struct transport tr_tls = {
    .name = "tls",
    .label = "TLS 1.3 over TCP, OpenSSL userspace, AES-128-GCM",
    .server_start = tls_server_start,
    .server_port = tls_server_port,
    .server_stop = tls_server_stop,
    .connect = tls_connect,
    .send = stream_send,
    .poll = stream_poll,
    .close = stream_close,
    .handshake = tls_handshake,
};
