/* The receiver's grant scheduler (Homa): at most `overcommit` incoming
 * messages are granted at a time, shortest remaining first (or in arrival
 * order when configured FIFO, for comparison), each up to `window` bytes
 * beyond what it has received; a fifo_pct share of granted bytes goes to the
 * oldest message so long ones never starve; and the sum of granted-but-not-
 * received bytes above the unscheduled part never exceeds max_incoming.
 * Works on entries embedded in incoming messages; knows nothing else. */
#ifndef SDP_CORE_GRANT_H
#define SDP_CORE_GRANT_H

#include <stdint.h>

struct sdp_grant_entry {
    struct sdp_grant_entry *prev, *next;
    uint64_t birth;       /* arrival order */
    uint32_t wire_len;
    uint32_t unsched;
    uint32_t received;    /* most distinct wire bytes held so far */
    uint32_t granted;     /* wire bytes authorised: [0, granted) */
    uint32_t contrib;     /* this entry's share of incoming */
    uint8_t prio;         /* priority of the last grant */
    uint8_t tracked;      /* counted in incoming */
    uint8_t linked;       /* in the list of messages still needing grants */
};

struct sdp_grant_sched {
    struct sdp_grant_entry *head, *tail;
    uint32_t nlinked;
    uint64_t incoming, incoming_peak;
    uint32_t overcommit, max_incoming, window, increment, fifo_pct;
    uint8_t sched_levels; /* priorities 0..sched_levels-1 are for scheduled bytes */
    int fifo;
    uint64_t fifo_credit; /* granted bytes * pct, spent in windows on the oldest */
    uint64_t births;
    uint64_t grants, granted_bytes, fifo_grants;
};

typedef void (*sdp_grant_emit_fn)(void *ctx, struct sdp_grant_entry *e);

void sdp_grant_init(struct sdp_grant_sched *s, uint32_t overcommit, uint32_t max_incoming, uint32_t window,
                    uint32_t increment, uint32_t fifo_pct, int fifo, uint8_t sched_levels);
/* Start tracking a message whose first `unsched` bytes need no grant. */
void sdp_grant_add(struct sdp_grant_sched *s, struct sdp_grant_entry *e, uint32_t wire_len, uint32_t unsched,
                   uint32_t received);
/* The message now has `received` distinct bytes. */
void sdp_grant_received(struct sdp_grant_sched *s, struct sdp_grant_entry *e, uint32_t received);
void sdp_grant_remove(struct sdp_grant_sched *s, struct sdp_grant_entry *e);
/* Hand out grants; emit is called for each entry whose granted grew. */
void sdp_grant_run(struct sdp_grant_sched *s, sdp_grant_emit_fn emit, void *ctx);

#endif
