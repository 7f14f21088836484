/* internal.h - declarations shared between the library's own files.
 *
 * Nothing here is public API: names use the pxs__ prefix and are hidden
 * from the shared library (tests link the static archive and may call them).
 */
#ifndef PXS_INTERNAL_H
#define PXS_INTERNAL_H

#include "proxyshm.h"
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "backend.h"
#include "failpoint.h"
#include "layout.h"

#define PXS_LIKELY(x) __builtin_expect(!!(x), 1)
#define PXS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- keys.c: names and keys ---------------------------------------- */

/** 0 if @p name is a valid store name ('/' then 1..PXS_NAME_MAX of
 *  [A-Za-z0-9._-], not "/." or "/.."), else -EINVAL. NULL is -EINVAL. */
int pxs__name_check(const char *name);

/** A fresh random non-zero key: unique across processes and threads, and
 *  different in a forked child from the parent. */
pxs_key pxs__key_random(void);

static inline bool
pxs__key_is_zero(pxs_key k)
{
	return (k.hi | k.lo) == 0;
}

/* ---- process-local growable arrays ---------------------------------- */

/** Room for one more element in the array @p p of @p n elements of @p elem
 *  bytes, of which *@p cap are allocated: @p p itself while n < *cap, else
 *  @p p reallocated to twice as many (@p first at the start) and *@p cap
 *  updated. NULL if out of memory: @p p is then unchanged and still valid. */
static inline void *
pxs__grow(void *p, size_t n, size_t *cap, size_t elem, size_t first)
{
	if (n < *cap)
		return p;
	size_t ncap = *cap ? 2 * *cap : first;
	if (ncap < *cap || ncap > SIZE_MAX / elem)
		return NULL;
	void *q = realloc(p, ncap * elem);
	if (q)
		*cap = ncap;
	return q;
}

/* ---- the process-local handle (store.c owns its lifetime) ---------- */

/** Blocks of one size class a handle allocated ahead (block.c). */
#define PXS_CACHE_MAX 32u
struct pxs_block_cache {
	pthread_mutex_t lock; /**< only ever try-locked */
	uint32_t token;       /**< the process that allocated them */
	uint32_t n;           /**< blocks in off[] */
	uint64_t cls;         /**< their size */
	uint64_t streak;      /**< requests of this class in a row */
	uint64_t off[PXS_CACHE_MAX];
};

struct pxs_store {
	struct pxs__handle h; /**< first: the backend seam (backend.h) */
	unsigned char *base; /**< mapping of the whole segment */
	struct pxs_seg_hdr *hdr;
	struct pxs_seg_proc *procs;
	struct pxs_seg_slot *slots; /**< table 0 */
	struct pxs_geom g;    /**< validated copy; never re-read */
	uint32_t mask;        /**< g.nslots - 1: table 0's */
	/** The chain's tables this handle has validated (chain.c): tab[t] for
	 *  t < ntab; appended under tab_lock, published by a release store of
	 *  ntab, never changed afterwards. */
	struct pxs_seg_slot *tab[PXS_MAX_TABLES];
	uint32_t ntab;
	uint32_t n0_shift; /**< log2(g.nslots) */
	pthread_mutex_t tab_lock;
	struct pxs_heap heap; /**< allocator handle over the heap */
	int fd;     /**< the segment, as mapped (and fallocate'd) */
	int lockfd; /**< a second description of it, never mapped, that carries
		       the liveness lock: a mapping holds its description, and
		       so any OFD lock on it, in every process that inherits it */
	/** This process's pin arrays, one per table (NULL until its first
	 *  pin there), and its pin directory (pins.c). */
	uint16_t *pins[PXS_MAX_TABLES];
	uint64_t *pindir;
	uint32_t token; /**< owner token of this handle's process entry */
	uint32_t spin_us; /**< pxs_options.spin_us: waits poll this long first */
	bool rdonly; /**< PXS_RDONLY: mapped without write access, no entry,
			no pin records; every lock attempt is -EROFS (sync.c) */
	uint32_t past[8]; /**< tokens of ancestors, before forks: their views
			     may be released here (forgotten, not unpinned) */
	unsigned long fork_gen; /**< pxs__fork_gen when token was taken */
	pthread_mutex_t local;  /**< serialises re-registration after fork */
	pthread_mutex_t waits_lock; /**< serialises changes to this process's
				       wait records (waits.c) */
	struct pxs_block_cache cache;
	struct pxs_store *next; /**< in the process's list of open stores */
	char name[PXS_NAME_MAX + 2];
};

/* ---- segment.c: create, attach, map ----------------------------------- */

