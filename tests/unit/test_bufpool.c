/* The engine's message-buffer pool: size classes fit every length with at
 * most a quarter of slack, freed blocks are reused, the cache stays within
 * its bound, and blocks returned from other threads (as sdp_release does)
 * are never handed out twice. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bufpool.h"

Test(bufpool, classes_fit_with_bounded_slack)
{
    struct sdp_bufpool *bp;
    cr_assert_eq(sdp_bufpool_new(SIZE_MAX, &bp), 0);
    static const size_t lens[] = {1, 255, 256, 257, 320, 321, 511, 512, 513, 1000, 1500, 16400, 65536, 65537,
                                  (1u << 20) + 1100, (64u << 20) + 70000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t *p = sdp_bufpool_get(bp, lens[i]);
        cr_assert_not_null(p);
        memset(p, 0xab, lens[i]); /* the whole length is usable (ASan checks) */
        sdp_bufpool_put(bp, p, lens[i]);
        /* The same length, or any other of its class, gets the block back. */
        cr_assert_eq(sdp_bufpool_get(bp, lens[i]), p, "len %zu not reused", lens[i]);
        sdp_bufpool_put(bp, p, lens[i]);
    }
    struct sdp_bufpool_stats st;
    sdp_bufpool_get_stats(bp, &st);
    cr_assert_geq(st.hits, sizeof(lens) / sizeof(lens[0]), "every second get is served from the cache");
    /* Slack: a lone cached block shows its class size. */
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        sdp_bufpool_trim(bp);
        void *p = sdp_bufpool_get(bp, lens[i]);
        sdp_bufpool_put(bp, p, lens[i]);
        sdp_bufpool_get_stats(bp, &st);
        size_t want = lens[i] < 256 ? 256 : lens[i];
        cr_assert_geq(st.cached_bytes, want);
        cr_assert_leq(st.cached_bytes, want + want / 4, "len %zu in a block of %llu", lens[i],
                      (unsigned long long)st.cached_bytes);
    }
    sdp_bufpool_free(bp);
}

Test(bufpool, exact_class_boundaries)
{
    struct sdp_bufpool *bp;
    cr_assert_eq(sdp_bufpool_new(SIZE_MAX, &bp), 0);
    /* Lengths one apart that share a class reuse each other's blocks;
     * lengths across a boundary do not. */
    void *a = sdp_bufpool_get(bp, 1280);
    sdp_bufpool_put(bp, a, 1280);
    cr_assert_eq(sdp_bufpool_get(bp, 1025), a, "1025 and 1280 share the 1280 class");
    sdp_bufpool_put(bp, a, 1025);
    void *b = sdp_bufpool_get(bp, 1281);
    cr_assert_neq(b, a, "1281 needs the next class");
    sdp_bufpool_put(bp, b, 1281);
    sdp_bufpool_free(bp);
}

Test(bufpool, cache_is_bounded_and_trimmed)
{
    struct sdp_bufpool *bp;
    cr_assert_eq(sdp_bufpool_new(100000, &bp), 0);
    void *p[40];
    for (int i = 0; i < 40; i++)
        p[i] = sdp_bufpool_get(bp, 10000);
    for (int i = 0; i < 40; i++)
        sdp_bufpool_put(bp, p[i], 10000);
    struct sdp_bufpool_stats st;
    sdp_bufpool_get_stats(bp, &st);
    cr_assert_leq(st.cached_bytes, 100000);
    cr_assert_geq(st.released, 40 - 100000 / 10240, "frees past the bound went to the system");
    cr_assert_eq(st.misses, 40);
    sdp_bufpool_trim(bp);
    sdp_bufpool_get_stats(bp, &st);
    cr_assert_eq(st.cached_bytes, 0);
    cr_assert_eq(st.released, 40);
    sdp_bufpool_free(bp);
}

struct worker {
    struct sdp_bufpool *bp;
    int id;
    int errors;
};

/* Get, stamp, check, put back from several threads: a block handed to two
 * owners at once would show the other's stamp. */
static void *churn(void *arg)
{
    struct worker *w = arg;
    uint64_t x = (uint64_t)w->id * 0x9e3779b97f4a7c15ull + 1;
    void *held[8] = {0};
    size_t held_len[8] = {0};
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned slot = (unsigned)(x % 8);
        if (held[slot]) {
            uint8_t *b = held[slot];
            for (size_t k = 0; k < held_len[slot]; k += 61)
                if (b[k] != (uint8_t)w->id)
                    w->errors++;
            sdp_bufpool_put(w->bp, held[slot], held_len[slot]);
            held[slot] = NULL;
        } else {
            held_len[slot] = 200 + (size_t)(x >> 40) % 3000;
            held[slot] = sdp_bufpool_get(w->bp, held_len[slot]);
            if (!held[slot]) {
                w->errors++;
                continue;
            }
            memset(held[slot], w->id, held_len[slot]);
        }
    }
    for (int s = 0; s < 8; s++)
        if (held[s])
            sdp_bufpool_put(w->bp, held[s], held_len[s]);
    return NULL;
}

Test(bufpool, threads_never_share_a_block)
{
    struct sdp_bufpool *bp;
    cr_assert_eq(sdp_bufpool_new(1 << 20, &bp), 0);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.bp = bp, .id = i + 1};
        cr_assert_eq(pthread_create(&t[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].errors, 0, "thread %d saw %d foreign or missing blocks", i, w[i].errors);
    }
    struct sdp_bufpool_stats st;
    sdp_bufpool_get_stats(bp, &st);
    cr_assert_gt(st.hits, st.misses, "blocks were reused");
    sdp_bufpool_free(bp);
}
