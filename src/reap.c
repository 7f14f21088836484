/* reap.c - recovering what a dead (or departed) process left behind.
 *
 * Owns: pin arrays (who pins what), and the reaper that undoes a dead
 * process's pins, abandons its futures, frees its reservations and the
 * blocks it allocated but never published, and frees its process entry.
 *
 * PIN ARRAYS. Each process entry has a uint16_t[nslots] array in the heap,
 * allocated when it attaches (or at its first pin): element i counts the
 * pins it holds on slot i, and is written by that process only, with
 * atomic operations. There is no count in the slot: a slot's pins are the
 * sum of the arrays' i-th elements (pxs__pins_on), read by whoever must
 * decide whether a value may be freed (store.c says why that is safe
 * without the slot lock on the pinning side). A process that dies leaves
 * its array as it was; the reaper drops those pins.
 *
 * WHO REAPS. A process entry is dead when its liveness lock can be taken
 * (procs.c). Reaping runs under the process-table lock, with the dead
 * entry's liveness lock held by the reaper, so two reapers never work on
 * one entry: when a process attaches (before it reuses a dead entry),
 * whenever an allocation or insertion would fail with -ENOSPC, and from
 * pxs_close() for the closing handle's own entry. Every step is idempotent
 * and done under the lock of what it changes, so a reaper that dies
 * half-way leaves work that the next reaper finishes.
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

uint16_t *
pxs__pin_array(struct pxs_store *s, const struct pxs_seg_proc *p)
{
	uint64_t off = __atomic_load_n(&p->pins_off, __ATOMIC_ACQUIRE), cap;
	uint32_t owner;
	if (!off || pxs__heap_block(&s->heap, off, &cap, &owner) < 0 ||
	    cap < (uint64_t)s->g.nslots * sizeof(uint16_t))
		return NULL;
	return (uint16_t *)(s->base + off);
}

/* Entries at or above this were never claimed: scans stop there. */
static uint32_t
procs_hi(const struct pxs_store *s)
{
	uint32_t n = __atomic_load_n(&s->hdr->procs_hi, __ATOMIC_ACQUIRE);
	return n < PXS_MAX_PROCS ? n : PXS_MAX_PROCS;
}

uint32_t
pxs__pins_on(struct pxs_store *s, uint32_t idx)
{
	uint64_t sum = 0;
	for (uint32_t i = 0, n = procs_hi(s); i < n; i++) {
		const struct pxs_seg_proc *p = &s->procs[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE)
			continue;
		const uint16_t *a = pxs__pin_array(s, p);
		if (a)
			sum += __atomic_load_n(&a[idx], __ATOMIC_RELAXED);
	}
	return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

uint64_t
pxs__pins_total(struct pxs_store *s)
{
	uint64_t sum = 0;
	for (uint32_t i = 0, n = procs_hi(s); i < n; i++) {
		const struct pxs_seg_proc *p = &s->procs[i];
		const uint16_t *a;
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
			    PXS_PROC_LIVE ||
		    !(a = pxs__pin_array(s, p)))
			continue;
		for (uint32_t j = 0; j < s->g.nslots; j++)
			sum += __atomic_load_n(&a[j], __ATOMIC_RELAXED);
	}
	return sum;
}

/* Under slot idx's lock: if the slot is evicted and nothing holds it any
 * more, free it; returns the block to reclaim after unlocking. */
static bool
release_if_unheld(struct pxs_store *s, uint32_t idx, uint64_t *off)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	if (sl->state != PXS_SLOT_EVICTED || sl->owner ||
	    pxs__pins_on(s, idx))
		return false;
	*off = pxs__slot_free(s, idx);
	return true;
}

int
pxs__free_if_unheld(struct pxs_store *s, uint32_t idx)
{
	int rc = pxs__slot_lock(s, idx, NULL);
	if (rc < 0)
		return rc;
	uint64_t off = 0;
	bool freed = release_if_unheld(s, idx, &off);
	if (freed)
		PXS_FAILPOINT(FP_RELEASE_AFTER_UNPUBLISH);
	pxs__slot_unlock(s, idx);
	return freed ? pxs__slot_reclaim(s, idx, off) : 0;
}

/* Drop every pin recorded in array a, slot by slot. */
static void
drop_pins(struct pxs_store *s, uint16_t *a)
{
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		if (!a[i] || pxs__slot_lock(s, i, NULL) < 0)
			continue;
		uint64_t off = 0;
		__atomic_store_n(&a[i], 0, __ATOMIC_RELAXED);
		PXS_FAILPOINT(FP_REAP_MID_PINS);
		bool freed = release_if_unheld(s, i, &off);
		pxs__slot_unlock(s, i);
		if (freed)
			pxs__slot_reclaim(s, i, off);
	}
}

