/* wait_any.c - one sleep for the first of many futures.
 *
 * Owns: pxs_future_wait_any(). It sits beside future.c and calls only the
 * slot, pin and futex layers below it.
 *
 * WHY FUTEX_WAITV. Every slot already has a futex word (`seq`) that each
 * state change bumps under the slot lock, with a FUTEX_WAKE after the
 * unlock when `waiters` is non-zero. futex_waitv(2) (Linux 5.16) sleeps on
 * up to 128 such words at once and returns when any of them is woken or no
 * longer holds the value read under its lock. So a waiter of many futures
 * needs nothing new in the segment and no cooperation from setters: it
 * registers in each slot's `waiters`, as a single waiter does, and sleeps
 * once. The alternative, a per-waiter doorbell word that setters ring,
 * would need a shared list of doorbells per slot (space, a lock, and a
 * cleanup when a waiter dies holding entries in it) and would slow every
 * set down by a walk over that list; it would lift the limit of 128, which
 * users with more futures can lift themselves by waiting on groups.
 *
 * THE LOOP. Each round locks the futures in order; a future that is set
 * (or abandoned, cancelled, expired, gone) ends the call with its index.
 * Otherwise the round registers in the slot's `waiters` (once per call),
 * reads `seq` and the expiry deadline under the lock and unlocks. After the
 * last one it sleeps on all the words until one changes, its deadline, the
 * first expiry deadline among the futures, or the end of a liveness
 * slice (the kernel wakes nobody when an owner dies, so we look, as
 * pxs_future_wait() does). Woken within a slice, it looks again only at
 * the futures whose word moved: checking an owner's liveness is a system
 * call, and 63 of them after every wake would cost ten times the wake. A
 * set that happens between a slot's unlock and the sleep has changed
 * `seq`, and the kernel returns at once: no lost wake-up. Registrations
 * go through the process's wait records (waits.c), so the counts stay
 * exact when a waiter dies; on the way out each is withdrawn under the
 * slot lock. A process has PXS_PROC_WAITS records: the futures beyond
 * what is free of them are watched uncounted, with the slot's
 * PXS_WAITERS_UNCOUNTED bit set so that their setters wake us all the
 * same (waits.c).
 */
#include "internal.h"

#include <linux/futex.h>

/* What one call remembers about each future it watches. */
struct watch {
	uint32_t idx; /* slot index, once found */
	uint32_t gen; /* slot generation when found */
	bool found;
	bool registered; /* pxs__wait_register() was called for it */
	int rec;         /* its wait record, or -1: uncounted (waits.c) */
	uint64_t exp;    /* its expiry deadline when last looked at, or 0 */
};

/* Withdraw registration w from its slot (not locked by us). */
static void
withdraw(struct pxs_store *s, struct watch *w)
{
	if (!w->registered)
		return;
	w->registered = false;
	if (w->rec < 0)
		return;
	int rc = pxs__slot_lock(s, w->idx, NULL);
	/* On a lock error the lock is not held: unregister anyway, so as not
	 * to leave a count behind, as pxs_future_wait does. */
	pxs__wait_unregister(s, w->idx, w->gen, w->rec);
	if (rc == 0)
		pxs__slot_unlock(s, w->idx);
}

/* Lock future i's slot (looking it up the first time). */
static int
lock_watch(struct pxs_store *s, pxs_key key, struct watch *w,
	   const struct timespec *dl)
{
	if (!w->found) {
		int rc = pxs__lock_key(s, key, dl, &w->idx);
		if (rc < 0)
			return rc;
		w->gen = pxs__slot(s, w->idx)->gen;
		w->found = true;
		return 0;
	}
	return pxs__slot_lock(s, w->idx, dl);
}

/* One look at future i under its lock: 1 if it ends the call (*rc set),
 * else 0 with *seq read and the slot registered if @p reg. */
