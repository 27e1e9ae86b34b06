/* libFuzzer target for the server side of the in-band TLS handshake
 * (src/handshake/tls.c): whatever a client sends must end in "waiting" or
 * one of the documented failure codes, never in a finished handshake (no
 * input can produce the client Finished without the server's random).
 *
 * Input byte 0 picks how the rest is cut into sdp_tls_input calls: 0 feeds
 * it whole, n > 0 in pieces of n bytes.  The server has an ephemeral
 * certificate, a PSK (identity "fuzz", the key below: the seed corpus
 * holds ClientHellos with valid binders for it) and accepts 0-RTT.
 * Seeds: tests/fuzz/make_tls_corpus.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handshake/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sdp_tls_ctx *ctx;

static const uint8_t psk[32] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                                0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                                0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

static void teardown(void)
{
    sdp_tls_ctx_free(ctx);
}

static void setup(void)
{
    struct sdp_tls_config cfg = {0};
    cfg.ephemeral_cert = 1;
    cfg.psk = psk;
    cfg.psk_len = sizeof psk;
    cfg.psk_identity = "fuzz";
    cfg.early_data = 1;
    if (sdp_tls_ctx_new(&cfg, &ctx) != 0)
        abort();
    atexit(teardown);
}

static int documented(int rc)
{
    return rc == 0 || (rc <= SDP_EHANDSHAKE && rc >= SDP_EPSK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ctx == NULL)
        setup();
    if (size < 1)
        return 0;
    size_t piece = data[0] ? data[0] : size;
    data++, size--;
    struct sdp_tls *t = NULL;
    if (sdp_tls_new(ctx, SDP_TLS_SERVER, NULL, NULL, 0, &t) != 0)
        abort();
    uint8_t out[4096];
    for (size_t off = 0; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        /* A heap copy of exactly n bytes, so ASan sees any over-read. */
        uint8_t *chunk = malloc(n);
        memcpy(chunk, data + off, n);
        int rc = sdp_tls_input(t, chunk, n);
        free(chunk);
        off += n;
        if (!documented(rc) || rc != sdp_tls_error(t))
            abort();
        while (sdp_tls_output(t, out, sizeof out) > 0)
            ;
        if (rc != 0)
            break;
    }
    if (sdp_tls_done(t) || !documented(sdp_tls_error(t)))
        abort();
    if (sdp_tls_error(t) != 0 && sdp_tls_last_error(t)[0] == '\0')
        abort();
    enum sdp_cipher suite;
    uint8_t a[SDP_SECRET_LEN], b[SDP_SECRET_LEN];
    int rc = sdp_tls_export(t, &suite, a, b);
    if (rc != SDP_EAGAIN && rc != sdp_tls_error(t))
        abort();
    rc = sdp_tls_early_export(t, &suite, a);
    if (rc != 0 && rc != SDP_EAGAIN && rc != SDP_EUNAVAIL)
        abort();
    if (rc == 0 && sdp_tls_early_accepted(t) != 1)
        abort(); /* an early secret without accepted 0-RTT */
    if (sdp_tls_peer_identity(t)[0] != '\0')
        abort();
    sdp_tls_free(t);
    return 0;
}
