/* store.c - the store handle and the object API: open/close, put, get,
 * release, exists, evict, stat.
 *
 * Owns: the lifetime of struct pxs_store, pinning and unpinning. Futures
 * are in future.c; probing and slot bookkeeping in table.c; payload blocks
 * in block.c.
 *
 * A put copies the payload into a freshly allocated block *before* it takes
 * any slot or table lock, then inserts a READY slot that points at it: the
 * value is published whole by the slot's state store. If the insertion
 * fails (-EEXIST, -ENOSPC) the block is freed and nothing changed.
 *
 * PINS. A pin is one count in the pinning process's own pin array (reap.c)
 * and nothing else: a get and its release write no line that another
 * process uses, so readers of one value, or of neighbouring slots, do not
 * slow each other down. A value may be freed only when no array counts a
 * pin on its slot, which an evicter or a releaser decides under the slot
 * lock; a reader pins without it. The two meet like Dekker's protocol:
 *
 *   reader:  pin (own array)        evicter:  state = EVICTED
 *            fence (seq_cst)                  fence (seq_cst)
 *            read state, key, gen             sum the arrays' pins
 *
 * so at least one sees the other: either the reader sees EVICTED and drops
 * its pin without touching the value, or the evicter sees the pin and
 * keeps the block (EVICTED) for the last releaser to free. A reader checks
 * the generation before and after (a slot freed and reused in between has
 * a new one). A releaser drops its pin, fences and reads the state; if the
 * value was evicted meanwhile, it frees it under the slot lock when nobody
 * pins it any more. A process killed between dropping its pin and freeing
 * leaves an evicted value nobody holds: the reaper frees those (reap.c).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- payloads ---------------------------------------------------------- */

/* The payload (off, sz) of a published slot, validated against the heap. */
static int
payload_at(struct pxs_store *s, uint64_t off, uint64_t sz, const void **data)
{
	uint64_t cap = 0;
	uint32_t owner;
	if (off == 0) {
		if (sz != 0)
			return -EPROTO;
	} else if (pxs__heap_block(&s->heap, off, &cap, &owner) < 0 ||
		   sz > cap) {
		return -EPROTO;
	}
	*data = s->base + (off ? off : s->g.heap_off);
	return 0;
}

int
pxs__slot_payload(struct pxs_store *s, const struct pxs_seg_slot *sl,
		  const void **data, uint64_t *size)
{
	*size = sl->size;
	return payload_at(s, sl->off, *size, data);
}

/* ---- pins ------------------------------------------------------------- */

/* This process's pin array. It is allocated when the handle attaches, so
 * that it sits low in the heap rather than between later objects (it
 * lives as long as the handle), or at the first pin if that failed. */
uint16_t *
pxs__my_pins(struct pxs_store *s)
{
	uint16_t *a = __atomic_load_n(&s->pins, __ATOMIC_ACQUIRE);
	if (PXS_LIKELY(a != NULL))
		return a;
	pthread_mutex_lock(&s->local);
	struct pxs_seg_proc *p = &s->procs[pxs__token_idx(s->token)];
	if (!(a = s->pins) && !(a = pxs__pin_array(s, p))) {
		uint64_t off, n = (uint64_t)s->g.nslots * sizeof(uint16_t);
		if (pxs__block_alloc(s, n, &off) == 0) {
			a = (uint16_t *)(s->base + off);
			memset(a, 0, n);
			__atomic_store_n(&p->pins_off, off, __ATOMIC_RELEASE);
		}
	}
	__atomic_store_n(&s->pins, a, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->local);
	return a;
}

/* A pinned value: fill the view. */
static void
fill_view(struct pxs_store *s, uint32_t idx, uint32_t gen, const void *data,
	  uint64_t size, pxs_view *v)
{
	v->data = data;
	v->size = (size_t)size;
	v->priv[0] = idx | (uint64_t)gen << 32;
	v->priv[1] = (uintptr_t)s;
	v->priv[2] = s->token;
	pxs__count(s, PXS_CTR_GETS);
}

