/* stream.c - streams: sequences of values under one key, with readers,
 * backpressure and consumer groups, over the shared-memory API.
 *
 * Owns: the stream metadata block (the value stored under a stream's key:
 * its lock, two futex words, window and flags, the next and first retained
 * sequence numbers, the joined readers, the reservations in flight, the
 * groups with their taken items, and the ring of the retained items' keys)
 * and every pxs__shm_stream_ call. Items are ordinary values under random
 * keys; pins, eviction and the reaper's care for dead processes are those of
 * store.c and future.c, which this file calls (and nothing above it).
 */
#include "internal.h"

#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * HOW A STREAM IS KEPT.
 *
 * The stream key holds a plain value, the metadata block (struct meta),
 * written in place by pxs_stream_new() through a reservation (so its lock is
 * initialised where it will live) and then committed. Every call pins that
 * value for its duration (so the block outlives even a pxs_evict() of the
 * stream key), takes the robust mutex inside it and validates every field it
 * is about to use: a block scribbled by another process is -EPROTO, never a
 * crash. A key that holds anything but a stream block (a plain value, a
 * future) is -EPROTO too.
 *
 * ITEMS. An item is a future under a fresh random key, reserved by the
 * producer (pxs_stream_reserve()) and recorded in the block's table of
 * reservations in flight. pxs_stream_commit() commits the future and, under
 * the stream lock, gives it the next sequence number and the ring entry
 * seq % window. So numbers are dealt in commit order and a producer killed
 * between reserve and commit leaves no hole: its reservation is a future of
 * a dead owner, which the reaper abandons and frees, and whose entry the
 * next caller that needs the room drops (and evicts). Before committing, the
 * committer records which reservation it commits; if it dies holding the
 * lock, the next locker's repair appends that item if its commit happened
 * and drops it otherwise, so a committed item is never lost or leaked.
 *
 * THE WINDOW. At most `window` items are retained: the commit that would
 * retain one more evicts the oldest (pinned views stay valid: pxs_evict()'s
 * promise) and advances `first`. With PXS_STREAM_BLOCK, a reservation waits
 * while the items committed or in flight reach `window` past the slowest
 * holder: a joined reader (its position, the lowest seq it has not read) or
 * a group (its lowest item not acked). Counting reservations in flight keeps
 * two producers from overfilling the window between their reserve and
 * commit, so in this mode nothing a holder still needs slides out.
 *
 * SLEEPING. Two futex words, each with a count of sleepers so that a writer
 * with nobody asleep makes no system call: `items` moves on every commit,
 * end, ack and re-queue (readers and takers sleep on it), `progress` on
 * every reader advance, leave, ack, commit and dropped holder (blocked
 * producers sleep on it). A sleeper reads the word under the lock and sleeps
 * while it keeps that value, as the futures do (sync.c explains why not a
 * condition variable).
 *
 * DEAD PROCESSES. Holders are process-table owner tokens. Whoever is about
 * to sleep because of holders first asks whether they live (procs.c): a dead
 * reader's position is dropped, a dead group member's taken items are
 * re-queued for the other members (at-least-once), a dead producer's
 * reservation is dropped. Sleepers that depend on others' liveness wake every
 * PXS_LIVENESS_SLICE_MS to ask again, so a killed reader releases a blocked
 * producer within a slice; a stopped one does not (that is backpressure).
 */

#define META_MAGIC 0x314d525453535850ull /* "PXSSTRM1" */
#define RESV_MAX 64u  /* reservations in flight per stream */
#define TAKEN_MAX PXS_STREAM_TAKEN_MAX
#define DEFAULT_WINDOW 16u

/* The tables' entries; the compiler pads them to 8-byte alignment. */
struct reader {
	uint32_t token; /* 0: free */
	uint64_t pos;
};

struct resv {
	uint32_t token; /* 0: free */
	int32_t tid;
	pxs_key key;
};

struct taken {
	uint64_t seq;
	uint32_t token; /* its taker; 0: re-queued, free to take */
};

struct group {
	char name[PXS_STREAM_GROUP_NAME_MAX + 1]; /* "" : free */
	uint64_t next;   /* next item never handed out */
	uint32_t ntaken; /* taken[0..ntaken) are live */
	struct taken taken[TAKEN_MAX];
};

