/* Message-buffer pool: the allocator an engine gives its core, so that
 * after warm-up sending and receiving a message costs no malloc or free.
 *
 * Blocks come in size classes (four per power of two from 256 bytes, so at
 * most a quarter of a block is slack) and are kept on one free list per
 * class.  Any thread may return a block (the application releases received
 * buffers from its own threads): each list has its own spin lock, held for
 * a push or a pop only.  The cache is bounded: a block freed while the cache
 * holds cache_limit bytes goes back to the system, and an allocation the
 * system refuses first empties the cache and tries again.
 */
#ifndef SDP_ENGINE_BUFPOOL_H
#define SDP_ENGINE_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define SDP_BUFPOOL_CACHE_DEFAULT ((size_t)64 << 20)

struct sdp_bufpool;

/* Errors: SDP_ENOMEM. */
int sdp_bufpool_new(size_t cache_limit, struct sdp_bufpool **out);
/* Frees the cached blocks and the pool; blocks still out must not be
 * returned afterwards.  NULL is accepted. */
void sdp_bufpool_free(struct sdp_bufpool *bp);

/* A block of at least len bytes (16-byte aligned), or NULL. */
void *sdp_bufpool_get(struct sdp_bufpool *bp, size_t len);
/* Return a block with the len it was asked for. */
void sdp_bufpool_put(struct sdp_bufpool *bp, void *p, size_t len);
/* Give every cached block back to the system. */
void sdp_bufpool_trim(struct sdp_bufpool *bp);

/* The pool as a core allocator (src/core/core.h). */
void sdp_bufpool_allocator(struct sdp_bufpool *bp, struct sdp_core_allocator *a);

struct sdp_bufpool_stats {
    uint64_t hits;         /* served from a free list */
    uint64_t misses;       /* served by the system */
    uint64_t released;     /* blocks given back to the system (cache full, trim) */
    uint64_t cached_bytes; /* in the free lists now */
};
void sdp_bufpool_get_stats(struct sdp_bufpool *bp, struct sdp_bufpool_stats *st);

#endif
