/* check.c - pxs_check(): a read-only validation of a whole segment, and
 * pxs_reap(), its repairing counterpart.
 *
 * Owns: the consistency rules between slots, heap blocks, pin records and
 * process entries. It writes nothing to the segment (but repairs a lock
 * whose holder died, as any locker does). The heap is checked under the
 * heap lock and each slot under its own lock, so the verdict is exact even
 * while other processes work; the counts of dead pins and leaked blocks are
 * a snapshot.
 *
 * DEADLINES. A check waits at most CHECK_LOCK_MS in all for its locks:
 * after that each lock is only tried. A lock it did not get (held by a
 * stopped process, or a word that is not a lock) is counted in the
 * report's locks_busy, the first one named in busy_lock, and what it
 * guards is read without it, as a read-only handle (PXS_RDONLY, which
 * takes no lock at all) reads everything. Read so, a slot is used only if
 * its state and generation are the same before and after, a heap walk
 * that finds an error is walked again until two walks agree (traffic moves
 * blocks under it), and the comparisons that only a lock makes exact (a
 * slot's or a bell's waiter count against the records, the live count
 * against the capacity) are not made. A read-only handle reports an
 * inconsistency only if RDONLY_CHECKS whole checks in a row find one.
 */
#include "internal.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct block {
	uint64_t off, cap;
	uint32_t owner;
	uint32_t refs;
	uint32_t first; /* the first referrer seen */
};

/* How long a check waits in all for the locks it takes. */
#define CHECK_LOCK_MS 1000
/* Most walks of a heap read without its lock: an error is believed when
 * two walks in a row find the same one (traffic moves what it finds). */
#define UNLOCKED_WALKS 5

/* A referrer: a slot index, PIN_REFERRER | process entry index (its pin
 * directory and arrays), or TABLE_REFERRER | table (the chain's tables). */
#define PIN_REFERRER 0x80000000u
#define TABLE_REFERRER 0x40000000u
#define REFERRER_IDX(who) ((who) & ~(PIN_REFERRER | TABLE_REFERRER))

static const char *
referrer_name(uint32_t who)
{
	return who & PIN_REFERRER     ? "pin records of process"
	       : who & TABLE_REFERRER ? "table"
				      : "slot";
}

/* A reference that looked wrong against the heap snapshot: confirmed (or
 * not) after the scan, because under traffic the snapshot ages. */
struct suspect {
	uint64_t off;
	uint32_t who, other; /* other == UINT32_MAX: not a block of the chain */
};

struct suspects {
	struct suspect *s;
	size_t n, cap;
	bool oom;
};

struct blocks {
	struct block *b;
	size_t n, cap;
	bool oom;
};

static void
collect(void *ctx, uint64_t off, uint64_t cap, uint32_t owner)
{
	struct blocks *l = ctx;
	struct block *p = pxs__grow(l->b, l->n, &l->cap, sizeof *p, 256);
	if (!p) {
		l->oom = true;
		return;
	}
	l->b = p;
	l->b[l->n++] = (struct block){off, cap, owner, 0, 0};
}

/* The block whose payload starts at off (blocks are in address order). */
static struct block *
find_block(struct blocks *l, uint64_t off)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->b[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n && l->b[lo].off == off ? &l->b[lo] : NULL;
}