struct meta {
	uint64_t magic;
	uint32_t window;
	uint32_t flags;
	uint64_t next;  /* seq of the next commit */
	uint64_t first; /* oldest retained seq */
	uint32_t ended;
	uint32_t committing; /* 1 + index in resv[] being committed, or 0 */
	uint32_t deleted;    /* 0; 1 while pxs_stream_delete() runs; 2 after */
	pxs_key self;        /* the stream's own key */
	uint32_t items, items_sleepers;
	uint32_t progress, progress_sleepers;
	pthread_mutex_t lock;
	struct reader readers[PXS_STREAM_READERS_MAX];
	struct resv resv[RESV_MAX];
	struct group groups[PXS_STREAM_GROUPS_MAX];
	pxs_key ring[]; /* window entries: item seq at seq % window */
};

#define RING_OFF offsetof(struct meta, ring)

/* One call's hold on a stream: the pinned metadata value. */
struct hold {
	pxs_view v;
	struct meta *m;
	uint32_t window; /* from the value's size, not from the block */
};

static size_t
meta_size(uint32_t window)
{
	return RING_OFF + (size_t)window * sizeof(pxs_key);
}

static int
my_tid(void)
{
	return (int)syscall(SYS_gettid);
}

/* Bump a futex word under the stream lock (the wake comes after unlock). */
static void
bump(uint32_t *word)
{
	__atomic_fetch_add(word, 1, __ATOMIC_RELEASE);
}

static void
wake(uint32_t *word, const uint32_t *sleepers)
{
	if (__atomic_load_n(sleepers, __ATOMIC_ACQUIRE))
		pxs__futex_wake_all(word);
}

static void
unlock_wake(struct meta *m)
{
	pxs__unlock(&m->lock);
	wake(&m->items, &m->items_sleepers);
	wake(&m->progress, &m->progress_sleepers);
}

/* Under the lock: give the committed item @p key the next seq, evicting
 * the oldest retained item if the window is full. */
static uint64_t
append_locked(struct pxs_store *s, struct meta *m, uint32_t window,
	      pxs_key key)
{
	uint64_t seq = m->next;
	if (seq - m->first >= window) {
		pxs_key old = m->ring[m->first % window];
		if (!pxs__key_is_zero(old))
			(void)pxs__shm_evict(s, old);
		m->first++;
	}
	m->ring[seq % window] = key;
	m->next = seq + 1;
	bump(&m->items);
	bump(&m->progress);
	return seq;
}

static void
resv_drop(struct meta *m, uint32_t i)
{
	memset(&m->resv[i], 0, sizeof m->resv[i]);
}

/*
 * DELETING A STREAM. pxs_stream_delete() evicts, under the stream lock,
 * everything the stream holds: each retained item (zeroing its ring entry
 * as it goes), each reservation in flight, the readers and groups, and
 * last the stream's own key. Before the first eviction it sets `deleted`,
 * and every later locker of this block (a call that had pinned it before:
 * a sleeper woken by the bump, a caller that raced the delete) gets
 * -EIDRM, while callers that look the key up afresh get -ENOENT. Views
 * pinned on items stay valid: eviction frees a value only at its last
 * release. A deleter killed half way leaves `deleted` at 1 and the lock
 * owner-dead; the next locker's repair runs this again, which is safe
 * because every step is idempotent (zeroed entries are skipped, the keys
 * evicted are random ones, never reused) and the stream key is evicted
 * only while it still names this very block: a stream made under the
 * same key meanwhile is left alone.
 */
static void
delete_locked(struct pxs_store *s, struct meta *m, uint32_t window)
{
	m->deleted = 1;
	for (uint32_t i = 0; i < window; i++) {
		pxs_key k = m->ring[i];
		if (pxs__key_is_zero(k))
			continue;
		(void)pxs__shm_evict(s, k);
		m->ring[i] = (pxs_key){0, 0};
		PXS_FAILPOINT(FP_STREAM_MID_DELETE);
	}
	for (uint32_t i = 0; i < RESV_MAX; i++) {
		pxs_key k = m->resv[i].key;
		resv_drop(m, i);
		if (!pxs__key_is_zero(k))
			(void)pxs__shm_evict(s, k);
	}
	memset(m->readers, 0, sizeof m->readers);
	memset(m->groups, 0, sizeof m->groups);
	m->first = m->next;
	pxs_view v;
	if (pxs__shm_get(s, m->self, &v) == 0) {
		bool mine = v.data == (const void *)m;
		(void)pxs__shm_release(s, &v);
		if (mine)
			(void)pxs__shm_evict(s, m->self);
	}
	m->deleted = 2;
	bump(&m->items);
	bump(&m->progress);
}

