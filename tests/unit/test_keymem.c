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

/* Writing one byte past the end hits the guard page and kills the process:
 * the allocation really is guarded.  Not under ASan, whose own SEGV
 * handler turns the signal into an error exit. */
#ifndef SDP_SANITIZE
Test(keymem, overflow_is_caught, .signal = SIGSEGV)
{
    volatile uint8_t *p = sdp_keymem_alloc(64);
    p[64] = 1; /* 64 is a multiple of 16: no rounding slack, straight into the guard page */
}
#endif

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