static void problem(pxs_check_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
problem(pxs_check_report *r, const char *fmt, ...)
{
	if (r->errors++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
		va_end(ap);
	}
}

/* Lock @p rc (of a lock named @p what, with index @p idx >= 0) was not
 * had: count it and name the first. A read-only handle tries no lock. */
static void
busy(const struct pxs_store *s, pxs_check_report *r, int rc,
     const char *what, long idx)
{
	if (s->rdonly || rc == 0)
		return;
	if (r->locks_busy++ == 0) {
		if (idx >= 0)
			snprintf(r->busy_lock, sizeof r->busy_lock, "%s %ld",
				 what, idx);
		else
			snprintf(r->busy_lock, sizeof r->busy_lock, "%s", what);
	}
}

/* Milliseconds until @p end (CLOCK_MONOTONIC), 0 if it has passed. */
static long
ms_left(const struct timespec *end)
{
	uint64_t at = (uint64_t)end->tv_sec * 1000000000u +
		      (uint64_t)end->tv_nsec,
		 now = pxs__now_ns(CLOCK_MONOTONIC);
	return at > now ? (long)((at - now) / 1000000u) : 0;
}

/* A pin-record array and whether its process is dead. */
struct pinrec {
	const uint16_t *a[PXS_MAX_TABLES]; /* per table, NULL: none */
	bool dead;
};

static void
suspect(struct suspects *q, uint64_t off, uint32_t who, uint32_t other)
{
	struct suspect *p = pxs__grow(q->s, q->n, &q->cap, sizeof *p, 16);
	if (!p) {
		q->oom = true;
		return;
	}
	q->s = p;
	q->s[q->n++] = (struct suspect){off, who, other};
}

/* The block a slot or pin array (who) refers to, under the referrer's
 * lock: a valid allocated header, big enough; and, against the heap
 * snapshot, a block of the chain (a forged header inside a payload is
 * not) referred to once. The snapshot checks are confirmed later. */
static void
reference(struct pxs_store *s, pxs_check_report *r, struct blocks *l,
	  struct suspects *q, uint64_t off, uint64_t size, uint32_t who)
{
	uint64_t cap;
	uint32_t owner;
	const char *what = referrer_name(who);
	uint32_t idx = REFERRER_IDX(who);
	if (pxs__heap_block(&s->heap, off, &cap, &owner) < 0)
		problem(r, "%s %u: offset %llu is not an allocated block", what,
			idx, (unsigned long long)off);
	else if (size > cap)
		problem(r, "%s %u: size %llu exceeds its block (%llu)", what,
			idx, (unsigned long long)size, (unsigned long long)cap);
	struct block *b = find_block(l, off);
	if (!b)
		suspect(q, off, who, UINT32_MAX);
	else if (b->refs++)
		suspect(q, off, who, b->first);
	else
		b->first = who;
}

/* Does who (still) refer to off? Read under its lock if it can be had
 * by @p end, else without it. */
static bool
refers(struct pxs_store *s, uint32_t who, uint64_t off,
       const struct timespec *end)
{
	if (who & TABLE_REFERRER) /* published tables never change */
		return true;
	if (who & PIN_REFERRER) {
		const struct pxs_seg_proc *p = &s->procs[REFERRER_IDX(who)];
		const uint64_t *dir = pxs__pin_dir(s, p);
		if (__atomic_load_n(&p->pins_off, __ATOMIC_ACQUIRE) == off)
			return true;
		for (uint32_t t = 0; dir && t < pxs__ntab(s); t++)
			if (__atomic_load_n(&dir[t], __ATOMIC_ACQUIRE) == off)
				return true;
		return false;
	}
	const struct pxs_seg_slot *sl = pxs__slot(s, who);
	int rc = pxs__slot_lock(s, who, end);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	bool yes = (pxs__state_holds_block(st) &&
		    __atomic_load_n(&sl->off, __ATOMIC_RELAXED) == off) ||
		   (st >= PXS_SLOT_READY && st < PXS_SLOT_NSTATES &&
		    __atomic_load_n(&sl->name_off, __ATOMIC_RELAXED) == off);
	if (rc == 0)
		pxs__slot_unlock(s, who);
	return yes;
}

/* Confirm the suspects against a fresh snapshot: a referrer that still
 * refers to an offset that is not a block of the chain, or two that still
 * refer to one block, is an error; anything else was traffic. */
static int
confirm(struct pxs_store *s, pxs_check_report *r, struct suspects *q,
	const struct timespec *end)
{
	struct blocks l2 = {0};
	int rc = pxs__heap_lock_by(s, end);
	if (rc == -ENOTRECOVERABLE)
		return rc;
	pxs__heap_walk(&s->heap, collect, &l2);
	if (rc == 0)
		pxs__unlock(&s->hdr->heap_lock);
	if (l2.oom) {
		free(l2.b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < q->n; i++) {
		const struct suspect *x = &q->s[i];
		uint32_t idx = REFERRER_IDX(x->who);
		if (!refers(s, x->who, x->off, end))
			continue;
		if (x->other == UINT32_MAX && !find_block(&l2, x->off))
			problem(r, "%s %u: offset %llu is not a block of the "
				   "heap", referrer_name(x->who), idx, (unsigned long long)x->off);
		else if (x->other != UINT32_MAX &&
			 refers(s, x->other, x->off, end))
			problem(r, "block %llu is referred to twice (by %u and "
				   "%u)", (unsigned long long)x->off,
				REFERRER_IDX(x->other), idx);
	}
	free(l2.b);
	return 0;
}

/* Did slot @p sl, read without its lock, change while it was looked at? */
static bool
slot_moved(const struct pxs_seg_slot *sl, uint32_t st, uint32_t gen)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE) != st ||
	       __atomic_load_n(&sl->gen, __ATOMIC_RELAXED) != gen;
}

