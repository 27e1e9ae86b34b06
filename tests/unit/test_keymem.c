/* Key memory: zeroed on allocation, usable to its end, wiped on release
 * (observed through sdp_keymem_wipe; reading freed memory would be UB). */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "crypto/keymem.h"
#include "crypto/keysched.h"
#include "sdp/sdp.h"

Test(keymem, init_is_idempotent)
{
    cr_assert_eq(sdp_keymem_init(), 0);
    cr_assert_eq(sdp_keymem_init(), 0);
}

Test(keymem, alloc_is_zeroed_and_writable)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 4095, 4096, 4097, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *p = sdp_keymem_alloc(n);
        cr_assert_not_null(p, "alloc %zu", n);
        cr_assert_eq((uintptr_t)p % 16, 0, "alignment for %zu", n);
        for (size_t j = 0; j < n; j++)
            cr_assert_eq(p[j], 0, "byte %zu of %zu not zero", j, n);
        memset(p, 0xa5, n); /* every byte up to the end is ours */
        sdp_keymem_free(p);
    }
    sdp_keymem_free(NULL);
}

Test(keymem, wipe_clears)
{
    uint8_t buf[64];
    memset(buf, 0x77, sizeof(buf));
    sdp_keymem_wipe(buf + 8, 32);
    for (size_t i = 0; i < sizeof(buf); i++)
        cr_assert_eq(buf[i], i >= 8 && i < 40 ? 0 : 0x77);
    sdp_keymem_wipe(NULL, 10);
}

/* Writing one byte past the end hits a guard page and kills the process.
 * Small objects share a slab, so for them the guard is at the slab's end
 * (the slab test below); an allocation above SDP_KEYMEM_SLOT_MAX has its
 * own.  Not under ASan, whose own SEGV handler turns the signal into an
 * error exit. */
#ifndef SDP_SANITIZE
Test(keymem, overflow_is_caught, .signal = SIGSEGV)
{
    volatile uint8_t *p = sdp_keymem_alloc(2048);
    p[2048] = 1; /* a multiple of 16: no rounding slack, straight into the guard page */
}

Test(keymem, slab_overflow_is_caught, .signal = SIGSEGV)
{
    struct sdp_keyslab s;
    cr_assert_eq(sdp_keyslab_init(&s, 64, 4), 0);
    void *slot[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sdp_keyslab_get(&s, &slot[i]), 0);
    volatile uint8_t *last = slot[3];
    last[64] = 1; /* past the last slot: the trailing guard page */
}
#endif

/* ---- slab property tests ---- */

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

Test(keyslab, rejects_bad_geometry)
{
    struct sdp_keyslab s;
    cr_assert_eq(sdp_keyslab_init(&s, 0, 4), SDP_EINVAL);
    cr_assert_eq(sdp_keyslab_init(&s, 24, 4), SDP_EINVAL);
    cr_assert_eq(sdp_keyslab_init(&s, 64, 0), SDP_EINVAL);
}

Test(keyslab, slot_is_wiped_when_put_back)
{
    struct sdp_keyslab s;
    cr_assert_eq(sdp_keyslab_init(&s, 96, 8), 0);
    uint8_t *p;
    cr_assert_eq(sdp_keyslab_get(&s, (void **)&p), 0);
    cr_assert(all_zero(p, 96));
    memset(p, 0xa5, 96);
    cr_assert_eq(sdp_keyslab_put(&s, p), 0);
    /* The region stays mapped: the freed slot can be read, and is zero. */
    cr_assert(all_zero(p, 96), "freed slot still holds key bytes");
    uint8_t *q;
    cr_assert_eq(sdp_keyslab_get(&s, (void **)&q), 0);
    cr_assert_eq(q, p, "the slot just freed is the next handed out");
    cr_assert(all_zero(q, 96));
    sdp_keyslab_fini(&s);
}

