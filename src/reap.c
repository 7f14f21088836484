/* reap.c - recovering what a dead (or departed) process left behind.
 *
 * Owns: the reaper, which repairs orphaned locks, drops a dead process's
 * pins, abandons its futures, frees its reservations and the blocks it
 * allocated but never published, and has its process entry freed
 * (procs.c); and, since they reap, attaching a handle, detaching it,
 * re-attaching after fork, and the insertion that reaps and retries when
 * the table is full (PXS_REAP_RETRY, internal.h, is the same retry for
 * the callers above). It is the only file that holds the process-table
 * lock over other locks.
 *
 * WHO REAPS. A process entry is dead when its liveness lock can be taken
 * (procs.c). Reaping runs under the process-table lock, with the dead
 * entry's liveness lock held by the reaper, so two reapers never work on
 * one entry: when a process attaches (before it acquires an entry),
 * whenever an allocation or insertion would fail with -ENOSPC (the callers,
 * holding no lock, reap: never the allocator or the inserter), and from
 * pxs_close() for the closing handle's own entry. Every step is idempotent
 * and done under the lock of what it changes, so a reaper that dies
 * half-way leaves work that the next reaper finishes.
 *
 * DEADLINES. An attach and a detach reap with a deadline (a second): a
 * step whose lock is not had by then (a stopped holder, a garbage lock
 * word) is skipped, and the entry is not freed but let go of, dead, so
 * that the next reaper finishes it. Every step being idempotent, that is
 * what a reaper that died half-way leaves too.
 *
 * LEAKED BLOCKS. A process that dies between allocating a block and
 * publishing it in a slot leaves a block tagged with its token that no slot
 * references. The reaper lists the dead token's blocks (heap lock), then
 * the blocks slots reference (no lock), then frees, under the heap lock,
 * each listed block that is still allocated with the dead token and not
 * referenced. Nobody can publish a dead process's block any more, so a
 * block unreferenced in the snapshot stays unreferenced.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Lock slot i for the reaper until dl: 1 locked, -1 not had in time, 0
 * not to be had at all (a state word or lock word that is garbage, an
 * unrepairable lock): skipped, as it always was. */
static int
reaper_lock(struct pxs_store *s, uint32_t i, const struct timespec *dl)
{
	int rc = pxs__slot_lock(s, i, dl);
	return rc == 0 ? 1 : rc == -ETIMEDOUT ? -1 : 0;
}

/* Drop every pin recorded in array a of table t, slot by slot; false if
 * a slot's lock was not had by dl (its pins stay). */
static bool
drop_pins(struct pxs_store *s, uint16_t *a, uint32_t t,
	  const struct timespec *dl)
{
	bool done = true;
	for (uint32_t j = 0; j < pxs__tab_slots(s, t); j++) {
		uint32_t i = pxs__tab_base(s, t) + j;
		int l = 0;
		if (!a[j] || (l = reaper_lock(s, i, dl)) == 0)
			continue;
		if (l < 0) {
			done = false;
			continue;
		}
		uint64_t off = 0;
		__atomic_store_n(&a[j], 0, __ATOMIC_RELAXED);
		PXS_FAILPOINT(FP_REAP_MID_PINS);
		bool freed = pxs__slot_tombstone_if_unheld(s, i, &off);
		pxs__slot_unlock_reclaim(s, i, false, freed, off);
	}
	return done;
}

/* Free the pin arrays (all zero now) and the directory of entry p:
 * unpublished, then freed, under the heap lock; if that is not had by dl
 * they stay for the next reaper (false). */
static bool
free_pins(struct pxs_store *s, struct pxs_seg_proc *p,
	  const struct timespec *dl)
{
	uint64_t *dir = pxs__pin_dir(s, p);
	int rc = pxs__heap_lock_by(s, dl);
	if (rc == -ETIMEDOUT)
		return false;
	for (uint32_t t = 0; rc == 0 && t < pxs__ntab(s); t++)
		if (pxs__pin_array(s, p, t)) {
			uint64_t off = dir[t];
			__atomic_store_n(&dir[t], 0, __ATOMIC_RELEASE);
			pxs__heap_free(&s->heap, off);
		}
	uint64_t off = p->pins_off;
	__atomic_store_n(&p->pins_off, 0, __ATOMIC_RELEASE);
	if (rc == 0) {
		pxs__heap_free(&s->heap, off);
		pxs__unlock(&s->hdr->heap_lock);
	}
	return true;
}

