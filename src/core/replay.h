/* Per-peer replay window on message ids, RFC 6479 style: a ring of 64-bit
 * bitmap words, so the window slides by clearing whole words.  Checked
 * before a message's records are opened, updated only after one opened
 * (IPsec's rule), so forged packets never move the window.  Kept free of
 * core state so an engine can share one window between threads.  The
 * window covers (max_words - 1) * 64 counters; the core sizes it to at
 * least the RPCs a peer may have outstanding.
 *
 * The ring may be smaller than the window and grow: most peers have a few
 * requests outstanding, not the thousands the window allows, and a full
 * ring is 2 KiB a peer.  A small ring holds only the newest words; a
 * counter older than the ring is refused.  That refuses nothing the full
 * ring would accept as long as the ring grows whenever sliding would drop
 * a word with a counter not seen yet (sdp_replay_grow_words): what falls
 * off a ring that did not grow was all seen. */
#ifndef SDP_CORE_REPLAY_H
#define SDP_CORE_REPLAY_H

#include <stdint.h>

#define SDP_REPLAY_WORDS 64u    /* default and minimum window, in ring words */
#define SDP_REPLAY_WORDS_FIRST 4u /* a ring's first size when it grows on demand */

struct sdp_replay {
    uint64_t top;       /* highest counter accepted so far; 0 = none */
    uint64_t *bits;     /* nwords words, owned by the caller; NULL while nwords is 0 */
    uint32_t nwords;    /* ring words now */
    uint32_t max_words; /* the window's size in words */
};

/* Ring words needed for a window of at least `ids` counters. */
uint32_t sdp_replay_words_for(uint64_t ids);
/* A window of nwords words in a ring of as many (it never grows). */
void sdp_replay_init(struct sdp_replay *w, uint64_t *bits, uint32_t nwords);
/* A window of max_words words with no ring yet: give it one with
 * sdp_replay_move before the first sdp_replay_update. */
void sdp_replay_init_lazy(struct sdp_replay *w, uint32_t max_words);
static inline uint64_t sdp_replay_window(const struct sdp_replay *w)
{
    return (uint64_t)(w->max_words - 1) * 64;
}
/* 0 if counter c (> 0) may be accepted, SDP_EREPLAY if seen or too old. */
int sdp_replay_check(const struct sdp_replay *w, uint64_t c);
/* The ring size (words) wanted before recording c: larger than now when
 * the slide to c would drop a counter not yet seen, at most max_words; 0
 * when the ring may stay as it is. */
uint32_t sdp_replay_grow_words(const struct sdp_replay *w, uint64_t c);
/* Move the window into a larger ring of nwords words (zeroing not needed),
 * keeping everything it knows.  The old ring is the caller's to free. */
void sdp_replay_move(struct sdp_replay *w, uint64_t *bits, uint32_t nwords);
/* Record c as seen (after its authentication succeeded). */
void sdp_replay_update(struct sdp_replay *w, uint64_t c);

/* Request ids are even and step by 2: the window counts id / 2. */
static inline uint64_t sdp_replay_ctr(uint64_t client_id)
{
    return client_id >> 1;
}

#endif
