/* expire.c - expiry: a deadline after which a key is gone, served without
 * any background thread.
 *
 * Owns: what a deadline does (pxs_expire() in store.c only stores it):
 * eviction under the slot lock (shared with pxs_evict), and reclaiming
 * slots whose deadline has passed.
 *
 * HOW IT WORKS. pxs_expire() stores a CLOCK_MONOTONIC deadline in the
 * slot (`expires_ns`; that clock is one for all processes of a machine).
 * From that moment on every lookup treats the slot as absent: the
 * lock-free probe (slot.c) skips a slot whose deadline has passed, so
 * pxs_get, pxs_exists and the locked paths all miss it, and an insertion
 * of the same key puts a new slot beside it (table.c) rather than fail
 * with -EEXIST. Nothing happens at the deadline itself; the slot is
 * evicted, exactly as pxs_evict() does (pinned views stay valid, a pending
 * future's waiters get -ECANCELED), by whoever meets it first afterwards:
 * a waiter of its future (who sleeps no later than the deadline), an
 * insertion whose probe passes it (its caller reclaims it, once it holds
 * no lock), the reaper, and pxs_reap(). Reading the clock costs a lookup
 * only for slots that have a deadline: the field sits in the line the
 * probe reads anyway.
 *
 * A deadline once passed is final: the key is absent, so nothing can find
 * the slot to change it; only eviction takes it out.
 */
#include "internal.h"

bool
pxs__slot_evict(struct pxs_store *s, uint32_t idx, uint64_t *off)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	bool reserved = sl->state == PXS_SLOT_RESERVED;
	/* Evicted first, then the pins counted (pins.c, PINS). A pinned
	 * value stays for its views, a reserved one for the producer writing
	 * into it (its token stays in `owner`; a READY slot has none): the
	 * last release, or that commit, frees it. */
	pxs__slot_set_state(sl, PXS_SLOT_EVICTED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pxs__count(s, PXS_CTR_EVICTIONS);
	if (reserved || pxs__pins_on(s, idx) != 0)
		return false;
	/* Gone at once; a pending future's waiters see the new gen. */
	*off = pxs__slot_tombstone(s, idx);
	PXS_FAILPOINT(FP_EVICT_AFTER_UNPUBLISH);
	return true;
}

void
pxs__expire_locked(struct pxs_store *s, uint32_t idx)
{
	uint64_t off = 0;
	bool freed = pxs__slot_evict(s, idx, &off);
	pxs__slot_unlock_reclaim(s, idx, true, freed, off);
}

bool
pxs__reclaim_if_expired(struct pxs_store *s, uint32_t idx)
{
	if (!pxs__slot_expired(pxs__slot(s, idx)) ||
	    pxs__slot_lock(s, idx, NULL) < 0)
		return false;
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (!pxs__state_live(sl->state) || !pxs__slot_expired(sl)) {
		pxs__slot_unlock(s, idx);
		return false;
	}
	pxs__expire_locked(s, idx);
	return true;
}

int
pxs__reclaim_expired(struct pxs_store *s)
{
	int n = 0;
	for (uint32_t i = 0; i < pxs__nslots(s); i++) {
		uint32_t st = __atomic_load_n(&pxs__slot(s, i)->state,
					      __ATOMIC_ACQUIRE);
		if (pxs__state_live(st) && pxs__reclaim_if_expired(s, i))
			n++;
	}
	return n;
}
