/* table.c - the slot hash table: lookup, insertion, freeing, slot locks.
 *
 * Owns: probing, the slot state machine's bookkeeping (live count, gen,
 * tombstones) and the repair of a slot whose lock holder died. It does not
 * allocate payloads (store.c) or wait (future.c).
 *
 * HOW IT WORKS. Open addressing with linear probing over nslots slots, a
 * power of two at least twice the capacity, so the load stays at or below
 * one half. A key's home is key.lo & mask (keys are random or XXH3 output).
 *
 * LOCKING. Lookups take no lock: they walk the probe sequence reading each
 * slot's state (acquire) and key until an EMPTY slot. A hit is only a hint:
 * the caller locks the slot and rechecks key and state under the lock
 * (pxs__slot_is). Insertions hold the table lock, so two inserters of one
 * key cannot both miss each other, and then the target slot's lock while
 * they fill it. A slot becomes free (TOMB) under its own lock only; turning
 * tombstones back into EMPTY happens under the table lock, and only for a
 * run of tombstones directly before an EMPTY slot: no key can live beyond
 * such a run, so a lookup that now stops earlier gets the same answer.
 * Lock order: table lock, then a slot lock, then the heap lock.
 *
 * A lookup racing an insertion or a free may see a torn key and skip the
 * slot; that only linearises it before the concurrent change.
 */
#include "internal.h"

static inline uint32_t
home(const struct pxs_store *s, pxs_key k)
{
	return (uint32_t)(k.lo ^ (k.hi >> 29)) & s->mask;
}

static inline bool
is_live(uint32_t st)
{
	return st >= PXS_SLOT_READY && st <= PXS_SLOT_ABANDONED;
}

static inline bool
key_at(const struct pxs_seg_slot *sl, pxs_key k)
{
	return __atomic_load_n(&sl->key_lo, __ATOMIC_RELAXED) == k.lo &&
	       __atomic_load_n(&sl->key_hi, __ATOMIC_RELAXED) == k.hi;
}

/* Walk k's probe sequence; stop at the first slot where match() holds. */
static int
probe(struct pxs_store *s, pxs_key k, uint32_t want_state, uint32_t owner,
      uint32_t *idx)
{
	uint32_t h = home(s, k);
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		uint32_t j = (h + i) & s->mask;
		const struct pxs_seg_slot *sl = &s->slots[j];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (st == PXS_SLOT_EMPTY)
			return -ENOENT;
		if (!key_at(sl, k))
			continue;
		if (want_state
			    ? st == want_state &&
				      __atomic_load_n(&sl->owner,
						      __ATOMIC_RELAXED) == owner
			    : is_live(st)) {
			*idx = j;
			return 0;
		}
	}
	return -ENOENT;
}

int
pxs__table_find(struct pxs_store *s, pxs_key k, uint32_t *idx)
{
	return probe(s, k, 0, 0, idx);
}

int
pxs__table_find_evicted(struct pxs_store *s, pxs_key k, uint32_t owner,
			uint32_t *idx)
{
	return probe(s, k, PXS_SLOT_EVICTED, owner, idx);
}

static int repair_slot(struct pxs_store *s, void *arg);

/* Under the table lock: recount the live slots. A slot becomes live only
 * under the table lock, so free slots need no look; a live one is read
 * under its own lock, so that a free in progress (state and count change
 * together under the slot lock) is seen either before or after. */
static void
recount_live(struct pxs_store *s)
{
	uint32_t live = 0;
	struct timespec dl;
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		struct pxs_seg_slot *sl = &s->slots[i];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (st < PXS_SLOT_READY)
			continue;
		pxs__deadline(&dl, 1000);
		bool locked = pxs__lock(s, &sl->lock, &dl, repair_slot, sl) == 0;
		st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		live += st >= PXS_SLOT_READY && st < PXS_SLOT_NSTATES;
		if (locked)
			pxs__unlock(&sl->lock);
	}
	__atomic_store_n(&s->hdr->live, live, __ATOMIC_RELEASE);
	__atomic_store_n(&s->hdr->live_suspect, 0, __ATOMIC_RELEASE);
}

/* Repair after the table lock's holder died: it may have died between
 * counting a slot and publishing it, so recount from the slots. */
static int
repair_table(struct pxs_store *s, void *arg)
{
	PXS_FAILPOINT(FP_RECOVER_TABLE);
	recount_live(s);
	return 0;
}

/* Repair after a slot lock's holder died. Every operation publishes its
 * effect with a single store of the state word, after the fields it
 * covers, and frees a block only after unpublishing it, so the slot is
 * always either before or after the dead operation. What can be left is an
 * invalid state word (a corruptor, not a crash), a pin count that disagrees
 * with the pin arrays (recomputed from them), or a block allocated for a
 * publication that never happened (the reaper frees it). Wake waiters so
 * that they recheck. */