/* The repair of a stream lock whose holder died: finish or undo the
 * commit it was in, so that a committed item is appended exactly once.
 * Everything else is re-validated by every locker anyway. */
static int
repair_meta(struct pxs_store *s, void *arg)
{
	struct meta *m = arg;
	uint32_t c = m->committing;
	uint32_t window = m->window;

	m->committing = 0;
	if (m->deleted == 1 && window >= 1 && window <= PXS_STREAM_WINDOW_MAX)
		delete_locked(s, m, window);
	else if (c >= 1 && c <= RESV_MAX && window >= 1 &&
	    window <= PXS_STREAM_WINDOW_MAX && m->first <= m->next &&
	    m->next - m->first <= window) {
		struct resv *r = &m->resv[c - 1];
		pxs_key k = r->key;
		resv_drop(m, c - 1);
		if (!pxs__key_is_zero(k)) {
			if (pxs__shm_future_done(s, k) == 1)
				(void)append_locked(s, m, window, k);
			else /* its owner died before the commit */
				(void)pxs__shm_evict(s, k);
		}
	}
	bump(&m->items);
	bump(&m->progress);
	pxs__futex_wake_all(&m->items);
	pxs__futex_wake_all(&m->progress);
	return 0;
}

/* Pin the stream's metadata value and check its shape. */
static int
hold_open(struct pxs_store *s, pxs_key key, struct hold *h)
{
	int rc = pxs__shm_get(s, key, &h->v);
	if (rc == -EAGAIN || rc == -EOWNERDEAD || rc == -ECANCELED)
		return -EPROTO; /* a future, not a stream */
	if (rc < 0)
		return rc;
	h->m = (struct meta *)h->v.data;
	if (h->v.size < RING_OFF ||
	    (uintptr_t)h->v.data % _Alignof(struct meta) != 0 ||
	    (h->v.size - RING_OFF) % sizeof(pxs_key) != 0)
		goto bad;
	h->window = (uint32_t)((h->v.size - RING_OFF) / sizeof(pxs_key));
	if (h->window < 1 || h->window > PXS_STREAM_WINDOW_MAX ||
	    __atomic_load_n(&h->m->magic, __ATOMIC_ACQUIRE) != META_MAGIC)
		goto bad;
	return 0;
bad:
	(void)pxs__shm_release(s, &h->v);
	return -EPROTO;
}

static void
hold_close(struct pxs_store *s, struct hold *h)
{
	(void)pxs__shm_release(s, &h->v);
}

/* The fields every call relies on, checked under the lock. */
static bool
meta_valid(const struct hold *h)
{
	const struct meta *m = h->m;
	return m->magic == META_MAGIC && m->window == h->window &&
	       (m->flags & ~(uint32_t)PXS_STREAM_BLOCK) == 0 &&
	       m->first <= m->next && m->next - m->first <= h->window &&
	       m->ended <= 1 && m->committing <= RESV_MAX &&
	       m->deleted <= 2;
}

static int
hold_lock(struct pxs_store *s, struct hold *h)
{
	int rc = pxs__lock(s, &h->m->lock, NULL, repair_meta, h->m);
	if (rc < 0) /* glibc refused the mutex: scribbled */
		return rc == -ENOTRECOVERABLE ? rc : -EPROTO;
	if (!meta_valid(h)) {
		pxs__unlock(&h->m->lock);
		return -EPROTO;
	}
	if (h->m->deleted) { /* a call that pinned the block before */
		pxs__unlock(&h->m->lock);
		return -EIDRM;
	}
	return 0;
}

/* Enter, pin and lock: the start of every stream call. */
static int
begin(struct pxs_store *s, pxs_key key, struct hold *h)
{
	int rc = pxs__enter_key(s, key);
	if (rc < 0)
		return rc;
	if ((rc = hold_open(s, key, h)) < 0)
		return rc;
	if ((rc = hold_lock(s, h)) < 0)
		hold_close(s, h);
	return rc;
}

static int
finish(struct pxs_store *s, struct hold *h, int rc)
{
	unlock_wake(h->m);
	hold_close(s, h);
	return rc;
}

