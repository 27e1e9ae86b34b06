#include "core/grant.h"

#include <stddef.h>

static uint64_t key(const struct sdp_grant_sched *s, const struct sdp_grant_entry *e)
{
    return s->fifo ? e->birth : (uint64_t)(e->wire_len - e->received);
}

static uint32_t contrib_of(const struct sdp_grant_entry *e)
{
    uint32_t base = e->received > e->unsched ? e->received : e->unsched;
    return e->granted > base ? e->granted - base : 0;
}

static void set_contrib(struct sdp_grant_sched *s, struct sdp_grant_entry *e)
{
    uint32_t c = contrib_of(e);
    s->incoming = s->incoming - e->contrib + c;
    e->contrib = c;
    if (s->incoming > s->incoming_peak)
        s->incoming_peak = s->incoming;
}

static void unlink_entry(struct sdp_grant_sched *s, struct sdp_grant_entry *e)
{
    if (!e->linked)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
    e->linked = 0;
    s->nlinked--;
}

/* Insert in key order, after entries of equal key (stable). */
static void link_sorted(struct sdp_grant_sched *s, struct sdp_grant_entry *e)
{
    uint64_t k = key(s, e);
    struct sdp_grant_entry *at = s->head;
    while (at && key(s, at) <= k)
        at = at->next;
    e->next = at;
    e->prev = at ? at->prev : s->tail;
    if (e->prev)
        e->prev->next = e;
    else
        s->head = e;
    if (at)
        at->prev = e;
    else
        s->tail = e;
    e->linked = 1;
    s->nlinked++;
}

void sdp_grant_init(struct sdp_grant_sched *s, uint32_t overcommit, uint32_t max_incoming, uint32_t window,
                    uint32_t increment, uint32_t fifo_pct, int fifo, uint8_t sched_levels)
{
    *s = (struct sdp_grant_sched){0};
    s->overcommit = overcommit ? overcommit : 1;
    s->max_incoming = max_incoming;
    s->window = window;
    s->increment = increment;
    s->fifo_pct = fifo_pct > 100 ? 100 : fifo_pct;
    s->fifo = fifo;
    s->sched_levels = sched_levels ? sched_levels : 1;
}

void sdp_grant_add(struct sdp_grant_sched *s, struct sdp_grant_entry *e, uint32_t wire_len, uint32_t unsched,
                   uint32_t received)
{
    *e = (struct sdp_grant_entry){0};
    e->wire_len = wire_len;
    e->unsched = unsched > wire_len ? wire_len : unsched;
    e->received = received;
    e->granted = e->unsched;
    e->birth = ++s->births;
    e->tracked = 1;
    if (e->granted < wire_len)
        link_sorted(s, e);
}

void sdp_grant_received(struct sdp_grant_sched *s, struct sdp_grant_entry *e, uint32_t received)
{
    /* Only grows: bytes of a record that failed to open are asked for
     * again outside the grant budget (at most one record each), so a
     * forgery cannot push incoming above the bound. */
    if (!e->tracked || received <= e->received)
        return;
    e->received = received;
    set_contrib(s, e);
    if (!e->linked || s->fifo)
        return;
    /* Remaining only shrinks: the entry moves toward the head. */
    uint64_t k = key(s, e);
    struct sdp_grant_entry *p = e->prev;
    if (!p || key(s, p) <= k)
        return;
    while (p && key(s, p) > k)
        p = p->prev;
    unlink_entry(s, e);
    e->prev = p;
    e->next = p ? p->next : s->head;
    if (e->next)
        e->next->prev = e;
    else
        s->tail = e;
    if (p)
        p->next = e;
    else
        s->head = e;
    e->linked = 1;
    s->nlinked++;
}

void sdp_grant_remove(struct sdp_grant_sched *s, struct sdp_grant_entry *e)
{
    if (!e->tracked)
        return;
    unlink_entry(s, e);
    s->incoming -= e->contrib;
    e->contrib = 0;
    e->tracked = 0;
}

/* Raise e toward target within the incoming bound; 1 if it grew. */
static int give(struct sdp_grant_sched *s, struct sdp_grant_entry *e, uint32_t target, uint8_t prio)
{
    if (target > e->wire_len)
        target = e->wire_len;
    uint32_t base = e->received > e->unsched ? e->received : e->unsched;
    uint64_t others = s->incoming - e->contrib;
    if (others >= s->max_incoming)
        return 0;
    uint64_t room = s->max_incoming - others;
    if (target > base && target - base > room)
        target = base + (uint32_t)room;
    if (target <= e->granted)
        return 0;
    /* Tiny grants cost a packet each: wait for a worthwhile step. */
    if (target < e->wire_len && target - e->granted < s->increment)
        return 0;
    s->granted_bytes += target - e->granted;
    e->granted = target;
    e->prio = prio;
    set_contrib(s, e);
    s->grants++;
    return 1;
}

void sdp_grant_run(struct sdp_grant_sched *s, sdp_grant_emit_fn emit, void *ctx)
{
    uint32_t rank = 0;
    struct sdp_grant_entry *e = s->head, *next;
    for (; e && rank < s->overcommit; e = next, rank++) {
        next = e->next;
        uint8_t prio = rank < s->sched_levels ? (uint8_t)(s->sched_levels - 1 - rank) : 0;
        uint32_t before = e->granted;
        if (give(s, e, e->received + s->window, prio)) {
            s->fifo_credit += (uint64_t)(e->granted - before) * s->fifo_pct;
            if (e->granted >= e->wire_len)
                unlink_entry(s, e);
            emit(ctx, e);
        }
    }
    /* The oldest message among those SRPT left out gets its share; credit
     * is capped so a long quiet spell does not bank a burst. */
    if (s->fifo_credit > (uint64_t)s->window * 200)
        s->fifo_credit = (uint64_t)s->window * 200;
    if (s->fifo_pct == 0 || s->fifo || !e || s->fifo_credit < (uint64_t)s->window * 100)
        return;
    struct sdp_grant_entry *old = e;
    for (; e; e = e->next)
        if (e->birth < old->birth)
            old = e;
    if (give(s, old, old->granted + s->window, 0)) {
        s->fifo_credit -= (uint64_t)s->window * 100;
        s->fifo_grants++;
        if (old->granted >= old->wire_len)
            unlink_entry(s, old);
        emit(ctx, old);
    }
}
