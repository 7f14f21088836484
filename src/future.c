/* future.c - futures: new, set, reserve/commit, claim, wait, done.
 *
 * Owns: the future half of the slot state machine (ownership: claim and
 * disown) and the wait loop.
 *
 *            new               set / commit
 *   (none) -------> PENDING ---------------------> READY --evict--> (gone or
 *                    |  ^ \ reserve                 ^                EVICTED
 *                    |  |  `-------> RESERVED ------'                while pinned)
 *     owner dies     |  |               |  owner dies
 *                    v  |               v
 *                  ABANDONED <----------'     evict of PENDING/ABANDONED: gone,
 *                                              waiters get -ECANCELED
 *
 * THE WAIT LOOP. Under the slot lock a waiter checks the state; while it is
 * PENDING or RESERVED it checks that the owner is alive (procs.c), counts
 * itself in `waiters`, reads the futex word `seq`, unlocks and sleeps until
 * `seq` changes or its slice ends. Every state change bumps `seq` under the
 * lock, and the writer calls FUTEX_WAKE after unlocking, so no wake-up is
 * lost: a set that happens between the waiter's unlock and its futex call
 * has already changed `seq`, and the kernel returns at once. Slices last at
 * most PXS_LIVENESS_SLICE_MS: the kernel wakes nobody when a producer dies,
 * so the waiter must look. Whoever first sees the owner dead marks the
 * future ABANDONED and wakes the rest.
 *
 * A waiter remembers the slot's generation: if the slot is freed (evict)
 * while it sleeps, the generation changes and it returns -ECANCELED.
 *
 * SPINNING. With a spin budget (pxs_future_wait_spin, pxs_options.spin_us)
 * the first round polls `seq` with the lock released, for that long,
 * before it registers and sleeps: on a virtual machine the kernel needs
 * tens of microseconds to wake a waiter on an idle CPU, a poll sees the
 * store within one. The spinner is not counted in `waiters`, so a setter
 * that finds only spinners skips the FUTEX_WAKE system call.
 */
#include "internal.h"

#include <string.h>

/* The error for a future in a state where a value cannot be written. */
static int
not_pending(struct pxs_store *s, uint32_t idx)
{
	switch (pxs__slot(s, idx)->state) {
	case PXS_SLOT_READY:
		return -EALREADY;
	case PXS_SLOT_RESERVED:
		return -EBUSY;
	case PXS_SLOT_ABANDONED:
		return -EOWNERDEAD;
	default:
		return 0;
	}
}

int
pxs__shm_future_new_at(pxs_store *s, pxs_key key)
{
	int rc = pxs__enter_key(s, key);
	if (rc < 0)
		return rc;
	uint32_t idx;
	return pxs__insert_reaping(s, key, PXS_SLOT_PENDING, 0, 0, s->token,
				   &idx);
}

int
pxs__shm_future_new(pxs_store *s, pxs_key *key_out)
{
	if (!s || !key_out)
		return -EINVAL;
	for (;;) {
		pxs_key k = pxs__key_random();
		int rc = pxs__shm_future_new_at(s, k);
		if (rc != -EEXIST) {
			if (rc == 0)
				*key_out = k;
			return rc;
		}
	}
}

/* Publish a value in slot idx (locked): READY, no owner, wake after unlock. */
static void
publish(struct pxs_store *s, uint32_t idx, enum pxs_failpoint after)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	sl->owner = 0;
	pxs__slot_set_state(sl, PXS_SLOT_READY);
	PXS_FAILPOINT(after);
	pxs__count(s, PXS_CTR_PUTS);
	pxs__slot_unlock_wake(s, idx);
}

/* Lock key's future, which must be pending, and allocate it a block of
 * size bytes (not published yet); on failure nothing stays locked, so that
 * a caller whose heap is full may reap dead processes and try once more
 * (PXS_REAP_RETRY): the reaper takes slot locks while it holds the
 * process-table lock. */
static int
lock_pending_with_block(struct pxs_store *s, pxs_key key, size_t size,
			uint32_t *idx, uint64_t *off)
{
	int rc = pxs__lock_key(s, key, NULL, idx);
	if (rc < 0)
		return rc;
	if ((rc = not_pending(s, *idx)) == 0 &&
	    (rc = pxs__block_alloc(s, size, off)) == 0)
		return 0;
	pxs__slot_unlock(s, *idx);
	return rc;
}

int
pxs__shm_future_set(pxs_store *s, pxs_key key, const void *data, size_t size)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	uint64_t off;
	if (rc < 0)
		return rc;
	if (!data && size)
		return -EINVAL;
	PXS_REAP_RETRY(s, rc,
		       lock_pending_with_block(s, key, size, &idx, &off));
	if (rc < 0)
		return rc;
	PXS_FAILPOINT(FP_SET_LOCKED);
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (size)
		memcpy(s->base + off, data, size);
	sl->off = off;
	sl->size = size;
	PXS_FAILPOINT(FP_SET_AFTER_ALLOC);
	publish(s, idx, FP_SET_AFTER_PUBLISH);
	return 0;
}

