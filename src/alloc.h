/* alloc.h - offset-based payload heap (TLSF free lists + a wilderness top).
 *
 * Owns: the heap's on-segment control block (struct pxs_seg_heap) and the
 * block format (boundary tags). It works over any (base, start, end) range
 * of memory, so it can be unit-tested without shared memory. It does no
 * locking: the caller holds the heap mutex around every call that takes a
 * `struct pxs_heap *` except pxs__heap_block(), which only reads one block.
 *
 * Every offset is relative to `base` (the segment's first byte), never a
 * pointer. Every offset or size read from the segment is validated against
 * the process-local geometry in `struct pxs_heap` before it is used:
 * violations return -EPROTO, never a wild access.
 */
#ifndef PXS_ALLOC_H
#define PXS_ALLOC_H

#include <stdint.h>

#define PXS_HEAP_ALIGN 16u /**< payload and block alignment */
#define PXS_HEAP_FL 40     /**< first-level classes: blocks up to 2^(FL+4) */
#define PXS_HEAP_SL_LOG2 3
#define PXS_HEAP_SL (1 << PXS_HEAP_SL_LOG2) /**< second-level classes per FL */

/** Heap control block, inside the segment. Written only under the heap lock. */
struct pxs_seg_heap {
	uint64_t start; /**< offset of the first block header */
	uint64_t end;   /**< offset one past the heap */
	uint64_t top;   /**< wilderness: [top, end) is free and in no list */
	uint64_t
		committed; /**< [start, committed) is backed by memory (fallocate) */
	uint64_t used;   /**< bytes of allocated blocks, headers included */
	uint64_t nalloc; /**< allocated blocks */
	uint32_t fl_bitmap_lo,
		fl_bitmap_hi;            /**< non-empty first-level classes */
	uint32_t sl_bitmap[PXS_HEAP_FL]; /**< non-empty second-level classes */
	uint64_t
		heads[PXS_HEAP_FL]
		     [PXS_HEAP_SL]; /**< free-list heads (offsets, 0 = empty) */
	/** Change counter (seqlock): odd while a change is under way, bumped
	 *  before and after every change (alloc.c, THE CHANGE COUNTER). */
	uint64_t changes;
};

/**
 * Called when the heap must grow its committed region to at least @p need
 * bytes from the segment start (the allocator rounds up to its own chunk).
 * Returns 0, or a negative errno (-ENOSPC) that makes the allocation fail
 * with nothing changed.
 */
typedef int (*pxs_heap_commit_fn)(void *ctx, uint64_t need);

/** Process-local handle: validated geometry plus the control block. */
struct pxs_heap {
	unsigned char *base;       /**< first byte of the segment */
	uint64_t start, end;       /**< validated copy of the geometry */
	struct pxs_seg_heap *h;    /**< control block inside the segment */
	pxs_heap_commit_fn commit; /**< NULL: everything is committed */
	void *commit_ctx;
};

/** What pxs__heap_check() found. */
struct pxs_heap_report {
	uint64_t blocks_free, blocks_used;
	uint64_t bytes_free, bytes_used; /**< whole blocks, headers included */
	uint64_t bytes_overhead;         /**< headers of used blocks */
	uint64_t largest_free;           /**< largest payload allocatable now */
	uint32_t errors;                 /**< inconsistencies found */
	char first_error[96];            /**< the first of them, in words */
};

/** Format an empty heap over [start, end) (both PXS_HEAP_ALIGN-aligned). */
void pxs__heap_init(struct pxs_heap *hp, uint64_t start, uint64_t end);

/**
 * Allocate @p size payload bytes (0 allowed), tagging the block with
 * @p owner (opaque to the allocator). On success *@p off is the payload
 * offset, PXS_HEAP_ALIGN-aligned.
 * @return 0, -ENOSPC (nothing changed), -EPROTO (corrupt control block).
 */
int pxs__heap_alloc(struct pxs_heap *hp, uint64_t size, uint32_t owner,
		    uint64_t *off);

/**
 * Allocate up to @p n blocks of @p size payload bytes (each as from
 * pxs__heap_alloc) with one search: one block of n times the size, split
 * into n. Falls back to a single block when no run fits.
 * @return how many were allocated (>= 1, offsets in @p offs), or -ENOSPC,
 * -EPROTO as pxs__heap_alloc().
 */
int pxs__heap_alloc_run(struct pxs_heap *hp, uint64_t size, uint32_t n,
			uint32_t owner, uint64_t *offs);

/** The check word of a block header at heap offset @p b (a mix of b that
 *  a stray write is unlikely to produce; a peer can compute it). */
uint32_t pxs__heap_check_word(uint64_t b);

/** Free the block whose payload starts at @p off, coalescing neighbours.
 *  @return 0 or -EPROTO (not an allocated block; nothing changed). */
int pxs__heap_free(struct pxs_heap *hp, uint64_t off);

/** Validate the allocated block at payload offset @p off; give its payload
 *  capacity and owner tag. No lock needed for a block the caller holds.
 *  @return 0 or -EPROTO. */
int pxs__heap_block(const struct pxs_heap *hp, uint64_t off, uint64_t *cap,
		    uint32_t *owner);

/** Retag an allocated block. @return 0 or -EPROTO. */
int pxs__heap_set_owner(struct pxs_heap *hp, uint64_t off, uint32_t owner);

/** Called by pxs__heap_walk() for each allocated block. */
typedef void (*pxs_heap_visit_fn)(void *ctx, uint64_t off, uint64_t cap,
				  uint32_t owner);

/** Visit every allocated block in address order (bounded walk).
 *  @return 0 or -EPROTO if the walk met a bad tag (it stops there). */
int pxs__heap_walk(const struct pxs_heap *hp, pxs_heap_visit_fn fn, void *ctx);

/**
 * Rebuild the free lists, counters and top from the boundary tags, merging
 * adjacent free blocks: the repair after a process died holding the heap
 * lock. Idempotent. @return 0 or -EPROTO (tags inconsistent: unrepairable).
 */
int pxs__heap_rebuild(struct pxs_heap *hp);

/** Read-only validation of tags, lists and counters.
 *  @return 0 when consistent, -EPROTO otherwise (details in @p r). */
int pxs__heap_check(const struct pxs_heap *hp, struct pxs_heap_report *r);

/** The change counter, read (acquire) by a reader without the lock: the
 *  same even value before and after a walk means no change overlapped it. */
uint64_t pxs__heap_changes(const struct pxs_heap *hp);

/** Bytes used, free, and the largest payload allocatable now, from the
 *  counters and bitmaps (O(1)-ish, no walk). */
void pxs__heap_usage(const struct pxs_heap *hp, uint64_t *used,
		     uint64_t *free_bytes, uint64_t *largest);

#endif
