/* procs.c - attached processes: liveness tokens, counters and fork.
 *
 * Owns: the segment's process table (acquiring a free entry, taking a dead
 * one's liveness lock, freeing an entry), the per-process liveness lock,
 * the owner tokens stored in slots, the counters, and the fork handler.
 * It reaps nothing: reap.c reaps a dead entry between pxs__proc_take_dead
 * and pxs__proc_free, and attaches a handle (reap, then acquire).
 *
 * HOW LIVENESS WORKS. Each handle acquires an entry i of the process table
 * and takes an OFD write lock (F_OFD_SETLK) on byte PXS_LIVENESS_LOCK_BASE+i
 * of the segment file through its own descriptor. The kernel drops the lock
 * when the process dies, however it dies. Another process asks "is entry i
 * alive?" with F_OFD_GETLK on that byte: a conflicting lock means alive.
 * Unlike kill(pid, 0) this cannot be fooled by pid reuse or PID namespaces,
 * and unlike classic fcntl locks it is not dropped when the process closes
 * some other descriptor of the same file. A stopped process still holds its
 * lock, so it is never mistaken for a dead one.
 *
 * An owner token is (entry generation << PXS_PROC_BITS) | entry index. The
 * generation is bumped whenever an entry is acquired, so a token of a
 * process that left never matches a later occupant of the same entry.
 *
 * FORK. An OFD lock belongs to the open file description, which a child
 * shares with its parent: if the child kept it, a dead parent would look
 * alive. The atfork child handler therefore gives every open store a fresh
 * description (reopening /proc/self/fd/N) in place of the inherited one and
 * bumps pxs__fork_gen; the child's first call then acquires its own entry
 * (pxs__refork, reap.c).
 * The lock lives on a description of its own (lockfd) that is never
 * mapped: a mapping references the description it was made from, so a
 * child that inherits the mapping would otherwise keep the parent's lock,
 * and the parent "alive", for as long as the child lives.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

volatile unsigned long pxs__fork_gen;

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pxs_store *open_stores;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
fork_prepare(void)
{
	pthread_mutex_lock(&list_lock);
}
static void
fork_parent(void)
{
	pthread_mutex_unlock(&list_lock);
}

static void
fork_child(void)
{
	for (struct pxs_store *s = open_stores; s; s = s->next) {
		int nfd = pxs__segment_reopen(s);
		if (nfd >= 0 && dup3(nfd, s->lockfd, O_CLOEXEC) >= 0) {
			close(nfd); /* no longer the parent's description */
		} else {
			/* No way to a description of our own: give up the
			 * handle (its calls fail with -EBADF) rather than share
			 * the parent's liveness lock, which would let a reaper
			 * take us for it. */
			if (nfd >= 0)
				close(nfd);
			close(s->lockfd);
			s->lockfd = -1;
		}
		pthread_mutex_init(&s->local, NULL);
		pthread_mutex_init(&s->waits_lock, NULL);
	}
	pxs__fork_gen++;
	pthread_mutex_unlock(&list_lock);
}

static void
atfork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void
pxs__proc_track(struct pxs_store *s)
{
	pthread_once(&atfork_once, atfork_init);
	pthread_mutex_lock(&list_lock);
	s->next = open_stores;
	open_stores = s;
	pthread_mutex_unlock(&list_lock);
}

void
pxs__proc_untrack(struct pxs_store *s)
{
	pthread_mutex_lock(&list_lock);
	for (struct pxs_store **p = &open_stores; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&list_lock);
}

static int
liveness_lock(int fd, uint32_t idx, int cmd, short type, struct flock *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = PXS_LIVENESS_LOCK_BASE + (off_t)idx;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl);
}

/* Fold a departing entry's counters into the segment's totals. Under proc_lock. */
static void
fold_counters(struct pxs_store *s, struct pxs_seg_proc *p)
{
	for (int c = 0; c < PXS_CTR_N; c++) {
		uint64_t v =
			__atomic_exchange_n(&p->ctr[c], 0, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->hdr->ctr_gone[c], v, __ATOMIC_RELAXED);
	}
}

/* The proc table needs no repair: an entry is acquired by the lock, and a
 * half-acquired entry (state written, lock not taken) reads as dead. */

/* Acquire entry i (its liveness lock is held through s->lockfd). Under
 * proc_lock. */
