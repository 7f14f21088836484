/* store.c - the store handle and the object API: open/close, put, get,
 * release, exists, evict, expire, stat.
 *
 * Owns: the lifetime of struct pxs_store and the object calls. Futures are
 * in future.c; lookup in slot.c, insertion and freeing in table.c, pins in
 * pins.c, payload blocks in block.c, what a deadline does in expire.c.
 *
 * A put copies the payload into a freshly allocated block *before* it takes
 * any slot or table lock, then inserts a READY slot that points at it: the
 * value is published whole by the slot's state store. If the insertion
 * fails (-EEXIST, -ENOSPC) the block is freed and nothing changed.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- stores ----------------------------------------------------------- */

int
pxs__shm_open(const char *name, const pxs_options *o, pxs_store **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (pxs__name_check(name) < 0)
		return -EINVAL;
	if (o && ((o->flags & ~(PXS_CREATE | PXS_EXCL | PXS_RDONLY |
				 PXS_TRUST_OWNER)) ||
		  (o->mode & ~(mode_t)0777) ||
		  ((o->flags & PXS_EXCL) && !(o->flags & PXS_CREATE)) ||
		  ((o->flags & PXS_RDONLY) && (o->flags & PXS_CREATE)) ||
		  (o->size && o->size < PXS_MIN_SIZE) ||
		  o->capacity > PXS_MAX_CAPACITY ||
		  o->spin_us > PXS_MAX_SPIN_US))
		return -EINVAL;
	pxs_store *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->fd = s->lockfd = -1;
	s->spin_us = o ? o->spin_us : 0;
	s->rdonly = o && (o->flags & PXS_RDONLY);
	strcpy(s->name, name);
	pthread_mutex_init(&s->local, NULL);
	pthread_mutex_init(&s->waits_lock, NULL);
	pthread_mutex_init(&s->cache.lock, NULL);
	s->fork_gen = pxs__fork_gen;
	/* Attaching with wait_ms: wait for a creator (shmwait.c). */
	bool wait = o && !(o->flags & PXS_CREATE) && o->wait_ms != 0;
	uint64_t end_ns = !wait || o->wait_ms < 0 ||
					  o->wait_ms > (long)(INT64_MAX / 2000000)
				  ? UINT64_MAX
				  : pxs__now_ns(CLOCK_MONOTONIC) +
					    (uint64_t)o->wait_ms * 1000000u;
	int rc;
	while ((rc = pxs__segment_open(s, name, o)) == -ENOENT && wait &&
	       (rc = pxs__segment_await(name, end_ns)) == 0)
		pxs__segment_close(s);
	if (rc == 0 && !s->rdonly) /* read-only: no entry, no pins */
		rc = pxs__attach(s);
	if (rc < 0) {
		pxs__segment_close(s);
		pthread_mutex_destroy(&s->cache.lock);
		pthread_mutex_destroy(&s->local);
		pthread_mutex_destroy(&s->waits_lock);
		free(s);
		return rc;
	}
	pxs__proc_track(s);
	*out = s;
	return 0;
}

int
pxs__shm_close(pxs_store *s)
{
	if (!s)
		return 0;
	pxs__proc_untrack(s);
	if (s->fork_gen == pxs__fork_gen) { /* a child never registered: not ours */
		struct timespec dl; /* bounded: left to our reaper after that */
		pxs__deadline(&dl, PXS_ATTACH_LOCK_MS);
		pxs__block_cache_drop_by(s, &dl);
		pxs__detach(s);
	}
	pxs__segment_close(s);
	pthread_mutex_destroy(&s->cache.lock);
	pthread_mutex_destroy(&s->local);
	pthread_mutex_destroy(&s->waits_lock);
	free(s);
	return 0;
}

int
pxs__shm_unlink(const char *name)
{
	if (pxs__name_check(name) < 0)
		return -EINVAL;
	int rc = shm_unlink(name) < 0 ? -errno : 0;
	pxs__segment_sweep(name);
	return rc;
}

const char *
pxs__shm_store_name(const pxs_store *s)
{
	return s ? s->name : NULL;
}

/* ---- objects ---------------------------------------------------------- */

int
pxs__shm_put_at(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	return pxs__shm_put_tail(s, key, data, size, NULL, 0);
}

