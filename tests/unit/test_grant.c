/* The SRPT grant scheduler on its own: who gets grants, at which priority,
 * the bound on incoming bytes, FIFO mode, and the oldest message's share. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/grant.h"

struct rec {
    struct sdp_grant_entry *e[64];
    unsigned n;
};

static void emit(void *ctx, struct sdp_grant_entry *e)
{
    struct rec *r = ctx;
    if (r->n < 64)
        r->e[r->n++] = e;
}

Test(grant, srpt_picks_shortest)
{
    struct sdp_grant_sched s;
    sdp_grant_init(&s, 3, 1u << 30, 60000, 1, 0, 0, 4);
    struct sdp_grant_entry e[10];
    /* Sizes 1.0 MB, 0.9 MB, ... added longest first. */
    for (int i = 0; i < 10; i++)
        sdp_grant_add(&s, &e[i], 1000000 - 100000 * i, 60000, 60000);
    struct rec r = {0};
    sdp_grant_run(&s, emit, &r);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(r.e[0], &e[9]);
    cr_assert_eq(r.e[1], &e[8]);
    cr_assert_eq(r.e[2], &e[7]);
    cr_assert_eq(e[9].prio, 3);
    cr_assert_eq(e[8].prio, 2);
    cr_assert_eq(e[7].prio, 1);
    cr_assert_eq(e[9].granted, 100000, "short message granted in full");
    cr_assert_eq(e[8].granted, 120000, "one window beyond what arrived");
    cr_assert_eq(e[0].granted, 60000, "long message must wait");
    cr_assert_eq(s.incoming, 40000 + 2 * 60000);
    /* The shortest is granted in full and leaves the ranking: its slot goes
     * to the next shortest, and then nothing more until bytes arrive. */
    r.n = 0;
    sdp_grant_run(&s, emit, &r);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.e[0], &e[6]);
    r.n = 0;
    sdp_grant_run(&s, emit, &r);
    cr_assert_eq(r.n, 0);
}

Test(grant, fifo_mode_picks_oldest)
{
    struct sdp_grant_sched s;
    sdp_grant_init(&s, 2, 1u << 30, 60000, 1, 0, 1, 4);
    struct sdp_grant_entry e[4];
    for (int i = 0; i < 4; i++)
        sdp_grant_add(&s, &e[i], 1000000 - 200000 * i, 60000, 60000);
    struct rec r = {0};
    sdp_grant_run(&s, emit, &r);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.e[0], &e[0]);
    cr_assert_eq(r.e[1], &e[1]);
}

Test(grant, progress_reorders)
{
    struct sdp_grant_sched s;
    sdp_grant_init(&s, 1, 1u << 30, 60000, 1, 0, 0, 4);
    struct sdp_grant_entry a, b;
    sdp_grant_add(&s, &a, 500000, 60000, 60000);
    sdp_grant_add(&s, &b, 400000, 60000, 60000);
    struct rec r = {0};
    sdp_grant_run(&s, emit, &r);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.e[0], &b);
    /* a gets far ahead of b: a now has the least remaining. */
    sdp_grant_received(&s, &a, 450000);
    r.n = 0;
    sdp_grant_run(&s, emit, &r);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.e[0], &a);
    cr_assert_eq(a.granted, 500000);
}

Test(grant, incoming_bound_and_liveness)
{
    enum { N = 40 };
    struct sdp_grant_sched s;
    const uint32_t bound = 400000;
    sdp_grant_init(&s, 8, bound, 60000, 10000, 5, 0, 4);
    struct sdp_grant_entry e[N];
    uint32_t x = 7;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        sdp_grant_add(&s, &e[i], 60001 + (x >> 8) % 3000000, 60000, 0);
    }
    int left = N;
    uint64_t max_in = 0;
    unsigned rounds = 0;
    while (left > 0 && rounds < 10000000) {
        rounds++;
        struct rec r = {0};
        sdp_grant_run(&s, emit, &r);
        cr_assert_leq(s.incoming, bound, "incoming %llu above bound", (unsigned long long)s.incoming);
        if (s.incoming > max_in)
            max_in = s.incoming;
        /* Deliver one packet of a random message that has authorised bytes. */
        int moved = 0;
        for (int k = 0; k < N && !moved; k++) {
            x = x * 1103515245u + 12345u;
            struct sdp_grant_entry *m = &e[(x >> 8) % N];
            if (!m->tracked || m->received >= m->granted)
                continue;
            uint32_t n = m->granted - m->received < 1448 ? m->granted - m->received : 1448;
            sdp_grant_received(&s, m, m->received + n);
            if (m->received == m->wire_len) {
                sdp_grant_remove(&s, m);
                left--;
            }
            moved = 1;
        }
        for (int k = 0; k < N && !moved; k++) {
            struct sdp_grant_entry *m = &e[k];
            if (m->tracked && m->received < m->granted) {
                sdp_grant_received(&s, m, m->received + 1);
                if (m->received == m->wire_len) {
                    sdp_grant_remove(&s, m);
                    left--;
                }
                moved = 1;
            }
        }
        cr_assert(moved, "stalled with %d messages left", left);
    }
    cr_assert_eq(left, 0);
    cr_assert_eq(s.incoming, 0);
    cr_assert_gt(max_in, bound / 2, "bound never approached: test too weak");
}

Test(grant, oldest_gets_a_share)
{
    /* One long old message and an endless stream of shorter ones: with
     * overcommit 1, SRPT alone would starve it. */
    struct sdp_grant_sched s;
    sdp_grant_init(&s, 1, 1u << 30, 60000, 1, 5, 0, 4);
    struct sdp_grant_entry old, cur[2];
    sdp_grant_add(&s, &old, 10000000, 60000, 60000);
    int k = 0;
    sdp_grant_add(&s, &cur[k], 1000000, 60000, 60000);
    for (int round = 0; round < 2000; round++) {
        struct rec r = {0};
        sdp_grant_run(&s, emit, &r);
        struct sdp_grant_entry *c = &cur[k];
        sdp_grant_received(&s, c, c->granted);
        if (c->received >= c->wire_len) {
            sdp_grant_remove(&s, c);
            k ^= 1;
            sdp_grant_add(&s, &cur[k], 1000000, 60000, 60000);
        }
        sdp_grant_received(&s, &old, old.granted);
    }
    cr_assert_gt(s.fifo_grants, 0);
    double share = (double)(old.received - 60000) / (double)s.granted_bytes;
    cr_assert(share > 0.03 && share < 0.07, "oldest message got %.3f of granted bytes, want about 0.05", share);
}