/** Geometry for (size, capacity); capacity 0 picks the default.
 *  @return 0 or -EINVAL when they do not fit together. */
int pxs__geometry(uint64_t size, uint32_t capacity, struct pxs_geom *g);
/** Open or create and map; fills base/hdr/procs/slots/g/heap/fd of @p s. */
int pxs__segment_open(struct pxs_store *s, const char *name,
		      const pxs_options *o);
void pxs__segment_close(struct pxs_store *s);
/** A new open file description of the segment (for the liveness lock):
 *  reopens /proc/self/fd/<fd>, or the name. -errno on failure. */
int pxs__segment_reopen(const struct pxs_store *s);
/** Remove private objects left by creators of @p name that died before
 *  publishing (their creation lock is free). */
void pxs__segment_sweep(const char *name);
/** shmwait.c: sleep until /dev/shm holds @p name (0) or CLOCK_MONOTONIC
 *  reaches @p end_ns (UINT64_MAX: never): -ENOENT; -EMFILE, -ENFILE,
 *  -ENOMEM when no inotify watch can be had. */
int pxs__segment_await(const char *name, uint64_t end_ns);

/* ---- chain.c: the chain of slot tables --------------------------------- */

/** Set up @p s's view of the chain: table 0 only (s->slots, s->g). */
void pxs__chain_init(struct pxs_store *s);
/** Catch up with the tables published since this handle last looked,
 *  validating each descriptor. Returns the tables this handle may use, or
 *  -EPROTO if the header's chain is not one this library wrote. */
int pxs__chain_sync(struct pxs_store *s);
/** Format slots [from, to) of a fresh table (robust process-shared locks,
 *  generation 1). */
int pxs__chain_format(struct pxs_seg_slot *slots, uint32_t from, uint32_t to);
/** Where the slots of a table in the heap block at @p off start: at the
 *  first cache line of the block (slots are two lines each). A table's
 *  block is allocated PXS_TABLE_SLACK bytes larger for it. */
static inline uint64_t
pxs__chain_slots_at(uint64_t off)
{
	return (off + 63) & ~(uint64_t)63;
}
#define PXS_TABLE_SLACK (64u - PXS_HEAP_ALIGN)
/** Slots of table @p t. */
static inline uint32_t
pxs__tab_slots(const struct pxs_store *s, uint32_t t)
{
	return s->g.nslots << t;
}
/** Global index of the first slot of table @p t: n0 * (2^t - 1). */
static inline uint32_t
pxs__tab_base(const struct pxs_store *s, uint32_t t)
{
	return ((1u << t) - 1) << s->n0_shift;
}
/** The table that global slot index @p idx falls in. */
static inline uint32_t
pxs__idx_tab(const struct pxs_store *s, uint32_t idx)
{
	return 31u - (uint32_t)__builtin_clz((idx >> s->n0_shift) + 1);
}
/** The tables this handle has validated. */
static inline uint32_t
pxs__ntab(const struct pxs_store *s)
{
	return __atomic_load_n(&s->ntab, __ATOMIC_ACQUIRE);
}
/** Slots of the tables this handle has validated: global indices below
 *  this name slots. */
static inline uint32_t
pxs__nslots(const struct pxs_store *s)
{
	return pxs__tab_base(s, pxs__ntab(s));
}
/** Slot at global index @p idx, which must be below pxs__nslots(). */
static inline struct pxs_seg_slot *
pxs__slot(const struct pxs_store *s, uint32_t idx)
{
	uint32_t t = pxs__idx_tab(s, idx);
	return &s->tab[t][idx - pxs__tab_base(s, t)];
}
/** Is @p idx (read from the segment or a caller) a slot of a published
 *  table? Catches up with the chain if it names a newer one. */
static inline bool
pxs__slot_index_ok(struct pxs_store *s, uint64_t idx)
{
	if (PXS_LIKELY(idx < pxs__nslots(s)))
		return true;
	return idx < UINT32_MAX && pxs__chain_sync(s) > 0 &&
	       idx < pxs__nslots(s);
}

/* ---- sync.c: robust locks, futex waits, clocks ------------------------- */

int pxs__mutex_init(pthread_mutex_t *m);
/** Lock; on EOWNERDEAD run @p repair (may be NULL) then mark consistent.
 *  @p deadline (CLOCK_MONOTONIC, NULL = forever) bounds the wait.
 *  @return 0, -ETIMEDOUT, -ENOTRECOVERABLE, repair's error, -EROFS on a
 *  read-only handle (which cannot write a lock word), or what the lock
 *  call said of a lock word that is not a lock (lock held only on 0). */