/* Check and walk the heap (collecting its blocks into @p l): the first
 * error in @p err, "" if none. */
static void
heap_error(struct pxs_store *s, uint64_t heap_size, struct pxs_heap_report *hr,
	   pxs_heap_visit_fn fn, struct blocks *l, char *err, size_t len)
{
	int hrc = pxs__heap_check(&s->heap, hr);
	int wrc = pxs__heap_walk(&s->heap, fn, l);
	err[0] = 0;
	if (hrc < 0)
		snprintf(err, len, "heap: %s", hr->first_error);
	else if (wrc < 0)
		snprintf(err, len, "heap: the block walk failed");
	else if (hr->bytes_free + hr->bytes_used != heap_size)
		snprintf(err, len, "heap: free %llu + used %llu != size %llu",
			 (unsigned long long)hr->bytes_free,
			 (unsigned long long)hr->bytes_used,
			 (unsigned long long)heap_size);
}

/* One slot, under its lock (@p locked) or read without it. Returns 1 if
 * it is live. */
static int
check_slot(struct pxs_store *s, pxs_check_report *r, struct blocks *l,
	   struct suspects *q, const struct pinrec *pr, size_t npr, uint32_t i,
	   bool locked)
{
	const struct pxs_seg_slot *sl = pxs__slot(s, i);
	uint32_t tb = pxs__idx_tab(s, i), base = pxs__tab_base(s, tb);
	uint32_t gen = __atomic_load_n(&sl->gen, __ATOMIC_RELAXED);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	if (st < PXS_SLOT_READY || st >= PXS_SLOT_NSTATES)
		return 0;
	uint64_t off = __atomic_load_n(&sl->off, __ATOMIC_RELAXED),
		 size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
	pxs_check_report before;
	if (!locked)
		before = *r;
	uint32_t pins = 0, dead_pins = 0;
	if (!pxs__state_holds_block(st)) {
		if (off)
			problem(r, "slot %u: a future without a value holds a "
				   "block", i);
	} else if (off) {
		reference(s, r, l, q, off, size, i);
	} else if (size) {
		problem(r, "slot %u: %llu bytes but no block", i,
			(unsigned long long)size);
	}
	uint64_t name_off = __atomic_load_n(&sl->name_off, __ATOMIC_RELAXED);
	if (name_off) {
		pxs_key key = {.hi = __atomic_load_n(&sl->key_hi,
						     __ATOMIC_RELAXED),
			       .lo = __atomic_load_n(&sl->key_lo,
						     __ATOMIC_RELAXED)};
		if (pxs__slot_name_block(s, sl, key, NULL, NULL) != name_off)
			problem(r, "slot %u: name offset %llu is not a name "
				   "block of its key", i,
				(unsigned long long)name_off);
		else
			reference(s, r, l, q, name_off, 0, i);
	}
	/* Pins are the pin records (pins.c). A live reader may count
	 * one for a moment on a slot in any state before it backs off, so a
	 * pin on a future is not held against it here. */
	for (size_t p = 0; p < npr; p++) {
		const uint16_t *a = pr[p].a[tb];
		uint16_t n = a ? __atomic_load_n(&a[i - base], __ATOMIC_RELAXED)
			       : 0;
		pins += n;
		if (pr[p].dead)
			dead_pins += n;
	}
	r->pins += pins;
	r->dead_pins += dead_pins;
	/* The waiter count is what the attached processes' wait records
	 * hold for this generation (waits.c); a dead waiter's share stays
	 * until its reaper, and is reported, not an error. */
	uint32_t dead_waiters, waiters = pxs__waits_on_slot(s, i, &dead_waiters);
	uint32_t counted = PXS_WAITERS_COUNT(
		__atomic_load_n(&sl->waiters, __ATOMIC_RELAXED));
	if (locked && counted != waiters)
		problem(r, "slot %u: %u waiters counted, %u registered", i,
			counted, waiters);
	r->waiters += waiters;
	r->dead_waiters += dead_waiters;
	/* Read without the lock: what a slot that changed meanwhile showed
	 * is traffic, not a finding (its references are confirmed later). */
	if (!locked && slot_moved(sl, st, gen))
		*r = before;
	return 1;
}