/* Abandon the futures owned by token; finish its evicted reservations;
 * free evicted values that nobody holds any more (a process that died
 * between dropping its last pin and freeing the value leaves one). */
static void
drop_ownership(struct pxs_store *s, uint32_t token)
{
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		struct pxs_seg_slot *sl = &s->slots[i];
		uint32_t owner = __atomic_load_n(&sl->owner, __ATOMIC_RELAXED);
		if ((owner != token &&
		     (owner != 0 || __atomic_load_n(&sl->state,
						    __ATOMIC_RELAXED) !=
					    PXS_SLOT_EVICTED)) ||
		    pxs__slot_lock(s, i, NULL) < 0)
			continue;
		uint64_t off = 0;
		bool freed = false;
		if (sl->owner == 0) {
			freed = release_if_unheld(s, i, &off);
		} else if (sl->owner == token) {
			if (sl->state == PXS_SLOT_PENDING ||
			    sl->state == PXS_SLOT_RESERVED) {
				PXS_FAILPOINT(FP_REAP_MID_OWNERSHIP);
				pxs__slot_abandon(s, i);
			} else if (sl->state == PXS_SLOT_EVICTED) {
				sl->owner = 0;
				freed = release_if_unheld(s, i, &off);
			}
		}
		pxs__slot_unlock_wake(s, i);
		if (freed)
			pxs__slot_reclaim(s, i, off);
	}
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
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 64;
		uint64_t *p = realloc(l->off, ncap * sizeof *p);
		if (!p)
			return; /* best effort: a later reap finds the rest */
		l->off = p;
		l->cap = ncap;
	}
	l->off[l->n++] = off;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Free the blocks token allocated but no slot references. */
static void
free_leaked(struct pxs_store *s, uint32_t token)
{
	struct leak_list l = {.token = token};
	if (pxs__heap_lock(s) < 0)
		return;
	pxs__heap_walk(&s->heap, collect_owned, &l);
	pxs__unlock(&s->hdr->heap_lock);
	if (!l.n)
		goto out;
	qsort(l.off, l.n, sizeof *l.off, cmp_u64);
	/* Strike out the blocks that slots reference. */
	for (uint32_t i = 0; i < s->g.nslots; i++) {
		const struct pxs_seg_slot *sl = &s->slots[i];
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		uint64_t off = __atomic_load_n(&sl->off, __ATOMIC_RELAXED);
		if (!pxs__state_holds_block(st) || !off)
			continue;
		uint64_t *hit =
			bsearch(&off, l.off, l.n, sizeof *l.off, cmp_u64);
		if (hit)
			*hit |= 1; /* referenced; offsets are 16-aligned, so order is kept */
	}
	PXS_FAILPOINT(FP_REAP_MID_LEAKS);
	if (pxs__heap_lock(s) < 0)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		uint64_t cap;
		uint32_t owner;
		if (!(l.off[i] & 1) &&
		    pxs__heap_block(&s->heap, l.off[i], &cap, &owner) == 0 &&
		    owner == token)
			pxs__heap_free(&s->heap, l.off[i]);
	}
	pxs__unlock(&s->hdr->heap_lock);
out:
	free(l.off);
}

/* Take back the waits a dead process's threads registered: each record is
 * cleared under its slot's lock and the slot recounted (waits.c), so a
 * reaper that dies half-way leaves records the next one finds. */
static void
drop_waits(struct pxs_store *s, struct pxs_seg_proc *p)
{
	for (uint32_t r = 0; r < PXS_PROC_WAITS; r++) {
		struct pxs_seg_wait *w = &p->waits[r];
		uint32_t idx = __atomic_load_n(&w->slot, __ATOMIC_RELAXED);
		if (!__atomic_load_n(&w->n, __ATOMIC_ACQUIRE))
			continue;
		if (idx >= s->g.nslots) { /* not a slot: forget it */
			__atomic_store_n(&w->n, 0, __ATOMIC_RELEASE);
			continue;
		}
		if (pxs__slot_lock(s, idx, NULL) < 0)
			continue;
		__atomic_store_n(&w->n, 0, __ATOMIC_RELEASE);
		PXS_FAILPOINT(FP_REAP_MID_WAITS);
		pxs__waits_recount_slot(s, idx);
		pxs__slot_unlock(s, idx);
	}
	pxs__bell_drop(s, p);
}

void
pxs__reap_entry(struct pxs_store *s, uint32_t i)
{
	struct pxs_seg_proc *p = &s->procs[i];
	uint32_t token = pxs__token(p->gen, i);
	uint16_t *a = pxs__pin_array(s, p);
	drop_waits(s, p);
	if (a) {
		drop_pins(s, a);
		uint64_t off = p->pins_off;
		__atomic_store_n(&p->pins_off, 0, __ATOMIC_RELEASE);
		pxs__block_free(s, off);
	}
	drop_ownership(s, token);
	free_leaked(s, token);
}