int pxs__lock(struct pxs_store *s, pthread_mutex_t *m,
	      const struct timespec *deadline,
	      int (*repair)(struct pxs_store *, void *), void *arg);
/** As pxs__lock, but -EBUSY instead of waiting for a live holder. */
int pxs__trylock(struct pxs_store *s, pthread_mutex_t *m,
		 int (*repair)(struct pxs_store *, void *), void *arg);
void pxs__unlock(pthread_mutex_t *m);
/** Sleep while *word == val, until woken or @p deadline (CLOCK_MONOTONIC,
 *  NULL = forever). Returns 0 (woken, changed, or interrupted: recheck) or
 *  -ETIMEDOUT. */
int pxs__futex_wait(uint32_t *word, uint32_t val,
		    const struct timespec *deadline);
/** Poll *word without sleeping until it differs from @p val (true) or
 *  CLOCK_MONOTONIC reaches @p until_ns (false). */
bool pxs__futex_spin(const uint32_t *word, uint32_t val, uint64_t until_ns);
void pxs__futex_wake_all(uint32_t *word);
/** Sleep until any of the @p n words (n <= FUTEX_WAITV_MAX) differs from
 *  its value in @p vals, a wake-up or @p deadline (CLOCK_MONOTONIC, never
 *  NULL). 0 (recheck), -ETIMEDOUT, or -ENOSYS (kernel before 5.16). */
int pxs__futex_waitv(uint32_t *const *words, const uint32_t *vals, size_t n,
		     const struct timespec *deadline);
/** Longest kernel sleep of a waiter before it checks that the producer it
 *  waits for is alive (the kernel wakes nobody when a process dies). */
#define PXS_LIVENESS_SLICE_MS 250
uint64_t pxs__now_ns(clockid_t clk);
/** Absolute CLOCK_MONOTONIC deadline @p ms from now (ms >= 0). */
void pxs__deadline(struct timespec *ts, long ms);
void pxs__ts_from_ns(struct timespec *ts, uint64_t ns);
/** The deadline of a wait of @p timeout_ms (<= 0: none): in @p ts with
 *  *dl = ts, and returned in ns; or *dl = NULL and UINT64_MAX. */
uint64_t pxs__wait_deadline(long timeout_ms, struct timespec *ts,
			    const struct timespec **dl);

/* ---- procs.c: attached processes, liveness, counters, fork ------------ */

static inline uint32_t
pxs__token_idx(uint32_t token)
{
	return token & (PXS_MAX_PROCS - 1);
}
static inline uint32_t
pxs__token_gen(uint32_t token)
{
	return token >> PXS_PROC_BITS;
}
static inline uint32_t
pxs__token(uint32_t gen, uint32_t idx)
{
	return gen << PXS_PROC_BITS | idx;
}

extern volatile unsigned long
	pxs__fork_gen; /**< bumped in every forked child */
/** Acquire a free process entry and its liveness lock for @p s; -EUSERS if
 *  none is free (reap first: pxs__attach); -ETIMEDOUT if the process-table
 *  lock is not had by @p deadline (NULL: no limit). */
int pxs__proc_acquire(struct pxs_store *s, const struct timespec *deadline);
/** Under proc_lock: 1 if entry @p i is attached, not ours and dead, and
 *  its liveness lock is now ours; the caller reaps, then frees it. */
int pxs__proc_take_dead(struct pxs_store *s, uint32_t i);
/** Under proc_lock: fold entry @p i's counters into the totals, mark it free. */
void pxs__proc_free(struct pxs_store *s, uint32_t i);
/** Drop this handle's liveness lock on entry @p i. */
void pxs__proc_let_go(struct pxs_store *s, uint32_t i);
/** 1 if @p token still names a live entry (its generation unchanged). */
int pxs__proc_is_mine(struct pxs_store *s, uint32_t token);
/** 1 if the process behind owner token @p token is attached and alive. */
int pxs__proc_alive(struct pxs_store *s, uint32_t token);
/** Track/untrack @p s for the fork handler. */
void pxs__proc_track(struct pxs_store *s);
void pxs__proc_untrack(struct pxs_store *s);
/** Attach after fork (reap.c); called by pxs__enter. */
int pxs__refork(struct pxs_store *s);
/** Count one event @p c for this process (the segment's totals once it
 *  has no entry). An inline over the handle, so that every layer counts. */
