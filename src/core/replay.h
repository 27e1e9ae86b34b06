/* Per-peer replay window on message ids, RFC 6479 style: a ring of 64-bit
 * bitmap words, so the window slides by clearing whole words.  Checked
 * before a message's records are opened, updated only after one opened
 * (IPsec's rule), so forged packets never move the window.  Kept free of
 * core state so an engine can share one window between threads.  The
 * window covers (nwords - 1) * 64 counters; the core sizes it to at least
 * the RPCs a peer may have outstanding. */
#ifndef SDP_CORE_REPLAY_H
#define SDP_CORE_REPLAY_H

#include <stdint.h>

#define SDP_REPLAY_WORDS 64u /* default and minimum ring size */

struct sdp_replay {
    uint64_t top;    /* highest counter accepted so far; 0 = none */
    uint32_t nwords;
    uint64_t *bits;  /* nwords words, owned by the caller */
};

/* Ring words needed for a window of at least `ids` counters. */
uint32_t sdp_replay_words_for(uint64_t ids);
void sdp_replay_init(struct sdp_replay *w, uint64_t *bits, uint32_t nwords);
static inline uint64_t sdp_replay_window(const struct sdp_replay *w)
{
    return (uint64_t)(w->nwords - 1) * 64;
}
/* 0 if counter c (> 0) may be accepted, SDP_EREPLAY if seen or too old. */
int sdp_replay_check(const struct sdp_replay *w, uint64_t c);
/* Record c as seen (after its authentication succeeded). */
void sdp_replay_update(struct sdp_replay *w, uint64_t c);

/* Request ids are even and step by 2: the window counts id / 2. */
static inline uint64_t sdp_replay_ctr(uint64_t client_id)
{
    return client_id >> 1;
}

#endif