/* CLOCK_MONOTONIC end of a wait of @p ms (<0: never; 0: now). */
static uint64_t
end_of(long ms)
{
	if (ms < 0)
		return UINT64_MAX;
	uint64_t cap = (uint64_t)1 << 52; /* about 142 years in ms */
	uint64_t u = (uint64_t)ms < cap ? (uint64_t)ms : cap;
	return pxs__now_ns(CLOCK_MONOTONIC) + u * 1000000u;
}

/* Under the lock: sleep while @p word keeps its value, until @p end_ns or
 * (when @p sliced) one liveness slice; then lock again. 0 to look again,
 * -ETIMEDOUT once @p end_ns has passed, or a lock error (not locked). */
static int
sleep_on(struct pxs_store *s, struct hold *h, uint32_t *word,
	 uint32_t *sleepers, uint64_t end_ns, bool sliced)
{
	uint64_t now = pxs__now_ns(CLOCK_MONOTONIC);
	if (now >= end_ns)
		return -ETIMEDOUT;
	uint64_t until = end_ns;
	if (sliced && until - now > PXS_LIVENESS_SLICE_MS * 1000000ull)
		until = now + PXS_LIVENESS_SLICE_MS * 1000000ull;
	uint32_t val = __atomic_load_n(word, __ATOMIC_ACQUIRE);
	struct timespec ts;
	__atomic_fetch_add(sleepers, 1, __ATOMIC_ACQ_REL);
	unlock_wake(h->m);
	if (until == UINT64_MAX) {
		(void)pxs__futex_wait(word, val, NULL);
	} else {
		pxs__ts_from_ns(&ts, until);
		(void)pxs__futex_wait(word, val, &ts);
	}
	__atomic_fetch_sub(sleepers, 1, __ATOMIC_ACQ_REL);
	return hold_lock(s, h);
}

/* ---- holders: readers, groups, reservations ------------------------- */

static int
reader_find(const struct meta *m, uint32_t token)
{
	for (uint32_t i = 0; i < PXS_STREAM_READERS_MAX; i++)
		if (m->readers[i].token == token)
			return (int)i;
	return -1;
}

/* Lowest seq of the group not acked yet. */
static uint64_t
group_low(const struct group *g)
{
	uint64_t low = g->next;
	for (uint32_t i = 0; i < g->ntaken; i++)
		if (g->taken[i].seq < low)
			low = g->taken[i].seq;
	return low;
}

static bool
group_valid(const struct meta *m, const struct group *g)
{
	if (g->name[0] == '\0')
		return true;
	if (memchr(g->name, '\0', sizeof g->name) == NULL ||
	    g->ntaken > TAKEN_MAX || g->next > m->next)
		return false;
	for (uint32_t i = 0; i < g->ntaken; i++)
		if (g->taken[i].seq >= g->next)
			return false;
	return true;
}

/* Under the lock: the lowest seq a holder still needs (m->next if none),
 * in *low; false if a group entry failed validation. */
static bool
slowest(const struct meta *m, uint64_t *low)
{
	uint64_t l = m->next;
	for (uint32_t i = 0; i < PXS_STREAM_READERS_MAX; i++)
		if (m->readers[i].token && m->readers[i].pos < l)
			l = m->readers[i].pos;
	for (uint32_t i = 0; i < PXS_STREAM_GROUPS_MAX; i++) {
		const struct group *g = &m->groups[i];
		if (!group_valid(m, g))
			return false;
		if (g->name[0] && group_low(g) < l)
			l = group_low(g);
	}
	*low = l;
	return true;
}

static uint32_t
resv_count(const struct meta *m)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < RESV_MAX; i++)
		n += m->resv[i].token != 0;
	return n;
}

/* Under the lock: drop the readers and reservations of dead processes and
 * re-queue the items dead group members took. Returns how many. */