int
pxs__shm_future_reserve(pxs_store *s, pxs_key key, size_t size, void **buf)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	uint64_t off;
	if (rc < 0)
		return rc;
	if (!buf)
		return -EINVAL;
	PXS_REAP_RETRY(s, rc,
		       lock_pending_with_block(s, key, size, &idx, &off));
	if (rc < 0)
		return rc;
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	sl->off = off;
	sl->size = size;
	sl->owner = s->token;
	PXS_FAILPOINT(FP_RESERVE_AFTER_ALLOC);
	pxs__slot_set_state(sl, PXS_SLOT_RESERVED);
	PXS_FAILPOINT(FP_RESERVE_AFTER_PUBLISH);
	*buf = s->base + (off ? off : s->g.heap_off);
	pxs__slot_unlock(s, idx);
	return 0;
}

/* The reservation's key was evicted: drop our hold on the block, which
 * is freed unless views pin it. 0 if there was such a reservation. */
static int
commit_evicted(struct pxs_store *s, pxs_key key)
{
	uint32_t idx;
	int rc = pxs__table_find_evicted(s, key, s->token, &idx);
	if (rc < 0)
		return -ENOENT;
	if ((rc = pxs__slot_lock(s, idx, NULL)) < 0)
		return rc;
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (sl->state != PXS_SLOT_EVICTED || sl->owner != s->token ||
	    sl->key_lo != key.lo || sl->key_hi != key.hi) {
		pxs__slot_unlock(s, idx);
		return -ENOENT;
	}
	sl->owner = 0;
	uint64_t off = 0;
	bool freed = pxs__pins_on(s, idx) == 0;
	if (freed)
		off = pxs__slot_tombstone(s, idx);
	pxs__slot_unlock_reclaim(s, idx, false, freed, off);
	return 0;
}

int
pxs__shm_future_commit(pxs_store *s, pxs_key key)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	if (rc < 0)
		return rc;
	rc = pxs__lock_key(s, key, NULL, &idx);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc == 0) {
		const struct pxs_seg_slot *sl = pxs__slot(s, idx);
		if (sl->state == PXS_SLOT_RESERVED && sl->owner == s->token) {
			PXS_FAILPOINT(FP_COMMIT_BEFORE_PUBLISH);
			publish(s, idx, FP_COMMIT_AFTER_PUBLISH);
			return 0;
		}
		rc = sl->state == PXS_SLOT_RESERVED ? -EPERM
		     : sl->state == PXS_SLOT_PENDING ? -EAGAIN
							 : not_pending(s, idx);
		pxs__slot_unlock(s, idx);
	}
	/* Our reservation may have been evicted (and the key used again
	 * since): then its block is still ours to give back. */
	return commit_evicted(s, key) == 0 ? -ENOENT : rc;
}

int
pxs__shm_future_claim(pxs_store *s, pxs_key key)
{
	uint32_t idx;
	int rc = pxs__enter_lock_key(s, key, &idx);
	if (rc < 0)
		return rc;
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (sl->state == PXS_SLOT_PENDING)
		sl->owner = s->token;
	else if (!(sl->state == PXS_SLOT_RESERVED && sl->owner == s->token))
		rc = not_pending(s, idx);
	pxs__slot_unlock(s, idx);
	return rc;
}

/* The opening and the end of the calls that look at a future's status:
 * lock key's slot and resolve the status (pxs__slot_resolve: 1 value, 0
 * pending, -EOWNERDEAD abandoned, found so now if its owner died); then,
 * under the lock, act() turns the status into the result (NULL: the status
 * is the result). Unlocks, waking the waiters if the future was found
 * abandoned just now. */
static int
with_status(pxs_store *s, pxs_key key,
	    int (*act)(struct pxs_store *, uint32_t, int))
{
	uint32_t idx;
	int rc = pxs__enter_lock_key(s, key, &idx);
	if (rc < 0)
		return rc;
	bool changed = false;
	rc = pxs__slot_resolve(s, idx, &changed);
	if (act)
		rc = act(s, idx, rc);
	pxs__slot_unlock_wake_if(s, idx, changed);
	return rc;
}

/* Give up ownership of a pending future: from now on no process's death
 * abandons it (an ownerless future is set by whoever sets it, cancelled by
 * evict). The owner word is 0, as for a published value, which the liveness
 * check already reads as "nobody to watch". A future whose owner is found
 * dead here is abandoned first, as any look at it would. */