int
pxs__view_pin(struct pxs_store *s, uint32_t idx, pxs_view *v)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	const void *data;
	uint64_t size;
	int rc = pxs__slot_payload(s, sl, &data, &size);
	if (rc < 0)
		return rc;
	uint16_t *mine = pxs__my_pins(s);
	if (!mine) /* no room for this handle's pin records */
		return -ENOSPC;
	if (__atomic_load_n(&mine[idx], __ATOMIC_RELAXED) == UINT16_MAX)
		return -EOVERFLOW;
	/* Under the slot lock, so no evicter is between its state store and
	 * its count of the pins. */
	__atomic_fetch_add(&mine[idx], 1, __ATOMIC_SEQ_CST);
	fill_view(s, idx, sl->gen, data, size, v);
	return 0;
}

int
pxs__unpin(struct pxs_store *s, uint32_t idx)
{
	__atomic_fetch_sub(&s->pins[idx], 1, __ATOMIC_SEQ_CST);
	PXS_FAILPOINT(FP_RELEASE_BETWEEN_COUNTS);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->slots[idx].state, __ATOMIC_RELAXED) !=
	    PXS_SLOT_EVICTED)
		return 0;
	/* Not only the value we pinned: a reader backing off may have
	 * pinned, for a moment, a slot that was freed and reused since its
	 * lookup, and made that value's evicter keep it. */
	return pxs__free_if_unheld(s, idx);
}

/* pxs_get() without the slot lock, for a READY value (see PINS above):
 * -ENOENT if the key is not there, -EAGAIN sends the caller to the locked
 * path, which handles the rest. */
static int
get_unlocked(struct pxs_store *s, pxs_key key, pxs_view *v)
{
	uint32_t idx;
	uint16_t *mine;
	if (pxs__table_find(s, key, &idx) < 0)
		return -ENOENT; /* the locked path would probe again for that */
	if (!(mine = pxs__my_pins(s)) ||
	    __atomic_load_n(&mine[idx], __ATOMIC_RELAXED) == UINT16_MAX)
		return -EAGAIN;
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint32_t gen = __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE);
	__atomic_fetch_add(&mine[idx], 1, __ATOMIC_SEQ_CST);
	PXS_FAILPOINT(FP_PIN_BETWEEN_COUNTS);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	bool ok = st == PXS_SLOT_READY && pxs__slot_has_key(sl, key);
	uint64_t off = __atomic_load_n(&sl->off, __ATOMIC_RELAXED),
		 size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	ok = ok && __atomic_load_n(&sl->gen, __ATOMIC_RELAXED) == gen &&
	     __atomic_load_n(&sl->state, __ATOMIC_RELAXED) == PXS_SLOT_READY;
	const void *data;
	if (ok && payload_at(s, off, size, &data) == 0) {
		fill_view(s, idx, gen, data, size, v);
		return 0;
	}
	pxs__unpin(s, idx);
	return -EAGAIN;
}

int
pxs__slot_check_owner(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint32_t st = sl->state, owner = sl->owner;
	if ((st != PXS_SLOT_PENDING && st != PXS_SLOT_RESERVED) || owner == 0 ||
	    pxs__proc_alive(s, owner))
		return 0;
	pxs__slot_abandon(s, idx);
	return 1;
}

int
pxs__slot_status(struct pxs_store *s, uint32_t idx, bool *changed)
{
	switch (s->slots[idx].state) {
	case PXS_SLOT_READY:
		return 1;
	case PXS_SLOT_ABANDONED:
		return -EOWNERDEAD;
	default: /* pending or reserved */
		if (!pxs__slot_check_owner(s, idx))
			return 0;
		*changed = true;
		return -EOWNERDEAD;
	}
}

