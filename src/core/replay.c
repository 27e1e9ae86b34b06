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
    w->bits = bits;
    memset(bits, 0, (size_t)nwords * sizeof(*bits));
}

int sdp_replay_check(const struct sdp_replay *w, uint64_t c)
{
    if (c == 0)
        return SDP_EREPLAY;
    if (c > w->top)
        return 0;
    if (w->top - c >= sdp_replay_window(w))
        return SDP_EREPLAY;
    uint64_t word = w->bits[(c / 64) % w->nwords];
    return (word >> (c % 64)) & 1 ? SDP_EREPLAY : 0;
}

void sdp_replay_update(struct sdp_replay *w, uint64_t c)
{
    /* The window may have moved past c since it was checked. */
    if (c == 0 || (c <= w->top && w->top - c >= sdp_replay_window(w)))
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