/* Every slot under its own lock, all under the table lock with the
 * insertion gate closed: no slot changes while it is looked at and none
 * becomes live during the scan, so the verdict is exact even under
 * traffic. A slot whose lock a stopped process holds is skipped after a
 * second; if a stopped process is inside an insertion, or the table lock
 * cannot be had, the count is a snapshot and not held against the
 * capacity. */
static void
check_slots(struct pxs_store *s, pxs_check_report *r, struct blocks *l,
	    struct suspects *q, const struct pinrec *pr, size_t npr,
	    const struct timespec *end)
{
	int rc = pxs__table_lock(s, end);
	bool table = rc == 0;
	busy(s, r, rc, "table", -1);
	bool exact = table && pxs__gate_close(s, ms_left(end));
	uint32_t live = 0;
	for (uint32_t i = 0; i < pxs__nslots(s); i++) {
		uint32_t st = __atomic_load_n(&pxs__slot(s, i)->state,
					      __ATOMIC_ACQUIRE);
		if (st >= PXS_SLOT_NSTATES) {
			problem(r, "slot %u: invalid state %u", i, st);
			continue;
		}
		if (st < PXS_SLOT_READY)
			continue;
		rc = pxs__slot_lock(s, i, end);
		if (rc == -EPROTO && __atomic_load_n(&pxs__slot(s, i)->state,
						     __ATOMIC_ACQUIRE) >=
					     PXS_SLOT_NSTATES)
			continue; /* no longer a state: the next check sees it */
		busy(s, r, rc, "slot", (long)i);
		live += check_slot(s, r, l, q, pr, npr, i, rc == 0);
		if (rc == 0)
			pxs__slot_unlock(s, i);
	}
	r->slots_live = live;
	/* The header's live count includes insertions under way and may be
	 * high after a crash until recounted, so it is not compared here. */
	if (table) {
		pxs__gate_open(s);
		pxs__unlock(&s->hdr->table_lock);
	}
	if (exact && s->g.capacity && live > s->g.capacity)
		problem(r, "%u live slots exceed the capacity %u", live,
			s->g.capacity);
}

/* The chain of tables: every descriptor the header publishes valid, and
 * every table after the first a block of the heap of its size, referred
 * to by nothing else. */
