/* waits.c - wait records: who sleeps where, so that waiter counts are exact.
 *
 * Owns: each process's records of its threads asleep on slots and on
 * doorbells (struct pxs_seg_proc's waits[] and bell_waits[]), and the
 * recount of a slot's or a bell's waiter count from them.
 *
 * WHY RECORDS. A slot's `waiters` tells a setter whether to make the
 * FUTEX_WAKE system call, and tools show it. A counter alone cannot be
 * exact: a waiter SIGKILLed in its sleep never takes itself off, and
 * nothing says whose increment a count holds. So every registration is
 * written twice, in the slot's count and in a record of the waiting
 * process (slot, generation, how many of its threads), both under the
 * slot's lock; the count is by definition the sum of the records of the
 * attached processes that name the slot and its current generation. The
 * reaper of a dead process clears its records and recounts those slots, a
 * repair of a slot whose lock holder died recounts it, and pxs_check()
 * compares every count with its records. A doorbell (bell.c) is counted
 * the same way, by a per-process count per bell under the bell's lock.
 *
 * READING RECORDS OF OTHER SLOTS. A recount holds slot i's lock and reads
 * every record without the lock of the slot the record names: a record is
 * claimed by storing its slot and generation and then, with release, its
 * count; a recount loads the count (acquire) first. A record naming slot i
 * with a non-zero count can only change under slot i's lock, which the
 * recount holds, so what it reads for slot i is exact; a record changing
 * hands between other slots is never seen naming slot i.
 *
 * A process has PXS_PROC_WAITS records: its threads may sleep on that many
 * distinct slots at once, counted. A thread that finds none free (a
 * wait-any over many futures, say) sleeps uncounted: it sets the slot's
 * PXS_WAITERS_UNCOUNTED bit, which makes every setter of this occupant
 * make its wake-up call, as a count would. Nothing clears the bit but the
 * slot's next occupant: a future is set once, so the bit costs at most one
 * wake-up call nobody needed. Counts, checks and tools read the counted
 * part (PXS_WAITERS_COUNT).
 */
#include "internal.h"

static struct pxs_seg_proc *
mine(struct pxs_store *s)
{
	return &s->procs[pxs__token_idx(s->token)];
}

int
pxs__wait_register(struct pxs_store *s, uint32_t idx)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	struct pxs_seg_wait *w = mine(s)->waits;
	uint32_t gen = sl->gen;
	int r = -1, spare = -1;
	pthread_mutex_lock(&s->waits_lock);
	for (int i = 0; i < (int)PXS_PROC_WAITS; i++) {
		uint32_t n = __atomic_load_n(&w[i].n, __ATOMIC_RELAXED);
		if (n && w[i].slot == idx && w[i].gen == gen) {
			r = i;
			break;
		}
		if (!n && spare < 0)
			spare = i;
	}
	if (r < 0 && (r = spare) >= 0) {
		__atomic_store_n(&w[r].slot, idx, __ATOMIC_RELAXED);
		__atomic_store_n(&w[r].gen, gen, __ATOMIC_RELAXED);
	}
	if (r >= 0) {
		__atomic_fetch_add(&w[r].n, 1, __ATOMIC_RELEASE);
		PXS_FAILPOINT(FP_WAIT_RECORDED);
		__atomic_fetch_add(&sl->waiters, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_or(&sl->waiters, PXS_WAITERS_UNCOUNTED,
				  __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->waits_lock);
	return r;
}

void
pxs__wait_unregister(struct pxs_store *s, uint32_t idx, uint32_t gen, int r)
{
	struct pxs_seg_slot *sl = pxs__slot(s, idx);
	struct pxs_seg_wait *w = &mine(s)->waits[r];
	pthread_mutex_lock(&s->waits_lock);
	/* Once the slot is freed, insertion zeroes the count for the next
	 * occupant: only our record still holds us. */
	if (__atomic_load_n(&sl->gen, __ATOMIC_RELAXED) == gen &&
	    PXS_WAITERS_COUNT(__atomic_load_n(&sl->waiters, __ATOMIC_RELAXED)))
		__atomic_fetch_sub(&sl->waiters, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&w->n, __ATOMIC_RELAXED))
		__atomic_fetch_sub(&w->n, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->waits_lock);
}

/* Is the process of (LIVE) entry i dead? */
static bool
entry_dead(struct pxs_store *s, uint32_t i)
{
	uint32_t gen = __atomic_load_n(&s->procs[i].gen, __ATOMIC_ACQUIRE);
	return !pxs__proc_alive(s, pxs__token(gen, i));
}

/* What a process entry's records hold for one slot or bell. */
typedef uint32_t (*held_fn)(const struct pxs_seg_proc *p, uint32_t what,
			    uint32_t gen);

/* Waiters entry p records on slot idx at generation gen. */
static uint32_t
held_on_slot(const struct pxs_seg_proc *p, uint32_t idx, uint32_t gen)
{
	uint32_t sum = 0;
	for (uint32_t r = 0; r < PXS_PROC_WAITS; r++) {
		const struct pxs_seg_wait *w = &p->waits[r];
		uint32_t n = __atomic_load_n(&w->n, __ATOMIC_ACQUIRE);
		if (n && __atomic_load_n(&w->slot, __ATOMIC_RELAXED) == idx &&
		    __atomic_load_n(&w->gen, __ATOMIC_RELAXED) == gen)
			sum += n;
	}
	return sum;
}

/* Waiters entry p counts on bell b. */
static uint32_t
held_on_bell(const struct pxs_seg_proc *p, uint32_t b, uint32_t gen)
{
	(void)gen;
	return __atomic_load_n(&p->bell_waits[b], __ATOMIC_RELAXED);
}

/* The sum of held() over the attached entries; of it, in *dead (if not
 * NULL), what entries of dead processes hold. */
static uint32_t
sum_held(struct pxs_store *s, held_fn held, uint32_t what, uint32_t gen,
	 uint32_t *dead)
{
	uint32_t sum = 0;
	if (dead)
		*dead = 0;
	for (uint32_t i = 0, hi = pxs__procs_hi(s); i < hi; i++) {
		const struct pxs_seg_proc *p = &s->procs[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE)
			continue;
		uint32_t n = held(p, what, gen);
		sum += n;
		if (dead && n && entry_dead(s, i))
			*dead += n;
	}
	return sum;
}

uint32_t
pxs__waits_on_slot(struct pxs_store *s, uint32_t idx, uint32_t *dead)
{
	return sum_held(s, held_on_slot, idx, pxs__slot(s, idx)->gen, dead);
}

void
pxs__waits_recount_slot(struct pxs_store *s, uint32_t idx)
{
	uint32_t *w = &pxs__slot(s, idx)->waiters;
	uint32_t flag = __atomic_load_n(w, __ATOMIC_RELAXED) &
			PXS_WAITERS_UNCOUNTED;
	__atomic_store_n(w, flag | pxs__waits_on_slot(s, idx, NULL),
			 __ATOMIC_RELAXED);
}

uint32_t
pxs__waits_on_bell(struct pxs_store *s, uint32_t b, uint32_t *dead)
{
	return sum_held(s, held_on_bell, b, 0, dead);
}