void
pxs__slot_abandon(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint64_t off = sl->state == PXS_SLOT_RESERVED ? sl->off : 0;
	/* The dead producer's half-written block goes back to the heap:
	 * claimed, unpublished, then freed (see pxs__block_claim). */
	if (off)
		pxs__block_claim(s, off);
	sl->off = 0;
	sl->size = 0;
	pxs__slot_set_state(sl, PXS_SLOT_ABANDONED);
	if (off)
		pxs__block_free(s, off);
}

/* Key k is in use: if it holds an abandoned future (or one whose owner is
 * found dead now), take its slot over in place, as a restarted producer
 * does; its waiters have returned -EOWNERDEAD already. -EEXIST for a live
 * key, -ENOENT if it went away meanwhile (insert it again). */
static int
replace_abandoned(struct pxs_store *s, pxs_key k, uint32_t state,
		  uint64_t off, uint64_t size, uint32_t owner)
{
	uint32_t idx;
	int rc = pxs__lock_key(s, k, NULL, &idx);
	if (rc < 0)
		return rc;
	bool changed = false;
	if (pxs__slot_status(s, idx, &changed) != -EOWNERDEAD) {
		if (changed)
			pxs__slot_unlock_wake(s, idx);
		else
			pxs__slot_unlock(s, idx);
		return -EEXIST;
	}
	struct pxs_seg_slot *sl = &s->slots[idx];
	PXS_FAILPOINT(FP_REPLACE_LOCKED);
	/* As insert() fills a slot: every field, then the state (release). */
	__atomic_store_n(&sl->off, off, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->size, size, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->owner, owner, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->expires_ns, 0, __ATOMIC_RELAXED);
	sl->created_ns = pxs__now_ns(CLOCK_REALTIME);
	pxs__slot_set_state(sl, state);
	pxs__slot_unlock_wake(s, idx);
	return 0;
}

int
pxs__insert_or_replace(struct pxs_store *s, pxs_key k, uint32_t state,
		       uint64_t off, uint64_t size, uint32_t owner)
{
	for (;;) {
		uint32_t idx, stale;
		int rc = pxs__table_insert(s, k, state, off, size, owner, &idx,
					   &stale);
		if (stale != UINT32_MAX) /* an expired slot on the way */
			pxs__reclaim_if_expired(s, stale);
		/* A full table refuses before it looks for the key; taking a
		 * slot over needs no room. */
		if (rc != -EEXIST && rc != -ENOSPC)
			return rc;
		int r = replace_abandoned(s, k, state, off, size, owner);
		if (r == 0 || rc == -ENOSPC)
			return r == 0 ? 0 : rc;
		if (r != -ENOENT) /* -ENOENT: gone meanwhile, insert again */
			return r;
	}
}

/* ---- stores ----------------------------------------------------------- */

int
pxs__shm_open(const char *name, const pxs_options *o, pxs_store **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (pxs__name_check(name) < 0)
		return -EINVAL;
	if (o && ((o->flags & ~(PXS_CREATE | PXS_EXCL)) ||
		  (o->mode & ~(mode_t)0777) ||
		  ((o->flags & PXS_EXCL) && !(o->flags & PXS_CREATE)) ||
		  (o->size && o->size < PXS_MIN_SIZE) ||
		  o->capacity > PXS_MAX_CAPACITY ||
		  o->spin_us > PXS_MAX_SPIN_US))
		return -EINVAL;
	pxs_store *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->fd = s->lockfd = -1;
	s->spin_us = o ? o->spin_us : 0;
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
	if (rc == 0)
		rc = pxs__proc_register(s);
	if (rc == 0)
		pxs__my_pins(s);
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
		pxs__block_cache_drop(s);
		pxs__proc_unregister(s);
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
	int rc = pxs__enter_key(s, key);
	if (rc < 0)
		return rc;
	if (!data && size)
		return -EINVAL;
	uint64_t off;
	bool cached;
	rc = pxs__block_take(s, size, &off, &cached);
	if (rc == -ENOSPC && pxs__reap(s) > 0) /* dead processes held memory */
		rc = pxs__block_take(s, size, &off, &cached);
	if (rc < 0)
		return rc;
	if (size)
		memcpy(s->base + off, data, size);
	PXS_FAILPOINT(FP_PUT_AFTER_ALLOC);
	rc = pxs__insert_or_replace(s, key, PXS_SLOT_READY, off, size, 0);
	if (rc < 0) {
		if (off)
			pxs__block_give_back(s, off, cached);
		return rc;
	}
	pxs__count(s, PXS_CTR_PUTS);
	pxs__block_cache_fill(s, size);
	return 0;
}