static inline void
pxs__count(struct pxs_store *s, enum pxs_ctr c)
{
	uint32_t tok = __atomic_load_n(&s->token, __ATOMIC_RELAXED);
	if (PXS_UNLIKELY(!tok) && s->rdonly)
		return; /* a read-only handle writes nothing */
	uint64_t *ctr = tok ? &s->procs[pxs__token_idx(tok)].ctr[c]
			    : &s->hdr->ctr_gone[c];
	__atomic_fetch_add(ctr, 1, __ATOMIC_RELAXED);
}
void pxs__counters(struct pxs_store *s, uint64_t out[PXS_CTR_N],
		   uint32_t *alive);
/** Entries at or above this were never taken: scans of them stop there. */
static inline uint32_t
pxs__procs_hi(const struct pxs_store *s)
{
	uint32_t n = __atomic_load_n(&s->hdr->procs_hi, __ATOMIC_ACQUIRE);
	return n < PXS_MAX_PROCS ? n : PXS_MAX_PROCS;
}

/** Entry check of every API call on a store. */
static inline int
pxs__enter(struct pxs_store *s)
{
	if (PXS_UNLIKELY(s->fork_gen != pxs__fork_gen)) {
		int rc = pxs__refork(s);
		if (rc < 0)
			return rc;
	}
	if (PXS_UNLIKELY(__atomic_load_n(&s->hdr->poisoned, __ATOMIC_RELAXED)))
		return -ENOTRECOVERABLE;
	return 0;
}

/* ---- reap.c: recovering what dead processes left ---------------------- */

/** Reclaim everything of every dead process: pins, waits, reservations,
 *  owned futures (abandoned), leaked blocks, the entry. Returns how many. */
int pxs__reap_procs(struct pxs_store *s); /* bounded: PXS_ATTACH_LOCK_MS */
/** pxs__reap_procs(), then evict the expired slots (expire.c): returns how
 *  many processes and slots, so > 0 means memory may have come back. */
int pxs__reap(struct pxs_store *s);
/** How long attaching waits in all for the locks it takes. */
#define PXS_ATTACH_LOCK_MS 1000
/** Reap, acquire a process entry for @p s (its pin array comes at its
 *  first pin in each table: pxs__my_pin); waits at most PXS_ATTACH_LOCK_MS in all for
 *  the locks (-ETIMEDOUT when the process-table lock is not had by then). */
int pxs__attach(struct pxs_store *s);
/** Reap this handle's own entry, free it, drop its liveness lock. */
void pxs__detach(struct pxs_store *s);
/** pxs__table_insert; on -ENOSPC reap dead processes and, if that freed
 *  any, insert once more; then reclaim an expired slot the insertion met.
 *  A key that holds an abandoned future is taken over (pxs__table_replace):
 *  -EEXIST only for a live key. Call with no lock held. */
int pxs__insert_reaping(struct pxs_store *s, pxs_key k, uint32_t state,
			uint64_t off, uint64_t size, uint32_t owner,
			uint32_t *idx);

/** Entry check of the calls that take a store and other arguments:
 *  -EINVAL for a NULL store or if not @p args_ok, else pxs__enter(). */
static inline int
pxs__enter_args(struct pxs_store *s, bool args_ok)
{
	if (!s || !args_ok)
		return -EINVAL;
	return pxs__enter(s);
}

/** Entry check of the calls that take a store and a key. */
static inline int
pxs__enter_key(struct pxs_store *s, pxs_key key)
{
	return pxs__enter_args(s, !pxs__key_is_zero(key));
}

/** Set @p rc to @p op (an expression that yields 0 or a negative errno);
 *  if that is -ENOSPC and reaping (pxs__reap) gave anything back, set it to
 *  @p op once more. For callers that hold no lock: the reaper takes them
 *  all. Allocation and insertion never reap by themselves. */
#define PXS_REAP_RETRY(s, rc, op)                                    \
	do {                                                         \
		(rc) = (op);                                         \
		if ((rc) == -ENOSPC && pxs__reap(s) > 0)             \
			(rc) = (op);                                 \
	} while (0)

/* ---- slot.c: probing, lookup, slot locks and their repair ------------- */

/** @p k's hash: its home in a table of n slots is hash & (n - 1). */
static inline uint32_t
pxs__hash(pxs_key k)
{
	return (uint32_t)(k.lo ^ (k.hi >> 29));
}
/** The first slot (global index) of @p k's probe sequence in table @p t. */
static inline uint32_t
pxs__home_in(const struct pxs_store *s, pxs_key k, uint32_t t)
{
	return pxs__tab_base(s, t) + (pxs__hash(k) & (pxs__tab_slots(s, t) - 1));
}
/** @p k's home in the newest table this handle has validated: where an
 *  insertion of @p k goes, and what waiters for it lock (bell.c). */
