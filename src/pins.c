/* pins.c - who holds which value: pin arrays, pinning and unpinning.
 *
 * Owns: each process's pin array, the pin a get takes (with or without the
 * slot lock) and the unpin of a release, the sum of pins on a slot, and
 * the freeing of an evicted value nobody holds any more.
 *
 * PIN ARRAYS. Each process entry has, for each table of the chain
 * (chain.c), a uint16_t[n0 << t] array in the heap, allocated at its first
 * pin in that table (a handle that never pins has none, so that attaching
 * costs no heap, and a table nobody pins in costs no pin arrays): element
 * i counts the pins it holds on slot i of that table, and is written by
 * that process only, with atomic operations. The entry's `pins_off` names
 * its pin directory, uint64_t[PXS_MAX_TABLES], allocated with its first
 * array, whose entry t names the array of table t; both are published
 * (release) after they are zeroed, and freed with the entry (reap.c). There is no count in the slot: a slot's pins are the
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

/* A heap block at off of at least bytes, or NULL. */
static void *
block_at(struct pxs_store *s, uint64_t off, uint64_t bytes)
{
	uint64_t cap;
	uint32_t owner;
	if (!off || pxs__heap_block(&s->heap, off, &cap, &owner) < 0 ||
	    cap < bytes)
		return NULL;
	return s->base + off;
}

uint64_t *
pxs__pin_dir(struct pxs_store *s, const struct pxs_seg_proc *p)
{
	return block_at(s, __atomic_load_n(&p->pins_off, __ATOMIC_ACQUIRE),
			PXS_MAX_TABLES * sizeof(uint64_t));
}

uint16_t *
pxs__pin_array(struct pxs_store *s, const struct pxs_seg_proc *p, uint32_t t)
{
	const uint64_t *dir = pxs__pin_dir(s, p);
	if (!dir || t >= pxs__ntab(s))
		return NULL;
	return block_at(s, __atomic_load_n(&dir[t], __ATOMIC_ACQUIRE),
			(uint64_t)pxs__tab_slots(s, t) * sizeof(uint16_t));
}

