/* table.c - putting keys into the slot table and taking them out.
 *
 * Owns: insertion, the capacity count (`hdr->live`), the table lock, the
 * insertion gate that whole-table scans close, the recount, the tombstone
 * sweep, freeing a slot (tombstone, then its block, then the sweep), and
 * the abandonment of a future whose producer died. Lookups and slot locks
 * are slot.c's. Insertion never reaps: its callers do (reap.c).
 *
 * The essays stand above what they explain: THE GATE, CAPACITY, NO GLOBAL
 * LOCK and DEADLOCK (insertion), THE SWEEP.
 */
#include "internal.h"

#include <sched.h>

#define SWEEP_MAX 32	    /**< tombstones one sweep may convert */
#define GATE_WAIT_MS 1000   /**< longest wait for insertions to drain */
#define GATE_LIVENESS_NS 1000000 /**< then ask whether the counted are alive */

/* ---- the gate ----------------------------------------------------------- */

/*
 * THE GATE. A recount and pxs_check() must see a table to which nothing is
 * being added. Each inserter counts itself in its process entry's
 * `inserting` (a line only its own process writes) and then reads
 * `hdr->insert_gate`; a scanner, holding the table lock, sets the gate and
 * waits until no live process is inserting (both sides use sequentially
 * consistent accesses, so one of them sees the other). An inserter that
 * finds the gate closed uncounts itself and waits on the table lock. The
 * wait ignores dead processes and gives up after GATE_WAIT_MS (a stopped
 * one), after which the scan's result is a snapshot rather than exact.
 */

static uint32_t *
my_count(struct pxs_store *s)
{
	return &s->procs[pxs__token_idx(s->token)].inserting;
}

/* Count this thread as inserting, unless a scan holds the gate closed: then
 * wait for it on the table lock and try again. */
static int
gate_enter(struct pxs_store *s)
{
	uint32_t *n = my_count(s);
	for (;;) {
		__atomic_fetch_add(n, 1, __ATOMIC_SEQ_CST);
		if (PXS_LIKELY(!__atomic_load_n(&s->hdr->insert_gate,
						__ATOMIC_SEQ_CST)))
			return 0;
		__atomic_fetch_sub(n, 1, __ATOMIC_RELEASE);
		int rc = pxs__table_lock(s, NULL);
		if (rc < 0)
			return rc;
		/* Only a holder of the table lock closes the gate, so a gate
		 * still closed now that we hold it is a scribbled word. */
		pxs__gate_open(s);
		pxs__unlock(&s->hdr->table_lock);
	}
}

static void
gate_leave(struct pxs_store *s)
{
	__atomic_fetch_sub(my_count(s), 1, __ATOMIC_RELEASE);
}

/* Is some live process inserting? After a short while, processes that
 * died inside an insertion (their count stays up) are asked about. */
static bool
insertions_under_way(struct pxs_store *s, bool ask_liveness)
{
	for (uint32_t i = 0; i < PXS_MAX_PROCS; i++) {
		const struct pxs_seg_proc *p = &s->procs[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
			    PXS_PROC_LIVE ||
		    !__atomic_load_n(&p->inserting, __ATOMIC_SEQ_CST))
			continue;
		if (!ask_liveness ||
		    pxs__proc_alive(s,
				    pxs__token(__atomic_load_n(
						       &p->gen, __ATOMIC_ACQUIRE),
					       i)))
			return true;
	}
	return false;
}

bool
pxs__gate_close(struct pxs_store *s, long wait_ms)
{
	__atomic_store_n(&s->hdr->insert_gate, 1, __ATOMIC_SEQ_CST);
	PXS_FAILPOINT(FP_GATE_CLOSED);
	uint64_t t0 = pxs__now_ns(CLOCK_MONOTONIC), now = t0;
	uint64_t wait_ns = wait_ms < 0 ? 0
			   : wait_ms < GATE_WAIT_MS
				   ? (uint64_t)wait_ms * 1000000
				   : (uint64_t)GATE_WAIT_MS * 1000000;
	while (insertions_under_way(s, now - t0 > GATE_LIVENESS_NS)) {
		if (now - t0 > wait_ns)
			return false;
		sched_yield();
		now = pxs__now_ns(CLOCK_MONOTONIC);
	}
	return true;
}