static inline uint32_t
pxs__home(const struct pxs_store *s, pxs_key k)
{
	return pxs__home_in(s, k, pxs__ntab(s) - 1);
}
/** States that hold a key: READY, PENDING, RESERVED, ABANDONED. */
static inline bool
pxs__state_live(uint32_t st)
{
	return st >= PXS_SLOT_READY && st <= PXS_SLOT_ABANDONED;
}
/** Does slot @p sl hold key @p k (racy read, as lookups do)? */
static inline bool
pxs__slot_has_key(const struct pxs_seg_slot *sl, pxs_key k)
{
	return __atomic_load_n(&sl->key_lo, __ATOMIC_RELAXED) == k.lo &&
	       __atomic_load_n(&sl->key_hi, __ATOMIC_RELAXED) == k.hi;
}

/** Has slot @p sl's deadline (expire.c) passed at CLOCK_MONOTONIC @p now? */
static inline bool
pxs__slot_expired_at(const struct pxs_seg_slot *sl, uint64_t now)
{
	uint64_t at = __atomic_load_n(&sl->expires_ns, __ATOMIC_RELAXED);
	return at != 0 && now >= at;
}
/** Has it passed now? Reads the clock only for a slot with a deadline. */
static inline bool
pxs__slot_expired(const struct pxs_seg_slot *sl)
{
	return PXS_UNLIKELY(__atomic_load_n(&sl->expires_ns,
					    __ATOMIC_RELAXED) != 0) &&
	       pxs__slot_expired_at(sl, pxs__now_ns(CLOCK_MONOTONIC));
}

/** Find the live slot (READY, PENDING, RESERVED, ABANDONED) holding @p k,
 *  whose deadline has not passed.
 *  Lock-free; the caller locks the slot and rechecks with pxs__slot_is(). */
int pxs__table_find(struct pxs_store *s, pxs_key k, uint32_t *idx);
/** Find an EVICTED slot holding @p k whose producer is @p owner. */
int pxs__table_find_evicted(struct pxs_store *s, pxs_key k, uint32_t owner,
			    uint32_t *idx);
/** Repair every slot lock whose holder died, now rather than at its next
 *  use: a slot nobody looks up again (an evicted key) would otherwise keep
 *  a dead process's half-done change for ever. */
void pxs__slot_locks_repair(struct pxs_store *s);
/** Look @p key up and lock its live slot; -ENOENT if there is none (or
 *  if it has expired: expire.c reclaims it). */
int pxs__lock_key(struct pxs_store *s, pxs_key key,
		  const struct timespec *deadline, uint32_t *idx);
/** Lock slot @p idx (repairing it after a dead holder); -EPROTO (not
 *  locked) if its state word is not a state. */
int pxs__slot_lock(struct pxs_store *s, uint32_t idx,
		   const struct timespec *deadline);
/** As pxs__slot_lock, but -EBUSY instead of waiting for a live holder. */
int pxs__slot_trylock(struct pxs_store *s, uint32_t idx);
static inline void
pxs__slot_unlock(struct pxs_store *s, uint32_t idx)
{
	pxs__unlock(&pxs__slot(s, idx)->lock);
}
/** States in which a slot's `off` refers to a block it owns. */
static inline bool
pxs__state_holds_block(uint32_t st)
{
	return st == PXS_SLOT_READY || st == PXS_SLOT_RESERVED ||
	       st == PXS_SLOT_EVICTED;
}
/** Under the slot lock: 1 if it holds @p k in a live state. */
int pxs__slot_is(const struct pxs_seg_slot *sl, pxs_key k);
/** Under the slot lock: publish a state change, wake waiters after unlock. */
void pxs__slot_set_state(struct pxs_seg_slot *sl, uint32_t state);
/** Unlock, then wake the slot's waiters if it has any. */
void pxs__slot_unlock_wake(struct pxs_store *s, uint32_t idx);
/** Unlock, waking the waiters (pxs__slot_unlock_wake) only if @p wake: a
 *  caller that changed the state (or found a future abandoned) wakes them;
 *  one that only looked does not. */
static inline void
pxs__slot_unlock_wake_if(struct pxs_store *s, uint32_t idx, bool wake)
{
	if (wake)
		pxs__slot_unlock_wake(s, idx);
	else
		pxs__slot_unlock(s, idx);
}
/** The opening of the API calls on one key: the entry check
 *  (pxs__enter_key), then the key looked up and its live slot locked
 *  (pxs__lock_key, no deadline) in *@p idx. */
static inline int
pxs__enter_lock_key(struct pxs_store *s, pxs_key key, uint32_t *idx)
{
	int rc = pxs__enter_key(s, key);
	return rc < 0 ? rc : pxs__lock_key(s, key, NULL, idx);
}