static int
disown_locked(struct pxs_store *s, uint32_t idx, int status)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	if (status == 1)
		return -EALREADY;
	if (status != 0)
		return status;
	if (sl->state == PXS_SLOT_RESERVED)
		return -EBUSY; /* a reservation is its producer's until commit */
	if (sl->owner != 0 && sl->owner != s->token)
		return -EPERM;
	sl->owner = 0;
	return 0;
}

int
pxs__shm_future_disown(pxs_store *s, pxs_key key)
{
	return with_status(s, key, disown_locked);
}

int
pxs__shm_future_done(pxs_store *s, pxs_key key)
{
	return with_status(s, key, NULL);
}

/* The part of a wait on key's slot, which is locked (idx). An eviction or
 * expiry while we sleep cancels the wait (-ECANCELED). */
static int
wait_slot(struct pxs_store *s, pxs_key key, uint32_t idx, long timeout_ms,
	  uint64_t spin_ns, uint64_t end_ns, const struct timespec *dl,
	  pxs_view *v)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	const uint32_t gen = sl->gen;
	bool changed = false;
	struct timespec slice;
	int rc;
	for (;;) {
		if (sl->gen != gen || !pxs__slot_is(sl, key)) {
			rc = -ECANCELED; /* evicted while we slept */
			break;
		}
		uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
		if (pxs__slot_expired_at(sl, now)) {
			/* Expired while we slept: it goes now, as if evicted. */
			pxs__expire_locked(s, idx);
			return -ECANCELED;
		}
		if ((rc = pxs__slot_resolve(s, idx, &changed)) != 0) {
			if (rc == 1)
				rc = pxs__view_pin(s, idx, v);
			break;
		}
		if (timeout_ms == 0 || now >= end_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		uint64_t exp = __atomic_load_n(&sl->expires_ns,
					       __ATOMIC_RELAXED),
			 end = exp && exp < end_ns ? exp : end_ns;
		if (spin_ns) {
			/* Poll once, unregistered (a setter that sees no
			 * waiters makes no wake-up call), then look again. */
			uint32_t seq =
				__atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
			uint64_t until = now + spin_ns;
			spin_ns = 0;
			pxs__slot_unlock(s, idx);
			pxs__futex_spin(&sl->seq, seq, until < end ? until : end);
			if ((rc = pxs__slot_lock(s, idx, dl)) < 0)
				return rc;
			continue;
		}
		/* r < 0: uncounted (all this process's records taken), but
		 * woken all the same (waits.c). */
		int r = pxs__wait_register(s, idx);
		uint64_t wake = now + (uint64_t)PXS_LIVENESS_SLICE_MS * 1000000u;
		pxs__ts_from_ns(&slice, wake < end ? wake : end);
		uint32_t seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
		PXS_FAILPOINT(FP_WAIT_REGISTERED);
		pxs__slot_unlock(s, idx);
		pxs__futex_wait(&sl->seq, seq, &slice);
		rc = pxs__slot_lock(s, idx, dl);
		/* Under the lock when we can (waits.c); without it if the
		 * lock timed out, so as not to leave a count behind. */
		if (r >= 0)
			pxs__wait_unregister(s, idx, gen, r);
		if (rc < 0)
			return rc;
		PXS_FAILPOINT(FP_WAIT_WOKEN_BEFORE_PIN);
	}
	/* Wake the others only if we changed the state (abandoned it):
	 * waking them after a mere pin would make every waiter of a fan-out
	 * wake all the others again. */
	pxs__slot_unlock_wake_if(s, idx, changed);
	if (rc == 0)
		PXS_FAILPOINT(FP_WAIT_PINNED_BEFORE_RETURN);
	return rc;
}

int
pxs__shm_future_wait_spin(pxs_store *s, pxs_key key, long timeout_ms,
			  long spin_us, pxs_view *v)
{
	int rc = pxs__enter_key(s, key);
	uint32_t idx;
	if (rc < 0)
		return rc;
	if (!v || spin_us > (long)PXS_MAX_SPIN_US)
		return -EINVAL;
	uint64_t spin_ns = (uint64_t)(spin_us < 0 ? s->spin_us : spin_us) *
			   1000u;
	pxs__count(s, PXS_CTR_WAITS);
	struct timespec deadline;
	const struct timespec *dl;
	uint64_t end_ns = pxs__wait_deadline(timeout_ms, &deadline, &dl);
	/* An absent key: with a timeout, sleep on its doorbell until it is
	 * created (bell.c), then wait on its slot. */
	while ((rc = pxs__lock_key(s, key, dl, &idx)) == -ENOENT &&
	       timeout_ms != 0) {
		if ((rc = pxs__bell_wait(s, key, end_ns)) < 0)
			break;
	}
	if (rc == 0)
		rc = wait_slot(s, key, idx, timeout_ms, spin_ns, end_ns, dl, v);
	if (rc == -ETIMEDOUT)
		pxs__count(s, PXS_CTR_TIMEOUTS);
	return rc;
}
