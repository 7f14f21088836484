/* table.c - putting keys into the slot table and taking them out.
 *
 * Owns: insertion, the capacity counts (each table's `live`), the table
 * lock, the insertion gate that whole-table scans close, growing the chain
 * of tables (chain.c), the recount, the tombstone sweep, freeing a slot (tombstone, then its block, then the sweep), and
 * the abandonment of a future whose producer died. Lookups and slot locks
 * are slot.c's. Insertion never reaps: its callers do (reap.c).
 *
 * The essays stand above what they explain: THE GATE, CAPACITY, NO GLOBAL
 * LOCK and DEADLOCK (insertion), GROWING, THE SWEEP.
 */
#include "internal.h"

#include <sched.h>
#include <string.h>

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
 * CAPACITY. Each table's `live` counts its occupied slots plus
 * reservations: an inserter reserves in the newest table with a
 * compare-and-swap that refuses to pass that table's limit (tab_limit)
 * before it touches the table, and gives the reservation back if it
 * inserts nothing. A process that dies holding a slot lock mid-insert
 * or mid-free may leave the count one too high; the next holder of that
 * lock marks it suspect and the count is recounted from the slots.
 */

/* Under the table lock: recount the occupied slots with the gate closed,
 * each live one under its own lock, so that a free in progress (state and
 * count change together under the slot lock) is seen before or after. */
static void
recount_live(struct pxs_store *s)
{
	struct timespec dl;
	pxs__gate_close(s, GATE_WAIT_MS);
	pxs__chain_sync(s);
	for (uint32_t t = 0; t < pxs__ntab(s); t++) {
		uint32_t live = 0, base = pxs__tab_base(s, t);
		for (uint32_t i = base; i < base + pxs__tab_slots(s, t); i++) {
			uint32_t st = __atomic_load_n(&pxs__slot(s, i)->state,
						      __ATOMIC_ACQUIRE);
			if (st < PXS_SLOT_READY)
				continue;
			pxs__deadline(&dl, 1000);
			bool locked = pxs__slot_lock(s, i, &dl) == 0;
			st = __atomic_load_n(&pxs__slot(s, i)->state,
					     __ATOMIC_ACQUIRE);
			live += st >= PXS_SLOT_READY && st < PXS_SLOT_NSTATES;
			if (locked)
				pxs__slot_unlock(s, i);
		}
		__atomic_store_n(&s->hdr->tables[t].live, live,
				 __ATOMIC_RELEASE);
	}
	__atomic_store_n(&s->hdr->live_suspect, 0, __ATOMIC_RELEASE);
	pxs__gate_open(s);
}

static void finish_growth(struct pxs_store *s);

/* Repair after the table lock's holder died: it held the gate closed, and
 * may have died mid-recount or mid-growth. */
