/* Receive-path micro-benchmark: opening a 1 MiB message (64 records of
 * 16 KiB) that arrives in packets of P payload bytes, two ways, per
 * provider that streams:
 *   copy   copy each piece into the delivered buffer, then open each record
 *          in place in one call (the fallback path of src/core/msgin.c);
 *   stream decrypt each piece straight from the packet into the buffer
 *          with a streaming open (the in-order path).
 * Best of --reps runs, microseconds per MiB, and stream/copy.
 *
 * Usage: sdp-bench-rx [--reps N] [PIECE ...]   (default pieces 1448 8952) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/keymem.h"
#include "crypto/record.h"
#include "sdp/sdp.h"

#define NREC 64
#define RS 16384

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int open_msg(int stream, struct sdp_rec_key *rx, struct sdp_rec_streams *pool, const uint8_t *wire,
                    uint8_t *buf, uint8_t *tags, size_t piece)
{
    int bad = 0;
    for (uint32_t r = 0; r < NREC; r++) {
        const uint8_t *w = wire + (size_t)r * (RS + SDP_AEAD_TAG_LEN);
        uint8_t *o = buf + (size_t)r * RS, *tag = tags + r * SDP_AEAD_TAG_LEN;
        struct sdp_rec_stream *s = NULL;
        if (stream) {
            s = sdp_rec_stream_get(pool, rx);
            if (!s || sdp_rec_stream_begin(rx, s, 5, NREC * RS, RS, r, 0) != 0)
                return -1;
        }
        for (size_t off = 0; off < RS; off += piece) {
            uint32_t n = (uint32_t)(RS - off < piece ? RS - off : piece);
            if (stream)
                bad |= sdp_rec_stream_update(s, w + off, n, o + off);
            else
                memcpy(o + off, w + off, n);
        }
        memcpy(tag, w + RS, SDP_AEAD_TAG_LEN);
        if (stream) {
            bad |= sdp_rec_stream_end(rx, s, tag, o);
            sdp_rec_stream_put(s);
        } else {
            bad |= sdp_rec_open(rx, 5, NREC * RS, RS, r, 0, o, tag, o);
        }
    }
    return bad;
}

static void run(const struct sdp_aead_provider *p, const size_t *pieces, int npieces, int reps)
{
    struct sdp_rec_key tx, rx;
    uint8_t secret[32];
    sdp_random_bytes(secret, sizeof(secret));
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    if (!tk || sdp_keysched_derive(p->suite, secret, tk) != 0 || sdp_rec_key_init(&tx, p, tk, 0, 0) != 0 ||
        sdp_rec_key_init(&rx, p, tk, 0, 0) != 0) {
        fprintf(stderr, "%s: no keys\n", p->name);
        exit(1);
    }
    sdp_traffic_keys_free(tk);
    size_t len = (size_t)NREC * RS;
    uint8_t *pt = malloc(len), *wire = malloc(len + NREC * SDP_AEAD_TAG_LEN), *buf = malloc(len),
            *tags = malloc(NREC * SDP_AEAD_TAG_LEN);
    if (!pt || !wire || !buf || !tags)
        exit(1);
    for (size_t i = 0; i < len; i++)
        pt[i] = (uint8_t)(i * 7 + (i >> 12));
    for (uint32_t r = 0; r < NREC; r++) {
        uint8_t *w = wire + (size_t)r * (RS + SDP_AEAD_TAG_LEN);
        if (sdp_rec_seal(&tx, 5, (uint32_t)len, RS, r, 0, pt + (size_t)r * RS, w, w + RS) != 0)
            exit(1);
    }
    struct sdp_rec_streams pool;
    memset(&pool, 0, sizeof(pool));
    for (int k = 0; k < npieces; k++) {
        double best[2] = {1e30, 1e30};
        for (int rep = 0; rep < reps; rep++)
            for (int mode = 0; mode < 2; mode++) { /* interleaved: noise hits both */
                double t0 = now_ns();
                if (open_msg(mode, &rx, &pool, wire, buf, tags, pieces[k]) != 0) {
                    fprintf(stderr, "%s: open failed\n", p->name);
                    exit(1);
                }
                double dt = now_ns() - t0;
                if (dt < best[mode])
                    best[mode] = dt;
            }
        if (memcmp(buf, pt, len) != 0) {
            fprintf(stderr, "%s: wrong plaintext\n", p->name);
            exit(1);
        }
        printf("%-26s %6zu %10.0f %10.0f %8.2f\n", p->name, pieces[k], best[0] / 1e3, best[1] / 1e3,
               best[1] / best[0]);
    }
    sdp_rec_streams_fini(&pool);
    sdp_rec_key_clear(&tx);
    sdp_rec_key_clear(&rx);
    free(pt);
    free(wire);
    free(buf);
    free(tags);
}

int main(int argc, char **argv)
{
    size_t pieces[16];
    int npieces = 0, reps = 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (npieces < 16 && atoi(argv[i]) > 0)
            pieces[npieces++] = (size_t)atoi(argv[i]);
        else {
            fprintf(stderr, "usage: sdp-bench-rx [--reps N] [PIECE ...]\n");
            return 2;
        }
    }
    if (!npieces) {
        pieces[npieces++] = 1448;
        pieces[npieces++] = 8952;
    }
    if (reps < 1)
        reps = 1;
    printf("%-26s %6s %10s %10s %8s\n", "provider", "piece", "copy us", "stream us", "stream/copy");
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++)
        if ((*pp)->available() && (*pp)->stream_new && !((*pp)->flags & SDP_AEAD_F_INSECURE))
            run(*pp, pieces, npieces, reps);
    return 0;
}