uint32_t
pxs__pins_on(struct pxs_store *s, uint32_t idx)
{
	uint64_t sum = 0;
	uint32_t t = pxs__idx_tab(s, idx), j = idx - pxs__tab_base(s, t);
	for (uint32_t i = 0, n = pxs__procs_hi(s); i < n; i++) {
		const struct pxs_seg_proc *p = &s->procs[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE)
			continue;
		const uint16_t *a = pxs__pin_array(s, p, t);
		if (a)
			sum += __atomic_load_n(&a[j], __ATOMIC_RELAXED);
	}
	return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

uint64_t
pxs__pins_total(struct pxs_store *s)
{
	uint64_t sum = 0;
	for (uint32_t i = 0, n = pxs__procs_hi(s); i < n; i++) {
		const struct pxs_seg_proc *p = &s->procs[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE)
			continue;
		for (uint32_t t = 0; t < pxs__ntab(s); t++) {
			const uint16_t *a = pxs__pin_array(s, p, t);
			for (uint32_t j = 0; a && j < pxs__tab_slots(s, t); j++)
				sum += __atomic_load_n(&a[j], __ATOMIC_RELAXED);
		}
	}
	return sum;
}

/* Under slot idx's lock: if the slot is evicted and nothing holds it any
 * more, free it; returns the block to reclaim after unlocking. */
bool
pxs__slot_tombstone_if_unheld(struct pxs_store *s, uint32_t idx,
			      uint64_t *off)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
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

/* A zeroed block of n bytes from the heap, or 0. */
static uint64_t
zeroed_block(struct pxs_store *s, uint64_t n, const struct timespec *deadline)
{
	uint64_t off;
	if (pxs__block_alloc_by(s, n, deadline, &off) < 0)
		return 0;
	memset(s->base + off, 0, n);
	return off;
}

/* Under s->local: this process's pin array for table t, allocated (with
 * the directory, the first time) if it has none. */
static uint16_t *
alloc_pins(struct pxs_store *s, uint32_t t, const struct timespec *deadline)
{
	struct pxs_seg_proc *p = &s->procs[pxs__token_idx(s->token)];
	uint64_t *dir = s->pindir, dir_off = 0;
	uint16_t *a;
	if (!dir && !(dir = pxs__pin_dir(s, p))) {
		dir_off = zeroed_block(s, PXS_MAX_TABLES * sizeof(uint64_t),
				       deadline);
		if (!dir_off)
			return NULL;
		dir = (uint64_t *)(s->base + dir_off);
		__atomic_store_n(&p->pins_off, dir_off, __ATOMIC_RELEASE);
	}
	s->pindir = dir;
	if (!(a = pxs__pin_array(s, p, t))) {
		uint64_t off = zeroed_block(
			s, (uint64_t)pxs__tab_slots(s, t) * sizeof(uint16_t),
			deadline);
		if (!off && dir_off) {
			/* A failed first pin leaves nothing behind. */
			__atomic_store_n(&p->pins_off, 0, __ATOMIC_RELEASE);
			s->pindir = NULL;
			pxs__block_free(s, dir_off);
		}
		if (!off)
			return NULL;
		a = (uint16_t *)(s->base + off);
		__atomic_store_n(&dir[t], off, __ATOMIC_RELEASE);
	}
	return a;
}

/* This process's pin arrays, each allocated at the handle's first pin in
 * its table. They live as long as the handle, between objects allocated
 * before and after them (the price of not making every attach, a `stat`
 * included, pay for them): 2 B a slot, from the heap, so a full heap
 * refuses a first pin in a table with -ENOSPC and a later one may
 * succeed. */
uint16_t *
pxs__my_pin(struct pxs_store *s, uint32_t idx)
{
	return pxs__my_pin_by(s, idx, NULL);
}

uint16_t *
pxs__my_pin_by(struct pxs_store *s, uint32_t idx,
	       const struct timespec *deadline)
{
	uint32_t t = pxs__idx_tab(s, idx), j = idx - pxs__tab_base(s, t);
	uint16_t *a = __atomic_load_n(&s->pins[t], __ATOMIC_ACQUIRE);
	if (PXS_LIKELY(a != NULL))
		return &a[j];
	pthread_mutex_lock(&s->local);
	if (!(a = s->pins[t]) && (a = alloc_pins(s, t, deadline)))
		__atomic_store_n(&s->pins[t], a, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->local);
	return a ? &a[j] : NULL;
}

uint16_t *
pxs__my_pin_held(struct pxs_store *s, uint32_t idx)
{
	uint32_t t = pxs__idx_tab(s, idx);
	uint16_t *a = __atomic_load_n(&s->pins[t], __ATOMIC_ACQUIRE);
	return a ? &a[idx - pxs__tab_base(s, t)] : NULL;
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
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	const void *data;
	uint64_t size;
	int rc = pxs__slot_payload(s, sl, &data, &size);
	if (rc < 0)
		return rc;
	uint16_t *mine = pxs__my_pin(s, idx);
	if (!mine) /* no room for this handle's pin records */
		return -ENOSPC;
	if (__atomic_load_n(mine, __ATOMIC_RELAXED) == UINT16_MAX)
		return -EOVERFLOW;
	/* Under the slot lock, so no evicter is between its state store and
	 * its count of the pins. */
	__atomic_fetch_add(mine, 1, __ATOMIC_SEQ_CST);
	fill_view(s, idx, sl->gen, data, size, v);
	return 0;
}

int
pxs__unpin(struct pxs_store *s, uint32_t idx)
{
	__atomic_fetch_sub(pxs__my_pin_held(s, idx), 1, __ATOMIC_SEQ_CST);
	PXS_FAILPOINT(FP_RELEASE_BETWEEN_COUNTS);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&pxs__slot(s, idx)->state, __ATOMIC_RELAXED) !=
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
	if (!(mine = pxs__my_pin_held(s, idx)) ||
	    __atomic_load_n(mine, __ATOMIC_RELAXED) == UINT16_MAX)
		return -EAGAIN;
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	uint32_t gen = __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE);
	__atomic_fetch_add(mine, 1, __ATOMIC_SEQ_CST);
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