/* ---- table.c: insertion, live count, gate, sweep, freeing slots ------ */

/** Insert @p k in @p state with payload (off, size) and @p owner; returns
 *  the slot index. -EEXIST, -ENOSPC, or a lock error. Call with no lock
 *  held (it may recount). It never reaps: pxs__insert_reaping does. An
 *  expired slot met on the way is left in *@p stale (UINT32_MAX: none)
 *  for the caller to reclaim (expire.c). */
int pxs__table_insert(struct pxs_store *s, pxs_key k, uint32_t state,
		      uint64_t off, uint64_t size, uint32_t owner,
		      uint32_t *idx, uint32_t *stale);
/** Key @p k is in use: if it holds an abandoned future (or one whose
 *  owner is found dead now), take its slot over in place with @p state,
 *  payload and @p owner (*@p idx). -EEXIST for a live key, -ENOENT if it
 *  went away meanwhile. Call with no lock held. */
int pxs__table_replace(struct pxs_store *s, pxs_key k, uint32_t state,
		       uint64_t off, uint64_t size, uint32_t owner,
		       uint32_t *idx);
/** The current capacity (live slots the chain takes before it must grow
 *  again, or the fixed limit) and, in *@p used, the slots in use. */
uint32_t pxs__table_capacity(struct pxs_store *s, uint32_t *used);
/** Lock the table (repairing it after a dead holder). */
int pxs__table_lock(struct pxs_store *s, const struct timespec *deadline);
/** If the table lock's holder died, repair it now (and recount if asked). */
void pxs__table_lock_repair(struct pxs_store *s);
/** Under the table lock: stop new insertions and wait for those under way
 *  (false: some live process did not finish within a second, or within
 *  @p wait_ms if that is shorter). */
bool pxs__gate_close(struct pxs_store *s, long wait_ms);
void pxs__gate_open(struct pxs_store *s);
/** With no slot lock held: turn the run of tombstones ending at @p idx into
 *  EMPTY slots if an EMPTY slot follows it. */
void pxs__table_sweep(struct pxs_store *s, uint32_t idx);
/** Under the slot lock: make the slot a tombstone (TOMB), bump gen; frees
 *  no block: returns the payload offset (0 = none) for
 *  pxs__slot_unlock_reclaim to free once the slot is unlocked. */
uint64_t pxs__slot_tombstone(struct pxs_store *s, uint32_t idx);
/** The end of every free under a slot lock: unlock slot @p idx (waking its
 *  waiters if @p wake), then, if @p freed (the slot was made a tombstone
 *  with pxs__slot_tombstone, which returned @p off), free the block and
 *  sweep the tombstones. Returns the block free's error, or 0. */
int pxs__slot_unlock_reclaim(struct pxs_store *s, uint32_t idx, bool wake,
			     bool freed, uint64_t off);
/** Under the lock of a live slot: 1 if it holds a value, 0 if it is a
 *  pending future, -EOWNERDEAD if abandoned (found so now, if its owner has
 *  died: *changed is then set, and the waiters must be woken). */
int pxs__slot_resolve(struct pxs_store *s, uint32_t idx, bool *changed);
/** Under the slot lock of a PENDING/RESERVED future: mark it ABANDONED and
 *  free its reserved block (unpublished first). */
void pxs__slot_abandon(struct pxs_store *s, uint32_t idx);

/* ---- block.c: payload blocks ------------------------------------------ */

/** Repair of the heap lock: rebuild the free lists from the tags. */
int pxs__repair_heap(struct pxs_store *s, void *arg);
/** Lock the heap (repairing it after a dead holder). */
int pxs__heap_lock(struct pxs_store *s);
/** As pxs__heap_lock, giving up at @p deadline (-ETIMEDOUT). */
int pxs__heap_lock_by(struct pxs_store *s, const struct timespec *deadline);
/** Allocate a block of @p size tagged with this process (heap lock inside).
 *  It never reaps (callers may hold a slot lock, which the reaper takes):
 *  on -ENOSPC a caller that holds no lock may pxs__reap() and retry. */
int pxs__block_alloc(struct pxs_store *s, uint64_t size, uint64_t *off);
/** As pxs__block_alloc, waiting for the heap lock until @p deadline. */
int pxs__block_alloc_by(struct pxs_store *s, uint64_t size,
			const struct timespec *deadline, uint64_t *off);
/** Free a block (heap lock inside). */
int pxs__block_free(struct pxs_store *s, uint64_t off);
/** Tag a published block with this process before unpublishing it, so that
 *  if we die before freeing it, our reaper finds it (heap lock inside). */