static int
drop_dead(struct pxs_store *s, struct meta *m)
{
	int n = 0;
	for (uint32_t i = 0; i < PXS_STREAM_READERS_MAX; i++) {
		struct reader *r = &m->readers[i];
		if (r->token && !pxs__proc_alive(s, r->token)) {
			r->token = 0;
			n++;
		}
	}
	for (uint32_t i = 0; i < RESV_MAX; i++) {
		struct resv *r = &m->resv[i];
		if (r->token && !pxs__proc_alive(s, r->token)) {
			pxs_key k = r->key;
			resv_drop(m, i);
			if (!pxs__key_is_zero(k))
				(void)pxs__shm_evict(s, k);
			n++;
		}
	}
	for (uint32_t i = 0; i < PXS_STREAM_GROUPS_MAX; i++) {
		struct group *g = &m->groups[i];
		if (!g->name[0] || g->ntaken > TAKEN_MAX)
			continue;
		for (uint32_t j = 0; j < g->ntaken; j++) {
			struct taken *t = &g->taken[j];
			if (t->token && !pxs__proc_alive(s, t->token)) {
				t->token = 0;
				n++;
			}
		}
	}
	if (n) {
		bump(&m->items);
		bump(&m->progress);
	}
	return n;
}

/* ---- the calls ------------------------------------------------------ */

/* An error of a call on a future this file made itself: the ones the
 * stream calls document pass, any other means another process evicted or
 * changed that future meanwhile. */
static int
own_error(int rc)
{
	switch (rc) {
	case 0:
	case -ENOSPC:
	case -EPROTO:
	case -EUSERS:
	case -ENOTRECOVERABLE:
		return rc;
	default:
		return -ECANCELED;
	}
}

int
pxs__shm_stream_new(pxs_store *s, pxs_key key, const pxs_stream_options *o)
{
	uint32_t window = o ? o->window : DEFAULT_WINDOW;
	unsigned flags = o ? o->flags : 0;
	void *buf;
	int rc = pxs__enter_key(s, key);

	if (rc < 0)
		return rc;
	if (window < 1 || window > PXS_STREAM_WINDOW_MAX ||
	    (flags & ~(unsigned)PXS_STREAM_BLOCK) != 0)
		return -EINVAL;
	if ((rc = pxs__shm_future_new_at(s, key)) < 0)
		return rc;
	rc = pxs__shm_future_reserve(s, key, meta_size(window), &buf);
	if (rc == -ENOSPC) {
		(void)pxs__shm_evict(s, key);
		return rc;
	}
	if (rc < 0) /* another process set or evicted the key meanwhile */
		return own_error(rc);
	struct meta *m = buf;
	memset(m, 0, meta_size(window));
	m->window = window;
	m->flags = flags;
	m->self = key;
	m->magic = META_MAGIC;
	if (pxs__mutex_init(&m->lock) < 0) {
		(void)pxs__shm_evict(s, key);
		return -ENOMEM;
	}
	return own_error(pxs__shm_future_commit(s, key));
}

int
pxs__shm_stream_reserve(pxs_store *s, pxs_key key, size_t size,
			long timeout_ms, void **buf)
{
	struct hold h;
	uint64_t end_ns = end_of(timeout_ms);
	int tid = my_tid();
	int rc;

	if (!buf)
		return -EINVAL;
	if ((rc = begin(s, key, &h)) < 0)
		return rc;
	struct meta *m = h.m;
	for (uint32_t i = 0; i < RESV_MAX; i++)
		if (m->resv[i].token == s->token && m->resv[i].tid == tid)
			return finish(s, &h, -EBUSY);
	int slot = -1;
	for (;;) {
		uint64_t low;
		if (m->ended)
			return finish(s, &h, -EPIPE);
		if (!slowest(m, &low))
			return finish(s, &h, -EPROTO);
		bool room = !(m->flags & PXS_STREAM_BLOCK) ||
			    m->next + resv_count(m) - low < h.window;
		slot = -1;
		for (uint32_t i = 0; i < RESV_MAX && slot < 0; i++)
			if (m->resv[i].token == 0)
				slot = (int)i;
		if (room && slot >= 0)
			break;
		if (drop_dead(s, m) > 0)
			continue;
		if ((rc = sleep_on(s, &h, &m->progress, &m->progress_sleepers,
				   end_ns, true)) < 0) {
			if (rc == -ETIMEDOUT)
				return finish(s, &h, rc);
			hold_close(s, &h);
			return rc;
		}
	}
	/* The item's future is made under the lock, so that a delete after
	 * the unlock finds it to evict; the allocation is made outside. */
	struct resv *r = &m->resv[slot];
	pxs_key item = pxs__key_random();
	if ((rc = own_error(pxs__shm_future_new_at(s, item))) < 0)
		return finish(s, &h, rc);
	r->key = item;
	r->tid = tid;
	r->token = s->token;
	unlock_wake(m);

	rc = own_error(pxs__shm_future_reserve(s, item, size, buf));
	if (rc < 0) {
		(void)pxs__shm_evict(s, item);
		int lrc = hold_lock(s, &h);
		if (lrc == 0) {
			if (m->resv[slot].token == s->token &&
			    m->resv[slot].tid == tid)
				resv_drop(m, (uint32_t)slot);
			bump(&m->progress);
			unlock_wake(m);
		} else if (lrc == -EIDRM) {
			rc = lrc;
		}
	}
	hold_close(s, &h);
	return rc;
}

