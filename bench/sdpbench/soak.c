/* sdp-bench --soak and --idle-peers: memory, not speed.
 *
 * --soak SECONDS runs steady mixed sdp traffic (the bench's own checked
 * messages, 64 B to 1 MB, a window of 16) through one client socket and one
 * server socket of this process, and prints the heap (mallinfo2) and the
 * resident set at intervals.  After a warm-up (a fifth of the run, at least
 * 5 s) it fails (exit 1) when the peak heap or RSS of the second half of the
 * rest exceeds that of the first half by more than 10% + 1 MiB (4 MiB for
 * RSS), or when any RPC failed.
 *
 * --idle-peers N measures what a peer costs while it is idle: an inline
 * sdp socket with room for N peers, then N peers installed (each with its
 * keys, as sdp_set_peer_keys does), RSS and heap before and after, per peer;
 * plus the share of the socket's tables that scale with max_peers (the
 * difference between sockets opened for N and 2N peers, per peer), the
 * parts (core peer struct, key memory slots, a busy key's cipher context,
 * the replay ring) and the time an install takes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "core/peer.h"
#include "core/replay.h"
#include "crypto/keymem.h"
#include "sdp/sdp.h"

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static double mib(size_t b)
{
    return (double)b / (1024.0 * 1024.0);
}

int run_soak(double seconds, unsigned long long seed)
{
    char err[256];
    struct tr_server *sv = tr_sdp.server_start("127.0.0.1", 0, -1, err, sizeof(err));
    if (!sv) {
        fprintf(stderr, "sdp-bench --soak: server: %s\n", err);
        return 2;
    }
    struct tr_conn *c = tr_sdp.connect("127.0.0.1", tr_sdp.server_port(sv), err, sizeof(err));
    if (!c) {
        fprintf(stderr, "sdp-bench --soak: connect: %s\n", err);
        tr_sdp.server_stop(sv);
        return 2;
    }
    /* Mostly small messages, some medium, a few large: requests and
     * responses of different sizes, so every buffer size class cycles. */
    static const size_t sizes[] = {64, 64, 64, 64, 512, 1024, 8192, 8192, 65536, 1 << 20};
    const int window = 16;
    const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
    uint64_t rng = seed ? seed : 1, tag = 1, done = 0, failed = 0;
    int outstanding = 0;
    double t0 = now_s(), warm = seconds / 5 > 5 ? seconds / 5 : 5, every = seconds / 20;
    if (warm > seconds / 2)
        warm = seconds / 2;
    if (every < 1)
        every = 1;
    double next_print = t0;
    size_t heap_base = 0, rss_base = 0, heap_max = 0, rss_max = 0;
    int have_base = 0;
    printf("soak: %.0f s of mixed sdp traffic (64 B to 1 MB, window %d); warm-up %.0f s\n", seconds, window, warm);
    printf("%8s %10s %10s %10s %12s\n", "time s", "RPCs", "failed", "heap MiB", "RSS MiB");
    for (;;) {
        double now = now_s();
        if (now >= next_print || now - t0 >= seconds) {
            size_t h = heap_bytes(), r = rss_bytes();
            printf("%8.1f %10llu %10llu %10.2f %12.2f\n", now - t0, (unsigned long long)done,
                   (unsigned long long)failed, mib(h), mib(r));
            fflush(stdout);
            /* In-flight messages make single samples swing by megabytes:
             * compare the peak of the first half after the warm-up with the
             * peak of the second half. */
            if (now - t0 >= warm) {
                int late = now - t0 >= warm + (seconds - warm) / 2;
                size_t *hp = late ? &heap_max : &heap_base, *rp = late ? &rss_max : &rss_base;
                *hp = h > *hp ? h : *hp;
                *rp = r > *rp ? r : *rp;
                have_base |= late;
            }
            next_print += every;
            if (now - t0 >= seconds)
                break;
        }
        while (outstanding < window) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t req = sizes[rng % nsizes], resp = sizes[(rng >> 20) % nsizes];
            int rc = tr_sdp.send(c, req, resp, tag);
            if (rc == 1)
                break;
            if (rc < 0) {
                fprintf(stderr, "soak: %s\n", c->err);
                failed++;
                break;
            }
            tag++;
            outstanding++;
        }
        struct tr_done d[64];
        int n = tr_sdp.poll(c, d, 64, 1000);
        if (n < 0) {
            fprintf(stderr, "soak: %s\n", c->err);
            failed++;
            break;
        }
        for (int i = 0; i < n; i++) {
            outstanding--;
            if (d[i].ok)
                done++;
            else
                failed++;
        }
    }
    tr_sdp.close(c);
    tr_sdp.server_stop(sv);
    int grew_heap = heap_max > heap_base + heap_base / 10 + (1u << 20);
    int grew_rss = rss_max > rss_base + rss_base / 10 + (4u << 20);
    printf("peaks after warm-up, first half -> second half: heap %.2f -> %.2f MiB, RSS %.2f -> %.2f MiB; "
           "%llu RPCs, %llu failed: %s\n",
           mib(heap_base), mib(heap_max), mib(rss_base), mib(rss_max), (unsigned long long)done,
           (unsigned long long)failed,
           failed ? "FAIL (RPCs failed)" : grew_heap ? "FAIL (heap grew)" : grew_rss ? "FAIL (RSS grew)" : "PASS");
    return failed || grew_heap || grew_rss || !have_base ? 1 : 0;
}

static sdp_socket *idle_open(uint32_t max_peers)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.max_peers = max_peers;
    sdp_socket *s = NULL;
    return sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s) == 0 ? s : NULL;
}

