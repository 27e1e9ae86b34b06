/* Key memory on libsodium: mlock keeps keys out of swap, guard pages and a
 * canary catch overruns, and every release wipes.  Small objects share
 * slabs (one guarded mapping carved into slots); see keymem.h for why. */
#include "crypto/keymem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- one slab ---- */

int sdp_keyslab_init(struct sdp_keyslab *s, size_t slot_size, uint32_t nslots)
{
    memset(s, 0, sizeof(*s));
    if (slot_size == 0 || slot_size % 16 != 0 || nslots == 0 || slot_size > SIZE_MAX / nslots)
        return SDP_EINVAL;
    if (sdp_keymem_init() != 0)
        return SDP_ENOMEM;
    size_t bytes = slot_size * nslots;
    /* sodium_malloc ends the block at its trailing guard page, so a length
     * that is a multiple of 16 starts 16-byte aligned, and so does every
     * slot. */
    s->base = sodium_malloc(bytes);
    s->free = malloc(nslots * sizeof(*s->free));
    s->live = calloc((nslots + 63) / 64, sizeof(*s->live));
    if (!s->base || !s->free || !s->live) {
        if (s->base)
            sodium_free(s->base);
        free(s->free);
        free(s->live);
        memset(s, 0, sizeof(*s));
        return SDP_ENOMEM;
    }
    sodium_memzero(s->base, bytes); /* sodium_malloc fills with 0xdb */
    s->slot_size = slot_size;
    s->nslots = nslots;
    /* Lowest index on top, so slots are handed out front to back. */
    for (uint32_t i = 0; i < nslots; i++)
        s->free[i] = nslots - 1 - i;
    s->nfree = nslots;
    return 0;
}

void sdp_keyslab_fini(struct sdp_keyslab *s)
{
    if (s->base)
        sodium_free(s->base); /* checks the canary, wipes, unlocks, unmaps */
    free(s->free);
    free(s->live);
    memset(s, 0, sizeof(*s));
}

int sdp_keyslab_get(struct sdp_keyslab *s, void **out)
{
    *out = NULL;
    if (s->nfree == 0)
        return SDP_ELIMIT;
    uint32_t i = s->free[--s->nfree];
    s->live[i / 64] |= UINT64_C(1) << (i % 64);
    *out = s->base + (size_t)i * s->slot_size; /* zero: wiped when it was put back */
    return 0;
}

int sdp_keyslab_put(struct sdp_keyslab *s, void *p)
{
    if (!sdp_keyslab_holds(s, p))
        return SDP_EINVAL;
    size_t off = (size_t)((uint8_t *)p - s->base);
    if (off % s->slot_size != 0)
        return SDP_EINVAL;
    uint32_t i = (uint32_t)(off / s->slot_size);
    uint64_t bit = UINT64_C(1) << (i % 64);
    if (!(s->live[i / 64] & bit))
        return SDP_EINVAL;
    sodium_memzero(p, s->slot_size);
    s->live[i / 64] &= ~bit;
    s->free[s->nfree++] = i;
    return 0;
}

/* ---- the allocator: a slab list per size class ---- */

#define KM_CLASSES (SDP_KEYMEM_SLOT_MAX / 16)
/* A class's first slab is a page, each further one twice the last, up to
 * 16 pages: a process with a few peers locks little, one with many does
 * few mappings.  The 16 bytes spare leave room for libsodium's canary in
 * the same pages. */
#define KM_SLAB_MIN 4096u
#define KM_SLAB_MAX 65536u

struct km_slab {
    struct sdp_keyslab s;
    unsigned cls;
    struct km_slab *pnext, *pprev; /* the class's slabs with a free slot */
    int partial;
};

static pthread_mutex_t km_lock = PTHREAD_MUTEX_INITIALIZER;
static struct km_slab **km_slabs; /* every slab, by base address */
static size_t km_n, km_cap;
static struct km_slab *km_partial[KM_CLASSES + 1];
static unsigned km_class_slabs[KM_CLASSES + 1];
static struct sdp_keymem_stats km_st;

static void partial_add(struct km_slab *b)
{
    b->pprev = NULL;
    b->pnext = km_partial[b->cls];
    if (b->pnext)
        b->pnext->pprev = b;
    km_partial[b->cls] = b;
    b->partial = 1;
}

static void partial_del(struct km_slab *b)
{
    if (b->pprev)
        b->pprev->pnext = b->pnext;
    else
        km_partial[b->cls] = b->pnext;
    if (b->pnext)
        b->pnext->pprev = b->pprev;
    b->pnext = b->pprev = NULL;
    b->partial = 0;
}