int
pxs__shm_stream_commit(pxs_store *s, pxs_key key, uint64_t *seq_out)
{
	struct hold h;
	int tid = my_tid();
	int rc;

	if ((rc = begin(s, key, &h)) < 0)
		return rc;
	struct meta *m = h.m;
	uint32_t i = 0;
	while (i < RESV_MAX &&
	       !(m->resv[i].token == s->token && m->resv[i].tid == tid))
		i++;
	if (i == RESV_MAX)
		return finish(s, &h, -EINVAL);
	pxs_key item = m->resv[i].key;
	if (m->ended) {
		resv_drop(m, i);
		(void)pxs__shm_evict(s, item);
		bump(&m->progress);
		return finish(s, &h, -EPIPE);
	}
	m->committing = i + 1;
	PXS_FAILPOINT(FP_STREAM_BEFORE_COMMIT);
	rc = own_error(pxs__shm_future_commit(s, item));
	if (rc == 0) {
		PXS_FAILPOINT(FP_STREAM_AFTER_COMMIT);
		uint64_t seq = append_locked(s, m, h.window, item);
		if (seq_out)
			*seq_out = seq;
	} else {
		(void)pxs__shm_evict(s, item);
		bump(&m->progress);
	}
	m->committing = 0;
	resv_drop(m, i);
	return finish(s, &h, rc);
}

int
pxs__shm_stream_append(pxs_store *s, pxs_key key, const void *data,
		       size_t size, long timeout_ms, uint64_t *seq_out)
{
	void *buf;
	int rc;

	if (!data && size > 0)
		return -EINVAL;
	if ((rc = pxs__shm_stream_reserve(s, key, size, timeout_ms, &buf)) < 0)
		return rc;
	if (size)
		memcpy(buf, data, size);
	return pxs__shm_stream_commit(s, key, seq_out);
}

/* Under the lock: pin item @p seq (first <= seq < next) into @p v. */
static int
pin_item(struct pxs_store *s, const struct hold *h, uint64_t seq,
	 pxs_view *v)
{
	pxs_key item = h->m->ring[seq % h->window];
	if (pxs__key_is_zero(item))
		return -EPROTO;
	int rc = pxs__shm_get(s, item, v);
	switch (rc) {
	case 0:
	case -EOVERFLOW:
	case -ENOSPC:
	case -EPROTO:
	case -EUSERS:
	case -ENOTRECOVERABLE:
		return rc;
	case -ENOENT: /* evicted by hand: as gone as if it had slid out */
	case -ECANCELED:
		return -ERANGE;
	default: /* the ring names a future: scribbled */
		return -EPROTO;
	}
}

int
pxs__shm_stream_read(pxs_store *s, pxs_key key, uint64_t seq,
		     long timeout_ms, pxs_view *v)
{
	struct hold h;
	uint64_t end_ns = end_of(timeout_ms);
	int rc;

	if (!v)
		return -EINVAL;
	if ((rc = begin(s, key, &h)) < 0)
		return rc;
	struct meta *m = h.m;
	for (;;) {
		if (seq < m->first)
			return finish(s, &h, -ERANGE);
		if (seq < m->next)
			break;
		if (m->ended)
			return finish(s, &h, -EPIPE);
		rc = sleep_on(s, &h, &m->items, &m->items_sleepers, end_ns,
			      false);
		if (rc == -ETIMEDOUT)
			return finish(s, &h, rc);
		if (rc < 0) {
			hold_close(s, &h);
			return rc;
		}
	}
	pxs_view iv;
	if ((rc = pin_item(s, &h, seq, &iv)) < 0)
		return finish(s, &h, rc);
	/* A joined reader's position is the lowest seq it has not read: it
	 * moves when that item is read (a read further on does not move it;
	 * items that slid out count as read). */
	int r = reader_find(m, s->token);
	if (r >= 0) {
		uint64_t pos = m->readers[r].pos;
		if ((pos < m->first ? m->first : pos) == seq) {
			m->readers[r].pos = seq + 1;
			bump(&m->progress);
		}
	}
	*v = iv;
	return finish(s, &h, 0);
}