void
pxs__gate_open(struct pxs_store *s)
{
	__atomic_store_n(&s->hdr->insert_gate, 0, __ATOMIC_RELEASE);
}

/* ---- the live count ----------------------------------------------------- */

/*
 * CAPACITY. `hdr->live` counts occupied slots plus reservations: an
 * inserter reserves with a compare-and-swap that refuses to pass the
 * capacity before it touches the table, and gives the reservation back if
 * it inserts nothing. A process that dies holding a slot lock mid-insert
 * or mid-free may leave the count one too high; the next holder of that
 * lock marks it suspect and the count is recounted from the slots.
 */

/* Under the table lock: recount the occupied slots with the gate closed,
 * each live one under its own lock, so that a free in progress (state and
 * count change together under the slot lock) is seen before or after. */
static void
recount_live(struct pxs_store *s)
{
	uint32_t live = 0;
	struct timespec dl;
	pxs__gate_close(s, GATE_WAIT_MS);
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		uint32_t st = __atomic_load_n(&s->slots[i].state,
					      __ATOMIC_ACQUIRE);
		if (st < PXS_SLOT_READY)
			continue;
		pxs__deadline(&dl, 1000);
		bool locked = pxs__slot_lock(s, i, &dl) == 0;
		st = __atomic_load_n(&s->slots[i].state, __ATOMIC_ACQUIRE);
		live += st >= PXS_SLOT_READY && st < PXS_SLOT_NSTATES;
		if (locked)
			pxs__slot_unlock(s, i);
	}
	__atomic_store_n(&s->hdr->live, live, __ATOMIC_RELEASE);
	__atomic_store_n(&s->hdr->live_suspect, 0, __ATOMIC_RELEASE);
	pxs__gate_open(s);
}

/* Repair after the table lock's holder died: it held the gate closed, and
 * may have died mid-recount. */
static int
repair_table(struct pxs_store *s, void *arg)
{
	(void)arg;
	PXS_FAILPOINT(FP_RECOVER_TABLE);
	recount_live(s);
	return 0;
}

int
pxs__table_lock(struct pxs_store *s, const struct timespec *deadline)
{
	return pxs__lock(s, &s->hdr->table_lock, deadline, repair_table, NULL);
}

void
pxs__table_lock_repair(struct pxs_store *s)
{
	if (pxs__trylock(s, &s->hdr->table_lock, repair_table, NULL) < 0)
		return;
	if (__atomic_load_n(&s->hdr->live_suspect, __ATOMIC_ACQUIRE))
		recount_live(s);
	pxs__unlock(&s->hdr->table_lock);
}

/* Recount under the table lock (not holding any slot lock). */
static int
recount(struct pxs_store *s)
{
	int rc = pxs__table_lock(s, NULL);
	if (rc < 0)
		return rc;
	recount_live(s);
	pxs__unlock(&s->hdr->table_lock);
	return 0;
}

