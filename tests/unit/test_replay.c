/* The request-id replay window: a numbered table of (counter, accepted?)
 * steps in the style of WireGuard's counter self-test, each step checking
 * and (if accepted) recording the counter, then a random run against a
 * deliberately trivial reference. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/replay.h"
#include "sdp/sdp.h"

#define W ((uint64_t)(SDP_REPLAY_WORDS - 1) * 64)

static uint64_t ring[SDP_REPLAY_WORDS];
static uint64_t big_ring[257];

static int step(struct sdp_replay *w, uint64_t c)
{
    if (sdp_replay_check(w, c) != 0)
        return 0;
    sdp_replay_update(w, c);
    return 1;
}

Test(replay, table)
{
    static const struct {
        uint64_t c;
        int ok;
    } t[] = {
        {0, 0},                 /* 1: zero is never an id */
        {1, 1},                 /* 2 */
        {1, 0},                 /* 3: duplicate */
        {9, 1},                 /* 4 */
        {8, 1},                 /* 5: out of order, inside the window */
        {7, 1},                 /* 6 */
        {7, 0},                 /* 7 */
        {W, 1},                 /* 8: top moves to the window's size */
        {W - 1, 1},             /* 9 */
        {1, 0},                 /* 10: still inside, already seen */
        {W + 1, 1},             /* 11: now 1 falls out */
        {1, 0},                 /* 12: too old */
        {2, 1},                 /* 13: oldest counter still inside, never seen */
        {2, 0},                 /* 14 */
        {W + 1, 0},             /* 15 */
        {10 * W, 1},            /* 16: a jump beyond the whole ring */
        {10 * W - W + 1, 1},    /* 17: oldest inside */
        {10 * W - W, 0},        /* 18: just outside */
        {10 * W - 1, 1},        /* 19 */
        {10 * W - 1, 0},        /* 20 */
        {10 * W + 64, 1},       /* 21: next word */
        {10 * W, 0},            /* 22: seen before the slide, still inside */
        {10 * W + 63, 1},       /* 23 */
        {10 * W + 65, 1},       /* 24 */
        {10 * W + 64, 0},       /* 25 */
        {10 * W + 64 * 64, 1},  /* 26: slide by exactly the ring */
        {10 * W + 64, 0},       /* 27: out of the window now */
        {10 * W + 65, 0},       /* 28: seen at 24, still inside */
        {10 * W + 64 * 64 - W + 2, 1}, /* 29: oldest word kept, this bit unseen */
        {(UINT64_C(1) << 47) - 1, 1},  /* 30: largest counter of 48-bit ids */
        {(UINT64_C(1) << 47) - 1, 0},  /* 31 */
        {(UINT64_C(1) << 47) - 2, 1},  /* 32 */
        {10 * W + 64 * 64, 0},  /* 33: far behind */
    };
    struct sdp_replay w;
    sdp_replay_init(&w, ring, SDP_REPLAY_WORDS);
    cr_assert_eq(sdp_replay_window(&w), W);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        cr_assert_eq(step(&w, t[i].c), t[i].ok, "step %zu: counter %llu should be %s", i + 1,
                     (unsigned long long)t[i].c, t[i].ok ? "accepted" : "refused");
}

Test(replay, stale_update_does_not_mark_newer)
{
    struct sdp_replay w;
    sdp_replay_init(&w, ring, SDP_REPLAY_WORDS);
    uint64_t top = 5 * W;
    sdp_replay_update(&w, top);
    uint64_t fresh = top - 1;
    /* Same ring word and bit as fresh, but far outside the window. */
    uint64_t stale = fresh - 64 * SDP_REPLAY_WORDS;
    sdp_replay_update(&w, stale);
    cr_assert_eq(sdp_replay_check(&w, fresh), 0);
    cr_assert_eq(sdp_replay_check(&w, stale), SDP_EREPLAY);
}

/* A ring that starts empty and grows the way the core grows it: its
 * first ring before the first check, a larger one when the update asks. */
static uint64_t *lazy_bits;
static unsigned lazy_moves;

static void lazy_grow(struct sdp_replay *w, uint32_t words)
{
    cr_assert_gt(words, w->nwords, "a ring only grows");
    cr_assert_leq(words, w->max_words);
    uint64_t *n = malloc(words * sizeof(*n));
    cr_assert_not_null(n);
    memset(n, 0x5a, words * sizeof(*n)); /* move must not rely on zeroed memory */
    sdp_replay_move(w, n, words);
    free(lazy_bits);
    lazy_bits = n;
    lazy_moves++;
}

static int lazy_step(struct sdp_replay *w, uint64_t c)
{
    if (!w->bits)
        lazy_grow(w, sdp_replay_grow_words(w, c));
    if (sdp_replay_check(w, c) != 0)
        return 0;
    uint32_t words = sdp_replay_grow_words(w, c);
    if (words)
        lazy_grow(w, words);
    sdp_replay_update(w, c);
    return 1;
}

