/* block.c - payload blocks: allocation, freeing and tagging under the heap
 * lock, and each handle's cache of blocks allocated ahead.
 *
 * Owns: the heap lock (pxs__heap_lock, and its repair: one place), the
 * allocator (alloc.c) calls of an operation's blocks, and struct
 * pxs_block_cache. Whole-heap scans take the same lock through
 * pxs__heap_lock: pxs_stat (store.c), the leak search (reap.c) and
 * pxs_check (check.c).
 *
 * THE CACHE. The heap lock and the allocator's control block are shared by
 * every process: two processes putting small objects side by side pass
 * them between their CPUs on every put. A handle whose puts keep asking
 * for blocks of one size class therefore takes several in one turn of the
 * heap lock (as many as its run of same-class puts so far, up to
 * PXS_CACHE_MAX, allocated as one run and split: pxs__heap_alloc_run) and
 * hands them out one by one. Only a put that succeeded
 * refills the cache, and a failed put gives its block back where it came
 * from, so a call that fails changes nothing. The blocks are ordinary
 * allocated blocks tagged with this process, exactly like a block between
 * the allocation and the publication of a put: if the process dies, its
 * reaper frees them (free_leaked in reap.c), and pxs_check() counts them
 * as in flight, not leaked. A put of another class, -ENOSPC, pxs_stat()
 * (so that its figures count values, not spare blocks), pxs_close() and a
 * fork empty the cache (a forked child just forgets the blocks: they are
 * its parent's). The cache is taken with a trylock and skipped when busy,
 * so threads never wait for it and a child forked while a thread held it
 * is not stuck.
 */
#include "internal.h"

/* Puts up to this size are cached; their class is the size rounded up to
 * PXS_CACHE_GRAIN. */
#define PXS_CACHE_LARGEST 1024u
#define PXS_CACHE_GRAIN 64u
/* A run of this many same-class puts starts the cache. */
#define PXS_CACHE_STREAK 4u

/* The heap's lock holder died: rebuild the free lists from the boundary
 * tags (alloc.c). Tags are written so that every prefix of an operation
 * leaves a walkable heap; if it is not, the heap is unrepairable. */
int
pxs__repair_heap(struct pxs_store *s, void *arg)
{
	PXS_FAILPOINT(FP_RECOVER_HEAP);
	return pxs__heap_rebuild(&s->heap);
}

int
pxs__heap_lock_by(struct pxs_store *s, const struct timespec *deadline)
{
	return pxs__lock(s, &s->hdr->heap_lock, deadline, pxs__repair_heap,
			 NULL);
}

int
pxs__heap_lock(struct pxs_store *s)
{
	return pxs__heap_lock_by(s, NULL);
}

/* Under the cache's lock. The count is also read without it, as a hint
 * that spares the trylock when the cache is empty. */
static inline void
set_count(struct pxs_block_cache *c, uint32_t n)
{
	__atomic_store_n(&c->n, n, __ATOMIC_RELAXED);
}

/* Under the cache's lock: give every cached block back to the heap (or
 * forget them, if they were cached before a fork, by the parent). */
static void
cache_drop(struct pxs_store *s, struct pxs_block_cache *c,
	   const struct timespec *deadline)
{
	if (c->n && c->token == s->token) {
		int rc = pxs__heap_lock_by(s, deadline);
		if (rc == -ETIMEDOUT)
			return; /* kept for a later drop (or our reaper) */
		for (uint32_t i = 0; rc == 0 && i < c->n; i++)
			pxs__heap_free(&s->heap, c->off[i]);
		if (rc == 0)
			pxs__unlock(&s->hdr->heap_lock);
	}
	set_count(c, 0);
}

/* The cache class of a request of @p size bytes, 0 if it is not cached. */
static uint64_t
cache_class(uint64_t size)
{
	return size && size <= PXS_CACHE_LARGEST
		       ? (size + PXS_CACHE_GRAIN - 1) &
				 ~(uint64_t)(PXS_CACHE_GRAIN - 1)
		       : 0;
}

static int
heap_alloc(struct pxs_store *s, uint64_t size, const struct timespec *dl,
	   uint64_t *off)
{
	int rc = pxs__heap_lock_by(s, dl);
	if (rc < 0)
		return rc;
	PXS_FAILPOINT(FP_HEAP_LOCKED);
	rc = pxs__heap_alloc(&s->heap, size, s->token, off);
	pxs__unlock(&s->hdr->heap_lock);
	return rc;
}