static int
repair_slot(struct pxs_store *s, void *arg)
{
	struct pxs_seg_slot *sl = arg;
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (st >= PXS_SLOT_NSTATES)
		return -EPROTO;
	PXS_FAILPOINT(FP_RECOVER_SLOT);
	/* It may have died between freeing the slot and counting it down:
	 * the next holder of the table lock recounts. */
	__atomic_store_n(&s->hdr->live_suspect, 1, __ATOMIC_RELEASE);
	/* The holder may have died between its pin array and the slot's count. */
	sl->pins = pxs__pins_on(s, (uint32_t)(sl - s->slots));
	/* ... or after giving a future a block, before publishing it: the
	 * block (tagged with the dead process) goes to its reaper. */
	if (st == PXS_SLOT_PENDING || st == PXS_SLOT_ABANDONED) {
		sl->off = 0;
		sl->size = 0;
	}
	__atomic_fetch_add(&sl->seq, 1, __ATOMIC_RELEASE);
	return 0;
}

void
pxs__repair_orphans(struct pxs_store *s)
{
	if (pxs__trylock(s, &s->hdr->heap_lock, pxs__repair_heap, NULL) == 0)
		pxs__unlock(&s->hdr->heap_lock);
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		struct pxs_seg_slot *sl = &s->slots[i];
		if (pxs__trylock(s, &sl->lock, repair_slot, sl) == 0)
			pxs__slot_unlock_wake(s, i);
	}
	/* Last: a repaired slot asks for a recount under the table lock. */
	if (pxs__trylock(s, &s->hdr->table_lock, repair_table, NULL) == 0) {
		if (__atomic_load_n(&s->hdr->live_suspect, __ATOMIC_ACQUIRE))
			recount_live(s);
		pxs__unlock(&s->hdr->table_lock);
	}
}

int
pxs__table_lock(struct pxs_store *s, const struct timespec *deadline)
{
	return pxs__lock(s, &s->hdr->table_lock, deadline, repair_table, NULL);
}

int
pxs__slot_lock(struct pxs_store *s, uint32_t idx,
	       const struct timespec *deadline)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	int rc = pxs__lock(s, &sl->lock, deadline, repair_slot, sl);
	if (rc != 0)
		return rc;
	/* Atomic, relaxed: the slot lock orders every state change but
	 * sweep()'s TOMB -> EMPTY, made under the table lock alone. */
	if (PXS_UNLIKELY(__atomic_load_n(&sl->state, __ATOMIC_RELAXED) >=
			 PXS_SLOT_NSTATES)) {
		pxs__unlock(&sl->lock);
		return -EPROTO;
	}
	return 0;
}

int
pxs__lock_key(struct pxs_store *s, pxs_key key,
	      const struct timespec *deadline, uint32_t *idx)
{
	int rc = pxs__table_find(s, key, idx);
	if (rc < 0)
		return rc;
	if ((rc = pxs__slot_lock(s, *idx, deadline)) < 0)
		return rc;
	if (!pxs__slot_is(&s->slots[*idx], key)) {
		pxs__slot_unlock(s, *idx);
		return -ENOENT;
	}
	return 0;
}

int
pxs__slot_is(const struct pxs_seg_slot *sl, pxs_key k)
{
	/* Relaxed: see pxs__slot_lock(). */
	return is_live(__atomic_load_n(&sl->state, __ATOMIC_RELAXED)) &&
	       sl->key_lo == k.lo && sl->key_hi == k.hi;
}

int
pxs__slot_state(const struct pxs_seg_slot *sl)
{
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_RELAXED);
	return st < PXS_SLOT_NSTATES ? (int)st : -EPROTO;
}

void
pxs__slot_set_state(struct pxs_seg_slot *sl, uint32_t state)
{
	__atomic_store_n(&sl->state, state, __ATOMIC_RELEASE);
	__atomic_fetch_add(&sl->seq, 1,
			   __ATOMIC_RELEASE); /* pairs with the waiter's read */
}

void
pxs__slot_unlock_wake(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	/* Waiters deregister without the lock (pxs_future_wait()). */
	uint32_t waiters = __atomic_load_n(&sl->waiters, __ATOMIC_RELAXED);
	pxs__unlock(&sl->lock);
	/* Wake after unlocking, so that woken waiters do not pile on a lock
     * we still hold. A waiter that registered after we read `waiters`
     * read the new seq and will not sleep. */
	if (waiters)
		pxs__futex_wake_all(&sl->seq);
}

