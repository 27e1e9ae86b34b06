#include "engine/bufpool.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sdp/sdp.h"

/* Under ASan a cached block is poisoned, so a use after sdp_release is
 * still caught although the memory never went back to malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define BP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BP_ASAN 1
#endif
#endif
#ifdef BP_ASAN
#include <sanitizer/asan_interface.h>
#define BP_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define BP_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define BP_POISON(p, n) ((void)(p), (void)(n))
#define BP_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MIN_SHIFT 8 /* smallest class: 256 bytes */
#define NCLASS 76   /* up to 7 << 26 bytes (112 MiB): any message buffer */

struct bp_class {
    atomic_flag lock; /* held for a push or a pop: a few instructions */
    void *head;       /* free blocks, linked through their first word */
    uint64_t hits, misses, released;
};

struct sdp_bufpool {
    size_t cache_limit;
    _Atomic size_t cached;
    struct bp_class cls[NCLASS];
};

static void cls_lock(struct bp_class *k)
{
    while (atomic_flag_test_and_set_explicit(&k->lock, memory_order_acquire))
        sched_yield(); /* the holder was preempted inside its few instructions */
}

static void cls_unlock(struct bp_class *k)
{
    atomic_flag_clear_explicit(&k->lock, memory_order_release);
}

/* Class c holds blocks of (4 + c % 4) << (c / 4 + MIN_SHIFT - 2) bytes. */
static size_t class_size(unsigned c)
{
    return (size_t)(4 + c % 4) << (c / 4 + MIN_SHIFT - 2);
}

static unsigned class_of(size_t len)
{
    if (len <= ((size_t)1 << MIN_SHIFT))
        return 0;
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(len - 1)); /* 2^b <= len-1 */
    unsigned j = (unsigned)((len - 1) >> (b - 2)) & 3u;
    return (b - MIN_SHIFT) * 4 + j + 1;
}

int sdp_bufpool_new(size_t cache_limit, struct sdp_bufpool **out)
{
    struct sdp_bufpool *bp = calloc(1, sizeof(*bp));
    if (!bp)
        return SDP_ENOMEM;
    bp->cache_limit = cache_limit;
    for (unsigned c = 0; c < NCLASS; c++)
        atomic_flag_clear(&bp->cls[c].lock);
    *out = bp;
    return 0;
}

static void trim_class(struct sdp_bufpool *bp, struct bp_class *k, size_t size)
{
    cls_lock(k);
    void *p = k->head;
    k->head = NULL;
    cls_unlock(k);
    uint64_t n = 0;
    while (p) {
        BP_UNPOISON(p, size);
        void *next;
        memcpy(&next, p, sizeof(next));
        free(p);
        atomic_fetch_sub(&bp->cached, size);
        n++;
        p = next;
    }
    cls_lock(k);
    k->released += n;
    cls_unlock(k);
}

void sdp_bufpool_trim(struct sdp_bufpool *bp)
{
    for (unsigned c = 0; c < NCLASS; c++)
        trim_class(bp, &bp->cls[c], class_size(c));
}

void sdp_bufpool_free(struct sdp_bufpool *bp)
{
    if (!bp)
        return;
    sdp_bufpool_trim(bp);
    free(bp);
}

void *sdp_bufpool_get(struct sdp_bufpool *bp, size_t len)
{
    unsigned c = class_of(len);
    if (c >= NCLASS)
        return malloc(len);
    struct bp_class *k = &bp->cls[c];
    size_t size = class_size(c);
    cls_lock(k);
    void *p = k->head;
    if (p) {
        BP_UNPOISON(p, size);
        memcpy(&k->head, p, sizeof(void *));
        k->hits++;
    } else {
        k->misses++;
    }
    cls_unlock(k);
    if (p) {
        atomic_fetch_sub(&bp->cached, size);
        return p;
    }
    p = malloc(size);
    if (!p) {
        /* Short of memory: what we hold for other sizes goes back first. */
        sdp_bufpool_trim(bp);
        p = malloc(size);
    }
    return p;
}

void sdp_bufpool_put(struct sdp_bufpool *bp, void *p, size_t len)
{
    if (!p)
        return;
    unsigned c = class_of(len);
    if (c >= NCLASS) {
        free(p);
        return;
    }
    struct bp_class *k = &bp->cls[c];
    size_t size = class_size(c);
    /* Bounded: past the limit the block goes back to the system.  The check
     * and the add race with other threads by a block or two at most. */
    if (atomic_load(&bp->cached) + size > bp->cache_limit) {
        free(p);
        cls_lock(k);
        k->released++;
        cls_unlock(k);
        return;
    }
    atomic_fetch_add(&bp->cached, size);
    cls_lock(k);
    memcpy(p, &k->head, sizeof(void *));
    k->head = p;
    BP_POISON((uint8_t *)p + sizeof(void *), size - sizeof(void *));
    cls_unlock(k);
}

static void *pool_alloc(void *ctx, size_t len)
{
    return sdp_bufpool_get(ctx, len);
}

static void pool_free(void *ctx, void *p, size_t len)
{
    sdp_bufpool_put(ctx, p, len);
}

/* The core's tables: large ones are their own mappings, so they start as
 * shared zero pages and only what is used gets memory (malloc's adaptive
 * mmap threshold would hand a reopened socket recycled heap to clear). */
#define ZMAP_MIN (256u << 10)

static void *pool_zalloc(void *ctx, size_t len)
{
    if (len < ZMAP_MIN) {
        void *p = sdp_bufpool_get(ctx, len); /* recycled: no allocator call in steady state */
        if (p)
            memset(p, 0, len);
        return p;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void pool_zfree(void *ctx, void *p, size_t len)
{
    if (len < ZMAP_MIN)
        sdp_bufpool_put(ctx, p, len);
    else
        munmap(p, len);
}

void sdp_bufpool_allocator(struct sdp_bufpool *bp, struct sdp_core_allocator *a)
{
    a->alloc = pool_alloc;
    a->free = pool_free;
    a->zalloc = pool_zalloc;
    a->zfree = pool_zfree;
    a->ctx = bp;
}

void sdp_bufpool_get_stats(struct sdp_bufpool *bp, struct sdp_bufpool_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned c = 0; c < NCLASS; c++) {
        struct bp_class *k = &bp->cls[c];
        cls_lock(k);
        st->hits += k->hits;
        st->misses += k->misses;
        st->released += k->released;
        cls_unlock(k);
    }
    st->cached_bytes = atomic_load(&bp->cached);
}