static int
repair_table(struct pxs_store *s, void *arg)
{
	(void)arg;
	PXS_FAILPOINT(FP_RECOVER_TABLE);
	finish_growth(s);
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

/* The most live slots table t takes: the fixed capacity; or, for a table
 * that grows, 3/4 of its slots, and 15/16 once the heap had no room for
 * the next table (open addressing stays fast well past one half, and the
 * last table of a full heap should not waste a quarter of itself). */
static uint32_t
tab_limit(const struct pxs_store *s, uint32_t t)
{
	uint32_t n = pxs__tab_slots(s, t);
	if (s->g.capacity)
		return s->g.capacity;
	return __atomic_load_n(&s->hdr->tables[t].crowded, __ATOMIC_RELAXED)
		       ? n - n / 16
		       : n - n / 4;
}

uint32_t
pxs__table_capacity(struct pxs_store *s, uint32_t *used)
{
	uint32_t n = pxs__ntab(s), sum = 0;
	for (uint32_t t = 0; t < n; t++)
		sum += __atomic_load_n(&s->hdr->tables[t].live,
				       __ATOMIC_RELAXED);
	*used = sum;
	uint32_t newest = __atomic_load_n(&s->hdr->tables[n - 1].live,
					  __ATOMIC_RELAXED);
	/* The older tables take no insertions: what they hold, plus what the
	 * newest takes before it must grow. */
	return sum - newest + tab_limit(s, n - 1);
}

static bool
reserve(struct pxs_store *s, uint32_t t)
{
	uint32_t *live = &s->hdr->tables[t].live;
	uint32_t n = __atomic_load_n(live, __ATOMIC_RELAXED);
	do {
		if (n >= tab_limit(s, t))
			return false;
	} while (!__atomic_compare_exchange_n(live, &n, n + 1, true,
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

/* Walk k's probe sequence in table tb: -EEXIST if k is live, else the
 * first free slot in *t (-ENOSPC if none). An expired slot is absent (of k
 * too: the new one goes beside it); the first met goes in *stale for the
 * caller to reclaim once it holds no lock (expire.c). */
static int
scan(struct pxs_store *s, pxs_key k, uint32_t tb, uint32_t *t,
     uint32_t *stale)
{
	const struct pxs_seg_slot *tab = s->tab[tb];
	uint32_t n = pxs__tab_slots(s, tb), mask = n - 1,
		 base = pxs__tab_base(s, tb), h = pxs__hash(k) & mask;
	uint32_t target = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = (h + i) & mask;
		const struct pxs_seg_slot *sl = &tab[j];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		if (st == PXS_SLOT_EMPTY || st == PXS_SLOT_TOMB) {
			if (target == UINT32_MAX)
				target = base + j;
			if (st == PXS_SLOT_EMPTY)
				break;
		} else if (pxs__state_live(st) && pxs__slot_expired(sl)) {
			if (*stale == UINT32_MAX)
				*stale = base + j;
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
	uint32_t tb = pxs__idx_tab(s, h), base = pxs__tab_base(s, tb),
		 mask = pxs__tab_slots(s, tb) - 1;
	const struct pxs_seg_slot *tab = s->tab[tb];
	uint32_t st = __atomic_load_n(&tab[t - base].state, __ATOMIC_ACQUIRE);
	if (st != PXS_SLOT_EMPTY && st != PXS_SLOT_TOMB)
		return false;
	for (uint32_t j = t - base; j != h - base;) {
		j = (j - 1) & mask;
		if (__atomic_load_n(&tab[j].state, __ATOMIC_ACQUIRE) ==
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
		int rc = scan(s, k, pxs__idx_tab(s, h), t, stale);
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

/* One insertion into table tb, the newest, with a reservation there and
 * the gate entered: k must not be live in an older table either. With the
 * gate entered no insertion into an older table is under way (GROWING), so
 * a key absent from them now stays absent while we insert. */
static int
insert(struct pxs_store *s, uint32_t tb, pxs_key k, uint32_t state,
       uint64_t off, uint64_t size, uint32_t owner, uint32_t *idx,
       uint32_t *stale)
{
	uint32_t h = pxs__home_in(s, k, tb), t;
	bool ring = false;
	int rc;
	for (uint32_t old = 0; old < tb; old++)
		if (scan(s, k, old, &t, stale) == -EEXIST)
			return -EEXIST;
	do {
		if ((rc = pxs__slot_lock(s, h, NULL)) < 0)
			return rc;
		PXS_FAILPOINT(FP_INSERT_HOME_LOCKED);
		rc = lock_target(s, k, h, &t, stale);
		if (rc == -EAGAIN)
			sched_yield();
	} while (rc == -EAGAIN);
	if (rc == 0) {
		struct pxs_seg_slot *sl = pxs__slot(s, t);
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
		 * its bell under this lock (bell.c), or, if they hold the home
		 * in an older table, look at the chain after counting: the
		 * fence pairs with theirs. */
		if (tb > 0)
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
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

/* Reserve in the newest table, insert, or give the reservation back.
 * -ENOSPC with *full set: the newest table is at its limit (grow it). */
static int
try_insert(struct pxs_store *s, pxs_key k, uint32_t state, uint64_t off,
	   uint64_t size, uint32_t owner, uint32_t *idx, uint32_t *stale,
	   uint32_t *full)
{
	int rc = gate_enter(s);
	if (rc < 0)
		return rc;
	/* Inside the gate the chain does not grow: this is the newest. */
	if ((rc = pxs__chain_sync(s)) < 0) {
		gate_leave(s);
		return rc;
	}
	uint32_t tb = (uint32_t)rc - 1;
	if (!reserve(s, tb)) {
		gate_leave(s);
		*full = tb;
		return -ENOSPC;
	}
	rc = insert(s, tb, k, state, off, size, owner, idx, stale);
	if (rc < 0)
		__atomic_fetch_sub(&s->hdr->tables[tb].live, 1,
				   __ATOMIC_RELAXED);
	gate_leave(s);
	return rc;
}

/* ---- growing ------------------------------------------------------------ */

/*
 * GROWING. A store whose table grows (capacity 0) adds a table when the
 * newest reaches its limit. The grower takes the table lock (one grower
 * at a time; recounts and checks exclude it), allocates a block of the
 * heap for a table twice the newest's size, formats it (every slot EMPTY,
 * its lock robust and process-shared), writes its descriptor, and only
 * then closes the gate, waits for the insertions under way to finish, and
 * publishes the table with a release store of `ntables`. So:
 *  - a reader that loaded the old count probes the old tables only, which
 *    stay as they are, and linearises before every insertion into the new
 *    table; one that loads the new count sees the descriptor and the
 *    formatted slots (acquire);
 *  - every insertion that runs inside the gate at the same moment inserts
 *    into the same newest table: one entered before the gate closed
 *    finished before the publication, one entered after it opened reads
 *    the new count. Two inserters of one key therefore meet at its home
 *    in that table, and a key absent from the older tables stays absent
 *    during an insertion (nothing inserts there any more), so checking
 *    them first and inserting into the newest keeps every key unique;
 *  - slots never move, so an index held across growth (a view's pin, a
 *    wait record, a pin array's element) keeps naming its slot.
 * A heap without room for the table marks the newest table crowded: it
 * fills to 15/16 before -ENOSPC (the next attempt to grow comes then).
 *
 * A grower killed mid-way holds the table lock; its repair (and the next
 * growth) finds the block in `growing_off`: published already (the count
 * names it) or not, in which case it is freed if it is still the dead
 * grower's (the reaper may have freed it first: an unpublished table is
 * a block its dead owner left unreferenced). Published tables are never
 * freed: the reaper counts them as referenced.
 */

/* Under the table lock: settle a growth its holder did not finish. */
static void
finish_growth(struct pxs_store *s)
{
	struct pxs_seg_hdr *h = s->hdr;
	uint64_t off = __atomic_load_n(&h->growing_off, __ATOMIC_ACQUIRE);
	if (!off)
		return;
	uint32_t n = __atomic_load_n(&h->ntables, __ATOMIC_ACQUIRE);
	bool published = n >= 1 && n <= PXS_MAX_TABLES &&
			 __atomic_load_n(&h->tables[n - 1].off,
					 __ATOMIC_RELAXED) == off;
	if (!published && pxs__heap_lock(s) == 0) {
		uint64_t cap;
		uint32_t owner;
		if (pxs__heap_block(&s->heap, off, &cap, &owner) == 0 &&
		    owner == __atomic_load_n(&h->growing_token,
					     __ATOMIC_RELAXED) &&
		    !pxs__proc_alive(s, owner))
			pxs__heap_free(&s->heap, off);
		pxs__unlock(&h->heap_lock);
	}
	__atomic_store_n(&h->growing_off, 0, __ATOMIC_RELEASE);
}

/* The newest table, tb, is full: add table tb + 1. 0: there is a newer
 * table now (ours or another grower's), or tb was marked crowded and may
 * take more; -ENOSPC: neither. */
static int
grow(struct pxs_store *s, uint32_t tb)
{
	struct pxs_seg_hdr *h = s->hdr;
	int rc = pxs__table_lock(s, NULL);
	if (rc < 0)
		return rc;
	finish_growth(s);
	uint32_t n = __atomic_load_n(&h->ntables, __ATOMIC_ACQUIRE);
	bool crowded = __atomic_load_n(&h->tables[tb].crowded,
				       __ATOMIC_RELAXED);
	uint64_t off = 0,
		 bytes = (uint64_t)pxs__tab_slots(s, tb + 1) *
			 sizeof(struct pxs_seg_slot);
	if (n != tb + 1) /* another grower was first */
		goto out;
	rc = n >= PXS_MAX_TABLES
		     ? -ENOSPC
		     : pxs__block_alloc(s, bytes + PXS_TABLE_SLACK, &off);
	if (rc == 0) {
		__atomic_store_n(&h->growing_token, s->token, __ATOMIC_RELAXED);
		__atomic_store_n(&h->growing_off, off, __ATOMIC_RELEASE);
		PXS_FAILPOINT(FP_GROW_ALLOCATED);
		struct pxs_seg_slot *tab =
			(void *)(s->base + pxs__chain_slots_at(off));
		memset(tab, 0, bytes);
		rc = pxs__chain_format(tab, 0, pxs__tab_slots(s, tb + 1));
	}
	if (rc == 0 && !pxs__gate_close(s, GATE_WAIT_MS)) {
		pxs__gate_open(s); /* a stopped inserter: not now */
		rc = -ENOSPC;
	}
	if (rc < 0) {
		if (off) {
			pxs__block_free(s, off);
			__atomic_store_n(&h->growing_off, 0, __ATOMIC_RELEASE);
		}
		/* No room (or no moment) for a new table: fill this one
		 * further, once. */
		rc = crowded || rc != -ENOSPC ? rc : 0;
		__atomic_store_n(&h->tables[tb].crowded, 1, __ATOMIC_RELAXED);
		goto out;
	}
	h->tables[n].off = off;
	h->tables[n].nslots = pxs__tab_slots(s, n);
	h->tables[n].live = 0;
	h->tables[n].crowded = 0;
	PXS_FAILPOINT(FP_GROW_BEFORE_PUBLISH);
	__atomic_store_n(&h->ntables, n + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&h->growing_off, 0, __ATOMIC_RELEASE);
	pxs__gate_open(s);
out:
	pxs__unlock(&h->table_lock);
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
	uint32_t full = UINT32_MAX;
	if (rc == 0)
		rc = try_insert(s, k, state, off, size, owner, idx, stale,
				&full);
	/* The newest table is at its limit: a table that grows adds the next
	 * one (or takes a few more, crowded), a bounded number of times. */
	for (int n = 0; rc == -ENOSPC && full != UINT32_MAX &&
			!s->g.capacity && n < 4;
	     n++) {
		if ((rc = grow(s, full)) == 0)
			rc = try_insert(s, k, state, off, size, owner, idx,
					stale, &full);
	}
	/* The count may be high after a crash that nobody has noticed yet:
	 * make it exact before refusing. Whether dead processes held slots
	 * is the caller's to find out (pxs__insert_reaping): insertion sits
	 * below the reaper. */
	if (rc == -ENOSPC && (rc = recount(s)) == 0)
		rc = try_insert(s, k, state, off, size, owner, idx, stale,
				&full);
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
	uint32_t tb = pxs__idx_tab(s, idx), base = pxs__tab_base(s, tb),
		 mask = pxs__tab_slots(s, tb) - 1;
	uint32_t next = base + ((idx - base + 1) & mask),
		 held[SWEEP_MAX + 1], n = 0;
	if (__atomic_load_n(&pxs__slot(s, next)->state, __ATOMIC_ACQUIRE) !=
		    PXS_SLOT_EMPTY ||
	    pxs__slot_trylock(s, next) < 0)
		return;
	held[n++] = next;
	if (__atomic_load_n(&pxs__slot(s, next)->state, __ATOMIC_ACQUIRE) ==
	    PXS_SLOT_EMPTY) {
		for (uint32_t j = idx; n <= SWEEP_MAX && j != next;
		     j = base + ((j - base - 1) & mask)) {
			if (__atomic_load_n(&pxs__slot(s, j)->state,
					    __ATOMIC_ACQUIRE) != PXS_SLOT_TOMB ||
			    pxs__slot_trylock(s, j) < 0)
				break;
			held[n++] = j;
			if (__atomic_load_n(&pxs__slot(s, j)->state,
					    __ATOMIC_ACQUIRE) != PXS_SLOT_TOMB)
				break;
			__atomic_store_n(&pxs__slot(s, j)->state, PXS_SLOT_EMPTY,
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
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	uint64_t off = sl->off;
	if (off) /* if we die between unpublishing and freeing, our reaper frees it */
		pxs__block_tag(s, off);
	pxs__slot_name_drop(s, idx); /* a future's name goes with it */
	/* Atomic: lock-free pins read gen and off (pins.c). */
	__atomic_store_n(&sl->gen, sl->gen + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->off, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->owner, 0, __ATOMIC_RELAXED);
	pxs__slot_set_state(sl, PXS_SLOT_TOMB);
	__atomic_fetch_sub(&s->hdr->tables[pxs__idx_tab(s, idx)].live, 1,
			   __ATOMIC_RELAXED);
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
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
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
	switch (pxs__slot(s, idx)->state) {
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
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
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
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
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