int
pxs__shm_stream_end(pxs_store *s, pxs_key key)
{
	struct hold h;
	int rc = begin(s, key, &h);
	if (rc < 0)
		return rc;
	if (h.m->ended)
		return finish(s, &h, -EALREADY);
	h.m->ended = 1;
	bump(&h.m->items);
	bump(&h.m->progress);
	return finish(s, &h, 0);
}

int
pxs__shm_stream_delete(pxs_store *s, pxs_key key)
{
	struct hold h;
	int rc = begin(s, key, &h);
	if (rc < 0)
		return rc;
	delete_locked(s, h.m, h.window);
	return finish(s, &h, 0);
}

int
pxs__shm_stream_stat(pxs_store *s, pxs_key key, pxs_stream_stats *st)
{
	struct hold h;
	pxs_stream_stats o;
	int rc;

	if (!st)
		return -EINVAL;
	if ((rc = begin(s, key, &h)) < 0)
		return rc;
	struct meta *m = h.m;
	(void)drop_dead(s, m); /* report the living */
	memset(&o, 0, sizeof o);
	if (!slowest(m, &o.slowest))
		return finish(s, &h, -EPROTO);
	o.first = m->first;
	o.next = m->next;
	o.ended = (int)m->ended;
	o.window = m->window;
	o.flags = m->flags;
	o.reserved = resv_count(m);
	for (uint32_t i = 0; i < PXS_STREAM_READERS_MAX; i++)
		o.readers += m->readers[i].token != 0;
	for (uint32_t i = 0; i < PXS_STREAM_GROUPS_MAX; i++) {
		if (m->groups[i].name[0]) {
			o.groups++;
			o.taken += m->groups[i].ntaken;
		}
	}
	int me = reader_find(m, s->token);
	o.position = me >= 0 ? m->readers[me].pos : UINT64_MAX;
	*st = o;
	return finish(s, &h, 0);
}

int
pxs__shm_stream_join(pxs_store *s, pxs_key key, uint64_t from_seq)
{
	struct hold h;
	int rc = begin(s, key, &h);
	if (rc < 0)
		return rc;
	struct meta *m = h.m;
	if (from_seq < m->first)
		return finish(s, &h, -ERANGE);
	if (reader_find(m, s->token) >= 0)
		return finish(s, &h, -EALREADY);
	int r = reader_find(m, 0);
	if (r < 0 && drop_dead(s, m) > 0)
		r = reader_find(m, 0);
	if (r < 0)
		return finish(s, &h, -ENOSPC);
	m->readers[r].pos = from_seq;
	m->readers[r].token = s->token;
	return finish(s, &h, 0);
}

int
pxs__shm_stream_leave(pxs_store *s, pxs_key key)
{
	struct hold h;
	int rc = begin(s, key, &h);
	if (rc < 0)
		return rc;
	int r = reader_find(h.m, s->token);
	if (r < 0)
		return finish(s, &h, -ENOENT);
	h.m->readers[r].token = 0;
	bump(&h.m->progress);
	return finish(s, &h, 0);
}

/* 0 if @p group is a usable group name. */
static int
group_name_check(const char *group)
{
	if (!group)
		return -EINVAL;
	size_t n = strnlen(group, PXS_STREAM_GROUP_NAME_MAX + 1);
	return n >= 1 && n <= PXS_STREAM_GROUP_NAME_MAX ? 0 : -EINVAL;
}

/* Under the lock: the group named @p name (validated), or NULL; with
 * @p create, a free entry made into it (*rc -ENOSPC when none is free). */
static struct group *
group_get(struct meta *m, const char *name, bool create, int *rc)
{
	struct group *free_g = NULL;
	*rc = 0;
	for (uint32_t i = 0; i < PXS_STREAM_GROUPS_MAX; i++) {
		struct group *g = &m->groups[i];
		if (!group_valid(m, g)) {
			*rc = -EPROTO;
			return NULL;
		}
		if (g->name[0] == '\0') {
			if (!free_g)
				free_g = g;
		} else if (strcmp(g->name, name) == 0) {
			return g;
		}
	}
	if (!create) {
		*rc = -ENOENT;
		return NULL;
	}
	if (!free_g) {
		*rc = -ENOSPC;
		return NULL;
	}
	memset(free_g, 0, sizeof *free_g);
	free_g->next = m->first;
	strcpy(free_g->name, name);
	return free_g;
}