static bool
reserve(struct pxs_store *s)
{
	uint32_t n = __atomic_load_n(&s->hdr->live, __ATOMIC_RELAXED);
	do {
		if (n >= s->g.capacity)
			return false;
	} while (!__atomic_compare_exchange_n(&s->hdr->live, &n, n + 1, true,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

/* ---- insertion ---------------------------------------------------------- */

/*
 * NO GLOBAL LOCK. An insertion of key k locks k's home slot (the first of
 * its probe sequence) for its whole duration: two inserters of one key
 * share a home, so they cannot both miss each other, and inserters of
 * different keys only meet where their probe sequences overlap. Holding
 * the home, it scans for k (-EEXIST) and for the first free slot t (EMPTY
 * or TOMB), locks t as well and, under t's lock, checks again that t is
 * free and that no slot between home and t is EMPTY; then it fills t and
 * publishes it with one release store of the state word. A lookup walks
 * the probe sequence until an EMPTY slot, so the invariant that keeps every
 * key findable is: no EMPTY slot lies between a live key's home and its
 * slot. Freeing (live -> TOMB) keeps it; only the sweep (TOMB -> EMPTY) can
 * break it, and THE SWEEP (above pxs__table_sweep) says why it does not.
 *
 * DEADLOCK. An inserter holds at most two slot locks, home and target,
 * and waits for them only in index order: a target that wrapped around the
 * end of the table (t < home) is only try-locked, and if it is busy the
 * inserter lets go of home, yields and starts over. The sweep only
 * try-locks; every other path holds one slot lock at a time.
 */

/* Walk k's probe sequence from home h: -EEXIST if k is live, else the
 * first free slot in *t (-ENOSPC if none). An expired slot is absent (of k
 * too: the new one goes beside it); the first met goes in *stale for the
 * caller to reclaim once it holds no lock (expire.c). */
static int
scan(struct pxs_store *s, pxs_key k, uint32_t h, uint32_t *t, uint32_t *stale)
{
	uint32_t target = UINT32_MAX;
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		uint32_t j = (h + i) & s->mask;
		const struct pxs_seg_slot *sl = &s->slots[j];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (st == PXS_SLOT_EMPTY || st == PXS_SLOT_TOMB) {
			if (target == UINT32_MAX)
				target = j;
			if (st == PXS_SLOT_EMPTY)
				break;
		} else if (pxs__state_live(st) && pxs__slot_expired(sl)) {
			if (*stale == UINT32_MAX)
				*stale = j;
		} else if (pxs__state_live(st) && pxs__slot_has_key(sl, k)) {
			return -EEXIST;
		}
	}
	*t = target;
	return target == UINT32_MAX ? -ENOSPC : 0;
}

/* Under t's lock: t is still free and nothing from t back to h is EMPTY
 * (read backwards: see THE SWEEP). */
static bool
target_still_free(struct pxs_store *s, uint32_t h, uint32_t t)
{
	uint32_t st = __atomic_load_n(&s->slots[t].state, __ATOMIC_ACQUIRE);
	if (st != PXS_SLOT_EMPTY && st != PXS_SLOT_TOMB)
		return false;
	for (uint32_t j = t; j != h;) {
		j = (j - 1) & s->mask;
		if (__atomic_load_n(&s->slots[j].state, __ATOMIC_ACQUIRE) ==
		    PXS_SLOT_EMPTY)
			return false;
	}
	return true;
}

/* Holding home h: find and lock a target slot for k (h itself, or a later
 * one, locked too). Blocking locks go in index order, so a target that
 * wrapped around the end of the table (t < h) is only try-locked; when it
 * is busy, h is let go of and -EAGAIN asks the caller to start over. On
 * any other return h is still held. */
static int
lock_target(struct pxs_store *s, pxs_key k, uint32_t h, uint32_t *t,
	    uint32_t *stale)
{
	for (;;) {
		int rc = scan(s, k, h, t, stale);
		if (rc < 0 || *t == h)
			return rc;
		PXS_FAILPOINT(FP_INSERT_SCANNED);
		rc = *t > h ? pxs__slot_lock(s, *t, NULL)
			    : pxs__slot_trylock(s, *t);
		if (rc == -EBUSY) {
			pxs__slot_unlock(s, h);
			return -EAGAIN;
		}
		if (rc < 0)
			return rc;
		if (target_still_free(s, h, *t))
			return 0;
		pxs__slot_unlock(s, *t);
	}
}

/* One insertion, with a reservation and the gate entered. */
static int
insert(struct pxs_store *s, pxs_key k, uint32_t state, uint64_t off,
       uint64_t size, uint32_t owner, uint32_t *idx, uint32_t *stale)
{
	uint32_t h = pxs__home(s, k), t;
	bool ring = false;
	int rc;
	do {
		if ((rc = pxs__slot_lock(s, h, NULL)) < 0)
			return rc;
		PXS_FAILPOINT(FP_INSERT_HOME_LOCKED);
		rc = lock_target(s, k, h, &t, stale);
		if (rc == -EAGAIN)
			sched_yield();
	} while (rc == -EAGAIN);
	if (rc == 0) {
		struct pxs_seg_slot *sl = &s->slots[t];
		/* Atomic: lookups and lock-free pins read them unlocked. */
		__atomic_store_n(&sl->key_hi, k.hi, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->key_lo, k.lo, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->off, off, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->size, size, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->waiters, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->name_off, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->owner, owner, __ATOMIC_RELAXED);
		__atomic_store_n(&sl->expires_ns, 0, __ATOMIC_RELAXED);
		sl->created_ns = pxs__now_ns(CLOCK_REALTIME);
		PXS_FAILPOINT(FP_INSERT_SLOT_LOCKED);
		pxs__slot_set_state(sl, state);
		PXS_FAILPOINT(FP_INSERT_AFTER_PUBLISH);
		/* Still holding the home: waiters for k count themselves in
		 * its bell under this lock (bell.c). */
		ring = pxs__bell_note(s, k);
		if (t != h)
			pxs__slot_unlock(s, t);
		*idx = t;
	}
	pxs__slot_unlock(s, h);
	if (ring)
		pxs__bell_ring(s, k);
	return rc;
}

/* Reserve, insert, or give the reservation back. */
static int
try_insert(struct pxs_store *s, pxs_key k, uint32_t state, uint64_t off,
	   uint64_t size, uint32_t owner, uint32_t *idx, uint32_t *stale)
{
	int rc = gate_enter(s);
	if (rc < 0)
		return rc;
	if (!reserve(s)) {
		gate_leave(s);
		return -ENOSPC;
	}
	rc = insert(s, k, state, off, size, owner, idx, stale);
	if (rc < 0)
		__atomic_fetch_sub(&s->hdr->live, 1, __ATOMIC_RELAXED);
	gate_leave(s);
	return rc;
}

int
pxs__table_insert(struct pxs_store *s, pxs_key k, uint32_t state, uint64_t off,
		  uint64_t size, uint32_t owner, uint32_t *idx, uint32_t *stale)
{
	int rc = 0;
	*stale = UINT32_MAX;
	if (PXS_UNLIKELY(__atomic_load_n(&s->hdr->live_suspect,
					 __ATOMIC_ACQUIRE)))
		rc = recount(s);
	if (rc == 0)
		rc = try_insert(s, k, state, off, size, owner, idx, stale);
	/* The count may be high after a crash that nobody has noticed yet:
	 * make it exact before refusing. Whether dead processes held slots
	 * is the caller's to find out (pxs__insert_reaping): insertion sits
	 * below the reaper. */
	if (rc == -ENOSPC && (rc = recount(s)) == 0)
		rc = try_insert(s, k, state, off, size, owner, idx, stale);
	return rc;
}

/* ---- the sweep ---------------------------------------------------------- */

/*
 * THE SWEEP. When a freed slot is followed by an EMPTY one, no key can
 * live beyond the run of tombstones that ends there, so the run may become
 * EMPTY again (keeping probes short). The sweep try-locks the EMPTY slot
 * and the tombstones before it, up to SWEEP_MAX, and converts them while
 * it holds all those locks; it never waits, and gives up where a lock is
 * busy. An inserter whose target t is in the run, or is the EMPTY slot
 * after it, needs t's lock too, so the two exclude each other; an inserter
 * whose path crosses the run sees the EMPTY slot after it (or the run
 * itself, converted) when it rereads its path under t's lock. It rereads
 * the path backwards, from t down to home: a slot it has reread can only
 * become EMPTY through a sweep whose EMPTY slot lies further on, between it
 * and t, which the inserter has already seen not EMPTY, or at t, whose lock
 * it holds.
 */

void
pxs__table_sweep(struct pxs_store *s, uint32_t idx)
{
	uint32_t next = (idx + 1) & s->mask, held[SWEEP_MAX + 1], n = 0;
	if (__atomic_load_n(&s->slots[next].state, __ATOMIC_ACQUIRE) !=
		    PXS_SLOT_EMPTY ||
	    pxs__slot_trylock(s, next) < 0)
		return;
	held[n++] = next;
	if (__atomic_load_n(&s->slots[next].state, __ATOMIC_ACQUIRE) ==
	    PXS_SLOT_EMPTY) {
		for (uint32_t j = idx; n <= SWEEP_MAX && j != next;
		     j = (j - 1) & s->mask) {
			if (__atomic_load_n(&s->slots[j].state,
					    __ATOMIC_ACQUIRE) != PXS_SLOT_TOMB ||
			    pxs__slot_trylock(s, j) < 0)
				break;
			held[n++] = j;
			if (__atomic_load_n(&s->slots[j].state,
					    __ATOMIC_ACQUIRE) != PXS_SLOT_TOMB)
				break;
			__atomic_store_n(&s->slots[j].state, PXS_SLOT_EMPTY,
					 __ATOMIC_RELEASE);
		}
	}
	while (n)
		pxs__slot_unlock(s, held[--n]);
}

/* ---- freeing ----------------------------------------------------------- */

uint64_t
pxs__slot_tombstone(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint64_t off = sl->off;
	if (off) /* if we die between unpublishing and freeing, our reaper frees it */
		pxs__block_tag(s, off);
	pxs__slot_name_drop(s, idx); /* a future's name goes with it */
	/* Atomic: lock-free pins read gen and off (pins.c). */
	__atomic_store_n(&sl->gen, sl->gen + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->off, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->owner, 0, __ATOMIC_RELAXED);
	pxs__slot_set_state(sl, PXS_SLOT_TOMB);
	__atomic_fetch_sub(&s->hdr->live, 1, __ATOMIC_RELAXED);
	return off;
}

/* After pxs__slot_tombstone and the slot unlock: free the block, sweep the
 * tombstones. */
static int
reclaim(struct pxs_store *s, uint32_t idx, uint64_t off)
{
	int rc = off ? pxs__block_free(s, off) : 0;
	pxs__table_sweep(s, idx);
	return rc;
}

int
pxs__slot_unlock_reclaim(struct pxs_store *s, uint32_t idx, bool wake,
			 bool freed, uint64_t off)
{
	pxs__slot_unlock_wake_if(s, idx, wake);
	return freed ? reclaim(s, idx, off) : 0;
}

/* ---- futures whose producer died ---------------------------------------- */

/* Under the slot lock, if PENDING/RESERVED and the owner is dead: mark it
 * ABANDONED (returns true) and free a reserved block; else false. */
static bool
abandon_if_dead(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint32_t st = sl->state, owner = sl->owner;
	if ((st != PXS_SLOT_PENDING && st != PXS_SLOT_RESERVED) || owner == 0 ||
	    pxs__proc_alive(s, owner))
		return false;
	pxs__slot_abandon(s, idx);
	return true;
}

int
pxs__slot_resolve(struct pxs_store *s, uint32_t idx, bool *changed)
{
	switch (s->slots[idx].state) {
	case PXS_SLOT_READY:
		return 1;
	case PXS_SLOT_ABANDONED:
		return -EOWNERDEAD;
	default: /* pending or reserved */
		if (!abandon_if_dead(s, idx))
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
	 * tagged, unpublished, then freed (see pxs__block_tag). */
	if (off)
		pxs__block_tag(s, off);
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
int
pxs__table_replace(struct pxs_store *s, pxs_key k, uint32_t state,
		   uint64_t off, uint64_t size, uint32_t owner, uint32_t *out)
{
	uint32_t idx;
	int rc = pxs__lock_key(s, k, NULL, &idx);
	if (rc < 0)
		return rc;
	bool changed = false;
	if (pxs__slot_resolve(s, idx, &changed) != -EOWNERDEAD) {
		pxs__slot_unlock_wake_if(s, idx, changed);
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
	*out = idx;
	return 0;
}