void pxs__block_tag(struct pxs_store *s, uint64_t off);
/** For a put: a block for @p size bytes from this handle's cache
 *  (*cached = true) or from the heap, as pxs__block_alloc(). */
int pxs__block_take(struct pxs_store *s, uint64_t size, uint64_t *off,
		    bool *cached);
/** A put failed: give its block back to where pxs__block_take() got it. */
void pxs__block_give_back(struct pxs_store *s, uint64_t off, bool cached);
/** A put of @p size succeeded: refill the cache if puts of its class keep
 *  coming (heap lock inside). */
void pxs__block_cache_fill(struct pxs_store *s, uint64_t size);
/** Give the blocks this handle allocated ahead back to the heap. */
void pxs__block_cache_drop(struct pxs_store *s);
/** As pxs__block_cache_drop, waiting for the heap lock until @p deadline
 *  (then the blocks stay cached). */
void pxs__block_cache_drop_by(struct pxs_store *s,
			      const struct timespec *deadline);

/* ---- slotname.c: name records, the name blocks of futures ------------- */

/** Write the record of name[n] (1..PXS_KEY_NAME_MAX bytes) at @p at:
 *  returns its size, 2 + n. */
size_t pxs__name_record_write(unsigned char *at, const char *name, size_t n);
/** The record @p skip bytes into heap block @p off, if it lies in the heap
 *  and holds a name of @p key: its length, copied to @p out; else 0. */
int pxs__name_record_read(const struct pxs_store *s, uint64_t off,
			  uint64_t skip, pxs_key key,
			  char out[PXS_KEY_NAME_MAX]);
/** Allocate a name block holding name[n]'s record (tagged with this
 *  process). @return 0 or as pxs__block_alloc(). */
int pxs__name_block_new(struct pxs_store *s, const char *name, size_t n,
			uint64_t *off);
/** Slot @p sl's name block, if its `name_off` is an allocated block that
 *  holds a name of @p key (copied to @p out, its length to @p len; either
 *  may be NULL); else 0. */
uint64_t pxs__slot_name_block(struct pxs_store *s,
			      const struct pxs_seg_slot *sl, pxs_key key,
			      char out[PXS_KEY_NAME_MAX], int *len);
/** Under slot @p idx's lock, as it is freed: free its name block (if it
 *  is one) and clear `name_off`. */
void pxs__slot_name_drop(struct pxs_store *s, uint32_t idx);

/* ---- pins.c: pin arrays, pinning, unpinning ---------------------------- */
/** Pins on slot @p idx: the sum of every live entry's pin array at idx.
 *  Before deciding on it, a freer fences (pins.c, PINS). */
uint32_t pxs__pins_on(struct pxs_store *s, uint32_t idx);
/** Pins of all processes on all slots (for pxs_stat). */
uint64_t pxs__pins_total(struct pxs_store *s);
/** Under slot @p idx's lock: if it is EVICTED and nobody pins or produces
 *  it, make it a tombstone and return true, with *off the block to
 *  reclaim (pxs__slot_unlock_reclaim). */
bool pxs__slot_tombstone_if_unheld(struct pxs_store *s, uint32_t idx,
				   uint64_t *off);
/** Validated pin directory of process entry @p p, or NULL. */
uint64_t *pxs__pin_dir(struct pxs_store *s, const struct pxs_seg_proc *p);
/** Validated pin array of process entry @p p for table @p t, or NULL. */
uint16_t *pxs__pin_array(struct pxs_store *s, const struct pxs_seg_proc *p,
			 uint32_t t);
/** Validate a slot's payload (off, size) against the heap. */
int pxs__slot_payload(struct pxs_store *s, const struct pxs_seg_slot *sl,
		      const void **data, uint64_t *size);

/** This handle's pin count on slot @p idx, its table's pin array
 *  allocated on first use; NULL if the heap has no room for it. */
uint16_t *pxs__my_pin(struct pxs_store *s, uint32_t idx);
/** As pxs__my_pin, waiting for the heap lock until @p deadline (then
 *  NULL: the array is allocated at the first pin instead). */
uint16_t *pxs__my_pin_by(struct pxs_store *s, uint32_t idx,
			 const struct timespec *deadline);
/** This handle's pin count on slot @p idx if its table's array exists
 *  (it does for a slot this handle pins), else NULL; allocates nothing. */
uint16_t *pxs__my_pin_held(struct pxs_store *s, uint32_t idx);
/** Under the slot lock: pin a READY slot and fill the view. */
int pxs__view_pin(struct pxs_store *s, uint32_t idx, pxs_view *v);
/** Drop one of this handle's pins on slot @p idx; free the value if it was
 *  evicted and this was the last hold on it. */