int
pxs__block_alloc_by(struct pxs_store *s, uint64_t size,
		    const struct timespec *deadline, uint64_t *off)
{
	if (size == 0) { /* no block: empty values point at the heap start */
		*off = 0;
		return 0;
	}
	int rc = heap_alloc(s, size, deadline, off);
	if (rc == -ENOSPC && __atomic_load_n(&s->cache.n, __ATOMIC_RELAXED)) {
		pxs__block_cache_drop(s); /* the heap is short: give back ours */
		rc = heap_alloc(s, size, deadline, off);
	}
	return rc;
}

int
pxs__block_alloc(struct pxs_store *s, uint64_t size, uint64_t *off)
{
	return pxs__block_alloc_by(s, size, NULL, off);
}

int
pxs__block_take(struct pxs_store *s, uint64_t size, uint64_t *off,
		bool *cached)
{
	struct pxs_block_cache *c = &s->cache;
	uint64_t cls = cache_class(size);
	*cached = false;
	if (cls && __atomic_load_n(&c->n, __ATOMIC_RELAXED) &&
	    pthread_mutex_trylock(&c->lock) == 0) {
		if (c->n && c->cls == cls && c->token == s->token) {
			*off = c->off[c->n - 1];
			set_count(c, c->n - 1);
			*cached = true;
		}
		pthread_mutex_unlock(&c->lock);
		if (*cached)
			return 0;
	}
	/* Cacheable sizes get whole classes, so that any block of the class
	 * can go into the cache later. */
	return pxs__block_alloc(s, cls ? cls : size, off);
}

void
pxs__block_give_back(struct pxs_store *s, uint64_t off, bool cached)
{
	struct pxs_block_cache *c = &s->cache;
	if (cached && pthread_mutex_trylock(&c->lock) == 0) {
		if (c->token == s->token && c->n < PXS_CACHE_MAX) {
			c->off[c->n] = off;
			set_count(c, c->n + 1);
			off = 0;
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (off)
		pxs__block_free(s, off);
}

void
pxs__block_cache_fill(struct pxs_store *s, uint64_t size)
{
	struct pxs_block_cache *c = &s->cache;
	uint64_t cls = cache_class(size);
	if (!cls || pthread_mutex_trylock(&c->lock) != 0)
		return;
	if (c->token != s->token || c->cls != cls) {
		cache_drop(s, c, NULL);
		c->token = s->token;
		c->cls = cls;
		c->streak = 0;
	}
	/* Refill an empty cache with as many blocks as the run of puts of
	 * this class has reached, up to PXS_CACHE_MAX and 1/256 of the heap
	 * (a small segment must not sit in blocks nobody uses). */
	uint64_t want = ++c->streak, room = (s->g.heap_end - s->g.heap_off) /
					    256 / cls;
	want = want < PXS_CACHE_MAX ? want : PXS_CACHE_MAX;
	want = want < room ? want : room;
	if (c->n == 0 && c->streak >= PXS_CACHE_STREAK && want &&
	    pxs__heap_lock(s) == 0) {
		int got = pxs__heap_alloc_run(&s->heap, cls, (uint32_t)want,
					      s->token, c->off);
		set_count(c, got > 0 ? (uint32_t)got : 0);
		pxs__unlock(&s->hdr->heap_lock);
	}
	pthread_mutex_unlock(&c->lock);
}

void
pxs__block_cache_drop_by(struct pxs_store *s, const struct timespec *deadline)
{
	struct pxs_block_cache *c = &s->cache;
	if (__atomic_load_n(&c->n, __ATOMIC_RELAXED) &&
	    pthread_mutex_trylock(&c->lock) == 0) {
		cache_drop(s, c, deadline);
		pthread_mutex_unlock(&c->lock);
	}
}

void
pxs__block_cache_drop(struct pxs_store *s)
{
	pxs__block_cache_drop_by(s, NULL);
}

void
pxs__block_tag(struct pxs_store *s, uint64_t off)
{
	if (pxs__heap_lock(s) < 0)
		return;
	pxs__heap_set_owner(&s->heap, off, s->token);
	pxs__unlock(&s->hdr->heap_lock);
}

int
pxs__block_free(struct pxs_store *s, uint64_t off)
{
	int rc = pxs__heap_lock(s);
	if (rc < 0)
		return rc;
	rc = pxs__heap_free(&s->heap, off);
	pxs__unlock(&s->hdr->heap_lock);
	return rc;
}
