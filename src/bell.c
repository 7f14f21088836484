/* bell.c - doorbells: where a waiter for a key that does not exist yet
 * sleeps, and how the key's creator wakes it.
 *
 * Owns: the header's PXS_BELLS doorbells (hdr->bells) and waiting on them.
 *
 * A PLACE TO SLEEP FOR AN ABSENT KEY. A future's waiters sleep on its
 * slot's futex word; a key that is not in the table has no slot. Its
 * waiters sleep on a doorbell instead, chosen by bits of the key that the
 * table's home slot does not use: a futex word `seq`, a count `waiters`,
 * and a robust lock that guards the count. Keys share bells, so a ring may
 * wake waiters for other keys; each looks its own key up again and sleeps
 * again if it is still absent.
 *
 * NO LOST WAKE-UP, NO COST WHEN NOBODY WAITS. An insertion of key k holds
 * k's home slot lock for its whole duration (table.c). A waiter for k
 * takes the same lock, counts itself in the bell (under the bell's lock),
 * reads the bell's `seq`, looks k up and, finding it absent, unlocks and
 * sleeps while `seq` is unchanged. The inserter, still holding the home
 * lock after publishing k, reads the bell's count: the home lock orders
 * the two, so either the waiter's lookup saw k, or the inserter sees the
 * count, bumps `seq` (under the home lock) and calls FUTEX_WAKE after
 * unlocking; a waiter that had not reached its futex call yet finds `seq`
 * changed. When nobody waits, an insertion reads one word of a line that
 * nobody writes, and makes no system call.
 *
 * WHAT A WAITER LEAVES BEHIND. One that wakes or gives up takes its count
 * back under the bell's lock: nothing. One that dies asleep leaves its
 * count in the bell and in its process's bell_waits[] (waits.c); the
 * reaper of that process subtracts it, so the worst it costs meanwhile is
 * a spare FUTEX_WAKE per creation of a key of that bell. A process that
 * dies holding a bell's lock leaves a count that the next locker recounts
 * from the processes' bell_waits[].
 */
#include "internal.h"

_Static_assert(PXS_BELLS == 64, "bells: the top 6 bits of key.hi");

/* The home slot (pxs__home) uses key.lo and bits 29..55 of key.hi at most
 * (PXS_MAX_CAPACITY): the top bits pick the bell, so that keys of one home
 * do not all share a bell. */
static uint32_t
bell_of(pxs_key k)
{
	return (uint32_t)(k.hi >> 58);
}

/* A dead holder may have died between its process's count and the bell's. */
static int
repair_bell(struct pxs_store *s, void *arg)
{
	uint32_t b = (uint32_t)(uintptr_t)arg;
	PXS_FAILPOINT(FP_RECOVER_BELL);
	__atomic_store_n(&s->hdr->bells[b].waiters, pxs__waits_on_bell(s, b, NULL),
			 __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->hdr->bells[b].seq, 1, __ATOMIC_RELEASE);
	return 0;
}

static int
bell_lock(struct pxs_store *s, uint32_t b, const struct timespec *deadline)
{
	return pxs__lock(s, &s->hdr->bells[b].lock, deadline, repair_bell,
			 (void *)(uintptr_t)b);
}

bool
pxs__bell_note(struct pxs_store *s, pxs_key k)
{
	struct pxs_seg_bell *bl = &s->hdr->bells[bell_of(k)];
	if (PXS_LIKELY(!__atomic_load_n(&bl->waiters, __ATOMIC_RELAXED)))
		return false;
	__atomic_fetch_add(&bl->seq, 1, __ATOMIC_RELEASE);
	return true;
}

void
pxs__bell_ring(struct pxs_store *s, pxs_key k)
{
	pxs__futex_wake_all(&s->hdr->bells[bell_of(k)].seq);
}

/* Under bell b's lock: count this thread (false: its process's count is
 * full, it sleeps uncounted). */
static bool
enlist(struct pxs_store *s, uint32_t b)
{
	uint16_t *mine = &s->procs[pxs__token_idx(s->token)].bell_waits[b];
	if (__atomic_load_n(mine, __ATOMIC_RELAXED) == UINT16_MAX)
		return false;
	__atomic_fetch_add(mine, 1, __ATOMIC_RELAXED);
	PXS_FAILPOINT(FP_BELL_RECORDED);
	__atomic_fetch_add(&s->hdr->bells[b].waiters, 1, __ATOMIC_RELAXED);
	return true;
}

/* Take the count back: under the bell's lock if we can get it. */
static void
delist(struct pxs_store *s, uint32_t b)
{
	struct pxs_seg_bell *bl = &s->hdr->bells[b];
	uint16_t *mine = &s->procs[pxs__token_idx(s->token)].bell_waits[b];
	bool locked = bell_lock(s, b, NULL) == 0;
	if (__atomic_load_n(&bl->waiters, __ATOMIC_RELAXED))
		__atomic_fetch_sub(&bl->waiters, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(mine, __ATOMIC_RELAXED))
		__atomic_fetch_sub(mine, 1, __ATOMIC_RELAXED);
	if (locked)
		pxs__unlock(&bl->lock);
}