int pxs__unpin(struct pxs_store *s, uint32_t idx);
/** pxs_get() without the slot lock, for a READY value: 0 (pinned, @p v
 *  filled), -ENOENT if the key is not there, -EAGAIN to take the locked
 *  path. */
int pxs__pin_lockless(struct pxs_store *s, pxs_key key, pxs_view *v);


/* ---- proxy.c: the attachment registry ------------------------------ */

/** Number of stores the proxy registry holds attached in this process
 *  (one per name with at least one resolved proxy). For tests. */
int pxs__proxy_registry_count(void);

/* ---- expire.c: deadlines on keys -------------------------------------- */

/** Under slot @p idx's lock: evict it as pxs_evict() does. true if it was
 *  freed at once (*@p off: the block to give
 *  pxs__slot_unlock_reclaim()), false if pins or a producer keep it EVICTED. */
bool pxs__slot_evict(struct pxs_store *s, uint32_t idx, uint64_t *off);
/** Under the lock of expired slot @p idx: evict it, unlock (waking its
 *  waiters) and reclaim it. */
void pxs__expire_locked(struct pxs_store *s, uint32_t idx);
/** With no lock held: evict slot @p idx if it is live and expired. */
bool pxs__reclaim_if_expired(struct pxs_store *s, uint32_t idx);
/** With no lock held: evict every expired slot; returns how many. */
int pxs__reclaim_expired(struct pxs_store *s);

/* ---- waits.c: wait records, exact waiter counts ------------------------ */

/** Under slot @p idx's lock: count this thread asleep on it, in the slot
 *  and in a record of this process. Returns the record (for
 *  pxs__wait_unregister), or -1 if all are taken (then it is not counted
 *  and must not sleep long: nobody wakes it). */
int pxs__wait_register(struct pxs_store *s, uint32_t idx);
/** Undo pxs__wait_register(@p idx, registered at generation @p gen,
 *  record @p r); under the slot's lock when the caller could take it. */
void pxs__wait_unregister(struct pxs_store *s, uint32_t idx, uint32_t gen,
			  int r);
/** Under slot @p idx's lock: the waiters its records hold for its current
 *  generation (attached processes, dead ones not reaped yet included; of
 *  which *@p dead, if not NULL, belong to dead processes). */
uint32_t pxs__waits_on_slot(struct pxs_store *s, uint32_t idx,
			    uint32_t *dead);
/** Under slot @p idx's lock: set its count to what the records hold. */
void pxs__waits_recount_slot(struct pxs_store *s, uint32_t idx);
/** Under bell @p b's lock: the waiters the processes' bell counts hold
 *  (of which *@p dead, if not NULL, of dead processes). */
uint32_t pxs__waits_on_bell(struct pxs_store *s, uint32_t b, uint32_t *dead);

/* ---- bell.c: waiting for keys that do not exist yet -------------------- */

/** Under @p k's home slot lock, after publishing @p k: true if somebody
 *  waits on its bell (the bell's seq is bumped; call pxs__bell_ring()
 *  after unlocking). One relaxed load when nobody waits. */
bool pxs__bell_note(struct pxs_store *s, pxs_key k);
void pxs__bell_ring(struct pxs_store *s, pxs_key k);
/** With no lock held: sleep until a key of @p key's bell is created, or
 *  CLOCK_MONOTONIC @p end_ns (UINT64_MAX: no end). 0 if woken or @p key
 *  is there (look again), -ETIMEDOUT, or a lock error. */
int pxs__bell_wait(struct pxs_store *s, pxs_key key, uint64_t end_ns);
/** Reaper: take back the bell counts of process entry @p p, waiting for
 *  each bell's lock until @p deadline (NULL: no limit); false if one was
 *  not had in time (the counts it guards are left for the next reaper). */
bool pxs__bell_drop(struct pxs_store *s, struct pxs_seg_proc *p,
		    const struct timespec *deadline);
/** Threads asleep on bells (for pxs_stat). */
uint32_t pxs__bell_waiters(struct pxs_store *s);
/** For pxs_check: the bells' counts, what the processes record, and how
 *  much of that dead processes recorded. Returns how many bells' locks
 *  could not be taken by @p deadline (at most a second from now); those
 *  are read without their lock, as a snapshot. *@p first_busy is the
 *  first such bell. */
uint32_t pxs__bell_check(struct pxs_store *s, const struct timespec *deadline,
			 uint32_t *counted, uint32_t *recorded,
			 uint32_t *dead, uint32_t *first_busy);


#endif