/* Heap one AES-128-GCM key object's cipher context takes once it seals
 * (an average over many: glibc's per-thread cache counts freed chunks as
 * in use, so a single one could reuse one and show nothing). */
static double ctx_bytes(void)
{
    enum { K = 64 };
    const struct sdp_aead_provider *p;
    struct sdp_aead_key *k[K];
    uint8_t key[16] = {1}, iv[12] = {2}, pt[16] = {3}, ct[16], tag[16];
    if (sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p) != 0)
        return 0;
    int n = 0;
    while (n < K && p->key_new(key, 16, iv, &k[n]) == 0)
        n++;
    size_t h0 = heap_bytes();
    int ok = n == K;
    for (int i = 0; i < n; i++)
        ok &= p->seal(k[i], 1, NULL, 0, pt, sizeof(pt), ct, tag) == 0;
    size_t h1 = heap_bytes();
    for (int i = 0; i < n; i++)
        p->key_free(k[i]);
    return ok ? ((double)h1 - (double)h0) / K : 0;
}

int run_idle_peers(unsigned n)
{
    static const uint8_t tx[SDP_SECRET_LEN] = "sdp-bench idle peer tx secret", rx[SDP_SECRET_LEN] = "sdp-bench rx";
    if (n < 16 || n > 1000000) {
        fprintf(stderr, "sdp-bench --idle-peers: N between 16 and 1000000\n");
        return 2;
    }
    /* One socket first, so one-time set-up (OpenSSL, locked key memory)
     * is not counted against the peers. */
    sdp_socket *w = idle_open(16);
    struct sockaddr_in wp = {.sin_family = AF_INET, .sin_port = htons(9)};
    wp.sin_addr.s_addr = htonl(0x7f000001u);
    if (w)
        (void)sdp_set_peer_keys(w, (struct sockaddr *)&wp, sizeof(wp), SDP_CIPHER_AES128GCM, tx, rx);
    sdp_close(w);
    /* Tables sized by max_peers: sockets for N and 2N peers, none installed. */
    size_t h0 = heap_bytes(), r0 = rss_bytes();
    sdp_socket *a = idle_open(n);
    size_t h1 = heap_bytes(), r1 = rss_bytes();
    sdp_socket *b = idle_open(2 * n);
    size_t h2 = heap_bytes(), r2 = rss_bytes();
    if (!a || !b) {
        fprintf(stderr, "sdp-bench --idle-peers: sdp_open failed\n");
        return 2;
    }
    sdp_close(b);
    /* N peers installed on the first socket. */
    struct sdp_keymem_stats k0, k1;
    sdp_keymem_stats(&k0);
    size_t h3 = heap_bytes(), r3 = rss_bytes();
    unsigned ok = 0;
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        struct sockaddr_in p = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(1024 + i % 60000))};
        p.sin_addr.s_addr = htonl(0x7f000000u | (2u + i / 60000));
        if (sdp_set_peer_keys(a, (struct sockaddr *)&p, sizeof(p), SDP_CIPHER_AES128GCM, tx, rx) == 0)
            ok++;
    }
    double install_us = (now_s() - t0) * 1e6 / n;
    size_t h4 = heap_bytes(), r4 = rss_bytes();
    sdp_keymem_stats(&k1);
    sdp_close(a);
    /* The 2N socket minus the N socket: what N more peers' worth of tables cost. */
    double table_heap = (((double)h2 - (double)h1) - ((double)h1 - (double)h0)) / n;
    double table_rss = (((double)r2 - (double)r1) - ((double)r1 - (double)r0)) / n;
    double peer_heap = ((double)h4 - (double)h3) / n, peer_rss = ((double)r4 - (double)r3) / n;
    /* The tables are allocated (heap) but mostly untouched until used; the
     * installed peers touch their part.  Count heap for the tables and the
     * larger of heap and RSS for the peers (RSS sees locked key pages). */
    double total = table_heap + (peer_rss > peer_heap ? peer_rss : peer_heap);
    printf("idle peers: %u installed of %u (inline socket, AES-128-GCM keys)\n", ok, n);
    printf("  socket for %u peers: heap %.1f MiB, RSS %.1f MiB\n", n, mib(h1 - h0), mib(r1 > r0 ? r1 - r0 : 0));
    printf("  tables that scale with max_peers: %.0f B heap, %.0f B RSS per peer\n", table_heap, table_rss);
    printf("    of which the core's peer struct: %zu B\n", sizeof(struct sdp_peer));
    printf("  installing the peers: %.0f B heap, %.0f B RSS per peer\n", peer_heap, peer_rss);
    printf("    key memory slots: %.0f B per peer (%.1f slots), slabs %.0f B per peer (locked)\n",
           ((double)k1.slot_bytes - (double)k0.slot_bytes) / n, ((double)k1.slots - (double)k0.slots) / n,
           ((double)k1.slab_bytes - (double)k0.slab_bytes) / n);
    printf("  install: %.1f us per peer (sdp_set_peer_keys, both directions)\n", install_us);
    printf("  not in an idle peer: a replay ring (%u B at its first request, growing to %u B with what it keeps\n"
           "    outstanding), and a cipher context per key in use (%.0f B heap each, freed after 1 s idle)\n",
           SDP_REPLAY_WORDS_FIRST * 8, sdp_replay_words_for(16384) * 8, ctx_bytes());
    printf("  per idle peer: %.0f B (target <= 2048 B): %s\n", total, total <= 2048 ? "PASS" : "MISS");
    return ok == n ? 0 : 1;
}