static void
taken_remove(struct group *g, uint32_t j)
{
	g->taken[j] = g->taken[--g->ntaken];
	memset(&g->taken[g->ntaken], 0, sizeof g->taken[0]);
}

/* Under the lock: hand the group's next item to this process, if one is
 * free: 1 (*seq, *v set), 0 (none now), or an error. */
static int
take_one(struct pxs_store *s, const struct hold *h, struct group *g,
	 uint64_t *seq, pxs_view *v)
{
	struct meta *m = h->m;
	int rc;

	/* Re-queued items first, oldest first; drop those slid out. */
	for (;;) {
		int best = -1;
		for (uint32_t j = 0; j < g->ntaken; j++) {
			const struct taken *t = &g->taken[j];
			if (t->token == 0 &&
			    (best < 0 || t->seq < g->taken[best].seq))
				best = (int)j;
		}
		if (best < 0)
			break;
		struct taken *t = &g->taken[best];
		if (t->seq < m->first) {
			taken_remove(g, (uint32_t)best);
			continue;
		}
		rc = pin_item(s, h, t->seq, v);
		if (rc == -ERANGE) {
			taken_remove(g, (uint32_t)best);
			continue;
		}
		if (rc < 0)
			return rc;
		t->token = s->token;
		*seq = t->seq;
		return 1;
	}
	while (g->next < m->next && g->ntaken < TAKEN_MAX) {
		if (g->next < m->first)
			g->next = m->first;
		uint64_t q = g->next;
		rc = pin_item(s, h, q, v);
		g->next = q + 1;
		bump(&m->progress);
		if (rc == -ERANGE)
			continue;
		if (rc < 0)
			return rc;
		g->taken[g->ntaken++] = (struct taken){.seq = q,
						       .token = s->token};
		*seq = q;
		return 1;
	}
	return 0;
}

int
pxs__shm_stream_take(pxs_store *s, pxs_key key, const char *group,
		     long timeout_ms, uint64_t *seq, pxs_view *v)
{
	struct hold h;
	uint64_t end_ns = end_of(timeout_ms);
	uint64_t q;
	pxs_view iv;
	int rc = pxs__enter_key(s, key);

	if (rc < 0)
		return rc;
	if (group_name_check(group) < 0 || !seq || !v)
		return -EINVAL;
	if ((rc = begin(s, key, &h)) < 0)
		return rc;
	struct meta *m = h.m;
	for (;;) {
		struct group *g = group_get(m, group, true, &rc);
		if (!g)
			return finish(s, &h, rc);
		if ((rc = take_one(s, &h, g, &q, &iv)) < 0)
			return finish(s, &h, rc);
		if (rc == 1)
			break;
		if (m->ended && g->next >= m->next && g->ntaken == 0)
			return finish(s, &h, -EPIPE);
		if (drop_dead(s, m) > 0)
			continue;
		rc = sleep_on(s, &h, &m->items, &m->items_sleepers, end_ns,
			      g->ntaken > 0);
		if (rc == -ETIMEDOUT)
			return finish(s, &h, rc);
		if (rc < 0) {
			hold_close(s, &h);
			return rc;
		}
	}
	*seq = q;
	*v = iv;
	return finish(s, &h, 0);
}

int
pxs__shm_stream_ack(pxs_store *s, pxs_key key, const char *group,
		    uint64_t seq)
{
	struct hold h;
	int rc = pxs__enter_key(s, key);

	if (rc < 0)
		return rc;
	if (group_name_check(group) < 0)
		return -EINVAL;
	if ((rc = begin(s, key, &h)) < 0)
		return rc;
	struct group *g = group_get(h.m, group, false, &rc);
	if (!g)
		return finish(s, &h, rc);
	for (uint32_t j = 0; j < g->ntaken; j++) {
		if (g->taken[j].seq == seq) {
			taken_remove(g, j);
			bump(&h.m->items);
			bump(&h.m->progress);
			return finish(s, &h, 0);
		}
	}
	return finish(s, &h, -ENOENT);
}