static void
check_chain(struct pxs_store *s, pxs_check_report *r, struct blocks *l,
	    struct suspects *q)
{
	if (pxs__chain_sync(s) < 0)
		problem(r, "chain: %u tables published, %u of them valid",
			__atomic_load_n(&s->hdr->ntables, __ATOMIC_RELAXED),
			pxs__ntab(s));
	for (uint32_t t = 1; t < pxs__ntab(s); t++)
		reference(s, r, l, q,
			  __atomic_load_n(&s->hdr->tables[t].off,
					  __ATOMIC_RELAXED),
			  (uint64_t)pxs__tab_slots(s, t) *
				  sizeof(struct pxs_seg_slot),
			  TABLE_REFERRER | t);
}

/* One whole check. */
static int
check_once(struct pxs_store *s, pxs_check_report *r)
{
	int rc;
	memset(r, 0, sizeof *r);
	struct pxs_heap_report hr;
	struct blocks l = {0};
	struct suspects q = {0};
	bool *dead = calloc(PXS_MAX_PROCS, sizeof *dead);
	struct pinrec *pr = calloc(PXS_MAX_PROCS, sizeof *pr);
	size_t npr = 0;
	if (!dead || !pr) {
		free(dead);
		free(pr);
		return -ENOMEM;
	}
	struct timespec end;
	pxs__deadline(&end, CHECK_LOCK_MS);
	if ((rc = pxs__heap_lock_by(s, &end)) == -ENOTRECOVERABLE)
		goto out;
	bool heap_locked = rc == 0;
	busy(s, r, rc, "heap", -1);
	r->heap_size = s->g.heap_end - s->g.heap_off;
	char err[sizeof r->first_error], prev[sizeof err] = "";
	bool judged = false;
	for (int walk = 1;; walk++) {
		l.n = 0;
		heap_error(s, r->heap_size, &hr, collect, &l, err, sizeof err);
		if (heap_locked || l.oom || !err[0] ||
		    (walk > 1 && strcmp(err, prev) == 0)) {
			judged = true;
			break;
		}
		if (walk == UNLOCKED_WALKS)
			break; /* it kept changing: traffic, not judged */
		memcpy(prev, err, sizeof prev);
	}
	if (heap_locked)
		pxs__unlock(&s->hdr->heap_lock);
	rc = -ENOMEM;
	if (l.oom)
		goto out;
	if (judged && err[0])
		problem(r, "%s", err);
	r->bytes_free = hr.bytes_free;
	r->bytes_used = hr.bytes_used;
	r->bytes_overhead = hr.bytes_overhead;
	r->largest_free = hr.largest_free;
	r->blocks_used = hr.blocks_used;
	r->blocks_free = hr.blocks_free;

	check_chain(s, r, &l, &q);
	for (uint32_t p = 0; p < PXS_MAX_PROCS; p++) {
		const struct pxs_seg_proc *e = &s->procs[p];
		uint32_t st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
		if (st != PXS_PROC_LIVE) {
			if (st != PXS_PROC_FREE)
				problem(r, "process entry %u: invalid state %u",
					p, st);
			continue;
		}
		dead[p] = !pxs__proc_alive(
			s,
			pxs__token(__atomic_load_n(&e->gen, __ATOMIC_ACQUIRE),
				   p));
		if (dead[p])
			r->dead_processes++;
		else
			r->processes++;
		uint64_t off = __atomic_load_n(&e->pins_off, __ATOMIC_ACQUIRE);
		if (off)
			reference(s, r, &l, &q, off,
				  PXS_MAX_TABLES * sizeof(uint64_t),
				  PIN_REFERRER | p);
		const uint64_t *dir = pxs__pin_dir(s, e);
		if (!dir)
			continue;
		pr[npr] = (struct pinrec){.dead = dead[p]};
		for (uint32_t t = 0; t < pxs__ntab(s); t++) {
			uint64_t at = __atomic_load_n(&dir[t], __ATOMIC_ACQUIRE);
			if (at)
				reference(s, r, &l, &q, at,
					  (uint64_t)pxs__tab_slots(s, t) *
						  sizeof(uint16_t),
					  PIN_REFERRER | p);
			pr[npr].a[t] = pxs__pin_array(s, e, t);
		}
		npr++;
	}
	check_slots(s, r, &l, &q, pr, npr, &end);
	uint32_t bell_counted, bell_recorded, bell_dead, bell_busy;
	uint32_t bells_busy = pxs__bell_check(s, &end, &bell_counted,
					      &bell_recorded, &bell_dead,
					      &bell_busy);
	if (bells_busy) {
		busy(s, r, -ETIMEDOUT, "doorbell", (long)bell_busy);
		if (!s->rdonly)
			r->locks_busy += bells_busy - 1;
	} else if (bell_counted != bell_recorded) {
		problem(r, "doorbells: %u waiters counted, %u registered",
			bell_counted, bell_recorded);
	}
	r->waiters += bell_recorded;
	r->dead_waiters += bell_dead;
	rc = q.oom ? -ENOMEM : q.n ? confirm(s, r, &q, &end) : 0;
	if (rc == -ENOMEM || rc == -ENOTRECOVERABLE)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		uint32_t owner = l.b[i].owner;
		if (!l.b[i].refs && owner && dead[pxs__token_idx(owner)] &&
		    s->procs[pxs__token_idx(owner)].gen ==
			    pxs__token_gen(owner))
			r->leaked_blocks++;
	}
	rc = r->errors ? -EPROTO : 0;