int
pxs__shm_put(pxs_store *s, const void *data, size_t size, pxs_key *key_out)
{
	if (!key_out)
		return -EINVAL;
	for (;;) {
		pxs_key k = pxs__key_random();
		int rc = pxs_put_at(s, k, data, size);
		if (rc !=
		    -EEXIST) { /* a random 128-bit collision: draw again */
			if (rc == 0)
				*key_out = k;
			return rc;
		}
	}
}

int
pxs__shm_get(pxs_store *s, pxs_key key, pxs_view *v)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	if (rc < 0)
		return rc;
	if (!v)
		return -EINVAL;
	if ((rc = get_unlocked(s, key, v)) != -EAGAIN)
		goto out;
	if ((rc = pxs__lock_key(s, key, NULL, &idx)) < 0)
		return rc;
	bool changed = false;
	rc = pxs__slot_status(s, idx, &changed);
	rc = rc == 1 ? pxs__view_pin(s, idx, v) : rc == 0 ? -EAGAIN : rc;
	if (changed)
		pxs__slot_unlock_wake(s, idx);
	else
		pxs__slot_unlock(s, idx);
out:
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
	if (idx >= s->g.nslots)
		return -EINVAL;
	/* A view's pin keeps its slot's generation and holds the value
	 * (READY, or EVICTED until the last release). */
	const struct pxs_seg_slot *sl = &s->slots[idx];
	uint16_t *mine = s->pins;
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (!mine || __atomic_load_n(&sl->gen, __ATOMIC_RELAXED) != gen ||
	    (st != PXS_SLOT_READY && st != PXS_SLOT_EVICTED) ||
	    __atomic_load_n(&mine[idx], __ATOMIC_RELAXED) == 0)
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
	const struct pxs_seg_slot *sl = &s->slots[idx];
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	return st == PXS_SLOT_READY &&
	       __atomic_load_n(&sl->key_lo, __ATOMIC_RELAXED) == key.lo &&
	       __atomic_load_n(&sl->key_hi, __ATOMIC_RELAXED) == key.hi;
}

int
pxs__shm_evict(pxs_store *s, pxs_key key)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	if (rc < 0)
		return rc;
	if ((rc = pxs__lock_key(s, key, NULL, &idx)) < 0)
		return rc;
	PXS_FAILPOINT(FP_EVICT_LOCKED);
	uint64_t off = 0;
	bool freed = pxs__slot_evict(s, idx, &off);
	pxs__slot_unlock_wake(s, idx);
	return freed ? pxs__slot_reclaim(s, idx, off) : 0;
}

/* ---- statistics ------------------------------------------------------- */

int
pxs__shm_stat(pxs_store *s, pxs_stats *st)
{
	if (!s || !st)
		return -EINVAL;
	int rc = pxs__enter(s);
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof *st);
	st->segment_size = s->g.size;
	st->heap_size = s->g.heap_end - s->g.heap_off;
	st->capacity = s->g.capacity;
	pxs__block_cache_drop(s);
	if ((rc = pxs__heap_lock(s)) < 0)
		return rc;
	pxs__heap_usage(&s->heap, &st->heap_used, &st->heap_free,
			&st->heap_largest_free);
	pxs__unlock(&s->hdr->heap_lock);
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		const struct pxs_seg_slot *sl = &s->slots[i];
		uint32_t state = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (state < PXS_SLOT_READY)
			continue;
		st->waiters += __atomic_load_n(&sl->waiters, __ATOMIC_RELAXED);
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