/* Abandon the futures owned by token; finish its evicted reservations;
 * free evicted values that nobody holds any more (a process that died
 * between dropping its last pin and freeing the value leaves one). False
 * if a slot of token's was not had by dl. */
static bool
drop_ownership(struct pxs_store *s, uint32_t token, const struct timespec *dl)
{
	bool done = true;
	for (uint32_t i = 0; i < pxs__nslots(s); i++) {
		struct pxs_seg_slot *sl = pxs__slot(s, i);
		uint32_t owner = __atomic_load_n(&sl->owner, __ATOMIC_RELAXED);
		int l = 0;
		if ((owner != token &&
		     (owner != 0 || __atomic_load_n(&sl->state,
						    __ATOMIC_RELAXED) !=
					    PXS_SLOT_EVICTED)) ||
		    (l = reaper_lock(s, i, dl)) == 0)
			continue;
		if (l < 0) { /* another's evicted value: a later reap's */
			done = done && owner != token;
			continue;
		}
		uint64_t off = 0;
		bool freed = false;
		if (sl->owner == 0) {
			freed = pxs__slot_tombstone_if_unheld(s, i, &off);
		} else if (sl->owner == token) {
			if (sl->state == PXS_SLOT_PENDING ||
			    sl->state == PXS_SLOT_RESERVED) {
				PXS_FAILPOINT(FP_REAP_MID_OWNERSHIP);
				pxs__slot_abandon(s, i);
			} else if (sl->state == PXS_SLOT_EVICTED) {
				sl->owner = 0;
				freed = pxs__slot_tombstone_if_unheld(s, i,
								      &off);
			}
		}
		pxs__slot_unlock_reclaim(s, i, true, freed, off);
	}
	return done;
}

struct leak_list {
	uint64_t *off;
	size_t n, cap;
	uint32_t token;
};