static void random_run_ex(uint64_t *bits, uint32_t nwords, int lazy, uint64_t seed, uint64_t ahead)
{
    const uint64_t win = (uint64_t)(nwords - 1) * 64;
    /* Reference: a plain array of seen counters and the top. */
    enum { N = 200000 };
    const uint64_t SPAN = 40000 + 400 * ahead; /* room for the accepted ones to climb */
    uint8_t *seen = calloc(SPAN + 2 * win, 1);
    cr_assert_not_null(seen);
    struct sdp_replay w;
    if (lazy)
        sdp_replay_init_lazy(&w, nwords);
    else
        sdp_replay_init(&w, bits, nwords);
    uint64_t top = 0, x = seed;
    unsigned accepted = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = x >> 33;
        /* Mostly near the top, sometimes far behind or ahead. */
        uint64_t c = top + 1 + (r % ahead) > (r >> 8) % (win + 200) ? top + 1 + (r % ahead) - (r >> 8) % (win + 200)
                                                                     : 1 + (r % 7);
        if (c >= SPAN)
            break;
        int ref_ok = c > 0 && !seen[c] && (c > top || top - c < win);
        int got = lazy ? lazy_step(&w, c) : step(&w, c);
        cr_assert_eq(got, ref_ok, "iteration %d: counter %llu (top %llu): got %d, reference %d", i,
                     (unsigned long long)c, (unsigned long long)top, got, ref_ok);
        if (ref_ok) {
            seen[c] = 1;
            if (c > top)
                top = c;
            accepted++;
        } else {
            refused++;
        }
    }
    cr_assert_gt(accepted, 1000, "ahead %llu: %u accepted", (unsigned long long)ahead, accepted);
    cr_assert_gt(refused, 1000, "ahead %llu: %u refused", (unsigned long long)ahead, refused);
    free(seen);
    if (lazy) {
        free(lazy_bits);
        lazy_bits = NULL;
    }
}

static void random_run(uint64_t *bits, uint32_t nwords)
{
    random_run_ex(bits, nwords, 0, 12345, 64);
}

Test(replay, random_against_reference)
{
    random_run(ring, SDP_REPLAY_WORDS);
}

Test(replay, random_odd_sized_ring)
{
    /* The core sizes rings to the RPCs a peer may have outstanding. */
    cr_assert_eq(sdp_replay_words_for(16384), 257);
    cr_assert_eq(sdp_replay_words_for(100), SDP_REPLAY_WORDS);
    random_run(big_ring, 257);
}

/* A ring that grows on demand decides exactly as the full ring does (the
 * same reference), whatever the pattern: near the top, far behind, jumps
 * ahead by more than the small ring holds. */
Test(replay, growing_ring_matches_reference)
{
    static const uint64_t ahead[] = {64, 300, 1200};
    for (unsigned i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
        lazy_moves = 0;
        random_run_ex(NULL, 257, 1, 777 + i, ahead[i]);
        cr_assert_gt(lazy_moves, 1, "ahead %llu: the ring grew", (unsigned long long)ahead[i]);
    }
}

/* A peer with few requests outstanding and none lost keeps the first,
 * small ring however many it sends. */
Test(replay, in_order_peer_keeps_a_small_ring)
{
    struct sdp_replay w;
    sdp_replay_init_lazy(&w, 257);
    lazy_moves = 0;
    /* Up to 8 outstanding, answered out of order within that window. */
    for (uint64_t base = 1; base < 100000; base += 8)
        for (uint64_t j = 0; j < 8; j++)
            cr_assert(lazy_step(&w, base + (j * 5) % 8), "counter %llu", (unsigned long long)(base + (j * 5) % 8));
    cr_assert_eq(w.nwords, SDP_REPLAY_WORDS_FIRST);
    cr_assert_eq(lazy_moves, 1);
    cr_assert_eq(sdp_replay_check(&w, 99999), SDP_EREPLAY);
    cr_assert_eq(sdp_replay_check(&w, 5), SDP_EREPLAY, "older than the ring: refused");
    /* One request lost for good: the ring grows until the window gives up
     * on it, then stays. */
    lazy_step(&w, 100002);
    for (uint64_t c = 100003; c < 100000 + 257 * 64 + 2000; c++)
        cr_assert(lazy_step(&w, c));
    cr_assert_eq(w.nwords, 257);
    cr_assert_eq(sdp_replay_check(&w, 100001), SDP_EREPLAY, "too old now");
    free(lazy_bits);
    lazy_bits = NULL;
}

/* A jump past everything the small ring holds, from a ring with nothing
 * missing: the counters jumped over are still to come and must stay
 * acceptable, as in the full ring. */
Test(replay, jump_past_the_ring_keeps_what_is_still_to_come)
{
    struct sdp_replay w;
    sdp_replay_init_lazy(&w, 257);
    for (uint64_t c = 1; c < 64 * SDP_REPLAY_WORDS_FIRST; c++)
        cr_assert(lazy_step(&w, c));
    cr_assert_eq(w.nwords, SDP_REPLAY_WORDS_FIRST);
    uint64_t far = 64 * SDP_REPLAY_WORDS_FIRST + 64 * 10;
    cr_assert(lazy_step(&w, far));
    for (uint64_t c = 64 * SDP_REPLAY_WORDS_FIRST; c < far; c += 7)
        cr_assert(lazy_step(&w, c), "counter %llu jumped over", (unsigned long long)c);
    cr_assert_eq(sdp_replay_check(&w, 100), SDP_EREPLAY);
    free(lazy_bits);
    lazy_bits = NULL;
}
