/* chain.c - the chain of slot tables, as one process sees it.
 *
 * Owns: the handle's view of the chain (which tables it may use, where
 * they are mapped), the validation of each table descriptor read from the
 * segment, and the formatting of a fresh table's slots. Growing the chain
 * (allocating, publishing) is table.c's; probing it is slot.c's.
 *
 * THE CHAIN. The slot table is a list of tables that are never moved nor
 * freed while the segment exists: table 0 in the metadata, sized at
 * creation, and tables 1, 2, ... in the heap, each twice the one before
 * (table t has n0 << t slots). Slot indices are global: table t's slots
 * are n0 * (2^t - 1) .. n0 * (2^(t+1) - 1) - 1, so an index names its
 * table by its bits (pxs__idx_tab) and every record that names a slot by
 * index (views, wait records, pin arrays) keeps doing so across growth.
 *
 * PUBLICATION. A grower writes a descriptor, then stores `ntables` with
 * release; a handle loads it with acquire and, for each table it has not
 * seen yet, checks the descriptor (table 0 against the geometry, others:
 * n0 << t slots, lying inside the heap) before it maps the table into its
 * `tab[]`, then publishes its own `ntab` (release). Descriptors never
 * change once published, so a handle validates each one once, and its
 * threads read `tab[t]` for t below the `ntab` they loaded without a lock.
 */
#include "internal.h"

void
pxs__chain_init(struct pxs_store *s)
{
	s->tab[0] = s->slots;
	s->n0_shift = (uint32_t)__builtin_ctz(s->g.nslots);
	pthread_mutex_init(&s->tab_lock, NULL);
	__atomic_store_n(&s->ntab, 1, __ATOMIC_RELEASE);
}

/* Is descriptor t (a copy read from the header) one this library wrote? */
static bool
descriptor_ok(const struct pxs_store *s, uint32_t t,
	      const struct pxs_seg_table *d)
{
	uint64_t bytes = (uint64_t)pxs__tab_slots(s, t) *
			 sizeof(struct pxs_seg_slot);
	if (d->nslots != pxs__tab_slots(s, t))
		return false;
	if (t == 0)
		return d->off == s->g.table_off;
	/* A block of the heap that holds the table: tables are never freed,
	 * so its header stays as the grower's allocation wrote it. */
	uint64_t cap;
	uint32_t owner;
	bytes += pxs__chain_slots_at(d->off) - d->off;
	return d->off >= s->g.heap_off && d->off <= s->g.heap_end &&
	       bytes <= s->g.heap_end - d->off &&
	       pxs__heap_block(&s->heap, d->off, &cap, &owner) == 0 &&
	       cap >= bytes;
}

int
pxs__chain_sync(struct pxs_store *s)
{
	uint32_t n = __atomic_load_n(&s->hdr->ntables, __ATOMIC_ACQUIRE);
	uint32_t have = pxs__ntab(s);
	if (PXS_LIKELY(n == have))
		return (int)have;
	/* A chain never shrinks; one longer than the index space, or longer
	 * than a fixed table allows, is not ours. */
	if (n < have || n > PXS_MAX_TABLES || (s->g.capacity && n != 1) ||
	    (uint64_t)s->g.nslots << n > UINT32_MAX)
		return -EPROTO;
	pthread_mutex_lock(&s->tab_lock);
	int rc = 0;
	for (uint32_t t = s->ntab; t < n; t++) {
		struct pxs_seg_table d = {
			.off = __atomic_load_n(&s->hdr->tables[t].off,
					       __ATOMIC_RELAXED),
			.nslots = __atomic_load_n(&s->hdr->tables[t].nslots,
						  __ATOMIC_RELAXED)};
		if (!descriptor_ok(s, t, &d)) {
			rc = -EPROTO;
			break;
		}
		s->tab[t] = (struct pxs_seg_slot *)(s->base +
						    pxs__chain_slots_at(d.off));
		__atomic_store_n(&s->ntab, t + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s->tab_lock);
	return rc < 0 ? rc : (int)pxs__ntab(s);
}

int
pxs__chain_format(struct pxs_seg_slot *slots, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		int rc = pxs__mutex_init(&slots[i].lock);
		if (rc < 0)
			return rc;
		slots[i].gen = 1;
	}
	return 0;
}
