/* Key memory: locked allocations that are wiped on release.
 *
 * Small objects (up to SDP_KEYMEM_SLOT_MAX bytes: key objects, secrets)
 * come from slabs: one locked region (libsodium's sodium_malloc: mlock'd,
 * guard pages on both sides, a canary) carved into equal slots, one slab
 * list per size class.  A peer's keys used to take a guarded mapping each
 * (three pages or more per 80-byte key, and an mmap, mprotect and mlock per
 * key); now they take a slot, and an overrun is caught at the slab's edge
 * rather than at each object's.  Larger objects still get a mapping each. */
#ifndef SDP_CRYPTO_KEYMEM_H
#define SDP_CRYPTO_KEYMEM_H

#include <stddef.h>
#include <stdint.h>

/* Initialise libsodium once (thread-safe, idempotent). 0 or SDP_ECRYPTO. */
int sdp_keymem_init(void);
/* Zero-filled locked memory, 16-byte aligned, or NULL. */
void *sdp_keymem_alloc(size_t len);
/* Wipe and free; NULL is accepted. */
void sdp_keymem_free(void *p);
/* Wipe memory that does not come from sdp_keymem_alloc (stack copies). */
void sdp_keymem_wipe(void *p, size_t len);
/* Random bytes from the OS CSPRNG. */
void sdp_random_bytes(void *buf, size_t len);

#define SDP_KEYMEM_SLOT_MAX 1024u /* larger allocations get a guarded mapping each */

/* What key memory holds now, process-wide. */
struct sdp_keymem_stats {
    uint64_t slot_bytes;   /* bytes of the slots handed out (sizes rounded to 16) */
    uint64_t slots;        /* slots handed out */
    uint64_t slab_bytes;   /* locked bytes of every slab, used or not */
    uint64_t slabs;
    uint64_t large;        /* allocations above SDP_KEYMEM_SLOT_MAX, a mapping each */
};
void sdp_keymem_stats(struct sdp_keymem_stats *st);

/* One slab: nslots slots of slot_size bytes (a multiple of 16) in one
 * locked, guarded region.  The bookkeeping (which slots are free) lives in
 * ordinary memory: it is not secret, and a slot reads all zero from the
 * moment it is freed until it is handed out again.  Not thread-safe: the
 * allocator above serialises its slabs. */
struct sdp_keyslab {
    uint8_t *base;
    size_t slot_size;
    uint32_t nslots;
    uint32_t nfree;
    uint32_t *free;  /* stack of free slot indices */
    uint64_t *live;  /* bit per slot: handed out */
};

/* Errors: SDP_EINVAL (slot_size not a multiple of 16 or 0, nslots 0),
 * SDP_ENOMEM. */
int sdp_keyslab_init(struct sdp_keyslab *s, size_t slot_size, uint32_t nslots);
/* Wipe and release the region, slots still out included. */
void sdp_keyslab_fini(struct sdp_keyslab *s);
/* A zero-filled slot.  SDP_ELIMIT when every slot is out (*out NULL). */
int sdp_keyslab_get(struct sdp_keyslab *s, void **out);
/* Wipe the slot and take it back.  SDP_EINVAL, nothing changed, when p is
 * not a slot of s that is out (foreign pointer, interior pointer, double
 * free). */
int sdp_keyslab_put(struct sdp_keyslab *s, void *p);
static inline int sdp_keyslab_holds(const struct sdp_keyslab *s, const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)s->base;
    return a >= b && a - b < (uintptr_t)s->nslots * s->slot_size;
}

#endif
