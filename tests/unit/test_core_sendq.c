/* The sender's heap against a brute-force reference: after every random
 * change the top is a ready message with the smallest key, and exactly the
 * ready messages are in the heap. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sendq.h"

enum { N = 200 };

static uint64_t key(const struct sdp_rpc *r)
{
    return r->out.nrtx ? 0 : (uint64_t)(r->out.wire_len - r->out.next_off) + 1;
}

Test(sendq, random_against_reference)
{
    static struct sdp_rpc rpcs[N];
    static uint8_t dummy[1];
    struct sdp_mem mem;
    sdp_mem_init(&mem, NULL, 1u << 20);
    struct sdp_sendq q;
    cr_assert_eq(sdp_sendq_init(&q, &mem, N), 0);
    memset(rpcs, 0, sizeof(rpcs));
    for (int i = 0; i < N; i++) {
        rpcs[i].id = (uint64_t)(2 * i + 2);
        rpcs[i].out.wire_len = 100000;
    }
    uint32_t x = 1;
    unsigned nonempty = 0;
    for (int step = 0; step < 200000; step++) {
        x = x * 1103515245u + 12345u;
        struct sdp_rpc *r = &rpcs[(x >> 8) % N];
        x = x * 1103515245u + 12345u;
        switch ((x >> 8) % 5) {
        case 0: /* becomes live with a grant */
            r->out.wire = dummy;
            r->out.granted = r->out.wire_len;
            break;
        case 1: /* sends some bytes */
            if (r->out.next_off < r->out.wire_len)
                r->out.next_off += 1 + (x >> 12) % (r->out.wire_len - r->out.next_off);
            break;
        case 2: /* a repair is queued or done */
            r->out.nrtx = (uint8_t)((x >> 12) & 1);
            break;
        case 3: /* starts over */
            r->out.next_off = 0;
            break;
        default: /* finished and freed */
            r->out.wire = NULL;
            r->out.nrtx = 0;
            r->out.next_off = 0;
            break;
        }
        sdp_sendq_update(&q, r);
        const struct sdp_rpc *best = NULL;
        unsigned ready = 0;
        for (int i = 0; i < N; i++) {
            const struct sdp_rpc *c = &rpcs[i];
            int is_ready = sdp_msgout_ready(&c->out);
            cr_assert_eq(is_ready, c->sendq_pos != 0, "step %d: rpc %d readiness and membership differ", step, i);
            if (is_ready) {
                ready++;
                if (!best || key(c) < key(best))
                    best = c;
            }
        }
        cr_assert_eq(q.n, ready);
        if (best) {
            nonempty++;
            cr_assert_eq(key(sdp_sendq_top(&q)), key(best), "step %d: top is not a smallest key", step);
        } else {
            cr_assert_null(sdp_sendq_top(&q));
        }
    }
    cr_assert_gt(nonempty, 100000);
    sdp_sendq_fini(&q, &mem);
}