static int
look(struct pxs_store *s, pxs_key key, struct watch *w, bool reg,
     const struct timespec *dl, uint32_t *seq, pxs_view *v, int *rc)
{
	if ((*rc = lock_watch(s, key, w, dl)) < 0)
		return 1;
	struct pxs_seg_slot *sl = pxs__slot(s, w->idx);
	bool changed = false;
	if (sl->gen != w->gen || !pxs__slot_is(sl, key)) {
		*rc = -ECANCELED; /* evicted while we slept */
	} else if (pxs__slot_expired(sl)) {
		/* Expired: it goes now, as if evicted (unlocks and wakes). */
		pxs__expire_locked(s, w->idx);
		*rc = -ECANCELED;
		return 1;
	} else if ((*rc = pxs__slot_resolve(s, w->idx, &changed)) == 1) {
		*rc = pxs__view_pin(s, w->idx, v);
	} else if (*rc == 0) {
		if (reg && !w->registered) {
			w->rec = pxs__wait_register(s, w->idx);
			w->registered = true;
		}
		*seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
		w->exp = __atomic_load_n(&sl->expires_ns, __ATOMIC_RELAXED);
		pxs__slot_unlock(s, w->idx);
		return 0;
	}
	/* Wake the others only if we changed the state (abandoned it). */
	pxs__slot_unlock_wake_if(s, w->idx, changed);
	return 1;
}

int
pxs__shm_future_wait_any(pxs_store *s, const pxs_key *keys, size_t n,
		    long timeout_ms, size_t *which, pxs_view *v)
{
	if (!s || !keys || !which || !v || n == 0 || n > PXS_WAIT_ANY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (pxs__key_is_zero(keys[i]))
			return -EINVAL;
	int rc = pxs__enter(s);
	if (rc < 0) {
		*which = n;
		return rc;
	}
	pxs__count(s, PXS_CTR_WAITS);
	struct watch w[PXS_WAIT_ANY_MAX] = {{0}};
	uint32_t seq[PXS_WAIT_ANY_MAX];
	uint32_t *words[PXS_WAIT_ANY_MAX];
	struct timespec deadline, slice;
	const struct timespec *dl;
	uint64_t end_ns = pxs__wait_deadline(timeout_ms, &deadline, &dl);
	size_t i = 0;
	bool full = true; /* look at every future, owners' liveness included */
	uint64_t slice_end = 0;
	for (;;) {
		for (i = 0; i < n; i++) {
			if (!full &&
			    __atomic_load_n(&pxs__slot(s, w[i].idx)->seq,
					    __ATOMIC_ACQUIRE) == seq[i])
				continue;
			if (look(s, keys[i], &w[i], timeout_ms != 0, dl,
				 &seq[i], v, &rc))
				goto done;
		}
		uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
		if (timeout_ms == 0 || now >= end_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		if (full)
			slice_end = now +
				    (uint64_t)PXS_LIVENESS_SLICE_MS * 1000000u;
		uint64_t until = slice_end < end_ns ? slice_end : end_ns;
		/* Sleep no later than the first deadline of a watched future
		 * (pxs_expire() moves the word, so a new one is seen). */
		bool expiry = false;
		for (size_t j = 0; j < n; j++)
			if (w[j].exp && w[j].exp < until)
				until = w[j].exp, expiry = true;
		pxs__ts_from_ns(&slice, until);
		for (size_t j = 0; j < n; j++)
			words[j] = &pxs__slot(s, w[j].idx)->seq;
		if ((rc = pxs__futex_waitv(words, seq, n, &slice)) == -ENOSYS)
			break;
		uint64_t woke = pxs__now_ns(CLOCK_MONOTONIC);
		full = woke >= slice_end || (expiry && woke >= until);
	}
done:
	for (size_t j = 0; j < n; j++)
		withdraw(s, &w[j]);
	*which = rc == -ETIMEDOUT || rc == -ENOSYS ? n : i;
	if (rc == -ETIMEDOUT)
		pxs__count(s, PXS_CTR_TIMEOUTS);
	return rc;
}
