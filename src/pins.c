/* pins.c - who holds which value: pin arrays, pinning and unpinning.
 *
 * Owns: each process's pin array, the pin a get takes (with or without the
 * slot lock) and the unpin of a release, the sum of pins on a slot, and
 * the freeing of an evicted value nobody holds any more.
 *
 * PIN ARRAYS. Each process entry has a uint16_t[nslots] array in the heap,
 * allocated at its first pin (a handle that never pins has none, so that
 * attaching costs no heap): element i counts the
 * pins it holds on slot i, and is written by that process only, with
 * atomic operations. There is no count in the slot: a slot's pins are the
 * sum of the arrays' i-th elements (pxs__pins_on), read by whoever must
 * decide whether a value may be freed. A process that dies leaves its
 * array as it was; the reaper drops those pins (reap.c).
 *
 * PINS. A pin is one count in the pinning process's own pin array
 * and nothing else: a get and its release write no line that another
 * process uses, so readers of one value, or of neighbouring slots, do not
 * slow each other down. A value may be freed only when no array counts a
 * pin on its slot, which an evicter or a releaser decides under the slot
 * lock; a reader pins without it. The two meet like Dekker's protocol:
 *
 *   reader:  pin (own array)        evicter:  state = EVICTED
 *            fence (seq_cst)                  fence (seq_cst)
 *            read state, key, gen             sum the arrays' pins
 *
 * so at least one sees the other: either the reader sees EVICTED and drops
 * its pin without touching the value, or the evicter sees the pin and
 * keeps the block (EVICTED) for the last releaser to free. A reader checks
 * the generation before and after (a slot freed and reused in between has
 * a new one). A releaser drops its pin, fences and reads the state; if the
 * value was evicted meanwhile, it frees it under the slot lock when nobody
 * pins it any more. A process killed between dropping its pin and freeing
 * leaves an evicted value nobody holds: the reaper frees those (reap.c).
 */
#include "internal.h"

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

