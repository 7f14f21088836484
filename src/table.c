/* table.c - the slot hash table: lookup, slot locks, freeing, repair.
 *
 * Owns: probing, the slot state machine's bookkeeping on the way out (gen,
 * tombstones) and the repair of a slot whose lock holder died. Insertion,
 * the live count and the tombstone sweep are insert.c's; payloads are
 * store.c's and block.c's; waiting is future.c's.
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
 * order: insert.c), then the heap lock.
 *
 * A lookup racing an insertion or a free may see a torn key and skip the
 * slot; that only linearises it before the concurrent change.
 */
#include "internal.h"

/* Walk k's probe sequence; stop at the first slot where match() holds. */
static int
probe(struct pxs_store *s, pxs_key k, uint32_t want_state, uint32_t owner,
      uint32_t *idx)
{
	uint32_t h = pxs__home(s, k);
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		uint32_t j = (h + i) & s->mask;
		const struct pxs_seg_slot *sl = &s->slots[j];
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
	struct pxs_seg_slot *sl = arg;
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (st >= PXS_SLOT_NSTATES)
		return -EPROTO;
	PXS_FAILPOINT(FP_RECOVER_SLOT);
	/* It may have died between a slot change and the live count: the
	 * next insertion recounts (insert.c). */
	__atomic_store_n(&s->hdr->live_suspect, 1, __ATOMIC_RELEASE);
	/* It may have died after giving a future a block, before publishing
	 * it: the block (tagged with the dead process) goes to its reaper.
	 * (Evicted values it left unfreed, the reaper frees too.) */
	if (st == PXS_SLOT_PENDING || st == PXS_SLOT_ABANDONED) {
		sl->off = 0;
		sl->size = 0;
	}
	/* It may have died between its wait record and the count. */
	pxs__waits_recount_slot(s, (uint32_t)(sl - s->slots));
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
	pxs__table_repair_orphan(s);
}

/* Just locked: refuse (unlocked) a slot whose state word is not a state. */
static int
valid_locked(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
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
	struct pxs_seg_slot *sl = &s->slots[idx];
	int rc = pxs__lock(s, &sl->lock, deadline, repair_slot, sl);
	return rc == 0 ? valid_locked(s, idx) : rc;
}

int
pxs__slot_trylock(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	int rc = pxs__trylock(s, &sl->lock, repair_slot, sl);
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
	if (!pxs__slot_is(&s->slots[*idx], key)) {
		pxs__slot_unlock(s, *idx);
		return -ENOENT;
	}
	if (pxs__slot_expired(&s->slots[*idx])) {
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

uint64_t
pxs__slot_free(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint64_t off = sl->off;
	if (off) /* if we die between unpublishing and freeing, our reaper frees it */
		pxs__block_claim(s, off);
	/* Atomic: lock-free pins read gen and off (store.c, PINS). */
	__atomic_store_n(&sl->gen, sl->gen + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->off, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->owner, 0, __ATOMIC_RELAXED);
	pxs__slot_set_state(sl, PXS_SLOT_TOMB);
	__atomic_fetch_sub(&s->hdr->live, 1, __ATOMIC_RELAXED);
	return off;
}

int
pxs__slot_reclaim(struct pxs_store *s, uint32_t idx, uint64_t off)
{
	int rc = off ? pxs__block_free(s, off) : 0;
	pxs__table_sweep(s, idx);
	return rc;
}