out:
	free(q.s);
	free(l.b);
	free(dead);
	free(pr);
	return rc;
}

/*
 * TRAFFIC OR DAMAGE. A read-only handle takes no lock, so under put and
 * evict traffic its walk of the heap can cross a change and find what
 * looks like damage (a block split half-way, a free list relinked). The
 * heap's change counter (alloc.c, THE CHANGE COUNTER) tells the two apart:
 * a check is believed only if the counter held the same even value from
 * before its first read to after its last; a check that found an
 * inconsistency while the counter moved is run again, for up to
 * CHECK_LOCK_MS (at least RDONLY_MIN_TRIES checks). A check that found
 * nothing is believed at once. If every try overlapped a change, the
 * report says so, as for a lock not had: no error, locks_busy counted and
 * busy_lock "heap (changing)". Slot changes that touch
 * no block are judged by each slot's state and generation (slot_moved).
 */
#define RDONLY_MIN_TRIES 3

int
pxs__shm_check(pxs_store *s, pxs_check_report *r)
{
	int rc = pxs__enter_args(s, r != NULL);
	if (rc < 0)
		return rc;
	if (!s->rdonly)
		return check_once(s, r);
	uint64_t until = pxs__now_ns(CLOCK_MONOTONIC) +
			 (uint64_t)CHECK_LOCK_MS * 1000000u;
	for (int n = 1;; n++) {
		uint64_t c0 = pxs__heap_changes(&s->heap);
		rc = check_once(s, r);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (rc != -EPROTO ||
		    (!(c0 & 1) && pxs__heap_changes(&s->heap) == c0))
			return rc;
		if (n >= RDONLY_MIN_TRIES &&
		    pxs__now_ns(CLOCK_MONOTONIC) >= until)
			break;
		sched_yield(); /* let the change under way end */
	}
	r->errors = 0;
	r->first_error[0] = '\0';
	r->locks_busy++;
	snprintf(r->busy_lock, sizeof r->busy_lock,
		 "heap (changing)");
	return 0;
}

int
pxs__shm_reap(pxs_store *s)
{
	if (!s)
		return -EINVAL;
	int rc = pxs__enter(s);
	if (rc < 0 || (rc = pxs__reap_procs(s)) < 0)
		return rc;
	pxs__reclaim_expired(s);
	return rc;
}
