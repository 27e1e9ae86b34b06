#include "core/replay.h"

#include <string.h>

#include "sdp/sdp.h"

uint32_t sdp_replay_words_for(uint64_t ids)
{
    uint64_t w = (ids + 63) / 64 + 1;
    if (w < SDP_REPLAY_WORDS)
        w = SDP_REPLAY_WORDS;
    return w > (1u << 24) ? 1u << 24 : (uint32_t)w;
}

void sdp_replay_init(struct sdp_replay *w, uint64_t *bits, uint32_t nwords)
{
    w->top = 0;
    w->nwords = nwords;
    w->max_words = nwords;
    w->bits = bits;
    memset(bits, 0, (size_t)nwords * sizeof(*bits));
}

void sdp_replay_init_lazy(struct sdp_replay *w, uint32_t max_words)
{
    w->top = 0;
    w->bits = NULL;
    w->nwords = 0;
    w->max_words = max_words;
}

/* Whether c's word is in the ring (c <= top). */
static int in_ring(const struct sdp_replay *w, uint64_t c)
{
    return w->top / 64 - c / 64 < w->nwords;
}

int sdp_replay_check(const struct sdp_replay *w, uint64_t c)
{
    if (c == 0)
        return SDP_EREPLAY;
    if (c > w->top)
        return 0;
    if (w->top - c >= sdp_replay_window(w) || !in_ring(w, c))
        return SDP_EREPLAY;
    uint64_t word = w->bits[(c / 64) % w->nwords];
    return (word >> (c % 64)) & 1 ? SDP_EREPLAY : 0;
}

uint32_t sdp_replay_grow_words(const struct sdp_replay *w, uint64_t c)
{
    uint64_t n = w->nwords, cur = w->top / 64, next = c / 64;
    if (n == 0)
        return w->max_words < SDP_REPLAY_WORDS_FIRST ? w->max_words : SDP_REPLAY_WORDS_FIRST;
    if (c <= w->top || n >= w->max_words || next - cur == 0)
        return 0;
    /* Sliding to next reuses the slots of blocks cur - n + 1 ... next - n;
     * the lowest of them (that exists) with a counter not seen decides.
     * Blocks past cur never had a slot: all theirs are still to come. */
    uint64_t drop = next - cur < n ? next - cur : n, b = next;
    for (uint64_t i = 0; i < drop && b == next; i++) {
        if (cur + 1 + i < n)
            continue; /* block below 0: no counters */
        uint64_t blk = cur + 1 + i - n;
        uint64_t have = w->bits[blk % n] | (blk == 0 ? 1 : 0); /* counter 0 is never used */
        if (have != ~UINT64_C(0))
            b = blk;
    }
    if (b == next && next - cur > n)
        b = cur + 1;
    if (b == next)
        return 0;
    uint64_t need = next - b + 1, nn = n;
    while (nn < need && nn < w->max_words)
        nn *= 2;
    return nn > w->max_words ? w->max_words : (uint32_t)nn;
}

void sdp_replay_move(struct sdp_replay *w, uint64_t *bits, uint32_t nwords)
{
    uint64_t cur = w->top / 64;
    for (uint64_t i = 0; i < nwords; i++) {
        uint64_t v;
        if (w->nwords == 0)
            v = 0; /* nothing seen yet */
        else if (i < w->nwords)
            v = i <= cur ? w->bits[(cur - i) % w->nwords] : 0;
        else
            v = ~UINT64_C(0); /* older than the old ring: refused before, refused still */
        /* Block cur - i; those below 0 hold no counters, any slot will do. */
        uint64_t slot = i <= cur ? (cur - i) % nwords : (nwords - (i - cur) % nwords) % nwords;
        bits[slot] = v;
    }
    w->bits = bits;
    w->nwords = nwords;
}

void sdp_replay_update(struct sdp_replay *w, uint64_t c)
{
    /* The window may have moved past c since it was checked. */
    if (c == 0 || w->nwords == 0 || (c <= w->top && (w->top - c >= sdp_replay_window(w) || !in_ring(w, c))))
        return;
    if (c > w->top) {
        uint64_t cur = w->top / 64, next = c / 64;
        uint64_t diff = next - cur;
        if (diff > w->nwords)
            diff = w->nwords;
        /* Words the window slides over start empty. */
        for (uint64_t i = 1; i <= diff; i++)
            w->bits[(cur + i) % w->nwords] = 0;
        w->top = c;
    }
    w->bits[(c / 64) % w->nwords] |= UINT64_C(1) << (c % 64);
}