int
pxs__shm_put_tail(pxs_store *s, pxs_key key, const void *data, size_t size,
		  const void *tail, size_t tail_len)
{
	int rc = pxs__enter_key(s, key);
	if (rc < 0)
		return rc;
	if (!data && size)
		return -EINVAL;
	if (size > SIZE_MAX - tail_len)
		return -ENOSPC;
	uint64_t off;
	bool cached;
	/* Reaping: dead processes may have held memory. */
	PXS_REAP_RETRY(s, rc, pxs__block_take(s, size + tail_len, &off, &cached));
	if (rc < 0)
		return rc;
	if (size)
		memcpy(s->base + off, data, size);
	if (tail_len) /* before the insert publishes the block */
		memcpy(s->base + off + size, tail, tail_len);
	PXS_FAILPOINT(FP_PUT_AFTER_ALLOC);
	uint32_t idx;
	rc = pxs__insert_reaping(s, key, PXS_SLOT_READY, off, size, 0, &idx);
	if (rc < 0) {
		if (off)
			pxs__block_give_back(s, off, cached);
		return rc;
	}
	pxs__count(s, PXS_CTR_PUTS);
	pxs__block_cache_fill(s, size + tail_len);
	return 0;
}

int
pxs__shm_put(pxs_store *s, const void *data, size_t size, pxs_key *key_out)
{
	if (!key_out)
		return -EINVAL;
	for (;;) {
		pxs_key k = pxs__key_random();
		int rc = pxs__shm_put_at(s, k, data, size);
		if (rc !=
		    -EEXIST) { /* a random 128-bit collision: draw again */
			if (rc == 0)
				*key_out = k;
			return rc;
		}
	}
}

/* One try at pinning @p key's value: lock-free first, then under the slot
 * lock (which also settles a future whose owner died). */
static int
get_once(pxs_store *s, pxs_key key, pxs_view *v)
{
	uint32_t idx;
	int rc;
	if ((rc = pxs__pin_lockless(s, key, v)) != -EAGAIN)
		return rc;
	if ((rc = pxs__lock_key(s, key, NULL, &idx)) < 0)
		return rc;
	bool changed = false;
	rc = pxs__slot_resolve(s, idx, &changed);
	rc = rc == 1 ? pxs__view_pin(s, idx, v) : rc == 0 ? -EAGAIN : rc;
	pxs__slot_unlock_wake_if(s, idx, changed);
	return rc;
}

int
pxs__shm_get(pxs_store *s, pxs_key key, pxs_view *v)
{
	int rc = pxs__enter_key(s, key);
	if (rc < 0)
		return rc;
	if (!v)
		return -EINVAL;
	/* -ENOSPC: the heap had no room for this handle's first pin records
	 * (pins.c). Reap, holding no lock, as for a put's block, and try
	 * once more if that freed anything. */
	PXS_REAP_RETRY(s, rc, get_once(s, key, v));
	if (rc == 0)
		PXS_FAILPOINT(FP_GET_PINNED_BEFORE_RETURN);
	return rc;
}

int
pxs__shm_release(pxs_store *s, pxs_view *v)
{
	if (!v || (!v->data && !v->priv[0] && !v->priv[1]))
		return 0;
	if (!s || v->priv[1] != (uintptr_t)s)
		return -EINVAL;
	int rc = pxs__enter(s);
	if (rc < 0)
		return rc;
	if (v->priv[2] != __atomic_load_n(&s->token, __ATOMIC_ACQUIRE)) {
		/* Pinned by an ancestor before a fork: the pin is theirs. */
		for (size_t i = 0; i < sizeof s->past / sizeof *s->past; i++)
			if (s->past[i] && v->priv[2] == s->past[i]) {
				memset(v, 0, sizeof *v);
				return 0;
			}
		return -EINVAL;
	}
	uint32_t idx = (uint32_t)v->priv[0], gen = (uint32_t)(v->priv[0] >> 32);
	if (!pxs__slot_index_ok(s, idx))
		return -EINVAL;
	/* A view's pin keeps its slot's generation and holds the value
	 * (READY, or EVICTED until the last release). */
	const struct pxs_seg_slot *sl = pxs__slot(s, idx);
	uint16_t *mine = pxs__my_pin_held(s, idx);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (!mine || __atomic_load_n(&sl->gen, __ATOMIC_RELAXED) != gen ||
	    (st != PXS_SLOT_READY && st != PXS_SLOT_EVICTED) ||
	    __atomic_load_n(mine, __ATOMIC_RELAXED) == 0)
		return -EINVAL;
	memset(v, 0, sizeof *v);
	return pxs__unpin(s, idx);
}