static void
collect_owned(void *ctx, uint64_t off, uint64_t cap, uint32_t owner)
{
	struct leak_list *l = ctx;
	if (owner != l->token)
		return;
	uint64_t *p = pxs__grow(l->off, l->n, &l->cap, sizeof *p, 64);
	if (!p)
		return; /* best effort: a later reap finds the rest */
	l->off = p;
	l->off[l->n++] = off;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Free the blocks token allocated but no slot references; false if the
 * heap lock was not had by dl. */
static bool
free_leaked(struct pxs_store *s, uint32_t token, const struct timespec *dl)
{
	struct leak_list l = {.token = token};
	bool done = false;
	int rc = pxs__heap_lock_by(s, dl);
	if (rc < 0)
		return rc != -ETIMEDOUT;
	pxs__heap_walk(&s->heap, collect_owned, &l);
	pxs__unlock(&s->hdr->heap_lock);
	done = l.n == 0;
	if (done)
		goto out;
	qsort(l.off, l.n, sizeof *l.off, cmp_u64);
	/* Strike out the blocks that slots reference. */
	for (uint32_t i = 0; i < pxs__nslots(s); i++) {
		const struct pxs_seg_slot *sl = pxs__slot(s, i);
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		uint64_t refs[2] = {
			pxs__state_holds_block(st)
				? __atomic_load_n(&sl->off, __ATOMIC_RELAXED)
				: 0,
			/* a future's name block, in every live state */
			st >= PXS_SLOT_READY && st < PXS_SLOT_NSTATES
				? __atomic_load_n(&sl->name_off,
						  __ATOMIC_RELAXED)
				: 0};
		for (int r = 0; r < 2; r++) {
			uint64_t *hit = refs[r] ? bsearch(&refs[r], l.off, l.n,
							  sizeof *l.off,
							  cmp_u64)
						: NULL;
			if (hit)
				*hit |= 1; /* referenced; offsets are 16-aligned, so order is kept */
		}
	}
	/* And the tables of the chain: a grower's block for ever (a table
	 * allocated and not published is the table lock's repair's). */
	for (uint32_t t = 1; t < pxs__ntab(s); t++) {
		uint64_t off = __atomic_load_n(&s->hdr->tables[t].off,
					       __ATOMIC_RELAXED);
		uint64_t *hit =
			bsearch(&off, l.off, l.n, sizeof *l.off, cmp_u64);
		if (hit)
			*hit |= 1;
	}
	PXS_FAILPOINT(FP_REAP_MID_LEAKS);
	if ((rc = pxs__heap_lock_by(s, dl)) < 0) {
		done = rc != -ETIMEDOUT;
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		uint64_t cap;
		uint32_t owner;
		if (!(l.off[i] & 1) &&
		    pxs__heap_block(&s->heap, l.off[i], &cap, &owner) == 0 &&
		    owner == token)
			pxs__heap_free(&s->heap, l.off[i]);
	}
	pxs__unlock(&s->hdr->heap_lock);
	done = true;
out:
	free(l.off);
	return done;
}

/* Take back the waits a dead process's threads registered: each record is
 * cleared under its slot's lock and the slot recounted (waits.c), so a
 * reaper that dies half-way leaves records the next one finds. */
static bool
drop_waits(struct pxs_store *s, struct pxs_seg_proc *p,
	   const struct timespec *dl)
{
	bool done = true;
	for (uint32_t r = 0; r < PXS_PROC_WAITS; r++) {
		struct pxs_seg_wait *w = &p->waits[r];
		uint32_t idx = __atomic_load_n(&w->slot, __ATOMIC_RELAXED);
		if (!__atomic_load_n(&w->n, __ATOMIC_ACQUIRE))
			continue;
		if (!pxs__slot_index_ok(s, idx)) { /* not a slot: forget it */
			__atomic_store_n(&w->n, 0, __ATOMIC_RELEASE);
			continue;
		}
		int l = reaper_lock(s, idx, dl);
		if (l <= 0) {
			done = done && l == 0;
			continue;
		}
		__atomic_store_n(&w->n, 0, __ATOMIC_RELEASE);
		PXS_FAILPOINT(FP_REAP_MID_WAITS);
		pxs__waits_recount_slot(s, idx);
		pxs__slot_unlock(s, idx);
	}
	return pxs__bell_drop(s, p, dl) && done;
}

/* Reap entry i, whose liveness lock the caller has just taken, under
 * proc_lock, waiting for each lock until @p dl (NULL: no limit). Leaves
 * the entry LIVE: the caller frees or reuses it if this returns true, and
 * otherwise (a lock not had in time: some work is left) lets go of it, so
 * that the next reaper finds it dead and finishes. */
static bool
reap_entry(struct pxs_store *s, uint32_t i, const struct timespec *dl)
{
	struct pxs_seg_proc *p = &s->procs[i];
	uint32_t token = pxs__token(p->gen, i);
	bool done = drop_waits(s, p, dl);
	pxs__chain_sync(s);
	if (pxs__pin_dir(s, p)) {
		bool dropped = true;
		for (uint32_t t = 0; t < pxs__ntab(s); t++) {
			uint16_t *a = pxs__pin_array(s, p, t);
			dropped = (!a || drop_pins(s, a, t, dl)) && dropped;
		}
		done = done && dropped && free_pins(s, p, dl);
	}
	done = drop_ownership(s, token, dl) && done;
	return free_leaked(s, token, dl) && done;
}

/* ---- attaching, leaving, reaping ---------------------------------------- */

/* Repair every lock whose holder died: the heap's, the slots', the table's. */
static void
repair_orphans(struct pxs_store *s)
{
	if (pxs__trylock(s, &s->hdr->heap_lock, pxs__repair_heap, NULL) == 0)
		pxs__unlock(&s->hdr->heap_lock);
	pxs__slot_locks_repair(s);
	/* Last: a repaired slot asks for a recount under the table lock. */
	pxs__table_lock_repair(s);
}

/* Under proc_lock: reap every dead entry and free it (until dl, NULL: no
 * limit; one not reaped whole by then stays, dead, for the next reaper);
 * returns how many were freed. */
static int
reap_dead(struct pxs_store *s, const struct timespec *dl)
{
	int n = 0;
	bool repaired = false;
	for (uint32_t i = 0; i < PXS_MAX_PROCS; i++) {
		if (!pxs__proc_take_dead(s, i))
			continue;
		if (!repaired) /* it may have died holding locks */
			repair_orphans(s);
		repaired = true;
		if (reap_entry(s, i, dl)) {
			pxs__proc_free(s, i);
			n++;
		}
		pxs__proc_let_go(s, i);
	}
	return n;
}

/* Reap under the process-table lock, waiting for it until @p deadline. */
static int
reap_procs_by(struct pxs_store *s, const struct timespec *deadline)
{
	int rc = pxs__lock(s, &s->hdr->proc_lock, deadline, NULL, NULL);
	if (rc < 0)
		return rc;
	rc = reap_dead(s, deadline);
	pxs__unlock(&s->hdr->proc_lock);
	return rc;
}

/* Bounded as an attach is: a process stopped while it holds the process
 * table's lock (or a slot's, or the heap's), or a lock word that is
 * garbage, makes a reap give up after PXS_ATTACH_LOCK_MS (-ETIMEDOUT, or
 * the work it could not do left to the next reaper), not hang; so does
 * the reap of an allocation about to fail with -ENOSPC, which then fails. */
int
pxs__reap_procs(struct pxs_store *s)
{
	struct timespec dl;
	pxs__deadline(&dl, PXS_ATTACH_LOCK_MS);
	return reap_procs_by(s, &dl);
}

int
pxs__reap(struct pxs_store *s)
{
	int rc = pxs__reap_procs(s);
	/* And what expired (expire.c): a reap is how memory comes back. */
	return rc < 0 ? rc : rc + pxs__reclaim_expired(s);
}

/* Reap, so that dead processes' entries are free to acquire, then
 * acquire one; the process-table lock is waited for until @p deadline (NULL: no
 * limit), which a stopped holder or a garbage lock word makes -ETIMEDOUT
 * rather than a hang. */
static int
reap_and_acquire(struct pxs_store *s, const struct timespec *deadline)
{
	int rc = reap_procs_by(s, deadline);
	return rc < 0 ? rc : pxs__proc_acquire(s, deadline);
}

int
pxs__attach(struct pxs_store *s)
{
	struct timespec dl;
	pxs__deadline(&dl, PXS_ATTACH_LOCK_MS);
	/* No pin array yet: a handle that never pins (a stat, a list, a
	 * producer) costs its process entry and nothing in the heap; its
	 * first pin allocates one (pins.c). */
	return reap_and_acquire(s, &dl);
}

void
pxs__detach(struct pxs_store *s)
{
	uint32_t tok = s->token;
	if (!tok)
		return;
	uint32_t i = pxs__token_idx(tok);
	struct timespec dl;
	/* Bounded: a lock not had in time leaves our entry, which reads as
	 * dead once we let go of it, to the next reaper. */
	pxs__deadline(&dl, PXS_ATTACH_LOCK_MS);
	if (pxs__lock(s, &s->hdr->proc_lock, &dl, NULL, NULL) == 0) {
		/* Our views die with the mapping, our futures with our entry. */
		if (pxs__proc_is_mine(s, tok) && reap_entry(s, i, &dl))
			pxs__proc_free(s, i);
		pxs__unlock(&s->hdr->proc_lock);
	}
	pxs__proc_let_go(s, i);
	s->token = 0;
}

int
pxs__refork(struct pxs_store *s)
{
	if (s->rdonly) { /* registers nothing, in the child either */
		s->fork_gen = pxs__fork_gen;
		return 0;
	}
	pthread_mutex_lock(&s->local);
	int rc = 0;
	if (s->fork_gen != pxs__fork_gen) {
		/* The parent's token is not ours: remember it (views it pinned
		 * may be released here), forget it without touching the
		 * parent's entry, then acquire our own. */
		memmove(s->past + 1, s->past, sizeof s->past - sizeof *s->past);
		s->past[0] = s->token;
		__atomic_store_n(&s->token, 0, __ATOMIC_RELEASE);
		if ((rc = reap_and_acquire(s, NULL)) == 0)
			s->fork_gen = pxs__fork_gen;
	}
	pthread_mutex_unlock(&s->local);
	return rc;
}

int
pxs__insert_reaping(struct pxs_store *s, pxs_key k, uint32_t state,
		    uint64_t off, uint64_t size, uint32_t owner, uint32_t *idx)
{
	for (;;) {
		uint32_t stale;
		int rc; /* reaping: dead processes may hold slots */
		PXS_REAP_RETRY(s, rc,
			       pxs__table_insert(s, k, state, off, size, owner,
						 idx, &stale));
		if (stale != UINT32_MAX) /* an expired slot on the way */
			pxs__reclaim_if_expired(s, stale);
		if (rc != -EEXIST && rc != -ENOSPC)
			return rc;
		/* A restart: an abandoned key is taken over, which needs no
		 * room (a full table refuses before it looks for the key). */
		int r = pxs__table_replace(s, k, state, off, size, owner, idx);
		if (r == 0 || rc == -ENOSPC)
			return r == 0 ? 0 : rc;
		if (r != -ENOENT) /* -ENOENT: gone meanwhile, insert again */
			return r;
	}
}
