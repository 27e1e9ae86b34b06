/* Key memory on libsodium: guard pages and a canary catch overruns, mlock
 * keeps keys out of swap, and every release wipes. */
#include "crypto/keymem.h"

#include <pthread.h>
#include <stdint.h>
#include <sodium.h>

#include "sdp/sdp.h"

static pthread_once_t keymem_once = PTHREAD_ONCE_INIT;
static int keymem_rc = SDP_ECRYPTO;

static void keymem_do_init(void)
{
    keymem_rc = sodium_init() < 0 ? SDP_ECRYPTO : 0;
}

int sdp_keymem_init(void)
{
    pthread_once(&keymem_once, keymem_do_init);
    return keymem_rc;
}

void *sdp_keymem_alloc(size_t len)
{
    if (sdp_keymem_init() != 0)
        return NULL;
    /* sodium_malloc places the block against the trailing guard page, so
     * its start is only as aligned as its length: round up to 16 so key
     * objects (and libsodium's AES-GCM state) are 16-byte aligned. */
    size_t n = len ? len : 1;
    if (n > SIZE_MAX - 15)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    void *p = sodium_malloc(n);
    if (p != NULL)
        sodium_memzero(p, n); /* sodium_malloc fills with 0xdb, not zero */
    return p;
}

void sdp_keymem_free(void *p)
{
    if (p != NULL)
        sodium_free(p); /* checks the canary, wipes, unlocks, unmaps */
}

void sdp_keymem_wipe(void *p, size_t len)
{
    if (p != NULL && len)
        sodium_memzero(p, len);
}

void sdp_random_bytes(void *buf, size_t len)
{
    /* randombytes_buf seeds itself even if sodium_init failed. */
    (void)sdp_keymem_init();
    randombytes_buf(buf, len);
}