Test(keyslab, exhaustion_is_a_clear_error)
{
    enum { N = 37 };
    struct sdp_keyslab s;
    cr_assert_eq(sdp_keyslab_init(&s, 48, N), 0);
    void *p[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(sdp_keyslab_get(&s, &p[i]), 0, "slot %d", i);
    void *x = (void *)1;
    cr_assert_eq(sdp_keyslab_get(&s, &x), SDP_ELIMIT);
    cr_assert_null(x);
    cr_assert_eq(sdp_keyslab_get(&s, &x), SDP_ELIMIT, "still full");
    cr_assert_eq(sdp_keyslab_put(&s, p[17]), 0);
    cr_assert_eq(sdp_keyslab_get(&s, &x), 0, "room again after a put");
    cr_assert_eq(x, p[17]);
    sdp_keyslab_fini(&s);
}

Test(keyslab, bad_puts_change_nothing)
{
    struct sdp_keyslab s;
    cr_assert_eq(sdp_keyslab_init(&s, 64, 4), 0);
    uint8_t *p, outside[64];
    cr_assert_eq(sdp_keyslab_get(&s, (void **)&p), 0);
    memset(p, 0x11, 64);
    cr_assert_eq(sdp_keyslab_put(&s, outside), SDP_EINVAL, "foreign pointer");
    cr_assert_eq(sdp_keyslab_put(&s, p + 16), SDP_EINVAL, "interior pointer");
    cr_assert_eq(sdp_keyslab_put(&s, s.base + 64), SDP_EINVAL, "a slot never handed out");
    cr_assert_eq(s.nfree, 3);
    cr_assert_eq(p[0], 0x11, "a refused put wipes nothing");
    cr_assert_eq(sdp_keyslab_put(&s, p), 0);
    cr_assert_eq(sdp_keyslab_put(&s, p), SDP_EINVAL, "double free");
    cr_assert_eq(s.nfree, 4);
    sdp_keyslab_fini(&s);
}

/* Random gets and puts against a trivial model (the set of slots out):
 * every slot handed out lies inside the region, is aligned, is zero, and
 * overlaps no other slot out (each slot out keeps its own pattern intact);
 * exhaustion happens exactly when the model says all are out. */
Test(keyslab, random_ops_never_overlap)
{
    enum { N = 50, SZ = 80, OPS = 5000 };
    uint64_t seed = 0x9e3779b97f4a7c15u, x = seed;
    struct sdp_keyslab s;
    cr_assert_eq(sdp_keyslab_init(&s, SZ, N), 0);
    uint8_t *out[N];
    int nout = 0;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 3 != 0) {
            uint8_t *p;
            int rc = sdp_keyslab_get(&s, (void **)&p);
            if (nout == N) {
                cr_assert_eq(rc, SDP_ELIMIT, "seed %llx op %d", (unsigned long long)seed, op);
                continue;
            }
            cr_assert_eq(rc, 0, "seed %llx op %d", (unsigned long long)seed, op);
            cr_assert(p >= s.base && p + SZ <= s.base + (size_t)N * SZ);
            cr_assert_eq((uintptr_t)p % 16, 0);
            cr_assert(all_zero(p, SZ), "op %d: slot handed out dirty", op);
            for (int i = 0; i < nout; i++)
                cr_assert(p + SZ <= out[i] || out[i] + SZ <= p, "op %d: overlap", op);
            out[nout++] = p;
        } else if (nout > 0) {
            int i = (int)((x >> 8) % (uint64_t)nout);
            cr_assert_eq(sdp_keyslab_put(&s, out[i]), 0);
            cr_assert(all_zero(out[i], SZ), "op %d: not wiped", op);
            out[i] = out[--nout];
        }
        /* Each slot out carries a pattern from its address; a slot handed
         * out twice would show another's. */
        for (int i = 0; i < nout; i++) {
            uint8_t b = (uint8_t)(((uintptr_t)out[i] / SZ) | 1);
            if (out[i][0] == 0)
                memset(out[i], b, SZ);
            for (int j = 0; j < SZ; j++)
                cr_assert_eq(out[i][j], b, "op %d: slot %d corrupted", op, i);
        }
        cr_assert_eq(s.nfree, (uint32_t)(N - nout));
    }
    sdp_keyslab_fini(&s);
}

/* The allocator over many slabs and size classes: distinct, zeroed,
 * aligned memory, and the books balance once everything is freed. */
Test(keymem, many_small_allocations_balance)
{
    enum { N = 3000 };
    static uint8_t *p[N];
    static size_t len[N];
    struct sdp_keymem_stats before, mid, after;
    sdp_keymem_stats(&before);
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        len[i] = 1 + x % SDP_KEYMEM_SLOT_MAX;
        p[i] = sdp_keymem_alloc(len[i]);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 16, 0);
        cr_assert(all_zero(p[i], len[i]));
        memset(p[i], (uint8_t)(i | 1), len[i]);
    }
    sdp_keymem_stats(&mid);
    cr_assert_eq(mid.slots, before.slots + N);
    cr_assert_eq(mid.large, before.large);
    cr_assert_geq(mid.slab_bytes, mid.slot_bytes);
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < len[i]; j++)
            cr_assert_eq(p[i][j], (uint8_t)(i | 1), "allocation %d overlapped", i);
    for (int i = N; i-- > 0;)
        sdp_keymem_free(p[i]);
    sdp_keymem_stats(&after);
    cr_assert_eq(after.slots, before.slots);
    cr_assert_eq(after.slot_bytes, before.slot_bytes);
    cr_assert_lt(after.slabs, mid.slabs, "empty slabs are released");
}

Test(keymem, random_bytes_vary)
{
    uint8_t a[32] = {0}, b[32] = {0};
    sdp_random_bytes(a, sizeof(a));
    sdp_random_bytes(b, sizeof(b));
    cr_assert(memcmp(a, b, sizeof(a)) != 0);
}

Test(keymem, traffic_keys_are_locked_and_zeroed)
{
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_not_null(tk);
    const uint8_t *b = (const uint8_t *)tk;
    for (size_t i = 0; i < sizeof(*tk); i++)
        cr_assert_eq(b[i], 0);
    sdp_traffic_keys_free(tk);
    sdp_traffic_keys_free(NULL);
}
