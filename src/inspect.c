/* inspect.c - read-only iteration over slots and attached processes, for
 * tools and tests.
 *
 * Owns: pxs_list and pxs_proc_list. It takes no lock and writes nothing to
 * the segment: every field is read once into a local and validated.
 */
#include "internal.h"

#include <string.h>

static const pxs_state public_state[PXS_SLOT_NSTATES] = {
	[PXS_SLOT_READY] = PXS_STATE_VALUE,
	[PXS_SLOT_PENDING] = PXS_STATE_PENDING,
	[PXS_SLOT_RESERVED] = PXS_STATE_RESERVED,
	[PXS_SLOT_ABANDONED] = PXS_STATE_ABANDONED,
	[PXS_SLOT_EVICTED] = PXS_STATE_EVICTED,
};

/* The pid behind an owner token, if the token is still current. */
static int32_t
owner_pid(struct pxs_store *s, uint32_t token)
{
	const struct pxs_seg_proc *p = &s->procs[pxs__token_idx(token)];
	if (__atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) != pxs__token_gen(token))
		return 0;
	return __atomic_load_n(&p->pid, __ATOMIC_RELAXED);
}

int
pxs__shm_list(pxs_store *s, uint64_t *cursor, pxs_entry *e)
{
	int rc = pxs__enter_args(s, cursor && e);
	if (rc < 0)
		return rc;
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
	for (uint64_t i = *cursor; i < pxs__nslots(s); i++) {
		const struct pxs_seg_slot *sl = pxs__slot(s, i);
		uint32_t st = __atomic_load_n(&sl->state, __ATOMIC_ACQUIRE);
		uint64_t at = __atomic_load_n(&sl->expires_ns,
					      __ATOMIC_RELAXED);
		if (st < PXS_SLOT_READY || st >= PXS_SLOT_NSTATES ||
		    (at && now >= at && st != PXS_SLOT_EVICTED))
			continue; /* free, or expired: absent */
		uint32_t owner = __atomic_load_n(&sl->owner, __ATOMIC_RELAXED);
		memset(e, 0, sizeof *e);
		e->key.hi = __atomic_load_n(&sl->key_hi, __ATOMIC_RELAXED);
		e->key.lo = __atomic_load_n(&sl->key_lo, __ATOMIC_RELAXED);
		e->state = public_state[st];
		e->size = __atomic_load_n(&sl->size, __ATOMIC_RELAXED);
		e->pins = pxs__pins_on(s, (uint32_t)i);
		e->waiters = PXS_WAITERS_COUNT(
			__atomic_load_n(&sl->waiters, __ATOMIC_RELAXED));
		e->created_ns =
			__atomic_load_n(&sl->created_ns, __ATOMIC_RELAXED);
		e->ttl_ms = at && st != PXS_SLOT_EVICTED
				    ? (int64_t)((at - now + 999999u) / 1000000u)
				    : -1;
		if (owner) {
			e->owner_pid = owner_pid(s, owner);
			e->owner_alive = pxs__proc_alive(s, owner);
		}
		*cursor = i + 1;
		return 1;
	}
	*cursor = pxs__nslots(s);
	return 0;
}

int
pxs__shm_proc_list(pxs_store *s, uint64_t *cursor, pxs_proc_info *p)
{
	int rc = pxs__enter_args(s, cursor && p);
	if (rc < 0)
		return rc;
	for (uint64_t i = *cursor; i < PXS_MAX_PROCS; i++) {
		const struct pxs_seg_proc *e = &s->procs[i];
		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE)
			continue;
		uint32_t gen = __atomic_load_n(&e->gen, __ATOMIC_ACQUIRE);
		p->id = (uint32_t)i;
		p->pid = __atomic_load_n(&e->pid, __ATOMIC_RELAXED);
		p->attach_ns = __atomic_load_n(&e->attach_ns, __ATOMIC_RELAXED);
		p->alive = pxs__proc_alive(s, pxs__token(gen, (uint32_t)i));
		*cursor = i + 1;
		return 1;
	}
	*cursor = PXS_MAX_PROCS;
	return 0;
}