static int
insert(struct pxs_store *s, pxs_key k, uint32_t state, uint64_t off,
       uint64_t size, uint32_t owner, uint32_t *idx)
{
	int rc = pxs__table_lock(s, NULL);
	if (rc < 0)
		return rc;
	PXS_FAILPOINT(FP_INSERT_LOCKED);
	if (PXS_UNLIKELY(__atomic_load_n(&s->hdr->live_suspect,
					 __ATOMIC_ACQUIRE)))
		recount_live(s);
	uint32_t h = home(s, k), target = UINT32_MAX, i;
	for (i = 0; i < s->g.nslots; i++) {
		uint32_t j = (h + i) & s->mask;
		struct pxs_seg_slot *sl = &s->slots[j];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (st == PXS_SLOT_EMPTY || st == PXS_SLOT_TOMB) {
			if (target == UINT32_MAX)
				target = j;
			if (st == PXS_SLOT_EMPTY)
				break;
		} else if (is_live(st) && key_at(sl, k)) {
			rc = -EEXIST;
			goto out;
		}
	}
	/* The live count is a hint, kept by atomic adds outside the table
	 * lock on the free path; before it refuses an insertion, make it
	 * exact. */
	if (target != UINT32_MAX &&
	    __atomic_load_n(&s->hdr->live, __ATOMIC_ACQUIRE) >= s->g.capacity)
		recount_live(s);
	if (target == UINT32_MAX ||
	    __atomic_load_n(&s->hdr->live, __ATOMIC_ACQUIRE) >= s->g.capacity) {
		rc = -ENOSPC;
		goto out;
	}
	struct pxs_seg_slot *sl = &s->slots[target];
	if ((rc = pxs__slot_lock(s, target, NULL)) < 0)
		goto out;
	/* Slots leave EMPTY/TOMB only under the table lock, which we hold. */
	sl->key_hi = k.hi;
	sl->key_lo = k.lo;
	sl->off = off;
	sl->size = size;
	sl->pins = 0;
	__atomic_store_n(&sl->waiters, 0, __ATOMIC_RELAXED);
	sl->owner = owner;
	sl->created_ns = pxs__now_ns(CLOCK_REALTIME);
	PXS_FAILPOINT(FP_INSERT_SLOT_LOCKED);
	__atomic_fetch_add(&s->hdr->live, 1, __ATOMIC_RELAXED);
	pxs__slot_set_state(sl, state);
	PXS_FAILPOINT(FP_INSERT_AFTER_PUBLISH);
	pxs__slot_unlock(s, target);
	*idx = target;
out:
	pxs__unlock(&s->hdr->table_lock);
	return rc;
}

int
pxs__table_insert(struct pxs_store *s, pxs_key k, uint32_t state, uint64_t off,
		  uint64_t size, uint32_t owner, uint32_t *idx)
{
	int rc = insert(s, k, state, off, size, owner, idx);
	if (rc == -ENOSPC && pxs__reap(s) > 0) /* dead processes held slots */
		rc = insert(s, k, state, off, size, owner, idx);
	return rc;
}

uint64_t
pxs__slot_free(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint64_t off = sl->off;
	if (off) /* if we die between unpublishing and freeing, our reaper frees it */
		pxs__block_claim(s, off);
	sl->gen++;
	sl->off = 0;
	sl->owner = 0;
	pxs__slot_set_state(sl, PXS_SLOT_TOMB);
	__atomic_fetch_sub(&s->hdr->live, 1, __ATOMIC_RELAXED);
	return off;
}

/* If the slot after idx is EMPTY, no key lives beyond the run of
 * tombstones ending at idx: turn that run into EMPTY slots, under the
 * table lock so that no insertion is choosing among them. */
static void
sweep(struct pxs_store *s, uint32_t idx)
{
	const struct pxs_seg_slot *next = &s->slots[(idx + 1) & s->mask];
	if (__atomic_load_n(&next->state, __ATOMIC_ACQUIRE) != PXS_SLOT_EMPTY)
		return;
	if (pxs__table_lock(s, NULL) < 0)
		return;
	if (__atomic_load_n(&next->state, __ATOMIC_ACQUIRE) == PXS_SLOT_EMPTY) {
		uint32_t j = idx;
		for (uint32_t n = 0; n < s->g.nslots;
		     n++, j = (j - 1) & s->mask) {
			if (__atomic_load_n(&s->slots[j].state,
					    __ATOMIC_ACQUIRE) != PXS_SLOT_TOMB)
				break;
			__atomic_store_n(&s->slots[j].state, PXS_SLOT_EMPTY,
					 __ATOMIC_RELEASE);
		}
	}
	pxs__unlock(&s->hdr->table_lock);
}

int
pxs__slot_reclaim(struct pxs_store *s, uint32_t idx, uint64_t off)
{
	int rc = off ? pxs__block_free(s, off) : 0;
	sweep(s, idx);
	return rc;
}
