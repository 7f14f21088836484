/* slot.c - the slot hash table's lookup and its slot locks.
 *
 * Owns: probing, the lock-free lookup, slot locks (with the repair of a
 * slot whose lock holder died) and the publishing of a slot's state.
 * Insertion, the live count, the sweep and freeing are table.c's.
 *
 * HOW IT WORKS. Open addressing with linear probing over nslots slots, a
 * power of two at least twice the capacity, so the load stays at or below
 * one half. A key's home is pxs__home() (keys are random or XXH3 output).
 *
 * LOCKING. Lookups take no lock: they walk the probe sequence reading each
 * slot's state (acquire) and key until an EMPTY slot. A hit is only a hint:
 * the caller locks the slot and rechecks key and state under the lock
 * (pxs__slot_is). Every change of a slot's state happens under the slot's
 * lock. Lock order: the table lock, then slot locks (at most two, in index
 * order: table.c), then the heap lock.
 *
 * A lookup racing an insertion or a free may see a torn key and skip the
 * slot; that only linearises it before the concurrent change.
 */
#include "internal.h"

/* Walk k's probe sequence in table t; stop at the first slot that holds k
 * in want_state (0: live and not expired) for owner. */
static int
probe_tab(struct pxs_store *s, uint32_t t, pxs_key k, uint32_t want_state,
	  uint32_t owner, uint32_t *idx)
{
	const struct pxs_seg_slot *tab = s->tab[t];
	uint32_t n = pxs__tab_slots(s, t), mask = n - 1,
		 h = pxs__hash(k) & mask;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = (h + i) & mask;
		const struct pxs_seg_slot *sl = &tab[j];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (st == PXS_SLOT_EMPTY)
			return -ENOENT;
		if (!pxs__slot_has_key(sl, k))
			continue;
		if (want_state
			    ? st == want_state &&
				      __atomic_load_n(&sl->owner,
						      __ATOMIC_RELAXED) == owner
			    : pxs__state_live(st) && !pxs__slot_expired(sl)) {
			*idx = pxs__tab_base(s, t) + j;
			return 0;
		}
	}
	return -ENOENT;
}

/* Probe every table, the newest first: that is where keys go now. A
 * chain the header no longer describes validly (a scribbled count) is
 * probed as far as this handle validated it. */
static int
probe(struct pxs_store *s, pxs_key k, uint32_t want_state, uint32_t owner,
      uint32_t *idx)
{
	pxs__chain_sync(s);
	for (uint32_t t = pxs__ntab(s); t-- > 0;)
		if (probe_tab(s, t, k, want_state, owner, idx) == 0)
			return 0;
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

/* Repair after a slot lock's holder died. Every operation publishes its
 * effect with a single store of the state word, after the fields it
 * covers, and frees a block only after unpublishing it, so the slot is
 * always either before or after the dead operation. What can be left is an
 * invalid state word (a corruptor, not a crash), a block allocated for a
 * publication that never happened, or an evicted value not yet freed (the
 * reaper frees both). Wake waiters so that they recheck. */
static int
repair_slot(struct pxs_store *s, void *arg)
{
	uint32_t idx = (uint32_t)(uintptr_t)arg;
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (st >= PXS_SLOT_NSTATES)
		return -EPROTO;
	PXS_FAILPOINT(FP_RECOVER_SLOT);
	/* It may have died between a slot change and the live count: the
	 * next insertion recounts (table.c). */
	__atomic_store_n(&s->hdr->live_suspect, 1, __ATOMIC_RELEASE);
	/* It may have died after giving a future a block, before publishing
	 * it: the block (tagged with the dead process) goes to its reaper.
	 * (Evicted values it left unfreed, the reaper frees too.) */
	if (st == PXS_SLOT_PENDING || st == PXS_SLOT_ABANDONED) {
		sl->off = 0;
		sl->size = 0;
	}
	/* It may have died between its wait record and the count. */
	pxs__waits_recount_slot(s, idx);
	__atomic_fetch_add(&sl->seq, 1, __ATOMIC_RELEASE);
	return 0;
}

void
pxs__slot_locks_repair(struct pxs_store *s)
{
	for (uint32_t i = 0; i < pxs__nslots(s); i++) {
		struct pxs_seg_slot *sl = pxs__slot(s, i);
		if (pxs__trylock(s, &sl->lock, repair_slot, (void *)(uintptr_t)i) == 0)
			pxs__slot_unlock_wake(s, i);
	}
}

/* Just locked: refuse (unlocked) a slot whose state word is not a state. */
static int
valid_locked(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (PXS_UNLIKELY(__atomic_load_n(&sl->state, __ATOMIC_RELAXED) >=
			 PXS_SLOT_NSTATES)) {
		pxs__unlock(&sl->lock);
		return -EPROTO;
	}
	return 0;
}

int
pxs__slot_lock(struct pxs_store *s, uint32_t idx,
	       const struct timespec *deadline)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	int rc = pxs__lock(s, &sl->lock, deadline, repair_slot, (void *)(uintptr_t)idx);
	return rc == 0 ? valid_locked(s, idx) : rc;
}

int
pxs__slot_trylock(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	int rc = pxs__trylock(s, &sl->lock, repair_slot, (void *)(uintptr_t)idx);
	return rc == 0 ? valid_locked(s, idx) : rc;
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
	if (!pxs__slot_is(pxs__slot(s, *idx), key)) {
		pxs__slot_unlock(s, *idx);
		return -ENOENT;
	}
	if (pxs__slot_expired(pxs__slot(s, *idx))) {
		pxs__slot_unlock(s, *idx); /* absent from its deadline on */
		return -ENOENT;
	}
	return 0;
}

int
pxs__slot_is(const struct pxs_seg_slot *sl, pxs_key k)
{
	/* Relaxed: the slot lock orders every state change. */
	return pxs__state_live(__atomic_load_n(&sl->state, __ATOMIC_RELAXED)) &&
	       sl->key_lo == k.lo && sl->key_hi == k.hi;
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
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	/* Waiters deregister without the lock (pxs_future_wait()). */
	uint32_t waiters = __atomic_load_n(&sl->waiters, __ATOMIC_RELAXED);
	pxs__unlock(&sl->lock);
	/* Wake after unlocking, so that woken waiters do not pile on a lock
     * we still hold. A waiter that registered after we read `waiters`
     * read the new seq and will not sleep. */
	if (waiters)
		pxs__futex_wake_all(&sl->seq);
}

