/* Key memory: locked, guarded allocations that are wiped on release.
 * Backed by libsodium's sodium_malloc (mlock'd, guard pages, canary). */
#ifndef SDP_CRYPTO_KEYMEM_H
#define SDP_CRYPTO_KEYMEM_H

#include <stddef.h>

/* Initialise libsodium once (thread-safe, idempotent). 0 or SDP_ECRYPTO. */
int sdp_keymem_init(void);
/* Zero-filled locked memory, or NULL. */
void *sdp_keymem_alloc(size_t len);
/* Wipe and free; NULL is accepted. */
void sdp_keymem_free(void *p);
/* Wipe memory that does not come from sdp_keymem_alloc (stack copies). */
void sdp_keymem_wipe(void *p, size_t len);
/* Random bytes from the OS CSPRNG. */
void sdp_random_bytes(void *buf, size_t len);

#endif