int
pxs__bell_wait(struct pxs_store *s, pxs_key key, uint64_t end_ns)
{
	pxs__chain_sync(s);
	uint32_t ntab = pxs__ntab(s);
	uint32_t h = pxs__home(s, key), b = bell_of(key), idx;
	struct pxs_seg_bell *bl = &s->hdr->bells[b];
	struct timespec dl, *dlp = NULL;
	if (end_ns != UINT64_MAX) {
		pxs__ts_from_ns(&dl, end_ns);
		dlp = &dl;
	}
	int rc = pxs__slot_lock(s, h, dlp);
	if (rc < 0)
		return rc;
	if (pxs__table_find(s, key, &idx) == 0) {
		pxs__slot_unlock(s, h); /* it came meanwhile */
		return 0;
	}
	if ((rc = bell_lock(s, b, dlp)) < 0) {
		pxs__slot_unlock(s, h);
		return rc;
	}
	bool counted = enlist(s, b);
	uint32_t seq = __atomic_load_n(&bl->seq, __ATOMIC_ACQUIRE);
	pxs__unlock(&bl->lock);
	pxs__slot_unlock(s, h);
	/* The home we hold excludes inserters of the newest table we know
	 * of, not of one published since: an insertion there rings only if
	 * it sees our count, so look at the chain again after counting (the
	 * inserter fences between the chain and the bell: table.c). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->hdr->ntables, __ATOMIC_RELAXED) != ntab) {
		if (counted)
			delist(s, b);
		return 0; /* it grew: look again */
	}
	PXS_FAILPOINT(FP_BELL_ASLEEP);
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC), until = end_ns;
	if (!counted && now + 1000000u < until)
		until = now + 1000000u; /* uncounted: nobody rings for us */
	struct timespec ts;
	pxs__ts_from_ns(&ts, until);
	pxs__futex_wait(&bl->seq, seq, until == UINT64_MAX ? NULL : &ts);
	if (counted)
		delist(s, b);
	return pxs__now_ns(CLOCK_MONOTONIC) >= end_ns ? -ETIMEDOUT : 0;
}

bool
pxs__bell_drop(struct pxs_store *s, struct pxs_seg_proc *p,
	       const struct timespec *deadline)
{
	bool done = true;
	for (uint32_t b = 0; b < PXS_BELLS; b++) {
		if (!__atomic_load_n(&p->bell_waits[b], __ATOMIC_RELAXED))
			continue;
		int rc = bell_lock(s, b, deadline);
		if (rc < 0) {
			done = done && rc != -ETIMEDOUT;
			continue;
		}
		__atomic_store_n(&p->bell_waits[b], 0, __ATOMIC_RELAXED);
		PXS_FAILPOINT(FP_REAP_MID_WAITS);
		__atomic_store_n(&s->hdr->bells[b].waiters,
				 pxs__waits_on_bell(s, b, NULL), __ATOMIC_RELAXED);
		pxs__unlock(&s->hdr->bells[b].lock);
	}
	return done;
}

uint32_t
pxs__bell_waiters(struct pxs_store *s)
{
	uint32_t sum = 0;
	for (uint32_t b = 0; b < PXS_BELLS; b++)
		sum += __atomic_load_n(&s->hdr->bells[b].waiters,
				       __ATOMIC_RELAXED);
	return sum;
}

uint32_t
pxs__bell_check(struct pxs_store *s, const struct timespec *deadline,
		uint32_t *counted, uint32_t *recorded, uint32_t *dead,
		uint32_t *first_busy)
{
	/* One second at most for the whole scan, not one per bell: on a
	 * segment whose lock words are garbage or held by a stopped process
	 * every bell may be busy, and a check must still return. A bell
	 * whose lock is not had by then is tried once, and read without it
	 * (as a read-only handle reads every bell). */
	struct timespec dl;
	uint32_t skipped = 0;
	pxs__deadline(&dl, 1000);
	if (deadline && (deadline->tv_sec < dl.tv_sec ||
			 (deadline->tv_sec == dl.tv_sec &&
			  deadline->tv_nsec < dl.tv_nsec)))
		dl = *deadline;
	*counted = *recorded = *dead = 0;
	*first_busy = UINT32_MAX;
	for (uint32_t b = 0; b < PXS_BELLS; b++) {
		bool locked = bell_lock(s, b, &dl) == 0;
		if (!locked && skipped++ == 0)
			*first_busy = b;
		uint32_t c = __atomic_load_n(&s->hdr->bells[b].waiters,
					     __ATOMIC_RELAXED),
			 d, r = pxs__waits_on_bell(s, b, &d);
		if (locked)
			pxs__unlock(&s->hdr->bells[b].lock);
		*counted += c;
		*recorded += r;
		*dead += d;
	}
	return skipped;
}