/* Index of the first slab whose base is above p. */
static size_t km_upper(const void *p)
{
    size_t lo = 0, hi = km_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)km_slabs[mid]->s.base <= (uintptr_t)p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct km_slab *km_new_slab(unsigned cls)
{
    if (km_n == km_cap) {
        size_t ncap = km_cap ? 2 * km_cap : 16;
        struct km_slab **n = realloc(km_slabs, ncap * sizeof(*n));
        if (!n)
            return NULL;
        km_slabs = n;
        km_cap = ncap;
    }
    unsigned shift = km_class_slabs[cls] < 4 ? km_class_slabs[cls] : 4;
    size_t slot = (size_t)cls * 16, bytes = ((size_t)KM_SLAB_MIN << shift) - 16;
    if (bytes > KM_SLAB_MAX - 16)
        bytes = KM_SLAB_MAX - 16;
    uint32_t nslots = bytes / slot ? (uint32_t)(bytes / slot) : 1;
    struct km_slab *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    if (sdp_keyslab_init(&b->s, slot, nslots) != 0) {
        free(b);
        return NULL;
    }
    b->cls = cls;
    size_t at = km_upper(b->s.base);
    memmove(&km_slabs[at + 1], &km_slabs[at], (km_n - at) * sizeof(*km_slabs));
    km_slabs[at] = b;
    km_n++;
    km_class_slabs[cls]++;
    km_st.slabs++;
    km_st.slab_bytes += (uint64_t)slot * nslots;
    partial_add(b);
    return b;
}

static void km_drop_slab(struct km_slab *b)
{
    size_t at = km_upper(b->s.base) - 1;
    memmove(&km_slabs[at], &km_slabs[at + 1], (km_n - at - 1) * sizeof(*km_slabs));
    km_n--;
    if (b->partial)
        partial_del(b);
    km_class_slabs[b->cls]--;
    km_st.slabs--;
    km_st.slab_bytes -= (uint64_t)b->s.slot_size * b->s.nslots;
    sdp_keyslab_fini(&b->s);
    free(b);
}

void *sdp_keymem_alloc(size_t len)
{
    if (sdp_keymem_init() != 0)
        return NULL;
    size_t n = len ? len : 1;
    if (n > SIZE_MAX - 15)
        return NULL;
    n = (n + 15) & ~(size_t)15; /* 16-byte aligned objects (libsodium's AES-GCM state needs it) */
    if (n > SDP_KEYMEM_SLOT_MAX) {
        void *p = sodium_malloc(n);
        if (p != NULL) {
            sodium_memzero(p, n); /* sodium_malloc fills with 0xdb, not zero */
            pthread_mutex_lock(&km_lock);
            km_st.large++;
            pthread_mutex_unlock(&km_lock);
        }
        return p;
    }
    unsigned cls = (unsigned)(n / 16);
    void *p = NULL;
    pthread_mutex_lock(&km_lock);
    struct km_slab *b = km_partial[cls] ? km_partial[cls] : km_new_slab(cls);
    if (b && sdp_keyslab_get(&b->s, &p) == 0) {
        if (b->s.nfree == 0)
            partial_del(b);
        km_st.slots++;
        km_st.slot_bytes += n;
    }
    pthread_mutex_unlock(&km_lock);
    return p;
}

void sdp_keymem_free(void *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&km_lock);
    size_t at = km_upper(p);
    struct km_slab *b = at ? km_slabs[at - 1] : NULL;
    if (b && sdp_keyslab_holds(&b->s, p)) {
        if (sdp_keyslab_put(&b->s, p) == 0) {
            km_st.slots--;
            km_st.slot_bytes -= b->s.slot_size;
            if (!b->partial)
                partial_add(b);
            /* An empty slab goes unless it is its class's only one with
             * room: keeping one spares a mapping per alloc/free cycle. */
            else if (b->s.nfree == b->s.nslots && (b->pnext || b->pprev))
                km_drop_slab(b);
        }
        /* A bad free inside a slab (double free, interior pointer) changes
         * nothing: the slot stays out, so it is never handed out twice. */
        pthread_mutex_unlock(&km_lock);
        return;
    }
    km_st.large--;
    pthread_mutex_unlock(&km_lock);
    sodium_free(p); /* checks the canary, wipes, unlocks, unmaps */
}

void sdp_keymem_stats(struct sdp_keymem_stats *st)
{
    pthread_mutex_lock(&km_lock);
    *st = km_st;
    pthread_mutex_unlock(&km_lock);
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