uint32_t
pxs__pins_on(struct pxs_store *s, uint32_t idx)
{
	uint64_t sum = 0;
	for (uint32_t i = 0, n = pxs__procs_hi(s); i < n; i++) {
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
	for (uint32_t i = 0, n = pxs__procs_hi(s); i < n; i++) {
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
bool
pxs__slot_tombstone_if_unheld(struct pxs_store *s, uint32_t idx,
			      uint64_t *off)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	if (sl->state != PXS_SLOT_EVICTED || sl->owner ||
	    pxs__pins_on(s, idx))
		return false;
	*off = pxs__slot_tombstone(s, idx);
	return true;
}

/* Lock slot idx and, if it is EVICTED and nobody pins or produces it,
 * free it (then sweep). Whatever value it holds by then: an evicted value
 * nobody holds is garbage, whoever notices. */
static int
free_if_unheld(struct pxs_store *s, uint32_t idx)
{
	int rc = pxs__slot_lock(s, idx, NULL);
	if (rc < 0)
		return rc;
	uint64_t off = 0;
	bool freed = pxs__slot_tombstone_if_unheld(s, idx, &off);
	if (freed)
		PXS_FAILPOINT(FP_RELEASE_AFTER_UNPUBLISH);
	return pxs__slot_unlock_reclaim(s, idx, false, freed, off);
}

/* ---- pinning ------------------------------------------------------------ */

/* The payload (off, sz) of a published slot, validated against the heap. */
static int
payload_at(struct pxs_store *s, uint64_t off, uint64_t sz, const void **data)
{
	uint64_t cap = 0;
	uint32_t owner;
	if (off == 0) {
		if (sz != 0)
			return -EPROTO;
	} else if (pxs__heap_block(&s->heap, off, &cap, &owner) < 0 ||
		   sz > cap) {
		return -EPROTO;
	}
	*data = s->base + (off ? off : s->g.heap_off);
	return 0;
}

int
pxs__slot_payload(struct pxs_store *s, const struct pxs_seg_slot *sl,
		  const void **data, uint64_t *size)
{
	*size = sl->size;
	return payload_at(s, sl->off, *size, data);
}

/* ---- pins ------------------------------------------------------------- */

/* This process's pin array, allocated at the handle's first pin. It lives
 * as long as the handle, between objects allocated before and after it
 * (the price of not making every attach, a `stat` included, pay for one):
 * 2 B a slot, from the heap, so a full heap refuses a first pin with
 * -ENOSPC and a later one may succeed. */
uint16_t *
pxs__my_pins(struct pxs_store *s)
{
	return pxs__my_pins_by(s, NULL);
}

uint16_t *
pxs__my_pins_by(struct pxs_store *s, const struct timespec *deadline)
{
	uint16_t *a = __atomic_load_n(&s->pins, __ATOMIC_ACQUIRE);
	if (PXS_LIKELY(a != NULL))
		return a;
	pthread_mutex_lock(&s->local);
	struct pxs_seg_proc *p = &s->procs[pxs__token_idx(s->token)];
	if (!(a = s->pins) && !(a = pxs__pin_array(s, p))) {
		uint64_t off, n = (uint64_t)s->g.nslots * sizeof(uint16_t);
		if (pxs__block_alloc_by(s, n, deadline, &off) == 0) {
			a = (uint16_t *)(s->base + off);
			memset(a, 0, n);
			__atomic_store_n(&p->pins_off, off, __ATOMIC_RELEASE);
		}
	}
	__atomic_store_n(&s->pins, a, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->local);
	return a;
}

/* A pinned value: fill the view. */
static void
fill_view(struct pxs_store *s, uint32_t idx, uint32_t gen, const void *data,
	  uint64_t size, pxs_view *v)
{
	v->data = data;
	v->size = (size_t)size;
	v->priv[0] = idx | (uint64_t)gen << 32;
	v->priv[1] = (uintptr_t)s;
	v->priv[2] = s->token;
	pxs__count(s, PXS_CTR_GETS);
}

int
pxs__view_pin(struct pxs_store *s, uint32_t idx, pxs_view *v)
{
	struct pxs_seg_slot *sl = &s->slots[idx];
	const void *data;
	uint64_t size;
	int rc = pxs__slot_payload(s, sl, &data, &size);
	if (rc < 0)
		return rc;
	uint16_t *mine = pxs__my_pins(s);
	if (!mine) /* no room for this handle's pin records */
		return -ENOSPC;
	if (__atomic_load_n(&mine[idx], __ATOMIC_RELAXED) == UINT16_MAX)
		return -EOVERFLOW;
	/* Under the slot lock, so no evicter is between its state store and
	 * its count of the pins. */
	__atomic_fetch_add(&mine[idx], 1, __ATOMIC_SEQ_CST);
	fill_view(s, idx, sl->gen, data, size, v);
	return 0;
}

int
pxs__unpin(struct pxs_store *s, uint32_t idx)
{
	__atomic_fetch_sub(&s->pins[idx], 1, __ATOMIC_SEQ_CST);
	PXS_FAILPOINT(FP_RELEASE_BETWEEN_COUNTS);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->slots[idx].state, __ATOMIC_RELAXED) !=
	    PXS_SLOT_EVICTED)
		return 0;
	/* Not only the value we pinned: a reader backing off may have
	 * pinned, for a moment, a slot that was freed and reused since its
	 * lookup, and made that value's evicter keep it. */
	return free_if_unheld(s, idx);
}

/* pxs_get() without the slot lock, for a READY value (PINS, above):
 * -ENOENT if the key is not there, -EAGAIN sends the caller to the locked
 * path, which handles the rest. */
int
pxs__pin_lockless(struct pxs_store *s, pxs_key key, pxs_view *v)
{
	uint32_t idx;
	uint16_t *mine;
	if (pxs__table_find(s, key, &idx) < 0)
		return -ENOENT; /* the locked path would probe again for that */
	/* The first pin goes the locked path, which allocates the records
	 * only for a value it does pin: a failing get changes nothing. */
	if (!(mine = __atomic_load_n(&s->pins, __ATOMIC_ACQUIRE)) ||
	    __atomic_load_n(&mine[idx], __ATOMIC_RELAXED) == UINT16_MAX)
		return -EAGAIN;
	struct pxs_seg_slot *sl = &s->slots[idx];
	uint32_t gen = __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE);
	__atomic_fetch_add(&mine[idx], 1, __ATOMIC_SEQ_CST);
	PXS_FAILPOINT(FP_PIN_BETWEEN_COUNTS);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
	bool ok = st == PXS_SLOT_READY && pxs__slot_has_key(sl, key);
	uint64_t off = __atomic_load_n(&sl->off, __ATOMIC_RELAXED),
		 size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	ok = ok && __atomic_load_n(&sl->gen, __ATOMIC_RELAXED) == gen &&
	     __atomic_load_n(&sl->state, __ATOMIC_RELAXED) == PXS_SLOT_READY;
	const void *data;
	if (ok && payload_at(s, off, size, &data) == 0) {
		fill_view(s, idx, gen, data, size, v);
		return 0;
	}
	pxs__unpin(s, idx);
	return -EAGAIN;
}