int
pxs__shm_exists(pxs_store *s, pxs_key key)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	if (rc < 0)
		return rc;
	if (pxs__table_find(s, key, &idx) < 0)
		return 0;
	const struct pxs_seg_slot *sl = pxs__slot(s, idx);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	return st == PXS_SLOT_READY &&
	       __atomic_load_n(&sl->key_lo, __ATOMIC_RELAXED) == key.lo &&
	       __atomic_load_n(&sl->key_hi, __ATOMIC_RELAXED) == key.hi;
}

int
pxs__shm_evict(pxs_store *s, pxs_key key)
{
	uint32_t idx;
	int rc = pxs__enter_lock_key(s, key, &idx);
	if (rc < 0)
		return rc;
	PXS_FAILPOINT(FP_EVICT_LOCKED);
	uint64_t off = 0;
	bool freed = pxs__slot_evict(s, idx, &off);
	return pxs__slot_unlock_reclaim(s, idx, true, freed, off);
}

int
pxs__shm_expire(pxs_store *s, pxs_key key, long ttl_ms)
{
	uint32_t idx;
	int rc = pxs__enter_lock_key(s, key, &idx);
	if (rc < 0)
		return rc;
	PXS_FAILPOINT(FP_EXPIRE_LOCKED);
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (ttl_ms == 0) {
		pxs__expire_locked(s, idx);
		return 0;
	}
	uint64_t at = 0;
	if (ttl_ms > 0) {
		uint64_t now = pxs__now_ns(CLOCK_MONOTONIC),
			 ns = (uint64_t)ttl_ms > (UINT64_MAX - now) / 1000000u
				      ? UINT64_MAX - now
				      : (uint64_t)ttl_ms * 1000000u;
		at = now + ns;
	}
	__atomic_store_n(&sl->expires_ns, at, __ATOMIC_RELEASE);
	/* Waiters of a pending future sleep no later than its deadline:
	 * make them look at the new one. */
	__atomic_fetch_add(&sl->seq, 1, __ATOMIC_RELEASE);
	pxs__slot_unlock_wake(s, idx);
	return 0;
}

/* ---- statistics ------------------------------------------------------- */

int
pxs__shm_stat(pxs_store *s, pxs_stats *st)
{
	int rc = pxs__enter_args(s, st != NULL);
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof *st);
	st->segment_size = s->g.size;
	st->heap_size = s->g.heap_end - s->g.heap_off;
	uint32_t used;
	pxs__chain_sync(s);
	st->capacity = pxs__table_capacity(s, &used);
	st->slots_used = used < st->capacity ? used : st->capacity;
	st->tables = pxs__ntab(s);
	st->table_grows = !s->g.capacity && st->tables < PXS_MAX_TABLES;
	/* A second at most for the heap lock; without it (a read-only
	 * handle, a stopped holder, a lock word that is garbage) the heap's
	 * figures are a snapshot of its control block, each bounded. */
	struct timespec dl;
	pxs__deadline(&dl, 1000);
	pxs__block_cache_drop_by(s, &dl);
	rc = pxs__heap_lock_by(s, &dl);
	if (rc == -ENOTRECOVERABLE)
		return rc;
	pxs__heap_usage(&s->heap, &st->heap_used, &st->heap_free,
			&st->heap_largest_free);
	if (rc == 0)
		pxs__unlock(&s->hdr->heap_lock);
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
	for (uint32_t i = 0; i < pxs__nslots(s); i++) {
		const struct pxs_seg_slot *sl = pxs__slot(s, i);
		uint32_t state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (state < PXS_SLOT_READY)
			continue;
		st->waiters += PXS_WAITERS_COUNT(
			__atomic_load_n(&sl->waiters, __ATOMIC_RELAXED));
		if (pxs__slot_expired_at(sl, now))
			continue; /* absent, not reclaimed yet */
		st->objects += state == PXS_SLOT_READY;
		st->pending +=
			state == PXS_SLOT_PENDING || state == PXS_SLOT_RESERVED;
		st->abandoned += state == PXS_SLOT_ABANDONED;
		st->evicted_pinned += state == PXS_SLOT_EVICTED;
	}
	st->waiters += pxs__bell_waiters(s);
	uint64_t pins = pxs__pins_total(s);
	st->pins = pins > UINT32_MAX ? UINT32_MAX : (uint32_t)pins;
	uint64_t c[PXS_CTR_N];
	pxs__counters(s, c, &st->processes);
	st->puts = c[PXS_CTR_PUTS];
	st->gets = c[PXS_CTR_GETS];
	st->evictions = c[PXS_CTR_EVICTIONS];
	st->waits = c[PXS_CTR_WAITS];
	st->timeouts = c[PXS_CTR_TIMEOUTS];
	st->recoveries = c[PXS_CTR_RECOVERIES];
	return 0;
}