static void
acquire_entry(struct pxs_store *s, uint32_t i)
{
	struct pxs_seg_proc *p = &s->procs[i];
	fold_counters(s, p);
	uint32_t gen = (p->gen + 1) & ((1u << (32 - PXS_PROC_BITS)) - 1);
	p->gen = gen ? gen : 1;
	p->pid = (int32_t)getpid();
	p->attach_ns = pxs__now_ns(CLOCK_REALTIME);
	p->pins_off = 0;
	__atomic_store_n(&p->inserting, 0, __ATOMIC_RELAXED);
	/* Free entries hold no waits (the reaper cleared them); an entry is
	 * counted by recounts only once LIVE, below. */
	memset(p->bell_waits, 0, sizeof p->bell_waits);
	memset(p->waits, 0, sizeof p->waits);
	if (__atomic_load_n(&s->hdr->procs_hi, __ATOMIC_RELAXED) <= i)
		__atomic_store_n(&s->hdr->procs_hi, i + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&p->state, PXS_PROC_LIVE, __ATOMIC_RELEASE);
	__atomic_store_n(&s->token, pxs__token(p->gen, i), __ATOMIC_RELEASE);
	memset(s->pins, 0, sizeof s->pins);
	s->pindir = NULL;
}

/* Under proc_lock: if entry i is attached, not ours and dead, take its
 * liveness lock and return 1: the caller reaps it, then frees it
 * (pxs__proc_free). */
int
pxs__proc_take_dead(struct pxs_store *s, uint32_t i)
{
	struct flock fl;
	if (__atomic_load_n(&s->procs[i].state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE ||
	    (s->token && i == pxs__token_idx(s->token)))
		return 0;
	/* alive when its lock is held */
	return liveness_lock(s->lockfd, i, F_OFD_SETLK, F_WRLCK, &fl) == 0;
}

void
pxs__proc_free(struct pxs_store *s, uint32_t i)
{
	fold_counters(s, &s->procs[i]);
	__atomic_store_n(&s->procs[i].state, PXS_PROC_FREE, __ATOMIC_RELEASE);
}

void
pxs__proc_let_go(struct pxs_store *s, uint32_t i)
{
	struct flock fl;
	liveness_lock(s->lockfd, i, F_OFD_SETLK, F_UNLCK, &fl);
}

int
pxs__proc_is_mine(struct pxs_store *s, uint32_t token)
{
	struct pxs_seg_proc *p = &s->procs[pxs__token_idx(token)];
	return p->gen == pxs__token_gen(token) && p->state == PXS_PROC_LIVE;
}

int
pxs__proc_acquire(struct pxs_store *s, const struct timespec *deadline)
{
	struct flock fl;
	int rc = pxs__lock(s, &s->hdr->proc_lock, deadline, NULL, NULL);
	if (rc < 0)
		return rc;
	PXS_FAILPOINT(FP_PROC_REGISTER_LOCKED);
	rc = -EUSERS;
	for (uint32_t i = 0; i < PXS_MAX_PROCS; i++) {
		if (__atomic_load_n(&s->procs[i].state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_FREE)
			continue;
		if (liveness_lock(s->lockfd, i, F_OFD_SETLK, F_WRLCK, &fl) < 0) {
			if (errno == EAGAIN || errno == EACCES)
				continue; /* its last holder is still letting go */
			rc = -errno;
			break;
		}
		acquire_entry(s, i);
		rc = 0;
		break;
	}
	pxs__unlock(&s->hdr->proc_lock);
	return rc;
}

int
pxs__proc_alive(struct pxs_store *s, uint32_t token)
{
	if (token == __atomic_load_n(&s->token, __ATOMIC_ACQUIRE))
		return 1;
	uint32_t idx = pxs__token_idx(token), gen = pxs__token_gen(token);
	struct pxs_seg_proc *p = &s->procs[idx];
	if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != PXS_PROC_LIVE ||
	    __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) != gen)
		return 0;
	struct flock fl;
	if (liveness_lock(s->lockfd, idx, F_OFD_GETLK, F_WRLCK, &fl) < 0)
		return 1; /* cannot tell: never report a live process dead */
	if (fl.l_type == F_UNLCK)
		return 0;
	/* Locked: alive, unless the entry changed hands meanwhile. */
	return __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) == gen;
}

void
pxs__counters(struct pxs_store *s, uint64_t out[PXS_CTR_N], uint32_t *alive)
{
	uint32_t n = 0;
	for (int c = 0; c < PXS_CTR_N; c++)
		out[c] =
			__atomic_load_n(&s->hdr->ctr_gone[c], __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < PXS_MAX_PROCS; i++) {
		struct pxs_seg_proc *p = &s->procs[i];
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) !=
		    PXS_PROC_LIVE)
			continue;
		for (int c = 0; c < PXS_CTR_N; c++)
			out[c] += __atomic_load_n(&p->ctr[c], __ATOMIC_RELAXED);
		if (pxs__proc_alive(
			    s, pxs__token(__atomic_load_n(&p->gen,
							  __ATOMIC_RELAXED),
					  i)))
			n++;
	}
	*alive = n;
}
